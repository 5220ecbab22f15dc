/* mask_ops.c: exact set operations on full-image RLE masks for the combiners. Unlike
 * rle_merge, which follows the COCO API's walk (and its quirks on empty runs), these
 * step over empty runs and give canonical runs, so that they agree with the pixels. */
#include "fusion.h"

#include <stdlib.h>
#include <string.h>

int mask_check(const rle_mask *m, uint32_t h, uint32_t w) {
    if (m->h != h || m->w != w || (m->m > 0 && !m->cnts))
        return -1;
    uint64_t sum = 0;
    for (size_t j = 0; j < m->m; j++)
        sum += m->cnts[j];
    return sum == (uint64_t)h * w ? 0 : -1;
}

int mask_none(uint32_t h, uint32_t w, rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    if ((uint64_t)h * w > UINT32_MAX || !(out->cnts = malloc(sizeof *out->cnts)))
        return -1;
    out->cnts[0] = h * w;
    out->m = 1;
    return 0;
}

/* A cursor over runs that never rests on an empty one: left pixels remain of a run of
 * value on. Starts as if before a run of 1s, so that the first run read is of 0s. */
typedef struct {
    const uint32_t *cnts;
    size_t m, next;
    uint32_t left;
    int on;
} run_walk;

static void walk_settle(run_walk *k) {
    while (k->left == 0 && k->next < k->m) {
        k->left = k->cnts[k->next++];
        k->on = !k->on;
    }
}

static run_walk walk_start(const rle_mask *r) {
    run_walk k = {r->cnts, r->m, 0, 0, 1};
    walk_settle(&k);
    return k;
}

typedef enum { OP_MINUS, OP_UNION } mask_op;

static int op_value(mask_op op, int a, int b) { return op == OP_MINUS ? a && !b : a || b; }

/* Both masks are checked to be h x w with full runs, so neither cursor runs dry before
 * the last pixel; at most a.m + b.m runs come out (each step ends a run of a or b). */
static int mask_combine(const rle_mask *a, const rle_mask *b, mask_op op, rle_mask *out) {
    uint64_t total = (uint64_t)a->h * a->w, pos = 0;
    *out = (rle_mask){.h = a->h, .w = a->w, .m = 0, .cnts = malloc((a->m + b->m + 1) * sizeof *out->cnts)};
    if (!out->cnts)
        return -1;
    run_walk ka = walk_start(a), kb = walk_start(b);
    uint32_t run = 0;
    int value = 0;
    while (pos < total && ka.left > 0 && kb.left > 0) {
        uint32_t c = ka.left < kb.left ? ka.left : kb.left;
        int v = op_value(op, ka.on, kb.on);
        if (v != value) {
            out->cnts[out->m++] = run;
            run = 0;
            value = v;
        }
        run += c;
        pos += c;
        ka.left -= c;
        kb.left -= c;
        walk_settle(&ka);
        walk_settle(&kb);
    }
    out->cnts[out->m++] = run;
    return 0;
}

int mask_minus(const rle_mask *a, const rle_mask *b, rle_mask *out) { return mask_combine(a, b, OP_MINUS, out); }

int mask_union(const rle_mask *a, const rle_mask *b, rle_mask *out) { return mask_combine(a, b, OP_UNION, out); }

void mask_paint(const rle_mask *m, uint32_t id, uint32_t *ids) {
    uint64_t start = 0;
    for (size_t j = 0; j < m->m; start += m->cnts[j], j++) {
        if (j % 2 == 0)
            continue;
        /* Runs go down the columns: x = p / h, y = p % h. */
        uint64_t x = start / m->h, y = start % m->h;
        for (uint32_t k = 0; k < m->cnts[j]; k++) {
            ids[y * m->w + x] = id;
            if (++y == m->h) {
                y = 0;
                x++;
            }
        }
    }
}
