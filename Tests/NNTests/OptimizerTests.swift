import ModelFiles
import Foundation
import NN
import Testing
import Training

/// Every update rule against Keras 3 itself: `scripts/make-fixtures` applied Keras's SGD, Adam,
/// AdamW and RMSprop (defaults and other settings, with and without weight decay) to the same
/// 17 weights with 5 steps of gradients whose entries range from 1 down to 1e-8 and 0, at a
/// learning rate that changes every step, and saved the weights and state after each step.
struct OptimizerTests {
    /// The cases the fixture holds (its metadata, one JSON object per case).
    static let cases = [
        "sgd_default", "sgd_momentum", "sgd_nesterov_decay",
        "adam_default", "adam_custom", "adam_decay", "adamw_default", "adamw_custom",
        "rmsprop_default", "rmsprop_momentum", "rmsprop_centered_decay",
    ]

    /// Per entry, |ours − Keras| ≤ 1e-6·|Keras| + 1e-30. Both sides run the same float32
    /// operations in the same order, and on this machine every weight and state value of every
    /// step is bit-identical to Keras's (the test prints the largest difference: 0). The margin
    /// (~16 ulps) is for a libm whose powf or sqrt differs from XLA's by an ulp, or a compiler
    /// that fuses a multiply-add, growing over 5 steps; it stays far below what a wrong rule
    /// gives: Adam with PyTorch's ε = 1e-8 misses by 0.6% of the weights, 6,000× it (tested below).
    static let tolerance: Float = 1e-6

    struct Case: Decodable {
        let kind: String
        let keras: [String: KerasValue]
        let state: [String]
    }

    enum KerasValue: Decodable {
        case number(Double), flag(Bool)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) } else { self = .number(try c.decode(Double.self)) }
        }
        struct WrongType: Error {}
        func number() throws -> Double { if case .number(let x) = self { return x } else { throw WrongType() } }
        func flag() throws -> Bool { if case .flag(let b) = self { return b } else { throw WrongType() } }
    }

    static func fixture() throws -> SafeTensors {
        let url = try #require(Bundle.module.url(forResource: "optimizers", withExtension: "safetensors", subdirectory: "Fixtures"))
        return try SafeTensors(path: url.path)
    }

    /// The settings Keras was given, in dptrain's terms; absent ones keep dptrain's defaults,
    /// which must then be Keras's defaults for the weights to match.
    static func settings(_ c: Case) throws -> OptimizerSettings {
        var s = OptimizerSettings(kind: try #require(OptimizerKind(rawValue: c.kind)))
        for (key, value) in c.keras {
            switch key {
            case "momentum": s.momentum = try value.number()
            case "nesterov": s.nesterov = try value.flag()
            case "beta_1": s.beta1 = try value.number()
            case "beta_2": s.beta2 = try value.number()
            case "epsilon": s.epsilon = try value.number()
            case "weight_decay": s.weightDecay = try value.number()
            case "rho": s.rho = try value.number()
            case "centered": s.centered = try value.flag()
            default: Issue.record("unknown Keras argument \(key)")
            }
        }
        return s
    }

    /// The largest |a − e| / (|e| + 1e-30) over the entries.
    static func relativeError(_ actual: some Collection<Float>, _ expected: ArraySlice<Float>) -> Float {
        zip(actual, expected).map { abs($0 - $1) / (abs($1) + 1e-30) }.max() ?? 0
    }

    /// What replaying a case found: the largest relative errors and the state buffers' names.
    struct Replay {
        let weightError: Float, stateError: Float
        let stateNames: [String], kerasStateNames: [String]
    }

    /// Runs one case through dptrain's optimizer, step by step.
    static func replay(_ name: String, settings: OptimizerSettings? = nil) throws -> Replay {
        let f = try fixture()
        let c = try JSONDecoder().decode(Case.self, from: Data(try #require(f.metadata[name]).utf8))
        let initial = try #require(f["initial"]?.floats), gradients = try #require(f["gradients"]?.floats)
        let rates = try #require(f["\(name)/learning_rate"]?.floats), after = try #require(f["\(name)/weights"]?.floats)
        let n = initial.count, steps = rates.count
        let optimizer = try (settings ?? Self.settings(c)).make(parameterCount: n)
        #expect(optimizer.kind == c.kind)

        var weights = initial
        var worstWeights: Float = 0, worstState: Float = 0
        for k in 0..<steps {
            weights.withUnsafeMutableBufferPointer { w in
                gradients[(k * n)..<((k + 1) * n)].withUnsafeBufferPointer { g in
                    optimizer.update(w, gradients: g, learningRate: rates[k])
                }
            }
            worstWeights = max(worstWeights, relativeError(weights, after[(k * n)..<((k + 1) * n)]))
            for s in optimizer.state {
                let expected = try #require(f["\(name)/state/\(s.name)"]?.floats, "\(name): Keras has no \(s.name)")
                worstState = max(worstState, relativeError(s.values, expected[(k * n)..<((k + 1) * n)]))
            }
        }
        #expect(optimizer.iterations == steps)
        return Replay(weightError: worstWeights, stateError: worstState, stateNames: optimizer.state.map(\.name), kerasStateNames: c.state)
    }

    @Test(arguments: cases)
    func matchesKeras(_ name: String) throws {
        let r = try Self.replay(name)
        // The same buffers as Keras allocates for these settings, under dptrain's names.
        #expect(r.stateNames.sorted() == r.kerasStateNames.sorted(), "\(name): state \(r.stateNames) vs Keras \(r.kerasStateNames)")
        #expect(r.weightError <= Self.tolerance, "\(name): weights differ from Keras by \(r.weightError) relative")
        #expect(r.stateError <= Self.tolerance, "\(name): state differs from Keras by \(r.stateError) relative")
        print("\(name): max relative difference to Keras: weights \(r.weightError), state \(r.stateError)")
    }

    @Test func fixtureHoldsTheListedCases() throws {
        let f = try Self.fixture()
        let inFixture = Set(f.metadata.keys).subtracting(["framework", "shapes", "steps"])
        #expect(inFixture == Set(Self.cases))
    }

    /// The fixture can tell Keras's Adam from a near miss: ε = 1e-8 (PyTorch's value) moves the
    /// weights far beyond the tolerance, because of the 1e-6..1e-8 gradients.
    @Test func fixtureSeesEpsilon() throws {
        var s = OptimizerSettings(kind: .adam)
        s.epsilon = 1e-8
        let r = try Self.replay("adam_default", settings: s)
        #expect(r.weightError > 100 * Self.tolerance)
        print("adam_default with epsilon 1e-8: max relative difference to Keras \(r.weightError)")
    }

    @Test func kerasDefaults() {
        let sgd = OptimizerSettings(kind: .sgd), adam = OptimizerSettings(kind: .adam)
        let adamw = OptimizerSettings(kind: .adamw), rms = OptimizerSettings(kind: .rmsprop)
        #expect(sgd.momentum == 0 && !sgd.nesterov && sgd.weightDecay == 0)
        #expect(adam.beta1 == 0.9 && adam.beta2 == 0.999 && adam.epsilon == 1e-7 && adam.weightDecay == 0)
        #expect(adamw.weightDecay == 0.004 && adamw.beta1 == 0.9 && adamw.beta2 == 0.999 && adamw.epsilon == 1e-7)
        #expect(rms.rho == 0.9 && rms.momentum == 0 && rms.epsilon == 1e-7 && !rms.centered && rms.weightDecay == 0)
        #expect(OptimizerKind.sgd.defaultLearningRate == 0.01)
        #expect([OptimizerKind.adam, .adamw, .rmsprop].allSatisfy { $0.defaultLearningRate == 0.001 })
        #expect(OptimizerKind.allCases.map(\.rawValue) == ["sgd", "adam", "adamw", "rmsprop"])
    }

    @Test func kindsSettingsAndState() throws {
        var momentum = OptimizerSettings(kind: .sgd)
        momentum.momentum = 0.9
        let plain = try OptimizerSettings(kind: .sgd).make(parameterCount: 3)
        #expect(plain.state.isEmpty, "plain SGD keeps no state, as before")
        #expect(try momentum.make(parameterCount: 3).state.map(\.name) == ["velocity"])
        var nesterovAlone = OptimizerSettings(kind: .sgd)
        nesterovAlone.nesterov = true
        #expect(try nesterovAlone.make(parameterCount: 3).state.isEmpty, "Nesterov without momentum is plain SGD, as in Keras")
        #expect(plain.settings == ["momentum": "0.0", "nesterov": "false", "weight_decay": "0.0"])

        let adamw = try OptimizerSettings(kind: .adamw).make(parameterCount: 3)
        #expect(adamw.kind == "adamw" && adamw.state.map(\.name) == ["m", "v"])
        #expect(adamw.settings == ["beta_1": "0.9", "beta_2": "0.999", "epsilon": "1e-07", "weight_decay": "0.004"])

        var rms = OptimizerSettings(kind: .rmsprop)
        rms.momentum = 0.5
        rms.centered = true
        let r = try rms.make(parameterCount: 3)
        #expect(r.kind == "rmsprop" && r.state.map(\.name) == ["mean_square", "momentum", "average_gradient"])
        #expect(r.state.allSatisfy { $0.values.count == 3 && $0.values.allSatisfy { $0 == 0 } })
        #expect(Set(r.settings.keys) == ["rho", "momentum", "epsilon", "centered", "weight_decay"])
    }

    /// One line, naming the flag, for every out-of-range setting the kind uses.
    @Test(arguments: [
        (OptimizerKind.adam, \OptimizerSettings.beta1, 1.5, "--beta1: must be in [0, 1), got 1.5"),
        (.adamw, \OptimizerSettings.beta2, 1.0, "--beta2: must be in [0, 1), got 1.0"),
        (.adam, \OptimizerSettings.epsilon, 0.0, "--epsilon: must be positive, got 0.0"),
        (.sgd, \OptimizerSettings.momentum, -0.1, "--momentum: must be in [0, 1], got -0.1"),
        (.rmsprop, \OptimizerSettings.rho, 1.0, "--rho: must be in [0, 1), got 1.0"),
        (.rmsprop, \OptimizerSettings.momentum, 2.0, "--momentum: must be in [0, 1], got 2.0"),
        (.sgd, \OptimizerSettings.weightDecay, -1.0, "--weight-decay: must be at least 0, got -1.0"),
        (.adamw, \OptimizerSettings.weightDecay, .nan, "--weight-decay: must be at least 0, got nan"),
    ] as [(OptimizerKind, WritableKeyPath<OptimizerSettings, Double>, Double, String)])
    func refusesBadSettings(_ kind: OptimizerKind, _ field: WritableKeyPath<OptimizerSettings, Double>, _ value: Double, _ message: String) {
        var s = OptimizerSettings(kind: kind)
        s[keyPath: field] = value
        #expect(throws: InvalidSetting.self) { try s.make(parameterCount: 1) }
        do { try s.validate() } catch { #expect("\(error)" == message) }
    }

    /// Settings of other kinds are ignored, not refused: the command line refuses such flags,
    /// using `OptimizerKind.flags`.
    @Test func ignoresOtherKindsSettings() throws {
        var s = OptimizerSettings(kind: .sgd)
        s.beta1 = 7
        #expect(throws: Never.self) { try s.validate() }
        #expect(!OptimizerKind.sgd.flags.contains("--beta1"))
        #expect(OptimizerKind.allCases.allSatisfy { $0.flags.contains("--weight-decay") })
    }
}
