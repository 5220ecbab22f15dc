/* rle_polygon.c: COCO's polygon rasteriser (frPoly) and boxes as polygons (frBbox).
 * Ground truth polygons must become exactly the masks pycocotools makes of them, or the
 * IoUs, and so the AP, drift; so this gives its answers to the bit: vertices scaled by 5
 * and rounded, every edge sampled densely, the samples where x changes brought back to
 * pixel columns, and those column boundaries turned into runs. Only the sample pairs
 * that can land on a pixel column are computed (one or two per column an edge spans
 * inside the image), with COCO's own double expressions for the samples and integer
 * tests shown equal to its double ones; tests/poly_oracle.h keeps the sample-by-sample
 * walk this replaced, as the oracle of tests/unit_polygon_diff.c. */
#include "data.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* COCO's upsampling factor. */
static const double SCALE = 5;
/* Scaled vertices beyond this are refused: edge lengths must fit an int, and the
 * sampling would need gigabytes anyway. */
static const double MAX_SCALED = 536870912.0; /* 2^29 */

/* C leaves (int) of NaN or of an out-of-range double undefined; x86, where COCO runs,
 * gives INT_MIN ("integer indefinite"), so that is what is reproduced. */
static int to_int(double d) {
    if (!(d > (double)INT_MIN - 1 && d < (double)INT_MAX + 1))
        return INT_MIN;
    return (int)d;
}

/* Scales and rounds the k vertices, closing the ring with x[k] = x[0]. */
static int scale_vertices(const double *xy, size_t k, int *x, int *y) {
    for (size_t j = 0; j < 2 * k; j++) {
        double d = SCALE * xy[j] + .5;
        if (!(fabs(d) < MAX_SCALED))
            return -1; /* also NaN */
    }
    for (size_t j = 0; j < k; j++) {
        x[j] = (int)(SCALE * xy[2 * j] + .5);
        y[j] = (int)(SCALE * xy[2 * j + 1] + .5);
    }
    x[k] = x[0];
    y[k] = y[0];
    return 0;
}

static int iabs(int a) {
    return a < 0 ? -a : a;
}

/* One edge as COCO walks it: from the lower end of its longer axis (flipped if needed),
 * sample t at t steps along that axis from there, t in [0, tn]. The walk visits the
 * samples in the edge's own direction (t = tn first when flipped). Samples are computed
 * one at a time, never stored: a polygon far outside the image has billions of them, of
 * which only those near the image can make a boundary. */
typedef struct {
    int xs, ys, dx, dy, flip, xmajor;
    int tn; /* the last sample's t: dx or dy (0 for a point) */
    double s;
} poly_edge;

static poly_edge edge_make(int xs, int ys, int xe, int ye) {
    int dx = iabs(xe - xs), dy = iabs(ys - ye);
    int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
        int t = xs;
        xs = xe, xe = t;
        t = ys;
        ys = ye, ye = t;
    }
    poly_edge e = {.xs = xs, .ys = ys, .dx = dx, .dy = dy, .flip = flip, .xmajor = dx >= dy};
    if (dx == 0 && dy == 0)
        e.tn = 0;
    else if (dx >= dy)
        e.s = (double)(ye - ys) / dx, e.tn = dx;
    else
        e.s = (double)(xe - xs) / dy, e.tn = dy;
    return e;
}

/* The rounded coordinate along the shorter axis at sample t, COCO's expression to the
 * operation. Scaled vertices are below 2^29 and |s * t| at most the edge's extent, below
 * 2^30, so the value stays inside an int: to_int never gives INT_MIN here, and as every
 * step (product, sums, truncation) is monotone, so is the result in t. */
static int edge_v_xmajor(const poly_edge *e, int t) {
    return to_int(e->ys + e->s * t + .5);
}

static int edge_u_ymajor(const poly_edge *e, int t) {
    return to_int(e->xs + e->s * t + .5);
}

static void edge_at(const poly_edge *e, int t, int *u, int *v) {
    if (e->dx == 0 && e->dy == 0) {
        /* COCO divides 0 by 0 here and rounds the NaN: x86 gives INT_MIN. */
        *u = e->xs, *v = INT_MIN;
    } else if (e->xmajor) {
        *u = t + e->xs, *v = edge_v_xmajor(e, t);
    } else {
        *v = t + e->ys, *u = edge_u_ymajor(e, t);
    }
}

/* Boundaries found so far, each as column << 32 | row (sorted, that is the order of
 * their pixel indices column * h + row), the range of their columns, and the last
 * sample seen (the ring is one walk). */
typedef struct {
    uint32_t h, w;
    uint64_t *key;
    size_t m, cap;
    uint32_t c_min, c_max;
    int have_prev, pu, pv;
} poly_walk;

static int walk_reserve(poly_walk *pw, size_t more) {
    if (pw->cap - pw->m >= more)
        return 0;
    size_t cap = pw->cap ? 2 * pw->cap : 64;
    while (cap - pw->m < more)
        cap *= 2;
    uint64_t *key = realloc(pw->key, cap * sizeof *key);
    if (!key)
        return -1;
    pw->key = key, pw->cap = cap;
    return 0;
}

/* COCO's row for a boundary whose samples' smaller v is vmin: ceil((vmin + .5) / 5 - .5)
 * clamped to [0, h] before the ceil. In exact arithmetic that is ceil((vmin - 2) / 5),
 * and the doubles give the same: vmin + .5 is exact (|vmin| <= 2^31); when vmin = 2 mod 5
 * the quotient is c + .5 and minus .5 is c, both exact; otherwise the exact value is at
 * least 0.2 from any integer and the two roundings move it by less than 2^-20, so the
 * ceiling and the comparisons with 0 and h come out as in integers. */
static uint32_t boundary_row(const poly_walk *pw, long long vmin) {
    if (vmin <= 2)
        return 0;
    long long y = (vmin + 2) / 5; /* ceil((vmin - 2) / 5) for vmin >= 2 */
    return y > pw->h ? pw->h : (uint32_t)y;
}

/* Adds the boundary at pixel column c (< w) with the samples' smaller v vmin; room for
 * it must have been reserved. */
static void walk_push(poly_walk *pw, uint32_t c, long long vmin) {
    pw->key[pw->m++] = (uint64_t)c << 32 | boundary_row(pw, vmin);
    if (c < pw->c_min)
        pw->c_min = c;
    if (c > pw->c_max)
        pw->c_max = c;
}

/* COCO's test of consecutive samples (pu, pv) then (u, v): where u changes, the column
 * xd = u < pu ? u : u - 1, brought back as (xd + .5) / 5 - .5, must be a whole pixel
 * column inside the image. That quotient is exactly (xd - 2) / 5 when xd = 2 mod 5 (as in
 * boundary_row) and otherwise at least 0.2 from an integer, so the test is xd = 5c + 2
 * with 0 <= c < w, in integers. */
static int walk_pair(poly_walk *pw, int pu, int pv, int u, int v) {
    if (u == pu)
        return 0;
    long long xd = u < pu ? u : (long long)u - 1;
    if (xd < 2 || (xd - 2) % 5 != 0 || (xd - 2) / 5 >= pw->w)
        return 0;
    if (walk_reserve(pw, 1) != 0)
        return -1;
    walk_push(pw, (uint32_t)((xd - 2) / 5), v < pv ? v : pv);
    return 0;
}

static long long floor_div5(long long a) {
    return a >= 0 ? a / 5 : -((-a + 4) / 5);
}

/* The pixel columns c with a scaled column 5c + 2 in [lo, hi], clipped to the image; an
 * empty range when *c_lo > *c_hi. */
static void column_range(const poly_walk *pw, long long lo, long long hi, long long *c_lo, long long *c_hi) {
    *c_lo = floor_div5(lo - 2 + 4); /* ceil((lo - 2) / 5) */
    *c_hi = floor_div5(hi - 2);
    if (*c_lo < 0)
        *c_lo = 0;
    if (*c_hi > (long long)pw->w - 1)
        *c_hi = (long long)pw->w - 1;
}

/* The pairs inside an x-major edge: u = xs + t steps by exactly 1, so the pair (t, t + 1)
 * has xd = xs + t whichever way it is walked, and only t = 5c + 2 - xs can make a
 * boundary: one sample pair per pixel column instead of every sample. v is monotone in t
 * (edge_v_xmajor), so the smaller v of the pair is at t when s >= 0, else at t + 1. */
static int walk_xmajor(poly_walk *pw, const poly_edge *e) {
    long long c_lo, c_hi;
    column_range(pw, e->xs, (long long)e->xs + e->dx - 1, &c_lo, &c_hi);
    if (c_lo > c_hi)
        return 0;
    if (walk_reserve(pw, (size_t)(c_hi - c_lo + 1)) != 0)
        return -1;
    int lower = e->s >= 0 ? 0 : 1;
    for (long long c = c_lo; c <= c_hi; c++) {
        int t = (int)(5 * c + 2 - e->xs);
        walk_push(pw, (uint32_t)c, edge_v_xmajor(e, t + lower));
    }
    return 0;
}

/* Whether sample t of a y-major edge is past the crossing of scaled column x | x + 1:
 * u > x where u grows along t, u <= x where it shrinks. */
static int past_crossing(const poly_edge *e, int grows, long long x, int t) {
    long long u = edge_u_ymajor(e, t);
    return grows ? u > x : u <= x;
}

/* The first t in (lo, hi] past the crossing of x (not past at lo, past at hi), searched
 * from the guess g outward: steps of 1, 2, 4, ... then bisection, so a good guess costs
 * two looks. */
static int find_crossing(const poly_edge *e, int grows, long long x, int lo, int hi, double g) {
    int t = g <= lo + 1 ? lo + 1 : g >= hi ? hi : (int)g;
    int step = 1;
    if (past_crossing(e, grows, x, t)) {
        hi = t;
        while (hi - lo > step) {
            if (!past_crossing(e, grows, x, hi - step)) {
                lo = hi - step;
                break;
            }
            hi -= step, step *= 2;
        }
    } else {
        lo = t;
        while (hi - lo > step) {
            if (past_crossing(e, grows, x, lo + step)) {
                hi = lo + step;
                break;
            }
            lo += step, step *= 2;
        }
    }
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (past_crossing(e, grows, x, mid))
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* The pairs inside a y-major edge: v = ys + t, u monotone in t (edge_u_ymajor). A pair
 * makes a boundary only where u changes with xd = 5c + 2. COCO's xd is min(u) for a step
 * of 1 either way, but (u - 1) walking up and u walking down when rounding at huge
 * coordinates makes u step by 2 (|s| < 1, so never more); so for each column the one pair
 * that crosses 5c + 2 | 5c + 3 is found and given COCO's test as it is walked. The
 * crossing's t is nearly (5c + 2.5 - xs) / s: positive columns have u = floor, and
 * u > x  <=>  xs + s t + .5 >= x + 1 there; the search then settles it exactly. */
static int walk_ymajor(poly_walk *pw, const poly_edge *e) {
    int u0 = edge_u_ymajor(e, 0), un = edge_u_ymajor(e, e->tn);
    if (u0 == un)
        return 0;
    int grows = un > u0;
    long long c_lo, c_hi;
    column_range(pw, grows ? u0 : un, (long long)(grows ? un : u0) - 1, &c_lo, &c_hi);
    if (c_lo > c_hi)
        return 0;
    if (walk_reserve(pw, (size_t)(c_hi - c_lo + 1)) != 0)
        return -1;
    int lo = 0; /* not past the next column's crossing, in t order */
    for (long long i = 0; i <= c_hi - c_lo; i++) {
        long long c = grows ? c_lo + i : c_hi - i, x = 5 * c + 2;
        int t = find_crossing(e, grows, x, lo, e->tn, ceil(((double)x + .5 - e->xs) / e->s));
        int pu = edge_u_ymajor(e, t - 1), u = edge_u_ymajor(e, t), pv = e->ys + t - 1, v = e->ys + t;
        if (e->flip ? walk_pair(pw, u, v, pu, pv) != 0 : walk_pair(pw, pu, pv, u, v) != 0)
            return -1;
        lo = t - 1; /* u there is on x's near side, so short of the next column's x too */
    }
    return 0;
}

/* One edge of the walk: the pair its first sample makes with the sample before it (the
 * previous edge's last, which repeats the vertex or, rounded, nearly does), then the
 * pairs inside it; its last sample is the next edge's previous one. */
static int walk_edge(poly_walk *pw, int xs, int ys, int xe, int ye) {
    poly_edge e = edge_make(xs, ys, xe, ye);
    int u, v;
    edge_at(&e, e.flip ? e.tn : 0, &u, &v);
    if (pw->have_prev && walk_pair(pw, pw->pu, pw->pv, u, v) != 0)
        return -1;
    if (e.tn > 0 && (e.xmajor ? walk_xmajor(pw, &e) : walk_ymajor(pw, &e)) != 0)
        return -1;
    edge_at(&e, e.flip ? 0 : e.tn, &pw->pu, &pw->pv);
    pw->have_prev = 1;
    return 0;
}

static int cmp_u64(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

static void insertion_sort(uint64_t *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint64_t x = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > x; j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

/* Sorts the walk's boundaries. A ring crosses each column a few times, so they are
 * bucketed by column (a counting sort over the columns they span) and each bucket,
 * usually 2 long, sorted by row; a sparse spread of columns falls back to qsort. */
static int keys_sort(poly_walk *pw) {
    size_t n = pw->m;
    if (n <= 16) {
        insertion_sort(pw->key, n);
        return 0;
    }
    size_t span = (size_t)(pw->c_max - pw->c_min) + 1;
    if (span > 4 * n) {
        qsort(pw->key, n, sizeof *pw->key, cmp_u64);
        return 0;
    }
    uint64_t *sorted = malloc(n * sizeof *sorted);
    size_t *start = calloc(span + 1, sizeof *start);
    if (!sorted || !start) {
        free(sorted), free(start);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        start[(pw->key[i] >> 32) - pw->c_min + 1]++;
    for (size_t b = 0; b < span; b++)
        start[b + 1] += start[b];
    for (size_t i = 0; i < n; i++)
        sorted[start[(pw->key[i] >> 32) - pw->c_min]++] = pw->key[i];
    /* start[b] is now bucket b's end, bucket b + 1's start */
    for (size_t b = 0, from = 0; b < span; from = start[b++]) {
        size_t len = start[b] - from;
        if (len > 32)
            qsort(sorted + from, len, sizeof *sorted, cmp_u64);
        else
            insertion_sort(sorted + from, len);
    }
    free(start);
    free(pw->key);
    pw->key = sorted;
    return 0;
}

/* Sorted boundaries, and the final h*w, to runs: the gaps between their pixel indices,
 * where an empty gap joins the run after it to the one before it, so the 0/1 alternation
 * holds. */
static int runs_from_walk(const poly_walk *pw, rle_mask *out) {
    size_t k = pw->m + 1;
    uint32_t *a = malloc(k * sizeof *a);
    if (!a)
        return -1;
    uint32_t prev = 0;
    for (size_t j = 0; j < k; j++) {
        uint32_t t = j < pw->m ? (uint32_t)(pw->key[j] >> 32) * pw->h + (uint32_t)pw->key[j] : pw->h * pw->w;
        a[j] = t - prev; /* index <= h*w: no wrap */
        prev = t;
    }
    /* in place: the run being written never passes the gap being read */
    size_t j = 0, m = 0;
    a[m++] = a[j++];
    while (j < k) {
        if (a[j] > 0) {
            a[m++] = a[j++];
        } else {
            j++;
            if (j < k)
                a[m - 1] += a[j++];
        }
    }
    *out = (rle_mask){.h = pw->h, .w = pw->w, .m = m, .cnts = a};
    return 0;
}

/* The runs of the closed ring x, y (k edges). */
static int polygon_runs(const int *x, const int *y, size_t k, uint32_t h, uint32_t w, rle_mask *out) {
    poly_walk pw = {.h = h, .w = w, .c_min = UINT32_MAX, .c_max = 0};
    int rc = 0;
    for (size_t j = 0; j < k && rc == 0; j++)
        rc = walk_edge(&pw, x[j], y[j], x[j + 1], y[j + 1]);
    if (rc == 0)
        rc = keys_sort(&pw);
    if (rc == 0)
        rc = runs_from_walk(&pw, out);
    free(pw.key);
    return rc;
}

int rle_from_polygon(const double *xy, size_t k, uint32_t h, uint32_t w, rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    if ((uint64_t)h * w > UINT32_MAX)
        return -1;
    if ((uint64_t)h * w == 0) {
        /* No pixels: the single empty run, as rle_encode gives (COCO's own answer for
         * w == 0 has runs that do not add up to 0). */
        static const uint32_t none = 0;
        return rle_from_counts(&none, 1, h, w, out);
    }
    int *x = malloc(2 * (k + 1) * sizeof *x), *y = x ? x + k + 1 : NULL;
    if (!x)
        return -1;
    if (k && scale_vertices(xy, k, x, y) != 0) {
        free(x);
        return -2;
    }
    int rc = polygon_runs(x, y, k, h, w, out);
    free(x);
    if (rc != 0)
        *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    return rc;
}

int rle_from_bbox(const double bbox[4], uint32_t h, uint32_t w, rle_mask *out) {
    double xs = bbox[0], xe = xs + bbox[2], ys = bbox[1], ye = ys + bbox[3];
    const double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
    return rle_from_polygon(xy, 4, h, w, out);
}
