/// Horovod's stall inspector, for the step's collective: rank 0 times how long it has waited in
/// the watched allreduce and, past `warning` seconds, names the ranks that have not arrived
/// (from the arrival notes each rank sends before entering); past `shutdown` seconds the job
/// is ended. The clock starts when rank 0 itself enters, so work rank 0 does alone (checkpoints,
/// evaluation) never counts as a stall of the others.
public struct StallInspector: Sendable, Equatable {
    public var warning: Double
    /// nil: wait forever (Horovod's default).
    public var shutdown: Double?
    /// Host name of each rank, gathered once at start-up.
    public var hosts: [String]

    public init(warning: Double, shutdown: Double?, hosts: [String]) {
        (self.warning, self.shutdown, self.hosts) = (warning, shutdown, hosts)
    }

    public enum Verdict: Equatable, Sendable { case waiting, warn, shutdown }

    /// What to do after `waited` seconds in one collective; a warning is given once.
    public func verdict(waited: Double, warned: Bool) -> Verdict {
        if let shutdown, waited >= shutdown { return .shutdown }
        return waited >= warning && !warned ? .warn : .waiting
    }

    /// Ranks whose newest arrival note is older than `sequence` (rank 0 is the one asking).
    public static func missing(latest: [Int64], sequence: Int64) -> [Int] {
        latest.indices.dropFirst().filter { latest[$0] < sequence }
    }

    /// One line naming the missing ranks, their hosts and the step.
    public func message(step: Int, missing: [Int], waited: Double) -> String {
        let seconds = String(Int(waited.rounded(.down)))
        guard !missing.isEmpty else {
            return "step \(step): the gradient reduction has waited \(seconds)s although every rank has arrived"
        }
        let names = missing.map { "\($0) (\($0 < hosts.count ? hosts[$0] : "unknown host"))" }.joined(separator: ", ")
        let noun = missing.count == 1 ? "rank" : "ranks"
        return "step \(step): waited \(seconds)s in the gradient reduction for \(noun) \(names), which did not arrive"
    }
}
