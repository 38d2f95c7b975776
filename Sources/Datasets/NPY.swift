import Foundation

/// A NumPy array as a `.npy` file stores it (format versions 1–3): the magic, a header that is
/// a Python dict literal (`descr`, `fortran_order`, `shape`), then the data. Held here in C order
/// and little-endian, whatever the file used.
public struct NPYArray: Sendable {
    /// NumPy's kind letter: u (unsigned), i (signed), f (float), b (bool).
    public let kind: Character
    public let itemSize: Int
    public let shape: [Int]
    public let data: [UInt8]
    /// "uint8", "float32", …
    public var dtypeName: String { kind == "b" ? "bool" : "\(["u": "uint", "i": "int", "f": "float"][kind] ?? String(kind))\(itemSize * 8)" }

    /// Parses a whole `.npy` file; `name` prefixes every message (the file, or file: entry).
    public init(bytes: [UInt8], name: String) throws(DataError) {
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw DataError("\(name): not a NumPy .npy file (bad magic \(bytes.prefix(6).map { String(format: "%02x", $0) }.joined()))")
        }
        let major = bytes[6]
        let lengthSize: Int
        switch major {
        case 1: lengthSize = 2
        case 2, 3: lengthSize = 4
        default: throw DataError("\(name): .npy format version \(major) is not one this reads (1-3)")
        }
        guard bytes.count >= 8 + lengthSize else { throw DataError("\(name): truncated .npy header") }
        let headerLength = (0..<lengthSize).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let dataStart = 8 + lengthSize + headerLength
        guard bytes.count >= dataStart else { throw DataError("\(name): truncated .npy header (\(bytes.count) bytes, the header needs \(dataStart))") }
        let header = String(decoding: bytes[(8 + lengthSize)..<dataStart], as: UTF8.self)
        let (order, kind, itemSize, fortran, shape) = try Self.parseHeader(header, name: name)
        let available = bytes.count - dataStart
        // A shape that lies can multiply past Int.max: refused, not trapped (found by scripts/fuzz).
        var expected = itemSize
        for d in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow, product <= available || d == 0 else {
                throw DataError("\(name): truncated: the header's shape \(shape) of \(kind)\(itemSize) needs more data bytes than the file's \(available)")
            }
            expected = product
        }
        guard available == expected else {
            throw DataError("\(name): \(available < expected ? "truncated" : "has trailing bytes"): the header's shape \(shape) of \(kind)\(itemSize) needs \(expected) data bytes, the file holds \(available)")
        }
        var data = Array(bytes[dataStart...])
        if order == ">" && itemSize > 1 {
            data.withUnsafeMutableBufferPointer { b in
                for start in stride(from: 0, to: b.count, by: itemSize) {
                    var (i, j) = (start, start + itemSize - 1)
                    while i < j { b.swapAt(i, j); i += 1; j -= 1 }
                }
            }
        }
        if fortran && shape.count > 1 { data = Self.fortranToC(data, shape: shape, itemSize: itemSize) }
        (self.kind, self.itemSize, self.shape, self.data) = (kind, itemSize, shape, data)
    }

    /// `{'descr': '<u1', 'fortran_order': False, 'shape': (60000, 28, 28), }`
    static func parseHeader(_ header: String, name: String) throws(DataError) -> (Character, Character, Int, Bool, [Int]) {
        func value(of key: String) -> Substring? {
            guard let range = header.range(of: "'\(key)':") ?? header.range(of: "\"\(key)\":") else { return nil }
            return header[range.upperBound...].drop { $0 == " " }
        }
        guard let descrValue = value(of: "descr"), let quote = descrValue.first, quote == "'" || quote == "\"" else {
            if value(of: "descr")?.first == "[" { throw DataError("\(name): holds a structured array; expected plain numbers") }
            throw DataError("\(name): .npy header has no dtype ('descr'): \(header.prefix(80))")
        }
        let descr = descrValue.dropFirst().prefix { $0 != quote }
        guard descr.count >= 3, let order = descr.first, "<>|=".contains(order), let kind = descr.dropFirst().first,
              let itemSize = Int(descr.dropFirst(2)), itemSize > 0 else {
            throw DataError("\(name): dtype '\(descr)' is not one this reads")
        }
        guard "uifb".contains(kind), (kind == "f" ? [4, 8] : kind == "b" ? [1] : [1, 2, 4, 8]).contains(itemSize) else {
            throw DataError("\(name): dtype '\(descr)' is not one this reads (unsigned or signed integers, float32, float64, bool)")
        }
        guard let fortranValue = value(of: "fortran_order") else { throw DataError("\(name): .npy header has no 'fortran_order'") }
        let fortran = fortranValue.hasPrefix("True")
        guard fortran || fortranValue.hasPrefix("False") else { throw DataError("\(name): .npy header's 'fortran_order' is neither True nor False") }
        guard let shapeValue = value(of: "shape"), shapeValue.first == "(", let close = shapeValue.firstIndex(of: ")") else {
            throw DataError("\(name): .npy header has no 'shape'")
        }
        var shape: [Int] = []
        for part in shapeValue[shapeValue.index(after: shapeValue.startIndex)..<close].split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if trimmed.isEmpty { continue }
            guard let d = Int(trimmed), d >= 0, d < 1 << 40 else { throw DataError("\(name): .npy shape has a bad dimension '\(trimmed)'") }
            shape.append(d)
        }
        guard shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }) < 1 << 40 else {
            throw DataError("\(name): .npy shape \(shape) is implausibly large")
        }
        return (order == "=" ? "<" : order, kind, itemSize, fortran, shape)
    }

    /// Column-major to row-major: element (i0, …, ik) is at Σ i_j·Π_{m<j} d_m in the file.
    static func fortranToC(_ data: [UInt8], shape: [Int], itemSize: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: data.count)
        var strides = [Int](repeating: itemSize, count: shape.count)
        for j in 1..<shape.count { strides[j] = strides[j - 1] * shape[j - 1] }
        var index = [Int](repeating: 0, count: shape.count)
        var source = 0
        let total = shape.reduce(1, *)
        for element in 0..<total {
            for b in 0..<itemSize { out[element * itemSize + b] = data[source + b] }
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                source += strides[d]
                if index[d] < shape[d] { break }
                source -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Element `i` as a signed integer (integer and bool kinds) or a double.
    func integer(_ i: Int) -> Int64 {
        data.withUnsafeBytes { b in
            let o = i * itemSize
            switch (kind, itemSize) {
            case ("u", 1), ("b", 1): return Int64(b[o])
            case ("i", 1): return Int64(Int8(bitPattern: b[o]))
            case ("u", 2): return Int64(b.loadUnaligned(fromByteOffset: o, as: UInt16.self))
            case ("i", 2): return Int64(b.loadUnaligned(fromByteOffset: o, as: Int16.self))
            case ("u", 4): return Int64(b.loadUnaligned(fromByteOffset: o, as: UInt32.self))
            case ("i", 4): return Int64(b.loadUnaligned(fromByteOffset: o, as: Int32.self))
            case ("u", 8): return Int64(bitPattern: b.loadUnaligned(fromByteOffset: o, as: UInt64.self))
            default: return b.loadUnaligned(fromByteOffset: o, as: Int64.self)
            }
        }
    }

    func double(_ i: Int) -> Double {
        guard kind == "f" else { return Double(integer(i)) }
        return data.withUnsafeBytes { b in
            itemSize == 4 ? Double(b.loadUnaligned(fromByteOffset: i * 4, as: Float.self)) : b.loadUnaligned(fromByteOffset: i * 8, as: Double.self)
        }
    }
}
