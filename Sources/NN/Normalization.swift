import CKernels

/// Keras's BatchNormalization over the last axis. In training it normalises with the statistics
/// of the examples it is given — under the exact reduction one micro-shard, so they are the same
/// at any rank count (ghost batch normalisation) — and writes those statistics, weighted by the
/// shard's share of the global batch, into the gradient slots of moving_mean and
/// moving_variance; the reduction sums them like gradients and `Network.updateStatistics` moves
/// the averages as Keras does. At inference it uses the moving statistics.
final class BatchNormLayer: Layer {
    let name: String
    let channels, pixels: Int
    let epsilon: Float
    /// A ReLU after it, joined by the fusion pass: applied on the store, masked before the backward.
    let relu: Bool
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let gamma, beta, gammaGrad, betaGrad: UnsafeMutablePointer<Float>
    let movingMean, movingVariance, meanSlot, varianceSlot: UnsafeMutablePointer<Float>
    /// The batch's mean and 1/√(var + ε), per channel, for the backward pass.
    private let mean, inverse: UnsafeMutablePointer<Float>
    /// γ/σ and β − μ·γ/σ: the per-channel affine map the forward pass applies.
    private let scale, shift: UnsafeMutablePointer<Float>
    /// Per-channel sums in double precision, two per pass, allocated once: the step never allocates.
    private let sums, squares: UnsafeMutablePointer<Double>
    private let owned: UnsafeMutablePointer<Float>
    var outputCount: Int { channels * pixels }

    struct Variables {
        var gamma, beta: (value: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>)?
        var movingMean, movingVariance: (value: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>)
    }

    init(name: String, shape: [Int], epsilon: Double, relu: Bool, variables v: Variables, input: UnsafePointer<Float>,
         gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.input, self.gradInput, self.epsilon, self.relu) = (name, input, gradInput, Float(epsilon), relu)
        channels = shape.last!
        pixels = shape.dropLast().reduce(1, *)
        output = .tensor(capacity: maxBatch * channels * pixels)
        // mean, inverse, and ones, zeros and two scratch gradients for a missing gamma or beta; scale and shift.
        owned = .tensor(capacity: 8 * channels)
        owned.initialize(repeating: 0, count: 8 * channels)
        (mean, inverse) = (owned, owned + channels)
        (scale, shift) = (owned + 6 * channels, owned + 7 * channels)
        sums = .tensor(capacity: 2 * channels)
        squares = sums + channels
        let ones = owned + 2 * channels
        ones.update(repeating: 1, count: channels)
        gamma = v.gamma?.value ?? ones
        gammaGrad = v.gamma?.grad ?? owned + 4 * channels
        beta = v.beta?.value ?? owned + 3 * channels
        betaGrad = v.beta?.grad ?? owned + 5 * channels
        (movingMean, meanSlot) = v.movingMean
        (movingVariance, varianceSlot) = v.movingVariance
    }

    deinit {
        output.deallocate()
        owned.deallocate()
        sums.deallocate()
    }

    func forward(batch: Int, pass: Pass) {
        let n = batch * pixels
        if pass.training {
            sums.update(repeating: 0, count: 2 * channels)
            dpk_channel_sums(input, n, Int32(channels), sums)
            for c in 0..<channels { sums[c] /= Double(n) }
            dpk_channel_squares(input, n, Int32(channels), sums, squares)
            let weight = Float(batch) * pass.gradientScale
            for c in 0..<channels {
                let variance = Float(squares[c] / Double(n))
                mean[c] = Float(sums[c])
                inverse[c] = 1 / (variance + epsilon).squareRoot()
                meanSlot[c] = mean[c] * weight
                varianceSlot[c] = variance * weight
            }
        } else {
            for c in 0..<channels {
                mean[c] = movingMean[c]
                inverse[c] = 1 / (movingVariance[c] + epsilon).squareRoot()
            }
        }
        // As Keras's JAX backend writes it: x·(γ/σ) + (β − μ·γ/σ).
        for c in 0..<channels {
            scale[c] = inverse[c] * gamma[c]
            shift[c] = beta[c] - mean[c] * scale[c]
        }
        dpk_channel_affine(input, n, Int32(channels), scale, shift, output, relu ? 1 : 0)
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        let n = batch * pixels
        if relu { Kernels.reluBackward(gradOutput, output: output, count: n * channels) }
        let (dBeta, dGamma) = (sums, squares)
        sums.update(repeating: 0, count: 2 * channels)
        dpk_bn_backward_sums(input, gradOutput, n, Int32(channels), mean, inverse, dBeta, dGamma)
        for c in 0..<channels {
            betaGrad[c] = Float(dBeta[c])
            gammaGrad[c] = Float(dGamma[c])
        }
        guard let gradInput else { return }
        // dx = γ/σ · (dy − Σdy/N − x̂ · Σ(dy·x̂)/N), with the batch statistics of the forward pass.
        let (meanDy, meanDyXHat) = (scale, shift)  // free until the next forward pass
        for c in 0..<channels {
            meanDy[c] = Float(dBeta[c] / Double(n))
            meanDyXHat[c] = Float(dGamma[c] / Double(n))
        }
        dpk_bn_input_grad(input, gradOutput, n, Int32(channels), mean, inverse, gamma, meanDy, meanDyXHat, gradInput)
    }
}
