/* unit_model.c: the head interface on small hand-built cases: SS geometry and
 * upsampling against values worked out by hand, instance masks against a plain
 * paste + encode, replay's checks on stored tensors, and sim profiles (structural
 * properties only: measured orderings are noisy and live in scripts/measure-sim). */
#include "../model/model.h"
#include "../model/sim.h" /* white-box: the profiles' parameters and class offsets */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/avps_unit_model_XXXXXX";

static int near(double a, double b) { return fabs(a - b) < 1e-3; }

/* A 2x1 grid of probabilities over 2 channels, stretched over a 4x2 image: columns
 * sample grid coordinate (x + 0.5) / 2 - 0.5, clamped: -0.25 -> 0, 0.25, 0.75, 1.25 -> 1. */
static void test_sampler_bilinear(check_tally *t) {
    uint16_t scores[4];
    float p0[2] = {0.2f, 0.6f};
    for (int u = 0; u < 2; u++)
        scores[u] = half_from_float(p0[u]), scores[2 + u] = half_from_float(1 - p0[u]);
    int32_t cats[2] = {7, 9};
    ss_map ss = {SS_PROBS, 2, 1, 2, cats, scores, NULL, ss_geometry_stretch(2, 1, 4, 2)};
    avps_error err;
    ss_sampler *s = ss_sampler_new(&ss, 4, &err);
    float row[8];
    ss_sampler_row(s, 1, row);
    float a = float_from_half(scores[0]), b = float_from_half(scores[1]);
    double want[4] = {a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b};
    for (int x = 0; x < 4; x++) {
        CHECK(t, near(row[x], want[x]));
        CHECK(t, near(row[x] + row[4 + x], 1.0));
    }
    ss_sampler_free(s);
}

/* Logits: the softmax is taken per grid cell, then cells are interpolated. */
static void test_sampler_logits(check_tally *t) {
    uint16_t scores[2] = {half_from_float(0.0f), half_from_float((float)log(3.0))}; /* one cell, 2 channels */
    int32_t cats[2] = {1, 2};
    ss_map ss = {SS_LOGITS, 2, 1, 1, cats, scores, NULL, ss_geometry_stretch(1, 1, 3, 3)};
    avps_error err;
    ss_sampler *s = ss_sampler_new(&ss, 3, &err);
    float row[6];
    ss_sampler_row(s, 2, row);
    for (int x = 0; x < 3; x++)
        CHECK(t, near(row[x], 0.25) && near(row[3 + x], 0.75));
    ss_sampler_free(s);
}

/* Label maps: nearest, one-hot; SS_LABEL_NONE gives all zeros. A grid with padding:
 * only the valid 2 columns are read, and the scale maps 4 image columns onto them. */
static void test_sampler_labels(check_tally *t) {
    uint16_t labels[3] = {1, SS_LABEL_NONE, 0}; /* the third column is padding */
    int32_t cats[2] = {5, 6};
    ss_map ss = {SS_LABELS, 2, 1, 3, cats, NULL, labels, {0.5, 1, 0, 0, 2, 1}};
    avps_error err;
    ss_sampler *s = ss_sampler_new(&ss, 4, &err);
    float row[8];
    ss_sampler_row(s, 0, row);
    CHECK(t, row[0] == 0 && row[4] == 1 && row[1] == 0 && row[5] == 1);
    CHECK(t, row[2] == 0 && row[6] == 0 && row[3] == 0 && row[7] == 0);
    ss_sampler_free(s);
}

/* is_instance_mask pastes only near the box: the same runs as pasting the whole image. */
static void test_instance_mask(check_tally *t) {
    uint32_t h = 37, w = 53;
    float soft[28 * 28];
    srand(7);
    for (int k = 0; k < 40; k++) {
        for (int i = 0; i < 28 * 28; i++)
            soft[i] = (float)((double)rand() / RAND_MAX);
        is_instance inst = {.category_id = 1, .soft = soft, .soft_h = 28, .soft_w = 28};
        inst.paste = (paste_convention)(k % 3);
        for (int c = 0; c < 4; c++)
            inst.box[c] = (double)rand() / RAND_MAX * 70 - 10;
        if (k % 5 == 0)
            inst.box[2] = inst.box[0] + 0.3; /* a box narrower than a pixel */
        rle_mask got, want;
        avps_error err;
        int rc = is_instance_mask(&inst, h, w, &got, &err);
        float *full = calloc((size_t)h * w, sizeof *full);
        uint8_t *bits = calloc((size_t)h * w, 1);
        mask_paste(soft, 28, 28, inst.box, inst.paste, h, w, full);
        for (size_t i = 0; i < (size_t)h * w; i++)
            bits[i] = full[i] > 0.5f;
        rle_encode(bits, h, w, &want);
        CHECK(t, rc == 0 && got.m == want.m && memcmp(got.cnts, want.cnts, want.m * sizeof *want.cnts) == 0);
        rle_free(&got), rle_free(&want);
        free(full), free(bits);
    }
}

/* ---- replay: a one-image dataset with 2 categories and a store around it ------------ */

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = path_join(dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    free(p);
}

static pan_dataset *tiny_dataset(void) {
    write_text(tmpdir, "gt.json",
               "{\"images\": [{\"id\": 3, \"file_name\": \"3.png\", \"width\": 4, \"height\": 2}],"
               " \"annotations\": [{\"image_id\": 3, \"file_name\": \"3.png\", \"segments_info\": []}],"
               " \"categories\": [{\"id\": 1, \"name\": \"a\", \"isthing\": 1}, {\"id\": 2, \"name\": \"b\", \"isthing\": 0}]}");
    char *p = path_join(tmpdir, "gt.json");
    avps_error err;
    pan_dataset *ds = pan_dataset_load(p, PAN_GROUND_TRUTH, &err);
    free(p);
    return ds;
}

/* Writes head.json and 3.ss.npy.zst (2 x 1 x 2 fp16 of value v, or labels) and runs. */
static int replay_once(const pan_dataset *ds, const char *kind, const char *cats, float v, int labels,
                       const char *needle, avps_error *err) {
    char head_text[256];
    snprintf(head_text, sizeof head_text, "{\"name\": \"x\", \"ss_kind\": \"%s\", \"categories\": [%s]}", kind, cats);
    write_text(tmpdir, "head.json", head_text);
    write_text(tmpdir, "3.json", "{\"instances\": []}");
    npy_array a;
    size_t shape3[3] = {2, 1, 2}, shape2[2] = {1, 2};
    npy_array_alloc(&a, labels ? NPY_U8 : NPY_F16, labels ? 2 : 3, labels ? shape2 : shape3, err);
    for (size_t i = 0; i < (labels ? 2u : 4u); i++) {
        if (labels)
            ((uint8_t *)a.data)[i] = (uint8_t)v;
        else
            ((uint16_t *)a.data)[i] = half_from_float(v);
    }
    char *p = path_join(tmpdir, "3.ss.npy.zst");
    npy_write(p, &a, 0, err);
    free(p);
    npy_array_release(&a);
    head_config cfg = {"x", "replay", NULL, tmpdir, 1};
    head *h = head_new(&cfg, ds, err);
    int rc = -1;
    if (h) {
        head_output out;
        head_input in = {&ds->images[0], &ds->annotations[0], NULL, NULL};
        rc = head_run(h, &in, &out, err);
        if (rc == 0)
            head_output_release(&out);
        head_free(h);
    }
    if (needle && (rc == 0 || !strstr(err->msg, needle))) {
        fprintf(stderr, "wanted an error with '%s', got %s\n", needle, rc ? err->msg : "success");
        return 0;
    }
    return needle ? 1 : rc == 0;
}

static void test_replay_checks(check_tally *t) {
    pan_dataset *ds = tiny_dataset();
    avps_error err;
    CHECK(t, ds != NULL);
    if (!ds)
        return;
    CHECK(t, replay_once(ds, "probs", "1, 2", 0.5f, 0, NULL, &err));
    CHECK(t, replay_once(ds, "logits", "1, 2", 3.0f, 0, NULL, &err));
    CHECK(t, replay_once(ds, "probs", "1, 2", NAN, 0, "not finite", &err));
    CHECK(t, replay_once(ds, "probs", "1, 2", 0.3f, 0, "sum to", &err));
    CHECK(t, replay_once(ds, "probs", "1, 7", 0.5f, 0, "category 7 has no mapping", &err));
    CHECK(t, replay_once(ds, "probs", "1, 2, 2", 0.5f, 0, "3.ss.npy.zst", &err));
    CHECK(t, replay_once(ds, "labels", "1, 2", 1, 1, NULL, &err));
    CHECK(t, replay_once(ds, "labels", "1, 2", 2, 1, "holds label 2", &err));
    CHECK(t, replay_once(ds, "labels", "1, 2", 1, 0, "3.ss.npy.zst", &err)); /* fp16 where labels are due */
    CHECK(t, strstr(err.msg, "head x, image 3") != NULL);
    pan_dataset_free(ds);
}

static void test_profiles(check_tally *t) {
    avps_error err;
    size_t n = 0;
    while (sim_profile_builtin_name(n))
        n++;
    CHECK(t, n == 13); /* the 11 ends of the paper's tables and the null pair */
    pan_dataset *ds = tiny_dataset();
    head_config bad = {"x", "sim", "no_such_profile", NULL, 1};
    CHECK(t, head_new(&bad, ds, &err) == NULL && strstr(err.msg, "no_such_profile"));
    write_text(tmpdir, "p.json", "{\"base\": \"htc\", \"is_recall\": 1.5}");
    char *p = path_join(tmpdir, "p.json");
    head_config file = {"x", "sim", p, NULL, 1};
    CHECK(t, head_new(&file, ds, &err) == NULL && strstr(err.msg, "is_recall"));
    write_text(tmpdir, "p.json", "{\"base\": \"htc\", \"recal\": 0.5}");
    CHECK(t, head_new(&file, ds, &err) == NULL && strstr(err.msg, "unknown key \"recal\""));
    write_text(tmpdir, "p.json", "{\"base\": \"htc\", \"is_recall\": 0.5, \"ss_kind\": \"labels\"}");
    head *h = head_new(&file, ds, &err);
    CHECK(t, h && head_ss_kind(h) == SS_LABELS);
    head_free(h);
    head_config nob = {"x", "gpu", NULL, NULL, 1};
    CHECK(t, head_new(&nob, ds, &err) == NULL && strstr(err.msg, "unknown backend"));
    free(p);
    pan_dataset_free(ds);
}

static sim_profile profile_named(const char *name) {
    sim_profile p;
    avps_error err;
    memset(&p, 0, sizeof p);
    if (sim_profile_get(name, &p, &err) != 0)
        p.is_recall = -1;
    return p;
}

/* The null pair: the same parameters (names aside), no own class offsets, so the same
 * quality on every class; and the designed order holds on each parameter that sets it. */
static void test_profile_design(check_tally *t) {
    sim_profile a = profile_named("null_a"), b = profile_named("null_b");
    memcpy(b.name, a.name, sizeof a.name);
    CHECK(t, memcmp(&a, &b, sizeof a) == 0 && a.class_spread == 0);
    const char *better[][2] = {{"r50", "r101"}, {"r101", "r101_bfp"}, {"r101", "r101_lsh"}, {"r101_bfp", "r101_bfp_lsh"},
                               {"r101_lsh", "r101_bfp_lsh"}, {"r101", "senet154"}, {"senet154", "senet154_lsh"},
                               {"htc", "htc_uw"}, {"htc", "htc_dc"}, {"htc_uw", "htc_uw_dc"}, {"htc_dc", "htc_uw_dc"}};
    for (size_t i = 0; i < sizeof better / sizeof better[0]; i++) {
        sim_profile lo = profile_named(better[i][0]), hi = profile_named(better[i][1]);
        CHECK(t, lo.is_recall >= 0 && hi.is_recall >= lo.is_recall && hi.is_boundary <= lo.is_boundary &&
                     hi.is_confusion <= lo.is_confusion && hi.ss_stuff_error <= lo.ss_stuff_error);
        CHECK(t, hi.is_recall > lo.is_recall || hi.ss_stuff_error < lo.ss_stuff_error);
    }
    /* every HTC end detects more and labels stuff worse than every UPS end */
    const char *ups[] = {"r50", "r101", "r101_bfp", "r101_lsh", "r101_bfp_lsh", "senet154", "senet154_lsh"};
    const char *htc[] = {"htc", "htc_uw", "htc_dc", "htc_uw_dc"};
    for (size_t i = 0; i < 7; i++)
        for (size_t j = 0; j < 4; j++) {
            sim_profile u = profile_named(ups[i]), h = profile_named(htc[j]);
            CHECK(t, h.is_recall > u.is_recall && h.ss_stuff_error > u.ss_stuff_error);
        }
}

/* Class offsets: a property of (seed, head, class), the same on every call; the null
 * pair's are equal; an end's own part has mean 0 over things and over stuff (the
 * difference between two ends cancels the common difficulty). */
static void test_class_quality(check_tally *t) {
    enum { N = 9 };
    uint8_t isthing[N] = {1, 1, 1, 1, 0, 0, 0, 1, 0};
    double qa[N], qb[N], qc[N];
    sim_profile null = profile_named("null_a"), r50 = profile_named("r50");
    sim_class_quality(&null, 3, "null_a", isthing, N, qa);
    sim_class_quality(&null, 3, "null_b", isthing, N, qb);
    CHECK(t, memcmp(qa, qb, sizeof qa) == 0);
    sim_class_quality(&r50, 3, "r50", isthing, N, qa);
    sim_class_quality(&r50, 3, "r50", isthing, N, qc);
    CHECK(t, memcmp(qa, qc, sizeof qa) == 0);
    sim_class_quality(&r50, 3, "htc", isthing, N, qb);
    double sum[2] = {0, 0}, spread = 0;
    for (int c = 0; c < N; c++)
        sum[isthing[c]] += qa[c] - qb[c], spread += fabs(qa[c] - qb[c]);
    CHECK(t, fabs(sum[0]) < 1e-12 && fabs(sum[1]) < 1e-12);
    CHECK(t, spread > 0.01); /* the ends do differ per class */
    sim_class_quality(&r50, 4, "r50", isthing, N, qc);
    CHECK(t, memcmp(qa, qc, sizeof qa) != 0); /* another seed, other offsets */
}

int main(void) {
    check_tally t = {0};
    if (!mkdtemp(tmpdir))
        return 1;
    test_sampler_bilinear(&t);
    test_sampler_logits(&t);
    test_sampler_labels(&t);
    test_instance_mask(&t);
    test_replay_checks(&t);
    test_profiles(&t);
    test_profile_design(&t);
    test_class_quality(&t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return check_report(&t);
}
