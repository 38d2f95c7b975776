import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The few POSIX calls the writers need; errors name the file and say why.
enum FileIO {
    static func reason() -> String { String(cString: strerror(errno)) }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw ReportError("\(path): cannot write (\(reason()))") }
                written += n
            }
        }
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReportError("\(path): cannot read (\(FileManager.default.fileExists(atPath: path) ? "permission or I/O error" : "no such file"))")
        }
        return [UInt8](data)
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer)
        return name.isEmpty ? "localhost" : name
    }
}
