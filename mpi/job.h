/* job: how every avps command runs under mpirun, srun or alone.
 *
 * Contract (docs/mpi.md says more):
 * - Started by a launcher, the process joins MPI; started alone it never calls MPI_Init
 *   (a singleton init costs ~0.4 s) and behaves as rank 0 of 1.
 * - job_map shards items over ranks (item i on rank i mod size) and threads; each item's
 *   output blob reaches the root, which gets them all back indexed by item, so that
 *   reductions run in dataset order whatever the number of ranks and threads;
 *   job_map_dynamic hands them to the root one by one in that order instead.
 * - Any failure on any rank ends the whole job with that rank's message, printed once by
 *   the root; no rank waits forever on one that died.
 */
#ifndef AVPS_JOB_H
#define AVPS_JOB_H

#include "../data/data.h"

typedef struct avps_job avps_job;

avps_job *job_start(int *argc, char ***argv);
int job_rank(const avps_job *job);
int job_size(const avps_job *job);
static inline int job_is_root(const avps_job *job) { return job_rank(job) == 0; }
/* CPUs this process may run on: the default thread count. */
int job_cpu_count(void);

/* Reports err and ends the job with a non-zero status: never returns. */
void job_fail(avps_job *job, const avps_error *err) __attribute__((noreturn));
/* Leaves MPI (if joined), frees the job and returns status for main to return. */
int job_finish(avps_job *job, int status);

/* ---- outputs: checked before any work, removed when the job fails -----------------------
 * job_output_file and job_output_dir check an output path as file_output_check and
 * dir_output_check do (a folder given for a file, an unwritable folder...) and, on the
 * root, claim what writing there will create: the path, or the outermost missing folder
 * above it, with all it will hold. When the job fails, on any rank, the root removes what
 * it claimed once every rank and thread has stopped. A path that exists is never claimed,
 * so a failure leaves what was there before as it was. Only the root checks and claims
 * (the other ranks return 0). Call them before the first output is written; job_output_claim claims without checking (a staging folder). */
int job_output_file(avps_job *job, const char *path, avps_error *err);
int job_output_dir(avps_job *job, const char *path, avps_error *err);
int job_output_claim(avps_job *job, const char *path, avps_error *err);
/* As job_output_file, for a file whose folder is made when missing (on the root, now):
 * panopticapi's JSON beside its PNG folder. */
int job_output_json(avps_job *job, const char *path, avps_error *err);
/* An output folder and the n files the job writes in it: the folder claimed when it is
 * new, else each file that is not there yet. */
int job_output_files_in(avps_job *job, const char *dir, char *const *names, size_t n, avps_error *err);
/* An output folder that every rank writes files into, staged: *stage gets "DIR.partial"
 * (on every rank; caller frees), which the root checks is not there (an interrupted job
 * left it), makes and claims, so a failure removes it and leaves DIR as it was. Once the
 * job's other outputs are written, the root's job_output_publish puts it in DIR's place:
 * DIR itself when DIR is new (or empty), else file by file, replacing those of the same
 * name and keeping the others. Call the job's barrier between the two and the writes. */
int job_output_stage(avps_job *job, const char *dir, char **stage, avps_error *err);
int job_output_publish(const char *stage, const char *dir, avps_error *err);

typedef struct {
    uint8_t *data;
    size_t len, cap;
} job_blob;
int job_blob_append(job_blob *b, const void *p, size_t n);
/* Appends s as the inside of a JSON string literal (\\ and " escaped): blobs often carry
 * JSON fragments, such as COCO's RLE counts strings, which may hold a backslash. */
int job_blob_append_json_text(job_blob *b, const char *s);

/* Fills out with the item's result; thread is 0..threads-1, for per-thread scratch. */
typedef int (*job_item_fn)(void *ctx, int thread, size_t item, job_blob *out, avps_error *err);

/* Runs fn on this rank's items. On the root, returns the n_items blobs (free with
 * job_blobs_free); on other ranks, returns NULL once their blobs are sent. A failure on
 * any rank ends the job inside this call. Every rank makes the same sequence of calls;
 * between two calls the root must not fail (the other ranks are no longer listening). */
job_blob *job_map(avps_job *job, size_t n_items, int threads, job_item_fn fn, void *ctx);
void job_blobs_free(job_blob *blobs, size_t n_items);
/* Every rank reaches this point, or the job ends with the first failure's message. */
void job_barrier(avps_job *job);

/* ---- dynamic scheduling (avps run) ------------------------------------------------------
 *
 * Images cost unequal time, so static blocks leave ranks idle. job_map_dynamic runs fn on
 * the items listed in todo (the root's list; other ranks pass NULL and 0): the root hands
 * them out in chunks of `chunk` items to whichever rank asks (its own threads take single
 * items from the same list), so a fast rank simply asks more often. Each rank sends every
 * result as soon as it is made; the root hands them to sink, on its main thread, in the
 * order of todo, each as soon as all earlier ones have come. Items are handed out at most
 * `window` positions past the last one sunk, so the root never holds more than window
 * results: its memory is bounded by the images in flight, not by the job. A failure on
 * any rank (or of sink) ends the job. progress, when not NULL, is called on the root's
 * main thread with the number of todo items known to be done, at least every 100 ms while
 * work goes on and once at the end. */
typedef void (*job_progress_fn)(void *ctx, size_t done);
/* What one rank's part of a dynamic map cost, and how long it waited for work: every rank
 * measures its own and sends it with its last message, so the root sees them all. Wall
 * and CPU seconds are those of the map alone (not the job's loading or reports). */
typedef struct {
    uint64_t items;        /* items this rank made */
    double wall;           /* the map on this rank */
    double cpu;            /* the process's CPU (user + sys) */
    double main_cpu;       /* its main thread's: the root's scheduling, receives and sink; another rank's requests and sends */
    double sink_cpu;       /* root: the main thread's CPU inside sink (the fold) */
    double wait;           /* its worker threads' time blocked for their next item, summed */
    double wait_max;       /* the longest of those waits */
    double wait_end;       /* their time blocked at the end, for the word that none is left */
    uint64_t requests;     /* other ranks: requests for work sent */
    double request;        /* their round trips, from asking to the chunk's arrival, summed */
    double request_max;
    double held;           /* root: requests held back, the window full, summed */
    uint64_t peak_rss_kib; /* the process's peak resident memory at the end of the map */
} job_rank_stats;
/* Takes one result (blob->data is the sink's to keep or free). */
typedef int (*job_sink_fn)(void *ctx, size_t item, job_blob *blob, avps_error *err);
typedef struct {
    size_t chunk;  /* items per request (0: 1) */
    int threads;
    size_t window; /* 0: 4 x ranks x (threads + chunk) */
    job_item_fn fn;
    void *ctx;
    job_sink_fn sink;
    void *sink_ctx;
    job_progress_fn progress;
    void *progress_ctx;
    size_t buffered_max; /* out, root: the most results held at once, waiting for an earlier one */
    job_rank_stats *stats; /* NULL, or job_size entries: out, root: each rank's figures */
} job_dynamic;
void job_map_dynamic(avps_job *job, size_t n_items, const size_t *todo, size_t n_todo, job_dynamic *plan);

/* The reorder buffer behind it (job_reorder.c): results keyed by hand-out position, taken
 * out in position order. put takes the blob (and fails for a position outside
 * [base, base + window) or one already held); pop moves out the result at base, if
 * there, and returns 1. */
typedef struct {
    job_blob *slots;
    uint8_t *full;
    size_t window, base, count, max_count;
} job_reorder;
int job_reorder_init(job_reorder *r, size_t window);
int job_reorder_put(job_reorder *r, size_t pos, job_blob *blob);
int job_reorder_pop(job_reorder *r, job_blob *out);
void job_reorder_release(job_reorder *r);

#endif
