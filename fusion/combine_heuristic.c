/* combine_heuristic.c: panopticapi's heuristic combination of instance and semantic
 * predictions (combine_semantic_and_instance_predictions.py, after section 7 of the
 * panoptic segmentation paper) for one image, on RLE masks. The rules, and where we
 * choose differently from the reference, are in docs/algorithms.md. */
#include "fusion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Segment ids are PNG colours: 24 bits, 0 being VOID. */
#define MAX_SEGMENT_ID 0xFFFFFFu

void combine_params_default(combine_params *p) {
    for (int e = 0; e < FUSION_MAX_ENDS; e++)
        p->confidence_thr[e] = 0.5;
    p->overlap_thr = 0.5;
    p->stuff_area_limit = 64 * 64;
}

/* 1 thing, 0 stuff, -1 unknown. Categories are few: a scan is enough. */
static int category_isthing(const combine_input *in, int32_t category_id) {
    for (size_t c = 0; c < in->n_categories; c++)
        if (in->categories[c].id == category_id)
            return in->categories[c].isthing != 0;
    return -1;
}

static int check_mask(const combine_input *in, const rle_mask *m, const char *what, size_t i, avps_error *err) {
    if (mask_check(m, in->h, in->w) != 0)
        return avps_fail(err, "image %s: %s %zu: the mask is not %u x %u (its size, or runs that do not add up)",
                         in->image_id, what, i, in->h, in->w);
    return 0;
}

static int check_inputs(const combine_input *in, avps_error *err) {
    for (size_t i = 0; i < in->n_instances; i++) {
        const fusion_instance *x = &in->instances[i];
        if (check_mask(in, &x->mask, "instance", i, err) != 0)
            return -1;
        if (category_isthing(in, x->category_id) < 0)
            return avps_fail(err, "image %s: instance %zu: unknown category %d", in->image_id, i, x->category_id);
        if (x->end < 0 || x->end >= FUSION_MAX_ENDS)
            return avps_fail(err, "image %s: instance %zu: network end %d is not in 0..%d", in->image_id, i, x->end,
                             FUSION_MAX_ENDS - 1);
        if (isnan(x->score))
            return avps_fail(err, "image %s: instance %zu: the score is not a number", in->image_id, i);
    }
    for (size_t i = 0; i < in->n_stuff; i++) {
        if (check_mask(in, &in->stuff[i].mask, "semantic segment", i, err) != 0)
            return -1;
        if (category_isthing(in, in->stuff[i].category_id) < 0)
            return avps_fail(err, "image %s: semantic segment %zu: unknown category %d", in->image_id, i,
                             in->stuff[i].category_id);
    }
    return 0;
}

/* ---- paste order of the instances ----------------------------------------------------- */

typedef struct {
    double score;
    size_t index;
} scored_index;

/* Highest score first; ties keep the caller's order, as Python's stable sort does. */
static int scored_index_cmp(const void *a, const void *b) {
    const scored_index *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static scored_index *instances_by_score(const combine_input *in) {
    scored_index *order = malloc((in->n_instances + 1) * sizeof *order);
    if (!order)
        return NULL;
    for (size_t i = 0; i < in->n_instances; i++)
        order[i] = (scored_index){in->instances[i].score, i};
    qsort(order, in->n_instances, sizeof *order, scored_index_cmp);
    return order;
}

/* ---- the result under construction ------------------------------------------------------ */

typedef struct {
    const combine_input *in;
    fusion_panoptic *out;
    size_t cap;
    rle_mask used; /* every pixel pasted so far */
} combine_state;

/* panopticapi names a stuff segment by its category's colour, so two segments of one
 * stuff category in an image share an id: one segment. We merge them the same way. */
static long stuff_segment_of(const combine_state *st, int32_t category_id) {
    for (size_t s = 0; s < st->out->n_segments; s++)
        if (st->out->segments[s].category_id == category_id)
            return (long)s;
    return -1;
}

static int append_segment(combine_state *st, int32_t category_id, rle_mask *pixels, avps_error *err) {
    fusion_panoptic *out = st->out;
    if (out->n_segments >= MAX_SEGMENT_ID)
        return avps_fail(err, "image %s: more than %u segments", st->in->image_id, MAX_SEGMENT_ID);
    if (out->n_segments == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 16;
        pan_segment *segs = realloc(out->segments, cap * sizeof *segs);
        if (segs)
            out->segments = segs;
        rle_mask *masks = segs ? realloc(out->masks, cap * sizeof *masks) : NULL;
        if (!masks)
            return avps_fail(err, "image %s: out of memory", st->in->image_id);
        out->masks = masks;
        st->cap = cap;
    }
    size_t s = out->n_segments++;
    memset(&out->segments[s], 0, sizeof out->segments[s]);
    out->segments[s].id = (uint32_t)s + 1;
    out->segments[s].category_id = category_id;
    out->masks[s] = *pixels;
    *pixels = (rle_mask){0};
    return 0;
}

/* Takes ownership of pixels (not empty, disjoint from everything pasted). */
static int paste(combine_state *st, int32_t category_id, int isthing, rle_mask *pixels, avps_error *err) {
    rle_mask used;
    if (mask_union(&st->used, pixels, &used) != 0) {
        rle_free(pixels);
        return avps_fail(err, "image %s: out of memory", st->in->image_id);
    }
    rle_free(&st->used);
    st->used = used;
    long s = isthing ? -1 : stuff_segment_of(st, category_id);
    if (s < 0) {
        int rc = append_segment(st, category_id, pixels, err);
        rle_free(pixels);
        return rc;
    }
    rle_mask merged;
    int rc = mask_union(&st->out->masks[s], pixels, &merged);
    rle_free(pixels);
    if (rc != 0)
        return avps_fail(err, "image %s: out of memory", st->in->image_id);
    rle_free(&st->out->masks[s]);
    st->out->masks[s] = merged;
    return 0;
}

/* ---- the two stages ------------------------------------------------------------------- */

/* Instances by score: dropped below their end's threshold, when empty, or when more
 * than overlap_thr of their area is taken; the rest pastes its pixels not yet taken. */
static int paste_instance(combine_state *st, const combine_params *p, const fusion_instance *x, avps_error *err) {
    if (x->score < p->confidence_thr[x->end])
        return 0;
    uint64_t area = rle_area(&x->mask);
    if (area == 0)
        return 0;
    rle_mask left;
    if (mask_minus(&x->mask, &st->used, &left) != 0)
        return avps_fail(err, "image %s: out of memory", st->in->image_id);
    uint64_t left_area = rle_area(&left), intersect = area - left_area;
    /* panopticapi keeps a segment with nothing left (possible only when overlap_thr >=
     * 1); an empty segment would break pq_compute, so we drop it. */
    if ((double)intersect / (double)area > p->overlap_thr || left_area == 0) {
        rle_free(&left);
        return 0;
    }
    return paste(st, x->category_id, category_isthing(st->in, x->category_id), &left, err);
}

/* Semantic candidates in order: thing categories are skipped (their pixels stay VOID
 * unless an instance covers them); a stuff candidate keeps its pixels not yet taken
 * when they are at least stuff_area_limit (and not none). */
static int paste_stuff(combine_state *st, const combine_params *p, const fusion_stuff *s, avps_error *err) {
    if (category_isthing(st->in, s->category_id) != 0)
        return 0;
    rle_mask left;
    if (mask_minus(&s->mask, &st->used, &left) != 0)
        return avps_fail(err, "image %s: out of memory", st->in->image_id);
    uint64_t left_area = rle_area(&left);
    if (left_area < p->stuff_area_limit || left_area == 0) {
        rle_free(&left);
        return 0;
    }
    return paste(st, s->category_id, 0, &left, err);
}

static void finish_segments(fusion_panoptic *out) {
    for (size_t s = 0; s < out->n_segments; s++) {
        double box[4];
        rle_bbox(&out->masks[s], box);
        out->segments[s].area = (double)rle_area(&out->masks[s]);
        for (int k = 0; k < 4; k++)
            out->segments[s].bbox[k] = (int32_t)box[k];
    }
}

static int combine_stages(combine_state *st, const combine_params *p, avps_error *err) {
    const combine_input *in = st->in;
    scored_index *order = instances_by_score(in);
    if (!order || mask_none(in->h, in->w, &st->used) != 0) {
        free(order);
        return avps_fail(err, "image %s: out of memory", in->image_id);
    }
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < in->n_instances; k++)
        rc = paste_instance(st, p, &in->instances[order[k].index], err);
    for (size_t k = 0; rc == 0 && k < in->n_stuff; k++)
        rc = paste_stuff(st, p, &in->stuff[k], err);
    free(order);
    return rc;
}

int combine_heuristic(const combine_params *p, const combine_input *in, fusion_panoptic *out, avps_error *err) {
    *out = (fusion_panoptic){.h = in->h, .w = in->w};
    if (check_inputs(in, err) != 0)
        return -1;
    combine_state st = {in, out, 0, {0}};
    int rc = combine_stages(&st, p, err);
    rle_free(&st.used);
    if (rc != 0) {
        fusion_panoptic_release(out);
        return -1;
    }
    finish_segments(out);
    return 0;
}

void fusion_panoptic_release(fusion_panoptic *pan) {
    for (size_t s = 0; s < pan->n_segments; s++)
        rle_free(&pan->masks[s]);
    free(pan->masks);
    free(pan->segments);
    *pan = (fusion_panoptic){.h = pan->h, .w = pan->w};
}

void fusion_panoptic_paint(const fusion_panoptic *pan, uint32_t *ids) {
    memset(ids, 0, (size_t)pan->h * pan->w * sizeof *ids);
    for (size_t s = 0; s < pan->n_segments; s++)
        mask_paint(&pan->masks[s], pan->segments[s].id, ids);
}

int fusion_panoptic_write_png(const fusion_panoptic *pan, const char *dir, const char *name, avps_error *err) {
    uint32_t *ids = malloc((size_t)pan->h * pan->w * sizeof *ids + 1);
    char *path = path_join(dir, name);
    int rc = ids && path ? dir_create(dir, err) : avps_fail(err, "out of memory");
    if (rc == 0) {
        fusion_panoptic_paint(pan, ids);
        rc = png_write_ids(path, pan->w, pan->h, ids, err);
    }
    free(ids);
    free(path);
    return rc;
}
