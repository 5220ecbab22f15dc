/* unit_rle.c: COCO run-length masks: hand-worked encodings, strings, boxes, merges,
 * IoUs and polygons; refusals of malformed strings and counts; and round trips of the
 * counts strings and crowd counts of the AP reference files (the fixtures here, and
 * ../shared/reference/ap when present, or $AVPS_SHARED/reference/ap). */
#include "../data/data.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* A string the test built, or NULL; frees it, so checks can compare in one line. */
static int same_str(char *got, const char *want) {
    int same = got && strcmp(got, want) == 0;
    free(got);
    return same;
}

static int runs_are(const rle_mask *r, const uint32_t *want, size_t m) {
    return r->m == m && (m == 0 || memcmp(r->cnts, want, m * sizeof *want) == 0);
}

static int box_is(const double got[4], double x, double y, double w, double h) {
    return got[0] == x && got[1] == y && got[2] == w && got[3] == h;
}

/* 3 x 3, row-major:  0 1 0 / 0 1 1 / 0 0 0. Column-major that is 000 110 010, so the
 * runs are 3 2 2 1 1; the string writes 3, 2, 2 as they are, then 1 - 2 and 1 - 2 as
 * the one-chunk negative -1 ('O' = 48 + 31). */
static void test_small_mask(check_tally *t) {
    const uint8_t px[9] = {0, 1, 0, 0, 1, 7, 0, 0, 0}; /* any non-zero is on */
    const uint32_t runs[] = {3, 2, 2, 1, 1};
    rle_mask r;
    CHECK(t, rle_encode(px, 3, 3, &r) == 0);
    CHECK(t, r.h == 3 && r.w == 3 && runs_are(&r, runs, 5));
    CHECK(t, same_str(rle_to_string(&r), "322OO"));
    CHECK(t, rle_area(&r) == 3);
    double bb[4];
    rle_bbox(&r, bb);
    CHECK(t, box_is(bb, 1, 0, 2, 2));
    uint8_t back[9];
    rle_decode(&r, back);
    int same = 1;
    for (int i = 0; i < 9; i++)
        same &= back[i] == (px[i] != 0);
    CHECK(t, same);
    rle_free(&r);
    CHECK(t, rle_from_string("322OO", 3, 3, &r) == 0 && runs_are(&r, runs, 5));
    rle_free(&r);
}

/* Values of more than one chunk. 10 x 10 all on: runs 0, 100; 100 = 4 + 3*32, so 'T'
 * (4 | 0x20 for "more") then '3'. Runs 10 50 30 5 5: 50 = 18 + 1*32 ('b' '1'); 30 has
 * the 0x10 bit, so a 0 chunk follows to keep it positive ('n' '0'); 5 - 50 = -45 =
 * 19 - 2*32 ('c' 'N'); 5 - 30 = -25 = 7 - 32 ('W' 'O'). */
static void test_multi_chunk(check_tally *t) {
    uint8_t on[100];
    memset(on, 1, sizeof on);
    rle_mask r;
    CHECK(t, rle_encode(on, 10, 10, &r) == 0);
    CHECK(t, same_str(rle_to_string(&r), "0T3"));
    rle_free(&r);
    const uint32_t runs[] = {10, 50, 30, 5, 5};
    CHECK(t, rle_from_counts(runs, 5, 10, 10, &r) == 0);
    CHECK(t, same_str(rle_to_string(&r), ":b1n0cNWO"));
    rle_free(&r);
    CHECK(t, rle_from_string(":b1n0cNWO", 10, 10, &r) == 0 && runs_are(&r, runs, 5));
    CHECK(t, rle_area(&r) == 55);
    rle_free(&r);
}

/* An empty mask is the one run h*w, and its box is all 0; no pixels at all is run 0. */
static void test_empty_masks(check_tally *t) {
    uint8_t off[6] = {0};
    rle_mask r;
    double bb[4] = {1, 1, 1, 1};
    CHECK(t, rle_encode(off, 2, 3, &r) == 0 && r.m == 1 && r.cnts[0] == 6);
    CHECK(t, same_str(rle_to_string(&r), "6"));
    rle_bbox(&r, bb);
    CHECK(t, box_is(bb, 0, 0, 0, 0) && rle_area(&r) == 0);
    rle_free(&r);
    CHECK(t, rle_encode(off, 0, 4, &r) == 0 && r.m == 1 && r.cnts[0] == 0);
    rle_free(&r);
    CHECK(t, rle_from_string("", 0, 0, &r) == 0 && r.m == 0);
    rle_free(&r);
    /* issue 12 item 4: h = 0 with 4 billion columns is one empty run, at once */
    CHECK(t, rle_encode(off, 0, UINT32_MAX, &r) == 0 && r.m == 1 && r.cnts[0] == 0);
    rle_free(&r);
    CHECK(t, rle_encode(off, 3, 0, &r) == 0 && r.m == 1 && r.cnts[0] == 0);
    rle_free(&r);
    /* a 0x0 mask with one (empty) run merged with one that has none: no read of cnts[0] of NULL */
    rle_mask pair[2], out;
    CHECK(t, rle_encode(off, 0, 0, &pair[0]) == 0);
    CHECK(t, rle_from_string("", 0, 0, &pair[1]) == 0);
    for (int inter = 0; inter < 2; inter++) {
        CHECK(t, rle_merge(pair, 2, inter, &out) == 0 && rle_area(&out) == 0);
        rle_free(&out);
    }
    CHECK(t, rle_iou(&pair[0], &pair[1], 0) == 0 && rle_iou(&pair[1], &pair[0], 1) == 0);
    rle_bbox(&pair[1], bb);
    CHECK(t, box_is(bb, 0, 0, 0, 0) && rle_area(&pair[1]) == 0);
    rle_decode(&pair[1], off);
    rle_free(&pair[0]);
    rle_free(&pair[1]);
}

static void test_refusals(check_tally *t) {
    const char *bad[] = {
        "3 2",        /* ' ' is below the alphabet */
        "32p",        /* 'p' is above it */
        "32T",        /* the last chunk asks for more */
        "O8",         /* a first run of -1 */
        "32",         /* 5 of 9 pixels */
        "3222",       /* 11 of 9 */
        "oooooooo0",  /* longer than any run can be */
        "9\xc3\xa9",  /* not ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rle_mask r = {0};
        CHECK(t, rle_from_string(bad[i], 3, 3, &r) == -1);
        rle_free(&r); /* harmless after a failure */
    }
    const uint32_t short_runs[] = {3, 2}, long_runs[] = {3, 2, 5};
    rle_mask r;
    CHECK(t, rle_from_counts(short_runs, 2, 3, 3, &r) == -1);
    CHECK(t, rle_from_counts(long_runs, 3, 3, 3, &r) == -1);
    CHECK(t, rle_from_counts(long_runs, 3, 2, 5, &r) == 0);
    rle_free(&r);
}

/* The square (1,1)-(3,3) in a 5 x 5 image, worked through frPoly by hand: scaled by 5
 * its corners are 5 and 15; the top edge (v = 5) changes column at u = 12 and 7, which
 * map back to pixel columns 2 and 1, row ceil(5.5/5 - .5) = 1; the bottom edge (v = 15)
 * at u - 1 = 7 and 12, row ceil(15.5/5 - .5) = 3. Starts 6, 8, 11, 13 and 25 give the
 * runs 6 2 3 2 12: pixels (1..2, 1..2). */
static void test_polygon_square(check_tally *t) {
    const double xy[8] = {1, 1, 1, 3, 3, 3, 3, 1};
    const uint32_t runs[] = {6, 2, 3, 2, 12};
    rle_mask r;
    CHECK(t, rle_from_polygon(xy, 4, 5, 5, &r) == 0 && runs_are(&r, runs, 5));
    rle_free(&r);
    const double box[4] = {1, 1, 2, 2};
    CHECK(t, rle_from_bbox(box, 5, 5, &r) == 0 && runs_are(&r, runs, 5));
    double bb[4];
    rle_bbox(&r, bb);
    CHECK(t, box_is(bb, 1, 1, 2, 2) && rle_area(&r) == 4);
    rle_free(&r);
    /* A single point and a ring wholly left of the image: no pixels. */
    const double point[2] = {2.2, 2.2}, left[6] = {-4, 0, -1, 0, -2, 4};
    CHECK(t, rle_from_polygon(point, 1, 5, 5, &r) == 0 && r.m == 1 && r.cnts[0] == 25);
    rle_free(&r);
    CHECK(t, rle_from_polygon(left, 3, 5, 5, &r) == 0 && r.m == 1 && r.cnts[0] == 25);
    rle_free(&r);
    const double nan_xy[6] = {0, 0, 1, 0, NAN, 1};
    CHECK(t, rle_from_polygon(nan_xy, 3, 5, 5, &r) == -2);
}

/* A = pixels 3 4 7 (runs 3 2 2 1 1), B = pixels 3 4 5 6 (runs 3 4 2), 3 x 3. */
static void test_merge_and_iou(check_tally *t) {
    rle_mask m[2], out;
    CHECK(t, rle_from_string("322OO", 3, 3, &m[0]) == 0);
    CHECK(t, rle_from_counts((const uint32_t[]){3, 4, 2}, 3, 3, 3, &m[1]) == 0);
    CHECK(t, rle_merge(m, 2, 0, &out) == 0 && runs_are(&out, (const uint32_t[]){3, 5, 1}, 3));
    rle_free(&out);
    CHECK(t, rle_merge(m, 2, 1, &out) == 0 && runs_are(&out, (const uint32_t[]){3, 2, 4}, 3));
    rle_free(&out);
    CHECK(t, rle_merge(m, 1, 0, &out) == 0 && runs_are(&out, m[0].cnts, m[0].m));
    rle_free(&out);
    CHECK(t, rle_iou(&m[0], &m[1], 0) == 2.0 / 5.0);
    CHECK(t, rle_iou(&m[0], &m[1], 1) == 2.0 / 3.0); /* crowd: over the detection's 3 */
    CHECK(t, rle_iou(&m[1], &m[0], 1) == 2.0 / 4.0);
    rle_mask other;
    CHECK(t, rle_from_counts((const uint32_t[]){3, 2, 7}, 3, 3, 4, &other) == 0);
    CHECK(t, rle_iou(&m[0], &other, 0) == -1); /* boxes overlap, sizes differ */
    rle_mask pair[2] = {m[0], other};
    CHECK(t, rle_merge(pair, 2, 0, &out) == -1);
    rle_free(&other);
    CHECK(t, rle_from_counts((const uint32_t[]){0, 1, 8}, 3, 3, 3, &other) == 0);
    CHECK(t, rle_iou(&m[0], &other, 0) == 0); /* disjoint boxes */
    rle_free(&other);
    rle_free(&m[0]);
    rle_free(&m[1]);
}

static void test_bbox_iou(check_tally *t) {
    const double a[4] = {0, 0, 2, 2}, b[4] = {1, 1, 2, 2}, c[4] = {2, 0, 1, 1};
    CHECK(t, bbox_iou(a, b, 0) == 1.0 / 7.0);
    CHECK(t, bbox_iou(a, b, 1) == 1.0 / 4.0);
    CHECK(t, bbox_iou(a, c, 0) == 0); /* touching is not overlapping */
}

/* ---- the reference files ---------------------------------------------------------- */

/* dir/rel, where dir is the repository root found from this file's own path. */
static char *repo_path(const char *rel) {
    const char *slash = strrchr(__FILE__, '/');
    char *dir = slash ? strndup(__FILE__, (size_t)(slash - __FILE__)) : strdup(".");
    char *root = dir ? path_join(dir, "..") : NULL;
    char *p = root ? path_join(root, rel) : NULL;
    free(dir);
    free(root);
    return p;
}

static cJSON *load_json(const char *path) {
    avps_error err;
    size_t len;
    char *text = file_read_all(path, &len, &err);
    if (!text)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static int get_size(const cJSON *seg, uint32_t *h, uint32_t *w) {
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(seg, "size");
    if (cJSON_GetArraySize(size) != 2)
        return -1;
    *h = (uint32_t)cJSON_GetArrayItem(size, 0)->valuedouble;
    *w = (uint32_t)cJSON_GetArrayItem(size, 1)->valuedouble;
    return 0;
}

/* string -> runs -> pixels -> runs -> string gives the string back, and the area is
 * the pixels that are on. */
static void check_string_round_trip(check_tally *t, const char *s, uint32_t h, uint32_t w) {
    rle_mask r, again;
    uint8_t *px = malloc((size_t)h * w + 1);
    CHECK(t, px != NULL && rle_from_string(s, h, w, &r) == 0);
    if (!px || !r.m) {
        free(px);
        return;
    }
    rle_decode(&r, px);
    uint64_t on = 0;
    for (size_t i = 0; i < (size_t)h * w; i++)
        on += px[i];
    CHECK(t, rle_area(&r) == on);
    CHECK(t, rle_encode(px, h, w, &again) == 0 && same_str(rle_to_string(&again), s));
    rle_free(&again);
    rle_free(&r);
    free(px);
}

static void check_results_file(check_tally *t, const char *path) {
    cJSON *dt = load_json(path);
    CHECK(t, cJSON_IsArray(dt));
    const cJSON *res;
    cJSON_ArrayForEach(res, dt) {
        const cJSON *seg = cJSON_GetObjectItemCaseSensitive(res, "segmentation");
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(seg, "counts");
        uint32_t h, w;
        CHECK(t, cJSON_IsString(counts) && get_size(seg, &h, &w) == 0);
        if (cJSON_IsString(counts))
            check_string_round_trip(t, counts->valuestring, h, w);
    }
    cJSON_Delete(dt);
}

/* Without an oracle: the counts add up, the area is the odd runs, the box lies in the
 * image, and the string form reads back as the same runs. */
static void check_crowd(check_tally *t, const cJSON *seg) {
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(seg, "counts"), *c;
    uint32_t h, w, *cnts = malloc(((size_t)cJSON_GetArraySize(counts) + 1) * sizeof *cnts);
    size_t m = 0;
    uint64_t odd = 0;
    CHECK(t, cnts != NULL && get_size(seg, &h, &w) == 0);
    if (!cnts)
        return;
    cJSON_ArrayForEach(c, counts) {
        cnts[m] = (uint32_t)c->valuedouble;
        odd += m % 2 ? cnts[m] : 0;
        m++;
    }
    rle_mask r, back;
    CHECK(t, rle_from_counts(cnts, m, h, w, &r) == 0 && rle_area(&r) == odd);
    double bb[4];
    rle_bbox(&r, bb);
    CHECK(t, bb[0] >= 0 && bb[1] >= 0 && bb[0] + bb[2] <= w && bb[1] + bb[3] <= h);
    char *s = rle_to_string(&r);
    CHECK(t, s && rle_from_string(s, h, w, &back) == 0 && runs_are(&back, cnts, m));
    free(s);
    rle_free(&back);
    rle_free(&r);
    free(cnts);
}

static void check_gt_crowds(check_tally *t, const char *path) {
    cJSON *gt = load_json(path);
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(gt, "annotations"), *a;
    CHECK(t, cJSON_IsArray(anns));
    cJSON_ArrayForEach(a, anns) {
        const cJSON *seg = cJSON_GetObjectItemCaseSensitive(a, "segmentation");
        if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(seg, "counts")))
            check_crowd(t, seg);
    }
    cJSON_Delete(gt);
}

/* Every dt.json (and gt.json, for its crowds) under dir/<case>/; none is no failure. */
static void check_reference_dir(check_tally *t, const char *dir) {
    char *pattern = path_join(dir, "*/dt.json");
    glob_t g;
    if (pattern && glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            check_results_file(t, g.gl_pathv[i]);
            char *gt = strdup(g.gl_pathv[i]);
            if (gt) {
                strcpy(gt + strlen(gt) - strlen("dt.json"), "gt.json");
                check_gt_crowds(t, gt);
            }
            free(gt);
        }
        globfree(&g);
    }
    free(pattern);
}

static void test_reference_files(check_tally *t) {
    char *fixtures = repo_path("tests/fixtures/ap");
    check_reference_dir(t, fixtures);
    free(fixtures);
    const char *env = getenv("AVPS_SHARED");
    char *shared = env ? path_join(env, "reference/ap") : repo_path("../shared/reference/ap");
    if (shared)
        check_reference_dir(t, shared);
    free(shared);
}

/* A polygon far outside a 1 x 1 image: sampling its edges whole would take 6 GB (the
 * 97-byte results file of issue 12); only samples near the image may cost anything. The
 * triangle covers the pixel's centre, so the mask is the one pixel. */
static void test_polygon_far_outside(check_tally *t) {
    const double xy[6] = {1e8, 1e8, -1e8, 1e8, 0, -1e8};
    rle_mask r;
    CHECK(t, rle_from_polygon(xy, 3, 1, 1, &r) == 0 && rle_area(&r) == 1);
    rle_free(&r);
    const double wide[6] = {-1e8, 0.2, 1e8, 0.3, 1e8, 0.9};
    CHECK(t, rle_from_polygon(wide, 3, 4, 4, &r) == 0 && r.h == 4 && r.w == 4);
    rle_free(&r);
}

/* Cases written by pycocotools (tests/test_polygon_parity.sh): per line
 * "h w k x0 y0 ... m c0 c1 ...", COCO's frPyObjects + encode of the polygon. */
static void check_polygon_file(check_tally *t, const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(t, f != NULL);
    if (!f)
        return;
    unsigned h, w;
    size_t k, line = 0;
    while (fscanf(f, "%u %u %zu", &h, &w, &k) == 3) {
        line++;
        double *xy = malloc((2 * k + 1) * sizeof *xy);
        size_t m = 0;
        int ok = xy != NULL;
        for (size_t j = 0; ok && j < 2 * k; j++)
            ok = fscanf(f, "%lf", &xy[j]) == 1;
        ok = ok && fscanf(f, "%zu", &m) == 1;
        uint32_t *want = ok ? malloc((m + 1) * sizeof *want) : NULL;
        for (size_t j = 0; ok && j < m; j++)
            ok = want && fscanf(f, "%u", &want[j]) == 1;
        rle_mask r;
        int same = ok && rle_from_polygon(xy, k, h, w, &r) == 0;
        if (same) {
            same = runs_are(&r, want, m);
            rle_free(&r);
        }
        if (!same)
            fprintf(stderr, "polygon case %zu of %s differs from pycocotools\n", line, path);
        CHECK(t, same);
        free(xy), free(want);
    }
    CHECK(t, line > 0 && feof(f));
    fclose(f);
}

/* ---- issue 12 item 4: every operation on masks with no pixels ----------------------
 * Sizes with h = 0 or w = 0 (up to 2^32 - 1 on the other side), each as COCO encodes it
 * (one empty run), with no runs at all, and with several empty runs. pycocotools 2.0.11
 * gives, where it gives anything: encode "0", area 0, box 0 0 0 0, merge "0", IoU 0
 * (crowd or not), frPoly/frBbox "0" when h = 0. Where it crashes (merging a mask with no
 * runs reads cnts[0] of NULL) or returns runs that do not add up to the image (frPoly
 * with w = 0 skips its x clipping: w - 1 wraps; toBbox of "000" on h = 0 divides by 0),
 * the answer here is the empty mask of the image's size (docs/formats.md). */

static uint64_t run_total(const rle_mask *r) {
    uint64_t s = 0;
    for (size_t j = 0; j < r->m; j++)
        s += r->cnts[j];
    return s;
}

/* Empty: the given size, runs that add up to 0 pixels, area 0, and pycocotools' box:
 * 0 0 0 0, except for two runs or more on h > 0 (so w = 0), where its toBbox starts from
 * x = w, y = h and wraps the unsigned height: 0 h 1 1-h (kept, for parity). For h = 0 it
 * divides by zero; there the box is 0 0 0 0. */
static int is_empty_mask(const rle_mask *r, uint32_t h, uint32_t w) {
    double bb[4] = {1, 1, 1, 1};
    rle_bbox(r, bb);
    int box = r->m >= 2 && h > 0 ? box_is(bb, 0, h, 1, (uint32_t)(1 - h)) : box_is(bb, 0, 0, 0, 0);
    return r->h == h && r->w == w && run_total(r) == 0 && rle_area(r) == 0 && box;
}

enum { N_VARIANTS = 5 };

/* The masks of no pixels of one size: encoded, "", "0", "000", counts {0, 0}. */
static int make_variants(uint32_t h, uint32_t w, rle_mask v[N_VARIANTS]) {
    static const uint8_t none[1] = {0};
    static const uint32_t two_zero[2] = {0, 0};
    int bad = 0;
    bad |= rle_encode(none, h, w, &v[0]);
    bad |= rle_from_string("", h, w, &v[1]);
    bad |= rle_from_string("0", h, w, &v[2]);
    bad |= rle_from_string("000", h, w, &v[3]);
    bad |= rle_from_counts(two_zero, 2, h, w, &v[4]);
    return bad == 0;
}

static void check_variant_alone(check_tally *t, const rle_mask *r, uint32_t h, uint32_t w) {
    CHECK(t, is_empty_mask(r, h, w));
    uint8_t sentinel[2] = {7, 7}; /* 0 pixels: decode writes nothing */
    rle_decode(r, sentinel);
    CHECK(t, sentinel[0] == 7 && sentinel[1] == 7);
    char *s = rle_to_string(r);
    rle_mask back;
    CHECK(t, s && rle_from_string(s, h, w, &back) == 0 && runs_are(&back, r->cnts, r->m));
    free(s);
    rle_free(&back);
    rle_mask one;
    for (int inter = 0; inter < 2; inter++) {
        CHECK(t, rle_merge(r, 1, inter, &one) == 0 && is_empty_mask(&one, h, w));
        rle_free(&one);
    }
}

static void check_variant_pair(check_tally *t, const rle_mask *a, const rle_mask *b) {
    rle_mask pair[2] = {*a, *b}, out;
    for (int inter = 0; inter < 2; inter++) {
        CHECK(t, rle_merge(pair, 2, inter, &out) == 0 && is_empty_mask(&out, a->h, a->w));
        if (a->m > 0 && b->m > 0) /* pycocotools' "0"; with no runs it crashes */
            CHECK(t, same_str(rle_to_string(&out), "0"));
        rle_free(&out);
    }
    for (int crowd = 0; crowd < 2; crowd++)
        CHECK(t, rle_iou(a, b, crowd) == 0);
}

static void check_shapes_on(check_tally *t, uint32_t h, uint32_t w) {
    const double tri[6] = {0, 0, 2, 0, 2, 2}, huge[8] = {-1e6, -1e6, 1e6, -1e6, 1e6, 1e6, -1e6, 1e6};
    const double dot[6] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, box[4] = {0, 0, 2, 2};
    const double *polys[3] = {tri, huge, dot};
    const size_t npts[3] = {3, 4, 3};
    rle_mask r;
    for (int i = 0; i < 3; i++) {
        CHECK(t, rle_from_polygon(polys[i], npts[i], h, w, &r) == 0 && is_empty_mask(&r, h, w));
        rle_free(&r);
    }
    CHECK(t, rle_from_bbox(box, h, w, &r) == 0 && is_empty_mask(&r, h, w));
    rle_free(&r);
}

static void check_no_pixel_size(check_tally *t, uint32_t h, uint32_t w) {
    rle_mask v[N_VARIANTS];
    CHECK(t, make_variants(h, w, v));
    CHECK(t, v[0].m == 1 && v[0].cnts[0] == 0 && same_str(rle_to_string(&v[0]), "0"));
    for (int i = 0; i < N_VARIANTS; i++) {
        check_variant_alone(t, &v[i], h, w);
        for (int j = 0; j < N_VARIANTS; j++)
            check_variant_pair(t, &v[i], &v[j]);
    }
    rle_mask three;
    CHECK(t, rle_merge(v, 3, 0, &three) == 0 && is_empty_mask(&three, h, w));
    rle_free(&three);
    check_shapes_on(t, h, w);
    for (int i = 0; i < N_VARIANTS; i++)
        rle_free(&v[i]);
}

/* An image with pixels and none of them on: one run of h*w; no runs is refused, since
 * the runs must add up to the image. */
static void check_all_off(check_tally *t) {
    uint8_t off[12] = {0};
    rle_mask r, pair[2], out;
    double bb[4];
    CHECK(t, rle_encode(off, 3, 4, &r) == 0 && same_str(rle_to_string(&r), "<"));
    rle_bbox(&r, bb);
    CHECK(t, rle_area(&r) == 0 && box_is(bb, 0, 0, 0, 0));
    pair[0] = pair[1] = r;
    for (int inter = 0; inter < 2; inter++) {
        CHECK(t, rle_merge(pair, 2, inter, &out) == 0 && same_str(rle_to_string(&out), "<"));
        rle_free(&out);
        CHECK(t, rle_iou(&r, &r, inter) == 0);
    }
    rle_free(&r);
    CHECK(t, rle_from_string("", 3, 4, &r) != 0);
    rle_free(&r);
    CHECK(t, rle_from_counts(NULL, 0, 3, 4, &r) != 0);
    rle_free(&r);
    const double zero_box[4] = {0, 0, 0, 0}, box[4] = {0, 0, 2, 2};
    CHECK(t, bbox_iou(zero_box, zero_box, 0) == 0 && bbox_iou(zero_box, box, 1) == 0 &&
                 bbox_iou(box, zero_box, 1) == 0);
}

/* h = 0 with 2^32 - 1 columns must not walk the columns (7 s of CPU a walk at -O2): a
 * second of this process's CPU time ends it with SIGVTALRM, whatever the machine's load. */
static void cpu_guard(int on) {
    struct itimerval tv = {.it_value = {.tv_sec = on ? 1 : 0, .tv_usec = 0}};
    setitimer(ITIMER_VIRTUAL, &tv, NULL);
}

static void test_no_pixel_masks(check_tally *t) {
    const uint32_t sizes[][2] = {{0, 0}, {0, 5}, {5, 0}, {0, UINT32_MAX}, {UINT32_MAX, 0}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cpu_guard(1);
        check_no_pixel_size(t, sizes[i][0], sizes[i][1]);
        cpu_guard(0);
    }
    check_all_off(t);
    rle_mask a = {0}, b = {0}, pair[2], out;
    static const uint8_t none[1] = {0};
    CHECK(t, rle_encode(none, 0, 5, &a) == 0 && rle_encode(none, 5, 0, &b) == 0);
    pair[0] = a;
    pair[1] = b;
    CHECK(t, rle_merge(pair, 2, 0, &out) == -1);
    rle_free(&out);
    CHECK(t, rle_merge(NULL, 0, 1, &out) == 0 && is_empty_mask(&out, 0, 0) && out.m == 0);
    rle_free(&a);
    rle_free(&b);
}

int main(int argc, char **argv) {
    check_tally t = {0};
    if (argc > 1) {
        check_polygon_file(&t, argv[1]);
        return check_report(&t);
    }
    test_polygon_far_outside(&t);
    test_small_mask(&t);
    test_multi_chunk(&t);
    test_empty_masks(&t);
    test_no_pixel_masks(&t);
    test_refusals(&t);
    test_polygon_square(&t);
    test_merge_and_iou(&t);
    test_bbox_iou(&t);
    test_reference_files(&t);
    return check_report(&t);
}
