/* unit_ensemble.c: the weighted ensemble on small hand-built head outputs whose answers
 * are worked out here: SS means of logits, probabilities and label maps, on one grid and
 * resampled; instance groups scored with a missing member as 0; NMS dropping a
 * duplicate; the top-100 cut; bad weights and mismatched members refused; the ensemble
 * as a head. */
#include "../ensemble/ensemble.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IMG 20 /* the test images are IMG x IMG */

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }
static double half_round(double v) { return float_from_half(half_from_float((float)v)); }

/* ---- building outputs ------------------------------------------------------------------ */

/* An SS of `channels` x h x w with the given categories and values (channel-major). */
static void ss_set(ss_map *ss, ss_kind kind, uint32_t channels, uint32_t h, uint32_t w, const int32_t *cats,
                   const double *values, ss_geometry geo) {
    *ss = (ss_map){kind, channels, h, w, malloc(channels * sizeof(int32_t)), NULL, NULL, geo};
    memcpy(ss->channel_category, cats, channels * sizeof(int32_t));
    size_t n = (size_t)channels * h * w;
    if (kind == SS_LABELS) {
        ss->labels = malloc((size_t)h * w * sizeof(uint16_t));
        for (size_t i = 0; i < (size_t)h * w; i++)
            ss->labels[i] = (uint16_t)values[i];
    } else {
        ss->scores = malloc(n * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++)
            ss->scores[i] = half_from_float((float)values[i]);
    }
}

/* A member output of w x h with no SS or instances yet. */
static void output_bare(head_output *o, uint32_t w, uint32_t h) {
    memset(o, 0, sizeof *o);
    o->width = w, o->height = h;
}

/* A member output of IMG x IMG with a flat 2-channel SS (categories 1, 2) and room for n instances. */
static void output_init(head_output *o, size_t n) {
    static const int32_t cats[2] = {1, 2};
    static const double flat[2] = {0.5, 0.5};
    output_bare(o, IMG, IMG);
    ss_set(&o->ss, SS_PROBS, 2, 1, 1, cats, flat, ss_geometry_stretch(1, 1, IMG, IMG));
    o->instances = calloc(n + 1, sizeof *o->instances);
}

/* Adds a binary instance covering columns [x0, x1) and rows [y0, y1). */
static void add_box_instance(head_output *o, int32_t cat, double score, int x0, int y0, int x1, int y1) {
    uint8_t m[IMG * IMG] = {0};
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            m[y * IMG + x] = 1;
    is_instance *inst = &o->instances[o->n_instances++];
    *inst = (is_instance){.category_id = cat, .score = score, .box = {x0, y0, x1, y1}};
    rle_encode(m, IMG, IMG, &inst->mask);
}

static int mask_at(const is_instance *inst, int x, int y) {
    rle_mask m;
    avps_error err;
    uint8_t px[IMG * IMG];
    if (is_instance_mask(inst, IMG, IMG, &m, &err) != 0)
        return -1;
    rle_decode(&m, px);
    rle_free(&m);
    return px[y * IMG + x];
}

static const char *const names2[2] = {"a", "b"};

/* ---- SS -------------------------------------------------------------------------------- */

/* All members give logits: the output is the weighted mean of the logits, as logits. */
static void test_ss_logits(check_tally *t) {
    head_output m[2], out;
    int32_t cats[2] = {1, 2};
    double la[4] = {0.5, -1, 2, 0.25}, lb[4] = {-0.75, 3, 1, 0}; /* 2 channels x 1 x 2 */
    for (int i = 0; i < 2; i++)
        output_bare(&m[i], IMG, IMG);
    ss_set(&m[0].ss, SS_LOGITS, 2, 1, 2, cats, la, ss_geometry_stretch(2, 1, IMG, IMG));
    ss_set(&m[1].ss, SS_LOGITS, 2, 1, 2, cats, lb, ss_geometry_stretch(2, 1, IMG, IMG));
    double w[2] = {1, 3};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    CHECK(t, out.ss.kind == SS_LOGITS && out.ss.channels == 2 && out.ss.w == 2 && out.ss.h == 1);
    for (int i = 0; i < 4; i++) {
        double want = 0.25 * half_round(la[i]) + 0.75 * half_round(lb[i]);
        CHECK(t, near(float_from_half(out.ss.scores[i]), want, 2e-3));
    }
    CHECK(t, out.n_instances == 0);
    head_output_release(&out);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* Probabilities, logits (softmax) and a label map (one-hot) mix into probabilities; the
 * second member lists its channels in another order. */
static void test_ss_mixed(check_tally *t) {
    head_output m[3], out;
    int32_t cats[2] = {1, 2}, swapped[2] = {2, 1};
    double pa[2] = {0.2, 0.8}, lb[2] = {log(3.0), 0}; /* b's channel 0 is category 2 */
    double labels[1] = {1};                          /* c's label: channel 1, category 2 */
    for (int i = 0; i < 3; i++)
        output_bare(&m[i], IMG, IMG);
    ss_geometry g = ss_geometry_stretch(1, 1, IMG, IMG);
    ss_set(&m[0].ss, SS_PROBS, 2, 1, 1, cats, pa, g);
    ss_set(&m[1].ss, SS_LOGITS, 2, 1, 1, swapped, lb, g);
    ss_set(&m[2].ss, SS_LABELS, 2, 1, 1, cats, labels, g);
    double w[3] = {1, 2, 1};
    const char *names[3] = {"a", "b", "c"};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names, 3, &opt, &out, &err) == 0);
    CHECK(t, out.ss.kind == SS_PROBS && out.ss.channel_category[0] == 1 && out.ss.channel_category[1] == 2);
    double b_cat2 = half_round(log(3.0)), p2 = exp(b_cat2) / (exp(b_cat2) + 1); /* b's softmax */
    double want1 = 0.25 * half_round(0.2) + 0.5 * (1 - p2) + 0.25 * 0;
    double want2 = 0.25 * half_round(0.8) + 0.5 * p2 + 0.25 * 1;
    CHECK(t, near(float_from_half(out.ss.scores[0]), want1, 1e-3));
    CHECK(t, near(float_from_half(out.ss.scores[1]), want2, 1e-3));
    head_output_release(&out);
    for (int i = 0; i < 3; i++)
        head_output_release(&m[i]);
}

/* A member on another grid is resampled to the first member's, bilinear as ss_sampler:
 * the first grid has 4 columns over a 4-pixel-wide image, the second 2; output column u
 * reads the second grid at (u + 0.5) / 2 - 0.5, clamped: 0, 0.25, 0.75, 1. The first
 * member has weight 0, so the output is the resampled second member alone. */
static void test_ss_resample(check_tally *t) {
    head_output m[2], out;
    int32_t cats[1] = {1};
    double a[4] = {0.9, 0.9, 0.9, 0.9}, b[2] = {0.2, 0.6};
    for (int i = 0; i < 2; i++)
        output_bare(&m[i], 4, 1);
    ss_set(&m[0].ss, SS_PROBS, 1, 1, 4, cats, a, ss_geometry_stretch(4, 1, 4, 1));
    ss_set(&m[1].ss, SS_PROBS, 1, 1, 2, cats, b, ss_geometry_stretch(2, 1, 4, 1));
    double w[2] = {0, 1};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    double b0 = half_round(0.2), b1 = half_round(0.6);
    double want[4] = {b0, 0.75 * b0 + 0.25 * b1, 0.25 * b0 + 0.75 * b1, b1};
    CHECK(t, out.ss.w == 4 && out.ss.h == 1);
    for (int u = 0; u < 4; u++)
        CHECK(t, near(float_from_half(out.ss.scores[u]), want[u], 1e-3));
    head_output_release(&out);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* ---- IS -------------------------------------------------------------------------------- */

/* Weights 1 and 3 (0.25 and 0.75). a and b both find the object at [2,12)^2 / [3,13)^2
 * (IoU 81/119): one group scored 0.25 x 0.8 + 0.75 x 0.4; a alone finds [14,19)^2: it
 * scores 0.25 x 0.6, b counting 0. The group's mask is the weighted mean of the two:
 * on where b is (0.75 or 1), off where only a is (0.25). */
static void test_is_group(check_tally *t) {
    head_output m[2], out;
    output_init(&m[0], 2), output_init(&m[1], 1);
    add_box_instance(&m[0], 1, 0.8, 2, 2, 12, 12);
    add_box_instance(&m[0], 1, 0.6, 14, 14, 19, 19);
    add_box_instance(&m[1], 1, 0.4, 3, 3, 13, 13);
    double w[2] = {1, 3};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    CHECK(t, out.n_instances == 2);
    if (out.n_instances == 2) {
        CHECK(t, near(out.instances[0].score, 0.25 * 0.8 + 0.75 * 0.4, 1e-12));
        CHECK(t, near(out.instances[1].score, 0.25 * 0.6, 1e-12));
        CHECK(t, out.instances[0].category_id == 1 && out.instances[0].soft != NULL);
        CHECK(t, mask_at(&out.instances[0], 7, 7) == 1);   /* both */
        CHECK(t, mask_at(&out.instances[0], 11, 12) == 1); /* b only: 0.75 */
        CHECK(t, mask_at(&out.instances[0], 7, 2) == 0);   /* a only: 0.25 */
        CHECK(t, mask_at(&out.instances[0], 16, 16) == 0);
        CHECK(t, mask_at(&out.instances[1], 16, 16) == 1); /* a's own mask, kept as it is */
    }
    head_output_release(&out);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* Equal weights. a gives two instances of one object (0.9 and 0.7), b one (0.8): a's
 * first and b's make a group (0.85); a's second, left alone (0.35), overlaps it by
 * IoU 81/119 > 0.5 and NMS drops it, unless the NMS threshold is above that IoU. An
 * instance of another class on the same pixels is neither grouped nor suppressed. */
static void test_is_nms(check_tally *t) {
    head_output m[2], out;
    output_init(&m[0], 3), output_init(&m[1], 1);
    add_box_instance(&m[0], 1, 0.9, 2, 2, 12, 12);
    add_box_instance(&m[0], 1, 0.7, 3, 3, 13, 13);
    add_box_instance(&m[0], 2, 0.5, 2, 2, 12, 12);
    add_box_instance(&m[1], 1, 0.8, 2, 2, 12, 12);
    double w[2] = {1, 1};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    CHECK(t, out.n_instances == 2);
    if (out.n_instances == 2) {
        CHECK(t, out.instances[0].category_id == 1 && near(out.instances[0].score, 0.85, 1e-12));
        CHECK(t, out.instances[1].category_id == 2 && near(out.instances[1].score, 0.25, 1e-12));
    }
    head_output_release(&out);
    opt.nms_iou = 0.7;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    CHECK(t, out.n_instances == 3);
    if (out.n_instances == 3)
        CHECK(t, near(out.instances[1].score, 0.35, 1e-12) && out.instances[1].category_id == 1);
    head_output_release(&out);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* 150 instances of 150 classes from one member: the best 100, best first. */
static void test_is_top100(check_tally *t) {
    head_output m[1], out;
    output_init(&m[0], 150);
    for (int i = 0; i < 150; i++)
        add_box_instance(&m[0], 100 + i, (i * 37 % 150 + 1) / 1000.0, 1, 1, 5, 5);
    double w[1] = {2};
    const char *names[1] = {"a"};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names, 1, &opt, &out, &err) == 0);
    CHECK(t, out.n_instances == 100);
    int sorted = 1;
    for (size_t i = 0; i < out.n_instances; i++)
        sorted &= near(out.instances[i].score, (150 - i) / 1000.0, 1e-12);
    CHECK(t, sorted);
    head_output_release(&out);
    head_output_release(&m[0]);
}

/* A soft instance of a square. */
static void add_soft_instance(head_output *o, double score, double x0, double y0, double x1, double y1) {
    is_instance *s = &o->instances[o->n_instances++];
    *s = (is_instance){.category_id = 1, .score = score, .box = {x0, y0, x1, y1}, .soft_h = 28, .soft_w = 28,
                       .paste = PASTE_DETECTRON2};
    s->soft = malloc(28 * 28 * sizeof *s->soft);
    for (int i = 0; i < 28 * 28; i++)
        s->soft[i] = 1.0f;
}

/* A soft member and a binary one agreeing on a square: the group's mask is that square.
 * The soft member also gives the square twice; its second, alone, goes to NMS. */
static void test_is_soft(check_tally *t) {
    head_output m[2], out;
    output_init(&m[0], 2), output_init(&m[1], 1);
    add_soft_instance(&m[0], 0.6, 4, 4, 14, 14);
    add_soft_instance(&m[0], 0.5, 5, 4, 15, 14);
    add_box_instance(&m[1], 1, 0.4, 4, 4, 14, 14);
    double w[2] = {1, 1};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    CHECK(t, out.n_instances == 1);
    if (out.n_instances == 1) {
        rle_mask got, want;
        CHECK(t, is_instance_mask(&out.instances[0], IMG, IMG, &got, &err) == 0);
        CHECK(t, is_instance_mask(&m[1].instances[0], IMG, IMG, &want, &err) == 0);
        CHECK(t, rle_area(&got) == 100 && rle_iou(&got, &want, 0) == 1.0);
        CHECK(t, near(out.instances[0].score, 0.5, 1e-12));
        rle_free(&got);
        rle_free(&want);
    }
    head_output_release(&out);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* A member of weight 0 has no say: its instances are left out, its SS adds nothing. */
static void test_zero_weight(check_tally *t) {
    head_output m[2], out;
    output_init(&m[0], 1), output_init(&m[1], 1);
    add_box_instance(&m[0], 1, 0.9, 2, 2, 12, 12);
    add_box_instance(&m[1], 2, 0.3, 3, 3, 13, 13);
    m[0].ss.scores[0] = half_from_float(0.1f), m[0].ss.scores[1] = half_from_float(0.9f);
    double w[2] = {0, 2};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == 0);
    CHECK(t, out.n_instances == 1 && out.instances[0].category_id == 2 && near(out.instances[0].score, 0.3, 1e-12));
    CHECK(t, out.ss.scores[0] == m[1].ss.scores[0] && out.ss.scores[1] == m[1].ss.scores[1]);
    head_output_release(&out);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* ---- refused ----------------------------------------------------------------------------- */

static void expect_error(check_tally *t, const head_output *m, const double *w, const char *want) {
    head_output out;
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err = {{0}};
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &out, &err) == -1);
    CHECK(t, strstr(err.msg, want) != NULL);
    CHECK(t, out.n_instances == 0 && out.instances == NULL && out.ss.scores == NULL);
}

static void test_refused(check_tally *t) {
    head_output m[2];
    output_init(&m[0], 1), output_init(&m[1], 1);
    add_box_instance(&m[0], 1, 0.8, 2, 2, 12, 12);
    expect_error(t, m, (double[]){1, -0.5}, "member b: weight -0.5");
    expect_error(t, m, (double[]){0, 0}, "every weight is 0");
    expect_error(t, m, (double[]){NAN, 1}, "member a: weight nan");
    m[1].ss.channel_category[1] = 7;
    expect_error(t, m, (double[]){1, 1}, "member b has no semantic channel for category 2");
    m[1].ss.channel_category[1] = 2;
    m[1].width = 21;
    expect_error(t, m, (double[]){1, 1}, "member b gives a 21x20 image");
    m[1].width = IMG;
    head_output out;
    ensemble_options opt = {0.5, 1.5, 100};
    avps_error err = {{0}};
    CHECK(t, ensemble_merge(m, (double[]){1, 1}, names2, 2, &opt, &out, &err) == -1);
    CHECK(t, strstr(err.msg, "IoU thresholds must lie in [0, 1]") != NULL);
    head_output_release(&m[0]);
    head_output_release(&m[1]);
}

/* ---- the ensemble as a head ---------------------------------------------------------------- */

/* A fake head: gives a copy of one fixed output. */
typedef struct {
    head_output fixed;
} fixed_state;

static int fixed_run(void *p, const head_input *in, head_output *out, avps_error *err) {
    const head_output *f = &((fixed_state *)p)->fixed;
    (void)in, (void)err;
    *out = *f;
    size_t cells = (size_t)f->ss.w * f->ss.h * f->ss.channels;
    out->ss.channel_category = malloc(f->ss.channels * sizeof(int32_t));
    memcpy(out->ss.channel_category, f->ss.channel_category, f->ss.channels * sizeof(int32_t));
    out->ss.scores = malloc(cells * sizeof(uint16_t));
    memcpy(out->ss.scores, f->ss.scores, cells * sizeof(uint16_t));
    out->instances = calloc(f->n_instances + 1, sizeof *out->instances);
    for (size_t i = 0; i < f->n_instances; i++) {
        out->instances[i] = f->instances[i];
        rle_from_counts(f->instances[i].mask.cnts, f->instances[i].mask.m, IMG, IMG, &out->instances[i].mask);
    }
    return 0;
}
static uint32_t fixed_channels(const void *p, const int32_t **category) {
    const fixed_state *s = p;
    *category = s->fixed.ss.channel_category;
    return s->fixed.ss.channels;
}
static void fixed_free(void *p) {
    fixed_state *s = p;
    head_output_release(&s->fixed);
    free(s);
}

static head *fixed_head(const char *name, const head_output *o) {
    fixed_state *s = malloc(sizeof *s);
    s->fixed = *o;
    head_custom_ops ops = {fixed_run, fixed_channels, fixed_free};
    avps_error err;
    return head_new_custom(name, o->ss.kind, &ops, s, &err);
}

static void test_head(check_tally *t) {
    head_output m[2], direct, via;
    output_init(&m[0], 2), output_init(&m[1], 1);
    add_box_instance(&m[0], 1, 0.8, 2, 2, 12, 12);
    add_box_instance(&m[0], 1, 0.6, 14, 14, 19, 19);
    add_box_instance(&m[1], 1, 0.4, 3, 3, 13, 13);
    double w[2] = {1, 3};
    ensemble_options opt;
    ensemble_options_default(&opt);
    avps_error err;
    CHECK(t, ensemble_merge(m, w, names2, 2, &opt, &direct, &err) == 0);
    head *members[2] = {fixed_head("a", &m[0]), fixed_head("b", &m[1])}; /* they own m now */
    head *e = ensemble_head_new("e", members, w, 2, NULL, &err);
    CHECK(t, e != NULL);
    pan_image im = {"1", "1.png", IMG, IMG};
    head_input in = {&im, NULL, NULL, NULL};
    CHECK(t, e && head_run(e, &in, &via, &err) == 0);
    const int32_t *cats;
    CHECK(t, e && strcmp(head_name(e), "e") == 0 && head_ss_kind(e) == SS_PROBS && head_channels(e, &cats) == 2);
    CHECK(t, e && via.n_instances == direct.n_instances && via.n_instances == 2);
    for (size_t i = 0; e && i < direct.n_instances && i < via.n_instances; i++)
        CHECK(t, via.instances[i].score == direct.instances[i].score &&
                     memcmp(via.instances[i].box, direct.instances[i].box, sizeof direct.instances[i].box) == 0);
    CHECK(t, e && memcmp(via.ss.scores, direct.ss.scores, 2 * sizeof(uint16_t)) == 0);
    if (e)
        head_output_release(&via);
    head_output_release(&direct);
    head_free(e);

    /* bad weights: refused naming the member, and the members are freed (ASan checks) */
    head_output n[2];
    output_init(&n[0], 0), output_init(&n[1], 0);
    head *bad[2] = {fixed_head("r50", &n[0]), fixed_head("r101", &n[1])};
    err.msg[0] = 0;
    CHECK(t, ensemble_head_new("e", bad, (double[]){1, -1}, 2, NULL, &err) == NULL);
    CHECK(t, strstr(err.msg, "ensemble e: member r101: weight -1") != NULL);
}

int main(void) {
    check_tally t = {0, 0};
    test_ss_logits(&t);
    test_ss_mixed(&t);
    test_ss_resample(&t);
    test_is_group(&t);
    test_is_nms(&t);
    test_is_top100(&t);
    test_is_soft(&t);
    test_zero_weight(&t);
    test_refused(&t);
    test_head(&t);
    return check_report(&t);
}
