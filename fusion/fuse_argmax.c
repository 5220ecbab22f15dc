/* fuse_argmax.c: the SS argmax label maps of one image, each end's alone and the
 * weighted average's, from one upsampling of each end per row. `avps run` needs all
 * three (each end's panoptic result, the fusion's, and the mIoU of each); made one by
 * one they cost six upsamplings of 133 channels per image instead of two. The sums and
 * comparisons are those of fused_ss_row and fusion_run's argmax, in the same order, so
 * the maps are bit for bit what fusion_run would compute for itself. */
#include "fuse_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ss_sampler *sampler;
    float *row;        /* channels x w: the end's probabilities of the row */
    uint32_t channels;
    long *channel_of;  /* per category: the end's channel for it, or -1 */
    float weight;      /* normalised, as fused_ss_new makes it; 0: not in the average */
} argmax_end;

typedef struct {
    size_t n_ends, n_categories;
    uint32_t w;
    argmax_end end[FUSION_MAX_ENDS];
    float *best;       /* w: the running maximum */
} argmax_state;

void fuse_argmax_reset(uint32_t w, float *best, uint32_t *labels) {
    for (uint32_t x = 0; x < w; x++) {
        best[x] = 0;
        labels[x] = FUSE_LABEL_NONE;
    }
}

/* Branch-free, so the loop vectorises; a pixel compares its values in the order of the
 * calls, exactly as a loop over categories per pixel would. */
void fuse_argmax_take(const float *v, uint32_t label, uint32_t w, float *best, uint32_t *labels) {
    for (uint32_t x = 0; x < w; x++) {
        int above = v[x] > best[x];
        best[x] = above ? v[x] : best[x];
        labels[x] = above ? label : labels[x];
    }
}

static void state_free(argmax_state *st) {
    for (size_t e = 0; e < st->n_ends; e++) {
        ss_sampler_free(st->end[e].sampler);
        free(st->end[e].row);
        free(st->end[e].channel_of);
    }
    free(st->best);
}

static int end_init(argmax_end *a, const fusion_input *in, size_t e, float weight, avps_error *err) {
    const ss_map *ss = &in->ends[e].out->ss;
    if (fuse_check_end_ss(in, e, err) != 0)
        return -1;
    a->channels = ss->channels;
    a->weight = weight;
    a->row = malloc((size_t)ss->channels * in->w * sizeof *a->row + 1);
    a->channel_of = malloc((in->n_categories + 1) * sizeof *a->channel_of);
    if (!a->row || !a->channel_of)
        return avps_fail(err, "image %s: out of memory", in->image_id);
    fuse_end_channels(in, e, a->channel_of);
    if (!(a->sampler = ss_sampler_new(ss, in->w, err)))
        return avps_prefix(err, "image %s: end %zu", in->image_id, e);
    return 0;
}

static int state_init(argmax_state *st, const fusion_input *in, avps_error *err) {
    double total;
    memset(st, 0, sizeof *st);
    st->n_categories = in->n_categories;
    st->w = in->w;
    if (fuse_check_input(in, err) != 0 || fuse_check_weights(in, &total, err) != 0)
        return -1;
    st->best = malloc(in->w * sizeof *st->best);
    if (!st->best)
        return avps_fail(err, "image %s: out of memory", in->image_id);
    for (size_t e = 0; e < in->n_ends; e++) {
        st->n_ends = e + 1;
        if (end_init(&st->end[e], in, e, fuse_end_weight(in, e, total), err) != 0)
            return -1;
    }
    return 0;
}

/* The weighted average as fused_ss_row sums it (0, then each end with a weight, in end
 * order), one category at a time, into the argmax: one pass over the row per category
 * rather than fused_ss_row's clear, adds and argmax, with the same operations per pixel.
 * A category no weighted end has is 0 everywhere and never beats the running maximum,
 * which starts at 0. */
static void fused_row(argmax_state *st, uint32_t *labels) {
    uint32_t w = st->w;
    float *best = st->best;
    fuse_argmax_reset(w, best, labels);
    for (size_t k = 0; k < st->n_categories; k++) {
        const float *src[FUSION_MAX_ENDS];
        float wt[FUSION_MAX_ENDS];
        size_t n = 0;
        for (size_t e = 0; e < st->n_ends; e++) {
            const argmax_end *a = &st->end[e];
            if (a->weight != 0 && a->channel_of[k] >= 0)
                src[n] = a->row + (size_t)a->channel_of[k] * w, wt[n++] = a->weight;
        }
        for (uint32_t x = 0; n > 0 && x < w; x++) {
            float v = 0;
            for (size_t i = 0; i < n; i++)
                v += wt[i] * src[i][x];
            if (v > best[x])
                best[x] = v, labels[x] = (uint32_t)k;
        }
    }
}

/* An end alone: fusion_run's fused row would be 0 + 1 * p, which compares as p does
 * (-0 and +0 alike), read in category order. */
static void end_row(const argmax_state *st, const argmax_end *a, float *best, uint32_t *labels) {
    fuse_argmax_reset(st->w, best, labels);
    for (size_t k = 0; k < st->n_categories; k++)
        if (a->channel_of[k] >= 0)
            fuse_argmax_take(a->row + (size_t)a->channel_of[k] * st->w, (uint32_t)k, st->w, best, labels);
}

void fusion_labels_release(fusion_labels *l) {
    for (size_t e = 0; e < FUSION_MAX_ENDS; e++)
        free(l->end[e]);
    free(l->fused);
    memset(l, 0, sizeof *l);
}

/* Every category at every pixel: for label-map ends, which have no bounds to prune by. */
int fuse_labels_full(const fusion_input *in, fusion_labels *out, avps_error *err) {
    argmax_state st;
    int rc = state_init(&st, in, err);
    for (uint32_t y = 0; rc == 0 && y < in->h; y++) {
        size_t at = (size_t)y * in->w;
        for (size_t e = 0; e < st.n_ends; e++) {
            ss_sampler_row(st.end[e].sampler, y, st.end[e].row);
            end_row(&st, &st.end[e], st.best, out->end[e] + at);
        }
        fused_row(&st, out->fused + at);
    }
    state_free(&st);
    return rc;
}

int fusion_labels_make(const fusion_input *in, fusion_labels *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    int rc = fuse_check_input(in, err);
    size_t npix = (size_t)in->h * in->w;
    out->h = in->h, out->w = in->w, out->n_ends = in->n_ends;
    for (size_t e = 0; rc == 0 && e < in->n_ends; e++)
        if (!(out->end[e] = malloc(npix * sizeof *out->end[e] + 1)))
            rc = avps_fail(err, "image %s: out of memory", in->image_id);
    if (rc == 0 && !(out->fused = malloc(npix * sizeof *out->fused + 1)))
        rc = avps_fail(err, "image %s: out of memory", in->image_id);
    if (rc == 0)
        rc = fuse_prune_applies(in) ? fuse_labels_pruned(in, out, err) : fuse_labels_full(in, out, err);
    if (rc != 0)
        fusion_labels_release(out);
    return rc;
}
