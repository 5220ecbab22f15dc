/* heads_load.c: the weights of UPSNet's RPN, box head and mask head under UPSNet's
 * state-dict names, checked against each other's shapes, and the heads' test settings
 * (UPSNet's defaults, overridden by the weights' metadata or --set). */
#include "heads.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ups_head_settings_default(ups_head_settings *s) {
    *s = (ups_head_settings){
        .rpn_pre_nms = 1000, .rpn_post_nms = 1000, .rpn_nms = 0.7f, .rpn_min_size = 0, .anchor_scale = 8,
        .ratios = {0.5f, 1.0f, 2.0f}, .n_ratios = 3, .bbox_weights = {10, 10, 5, 5},
        .score_thresh = 0.05f, .nms_thresh = 0.5f, .max_det = 100,
        .pan_score_thresh = 0.6f, .pan_nms_thresh = 0.5f, .removal_fraction = 0.3f,
        .stuff_area_limit = 4096, .enable_void = 1,
    };
}

/* "0.5,1,2" or "[0.5, 1, 2]": up to max numbers; *n gets the count. */
static int numbers(const char *what, const char *key, const char *v, double *out, int max, int *n, avps_error *err) {
    int k = 0;
    for (const char *s = v;;) {
        while (*s == ' ' || *s == ',' || *s == '[' || *s == ']' || *s == '(' || *s == ')')
            s++;
        if (!*s)
            break;
        char *end;
        double d = strtod(s, &end);
        if (end == s || k == max || !isfinite(d))
            return avps_fail(err, "%s: setting %s = \"%s\" is not a list of at most %d numbers", what, key, v, max);
        out[k++] = d;
        s = end;
    }
    *n = k;
    return 0;
}

static int setting_float(ups_setting_get get, void *ctx, const char *what, const char *key, double lo, double hi,
                         float *out, avps_error *err) {
    const char *v = get(ctx, key);
    if (!v)
        return 0;
    double d;
    int n;
    if (numbers(what, key, v, &d, 1, &n, err) != 0)
        return -1;
    if (n != 1 || !(d >= lo && d <= hi))
        return avps_fail(err, "%s: setting %s = \"%s\" must be one number in [%g, %g]", what, key, v, lo, hi);
    *out = (float)d;
    return 0;
}

static int setting_int(ups_setting_get get, void *ctx, const char *what, const char *key, int lo, int hi, int *out,
                       avps_error *err) {
    float f = (float)*out;
    if (setting_float(get, ctx, what, key, lo, hi, &f, err) != 0)
        return -1;
    if (f != floorf(f))
        return avps_fail(err, "%s: setting %s must be a whole number", what, key);
    *out = (int)f;
    return 0;
}

int ups_head_settings_read(ups_head_settings *s, ups_setting_get get, void *ctx, const char *what, avps_error *err) {
    if (setting_int(get, ctx, what, "rpn_pre_nms_top_n", 1, 1000000, &s->rpn_pre_nms, err) ||
        setting_int(get, ctx, what, "rpn_post_nms_top_n", 1, 1000000, &s->rpn_post_nms, err) ||
        setting_float(get, ctx, what, "rpn_nms_thresh", 0, 1, &s->rpn_nms, err) ||
        setting_float(get, ctx, what, "rpn_min_size", 0, 1e6, &s->rpn_min_size, err) ||
        setting_float(get, ctx, what, "anchor_scales", 1e-3, 1e4, &s->anchor_scale, err) ||
        setting_float(get, ctx, what, "score_thresh", 0, 1, &s->score_thresh, err) ||
        setting_float(get, ctx, what, "nms_thresh", 0, 1, &s->nms_thresh, err) ||
        setting_int(get, ctx, what, "max_det", 1, 100000, &s->max_det, err) ||
        setting_float(get, ctx, what, "panoptic_score_thresh", 0, 1, &s->pan_score_thresh, err) ||
        setting_float(get, ctx, what, "panoptic_nms_thresh", 0, 1, &s->pan_nms_thresh, err) ||
        setting_float(get, ctx, what, "mask_removal_fraction_threshold", 0, 1, &s->removal_fraction, err) ||
        setting_int(get, ctx, what, "panoptic_stuff_area_limit", 0, 1 << 30, &s->stuff_area_limit, err) ||
        setting_int(get, ctx, what, "panoptic_void", 0, 1, &s->enable_void, err))
        return -1;
    double d[UPS_MAX_RATIOS];
    int n;
    const char *v = get(ctx, "anchor_ratios");
    if (v) {
        if (numbers(what, "anchor_ratios", v, d, UPS_MAX_RATIOS, &n, err) != 0)
            return -1;
        if (n < 1)
            return avps_fail(err, "%s: setting anchor_ratios is empty", what);
        for (int i = 0; i < n; i++) {
            if (!(d[i] > 0 && d[i] < 1e3))
                return avps_fail(err, "%s: setting anchor_ratios entry %d is not a positive ratio", what, i);
            s->ratios[i] = (float)d[i];
        }
        s->n_ratios = n;
    }
    if ((v = get(ctx, "bbox_reg_weights"))) {
        if (numbers(what, "bbox_reg_weights", v, d, 4, &n, err) != 0)
            return -1;
        if (n != 4 || !(d[0] > 0 && d[1] > 0 && d[2] > 0 && d[3] > 0))
            return avps_fail(err, "%s: setting bbox_reg_weights must be 4 positive numbers", what);
        for (int i = 0; i < 4; i++)
            s->bbox_weights[i] = (float)d[i];
    }
    return 0;
}

static float *owned_floats(ups_heads *h, size_t n, avps_error *err) {
    if (h->n_owned == h->cap_owned) {
        size_t cap = h->cap_owned ? 2 * h->cap_owned : 32;
        void **p = realloc(h->owned, cap * sizeof *p);
        if (!p)
            return avps_fail(err, "native engine: out of memory"), NULL;
        h->owned = p, h->cap_owned = cap;
    }
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return avps_fail(err, "native engine: out of memory for %zu weights", n), NULL;
    return h->owned[h->n_owned++] = f;
}

/* A tensor `prefix`.weight of ndim dimensions whose shape the architecture is read from. */
static const st_tensor *weight_of(const st_file *st, const char *prefix, int ndim, avps_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const st_tensor *t = st_find(st, name);
    if (!t) {
        avps_fail(err, "%s: no tensor %s (is this an UPSNet state dict?)", st->path, name);
        return NULL;
    }
    if (t->ndim != ndim) {
        avps_fail(err, "%s: tensor %s has %d dimensions, the architecture needs %d", st->path, name, t->ndim, ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0 || t->shape[i] > (1 << 20)) {
            avps_fail(err, "%s: tensor %s has an implausible shape", st->path, name);
            return NULL;
        }
    return t;
}

static int read_bias(const st_file *st, const char *prefix, int out, float *dst, avps_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.bias", prefix);
    int64_t vec[1] = {out};
    return st_read_f32(st, name, 1, vec, dst, err);
}

/* A convolution with a bias (the heads have no batch norm), in channels `in`. */
static int load_conv(ups_heads *h, const st_file *st, const char *prefix, int in, int pad, nn_conv *cv,
                     avps_error *err) {
    const st_tensor *t = weight_of(st, prefix, 4, err);
    if (!t)
        return -1;
    int64_t shape[4] = {t->shape[0], in, t->shape[2], t->shape[3]};
    *cv = (nn_conv){NULL, NULL, (int)shape[0], in, (int)shape[2], (int)shape[3], 1, pad};
    size_t n = (size_t)shape[0] * in * shape[2] * shape[3];
    if (!(cv->weight = owned_floats(h, n, err)) || !(cv->bias = owned_floats(h, (size_t)cv->out, err)))
        return -1;
    return st_read_f32(st, t->name, 4, shape, cv->weight, err) || read_bias(st, prefix, cv->out, cv->bias, err) ? -1 : 0;
}

static int load_fc(ups_heads *h, const st_file *st, const char *prefix, int in, nn_fc *fc, avps_error *err) {
    const st_tensor *t = weight_of(st, prefix, 2, err);
    if (!t)
        return -1;
    *fc = (nn_fc){NULL, NULL, (int)t->shape[0], in};
    int64_t shape[2] = {fc->out, in};
    if (!(fc->weight = owned_floats(h, (size_t)fc->out * in, err)) || !(fc->bias = owned_floats(h, (size_t)fc->out, err)))
        return -1;
    return st_read_f32(st, t->name, 2, shape, fc->weight, err) || read_bias(st, prefix, fc->out, fc->bias, err) ? -1 : 0;
}

/* ConvTranspose2d(in, out, k, stride k): torch's [in][out][kh][kw] regrouped to the
 * operator's [(out, kh, kw)][in]. */
static int load_deconv(ups_heads *h, const st_file *st, const char *prefix, int in, nn_deconv *dc, avps_error *err) {
    const st_tensor *t = weight_of(st, prefix, 4, err);
    if (!t)
        return -1;
    *dc = (nn_deconv){NULL, NULL, (int)t->shape[1], in, (int)t->shape[2], (int)t->shape[3], (int)t->shape[2], 0};
    int64_t shape[4] = {in, dc->out, dc->kh, dc->kw};
    size_t okk = (size_t)dc->out * dc->kh * dc->kw, n = okk * in;
    float *raw = owned_floats(h, n, err);
    if (!raw || !(dc->weight = owned_floats(h, n, err)) || !(dc->bias = owned_floats(h, (size_t)dc->out, err)))
        return -1;
    if (st_read_f32(st, t->name, 4, shape, raw, err) || read_bias(st, prefix, dc->out, dc->bias, err))
        return -1;
    for (int ci = 0; ci < in; ci++)
        for (size_t r = 0; r < okk; r++)
            dc->weight[r * in + ci] = raw[(size_t)ci * okk + r];
    return 0;
}

/* py-faster-rcnn's generate_anchors (UPSNet's rpn/generate_anchors.py) for one stride:
 * a (0, 0, stride - 1, stride - 1) base box, for each ratio w = round(sqrt(area / r)),
 * h = round(w r) (numpy's round: halves to even), then scaled about its centre; all in
 * double as numpy does, exact integers or halves in the end. */
static void py_anchors(int stride, float scale, const float *ratios, int n_ratios, float *out) {
    double base = stride, ctr = 0.5 * (base - 1), area = base * base;
    for (int r = 0; r < n_ratios; r++) {
        double ws = nearbyint(sqrt(area / (double)ratios[r]));
        double hs = nearbyint(ws * (double)ratios[r]);
        double w = ws * (double)scale, hh = hs * (double)scale;
        float *a = out + 4 * r;
        a[0] = (float)(ctr - 0.5 * (w - 1)), a[1] = (float)(ctr - 0.5 * (hh - 1));
        a[2] = (float)(ctr + 0.5 * (w - 1)), a[3] = (float)(ctr + 0.5 * (hh - 1));
    }
}

static int load_rpn(ups_heads *h, const st_file *st, int c, avps_error *err) {
    if (load_conv(h, st, "rpn.conv_proposal.0", c, 1, &h->rpn_conv, err) ||
        load_conv(h, st, "rpn.cls_score", h->rpn_conv.out, 0, &h->rpn_cls, err) ||
        load_conv(h, st, "rpn.bbox_pred", h->rpn_conv.out, 0, &h->rpn_bbox, err))
        return -1;
    h->anchors = h->rpn_cls.out;
    if (h->anchors != h->set.n_ratios)
        return avps_fail(err, "%s: rpn.cls_score.weight has %d anchors per position, the settings %d ratios", st->path,
                         h->anchors, h->set.n_ratios);
    if (h->rpn_bbox.out != 4 * h->anchors)
        return avps_fail(err, "%s: rpn.bbox_pred.weight has %d outputs, 4 x %d anchors needs %d", st->path,
                         h->rpn_bbox.out, h->anchors, 4 * h->anchors);
    if (h->rpn_conv.kh != 3 || h->rpn_conv.kw != 3 || h->rpn_cls.kh != 1 || h->rpn_bbox.kh != 1)
        return avps_fail(err, "%s: the RPN must be a 3x3 convolution then 1x1 ones", st->path);
    for (int l = 0; l < UPS_FPN_LEVELS; l++)
        py_anchors(4 << l, h->set.anchor_scale, h->set.ratios, h->set.n_ratios, h->cell_anchors[l]);
    return 0;
}

static int load_box_head(ups_heads *h, const st_file *st, avps_error *err) {
    const st_tensor *fc6 = weight_of(st, "rcnn.fc6.0", 2, err);
    if (!fc6)
        return -1;
    h->box_pool = (int)lround(sqrt((double)fc6->shape[1] / h->channels));
    if ((int64_t)h->box_pool * h->box_pool * h->channels != fc6->shape[1])
        return avps_fail(err, "%s: tensor rcnn.fc6.0.weight takes %lld inputs, not %d channels x a square", st->path,
                         (long long)fc6->shape[1], h->channels);
    if (load_fc(h, st, "rcnn.fc6.0", (int)fc6->shape[1], &h->fc6, err) ||
        load_fc(h, st, "rcnn.fc7.0", h->fc6.out, &h->fc7, err) ||
        load_fc(h, st, "rcnn.cls_score", h->fc7.out, &h->cls_score, err) ||
        load_fc(h, st, "rcnn.bbox_pred", h->fc7.out, &h->bbox_pred, err))
        return -1;
    h->num_classes = h->cls_score.out;
    if (h->num_classes < 2 || h->num_classes > 255 || h->bbox_pred.out != 4 * h->num_classes)
        return avps_fail(err, "%s: tensor rcnn.bbox_pred.weight has %d outputs, class-specific regression of %d classes "
                         "needs %d", st->path, h->bbox_pred.out, h->num_classes, 4 * h->num_classes);
    return 0;
}

static int load_mask_head(ups_heads *h, const st_file *st, avps_error *err) {
    int in = h->channels;
    char p[64];
    for (int i = 0; i < UPS_MASK_CONVS; i++) {
        snprintf(p, sizeof p, "mask_branch.mask_conv%d.0", i + 1);
        if (load_conv(h, st, p, in, 1, &h->mask_conv[i], err))
            return -1;
        if (h->mask_conv[i].kh != 3 || h->mask_conv[i].kw != 3)
            return avps_fail(err, "%s: tensor %s.weight is not a 3x3 convolution", st->path, p);
        in = h->mask_conv[i].out;
    }
    if (load_deconv(h, st, "mask_branch.mask_deconv1.0", in, &h->mask_deconv, err) ||
        load_conv(h, st, "mask_branch.mask_score", h->mask_deconv.out, 0, &h->mask_score, err))
        return -1;
    if (h->mask_deconv.kh != 2 || h->mask_deconv.kw != 2)
        return avps_fail(err, "%s: tensor mask_branch.mask_deconv1.0.weight is not a 2x2 transposed convolution",
                         st->path);
    if (h->mask_score.out != h->num_classes)
        return avps_fail(err, "%s: tensor mask_branch.mask_score.weight has %d classes, the box head %d", st->path,
                         h->mask_score.out, h->num_classes);
    h->mask_pool = 14, h->mask_size = 28; /* config.network.mask_size 28, RoIAlign at half of it */
    return 0;
}

ups_heads *ups_heads_load(const st_file *st, const nn_backend *be, const ups_head_settings *s, avps_error *err) {
    ups_heads *h = calloc(1, sizeof *h);
    if (!h) {
        avps_fail(err, "native engine: out of memory");
        return NULL;
    }
    h->be = be, h->set = *s;
    const st_tensor *conv = weight_of(st, "rpn.conv_proposal.0", 4, err);
    if (!conv || (h->channels = (int)conv->shape[1], load_rpn(h, st, h->channels, err)) ||
        load_box_head(h, st, err) || load_mask_head(h, st, err)) {
        ups_heads_free(h);
        return NULL;
    }
    return h;
}

void ups_heads_free(ups_heads *h) {
    if (!h)
        return;
    for (size_t i = 0; i < h->n_owned; i++)
        free(h->owned[i]);
    free(h->owned);
    free(h);
}
