// The conv kernels, written once over vectors of VL floats and compiled once per instruction set
// (conv_avx512.c, conv_avx2.c, conv_portable.c define VL, NVMAX, RMAX1..RMAX<NVMAX> and FN before including it).
//
// Every pass is one register-tiled micro-kernel, a batch-reduce GEMM over strided views of NHWC:
//   acc[r][v] = Σ_t Σ_k A[t·at + r·ar + k·ak] · B[t·bt + k·ldb + v·VL]      r < R, v < NV
// forward:        r = output column, k = (kw, c) of one kernel row, t = kernel row; B = HWIO kernel
// weight grad:    r = (kw, c) of kernel row kh, k = output column, t = output row; B = dout
// input grad:     r = output column, k = filter, one kernel row; B = the kernel transposed per row,
//                 and the tile is added into the R overlapping input windows it touches, in order.
// Where output rows are shorter than a tile, r runs over output pixels across rows (pixel_tiles).
// So nothing is unfolded (no im2col) and no column matrix is zeroed; a forward sum starts from the
// bias (an add fewer an output: 10% of a fused 3x3 first layer's tile on Zen 3) and ReLU rides on the store.
#include <stdlib.h>
#include <string.h>

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int vi __attribute__((vector_size(VL * 4)));

static inline vf FN(load)(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void FN(store)(float *p, vf v) { memcpy(p, &v, sizeof v); }
// Not `(vf){0} + x`: adding +0 is not the identity for -0, so the compiler keeps a scalar add before
// every broadcast (a third of the AVX2 tile's instructions). Lane by lane it is one vbroadcastss.
static inline vf FN(splat)(float x)
{
    vf v;
    for (int i = 0; i < VL; i++) v[i] = x;
    return v;
}

enum { MODE_BIAS_RELU, MODE_STORE, MODE_ADD, MODE_BIAS };

// SwiftPM builds C at -O2, whose unrolling limits would leave the accumulators in memory: unroll
// the loops over tile rows and vectors by hand.
#define UNROLL _Pragma("clang loop unroll(full)")

// R and NV are constants at every call site, so the accumulators live in registers.
// Row r of A starts at r·ar and of C at r·ldc, or at ao[r] and co[r] when G (a tile whose rows span
// output rows).
static inline __attribute__((always_inline)) void FN(tile)(
    const int G, const int R, const int NV, int T, int K,
    const float *a, long at, long ar, const long *ao, long ak,
    const float *b, long bt, long ldb,
    int mode, float *c, long ldc, const long *co, const float *bias)
{
    vf acc[RMAX1][NVMAX], start[NVMAX];
    long off[RMAX1];
    UNROLL for (int v = 0; v < NV; v++) start[v] = mode == MODE_BIAS_RELU || mode == MODE_BIAS ? FN(load)(bias + v * VL) : (vf){0};
    UNROLL for (int r = 0; r < R; r++) {
        off[r] = G ? ao[r] : r * ar;
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = start[v];
    }
#define C_ROW(r) (c + (G ? co[r] : (r) * ldc))
    for (int t = 0; t < T; t++) {
        const float *at_ = a + t * at, *bt_ = b + t * bt;
        for (int k = 0; k < K; k++) {
            vf w[NVMAX];
            UNROLL for (int v = 0; v < NV; v++) w[v] = FN(load)(bt_ + k * ldb + v * VL);
            UNROLL for (int r = 0; r < R; r++) {
                vf x = FN(splat)(at_[off[r] + k * ak]);
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] += x * w[v];
            }
        }
    }
    if (mode == MODE_BIAS_RELU) {
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int v = 0; v < NV; v++) FN(store)(C_ROW(r) + v * VL, __builtin_elementwise_max(acc[r][v], (vf){0}));
    } else if (mode == MODE_BIAS || mode == MODE_STORE) {
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int v = 0; v < NV; v++) FN(store)(C_ROW(r) + v * VL, acc[r][v]);
    } else {
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int v = 0; v < NV; v++) {
                float *p = C_ROW(r) + v * VL;
                FN(store)(p, FN(load)(p) + acc[r][v]);
            }
    }
}
#undef C_ROW

#define TILE_ARGS T, K, a, at, ar, ao, ak, b, bt, ldb, mode, c, ldc, co, bias
#define CASE_R(nv, r) case r: if (ao) FN(tile)(1, r, nv, TILE_ARGS); else FN(tile)(0, r, nv, TILE_ARGS); return;

// CASE(nv, r) for every register tile of this instruction set: R up to RMAX(NV), NV up to NVMAX;
// a (R, NV) outside them traps.
#if RMAX2 > 6
#define CASES_R2_WIDE(CASE) CASE(2, 7) CASE(2, 8) CASE(2, 9) CASE(2, 10) CASE(2, 11) CASE(2, 12)
#else
#define CASES_R2_WIDE(CASE)
#endif
#if NVMAX > 2
#define CASES_NV34(CASE) \
    case 3: switch (R) { CASE(3, 1) CASE(3, 2) CASE(3, 3) CASE(3, 4) CASE(3, 5) CASE(3, 6) CASE(3, 7) CASE(3, 8) } break; \
    case 4: switch (R) { CASE(4, 1) CASE(4, 2) CASE(4, 3) CASE(4, 4) CASE(4, 5) CASE(4, 6) } break;
#else
#define CASES_NV34(CASE)
#endif
#define TILE_SHAPES(CASE) do { switch (NV) { \
    case 1: switch (R) { CASE(1, 1) CASE(1, 2) CASE(1, 3) CASE(1, 4) CASE(1, 5) CASE(1, 6) \
                         CASE(1, 7) CASE(1, 8) CASE(1, 9) CASE(1, 10) CASE(1, 11) CASE(1, 12) } break; \
    case 2: switch (R) { CASE(2, 1) CASE(2, 2) CASE(2, 3) CASE(2, 4) CASE(2, 5) CASE(2, 6) CASES_R2_WIDE(CASE) } break; \
    CASES_NV34(CASE) } \
    __builtin_trap(); } while (0)

// One instantiation per (R, NV) and row addressing.
static void FN(tile_any)(int R, int NV, int T, int K, const float *a, long at, long ar, const long *ao, long ak,
                         const float *b, long bt, long ldb, int mode, float *c, long ldc, const long *co, const float *bias)
{
    TILE_SHAPES(CASE_R);
}

#if NVMAX == 2
#define RMAX3 0
#endif
#if NVMAX < 4
#define RMAX4 0
#endif
static int FN(rmax)(int nv) { return nv == 1 ? RMAX1 : nv == 2 ? RMAX2 : nv == 3 ? RMAX3 : RMAX4; }

// Row blocks of nearly equal size that fit the registers: 8 rows as 4 + 4, not 6 + a weak 2.
static int FN(row_block)(int rows, int nv)
{
    int blocks = (rows + FN(rmax)(nv) - 1) / FN(rmax)(nv);
    return (rows + blocks - 1) / blocks;
}

// B as the tiles read it: element (t, k) of the column block at vector v0 lies at
// b + (row + k)·ldb + t·bt + v0·VL; or, packed (`packed` rows in all, each block of NVMAX vectors
// stored whole, its nv·VL-float rows contiguous), at b + v0·VL·packed + (row + t·bt/ldb + k)·nv·VL.
// Packed, a tile streams its B line after line instead of one line in every F / (NVMAX·VL):
// AVX2's 16-float tiles against conv2's 64 filters.
typedef struct { const float *b; long bt, ldb, row, packed; } FN(bmat);

static inline const float *FN(block)(FN(bmat) m, int v0, int nv, long *bt, long *ldb)
{
    if (!m.packed) {
        *bt = m.bt, *ldb = m.ldb;
        return m.b + m.row * m.ldb + v0 * VL;
    }
    *ldb = nv * VL, *bt = m.bt / m.ldb * *ldb;
    return m.b + v0 * VL * m.packed + m.row * *ldb;
}

// Where element (r, c) of a rows x columns matrix lies packed.
static inline long FN(packed_at)(long rows, long columns, long r, long c)
{
    const long width = NVMAX * VL, start = c / width * width, w = columns - start < width ? columns - start : width;
    return start * rows + r * w + (c - start);
}

// Calls tile_any over a span of `rows` tile rows and `vectors` columns of VL floats: column
// blocks of up to NVMAX vectors, row blocks that fit the registers.
static void FN(tiles)(int rows, int vectors, int T, int K, const float *a, long at, long ar, long ak,
                      FN(bmat) bm, int mode, float *c, long ldc, const float *bias)
{
    for (int v0 = 0; v0 < vectors; v0 += NVMAX) {
        int nv = vectors - v0 < NVMAX ? vectors - v0 : NVMAX, rm = FN(row_block)(rows, nv);
        long bt, ldb;
        const float *b = FN(block)(bm, v0, nv, &bt, &ldb);
        for (int r0 = 0; r0 < rows; r0 += rm) {
            int r = rows - r0 < rm ? rows - r0 : rm;
            FN(tile_any)(r, nv, T, K, a + r0 * ar, at, ar, 0, ak, b, bt, ldb, mode,
                         c + r0 * ldc + v0 * VL, ldc, 0, bias ? bias + v0 * VL : 0);
        }
    }
}

// As tiles, over the pixels of a width-wide image: pixel p's row of A starts at a_row·(p / width) +
// a_column·(p % width) and of C at c_row·(p / width) + c_column·(p % width). A tile spans output rows,
// so short rows (8 wide for the reference model's conv2) still fill the registers.
typedef struct { long a_row, a_column, c_row, c_column; } FN(pixels);

static void FN(pixel_tiles)(int pixels, int width, FN(pixels) at_pixel, int vectors, int T, int K,
                            const float *a, long at, long ak, FN(bmat) bm, int mode, float *c, const float *bias)
{
    // Every tile's row offsets are computed once per call, not once per column block (a tenth of
    // AVX2's input gradient on the reference model's conv2), on the stack: taller images in parts.
    enum { MOST = 2048 };
    if (pixels > MOST && pixels > width) {
        const int rows = MOST / width > 0 ? MOST / width : 1;
        FN(pixel_tiles)(rows * width, width, at_pixel, vectors, T, K, a, at, ak, bm, mode, c, bias);
        FN(pixel_tiles)(pixels - rows * width, width, at_pixel, vectors, T, K, a + rows * at_pixel.a_row, at, ak, bm, mode,
                        c + rows * at_pixel.c_row, bias);
        return;
    }
    long ao[pixels], co[pixels];
    for (int i = 0, y = 0, x = 0; i < pixels; i++) {
        ao[i] = y * at_pixel.a_row + x * at_pixel.a_column;
        co[i] = y * at_pixel.c_row + x * at_pixel.c_column;
        if (++x == width) x = 0, y++;
    }
    for (int v0 = 0; v0 < vectors; v0 += NVMAX) {
        int nv = vectors - v0 < NVMAX ? vectors - v0 : NVMAX, rm = FN(row_block)(pixels, nv);
        long bt, ldb;
        const float *b = FN(block)(bm, v0, nv, &bt, &ldb);
        for (int r0 = 0; r0 < pixels; r0 += rm) {
            int r = pixels - r0 < rm ? pixels - r0 : rm;
            FN(tile_any)(r, nv, T, K, a, at, 0, ao + r0, ak, b, bt, ldb, mode,
                         c + v0 * VL, 0, co + r0, bias ? bias + v0 * VL : 0);
        }
    }
}

// Whether tiles over the image's pixels fill more registers than tiles within an output row.
static int FN(spans_rows)(const dpk_conv *g, int vectors)
{
    int nv = vectors < NVMAX ? vectors : NVMAX;
    return FN(row_block)(g->out_h * g->out_w, nv) > FN(row_block)(g->out_w, nv);
}

// The HWIO kernel as the forward tiles read it: packed, in a buffer this thread keeps, when its
// filters span more than one column block (and the buffer could be had).
static FN(bmat) FN(forward_weights)(const dpk_conv *g, const float *w)
{
    static _Thread_local float *buffer;
    static _Thread_local long capacity;
    const long kc = (long)g->kernel * g->in_c, F = g->filters, rows = g->kernel * kc;
    FN(bmat) unpacked = {w, kc * F, F, 0, 0};
    if (F / VL <= NVMAX) return unpacked;
    if (rows * F > capacity) {
        free(buffer);
        buffer = aligned_alloc(64, (sizeof(float) * rows * F + 63) / 64 * 64);  // whole vectors in a cache line
        capacity = buffer ? rows * F : 0;
        if (!buffer) return unpacked;
    }
    for (long r = 0; r < rows; r++)
        for (long f = 0; f < F; f++) buffer[FN(packed_at)(rows, F, r, f)] = w[r * F + f];
    return (FN(bmat)){buffer, kc * F, F, 0, rows};
}

// A first layer's forward tile: R pixels of one output row, kernel rows of KWC = kernel·C floats
// (C channels), every address a constant offset from the row's start or the weights' (`w`, rows
// of NV·VL floats: the block's packed or only columns). Each output gets only 9 to 27 products, so
// a general tile's setup and runtime strides would cost as much as its FMAs.
static inline __attribute__((always_inline)) void FN(small_tile)(const int R, const int NV, const int KWC, const int C,
    int kernel, const float *a, long row, const float *w, const float *bias, int relu, float *c, long ldc)
{
    vf acc[RMAX1][NVMAX];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int v = 0; v < NV; v++) acc[r][v] = FN(load)(bias + v * VL);
    for (int t = 0; t < kernel; t++, a += row, w += KWC * NV * VL)
        _Pragma("clang loop unroll(disable)") for (int k = 0; k < KWC; k++) {
            vf wv[NVMAX];
            UNROLL for (int v = 0; v < NV; v++) wv[v] = FN(load)(w + k * NV * VL + v * VL);
            UNROLL for (int r = 0; r < R; r++) {
                vf x = FN(splat)(a[r * C + k]);
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] += x * wv[v];
            }
        }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int v = 0; v < NV; v++) FN(store)(c + r * ldc + v * VL, relu ? __builtin_elementwise_max(acc[r][v], (vf){0}) : acc[r][v]);
}

// One output row of a first layer (C channels, KWC = kernel·C) in tiles of RMAX(NV) pixels, then
// of half that; the last few pixels take the general tile.
static inline __attribute__((always_inline)) void FN(small_row)(const int NV, const int KWC, const int C, const dpk_conv *g,
    const float *a, long row, const float *w, const float *bias, float *c)
{
    const int relu = !g->linear, full = FN(rmax)(NV), half = full / 2;
    int x = 0;
    for (; x + full <= g->out_w; x += full) FN(small_tile)(full, NV, KWC, C, g->kernel, a + x * C, row, w, bias, relu, c + x * g->filters, g->filters);
    for (; x + half <= g->out_w; x += half) FN(small_tile)(half, NV, KWC, C, g->kernel, a + x * C, row, w, bias, relu, c + x * g->filters, g->filters);
    if (x < g->out_w)
        FN(tile_any)(g->out_w - x, NV, g->kernel, KWC, a + x * C, row, C, 0, 1, w, KWC * NV * VL, NV * VL,
                     relu ? MODE_BIAS_RELU : MODE_BIAS, c + x * g->filters, g->filters, 0, bias);
}

#define SMALL_ROWS(nv, kwc, ch) for (int oh = 0; oh < g->out_h; oh++) \
    FN(small_row)(nv, kwc, ch, g, image + oh * row, row, b, bias + v0 * VL, o + (long)oh * g->out_w * F + v0 * VL); break;
#define SMALL_SHAPES(nv) switch (g->kernel * 16 + g->in_c) { \
    case 3 * 16 + 1: SMALL_ROWS(nv, 3, 1) case 5 * 16 + 1: SMALL_ROWS(nv, 5, 1) case 3 * 16 + 3: SMALL_ROWS(nv, 9, 3) } break;

// Whether small_image takes the geometry: stride 1, one or three channels, 3x3 or 5x5.
static int FN(small_fits)(const dpk_conv *g)
{
    return g->stride == 1 && ((g->in_c == 1 && (g->kernel == 3 || g->kernel == 5)) || (g->in_c == 3 && g->kernel == 3));
}

// Whether small_image takes the geometry with these weights: each column block's rows contiguous.
static int FN(small_takes)(const dpk_conv *g, FN(bmat) w) { return FN(small_fits)(g) && (g->filters / VL <= NVMAX || w.packed); }

static void FN(small_image)(const dpk_conv *g, const float *image, FN(bmat) w, const float *bias, float *o)
{
    const long row = (long)g->in_w * g->in_c, F = g->filters;
    for (int v0 = 0; v0 < F / VL; v0 += NVMAX) {
        int nv = F / VL - v0 < NVMAX ? F / VL - v0 : NVMAX;
        long bt, ldb;
        const float *b = FN(block)(w, v0, nv, &bt, &ldb);
        switch (nv) {
        case 1: SMALL_SHAPES(1)
        case 2: SMALL_SHAPES(2)
#if NVMAX > 2
        case 3: SMALL_SHAPES(3)
        case 4: SMALL_SHAPES(4)
#endif
        }
    }
}
#undef SMALL_SHAPES
#undef SMALL_ROWS

static void FN(forward_images)(const dpk_conv *g, const float *in, FN(bmat) w, const float *bias, float *out, int batch)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters;
    const int mode = g->linear ? MODE_BIAS : MODE_BIAS_RELU;
    for (int n = 0; n < batch; n++) {
        const float *image = in + n * g->in_h * row;
        float *o = out + (long)n * g->out_h * g->out_w * F;
        if (FN(small_takes)(g, w))
            FN(small_image)(g, image, w, bias, o);
        else if (FN(spans_rows)(g, F / VL))
            FN(pixel_tiles)(g->out_h * g->out_w, g->out_w, (FN(pixels)){g->stride * row, (long)g->stride * g->in_c, g->out_w * F, F},
                            F / VL, g->kernel, kc, image, row, 1, w, mode, o, bias);
        else
            for (int oh = 0; oh < g->out_h; oh++)
                FN(tiles)(g->out_w, F / VL, g->kernel, kc,
                          image + oh * g->stride * row, row, (long)g->stride * g->in_c, 1,
                          w, mode, o + (long)oh * g->out_w * F, F, bias);
    }
}

void FN(dpk_conv_forward)(const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, int batch)
{
    FN(forward_images)(g, in, FN(forward_weights)(g, w), bias, out, batch);
}

// dw (+)= this image's share, HWIO.
static void FN(weights_image)(const dpk_conv *g, const float *image, const float *d, float *dw, int accumulate)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters;
    const int nv = F / VL < NVMAX ? F / VL : NVMAX, rows = g->kernel * kc;
    // A first layer's kernel row is a few floats (3 of a 3x3 on one channel): tiles whose rows run
    // over every kernel row fill the registers, where one kernel row's tile would hold 3 rows.
    if (rows <= 4 * RMAX1 && FN(row_block)(rows, nv) > FN(row_block)(kc, nv)) {
        long ao[4 * RMAX1], co[4 * RMAX1];
        for (int i = 0; i < rows; i++) ao[i] = i / kc * row + i % kc, co[i] = i * F;
        for (int v0 = 0; v0 < F / VL; v0 += NVMAX) {
            int n = F / VL - v0 < NVMAX ? F / VL - v0 : NVMAX, rm = FN(row_block)(rows, n);
            for (int r0 = 0; r0 < rows; r0 += rm)
                FN(tile_any)(rows - r0 < rm ? rows - r0 : rm, n, g->out_h, g->out_w, image, g->stride * row, 0, ao + r0,
                             (long)g->stride * g->in_c, d + v0 * VL, g->out_w * F, F, accumulate ? MODE_ADD : MODE_STORE,
                             dw + v0 * VL, 0, co + r0, 0);
        }
        return;
    }
    for (int kh = 0; kh < g->kernel; kh++)
        FN(tiles)(kc, F / VL, g->out_h, g->out_w,
                  image + kh * row, g->stride * row, 1, (long)g->stride * g->in_c,
                  (FN(bmat)){d, g->out_w * F, F, 0, 0}, accumulate ? MODE_ADD : MODE_STORE,
                  dw + kh * kc * F, F, 0);
}

void FN(dpk_conv_backward_weights)(const dpk_conv *g, const float *in, const float *dout, float *dw, int batch)
{
    // Image by image, so the sum's order depends on the sub-batch only.
    for (int n = 0; n < batch; n++)
        FN(weights_image)(g, in + (long)n * g->in_h * g->in_w * g->in_c, dout + (long)n * g->out_h * g->out_w * g->filters, dw, n > 0);
}

// Whether the input gradient's B, the transposed kernel, is packed: when kernel·in_c spans more than
// one column block.
static int FN(packs_transpose)(const dpk_conv *g) { return (long)g->kernel * g->in_c / VL > NVMAX; }

// wt[kh][f][j] = w[kh][j][f]: each kernel row as a [filters, kernel·in_c] matrix, all of them one
// [kernel·filters, kernel·in_c] matrix, packed when `packed` (transpose_kernel: when packs_transpose).
static void FN(transpose_kernel_as)(const dpk_conv *g, const float *w, float *wt, int packed)
{
    const long kc = (long)g->kernel * g->in_c, F = g->filters, rows = g->kernel * F;
    for (int kh = 0; kh < g->kernel; kh++)
        for (long j = 0; j < kc; j++)
            for (long f = 0; f < F; f++)
                wt[packed ? FN(packed_at)(rows, kc, kh * F + f, j) : (kh * F + f) * kc + j] = w[(kh * kc + j) * F + f];
}

static void FN(transpose_kernel)(const dpk_conv *g, const float *w, float *wt) { FN(transpose_kernel_as)(g, w, wt, FN(packs_transpose)(g)); }

// image = this image's input gradient (overwritten).
static void FN(input_image)(const dpk_conv *g, const float *d, const float *wt, float *image)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters;
    const long packed = FN(packs_transpose)(g) ? g->kernel * F : 0;
    memset(image, 0, sizeof(float) * g->in_h * row);
    if (FN(spans_rows)(g, kc / VL))
        for (int kh = 0; kh < g->kernel; kh++)
            FN(pixel_tiles)(g->out_h * g->out_w, g->out_w, (FN(pixels)){g->out_w * F, F, g->stride * row, (long)g->stride * g->in_c},
                            kc / VL, 1, F, d, 0, 1, (FN(bmat)){wt, 0, kc, kh * F, packed}, MODE_ADD, image + kh * row, 0);
    else
        for (int kh = 0; kh < g->kernel; kh++)
            for (int oh = 0; oh < g->out_h; oh++)
                FN(tiles)(g->out_w, kc / VL, 1, F,
                          d + (long)oh * g->out_w * F, 0, F, 1,
                          (FN(bmat)){wt, 0, kc, kh * F, packed}, MODE_ADD,
                          image + (oh * g->stride + kh) * row, (long)g->stride * g->in_c, 0);
}

void FN(dpk_conv_backward_input)(const dpk_conv *g, const float *dout, const float *w, float *wt, float *din, int batch)
{
    FN(transpose_kernel)(g, w, wt);
    for (int n = 0; n < batch; n++)
        FN(input_image)(g, dout + (long)n * g->out_h * g->out_w * g->filters, wt, din + (long)n * g->in_h * g->in_w * g->in_c);
}

void FN(dpk_relu_backward_bias)(float *grad, const float *out, int rows, int columns, float *db)
{
    for (int j = 0; j < columns; j++) db[j] = 0;
    int vectors = columns / VL * VL;
    for (int r = 0; r < rows; r++) {
        float *g = grad + (long)r * columns;
        const float *o = out + (long)r * columns;
        int j = 0;
        for (; j < vectors; j += VL) {
            vf gv = FN(load)(g + j);
            gv = (vf)((vi)gv & (FN(load)(o + j) > 0));
            FN(store)(g + j, gv);
            FN(store)(db + j, FN(load)(db + j) + gv);
        }
        for (; j < columns; j++) {
            if (o[j] <= 0) g[j] = 0;
            db[j] += g[j];
        }
    }
}

volatile float FN(fma_sink);

// Twelve independent chains hide the FMA latency; returns FLOPs done.
double FN(fma_loop)(long iterations)
{
    vf acc[12], x = FN(splat)(0.999999f), y = FN(splat)(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = FN(splat)((float)i);
    for (long n = 0; n < iterations; n++)
        UNROLL for (int i = 0; i < 12; i++) acc[i] = acc[i] * x + y;
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += acc[i][0];
    FN(fma_sink) = sum;  // keeps the loop alive
    return 2.0 * VL * 12 * iterations;
}
