/* ensemble_ss.c: the semantic half of an ensemble: the weighted mean of the members'
 * class scores on the first member's grid, one output channel plane at a time.
 * Members on that grid (the common case: every UPS end shares it) are read cell by cell;
 * others are resampled to it as ss_sampler reads a grid (bilinear, align_corners=False,
 * clamped to the valid part; label maps nearest). */
#include "ensemble_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Where an output cell reads a member's grid along one axis. */
typedef struct {
    uint32_t i0, i1, nearest;
    float frac;
} grid_tap;

/* How one member is read. */
typedef struct {
    const ss_map *ss;
    float weight;
    uint32_t *channel;    /* per output channel: the member's channel of that category */
    int native;           /* the output's grid: read cell by cell */
    grid_tap *cols, *rows; /* otherwise: per output column and row */
    float *top, *sum;     /* logits read as probabilities: per member cell, the largest logit and sum of exp */
    const float *half;    /* every fp16 value as a float: a table is faster than decoding each */
} ss_member;

static void member_release(ss_member *m) {
    free(m->channel);
    free(m->cols);
    free(m->rows);
    free(m->top);
    free(m->sum);
}

/* Output cell index k along an axis of the output geometry (scale_o, offset_o) read on
 * a member's axis: both grids are related through image coordinates. */
static grid_tap tap_at(uint32_t k, double scale_o, double offset_o, double scale_m, double offset_m, uint32_t valid) {
    double x = (k + 0.5 - offset_o) / scale_o - 0.5; /* image coordinate, pixel centres at integers */
    double s = (x + 0.5) * scale_m + offset_m - 0.5;
    double near = floor((x + 0.5) * scale_m + offset_m);
    grid_tap t;
    if (s < 0)
        s = 0;
    if (s > valid - 1)
        s = valid - 1;
    t.i0 = (uint32_t)s;
    t.i1 = t.i0 + 1 < valid ? t.i0 + 1 : t.i0;
    t.frac = (float)(s - t.i0);
    t.nearest = near < 0 ? 0 : near >= valid ? valid - 1 : (uint32_t)near;
    return t;
}

static int same_geometry(const ss_map *a, const ss_map *b) {
    const ss_geometry *p = &a->geo, *q = &b->geo;
    return a->w == b->w && a->h == b->h && p->scale_x == q->scale_x && p->scale_y == q->scale_y &&
           p->offset_x == q->offset_x && p->offset_y == q->offset_y && p->valid_w == q->valid_w &&
           p->valid_h == q->valid_h;
}

static int ss_check(const ss_map *ss, const char *name, avps_error *err) {
    const ss_geometry *g = &ss->geo;
    if (!ss->channels || !ss->channel_category || (ss->kind == SS_LABELS ? !ss->labels : !ss->scores))
        return avps_fail(err, "member %s: no semantic segmentation", name);
    if (!g->valid_w || !g->valid_h || g->valid_w > ss->w || g->valid_h > ss->h || !(g->scale_x > 0) ||
        !(g->scale_y > 0) || !isfinite(g->offset_x) || !isfinite(g->offset_y))
        return avps_fail(err, "member %s: its %ux%u semantic grid has a broken geometry", name, ss->w, ss->h);
    return 0;
}

/* The largest logit and the sum of exp(logit - largest) of every cell, as ss_sampler's softmax. */
static void softmax_stats(ss_member *m) {
    const ss_map *ss = m->ss;
    size_t cells = (size_t)ss->w * ss->h;
    for (size_t i = 0; i < cells; i++) {
        float top = -INFINITY, sum = 0;
        for (uint32_t c = 0; c < ss->channels; c++)
            top = fmaxf(top, m->half[ss->scores[c * cells + i]]);
        for (uint32_t c = 0; c < ss->channels; c++)
            sum += expf(m->half[ss->scores[c * cells + i]] - top);
        m->top[i] = top, m->sum[i] = sum;
    }
}

static int member_init(ss_member *m, const ss_map *ss, const ss_map *ref, double weight, int out_logits,
                       const float *half, const char *name, const char *ref_name, avps_error *err) {
    memset(m, 0, sizeof *m);
    m->ss = ss, m->weight = (float)weight, m->half = half;
    if (ss_check(ss, name, err) != 0)
        return -1;
    if (ss->channels != ref->channels)
        return avps_fail(err, "member %s: %u semantic channels, member %s %u: their categories differ", name,
                         ss->channels, ref_name, ref->channels);
    size_t cells = (size_t)ss->w * ss->h;
    m->native = same_geometry(ss, ref);
    m->channel = malloc(ref->channels * sizeof *m->channel);
    if (!m->native) {
        m->cols = malloc(ref->w * sizeof *m->cols);
        m->rows = malloc(ref->h * sizeof *m->rows);
    }
    if (ss->kind == SS_LOGITS && !out_logits) {
        m->top = malloc(cells * sizeof *m->top + 1);
        m->sum = malloc(cells * sizeof *m->sum + 1);
    }
    if (!m->channel || (!m->native && (!m->cols || !m->rows)) || (ss->kind == SS_LOGITS && !out_logits && (!m->top || !m->sum)))
        return avps_fail(err, "out of memory");
    for (uint32_t c = 0; c < ref->channels; c++) {
        uint32_t k = 0;
        while (k < ss->channels && ss->channel_category[k] != ref->channel_category[c])
            k++;
        if (k == ss->channels)
            return avps_fail(err, "member %s has no semantic channel for category %d, which member %s has", name,
                             ref->channel_category[c], ref_name);
        m->channel[c] = k;
    }
    const ss_geometry *o = &ref->geo, *g = &ss->geo;
    for (uint32_t u = 0; !m->native && u < ref->w; u++)
        m->cols[u] = tap_at(u, o->scale_x, o->offset_x, g->scale_x, g->offset_x, g->valid_w);
    for (uint32_t v = 0; !m->native && v < ref->h; v++)
        m->rows[v] = tap_at(v, o->scale_y, o->offset_y, g->scale_y, g->offset_y, g->valid_h);
    if (m->top)
        softmax_stats(m);
    return 0;
}

/* Member channel k at member cell i: a logit (out_logits), else a probability. */
static float member_value(const ss_member *m, uint32_t k, size_t i) {
    const ss_map *ss = m->ss;
    if (ss->kind == SS_LABELS)
        return ss->labels[i] == k ? 1.0f : 0.0f;
    float v = m->half[ss->scores[(size_t)k * ss->w * ss->h + i]];
    return m->top ? expf(v - m->top[i]) / m->sum[i] : v;
}

/* Adds the member's weighted channel k, read on the output grid, to plane. */
static void member_add(const ss_member *m, uint32_t k, uint32_t w, uint32_t h, float *plane) {
    const ss_map *ss = m->ss;
    if (m->native && ss->kind != SS_LABELS && !m->top) { /* the common case, kept tight */
        const uint16_t *src = ss->scores + (size_t)k * w * h;
        for (size_t i = 0; i < (size_t)w * h; i++)
            plane[i] += m->weight * m->half[src[i]];
        return;
    }
    if (m->native) {
        for (size_t i = 0; i < (size_t)w * h; i++)
            plane[i] += m->weight * member_value(m, k, i);
        return;
    }
    for (uint32_t v = 0; v < h; v++) {
        const grid_tap *r = &m->rows[v];
        for (uint32_t u = 0; u < w; u++) {
            const grid_tap *c = &m->cols[u];
            float value;
            if (ss->kind == SS_LABELS) {
                value = member_value(m, k, (size_t)r->nearest * ss->w + c->nearest);
            } else { /* rows first, then columns, as ss_sampler_row */
                size_t top = (size_t)r->i0 * ss->w, bottom = (size_t)r->i1 * ss->w;
                float left = member_value(m, k, top + c->i0) * (1 - r->frac) + member_value(m, k, bottom + c->i0) * r->frac;
                float right = member_value(m, k, top + c->i1) * (1 - r->frac) + member_value(m, k, bottom + c->i1) * r->frac;
                value = left * (1 - c->frac) + right * c->frac;
            }
            plane[(size_t)v * w + u] += m->weight * value;
        }
    }
}

int ensemble_ss_merge(const head_output *members, const double *weights, const char *const *names, size_t n,
                      ss_map *out, avps_error *err) {
    const ss_map *ref = &members[0].ss;
    if (ss_check(ref, names[0], err) != 0)
        return -1;
    int out_logits = 1;
    for (size_t i = 0; i < n; i++)
        out_logits &= members[i].ss.kind == SS_LOGITS;
    ss_member *m = calloc(n, sizeof *m);
    size_t cells = (size_t)ref->w * ref->h;
    float *plane = malloc(cells * sizeof *plane + 1), *half = malloc(65536 * sizeof *half);
    *out = (ss_map){out_logits ? SS_LOGITS : SS_PROBS, ref->channels, ref->h, ref->w, NULL, NULL, NULL, ref->geo};
    out->channel_category = malloc(ref->channels * sizeof *out->channel_category);
    out->scores = malloc(cells * ref->channels * sizeof *out->scores + 1);
    int rc = m && plane && half && out->channel_category && out->scores ? 0 : avps_fail(err, "out of memory");
    for (uint32_t v = 0; rc == 0 && v < 65536; v++)
        half[v] = float_from_half((uint16_t)v);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = member_init(&m[i], &members[i].ss, ref, weights[i], out_logits, half, names[i], names[0], err);
    if (rc == 0)
        memcpy(out->channel_category, ref->channel_category, ref->channels * sizeof *out->channel_category);
    for (uint32_t c = 0; rc == 0 && c < ref->channels; c++) {
        memset(plane, 0, cells * sizeof *plane);
        for (size_t i = 0; i < n; i++) /* members in a fixed order: the same sums everywhere */
            member_add(&m[i], m[i].channel[c], ref->w, ref->h, plane);
        uint16_t *dst = out->scores + c * cells;
        for (size_t k = 0; k < cells; k++)
            dst[k] = half_from_float(plane[k]);
    }
    for (size_t i = 0; m && i < n; i++)
        member_release(&m[i]);
    free(m);
    free(plane);
    free(half);
    return rc;
}
