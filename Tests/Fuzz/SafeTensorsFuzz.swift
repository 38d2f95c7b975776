import Foundation

// libFuzzer harness: a safetensors file as evaluate, predict, --init-model and --resume read it:
// the whole file, its header alone (SafeTensors.metadata, used to prune checkpoints), and the
// checkpoint metadata's numbers and JSON. Built by scripts/fuzz with the reader's sources.
private let path = NSTemporaryDirectory() + "dptrain-fuzz-\(getpid()).safetensors"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    _ = try? SafeTensors.metadata(atPath: path)
    guard let file = try? SafeTensors(bytes: bytes, name: "fuzz") else { return 0 }
    for (_, tensor) in file.tensors { _ = tensor.floats; _ = tensor.int32s }
    _ = file.dataSection
    for (_, value) in file.metadata {
        _ = Int(value)
        _ = Double(value)
        _ = try? JSONSerialization.jsonObject(with: Data(value.utf8))
        _ = try? JSONDecoder().decode([String: String].self, from: Data(value.utf8))
    }
    _ = try? file.serialized()
    return 0
}
