/* unit_class_table.c: the class table on hand-made scores: the per-class choice, ties
 * to the lower end index, the fallback below min_instances or with an undefined score,
 * the overall rule, the JSON round trip and re-indexing to the caller's end order, the
 * end map for fusion, and each malformed table refused with a message naming the item. */
#include "../fusion/fusion.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/avps_unit_class_table_XXXXXX";

static char *write_text(const char *name, const char *text) {
    char *path = path_join(tmpdir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Three things (1, 2, 4) and one stuff (3) category; one image without segments. */
static const char gt_json[] =
    "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 4, \"height\": 2}],\n"
    " \"annotations\": [{\"image_id\": 1, \"file_name\": \"a.png\", \"segments_info\": []}],\n"
    " \"categories\": [{\"id\": 1, \"name\": \"cat\", \"isthing\": 1}, {\"id\": 2, \"name\": \"dog\", \"isthing\": 1},\n"
    "   {\"id\": 3, \"name\": \"sky\", \"isthing\": 0}, {\"id\": 4, \"name\": \"cow\", \"isthing\": 1}]}";

static const char *const two_ends[] = {"ups", "htc"};

/* A table over categories 1, 2, 4 with the given scores (3 x 2) and counts. */
static int make_table(class_table *t, const double *scores, const uint64_t *counts, uint64_t min_instances) {
    avps_error err;
    if (class_table_init(t, "mask_ap", two_ends, 2, 3, &err) != 0)
        return -1;
    const int32_t ids[3] = {1, 2, 4};
    for (size_t c = 0; c < 3; c++) {
        t->category_id[c] = ids[c];
        t->n_heldout[c] = counts[c];
        t->score[2 * c] = scores[2 * c];
        t->score[2 * c + 1] = scores[2 * c + 1];
    }
    t->min_instances = min_instances;
    return class_table_choose(t, &err);
}

static void test_choice(check_tally *t) {
    class_table tb;
    /* ups better on 1, tie on 2, htc better on 4; means: ups .5, htc .5333 -> htc overall */
    const double s[6] = {0.6, 0.4, 0.5, 0.5, 0.4, 0.7};
    const uint64_t n[3] = {20, 20, 20};
    CHECK(t, make_table(&tb, s, n, 10) == 0);
    CHECK(t, tb.overall_best == 1);
    CHECK(t, tb.chosen[0] == 0 && tb.chosen[1] == 0 && tb.chosen[2] == 1);
    CHECK(t, !tb.fallback[0] && !tb.fallback[1] && !tb.fallback[2]);
    class_table_release(&tb);

    /* category 1 has 9 held-out instances, below 10: it takes the overall best (htc) */
    const uint64_t few[3] = {9, 10, 20};
    CHECK(t, make_table(&tb, s, few, 10) == 0);
    CHECK(t, tb.chosen[0] == 1 && tb.fallback[0] == 1);
    CHECK(t, tb.chosen[1] == 0 && tb.fallback[1] == 0); /* exactly 10 is enough */
    class_table_release(&tb);

    /* an undefined score: the class falls back, and is left out of the overall means
     * (with it, ups would win: .2 + .9 + .2 against .3 + .3 + ...) */
    const double u[6] = {0.2, 0.3, 0.9, NAN, 0.2, 0.3};
    CHECK(t, make_table(&tb, u, n, 0) == 0);
    CHECK(t, tb.overall_best == 1);
    CHECK(t, tb.chosen[1] == 1 && tb.fallback[1] == 1);
    class_table_release(&tb);

    /* an exact tie overall goes to the lower index */
    const double tie[6] = {0.5, 0.4, 0.4, 0.5, 0.1, 0.1};
    CHECK(t, make_table(&tb, tie, n, 0) == 0);
    CHECK(t, tb.overall_best == 0 && tb.chosen[2] == 0);
    class_table_release(&tb);

    /* an infinite score is refused */
    const double inf[6] = {0.5, INFINITY, 0.4, 0.5, 0.1, 0.1};
    CHECK(t, make_table(&tb, inf, n, 0) == -1);
    class_table_release(&tb);
}

static void test_round_trip(check_tally *t, const pan_dataset *ds) {
    avps_error err;
    class_table a, b, c;
    const double s[6] = {0.6, 0.4, 0.1 / 3, NAN, 0.4, 0.7};
    const uint64_t n[3] = {20, 3, 20};
    CHECK(t, make_table(&a, s, n, 5) == 0);
    char *path = path_join(tmpdir, "table.json");
    CHECK(t, class_table_write(path, &a, &err) == 0);
    CHECK(t, class_table_read(path, ds, two_ends, 2, &b, &err) == 0);
    CHECK(t, b.n_ends == 2 && b.n_classes == 3 && strcmp(b.metric, "mask_ap") == 0 && b.min_instances == 5);
    CHECK(t, b.overall_best == a.overall_best);
    int same = 1;
    for (size_t i = 0; i < 3; i++) {
        same &= b.category_id[i] == a.category_id[i] && b.chosen[i] == a.chosen[i] && b.fallback[i] == a.fallback[i];
        same &= b.n_heldout[i] == a.n_heldout[i];
        for (size_t e = 0; e < 2; e++)
            same &= isnan(a.score[2 * i + e]) ? isnan(b.score[2 * i + e]) : a.score[2 * i + e] == b.score[2 * i + e];
    }
    CHECK(t, same);
    /* the caller's ends in the other order: indexes follow the caller */
    const char *const swapped[] = {"htc", "ups"};
    CHECK(t, class_table_read(path, ds, swapped, 2, &c, &err) == 0);
    CHECK(t, strcmp(c.end_names[0], "htc") == 0 && c.overall_best == 1 - a.overall_best);
    CHECK(t, c.chosen[0] == 1 - a.chosen[0] && c.chosen[2] == 1 - a.chosen[2]);
    CHECK(t, c.score[0] == a.score[1] && c.score[1] == a.score[0]);
    /* an end index out of range is not written */
    c.chosen[1] = 2;
    char *never = path_join(tmpdir, "never.json");
    CHECK(t, class_table_write(never, &c, &err) == -1 && strstr(err.msg, "category 2") != NULL);
    CHECK(t, access(never, F_OK) != 0);
    free(never);
    c.chosen[1] = 0;
    /* the end map: things get their end, stuff -1 */
    int map[4];
    CHECK(t, class_table_end_map(&c, ds, map, &err) == 0);
    CHECK(t, map[0] == c.chosen[0] && map[1] == c.chosen[1] && map[2] == -1 && map[3] == c.chosen[2]);
    class_table_release(&a);
    class_table_release(&b);
    class_table_release(&c);
    free(path);
}

/* A table text made from a class list and optional header overrides. */
static char *table_text(const char *ends, const char *best, const char *classes) {
    char *s = malloc(4096);
    snprintf(s, 4096,
             "{\"format\": \"avps class table 1\", \"metric\": \"mask_ap\", \"min_instances\": 10, \"ends\": %s,\n"
             " \"overall_best\": \"%s\", \"classes\": [%s]}",
             ends, best, classes);
    return s;
}

#define CLS(id, end, score) "{\"category_id\": " #id ", \"end\": \"" end "\", \"fallback\": false, " \
                            "\"n_heldout\": 12, \"score\": " score "}"
#define GOOD_SCORE "{\"ups\": 0.5, \"htc\": null}"
#define GOOD_REST CLS(2, "ups", GOOD_SCORE) ", " CLS(4, "htc", GOOD_SCORE)

static void expect_refusal(check_tally *t, const pan_dataset *ds, const char *text, const char *want) {
    avps_error err = {{0}};
    class_table tb;
    char *p = write_text("bad.json", text);
    int rc = class_table_read(p, ds, two_ends, 2, &tb, &err);
    CHECK(t, rc == -1);
    if (!strstr(err.msg, want) || !strstr(err.msg, "bad.json"))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, want);
    CHECK(t, strstr(err.msg, want) != NULL && strstr(err.msg, "bad.json") != NULL);
    if (rc == 0)
        class_table_release(&tb);
    free(p);
}

static void test_refusals(check_tally *t, const pan_dataset *ds) {
    const char *ends = "[\"ups\", \"htc\"]";
    struct {
        char *text;
        const char *want;
    } cases[] = {
        {table_text(ends, "ups", CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST), NULL}, /* the good one */
        {table_text(ends, "ups", CLS(1, "yolo", GOOD_SCORE) ", " GOOD_REST), "classes[0]: category 1: \"end\": unknown end 'yolo'"},
        {table_text("[\"ups\", \"htc\", \"yolo\"]", "ups", CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST), "ends[2]: unknown end 'yolo'"},
        {table_text("[\"ups\"]", "ups", CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST), "end 'htc' is not in the table"},
        {table_text("[\"ups\", \"ups\"]", "ups", CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST), "ends[1]: end 'ups' is named twice"},
        {table_text(ends, "nobody", CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST), "\"overall_best\": unknown end 'nobody'"},
        {table_text(ends, "ups", CLS(9, "ups", GOOD_SCORE) ", " GOOD_REST), "classes[0]: category 9 is unknown"},
        {table_text(ends, "ups", CLS(3, "ups", GOOD_SCORE) ", " CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST),
         "classes[0]: category 3 (sky) is a stuff category"},
        {table_text(ends, "ups", CLS(1, "ups", GOOD_SCORE) ", " CLS(1, "ups", GOOD_SCORE) ", " GOOD_REST),
         "classes[1]: category 1 is listed twice"},
        {table_text(ends, "ups", GOOD_REST), "thing category 1 (cat)"},
        {table_text(ends, "ups", CLS(1, "ups", "{\"ups\": \"high\", \"htc\": 1}") ", " GOOD_REST),
         "classes[0]: category 1: score of end 'ups' must be a finite number or null"},
        {table_text(ends, "ups", CLS(1, "ups", "{\"ups\": 1, \"rcnn\": 1}") ", " GOOD_REST),
         "classes[0]: category 1: score: unknown end 'rcnn'"},
        {table_text(ends, "ups", CLS(1, "ups", "{\"ups\": 1}") ", " GOOD_REST), "classes[0]: category 1: \"score\" must give every end"},
        {table_text(ends, "ups", CLS(1.5, "ups", GOOD_SCORE) ", " GOOD_REST), "classes[0]: \"category_id\" must be an integer"},
        {table_text(ends, "ups", "{\"category_id\": 1, \"end\": \"ups\", \"fallback\": 0, \"n_heldout\": 1, \"score\": " GOOD_SCORE "}, " GOOD_REST),
         "classes[0]: category 1: \"fallback\" must be true or false"},
        {table_text(ends, "ups", "{\"category_id\": 1, \"end\": \"ups\", \"fallback\": true, \"n_heldout\": -1, \"score\": " GOOD_SCORE "}, " GOOD_REST),
         "classes[0]: category 1: \"n_heldout\" must be a whole number"},
        {strdup("{\"metric\": \"iou\", \"min_instances\": 1, \"ends\": [\"ups\", \"htc\"], \"classes\": []}"), "\"metric\" must be"},
        {strdup("{\"metric\": \"mask_ap\", \"min_instances\": 1.5, \"ends\": [\"ups\", \"htc\"], \"classes\": []}"), "\"min_instances\" must be"},
        {strdup("[1, 2]"), "not a JSON object"},
        {strdup("{\"metric\": \"mask_ap\", "), "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].want) {
            expect_refusal(t, ds, cases[i].text, cases[i].want);
        } else {
            avps_error err;
            class_table tb;
            char *p = write_text("good.json", cases[i].text);
            int rc = class_table_read(p, ds, two_ends, 2, &tb, &err);
            if (rc != 0)
                fprintf(stderr, "good table refused: %s\n", err.msg);
            CHECK(t, rc == 0);
            CHECK(t, rc != 0 || (tb.chosen[0] == 0 && tb.chosen[2] == 1 && isnan(tb.score[1]) && tb.score[0] == 0.5));
            if (rc == 0)
                class_table_release(&tb);
            free(p);
        }
        free(cases[i].text);
    }
}

int main(void) {
    check_tally t = {0, 0};
    avps_error err;
    if (!mkdtemp(tmpdir))
        return 2;
    char *p = write_text("gt.json", gt_json);
    pan_dataset *ds = pan_dataset_load(p, PAN_GROUND_TRUTH, &err);
    CHECK(&t, ds != NULL);
    test_choice(&t);
    if (ds) {
        test_round_trip(&t, ds);
        test_refusals(&t, ds);
    }
    pan_dataset_free(ds);
    free(p);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        t.failed++;
    return check_report(&t);
}
