// Kernel bench for the BF16 conv passes (--precision bf16): each against the plain double reference
// computed on the same bf16-rounded inputs (so the bound is FP32 summation's, 1e-5 of the largest
// value), then timed against the avx512 FP32 path on the same layers; the error against the
// unrounded FP32 reference is printed too (what bf16 itself costs).
//   dev/cpu/run bf16        (BATCH=50 REPEATS=50 by default, ONLY=<part of a layer's name>; exit status 1 if a result is wrong)
#include "ckernels.h"
#include "reference.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { const char *name; dpk_conv g; } layer;

// The reference model's convs, a 3x3 stride-2 one (odd output width: a half pair of columns) and
// a 3x3 one on 3 channels (an odd kw·in_c: a half pair along the reduction).
static const layer layers[] = {
    {"conv1 5x5 1->32", {28, 28, 1, 5, 1, 32, 24, 24}},
    {"conv2 5x5 32->64", {12, 12, 32, 5, 1, 64, 8, 8}},
    {"5x5 1->16", {28, 28, 1, 5, 1, 16, 24, 24}},
    {"5x5 16->32", {12, 12, 16, 5, 1, 32, 8, 8}},
    {"3x3/2 16->32", {15, 15, 16, 3, 2, 32, 7, 7}},
    {"3x3 3->32 (34x34)", {34, 34, 3, 3, 1, 32, 32, 32}},
    {"3x3 16->16", {10, 10, 16, 3, 1, 16, 8, 8}},
};

// The thread's CPU time, as conv.c: other processes' time slices do not count.
static double now(void) { return dpk_thread_seconds(); }
// x rounded to bf16 by the kernels' own conversion, back as floats.
static float *rounded(const float *x, long n) {
    uint16_t *h = malloc(2 * n + 64);
    float *r = malloc(4 * n);
    dpk_to_bf16(x, h, n);
    for (long i = 0; i < n; i++) { uint32_t u = (uint32_t)h[i] << 16; memcpy(r + i, &u, 4); }
    free(h);
    return r;
}
static double median(double *t, int n) { qsort(t, n, sizeof(double), cmp); return t[n / 2]; }

static int failed = 0;
static void report(const char *pass, const char *path, double seconds, double flops, double error, double error_fp32) {
    int wrong = error > 1e-5;
    failed |= wrong;
    printf("  %-12s %-8s %8.1f us %7.1f GFLOP/s  error %.1e", pass, path, seconds * 1e6, flops / seconds / 1e9, error);
    if (error_fp32 >= 0) printf("  (vs unrounded %.1e)", error_fp32);
    printf("%s\n", wrong ? "  WRONG" : "");
}

int main(void) {
    int batch = getenv("BATCH") ? atoi(getenv("BATCH")) : 50, repeats = getenv("REPEATS") ? atoi(getenv("REPEATS")) : 50;
    if (repeats > 1000) repeats = 1000;
    if (!dpk_bf16_available()) { printf("this CPU has no AVX512_BF16: nothing to check\n"); return 0; }
    const dpk_path *fp32 = dpk_path_named("avx512");
    dpk_flush_denormals();
    printf("batch %d, median of %d; one core's FP32 FMA limit %.1f GFLOP/s, its vdpbf16ps loop's %.1f\n", batch, repeats,
           dpk_fma_peak(0, 0.3) / 1e9, dpk_bf16_peak(0.3) / 1e9);
    for (unsigned l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        if (getenv("ONLY") && !strstr(layers[l].name, getenv("ONLY"))) continue;
        const dpk_conv *g = &layers[l].g;
        long nin = (long)batch * g->in_h * g->in_w * g->in_c, nout = (long)batch * g->out_h * g->out_w * g->filters;
        long nw = (long)g->kernel * g->kernel * g->in_c * g->filters;
        float *in = randoms(nin), *w = randoms(nw), *b = randoms(g->filters), *d = randoms(nout);
        float *inr = rounded(in, nin), *wr = rounded(w, nw), *dr = rounded(d, nout);
        float *out = malloc(4 * nout), *ref = malloc(4 * nout), *ref32 = malloc(4 * nout);
        float *dw = malloc(4 * nw), *refdw = malloc(4 * nw), *refdw32 = malloc(4 * nw);
        float *din = malloc(4 * nin), *refdin = malloc(4 * nin), *refdin32 = malloc(4 * nin), *wt = malloc(4 * nw);
        void *work = aligned_alloc(64, (dpk_bf16_workspace(g, batch) + 63) / 64 * 64);
        int with_input = dpk_conv_supports(fp32, g, DPK_BACKWARD_INPUT);
        double flops = 2.0 * batch * g->out_h * g->out_w * g->filters * g->kernel * g->kernel * g->in_c, t[1000];
        printf("\n%s, %.2f MFLOP per pass:\n", layers[l].name, flops / 1e6);

        ref_forward(g, inr, wr, b, ref, batch);
        ref_forward(g, in, w, b, ref32, batch);
        ref_weights(g, inr, dr, refdw, batch);
        ref_weights(g, in, d, refdw32, batch);
        ref_input(g, dr, wr, refdin, batch);
        ref_input(g, d, w, refdin32, batch);

        for (int r = 0; r < repeats; r++) { double s = now(); dpk_conv_forward(fp32, g, in, w, b, out, batch); t[r] = now() - s; }
        report("forward", "fp32", median(t, repeats), flops, max_error(out, ref32, nout), -1);
        for (int r = 0; r < repeats; r++) { double s = now(); dpk_bf16_conv_forward(g, in, w, b, out, work, batch); t[r] = now() - s; }
        report("forward", "bf16", median(t, repeats), flops, max_error(out, ref, nout), max_error(out, ref32, nout));

        for (int r = 0; r < repeats; r++) { double s = now(); dpk_conv_backward_weights(fp32, g, in, d, dw, batch); t[r] = now() - s; }
        report("weight grad", "fp32", median(t, repeats), flops, max_error(dw, refdw32, nw), -1);
        for (int r = 0; r < repeats; r++) { double s = now(); dpk_bf16_conv_backward(g, d, w, work, dw, 0, batch); t[r] = now() - s; }
        report("weight grad", "bf16", median(t, repeats), flops, max_error(dw, refdw, nw), max_error(dw, refdw32, nw));

        if (with_input) {
            for (int r = 0; r < repeats; r++) { double s = now(); dpk_conv_backward_input(fp32, g, d, w, wt, din, batch); t[r] = now() - s; }
            report("input grad", "fp32", median(t, repeats), flops, max_error(din, refdin32, nin), -1);
            for (int r = 0; r < repeats; r++) { double s = now(); dpk_bf16_conv_backward(g, d, w, work, dw, din, batch); t[r] = now() - s; }
            report("both grads", "bf16", median(t, repeats), 2 * flops, fmax(max_error(dw, refdw, nw), max_error(din, refdin, nin)),
                   fmax(max_error(dw, refdw32, nw), max_error(din, refdin32, nin)));
        } else {
            printf("  input grad   (kw*in_c = %d is not a multiple of 16: im2col + OpenBLAS in FP32)\n", g->kernel * g->in_c);
        }

        // Conv + ReLU + 2x2 max pooling fused, as the layers run it. The reference routes the pooled
        // gradient through the kernel's own winners (a near-tie may pick either).
        {
            int pool = 2, ph = g->out_h / pool, pw = g->out_w / pool;
            long npool = (long)batch * ph * pw * g->filters;
            float *pooled = malloc(4 * npool), *dp = randoms(npool), *scratch = malloc(4 * nout / batch), *db = malloc(4 * g->filters);
            float *dconv = calloc(nout, 4), *refpool = malloc(4 * npool);
            int *argmax = malloc(sizeof(int) * npool);
            double tf[1000], tb[1000];
            for (int r = 0; r < repeats; r++) {
                double s = now();
                dpk_bf16_conv_pool_forward(g, pool, in, w, b, pooled, argmax, scratch, work, batch);
                double m = now();
                dpk_bf16_conv_pool_backward(g, pool, pooled, argmax, dp, w, scratch, work, dw, db, with_input ? din : 0, batch);
                tf[r] = m - s;
                tb[r] = now() - m;
            }
            float *dpr = rounded(dp, npool);
            long image = (long)g->out_h * g->out_w * g->filters;
            for (int n = 0; n < batch; n++) for (int y = 0; y < ph; y++) for (int x = 0; x < pw; x++) for (int f = 0; f < g->filters; f++) {
                long o = (((long)n * ph + y) * pw + x) * g->filters + f, best = OUT(g, n, y * pool, x * pool, f);
                for (int dy = 0; dy < pool; dy++) for (int dx = 0; dx < pool; dx++) {
                    long at = OUT(g, n, y * pool + dy, x * pool + dx, f);
                    if (ref[at] > ref[best]) best = at;
                }
                refpool[o] = ref[best];
                long winner = n * image + argmax[o];
                if (pooled[o] > 0) dconv[winner] = dpr[o];
            }
            ref_weights(g, inr, dconv, refdw, batch);
            if (with_input) ref_input(g, dconv, wr, refdin, batch);
            double ef = max_error(pooled, refpool, npool), eb = max_error(dw, refdw, nw);
            if (with_input) eb = fmax(eb, max_error(din, refdin, nin));
            report("fused fwd", "bf16", median(tf, repeats), flops, ef, -1);
            report(with_input ? "fused bwd" : "fused bwd-w", "bf16", median(tb, repeats), (with_input ? 2 : 1) * flops, eb, -1);
            for (int r = 0; r < repeats; r++) {
                double s = now();
                dpk_conv_pool_forward(fp32, g, pool, in, w, b, pooled, argmax, scratch, batch);
                double m = now();
                dpk_conv_pool_backward(fp32, g, pool, in, pooled, argmax, dp, w, wt, scratch, dw, db, with_input ? din : 0, batch);
                tf[r] = m - s;
                tb[r] = now() - m;
            }
            printf("  %-12s %-8s %8.1f us %7.1f GFLOP/s\n", "fused fwd", "fp32", median(tf, repeats) * 1e6, flops / median(tf, repeats) / 1e9);
            printf("  %-12s %-8s %8.1f us %7.1f GFLOP/s\n", with_input ? "fused bwd" : "fused bwd-w", "fp32", median(tb, repeats) * 1e6,
                   (with_input ? 2 : 1) * flops / median(tb, repeats) / 1e9);
            free(pooled); free(dp); free(dpr); free(scratch); free(db); free(dconv); free(refpool); free(argmax);
        }
        free(in); free(w); free(b); free(d); free(inr); free(wr); free(dr); free(out); free(ref); free(ref32);
        free(dw); free(refdw); free(refdw32); free(din); free(refdin); free(refdin32); free(wt); free(work);
    }
    if (failed) printf("\nWRONG results above\n");
    return failed;
}
