import Foundation

/// The safetensors format: 8-byte little-endian header length N, N bytes of JSON, then the
/// tensors' bytes (little-endian, row-major, contiguous, no gaps). Readable by
/// `safetensors.numpy.load_file`, PyTorch, MLX and JAX.
public struct SafeTensors {
    public struct Tensor: Equatable {
        public var dtype: String
        public var shape: [Int]
        /// Raw little-endian bytes.
        public var bytes: [UInt8]

        public init(floats: [Float], shape: [Int]) {
            dtype = "F32"
            self.shape = shape
            bytes = floats.withUnsafeBytes { Array($0) }  // Linux targets are little-endian.
        }

        public var floats: [Float]? {
            guard dtype == "F32" else { return nil }
            return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }

        public var int32s: [Int32]? {
            guard dtype == "I32" else { return nil }
            return bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        }
    }

    private static let itemSizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                                    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1]

    /// Tensors in file order.
    public var tensors: [(name: String, tensor: Tensor)] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

    public mutating func append(_ name: String, _ tensor: Tensor) { tensors.append((name, tensor)) }

    /// The bytes of the data section: what the checksum in a checkpoint's metadata covers.
    public var dataSection: [UInt8] { tensors.flatMap(\.tensor.bytes) }

    public func serialized() throws -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        for (name, tensor) in tensors {
            header[name] = ["dtype": tensor.dtype, "shape": tensor.shape, "data_offsets": [offset, offset + tensor.bytes.count]]
            offset += tensor.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // The reference writer pads with spaces so the data starts 8-byte aligned.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for (_, tensor) in tensors { out.append(contentsOf: tensor.bytes) }
        return out
    }

    /// Parses and checks a file: header length, JSON, dtypes, shapes against byte ranges, and
    /// that the ranges tile the data section exactly. Errors name `name` (the path).
    public init(bytes: [UInt8], name: String) throws {
        func fail(_ why: String) -> FileError { FileError("\(name): not a valid safetensors file: \(why)") }
        guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes is shorter than the 8-byte header length") }
        let headerLength = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(bytes.count - 8) else { throw fail("header length \(headerLength) exceeds the file (\(bytes.count) bytes); truncated?") }
        let dataStart = 8 + Int(headerLength)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])), let header = object as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        for (key, value) in header {
            if key == "__metadata__" {
                guard let meta = value as? [String: String] else { throw fail("__metadata__ values must be strings") }
                metadata = meta
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("tensor '\(key)' lacks dtype, shape or data_offsets")
            }
            guard let itemSize = Self.itemSizes[dtype] else { throw fail("tensor '\(key)' has unknown dtype \(dtype)") }
            // A lying shape can overflow Int: its size is checked in floating point first.
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1],
                  shape.reduce(Double(itemSize), { $0 * Double($1) }) <= Double(bytes.count),
                  offsets[1] - offsets[0] == (shape.contains(0) ? 0 : shape.reduce(1, *) * itemSize) else {
                throw fail("tensor '\(key)' has offsets \(offsets) that do not fit its shape \(shape) of \(dtype)")
            }
            entries.append((key, dtype, shape, offsets[0], offsets[1]))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for entry in entries {
            guard entry.begin == expected else { throw fail("tensor '\(entry.name)' starts at \(entry.begin), expected \(expected) (gap or overlap)") }
            expected = entry.end
        }
        guard dataStart + expected == bytes.count else {
            throw fail("data section is \(bytes.count - dataStart) bytes but the header describes \(expected)\(bytes.count - dataStart < expected ? "; truncated?" : "")")
        }
        for entry in entries {
            let tensorBytes = Array(bytes[(dataStart + entry.begin)..<(dataStart + entry.end)])
            tensors.append((entry.name, Tensor(dtype: entry.dtype, shape: entry.shape, bytes: tensorBytes)))
        }
    }

    /// The `__metadata__` of the file at `path`, reading only its header.
    public static func metadata(atPath path: String) throws -> [String: String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw FileError("\(path): cannot be read") }
        defer { try? handle.close() }
        let length = (try handle.read(upToCount: 8) ?? Data()).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length < 100_000_000, let header = try handle.read(upToCount: Int(length)),
              let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw FileError("\(path): not a valid safetensors file: unreadable header")
        }
        return object["__metadata__"] as? [String: String] ?? [:]
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")")
        }
        try self.init(bytes: [UInt8](data), name: path)
    }
}

extension SafeTensors.Tensor {
    init(dtype: String, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }
}
