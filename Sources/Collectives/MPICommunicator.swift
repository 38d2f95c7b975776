import MPIShim

/// MPI world communicator over the C shim. Errors come back as return codes
/// (MPI_ERRORS_RETURN) and are thrown with MPI's own text.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int

    /// Initialises MPI. Without a launcher this makes a one-rank world (singleton).
    public init() throws {
        var rank: Int32 = 0, size: Int32 = 1, localRank: Int32 = 0, localSize: Int32 = 1
        try MPICommunicator.check(dpt_init(&rank, &size, &localRank, &localSize), "MPI_Init")
        self.rank = Int(rank)
        self.size = Int(size)
        self.localRank = Int(localRank)
        self.localSize = Int(localSize)
    }

    /// The MPI library linked in, as it names itself ("Open MPI v4.1.4, …", "MPICH Version: 4.0.2").
    public static var libraryVersion: String {
        var text = [CChar](repeating: 0, count: 512)
        dpt_library_version(&text, Int32(text.count))
        return String(cString: text)
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try watched.run { dpt_start_sum_floats(base, buffer.count, $0) }
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int32>) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try watched.run { dpt_start_sum_int32s(base, buffer.count, $0) }
    }

    public func startSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try watched.start { dpt_start_sum_floats(buffer.baseAddress, buffer.count, $0) }
    }

    public func startSum(_ buffer: UnsafeMutableBufferPointer<Int32>) throws {
        try watched.start { dpt_start_sum_int32s(buffer.baseAddress, buffer.count, $0) }
    }

    public func progressSums() throws -> Int { try watched.progress() }

    public func waitSums() throws { try watched.wait() }

    public func allgather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: bytes.count * size)
        let rc = bytes.withUnsafeBytes { mine in all.withUnsafeMutableBytes { dpt_allgather_bytes(mine.baseAddress, Int32(bytes.count), $0.baseAddress) } }
        try Self.check(rc, "MPI_Allgather")
        return (0..<size).map { Array(all[($0 * bytes.count)..<(($0 + 1) * bytes.count)]) }
    }

    public func watchStalls(_ inspector: StallInspector, step: @escaping () -> Int, warn: @escaping (String) -> Void) throws {
        try Self.check(dpt_notes_open(), "MPI_Irecv")
        watched.watch = WatchedCollective.Watch(inspector: inspector, step: step, warn: warn)
    }

    private lazy var watched = WatchedCollective(rank: rank, size: size)

    public func allreduce(_ values: inout [Double], _ op: ReduceOp) throws {
        let cOp: dpt_op = switch op {
        case .sum: DPT_SUM
        case .max: DPT_MAX
        case .min: DPT_MIN
        }
        let count = Int32(values.count)
        let rc = values.withUnsafeMutableBufferPointer { dpt_allreduce_doubles($0.baseAddress, count, cOp) }
        try Self.check(rc, "MPI_Allreduce")
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try Self.check(dpt_broadcast(base, buffer.count, Int32(root)), "MPI_Bcast")
    }

    public func abort(code: Int32) -> Never {
        // The line this rank just wrote must reach the user before the launcher tears the job
        // down: MPICH's Hydra can drop a proxy's last output when MPI_Abort comes right after it.
        usleep(200_000)
        dpt_abort(code)
        exit(code)  // MPI_Abort does not return; this satisfies the type checker.
    }

    public func finalize() {
        guard dpt_is_active() != 0 else { return }
        if watched.watch != nil { _ = dpt_notes_close(watched.sequence) }
        _ = dpt_finalize()
    }

    static func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)
        dpt_error_string(code, &text, Int32(text.count))
        throw CommunicatorError("\(call) failed: \(String(cString: text))")
    }
}

#if canImport(Glibc)
import Glibc
#endif
