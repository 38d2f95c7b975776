/// Keras's SGD: `v = momentum·v − lr·g; w += v`, which is `w −= lr·g` when momentum is 0 (the
/// tutorial's setting, with no state). The velocity is the only optimizer state a checkpoint keeps.
public final class SGD {
    public let learningRate: Float
    public let momentum: Float
    /// One entry per parameter when momentum is used, else empty.
    public var velocity: [Float]

    public init(learningRate: Float, momentum: Float = 0, parameterCount: Int) {
        self.learningRate = learningRate
        self.momentum = momentum
        velocity = momentum == 0 ? [] : [Float](repeating: 0, count: parameterCount)
    }

    public func step(_ network: Network) {
        let w = network.parameters, g = network.gradients
        let lr = learningRate
        if velocity.isEmpty {
            for i in 0..<w.count { w[i] -= lr * g[i] }
            return
        }
        let m = momentum
        velocity.withUnsafeMutableBufferPointer { v in
            for i in 0..<w.count {
                v[i] = m * v[i] - lr * g[i]
                w[i] += v[i]
            }
        }
    }
}
