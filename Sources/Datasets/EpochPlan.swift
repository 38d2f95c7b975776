/// Which examples every rank trains on, and in what order. Like PyTorch's DistributedSampler,
/// each epoch has one permutation seeded by (seed, epoch), identical on every rank; unlike it,
/// the global batch stays the user's: each global batch is cut into contiguous per-rank slices.
public struct EpochPlan: Sendable {
    public let order: [Int32]
    public let globalBatchSize: Int

    public init(exampleCount: Int, globalBatchSize: Int, seed: UInt64, epoch: Int) {
        var order = (0..<Int32(exampleCount)).map { $0 }
        var rng = SplitMix64(seed: seed, stream: 0xE90C &+ UInt64(epoch))
        // Fisher-Yates with the run's own generator, so every rank and platform agrees.
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        self.order = order
        self.globalBatchSize = globalBatchSize
    }

    /// Keras keeps a last partial batch.
    public var stepCount: Int { (order.count + globalBatchSize - 1) / globalBatchSize }

    /// Examples of global batch `step`.
    public func batch(_ step: Int) -> ArraySlice<Int32> {
        order[step * globalBatchSize..<min((step + 1) * globalBatchSize, order.count)]
    }

    /// Rank `rank`'s contiguous part of a batch; parts differ in size by at most one.
    public static func slice(_ batch: ArraySlice<Int32>, rank: Int, ranks: Int) -> ArraySlice<Int32> {
        let n = batch.count
        let start = batch.startIndex + n * rank / ranks, end = batch.startIndex + n * (rank + 1) / ranks
        return batch[start..<end]
    }
}
