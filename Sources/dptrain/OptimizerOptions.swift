import ArgumentParser
import NN
import Training

extension OptimizerKind: ExpressibleByArgument {}
extension Schedule.Kind: ExpressibleByArgument {}
extension LearningRateScaling: ExpressibleByArgument {}
extension ReductionKind: ExpressibleByArgument {}

/// The update rule, its learning rate and schedule: Keras's optimizers under their names and
/// defaults. A flag the chosen optimizer does not use is refused rather than ignored.
struct OptimizerOptions: ParsableArguments {
    private static let defaults = TrainingConfig()

    @Option(help: "The update rule, with Keras's defaults (default: sgd, or the --model file's).")
    var optimizer: OptimizerKind?
    @Option(help: "Base learning rate (default: Keras's, 0.01 for sgd, 0.001 for the others).")
    var lr: Float?
    @Option(help: "sgd and rmsprop: momentum (Keras semantics; default 0).")
    var momentum: Double?
    @Flag(help: "sgd: Nesterov momentum.")
    var nesterov = false
    @Option(help: "adam, adamw: decay of the first moment (default 0.9).")
    var beta1: Double?
    @Option(help: "adam, adamw: decay of the second moment (default 0.999).")
    var beta2: Double?
    @Option(help: "adam, adamw, rmsprop: added to the root (default 1e-7, Keras's).")
    var epsilon: Double?
    @Option(help: "Decoupled weight decay, w -= lr·wd·w before each update (default 0; 0.004 for adamw).")
    var weightDecay: Double?
    @Option(help: "rmsprop: decay of the mean square (default 0.9).")
    var rho: Double?
    @Flag(help: "rmsprop: centered (divide by the variance).")
    var centered = false

    @Option(help: "Learning-rate schedule over the global step.")
    var lrSchedule = defaults.lrSchedule
    @Option(help: "Linear warm-up over this many epochs (by step; fractions allowed). Recommended with --lr-scaling linear.")
    var warmupEpochs = defaults.warmupEpochs
    @Option(help: "step: the factor at each step epoch (default 0.1).")
    var lrStepFactor: Double?
    @Option(help: "step: the 0-based epochs at whose start the rate drops, e.g. 2,3 (default: half and three quarters of --epochs).")
    var lrStepEpochs: ListArgument<Int>?
    @Option(help: "exponential: the factor per epoch (default 0.9).")
    var lrDecayRate: Double?
    @Option(help: "cosine: the final rate as a fraction of the base (default 0).")
    var lrAlpha: Double?

    private var given: [(flag: String, keras: String, value: String?)] {
        [("--momentum", "momentum", momentum.map { "\($0)" }), ("--nesterov", "nesterov", nesterov ? "true" : nil),
         ("--beta1", "beta_1", beta1.map { "\($0)" }), ("--beta2", "beta_2", beta2.map { "\($0)" }),
         ("--epsilon", "epsilon", epsilon.map { "\($0)" }), ("--rho", "rho", rho.map { "\($0)" }), ("--centered", "centered", centered ? "true" : nil)]
    }

    /// Refuses a flag the optimizer does not use.
    private func check(_ kind: OptimizerKind) throws {
        for (flag, _, value) in given where value != nil && !kind.flags.contains(flag) {
            throw ValidationError("\(flag): does not apply to --optimizer \(kind.rawValue) (it takes \(kind.flags.joined(separator: ", ")))")
        }
    }

    func validate() throws {
        // Without --optimizer the rule may come from a --model file: checked when it is known.
        if let optimizer { try check(optimizer) }
        let scheduleFlags: [(String, Bool)] = [("--lr-step-factor", lrStepFactor != nil), ("--lr-step-epochs", lrStepEpochs != nil),
                                               ("--lr-decay-rate", lrDecayRate != nil), ("--lr-alpha", lrAlpha != nil)]
        for (flag, present) in scheduleFlags where present && !Self.scheduleFlags(lrSchedule).contains(flag) {
            let takes = Self.scheduleFlags(lrSchedule)
            throw ValidationError("\(flag): does not apply to --lr-schedule \(lrSchedule.rawValue) (it takes \(takes.isEmpty ? "none of the schedule flags" : takes.joined(separator: ", ")))")
        }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr: must be a positive number, got \(lr)") }
        do { try settings(base: nil).validate() } catch let error as InvalidSetting { throw ValidationError(error.description) }
    }

    /// The flags each schedule reads (--warmup-epochs applies to all).
    static func scheduleFlags(_ kind: Schedule.Kind) -> [String] {
        switch kind {
        case .constant: []
        case .step: ["--lr-step-factor", "--lr-step-epochs"]
        case .cosine: ["--lr-alpha"]
        case .exponential: ["--lr-decay-rate"]
        }
    }

    /// Keras's defaults for the kind (or a model file's settings), with the flags given laid over them.
    func settings(base: OptimizerSettings?) -> OptimizerSettings {
        var settings = base ?? OptimizerSettings(kind: optimizer ?? .sgd)
        if let momentum { settings.momentum = momentum }
        if nesterov { settings.nesterov = true }
        if let beta1 { settings.beta1 = beta1 }
        if let beta2 { settings.beta2 = beta2 }
        if let epsilon { settings.epsilon = epsilon }
        if let weightDecay { settings.weightDecay = weightDecay }
        if let rho { settings.rho = rho }
        if centered { settings.centered = true }
        return settings
    }

    /// `keras`: a --model file's compile_config, which the flags given override, each said in a
    /// returned `note:` line.
    func apply(to config: inout TrainingConfig, keras: KerasTrainingSettings? = nil) throws -> [String] {
        var notes: [String] = []
        let fromFile = keras.flatMap { optimizer == nil || optimizer == $0.optimizer.kind ? $0 : nil }
        if let keras, let optimizer, optimizer != keras.optimizer.kind {
            notes.append("note: --optimizer \(optimizer.rawValue) overrides the model file's \(keras.optimizer.kind.rawValue)")
        }
        let kind = optimizer ?? keras?.optimizer.kind ?? .sgd
        try check(kind)
        if fromFile != nil {
            for (flag, name, value) in given where value != nil { notes.append("note: \(flag) \(value!) overrides the model file's \(name)") }
            if let lr { notes.append("note: --lr \(lr) overrides the model file's learning_rate \(fromFile!.learningRate)") }
        }
        config.optimizer = settings(base: fromFile?.optimizer ?? OptimizerSettings(kind: kind))
        do { try config.optimizer.validate() } catch { throw ValidationError("\(error)") }
        config.learningRate = lr ?? fromFile?.learningRate
        config.lrSchedule = lrSchedule
        config.warmupEpochs = warmupEpochs
        config.lrStepFactor = lrStepFactor ?? Self.defaults.lrStepFactor
        config.lrStepEpochs = lrStepEpochs?.values
        config.lrDecayRate = lrDecayRate ?? Self.defaults.lrDecayRate
        config.lrAlpha = lrAlpha ?? Self.defaults.lrAlpha
        return notes
    }
}

/// How the batch and its gradient are spread over the ranks.
struct ScalingOptions: ParsableArguments {
    private static let defaults = TrainingConfig()

    @Option(help: "Global batch size, split over the ranks.")
    var batchSize: Int?
    @Option(help: "Weak scaling: this batch on every rank (global batch = it × ranks), instead of --batch-size.")
    var perRankBatch: Int?
    @Option(help: "With --per-rank-batch: scale the base rate with the ranks (linear, as Goyal et al. and Horovod; use --warmup-epochs with it).")
    var lrScaling: LearningRateScaling?
    @Option(help: "How gradients are combined: exact (fixed micro-shards summed in fixed point: the same bits at any rank and thread count) or float.")
    var reduction = defaults.reduction
    @Option(help: "exact: examples per micro-shard (the unit one worker computes whole).")
    var shardSize = defaults.shardSize
    @Option(name: .customLong("bucket-mb"), help: "MB of gradient per bucket: each bucket's reduction starts as soon as the backward pass has finished it (default \(TrainingConfig.defaultBucketMB), measured).")
    var bucketMB: Double?
    @Flag(help: "Reduce the whole gradient once, after the backward pass, instead of in buckets during it.")
    var noOverlap = false

    func validate() throws {
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size: must be at least 1, got \(batchSize)") }
        if let perRankBatch, perRankBatch < 1 { throw ValidationError("--per-rank-batch: must be at least 1, got \(perRankBatch)") }
        if batchSize != nil && perRankBatch != nil { throw ValidationError("--per-rank-batch: give it or --batch-size, not both") }
        if lrScaling != nil && perRankBatch == nil { throw ValidationError("--lr-scaling: applies with --per-rank-batch only") }
        guard shardSize >= 1 else { throw ValidationError("--shard-size: must be at least 1, got \(shardSize)") }
        if let bucketMB, !(bucketMB > 0 && bucketMB <= 1024) {
            throw ValidationError("--bucket-mb: must be more than 0 and at most 1024, got \(bucketMB)")
        }
        if bucketMB != nil && noOverlap { throw ValidationError("--bucket-mb: has no effect with --no-overlap") }
    }

    func apply(to config: inout TrainingConfig) {
        if let batchSize { config.batchSize = batchSize }
        config.perRankBatch = perRankBatch
        config.lrScaling = lrScaling ?? (perRankBatch == nil ? .none : .linear)
        config.reduction = reduction
        config.shardSize = shardSize
        config.overlap = noOverlap ? false : nil
        config.bucketMB = bucketMB
    }
}
