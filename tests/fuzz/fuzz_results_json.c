/* fuzz_results_json.c: COCO results lists (data/instances_json.c): inst_results_load for
 * segm and bbox, and inst_masks_load (the combiners' reader, polygons too), against a
 * fixed small ground truth: images 1 (5x4), 2 (1x1), 7 (3x9); categories 1, 2, 18. */
#include "../../data/data.h"
#include "fuzz.h"

static const char gt_json[] =
    "{\"images\": [{\"id\": 1, \"width\": 5, \"height\": 4}, {\"id\": 2, \"width\": 1, \"height\": 1},"
    " {\"id\": 7, \"width\": 3, \"height\": 9}],"
    " \"categories\": [{\"id\": 1, \"name\": \"a\"}, {\"id\": 2, \"name\": \"b\"}, {\"id\": 18, \"name\": \"c\"}],"
    " \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"iscrowd\": 0, \"area\": 4,"
    " \"bbox\": [0, 0, 2, 2], \"segmentation\": [[0, 0, 2, 0, 2, 2, 0, 2]]}]}";

static inst_dataset *gt_segm, *gt_bbox;

static void check(inst_dataset *ds) {
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_annotations; i++) {
        const inst_annotation *a = &ds->annotations[i];
        FUZZ_ASSERT(inst_image_index(gt_segm, a->image_id) >= 0);
        if (a->rle.m) {
            uint64_t s = 0;
            for (size_t k = 0; k < a->rle.m; k++)
                s += a->rle.cnts[k];
            FUZZ_ASSERT(s == (uint64_t)a->rle.h * a->rle.w);
        }
    }
    inst_dataset_free(ds);
}

/* inst_results_load_threads (2 threads, masks kept compressed) against inst_results_load:
 * the same error, or the same results with the same masks once decoded. */
static void check_threads(const char *path, const inst_dataset *gt, iou_type type) {
    avps_error e1 = {0}, e2 = {0};
    inst_dataset *one = inst_results_load(path, gt, type, NULL, NULL, &e1);
    inst_dataset *two = inst_results_load_threads(path, gt, type, NULL, NULL, 2, &e2);
    FUZZ_ASSERT(!one == !two);
    if (!one)
        FUZZ_ASSERT(strcmp(e1.msg, e2.msg) == 0);
    FUZZ_ASSERT(!one || one->n_annotations == two->n_annotations);
    rle_scratch runs = {0}; /* reused from mask to mask, as eval does */
    for (size_t i = 0; one && i < one->n_annotations; i++) {
        const inst_annotation *a = &one->annotations[i], *b = &two->annotations[i];
        FUZZ_ASSERT(a->id == b->id && a->image_id == b->image_id && a->category_id == b->category_id);
        FUZZ_ASSERT(memcmp(&a->score, &b->score, sizeof a->score) == 0 && memcmp(a->bbox, b->bbox, sizeof a->bbox) == 0);
        FUZZ_ASSERT(memcmp(&a->area, &b->area, sizeof a->area) == 0);
        rle_mask view;
        const rle_mask *m = inst_annotation_mask(b, &runs, &view);
        FUZZ_ASSERT(m && m->m == a->rle.m && m->h == a->rle.h && m->w == a->rle.w);
        FUZZ_ASSERT(m->m == 0 || memcmp(m->cnts, a->rle.cnts, m->m * sizeof *m->cnts) == 0);
    }
    rle_scratch_free(&runs);
    check(one);
    check(two);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "gt.json", gt_json, sizeof gt_json - 1);
    gt_segm = inst_gt_load(path, IOU_SEGM, NULL, NULL, &err);
    gt_bbox = inst_gt_load(path, IOU_BBOX, NULL, NULL, &err);
    unlink(path);
    if (!gt_segm || !gt_bbox) {
        fprintf(stderr, "fuzz_results_json: the fixed ground truth: %s\n", err.msg);
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "results.json", data, size);
    check_threads(path, gt_segm, IOU_SEGM);
    check_threads(path, gt_bbox, IOU_BBOX);
    check(inst_masks_load(path, gt_segm, 0, NULL, NULL, &err));
    check(inst_masks_load(path, gt_segm, 1, NULL, NULL, &err));
    unlink(path);
    return 0;
}
