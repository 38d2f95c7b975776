/// The model flags' shorthand for a Sequential graph: conv blocks (Conv2D + ReLU, then MaxPool),
/// Flatten, hidden Dense (ReLU) layers, and a final Dense softmax. The defaults are the Keras MNIST
/// tutorial model. Files written before the layer graph record this; `graph()` reads them.
public struct Architecture: Codable, Equatable, Sendable {
    public typealias Padding = ModelGraph.Padding

    public struct ConvBlock: Codable, Equatable, Sendable {
        public var filters: Int
        public var kernelSize: Int
        public var stride: Int
        public var padding: Padding
        public var poolSize: Int

        public init(filters: Int, kernelSize: Int = 5, stride: Int = 1, padding: Padding = .valid, poolSize: Int = 2) {
            self.filters = filters
            self.kernelSize = kernelSize
            self.stride = stride
            self.padding = padding
            self.poolSize = poolSize
        }
    }

    public var inputHeight: Int
    public var inputWidth: Int
    public var inputChannels: Int
    public var convBlocks: [ConvBlock]
    public var hiddenDense: [Int]
    public var classes: Int

    public static let mnistReference = Architecture(
        inputHeight: 28, inputWidth: 28, inputChannels: 1,
        convBlocks: [ConvBlock(filters: 32), ConvBlock(filters: 64)],
        hiddenDense: [], classes: 10)

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int, convBlocks: [ConvBlock], hiddenDense: [Int], classes: Int) {
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.inputChannels = inputChannels
        self.convBlocks = convBlocks
        self.hiddenDense = hiddenDense
        self.classes = classes
    }

    /// The graph these flags stand for, with Keras's default layer names: conv2d, max_pooling2d,
    /// conv2d_1, …, flatten, dense, dense_1, …
    public func graph() -> ModelGraph {
        var layers: [(String, ModelGraph.Layer)] = []
        for (i, block) in convBlocks.enumerated() {
            let suffix = i == 0 ? "" : "_\(i)"
            layers.append(("conv2d" + suffix, .conv2D(.init(filters: block.filters, kernel: [block.kernelSize, block.kernelSize],
                                                             strides: [block.stride, block.stride], padding: block.padding, activation: .relu))))
            layers.append(("max_pooling2d" + suffix, .maxPooling2D(.init(size: [block.poolSize, block.poolSize]))))
        }
        layers.append(("flatten", .flatten))
        for (i, width) in (hiddenDense + [classes]).enumerated() {
            let last = i == hiddenDense.count
            layers.append((i == 0 ? "dense" : "dense_\(i)", .dense(.init(units: width, activation: last ? .softmax : .relu))))
        }
        return .sequential(input: [inputHeight, inputWidth, inputChannels], layers)
    }
}

/// Output size and padding of a convolution, with Keras's rules for 'valid' and 'same'.
public struct ConvGeometry: Sendable {
    public let inHeight, inWidth, inChannels: Int
    public let kernel, stride, filters: Int
    public let outHeight, outWidth: Int
    /// Zero rows/columns added before the input; 'same' puts the odd one after, as Keras/TF do.
    public let padTop, padLeft: Int

    public init(inHeight: Int, inWidth: Int, inChannels: Int, kernel: Int, stride: Int, filters: Int, padding: ModelGraph.Padding) {
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.inChannels = inChannels
        self.kernel = kernel
        self.stride = stride
        self.filters = filters
        outHeight = ModelGraph.output(inHeight, window: kernel, stride: stride, padding: padding)
        outWidth = ModelGraph.output(inWidth, window: kernel, stride: stride, padding: padding)
        padTop = padding == .same ? max((outHeight - 1) * stride + kernel - inHeight, 0) / 2 : 0
        padLeft = padding == .same ? max((outWidth - 1) * stride + kernel - inWidth, 0) / 2 : 0
    }

    /// Columns of the im2col matrix: one per (kh, kw, c), matching an HWIO kernel's rows.
    public var patchSize: Int { kernel * kernel * inChannels }
}
