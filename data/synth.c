/* synth.c: renders the synthetic world: a scene (synth_scene.c) painted into labels, the
 * labels turned into panoptic ids and segments, for the ground truth and, when asked,
 * for the perturbed prediction. It exists to exercise and measure the system; it is not
 * real data and not a model of any real network. */
#include "data.h"
#include "synth_world.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The random streams of one image. */
enum { STREAM_SCENE = 1, STREAM_PRED, STREAM_GT_IDS, STREAM_PRED_IDS };

uint64_t synth_image_id(synth_split split, uint64_t k) {
    return split == SYNTH_HELDOUT ? SYNTH_HELDOUT_FIRST_ID + k : 1 + k;
}

/* Paints segment indexes + 1 (0 = VOID): bands, then shapes in order, later on top. */
static void scene_render(const synth_scene *s, uint32_t w, uint32_t h, uint8_t *label) {
    for (uint32_t x = 0; x < w; x++) {
        uint32_t y = 0;
        for (int b = 0; b < s->n_bands; b++) {
            const synth_border *d = &s->borders[b];
            double edge = b == s->n_bands - 1 ? h : d->base + d->amp * sin(d->freq * x + d->phase);
            for (; y < h && y < edge; y++)
                label[(size_t)y * w + x] = (uint8_t)(s->band_seg[b] + 1);
        }
    }
    for (int i = 0; i < s->n_shapes; i++) {
        const synth_ellipse *e = &s->shapes[i];
        long y0 = lround(fmax(0, e->cy - e->ay)), y1 = lround(fmin(h - 1.0, e->cy + e->ay));
        for (long y = y0; y <= y1; y++) {
            double dy = (y - e->cy) / e->ay;
            if (dy * dy > 1)
                continue;
            double half = e->ax * sqrt(1 - dy * dy);
            long x0 = lround(fmax(0, e->cx - half)), x1 = lround(fmin(w - 1.0, e->cx + half));
            for (long x = x0; x <= x1; x++)
                label[(size_t)y * w + (size_t)x] = (uint8_t)(e->seg + 1);
        }
    }
}

/* Turns labels into ids, and the segments still visible into pan_segments. */
static int scene_segments(const synth_scene *s, const uint8_t *label, uint32_t w, uint32_t h, synth_rng *r, uint32_t *ids,
                          pan_segment **out, size_t *n_out) {
    uint32_t seg_id[SYNTH_MAX_SEGMENTS + 1] = {0};
    int64_t box[SYNTH_MAX_SEGMENTS + 1][4];
    uint64_t area[SYNTH_MAX_SEGMENTS + 1] = {0};
    for (int k = 1; k <= s->n_segs; k++) {
        uint32_t id;
        int fresh;
        do { /* a random non-zero 24-bit colour, unique in the image */
            id = (uint32_t)(synth_rng_next(r) & 0xFFFFFF);
            fresh = id != 0;
            for (int j = 1; j < k; j++)
                fresh = fresh && seg_id[j] != id;
        } while (!fresh);
        seg_id[k] = id;
        box[k][0] = box[k][1] = INT64_MAX;
        box[k][2] = box[k][3] = -1;
    }
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            int k = label[(size_t)y * w + x];
            ids[(size_t)y * w + x] = seg_id[k];
            area[k]++;
            if (x < box[k][0]) box[k][0] = x;
            if (y < box[k][1]) box[k][1] = y;
            if ((int64_t)x > box[k][2]) box[k][2] = x;
            if ((int64_t)y > box[k][3]) box[k][3] = y;
        }
    pan_segment *segs = calloc((size_t)s->n_segs + 1, sizeof *segs);
    if (!segs)
        return -1;
    size_t n = 0;
    for (int k = 1; k <= s->n_segs; k++) {
        if (area[k] == 0)
            continue;
        pan_segment *g = &segs[n++];
        g->id = seg_id[k];
        g->category_id = synth_category_at((size_t)s->seg_cat[k - 1])->id;
        g->iscrowd = s->seg_crowd[k - 1];
        g->area = (double)area[k];
        g->bbox[0] = (int32_t)box[k][0];
        g->bbox[1] = (int32_t)box[k][1];
        g->bbox[2] = (int32_t)(box[k][2] - box[k][0] + 1);
        g->bbox[3] = (int32_t)(box[k][3] - box[k][1] + 1);
    }
    *out = segs;
    *n_out = n;
    return 0;
}

/* Paints the scene and fills ids and segments from it; label is scratch. */
static int render_side(const synth_scene *s, uint32_t w, uint32_t h, uint8_t *label, synth_rng *r_ids,
                       uint32_t *ids, pan_segment **segs, size_t *n) {
    memset(label, 0, (size_t)w * h);
    scene_render(s, w, h, label);
    return scene_segments(s, label, w, h, r_ids, ids, segs, n);
}

int synth_image_render(const synth_params *p, uint64_t image_id, synth_image *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    size_t npix = (size_t)p->width * p->height;
    synth_scene gt, pred;
    synth_rng r_scene = synth_rng_for(p->seed, image_id, STREAM_SCENE);
    synth_rng r_gt_ids = synth_rng_for(p->seed, image_id, STREAM_GT_IDS);
    uint8_t *label = malloc(npix ? npix : 1);
    out->gt_ids = malloc(npix * sizeof *out->gt_ids + 1);
    if (p->with_pred)
        out->pred_ids = malloc(npix * sizeof *out->pred_ids + 1);
    int rc = label && out->gt_ids && (out->pred_ids || !p->with_pred) ? 0 : -1;
    if (rc == 0) {
        synth_scene_make(&gt, &r_scene, p->width, p->height);
        rc = render_side(&gt, p->width, p->height, label, &r_gt_ids, out->gt_ids, &out->gt_segments, &out->n_gt);
    }
    if (rc == 0 && p->with_pred) {
        synth_rng r_pred = synth_rng_for(p->seed, image_id, STREAM_PRED);
        synth_rng r_pred_ids = synth_rng_for(p->seed, image_id, STREAM_PRED_IDS);
        synth_scene_perturb(&gt, &pred, &r_pred, p->width, p->height);
        rc = render_side(&pred, p->width, p->height, label, &r_pred_ids, out->pred_ids, &out->pred_segments,
                         &out->n_pred);
    }
    free(label);
    if (rc != 0) {
        synth_image_release(out);
        return avps_fail(err, "synthetic image %llu: out of memory", (unsigned long long)image_id);
    }
    return 0;
}

void synth_image_release(synth_image *img) {
    free(img->gt_ids);
    free(img->pred_ids);
    free(img->gt_segments);
    free(img->pred_segments);
    memset(img, 0, sizeof *img);
}
