import Foundation
import KerasFiles
import ModelFiles
import NN
import Testing

/// Every layer kind of the graph against Keras 3 itself: models saved untrained by Keras
/// (`scripts/make-fixtures`, layers), read by DPTrain's Keras reader, run on the batch Keras ran:
/// training-mode outputs, the loss and every gradient; inference-mode outputs (batch
/// normalisation's moving statistics); and the weights and moving statistics after one SGD step.
struct KerasLayerTests {
    static func url(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/layers"))
    }

    /// `floor`: the smallest scale; a conv bias before batch normalisation has a gradient of
    /// zero, which both frameworks compute as rounding noise.
    static func close(_ got: [Float], _ want: [Float], relative: Float, floor: Float = 1e-6) -> (ok: Bool, error: Float) {
        let scale = max(want.map(abs).max() ?? 0, floor)
        let error = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
        return (got.count == want.count && error <= relative * scale, error)
    }

    @Test(arguments: ["convnet_k3", "bn_same", "residual", "activations"])
    func matchesKeras(_ name: String) throws {
        let model = try KerasModel.read(path: try Self.url(name, "keras").path)
        let fixture = try SafeTensors(path: try Self.url(name, "safetensors").path)
        let x = try #require(fixture["x"]?.floats)
        let labels = try #require(fixture["y"]?.int32s)
        let batch = labels.count
        let network = try Network(model.graph, maxBatch: batch)
        for t in network.tensors {
            let values = try #require(fixture["weight/" + t.name]?.floats, "\(name): no weight \(t.name)")
            #expect(model.weights[t.name]?.values == values, "\(name): the .keras file's \(t.name) is not the fixture's")
            for i in 0..<t.count { network.parameters[t.offset + i] = values[i] }
        }

        let totals = network.computeGradients(x, labels: labels, batch: batch, gradientScale: 1 / Float(batch))
        let loss = try #require(fixture["loss"]?.floats?.first)
        #expect(abs(totals.lossSum / Double(batch) - Double(loss)) <= 1e-5 * Double(loss), "\(name): loss \(totals.lossSum / Double(batch)) vs \(loss)")
        let probabilities = Array(UnsafeBufferPointer(start: network.probabilities, count: batch * network.classes))
        let training = Self.close(probabilities, try #require(fixture["probabilities"]?.floats), relative: 1e-5)
        #expect(training.ok, "\(name): training-mode probabilities differ by \(training.error)")
        for t in network.trainableTensors {
            let want = try #require(fixture["grad/" + t.name]?.floats, "\(name): no gradient for \(t.name)")
            let check = Self.close(Array(network.gradients[t.offset..<(t.offset + t.count)]), want, relative: 1e-4, floor: 1e-2)
            #expect(check.ok, "\(name): \(t.name) gradient differs by \(check.error)")
        }

        // One SGD(0.01) step, as Keras's train_on_batch: the weights, and the moving statistics.
        let sgd = try OptimizerSettings(kind: .sgd).make(parameterCount: network.trainableCount)
        let reduced = Array(network.gradients)
        sgd.update(UnsafeMutableBufferPointer(rebasing: network.parameters[..<network.trainableCount]),
                   gradients: UnsafeBufferPointer(rebasing: network.gradients[..<network.trainableCount]), learningRate: 0.01)
        reduced.withUnsafeBufferPointer { network.updateStatistics(from: $0) }
        for t in network.tensors {
            guard let want = fixture["after_step/" + t.name]?.floats else { continue }
            let check = Self.close(Array(network.parameters[t.offset..<(t.offset + t.count)]), want, relative: 1e-5)
            #expect(check.ok, "\(name): \(t.name) after one step differs by \(check.error)")
        }
        for t in network.tensors where fixture["after_step/" + t.name] == nil && !t.trainable {
            Issue.record("\(name): the fixture has no after_step/\(t.name)")
        }

        // Inference mode, with the weights (and moving statistics) before the step.
        for t in network.tensors { for i in 0..<t.count { network.parameters[t.offset + i] = fixture["weight/" + t.name]!.floats![i] } }
        network.forward(x, batch: batch)
        let inference = Self.close(Array(UnsafeBufferPointer(start: network.probabilities, count: batch * network.classes)),
                                   try #require(fixture["inference_probabilities"]?.floats), relative: 1e-5)
        #expect(inference.ok, "\(name): inference-mode probabilities differ by \(inference.error)")
    }
}
