// Kernel bench for the conv passes (as llm.c's dev/cpu): every path of Sources/CKernels against a
// plain reference, then timed, on the reference model's layers; OpenBLAS im2col + sgemm as the bar;
// then the fused conv + ReLU + 2x2 pooling passes the layers run.
//   dev/cpu/run            (builds as SwiftPM does and runs; BATCH=50 REPEATS=50 by default;
//                           ONLY=cifar runs the layers whose name holds it)
#include "ckernels.h"
#include "reference.h"
#ifndef NO_BLAS  // set by dev/cpu/run for an emulated cross build (TARGET=aarch64): no sgemm row
#include <cblas.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *name; dpk_conv g; } layer;

// conv1 28x28x1 -> 24x24x32, conv2 12x12x32 -> 8x8x64 (5x5), and a 3x3 stride-2 one.
static const layer layers[] = {
    {"conv1 5x5 1->32", {28, 28, 1, 5, 1, 32, 24, 24}},
    {"conv2 5x5 32->64", {12, 12, 32, 5, 1, 64, 8, 8}},
    {"3x3/2 16->32", {15, 15, 16, 3, 2, 32, 7, 7}},
    // keras-io's mnist_convnet.
    {"mnist_convnet 3x3 1->32", {28, 28, 1, 3, 1, 32, 26, 26}},
    {"mnist_convnet 3x3 32->64", {13, 13, 32, 3, 1, 64, 11, 11}},
    // A CIFAR-style net's same-padded 3x3 stack (inputs padded by one, whose gradient is cropped).
    {"cifar 3x3 3->32 same", {34, 34, 3, 3, 1, 32, 32, 32, 1, 0, 1}},
    {"cifar 3x3 32->32 same", {34, 34, 32, 3, 1, 32, 32, 32, 1, 0, 1}},
    {"cifar 3x3 32->64 same", {18, 18, 32, 3, 1, 64, 16, 16, 1, 0, 1}},
    {"cifar 3x3 64->64 same", {18, 18, 64, 3, 1, 64, 16, 16, 1, 0, 1}},
    {"cifar 3x3 64->128 same", {10, 10, 64, 3, 1, 128, 8, 8, 1, 0, 1}},
    // Channels that fill only narrower vectors: AVX2's kernels on an AVX-512 CPU, then 4-float ones.
    {"3x3 8->24 narrower vectors", {12, 12, 8, 3, 1, 24, 10, 10}},
    {"3x3 4->12 narrower vectors", {12, 12, 4, 3, 1, 12, 10, 10}},
};

// The thread's CPU time, not the wall clock: on a shared machine, time slices other processes take
// would otherwise count as the kernel's.
static double now(void) { return dpk_thread_seconds(); }
#ifndef NO_BLAS
// The bar to beat: im2col + OpenBLAS, as Sources/NN did before.
static void im2col(const dpk_conv *g, const float *in, float *cols, int batch) {
    long kc = (long)g->kernel * g->in_c;
    for (int n = 0; n < batch; n++) for (int y = 0; y < g->out_h; y++) for (int x = 0; x < g->out_w; x++)
        for (int kh = 0; kh < g->kernel; kh++)
            memcpy(cols + ((((long)n * g->out_h + y) * g->out_w + x) * g->kernel + kh) * kc, in + IN(g, n, y * g->stride + kh, x * g->stride, 0), sizeof(float) * kc);
}
static void blas_forward(const dpk_conv *g, const float *in, const float *w, float *cols, float *out, int batch) {
    int m = batch * g->out_h * g->out_w, k = g->kernel * g->kernel * g->in_c;
    im2col(g, in, cols, batch);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, g->filters, k, 1, cols, k, w, g->filters, 0, out, g->filters);
}
static void blas_weights(const dpk_conv *g, const float *in, const float *d, float *cols, float *dw, int batch) {
    int m = batch * g->out_h * g->out_w, k = g->kernel * g->kernel * g->in_c;
    im2col(g, in, cols, batch);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, g->filters, m, 1, cols, k, d, g->filters, 0, dw, g->filters);
}
static void blas_input(const dpk_conv *g, const float *d, const float *w, float *cols, int batch) {
    int m = batch * g->out_h * g->out_w, k = g->kernel * g->kernel * g->in_c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, g->filters, 1, d, g->filters, w, g->filters, 0, cols, k);
}
#endif


// dst's border (g->border rows and columns at each edge of each image) = src's.
static void copy_border(const dpk_conv *g, const float *src, float *dst, int batch) {
    const int b = g->border;
    for (int n = 0; n < batch; n++) for (int y = 0; y < g->in_h; y++) for (int x = 0; x < g->in_w; x++)
        if (y < b || x < b || y >= g->in_h - b || x >= g->in_w - b)
            memcpy(dst + IN(g, n, y, x, 0), src + IN(g, n, y, x, 0), sizeof(float) * g->in_c);
}

// The largest error allowed, relative to the largest value: Winograd's transforms round more
// (F(4x4, 3x3)'s coefficients reach 8), as every framework's Winograd kernels do.
static double bound(int winograd) { return winograd ? 3e-5 : 1e-5; }

int main(void) {
    int batch = getenv("BATCH") ? atoi(getenv("BATCH")) : 50, repeats = getenv("REPEATS") ? atoi(getenv("REPEATS")) : 50;
    const char *paths[] = {"avx512", "avx2", "portable"};
    dpk_flush_denormals();
#ifndef NO_BLAS
    openblas_set_num_threads(1);
#endif
    printf("batch %d, median of %d; one core's FMA limit %.1f GFLOP/s", batch, repeats, dpk_fma_peak(0, 0.3) / 1e9);
    for (int p = 1; p < 3; p++)
        if (dpk_path_named(paths[p])) printf(", %s's %.1f", paths[p], dpk_fma_peak(dpk_path_named(paths[p]), 0.3) / 1e9);
    printf("\n");
    int failed = 0;
    for (unsigned l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const dpk_conv *g = &layers[l].g;
        if (getenv("ONLY") && !strstr(layers[l].name, getenv("ONLY"))) continue;
        long nin = (long)batch * g->in_h * g->in_w * g->in_c, nout = (long)batch * g->out_h * g->out_w * g->filters;
        long nw = (long)g->kernel * g->kernel * g->in_c * g->filters, ncols = (long)batch * g->out_h * g->out_w * g->kernel * g->kernel * g->in_c;
        float *in = randoms(nin), *w = randoms(nw), *b = randoms(g->filters), *d = randoms(nout);
        float *out = tensor(4 * nout), *ref = tensor(4 * (nin > nw ? (nin > nout ? nin : nout) : nw)), *dw = tensor(4 * nw), *din = tensor(4 * nin), *wt = tensor(4 * nw), *cols = tensor(4 * ncols);
        double flops = 2.0 * batch * g->out_h * g->out_w * g->filters * g->kernel * g->kernel * g->in_c;
        printf("\n%s, %.2f MFLOP per pass:\n", layers[l].name, flops / 1e6);
        for (int pass = 0; pass < 3; pass++) {
            static const char *names[] = {"forward", "weight grad", "input grad"};
            if (pass == 0) ref_forward(g, in, w, b, ref, batch);
            if (pass == 1) ref_weights(g, in, d, ref, batch);
            if (pass == 2) ref_input(g, d, w, ref, batch);
            // Where Winograd's kernels take a geometry, each path also runs its direct kernels.
            for (int run = -1; run < 6; run++) {
                const int p = run < 0 ? -1 : run / 2, direct = run >= 0 && run % 2;
                const dpk_path *k = p >= 0 ? dpk_path_named(paths[p]) : 0;
                if (p >= 0 && !k) continue;
#ifdef NO_BLAS
                if (p < 0) continue;
#endif
                dpk_conv variant = *g;
                variant.direct = direct;
                const int winograd = p >= 0 && dpk_conv_winograd(k, &variant, pass);
                if (direct && !dpk_conv_winograd(k, g, pass)) continue;
                const dpk_conv *g = &variant;
                char label[32];
                snprintf(label, sizeof label, "%s%s", p < 0 ? "openblas" : paths[p], winograd ? " wino" : direct ? " direct" : "");
                if (p >= 0 && !dpk_conv_supports(k, g, pass)) { printf("  %-11s %-15s not supported\n", names[pass], label); continue; }
                double t[1000];
                for (int r = 0; r < repeats && r < 1000; r++) {
                    double start = now();
                    if (p < 0) {
#ifndef NO_BLAS
                        if (pass == 0) blas_forward(g, in, w, cols, out, batch);
                        if (pass == 1) blas_weights(g, in, d, cols, dw, batch);
                        if (pass == 2) blas_input(g, d, w, cols, batch);
#endif
                    } else {
                        if (pass == 0) dpk_conv_forward(k, g, in, w, b, out, batch);
                        if (pass == 1) dpk_conv_backward_weights(k, g, in, d, dw, batch);
                        if (pass == 2) dpk_conv_backward_input(k, g, d, w, wt, din, batch);
                    }
                    t[r] = now() - start;
                }
                qsort(t, repeats, sizeof(double), cmp);
                double error = 0;
                if (p >= 0) {
                    if (pass == 2) copy_border(g, ref, din, batch);  // not compared: nobody reads it
                    error = max_error(pass == 0 ? out : pass == 1 ? dw : din, ref, pass == 0 ? nout : pass == 1 ? nw : nin);
                    if (error > bound(winograd)) failed = 1;
                }
                printf("  %-11s %-15s %8.1f us %7.1f GFLOP/s  error %.1e%s\n", names[pass], label,
                       t[repeats / 2] * 1e6, flops / t[repeats / 2] / 1e9, error, error > bound(winograd) ? "  WRONG" : "");
            }
        }
        // Conv + ReLU + 2x2 max pooling fused image by image, as the layers run it.
        if (!g->linear) {
            int pool = 2, ph = g->out_h / pool, pw = g->out_w / pool;
            long npool = (long)batch * ph * pw * g->filters;
            float *pooled = tensor(4 * npool), *refpool = tensor(4 * npool), *dp = randoms(npool), *scratch = tensor(4 * nout / batch);
            float *dconv = memset(tensor(4 * nout), 0, 4 * nout), *db = tensor(4 * g->filters), *refdw = tensor(4 * nw), *refdin = tensor(4 * nin);
            int *argmax = tensor(sizeof(int) * npool);
            ref_forward(g, in, w, b, ref, batch);
            // Reference pooling, and the conv output's gradient it routes back (ReLU'd winners only).
            for (int n = 0; n < batch; n++) for (int y = 0; y < ph; y++) for (int x = 0; x < pw; x++) for (int f = 0; f < g->filters; f++) {
                long best = OUT(g, n, y * pool, x * pool, f);
                for (int dy = 0; dy < pool; dy++) for (int dx = 0; dx < pool; dx++) {
                    long at = OUT(g, n, y * pool + dy, x * pool + dx, f);
                    if (ref[at] > ref[best]) best = at;
                }
                long o = (((long)n * ph + y) * pw + x) * g->filters + f;
                refpool[o] = ref[best];
                dconv[best] = ref[best] > 0 ? dp[o] : 0;
            }
            ref_weights(g, in, dconv, refdw, batch);
            ref_input(g, dconv, w, refdin, batch);
            for (int run = 0; run < 6; run++) {
                const int p = run / 2, direct = run % 2;
                const dpk_path *k = dpk_path_named(paths[p]);
                if (!k || !dpk_conv_supports(k, g, DPK_FORWARD)) continue;
                dpk_conv variant = *g;
                variant.direct = direct;
                const int wf = dpk_conv_winograd(k, &variant, DPK_FORWARD), ww = dpk_conv_winograd(k, &variant, DPK_BACKWARD_WEIGHTS);
                const int wi = dpk_conv_winograd(k, &variant, DPK_BACKWARD_INPUT);
                if (direct && !dpk_conv_winograd(k, g, DPK_FORWARD)) continue;
                const dpk_conv *g = &variant;
                int with_input = dpk_conv_supports(k, g, DPK_BACKWARD_INPUT);
                double tf[1000], tb[1000];
                for (int r = 0; r < repeats && r < 1000; r++) {
                    double start = now();
                    dpk_conv_pool_forward(k, g, pool, in, w, b, pooled, argmax, scratch, batch);
                    double mid = now();
                    dpk_conv_pool_backward(k, g, pool, in, pooled, argmax, dp, w, wt, scratch, dw, db, with_input ? din : 0, batch);
                    tf[r] = mid - start;
                    tb[r] = now() - mid;
                }
                qsort(tf, repeats, sizeof(double), cmp);
                qsort(tb, repeats, sizeof(double), cmp);
                double ef = max_error(pooled, refpool, npool), eb = max_error(dw, refdw, nw);
                if (with_input && max_error(din, refdin, nin) > eb) eb = max_error(din, refdin, nin);
                const double bf = bound(wf), bb = bound(ww || (with_input && wi));
                if (ef > bf || eb > bb) failed = 1;
                char label[32], passes[4] = {wf ? 'f' : '-', ww ? 'w' : '-', with_input ? (wi ? 'i' : '-') : 0, 0};
                snprintf(label, sizeof label, "%s%s%s", paths[p], direct ? " direct" : wf || ww || wi ? " wino " : "", direct ? "" : wf || ww || wi ? passes : "");
                printf("  %-11s %-15s %8.1f us %7.1f GFLOP/s  error %.1e%s\n", "fused fwd", label, tf[repeats / 2] * 1e6,
                       flops / tf[repeats / 2] / 1e9, ef, ef > bf ? "  WRONG" : "");
                printf("  %-11s %-15s %8.1f us %7.1f GFLOP/s  error %.1e%s\n", with_input ? "fused bwd" : "fused bwd-w", label,
                       tb[repeats / 2] * 1e6, (with_input ? 2 : 1) * flops / tb[repeats / 2] / 1e9, eb, eb > bb ? "  WRONG" : "");
            }
            free(pooled); free(refpool); free(dp); free(scratch); free(dconv); free(db); free(refdw); free(refdin); free(argmax);
        }
        free(in); free(w); free(b); free(d); free(out); free(ref); free(dw); free(din); free(wt); free(cols);
    }
    return failed;
}
