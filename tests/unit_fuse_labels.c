/* unit_fuse_labels.c: fusion_labels_make's argmax maps against the plain argmax over
 * every category of ss_sampler_row's rows, computed here, on random ends made to defeat
 * pruning: near ties (values one fp16 step apart, and equal ones, whose tie must go to
 * the first category), cells where everything is 0, NaN and infinite scores and logits,
 * different grids and geometries per end (stretched, padded, offset, upsampled and
 * downsampled), channels in their own order and missing categories, weights of 0. */
#include "../fusion/fusion.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_CATS 40
#define N_ENDS 3

typedef struct {
    uint64_t state;
} rng;

static uint32_t rng_next(rng *r) {
    r->state = r->state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(r->state >> 33);
}

static uint32_t rng_below(rng *r, uint32_t n) {
    return rng_next(r) % n;
}

/* A score drawn to make ties: a few levels, so that many cells share values exactly or
 * one fp16 step apart; now and then 0, a non-finite value or a random one. */
static float draw_score(rng *r, int nonfinite, int logits) {
    uint32_t k = rng_below(r, 100);
    if (nonfinite && k < 2)
        return k == 0 ? NAN : (rng_below(r, 2) ? INFINITY : -INFINITY);
    if (k < 10)
        return 0;
    float base = logits ? 2.0f : 0.25f;
    uint16_t h = half_from_float(base);
    if (k < 60)
        return float_from_half((uint16_t)(h + rng_below(r, 3))); /* 0, 1 or 2 fp16 steps up */
    return logits ? (float)rng_below(r, 1000) / 100.0f - 5 : (float)rng_below(r, 1000) / 1000.0f;
}

static void make_end(head_output *o, rng *r, uint32_t w, uint32_t h, int nonfinite, int32_t *cats_all) {
    memset(o, 0, sizeof *o);
    o->width = w, o->height = h;
    uint32_t gw = 1 + rng_below(r, w + 3), gh = 1 + rng_below(r, h + 3);
    uint32_t channels = 1 + rng_below(r, N_CATS);
    /* a random subset of the categories, in a random order */
    int32_t perm[N_CATS];
    memcpy(perm, cats_all, sizeof perm);
    for (uint32_t i = N_CATS - 1; i > 0; i--) {
        uint32_t j = rng_below(r, i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int logits = rng_below(r, 3) == 0;
    uint32_t pad = rng_below(r, 3);
    o->ss = (ss_map){.kind = logits ? SS_LOGITS : SS_PROBS, .channels = channels, .h = gh + pad, .w = gw + pad};
    o->ss.channel_category = malloc(channels * sizeof *o->ss.channel_category);
    memcpy(o->ss.channel_category, perm, channels * sizeof *perm);
    size_t n = (size_t)channels * o->ss.h * o->ss.w;
    o->ss.scores = malloc(n * sizeof *o->ss.scores);
    for (size_t i = 0; i < n; i++)
        o->ss.scores[i] = half_from_float(draw_score(r, nonfinite, logits));
    o->ss.geo = ss_geometry_stretch(gw, gh, w, h);
    if (rng_below(r, 2)) { /* a network's geometry: a scale, an offset, padding never read */
        o->ss.geo.offset_x = (double)rng_below(r, 5) / 10;
        o->ss.geo.offset_y = (double)rng_below(r, 5) / 10;
    }
}

static void end_free(head_output *o) {
    free(o->ss.channel_category);
    free(o->ss.scores);
}

/* The plain argmax over every category, from ss_sampler_row's rows; the fused average as
 * fusion_run takes it: 0, then each weighted end's value times its normalised weight. */
static int expected_maps(const fusion_input *in, uint32_t **end_maps, uint32_t *fused) {
    ss_sampler *s[N_ENDS] = {0};
    float *row[N_ENDS] = {0};
    long channel_of[N_ENDS][N_CATS];
    float weight[N_ENDS];
    double total = 0;
    avps_error err;
    int rc = 0;
    for (size_t e = 0; e < in->n_ends; e++)
        total += in->ends[e].ss_weight;
    for (size_t e = 0; e < in->n_ends; e++) {
        const ss_map *ss = &in->ends[e].out->ss;
        weight[e] = in->ends[e].ss_weight == 0 ? 0.0f : (float)(in->ends[e].ss_weight / total);
        s[e] = ss_sampler_new(ss, in->w, &err);
        row[e] = malloc((size_t)ss->channels * in->w * sizeof *row[e]);
        rc |= !s[e] || !row[e];
        for (size_t k = 0; k < N_CATS; k++)
            channel_of[e][k] = -1;
        for (uint32_t c = 0; c < ss->channels; c++)
            channel_of[e][ss->channel_category[c] - 1] = c;
    }
    for (uint32_t y = 0; rc == 0 && y < in->h; y++) {
        for (size_t e = 0; e < in->n_ends; e++)
            ss_sampler_row(s[e], y, row[e]);
        for (uint32_t x = 0; x < in->w; x++) {
            for (size_t e = 0; e < in->n_ends; e++) {
                float best = 0;
                uint32_t label = FUSION_LABEL_NONE;
                for (uint32_t k = 0; k < N_CATS; k++) {
                    long c = channel_of[e][k];
                    if (c >= 0 && row[e][(size_t)c * in->w + x] > best)
                        best = row[e][(size_t)c * in->w + x], label = k;
                }
                end_maps[e][(size_t)y * in->w + x] = label;
            }
            float best = 0;
            uint32_t label = FUSION_LABEL_NONE;
            for (uint32_t k = 0; k < N_CATS; k++) {
                float v = 0;
                int any = 0;
                for (size_t e = 0; e < in->n_ends; e++)
                    if (weight[e] != 0 && channel_of[e][k] >= 0)
                        v += weight[e] * row[e][(size_t)channel_of[e][k] * in->w + x], any = 1;
                if (any && v > best)
                    best = v, label = k;
            }
            fused[(size_t)y * in->w + x] = label;
        }
    }
    for (size_t e = 0; e < in->n_ends; e++) {
        ss_sampler_free(s[e]);
        free(row[e]);
    }
    return rc;
}

/* One random case; returns the number of maps that differ (0 when all agree). */
static int random_case(rng *r, const pan_category *cats, int nonfinite, check_tally *t) {
    uint32_t w = 1 + rng_below(r, 37), h = 1 + rng_below(r, 29);
    size_t n_ends = 1 + rng_below(r, N_ENDS);
    int32_t ids[N_CATS];
    for (int k = 0; k < N_CATS; k++)
        ids[k] = cats[k].id;
    head_output out[N_ENDS];
    fusion_end ends[N_ENDS];
    int any_weight = 0;
    for (size_t e = 0; e < n_ends; e++) {
        make_end(&out[e], r, w, h, nonfinite, ids);
        ends[e] = (fusion_end){&out[e], (double)rng_below(r, 3)};
        any_weight |= ends[e].ss_weight != 0;
    }
    if (!any_weight)
        ends[0].ss_weight = 1;
    fusion_input in = {.image_id = "random", .h = h, .w = w, .ends = ends, .n_ends = n_ends,
                       .categories = cats, .n_categories = N_CATS};
    fusion_labels got;
    avps_error err;
    uint32_t *want_end[N_ENDS] = {0}, *want_fused = malloc((size_t)w * h * sizeof *want_fused);
    for (size_t e = 0; e < n_ends; e++)
        want_end[e] = malloc((size_t)w * h * sizeof *want_end[e]);
    int bad = 0;
    int made = fusion_labels_make(&in, &got, &err) == 0;
    CHECK(t, made);
    CHECK(t, expected_maps(&in, want_end, want_fused) == 0);
    if (made) {
        for (size_t e = 0; e < n_ends; e++)
            bad += memcmp(got.end[e], want_end[e], (size_t)w * h * sizeof *want_end[e]) != 0;
        bad += memcmp(got.fused, want_fused, (size_t)w * h * sizeof *want_fused) != 0;
        fusion_labels_release(&got);
    }
    for (size_t e = 0; e < n_ends; e++) {
        end_free(&out[e]);
        free(want_end[e]);
    }
    free(want_fused);
    return bad;
}

/* Half the cases with NaN and infinite scores, half without (where pruning prunes). */
static void test_random(check_tally *t, const pan_category *cats) {
    rng r = {12345};
    int disagree = 0, cases = 400;
    for (int i = 0; i < cases; i++)
        disagree += random_case(&r, cats, i % 2, t);
    CHECK(t, disagree == 0);
    if (disagree)
        fprintf(stderr, "%d maps of %d random cases differ from the plain argmax\n", disagree, cases);
}

/* A hand-made tie: two categories equal everywhere in one end, the second higher in a
 * corner cell only: pixels reading only equal corners go to the first. */
static void test_tie_goes_first(check_tally *t, const pan_category *cats) {
    head_output o;
    memset(&o, 0, sizeof o);
    o.width = 4, o.height = 1;
    int32_t ch[2] = {cats[3].id, cats[1].id}; /* channel 0 is category index 3, channel 1 index 1 */
    o.ss = (ss_map){.kind = SS_PROBS, .channels = 2, .h = 1, .w = 2};
    o.ss.channel_category = ch;
    uint16_t scores[4] = {half_from_float(0.5f), half_from_float(0.5f), half_from_float(0.5f), half_from_float(0.75f)};
    o.ss.scores = scores;
    o.ss.geo = ss_geometry_stretch(2, 1, 4, 1);
    fusion_end end = {&o, 1};
    fusion_input in = {.image_id = "tie", .h = 1, .w = 4, .ends = &end, .n_ends = 1, .categories = cats,
                       .n_categories = N_CATS};
    fusion_labels got;
    avps_error err;
    CHECK(t, fusion_labels_make(&in, &got, &err) == 0);
    /* x = 0 reads grid column 0 alone: 0.5 and 0.5, a tie, to index 1 (channel 1) */
    CHECK(t, got.end[0][0] == 1 && got.fused[0] == 1);
    /* x = 3 reads column 1 alone: 0.5 against 0.75 */
    CHECK(t, got.end[0][3] == 1 && got.fused[3] == 1);
    /* x = 1 samples between: 0.5 against 0.5625, index 1 */
    CHECK(t, got.end[0][1] == 1);
    fusion_labels_release(&got);
    /* the tie the other way: category index 3 higher, index 1 equal elsewhere */
    scores[1] = half_from_float(0.75f), scores[3] = half_from_float(0.5f);
    CHECK(t, fusion_labels_make(&in, &got, &err) == 0);
    CHECK(t, got.end[0][0] == 1 && got.end[0][3] == 3 && got.fused[3] == 3);
    fusion_labels_release(&got);
}

/* A category that is each end's only candidate, sure in one end but negative in the
 * other (a head's fp16 "probabilities" are not checked to be >= 0): the weighted average
 * is below 0 and no category wins, which only computing the values can tell. Also the
 * sure case: both ends positive, the category wins every pixel. */
static void test_sure_needs_every_end(check_tally *t, const pan_category *cats) {
    head_output o[2];
    int32_t ch[1] = {cats[0].id};
    uint16_t a[4], b[4];
    for (int i = 0; i < 4; i++)
        a[i] = half_from_float(0.25f), b[i] = half_from_float(-0.75f);
    for (int e = 0; e < 2; e++) {
        memset(&o[e], 0, sizeof o[e]);
        o[e].width = 4, o[e].height = 2;
        o[e].ss = (ss_map){.kind = SS_PROBS, .channels = 1, .h = 2, .w = 2, .channel_category = ch,
                           .scores = e ? b : a};
        o[e].ss.geo = ss_geometry_stretch(2, 2, 4, 2);
    }
    fusion_end ends[2] = {{&o[0], 1}, {&o[1], 1}};
    fusion_input in = {.image_id = "sure", .h = 2, .w = 4, .ends = ends, .n_ends = 2, .categories = cats,
                       .n_categories = N_CATS};
    fusion_labels got;
    avps_error err;
    CHECK(t, fusion_labels_make(&in, &got, &err) == 0);
    int none = 1, first = 1;
    for (int p = 0; p < 8; p++)
        none &= got.fused[p] == FUSION_LABEL_NONE && got.end[1][p] == FUSION_LABEL_NONE, first &= got.end[0][p] == 0;
    CHECK(t, none && first);
    fusion_labels_release(&got);
    for (int i = 0; i < 4; i++)
        b[i] = half_from_float(0.5f);
    CHECK(t, fusion_labels_make(&in, &got, &err) == 0);
    for (int p = 0; p < 8; p++)
        first &= got.fused[p] == 0 && got.end[1][p] == 0;
    CHECK(t, first);
    fusion_labels_release(&got);
}

int main(void) {
    check_tally t = {0, 0};
    pan_category cats[N_CATS];
    char names[N_CATS][16];
    for (int k = 0; k < N_CATS; k++) {
        snprintf(names[k], sizeof names[k], "c%d", k + 1);
        cats[k] = (pan_category){k + 1, k < N_CATS / 2, names[k], NULL, 0, {0}};
    }
    test_tie_goes_first(&t, cats);
    test_sure_needs_every_end(&t, cats);
    test_random(&t, cats);
    return check_report(&t);
}
