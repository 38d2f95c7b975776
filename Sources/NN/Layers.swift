/// Buffers of one layer, sized once for the largest batch so the training loop never allocates.
protocol Layer: AnyObject {
    var output: UnsafeMutablePointer<Float> { get }
    var outputCount: Int { get }  // per example
    func forward(_ input: UnsafePointer<Float>, batch: Int)
    /// Reads (and may overwrite) `gradOutput`; writes `gradInput` when it is not nil.
    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int)
}

final class Conv2DLayer: Layer {
    let g: ConvGeometry
    let kernel, bias, kernelGrad, biasGrad: UnsafeMutablePointer<Float>
    let cols: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { g.outHeight * g.outWidth * g.filters }

    init(_ g: ConvGeometry, weights: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, maxBatch: Int) {
        self.g = g
        kernel = weights
        bias = weights + g.patchSize * g.filters
        kernelGrad = grads
        biasGrad = grads + g.patchSize * g.filters
        cols = .allocate(capacity: maxBatch * g.outHeight * g.outWidth * g.patchSize)
        output = .allocate(capacity: maxBatch * g.outHeight * g.outWidth * g.filters)
    }

    deinit {
        cols.deallocate()
        output.deallocate()
    }

    func forward(_ input: UnsafePointer<Float>, batch: Int) {
        let rows = batch * g.outHeight * g.outWidth
        Kernels.im2col(input, cols, batch: batch, g)
        Kernels.gemm(m: rows, n: g.filters, k: g.patchSize, cols, kernel, output)
        Kernels.addBias(output, rows: rows, bias, columns: g.filters, relu: true)
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        let rows = batch * g.outHeight * g.outWidth
        Kernels.reluBackward(gradOutput, output: output, count: rows * g.filters)
        Kernels.gemm(transA: true, m: g.patchSize, n: g.filters, k: rows, cols, gradOutput, kernelGrad)
        Kernels.columnSums(gradOutput, rows: rows, columns: g.filters, into: biasGrad)
        guard let gradInput else { return }
        // The columns are no longer needed: their buffer takes the column gradients.
        Kernels.gemm(transB: true, m: rows, n: g.patchSize, k: g.filters, gradOutput, kernel, cols)
        Kernels.col2im(cols, gradInput, batch: batch, g)
    }
}

final class MaxPoolLayer: Layer {
    let height, width, channels, pool: Int
    let output: UnsafeMutablePointer<Float>
    let argmax: UnsafeMutablePointer<Int32>
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
        Kernels.maxPool(input, output, argmax: argmax, batch: batch, height: height, width: width, channels: channels, pool: pool)
    }

    func backward(_ input: UnsafePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                  gradInput: UnsafeMutablePointer<Float>?, batch: Int) {
        guard let gradInput else { return }
        Kernels.maxPoolBackward(gradOutput, argmax: argmax, outputCount: batch * outputCount,
                                gradInput, inputCount: batch * height * width * channels)
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
