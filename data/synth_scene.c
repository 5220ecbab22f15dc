/* synth_scene.c: what one synthetic image shows, and its perturbed prediction. A scene is
 * a few stuff bands with wavy borders and stuff blobs, sometimes a crowd (a cluster of
 * ellipses sharing one segment), things as ellipses painted far to near, and VOID blobs
 * on top. Classes are drawn by frequency, with a few classes per scene repeated as real
 * photos repeat them; thing areas are log-normal so that small, medium and large (COCO's
 * 32^2 and 96^2 bounds) all occur, shifted by each class's typical size. */
#include "data.h"
#include "synth_world.h"

#include <math.h>
#include <string.h>

#define COCO_PIXELS (640.0 * 480.0)
#define TWO_PI 6.283185307179586
/* log of a medium thing's area at 640x480, its spread, and a class size step: about
 * 4 in 10 things small and 1 in 4 large, as in COCO, once occlusion has taken its part. */
#define THING_LOG_AREA 7.8
#define THING_LOG_SD 2.1
#define THING_SIZE_STEP 1.1
#define MAX_THINGS 40
#define MAX_SCENE_CLASSES 3
#define SCENE_CLASS_SHARE 0.6 /* things that take one of the scene's classes */
#define CROWD_RATE 0.12       /* images with a crowd */
#define MAX_CROWD_PARTS 8

static int scene_add_segment(synth_scene *s, int cat, int crowd) {
    s->seg_cat[s->n_segs] = cat;
    s->seg_crowd[s->n_segs] = crowd;
    return s->n_segs++;
}

static void scene_add_shape(synth_scene *s, synth_ellipse e) {
    if (s->n_shapes < SYNTH_MAX_SHAPES)
        s->shapes[s->n_shapes++] = e;
}

/* A standard normal deviate (Box-Muller). */
static double rng_normal(synth_rng *r) {
    double u = 1.0 - synth_rng_unit(r); /* in (0, 1]: log is finite */
    return sqrt(-2.0 * log(u)) * cos(TWO_PI * synth_rng_unit(r));
}

/* An axis-aligned ellipse of the given area around (cx, cy), of random elongation. Every
 * draw is a statement of its own: C leaves the order of arguments unspecified. */
static synth_ellipse ellipse_of_area(synth_rng *r, double area, double cx, double cy, int seg) {
    double aspect = sqrt(exp(synth_rng_range(r, -1.0, 1.0)));
    double radius = sqrt(area / (TWO_PI / 2));
    return (synth_ellipse){cx, cy, radius * aspect, radius / aspect, seg};
}

/* The same, anywhere in the image. */
static synth_ellipse ellipse_anywhere(synth_rng *r, double area, uint32_t w, uint32_t h, int seg) {
    double cx = synth_rng_range(r, 0, w);
    double cy = synth_rng_range(r, 0, h);
    return ellipse_of_area(r, area, cx, cy, seg);
}

/* COCO has one segment per stuff class in an image. */
static int draw_new_stuff(synth_scene *s, synth_rng *r) {
    for (;;) {
        int cat = synth_draw_category(synth_rng_next(r), 0), used = 0;
        for (int k = 0; k < s->n_segs; k++)
            used |= s->seg_cat[k] == cat;
        if (!used)
            return cat;
    }
}

static void add_bands(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h) {
    s->n_bands = synth_rng_int(r, 2, SYNTH_MAX_BANDS);
    for (int b = 0; b < s->n_bands; b++) {
        synth_border *d = &s->borders[b];
        double step = (double)h / s->n_bands;
        d->base = step * (b + 1) + synth_rng_range(r, -0.1, 0.1) * step;
        d->amp = synth_rng_range(r, 0, 0.06) * h;
        d->freq = synth_rng_range(r, 2, 12) / w;
        d->phase = synth_rng_range(r, 0, TWO_PI);
        s->band_seg[b] = scene_add_segment(s, draw_new_stuff(s, r), 0);
    }
}

/* Stuff that is not a band: a rug, a window, a patch of snow. */
static void add_stuff_blobs(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h) {
    int n = synth_rng_int(r, 0, 2);
    for (int i = 0; i < n; i++) {
        double area = synth_rng_range(r, 0.02, 0.15) * w * h;
        int seg = scene_add_segment(s, draw_new_stuff(s, r), 0);
        scene_add_shape(s, ellipse_anywhere(r, area, w, h, seg));
    }
}

/* One crowd segment: many small ellipses around one place, a single iscrowd segment. */
static void add_crowd(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h, int cat) {
    double pixels = (double)w * h;
    double area = fmin(exp(9.4 + 0.6 * rng_normal(r)) * pixels / COCO_PIXELS, 0.3 * pixels);
    double cx = synth_rng_range(r, 0, w);
    double cy = synth_rng_range(r, 0, h), spread = sqrt(area);
    int parts = synth_rng_int(r, 3, MAX_CROWD_PARTS), seg = scene_add_segment(s, cat, 1);
    for (int i = 0; i < parts; i++) {
        double part = area / parts * synth_rng_range(r, 0.5, 1.5);
        double x = cx + synth_rng_range(r, -0.5, 0.5) * spread;
        double y = cy + synth_rng_range(r, -0.3, 0.3) * spread;
        scene_add_shape(s, ellipse_of_area(r, part, x, y, seg));
    }
}

static double thing_area(synth_rng *r, int size, double pixels) {
    double a = exp(THING_LOG_AREA + size * THING_SIZE_STEP + THING_LOG_SD * rng_normal(r)) * pixels / COCO_PIXELS;
    return fmin(fmax(a, 12.0), 0.35 * pixels);
}

/* Far to near: whatever reaches lower in the picture is painted later, on top. */
static void sort_by_bottom(synth_ellipse *e, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && e[j - 1].cy + e[j - 1].ay > e[j].cy + e[j].ay; j--) {
            synth_ellipse t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
}

static void add_things(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h, const int *classes, int n_classes) {
    int n = (int)exp(synth_rng_range(r, 0, log(MAX_THINGS + 1.0)));
    n = n < 1 ? 1 : n > MAX_THINGS ? MAX_THINGS : n;
    int first = s->n_shapes;
    for (int i = 0; i < n; i++) {
        int cat = synth_rng_unit(r) < SCENE_CLASS_SHARE ? classes[synth_rng_int(r, 0, n_classes - 1)]
                                                        : synth_draw_category(synth_rng_next(r), 1);
        double area = thing_area(r, synth_category_at((size_t)cat)->size, (double)w * h);
        scene_add_shape(s, ellipse_anywhere(r, area, w, h, scene_add_segment(s, cat, 0)));
    }
    sort_by_bottom(s->shapes + first, s->n_shapes - first);
}

static void add_void(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h) {
    int n = synth_rng_int(r, 0, 3);
    for (int i = 0; i < n; i++) {
        double area = exp(synth_rng_range(r, log(0.001), log(0.03))) * w * h;
        scene_add_shape(s, ellipse_anywhere(r, area, w, h, -1));
    }
}

void synth_scene_make(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h) {
    memset(s, 0, sizeof *s);
    add_bands(s, r, w, h);
    add_stuff_blobs(s, r, w, h);
    int classes[MAX_SCENE_CLASSES], n_classes = synth_rng_int(r, 1, MAX_SCENE_CLASSES);
    for (int i = 0; i < n_classes; i++)
        classes[i] = synth_draw_category(synth_rng_next(r), 1);
    if (synth_rng_unit(r) < CROWD_RATE) /* person crowds are the commonest, as in COCO */
        add_crowd(s, r, w, h, synth_rng_unit(r) < 0.5 ? synth_category_index(1) : classes[0]);
    add_things(s, r, w, h, classes, n_classes);
    add_void(s, r, w, h);
}

/* Half the confusions stay within the supercategory (dog for cat), half go anywhere. */
static int confuse(synth_rng *r, int cat) {
    if (synth_rng_unit(r) < 0.5)
        return synth_draw_related(synth_rng_next(r), cat);
    return synth_draw_category(synth_rng_next(r), synth_category_at((size_t)cat)->isthing);
}

void synth_scene_perturb(const synth_scene *gt, synth_scene *p, synth_rng *r, uint32_t w, uint32_t h) {
    memset(p, 0, sizeof *p);
    p->n_bands = gt->n_bands;
    for (int b = 0; b < gt->n_bands; b++) {
        synth_border d = gt->borders[b];
        d.base += synth_rng_range(r, -0.03, 0.03) * h;
        d.amp *= synth_rng_range(r, 0.6, 1.4);
        p->borders[b] = d;
        int cat = gt->seg_cat[gt->band_seg[b]];
        if (synth_rng_unit(r) < 0.08)
            cat = confuse(r, cat);
        p->band_seg[b] = scene_add_segment(p, cat, 0);
    }
    for (int i = 0; i < gt->n_shapes; i++) {
        const synth_ellipse *e = &gt->shapes[i];
        if (e->seg < 0 || synth_rng_unit(r) < 0.15)
            continue;
        synth_ellipse q = *e;
        q.cx += synth_rng_range(r, -0.15, 0.15) * e->ax;
        q.cy += synth_rng_range(r, -0.15, 0.15) * e->ay;
        q.ax *= synth_rng_range(r, 0.8, 1.2);
        q.ay *= synth_rng_range(r, 0.8, 1.2);
        int cat = gt->seg_cat[e->seg];
        if (synth_rng_unit(r) < 0.06)
            cat = confuse(r, cat);
        q.seg = scene_add_segment(p, cat, 0);
        scene_add_shape(p, q);
    }
    int extra = synth_rng_int(r, 0, 3);
    for (int i = 0; i < extra; i++) { /* small false objects */
        double area = thing_area(r, -1, (double)w * h);
        int cat = synth_draw_category(synth_rng_next(r), 1);
        scene_add_shape(p, ellipse_anywhere(r, area, w, h, scene_add_segment(p, cat, 0)));
    }
}
