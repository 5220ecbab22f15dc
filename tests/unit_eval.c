/* unit_eval.c: PQ on hand-built 10x2 images whose answers are worked out by hand:
 * IoU as a ratio of pixel counts, the strict IoU > 0.5 rule, the GT area taken from the
 * JSON, VOID left out of the union, and panopticapi's averages. */
#include "../eval/eval.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/avps_unit_eval_XXXXXX";

/* Ids given as two rows of ten; written as a panoptic PNG. */
static char *write_ids(const char *name, const uint32_t ids[20]) {
    uint8_t rgb[60];
    for (int i = 0; i < 20; i++)
        id_to_rgb(ids[i], rgb + 3 * i);
    char *path = path_join(tmpdir, name);
    avps_error err;
    if (png_write_rgb(path, 10, 2, rgb, &err) != 0)
        fprintf(stderr, "%s\n", err.msg);
    return path;
}

static pan_dataset *load_text(const char *name, const char *text, pan_role role) {
    char *path = path_join(tmpdir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    avps_error err;
    pan_dataset *ds = pan_dataset_load(path, role, &err);
    if (!ds)
        fprintf(stderr, "%s\n", err.msg);
    free(path);
    return ds;
}

/* GT: thing 1 = row 0 (id 1), stuff 2 = row 1 (id 2); gt_area1 is its JSON area. The
 * prediction is read from its PNG, or given in memory when in_memory is set. */
static int eval_case_as(const uint32_t pred_ids[20], int gt_area1, int in_memory, pq_events *ev, avps_error *err) {
    static const uint32_t gt_ids[20] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    char gt_text[512];
    snprintf(gt_text, sizeof gt_text,
             "{\"annotations\": [{\"image_id\": 1, \"file_name\": \"g.png\", \"segments_info\": ["
             "{\"id\": 1, \"category_id\": 1, \"iscrowd\": 0, \"area\": %d},"
             "{\"id\": 2, \"category_id\": 2, \"iscrowd\": 0, \"area\": 10}]}],"
             "\"categories\": [{\"id\": 1, \"isthing\": 1}, {\"id\": 2, \"isthing\": 0}]}",
             gt_area1);
    pan_dataset *gt = load_text("gt.json", gt_text, PAN_GROUND_TRUTH);
    pan_dataset *pred = load_text("pred.json",
                                  "{\"annotations\": [{\"image_id\": 1, \"file_name\": \"p.png\", \"segments_info\": ["
                                  "{\"id\": 5, \"category_id\": 1}, {\"id\": 6, \"category_id\": 2}]}]}",
                                  PAN_PREDICTION);
    char *gp = write_ids("g.png", gt_ids), *pp = write_ids("p.png", pred_ids);
    pq_image_input in = {gt, "pred.json", &gt->annotations[0], &pred->annotations[0], gp, pp, NULL, NULL};
    if (in_memory) {
        in.pred_png = "never-read.png";
        in.pred_ids = pred_ids;
    }
    pq_scratch *s = pq_scratch_new();
    int rc = pq_image_eval(s, &in, ev, err);
    pq_scratch_free(s);
    free(gp);
    free(pp);
    pan_dataset_free(gt);
    pan_dataset_free(pred);
    return rc;
}

static int eval_case(const uint32_t pred_ids[20], int gt_area1, pq_events *ev, avps_error *err) {
    return eval_case_as(pred_ids, gt_area1, 0, ev, err);
}

static int count_kind(const pq_events *ev, uint32_t kind, uint32_t cat) {
    int n = 0;
    for (size_t i = 0; i < ev->n; i++)
        n += ev->items[i].kind == kind && ev->items[i].cat == cat;
    return n;
}

static double iou_of(const pq_events *ev, uint32_t cat) {
    for (size_t i = 0; i < ev->n; i++)
        if (ev->items[i].kind == PQ_TP && ev->items[i].cat == cat)
            return ev->items[i].iou;
    return -1;
}

static void test_matches(check_tally *t) {
    /* pred 5 covers 6 of thing 1's 10 pixels: IoU 6/10; pred 6 has 14 pixels over all
     * 10 of stuff 2: IoU 10/14 */
    static const uint32_t pred[20] = {5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    pq_events ev = {0};
    avps_error err;
    CHECK(t, eval_case(pred, 10, &ev, &err) == 0);
    CHECK(t, iou_of(&ev, 0) == 6.0 / 10.0);
    CHECK(t, iou_of(&ev, 1) == 10.0 / 14.0);
    CHECK(t, count_kind(&ev, PQ_FP, 0) + count_kind(&ev, PQ_FN, 0) == 0);
    pq_totals *tot = pq_totals_new(2);
    CHECK(t, pq_totals_add(tot, "1", ev.items, ev.n) == 0);
    CHECK(t, tot->per_class[0].tp == 1 && tot->per_class[1].tp == 1);
    pq_events_release(&ev);
    pq_totals_free(tot);
}

static void test_half_is_not_a_match(check_tally *t) {
    /* 5 of 10 pixels: IoU exactly 0.5, which panopticapi does not count */
    static const uint32_t pred[20] = {5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    pq_events ev = {0};
    avps_error err;
    CHECK(t, eval_case(pred, 10, &ev, &err) == 0);
    CHECK(t, count_kind(&ev, PQ_TP, 0) == 0);
    CHECK(t, count_kind(&ev, PQ_FN, 0) == 1 && count_kind(&ev, PQ_FP, 0) == 1);
    CHECK(t, iou_of(&ev, 1) == 10.0 / 15.0);
    pq_events_release(&ev);
}

static void test_json_area_is_used(check_tally *t) {
    /* the JSON says thing 1 has 12 pixels: union 6 + 12 - 6 = 12, IoU 0.5, no match;
     * and the mismatch is noted */
    static const uint32_t pred[20] = {5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    pq_events ev = {0};
    avps_error err;
    CHECK(t, eval_case(pred, 12, &ev, &err) == 0);
    CHECK(t, count_kind(&ev, PQ_TP, 0) == 0);
    int notes = 0;
    for (size_t i = 0; i < ev.n; i++)
        notes += ev.items[i].kind == PQ_NOTE_AREA && ev.items[i].segment_id == 1;
    CHECK(t, notes == 1);
    pq_events_release(&ev);
}

static void test_void_leaves_union(check_tally *t) {
    /* 0 in a prediction is unlabelled: thing 1 loses 2 of its pixels to it */
    static const uint32_t pred[20] = {5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    pq_events ev = {0};
    avps_error err;
    CHECK(t, eval_case(pred, 10, &ev, &err) == 0);
    CHECK(t, iou_of(&ev, 0) == 8.0 / 10.0);
    pq_events_release(&ev);
}

static void test_prediction_errors(check_tally *t) {
    static const uint32_t stray[20] = {5, 5, 5, 5, 5, 5, 9, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    static const uint32_t missing[20] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};
    pq_events ev = {0};
    avps_error err;
    CHECK(t, eval_case(stray, 10, &ev, &err) == -1);
    CHECK(t, strstr(err.msg, "image 1: segment 9 is in the PNG") != NULL);
    CHECK(t, eval_case(missing, 10, &ev, &err) == -1);
    CHECK(t, strstr(err.msg, "image 1: segment 6 is in segments_info but not in the PNG") != NULL);
    pq_events_release(&ev);
}

static void test_averages(check_tally *t) {
    pq_class_stat c = {3, 1, 2, 2.4};
    double pq, sq, rq;
    pq_class_ratios(&c, &pq, &sq, &rq);
    CHECK(t, pq == 2.4 / 4.5 && sq == 2.4 / 3 && rq == 3 / 4.5);
    pq_class_stat none = {0, 2, 0, 0};
    pq_class_ratios(&none, &pq, &sq, &rq);
    CHECK(t, pq == 0 && sq == 0 && rq == 0);
}

/* A prediction given in memory yields the same events as its PNG, bit for bit. */
static void test_in_memory_prediction(check_tally *t) {
    static const uint32_t preds[3][20] = {
        {5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6},
        {5, 5, 5, 5, 5, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 0, 0},
        {6, 6, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5},
    };
    for (int k = 0; k < 3; k++) {
        pq_events a = {0}, b = {0};
        avps_error err;
        CHECK(t, eval_case_as(preds[k], 10, 0, &a, &err) == 0);
        CHECK(t, eval_case_as(preds[k], 10, 1, &b, &err) == 0);
        CHECK(t, a.n > 0 && a.n == b.n && memcmp(a.items, b.items, a.n * sizeof *a.items) == 0);
        pq_events_release(&a);
        pq_events_release(&b);
    }
}

int main(void) {
    check_tally t = {0, 0};
    if (!mkdtemp(tmpdir))
        return 2;
    test_matches(&t);
    test_half_is_not_a_match(&t);
    test_json_area_is_used(&t);
    test_void_leaves_union(&t);
    test_prediction_errors(&t);
    test_averages(&t);
    test_in_memory_prediction(&t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        t.failed++;
    return check_report(&t);
}
