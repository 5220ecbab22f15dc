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
/* Writes the table as JSON, atomically (docs/formats.md, "class_table.json"). */
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

#endif
