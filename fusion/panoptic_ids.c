/* panoptic_ids.c: segment ids that show the segmentation to the eye. A panoptic PNG holds
 * ids as colours, so ids 1, 2, 3 look black; panopticapi's IdGenerator instead gives a
 * stuff segment its category's colour and a thing segment its category's colour the first
 * time, then a copy jittered by up to 30 per channel that no other segment of the image
 * (nor any stuff category) has. We draw the jitter from a fixed-seed generator instead of
 * numpy's global one, so that a result stays a pure function of its inputs; and a second
 * stuff segment of one category (which IdGenerator would give a repeated id) is jittered
 * like a thing. */
#include "fusion.h"

#include <stdlib.h>
#include <string.h>

#define JITTER 30
#define JITTER_TRIES 1000

/* An open-addressing set of ids (0 marks an empty slot: id 0 is VOID, always taken). */
typedef struct {
    uint32_t *slot;
    size_t mask;
} id_set;

static int id_set_init(id_set *s, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    s->slot = calloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
    return s->slot ? 0 : -1;
}

/* Adds id; 1 when it was new, 0 when already there. */
static int id_set_add(id_set *s, uint32_t id) {
    if (id == 0)
        return 0;
    size_t i = (id * 2654435761u) & s->mask;
    while (s->slot[i] && s->slot[i] != id)
        i = (i + 1) & s->mask;
    if (s->slot[i])
        return 0;
    s->slot[i] = id;
    return 1;
}

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t jittered(const uint8_t base[3], uint64_t *state) {
    uint8_t rgb[3];
    uint64_t r = next_random(state);
    for (int k = 0; k < 3; k++) {
        int v = base[k] + (int)((r >> (16 * k)) % (2 * JITTER + 1)) - JITTER;
        rgb[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return rgb_to_id(rgb);
}

/* A colour no segment has yet: near base when one is free, else the first free id. */
static uint32_t free_id(id_set *taken, const uint8_t base[3], uint64_t *state) {
    for (int t = 0; t < JITTER_TRIES; t++) {
        uint32_t id = jittered(base, state);
        if (id_set_add(taken, id))
            return id;
    }
    for (uint32_t id = 1; id <= 0xFFFFFFu; id++)
        if (id_set_add(taken, id))
            return id;
    return 0;
}

static const pan_category *category_of(const pan_category *cats, size_t n, int32_t id) {
    for (size_t k = 0; k < n; k++)
        if (cats[k].id == id)
            return &cats[k];
    return NULL;
}

int fusion_panoptic_color_ids(fusion_panoptic *pan, const pan_category *cats, size_t n_cats, const char *image_id,
                              avps_error *err) {
    id_set taken;
    if (id_set_init(&taken, pan->n_segments + n_cats) != 0)
        return avps_fail(err, "image %s: out of memory", image_id);
    uint8_t rgb[3];
    for (size_t k = 0; k < n_cats; k++)
        if (!cats[k].isthing) {
            pan_category_color(&cats[k], rgb);
            id_set_add(&taken, rgb_to_id(rgb));
        }
    id_set used_stuff; /* stuff colours already given to a segment */
    if (id_set_init(&used_stuff, pan->n_segments) != 0) {
        free(taken.slot);
        return avps_fail(err, "image %s: out of memory", image_id);
    }
    uint64_t state = 0;
    int rc = 0;
    for (size_t s = 0; rc == 0 && s < pan->n_segments; s++) {
        const pan_category *c = category_of(cats, n_cats, pan->segments[s].category_id);
        if (!c) {
            rc = avps_fail(err, "image %s: segment %zu: category %d is not in the categories", image_id, s + 1,
                           pan->segments[s].category_id);
            break;
        }
        pan_category_color(c, rgb);
        uint32_t id = rgb_to_id(rgb);
        if (c->isthing ? !id_set_add(&taken, id) : (!id || !id_set_add(&used_stuff, id)))
            id = free_id(&taken, rgb, &state);
        if (!id)
            rc = avps_fail(err, "image %s: no colour left for segment %zu", image_id, s + 1);
        pan->segments[s].id = id;
    }
    free(taken.slot);
    free(used_stuff.slot);
    return rc;
}
