import ModelFiles
import Foundation
import NN
import Testing
import Training

/// The learning-rate schedules against Keras's own `keras.optimizers.schedules` values, written
/// by `scripts/make-fixtures` for 4 epochs of 7 steps at base 0.1 (and 3 steps past the end).
struct ScheduleTests {
    /// Keras evaluates in float32 (cos, pow); dptrain in double, rounded once. 1e-6 relative is
    /// ~8 float32 ulps, and any off-by-one in a step boundary is a factor of 10 or 1/N off. Near
    /// the end of a cosine decay Keras's float32 `1 + cos(π·p)` cancels to an absolute error of
    /// about ulp(1)·base/2 (measured 1.2e-9 at base 0.1), hence a floor of 1e-7·base.
    static let tolerance = 1e-6
    static let absoluteFloor = 1e-7

    static func keras(_ name: String) throws -> (values: [Float], base: Float, stepsPerEpoch: Int, epochs: Int) {
        let url = try #require(Bundle.module.url(forResource: "schedules", withExtension: "safetensors", subdirectory: "Fixtures"))
        let f = try SafeTensors(path: url.path)
        return (try #require(f[name]?.floats), try #require(Float(f.metadata["base"] ?? "")),
                try #require(Int(f.metadata["steps_per_epoch"] ?? "")), try #require(Int(f.metadata["epochs"] ?? "")))
    }

    static func expectMatches(_ schedule: Schedule, _ expected: [Float], _ name: String) throws {
        try schedule.validate()
        let floor = absoluteFloor * Double(schedule.baseRate)
        for (step, e) in expected.enumerated() {
            let rate = schedule.learningRate(atStep: step)
            #expect(abs(Double(rate) - Double(e)) <= tolerance * Double(e) + floor, "\(name): step \(step): \(rate) vs Keras \(e)")
        }
    }

    @Test(arguments: [("cosine", 0.0), ("cosine_alpha", 0.1)])
    func cosineIsKerasCosineDecay(_ name: String, _ alpha: Double) throws {
        let k = try Self.keras(name)
        var s = Schedule(kind: .cosine, baseRate: k.base, stepsPerEpoch: k.stepsPerEpoch, epochs: k.epochs)
        s.cosineAlpha = alpha
        try Self.expectMatches(s, k.values, name)
        #expect(s.learningRate(atStep: s.totalSteps) == Float(Double(k.base) * alpha), "ends at alpha·base")
    }

    @Test func exponentialIsKerasExponentialDecayPerEpoch() throws {
        let k = try Self.keras("exponential")
        let s = Schedule(kind: .exponential, baseRate: k.base, stepsPerEpoch: k.stepsPerEpoch, epochs: k.epochs)
        #expect(s.decayRate == 0.9)
        try Self.expectMatches(s, k.values, "exponential")
    }

    @Test func stepIsKerasPiecewiseConstantDecay() throws {
        let k = try Self.keras("step")
        let s = Schedule(kind: .step, baseRate: k.base, stepsPerEpoch: k.stepsPerEpoch, epochs: k.epochs)
        #expect(s.stepEpochs == [2, 3] && s.stepFactor == 0.1, "the defaults for 4 epochs")
        try Self.expectMatches(s, k.values, "step")
        // The drop happens at the first step of epoch 2, not one step later.
        #expect(s.learningRate(atStep: 2 * 7 - 1) == 0.1 && abs(s.learningRate(atStep: 2 * 7) - 0.01) < 1e-9)
    }

    /// dptrain's warm-up over N steps, (s+1)/N of the rate, is Keras's linear warm-up from base/N.
    @Test func warmupIsKerasLinearWarmup() throws {
        let k = try Self.keras("warmup")
        let n = k.values.count
        // warmupEpochs such that round(W·stepsPerEpoch) = N.
        let s = Schedule(kind: .constant, baseRate: k.base, stepsPerEpoch: k.stepsPerEpoch, epochs: k.epochs,
                         warmupEpochs: Double(n) / Double(k.stepsPerEpoch))
        #expect(s.warmupSteps == n)
        try Self.expectMatches(s, k.values, "warmup")
        #expect(s.learningRate(atStep: n) == k.base && s.learningRate(atStep: 10 * n) == k.base)
    }

    /// Warm-up scales whatever schedule follows, so the rate is continuous where it ends.
    @Test func warmupScalesTheSchedule() {
        let s = Schedule(kind: .cosine, baseRate: 1, stepsPerEpoch: 10, epochs: 5, warmupEpochs: 1)
        #expect(s.warmupSteps == 10)
        #expect(abs(s.learningRate(atStep: 0) - 0.1 * s.cosineAt(0)) < 1e-7)
        #expect(abs(s.learningRate(atStep: 4) - 0.5 * s.cosineAt(4)) < 1e-7)
        #expect(s.learningRate(atStep: 9) == s.cosineAt(9))
        #expect(s.learningRate(atStep: 10) == s.cosineAt(10))
        let rates = (0..<10).map { s.learningRate(atStep: $0) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 < $1 }, "rises every warm-up step")
    }

    @Test func constantAndHalfEpochWarmup() {
        let s = Schedule(kind: .constant, baseRate: 0.02, stepsPerEpoch: 600, epochs: 5, warmupEpochs: 0.5)
        #expect(s.warmupSteps == 300)
        #expect(s.learningRate(atStep: 0) == Float(0.02 / 300.0))
        #expect(s.learningRate(atStep: 299) == 0.02 && s.learningRate(atStep: 2999) == 0.02)
        #expect(Schedule(kind: .constant, baseRate: 0.01, stepsPerEpoch: 600, epochs: 5).learningRate(atStep: 0) == 0.01)
    }

    @Test func defaultStepEpochs() {
        #expect(Schedule.defaultStepEpochs(epochs: 1) == [])
        #expect(Schedule.defaultStepEpochs(epochs: 2) == [1])
        #expect(Schedule.defaultStepEpochs(epochs: 5) == [2, 3])
        #expect(Schedule.defaultStepEpochs(epochs: 90) == [45, 67])
    }

    @Test(arguments: [
        ("--lr", "--lr: must be positive, got 0.0"),
        ("--warmup-epochs", "--warmup-epochs: must be in [0, --epochs] = [0, 5], got 6.0"),
        ("--lr-step-epochs", "--lr-step-epochs: must be increasing, got 3,2"),
        ("--lr-step-factor", "--lr-step-factor: must be in (0, 1], got 2.0"),
        ("--lr-decay-rate", "--lr-decay-rate: must be in (0, 1], got 0.0"),
        ("--lr-alpha", "--lr-alpha: must be in [0, 1], got -1.0"),
    ])
    func refusesBadSettings(_ flag: String, _ message: String) {
        var s = Schedule(kind: .step, baseRate: 0.01, stepsPerEpoch: 600, epochs: 5)
        switch flag {
        case "--lr": s.baseRate = 0
        case "--warmup-epochs": s.warmupEpochs = 6
        case "--lr-step-epochs": s.stepEpochs = [3, 2]
        case "--lr-step-factor": s.stepFactor = 2
        case "--lr-decay-rate": s.kind = .exponential; s.decayRate = 0
        default: s.kind = .cosine; s.cosineAlpha = -1
        }
        #expect(throws: InvalidSetting.self) { try s.validate() }
        do { try s.validate() } catch { #expect("\(error)" == message) }
    }

    @Test func refusesAnEpochWithoutSteps() {
        let s = Schedule(kind: .constant, baseRate: 0.01, stepsPerEpoch: 0, epochs: 5)
        do { try s.validate(); Issue.record("accepted") } catch {
            #expect("\(error)" == "--batch-size: leaves no step in an epoch (0 steps per epoch)")
        }
    }

    @Test func scalingRules() {
        #expect(LearningRateScaling.linear.scaled(0.01, ranks: 4) == Float(0.04))
        #expect(LearningRateScaling.sqrt.scaled(0.01, ranks: 4) == Float(0.02))
        #expect(LearningRateScaling.none.scaled(0.01, ranks: 4) == Float(0.01))
        #expect(LearningRateScaling.linear.scaled(0.1, globalBatch: 8192, referenceBatch: 256) == Float(3.2))
        #expect(LearningRateScaling.sqrt.factor(globalBatch: 400, referenceBatch: 100) == 2)
        #expect(LearningRateScaling.allCases.map(\.rawValue) == ["linear", "sqrt", "none"])
    }
}

private extension Schedule {
    /// The cosine schedule's value with no warm-up.
    func cosineAt(_ step: Int) -> Float {
        var s = self
        s.warmupEpochs = 0
        return s.learningRate(atStep: step)
    }
}
