import Foundation
import Testing
import TestSupport
import Training

/// `dptrain bench`: the JSON record scripts read, alone and under mpirun (rank 0 reports every rank).
@Suite(.serialized)
struct BenchTests {
    static func record(_ result: ProcessResult) throws -> [String: Any] {
        #expect(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
    }

    @Test func jsonRecordOfOneProcess() throws {
        let r = try Self.record(try dptrain(["bench", "--warmup", "1", "--steps", "3", "--threads", "2", "--json"]))
        #expect(["avx512", "avx2", "portable"].contains(r["kernels"] as? String ?? ""), "\(r)")
        #expect(r["flopPerImage"] as? Int == 21_565_440)
        #expect(r["ranks"] as? Int == 1 && r["threadsPerRank"] as? Int == 2)
        #expect((r["imagesPerSecond"] as? Double ?? 0) > 0 && (r["peakGFLOPS"] as? Double ?? 0) > 0)
        let layers = try #require(r["layers"] as? [[String: Any]])
        #expect(layers.compactMap { $0["name"] as? String }.contains("dense"), "\(layers)")
    }

    @Test func everyRankReportsUnderMPI() throws {
        let result = try dptrain(["bench", "--warmup", "1", "--steps", "3", "--json"], ranks: 2)
        let r = try Self.record(result)
        let ranks = try #require(r["perRank"] as? [[String: Any]])
        #expect(ranks.map { $0["rank"] as? Int } == [0, 1] && ranks.allSatisfy { ($0["imagesPerSecond"] as? Double ?? 0) > 0 }, "\(ranks)")
        #expect(result.stdout.split(separator: "\n").count == 1, "only rank 0 prints: \(result.stdout)")
    }

    @Test func imTwoColPathIsForced() throws {
        let result = try RunningProcess([Repo.dptrain, "bench", "--warmup", "0", "--steps", "1", "--json"],
                                        environment: Repo.mpiEnvironment.merging(["DPTRAIN_KERNELS": "im2col"]) { $1 }).wait(timeout: 120)
        #expect(try Self.record(result)["kernels"] as? String == "im2col")
    }
}
