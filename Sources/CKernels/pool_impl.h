// Max pooling over NHWC, channels VL at a time; included after conv_impl.h by each instruction set.
// Non-overlapping windows (stride = pool), 'valid'; the winner is the first maximum, as in TensorFlow.

#include "max_2x2_impl.h"

void FN(dpk_max_pool)(const float *in, float *out, int *argmax, int batch, int h, int w, int c, int p)
{
    const int oh = h / p, ow = w / p, vectors = c / VL * VL;
    vi lanes;
    for (int i = 0; i < VL; i++) lanes[i] = i;
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const int first = ((n * h + y * p) * w + x * p) * c;
                int ch = 0;
                if (p == 2)
                    for (; ch < vectors; ch += VL) {
                        const float *q = in + first + ch;
                        const long right = c, down = (long)w * c;
                        vi offset;
                        FN(store)(out + ch, FN(max_2x2)(FN(load)(q), FN(load)(q + right), FN(load)(q + down),
                                                        FN(load)(q + down + right), (int)right, (int)down, &offset));
                        vi index = lanes + (first + ch) + offset;
                        memcpy(argmax + ch, &index, sizeof index);
                    }
                for (; ch < vectors; ch += VL) {
                    vf best = FN(load)(in + first + ch);
                    vi index = lanes + (first + ch);
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            const int at = first + (dy * w + dx) * c + ch;
                            vf v = FN(load)(in + at);
                            vi better = v > best;
                            best = FN(pick)(better, v, best);
                            index = ((lanes + at) & better) | (index & ~better);
                        }
                    FN(store)(out + ch, best);
                    memcpy(argmax + ch, &index, sizeof index);
                }
                for (; ch < c; ch++) {
                    int index = first + ch;
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            const int at = first + (dy * w + dx) * c + ch;
                            if (in[at] > in[index]) index = at;
                        }
                    out[ch] = in[index];
                    argmax[ch] = index;
                }
                out += c;
                argmax += c;
            }
}

// Writes every input gradient once (the winner's share, zeros elsewhere), so nothing is zeroed first.
void FN(dpk_max_pool_backward)(const float *gout, const int *argmax, float *gin, int batch, int h, int w, int c, int p)
{
    const int oh = h / p, ow = w / p, vectors = c / VL * VL;
    vi lanes;
    for (int i = 0; i < VL; i++) lanes[i] = i;
    for (int n = 0; n < batch; n++) {
        float *image = gin + n * h * w * c;
        // Rows and columns no window covers.
        memset(image + oh * p * w * c, 0, sizeof(float) * (h - oh * p) * w * c);
        for (int y = 0; y < oh * p && ow * p < w; y++)
            memset(image + (y * w + ow * p) * c, 0, sizeof(float) * (w - ow * p) * c);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const int first = ((n * h + y * p) * w + x * p) * c;
                int ch = 0;
                for (; ch < vectors; ch += VL) {
                    vf g = FN(load)(gout + ch);
                    vi index;
                    memcpy(&index, argmax + ch, sizeof index);
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            const int at = first + (dy * w + dx) * c + ch;
                            FN(store)(gin + at, (vf)((vi)g & (index == lanes + at)));
                        }
                }
                for (; ch < c; ch++)
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            const int at = first + (dy * w + dx) * c + ch;
                            gin[at] = argmax[ch] == at ? gout[ch] : 0;
                        }
                gout += c;
                argmax += c;
            }
    }
}
