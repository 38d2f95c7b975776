import SystemZlib

/// Gunzips a whole buffer. Foundation on Linux cannot, so this is zlib's inflate.
enum Gzip {
    static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

    /// Throws a short reason ("truncated", "corrupt: ...") that the caller prefixes with the path.
    static func decompress(_ input: [UInt8]) throws(DataError) -> [UInt8] {
        // The gzip trailer's last 4 bytes hold the size mod 2^32: allocate once, not by doubling,
        // unless a damaged trailer claims an implausible size.
        let trailerSize = input.count >= 4 ? input.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) } + 1 : 0
        let sizeHint = trailerSize <= input.count * 16 ? trailerSize : input.count * 4
        var stream = z_stream()
        // inflateInit2 is a macro; windowBits 15 + 32 auto-detects the gzip header.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: max(sizeHint, 1024))
        var produced = 0
        var status: Int32 = Z_OK
        input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            while status == Z_OK {
                if produced == output.count { output.append(contentsOf: repeatElement(0, count: output.count)) }
                output.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress! + produced
                    stream.avail_out = UInt32(min(outBuf.count - produced, Int(UInt32.max)))
                    let before = Int(stream.avail_out)
                    status = inflate(&stream, Z_NO_FLUSH)
                    produced += before - Int(stream.avail_out)
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 { break }
            }
        }
        switch status {
        case Z_STREAM_END:
            output.removeSubrange(produced...)
            return output
        case Z_BUF_ERROR:
            throw DataError("gzip stream is truncated")
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw DataError("gzip data is corrupt (\(message))")
        }
    }
}
