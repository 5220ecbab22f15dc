/* load.c: builds a Mask R-CNN ResNet-FPN from a safetensors state dict of
 * torchvision's maskrcnn_resnet50_fpn (or any ResNet depth and width: the architecture
 * is read from the tensors' names and shapes). Frozen batch norm is folded into the
 * convolution before it: w' = w * s, b' = beta - mean * s, s = gamma / sqrt(var + 1e-5),
 * computed in float32 as torchvision's FrozenBatchNorm2d does. Settings (min_size,
 * thresholds, ...) come from the header's __metadata__ (docs/model.md). */
#include "maskrcnn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FROZEN_BN_EPS 1e-5f

static float *owned_floats(maskrcnn *m, size_t n, avps_error *err) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p)
            return avps_fail(err, "native engine: out of memory"), NULL;
        m->owned = p, m->cap_owned = cap;
    }
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return avps_fail(err, "native engine: out of memory for %zu weights", n), NULL;
    return m->owned[m->n_owned++] = f;
}

static const char *name_of(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *name_of(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return buf;
}

/* A weight tensor's shape, which describes the architecture; NULL when absent. */
static const st_tensor *shape_of(const st_file *st, const char *name, int ndim, avps_error *err) {
    const st_tensor *t = st_find(st, name);
    if (t && t->ndim != ndim) {
        avps_fail(err, "%s: tensor %s has %d dimensions, the architecture needs %d", st->path, name, t->ndim, ndim);
        return NULL;
    }
    if (t)
        for (int i = 0; i < ndim; i++)
            if (t->shape[i] <= 0 || t->shape[i] > (1 << 20)) {
                avps_fail(err, "%s: tensor %s has an implausible shape", st->path, name);
                return NULL;
            }
    if (!t)
        avps_fail(err, "%s: no tensor %s (is this a Mask R-CNN ResNet-FPN state dict?)", st->path, name);
    return t;
}

/* A convolution `prefix`.weight with frozen batch norm `bn` (NULL: a bias `prefix`.bias
 * instead, or none when !has_bias); in_channels must match. */
static int load_conv(maskrcnn *m, const st_file *st, const char *prefix, const char *bn, int has_bias, int in,
                     int stride, nn_conv *cv, avps_error *err) {
    char name[256];
    const st_tensor *t = shape_of(st, name_of(name, sizeof name, "%s.weight", prefix), 4, err);
    if (!t)
        return -1;
    int64_t shape[4] = {t->shape[0], in, t->shape[2], t->shape[3]};
    *cv = (nn_conv){NULL, NULL, (int)shape[0], in, (int)shape[2], (int)shape[3], stride, (int)shape[2] / 2};
    size_t n = (size_t)shape[0] * in * shape[2] * shape[3];
    if (!(cv->weight = owned_floats(m, n, err)) || !(cv->bias = owned_floats(m, (size_t)cv->out, err)))
        return -1;
    if (st_read_f32(st, name, 4, shape, cv->weight, err) != 0)
        return -1;
    int64_t vec[1] = {cv->out};
    if (!bn) {
        if (!has_bias) {
            memset(cv->bias, 0, sizeof(float) * (size_t)cv->out);
            return 0;
        }
        return st_read_f32(st, name_of(name, sizeof name, "%s.bias", prefix), 1, vec, cv->bias, err);
    }
    float *gamma = owned_floats(m, (size_t)cv->out * 3, err);
    if (!gamma)
        return -1;
    float *mean = gamma + cv->out, *var = mean + cv->out;
    if (st_read_f32(st, name_of(name, sizeof name, "%s.weight", bn), 1, vec, gamma, err) != 0 ||
        st_read_f32(st, name_of(name, sizeof name, "%s.bias", bn), 1, vec, cv->bias, err) != 0 ||
        st_read_f32(st, name_of(name, sizeof name, "%s.running_mean", bn), 1, vec, mean, err) != 0 ||
        st_read_f32(st, name_of(name, sizeof name, "%s.running_var", bn), 1, vec, var, err) != 0)
        return -1;
    size_t per_out = n / (size_t)cv->out;
    for (int o = 0; o < cv->out; o++) {
        if (!(var[o] + FROZEN_BN_EPS > 0))
            return avps_fail(err, "%s: tensor %s.running_var: entry %d is not positive", st->path, bn, o);
        float scale = gamma[o] * (1.0f / sqrtf(var[o] + FROZEN_BN_EPS));
        cv->bias[o] = cv->bias[o] - mean[o] * scale;
        for (size_t i = 0; i < per_out; i++)
            cv->weight[(size_t)o * per_out + i] *= scale;
    }
    return 0;
}

/* torchvision renamed Sequential-wrapped layers in 0.13 ("conv.0.0" for "conv"): either. */
static const char *either(const st_file *st, char *buf, size_t len, const char *new_prefix, const char *old_prefix) {
    char w[300];
    snprintf(w, sizeof w, "%s.weight", new_prefix);
    snprintf(buf, len, "%s", st_find(st, w) ? new_prefix : old_prefix);
    return buf;
}

static int load_fc(maskrcnn *m, const st_file *st, const char *prefix, int in, nn_fc *fc, avps_error *err) {
    char name[256];
    const st_tensor *t = shape_of(st, name_of(name, sizeof name, "%s.weight", prefix), 2, err);
    if (!t)
        return -1;
    *fc = (nn_fc){NULL, NULL, (int)t->shape[0], in};
    int64_t shape[2] = {fc->out, in}, vec[1] = {fc->out};
    if (!(fc->weight = owned_floats(m, (size_t)fc->out * in, err)) || !(fc->bias = owned_floats(m, (size_t)fc->out, err)))
        return -1;
    if (st_read_f32(st, name, 2, shape, fc->weight, err) != 0)
        return -1;
    return st_read_f32(st, name_of(name, sizeof name, "%s.bias", prefix), 1, vec, fc->bias, err);
}

static int load_backbone(maskrcnn *m, const st_file *st, int *stage_channels, avps_error *err) {
    if (load_conv(m, st, "backbone.body.conv1", "backbone.body.bn1", 0, 3, 2, &m->stem, err) != 0)
        return -1;
    m->stem.pad = m->stem.kh / 2;
    char name[256], p[200], bn[200];
    int n = 0;
    for (int l = 0; l < MRCNN_LEVELS; l++)
        for (int b = 0; st_find(st, name_of(name, sizeof name, "backbone.body.layer%d.%d.conv1.weight", l + 1, b)); b++)
            n++;
    if (n == 0)
        return avps_fail(err, "%s: no ResNet blocks (backbone.body.layer1.0.conv1.weight)", st->path);
    if (!(m->blocks = calloc((size_t)n, sizeof *m->blocks)))
        return avps_fail(err, "native engine: out of memory");
    int in = m->stem.out;
    for (int l = 0; l < MRCNN_LEVELS; l++) {
        for (int b = 0; st_find(st, name_of(name, sizeof name, "backbone.body.layer%d.%d.conv1.weight", l + 1, b)); b++) {
            mrcnn_block *blk = &m->blocks[m->n_blocks++];
            int stride = (l > 0 && b == 0) ? 2 : 1;
            const char *base = name_of(p, sizeof p, "backbone.body.layer%d.%d", l + 1, b);
            char conv[240];
            blk->bottleneck = st_find(st, name_of(name, sizeof name, "%s.conv3.weight", base)) != NULL;
            blk->has_down = st_find(st, name_of(name, sizeof name, "%s.downsample.0.weight", base)) != NULL;
            if (load_conv(m, st, name_of(conv, sizeof conv, "%s.conv1", base), name_of(bn, sizeof bn, "%s.bn1", base),
                          0, in, blk->bottleneck ? 1 : stride, &blk->conv1, err) != 0 ||
                load_conv(m, st, name_of(conv, sizeof conv, "%s.conv2", base), name_of(bn, sizeof bn, "%s.bn2", base),
                          0, blk->conv1.out, blk->bottleneck ? stride : 1, &blk->conv2, err) != 0)
                return -1;
            int out = blk->conv2.out;
            if (blk->bottleneck) {
                if (load_conv(m, st, name_of(conv, sizeof conv, "%s.conv3", base), name_of(bn, sizeof bn, "%s.bn3", base),
                              0, blk->conv2.out, 1, &blk->conv3, err) != 0)
                    return -1;
                out = blk->conv3.out;
            }
            if (blk->has_down) {
                if (load_conv(m, st, name_of(conv, sizeof conv, "%s.downsample.0", base),
                              name_of(bn, sizeof bn, "%s.downsample.1", base), 0, in, stride, &blk->down, err) != 0)
                    return -1;
                blk->down.pad = 0;
                if (blk->down.out != out)
                    return avps_fail(err, "%s: %s.downsample.0.weight gives %d channels, the block %d", st->path, base,
                                     blk->down.out, out);
            } else if (in != out || stride != 1) {
                return avps_fail(err, "%s: %s changes shape but has no downsample", st->path, base);
            }
            in = out;
        }
        m->layer_end[l] = m->n_blocks;
        if (m->layer_end[l] == (l ? m->layer_end[l - 1] : 0))
            return avps_fail(err, "%s: ResNet stage layer%d has no blocks", st->path, l + 1);
        stage_channels[l] = in;
    }
    return 0;
}

static int load_fpn_rpn(maskrcnn *m, const st_file *st, const int *stage_channels, avps_error *err) {
    char p[200], q[200], pre[200];
    for (int l = 0; l < MRCNN_LEVELS; l++) {
        snprintf(q, sizeof q, "backbone.fpn.inner_blocks.%d.0", l);
        snprintf(pre, sizeof pre, "backbone.fpn.inner_blocks.%d", l);
        if (load_conv(m, st, either(st, p, sizeof p, q, pre), NULL, 1, stage_channels[l], 1, &m->fpn_inner[l], err))
            return -1;
        int c = m->fpn_inner[l].out;
        snprintf(q, sizeof q, "backbone.fpn.layer_blocks.%d.0", l);
        snprintf(pre, sizeof pre, "backbone.fpn.layer_blocks.%d", l);
        if (load_conv(m, st, either(st, p, sizeof p, q, pre), NULL, 1, c, 1, &m->fpn_out[l], err))
            return -1;
        if (c != m->fpn_inner[0].out || m->fpn_out[l].out != c)
            return avps_fail(err, "%s: FPN level %d has %d channels, level 0 %d", st->path, l, c, m->fpn_inner[0].out);
    }
    int c = m->fpn_out[0].out;
    if (load_conv(m, st, either(st, p, sizeof p, "rpn.head.conv.0.0", "rpn.head.conv"), NULL, 1, c, 1, &m->rpn_conv,
                  err) ||
        load_conv(m, st, "rpn.head.cls_logits", NULL, 1, m->rpn_conv.out, 1, &m->rpn_cls, err) ||
        load_conv(m, st, "rpn.head.bbox_pred", NULL, 1, m->rpn_conv.out, 1, &m->rpn_bbox, err))
        return -1;
    m->anchors = m->rpn_cls.out;
    if (m->rpn_bbox.out != 4 * m->anchors)
        return avps_fail(err, "%s: rpn.head.bbox_pred.weight has %d outputs, 4 x %d anchors needs %d", st->path,
                         m->rpn_bbox.out, m->anchors, 4 * m->anchors);
    return 0;
}

static int load_roi_heads(maskrcnn *m, const st_file *st, avps_error *err) {
    int c = m->fpn_out[0].out;
    const st_tensor *fc6 = shape_of(st, "roi_heads.box_head.fc6.weight", 2, err);
    if (!fc6)
        return -1;
    m->box_pool = (int)lround(sqrt((double)fc6->shape[1] / c));
    if ((int64_t)m->box_pool * m->box_pool * c != fc6->shape[1])
        return avps_fail(err, "%s: tensor roi_heads.box_head.fc6.weight takes %lld inputs, not %d channels x a square",
                         st->path, (long long)fc6->shape[1], c);
    if (load_fc(m, st, "roi_heads.box_head.fc6", (int)fc6->shape[1], &m->fc6, err) ||
        load_fc(m, st, "roi_heads.box_head.fc7", m->fc6.out, &m->fc7, err) ||
        load_fc(m, st, "roi_heads.box_predictor.cls_score", m->fc7.out, &m->cls_score, err) ||
        load_fc(m, st, "roi_heads.box_predictor.bbox_pred", m->fc7.out, &m->bbox_pred, err))
        return -1;
    m->num_classes = m->cls_score.out;
    if (m->bbox_pred.out != 4 * m->num_classes || m->num_classes < 2)
        return avps_fail(err, "%s: tensor roi_heads.box_predictor.bbox_pred.weight has %d outputs, 4 x %d classes needs %d",
                         st->path, m->bbox_pred.out, m->num_classes, 4 * m->num_classes);
    char name[256], p[200], q[200], old[200];
    while (st_find(st, name_of(name, sizeof name, "roi_heads.mask_head.%d.0.weight", m->n_mask_convs)) ||
           st_find(st, name_of(name, sizeof name, "roi_heads.mask_head.mask_fcn%d.weight", m->n_mask_convs + 1)))
        m->n_mask_convs++;
    if (!(m->mask_convs = calloc((size_t)m->n_mask_convs + 1, sizeof *m->mask_convs)))
        return avps_fail(err, "native engine: out of memory");
    int in = c;
    for (int i = 0; i < m->n_mask_convs; i++) {
        snprintf(q, sizeof q, "roi_heads.mask_head.%d.0", i);
        snprintf(old, sizeof old, "roi_heads.mask_head.mask_fcn%d", i + 1);
        if (load_conv(m, st, either(st, p, sizeof p, q, old), NULL, 1, in, 1, &m->mask_convs[i], err))
            return -1;
        in = m->mask_convs[i].out;
    }
    const st_tensor *dw = shape_of(st, "roi_heads.mask_predictor.conv5_mask.weight", 4, err);
    if (!dw)
        return -1;
    nn_deconv *dc = &m->mask_deconv;
    *dc = (nn_deconv){NULL, NULL, (int)dw->shape[1], in, (int)dw->shape[2], (int)dw->shape[3], 2, 0};
    int64_t shape[4] = {in, dc->out, dc->kh, dc->kw}, vec[1] = {dc->out};
    size_t n = (size_t)in * dc->out * dc->kh * dc->kw;
    float *raw = owned_floats(m, n, err);
    if (!raw || !(dc->weight = owned_floats(m, n, err)) || !(dc->bias = owned_floats(m, (size_t)dc->out, err)))
        return -1;
    if (st_read_f32(st, "roi_heads.mask_predictor.conv5_mask.weight", 4, shape, raw, err) ||
        st_read_f32(st, "roi_heads.mask_predictor.conv5_mask.bias", 1, vec, dc->bias, err))
        return -1;
    /* torch keeps [in][out][kh][kw]; the operator wants [(out, kh, kw)][in] */
    size_t okk = (size_t)dc->out * dc->kh * dc->kw;
    for (int ci = 0; ci < in; ci++)
        for (size_t r = 0; r < okk; r++)
            dc->weight[r * in + ci] = raw[(size_t)ci * okk + r];
    if (load_conv(m, st, "roi_heads.mask_predictor.mask_fcn_logits", NULL, 1, dc->out, 1, &m->mask_logits, err))
        return -1;
    if (m->mask_logits.out != m->num_classes)
        return avps_fail(err, "%s: tensor roi_heads.mask_predictor.mask_fcn_logits.weight has %d classes, the box head %d",
                         st->path, m->mask_logits.out, m->num_classes);
    m->mask_pool = 14;
    return 0;
}

/* Numbers from the header's __metadata__ ("800", or a list "0.5,1.0,2.0"). */
static int meta_floats(const st_file *st, const char *key, float *out, int max, int *n, avps_error *err) {
    const char *v = st_meta(st, key);
    if (!v)
        return 0;
    int k = 0;
    const char *s = v;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '[' || *s == ']' || *s == '(' || *s == ')')
            s++;
        if (!*s)
            break;
        char *end;
        double d = strtod(s, &end);
        if (end == s || k == max || !isfinite(d))
            return avps_fail(err, "%s: __metadata__ %s = \"%s\" is not a list of at most %d numbers", st->path, key, v,
                             max);
        out[k++] = (float)d;
        s = end;
    }
    if (n)
        *n = k;
    else if (k != 1)
        return avps_fail(err, "%s: __metadata__ %s = \"%s\" must be one number", st->path, key, v);
    return 0;
}

static int meta_int(const st_file *st, const char *key, int *out, avps_error *err) {
    float v = (float)*out;
    if (meta_floats(st, key, &v, 1, NULL, err) != 0)
        return -1;
    if (v < 1 || v > 1e6f || v != floorf(v))
        return avps_fail(err, "%s: __metadata__ %s must be a positive whole number", st->path, key);
    *out = (int)v;
    return 0;
}

static int load_settings(maskrcnn *m, const st_file *st, avps_error *err) {
    m->min_size = 800, m->max_size = 1333;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(m->mean, mean, sizeof mean), memcpy(m->std, std, sizeof std);
    m->rpn_pre_nms = 1000, m->rpn_post_nms = 1000, m->rpn_nms = 0.7f;
    m->box_score = 0.05f, m->box_nms = 0.5f, m->detections = 100;
    int n3 = 0, n_sizes = 0, n_ratios = 0;
    float sizes[MRCNN_LEVELS + 1] = {32, 64, 128, 256, 512}, ratios[MRCNN_MAX_ANCHORS] = {0.5f, 1.0f, 2.0f};
    n_sizes = MRCNN_LEVELS + 1, n_ratios = 3;
    if (meta_floats(st, "min_size", &m->min_size, 1, NULL, err) || meta_floats(st, "max_size", &m->max_size, 1, NULL, err) ||
        meta_floats(st, "rpn_nms_thresh", &m->rpn_nms, 1, NULL, err) ||
        meta_floats(st, "box_score_thresh", &m->box_score, 1, NULL, err) ||
        meta_floats(st, "box_nms_thresh", &m->box_nms, 1, NULL, err) ||
        meta_int(st, "rpn_pre_nms_top_n_test", &m->rpn_pre_nms, err) ||
        meta_int(st, "rpn_post_nms_top_n_test", &m->rpn_post_nms, err) ||
        meta_int(st, "box_detections_per_img", &m->detections, err) ||
        meta_floats(st, "anchor_sizes", sizes, MRCNN_LEVELS + 1, &n_sizes, err) ||
        meta_floats(st, "aspect_ratios", ratios, MRCNN_MAX_ANCHORS, &n_ratios, err))
        return -1;
    if (st_meta(st, "image_mean") && (meta_floats(st, "image_mean", m->mean, 3, &n3, err) || n3 != 3))
        return avps_fail(err, "%s: __metadata__ image_mean must hold 3 numbers", st->path);
    if (st_meta(st, "image_std") && (meta_floats(st, "image_std", m->std, 3, &n3, err) || n3 != 3))
        return avps_fail(err, "%s: __metadata__ image_std must hold 3 numbers", st->path);
    if (!(m->min_size >= 1 && m->max_size >= m->min_size))
        return avps_fail(err, "%s: __metadata__ min_size and max_size must be 1 <= min_size <= max_size", st->path);
    /* one size per level (P2..P6), the same ratios on each, as maskrcnn_resnet50_fpn */
    if (n_sizes != MRCNN_LEVELS + 1 || n_ratios < 1 || n_ratios != m->anchors)
        return avps_fail(err, "%s: %d anchor sizes x %d aspect ratios per level, but rpn.head.cls_logits has %d anchors",
                         st->path, n_sizes, n_ratios, m->anchors);
    for (int l = 0; l <= MRCNN_LEVELS; l++)
        nn_cell_anchors(&sizes[l], 1, ratios, n_ratios, m->cell_anchors[l]);
    return 0;
}

static int load_proposals(maskrcnn *m, const char *path, avps_error *err) {
    npy_expect want = {NPY_DTYPE_BIT(NPY_F32), 2, {0, 4, 0, 0}};
    npy_array a;
    if (npy_read(path, &want, &a, err) != 0)
        return -1;
    m->n_proposals = (int)a.shape[0];
    m->proposals = owned_floats(m, a.shape[0] * 4, err);
    if (m->proposals)
        memcpy(m->proposals, a.data, a.nbytes);
    npy_array_release(&a);
    return m->proposals ? 0 : -1;
}

maskrcnn *maskrcnn_load(const st_file *st, const native_options *opt, avps_error *err) {
    maskrcnn *m = calloc(1, sizeof *m);
    if (!m) {
        avps_fail(err, "native engine: out of memory");
        return NULL;
    }
    nn_arena_init(&m->arena);
    if (!(m->be = nn_cpu_backend(!opt->plain_gemm, err))) {
        maskrcnn_free(m);
        return NULL;
    }
    if (opt->n_settings > 0 || opt->semantic) {
        avps_fail(err, "%s: --set and --semantic are for UPSNet weights; this is a Mask R-CNN", st->path);
        maskrcnn_free(m);
        return NULL;
    }
    int stage_channels[MRCNN_LEVELS];
    int rc = load_backbone(m, st, stage_channels, err) || load_fpn_rpn(m, st, stage_channels, err) ||
             load_roi_heads(m, st, err) || load_settings(m, st, err);
    if (!rc && opt->score_thresh >= 0)
        m->box_score = (float)opt->score_thresh;
    if (!rc && opt->detections > 0)
        m->detections = opt->detections;
    if (!rc && opt->dump_dir && !(m->dump_dir = strdup(opt->dump_dir)))
        rc = avps_fail(err, "native engine: out of memory");
    if (!rc && opt->proposals)
        rc = load_proposals(m, opt->proposals, err);
    if (rc) {
        maskrcnn_free(m);
        return NULL;
    }
    return m;
}

void maskrcnn_free(maskrcnn *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->blocks);
    free(m->mask_convs);
    free(m->dump_dir);
    nn_arena_release(&m->arena);
    free(m);
}

/* torchvision's state-dict names: the ResNet body under backbone.body, the mask head
 * under roi_heads */
static int maskrcnn_recognises(const st_file *st) {
    return st_find(st, "backbone.body.conv1.weight") && st_find(st, "roi_heads.box_predictor.cls_score.weight");
}

static void *maskrcnn_load_any(const st_file *st, const native_options *opt, avps_error *err) {
    return maskrcnn_load(st, opt, err);
}
static int maskrcnn_run_any(void *m, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    return maskrcnn_run(m, rgb, w, h, res, err);
}
static void maskrcnn_free_any(void *m) { maskrcnn_free(m); }
static const nn_arena *maskrcnn_arena(const void *m) { return &((const maskrcnn *)m)->arena; }

const nn_net_kind maskrcnn_kind = {"maskrcnn", maskrcnn_recognises, maskrcnn_load_any, maskrcnn_run_any,
                                   maskrcnn_free_any, maskrcnn_arena, NULL};
