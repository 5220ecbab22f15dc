/* rpn.c: UPSNet's RPN and pyramid proposals (models/rpn.py, operators/functions/
 * pyramid_proposal.py, operators/modules/pyramid_proposal.py), and the py-faster-rcnn box
 * operators every head uses: +1 widths in decoding and NMS, clipping to W - 1, H - 1.
 * One RPN head runs on each of P2..P6; each level gives its own proposals (top by
 * score, decoded, clipped, NMS), then all levels are ranked together. */
#include "heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *x;
    int i;
} ranked;

static int by_value_desc(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    float va = a->x[a->i], vb = b->x[b->i];
    if (va != vb)
        return va > vb ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int ups_sort_desc(nn_arena *a, const float *x, int n, int *idx, avps_error *err) {
    if (n <= 0)
        return 0;
    ranked *r = nn_arena_alloc(a, (size_t)n * sizeof *r, err);
    if (!r)
        return -1;
    for (int i = 0; i < n; i++)
        r[i] = (ranked){x, i};
    qsort(r, (size_t)n, sizeof *r, by_value_desc);
    for (int i = 0; i < n; i++)
        idx[i] = r[i].i;
    return 0;
}

static float maxf(float a, float b) { return a > b ? a : b; }
static float minf(float a, float b) { return a < b ? a : b; }

/* nms_kernel.cu's devIoU: +1 on every side length, float32 throughout */
static float iou_plus1(const float *a, const float *b) {
    float left = maxf(a[0], b[0]), right = minf(a[2], b[2]);
    float top = maxf(a[1], b[1]), bottom = minf(a[3], b[3]);
    float width = maxf(right - left + 1, 0.f), height = maxf(bottom - top + 1, 0.f);
    float inter = width * height;
    float sa = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), sb = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
    return inter / (sa + sb - inter);
}

int ups_nms(const float *boxes, const int *order, int n, float thresh, unsigned char *suppressed, int *keep) {
    memset(suppressed, 0, (size_t)n);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (suppressed[i])
            continue;
        keep[kept++] = order[i];
        const float *a = boxes + 4 * (size_t)order[i];
        for (int j = i + 1; j < n; j++)
            if (!suppressed[j] && iou_plus1(a, boxes + 4 * (size_t)order[j]) > thresh)
                suppressed[j] = 1;
    }
    return kept;
}

void ups_box_decode_clip(const float box[4], const float delta[4], const float weights[4], int img_w, int img_h,
                         float out[4]) {
    const float clamp = (float)log(1000.0 / 16.0);
    float w = box[2] - box[0] + 1.0f, h = box[3] - box[1] + 1.0f;
    float cx = box[0] + 0.5f * w, cy = box[1] + 0.5f * h;
    float dx = delta[0] / weights[0], dy = delta[1] / weights[1];
    float dw = minf(delta[2] / weights[2], clamp), dh = minf(delta[3] / weights[3], clamp);
    float pcx = dx * w + cx, pcy = dy * h + cy;
    float pw = expf(dw) * w, ph = expf(dh) * h;
    float xmax = (float)img_w - 1, ymax = (float)img_h - 1;
    out[0] = maxf(minf(pcx - 0.5f * pw, xmax), 0);
    out[1] = maxf(minf(pcy - 0.5f * ph, ymax), 0);
    out[2] = maxf(minf(pcx + 0.5f * pw - 1, xmax), 0);
    out[3] = maxf(minf(pcy + 0.5f * ph - 1, ymax), 0);
}

/* One level: the RPN head's maps, then up to pre_nms anchors by score, decoded and
 * clipped, too-small boxes dropped, NMS, the first post_nms appended to boxes/scores at
 * *n. */
static int rpn_level(const ups_heads *h, nn_arena *a, const nn_tensor *f, int level, const ups_im_info *im,
                     ups_proposals *out, float *boxes, float *scores, int *n, avps_error *err) {
    const nn_backend *be = h->be;
    const ups_head_settings *s = &h->set;
    nn_tensor t, c, r;
    /* the maps stay (the caller dumps them); the 3x3 layer's output does not */
    if (nn_tensor_new(a, f->device, 1, h->rpn_cls.out, f->h, f->w, &out->cls_prob[level], err) ||
        nn_tensor_new(a, f->device, 1, h->rpn_bbox.out, f->h, f->w, &out->bbox_pred[level], err))
        return -1;
    nn_arena_mark mark = nn_arena_get_mark(a);
    if (be->conv2d(be, a, &h->rpn_conv, f, 1, &t, err) || be->conv2d(be, a, &h->rpn_cls, &t, 0, &c, err) ||
        be->conv2d(be, a, &h->rpn_bbox, &t, 0, &r, err))
        return -1;
    memcpy(out->cls_prob[level].data, c.data, nn_numel(&c) * sizeof(float));
    memcpy(out->bbox_pred[level].data, r.data, nn_numel(&r) * sizeof(float));
    nn_arena_rewind(a, mark);
    const nn_tensor *cls = &out->cls_prob[level], *reg = &out->bbox_pred[level];
    be->sigmoid(cls->data, nn_numel(cls));
    int A = h->anchors, stride = 4 << level;
    size_t hw = (size_t)f->h * f->w;
    int total = (int)(hw * A), take = s->rpn_pre_nms < total ? s->rpn_pre_nms : total;
    float *obj = nn_arena_alloc(a, (size_t)total * sizeof(float), err);
    int *order = nn_arena_alloc(a, (size_t)total * sizeof(int), err);
    float *lb = nn_arena_alloc(a, (size_t)take * 4 * sizeof(float), err);
    float *ls = nn_arena_alloc(a, (size_t)take * sizeof(float), err);
    int *idx = nn_arena_alloc(a, (size_t)take * sizeof(int), err);
    int *keep = nn_arena_alloc(a, (size_t)take * sizeof(int), err);
    unsigned char *supp = nn_arena_alloc(a, (size_t)take, err);
    if (!obj || !order || !lb || !ls || !idx || !keep || !supp)
        return -1;
    for (size_t pos = 0; pos < hw; pos++) /* the candidates' order: y, x, anchor */
        for (int k = 0; k < A; k++)
            obj[pos * A + k] = cls->data[(size_t)k * hw + pos];
    if (ups_sort_desc(a, obj, total, order, err) != 0)
        return -1;
    float min_size = s->rpn_min_size * im->scale;
    int m = 0;
    for (int i = 0; i < take; i++) {
        int c = order[i], k = c % A;
        size_t pos = (size_t)c / A;
        float x = (float)((int)(pos % f->w) * stride), y = (float)((int)(pos / f->w) * stride);
        const float *ca = &h->cell_anchors[level][4 * k];
        float anchor[4] = {ca[0] + x, ca[1] + y, ca[2] + x, ca[3] + y}, delta[4];
        for (int j = 0; j < 4; j++)
            delta[j] = reg->data[(size_t)(4 * k + j) * hw + pos];
        float *b = lb + 4 * (size_t)m;
        ups_box_decode_clip(anchor, delta, (const float[4]){1, 1, 1, 1}, im->img_w, im->img_h, b);
        if (!(b[2] - b[0] + 1 >= min_size && b[3] - b[1] + 1 >= min_size))
            continue;
        ls[m] = obj[c], idx[m] = m, m++;
    }
    /* the survivors are in descending score already: NMS visits them in that order */
    int kept = ups_nms(lb, idx, m, s->rpn_nms, supp, keep);
    if (kept > s->rpn_post_nms)
        kept = s->rpn_post_nms;
    for (int i = 0; i < kept; i++) {
        memcpy(boxes + 4 * (size_t)*n, lb + 4 * (size_t)keep[i], 4 * sizeof(float));
        scores[(*n)++] = ls[keep[i]];
    }
    nn_arena_rewind(a, mark);
    return 0;
}

int ups_rpn(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_im_info *im, ups_proposals *out,
            avps_error *err) {
    memset(out, 0, sizeof *out);
    int cap = 0;
    for (int l = 0; l < UPS_FPN_LEVELS; l++) {
        int n = fpn[l].h * fpn[l].w * h->anchors;
        cap += n < h->set.rpn_post_nms ? n : h->set.rpn_post_nms;
    }
    float *boxes = nn_arena_alloc(a, (size_t)(cap ? cap : 1) * 4 * sizeof(float), err);
    float *scores = nn_arena_alloc(a, (size_t)(cap ? cap : 1) * sizeof(float), err);
    int *order = nn_arena_alloc(a, (size_t)(cap ? cap : 1) * sizeof(int), err);
    if (!boxes || !scores || !order)
        return -1;
    int n = 0;
    for (int l = 0; l < UPS_FPN_LEVELS; l++)
        if (rpn_level(h, a, &fpn[l], l, im, out, boxes, scores, &n, err) != 0)
            return -1;
    if (ups_sort_desc(a, scores, n, order, err) != 0)
        return -1;
    out->n = n < h->set.rpn_post_nms ? n : h->set.rpn_post_nms;
    out->boxes = nn_arena_alloc(a, (size_t)(out->n ? out->n : 1) * 4 * sizeof(float), err);
    out->scores = nn_arena_alloc(a, (size_t)(out->n ? out->n : 1) * sizeof(float), err);
    if (!out->boxes || !out->scores)
        return -1;
    for (int i = 0; i < out->n; i++) {
        memcpy(out->boxes + 4 * (size_t)i, boxes + 4 * (size_t)order[i], 4 * sizeof(float));
        out->scores[i] = scores[order[i]];
    }
    return 0;
}
