/* chunks_run.c: the one way work is split over threads below mpi: independent chunks,
 * one thread each, the caller's thread taking the first (see data.h). */
#include "data.h"

#include <pthread.h>
#include <stdlib.h>

void chunks_run(void *chunks, size_t size, size_t n, void *(*fn)(void *)) {
    char *base = chunks;
    pthread_t *tids = n > 1 ? calloc(n, sizeof *tids) : NULL;
    int *started = n > 1 ? calloc(n, sizeof *started) : NULL;
    for (size_t t = 1; tids && started && t < n; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, base + t * size) == 0;
    if (n > 0)
        fn(base);
    for (size_t t = 1; t < n; t++) {
        if (started && started[t])
            pthread_join(tids[t], NULL);
        else
            fn(base + t * size);
    }
    free(tids), free(started);
}
