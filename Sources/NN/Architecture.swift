/// The shape of a network: conv blocks (Conv2D + ReLU, then MaxPool), Flatten, hidden Dense
/// (ReLU) layers, and a final Dense softmax. The defaults are the Keras MNIST tutorial model.
public struct Architecture: Codable, Equatable, Sendable {
    public enum Padding: String, Codable, Sendable, CaseIterable {
        case valid, same
    }

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

    /// One row of the Keras-style summary, and the geometry the network is built from.
    public struct LayerInfo: Sendable {
        public enum Kind: String, Sendable {
            case conv2D = "Conv2D", maxPooling2D = "MaxPooling2D", flatten = "Flatten", dense = "Dense"
        }
        public var name: String
        public var kind: Kind
        /// Per-example output shape (H, W, C) or (features).
        public var outputShape: [Int]
        public var parameterCount: Int
    }

    public struct ShapeError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The layers in order with their output shapes; throws naming the first layer that does not fit.
    public func layers() throws -> [LayerInfo] {
        guard inputHeight > 0, inputWidth > 0, inputChannels > 0 else {
            throw ShapeError(description: "input: shape \(inputHeight)x\(inputWidth)x\(inputChannels) is empty")
        }
        guard classes > 1 else { throw ShapeError(description: "dense: needs at least 2 classes") }
        var result: [LayerInfo] = []
        var (h, w, c) = (inputHeight, inputWidth, inputChannels)
        for (i, block) in convBlocks.enumerated() {
            let convName = i == 0 ? "conv2d" : "conv2d_\(i)"
            let poolName = i == 0 ? "max_pooling2d" : "max_pooling2d_\(i)"
            guard block.filters > 0 else { throw ShapeError(description: "\(convName): filters must be positive, got \(block.filters)") }
            guard block.kernelSize > 0 else { throw ShapeError(description: "\(convName): kernel size must be positive, got \(block.kernelSize)") }
            guard block.stride > 0 else { throw ShapeError(description: "\(convName): stride must be positive, got \(block.stride)") }
            guard block.poolSize > 0 else { throw ShapeError(description: "\(poolName): pool size must be positive, got \(block.poolSize)") }
            let geometry = ConvGeometry(inHeight: h, inWidth: w, inChannels: c, block: block)
            guard geometry.outHeight > 0, geometry.outWidth > 0 else {
                throw ShapeError(description: "\(convName): a \(block.kernelSize)x\(block.kernelSize) kernel with '\(block.padding.rawValue)' padding does not fit its \(h)x\(w) input")
            }
            result.append(LayerInfo(name: convName, kind: .conv2D, outputShape: [geometry.outHeight, geometry.outWidth, block.filters],
                                    parameterCount: block.kernelSize * block.kernelSize * c * block.filters + block.filters))
            (h, w, c) = (geometry.outHeight / block.poolSize, geometry.outWidth / block.poolSize, block.filters)
            guard h > 0, w > 0 else {
                throw ShapeError(description: "\(poolName): a \(block.poolSize)x\(block.poolSize) pool does not fit its \(geometry.outHeight)x\(geometry.outWidth) input")
            }
            result.append(LayerInfo(name: poolName, kind: .maxPooling2D, outputShape: [h, w, c], parameterCount: 0))
        }
        var features = h * w * c
        result.append(LayerInfo(name: "flatten", kind: .flatten, outputShape: [features], parameterCount: 0))
        for (i, width) in (hiddenDense + [classes]).enumerated() {
            let name = i == 0 ? "dense" : "dense_\(i)"
            guard width > 0 else { throw ShapeError(description: "\(name): units must be positive, got \(width)") }
            result.append(LayerInfo(name: name, kind: .dense, outputShape: [width], parameterCount: features * width + width))
            features = width
        }
        return result
    }

    public func parameterCount() throws -> Int {
        try layers().reduce(0) { $0 + $1.parameterCount }
    }

    /// Keras `model.summary()` layout (the plain-text form), so users can diff it against Keras.
    public func summaryTable() throws -> String {
        let rows = try layers()
        let rule = String(repeating: "_", count: 70)
        let double = String(repeating: "=", count: 70)
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
        var lines = ["Model: \"sequential\"", rule, " " + pad("Layer (type)", 33) + pad("Output Shape", 26) + "Param #", double]
        for (i, row) in rows.enumerated() {
            let shape = "(None, " + row.outputShape.map(String.init).joined(separator: ", ") + ")"
            lines.append(" " + pad("\(row.name) (\(row.kind.rawValue))", 33) + pad(shape, 26) + formatThousands(row.parameterCount))
            if i < rows.count - 1 { lines.append("") }
        }
        let total = rows.reduce(0) { $0 + $1.parameterCount }
        lines += [double, "Total params: \(formatThousands(total))", "Trainable params: \(formatThousands(total))",
                  "Non-trainable params: 0", rule]
        return lines.joined(separator: "\n")
    }
}

/// 62346 -> "62,346".
public func formatThousands(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return value < 0 ? "-" + out : out
}

/// Output size and padding of a convolution, with Keras's rules for 'valid' and 'same'.
public struct ConvGeometry: Sendable {
    public let inHeight, inWidth, inChannels: Int
    public let kernel, stride, filters: Int
    public let outHeight, outWidth: Int
    /// Zero rows/columns added before the input; 'same' puts the odd one after, as Keras/TF do.
    public let padTop, padLeft: Int

    public init(inHeight: Int, inWidth: Int, inChannels: Int, block: Architecture.ConvBlock) {
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.inChannels = inChannels
        kernel = block.kernelSize
        stride = block.stride
        filters = block.filters
        switch block.padding {
        case .valid:
            outHeight = inHeight >= kernel ? (inHeight - kernel) / stride + 1 : 0
            outWidth = inWidth >= kernel ? (inWidth - kernel) / stride + 1 : 0
            padTop = 0
            padLeft = 0
        case .same:
            outHeight = (inHeight + stride - 1) / stride
            outWidth = (inWidth + stride - 1) / stride
            padTop = max((outHeight - 1) * stride + kernel - inHeight, 0) / 2
            padLeft = max((outWidth - 1) * stride + kernel - inWidth, 0) / 2
        }
    }

    /// Columns of the im2col matrix: one per (kh, kw, c), matching an HWIO kernel's rows.
    public var patchSize: Int { kernel * kernel * inChannels }
}
