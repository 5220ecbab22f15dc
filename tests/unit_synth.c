/* unit_synth.c: the synthetic world: COCO's category table, disjoint split ids, segments
 * that agree with their pixels, determinism, and a realistic spread (common and rare
 * classes, small to large things, crowds and VOID). */
#include "../data/data.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* A few entries of COCO panoptic's category list, as published. */
static void test_known_categories(check_tally *t) {
    static const struct {
        int32_t id;
        const char *name;
        int isthing;
    } known[] = {{1, "person", 1},   {3, "car", 1},        {13, "stop sign", 1},         {18, "dog", 1},
                 {67, "dining table", 1}, {90, "toothbrush", 1}, {92, "banner", 0}, {149, "road", 0},
                 {187, "sky-other-merged", 0}, {200, "rug-merged", 0}};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
        int i = synth_category_index(known[k].id);
        const synth_category_info *c = synth_category_at((size_t)(i < 0 ? 9999 : i));
        CHECK(t, c && strcmp(c->name, known[k].name) == 0 && c->isthing == known[k].isthing);
    }
    /* COCO's gaps and the ends are not categories */
    CHECK(t, synth_category_index(12) == -1 && synth_category_index(26) == -1 && synth_category_index(91) == -1);
    CHECK(t, synth_category_index(0) == -1 && synth_category_index(201) == -1 && synth_category_index(-5) == -1);
}

static void test_category_table(check_tally *t) {
    size_t n = synth_category_count(), things = 0;
    unsigned fmin = ~0u, fmax = 0;
    int ordered = 1, ranges = 1, texts = 1, lookups = 1, same_old = 1;
    CHECK(t, n == 133 && SYNTH_CATEGORY_COUNT == 133);
    for (size_t i = 0; i < n; i++) {
        const synth_category_info *c = synth_category_at(i);
        things += (size_t)c->isthing;
        ordered &= i == 0 || (synth_category_at(i - 1)->id < c->id && synth_category_at(i - 1)->isthing >= c->isthing);
        ranges &= c->isthing ? c->id >= 1 && c->id <= 90 : c->id >= 92 && c->id <= 200;
        texts &= c->name[0] != '\0' && c->supercategory[0] != '\0' && c->frequency > 0;
        for (size_t j = 0; j < i; j++)
            texts &= strcmp(synth_category_at(j)->name, c->name) != 0;
        lookups &= synth_category_index(c->id) == (int)i;
        int isthing;
        char name[40];
        same_old &= synth_category(i, &isthing, name, sizeof name) == c->id && isthing == c->isthing &&
                    strcmp(name, c->name) == 0;
        if (c->isthing) {
            fmin = c->frequency < fmin ? c->frequency : fmin;
            fmax = c->frequency > fmax ? c->frequency : fmax;
        }
    }
    CHECK(t, things == 80);
    CHECK(t, ordered);
    CHECK(t, ranges);
    CHECK(t, texts);
    CHECK(t, lookups);
    CHECK(t, same_old);
    CHECK(t, fmax >= 100 * fmin); /* some classes common, some rare */
    CHECK(t, synth_category_at(n) == NULL);
}

static void test_split_ids(check_tally *t) {
    CHECK(t, synth_image_id(SYNTH_VAL, 0) == 1);
    CHECK(t, synth_image_id(SYNTH_VAL, SYNTH_MAX_IMAGES - 1) < synth_image_id(SYNTH_HELDOUT, 0));
    CHECK(t, synth_image_id(SYNTH_HELDOUT, 1) == synth_image_id(SYNTH_HELDOUT, 0) + 1);
}

/* Every segment's area and box are those of its pixels, ids are unique and non-zero, and
 * pixels of no segment are VOID; returns the number of VOID pixels, or -1. */
static long check_segments(const uint32_t *ids, uint32_t w, uint32_t h, const pan_segment *segs, size_t n) {
    long covered = 0;
    for (size_t s = 0; s < n; s++) {
        uint64_t area = 0;
        int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
        for (size_t j = 0; j < s; j++)
            if (segs[j].id == segs[s].id)
                return -1;
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                if (ids[(size_t)y * w + x] == segs[s].id) {
                    area++;
                    x0 = x < x0 ? x : x0, y0 = y < y0 ? y : y0;
                    x1 = x > x1 ? x : x1, y1 = y > y1 ? y : y1;
                }
        if (segs[s].id == 0 || area == 0 || segs[s].area != (double)area || segs[s].bbox[0] != x0 ||
            segs[s].bbox[1] != y0 || segs[s].bbox[2] != x1 - x0 + 1 || segs[s].bbox[3] != y1 - y0 + 1)
            return -1;
        if (synth_category_index(segs[s].category_id) < 0)
            return -1;
        covered += (long)area;
    }
    return (long)w * h - covered;
}

static void test_render(check_tally *t) {
    synth_params with = {42, 96, 64, 1}, without = {42, 96, 64, 0}, other = {43, 96, 64, 1};
    size_t npix = 96 * 64;
    int pixels_agree = 1, pred_full = 1, pred_plain = 1;
    for (uint64_t id = 1; id <= 12; id++) {
        synth_image a, b, c, d;
        avps_error err;
        int ok = synth_image_render(&with, id, &a, &err) == 0 && synth_image_render(&with, id, &b, &err) == 0 &&
                 synth_image_render(&without, id, &c, &err) == 0 && synth_image_render(&other, id, &d, &err) == 0;
        CHECK(t, ok);
        if (!ok)
            return;
        CHECK(t, memcmp(a.gt_ids, b.gt_ids, npix * 4) == 0 && memcmp(a.pred_ids, b.pred_ids, npix * 4) == 0);
        CHECK(t, memcmp(a.gt_ids, c.gt_ids, npix * 4) == 0 && c.pred_ids == NULL && c.n_pred == 0);
        CHECK(t, a.n_gt == c.n_gt && memcmp(a.gt_segments, c.gt_segments, a.n_gt * sizeof *a.gt_segments) == 0);
        CHECK(t, memcmp(a.gt_ids, d.gt_ids, npix * 4) != 0);
        pixels_agree &= check_segments(a.gt_ids, 96, 64, a.gt_segments, a.n_gt) >= 0;
        pred_full &= check_segments(a.pred_ids, 96, 64, a.pred_segments, a.n_pred) == 0;
        for (size_t s = 0; s < a.n_pred; s++)
            pred_plain &= a.pred_segments[s].iscrowd == 0;
        synth_image_release(&a);
        synth_image_release(&b);
        synth_image_release(&c);
        synth_image_release(&d);
    }
    CHECK(t, pixels_agree);
    CHECK(t, pred_full);  /* predictions cover every pixel */
    CHECK(t, pred_plain); /* and have no crowds */
}

typedef struct {
    size_t crowds, crowd_stuff, void_images, small, medium, large, person, most_other;
    size_t per_class[SYNTH_CATEGORY_COUNT];
} world_tally;

static int tally_image(const synth_params *p, uint64_t id, world_tally *w) {
    synth_image img;
    avps_error err;
    if (synth_image_render(p, id, &img, &err) != 0)
        return -1;
    long void_px = check_segments(img.gt_ids, p->width, p->height, img.gt_segments, img.n_gt);
    w->void_images += void_px > 0;
    for (size_t s = 0; s < img.n_gt; s++) {
        const pan_segment *g = &img.gt_segments[s];
        int c = synth_category_index(g->category_id);
        int thing = c >= 0 && synth_category_at((size_t)c)->isthing;
        w->crowds += (size_t)g->iscrowd;
        w->crowd_stuff += (size_t)(g->iscrowd && !thing);
        if (c >= 0 && thing && !g->iscrowd) {
            w->per_class[c]++;
            w->small += g->area < 32 * 32;
            w->medium += g->area >= 32 * 32 && g->area < 96 * 96;
            w->large += g->area >= 96 * 96;
        }
    }
    synth_image_release(&img);
    return void_px < 0 ? -1 : 0;
}

/* A mid-sized world at COCO's image size has crowds, VOID, things of every COCO size
 * range, and person (COCO's commonest class) well ahead of every other class. */
static void test_world_spread(check_tally *t) {
    synth_params p = {1, 640, 480, 0};
    world_tally *w = calloc(1, sizeof *w);
    int ok = w != NULL;
    for (uint64_t id = 1; ok && id <= 60; id++)
        ok = tally_image(&p, id, w) == 0;
    CHECK(t, ok);
    if (!ok) {
        free(w);
        return;
    }
    size_t person = w->per_class[synth_category_index(1)], most_other = 0;
    for (size_t c = 0; c < SYNTH_CATEGORY_COUNT; c++)
        if (synth_category_at(c)->id != 1 && w->per_class[c] > most_other)
            most_other = w->per_class[c];
    CHECK(t, w->crowds > 0 && w->crowd_stuff == 0);
    CHECK(t, w->void_images > 0);
    CHECK(t, w->small > 0 && w->medium > 0 && w->large > 0);
    CHECK(t, person > 2 * most_other);
    free(w);
}

int main(void) {
    check_tally t = {0, 0};
    test_known_categories(&t);
    test_category_table(&t);
    test_split_ids(&t);
    test_render(&t);
    test_world_spread(&t);
    return check_report(&t);
}
