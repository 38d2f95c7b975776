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
/// parts of that, and one float allreduce sums the gradients with the step's loss sum, correct
/// count and stop flag in three extra slots. Bit-identical wherever the batch is cut the same
/// way (np=2 ≡ 2 threads), within rounding elsewhere.
final class FloatReduction: GradientReduction {
    private enum Slot: Int, CaseIterable { case lossSum, correct, stop }

    let gradients: UnsafeMutableBufferPointer<Float>
    var state: [Int] = []
    private let buffer: UnsafeMutableBufferPointer<Float>
    private let extras: UnsafeMutableBufferPointer<Float>
    private let comm: Communicator
    private var workers: Workers!

    init(parameterCount: Int, comm: Communicator) {
        self.comm = comm
        buffer = .allocate(capacity: parameterCount + Slot.allCases.count)
        buffer.initialize(repeating: 0)
        gradients = UnsafeMutableBufferPointer(rebasing: buffer[0..<parameterCount])
        extras = UnsafeMutableBufferPointer(rebasing: buffer[parameterCount...])
    }

    deinit { buffer.deallocate() }

    /// The workers' primary network writes its (summed) gradient straight into the payload.
    func attach(_ workers: Workers) { self.workers = workers }

    func step(_ batch: ArraySlice<Int32>, from set: LabeledImages, stop: Bool) throws -> ReducedStep {
        var timings = StepTimings()
        let start = MonotonicClock.now
        let mine = EpochPlan.slice(batch, rank: comm.rank, ranks: comm.size)
        let (local, gatherSeconds, forwardSeconds) = workers.computeGradients(mine, from: set, scale: 1 / Float(batch.count),
                                                                              firstExample: mine.startIndex - batch.startIndex)
        extras[Slot.lossSum.rawValue] = Float(local.lossSum)
        extras[Slot.correct.rawValue] = Float(local.correct)
        extras[Slot.stop.rawValue] = stop ? 1 : 0
        let reduceStart = MonotonicClock.now
        try comm.allreduceSum(buffer)
        (timings.data, timings.forward, timings.reduce) = (gatherSeconds, forwardSeconds, MonotonicClock.now - reduceStart)
        timings.backward = reduceStart - start - gatherSeconds - forwardSeconds
        let totals = Totals(lossSum: Double(extras[Slot.lossSum.rawValue]), correct: Double(extras[Slot.correct.rawValue]), count: batch.count)
        return ReducedStep(totals: totals, stopRequested: extras[Slot.stop.rawValue] > 0, timings: timings)
    }
}
