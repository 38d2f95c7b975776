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
/// The payload stays 32 bits wide, as narrow as the floats it replaces: each tensor has its own
/// scale 2^k, chosen from the largest shard gradient of the step before so that the sum of
/// every shard fits an Int32 with a bit of headroom. A shard that would not fit sets an
/// overflow flag and the step is reduced again with the scales this step's values call for
/// (rare: the first step, or a gradient that doubles in one step). The payload also carries,
/// per tensor, a count of shards by the exponent of their largest value (a sum of one-hots, so
/// its top bucket is the global maximum: a max carried by a sum), the loss in 21-bit chunks of a
/// 2^-32 fixed point, the correct count, and the stop and overflow flags.
final class ExactReduction: GradientReduction {
    static let buckets = 128
    /// Bucket 0 holds exponents at or below this (values under 2^-100 round to zero anyway).
    static let lowestExponent = -100
    /// The top bucket means a value beyond 2^26, and a non-finite loss or gradient sets the
    /// diverged flag: the run has diverged, and every rank stops with the same error.
    private enum Slot: Int, CaseIterable { case loss0, loss1, loss2, correct, stop, overflow, diverged }

    let shardSize: Int
    let gradients: UnsafeMutableBufferPointer<Float>
    /// Per tensor: the scale exponent k (values are stored as round(g · 2^k)).
    var state: [Int]
    private let tensors: [ParameterTensor]
    private let parameterCount: Int
    private let payload: UnsafeMutableBufferPointer<Int32>
    private let workers: Workers
    private let comm: Communicator
    /// One payload-sized accumulator per worker (worker 0's is the payload itself, which saves a
    /// pass), and its loss sum in 2^-32 units.
    private let accumulators: [UnsafeMutableBufferPointer<Int32>]
    private let workerLoss: UnsafeMutablePointer<Int64>
    /// Seconds each worker spent gathering data and in forward passes in the last pass.
    private let workerGather: UnsafeMutablePointer<Double>
    private let workerForward: UnsafeMutablePointer<Double>

    init(workers: Workers, shardSize: Int, comm: Communicator) {
        self.workers = workers
        self.shardSize = shardSize
        self.comm = comm
        tensors = workers.primary.tensors
        parameterCount = workers.primary.parameterCount
        let size = parameterCount + tensors.count * Self.buckets + Slot.allCases.count
        payload = .allocate(capacity: size)
        payload.initialize(repeating: 0)
        accumulators = [payload] + (1..<workers.count).map { _ in
            let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: size)
            buffer.initialize(repeating: 0)
            return buffer
        }
        workerLoss = .allocate(capacity: workers.count)
        workerGather = .allocate(capacity: workers.count)
        workerForward = .allocate(capacity: workers.count)
        gradients = .allocate(capacity: parameterCount)
        gradients.initialize(repeating: 0)
        state = tensors.map { _ in Self.scale(maxExponent: 0, shards: 1) }
    }

    deinit {
        accumulators.forEach { $0.deallocate() }
        workerLoss.deallocate()
        workerGather.deallocate()
        workerForward.deallocate()
        gradients.deallocate()
    }

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
        while true {
            computeShards(mine, of: batch, shardCount: shardCount, from: set)
            combineWorkers(stop: stop)
            let reduceStart = MonotonicClock.now
            try comm.allreduceSum(payload)
            reduceSeconds += MonotonicClock.now - reduceStart
            let maxExponents = try globalMaxExponents()
            let next = zip(maxExponents, state).map { exponent, k in exponent.map { Self.scale(maxExponent: $0, shards: shardCount) } ?? k }
            if slot(.diverged) > 0 {
                // Every rank sees the same flag: all stop together, rank 0 says why.
                let error = TrainingError("the loss or a gradient is not finite: the run diverged (lower --lr)")
                throw AgreedFailure(rank: 0, phase: "training", localError: comm.isRoot ? error : nil)
            }
            if slot(.overflow) == 0 {
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
        let loss = Int64(slot(.loss0)) + Int64(slot(.loss1)) << 21 + Int64(slot(.loss2)) << 42
        let totals = Totals(lossSum: Double(loss) / 4_294_967_296, correct: Double(slot(.correct)), count: batch.count)
        return ReducedStep(totals: totals, stopRequested: slot(.stop) > 0, timings: timings)
    }

    private func slot(_ s: Slot) -> Int32 { payload[Self.index(of: s, in: payload)] }

    /// Where `slot` sits in a payload-sized buffer: after the gradients and the exponent counts.
    private static func index(of slot: Slot, in buffer: UnsafeMutableBufferPointer<Int32>) -> Int {
        buffer.count - Slot.allCases.count + slot.rawValue
    }

    /// Every worker computes its shards whole and adds them, in fixed point, to its accumulator.
    private func computeShards(_ mine: Range<Int>, of batch: ArraySlice<Int32>, shardCount: Int, from set: LabeledImages) {
        let scale = 1 / Float(batch.count)
        let sumBits = Self.sumBits(shardCount)
        let scales = state
        _ = workers.run { w, network, x, y in
            let accumulator = self.accumulators[w]
            accumulator.update(repeating: 0)
            var loss: Int64 = 0
            var gather = 0.0, forward = 0.0
            for shard in Workers.part(w, of: mine, parts: self.workers.count) {
                let begin = batch.startIndex + shard * self.shardSize
                let examples = batch[begin..<min(begin + self.shardSize, batch.endIndex)]
                let gatherStart = MonotonicClock.now
                set.gather(examples, into: x, labels: y, scale: network.pixelScale)
                gather += MonotonicClock.now - gatherStart
                let totals = network.computeGradients(x, labels: y, batch: examples.count, gradientScale: scale,
                                                      firstExample: shard * self.shardSize)
                forward += network.forwardSeconds
                // A shard's loss is at most a few thousand; beyond 2^30 over the batch (or not
                // finite) training has diverged. The bound keeps the batch's sum of losses, in
                // units of 2^-32, within an Int64 (a per-shard bound of 2^30 overflowed it).
                guard totals.lossSum.isFinite, totals.lossSum * Double(shardCount) < 0x4000_0000 else {
                    accumulator[Self.index(of: .diverged, in: accumulator)] = 1
                    continue
                }
                loss += Int64((totals.lossSum * 4_294_967_296).rounded())
                self.add(network.gradients, into: accumulator, scales: scales, sumBits: sumBits)
                accumulator[Self.index(of: .correct, in: accumulator)] &+= Int32(totals.correct)
            }
            self.workerLoss[w] = loss
            self.workerGather[w] = gather
            self.workerForward[w] = forward
            return Totals()
        }
    }

    /// Adds round(g·2^k) of each tensor to the accumulator, counts the shard's largest exponent
    /// per tensor, and flags a value too large for the scale.
    private func add(_ g: UnsafeMutableBufferPointer<Float>, into accumulator: UnsafeMutableBufferPointer<Int32>, scales: [Int], sumBits: Int) {
        let histogram = parameterCount
        let overflowSlot = Self.index(of: .overflow, in: accumulator)
        for (t, tensor) in tensors.enumerated() {
            let k = scales[t]
            let values = UnsafePointer(g.baseAddress! + tensor.offset)
            let bits = dpk_max_abs_bits(values, tensor.count)
            guard bits != 0 else { continue }
            guard bits < 0x7F80_0000 else {  // infinity or NaN
                accumulator[Self.index(of: .diverged, in: accumulator)] = 1
                continue
            }
            let exponent = Int(bits >> 23) - 127
            let bucket = min(max(exponent - Self.lowestExponent, 0), Self.buckets - 1)
            accumulator[histogram + t * Self.buckets + bucket] &+= 1
            // |round(g·2^k)| ≤ 2^(e+1+k) must stay within 2^(30−sumBits).
            guard exponent < Self.lowestExponent + Self.buckets - 1, exponent + 1 + k <= 30 - sumBits else {
                accumulator[overflowSlot] = 1
                continue
            }
            dpk_quantize_add(values, tensor.count, Float(sign: .plus, exponent: k, significand: 1), accumulator.baseAddress! + tensor.offset)
        }
    }

    /// The rank's payload: worker 0's accumulator plus the others' (integers: any order), the
    /// loss in three 21-bit chunks (each sums over up to 1,024 ranks without overflow), the stop flag.
    private func combineWorkers(stop: Bool) {
        for accumulator in accumulators.dropFirst() {
            for i in 0..<payload.count { payload[i] &+= accumulator[i] }
        }
        var loss: Int64 = 0
        for w in 0..<workers.count { loss += workerLoss[w] }
        let base = payload.count - Slot.allCases.count
        payload[base + Slot.loss0.rawValue] = Int32(loss & 0x1F_FFFF)
        payload[base + Slot.loss1.rawValue] = Int32((loss >> 21) & 0x1F_FFFF)
        payload[base + Slot.loss2.rawValue] = Int32(loss >> 42)
        payload[base + Slot.stop.rawValue] = stop ? 1 : 0
        payload[base + Slot.overflow.rawValue] = min(payload[base + Slot.overflow.rawValue], 1)
        payload[base + Slot.diverged.rawValue] = min(payload[base + Slot.diverged.rawValue], 1)
    }

    /// Per tensor, the largest exponent any shard had this step (nil: every shard was zero).
    private func globalMaxExponents() throws -> [Int?] {
        try tensors.indices.map { t in
            let counts = payload.baseAddress! + parameterCount + t * Self.buckets
            guard let top = (0..<Self.buckets).last(where: { counts[$0] != 0 }) else { return nil }
            guard top < Self.buckets - 1 else {
                let error = TrainingError("the gradient of \(tensors[t].name) is beyond 2^\(Self.lowestExponent + Self.buckets - 1): the run diverged (lower --lr)")
                throw AgreedFailure(rank: 0, phase: "training", localError: comm.isRoot ? error : nil)
            }
            return Self.lowestExponent + top
        }
    }

    private func dequantize() {
        for (t, tensor) in tensors.enumerated() {
            dpk_dequantize(payload.baseAddress! + tensor.offset, tensor.count, Float(sign: .plus, exponent: -state[t], significand: 1),
                           gradients.baseAddress! + tensor.offset)
        }
    }
}
