import Foundation
import ModelFiles
import Testing
import TestSupport

/// The training recipes on the command line: schedules with warm-up, weak scaling, and Keras's
/// early stopping. The rules themselves are checked against Keras in NNTests.
@Suite(.serialized)
struct RecipeTests {
    static func rows(_ runDir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: runDir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
    }

    /// Linear warm-up over round(0.01 · 600) = 6 steps: step s runs at lr·(s+1)/6, then at lr;
    /// metrics.jsonl records the rate of every step.
    @Test func warmupRatesAreRecordedPerStep() throws {
        let dir = Repo.scratch("warmup")
        #expect(try dptrain(["train", "--max-steps", "10", "--lr", "0.06", "--warmup-epochs", "0.01", "--run-dir", dir]).status == 0)
        let rates = try #require(try Self.rows(dir).first?["learning_rates"] as? [Double])
        let expected = (0..<10).map { 0.06 * Double(min($0 + 1, 6)) / 6 }
        #expect(rates.count == 10 && zip(rates, expected).allSatisfy { abs($0 - $1) <= 1e-7 }, "\(rates)")
    }

    /// --per-rank-batch B at np=2 trains a global batch of 2B with the rate scaled linearly.
    @Test func perRankBatchScalesTheGlobalBatchAndRate() throws {
        let dir = Repo.scratch("weak")
        let result = try dptrain(["train", "--per-rank-batch", "50", "--max-steps", "3", "--run-dir", dir], ranks: 2)
        #expect(result.status == 0, "\(result)")
        let summary = try runSummary(dir)
        #expect((summary["config"] as? [String: Any])?["batchSize"] as? Int == 100)
        #expect(abs((summary["learning_rate"] as? Double ?? 0) - 0.02) < 1e-9, "\(summary)")
    }

    /// Keras's EarlyStopping on val_loss: training stops at the first epoch after `patience`
    /// epochs without a new best, and --restore-best-weights ends with the best epoch's weights.
    @Test func earlyStoppingFollowsKerasAndRestoresTheBestWeights() throws {
        let dir = Repo.scratch("early")
        let patience = 2
        let result = try dptrain(["train", "--data-dir", Repo.root.path + "/data/uci-digits", "--validation-split", "0.2",
                                  "--batch-size", "20", "--lr", "0.2", "--epochs", "30", "--early-stopping", "\(patience)",
                                  "--restore-best-weights", "--keep", "100", "--run-dir", dir])
        #expect(result.status == 0, "\(result)")
        let losses = try Self.rows(dir).map { $0["val_loss"] as? Double ?? .nan }
        // Keras's rule, replayed on the logged losses.
        var best = Double.infinity, bestEpoch = 0, wait = 0, stop: Int?
        for (epoch, loss) in losses.enumerated() {
            wait += 1
            if loss < best { (best, bestEpoch, wait) = (loss, epoch, 0); continue }
            if wait >= patience && epoch > 0 { stop = epoch; break }
        }
        #expect(stop != nil && stop == losses.count - 1, "val_loss \(losses): stopped after \(losses.count) epochs")
        #expect(try losses.count < 30 && runSummary(dir)["stopped_early"] as? Bool == true)
        #expect(result.stdout.contains("early stopping"), "\(result.stdout)")
        let stepsPerEpoch = 60  // 1,197 training examples in batches of 20
        let bestCheckpoint = try SafeTensors(path: dir + String(format: "/checkpoints/ckpt-%09d.safetensors", (bestEpoch + 1) * stepsPerEpoch))
        let model = try SafeTensors(path: dir + "/model.safetensors")
        for (name, tensor) in model.tensors { #expect(bestCheckpoint[name] == tensor, "\(name) is not the best epoch's") }
    }
}

extension RecipeTests {
    /// A learning rate that blows the run up ends it with one line, on every rank, not a crash.
    @Test func aDivergedRunStopsWithOneLine() throws {
        for ranks in [nil, 2] as [Int?] {
            let result = try dptrain(["train", "--lr", "100000", "--max-steps", "30", "--run-dir", Repo.scratch("diverged")], ranks: ranks)
            let errors = result.stderrLines.filter { $0.hasPrefix("dptrain: ") }
            #expect(result.status != 0 && errors.count == 1 && errors[0].contains("diverged"), "\(result)")
        }
    }
}
