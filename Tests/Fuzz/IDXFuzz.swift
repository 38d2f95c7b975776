// libFuzzer harness: an IDX file as a user hands it to --data-dir or predict, raw or gzipped
// (the same steps as IDXFile(path:), from bytes). Built by scripts/fuzz with the reader's sources.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var raw = Array(UnsafeBufferPointer(start: data, count: size))
    if Gzip.isGzip(raw) {
        guard let inflated = try? Gzip.decompress(raw) else { return 0 }
        raw = inflated
    }
    if let file = try? IDXFile(raw: raw, name: "fuzz") { precondition(file.bytes.count == (file.dimensions.contains(0) ? 0 : file.dimensions.reduce(1, *))) }
    return 0
}
