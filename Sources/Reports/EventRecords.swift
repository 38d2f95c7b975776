/// TFRecord framing: uint64 LE length, masked CRC-32C of those 8 bytes, the data, masked
/// CRC-32C of the data (all little-endian).
public enum EventRecords {
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
        return length + le32(CRC32C.masked(length)) + data + le32(CRC32C.masked(data))
    }

    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    /// One record found in a file: its data and where it ends.
    public struct Record {
        public var data: [UInt8]
        public var end: Int
    }

    /// The records of `bytes` up to the first torn or corrupt one; `validEnd` is where the good
    /// prefix stops (a killed writer can leave half a record at the end).
    public static func scan(_ bytes: [UInt8]) -> (records: [Record], validEnd: Int) {
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        var records: [Record] = []
        var offset = 0
        while bytes.count - offset >= 12 {
            let header = Array(bytes[offset..<offset + 8])
            guard CRC32C.masked(header) == u32(offset + 8) else { break }
            let length = header.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard length <= UInt64(bytes.count - offset - 16) else { break }
            let start = offset + 12, end = start + Int(length)
            let data = Array(bytes[start..<end])
            guard CRC32C.masked(data) == u32(end) else { break }
            offset = end + 4
            records.append(Record(data: data, end: offset))
        }
        return (records, offset)
    }
}
