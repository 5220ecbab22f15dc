/* poly_oracle.h: the polygon rasteriser as it was before its column walk (data/rle_polygon.c
 * at commit 3e49143: the samples of an edge fed one by one through doubles, galloping over
 * those that cannot matter, the boundaries sorted with qsort), kept here only as the
 * oracle the faster one is compared with, bit for bit, in tests/unit_polygon_diff.c and
 * tests/fuzz/fuzz_polygon.c. Not part of the product.
 * oracle_rle_from_polygon has rle_from_polygon's contract (data/data.h), and can also walk
 * every sample as COCO's loop does. */
#ifndef AVPS_TESTS_POLY_ORACLE_H
#define AVPS_TESTS_POLY_ORACLE_H

#include "../data/data.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
static const double oracle_SCALE = 5;
/* Scaled vertices beyond this are refused: edge lengths must fit an int, and the
 * sampling would need gigabytes anyway. */
static const double oracle_MAX_SCALED = 536870912.0; /* 2^29 */

/* C leaves (int) of NaN or of an out-of-range double undefined; x86, where COCO runs,
 * gives INT_MIN ("integer indefinite"), so that is what is reproduced. */
static int oracle_to_int(double d) {
    if (!(d > (double)INT_MIN - 1 && d < (double)INT_MAX + 1))
        return INT_MIN;
    return (int)d;
}

/* Scales and rounds the k vertices, closing the ring with x[k] = x[0]. */
static int oracle_scale_vertices(const double *xy, size_t k, int *x, int *y) {
    for (size_t j = 0; j < 2 * k; j++) {
        double d = oracle_SCALE * xy[j] + .5;
        if (!(fabs(d) < oracle_MAX_SCALED))
            return -1; /* also NaN */
    }
    for (size_t j = 0; j < k; j++) {
        x[j] = (int)(oracle_SCALE * xy[2 * j] + .5);
        y[j] = (int)(oracle_SCALE * xy[2 * j + 1] + .5);
    }
    x[k] = x[0];
    y[k] = y[0];
    return 0;
}

static int oracle_iabs(int a) {
    return a < 0 ? -a : a;
}

/* One edge as COCO walks it: from the lower end of its longer axis (flipped if needed),
 * with the samples indexed in the edge's own direction. Samples are computed one at a
 * time, never stored: a polygon far outside the image has billions of them, of which
 * only those near the image can make a boundary. */
typedef struct {
    int xs, ys, dx, dy, flip, xmajor;
    double s;
    size_t n; /* samples, both ends included */
} oracle_poly_edge;

static oracle_poly_edge oracle_edge_make(int xs, int ys, int xe, int ye) {
    int dx = oracle_iabs(xe - xs), dy = oracle_iabs(ys - ye);
    int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
        int t = xs;
        xs = xe, xe = t;
        t = ys;
        ys = ye, ye = t;
    }
    oracle_poly_edge e = {.xs = xs, .ys = ys, .dx = dx, .dy = dy, .flip = flip, .xmajor = dx >= dy};
    if (dx == 0 && dy == 0)
        e.n = 1;
    else if (dx >= dy)
        e.s = (double)(ye - ys) / dx, e.n = (size_t)dx + 1;
    else
        e.s = (double)(xe - xs) / dy, e.n = (size_t)dy + 1;
    return e;
}

/* Sample d of the edge, as COCO's loop computes it. */
static void oracle_edge_at(const oracle_poly_edge *e, size_t d, int *u, int *v) {
    if (e->dx == 0 && e->dy == 0) {
        /* COCO divides 0 by 0 here and rounds the NaN: x86 gives INT_MIN. */
        *u = e->xs, *v = INT_MIN;
        return;
    }
    int t = (int)(e->flip ? e->n - 1 - d : d);
    if (e->xmajor) {
        *u = t + e->xs;
        *v = oracle_to_int(e->ys + e->s * t + .5);
    } else {
        *v = t + e->ys;
        *u = oracle_to_int(e->xs + e->s * t + .5);
    }
}

static int oracle_edge_u(const oracle_poly_edge *e, size_t d) {
    int u, v;
    oracle_edge_at(e, d, &u, &v);
    return u;
}

/* Boundary positions found so far, and the last sample seen (the ring is one walk). */
typedef struct {
    uint32_t h, w;
    uint32_t *a;
    size_t m, cap;
    int have_prev, pu, pv;
} oracle_poly_walk;

/* Where a sample changes column from the one before it: the pixel column left of the
 * boundary and the first row below it, as the pixel index x*h + y where the column's run
 * of 1s starts or ends. Boundaries off the pixel grid or outside the image are dropped. */
static int oracle_walk_feed(oracle_poly_walk *pw, int u, int v) {
    int pu = pw->pu, pv = pw->pv, had = pw->have_prev;
    pw->have_prev = 1, pw->pu = u, pw->pv = v;
    if (!had || u == pu)
        return 0;
    double xd = (double)(u < pu ? u : u - 1);
    xd = (xd + .5) / oracle_SCALE - .5;
    if (floor(xd) != xd || xd < 0 || xd > (double)(pw->w - 1))
        return 0;
    double yd = (double)(v < pv ? v : pv);
    yd = (yd + .5) / oracle_SCALE - .5;
    if (yd < 0)
        yd = 0;
    else if (yd > pw->h)
        yd = pw->h;
    yd = ceil(yd);
    if (pw->m == pw->cap) {
        size_t cap = pw->cap ? 2 * pw->cap : 64;
        uint32_t *a = realloc(pw->a, cap * sizeof *a);
        if (!a)
            return -1;
        pw->a = a, pw->cap = cap;
    }
    pw->a[pw->m++] = (uint32_t)xd * pw->h + (uint32_t)yd; /* < h*w + 1: no wrap */
    return 0;
}

static int oracle_walk_feed_at(oracle_poly_walk *pw, const oracle_poly_edge *e, size_t d) {
    int u, v;
    oracle_edge_at(e, d, &u, &v);
    return oracle_walk_feed(pw, u, v);
}

/* Which samples a search looks for; u is monotone along an edge, so each is a
 * predicate false then true over the samples after the current one. */
typedef enum { oracle_FIND_CHANGE, oracle_FIND_AT_LEAST, oracle_FIND_BELOW } oracle_find_kind;

static int oracle_find_hit(const oracle_poly_edge *e, size_t d, oracle_find_kind kind, long long ref) {
    long long u = oracle_edge_u(e, d);
    return kind == oracle_FIND_CHANGE ? u != ref : kind == oracle_FIND_AT_LEAST ? u >= ref : u < ref;
}

/* The first sample after d that meets the predicate (which sample n-1 meets), by
 * galloping: steps of 1, 2, 4, ... then bisection, so dense runs cost one look each. */
static size_t oracle_edge_find(const oracle_poly_edge *e, size_t d, oracle_find_kind kind, long long ref) {
    size_t lo = d, step = 1, hi = e->n - 1; /* lo fails, hi meets */
    while (lo + step < hi) {
        if (oracle_find_hit(e, lo + step, kind, ref)) {
            hi = lo + step;
            break;
        }
        lo += step, step *= 2;
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (oracle_find_hit(e, mid, kind, ref))
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* Feeds the samples of one edge that can matter. A pair of samples makes a boundary only
 * if u changes and the column lands in the image, which needs 2 <= u < 5w on at least one
 * side; since u is monotone along an edge, runs of samples beyond that on one side are
 * skipped to their last sample, and runs of one u to the last sample before u changes.
 * So the work is bounded by the image's width per edge, not by the edge's length. */
static int oracle_walk_edge(oracle_poly_walk *pw, int xs, int ys, int xe, int ye) {
    oracle_poly_edge e = oracle_edge_make(xs, ys, xe, ye);
    const long long lo_u = 2, hi_u = (long long)oracle_SCALE * pw->w;
    size_t d = 0;
    if (oracle_walk_feed_at(pw, &e, 0) != 0)
        return -1;
    const long long ue = oracle_edge_u(&e, e.n - 1);
    while (d + 1 < e.n) {
        long long u = pw->pu; /* sample d's, just fed */
        size_t next;
        if (ue == u || (ue > u && u >= hi_u) || (ue < u && u < lo_u)) {
            next = e.n - 1; /* no boundary in the rest of the edge */
        } else if (ue > u && u < lo_u) {
            next = oracle_edge_find(&e, d, oracle_FIND_AT_LEAST, lo_u);
        } else if (ue < u && u >= hi_u) {
            next = oracle_edge_find(&e, d, oracle_FIND_BELOW, hi_u);
        } else {
            next = oracle_edge_find(&e, d, oracle_FIND_CHANGE, u);
        }
        /* Samples strictly between d and next-1 share their pairs' fate: none counts. */
        if (next - 1 > d && oracle_walk_feed_at(pw, &e, next - 1) != 0)
            return -1;
        if (oracle_walk_feed_at(pw, &e, next) != 0)
            return -1;
        d = next;
    }
    return 0;
}

/* COCO's walk itself, for the oracle of the oracle: every sample of the edge fed in turn
 * (only for polygons of a few million samples). */
static int oracle_walk_edge_every(oracle_poly_walk *pw, int xs, int ys, int xe, int ye) {
    oracle_poly_edge e = oracle_edge_make(xs, ys, xe, ye);
    for (size_t d = 0; d < e.n; d++)
        if (oracle_walk_feed_at(pw, &e, d) != 0)
            return -1;
    return 0;
}

static int oracle_cmp_u32(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

/* Sorted boundary positions (ending with h*w) to runs: the gaps between them, where an
 * empty gap joins the run after it to the one before it, so the 0/1 alternation holds. */
static int oracle_runs_from_starts(uint32_t *a, size_t k, uint32_t h, uint32_t w, rle_mask *out) {
    qsort(a, k, sizeof *a, oracle_cmp_u32);
    uint32_t prev = 0;
    for (size_t j = 0; j < k; j++) {
        uint32_t t = a[j];
        a[j] -= prev;
        prev = t;
    }
    uint32_t *b = malloc(k * sizeof *b);
    if (!b)
        return -1;
    size_t j = 0, m = 0;
    b[m++] = a[j++];
    while (j < k) {
        if (a[j] > 0) {
            b[m++] = a[j++];
        } else {
            j++;
            if (j < k)
                b[m - 1] += a[j++];
        }
    }
    *out = (rle_mask){.h = h, .w = w, .m = m, .cnts = b};
    return 0;
}

/* The boundary positions of the closed ring x, y (k edges) plus the final h*w; *na gets
 * their count. */
static uint32_t *oracle_polygon_starts(const int *x, const int *y, size_t k, uint32_t h, uint32_t w, int every,
                                       size_t *na) {
    oracle_poly_walk pw = {.h = h, .w = w};
    for (size_t j = 0; j < k; j++) {
        int rc = every ? oracle_walk_edge_every(&pw, x[j], y[j], x[j + 1], y[j + 1])
                       : oracle_walk_edge(&pw, x[j], y[j], x[j + 1], y[j + 1]);
        if (rc != 0) {
            free(pw.a);
            return NULL;
        }
    }
    uint32_t *a = realloc(pw.a, (pw.m + 1) * sizeof *a);
    if (!a) {
        free(pw.a);
        return NULL;
    }
    a[pw.m] = h * w;
    *na = pw.m + 1;
    return a;
}

/* every: walk every sample (COCO's loop) instead of skipping those that cannot matter. */
static int oracle_rle_from_polygon(const double *xy, size_t k, uint32_t h, uint32_t w, int every, rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    if ((uint64_t)h * w > UINT32_MAX)
        return -1;
    if ((uint64_t)h * w == 0) {
        /* No pixels: the single empty run, as rle_encode gives (COCO's own answer for
         * w == 0 has runs that do not add up to 0). */
        static const uint32_t none = 0;
        return rle_from_counts(&none, 1, h, w, out);
    }
    int *x = malloc((k + 1) * sizeof *x), *y = malloc((k + 1) * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return -1;
    }
    if (k && oracle_scale_vertices(xy, k, x, y) != 0) {
        free(x), free(y);
        return -2;
    }
    size_t na = 0;
    uint32_t *a = oracle_polygon_starts(x, y, k, h, w, every, &na);
    free(x), free(y);
    if (!a)
        return -1;
    int rc = oracle_runs_from_starts(a, na, h, w, out);
    free(a);
    return rc;
}

#endif
