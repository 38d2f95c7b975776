// The plain references the dev/cpu benches check the kernels against: each conv pass by its
// definition, summed in double, and the error measure and helpers they share.
#ifndef DEV_CPU_REFERENCE_H
#define DEV_CPU_REFERENCE_H
#include "ckernels.h"
#include <math.h>
#include <stdlib.h>

// 64-byte aligned, as the trainer's tensors (Sources/NN/Buffers.swift): malloc's 16 would split vectors across cache lines.
static void *tensor(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }
static float *randoms(long n) { float *p = tensor(sizeof(float) * n); for (long i = 0; i < n; i++) p[i] = (float)(rand() / (double)RAND_MAX * 2 - 1); return p; }
#define IN(g, n, y, x, c) (((long)(n) * (g)->in_h + (y)) * (g)->in_w + (x)) * (g)->in_c + (c)
#define OUT(g, n, y, x, f) (((long)(n) * (g)->out_h + (y)) * (g)->out_w + (x)) * (g)->filters + (f)
#define W(g, kh, kw, c, f) (((long)(kh) * (g)->kernel + (kw)) * (g)->in_c + (c)) * (g)->filters + (f)

// The plain reference: the definition, in double.
static void ref_forward(const dpk_conv *g, const float *in, const float *w, const float *b, float *out, int batch) {
    for (int n = 0; n < batch; n++) for (int y = 0; y < g->out_h; y++) for (int x = 0; x < g->out_w; x++) for (int f = 0; f < g->filters; f++) {
        double s = b[f];
        for (int kh = 0; kh < g->kernel; kh++) for (int kw = 0; kw < g->kernel; kw++) for (int c = 0; c < g->in_c; c++)
            s += (double)in[IN(g, n, y * g->stride + kh, x * g->stride + kw, c)] * w[W(g, kh, kw, c, f)];
        out[OUT(g, n, y, x, f)] = g->linear || s > 0 ? s : 0;
    }
}
static void ref_weights(const dpk_conv *g, const float *in, const float *d, float *dw, int batch) {
    for (int kh = 0; kh < g->kernel; kh++) for (int kw = 0; kw < g->kernel; kw++) for (int c = 0; c < g->in_c; c++) for (int f = 0; f < g->filters; f++) {
        double s = 0;
        for (int n = 0; n < batch; n++) for (int y = 0; y < g->out_h; y++) for (int x = 0; x < g->out_w; x++)
            s += (double)in[IN(g, n, y * g->stride + kh, x * g->stride + kw, c)] * d[OUT(g, n, y, x, f)];
        dw[W(g, kh, kw, c, f)] = s;
    }
}
static void ref_input(const dpk_conv *g, const float *d, const float *w, float *din, int batch) {
    long count = (long)batch * g->in_h * g->in_w * g->in_c;
    double *acc = calloc(count, sizeof(double));
    for (int n = 0; n < batch; n++) for (int y = 0; y < g->out_h; y++) for (int x = 0; x < g->out_w; x++) for (int f = 0; f < g->filters; f++)
        for (int kh = 0; kh < g->kernel; kh++) for (int kw = 0; kw < g->kernel; kw++) for (int c = 0; c < g->in_c; c++)
            acc[IN(g, n, y * g->stride + kh, x * g->stride + kw, c)] += (double)d[OUT(g, n, y, x, f)] * w[W(g, kh, kw, c, f)];
    for (long i = 0; i < count; i++) din[i] = acc[i];
    free(acc);
}

static double max_error(const float *a, const float *b, long n) {
    double e = 0, scale = 1e-30;
    for (long i = 0; i < n; i++) { double d = fabs(a[i] - b[i]); if (d > e) e = d; if (fabs(b[i]) > scale) scale = fabs(b[i]); }
    return e / scale;
}

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

#endif
