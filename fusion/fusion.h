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

/* Renumbers pan's segments with ids that are colours, as panopticapi's IdGenerator
 * chooses them: stuff takes its category's colour, things a jittered colour of their
 * category unique in the image (fusion/panoptic_ids.c). Fails on a category not in cats. */
int fusion_panoptic_color_ids(fusion_panoptic *pan, const pan_category *cats, size_t n_cats, const char *image_id,
                              avps_error *err);

void fusion_panoptic_release(fusion_panoptic *pan);
/* Paints the segment ids into ids (h x w, row-major); 0 (VOID) elsewhere. */
void fusion_panoptic_paint(const fusion_panoptic *pan, uint32_t *ids);
/* Writes the result as the COCO panoptic PNG dir/name, atomically; dir is made first if
 * missing (so that a command makes its output folder only once it has a result). */
int fusion_panoptic_write_png(const fusion_panoptic *pan, const char *dir, const char *name, avps_error *err);

/* ---- class table: which end gives each thing class its instances (fusion/class_table.c)
 *
 * The task-dependent level takes a thing class's instances from one end only: the end
 * that did better on that class on a held-out split (`avps calibrate` measures it). The
 * table is owned by whoever filled it (class_table_read, calibrate) and released with
 * class_table_release; docs/formats.md gives its JSON, docs/algorithms.md its rules. */

typedef struct {
    char *metric;              /* "mask_ap" (per-class mask AP) or "pq_th" (per-class PQ) */
    size_t n_ends;
    char **end_names;          /* n_ends names, in the order end indexes refer to */
    size_t n_classes;          /* the dataset's thing categories, in category order */
    int32_t *category_id;      /* n_classes */
    int *chosen;               /* n_classes: the end whose instances the class takes */
    double *score;             /* n_classes x n_ends, row-major: each end's metric on the
                                  held-out split; NAN where undefined (JSON null) */
    uint64_t *n_heldout;       /* n_classes: held-out ground-truth instances (not crowd) */
    int *fallback;             /* n_classes: 1 when chosen by the overall rule */
    uint64_t min_instances;    /* a class with fewer held-out instances falls back */
    int overall_best;          /* the end with the best mean score over the classes that
                                  every end has a score for; lower index on a tie */
} class_table;

/* Allocates a table for n_classes thing classes and n_ends ends: names copied, scores
 * NAN, counts 0, chosen 0; category_id is the caller's to fill. */
int class_table_init(class_table *t, const char *metric, const char *const *end_names, size_t n_ends,
                     size_t n_classes, avps_error *err);
/* Fills overall_best, chosen and fallback from score, n_heldout and min_instances. A
 * class falls back to overall_best when it has fewer than min_instances held-out
 * instances or some end has no score for it; otherwise it takes the end with the highest
 * score, the lower index on a tie. Fails on no ends or an infinite score. */
int class_table_choose(class_table *t, avps_error *err);
/* Writes the table as JSON, atomically (docs/formats.md, "class_table.json"); refuses a
 * table without ends or with an end index out of range. */
int class_table_write(const char *path, const class_table *t, avps_error *err);
/* Reads a table for dataset ds. end_names (n_ends) are the ends the caller has: the
 * table must name exactly these (in any order) and its indexes are mapped to the
 * caller's order; with end_names NULL the table's own ends and order are kept. Classes
 * come out in ds's thing category order. Refuses, naming the file and the item: bad JSON
 * or types, an unknown metric, an unknown or repeated end, a category unknown to ds, a
 * stuff category, a repeated class, a thing category of ds missing from the table. The
 * chosen end is taken as written (a table may be edited by hand). */
int class_table_read(const char *path, const pan_dataset *ds, const char *const *end_names, size_t n_ends,
                     class_table *t, avps_error *err);
/* end_of_category[k] for each of ds's categories k: the chosen end of a thing category,
 * -1 for stuff. Fails when a thing category of ds has no class in the table. */
int class_table_end_map(const class_table *t, const pan_dataset *ds, int *end_of_category, avps_error *err);
void class_table_release(class_table *t);


/* ---- two-level fusion: head outputs to one panoptic result (fusion/fuse_*.c) ----------
 *
 * fusion_run turns the outputs of one or several network ends (model.h head_output) for
 * one image into a panoptic result. A single end's own result is fusion_run with one end.
 *
 * Task-dependent level (docs/algorithms.md, "Two-level fusion"):
 * - SS: the weighted average of the ends' class probabilities (logits pass through a
 *   softmax at the end's grid, label maps become one-hot, as ss_sampler gives them), each
 *   end upsampled to the image a row at a time. Weights are normalised; a negative or
 *   non-finite weight, or all weights 0, is an error. An end with weight 0 gives no SS
 *   (IS selection alone). Channels are aligned by dataset category id; a category that an
 *   end lacks counts as probability 0 there. A channel whose category is not in
 *   `categories`, or two channels of one category in an end, is an error.
 * - IS: each thing category's instances come from the end is_end_of_category names; each
 *   end's instances are thresholded by heuristic.confidence_thr[end].
 * Memory: one row of C x W floats per end and the fused row, a label map of the image,
 * and the instances' masks as RLE; never C x H x W.
 *
 * Task-independent level: combiner_kind picks the combiner.
 * - COMBINER_HEURISTIC: combine_heuristic on the instances and the fused SS argmax (over
 *   ALL categories, as panopticapi's semantic input: thing pixels no instance takes stay
 *   VOID) given as one stuff candidate per stuff category, in category order.
 * - COMBINER_UPSNET: UPSNet's parameter-free panoptic head (fusion/combine_upsnet.c):
 *   class-agnostic box NMS, mask removal, then a per-pixel argmax over [stuff logits |
 *   per instance, its class's semantic logit in its box + its mask logit | unknown],
 *   unknown -> VOID. Needs soft masks: an end whose instances are binary is an error. */

#include "../model/model.h"

typedef enum { COMBINER_HEURISTIC, COMBINER_UPSNET } combiner_kind;

/* "heuristic", "upsnet"; and back (0, or -1 for an unknown name). */
const char *combiner_kind_name(combiner_kind k);
int combiner_kind_parse(const char *name, combiner_kind *out);

typedef struct {
    const head_output *out; /* borrowed; its width and height must be the image's */
    double ss_weight;       /* its part in the SS average (normalised); 1 for an equal average */
} fusion_end;

typedef struct {
    double nms_thr;      /* class-agnostic box NMS: drop a box whose IoU with a kept one is > this (0.5) */
    double removal_thr;  /* mask removal: drop an instance when more than this part of its mask
                            is taken by kept instances of its class (0.3) */
    size_t max_instances; /* at most this many instances after NMS, best first (100) */
} upsnet_params;

typedef struct {
    combiner_kind combiner;
    /* both combiners: confidence_thr per end and stuff_area_limit; heuristic: overlap_thr */
    combine_params heuristic;
    upsnet_params upsnet;
} fusion_params;

/* heuristic; panopticapi's 0.5 / 0.5 / 4096; UPSNet's 0.5 / 0.3 / 100. */
void fusion_params_default(fusion_params *p);

typedef struct {
    const char *image_id; /* for messages */
    uint32_t h, w;
    const fusion_end *ends;
    size_t n_ends;        /* 1..FUSION_MAX_ENDS */
    /* Per dataset category INDEX (the order of categories[]): the end whose instances that
     * thing category takes, or -1 for none; ignored for stuff. NULL: every end's instances
     * (a single end: NULL). An entry outside -1..n_ends-1 is an error. */
    const int *is_end_of_category;
    const pan_category *categories; /* the dataset's; they define the fused SS channels */
    size_t n_categories;
    /* Optional (NULL: fusion_run computes it): the fused SS argmax of exactly these ends
     * and weights, h x w, as fusion_labels_make gives it (its `fused` for the same input,
     * or its end[e] for end e alone). The heuristic combiner then upsamples nothing; the
     * SS is still checked. The UPSNet combiner ignores it (it needs the probabilities). */
    const uint32_t *ss_labels;
} fusion_input;

/* A label-map pixel with no category (every probability 0). */
#define FUSION_LABEL_NONE UINT32_MAX

/* The SS argmax label maps of one image: each end's alone and the weighted average's,
 * from one upsampling of each end (a caller that needs each end's result, the fusion's
 * and the mIoU of each would otherwise upsample every end several times). Values are
 * indexes into in->categories or FUSION_LABEL_NONE; ties go to the first category. Every
 * end needs a usable SS, whatever its weight. end[e] is bit for bit what fusion_run with
 * end e alone computes, `fused` what fusion_run with in's ends computes. */
typedef struct {
    uint32_t h, w;
    size_t n_ends;
    uint32_t *end[FUSION_MAX_ENDS]; /* h x w each, row-major */
    uint32_t *fused;                /* h x w, row-major */
} fusion_labels;

/* Memory: the three label maps and one upsampled row per end. Errors as fusion_run's. */
int fusion_labels_make(const fusion_input *in, fusion_labels *out, avps_error *err);
void fusion_labels_release(fusion_labels *l);

/* The fused panoptic result of one image (segments as combine_heuristic gives them: ids
 * 1, 2, ... in paste order, disjoint, none empty). Errors name the image, the end and the
 * instance or category. */
int fusion_run(const fusion_params *p, const fusion_input *in, fusion_panoptic *out, avps_error *err);

#endif
