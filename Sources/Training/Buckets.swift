import CKernels
import Collectives
import Foundation
import NN

/// How the flat gradient is cut for reduction: runs of whole pieces (tensors, or a large Dense
/// kernel's row blocks: `GradientPiece`), the last layers' first (the backward pass finishes
/// them first), each at least `bytes` of 4-byte values (a bigger piece is a bucket alone), as
/// PyTorch DDP's reducer and Horovod's fusion buffer cut them. The statistics (written by the
/// forward pass) ride in the first bucket. One bucket: the whole gradient, reduced after the
/// backward pass (`--no-overlap`).
struct BucketPlan: Equatable {
    let pieces: [GradientPiece]
    /// Per bucket, in the order they are started: its pieces (indices into `pieces`, ascending)
    /// and the part of the flat buffer they cover.
    let members: [Range<Int>]
    let flat: [Range<Int>]
    var count: Int { members.count }

    /// `bytes` nil: one bucket.
    init(_ tensors: [ParameterTensor], bytes: Int?) {
        let all = GradientPiece.pieces(of: tensors)
        pieces = all
        let trained = all.firstIndex { !tensors[$0.tensor].trainable } ?? all.endIndex
        guard let bytes, trained > 1 else {
            members = [0..<all.count]
            flat = [0..<(all.last?.range.upperBound ?? 0)]
            return
        }
        // At most 256 in flight (the shim's slots): bigger buckets for a model with more pieces.
        let total = (all.last?.range.upperBound ?? 0) * 4
        let size = max(bytes, total / 256 + 1)
        var cuts: [Range<Int>] = []
        var end = all.count, first = trained - 1, gathered = 0
        while first >= 0 {
            gathered += all[first].range.count * 4
            if gathered >= size || first == 0 {
                cuts.append(first..<end)
                (end, gathered) = (first, 0)
            }
            first -= 1
        }
        members = cuts
        flat = cuts.map { all[$0.lowerBound].range.lowerBound..<all[$0.upperBound - 1].range.upperBound }
    }
}

/// Starts each bucket's sum the moment every worker's gradient is final over it, in the plan's
/// order (the same on every rank, as MPI requires), and drives the sums from the main thread
/// while the workers compute. The workers say how far they are with `publish`; the reduction
/// says how a bucket is combined and started (`prepare`, on the main thread, once all workers
/// are past it). No thread but the main one calls MPI.
final class BucketPipeline {
    let plan: BucketPlan
    private let comm: Communicator
    /// Per worker: the flat offset from which its gradient is final (Int.max: nothing yet).
    private let final: UnsafeMutablePointer<Int>
    private let workers: Int
    /// Combines bucket b over the workers and starts its sum.
    var prepare: (Int) throws -> Void = { _ in }
    private var started = 0, completed = 0
    /// When each bucket's sum started and completed in the last pass (MonotonicClock seconds).
    private(set) var spans: [(start: Double, end: Double)]

    init(plan: BucketPlan, workers: Int, comm: Communicator) {
        (self.plan, self.workers, self.comm) = (plan, workers, comm)
        final = .allocate(capacity: workers)
        final.initialize(repeating: .max, count: workers)
        spans = Array(repeating: (0, 0), count: plan.count)
    }

    deinit { final.deallocate() }

    /// Before a pass: nothing is final, nothing started.
    func reset() {
        for w in 0..<workers { dpk_publish(final + w, .max) }
        (started, completed) = (0, 0)
    }

    /// A worker thread: its gradient is final from flat offset `offset` on (0: all of it, and
    /// its totals are written).
    func publish(worker: Int, finalFrom offset: Int) { dpk_publish(final + worker, offset) }

    /// Main thread: starts every bucket all workers are past, and drives the sums in flight.
    func poll() throws {
        // Final where every worker is past: the one furthest behind decides.
        var from = 0
        for w in 0..<workers { from = max(from, dpk_observe(final + w)) }
        while started < plan.count && plan.flat[started].lowerBound >= from { try start() }
        if started > completed { try record(comm.progressSums()) }
    }

    /// Main thread, after every worker is done: starts what is left and waits for all of it.
    func finish() throws {
        while started < plan.count { try start() }
        try comm.waitSums()
        record(plan.count)
    }

    private func start() throws {
        spans[started].start = MonotonicClock.now
        try prepare(started)
        started += 1
    }

    private func record(_ done: Int) {
        let now = MonotonicClock.now
        while completed < done {
            spans[completed].end = now
            completed += 1
        }
    }
}
