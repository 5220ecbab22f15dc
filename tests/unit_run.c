/* unit_run.c: the pure parts of avps run: the GPU a node-local rank takes, FNV-1a 64
 * (the config hash and input digests) against its published test vectors, progress
 * modes, and a per-image record refused when it is cut short or not a record. */
#include "../mpi/run.h"
#include "check.h"

#include <string.h>

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
    /* the smallest record: one end with nothing, then the step seconds */
    uint32_t head[2] = {0x52535641u, 1};
    uint64_t counts[3] = {0, 0, 0};
    double seconds[STEP_COUNT] = {1, 2, 3, 4};
    size_t n = 0;
    memcpy(buf + n, head, sizeof head), n += sizeof head;
    memcpy(buf + n, counts, sizeof counts), n += sizeof counts;
    memcpy(buf + n, seconds, sizeof seconds), n += sizeof seconds;
    CHECK(t, run_record_parse(buf, n, &rec) == 0 && rec.n_ends == 1 && rec.n_events[0] == 0 && rec.seconds[3] == 4);
    CHECK(t, run_record_parse(buf, n - 1, &rec) != 0); /* cut short */
    CHECK(t, run_record_parse(buf, n + 8, &rec) != 0); /* trailing bytes */
    counts[0] = 1000; /* more events than bytes */
    memcpy(buf + sizeof head, counts, sizeof counts);
    CHECK(t, run_record_parse(buf, n, &rec) != 0);
}

int main(void) {
    check_tally t = {0, 0};
    gpu_pick(&t);
    fnv(&t);
    progress_modes(&t);
    records(&t);
    return check_report(&t);
}
