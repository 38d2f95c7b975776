// Fixed-point passes of the exact gradient reduction, one loop each, compiled for AVX-512, AVX2
// and the baseline by target_clones (chosen at load time); every clone rounds the same way.
#include "include/ckernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define CLONES
#endif

CLONES uint32_t dpk_max_abs_bits(const float *x, long n)
{
    uint32_t largest = 0;
    for (long i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7fffffffu;
        largest = bits > largest ? bits : largest;
    }
    return largest;
}

CLONES void dpk_quantize_add(const float *x, long n, float scale, int32_t *acc)
{
    // The caller keeps |x·scale| within 2^29; the sum wraps (unsigned) as the reduction expects.
    for (long i = 0; i < n; i++) acc[i] = (int32_t)((uint32_t)acc[i] + (uint32_t)(int32_t)rintf(x[i] * scale));
}

CLONES void dpk_dequantize(const int32_t *q, long n, float unit, float *out)
{
    for (long i = 0; i < n; i++) out[i] = (float)q[i] * unit;
}
