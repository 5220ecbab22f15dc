/* job.c: launcher detection, sharding over ranks and threads, gathering per-item
 * results on the root, and ending the whole job on any rank's error. */
#include "job.h"

#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ERROR: a rank's message to the root. DATA_LEN, DATA: a rank's results. ABORT, DONE:
 * the root's verdict to every rank. BYE: a rank's answer to ABORT. */
enum { TAG_ERROR = 1, TAG_DATA_LEN, TAG_DATA, TAG_ABORT, TAG_DONE, TAG_BYE };
#define CHUNK_BYTES ((size_t)1 << 30)

struct avps_job {
    int rank, size;
    int mpi;             /* joined MPI */
    int peers_listening; /* root: the other ranks still wait for a verdict */
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

static void __attribute__((noreturn)) root_fail(avps_job *job, const char *msg) {
    fprintf(stderr, "avps: error: %s\n", msg);
    fflush(stderr);
    if (job->peers_listening) {
        tell_peers(job, TAG_ABORT);
        drain_until_bye(job);
    }
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
    free(job);
    return status;
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
} map_state;

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

static void send_local(map_state *st) {
    job_blob all = {0};
    if (pack_local(st, &all) != 0) {
        avps_error err;
        avps_fail(&err, "rank %d: out of memory packing results", st->job->rank);
        job_fail(st->job, &err);
    }
    uint64_t len = all.len;
    MPI_Send(&len, 1, MPI_UINT64_T, 0, TAG_DATA_LEN, MPI_COMM_WORLD);
    for (size_t off = 0; off < all.len; off += CHUNK_BYTES) {
        size_t n = all.len - off < CHUNK_BYTES ? all.len - off : CHUNK_BYTES;
        MPI_Send(all.data + off, (int)n, MPI_BYTE, 0, TAG_DATA, MPI_COMM_WORLD);
    }
    free(all.data);
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

/* After sending its results a rank waits for the verdict: the job may still fail. */
static void rank_await_verdict(void) {
    MPI_Status status;
    MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
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
    if (job->mpi && job->rank == 0)
        root_watch(&st);
    else if (job->mpi)
        rank_watch(&st, tids, started);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
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
