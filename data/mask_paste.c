/* mask_paste.c: pasting a Mask R-CNN head's soft mh x mw mask into its box of an h x w
 * image, in the convention of one of three code bases. Every convention writes bilinear
 * probabilities (no threshold) into a rectangle of `out` and leaves the rest untouched;
 * parts of the rectangle outside the image are dropped. Boxes are (x1, y1, x2, y2) in
 * image pixels, already scaled to this image.
 *
 * Bilinear resize, as used by PASTE_TORCHVISION and PASTE_MMDET_V1 (torch's
 * F.interpolate(mode="bilinear", align_corners=False) and cv2.resize INTER_LINEAR agree):
 * output sample d of n, from a source of length P, reads source coordinate
 * s = (d + 0.5) * P / n - 0.5, clamped to [0, P - 1], interpolating linearly between
 * floor(s) and the next index (edges replicate).
 *
 * PASTE_TORCHVISION mirrors torchvision's paste_masks_in_image (with expand_masks,
 * expand_boxes and paste_mask_in_image); Detectron1 and UPSNet's im_post do the same.
 *   1. The mask gets a border of one zero cell on every side: (mh + 2) x (mw + 2).
 *   2. The box is scaled about its centre by (mw + 2) / mw on both axes (torchvision takes
 *      the width for both), in float32 as torchvision does (UPSNet: float64, which can
 *      move an edge that lands within float32 rounding of an integer by one pixel).
 *   3. Each coordinate is truncated toward zero to an integer: bx1, by1, bx2, by2.
 *   4. The padded mask is resized to max(bx2 - bx1 + 1, 1) x max(by2 - by1 + 1, 1) and
 *      written to columns [bx1, bx2 + 1) and rows [by1, by2 + 1), clipped to the image:
 *      a zero-width box pastes one column, an inverted one nothing.
 *
 * PASTE_DETECTRON2 mirrors detectron2's paste_masks_in_image (_do_paste_mask): no
 * padding, no rounding of the box. Pixel (x, y) samples the mask at its centre,
 * sx = (x + 0.5 - x1) / (x2 - x1) * mw - 0.5 (likewise sy), with grid_sample's bilinear
 * interpolation, align_corners=False and zero padding: a corner outside the mask counts
 * 0. The rectangle written is every pixel whose sx is in (-1, mw) and sy in (-1, mh), the
 * pixels that can be non-zero; upstream's GPU path samples the whole image, so it agrees.
 * Its CPU path (skip_empty) samples only [floor(x1) - 1, ceil(x2) + 1) and so loses the
 * faint (< 0.5 of the edge value) fringe of boxes wider than 3 * mw pixels. A box with
 * x2 <= x1 or y2 <= y1 pastes nothing (upstream divides by zero or flips the mask).
 *
 * PASTE_MMDET_V1 mirrors mmdetection v1's FCNMaskHead.get_seg_masks (mmcv.imresize):
 *   1. The box coordinates are truncated toward zero to integers bx1, by1, bx2, by2.
 *   2. The whole mask, unpadded, is resized to w = max(bx2 - bx1 + 1, 1) by
 *      h = max(by2 - by1 + 1, 1) and written to columns [bx1, bx1 + w) and rows
 *      [by1, by1 + h), clipped to the image: a zero-width or inverted box pastes one
 *      column. (Upstream assumes boxes already clipped to the image and would fail or
 *      wrap around on others.)
 *
 * Arithmetic is in double except torchvision's box expansion; against the upstream code
 * the probabilities differ by float rounding only (about 1e-7). */
#include "data.h"

#include <math.h>

/* Coordinates beyond this are refused: they keep every integer conversion exact. */
#define COORD_LIMIT 1e8

/* Two source indices and their weights; a weight is 0 where the index is padding. */
typedef struct {
    uint32_t i[2];
    double w[2];
} tap;

/* One axis of the paste: image pixels [lo, hi) receive values. Integer-box conventions:
 * pixel p is sample p - b0 of n, resized from src_len cells whose first and last `pad`
 * cells are zero padding around the m mask cells. detectron2: a, b are the box edges. */
typedef struct {
    paste_convention conv;
    int64_t lo, hi;
    int64_t b0, n, src_len, pad;
    double a, b;
    uint32_t m;
} axis_map;

/* Source index q (possibly in the padding or outside) with weight w, as a mask tap. */
static void tap_set(tap *t, int k, int64_t q, double w, uint32_t m) {
    int inside = q >= 0 && q < (int64_t)m;
    t->i[k] = inside ? (uint32_t)q : 0;
    t->w[k] = inside ? w : 0.0;
}

/* Bilinear resize sample (half-pixel centres, clamped edges) of a padded source. */
static tap resize_tap(const axis_map *ax, int64_t pixel) {
    double d = (double)(pixel - ax->b0);
    double s = (d + 0.5) * (double)ax->src_len / (double)ax->n - 0.5;
    double last = (double)(ax->src_len - 1);
    s = s < 0.0 ? 0.0 : s > last ? last : s;
    int64_t i0 = (int64_t)floor(s);
    int64_t i1 = i0 + 1 < ax->src_len ? i0 + 1 : i0;
    double t = s - (double)i0;
    tap r;
    tap_set(&r, 0, i0 - ax->pad, 1.0 - t, ax->m);
    tap_set(&r, 1, i1 - ax->pad, t, ax->m);
    return r;
}

/* detectron2's sample coordinate of a pixel centre, in mask cells. */
static double grid_coord(const axis_map *ax, int64_t pixel) {
    return ((double)pixel + 0.5 - ax->a) / (ax->b - ax->a) * (double)ax->m - 0.5;
}

/* grid_sample's bilinear sample with zero padding. */
static tap grid_tap(const axis_map *ax, int64_t pixel) {
    double s = grid_coord(ax, pixel);
    int64_t i0 = (int64_t)floor(s);
    double t = s - (double)i0;
    tap r;
    tap_set(&r, 0, i0, 1.0 - t, ax->m);
    tap_set(&r, 1, i0 + 1, t, ax->m);
    return r;
}

static tap axis_tap(const axis_map *ax, int64_t pixel) {
    return ax->conv == PASTE_DETECTRON2 ? grid_tap(ax, pixel) : resize_tap(ax, pixel);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The resized length of integer box pixels b0..b2: b2 - b0 + 1, at least 1. */
static int64_t box_len(int64_t b0, int64_t b2) { return b2 - b0 + 1 > 1 ? b2 - b0 + 1 : 1; }

/* An integer-box axis: n samples from b0, region [b0, end) clipped to [0, len). */
static void axis_int_box(axis_map *ax, int64_t b0, int64_t n, int64_t end, uint32_t m, int64_t pad,
                         uint32_t len) {
    ax->b0 = b0;
    ax->n = n;
    ax->src_len = (int64_t)m + 2 * pad;
    ax->pad = pad;
    ax->m = m;
    ax->lo = clamp64(b0, 0, len);
    ax->hi = clamp64(end, ax->lo, len);
}

/* A detectron2 axis: the pixels whose sample coordinate lies in (-1, m). */
static void axis_grid(axis_map *ax, double a, double b, uint32_t m, uint32_t len) {
    ax->a = a, ax->b = b, ax->m = m;
    ax->lo = ax->hi = 0;
    if (!(b > a))
        return;
    double cell = (b - a) / (double)m;
    int64_t lo = clamp64((int64_t)floor(a - cell) - 1, 0, len);
    int64_t hi = clamp64((int64_t)ceil(b + cell) + 1, lo, len);
    while (lo < hi && !(grid_coord(ax, lo) > -1.0))
        lo++;
    while (hi > lo && !(grid_coord(ax, hi - 1) < (double)m))
        hi--;
    ax->lo = lo, ax->hi = hi;
}

/* torchvision's expanded integer box: expand_boxes in float32, then int64 truncation. */
static void torchvision_box(const double box[4], uint32_t mw, int64_t ib[4]) {
    float scale = (float)(((double)mw + 2.0) / (double)mw);
    float x1 = (float)box[0], y1 = (float)box[1], x2 = (float)box[2], y2 = (float)box[3];
    float w_half = (x2 - x1) * 0.5f, h_half = (y2 - y1) * 0.5f;
    float xc = (x2 + x1) * 0.5f, yc = (y2 + y1) * 0.5f;
    w_half *= scale;
    h_half *= scale;
    ib[0] = (int64_t)(xc - w_half);
    ib[1] = (int64_t)(yc - h_half);
    ib[2] = (int64_t)(xc + w_half);
    ib[3] = (int64_t)(yc + h_half);
}

static void build_axes(const double box[4], paste_convention conv, uint32_t mh, uint32_t mw, uint32_t h,
                       uint32_t w, axis_map *ay, axis_map *ax) {
    ay->conv = ax->conv = conv;
    if (conv == PASTE_DETECTRON2) {
        axis_grid(ax, box[0], box[2], mw, w);
        axis_grid(ay, box[1], box[3], mh, h);
        return;
    }
    int64_t ib[4];
    if (conv == PASTE_TORCHVISION) {
        torchvision_box(box, mw, ib);
        axis_int_box(ax, ib[0], box_len(ib[0], ib[2]), ib[2] + 1, mw, 1, w);
        axis_int_box(ay, ib[1], box_len(ib[1], ib[3]), ib[3] + 1, mh, 1, h);
        return;
    }
    for (int k = 0; k < 4; k++)
        ib[k] = (int64_t)box[k];
    int64_t nx = box_len(ib[0], ib[2]), ny = box_len(ib[1], ib[3]);
    axis_int_box(ax, ib[0], nx, ib[0] + nx, mw, 0, w); /* mmdet writes [b0, b0 + n) */
    axis_int_box(ay, ib[1], ny, ib[1] + ny, mh, 0, h);
}

static double sample(const float *mask, uint32_t mw, const tap *ty, const tap *tx) {
    double acc = 0.0;
    for (int r = 0; r < 2; r++) {
        const float *row = mask + (size_t)ty->i[r] * mw;
        acc += ty->w[r] * (tx->w[0] * (double)row[tx->i[0]] + tx->w[1] * (double)row[tx->i[1]]);
    }
    return acc;
}

static int args_ok(const float *mask, uint32_t mh, uint32_t mw, const double box[4], paste_convention conv,
                   const float *out) {
    if (!mask || !box || !out || mh == 0 || mw == 0)
        return 0;
    if (conv != PASTE_TORCHVISION && conv != PASTE_DETECTRON2 && conv != PASTE_MMDET_V1)
        return 0;
    for (int k = 0; k < 4; k++)
        if (!(fabs(box[k]) <= COORD_LIMIT))
            return 0;
    return 1;
}

int mask_paste(const float *mask, uint32_t mh, uint32_t mw, const double box[4], paste_convention conv,
               uint32_t h, uint32_t w, float *out) {
    if (!args_ok(mask, mh, mw, box, conv, out))
        return -1;
    axis_map ay, ax;
    build_axes(box, conv, mh, mw, h, w, &ay, &ax);
    for (int64_t y = ay.lo; y < ay.hi; y++) {
        tap ty = axis_tap(&ay, y);
        float *row = out + (size_t)y * w;
        for (int64_t x = ax.lo; x < ax.hi; x++) {
            tap tx = axis_tap(&ax, x);
            row[x] = (float)sample(mask, mw, &ty, &tx);
        }
    }
    return 0;
}
