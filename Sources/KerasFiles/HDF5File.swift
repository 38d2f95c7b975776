import Foundation
import HDF5Shim

/// An HDF5 file held in memory, through the C shim: what `model.weights.h5` needs and no more
/// (groups, float32 datasets, string attributes). HDF5 may be built without thread safety, so
/// every call into it holds one lock.
final class HDF5File {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    enum Kind { case group, dataset, other }

    private static let lock = NSLock()
    private let handle: Int64

    private init(handle: Int64) { self.handle = handle }

    deinit { Self.locked { _ = h5s_close(handle) } }

    private static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    static func create() throws -> HDF5File {
        let handle = locked { h5s_create() }
        guard handle >= 0 else { throw Failure(description: "HDF5 cannot create a file in memory") }
        return HDF5File(handle: handle)
    }

    /// Opens a file image (e.g. a zip entry's bytes); nil if HDF5 does not take it for one.
    static func open(_ bytes: Data) -> HDF5File? {
        let handle = locked { bytes.withUnsafeBytes { h5s_open($0.baseAddress, $0.count) } }
        return handle >= 0 ? HDF5File(handle: handle) : nil
    }

    /// The whole file, as it would be on disk.
    func image() throws -> Data {
        try Self.locked {
            let size = h5s_image(handle, nil, 0)
            guard size >= 0 else { throw Failure(description: "HDF5 cannot produce the file's image") }
            var data = Data(count: Int(size))
            let rc = data.withUnsafeMutableBytes { h5s_image(handle, $0.baseAddress, $0.count) }
            guard rc == size else { throw Failure(description: "HDF5 cannot produce the file's image") }
            return data
        }
    }

    func createGroup(_ path: String) throws {
        guard Self.locked({ h5s_create_group(handle, path) }) == 0 else { throw Failure(description: "HDF5 cannot create group \(path)") }
    }

    func write(_ path: String, shape: [Int], values: [Float]) throws {
        precondition(shape.reduce(1, *) == values.count, "\(path): \(values.count) values for shape \(shape)")
        let dims = shape.map(Int64.init)
        let rc = Self.locked { values.withUnsafeBufferPointer { h5s_write_floats(handle, path, Int32(dims.count), dims, $0.baseAddress) } }
        guard rc == 0 else { throw Failure(description: "HDF5 cannot write dataset \(path)") }
    }

    func setAttribute(_ path: String, _ name: String, _ value: String) throws {
        guard Self.locked({ h5s_set_string_attribute(handle, path, name, value) }) == 0 else {
            throw Failure(description: "HDF5 cannot set attribute \(name) of \(path)")
        }
    }

    func kind(_ path: String) -> Kind? {
        switch Self.locked({ h5s_kind(handle, path) }) {
        case 1: .group
        case 2: .dataset
        case 3: .other
        default: nil
        }
    }

    /// The group's member names, in HDF5's name order.
    func members(_ path: String) throws -> [String] {
        try Self.locked {
            let size = h5s_members(handle, path, nil, 0)
            guard size >= 0 else { throw Failure(description: "cannot list group \(path)") }
            var buffer = [CChar](repeating: 0, count: Int(size) + 1)
            guard h5s_members(handle, path, &buffer, buffer.count) == size else { throw Failure(description: "cannot list group \(path)") }
            return buffer.dropLast().split(separator: 0, omittingEmptySubsequences: false).dropLast()
                .map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
    }

    func shape(_ path: String) throws -> [Int] {
        try Self.locked {
            var dims = [Int64](repeating: 0, count: 32)
            let rank = h5s_shape(handle, path, &dims, 32)
            guard rank >= 0 else { throw Failure(description: "cannot read the shape of \(path)") }
            return dims.prefix(Int(rank)).map(Int.init)
        }
    }

    /// A numeric dataset's elements as float32 (HDF5 converts integers and doubles).
    func floats(_ path: String) throws -> [Float] {
        let count = try shape(path).reduce(1, *)
        return try Self.locked {
            var values = [Float](repeating: 0, count: count)
            let rc = values.withUnsafeMutableBufferPointer { h5s_read_floats(handle, path, $0.baseAddress, count) }
            guard rc == 0 else { throw Failure(description: rc == -2 ? "\(path) does not hold numbers" : "cannot read \(path)") }
            return values
        }
    }
}
