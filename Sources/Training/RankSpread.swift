extension TrainingConfig {
    /// Refuses a run in which some rank would get no share of a global batch: it would add
    /// nothing but waiting. The exact reduction's unit is the micro-shard, so it runs on at most
    /// as many ranks as a batch has shards. Shrinking the shards for the user instead would keep
    /// the run going but change its bits (a shard's gradient is rounded whole), and results must
    /// not depend on the rank count, so the choice is left to the user. `batchSize` is the global
    /// batch (after `perRankBatch`).
    public func checkWork(ranks: Int) throws {
        guard batchSize >= ranks else {
            throw TrainingError("--batch-size: \(batchSize) is smaller than the \(ranks) ranks; every rank needs an example")
        }
        guard reduction == .exact else { return }
        let shards = (batchSize + shardSize - 1) / shardSize
        guard shards >= ranks else {
            throw TrainingError("--shard-size: a global batch of \(batchSize) has \(shards) shards of \(shardSize), so at most \(shards) ranks "
                + "get work, not \(ranks); run \(shards) ranks or fewer, or give --shard-size \(batchSize / ranks) or less (other bits)")
        }
    }
}
