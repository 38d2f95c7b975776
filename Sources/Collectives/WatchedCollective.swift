#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import MPIShim

/// Runs the step's sum allreduces (one per bucket, several in flight) as MPI_Iallreduce plus
/// MPI_Test on the main thread, so that MPI stays FUNNELED and rank 0 can watch the wait. When watching, every other rank
/// first sends rank 0 an "arrived" note carrying the collective's sequence number (the same on
/// every rank, since all ranks run the same collectives) and, while it waits, the same note
/// every heartbeat; rank 0's StallInspector names the ranks that did not arrive or fell silent.
/// Rank 0 sends every peer the same notes, so that with a shutdown time each peer also ends the
/// job when rank 0 itself is silent that long (stopped, or its node gone quiet): the watchdog
/// has no single point that can hang it.
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
    /// Rank 0: each peer's newest note, how many notes came, and when the last one came.
    private var latest: [Int64], received: [Int64], lastHeard: [Double]
    /// A peer: rank 0's newest note and how many came.
    private var rootLatest: Int64 = 0, rootReceived: Int64 = 0

    init(rank: Int, size: Int) {
        (self.rank, self.size) = (rank, size)
        (latest, received, lastHeard) = (Array(repeating: 0, count: size), Array(repeating: 0, count: size), Array(repeating: 0, count: size))
    }

    /// The sums started and not yet completed, oldest first: their shim slot, sequence number
    /// and when this rank started them. The watchdog watches the oldest.
    private var inFlight: [(slot: Int32, sequence: Int64, began: Double)] = []
    /// Sums started since the last `wait`, and how many of them (a prefix) have completed.
    private var started = 0, completed = 0
    private var nextSlot: Int32 = 0
    private var lastBeat = 0.0, lastPoll = 0.0, lastLoop = 0.0
    /// A peer: when rank 0 was last heard from (or this rank arrived).
    private var rootHeard = 0.0
    /// The sequence number a warning was given for (once per collective).
    private var warnedSequence: Int64 = -1

    /// Starts one sum: `start` gets the shim slot to use. Sums complete in the order started.
    func start(_ start: (Int32) -> Int32) throws {
        guard inFlight.count < Int(DPT_MAX_COLLECTIVES) else { throw CommunicatorError("more than \(DPT_MAX_COLLECTIVES) sums in flight") }
        if watch != nil {
            sequence += 1
            try send(must: true)
        }
        let slot = nextSlot
        nextSlot = (nextSlot + 1) % Int32(DPT_MAX_COLLECTIVES)
        try MPICommunicator.check(start(slot), "MPI_Iallreduce")
        let now = Self.now
        if inFlight.isEmpty { (lastBeat, lastPoll, lastLoop, rootHeard) = (now, now, now, now) } else { discountAbsence(now) }
        inFlight.append((slot, sequence, now))
        started += 1
    }

    /// Drives the sums in flight once (and the watchdog on the oldest), without waiting: the
    /// number of sums started since the last `wait` that have completed, in start order.
    func progress() throws -> Int {
        while let oldest = inFlight.first {
            var done: Int32 = 0
            try MPICommunicator.check(dpt_sum_test(oldest.slot, &done), "MPI_Test")
            guard done != 0 else { break }
            inFlight.removeFirst()
            completed += 1
        }
        // The later ones need testing too: a non-blocking collective progresses when tested.
        for entry in inFlight.dropFirst() {
            var done: Int32 = 0
            try MPICommunicator.check(dpt_sum_test(entry.slot, &done), "MPI_Test")
        }
        guard !inFlight.isEmpty else {
            // Drain the notes, so none pile up in MPI's unexpected-message queue.
            if watch != nil { if rank == 0 { try poll() } else { _ = try pollRoot() } }
            return completed
        }
        guard let watch else { return completed }
        let now = Self.now, beat = watch.inspector.heartbeat
        discountAbsence(now)
        // Read after the discount: a copy taken before it timed rank 0's own stop as the others' stall.
        let oldest = inFlight[0]
        if now - lastBeat >= beat {
            try send(must: false)
            lastBeat = now
        }
        if now - lastPoll >= beat / 2 {
            if rank == 0 {
                try poll()
            } else if try pollRoot() {
                rootHeard = now
            }
            lastPoll = now
        }
        // Rank 1 speaks first; the others a second later, by when it has usually ended the job.
        if rank != 0, let shutdown = watch.inspector.shutdown, now - rootHeard >= shutdown + (rank == 1 ? 0 : 1) {
            let arrived = rootLatest >= oldest.sequence
            let line = watch.inspector.message(step: watch.step(), missing: arrived ? [] : [0], silent: arrived ? [0] : [], waited: now - rootHeard)
            throw CommunicatorError("stall: \(line); ending the job (--stall-timeout)")
        }
        if rank == 0 {
            let waited = now - oldest.began
            switch watch.inspector.verdict(waited: waited, warned: warnedSequence == oldest.sequence) {
            case .waiting: break
            case .warn:
                // As Horovod's inspector, a warning names the ranks that hold the sum up. With every
                // rank arrived and heard from there is no one to name (rank 0 itself was away, as when
                // stopped inside the sum): no warning; --stall-timeout still ends a sum that never ends.
                let (missing, silent) = try blame(watch, sequence: oldest.sequence)
                guard !missing.isEmpty || !silent.isEmpty else { break }
                warnedSequence = oldest.sequence
                watch.warn(watch.inspector.message(step: watch.step(), missing: missing, silent: silent, waited: waited))
            case .shutdown:
                throw CommunicatorError("stall: " + (try describe(watch, waited: waited, sequence: oldest.sequence)) + "; ending the job (--stall-timeout)")
            }
        }
        return completed
    }

    /// Drives the sums in flight until all have completed.
    func wait() throws {
        let began = Self.now
        var sleeps = 0
        while try progress() < started {
            if Self.now - began < Self.spin { sched_yield(); continue }
            Self.sleep(sleeps)
            sleeps += 1
        }
        (started, completed) = (0, 0)
    }

    /// One sum, started and waited for.
    func run(_ start: (Int32) -> Int32) throws {
        precondition(inFlight.isEmpty, "a blocking sum while bucket sums are in flight")
        try self.start(start)
        try wait()
    }

    /// Time this rank itself did not run (stopped, starved) is nobody else's stall: a gap since
    /// the last look longer than `absence` moves the clocks of the sums in flight past it.
    private func discountAbsence(_ now: Double) {
        if now - lastLoop > Self.absence {
            for i in inFlight.indices { inFlight[i].began += now - lastLoop }
            rootHeard += now - lastLoop
        }
        lastLoop = now
    }

    /// "Arrived at this collective" (`must`) or "still here": rank 0 to every peer, a peer to rank 0.
    private func send(must: Bool) throws {
        let rc = rank == 0 ? dpt_root_note_send(sequence, must ? 1 : 0) : dpt_note_send(sequence, must ? 1 : 0)
        try MPICommunicator.check(rc, "MPI_Isend")
    }

    /// A peer: takes in rank 0's notes; true when any came.
    private func pollRoot() throws -> Bool {
        let before = rootReceived
        try MPICommunicator.check(dpt_root_notes_poll(&rootLatest, &rootReceived), "MPI_Test")
        return rootReceived != before
    }

    /// The ranks that did not arrive at sum `sequence`, and those that arrived but fell silent.
    private func blame(_ watch: Watch, sequence: Int64) throws -> (missing: [Int], silent: [Int]) {
        try poll()
        return (StallInspector.missing(latest: latest, sequence: sequence),
                watch.inspector.silent(latest: latest, sequence: sequence, lastHeard: lastHeard, now: Self.now))
    }

    private func describe(_ watch: Watch, waited: Double, sequence: Int64) throws -> String {
        let (missing, silent) = try blame(watch, sequence: sequence)
        return watch.inspector.message(step: watch.step(), missing: missing, silent: silent, waited: waited)
    }

    /// Rank 0: takes in the notes that came, and notes when each peer was last heard from.
    private func poll() throws {
        let before = received
        let rc = latest.withUnsafeMutableBufferPointer { latest in
            received.withUnsafeMutableBufferPointer { dpt_notes_poll(latest.baseAddress, $0.baseAddress) }
        }
        try MPICommunicator.check(rc, "MPI_Test")
        let now = Self.now
        for peer in 1..<size where received[peer] != before[peer] { lastHeard[peer] = now }
    }

    /// How long a wait only yields between polls: ranks a step apart are usually about to
    /// arrive, and a sleep then ends late (at np=2 on two cores the sleeps left a median 0.68 ms
    /// of the reference model's 5-6 ms step in the reduction; yielding, 0.28 ms).
    private static let spin = 0.001

    /// After `spin`: sleeps 25 µs growing to 0.2 ms, so a rank waiting for a slow peer (an
    /// evaluation, a checkpoint, more ranks than cores) leaves the core to it.
    private static func sleep(_ sleeps: Int) {
        var time = timespec(tv_sec: 0, tv_nsec: min(25_000 << min(sleeps / 8, 3), 200_000))
        nanosleep(&time, nil)
    }

    /// A gap between two polls longer than this means this rank was not running.
    private static let absence = 0.5

    private static var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
