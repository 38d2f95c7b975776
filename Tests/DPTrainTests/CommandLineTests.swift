import ModelFiles
import Foundation
import Testing
import TestSupport
import Training

/// The command line as users meet it: the summary table, one-line errors, and a short real
/// training run with its run directory.
@Suite(.serialized)
struct CommandLineTests {
    @Test func summaryIsTheKerasTable() throws {
        let result = try dptrain(["summary"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("│ conv2d (Conv2D)") && $0.contains("(None, 24, 24, 32)") && $0.hasSuffix(" 832 │") })
        #expect(lines.contains { $0.hasPrefix("│ conv2d_1 (Conv2D)") && $0.contains("(None, 8, 8, 64)") && $0.hasSuffix(" 51,264 │") })
        #expect(lines.contains { $0.hasPrefix("│ flatten (Flatten)") && $0.contains("(None, 1024)") })
        #expect(lines.contains { $0.hasPrefix("│ dense (Dense)") && $0.contains("(None, 10)") && $0.hasSuffix(" 10,250 │") })
        #expect(lines.contains(" Total params: 62,346 (243.54 KB)"))
        #expect(lines.contains(" Trainable params: 62,346 (243.54 KB)"))
        #expect(lines.contains(" Non-trainable params: 0 (0.00 B)"))

        let custom = try dptrain(["summary", "--filters", "8,16", "--padding", "same", "--strides", "2,1", "--dense", "32"])
        #expect(custom.stdout.contains("(None, 14, 14, 8)") && custom.stdout.contains("dense_1 (Dense)"), "\(custom)")
    }

    /// Each bad input: exactly one line on stderr naming the flag or file, a non-zero exit, and
    /// an existing run directory left as it was.
    @Test(arguments: [
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--lr=-0.1"], "--lr: must be a positive number"),
        (["--lr", "0"], "--lr: must be a positive number"),
        (["--validation-split", "1"], "--validation-split: must be in [0, 1)"),
        (["--epochs", "0"], "--epochs"),
        (["--threads", "0"], "--threads"),
        (["--log-every", "0"], "--log-every: must be at least 1"),
        (["--stall-warning", "0"], "--stall-warning: must be a positive number"),
        (["--stall-timeout=-1"], "--stall-timeout: must be a positive number"),
        (["--stall-timeout", "soon"], "--stall-timeout"),
        (["--timeline", ""], "--timeline"),
        (["--padding", "full"], "--padding"),
        (["--kernel-size", "13"], "conv2d_1"),
        (["--filters", "32,64", "--kernel-size", "5,5,5"], "--kernel-size"),
        (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
        (["--init-model", "/nonexistent/model.safetensors"], "/nonexistent/model.safetensors"),
        (["--resume", "/nonexistent/ckpt.safetensors"], "/nonexistent/ckpt.safetensors"),
        (["--beta1", "0.5"], "--beta1: does not apply to --optimizer sgd"),
        (["--optimizer", "adam", "--beta2", "1"], "--beta2: must be in [0, 1)"),
        (["--optimizer", "nadam"], "--optimizer"),
        (["--lr-scaling", "linear"], "--lr-scaling: applies with --per-rank-batch only"),
        (["--early-stopping", "2"], "--early-stopping: watches val_loss"),
        (["--warmup-epochs", "9"], "--warmup-epochs"),
        (["--shard-size", "0"], "--shard-size"),
        (["--bucket-mb", "0"], "--bucket-mb: must be more than 0"),
        (["--bucket-mb", "2", "--no-overlap"], "--bucket-mb: has no effect with --no-overlap"),
        // Flags the chosen schedule does not read are refused, as optimizer flags are.
        (["--lr-decay-rate", "0.5"], "--lr-decay-rate: does not apply to --lr-schedule constant"),
        (["--lr-schedule", "step", "--lr-alpha", "0.5"], "--lr-alpha: does not apply to --lr-schedule step (it takes --lr-step-factor, --lr-step-epochs)"),
        (["--lr-schedule", "cosine", "--lr-step-epochs", "2"], "--lr-step-epochs: does not apply to --lr-schedule cosine"),
        (["--batch-size", "70000"], "--batch-size: 70000 is more than the 60000 training examples"),
    ])
    func badInputGivesOneLine(arguments: [String], named: String) throws {
        let runDir = Repo.scratch("bad-input")
        let sentinel = "epoch,accuracy,loss\n0,0.5,1.0\n"
        try sentinel.write(toFile: runDir + "/metrics.csv", atomically: true, encoding: .utf8)
        let result = try dptrain(["train", "--run-dir", runDir] + arguments)
        #expect(result.status != 0, "\(result)")
        #expect(result.stderrLines.count == 1, "\(result)")
        #expect(result.stderr.contains(named), "\(result)")
        #expect(try String(contentsOfFile: runDir + "/metrics.csv", encoding: .utf8) == sentinel)
        #expect(!FileManager.default.fileExists(atPath: runDir + "/summary.json"))
    }

    /// Valid IDX files of another image size: refused before training, naming the directory.
    @Test func dataOfAnotherImageSizeIsRefused() throws {
        let dir = Repo.scratch("small-images")
        func idx(_ dims: [Int], fill: UInt8) -> Data {
            var bytes: [UInt8] = [0, 0, 8, UInt8(dims.count)]
            for d in dims { bytes += [0, 0, UInt8(d >> 8), UInt8(d & 0xFF)] }
            return Data(bytes + [UInt8](repeating: fill, count: dims.reduce(1, *)))
        }
        for (prefix, count) in [("train", 20), ("t10k", 10)] {
            try idx([count, 8, 8], fill: 3).write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-images-idx3-ubyte"))
            try idx([count], fill: 1).write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-labels-idx1-ubyte"))
        }
        let result = try dptrain(["train", "--data-dir", dir, "--run-dir", Repo.scratch("small-run")])
        #expect(result.status != 0 && result.stderrLines.count == 1, "\(result)")
        #expect(result.stderr.contains(dir) && result.stderr.contains("8x8"), "\(result)")
    }

    @Test func modelOfAnotherArchitectureIsRefused() throws {
        let small = Repo.scratch("small-model")
        let made = try dptrain(["train", "--filters", "4,8", "--max-steps", "2", "--run-dir", small])
        #expect(made.status == 0, "\(made)")
        let model = small + "/model.safetensors"
        let runDir = Repo.scratch("mismatch")
        let result = try dptrain(["train", "--init-model", model, "--run-dir", runDir])
        #expect(result.status != 0 && result.stderrLines.count == 1, "\(result)")
        #expect(result.stderr.contains(model) && result.stderr.contains("conv2d/kernel"), "\(result)")
        // evaluate reads the architecture the file records, and refuses a file that is not a model.
        #expect(try dptrain(["evaluate", "--model", model]).stdout.contains("test accuracy:"))
        let bad = try dptrain(["evaluate", "--model", Repo.data + "/SHA256SUMS.raw"])
        #expect(bad.status != 0 && bad.stderrLines.count == 1 && bad.stderr.contains("SHA256SUMS.raw"), "\(bad)")
    }

    /// Two short epochs on real MNIST (half of it held out): the loss falls, accuracy passes a
    /// floor, and the run directory holds what Keras and Python users read.
    @Test func shortTrainingRunLearnsAndWritesItsRunDirectory() throws {
        let runDir = Repo.scratch("train")
        let result = try dptrain(["train", "--epochs", "2", "--validation-split", "0.5", "--run-dir", runDir, "--seed", "3", "--save-best"])
        #expect(result.status == 0, "\(result)")
        let progress = result.stdout.split(separator: "\n").filter { $0.hasPrefix("300/300 [====") }
        #expect(progress.count == 2 && progress.allSatisfy { $0.contains("val_accuracy: ") }, "\(result.stdout)")

        let csv = try String(contentsOfFile: runDir + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "epoch,accuracy,loss,val_accuracy,val_loss" && csv.count == 3, "\(csv)")
        let rows = try String(contentsOfFile: runDir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
        #expect(rows.count == 2 && rows[0].epoch == 0 && rows[1].epoch == 1)
        #expect(rows[1].loss < rows[0].loss, "training loss should fall: \(rows.map(\.loss))")
        #expect(rows[0].loss < 2.0, "the first epoch should already beat chance (ln 10 = 2.30)")
        #expect((rows[1].valAccuracy ?? 0) >= 0.90, "validation accuracy \(rows[1].valAccuracy ?? 0) below the 0.90 floor")
        #expect(rows.allSatisfy { $0.imagesPerSecond > 0 && $0.steps == 300 })

        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/summary.json"))) as! [String: Any]
        let accuracy = summary["test_accuracy"] as! Double
        #expect(accuracy >= 0.90, "test accuracy \(accuracy) below the 0.90 floor")
        #expect(summary["steps"] as? Int == 600 && summary["ranks"] as? Int == 1 && summary["epochs"] as? Int == 2)
        #expect(result.stdout.contains(String(format: "test accuracy: %.4f", accuracy)))

        let model = try SafeTensors(path: runDir + "/model.safetensors")
        #expect(model.tensors.map(\.name).sorted() == ["conv2d/bias", "conv2d/kernel", "conv2d_1/bias", "conv2d_1/kernel", "dense/bias", "dense/kernel"])
        #expect(model["conv2d/kernel"]?.shape == [5, 5, 1, 32] && model["conv2d_1/kernel"]?.shape == [5, 5, 32, 64])
        #expect(model["dense/kernel"]?.shape == [1024, 10] && model["dense/bias"]?.shape == [10])
        // Epoch-end checkpoints, and the best by validation accuracy (here the last epoch's).
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: runDir + "/checkpoints").sorted()
        #expect(checkpoints == ["best.safetensors", "ckpt-000000300.safetensors", "ckpt-000000600.safetensors"], "\(checkpoints)")
        let best = try SafeTensors(path: runDir + "/checkpoints/best.safetensors")
        #expect(best.metadata["global_step"] == "600" && best["conv2d/kernel"] == model["conv2d/kernel"])
        let evaluated = try dptrain(["evaluate", "--model", runDir + "/model.safetensors"])
        #expect(evaluated.stdout.contains(String(format: "test accuracy: %.4f", accuracy)), "\(evaluated)")
    }
}
