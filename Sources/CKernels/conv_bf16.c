// The conv passes with BF16 inputs and FP32 sums, for CPUs with AVX512_BF16 (Zen 4, Cooper Lake,
// Sapphire Rapids). vdpbf16ps multiplies pairs of bf16 along the reduction and adds both products
// into one FP32 lane: twice the work of an FP32 FMA per instruction. So every pass is the FP32
// kernels' register tile (conv_impl.h) with the reduction taken two at a time:
//   acc[r][v] += A(r, pair p) · B(pair p, 16 lanes of v)
// A: one pair of bf16 broadcast as 32 bits; B: 16 pairs interleaved, [p][lane][2].
// forward:     r = output column, pairs along (kw, c) of one kernel row (contiguous in NHWC; an odd
//              kw·in_c is padded with a zero weight, the pair's second input is the next one, × 0);
//              B = the kernel packed [kh][p][f][2].
// weight grad: r = (kw, c), pairs of output columns (ow, ow+1): A = the input with each element
//              paired with the one `stride` columns right (q below), B = dout paired the same way;
//              one tile sums a chunk of images (chunk_images).
// input grad:  r = output column, pairs of filters (contiguous in dout), B = the kernel transposed
//              per row and packed [kh][f/2][kw·in_c][2]; one tile per input row, over every kernel
//              row that reaches it.
// Inputs are rounded to bf16 (round to nearest even, as vcvtne2ps2bf16) once per layer and call;
// weights, their gradients, the bias, ReLU and pooling stay FP32.
#if defined(__x86_64__)
#include "include/ckernels.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t bf16;

int dpk_bf16_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bf16");
}

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma"))), apply_to = function)

void dpk_max_pool_avx512(const float *, float *, int *, int, int, int, int, int);

typedef float vf __attribute__((vector_size(64)));
typedef int vi __attribute__((vector_size(64)));

enum { MODE_BIAS_RELU, MODE_STORE, MODE_ADD, MODE_BIAS };
#define FN(name) name##_bf16
#include "max_2x2_impl.h"
#define UNROLL _Pragma("clang loop unroll(full)")

// ---- Conversions ------------------------------------------------------------------------------

/// dst[i] = bf16(src[i]), n any.
void dpk_to_bf16(const float *src, uint16_t *dst, long n)
{
    long i = 0;
    for (; i + 32 <= n; i += 32)
        _mm512_storeu_si512(dst + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i)));
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

void dpk_round_bf16(const float *src, float *dst, long n)
{
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
}

/// The 16 pairs (bf16(lo[i]), bf16(hi[i])), lo in the low half of each 32 bits.
static inline __m512i pair_vectors(__m512 lo, __m512 hi)
{
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));  // lo in the low half
}

/// dst[2i] = bf16(lo[i]), dst[2i+1] = bf16(hi[i]) (0 when hi is NULL); n a multiple of 16.
static void interleave(const float *lo, const float *hi, bf16 *dst, int n)
{
    for (int i = 0; i < n; i += 16)
        _mm512_storeu_si512(dst + 2 * i, pair_vectors(_mm512_loadu_ps(lo + i), hi ? _mm512_loadu_ps(hi + i) : _mm512_setzero_ps()));
}

// ---- The tile ---------------------------------------------------------------------------------

// acc[r][v] = Σ_n Σ_t Σ_p A(n, t, r, p) · B(n, t, p, v); A(n, t, r, p): the bf16 pair at
// a + n·an + t·at + r·ar + p·ap (bytes), B(n, t, p, v): 16 pairs at b + n·bn + t·bt + p·bp + 64·v.
// R and NV are constants at every call site.
static inline __attribute__((always_inline)) void tile(const int R, const int NV, int N, int T, int P,
    const char *a, long an, long at, long ar, long ap, const char *b, long bn, long bt, long bp,
    int mode, float *c, long ldc, const float *bias)
{
    __m512 acc[12][4];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int nt = 0; nt < N * T; nt++) {
        const char *ta = a + (nt / T) * an + (nt % T) * at, *tb = b + (nt / T) * bn + (nt % T) * bt;
        for (int p = 0; p < P; p++) {
            __m512i w[4];
            UNROLL for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_si512(tb + p * bp + 64 * v);
            UNROLL for (int r = 0; r < R; r++) {
                int32_t pair;
                memcpy(&pair, ta + r * ar + p * ap, 4);
                __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, (__m512bh)w[v]);
            }
        }
    }
    UNROLL for (int v = 0; v < NV; v++) {
        __m512 bv = mode == MODE_BIAS_RELU || mode == MODE_BIAS ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
        UNROLL for (int r = 0; r < R; r++) {
            float *o = c + r * ldc + 16 * v;
            if (mode == MODE_BIAS_RELU) _mm512_storeu_ps(o, _mm512_max_ps(_mm512_add_ps(acc[r][v], bv), _mm512_setzero_ps()));
            else if (mode == MODE_BIAS) _mm512_storeu_ps(o, _mm512_add_ps(acc[r][v], bv));
            else if (mode == MODE_STORE) _mm512_storeu_ps(o, acc[r][v]);
            else _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), acc[r][v]));
        }
    }
}

#define TILE_ARGS N, T, P, a, an, at, ar, ap, b, bn, bt, bp, mode, c, ldc, bias
#define CASE_R(nv, r) case r: tile(r, nv, TILE_ARGS); return;

// Up to 12 rows of 1-2 vectors, 8 of 3, 6 of 4: 32 registers hold the accumulators, B and A.
static void tile_any(int R, int NV, int N, int T, int P, const char *a, long an, long at, long ar, long ap,
                     const char *b, long bn, long bt, long bp, int mode, float *c, long ldc, const float *bias)
{
    switch (NV) {
    case 1: switch (R) { CASE_R(1, 1) CASE_R(1, 2) CASE_R(1, 3) CASE_R(1, 4) CASE_R(1, 5) CASE_R(1, 6)
                         CASE_R(1, 7) CASE_R(1, 8) CASE_R(1, 9) CASE_R(1, 10) CASE_R(1, 11) CASE_R(1, 12) } break;
    case 2: switch (R) { CASE_R(2, 1) CASE_R(2, 2) CASE_R(2, 3) CASE_R(2, 4) CASE_R(2, 5) CASE_R(2, 6)
                         CASE_R(2, 7) CASE_R(2, 8) CASE_R(2, 9) CASE_R(2, 10) CASE_R(2, 11) CASE_R(2, 12) } break;
    case 3: switch (R) { CASE_R(3, 1) CASE_R(3, 2) CASE_R(3, 3) CASE_R(3, 4) CASE_R(3, 5) CASE_R(3, 6)
                         CASE_R(3, 7) CASE_R(3, 8) } break;
    case 4: switch (R) { CASE_R(4, 1) CASE_R(4, 2) CASE_R(4, 3) CASE_R(4, 4) CASE_R(4, 5) CASE_R(4, 6) } break;
    }
    __builtin_trap();
}

static int rmax(int nv) { return nv <= 2 ? 12 : nv == 3 ? 8 : 6; }

// `rows` tile rows by `vectors` columns of 16 floats: column blocks of up to 4 vectors, row blocks
// of nearly equal size that fit the registers.
static void tiles(int rows, int vectors, int N, int T, int P, const char *a, long an, long at, long ar, long ap,
                  const char *b, long bn, long bt, long bp, int mode, float *c, long ldc, const float *bias)
{
    for (int v0 = 0; v0 < vectors; v0 += 4) {
        int nv = vectors - v0 < 4 ? vectors - v0 : 4;
        int blocks = (rows + rmax(nv) - 1) / rmax(nv), rm = (rows + blocks - 1) / blocks;
        for (int r0 = 0; r0 < rows; r0 += rm) {
            int r = rows - r0 < rm ? rows - r0 : rm;
            tile_any(r, nv, N, T, P, a + r0 * ar, an, at, ar, ap, b + 64 * v0, bn, bt, bp, mode, c + r0 * ldc + 16 * v0, ldc,
                     bias ? bias + 16 * v0 : 0);
        }
    }
}

// A conv + ReLU + 2x2 max pooling tile: 2 output rows x 2W columns, the reduction as tile()'s
// (A(t, dy, x, p) at a + t·at + dy·ady + x·ax + p·ap), each window's largest value and first
// winner taken from the accumulators as dpk_max_pool takes them (the same bits), so the conv
// output is never stored. index: output pixel (0, 0)'s; F filters, `down` floats an output row.
static inline __attribute__((always_inline)) void pooled_tile(const int W, const int NV, int T, int P,
    const char *a, long at, long ady, long ax, long ap, const char *b, long bt, long bp,
    const float *bias, int F, int down, int index, float *pooled, int *argmax)
{
    __m512 acc[2][12][2];
    UNROLL for (int dy = 0; dy < 2; dy++) UNROLL for (int x = 0; x < 2 * W; x++)
        UNROLL for (int v = 0; v < NV; v++) acc[dy][x][v] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        const char *ta = a + t * at, *tb = b + t * bt;
        for (int p = 0; p < P; p++) {
            __m512i w[2];
            UNROLL for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_si512(tb + p * bp + 64 * v);
            UNROLL for (int dy = 0; dy < 2; dy++) UNROLL for (int x = 0; x < 2 * W; x++) {
                int32_t pair;
                memcpy(&pair, ta + dy * ady + x * ax + p * ap, 4);
                __m512bh y = (__m512bh)_mm512_set1_epi32(pair);
                UNROLL for (int v = 0; v < NV; v++) acc[dy][x][v] = _mm512_dpbf16_ps(acc[dy][x][v], y, (__m512bh)w[v]);
            }
        }
    }
    const vi lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    UNROLL for (int v = 0; v < NV; v++) {
        const __m512 bv = _mm512_loadu_ps(bias + 16 * v), zero = _mm512_setzero_ps();
        UNROLL for (int j = 0; j < W; j++) {
            vf q = (vf)_mm512_max_ps(_mm512_add_ps(acc[0][2 * j][v], bv), zero), r = (vf)_mm512_max_ps(_mm512_add_ps(acc[0][2 * j + 1][v], bv), zero);
            vf e = (vf)_mm512_max_ps(_mm512_add_ps(acc[1][2 * j][v], bv), zero), d = (vf)_mm512_max_ps(_mm512_add_ps(acc[1][2 * j + 1][v], bv), zero);
            vi offset;
            _mm512_storeu_ps(pooled + j * F + 16 * v, (__m512)max_2x2_bf16(q, r, e, d, F, down, &offset));
            _mm512_storeu_si512(argmax + j * F + 16 * v, (__m512i)(lanes + (index + 2 * j * F + 16 * v) + offset));
        }
    }
}

// ---- The workspace ----------------------------------------------------------------------------

// One layer's bf16 buffers, carved from the caller's `work` (dpk_bf16_workspace bytes).
typedef struct {
    bf16 *wp;       // the kernel for the forward pass, [kh][p][f][2]
    bf16 *wb;       // the kernel as it is, in bf16
    uint32_t *wt;   // the kernel per row transposed, [kh][f/2][kw·in_c] pairs
    uint32_t *q;    // a chunk's input, each element paired with the one `stride` columns right
    bf16 *d;        // one image's output gradient
    uint32_t *d2;   // a chunk's output gradient, pairs of output columns, [n][oh][ow/2][f] pairs
    bf16 *x;        // the batch's input, [batch, in_h, in_w, in_c], and slack for the odd pair (last:
                    // the only part whose size depends on the batch)
} buffers;

static long align64(long bytes) { return (bytes + 63) / 64 * 64; }
static long pairs_forward(const dpk_conv *g) { return ((long)g->kernel * g->in_c + 1) / 2; }
static long pairs_columns(const dpk_conv *g) { return (g->out_w + 1) / 2; }
static long image_size(const dpk_conv *g) { return (long)g->in_h * g->in_w * g->in_c; }

// Images whose weight gradient one tile sums in its registers: as many as keep their paired input
// and output gradient within CHUNK_BYTES (in L2), so the tile's reduction is long and dw is
// written once a chunk. A function of the geometry: the same bits for a given batch.
enum { CHUNK_BYTES = 512 << 10, CHUNK_MAX = 16 };
static long paired_image_bytes(const dpk_conv *g) { return 4 * (image_size(g) + 16) + 4L * g->out_h * pairs_columns(g) * g->filters; }
static int chunk_images(const dpk_conv *g)
{
    const long n = CHUNK_BYTES / paired_image_bytes(g);
    return n < 1 ? 1 : n > CHUNK_MAX ? CHUNK_MAX : (int)n;
}

static buffers carve(const dpk_conv *g, void *work, int max_batch, long *total)
{
    const long kc = (long)g->kernel * g->in_c, F = g->filters;
    const long sizes[] = {
        2 * (g->kernel * pairs_forward(g) * F * 2),
        2 * (g->kernel * kc * F),
        4 * (g->kernel * kc * F / 2),
        4 * (image_size(g) + 16) * chunk_images(g),
        2 * ((long)g->out_h * g->out_w * F),
        4 * ((long)g->out_h * pairs_columns(g) * F) * chunk_images(g),
        2 * (max_batch * image_size(g) + 32),
    };
    char *p = work;
    void *parts[7];
    long offset = 0;
    for (int i = 0; i < 7; i++) {
        parts[i] = p ? p + offset : 0;
        offset += align64(sizes[i]);
    }
    if (total) *total = offset;
    return (buffers){parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]};
}

long dpk_bf16_workspace(const dpk_conv *g, int max_batch)
{
    long total;
    carve(g, 0, max_batch, &total);
    return total;
}

// The workspace holds a batch of max_batch images; the passes need only `batch` of them.
static buffers parts(const dpk_conv *g, void *work) { return carve(g, work, 1, 0); }

// x and its slack: the forward pass's odd pair reads one element past an image (× a zero weight).
static void convert_input(const dpk_conv *g, const float *in, buffers *b, int batch)
{
    const long n = batch * image_size(g);
    dpk_to_bf16(in, b->x, n);
    memset(b->x + n, 0, 64);
}

// ---- Forward ----------------------------------------------------------------------------------

static void pack_forward(const dpk_conv *g, const float *w, bf16 *wp)
{
    const long kc = (long)g->kernel * g->in_c, F = g->filters, P = pairs_forward(g);
    for (int kh = 0; kh < g->kernel; kh++)
        for (long p = 0; p < P; p++) {
            const float *row = w + (kh * kc + 2 * p) * F;
            interleave(row, 2 * p + 1 < kc ? row + F : 0, wp + ((kh * P + p) * F) * 2, F);
        }
}

static void forward_images(const dpk_conv *g, const bf16 *x, const bf16 *wp, const float *bias, float *out, int batch)
{
    const long row = (long)g->in_w * g->in_c, F = g->filters, P = pairs_forward(g);
    for (int n = 0; n < batch; n++) {
        const bf16 *image = x + n * image_size(g);
        for (int oh = 0; oh < g->out_h; oh++)
            tiles(g->out_w, F / 16, 1, g->kernel, P,
                  (const char *)(image + oh * g->stride * row), 0, 2 * row, 2L * g->stride * g->in_c, 4,
                  (const char *)wp, 0, P * F * 4, F * 4, g->linear ? MODE_BIAS : MODE_BIAS_RELU,
                  out + ((long)n * g->out_h + oh) * g->out_w * F, F, bias);
    }
}

// Conv + ReLU + 2x2 pooling of up to 32 filters in pooled_tile()s: 3 windows of 2 vectors (6 of 1)
// at a time, then one.
static void pooled_images(const dpk_conv *g, const bf16 *x, const bf16 *wp, const float *bias, float *pooled, int *argmax, int batch)
{
    const long row = (long)g->in_w * g->in_c, F = g->filters, P = pairs_forward(g), step = (long)g->stride * g->in_c;
    const int windows = g->out_w / 2, down = g->out_w * (int)F;
    for (int n = 0; n < batch; n++) {
        const bf16 *image = x + n * image_size(g);
        for (int y = 0; y < g->out_h / 2; y++) {
            const bf16 *a = image + 2L * y * g->stride * row;
            float *out = pooled + ((long)n * (g->out_h / 2) + y) * windows * F;
            int *arg = argmax + ((long)n * (g->out_h / 2) + y) * windows * F;
            const int index = 2 * y * down;
            int j = 0;
#define POOLED(W, NV) pooled_tile(W, NV, g->kernel, (int)P, (const char *)(a + 2 * j * step), 2 * row, 2L * g->stride * row, 2 * step, 4, \
                                  (const char *)wp, P * F * 4, F * 4, bias, (int)F, down, index + 2 * j * (int)F, out + j * F, arg + j * F)
            if (F == 16) {
                for (; j + 6 <= windows; j += 6) POOLED(6, 1);
                for (; j < windows; j++) POOLED(1, 1);
            } else {
                for (; j + 3 <= windows; j += 3) POOLED(3, 2);
                for (; j < windows; j++) POOLED(1, 2);
            }
#undef POOLED
        }
    }
}

void dpk_bf16_conv_forward(const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, void *work, int batch)
{
    buffers b = parts(g, work);
    convert_input(g, in, &b, batch);
    pack_forward(g, w, b.wp);
    forward_images(g, b.x, b.wp, bias, out, batch);
}

void dpk_bf16_conv_pool_forward(const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                                float *pooled, int *argmax, float *scratch, void *work, int batch)
{
    buffers b = parts(g, work);
    convert_input(g, in, &b, batch);
    pack_forward(g, w, b.wp);
    const long out = (long)(g->out_h / pool) * (g->out_w / pool) * g->filters;
    if (pool == 2 && g->filters <= 32) {
        pooled_images(g, b.x, b.wp, bias, pooled, argmax, batch);
        return;
    }
    for (int n = 0; n < batch; n++) {
        forward_images(g, b.x + n * image_size(g), b.wp, bias, scratch, 1);
        dpk_max_pool_avx512(scratch, pooled + n * out, argmax + n * out, 1, g->out_h, g->out_w, g->filters, pool);
    }
}

// ---- Backward ---------------------------------------------------------------------------------

// q[ih][iw][c] = (x[ih][iw][c], x[ih][iw + stride][c]), 0 past the row.
static void pair_columns(const dpk_conv *g, const bf16 *x, uint32_t *q)
{
    const long row = (long)g->in_w * g->in_c, shift = (long)g->stride * g->in_c;
    const long inside = row > shift ? row - shift : 0;
    for (int ih = 0; ih < g->in_h; ih++) {
        const bf16 *s = x + ih * row;
        uint32_t *d = q + ih * row;
        long i = 0;
        for (; i + 16 <= inside; i += 16) {
            __m512i lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
            __m512i hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i + shift)));
            _mm512_storeu_si512(d + i, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
        for (; i < inside; i++) d[i] = s[i] | (uint32_t)s[i + shift] << 16;
        for (long i = inside; i < row; i++) d[i] = s[i];
    }
}

// t[i] = column i of the 16 x 16 matrix of 32-bit elements m[0..15] (rows).
static void transpose16(__m512i m[16])
{
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(m[i], m[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(m[i], m[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int k = 0; k < 2; k++) {
            m[i + 2 * k] = _mm512_unpacklo_epi64(t[i + k], t[i + k + 2]);
            m[i + 2 * k + 1] = _mm512_unpackhi_epi64(t[i + k], t[i + k + 2]);
        }
    for (int i = 0; i < 16; i += 8)
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_i32x4(m[i + k], m[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_i32x4(m[i + k], m[i + k + 4], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        m[k] = _mm512_shuffle_i32x4(t[k], t[k + 8], 0x88);
        m[k + 8] = _mm512_shuffle_i32x4(t[k], t[k + 8], 0xdd);
    }
}

// wt[kh][p][j] = (w[kh][j][2p], w[kh][j][2p+1]): each kernel row's pairs of filters transposed,
// 16 x 16 pairs at a time (kw·in_c is a multiple of 16 here; 16 filters leave 8 pairs).
static void pack_transposed(const dpk_conv *g, const float *w, bf16 *wb, uint32_t *wt)
{
    const long kc = (long)g->kernel * g->in_c, half = g->filters / 2;
    dpk_to_bf16(w, wb, g->kernel * kc * g->filters);
    const uint32_t *pairs = (const uint32_t *)wb;
    for (int kh = 0; kh < g->kernel; kh++)
        for (long j0 = 0; j0 < kc; j0 += 16) {
            long p0 = 0;
            for (; p0 + 16 <= half; p0 += 16) {
                __m512i m[16];
                for (int i = 0; i < 16; i++) m[i] = _mm512_loadu_si512(pairs + (kh * kc + j0 + i) * half + p0);
                transpose16(m);
                for (int i = 0; i < 16; i++) _mm512_storeu_si512(wt + (kh * half + p0 + i) * kc + j0, m[i]);
            }
            for (long p = p0; p < half; p++)
                for (long j = j0; j < j0 + 16; j++) wt[(kh * half + p) * kc + j] = pairs[(kh * kc + j) * half + p];
        }
}

// din = the input gradient of the image whose bf16 output gradient is in b->d. Input row
// ih = oh·stride + kh takes dout row oh through kernel row kh: every (oh, kh) of the row in one
// tile, pairs of filters along the reduction.
static void input_gradient(const dpk_conv *g, const buffers *b, float *din)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters;
    memset(din, 0, sizeof(float) * image_size(g));
    const int s = g->stride, K = g->kernel;
    for (int ih = 0; ih < g->in_h; ih++) {
        const int first = ih - K + 1 > 0 ? (ih - K + 1 + s - 1) / s : 0, last = ih / s < g->out_h - 1 ? ih / s : g->out_h - 1;
        if (last < first) continue;
        tiles(g->out_w, kc / 16, 1, last - first + 1, F / 2,
              (const char *)(b->d + (long)first * g->out_w * F), 0, 2L * g->out_w * F, F * 2, 4,
              (const char *)(b->wt + (ih - first * s) * (F / 2) * kc), 0, -4L * s * (F / 2) * kc, kc * 4, MODE_ADD,
              din + ih * row, (long)s * g->in_c, 0);
    }
}

static uint32_t *chunk_q(const dpk_conv *g, const buffers *b, int n) { return b->q + n * (image_size(g) + 16); }
static uint32_t *chunk_d2(const dpk_conv *g, const buffers *b, int n) { return b->d2 + n * (g->out_h * pairs_columns(g) * g->filters); }

// One image's share of the backward pass: its paired input and output gradient into slot n of the
// chunk (for the weight gradient), and din (if given) = its input gradient. dout: FP32.
static void prepare_image(const dpk_conv *g, const buffers *b, int n, const bf16 *x, const float *dout, float *din)
{
    const long F = g->filters, P = pairs_columns(g);
    uint32_t *d2 = chunk_d2(g, b, n);
    for (int oh = 0; oh < g->out_h; oh++)
        for (long p = 0; p < P; p++) {
            const float *at = dout + ((long)oh * g->out_w + 2 * p) * F;
            interleave(at, 2 * p + 1 < g->out_w ? at + F : 0, (bf16 *)(d2 + (oh * P + p) * F), F);
        }
    pair_columns(g, x, chunk_q(g, b, n));
    if (!din) return;
    dpk_to_bf16(dout, b->d, (long)g->out_h * g->out_w * F);
    input_gradient(g, b, din);
}

// The same from a 2x2-pooled gradient, without the unpooled one: each window's gradient, where its
// ReLU output is positive, goes to its winner (argmax), and a window's two columns are a pair of
// d2 (and, with din, two pixels of d). Rows and a column past the last window get 0. The same bits
// as unpooling first; db += the gradient's column sums in dpk_unpool_relu's order.
static void prepare_pooled_image(const dpk_conv *g, const buffers *b, int n, const bf16 *x, const float *dpooled,
                                 const float *pooled, const int *argmax, float *db, float *din)
{
    const int F = g->filters, P = (int)pairs_columns(g), ow = g->out_w / 2, oh = g->out_h / 2;
    uint32_t *d2 = chunk_d2(g, b, n);
    bf16 *d = din ? b->d : 0;
    memset(d2 + 2L * oh * P * F, 0, 4L * (g->out_h - 2 * oh) * P * F);
    if (d) memset(d + 2L * oh * g->out_w * F, 0, 2L * (g->out_h - 2 * oh) * g->out_w * F);
    for (int y = 0; y < 2 * oh && ow < P; y++) {
        memset(d2 + ((long)y * P + ow) * F, 0, 4L * F);
        if (d) memset(d + ((long)y * g->out_w + 2 * ow) * F, 0, 2L * F);
    }
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int c0 = 0; c0 < F; c0 += 64) {
        const int vectors = (F - c0) / 16 < 4 ? (F - c0) / 16 : 4;
        __m512 sum[4];
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) sum[j] = _mm512_loadu_ps(db + c0 + 16 * j);
        for (int y = 0; y < oh; y++)
            for (int xw = 0; xw < ow; xw++) {
                const long q = ((long)y * ow + xw) * F + c0;
                UNROLL for (int j = 0; j < 4; j++) if (j < vectors) {
                    const __m512 gp = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(pooled + q + 16 * j), _mm512_setzero_ps(), _CMP_GT_OQ),
                                                          _mm512_loadu_ps(dpooled + q + 16 * j));
                    sum[j] = _mm512_add_ps(sum[j], gp);
                    // bf16(gp) as the low and as the high half of a pair: the window's winner takes one.
                    const __m256i half = (__m256i)_mm512_cvtneps_pbh(gp);
                    const __m512i low = _mm512_cvtepu16_epi32(half), high = _mm512_slli_epi32(low, 16);
                    const __m512i index = _mm512_sub_epi32(_mm512_loadu_si512(argmax + q + 16 * j), lanes);
                    for (int dy = 0; dy < 2; dy++) {
                        const int at = ((2 * y + dy) * g->out_w + 2 * xw) * F + c0 + 16 * j;
                        const __mmask16 left = _mm512_cmpeq_epi32_mask(index, _mm512_set1_epi32(at)),
                                        right = _mm512_cmpeq_epi32_mask(index, _mm512_set1_epi32(at + F));
                        _mm512_storeu_si512(d2 + ((long)(2 * y + dy) * P + xw) * F + c0 + 16 * j,
                                            _mm512_mask_mov_epi32(_mm512_maskz_mov_epi32(left, low), right, high));
                        if (d) {
                            _mm256_storeu_si256((__m256i *)(d + at), _mm256_maskz_mov_epi16(left, half));
                            _mm256_storeu_si256((__m256i *)(d + at + F), _mm256_maskz_mov_epi16(right, half));
                        }
                    }
                }
            }
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) _mm512_storeu_ps(db + c0 + 16 * j, sum[j]);
    }
    pair_columns(g, x, chunk_q(g, b, n));
    if (din) input_gradient(g, b, din);
}

// dw (+)= the weight gradient of the chunk's `count` images, summed in the tiles' registers.
static void chunk_weights(const dpk_conv *g, const buffers *b, int count, float *dw, int accumulate)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters, P = pairs_columns(g);
    for (int kh = 0; kh < g->kernel; kh++)
        tiles(kc, F / 16, count, g->out_h, P,
              (const char *)(b->q + kh * row), 4L * (image_size(g) + 16), 4L * g->stride * row, 4, 8L * g->stride * g->in_c,
              (const char *)b->d2, 4L * g->out_h * P * F, P * F * 4, F * 4, accumulate ? MODE_ADD : MODE_STORE,
              dw + kh * kc * F, F, 0);
}

void dpk_bf16_conv_backward(const dpk_conv *g, const float *dout, const float *w, void *work, float *dw, float *din, int batch)
{
    buffers b = parts(g, work);
    if (din) pack_transposed(g, w, b.wb, b.wt);
    const long out = (long)g->out_h * g->out_w * g->filters;
    const int chunk = chunk_images(g);
    for (int n0 = 0; n0 < batch; n0 += chunk) {
        const int count = batch - n0 < chunk ? batch - n0 : chunk;
        for (int n = n0; n < n0 + count; n++)
            prepare_image(g, &b, n - n0, b.x + n * image_size(g), dout + n * out, din ? din + n * image_size(g) : 0);
        chunk_weights(g, &b, count, dw, n0 > 0);
    }
}

// The FP32 kernels' unpooling (fused_impl.h): the pooled gradient routed to each window's winner
// where the ReLU output is positive, zeros elsewhere, db += its column sums.
void dpk_unpool_relu_avx512(const float *dpooled, const float *pooled, const int *argmax, float *dconv, float *db,
                            int h, int w, int c, int p);

void dpk_bf16_conv_pool_backward(const dpk_conv *g, int pool, const float *pooled, const int *argmax, const float *dpooled,
                                 const float *w, float *scratch, void *work, float *dw, float *db, float *din, int batch)
{
    buffers b = parts(g, work);
    const long out = (long)(g->out_h / pool) * (g->out_w / pool) * g->filters;
    memset(db, 0, sizeof(float) * g->filters);
    if (din) pack_transposed(g, w, b.wb, b.wt);
    const int chunk = chunk_images(g);
    for (int n0 = 0; n0 < batch; n0 += chunk) {
        const int count = batch - n0 < chunk ? batch - n0 : chunk;
        for (int n = n0; n < n0 + count; n++) {
            const bf16 *x = b.x + n * image_size(g);
            float *image_din = din ? din + n * image_size(g) : 0;
            if (pool == 2) {
                prepare_pooled_image(g, &b, n - n0, x, dpooled + n * out, pooled + n * out, argmax + n * out, db, image_din);
                continue;
            }
            dpk_unpool_relu_avx512(dpooled + n * out, pooled + n * out, argmax + n * out, scratch, db, g->out_h, g->out_w, g->filters, pool);
            prepare_image(g, &b, n - n0, x, scratch, image_din);
        }
        chunk_weights(g, &b, count, dw, n0 > 0);
    }
}

// ---- The limit ----------------------------------------------------------------------------------

volatile float dpk_bf16_sink;

// Twelve independent vdpbf16ps chains; returns FLOPs done (64 per instruction).
static double dot_loop(long iterations)
{
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), y = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (long n = 0; n < iterations; n++) {
        UNROLL for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
        __asm__ volatile("" : "+v"(x));  // one loop-carried input, so the loop is not folded
    }
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += acc[i][0];
    dpk_bf16_sink = sum;
    return 64.0 * 12 * iterations;
}

// In thread CPU seconds, as dpk_fma_peak.
double dpk_bf16_peak(double seconds)
{
    double flops = 0, start = dpk_thread_seconds(), elapsed;
    do flops += dot_loop(1 << 20);
    while ((elapsed = dpk_thread_seconds() - start) < seconds);
    return flops / elapsed;
}

#pragma clang attribute pop
#else
double dpk_bf16_peak(double seconds) { (void)seconds; return 0; }
#include "include/ckernels.h"
int dpk_bf16_available(void) { return 0; }
long dpk_bf16_workspace(const dpk_conv *g, int max_batch) { (void)g; (void)max_batch; return 0; }
void dpk_to_bf16(const float *src, uint16_t *dst, long n) { (void)src; (void)dst; (void)n; __builtin_trap(); }
void dpk_round_bf16(const float *src, float *dst, long n) { (void)src; (void)dst; (void)n; __builtin_trap(); }
void dpk_bf16_conv_forward(const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, void *work, int batch) { __builtin_trap(); }
void dpk_bf16_conv_pool_forward(const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                                float *pooled, int *argmax, float *scratch, void *work, int batch) { __builtin_trap(); }
void dpk_bf16_conv_backward(const dpk_conv *g, const float *dout, const float *w, void *work, float *dw, float *din, int batch) { __builtin_trap(); }
void dpk_bf16_conv_pool_backward(const dpk_conv *g, int pool, const float *pooled, const int *argmax, const float *dpooled,
                                 const float *w, float *scratch, void *work, float *dw, float *db, float *din, int batch) { __builtin_trap(); }
#endif
