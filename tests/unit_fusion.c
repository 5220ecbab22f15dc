/* unit_fusion.c: the run algebra of fusion/mask_ops.c and the heuristic combiner on
 * small images drawn by hand, with answers worked out by hand: overlap exactly at the
 * threshold, ties in score, per-end thresholds, thing categories in the semantic input,
 * the stuff area limit at its boundary, empty masks, one stuff category twice. */
#include "../fusion/fusion.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* Categories 1-3 are things, 10-12 stuff. */
static const pan_category categories[] = {{1, 1, "a", NULL, 0, {0}}, {2, 1, "b", NULL, 0, {0}}, {3, 1, "c", NULL, 0, {0}},
                                          {10, 0, "s", NULL, 0, {0}}, {11, 0, "t", NULL, 0, {0}}, {12, 0, "u", NULL, 0, {0}}};

static int runs_are(const rle_mask *r, const uint32_t *want, size_t m) {
    return r->m == m && memcmp(r->cnts, want, m * sizeof *want) == 0;
}

/* The pixels of rows (h x w characters, row-major) equal to c, as a mask. */
static rle_mask draw(const char *rows, char c, uint32_t h, uint32_t w) {
    uint8_t px[64] = {0};
    if (h * w > sizeof px)
        abort();
    for (uint32_t i = 0; i < h * w; i++)
        px[i] = rows[i] == c;
    rle_mask m;
    if (rle_encode(px, h, w, &m) != 0)
        abort();
    return m;
}

/* Whether the painted ids are the digits of want ('0' VOID). */
static int ids_are(const fusion_panoptic *pan, const char *want) {
    uint32_t ids[64];
    fusion_panoptic_paint(pan, ids);
    for (uint32_t i = 0; i < pan->h * pan->w; i++)
        if (ids[i] != (uint32_t)(want[i] - '0'))
            return 0;
    return 1;
}

static int segment_is(const fusion_panoptic *pan, size_t s, int32_t cat, double area) {
    return s < pan->n_segments && pan->segments[s].id == s + 1 && pan->segments[s].category_id == cat &&
           pan->segments[s].area == area && pan->segments[s].iscrowd == 0;
}

typedef struct {
    fusion_instance inst[8];
    fusion_stuff stuff[8];
    size_t n_inst, n_stuff;
    combine_params params;
    combine_input in;
} image_case;

static void case_start(image_case *c, uint32_t h, uint32_t w) {
    memset(c, 0, sizeof *c);
    combine_params_default(&c->params);
    c->in = (combine_input){"img7", h, w, c->inst, 0, c->stuff, 0, categories, sizeof categories / sizeof *categories};
}

static void add_inst(image_case *c, const char *rows, char ch, int32_t cat, double score, int end) {
    c->inst[c->n_inst++] = (fusion_instance){cat, score, draw(rows, ch, c->in.h, c->in.w), end};
    c->in.n_instances = c->n_inst;
}

static void add_stuff(image_case *c, const char *rows, char ch, int32_t cat) {
    c->stuff[c->n_stuff++] = (fusion_stuff){cat, draw(rows, ch, c->in.h, c->in.w)};
    c->in.n_stuff = c->n_stuff;
}

static void case_end(image_case *c) {
    for (size_t i = 0; i < c->n_inst; i++)
        rle_free(&c->inst[i].mask);
    for (size_t i = 0; i < c->n_stuff; i++)
        rle_free(&c->stuff[i].mask);
}

static int combine(image_case *c, fusion_panoptic *pan) {
    avps_error err;
    return combine_heuristic(&c->params, &c->in, pan, &err);
}

/* ---- mask_ops ------------------------------------------------------------------------ */

/* 3 x 3. a = runs 0 3 2 4: on at column-major pixels 0-2 and 5-8. b = runs 2 0 0 2 5,
 * with empty runs inside: on at 2 and 3. a - b = {0, 1, 5..8} = runs 0 2 3 4;
 * a | b = {0..3, 5..8} = runs 0 4 1 4. Painted, pixel p is row p % 3, column p / 3. */
static void test_mask_ops(check_tally *t) {
    uint32_t ra[] = {0, 3, 2, 4}, rb[] = {2, 0, 0, 2, 5};
    rle_mask a = {3, 3, 4, ra}, b = {3, 3, 5, rb}, out;
    CHECK(t, mask_check(&a, 3, 3) == 0 && mask_check(&b, 3, 3) == 0);
    CHECK(t, mask_check(&a, 3, 4) != 0);
    uint32_t short_runs[] = {0, 3, 2, 3};
    rle_mask bad = {3, 3, 4, short_runs};
    CHECK(t, mask_check(&bad, 3, 3) != 0);
    const uint32_t minus[] = {0, 2, 3, 4}, uni[] = {0, 4, 1, 4}, b_minus_a[] = {3, 1, 5};
    CHECK(t, mask_minus(&a, &b, &out) == 0 && runs_are(&out, minus, 4));
    rle_free(&out);
    CHECK(t, mask_minus(&b, &a, &out) == 0 && runs_are(&out, b_minus_a, 3));
    rle_free(&out);
    CHECK(t, mask_union(&a, &b, &out) == 0 && runs_are(&out, uni, 4));
    rle_free(&out);
    const uint32_t none[] = {6};
    CHECK(t, mask_none(2, 3, &out) == 0 && out.h == 2 && out.w == 3 && runs_are(&out, none, 1));
    rle_free(&out);
    uint32_t ids[9] = {0};
    mask_paint(&a, 7, ids);
    const uint32_t painted[9] = {7, 0, 7, 7, 0, 7, 7, 7, 7};
    CHECK(t, memcmp(ids, painted, sizeof ids) == 0);
}

/* ---- the combiner ----------------------------------------------------------------------- */

/* 4 x 4, given out of score order. A (.9) takes 4 pixels; B (.8) has 2 of its 4 on A:
 * 2/4 = 0.5 is not above 0.5, so it keeps its other 2; C (.7) has 3 of 4 taken: dropped;
 * D (.6) has 1 of 5 taken and keeps 4. */
static void test_overlap_at_threshold(check_tally *t) {
    const char *a = "AA.." "AA.." "...." "....";
    const char *b = ".BB." ".BB." "...." "....";
    const char *c = "...." "CCC." "..C." "....";
    const char *d = "...." "D..." "DD.." "DD..";
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 4, 4);
    add_inst(&k, d, 'D', 1, 0.6, 0);
    add_inst(&k, b, 'B', 2, 0.8, 0);
    add_inst(&k, c, 'C', 3, 0.7, 0);
    add_inst(&k, a, 'A', 1, 0.9, 0);
    CHECK(t, combine(&k, &pan) == 0);
    CHECK(t, pan.n_segments == 3);
    CHECK(t, ids_are(&pan, "1120" "1120" "3300" "3300"));
    CHECK(t, segment_is(&pan, 0, 1, 4) && segment_is(&pan, 1, 2, 2) && segment_is(&pan, 2, 1, 4));
    const int32_t box_b[4] = {2, 0, 1, 2}, box_d[4] = {0, 2, 2, 2};
    CHECK(t, pan.n_segments == 3 && memcmp(pan.segments[1].bbox, box_b, sizeof box_b) == 0 &&
                 memcmp(pan.segments[2].bbox, box_d, sizeof box_d) == 0);
    fusion_panoptic_release(&pan);
    /* Just under 0.5, B is dropped too; D then has only 1 of 5 taken still. */
    k.params.overlap_thr = 0.4999;
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2 && ids_are(&pan, "1100" "1100" "2200" "2200"));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

/* Equal scores keep the input order: the first of two identical masks wins; five
 * one-pixel instances of one score are numbered in input order. */
static void test_ties(check_tally *t) {
    const char *row = "PP.." "....";
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 2, 4);
    add_inst(&k, row, 'P', 1, 0.7, 0);
    add_inst(&k, row, 'P', 2, 0.7, 0);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 1 && segment_is(&pan, 0, 1, 2));
    fusion_panoptic_release(&pan);
    k.inst[0].category_id = 2;
    k.inst[1].category_id = 1;
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 1 && segment_is(&pan, 0, 2, 2));
    fusion_panoptic_release(&pan);
    case_end(&k);

    case_start(&k, 1, 5);
    const char *px = "abcde";
    const char order[] = "dbeac"; /* pixel 3 first, then 1, 4, 0, 2 */
    for (int i = 0; i < 5; i++)
        add_inst(&k, px, order[i], 1, 0.5, 0); /* 0.5 is not below the threshold 0.5 */
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 5 && ids_are(&pan, "42513"));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

/* 60 one-pixel instances, pixel i scoring 0.6, 0.7, 0.8 for i % 3 = 0, 1, 2: the twenty
 * 0.8s come first in input order (ids 1-20), then the 0.7s, then the 0.6s. Enough
 * equal keys that an unstable sort would shuffle them. */
static void test_many_ties(check_tally *t) {
    static const double scores[3] = {0.6, 0.7, 0.8};
    char px[61];
    for (int i = 0; i < 60; i++)
        px[i] = (char)(' ' + i);
    px[60] = '\0';
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 1, 60);
    fusion_instance many[60];
    for (int i = 0; i < 60; i++)
        many[i] = (fusion_instance){1, scores[i % 3], draw(px, (char)(' ' + i), 1, 60), 0};
    k.in.instances = many;
    k.in.n_instances = 60;
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 60);
    uint32_t ids[60];
    fusion_panoptic_paint(&pan, ids);
    int in_order = 1;
    for (uint32_t i = 0; i < 60; i++) {
        uint32_t rank_in_group = i / 3 + 1, groups_before = i % 3 == 2 ? 0 : i % 3 == 1 ? 1 : 2;
        in_order &= ids[i] == groups_before * 20 + rank_in_group;
    }
    CHECK(t, in_order);
    fusion_panoptic_release(&pan);
    for (int i = 0; i < 60; i++)
        rle_free(&many[i].mask);
}

/* End 1 has threshold 0.8: its 0.7 is dropped and its 0.8 kept; end 0 keeps 0.7 and
 * drops 0.4999 against 0.5. */
static void test_per_end_thresholds(check_tally *t) {
    const char *px = "abcd";
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 1, 4);
    k.params.confidence_thr[1] = 0.8;
    add_inst(&k, px, 'a', 1, 0.7, 0);
    add_inst(&k, px, 'b', 1, 0.7, 1);
    add_inst(&k, px, 'c', 2, 0.8, 1);
    add_inst(&k, px, 'd', 2, 0.4999, 0);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2);
    /* sorted: c (.8) first, then a (.7) */
    CHECK(t, ids_are(&pan, "2010") && segment_is(&pan, 0, 2, 1) && segment_is(&pan, 1, 1, 1));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

/* A thing category in the semantic input is skipped: its pixels stay VOID. */
static void test_thing_in_semantic(check_tally *t) {
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 2, 3);
    k.params.stuff_area_limit = 0;
    add_inst(&k, "I.." "...", 'I', 2, 0.9, 0);
    add_stuff(&k, "TTT" "...", 'T', 1);
    add_stuff(&k, "..S" "SSS", 'S', 10);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2);
    CHECK(t, ids_are(&pan, "102" "222") && segment_is(&pan, 0, 2, 1) && segment_is(&pan, 1, 10, 4));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

/* Limit 3: a stuff candidate with exactly 3 pixels left is kept, one with 2 dropped; what
 * is left is counted after the instances and the stuff before it. */
static void test_stuff_area_limit(check_tally *t) {
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 2, 4);
    k.params.stuff_area_limit = 3;
    add_inst(&k, "I..." "....", 'I', 1, 0.9, 0);
    add_stuff(&k, "SSSS" "....", 'S', 10);
    add_stuff(&k, "...T" "TT..", 'T', 11);
    add_stuff(&k, "...." "UUUU", 'U', 12);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 3);
    CHECK(t, ids_are(&pan, "1222" "3333"));
    CHECK(t, segment_is(&pan, 1, 10, 3) && segment_is(&pan, 2, 12, 4));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

/* Empty masks take no id, even with no area limit. */
static void test_empty_masks(check_tally *t) {
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 1, 3);
    k.params.stuff_area_limit = 0;
    add_inst(&k, "...", 'x', 1, 0.99, 0);
    add_inst(&k, "I..", 'I', 2, 0.6, 0);
    add_stuff(&k, "...", 'x', 11);
    add_stuff(&k, ".SS", 'S', 10);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2 && ids_are(&pan, "122"));
    CHECK(t, segment_is(&pan, 0, 2, 1) && segment_is(&pan, 1, 10, 2));
    fusion_panoptic_release(&pan);
    case_end(&k);
    /* overlap_thr 1: an instance all under another passes the test but has nothing left;
     * it is dropped and the next one is numbered 2. */
    case_start(&k, 1, 3);
    k.params.overlap_thr = 1;
    add_inst(&k, "AA.", 'A', 1, 0.9, 0);
    add_inst(&k, "B..", 'B', 2, 0.8, 0);
    add_inst(&k, ".CC", 'C', 3, 0.7, 0);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2 && ids_are(&pan, "112"));
    CHECK(t, segment_is(&pan, 1, 3, 1));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

/* One stuff category twice is one segment (panopticapi gives both one id); each part
 * faces the area limit on its own. An instance of a stuff category joins it too. */
static void test_stuff_twice(check_tally *t) {
    image_case k;
    fusion_panoptic pan;
    case_start(&k, 2, 4);
    k.params.stuff_area_limit = 2;
    add_stuff(&k, "SSSS" "....", 'S', 10);
    add_stuff(&k, "...." "TT..", 'T', 11);
    add_stuff(&k, "SSSS" "..SS", 'S', 10);
    add_stuff(&k, "...." "...U", 'U', 10); /* nothing left */
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2);
    CHECK(t, ids_are(&pan, "1111" "2211") && segment_is(&pan, 0, 10, 6) && segment_is(&pan, 1, 11, 2));
    const int32_t box[4] = {0, 0, 4, 2};
    CHECK(t, pan.n_segments == 2 && memcmp(pan.segments[0].bbox, box, sizeof box) == 0);
    fusion_panoptic_release(&pan);
    case_end(&k);

    case_start(&k, 1, 4);
    k.params.stuff_area_limit = 1;
    add_inst(&k, "I...", 'I', 10, 0.9, 0);
    add_inst(&k, "...J", 'J', 1, 0.8, 0);
    add_stuff(&k, "SSS.", 'S', 10);
    CHECK(t, combine(&k, &pan) == 0 && pan.n_segments == 2 && ids_are(&pan, "1112"));
    CHECK(t, segment_is(&pan, 0, 10, 3) && segment_is(&pan, 1, 1, 1));
    fusion_panoptic_release(&pan);
    case_end(&k);
}

static int fails_with(image_case *k, const char *want) {
    fusion_panoptic pan;
    avps_error err;
    int rc = combine_heuristic(&k->params, &k->in, &pan, &err);
    return rc != 0 && pan.n_segments == 0 && strstr(err.msg, want) != NULL;
}

static void test_errors(check_tally *t) {
    image_case k;
    case_start(&k, 2, 2);
    add_inst(&k, "A...", 'A', 1, 0.9, 0);
    add_inst(&k, "A...", 'A', 99, 0.9, 0);
    CHECK(t, fails_with(&k, "image img7: instance 1: unknown category 99"));
    k.inst[1].category_id = 2;
    k.inst[1].end = FUSION_MAX_ENDS;
    CHECK(t, fails_with(&k, "image img7: instance 1: network end"));
    k.inst[1].end = 0;
    k.in.w = 3;
    CHECK(t, fails_with(&k, "image img7: instance 0: the mask is not 2 x 3"));
    k.in.w = 2;
    add_stuff(&k, "SS..", 'S', 42);
    CHECK(t, fails_with(&k, "image img7: semantic segment 0: unknown category 42"));
    case_end(&k);
}

/* ---- colour ids (fusion/panoptic_ids.c) ------------------------------------------------ */

static int near(uint32_t id, const uint8_t base[3]) {
    uint8_t rgb[3];
    id_to_rgb(id, rgb);
    for (int k = 0; k < 3; k++)
        if (abs((int)rgb[k] - (int)base[k]) > 30)
            return 0;
    return 1;
}

static void test_color_ids(check_tally *t) {
    /* 1 is COCO's person (220, 20, 60); 10 (stuff here) takes COCO's colour of id 10;
     * 250 is no COCO id; 12 brings its own colour. */
    pan_category cats[] = {{1, 1, "a", NULL, 0, {0}}, {10, 0, "s", NULL, 0, {0}}, {250, 1, "x", NULL, 0, {0}},
                           {12, 0, "u", NULL, 1, {7, 8, 9}}};
    int32_t seg_cats[] = {1, 1, 10, 1, 10, 250, 12};
    enum { N = sizeof seg_cats / sizeof *seg_cats };
    pan_segment segs[N], again[N];
    memset(segs, 0, sizeof segs);
    for (size_t s = 0; s < N; s++)
        segs[s].category_id = seg_cats[s];
    fusion_panoptic pan = {2, 2, N, segs, NULL};
    avps_error err;
    CHECK(t, fusion_panoptic_color_ids(&pan, cats, 4, "img7", &err) == 0);
    uint8_t person[3], ten[3], own[3] = {7, 8, 9}, made[3];
    pan_category_color(&cats[0], person);
    pan_category_color(&cats[1], ten);
    pan_category_color(&cats[2], made);
    CHECK(t, person[0] == 220 && person[1] == 20 && person[2] == 60);
    CHECK(t, memcmp(ten, coco_category_color(10), 3) == 0 && coco_category_color(250) == NULL);
    CHECK(t, segs[0].id == rgb_to_id(person) && segs[2].id == rgb_to_id(ten) && segs[6].id == rgb_to_id(own));
    CHECK(t, segs[1].id != segs[0].id && near(segs[1].id, person) && near(segs[3].id, person));
    CHECK(t, segs[4].id != segs[2].id && near(segs[4].id, ten) && segs[5].id == rgb_to_id(made));
    for (size_t a = 0; a < N; a++)
        for (size_t b = a + 1; b < N; b++)
            CHECK(t, segs[a].id != 0 && segs[a].id != segs[b].id);
    /* a pure function of the segments: the same again */
    memcpy(again, segs, sizeof segs);
    pan.segments = again;
    CHECK(t, fusion_panoptic_color_ids(&pan, cats, 4, "img7", &err) == 0 && memcmp(again, segs, sizeof segs) == 0);
    again[3].category_id = 99;
    CHECK(t, fusion_panoptic_color_ids(&pan, cats, 4, "img7", &err) == -1 &&
                 strstr(err.msg, "image img7: segment 4: category 99") != NULL);
}

int main(void) {
    check_tally t = {0, 0};
    combine_params p;
    combine_params_default(&p);
    CHECK(&t, p.confidence_thr[0] == 0.5 && p.confidence_thr[FUSION_MAX_ENDS - 1] == 0.5 && p.overlap_thr == 0.5 &&
                  p.stuff_area_limit == 4096);
    test_mask_ops(&t);
    test_overlap_at_threshold(&t);
    test_ties(&t);
    test_many_ties(&t);
    test_per_end_thresholds(&t);
    test_thing_in_semantic(&t);
    test_stuff_area_limit(&t);
    test_empty_masks(&t);
    test_stuff_twice(&t);
    test_errors(&t);
    test_color_ids(&t);
    return check_report(&t);
}
