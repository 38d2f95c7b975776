import ModelFiles
import Foundation
import NN
import Testing
import Training

/// The llm.c check: loss, probabilities and every gradient against fixtures written once by
/// Keras 3 (JAX backend) with `scripts/make-fixtures`. Three architectures and batch sizes:
/// the reference model, 'same' padding with stride 2 and a hidden dense layer, and 3x3 pools.
struct ReferenceTests {
    /// The metadata the fixture script writes, in Keras's own terms.
    struct KerasArchitecture: Decodable {
        let filters: [Int], kernel_size: [Int], strides: [Int], padding: [String], pool_size: [Int], dense: [Int]

        var architecture: Architecture {
            var a = Architecture.mnistReference
            a.convBlocks = filters.indices.map {
                .init(filters: filters[$0], kernelSize: kernel_size[$0], stride: strides[$0],
                      padding: Architecture.Padding(rawValue: padding[$0])!, poolSize: pool_size[$0])
            }
            a.hiddenDense = dense
            return a
        }
    }

    static let cases = ["default_b16", "same_stride2_dense_b5", "k3_pool3_b7"]

    @Test(arguments: cases)
    func matchesKeras(_ name: String) throws {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        let fixture = try SafeTensors(path: url.path)
        let keras = try JSONDecoder().decode(KerasArchitecture.self, from: Data(fixture.metadata["architecture"]!.utf8))
        let x = try #require(fixture["x"]?.floats)
        let labels = try #require(fixture["labels"]?.int32s)
        let batch = labels.count

        let network = try Network(keras.architecture, maxBatch: batch)
        try ModelFile.load(fixture, into: network, name: name)
        let result = network.computeGradients(x, labels: labels, batch: batch, gradientScale: 1 / Float(batch))

        // fp32 with different summation orders: agreement to ~1e-6 is expected; 1e-4 is the bound.
        let loss = try #require(fixture["loss"]?.floats?.first)
        #expect(abs(result.lossSum / Double(batch) - Double(loss)) <= 1e-5 * Double(loss), "\(name): loss")
        let probs = try #require(fixture["probs"]?.floats)
        let maxProbError = (0..<probs.count).map { abs(network.probabilities[$0] - probs[$0]) }.max()!
        #expect(maxProbError <= 1e-5, "\(name): probabilities differ by \(maxProbError)")
        for t in network.tensors {
            let expected = try #require(fixture["grad/" + t.name]?.floats, "\(name): no gradient for \(t.name)")
            let actual = Array(network.gradients[t.offset..<(t.offset + t.count)])
            let scale = expected.map(abs).max()!
            let error = zip(actual, expected).map { abs($0 - $1) }.max()!
            #expect(error <= 1e-4 * scale, "\(name): \(t.name) gradient differs by \(error) (max |g| \(scale))")
        }
    }
}
