/* rle_polygon.c: COCO's polygon rasteriser (frPoly) and boxes as polygons (frBbox).
 * Ground truth polygons must become exactly the masks pycocotools makes of them, or the
 * IoUs, and so the AP, drift; so this follows its steps and integer types one for one:
 * vertices scaled by 5 and rounded, every edge sampled densely, the samples where x
 * changes brought back to pixel columns, and those column boundaries turned into runs. */
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

/* Samples of one edge: one per step along its longer axis, both ends included. */
static size_t edge_samples(int xs, int ys, int xe, int ye) {
    int dx = iabs(xe - xs), dy = iabs(ye - ys);
    return (size_t)(dx > dy ? dx : dy) + 1;
}

/* Walks an edge, always from the lower end of its longer axis (flipping it if needed)
 * but storing the samples in the edge's own direction; returns how many it wrote. */
static size_t walk_edge(int xs, int ys, int xe, int ye, int *u, int *v) {
    int dx = iabs(xe - xs), dy = iabs(ys - ye);
    int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
        int t = xs;
        xs = xe, xe = t;
        t = ys;
        ys = ye, ye = t;
    }
    if (dx == 0 && dy == 0) {
        /* COCO divides 0 by 0 here and rounds the NaN: x86 gives INT_MIN. */
        u[0] = xs;
        v[0] = INT_MIN;
        return 1;
    }
    if (dx >= dy) {
        double s = (double)(ye - ys) / dx;
        for (int d = 0; d <= dx; d++) {
            int t = flip ? dx - d : d;
            u[d] = t + xs;
            v[d] = to_int(ys + s * t + .5);
        }
        return (size_t)dx + 1;
    }
    double s = (double)(xe - xs) / dy;
    for (int d = 0; d <= dy; d++) {
        int t = flip ? dy - d : d;
        v[d] = t + ys;
        u[d] = to_int(xs + s * t + .5);
    }
    return (size_t)dy + 1;
}

/* Where consecutive samples change column: the pixel column left of the boundary and the
 * first row below it, as the pixel index x*h + y where the column's run of 1s starts or
 * ends. Boundaries off the pixel grid or outside the image are dropped. */
static size_t boundary_starts(const int *u, const int *v, size_t n, uint32_t h, uint32_t w, uint32_t *a) {
    double xmax = (double)(w - 1); /* w > 0 here */
    size_t m = 0;
    for (size_t j = 1; j < n; j++) {
        if (u[j] == u[j - 1])
            continue;
        double xd = (double)(u[j] < u[j - 1] ? u[j] : u[j] - 1);
        xd = (xd + .5) / SCALE - .5;
        if (floor(xd) != xd || xd < 0 || xd > xmax)
            continue;
        double yd = (double)(v[j] < v[j - 1] ? v[j] : v[j - 1]);
        yd = (yd + .5) / SCALE - .5;
        if (yd < 0)
            yd = 0;
        else if (yd > h)
            yd = h;
        yd = ceil(yd);
        a[m++] = (uint32_t)xd * h + (uint32_t)yd; /* < h*w + 1: no wrap, as in COCO's int */
    }
    return m;
}

static int cmp_u32(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

/* Sorted boundary positions (ending with h*w) to runs: the gaps between them, where an
 * empty gap joins the run after it to the one before it, so the 0/1 alternation holds. */
static int runs_from_starts(uint32_t *a, size_t k, uint32_t h, uint32_t w, rle_mask *out) {
    qsort(a, k, sizeof *a, cmp_u32);
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

/* Samples every edge of the closed ring x, y (k edges) into u, v; returns the count. */
static size_t sample_ring(const int *x, const int *y, size_t k, int *u, int *v) {
    size_t n = 0;
    for (size_t j = 0; j < k; j++)
        n += walk_edge(x[j], y[j], x[j + 1], y[j + 1], u + n, v + n);
    return n;
}

/* The boundary positions of the polygon plus the final h*w; *na gets their count. */
static uint32_t *polygon_starts(const int *x, const int *y, size_t k, uint32_t h, uint32_t w, size_t *na) {
    size_t n = 0;
    for (size_t j = 0; j < k; j++)
        n += edge_samples(x[j], y[j], x[j + 1], y[j + 1]);
    int *u = malloc((n ? n : 1) * sizeof *u), *v = malloc((n ? n : 1) * sizeof *v);
    uint32_t *a = malloc((n + 1) * sizeof *a); /* at most one boundary a sample */
    if (!u || !v || !a) {
        free(u), free(v), free(a);
        return NULL;
    }
    n = sample_ring(x, y, k, u, v);
    size_t m = boundary_starts(u, v, n, h, w, a);
    a[m++] = h * w;
    free(u), free(v);
    *na = m;
    return a;
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
    int *x = malloc((k + 1) * sizeof *x), *y = malloc((k + 1) * sizeof *y);
    if (!x || !y || (k && scale_vertices(xy, k, x, y) != 0)) {
        free(x), free(y);
        return -1;
    }
    size_t na = 0;
    uint32_t *a = polygon_starts(x, y, k, h, w, &na);
    free(x), free(y);
    if (!a)
        return -1;
    int rc = runs_from_starts(a, na, h, w, out);
    free(a);
    return rc;
}

int rle_from_bbox(const double bbox[4], uint32_t h, uint32_t w, rle_mask *out) {
    double xs = bbox[0], xe = xs + bbox[2], ys = bbox[1], ye = ys + bbox[3];
    const double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
    return rle_from_polygon(xy, 4, h, w, out);
}
