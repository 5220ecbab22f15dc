/* synth_world.h: private to data/: the pieces of the synthetic world that synth.c,
 * synth_scene.c and synth_categories.c share: the random streams, the scene description
 * and the category draws. */
#ifndef AVPS_SYNTH_WORLD_H
#define AVPS_SYNTH_WORLD_H

#include <stddef.h>
#include <stdint.h>

/* ---- randomness: splitmix64, one stream per (seed, image id, purpose) ---------------- */

typedef struct {
    uint64_t s;
} synth_rng;

static inline uint64_t synth_rng_next(synth_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [0, 1). */
static inline double synth_rng_unit(synth_rng *r) { return (double)(synth_rng_next(r) >> 11) * 0x1.0p-53; }
static inline double synth_rng_range(synth_rng *r, double lo, double hi) { return lo + (hi - lo) * synth_rng_unit(r); }
/* Uniform in lo..hi, both included. */
static inline int synth_rng_int(synth_rng *r, int lo, int hi) {
    return lo + (int)(synth_rng_next(r) % (uint64_t)(hi - lo + 1));
}
static inline synth_rng synth_rng_for(uint64_t seed, uint64_t image_id, uint64_t stream) {
    synth_rng r = {seed ^ 0x5DEECE66Dull};
    r.s ^= synth_rng_next(&r) + image_id * 0xD1B54A32D192ED03ull;
    r.s ^= synth_rng_next(&r) + stream * 0xABC98388FB8FAC03ull;
    return r;
}

/* ---- category draws (synth_categories.c) -------------------------------------------- */

/* A category index of the kind (thing or stuff), drawn by frequency from the random u. */
int synth_draw_category(uint64_t u, int isthing);
/* Another category of the same kind and supercategory, drawn uniformly from u; the
 * category itself when it is alone in its supercategory. */
int synth_draw_related(uint64_t u, int index);

/* ---- scenes (synth_scene.c) ------------------------------------------------------------ */

#define SYNTH_MAX_BANDS 6
#define SYNTH_MAX_SHAPES 56
/* A prediction has a segment per band, per shape and per false object. */
#define SYNTH_MAX_SEGMENTS (SYNTH_MAX_BANDS + SYNTH_MAX_SHAPES + 4)

typedef struct {
    double base, amp, freq, phase; /* the border below a band: y = base + amp sin(freq x + phase) */
} synth_border;

typedef struct {
    double cx, cy, ax, ay;
    int seg; /* index into the scene's segments; -1: a VOID blob */
} synth_ellipse;

/* Stuff bands top to bottom, then ellipses painted in order, later ones on top; several
 * ellipses may share a segment (a crowd). */
typedef struct {
    int n_bands, n_shapes, n_segs;
    synth_border borders[SYNTH_MAX_BANDS];
    int band_seg[SYNTH_MAX_BANDS];
    synth_ellipse shapes[SYNTH_MAX_SHAPES];
    int seg_cat[SYNTH_MAX_SEGMENTS]; /* category index into the table */
    int seg_crowd[SYNTH_MAX_SEGMENTS];
} synth_scene;

void synth_scene_make(synth_scene *s, synth_rng *r, uint32_t w, uint32_t h);
/* The prediction of gt: moved and resized borders and shapes, missed objects, confused
 * classes, a few false objects; no VOID and no crowds. */
void synth_scene_perturb(const synth_scene *gt, synth_scene *p, synth_rng *r, uint32_t w, uint32_t h);

#endif
