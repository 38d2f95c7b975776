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
    let reduction: StepReduction
    let workers: Workers
    var network: Network { workers.primary }
    let optimizer: any Optimizer
    let run: RunDirectory
    var state = RunState()
    var resumeChanges: [SettingChange] = []
    private var observers: [TrainingObserver] = []
    let observation: RunObservation

    /// Start-up: everything that can fail because of bad input happens here, on every rank,
    /// before any file of the run directory is touched. Ranks agree on the outcome, so a bad
    /// input on one rank ends every rank with its message instead of a hang.
    public init(config: TrainingConfig, communicator comm: Communicator, log: (String) -> Void) throws {
        self.comm = comm
        // Parallelism is the workers' (one BLAS thread each), so results do not depend on BLAS's threading.
        BLAS.setThreads(1)
        var failure: Error?
        var loaded: (TrainingConfig, Dataset, LabeledImages, LabeledImages?)?
        do {
            var config = config
            let data = try Dataset(directory: config.dataDirectory ?? Dataset.defaultDirectory())
            config.dataDirectory = data.directory
            config.architecture = try config.architecture.fitted(to: data.shape)
            let (train, validation) = try Self.split(data.train, fraction: config.validationSplit)
            guard config.batchSize >= comm.size else {
                throw TrainingError("--batch-size: \(config.batchSize) is smaller than the \(comm.size) ranks; every rank needs an example")
            }
            loaded = (config, data, train, validation)
        } catch {
            failure = error
        }
        try Self.agree(comm, failure, phase: "start-up")
        (self.config, data, trainSet, validationSet) = loaded!
        let parameterCount = try self.config.architecture.parameterCount()
        reduction = StepReduction(parameterCount: parameterCount)
        workers = try Workers(self.config.architecture, threads: self.config.threads ?? Self.defaultThreads(localRanks: comm.localSize),
                              maxRankBatch: (self.config.batchSize + comm.size - 1) / comm.size, gradients: reduction.gradients)
        optimizer = SGD(momentum: self.config.momentum, parameterCount: parameterCount)
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
                             CheckpointPolicy(trainer: self), FinalFiles(run: run, network: network)] + [observation.timeline].compactMap { $0 }
                let start = RunStart(ranks: comm.size, threads: workers.count, parameterCount: parameterCount, runDirectory: run.path,
                                     epoch: state.epoch, globalStep: state.globalStep, resumedFrom: resumedFrom, hosts: observation.hosts,
                                     architecture: self.config.architecture, dataDirectory: data.directory, dataShape: "\(data.shape)",
                                     dataFingerprint: data.fingerprint)
                try notify { try $0.runStarted(start) }
            } catch {
                failure = error
            }
        }
        try Self.agree(comm, failure, phase: "start-up")
        try broadcastState()
        try observation.start { [unowned self] in self.state.globalStep + 1 }
        if let resumedFrom {
            log("resumed from \(resumedFrom) at epoch \(state.epoch + 1), step \(state.stepInEpoch) (global step \(state.globalStep))")
            for change in resumeChanges { log("note: \(change.setting) changed on resume: \(change.old) -> \(change.new)") }
        }
    }

    /// Trains to the configured end; rank 0's observers print and write the run directory.
    public func train() throws -> TrainingOutcome {
        var trained = (seconds: 0.0, images: 0)
        while state.epoch < config.epochs && !reachedMaxSteps {
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
        var timings = StepTimings()
        let start = MonotonicClock.now
        let mine = EpochPlan.slice(batch, rank: comm.rank, ranks: comm.size)
        let (local, gatherSeconds, forwardSeconds) = workers.computeGradients(mine, from: trainSet, scale: 1 / Float(batch.count))
        reduction.setLocal(local, stop: StopSignal.isRaised)
        let reduceStart = MonotonicClock.now
        try reduction.allreduce(comm)
        let updateStart = MonotonicClock.now
        optimizer.update(network.parameters, gradients: UnsafeBufferPointer(reduction.gradients), learningRate: config.learningRate)
        let end = MonotonicClock.now
        (timings.start, timings.data, timings.forward) = (start - observation.origin, gatherSeconds, forwardSeconds)
        timings.backward = reduceStart - start - gatherSeconds - forwardSeconds
        (timings.reduce, timings.update) = (updateStart - reduceStart, end - updateStart)

        let totals = reduction.totals(count: batch.count)
        state.epochTotals += totals
        state.stepInEpoch += 1
        state.globalStep += 1
        state.epochSeconds = end - epochStart
        try observation.stepEnded(globalStep: state.globalStep, timings)
        let report = StepReport(epoch: state.epoch, step: state.stepInEpoch, stepsInEpoch: stepsInEpoch, globalStep: state.globalStep,
                                batch: totals, epochTotals: state.epochTotals, epochSeconds: state.epochSeconds,
                                learningRate: Double(config.learningRate), timings: timings, stopRequested: reduction.stopRequested)
        try notify { try $0.stepEnded(report) }
        return report
    }

    /// Validation, the epoch's row, and the position after it. --max-steps can end an epoch
    /// early: its row is logged, and the checkpoint keeps the true position so that a resume
    /// with more steps continues the same run.
    private func endEpoch(stepsInEpoch: Int, seconds: Double, reduceSeconds: Double) throws -> EpochMetrics {
        let means = state.epochTotals.means
        var row = EpochMetrics(epoch: state.epoch, loss: means.loss, accuracy: means.accuracy, steps: state.stepInEpoch, seconds: seconds,
                               imagesPerSecond: Double(state.epochTotals.count) / max(seconds, 1e-9), allreduceSeconds: reduceSeconds)
        try observation.epochEnded(&row)
        if let validationSet {
            let validation = try score(validationSet)
            (row.valLoss, row.valAccuracy) = (validation.loss, validation.accuracy)
        }
        let finished = state.stepInEpoch == stepsInEpoch
        if finished {
            (state.epoch, state.stepInEpoch, state.epochTotals, state.epochSeconds) = (state.epoch + 1, 0, Totals(), 0)
        } else {
            state.epochSeconds = seconds
        }
        try notify { try $0.epochEnded(row, finished: finished) }
        return row
    }

    private func finish(imagesPerSecond: Double) throws -> RunSummary {
        let test = try score(data.test)
        try notify { try $0.evaluated(test, step: state.globalStep) }
        var peakMemory = [Self.peakMemoryMB()]
        try comm.allreduce(&peakMemory, .max)
        var summary = RunSummary(testLoss: test.loss, testAccuracy: test.accuracy, epochs: state.epoch, steps: state.globalStep,
                                 ranks: comm.size, threads: workers.count, seconds: MonotonicClock.now - startTime,
                                 imagesPerSecond: imagesPerSecond, peakMemoryMB: peakMemory[0], dataFingerprint: data.fingerprint,
                                 config: config, optimizer: Checkpoint.describe(optimizer), resumeChanges: resumeChanges)
        try observation.runFinished(&summary)
        try notify { try $0.runFinished(summary) }
        return summary
    }

    private let startTime = MonotonicClock.now

    private func notify(_ event: (TrainingObserver) throws -> Void) throws {
        for observer in observers { try event(observer) }
    }

    var reachedMaxSteps: Bool { config.maxSteps.map { state.globalStep >= $0 } ?? false }

    /// Mean loss and accuracy over `set`, split over the ranks, summed on all.
    func score(_ set: LabeledImages) throws -> Totals.Means {
        let start = set.count * comm.rank / comm.size, end = set.count * (comm.rank + 1) / comm.size
        let local = workers.totals(of: set, range: start..<end)
        var sums = [local.lossSum, local.correct]
        try comm.allreduce(&sums, .sum)
        return Totals(lossSum: sums[0], correct: sums[1], count: set.count).means
    }

    func writeCheckpoint(best: Bool = false) throws -> String {
        let checkpoint = try Checkpoint(network: network, optimizer: optimizer, config: config, dataFingerprint: data.fingerprint,
                                        state: state, ranks: comm.size)
        return try checkpoint.write(in: run, best: best, keep: config.keep)
    }
}
