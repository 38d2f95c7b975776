import Foundation
import Graph
import KerasFiles
import Testing
import ZIPFoundation

/// The fixtures Keras 3.15.1 wrote (scripts/make-keras-fixtures) and what Keras held after
/// loading each (expected.json).
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// Per model: Keras's weights by variable path, and its optimizer's variables.
    static let expected: [String: (weights: [String: [Float]], optimizer: [[Float]])] = {
        let data = FileManager.default.contents(atPath: path("expected.json"))!
        let root = try! KerasValue.parse([UInt8](data))
        var out: [String: (weights: [String: [Float]], optimizer: [[Float]])] = [:]
        for model in root.members! {
            var weights: [String: [Float]] = [:]
            for member in model.value["weights"]!.members! { weights[member.key] = member.value.array!.map { Float($0.number!) } }
            let optimizer = model.value["optimizer"]!.array!.map { $0.array!.map { Float($0.number!) } }
            out[model.key] = (weights, optimizer)
        }
        return out
    }()

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }
}

typealias Node = ModelGraph.Node

@Suite struct KerasReadTests {
    static let convnet = ModelGraph(name: "convnet", functional: false, input: [16, 16, 1], inputName: "input_layer", nodes: [
        Node(name: "conv2d", layer: .conv2D(.init(filters: 8, kernel: [3, 3], activation: .relu)), inputs: ["input_layer"]),
        Node(name: "max_pooling2d", layer: .maxPooling2D(.init(size: [2, 2])), inputs: ["conv2d"]),
        Node(name: "conv2d_1", layer: .conv2D(.init(filters: 16, kernel: [3, 3], activation: .relu)), inputs: ["max_pooling2d"]),
        Node(name: "max_pooling2d_1", layer: .maxPooling2D(.init(size: [2, 2])), inputs: ["conv2d_1"]),
        Node(name: "flatten", layer: .flatten, inputs: ["max_pooling2d_1"]),
        Node(name: "dropout", layer: .dropout(rate: 0.5), inputs: ["flatten"]),
        Node(name: "dense", layer: .dense(.init(units: 10, activation: .softmax)), inputs: ["dropout"]),
    ])

    @Test func sequentialConvnetWithDropoutAndAdam() throws {
        let model = try KerasModel.read(path: Fixture.path("convnet.keras"))
        #expect(model.graph == Self.convnet)
        #expect(try model.graph.parameterCount() == 80 + 1168 + 650)
        #expect(model.kerasVersion == "3.15.1")
        #expect(model.notes.isEmpty)
        let expected = Fixture.expected["convnet"]!
        #expect(Set(model.weights.keys) == Set(expected.weights.keys))
        for (path, values) in expected.weights {
            #expect(Fixture.bits(model.weights[path]!.values) == Fixture.bits(values), "\(path)")
        }
        #expect(model.weights["conv2d/kernel"]?.shape == [3, 3, 1, 8])
        #expect(model.weights["dense/kernel"]?.shape == [64, 10])
        // Adam after one step: the int32 iteration count and the slots, read as float.
        #expect(model.optimizerVariables.map(\.values).map(Fixture.bits) == expected.optimizer.map(Fixture.bits))
        #expect(model.optimizerVariables.first?.values == [1])
        let compile = try #require(model.compile)
        #expect(compile.optimizer == "Adam")
        #expect(compile.optimizerConfig["learning_rate"]?.number == 0.0010000000474974513)
        #expect(compile.optimizerConfig["beta_2"]?.number == 0.999)
        #expect(compile.optimizerConfig["amsgrad"]?.bool == false)
        #expect(compile.lossName == "categorical_crossentropy")
        #expect(compile.metrics == ["accuracy"])
    }

    @Test func functionalResidualWithBatchNormalizationAndAdd() throws {
        let model = try KerasModel.read(path: Fixture.path("residual.keras"))
        func conv(_ filters: Int, _ k: Int, strides: Int = 1, padding: ModelGraph.Padding = .same, activation: ModelGraph.Activation = .linear, bias: Bool = true) -> ModelGraph.Layer {
            .conv2D(.init(filters: filters, kernel: [k, k], strides: [strides, strides], padding: padding, activation: activation, useBias: bias))
        }
        let expected = ModelGraph(name: "residual", functional: true, input: [8, 8, 3], inputName: "image", nodes: [
            Node(name: "rescaling", layer: .rescaling(scale: 1.0 / 255, offset: 0), inputs: ["image"]),
            Node(name: "conv2d_2", layer: conv(8, 3, bias: false), inputs: ["rescaling"]),
            Node(name: "batch_normalization", layer: .batchNormalization(.init()), inputs: ["conv2d_2"]),
            Node(name: "re_lu", layer: .relu, inputs: ["batch_normalization"]),
            Node(name: "conv2d_3", layer: conv(8, 3, activation: .relu), inputs: ["re_lu"]),
            Node(name: "conv2d_4", layer: conv(8, 3), inputs: ["conv2d_3"]),
            Node(name: "add", layer: .add, inputs: ["conv2d_4", "re_lu"]),
            Node(name: "activation", layer: .activation(.relu), inputs: ["add"]),
            Node(name: "main", layer: conv(12, 3, strides: 2), inputs: ["activation"]),
            Node(name: "shortcut", layer: conv(12, 1, strides: 2, padding: .valid), inputs: ["activation"]),
            Node(name: "merge", layer: .add, inputs: ["main", "shortcut"]),
            Node(name: "global_average_pooling2d", layer: .globalAveragePooling2D, inputs: ["merge"]),
            Node(name: "dropout_1", layer: .dropout(rate: 0.2), inputs: ["global_average_pooling2d"]),
            Node(name: "dense_1", layer: .dense(.init(units: 4, activation: .softmax)), inputs: ["dropout_1"]),
        ])
        #expect(model.graph == expected)
        let reference = Fixture.expected["residual"]!
        #expect(Set(model.weights.keys) == Set(reference.weights.keys))
        for (path, values) in reference.weights {
            #expect(Fixture.bits(model.weights[path]!.values) == Fixture.bits(values), "\(path)")
        }
        // One training step moved the moving statistics off their initial zeros and ones.
        #expect(model.weights["batch_normalization/moving_mean"]!.values.contains { $0 != 0 })
        #expect(model.weights["batch_normalization/moving_variance"]!.values.contains { $0 != 1 })
        #expect(model.optimizerVariables.count == 15)
        let compile = try #require(model.compile)
        #expect(compile.optimizer == "SGD")
        #expect(compile.optimizerConfig["momentum"]?.number == 0.9)
        #expect(compile.optimizerConfig["nesterov"]?.bool == true)
        #expect(compile.metrics.isEmpty)
    }

    @Test func augmentationAndEverySetting() throws {
        let model = try KerasModel.read(path: Fixture.path("augment.keras"))
        let expected = ModelGraph.sequential(name: "augment", input: [12, 12, 3], [
            ("random_flip", .randomFlip),
            ("random_translation", .randomTranslation(.init(height: [-0.1, 0.1], width: [-0.2, 0.3], fill: .constant, interpolation: .nearest, fillValue: 0.5))),
            ("rescaling_1", .rescaling(scale: 2, offset: -1)),
            ("conv2d_5", .conv2D(.init(filters: 4, kernel: [3, 5], strides: [2, 1], padding: .same, activation: .tanh, useBias: false))),
            ("average_pooling2d", .averagePooling2D(.init(size: [2, 2], strides: [1, 1], padding: .same))),
            ("batch_normalization_1", .batchNormalization(.init(momentum: 0.9, epsilon: 1e-5, center: false, scale: true))),
            ("activation_1", .activation(.gelu)),
            ("max_pooling2d_2", .maxPooling2D(.init(size: [3, 2], strides: [1, 2]))),
            ("global_max_pooling2d", .globalMaxPooling2D),
            ("dense_2", .dense(.init(units: 5, activation: .sigmoid, useBias: false))),
            ("dense_3", .dense(.init(units: 3, activation: .softmax))),
        ])
        var withInputName = expected
        withInputName.inputName = "input_layer_1"
        withInputName.nodes[0].inputs = ["input_layer_1"]
        #expect(model.graph == withInputName)
        #expect(model.compile == nil)
        #expect(model.optimizerVariables.isEmpty)
        let reference = Fixture.expected["augment"]!
        #expect(Set(model.weights.keys) == Set(reference.weights.keys))
        for (path, values) in reference.weights {
            #expect(Fixture.bits(model.weights[path]!.values) == Fixture.bits(values), "\(path)")
        }
        #expect(model.weights["batch_normalization_1/gamma"]?.shape == [4])
        #expect(model.weights["batch_normalization_1/beta"] == nil)
    }

    @Test func jsonOfToJsonHasTheGraphAndNoWeights() throws {
        let model = try KerasModel.read(path: Fixture.path("convnet.json"))
        #expect(model.graph == Self.convnet)
        #expect(model.weights.isEmpty)
        #expect(model.kerasVersion == nil)
        #expect(model.compile?.optimizer == "Adam")
    }

    /// read → write → read: the same graph, the same bits, the same compile config.
    @Test(arguments: ["convnet.keras", "residual.keras", "augment.keras"])
    func roundTrip(_ name: String) throws {
        let original = try KerasModel.read(path: Fixture.path(name))
        let directory = NSTemporaryDirectory() + "keras-roundtrip-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/\(name)"
        try KerasModel.write(graph: original.graph, weights: original.weights, compile: original.compile,
                             optimizerVariables: original.compile == nil ? nil : original.optimizerVariables, to: path)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let again = try KerasModel.read(path: path)
        #expect(again.graph == original.graph)
        #expect(again.compile == original.compile)
        #expect(Set(again.weights.keys) == Set(original.weights.keys))
        for (key, weight) in original.weights {
            #expect(again.weights[key]?.shape == weight.shape)
            #expect(Fixture.bits(again.weights[key]!.values) == Fixture.bits(weight.values), "\(key)")
        }
        #expect(again.optimizerVariables.map(\.shape) == original.optimizerVariables.map(\.shape))
        #expect(again.optimizerVariables.map { Fixture.bits($0.values) } == original.optimizerVariables.map { Fixture.bits($0.values) })
        #expect(again.kerasVersion == KerasModel.kerasVersionWritten)
        // Stored entries, as Keras writes them, in Keras's order.
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        #expect(archive.map(\.path) == ["metadata.json", "config.json", "model.weights.h5"])
        #expect(archive.allSatisfy { $0.compressedSize == $0.uncompressedSize })
    }
}
