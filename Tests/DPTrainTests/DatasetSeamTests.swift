import Foundation
import Testing
import TestSupport

/// Data sets beyond MNIST: the model's input shape and class count come from the data.
@Suite(.serialized)
struct DatasetSeamTests {
    /// A second real IDX set in the MNIST layout (the UCI digits, committed) trains with
    /// `--data-dir` and no other flag.
    @Test func anotherRealSetTrainsWithNoOtherFlag() throws {
        let runDir = Repo.scratch("uci-digits")
        let result = try dptrain(["train", "--data-dir", Repo.root.path + "/data/uci-digits", "--run-dir", runDir])
        #expect(result.status == 0, "\(result)")
        let summary = try runSummary(runDir)
        #expect(summary["steps"] as? Int == 75, "1,497 images, batch 100, 5 epochs: \(summary)")
        #expect((summary["test_accuracy"] as? Double ?? 0) > 0.3, "\(summary)")
    }

    @Test func colourImagesOfFiveClassesTrainSummariseAndPredict() throws {
        let data = try syntheticColourSet(classes: 5)
        let summary = try dptrain(["summary", "--data-dir", data])
        #expect(summary.status == 0, "\(summary)")
        let lines = summary.stdout.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("│ conv2d (Conv2D)") && $0.contains("(None, 12, 12, 32)") && $0.hasSuffix(" 2,432 │") }, "\(summary.stdout)")
        #expect(lines.contains { $0.hasPrefix("│ dense (Dense)") && $0.contains("(None, 5)") && $0.hasSuffix(" 325 │") }, "\(summary.stdout)")

        let runDir = Repo.scratch("colour-run")
        let trained = try dptrain(["train", "--data-dir", data, "--epochs", "4", "--batch-size", "50", "--lr", "0.05", "--run-dir", runDir])
        #expect(trained.status == 0, "\(trained)")
        let record = try runSummary(runDir)
        let graph = (record["config"] as? [String: Any])?["model"] as? [String: Any]
        let nodes = graph?["nodes"] as? [[String: Any]]
        let last = (nodes?.last?["layer"] as? [String: Any])?["config"] as? [String: Any]
        #expect(graph?["input"] as? [Int] == [16, 16, 3] && last?["units"] as? Int == 5, "\(String(describing: graph))")
        #expect((record["test_accuracy"] as? Double ?? 0) >= 0.9, "the classes are separable: \(record)")

        let model = runDir + "/model.safetensors"
        let predicted = try dptrain(["predict", "--model", model, "--images", data + "/t10k-images-idx4-ubyte",
                                     "--labels", data + "/t10k-labels-idx1-ubyte"])
        #expect(predicted.status == 0, "\(predicted)")
        let classes = predicted.stdout.split(separator: "\n").prefix(100).compactMap { Int($0) }
        #expect(classes.count == 100 && classes.allSatisfy { (0..<5).contains($0) })
        #expect(predicted.stdout.contains("accuracy: ") && predicted.stdout.contains("confusion matrix"))

        // A model of another input shape or class count is refused with one line naming both.
        let onMNIST = try dptrain(["evaluate", "--model", model])
        #expect(onMNIST.status != 0 && onMNIST.stderrLines.count == 1, "\(onMNIST)")
        #expect(onMNIST.stderr.contains(model) && onMNIST.stderr.contains("16x16x3 images in 5 classes") && onMNIST.stderr.contains("28x28x1"), "\(onMNIST)")
        let fourClasses = try syntheticColourSet(classes: 4, train: 40, test: 8)
        let otherClasses = try dptrain(["evaluate", "--model", model, "--data-dir", fourClasses])
        #expect(otherClasses.status != 0 && otherClasses.stderrLines.count == 1 && otherClasses.stderr.contains("in 4 classes"), "\(otherClasses)")
        let initFrom = try dptrain(["train", "--init-model", model, "--max-steps", "1", "--run-dir", Repo.scratch("colour-init")])
        #expect(initFrom.status != 0 && initFrom.stderrLines.count == 1 && initFrom.stderr.contains(model), "\(initFrom)")
    }

    /// The embedded MNIST is found from any working directory; DPTRAIN_DATA overrides it; and
    /// with neither, the error says how to get data.
    @Test func defaultDataIsFoundFromAnyDirectory() throws {
        let runDir = Repo.scratch("elsewhere")
        let result = try RunningProcess([Repo.dptrain, "train", "--max-steps", "2", "--run-dir", runDir], directory: "/").wait(timeout: 120)
        #expect(result.status == 0, "\(result)")
        let config = try runSummary(runDir)["config"] as? [String: Any]
        #expect((config?["dataDirectory"] as? String).map { URL(fileURLWithPath: $0).standardized.path } == URL(fileURLWithPath: Repo.data).standardized.path)

        let colour = try syntheticColourSet(classes: 5, train: 40, test: 8)
        let overridden = try RunningProcess([Repo.dptrain, "summary"], environment: ["DPTRAIN_DATA": colour], directory: "/").wait(timeout: 60)
        #expect(overridden.status == 0 && overridden.stdout.contains("(None, 5)"), "\(overridden)")

        let lonely = Repo.scratch("lonely-binary")
        try FileManager.default.copyItem(atPath: Repo.dptrain, toPath: lonely + "/dptrain")
        let missing = try RunningProcess([lonely + "/dptrain", "train", "--run-dir", lonely + "/run"], directory: lonely).wait(timeout: 60)
        #expect(missing.status != 0 && missing.stderrLines.count == 1, "\(missing)")
        #expect(missing.stderr.contains("--data-dir") && missing.stderr.contains("DPTRAIN_DATA"), "\(missing)")
    }
}
