/* bench_decode: the floor for `avps eval pq` in scripts/bench-pq. It only decodes PNGs,
 * row by row with the project's own png_reader as PQ reads them (a kept pixel buffer per
 * thread, rows in place), over N threads that take files one at a
 * time as avps's workers take images, and prints the wall time in seconds on stdout.
 * Evaluating PQ has to decode every PNG at least once, so no evaluation can beat this.
 *
 *   build/bench_decode [--threads N] FILE.png...
 */
#include "../data/data.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char **paths;
    size_t n_paths;
    atomic_size_t next;   /* the next file to decode */
    atomic_int failed;
    pthread_mutex_t lock; /* for the first error message */
    avps_error first_error;
} decode_state;

/* As PQ reads a PNG: into the thread's kept buffer, rows handed back in place. */
static int decode_one(const char *path, png_buffer *pixels, uint8_t **row, size_t *row_cap, avps_error *err) {
    png_reader *r = png_reader_open_buffered(path, 0, 0, pixels, err);
    if (!r)
        return -1;
    size_t need = (size_t)png_reader_width(r) * 3 + 1;
    if (need > *row_cap) {
        uint8_t *grown = realloc(*row, need);
        if (!grown) {
            png_reader_free(r);
            return avps_fail(err, "%s: out of memory", path);
        }
        *row = grown;
        *row_cap = need;
    }
    int rc = 0;
    for (uint32_t y = 0, h = png_reader_height(r); y < h && rc == 0; y++)
        rc = png_reader_next_row(r, *row, err) ? 0 : -1;
    png_reader_free(r);
    return rc;
}

static void *worker(void *arg) {
    decode_state *st = arg;
    uint8_t *row = NULL;
    size_t row_cap = 0;
    png_buffer pixels = {0};
    avps_error err;
    for (;;) {
        size_t i = atomic_fetch_add(&st->next, 1);
        if (i >= st->n_paths || atomic_load(&st->failed))
            break;
        if (decode_one(st->paths[i], &pixels, &row, &row_cap, &err) != 0) {
            pthread_mutex_lock(&st->lock);
            if (!atomic_exchange(&st->failed, 1))
                st->first_error = err;
            pthread_mutex_unlock(&st->lock);
            break;
        }
    }
    png_buffer_release(&pixels);
    free(row);
    return NULL;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long threads = 1;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--threads") == 0) {
        char *end;
        threads = strtol(argv[2], &end, 10);
        if (*end || threads < 1 || threads > 1024) {
            fprintf(stderr, "bench_decode: --threads wants 1..1024, not '%s'\n", argv[2]);
            return 2;
        }
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: bench_decode [--threads N] FILE.png...\n");
        return 2;
    }

    decode_state st = {.paths = argv + first, .n_paths = (size_t)(argc - first)};
    atomic_init(&st.next, 0);
    atomic_init(&st.failed, 0);
    pthread_mutex_init(&st.lock, NULL);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!tids) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }

    double start = now_seconds();
    long started = 0;
    while (started < threads && pthread_create(&tids[started], NULL, worker, &st) == 0)
        started++;
    if (started == 0)
        worker(&st); /* no thread could start: decode on this one */
    for (long t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    double elapsed = now_seconds() - start;

    free(tids);
    pthread_mutex_destroy(&st.lock);
    if (atomic_load(&st.failed)) {
        fprintf(stderr, "bench_decode: %s\n", st.first_error.msg);
        return 1;
    }
    printf("%.6f\n", elapsed);
    return 0;
}
