/// Loss and correct-prediction sums over some examples; means come from `means`.
public struct Totals: Equatable, Sendable {
    public var lossSum = 0.0
    public var correct = 0.0
    public var count = 0

    public init(lossSum: Double = 0, correct: Double = 0, count: Int = 0) {
        (self.lossSum, self.correct, self.count) = (lossSum, correct, count)
    }

    public static func + (a: Totals, b: Totals) -> Totals {
        Totals(lossSum: a.lossSum + b.lossSum, correct: a.correct + b.correct, count: a.count + b.count)
    }
    public static func += (a: inout Totals, b: Totals) { a = a + b }

    public struct Means: Equatable, Sendable {
        public var loss: Double
        public var accuracy: Double
    }
    public var means: Means {
        let n = Double(max(count, 1))
        return Means(loss: lossSum / n, accuracy: correct / n)
    }
}
