/* rcnn.c: UPSNet's box and mask heads (models/rcnn.py) on RoIs pooled by FPNRoIAlign
 * (operators/modules/fpn_roi_align.py), and MaskROI (operators/modules/mask_roi.py),
 * which turns the box head's output into detections: class-specific decoding with +1
 * widths, a score threshold, NMS per class (or once over all classes for the panoptic
 * candidates), a cap over all classes. */
#include "heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Mask head RoIs at a time: bounds the 256 x 28 x 28 maps per RoI */
#define MASK_BATCH 32

/* FPNRoIAlign's level: clip(floor(2 + log2(sqrt(w h) / 224 + 1e-6)), 0, 3) in float32,
 * w and h with +1 */
static int roi_level(const float *b) {
    float w = b[2] - b[0] + 1, h = b[3] - b[1] + 1;
    float k = floorf(2.0f + log2f(sqrtf(w * h) / 224.0f + 1e-6f));
    return !(k > 0) ? 0 : k > 3 ? 3 : (int)k; /* NaN (a degenerate box) goes to P2 */
}

int ups_roi_align(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const float *rois, int n, int pool,
                  nn_tensor *out, avps_error *err) {
    static const float scales[UPS_ROI_LEVELS] = {1.0f / 4, 1.0f / 8, 1.0f / 16, 1.0f / 32};
    int *level = nn_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(int), err);
    if (!level)
        return -1;
    for (int i = 0; i < n; i++)
        level[i] = roi_level(rois + 4 * (size_t)i);
    /* Detectron's RoIAlign is torchvision's with aligned=False: no half-pixel shift, RoI
     * sides at least 1, a fixed 2 x 2 samples per bin */
    nn_roi_align_params p = {pool, pool, 2, 0, 0};
    return h->be->roi_align(a, fpn, scales, rois, level, n, &p, out, err);
}

int ups_box_head(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const float *rois, int n, ups_box_out *out,
                 avps_error *err) {
    const nn_backend *be = h->be;
    int K = h->num_classes;
    *out = (ups_box_out){n, rois, NULL, NULL};
    out->cls_prob = nn_arena_alloc(a, (size_t)(n ? n : 1) * K * sizeof(float), err);
    out->bbox_pred = nn_arena_alloc(a, (size_t)(n ? n : 1) * 4 * K * sizeof(float), err);
    if (!out->cls_prob || !out->bbox_pred)
        return -1;
    if (n == 0)
        return 0;
    nn_arena_mark mark = nn_arena_get_mark(a);
    nn_tensor pooled, h6, h7, cls, reg;
    if (ups_roi_align(h, a, fpn, rois, n, h->box_pool, &pooled, err) ||
        be->linear(be, a, &h->fc6, &pooled, 1, &h6, err) || be->linear(be, a, &h->fc7, &h6, 1, &h7, err) ||
        be->linear(be, a, &h->cls_score, &h7, 0, &cls, err) || be->linear(be, a, &h->bbox_pred, &h7, 0, &reg, err))
        return -1;
    be->softmax_rows(cls.data, n, K);
    memcpy(out->cls_prob, cls.data, (size_t)n * K * sizeof(float));
    memcpy(out->bbox_pred, reg.data, (size_t)n * 4 * K * sizeof(float));
    nn_arena_rewind(a, mark);
    return 0;
}

int ups_mask_head(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const float *boxes, const int *labels, int n,
                  int probs, float *out, avps_error *err) {
    const nn_backend *be = h->be;
    size_t mm = (size_t)h->mask_size * h->mask_size;
    for (int i0 = 0; i0 < n; i0 += MASK_BATCH) {
        int b = n - i0 < MASK_BATCH ? n - i0 : MASK_BATCH;
        nn_arena_mark mark = nn_arena_get_mark(a);
        nn_tensor x, y;
        if (ups_roi_align(h, a, fpn, boxes + 4 * (size_t)i0, b, h->mask_pool, &x, err))
            return -1;
        for (int l = 0; l < UPS_MASK_CONVS; l++, x = y)
            if (be->conv2d(be, a, &h->mask_conv[l], &x, 1, &y, err))
                return -1;
        if (be->deconv2d(be, a, &h->mask_deconv, &x, 1, &y, err) || be->conv2d(be, a, &h->mask_score, &y, 0, &x, err))
            return -1;
        if ((size_t)x.h * x.w != mm)
            return avps_fail(err, "native engine: UPSNet mask logits are %dx%d, expected %dx%d", x.w, x.h, h->mask_size,
                             h->mask_size);
        for (int i = 0; i < b; i++) {
            int c = labels[i0 + i];
            if (c < 0 || c >= x.c)
                return avps_fail(err, "native engine: UPSNet mask head: class %d of %d", c, x.c);
            memcpy(out + (size_t)(i0 + i) * mm, x.data + ((size_t)i * x.c + (size_t)c) * mm, mm * sizeof(float));
        }
        nn_arena_rewind(a, mark);
    }
    if (probs)
        be->sigmoid(out, (size_t)n * mm);
    return 0;
}

/* MaskROI: candidates (roi r, class c >= 1) with score > thresh, decoded and clipped;
 * per class, or once over all (agnostic) in the order numpy lays them out; NMS by
 * descending score; at most max_det over all groups (those >= the max_det-th score);
 * then group by group, NMS order within. Masks are not filled here. */
static int mask_roi(const ups_heads *h, nn_arena *a, const ups_box_out *box, const ups_im_info *im, int agnostic,
                    float thresh, float nms, ups_dets *out, avps_error *err) {
    int K = h->num_classes, n = box->n;
    int groups = agnostic ? 1 : K - 1;
    size_t cap = (size_t)n * (K - 1) + 1;
    int *cand = nn_arena_alloc(a, cap * sizeof(int), err);     /* r * K + c */
    int *start = nn_arena_alloc(a, (size_t)(groups + 1) * sizeof(int), err);
    int *kept = nn_arena_alloc(a, cap * sizeof(int), err);
    int *kstart = nn_arena_alloc(a, (size_t)(groups + 1) * sizeof(int), err);
    float *cb = nn_arena_alloc(a, cap * 4 * sizeof(float), err);
    float *cs = nn_arena_alloc(a, cap * sizeof(float), err);
    int *order = nn_arena_alloc(a, cap * sizeof(int), err);
    unsigned char *supp = nn_arena_alloc(a, cap, err);
    if (!cand || !start || !kept || !kstart || !cb || !cs || !order || !supp)
        return -1;
    int m = 0;
    for (int g = 0; g < groups; g++) {
        start[g] = m;
        for (int r = 0; r < n; r++)
            for (int c = agnostic ? 1 : g + 1; c <= (agnostic ? K - 1 : g + 1); c++)
                if (box->cls_prob[(size_t)r * K + c] > thresh) {
                    cand[m] = r * K + c;
                    ups_box_decode_clip(box->rois + 4 * (size_t)r, box->bbox_pred + (size_t)r * 4 * K + 4 * (size_t)c,
                                        h->set.bbox_weights, im->img_w, im->img_h, cb + 4 * (size_t)m);
                    cs[m] = box->cls_prob[(size_t)r * K + c];
                    m++;
                }
    }
    start[groups] = m;
    int total = 0;
    for (int g = 0; g < groups; g++) {
        int gn = start[g + 1] - start[g];
        kstart[g] = total;
        if (ups_sort_desc(a, cs + start[g], gn, order, err) != 0)
            return -1;
        for (int i = 0; i < gn; i++)
            order[i] += start[g];
        total += ups_nms(cb, order, gn, nms, supp, kept + total);
    }
    kstart[groups] = total;
    float cut = -INFINITY;
    if (total > h->set.max_det) {
        float *sc = nn_arena_alloc(a, (size_t)total * sizeof(float), err);
        int *idx = nn_arena_alloc(a, (size_t)total * sizeof(int), err);
        if (!sc || !idx)
            return -1;
        for (int i = 0; i < total; i++)
            sc[i] = cs[kept[i]];
        if (ups_sort_desc(a, sc, total, idx, err) != 0)
            return -1;
        cut = sc[idx[h->set.max_det - 1]];
    }
    int d = 0;
    for (int i = 0; i < total; i++)
        d += cs[kept[i]] >= cut;
    out->n = d, out->mask_size = h->mask_size;
    out->boxes = nn_arena_alloc(a, (size_t)(d ? d : 1) * 4 * sizeof(float), err);
    out->scores = nn_arena_alloc(a, (size_t)(d ? d : 1) * sizeof(float), err);
    out->labels = nn_arena_alloc(a, (size_t)(d ? d : 1) * sizeof(int), err);
    out->masks = nn_arena_alloc(a, (size_t)(d ? d : 1) * h->mask_size * h->mask_size * sizeof(float), err);
    if (!out->boxes || !out->scores || !out->labels || !out->masks)
        return -1;
    d = 0;
    for (int i = 0; i < total; i++) {
        int k = kept[i];
        if (!(cs[k] >= cut))
            continue;
        memcpy(out->boxes + 4 * (size_t)d, cb + 4 * (size_t)k, 4 * sizeof(float));
        out->scores[d] = cs[k], out->labels[d] = cand[k] % K, d++;
    }
    return 0;
}

int ups_detect(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_box_out *box, const ups_im_info *im,
               ups_dets *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    if (mask_roi(h, a, box, im, 0, h->set.score_thresh, h->set.nms_thresh, out, err) != 0)
        return -1;
    return ups_mask_head(h, a, fpn, out->boxes, out->labels, out->n, 1, out->masks, err);
}

int ups_panoptic_candidates(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_box_out *box,
                            const ups_im_info *im, ups_dets *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    if (mask_roi(h, a, box, im, 1, h->set.pan_score_thresh, h->set.pan_nms_thresh, out, err) != 0)
        return -1;
    if (out->n == 0) {
        out->n = 1;
        memset(out->boxes, 0, 4 * sizeof(float));
        out->scores[0] = 1, out->labels[0] = 0;
    }
    return ups_mask_head(h, a, fpn, out->boxes, out->labels, out->n, 0, out->masks, err);
}
