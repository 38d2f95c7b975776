import Foundation

/// Keras's Adam and AdamW (`keras.optimizers.Adam`, `keras.optimizers.AdamW`), which share one
/// rule and differ only in the default weight decay (AdamW: 0.004, Adam: none). At step t
/// (1 for the first update):
///
///     w −= w·weightDecay·lr                        (Keras's decoupled decay, first)
///     α  = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)
///     m += (g − m)·(1 − β₁)
///     v += (g² − v)·(1 − β₂)
///     w −= m·α / (√v + ε)
///
/// Keras folds the bias correction into the step size α and adds ε (default 1e-7) to √v, where
/// PyTorch divides by √v̂ + 1e-8 with v̂ = v/(1 − β₂ᵗ): where √v is near ε (gradients around
/// 1e-6) the two differ by percents, so this follows Keras exactly, order of operations included
/// (the fixture test checks every step). No AMSGrad. State: `m` and `v` (Keras's `momentum` and
/// `velocity`), one value per parameter each.
///
/// The hyperparameters are `Double` because Keras computes `1 − β` in double precision before
/// rounding it to float32, while β itself is rounded first for the powers; doing the same keeps
/// the last bits equal.
public final class Adam: Optimizer {
    public let kind: String
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    public var iterations = 0
    private let buffers = StateBuffers()
    private let m: UnsafeMutableBufferPointer<Float>
    private let v: UnsafeMutableBufferPointer<Float>

    /// `kind` is "adam" or "adamw"; it names the rule in checkpoints and changes nothing else.
    public init(kind: OptimizerKind = .adam, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-7,
                weightDecay: Double = 0, parameterCount: Int) {
        precondition(kind == .adam || kind == .adamw, "Adam implements adam and adamw, not \(kind)")
        self.kind = kind.rawValue
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        m = buffers.make("m", count: parameterCount)
        v = buffers.make("v", count: parameterCount)
    }

    /// Under Keras's `get_config()` names.
    public var settings: [String: String] {
        ["beta_1": "\(beta1)", "beta_2": "\(beta2)", "epsilon": "\(epsilon)", "weight_decay": "\(weightDecay)"]
    }
    public var state: [OptimizerState] { buffers.all }

    public func update(_ w: UnsafeMutableBufferPointer<Float>, gradients g: UnsafeBufferPointer<Float>, learningRate lr: Float) {
        // Raw pointers below: the sizes must agree.
        let count = self.m.count
        precondition(w.count == count && g.count == count, "Adam: \(w.count) parameters and \(g.count) gradients for \(count)")
        iterations += 1
        applyWeightDecay(w, weightDecay: Float(weightDecay), learningRate: lr)
        let t = Float(iterations)
        let beta1Power = powf(Float(beta1), t), beta2Power = powf(Float(beta2), t)
        let alpha = lr * (1 - beta2Power).squareRoot() / (1 - beta1Power)
        let c1 = Float(1 - beta1), c2 = Float(1 - beta2), eps = Float(epsilon)
        guard count > 0, let w = w.baseAddress, let g = g.baseAddress, let m = self.m.baseAddress, let v = self.v.baseAddress else { return }
        for i in stride(from: 0, to: count, by: Lanes.scalarCount) {
            let n = min(Lanes.scalarCount, count - i)
            let gi = loadLanes(g + i, n)
            var mi = loadLanes(m + i, n), vi = loadLanes(v + i, n)
            mi += (gi - mi) * c1
            vi += (gi * gi - vi) * c2
            storeLanes(loadLanes(w + i, n) - mi * alpha / (laneSquareRoot(vi) + eps), w + i, n)
            storeLanes(mi, m + i, n)
            storeLanes(vi, v + i, n)
        }
    }
}
