/* fuzz_instances_gt.c: COCO instances ground truth (inst_gt_load, data/instances_json.c)
 * read for segm and for bbox: polygons, uncompressed and compressed RLE, boxes. */
#include "../../data/data.h"
#include "fuzz.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "gt.json", data, size);
    check(inst_gt_load(path, IOU_SEGM, NULL, NULL, &err));
    check(inst_gt_load(path, IOU_BBOX, NULL, NULL, &err));
    unlink(path);
    return 0;
}
