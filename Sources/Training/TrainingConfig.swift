import Datasets
import Foundation
import NN

/// Everything that defines a training run: the one source of defaults (the command line reads
/// them from here). Recorded in summary.json and in checkpoints.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// The layers. A model from the model flags takes the data's input shape and class count
    /// at start-up; a model from a file (`modelFile`) must agree with the data.
    public var model = Architecture.mnistReference.graph()
    /// The Keras file the model came from (`--model`); nil: the model flags.
    public var modelFile: String?
    /// nil: the embedded MNIST, wherever the binary runs from (`Dataset.defaultDirectory`).
    public var dataDirectory: String?
    /// How the data is read (format, colour mode, image size, classes, cache); nil: the defaults.
    public var dataLoading: DataLoading?
    public var epochs = 5
    /// The global batch. With `perRankBatch` it is set at start-up to perRankBatch × ranks.
    public var batchSize = 100
    /// Weak scaling: a fixed batch per rank (Horovod's convention) instead of a fixed global batch.
    public var perRankBatch: Int?
    /// The base learning rate; nil: the optimizer's Keras default (0.01 for SGD, 0.001 others).
    public var learningRate: Float?
    /// With `perRankBatch`: how the base rate follows the global batch (reference: one rank).
    public var lrScaling = LearningRateScaling.none
    public var optimizer = OptimizerSettings(kind: .sgd)
    public var lrSchedule = Schedule.Kind.constant
    public var warmupEpochs = 0.0
    public var lrStepFactor = 0.1
    /// nil: `Schedule.defaultStepEpochs`.
    public var lrStepEpochs: [Int]?
    public var lrDecayRate = 0.9
    public var lrAlpha = 0.0
    /// Keras EarlyStopping on val_loss: stop after this many epochs without improvement.
    public var earlyStopping: Int?
    /// With early stopping: end with the weights of the best epoch (Keras's restore_best_weights).
    public var restoreBestWeights = false
    public var reduction = ReductionKind.exact
    /// What the conv and dense layers multiply in (`--precision`); nil: fp32 (configurations
    /// saved before it existed).
    public var precision: Precision?
    /// Examples per micro-shard of the exact reduction: the unit whose gradient is computed
    /// whole by one worker, so the result is the same at any rank and thread count.
    public var shardSize = 10
    /// Reduce the gradient in buckets while the backward pass runs (nil: yes), each about
    /// `bucketMB` MB (nil: `BucketPlan.defaultMB`). Optional so that configurations saved
    /// before they existed still read; neither changes the exact reduction's bits.
    public var overlap: Bool?
    public var bucketMB: Double?
    /// Measured: README, "Overlapping the reduction".
    public static let defaultBucketMB = 1.0
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

    public var computePrecision: Precision { precision ?? .fp32 }

    /// The learning rate given, or the optimizer's default.
    public var baseLearningRate: Float { learningRate ?? optimizer.kind.defaultLearningRate }

    /// The schedule of a run with `stepsPerEpoch` steps per epoch, from the base rate scaled
    /// for the global batch (weak scaling); throws the first bad setting.
    func schedule(stepsPerEpoch: Int, ranks: Int) throws -> Schedule {
        let rate = perRankBatch == nil ? baseLearningRate : lrScaling.scaled(baseLearningRate, ranks: ranks)
        var schedule = Schedule(kind: lrSchedule, baseRate: rate, stepsPerEpoch: stepsPerEpoch, epochs: epochs, warmupEpochs: warmupEpochs)
        schedule.stepFactor = lrStepFactor
        if let lrStepEpochs { schedule.stepEpochs = lrStepEpochs }
        schedule.decayRate = lrDecayRate
        schedule.cosineAlpha = lrAlpha
        try schedule.validate()
        return schedule
    }

    /// Every setting the configuration records, keyed by the flag that sets it, read from the
    /// configuration's own encoding: a field added to it is compared on resume with no list to
    /// keep. The architecture, data and optimizer are checked on their own (Checkpoint.verify);
    /// where the files are and how the run was started are not settings of the run.
    var settings: [String: String] {
        var resolved = self
        resolved.learningRate = baseLearningRate
        resolved.observability = observing
        resolved.precision = computePrecision
        guard let data = try? JSONEncoder().encode(resolved),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        var settings: [String: String] = [:]
        func add(_ value: Any, key: String) {
            if Self.notSettings.contains(key) { return }
            if let nested = value as? [String: Any] {
                for (inner, value) in nested { add(value, key: inner) }
            } else {
                settings[Self.flag(key)] = Self.text(value)
            }
        }
        for (key, value) in object { add(value, key: key) }
        return settings
    }

    /// Flags whose value fixes which examples each step sees: a resume cannot change them.
    static let ordering: Set = ["--batch-size", "--seed", "--validation-split"]
    static let notSettings: Set = ["architecture", "dataDirectory", "optimizer", "runDirectory", "resume", "overwrite", "initModel", "overlap", "bucketMB"]

    /// `lrStepEpochs` or `log_every` → `--lr-step-epochs`, `--log-every`; the rate is `--lr`.
    static func flag(_ key: String) -> String {
        if key == "learningRate" { return "--lr" }
        return "--" + key.reduce(into: "") { out, c in out += c.isUppercase ? "-" + c.lowercased() : c == "_" ? "-" : String(c) }
    }

    /// A JSON value as the user types it: 0.01, step, 2,3.
    static func text(_ value: Any) -> String {
        if let string = value as? String { return string }
        if value is NSNull { return "none" }
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    }
}

/// A setting a resumed run changed: printed by rank 0 and recorded in summary.json.
public struct SettingChange: Codable, Equatable, Sendable, CustomStringConvertible {
    public var setting: String
    public var old: String
    public var new: String
    public var description: String { "\(setting) \(old) -> \(new)" }
}
