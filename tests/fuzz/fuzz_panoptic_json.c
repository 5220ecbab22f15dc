/* fuzz_panoptic_json.c: COCO panoptic JSON (data/panoptic_json.c) as ground truth, as
 * prediction, as a combiner's frame (images + categories), and as instances (for AP on
 * panoptic ground truth). */
#include "../../data/data.h"
#include "fuzz.h"

static void check(pan_dataset *ds) {
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_annotations; i++) {
        const pan_annotation *a = &ds->annotations[i];
        FUZZ_ASSERT(a->image_id && a->file_name);
        FUZZ_ASSERT(pan_dataset_find_annotation(ds, a->image_id) != NULL);
        for (size_t k = 0; k < a->n_segments; k++)
            FUZZ_ASSERT(a->segments[k].id != 0);
    }
    for (size_t i = 0; i < ds->n_images; i++)
        FUZZ_ASSERT(pan_dataset_find_image(ds, ds->images[i].id) != NULL);
    avps_error err;
    inst_dataset *inst = inst_frame_from_pan(ds, &err);
    inst_dataset_free(inst);
    pan_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "panoptic.json", data, size);
    check(pan_dataset_load(path, PAN_GROUND_TRUTH, &err));
    check(pan_dataset_load(path, PAN_PREDICTION, &err));
    check(pan_frame_load(path, path, &err));
    unlink(path);
    return 0;
}
