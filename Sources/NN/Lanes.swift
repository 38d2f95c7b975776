#if arch(x86_64)
import _Builtin_intrinsics.intel  // _mm_sqrt_ps, for `laneSquareRoot`
#endif

/// Eight parameters at a time, for the rules with a square root and a division per parameter
/// (Adam, RMSprop). Swift's `squareRoot()` keeps C's errno fallback for negative inputs, which
/// stops the compiler from vectorising those loops (~100–270 µs an update over 62k parameters,
/// up to 2% of a step). Lane-wise IEEE arithmetic, square root included, rounds exactly as the
/// scalar code does, so results are unchanged to the bit. The last `count < 8` parameters go
/// through the same body, zero-padded: zeros are harmless in every rule (ε keeps the
/// denominators positive).
typealias Lanes = SIMD8<Float>

/// √x lane by lane: SSE's `sqrtps` on x86-64 (every x86-64 has it), the standard library elsewhere.
@inline(__always)
func laneSquareRoot(_ x: Lanes) -> Lanes {
    #if arch(x86_64)
    return Lanes(lowHalf: _mm_sqrt_ps(x.lowHalf), highHalf: _mm_sqrt_ps(x.highHalf))
    #else
    return x.squareRoot()
    #endif
}

@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>, _ count: Int) -> Lanes {
    if count == Lanes.scalarCount { return UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    var x = Lanes()
    for k in 0..<count { x[k] = p[k] }
    return x
}

@inline(__always)
func storeLanes(_ x: Lanes, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count == Lanes.scalarCount { return UnsafeMutableRawPointer(p).storeBytes(of: x, as: Lanes.self) }
    for k in 0..<count { p[k] = x[k] }
}
