/* run.h: the parts of `avps run` (mpi/cmd_run.c and mpi/run_*.c), internal to mpi/.
 * The config (run_config.c), the per-image stages (run_image.c), the journal of finished
 * images (run_journal.c), the progress line (run_progress.c) and the reports
 * (run_report.c). docs/config.md describes the config, docs/mpi.md the job. */
#ifndef AVPS_RUN_H
#define AVPS_RUN_H

#include "../eval/eval.h"
#include "../fusion/fusion.h"
#include "../model/model.h"
#include "job.h"
#include "progress.h"

/* ---- the config (run_config.c) --------------------------------------------------------- */

#define RUN_MAX_HEADS 16
#define RUN_ENDS 3 /* e_ups, lwl_htc, fusion: the order of every per-end array */
enum { END_E_UPS, END_LWL_HTC, END_FUSION };
extern const char *const run_end_names[RUN_ENDS];

typedef struct {
    char *name, *backend, *profile, *store;
    double weight; /* its weight in the ensemble when the ensemble gives none */
} run_head;

typedef struct {
    char *gt_json, *gt_dir; /* gt_dir defaults to gt_json without .json */
} run_dataset;

typedef struct {
    char *path;              /* the config file */
    uint64_t hash;           /* FNV-1a 64 of its bytes: provenance, and resume checks it */
    uint64_t seed;
    run_dataset heldout, eval;
    int has_heldout;
    size_t n_heads;
    run_head heads[RUN_MAX_HEADS];
    char *ensemble_name;
    size_t n_members;
    size_t members[RUN_MAX_HEADS]; /* indexes into heads */
    double weights[RUN_MAX_HEADS];
    size_t lwl_htc;                /* index into heads */
    char *class_table;             /* an existing table: calibration is skipped */
    char *metric;                  /* the class table's: "mask_ap" or "pq_th" */
    long min_instances;            /* classes with fewer held-out instances take the better end */
    double ss_weights[2];          /* e_ups, lwl_htc */
    char *combiner;                /* "heuristic" or "upsnet" */
    combiner_kind combiner_kind;
    combine_params combine;        /* confidence_thr[0] e_ups, [1] lwl_htc */
    char *out;
    int write_end_panoptic;        /* also write each end's own panoptic JSON + PNGs */
    long threads, chunk;
} run_config;

/* Reads and checks the config; relative paths are taken from the config's folder. Unknown
 * keys and wrong types are errors naming the key ("fusion.ss_weights[1]"). On an error
 * nothing is left to release. */
int run_config_load(const char *path, run_config *cfg, avps_error *err);
void run_config_release(run_config *cfg);
/* Head i of the config, made for the dataset; errors name the config and the head. */
head *run_head_new(const run_config *cfg, size_t i, const pan_dataset *ds, avps_error *err);
/* Makes and frees every replay head on ds: what it checks when it is made (its store's
 * files for each image) is checked for a split the heads run on later, such as the
 * held-out split of calibration, before any image of any split is run. */
int run_heads_check(const run_config *cfg, const pan_dataset *ds, avps_error *err);
/* FNV-1a 64 of bytes, chained from h (start with RUN_FNV_START). */
#define RUN_FNV_START 0xcbf29ce484222325ull
uint64_t run_fnv(uint64_t h, const void *p, size_t n);
/* The digest of a file's bytes, read in blocks; -1 when it cannot be read. */
int run_file_digest(const char *path, uint64_t *digest, avps_error *err);

/* ---- one image (run_image.c) ----------------------------------------------------------- */

/* SS counts of one category over the images so far (pixels with a ground-truth label). */
typedef struct {
    uint32_t cat; /* index into the ground truth's categories */
    uint32_t reserved;
    uint64_t inter, pred, gt;
} run_ss_count;

/* Seconds spent per step, summed over images and threads (timings.json). */
enum { STEP_HEADS, STEP_FUSION, STEP_EVAL, STEP_IO, STEP_COUNT };
extern const char *const run_step_names[STEP_COUNT];

typedef struct run_state run_state;

/* What the per-image stages need, shared read-only by every thread of a rank. */
struct run_state {
    const run_config *cfg;
    avps_job *job;
    const pan_dataset *gt;       /* the split being run */
    const char *gt_dir;
    head *ends[2];               /* e_ups, lwl_htc */
    int *end_of_category;        /* per GT category (-1 stuff): the end whose instances the fusion takes */
    pq_scratch **scratch;        /* per thread */
    char *png_dir;               /* OUT/panoptic */
    char *end_png_dir[2];        /* OUT/ends/<end>, when write_end_panoptic */
    char *work_dir;              /* OUT/work: per-image records */
    int journal_fd;              /* this process's journal, or -1 */
    long die_after;              /* test hook: _exit after this many images (0: never) */
    _Atomic long images_done;
};

/* job_item_fn: one image's record (see run_record_* below). */
int run_image(void *ctx, int thread, size_t item, job_blob *out, avps_error *err);

/* A record, parsed in place from a blob. */
typedef struct {
    uint32_t n_ends;
    const pq_event *events[RUN_ENDS];
    size_t n_events[RUN_ENDS];
    const run_ss_count *ss[RUN_ENDS];
    size_t n_ss[RUN_ENDS];
    const pan_segment *segments[RUN_ENDS]; /* each end's panoptic segments */
    size_t n_segments[RUN_ENDS];
    double seconds[STEP_COUNT];            /* wall per step */
    double cpu[STEP_COUNT];                /* the thread's CPU per step */
} run_record;
int run_record_parse(const uint8_t *data, size_t len, run_record *rec);

/* ---- journal and resume (run_journal.c) --------------------------------------------------- */

/* Writes the record atomically to OUT/work/<item>.rec, then notes it in the journal. */
int run_journal_put(run_state *rs, size_t item, const job_blob *blob, avps_error *err);
/* Finds the finished images (those in a journal whose record checks out) and reads their
 * records into blobs[item] (only checks them when blobs is NULL); *todo gets the items
 * still to do, in dataset order. */
int run_journal_load(const char *out_dir, uint64_t config_hash, const pan_dataset *gt, job_blob *blobs, size_t **todo,
                     size_t *n_todo, avps_error *err);
/* Reads OUT/work/<item>.rec back: 0 when it is whole and made by this config. */
int run_journal_read(const char *out_dir, uint64_t config_hash, size_t item, job_blob *blob);
/* Opens this process's journal file for appending. */
int run_journal_open(run_state *rs, avps_error *err);

/* ---- progress: progress.h (run_progress.c) ------------------------------------------------ */

/* ---- reports (run_report.c) ---------------------------------------------------------------- */

typedef struct {
    pq_totals *pq[RUN_ENDS];
    uint64_t *ss_inter[RUN_ENDS], *ss_pred[RUN_ENDS], *ss_gt[RUN_ENDS];
    double seconds[STEP_COUNT], cpu[STEP_COUNT]; /* wall and CPU per step, over images */
} run_totals;

int run_totals_init(run_totals *t, size_t n_categories, avps_error *err);
void run_totals_release(run_totals *t);
/* Adds image `item`'s record; records must come in dataset order. */
int run_totals_add(run_totals *t, const pan_dataset *gt, size_t item, const run_record *rec, avps_error *err);
double run_miou(const run_totals *t, int end, size_t n_categories);

typedef struct {
    const run_config *cfg;
    const pan_dataset *gt;
    const run_totals *totals;
    const char *class_table_path;
    uint64_t digests[RUN_MAX_HEADS + 4];
    char digest_names[RUN_MAX_HEADS + 4][96];
    size_t n_digests;
} run_report_input;
/* report.json and table3.md into files the caller opened (and publishes with the other
 * reports); run_table3_print gives the table alone, for the console. */
void run_report_put(FILE *fp, const run_report_input *in);
void run_table3_put(FILE *fp, const run_report_input *in);
void run_table3_print(FILE *fp, const run_report_input *in);

/* ---- the root's running totals (run_fold.c) ------------------------------------------------ */

typedef struct {
    const pan_dataset *gt;
    const char *out_dir;
    uint64_t hash;
    const uint8_t *resumed;  /* per item: its record is on disk from an earlier run */
    run_totals totals;
    pan_writer pan[RUN_ENDS]; /* each end's panoptic JSON, where asked for */
    pan_image *images;        /* the images in the order of the annotations */
    pan_dataset frame;
    size_t next;              /* the next item to fold */
    size_t folded;
} run_fold;
/* pan_paths[e]: where end e's panoptic JSON goes, or NULL for none. */
int run_fold_open(run_fold *f, const pan_dataset *gt, const char *out_dir, uint64_t hash, const uint8_t *resumed,
                  char *const pan_paths[RUN_ENDS], avps_error *err);
int run_fold_sink(void *ctx, size_t item, job_blob *blob, avps_error *err); /* a job_sink_fn */
/* Folds the resumed records after the last one sunk and commits the panoptic files. */
int run_fold_finish(run_fold *f, avps_error *err);
void run_fold_release(run_fold *f);

/* ---- GPUs (run_gpu.c) ---------------------------------------------------------------------- */

/* The device for node-local rank r: the (r mod n)-th entry of `visible` (a
 * CUDA_VISIBLE_DEVICES list) when given, else "r mod n_devices". Writes it into out and
 * returns 1, or 0 when there is none. */
int run_gpu_pick(long local_rank, const char *visible, size_t n_devices, char *out, size_t out_len);
/* Narrows CUDA_VISIBLE_DEVICES to this rank's device; 1 when there was one (in chosen). */
int run_gpu_bind(char *chosen, size_t len);

#endif
