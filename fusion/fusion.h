/* fusion: turning the predictions of one or several network ends into one panoptic
 * result per image.
 *
 * Contract:
 * - Everything works on full-image binary masks as COCO RLE (rle_mask, data.h): set
 *   operations walk runs, never pixels, so they are exact and cost what the masks' runs
 *   cost. Masks passed in are borrowed; masks handed out are owned by the result.
 * - One image at a time: memory is bounded by the image in hand.
 * - A result is a pure function of its inputs (no randomness, no global state), so any
 *   rank or thread gives the same bytes.
 * - Functions that can fail return 0 or -1 with an avps_error naming the image and item.
 */
#ifndef AVPS_FUSION_H
#define AVPS_FUSION_H

#include "../data/data.h"

/* ---- masks: exact set algebra on runs (fusion/mask_ops.c) ------------------------------
 *
 * Outputs are canonical: no empty runs except a first run of 0s (when pixel 0 is on). */

/* Checks that m is h x w and that its runs add up to h * w; 0 or -1. */
int mask_check(const rle_mask *m, uint32_t h, uint32_t w);
/* The h x w mask with no pixel on. */
int mask_none(uint32_t h, uint32_t w, rle_mask *out);
/* a and not b; a or b. Both h x w and checked; -1 only when out of memory. */
int mask_minus(const rle_mask *a, const rle_mask *b, rle_mask *out);
int mask_union(const rle_mask *a, const rle_mask *b, rle_mask *out);
/* Writes id into ids (h x w, row-major) at every pixel of m. */
void mask_paint(const rle_mask *m, uint32_t id, uint32_t *ids);

/* ---- task-independent level: combiners ----------------------------------------------- */

/* Network ends whose instances may have thresholds of their own. */
#define FUSION_MAX_ENDS 8

typedef struct {
    int32_t category_id;
    double score;
    rle_mask mask;  /* borrowed */
    int end;        /* the network end it came from, 0..FUSION_MAX_ENDS-1 */
} fusion_instance;

/* A semantic candidate: the pixels one semantic prediction gives one category. */
typedef struct {
    int32_t category_id;
    rle_mask mask;  /* borrowed */
} fusion_stuff;

typedef struct {
    double confidence_thr[FUSION_MAX_ENDS]; /* an instance scoring below its end's is dropped */
    double overlap_thr;        /* dropped when more than this part of it is already taken */
    uint64_t stuff_area_limit; /* a stuff segment with fewer pixels left is dropped */
} combine_params;

/* panopticapi's defaults: 0.5 for every end, 0.5, 64 * 64. */
void combine_params_default(combine_params *p);

/* One image's inputs. Instances in the caller's order (ties in score keep it); stuff
 * candidates in the order they are to be pasted (file order, or category order for a
 * label map). Categories tell things from stuff; every category used must be there. */
typedef struct {
    const char *image_id;  /* for messages */
    uint32_t h, w;
    const fusion_instance *instances;
    size_t n_instances;
    const fusion_stuff *stuff;
    size_t n_stuff;
    const pan_category *categories;
    size_t n_categories;
} combine_input;

/* A panoptic result: disjoint segments in paste order. segments[i].id = i + 1, iscrowd
 * 0, area and bbox (x, y, w, h) from masks[i]; no segment is empty. */
typedef struct {
    uint32_t h, w;
    size_t n_segments;
    pan_segment *segments;
    rle_mask *masks;
} fusion_panoptic;

/* panopticapi's combine_semantic_and_instance_predictions for one image (rules and
 * choices in docs/algorithms.md, "Heuristic combiner"). Fails on a mask of another size
 * or with runs that do not add up, an unknown category, an end out of range or a NaN
 * score, naming the image and the instance or semantic item by its index in `in`. */
int combine_heuristic(const combine_params *p, const combine_input *in, fusion_panoptic *out, avps_error *err);

void fusion_panoptic_release(fusion_panoptic *pan);
/* Paints the segment ids into ids (h x w, row-major); 0 (VOID) elsewhere. */
void fusion_panoptic_paint(const fusion_panoptic *pan, uint32_t *ids);

#endif
