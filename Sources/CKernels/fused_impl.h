// Conv + bias + ReLU + max pooling, image by image (Winograd's kernels where they fit): one image's conv output (and its gradient;
// Winograd's weight gradient takes a chunk of images' gradients, within 256 KB) lives in a small buffer that stays in cache,
// instead of a whole batch's going through memory four times. Included after conv_impl.h, pool_impl.h and winograd_impl.h;
// filters are a multiple of VL.

// A first layer's conv + ReLU + 2x2 max pooling in registers: a tile of 2 output rows x 2P columns
// (a + x·C + dy·row reads the input under output pixel (dy, x)), each window's largest value and its
// first winner taken from the accumulators as dpk_max_pool takes them (the same bits), so the conv
// output (mnist_convnet's 26x26x32 floats, twice L1) is never stored. first: the indexes of output
// pixel (0, 0)'s first VL filters (kept as a vector: a broadcast costs an FMA slot on Zen 3).
static inline __attribute__((always_inline)) void FN(pooled_tile)(const int P, const int NV, const int KWC, const int C,
    int kernel, const float *a, long row, const float *w, const float *bias, long F, long down, vi first,
    float *pooled, int *argmax)
{
    vf acc[2][RMAX1 / 2][NVMAX];
    UNROLL for (int dy = 0; dy < 2; dy++) UNROLL for (int x = 0; x < 2 * P; x++) UNROLL for (int v = 0; v < NV; v++) acc[dy][x][v] = FN(load)(bias + v * VL);
#define POOLED_TAP(k) { \
        vf wv[NVMAX]; \
        UNROLL for (int v = 0; v < NV; v++) wv[v] = FN(load)(w + (k) * NV * VL + v * VL); \
        UNROLL for (int dy = 0; dy < 2; dy++) UNROLL for (int x = 0; x < 2 * P; x++) { \
            vf xv = FN(splat)(a[dy * row + x * C + (k)]); \
            UNROLL for (int v = 0; v < NV; v++) acc[dy][x][v] += xv * wv[v]; \
        } }
    // A 3x3 kernel of one channel unrolled whole where the tile holds 8 accumulators (AVX2's):
    // with 9 products an output, the loops' own work cost 10% on Zen 3. Wider tiles (AVX-512's 24
    // accumulators) would spill the weights clang hoists; larger kernels run as fast rolled.
    if (KWC == 3 && 4 * P * NV <= 8)
        UNROLL for (int t = 0; t < 3; t++, a += row, w += KWC * NV * VL) UNROLL for (int k = 0; k < 3; k++) POOLED_TAP(k)
    else
        for (int t = 0; t < kernel; t++, a += row, w += KWC * NV * VL)
            _Pragma("clang loop unroll(disable)") for (int k = 0; k < KWC; k++) POOLED_TAP(k)
#undef POOLED_TAP
    UNROLL for (int v = 0; v < NV; v++) {
        const vf zero = {0};
        UNROLL for (int j = 0; j < P; j++) {
            vf q = __builtin_elementwise_max(acc[0][2 * j][v], zero), b = __builtin_elementwise_max(acc[0][2 * j + 1][v], zero);
            vf e = __builtin_elementwise_max(acc[1][2 * j][v], zero), d = __builtin_elementwise_max(acc[1][2 * j + 1][v], zero);
            vi offset;
            FN(store)(pooled + j * F + v * VL, FN(max_2x2_relu)(q, b, e, d, (int)F, (int)down, &offset));
            vi at = first + (int)(2 * j * F + v * VL) + offset;
            memcpy(argmax + j * F + v * VL, &at, sizeof at);
        }
    }
}

// One row of 2x2 windows of a first layer (small_image's shapes; ReLU): tiles of as many windows as
// fit the registers, then one at a time.
static inline __attribute__((always_inline)) void FN(pooled_row)(const int NV, const int KWC, const int C, const dpk_conv *g,
    const float *a, long row, const float *w, const float *bias, int index, float *pooled, int *argmax)
{
    const long F = g->filters, down = (long)g->out_w * F;
    const int windows = g->out_w / 2, most = FN(rmax)(NV) / 4;
    vi first;
    for (int i = 0; i < VL; i++) first[i] = index + i;
    int j = 0;
    for (; j + most <= windows; j += most, first += 2 * most * (int)F)
        FN(pooled_tile)(most, NV, KWC, C, g->kernel, a + 2 * j * C, row, w, bias, F, down, first, pooled + j * F, argmax + j * F);
    for (; j < windows; j++, first += 2 * (int)F)
        FN(pooled_tile)(1, NV, KWC, C, g->kernel, a + 2 * j * C, row, w, bias, F, down, first, pooled + j * F, argmax + j * F);
}

#define POOLED_ROWS(nv, kwc, ch) for (int y = 0; y < g->out_h / 2; y++) \
    FN(pooled_row)(nv, kwc, ch, g, image + 2 * y * row, row, b, bias + v0 * VL, (int)(2 * y * g->out_w * F + v0 * VL), \
                   pooled + y * (g->out_w / 2) * F + v0 * VL, argmax + y * (g->out_w / 2) * F + v0 * VL); break;
#define POOLED_SHAPES(nv) switch (g->kernel * 16 + g->in_c) { \
    case 3 * 16 + 1: POOLED_ROWS(nv, 3, 1) case 5 * 16 + 1: POOLED_ROWS(nv, 5, 1) case 3 * 16 + 3: POOLED_ROWS(nv, 9, 3) } break;

// One image of a first layer that small_takes with ReLU, pooled 2x2: pooled and argmax as dpk_max_pool writes them.
static void FN(pooled_image)(const dpk_conv *g, const float *image, FN(bmat) w, const float *bias, float *pooled, int *argmax)
{
    const long row = (long)g->in_w * g->in_c, F = g->filters;
    for (int v0 = 0; v0 < F / VL; v0 += NVMAX) {
        int nv = F / VL - v0 < NVMAX ? F / VL - v0 : NVMAX;
        long bt, ldb;
        const float *b = FN(block)(w, v0, nv, &bt, &ldb);
        switch (nv) {
        case 1: POOLED_SHAPES(1)
        case 2: POOLED_SHAPES(2)
#if NVMAX > 2
        case 3: POOLED_SHAPES(3)
        case 4: POOLED_SHAPES(4)
#endif
        }
    }
}
#undef POOLED_SHAPES
#undef POOLED_ROWS

void FN(dpk_conv_pool_forward)(const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                               float *pooled, int *argmax, float *scratch, int batch)
{
    const long image = (long)g->in_h * g->in_w * g->in_c, out = (long)(g->out_h / pool) * (g->out_w / pool) * g->filters;
    const int winograd = FN(dpk_winograd_fits)(g, DPK_FORWARD);
    const float *u = winograd ? FN(wino_forward_kernel)(g, w) : 0;
    const FN(bmat) weights = winograd ? (FN(bmat)){0} : FN(forward_weights)(g, w);
    const int in_registers = !winograd && pool == 2 && !g->linear && FN(small_takes)(g, weights);
    for (int n = 0; n < batch; n++) {
        if (in_registers) {
            FN(pooled_image)(g, in + n * image, weights, bias, pooled + n * out, argmax + n * out);
            continue;
        }
        if (winograd) FN(wino_forward)(g, in + n * image, u, bias, scratch, 1);
        else FN(forward_images)(g, in + n * image, weights, bias, scratch, 1);
        FN(dpk_max_pool)(scratch, pooled + n * out, argmax + n * out, 1, g->out_h, g->out_w, g->filters, pool);
    }
}

// dconv [h, w, c] = the pooled gradient at each window's winner, where the winner (the ReLU output)
// is positive, and zeros elsewhere; db += its column sums.
// Not static: conv_bf16.c's fused backward routes its pooled gradient with the AVX-512 one.
void FN(dpk_unpool_relu)(const float *dpooled, const float *pooled, const int *argmax, float *dconv, float *db,
                            int h, int w, int c, int p)
{
    const int oh = h / p, ow = w / p;
    vi lanes;
    for (int i = 0; i < VL; i++) lanes[i] = i;
    memset(dconv + oh * p * w * c, 0, sizeof(float) * (h - oh * p) * w * c);
    for (int y = 0; y < oh * p && ow * p < w; y++)
        memset(dconv + (y * w + ow * p) * c, 0, sizeof(float) * (w - ow * p) * c);
    // Blocks of up to 4 vectors of channels outside the pixels, so db's sums stay in registers
    // (in memory, each add would wait for the last one's store).
    for (int c0 = 0; c0 < c; c0 += 4 * VL) {
        const int vectors = (c - c0) / VL < 4 ? (c - c0) / VL : 4;
        vf sum[4];
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) sum[j] = FN(load)(db + c0 + j * VL);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const long q = ((long)y * ow + x) * c + c0;
                const int first = ((y * p) * w + x * p) * c + c0;
                UNROLL for (int j = 0; j < 4; j++) if (j < vectors) {
                    vf g = FN(load)(dpooled + q + j * VL);
                    g = (vf)((vi)g & (FN(load)(pooled + q + j * VL) > 0));
                    sum[j] += g;
                    vi index;
                    memcpy(&index, argmax + q + j * VL, sizeof index);
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            const int at = first + (dy * w + dx) * c + j * VL;
                            FN(store)(dconv + at, (vf)((vi)g & (index == lanes + at)));
                        }
                }
            }
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) FN(store)(db + c0 + j * VL, sum[j]);
    }
}

// gp = dpooled where the pooled ReLU output is positive, else 0, for `pixels` pixels of c channels;
// db += its column sums, in dpk_unpool_relu's order.
static void FN(relu_pooled)(const float *dpooled, const float *pooled, float *gp, float *db, long pixels, int c)
{
    for (int c0 = 0; c0 < c; c0 += 4 * VL) {
        const int vectors = (c - c0) / VL < 4 ? (c - c0) / VL : 4;
        vf sum[4];
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) sum[j] = FN(load)(db + c0 + j * VL);
        for (long q = c0; q < pixels * c; q += c)
            UNROLL for (int j = 0; j < 4; j++) if (j < vectors) {
                vf g = (vf)((vi)FN(load)(dpooled + q + j * VL) & (FN(load)(pooled + q + j * VL) > 0));
                FN(store)(gp + q + j * VL, g);
                sum[j] += g;
            }
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) FN(store)(db + c0 + j * VL, sum[j]);
    }
}

// A first layer's weight gradient from its 2x2-pooled gradient: the tile of weights_image's
// first-layer form (rows: every (kh, kw, c) of the kernel, at ao[r] in the image), each dout vector
// made on the fly from the window's gp and winner (argmax, from channel ch0), so the unpooled
// gradient (four times gp, three quarters zeros) is never written. Pixels past the last whole
// window get no gradient and are skipped.
static inline __attribute__((always_inline)) void FN(unpooled_weights_tile)(const int R, const int NV, const dpk_conv *g,
    const float *a, long at, const long *ao, long ak, const float *gp, const int *argmax, int ch0, int mode, float *dw, const long *co)
{
    const long F = g->filters, windows = g->out_w / 2;
    vf acc[RMAX1][NVMAX];
    long off[RMAX1];
    vi lanes;
    for (int i = 0; i < VL; i++) lanes[i] = i;
    UNROLL for (int r = 0; r < R; r++) {
        off[r] = ao[r];
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = (vf){0};
    }
    for (int t = 0; t < g->out_h / 2 * 2; t++) {
        const float *at_ = a + t * at, *grow = gp + t / 2 * windows * F + ch0;
        const int *irow = argmax + t / 2 * windows * F + ch0;
        vi pixel = lanes + (int)(t * g->out_w * F + ch0);
        for (int k = 0; k < windows * 2; k++, pixel += (int)F) {
            const long q = k / 2 * F;
            vf w[NVMAX];
            UNROLL for (int v = 0; v < NV; v++) {
                vi winner;
                memcpy(&winner, irow + q + v * VL, sizeof winner);
                w[v] = (vf)((vi)FN(load)(grow + q + v * VL) & (winner == pixel + v * VL));
            }
            UNROLL for (int r = 0; r < R; r++) {
                vf x = FN(splat)(at_[off[r] + k * ak]);
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] += x * w[v];
            }
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *p = dw + co[r] + v * VL;
            FN(store)(p, mode == MODE_ADD ? FN(load)(p) + acc[r][v] : acc[r][v]);
        }
}

#define UNPOOLED_R(nv, r) case r: FN(unpooled_weights_tile)(r, nv, g, a, at, ao, ak, gp, argmax, ch0, mode, dw, co); return;
static void FN(unpooled_weights_any)(int R, int NV, const dpk_conv *g, const float *a, long at, const long *ao, long ak,
                                     const float *gp, const int *argmax, int ch0, int mode, float *dw, const long *co)
{
    TILE_SHAPES(UNPOOLED_R);
}
#undef UNPOOLED_R

// dw (+)= this image's share from gp and argmax (one image's, as relu_pooled and dpk_max_pool write them).
static void FN(unpooled_weights_image)(const dpk_conv *g, const float *image, const float *gp, const int *argmax, float *dw, int accumulate)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters;
    const int rows = g->kernel * kc;  // small_fits: 9, 25 or 27
    long ao[4 * RMAX1], co[4 * RMAX1];
    for (int i = 0; i < rows; i++) ao[i] = i / kc * row + i % kc, co[i] = i * F;
    for (int v0 = 0; v0 < F / VL; v0 += NVMAX) {
        int n = F / VL - v0 < NVMAX ? F / VL - v0 : NVMAX, rm = FN(row_block)(rows, n);
        for (int r0 = 0; r0 < rows; r0 += rm)
            FN(unpooled_weights_any)(rows - r0 < rm ? rows - r0 : rm, n, g, image, g->stride * row, ao + r0, (long)g->stride * g->in_c,
                                     gp, argmax, v0 * VL, accumulate ? MODE_ADD : MODE_STORE, dw + v0 * VL, co + r0);
    }
}

#ifdef PERMUTE
// A 3x3 first layer's weight gradient from its 2x2-pooled gradient, one product a window and tap:
// only each window's winner (per filter) has a gradient, so the input a tap reads under it is
// picked from the tap's four candidates (its inputs under the window's four pixels, in both halves
// of a vector) by an in-lane permute (PERMUTE, on the winner's place 2·dy + dx), instead of four
// products, three of them by zero. Places and candidates are made once an image, in work
// (windows·(F + 36) floats), so the filter loop keeps its 9 sums, db's and the window's gradient
// and place in registers. Each sum runs over the windows in order (the dense tile takes a window
// row's upper pixels first, so the bits differ from its); db's as relu_pooled's.
static void FN(winner_weights_image)(const dpk_conv *g, const float *image, const float *dpooled, const float *pooled,
                                     const int *argmax, float *work, float *dw, float *db, int accumulate)
{
    typedef float quad __attribute__((vector_size(16)));
    const long F = g->filters, row = g->in_w, across = g->out_w / 2, windows = g->out_h / 2 * across;
    const int down = g->out_w * (int)F;
    int *places = (int *)work;
    quad *candidates = (quad *)(work + windows * F);
    vi lanes;
    for (int i = 0; i < VL; i++) lanes[i] = i;
    for (long y = 0, n = 0; y < g->out_h / 2; y++)
        for (long x = 0; x < across; x++, n++) {
            const float *a = image + 2 * (y * row + x);
            quad r[4];
            UNROLL for (int k = 0; k < 4; k++) memcpy(&r[k], a + k * row, sizeof r[k]);
            UNROLL for (int ky = 0; ky < 3; ky++) {
                candidates[n * 9 + ky * 3 + 0] = __builtin_shufflevector(r[ky], r[ky + 1], 0, 1, 4, 5);
                candidates[n * 9 + ky * 3 + 1] = __builtin_shufflevector(r[ky], r[ky + 1], 1, 2, 5, 6);
                candidates[n * 9 + ky * 3 + 2] = __builtin_shufflevector(r[ky], r[ky + 1], 2, 3, 6, 7);
            }
            const vi first = lanes + (int)(2 * (y * down + x * F));
            for (long v = 0; v < F; v += VL) {
                vi offset;
                memcpy(&offset, argmax + n * F + v, sizeof offset);
                offset -= first + (int)v;
                const vi dy = offset >= down, dx = offset - (dy & down) == (int)F;
                const vi place = (dy & 2) - dx;
                memcpy(places + n * F + v, &place, sizeof place);
            }
        }
    for (long v = 0; v < F; v += VL) {
        vf acc[9], sum = FN(load)(db + v);
        UNROLL for (int t = 0; t < 9; t++) acc[t] = (vf){0};
        for (long n = 0; n < windows; n++) {
            const vf gv = (vf)((vi)FN(load)(dpooled + n * F + v) & (FN(load)(pooled + n * F + v) > 0));
            sum += gv;
            vi place;
            memcpy(&place, places + n * F + v, sizeof place);
            UNROLL for (int t = 0; t < 9; t++) {
                const quad c = candidates[n * 9 + t];
                acc[t] += PERMUTE(__builtin_shufflevector(c, c, 0, 1, 2, 3, 0, 1, 2, 3), place) * gv;
            }
        }
        FN(store)(db + v, sum);
        UNROLL for (int t = 0; t < 9; t++) {
            float *p = dw + t * F + v;
            FN(store)(p, accumulate ? FN(load)(p) + acc[t] : acc[t]);
        }
    }
}
#endif

#ifdef WINNER_INPUT
// out[0, NV·VL) += the sum over the listed filters of gain · row f of w (rows of kc floats).
static inline __attribute__((always_inline)) void FN(winner_input_tile)(const int NV, int count, const int *filters,
    const float *gains, const float *w, long kc, float *out)
{
    vf acc[12];
    UNROLL for (int v = 0; v < NV; v++) acc[v] = (vf){0};
    for (int i = 0; i < count; i++) {
        const vf gain = FN(splat)(gains[i]);
        const float *row = w + filters[i] * kc;
        UNROLL for (int v = 0; v < NV; v++) acc[v] += gain * FN(load)(row + v * VL);
    }
    UNROLL for (int v = 0; v < NV; v++) FN(store)(out + v * VL, FN(load)(out + v * VL) + acc[v]);
}

#define WINNER_NV(nv) case nv: FN(winner_input_tile)(nv, count, filters, gains, w, kc, out); return;
static void FN(winner_input_any)(int NV, int count, const int *filters, const float *gains, const float *w, long kc, float *out)
{
    switch (NV) { WINNER_NV(1) WINNER_NV(2) WINNER_NV(3) WINNER_NV(4) WINNER_NV(5) WINNER_NV(6)
                  WINNER_NV(7) WINNER_NV(8) WINNER_NV(9) WINNER_NV(10) WINNER_NV(11) WINNER_NV(12) }
    __builtin_trap();
}
#undef WINNER_NV

// A 2x2-pooled conv's input gradient from its pooled gradient, a quarter of the dense products or
// fewer: each window's gradient reaches one pixel per filter (its winner, where the pooled ReLU
// output is positive), so the window's filters are listed by where their winner is, and each
// list's sum of gain · (its rows of the kernel transposed, wt unpacked) is added under that pixel,
// kernel row by kernel row, in blocks of up to 12 vectors. lists: 8·F ints of room.
static void FN(winner_input_image)(const dpk_conv *g, const float *dpooled, const float *pooled, const int *argmax,
                                   const float *wt, float *image, int *lists)
{
    const long kc = (long)g->kernel * g->in_c, row = (long)g->in_w * g->in_c, F = g->filters;
    const long across = g->out_w / 2, down = (long)g->out_w * F;
    const int vectors = (int)(kc / VL), blocks = (vectors + 11) / 12, size = (vectors + blocks - 1) / blocks;
    int *filters = lists;
    float *gains = (float *)(lists + 4 * F);
    memset(image, 0, sizeof(float) * g->in_h * row);
    for (long y = 0; y < g->out_h / 2; y++)
        for (long x = 0; x < across; x++) {
            const long q = (y * across + x) * F, first = 2 * (y * down + x * F);
            int count[4] = {0, 0, 0, 0};
            for (long f = 0; f < F; f++) {
                if (!(pooled[q + f] > 0)) continue;
                const long offset = argmax[q + f] - first - f, below = offset >= down;
                const int d = (int)(2 * below + (offset - below * down == F));
                filters[d * F + count[d]] = (int)f, gains[d * F + count[d]] = dpooled[q + f], count[d]++;
            }
            for (int d = 0; d < 4; d++) {
                if (!count[d]) continue;
                float *at = image + (2 * y + d / 2) * g->stride * row + (2 * x + d % 2) * g->stride * g->in_c;
                for (int kh = 0; kh < g->kernel; kh++)
                    for (int v0 = 0; v0 < vectors; v0 += size)
                        FN(winner_input_any)(vectors - v0 < size ? vectors - v0 : size, count[d], filters + d * F, gains + d * F,
                                             wt + kh * F * kc + v0 * VL, kc, at + kh * row + v0 * VL);
            }
        }
}
#endif

void FN(dpk_conv_pool_backward)(const dpk_conv *g, int pool, const float *in, const float *pooled, const int *argmax,
                                const float *dpooled, const float *w, float *wt, float *scratch,
                                float *dw, float *db, float *din, int batch)
{
    const long image = (long)g->in_h * g->in_w * g->in_c, out = (long)(g->out_h / pool) * (g->out_w / pool) * g->filters;
    const int winograd = FN(dpk_winograd_fits)(g, DPK_BACKWARD_WEIGHTS), winograd_input = din && FN(dpk_winograd_fits)(g, DPK_BACKWARD_INPUT);
    const float *u = winograd_input ? FN(wino_input_kernel)(g, w) : 0;
    float *sums = winograd ? FN(wino_sums)(g) : 0;
    memset(db, 0, sizeof(float) * g->filters);
#ifdef WINNER_INPUT
    // Rows of 8 vectors or more: on narrower ones the tiles' set-up outweighs the products saved
    // (0.76x for 3x3 8->24 on AVX2; 1.2-1.3x from 12 vectors on).
    const int winner_input = din && !winograd_input && pool == 2 && g->in_c % VL == 0 && (long)g->kernel * g->in_c >= 8 * VL;
    int *lists = winner_input ? malloc(sizeof(int) * 8 * g->filters) : 0;
    if (winner_input && lists) FN(transpose_kernel_as)(g, w, wt, 0);
    else
#endif
    if (din && !winograd_input) FN(transpose_kernel)(g, w, wt);
    const int from_windows = !winograd && !din && pool == 2 && !g->linear && FN(small_fits)(g);
    const long conv = (long)g->out_h * g->out_w * g->filters;
    int chunk = winograd ? FN(wino_chunk)(conv) : 1;
    float *dconv = chunk > 1 ? FN(wino_buffer)(SLOT_GRADIENTS, chunk * conv) : scratch;
    if (!dconv) dconv = scratch, chunk = 1;
    for (int n0 = 0; n0 < batch; n0 += chunk) {
        const int count = batch - n0 < chunk ? batch - n0 : chunk;
        if (from_windows) {
#ifdef PERMUTE
            if (g->kernel == 3 && g->in_c == 1 && g->filters >= 12) {  // places and candidates fit the scratch
                FN(winner_weights_image)(g, in + n0 * image, dpooled + n0 * out, pooled + n0 * out, argmax + n0 * out, scratch, dw, db, n0 > 0);
                continue;
            }
#endif
            FN(relu_pooled)(dpooled + n0 * out, pooled + n0 * out, scratch, db, out / g->filters, g->filters);
            FN(unpooled_weights_image)(g, in + n0 * image, scratch, argmax + n0 * out, dw, n0 > 0);
            continue;
        }
        for (int n = n0; n < n0 + count; n++)
            FN(dpk_unpool_relu)(dpooled + n * out, pooled + n * out, argmax + n * out, dconv + (n - n0) * conv, db,
                                g->out_h, g->out_w, g->filters, pool);
        if (winograd) FN(wino_weight_sums)(g, in + n0 * image, dconv, sums, n0 > 0, count);
        else FN(weights_image)(g, in + n0 * image, dconv, dw, n0 > 0);
        // After their weight gradient: din may be the buffer `in` is (the padded input).
        if (winograd_input) FN(wino_input)(g, dconv, u, din + n0 * image, count);
#ifdef WINNER_INPUT
        else if (lists)
            for (int n = n0; n < n0 + count; n++)
                FN(winner_input_image)(g, dpooled + n * out, pooled + n * out, argmax + n * out, wt, din + n * image, lists);
#endif
        else if (din)
            for (int n = n0; n < n0 + count; n++) FN(input_image)(g, dconv + (n - n0) * conv, wt, din + n * image);
    }
    if (winograd) FN(wino_weights)(g, sums, dw);
#ifdef WINNER_INPUT
    free(lists);
#endif
}
