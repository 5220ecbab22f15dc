/* forward.c: the forward pass of mmdetection 3.x's Hybrid Task Cascade on one image, in
 * the order mmdetection runs it (HybridTaskCascade.predict):
 *   preprocess   test pipeline Resize (keep ratio, OpenCV's bilinear on bytes), then
 *                DetDataPreprocessor (normalise, pad to a multiple of 32 with zeros)
 *   backbone_fpn ResNet C2..C5, FPN P2..P5, P6 by max pooling
 *   rpn          RPNHead: sigmoid scores, top nms_pre per level, decode, one NMS over
 *                the levels with the level as the class (batched_nms)
 *   semantic     FusedSemanticHead: 5 levels fused at fusion_level, convs, logits and
 *                the semantic embedding (its convolutions deformable in the DC head)
 *   cascade      box stages: RoIAlign (+ the semantic RoI feature, pooled), fcs, class
 *                logits and class-agnostic deltas, boxes refined between stages; the
 *                score is the softmax of the stages' mean logits; per-class NMS
 *   masks        every mask stage on the final boxes, each stage's feature passed on
 *                through the next one's conv_res (mask information flow)
 *   output       boxes back to the image (divided by the resize's scale factors), the
 *                semantic logits with their geometry
 * Everything lives in the network's arena, reset at the start of each image. */
#include "htc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    htc *m;
    const nn_backend *be;
    nn_arena *a;
    avps_error *err;
    int img_w, img_h;       /* the resized image, before padding (mmdetection's img_shape) */
    float w_scale, h_scale; /* mmdetection's scale_factor: resized / original size */
    nn_tensor fpn[HTC_LEVELS + 1];
    float scales[HTC_LEVELS];
    nn_tensor sem_logits, sem_feat;
} pass;

/* ---- dumps (tests) ------------------------------------------------------------------- */

static int dump(const pass *p, const char *name, npy_dtype dtype, int ndim, const size_t *shape, const void *data) {
    if (!p->m->dump_dir)
        return 0;
    npy_array arr;
    if (npy_array_alloc(&arr, dtype, ndim, shape, p->err) != 0)
        return -1;
    if (arr.nbytes)
        memcpy(arr.data, data, arr.nbytes);
    char file[600];
    snprintf(file, sizeof file, "%s/%s.npy", p->m->dump_dir, name);
    int rc = npy_write(file, &arr, 0, p->err);
    npy_array_release(&arr);
    return rc;
}

static int dump_tensor(const pass *p, const char *name, const nn_tensor *t) {
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    return dump(p, name, NPY_F32, 4, shape, t->data);
}

/* --semantic F.npy: the logits at the head's resolution, (1, classes, H / stride, W / stride)
 * of the padded batch */
static int write_semantic(const pass *p, const char *path, const nn_tensor *t) {
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    npy_array arr;
    if (npy_array_alloc(&arr, NPY_F32, 4, shape, p->err) != 0)
        return -1;
    memcpy(arr.data, t->data, arr.nbytes);
    int rc = npy_write(path, &arr, 0, p->err);
    npy_array_release(&arr);
    return rc;
}

/* rows x cols floats */
static int dump_rows(const pass *p, const char *name, const float *x, int rows, int cols) {
    size_t shape[2] = {(size_t)rows, (size_t)cols};
    return dump(p, name, NPY_F32, cols == 1 ? 1 : 2, shape, x);
}

static void *alloc(const pass *p, size_t n, size_t size) { return nn_arena_alloc(p->a, (n ? n : 1) * size, p->err); }

/* ---- preprocessing ---------------------------------------------------------------------- */

/* mmcv's rescale_size: the factor min(long / long side, short / short side) in double,
 * each side int(side * factor + 0.5); the scale factors are the sizes' ratios. */
static int preprocess(pass *p, const uint8_t *rgb, uint32_t w, uint32_t h, nn_tensor *batch) {
    htc *m = p->m;
    double lo = w < h ? w : h, hi = w > h ? w : h;
    double f1 = m->scale_long / hi, f2 = m->scale_short / lo, f = f1 < f2 ? f1 : f2;
    p->img_w = (int)((double)w * f + 0.5), p->img_h = (int)((double)h * f + 0.5);
    if (p->img_w < 1 || p->img_h < 1 || p->img_w > 100000 || p->img_h > 100000)
        return avps_fail(p->err, "native engine: image of %ux%u resizes to %dx%d", w, h, p->img_w, p->img_h);
    p->w_scale = (float)((double)p->img_w / w), p->h_scale = (float)((double)p->img_h / h);
    size_t n = (size_t)p->img_w * p->img_h;
    uint8_t *resized = alloc(p, n * 3, 1);
    if (!resized || nn_resize_u8_linear(p->a, rgb, (int)w, (int)h, 3, resized, p->img_w, p->img_h, p->err))
        return -1;
    int d = m->pad_div, ph = (p->img_h + d - 1) / d * d, pw = (p->img_w + d - 1) / d * d;
    if (nn_tensor_new(p->a, p->be->device, 1, 3, ph, pw, batch, p->err) != 0)
        return -1;
    memset(batch->data, 0, nn_numel(batch) * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < p->img_h; y++)
            for (int x = 0; x < p->img_w; x++)
                batch->data[((size_t)c * ph + y) * pw + x] =
                    ((float)resized[((size_t)y * p->img_w + x) * 3 + c] - m->mean[c]) / m->std[c];
    return dump_tensor(p, "input", batch);
}

/* ---- backbone and FPN ------------------------------------------------------------------- */

/* A convolution cv, deformable when d has a version (mmcv's DeformConv2dPack /
 * ModulatedDeformConv2dPack): the offsets from conv_offset, and in v2 the mask, the
 * sigmoid of conv_offset's last third; then bias and, with relu, ReLU. */
static int conv_maybe_deform(pass *p, const nn_conv *cv, const htc_dcn *d, const nn_tensor *x, int relu, nn_tensor *out) {
    const nn_backend *be = p->be;
    if (!d->version)
        return be->conv2d(be, p->a, cv, x, relu, out, p->err);
    nn_tensor off, offset, mask;
    if (be->conv2d(be, p->a, &d->offset, x, 0, &off, p->err))
        return -1;
    int taps = d->groups * cv->kh * cv->kw;
    size_t plane = (size_t)off.h * off.w;
    offset = off, offset.c = 2 * taps; /* one image: its channels are contiguous */
    if (d->version == 2) {
        mask = off, mask.c = taps, mask.data = off.data + (size_t)2 * taps * plane;
        be->sigmoid(mask.data, (size_t)taps * plane);
    }
    return be->deform_conv2d(be, p->a, cv, x, &offset, d->version == 2 ? &mask : NULL, 1, d->groups, relu, out, p->err);
}

static int sem_conv(pass *p, const htc_sem_conv *sc, const nn_tensor *x, nn_tensor *out) {
    return conv_maybe_deform(p, &sc->conv, &sc->dcn, x, 1, out);
}

static int run_block(pass *p, const htc_block *b, const nn_tensor *x, nn_tensor *out) {
    nn_tensor t1, t2, shortcut = *x;
    const nn_backend *be = p->be;
    if (be->conv2d(be, p->a, &b->conv1, x, 1, &t1, p->err) || conv_maybe_deform(p, &b->conv2, &b->dcn2, &t1, b->bottleneck, &t2))
        return -1;
    if (b->bottleneck && be->conv2d(be, p->a, &b->conv3, &t2, 0, out, p->err))
        return -1;
    if (!b->bottleneck)
        *out = t2;
    if (b->has_down && be->conv2d(be, p->a, &b->down, x, 0, &shortcut, p->err))
        return -1;
    be->add(out, &shortcut, 1);
    return 0;
}

/* Each block's output replaces its input at the stage's mark, so only C2..C5 stay. */
static int backbone_fpn(pass *p, const nn_tensor *batch) {
    htc *m = p->m;
    const nn_backend *be = p->be;
    nn_tensor x, pooled, stage[HTC_LEVELS];
    nn_arena_mark mark = nn_arena_get_mark(p->a);
    if (be->conv2d(be, p->a, &m->stem, batch, 1, &x, p->err) || be->max_pool(p->a, &x, 3, 2, 1, &pooled, p->err) ||
        nn_tensor_keep(p->a, mark, &pooled, p->err))
        return -1;
    x = pooled;
    char name[32];
    for (int l = 0, b = 0; l < HTC_LEVELS; l++) {
        mark = nn_arena_get_mark(p->a);
        for (; b < m->layer_end[l]; b++) {
            nn_tensor y;
            if (run_block(p, &m->blocks[b], &x, &y) || nn_tensor_keep(p->a, mark, &y, p->err))
                return -1;
            x = y;
        }
        stage[l] = x;
        if (dump_tensor(p, (snprintf(name, sizeof name, "backbone_%d", l), name), &x))
            return -1;
    }
    /* laterals, then the top-down sum (nearest, to the finer level's size), then 3x3s */
    nn_tensor lateral[HTC_LEVELS];
    for (int l = 0; l < HTC_LEVELS; l++)
        if (be->conv2d(be, p->a, &m->lateral[l], &stage[l], 0, &lateral[l], p->err))
            return -1;
    for (int l = HTC_LEVELS - 1; l > 0; l--)
        be->resize_nearest_add(&lateral[l], &lateral[l - 1]);
    for (int l = 0; l < HTC_LEVELS; l++)
        if (be->conv2d(be, p->a, &m->fpn_out[l], &lateral[l], 0, &p->fpn[l], p->err))
            return -1;
    if (be->max_pool(p->a, &p->fpn[HTC_LEVELS - 1], 1, 2, 0, &p->fpn[HTC_LEVELS], p->err))
        return -1;
    for (int l = 0; l <= HTC_LEVELS; l++)
        if (dump_tensor(p, (snprintf(name, sizeof name, "fpn_%d", l), name), &p->fpn[l]))
            return -1;
    for (int l = 0; l < HTC_LEVELS; l++)
        p->scales[l] = 1.0f / m->strides[l];
    return 0;
}

/* ---- boxes -------------------------------------------------------------------------------- */

/* mmdetection's delta2bbox (3.x's, or v1's +1 widths under numerics=mmdet_v1), clipped
 * to the resized image. */
static void decode(const pass *p, const float prior[4], const float delta[4], const float means[4], const float stds[4],
                   float out[4]) {
    nn_mmdet_decode(prior, delta, means, stds, p->m->wh_ratio_clip, (float)p->img_w, (float)p->img_h, p->m->plus_one,
                    out);
}

/* SingleRoIExtractor.map_roi_levels (v1's with +1 sizes under numerics=mmdet_v1). */
static void roi_levels(const pass *p, const float *boxes, int n, int *level) {
    for (int i = 0; i < n; i++)
        level[i] = nn_mmdet_roi_level(boxes + 4 * (size_t)i, p->m->finest_scale, HTC_LEVELS, p->m->plus_one);
}

/* ---- RPN ------------------------------------------------------------------------------------ */

static int rpn(pass *p, float **boxes_out, int *n_out) {
    htc *m = p->m;
    const nn_backend *be = p->be;
    int A = m->anchors, cap = 0, counts[HTC_LEVELS + 1];
    for (int l = 0; l <= HTC_LEVELS; l++) {
        int n = p->fpn[l].h * p->fpn[l].w * A;
        counts[l] = n < m->rpn_nms_pre ? n : m->rpn_nms_pre;
        cap += counts[l];
    }
    float *boxes = alloc(p, (size_t)cap * 4, sizeof(float)), *scores = alloc(p, (size_t)cap, sizeof(float));
    int *level = alloc(p, (size_t)cap, sizeof(int)), *keep = alloc(p, (size_t)cap, sizeof(int));
    if (!boxes || !scores || !level || !keep)
        return -1;
    const float zero[4] = {0, 0, 0, 0}, one[4] = {1, 1, 1, 1};
    int n = 0;
    nn_arena_mark level_mark = nn_arena_get_mark(p->a);
    for (int l = 0; l <= HTC_LEVELS; l++) {
        const nn_tensor *f = &p->fpn[l];
        nn_tensor t, cls, reg;
        nn_arena_rewind(p->a, level_mark);
        if (be->conv2d(be, p->a, &m->rpn_conv, f, 1, &t, p->err) || be->conv2d(be, p->a, &m->rpn_cls, &t, 0, &cls, p->err) ||
            be->conv2d(be, p->a, &m->rpn_reg, &t, 0, &reg, p->err))
            return -1;
        size_t hw = (size_t)f->h * f->w, total = hw * A;
        float *obj = alloc(p, total, sizeof(float));
        int *top = alloc(p, (size_t)counts[l], sizeof(int));
        if (!obj || !top)
            return -1;
        for (size_t pos = 0; pos < hw; pos++) /* mmdetection's order: y, x, anchor */
            for (int a = 0; a < A; a++)
                obj[pos * A + a] = 1.0f / (1.0f + expf(-cls.data[(size_t)a * hw + pos]));
        if (nn_top_k(p->a, obj, (int)total, counts[l], top, p->err) != 0)
            return -1;
        float stride = m->strides[l];
        for (int i = 0; i < counts[l]; i++) {
            int idx = top[i], a = idx % A;
            size_t pos = (size_t)idx / A;
            float sx = (float)(int)(pos % f->w) * stride, sy = (float)(int)(pos / f->w) * stride;
            const float *ba = &m->base_anchors[l][4 * a];
            float anchor[4] = {ba[0] + sx, ba[1] + sy, ba[2] + sx, ba[3] + sy}, delta[4], *box = boxes + 4 * (size_t)n;
            for (int k = 0; k < 4; k++)
                delta[k] = reg.data[(size_t)(4 * a + k) * hw + pos];
            decode(p, anchor, delta, zero, one, box);
            if (!(box[2] - box[0] > m->rpn_min_size) || !(box[3] - box[1] > m->rpn_min_size))
                continue;
            scores[n] = obj[idx], level[n] = l, n++;
        }
    }
    int kept = nn_batched_nms_px(p->a, boxes, scores, level, n, m->rpn_nms, m->plus_one, m->rpn_max, keep, p->err);
    if (kept < 0)
        return -1;
    float *out = alloc(p, (size_t)kept * 4, sizeof(float)), *out_scores = alloc(p, (size_t)kept, sizeof(float));
    if (!out || !out_scores)
        return -1;
    for (int i = 0; i < kept; i++) {
        memcpy(out + 4 * (size_t)i, boxes + 4 * (size_t)keep[i], 4 * sizeof(float));
        out_scores[i] = scores[keep[i]];
    }
    *boxes_out = out, *n_out = kept;
    return dump_rows(p, "proposals", out, kept, 4) || dump_rows(p, "proposal_scores", out_scores, kept, 1);
}

/* ---- the fused semantic head ---------------------------------------------------------------- */

/* FusedSemanticHead: each level's lateral conv at the fusion level's size (the others
 * resized bilinearly, align_corners True, before their conv), summed; convs; logits and
 * the semantic embedding. */
static int semantic(pass *p) {
    htc *m = p->m;
    const nn_backend *be = p->be;
    int fl = m->fusion_level;
    nn_tensor x, y;
    if (sem_conv(p, &m->sem_lateral[fl], &p->fpn[fl], &x))
        return -1;
    for (int l = 0; l <= HTC_LEVELS; l++) {
        if (l == fl)
            continue;
        nn_tensor r, lat;
        if (nn_tensor_new(p->a, p->be->device, 1, p->fpn[l].c, x.h, x.w, &r, p->err))
            return -1;
        be->resize_bilinear_corners(&p->fpn[l], &r);
        if (sem_conv(p, &m->sem_lateral[l], &r, &lat))
            return -1;
        be->add(&x, &lat, 0);
    }
    for (int i = 0; i < m->n_sem_convs; i++, x = y)
        if (sem_conv(p, &m->sem_convs[i], &x, &y))
            return -1;
    if (be->conv2d(be, p->a, &m->sem_logits, &x, 0, &p->sem_logits, p->err) || sem_conv(p, &m->sem_embed, &x, &p->sem_feat))
        return -1;
    if (dump_tensor(p, "semantic_logits", &p->sem_logits) || dump_tensor(p, "semantic_feat", &p->sem_feat))
        return -1;
    return m->semantic_path ? write_semantic(p, m->semantic_path, &p->sem_logits) : 0;
}

/* ---- RoI features ----------------------------------------------------------------------------- */

/* torch's adaptive_avg_pool2d of each RoI's map to size out (the semantic RoI feature,
 * 14 x 14, onto the box branch's 7 x 7): window [floor(i * in / out), ceil((i + 1) * in
 * / out)), the sum divided by its height, then its width. */
static void adaptive_avg_add(const nn_tensor *in, nn_tensor *acc) {
    for (size_t pl = 0; pl < (size_t)in->n * in->c; pl++) {
        const float *src = in->data + pl * in->h * in->w;
        float *dst = acc->data + pl * acc->h * acc->w;
        for (int oy = 0; oy < acc->h; oy++) {
            int y0 = oy * in->h / acc->h, y1 = ((oy + 1) * in->h + acc->h - 1) / acc->h;
            for (int ox = 0; ox < acc->w; ox++) {
                int x0 = ox * in->w / acc->w, x1 = ((ox + 1) * in->w + acc->w - 1) / acc->w;
                float sum = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        sum += src[(size_t)yy * in->w + xx];
                dst[(size_t)oy * acc->w + ox] += sum / (float)(y1 - y0) / (float)(x1 - x0);
            }
        }
    }
}

/* RoIAlign (mmcv's aligned=True, adaptive sampling) of the FPN level of each box, plus
 * the semantic embedding's RoI feature when fuse (pooled to size when the sizes differ). */
static int roi_features(pass *p, const float *boxes, int n, int size, int fuse, nn_tensor *out) {
    htc *m = p->m;
    int *level = alloc(p, (size_t)n, sizeof(int));
    if (!level)
        return -1;
    roi_levels(p, boxes, n, level);
    nn_roi_align_params rp = {size, size, m->sampling_ratio, 1, m->plus_one > 0};
    if (p->be->roi_align(p->a, p->fpn, p->scales, boxes, level, n, &rp, out, p->err))
        return -1;
    if (!fuse || !m->has_semantic)
        return 0;
    nn_arena_mark mark = nn_arena_get_mark(p->a);
    nn_tensor s;
    float sem_scale = 1.0f / m->sem_stride;
    nn_roi_align_params sp = {m->sem_roi, m->sem_roi, m->sampling_ratio, 1, m->plus_one > 0};
    memset(level, 0, sizeof(int) * (size_t)n);
    if (p->be->roi_align(p->a, &p->sem_feat, &sem_scale, boxes, level, n, &sp, &s, p->err))
        return -1;
    if (s.h == out->h && s.w == out->w)
        p->be->add(out, &s, 0);
    else
        adaptive_avg_add(&s, out);
    nn_arena_rewind(p->a, mark);
    return 0;
}

/* ---- the cascade -------------------------------------------------------------------------------- */

/* One box stage on rois (n x 4): class logits (n x classes + 1) and deltas (n x 4). */
static int box_stage(pass *p, int s, const float *rois, int n, nn_tensor *cls, nn_tensor *reg) {
    const htc_box_stage *b = &p->m->box[s];
    const nn_backend *be = p->be;
    nn_tensor x, y;
    if (roi_features(p, rois, n, p->m->box_roi, p->m->fuse_bbox, &x))
        return -1;
    for (int i = 0; i < b->n_fcs; i++, x = y)
        if (be->linear(be, p->a, &b->fcs[i], &x, 1, &y, p->err))
            return -1;
    return be->linear(be, p->a, &b->cls, &x, 0, cls, p->err) || be->linear(be, p->a, &b->reg, &x, 0, reg, p->err);
}

/* CascadeRoIHead._refine_roi and the last stage's predict_by_feat: detections in resized
 * image coordinates, class indexes 0-based (background last), best first. */
static int cascade(pass *p, const float *props, int n, nn_result *res, int **classes) {
    htc *m = p->m;
    int C = m->num_classes, S = m->n_stages;
    float *rois = alloc(p, (size_t)n * 4, sizeof(float)), *next = alloc(p, (size_t)n * 4, sizeof(float));
    float *mean = alloc(p, (size_t)n * (C + 1), sizeof(float));
    if (!rois || !next || !mean)
        return -1;
    memcpy(rois, props, sizeof(float) * 4 * (size_t)n);
    memset(mean, 0, sizeof(float) * (size_t)n * (C + 1));
    nn_tensor cls, reg;
    char name[32];
    for (int s = 0; s < S; s++) {
        if (dump_rows(p, (snprintf(name, sizeof name, "stage%d_rois", s), name), rois, n, 4) ||
            (n && box_stage(p, s, rois, n, &cls, &reg)))
            return -1;
        if (n == 0)
            break;
        if (dump_rows(p, (snprintf(name, sizeof name, "stage%d_cls", s), name), cls.data, n, C + 1) ||
            dump_rows(p, (snprintf(name, sizeof name, "stage%d_bbox", s), name), reg.data, n, 4))
            return -1;
        for (size_t i = 0; i < (size_t)n * (C + 1); i++)
            mean[i] += cls.data[i];
        if (s < S - 1) {
            for (int r = 0; r < n; r++)
                decode(p, rois + 4 * (size_t)r, reg.data + 4 * (size_t)r, m->box[s].means, m->box[s].stds, next + 4 * (size_t)r);
            float *t = rois;
            rois = next, next = t;
        }
    }
    /* the last stage decodes its deltas on its own input RoIs; scores from the mean logits */
    size_t cap = (size_t)n * C;
    float *boxes = alloc(p, (size_t)n * 4, sizeof(float)), *scores = alloc(p, cap, sizeof(float));
    int *labels = alloc(p, cap, sizeof(int)), *owner = alloc(p, cap, sizeof(int)), *keep = alloc(p, cap, sizeof(int));
    float *cand = alloc(p, cap * 4, sizeof(float));
    if (!boxes || !scores || !labels || !owner || !keep || !cand)
        return -1;
    int k = 0;
    if (n) {
        for (size_t i = 0; i < (size_t)n * (C + 1); i++)
            mean[i] /= (float)S;
        p->be->softmax_rows(mean, n, C + 1);
        for (int r = 0; r < n; r++) {
            decode(p, rois + 4 * (size_t)r, reg.data + 4 * (size_t)r, m->box[S - 1].means, m->box[S - 1].stds,
                   boxes + 4 * (size_t)r);
            for (int c = 0; c < C; c++) {
                float sc = mean[(size_t)r * (C + 1) + c];
                if (!(sc > m->score_thr))
                    continue;
                memcpy(cand + 4 * (size_t)k, boxes + 4 * (size_t)r, 4 * sizeof(float));
                scores[k] = sc, labels[k] = c, owner[k] = r, k++;
            }
        }
    }
    int kept = nn_batched_nms_px(p->a, cand, scores, labels, k, m->nms_thr, m->plus_one, m->max_per_img, keep, p->err);
    if (kept < 0)
        return -1;
    res->n = kept;
    res->boxes = alloc(p, (size_t)kept * 4, sizeof(float));
    res->scores = alloc(p, (size_t)kept, sizeof(float));
    res->labels = alloc(p, (size_t)kept, sizeof(int));
    *classes = alloc(p, (size_t)kept, sizeof(int));
    if (!res->boxes || !res->scores || !res->labels || !*classes)
        return -1;
    for (int i = 0; i < kept; i++) {
        memcpy(res->boxes + 4 * (size_t)i, cand + 4 * (size_t)keep[i], 4 * sizeof(float));
        res->scores[i] = scores[keep[i]], (*classes)[i] = labels[keep[i]];
    }
    return dump_rows(p, "det_boxes_resized", res->boxes, kept, 4);
}

/* HTCRoIHead's test-time mask branch: the RoI feature (with the semantic one) once, then
 * every stage in turn, each given the previous stage's last conv feature through its
 * conv_res; the masks are the last stage's sigmoids (mmdetection 3.3.0) or the mean of
 * all stages' (mask_merge = mean, mmdetection v1). */
static int masks(pass *p, nn_result *res, const int *classes) {
    htc *m = p->m;
    const nn_backend *be = p->be;
    int n = res->n, C = m->num_classes, S = m->n_stages;
    nn_tensor feats, last = {0}, x, y, up, logits;
    if (roi_features(p, res->boxes, n, m->mask_roi, m->fuse_mask, &feats))
        return -1;
    float *acc = NULL;
    size_t mm = 0;
    char name[32];
    for (int s = 0; s < S; s++) {
        const htc_mask_stage *k = &m->mask[s];
        if (nn_tensor_new(p->a, be->device, feats.n, feats.c, feats.h, feats.w, &x, p->err))
            return -1;
        memcpy(x.data, feats.data, nn_numel(&feats) * sizeof(float));
        if (m->mask_info_flow && s > 0 && k->has_res) {
            nn_tensor r;
            if (be->conv2d(be, p->a, &k->conv_res, &last, 1, &r, p->err))
                return -1;
            be->add(&x, &r, 0);
        }
        for (int i = 0; i < k->n_convs; i++, x = y)
            if (be->conv2d(be, p->a, &k->convs[i], &x, 1, &y, p->err))
                return -1;
        last = x;
        if (s < S - 1 && !m->mask_merge_mean && !m->dump_dir)
            continue;
        if (be->deconv2d(be, p->a, &k->up, &x, 1, &up, p->err) || be->conv2d(be, p->a, &k->logits, &up, 0, &logits, p->err))
            return -1;
        if (dump_tensor(p, (snprintf(name, sizeof name, "mask%d_logits", s), name), &logits))
            return -1;
        mm = (size_t)logits.h * logits.w;
        if (!acc && !(acc = alloc(p, (size_t)n * mm, sizeof(float))))
            return -1;
        if (s < S - 1 && !m->mask_merge_mean)
            continue;
        for (int i = 0; i < n; i++) {
            float *dst = acc + (size_t)i * mm;
            const float *src = logits.data + ((size_t)i * C + (size_t)classes[i]) * mm;
            for (size_t j = 0; j < mm; j++) {
                float v = 1.0f / (1.0f + expf(-src[j]));
                dst[j] = m->mask_merge_mean ? (s ? dst[j] + v : v) : v;
            }
        }
    }
    if (m->mask_merge_mean)
        for (size_t j = 0; j < (size_t)n * mm; j++)
            acc[j] /= (float)S;
    if (logits.h != logits.w)
        return avps_fail(p->err, "native engine: HTC mask logits are %dx%d, not square", logits.w, logits.h);
    res->masks = acc, res->mask_size = logits.h;
    return 0;
}

int htc_run(htc *m, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    nn_arena_reset(&m->arena);
    memset(res, 0, sizeof *res);
    pass p = {.m = m, .be = m->be, .a = &m->arena, .err = err};
    nn_tensor batch;
    float *props = m->proposals;
    int n_props = m->n_proposals, *classes = NULL;
    if (preprocess(&p, rgb, w, h, &batch) || backbone_fpn(&p, &batch) || (!props && rpn(&p, &props, &n_props)) ||
        (m->has_semantic && semantic(&p)) || cascade(&p, props, n_props, res, &classes))
        return -1;
    if (res->n == 0) {
        res->mask_size = 2 * m->mask_roi;
        if (!(res->masks = alloc(&p, 1, sizeof(float))))
            return -1;
    } else if (masks(&p, res, classes)) {
        return -1;
    }
    /* back to the image: divided by the scale factors in float, as mmdetection's rescale */
    for (int i = 0; i < res->n; i++) {
        float *b = res->boxes + 4 * (size_t)i;
        b[0] /= p.w_scale, b[1] /= p.h_scale, b[2] /= p.w_scale, b[3] /= p.h_scale;
        res->labels[i] = m->thing_category[classes[i]];
    }
    size_t s1[1] = {(size_t)res->n}, s3[3] = {(size_t)res->n, (size_t)res->mask_size, (size_t)res->mask_size};
    if (dump_rows(&p, "boxes", res->boxes, res->n, 4) || dump_rows(&p, "scores", res->scores, res->n, 1) ||
        dump(&p, "labels", NPY_I32, 1, s1, classes) || dump(&p, "masks28", NPY_F32, 3, s3, res->masks))
        return -1;
    res->paste = PASTE_DETECTRON2;
    if (m->has_semantic) {
        res->ss_logits = p.sem_logits.data;
        res->ss_c = p.sem_logits.c, res->ss_h = p.sem_logits.h, res->ss_w = p.sem_logits.w;
        res->ss_scale_x = (double)p.w_scale / m->sem_stride, res->ss_scale_y = (double)p.h_scale / m->sem_stride;
        res->ss_valid_w = (int)ceil(p.img_w / m->sem_stride), res->ss_valid_h = (int)ceil(p.img_h / m->sem_stride);
    }
    return 0;
}
