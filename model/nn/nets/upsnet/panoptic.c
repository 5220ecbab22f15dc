/* panoptic.c: UPSNet's parameter-free panoptic head and its test-time post-processing
 * (models/resnet_upsnet.py:218-243, operators/modules/mask_removal.py, unary_logits.py,
 * upsnet_end2end_test.py:258-271, dataset/base_dataset.py:332-371): class-agnostic
 * candidates, their mask logits pasted by cv2's resize into their truncated boxes,
 * overlap removal per class, instance logits from the semantic thing channels inside
 * each box, a void channel, the argmax; then, at the image's size, each instance checked
 * against the semantic map and small stuff regions made void. */
#include "heads.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A kept instance: its mask logits resized into its truncated box (x0, y0, w, h; NULL
 * for the fallback instance, whose logits are 0), its class, and the box inside which
 * it takes the semantic logits of its class (rows sy0..sy1 - 1, columns sx0..sx1 - 1). */
typedef struct {
    int x0, y0, w, h;
    float *logit;
    int cls;
    int sx0, sy0, sx1, sy1;
} instance;

/* cv2.resize(INTER_LINEAR) of a float plane sw x sh to a given dw x dh, as OpenCV 4
 * computes it for CV_32F: scale = 1 / (dw / sw) in double; per column the source
 * position (float)((x + 0.5) scale - 0.5), floored, clamped to the first and last
 * column with weight 0; per row the same position, rows clamped but weights not; a
 * horizontal pass then a vertical one, each a * w0 + b * w1 in float. A downscale by
 * exactly 2 on both axes is cv2's INTER_AREA fast path instead (resize.cpp). */
void ups_cv_resize_to(const float *src, int sw, int sh, float *dst, int dw, int dh, float *rows) {
    double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    if (fabs(scale_x - 2) < DBL_EPSILON && fabs(scale_y - 2) < DBL_EPSILON) {
        /* the SIMD loop adds the two row pairs, the scalar tail the four in order */
        int vec = dw >= 4 ? (dw - 4) / 4 * 4 + 4 : 0;
        for (int y = 0; y < dh; y++) {
            const float *s0 = src + (size_t)(2 * y) * sw, *s1 = s0 + sw;
            for (int x = 0; x < dw; x++) {
                float a = s0[2 * x], b = s0[2 * x + 1], c = s1[2 * x], d = s1[2 * x + 1];
                dst[(size_t)y * dw + x] = (x < vec ? (a + b) + (c + d) : ((a + b) + c) + d) * 0.25f;
            }
        }
        return;
    }
    /* horizontal pass on every source row into rows (sh x dw) */
    for (int x = 0; x < dw; x++) {
        float fx = (float)((x + 0.5) * scale_x - 0.5);
        int sx = (int)floorf(fx);
        fx -= (float)sx;
        if (sx < 0)
            fx = 0, sx = 0;
        if (sx >= sw - 1)
            fx = 0, sx = sw - 1;
        float a0 = 1.f - fx, a1 = fx;
        for (int y = 0; y < sh; y++) {
            const float *s = src + (size_t)y * sw;
            rows[(size_t)y * dw + x] = sx + 1 < sw ? s[sx] * a0 + s[sx + 1] * a1 : s[sx] * a0;
        }
    }
    for (int y = 0; y < dh; y++) {
        float fy = (float)((y + 0.5) * scale_y - 0.5);
        int sy = (int)floorf(fy);
        fy -= (float)sy;
        float b0 = 1.f - fy, b1 = fy;
        int r0 = sy < 0 ? 0 : sy > sh - 1 ? sh - 1 : sy, r1 = sy + 1 < 0 ? 0 : sy + 1 > sh - 1 ? sh - 1 : sy + 1;
        const float *s0 = rows + (size_t)r0 * dw, *s1 = rows + (size_t)r1 * dw;
        for (int x = 0; x < dw; x++)
            dst[(size_t)y * dw + x] = s0[x] * b0 + s1[x] * b1;
    }
}

/* cv2.resize(INTER_NEAREST, fx = fy = f) of a u8 plane: the size round(side f), source
 * floor(x / f) in double, at most the last. */
void ups_cv_resize_nearest_u8(const uint8_t *src, int sw, int sh, int stride, uint8_t *dst, int dw, int dh, double f,
                              int *xofs) {
    double inv = 1.0 / f;
    for (int x = 0; x < dw; x++) {
        int sx = (int)floor(x * inv);
        xofs[x] = sx < sw - 1 ? sx : sw - 1;
    }
    for (int y = 0; y < dh; y++) {
        int sy = (int)floor(y * inv);
        const uint8_t *s = src + (size_t)(sy < sh - 1 ? sy : sh - 1) * stride;
        for (int x = 0; x < dw; x++)
            dst[(size_t)y * dw + x] = s[xofs[x]];
    }
}

/* Is pixel (x, y) inside an instance's mask (its pasted logit > 0)? */
static int in_mask(const instance *in, int x, int y) {
    if (!in->logit || x < in->x0 || y < in->y0 || x >= in->x0 + in->w || y >= in->y0 + in->h)
        return 0;
    return in->logit[(size_t)(y - in->y0) * in->w + (x - in->x0)] > 0;
}

/* MaskRemoval: candidates by descending score; each one's logits resized into its box
 * (coordinates truncated to int32), its mask (logit > 0) clipped to the H x W map;
 * dropped when empty or when more than `fraction` of it lies on kept masks of its class.
 * The kept pasted crops replace the full maps UPSNet stores (the same values). */
static int mask_removal(const ups_heads *h, nn_arena *a, const ups_dets *c, int H, int W, ups_panoptic_out *out,
                        instance *inst, avps_error *err) {
    int *order = nn_arena_alloc(a, (size_t)c->n * sizeof(int), err);
    float *rows = nn_arena_alloc(a, (size_t)c->mask_size * W * sizeof(float), err);
    if (!order || !rows || ups_sort_desc(a, c->scores, c->n, order, err) != 0)
        return -1;
    size_t mm = (size_t)c->mask_size * c->mask_size;
    out->k = 0;
    if (c->n == 1 && c->labels[0] == 0) { /* MaskROI's fallback: one instance of zeros */
        out->keep[0] = 0, out->k = 1;
        inst[0] = (instance){0, 0, 0, 0, NULL, 0, 0, 0, 0, 0};
        return 0;
    }
    for (int i = 0; i < c->n; i++) {
        int d = order[i];
        const float *b = c->boxes + 4 * (size_t)d;
        int bx0 = (int)b[0], by0 = (int)b[1], bx1 = (int)b[2], by1 = (int)b[3];
        int w = bx1 - bx0 + 1, hh = by1 - by0 + 1;
        w = w > 1 ? w : 1, hh = hh > 1 ? hh : 1;
        int x0 = bx0 > 0 ? bx0 : 0, x1 = bx1 + 1 < W ? bx1 + 1 : W;
        int y0 = by0 > 0 ? by0 : 0, y1 = by1 + 1 < H ? by1 + 1 : H;
        if (w > W + 1 || hh > H + 1)
            return avps_fail(err, "native engine: UPSNet panoptic candidate %d has a box of %dx%d on a %dx%d map", d,
                             w, hh, W, H);
        nn_arena_mark mark = nn_arena_get_mark(a);
        float *logit = nn_arena_alloc(a, (size_t)w * hh * sizeof(float), err);
        float *hrows = w > W ? nn_arena_alloc(a, (size_t)c->mask_size * w * sizeof(float), err) : rows;
        if (!logit || !hrows)
            return -1;
        ups_cv_resize_to(c->masks + (size_t)d * mm, c->mask_size, c->mask_size, logit, w, hh, hrows);
        instance cand = {bx0, by0, w, hh, logit, c->labels[d], 0, 0, 0, 0};
        long sum = 0, overlap = 0;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                if (!in_mask(&cand, x, y))
                    continue;
                sum++;
                for (int j = 0; j < out->k; j++)
                    if (inst[j].cls == cand.cls && in_mask(&inst[j], x, y)) {
                        overlap++;
                        break;
                    }
            }
        if (sum == 0 || (double)overlap / (double)sum > (double)h->set.removal_fraction) {
            nn_arena_rewind(a, mark);
            continue;
        }
        /* keep only the part inside the map, as the pasted frame does */
        cand.x0 = x0, cand.y0 = y0;
        int cw = x1 - x0, ch = y1 - y0;
        for (int y = 0; y < ch; y++)
            memmove(logit + (size_t)y * cw, logit + (size_t)(y + y0 - by0) * w + (x0 - bx0), (size_t)cw * sizeof(float));
        cand.w = cw, cand.h = ch;
        inst[out->k] = cand;
        out->keep[out->k++] = d;
    }
    if (out->k == 0) { /* mask_removal.py's fallback: candidate 0, zero logits */
        out->keep[0] = 0, out->k = 1;
        inst[0] = (instance){0, 0, 0, 0, NULL, c->labels[0], 0, 0, 0, 0};
    }
    return 0;
}

/* The panoptic logits' argmax: [stuff | instance term + pasted logits | void], first
 * index on ties, void as 255. Row by row, channel by channel, so that each plane is read
 * in order; the comparisons per pixel are in channel order as torch.max makes them. */
static int panoptic_argmax(const ups_heads *h, nn_arena *a, const nn_tensor *sem, const instance *inst, int k,
                           uint8_t *labels, avps_error *err) {
    int H = sem->h, W = sem->w, n_stuff = sem->c - (h->num_classes - 1);
    size_t hw = (size_t)H * W;
    float *best = nn_arena_alloc(a, 3 * (size_t)W * sizeof(float), err);
    int *arg = nn_arena_alloc(a, (size_t)W * sizeof(int), err);
    if (!best || !arg)
        return -1;
    float *inst_max = best + W, *thing_max = inst_max + W;
    for (int y = 0; y < H; y++) {
        const float *row = sem->data + (size_t)y * W;
        for (int x = 0; x < W; x++)
            best[x] = row[x], arg[x] = 0, inst_max[x] = -INFINITY, thing_max[x] = -INFINITY;
        for (int c = 1; c < n_stuff; c++)
            for (int x = 0; x < W; x++)
                if (row[c * hw + x] > best[x])
                    best[x] = row[c * hw + x], arg[x] = c;
        for (int i = 0; i < k; i++) {
            const instance *in = &inst[i];
            int seg_row = in->cls > 0 && y >= in->sy0 && y < in->sy1;
            int mask_row = in->logit && y >= in->y0 && y < in->y0 + in->h;
            const float *term_row = row + (size_t)(n_stuff - 1 + in->cls) * hw;
            const float *mask = mask_row ? in->logit + (size_t)(y - in->y0) * in->w : NULL;
            for (int x = 0; x < W; x++) {
                float term = seg_row && x >= in->sx0 && x < in->sx1 ? term_row[x] : 0;
                float energy = mask_row && x >= in->x0 && x < in->x0 + in->w ? mask[x - in->x0] : 0;
                inst_max[x] = term > inst_max[x] ? term : inst_max[x];
                if (term + energy > best[x])
                    best[x] = term + energy, arg[x] = n_stuff + i;
            }
        }
        if (h->set.enable_void) {
            for (int c = n_stuff; c < sem->c; c++)
                for (int x = 0; x < W; x++)
                    thing_max[x] = row[c * hw + x] > thing_max[x] ? row[c * hw + x] : thing_max[x];
            for (int x = 0; x < W; x++)
                if (thing_max[x] - inst_max[x] > best[x])
                    arg[x] = 255;
        }
        for (int x = 0; x < W; x++)
            labels[(size_t)y * W + x] = (uint8_t)arg[x];
    }
    return 0;
}

/* get_unified_pan_result on the image-sized maps: pan (the panoptic argmax) and seg
 * (the semantic argmax); pan_ins is rewritten in place as UPSNet does, so an instance
 * number equal to a later id joins that id's region, as there. */
static int unify(const ups_heads *h, nn_arena *a, const uint8_t *pan, const uint8_t *seg, size_t n, const int *cls_inds,
                 int k, int n_stuff, uint8_t *pan_seg, uint8_t *pan_ins, avps_error *err) {
    int last_stuff = n_stuff - 1;
    int present[256] = {0};
    for (size_t p = 0; p < n; p++) {
        present[pan[p]] = 1;
        pan_seg[p] = pan[p], pan_ins[p] = pan[p] <= last_stuff ? 0 : pan[p];
    }
    size_t *cnt = nn_arena_alloc(a, 256 * sizeof(size_t), err);
    if (!cnt)
        return -1;
    int idx = 0;
    for (int id = last_stuff + 1; id < 256; id++) {
        if (!present[id])
            continue;
        if (id == 255) {
            for (size_t p = 0; p < n; p++)
                if (pan_ins[p] == 255)
                    pan_seg[p] = 255, pan_ins[p] = 0;
            idx++;
            continue;
        }
        if (id - n_stuff >= k)
            return avps_fail(err, "native engine: UPSNet panoptic label %d but %d instances", id, k);
        int thing = cls_inds[id - n_stuff] + last_stuff;
        memset(cnt, 0, 256 * sizeof(size_t));
        size_t total = 0;
        for (size_t p = 0; p < n; p++)
            if (pan_ins[p] == id)
                cnt[seg[p]]++, total++;
        int major = 0;
        for (int c = 1; c < 256; c++)
            if (cnt[c] > cnt[major])
                major = c;
        int to_seg = thing, to_ins = idx + 1;
        if (major != thing && (double)cnt[major] / (double)total >= 0.5 && major <= last_stuff)
            to_seg = major, to_ins = 0;
        for (size_t p = 0; p < n; p++)
            if (pan_ins[p] == id)
                pan_seg[p] = (uint8_t)to_seg, pan_ins[p] = (uint8_t)to_ins;
        idx++;
    }
    memset(cnt, 0, 256 * sizeof(size_t));
    for (size_t p = 0; p < n; p++)
        cnt[pan_seg[p]]++;
    for (size_t p = 0; p < n; p++)
        if (pan_seg[p] <= last_stuff && cnt[pan_seg[p]] < (size_t)h->set.stuff_area_limit)
            pan_seg[p] = 255;
    return 0;
}

/* Each (class, instance) of the final map but void: area and UPSNet's bbox. */
static int segments(nn_arena *a, const uint8_t *pan_2ch, int w, int hgt, ups_panoptic_out *out, avps_error *err) {
    int *area = nn_arena_alloc(a, 65536 * sizeof(int), err);
    int *box = nn_arena_alloc(a, 65536 * 4 * sizeof(int), err);
    if (!area || !box)
        return -1;
    memset(area, 0, 65536 * sizeof(int));
    for (int y = 0; y < hgt; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *v = pan_2ch + 2 * ((size_t)y * w + x);
            if (v[0] == 255)
                continue;
            int s = v[0] * 256 + v[1], *b = box + 4 * s;
            if (area[s]++ == 0)
                b[0] = b[2] = x, b[1] = b[3] = y;
            b[0] = x < b[0] ? x : b[0], b[2] = x > b[2] ? x : b[2];
            b[1] = y < b[1] ? y : b[1], b[3] = y > b[3] ? y : b[3];
        }
    int n = 0;
    for (int s = 0; s < 65536; s++)
        n += area[s] > 0;
    out->segments = nn_arena_alloc(a, (size_t)(n ? n : 1) * sizeof *out->segments, err);
    if (!out->segments)
        return -1;
    out->n_segments = 0;
    for (int s = 0; s < 65536; s++) {
        if (!area[s])
            continue;
        const int *b = box + 4 * s;
        out->segments[out->n_segments++] =
            (ups_pan_segment){s / 256, s % 256, area[s], {b[0], b[1], b[2] - b[0], b[3] - b[1]}};
    }
    return 0;
}

int ups_panoptic(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_box_out *box,
                 const ups_im_info *im, const nn_tensor *sem_up, const uint8_t *sem_labels, ups_panoptic_out *out,
                 avps_error *err) {
    memset(out, 0, sizeof *out);
    int H = sem_up->h, W = sem_up->w, n_stuff = sem_up->c - (h->num_classes - 1);
    if (n_stuff < 1 || n_stuff > 255 || sem_up->n != 1)
        return avps_fail(err, "native engine: UPSNet panoptic head: %d semantic classes for %d detection classes",
                         sem_up->c, h->num_classes);
    if (im->img_h < 1 || im->img_w < 1 || im->img_h > H || im->img_w > W || !(im->scale > 0))
        return avps_fail(err, "native engine: UPSNet panoptic head: image %dx%d (scale %g) on a %dx%d map",
                         im->img_w, im->img_h, (double)im->scale, W, H);
    if (ups_panoptic_candidates(h, a, fpn, box, im, &out->cand, err) != 0)
        return -1;
    const ups_dets *c = &out->cand;
    instance *inst = nn_arena_alloc(a, (size_t)c->n * sizeof *inst, err);
    out->keep = nn_arena_alloc(a, (size_t)c->n * sizeof(int), err);
    out->cls_inds = nn_arena_alloc(a, (size_t)c->n * sizeof(int), err);
    out->cls_probs = nn_arena_alloc(a, (size_t)c->n * sizeof(float), err);
    if (!inst || !out->keep || !out->cls_inds || !out->cls_probs || mask_removal(h, a, c, H, W, out, inst, err))
        return -1;
    if (n_stuff + out->k > 255) /* labels are u8 and 255 is void */
        return avps_fail(err, "native engine: UPSNet panoptic head: %d stuff classes and %d instances do not fit "
                         "8-bit labels (lower max_det)", n_stuff, out->k);
    for (int i = 0; i < out->k; i++) {
        const float *b = c->boxes + 4 * (size_t)out->keep[i];
        out->cls_inds[i] = c->labels[out->keep[i]], out->cls_probs[i] = c->scores[out->keep[i]];
        inst[i].cls = out->cls_inds[i];
        /* SegTerm's box: int(x1) .. int(round(x2) + 1), numpy's round (halves to even) */
        inst[i].sx0 = (int)b[0], inst[i].sy0 = (int)b[1];
        inst[i].sx1 = (int)(nearbyintf(b[2]) + 1), inst[i].sy1 = (int)(nearbyintf(b[3]) + 1);
    }
    out->h = H, out->w = W;
    if (!(out->labels = nn_arena_alloc(a, (size_t)H * W, err)))
        return -1;
    if (panoptic_argmax(h, a, sem_up, inst, out->k, out->labels, err) != 0)
        return -1;

    /* back to the image: crop to the resized image, cv2's nearest resize by 1 / scale */
    double f = (double)(1.0f / im->scale);
    out->out_w = (int)lrint(im->img_w * f), out->out_h = (int)lrint(im->img_h * f);
    if (out->out_w < 1 || out->out_h < 1 || (double)out->out_w * out->out_h > 1e9)
        return avps_fail(err, "native engine: UPSNet panoptic head: image size %dx%d", out->out_w, out->out_h);
    size_t n = (size_t)out->out_w * out->out_h;
    uint8_t *seg = nn_arena_alloc(a, n, err), *pan_seg = nn_arena_alloc(a, n, err), *pan_ins = nn_arena_alloc(a, n, err);
    int *xofs = nn_arena_alloc(a, (size_t)out->out_w * sizeof(int), err);
    out->labels_image = nn_arena_alloc(a, n, err);
    out->pan_2ch = nn_arena_alloc(a, 2 * n, err);
    if (!seg || !pan_seg || !pan_ins || !xofs || !out->labels_image || !out->pan_2ch)
        return -1;
    const uint8_t *sl = sem_labels;
    if (!sl) { /* the semantic argmax, first index on ties */
        uint8_t *own = nn_arena_alloc(a, (size_t)H * W, err);
        if (!own)
            return -1;
        size_t hw = (size_t)H * W;
        for (size_t p = 0; p < hw; p++) {
            int arg = 0;
            for (int s = 1; s < sem_up->c; s++)
                if (sem_up->data[s * hw + p] > sem_up->data[arg * hw + p])
                    arg = s;
            own[p] = (uint8_t)arg;
        }
        sl = own;
    }
    ups_cv_resize_nearest_u8(out->labels, im->img_w, im->img_h, W, out->labels_image, out->out_w, out->out_h, f, xofs);
    ups_cv_resize_nearest_u8(sl, im->img_w, im->img_h, W, seg, out->out_w, out->out_h, f, xofs);
    if (unify(h, a, out->labels_image, seg, n, out->cls_inds, out->k, n_stuff, pan_seg, pan_ins, err) != 0)
        return -1;
    for (size_t p = 0; p < n; p++)
        out->pan_2ch[2 * p] = pan_seg[p], out->pan_2ch[2 * p + 1] = pan_ins[p];
    return segments(a, out->pan_2ch, out->out_w, out->out_h, out, err);
}
