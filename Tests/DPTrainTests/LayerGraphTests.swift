import Foundation
import KerasFiles
import ModelFiles
import NN
import Datasets
import Testing
import TestSupport
import Training

/// A Keras user's own model, trained here and taken back: a CIFAR-style graph (augmentation,
/// batch normalisation, a residual Add, global pooling, Dropout) gives the same bits at every
/// rank and thread count and across a kill and a resume on another rank count; the model.keras
/// a run writes is the one Keras itself evaluates.
@Suite(.serialized)
struct LayerGraphTests {
    static let cifarStyle: ModelGraph = {
        func conv(_ filters: Int, _ activation: ModelGraph.Activation = .linear) -> ModelGraph.Layer {
            .conv2D(.init(filters: filters, kernel: [3, 3], padding: .same, activation: activation))
        }
        func node(_ name: String, _ layer: ModelGraph.Layer, _ inputs: String...) -> ModelGraph.Node { .init(name: name, layer: layer, inputs: inputs) }
        return ModelGraph(name: "cifar_style", functional: true, input: [32, 32, 3], nodes: [
            node("random_flip", .randomFlip, "input_layer"),
            node("random_translation", .randomTranslation(.init(height: [-0.1, 0.1], width: [-0.1, 0.1])), "random_flip"),
            node("conv2d", conv(8), "random_translation"),
            node("batch_normalization", .batchNormalization(.init()), "conv2d"),
            node("activation", .activation(.relu), "batch_normalization"),
            node("conv2d_1", conv(8), "activation"),
            node("batch_normalization_1", .batchNormalization(.init()), "conv2d_1"),
            node("add", .add, "batch_normalization_1", "activation"),
            node("activation_1", .activation(.relu), "add"),
            node("max_pooling2d", .maxPooling2D(.init(size: [2, 2])), "activation_1"),
            node("conv2d_2", conv(16, .relu), "max_pooling2d"),
            node("global_average_pooling2d", .globalAveragePooling2D, "conv2d_2"),
            node("dropout", .dropout(rate: 0.3), "global_average_pooling2d"),
            node("dense", .dense(.init(units: 5, activation: .softmax)), "dropout"),
        ])
    }()

    /// The model as a Keras user hands it over: a .keras file with its initial weights and Adam.
    static let modelFile: String = {
        let network = try! Network(cifarStyle, maxBatch: 1)
        var rng = SplitMix64(seed: 5)
        network.initialize(using: &rng)
        let weights = Dictionary(uniqueKeysWithValues: network.tensors.map {
            ($0.name, KerasModel.Weight(shape: $0.shape, values: Array(network.parameters[$0.offset..<($0.offset + $0.count)])))
        })
        let path = Repo.scratch("cifar-style") + ".keras"
        try! KerasModel.write(graph: cifarStyle, weights: weights, compile: KerasCompile(optimizer: "Adam", optimizerConfig: .object([.init("learning_rate", .double(0.002))])), to: path)
        return path
    }()

    static let data = try! syntheticColourSet(classes: 5, size: 32, train: 600, test: 100)
    static let arguments = ["train", "--model", modelFile, "--data-dir", data, "--batch-size", "60", "--epochs", "5", "--seed", "4"]

    static func tensorBytes(_ runDir: String) throws -> [String: [UInt8]] {
        let file = try SafeTensors(path: runDir + "/model.safetensors")
        return Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.tensor.bytes) })
    }

    @Test func sameBitsAtEveryRankAndThreadCount() throws {
        let single = Repo.scratch("graph-np1")
        let first = try dptrain(Self.arguments + ["--run-dir", single, "--threads", "1"])
        #expect(first.status == 0, "\(first)")
        let reference = try Self.tensorBytes(single)
        #expect(reference.keys.contains("batch_normalization/moving_variance"))
        for ranks in [1, 2, 3] {
            for threads in [1, 2] where ranks > 1 || threads > 1 {
                let dir = Repo.scratch("graph")
                let result = try dptrain(Self.arguments + ["--run-dir", dir, "--threads", "\(threads)"], ranks: ranks)
                #expect(result.status == 0, "\(result)")
                for (name, bytes) in try Self.tensorBytes(dir) where bytes != reference[name] {
                    Issue.record("np=\(ranks), \(threads) threads: \(name) differs")
                }
            }
        }
    }

    @Test func killedAtTwoRanksResumedAtThreeEqualsTheUninterruptedRun() throws {
        let arguments = Self.arguments + ["--checkpoint-every", "10"]
        let dir = Repo.scratch("graph-kill")
        let job = try RunningProcess(command(arguments + ["--run-dir", dir], ranks: 2), environment: Repo.mpiEnvironment)
        let checkpointed = job.waitUntil(timeout: 120) {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints")) ?? []).contains { $0.hasPrefix("ckpt-") && $0 >= "ckpt-000000020" }
        }
        #expect(checkpointed, "no checkpoint at step 20")
        rankProcesses(matching: dir).forEach { kill($0, SIGKILL) }
        _ = job.wait(timeout: 30)
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"), "the run finished before it was killed")
        let resumed = try dptrain(arguments + ["--run-dir", dir, "--resume", "auto"], ranks: 3)
        #expect(resumed.status == 0 && resumed.stdout.contains("resumed from ckpt-"), "\(resumed)")
        let single = Repo.scratch("graph-single")
        #expect(try dptrain(arguments + ["--run-dir", single]).status == 0)
        #expect(try Self.tensorBytes(dir) == Self.tensorBytes(single), "np=2 -> np=3 differs from an uninterrupted np=1 run")
    }

    /// keras-io's mnist_convnet, saved untrained by Keras: trained here with the Adam of its
    /// compile_config, its model.keras opens in Keras 3 and evaluates to the reported accuracy.
    @Test func kerasEvaluatesTheModelItWrote() throws {
        let dir = Repo.scratch("keras-convnet")
        let trained = try dptrain(["train", "--model", Repo.root.appendingPathComponent("examples/keras/mnist_convnet.keras").path,
                                   "--max-steps", "60", "--batch-size", "128", "--run-dir", dir])
        #expect(trained.status == 0, "\(trained)")
        let record = try runSummary(dir)
        #expect((record["optimizer"] as? String)?.hasPrefix("adam") == true, "\(record)")
        let keras = try run([Repo.venvPython, Repo.root.appendingPathComponent("tests/python/keras_evaluate.py").path, dir + "/model.keras",
                             Repo.root.appendingPathComponent("data/mnist").path], timeout: 300)
        #expect(keras.status == 0, "\(keras)")
        let result = try JSONSerialization.jsonObject(with: Data(keras.stdout.utf8)) as? [String: Any] ?? [:]
        let ours = try #require(record["test_accuracy"] as? Double), theirs = try #require(result["accuracy"] as? Double)
        #expect(abs(ours - theirs) <= 0.0005, "DPTrain reported \(ours), Keras evaluates \(theirs)")
        #expect(ours > 0.8, "60 steps of Adam reach well past chance: \(ours)")
    }

    /// The example models as Keras wrote them (bench/run's among them): `dptrain summary --model`
    /// prints the very table Keras's model.summary() printed for each, byte for byte.
    @Test(arguments: ["mnist_convnet", "cifar_resnet", "cifar_convnet"])
    func exampleSummariesAreKerasOwn(_ name: String) throws {
        let examples = Repo.root.appendingPathComponent("examples/keras")
        let result = try dptrain(["summary", "--model", examples.appendingPathComponent(name + ".keras").path], timeout: 60)
        #expect(result.status == 0, "\(result)")
        let keras = try String(contentsOf: examples.appendingPathComponent(name + ".summary.txt"), encoding: .utf8)
        #expect(result.stdout == keras)
    }

    /// A file that is no Keras model, or a layer DPTrain does not support: one line naming the
    /// file, the layer and what is wrong, status 1 on every rank under mpirun, nothing written.
    @Test(arguments: [
        ("truncated.keras", "PK\u{3}\u{4}garbage", "not a .keras archive"),
        ("conv3d.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}}, {"class_name": "Conv3D", "config": {"name": "c3"}}]}}"#, "layer 'c3' (Conv3D)"),
        ("dilated.json", #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}}, {"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": [3, 3], "dilation_rate": [2, 2]}}, {"class_name": "Flatten", "config": {"name": "f"}}, {"class_name": "Dense", "config": {"name": "d", "units": 10, "activation": "softmax"}}]}}"#, "layer 'c' (Conv2D): dilation_rate"),
        ("invalid.json", "{\"class_name\": ", "invalid JSON"),
    ])
    func badModelFilesAreOneLineOnEveryRank(_ name: String, _ content: String, _ message: String) throws {
        let path = Repo.scratch("bad-model") + "/" + name
        try content.write(toFile: path, atomically: true, encoding: .utf8)
        let runDir = Repo.scratch("bad-model-run") + "/run"
        let result = try dptrain(["train", "--model", path, "--run-dir", runDir], ranks: 2, timeout: 60)
        #expect(result.status == 1, "\(result)")
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("dptrain:") }
        #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("error: \(path): ") && $0.contains(message) }, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: runDir), "a refused model must leave nothing behind")
    }

    /// A zip that seeks past its own end (found by scripts/fuzz): ZIPFoundation's in-memory
    /// archive trapped on it; the .keras and .npz readers read from the file and say one line.
    /// And a weights file whose dataset claims tens of GB: libhdf5's allocation fails, one line.
    @Test(arguments: [("keras-seeks-past-end", "keras"), ("keras-seeks-past-end", "npz"), ("keras-huge-dataset", "keras")])
    func corruptZipIsOneLine(_ seed: String, _ kind: String) throws {
        let path = Repo.scratch("zip") + "/model." + kind
        try FileManager.default.copyItem(atPath: Repo.root.appendingPathComponent("Tests/Fuzz/seeds/\(seed).keras").path, toPath: path)
        let result = try dptrain(kind == "keras" ? ["summary", "--model", path] : ["summary", "--data", path], timeout: 60)
        #expect(result.status == 1 && result.stderr.hasPrefix("dptrain: error: \(path)"), "\(result)")
    }
}
