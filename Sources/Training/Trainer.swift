import Collectives
import Datasets
import Foundation
import ModelFiles
import NN

/// How a run ended.
public enum TrainingOutcome {
    case finished(RunSummary)
    /// Stopped by a signal after checkpointing; the process should exit with StopSignal.exitStatus.
    case stoppedBySignal
}

/// Data-parallel training: every rank holds the whole model, computes the gradient on its slice
/// of each global batch, and one allreduce makes every rank apply the same update. With N ranks
/// the run follows the single-process trajectory up to floating-point summation order.
/// The trainer owns the step; printing, metrics files, checkpoints and the final files are
/// observers (rank 0's).
public final class Trainer {
    public let config: TrainingConfig
    let comm: Communicator
    let data: Dataset
    let trainSet: LabeledImages
    let validationSet: LabeledImages?
    let reduction: any GradientReduction
    let workers: Workers
    var network: Network { workers.primary }
    let optimizer: any Optimizer
    let schedule: Schedule
    let run: RunDirectory
    /// Early stopping's best weights (with --restore-best-weights), the same on every rank.
    var bestWeights: [Float]?
    var state = RunState()
    var resumeChanges: [SettingChange] = []
    /// Rank 0: the run directory is this run's until the process ends.
    var runLock: RunLock?
    /// Early stopping ended the run at the last epoch end.
    var stoppedEarly = false
    let log: (String) -> Void
    private var observers: [TrainingObserver] = []
    let observation: RunObservation

    /// Start-up: everything that can fail because of bad input happens here, on every rank,
    /// before any file of the run directory is touched. Ranks agree on the outcome, so a bad
    /// input on one rank ends every rank with its message instead of a hang.
    public init(config: TrainingConfig, communicator comm: Communicator, log: @escaping (String) -> Void) throws {
        self.comm = comm
        self.log = log
        // Parallelism is the workers' (one BLAS thread each), so results do not depend on BLAS's threading.
        BLAS.setThreads(1)
        var failure: Error?
        var loaded: (TrainingConfig, Dataset, LabeledImages, LabeledImages?, Schedule)?
        do {
            var config = config
            let data = try Dataset(path: config.dataDirectory, loading: config.dataLoading)
            config.dataDirectory = data.directory
            for warning in data.warnings { log("warning: \(warning)") }
            if config.modelFile == nil {
                config.model = try config.model.fitted(to: data.shape)
            } else {
                try config.model.checkInput(matches: data.shape, file: config.modelFile!)
            }
            if let perRank = config.perRankBatch { config.batchSize = perRank * comm.size }
            let (train, validation) = try Self.split(data.train, fraction: config.validationSplit)
            guard config.batchSize <= train.count else {
                let flag = config.perRankBatch == nil ? "--batch-size: \(config.batchSize)" : "--per-rank-batch: \(config.perRankBatch!) × \(comm.size) ranks"
                throw TrainingError("\(flag) is more than the \(train.count) training examples; an epoch would be one step")
            }
            try config.checkWork(ranks: comm.size)
            if config.earlyStopping != nil && validation == nil {
                throw TrainingError("--early-stopping: watches val_loss, so it needs --validation-split")
            }
            try config.optimizer.validate()
            let schedule = try config.schedule(stepsPerEpoch: (train.count + config.batchSize - 1) / config.batchSize, ranks: comm.size)
            loaded = (config, data, train, validation, schedule)
        } catch {
            failure = error
        }
        try Self.agree(comm, failure, phase: "start-up")
        (self.config, data, trainSet, validationSet, schedule) = loaded!
        let parameterCount = try self.config.model.parameterCount()
        (workers, reduction) = try Self.makeReduction(self.config, comm: comm, parameterCount: parameterCount)
        optimizer = try self.config.optimizer.make(parameterCount: workers.primary.trainableCount)
        run = RunDirectory(path: self.config.runDirectory)
        observation = try RunObservation(comm: comm, settings: self.config.observing)

        // Rank 0 alone reads model files and checkpoints and writes the run directory.
        var resumedFrom: String?
        failure = nil
        if comm.isRoot {
            do {
                resumedFrom = try restore(log: log)
                observers = [ProgressPrinter(epochs: self.config.epochs, ranks: comm.size), MetricsLogger(run: run),
                             TensorBoardLogger(directory: run.path, every: self.config.observing.logEvery),
                             CheckpointPolicy(trainer: self), FinalFiles(run: run, network: network, config: self.config)] + [observation.timeline].compactMap { $0 }
                var start = RunStart(ranks: comm.size, threads: workers.count, parameterCount: parameterCount, runDirectory: run.path,
                                     epoch: state.epoch, globalStep: state.globalStep, resumedFrom: resumedFrom, hosts: observation.hosts,
                                     model: self.config.model, dataDirectory: data.directory, dataShape: "\(data.shape)",
                                     dataFingerprint: data.fingerprint)
                start.kernelPath += self.config.computePrecision == .bf16 ? " (bf16)" : ""
                try notify { try $0.runStarted(start) }
            } catch {
                failure = error
            }
        }
        try Self.agree(comm, failure, phase: "start-up")
        try broadcastState()
        try observation.start { [unowned self] in self.state.globalStep + 1 }
        if let asked = self.config.threads, workers.count < asked {
            let share = self.config.reduction == .exact ? "micro-shards of \(self.config.shardSize) examples" : "examples"
            log("note: --threads \(asked): \(workers.count) run per rank (a rank's part of each step is \(workers.count) \(share))")
        }
        if comm.isRoot, self.config.computePrecision == .bf16, let slower = Precision.bf16Slowdown() {
            log("note: --precision bf16: \(slower)")
        }
        if let resumedFrom {
            log("resumed from \(resumedFrom) at epoch \(state.epoch + 1), step \(state.stepInEpoch) (global step \(state.globalStep))")
            for change in resumeChanges { log("note: \(change.setting) changed on resume: \(change.old) -> \(change.new)") }
        }
    }

    /// Trains to the configured end; rank 0's observers print and write the run directory.
    public func train() throws -> TrainingOutcome {
        var trained = (seconds: 0.0, images: 0)
        while state.epoch < config.epochs && !reachedMaxSteps && !stoppedEarly {
            let plan = EpochPlan(exampleCount: trainSet.count, globalBatchSize: config.batchSize, seed: config.seed, epoch: state.epoch)
            try notify { try $0.epochStarted(epoch: state.epoch, steps: plan.stepCount) }
            let epochStart = MonotonicClock.now - state.epochSeconds
            var reduceSeconds = 0.0
            while state.stepInEpoch < plan.stepCount && !reachedMaxSteps {
                let report = try step(plan.batch(state.stepInEpoch), stepsInEpoch: plan.stepCount, epochStart: epochStart)
                reduceSeconds += report.timings.reduce
                if report.stopRequested {
                    try notify { try $0.runStopped(step: state.globalStep) }
                    return .stoppedBySignal
                }
            }
            trained.images += state.epochTotals.count
            let row = try endEpoch(stepsInEpoch: plan.stepCount, seconds: MonotonicClock.now - epochStart, reduceSeconds: reduceSeconds)
            trained.seconds += row.seconds
        }
        return .finished(try finish(imagesPerSecond: Double(trained.images) / max(trained.seconds, 1e-9)))
    }

    /// One step, as llm.c's: gather and forward/backward (in the workers), reduce, update, notify.
    func step(_ batch: ArraySlice<Int32>, stepsInEpoch: Int, epochStart: Double) throws -> StepReport {
        let learningRate = schedule.learningRate(atStep: state.globalStep)
        let stepStart = MonotonicClock.now - observation.origin
        workers.step = state.globalStep
        var reduced: ReducedStep
        do { reduced = try reduction.step(batch, from: trainSet, stop: StopSignal.isRaised) } catch let failure as AgreedFailure {
            // A diverged step: say which step and at what rate, so the user knows what to lower.
            throw AgreedFailure(rank: failure.rank, phase: failure.phase, localError: failure.localError.map {
                TrainingError("step \(state.globalStep + 1) (learning rate \(learningRate)): \($0)")
            })
        }
        let updateStart = MonotonicClock.now
        reduction.apply(optimizer, to: network, learningRate: learningRate)
        let end = MonotonicClock.now
        reduced.timings.update = end - updateStart
        reduced.timings.start = stepStart
        reduced.timings.buckets = reduced.timings.buckets.map { ($0.start - observation.origin, $0.end - observation.origin) }

        state.epochTotals += reduced.totals
        state.epochLearningRates.append(learningRate)
        state.stepInEpoch += 1
        state.globalStep += 1
        state.epochSeconds = end - epochStart
        try observation.stepEnded(globalStep: state.globalStep, reduced.timings)
        let report = StepReport(epoch: state.epoch, step: state.stepInEpoch, stepsInEpoch: stepsInEpoch, globalStep: state.globalStep,
                                batch: reduced.totals, epochTotals: state.epochTotals, epochSeconds: state.epochSeconds,
                                learningRate: Double(learningRate), timings: reduced.timings, stopRequested: reduced.stopRequested)
        try notify { try $0.stepEnded(report) }
        return report
    }

    /// Validation, the epoch's row, and the position after it. --max-steps can end an epoch
    /// early: its row is logged, and the checkpoint keeps the true position so that a resume
    /// with more steps continues the same run.
    private func endEpoch(stepsInEpoch: Int, seconds: Double, reduceSeconds: Double) throws -> EpochMetrics {
        let means = state.epochTotals.means
        var row = EpochMetrics(epoch: state.epoch, loss: means.loss, accuracy: means.accuracy, steps: state.stepInEpoch, seconds: seconds,
                               imagesPerSecond: Double(state.epochTotals.count) / max(seconds, 1e-9), allreduceSeconds: reduceSeconds,
                               learningRates: state.epochLearningRates.map(Double.init))
        let finished = state.stepInEpoch == stepsInEpoch
        try observation.epochEnded(&row)
        if let validationSet {
            let validation = try score(validationSet)
            (row.valLoss, row.valAccuracy) = (validation.loss, validation.accuracy)
            if finished, let patience = config.earlyStopping { watch(validationLoss: validation.loss, patience: patience) }
        }
        if finished {
            (state.epoch, state.stepInEpoch, state.epochTotals, state.epochSeconds) = (state.epoch + 1, 0, Totals(), 0)
            state.epochLearningRates = []
        } else {
            state.epochSeconds = seconds
        }
        try notify { try $0.epochEnded(row, finished: finished) }
        return row
    }

    /// Keras's EarlyStopping(monitor="val_loss", patience, restore_best_weights), step for step.
    /// Every rank sees the same reduced validation loss, so every rank decides the same.
    private func watch(validationLoss loss: Double, patience: Int) {
        if config.restoreBestWeights && bestWeights == nil { bestWeights = Array(network.parameters) }
        state.epochsWithoutImprovement += 1
        if loss < state.bestValidationLoss {
            state.bestValidationLoss = loss
            if config.restoreBestWeights { bestWeights = Array(network.parameters) }
            state.epochsWithoutImprovement = 0
            return
        }
        guard state.epochsWithoutImprovement >= patience, state.epoch > 0 else { return }
        stoppedEarly = true
        log("Epoch \(state.epoch + 1): early stopping (val_loss has not improved for \(state.epochsWithoutImprovement) epochs)")
        if config.restoreBestWeights, let best = bestWeights {
            _ = network.parameters.update(fromContentsOf: best)
            log("restoring the weights of the best epoch (val_loss \(String(format: "%.4f", state.bestValidationLoss)))")
        }
    }

    private func finish(imagesPerSecond: Double) throws -> RunSummary {
        let test = try score(data.test)
        try notify { try $0.evaluated(test, step: state.globalStep) }
        var peakMemory = [Self.peakMemoryMB()]
        try comm.allreduce(&peakMemory, .max)
        var summary = RunSummary(testLoss: test.loss, testAccuracy: test.accuracy, epochs: state.epoch, steps: state.globalStep,
                                 ranks: comm.size, threads: workers.count, seconds: MonotonicClock.now - startTime,
                                 imagesPerSecond: imagesPerSecond, peakMemoryMB: peakMemory[0], dataFingerprint: data.fingerprint,
                                 config: config, optimizer: Checkpoint.describe(optimizer), learningRate: Double(schedule.baseRate),
                                 stoppedEarly: stoppedEarly, resumeChanges: resumeChanges)
        try observation.runFinished(&summary)
        try notify { try $0.runFinished(summary) }
        return summary
    }

    private let startTime = MonotonicClock.now

    private func notify(_ event: (TrainingObserver) throws -> Void) throws {
        for observer in observers { try event(observer) }
    }

    var reachedMaxSteps: Bool { config.maxSteps.map { state.globalStep >= $0 } ?? false }

    /// Mean loss and accuracy over `set`, in fixed chunks split over the ranks, summed on all
    /// (exactly: see `Workers.totals`, so every rank count reports the same figures).
    func score(_ set: LabeledImages) throws -> Totals.Means {
        let size = workers.primary.maxBatch
        let chunks = (set.count + size - 1) / size
        let local = workers.totals(of: set, chunks: Workers.part(comm.rank, of: 0..<chunks, parts: comm.size), size: size)
        var sums = [local.lossSum, local.correct]
        try comm.allreduce(&sums, .sum)
        return Totals(lossSum: sums[0], correct: sums[1], count: set.count).means
    }

    func writeCheckpoint(best: Bool = false) throws -> String {
        state.reductionState = reduction.state
        let checkpoint = try Checkpoint(network: network, optimizer: optimizer, bestWeights: bestWeights, config: config,
                                        dataFingerprint: data.fingerprint, state: state, ranks: comm.size)
        return try checkpoint.write(in: run, best: best, keep: config.keep)
    }
}
