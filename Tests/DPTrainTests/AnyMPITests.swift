import Foundation
import Testing
import TestSupport

/// The same program built against Open MPI and against MPICH (`.build-mpich`, made by
/// scripts/test) trains to the same bits: the exact reduction sums integers, so neither the
/// MPI's allreduce algorithm nor its summation order can change a bit.
@Suite(.serialized)
struct MPICHEquivalenceTests {
    static func bits(_ runDir: String) throws -> [String: [UInt32]] {
        try MPITests.weights(runDir).mapValues { $0.map(\.bitPattern) }
    }

    @Test func fiftyStepsGiveTheSameBitsUnderOpenMPIAndMPICH() throws {
        for ranks in [2, 3] {
            var weights: [String: [String: [UInt32]]] = [:]
            for flavour in [MPIFlavour.openMPI, .mpich] {
                let dir = Repo.scratch("anympi")
                let result = try RunningProcess(flavour.command(["train", "--max-steps", "50", "--seed", "2", "--threads", "1", "--run-dir", dir], ranks: ranks),
                                                environment: flavour.environment).wait(timeout: 120)
                #expect(result.status == 0, "\(flavour.name), np=\(ranks): \(result)")
                weights[flavour.name] = try Self.bits(dir)
            }
            let open = try #require(weights["Open MPI"]), mpich = try #require(weights["MPICH"])
            #expect(open.keys.sorted() == mpich.keys.sorted() && !open.isEmpty)
            for (name, values) in open {
                let differing = zip(values, mpich[name] ?? []).filter { $0 != $1 }.count
                #expect(values.count == mpich[name]?.count && differing == 0, "np=\(ranks): \(name): \(differing) of \(values.count) weights differ")
            }
        }
    }
}

/// Strong scaling stops at the shard count: a rank with no shard of the global batch would only
/// wait, so such a run is refused up front, on every rank, naming --shard-size and how many
/// ranks can work. Runs under whichever MPI the suite runs with.
@Suite(.serialized)
struct ShardLimitTests {
    /// The one `dptrain:` line of each rank.
    static func errorLines(_ result: ProcessResult) -> [Substring] { result.stderrLines.filter { $0.hasPrefix("dptrain:") } }

    @Test func moreRanksThanShardsIsRefused() throws {
        let dir = Repo.scratch("shards") + "/run"
        // A global batch of 20 has 2 shards of 10: three ranks are one too many.
        let train = try dptrain(["train", "--batch-size", "20", "--max-steps", "1", "--run-dir", dir], ranks: 3, timeout: 60)
        #expect(train.status == 1, "\(train)")
        let lines = Self.errorLines(train)
        #expect(lines.count == 3, "one line per rank: \(train)")
        for rank in 0..<3 {
            #expect(lines.contains { $0.hasPrefix("dptrain: rank \(rank): error: --shard-size: ") && $0.contains("makes 2 shards of 10, work for at most 2 ranks, not 3") && $0.contains("--shard-size 6 or less") },
                    "rank \(rank): \(train)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir), "nothing written")

        // Weak scaling: 5 per rank on 2 ranks is one shard of 10 (bench takes the same rule).
        let bench = try dptrain(["bench", "--per-rank-batch", "5", "--steps", "1", "--warmup", "0"], ranks: 2, timeout: 60)
        #expect(bench.status == 1 && Self.errorLines(bench).count == 2, "\(bench)")
        #expect(Self.errorLines(bench).allSatisfy { $0.contains("error: --shard-size: a global batch of 10 is 1 shard of 10, work for at most 1 rank, not 2; run that many or give --shard-size 5 or less") }, "\(bench)")

        // As many ranks as shards is fine.
        let fits = try dptrain(["train", "--batch-size", "20", "--max-steps", "2", "--epochs", "1", "--run-dir", dir], ranks: 2, timeout: 120)
        #expect(fits.status == 0, "\(fits)")
    }
}
