import Dispatch

/// A named weight tensor inside the network's flat parameter buffer.
public struct ParameterTensor: Sendable, Equatable {
    /// Keras name, e.g. "conv2d/kernel" (HWIO) or "dense/bias".
    public let name: String
    public let shape: [Int]
    /// Position in `Network.parameters` and `Network.gradients`.
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// The whole model: weights and gradients each in ONE flat buffer in a fixed order (layer by
/// layer, kernel then bias), so data parallelism is a single allreduce over `gradients`.
public final class Network {
    public let architecture: Architecture
    public let maxBatch: Int
    public let tensors: [ParameterTensor]
    public let parameterCount: Int
    /// All weights.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// dLoss/dweights of the last `computeGradients` call, same layout as `parameters`; the
    /// caller's buffer when it gave one (the trainer's reduction buffer), else the network's own.
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// Softmax output of the last forward pass, [batch, classes].
    public let probabilities: UnsafeMutablePointer<Float>
    /// Seconds the forward part of the last `computeGradients` took (the timeline's split).
    public private(set) var forwardSeconds = 0.0

    /// When set (by `dptrain bench`), each layer's seconds are added here: forward in slots
    /// 0..<L, backward in L..<2L, the softmax and loss in slot 2L (L = layers, Flatten excluded).
    public var layerSeconds: UnsafeMutablePointer<Double>?
    public var layerCount: Int { layers.count }
    /// Keras's layer names, Flatten excluded; a conv block the kernels fuse is one "conv+pool" layer.
    public var layerNames: [String] { layers.map(\.name) }

    private let layers: [any Layer]
    /// gradOutputs[i]: gradient w.r.t. layer i's output (nil for the first layer's input).
    private let gradOutputs: [UnsafeMutablePointer<Float>]
    private let classes: Int

    /// `gradients`: where `computeGradients` writes, `parameterCount` floats; nil allocates.
    /// `sharingWeightsWith`: a replica for another thread of the same rank. It reads the
    /// primary's weights and has its own gradients and activations.
    public init(_ architecture: Architecture, maxBatch: Int, gradients: UnsafeMutableBufferPointer<Float>? = nil,
                sharingWeightsWith primary: Network? = nil) throws {
        precondition(primary == nil || primary!.architecture == architecture, "a replica needs the primary's architecture")
        let infos = try architecture.layers()
        self.architecture = architecture
        self.maxBatch = max(maxBatch, 1)
        classes = architecture.classes

        var tensors: [ParameterTensor] = []
        var offset = 0
        var (h, w, c) = (architecture.inputHeight, architecture.inputWidth, architecture.inputChannels)
        var geometries: [ConvGeometry] = []
        for (i, block) in architecture.convBlocks.enumerated() {
            let g = ConvGeometry(inHeight: h, inWidth: w, inChannels: c, block: block)
            let name = infos[2 * i].name
            tensors.append(ParameterTensor(name: name + "/kernel", shape: [g.kernel, g.kernel, c, g.filters], offset: offset))
            offset += g.patchSize * g.filters
            tensors.append(ParameterTensor(name: name + "/bias", shape: [g.filters], offset: offset))
            offset += g.filters
            geometries.append(g)
            (h, w, c) = (g.outHeight / block.poolSize, g.outWidth / block.poolSize, g.filters)
        }
        var features = h * w * c
        let denseInfos = infos.filter { $0.kind == .dense }
        var denseShapes: [(inputs: Int, units: Int)] = []
        for info in denseInfos {
            let units = info.outputShape[0]
            tensors.append(ParameterTensor(name: info.name + "/kernel", shape: [features, units], offset: offset))
            offset += features * units
            tensors.append(ParameterTensor(name: info.name + "/bias", shape: [units], offset: offset))
            offset += units
            denseShapes.append((features, units))
            features = units
        }
        self.tensors = tensors
        parameterCount = offset
        ownsParameters = primary == nil
        if let primary {
            parameters = primary.parameters
        } else {
            parameters = .allocate(capacity: offset)
            parameters.initialize(repeating: 0)
        }
        ownsGradients = gradients == nil
        if let gradients {
            precondition(gradients.count == offset, "the gradient buffer holds \(gradients.count) floats, the network has \(offset) parameters")
            self.gradients = gradients
        } else {
            self.gradients = .allocate(capacity: offset)
            self.gradients.initialize(repeating: 0)
        }
        probabilities = .allocate(capacity: self.maxBatch * classes)

        var layers: [any Layer] = []
        var tensorIndex = 0
        for (i, g) in geometries.enumerated() {
            let start = tensors[tensorIndex].offset
            layers += convBlockLayers(g, pool: architecture.convBlocks[i].poolSize, names: (infos[2 * i].name, infos[2 * i + 1].name),
                                      needsInputGradient: i > 0, weights: parameters.baseAddress! + start,
                                      grads: self.gradients.baseAddress! + start, maxBatch: self.maxBatch)
            tensorIndex += 2
        }
        for (i, shape) in denseShapes.enumerated() {
            let start = tensors[tensorIndex].offset
            layers.append(DenseLayer(inputs: shape.inputs, units: shape.units, relu: i < denseShapes.count - 1, name: denseInfos[i].name,
                                     weights: parameters.baseAddress! + start, grads: self.gradients.baseAddress! + start, maxBatch: self.maxBatch))
            tensorIndex += 2
        }
        self.layers = layers
        let batchCapacity = self.maxBatch
        gradOutputs = layers.map { UnsafeMutablePointer<Float>.allocate(capacity: batchCapacity * $0.outputCount) }
    }

    private let ownsParameters: Bool
    private let ownsGradients: Bool

    deinit {
        if ownsParameters { parameters.deallocate() }
        if ownsGradients { gradients.deallocate() }
        probabilities.deallocate()
        gradOutputs.forEach { $0.deallocate() }
    }

    public var inputCount: Int { architecture.inputHeight * architecture.inputWidth * architecture.inputChannels }

    public func tensor(named name: String) -> ParameterTensor? { tensors.first { $0.name == name } }

    /// Keras defaults: glorot-uniform kernels, zero biases.
    public func initialize<G: RandomNumberGenerator>(using rng: inout G) {
        for t in tensors {
            let values = parameters.baseAddress! + t.offset
            if t.name.hasSuffix("/bias") {
                values.update(repeating: 0, count: t.count)
                continue
            }
            // Conv HWIO: fan_in = kh·kw·in, fan_out = kh·kw·out; dense [in, out].
            let receptive = t.shape.dropLast(2).reduce(1, *)
            let fanIn = receptive * t.shape[t.shape.count - 2], fanOut = receptive * t.shape[t.shape.count - 1]
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            for i in 0..<t.count {
                let unit = Float(rng.next() >> 40) * (1.0 / 16_777_216.0)  // 24 random bits: exact in Float
                values[i] = (unit * 2 - 1) * limit
            }
        }
    }

    /// Runs the network on `batch` examples (NHWC floats); fills `probabilities`.
    public func forward(_ input: UnsafePointer<Float>, batch: Int) {
        _ = softmaxOutput(input, labels: nil, gradient: nil, batch: batch, gradientScale: 0)
    }

    /// Forward and backward on one batch. Writes dLoss/dweights into `gradients` where the loss
    /// is Σ cross-entropy · `gradientScale` (1 / global batch size, so ranks' sums add up to
    /// the mean). Returns the summed (unscaled) loss and the count of correct predictions.
    @discardableResult
    public func computeGradients(_ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                 gradientScale: Float) -> Totals {
        if batch == 0 {
            gradients.update(repeating: 0)
            return Totals()
        }
        let forwardStart = DispatchTime.now().uptimeNanoseconds
        let result = softmaxOutput(input, labels: labels, gradient: gradOutputs[layers.count - 1], batch: batch,
                                   gradientScale: gradientScale)
        forwardSeconds = Double(DispatchTime.now().uptimeNanoseconds - forwardStart) / 1e9
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let layerInput = i == 0 ? input : UnsafePointer(layers[i - 1].output)
            let start = layerSeconds == nil ? 0 : Kernels.now()
            layers[i].backward(layerInput, gradOutput: gradOutputs[i], gradInput: i == 0 ? nil : gradOutputs[i - 1], batch: batch)
            if let layerSeconds { layerSeconds[layers.count + i] += Kernels.now() - start }
        }
        return result
    }

    /// Summed loss and correct count over `batch` examples, without touching the gradients.
    public func totals(_ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) -> Totals {
        softmaxOutput(input, labels: labels, gradient: nil, batch: batch, gradientScale: 0)
    }

    private func softmaxOutput(_ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>?, gradient: UnsafeMutablePointer<Float>?,
                               batch: Int, gradientScale: Float) -> Totals {
        precondition(batch <= maxBatch, "batch \(batch) exceeds the buffers' \(maxBatch)")
        var x = input
        for (i, layer) in layers.enumerated() {
            let start = layerSeconds == nil ? 0 : Kernels.now()
            layer.forward(x, batch: batch)
            if let layerSeconds { layerSeconds[i] += Kernels.now() - start }
            x = UnsafePointer(layer.output)
        }
        let start = layerSeconds == nil ? 0 : Kernels.now()
        defer { if let layerSeconds { layerSeconds[2 * layers.count] += Kernels.now() - start } }
        let (lossSum, correct) = Kernels.softmaxCrossEntropy(logits: x, labels: labels, batch: batch, classes: classes,
                                                             probabilities: probabilities, gradient: gradient, gradientScale: gradientScale)
        return Totals(lossSum: lossSum, correct: Double(correct), count: batch)
    }
}
