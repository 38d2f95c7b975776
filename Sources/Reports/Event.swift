import Foundation

/// The few fields of TensorFlow's `Event` protobuf that scalar logging uses, encoded by hand:
///   Event{wall_time=1 double, step=2 int64, file_version=3 string, summary=5, session_log=7}
///   Summary{value=1 repeated}, Summary.Value{tag=1 string, simple_value=2 float}
///   SessionLog{status=1 enum: START=1}
public struct Event: Equatable, Sendable {
    public struct Scalar: Equatable, Sendable {
        public var tag: String
        public var value: Float
        public init(_ tag: String, _ value: Float) { (self.tag, self.value) = (tag, value) }
    }

    public var wallTime: Double
    public var step: Int
    public var fileVersion: String?
    public var scalars: [Scalar] = []
    /// SessionLog.status; 1 = START, which tells TensorBoard to drop what a crashed session
    /// wrote at or after this step.
    public var sessionStatus: Int?

    public static let sessionStart = 1

    public init(wallTime: Double, step: Int, fileVersion: String? = nil, scalars: [Scalar] = [], sessionStatus: Int? = nil) {
        (self.wallTime, self.step, self.fileVersion, self.scalars, self.sessionStatus) = (wallTime, step, fileVersion, scalars, sessionStatus)
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [0x09]
        out += withUnsafeBytes(of: wallTime.bitPattern.littleEndian, Array.init)
        if step != 0 { out.append(0x10); Self.varint(UInt64(bitPattern: Int64(step)), into: &out) }
        if let fileVersion { Self.field(3, Array(fileVersion.utf8), into: &out) }
        if !scalars.isEmpty {
            var summary: [UInt8] = []
            for scalar in scalars {
                var value: [UInt8] = []
                Self.field(1, Array(scalar.tag.utf8), into: &value)
                value.append(0x15)
                value += withUnsafeBytes(of: scalar.value.bitPattern.littleEndian, Array.init)
                Self.field(1, value, into: &summary)
            }
            Self.field(5, summary, into: &out)
        }
        if let sessionStatus {
            var log: [UInt8] = [0x08]
            Self.varint(UInt64(sessionStatus), into: &log)
            Self.field(7, log, into: &out)
        }
        return out
    }

    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    /// A length-delimited field (wire type 2).
    static func field(_ number: UInt64, _ payload: [UInt8], into out: inout [UInt8]) {
        varint(number << 3 | 2, into: &out)
        varint(UInt64(payload.count), into: &out)
        out += payload
    }
}

// MARK: - Decoding, for resuming a file and for tests

extension Event {
    struct Malformed: Error {}

    /// Reads the fields above and skips any others, as protobuf readers do.
    public init(decoding bytes: [UInt8]) throws {
        self.init(wallTime: 0, step: 0)
        for (number, value) in try Self.fields(bytes[...]) {
            switch (number, value) {
            case (1, .fixed64(let bits)): wallTime = Double(bitPattern: bits)
            case (2, .varint(let v)): step = Int(Int64(bitPattern: v))
            case (3, .bytes(let b)): fileVersion = String(decoding: b, as: UTF8.self)
            case (5, .bytes(let summary)):
                for case (1, .bytes(let value)) in try Self.fields(summary) {
                    var tag = "", number: Float = 0
                    for field in try Self.fields(value) {
                        switch field {
                        case (1, .bytes(let t)): tag = String(decoding: t, as: UTF8.self)
                        case (2, .fixed32(let bits)): number = Float(bitPattern: bits)
                        default: break
                        }
                    }
                    scalars.append(Scalar(tag, number))
                }
            case (7, .bytes(let log)):
                sessionStatus = 0
                for case (1, .varint(let status)) in try Self.fields(log) { sessionStatus = Int(status) }
            default: break
            }
        }
    }

    enum Wire { case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>), fixed32(UInt32) }

    static func fields(_ bytes: ArraySlice<UInt8>) throws -> [(UInt64, Wire)] {
        var i = bytes.startIndex
        func readVarint() throws -> UInt64 {
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < bytes.endIndex, shift < 64 else { throw Malformed() }
                let byte = bytes[i]; i += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, bytes.endIndex - i >= n else { throw Malformed() }
            defer { i += n }
            return bytes[i..<i + n]
        }
        func little(_ slice: ArraySlice<UInt8>) -> UInt64 { slice.reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        var out: [(UInt64, Wire)] = []
        while i < bytes.endIndex {
            let key = try readVarint()
            switch key & 7 {
            case 0: out.append((key >> 3, .varint(try readVarint())))
            case 1: out.append((key >> 3, .fixed64(little(try take(8)))))
            case 2: out.append((key >> 3, .bytes(try take(Int(try readVarint())))))
            case 5: out.append((key >> 3, .fixed32(UInt32(little(try take(4))))))
            default: throw Malformed()
            }
        }
        return out
    }
}
