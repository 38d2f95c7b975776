/// What a run shows of itself besides its metrics files: TensorBoard scalars, a Chrome-trace
/// timeline, and the stall watchdog's times.
public struct ObservabilitySettings: Codable, Equatable, Sendable {
    /// TensorBoard train scalars every N global steps.
    public var logEvery = 50
    /// Chrome trace of every rank's step phases (nil: none).
    public var timeline: String?
    /// Seconds rank 0 waits in a step's reduction before naming the ranks that have not arrived.
    public var stallWarning = 60.0
    /// Seconds after which such a stall ends the job (nil: never).
    public var stallTimeout: Double?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case logEvery = "log_every", timeline, stallWarning = "stall_warning", stallTimeout = "stall_timeout"
    }
}

extension TrainingConfig {
    /// The settings in effect (a configuration saved before they existed has none).
    var observing: ObservabilitySettings { observability ?? ObservabilitySettings() }
}
