// Loops Swift leaves scalar (it cannot tell the buffers apart), compiled for AVX-512 (with 64-bit
// lane multiplies), AVX2 and the baseline by target_clones; every clone gives the same bits.
// Dropout's draw is CounterRandom's (Sources/NN/CounterRandom.swift) lane by lane, each step exact
// or correctly rounded; the column sums add the rows in order, vectors running across columns.
#include "include/ckernels.h"

#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f,avx512dq", "avx2,fma", "default")))
#else
#define CLONES
#endif

// SplitMix64's finaliser, as CounterRandom.mix.
static inline uint64_t mix(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

CLONES void dpk_dropout(uint64_t key, long n, float keep_probability, const float *restrict x, float *restrict y, bool *restrict kept)
{
    for (long i = 0; i < n; i++) {
        uint64_t bits = mix(key ^ ((uint64_t)i * 0xD1B54A32D192ED03ull));
        float unit = (float)(uint32_t)(bits >> 40) * (1.0f / 16777216.0f);
        bool keep = unit < keep_probability;
        kept[i] = keep;
        y[i] = keep ? x[i] / keep_probability : 0;
    }
}

CLONES void dpk_dropout_backward(const bool *restrict kept, long n, float keep_probability, const float *restrict g, float *restrict dx)
{
    for (long i = 0; i < n; i++) dx[i] = kept[i] ? g[i] / keep_probability : 0;
}

#pragma clang fp contract(off)

CLONES void dpk_column_sums(const float *restrict x, long rows, int columns, float *restrict sum)
{
    for (int j = 0; j < columns; j++) sum[j] = 0;
    for (long i = 0; i < rows; i++, x += columns)
        for (int j = 0; j < columns; j++) sum[j] += x[j];
}
