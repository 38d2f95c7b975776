import Collectives
import NN

/// The one buffer a step's allreduce carries: every gradient in the network's order, then the
/// step's loss sum, correct count and stop flag, so the ranks agree on all of them in one call.
/// The values are Float like the gradients: loss sums of a batch and counts up to 2^24 are
/// exact enough there, and one datatype keeps it one collective.
final class StepReduction {
    private enum Slot: Int, CaseIterable { case lossSum, correct, stop }

    let gradients: UnsafeMutableBufferPointer<Float>
    private let buffer: UnsafeMutableBufferPointer<Float>
    private let extras: UnsafeMutableBufferPointer<Float>

    init(parameterCount: Int) {
        buffer = .allocate(capacity: parameterCount + Slot.allCases.count)
        buffer.initialize(repeating: 0)
        gradients = UnsafeMutableBufferPointer(rebasing: buffer[0..<parameterCount])
        extras = UnsafeMutableBufferPointer(rebasing: buffer[parameterCount...])
    }

    deinit { buffer.deallocate() }

    /// This rank's part: the gradients are already in `gradients`.
    func setLocal(_ totals: Totals, stop: Bool) {
        extras[Slot.lossSum.rawValue] = Float(totals.lossSum)
        extras[Slot.correct.rawValue] = Float(totals.correct)
        extras[Slot.stop.rawValue] = stop ? 1 : 0
    }

    func allreduce(_ comm: Communicator) throws { try comm.allreduceSum(buffer) }

    /// After `allreduce`: the global batch's totals, and whether any rank asked to stop.
    func totals(count: Int) -> Totals {
        Totals(lossSum: Double(extras[Slot.lossSum.rawValue]), correct: Double(extras[Slot.correct.rawValue]), count: count)
    }
    var stopRequested: Bool { extras[Slot.stop.rawValue] > 0 }
}
