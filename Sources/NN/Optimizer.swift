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

/// Keras's SGD: `v = momentum·v − lr·g; w += v`, which is `w −= lr·g` when momentum is 0 (the
/// tutorial's setting, with no state).
public final class SGD: Optimizer {
    public let momentum: Float
    public var iterations = 0
    private let buffers = StateBuffers()
    private let velocity: UnsafeMutableBufferPointer<Float>?

    public init(momentum: Float = 0, parameterCount: Int) {
        self.momentum = momentum
        velocity = momentum == 0 ? nil : buffers.make("velocity", count: parameterCount)
    }

    public var kind: String { "sgd" }
    public var settings: [String: String] { ["momentum": "\(momentum)"] }
    public var state: [OptimizerState] { buffers.all }

    public func update(_ w: UnsafeMutableBufferPointer<Float>, gradients g: UnsafeBufferPointer<Float>, learningRate lr: Float) {
        iterations += 1
        guard let v = velocity else {
            for i in 0..<w.count { w[i] -= lr * g[i] }
            return
        }
        let m = momentum
        for i in 0..<w.count {
            v[i] = m * v[i] - lr * g[i]
            w[i] += v[i]
        }
    }
}
