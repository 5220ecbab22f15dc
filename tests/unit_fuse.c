/* unit_fuse.c: fusion_run on small hand-built head outputs (8 x 6 images, four
 * categories), with answers worked out by hand: the SS average of two ends with
 * different geometries, kinds and channel orders; the class table choosing each thing
 * class's end; per-end thresholds; bad weights and tables; and UPSNet's combiner:
 * unknown pixels to VOID, class-agnostic NMS, mask removal, binary-only ends refused. */
#include "../fusion/fusion.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define W 8
#define H 6

/* Categories a, b are things; s, t stuff. Index order: a b s t. */
enum { CAT_A = 1, CAT_B = 2, CAT_S = 10, CAT_T = 11 };
static const pan_category categories[] = {
    {CAT_A, 1, "a", NULL, 0, {0}}, {CAT_B, 1, "b", NULL, 0, {0}}, {CAT_S, 0, "s", NULL, 0, {0}}, {CAT_T, 0, "t", NULL, 0, {0}}};
#define N_CAT (sizeof categories / sizeof *categories)

/* ---- building head outputs --------------------------------------------------------- */

static int32_t *category_list(const int32_t *cats, uint32_t n) {
    int32_t *c = malloc(n * sizeof *c);
    memcpy(c, cats, n * sizeof *c);
    return c;
}

/* A probability map: gw x gh grid stretched over the image, values[c][cell]. */
static void ss_probs(head_output *o, const int32_t *cats, uint32_t n, uint32_t gw, uint32_t gh, const float *values) {
    o->ss = (ss_map){.kind = SS_PROBS, .channels = n, .h = gh, .w = gw};
    o->ss.channel_category = category_list(cats, n);
    o->ss.scores = malloc((size_t)n * gw * gh * sizeof *o->ss.scores);
    for (size_t i = 0; i < (size_t)n * gw * gh; i++)
        o->ss.scores[i] = half_from_float(values[i]);
    o->ss.geo = ss_geometry_stretch(gw, gh, W, H);
}

/* A label map: gw x gh channel indexes ('0' + index, '.' for none). */
static void ss_labels(head_output *o, const int32_t *cats, uint32_t n, uint32_t gw, uint32_t gh, const char *labels) {
    o->ss = (ss_map){.kind = SS_LABELS, .channels = n, .h = gh, .w = gw};
    o->ss.channel_category = category_list(cats, n);
    o->ss.labels = malloc((size_t)gw * gh * sizeof *o->ss.labels);
    for (size_t i = 0; i < (size_t)gw * gh; i++)
        o->ss.labels[i] = labels[i] == '.' ? SS_LABEL_NONE : (uint16_t)(labels[i] - '0');
    o->ss.geo = ss_geometry_stretch(gw, gh, W, H);
}

/* Uniform probabilities everywhere: one grid cell, p[c] for categories a b s t. */
static void ss_uniform(head_output *o, float pa, float pb, float ps, float pt) {
    const int32_t cats[] = {CAT_A, CAT_B, CAT_S, CAT_T};
    const float v[] = {pa, pb, ps, pt};
    ss_probs(o, cats, 4, 1, 1, v);
}

static is_instance *add_instance(head_output *o, int32_t cat, double score) {
    o->instances = realloc(o->instances, (o->n_instances + 1) * sizeof *o->instances);
    is_instance *x = &o->instances[o->n_instances++];
    memset(x, 0, sizeof *x);
    x->category_id = cat;
    x->score = score;
    return x;
}

/* A soft mask of 1s exactly over the integer box [x0, x1) x [y0, y1): with detectron2's
 * paste, one mask cell per box pixel samples each cell at its centre. */
static void add_soft_box(head_output *o, int32_t cat, double score, int x0, int y0, int x1, int y1) {
    is_instance *x = add_instance(o, cat, score);
    x->box[0] = x0, x->box[1] = y0, x->box[2] = x1, x->box[3] = y1;
    x->soft_w = (uint32_t)(x1 - x0), x->soft_h = (uint32_t)(y1 - y0);
    x->soft = malloc(x->soft_w * x->soft_h * sizeof *x->soft);
    for (uint32_t i = 0; i < x->soft_w * x->soft_h; i++)
        x->soft[i] = 1.0f;
    x->paste = PASTE_DETECTRON2;
}

/* A binary mask: the pixels of rows (H x W characters) equal to c. */
static void add_binary(head_output *o, int32_t cat, double score, const char *rows, char c) {
    is_instance *x = add_instance(o, cat, score);
    uint8_t px[W * H];
    for (int i = 0; i < W * H; i++)
        px[i] = rows[i] == c;
    rle_encode(px, H, W, &x->mask);
    rle_bbox(&x->mask, x->box);
    x->box[2] += x->box[0], x->box[3] += x->box[1];
}

static void output_start(head_output *o) {
    memset(o, 0, sizeof *o);
    o->width = W, o->height = H;
}

/* ---- running and reading the result --------------------------------------------------- */

typedef struct {
    head_output out[2];
    fusion_end ends[2];
    fusion_params params;
    fusion_input in;
    int table[N_CAT];
    avps_error err;
} fuse_case;

static void case_start(fuse_case *c, size_t n_ends) {
    memset(c, 0, sizeof *c);
    for (size_t e = 0; e < n_ends; e++) {
        output_start(&c->out[e]);
        c->ends[e] = (fusion_end){&c->out[e], 1.0};
    }
    fusion_params_default(&c->params);
    c->params.heuristic.stuff_area_limit = 0;
    c->in = (fusion_input){"img3", H, W, c->ends, n_ends, NULL, categories, N_CAT, NULL};
}

static void case_end(fuse_case *c) {
    for (size_t e = 0; e < c->in.n_ends; e++)
        head_output_release(&c->out[e]);
}

/* Same segments, same masks. */
static int panoptic_equal(const fusion_panoptic *a, const fusion_panoptic *b) {
    if (a->n_segments != b->n_segments)
        return 0;
    for (size_t s = 0; s < a->n_segments; s++)
        if (memcmp(&a->segments[s], &b->segments[s], sizeof a->segments[s]) != 0 || a->masks[s].m != b->masks[s].m ||
            (a->masks[s].m && memcmp(a->masks[s].cnts, b->masks[s].cnts, a->masks[s].m * sizeof *a->masks[s].cnts)))
            return 0;
    return 1;
}

/* When every end has an SS: fusion_labels_make's maps are what fusion_run computes
 * itself: `fused` gives the same result through ss_labels, and end[e] is the fused map
 * of end e alone. */
static int labels_agree(fuse_case *c, const fusion_panoptic *want) {
    fusion_labels lab, one;
    avps_error err;
    if (fusion_labels_make(&c->in, &lab, &err) != 0)
        return 1; /* an end without SS, say: nothing to compare */
    fusion_input in = c->in;
    in.ss_labels = lab.fused;
    fusion_panoptic pan;
    int ok = fusion_run(&c->params, &in, &pan, &err) == 0;
    ok = ok && (c->params.combiner == COMBINER_UPSNET || panoptic_equal(&pan, want));
    if (ok)
        fusion_panoptic_release(&pan);
    for (size_t e = 0; ok && e < c->in.n_ends; e++) {
        fusion_end alone = {c->in.ends[e].out, 1.0};
        fusion_input in1 = {"img3", H, W, &alone, 1, NULL, categories, N_CAT, NULL};
        ok = fusion_labels_make(&in1, &one, &err) == 0 && memcmp(one.fused, lab.end[e], sizeof(uint32_t) * W * H) == 0 &&
             memcmp(one.end[0], lab.end[e], sizeof(uint32_t) * W * H) == 0;
        fusion_labels_release(&one);
    }
    fusion_labels_release(&lab);
    if (!ok)
        fprintf(stderr, "fusion_labels_make disagrees with fusion_run\n");
    return ok;
}

/* Runs the fusion; the painted result as category letters per pixel ('.' VOID, and the
 * instance's letter in capitals), in want's layout. */
static int run_gives(fuse_case *c, const char *want) {
    fusion_panoptic pan;
    if (fusion_run(&c->params, &c->in, &pan, &c->err) != 0) {
        fprintf(stderr, "unexpected error: %s\n", c->err.msg);
        return 0;
    }
    int ok = labels_agree(c, &pan);
    uint32_t ids[W * H];
    fusion_panoptic_paint(&pan, ids);
    for (int i = 0; i < W * H; i++) {
        char got = '.';
        if (ids[i] > 0) {
            int32_t cat = pan.segments[ids[i] - 1].category_id;
            got = cat == CAT_A ? 'A' : cat == CAT_B ? 'B' : cat == CAT_S ? 's' : 't';
        }
        ok &= got == want[i];
    }
    if (!ok) {
        for (int i = 0; i < W * H; i++)
            fputc(ids[i] ? '0' + (int)ids[i] : '.', stderr);
        fputc('\n', stderr);
    }
    fusion_panoptic_release(&pan);
    return ok;
}

static int run_fails(fuse_case *c, const char *words) {
    fusion_panoptic pan;
    int rc = fusion_run(&c->params, &c->in, &pan, &c->err);
    if (rc == 0)
        fusion_panoptic_release(&pan);
    else if (!strstr(c->err.msg, words))
        fprintf(stderr, "message: %s\n", c->err.msg);
    return rc != 0 && strstr(c->err.msg, words) != NULL && pan.n_segments == 0;
}

/* How many segments of a category. */
static size_t count_segments(fuse_case *c, int32_t cat) {
    fusion_panoptic pan;
    if (fusion_run(&c->params, &c->in, &pan, &c->err) != 0)
        return 99;
    size_t n = 0;
    for (size_t s = 0; s < pan.n_segments; s++)
        n += pan.segments[s].category_id == cat;
    fusion_panoptic_release(&pan);
    return n;
}

#define ROWS6(r) r r r r r r

/* ---- SS averaging ---------------------------------------------------------------------- */

/* End 0 (weight 3): probabilities on a 2 x 1 grid, s on the left cell, a on the right;
 * bilinear over 8 columns puts f = .0 .0 .125 .375 .625 .875 1 1 of the right cell in
 * columns 0..7. End 1 (weight 1): a 4 x 3 label map, channels (t, a): row 0 t t t t,
 * row 1 t a a a, row 2 none; pixel (x, y) reads cell (x / 2, y / 2).
 * Fused: s = .75 (1 - f), a = .75 f + .25 [end 1 says a], t = .25 [end 1 says t].
 * Rows 0-1: s wins for f < .5 (columns 0-3); column 3 with t: s .469 > a .281, t .25.
 * Rows 2-3: column 3 has end 1's a: a .531 > s .469; column 2: s .656 > a .344.
 * Rows 4-5: no label: s for columns 0-3. Thing pixels no instance takes are VOID. */
static void build_two_geometries(fuse_case *c) {
    case_start(c, 2);
    const int32_t cats0[] = {CAT_S, CAT_A};
    const float v0[] = {1, 0, 0, 1};
    ss_probs(&c->out[0], cats0, 2, 2, 1, v0);
    const int32_t cats1[] = {CAT_T, CAT_A};
    ss_labels(&c->out[1], cats1, 2, 4, 3, "0000" "0111" "....");
    c->ends[0].ss_weight = 3;
    c->ends[1].ss_weight = 1;
}

static const char two_geometries_want[] = "ssss...." "ssss...." "sss....." "sss....." "ssss...." "ssss....";

static void test_ss_average(check_tally *t) {
    fuse_case c;
    build_two_geometries(&c);
    CHECK(t, run_gives(&c, two_geometries_want));
    /* the stuff area limit applies to the fused stuff: s has 22 pixels */
    c.params.heuristic.stuff_area_limit = 22;
    CHECK(t, run_gives(&c, two_geometries_want));
    c.params.heuristic.stuff_area_limit = 23;
    CHECK(t, run_gives(&c, "........" "........" "........" "........" "........" "........"));
    /* equal weights: s = .5 (1 - f), a = .5 f + .5 [a], t = .5 [t]; ties go to the first
     * category (a, b, s, t): rows 0-1 s .5 = t .5 in columns 0-1, t beats s from column 2
     * and ties a (.5) in columns 6-7; rows 2-3 a >= .5 > s from column 2 */
    c.params.heuristic.stuff_area_limit = 0;
    c.ends[0].ss_weight = 1;
    CHECK(t, run_gives(&c, "sstttt.." "sstttt.." "ss......" "ss......" "ssss...." "ssss...."));
    case_end(&c);

    /* UPSNet's combiner without instances: unknown = the thing logit, so thing pixels
     * go VOID exactly where the heuristic leaves them */
    build_two_geometries(&c);
    c.params.combiner = COMBINER_UPSNET;
    CHECK(t, run_gives(&c, two_geometries_want));
    case_end(&c);
}

/* Logits go through a softmax first: logits (a 0, s ln 3) are probabilities (.25, .75).
 * With a second end saying a (probability 1): equal weights give a .625 > s .375, all
 * VOID; weights 3 : 1 give a .4375 < s .5625, all s. A label map with no label anywhere
 * gives no SS: every pixel VOID, with either combiner. */
static void test_logits_and_empty_labels(check_tally *t) {
    fuse_case c;
    case_start(&c, 2);
    const int32_t cats0[] = {CAT_A, CAT_S};
    const float v0[] = {0, 1.0986123f};
    ss_probs(&c.out[0], cats0, 2, 1, 1, v0);
    c.out[0].ss.kind = SS_LOGITS;
    ss_uniform(&c.out[1], 1, 0, 0, 0);
    CHECK(t, run_gives(&c, ROWS6("........")));
    c.ends[0].ss_weight = 3;
    CHECK(t, run_gives(&c, ROWS6("ssssssss")));
    c.params.combiner = COMBINER_UPSNET;
    CHECK(t, run_gives(&c, ROWS6("ssssssss")));
    case_end(&c);

    case_start(&c, 1);
    const int32_t cats1[] = {CAT_S};
    ss_labels(&c.out[0], cats1, 1, 2, 2, "....");
    CHECK(t, run_gives(&c, ROWS6("........")));
    c.params.combiner = COMBINER_UPSNET;
    CHECK(t, run_gives(&c, ROWS6("........")));
    case_end(&c);
}

static void test_bad_weights_and_maps(check_tally *t) {
    fuse_case c;
    build_two_geometries(&c);
    c.ends[1].ss_weight = -1;
    CHECK(t, run_fails(&c, "end 1: SS weight -1"));
    c.ends[0].ss_weight = 0, c.ends[1].ss_weight = 0;
    CHECK(t, run_fails(&c, "weights of the 2 ends are all 0"));
    c.ends[0].ss_weight = 0.0 / 0.0, c.ends[1].ss_weight = 1;
    CHECK(t, run_fails(&c, "end 0: SS weight"));
    /* weight 0: the end's SS is not used, so end 0 alone gives s left, a (VOID) right */
    c.ends[0].ss_weight = 1, c.ends[1].ss_weight = 0;
    CHECK(t, run_gives(&c, "ssss...." "ssss...." "ssss...." "ssss...." "ssss...." "ssss...."));
    /* a channel of a category the dataset lacks, and one category twice */
    c.ends[1].ss_weight = 1;
    c.out[1].ss.channel_category[0] = 77;
    CHECK(t, run_fails(&c, "end 1: SS channel 0 has category 77"));
    c.out[1].ss.channel_category[0] = CAT_A;
    CHECK(t, run_fails(&c, "SS channels 0 and 1 both have category 1"));
    c.out[1].ss.channel_category[0] = CAT_T;
    c.out[1].width = 9;
    CHECK(t, run_fails(&c, "end 1: its output is 9x6"));
    c.out[1].width = W;
    c.in.n_ends = 0;
    CHECK(t, run_fails(&c, "0 network ends"));
    c.in.n_ends = 2;
    case_end(&c);
}

/* ---- instance selection ------------------------------------------------------------------ */

/* SS: s everywhere. End 0: a (.9) in columns 0-1, b (.8) in 6-7; end 1: a (.7) in 3-4,
 * b (.95) in 5. */
static void build_two_ends(fuse_case *c) {
    static const char rows[] = "pp.rruqq" "pp.rruqq" "pp.rruqq" "pp.rruqq" "pp.rruqq" "pp.rruqq";
    case_start(c, 2);
    ss_uniform(&c->out[0], 0, 0, 1, 0);
    ss_uniform(&c->out[1], 0, 0, 1, 0);
    add_binary(&c->out[0], CAT_A, 0.9, rows, 'p');
    add_binary(&c->out[0], CAT_B, 0.8, rows, 'q');
    add_binary(&c->out[1], CAT_A, 0.7, rows, 'r');
    add_binary(&c->out[1], CAT_B, 0.95, rows, 'u');
    for (size_t i = 0; i < N_CAT; i++)
        c->table[i] = -1;
}

static void test_class_table(check_tally *t) {
    fuse_case c;
    build_two_ends(&c);
    c.params.heuristic.confidence_thr[1] = 0.6;
    CHECK(t, run_gives(&c, ROWS6("AAsAABBB")));
    c.in.is_end_of_category = c.table;
    c.table[0] = 1, c.table[1] = 0; /* a from end 1, b from end 0 */
    CHECK(t, run_gives(&c, ROWS6("sssAAsBB")));
    c.table[0] = -1, c.table[1] = 1; /* no a at all, b from end 1 */
    CHECK(t, run_gives(&c, ROWS6("sssssBss")));
    c.table[2] = 7; /* stuff entries are ignored */
    CHECK(t, run_gives(&c, ROWS6("sssssBss")));
    c.table[0] = 2;
    CHECK(t, run_fails(&c, "class table names end 2 for category 1, but there are 2 ends"));
    c.table[0] = -2;
    CHECK(t, run_fails(&c, "class table names end -2"));
    case_end(&c);
}

static void test_thresholds(check_tally *t) {
    fuse_case c;
    build_two_ends(&c);
    c.params.heuristic.confidence_thr[0] = 0.85; /* keeps end 0's a (.9), drops its b (.8) */
    c.params.heuristic.confidence_thr[1] = 0.75; /* drops end 1's a (.7), keeps its b (.95) */
    CHECK(t, run_gives(&c, ROWS6("AAsssBss")));
    c.params.heuristic.confidence_thr[1] = 0.7; /* a score equal to the threshold is kept */
    CHECK(t, run_gives(&c, ROWS6("AAsAABss")));
    /* an instance of a category the dataset lacks */
    c.out[1].instances[0].category_id = 5;
    CHECK(t, run_fails(&c, "end 1: instance 0 has category 5"));
    c.out[1].instances[0].category_id = CAT_S;
    CHECK(t, run_fails(&c, "end 1: instance 0 has stuff category 10"));
    case_end(&c);
}

/* ---- UPSNet's combiner ---------------------------------------------------------------------- */

/* SS: s .4, a .3, b .3 everywhere: stuff logit log(1.6), a and b log(1.2); unknown is
 * log(1.2) - max(log(1.2), 0) = 0 where a box covers, log(1.2) elsewhere: stuff wins. */
static void build_upsnet(fuse_case *c, float pa, float ps) {
    case_start(c, 1);
    ss_uniform(&c->out[0], pa, 1 - pa - ps, ps, 0);
    c->params.combiner = COMBINER_UPSNET;
}

static void test_upsnet_nms(check_tally *t) {
    fuse_case c;
    /* b's box (1..5) has IoU 28 / 42 with a's (0..4): class-agnostic NMS drops it */
    build_upsnet(&c, 0.3f, 0.4f);
    add_soft_box(&c.out[0], CAT_A, 0.9, 0, 0, 4, 6);
    add_soft_box(&c.out[0], CAT_B, 0.8, 1, 0, 5, 6);
    CHECK(t, run_gives(&c, ROWS6("AAAAssss")));
    /* above its IoU: kept */
    c.params.upsnet.nms_thr = 0.67;
    CHECK(t, run_gives(&c, ROWS6("AAAABsss")));
    case_end(&c);
    /* b's box 3..7: IoU 14 / 56, kept; column 3 is a tie, won by the better score */
    build_upsnet(&c, 0.3f, 0.4f);
    add_soft_box(&c.out[0], CAT_A, 0.9, 0, 0, 4, 6);
    add_soft_box(&c.out[0], CAT_B, 0.8, 3, 0, 7, 6);
    CHECK(t, run_gives(&c, ROWS6("AAAABBBs")));
    /* the heuristic agrees: b loses column 3 and keeps 4-6 (overlap 6 / 24) */
    c.params.combiner = COMBINER_HEURISTIC;
    CHECK(t, run_gives(&c, ROWS6("AAAABBBs")));
    case_end(&c);
}

static void test_upsnet_mask_removal(check_tally *t) {
    fuse_case c;
    /* a second a (.8) over columns 2-7: box IoU 21 / 63 passes NMS, but 12 of its 36
     * pixels (1/3 > .3) are under the first a: removed */
    build_upsnet(&c, 0.3f, 0.4f);
    add_soft_box(&c.out[0], CAT_A, 0.9, 0, 0, 4, 6);
    add_soft_box(&c.out[0], CAT_A, 0.8, 2, 0, 8, 6);
    CHECK(t, run_gives(&c, ROWS6("AAAAssss")));
    CHECK(t, count_segments(&c, CAT_A) == 1);
    c.params.upsnet.removal_thr = 0.34; /* 1/3 is not above it: kept, takes columns 4-7 */
    CHECK(t, run_gives(&c, ROWS6("AAAAAAAA")));
    CHECK(t, count_segments(&c, CAT_A) == 2);
    c.params.upsnet.removal_thr = 0.3;
    /* removal is per class: as b, it stays */
    c.out[0].instances[1].category_id = CAT_B;
    CHECK(t, run_gives(&c, ROWS6("AAAABBBB")));
    case_end(&c);
}

static void test_upsnet_unknown(check_tally *t) {
    fuse_case c;
    /* SS a .5, s .3: outside the instance unknown = log(2) beats stuff log(1.2): VOID */
    build_upsnet(&c, 0.5f, 0.3f);
    add_soft_box(&c.out[0], CAT_A, 0.9, 0, 0, 4, 6);
    CHECK(t, run_gives(&c, ROWS6("AAAA....")));
    c.params.combiner = COMBINER_HEURISTIC; /* the same: thing pixels left free are VOID */
    CHECK(t, run_gives(&c, ROWS6("AAAA....")));
    case_end(&c);
    /* the stuff area limit: s has 24 pixels */
    build_upsnet(&c, 0.3f, 0.4f);
    add_soft_box(&c.out[0], CAT_A, 0.9, 0, 0, 4, 6);
    c.params.heuristic.stuff_area_limit = 25;
    CHECK(t, run_gives(&c, ROWS6("AAAA....")));
    c.params.heuristic.stuff_area_limit = 24;
    CHECK(t, run_gives(&c, ROWS6("AAAAssss")));
    case_end(&c);
}

static void test_upsnet_binary_refused(check_tally *t) {
    fuse_case c;
    build_two_ends(&c);
    c.params.combiner = COMBINER_UPSNET;
    CHECK(t, run_fails(&c, "end 0: instance 0 has a binary mask only"));
    /* below its threshold it is not needed, but end 1's are binary too */
    c.params.heuristic.confidence_thr[0] = 1;
    CHECK(t, run_fails(&c, "end 1: instance 0 has a binary mask only"));
    c.params.combiner = COMBINER_HEURISTIC;
    CHECK(t, run_gives(&c, ROWS6("sssAABss")));
    case_end(&c);
}

static void test_names(check_tally *t) {
    combiner_kind k = COMBINER_HEURISTIC;
    CHECK(t, combiner_kind_parse("upsnet", &k) == 0 && k == COMBINER_UPSNET);
    CHECK(t, combiner_kind_parse("heuristic", &k) == 0 && k == COMBINER_HEURISTIC);
    CHECK(t, combiner_kind_parse("other", &k) == -1);
    CHECK(t, strcmp(combiner_kind_name(COMBINER_UPSNET), "upsnet") == 0);
    fusion_params p;
    fusion_params_default(&p);
    CHECK(t, p.combiner == COMBINER_HEURISTIC && p.upsnet.nms_thr == 0.5 && p.upsnet.removal_thr == 0.3 &&
                 p.upsnet.max_instances == 100 && p.heuristic.stuff_area_limit == 4096 &&
                 p.heuristic.confidence_thr[FUSION_MAX_ENDS - 1] == 0.5);
}

int main(void) {
    check_tally t = {0, 0};
    test_ss_average(&t);
    test_logits_and_empty_labels(&t);
    test_bad_weights_and_maps(&t);
    test_class_table(&t);
    test_thresholds(&t);
    test_upsnet_nms(&t);
    test_upsnet_mask_removal(&t);
    test_upsnet_unknown(&t);
    test_upsnet_binary_refused(&t);
    test_names(&t);
    return check_report(&t);
}
