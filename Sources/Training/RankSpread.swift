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
            let made = shards == 1 ? "is 1 shard" : "makes \(shards) shards"
            throw TrainingError("--shard-size: a global batch of \(batchSize) \(made) of \(shardSize), work for at most \(shards) "
                + "\(shards == 1 ? "rank" : "ranks"), not \(ranks); run that many or give --shard-size \(batchSize / ranks) or less (other bits)")
        }
    }
}
