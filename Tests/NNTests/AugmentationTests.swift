import Foundation
import ModelFiles
import NN
import Testing

/// The training-only layers against Keras 3 itself (`scripts/make-fixtures`, augment and dropout
/// fixtures), and their keys: the same example at the same step gets the same draw wherever
/// it is computed.
struct AugmentationTests {
    static func fixture(_ name: String) throws -> SafeTensors {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures/layers"))
        return try SafeTensors(path: url.path)
    }

    /// RandomTranslation's geometry, every fill mode and both interpolations, at whole and
    /// fractional shifts, equals Keras's `transform_images` on the same translations.
    @Test(arguments: ["constant_bilinear", "constant_bilinear_fill0.5", "nearest_bilinear", "reflect_bilinear", "reflect_nearest", "wrap_bilinear"])
    func translationMatchesKeras(_ name: String) throws {
        let f = try Self.fixture("augment")
        let input = try #require(f["input"]?.floats), shape = try #require(f["input"]?.shape)
        let want = try #require(f["translate/\(name)/output"]?.floats)
        let shifts = try #require(f["translate/\(name)/translations"]?.floats)
        struct Case: Decodable { var fill_mode: String; var fill_value: Double; var interpolation: String }
        let settings = try JSONDecoder().decode(Case.self, from: Data(f.metadata["translate/\(name)"]!.utf8))
        let layer = ModelGraph.RandomTranslation(height: [0, 0], width: [0, 0], fill: .init(rawValue: settings.fill_mode)!,
                                                 interpolation: .init(rawValue: settings.interpolation)!, fillValue: settings.fill_value)
        let size = shape[1] * shape[2] * shape[3]
        for b in 0..<shape[0] {
            let image = Array(input[(b * size)..<((b + 1) * size)])
            let got = RandomTranslationLayer.translate(image, shape: Array(shape[1...]), dy: shifts[2 * b + 1], dx: shifts[2 * b], settings: layer)
            let error = zip(got, want[(b * size)..<((b + 1) * size)]).map { abs($0 - $1) }.max()!
            #expect(error < 1e-5, "\(name), image \(b) shifted by (dx, dy) = (\(shifts[2 * b]), \(shifts[2 * b + 1])): off by \(error)")
        }
    }

    /// A one-layer-then-softmax network, to read what a training-only layer gave.
    static func network(_ layer: ModelGraph.Layer, input: [Int], batch: Int) throws -> Network {
        let graph = ModelGraph.sequential(input: input, [("aug", layer), ("flat", .flatten), ("out", .dense(.init(units: 2, activation: .softmax)))])
        let network = try Network(graph, maxBatch: batch)
        network.seed = 3
        return network
    }

    /// Dropout(0.5) keeps each value with probability 1/2 and doubles it, as Keras's does (its
    /// mask statistics in the fixture); rate 0 and inference are the identity.
    @Test func dropoutMasksHaveKerasStatistics() throws {
        let f = try Self.fixture("dropout")
        let keptValue = try #require(f["rate_0_5/kept_value"]?.floats?.first)
        let count = 20_000, batch = 5
        let ones = [Float](repeating: 1, count: count * batch)
        let labels = [Int32](repeating: 0, count: batch)
        let network = try Self.network(.dropout(rate: 0.5), input: [count, 1, 1], batch: batch)
        network.computeGradients(ones, labels: labels, batch: batch, gradientScale: 1)
        let out = try #require(network.output(ofLayer: "aug", batch: batch))
        #expect(Set(out) == [0, keptValue])
        let mean = out.reduce(0, +) / Float(out.count)
        let variance = out.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(out.count)
        // 100,000 draws: the mean's standard error is 0.003.
        #expect(abs(mean - 1) < 0.015 && abs(variance - 1) < 0.015, "mean \(mean), variance \(variance)")
        network.forward(ones, batch: batch)
        #expect(try #require(network.output(ofLayer: "aug", batch: batch)) == ones)
        let none = try Self.network(.dropout(rate: 0), input: [count, 1, 1], batch: batch)
        none.computeGradients(ones, labels: labels, batch: batch, gradientScale: 1)
        #expect(try #require(none.output(ofLayer: "aug", batch: batch)) == ones)
    }

    /// An example's mask and flip depend on the seed, the step and its place in the global
    /// batch only: computed alone at its position, it gets what it got inside the batch.
    @Test(arguments: [ModelGraph.Layer.dropout(rate: 0.3), .randomFlip,
                      .randomTranslation(.init(height: [-0.2, 0.2], width: [-0.2, 0.2]))])
    func drawsDependOnTheExampleNotTheBatch(_ layer: ModelGraph.Layer) throws {
        let batch = 8, shape = [6, 5, 2]
        let size = shape.reduce(1, *)
        let x = (0..<(batch * size)).map { Float(($0 * 37) % 101) / 101 }
        let labels = [Int32](repeating: 1, count: batch)
        let whole = try Self.network(layer, input: shape, batch: batch)
        whole.step = 11
        whole.computeGradients(x, labels: labels, batch: batch, gradientScale: 1)
        let all = try #require(whole.output(ofLayer: "aug", batch: batch))
        #expect(all != x, "\(layer.kerasClass) changed nothing in training")
        for b in [0, 5, 7] {
            let one = try Self.network(layer, input: shape, batch: 1)
            one.step = 11
            one.computeGradients(Array(x[(b * size)..<((b + 1) * size)]), labels: [1], batch: 1, gradientScale: 1, firstExample: b)
            #expect(try #require(one.output(ofLayer: "aug", batch: 1)) == Array(all[(b * size)..<((b + 1) * size)]))
        }
        if case .randomFlip = layer {
            for b in 0..<batch {
                let image = Array(x[(b * size)..<((b + 1) * size)]), got = Array(all[(b * size)..<((b + 1) * size)])
                var mirrored = image
                for r in 0..<shape[0] { for c in 0..<shape[1] { for k in 0..<shape[2] {
                    mirrored[(r * shape[1] + c) * shape[2] + k] = image[(r * shape[1] + shape[1] - 1 - c) * shape[2] + k]
                } } }
                #expect(got == image || got == mirrored)
            }
        }
    }
}
