import Collectives
import Reports

/// --timeline: every rank's phases of the steps the TraceWindow keeps, brought to rank 0 by one
/// allreduce of doubles on those steps only (every rank decides alike from the step number),
/// and written as a Chrome trace at epoch ends and when the run ends or stops.
/// Rank 0 splits each rank's reduction into waiting and reducing: the reduction itself can
/// only begin once the last rank has arrived. With buckets, each bucket's sum (start to
/// completion, mostly during the backward pass) is on the rank's second track; the phases'
/// "reduction" is what is left after the backward pass.
final class Timeline: TrainingObserver {
    static let phases = ["data", "forward", "backward", "reduction-wait", "reduction", "update"]
    /// What each rank sends: its step start and the five measured durations.
    private static let slot = 6
    private let comm: Communicator
    private var writer: TraceWriter

    init(path: String, comm: Communicator, window: TraceWindow = TraceWindow()) {
        self.comm = comm
        writer = TraceWriter(path: path, ranks: comm.size, window: window)
    }

    /// Every rank, after each step (a collective on the kept steps).
    func record(step: Int, _ t: StepTimings) throws {
        guard writer.records(step: step) else { return }
        // Then each bucket's start and end (every rank has the same buckets).
        let slot = Self.slot + 2 * t.buckets.count
        var values = [Double](repeating: 0, count: slot * comm.size)
        let mine = [t.start, t.data, t.forward, t.backward, t.reduce, t.update] + t.buckets.flatMap { [$0.start, $0.end] }
        values.replaceSubrange((comm.rank * slot)..<((comm.rank + 1) * slot), with: mine)
        try comm.allreduce(&values, .sum)
        guard comm.isRoot else { return }
        let ranks = (0..<comm.size).map { Array(values[($0 * slot)..<(($0 + 1) * slot)]) }
        let arrivals = ranks.map { $0[0] + $0[1] + $0[2] + $0[3] }
        let lastArrival = arrivals.max() ?? 0
        for (rank, v) in ranks.enumerated() {
            let wait = min(max(lastArrival - arrivals[rank], 0), v[4])
            let durations = zip(Self.phases, [v[1], v[2], v[3], wait, v[4] - wait, v[5]]).map { (name: $0.0, seconds: $0.1) }
            writer.append(rank: rank, step: step, phases: TracePhase.consecutive(from: v[0], durations))
            if t.buckets.count > 1 {
                writer.append(rank: rank, step: step, buckets: t.buckets.indices.map {
                    TracePhase("bucket \($0)", start: v[Self.slot + 2 * $0], duration: v[Self.slot + 2 * $0 + 1] - v[Self.slot + 2 * $0])
                })
            }
        }
    }

    func epochEnded(_ row: EpochMetrics, finished: Bool) throws { try writer.write() }
    func runStopped(step: Int) throws { try writer.write() }
    func runFinished(_ summary: RunSummary) throws { try writer.write() }
}
