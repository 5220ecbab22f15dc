/* eval: panoptic quality exactly as panopticapi's pq_compute computes it.
 *
 * Contract:
 * - pq_image_eval streams one ground-truth/prediction PNG pair and yields the image's
 *   events: each match with its IoU, each false positive and false negative, and notes
 *   on ground-truth oddities panopticapi lets pass. It is pure per image: the same pair
 *   gives the same events on any thread or rank.
 * - pq_totals_add adds an image's events; adding images in dataset order makes every
 *   sum the same as panopticapi's single-process sum, bit for bit, whatever the number
 *   of threads or ranks that produced them.
 * - Errors name the file, the image id and the segment id.
 */
#ifndef AVPS_EVAL_H
#define AVPS_EVAL_H

#include "../data/data.h"

enum pq_event_kind {
    PQ_TP,                 /* cat, iou */
    PQ_FP,                 /* cat */
    PQ_FN,                 /* cat */
    PQ_NOTE_AREA,          /* a GT segment whose JSON area differs from its pixel count */
    PQ_NOTE_GT_PNG_ONLY,   /* a GT id in the PNG but not in the JSON (ignored) */
    PQ_NOTE_GT_JSON_ONLY,  /* a GT segment in the JSON but not in the PNG (a false negative) */
};

/* Fixed-size and plain, so that events travel between ranks as bytes. */
typedef struct {
    uint32_t kind;
    uint32_t cat;        /* index into the categories of the ground truth */
    uint32_t segment_id; /* for notes */
    uint32_t reserved;
    double iou;
} pq_event;

typedef struct {
    pq_event *items;
    size_t n, cap;
} pq_events;

int pq_events_push(pq_events *ev, pq_event e);
void pq_events_release(pq_events *ev);

/* One image pair to evaluate. */
typedef struct {
    const pan_dataset *gt;         /* categories, and the path for messages */
    const char *pred_json_path;    /* for messages */
    const pan_annotation *gt_ann, *pred_ann;
    const char *gt_png, *pred_png;
    const pan_image *gt_image;     /* the images[] entry, or NULL */
    /* A prediction made in memory (avps run, calibrate): its segment ids, row-major, at
     * the ground truth's size. When set, pred_png is not read. */
    const uint32_t *pred_ids;
} pq_image_input;

typedef struct pq_scratch pq_scratch; /* per-thread buffers, reused across images */
pq_scratch *pq_scratch_new(void);
void pq_scratch_free(pq_scratch *s);

/* Appends the image's events to out. */
int pq_image_eval(pq_scratch *s, const pq_image_input *in, pq_events *out, avps_error *err);

/* ---- accumulation and the report ----------------------------------------------- */

typedef struct {
    uint64_t tp, fp, fn;
    double iou;
} pq_class_stat;

typedef struct {
    double pq, sq, rq;
    int n;
} pq_summary;

typedef struct {
    size_t n_categories;
    pq_class_stat *per_class;
    /* notes: how many, and the first in dataset order */
    uint64_t note_count[3];
    char *note_first_image[3];
    uint32_t note_first_segment[3];
} pq_totals;

pq_totals *pq_totals_new(size_t n_categories);
void pq_totals_free(pq_totals *t);
int pq_totals_add(pq_totals *t, const char *image_id, const pq_event *ev, size_t n);

/* isthing: 1 things, 0 stuff, -1 all. Zero with n = 0 where panopticapi divides by 0. */
pq_summary pq_summarize(const pq_totals *t, const pan_dataset *gt, int isthing);
/* The per-class pq, sq, rq of one category. */
void pq_class_ratios(const pq_class_stat *c, double *pq, double *sq, double *rq);

/* panopticapi's table: All / Things / Stuff, PQ SQ RQ in percent and N. */
void pq_print_table(FILE *fp, const pq_totals *t, const pan_dataset *gt);
/* Per-class PQ, SQ, RQ in percent with TP, FP, FN, in panopticapi's table layout, for
 * the classes panopticapi's per_class holds (those with a TP, FP or FN); table_text.c. */
void pq_print_per_class(FILE *fp, const pq_totals *t, const pan_dataset *gt);
/* Warnings about the ground truth, one line per kind. */
void pq_print_notes(FILE *fp, const pq_totals *t, const pan_dataset *gt);
/* The JSON report, written atomically; floats with %.17g. */
int pq_write_json(const char *path, const pq_totals *t, const pan_dataset *gt, avps_error *err);
/* The same JSON object written to fp, for reports that hold several (avps run). */
void pq_write_report(FILE *fp, const pq_totals *t, const pan_dataset *gt);

/* ---- mask and box AP exactly as pycocotools' COCOeval ------------------------------
 *
 * ap_image_eval matches one image's detections to its ground truth for every category
 * and area range (COCOeval.evaluateImg with the largest maxDets) and appends compact
 * records: per (category, area range) the number of non-ignored GT and, per detection in
 * score order, its score and one match bit and one ignore bit per IoU threshold. The root
 * feeds the records of all images, in image-id order, to ap_accumulate; that order breaks
 * ties in score, as in COCOeval.accumulate. */

/* COCOeval's Params, iouType segm or bbox. The defaults (ap_params_new) are COCOeval's:
 * IoU .50:.05:.95 and recall 0:.01:1 as np.linspace makes them, maxDets 1 10 100, the
 * areas all small medium large, every image and category of the ground truth, useCats 1. */
#define AP_T_MAX 32      /* IoU thresholds: one bit each in ap_record_det */
#define AP_LIST_MAX 100000 /* the longest list a flag may give (recall points, ids) */
#define AP_LABEL_MAX 32

typedef struct {
    double lo, hi;             /* bounds inclusive, as evaluateImg compares */
    char label[AP_LABEL_MAX];  /* summarize finds "all", "small", ... by label */
} ap_area_range;

typedef struct {
    size_t n_iou, n_rec, n_max_dets, n_areas, n_cat_ids, n_img_ids;
    double *iou_thrs;          /* distinct, in [0, 1], in the order given */
    double *rec_thrs;          /* in [0, 1], in the order given */
    uint32_t *max_dets;        /* distinct, ascending (evaluate sorts them), at least 3 */
    ap_area_range *areas;      /* distinct labels */
    int32_t *cat_ids;          /* NULL: the GT's; else distinct, ascending when use_cats */
    int64_t *img_ids;          /* NULL: the GT's; else distinct, ascending */
    int use_cats;
} ap_params;

ap_params *ap_params_new(void);
void ap_params_free(ap_params *p);
/* Sets the parameter of one command-line flag from its text: --iou-thrs, --rec-thrs,
 * --max-dets, --area-rng (label:lo:hi,...), --cat-ids, --img-ids (comma lists). Returns 1
 * when flag is none of these, -1 with a message naming the flag on a bad value. */
int ap_params_set(ap_params *p, const char *flag, const char *text, avps_error *err);

/* The array sizes of an evaluation of gt under p: T R K A M (K is 1 without use_cats). */
typedef struct {
    size_t T, R, K, A, M;
} ap_dims;

typedef struct {
    uint32_t cat;   /* k: index into the evaluated categories (0 without use_cats) */
    uint32_t area;  /* index into the area ranges */
    uint32_t n_gt;  /* non-ignored ground truth */
    uint32_t n_dt;  /* detections that follow, best score first */
} ap_record_head;

typedef struct {
    double score;
    uint32_t matched; /* bit t: matched at threshold t (to a GT whose id is not 0) */
    uint32_t ignored; /* bit t: ignored at threshold t */
} ap_record_det;

typedef struct {
    uint8_t *data;
    size_t len, cap;
} ap_records;

void ap_records_release(ap_records *r);

/* Annotations of gt and dt grouped by image, for the images this process evaluates.
 * ap_index_new evaluates with COCOeval's defaults; ap_index_new_params with p (borrowed,
 * it must outlive the index), refusing ids that the ground truth lacks. */
typedef struct ap_index ap_index;
ap_index *ap_index_new(const inst_dataset *gt, const inst_dataset *dt);
ap_index *ap_index_new_params(const inst_dataset *gt, const inst_dataset *dt, const ap_params *p, avps_error *err);
void ap_index_free(ap_index *ix);
const ap_params *ap_index_params(const ap_index *ix);
size_t ap_index_n_images(const ap_index *ix);
ap_dims ap_index_dims(const ap_index *ix);
/* The category id of class k of the arrays; -1 without use_cats, as COCOeval's [-1]. */
int32_t ap_index_class_id(const ap_index *ix, size_t k);

int ap_image_eval(const ap_index *ix, size_t image, iou_type type, ap_records *out, avps_error *err);

/* The summary rows of COCOeval.summarize (AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs
 * ARm ARl), and per class k the same six AP rows restricted to k; -1 where undefined. */
#define AP_CLASS_ROWS 6
typedef struct {
    double stats[12];
    size_t n_categories;
    double *per_class_ap;   /* row 0 (AP over all thresholds, area all, maxDets 100) */
    double *per_class_rows; /* [k][AP_CLASS_ROWS]: AP AP50 AP75 APs APm APl */
    int32_t *class_ids;     /* the category id of each k; -1 without use_cats */
    /* COCOeval.eval's arrays, filled by ap_accumulate_params when want_arrays */
    ap_dims dims;
    double *precision;      /* T x R x K x A x M, -1 where undefined */
    double *recall;         /* T x K x A x M */
    double *scores;         /* T x R x K x A x M */
    /* for printing: the parameters' labels */
    double iou_lo, iou_hi;
    uint32_t max_dets[3];
} ap_summary;

/* records[i], len[i]: the records of image i, for all images in image-id order, made
 * with COCOeval's defaults. */
int ap_accumulate(const inst_dataset *gt, const uint8_t *const *records, const size_t *len, ap_summary *out,
                  avps_error *err);
/* The same for records made by an index of ix's parameters; keeps the arrays in out
 * when want_arrays. Classes are accumulated on up to `threads` threads; the figures are
 * the same bits for any number. */
int ap_accumulate_params(const ap_index *ix, const uint8_t *const *records, const size_t *len, int want_arrays,
                         int threads, ap_summary *out, avps_error *err);
/* AP per class only (IoU .50:.95, area all, maxDets 100, -1 where undefined), on the
 * records of a list of images that may repeat one (a bootstrap resample of a split):
 * records[i], len[i] for i < n_images, in the order given, which breaks ties in score as
 * image-id order does in ap_accumulate. On the list of all images in image-id order it
 * equals ap_accumulate's per_class_ap. per_class_ap gets n_categories values. Records
 * made with COCOeval's defaults. */
int ap_per_class(size_t n_categories, size_t n_images, const uint8_t *const *records, const size_t *len,
                 double *per_class_ap, avps_error *err);
void ap_summary_release(ap_summary *s);
void ap_print_summary(FILE *fp, const ap_summary *s, iou_type type);
/* The summary and per-category AP in percent, as detectron2's COCOEvaluator logs them
 * (tabulate pipe tables, category names: AP-person); table_text.c. */
void ap_print_detectron2(FILE *fp, const ap_summary *s, const inst_dataset *gt, iou_type type);
int ap_write_json(const char *path, const ap_summary *s, const inst_dataset *gt, avps_error *err);
/* precision, recall and scores as float64 arrays of a .npz (np.load reads them). */
int ap_write_npz(const char *path, const ap_summary *s, avps_error *err);

#endif
