/* ops.c: the CPU backend, the operators in plain C (GEMM possibly through OpenBLAS).
 * Each follows the arithmetic of the PyTorch / torchvision kernel it stands for, in
 * float32 and in the same order where that order is cheap to keep (bilinear weights,
 * RoIAlign's sums), so that results agree to float rounding. */
#include "../nn.h"

#include <math.h>
#include <string.h>

/* im2col scratch is bounded: output pixels are taken in blocks of this many floats. */
#define COL_BUDGET ((size_t)2 << 20)

typedef struct {
    nn_backend base;
    int use_blas;
} cpu_backend;

static int blas_of(const nn_backend *b) { return ((const cpu_backend *)b)->use_blas; }

/* Columns [j0, j0 + cols) of the im2col matrix: row (c, ky, kx), column = output pixel.
 * Output pixels are walked row by row (no division per element). */
static void im2col_block(const float *in, int c_in, int h, int w, const nn_conv *cv, int wo, size_t j0, int cols,
                         float *col) {
    int oy0 = (int)(j0 / (size_t)wo), ox0 = (int)(j0 % (size_t)wo);
    for (int c = 0; c < c_in; c++)
        for (int ky = 0; ky < cv->kh; ky++)
            for (int kx = 0; kx < cv->kw; kx++) {
                float *dst = col + ((size_t)(c * cv->kh + ky) * cv->kw + kx) * (size_t)cols;
                const float *plane = in + (size_t)c * h * w;
                int oy = oy0, ox = ox0;
                for (int j = 0; j < cols;) {
                    int y = oy * cv->stride - cv->pad + ky, run = wo - ox < cols - j ? wo - ox : cols - j;
                    if (y < 0 || y >= h) {
                        memset(dst + j, 0, sizeof(float) * (size_t)run);
                    } else {
                        const float *row = plane + (size_t)y * w;
                        for (int r = 0; r < run; r++) {
                            int x = (ox + r) * cv->stride - cv->pad + kx;
                            dst[j + r] = (x >= 0 && x < w) ? row[x] : 0.0f;
                        }
                    }
                    j += run, ox = 0, oy++;
                }
            }
}

static void bias_act(float *out, const float *bias, int rows, size_t cols, int relu) {
    for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * cols, bv = bias ? bias[r] : 0.0f;
        for (size_t j = 0; j < cols; j++) {
            float v = o[j] + bv;
            o[j] = relu && v < 0 ? 0.0f : v;
        }
    }
}

static int cpu_conv2d(const nn_backend *b, nn_arena *a, const nn_conv *cv, const nn_tensor *in, int relu,
                      nn_tensor *out, avps_error *err) {
    if (in->c != cv->in)
        return avps_fail(err, "native engine: convolution expects %d channels, got %d", cv->in, in->c);
    int ho = (in->h + 2 * cv->pad - cv->kh) / cv->stride + 1, wo = (in->w + 2 * cv->pad - cv->kw) / cv->stride + 1;
    if (ho <= 0 || wo <= 0)
        return avps_fail(err, "native engine: convolution input %dx%d is smaller than its kernel", in->w, in->h);
    if (nn_tensor_new(a, b->device, in->n, cv->out, ho, wo, out, err) != 0)
        return -1;
    size_t pixels = (size_t)ho * wo, ckk = (size_t)cv->in * cv->kh * cv->kw;
    int direct = cv->kh == 1 && cv->kw == 1 && cv->stride == 1 && cv->pad == 0;
    size_t block = direct ? pixels : COL_BUDGET / ckk;
    if (block < 64)
        block = 64;
    if (block > pixels)
        block = pixels;
    float *col = NULL;
    if (!direct && !(col = nn_arena_alloc(a, ckk * block * sizeof(float), err)))
        return -1;
    for (int n = 0; n < in->n; n++) {
        const float *src = in->data + (size_t)n * in->c * in->h * in->w;
        float *dst = out->data + (size_t)n * cv->out * pixels;
        for (size_t j0 = 0; j0 < pixels; j0 += block) {
            int cols = (int)(pixels - j0 < block ? pixels - j0 : block);
            if (direct) {
                nn_gemm(blas_of(b), cv->out, cols, cv->in, cv->weight, (int)ckk, src + j0, (int)pixels, 0, dst + j0,
                        (int)pixels);
            } else {
                im2col_block(src, in->c, in->h, in->w, cv, wo, j0, cols, col);
                nn_gemm(blas_of(b), cv->out, cols, (int)ckk, cv->weight, (int)ckk, col, cols, 0, dst + j0, (int)pixels);
            }
        }
        bias_act(dst, cv->bias, cv->out, pixels, relu);
    }
    return 0;
}

static int cpu_deconv2d(const nn_backend *b, nn_arena *a, const nn_deconv *dc, const nn_tensor *in, int relu,
                        nn_tensor *out, avps_error *err) {
    if (in->c != dc->in)
        return avps_fail(err, "native engine: transposed convolution expects %d channels, got %d", dc->in, in->c);
    int ho = (in->h - 1) * dc->stride - 2 * dc->pad + dc->kh, wo = (in->w - 1) * dc->stride - 2 * dc->pad + dc->kw;
    if (ho <= 0 || wo <= 0)
        return avps_fail(err, "native engine: transposed convolution gives an empty output");
    if (nn_tensor_new(a, b->device, in->n, dc->out, ho, wo, out, err) != 0)
        return -1;
    size_t hw = (size_t)in->h * in->w, rows = (size_t)dc->out * dc->kh * dc->kw;
    float *col = nn_arena_alloc(a, rows * hw * sizeof(float), err);
    if (!col)
        return -1;
    for (int n = 0; n < in->n; n++) {
        nn_gemm(blas_of(b), (int)rows, (int)hw, dc->in, dc->weight, dc->in, in->data + (size_t)n * in->c * hw, (int)hw,
                0, col, (int)hw);
        float *dst = out->data + (size_t)n * dc->out * ho * wo;
        for (int co = 0; co < dc->out; co++)
            for (size_t i = 0; i < (size_t)ho * wo; i++)
                dst[(size_t)co * ho * wo + i] = dc->bias ? dc->bias[co] : 0.0f;
        for (int co = 0; co < dc->out; co++)
            for (int ky = 0; ky < dc->kh; ky++)
                for (int kx = 0; kx < dc->kw; kx++) {
                    const float *c = col + ((size_t)(co * dc->kh + ky) * dc->kw + kx) * hw;
                    for (int y = 0; y < in->h; y++) {
                        int oy = y * dc->stride - dc->pad + ky;
                        if (oy < 0 || oy >= ho)
                            continue;
                        for (int x = 0; x < in->w; x++) {
                            int ox = x * dc->stride - dc->pad + kx;
                            if (ox >= 0 && ox < wo)
                                dst[((size_t)co * ho + oy) * wo + ox] += c[(size_t)y * in->w + x];
                        }
                    }
                }
        if (relu)
            for (size_t i = 0; i < (size_t)dc->out * ho * wo; i++)
                dst[i] = dst[i] < 0 ? 0.0f : dst[i];
    }
    return 0;
}

static int cpu_linear(const nn_backend *b, nn_arena *a, const nn_fc *fc, const nn_tensor *in, int relu,
                      nn_tensor *out, avps_error *err) {
    size_t per_row = (size_t)in->c * in->h * in->w;
    if (per_row != (size_t)fc->in)
        return avps_fail(err, "native engine: fully connected layer expects %d inputs, got %zu", fc->in, per_row);
    if (nn_tensor_new(a, b->device, in->n, fc->out, 1, 1, out, err) != 0)
        return -1;
    nn_gemm(blas_of(b), in->n, fc->out, fc->in, in->data, fc->in, fc->weight, fc->in, 1, out->data, fc->out);
    for (int r = 0; r < in->n; r++)
        for (int j = 0; j < fc->out; j++) {
            float v = out->data[(size_t)r * fc->out + j] + fc->bias[j];
            out->data[(size_t)r * fc->out + j] = relu && v < 0 ? 0.0f : v;
        }
    return 0;
}

static void cpu_relu(nn_tensor *t) {
    size_t n = nn_numel(t);
    for (size_t i = 0; i < n; i++)
        t->data[i] = t->data[i] < 0 ? 0.0f : t->data[i];
}

static void cpu_add(nn_tensor *acc, const nn_tensor *x, int relu) {
    size_t n = nn_numel(acc);
    for (size_t i = 0; i < n; i++) {
        float v = acc->data[i] + x->data[i];
        acc->data[i] = relu && v < 0 ? 0.0f : v;
    }
}

/* torch's max_pool2d (ceil_mode False): padding counts as -infinity. */
static int cpu_max_pool(nn_arena *a, const nn_tensor *in, int k, int stride, int pad, nn_tensor *out,
                        avps_error *err) {
    int ho = (in->h + 2 * pad - k) / stride + 1, wo = (in->w + 2 * pad - k) / stride + 1;
    if (ho <= 0 || wo <= 0)
        return avps_fail(err, "native engine: max pooling input %dx%d is too small", in->w, in->h);
    if (nn_tensor_new(a, in->device, in->n, in->c, ho, wo, out, err) != 0)
        return -1;
    for (size_t p = 0; p < (size_t)in->n * in->c; p++) {
        const float *src = in->data + p * in->h * in->w;
        float *dst = out->data + p * ho * wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                float m = -INFINITY;
                for (int ky = 0; ky < k; ky++) {
                    int y = oy * stride - pad + ky;
                    if (y < 0 || y >= in->h)
                        continue;
                    for (int kx = 0; kx < k; kx++) {
                        int x = ox * stride - pad + kx;
                        if (x >= 0 && x < in->w && (src[(size_t)y * in->w + x] > m || isnan(src[(size_t)y * in->w + x])))
                            m = src[(size_t)y * in->w + x];
                    }
                }
                dst[(size_t)oy * wo + ox] = m;
            }
    }
    return 0;
}

/* torch's nearest_idx: exact halving and identity are special-cased, otherwise
 * floor(dst * (float)in / out). */
static int nearest_index(int dst, int in, int out) {
    if (in == out)
        return dst;
    if (out == 2 * in)
        return dst >> 1;
    float scale = (float)in / (float)out;
    int s = (int)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

static void cpu_resize_nearest_add(const nn_tensor *in, nn_tensor *out) {
    for (size_t p = 0; p < (size_t)in->n * in->c; p++) {
        const float *src = in->data + p * in->h * in->w;
        float *dst = out->data + p * out->h * out->w;
        for (int y = 0; y < out->h; y++) {
            const float *row = src + (size_t)nearest_index(y, in->h, out->h) * in->w;
            for (int x = 0; x < out->w; x++)
                dst[(size_t)y * out->w + x] += row[nearest_index(x, in->w, out->w)];
        }
    }
}

/* One output row's or column's two source taps, as torch 1.13's CPU upsample_bilinear2d
 * computes them (compute_indices_weights_linear, align_corners False, no explicit
 * scale): the ratio is in / out in float, but the source position and the weight are
 * worked in double and only the weight rounded to float; 1 - lambda is taken in float.
 * Doing it all in float (as the kernel's code reads) moves weights by up to 2e-6, and
 * Mask R-CNN R50 with random weights turns that into different detections. */
static void linear_tap(int dst, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    if (in == out) {
        *i0 = *i1 = dst, *l0 = 1, *l1 = 0;
        return;
    }
    double scale = (double)((float)in / (float)out);
    double src = scale * ((double)dst + 0.5) - 0.5;
    if (src < 0)
        src = 0;
    *i0 = (int)src < in - 1 ? (int)src : in - 1;
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    double l = src - (double)*i0;
    *l1 = (float)(l < 0 ? 0 : l > 1 ? 1 : l);
    *l0 = 1.0f - *l1;
}

/* The sums are fused as torch's AVX2 kernel has them (GCC contracts its
 * t0 * w0 + t1 * w1, width inside height): fmaf(first, w0, second * w1). With these and
 * the taps above the result is torch's to the bit. */
static void cpu_resize_bilinear(const nn_tensor *in, nn_tensor *out) {
    for (size_t p = 0; p < (size_t)in->n * in->c; p++) {
        const float *src = in->data + p * in->h * in->w;
        float *dst = out->data + p * out->h * out->w;
        for (int y = 0; y < out->h; y++) {
            int y0, y1;
            float h0, h1;
            linear_tap(y, in->h, out->h, &y0, &y1, &h0, &h1);
            const float *r0 = src + (size_t)y0 * in->w, *r1 = src + (size_t)y1 * in->w;
            for (int x = 0; x < out->w; x++) {
                int x0, x1;
                float w0, w1;
                linear_tap(x, in->w, out->w, &x0, &x1, &w0, &w1);
                float t0 = fmaf(r0[x0], w0, r0[x1] * w1), t1 = fmaf(r1[x0], w0, r1[x1] * w1);
                dst[(size_t)y * out->w + x] = fmaf(t0, h0, t1 * h1);
            }
        }
    }
}

/* align_corners=True: source = dst * (in - 1) / (out - 1), the ratio in float as torch's
 * area_pixel_compute_scale has it; the sums fused as in cpu_resize_bilinear. */
static void corner_tap(int dst, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f, src = scale * (float)dst;
    *i0 = (int)src < in - 1 ? (int)src : in - 1;
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    float l = src - (float)*i0;
    *l1 = l < 0 ? 0 : l > 1 ? 1 : l;
    *l0 = 1.0f - *l1;
}

static void cpu_resize_bilinear_corners(const nn_tensor *in, nn_tensor *out) {
    for (size_t p = 0; p < (size_t)in->n * in->c; p++) {
        const float *src = in->data + p * in->h * in->w;
        float *dst = out->data + p * out->h * out->w;
        for (int y = 0; y < out->h; y++) {
            int y0, y1;
            float h0, h1;
            corner_tap(y, in->h, out->h, &y0, &y1, &h0, &h1);
            const float *r0 = src + (size_t)y0 * in->w, *r1 = src + (size_t)y1 * in->w;
            for (int x = 0; x < out->w; x++) {
                int x0, x1;
                float w0, w1;
                corner_tap(x, in->w, out->w, &x0, &x1, &w0, &w1);
                float t0 = fmaf(r0[x0], w0, r0[x1] * w1), t1 = fmaf(r1[x0], w0, r1[x1] * w1);
                dst[(size_t)y * out->w + x] = fmaf(t0, h0, t1 * h1);
            }
        }
    }
}

static void cpu_softmax_rows(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *v = x + (size_t)r * cols, top = -INFINITY, sum = 0;
        for (int j = 0; j < cols; j++)
            top = v[j] > top ? v[j] : top;
        for (int j = 0; j < cols; j++)
            sum += v[j] = expf(v[j] - top);
        for (int j = 0; j < cols; j++)
            v[j] /= sum;
    }
}

static void cpu_sigmoid(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* One sample point of torchvision's roi_align (bilinear_interpolate / pre_calc). */
typedef struct {
    size_t pos[4];
    float w[4];
} roi_tap;

static roi_tap roi_sample(float y, float x, int height, int width) {
    roi_tap t = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    if (y < -1.0f || y > (float)height || x < -1.0f || x > (float)width)
        return t;
    if (y <= 0)
        y = 0;
    if (x <= 0)
        x = 0;
    int y_low = (int)y, x_low = (int)x, y_high, x_high;
    if (y_low >= height - 1) {
        y_high = y_low = height - 1;
        y = (float)y_low;
    } else {
        y_high = y_low + 1;
    }
    if (x_low >= width - 1) {
        x_high = x_low = width - 1;
        x = (float)x_low;
    } else {
        x_high = x_low + 1;
    }
    float ly = y - (float)y_low, lx = x - (float)x_low, hy = 1.0f - ly, hx = 1.0f - lx;
    t.w[0] = hy * hx, t.w[1] = hy * lx, t.w[2] = ly * hx, t.w[3] = ly * lx;
    t.pos[0] = (size_t)y_low * width + x_low, t.pos[1] = (size_t)y_low * width + x_high;
    t.pos[2] = (size_t)y_high * width + x_low, t.pos[3] = (size_t)y_high * width + x_high;
    return t;
}

/* As torchvision's CPU kernel: the sample taps of every bin are computed once per RoI,
 * then each channel plane is read in turn (planes stay in cache; the sum per bin is in
 * the kernel's order). */
static int cpu_roi_align(nn_arena *a, const nn_tensor *feats, const float *scales, const float *rois,
                         const int *level, int k, const nn_roi_align_params *p, nn_tensor *out, avps_error *err) {
    int c = feats[0].c;
    if (nn_tensor_new(a, feats[0].device, k, c, p->out_h, p->out_w, out, err) != 0)
        return -1;
    int bins = p->out_h * p->out_w;
    size_t cap = 0;
    roi_tap *taps = NULL;
    for (int r = 0; r < k; r++) {
        const nn_tensor *f = &feats[level[r]];
        float scale = scales[level[r]], offset = p->aligned ? 0.5f : 0.0f;
        const float *box = rois + 4 * (size_t)r;
        float x0 = box[0] * scale - offset, y0 = box[1] * scale - offset;
        float rw = box[2] * scale - offset - x0, rh = box[3] * scale - offset - y0;
        if (p->plus_one) { /* mmdetection v1: end (x2 + 1) * scale, no offset, no min size */
            x0 = box[0] * scale, y0 = box[1] * scale;
            rw = (box[2] + 1.0f) * scale - x0, rh = (box[3] + 1.0f) * scale - y0;
            rw = rw > 0.0f ? rw : 0.0f;
            rh = rh > 0.0f ? rh : 0.0f;
        } else if (!p->aligned) {
            rw = rw > 1.0f ? rw : 1.0f;
            rh = rh > 1.0f ? rh : 1.0f;
        }
        float bin_h = rh / (float)p->out_h, bin_w = rw / (float)p->out_w;
        int gh = p->sampling_ratio > 0 ? p->sampling_ratio : (int)ceilf(rh / (float)p->out_h);
        int gw = p->sampling_ratio > 0 ? p->sampling_ratio : (int)ceilf(rw / (float)p->out_w);
        float count = (float)(gh * gw > 1 ? gh * gw : 1);
        size_t need = (size_t)bins * gh * gw;
        if (need > cap) { /* adaptive sampling can need more taps for a large RoI */
            cap = need * 2;
            if (!(taps = nn_arena_alloc(a, cap * sizeof *taps, err)))
                return -1;
        }
        size_t t = 0;
        for (int ph = 0; ph < p->out_h; ph++)
            for (int pw = 0; pw < p->out_w; pw++)
                for (int iy = 0; iy < gh; iy++) {
                    float y = y0 + (float)ph * bin_h + (float)(iy + .5f) * bin_h / (float)gh;
                    for (int ix = 0; ix < gw; ix++) {
                        float x = x0 + (float)pw * bin_w + (float)(ix + .5f) * bin_w / (float)gw;
                        taps[t++] = roi_sample(y, x, f->h, f->w);
                    }
                }
        int per_bin = gh * gw;
        for (int ch = 0; ch < c; ch++) {
            const float *plane = f->data + (size_t)ch * f->h * f->w;
            float *dst = out->data + ((size_t)r * c + ch) * bins;
            const roi_tap *tp = taps;
            for (int bin = 0; bin < bins; bin++) {
                float sum = 0.0f;
                for (int i = 0; i < per_bin; i++, tp++)
                    sum += tp->w[0] * plane[tp->pos[0]] + tp->w[1] * plane[tp->pos[1]] + tp->w[2] * plane[tp->pos[2]] +
                           tp->w[3] * plane[tp->pos[3]];
                dst[bin] = sum / count;
            }
        }
    }
    return 0;
}

static int cpu_deform_conv2d(const nn_backend *b, nn_arena *a, const nn_conv *cv, const nn_tensor *in,
                             const nn_tensor *offset, const nn_tensor *mask, int dilation, int offset_groups,
                             int relu, nn_tensor *out, avps_error *err) {
    return nn_cpu_deform_conv2d(blas_of(b), b->device, a, cv, in, offset, mask, dilation, offset_groups, relu, out,
                                err);
}

static const cpu_backend cpu_backends[2] = {
    {{"cpu", NN_DEVICE_CPU, cpu_conv2d, cpu_deconv2d, cpu_linear, cpu_relu, cpu_add, cpu_max_pool,
      cpu_resize_nearest_add, cpu_resize_bilinear, cpu_softmax_rows, cpu_sigmoid, cpu_roi_align,
      cpu_deform_conv2d, cpu_resize_bilinear_corners},
     0},
    {{"cpu", NN_DEVICE_CPU, cpu_conv2d, cpu_deconv2d, cpu_linear, cpu_relu, cpu_add, cpu_max_pool,
      cpu_resize_nearest_add, cpu_resize_bilinear, cpu_softmax_rows, cpu_sigmoid, cpu_roi_align,
      cpu_deform_conv2d, cpu_resize_bilinear_corners},
     1},
};

const nn_backend *nn_cpu_backend(int use_blas, avps_error *err) {
    if (use_blas && nn_blas_load(err) != 0)
        return NULL;
    return &cpu_backends[use_blas ? 1 : 0].base;
}
