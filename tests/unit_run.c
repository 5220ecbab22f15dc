/* unit_run.c: the pure parts of avps run: the GPU a node-local rank takes, FNV-1a 64
 * (the config hash and input digests) against its published test vectors, progress
 * modes, a per-image record refused when it is cut short or not a record, and the root's
 * reorder buffer: results in todo order, never more held than the window. */
#include "../mpi/run.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void gpu_pick(check_tally *t) {
    char out[32];
    CHECK(t, run_gpu_pick(0, NULL, 0, out, sizeof out) == 0 && out[0] == 0); /* no GPU */
    CHECK(t, run_gpu_pick(5, NULL, 4, out, sizeof out) == 1 && strcmp(out, "1") == 0);
    CHECK(t, run_gpu_pick(0, "3,5", 8, out, sizeof out) == 1 && strcmp(out, "3") == 0);
    CHECK(t, run_gpu_pick(1, "3,5", 8, out, sizeof out) == 1 && strcmp(out, "5") == 0);
    CHECK(t, run_gpu_pick(2, "3,5", 8, out, sizeof out) == 1 && strcmp(out, "3") == 0);
    CHECK(t, run_gpu_pick(1, "GPU-aa,GPU-bb,GPU-cc", 0, out, sizeof out) == 1 && strcmp(out, "GPU-bb") == 0);
    CHECK(t, run_gpu_pick(0, "", 4, out, sizeof out) == 0); /* the launcher hid every device */
    CHECK(t, run_gpu_pick(-1, "7", 0, out, sizeof out) == 1 && strcmp(out, "7") == 0);
}

static void fnv(check_tally *t) {
    /* the FNV-1a 64 test vectors of the algorithm's authors */
    CHECK(t, run_fnv(RUN_FNV_START, "", 0) == 0xcbf29ce484222325ull);
    CHECK(t, run_fnv(RUN_FNV_START, "a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(t, run_fnv(RUN_FNV_START, "foobar", 6) == 0x85944171f73967e8ull);
    /* chained: the same as one call */
    CHECK(t, run_fnv(run_fnv(RUN_FNV_START, "foo", 3), "bar", 3) == 0x85944171f73967e8ull);
}

static void progress_modes(check_tally *t) {
    progress_mode m;
    CHECK(t, run_progress_mode("auto", &m) == 0 && m == PROGRESS_AUTO);
    CHECK(t, run_progress_mode("bar", &m) == 0 && m == PROGRESS_BAR);
    CHECK(t, run_progress_mode("lines", &m) == 0 && m == PROGRESS_LINES);
    CHECK(t, run_progress_mode("none", &m) == 0 && m == PROGRESS_NONE);
    CHECK(t, run_progress_mode("Bar", &m) != 0);
}

static void records(check_tally *t) {
    run_record rec;
    uint8_t buf[256] = {0};
    CHECK(t, run_record_parse(buf, 0, &rec) != 0);
    CHECK(t, run_record_parse(buf, sizeof buf, &rec) != 0); /* no magic */
    /* the smallest record: one end with nothing, then the steps' wall and CPU seconds */
    uint32_t head[2] = {0x52535641u, 1};
    uint64_t counts[3] = {0, 0, 0};
    double seconds[STEP_COUNT] = {1, 2, 3, 4}, cpu[STEP_COUNT] = {5, 6, 7, 8};
    size_t n = 0;
    memcpy(buf + n, head, sizeof head), n += sizeof head;
    memcpy(buf + n, counts, sizeof counts), n += sizeof counts;
    memcpy(buf + n, seconds, sizeof seconds), n += sizeof seconds;
    memcpy(buf + n, cpu, sizeof cpu), n += sizeof cpu;
    CHECK(t, run_record_parse(buf, n, &rec) == 0 && rec.n_ends == 1 && rec.n_events[0] == 0 && rec.seconds[3] == 4 &&
                 rec.cpu[0] == 5 && rec.cpu[3] == 8);
    CHECK(t, run_record_parse(buf, n - sizeof cpu, &rec) != 0); /* a version 1 record: no CPU seconds */
    CHECK(t, run_record_parse(buf, n - 1, &rec) != 0); /* cut short */
    CHECK(t, run_record_parse(buf, n + 8, &rec) != 0); /* trailing bytes */
    counts[0] = 1000; /* more events than bytes */
    memcpy(buf + sizeof head, counts, sizeof counts);
    CHECK(t, run_record_parse(buf, n, &rec) != 0);
}

/* The reorder buffer: results put in any order come out in position order, and only
 * positions inside the window are taken. */
static void reorder(check_tally *t) {
    job_reorder r;
    CHECK(t, job_reorder_init(&r, 3) == 0);
    job_blob b = {0}, out;
    const size_t order[] = {2, 1, 0, 5, 4, 3};
    size_t popped = 0;
    int in_order = 1;
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        CHECK(t, job_blob_append(&b, &order[k], sizeof order[k]) == 0);
        CHECK(t, job_reorder_put(&r, order[k], &b) == 0 && b.data == NULL);
        while (job_reorder_pop(&r, &out)) {
            size_t v;
            memcpy(&v, out.data, sizeof v);
            in_order &= v == popped++;
            free(out.data);
        }
    }
    CHECK(t, in_order && popped == 6 && r.count == 0 && r.max_count == 3);
    CHECK(t, job_blob_append(&b, "x", 1) == 0);
    CHECK(t, job_reorder_put(&r, 5, &b) != 0);                /* already sunk */
    CHECK(t, job_reorder_put(&r, 9, &b) != 0 && b.data);      /* past the window */
    CHECK(t, job_reorder_put(&r, 8, &b) == 0 && b.data == NULL);
    job_reorder_release(&r); /* frees what it still holds */
}

typedef struct {
    size_t next, n_bad;
} sink_check;

static int slow_item(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    (void)ctx, (void)thread, (void)err;
    struct timespec ts = {0, (long)((item * 7919) % 5) * 300000L}; /* unequal costs */
    nanosleep(&ts, NULL);
    return job_blob_append(out, &item, sizeof item);
}

static int check_sink(void *ctx, size_t item, job_blob *blob, avps_error *err) {
    (void)err;
    sink_check *c = ctx;
    size_t v = (size_t)-1;
    if (blob->len == sizeof v)
        memcpy(&v, blob->data, sizeof v);
    c->n_bad += item != c->next * 2 || v != item;
    c->next++;
    free(blob->data);
    return 0;
}

/* job_map_dynamic in one process: every second item, four threads, a window of 5: the
 * sink sees them in todo order, and the root never holds more than the window. */
static void dynamic_order(check_tally *t) {
    int argc = 1;
    char *args[] = {"unit_run", NULL}, **argv = args;
    avps_job *job = job_start(&argc, &argv);
    size_t todo[200];
    for (size_t k = 0; k < 200; k++)
        todo[k] = 2 * k;
    sink_check c = {0, 0};
    job_dynamic plan = {.chunk = 1, .threads = 4, .window = 5, .fn = slow_item, .sink = check_sink, .sink_ctx = &c};
    job_map_dynamic(job, 400, todo, 200, &plan);
    CHECK(t, c.next == 200 && c.n_bad == 0);
    CHECK(t, plan.buffered_max >= 1 && plan.buffered_max <= 5);
    job_finish(job, 0);
}

int main(void) {
    check_tally t = {0, 0};
    gpu_pick(&t);
    fnv(&t);
    progress_modes(&t);
    records(&t);
    reorder(&t);
    dynamic_order(&t);
    return check_report(&t);
}
