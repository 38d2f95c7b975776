// Kernel bench for batch normalisation's passes (Sources/CKernels/normalization.c): each against the
// plain loops it replaced, which must give the same bits, then timed in GB/s of the activations read
// and written, on the CIFAR-style net's shapes.
//   dev/cpu/run bn          (BATCH=10, a ghost batch-normalisation shard, REPEATS=50 by default)
#include "ckernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *randoms(long n) { float *p = malloc(sizeof(float) * n); for (long i = 0; i < n; i++) p[i] = (float)(rand() / (double)RAND_MAX * 2 - 1); return p; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

// The plain loops, with the compiler kept from vectorising or contracting them (the pragma inside:
// clang lets an optnone function contract past a file-scope one, as aarch64's FMAs showed).
#pragma clang fp contract(off)
__attribute__((optnone)) static void plain(const float *x, const float *g, long rows, int C, float *y, float *dx) {
#pragma clang fp contract(off)
    double *sum = calloc(4 * C, sizeof(double)), *sq = sum + C, *db = sum + 2 * C, *dg = sum + 3 * C;
    float *mean = malloc(sizeof(float) * 4 * C), *inv = mean + C, *mdy = mean + 2 * C, *mdx = mean + 3 * C;
    for (long i = 0; i < rows; i++) for (int c = 0; c < C; c++) sum[c] += x[i * C + c];
    for (int c = 0; c < C; c++) sum[c] /= rows;
    for (long i = 0; i < rows; i++) for (int c = 0; c < C; c++) { double d = (double)x[i * C + c] - sum[c]; sq[c] += d * d; }
    for (int c = 0; c < C; c++) { mean[c] = (float)sum[c]; inv[c] = 1 / __builtin_sqrtf((float)(sq[c] / rows) + 1e-3f); }
    for (long i = 0; i < rows; i++) for (int c = 0; c < C; c++) { float v = x[i * C + c] * inv[c] + -mean[c] * inv[c]; y[i * C + c] = v < 0 ? 0 : v; }
    for (long i = 0; i < rows; i++) for (int c = 0; c < C; c++) {
        float xh = (x[i * C + c] - mean[c]) * inv[c];
        db[c] += g[i * C + c];
        dg[c] += (double)g[i * C + c] * (double)xh;
    }
    for (int c = 0; c < C; c++) { mdy[c] = (float)(db[c] / rows); mdx[c] = (float)(dg[c] / rows); }
    for (long i = 0; i < rows; i++) for (int c = 0; c < C; c++) {
        float xh = (x[i * C + c] - mean[c]) * inv[c];
        dx[i * C + c] = 1.0f * inv[c] * (g[i * C + c] - mdy[c] - xh * mdx[c]);
    }
    free(sum); free(mean);
}

// The same through the kernels; returns the seconds of each pass group (statistics, apply, backward).
static void fast(const float *x, const float *g, long rows, int C, float *y, float *dx, double *t) {
    double *sum = calloc(4 * C, sizeof(double)), *sq = sum + C, *db = sum + 2 * C, *dg = sum + 3 * C;
    float *mean = malloc(sizeof(float) * 7 * C), *inv = mean + C, *mdy = mean + 2 * C, *mdx = mean + 3 * C;
    float *scale = mean + 4 * C, *shift = mean + 5 * C, *gamma = mean + 6 * C;
    double t0 = dpk_thread_seconds();
    dpk_channel_sums(x, rows, C, sum);
    for (int c = 0; c < C; c++) sum[c] /= rows;
    dpk_channel_squares(x, rows, C, sum, sq);
    for (int c = 0; c < C; c++) {
        mean[c] = (float)sum[c]; inv[c] = 1 / __builtin_sqrtf((float)(sq[c] / rows) + 1e-3f);
        gamma[c] = 1; scale[c] = inv[c]; shift[c] = -mean[c] * inv[c];
    }
    double t1 = dpk_thread_seconds();
    dpk_channel_affine(x, rows, C, scale, shift, y, 1);
    double t2 = dpk_thread_seconds();
    dpk_bn_backward_sums(x, g, rows, C, mean, inv, db, dg);
    for (int c = 0; c < C; c++) { mdy[c] = (float)(db[c] / rows); mdx[c] = (float)(dg[c] / rows); }
    dpk_bn_input_grad(x, g, rows, C, mean, inv, gamma, mdy, mdx, dx);
    double t3 = dpk_thread_seconds();
    t[0] = t1 - t0; t[1] = t2 - t1; t[2] = t3 - t2;
    free(sum); free(mean);
}

int main(void) {
    int batch = getenv("BATCH") ? atoi(getenv("BATCH")) : 10, repeats = getenv("REPEATS") ? atoi(getenv("REPEATS")) : 50;
    static const struct { const char *name; int pixels, channels; } shapes[] = {
        {"32x32x32", 1024, 32}, {"16x16x64", 256, 64}, {"8x8x128", 64, 128}, {"8x8x10 (a channel tail)", 64, 10},
    };
    int failed = 0;
    printf("batch normalisation, batch %d, median of %d (the thread's CPU time)\n", batch, repeats);
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long rows = (long)batch * shapes[s].pixels, n = rows * shapes[s].channels;
        float *x = randoms(n), *g = randoms(n), *y0 = malloc(4 * n), *dx0 = malloc(4 * n), *y = malloc(4 * n), *dx = malloc(4 * n);
        plain(x, g, rows, shapes[s].channels, y0, dx0);
        double t[3][1000];
        for (int r = 0; r < repeats && r < 1000; r++) {
            double each[3];
            fast(x, g, rows, shapes[s].channels, y, dx, each);
            for (int k = 0; k < 3; k++) t[k][r] = each[k];
        }
        int same = memcmp(y, y0, 4 * n) == 0 && memcmp(dx, dx0, 4 * n) == 0;
        failed |= !same;
        for (int k = 0; k < 3; k++) qsort(t[k], repeats, sizeof(double), cmp);
        // Bytes of activations: statistics read x twice; apply reads x, writes y; backward reads x and g twice, writes dx.
        double mb = 4.0 * n / 1e6;
        printf("  %-24s statistics %6.1f us %5.1f GB/s   apply+relu %6.1f us %5.1f GB/s   backward %6.1f us %5.1f GB/s   %s\n",
               shapes[s].name, t[0][repeats / 2] * 1e6, 2 * mb / t[0][repeats / 2] / 1e3, t[1][repeats / 2] * 1e6,
               2 * mb / t[1][repeats / 2] / 1e3, t[2][repeats / 2] * 1e6, 5 * mb / t[2][repeats / 2] / 1e3,
               same ? "same bits as the plain loops" : "DIFFERENT BITS");
        free(x); free(g); free(y0); free(dx0); free(y); free(dx);
    }
    return failed;
}
