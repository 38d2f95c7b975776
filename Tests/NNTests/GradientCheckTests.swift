import Datasets
import NN
import Testing

/// Finite-difference checks of every layer kind: valid and 'same' padding, stride 2, pools of
/// 2 and 3, hidden dense layers, and the graph's other layers (batch normalisation in training
/// mode, residual adds, average, 'same' and global pooling, every activation, rescaling,
/// dropout and augmentation with their masks fixed by the step's keys), a Dense kernel large
/// enough to be computed in row blocks. Central differences in fp32 along a random direction
/// per tensor (per row block): (L(w+εd) − L(w−εd)) / 2ε must equal ⟨∇L, d⟩.
struct GradientCheckTests {
    static let models: [(String, ModelGraph)] = {
        func arch(_ blocks: [Architecture.ConvBlock], dense: [Int], size: Int = 12, channels: Int = 2) -> ModelGraph {
            Architecture(inputHeight: size, inputWidth: size, inputChannels: channels, convBlocks: blocks, hiddenDense: dense, classes: 5).graph()
        }
        typealias G = ModelGraph
        func conv(_ filters: Int, _ k: Int, _ activation: G.Activation = .linear, bias: Bool = true, stride: Int = 1) -> G.Layer {
            .conv2D(.init(filters: filters, kernel: [k, k], strides: [stride, stride], padding: .same, activation: activation, useBias: bias))
        }
        let softmax = G.Layer.dense(.init(units: 5, activation: .softmax))
        let residual = G(name: "residual", functional: true, input: [8, 8, 2], nodes: [
            .init(name: "c1", layer: conv(3, 3, bias: false), inputs: ["input_layer"]),
            .init(name: "bn1", layer: .batchNormalization(.init()), inputs: ["c1"]),
            .init(name: "r1", layer: .relu, inputs: ["bn1"]),
            .init(name: "c2", layer: conv(3, 3), inputs: ["r1"]),
            .init(name: "bn2", layer: .batchNormalization(.init(center: false)), inputs: ["c2"]),
            .init(name: "add", layer: .add, inputs: ["bn2", "r1"]),
            .init(name: "r2", layer: .activation(.relu), inputs: ["add"]),
            .init(name: "avg", layer: .averagePooling2D(.init(size: [2, 2])), inputs: ["r2"]),
            .init(name: "max", layer: .maxPooling2D(.init(size: [3, 3], strides: [1, 1], padding: .same)), inputs: ["avg"]),
            .init(name: "gmax", layer: .globalMaxPooling2D, inputs: ["max"]),
            .init(name: "out", layer: softmax, inputs: ["gmax"]),
        ])
        let activations = G.sequential(input: [4, 4, 1], [
            ("scale", .rescaling(scale: 2, offset: -1)), ("flat", .flatten),
            ("d1", .dense(.init(units: 6))), ("gelu", .activation(.gelu)),
            ("d2", .dense(.init(units: 6, activation: .tanh))), ("d3", .dense(.init(units: 6, activation: .sigmoid))),
            ("bn", .batchNormalization(.init(momentum: 0.9))), ("drop", .dropout(rate: 0.3)), ("out", softmax),
        ])
        let augment = G.sequential(input: [7, 7, 2], [
            ("c1", conv(3, 3, .relu)), ("move", .randomTranslation(.init(height: [-0.3, 0.3], width: [-0.3, 0.3]))),
            ("flip", .randomFlip), ("c2", conv(4, 3, .tanh, stride: 2)), ("gap", .globalAveragePooling2D), ("out", softmax),
        ])
        return [
            ("valid", arch([.init(filters: 3, kernelSize: 3), .init(filters: 4, kernelSize: 2, poolSize: 1)], dense: [])),
            ("same-stride2", arch([.init(filters: 3, kernelSize: 3, stride: 2, padding: .same), .init(filters: 4, kernelSize: 3, padding: .same)], dense: [6])),
            ("same-even-kernel-pool3", arch([.init(filters: 4, kernelSize: 4, padding: .same, poolSize: 3)], dense: [7, 5], size: 13)),
            ("dense-only", arch([], dense: [8], size: 4, channels: 1)),
            // An 800x600 kernel: its gradient in two row blocks (`ParameterTensor.pieceStarts`).
            ("dense-in-pieces", arch([], dense: [600], size: 20, channels: 2)),
            ("residual-batchnorm-pooling", residual), ("activations-dropout", activations), ("augmentation", augment),
        ]
    }()

    @Test(arguments: models.map(\.0))
    func finiteDifferences(_ name: String) throws {
        let model = Self.models.first { $0.0 == name }!.1
        let batch = 3
        let network = try Network(model, maxBatch: batch)
        network.seed = 9
        network.step = 4
        var rng = SplitMix64(seed: 42)
        network.initialize(using: &rng)
        // Non-zero biases, betas and gammas ≠ 1 so those paths and ReLU boundaries are exercised.
        for t in network.trainableTensors where !t.name.hasSuffix("/kernel") {
            for i in 0..<t.count { network.parameters[t.offset + i] += Float(rng.next() % 1000) / 5000 - 0.1 }
        }
        let x = (0..<(batch * network.inputCount)).map { _ in Float(rng.next() % 1000) / 1000 }
        let labels: [Int32] = [0, 3, 4]
        let scale = 1 / Float(batch)

        // The training-mode loss: batch statistics, and the same dropout masks and augmentation each call.
        func loss() -> Double { network.computeGradients(x, labels: labels, batch: batch, gradientScale: scale).lossSum / Double(batch) }
        network.computeGradients(x, labels: labels, batch: batch, gradientScale: scale)
        let gradients = Array(network.gradients)

        // Per piece: a large Dense kernel's row blocks are computed in parts, each checked on its own.
        for piece in GradientPiece.pieces(of: network.tensors) where network.tensors[piece.tensor].trainable {
            let (first, count) = (piece.range.lowerBound, piece.range.count)
            let what = "\(network.tensors[piece.tensor].name)[\(first - network.tensors[piece.tensor].offset)...]"
            // A unit direction: the loss moves by about ε·|∇L|, far above the fp32 rounding of the loss.
            var direction = (0..<count).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
            let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
            direction = direction.map { $0 / norm }
            let analytic = (0..<count).reduce(0.0) { $0 + Double(gradients[first + $1] * direction[$1]) }
            let gradientNorm = (0..<count).reduce(0.0) { $0 + Double(gradients[first + $1] * gradients[first + $1]) }.squareRoot()
            // Small enough to cross few ReLU or max-pool switches. The smooth activations' model has
            // none to cross, and batch normalisation nearly cancels its d3 bias gradient (0.017
            // against 0.4 for its kernel): a larger step keeps the float loss's rounding below the bound.
            let epsilon: Float = name == "activations-dropout" ? 1e-2 : 1e-3
            let saved = Array(network.parameters[piece.range])
            for i in 0..<count { network.parameters[first + i] = saved[i] + epsilon * direction[i] }
            let plus = loss()
            for i in 0..<count { network.parameters[first + i] = saved[i] - epsilon * direction[i] }
            let minus = loss()
            for i in 0..<count { network.parameters[first + i] = saved[i] }
            let numeric = (plus - minus) / (2 * Double(epsilon))
            let error = abs(numeric - analytic) / max(abs(analytic), 0.1 * gradientNorm, 1e-4)
            #expect(error < 1e-2, "\(name) \(what): finite difference \(numeric) vs backprop \(analytic) (relative error \(error))")
        }
    }

    /// col2im must be the adjoint of im2col: ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for any x, c, which
    /// is exactly what makes the convolution's input gradient right, including padding.
    @Test(arguments: [(5, 3, 1, Architecture.Padding.valid), (6, 3, 2, .same), (7, 4, 1, .same), (6, 5, 3, .same)])
    func col2imIsTheAdjointOfIm2col(size: Int, kernel: Int, stride: Int, padding: Architecture.Padding) {
        let g = ConvGeometry(inHeight: size, inWidth: size, inChannels: 2, kernel: kernel, stride: stride, filters: 1, padding: padding)
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
