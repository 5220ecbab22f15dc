/* fuzz_instances_gt.c: COCO instances ground truth (inst_gt_load, data/instances_json.c)
 * read for segm and for bbox: polygons, uncompressed and compressed RLE, boxes; the
 * streamed reader on 1 and 2 threads against the whole-file tree reader (which also
 * rasterises segm masks on 2 threads), with and without a keep filter. */
#include "../../data/data.h"
#include "fuzz.h"

#include <string.h>

static void check(inst_dataset *ds) {
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_annotations; i++) {
        const inst_annotation *a = &ds->annotations[i];
        long k = inst_image_index(ds, a->image_id);
        FUZZ_ASSERT(k >= 0);
        if (a->rle.m) {
            uint64_t s = 0;
            for (size_t j = 0; j < a->rle.m; j++)
                s += a->rle.cnts[j];
            FUZZ_ASSERT(a->rle.h == ds->images[k].height && a->rle.w == ds->images[k].width);
            FUZZ_ASSERT(s == (uint64_t)a->rle.h * a->rle.w);
        }
        /* a category outside categories[] is legal: pycocotools keeps the annotation and
         * never evaluates it (no catIds entry), and so does avps */
        long c = inst_category_index(ds, a->category_id);
        FUZZ_ASSERT(c < 0 || ds->category_ids[c] == a->category_id);
    }
    inst_dataset_free(ds);
}

/* Two reads of one file: the same error, or the same annotations with the same masks.
 * Frees both. */
static void check_same(inst_dataset *one, const avps_error *e1, inst_dataset *two, const avps_error *e2) {
    FUZZ_ASSERT(!one == !two);
    if (!one)
        FUZZ_ASSERT(strcmp(e1->msg, e2->msg) == 0);
    FUZZ_ASSERT(!one || one->n_annotations == two->n_annotations);
    FUZZ_ASSERT(!one || (one->n_images == two->n_images && one->n_categories == two->n_categories));
    for (size_t i = 0; one && i < one->n_annotations; i++) {
        const inst_annotation *a = &one->annotations[i], *b = &two->annotations[i];
        FUZZ_ASSERT(a->id == b->id && a->image_id == b->image_id && a->category_id == b->category_id);
        FUZZ_ASSERT(a->iscrowd == b->iscrowd && memcmp(&a->area, &b->area, sizeof a->area) == 0);
        FUZZ_ASSERT(memcmp(a->bbox, b->bbox, sizeof a->bbox) == 0);
        FUZZ_ASSERT(a->rle.m == b->rle.m && a->rle.h == b->rle.h && a->rle.w == b->rle.w);
        FUZZ_ASSERT(a->rle.m == 0 || memcmp(a->rle.cnts, b->rle.cnts, a->rle.m * sizeof *a->rle.cnts) == 0);
    }
    check(one);
    check(two);
}

static int keep_odd(void *ctx, size_t image_index) {
    (void)ctx;
    return image_index % 2 == 1;
}

/* The streamed reader (one object at a time, on 1 and 2 threads, all images or every
 * other one) against the whole-file tree reader it hands errors to. */
static void check_readers(const char *path, iou_type type, inst_keep_fn keep) {
    avps_error e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
    inst_dataset *tree = inst_gt_load_tree(path, type, keep, NULL, 1, &e1);
    inst_dataset *one = inst_gt_load_threads(path, type, keep, NULL, 1, &e2);
    check_same(tree, &e1, one, &e2);
    tree = inst_gt_load_tree(path, type, keep, NULL, 2, &e3);
    inst_dataset *two = inst_gt_load_threads(path, type, keep, NULL, 2, &e4);
    check_same(tree, &e3, two, &e4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "gt.json", data, size);
    check(inst_gt_load(path, IOU_SEGM, NULL, NULL, &err));
    check(inst_gt_load(path, IOU_BBOX, NULL, NULL, &err));
    check_readers(path, IOU_SEGM, NULL);
    check_readers(path, IOU_BBOX, NULL);
    check_readers(path, IOU_SEGM, keep_odd);
    unlink(path);
    return 0;
}
