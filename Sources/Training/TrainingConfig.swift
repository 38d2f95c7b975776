import NN

/// Everything that defines a training run. Recorded in summary.json and in checkpoints.
public struct TrainingConfig: Codable, Equatable, Sendable {
    public var architecture = Architecture.mnistReference
    public var dataDirectory = "data/mnist"
    public var epochs = 5
    public var batchSize = 100
    public var learningRate: Float = 0.01
    public var momentum: Float = 0
    public var seed: UInt64 = 1
    public var validationSplit = 0.0
    public var maxSteps: Int?
    public var threads: Int?
    public var runDirectory = ""
    public var initModel: String?
    /// Write a checkpoint every N global steps (0: only at epoch ends).
    public var checkpointEvery = 0
    /// Checkpoints kept besides the best one.
    public var keep = 3
    public var saveBest = false
    /// "auto", a file path, or nil for a fresh start.
    public var resume: String?

    public init() {}
}
