import Collectives
import Datasets
import Foundation
import NN

/// `dptrain bench`: steady-state training speed of one model, and where a step's time goes.
/// It runs the trainer's own step (the configured gradient reduction and optimizer), so it
/// measures what training does, `--reduction exact` against `float` included.
public struct BenchmarkConfig: Sendable {
    /// The model, data, batch, threads, reduction and optimizer, as for `train`.
    public var training = TrainingConfig()
    public var warmupSteps = 20
    public var steps = 100
    public init() {}
}

/// Seconds per step of one rank: the mean over its worker threads for the parts they run each.
public struct StepTimes: Codable, Sendable {
    public var data = 0.0, forward = 0.0, loss = 0.0, backward = 0.0, reduction = 0.0, update = 0.0, step = 0.0
}

public struct LayerTimes: Codable, Sendable {
    public let name: String
    public var forward: Double, backward: Double
}

public struct RankFigures: Codable, Sendable {
    public let rank: Int
    public let imagesPerSecond: Double
    public let stepSeconds: Double
    public let peakGFLOPS: Double
}

public struct BenchmarkReport: Codable, Sendable {
    public let kernels: String
    /// Whether convs may run Winograd's kernels (DPTRAIN_WINOGRAD).
    public let winograd: Bool
    /// fp32 or bf16 (`--precision`).
    public let precision: String
    public let cpu: String
    public let ranks: Int
    public let threadsPerRank: Int
    public let reduction: String
    /// Buckets of the reduction, each started as soon as the backward pass has finished it
    /// (1: the whole gradient after the backward pass, as with `--no-overlap` or one rank).
    public let buckets: Int
    public let batchSize: Int
    public let steps: Int
    public let imagesPerSecond: Double
    public let flopPerImage: Int
    public let gflops: Double
    /// The FMA loop (bf16: the vdpbf16ps loop) on every thread of every rank at once: the limit of these cores.
    public let peakGFLOPS: Double
    public let shareOfPeak: Double
    /// Rank 0's CPU seconds per step over all its threads, and its FLOP per CPU-second as a share of one
    /// core's limit: on a shared machine other processes stretch the wall clock, not these.
    public let cpuSecondsPerStep: Double
    public let shareOfPeakPerCPUSecond: Double
    /// Rank 0's.
    public let times: StepTimes
    public let layers: [LayerTimes]
    public let perRank: [RankFigures]
}

public func runBenchmark(_ config: BenchmarkConfig, communicator comm: Communicator) throws -> BenchmarkReport {
    BLAS.setThreads(1)
    var training = config.training
    let data = try Dataset(path: training.dataDirectory, loading: training.dataLoading)
    if training.modelFile == nil {
        training.model = try training.model.fitted(to: data.shape)
    } else {
        try training.model.checkInput(matches: data.shape, file: training.modelFile!)
    }
    if let perRank = training.perRankBatch { training.batchSize = perRank * comm.size }
    let model = training.model
    let parameterCount = try model.parameterCount()
    let (workers, reduction) = try Trainer.makeReduction(training, comm: comm, parameterCount: parameterCount)
    let primary = workers.primary
    var rng = SplitMix64(seed: training.seed, stream: 0x1417)
    primary.initialize(using: &rng)
    let optimizer = try training.optimizer.make(parameterCount: primary.trainableCount)
    let learningRate = training.baseLearningRate
    let workerCount = workers.count
    let layerNames = primary.layerNames
    let slots = 2 * primary.layerCount + 1
    // Per worker: seconds in each layer's forward and backward, then in the loss.
    let seconds = workers.replicas.map { _ in UnsafeMutablePointer<Double>.allocate(capacity: slots) }
    defer { seconds.forEach { $0.deallocate() } }
    for (network, s) in zip(workers.replicas, seconds) { network.layerSeconds = s }
    let plan = EpochPlan(exampleCount: data.train.count, globalBatchSize: training.batchSize, seed: training.seed, epoch: 0)

    var times = StepTimes()
    func step(_ index: Int) throws {
        let start = Kernels.now()
        workers.step = index
        let reduced = try reduction.step(plan.batch(index % plan.stepCount), from: data.train, stop: false)
        let updateStart = Kernels.now()
        reduction.apply(optimizer, to: primary, learningRate: learningRate)
        let end = Kernels.now()
        times.data += reduced.timings.data
        times.reduction += reduced.timings.reduce
        times.update += end - updateStart
        times.step += end - start
    }

    for i in 0..<config.warmupSteps { try step(i) }
    // The FMA limit of the cores this rank uses: every worker thread at once, after the warm-up.
    let peaks = UnsafeMutablePointer<Double>.allocate(capacity: workerCount)
    defer { peaks.deallocate() }
    _ = workers.run { i, _, _, _ in
        peaks[i] = Kernels.peak(training.computePrecision, seconds: 0.3)
        return Totals()
    }
    let rankPeak = (0..<workerCount).reduce(0) { $0 + peaks[$1] }

    times = StepTimes()
    seconds.forEach { $0.update(repeating: 0, count: slots) }
    var barrier = [0.0]
    try comm.allreduce(&barrier, .sum)
    let start = Kernels.now(), cpuStart = processCPUSeconds()
    for i in 0..<config.steps { try step(config.warmupSteps + i) }
    let wall = Kernels.now() - start, cpuPerStep = (processCPUSeconds() - cpuStart) / Double(config.steps)

    // Mean per step over the workers.
    let n = Double(config.steps * workerCount)
    func mean(_ slot: Int) -> Double { seconds.reduce(0) { $0 + $1[slot] } / n }
    let layerCount = primary.layerCount
    let layers = (0..<layerCount).map { LayerTimes(name: layerNames[$0], forward: mean($0), backward: mean(layerCount + $0)) }
    times.forward = layers.reduce(0) { $0 + $1.forward }
    times.backward = layers.reduce(0) { $0 + $1.backward }
    times.loss = mean(2 * layerCount)
    for key in [\StepTimes.data, \.reduction, \.update, \.step] { times[keyPath: key] /= Double(config.steps) }

    // Every rank's figures, each in its own slots of one sum.
    let fields = 3
    var figures = [Double](repeating: 0, count: fields * comm.size)
    figures[fields * comm.rank] = Double(examplesOnRank(training, comm)) * Double(config.steps) / wall
    figures[fields * comm.rank + 1] = times.step
    figures[fields * comm.rank + 2] = rankPeak
    try comm.allreduce(&figures, .sum)
    let perRank = (0..<comm.size).map {
        RankFigures(rank: $0, imagesPerSecond: figures[fields * $0], stepSeconds: figures[fields * $0 + 1], peakGFLOPS: figures[fields * $0 + 2] / 1e9)
    }
    let imagesPerSecond = Double(training.batchSize * config.steps) / wall
    let flop = try model.trainingFLOP()
    let peak = perRank.reduce(0) { $0 + $1.peakGFLOPS }
    let gflops = imagesPerSecond * Double(flop) / 1e9
    return BenchmarkReport(kernels: Kernels.pathName, winograd: Kernels.winograd && Kernels.pathName != "im2col", precision: training.computePrecision.rawValue, cpu: cpuName(), ranks: comm.size, threadsPerRank: workerCount,
                           reduction: training.reduction.rawValue, buckets: reduction.bucketCount, batchSize: training.batchSize, steps: config.steps, imagesPerSecond: imagesPerSecond,
                           flopPerImage: flop, gflops: gflops, peakGFLOPS: peak, shareOfPeak: gflops / peak,
                           cpuSecondsPerStep: cpuPerStep,
                           shareOfPeakPerCPUSecond: Double(examplesOnRank(training, comm) * flop) / cpuPerStep / (rankPeak / Double(workerCount)),
                           times: times, layers: layers, perRank: perRank)
}

/// Examples of each global batch on this rank: its slice (float) or its shards (exact).
private func examplesOnRank(_ config: TrainingConfig, _ comm: Communicator) -> Int {
    let batch = config.batchSize
    guard config.reduction == .exact else { return batch * (comm.rank + 1) / comm.size - batch * comm.rank / comm.size }
    let shards = Workers.part(comm.rank, of: 0..<((batch + config.shardSize - 1) / config.shardSize), parts: comm.size)
    return min(shards.upperBound * config.shardSize, batch) - min(shards.lowerBound * config.shardSize, batch)
}

/// User and system seconds of every thread of this process.
private func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + 1e-6 * Double(t.tv_usec) }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

private func cpuName() -> String {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last
    return model.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
}

extension BenchmarkReport {
    /// The table `dptrain bench` prints.
    public var table: String {
        func ms(_ s: Double) -> String { String(format: "%8.3f", s * 1000) }
        func share(_ s: Double) -> String { String(format: "%5.1f%%", 100 * s / times.step) }
        var lines = [
            "kernels: \(kernels)\(winograd ? " + Winograd" : "")   precision: \(precision)   cpu: \(cpu)",
            "ranks \(ranks) x threads \(threadsPerRank), global batch \(batchSize), \(reduction) reduction in \(buckets == 1 ? "one sum after the backward pass" : "\(buckets) buckets during the backward pass"), \(steps) steps after warm-up",
            String(format: "images/s %.0f   GFLOP/s %.1f (%d FLOP per image)   ", imagesPerSecond, gflops, flopPerImage)
                + (precision == "bf16" ? "BF16 dot-loop" : "FMA-loop")
                + String(format: " peak %.1f GFLOP/s   share of peak %.1f%%", peakGFLOPS, 100 * shareOfPeak),
            String(format: "rank 0 CPU time %.3f ms per step (all threads): %.1f%% of the limit per CPU-second, which load on a shared machine does not lower",
                   1000 * cpuSecondsPerStep, 100 * shareOfPeakPerCPUSecond),
            "",
            "rank 0, ms per step (forward/backward/data: mean over its threads)",
            "  data      \(ms(times.data)) \(share(times.data))",
        ]
        for layer in layers { lines.append("  forward   \(ms(layer.forward)) \(share(layer.forward))  \(layer.name)") }
        lines.append("  forward   \(ms(times.loss)) \(share(times.loss))  softmax + loss")
        for layer in layers.reversed() { lines.append("  backward  \(ms(layer.backward)) \(share(layer.backward))  \(layer.name)") }
        lines += [
            "  reduction \(ms(times.reduction)) \(share(times.reduction))  allreduce left after the backward pass (waits included)",
            "  update    \(ms(times.update)) \(share(times.update))",
            "  step      \(ms(times.step))",
        ]
        if perRank.count > 1 {
            lines.append("")
            lines.append("rank   images/s   ms/step   peak GFLOP/s")
            for r in perRank { lines.append(String(format: "%4d %10.0f %9.3f %14.1f", r.rank, r.imagesPerSecond, r.stepSeconds * 1000, r.peakGFLOPS)) }
        }
        return lines.joined(separator: "\n")
    }
}
