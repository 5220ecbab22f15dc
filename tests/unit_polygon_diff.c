/* unit_polygon_diff.c: rle_from_polygon against the rasteriser it replaced (tests/poly_oracle.h),
 * bit for bit, on many random polygons of every awkward kind: COCO-like, tiny images,
 * sub-pixel and on the 1/5-pixel grid where COCO's tests land exactly, huge coordinates up
 * to the 2^29 limit, off the image, negative, degenerate, collinear, many vertices, nearly
 * 45 degrees, non-finite values and odd image sizes. Where a polygon has few enough
 * samples the oracle's own every-sample walk (COCO's loop) is checked too. pycocotools
 * itself is checked in tests/test_polygon_parity.sh.
 *
 *   unit_polygon_diff [CASES_PER_KIND [SEED]]   (defaults 1500 and 1)
 */
#include "../data/data.h"
#include "check.h"
#include "poly_oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(rng *r, double lo, double hi) {
    return lo + (hi - lo) * ((double)(rng_next(r) >> 11) / 9007199254740992.0);
}

static int below(rng *r, int n) {
    return (int)(rng_next(r) % (uint64_t)n);
}

/* One random case: an image h x w and k points xy (room for MAX_POINTS). */
enum { MAX_POINTS = 300 };
typedef struct {
    uint32_t h, w;
    size_t k;
    double xy[2 * MAX_POINTS];
} poly_case;

typedef void (*case_maker)(rng *r, poly_case *c);

static void make_coco(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 700), c->w = 1 + (uint32_t)below(r, 700);
    c->k = 3 + (size_t)below(r, 40);
    double cx = uniform(r, 0, c->w), cy = uniform(r, 0, c->h), rad = uniform(r, 1, 0.6 * (c->w + c->h));
    for (size_t j = 0; j < c->k; j++) {
        double a = 2 * M_PI * (double)j / (double)c->k + uniform(r, 0, 0.5), d = rad * uniform(r, 0.3, 1);
        c->xy[2 * j] = round(100 * (cx + d * cos(a))) / 100; /* COCO's 2 decimals */
        c->xy[2 * j + 1] = round(100 * (cy + d * sin(a))) / 100;
    }
}

static void make_tiny(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 8), c->w = 1 + (uint32_t)below(r, 8);
    c->k = 1 + (size_t)below(r, 8);
    for (size_t j = 0; j < c->k; j++)
        c->xy[2 * j] = uniform(r, -3, c->w + 3), c->xy[2 * j + 1] = uniform(r, -3, c->h + 3);
}

/* Coordinates on the 0.1-pixel grid, nudged by an ulp now and then: the scaled values sit
 * on or next to where COCO's "is this a pixel column" and its ceil change their answers. */
static double on_grid(rng *r, double lo, double hi) {
    double x = round(uniform(r, lo, hi) * 10) / 10;
    int nudge = below(r, 8);
    return nudge == 0 ? nextafter(x, -INFINITY) : nudge == 1 ? nextafter(x, INFINITY) : x;
}

static void make_subpixel(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 12), c->w = 1 + (uint32_t)below(r, 12);
    c->k = 3 + (size_t)below(r, 6);
    double x0 = uniform(r, -1, c->w), y0 = uniform(r, -1, c->h), span = below(r, 2) ? 1.5 : 4;
    for (size_t j = 0; j < c->k; j++)
        c->xy[2 * j] = on_grid(r, x0, x0 + span), c->xy[2 * j + 1] = on_grid(r, y0, y0 + span);
}

/* Up to the limit: scaled values reach 2^29 at 107374182.3; a few go past it (refused). */
static void make_huge(rng *r, poly_case *c) {
    static const double far[] = {1e6, 1e7, 5e7, 1.07e8, 107374182.29, 107374182.4};
    c->h = 1 + (uint32_t)below(r, 60), c->w = 1 + (uint32_t)below(r, 60);
    c->k = 3 + (size_t)below(r, 5);
    for (size_t j = 0; j < 2 * c->k; j++) {
        double lim = j % 2 ? c->h : c->w;
        c->xy[j] = below(r, 2) ? uniform(r, -far[below(r, 6)], far[below(r, 6)]) : uniform(r, -2, lim + 2);
    }
}

/* Long edges of nearly 45 degrees or nearly along an axis through the image, from far
 * away (scaled lengths near 2^30): the y-major walk's search starts from a guess there. */
static void make_huge_slopes(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 60), c->w = 1 + (uint32_t)below(r, 60);
    c->k = 3 + (size_t)below(r, 3);
    double px = uniform(r, 0, c->w), py = uniform(r, 0, c->h), len = uniform(r, 1e5, 1.07e8);
    double e = below(r, 2) ? 1.0 / (5 * len) * below(r, 3) : uniform(r, 0, 1e-3);
    double ax = below(r, 2) ? 1 : -1, ay = (below(r, 2) ? 1 : -1) * (below(r, 2) ? 1 + e : e);
    if (below(r, 2)) {
        double t = ax;
        ax = ay, ay = t;
    }
    for (size_t j = 0; j < c->k; j++) {
        double f = j == 0 ? -1 : j == 1 ? 1 : uniform(r, -1, 1);
        c->xy[2 * j] = px + f * len * ax + (j > 1 ? uniform(r, -30, 30) : 0);
        c->xy[2 * j + 1] = py + f * len * ay + (j > 1 ? uniform(r, -30, 30) : 0);
        if (fabs(c->xy[2 * j]) > 1.07e8 || fabs(c->xy[2 * j + 1]) > 1.07e8)
            c->xy[2 * j] = c->xy[2 * j] < 0 ? -1.07e8 : 1.07e8;
    }
}

/* Every point beyond one side of the image (or all around it), near or far. */
static void make_off_image(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 40), c->w = 1 + (uint32_t)below(r, 40);
    c->k = 3 + (size_t)below(r, 8);
    int side = below(r, 5);
    double dist = below(r, 2) ? uniform(r, 0, 2) : uniform(r, 2, 5000);
    for (size_t j = 0; j < c->k; j++) {
        double x = uniform(r, -dist, c->w + dist), y = uniform(r, -dist, c->h + dist);
        if (side == 0)
            x = -uniform(r, 0, dist);
        else if (side == 1)
            x = c->w + uniform(r, 0, dist);
        else if (side == 2)
            y = -uniform(r, 0, dist);
        else if (side == 3)
            y = c->h + uniform(r, 0, dist);
        c->xy[2 * j] = x, c->xy[2 * j + 1] = y;
    }
}

static void make_negative(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 30), c->w = 1 + (uint32_t)below(r, 30);
    c->k = 3 + (size_t)below(r, 8);
    for (size_t j = 0; j < c->k; j++) {
        int grid = below(r, 2);
        double x = uniform(r, -60, 0.5 * c->w + 4), y = uniform(r, -60, c->h + 4);
        c->xy[2 * j] = grid ? round(x) : x, c->xy[2 * j + 1] = grid ? round(y * 2) / 2 : y;
    }
}

/* Repeated points (COCO's 0/0 edges), single points, two points, no points. */
static void make_degenerate(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 20), c->w = 1 + (uint32_t)below(r, 20);
    c->k = (size_t)below(r, 9);
    for (size_t j = 0; j < c->k; j++) {
        if (j > 0 && below(r, 2)) {
            c->xy[2 * j] = c->xy[2 * j - 2], c->xy[2 * j + 1] = c->xy[2 * j - 1];
        } else {
            c->xy[2 * j] = uniform(r, -3, c->w + 3), c->xy[2 * j + 1] = uniform(r, -3, c->h + 3);
        }
    }
}

/* Points on one line: horizontal, vertical, diagonal or any slope, back and forth. */
static void make_collinear(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 30), c->w = 1 + (uint32_t)below(r, 30);
    c->k = 2 + (size_t)below(r, 9);
    double x0 = uniform(r, -2, c->w + 2), y0 = uniform(r, -2, c->h + 2), dx, dy;
    int kind = below(r, 4);
    dx = kind == 1 ? 0 : 1, dy = kind == 0 ? 0 : kind == 2 ? 1 : uniform(r, -3, 3);
    for (size_t j = 0; j < c->k; j++) {
        double t = uniform(r, -20, 20);
        c->xy[2 * j] = x0 + t * dx, c->xy[2 * j + 1] = y0 + t * dy;
    }
}

/* Hundreds of points: stars and random walks over COCO-size images. */
static void make_many(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 640), c->w = 1 + (uint32_t)below(r, 640);
    c->k = 50 + (size_t)below(r, MAX_POINTS - 50);
    double x = uniform(r, 0, c->w), y = uniform(r, 0, c->h), rad = uniform(r, 2, 0.4 * (c->w + c->h));
    int walk = below(r, 2);
    for (size_t j = 0; j < c->k; j++) {
        if (walk) {
            x += uniform(r, -8, 8), y += uniform(r, -8, 8);
            c->xy[2 * j] = x, c->xy[2 * j + 1] = y;
        } else {
            double a = 2 * M_PI * (double)j / (double)c->k, d = rad * (j % 2 ? 0.3 : 1) * uniform(r, 0.8, 1);
            c->xy[2 * j] = x + d * cos(a), c->xy[2 * j + 1] = y + d * sin(a);
        }
    }
}

/* Edges whose scaled dx and dy differ by 0 or 1 (x-major or y-major by a hair), and long
 * shallow or steep ones. */
static void make_slopes(rng *r, poly_case *c) {
    c->h = 1 + (uint32_t)below(r, 60), c->w = 1 + (uint32_t)below(r, 60);
    c->k = 3 + (size_t)below(r, 6);
    double x = uniform(r, -5, c->w + 5), y = uniform(r, -5, c->h + 5);
    for (size_t j = 0; j < c->k; j++) {
        c->xy[2 * j] = x, c->xy[2 * j + 1] = y;
        double len = uniform(r, 0, below(r, 4) ? 80 : 3000), sx = below(r, 2) ? 1 : -1, sy = below(r, 2) ? 1 : -1;
        int kind = below(r, 3);
        double off = kind == 0 ? 0 : kind == 1 ? 0.2 : uniform(r, 0, 0.02);
        if (below(r, 2))
            x += sx * len, y += sy * (len + off);
        else
            x += sx * (len + off), y += sy * len * (kind == 2 ? uniform(r, 0, 1) : 1);
    }
}

/* Non-finite and beyond-limit values, zero and odd image sizes, very wide or tall ones. */
static void make_special(rng *r, poly_case *c) {
    static const double odd[] = {NAN, INFINITY, -INFINITY, 1e300, -1e300, 2e8, -0.0, 0.5, 1e-300};
    static const uint32_t sizes[][2] = {{0, 5}, {5, 0}, {0, 0}, {1, 1}, {1, 100000}, {100000, 1}, {65536, 65537}, {3, 7}};
    const uint32_t *hw = sizes[below(r, 8)];
    c->h = hw[0], c->w = hw[1];
    c->k = (size_t)below(r, 6);
    double hi = c->w > 1000 || c->h > 1000 ? 2e4 : 10;
    for (size_t j = 0; j < 2 * c->k; j++)
        c->xy[j] = below(r, 6) ? uniform(r, -hi, hi) : odd[below(r, 9)];
}

static size_t sample_count(const poly_case *c) {
    double n = 0;
    for (size_t j = 0; j < c->k; j++) {
        size_t i = (j + 1) % c->k;
        double dx = fabs(c->xy[2 * i] - c->xy[2 * j]), dy = fabs(c->xy[2 * i + 1] - c->xy[2 * j + 1]);
        n += 5 * (dx > dy ? dx : dy) + 2;
    }
    return !(n < 1e12) ? (size_t)-1 : (size_t)n;
}

static int same_mask(int rc_a, const rle_mask *a, int rc_b, const rle_mask *b) {
    if (rc_a != rc_b)
        return 0;
    if (rc_a != 0)
        return 1;
    return a->h == b->h && a->w == b->w && a->m == b->m && !memcmp(a->cnts, b->cnts, a->m * sizeof *a->cnts);
}

static void print_case(const char *kind, size_t i, const poly_case *c) {
    fprintf(stderr, "%s case %zu differs: h %u w %u k %zu:", kind, i, c->h, c->w, c->k);
    for (size_t j = 0; j < 2 * c->k; j++)
        fprintf(stderr, " %.17g", c->xy[j]);
    fprintf(stderr, "\n");
}

/* n cases of one kind: rle_from_polygon, the oracle, and the oracle's every-sample walk
 * where it is cheap, all the same; and enough of them with pixels on that the check has
 * something to compare (refusals count as agreeing only when all agree). */
static void check_kind(check_tally *t, const char *kind, case_maker make, size_t n, uint64_t seed, double min_on,
                       double min_every) {
    rng r = {seed};
    poly_case *c = malloc(sizeof *c);
    size_t differ = 0, on = 0, every = 0;
    for (size_t i = 0; c && i < n; i++) {
        make(&r, c);
        rle_mask got, want, walked;
        int rc = rle_from_polygon(c->xy, c->k, c->h, c->w, &got);
        int rc_want = oracle_rle_from_polygon(c->xy, c->k, c->h, c->w, 0, &want);
        int same = same_mask(rc, &got, rc_want, &want);
        if (same && rc == 0 && sample_count(c) < 40000) {
            int rc_walked = oracle_rle_from_polygon(c->xy, c->k, c->h, c->w, 1, &walked);
            same = same_mask(rc, &got, rc_walked, &walked);
            every++;
            if (rc_walked == 0)
                rle_free(&walked);
        }
        if (!same && differ++ < 3)
            print_case(kind, i, c);
        if (rc == 0 && rle_area(&got) > 0)
            on++;
        if (rc == 0)
            rle_free(&got);
        if (rc_want == 0)
            rle_free(&want);
    }
    free(c);
    CHECK(t, c != NULL && differ == 0);
    if ((double)on < min_on * (double)n || (double)every < min_every * (double)n)
        fprintf(stderr, "%s: only %zu of %zu masks with pixels on, %zu walked sample by sample\n", kind, on, n, every);
    CHECK(t, (double)on >= min_on * (double)n);
    CHECK(t, (double)every >= min_every * (double)n);
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1500;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    static const struct {
        const char *name;
        case_maker make;
        double min_on, min_every; /* the shares of masks with pixels on, and walked sample by sample */
    } kinds[] = {
        {"coco", make_coco, 0.8, 0.5},         {"tiny", make_tiny, 0.3, 0.9},
        {"subpixel", make_subpixel, 0.2, 0.9}, {"huge", make_huge, 0.2, 0},
        {"huge slopes", make_huge_slopes, 0.2, 0},
        {"off-image", make_off_image, 0.05, 0.3}, {"negative", make_negative, 0.1, 0.9},
        {"degenerate", make_degenerate, 0.1, 0.9}, {"collinear", make_collinear, 0, 0.9},
        {"many", make_many, 0.5, 0.5},         {"slopes", make_slopes, 0.3, 0.5},
        {"special", make_special, 0, 0.1},
    };
    check_tally t = {0};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        check_kind(&t, kinds[i].name, kinds[i].make, n, seed * 1000003u + i, kinds[i].min_on, kinds[i].min_every);
    return check_report(&t);
}
