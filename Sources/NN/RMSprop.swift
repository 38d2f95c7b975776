/// Keras's RMSprop (`keras.optimizers.RMSprop`; defaults ρ 0.9, momentum 0, ε 1e-7, not
/// centered):
///
///     w −= w·weightDecay·lr                          (Keras's decoupled decay, first)
///     s  = ρ·s + (1 − ρ)·g²
///     a  = ρ·a + (1 − ρ)·g                           (centered only)
///     Δ  = lr·g / √(s − a² + ε)   or   lr·g / √(s + ε)
///     μ  = momentum·μ + Δ;  w −= μ                   (momentum > 0)
///     w −= Δ                                         (momentum 0)
///
/// Unlike Adam, ε sits inside the square root, as in Keras (and TensorFlow before it). State,
/// each one value per parameter: `mean_square` s (Keras's `velocity`), `momentum` μ only when
/// momentum > 0 and `average_gradient` a only when centered, as Keras allocates them.
///
/// The hyperparameters are `Double` for the reason given at `Adam`: Keras computes `1 − ρ` in
/// double precision.
public final class RMSprop: Optimizer {
    public let rho: Double
    public let momentum: Double
    public let epsilon: Double
    public let centered: Bool
    public let weightDecay: Double
    public var iterations = 0
    private let buffers = StateBuffers()
    private let meanSquare: UnsafeMutableBufferPointer<Float>
    private let momentumBuffer: UnsafeMutableBufferPointer<Float>?
    private let averageGradient: UnsafeMutableBufferPointer<Float>?

    public init(rho: Double = 0.9, momentum: Double = 0, epsilon: Double = 1e-7, centered: Bool = false,
                weightDecay: Double = 0, parameterCount: Int) {
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        self.weightDecay = weightDecay
        meanSquare = buffers.make("mean_square", count: parameterCount)
        momentumBuffer = momentum > 0 ? buffers.make("momentum", count: parameterCount) : nil
        averageGradient = centered ? buffers.make("average_gradient", count: parameterCount) : nil
    }

    public var kind: String { OptimizerKind.rmsprop.rawValue }
    /// Under Keras's `get_config()` names.
    public var settings: [String: String] {
        ["rho": "\(rho)", "momentum": "\(momentum)", "epsilon": "\(epsilon)", "centered": "\(centered)",
         "weight_decay": "\(weightDecay)"]
    }
    public var state: [OptimizerState] { buffers.all }

    public func update(_ w: UnsafeMutableBufferPointer<Float>, gradients g: UnsafeBufferPointer<Float>, learningRate lr: Float) {
        // Raw pointers below: the sizes must agree.
        let count = meanSquare.count
        precondition(w.count == count && g.count == count, "RMSprop: \(w.count) parameters and \(g.count) gradients for \(count)")
        iterations += 1
        applyWeightDecay(w, weightDecay: Float(weightDecay), learningRate: lr)
        let r = Float(rho), c = Float(1 - rho), eps = Float(epsilon), mu = Float(momentum)
        guard count > 0, let w = w.baseAddress, let g = g.baseAddress, let s = meanSquare.baseAddress else { return }
        // One loop per combination, so none branches per parameter.
        switch (averageGradient?.baseAddress, momentumBuffer?.baseAddress) {
        case (nil, nil):
            for i in stride(from: 0, to: count, by: Lanes.scalarCount) {
                let n = min(Lanes.scalarCount, count - i), gi = loadLanes(g + i, n)
                let si = r * loadLanes(s + i, n) + c * (gi * gi)
                storeLanes(loadLanes(w + i, n) - lr * gi / laneSquareRoot(si + eps), w + i, n)
                storeLanes(si, s + i, n)
            }
        case (nil, let p?):
            for i in stride(from: 0, to: count, by: Lanes.scalarCount) {
                let n = min(Lanes.scalarCount, count - i), gi = loadLanes(g + i, n)
                let si = r * loadLanes(s + i, n) + c * (gi * gi)
                let pi = mu * loadLanes(p + i, n) + lr * gi / laneSquareRoot(si + eps)
                storeLanes(loadLanes(w + i, n) - pi, w + i, n)
                storeLanes(si, s + i, n)
                storeLanes(pi, p + i, n)
            }
        case (let a?, nil):
            for i in stride(from: 0, to: count, by: Lanes.scalarCount) {
                let n = min(Lanes.scalarCount, count - i), gi = loadLanes(g + i, n)
                let si = r * loadLanes(s + i, n) + c * (gi * gi)
                let ai = r * loadLanes(a + i, n) + c * gi
                storeLanes(loadLanes(w + i, n) - lr * gi / laneSquareRoot(si - ai * ai + eps), w + i, n)
                storeLanes(si, s + i, n)
                storeLanes(ai, a + i, n)
            }
        case (let a?, let p?):
            for i in stride(from: 0, to: count, by: Lanes.scalarCount) {
                let n = min(Lanes.scalarCount, count - i), gi = loadLanes(g + i, n)
                let si = r * loadLanes(s + i, n) + c * (gi * gi)
                let ai = r * loadLanes(a + i, n) + c * gi
                let pi = mu * loadLanes(p + i, n) + lr * gi / laneSquareRoot(si - ai * ai + eps)
                storeLanes(loadLanes(w + i, n) - pi, w + i, n)
                storeLanes(si, s + i, n)
                storeLanes(ai, a + i, n)
                storeLanes(pi, p + i, n)
            }
        }
    }
}
