import CKernels
import Collectives
import Datasets
import NN

/// The exact reduction: the gradient of a global batch is defined on fixed micro-shards of
/// `shardSize` examples (shard j is examples j·S ..< (j+1)·S of the batch), each computed whole
/// by one worker, rounded to fixed point and summed as integers. Integer sums are exact and
/// associative, so the result does not depend on how the shards are spread over threads and
/// ranks, nor on the order MPI adds them: the same bits at any rank and thread count.
///
/// The payload stays 32 bits wide, as narrow as the floats it replaces: each piece (a tensor,
/// or a row block of a large Dense kernel: `GradientPiece`) has its own scale 2^k, chosen from
/// the largest shard gradient of the step before so that the sum of every shard fits an Int32
/// with a bit of headroom. A shard that would not fit sets an
/// overflow flag and the step is reduced again with the scales this step's values call for
/// (rare: the first step, or a gradient that doubles in one step). The payload also carries,
/// per piece, a count of shards by the exponent of their largest value (a sum of one-hots, so
/// its top bucket is the global maximum: a max carried by a sum), the loss in 21-bit chunks of a
/// 2^-32 fixed point, the correct count, and the stop and overflow flags.
///
/// The payload is cut into the buckets of a `BucketPlan`, each with its pieces' values,
/// their exponent counts and its own overflow and diverged flags (the last bucket also the
/// loss, correct count and stop flag), so that a bucket is quantised and its sum started the
/// moment the backward pass has finished it: the scales come from the step before, so nothing
/// about a bucket waits for the rest of the step. A bucket that overflows is known from its
/// reduced flag on every rank alike, and the step is computed again at the scales every
/// piece's reduced exponent counts call for. The integers are the same however the payload is
/// bucketed, so overlap or not, any rank count, the same bits.
final class ExactReduction: GradientReduction {
    static let buckets = 128
    /// Bucket 0 holds exponents at or below this (values under 2^-100 round to zero anyway).
    static let lowestExponent = -100
    /// The top bucket means a value beyond 2^26, and a non-finite loss or gradient sets the
    /// diverged flag: the run has diverged, and every rank stops with the same error.
    /// Every bucket of the plan has the flags; the last started also the step's totals.
    private enum Flag: Int, CaseIterable { case overflow, diverged }
    private enum Slot: Int, CaseIterable { case loss0, loss1, loss2, correct, stop }

    let shardSize: Int
    let gradients: UnsafeMutableBufferPointer<Float>
    /// Per piece: the scale exponent k (values are stored as round(g · 2^k)).
    var state: [Int]
    private let tensors: [ParameterTensor]
    private let pieces: [GradientPiece]
    private let payload: UnsafeMutableBufferPointer<Int32>
    private let workers: Workers
    private let comm: Communicator
    private let pipeline: BucketPipeline
    /// Where each bucket sits in the payload, and per piece its values, its exponent counts
    /// and its bucket's flags.
    private let bucketRanges: [Range<Int>]
    private let valueAt: [Int], countsAt: [Int], flagsAt: [Int]
    /// Where the step's totals sit (in the last bucket started).
    private let slotsAt: Int
    /// One payload-sized accumulator per worker (worker 0's is the payload itself, which saves a
    /// pass), and its loss sum in 2^-32 units.
    private let accumulators: [UnsafeMutableBufferPointer<Int32>]
    private let workerLoss: UnsafeMutablePointer<Int64>
    /// Seconds each worker spent gathering data and in forward passes in the last pass.
    private let workerGather: UnsafeMutablePointer<Double>
    private let workerForward: UnsafeMutablePointer<Double>
    /// Per worker: the networks its shards are computed on, a group at a time (its replica
    /// first, the others sharing its weights), and their label buffers. With buckets, one
    /// layer's backward runs on the whole group before the next layer's, so a bucket is final
    /// on every shard of the worker as early as it would be on one big batch.
    private let groups: [[Network]]
    private let groupLabels: [[UnsafeMutablePointer<Int32>]]
    private let groupTotals: UnsafeMutablePointer<Totals>
    /// The pass's scales and the bits its shard count reserves.
    private var scales: [Int] = []
    private var sumBits = 0
    private var stop = false

    /// `groupSize`: shards a worker computes layer by layer together (1: one after the other).
    init(workers: Workers, shardSize: Int, plan: BucketPlan, groupSize: Int, comm: Communicator) throws {
        self.workers = workers
        self.shardSize = shardSize
        self.comm = comm
        tensors = workers.primary.tensors
        pieces = plan.pieces
        var valueAt = Array(repeating: 0, count: pieces.count), countsAt = valueAt, flagsAt = valueAt
        var ranges: [Range<Int>] = [], at = 0
        for (b, range) in plan.members.enumerated() {
            let begin = at
            for t in range { (valueAt[t], at) = (at, at + pieces[t].range.count) }
            for t in range { (countsAt[t], at) = (at, at + Self.buckets) }
            for t in range { flagsAt[t] = at }
            at += Flag.allCases.count + (b == plan.count - 1 ? Slot.allCases.count : 0)
            ranges.append(begin..<at)
        }
        (self.valueAt, self.countsAt, self.flagsAt, bucketRanges) = (valueAt, countsAt, flagsAt, ranges)
        slotsAt = at - Slot.allCases.count
        payload = .tensor(capacity: at)
        payload.initialize(repeating: 0)
        accumulators = [payload] + (1..<workers.count).map { _ in
            let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: at)
            buffer.initialize(repeating: 0)
            return buffer
        }
        workerLoss = .allocate(capacity: workers.count)
        workerGather = .allocate(capacity: workers.count)
        workerForward = .allocate(capacity: workers.count)
        groups = try workers.replicas.map { replica in
            try [replica] + (1..<max(groupSize, 1)).map { _ in
                let network = try Network(replica.graph, maxBatch: shardSize, sharingWeightsWith: replica)
                network.seed = replica.seed
                return network
            }
        }
        groupLabels = groups.map { $0.dropFirst().map { .allocate(capacity: $0.maxBatch) } }
        groupTotals = .allocate(capacity: workers.count * max(groupSize, 1))
        groupTotals.initialize(repeating: Totals(), count: workers.count * max(groupSize, 1))
        gradients = .tensor(capacity: workers.primary.parameterCount)
        gradients.initialize(repeating: 0)
        state = pieces.map { _ in Self.scale(maxExponent: 0, shards: 1) }
        pipeline = BucketPipeline(plan: plan, workers: workers.count, comm: comm)
        pipeline.prepare = { [unowned self] in try self.start(bucket: $0) }
    }

    deinit {
        accumulators.dropFirst().forEach { $0.deallocate() }
        payload.deallocate()
        workerLoss.deallocate()
        workerGather.deallocate()
        workerForward.deallocate()
        groupLabels.joined().forEach { $0.deallocate() }
        groupTotals.deallocate()
        gradients.deallocate()
    }

    var bucketCount: Int { pipeline.plan.count }

    /// Bits reserved for adding up `shards` values.
    static func sumBits(_ shards: Int) -> Int { Int.bitWidth - max(shards - 1, 0).leadingZeroBitCount }

    /// The scale exponent k for values below 2^(maxExponent+1) summed over `shards`, with one
    /// bit of headroom: |round(g·2^k)| ≤ 2^(29−sumBits), so the total stays below 2^30.
    /// Capped so that 2^k and 2^−k stay normal floats.
    static func scale(maxExponent: Int, shards: Int) -> Int { min(28 - sumBits(shards) - maxExponent, 126) }

    func step(_ batch: ArraySlice<Int32>, from set: LabeledImages, stop: Bool) throws -> ReducedStep {
        var timings = StepTimings()
        let start = MonotonicClock.now
        let shardCount = (batch.count + shardSize - 1) / shardSize
        let mine = (shardCount * comm.rank / comm.size)..<(shardCount * (comm.rank + 1) / comm.size)
        var reduceSeconds = 0.0
        self.stop = stop
        sumBits = Self.sumBits(shardCount)
        while true {
            scales = state
            pipeline.reset()
            _ = try workers.run({ w, _, x, y in
                self.computeShards(w, x, y, mine, of: batch, shardCount: shardCount, from: set)
                return Totals()
            }, whileWaiting: pipeline.poll)
            let reduceStart = MonotonicClock.now
            try pipeline.finish()
            reduceSeconds += MonotonicClock.now - reduceStart
            let maxExponents = try globalMaxExponents()
            let next = zip(maxExponents, state).map { exponent, k in exponent.map { Self.scale(maxExponent: $0, shards: shardCount) } ?? k }
            if flagged(.diverged) {
                // Every rank sees the same flag: all stop together, rank 0 says why.
                let error = TrainingError("the loss or a gradient is not finite: the run diverged (lower --lr)")
                throw AgreedFailure(rank: 0, phase: "training", localError: comm.isRoot ? error : nil)
            }
            if !flagged(.overflow) {
                dequantize()
                state = next
                break
            }
            state = next  // this step's own maxima: the second pass fits by construction
        }
        timings.data = workerGather[0]
        timings.reduce = reduceSeconds
        timings.forward = workerForward[0]
        timings.backward = MonotonicClock.now - start - reduceSeconds - timings.data - timings.forward
        timings.buckets = pipeline.spans
        let loss = Int64(slot(.loss0)) + Int64(slot(.loss1)) << 21 + Int64(slot(.loss2)) << 42
        let totals = Totals(lossSum: Double(loss) / 4_294_967_296, correct: Double(slot(.correct)), count: batch.count)
        return ReducedStep(totals: totals, stopRequested: slot(.stop) > 0, timings: timings)
    }

    private func slot(_ s: Slot) -> Int32 { payload[slotsAt + s.rawValue] }

    /// Whether any bucket's reduced `flag` is set.
    private func flagged(_ flag: Flag) -> Bool {
        bucketRanges.indices.contains { payload[flagsAt[pipeline.plan.members[$0].lowerBound] + flag.rawValue] != 0 }
    }

    /// Worker `w` computes its shards whole and adds them, in fixed point, to its accumulator,
    /// a group of shards at a time (see `groups`), each piece as soon as the group's backward
    /// pass has finished it; on its last group it tells the pipeline which buckets are final.
    private func computeShards(_ w: Int, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Int32>,
                               _ mine: Range<Int>, of batch: ArraySlice<Int32>, shardCount: Int, from set: LabeledImages) {
        let scale = 1 / Float(batch.count)
        let accumulator = accumulators[w]
        accumulator.update(repeating: 0)
        let networks = groups[w], layerCount = networks[0].layerCount
        let totals = groupTotals + w * networks.count
        var loss: Int64 = 0
        var gather = 0.0, forward = 0.0
        let shards = Workers.part(w, of: mine, parts: workers.count)
        for first in stride(from: shards.lowerBound, to: shards.upperBound, by: networks.count) {
            let group = first..<min(first + networks.count, shards.upperBound)
            for (j, shard) in group.enumerated() {
                let network = networks[j]
                if j > 0 { (network.step, network.layerSeconds) = (networks[0].step, networks[0].layerSeconds) }
                let begin = batch.startIndex + shard * shardSize
                let examples = batch[begin..<min(begin + shardSize, batch.endIndex)]
                let gatherStart = MonotonicClock.now
                set.gather(examples, into: j == 0 ? x : network.input, labels: j == 0 ? y : groupLabels[w][j - 1], scale: network.pixelScale)
                gather += MonotonicClock.now - gatherStart
                totals[j] = network.forwardForGradients(j == 0 ? x : network.input, labels: j == 0 ? y : groupLabels[w][j - 1],
                                                        batch: examples.count, gradientScale: scale, firstExample: shard * shardSize)
                forward += network.forwardSeconds
            }
            let last = group.upperBound == shards.upperBound
            var added = pieces.count
            for i in stride(from: layerCount - 1, through: 0, by: -1) {
                let parts = networks[0].weightParts(layer: i)
                for part in 0..<parts {
                    var final = 0
                    for j in 0..<group.count { final = networks[j].backwardWeights(layer: i, part: part) }
                    var from = added
                    while from > 0 && pieces[from - 1].range.lowerBound >= final { from -= 1 }
                    if from < added {
                        for j in 0..<group.count { add(networks[j].gradients, pieces: from..<added, into: accumulator) }
                        added = from
                    }
                    if last && (i > 0 || part < parts - 1) { pipeline.publish(worker: w, finalFrom: final) }
                }
                for j in 0..<group.count { networks[j].backwardInput(layer: i) }
            }
            for j in 0..<group.count {
                // A shard's loss is at most a few thousand; beyond 2^30 over the batch (or not
                // finite) training has diverged. The bound keeps the batch's sum of losses, in
                // units of 2^-32, within an Int64 (a per-shard bound of 2^30 overflowed it).
                guard totals[j].lossSum.isFinite, totals[j].lossSum * Double(shardCount) < 0x4000_0000 else {
                    accumulator[flagsAt[0] + Flag.diverged.rawValue] = 1
                    continue
                }
                loss += Int64((totals[j].lossSum * 4_294_967_296).rounded())
                accumulator[slotsAt + Slot.correct.rawValue] &+= Int32(totals[j].correct)
            }
        }
        workerLoss[w] = loss
        workerGather[w] = gather
        workerForward[w] = forward
        pipeline.publish(worker: w, finalFrom: 0)
    }

    /// Adds round(g·2^k) of each of `range`'s pieces to the accumulator, counts the shard's
    /// largest exponent per piece, and flags a value too large for the scale.
    private func add(_ g: UnsafeMutableBufferPointer<Float>, pieces range: Range<Int>, into accumulator: UnsafeMutableBufferPointer<Int32>) {
        for t in range {
            let piece = pieces[t].range
            let k = scales[t]
            let values = UnsafePointer(g.baseAddress! + piece.lowerBound)
            let bits = dpk_max_abs_bits(values, piece.count)
            guard bits != 0 else { continue }
            guard bits < 0x7F80_0000 else {  // infinity or NaN
                accumulator[flagsAt[t] + Flag.diverged.rawValue] = 1
                continue
            }
            let exponent = Int(bits >> 23) - 127
            let bucket = min(max(exponent - Self.lowestExponent, 0), Self.buckets - 1)
            accumulator[countsAt[t] + bucket] &+= 1
            // |round(g·2^k)| ≤ 2^(e+1+k) must stay within 2^(30−sumBits).
            guard exponent < Self.lowestExponent + Self.buckets - 1, exponent + 1 + k <= 30 - sumBits else {
                accumulator[flagsAt[t] + Flag.overflow.rawValue] = 1
                continue
            }
            dpk_quantize_add(values, piece.count, Float(sign: .plus, exponent: k, significand: 1), accumulator.baseAddress! + valueAt[t])
        }
    }

    /// Main thread, once every worker is past bucket `b`: the rank's part of it is worker 0's
    /// accumulator plus the others' (integers: any order), with the flags kept 0 or 1 and, in
    /// the last bucket, the loss in three 21-bit chunks (each sums over up to 1,024 ranks
    /// without overflow) and the stop flag. Then its sum starts.
    private func start(bucket b: Int) throws {
        let range = bucketRanges[b]
        for accumulator in accumulators.dropFirst() {
            for i in range { payload[i] &+= accumulator[i] }
        }
        let flags = flagsAt[pipeline.plan.members[b].lowerBound]
        for flag in Flag.allCases { payload[flags + flag.rawValue] = min(payload[flags + flag.rawValue], 1) }
        if b == pipeline.plan.count - 1 {
            var loss: Int64 = 0
            for w in 0..<workers.count { loss += workerLoss[w] }
            payload[slotsAt + Slot.loss0.rawValue] = Int32(loss & 0x1F_FFFF)
            payload[slotsAt + Slot.loss1.rawValue] = Int32((loss >> 21) & 0x1F_FFFF)
            payload[slotsAt + Slot.loss2.rawValue] = Int32(loss >> 42)
            payload[slotsAt + Slot.stop.rawValue] = stop ? 1 : 0
        }
        try comm.startSum(UnsafeMutableBufferPointer(rebasing: payload[range]))
    }

    /// Per piece, the largest exponent any shard had this step (nil: every shard was zero).
    private func globalMaxExponents() throws -> [Int?] {
        try pieces.indices.map { t in
            let counts = payload.baseAddress! + countsAt[t]
            guard let top = (0..<Self.buckets).last(where: { counts[$0] != 0 }) else { return nil }
            guard top < Self.buckets - 1 else {
                let error = TrainingError("the gradient of \(tensors[pieces[t].tensor].name) is beyond 2^\(Self.lowestExponent + Self.buckets - 1): the run diverged (lower --lr)")
                throw AgreedFailure(rank: 0, phase: "training", localError: comm.isRoot ? error : nil)
            }
            return Self.lowestExponent + top
        }
    }

    private func dequantize() {
        for (t, piece) in pieces.enumerated() {
            dpk_dequantize(payload.baseAddress! + valueAt[t], piece.range.count, Float(sign: .plus, exponent: -state[t], significand: 1),
                           gradients.baseAddress! + piece.range.lowerBound)
        }
    }
}
