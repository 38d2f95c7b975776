#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import MPIShim

/// Runs the step's sum allreduce as MPI_Iallreduce plus an MPI_Test loop on the main thread,
/// so that MPI stays FUNNELED and rank 0 can watch the wait. When watching, every other rank
/// first sends rank 0 an arrival note carrying the collective's sequence number (the same on
/// every rank, since all ranks run the same collectives), and rank 0's StallInspector names
/// the ranks whose note has not come.
final class WatchedCollective {
    struct Watch {
        var inspector: StallInspector
        var step: () -> Int
        var warn: (String) -> Void
    }

    let rank: Int, size: Int
    var watch: Watch?
    /// Watched collectives started so far.
    private(set) var sequence: Int64 = 0
    private var latest: [Int64]

    init(rank: Int, size: Int) {
        (self.rank, self.size) = (rank, size)
        latest = Array(repeating: 0, count: size)
    }

    func run(_ start: () -> Int32) throws {
        if watch != nil {
            sequence += 1
            if rank != 0 { try MPICommunicator.check(dpt_arrival_send(sequence), "MPI_Isend") }
        }
        try MPICommunicator.check(start(), "MPI_Iallreduce")
        let began = Self.now
        var warned = false, polls = 0
        while true {
            var done: Int32 = 0
            try MPICommunicator.check(dpt_collective_test(&done), "MPI_Test")
            if done != 0 { break }
            if rank == 0, let watch {
                let waited = Self.now - began
                switch watch.inspector.verdict(waited: waited, warned: warned) {
                case .waiting: break
                case .warn:
                    warned = true
                    watch.warn(try describe(watch, waited: waited))
                case .shutdown:
                    throw CommunicatorError(try describe(watch, waited: waited) + "; ending the job (--stall-timeout)")
                }
            }
            Self.pause(polls)
            polls += 1
        }
        // Drain the notes every step, so none pile up in MPI's unexpected-message queue.
        if rank == 0, watch != nil { try poll() }
    }

    private func describe(_ watch: Watch, waited: Double) throws -> String {
        try poll()
        return watch.inspector.message(step: watch.step(), missing: StallInspector.missing(latest: latest, sequence: sequence), waited: waited)
    }

    private func poll() throws {
        try latest.withUnsafeMutableBufferPointer { try MPICommunicator.check(dpt_arrivals_poll($0.baseAddress), "MPI_Test") }
    }

    /// Yields for the first polls (the others are usually about to arrive), then sleeps 50 µs
    /// growing to 0.5 ms, so a rank waiting for a slow peer leaves the core to it.
    private static func pause(_ polls: Int) {
        guard polls >= 64 else { sched_yield(); return }
        var time = timespec(tv_sec: 0, tv_nsec: min(50_000 << min((polls - 64) / 8, 4), 500_000))
        nanosleep(&time, nil)
    }

    private static var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
