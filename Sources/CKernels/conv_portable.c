// The kernels for any CPU: 4-float vectors (SSE2 on x86-64, NEON on aarch64).
#include "include/ckernels.h"
#define VL 4
#if defined(__aarch64__)
// NEON has 32 registers: tiles up to 6 rows x 16 floats (24 accumulators), as AVX-512's.
#define NVMAX 4
#define RMAX1 12
#define RMAX2 12
#define RMAX3 8
#define RMAX4 6
#else
// SSE2 has 16: 12 accumulators.
#define NVMAX 2
#define RMAX1 12
#define RMAX2 6
#endif
#define FN(name) name##_portable
#define WINNER_INPUT
#include "conv_impl.h"
#include "pool_impl.h"
#include "winograd_impl.h"
#include "fused_impl.h"
