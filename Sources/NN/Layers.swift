import CKernels

/// What a forward pass needs besides its input: training or inference, and the keys of the
/// training-only randomness, so that an example draws the same dropout mask and augmentation
/// wherever it is computed (any rank, any thread).
public struct Pass: Sendable {
    public var training: Bool
    public var seed: UInt64
    public var step: Int
    /// The position of the batch's first example in its global batch.
    public var firstExample: Int
    /// 1 / global batch: the weight of this batch's statistics in the gradient buffer.
    public var gradientScale: Float

    public static let inference = Pass(training: false, seed: 0, step: 0, firstExample: 0, gradientScale: 0)

    public init(training: Bool, seed: UInt64, step: Int, firstExample: Int, gradientScale: Float) {
        (self.training, self.seed, self.step, self.firstExample, self.gradientScale) = (training, seed, step, firstExample, gradientScale)
    }
}

/// One step of the network: one layer of the graph, or several the fusion pass joined. Its
/// inputs, its output and the buffers its input gradients go to are fixed when it is built,
/// each sized for the largest batch, so the training loop never allocates.
protocol Layer: AnyObject {
    /// Keras's name ("conv2d", "max_pooling2d", "dense_1"; a fused step joins them with "+").
    var name: String { get }
    var output: UnsafeMutablePointer<Float> { get }
    var outputCount: Int { get }  // per example
    func forward(batch: Int, pass: Pass)
    /// Reads (and may overwrite) `gradOutput`; writes the input gradients it was built with.
    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int)
    /// `backward` in two parts, the weight gradients first: a bucketed reduction can start on
    /// them while the input gradient is computed. By default the first part is all of it.
    func backwardWeights(gradOutput: UnsafeMutablePointer<Float>, batch: Int)
    func backwardInput(gradOutput: UnsafeMutablePointer<Float>, batch: Int)
    /// The weights part in parts, computed in order, each final once done: where each part's
    /// gradient begins in the layer's first variable (`ParameterTensor.pieceStarts`). One part
    /// by default.
    var weightPartStarts: [Int] { get }
    func backwardWeights(gradOutput: UnsafeMutablePointer<Float>, batch: Int, part: Int)
}

extension Layer {
    func backwardWeights(gradOutput: UnsafeMutablePointer<Float>, batch: Int) { backward(gradOutput: gradOutput, batch: batch) }
    func backwardInput(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {}
    var weightPartStarts: [Int] { [0] }
    func backwardWeights(gradOutput: UnsafeMutablePointer<Float>, batch: Int, part: Int) { backwardWeights(gradOutput: gradOutput, batch: batch) }
}

/// The weights a layer reads and the gradients it writes, inside the network's flat buffers;
/// a layer without a bias reads zeros and writes its bias gradient nowhere that is kept.
struct Weights {
    let kernel, kernelGrad: UnsafeMutablePointer<Float>
    let bias, biasGrad: UnsafeMutablePointer<Float>
    /// The zeros and the scratch of a layer without a bias, freed with the network.
    let owned: UnsafeMutablePointer<Float>?

    init(kernel: UnsafeMutablePointer<Float>, kernelGrad: UnsafeMutablePointer<Float>,
         bias: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)?, units: Int) {
        (self.kernel, self.kernelGrad) = (kernel, kernelGrad)
        if let bias {
            (self.bias, self.biasGrad, owned) = (bias.0, bias.1, nil)
        } else {
            let zeros = UnsafeMutablePointer<Float>.tensor(capacity: 2 * units)
            zeros.initialize(repeating: 0, count: 2 * units)
            (self.bias, self.biasGrad, owned) = (zeros, zeros + units, zeros)
        }
    }

    func free() { owned?.deallocate() }
}

/// A conv as the CKernels see it: a 'valid' conv over a buffer holding any padding (a zero-bordered
/// copy of the input when padded), and which passes they take.
final class DirectConv {
    let g: ConvGeometry
    /// ReLU after the bias (else linear: a conv that batch normalisation follows).
    let relu: Bool
    var geometry: dpk_conv
    let kernels: OpaquePointer?
    /// The kernels take the forward pass and the weight gradient; and the input gradient.
    let fast, fastInput: Bool
    /// The padded input (and, after the weight gradient, the padded input gradient); nil unpadded.
    let padded: UnsafeMutablePointer<Float>?
    /// The kernel transposed per row, for the input gradient.
    let transposed: UnsafeMutablePointer<Float>
    /// With --precision bf16: the BF16 kernels' buffers (the batch's input in bf16, the packed
    /// kernel), for a conv the kernels take; nil runs FP32.
    let work: UnsafeMutableRawPointer?
    /// Whether the BF16 kernels also take the input gradient. They need 16 filters a vector and
    /// kw·in_c a multiple of 16; the FP32 kernels may take more (8-wide vectors on this CPU too).
    let bf16Input: Bool

    init(_ g: ConvGeometry, relu: Bool, maxBatch: Int, precision: Precision = .fp32) {
        self.g = g
        self.relu = relu
        // Rows and columns the windows reach; 'valid' may leave some of the input unread.
        let reachHeight = (g.outHeight - 1) * g.stride + g.kernel, reachWidth = (g.outWidth - 1) * g.stride + g.kernel
        let pads = g.padTop > 0 || g.padLeft > 0 || reachHeight > g.inHeight || reachWidth > g.inWidth
        // Padding as wide on every side ('same', odd kernels): the kernels may skip its gradient, which is cropped.
        let even = reachHeight - g.inHeight == 2 * g.padTop && reachWidth - g.inWidth == 2 * g.padLeft && g.padTop == g.padLeft
        geometry = dpk_conv(in_h: Int32(pads ? reachHeight : g.inHeight), in_w: Int32(pads ? reachWidth : g.inWidth),
                            in_c: Int32(g.inChannels), kernel: Int32(g.kernel), stride: Int32(g.stride), filters: Int32(g.filters),
                            out_h: Int32(g.outHeight), out_w: Int32(g.outWidth), linear: relu ? 0 : 1, direct: Kernels.winograd ? 0 : 1,
                            border: pads && even ? Int32(g.padTop) : 0)
        kernels = Kernels.path.kernels
        fast = kernels != nil && dpk_conv_supports(kernels, &geometry, Int32(DPK_FORWARD)) != 0
        fastInput = fast && dpk_conv_supports(kernels, &geometry, Int32(DPK_BACKWARD_INPUT)) != 0
        padded = fast && pads ? .tensor(capacity: maxBatch * reachHeight * reachWidth * g.inChannels) : nil
        transposed = .tensor(capacity: fastInput ? g.patchSize * g.filters : 0)
        let bf16 = fast && precision == .bf16 && g.filters % 16 == 0
        work = bf16 ? .allocate(byteCount: dpk_bf16_workspace(&geometry, Int32(maxBatch)), alignment: 64) : nil
        bf16Input = bf16 && fastInput && g.kernel * g.inChannels % 16 == 0
    }

    deinit {
        padded?.deallocate()
        transposed.deallocate()
        work?.deallocate()
    }

    /// The input the kernels read: the caller's, or its zero-bordered copy.
    func input(_ input: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        guard let padded else { return input }
        dpk_pad(input, Int32(batch), Int32(g.inHeight), Int32(g.inWidth), Int32(g.inChannels),
                padded, geometry.in_h, geometry.in_w, Int32(g.padTop), Int32(g.padLeft))
        return UnsafePointer(padded)
    }

    /// Where the kernels write the input gradient: the caller's buffer, or the padded one, which the
    /// weight gradient no longer needs; then `finishGradient` crops it.
    func gradientBuffer(_ gradInput: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { padded ?? gradInput }

    func finishGradient(_ gradInput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let padded else { return }
        dpk_crop(padded, Int32(batch), geometry.in_h, geometry.in_w, Int32(g.padTop), Int32(g.padLeft),
                 gradInput, Int32(g.inHeight), Int32(g.inWidth), Int32(g.inChannels))
    }
}

/// A conv with its activation, and the max pooling after it when `pool` is given: one fused
/// conv + pool layer where the kernels take all its passes, else a conv layer and a pool layer.
func convLayers(_ g: ConvGeometry, relu: Bool, pool: (size: Int, name: String)?, name: String, input: UnsafePointer<Float>,
                gradInput: UnsafeMutablePointer<Float>?, weights: Weights, maxBatch: Int, precision: Precision,
                poolGradient: (Int) -> UnsafeMutablePointer<Float>) -> [any Layer] {
    let direct = DirectConv(g, relu: relu, maxBatch: maxBatch, precision: precision)
    if let pool, relu, direct.fast && (direct.fastInput || gradInput == nil) {
        return [ConvPoolLayer(direct, pool: pool.size, name: name + "+" + pool.name, input: input, gradInput: gradInput, weights: weights, maxBatch: maxBatch)]
    }
    let conv = Conv2DLayer(direct, name: name, input: input, gradInput: gradInput, weights: weights, maxBatch: maxBatch)
    guard let pool else { return [conv] }
    let count = maxBatch * conv.outputCount
    return [conv, MaxPoolLayer(height: g.outHeight, width: g.outWidth, channels: g.filters, pool: pool.size, name: pool.name,
                               input: UnsafePointer(conv.output), gradInput: poolGradient(count), maxBatch: maxBatch)]
}

/// Convolution + bias + ReLU + max pooling, image by image in the kernels, so a batch's conv
/// output (the largest activation) is never stored.
final class ConvPoolLayer: Layer {
    let name: String
    let direct: DirectConv
    let pool: Int
    let weights: Weights
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>
    /// One image's conv output, then its gradient.
    private let scratch: UnsafeMutablePointer<Float>
    var outputCount: Int { (direct.g.outHeight / pool) * (direct.g.outWidth / pool) * direct.g.filters }

    init(_ direct: DirectConv, pool: Int, name: String, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
         weights: Weights, maxBatch: Int) {
        let g = direct.g
        (self.direct, self.pool, self.name, self.input, self.gradInput, self.weights) = (direct, pool, name, input, gradInput, weights)
        let count = maxBatch * (g.outHeight / pool) * (g.outWidth / pool) * g.filters
        output = .tensor(capacity: count)
        argmax = .tensor(capacity: count)
        scratch = .tensor(capacity: g.outHeight * g.outWidth * g.filters)
    }

    deinit {
        output.deallocate()
        argmax.deallocate()
        scratch.deallocate()
        weights.free()
    }

    func forward(batch: Int, pass: Pass) {
        if let work = direct.work {
            dpk_bf16_conv_pool_forward(&direct.geometry, Int32(pool), direct.input(input, batch: batch), weights.kernel, weights.bias,
                                       output, argmax, scratch, work, Int32(batch))
            return
        }
        dpk_conv_pool_forward(direct.kernels, &direct.geometry, Int32(pool), direct.input(input, batch: batch), weights.kernel, weights.bias,
                              output, argmax, scratch, Int32(batch))
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        if let work = direct.work, gradInput == nil || direct.bf16Input {
            // The forward pass left its bf16 input in `work`.
            dpk_bf16_conv_pool_backward(&direct.geometry, Int32(pool), output, argmax, gradOutput, weights.kernel, scratch, work,
                                        weights.kernelGrad, weights.biasGrad, gradInput.map(direct.gradientBuffer), Int32(batch))
            if let gradInput { direct.finishGradient(gradInput, batch: batch) }
            return
        }
        // The forward pass left the padded input in `direct.padded`.
        let x = direct.padded.map { UnsafePointer($0) } ?? input
        dpk_conv_pool_backward(direct.kernels, &direct.geometry, Int32(pool), x, output, argmax, gradOutput, weights.kernel,
                               direct.transposed, scratch, weights.kernelGrad, weights.biasGrad, gradInput.map(direct.gradientBuffer), Int32(batch))
        if let gradInput { direct.finishGradient(gradInput, batch: batch) }
    }
}

/// Convolution + bias (+ ReLU), on the kernels or, for filter counts the vector width does not
/// divide, im2col + OpenBLAS (the general path).
final class Conv2DLayer: Layer {
    let name: String
    let direct: DirectConv
    var g: ConvGeometry { direct.g }
    let weights: Weights
    var kernel: UnsafeMutablePointer<Float> { weights.kernel }
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { g.outHeight * g.outWidth * g.filters }
    /// Column matrix for im2col + GEMM; nil when the kernels take every pass.
    private let cols: UnsafeMutablePointer<Float>?

    init(_ direct: DirectConv, name: String, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, weights: Weights, maxBatch: Int) {
        let g = direct.g
        (self.direct, self.name, self.input, self.gradInput, self.weights) = (direct, name, input, gradInput, weights)
        output = .tensor(capacity: maxBatch * g.outHeight * g.outWidth * g.filters)
        cols = direct.fastInput ? nil : .tensor(capacity: maxBatch * g.outHeight * g.outWidth * g.patchSize)
    }

    deinit {
        output.deallocate()
        cols?.deallocate()
        weights.free()
    }

    func forward(batch: Int, pass: Pass) {
        guard direct.fast else {
            let rows = batch * g.outHeight * g.outWidth
            Kernels.im2col(input, cols!, batch: batch, g)
            Kernels.gemm(m: rows, n: g.filters, k: g.patchSize, cols!, kernel, output)
            Kernels.addBias(output, rows: rows, weights.bias, columns: g.filters, relu: direct.relu)
            return
        }
        if let work = direct.work {
            dpk_bf16_conv_forward(&direct.geometry, direct.input(input, batch: batch), kernel, weights.bias, output, work, Int32(batch))
            return
        }
        dpk_conv_forward(direct.kernels, &direct.geometry, direct.input(input, batch: batch), kernel, weights.bias, output, Int32(batch))
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        let rows = batch * g.outHeight * g.outWidth
        guard direct.fast else {
            if direct.relu { Kernels.reluBackward(gradOutput, output: output, count: rows * g.filters) }
            Kernels.gemm(transA: true, m: g.patchSize, n: g.filters, k: rows, cols!, gradOutput, weights.kernelGrad)
            Kernels.columnSums(gradOutput, rows: rows, columns: g.filters, into: weights.biasGrad)
            guard let gradInput else { return }
            // The columns are no longer needed: their buffer takes the column gradients.
            Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols!)
            Kernels.col2im(cols!, gradInput, batch: batch, g)
            return
        }
        if direct.relu {
            dpk_relu_backward_bias(direct.kernels, gradOutput, output, Int32(rows), Int32(g.filters), weights.biasGrad)
        } else {
            Kernels.columnSums(gradOutput, rows: rows, columns: g.filters, into: weights.biasGrad)
        }
        if let work = direct.work {
            // Both gradients from the bf16 input the forward pass left in `work`; a kernel row the
            // BF16 input gradient does not take (kw·in_c not a multiple of 16) gets it in FP32 below.
            dpk_bf16_conv_backward(&direct.geometry, gradOutput, kernel, work, weights.kernelGrad,
                                   gradInput != nil && direct.bf16Input ? direct.gradientBuffer(gradInput!) : nil, Int32(batch))
        } else {
            // The forward pass left the padded input in `direct.padded`.
            dpk_conv_backward_weights(direct.kernels, &direct.geometry, direct.padded.map { UnsafePointer($0) } ?? input,
                                      gradOutput, weights.kernelGrad, Int32(batch))
        }
        guard let gradInput else { return }
        guard direct.fastInput else {
            Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols!)
            Kernels.col2im(cols!, gradInput, batch: batch, g)
            return
        }
        if !direct.bf16Input {
            dpk_conv_backward_input(direct.kernels, &direct.geometry, gradOutput, kernel, direct.transposed,
                                    direct.gradientBuffer(gradInput), Int32(batch))
        }
        direct.finishGradient(gradInput, batch: batch)
    }
}

/// Max pooling with windows of `pool` × `pool` at stride `pool`, 'valid' (Keras's default), on the kernels.
final class MaxPoolLayer: Layer {
    let name: String
    let height, width, channels, pool: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>
    /// The im2col path pools with the portable kernels.
    private let kernels = Kernels.path.kernels ?? dpk_path_named("portable")
    var outputCount: Int { (height / pool) * (width / pool) * channels }

    init(height: Int, width: Int, channels: Int, pool: Int, name: String, input: UnsafePointer<Float>,
         gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.height, self.width, self.channels, self.pool, self.name) = (height, width, channels, pool, name)
        (self.input, self.gradInput) = (input, gradInput)
        let count = maxBatch * (height / pool) * (width / pool) * channels
        output = .tensor(capacity: count)
        argmax = .tensor(capacity: count)
    }

    deinit {
        output.deallocate()
        argmax.deallocate()
    }

    func forward(batch: Int, pass: Pass) {
        dpk_max_pool(kernels, input, output, argmax, Int32(batch), Int32(height), Int32(width), Int32(channels), Int32(pool))
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        dpk_max_pool_backward(kernels, gradOutput, argmax, gradInput, Int32(batch), Int32(height), Int32(width), Int32(channels), Int32(pool))
    }
}

/// Dense: x·kernel + bias, then ReLU when the fusion pass joined one; the network's last Dense
/// gives the logits the softmax cross-entropy reads. With --precision bf16 its input, kernel and
/// output gradient are rounded to bf16 first: their products are exact in FP32, so OpenBLAS's FP32
/// GEMM over them is a BF16 GEMM with FP32 sums (no faster: a dense layer is a sliver of a CNN's work).
final class DenseLayer: Layer {
    let name: String
    let inputs, units: Int
    let relu: Bool
    let weights: Weights
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { units }
    let weightPartStarts: [Int]
    /// bf16: the rounded input, kernel and output gradient; nil in FP32.
    private let rounded: (input: UnsafeMutablePointer<Float>, kernel: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>)?

    init(inputs: Int, units: Int, relu: Bool, name: String, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
         weights: Weights, maxBatch: Int, precision: Precision = .fp32) {
        (self.inputs, self.units, self.relu, self.name) = (inputs, units, relu, name)
        (self.input, self.gradInput, self.weights) = (input, gradInput, weights)
        weightPartStarts = ParameterTensor.pieceStarts(shape: [inputs, units])
        output = .tensor(capacity: maxBatch * units)
        rounded = precision == .bf16 ? (.tensor(capacity: maxBatch * inputs), .tensor(capacity: inputs * units), .tensor(capacity: maxBatch * units)) : nil
    }

    deinit {
        output.deallocate()
        if let rounded { [rounded.input, rounded.kernel, rounded.gradient].forEach { $0.deallocate() } }
        weights.free()
    }

    func forward(batch: Int, pass: Pass) {
        var x = input, w = UnsafePointer(weights.kernel)
        if let rounded {
            Precision.round(input, into: rounded.input, count: batch * inputs)
            Precision.round(weights.kernel, into: rounded.kernel, count: inputs * units)
            (x, w) = (UnsafePointer(rounded.input), UnsafePointer(rounded.kernel))
        }
        Kernels.gemm(m: batch, n: units, k: inputs, x, w, output)
        Kernels.addBias(output, rows: batch, weights.bias, columns: units, relu: relu)
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        backwardWeights(gradOutput: gradOutput, batch: batch)
        backwardInput(gradOutput: gradOutput, batch: batch)
    }

    func backwardWeights(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        for part in weightPartStarts.indices { backwardWeights(gradOutput: gradOutput, batch: batch, part: part) }
    }

    /// Part 0 also takes the ReLU's gradient and the bias's; each part is a row block of the
    /// kernel's gradient, the last rows first.
    func backwardWeights(gradOutput: UnsafeMutablePointer<Float>, batch: Int, part: Int) {
        if part == 0 {
            if relu { Kernels.reluBackward(gradOutput, output: output, count: batch * units) }
            Kernels.columnSums(gradOutput, rows: batch, columns: units, into: weights.biasGrad)
            // The forward pass left the rounded input (and kernel, for the input gradient).
            if let rounded { Precision.round(gradOutput, into: rounded.gradient, count: batch * units) }
        }
        let x = rounded.map { UnsafePointer($0.input) } ?? input, d = rounded.map { UnsafePointer($0.gradient) } ?? UnsafePointer(gradOutput)
        let firstRow = weightPartStarts[part] / units, rows = (part == 0 ? inputs : weightPartStarts[part - 1] / units) - firstRow
        Kernels.gemm(transA: true, m: rows, n: units, k: batch, x + firstRow, lda: inputs, d, weights.kernelGrad + weightPartStarts[part])
    }

    func backwardInput(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        // bf16: the output gradient backwardWeights rounded, and the kernel the forward pass did.
        let (d, w) = rounded.map { (UnsafePointer($0.gradient), UnsafePointer($0.kernel)) } ?? (UnsafePointer(gradOutput), UnsafePointer(weights.kernel))
        Kernels.gemm(transB: true, m: batch, n: inputs, k: units, d, w, gradInput)
    }
}
