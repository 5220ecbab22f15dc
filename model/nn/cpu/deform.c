/* deform.c: deformable convolution v1 and v2 (modulated) on the CPU, as
 * torchvision.ops.deform_conv2d: im2col with each tap sampled bilinearly at its learnt
 * offset (and scaled by its mask in v2), then the same GEMM as a plain convolution.
 * Needed by the DCN backbones and heads of issues 13 and 14. */
#include "../nn.h"

#include <math.h>

/* Same bound on im2col scratch as the plain convolution (ops.c). */
#define DEFORM_COL_BUDGET ((size_t)2 << 20)

/* One tap's bilinear sample at one output pixel, as torchvision's bilinear_interpolate
 * has it: 0 outside (-1, h) x (-1, w), each of the four corners that falls off the map
 * counts as 0 (index -1), weights hy*hx, hy*lx, ly*hx, ly*lx in that order. The sample
 * position depends on the tap and the pixel only, so it is worked out once and used for
 * every channel of the tap's group. */
typedef struct {
    int idx[4];
    float wt[4];
} deform_corners;

static void deform_corners_at(int h, int w, float y, float x, deform_corners *dc) {
    if (y <= -1.0f || y >= (float)h || x <= -1.0f || x >= (float)w) {
        *dc = (deform_corners){{-1, -1, -1, -1}, {0, 0, 0, 0}};
        return;
    }
    int y0 = (int)floorf(y), x0 = (int)floorf(x), y1 = y0 + 1, x1 = x0 + 1;
    float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    dc->idx[0] = y0 >= 0 && x0 >= 0 ? y0 * w + x0 : -1;
    dc->idx[1] = y0 >= 0 && x1 <= w - 1 ? y0 * w + x1 : -1;
    dc->idx[2] = y1 <= h - 1 && x0 >= 0 ? y1 * w + x0 : -1;
    dc->idx[3] = y1 <= h - 1 && x1 <= w - 1 ? y1 * w + x1 : -1;
    dc->wt[0] = hy * hx, dc->wt[1] = hy * lx, dc->wt[2] = ly * hx, dc->wt[3] = ly * lx;
}

static float deform_sample(const float *plane, const deform_corners *dc) {
    float v1 = dc->idx[0] >= 0 ? plane[dc->idx[0]] : 0.0f, v2 = dc->idx[1] >= 0 ? plane[dc->idx[1]] : 0.0f;
    float v3 = dc->idx[2] >= 0 ? plane[dc->idx[2]] : 0.0f, v4 = dc->idx[3] >= 0 ? plane[dc->idx[3]] : 0.0f;
    return dc->wt[0] * v1 + dc->wt[1] * v2 + dc->wt[2] * v3 + dc->wt[3] * v4;
}

typedef struct {
    const nn_conv *cv;
    int h, w, wo, dilation, chans_per_group, groups;
    size_t pixels;
    const float *in, *offset, *mask; /* one image each; mask may be NULL */
    deform_corners *corners;         /* groups * kh * kw x block: scratch */
} deform_job;

/* Columns [j0, j0 + cols) of the sampled im2col matrix: row (c, ky, kx), column =
 * output pixel; offset channel 2 * (g * kh * kw + ky * kw + kx) holds dy, the next dx. */
static void deform_im2col_block(const deform_job *jb, size_t j0, int cols, float *col) {
    const nn_conv *cv = jb->cv;
    int kk = cv->kh * cv->kw, c_in = cv->in;
    for (int tap = 0; tap < jb->groups * kk; tap++) {
        int ky = (tap % kk) / cv->kw, kx = tap % cv->kw;
        const float *dy = jb->offset + (size_t)(2 * tap) * jb->pixels;
        const float *dx = dy + jb->pixels;
        deform_corners *dc = jb->corners + (size_t)tap * cols;
        int oy = (int)(j0 / (size_t)jb->wo), ox = (int)(j0 % (size_t)jb->wo);
        for (int j = 0; j < cols; j++) {
            size_t p = j0 + (size_t)j;
            float y = (float)(oy * cv->stride - cv->pad + ky * jb->dilation) + dy[p];
            float x = (float)(ox * cv->stride - cv->pad + kx * jb->dilation) + dx[p];
            deform_corners_at(jb->h, jb->w, y, x, &dc[j]);
            if (++ox == jb->wo)
                ox = 0, oy++;
        }
    }
    for (int c = 0; c < c_in; c++) {
        int g = c / jb->chans_per_group;
        const float *plane = jb->in + (size_t)c * jb->h * jb->w;
        for (int k = 0; k < kk; k++) {
            int tap = g * kk + k;
            const deform_corners *dc = jb->corners + (size_t)tap * cols;
            const float *m = jb->mask ? jb->mask + (size_t)tap * jb->pixels + j0 : NULL;
            float *dst = col + ((size_t)c * kk + k) * (size_t)cols;
            if (m)
                for (int j = 0; j < cols; j++)
                    dst[j] = m[j] * deform_sample(plane, &dc[j]);
            else
                for (int j = 0; j < cols; j++)
                    dst[j] = deform_sample(plane, &dc[j]);
        }
    }
}

static int deform_check(const nn_conv *cv, const nn_tensor *in, const nn_tensor *offset, const nn_tensor *mask,
                        int dilation, int groups, int ho, int wo, avps_error *err) {
    if (in->c != cv->in)
        return avps_fail(err, "native engine: deformable convolution expects %d channels, got %d", cv->in, in->c);
    if (dilation < 1 || cv->stride < 1 || groups < 1 || in->c % groups != 0)
        return avps_fail(err, "native engine: deformable convolution: bad dilation %d, stride %d or offset groups %d"
                              " for %d channels", dilation, cv->stride, groups, in->c);
    if (ho <= 0 || wo <= 0)
        return avps_fail(err, "native engine: deformable convolution input %dx%d is smaller than its kernel", in->w,
                         in->h);
    int taps = groups * cv->kh * cv->kw;
    if (offset->n != in->n || offset->c != 2 * taps || offset->h != ho || offset->w != wo)
        return avps_fail(err, "native engine: deformable convolution offset is %dx%dx%dx%d, expected %dx%dx%dx%d",
                         offset->n, offset->c, offset->h, offset->w, in->n, 2 * taps, ho, wo);
    if (mask && (mask->n != in->n || mask->c != taps || mask->h != ho || mask->w != wo))
        return avps_fail(err, "native engine: deformable convolution mask is %dx%dx%dx%d, expected %dx%dx%dx%d",
                         mask->n, mask->c, mask->h, mask->w, in->n, taps, ho, wo);
    return 0;
}

int nn_cpu_deform_conv2d(int use_blas, nn_device dev, nn_arena *a, const nn_conv *cv, const nn_tensor *in,
                         const nn_tensor *offset, const nn_tensor *mask, int dilation, int offset_groups, int relu,
                         nn_tensor *out, avps_error *err) {
    int ho = (in->h + 2 * cv->pad - (dilation * (cv->kh - 1) + 1)) / (cv->stride > 0 ? cv->stride : 1) + 1;
    int wo = (in->w + 2 * cv->pad - (dilation * (cv->kw - 1) + 1)) / (cv->stride > 0 ? cv->stride : 1) + 1;
    if (deform_check(cv, in, offset, mask, dilation, offset_groups, ho, wo, err) != 0)
        return -1;
    if (nn_tensor_new(a, dev, in->n, cv->out, ho, wo, out, err) != 0)
        return -1;
    size_t pixels = (size_t)ho * wo, ckk = (size_t)cv->in * cv->kh * cv->kw;
    size_t block = DEFORM_COL_BUDGET / ckk;
    if (block < 64)
        block = 64;
    if (block > pixels)
        block = pixels;
    float *col = nn_arena_alloc(a, ckk * block * sizeof(float), err);
    deform_corners *corners =
        nn_arena_alloc(a, (size_t)offset_groups * cv->kh * cv->kw * block * sizeof(deform_corners), err);
    if (!col || !corners)
        return -1;
    if ((size_t)in->h * in->w > (size_t)1 << 30)
        return avps_fail(err, "native engine: deformable convolution input %dx%d is too large", in->w, in->h);
    deform_job jb = {cv, in->h, in->w, wo, dilation, in->c / offset_groups, offset_groups, pixels, NULL, NULL, NULL,
                     corners};
    for (int n = 0; n < in->n; n++) {
        jb.in = in->data + (size_t)n * in->c * in->h * in->w;
        jb.offset = offset->data + (size_t)n * offset->c * pixels;
        jb.mask = mask ? mask->data + (size_t)n * mask->c * pixels : NULL;
        float *dst = out->data + (size_t)n * cv->out * pixels;
        for (size_t j0 = 0; j0 < pixels; j0 += block) {
            int cols = (int)(pixels - j0 < block ? pixels - j0 : block);
            deform_im2col_block(&jb, j0, cols, col);
            nn_gemm(use_blas, cv->out, cols, (int)ckk, cv->weight, (int)ckk, col, cols, 0, dst + j0, (int)pixels);
        }
        for (int r = 0; r < cv->out; r++) {
            float *o = dst + (size_t)r * pixels, bv = cv->bias ? cv->bias[r] : 0.0f;
            for (size_t j = 0; j < pixels; j++) {
                float v = o[j] + bv;
                o[j] = relu && v < 0 ? 0.0f : v;
            }
        }
    }
    return 0;
}
