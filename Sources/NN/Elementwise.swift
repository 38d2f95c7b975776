import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// Keras's Activation and ReLU layers (softmax only ends a network: the loss takes it).
final class ActivationLayer: Layer {
    let name: String
    let function: ModelGraph.Activation
    let count: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { count }

    init(name: String, function: ModelGraph.Activation, count: Int, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        precondition(function != .softmax, "softmax is the loss's")
        (self.name, self.function, self.count, self.input, self.gradInput) = (name, function, count, input, gradInput)
        output = .tensor(capacity: maxBatch * count)
    }

    deinit { output.deallocate() }

    func forward(batch: Int, pass: Pass) {
        let n = batch * count
        switch function {
        case .linear, .softmax: output.update(from: input, count: n)
        case .relu: Kernels.relu(input, into: output, count: n)
        case .sigmoid: for i in 0..<n { output[i] = 1 / (1 + expf(-input[i])) }
        case .tanh: for i in 0..<n { output[i] = tanhf(input[i]) }
        // Keras's exact gelu (approximate=False), as JAX writes it: x·erfc(−x/√2)/2.
        case .gelu: for i in 0..<n { output[i] = input[i] * erfcf(-input[i] * 0.70710678118654752) / 2 }
        }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        let n = batch * count
        let g = gradOutput
        switch function {
        case .linear, .softmax: gradInput.update(from: g, count: n)
        case .relu:
            // relu(x) > 0 exactly where x > 0: mask the gradient in place, then hand it on.
            Kernels.reluBackward(g, output: output, count: n)
            gradInput.update(from: g, count: n)
        case .sigmoid: for i in 0..<n { let y = output[i]; gradInput[i] = g[i] * y * (1 - y) }
        case .tanh: for i in 0..<n { let y = output[i]; gradInput[i] = g[i] * (1 - y * y) }
        case .gelu:
            for i in 0..<n {
                let x = input[i]
                let cdf = erfcf(-x * 0.70710678118654752) / 2
                gradInput[i] = g[i] * (cdf + x * expf(-x * x / 2) * 0.39894228040143268)
            }
        }
    }
}

/// Keras's Rescaling: x·scale + offset (e.g. 1/255 for a model that takes raw pixels).
final class RescalingLayer: Layer {
    let name: String
    let scale, offset: Float
    let count: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { count }

    init(name: String, scale: Double, offset: Double, count: Int, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.scale, self.offset, self.count, self.input, self.gradInput) = (name, Float(scale), Float(offset), count, input, gradInput)
        output = .tensor(capacity: maxBatch * count)
    }

    deinit { output.deallocate() }

    func forward(batch: Int, pass: Pass) {
        for i in 0..<batch * count { output[i] = input[i] * scale + offset }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        for i in 0..<batch * count { gradInput[i] = gradOutput[i] * scale }
    }
}

/// Flatten: NHWC memory is already in Keras's (H, W, C) order, so a copy.
final class FlattenLayer: Layer {
    let name: String
    let count: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { count }

    init(name: String, count: Int, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.count, self.input, self.gradInput) = (name, count, input, gradInput)
        output = .tensor(capacity: maxBatch * count)
    }

    deinit { output.deallocate() }

    func forward(batch: Int, pass: Pass) { output.update(from: input, count: batch * count) }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        gradInput?.update(from: gradOutput, count: batch * count)
    }
}

/// Keras's Add: the elementwise sum of two or more inputs of one shape (residual blocks).
final class AddLayer: Layer {
    let name: String
    let count: Int
    let inputs: [UnsafePointer<Float>]
    let gradInputs: [UnsafeMutablePointer<Float>?]
    let output: UnsafeMutablePointer<Float>
    var outputCount: Int { count }

    init(name: String, count: Int, inputs: [UnsafePointer<Float>], gradInputs: [UnsafeMutablePointer<Float>?], maxBatch: Int) {
        (self.name, self.count, self.inputs, self.gradInputs) = (name, count, inputs, gradInputs)
        output = .tensor(capacity: maxBatch * count)
    }

    deinit { output.deallocate() }

    func forward(batch: Int, pass: Pass) {
        let n = batch * count
        output.update(from: inputs[0], count: n)
        for other in inputs.dropFirst() { for i in 0..<n { output[i] += other[i] } }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        for gradInput in gradInputs { gradInput?.update(from: gradOutput, count: batch * count) }
    }
}

/// Keras's Dropout: in training each value is kept with probability 1 − rate and divided by it
/// (inverted dropout, Keras's `x / keep_prob`); at inference a copy. The mask comes from the
/// counter-based generator, keyed by the example's place in the global batch.
final class DropoutLayer: Layer {
    let name: String
    let rate: Float
    let count: Int
    let layerIndex: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    private let kept: UnsafeMutablePointer<Bool>
    private var training = false
    var outputCount: Int { count }

    init(name: String, rate: Double, count: Int, layerIndex: Int, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.rate, self.count, self.layerIndex, self.input, self.gradInput) = (name, Float(rate), count, layerIndex, input, gradInput)
        output = .tensor(capacity: maxBatch * count)
        kept = .tensor(capacity: maxBatch * count)
    }

    deinit {
        output.deallocate()
        kept.deallocate()
    }

    func forward(batch: Int, pass: Pass) {
        training = pass.training && rate > 0
        guard training else {
            output.update(from: input, count: batch * count)
            return
        }
        let keepProbability = 1 - rate
        for b in 0..<batch {
            let random = CounterRandom(seed: pass.seed, layer: layerIndex, step: pass.step, example: pass.firstExample + b)
            // Draw i is random.unit(i), in C so that it vectorises.
            dpk_dropout(random.key, count, keepProbability, input + b * count, output + b * count, kept + b * count)
        }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        guard training else {
            gradInput.update(from: gradOutput, count: batch * count)
            return
        }
        let keepProbability = 1 - rate
        dpk_dropout_backward(kept, batch * count, keepProbability, gradOutput, gradInput)
    }
}
