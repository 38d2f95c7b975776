/// Horovod's stall inspector, for the step's collective: rank 0 times how long it has waited in
/// the watched allreduce and, past `warning` seconds, names the ranks that hold it up; past
/// `shutdown` seconds the job is ended. A rank holds it up when it has not arrived (its
/// "arrived" note for this collective has not come) or when it arrived but fell silent (the
/// ranks that wait send a note every `heartbeat` seconds; a rank stopped inside the collective
/// stops sending, and a non-blocking collective needs every rank to drive it).
/// The clock starts when rank 0 itself enters, so work rank 0 does alone (checkpoints,
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

    /// How often a waiting rank says it is still there.
    public var heartbeat: Double { min(warning / 4, 5) }

    public enum Verdict: Equatable, Sendable { case waiting, warn, shutdown }

    /// What to do after `waited` seconds in one collective; a warning is given once.
    public func verdict(waited: Double, warned: Bool) -> Verdict {
        if let shutdown, waited >= shutdown { return .shutdown }
        return waited >= warning && !warned ? .warn : .waiting
    }

    /// Ranks whose newest note is older than `sequence` (rank 0 is the one asking).
    public static func missing(latest: [Int64], sequence: Int64) -> [Int] {
        latest.indices.dropFirst().filter { latest[$0] < sequence }
    }

    /// Ranks that arrived but have sent nothing for two heartbeats, given when rank 0 last heard each.
    public func silent(latest: [Int64], sequence: Int64, lastHeard: [Double], now: Double) -> [Int] {
        latest.indices.dropFirst().filter { latest[$0] >= sequence && now - lastHeard[$0] > 2 * heartbeat }
    }

    /// One line naming the ranks that hold the step up, their hosts and the step.
    public func message(step: Int, missing: [Int], silent: [Int], waited: Double) -> String {
        func names(_ ranks: [Int]) -> String {
            (ranks.count == 1 ? "rank " : "ranks ") + ranks.map { "\($0) (\($0 < hosts.count ? hosts[$0] : "unknown host"))" }.joined(separator: ", ")
        }
        var line = "step \(step): waited \(Int(waited.rounded(.down)))s in the gradient reduction"
        var parts: [String] = []
        if !missing.isEmpty { parts.append("for \(names(missing)), which did not arrive") }
        if !silent.isEmpty { parts.append("\(parts.isEmpty ? "for " : "and ")\(names(silent)), which arrived but fell silent") }
        if parts.isEmpty { parts.append("although every rank arrived and is still there") }
        line += " " + parts.joined(separator: " ")
        return line
    }
}
