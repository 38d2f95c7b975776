import Datasets
import NN
import Testing

/// Finite-difference checks of every layer kind: valid and 'same' padding, stride 2, pools of
/// 2 and 3, hidden dense layers. Central differences in fp32 along a random direction per
/// tensor: (L(w+εd) − L(w−εd)) / 2ε must equal ⟨∇L, d⟩.
struct GradientCheckTests {
    static let architectures: [(String, Architecture)] = {
        func arch(_ blocks: [Architecture.ConvBlock], dense: [Int], size: Int = 12, channels: Int = 2) -> Architecture {
            Architecture(inputHeight: size, inputWidth: size, inputChannels: channels, convBlocks: blocks, hiddenDense: dense, classes: 5)
        }
        return [
            ("valid", arch([.init(filters: 3, kernelSize: 3), .init(filters: 4, kernelSize: 2, poolSize: 1)], dense: [])),
            ("same-stride2", arch([.init(filters: 3, kernelSize: 3, stride: 2, padding: .same), .init(filters: 4, kernelSize: 3, padding: .same)], dense: [6])),
            ("same-even-kernel-pool3", arch([.init(filters: 4, kernelSize: 4, padding: .same, poolSize: 3)], dense: [7, 5], size: 13)),
            ("dense-only", arch([], dense: [8], size: 4, channels: 1)),
        ]
    }()

    @Test(arguments: architectures.map(\.0))
    func finiteDifferences(_ name: String) throws {
        let architecture = Self.architectures.first { $0.0 == name }!.1
        let batch = 3
        let network = try Network(architecture, maxBatch: batch)
        var rng = SplitMix64(seed: 42)
        network.initialize(using: &rng)
        // Non-zero biases so the bias paths and ReLU boundaries are exercised.
        for t in network.tensors where t.name.hasSuffix("/bias") {
            for i in 0..<t.count { network.parameters[t.offset + i] = Float(rng.next() % 1000) / 5000 - 0.1 }
        }
        let x = (0..<(batch * network.inputCount)).map { _ in Float(rng.next() % 1000) / 1000 }
        let labels: [Int32] = [0, 3, 4]

        func loss() -> Double { network.totals(x, labels: labels, batch: batch).lossSum / Double(batch) }
        network.computeGradients(x, labels: labels, batch: batch, gradientScale: 1 / Float(batch))
        let gradients = Array(network.gradients)

        for t in network.tensors {
            // A unit direction: the loss moves by about ε·|∇L|, far above the fp32 rounding of the loss.
            var direction = (0..<t.count).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
            let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
            direction = direction.map { $0 / norm }
            let analytic = (0..<t.count).reduce(0.0) { $0 + Double(gradients[t.offset + $1] * direction[$1]) }
            let gradientNorm = (0..<t.count).reduce(0.0) { $0 + Double(gradients[t.offset + $1] * gradients[t.offset + $1]) }.squareRoot()
            let epsilon: Float = 1e-3  // small enough to cross few ReLU or max-pool switches
            let saved = Array(network.parameters[t.offset..<(t.offset + t.count)])
            for i in 0..<t.count { network.parameters[t.offset + i] = saved[i] + epsilon * direction[i] }
            let plus = loss()
            for i in 0..<t.count { network.parameters[t.offset + i] = saved[i] - epsilon * direction[i] }
            let minus = loss()
            for i in 0..<t.count { network.parameters[t.offset + i] = saved[i] }
            let numeric = (plus - minus) / (2 * Double(epsilon))
            let error = abs(numeric - analytic) / max(abs(analytic), 0.1 * gradientNorm, 1e-4)
            #expect(error < 1e-2, "\(name) \(t.name): finite difference \(numeric) vs backprop \(analytic) (relative error \(error))")
        }
    }

    /// col2im must be the adjoint of im2col: ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for any x, c, which
    /// is exactly what makes the convolution's input gradient right, including padding.
    @Test(arguments: [(5, 3, 1, Architecture.Padding.valid), (6, 3, 2, .same), (7, 4, 1, .same), (6, 5, 3, .same)])
    func col2imIsTheAdjointOfIm2col(size: Int, kernel: Int, stride: Int, padding: Architecture.Padding) {
        let g = ConvGeometry(inHeight: size, inWidth: size, inChannels: 2,
                             block: .init(filters: 1, kernelSize: kernel, stride: stride, padding: padding))
        let batch = 2
        var rng = SplitMix64(seed: 7)
        let x = (0..<(batch * size * size * 2)).map { _ in Float(rng.next() % 100) / 10 }
        let c = (0..<(batch * g.outHeight * g.outWidth * g.patchSize)).map { _ in Float(rng.next() % 100) / 10 }
        var cols = [Float](repeating: .nan, count: c.count)
        var back = [Float](repeating: .nan, count: x.count)
        Kernels.im2col(x, &cols, batch: batch, g)
        Kernels.col2im(c, &back, batch: batch, g)
        let left = zip(cols, c).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        let right = zip(x, back).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        #expect(abs(left - right) <= 1e-9 * max(abs(left), 1) + 1e-3, "⟨im2col x, c⟩ = \(left), ⟨x, col2im c⟩ = \(right)")
    }
}
