import Dispatch

/// A named weight tensor inside the network's flat parameter buffer.
public struct ParameterTensor: Sendable, Equatable {
    /// Keras's variable path, e.g. "conv2d/kernel" (HWIO) or "batch_normalization/moving_mean".
    public let name: String
    public let shape: [Int]
    /// Position in `Network.parameters` and `Network.gradients`.
    public let offset: Int
    /// Trained by the optimizer; else a statistic (BatchNormalization's moving mean and variance)
    /// whose gradient slot carries the step's batch statistic instead.
    public let trainable: Bool
    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], offset: Int, trainable: Bool = true) {
        (self.name, self.shape, self.offset, self.trainable) = (name, shape, offset, trainable)
    }

    /// A Dense kernel ([inputs, units]) of more floats than this has its gradient computed, and
    /// reduced, in row blocks of about this size, the last rows first: the first block's sum then
    /// runs while the others are computed (a 4 MB kernel was one sum, started only once all of
    /// it was done). Fixed, not `--bucket-mb`: the exact reduction scales each piece on its own,
    /// and its bits must not depend on the bucket size.
    public static let pieceFloats = 262_144

    /// Where the pieces of a tensor of `shape` begin (offsets into it), in the order they are
    /// computed: the last rows first, the last piece at 0. [0]: the tensor is one piece.
    public static func pieceStarts(shape: [Int]) -> [Int] {
        guard shape.count == 2, shape[0] * shape[1] > pieceFloats else { return [0] }
        let rows = max(pieceFloats / shape[1], 1)
        return stride(from: shape[0] - rows, to: 0, by: -rows).map { $0 * shape[1] } + [0]
    }
}

/// A run of the flat gradient that the reduction quantises and sums as one: a tensor, or a
/// row block of a large Dense kernel (`ParameterTensor.pieceStarts`).
public struct GradientPiece: Sendable, Equatable {
    /// Index into the network's tensors.
    public let tensor: Int
    /// Where it is in `Network.gradients`.
    public let range: Range<Int>

    /// Every tensor's pieces, in flat order.
    public static func pieces(of tensors: [ParameterTensor]) -> [GradientPiece] {
        tensors.enumerated().flatMap { t, tensor in
            let starts = ParameterTensor.pieceStarts(shape: tensor.shape).reversed().map { tensor.offset + $0 }
            return zip(starts, starts.dropFirst() + [tensor.offset + tensor.count]).map { GradientPiece(tensor: t, range: $0..<$1) }
        }
    }
}

public struct NetworkError: Error, CustomStringConvertible {
    public let description: String
}

/// The whole model: weights and gradients each in ONE flat buffer in a fixed order (the trained
/// variables layer by layer, then the statistics), so data parallelism is a single allreduce
/// over `gradients` and the optimizer updates one prefix of it. Built from a `ModelGraph` by a
/// fusion pass (conv + ReLU + max pool, dense + ReLU, the softmax into the loss), so the loop
/// below knows no layer kind.
public final class Network {
    public let graph: ModelGraph
    public let maxBatch: Int
    public let tensors: [ParameterTensor]
    public let parameterCount: Int
    /// The first `trainableCount` parameters are trained; the rest are statistics.
    public let trainableCount: Int
    public var trainableTensors: ArraySlice<ParameterTensor> { tensors[..<(tensors.firstIndex { !$0.trainable } ?? tensors.endIndex)] }
    /// All weights.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// dLoss/dweights of the last `computeGradients` call, same layout as `parameters`; the
    /// caller's buffer when it gave one (the trainer's reduction buffer), else the network's own.
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// Softmax output of the last forward pass, [batch, classes].
    public let probabilities: UnsafeMutablePointer<Float>
    /// The input the layers read, [maxBatch, H, W, C]: callers may gather straight into it.
    public let input: UnsafeMutablePointer<Float>
    public let inputCount: Int
    public let classes: Int
    /// What 8-bit pixels are multiplied by before the first layer: 1/255 (the tutorial's 0…1),
    /// or 1 when the model starts with Keras's Rescaling, which expects the raw 0…255 values.
    public let pixelScale: Float
    /// Seconds the forward part of the last `computeGradients` took (the timeline's split).
    public private(set) var forwardSeconds = 0.0
    /// The batch of the last `forwardForGradients`.
    private var passBatch = 0
    /// Keys of dropout and augmentation: the run's seed and the global step being computed.
    public var seed: UInt64 = 0
    public var step = 0

    /// When set (by `dptrain bench`), each layer's seconds are added here: forward in slots
    /// 0..<L, backward in L..<2L, the softmax and loss in slot 2L (L = `layerCount`).
    public var layerSeconds: UnsafeMutablePointer<Double>?
    public var layerCount: Int { layers.count }
    /// Keras's layer names; a step the fusion pass joined reads "conv2d+max_pooling2d".
    public var layerNames: [String] { layers.map(\.name) }
    /// What the conv and dense layers multiply in (a replica takes its primary's).
    public let precision: Precision

    private let layers: [any Layer]
    /// Per layer: the gradient of its output, nil when nothing before it learns (no backward).
    private let gradOutputs: [UnsafeMutablePointer<Float>?]
    /// Per layer whose output several layers read: each reader's gradient, summed before its backward.
    private let gradientEdges: [[UnsafeMutablePointer<Float>]]
    /// Every buffer the builder allocated for gradients.
    private let gradientBuffers: [UnsafeMutablePointer<Float>]
    /// BatchNormalization's moving statistics: where they are and their momentum.
    private let statistics: [(tensor: ParameterTensor, momentum: Float)]
    private let ownsParameters: Bool
    private let ownsGradients: Bool
    /// Per layer and part of its weight gradient: where the final part of `gradients` begins
    /// once that part is done (the last part's: all of the layer's variables).
    private let finalFrom: [[Int]]

    /// Told during `computeGradients`, after each layer's backward but the first layer's, that
    /// `gradients` from this offset on is final for the pass (those layers' variables, and the
    /// statistics, which the forward pass writes); when the call returns, all of it is. A
    /// bucketed reduction starts on a bucket the moment it is final, while the earlier layers'
    /// backward runs.
    public var gradientsFinal: ((Int) -> Void)?

    /// The model flags' shorthand.
    public convenience init(_ architecture: Architecture, maxBatch: Int, gradients: UnsafeMutableBufferPointer<Float>? = nil,
                            sharingWeightsWith primary: Network? = nil, precision: Precision = .fp32) throws {
        try self.init(architecture.graph(), maxBatch: maxBatch, gradients: gradients, sharingWeightsWith: primary, precision: precision)
    }

    /// `gradients`: where `computeGradients` writes, `parameterCount` floats; nil allocates.
    /// `sharingWeightsWith`: a replica for another thread of the same rank. It reads the
    /// primary's weights and has its own gradients and activations. `precision`: bf16 is
    /// refused where `Precision.unavailable` says why.
    public init(_ graph: ModelGraph, maxBatch: Int, gradients: UnsafeMutableBufferPointer<Float>? = nil,
                sharingWeightsWith primary: Network? = nil, precision: Precision = .fp32) throws {
        precondition(primary == nil || primary!.graph == graph, "a replica needs the primary's graph")
        if let reason = precision.unavailable() { throw NetworkError(description: "--precision \(precision.rawValue): \(reason)") }
        self.precision = primary?.precision ?? precision
        let nodes = try graph.resolve()
        self.graph = graph
        self.maxBatch = max(maxBatch, 1)
        inputCount = graph.input.reduce(1, *)
        classes = nodes.last!.outputShape[0]
        if case .rescaling = nodes[0].node.layer, nodes[0].inputIndices == [-1] { pixelScale = 1 } else { pixelScale = 1 / 255 }

        let tensors = Self.layout(nodes)
        let offset = tensors.last.map { $0.offset + $0.count } ?? 0
        self.tensors = tensors
        parameterCount = offset
        trainableCount = tensors.filter(\.trainable).reduce(0) { $0 + $1.count }
        guard trainableCount > 0 else { throw NetworkError(description: "\(graph.name): has no trainable weights") }
        ownsParameters = primary == nil
        if let primary {
            parameters = primary.parameters
        } else {
            parameters = .tensor(capacity: offset)
            parameters.initialize(repeating: 0)
        }
        ownsGradients = gradients == nil
        if let gradients {
            precondition(gradients.count == offset, "the gradient buffer holds \(gradients.count) floats, the network has \(offset) parameters")
            self.gradients = gradients
        } else {
            self.gradients = .tensor(capacity: offset)
            self.gradients.initialize(repeating: 0)
        }
        probabilities = .tensor(capacity: self.maxBatch * classes)
        input = .tensor(capacity: self.maxBatch * inputCount)

        var builder = Builder(nodes: nodes, tensors: tensors, parameters: parameters.baseAddress!, gradients: self.gradients.baseAddress!,
                              input: input, maxBatch: self.maxBatch, precision: self.precision)
        try builder.build()
        layers = builder.layers
        gradOutputs = builder.gradOutputs
        gradientEdges = builder.edges
        gradientBuffers = builder.allocated
        statistics = builder.statistics
        // After layer l's backward, the variables of every node whose first layer is l or later are final.
        var finalFrom = Array(repeating: trainableCount, count: layers.count)
        let owner = Dictionary(uniqueKeysWithValues: nodes.indices.flatMap { n in nodes[n].variables.map { ($0.path, n) } })
        for t in tensors where t.trainable {
            guard let last = builder.firstLayer[owner[t.name]!] else { continue }
            for l in 0...last { finalFrom[l] = min(finalFrom[l], t.offset) }
        }
        // A layer's first variable is its kernel; its parts' starts are offsets into it.
        let layers = self.layers
        self.finalFrom = layers.indices.map { l in layers[l].weightPartStarts.map { finalFrom[l] + $0 } }
        let pieceStarts = Set(GradientPiece.pieces(of: tensors).map(\.range.lowerBound))
        precondition(self.finalFrom.allSatisfy { $0.count == 1 || $0.allSatisfy(pieceStarts.contains) }, "a layer's parts are not its kernel's pieces")
    }

    deinit {
        if ownsParameters { parameters.deallocate() }
        if ownsGradients { gradients.deallocate() }
        probabilities.deallocate()
        input.deallocate()
        gradientBuffers.forEach { $0.deallocate() }
    }

    /// The flat layout of `graph`'s variables, as a network built from it has them.
    public static func tensors(of graph: ModelGraph) throws -> [ParameterTensor] { layout(try graph.resolve()) }

    /// Trained variables in layer order, then the statistics.
    private static func layout(_ nodes: [ModelGraph.Resolved]) -> [ParameterTensor] {
        var tensors: [ParameterTensor] = []
        var offset = 0
        for trainable in [true, false] {
            for v in nodes.flatMap(\.variables) where v.trainable == trainable {
                tensors.append(ParameterTensor(name: v.path, shape: v.shape, offset: offset, trainable: trainable))
                offset += v.count
            }
        }
        return tensors
    }

    public func tensor(named name: String) -> ParameterTensor? { tensors.first { $0.name == name } }

    /// What layer `name` (as `layerNames` lists it) gave for the first `batch` examples of the last forward pass.
    public func output(ofLayer name: String, batch: Int) -> [Float]? {
        guard let layer = layers.first(where: { $0.name == name }) else { return nil }
        return Array(UnsafeBufferPointer(start: layer.output, count: batch * layer.outputCount))
    }

    /// Keras's initialisers: glorot-uniform kernels, zero biases and betas, unit gammas, a zero
    /// moving mean and a unit moving variance.
    public func initialize<G: RandomNumberGenerator>(using rng: inout G) {
        let initializers = Dictionary(uniqueKeysWithValues: (try? graph.resolve())!.flatMap(\.variables).map { ($0.path, $0.initializer) })
        for t in tensors {
            let values = parameters.baseAddress! + t.offset
            switch initializers[t.name]! {
            case .zeros: values.update(repeating: 0, count: t.count)
            case .ones: values.update(repeating: 1, count: t.count)
            case .glorotUniform:
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
    }

    /// Moves BatchNormalization's averages toward the step's batch statistics, which `reduced`
    /// (the step's reduced gradient) holds in their slots: Keras's
    /// `moving = moving·momentum + statistic·(1 − momentum)`, the same on every rank.
    public func updateStatistics(from reduced: UnsafeBufferPointer<Float>) {
        for (t, momentum) in statistics {
            for i in t.offset..<(t.offset + t.count) {
                parameters[i] = parameters[i] * momentum + reduced[i] * (1 - momentum)
            }
        }
    }

    /// Runs the network in inference mode on `batch` examples (NHWC floats); fills `probabilities`.
    public func forward(_ input: UnsafePointer<Float>, batch: Int) {
        _ = softmaxOutput(input, labels: nil, gradient: nil, batch: batch, pass: .inference)
    }

    /// Forward (training mode) and backward on one batch. Writes dLoss/dweights into `gradients`
    /// where the loss is Σ cross-entropy · `gradientScale` (1 / global batch size, so ranks' sums
    /// add up to the mean), and the batch's statistics, weighted alike, into the statistics'
    /// slots. `firstExample`: the batch's place in its global batch (the key of its dropout masks
    /// and augmentation). Returns the summed (unscaled) loss and the count of correct predictions.
    @discardableResult
    public func computeGradients(_ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                 gradientScale: Float, firstExample: Int = 0) -> Totals {
        let result = forwardForGradients(input, labels: labels, batch: batch, gradientScale: gradientScale, firstExample: firstExample)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            for part in 0..<weightParts(layer: i) {
                let final = backwardWeights(layer: i, part: part)
                if i > 0 || part < weightParts(layer: i) - 1 { gradientsFinal?(final) }
            }
            backwardInput(layer: i)
        }
        return result
    }

    /// `computeGradients` in parts: the forward pass and the loss's gradient; then call
    /// `backwardWeights(layer:part:)` for each part, then `backwardInput(layer:)`, for every layer from the last down to 0. A caller with several
    /// networks can so run one layer's backward on all of them before the next layer's.
    @discardableResult
    public func forwardForGradients(_ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
                                    gradientScale: Float, firstExample: Int = 0) -> Totals {
        passBatch = batch
        if batch == 0 {
            gradients.update(repeating: 0)
            forwardSeconds = 0
            return Totals()
        }
        let forwardStart = DispatchTime.now().uptimeNanoseconds
        let pass = Pass(training: true, seed: seed, step: step, firstExample: firstExample, gradientScale: gradientScale)
        let result = softmaxOutput(input, labels: labels, gradient: gradOutputs[layers.count - 1], batch: batch, pass: pass)
        forwardSeconds = Double(DispatchTime.now().uptimeNanoseconds - forwardStart) / 1e9
        return result
    }

    /// Layer `i`'s input gradient, of the last `forwardForGradients`, once its weight gradient
    /// (every part) is done.
    public func backwardInput(layer i: Int) {
        guard passBatch > 0, let gradOutput = gradOutputs[i] else { return }
        timed(backwardOf: i) { layers[i].backwardInput(gradOutput: gradOutput, batch: passBatch) }
    }

    /// Adds `body`'s seconds to layer `i`'s backward slot of `layerSeconds`, when it is set.
    private func timed(backwardOf i: Int, _ body: () -> Void) {
        let start = layerSeconds == nil ? 0 : Kernels.now()
        body()
        if let layerSeconds { layerSeconds[layers.count + i] += Kernels.now() - start }
    }

    /// How many parts layer `i`'s weight gradient is computed in (`backwardWeights(layer:part:)`):
    /// one, or a large Dense kernel's row blocks (`ParameterTensor.pieceStarts`).
    public func weightParts(layer i: Int) -> Int { finalFrom[i].count }

    /// Part `part` of layer `i`'s weight gradient, the parts in order; returns the offset from
    /// which `gradients` is final once it is done.
    @discardableResult
    public func backwardWeights(layer i: Int, part: Int) -> Int {
        guard passBatch > 0, let gradOutput = gradOutputs[i] else { return finalFrom[i][part] }
        let batch = passBatch
        timed(backwardOf: i) {
            let edges = gradientEdges[i]
            if part == 0 && !edges.isEmpty {
                let count = batch * layers[i].outputCount
                gradOutput.update(from: edges[0], count: count)
                for edge in edges.dropFirst() { for j in 0..<count { gradOutput[j] += edge[j] } }
            }
            layers[i].backwardWeights(gradOutput: gradOutput, batch: batch, part: part)
        }
        return finalFrom[i][part]
    }

    /// Summed loss and correct count over `batch` examples in inference mode, without touching the gradients.
    public func totals(_ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) -> Totals {
        softmaxOutput(input, labels: labels, gradient: nil, batch: batch, pass: .inference)
    }

    private func softmaxOutput(_ x: UnsafePointer<Float>, labels: UnsafePointer<Int32>?, gradient: UnsafeMutablePointer<Float>?,
                               batch: Int, pass: Pass) -> Totals {
        precondition(batch <= maxBatch, "batch \(batch) exceeds the buffers' \(maxBatch)")
        if x != UnsafePointer(input) { input.update(from: x, count: batch * inputCount) }
        for (i, layer) in layers.enumerated() {
            let start = layerSeconds == nil ? 0 : Kernels.now()
            layer.forward(batch: batch, pass: pass)
            if let layerSeconds { layerSeconds[i] += Kernels.now() - start }
        }
        let start = layerSeconds == nil ? 0 : Kernels.now()
        defer { if let layerSeconds { layerSeconds[2 * layers.count] += Kernels.now() - start } }
        let (lossSum, correct) = Kernels.softmaxCrossEntropy(logits: layers[layers.count - 1].output, labels: labels, batch: batch, classes: classes,
                                                             probabilities: probabilities, gradient: gradient, gradientScale: pass.gradientScale)
        return Totals(lossSum: lossSum, correct: Double(correct), count: batch)
    }
}

/// The fusion pass and the wiring: turns the graph's nodes into layers, joining a conv, dense or
/// batch normalisation with the ReLU after it, a ReLU conv with the max pooling after it, and the
/// final softmax with the loss; gives every layer its input, its output's gradient buffer, and the buffers its
/// input gradients go to (one per reader when several layers read one output).
private struct Builder {
    let nodes: [ModelGraph.Resolved]
    let tensors: [String: ParameterTensor]
    let parameters, gradients: UnsafeMutablePointer<Float>
    let input: UnsafeMutablePointer<Float>
    let maxBatch: Int
    let precision: Precision
    var layers: [any Layer] = []
    var gradOutputs: [UnsafeMutablePointer<Float>?] = []
    var edges: [[UnsafeMutablePointer<Float>]] = []
    var allocated: [UnsafeMutablePointer<Float>] = []
    var statistics: [(tensor: ParameterTensor, momentum: Float)] = []
    /// Per node: the first layer built from it (the one whose backward finishes its variables).
    var firstLayer: [Int: Int] = [:]
    /// Per node: the layer whose output is its output (-1: the model input).
    private var producer: [Int: Int] = [:]
    /// Per node: whether it, or anything before it, has trained weights (so it needs a gradient).
    private var learns: [Bool] = []
    private var readers: [[Int]]

    init(nodes: [ModelGraph.Resolved], tensors: [ParameterTensor], parameters: UnsafeMutablePointer<Float>,
         gradients: UnsafeMutablePointer<Float>, input: UnsafeMutablePointer<Float>, maxBatch: Int, precision: Precision) {
        self.nodes = nodes
        self.precision = precision
        self.tensors = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        (self.parameters, self.gradients, self.input, self.maxBatch) = (parameters, gradients, input, maxBatch)
        readers = Array(repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for j in node.inputIndices where j >= 0 { readers[j].append(i) }
            learns.append(node.variables.contains(where: \.trainable) || node.inputIndices.contains { $0 >= 0 && learns[$0] })
        }
    }

    private mutating func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.tensor(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        allocated.append(p)
        return p
    }

    /// The one reader of node `i`'s output, when it has exactly one.
    private func soleReader(_ i: Int) -> Int? { readers[i].count == 1 ? readers[i][0] : nil }

    private func isReLU(_ i: Int) -> Bool {
        switch nodes[i].node.layer {
        case .relu, .activation(.relu): true
        default: false
        }
    }

    mutating func build() throws {
        var absorbed = Set<Int>()
        let last = nodes.count - 1
        for i in nodes.indices where !absorbed.contains(i) {
            let before = layers.count
            defer { if layers.count > before { firstLayer[i] = before } }
            let node = nodes[i]
            let name = node.node.name
            // The final softmax belongs to the loss: the layer before it gives the logits.
            if case .activation(.softmax) = node.node.layer {
                guard i == last else { throw failure(i, "softmax is supported as the last layer only") }
                let source = node.inputIndices[0]
                guard source >= 0, let layer = producer[source], layer == layers.count - 1, readers[source].count == 1 else {
                    throw failure(i, "the softmax must follow the layer that computes its logits, and be its only reader")
                }
                producer[i] = layer
                gradOutputs[layer] = gradOutputs[layer] ?? buffer(maxBatch * layers[layer].outputCount)
                continue
            }
            let (inputPointer, gradInput) = wire(i, input: 0)
            var tail = i
            switch node.node.layer {
            case .conv2D(let c):
                guard c.kernel[0] == c.kernel[1], c.strides[0] == c.strides[1] else {
                    throw failure(i, "only square kernel_size and strides are supported, got \(c.kernel) and \(c.strides)")
                }
                var relu = c.activation == .relu
                if c.activation == .linear, let next = soleReader(i), isReLU(next) {
                    relu = true
                    absorbed.insert(next)
                    tail = next
                }
                var pool: (size: Int, name: String)?
                if relu, let next = soleReader(tail), case .maxPooling2D(let p) = nodes[next].node.layer,
                   p.size[0] == p.size[1], p.strides == p.size, p.padding == .valid {
                    pool = (p.size[0], nodes[next].node.name)
                    absorbed.insert(next)
                    tail = next
                }
                let (h, w, channels) = (node.inputShapes[0][0], node.inputShapes[0][1], node.inputShapes[0][2])
                let g = ConvGeometry(inHeight: h, inWidth: w, inChannels: channels, kernel: c.kernel[0], stride: c.strides[0],
                                     filters: c.filters, padding: c.padding)
                var poolGradient: UnsafeMutablePointer<Float>?
                let made = convLayers(g, relu: relu, pool: pool, name: name, input: inputPointer, gradInput: gradInput,
                                      weights: weights(node, units: c.filters), maxBatch: maxBatch, precision: precision) { count in
                    let p = UnsafeMutablePointer<Float>.tensor(capacity: count)
                    p.initialize(repeating: 0, count: count)
                    poolGradient = p
                    return p
                }
                if let poolGradient { allocated.append(poolGradient) }
                if made.count == 2 { append(made[0], gradOutput: poolGradient, for: nil) }
                try finish(made.last!, activation: c.activation, node: i, tail: tail)
            case .dense(let d):
                var relu = d.activation == .relu
                if d.activation == .linear, let next = soleReader(i), isReLU(next) {
                    relu = true
                    absorbed.insert(next)
                    tail = next
                }
                let dense = DenseLayer(inputs: node.inputShapes[0][0], units: d.units, relu: relu, name: name, input: inputPointer,
                                       gradInput: gradInput, weights: weights(node, units: d.units), maxBatch: maxBatch, precision: precision)
                try finish(dense, activation: d.activation, node: i, tail: tail)
            case .maxPooling2D(let p), .averagePooling2D(let p):
                let average = if case .averagePooling2D = node.node.layer { true } else { false }
                let (h, w, channels) = (node.inputShapes[0][0], node.inputShapes[0][1], node.inputShapes[0][2])
                if !average, p.size[0] == p.size[1], p.strides == p.size, p.padding == .valid {
                    append(MaxPoolLayer(height: h, width: w, channels: channels, pool: p.size[0], name: name, input: inputPointer,
                                        gradInput: gradInput, maxBatch: maxBatch), for: i)
                } else {
                    append(WindowPoolLayer(name: name, average: average, inputShape: node.inputShapes[0], pooling: p, input: inputPointer,
                                           gradInput: gradInput, maxBatch: maxBatch), for: i)
                }
            case .globalAveragePooling2D, .globalMaxPooling2D:
                let average = if case .globalAveragePooling2D = node.node.layer { true } else { false }
                append(GlobalPoolLayer(name: name, average: average, inputShape: node.inputShapes[0], input: inputPointer,
                                       gradInput: gradInput, maxBatch: maxBatch), for: i)
            case .flatten:
                append(FlattenLayer(name: name, count: node.outputShape.reduce(1, *), input: inputPointer, gradInput: gradInput, maxBatch: maxBatch), for: i)
            case .dropout(let rate):
                append(DropoutLayer(name: name, rate: rate, count: node.outputShape.reduce(1, *), layerIndex: i, input: inputPointer,
                                    gradInput: gradInput, maxBatch: maxBatch), for: i)
            case .batchNormalization(let b):
                var relu = false
                if let next = soleReader(i), isReLU(next) {
                    relu = true
                    absorbed.insert(next)
                    tail = next
                }
                func variable(_ suffix: String) -> (value: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>)? {
                    tensors["\(name)/\(suffix)"].map { (parameters + $0.offset, gradients + $0.offset) }
                }
                for suffix in ["moving_mean", "moving_variance"] { statistics.append((tensors["\(name)/\(suffix)"]!, Float(b.momentum))) }
                let variables = BatchNormLayer.Variables(gamma: variable("gamma"), beta: variable("beta"),
                                                         movingMean: variable("moving_mean")!, movingVariance: variable("moving_variance")!)
                append(BatchNormLayer(name: relu ? name + "+" + nodes[tail].node.name : name, shape: node.outputShape, epsilon: b.epsilon,
                                      relu: relu, variables: variables, input: inputPointer, gradInput: gradInput, maxBatch: maxBatch), for: tail)
            case .activation(let a):
                append(ActivationLayer(name: name, function: a, count: node.outputShape.reduce(1, *), input: inputPointer,
                                       gradInput: gradInput, maxBatch: maxBatch), for: i)
            case .relu:
                append(ActivationLayer(name: name, function: .relu, count: node.outputShape.reduce(1, *), input: inputPointer,
                                       gradInput: gradInput, maxBatch: maxBatch), for: i)
            case .rescaling(let scale, let offset):
                append(RescalingLayer(name: name, scale: scale, offset: offset, count: node.outputShape.reduce(1, *), input: inputPointer,
                                      gradInput: gradInput, maxBatch: maxBatch), for: i)
            case .add:
                var inputs = [inputPointer], gradInputs = [gradInput]
                for k in 1..<node.inputIndices.count {
                    let (p, g) = wire(i, input: k)
                    inputs.append(p)
                    gradInputs.append(g)
                }
                append(AddLayer(name: name, count: node.outputShape.reduce(1, *), inputs: inputs, gradInputs: gradInputs, maxBatch: maxBatch), for: i)
            case .randomFlip:
                append(RandomFlipLayer(name: name, shape: node.outputShape, layerIndex: i, input: inputPointer, gradInput: gradInput,
                                       maxBatch: maxBatch), for: i)
            case .randomTranslation(let t):
                append(RandomTranslationLayer(name: name, settings: t, shape: node.outputShape, layerIndex: i, input: inputPointer,
                                              gradInput: gradInput, maxBatch: maxBatch), for: i)
            }
        }
    }

    private func failure(_ i: Int, _ message: String) -> NetworkError {
        NetworkError(description: "\(nodes[i].node.name) (\(nodes[i].node.layer.kerasClass)): \(message)")
    }

    /// Adds a conv or dense layer that computed `linear` + ReLU or nothing: with a softmax it gives
    /// the logits (the last layer only), with another activation that activation follows as its own layer.
    private mutating func finish(_ layer: any Layer, activation: ModelGraph.Activation, node i: Int, tail: Int) throws {
        switch activation {
        case .relu, .linear:
            append(layer, for: tail)
        case .softmax:
            guard i == nodes.count - 1 else { throw failure(i, "softmax is supported as the last layer only") }
            append(layer, for: i)
        case .sigmoid, .tanh, .gelu:
            let gradient = buffer(maxBatch * layer.outputCount)
            append(layer, gradOutput: gradient, for: nil)
            append(ActivationLayer(name: nodes[i].node.name, function: activation, count: layer.outputCount,
                                   input: UnsafePointer(layer.output), gradInput: gradient, maxBatch: maxBatch), for: tail)
        }
    }

    /// The weights of a conv or dense node inside the flat buffers.
    private func weights(_ node: ModelGraph.Resolved, units: Int) -> Weights {
        let kernel = tensors["\(node.node.name)/kernel"]!
        let bias = tensors["\(node.node.name)/bias"]
        return Weights(kernel: parameters + kernel.offset, kernelGrad: gradients + kernel.offset,
                       bias: bias.map { (parameters + $0.offset, gradients + $0.offset) }, units: units)
    }

    /// Input `k` of node `i`: the pointer it reads, and where its gradient goes (nil when
    /// nothing before it learns).
    private mutating func wire(_ i: Int, input k: Int) -> (UnsafePointer<Float>, UnsafeMutablePointer<Float>?) {
        let source = nodes[i].inputIndices[k]
        guard source >= 0 else { return (UnsafePointer(input), nil) }
        let layer = producer[source]!
        let pointer = UnsafePointer(layers[layer].output)
        guard learns[source] else { return (pointer, nil) }
        let count = maxBatch * layers[layer].outputCount
        if readers[source].count == 1 {
            let gradient = buffer(count)
            gradOutputs[layer] = gradient
            return (pointer, gradient)
        }
        // Several readers: each writes its own buffer; the producer's backward sums them.
        if gradOutputs[layer] == nil { gradOutputs[layer] = buffer(count) }
        let edge = buffer(count)
        edges[layer].append(edge)
        return (pointer, edge)
    }

    /// Adds a layer; `node`: the graph node whose output it gives (nil for an inner layer of a step).
    private mutating func append(_ layer: any Layer, gradOutput: UnsafeMutablePointer<Float>? = nil, for node: Int?) {
        layers.append(layer)
        gradOutputs.append(gradOutput)
        edges.append([])
        if let node {
            producer[node] = layers.count - 1
            // The last layer's gradient is the loss's.
            if node == nodes.count - 1 { gradOutputs[layers.count - 1] = buffer(maxBatch * layer.outputCount) }
        }
    }
}
