import Collectives
import Foundation

/// What every rank does for observability besides the step: the host names, the clock the
/// timeline shares, the stall watchdog on the step's reduction, the timeline's per-step
/// gathering and the per-rank step times of the record. Kept apart from the Trainer so that
/// the step loop holds one call per event.
final class RunObservation {
    let comm: Communicator
    let settings: ObservabilitySettings
    /// Host name of each rank, gathered once at start-up.
    let hosts: [String]
    let timeline: Timeline?
    /// Step times count from here: the end of the last start-up collective on each rank.
    private(set) var origin = MonotonicClock.now
    private var epochTimes = StepTimeTotals(), runTimes = StepTimeTotals()

    /// A collective (the host names).
    init(comm: Communicator, settings: ObservabilitySettings) throws {
        (self.comm, self.settings) = (comm, settings)
        hosts = try comm.hostNames()
        timeline = settings.timeline.map { Timeline(path: $0, comm: comm) }
    }

    /// After start-up: watch every step's reduction from here on. `step` names the step a
    /// reduction belongs to.
    func start(step: @escaping () -> Int) throws {
        let inspector = StallInspector(warning: settings.stallWarning, shutdown: settings.stallTimeout, hosts: hosts)
        try comm.watchStalls(inspector, step: step) { message in
            FileHandle.standardError.write(Data("dptrain: warning: stall: \(message)\n".utf8))
        }
        origin = MonotonicClock.now
    }

    /// Every rank, after each step (a collective on the steps the timeline keeps).
    func stepEnded(globalStep: Int, _ timings: StepTimings) throws {
        epochTimes.add(timings)
        runTimes.add(timings)
        try timeline?.record(step: globalStep, timings)
    }

    /// Every rank at an epoch end (a collective): the ranks' step and reduction times.
    func epochEnded(_ row: inout EpochMetrics) throws {
        row.rankTimes = try epochTimes.gather(comm, hosts: hosts)
        row.slowestRank = row.rankTimes.flatMap(RankTime.slowest)
        epochTimes = StepTimeTotals()
    }

    /// Every rank at the end (a collective): the same over the whole run.
    func runFinished(_ summary: inout RunSummary) throws {
        summary.rankTimes = try runTimes.gather(comm, hosts: hosts)
        summary.slowestRank = summary.rankTimes.flatMap(RankTime.slowest)
    }
}
