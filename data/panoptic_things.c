/* panoptic_things.c: the thing segments of a panoptic ground truth as instance masks, so
 * that a held-out set with only panoptic annotations can be scored with mask AP. */
#include "data.h"

#include <stdlib.h>
#include <string.h>

static int read_ids(const char *path, const pan_image *im, uint32_t **ids, uint32_t *h, uint32_t *w,
                    avps_error *err) {
    png_reader *r = im ? png_reader_open_sized(path, im->width, im->height, err) : png_reader_open(path, err);
    if (!r)
        return -1;
    *w = png_reader_width(r);
    *h = png_reader_height(r);
    size_t n = (size_t)*w * *h;
    uint8_t *row = malloc((size_t)*w * 3 + 1);
    *ids = malloc(n * sizeof **ids + 1);
    int rc = row && *ids ? 0 : avps_fail(err, "%s: out of memory", path);
    for (uint32_t y = 0; rc == 0 && y < *h; y++) {
        rc = png_reader_read_row(r, row, err);
        for (uint32_t x = 0; rc == 0 && x < *w; x++)
            (*ids)[(size_t)y * *w + x] = rgb_to_id(row + 3 * x);
    }
    free(row);
    png_reader_free(r);
    return rc;
}

int pan_thing_masks(const pan_dataset *ds, const pan_annotation *ann, const char *png_path, rle_mask *masks,
                    uint32_t *h, uint32_t *w, avps_error *err) {
    uint32_t *ids = NULL;
    memset(masks, 0, ann->n_segments * sizeof *masks);
    if (read_ids(png_path, pan_dataset_find_image(ds, ann->image_id), &ids, h, w, err) != 0) {
        free(ids);
        return avps_prefix(err, "%s: image %s", ds->path, ann->image_id);
    }
    size_t n = (size_t)*h * *w;
    uint8_t *mask = malloc(n + 1);
    int rc = mask ? 0 : avps_fail(err, "%s: image %s: out of memory", ds->path, ann->image_id);
    for (size_t i = 0; rc == 0 && i < ann->n_segments; i++) {
        int c = pan_dataset_category_index(ds, ann->segments[i].category_id);
        if (c < 0 || !ds->categories[c].isthing)
            continue;
        for (size_t p = 0; p < n; p++)
            mask[p] = ids[p] == ann->segments[i].id;
        if (rle_encode(mask, *h, *w, &masks[i]) != 0)
            rc = avps_fail(err, "%s: image %s: out of memory", ds->path, ann->image_id);
    }
    free(mask);
    free(ids);
    if (rc != 0)
        for (size_t i = 0; i < ann->n_segments; i++)
            rle_free(&masks[i]);
    return rc;
}
