/// A model as Keras describes one: a Sequential stack or a Functional graph of layers. It is the
/// one description every part reads (summary, parameter and FLOP counts, banner, the network,
/// checkpoints, model files, `bench`); a Swift program can build one in code, `Architecture`
/// (the model flags) builds one, and the Keras reader builds one from a `.keras` file.
public struct ModelGraph: Codable, Equatable, Sendable {
    /// Keras's model name ("sequential", "functional", or the user's).
    public var name: String
    /// Sequential or Functional: what Keras's summary and config call it.
    public var functional: Bool
    /// Per-example input shape, height × width × channels (channels last, as Keras's default).
    public var input: [Int]
    /// The input layer's name ("input_layer" by Keras's default).
    public var inputName: String
    /// In topological order: a node reads the input or earlier nodes. The last node is the output.
    public var nodes: [Node]

    public init(name: String = "sequential", functional: Bool = false, input: [Int], inputName: String = "input_layer", nodes: [Node]) {
        self.name = name
        self.functional = functional
        self.input = input
        self.inputName = inputName
        self.nodes = nodes
    }

    /// A Sequential model: each layer reads the one before it.
    public static func sequential(name: String = "sequential", input: [Int], _ layers: [(String, Layer)]) -> ModelGraph {
        var nodes: [Node] = []
        for (i, (layerName, layer)) in layers.enumerated() {
            nodes.append(Node(name: layerName, layer: layer, inputs: [i == 0 ? "input_layer" : layers[i - 1].0]))
        }
        return ModelGraph(name: name, input: input, nodes: nodes)
    }

    public struct Node: Codable, Equatable, Sendable {
        public var name: String
        public var layer: Layer
        /// Names of the nodes (or the input) this one reads; Add reads two or more.
        public var inputs: [String]

        public init(name: String, layer: Layer, inputs: [String]) {
            self.name = name
            self.layer = layer
            self.inputs = inputs
        }
    }

    public enum Padding: String, Codable, Sendable, CaseIterable {
        case valid, same
    }

    /// Keras's activations, computed as Keras computes them (gelu: the exact erf form, Keras's default).
    public enum Activation: String, Codable, Sendable, CaseIterable {
        case linear, relu, softmax, sigmoid, tanh, gelu
    }

    public struct Conv2D: Codable, Equatable, Sendable {
        public var filters: Int
        public var kernel: [Int]
        public var strides: [Int]
        public var padding: Padding
        public var activation: Activation
        public var useBias: Bool

        public init(filters: Int, kernel: [Int], strides: [Int] = [1, 1], padding: Padding = .valid, activation: Activation = .linear, useBias: Bool = true) {
            (self.filters, self.kernel, self.strides, self.padding, self.activation, self.useBias) = (filters, kernel, strides, padding, activation, useBias)
        }
    }

    public struct Pooling: Codable, Equatable, Sendable {
        public var size: [Int]
        public var strides: [Int]
        public var padding: Padding

        /// Keras's default strides are the pool size.
        public init(size: [Int], strides: [Int]? = nil, padding: Padding = .valid) {
            (self.size, self.strides, self.padding) = (size, strides ?? size, padding)
        }
    }

    public struct Dense: Codable, Equatable, Sendable {
        public var units: Int
        public var activation: Activation
        public var useBias: Bool

        public init(units: Int, activation: Activation = .linear, useBias: Bool = true) {
            (self.units, self.activation, self.useBias) = (units, activation, useBias)
        }
    }

    /// Keras's BatchNormalization over the channel axis: gamma and beta are trained, the moving
    /// mean and variance are not; batch statistics in training, the moving ones at inference.
    public struct BatchNormalization: Codable, Equatable, Sendable {
        public var momentum: Double
        public var epsilon: Double
        /// beta is there (Keras's `center`), gamma is there (`scale`).
        public var center: Bool
        public var scale: Bool

        public init(momentum: Double = 0.99, epsilon: Double = 1e-3, center: Bool = true, scale: Bool = true) {
            (self.momentum, self.epsilon, self.center, self.scale) = (momentum, epsilon, center, scale)
        }
    }

    /// Keras's RandomTranslation: a shift drawn uniformly in ±factor × height (width), applied with
    /// bilinear interpolation; `fill` says what lies beyond the edge.
    public struct RandomTranslation: Codable, Equatable, Sendable {
        public enum Fill: String, Codable, Sendable, CaseIterable { case reflect, wrap, constant, nearest }
        public enum Interpolation: String, Codable, Sendable, CaseIterable { case bilinear, nearest }
        /// Lower and upper fractions (Keras's single factor f is -f…f).
        public var height: [Double]
        public var width: [Double]
        public var fill: Fill
        public var interpolation: Interpolation
        public var fillValue: Double

        public init(height: [Double], width: [Double], fill: Fill = .reflect, interpolation: Interpolation = .bilinear, fillValue: Double = 0) {
            (self.height, self.width, self.fill, self.interpolation, self.fillValue) = (height, width, fill, interpolation, fillValue)
        }
    }

    public enum Layer: Codable, Equatable, Sendable {
        case conv2D(Conv2D)
        case maxPooling2D(Pooling)
        case averagePooling2D(Pooling)
        case globalAveragePooling2D
        case globalMaxPooling2D
        case flatten
        case dense(Dense)
        case dropout(rate: Double)
        case batchNormalization(BatchNormalization)
        case activation(Activation)
        /// Keras's ReLU layer (its own class; the same function as Activation("relu")).
        case relu
        case rescaling(scale: Double, offset: Double)
        case add
        /// RandomFlip("horizontal"): each training image is mirrored left-right with probability 1/2.
        case randomFlip
        case randomTranslation(RandomTranslation)

        /// Keras's class name.
        public var kerasClass: String {
            switch self {
            case .conv2D: "Conv2D"
            case .maxPooling2D: "MaxPooling2D"
            case .averagePooling2D: "AveragePooling2D"
            case .globalAveragePooling2D: "GlobalAveragePooling2D"
            case .globalMaxPooling2D: "GlobalMaxPooling2D"
            case .flatten: "Flatten"
            case .dense: "Dense"
            case .dropout: "Dropout"
            case .batchNormalization: "BatchNormalization"
            case .activation: "Activation"
            case .relu: "ReLU"
            case .rescaling: "Rescaling"
            case .add: "Add"
            case .randomFlip: "RandomFlip"
            case .randomTranslation: "RandomTranslation"
            }
        }

        /// Acts only in training (Keras's `training=True`); at inference it passes its input on.
        public var trainingOnly: Bool {
            switch self {
            case .dropout, .randomFlip, .randomTranslation: true
            default: false
            }
        }
    }

    public struct ShapeError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// A weight of a layer, in Keras's variable order (kernel, bias; gamma, beta, moving_mean,
    /// moving_variance), with Keras's shape (HWIO conv kernels, [in, out] dense kernels).
    public struct Variable: Equatable, Sendable {
        /// Keras's variable path, e.g. "conv2d/kernel".
        public var path: String
        public var shape: [Int]
        public var trainable: Bool
        /// Keras's default initialiser for it.
        public var initializer: Initializer
        public var count: Int { shape.reduce(1, *) }
    }

    public enum Initializer: String, Sendable {
        /// U(±sqrt(6 / (fan_in + fan_out))), fans over the receptive field (Keras's kernels).
        case glorotUniform, zeros, ones
    }

    /// One node with what follows from its inputs: its output shape and its variables.
    public struct Resolved: Sendable {
        public var node: Node
        /// Per example: [H, W, C] or [features].
        public var outputShape: [Int]
        /// The shapes it reads, one per input.
        public var inputShapes: [[Int]]
        /// Indices into `nodes` of its inputs; -1 is the model input.
        public var inputIndices: [Int]
        public var variables: [Variable]
        public var parameterCount: Int { variables.reduce(0) { $0 + $1.count } }
    }

    /// Every node with its shapes and variables; throws naming the first layer that does not fit.
    public func resolve() throws -> [Resolved] {
        guard input.count == 3, input.allSatisfy({ $0 > 0 }) else {
            throw ShapeError("\(inputName): input shape \(input.map(String.init).joined(separator: "x")) is not height x width x channels")
        }
        var index: [String: Int] = [inputName: -1]
        var shapes: [[Int]] = []
        var result: [Resolved] = []
        for (i, node) in nodes.enumerated() {
            guard index[node.name] == nil else { throw ShapeError("\(node.name): a second layer of this name") }
            var inputIndices: [Int] = []
            for name in node.inputs {
                guard let j = index[name] else { throw ShapeError("\(node.name) (\(node.layer.kerasClass)): reads '\(name)', which is not an earlier layer") }
                inputIndices.append(j)
            }
            let inputShapes = inputIndices.map { $0 < 0 ? input : shapes[$0] }
            let (shape, variables) = try Self.infer(node, inputShapes)
            index[node.name] = i
            shapes.append(shape)
            result.append(Resolved(node: node, outputShape: shape, inputShapes: inputShapes, inputIndices: inputIndices, variables: variables))
        }
        guard let last = result.last else { throw ShapeError("\(name): has no layers") }
        guard case .classes = outputKind(last.node.layer), last.outputShape.count == 1, last.outputShape[0] > 1 else {
            throw ShapeError("\(last.node.name) (\(last.node.layer.kerasClass)): the output must be a softmax over 2 or more classes (categorical cross-entropy)")
        }
        return result
    }

    private enum OutputKind { case classes, other }
    private func outputKind(_ layer: Layer) -> OutputKind {
        switch layer {
        case .dense(let d) where d.activation == .softmax: .classes
        case .activation(.softmax): .classes
        default: .other
        }
    }

    /// Classes the model predicts: the last layer's width.
    public var classes: Int {
        get throws { try resolve().last!.outputShape[0] }
    }

    public func parameterCounts() throws -> (total: Int, trainable: Int) {
        let variables = try resolve().flatMap(\.variables)
        return (variables.reduce(0) { $0 + $1.count }, variables.filter(\.trainable).reduce(0) { $0 + $1.count })
    }

    public func parameterCount() throws -> Int { try parameterCounts().total }

    public static func output(_ size: Int, window: Int, stride: Int, padding: Padding) -> Int {
        switch padding {
        case .valid: size >= window ? (size - window) / stride + 1 : 0
        case .same: (size + stride - 1) / stride
        }
    }

    private static func infer(_ node: Node, _ shapes: [[Int]]) throws -> ([Int], [Variable]) {
        let what = "\(node.name) (\(node.layer.kerasClass))"
        func fail(_ message: String) -> ShapeError { ShapeError("\(what): \(message)") }
        func image(_ shape: [Int]) throws -> (Int, Int, Int) {
            guard shape.count == 3 else { throw fail("needs an image input (height, width, channels), got (\(shape.map(String.init).joined(separator: ", ")))") }
            return (shape[0], shape[1], shape[2])
        }
        func positive(_ values: [Int], _ name: String, count: Int = 2) throws {
            guard values.count == count, values.allSatisfy({ $0 > 0 }) else { throw fail("\(name) must be \(count) positive numbers, got \(values)") }
        }
        if case .add = node.layer {
            guard shapes.count >= 2 else { throw fail("adds two or more inputs, got \(shapes.count)") }
            guard shapes.allSatisfy({ $0 == shapes[0] }) else { throw fail("inputs of different shapes \(shapes)") }
            return (shapes[0], [])
        }
        guard shapes.count == 1 else { throw fail("takes one input, got \(shapes.count)") }
        let shape = shapes[0]
        let v = { (name: String, shape: [Int], trainable: Bool) in
            Variable(path: "\(node.name)/\(name)", shape: shape, trainable: trainable,
                     initializer: name == "kernel" ? .glorotUniform : name == "gamma" || name == "moving_variance" ? .ones : .zeros)
        }
        switch node.layer {
        case .conv2D(let c):
            let (h, w, channels) = try image(shape)
            try positive(c.kernel, "kernel_size")
            try positive(c.strides, "strides")
            guard c.filters > 0 else { throw fail("filters must be positive, got \(c.filters)") }
            guard c.activation != .softmax else { throw fail("a softmax activation is supported on the last layer only") }
            let oh = output(h, window: c.kernel[0], stride: c.strides[0], padding: c.padding)
            let ow = output(w, window: c.kernel[1], stride: c.strides[1], padding: c.padding)
            guard oh > 0, ow > 0 else {
                throw fail("a \(c.kernel[0])x\(c.kernel[1]) kernel with '\(c.padding.rawValue)' padding does not fit its \(h)x\(w) input")
            }
            var variables = [v("kernel", [c.kernel[0], c.kernel[1], channels, c.filters], true)]
            if c.useBias { variables.append(v("bias", [c.filters], true)) }
            return ([oh, ow, c.filters], variables)
        case .maxPooling2D(let p), .averagePooling2D(let p):
            let (h, w, channels) = try image(shape)
            try positive(p.size, "pool_size")
            try positive(p.strides, "strides")
            let oh = output(h, window: p.size[0], stride: p.strides[0], padding: p.padding)
            let ow = output(w, window: p.size[1], stride: p.strides[1], padding: p.padding)
            guard oh > 0, ow > 0 else {
                throw fail("a \(p.size[0])x\(p.size[1]) pool does not fit its \(h)x\(w) input")
            }
            return ([oh, ow, channels], [])
        case .globalAveragePooling2D, .globalMaxPooling2D:
            return ([try image(shape).2], [])
        case .flatten:
            return ([shape.reduce(1, *)], [])
        case .dense(let d):
            guard shape.count == 1 else { throw fail("reads features; put a Flatten or a global pooling before it (input \(shape))") }
            guard d.units > 0 else { throw fail("units must be positive, got \(d.units)") }
            var variables = [v("kernel", [shape[0], d.units], true)]
            if d.useBias { variables.append(v("bias", [d.units], true)) }
            return ([d.units], variables)
        case .dropout(let rate):
            guard rate >= 0 && rate < 1 else { throw fail("rate must be in [0, 1), got \(rate)") }
            return (shape, [])
        case .batchNormalization(let b):
            guard b.momentum >= 0 && b.momentum <= 1, b.epsilon > 0 else { throw fail("momentum must be in [0, 1] and epsilon positive") }
            let channels = shape.last!
            var variables: [Variable] = []
            if b.scale { variables.append(v("gamma", [channels], true)) }
            if b.center { variables.append(v("beta", [channels], true)) }
            variables += [v("moving_mean", [channels], false), v("moving_variance", [channels], false)]
            return (shape, variables)
        case .activation(let a):
            if a == .softmax && shape.count != 1 { throw fail("softmax is supported over features only") }
            return (shape, [])
        case .relu, .rescaling:
            return (shape, [])
        case .randomFlip:
            _ = try image(shape)
            return (shape, [])
        case .randomTranslation(let t):
            _ = try image(shape)
            guard t.height.count == 2, t.width.count == 2, (t.height + t.width).allSatisfy({ abs($0) <= 1 }) else {
                throw fail("height_factor and width_factor must lie in [-1, 1]")
            }
            return (shape, [])
        case .add:
            fatalError("handled above")
        }
    }
}

extension ModelGraph.Layer {
    private enum Keys: String, CodingKey { case `class`, config }
    private struct Rate: Codable { var rate: Double }
    private struct Scale: Codable { var scale: Double; var offset: Double }
    private struct Function: Codable { var activation: ModelGraph.Activation }

    /// `{"class": "Conv2D", "config": {...}}`: what summary.json and checkpoints record, readable
    /// beside Keras's own config.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let name = try c.decode(String.self, forKey: .class)
        switch name {
        case "Conv2D": self = .conv2D(try c.decode(ModelGraph.Conv2D.self, forKey: .config))
        case "MaxPooling2D": self = .maxPooling2D(try c.decode(ModelGraph.Pooling.self, forKey: .config))
        case "AveragePooling2D": self = .averagePooling2D(try c.decode(ModelGraph.Pooling.self, forKey: .config))
        case "GlobalAveragePooling2D": self = .globalAveragePooling2D
        case "GlobalMaxPooling2D": self = .globalMaxPooling2D
        case "Flatten": self = .flatten
        case "Dense": self = .dense(try c.decode(ModelGraph.Dense.self, forKey: .config))
        case "Dropout": self = .dropout(rate: try c.decode(Rate.self, forKey: .config).rate)
        case "BatchNormalization": self = .batchNormalization(try c.decode(ModelGraph.BatchNormalization.self, forKey: .config))
        case "Activation": self = .activation(try c.decode(Function.self, forKey: .config).activation)
        case "ReLU": self = .relu
        case "Rescaling":
            let s = try c.decode(Scale.self, forKey: .config)
            self = .rescaling(scale: s.scale, offset: s.offset)
        case "Add": self = .add
        case "RandomFlip": self = .randomFlip
        case "RandomTranslation": self = .randomTranslation(try c.decode(ModelGraph.RandomTranslation.self, forKey: .config))
        default: throw DecodingError.dataCorruptedError(forKey: .class, in: c, debugDescription: "unknown layer class '\(name)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(kerasClass, forKey: .class)
        switch self {
        case .conv2D(let v): try c.encode(v, forKey: .config)
        case .maxPooling2D(let v), .averagePooling2D(let v): try c.encode(v, forKey: .config)
        case .dense(let v): try c.encode(v, forKey: .config)
        case .dropout(let rate): try c.encode(Rate(rate: rate), forKey: .config)
        case .batchNormalization(let v): try c.encode(v, forKey: .config)
        case .activation(let a): try c.encode(Function(activation: a), forKey: .config)
        case .rescaling(let scale, let offset): try c.encode(Scale(scale: scale, offset: offset), forKey: .config)
        case .randomTranslation(let v): try c.encode(v, forKey: .config)
        case .globalAveragePooling2D, .globalMaxPooling2D, .flatten, .relu, .add, .randomFlip: break
        }
    }
}
