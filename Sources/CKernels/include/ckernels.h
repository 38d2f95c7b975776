// Convolution kernels over NHWC floats, chosen at run time from the CPU's features.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A 'valid' convolution over a buffer that already holds any padding: in [batch, in_h, in_w, in_c],
/// kernel HWIO [kernel, kernel, in_c, filters], out [batch, out_h, out_w, filters].
typedef struct {
    int in_h, in_w, in_c;
    int kernel, stride, filters;
    int out_h, out_w;
    /// 0: the forward pass applies ReLU after the bias (the default); 1: bias only (a conv
    /// followed by batch normalisation, or Keras's linear activation).
    int linear;
    /// 1: direct kernels only. Else stride-1 3×3 and 5×5 convs whose channels fill the vectors run
    /// Winograd's F(4×4, 3×3) and F(2×2, 5×5) where they save products (other rounding).
    int direct;
    /// Rows and columns at each edge of the input that are padding, whose input gradient nobody
    /// reads: the kernels may leave it unwritten.
    int border;
} dpk_conv;

/// The conv passes; `supports` says whether the fast kernels take a geometry (else use im2col + GEMM).
enum { DPK_FORWARD = 0, DPK_BACKWARD_WEIGHTS = 1, DPK_BACKWARD_INPUT = 2 };

/// One instruction set's kernels: "avx512", "avx2" or "portable". Callers hold the path they chose,
/// so layers built under different paths (tests) never mix them.
typedef struct dpk_path dpk_path;
/// The fastest path this CPU runs.
const dpk_path *dpk_best_path(void);
/// The path of that name, or NULL when this CPU or build does not have it.
const dpk_path *dpk_path_named(const char *name);
const char *dpk_path_name(const dpk_path *path);

/// Flush denormals to zero on the calling thread (FTZ + DAZ on x86-64, FZ on aarch64).
void dpk_flush_denormals(void);

int dpk_conv_supports(const dpk_path *path, const dpk_conv *g, int pass);
/// Whether a pass of a geometry the kernels support runs Winograd's kernels.
int dpk_conv_winograd(const dpk_path *path, const dpk_conv *g, int pass);

/// out = max(conv(in, w) + bias, 0), or conv(in, w) + bias when g->linear.
void dpk_conv_forward(const dpk_path *path, const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, int batch);
/// dw = Σ over the batch of in ⋆ dout (overwritten), HWIO like w.
void dpk_conv_backward_weights(const dpk_path *path, const dpk_conv *g, const float *in, const float *dout, float *dw, int batch);
/// din = the input gradient (overwritten; but for the border, which may be left as it was). wt: scratch of kernel·kernel·in_c·filters floats.
void dpk_conv_backward_input(const dpk_path *path, const dpk_conv *g, const float *dout, const float *w, float *wt, float *din, int batch);

/// grad[r, :] = 0 where out[r, :] <= 0 (ReLU backward), and db = the column sums of the result.
void dpk_relu_backward_bias(const dpk_path *path, float *grad, const float *out, int rows, int columns, float *db);

/// Conv + bias + ReLU + max pooling (pool x pool, stride pool) fused image by image, for a geometry
/// `dpk_conv_supports` takes forward: pooled [batch, out_h/pool, out_w/pool, filters]; argmax: each
/// winner's index within its image's conv output; scratch: out_h·out_w·filters floats.
void dpk_conv_pool_forward(const dpk_path *path, const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                           float *pooled, int *argmax, float *scratch, int batch);
/// Its backward from the pooled gradient: dw and db (overwritten), and din when not NULL (a geometry
/// `dpk_conv_supports` takes for the input gradient; wt as for dpk_conv_backward_input). din may be `in`.
void dpk_conv_pool_backward(const dpk_path *path, const dpk_conv *g, int pool, const float *in, const float *pooled, const int *argmax,
                            const float *dpooled, const float *w, float *wt, float *scratch, float *dw, float *db, float *din, int batch);

/// Max pooling of [batch, h, w, c] by pool x pool windows into [batch, h/pool, w/pool, c]; argmax gets
/// each winner's index into `in` (the first maximum on ties).
void dpk_max_pool(const dpk_path *path, const float *in, float *out, int *argmax, int batch, int h, int w, int c, int pool);
/// gin = the input gradient of max pooling (every element written).
void dpk_max_pool_backward(const dpk_path *path, const float *gout, const int *argmax, float *gin, int batch, int h, int w, int c, int pool);

/// Copies [batch, h, w, c] into the interior of [batch, ph, pw, c] at (top, left), zeros around.
void dpk_pad(const float *src, int batch, int h, int w, int c, float *dst, int ph, int pw, int top, int left);
/// The reverse: the interior of [batch, ph, pw, c] at (top, left) into [batch, h, w, c].
void dpk_crop(const float *src, int batch, int ph, int pw, int top, int left, float *dst, int h, int w, int c);

/// Monotonic seconds, for timing.
double dpk_now(void);
/// The calling thread's CPU seconds: kernel timings that other processes on the core do not inflate.
double dpk_thread_seconds(void);

// Fixed point for the exact gradient reduction (see Training/ExactReduction.swift): the largest
// |x| as its float bits (integer max: exact, and a NaN's bits exceed infinity's), and
// acc[i] += rint(x[i] * scale), rounding to nearest even on every path, so the sums are the same
// bits whatever instruction set ran them.
uint32_t dpk_max_abs_bits(const float *x, long n);
void dpk_quantize_add(const float *x, long n, float scale, int32_t *acc);
void dpk_dequantize(const int32_t *q, long n, float unit, float *out);

// Batch normalisation over [rows, channels] (see normalization.c): per-channel sums in double added
// row by row (callers zero them); y = x·scale + shift (then ReLU); the backward pass's Σdy and
// Σdy·x̂ with x̂ = (x − mean)·inverse; dx = γ·inverse·(dy − mean_dy − x̂·mean_dy_x_hat).
void dpk_channel_sums(const float *x, long rows, int channels, double *sum);
void dpk_channel_squares(const float *x, long rows, int channels, const double *mean, double *squares);
void dpk_channel_affine(const float *x, long rows, int channels, const float *scale, const float *shift, float *y, int relu);
void dpk_bn_backward_sums(const float *x, const float *g, long rows, int channels, const float *mean, const float *inverse,
                          double *dbeta, double *dgamma);
void dpk_bn_input_grad(const float *x, const float *g, long rows, int channels, const float *mean, const float *inverse,
                       const float *gamma, const float *mean_dy, const float *mean_dy_x_hat, float *dx);

// A worker thread tells the main thread how far its gradient is final: a store with release
// order (everything written before it is visible to whoever loads it) and a load with acquire.
static inline void dpk_publish(long *slot, long value) { __atomic_store_n(slot, value, __ATOMIC_RELEASE); }
static inline long dpk_observe(const long *slot) { return __atomic_load_n(slot, __ATOMIC_ACQUIRE); }

/// sum[j] = Σ over the rows of x[i, j], the rows added in order (see elementwise.c).
void dpk_column_sums(const float *x, long rows, int columns, float *sum);
// Dropout (see elementwise.c): kept[i] = CounterRandom(key).unit(i) < keep_probability, y = x / keep_probability
// where kept, else 0; and its backward, dx = g / keep_probability where kept, else 0.
void dpk_dropout(uint64_t key, long n, float keep_probability, const float *x, float *y, bool *kept);
void dpk_dropout_backward(const bool *kept, long n, float keep_probability, const float *g, float *dx);

/// FLOP/s of an FMA loop on this thread with `path`'s vectors (NULL: the fastest path's), run for about `seconds`.
double dpk_fma_peak(const dpk_path *path, double seconds);


// BF16 (--precision bf16): the conv passes with inputs rounded to bf16 and FP32 sums (vdpbf16ps),
// for the geometries the avx512 path takes (dpk_conv_supports). FP32 weights, gradients, bias,
// ReLU and pooling. `work`: dpk_bf16_workspace(g, max_batch) bytes, 64-byte aligned, one per
// layer; a backward pass reads the bf16 input its forward pass left there.
/// Whether this CPU has AVX512_BF16 (and the AVX-512 the kernels around it need).
int dpk_bf16_available(void);
long dpk_bf16_workspace(const dpk_conv *g, int max_batch);
/// dst[i] = src[i] rounded to bf16 (nearest even, denormals flushed, as vcvtne2ps2bf16).
void dpk_to_bf16(const float *src, uint16_t *dst, long n);
/// FLOP/s of a vdpbf16ps loop on this thread (the BF16 limit: twice the FP32 FMA loop's on Zen 4).
double dpk_bf16_peak(double seconds);
/// The same, kept as floats (the low 16 bits zero).
void dpk_round_bf16(const float *src, float *dst, long n);
void dpk_bf16_conv_forward(const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, void *work, int batch);
void dpk_bf16_conv_pool_forward(const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                                float *pooled, int *argmax, float *scratch, void *work, int batch);
/// dw (overwritten) from dout (the gradient after ReLU); din (overwritten) when not NULL.
void dpk_bf16_conv_backward(const dpk_conv *g, const float *dout, const float *w, void *work, float *dw, float *din, int batch);
void dpk_bf16_conv_pool_backward(const dpk_conv *g, int pool, const float *pooled, const int *argmax, const float *dpooled,
                                 const float *w, float *scratch, void *work, float *dw, float *db, float *din, int batch);

#ifdef __cplusplus
}
#endif
#endif
