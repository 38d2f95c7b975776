import Foundation

/// A linear axis with "nice" ticks (1, 2 or 5 times a power of ten), the bounds widened to
/// whole ticks so curves never touch the frame at an odd value.
public struct Axis: Equatable, Sendable {
    public var lower: Double
    public var upper: Double
    public var step: Double
    /// Room left beyond the outer ticks, in data units, so markers there clear the frame.
    public var margin = 0.0

    public init(covering values: [Double], targetTicks: Int = 5, integer: Bool = false) {
        var low = values.min() ?? 0, high = values.max() ?? 1
        if high - low < 1e-12 {
            // One value: a small range around it, so it sits mid-panel.
            let pad = integer ? 1 : max(abs(low) * 0.1, 0.05)
            (low, high) = (low - pad, high + pad)
        }
        var step = Self.nice((high - low) / Double(max(targetTicks - 1, 1)))
        if integer { step = max(step.rounded(), 1) }
        self.step = step
        lower = (low / step).rounded(.down) * step
        upper = (high / step).rounded(.up) * step
    }

    public var ticks: [Double] {
        let count = Int(((upper - lower) / step).rounded())
        return (0...count).map { lower + Double($0) * step }
    }

    /// Enough decimals to tell the ticks apart, and no more.
    public func label(_ value: Double) -> String {
        let decimals = max(0, Int(-log10(step).rounded(.down)))
        let text = String(format: "%.\(decimals)f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }

    /// Maps `value` into the pixel range [from, to].
    public func position(_ value: Double, from: Double, to: Double) -> Double {
        from + (value - lower + margin) / (upper - lower + 2 * margin) * (to - from)
    }

    static func nice(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let power = pow(10, log10(raw).rounded(.down))
        let fraction = raw / power
        // The nearest of 1, 2, 5, 10: close to the asked tick count, never far below it.
        return (fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10) * power
    }
}
