/* load.c: builds a Hybrid Task Cascade from a safetensors state dict of mmdetection's
 * HybridTaskCascade (mmdetection's own parameter names: backbone.*, neck.*, rpn_head.*,
 * roi_head.bbox_head.N.*, roi_head.mask_head.N.*, roi_head.semantic_head.*). The
 * architecture (depth, widths, stages, convolutions per head, classes) is read from the
 * tensors' names and shapes; batch norm is folded into the convolution before it
 * (w' = w * s, b' = beta - mean * s, s = gamma / sqrt(var + 1e-5)); the inference
 * settings come from the header's __metadata__ and --set (settings.c). */
#include "htc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f

void *htc_owned(htc *m, size_t bytes, avps_error *err) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p)
            return avps_fail(err, "native engine: out of memory"), NULL;
        m->owned = p, m->cap_owned = cap;
    }
    void *f = calloc(1, bytes ? bytes : 1);
    if (!f)
        return avps_fail(err, "native engine: out of memory for %zu bytes of weights", bytes), NULL;
    return m->owned[m->n_owned++] = f;
}

static void *owned(htc *m, size_t bytes, avps_error *err) { return htc_owned(m, bytes, err); }
static float *owned_floats(htc *m, size_t n, avps_error *err) { return owned(m, n * sizeof(float), err); }

static const char *fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
static const char *fmt(char *buf, size_t len, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
    return buf;
}

static int has(const st_file *st, const char *f, ...) __attribute__((format(printf, 2, 3)));
static int has(const st_file *st, const char *f, ...) {
    char name[300];
    va_list ap;
    va_start(ap, f);
    vsnprintf(name, sizeof name, f, ap);
    va_end(ap);
    return st_find(st, name) != NULL;
}

static const st_tensor *shape_of(const st_file *st, const char *name, int ndim, avps_error *err) {
    const st_tensor *t = st_find(st, name);
    if (!t) {
        avps_fail(err, "%s: no tensor %s (is this an mmdetection HTC state dict?)", st->path, name);
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

/* `prefix`.weight, with batch norm `bn` folded in, or `prefix`.bias (has_bias) or none. */
static int load_conv(htc *m, const st_file *st, const char *prefix, const char *bn, int has_bias, int in, int stride,
                     nn_conv *cv, avps_error *err) {
    char name[300];
    const st_tensor *t = shape_of(st, fmt(name, sizeof name, "%s.weight", prefix), 4, err);
    if (!t)
        return -1;
    int64_t shape[4] = {t->shape[0], in, t->shape[2], t->shape[3]};
    *cv = (nn_conv){NULL, NULL, (int)shape[0], in, (int)shape[2], (int)shape[3], stride, (int)shape[2] / 2};
    size_t n = (size_t)shape[0] * in * shape[2] * shape[3];
    if (!(cv->weight = owned_floats(m, n, err)) || !(cv->bias = owned_floats(m, (size_t)cv->out, err)) ||
        st_read_f32(st, name, 4, shape, cv->weight, err) != 0)
        return -1;
    int64_t vec[1] = {cv->out};
    if (!bn)
        return has_bias ? st_read_f32(st, fmt(name, sizeof name, "%s.bias", prefix), 1, vec, cv->bias, err) : 0;
    float *gamma = owned_floats(m, (size_t)cv->out * 3, err);
    if (!gamma)
        return -1;
    float *mean = gamma + cv->out, *var = mean + cv->out;
    if (st_read_f32(st, fmt(name, sizeof name, "%s.weight", bn), 1, vec, gamma, err) ||
        st_read_f32(st, fmt(name, sizeof name, "%s.bias", bn), 1, vec, cv->bias, err) ||
        st_read_f32(st, fmt(name, sizeof name, "%s.running_mean", bn), 1, vec, mean, err) ||
        st_read_f32(st, fmt(name, sizeof name, "%s.running_var", bn), 1, vec, var, err))
        return -1;
    size_t per_out = n / (size_t)cv->out;
    for (int o = 0; o < cv->out; o++) {
        if (!(var[o] + BN_EPS > 0))
            return avps_fail(err, "%s: tensor %s.running_var: entry %d is not positive", st->path, bn, o);
        float s = gamma[o] / sqrtf(var[o] + BN_EPS);
        cv->bias[o] -= mean[o] * s;
        for (size_t i = 0; i < per_out; i++)
            cv->weight[(size_t)o * per_out + i] *= s;
    }
    return 0;
}

static int load_fc(htc *m, const st_file *st, const char *prefix, int in, nn_fc *fc, avps_error *err) {
    char name[300];
    const st_tensor *t = shape_of(st, fmt(name, sizeof name, "%s.weight", prefix), 2, err);
    if (!t)
        return -1;
    *fc = (nn_fc){NULL, NULL, (int)t->shape[0], in};
    int64_t shape[2] = {fc->out, in}, vec[1] = {fc->out};
    if (!(fc->weight = owned_floats(m, (size_t)fc->out * in, err)) || !(fc->bias = owned_floats(m, (size_t)fc->out, err)))
        return -1;
    return st_read_f32(st, name, 2, shape, fc->weight, err) ||
           st_read_f32(st, fmt(name, sizeof name, "%s.bias", prefix), 1, vec, fc->bias, err);
}

/* ResNet (mmdetection's pytorch style: the stride on the 3x3 of a bottleneck). */
/* The deformable part of the convolution `conv` (loaded, input channels in), when
 * `conv`.conv_offset is there: conv_offset's outputs tell v1 (2 per tap and offset group)
 * from v2 (3); where both fit, __metadata__ `key` = "v1" or "v2" (else v2) says which. */
static int load_dcn(htc *m, const st_file *st, const char *conv, const nn_conv *cv, int in, const char *key, htc_dcn *d,
                    avps_error *err) {
    char p[300];
    d->version = 0;
    if (!has(st, "%s.conv_offset.weight", conv))
        return 0;
    if (load_conv(m, st, fmt(p, sizeof p, "%s.conv_offset", conv), NULL, 1, in, cv->stride, &d->offset, err))
        return -1;
    int kk = cv->kh * cv->kw, o = d->offset.out;
    const char *v = st_meta(st, key);
    int v1 = o % (2 * kk) == 0 && in % (o / (2 * kk)) == 0, v2 = o % (3 * kk) == 0 && in % (o / (3 * kk)) == 0;
    if (v && strcmp(v, "v1") != 0 && strcmp(v, "v2") != 0 && strcmp(v, "none") != 0)
        return avps_fail(err, "%s: __metadata__ %s = \"%s\": \"v1\", \"v2\" or \"none\"", st->path, key, v);
    if (v1 && v2)
        v1 = v && strcmp(v, "v1") == 0, v2 = !v1;
    if (!v1 && !v2)
        return avps_fail(err, "%s: tensor %s.conv_offset.weight has %d outputs, not 2 or 3 per tap of a %dx%d kernel "
                              "and offset group", st->path, conv, o, cv->kh, cv->kw);
    d->version = v2 ? 2 : 1;
    d->groups = o / ((v2 ? 3 : 2) * kk);
    if (d->offset.kh != cv->kh || d->offset.kw != cv->kw)
        return avps_fail(err, "%s: tensor %s.conv_offset.weight: its kernel is not the convolution's", st->path, conv);
    return 0;
}

static int load_backbone(htc *m, const st_file *st, int *stage_channels, avps_error *err) {
    if (load_conv(m, st, "backbone.conv1", "backbone.bn1", 0, 3, 2, &m->stem, err))
        return -1;
    int n = 0;
    for (int l = 0; l < HTC_LEVELS; l++)
        for (int b = 0; has(st, "backbone.layer%d.%d.conv1.weight", l + 1, b); b++)
            n++;
    if (n == 0)
        return avps_fail(err, "%s: no ResNet blocks (backbone.layer1.0.conv1.weight)", st->path);
    if (!(m->blocks = owned(m, (size_t)n * sizeof *m->blocks, err)))
        return -1;
    int in = m->stem.out;
    char base[100], conv[120], bn[120];
    for (int l = 0; l < HTC_LEVELS; l++) {
        for (int b = 0; has(st, "backbone.layer%d.%d.conv1.weight", l + 1, b); b++) {
            htc_block *blk = &m->blocks[m->n_blocks++];
            int stride = (l > 0 && b == 0) ? 2 : 1;
            fmt(base, sizeof base, "backbone.layer%d.%d", l + 1, b);
            blk->bottleneck = has(st, "%s.conv3.weight", base);
            blk->has_down = has(st, "%s.downsample.0.weight", base);
            if (load_conv(m, st, fmt(conv, sizeof conv, "%s.conv1", base), fmt(bn, sizeof bn, "%s.bn1", base), 0, in,
                          blk->bottleneck ? 1 : stride, &blk->conv1, err) ||
                load_conv(m, st, fmt(conv, sizeof conv, "%s.conv2", base), fmt(bn, sizeof bn, "%s.bn2", base), 0,
                          blk->conv1.out, blk->bottleneck ? stride : 1, &blk->conv2, err) ||
                load_dcn(m, st, conv, &blk->conv2, blk->conv1.out, "backbone_dcn", &blk->dcn2, err))
                return -1;
            int out = blk->conv2.out;
            if (blk->bottleneck) {
                if (load_conv(m, st, fmt(conv, sizeof conv, "%s.conv3", base), fmt(bn, sizeof bn, "%s.bn3", base), 0,
                              blk->conv2.out, 1, &blk->conv3, err))
                    return -1;
                out = blk->conv3.out;
            }
            if (blk->has_down) {
                if (load_conv(m, st, fmt(conv, sizeof conv, "%s.downsample.0", base),
                              fmt(bn, sizeof bn, "%s.downsample.1", base), 0, in, stride, &blk->down, err))
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

static int load_neck_rpn(htc *m, const st_file *st, const int *stage_channels, avps_error *err) {
    char p[100];
    for (int l = 0; l < HTC_LEVELS; l++) {
        if (load_conv(m, st, fmt(p, sizeof p, "neck.lateral_convs.%d.conv", l), NULL, 1, stage_channels[l], 1,
                      &m->lateral[l], err) ||
            load_conv(m, st, fmt(p, sizeof p, "neck.fpn_convs.%d.conv", l), NULL, 1, m->lateral[l].out, 1, &m->fpn_out[l],
                      err))
            return -1;
        if (m->lateral[l].out != m->lateral[0].out || m->fpn_out[l].out != m->lateral[0].out)
            return avps_fail(err, "%s: FPN level %d has %d channels, level 0 %d", st->path, l, m->fpn_out[l].out,
                             m->lateral[0].out);
    }
    if (has(st, "neck.fpn_convs.%d.conv.weight", HTC_LEVELS))
        return avps_fail(err, "%s: FPN extra convolutions (add_extra_convs) are not supported", st->path);
    int c = m->fpn_out[0].out;
    if (load_conv(m, st, "rpn_head.rpn_conv", NULL, 1, c, 1, &m->rpn_conv, err) ||
        load_conv(m, st, "rpn_head.rpn_cls", NULL, 1, m->rpn_conv.out, 1, &m->rpn_cls, err) ||
        load_conv(m, st, "rpn_head.rpn_reg", NULL, 1, m->rpn_conv.out, 1, &m->rpn_reg, err))
        return -1;
    m->anchors = m->rpn_cls.out;
    if (m->anchors > HTC_MAX_ANCHORS || m->rpn_reg.out != 4 * m->anchors)
        return avps_fail(err, "%s: rpn_head.rpn_reg.weight has %d outputs for %d anchors (sigmoid RPN, 4 deltas each)",
                         st->path, m->rpn_reg.out, m->anchors);
    return 0;
}

/* A semantic-head ConvModule at `prefix` (.conv), deformable in the DC head (mmdetection's
 * conv_cfg DCN / DCNv2). */
static int load_sem_conv(htc *m, const st_file *st, const char *prefix, int in, htc_sem_conv *sc, avps_error *err) {
    char p[300];
    fmt(p, sizeof p, "%s.conv", prefix);
    return load_conv(m, st, p, NULL, 1, in, 1, &sc->conv, err) ||
           load_dcn(m, st, p, &sc->conv, in, "semantic_dcn", &sc->dcn, err);
}

static int load_semantic(htc *m, const st_file *st, avps_error *err) {
    m->has_semantic = has(st, "roi_head.semantic_head.conv_logits.weight");
    if (!m->has_semantic)
        return 0;
    char p[100];
    int c = m->fpn_out[0].out;
    for (int l = 0; l <= HTC_LEVELS; l++)
        if (load_sem_conv(m, st, fmt(p, sizeof p, "roi_head.semantic_head.lateral_convs.%d", l), c, &m->sem_lateral[l], err))
            return -1;
    while (has(st, "roi_head.semantic_head.convs.%d.conv.weight", m->n_sem_convs))
        m->n_sem_convs++;
    if (!(m->sem_convs = owned(m, ((size_t)m->n_sem_convs + 1) * sizeof *m->sem_convs, err)))
        return -1;
    int in = m->sem_lateral[0].conv.out;
    for (int i = 0; i < m->n_sem_convs; i++) {
        if (load_sem_conv(m, st, fmt(p, sizeof p, "roi_head.semantic_head.convs.%d", i), in, &m->sem_convs[i], err))
            return -1;
        in = m->sem_convs[i].conv.out;
    }
    if (load_conv(m, st, "roi_head.semantic_head.conv_logits", NULL, 1, in, 1, &m->sem_logits, err) ||
        load_sem_conv(m, st, "roi_head.semantic_head.conv_embedding", in, &m->sem_embed, err))
        return -1;
    if (m->sem_embed.conv.out != c)
        return avps_fail(err, "%s: the semantic embedding has %d channels, the FPN %d", st->path, m->sem_embed.conv.out, c);
    m->sem_classes = m->sem_logits.out;
    return 0;
}

static int load_deconv(htc *m, const st_file *st, const char *prefix, int in, nn_deconv *dc, avps_error *err) {
    char name[300];
    const st_tensor *t = shape_of(st, fmt(name, sizeof name, "%s.weight", prefix), 4, err);
    if (!t)
        return -1;
    *dc = (nn_deconv){NULL, NULL, (int)t->shape[1], in, (int)t->shape[2], (int)t->shape[3], 2, 0};
    int64_t shape[4] = {in, dc->out, dc->kh, dc->kw}, vec[1] = {dc->out};
    size_t okk = (size_t)dc->out * dc->kh * dc->kw, n = (size_t)in * okk;
    float *raw = owned_floats(m, n, err);
    if (!raw || !(dc->weight = owned_floats(m, n, err)) || !(dc->bias = owned_floats(m, (size_t)dc->out, err)) ||
        st_read_f32(st, name, 4, shape, raw, err) || st_read_f32(st, fmt(name, sizeof name, "%s.bias", prefix), 1, vec, dc->bias, err))
        return -1;
    /* torch keeps [in][out][kh][kw]; the operator wants [(out, kh, kw)][in] */
    for (int ci = 0; ci < in; ci++)
        for (size_t r = 0; r < okk; r++)
            dc->weight[r * in + ci] = raw[(size_t)ci * okk + r];
    return 0;
}

static int load_stages(htc *m, const st_file *st, avps_error *err) {
    char p[120];
    int c = m->fpn_out[0].out;
    while (has(st, "roi_head.bbox_head.%d.fc_cls.weight", m->n_stages))
        if (++m->n_stages > HTC_MAX_STAGES)
            return avps_fail(err, "%s: more than %d cascade stages", st->path, HTC_MAX_STAGES);
    if (m->n_stages == 0)
        return avps_fail(err, "%s: no box stage (roi_head.bbox_head.0.fc_cls.weight)", st->path);
    for (int s = 0; s < m->n_stages; s++) {
        htc_box_stage *b = &m->box[s];
        int in = c * m->box_roi * m->box_roi;
        while (has(st, "roi_head.bbox_head.%d.shared_fcs.%d.weight", s, b->n_fcs)) {
            if (b->n_fcs == HTC_MAX_FCS)
                return avps_fail(err, "%s: box stage %d has more than %d fcs", st->path, s, HTC_MAX_FCS);
            if (load_fc(m, st, fmt(p, sizeof p, "roi_head.bbox_head.%d.shared_fcs.%d", s, b->n_fcs), in,
                        &b->fcs[b->n_fcs], err))
                return -1;
            in = b->fcs[b->n_fcs++].out;
        }
        if (has(st, "roi_head.bbox_head.%d.shared_convs.0.conv.weight", s))
            return avps_fail(err, "%s: box heads with shared convolutions are not supported", st->path);
        if (load_fc(m, st, fmt(p, sizeof p, "roi_head.bbox_head.%d.fc_cls", s), in, &b->cls, err) ||
            load_fc(m, st, fmt(p, sizeof p, "roi_head.bbox_head.%d.fc_reg", s), in, &b->reg, err))
            return -1;
        if (s == 0)
            m->num_classes = b->cls.out - 1;
        if (b->cls.out != m->num_classes + 1 || m->num_classes < 1)
            return avps_fail(err, "%s: box stage %d has %d class logits, stage 0 %d", st->path, s, b->cls.out,
                             m->num_classes + 1);
        if (b->reg.out != 4)
            return avps_fail(err, "%s: box stage %d regresses %d values: only class-agnostic regression (4) is supported",
                             st->path, s, b->reg.out);
    }
    for (int s = 0; s < m->n_stages; s++) {
        htc_mask_stage *k = &m->mask[s];
        if (!has(st, "roi_head.mask_head.%d.conv_logits.weight", s))
            return avps_fail(err, "%s: no tensor roi_head.mask_head.%d.conv_logits.weight (HTC without masks?)", st->path, s);
        while (has(st, "roi_head.mask_head.%d.convs.%d.conv.weight", s, k->n_convs))
            k->n_convs++;
        if (!(k->convs = owned(m, ((size_t)k->n_convs + 1) * sizeof *k->convs, err)))
            return -1;
        int in = c;
        for (int i = 0; i < k->n_convs; i++) {
            if (load_conv(m, st, fmt(p, sizeof p, "roi_head.mask_head.%d.convs.%d.conv", s, i), NULL, 1, in, 1,
                          &k->convs[i], err))
                return -1;
            in = k->convs[i].out;
        }
        k->has_res = has(st, "roi_head.mask_head.%d.conv_res.conv.weight", s);
        if (k->has_res && (s == 0 || load_conv(m, st, fmt(p, sizeof p, "roi_head.mask_head.%d.conv_res.conv", s), NULL, 1,
                                               m->mask[s - 1].n_convs ? m->mask[s - 1].convs[m->mask[s - 1].n_convs - 1].out : c,
                                               1, &k->conv_res, err)))
            return s == 0 ? avps_fail(err, "%s: mask stage 0 cannot have conv_res", st->path) : -1;
        if (k->has_res && k->conv_res.out != c)
            return avps_fail(err, "%s: mask stage %d's conv_res gives %d channels, the RoI features %d", st->path, s,
                             k->conv_res.out, c);
        if (load_deconv(m, st, fmt(p, sizeof p, "roi_head.mask_head.%d.upsample", s), in, &k->up, err) ||
            load_conv(m, st, fmt(p, sizeof p, "roi_head.mask_head.%d.conv_logits", s), NULL, 1, k->up.out, 1, &k->logits, err))
            return -1;
        if (k->logits.out != m->num_classes)
            return avps_fail(err, "%s: mask stage %d has %d classes, the box stages %d (class-agnostic masks are not supported)",
                             st->path, s, k->logits.out, m->num_classes);
    }
    return 0;
}


/* The options of `avps infer` and the native head that are no metadata setting. */
static int load_options(htc *m, const native_options *opt, avps_error *err) {
    if (opt->score_thresh >= 0)
        m->score_thr = (float)opt->score_thresh;
    if (opt->detections > 0)
        m->max_per_img = opt->detections;
    if ((opt->dump_dir && !(m->dump_dir = strdup(opt->dump_dir))) ||
        (opt->semantic && !(m->semantic_path = strdup(opt->semantic))))
        return avps_fail(err, "native engine: out of memory");
    if (opt->semantic && !m->has_semantic)
        return avps_fail(err, "--semantic: these HTC weights have no semantic head");
    if (opt->proposals) {
        npy_expect want = {NPY_DTYPE_BIT(NPY_F32), 2, {0, 4, 0, 0}};
        npy_array a;
        if (npy_read(opt->proposals, &want, &a, err) != 0)
            return -1;
        m->n_proposals = (int)a.shape[0];
        m->proposals = owned_floats(m, a.shape[0] * 4, err);
        if (m->proposals && a.nbytes)
            memcpy(m->proposals, a.data, a.nbytes);
        npy_array_release(&a);
        if (!m->proposals)
            return -1;
    }
    return 0;
}

htc *htc_load(const st_file *st, const native_options *opt, avps_error *err) {
    htc *m = calloc(1, sizeof *m);
    htc_meta ms = {st, opt->settings, opt->n_settings > 0 ? opt->n_settings : 0, NULL};
    if (!m || !(ms.used = calloc((size_t)ms.n_set + 1, 1))) {
        free(m);
        avps_fail(err, "native engine: out of memory");
        return NULL;
    }
    nn_arena_init(&m->arena);
    int stage_channels[HTC_LEVELS];
    int rc = !(m->be = nn_cpu_backend(!opt->plain_gemm, err)) || htc_settings_read(m, &ms, err) ||
             load_backbone(m, st, stage_channels, err) || load_neck_rpn(m, st, stage_channels, err) || load_semantic(m, st, err) || load_stages(m, st, err) ||
             htc_settings_check(m, &ms, err) || load_options(m, opt, err);
    free(ms.used);
    if (rc) {
        htc_free(m);
        return NULL;
    }
    return m;
}

void htc_free(htc *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->dump_dir), free(m->semantic_path);
    nn_arena_release(&m->arena);
    free(m);
}

/* mmdetection's names: a cascade's box heads under roi_head.bbox_head.N and the RPN's
 * rpn_head.rpn_cls (Mask R-CNN's torchvision names differ throughout) */
static int htc_recognises(const st_file *st) {
    return st_find(st, "backbone.conv1.weight") && st_find(st, "rpn_head.rpn_cls.weight") &&
           st_find(st, "roi_head.bbox_head.0.fc_cls.weight") && st_find(st, "roi_head.mask_head.0.conv_logits.weight");
}

static void *htc_load_any(const st_file *st, const native_options *opt, avps_error *err) { return htc_load(st, opt, err); }
static int htc_run_any(void *m, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    return htc_run(m, rgb, w, h, res, err);
}
static void htc_free_any(void *m) { htc_free(m); }
static const nn_arena *htc_arena(const void *m) { return &((const htc *)m)->arena; }

static int htc_semantic(const void *v, const int32_t **category) {
    const htc *m = v;
    *category = m->has_semantic ? m->semantic_category : NULL;
    return m->has_semantic ? m->sem_classes : 0;
}

const nn_net_kind htc_kind = {"htc", htc_recognises, htc_load_any, htc_run_any, htc_free_any, htc_arena, htc_semantic};
