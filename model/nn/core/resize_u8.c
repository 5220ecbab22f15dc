/* resize_u8.c: OpenCV's cv::resize with INTER_LINEAR on 8-bit images, which mmdetection's
 * test pipeline calls (mmcv.imresize, backend cv2) before normalising. OpenCV works in
 * fixed point: each tap's weight is rounded to 1/2048, the horizontal pass keeps the
 * integer sums, and the vertical pass drops 4 bits of each row and 16 of each product
 * before rounding, so the result differs from a float bilinear resize by up to a grey
 * level. Following those steps gives OpenCV's bytes (tests/test_htc.sh checks it). */
#include "../nn.h"

#include <math.h>

#define COEF_SCALE 2048 /* OpenCV's INTER_RESIZE_COEF_SCALE: weights in 11 bits */

/* The source index and the two weights of destination index d: OpenCV's
 * fx = (float)((d + 0.5) * scale - 0.5), floored, clamped to the edges. */
static void tap(int d, double scale, int n_src, int clamp, int *s, short w[2]) {
    float f = (float)((d + 0.5) * scale - 0.5);
    int i = (int)floorf(f);
    f -= (float)i;
    if (clamp && i < 0)
        i = 0, f = 0;
    if (clamp && i >= n_src - 1)
        i = n_src - 1, f = 0;
    *s = i;
    w[0] = (short)lrintf((1.0f - f) * COEF_SCALE);
    w[1] = (short)lrintf(f * COEF_SCALE);
}

int nn_resize_u8_linear(nn_arena *a, const uint8_t *src, int sw, int sh, int cn, uint8_t *dst, int dw, int dh,
                        avps_error *err) {
    if (sw == dw && sh == dh) {
        for (size_t i = 0; i < (size_t)sw * sh * cn; i++)
            dst[i] = src[i];
        return 0;
    }
    double sx = 1.0 / ((double)dw / sw), sy = 1.0 / ((double)dh / sh);
    int *xofs = nn_arena_alloc(a, sizeof(int) * (size_t)dw, err);
    int *rows = nn_arena_alloc(a, sizeof(int) * (size_t)dw * cn * 2, err);
    short *alpha = nn_arena_alloc(a, sizeof(short) * 2 * (size_t)dw, err);
    if (!xofs || !rows || !alpha)
        return -1;
    for (int x = 0; x < dw; x++)
        tap(x, sx, sw, 1, &xofs[x], &alpha[2 * x]);
    int *h0 = rows, *h1 = rows + (size_t)dw * cn;
    for (int y = 0; y < dh; y++) {
        int s;
        short beta[2];
        tap(y, sy, sh, 0, &s, beta);
        int r[2] = {s < 0 ? 0 : s >= sh ? sh - 1 : s, s + 1 < 0 ? 0 : s + 1 >= sh ? sh - 1 : s + 1};
        int *hr[2] = {h0, h1};
        for (int k = 0; k < 2; k++) {
            const uint8_t *row = src + (size_t)r[k] * sw * cn;
            for (int x = 0; x < dw; x++) {
                int i = xofs[x];
                for (int c = 0; c < cn; c++) {
                    int a = row[(size_t)i * cn + c];
                    int b = i + 1 < sw ? row[(size_t)(i + 1) * cn + c] : 0;
                    hr[k][(size_t)x * cn + c] = a * alpha[2 * x] + b * alpha[2 * x + 1];
                }
            }
        }
        uint8_t *out = dst + (size_t)y * dw * cn;
        for (size_t i = 0; i < (size_t)dw * cn; i++) {
            int v = (((beta[0] * (h0[i] >> 4)) >> 16) + ((beta[1] * (h1[i] >> 4)) >> 16) + 2) >> 2;
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    return 0;
}
