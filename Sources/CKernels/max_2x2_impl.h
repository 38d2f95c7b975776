// A 2x2 max-pooling window in registers, for pool_impl.h and the pooled conv tiles (fused_impl.h,
// conv_bf16.c): included after vf, vi and FN are defined.

// Lane by lane, a where mask is set, else b.
static inline vf FN(pick)(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

// The distance from a of a 2x2 window's first maximum (a b / e d), from which of a, b, e equal it;
// `right` and `down` elements a step.
static inline vi FN(winner_offset)(vi is_a, vi is_b, vi is_e, int right, int down)
{
    const vi to_right = (vi){0} + right, to_down = (vi){0} + down;
    vi at = to_down + (to_right & ~is_e);
    at = (to_right & is_b) | (at & ~is_b);
    return at & ~is_a;
}

// The largest of a 2x2 window, by a tree of max.
static inline vf FN(largest_4)(vf a, vf b, vf e, vf d)
{
    return __builtin_elementwise_max(__builtin_elementwise_max(a, b), __builtin_elementwise_max(e, d));
}

// A 2x2 window: the largest, then the first that equals it (the first maximum, the same bits as a
// loop over the window for any input without NaNs); *offset: where it is.
static inline vf FN(max_2x2)(vf a, vf b, vf e, vf d, int right, int down, vi *offset)
{
    vf m = FN(largest_4)(a, b, e, d);
    vi is_a = a == m, is_b = b == m, is_e = e == m;
    *offset = FN(winner_offset)(is_a, is_b, is_e, right, down);
    return FN(pick)(is_a, a, FN(pick)(is_b, b, FN(pick)(is_e, e, d)));
}

// max_2x2 of ReLU outputs, which are never -0: the largest has the first maximum's bits, so the
// picks (there for -0 beside +0) can go, a quarter of the window's work on the FMA ports.
static inline vf FN(max_2x2_relu)(vf a, vf b, vf e, vf d, int right, int down, vi *offset)
{
    vf m = FN(largest_4)(a, b, e, d);
    *offset = FN(winner_offset)(a == m, b == m, e == m, right, down);
    return m;
}
