import Collectives
import Datasets
import Foundation
import ModelFiles
import NN

extension Trainer {
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

    /// The workers and the reduction they serve. The float reduction cuts the batch by rank and
    /// thread; the exact one by fixed micro-shards, so its networks take a shard (and evaluate
    /// in fixed chunks of at least 50).
    static func makeReduction(_ config: TrainingConfig, comm: Communicator, parameterCount: Int) throws -> (Workers, any GradientReduction) {
        let threads = config.threads ?? defaultThreads(localRanks: comm.localSize)
        // One rank has nothing to hide: one bucket, reduced (a copy) after the backward pass;
        // likewise a model that fits in one bucket.
        let wanted = (config.overlap ?? true) && comm.size > 1
        let plan = BucketPlan(try Network.tensors(of: config.model), bytes: wanted ? Int((config.bucketMB ?? TrainingConfig.defaultBucketMB) * 1_048_576) : nil)
        let overlapped = plan.count > 1
        switch config.reduction {
        case .float:
            let rankBatch = (config.batchSize + comm.size - 1) / comm.size
            let count = max(1, min(threads, rankBatch))
            let reduction = FloatReduction(parameterCount: parameterCount, comm: comm)
            let workers = try Workers(config.model, count: count, maxBatch: (rankBatch + count - 1) / count, gradients: reduction.gradients,
                                      seed: config.seed, precision: config.computePrecision, overlapped: overlapped)
            reduction.attach(workers, plan: plan)
            return (workers, reduction)
        case .exact:
            let shards = (config.batchSize + config.shardSize - 1) / config.shardSize
            let count = max(1, min(threads, (shards + comm.size - 1) / comm.size))
            let workers = try Workers(config.model, count: count, maxBatch: max(config.shardSize, 50), gradients: nil, seed: config.seed,
                                      precision: config.computePrecision, overlapped: overlapped)
            // With buckets, a worker's shards run layer by layer together: as many as it gets.
            let group = overlapped ? (shards + comm.size * count - 1) / (comm.size * count) : 1
            return (workers, try ExactReduction(workers: workers, shardSize: config.shardSize, plan: plan, groupSize: group, comm: comm))
        }
    }

    /// Rank 0's weights, optimizer state and position go to every rank.
    func broadcastState() throws {
        try comm.broadcast(UnsafeMutableRawBufferPointer(network.parameters), root: 0)
        for buffer in optimizer.state { try comm.broadcast(UnsafeMutableRawBufferPointer(buffer.values), root: 0) }
        var iterations = [Double(comm.isRoot ? optimizer.iterations : 0)]
        try comm.allreduce(&iterations, .sum)
        optimizer.iterations = Int(iterations[0])
        state.reductionState = reduction.state
        try state.broadcast(comm)
        if state.reductionState.count == reduction.state.count { reduction.state = state.reductionState }
        if config.restoreBestWeights {
            var present = [Double(comm.isRoot && bestWeights != nil ? 1 : 0)]
            try comm.allreduce(&present, .sum)
            guard present[0] > 0 else { return }
            var weights = bestWeights ?? [Float](repeating: 0, count: network.parameterCount)
            try comm.broadcast(&weights)
            bestWeights = weights
        }
    }

    /// Rank 0: a checkpoint, `--init-model`, or a fresh init. Returns the checkpoint's name when
    /// resuming. A fresh start never keeps another run's checkpoints.
    func restore(log: (String) -> Void) throws -> String? {
        try run.create()
        runLock = try RunLock(run)
        if let resume = config.resume, let checkpoint = try Checkpoint.find(resume, in: run, log: log) {
            resumeChanges = try checkpoint.verify(matches: config, optimizer: optimizer, dataFingerprint: data.fingerprint)
            try checkpoint.restore(into: network, optimizer: optimizer)
            state = checkpoint.state
            if state.epochLearningRates.count != state.stepInEpoch {  // a checkpoint from before they were recorded
                let first = state.globalStep - state.stepInEpoch
                state.epochLearningRates = (first..<state.globalStep).map { schedule.learningRate(atStep: $0) }
            }
            if state.reductionState.count == reduction.state.count { reduction.state = state.reductionState }
            bestWeights = checkpoint.bestWeights(for: network)
            if checkpoint.ranks != comm.size {
                let match = config.reduction == .exact ? "the exact reduction gives the same bits as an uninterrupted run"
                    : "the result will match an uninterrupted run only up to floating-point summation order"
                log("note: the checkpoint was written by \(checkpoint.ranks) ranks and resumes on \(comm.size); \(match)")
            }
            return checkpoint.name
        }
        var rng = SplitMix64(seed: config.seed, stream: 0x1417)
        network.initialize(using: &rng)
        if let path = config.modelFile { try UserModel(path: path).loadWeights(into: network) }
        if let path = config.initModel { try loadWeights(path) }
        if config.resume == "auto" && run.holdsCheckpoints {
            // What --resume auto promises: none verifies (each was named above), so start over.
            log("note: --resume auto: no checkpoint in \(run.checkpoints) verifies; starting fresh (they are left in place)")
        } else {
            try run.clearForFreshStart(overwrite: config.overwrite)
        }
        state.runID = (0..<4).map { _ in String(format: "%04x", UInt16.random(in: .min ... .max)) }.joined()
        return nil
    }

    private func loadWeights(_ path: String) throws {
        if path.hasSuffix(".keras") {
            let user = try UserModel(path: path)
            try user.keras.graph.checkInput(matches: data.shape, file: path)
            return try user.loadWeights(into: network)
        }
        let file = try SafeTensors(path: path)
        try Checkpoint.verifyChecksum(of: file, path: path)
        try ModelFile.model(of: file, name: path)?.checkInput(matches: data.shape, file: path)
        try ModelFile.load(file, into: network, name: path)
    }

    /// This process's peak resident set (Linux reports ru_maxrss in KiB).
    static func peakMemoryMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
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

/// A training-side failure with the one line the user sees.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
