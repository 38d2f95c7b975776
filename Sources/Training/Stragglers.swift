import Collectives

/// One rank's share of an epoch (or of the run): how long its steps took on average and how
/// long it spent in the step's reduction, which is mostly waiting for slower ranks. The rank
/// that waits least is the one the others wait for.
public struct RankTime: Codable, Equatable, Sendable {
    public var rank: Int
    public var host: String
    public var meanStepSeconds: Double
    public var reductionSeconds: Double

    enum CodingKeys: String, CodingKey {
        case rank, host, meanStepSeconds = "mean_step_seconds", reductionSeconds = "reduction_seconds"
    }

    /// The slowest rank: every rank runs the same steps, so the one that spent least time in
    /// the reduction is the one the others waited for (ties: the lowest rank).
    public static func slowest(_ times: [RankTime]) -> Int? {
        times.min { $0.reductionSeconds < $1.reductionSeconds }?.rank
    }
}

/// Sums of this rank's step timings, compared across ranks by one small allreduce.
struct StepTimeTotals {
    private(set) var steps = 0
    private var seconds = 0.0, reduceSeconds = 0.0

    mutating func add(_ t: StepTimings) {
        steps += 1
        (seconds, reduceSeconds) = (seconds + t.total, reduceSeconds + t.reduce)
    }

    /// Every rank's mean step time and total reduction time (a collective).
    func gather(_ comm: Communicator, hosts: [String]) throws -> [RankTime] {
        var values = [Double](repeating: 0, count: 2 * comm.size)
        (values[2 * comm.rank], values[2 * comm.rank + 1]) = (seconds / Double(max(steps, 1)), reduceSeconds)
        try comm.allreduce(&values, .sum)
        return (0..<comm.size).map {
            RankTime(rank: $0, host: $0 < hosts.count ? hosts[$0] : "", meanStepSeconds: values[2 * $0], reductionSeconds: values[2 * $0 + 1])
        }
    }
}
