// libFuzzer harness: a model file as a user hands it to --model: a .keras archive (zip,
// config.json, model.weights.h5) when the bytes are a zip, else model.to_json()'s JSON; the
// reader builds the graph, which must resolve or be refused with one line.
import Foundation

let path = NSTemporaryDirectory() + "dptrain-fuzz-\(getpid())"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeras(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    let name = path + (bytes.starts(with: [0x50, 0x4B]) ? ".keras" : ".json")
    guard (try? bytes.write(to: URL(fileURLWithPath: name))) != nil else { return 0 }
    if let model = try? KerasModel.read(path: name) { _ = try? model.graph.resolve() }
    return 0
}
