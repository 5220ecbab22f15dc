/* forward.c: the forward pass of Mask R-CNN ResNet-FPN on one image, with
 * torchvision 0.14's inference semantics (GeneralizedRCNNTransform, BackboneWithFPN,
 * RegionProposalNetwork, RoIHeads, postprocess). Everything lives in the network's arena,
 * reset at the start of each image. */
#include "maskrcnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    maskrcnn *m;
    const nn_backend *be;
    nn_arena *a;
    avps_error *err;
    int img_w, img_h;        /* the resized image, before padding */
    nn_tensor fpn[MRCNN_LEVELS + 1];
    float scales[MRCNN_LEVELS];
} pass;

static int dump(const pass *p, const char *name, npy_dtype dtype, int ndim, const size_t *shape, const void *data) {
    if (!p->m->dump_dir)
        return 0;
    npy_array arr;
    if (npy_array_alloc(&arr, dtype, ndim, shape, p->err) != 0)
        return -1;
    if (arr.nbytes)
        memcpy(arr.data, data, arr.nbytes);
    char file[512];
    snprintf(file, sizeof file, "%s/%s.npy", p->m->dump_dir, name);
    int rc = npy_write(file, &arr, 0, p->err);
    npy_array_release(&arr);
    return rc;
}

static int dump_tensor(const pass *p, const char *name, const nn_tensor *t) {
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    return dump(p, name, NPY_F32, 4, shape, t->data);
}

/* Normalise, resize so the short side is min_size (long side at most max_size), pad to
 * a multiple of 32 with zeros: GeneralizedRCNNTransform. Its scale is
 * min(min_size / short, max_size / long) on float32 tensors, and a Python number over a
 * tensor is the tensor's reciprocal times the number: (1 / short) * min_size, which is
 * not min_size / short in float (640 x 480 then gives 799 rows, not torchvision's 800).
 * The output size is floor(side * scale) in double (interpolate's recompute_scale_factor
 * path); the resize then samples with in / out on each axis, not with the scale. */
static int preprocess(pass *p, const uint8_t *rgb, uint32_t w, uint32_t h, nn_tensor *batch) {
    maskrcnn *m = p->m;
    nn_tensor img, resized;
    if (nn_tensor_new(p->a, p->be->device, 1, 3, (int)h, (int)w, &img, p->err) != 0)
        return -1;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < (size_t)w * h; i++)
            img.data[(size_t)c * w * h + i] = ((float)rgb[3 * i + (size_t)c] / 255.0f - m->mean[c]) / m->std[c];
    float lo = (float)(w < h ? w : h), hi = (float)(w > h ? w : h);
    float s1 = (1.0f / lo) * m->min_size, s2 = (1.0f / hi) * m->max_size, scale = s1 < s2 ? s1 : s2;
    p->img_h = (int)floor((double)h * (double)scale), p->img_w = (int)floor((double)w * (double)scale);
    if (p->img_h < 1 || p->img_w < 1)
        return avps_fail(p->err, "native engine: image of %ux%u resizes to nothing", w, h);
    if (nn_tensor_new(p->a, p->be->device, 1, 3, p->img_h, p->img_w, &resized, p->err) != 0)
        return -1;
    p->be->resize_bilinear(&img, &resized);
    int ph = (p->img_h + 31) / 32 * 32, pw = (p->img_w + 31) / 32 * 32;
    if (nn_tensor_new(p->a, p->be->device, 1, 3, ph, pw, batch, p->err) != 0)
        return -1;
    memset(batch->data, 0, nn_numel(batch) * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < p->img_h; y++)
            memcpy(batch->data + ((size_t)c * ph + y) * pw, resized.data + ((size_t)c * p->img_h + y) * p->img_w,
                   sizeof(float) * (size_t)p->img_w);
    return dump_tensor(p, "input", batch);
}

static int run_block(pass *p, const mrcnn_block *b, const nn_tensor *x, nn_tensor *out) {
    nn_tensor t1, t2, shortcut = *x;
    const nn_backend *be = p->be;
    if (be->conv2d(be, p->a, &b->conv1, x, 1, &t1, p->err) || be->conv2d(be, p->a, &b->conv2, &t1, !b->bottleneck ? 0 : 1, &t2, p->err))
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

/* The ResNet keeps only what is needed later: each block's output replaces its input at
 * the stage's mark (the block's temporaries and input are dropped), so the stage
 * outputs C2..C5 stay and nothing else does. */
static int backbone_fpn(pass *p, const nn_tensor *batch) {
    maskrcnn *m = p->m;
    const nn_backend *be = p->be;
    nn_tensor x, pooled, stage[MRCNN_LEVELS];
    nn_arena_mark mark = nn_arena_get_mark(p->a);
    if (be->conv2d(be, p->a, &m->stem, batch, 1, &x, p->err) || be->max_pool(p->a, &x, 3, 2, 1, &pooled, p->err) ||
        nn_tensor_keep(p->a, mark, &pooled, p->err))
        return -1;
    x = pooled;
    for (int l = 0, b = 0; l < MRCNN_LEVELS; l++) {
        mark = nn_arena_get_mark(p->a);
        for (; b < m->layer_end[l]; b++) {
            nn_tensor y;
            /* the stage's input (the previous stage's output) lies below the mark and stays */
            if (run_block(p, &m->blocks[b], &x, &y) != 0 || nn_tensor_keep(p->a, mark, &y, p->err) != 0)
                return -1;
            x = y;
        }
        stage[l] = x;
    }
    nn_tensor inner;
    if (be->conv2d(be, p->a, &m->fpn_inner[MRCNN_LEVELS - 1], &stage[MRCNN_LEVELS - 1], 0, &inner, p->err) ||
        be->conv2d(be, p->a, &m->fpn_out[MRCNN_LEVELS - 1], &inner, 0, &p->fpn[MRCNN_LEVELS - 1], p->err))
        return -1;
    for (int l = MRCNN_LEVELS - 2; l >= 0; l--) {
        nn_tensor lateral;
        if (be->conv2d(be, p->a, &m->fpn_inner[l], &stage[l], 0, &lateral, p->err))
            return -1;
        be->resize_nearest_add(&inner, &lateral);
        inner = lateral;
        if (be->conv2d(be, p->a, &m->fpn_out[l], &inner, 0, &p->fpn[l], p->err))
            return -1;
    }
    /* LastLevelMaxPool: P6 = max_pool2d(P5, kernel 1, stride 2) */
    if (be->max_pool(p->a, &p->fpn[MRCNN_LEVELS - 1], 1, 2, 0, &p->fpn[MRCNN_LEVELS], p->err))
        return -1;
    static const char *names[] = {"fpn_0", "fpn_1", "fpn_2", "fpn_3", "fpn_pool"};
    for (int l = 0; l <= MRCNN_LEVELS; l++)
        if (dump_tensor(p, names[l], &p->fpn[l]) != 0)
            return -1;
    /* MultiScaleRoIAlign's scales: 2^round(log2(feature height / image height)) */
    for (int l = 0; l < MRCNN_LEVELS; l++)
        p->scales[l] = (float)exp2(round(log2((double)p->fpn[l].h / p->img_h)));
    return 0;
}

/* The RPN on every level: top pre_nms anchors per level by objectness, decoded, clipped,
 * small boxes dropped, NMS per level, the best post_nms kept. */
static int rpn(pass *p, float **boxes_out, int *n_out) {
    maskrcnn *m = p->m;
    const nn_backend *be = p->be;
    int A = m->anchors, cap = 0;
    int counts[MRCNN_LEVELS + 1];
    for (int l = 0; l <= MRCNN_LEVELS; l++) {
        int n = p->fpn[l].h * p->fpn[l].w * A;
        counts[l] = n < m->rpn_pre_nms ? n : m->rpn_pre_nms;
        cap += counts[l];
    }
    float *boxes = nn_arena_alloc(p->a, (size_t)cap * 4 * sizeof(float), p->err);
    float *scores = nn_arena_alloc(p->a, (size_t)cap * sizeof(float), p->err);
    int *level = nn_arena_alloc(p->a, (size_t)cap * sizeof(int), p->err);
    int *keep = nn_arena_alloc(p->a, (size_t)cap * sizeof(int), p->err);
    if (!boxes || !scores || !level || !keep)
        return -1;
    int n = 0, ph = p->fpn[0].h * 4, pw = p->fpn[0].w * 4;
    const float unit[4] = {1, 1, 1, 1};
    nn_arena_mark level_mark = nn_arena_get_mark(p->a);
    for (int l = 0; l <= MRCNN_LEVELS; l++) {
        const nn_tensor *f = &p->fpn[l];
        nn_tensor t, cls, reg;
        nn_arena_rewind(p->a, level_mark); /* the previous level's maps and scratch */
        if (be->conv2d(be, p->a, &m->rpn_conv, f, 1, &t, p->err) || be->conv2d(be, p->a, &m->rpn_cls, &t, 0, &cls, p->err) ||
            be->conv2d(be, p->a, &m->rpn_bbox, &t, 0, &reg, p->err))
            return -1;
        size_t hw = (size_t)f->h * f->w, total = hw * A;
        float *obj = nn_arena_alloc(p->a, total * sizeof(float), p->err);
        int *top = nn_arena_alloc(p->a, (size_t)counts[l] * sizeof(int), p->err);
        if (!obj || !top)
            return -1;
        for (size_t pos = 0; pos < hw; pos++) /* torchvision's order: y, x, anchor */
            for (int a = 0; a < A; a++)
                obj[pos * A + a] = cls.data[(size_t)a * hw + pos];
        if (nn_top_k(p->a, obj, (int)total, counts[l], top, p->err) != 0)
            return -1;
        /* strides from the padded batch's size: image_size // feature_size */
        int sy = ph / f->h, sx = pw / f->w;
        for (int i = 0; i < counts[l]; i++) {
            int idx = top[i], a = idx % A;
            size_t pos = (size_t)idx / A;
            int y = (int)(pos / f->w), x = (int)(pos % f->w);
            const float *ca = &m->cell_anchors[l][4 * a];
            float anchor[4] = {(float)(x * sx) + ca[0], (float)(y * sy) + ca[1], (float)(x * sx) + ca[2],
                               (float)(y * sy) + ca[3]};
            float delta[4], *box = boxes + 4 * (size_t)n;
            for (int k = 0; k < 4; k++)
                delta[k] = reg.data[(size_t)(4 * a + k) * hw + pos];
            nn_box_decode(anchor, delta, unit, box);
            nn_box_clip(box, (float)p->img_w, (float)p->img_h);
            float score = 1.0f / (1.0f + expf(-obj[idx]));
            if (box[2] - box[0] < 1e-3f || box[3] - box[1] < 1e-3f || !(score >= 0.0f))
                continue;
            scores[n] = score, level[n] = l, n++;
        }
    }
    int kept = nn_batched_nms(p->a, boxes, scores, level, n, m->rpn_nms, m->rpn_post_nms, keep, p->err);
    if (kept < 0)
        return -1;
    float *out = nn_arena_alloc(p->a, (size_t)(kept ? kept : 1) * 4 * sizeof(float), p->err);
    if (!out)
        return -1;
    for (int i = 0; i < kept; i++)
        memcpy(out + 4 * (size_t)i, boxes + 4 * (size_t)keep[i], 4 * sizeof(float));
    *boxes_out = out, *n_out = kept;
    size_t shape[2] = {(size_t)kept, 4};
    return dump(p, "proposals", NPY_F32, 2, shape, out);
}

/* LevelMapper: level = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped to the levels
 * present (k_min = -log2(first scale)). */
static int roi_levels(const pass *p, const float *boxes, int n, int *level) {
    int k_min = (int)lround(-log2(p->scales[0])), k_max = (int)lround(-log2(p->scales[MRCNN_LEVELS - 1]));
    for (int i = 0; i < n; i++) {
        const float *b = boxes + 4 * (size_t)i;
        float s = sqrtf((b[2] - b[0]) * (b[3] - b[1]));
        float lvl = floorf(4.0f + log2f(s / 224.0f) + 1e-6f);
        int k = isnan(lvl) ? k_min : lvl < (float)k_min ? k_min : lvl > (float)k_max ? k_max : (int)lvl;
        level[i] = k - k_min;
    }
    return 0;
}

static int box_head(pass *p, const float *props, int n_props, nn_result *res) {
    maskrcnn *m = p->m;
    const nn_backend *be = p->be;
    int K = m->num_classes;
    int *level = nn_arena_alloc(p->a, (size_t)(n_props ? n_props : 1) * sizeof(int), p->err);
    if (!level)
        return -1;
    roi_levels(p, props, n_props, level);
    nn_roi_align_params rp = {m->box_pool, m->box_pool, 2, 0, 0};
    nn_tensor pooled, h6, h7, cls, reg;
    if (be->roi_align(p->a, p->fpn, p->scales, props, level, n_props, &rp, &pooled, p->err) ||
        be->linear(be, p->a, &m->fc6, &pooled, 1, &h6, p->err) || be->linear(be, p->a, &m->fc7, &h6, 1, &h7, p->err) ||
        be->linear(be, p->a, &m->cls_score, &h7, 0, &cls, p->err) ||
        be->linear(be, p->a, &m->bbox_pred, &h7, 0, &reg, p->err))
        return -1;
    be->softmax_rows(cls.data, n_props, K);
    size_t cap = (size_t)n_props * (K - 1);
    float *boxes = nn_arena_alloc(p->a, (cap ? cap : 1) * 4 * sizeof(float), p->err);
    float *scores = nn_arena_alloc(p->a, (cap ? cap : 1) * sizeof(float), p->err);
    int *labels = nn_arena_alloc(p->a, (cap ? cap : 1) * sizeof(int), p->err);
    int *keep = nn_arena_alloc(p->a, (cap ? cap : 1) * sizeof(int), p->err);
    if (!boxes || !scores || !labels || !keep)
        return -1;
    const float weights[4] = {10, 10, 5, 5};
    int n = 0;
    for (int r = 0; r < n_props; r++)
        for (int c = 1; c < K; c++) {
            float *box = boxes + 4 * (size_t)n, score = cls.data[(size_t)r * K + c];
            nn_box_decode(props + 4 * (size_t)r, reg.data + (size_t)r * 4 * K + 4 * (size_t)c, weights, box);
            nn_box_clip(box, (float)p->img_w, (float)p->img_h);
            if (!(score > m->box_score) || box[2] - box[0] < 1e-2f || box[3] - box[1] < 1e-2f)
                continue;
            scores[n] = score, labels[n] = c, n++;
        }
    int kept = nn_batched_nms(p->a, boxes, scores, labels, n, m->box_nms, m->detections, keep, p->err);
    if (kept < 0)
        return -1;
    res->n = kept;
    res->boxes = nn_arena_alloc(p->a, (size_t)(kept ? kept : 1) * 4 * sizeof(float), p->err);
    res->scores = nn_arena_alloc(p->a, (size_t)(kept ? kept : 1) * sizeof(float), p->err);
    res->labels = nn_arena_alloc(p->a, (size_t)(kept ? kept : 1) * sizeof(int), p->err);
    if (!res->boxes || !res->scores || !res->labels)
        return -1;
    for (int i = 0; i < kept; i++) {
        memcpy(res->boxes + 4 * (size_t)i, boxes + 4 * (size_t)keep[i], 4 * sizeof(float));
        res->scores[i] = scores[keep[i]], res->labels[i] = labels[keep[i]];
    }
    return 0;
}

/* The mask branch on the detections (still in resized-image coordinates): RoIAlign,
 * convolutions, the transposed convolution, per-class logits; the sigmoid of each
 * detection's own class. */
static int mask_head(pass *p, nn_result *res) {
    maskrcnn *m = p->m;
    const nn_backend *be = p->be;
    int n = res->n;
    int *level = nn_arena_alloc(p->a, (size_t)(n ? n : 1) * sizeof(int), p->err);
    if (!level)
        return -1;
    res->mask_size = 2 * m->mask_pool;
    size_t mm = (size_t)res->mask_size * res->mask_size;
    if (!(res->masks = nn_arena_alloc(p->a, (n ? n : 1) * mm * sizeof(float), p->err)))
        return -1;
    if (n == 0)
        return 0;
    roi_levels(p, res->boxes, n, level);
    nn_roi_align_params rp = {m->mask_pool, m->mask_pool, 2, 0, 0};
    nn_tensor x, y;
    if (be->roi_align(p->a, p->fpn, p->scales, res->boxes, level, n, &rp, &x, p->err))
        return -1;
    for (int i = 0; i < m->n_mask_convs; i++, x = y)
        if (be->conv2d(be, p->a, &m->mask_convs[i], &x, 1, &y, p->err))
            return -1;
    if (be->deconv2d(be, p->a, &m->mask_deconv, &x, 1, &y, p->err) ||
        be->conv2d(be, p->a, &m->mask_logits, &y, 0, &x, p->err))
        return -1;
    if ((size_t)x.h * x.w != mm)
        return avps_fail(p->err, "native engine: mask logits are %dx%d, expected %dx%d", x.w, x.h, res->mask_size,
                         res->mask_size);
    for (int i = 0; i < n; i++)
        memcpy(res->masks + i * mm, x.data + ((size_t)i * x.c + (size_t)res->labels[i]) * mm, mm * sizeof(float));
    be->sigmoid(res->masks, (size_t)n * mm);
    return 0;
}

int maskrcnn_run(maskrcnn *m, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    nn_arena_reset(&m->arena);
    memset(res, 0, sizeof *res);
    pass p = {.m = m, .be = m->be, .a = &m->arena, .err = err};
    nn_tensor batch;
    float *props = m->proposals;
    int n_props = m->n_proposals;
    if (preprocess(&p, rgb, w, h, &batch) || backbone_fpn(&p, &batch))
        return -1;
    if (!props && rpn(&p, &props, &n_props) != 0)
        return -1;
    if (box_head(&p, props, n_props, res) || mask_head(&p, res))
        return -1;
    /* back to the image's pixels: transform.postprocess's resize_boxes, ratios in float32 */
    float rx = (float)w / (float)p.img_w, ry = (float)h / (float)p.img_h;
    for (int i = 0; i < res->n; i++) {
        float *b = res->boxes + 4 * (size_t)i;
        b[0] *= rx, b[1] *= ry, b[2] *= rx, b[3] *= ry;
    }
    size_t s1[1] = {(size_t)res->n}, s2[2] = {(size_t)res->n, 4};
    size_t s3[3] = {(size_t)res->n, (size_t)res->mask_size, (size_t)res->mask_size};
    if (dump(&p, "boxes", NPY_F32, 2, s2, res->boxes) || dump(&p, "scores", NPY_F32, 1, s1, res->scores) ||
        dump(&p, "labels", NPY_I32, 1, s1, res->labels) || dump(&p, "masks28", NPY_F32, 3, s3, res->masks))
        return -1;
    res->paste = PASTE_TORCHVISION;
    return 0;
}
