// Conv + bias + ReLU + max pooling, image by image (Winograd's kernels where they fit): one image's conv output (and its gradient)
// lives in a small scratch buffer that stays in cache, instead of a whole batch's going through
// memory four times. Included after conv_impl.h, pool_impl.h and winograd_impl.h; filters are a multiple of VL.

void FN(dpk_conv_pool_forward)(const dpk_conv *g, int pool, const float *in, const float *w, const float *bias,
                               float *pooled, int *argmax, float *scratch, int batch)
{
    const long image = (long)g->in_h * g->in_w * g->in_c, out = (long)(g->out_h / pool) * (g->out_w / pool) * g->filters;
    const int winograd = FN(dpk_winograd_fits)(g, DPK_FORWARD);
    const float *u = winograd ? FN(wino_forward_kernel)(g, w) : 0;
    const FN(bmat) weights = winograd ? (FN(bmat)){0} : FN(forward_weights)(g, w);
    for (int n = 0; n < batch; n++) {
        if (winograd) FN(wino_forward)(g, in + n * image, u, bias, scratch, 1);
        else FN(forward_images)(g, in + n * image, weights, bias, scratch, 1);
        FN(dpk_max_pool)(scratch, pooled + n * out, argmax + n * out, 1, g->out_h, g->out_w, g->filters, pool);
    }
}

// dconv [h, w, c] = the pooled gradient at each window's winner, where the winner (the ReLU output)
// is positive, and zeros elsewhere; db += its column sums.
// Not static: conv_bf16.c's fused backward routes its pooled gradient with the AVX-512 one.
void FN(dpk_unpool_relu)(const float *dpooled, const float *pooled, const int *argmax, float *dconv, float *db,
                            int h, int w, int c, int p)
{
    const int oh = h / p, ow = w / p;
    vi lanes;
    for (int i = 0; i < VL; i++) lanes[i] = i;
    memset(dconv + oh * p * w * c, 0, sizeof(float) * (h - oh * p) * w * c);
    for (int y = 0; y < oh * p && ow * p < w; y++)
        memset(dconv + (y * w + ow * p) * c, 0, sizeof(float) * (w - ow * p) * c);
    // Blocks of up to 4 vectors of channels outside the pixels, so db's sums stay in registers
    // (in memory, each add would wait for the last one's store).
    for (int c0 = 0; c0 < c; c0 += 4 * VL) {
        const int vectors = (c - c0) / VL < 4 ? (c - c0) / VL : 4;
        vf sum[4];
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) sum[j] = FN(load)(db + c0 + j * VL);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const long q = ((long)y * ow + x) * c + c0;
                const int first = ((y * p) * w + x * p) * c + c0;
                UNROLL for (int j = 0; j < 4; j++) if (j < vectors) {
                    vf g = FN(load)(dpooled + q + j * VL);
                    g = (vf)((vi)g & (FN(load)(pooled + q + j * VL) > 0));
                    sum[j] += g;
                    vi index;
                    memcpy(&index, argmax + q + j * VL, sizeof index);
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            const int at = first + (dy * w + dx) * c + j * VL;
                            FN(store)(dconv + at, (vf)((vi)g & (index == lanes + at)));
                        }
                }
            }
        UNROLL for (int j = 0; j < 4; j++) if (j < vectors) FN(store)(db + c0 + j * VL, sum[j]);
    }
}

void FN(dpk_conv_pool_backward)(const dpk_conv *g, int pool, const float *in, const float *pooled, const int *argmax,
                                const float *dpooled, const float *w, float *wt, float *scratch,
                                float *dw, float *db, float *din, int batch)
{
    const long image = (long)g->in_h * g->in_w * g->in_c, out = (long)(g->out_h / pool) * (g->out_w / pool) * g->filters;
    const int winograd = FN(dpk_winograd_fits)(g, DPK_BACKWARD_WEIGHTS), winograd_input = din && FN(dpk_winograd_fits)(g, DPK_BACKWARD_INPUT);
    const float *u = winograd_input ? FN(wino_input_kernel)(g, w) : 0;
    float *sums = winograd ? FN(wino_sums)(g) : 0;
    memset(db, 0, sizeof(float) * g->filters);
    if (din && !winograd_input) FN(transpose_kernel)(g, w, wt);
    for (int n = 0; n < batch; n++) {
        FN(dpk_unpool_relu)(dpooled + n * out, pooled + n * out, argmax + n * out, scratch, db, g->out_h, g->out_w, g->filters, pool);
        if (winograd) FN(wino_weight_sums)(g, in + n * image, scratch, sums, n > 0, 1);
        else FN(weights_image)(g, in + n * image, scratch, dw, n > 0);
        // After its weight gradient: din may be the buffer `in` is (the padded input).
        if (winograd_input) FN(wino_input)(g, scratch, u, din + n * image, 1);
        else if (din) FN(input_image)(g, scratch, wt, din + n * image);
    }
    if (winograd) FN(wino_weights)(g, sums, dw);
}
