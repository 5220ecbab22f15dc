/* job.c: launcher detection, sharding over ranks and threads, gathering per-item
 * results on the root, and ending the whole job on any rank's error. */
#include "job.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

/* ERROR: a rank's message to the root. DATA_LEN, DATA: a rank's results. ABORT, DONE:
 * the root's verdict to every rank. BYE: a rank's answer to ABORT. */
enum { TAG_ERROR = 1, TAG_DATA_LEN, TAG_DATA, TAG_ABORT, TAG_DONE, TAG_BYE };
#define CHUNK_BYTES ((size_t)1 << 30)

struct avps_job {
    int rank, size;
    int mpi;             /* joined MPI */
    int peers_listening; /* root: the other ranks still wait for a verdict */
    char **claimed;      /* root: outputs this job creates, removed if it fails */
    size_t n_claimed;
    void (*stop_workers)(void *); /* root: stops the running map's threads, or NULL */
    void *stop_ctx;
};

/* Open MPI's mpirun, PMIx launchers (srun --mpi=pmix, prterun) and PMI-1/2 launchers
 * (MPICH's hydra, srun --mpi=pmi2) each leave one of these. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

avps_job *job_start(int *argc, char ***argv) {
    avps_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->size = 1;
    if (launched_by_mpi()) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(job);
            return NULL;
        }
        job->mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &job->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &job->size);
        job->peers_listening = job->size > 1;
    }
    return job;
}

int job_rank(const avps_job *job) { return job->rank; }
int job_size(const avps_job *job) { return job->size; }

int job_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Ending a job: Debian's Open MPI (external PMIx and libevent) often hangs or crashes
 * in mpirun after MPI_Abort, so avps never calls it. The root tells every rank to stop
 * (ABORT), takes and drops whatever they were sending until each says BYE, and all
 * leave through MPI_Finalize with status 1, which mpirun reports reliably. */
static void drain_until_bye(avps_job *job) {
    int byes = 0;
    while (byes < job->size - 1) {
        MPI_Status st;
        int count;
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_BYTE, &count);
        void *sink = malloc(count > 0 ? (size_t)count : 1);
        MPI_Recv(sink, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        free(sink);
        if (st.MPI_TAG == TAG_BYE)
            byes++;
    }
}

static void tell_peers(avps_job *job, int tag) {
    for (int r = 1; r < job->size; r++)
        MPI_Send(NULL, 0, MPI_BYTE, r, tag, MPI_COMM_WORLD);
}

static void __attribute__((noreturn)) leave(int status) {
    MPI_Finalize();
    exit(status);
}

/* What a failed job made goes, once no thread or rank writes any more: the root's own
 * workers are stopped first (the other ranks have said BYE). Newest first, so a file
 * claimed inside a claimed folder goes before its folder. */
static void remove_claimed(avps_job *job) {
    if (job->stop_workers)
        job->stop_workers(job->stop_ctx);
    job->stop_workers = NULL;
    for (size_t i = job->n_claimed; i-- > 0;)
        path_remove_all(job->claimed[i]);
}

static void __attribute__((noreturn)) root_fail(avps_job *job, const char *msg) {
    fprintf(stderr, "avps: error: %s\n", msg);
    fflush(stderr);
    if (job->peers_listening) {
        tell_peers(job, TAG_ABORT);
        drain_until_bye(job);
    }
    remove_claimed(job);
    leave(1);
}

/* A rank told to stop answers BYE and leaves; the root has printed the reason. */
static void __attribute__((noreturn)) rank_stop(void) {
    MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_ABORT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_BYE, MPI_COMM_WORLD);
    leave(1);
}

void job_fail(avps_job *job, const avps_error *err) {
    if (!job || !job->mpi) {
        fprintf(stderr, "avps: error: %s\n", err->msg);
        if (job)
            remove_claimed(job);
        exit(1);
    }
    if (job->rank == 0)
        root_fail(job, err->msg);
    MPI_Send(err->msg, (int)strlen(err->msg) + 1, MPI_CHAR, 0, TAG_ERROR, MPI_COMM_WORLD);
    rank_stop();
}

int job_finish(avps_job *job, int status) {
    if (job && job->mpi)
        MPI_Finalize();
    for (size_t i = 0; job && i < job->n_claimed; i++)
        free(job->claimed[i]);
    if (job)
        free(job->claimed);
    free(job);
    return status;
}

/* ---- outputs ------------------------------------------------------------------------- */

int job_output_claim(avps_job *job, const char *path, avps_error *err) {
    if (job->rank != 0)
        return 0;
    char *missing = path_first_missing(path);
    if (!missing)
        return 0; /* it exists: never the job's to remove */
    if ((job->n_claimed & (job->n_claimed - 1)) == 0) { /* 0, 1, 2, 4...: grown by doubling */
        char **c = realloc(job->claimed, (job->n_claimed ? 2 * job->n_claimed : 1) * sizeof *c);
        if (!c) {
            free(missing);
            return avps_fail(err, "%s: out of memory", path);
        }
        job->claimed = c;
    }
    job->claimed[job->n_claimed++] = missing;
    return 0;
}

int job_output_file(avps_job *job, const char *path, avps_error *err) {
    if (job->rank != 0)
        return 0; /* the root checks for all (the folders are shared) */
    return file_output_check(path, err) != 0 || job_output_claim(job, path, err) != 0 ? -1 : 0;
}

int job_output_dir(avps_job *job, const char *path, avps_error *err) {
    if (job->rank != 0)
        return 0; /* the root checks for all (the folders are shared) */
    return dir_output_check(path, err) != 0 || job_output_claim(job, path, err) != 0 ? -1 : 0;
}

int job_output_files_in(avps_job *job, const char *dir, char *const *names, size_t n, avps_error *err) {
    if (job->rank != 0)
        return 0; /* the root checks for all (the folders are shared) */
    if (dir_output_check(dir, err) != 0)
        return -1;
    char *missing = path_first_missing(dir);
    if (missing) {
        free(missing);
        return job_output_claim(job, dir, err); /* the folder, and all it will hold */
    }
    for (size_t i = 0; i < n; i++) {
        char *path = path_join(dir, names[i]);
        int rc = path ? job_output_claim(job, path, err) : avps_fail(err, "out of memory");
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int job_output_stage(avps_job *job, const char *dir, char **stage, avps_error *err) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (!(*stage = malloc(n + sizeof ".partial")))
        return avps_fail(err, "out of memory");
    memcpy(*stage, dir, n);
    memcpy(*stage + n, ".partial", sizeof ".partial");
    if (job->rank != 0)
        return 0;
    struct stat st;
    if (dir_output_check(dir, err) != 0)
        return -1;
    if (lstat(*stage, &st) == 0)
        return avps_fail(err, "%s: left by an interrupted job (or in use by one now); remove it", *stage);
    return job_output_claim(job, *stage, err) != 0 || dir_create(*stage, err) != 0 ? -1 : 0;
}

static int move_into_place(const char *from, const char *to, avps_error *err) {
    if (rename(from, to) != 0)
        return avps_fail(err, "%s: cannot rename to %s: %s", from, to, strerror(errno));
    return 0;
}

int job_output_publish(const char *stage, const char *dir, avps_error *err) {
    if (rename(stage, dir) == 0)
        return 0;
    if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR)
        return avps_fail(err, "%s: cannot rename to %s: %s", stage, dir, strerror(errno));
    DIR *d = opendir(stage);
    if (!d)
        return avps_fail(err, "%s: %s", stage, strerror(errno));
    int rc = 0;
    for (const struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *from = path_join(stage, e->d_name), *to = path_join(dir, e->d_name);
        rc = from && to ? move_into_place(from, to, err) : avps_fail(err, "out of memory");
        free(from);
        free(to);
    }
    closedir(d);
    if (rc == 0 && rmdir(stage) != 0)
        rc = avps_fail(err, "%s: %s", stage, strerror(errno));
    return rc;
}

int job_output_json(avps_job *job, const char *path, avps_error *err) {
    if (job->rank != 0)
        return 0; /* the root checks for all (the folders are shared) */
    char *parent = path_parent(path);
    int rc = parent ? job_output_dir(job, parent, err) : avps_fail(err, "out of memory");
    if (rc == 0)
        rc = dir_create(parent, err);
    free(parent);
    return rc == 0 ? job_output_file(job, path, err) : -1;
}

static int no_work(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    (void)ctx, (void)thread, (void)item, (void)out, (void)err;
    return 0;
}

void job_barrier(avps_job *job) {
    job_blobs_free(job_map(job, (size_t)job->size, 1, no_work, NULL), (size_t)job->size);
}

int job_blob_append(job_blob *b, const void *p, size_t n) {
    if (n == 0)
        return 0;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int job_blob_append_json_text(job_blob *b, const char *s) {
    for (const char *p = s; *p; p++)
        if (((*p == '\\' || *p == '"') && job_blob_append(b, "\\", 1)) || job_blob_append(b, p, 1))
            return -1;
    return 0;
}

void job_blobs_free(job_blob *blobs, size_t n_items) {
    if (!blobs)
        return;
    for (size_t i = 0; i < n_items; i++)
        free(blobs[i].data);
    free(blobs);
}

/* ---- the local workers --------------------------------------------------------------- */

typedef struct {
    avps_job *job;
    size_t n_items, n_local;
    job_item_fn fn;
    void *ctx;
    job_blob *blobs; /* indexed by item; only this rank's are filled */
    atomic_size_t next;
    atomic_int failed, workers_left;
    pthread_mutex_t lock;
    avps_error err; /* the first failure, under lock */
    pthread_t *tids;
    int started;
} map_state;

/* The root's workers, told to stop after their current item and waited for. */
static void map_stop(void *p) {
    map_state *st = p;
    atomic_store(&st->failed, 1);
    for (int t = 0; t < st->started; t++)
        pthread_join(st->tids[t], NULL);
    st->started = 0;
}

typedef struct {
    map_state *st;
    int thread;
} worker_arg;

static size_t local_item(const map_state *st, size_t k) {
    return k * (size_t)st->job->size + (size_t)st->job->rank;
}

static void *worker_main(void *p) {
    worker_arg *a = p;
    map_state *st = a->st;
    for (;;) {
        size_t k = atomic_fetch_add(&st->next, 1);
        if (k >= st->n_local || atomic_load(&st->failed))
            break;
        avps_error err;
        size_t item = local_item(st, k);
        if (st->fn(st->ctx, a->thread, item, &st->blobs[item], &err) != 0) {
            pthread_mutex_lock(&st->lock);
            if (!atomic_load(&st->failed))
                st->err = err;
            atomic_store(&st->failed, 1);
            pthread_mutex_unlock(&st->lock);
            break;
        }
    }
    atomic_fetch_sub(&st->workers_left, 1);
    return NULL;
}

/* Starts the workers and returns how many threads it started: none when, with one
 * thread and nothing to watch, it ran the work inline. */
static int workers_run(map_state *st, int threads, pthread_t *tids, worker_arg *args, int inline_ok) {
    atomic_store(&st->workers_left, threads);
    for (int t = 0; t < threads; t++)
        args[t] = (worker_arg){st, t};
    if (threads == 1 && inline_ok) {
        worker_main(&args[0]);
        return 0;
    }
    for (int t = 0; t < threads; t++)
        if (pthread_create(&tids[t], NULL, worker_main, &args[t]) != 0) {
            for (int u = 0; u < t; u++)
                pthread_join(tids[u], NULL);
            return -1;
        }
    return threads;
}

/* ---- ranks ---------------------------------------------------------------------- */

static int pack_local(const map_state *st, job_blob *out) {
    for (size_t k = 0; k < st->n_local; k++) {
        size_t item = local_item(st, k);
        uint64_t head[2] = {item, st->blobs[item].len};
        if (job_blob_append(out, head, sizeof head) != 0 ||
            job_blob_append(out, st->blobs[item].data, st->blobs[item].len) != 0)
            return -1;
    }
    return 0;
}

/* Sends a rank's packed results to the root, its length first, in chunks that fit an
 * int count; frees them. */
static void send_packed(job_blob *all) {
    uint64_t len = all->len;
    MPI_Send(&len, 1, MPI_UINT64_T, 0, TAG_DATA_LEN, MPI_COMM_WORLD);
    for (size_t off = 0; off < all->len; off += CHUNK_BYTES) {
        size_t n = all->len - off < CHUNK_BYTES ? all->len - off : CHUNK_BYTES;
        MPI_Send(all->data + off, (int)n, MPI_BYTE, 0, TAG_DATA, MPI_COMM_WORLD);
    }
    free(all->data);
}

static void send_local(map_state *st) {
    job_blob all = {0};
    if (pack_local(st, &all) != 0) {
        avps_error err;
        avps_fail(&err, "rank %d: out of memory packing results", st->job->rank);
        job_fail(st->job, &err);
    }
    send_packed(&all);
}

static void receive_from(map_state *st, int src) {
    uint64_t len;
    MPI_Recv(&len, 1, MPI_UINT64_T, src, TAG_DATA_LEN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        root_fail(st->job, "root: out of memory receiving results");
    for (size_t off = 0; off < len; off += CHUNK_BYTES) {
        size_t n = len - off < CHUNK_BYTES ? len - off : CHUNK_BYTES;
        MPI_Recv(buf + off, (int)n, MPI_BYTE, src, TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    for (size_t off = 0; off + 16 <= len;) {
        uint64_t head[2];
        memcpy(head, buf + off, sizeof head);
        off += sizeof head;
        if (head[0] >= st->n_items || head[1] > len - off)
            root_fail(st->job, "root: malformed results from a rank");
        if (job_blob_append(&st->blobs[head[0]], buf + off, head[1]) != 0)
            root_fail(st->job, "root: out of memory receiving results");
        off += head[1];
    }
    free(buf);
}

static void __attribute__((noreturn)) receive_error(avps_job *job, int src) {
    MPI_Status status;
    int count;
    MPI_Probe(src, TAG_ERROR, MPI_COMM_WORLD, &status);
    MPI_Get_count(&status, MPI_CHAR, &count);
    char *msg = calloc((size_t)count + 1, 1);
    if (!msg)
        root_fail(job, "a rank failed (out of memory reading its message)");
    MPI_Recv(msg, count, MPI_CHAR, src, TAG_ERROR, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    root_fail(job, msg);
}

/* The root's main thread: takes the other ranks' results and errors as they come while
 * its own workers run, so that a failure anywhere ends the job at once. */
static void root_watch(map_state *st) {
    int pending = st->job->size - 1;
    while (pending > 0 || atomic_load(&st->workers_left) > 0) {
        if (atomic_load(&st->failed))
            root_fail(st->job, st->err.msg);
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
        if (!flag) {
            sleep_ms(1);
            continue;
        }
        if (status.MPI_TAG == TAG_ERROR)
            receive_error(st->job, status.MPI_SOURCE);
        receive_from(st, status.MPI_SOURCE);
        pending--;
    }
}

/* Another rank's main thread: stops at once when the root says ABORT. */
static void rank_watch(map_state *st, pthread_t *tids, int started) {
    while (atomic_load(&st->workers_left) > 0) {
        int flag = 0;
        MPI_Iprobe(0, TAG_ABORT, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag) {
            atomic_store(&st->failed, 1); /* workers stop after their current item */
            for (int t = 0; t < started; t++)
                pthread_join(tids[t], NULL);
            rank_stop();
        }
        sleep_ms(1);
    }
}

/* After sending its results a rank waits for the verdict: the job may still fail. It
 * looks every few ms rather than blocking in MPI_Probe, where Open MPI spins: a rank done
 * early would take a core from those still working (oversubscribed) and from the root. */
static void rank_await_verdict(void) {
    MPI_Status status;
    int flag = 0;
    for (int ms = 1;; ms = ms < 8 ? 2 * ms : 8) {
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
        if (flag)
            break;
        sleep_ms(ms);
    }
    if (status.MPI_TAG == TAG_ABORT)
        rank_stop();
    MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_DONE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

job_blob *job_map(avps_job *job, size_t n_items, int threads, job_item_fn fn, void *ctx) {
    map_state st = {.job = job, .n_items = n_items, .fn = fn, .ctx = ctx};
    avps_error err;
    size_t rank = (size_t)job->rank, size = (size_t)job->size;
    st.n_local = n_items > rank ? (n_items - rank + size - 1) / size : 0;
    /* The other ranks are in this map too, and wait for its verdict (a job may map twice). */
    if (job->mpi && job->rank == 0)
        job->peers_listening = job->size > 1;
    if (threads < 1)
        threads = 1;
    st.blobs = calloc(n_items ? n_items : 1, sizeof *st.blobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    worker_arg *args = calloc((size_t)threads, sizeof *args);
    if (!st.blobs || !tids || !args) {
        avps_fail(&err, "rank %d: out of memory", job->rank);
        job_fail(job, &err);
    }
    pthread_mutex_init(&st.lock, NULL);
    int started = workers_run(&st, threads, tids, args, !job->mpi);
    if (started < 0) {
        avps_fail(&err, "rank %d: cannot start %d threads", job->rank, threads);
        job_fail(job, &err);
    }
    st.tids = tids, st.started = started;
    if (job->mpi && job->rank == 0) {
        job->stop_workers = map_stop, job->stop_ctx = &st;
        root_watch(&st);
    } else if (job->mpi) {
        rank_watch(&st, tids, started);
    }
    for (int t = 0; t < st.started; t++)
        pthread_join(tids[t], NULL);
    job->stop_workers = NULL;
    pthread_mutex_destroy(&st.lock);
    free(tids);
    free(args);
    if (atomic_load(&st.failed))
        job_fail(job, &st.err);
    if (job->mpi && job->rank != 0) {
        send_local(&st);
        job_blobs_free(st.blobs, n_items);
        rank_await_verdict();
        return NULL;
    }
    if (job->mpi && job->peers_listening) {
        tell_peers(job, TAG_DONE);
        job->peers_listening = 0;
    }
    return st.blobs;
}

/* ---- dynamic scheduling ------------------------------------------------------------------
 *
 * REQUEST: a rank asks the root for work. CHUNK: the root's answer, a list of item
 * indexes; an empty list means no more. RESULT: one item's result, its index first, sent
 * as soon as it is made. END: a rank has sent its last result. A rank keeps one request
 * outstanding and asks again while its queue is shorter than its thread count, so its
 * threads rarely wait for the network; the root holds a request back while the window
 * is full (the result it waits for is then being made somewhere). */
enum { TAG_REQUEST = TAG_BYE + 1, TAG_CHUNK, TAG_RESULT, TAG_END };
#define NOT_TODO SIZE_MAX

typedef struct {
    avps_job *job;
    size_t n_items;
    job_dynamic *plan;
    const size_t *todo; /* root */
    size_t n_todo;
    size_t window;
    int threads;        /* per rank */
    /* root, under lock: the next todo position to hand out, and results held back */
    size_t next;
    size_t *pos_of;           /* root: each item's todo position, or NOT_TODO */
    job_reorder order;
    size_t sunk;              /* root's main thread: results given to the sink */
    uint8_t *deferred;        /* root: per rank, a request held back */
    double *deferred_at;      /* root: since when */
    /* other ranks */
    job_blob *blobs;          /* indexed by item, until sent */
    size_t *queue;            /* items received */
    size_t q_len, q_next;     /* under lock */
    int exhausted;            /* under lock: the root said no more */
    size_t *finished;         /* items made and not yet sent (under lock) */
    size_t n_finished;
    MPI_Request *sends;       /* results on their way to the root (MPI_Isend), and their bytes */
    uint8_t **send_bufs;
    size_t n_sends;
    atomic_size_t done_local; /* items finished here */
    atomic_int failed, workers_left;
    pthread_mutex_t lock;
    pthread_cond_t more;      /* workers: the window moved, items came, or the end */
    pthread_cond_t event;     /* the main thread: a worker finished an item, failed or stopped */
    unsigned events;          /* under lock: how many since the main thread last looked */
    avps_error err;
    pthread_t *tids;
    int started;
    /* figures (job_rank_stats): the waits under lock, the rest the main thread's */
    double wait, wait_max, wait_end;
    double asked_at;          /* other ranks: when the outstanding request went */
    job_rank_stats self;
} dyn_state;

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double now_seconds(void) { return clock_seconds(CLOCK_MONOTONIC); }

static void dyn_stop(void *p) {
    dyn_state *st = p;
    pthread_mutex_lock(&st->lock);
    atomic_store(&st->failed, 1);
    pthread_cond_broadcast(&st->more);
    pthread_mutex_unlock(&st->lock);
    for (int t = 0; t < st->started; t++)
        pthread_join(st->tids[t], NULL);
    st->started = 0;
}

typedef struct {
    dyn_state *st;
    int thread;
} dyn_worker_arg;

/* Whether a worker must wait for its next item (under lock): on the root while the
 * window is full, elsewhere while its queue is empty and the root has not said no more. */
static int dyn_must_wait(const dyn_state *st) {
    if (atomic_load(&st->failed))
        return 0;
    if (st->job->rank == 0)
        return st->next < st->n_todo && st->next >= st->order.base + st->window;
    return st->q_next == st->q_len && !st->exhausted;
}

/* The next item for a worker, or 0 when there is none (and will be none). The time it
 * waits counts in the rank's figures: how long its threads stood idle for want of work. */
static int dyn_take(dyn_state *st, size_t *item) {
    pthread_mutex_lock(&st->lock);
    double waited = 0;
    if (dyn_must_wait(st)) {
        double t0 = now_seconds();
        while (dyn_must_wait(st))
            pthread_cond_wait(&st->more, &st->lock);
        waited = now_seconds() - t0;
    }
    int got;
    if (st->job->rank == 0) {
        got = !atomic_load(&st->failed) && st->next < st->n_todo;
        if (got)
            *item = st->todo[st->next++];
    } else {
        got = st->q_next < st->q_len && !atomic_load(&st->failed);
        if (got)
            *item = st->queue[st->q_next++];
    }
    if (got) {
        st->wait += waited;
        if (waited > st->wait_max)
            st->wait_max = waited;
    } else {
        st->wait_end += waited; /* for the word that nothing is left: idle, but no work was lost */
    }
    pthread_mutex_unlock(&st->lock);
    return got;
}

/* Wakes the main thread (under lock). */
static void dyn_event(dyn_state *st) {
    st->events++;
    pthread_cond_signal(&st->event);
}

/* The main thread's pause between two looks at MPI: up to ms, cut short when a worker
 * finishes an item (its result is then sunk or sent at once). */
static void dyn_pause(dyn_state *st, int ms) {
    pthread_mutex_lock(&st->lock);
    if (!st->events) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&st->event, &st->lock, &until);
    }
    st->events = 0;
    pthread_mutex_unlock(&st->lock);
}

static void dyn_record_failure(dyn_state *st, const avps_error *err) {
    pthread_mutex_lock(&st->lock);
    if (!atomic_load(&st->failed))
        st->err = *err;
    atomic_store(&st->failed, 1);
    pthread_cond_broadcast(&st->more);
    dyn_event(st);
    pthread_mutex_unlock(&st->lock);
}

/* A finished item: on the root into the reorder buffer, elsewhere onto the list to send. */
static int dyn_finish(dyn_state *st, size_t item, job_blob *blob, avps_error *err) {
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (st->job->rank == 0)
        rc = job_reorder_put(&st->order, st->pos_of[item], blob);
    else
        st->finished[st->n_finished++] = item;
    dyn_event(st);
    pthread_mutex_unlock(&st->lock);
    if (rc != 0) {
        free(blob->data);
        *blob = (job_blob){0};
        return avps_fail(err, "root: item %zu finished outside the window", item);
    }
    return 0;
}

static void *dyn_worker_main(void *p) {
    dyn_worker_arg *a = p;
    dyn_state *st = a->st;
    size_t item;
    while (!atomic_load(&st->failed) && dyn_take(st, &item)) {
        avps_error err;
        job_blob local = {0}, *out = st->job->rank == 0 ? &local : &st->blobs[item];
        if (st->plan->fn(st->plan->ctx, a->thread, item, out, &err) != 0 || dyn_finish(st, item, out, &err) != 0) {
            free(local.data);
            dyn_record_failure(st, &err);
            break;
        }
        atomic_fetch_add(&st->done_local, 1);
    }
    pthread_mutex_lock(&st->lock);
    atomic_fetch_sub(&st->workers_left, 1);
    dyn_event(st);
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* Progress: called when the count changed, and at least every DYN_PROGRESS_MS. The
 * root looks for messages every ms while they come, every DYN_IDLE_MS at most while none
 * do: a rank asks for its next chunk while it still has an item in hand, so this latency
 * hides behind the item (the waits in job_rank_stats say when it does not). */
enum { DYN_PROGRESS_MS = 100, DYN_IDLE_MS = 8, DYN_RANK_IDLE_MS = 50 };
typedef struct {
    job_progress_fn fn;
    void *ctx;
    size_t last;
    double last_time;
} dyn_progress;

static void dyn_progress_tick(dyn_progress *p, size_t done) {
    if (!p->fn)
        return;
    double t = now_seconds();
    if (done != p->last || t - p->last_time >= DYN_PROGRESS_MS * 1e-3) {
        p->fn(p->ctx, done);
        p->last = done;
        p->last_time = t;
    }
}

/* Answers a rank's request with the next chunk that fits the window; 0 (nothing sent)
 * when the window is full and items remain. Near the end chunks shrink (at most an
 * eighth of what is left per rank and thread, so the threads of ranks still asking get
 * their share): no rank is left with a full chunk while the others stand idle. */
static int dyn_try_answer(dyn_state *st, int src) {
    size_t chunk = st->plan->chunk, share = (size_t)st->job->size * (size_t)st->threads * 8;
    pthread_mutex_lock(&st->lock);
    size_t k = st->next, room = st->order.base + st->window - k;
    size_t n = k < st->n_todo ? st->n_todo - k : 0;
    if (chunk > 1 && n / share < chunk)
        chunk = n / share > 1 ? n / share : 1;
    if (n > chunk)
        n = chunk;
    if (n > room)
        n = room;
    int held = n == 0 && k < st->n_todo;
    st->next += n;
    pthread_mutex_unlock(&st->lock);
    if (held)
        return 0;
    uint64_t *items = malloc((n ? n : 1) * sizeof *items);
    if (!items)
        root_fail(st->job, "root: out of memory handing out work");
    for (size_t j = 0; j < n; j++)
        items[j] = st->todo[k + j];
    MPI_Send(items, (int)n, MPI_UINT64_T, src, TAG_CHUNK, MPI_COMM_WORLD);
    free(items);
    return 1;
}

static void dyn_answer_request(dyn_state *st, int src) {
    uint64_t ignored;
    MPI_Recv(&ignored, 1, MPI_UINT64_T, src, TAG_REQUEST, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (!dyn_try_answer(st, src)) {
        st->deferred[src] = 1;
        st->deferred_at[src] = now_seconds();
    }
}

static void dyn_receive_result(dyn_state *st, int src, int count) {
    uint8_t *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf)
        root_fail(st->job, "root: out of memory receiving results");
    MPI_Recv(buf, count, MPI_BYTE, src, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    uint64_t item;
    job_blob blob = {0};
    int ok = count >= (int)sizeof item;
    if (ok) {
        memcpy(&item, buf, sizeof item);
        ok = item < st->n_items && st->pos_of[item] != NOT_TODO &&
             job_blob_append(&blob, buf + sizeof item, (size_t)count - sizeof item) == 0;
    }
    free(buf);
    if (ok) {
        pthread_mutex_lock(&st->lock);
        ok = job_reorder_put(&st->order, st->pos_of[item], &blob) == 0;
        pthread_mutex_unlock(&st->lock);
    }
    if (!ok) {
        free(blob.data);
        root_fail(st->job, "root: malformed results from a rank");
    }
}

/* A rank's last message: its figures (job_rank_stats, the same build on every rank). */
static void dyn_receive_end(dyn_state *st, int src) {
    job_rank_stats figures;
    MPI_Status status;
    int count;
    MPI_Probe(src, TAG_END, MPI_COMM_WORLD, &status);
    MPI_Get_count(&status, MPI_BYTE, &count);
    if (count != (int)sizeof figures)
        root_fail(st->job, "root: malformed end message from a rank");
    MPI_Recv(&figures, count, MPI_BYTE, src, TAG_END, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (st->plan->stats)
        st->plan->stats[src] = figures;
}

/* Gives the sink every result whose predecessors have all come; frees the window. */
static int dyn_sink_ready(dyn_state *st) {
    int any = 0;
    for (;;) {
        job_blob blob;
        pthread_mutex_lock(&st->lock);
        int got = job_reorder_pop(&st->order, &blob);
        if (got)
            pthread_cond_broadcast(&st->more);
        pthread_mutex_unlock(&st->lock);
        if (!got)
            break;
        any = 1;
        avps_error err;
        size_t item = st->todo[st->sunk++];
        double cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        if (st->plan->sink(st->plan->sink_ctx, item, &blob, &err) != 0)
            job_fail(st->job, &err);
        st->self.sink_cpu += clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    }
    for (int r = 1; any && st->job->mpi && r < st->job->size; r++)
        if (st->deferred[r] && dyn_try_answer(st, r)) {
            st->deferred[r] = 0;
            st->self.held += now_seconds() - st->deferred_at[r];
        }
    return any;
}

/* The root's main thread: hands out chunks, takes results and errors, sinks results in
 * order, reports progress. */
static void dyn_root_watch(dyn_state *st, dyn_progress *prog) {
    int pending = st->job->mpi ? st->job->size - 1 : 0, idle_ms = 1;
    size_t remote_done = 0;
    while (pending > 0 || st->sunk < st->n_todo) {
        if (atomic_load(&st->failed))
            job_fail(st->job, &st->err);
        int sank = dyn_sink_ready(st);
        dyn_progress_tick(prog, atomic_load(&st->done_local) + remote_done);
        int flag = 0;
        MPI_Status status;
        if (pending > 0)
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
        if (!flag) {
            /* the root's own results wake it; the other ranks' messages are looked for
             * every ms, less often while none come */
            if (!sank)
                dyn_pause(st, pending > 0 ? idle_ms : DYN_PROGRESS_MS);
            idle_ms = idle_ms < DYN_IDLE_MS ? 2 * idle_ms : DYN_IDLE_MS;
            continue;
        }
        idle_ms = 1;
        int count = 0;
        switch (status.MPI_TAG) {
        case TAG_ERROR:
            receive_error(st->job, status.MPI_SOURCE);
        case TAG_REQUEST:
            dyn_answer_request(st, status.MPI_SOURCE);
            break;
        case TAG_RESULT:
            MPI_Get_count(&status, MPI_BYTE, &count);
            dyn_receive_result(st, status.MPI_SOURCE, count);
            remote_done++;
            break;
        case TAG_END:
            dyn_receive_end(st, status.MPI_SOURCE);
            pending--;
            break;
        default:
            root_fail(st->job, "root: unexpected message from a rank");
        }
    }
    if (atomic_load(&st->failed))
        job_fail(st->job, &st->err);
    if (prog->fn)
        prog->fn(prog->ctx, st->n_todo);
}

static size_t dyn_sends_progress(dyn_state *st);
static void dyn_sends_drain(dyn_state *st);

static void dyn_rank_stop(dyn_state *st, pthread_t *tids, int started) {
    pthread_mutex_lock(&st->lock);
    atomic_store(&st->failed, 1); /* workers stop after their current item */
    pthread_cond_broadcast(&st->more);
    pthread_mutex_unlock(&st->lock);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    dyn_sends_drain(st); /* the root takes everything until BYE */
    rank_stop();
}

static void dyn_take_chunk(dyn_state *st) {
    MPI_Status status;
    int count;
    MPI_Probe(0, TAG_CHUNK, MPI_COMM_WORLD, &status);
    MPI_Get_count(&status, MPI_UINT64_T, &count);
    uint64_t *items = malloc((size_t)(count > 0 ? count : 1) * sizeof *items);
    if (!items) {
        avps_error err;
        avps_fail(&err, "rank %d: out of memory", st->job->rank);
        job_fail(st->job, &err);
    }
    MPI_Recv(items, count, MPI_UINT64_T, 0, TAG_CHUNK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    double trip = now_seconds() - st->asked_at;
    st->self.request += trip;
    if (trip > st->self.request_max)
        st->self.request_max = trip;
    pthread_mutex_lock(&st->lock);
    for (int j = 0; j < count && st->q_len < st->n_items; j++)
        if (items[j] < st->n_items)
            st->queue[st->q_len++] = (size_t)items[j];
    if (count == 0)
        st->exhausted = 1;
    pthread_cond_broadcast(&st->more);
    pthread_mutex_unlock(&st->lock);
    free(items);
}

/* Starts sending the results made since the last call, one message each (MPI_Isend: a
 * result larger than the eager limit would hold a blocking send, spinning, until the root
 * takes it), and frees them. */
static void dyn_send_finished(dyn_state *st) {
    for (;;) {
        pthread_mutex_lock(&st->lock);
        size_t item = st->n_finished ? st->finished[--st->n_finished] : NOT_TODO;
        pthread_mutex_unlock(&st->lock);
        if (item == NOT_TODO)
            return;
        job_blob *b = &st->blobs[item], msg = {0};
        uint64_t head = item;
        if (b->len > (size_t)INT_MAX - sizeof head || job_blob_append(&msg, &head, sizeof head) != 0 ||
            job_blob_append(&msg, b->data, b->len) != 0) {
            avps_error err;
            avps_fail(&err, "rank %d: item %zu: result too large to send (%zu bytes)", st->job->rank, item, b->len);
            job_fail(st->job, &err);
        }
        free(b->data);
        *b = (job_blob){0};
        st->send_bufs[st->n_sends] = msg.data;
        MPI_Isend(msg.data, (int)msg.len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD, &st->sends[st->n_sends++]);
    }
}

/* Frees the results the root has taken; returns how many are still on their way. */
static size_t dyn_sends_progress(dyn_state *st) {
    size_t kept = 0;
    for (size_t i = 0; i < st->n_sends; i++) {
        int done = 0;
        MPI_Test(&st->sends[i], &done, MPI_STATUS_IGNORE);
        if (done) {
            free(st->send_bufs[i]);
        } else {
            st->sends[kept] = st->sends[i];
            st->send_bufs[kept++] = st->send_bufs[i];
        }
    }
    return st->n_sends = kept;
}

/* Until every result sent has been taken (the root takes them while the job lives). */
static void dyn_sends_drain(dyn_state *st) {
    while (dyn_sends_progress(st) > 0)
        sleep_ms(1);
}

/* Another rank's main thread: sends results, asks for work while its queue runs short;
 * stops at ABORT. */
static void dyn_rank_watch(dyn_state *st, int threads, pthread_t *tids, int started) {
    int outstanding = 0;
    while (atomic_load(&st->workers_left) > 0) {
        int flag = 0;
        MPI_Iprobe(0, TAG_ABORT, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag)
            dyn_rank_stop(st, tids, started);
        dyn_send_finished(st);
        size_t sending = dyn_sends_progress(st);
        if (outstanding) {
            MPI_Iprobe(0, TAG_CHUNK, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
            if (flag) {
                dyn_take_chunk(st);
                outstanding = 0;
                continue;
            }
        }
        pthread_mutex_lock(&st->lock);
        int want = !st->exhausted && !atomic_load(&st->failed) && st->q_len - st->q_next < (size_t)threads;
        pthread_mutex_unlock(&st->lock);
        if (want && !outstanding) {
            uint64_t done = atomic_load(&st->done_local);
            st->asked_at = now_seconds();
            st->self.requests++;
            MPI_Send(&done, 1, MPI_UINT64_T, 0, TAG_REQUEST, MPI_COMM_WORLD);
            outstanding = 1;
            continue;
        }
        /* a finished item wakes it; an answer or a send under way is looked for every ms */
        dyn_pause(st, outstanding || sending ? 1 : DYN_RANK_IDLE_MS);
    }
    /* A worker that failed leaves an answer pending; job_fail below does not need it. */
    if (outstanding && !atomic_load(&st->failed))
        dyn_take_chunk(st);
}

static void dyn_alloc(avps_job *job, dyn_state *st, int threads) {
    size_t n = st->n_items ? st->n_items : 1;
    int ok = 1;
    if (job->rank == 0) {
        st->pos_of = malloc(n * sizeof *st->pos_of);
        st->deferred = calloc((size_t)job->size, 1);
        st->deferred_at = calloc((size_t)job->size, sizeof *st->deferred_at);
        ok = st->pos_of && st->deferred && st->deferred_at && job_reorder_init(&st->order, st->window) == 0;
        for (size_t i = 0; ok && i < st->n_items; i++)
            st->pos_of[i] = NOT_TODO;
        for (size_t k = 0; ok && k < st->n_todo; k++)
            if (st->todo[k] < st->n_items)
                st->pos_of[st->todo[k]] = k;
    } else {
        st->blobs = calloc(n, sizeof *st->blobs);
        st->queue = calloc(n, sizeof *st->queue);
        st->finished = calloc(n, sizeof *st->finished);
        st->sends = calloc(n, sizeof *st->sends);
        st->send_bufs = calloc(n, sizeof *st->send_bufs);
        ok = st->blobs && st->queue && st->finished && st->sends && st->send_bufs;
    }
    st->tids = calloc((size_t)threads, sizeof *st->tids);
    if (!ok || !st->tids) {
        avps_error err;
        avps_fail(&err, "rank %d: out of memory", job->rank);
        job_fail(job, &err);
    }
}

static void dyn_free(dyn_state *st) {
    free(st->tids);
    free(st->pos_of);
    free(st->deferred);
    free(st->deferred_at);
    job_reorder_release(&st->order);
    if (st->blobs)
        job_blobs_free(st->blobs, st->n_items);
    free(st->queue);
    free(st->finished);
    free(st->sends);
    free(st->send_bufs);
}

/* This rank's figures once its workers have stopped (wall0 and the CPU clocks read when
 * the map began). */
static void dyn_stats_finish(dyn_state *st, double wall0, double cpu0, double main0) {
    job_rank_stats *s = &st->self;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->items = atomic_load(&st->done_local);
    s->wall = now_seconds() - wall0;
    s->cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    s->main_cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - main0;
    s->wait = st->wait, s->wait_max = st->wait_max, s->wait_end = st->wait_end;
    s->peak_rss_kib = ru.ru_maxrss > 0 ? (uint64_t)ru.ru_maxrss : 0;
}

void job_map_dynamic(avps_job *job, size_t n_items, const size_t *todo, size_t n_todo, job_dynamic *plan) {
    double wall0 = now_seconds(), cpu0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID),
           main0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
    dyn_state st = {.job = job, .n_items = n_items, .plan = plan, .todo = todo, .n_todo = n_todo};
    dyn_progress prog = {plan->progress, plan->progress_ctx, (size_t)-1, 0};
    avps_error err;
    int threads = plan->threads < 1 ? 1 : plan->threads;
    if (plan->chunk < 1)
        plan->chunk = 1;
    st.window = plan->window ? plan->window : 4 * (size_t)job->size * ((size_t)threads + plan->chunk);
    st.threads = threads;
    if (job->mpi && job->rank == 0)
        job->peers_listening = job->size > 1;
    dyn_alloc(job, &st, threads);
    dyn_worker_arg *args = calloc((size_t)threads, sizeof *args);
    if (!args) {
        avps_fail(&err, "rank %d: out of memory", job->rank);
        job_fail(job, &err);
    }
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.more, NULL);
    pthread_condattr_t event_attr; /* dyn_pause's deadlines are on the monotonic clock */
    pthread_condattr_init(&event_attr);
    pthread_condattr_setclock(&event_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&st.event, &event_attr);
    pthread_condattr_destroy(&event_attr);
    atomic_store(&st.workers_left, threads);
    int started = 0;
    for (; started < threads; started++) {
        args[started] = (dyn_worker_arg){&st, started};
        if (pthread_create(&st.tids[started], NULL, dyn_worker_main, &args[started]) != 0)
            break;
    }
    if (started < threads) {
        avps_fail(&err, "rank %d: cannot start %d threads", job->rank, threads);
        dyn_record_failure(&st, &err);
        atomic_fetch_sub(&st.workers_left, threads - started);
    }
    st.started = started;
    if (job->rank == 0) {
        job->stop_workers = dyn_stop, job->stop_ctx = &st;
        dyn_root_watch(&st, &prog);
    } else {
        dyn_rank_watch(&st, threads, st.tids, started);
    }
    for (int t = 0; t < st.started; t++)
        pthread_join(st.tids[t], NULL);
    job->stop_workers = NULL;
    pthread_cond_destroy(&st.more);
    pthread_cond_destroy(&st.event);
    pthread_mutex_destroy(&st.lock);
    free(args);
    if (atomic_load(&st.failed))
        job_fail(job, &st.err);
    plan->buffered_max = st.order.max_count;
    if (job->mpi && job->rank != 0) {
        dyn_send_finished(&st);
        dyn_sends_drain(&st);
        dyn_stats_finish(&st, wall0, cpu0, main0);
        MPI_Send(&st.self, (int)sizeof st.self, MPI_BYTE, 0, TAG_END, MPI_COMM_WORLD);
        dyn_free(&st);
        rank_await_verdict();
        return;
    }
    dyn_stats_finish(&st, wall0, cpu0, main0);
    if (plan->stats)
        plan->stats[0] = st.self;
    dyn_free(&st);
    if (job->mpi && job->peers_listening) {
        tell_peers(job, TAG_DONE);
        job->peers_listening = 0;
    }
}
