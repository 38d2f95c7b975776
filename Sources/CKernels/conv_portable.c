// The kernels for any CPU: 4-float vectors (SSE2 on x86-64, NEON on aarch64).
#include "include/ckernels.h"
#define VL 4
#define NVMAX 2
#define RMAX1 12
#define RMAX2 6
#define FN(name) name##_portable
#include "conv_impl.h"
#include "pool_impl.h"
#include "fused_impl.h"
