import CKernels

/// Buffers of one layer, sized once for the largest batch so the training loop never allocates.
protocol Layer: AnyObject {
    /// Keras's name ("conv2d", "max_pooling2d", "dense_1"; a fused block joins two with "+").
    var name: String { get }
    var output: UnsafeMutablePointer<Float> { get }
    var outputCount: Int { get }  // per example
    func forward(_ input: UnsafePointer<Float>, batch: Int)
    /// Reads (and may overwrite) `gradOutput`; writes `gradInput` when it is not nil.
    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int)
}

/// A conv as the CKernels see it: a 'valid' conv over a buffer holding any padding (a zero-bordered
/// copy of the input when padded), and which passes they take.
final class DirectConv {
    let g: ConvGeometry
    var geometry: dpk_conv
    let kernels: OpaquePointer?
    /// The kernels take the forward pass and the weight gradient; and the input gradient.
    let fast, fastInput: Bool
    /// The padded input (and, after the weight gradient, the padded input gradient); nil unpadded.
    let padded: UnsafeMutablePointer<Float>?
    /// The kernel transposed per row, for the input gradient.
    let transposed: UnsafeMutablePointer<Float>

    init(_ g: ConvGeometry, maxBatch: Int) {
        self.g = g
        // Rows and columns the windows reach; 'valid' may leave some of the input unread.
        let reachHeight = (g.outHeight - 1) * g.stride + g.kernel, reachWidth = (g.outWidth - 1) * g.stride + g.kernel
        let pads = g.padTop > 0 || g.padLeft > 0 || reachHeight > g.inHeight || reachWidth > g.inWidth
        geometry = dpk_conv(in_h: Int32(pads ? reachHeight : g.inHeight), in_w: Int32(pads ? reachWidth : g.inWidth),
                            in_c: Int32(g.inChannels), kernel: Int32(g.kernel), stride: Int32(g.stride), filters: Int32(g.filters),
                            out_h: Int32(g.outHeight), out_w: Int32(g.outWidth))
        kernels = Kernels.path.kernels
        fast = kernels != nil && dpk_conv_supports(kernels, &geometry, Int32(DPK_FORWARD)) != 0
        fastInput = fast && dpk_conv_supports(kernels, &geometry, Int32(DPK_BACKWARD_INPUT)) != 0
        padded = fast && pads ? .allocate(capacity: maxBatch * reachHeight * reachWidth * g.inChannels) : nil
        transposed = .allocate(capacity: fastInput ? g.patchSize * g.filters : 0)
    }

    deinit {
        padded?.deallocate()
        transposed.deallocate()
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

/// A conv block's layers: one fused conv + pool layer where the kernels take all its passes, else
/// a conv layer and a pool layer.
func convBlockLayers(_ g: ConvGeometry, pool: Int, names: (conv: String, pool: String), needsInputGradient: Bool,
                     weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) -> [any Layer] {
    let direct = DirectConv(g, maxBatch: maxBatch)
    if direct.fast && (direct.fastInput || !needsInputGradient) {
        return [ConvPoolLayer(direct, pool: pool, name: names.conv + "+" + names.pool, weights: weights, grads: grads, maxBatch: maxBatch)]
    }
    return [Conv2DLayer(direct, name: names.conv, weights: weights, grads: grads, maxBatch: maxBatch),
            MaxPoolLayer(height: g.outHeight, width: g.outWidth, channels: g.filters, pool: pool, name: names.pool, maxBatch: maxBatch)]
}

/// Convolution + bias + ReLU + max pooling, image by image in the kernels, so a batch's conv
/// output (the largest activation) is never stored.
final class ConvPoolLayer: Layer {
    let name: String
    let direct: DirectConv
    let pool: Int
    let kernel, bias, kernelGrad, biasGrad: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>
    /// One image's conv output, then its gradient.
    private let scratch: UnsafeMutablePointer<Float>
    var outputCount: Int { (direct.g.outHeight / pool) * (direct.g.outWidth / pool) * direct.g.filters }

    init(_ direct: DirectConv, pool: Int, name: String, weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) {
        let g = direct.g
        (self.direct, self.pool, self.name) = (direct, pool, name)
        kernel = weights
        bias = weights + g.patchSize * g.filters
        kernelGrad = grads
        biasGrad = grads + g.patchSize * g.filters
        let count = maxBatch * (g.outHeight / pool) * (g.outWidth / pool) * g.filters
        output = .allocate(capacity: count)
        argmax = .allocate(capacity: count)
        scratch = .allocate(capacity: g.outHeight * g.outWidth * g.filters)
    }

    deinit {
        output.deallocate()
        argmax.deallocate()
        scratch.deallocate()
    }

    func forward(_ input: UnsafePointer<Float>, batch: Int) {
        dpk_conv_pool_forward(direct.kernels, &direct.geometry, Int32(pool), direct.input(input, batch: batch), kernel, bias,
                              output, argmax, scratch, Int32(batch))
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        // The forward pass left the padded input in `direct.padded`.
        let x = direct.padded.map { UnsafePointer($0) } ?? input
        dpk_conv_pool_backward(direct.kernels, &direct.geometry, Int32(pool), x, output, argmax, gradOutput, kernel,
                               direct.transposed, scratch, kernelGrad, biasGrad, gradInput.map(direct.gradientBuffer), Int32(batch))
        if let gradInput { direct.finishGradient(gradInput, batch: batch) }
    }
}

/// Convolution + bias + ReLU, on the kernels or, for filter counts the vector width does not
/// divide, im2col + OpenBLAS (the general path).
final class Conv2DLayer: Layer {
    let name: String
    let direct: DirectConv
    var g: ConvGeometry { direct.g }
    let kernel, bias, kernelGrad, biasGrad: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { g.outHeight * g.outWidth * g.filters }
    /// Column matrix for im2col + GEMM; nil when the kernels take every pass.
    private let cols: UnsafeMutablePointer<Float>?

    init(_ direct: DirectConv, name: String, weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) {
        let g = direct.g
        (self.direct, self.name) = (direct, name)
        kernel = weights
        bias = weights + g.patchSize * g.filters
        kernelGrad = grads
        biasGrad = grads + g.patchSize * g.filters
        output = .allocate(capacity: maxBatch * g.outHeight * g.outWidth * g.filters)
        cols = direct.fastInput ? nil : .allocate(capacity: maxBatch * g.outHeight * g.outWidth * g.patchSize)
    }

    deinit {
        output.deallocate()
        cols?.deallocate()
    }

    func forward(_ input: UnsafePointer<Float>, batch: Int) {
        guard direct.fast else {
            let rows = batch * g.outHeight * g.outWidth
            Kernels.im2col(input, cols!, batch: batch, g)
            Kernels.gemm(m: rows, n: g.filters, k: g.patchSize, cols!, kernel, output)
            Kernels.addBias(output, rows: rows, bias, columns: g.filters, relu: true)
            return
        }
        dpk_conv_forward(direct.kernels, &direct.geometry, direct.input(input, batch: batch), kernel, bias, output, Int32(batch))
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        let rows = batch * g.outHeight * g.outWidth
        guard direct.fast else {
            Kernels.reluBackward(gradOutput, output: output, count: rows * g.filters)
            Kernels.gemm(transA: true, m: g.patchSize, n: g.filters, k: rows, cols!, gradOutput, kernelGrad)
            Kernels.columnSums(gradOutput, rows: rows, columns: g.filters, into: biasGrad)
            guard let gradInput else { return }
            // The columns are no longer needed: their buffer takes the column gradients.
            Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols!)
            Kernels.col2im(cols!, gradInput, batch: batch, g)
            return
        }
        dpk_relu_backward_bias(direct.kernels, gradOutput, output, Int32(rows), Int32(g.filters), biasGrad)
        // The forward pass left the padded input in `direct.padded`.
        dpk_conv_backward_weights(direct.kernels, &direct.geometry, direct.padded.map { UnsafePointer($0) } ?? input,
                                  gradOutput, kernelGrad, Int32(batch))
        guard let gradInput else { return }
        guard direct.fastInput else {
            Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols!)
            Kernels.col2im(cols!, gradInput, batch: batch, g)
            return
        }
        dpk_conv_backward_input(direct.kernels, &direct.geometry, gradOutput, kernel, direct.transposed,
                                direct.gradientBuffer(gradInput), Int32(batch))
        direct.finishGradient(gradInput, batch: batch)
    }
}

final class MaxPoolLayer: Layer {
    let name: String
    let height, width, channels, pool: Int
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>
    /// The im2col path pools with the portable kernels.
    private let kernels = Kernels.path.kernels ?? dpk_path_named("portable")
    var outputCount: Int { (height / pool) * (width / pool) * channels }

    init(height: Int, width: Int, channels: Int, pool: Int, name: String, maxBatch: Int) {
        (self.height, self.width, self.channels, self.pool, self.name) = (height, width, channels, pool, name)
        let count = maxBatch * (height / pool) * (width / pool) * channels
        output = .allocate(capacity: count)
        argmax = .allocate(capacity: count)
    }

    deinit {
        output.deallocate()
        argmax.deallocate()
    }

    func forward(_ input: UnsafePointer<Float>, batch: Int) {
        dpk_max_pool(kernels, input, output, argmax, Int32(batch), Int32(height), Int32(width), Int32(channels), Int32(pool))
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let gradInput else { return }
        dpk_max_pool_backward(kernels, gradOutput, argmax, gradInput, Int32(batch), Int32(height), Int32(width), Int32(channels), Int32(pool))
    }
}

final class DenseLayer: Layer {
    let name: String
    let inputs, units: Int
    let relu: Bool
    let kernel, bias, kernelGrad, biasGrad: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { units }

    init(inputs: Int, units: Int, relu: Bool, name: String, weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) {
        (self.inputs, self.units, self.relu, self.name) = (inputs, units, relu, name)
        kernel = weights
        bias = weights + inputs * units
        kernelGrad = grads
        biasGrad = grads + inputs * units
        output = .allocate(capacity: maxBatch * units)
    }

    deinit { output.deallocate() }

    func forward(_ input: UnsafePointer<Float>, batch: Int) {
        Kernels.gemm(m: batch, n: units, k: inputs, input, kernel, output)
        Kernels.addBias(output, rows: batch, bias, columns: units, relu: relu)
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        if relu { Kernels.reluBackward(gradOutput, output: output, count: batch * units) }
        Kernels.gemm(transA: true, m: inputs, n: units, k: batch, input, gradOutput, kernelGrad)
        Kernels.columnSums(gradOutput, rows: batch, columns: units, into: biasGrad)
        guard let gradInput else { return }
        Kernels.gemm(transB: true, m: batch, n: inputs, k: units, gradOutput, kernel, gradInput)
    }
}
