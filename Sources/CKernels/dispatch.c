// The kernels' instruction sets, which of them this CPU runs (CPUID), and calls through one of them.
#include "include/ckernels.h"
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#include <pmmintrin.h>
#endif

#define DECLARE(isa)                                                                                          \
    void dpk_conv_forward_##isa(const dpk_conv *, const float *, const float *, const float *, float *, int); \
    void dpk_conv_backward_weights_##isa(const dpk_conv *, const float *, const float *, float *, int);       \
    void dpk_conv_backward_input_##isa(const dpk_conv *, const float *, const float *, float *, float *, int); \
    void dpk_relu_backward_bias_##isa(float *, const float *, int, int, float *);                            \
    void dpk_max_pool_##isa(const float *, float *, int *, int, int, int, int, int);                         \
    void dpk_max_pool_backward_##isa(const float *, const int *, float *, int, int, int, int, int);           \
    void dpk_conv_pool_forward_##isa(const dpk_conv *, int, const float *, const float *, const float *,     \
                                      float *, int *, float *, int);                                         \
    void dpk_conv_pool_backward_##isa(const dpk_conv *, int, const float *, const float *, const int *,      \
                                       const float *, const float *, float *, float *, float *, float *,    \
                                       float *, int);                                                        \
    int dpk_winograd_fits_##isa(const dpk_conv *, int);                                                          \
    void dpk_winograd_forward_##isa(const dpk_conv *, const float *, const float *, const float *, float *, int); \
    void dpk_winograd_backward_weights_##isa(const dpk_conv *, const float *, const float *, float *, int);       \
    void dpk_winograd_backward_input_##isa(const dpk_conv *, const float *, const float *, float *, float *, int); \
    double fma_loop_##isa(long);
#define ENTRY(isa, vl) {#isa, vl, dpk_conv_forward_##isa, dpk_conv_backward_weights_##isa, \
                        dpk_conv_backward_input_##isa, dpk_relu_backward_bias_##isa, \
                        dpk_max_pool_##isa, dpk_max_pool_backward_##isa, dpk_conv_pool_forward_##isa, \
                        dpk_conv_pool_backward_##isa, {dpk_winograd_fits_##isa, dpk_winograd_forward_##isa, \
                        dpk_winograd_backward_weights_##isa, dpk_winograd_backward_input_##isa}, fma_loop_##isa}

struct dpk_path {
    const char *name;
    int vl;
    void (*forward)(const dpk_conv *, const float *, const float *, const float *, float *, int);
    void (*backward_weights)(const dpk_conv *, const float *, const float *, float *, int);
    void (*backward_input)(const dpk_conv *, const float *, const float *, float *, float *, int);
    void (*relu_backward_bias)(float *, const float *, int, int, float *);
    void (*max_pool)(const float *, float *, int *, int, int, int, int, int);
    void (*max_pool_backward)(const float *, const int *, float *, int, int, int, int, int);
    void (*conv_pool_forward)(const dpk_conv *, int, const float *, const float *, const float *, float *, int *, float *, int);
    void (*conv_pool_backward)(const dpk_conv *, int, const float *, const float *, const int *, const float *, const float *,
                               float *, float *, float *, float *, float *, int);
    struct {
        int (*fits)(const dpk_conv *, int);
        void (*forward)(const dpk_conv *, const float *, const float *, const float *, float *, int);
        void (*backward_weights)(const dpk_conv *, const float *, const float *, float *, int);
        void (*backward_input)(const dpk_conv *, const float *, const float *, float *, float *, int);
    } winograd;
    double (*fma_loop)(long);
};
typedef struct dpk_path path;

DECLARE(portable)
#if defined(__x86_64__)
DECLARE(avx2)
DECLARE(avx512)
#endif

// Best first.
static const path paths[] = {
#if defined(__x86_64__)
    ENTRY(avx512, 16),
    ENTRY(avx2, 8),
#endif
    ENTRY(portable, 4),
};
enum { PATH_COUNT = sizeof paths / sizeof paths[0] };

static int runs_here(const path *p)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(p->name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    if (strcmp(p->name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(p->name, "portable") == 0;
}

const dpk_path *dpk_best_path(void)
{
    for (int i = 0; i < PATH_COUNT; i++)
        if (runs_here(&paths[i])) return &paths[i];
    return &paths[PATH_COUNT - 1];
}

const dpk_path *dpk_path_named(const char *name)
{
    for (int i = 0; i < PATH_COUNT; i++)
        if (strcmp(paths[i].name, name) == 0 && runs_here(&paths[i])) return &paths[i];
    return 0;
}

const char *dpk_path_name(const dpk_path *p) { return p->name; }

void dpk_flush_denormals(void)
{
#if defined(__x86_64__)
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" ::"r"(fpcr | (1ul << 24)));  // FZ
#endif
}

static int fits(const path *p, const dpk_conv *g, int pass)
{
    if (g->filters % p->vl != 0) return 0;
    return pass != DPK_BACKWARD_INPUT || (g->kernel * g->in_c) % p->vl == 0;
}

// The path's own kernels when the channels fill its vectors, else the widest narrower path's that
// this CPU runs (24 filters take AVX2's 8-float vectors on an AVX-512 CPU, not im2col), else none.
// A function of the geometry: the same layer always runs the same kernels.
static const path *fitting(const dpk_path *p, const dpk_conv *g, int pass)
{
    for (const path *q = p; q < paths + PATH_COUNT; q++)
        if ((q == p || runs_here(q)) && fits(q, g, pass)) return q;
    return 0;
}

int dpk_conv_supports(const dpk_path *p, const dpk_conv *g, int pass) { return fitting(p, g, pass) != 0; }

// Each pass runs Winograd's kernels where the fitting path's take the geometry, else the direct ones.
void dpk_conv_forward(const dpk_path *p, const dpk_conv *g, const float *in, const float *w, const float *bias, float *out, int batch)
{
    const path *q = fitting(p, g, DPK_FORWARD);
    (q->winograd.fits(g, DPK_FORWARD) ? q->winograd.forward : q->forward)(g, in, w, bias, out, batch);
}

void dpk_conv_backward_weights(const dpk_path *p, const dpk_conv *g, const float *in, const float *dout, float *dw, int batch)
{
    const path *q = fitting(p, g, DPK_BACKWARD_WEIGHTS);
    (q->winograd.fits(g, DPK_BACKWARD_WEIGHTS) ? q->winograd.backward_weights : q->backward_weights)(g, in, dout, dw, batch);
}

void dpk_conv_backward_input(const dpk_path *p, const dpk_conv *g, const float *dout, const float *w, float *wt, float *din, int batch)
{
    const path *q = fitting(p, g, DPK_BACKWARD_INPUT);
    (q->winograd.fits(g, DPK_BACKWARD_INPUT) ? q->winograd.backward_input : q->backward_input)(g, dout, w, wt, din, batch);
}

int dpk_conv_winograd(const dpk_path *p, const dpk_conv *g, int pass)
{
    const path *q = fitting(p, g, pass);
    return q && q->winograd.fits(g, pass);
}

void dpk_relu_backward_bias(const dpk_path *p, float *grad, const float *out, int rows, int columns, float *db)
{
    p->relu_backward_bias(grad, out, rows, columns, db);
}

void dpk_max_pool(const dpk_path *p, const float *in, float *out, int *argmax, int batch, int h, int w, int c, int pool)
{
    p->max_pool(in, out, argmax, batch, h, w, c, pool);
}

void dpk_max_pool_backward(const dpk_path *p, const float *gout, const int *argmax, float *gin, int batch, int h, int w, int c, int pool)
{
    p->max_pool_backward(gout, argmax, gin, batch, h, w, c, pool);
}

void dpk_conv_pool_forward(const dpk_path *p, const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                           float *pooled, int *argmax, float *scratch, int batch)
{
    fitting(p, g, DPK_FORWARD)->conv_pool_forward(g, pool, in, w, bias, pooled, argmax, scratch, batch);
}

void dpk_conv_pool_backward(const dpk_path *p, const dpk_conv *g, int pool, const float *in, const float *pooled, const int *argmax,
                            const float *dpooled, const float *w, float *wt, float *scratch, float *dw, float *db, float *din, int batch)
{
    fitting(p, g, din ? DPK_BACKWARD_INPUT : DPK_BACKWARD_WEIGHTS)->conv_pool_backward(g, pool, in, pooled, argmax, dpooled, w, wt,
                                                                                       scratch, dw, db, din, batch);
}

double dpk_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

double dpk_thread_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The limit of a path's vectors (NULL: the fastest path's). Intel's cores run AVX2's FMAs at half
// AVX-512's rate (Zen 4's at the same), so a forced avx2 path, which stands for an AVX2 CPU, is
// held to AVX2's limit. Timed in this thread's CPU seconds: on a shared machine the time other
// processes hold the core is not the core's limit.
double dpk_fma_peak(const dpk_path *forced, double seconds)
{
    const path *p = forced ? forced : dpk_best_path();
    double flops = 0, start = dpk_thread_seconds(), elapsed;
    do flops += p->fma_loop(1 << 20);
    while ((elapsed = dpk_thread_seconds() - start) < seconds);
    return flops / elapsed;
}
