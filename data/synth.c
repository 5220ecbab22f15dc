/* synth.c: the synthetic world, a deterministic COCO-like panoptic scene per image
 * (stuff bands with wavy borders, occluding thing ellipses, crowds, VOID blobs) and a
 * prediction made by perturbing it. It exists to exercise and measure the system; it is
 * not a model of any real network. */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_THINGS 80
#define N_STUFF 53
#define MAX_BANDS 6
#define MAX_SHAPES 40
#define MAX_SEGMENTS (MAX_BANDS + MAX_SHAPES)

size_t synth_category_count(void) { return N_THINGS + N_STUFF; }

int32_t synth_category(size_t index, int *isthing, char *name, size_t name_len) {
    *isthing = index < N_THINGS;
    snprintf(name, name_len, *isthing ? "thing%02zu" : "stuff%02zu", *isthing ? index + 1 : index - N_THINGS + 1);
    return (int32_t)index + 1;
}

/* ---- randomness: splitmix64, seeded per (seed, image, stream) ---------------------- */

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static double rng_range(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }
static int rng_int(rng *r, int lo, int hi) { return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1)); }
static rng rng_for(uint64_t seed, uint64_t index, uint64_t stream) {
    rng r = {seed ^ 0x5DEECE66Dull};
    r.s ^= rng_next(&r) + index * 0xD1B54A32D192ED03ull;
    r.s ^= rng_next(&r) + stream * 0xABC98388FB8FAC03ull;
    return r;
}

/* ---- scenes ------------------------------------------------------------------------ */

typedef struct {
    double base, amp, freq, phase; /* the border below a band: y = base + amp sin(freq x + phase) */
} border;

typedef struct {
    double cx, cy, ax, ay;
    int seg; /* -1: a VOID blob */
} ellipse;

typedef struct {
    int n_bands, n_shapes, n_segs;
    border borders[MAX_BANDS];
    int band_seg[MAX_BANDS];
    ellipse shapes[MAX_SHAPES];
    int seg_cat[MAX_SEGMENTS], seg_crowd[MAX_SEGMENTS];
} scene;

static int scene_add_segment(scene *s, int cat, int crowd) {
    s->seg_cat[s->n_segs] = cat;
    s->seg_crowd[s->n_segs] = crowd;
    return s->n_segs++;
}

static void scene_make(scene *s, rng *r, uint32_t w, uint32_t h) {
    memset(s, 0, sizeof *s);
    s->n_bands = rng_int(r, 2, MAX_BANDS);
    for (int b = 0; b < s->n_bands; b++) {
        s->borders[b] = (border){h * (b + 1.0) / s->n_bands + rng_range(r, -0.1, 0.1) * h / s->n_bands,
                                 rng_range(r, 0, 0.06) * h, rng_range(r, 2, 12) / w, rng_range(r, 0, 6.283)};
        s->band_seg[b] = scene_add_segment(s, N_THINGS + 1 + rng_int(r, 0, N_STUFF - 1), 0);
    }
    int n_things = rng_int(r, 3, 24), n_void = rng_int(r, 0, 3);
    double scale = (w < h ? w : h) / 480.0;
    for (int i = 0; i < n_things + n_void && s->n_shapes < MAX_SHAPES; i++) {
        ellipse *e = &s->shapes[s->n_shapes++];
        int crowd = i < n_things && rng_unit(r) < 0.04;
        double size = crowd ? 2.5 : 1.0;
        *e = (ellipse){rng_range(r, 0, w), rng_range(r, 0, h), size * scale * rng_range(r, 6, 90),
                       size * scale * rng_range(r, 6, 90), -1};
        if (i < n_things)
            e->seg = scene_add_segment(s, 1 + rng_int(r, 0, N_THINGS - 1), crowd);
    }
}

/* The prediction: borders and shapes moved and resized, some objects missed, some
 * classes confused, a few false objects, no VOID and no crowds. */
static void scene_perturb(const scene *gt, scene *p, rng *r, uint32_t w, uint32_t h) {
    memset(p, 0, sizeof *p);
    p->n_bands = gt->n_bands;
    for (int b = 0; b < gt->n_bands; b++) {
        border d = gt->borders[b];
        d.base += rng_range(r, -0.03, 0.03) * h;
        d.amp *= rng_range(r, 0.6, 1.4);
        p->borders[b] = d;
        int cat = gt->seg_cat[gt->band_seg[b]];
        if (rng_unit(r) < 0.08)
            cat = N_THINGS + 1 + rng_int(r, 0, N_STUFF - 1);
        p->band_seg[b] = scene_add_segment(p, cat, 0);
    }
    for (int i = 0; i < gt->n_shapes; i++) {
        const ellipse *e = &gt->shapes[i];
        if (e->seg < 0 || rng_unit(r) < 0.15)
            continue;
        ellipse q = {e->cx + rng_range(r, -0.15, 0.15) * e->ax, e->cy + rng_range(r, -0.15, 0.15) * e->ay,
                     e->ax * rng_range(r, 0.8, 1.2), e->ay * rng_range(r, 0.8, 1.2), 0};
        int cat = gt->seg_cat[e->seg];
        if (rng_unit(r) < 0.06)
            cat = 1 + rng_int(r, 0, N_THINGS - 1);
        q.seg = scene_add_segment(p, cat, 0);
        p->shapes[p->n_shapes++] = q;
    }
    int extra = rng_int(r, 0, 3);
    double scale = (w < h ? w : h) / 480.0;
    for (int i = 0; i < extra && p->n_shapes < MAX_SHAPES; i++)
        p->shapes[p->n_shapes++] = (ellipse){rng_range(r, 0, w), rng_range(r, 0, h), scale * rng_range(r, 5, 40),
                                             scale * rng_range(r, 5, 40),
                                             scene_add_segment(p, 1 + rng_int(r, 0, N_THINGS - 1), 0)};
}

/* Paints segment indexes + 1 (0 = VOID): bands, then shapes in order, later on top. */
static void scene_render(const scene *s, uint32_t w, uint32_t h, uint8_t *label) {
    for (uint32_t x = 0; x < w; x++) {
        uint32_t y = 0;
        for (int b = 0; b < s->n_bands; b++) {
            const border *d = &s->borders[b];
            double edge = b == s->n_bands - 1 ? h : d->base + d->amp * sin(d->freq * x + d->phase);
            for (; y < h && y < edge; y++)
                label[(size_t)y * w + x] = (uint8_t)(s->band_seg[b] + 1);
        }
    }
    for (int i = 0; i < s->n_shapes; i++) {
        const ellipse *e = &s->shapes[i];
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
static int scene_segments(const scene *s, const uint8_t *label, uint32_t w, uint32_t h, rng *r, uint32_t *ids,
                          pan_segment **out, size_t *n_out) {
    uint32_t seg_id[MAX_SEGMENTS + 1] = {0};
    int64_t box[MAX_SEGMENTS + 1][4];
    uint64_t area[MAX_SEGMENTS + 1] = {0};
    for (int k = 1; k <= s->n_segs; k++) {
        uint32_t id;
        int fresh;
        do { /* a random non-zero 24-bit colour, unique in the image */
            id = (uint32_t)(rng_next(r) & 0xFFFFFF);
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
        g->category_id = s->seg_cat[k - 1];
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

int synth_image_render(const synth_params *p, uint64_t index, synth_image *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    size_t npix = (size_t)p->width * p->height;
    scene gt, pred;
    rng r_scene = rng_for(p->seed, index, 1), r_pred = rng_for(p->seed, index, 2);
    rng r_gt_ids = rng_for(p->seed, index, 3), r_pred_ids = rng_for(p->seed, index, 4);
    uint8_t *label = malloc(npix ? npix : 1);
    out->gt_ids = malloc(npix * sizeof *out->gt_ids + 1);
    out->pred_ids = malloc(npix * sizeof *out->pred_ids + 1);
    if (!label || !out->gt_ids || !out->pred_ids) {
        free(label);
        synth_image_release(out);
        return avps_fail(err, "synthetic image %llu: out of memory", (unsigned long long)index);
    }
    scene_make(&gt, &r_scene, p->width, p->height);
    scene_perturb(&gt, &pred, &r_pred, p->width, p->height);
    memset(label, 0, npix);
    scene_render(&gt, p->width, p->height, label);
    int rc = scene_segments(&gt, label, p->width, p->height, &r_gt_ids, out->gt_ids, &out->gt_segments, &out->n_gt);
    memset(label, 0, npix);
    scene_render(&pred, p->width, p->height, label);
    if (rc == 0)
        rc = scene_segments(&pred, label, p->width, p->height, &r_pred_ids, out->pred_ids, &out->pred_segments,
                            &out->n_pred);
    free(label);
    if (rc != 0) {
        synth_image_release(out);
        return avps_fail(err, "synthetic image %llu: out of memory", (unsigned long long)index);
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
