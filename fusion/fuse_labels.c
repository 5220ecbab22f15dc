/* fuse_labels.c: from a label map (one label per pixel, as a per-pixel argmax gives) to
 * one COCO RLE mask per label, and segments appended to a panoptic result. The map is
 * row-major; COCO runs go down the columns, so it is read column by column. */
#include "fuse_internal.h"

#include <stdlib.h>
#include <string.h>

/* Segment ids are PNG colours: 24 bits, 0 being VOID. */
#define MAX_SEGMENT_ID 0xFFFFFFu

typedef struct {
    uint32_t *cnts;
    size_t m, cap;
    uint64_t end; /* position just after the last pixel on so far */
} label_runs;

static int runs_push(label_runs *r, uint32_t run) {
    if (r->m == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        uint32_t *grown = realloc(r->cnts, cap * sizeof *grown);
        if (!grown)
            return -1;
        r->cnts = grown, r->cap = cap;
    }
    r->cnts[r->m++] = run;
    return 0;
}

/* Pixel pos (column-major) is on: it extends the last run of 1s, or a run of 0s since
 * the last pixel on comes first. */
static int runs_add_pixel(label_runs *r, uint64_t pos) {
    if (r->m > 0 && pos == r->end) {
        r->cnts[r->m - 1]++;
    } else if (runs_push(r, (uint32_t)(pos - r->end)) != 0 || runs_push(r, 1) != 0) {
        return -1;
    }
    r->end = pos + 1;
    return 0;
}

int fuse_labels_to_masks(const uint32_t *labels, uint32_t h, uint32_t w, size_t n_labels, rle_mask *masks) {
    uint64_t total = (uint64_t)h * w;
    label_runs *runs = calloc(n_labels + 1, sizeof *runs);
    int rc = runs ? 0 : -1;
    for (uint32_t x = 0; rc == 0 && x < w; x++)
        for (uint32_t y = 0; rc == 0 && y < h; y++) {
            uint32_t l = labels[(size_t)y * w + x];
            if (l < n_labels)
                rc = runs_add_pixel(&runs[l], (uint64_t)x * h + y);
        }
    for (size_t l = 0; rc == 0 && l < n_labels; l++)
        if (runs[l].m > 0 && runs[l].end < total)
            rc = runs_push(&runs[l], (uint32_t)(total - runs[l].end));
    for (size_t l = 0; l < n_labels; l++) {
        masks[l] = (rle_mask){.h = h, .w = w};
        if (rc == 0 && runs[l].m > 0) {
            masks[l].m = runs[l].m;
            masks[l].cnts = runs[l].cnts;
        } else {
            free(runs[l].cnts);
        }
    }
    free(runs);
    return rc;
}

int fuse_panoptic_append(fusion_panoptic *out, size_t *cap, int32_t category_id, rle_mask *mask) {
    if (out->n_segments >= MAX_SEGMENT_ID)
        return -1;
    if (out->n_segments == *cap) {
        size_t grown = *cap ? 2 * *cap : 16;
        pan_segment *segs = realloc(out->segments, grown * sizeof *segs);
        if (segs)
            out->segments = segs;
        rle_mask *masks = segs ? realloc(out->masks, grown * sizeof *masks) : NULL;
        if (!masks)
            return -1;
        out->masks = masks;
        *cap = grown;
    }
    size_t s = out->n_segments++;
    pan_segment *seg = &out->segments[s];
    memset(seg, 0, sizeof *seg);
    seg->id = (uint32_t)s + 1;
    seg->category_id = category_id;
    seg->area = (double)rle_area(mask);
    double box[4];
    rle_bbox(mask, box);
    for (int k = 0; k < 4; k++)
        seg->bbox[k] = (int32_t)box[k];
    out->masks[s] = *mask;
    *mask = (rle_mask){0};
    return 0;
}
