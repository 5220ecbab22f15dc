/* calibrate: the class table of the task-dependent level from a held-out split (issue 5,
 * item 2), the core of `avps calibrate`, callable from any mpi/ command (`avps run`).
 *
 * Contract:
 * - calibrate_run is collective: every rank calls it with the same arguments. Images of
 *   both splits are sharded over ranks and threads in one job_map; each image yields,
 *   per end, pycocotools' per-image AP records of its instances against the ground
 *   truth's thing segments (mask_ap), or the thing classes' pq_compute events of the
 *   end's own panoptic result (pq_th): never pixels. The root does everything else.
 * - The result is a function of the inputs and the seed only: the same bytes on any
 *   number of ranks and threads (records are reduced in image-id order, resamples are
 *   drawn by the root).
 * - Refused before any image is run, on every rank alike (the caller ends the job):
 *   splits that share an image id, splits whose categories differ, no thing category,
 *   no end, an unknown metric. After job_map only the root works and fails
 *   only when out of memory.
 * Definitions (docs/algorithms.md, "Class table"): the per-class metric, the fallback,
 * the regret against a per-class oracle on the evaluation split, and the bootstrap.
 */
#ifndef AVPS_CALIBRATE_H
#define AVPS_CALIBRATE_H

#include "../fusion/fusion.h"
#include "../model/model.h"
#include "job.h"
#include "progress.h"

/* A panoptic ground truth and the folder of its PNGs. */
typedef struct {
    const pan_dataset *ds;
    const char *png_dir;
} calib_split;

typedef struct {
    const char *metric;     /* "mask_ap" or "pq_th" */
    uint64_t min_instances; /* classes with fewer held-out instances fall back */
    size_t bootstrap;       /* resamples of the held-out images; 0: none */
    uint64_t seed;          /* of the resampling */
    int threads;            /* per rank */
    /* A table to assess instead of choosing one (read with class_table_read for the
     * held-out dataset and these ends): its choices are kept, its scores measured anew. */
    const class_table *given;
    /* The progress line of the pass (progress.h), headed `what`; what NULL: none. */
    progress_mode progress;
    const char *what;
} calib_params;

/* What the root learns beyond the table; arrays are n_classes (x n_ends) of the table. */
typedef struct {
    size_t n_heldout_images, n_eval_images;
    int has_eval;
    /* on the evaluation split: each end's metric per class (NAN undefined), instances */
    double *eval_score;
    uint64_t *n_eval;
    size_t n_eval_classes;  /* classes with an instance in the evaluation split: the means' */
    double mean_table, mean_oracle, regret; /* regret = oracle - table */
    double *mean_end;       /* n_ends */
    int best_single;        /* the end with the best mean; lower index on a tie */
    double gain;            /* mean_table - mean_end[best_single] */
    /* the bootstrap: per resample the rebuilt table's gain and regret (has_eval only),
     * and per class the share of resamples whose choice is the table's */
    size_t bootstrap;
    uint64_t seed;
    double *boot_gain, *boot_regret;
    double gain_mean, gain_p5, gain_p95, gain_positive, regret_mean;
    double *agreement;
} calib_report;

/* On the root fills table and report; elsewhere leaves them empty (zeroed). Returns -1
 * with err for the refusals above (on every rank) or out of memory (root). */
int calibrate_run(avps_job *job, const calib_params *p, head *const *ends, size_t n_ends, const calib_split *heldout,
                  const calib_split *eval, class_table *table, calib_report *report, avps_error *err);
void calib_report_release(calib_report *r);

/* The report as JSON, atomically (docs/formats.md, "calibrate report"), and in a few
 * lines for people. */
int calib_report_write(const char *path, const class_table *t, const calib_report *r, avps_error *err);
void calib_report_print(FILE *fp, const class_table *t, const calib_report *r);

#endif
