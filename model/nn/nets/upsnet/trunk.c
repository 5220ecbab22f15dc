/* trunk.c: UPSNet's trunk on one image: the preprocessing of its test code (BGR, pixel
 * means subtracted before the resize, cv2's INTER_LINEAR resize by the scale factor,
 * zero padding), the Caffe-style ResNet (upsnet/models/resnet.py) and the FPN with the
 * GAP term (upsnet/models/fpn.py). */
#include "upsnet.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <time.h>

double ups_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- cv2.resize -------------------------------------------------------------------- */

/* One axis's taps as cv2's resize computes them for INTER_LINEAR (ksize 2): the source
 * position in float from the scale 1 / f in double, floored. Columns (clamp) off the
 * left edge take the first pixel and off the right edge the last, with weights (1, 0);
 * rows keep their position and weights, and the two rows read are clipped to the image
 * instead (resize.cpp: xofs/alpha clamped, yofs/beta not), which differs in the last
 * bit where an upscale reaches past the first or last row. */
static void cv_linear_taps(int src_n, int dst_n, double f, int clamp, int *ofs, float *alpha) {
    double scale = 1.0 / f;
    for (int d = 0; d < dst_n; d++) {
        float fx = (float)((d + 0.5) * scale - 0.5);
        int sx = (int)floorf(fx);
        fx -= (float)sx;
        if (clamp && sx < 0)
            fx = 0, sx = 0;
        if (clamp && sx >= src_n - 1)
            fx = 0, sx = src_n - 1;
        ofs[d] = sx;
        alpha[2 * d] = 1.0f - fx, alpha[2 * d + 1] = fx;
    }
}

static int clip_row(int y, int n) { return y < 0 ? 0 : y >= n ? n - 1 : y; }

/* cv2's INTER_AREA fast path, which INTER_LINEAR takes for an exact 2x downscale, for a
 * multi-channel image (UPSNet resizes BGR; only 1 and 4 channels have a SIMD loop): a
 * full 2x2 block is ((a + b) + c) + d times 0.25, row by row; the blocks the odd last
 * row or column leaves partial (the size is cvRound(side / 2)) are the mean of the
 * pixels they have, sum / count. */
static void cv_area_half(const float *src, int sw, int sh, float *dst, int dw, int dh) {
    for (int y = 0; y < dh; y++) {
        int y0 = 2 * y, full_row = y0 + 2 <= sh;
        for (int x = 0; x < dw; x++) {
            int x0 = 2 * x;
            float *out = dst + (size_t)y * dw + x;
            if (full_row && x0 + 2 <= sw) {
                const float *s0 = src + (size_t)y0 * sw + x0, *s1 = s0 + sw;
                *out = (((s0[0] + s0[1]) + s1[0]) + s1[1]) * 0.25f;
                continue;
            }
            float sum = 0;
            int count = 0;
            for (int yy = y0; yy < y0 + 2 && yy < sh; yy++)
                for (int xx = x0; xx < x0 + 2 && xx < sw; xx++)
                    sum += src[(size_t)yy * sw + xx], count++;
            *out = count ? sum / (float)count : 0;
        }
    }
}

int ups_cv_resize_linear(nn_arena *a, const float *src, int sw, int sh, float *dst, int dw, int dh, double fx,
                         double fy, avps_error *err) {
    if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || !(fx > 0) || !(fy > 0))
        return avps_fail(err, "native engine: resize of %dx%d to %dx%d", sw, sh, dw, dh);
    if (fabs(1.0 / fx - 2) < DBL_EPSILON && fabs(1.0 / fy - 2) < DBL_EPSILON) {
        cv_area_half(src, sw, sh, dst, dw, dh);
        return 0;
    }
    nn_arena_mark m = nn_arena_get_mark(a);
    int *xofs = nn_arena_alloc(a, sizeof(int) * (size_t)(dw + dh), err);
    float *alpha = nn_arena_alloc(a, sizeof(float) * 2 * (size_t)(dw + dh), err);
    float *rows = nn_arena_alloc(a, sizeof(float) * 2 * (size_t)dw, err);
    if (!xofs || !alpha || !rows)
        return -1;
    int *yofs = xofs + dw;
    float *beta = alpha + 2 * (size_t)dw;
    cv_linear_taps(sw, dw, fx, 1, xofs, alpha);
    cv_linear_taps(sh, dh, fy, 0, yofs, beta);
    int row_y[2] = {-1, -1}; /* which source rows the two buffers hold */
    for (int dy = 0; dy < dh; dy++) {
        for (int k = 0; k < 2; k++) {
            int sy = clip_row(yofs[dy] + k, sh);
            if (row_y[k] == sy)
                continue;
            const float *s = src + (size_t)sy * sw;
            float *d = rows + (size_t)k * dw;
            for (int x = 0; x < dw; x++) {
                int sx = xofs[x];
                d[x] = sx + 1 < sw ? s[sx] * alpha[2 * x] + s[sx + 1] * alpha[2 * x + 1] : s[sx];
            }
            row_y[k] = sy;
        }
        float b0 = beta[2 * dy], b1 = beta[2 * dy + 1];
        float *out = dst + (size_t)dy * dw;
        for (int x = 0; x < dw; x++)
            out[x] = rows[x] * b0 + rows[dw + x] * b1;
    }
    nn_arena_rewind(a, m);
    return 0;
}

int ups_cv_nearest_index(int x, double fx, int in) {
    int s = (int)floor(x * (1.0 / fx));
    return s < in - 1 ? s : in - 1;
}

/* ---- preprocessing ------------------------------------------------------------------ */

/* upsnet/dataset/base_dataset.py: im_scale = min_size / short side, or max_size / long
 * side when round(im_scale * long side) would pass max_size (np.round: half to even). */
static double ups_scale(const upsnet *u, uint32_t w, uint32_t h) {
    double lo = w < h ? w : h, hi = w > h ? w : h;
    double s = u->min_size / lo;
    if (nearbyint(s * hi) > u->max_size)
        s = u->max_size / hi;
    return s;
}

int ups_preprocess(upsnet *u, const uint8_t *rgb, uint32_t w, uint32_t h, ups_image *im, avps_error *err) {
    nn_arena *a = &u->arena;
    im->orig_w = w, im->orig_h = h;
    im->im_scale = ups_scale(u, w, h);
    im->im_scale_f32 = (float)im->im_scale;
    /* cv2: the output size is cvRound(side * f) (half to even) */
    double rw = nearbyint((double)w * im->im_scale), rh = nearbyint((double)h * im->im_scale);
    if (!(rw >= 1 && rh >= 1 && rw <= 65536 && rh <= 65536))
        return avps_fail(err, "native engine: image of %ux%u resizes to %.0fx%.0f", w, h, rw, rh);
    im->img_w = (int)rw, im->img_h = (int)rh;
    int pw = (im->img_w + u->pad_to - 1) / u->pad_to * u->pad_to, ph = (im->img_h + u->pad_to - 1) / u->pad_to * u->pad_to;
    if (nn_tensor_new(a, u->be->device, 1, 3, ph, pw, &im->input, err) != 0)
        return -1;
    memset(im->input.data, 0, nn_numel(&im->input) * sizeof(float));
    nn_arena_mark m = nn_arena_get_mark(a);
    size_t n = (size_t)w * h, rn = (size_t)im->img_w * im->img_h;
    float *plane = nn_arena_alloc(a, n * sizeof(float), err), *resized = nn_arena_alloc(a, rn * sizeof(float), err);
    if (!plane || !resized)
        return -1;
    for (int c = 0; c < 3; c++) {
        /* BGR; im -= pixel_means: a float32 image minus float64 means, in double */
        for (size_t i = 0; i < n; i++)
            plane[i] = (float)((double)rgb[3 * i + (size_t)(2 - c)] - u->mean_bgr[c]);
        if (ups_cv_resize_linear(a, plane, (int)w, (int)h, resized, im->img_w, im->img_h, im->im_scale, im->im_scale,
                                 err) != 0)
            return -1;
        for (int y = 0; y < im->img_h; y++)
            memcpy(im->input.data + ((size_t)c * ph + y) * pw, resized + (size_t)y * im->img_w,
                   sizeof(float) * (size_t)im->img_w);
    }
    nn_arena_rewind(a, m);
    return 0;
}

/* ---- ResNet ------------------------------------------------------------------------- */

static int run_block(upsnet *u, const ups_block *b, const nn_tensor *x, nn_tensor *out, avps_error *err) {
    const nn_backend *be = u->be;
    nn_tensor t1, t2, off, shortcut = *x;
    if (be->conv2d(be, &u->arena, &b->conv1, x, 1, &t1, err))
        return -1;
    if (b->dcn) {
        double t0 = ups_now();
        if (be->conv2d(be, &u->arena, &b->offset, &t1, 0, &off, err) ||
            be->deform_conv2d(be, &u->arena, &b->conv2, &t1, &off, NULL, 1, b->offset.out / 18, 1, &t2, err))
            return -1;
        u->t[UPS_T_BACKBONE_DCN] += ups_now() - t0;
    } else if (be->conv2d(be, &u->arena, &b->conv2, &t1, 1, &t2, err)) {
        return -1;
    }
    if (be->conv2d(be, &u->arena, &b->conv3, &t2, 0, out, err))
        return -1;
    if (b->has_down && be->conv2d(be, &u->arena, &b->down, x, 0, &shortcut, err))
        return -1;
    be->add(out, &shortcut, 1);
    return 0;
}

/* Each block's output replaces its input at the stage's mark, so only the stage
 * outputs res2..res5 stay. */
int ups_backbone(upsnet *u, ups_image *im, avps_error *err) {
    const nn_backend *be = u->be;
    nn_arena *a = &u->arena;
    nn_tensor x, pooled;
    nn_arena_mark mark = nn_arena_get_mark(a);
    if (be->conv2d(be, a, &u->stem, &im->input, 1, &x, err) || be->max_pool(a, &x, 3, 2, 1, &pooled, err) ||
        nn_tensor_keep(a, mark, &pooled, err))
        return -1;
    x = pooled;
    for (int l = 0, b = 0; l < UPS_STAGES; l++) {
        mark = nn_arena_get_mark(a);
        for (; b < u->stage_end[l]; b++) {
            nn_tensor y;
            if (run_block(u, &u->blocks[b], &x, &y, err) != 0 || nn_tensor_keep(a, mark, &y, err) != 0)
                return -1;
            x = y;
        }
        im->res[l] = x;
    }
    return 0;
}

/* ---- FPN ----------------------------------------------------------------------------- */

/* fpn.py: the laterals; the GAP term (Linear of res5's mean over the whole padded map)
 * added to P5's lateral before anything reads it; top-down nearest x2 sums; 3x3 output
 * convolutions; P6 = MaxPool(1, stride 2) of the P5 output. */
int ups_fpn(upsnet *u, ups_image *im, avps_error *err) {
    const nn_backend *be = u->be;
    nn_arena *a = &u->arena;
    const int top = UPS_STAGES - 1;
    nn_tensor lat[UPS_STAGES];
    if (be->conv2d(be, a, &u->fpn_lateral[top], &im->res[top], 0, &lat[top], err))
        return -1;
    if (u->with_gap) {
        const nn_tensor *r5 = &im->res[top];
        nn_tensor mean, g;
        if (nn_tensor_new(a, be->device, 1, r5->c, 1, 1, &mean, err) != 0)
            return -1;
        size_t hw = (size_t)r5->h * r5->w;
        for (int c = 0; c < r5->c; c++) {
            double s = 0;
            for (size_t i = 0; i < hw; i++)
                s += r5->data[(size_t)c * hw + i];
            mean.data[c] = (float)(s / (double)hw);
        }
        if (be->linear(be, a, &u->fpn_gap, &mean, 0, &g, err))
            return -1;
        size_t lhw = (size_t)lat[top].h * lat[top].w;
        for (int c = 0; c < lat[top].c; c++)
            for (size_t i = 0; i < lhw; i++)
                lat[top].data[(size_t)c * lhw + i] += g.data[c];
    }
    for (int l = top - 1; l >= 0; l--) {
        if (be->conv2d(be, a, &u->fpn_lateral[l], &im->res[l], 0, &lat[l], err))
            return -1;
        if (lat[l].h != 2 * lat[l + 1].h || lat[l].w != 2 * lat[l + 1].w)
            return avps_fail(err, "native engine: FPN level P%d is %dx%d, P%d %dx%d", l + 2, lat[l].w, lat[l].h, l + 3,
                             lat[l + 1].w, lat[l + 1].h);
        be->resize_nearest_add(&lat[l + 1], &lat[l]);
    }
    for (int l = 0; l <= top; l++)
        if (be->conv2d(be, a, &u->fpn_out[l], &lat[l], 0, &im->fpn[l], err))
            return -1;
    return be->max_pool(a, &im->fpn[top], 1, 2, 0, &im->fpn[UPS_LEVELS - 1], err);
}
