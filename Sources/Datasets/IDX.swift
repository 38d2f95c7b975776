import Foundation

/// A problem with an input file; its description is the one line the user sees.
public struct DataError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An IDX file (LeCun's format): magic 0x0000 08 NN (unsigned bytes, NN dimensions), big-endian
/// UInt32 sizes, then the data.
public struct IDXFile {
    public let dimensions: [Int]
    public let bytes: [UInt8]
    /// SHA-256 of the raw (uncompressed) file: the same for every copy, however it was gzipped.
    public let sha256: String

    /// Reads a raw or gzipped file and checks its header against its length.
    public init(path: String) throws(DataError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw DataError("\(path): \(exists ? "cannot be read" : "no such file")")
        }
        var raw = [UInt8](data)
        if Gzip.isGzip(raw) {
            do { raw = try Gzip.decompress(raw) } catch { throw DataError("\(path): \(error.description)") }
        }
        try self.init(raw: raw, name: path)
    }

    public init(raw: consuming [UInt8], name: String) throws(DataError) {
        guard raw.count >= 4 else { throw DataError("\(name): too short for an IDX header (\(raw.count) bytes)") }
        guard raw[0] == 0, raw[1] == 0, raw[2] == 0x08, (1...4).contains(raw[3]) else {
            let magic = raw.prefix(4).map { String(format: "%02x", $0) }.joined()
            throw DataError("\(name): not an unsigned-byte IDX file (magic 0x\(magic), expected 0x000008 followed by 01-04)")
        }
        let rank = Int(raw[3])
        let headerLength = 4 + 4 * rank
        guard raw.count >= headerLength else { throw DataError("\(name): truncated IDX header") }
        var dimensions: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dimensions.append(Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3]))
        }
        // Sizes up to 2^32 each: their product can overflow Int (found by scripts/fuzz), so it
        // is bounded in floating point first; below 2^62 (or with a zero) it fits.
        let size = dimensions.reduce(1.0) { $0 * Double($1) }
        guard size < 0x1p62 || dimensions.contains(0) else {
            throw DataError("\(name): truncated: \(raw.count) bytes where the header \(dimensions) needs \(String(format: "%.3g", size))")
        }
        let expected = headerLength + (dimensions.contains(0) ? 0 : dimensions.reduce(1, *))
        guard raw.count == expected else {
            throw DataError("\(name): \(raw.count < expected ? "truncated" : "has trailing bytes"): \(raw.count) bytes where the header \(dimensions) needs \(expected)")
        }
        self.dimensions = dimensions
        self.sha256 = SHA256.hex(raw)
        raw.removeFirst(headerLength)  // in place: no second copy of 47 MB
        self.bytes = raw
    }
}
