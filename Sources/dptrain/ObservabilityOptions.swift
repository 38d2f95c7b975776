import ArgumentParser
import Training

/// Flags for seeing what a job does: TensorBoard's step interval, a timeline, the stall watchdog.
struct ObservabilityOptions: ParsableArguments {
    private static let defaults = ObservabilitySettings()

    @Option(help: "TensorBoard train scalars every N global steps (events file in the run directory).")
    var logEvery = defaults.logEvery

    @Option(help: "Write a Chrome trace (Perfetto, chrome://tracing) of every rank's step phases to FILE.")
    var timeline: String?

    @Option(help: "Seconds rank 0 waits in a step's reduction before naming the ranks that have not arrived.")
    var stallWarning = defaults.stallWarning

    @Option(help: "Seconds of such a stall after which the whole job ends with status 1 (default: never).")
    var stallTimeout: Double?

    func validate() throws {
        guard logEvery >= 1 else { throw ValidationError("--log-every: must be at least 1, got \(logEvery)") }
        guard stallWarning > 0, stallWarning.isFinite else {
            throw ValidationError("--stall-warning: must be a positive number of seconds, got \(stallWarning)")
        }
        if let stallTimeout, !(stallTimeout > 0 && stallTimeout.isFinite) {
            throw ValidationError("--stall-timeout: must be a positive number of seconds, got \(stallTimeout)")
        }
        if timeline?.isEmpty == true { throw ValidationError("--timeline: needs a file name") }
    }

    var settings: ObservabilitySettings {
        var settings = ObservabilitySettings()
        (settings.logEvery, settings.timeline) = (logEvery, timeline)
        (settings.stallWarning, settings.stallTimeout) = (stallWarning, stallTimeout)
        return settings
    }
}
