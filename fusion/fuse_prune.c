/* fuse_prune.c: fusion_labels_make's maps for ends whose SS are scores, reading at each
 * pixel only the categories that can win. A bilinear value lies between the smallest and
 * the largest of the four grid corners it reads (up to a few ulps), so within a grid cell
 * a category whose largest corner is below the best smallest corner by more than a
 * rounding margin can never be the argmax; most cells leave one or two of 133. Those that
 * remain are computed with ss_sampler_value, bit for bit ss_sampler_row's values, and
 * compared in category order as fuse_argmax.c does, so the maps are the same to the bit
 * (tests/unit_fuse.c compares the two on near ties, non-finite scores and geometries). */
#include "fuse_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Far above the rounding of two bilinear steps and a weighted sum of a few ends (a few
 * ulps of the largest corner, about 1e-7 of it), far below any real gap. */
#define PRUNE_MARGIN 1e-5f

/* A cell (or span) whose one candidate has every corner above this wins every pixel
 * outright: each bilinear step then sums non-negative products, one of them at least half
 * a corner times a normal weight, so the value is positive, the only test left (the
 * argmax starts at 0). No sampling is needed there. Far above float underflow. */
#define PRUNE_SURE 1e-20f
/* the weight an end needs for its positive term to stay a normal float (weights sum to 1) */
#define PRUNE_SURE_WEIGHT (1.0f / 1024)
#define SOLE_UNKNOWN FUSE_LABEL_NONE /* no sure winner: the candidates are computed */

typedef struct {
    ss_sampler *sampler;
    const float *lo, *hi;   /* the row's cell bounds, channels x cells */
    uint32_t cells;
    uint32_t *cell_of;      /* per image column */
    long *channel_of;       /* per category: the end's channel, or -1 */
    float weight;           /* normalised; 0: not in the average */
    uint32_t *cand_start;   /* cells + 1: where each cell's candidates start in cand */
    uint32_t *cand;         /* category indexes, ascending within a cell */
    float *rest_hi;         /* per cell: no other category's value is above it (>= 0) */
    uint32_t *sole;         /* per cell: the category that wins all its pixels, or SOLE_UNKNOWN */
} prune_end;

/* Image columns [x0, x1), over which every weighted end reads the same cell. */
typedef struct {
    uint32_t x0, x1;
    uint32_t cell[FUSION_MAX_ENDS];
} prune_span;

typedef struct {
    const char *image_id;
    size_t n_ends, n_categories;
    uint32_t w;
    prune_end end[FUSION_MAX_ENDS];
    prune_span *span;
    size_t n_spans;
    uint32_t *span_start;   /* n_spans + 1 */
    uint32_t *span_cand;    /* the fused average's candidates per span */
    uint32_t *span_sole;    /* per span: the fused average's sure winner, or SOLE_UNKNOWN */
} prune_state;

int fuse_prune_applies(const fusion_input *in) {
    for (size_t e = 0; e < in->n_ends; e++)
        if (in->ends[e].out->ss.kind == SS_LABELS)
            return 0;
    return 1;
}

static void state_free(prune_state *st) {
    for (size_t e = 0; e < st->n_ends; e++) {
        prune_end *a = &st->end[e];
        ss_sampler_free(a->sampler);
        free(a->cell_of);
        free(a->channel_of);
        free(a->cand_start);
        free(a->cand);
        free(a->rest_hi);
        free(a->sole);
    }
    free(st->span);
    free(st->span_start);
    free(st->span_cand);
    free(st->span_sole);
}

static int end_init(prune_end *a, const fusion_input *in, size_t e, float weight, avps_error *err) {
    const ss_map *ss = &in->ends[e].out->ss;
    if (fuse_check_end_ss(in, e, err) != 0)
        return -1;
    if (!(a->sampler = ss_sampler_new(ss, in->w, err)))
        return avps_prefix(err, "image %s: end %zu", in->image_id, e);
    a->weight = weight;
    a->cells = ss_sampler_cells(a->sampler);
    a->cell_of = malloc(in->w * sizeof *a->cell_of + 1);
    a->channel_of = malloc((in->n_categories + 1) * sizeof *a->channel_of);
    a->cand_start = malloc((a->cells + 1) * sizeof *a->cand_start);
    a->cand = malloc((size_t)ss->channels * a->cells * sizeof *a->cand + 1);
    a->rest_hi = malloc(a->cells * sizeof *a->rest_hi + 1);
    a->sole = malloc(a->cells * sizeof *a->sole + 1);
    if (!a->cell_of || !a->channel_of || !a->cand_start || !a->cand || !a->rest_hi || !a->sole)
        return avps_fail(err, "image %s: out of memory", in->image_id);
    for (uint32_t x = 0; x < in->w; x++)
        a->cell_of[x] = ss_sampler_cell(a->sampler, x);
    for (size_t k = 0; k < in->n_categories; k++)
        a->channel_of[k] = -1;
    for (uint32_t c = 0; c < ss->channels; c++)
        a->channel_of[fuse_category_index(in->categories, in->n_categories, ss->channel_category[c])] = c;
    return 0;
}

/* Spans of the row over which no weighted end changes cell: the same for every row. */
static int spans_init(prune_state *st, const char *image_id, avps_error *err) {
    st->span = malloc(st->w * sizeof *st->span + 1);
    if (!st->span)
        return avps_fail(err, "image %s: out of memory", image_id);
    for (uint32_t x = 0; x < st->w; x++) {
        prune_span cur = {x, x + 1, {0}};
        for (size_t e = 0; e < st->n_ends; e++)
            cur.cell[e] = st->end[e].cell_of[x];
        prune_span *last = st->n_spans ? &st->span[st->n_spans - 1] : NULL;
        if (last && memcmp(last->cell, cur.cell, sizeof cur.cell) == 0)
            last->x1 = x + 1;
        else
            st->span[st->n_spans++] = cur;
    }
    st->span_start = malloc((st->n_spans + 1) * sizeof *st->span_start);
    st->span_cand = malloc(st->n_spans * st->n_categories * sizeof *st->span_cand + 1);
    st->span_sole = malloc(st->n_spans * sizeof *st->span_sole + 1);
    if (!st->span_start || !st->span_cand || !st->span_sole)
        return avps_fail(err, "image %s: out of memory", image_id);
    return 0;
}

static int state_init(prune_state *st, const fusion_input *in, avps_error *err) {
    double total;
    memset(st, 0, sizeof *st);
    st->image_id = in->image_id;
    st->n_categories = in->n_categories;
    st->w = in->w;
    if (fuse_check_input(in, err) != 0 || fuse_check_weights(in, &total, err) != 0)
        return -1;
    for (size_t e = 0; e < in->n_ends; e++) {
        st->n_ends = e + 1;
        double wt = in->ends[e].ss_weight;
        if (end_init(&st->end[e], in, e, wt == 0 ? 0.0f : (float)(wt / total), err) != 0)
            return -1;
    }
    return spans_init(st, in->image_id, err);
}

static float finite_abs_max(float s, float a, float b) {
    if (isfinite(a) && fabsf(a) > s)
        s = fabsf(a);
    if (isfinite(b) && fabsf(b) > s)
        s = fabsf(b);
    return s;
}

/* Each cell's categories that can win end a's argmax alone, and the ceiling of the
 * others' values: at least 0, since a category the end lacks adds 0 to the average. */
static void end_candidates(prune_end *a, size_t n_categories) {
    uint32_t n = 0;
    for (uint32_t u = 0; u < a->cells; u++) {
        float best_lo = -INFINITY, scale = 0, rest = 0;
        for (size_t k = 0; k < n_categories; k++) {
            long c = a->channel_of[k];
            if (c < 0)
                continue;
            float lo = a->lo[(size_t)c * a->cells + u], hi = a->hi[(size_t)c * a->cells + u];
            best_lo = lo > best_lo ? lo : best_lo;
            scale = finite_abs_max(scale, lo, hi);
        }
        float floor_ = best_lo - PRUNE_MARGIN * (1 + scale);
        a->cand_start[u] = n;
        for (size_t k = 0; k < n_categories; k++) {
            long c = a->channel_of[k];
            if (c < 0)
                continue;
            float hi = a->hi[(size_t)c * a->cells + u];
            if (hi >= floor_)
                a->cand[n++] = (uint32_t)k;
            else
                rest = hi > rest ? hi : rest;
        }
        a->rest_hi[u] = rest;
        a->sole[u] = SOLE_UNKNOWN;
        if (n - a->cand_start[u] == 1) {
            uint32_t k = a->cand[n - 1];
            if (a->lo[(size_t)a->channel_of[k] * a->cells + u] > PRUNE_SURE)
                a->sole[u] = k;
        }
    }
    a->cand_start[a->cells] = n;
}

/* The weighted average's bounds of category k over a span: the weighted sums of the
 * ends' bounds, in end order. 0 when no weighted end has the category. */
static int fused_bounds(const prune_state *st, const prune_span *sp, size_t k, float *lo, float *hi, float *scale) {
    int any = 0;
    *lo = 0, *hi = 0;
    for (size_t e = 0; e < st->n_ends; e++) {
        const prune_end *a = &st->end[e];
        long c = a->channel_of[k];
        if (a->weight == 0 || c < 0)
            continue;
        float l = a->lo[(size_t)c * a->cells + sp->cell[e]], h = a->hi[(size_t)c * a->cells + sp->cell[e]];
        *lo += a->weight * l, *hi += a->weight * h;
        *scale = finite_abs_max(*scale, l, h);
        any = 1;
    }
    return any;
}

/* The union of the weighted ends' candidates over a span, ascending, into out. */
static uint32_t span_union(const prune_state *st, const prune_span *sp, uint32_t *out) {
    uint32_t at[FUSION_MAX_ENDS], end[FUSION_MAX_ENDS], n = 0;
    for (size_t e = 0; e < st->n_ends; e++) {
        const prune_end *a = &st->end[e];
        at[e] = a->cand_start[sp->cell[e]];
        end[e] = a->weight == 0 ? at[e] : a->cand_start[sp->cell[e] + 1];
    }
    for (;;) {
        uint32_t next = UINT32_MAX;
        for (size_t e = 0; e < st->n_ends; e++)
            if (at[e] < end[e] && st->end[e].cand[at[e]] < next)
                next = st->end[e].cand[at[e]];
        if (next == UINT32_MAX)
            return n;
        for (size_t e = 0; e < st->n_ends; e++)
            if (at[e] < end[e] && st->end[e].cand[at[e]] == next)
                at[e]++;
        out[n++] = next;
    }
}

/* A category that no weighted end keeps adds at most each end's ceiling of the others;
 * when that sum is below the best lower bound of the union, only the union can win, and
 * of it only those whose upper bound reaches that best. Otherwise (the ends disagree
 * and neither is sure) every category is weighed. */
static uint32_t span_candidates(const prune_state *st, const prune_span *sp, uint32_t *out) {
    uint32_t n = span_union(st, sp, out), kept = 0;
    float best_lo = -INFINITY, scale = 0, rest = 0, lo, hi;
    for (size_t e = 0; e < st->n_ends; e++) {
        const prune_end *a = &st->end[e];
        if (a->weight != 0)
            rest += a->weight * a->rest_hi[sp->cell[e]];
    }
    for (uint32_t i = 0; i < n; i++)
        if (fused_bounds(st, sp, out[i], &lo, &hi, &scale) && lo > best_lo)
            best_lo = lo;
    scale = finite_abs_max(scale, rest, rest);
    float floor_ = best_lo - PRUNE_MARGIN * (1 + scale);
    if (!(rest < floor_)) {
        for (size_t k = 0; k < st->n_categories; k++)
            if (fused_bounds(st, sp, k, &lo, &hi, &scale) && lo > best_lo)
                best_lo = lo;
        floor_ = best_lo - PRUNE_MARGIN * (1 + scale);
        for (size_t k = 0; k < st->n_categories; k++)
            if (fused_bounds(st, sp, k, &lo, &hi, &scale) && hi >= floor_)
                out[kept++] = (uint32_t)k;
        return kept;
    }
    for (uint32_t i = 0; i < n; i++)
        if (fused_bounds(st, sp, out[i], &lo, &hi, &scale) && hi >= floor_)
            out[kept++] = out[i];
    return kept;
}

/* Whether the weighted average of category k is positive at every pixel of the span:
 * every weighted end that has it is non-negative there (all four corners), and one of
 * them, of a weight that keeps its product normal, is above PRUNE_SURE. */
static int fused_sure(const prune_state *st, const prune_span *sp, uint32_t k) {
    int positive = 0;
    for (size_t e = 0; e < st->n_ends; e++) {
        const prune_end *a = &st->end[e];
        long c = a->channel_of[k];
        if (a->weight == 0 || c < 0)
            continue;
        float lo = a->lo[(size_t)c * a->cells + sp->cell[e]];
        if (!(lo >= 0))
            return 0;
        positive |= lo > PRUNE_SURE && a->weight >= PRUNE_SURE_WEIGHT;
    }
    return positive;
}

static void fused_candidates(prune_state *st) {
    uint32_t n = 0;
    for (size_t i = 0; i < st->n_spans; i++) {
        st->span_start[i] = n;
        uint32_t kept = span_candidates(st, &st->span[i], st->span_cand + n);
        st->span_sole[i] = kept == 1 && fused_sure(st, &st->span[i], st->span_cand[n]) ? st->span_cand[n] : SOLE_UNKNOWN;
        n += kept;
    }
    st->span_start[st->n_spans] = n;
}

/* As fuse_argmax_take over every category: best starts at 0, a value wins when above. */
static void end_row(const prune_end *a, uint32_t w, uint32_t *labels) {
    for (uint32_t x = 0; x < w; x++) {
        uint32_t u = a->cell_of[x], label = FUSE_LABEL_NONE;
        if (a->sole[u] != SOLE_UNKNOWN) {
            labels[x] = a->sole[u];
            continue;
        }
        float best = 0;
        for (uint32_t i = a->cand_start[u]; i < a->cand_start[u + 1]; i++) {
            float v = ss_sampler_value(a->sampler, (uint32_t)a->channel_of[a->cand[i]], x);
            if (v > best)
                best = v, label = a->cand[i];
        }
        labels[x] = label;
    }
}

/* As fuse_argmax.c's fused_row: 0, then each weighted end's value times its weight. */
static void fused_row(const prune_state *st, uint32_t *labels) {
    for (size_t i = 0; i < st->n_spans; i++)
        for (uint32_t x = st->span[i].x0; x < st->span[i].x1; x++) {
            uint32_t label = FUSE_LABEL_NONE;
            if (st->span_sole[i] != SOLE_UNKNOWN) {
                labels[x] = st->span_sole[i];
                continue;
            }
            float best = 0;
            for (uint32_t j = st->span_start[i]; j < st->span_start[i + 1]; j++) {
                uint32_t k = st->span_cand[j];
                float v = 0;
                for (size_t e = 0; e < st->n_ends; e++) {
                    const prune_end *a = &st->end[e];
                    if (a->weight != 0 && a->channel_of[k] >= 0)
                        v += a->weight * ss_sampler_value(a->sampler, (uint32_t)a->channel_of[k], x);
                }
                if (v > best)
                    best = v, label = k;
            }
            labels[x] = label;
        }
}

static int row_labels(prune_state *st, uint32_t y, fusion_labels *out, avps_error *err) {
    int changed = 0;
    for (size_t e = 0; e < st->n_ends; e++) {
        prune_end *a = &st->end[e];
        int rc = ss_sampler_at_row(a->sampler, y, &a->lo, &a->hi, err);
        if (rc < 0)
            return avps_prefix(err, "image %s: end %zu", st->image_id, e);
        if (rc == 1) {
            end_candidates(a, st->n_categories);
            changed = 1;
        }
    }
    if (changed)
        fused_candidates(st);
    size_t at = (size_t)y * st->w;
    for (size_t e = 0; e < st->n_ends; e++)
        end_row(&st->end[e], st->w, out->end[e] + at);
    fused_row(st, out->fused + at);
    return 0;
}

int fuse_labels_pruned(const fusion_input *in, fusion_labels *out, avps_error *err) {
    prune_state st;
    int rc = state_init(&st, in, err);
    for (uint32_t y = 0; rc == 0 && y < in->h; y++)
        rc = row_labels(&st, y, out, err);
    state_free(&st);
    return rc;
}
