import Foundation
import Testing
import TestSupport

/// What a real run shows of itself: TensorBoard serving its scalars (read back from a real
/// TensorBoard over HTTP) and a Chrome trace with a track per rank.
@Suite(.serialized)
struct ObservabilityTests {
    static let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path

    static func jsonLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// Two epochs of 60 steps, killed after the checkpoint at step 90 and resumed: TensorBoard
    /// serves every logged step once, and its epoch and test scalars equal metrics.jsonl and
    /// summary.json (as float32, the event file's type).
    @Test func tensorBoardServesTheRunsScalarsAcrossAKill() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "run scripts/setup --test to create .venv-test")
        let dir = Repo.scratch("tensorboard-run")
        let args = ["train", "--epochs", "2", "--batch-size", "500", "--validation-split", "0.5", "--log-every", "20",
                    "--checkpoint-every", "30", "--run-dir", dir]
        let first = try RunningProcess(command(args, ranks: nil), environment: Repo.mpiEnvironment)
        let checkpointed = first.waitUntil(timeout: 120) { FileManager.default.fileExists(atPath: dir + "/checkpoints/ckpt-000000090.safetensors") }
        kill(first.pid, SIGKILL)
        _ = first.wait(timeout: 10)
        try #require(checkpointed, "no checkpoint at step 90")
        let resumed = try dptrain(args + ["--resume", "auto"])
        try #require(resumed.status == 0, "\(resumed)")

        let tags = ["train/loss", "train/accuracy", "train/learning_rate", "train/images_per_second", "train/reduction_seconds",
                    "epoch/loss", "epoch/accuracy", "epoch/val_loss", "epoch/val_accuracy", "test/loss", "test/accuracy"]
        let helper = Repo.root.appendingPathComponent("tests/python/tensorboard_scalars.py").path
        let served = try run([Self.python, helper, dir] + tags, timeout: 150)
        try #require(served.status == 0, "\(served)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(served.stdout.utf8)) as? [String: Any])
        let scalars = try #require(object["scalars"] as? [String: [[Double]]])
        func steps(_ tag: String) -> [Int] { (scalars[tag] ?? []).map { Int($0[0]) } }
        func values(_ tag: String) -> [Float] { (scalars[tag] ?? []).map { Float($0[1]) } }

        #expect(steps("train/loss") == [20, 40, 60, 80, 100, 120], "each step once: \(steps("train/loss"))")
        #expect(values("train/learning_rate") == Array(repeating: 0.01, count: 6))
        #expect(values("train/images_per_second").allSatisfy { $0 > 0 } && values("train/reduction_seconds").allSatisfy { $0 >= 0 })
        let rows = try Self.jsonLines(dir + "/metrics.jsonl")
        #expect(rows.count == 2)
        #expect(steps("epoch/loss") == [60, 120] && steps("epoch/val_accuracy") == [60, 120])
        for (tag, key) in [("epoch/loss", "loss"), ("epoch/accuracy", "accuracy"), ("epoch/val_loss", "val_loss"), ("epoch/val_accuracy", "val_accuracy")] {
            #expect(values(tag) == rows.map { Float($0[key] as! Double) }, "\(tag)")
        }
        let summary = try runSummary(dir)
        #expect(steps("test/accuracy") == [120])
        #expect(values("test/accuracy") == [Float(summary["test_accuracy"] as! Double)])
        #expect(values("test/loss") == [Float(summary["test_loss"] as! Double)])
    }

    /// `mpirun -np 2 … --timeline`: the banner once, whole progress lines; valid Chrome trace JSON
    /// (checked by tests/python/trace_check.py) with one named track per rank, the six phases
    /// and the window's first 20 steps; per-rank times in metrics.jsonl and summary.json.
    @Test func twoRanksShowBannerTimelineAndRankTimes() throws {
        let dir = Repo.scratch("timeline")
        let trace = dir + "/trace.json"
        let result = try dptrain(["train", "--max-steps", "30", "--run-dir", dir, "--timeline", trace], ranks: 2)
        try #require(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let banner = lines.filter { $0.hasPrefix("2 ranks on 1 host (") && $0.contains("ranks 0-1), 1 thread per rank, kernels: ") }
        #expect(banner.count == 1 && ["avx512", "avx2", "portable", "im2col"].contains { banner[0].hasSuffix("kernels: " + $0) }, "\(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("data: ") && $0.contains("(28x28x1 images in 10 classes), sha256 ") })
        #expect(lines.contains("model: Conv2D(32, 5x5, relu) → MaxPooling2D(2x2) → Conv2D(64, 5x5, relu) → MaxPooling2D(2x2) → Flatten → Dense(10, softmax), 62,346 parameters"))
        #expect(lines.contains("run directory: \(dir)"))
        #expect(!result.stdout.contains("\r"), "whole lines under mpirun")
        let checked = try run(["python3", Repo.root.appendingPathComponent("tests/python/trace_check.py").path, trace], timeout: 60)
        try #require(checked.status == 0, "\(checked)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(checked.stdout.utf8)) as? [String: Any])
        #expect(report["processes"] as? [String: String] == ["0": "rank 0", "1": "rank 1"])
        #expect(report["tracks"] as? [String: [Int]] == ["0": [0], "1": [0]])
        #expect(report["steps"] as? [Int] == Array(1...20))
        #expect(Set(report["phases"] as? [String] ?? []) == ["data", "forward", "backward", "reduction-wait", "reduction", "update"])
        // A step and its six phases per rank and kept step, plus three metadata events per rank.
        #expect(report["events"] as? Int == 2 * 20 * 7 + 2 * 3)

        let rows = try Self.jsonLines(dir + "/metrics.jsonl")
        let times = try #require(rows.last?["rank_times"] as? [[String: Any]])
        #expect(times.map { $0["rank"] as? Int } == [0, 1])
        #expect(times.allSatisfy { ($0["mean_step_seconds"] as? Double ?? 0) > 0 && ($0["reduction_seconds"] as? Double ?? -1) >= 0 })
        #expect([0, 1].contains(rows.last?["slowest_rank"] as? Int))
        let summary = try runSummary(dir)
        #expect((summary["rank_times"] as? [Any])?.count == 2 && summary["slowest_rank"] is Int, "\(summary)")
    }
}
