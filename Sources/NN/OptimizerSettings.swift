/// The optimizers dptrain offers, under Keras's lowercase names (`keras.optimizers.get("adamw")`).
/// The command line adds `ExpressibleByArgument`; this module stays free of it.
public enum OptimizerKind: String, CaseIterable, Codable, Sendable {
    case sgd, adam, adamw, rmsprop

    /// Keras's default learning rate for the rule: SGD 0.01, the adaptive ones 0.001.
    public var defaultLearningRate: Float { self == .sgd ? 0.01 : 0.001 }

    /// The command-line flags that shape this rule (the learning rate aside), so the command line
    /// can refuse one that would be silently ignored (`--beta1` with SGD).
    public var flags: [String] {
        switch self {
        case .sgd: return ["--momentum", "--nesterov", "--weight-decay"]
        case .adam, .adamw: return ["--beta1", "--beta2", "--epsilon", "--weight-decay"]
        case .rmsprop: return ["--rho", "--momentum", "--epsilon", "--centered", "--weight-decay"]
        }
    }
}

/// A bad optimizer or schedule setting, named by its command-line flag, so the message reads
/// `--beta1: must be in [0, 1), got 1.5` after the command line's `dptrain: error: `.
public struct InvalidSetting: Error, Equatable, CustomStringConvertible {
    public let flag: String
    public let reason: String

    public init(_ flag: String, _ reason: String) {
        self.flag = flag
        self.reason = reason
    }

    public var description: String { "\(flag): \(reason)" }
}

/// Everything that defines an optimizer besides the learning rate (which the schedule gives per
/// step). Fields that the kind does not use are ignored; `init(kind:)` fills every field with
/// Keras's default for that kind, so the command line overrides only the flags it was given:
///
///     var settings = OptimizerSettings(kind: .adam)
///     if let beta1 { settings.beta1 = beta1 }
///     let optimizer = try settings.make(parameterCount: network.parameterCount)
///
/// Hyperparameters are `Double`, as Keras's are Python floats (see `Adam` for why it matters).
public struct OptimizerSettings: Codable, Equatable, Sendable {
    public var kind: OptimizerKind
    /// SGD and RMSprop. Keras default 0 for both.
    public var momentum: Double = 0
    /// SGD only. Keras default false.
    public var nesterov = false
    /// Adam and AdamW: the first and second moment decay rates. Keras: 0.9 and 0.999.
    public var beta1 = 0.9
    public var beta2 = 0.999
    /// Adam, AdamW and RMSprop. Keras: 1e-7 (added to √v in Adam, under the root in RMSprop).
    public var epsilon = 1e-7
    /// Every kind, as Keras applies `w −= w·wd·lr` in all of them. Keras: 0.004 for AdamW,
    /// none (0) for the others.
    public var weightDecay: Double
    /// RMSprop only: the decay of the mean square. Keras: 0.9.
    public var rho = 0.9
    /// RMSprop only: divide by the variance instead of the mean square. Keras: false.
    public var centered = false

    public init(kind: OptimizerKind) {
        self.kind = kind
        weightDecay = kind == .adamw ? 0.004 : 0
    }

    /// Checks every field the kind uses; the first bad one is thrown, named by its flag.
    public func validate() throws {
        func check(_ flag: String, _ value: Double, _ ok: Bool, _ range: String) throws {
            guard value.isFinite && ok else { throw InvalidSetting(flag, "must be \(range), got \(value)") }
        }
        switch kind {
        case .sgd:
            try check("--momentum", momentum, (0...1).contains(momentum), "in [0, 1]")
        case .adam, .adamw:
            // β = 1 would make the bias correction 1 − βᵗ zero.
            try check("--beta1", beta1, (0..<1).contains(beta1), "in [0, 1)")
            try check("--beta2", beta2, (0..<1).contains(beta2), "in [0, 1)")
            try check("--epsilon", epsilon, epsilon > 0, "positive")
        case .rmsprop:
            try check("--rho", rho, (0..<1).contains(rho), "in [0, 1)")
            try check("--momentum", momentum, (0...1).contains(momentum), "in [0, 1]")
            // ε > 0 keeps 0/√0 (a parameter whose gradient has always been zero) out.
            try check("--epsilon", epsilon, epsilon > 0, "positive")
        }
        try check("--weight-decay", weightDecay, weightDecay >= 0, "at least 0")
    }

    /// A fresh optimizer with zeroed state for `parameterCount` parameters; throws
    /// `InvalidSetting` first if a setting is out of range.
    public func make(parameterCount: Int) throws -> any Optimizer {
        try validate()
        switch kind {
        case .sgd:
            return SGD(momentum: Float(momentum), nesterov: nesterov, weightDecay: Float(weightDecay), parameterCount: parameterCount)
        case .adam, .adamw:
            return Adam(kind: kind, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay, parameterCount: parameterCount)
        case .rmsprop:
            return RMSprop(rho: rho, momentum: momentum, epsilon: epsilon, centered: centered, weightDecay: weightDecay,
                           parameterCount: parameterCount)
        }
    }
}
