import Foundation
import NN

/// The learning rate of every optimizer step: a base rate, one of Keras's schedules, and an
/// optional linear warm-up. A pure value: the rate of step `s` (0-based global step, Keras's
/// `optimizer.iterations` before the update) depends on nothing else, so a resumed run, a run on
/// other ranks and the metrics all see the same rate for the same step.
///
/// Schedules, on the global step s, with E = s / stepsPerEpoch (integer epoch) and
/// T = epochs·stepsPerEpoch:
/// - `constant`: base.
/// - `step`: base·factorⁿ, n = the number of `stepEpochs` ≤ E: the rate drops from the first
///   step of each listed epoch, as in Goyal et al. (×0.1 at epochs 30, 60, 80 of 90) and Keras's
///   `PiecewiseConstantDecay(boundaries: [e·stepsPerEpoch − 1 …], values: [base, base·factor, …])`
///   (Keras keeps the earlier value at step == boundary). Defaults: factor 0.1 at epochs ⌊E/2⌋
///   and ⌊3E/4⌋ of E epochs (epochs 2 and 3 of 5), a common image-classification recipe.
/// - `cosine`: Keras's `CosineDecay(base, decay_steps: T, alpha)`:
///   base·((1 − α)·½(1 + cos(π·min(s, T)/T)) + α). Default α = 0 (Keras's): to zero at the end.
/// - `exponential`: Keras's `ExponentialDecay(base, decay_steps: stepsPerEpoch, decay_rate: r)`,
///   not staircase: base·r^(s/stepsPerEpoch), a smooth decay by r per epoch. Default r = 0.9 per
///   epoch (0.59·base after 5 epochs).
///
/// Warm-up over N = round(warmupEpochs·stepsPerEpoch) steps multiplies the schedule by (s+1)/N
/// for s < N: the first step runs at 1/N of the rate, each step adds 1/N, and step N − 1 runs at
/// the full scheduled rate, so the rate is continuous where warm-up ends. This is Goyal et al.'s
/// gradual warm-up (a constant increment per step, reaching the target after a few epochs),
/// started near zero (1/N) rather than at the single-worker rate, so the same rule serves
/// `--lr-scaling none`; it is Keras's linear warm-up (`CosineDecay(warmup_target:)`) from
/// base/N over N − 1 steps. The schedules stay on the global step (not restarted after the
/// warm-up), so `stepEpochs` count the warm-up epochs, as in Goyal et al.
///
/// Rates are computed in double precision and rounded to Float once.
public struct Schedule: Codable, Equatable, Sendable {
    /// `--lr-schedule`. The command line adds `ExpressibleByArgument`.
    public enum Kind: String, CaseIterable, Codable, Sendable {
        case constant, step, cosine, exponential
    }

    public var kind: Kind
    /// The rate after warm-up and before any decay, already scaled for the batch (see
    /// `LearningRateScaling`). `--lr`.
    public var baseRate: Float
    public var stepsPerEpoch: Int
    public var epochs: Int
    /// `--warmup-epochs`; fractions allowed (0.5 = half an epoch of steps). 0: no warm-up.
    public var warmupEpochs: Double = 0
    /// `step`: the factor applied at each of `stepEpochs`. `--lr-step-factor`, default 0.1.
    public var stepFactor = 0.1
    /// `step`: the 0-based epochs from whose first step the rate is multiplied by `stepFactor`,
    /// increasing. `--lr-step-epochs`, default `Schedule.defaultStepEpochs(epochs:)`.
    public var stepEpochs: [Int]
    /// `exponential`: the factor per epoch. `--lr-decay-rate`, default 0.9.
    public var decayRate = 0.9
    /// `cosine`: the final rate as a fraction of the base (Keras's `alpha`). `--lr-alpha`, default 0.
    public var cosineAlpha = 0.0

    /// A schedule with the defaults above; set other fields before `validate()`.
    public init(kind: Kind, baseRate: Float, stepsPerEpoch: Int, epochs: Int, warmupEpochs: Double = 0) {
        self.kind = kind
        self.baseRate = baseRate
        self.stepsPerEpoch = stepsPerEpoch
        self.epochs = epochs
        self.warmupEpochs = warmupEpochs
        stepEpochs = Self.defaultStepEpochs(epochs: epochs)
    }

    /// ⌊E/2⌋ and ⌊3E/4⌋ without zeros or repeats: [2, 3] for 5 epochs, [45, 67] for 90, none for 1.
    public static func defaultStepEpochs(epochs: Int) -> [Int] {
        var result: [Int] = []
        for e in [epochs / 2, epochs * 3 / 4] where e > 0 && !result.contains(e) { result.append(e) }
        return result
    }

    /// Global steps of warm-up: warmupEpochs·stepsPerEpoch, rounded.
    public var warmupSteps: Int { Int((warmupEpochs * Double(stepsPerEpoch)).rounded()) }
    /// Global steps of the whole run, over which `cosine` decays.
    public var totalSteps: Int { epochs * stepsPerEpoch }

    /// Throws the first bad field, named by its flag.
    public func validate() throws {
        func check(_ flag: String, _ ok: Bool, _ what: String, _ value: CustomStringConvertible) throws {
            guard ok else { throw InvalidSetting(flag, "must be \(what), got \(value)") }
        }
        try check("--lr", baseRate.isFinite && baseRate > 0, "positive", baseRate)
        try check("--epochs", epochs >= 1, "at least 1", epochs)
        guard stepsPerEpoch >= 1 else { throw InvalidSetting("--batch-size", "leaves no step in an epoch (\(stepsPerEpoch) steps per epoch)") }
        try check("--warmup-epochs", warmupEpochs.isFinite && warmupEpochs >= 0 && warmupEpochs <= Double(epochs),
                  "in [0, --epochs] = [0, \(epochs)]", warmupEpochs)
        switch kind {
        case .constant: break
        case .step:
            try check("--lr-step-factor", stepFactor.isFinite && stepFactor > 0 && stepFactor <= 1, "in (0, 1]", stepFactor)
            try check("--lr-step-epochs", zip(stepEpochs, stepEpochs.dropFirst()).allSatisfy { $0 < $1 },
                      "increasing", stepEpochs.map(String.init).joined(separator: ","))
            try check("--lr-step-epochs", stepEpochs.allSatisfy { $0 >= 1 }, "at least 1 each",
                      stepEpochs.map(String.init).joined(separator: ","))
        case .cosine:
            try check("--lr-alpha", cosineAlpha.isFinite && (0...1).contains(cosineAlpha), "in [0, 1]", cosineAlpha)
        case .exponential:
            try check("--lr-decay-rate", decayRate.isFinite && decayRate > 0 && decayRate <= 1, "in (0, 1]", decayRate)
        }
    }

    /// The rate for global step `step` (0 for the first update of the run).
    public func learningRate(atStep step: Int) -> Float {
        let base = Double(baseRate), s = Double(step)
        var rate: Double
        switch kind {
        case .constant:
            rate = base
        case .step:
            let epoch = step / stepsPerEpoch
            rate = base * pow(stepFactor, Double(stepEpochs.filter { $0 <= epoch }.count))
        case .cosine:
            let t = Double(totalSteps), fraction = min(s, t) / t
            rate = base * ((1 - cosineAlpha) * 0.5 * (1 + cos(Double.pi * fraction)) + cosineAlpha)
        case .exponential:
            rate = base * pow(decayRate, s / Double(stepsPerEpoch))
        }
        let n = warmupSteps
        if step < n { rate *= Double(step + 1) / Double(n) }
        return Float(rate)
    }
}

/// How the base learning rate follows the global batch when it grows past a reference batch
/// (weak scaling: a fixed per-rank batch B on R ranks gives a global batch B·R, reference B,
/// so k = R). With k = global batch / reference batch:
/// - `linear`: base·k (Goyal et al.'s linear scaling rule; Horovod's `lr × size`), best with
///   a few epochs of warm-up;
/// - `sqrt`: base·√k (Krizhevsky's rule, keeps the update's variance; often used with Adam);
/// - `none`: base.
public enum LearningRateScaling: String, CaseIterable, Codable, Sendable {
    case linear, sqrt, none

    /// The factor for a global batch over a reference batch.
    public func factor(globalBatch: Int, referenceBatch: Int) -> Double {
        let k = Double(globalBatch) / Double(referenceBatch)
        switch self {
        case .linear: return k
        case .sqrt: return k.squareRoot()
        case .none: return 1
        }
    }

    /// The base rate for `globalBatch` given the rate tuned for `referenceBatch`.
    public func scaled(_ rate: Float, globalBatch: Int, referenceBatch: Int) -> Float {
        Float(Double(rate) * factor(globalBatch: globalBatch, referenceBatch: referenceBatch))
    }

    /// Weak scaling: the base rate on `ranks` ranks with a fixed per-rank batch.
    public func scaled(_ rate: Float, ranks: Int) -> Float {
        scaled(rate, globalBatch: ranks, referenceBatch: 1)
    }
}
