/* job_reorder.c: the root's reorder buffer for job_map_dynamic. Results arrive in any
 * order, but reductions want them in the order the items were handed out; a ring of
 * `window` slots keyed by hand-out position holds those that came early, so the root
 * keeps at most `window` results however many items the job has. */
#include "job.h"

#include <stdlib.h>
#include <string.h>

int job_reorder_init(job_reorder *r, size_t window) {
    memset(r, 0, sizeof *r);
    r->window = window ? window : 1;
    r->slots = calloc(r->window, sizeof *r->slots);
    r->full = calloc(r->window, 1);
    if (!r->slots || !r->full) {
        job_reorder_release(r);
        return -1;
    }
    return 0;
}

void job_reorder_release(job_reorder *r) {
    for (size_t k = 0; r->slots && k < r->window; k++)
        free(r->slots[k].data);
    free(r->slots);
    free(r->full);
    memset(r, 0, sizeof *r);
}

int job_reorder_put(job_reorder *r, size_t pos, job_blob *blob) {
    if (pos < r->base || pos - r->base >= r->window || r->full[pos % r->window])
        return -1;
    r->slots[pos % r->window] = *blob;
    r->full[pos % r->window] = 1;
    *blob = (job_blob){0};
    if (++r->count > r->max_count)
        r->max_count = r->count;
    return 0;
}

int job_reorder_pop(job_reorder *r, job_blob *out) {
    size_t k = r->base % r->window;
    if (!r->full[k])
        return 0;
    *out = r->slots[k];
    r->slots[k] = (job_blob){0};
    r->full[k] = 0;
    r->base++;
    r->count--;
    return 1;
}
