/// An update rule over the network's flat parameter buffer. Its state is a list of named
/// buffers, each one value per parameter (e.g. SGD's `velocity`, Adam's `m` and `v`), so
/// checkpoints save it by name and rank 0 broadcasts it without knowing the optimizer, as
/// Horovod's broadcast of optimizer state walks the optimizer's named state.
public protocol Optimizer: AnyObject {
    /// Keras's name for the rule: "sgd", "adam", ...
    var kind: String { get }
    /// The hyperparameters that shape the update besides the learning rate, as text, for the
    /// checkpoint check and summary.json (e.g. ["momentum": "0.9", "nesterov": "false"]).
    var settings: [String: String] { get }
    /// Named state buffers, in a fixed order; empty for a stateless rule.
    var state: [OptimizerState] { get }
    /// Updates applied so far (Keras's `iterations`); rules with bias correction use it.
    var iterations: Int { get set }
    /// One update: `parameters -= f(gradients, state)` with this step's learning rate.
    func update(_ parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>, learningRate: Float)
}

/// One named state buffer of an optimizer, one value per parameter.
public struct OptimizerState {
    public let name: String
    public let values: UnsafeMutableBufferPointer<Float>
}

/// Allocates zeroed state buffers that live as long as their optimizer.
final class StateBuffers {
    private(set) var all: [OptimizerState] = []

    func make(_ name: String, count: Int) -> UnsafeMutableBufferPointer<Float> {
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        values.initialize(repeating: 0)
        all.append(OptimizerState(name: name, values: values))
        return values
    }

    deinit { all.forEach { $0.values.deallocate() } }
}

/// Keras's decoupled weight decay, which Keras 3 applies in every optimizer (its base class,
/// `_apply_weight_decay`) before the update rule: `w −= w·wd·lr`, to every parameter (Keras
/// excludes none by default, biases included), with this step's learning rate. Written as its
/// own pass, in Keras's order of operations, so the fixtures match to the last bits; one extra
/// read and write of the parameters, and only when the decay is nonzero.
@inline(__always)
func applyWeightDecay(_ w: UnsafeMutableBufferPointer<Float>, weightDecay: Float, learningRate lr: Float) {
    guard weightDecay != 0 else { return }
    for i in 0..<w.count { w[i] -= w[i] * weightDecay * lr }
}

/// Keras's SGD (`keras.optimizers.SGD`):
///
///     v = momentum·v − lr·g;  w += v                    (momentum > 0)
///     v = momentum·v − lr·g;  w += momentum·v − lr·g    (momentum > 0, nesterov)
///     w −= lr·g                                         (momentum 0: the tutorial's setting, no state)
///
/// after Keras's `w −= w·weightDecay·lr` when `weightDecay` is nonzero. State: `velocity`
/// (Keras calls it `momentum`), only when momentum is nonzero, as in Keras; the name predates
/// the other optimizers and is what checkpoints already hold. `nesterov` without momentum is
/// plain SGD, as in Keras.
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var iterations = 0
    private let buffers = StateBuffers()
    private let velocity: UnsafeMutableBufferPointer<Float>?

    public init(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0, parameterCount: Int) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        velocity = momentum == 0 ? nil : buffers.make("velocity", count: parameterCount)
    }

    public var kind: String { "sgd" }
    /// Under Keras's `get_config()` names.
    public var settings: [String: String] {
        ["momentum": "\(momentum)", "nesterov": "\(nesterov)", "weight_decay": "\(weightDecay)"]
    }
    public var state: [OptimizerState] { buffers.all }

    public func update(_ w: UnsafeMutableBufferPointer<Float>, gradients g: UnsafeBufferPointer<Float>, learningRate lr: Float) {
        iterations += 1
        applyWeightDecay(w, weightDecay: weightDecay, learningRate: lr)
        guard let v = velocity else {
            for i in 0..<w.count { w[i] -= lr * g[i] }
            return
        }
        let m = momentum
        if nesterov {
            for i in 0..<w.count {
                v[i] = m * v[i] - lr * g[i]
                w[i] += m * v[i] - lr * g[i]
            }
        } else {
            for i in 0..<w.count {
                v[i] = m * v[i] - lr * g[i]
                w[i] += v[i]
            }
        }
    }
}
