// libFuzzer harness: the JSON of a .keras archive's config.json or of model.to_json(), as a user
// hands it to --model (KerasValue.parse, DPTrain's own JSON reader), and its re-serialisation.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKerasJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? KerasValue.parse(bytes) else { return 0 }
    // What it read must read back the same.
    precondition((try? KerasValue.parse(Array(value.json.utf8))) == value, "parse(json(v)) != v")
    return 0
}
