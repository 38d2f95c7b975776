import Foundation
import Graph
import KerasFiles
import TestSupport
import Testing

/// Keras 3 itself (in .venv-test) opens the files DPTrain writes, and holds our weights.
@Suite struct KerasLoadModelTests {
    /// A Functional graph built in Swift, its nodes listed in another order than Keras's: the two
    /// same-shaped branches must land in the right weight groups (conv2d is `a`, Add's first input).
    static func branches() throws -> (ModelGraph, [String: KerasModel.Weight]) {
        let conv = { (activation: ModelGraph.Activation) in
            ModelGraph.Layer.conv2D(.init(filters: 3, kernel: [3, 3], padding: .same, activation: activation))
        }
        let graph = ModelGraph(name: "branches", functional: true, input: [6, 6, 2], inputName: "pixels", nodes: [
            Node(name: "flip", layer: .randomFlip, inputs: ["pixels"]),
            Node(name: "shift", layer: .randomTranslation(.init(height: [-0.2, 0.2], width: [-0.1, 0.3], fill: .nearest)), inputs: ["flip"]),
            Node(name: "b", layer: conv(.linear), inputs: ["shift"]),
            Node(name: "a", layer: conv(.relu), inputs: ["shift"]),
            Node(name: "sum", layer: .add, inputs: ["a", "b"]),
            Node(name: "norm", layer: .batchNormalization(.init(momentum: 0.95, epsilon: 1e-4)), inputs: ["sum"]),
            Node(name: "pool", layer: .averagePooling2D(.init(size: [2, 2])), inputs: ["norm"]),
            Node(name: "flat", layer: .flatten, inputs: ["pool"]),
            Node(name: "drop", layer: .dropout(rate: 0.25), inputs: ["flat"]),
            Node(name: "out", layer: .dense(.init(units: 3, activation: .softmax)), inputs: ["drop"]),
        ])
        var weights: [String: KerasModel.Weight] = [:]
        for (k, variable) in try graph.resolve().flatMap(\.variables).enumerated() {
            let values = (0..<variable.count).map { i in Float(sin(Double(k * 1000 + i) * 0.7)) * 0.5 + (variable.path.hasSuffix("variance") ? 1 : 0) }
            weights[variable.path] = .init(shape: variable.shape, values: values)
        }
        return (graph, weights)
    }

    @Test func kerasLoadModelOpensWhatWeWrite() throws {
        let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup --test to create .venv-test")
        let directory = Repo.scratch("keras-load")
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var ours: [String: KerasModel] = [:]
        var arguments: [String] = []
        for name in ["convnet", "residual", "augment"] {
            let model = try KerasModel.read(path: Fixture.path("\(name).keras"))
            let path = "\(directory)/\(name).keras"
            try KerasModel.write(graph: model.graph, weights: model.weights, compile: model.compile,
                                 optimizerVariables: model.compile == nil ? nil : model.optimizerVariables, to: path)
            ours[path] = model
            arguments.append("\(path)=\(Fixture.path("\(name).keras"))")
        }
        let (graph, weights) = try Self.branches()
        let branches = "\(directory)/branches.keras"
        let adam = KerasCompile(optimizer: "Adam", optimizerConfig: ["learning_rate": 0.002, "beta_1": 0.8])
        try KerasModel.write(graph: graph, weights: weights, compile: adam, to: branches)
        // A fresh Adam: iteration 0, its learning rate, zero moments for 8 trainable variables.
        let fresh = try KerasModel.read(path: branches).optimizerVariables
        #expect(fresh.count == 2 + 2 * 8)
        #expect(fresh.prefix(2).map(\.values) == [[0], [0.002]])
        ours[branches] = KerasModel(graph: graph, weights: weights, compile: adam, optimizerVariables: fresh)
        arguments.append(branches)

        let result = try run([python, "tests/python/keras_load_check.py"] + arguments, environment: ["KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"])
        try #require(result.status == 0, "\(result)")
        let report = try KerasValue.parse(Array(result.stdout.utf8))

        for (path, model) in ours {
            let entry = try #require(report[path], "\(path) missing from the report")
            #expect(entry["warnings"] == [], "\(path): \(entry["warnings"]!.json)")
            #expect(entry["class"]?.string == (model.graph.functional ? "Functional" : "Sequential"))
            let kerasWeights = try #require(entry["weights"]?.members)
            #expect(Set(kerasWeights.map(\.key)) == Set(model.weights.keys), "\(path)")
            for member in kerasWeights {
                let theirs = member.value["values"]!.array!.map { Float($0.number!) }
                #expect(member.value["shape"]?.array?.compactMap(\.int) == model.weights[member.key]?.shape, "\(path) \(member.key)")
                #expect(Fixture.bits(theirs) == Fixture.bits(model.weights[member.key]?.values ?? []), "\(path) \(member.key)")
            }
            if path != branches {
                // The same layers with the same configs, the same outputs on the same batch.
                #expect(entry["same_configs"] == true, "\(path): \(entry["config_differences"]!.json)")
                #expect(entry["same_outputs"] == true, "\(path)")
            }
            #expect(entry["optimizer"]?["class"]?.string == model.compile?.optimizer, "\(path)")
            // Keras holds the optimizer state we wrote (the fixtures' after one step, or a fresh one).
            let state = entry["optimizer"]?["variables"]?.array?.map { $0.array!.map { Float($0.number!) } } ?? []
            #expect(state.map(Fixture.bits) == model.optimizerVariables.map(\.values).map(Fixture.bits), "\(path)")
        }
        #expect(report[branches]?["optimizer"]?["learning_rate"]?.number.map(Float.init) == Float(0.002))
        #expect(report[branches]?["layers"] == ["InputLayer", "RandomFlip", "RandomTranslation", "Conv2D", "Conv2D", "Add",
                                                "BatchNormalization", "AveragePooling2D", "Flatten", "Dropout", "Dense"])
    }
}
