import Foundation
import Testing
import TestSupport

/// The reduction in buckets during the backward pass (the default with more than one rank):
/// the exact reduction's weights are the same bits overlapped or not, at any rank count; the
/// float one's wherever the cut is the same; bench, the timeline and the stall watchdog see
/// the buckets. `--bucket-mb 0.01` cuts the reference model into 3 buckets (the default, 1 MB,
/// holds it whole).
@Suite(.serialized)
struct OverlapTests {
    static let buckets = ["--bucket-mb", "0.01"]

    @Test func exactBitsAreTheSameWithAndWithoutOverlap() throws {
        let common = ["train", "--max-steps", "20", "--seed", "4"]
        let single = Repo.scratch("overlap-np1")
        #expect(try dptrain(common + ["--run-dir", single, "--threads", "1"]).status == 0)
        let reference = try MPITests.weights(single)
        let timeline = Repo.scratch("overlap-trace") + "/trace.json"
        for (ranks, extra) in [(2, Self.buckets + ["--threads", "1", "--timeline", timeline]), (3, Self.buckets + ["--threads", "2"]),
                               (2, ["--no-overlap", "--threads", "2"]), (3, ["--no-overlap", "--threads", "1"])] {
            let dir = Repo.scratch("overlap")
            let result = try dptrain(common + ["--run-dir", dir] + extra, ranks: ranks)
            #expect(result.status == 0, "\(result)")
            let difference = MPITests.relativeDifference(reference, try MPITests.weights(dir))
            #expect(difference == 0, "np=\(ranks) \(extra): weights differ by \(difference) relative")
        }
        // Each rank's buckets, on its second track, every kept step: 3 per step, each after the last's start.
        let trace = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: timeline))) as! [String: Any]
        let events = (trace["traceEvents"] as! [[String: Any]]).filter { $0["cat"] as? String == "bucket" }
        for rank in 0..<2 {
            let mine = events.filter { $0["pid"] as? Int == rank && ($0["args"] as? [String: Int])?["step"] == 20 }
            #expect(mine.map { $0["name"] as! String } == ["bucket 0", "bucket 1", "bucket 2"], "rank \(rank): \(mine)")
            #expect(mine.allSatisfy { $0["tid"] as? Int == 1 && ($0["dur"] as! Double) > 0 }, "\(mine)")
        }
    }

    /// A Dense kernel over 1 MB is computed and summed in row blocks, each its own bucket at
    /// the default size (`--dense 600`: 1024x600 in three, the conv layers and the last block in
    /// one), with scales of their own: still the same bits at any rank count, overlapped or not.
    @Test func aDenseKernelInBlocksKeepsTheBits() throws {
        let common = ["train", "--dense", "600", "--max-steps", "8", "--seed", "2"]
        let single = Repo.scratch("blocks-np1")
        #expect(try dptrain(common + ["--run-dir", single, "--threads", "1"]).status == 0)
        let reference = try MPITests.weights(single)
        for (ranks, extra) in [(2, ["--threads", "1"]), (3, ["--no-overlap", "--threads", "2"])] {
            let dir = Repo.scratch("blocks")
            let result = try dptrain(common + ["--run-dir", dir] + extra, ranks: ranks)
            #expect(result.status == 0, "\(result)")
            let difference = MPITests.relativeDifference(reference, try MPITests.weights(dir))
            #expect(difference == 0, "np=\(ranks) \(extra): weights differ by \(difference) relative")
        }
        let bench = try dptrain(["bench", "--dense", "600", "--steps", "2", "--warmup", "1", "--threads", "1", "--json"], ranks: 2)
        #expect(bench.status == 0, "\(bench)")
        let report = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as! [String: Any]
        #expect(report["buckets"] as? Int == 3, "\(report["buckets"] ?? "none")")
    }

    /// At np=2 a float sum is one addition either way: bucketed, the same bits as np=1 with 2 threads.
    @Test func floatBitsAtTwoRanksWithBuckets() throws {
        let common = ["train", "--reduction", "float", "--max-steps", "20"]
        let single = Repo.scratch("overlap-float-np1")
        #expect(try dptrain(common + ["--run-dir", single, "--threads", "2"]).status == 0)
        let dir = Repo.scratch("overlap-float")
        let result = try dptrain(common + ["--run-dir", dir, "--threads", "1"] + Self.buckets, ranks: 2)
        #expect(result.status == 0, "\(result)")
        #expect(MPITests.relativeDifference(try MPITests.weights(single), try MPITests.weights(dir)) == 0)
    }

    /// bench says how the step was reduced, and the reduction it reports is what the backward
    /// pass left visible.
    @Test func benchReportsTheBuckets() throws {
        func buckets(_ extra: [String]) throws -> Int {
            let result = try dptrain(["bench", "--steps", "3", "--warmup", "1", "--threads", "1", "--json"] + extra, ranks: 2)
            #expect(result.status == 0, "\(result)")
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
            return report["buckets"] as! Int
        }
        #expect(try buckets(Self.buckets) == 3)
        #expect(try buckets(["--no-overlap"]) == 1)
        #expect(try buckets([]) == 1, "the reference model fits in one 1 MB bucket")
    }

    /// A rank stopped while the others have bucket sums in flight is named, as in one sum.
    @Test func stallWatchdogSeesTheBuckets() throws {
        let job = try StallTests.Job(ranks: 2, extra: Self.buckets)
        defer { job.teardown() }
        let stoppedAt = Date()
        kill(job.pids[1]!, SIGSTOP)
        let named = job.process.waitUntil(timeout: StallTests.warning + 10) { job.process.stderr.contains("stall") }
        let seconds = Date().timeIntervalSince(stoppedAt)
        kill(job.pids[1]!, SIGCONT)
        let line = job.process.stderr.split(separator: "\n").first { $0.contains("stall") }.map(String.init) ?? ""
        #expect(named && seconds < StallTests.warning + 3, "\(seconds)s: \(job.process.stderr)")
        #expect(line.hasPrefix("dptrain: warning: stall: step ") && line.contains("rank 1 ("), "\(line)")
        #expect(job.process.isRunning)
    }
}
