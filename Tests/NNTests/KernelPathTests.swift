import Datasets
import NN
import Foundation
import Testing

/// Every kernel path this machine runs (forced through `Kernels.$path`) against im2col + OpenBLAS,
/// the general path the Keras fixtures and finite differences check: same probabilities and
/// gradients on shapes that take the fast kernels (and their fallbacks), with padding and stride.
struct KernelPathTests {
    static let architectures: [(String, Architecture)] = {
        func arch(_ blocks: [Architecture.ConvBlock], dense: [Int], size: Int, channels: Int) -> Architecture {
            Architecture(inputHeight: size, inputWidth: size, inputChannels: channels, convBlocks: blocks, hiddenDense: dense, classes: 10)
        }
        return [
            ("reference-5x5", arch([.init(filters: 16, kernelSize: 5), .init(filters: 32, kernelSize: 5)], dense: [], size: 28, channels: 1)),
            ("same-stride2-dense", arch([.init(filters: 16, kernelSize: 3, stride: 2, padding: .same),
                                         .init(filters: 32, kernelSize: 3, padding: .same)], dense: [12], size: 20, channels: 3)),
            // Stride 2 'valid' leaves the last row and column unread; an even 'same' kernel pads unevenly.
            ("valid-stride2-unread", arch([.init(filters: 32, kernelSize: 3, stride: 2, poolSize: 1),
                                           .init(filters: 16, kernelSize: 4, padding: .same, poolSize: 3)], dense: [], size: 14, channels: 2)),
            // A first layer pooled in registers whose last conv row and column no 2x2 window takes (9x9).
            ("first-layer-odd", arch([.init(filters: 32, kernelSize: 3)], dense: [], size: 11, channels: 1)),
            // A pooled stride-2 conv whose input gradient goes by the windows' winners (5x5 on 16
            // channels), its last row and column in no window.
            ("pooled-stride2", arch([.init(filters: 16, kernelSize: 3), .init(filters: 16, kernelSize: 5, stride: 2)], dense: [], size: 21, channels: 1)),
            // 8 and 24 filters: the fast kernels on 4- and 8-wide vectors, and the 8-wide ones on an AVX-512 CPU.
            ("eight-filters", arch([.init(filters: 8, kernelSize: 3), .init(filters: 24, kernelSize: 3, padding: .same)], dense: [5], size: 12, channels: 1)),
        ]
    }()

    static func run(_ architecture: Architecture, on path: KernelPath, batch: Int, maxBatch: Int) throws -> (probabilities: [Float], gradients: [Float]) {
        let network = try Kernels.$path.withValue(path) { try Network(architecture, maxBatch: maxBatch) }
        var rng = SplitMix64(seed: 7)
        network.initialize(using: &rng)
        for t in network.tensors where t.name.hasSuffix("/bias") {
            for i in 0..<t.count { network.parameters[t.offset + i] = Float(rng.next() % 1000) / 5000 - 0.1 }
        }
        let x = (0..<(batch * network.inputCount)).map { _ in Float(rng.next() % 1000) / 1000 }
        let labels = (0..<batch).map { Int32($0 % 10) }
        network.computeGradients(x, labels: labels, batch: batch, gradientScale: 1 / Float(batch))
        return (Array(UnsafeBufferPointer(start: network.probabilities, count: batch * 10)), Array(network.gradients))
    }

    @Test(arguments: architectures.map(\.0))
    func pathsMatchIm2col(_ name: String) throws {
        let architecture = Self.architectures.first { $0.0 == name }!.1
        let batch = 5
        let reference = try Self.run(architecture, on: KernelPath(named: "im2col")!, batch: batch, maxBatch: batch)
        let network = try Network(architecture, maxBatch: 1)
        for path in KernelPath.available where path.name != "im2col" {
            let got = try Self.run(architecture, on: path, batch: batch, maxBatch: batch)
            for (a, b) in zip(got.probabilities, reference.probabilities) {
                #expect(abs(a - b) <= 1e-5, "\(name) \(path.name): probability \(a) vs \(b)")
            }
            for t in network.tensors {
                let range = t.offset..<(t.offset + t.count)
                let scale = reference.gradients[range].map(abs).max()!
                let error = zip(got.gradients[range], reference.gradients[range]).map { abs($0 - $1) }.max()!
                #expect(error <= 1e-4 * max(scale, 1e-6), "\(name) \(path.name) \(t.name): gradient off by \(error) (largest \(scale))")
            }
        }
    }

    /// A sub-batch's result depends on nothing else: the same bits from fresh networks with other
    /// buffer sizes, on every path.
    @Test(arguments: architectures.map(\.0))
    func deterministic(_ name: String) throws {
        let architecture = Self.architectures.first { $0.0 == name }!.1
        for path in KernelPath.available {
            let first = try Self.run(architecture, on: path, batch: 3, maxBatch: 3)
            let second = try Self.run(architecture, on: path, batch: 3, maxBatch: 8)
            #expect(first.probabilities == second.probabilities && first.gradients == second.gradients, "\(name) \(path.name)")
        }
    }

    @Test func pathsOfThisMachine() {
        let names = KernelPath.available.map(\.name)
        #expect(names.contains("portable") && names.contains("im2col"))
        #expect(names.first == Kernels.pathName || ProcessInfo.processInfo.environment["DPTRAIN_KERNELS"] != nil)
    }
}
