import CKernels

/// Buffers of one layer, sized once for the largest batch so the training loop never allocates.
protocol Layer: AnyObject {
    var output: UnsafeMutablePointer<Float> { get }
    var outputCount: Int { get }  // per example
    func forward(_ input: UnsafePointer<Float>, batch: Int)
    /// Reads (and may overwrite) `gradOutput`; writes `gradInput` when it is not nil.
    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int)
}

/// Convolution + bias + ReLU. The CKernels path reads NHWC directly (through a zero-bordered copy
/// when padded); im2col + OpenBLAS remains for filter counts the vector width does not divide.
final class Conv2DLayer: Layer {
    let g: ConvGeometry
    let kernel, bias, kernelGrad, biasGrad: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { g.outHeight * g.outWidth * g.filters }
    /// The input as the kernels see it: [batch, padded height, padded width, channels].
    private var direct: dpk_conv
    private let kernels: OpaquePointer?
    private let fast, fastInput: Bool
    /// The padded input (and, after the weight gradient, the padded input gradient); nil unpadded.
    private let padded: UnsafeMutablePointer<Float>?
    /// Column matrix for im2col + GEMM; nil when the kernels take every pass.
    private let cols: UnsafeMutablePointer<Float>?
    /// The kernel transposed per row, for the input gradient.
    private let transposed: UnsafeMutablePointer<Float>

    init(_ g: ConvGeometry, weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) {
        self.g = g
        kernel = weights
        bias = weights + g.patchSize * g.filters
        kernelGrad = grads
        biasGrad = grads + g.patchSize * g.filters
        output = .allocate(capacity: maxBatch * g.outHeight * g.outWidth * g.filters)
        // Rows and columns the windows reach; 'valid' may leave some of the input unread.
        let reachHeight = (g.outHeight - 1) * g.stride + g.kernel, reachWidth = (g.outWidth - 1) * g.stride + g.kernel
        let pads = g.padTop > 0 || g.padLeft > 0 || reachHeight > g.inHeight || reachWidth > g.inWidth
        direct = dpk_conv(in_h: Int32(pads ? reachHeight : g.inHeight), in_w: Int32(pads ? reachWidth : g.inWidth),
                          in_c: Int32(g.inChannels), kernel: Int32(g.kernel), stride: Int32(g.stride), filters: Int32(g.filters),
                          out_h: Int32(g.outHeight), out_w: Int32(g.outWidth))
        kernels = Kernels.path.kernels
        fast = kernels != nil && dpk_conv_supports(kernels, &direct, Int32(DPK_FORWARD)) != 0
        fastInput = fast && dpk_conv_supports(kernels, &direct, Int32(DPK_BACKWARD_INPUT)) != 0
        padded = fast && pads ? .allocate(capacity: maxBatch * reachHeight * reachWidth * g.inChannels) : nil
        cols = fastInput ? nil : .allocate(capacity: maxBatch * g.outHeight * g.outWidth * g.patchSize)
        transposed = .allocate(capacity: g.patchSize * g.filters)
    }

    deinit {
        output.deallocate()
        padded?.deallocate()
        cols?.deallocate()
        transposed.deallocate()
    }

    func forward(_ input: UnsafePointer<Float>, batch: Int) {
        guard fast else {
            let rows = batch * g.outHeight * g.outWidth
            Kernels.im2col(input, cols!, batch: batch, g)
            Kernels.gemm(m: rows, n: g.filters, k: g.patchSize, cols!, kernel, output)
            Kernels.addBias(output, rows: rows, bias, columns: g.filters, relu: true)
            return
        }
        dpk_conv_forward(kernels, &direct, directInput(input, batch: batch), kernel, bias, output, Int32(batch))
    }

    /// The input the kernels read: the caller's, or its zero-bordered copy.
    private func directInput(_ input: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        guard let padded else { return input }
        dpk_pad(input, Int32(batch), Int32(g.inHeight), Int32(g.inWidth), Int32(g.inChannels),
                padded, direct.in_h, direct.in_w, Int32(g.padTop), Int32(g.padLeft))
        return UnsafePointer(padded)
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        let rows = batch * g.outHeight * g.outWidth
        guard fast else {
            Kernels.reluBackward(gradOutput, output: output, count: rows * g.filters)
            Kernels.gemm(transA: true, m: g.patchSize, n: g.filters, k: rows, cols!, gradOutput, kernelGrad)
            Kernels.columnSums(gradOutput, rows: rows, columns: g.filters, into: biasGrad)
            guard let gradInput else { return }
            // The columns are no longer needed: their buffer takes the column gradients.
            Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols!)
            Kernels.col2im(cols!, gradInput, batch: batch, g)
            return
        }
        dpk_relu_backward_bias(kernels, gradOutput, output, Int32(rows), Int32(g.filters), biasGrad)
        // The forward pass left the padded input in `padded`.
        dpk_conv_backward_weights(kernels, &direct, padded.map { UnsafePointer($0) } ?? input, gradOutput, kernelGrad, Int32(batch))
        guard let gradInput else { return }
        guard fastInput else {
            Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols!)
            Kernels.col2im(cols!, gradInput, batch: batch, g)
            return
        }
        guard let padded else {
            return dpk_conv_backward_input(kernels, &direct, gradOutput, kernel, transposed, gradInput, Int32(batch))
        }
        // The padded input is spent: its buffer takes the padded gradient, whose interior is the answer.
        dpk_conv_backward_input(kernels, &direct, gradOutput, kernel, transposed, padded, Int32(batch))
        dpk_crop(padded, Int32(batch), direct.in_h, direct.in_w, Int32(g.padTop), Int32(g.padLeft),
                 gradInput, Int32(g.inHeight), Int32(g.inWidth), Int32(g.inChannels))
    }
}

final class MaxPoolLayer: Layer {
    let height, width, channels, pool: Int
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>
    /// The im2col path pools with the portable kernels.
    private let kernels = Kernels.path.kernels ?? dpk_path_named("portable")
    var outputCount: Int { (height / pool) * (width / pool) * channels }

    init(height: Int, width: Int, channels: Int, pool: Int, maxBatch: Int) {
        (self.height, self.width, self.channels, self.pool) = (height, width, channels, pool)
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
    let inputs, units: Int
    let relu: Bool
    let kernel, bias, kernelGrad, biasGrad: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { units }

    init(inputs: Int, units: Int, relu: Bool, weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) {
        (self.inputs, self.units, self.relu) = (inputs, units, relu)
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
