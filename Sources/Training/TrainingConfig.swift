import NN

/// Everything that defines a training run: the one source of defaults (the command line reads
/// them from here). Recorded in summary.json and in checkpoints.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// The layers; the input shape and class count are replaced by the data's at start-up.
    public var architecture = Architecture.mnistReference
    /// nil: the embedded MNIST, wherever the binary runs from (`Dataset.defaultDirectory`).
    public var dataDirectory: String?
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
    /// A fresh start in a run directory that holds checkpoints clears it instead of refusing.
    public var overwrite = false
    /// TensorBoard, timeline and stall watchdog; optional so that configurations saved before
    /// it existed (in checkpoints) still read.
    public var observability: ObservabilitySettings?

    public init() {}

    /// The settings as the flags that set them. Those that fix which examples each step sees
    /// cannot change on resume; the others may (that is how runs are extended or fine-tuned),
    /// and a resume reports each change.
    var settings: [(flag: String, value: String, fixesOrder: Bool)] {
        [("--batch-size", "\(batchSize)", true), ("--seed", "\(seed)", true), ("--validation-split", "\(validationSplit)", true),
         ("--lr", "\(learningRate)", false), ("--epochs", "\(epochs)", false), ("--max-steps", maxSteps.map { "\($0)" } ?? "none", false),
         ("--checkpoint-every", "\(checkpointEvery)", false), ("--keep", "\(keep)", false), ("--save-best", "\(saveBest)", false)]
    }
}

/// A setting a resumed run changed: printed by rank 0 and recorded in summary.json.
public struct SettingChange: Codable, Equatable, Sendable, CustomStringConvertible {
    public var setting: String
    public var old: String
    public var new: String
    public var description: String { "\(setting) \(old) -> \(new)" }
}
