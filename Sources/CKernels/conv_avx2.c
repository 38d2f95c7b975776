// The kernels for AVX2 + FMA (16 vector registers: tiles up to 6 rows x 16 floats; 4 x 24 spills).
#if defined(__x86_64__)
#include "include/ckernels.h"
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define VL 8
#define NVMAX 2
#define RMAX1 12
#define RMAX2 6
#define FN(name) name##_avx2
#define PERMUTE(table, index) __builtin_ia32_vpermilvarps256(table, index)
#define WINNER_INPUT
#include "conv_impl.h"
#include "pool_impl.h"
#include "winograd_impl.h"
#include "fused_impl.h"
#pragma clang attribute pop
#endif
