import Datasets
import NN

/// The threads of one rank: each has a replica of the network (shared weights, its own
/// activations and gradients) and runs single-threaded BLAS on its own examples. Splitting the
/// batch keeps every kernel parallel (im2col, pooling, GEMMs), where a threaded BLAS would
/// parallelise only the GEMMs, and small ones poorly.
final class Workers {
    let replicas: [Network]
    private let inputs: [UnsafeMutablePointer<Float>]
    private let labels: [UnsafeMutablePointer<Int32>]
    private let results: UnsafeMutablePointer<Totals>
    private let team: ThreadTeam
    private let overlapped: Bool
    var primary: Network { replicas[0] }
    var count: Int { replicas.count }

    /// `count` workers whose networks take up to `maxBatch` examples at once. `gradients`: where
    /// the primary writes (the float reduction's payload, where it adds the others' too); nil gives it its own buffer.
    /// `seed`: the key of dropout masks and augmentation. `overlapped`: every worker gets a thread
    /// of its own, so that the main thread can drive the reduction while they compute.
    init(_ model: ModelGraph, count: Int, maxBatch: Int, gradients: UnsafeMutableBufferPointer<Float>?, seed: UInt64,
         precision: Precision = .fp32, overlapped: Bool = false) throws {
        let primary = try Network(model, maxBatch: maxBatch, gradients: gradients, precision: precision)
        replicas = try [primary] + (1..<max(count, 1)).map { _ in try Network(model, maxBatch: maxBatch, sharingWeightsWith: primary) }
        for replica in replicas { replica.seed = seed }
        // Each worker gathers straight into its network's input.
        inputs = replicas.map(\.input)
        labels = replicas.map { .allocate(capacity: $0.maxBatch) }
        team = ThreadTeam(size: replicas.count, detached: overlapped)
        self.overlapped = overlapped
        results = .allocate(capacity: replicas.count)
        results.initialize(repeating: Totals(), count: replicas.count)
    }

    /// The global step the next step computes (the key of its randomness).
    var step: Int {
        get { primary.step }
        set { for replica in replicas { replica.step = newValue } }
    }

    deinit {
        labels.forEach { $0.deallocate() }
        results.deallocate()
    }

    /// Part `i` of `parts` of `range`: contiguous, sizes differing by at most one.
    static func part(_ i: Int, of range: Range<Int>, parts: Int) -> Range<Int> {
        (range.lowerBound + range.count * i / parts)..<(range.lowerBound + range.count * (i + 1) / parts)
    }

    /// Totals over the fixed chunks `chunks` of `set` (chunk c is examples c·size ..< (c+1)·size).
    /// Each chunk's loss sum is rounded to a multiple of 2^-32, so the double sums are exact and
    /// the result is the same however the chunks are spread over workers and ranks.
    func totals(of set: LabeledImages, chunks: Range<Int>, size: Int) -> Totals {
        run { i, network, x, y in
            var total = Totals()
            for chunk in Self.part(i, of: chunks, parts: self.count) {
                let range = (chunk * size)..<min((chunk + 1) * size, set.count)
                set.gather(range, into: x, labels: y, scale: network.pixelScale)
                var totals = network.totals(x, labels: y, batch: range.count)
                totals.lossSum = (totals.lossSum * 4_294_967_296).rounded() / 4_294_967_296
                total += totals
            }
            return total
        }
    }

    /// Runs `body` for every worker, in parallel when there are several, and sums the results.
    /// Nothing here allocates: the step loop calls it every step.
    func run(_ body: (Int, Network, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Totals) -> Totals {
        if replicas.count == 1 { return body(0, replicas[0], inputs[0], labels[0]) }
        team.run { i in results[i] = body(i, replicas[i], inputs[i], labels[i]) }
        return resultsTotal
    }

    private var resultsTotal: Totals { (0..<replicas.count).reduce(into: Totals()) { $0 += results[$1] } }

    /// `run`, with `progress` called on the calling thread while the workers compute (each on
    /// a thread of its own) when the workers were made `overlapped`; else just `run`.
    func run(_ body: (Int, Network, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Totals,
             whileWaiting progress: () throws -> Void) throws -> Totals {
        guard overlapped else { return run(body) }
        try team.run({ i in results[i] = body(i, replicas[i], inputs[i], labels[i]) }, whileWaiting: progress)
        return resultsTotal
    }
}
