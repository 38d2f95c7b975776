#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A run directory belongs to one run at a time: rank 0 holds an advisory `flock` on
/// `<run dir>/dptrain.lock` for the run's life, with its host and pid written in the file. The
/// kernel drops the lock when the process ends in any way (kill -9 included), so a stale file
/// never blocks the next run; the file itself is left in place.
final class RunLock {
    static let fileName = "dptrain.lock"
    private let descriptor: Int32

    /// Takes the lock of `run` or throws one line naming the directory and the holder.
    init(_ run: RunDirectory) throws {
        let path = run.file(Self.fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainingError("\(path): cannot be opened to lock the run directory (\(String(cString: strerror(errno))))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            let holder = Self.holder(fd)
            close(fd)
            guard busy else { throw TrainingError("\(path): cannot be locked (\(reason))") }
            throw TrainingError("\(run.path): is in use by another run (\(holder ?? "its holder has not written its name yet")); wait for it to end or choose another --run-dir")
        }
        descriptor = fd
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let text = "host \(String(cString: name)) pid \(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { close(descriptor) }

    /// "host node7 pid 4242", as the holder wrote it.
    private static func holder(_ fd: Int32) -> String? {
        var bytes = [UInt8](repeating: 0, count: 512)
        let count = pread(fd, &bytes, bytes.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}
