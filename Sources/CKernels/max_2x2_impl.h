// A 2x2 max-pooling window in registers, for pool_impl.h and the pooled conv tiles (fused_impl.h,
// conv_bf16.c): included after vf, vi and FN are defined.

// Lane by lane, a where mask is set, else b.
static inline vf FN(pick)(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

// A 2x2 window (a b / e d): the largest by a tree of max, then the first that equals it (the first
// maximum, the same bits as a loop over the window for any input without NaNs); *offset: its
// distance from a, `right` and `down` elements a step.
static inline vf FN(max_2x2)(vf a, vf b, vf e, vf d, int right, int down, vi *offset)
{
    vf m = __builtin_elementwise_max(__builtin_elementwise_max(a, b), __builtin_elementwise_max(e, d));
    vi is_a = a == m, is_b = b == m, is_e = e == m;
    const vi to_right = (vi){0} + right, to_down = (vi){0} + down;
    vf best = FN(pick)(is_e, e, d);
    vi at = to_down + (to_right & ~is_e);
    best = FN(pick)(is_b, b, best);
    at = (to_right & is_b) | (at & ~is_b);
    *offset = at & ~is_a;
    return FN(pick)(is_a, a, best);
}
