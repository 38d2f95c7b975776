// Batch normalisation's passes over [rows, channels], one loop nest each with the channels innermost,
// compiled for AVX-512, AVX2 and the baseline by target_clones. Vectors run across channels, so every
// channel's sum still adds the rows in order, and contraction into FMAs is off: every clone gives the
// bits the plain loops give (Swift left these scalar: it cannot tell the buffers apart).
#include "include/ckernels.h"

#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define CLONES
#endif

#pragma clang fp contract(off)

CLONES void dpk_channel_sums(const float *restrict x, long rows, int channels, double *restrict sum)
{
    for (long i = 0; i < rows; i++, x += channels)
        for (int c = 0; c < channels; c++) sum[c] += x[c];
}

CLONES void dpk_channel_squares(const float *restrict x, long rows, int channels, const double *restrict mean, double *restrict squares)
{
    for (long i = 0; i < rows; i++, x += channels)
        for (int c = 0; c < channels; c++) {
            double d = (double)x[c] - mean[c];
            squares[c] += d * d;
        }
}

CLONES void dpk_channel_affine(const float *restrict x, long rows, int channels, const float *restrict scale,
                               const float *restrict shift, float *restrict y, int relu)
{
    for (long i = 0; i < rows; i++, x += channels, y += channels)
        for (int c = 0; c < channels; c++) {
            float v = x[c] * scale[c] + shift[c];
            y[c] = relu && v < 0 ? 0 : v;
        }
}

CLONES void dpk_bn_backward_sums(const float *restrict x, const float *restrict g, long rows, int channels, const float *restrict mean,
                                 const float *restrict inverse, double *restrict dbeta, double *restrict dgamma)
{
    for (long i = 0; i < rows; i++, x += channels, g += channels)
        for (int c = 0; c < channels; c++) {
            float x_hat = (x[c] - mean[c]) * inverse[c];
            dbeta[c] += g[c];
            dgamma[c] += (double)g[c] * (double)x_hat;
        }
}

CLONES void dpk_bn_input_grad(const float *restrict x, const float *restrict g, long rows, int channels, const float *restrict mean,
                              const float *restrict inverse, const float *restrict gamma, const float *restrict mean_dy,
                              const float *restrict mean_dy_x_hat, float *restrict dx)
{
    for (long i = 0; i < rows; i++, x += channels, g += channels, dx += channels)
        for (int c = 0; c < channels; c++) {
            float x_hat = (x[c] - mean[c]) * inverse[c];
            dx[c] = gamma[c] * inverse[c] * (g[c] - mean_dy[c] - x_hat * mean_dy_x_hat[c]);
        }
}
