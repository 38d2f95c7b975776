// Padding copies: the conv kernels read one buffer that already holds its zero border.
#include "include/ckernels.h"
#include <string.h>

void dpk_pad(const float *src, int batch, int h, int w, int c, float *dst, int ph, int pw, int top, int left)
{
    memset(dst, 0, sizeof(float) * batch * ph * pw * c);
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < h; y++)
            memcpy(dst + (((long)n * ph + y + top) * pw + left) * c, src + ((long)n * h + y) * w * c, sizeof(float) * w * c);
}

void dpk_crop(const float *src, int batch, int ph, int pw, int top, int left, float *dst, int h, int w, int c)
{
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((long)n * h + y) * w * c, src + (((long)n * ph + y + top) * pw + left) * c, sizeof(float) * w * c);
}
