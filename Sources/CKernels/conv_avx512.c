// The kernels for AVX-512 (32 vector registers: tiles up to 6 rows x 64 floats).
#if defined(__x86_64__)
#include "include/ckernels.h"
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))), apply_to = function)
#define VL 16
#define NVMAX 4
#define RMAX1 12
#define RMAX2 12
#define RMAX3 8
#define RMAX4 6
#define FN(name) name##_avx512
#include "conv_impl.h"
#include "pool_impl.h"
#include "winograd_impl.h"
#include "fused_impl.h"
#pragma clang attribute pop
#endif
