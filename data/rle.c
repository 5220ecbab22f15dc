/* rle.c: COCO run-length masks: encoding and decoding pixels, the compressed "counts"
 * strings, area, bounding box, union/intersection and IoU, all giving the same numbers
 * as the COCO API (pycocotools' maskApi.c), including its corner cases. The polygon and
 * box rasteriser is in rle_polygon.c. */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The compressed strings carry 5 bits a character, offset so that they are printable. */
enum { CHUNK_BITS = 5, CHUNK_MASK = 0x1f, CHUNK_SIGN = 0x10, CHUNK_MORE = 0x20, CHAR_BASE = 48 };
/* A run delta lies in (-2^32, 2^32): 34 signed bits, so 7 chunks at most. */
enum { MAX_CHUNKS = 7 };

void rle_free(rle_mask *r) {
    free(r->cnts);
    r->cnts = NULL;
    r->m = 0;
}

/* Makes *out own a copy of m runs; out is left empty (m = 0) on failure. */
static int rle_set(rle_mask *out, uint32_t h, uint32_t w, const uint32_t *cnts, size_t m) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    if (m == 0)
        return 0;
    out->cnts = malloc(m * sizeof *out->cnts);
    if (!out->cnts)
        return -1;
    memcpy(out->cnts, cnts, m * sizeof *cnts);
    out->m = m;
    return 0;
}

/* Runs must fit in uint32, as COCO stores them. */
static int size_fits(uint32_t h, uint32_t w) {
    return (uint64_t)h * w <= UINT32_MAX;
}

/* One column-major walk over a row-major mask; counts the runs, and stores them when
 * cnts is not NULL. An all-empty (or 0-pixel) mask is the single run h*w, as in COCO. */
static size_t encode_walk(const uint8_t *mask, uint32_t h, uint32_t w, uint32_t *cnts) {
    size_t m = 0;
    uint32_t run = 0;
    int prev = 0;
    if (h == 0 || w == 0) /* without this, h = 0 walks every one of w empty columns */
        w = 0;
    for (uint32_t x = 0; x < w; x++) {
        for (uint32_t y = 0; y < h; y++) {
            int on = mask[(size_t)y * w + x] != 0;
            if (on != prev) {
                if (cnts)
                    cnts[m] = run;
                m++;
                run = 0;
                prev = on;
            }
            run++;
        }
    }
    if (cnts)
        cnts[m] = run;
    return m + 1;
}

int rle_encode(const uint8_t *mask, uint32_t h, uint32_t w, rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    if (!size_fits(h, w))
        return -1;
    size_t m = encode_walk(mask, h, w, NULL);
    out->cnts = malloc(m * sizeof *out->cnts);
    if (!out->cnts)
        return -1;
    encode_walk(mask, h, w, out->cnts);
    out->m = m;
    return 0;
}

/* Sets the pixels [start, start + len) of the column-major order in a row-major mask. */
static void fill_run(uint8_t *mask, uint32_t h, uint32_t w, size_t start, size_t len) {
    size_t x = start / h, y = start % h;
    for (size_t k = 0; k < len; k++) {
        mask[y * w + x] = 1;
        if (++y == h) {
            y = 0;
            x++;
        }
    }
}

void rle_decode(const rle_mask *r, uint8_t *mask) {
    size_t n = (size_t)r->h * r->w, p = 0;
    memset(mask, 0, n);
    /* Clamped to the image, so a hand-built mask with too many pixels cannot overrun. */
    for (size_t j = 0; j < r->m && p < n; j++) {
        size_t len = r->cnts[j] < n - p ? r->cnts[j] : n - p;
        if (j % 2 == 1)
            fill_run(mask, r->h, r->w, p, len);
        p += len;
    }
}

/* What is written for run i: the run itself for the first three, then the signed
 * difference from the run two before (COCO's "i > 2", not "i >= 2"). */
static int64_t run_delta(const rle_mask *r, size_t i) {
    int64_t x = r->cnts[i];
    return i > 2 ? x - (int64_t)r->cnts[i - 2] : x;
}

/* Appends x in 5-bit chunks, low first; the last chunk's 0x10 bit is the sign. */
static size_t put_value(char *s, int64_t x) {
    size_t p = 0;
    for (;;) {
        int c = (int)(x & CHUNK_MASK); /* two's complement: intN_t guarantees it */
        x = (x - c) / (1 << CHUNK_BITS); /* exact, so the same as an arithmetic shift */
        int more = (c & CHUNK_SIGN) ? x != -1 : x != 0;
        if (more)
            c |= CHUNK_MORE;
        s[p++] = (char)(c + CHAR_BASE);
        if (!more)
            return p;
    }
}

char *rle_to_string(const rle_mask *r) {
    char *s = malloc(r->m * MAX_CHUNKS + 1);
    if (!s)
        return NULL;
    size_t p = 0;
    for (size_t i = 0; i < r->m; i++)
        p += put_value(s + p, run_delta(r, i));
    s[p] = '\0';
    return s;
}

/* Reads the value at p, before end; the end of it, or NULL on a character outside the
 * alphabet, a string that ends inside a value, or a value longer than any run delta can
 * be. With json_escaped, the two characters "\\" stand for the one backslash of the
 * alphabet (a chunk with the continuation bit, so never a value's last character). */
static const unsigned char *get_value(const unsigned char *p, const unsigned char *end, int json_escaped,
                                      int64_t *out) {
    uint64_t x = 0;
    for (int k = 0; k < MAX_CHUNKS && p < end; k++) {
        unsigned ch = *p++;
        if (ch == '\\' && json_escaped && (p == end || *p++ != '\\'))
            return NULL;
        unsigned c = ch - CHAR_BASE; /* wraps for ch < 48: out of the alphabet too */
        if (c >= 64)
            return NULL;
        x |= (uint64_t)(c & CHUNK_MASK) << (CHUNK_BITS * k);
        if (!(c & CHUNK_MORE)) {
            /* Sign extension: the bits above are all 0, so OR-ing in ones is a subtraction. */
            int64_t v = (int64_t)x;
            if (c & CHUNK_SIGN)
                v -= (int64_t)1 << (CHUNK_BITS * (k + 1));
            *out = v;
            return p;
        }
    }
    return NULL;
}

/* The next value at *pp, before end: -1 where get_value fails. Nearly every value in
 * real masks is one character (85 % on bench-ap) or two (13 %), so those are read in
 * line; anything else (longer values, escapes, bad input) goes to get_value. Branches,
 * not selects: predicted, they let the next value's load start before this one is known
 * (a branch-free form measured 1.4x slower). */
static inline __attribute__((always_inline)) int next_value(const unsigned char **pp, const unsigned char *end,
                                                            int json_escaped, int64_t *x) {
    const unsigned char *p = *pp;
    unsigned c0 = (unsigned)p[0] - CHAR_BASE; /* wraps for p[0] < 48: out of the alphabet */
    if (c0 < CHUNK_MORE) {
        *x = (int64_t)(c0 ^ CHUNK_SIGN) - CHUNK_SIGN; /* sign-extended from 5 bits */
        *pp = p + 1;
    } else if (end - p > 1 && c0 < 2 * CHUNK_MORE && (unsigned)p[1] - CHAR_BASE < CHUNK_MORE &&
               !(json_escaped && p[0] == '\\')) {
        unsigned v = (c0 & CHUNK_MASK) | ((unsigned)p[1] - CHAR_BASE) << CHUNK_BITS;
        *x = (int64_t)(v ^ CHUNK_SIGN << CHUNK_BITS) - (CHUNK_SIGN << CHUNK_BITS); /* from 10 bits */
        *pp = p + 2;
    } else if (!(*pp = get_value(p, end, json_escaped, x))) {
        return -1;
    }
    return 0;
}

/* Adds run x to the sum: -1 for a negative run, one past uint32 or past h x w (the sum
 * wraps only when x is out of range, and then it fails anyway). One test, not three. */
static inline int run_ok(int64_t x, uint64_t *sum, uint64_t total) {
    *sum += (uint64_t)x;
    return (((uint64_t)x > UINT32_MAX) | (*sum > total)) ? -1 : 0;
}

/* The one walk behind every decoder of the strings: checks them as COCO's runs must be
 * (each run in uint32, the sum h x w), counts the runs and the pixels on, and stores the
 * runs when cnts is not NULL (room for one a value-ending character, rle_chars_runs).
 * The first three runs are written as they are; after them each is a delta from the run
 * two before, of its own kind, so the loop takes a 1-run and a 0-run at a time, each with
 * its own base, and only the 1-runs add to the area. Inlined with constant cnts and
 * json_escaped, so each caller gets a copy without the tests it does not need. */
static inline __attribute__((always_inline)) int
decode_walk(const char *s, size_t len, int json_escaped, uint64_t total, uint32_t *cnts, size_t *n_runs,
            uint64_t *area) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    uint64_t sum = 0, ones = 0;
    int64_t x, last_zeros = 0, last_ones = 0; /* the latest run of each kind */
    size_t m = 0;
    for (; m < 3 && p < end; m++) {
        if (next_value(&p, end, json_escaped, &x) != 0 || run_ok(x, &sum, total) != 0)
            return -1;
        if (cnts)
            cnts[m] = (uint32_t)x;
        if (m % 2)
            ones += (uint64_t)x, last_ones = x;
        else
            last_zeros = x;
    }
    while (p < end) { /* m is odd here: a 1-run, then a 0-run */
        if (next_value(&p, end, json_escaped, &x) != 0 || run_ok(x += last_ones, &sum, total) != 0)
            return -1;
        if (cnts)
            cnts[m] = (uint32_t)x;
        ones += (uint64_t)x, last_ones = x, m++;
        if (p == end)
            break;
        if (next_value(&p, end, json_escaped, &x) != 0 || run_ok(x += last_zeros, &sum, total) != 0)
            return -1;
        if (cnts)
            cnts[m] = (uint32_t)x;
        last_zeros = x, m++;
    }
    if (sum != total)
        return -1;
    *n_runs = m;
    *area = ones;
    return 0;
}

/* How many runs a string can hold at most: its value-ending characters (no continuation
 * bit), exactly the runs when it is well formed. */
static size_t rle_chars_runs(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (unsigned char)((unsigned char)s[i] - CHAR_BASE) < CHUNK_MORE;
    return n;
}

static int decode_into(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, uint32_t *cnts,
                       size_t *m) {
    uint64_t ones;
    return json_escaped ? decode_walk(s, len, 1, (uint64_t)h * w, cnts, m, &ones)
                        : decode_walk(s, len, 0, (uint64_t)h * w, cnts, m, &ones);
}

int rle_from_chars(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    size_t cap = rle_chars_runs(s, len), m = 0;
    uint32_t *cnts = malloc((cap ? cap : 1) * sizeof *cnts);
    if (!cnts)
        return -1;
    int rc = decode_into(s, len, json_escaped, h, w, cnts, &m);
    if (rc != 0 || m == 0) { /* m == 0: the empty string of a 0-pixel mask */
        free(cnts);
        return rc;
    }
    out->cnts = cnts;
    out->m = m;
    return 0;
}

void rle_scratch_free(rle_scratch *sc) {
    free(sc->cnts);
    sc->cnts = NULL;
    sc->cap = 0;
}

int rle_from_chars_scratch(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, rle_scratch *sc,
                           rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    if (sc->cap < len) { /* a character a run at most: no counting pass needed */
        size_t cap = len > 2 * sc->cap ? len : 2 * sc->cap;
        uint32_t *grown = realloc(sc->cnts, cap * sizeof *grown);
        if (!grown)
            return -1;
        sc->cnts = grown, sc->cap = cap;
    }
    size_t m;
    if (decode_into(s, len, json_escaped, h, w, sc->cnts, &m) != 0)
        return -1;
    out->cnts = m ? sc->cnts : NULL;
    out->m = m;
    return 0;
}

int rle_chars_area(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, uint64_t *area) {
    size_t m;
    return json_escaped ? decode_walk(s, len, 1, (uint64_t)h * w, NULL, &m, area)
                        : decode_walk(s, len, 0, (uint64_t)h * w, NULL, &m, area);
}

int rle_from_string(const char *s, uint32_t h, uint32_t w, rle_mask *out) {
    return rle_from_chars(s, strlen(s), 0, h, w, out);
}

static uint64_t run_sum(const uint32_t *cnts, size_t m) {
    uint64_t sum = 0;
    for (size_t j = 0; j < m; j++)
        sum += cnts[j];
    return sum;
}

int rle_from_counts(const uint32_t *counts, size_t m, uint32_t h, uint32_t w, rle_mask *out) {
    if (run_sum(counts, m) != (uint64_t)h * w) {
        *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
        return -1;
    }
    return rle_set(out, h, w, counts, m);
}

uint64_t rle_area(const rle_mask *r) {
    uint64_t a = 0;
    for (size_t j = 1; j < r->m; j += 2)
        a += r->cnts[j];
    return a;
}

/* COCO's toBbox (pycocotools 2.0.11; older releases give the same boxes for every mask
 * without empty runs). Only 1-runs in whole (0-run, 1-run) pairs count, empty ones are
 * skipped, and a 1-run that crosses into another column makes the box the full image
 * height. The arithmetic is COCO's uint: with pairs but no pixels on, the box is w, h,
 * 1 - w, 1 - h wrapped to 32 bits, as pycocotools gives it. */
void rle_bbox(const rle_mask *r, double bbox[4]) {
    uint32_t h = r->h, w = r->w;
    size_t m = r->m / 2 * 2;
    bbox[0] = bbox[1] = bbox[2] = bbox[3] = 0;
    if (m == 0 || h == 0) /* h == 0: COCO would divide by zero; there are no pixels */
        return;
    uint32_t xs = w, ys = h, xe = 0, ye = 0, start = 0;
    for (size_t j = 0; j < m; start += r->cnts[j], j++) {
        if (j % 2 == 0 || r->cnts[j] == 0)
            continue;
        uint32_t last = start + r->cnts[j] - 1;
        uint32_t x0 = start / h, y0 = start % h, x1 = last / h, y1 = last % h;
        xs = x0 < xs ? x0 : xs;
        xe = x1 > xe ? x1 : xe;
        if (x0 < x1) {
            ys = 0;
            ye = h - 1;
        } else {
            ys = y0 < ys ? y0 : ys;
            ye = y1 > ye ? y1 : ye;
        }
    }
    bbox[0] = xs;
    bbox[1] = ys;
    bbox[2] = (uint32_t)(xe - xs + 1);
    bbox[3] = (uint32_t)(ye - ys + 1);
}

/* A cursor over one mask's runs, as COCO walks two masks side by side: left is what
 * remains of the current run, on whether it is a run of 1s. */
typedef struct {
    const uint32_t *cnts;
    size_t m, next;
    uint32_t left;
    int on;
} run_cursor;

static run_cursor cursor_start(const rle_mask *r) {
    return (run_cursor){.cnts = r->cnts, .m = r->m, .next = 1, .left = r->m ? r->cnts[0] : 0, .on = 0};
}

/* Consumes c pixels; on reaching the end of the run, moves to the next one (only one:
 * an empty run is stepped over on a later call, as in COCO). */
static void cursor_take(run_cursor *k, uint32_t c) {
    k->left -= c;
    if (k->left == 0 && k->next < k->m) {
        k->left = k->cnts[k->next++];
        k->on = !k->on;
    }
}

static int cursor_spent(const run_cursor *k) {
    return k->left == 0 && k->next >= k->m;
}

/* The walk ends, as COCO's does, when neither has pixels left in its current run (with
 * empty runs still to come, that can be before the end). One spent while the other still
 * has pixels only happens with runs of different totals; COCO would loop forever. */
static int walk_over(const run_cursor *a, const run_cursor *b) {
    if (a->left == 0 && b->left == 0)
        return 1;
    return cursor_spent(a) || cursor_spent(b);
}

/* Merges b into the runs of a (a->m + b->m + 1 slots in out suffice: each step uses up
 * a run of a or of b). Emits a run whenever the merged value flips, as COCO does, so
 * empty runs in the inputs can give empty runs in the output. */
static size_t merge_two(const rle_mask *a, const rle_mask *b, int intersect, uint32_t *out) {
    run_cursor ka = cursor_start(a), kb = cursor_start(b);
    size_t m = 0;
    uint32_t cc = 0;
    int v = 0;
    for (;;) {
        uint32_t c = ka.left < kb.left ? ka.left : kb.left;
        cc += c;
        cursor_take(&ka, c);
        cursor_take(&kb, c);
        int vp = v;
        v = intersect ? (ka.on && kb.on) : (ka.on || kb.on);
        int over = walk_over(&ka, &kb);
        if (v != vp || over) {
            out[m++] = cc;
            cc = 0;
        }
        if (over)
            return m;
    }
}

/* Checks that every mask has the first one's size and usable runs. */
static int merge_inputs_ok(const rle_mask *masks, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (masks[i].h != masks[0].h || masks[i].w != masks[0].w)
            return 0;
        if (masks[i].m == 0 && (uint64_t)masks[i].h * masks[i].w != 0)
            return 0;
    }
    return 1;
}

int rle_merge(const rle_mask *masks, size_t n, int intersect, rle_mask *out) {
    if (n == 0) { /* COCO gives an empty 0 x 0 mask */
        *out = (rle_mask){0};
        return 0;
    }
    if (!merge_inputs_ok(masks, n)) {
        *out = (rle_mask){.h = masks[0].h, .w = masks[0].w, .m = 0, .cnts = NULL};
        return -1;
    }
    if (rle_set(out, masks[0].h, masks[0].w, masks[0].cnts, masks[0].m) != 0)
        return -1;
    if (out->m == 0) /* 0 pixels: nothing to merge */
        return 0;
    for (size_t i = 1; i < n; i++) {
        uint32_t *cnts = malloc((out->m + masks[i].m + 1) * sizeof *cnts);
        if (!cnts) {
            rle_free(out);
            return -1;
        }
        size_t m = merge_two(out, &masks[i], intersect, cnts);
        free(out->cnts);
        out->cnts = cnts; /* a few slots too many at worst: not worth a realloc */
        out->m = m;
        /* Empty runs can make COCO's walk stop early, short of the image (and hang on
         * the next merge): refused rather than returned broken. */
        if (run_sum(out->cnts, out->m) != (uint64_t)out->h * out->w) {
            rle_free(out);
            return -1;
        }
    }
    return 0;
}

/* Intersection and union in pixels, walking the runs of both (uint, as COCO counts). */
static void overlap(const rle_mask *dt, const rle_mask *gt, uint32_t *inter, uint32_t *uni) {
    run_cursor ka = cursor_start(dt), kb = cursor_start(gt);
    uint32_t i = 0, u = 0;
    do {
        uint32_t c = ka.left < kb.left ? ka.left : kb.left;
        if (ka.on || kb.on) {
            u += c;
            if (ka.on && kb.on)
                i += c;
        }
        cursor_take(&ka, c);
        cursor_take(&kb, c);
    } while (!walk_over(&ka, &kb));
    *inter = i;
    *uni = u;
}

double rle_iou(const rle_mask *dt, const rle_mask *gt, int gt_iscrowd) {
    double db[4], gb[4];
    rle_bbox(dt, db);
    rle_bbox(gt, gb);
    return rle_iou_boxed(dt, db, rle_area(dt), gt, gb, gt_iscrowd);
}

double rle_iou_boxed(const rle_mask *dt, const double dt_box[4], uint64_t dt_area, const rle_mask *gt,
                     const double gt_box[4], int gt_iscrowd) {
    /* Disjoint boxes settle it before the sizes are even compared, as in COCO. */
    double box = bbox_iou(dt_box, gt_box, gt_iscrowd);
    if (!(box > 0))
        return box;
    if (dt->h != gt->h || dt->w != gt->w)
        return -1;
    uint32_t i, u;
    overlap(dt, gt, &i, &u);
    if (i == 0)
        u = 1;
    else if (gt_iscrowd)
        u = (uint32_t)dt_area;
    return (double)i / (double)u;
}

double bbox_iou(const double dt[4], const double gt[4], int gt_iscrowd) {
    double da = dt[2] * dt[3], ga = gt[2] * gt[3];
    double w = fmin(dt[0] + dt[2], gt[0] + gt[2]) - fmax(dt[0], gt[0]);
    if (w <= 0)
        return 0;
    double h = fmin(dt[1] + dt[3], gt[1] + gt[3]) - fmax(dt[1], gt[1]);
    if (h <= 0)
        return 0;
    double i = w * h, u = gt_iscrowd ? da : da + ga - i;
    return i / u;
}
