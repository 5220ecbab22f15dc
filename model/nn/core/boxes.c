/* boxes.c: the box operators of a two-stage detector, as torchvision 0.14 computes
 * them in float32: anchors, box decoding and clipping, top-k and (batched) greedy NMS.
 * They run on the host: a few thousand boxes per image. */
#include "../nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nn_cell_anchors(const float *sizes, int n_sizes, const float *ratios, int n_ratios, float *out) {
    for (int r = 0; r < n_ratios; r++) {
        float h_ratio = sqrtf(ratios[r]), w_ratio = 1.0f / h_ratio;
        for (int s = 0; s < n_sizes; s++) {
            float ws = w_ratio * sizes[s], hs = h_ratio * sizes[s];
            float *a = out + 4 * (size_t)(r * n_sizes + s);
            /* torch.round: halves to even, as nearbyintf in the default rounding mode */
            a[0] = nearbyintf(-ws / 2), a[1] = nearbyintf(-hs / 2);
            a[2] = nearbyintf(ws / 2), a[3] = nearbyintf(hs / 2);
        }
    }
}

void nn_box_decode(const float anchor[4], const float delta[4], const float weights[4], float out[4]) {
    const float clip = (float)log(1000.0 / 16);
    float w = anchor[2] - anchor[0], h = anchor[3] - anchor[1];
    float cx = anchor[0] + 0.5f * w, cy = anchor[1] + 0.5f * h;
    float dx = delta[0] / weights[0], dy = delta[1] / weights[1];
    float dw = delta[2] / weights[2], dh = delta[3] / weights[3];
    dw = dw > clip ? clip : dw;
    dh = dh > clip ? clip : dh;
    float pcx = dx * w + cx, pcy = dy * h + cy;
    float pw = expf(dw) * w, ph = expf(dh) * h;
    float hw = 0.5f * pw, hh = 0.5f * ph;
    out[0] = pcx - hw, out[1] = pcy - hh, out[2] = pcx + hw, out[3] = pcy + hh;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void nn_box_clip(float box[4], float w, float h) {
    box[0] = clampf(box[0], 0, w), box[2] = clampf(box[2], 0, w);
    box[1] = clampf(box[1], 0, h), box[3] = clampf(box[3], 0, h);
}

int nn_nms_px(const float *boxes, const int *order, int n, float iou_thresh, float plus_one, unsigned char *suppressed,
              int *keep) {
    memset(suppressed, 0, (size_t)n);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (suppressed[i])
            continue;
        keep[kept++] = order[i];
        const float *a = boxes + 4 * (size_t)order[i];
        float area_a = (a[2] - a[0] + plus_one) * (a[3] - a[1] + plus_one);
        for (int j = i + 1; j < n; j++) {
            if (suppressed[j])
                continue;
            const float *b = boxes + 4 * (size_t)order[j];
            float xx1 = a[0] > b[0] ? a[0] : b[0], yy1 = a[1] > b[1] ? a[1] : b[1];
            float xx2 = a[2] < b[2] ? a[2] : b[2], yy2 = a[3] < b[3] ? a[3] : b[3];
            float iw = xx2 - xx1 + plus_one, ih = yy2 - yy1 + plus_one;
            iw = iw > 0 ? iw : 0, ih = ih > 0 ? ih : 0;
            float inter = iw * ih, area_b = (b[2] - b[0] + plus_one) * (b[3] - b[1] + plus_one);
            if (inter / (area_a + area_b - inter) > iou_thresh)
                suppressed[j] = 1;
        }
    }
    return kept;
}

int nn_nms(const float *boxes, const int *order, int n, float iou_thresh, unsigned char *suppressed, int *keep) {
    return nn_nms_px(boxes, order, n, iou_thresh, 0.0f, suppressed, keep);
}

void nn_mmdet_base_anchors(float stride, const float *scales, int n_scales, const float *ratios, int n_ratios,
                           float plus_one, float *out) {
    float centre = plus_one * 0.5f * (stride - 1.0f);
    for (int r = 0; r < n_ratios; r++) {
        float hr = sqrtf(ratios[r]), wr = 1.0f / hr;
        for (int s = 0; s < n_scales; s++) {
            float w = stride * wr * scales[s], h = stride * hr * scales[s];
            float hw = 0.5f * (w - plus_one), hh = 0.5f * (h - plus_one);
            float *a = out + 4 * (r * n_scales + s);
            a[0] = centre - hw, a[1] = centre - hh, a[2] = centre + hw, a[3] = centre + hh;
            if (plus_one != 0.0f)
                for (int k = 0; k < 4; k++)
                    a[k] = nearbyintf(a[k]); /* the default rounding mode: half to even */
        }
    }
}

void nn_mmdet_decode(const float prior[4], const float delta[4], const float means[4], const float stds[4],
                     float wh_ratio_clip, float img_w, float img_h, float plus_one, float out[4]) {
    float max_ratio = fabsf((float)log((double)wh_ratio_clip));
    float dx = delta[0] * stds[0] + means[0], dy = delta[1] * stds[1] + means[1];
    float dw = delta[2] * stds[2] + means[2], dh = delta[3] * stds[3] + means[3];
    float px = (prior[0] + prior[2]) * 0.5f, py = (prior[1] + prior[3]) * 0.5f;
    float pw = prior[2] - prior[0] + plus_one, ph = prior[3] - prior[1] + plus_one;
    dw = dw < -max_ratio ? -max_ratio : dw > max_ratio ? max_ratio : dw;
    dh = dh < -max_ratio ? -max_ratio : dh > max_ratio ? max_ratio : dh;
    float gx = px + pw * dx, gy = py + ph * dy, gw = pw * expf(dw), gh = ph * expf(dh);
    float half = 0.5f * plus_one;
    float b[4] = {gx - gw * 0.5f + half, gy - gh * 0.5f + half, gx + gw * 0.5f - half, gy + gh * 0.5f - half};
    float lim[4] = {img_w - plus_one, img_h - plus_one, img_w - plus_one, img_h - plus_one};
    for (int k = 0; k < 4; k++)
        out[k] = b[k] < 0 ? 0 : b[k] > lim[k] ? lim[k] : b[k];
}

int nn_mmdet_roi_level(const float box[4], int finest_scale, int levels, float plus_one) {
    float s = sqrtf((box[2] - box[0] + plus_one) * (box[3] - box[1] + plus_one));
    float l = floorf(log2f(s / (float)finest_scale + 1e-6f));
    return isnan(l) || l < 0 ? 0 : l > (float)(levels - 1) ? levels - 1 : (int)l;
}

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

/* idx[0..n): indexes of x sorted by value, largest first, ties by index. */
static int sort_desc(const float *x, int n, int *idx, ranked *scratch) {
    for (int i = 0; i < n; i++)
        scratch[i] = (ranked){x, i};
    qsort(scratch, (size_t)n, sizeof *scratch, by_value_desc);
    for (int i = 0; i < n; i++)
        idx[i] = scratch[i].i;
    return 0;
}

int nn_top_k(nn_arena *a, const float *x, int n, int k, int *idx, avps_error *err) {
    if (n <= 0)
        return 0;
    ranked *r = nn_arena_alloc(a, (size_t)n * sizeof *r, err);
    int *all = nn_arena_alloc(a, (size_t)n * sizeof *all, err);
    if (!r || !all)
        return -1;
    sort_desc(x, n, all, r);
    memcpy(idx, all, (size_t)(k < n ? k : n) * sizeof *idx);
    return 0;
}

int nn_batched_nms(nn_arena *a, const float *boxes, const float *scores, const int *cls, int n, float iou_thresh,
                   int max_keep, int *keep, avps_error *err) {
    return nn_batched_nms_px(a, boxes, scores, cls, n, iou_thresh, 0.0f, max_keep, keep, err);
}

int nn_batched_nms_px(nn_arena *a, const float *boxes, const float *scores, const int *cls, int n, float iou_thresh,
                      float plus_one, int max_keep, int *keep, avps_error *err) {
    if (n <= 0)
        return 0;
    int n_cls = 0;
    for (int i = 0; i < n; i++)
        n_cls = cls[i] + 1 > n_cls ? cls[i] + 1 : n_cls;
    ranked *r = nn_arena_alloc(a, (size_t)n * sizeof *r, err);
    int *order = nn_arena_alloc(a, (size_t)n * sizeof *order, err);
    int *bucketed = nn_arena_alloc(a, (size_t)n * sizeof *bucketed, err);
    int *start = nn_arena_alloc(a, (size_t)(n_cls + 1) * sizeof *start, err);
    int *kept = nn_arena_alloc(a, (size_t)n * sizeof *kept, err);
    unsigned char *flag = nn_arena_alloc(a, (size_t)n, err);
    unsigned char *supp = nn_arena_alloc(a, (size_t)n, err);
    if (!r || !order || !bucketed || !start || !kept || !flag || !supp)
        return -1;
    sort_desc(scores, n, order, r);
    /* counting sort by class, keeping the score order inside each class */
    memset(start, 0, (size_t)(n_cls + 1) * sizeof *start);
    for (int i = 0; i < n; i++)
        start[cls[i] + 1]++;
    for (int c = 0; c < n_cls; c++)
        start[c + 1] += start[c];
    for (int i = 0; i < n; i++)
        bucketed[start[cls[order[i]]]++] = order[i];
    for (int c = n_cls; c > 0; c--)
        start[c] = start[c - 1];
    start[0] = 0;
    memset(flag, 0, (size_t)n);
    for (int c = 0; c < n_cls; c++) {
        int m = start[c + 1] - start[c];
        int k = nn_nms_px(boxes, bucketed + start[c], m, iou_thresh, plus_one, supp, kept);
        for (int i = 0; i < k; i++)
            flag[kept[i]] = 1;
    }
    int out = 0;
    for (int i = 0; i < n && out < max_keep; i++)
        if (flag[order[i]])
            keep[out++] = order[i];
    return out;
}
