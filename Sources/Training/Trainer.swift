import Collectives
import Datasets
import Foundation
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
public final class Trainer {
    public let config: TrainingConfig
    let comm: Communicator
    let data: MNIST
    let trainSet: LabeledImages
    let validationSet: LabeledImages?
    let workers: Workers
    var network: Network { workers.primary }
    let optimizer: any Optimizer
    let run: RunDirectory
    let threads: Int
    /// Position of the next step.
    var epoch = 0, stepInEpoch = 0, globalStep = 0
    var partial = PartialEpoch()
    var history: [EpochMetrics] = []
    var bestValidationAccuracy = -1.0

    /// Start-up: everything that can fail because of bad input happens here, on every rank,
    /// before any file of the run directory is touched. Ranks agree on the outcome, so a bad
    /// input on one rank ends every rank with its message instead of a hang.
    public init(config: TrainingConfig, communicator comm: Communicator, log: (String) -> Void) throws {
        self.config = config
        self.comm = comm
        threads = config.threads ?? Self.defaultThreads(localRanks: comm.localSize)
        // Parallelism is the workers' (one BLAS thread each), so results do not depend on BLAS's threading.
        BLAS.setThreads(1)

        var failure: Error?
        var loaded: (MNIST, LabeledImages, LabeledImages?, Workers)?
        do {
            let data = try MNIST(directory: config.dataDirectory)
            let a = config.architecture
            guard data.train.rows == a.inputHeight, data.train.columns == a.inputWidth else {
                throw TrainingError("\(config.dataDirectory): images are \(data.train.rows)x\(data.train.columns), the model takes \(a.inputHeight)x\(a.inputWidth)")
            }
            let (train, validation) = try Self.split(data.train, fraction: config.validationSplit)
            guard config.batchSize >= comm.size else {
                throw TrainingError("--batch-size: \(config.batchSize) is smaller than the \(comm.size) ranks; every rank needs an example")
            }
            let workers = try Workers(config.architecture, threads: threads, maxRankBatch: (config.batchSize + comm.size - 1) / comm.size)
            loaded = (data, train, validation, workers)
        } catch {
            failure = error
        }
        try Self.agree(comm, failure, phase: "start-up")
        (data, trainSet, validationSet, workers) = loaded!
        optimizer = SGD(momentum: config.momentum, parameterCount: workers.primary.parameterCount)
        run = RunDirectory(path: config.runDirectory)

        // Rank 0 alone reads model files and checkpoints, then broadcasts what it found.
        var resumedFrom: String?
        failure = nil
        if comm.isRoot {
            do {
                try run.create()
                resumedFrom = try restore(log: log)
                // Keep the metrics of the epochs the checkpoint has; a fresh start clears them.
                history = run.epochRows(before: resumedFrom == nil ? 0 : epoch)
                try run.writeMetrics(history)
            } catch {
                failure = error
            }
        }
        try Self.agree(comm, failure, phase: "start-up")
        try broadcastState()
        if let resumedFrom {
            log("resumed from \(resumedFrom) at epoch \(epoch + 1), step \(stepInEpoch) (global step \(globalStep))")
        }
    }

    /// The node's cores shared among its ranks, within the cores this process may use.
    static func defaultThreads(localRanks: Int) -> Int {
        let online = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let allowed = ProcessInfo.processInfo.activeProcessorCount
        return max(1, min(allowed, Int(online) / max(localRanks, 1)))
    }

    /// Keras's validation_split: the LAST fraction of the training arrays, before any shuffling.
    static func split(_ all: LabeledImages, fraction: Double) throws -> (LabeledImages, LabeledImages?) {
        guard fraction > 0 else { return (all, nil) }
        let trainCount = Int(Double(all.count) * (1 - fraction))
        guard trainCount > 0, trainCount < all.count else {
            throw TrainingError("--validation-split: \(fraction) leaves \(trainCount) of \(all.count) examples for training")
        }
        return (all.slice(0..<trainCount), all.slice(trainCount..<all.count))
    }

    /// Every rank learns whether any failed, and all throw `AgreedFailure`: every rank can then
    /// leave normally, since none is left waiting in a collective.
    static func agree(_ comm: Communicator, _ failure: Error?, phase: String) throws {
        guard let failingRank = try comm.firstFailingRank(localFailure: failure != nil) else { return }
        throw AgreedFailure(rank: failingRank, phase: phase, localError: failure)
    }

    func broadcastState() throws {
        try comm.broadcast(UnsafeMutableRawBufferPointer(network.parameters), root: 0)
        for state in optimizer.state { try comm.broadcast(UnsafeMutableRawBufferPointer(state.values), root: 0) }
        var position = [Double(epoch), Double(stepInEpoch), Double(globalStep), partial.lossSum, partial.correct,
                        Double(partial.seen), partial.seconds, bestValidationAccuracy]
        if !comm.isRoot { position = position.map { _ in 0 } }
        try comm.allreduce(&position, .sum)
        epoch = Int(position[0]); stepInEpoch = Int(position[1]); globalStep = Int(position[2])
        partial = PartialEpoch(lossSum: position[3], correct: position[4], seen: Int(position[5]), seconds: position[6])
        bestValidationAccuracy = position[7]
    }

    /// Rank 0: a fresh init, `--init-model`, or a checkpoint. Returns the checkpoint's name when resuming.
    func restore(log: (String) -> Void) throws -> String? {
        if let resume = config.resume, let checkpoint = try Checkpoint.find(resume, in: run, log: log) {
            try checkpoint.verify(matches: config, dataFingerprint: data.fingerprint, name: checkpoint.path)
            try ModelFile.load(checkpoint.file, into: network, name: checkpoint.path)
            try checkpoint.restoreState(of: optimizer, network: network)
            (epoch, stepInEpoch, globalStep) = (checkpoint.epoch, checkpoint.stepInEpoch, checkpoint.globalStep)
            partial = checkpoint.partialEpoch
            bestValidationAccuracy = checkpoint.bestValidationAccuracy
            if checkpoint.ranks != comm.size {
                log("note: the checkpoint was written by \(checkpoint.ranks) ranks and resumes on \(comm.size); the result will match an uninterrupted run only up to floating-point summation order")
            }
            return (checkpoint.path as NSString).lastPathComponent
        }
        if let path = config.initModel {
            let file = try SafeTensors(path: path)
            try ModelFile.load(file, into: network, name: path)
        } else {
            var rng = SplitMix64(seed: config.seed, stream: 0x1417)
            network.initialize(using: &rng)
        }
        return nil
    }

    /// Trains to the configured end; rank 0 prints and writes the run directory.
    public func train() throws -> TrainingOutcome {
        let extras = network.parameterCount
        let buffer = network.reductionBuffer
        let runStart = Date()
        var trainSeconds = 0.0, trainImages = 0

        while epoch < config.epochs && !reachedMaxSteps {
            let plan = EpochPlan(exampleCount: trainSet.count, globalBatchSize: config.batchSize, seed: config.seed, epoch: epoch)
            var progress = comm.isRoot ? Progress(epoch: epoch, epochs: config.epochs, steps: plan.stepCount, ranks: comm.size) : nil
            let epochStart = Date().addingTimeInterval(-partial.seconds)
            var allreduceSeconds = 0.0
            while stepInEpoch < plan.stepCount && !reachedMaxSteps {
                let batch = plan.batch(stepInEpoch)
                let mine = EpochPlan.slice(batch, rank: comm.rank, ranks: comm.size)
                let local = workers.computeGradients(mine, from: trainSet, scale: 1 / Float(batch.count))
                buffer[extras] = Float(local.lossSum)
                buffer[extras + 1] = Float(local.correct)
                buffer[extras + 2] = StopSignal.isRaised ? 1 : 0
                let reduceStart = DispatchTime.now().uptimeNanoseconds
                try comm.allreduceSum(buffer)
                allreduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - reduceStart) / 1e9
                optimizer.update(network.parameters, gradients: UnsafeBufferPointer(network.gradients), learningRate: config.learningRate)
                partial.lossSum += Double(buffer[extras])
                partial.correct += Double(buffer[extras + 1])
                partial.seen += batch.count
                stepInEpoch += 1
                globalStep += 1
                let elapsed = Date().timeIntervalSince(epochStart)
                progress?.update(step: stepInEpoch, elapsed: elapsed, metrics: partial.metrics)

                if buffer[extras + 2] > 0 {
                    partial.seconds = elapsed
                    if comm.isRoot {
                        let path = try writeCheckpoint()
                        print("\nstopping on a signal: checkpoint \(path) written; resume with --resume auto")
                    }
                    return .stoppedBySignal
                }
                if config.checkpointEvery > 0 && globalStep % config.checkpointEvery == 0 && stepInEpoch < plan.stepCount {
                    partial.seconds = elapsed
                    if comm.isRoot { _ = try writeCheckpoint() }
                }
            }
            let seconds = Date().timeIntervalSince(epochStart)
            trainSeconds += seconds
            trainImages += partial.seen
            var row = EpochMetrics(epoch: epoch, loss: partial.lossSum / Double(max(partial.seen, 1)),
                                   accuracy: partial.correct / Double(max(partial.seen, 1)), steps: stepInEpoch,
                                   seconds: seconds, imagesPerSecond: Double(partial.seen) / max(seconds, 1e-9),
                                   allreduceSeconds: allreduceSeconds)
            if let validationSet {
                let (loss, accuracy) = try evaluate(validationSet)
                (row.valLoss, row.valAccuracy) = (loss, accuracy)
            }
            progress?.finish(step: stepInEpoch, elapsed: seconds, metrics: row.progressMetrics)
            // --max-steps can end an epoch early: its row is logged, and the checkpoint keeps the
            // true position so that a resume with more steps continues the same run.
            let finishedEpoch = stepInEpoch == plan.stepCount
            if finishedEpoch {
                epoch += 1
                stepInEpoch = 0
                partial = PartialEpoch()
            } else {
                partial.seconds = seconds
            }
            if comm.isRoot {
                history.append(row)
                try run.writeMetrics(history)
                let isBest = finishedEpoch && (row.valAccuracy ?? -1) > bestValidationAccuracy
                if isBest { bestValidationAccuracy = row.valAccuracy! }
                _ = try writeCheckpoint()
                if config.saveBest && isBest { _ = try writeCheckpoint(best: true) }
            }
        }

        let (testLoss, testAccuracy) = try evaluate(data.test)
        var peakMemory = [Self.peakMemoryMB()]
        try comm.allreduce(&peakMemory, .max)
        let summary = RunSummary(testLoss: testLoss, testAccuracy: testAccuracy, epochs: epoch, steps: globalStep, ranks: comm.size,
                                 threads: threads, seconds: Date().timeIntervalSince(runStart),
                                 imagesPerSecond: Double(trainImages) / max(trainSeconds, 1e-9), peakMemoryMB: peakMemory[0],
                                 dataFingerprint: data.fingerprint, config: config)
        if comm.isRoot {
            print("test loss: \(String(format: "%.4f", testLoss)) - test accuracy: \(String(format: "%.4f", testAccuracy))")
            try AtomicFile.write(try ModelFile.tensors(of: network).serialized(), to: run.model)
            try AtomicFile.write(try ModelFile.encode(summary) + "\n", to: run.summaryJSON)
        }
        return .finished(summary)
    }

    /// This process's peak resident set (Linux reports ru_maxrss in KiB).
    static func peakMemoryMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    var reachedMaxSteps: Bool { config.maxSteps.map { globalStep >= $0 } ?? false }

    /// Loss and accuracy over `set`, split over the ranks, summed on all.
    func evaluate(_ set: LabeledImages) throws -> (loss: Double, accuracy: Double) {
        let start = set.count * comm.rank / comm.size, end = set.count * (comm.rank + 1) / comm.size
        let local = workers.evaluate(set, range: start..<end)
        var totals = [local.lossSum, Double(local.correct)]
        try comm.allreduce(&totals, .sum)
        return (totals[0] / Double(set.count), totals[1] / Double(set.count))
    }

    func writeCheckpoint(best: Bool = false) throws -> String {
        let checkpoint = try Checkpoint(network: network, optimizer: optimizer, config: config, dataFingerprint: data.fingerprint,
                                    epoch: epoch, stepInEpoch: stepInEpoch, globalStep: globalStep, ranks: comm.size,
                                    partialEpoch: partial, bestValidationAccuracy: bestValidationAccuracy)
        return try checkpoint.write(in: run, best: best, keep: config.keep)
    }
}

/// Running totals of the epoch in progress (also saved in checkpoints taken mid-epoch).
struct PartialEpoch {
    var lossSum = 0.0
    var correct = 0.0
    var seen = 0
    var seconds = 0.0

    var metrics: [(String, Double)] {
        [("loss", lossSum / Double(max(seen, 1))), ("accuracy", correct / Double(max(seen, 1)))]
    }
}

extension EpochMetrics {
    var progressMetrics: [(String, Double)] {
        var values = [("loss", loss), ("accuracy", accuracy)]
        if let valLoss, let valAccuracy { values += [("val_loss", valLoss), ("val_accuracy", valAccuracy)] }
        return values
    }
}

/// A failure every rank knows of. `localError` is set on the rank that failed; the others
/// describe it by the failing rank, whose own message is on stderr.
public struct AgreedFailure: Error, CustomStringConvertible {
    public let rank: Int
    public let phase: String
    public let localError: Error?
    public var description: String {
        localError.map { "\($0)" } ?? "stopping: rank \(rank) failed during \(phase) (its message is above)"
    }
}
