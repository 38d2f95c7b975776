import Collectives
import Datasets
import NN

/// How one step's gradient is computed over the ranks and combined, behind one seam: the float
/// reduction cuts the batch by rank and thread and sums floats (fast; the bits depend on the
/// cut), the exact one computes fixed micro-shards and sums them in fixed point (the same bits
/// at any rank and thread count).
protocol GradientReduction: AnyObject {
    /// After `step`: the mean gradient over the whole global batch, on every rank.
    var gradients: UnsafeMutableBufferPointer<Float> { get }
    /// What a checkpoint must carry for the next step to come out the same (the exact
    /// reduction's fixed-point scales; empty for the float one).
    var state: [Int] { get set }
    /// How many sums a step's gradient is reduced in.
    var bucketCount: Int { get }
    /// Computes this rank's share of `batch`, combines every rank's in one allreduce (which also
    /// carries the loss, correct count and stop flag), and returns what the ranks agreed on.
    func step(_ batch: ArraySlice<Int32>, from set: LabeledImages, stop: Bool) throws -> ReducedStep
}

extension GradientReduction {
    /// The step's update: the optimizer on the trained weights, then the batch statistics
    /// (BatchNormalization's moving averages) from their reduced slots.
    func apply(_ optimizer: any Optimizer, to network: Network, learningRate: Float) {
        let trained = network.trainableCount
        optimizer.update(UnsafeMutableBufferPointer(rebasing: network.parameters[..<trained]),
                         gradients: UnsafeBufferPointer(rebasing: gradients[..<trained]), learningRate: learningRate)
        network.updateStatistics(from: UnsafeBufferPointer(gradients))
    }
}

/// What every rank knows after a step's reduction.
struct ReducedStep {
    var totals: Totals
    var stopRequested: Bool
    var timings: StepTimings
}

/// How the gradient is combined; `exact` is the default (see `ExactReduction`).
public enum ReductionKind: String, Codable, CaseIterable, Sendable {
    case exact, float
}

/// The float reduction: each rank takes a contiguous slice of the batch, its threads contiguous
/// parts of that, and float allreduces sum the gradients, one per bucket of a `BucketPlan`, the
/// last also the step's loss sum, correct count and stop flag in three slots before the
/// gradients. Bit-identical wherever the batch is cut the same way (np=2 ≡ 2 threads) and the
/// buckets are the same, within rounding elsewhere.
final class FloatReduction: GradientReduction {
    private enum Slot: Int, CaseIterable { case lossSum, correct, stop }

    let gradients: UnsafeMutableBufferPointer<Float>
    var state: [Int] = []
    private let buffer: UnsafeMutableBufferPointer<Float>
    private let comm: Communicator
    private var plan: BucketPlan!
    private var workers: Workers!
    private var pipeline: BucketPipeline!
    /// Per worker: its part's totals and the seconds it spent gathering, in the last step.
    private var workerTotals: UnsafeMutablePointer<Totals>!
    private var workerGather: UnsafeMutablePointer<Double>!
    private var stop = false

    init(parameterCount: Int, comm: Communicator) {
        self.comm = comm
        buffer = .tensor(capacity: Slot.allCases.count + parameterCount)
        buffer.initialize(repeating: 0)
        gradients = UnsafeMutableBufferPointer(rebasing: buffer[Slot.allCases.count...])
    }

    deinit {
        buffer.deallocate()
        workerTotals?.deallocate()
        workerGather?.deallocate()
    }

    /// The workers' primary network writes its gradient straight into the payload; each
    /// worker's backward pass tells the pipeline how far it is.
    var bucketCount: Int { plan.count }

    func attach(_ workers: Workers, plan: BucketPlan) {
        (self.workers, self.plan) = (workers, plan)
        pipeline = BucketPipeline(plan: plan, workers: workers.count, comm: comm)
        pipeline.prepare = { [unowned self] in try self.start(bucket: $0) }
        workerTotals = .allocate(capacity: workers.count)
        workerTotals.initialize(repeating: Totals(), count: workers.count)
        workerGather = .allocate(capacity: workers.count)
        for (w, network) in workers.replicas.enumerated() {
            network.gradientsFinal = { [unowned self] offset in self.pipeline.publish(worker: w, finalFrom: offset) }
        }
    }

    func step(_ batch: ArraySlice<Int32>, from set: LabeledImages, stop: Bool) throws -> ReducedStep {
        var timings = StepTimings()
        let start = MonotonicClock.now
        self.stop = stop
        let mine = EpochPlan.slice(batch, rank: comm.rank, ranks: comm.size)
        let scale = 1 / Float(batch.count), firstExample = mine.startIndex - batch.startIndex
        pipeline.reset()
        _ = try workers.run({ w, network, x, y in
            let range = Workers.part(w, of: mine.indices, parts: self.workers.count)
            let gatherStart = MonotonicClock.now
            set.gather(mine[range], into: x, labels: y, scale: network.pixelScale)
            self.workerGather[w] = MonotonicClock.now - gatherStart
            self.workerTotals[w] = network.computeGradients(x, labels: y, batch: range.count, gradientScale: scale,
                                                            firstExample: firstExample + range.lowerBound - mine.startIndex)
            self.pipeline.publish(worker: w, finalFrom: 0)
            return Totals()
        }, whileWaiting: pipeline.poll)
        let reduceStart = MonotonicClock.now
        try pipeline.finish()
        (timings.data, timings.forward, timings.reduce) = (workerGather[0], workers.primary.forwardSeconds, MonotonicClock.now - reduceStart)
        timings.backward = reduceStart - start - timings.data - timings.forward
        timings.buckets = pipeline.spans
        let totals = Totals(lossSum: Double(buffer[Slot.lossSum.rawValue]), correct: Double(buffer[Slot.correct.rawValue]), count: batch.count)
        return ReducedStep(totals: totals, stopRequested: buffer[Slot.stop.rawValue] > 0, timings: timings)
    }

    /// Main thread, once every worker is past bucket `b`: the other workers' gradients added to
    /// the primary's (in worker order, element by element: the bits of one sum), the step's
    /// totals in the last bucket, then its sum starts.
    private func start(bucket b: Int) throws {
        let flat = plan.flat[b]
        for replica in workers.replicas.dropFirst() {
            let g = replica.gradients
            for j in flat { gradients[j] += g[j] }
        }
        var range = (flat.lowerBound + Slot.allCases.count)..<(flat.upperBound + Slot.allCases.count)
        if b == plan.count - 1 {
            var local = Totals()
            for w in 0..<workers.count { local += workerTotals[w] }
            buffer[Slot.lossSum.rawValue] = Float(local.lossSum)
            buffer[Slot.correct.rawValue] = Float(local.correct)
            buffer[Slot.stop.rawValue] = stop ? 1 : 0
            range = 0..<range.upperBound
        }
        try comm.startSum(UnsafeMutableBufferPointer(rebasing: buffer[range]))
    }
}
