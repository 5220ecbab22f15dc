/* calibrate_impl.h: what the two halves of calibration share inside mpi/: the job
 * (calibrate.c sets it up, calibrate_image.c runs it per image on every rank) and the
 * record of a PQ event. Not for other modules. */
#ifndef AVPS_CALIBRATE_IMPL_H
#define AVPS_CALIBRATE_IMPL_H

#include "../eval/eval.h"
#include "calibrate.h"

typedef struct {
    head *const *ends;
    size_t n_ends;
    const calib_split *split[2]; /* held-out, evaluation (or NULL) */
    size_t n_split[2];
    size_t n_things;
    int32_t *thing_ids; /* sorted, as COCOeval's category ids */
    int pq;             /* metric pq_th: per-class PQ stats instead of AP records */
    pq_scratch **scratch; /* pq_th: one per thread */
} calib_job;

/* pq_th: one event of pq_compute on a thing class (a match with its IoU, a false
 * positive or negative), kept one by one so that the root sums IoUs in panopticapi's
 * order. */
typedef struct {
    uint32_t cat;  /* index into the sorted thing ids */
    uint32_t kind; /* PQ_TP, PQ_FP, PQ_FN */
    double iou;
} pq_thing_event;

static inline int calib_int32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* job_map's item function: item i is held-out image i, then evaluation image
 * i - n_split[0]; its blob holds, per end, the length of its records and the records
 * (AP records of eval/, or pq_thing_events). */
int calib_image(void *ctx, int thread, size_t item, job_blob *blob, avps_error *err);

#endif
