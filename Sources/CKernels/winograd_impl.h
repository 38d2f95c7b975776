// Winograd's minimal filtering (Lavin and Gray, 2015) for stride-1 convs whose channels fill the
// vectors: F(4×4, 3×3) for 3×3 kernels and F(2×2, 5×5) for 5×5 ones, both on 6×6 input tiles, so an
// m×m output tile costs 36 products per channel pair instead of r²m² (2.8–4× fewer), below the
// FMA limit a direct conv has. Included after conv_impl.h, whose tiles run the products as 36 GEMMs
// over a block of transformed tiles and the channels.
//   forward:       Y = Aᵀ [U ⊙ V] A,  U = G g Gᵀ (the kernel),  V = Bᵀ d B (an input tile)
//   weight grad:   dg = Gᵀ [Σ_tiles V ⊙ (A dy Aᵀ)] G  (the forward's adjoint in g)
//   input grad:    the forward over dout padded by r - 1 with the kernel turned 180° and transposed
//                  (over the input's interior only, where its border is padding).
// Tiles run in blocks across the batch, so a block's transforms stay in cache; sums run in a fixed
// order over the batch, so the bits depend on the batch alone.
#define WA 6         // the input tile's side
#define WX (WA * WA) // products per tile and channel pair

// Points 0, ±1, ±2 and ∞: coefficients within 8 (F(4×4, 3×3)) and 16 (F(2×2, 5×5)), so FP32
// loses little (errors about 10× a direct conv's).
static const float wino_bt[WA * WA] = {
    4, 0, -5, 0, 1, 0,
    0, -4, -4, 1, 1, 0,
    0, 4, -4, -1, 1, 0,
    0, -2, -1, 2, 1, 0,
    0, 2, -1, -2, 1, 0,
    0, 4, 0, -5, 0, 1};
static const float wino_g3[WA * 3] = {
    1.f / 4, 0, 0,
    -1.f / 6, -1.f / 6, -1.f / 6,
    -1.f / 6, 1.f / 6, -1.f / 6,
    1.f / 24, 1.f / 12, 1.f / 6,
    1.f / 24, -1.f / 12, 1.f / 6,
    0, 0, 1};
static const float wino_at4[4 * WA] = {
    1, 1, 1, 1, 1, 0,
    0, 1, -1, 2, -2, 0,
    0, 1, 1, 4, 4, 0,
    0, 1, -1, 8, -8, 1};
static const float wino_g5[WA * 5] = {
    1.f / 4, 0, 0, 0, 0,
    -1.f / 6, -1.f / 6, -1.f / 6, -1.f / 6, -1.f / 6,
    -1.f / 6, 1.f / 6, -1.f / 6, 1.f / 6, -1.f / 6,
    1.f / 24, 1.f / 12, 1.f / 6, 1.f / 3, 2.f / 3,
    1.f / 24, -1.f / 12, 1.f / 6, -1.f / 3, 2.f / 3,
    0, 0, 0, 0, 1};
static const float wino_at2[2 * WA] = {
    1, 1, 1, 1, 1, 0,
    0, 1, -1, 2, -2, 1};

// One kernel size's transforms: output tiles of m×m for an r×r kernel, m + r - 1 = WA.
typedef struct { int m, r; const float *g, *at; } FN(wino_kind);
#define WINO_KIND(r) ((r) == 3 ? (FN(wino_kind)){4, 3, wino_g3, wino_at4} : (FN(wino_kind)){2, 5, wino_g5, wino_at2})
// Calls an always_inline body with the kind as constants, so its loops unroll for each.
#define WINO_SPECIALISE(r, call) do { if ((r) == 3) { const FN(wino_kind) k = WINO_KIND(3); call; } \
                                      else { const FN(wino_kind) k = WINO_KIND(5); call; } } while (0)
#define INLINE static inline __attribute__((always_inline))

// Σ_j c[j·cs] · x[j·xs] over n coefficients of a constant table: the loop unrolls, so zeros and ±1s
// cost nothing. Zeros are skipped (x·0 is not 0 for inf and NaN, so the compiler would keep them).
INLINE vf FN(combine)(const float *c, int cs, int n, const vf *x, int xs)
{
    vf acc = (vf){0};
    int first = 1;
    UNROLL for (int j = 0; j < n; j++) {
        const float k = c[j * cs];
        if (k == 0) continue;
        vf term = k == 1 ? x[j * xs] : k == -1 ? -x[j * xs] : x[j * xs] * FN(splat)(k);
        acc = first ? term : acc + term;
        first = 0;
    }
    return acc;
}

// out = L x Lᵀ for an lr×lc matrix L (element (i, j) at L[i·ls + j·js]) and an lc×lc x, each
// element a vector of channels.
INLINE void FN(sandwich)(const float *L, int lr, int lc, int ls, int js, const vf *x, vf *out)
{
    vf t[WA * WA];  // L x: lr × lc
    UNROLL for (int i = 0; i < lr; i++)
        UNROLL for (int col = 0; col < lc; col++) t[i * lc + col] = FN(combine)(L + i * ls, js, lc, x + col, lc);
    UNROLL for (int i = 0; i < lr; i++)
        UNROLL for (int o = 0; o < lr; o++) out[i * lr + o] = FN(combine)(L + o * ls, js, lc, t + i * lc, 1);
}

enum { SLOT_INPUT, SLOT_PRODUCTS, SLOT_KERNEL, SLOT_SUMS, SLOT_TURNED, SLOT_GRADIENTS, SLOT_COUNT };
// A buffer of at least `floats` this thread keeps (slot: which of its buffers); NULL if none could be had.
// 64-byte aligned: malloc's 16 bytes split a vector across cache lines (1 in 2 on AVX2, every one on
// AVX-512), which cost the trainer's AVX2 conv2 a fifth of its time.
static float *FN(wino_buffer)(int slot, long floats)
{
    static _Thread_local float *buffers[SLOT_COUNT];
    static _Thread_local long capacity[SLOT_COUNT];
    if (floats > capacity[slot]) {
        free(buffers[slot]);
        buffers[slot] = aligned_alloc(64, (sizeof(float) * floats + 63) / 64 * 64);  // whole vectors in a cache line
        capacity[slot] = buffers[slot] ? floats : 0;
    }
    return buffers[slot];
}

// Images whose conv gradients (`floats` each) the fused backward's weight sums take in one call:
// as many as fit 256 KB, up to 16. Summed one image at a time, the reference conv2's sums (295 KB)
// were read and written for every 16 tiles, about a quarter of the weight gradient's time on AVX2.
// A function of the geometry, so the bits depend on the batch alone.
static int FN(wino_chunk)(long floats)
{
    const long images = 65536 / floats;
    return images < 1 ? 1 : images > 16 ? 16 : (int)images;
}

// Tiles a block holds: its transformed tiles (WX·tiles·channels floats, the wider side's) about
// 512 KB, half of a Zen 4 core's L2, and at least two register tiles.
static int FN(wino_block)(int channels)
{
    int tiles = 131072 / (WX * channels);
    return tiles < 2 * RMAX1 ? 2 * RMAX1 : tiles > 512 ? 512 : tiles;
}

// U[ξ][c][f] = (G g Gᵀ)[ξ] for the kernel w[kh][kw][c][f] (filters a multiple of VL).
INLINE void FN(wino_kernel_of)(FN(wino_kind) k, const float *w, int channels, int filters, float *u)
{
    const long cf = (long)channels * filters;
    for (long at = 0; at < cf; at += VL) {
        vf g[25], t[WX];
        UNROLL for (int i = 0; i < k.r * k.r; i++) g[i] = FN(load)(w + i * cf + at);
        FN(sandwich)(k.g, WA, k.r, k.r, 1, g, t);
        UNROLL for (int x = 0; x < WX; x++) FN(store)(u + x * cf + at, t[x]);
    }
}

// Tile `t` of a batch of images tiled `ty`×`tx`: its image and its first output row and column.
INLINE void FN(wino_tile)(int m, int t, int ty, int tx, int *n, int *y, int *x)
{
    *n = t / (ty * tx);
    *y = t / tx % ty * m;
    *x = t % tx * m;
}

// V[ξ][i][c] = (Bᵀ d B)[ξ] for tiles t0 ..< t0 + count of src [n][h][w][c], the tile at output
// (y, x) reading the input from (y - pad, x - pad), zeros outside it.
INLINE void FN(wino_input_tiles)(int m, const float *src, int h, int w, int c, int pad, int ty, int tx, int t0, int count,
                                 float *v, long block)
{
    for (int i = 0; i < count; i++) {
        int n, y0, x0;
        FN(wino_tile)(m, t0 + i, ty, tx, &n, &y0, &x0);
        y0 -= pad, x0 -= pad;
        const int inside = y0 >= 0 && x0 >= 0 && y0 + WA <= h && x0 + WA <= w;
        const float *image = src + (long)n * h * w * c;
        for (int ch = 0; ch < c; ch += VL) {
            vf d[WX], t[WX];
            UNROLL for (int a = 0; a < WA; a++)
                UNROLL for (int b = 0; b < WA; b++) {
                    const int y = y0 + a, x = x0 + b;
                    d[a * WA + b] = inside || (y >= 0 && y < h && x >= 0 && x < w) ? FN(load)(image + ((long)y * w + x) * c + ch) : (vf){0};
                }
            FN(sandwich)(wino_bt, WA, WA, WA, 1, d, t);
            UNROLL for (int x = 0; x < WX; x++) FN(store)(v + (x * block + i) * c + ch, t[x]);
        }
    }
}

// Where an image's output pixel (y, x) lies: dst + n·image + y·row + x·f.
typedef struct { float *dst; long image, row; } FN(wino_out);

// dst [n][oh][ow][f] = a conv of src's tiles with the transformed kernel U [WX][c][f], + bias and
// ReLU as `mode` says (MODE_BIAS_RELU, MODE_BIAS or MODE_STORE).
INLINE void FN(wino_conv_of)(FN(wino_kind) k, const float *src, int h, int w, int c, int pad, const float *u, FN(wino_out) to,
                             int oh, int ow, int f, int mode, const float *bias, int batch)
{
    const int m = k.m, ty = (oh + m - 1) / m, tx = (ow + m - 1) / m, total = batch * ty * tx;
    const long block = FN(wino_block)(c > f ? c : f);
    float *v = FN(wino_buffer)(SLOT_INPUT, WX * block * c), *p = FN(wino_buffer)(SLOT_PRODUCTS, WX * block * f);
    for (int t0 = 0; t0 < total; t0 += block) {
        const int count = total - t0 < block ? total - t0 : (int)block;
        FN(wino_input_tiles)(m, src, h, w, c, pad, ty, tx, t0, count, v, block);
        for (int x = 0; x < WX; x++)
            FN(tiles)(count, f / VL, 1, c, v + x * block * c, 0, c, 1, (FN(bmat)){u + (long)x * c * f, 0, f, 0, 0},
                      MODE_STORE, p + x * block * f, f, 0);
        for (int i = 0; i < count; i++) {
            int n, y0, x0;
            FN(wino_tile)(m, t0 + i, ty, tx, &n, &y0, &x0);
            float *image = to.dst + n * to.image;
            for (int ch = 0; ch < f; ch += VL) {
                vf q[WX], y[16];
                UNROLL for (int x = 0; x < WX; x++) q[x] = FN(load)(p + (x * block + i) * f + ch);
                FN(sandwich)(k.at, m, WA, WA, 1, q, y);
                const vf b = mode == MODE_STORE ? (vf){0} : FN(load)(bias + ch);
                UNROLL for (int a = 0; a < m; a++)
                    UNROLL for (int e = 0; e < m; e++) {
                        if (y0 + a >= oh || x0 + e >= ow) continue;
                        vf out = mode == MODE_STORE ? y[a * m + e] : y[a * m + e] + b;
                        if (mode == MODE_BIAS_RELU) out = __builtin_elementwise_max(out, (vf){0});
                        FN(store)(image + (y0 + a) * to.row + (long)(x0 + e) * f + ch, out);
                    }
            }
        }
    }
}

// sums[ξ][c][f] (+)= Σ over the batch's tiles of V[ξ][tile][c] · (A dy Aᵀ)[ξ][tile][f], dy zero past
// the output's edge.
INLINE void FN(wino_weight_sums_of)(FN(wino_kind) k, const dpk_conv *g, const float *in, const float *dout, float *sums,
                                    int accumulate, int batch)
{
    const int m = k.m, C = g->in_c, F = g->filters, oh = g->out_h, ow = g->out_w;
    const int ty = (oh + m - 1) / m, tx = (ow + m - 1) / m, total = batch * ty * tx;
    const long block = FN(wino_block)(C > F ? C : F), cf = (long)C * F;
    float *v = FN(wino_buffer)(SLOT_INPUT, WX * block * C), *d = FN(wino_buffer)(SLOT_PRODUCTS, WX * block * F);
    for (int t0 = 0; t0 < total; t0 += block) {
        const int count = total - t0 < block ? total - t0 : (int)block;
        FN(wino_input_tiles)(m, in, g->in_h, g->in_w, C, 0, ty, tx, t0, count, v, block);
        for (int i = 0; i < count; i++) {
            int n, y0, x0;
            FN(wino_tile)(m, t0 + i, ty, tx, &n, &y0, &x0);
            const float *image = dout + (long)n * oh * ow * F;
            for (int ch = 0; ch < F; ch += VL) {
                vf dy[16], t[WX];
                UNROLL for (int a = 0; a < m; a++)
                    UNROLL for (int e = 0; e < m; e++)
                        dy[a * m + e] = y0 + a < oh && x0 + e < ow ? FN(load)(image + ((long)(y0 + a) * ow + x0 + e) * F + ch) : (vf){0};
                FN(sandwich)(k.at, WA, m, 1, WA, dy, t);  // A = Aᵀᵀ
                UNROLL for (int x = 0; x < WX; x++) FN(store)(d + (x * block + i) * F + ch, t[x]);
            }
        }
        for (int x = 0; x < WX; x++)
            FN(tiles)(C, F / VL, 1, count, v + x * block * C, 0, 1, C, (FN(bmat)){d + x * block * F, 0, F, 0, 0},
                      accumulate || t0 > 0 ? MODE_ADD : MODE_STORE, sums + x * cf, F, 0);
    }
}

// dw = Gᵀ sums G, HWIO.
INLINE void FN(wino_weights_of)(FN(wino_kind) k, const float *sums, long cf, float *dw)
{
    for (long at = 0; at < cf; at += VL) {
        vf p[WX], out[25];
        UNROLL for (int x = 0; x < WX; x++) p[x] = FN(load)(sums + x * cf + at);
        FN(sandwich)(k.g, k.r, WA, 1, k.r, p, out);  // Gᵀ
        UNROLL for (int x = 0; x < k.r * k.r; x++) FN(store)(dw + x * cf + at, out[x]);
    }
}

// Whether Winograd's kernels take a pass: where they do at least 2.5× fewer products than the
// direct ones, which measured faster (dev/cpu). An input gradient without a border to skip is a
// full conv, most of whose tiles would multiply the padding (the reference model's conv2: 1.2×).
int FN(dpk_winograd_fits)(const dpk_conv *g, int pass)
{
    if (g->direct || (g->kernel != 3 && g->kernel != 5) || g->stride != 1 || g->in_c % VL || g->filters % VL || g->border >= g->kernel)
        return 0;
    const int m = WINO_KIND(g->kernel).m, input = pass == DPK_BACKWARD_INPUT;
    const long h = input ? g->in_h - 2 * g->border : g->out_h, w = input ? g->in_w - 2 * g->border : g->out_w;
    const long tiles = (h + m - 1) / m * ((w + m - 1) / m);
    return 2L * g->out_h * g->out_w * g->kernel * g->kernel >= 5 * tiles * WX;
}

// Transformed kernels this thread keeps, by the weights they came from: a training step calls each
// layer once a sub-batch with the same weights, so a kernel is transformed once a step, not once a
// call (4 % of the CIFAR-style model's step). The key is a copy of the weights, compared in full,
// so new weights are always transformed anew. Returns the buffer of `floats` for w's transform of
// `kind` (the pass and the input channels) and *fresh = 1 if it must be (re)computed; NULL if memory ran out.
enum { KEPT_KERNELS = 16 };
static float *FN(kept_kernel)(const float *w, long weights, long floats, long kind, int *fresh)
{
    static _Thread_local struct { const float *w; long weights, floats, kind; float *copy, *u; } kept[KEPT_KERNELS];
    static _Thread_local int next;
    const size_t bytes = sizeof(float) * weights;
    for (int i = 0; i < KEPT_KERNELS; i++)
        if (kept[i].u && kept[i].w == w && kept[i].weights == weights && kept[i].floats == floats && kept[i].kind == kind) {
            *fresh = memcmp(kept[i].copy, w, bytes) != 0;
            if (*fresh) memcpy(kept[i].copy, w, bytes);
            return kept[i].u;
        }
    const int i = next;
    next = (next + 1) % KEPT_KERNELS;
    free(kept[i].copy);
    free(kept[i].u);
    kept[i].copy = aligned_alloc(64, (bytes + 63) / 64 * 64);
    kept[i].u = aligned_alloc(64, (sizeof(float) * floats + 63) / 64 * 64);
    if (!kept[i].copy || !kept[i].u) {
        free(kept[i].copy);
        free(kept[i].u);
        kept[i].copy = kept[i].u = 0;
        return 0;
    }
    memcpy(kept[i].copy, w, bytes);
    kept[i].w = w, kept[i].weights = weights, kept[i].floats = floats, kept[i].kind = kind;
    *fresh = 1;
    return kept[i].u;
}

// w's transform for `pass` in a kept buffer (else this thread's scratch slot), and whether to compute it.
static float *FN(wino_kernel_buffer)(const dpk_conv *g, const float *w, int pass, int *fresh)
{
    const long weights = (long)g->kernel * g->kernel * g->in_c * g->filters, floats = (long)WX * g->in_c * g->filters;
    float *u = FN(kept_kernel)(w, weights, floats, (long)pass << 32 | g->in_c, fresh);
    if (u) return u;
    *fresh = 1;
    return FN(wino_buffer)(SLOT_KERNEL, floats);
}

// The forward's transformed kernel.
static const float *FN(wino_forward_kernel)(const dpk_conv *g, const float *w)
{
    int fresh;
    float *u = FN(wino_kernel_buffer)(g, w, DPK_FORWARD, &fresh);
    if (fresh) WINO_SPECIALISE(g->kernel, FN(wino_kernel_of)(k, w, g->in_c, g->filters, u));
    return u;
}

static void FN(wino_forward)(const dpk_conv *g, const float *in, const float *u, const float *bias, float *out, int batch)
{
    const long row = (long)g->out_w * g->filters;
    const FN(wino_out) to = {out, g->out_h * row, row};
    const int mode = g->linear ? MODE_BIAS : MODE_BIAS_RELU;
    WINO_SPECIALISE(g->kernel, FN(wino_conv_of)(k, in, g->in_h, g->in_w, g->in_c, 0, u, to, g->out_h, g->out_w, g->filters, mode, bias, batch));
}

void FN(dpk_winograd_forward)(const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, int batch)
{
    FN(wino_forward)(g, in, FN(wino_forward_kernel)(g, w), bias, out, batch);
}

// The input gradient's transformed kernel: that of the turned kernel wt[a][b][f][c] = w[r-1-a][r-1-b][c][f].
static const float *FN(wino_input_kernel)(const dpk_conv *g, const float *w)
{
    const long C = g->in_c, F = g->filters, kk = (long)g->kernel * g->kernel;
    int fresh;
    float *u = FN(wino_kernel_buffer)(g, w, DPK_BACKWARD_INPUT, &fresh);
    if (!fresh) return u;
    float *wt = FN(wino_buffer)(SLOT_TURNED, kk * C * F);
    for (long i = 0; i < kk; i++)
        for (long c = 0; c < C; c++)
            for (long f = 0; f < F; f++) wt[(i * F + f) * C + c] = w[((kk - 1 - i) * C + c) * F + f];
    WINO_SPECIALISE(g->kernel, FN(wino_kernel_of)(k, wt, (int)F, (int)C, u));
    return u;
}

static void FN(wino_input)(const dpk_conv *g, const float *dout, const float *u, float *din, int batch)
{
    const int b = g->border, row = g->in_w * g->in_c;
    const FN(wino_out) to = {din + b * row + b * g->in_c, g->in_h * row, row};
    WINO_SPECIALISE(g->kernel, FN(wino_conv_of)(k, dout, g->out_h, g->out_w, g->filters, g->kernel - 1 - b, u, to,
                                                g->in_h - 2 * b, g->in_w - 2 * b, g->in_c, MODE_STORE, 0, batch));
}

void FN(dpk_winograd_backward_input)(const dpk_conv *g, const float *dout, const float *w, float *wt, float *din, int batch)
{
    (void)wt;
    FN(wino_input)(g, dout, FN(wino_input_kernel)(g, w), din, batch);
}

static float *FN(wino_sums)(const dpk_conv *g) { return FN(wino_buffer)(SLOT_SUMS, (long)WX * g->in_c * g->filters); }

static void FN(wino_weight_sums)(const dpk_conv *g, const float *in, const float *dout, float *sums, int accumulate, int batch)
{
    WINO_SPECIALISE(g->kernel, FN(wino_weight_sums_of)(k, g, in, dout, sums, accumulate, batch));
}

static void FN(wino_weights)(const dpk_conv *g, const float *sums, float *dw)
{
    WINO_SPECIALISE(g->kernel, FN(wino_weights_of)(k, sums, (long)g->in_c * g->filters, dw));
}

void FN(dpk_winograd_backward_weights)(const dpk_conv *g, const float *in, const float *dout, float *dw, int batch)
{
    float *sums = FN(wino_sums)(g);
    FN(wino_weight_sums)(g, in, dout, sums, 0, batch);
    FN(wino_weights)(g, sums, dw);
}
