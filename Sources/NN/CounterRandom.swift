/// A counter-based generator: every draw is a hash of (key, counter), so an example's dropout
/// mask or augmentation depends only on the seed, the step, the layer and the example's place in
/// the global batch — never on which rank or thread computes it, nor in what order.
public struct CounterRandom: Sendable {
    public let key: UInt64

    /// The stream of one example in one layer at one step.
    public init(seed: UInt64, layer: Int, step: Int, example: Int) {
        var k = Self.mix(seed ^ 0x6A09_E667_F3BC_C909)
        k = Self.mix(k ^ UInt64(truncatingIfNeeded: layer))
        k = Self.mix(k ^ UInt64(truncatingIfNeeded: step))
        key = Self.mix(k ^ UInt64(truncatingIfNeeded: example))
    }

    /// SplitMix64's finaliser: a bijection that scatters every input bit over the output.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits for draw `counter`.
    @inline(__always)
    public func bits(_ counter: Int) -> UInt64 { Self.mix(key ^ (UInt64(truncatingIfNeeded: counter) &* 0xD1B5_4A32_D192_ED03)) }

    /// Uniform in [0, 1) with 24 bits (exact in Float).
    @inline(__always)
    public func unit(_ counter: Int) -> Float { Float(bits(counter) >> 40) * (1.0 / 16_777_216.0) }
}
