import Datasets
import NN

/// The threads of one rank: each has a replica of the network (shared weights, its own
/// activations and gradients) and takes a contiguous part of the rank's slice, running
/// single-threaded BLAS. Splitting the batch keeps every kernel parallel (im2col, pooling,
/// GEMMs), where a threaded BLAS would parallelise only the GEMMs, and small ones poorly.
final class Workers {
    let replicas: [Network]
    private let inputs: [UnsafeMutablePointer<Float>]
    private let labels: [UnsafeMutablePointer<Int32>]
    private let results: UnsafeMutablePointer<Totals>
    /// Seconds worker 0 spent gathering its examples in the last call.
    private var gatherSeconds = 0.0
    private let team: ThreadTeam
    var primary: Network { replicas[0] }
    var count: Int { replicas.count }

    /// `gradients`: where the summed gradient of every call lands (the step's reduction buffer).
    init(_ architecture: Architecture, threads: Int, maxRankBatch: Int, gradients: UnsafeMutableBufferPointer<Float>) throws {
        let count = max(1, min(threads, maxRankBatch))
        let perWorker = (maxRankBatch + count - 1) / count
        let primary = try Network(architecture, maxBatch: perWorker, gradients: gradients)
        replicas = try [primary] + (1..<count).map { _ in try Network(architecture, maxBatch: perWorker, sharingWeightsWith: primary) }
        inputs = replicas.map { .allocate(capacity: $0.maxBatch * $0.inputCount) }
        labels = replicas.map { .allocate(capacity: $0.maxBatch) }
        team = ThreadTeam(size: replicas.count)
        results = .allocate(capacity: replicas.count)
        results.initialize(repeating: Totals(), count: replicas.count)
    }

    deinit {
        inputs.forEach { $0.deallocate() }
        labels.forEach { $0.deallocate() }
        results.deallocate()
    }

    /// Rows of `total` for worker `i`, contiguous, sizes differing by at most one.
    private func part(_ i: Int, of total: Int) -> Range<Int> {
        (total * i / replicas.count)..<(total * (i + 1) / replicas.count)
    }

    /// Gradient of Σ loss · `scale` over `examples`, left in the primary's `gradients`; also
    /// the seconds worker 0 spent gathering data and in its forward pass (the rest is backward).
    func computeGradients(_ examples: ArraySlice<Int32>, from set: LabeledImages, scale: Float)
        -> (Totals, gatherSeconds: Double, forwardSeconds: Double) {
        let result = runAll { i, network, x, y in
            let range = self.part(i, of: examples.count)
            let mine = examples[(examples.startIndex + range.lowerBound)..<(examples.startIndex + range.upperBound)]
            let start = i == 0 ? MonotonicClock.now : 0
            set.gather(mine, into: x, labels: y)
            if i == 0 { self.gatherSeconds = MonotonicClock.now - start }
            return network.computeGradients(x, labels: y, batch: mine.count, gradientScale: scale)
        }
        let sum = primary.gradients
        for replica in replicas.dropFirst() {
            let g = replica.gradients
            for j in 0..<sum.count { sum[j] += g[j] }
        }
        return (result, gatherSeconds, primary.forwardSeconds)
    }

    /// Summed loss and correct count over examples `range` of `set`, split over the workers.
    func totals(of set: LabeledImages, range: Range<Int>) -> Totals {
        runAll { i, network, x, y in
            let mine = self.part(i, of: range.count)
            return network.totals(of: set, range: (range.lowerBound + mine.lowerBound)..<(range.lowerBound + mine.upperBound), x: x, y: y)
        }
    }

    /// Runs `body` for every worker, in parallel when there are several, and sums the results.
    /// Nothing here allocates: the step loop calls it every step.
    private func runAll(_ body: (Int, Network, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Totals) -> Totals {
        if replicas.count == 1 { return body(0, replicas[0], inputs[0], labels[0]) }
        team.run { i in results[i] = body(i, replicas[i], inputs[i], labels[i]) }
        var total = Totals()
        for i in 0..<replicas.count { total += results[i] }
        return total
    }
}
