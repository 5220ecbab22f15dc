/* fuse_internal.h: what the files of fusion_run share (the fused SS rows, label maps to
 * masks, the selected instances). Internal to fusion/; other modules see only fusion.h. */
#ifndef AVPS_FUSE_INTERNAL_H
#define AVPS_FUSE_INTERNAL_H

#include "fusion.h"

/* A pixel of a label map with no label. */
#define FUSE_LABEL_NONE FUSION_LABEL_NONE

/* Index of category_id in categories, or -1. */
long fuse_category_index(const pan_category *categories, size_t n, int32_t category_id);

/* The ends and the image size fusion takes (fuse_run.c): 1..FUSION_MAX_ENDS ends, each
 * with an output of the image's size. */
int fuse_check_input(const fusion_input *in, avps_error *err);

/* ---- the fused SS (fuse_ss.c) --------------------------------------------------------- */

/* The SS weights: finite, not negative, not all 0; their sum in *total. */
int fuse_check_weights(const fusion_input *in, double *total, avps_error *err);
/* End e's SS is usable: a grid with valid cells, data for its kind, and channels whose
 * categories are the dataset's, each once. */
int fuse_check_end_ss(const fusion_input *in, size_t e, avps_error *err);
/* End e's normalised SS weight, as every SS average uses it: ss_weight / total (total from
 * fuse_check_weights) as a float, exactly 0 for an end outside the average. */
float fuse_end_weight(const fusion_input *in, size_t e, double total);
/* End e's channel for each of the n_categories categories, -1 where it has none
 * (fuse_check_end_ss first: every channel's category is the dataset's, once). */
void fuse_end_channels(const fusion_input *in, size_t e, long *channel_of);
/* What fused_ss_new checks, without making anything: the weights, each weighted end's SS. */
int fuse_check_ss(const fusion_input *in, avps_error *err);

/* The weighted average of the ends' probabilities, one image row at a time, with one
 * channel per dataset category (in->categories order). Checks the weights and channels. */
typedef struct fused_ss fused_ss;
fused_ss *fused_ss_new(const fusion_input *in, avps_error *err);
/* Row y: n_categories x w probabilities, category-major. */
void fused_ss_row(fused_ss *f, uint32_t y, float *out);
void fused_ss_free(fused_ss *f);

/* ---- the SS argmax (fuse_argmax.c) ----------------------------------------------------- */

/* A row's argmax, one value row (w pixels) at a time: reset, then take each category's
 * row in category order. A value wins only when above the best so far, which starts at
 * 0: ties go to the first category, and no positive value gives FUSE_LABEL_NONE. */
void fuse_argmax_reset(uint32_t w, float *best, uint32_t *labels);
void fuse_argmax_take(const float *v, uint32_t label, uint32_t w, float *best, uint32_t *labels);

/* fusion_labels_make's maps into out's buffers, two ways with the same result: every
 * category at every pixel (fuse_argmax.c), or only those that can win there
 * (fuse_prune.c, for ends whose SS are all scores: fuse_prune_applies). */
int fuse_labels_full(const fusion_input *in, fusion_labels *out, avps_error *err);
int fuse_prune_applies(const fusion_input *in);
int fuse_labels_pruned(const fusion_input *in, fusion_labels *out, avps_error *err);

/* ---- label maps (fuse_labels.c) -------------------------------------------------------- */

/* The masks of a label map (h x w, row-major, values < n_labels or FUSE_LABEL_NONE):
 * masks[l] for every label, COCO runs; a label with no pixel gets m = 0 (no runs). */
int fuse_labels_to_masks(const uint32_t *labels, uint32_t h, uint32_t w, size_t n_labels, rle_mask *masks);

/* Appends a segment of category_id taking ownership of *mask; area and bbox from it. */
int fuse_panoptic_append(fusion_panoptic *out, size_t *cap, int32_t category_id, rle_mask *mask);

/* ---- the selected instances (fuse_instances.c) --------------------------------------- */

typedef struct {
    fusion_instance *items;   /* masks owned; in end order, then each end's order */
    const is_instance **from; /* the head's instance each came from (box, soft mask) */
    long *category_index;     /* into in->categories */
    size_t n;
} fused_instances;

/* Each thing category's instances from its end, above that end's threshold, with their
 * binary masks. need_soft: an instance without a soft mask is an error naming its end. */
int fused_instances_select(const fusion_params *p, const fusion_input *in, int need_soft, fused_instances *out,
                           avps_error *err);
void fused_instances_release(fused_instances *fi);

/* ---- UPSNet's panoptic head (combine_upsnet.c) ------------------------------------------- */

int combine_upsnet(const fusion_params *p, const fusion_input *in, fused_ss *ss, const fused_instances *inst,
                   fusion_panoptic *out, avps_error *err);

#endif
