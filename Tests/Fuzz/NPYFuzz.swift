// libFuzzer harness: a .npy array as a user hands it to --data (alone, or as an .npz entry):
// NPYArray(bytes:name:), the header parser included.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let array = try? NPYArray(bytes: bytes, name: "fuzz") {
        precondition(array.data.count == array.shape.reduce(1, *) * array.itemSize, "the data does not fill the shape")
    }
    return 0
}
