/* unit_calibrate.c: the pieces of calibration that stand alone: end specs (sim, replay,
 * ensembles) parsed into head configs (and refused), and ap_per_class on a resample with a repeated image,
 * which must equal ap_accumulate on a dataset holding that image twice under two ids. */
#include "../eval/eval.h"
#include "../mpi/end_spec.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_end_specs(check_tally *t) {
    avps_error err;
    end_spec s;
    CHECK(t, end_spec_parse("ups=sim:r50", &s, &err) == 0);
    CHECK(t, strcmp(s.cfg.name, "ups") == 0 && strcmp(s.cfg.backend, "sim") == 0 && strcmp(s.cfg.profile, "r50") == 0);
    CHECK(t, s.cfg.seed == 1 && s.cfg.store == NULL);
    end_spec_release(&s);
    CHECK(t, end_spec_parse("h=sim:conf/my:profile.json:42", &s, &err) == 0);
    CHECK(t, strcmp(s.cfg.profile, "conf/my:profile.json") == 0 && s.cfg.seed == 42);
    end_spec_release(&s);
    CHECK(t, end_spec_parse("htc=replay:/data/stores/htc", &s, &err) == 0);
    CHECK(t, strcmp(s.cfg.backend, "replay") == 0 && strcmp(s.cfg.store, "/data/stores/htc") == 0);
    end_spec_release(&s);
    CHECK(t, end_spec_parse("e=ensemble:a=sim:r50*0.4,b=replay:/s/b*1.5e0", &s, &err) == 0);
    CHECK(t, s.n_members == 2 && s.weights[0] == 0.4 && s.weights[1] == 1.5 && strcmp(s.cfg.name, "e") == 0);
    CHECK(t, s.n_members == 2 && strcmp(s.members[0].cfg.profile, "r50") == 0 && strcmp(s.members[1].cfg.store, "/s/b") == 0);
    end_spec_release(&s);
    const char *bad[] = {"ups", "=sim:r50", "ups=sim:", "ups=replay:", "ups=onnx:x", "ups=sim:r50:99999999999",
                         "e=ensemble:", "e=ensemble:a=sim:r50", "e=ensemble:a=sim:r50*x", "e=ensemble:a=sim:r50*1,",
                         "e=ensemble:a=ensemble:b=sim:r50*1*1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        avps_error e = {{0}};
        CHECK(t, end_spec_parse(bad[i], &s, &e) == -1);
        CHECK(t, strstr(e.msg, bad[i]) != NULL);
    }
}

/* A w x 1 row mask, on over [x0, x1). */
static rle_mask row_mask(uint32_t w, uint32_t x0, uint32_t x1) {
    uint8_t m[64] = {0};
    for (uint32_t x = x0; x < x1; x++)
        m[x] = 1;
    rle_mask r;
    rle_encode(m, 1, w, &r);
    return r;
}

typedef struct {
    int64_t image;
    int32_t cat;
    uint32_t x0, x1;
    double score;
} box;

static void fill(inst_dataset *ds, inst_image *images, size_t n_images, int32_t *cats, const box *b, size_t n,
                 int is_gt) {
    memset(ds, 0, sizeof *ds);
    ds->path = "hand-made";
    ds->n_images = n_images;
    ds->images = images;
    ds->n_categories = 2;
    ds->category_ids = cats;
    ds->n_annotations = n;
    ds->annotations = calloc(n + 1, sizeof *ds->annotations);
    for (size_t i = 0; i < n; i++) {
        inst_annotation *a = &ds->annotations[i];
        a->id = (int64_t)i + 1;
        a->image_id = b[i].image;
        a->category_id = b[i].cat;
        a->rle = row_mask(32, b[i].x0, b[i].x1);
        a->area = (double)rle_area(&a->rle);
        a->score = is_gt ? 0 : b[i].score;
    }
}

static void release(inst_dataset *ds) {
    for (size_t i = 0; i < ds->n_annotations; i++)
        rle_free(&ds->annotations[i].rle);
    free(ds->annotations);
}

/* Records of every image of (gt, dt), in image order. */
static void records_of(const inst_dataset *gt, const inst_dataset *dt, ap_records *rec) {
    avps_error err;
    ap_index *ix = ap_index_new(gt, dt);
    for (size_t i = 0; i < gt->n_images; i++)
        ap_image_eval(ix, i, IOU_SEGM, &rec[i], &err);
    ap_index_free(ix);
}

static void test_resample(check_tally *t) {
    int32_t cats[2] = {3, 7};
    /* image 1: two GT of class 3, detections with a miss and a tie in score across
     * images; image 2: one GT of each class. Image 1 repeated as image 5 for the
     * reference dataset. */
    const box gt1[] = {{1, 3, 0, 10, 0}, {1, 3, 12, 20, 0}, {1, 7, 22, 30, 0}};
    const box gt2[] = {{2, 3, 4, 14, 0}, {2, 7, 16, 30, 0}};
    const box dt1[] = {{1, 3, 0, 9, .9}, {1, 3, 21, 31, .6}, {1, 7, 22, 28, .6}, {1, 3, 12, 19, .4}};
    const box dt2[] = {{2, 3, 5, 14, .6}, {2, 7, 0, 8, .8}, {2, 7, 16, 29, .5}};
    box gt_all[16], dt_all[16];
    size_t ng = 0, nd = 0;
    int64_t ids[3] = {1, 2, 5};
    for (int k = 0; k < 3; k++) { /* images 1, 2, then 5 = image 1 again */
        const box *g = k == 1 ? gt2 : gt1, *d = k == 1 ? dt2 : dt1;
        size_t gn = k == 1 ? 2 : 3, dn = k == 1 ? 3 : 4;
        for (size_t i = 0; i < gn; i++, ng++)
            gt_all[ng] = g[i], gt_all[ng].image = ids[k];
        for (size_t i = 0; i < dn; i++, nd++)
            dt_all[nd] = d[i], dt_all[nd].image = ids[k];
    }
    inst_image images[3] = {{1, 32, 1}, {2, 32, 1}, {5, 32, 1}};
    inst_dataset gt, dt;
    fill(&gt, images, 3, cats, gt_all, ng, 1);
    fill(&dt, images, 3, cats, dt_all, nd, 0);
    ap_records rec[3] = {{0}};
    records_of(&gt, &dt, rec);
    avps_error err;
    ap_summary ref;
    const uint8_t *r[3] = {rec[0].data, rec[1].data, rec[2].data};
    size_t len[3] = {rec[0].len, rec[1].len, rec[2].len};
    CHECK(t, ap_accumulate(&gt, r, len, &ref, &err) == 0);
    /* the resample "image 1 twice, image 2 once", listed as the reference's id order
     * 1, 2, 5 lists them */
    double pc[2];
    const uint8_t *rs[3] = {rec[0].data, rec[1].data, rec[0].data};
    size_t ls[3] = {rec[0].len, rec[1].len, rec[0].len};
    CHECK(t, ap_per_class(2, 3, rs, ls, pc, &err) == 0);
    CHECK(t, pc[0] == ref.per_class_ap[0] && pc[1] == ref.per_class_ap[1]);
    CHECK(t, ref.per_class_ap[0] > 0 && ref.per_class_ap[0] < 1 && ref.per_class_ap[1] > 0);
    /* on the images once each, it equals ap_accumulate on the two-image dataset */
    inst_dataset gt2d = gt, dt2d = dt;
    gt2d.n_images = dt2d.n_images = 2;
    gt2d.n_annotations = 5;
    dt2d.n_annotations = 7;
    ap_records rec2[2] = {{0}};
    records_of(&gt2d, &dt2d, rec2);
    ap_summary ref2;
    const uint8_t *r2[2] = {rec2[0].data, rec2[1].data};
    size_t len2[2] = {rec2[0].len, rec2[1].len};
    CHECK(t, ap_accumulate(&gt2d, r2, len2, &ref2, &err) == 0);
    CHECK(t, ap_per_class(2, 2, r2, len2, pc, &err) == 0);
    CHECK(t, pc[0] == ref2.per_class_ap[0] && pc[1] == ref2.per_class_ap[1]);
    CHECK(t, pc[0] != ref.per_class_ap[0] || pc[1] != ref.per_class_ap[1]); /* the repeat matters */
    /* a class without ground truth in the list is undefined */
    CHECK(t, ap_per_class(2, 0, r2, len2, pc, &err) == 0 && pc[0] == -1 && pc[1] == -1);
    ap_summary_release(&ref);
    ap_summary_release(&ref2);
    for (int i = 0; i < 3; i++)
        ap_records_release(&rec[i]);
    for (int i = 0; i < 2; i++)
        ap_records_release(&rec2[i]);
    release(&gt);
    release(&dt);
}

int main(void) {
    check_tally t = {0, 0};
    test_end_specs(&t);
    test_resample(&t);
    return check_report(&t);
}
