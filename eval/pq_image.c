/* pq_image.c: panopticapi's per-image PQ statistics, from two PNGs streamed row by row.
 *
 * The pixels only serve to count, for every (GT segment, predicted segment) pair, the
 * pixels they share. Segment ids map to small slots through hash tables; the counts go
 * into a dense slot-by-slot matrix. Runs of equal pixel pairs (most of a panoptic
 * image) cost one comparison each. */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

/* ---- id -> slot hash table ------------------------------------------------------ */

typedef struct {
    uint32_t *keys; /* 0 = empty: id 0 is VOID and never a key */
    uint32_t *vals;
    uint32_t mask;
    size_t cap;
} id_table;

static uint32_t id_hash(uint32_t id) { return id * 0x9E3779B1u; }

static int id_table_reset(id_table *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > t->cap) {
        uint32_t *k = realloc(t->keys, cap * sizeof *k), *v;
        if (!k)
            return -1;
        t->keys = k;
        v = realloc(t->vals, cap * sizeof *v);
        if (!v)
            return -1;
        t->vals = v;
        t->cap = cap;
    }
    t->mask = (uint32_t)cap - 1;
    memset(t->keys, 0, cap * sizeof *t->keys);
    return 0;
}

/* Returns the slot of id, or UINT32_MAX if absent. */
static uint32_t id_table_get(const id_table *t, uint32_t id) {
    for (uint32_t i = id_hash(id) & t->mask;; i = (i + 1) & t->mask) {
        if (t->keys[i] == id)
            return t->vals[i];
        if (t->keys[i] == 0)
            return UINT32_MAX;
    }
}

/* Inserts id if absent (the table must have room); returns 1 if it was new. */
static int id_table_put(id_table *t, uint32_t id, uint32_t val) {
    for (uint32_t i = id_hash(id) & t->mask;; i = (i + 1) & t->mask) {
        if (t->keys[i] == id)
            return 0;
        if (t->keys[i] == 0) {
            t->keys[i] = id;
            t->vals[i] = val;
            return 1;
        }
    }
}

static void id_table_release(id_table *t) {
    free(t->keys);
    free(t->vals);
}

/* ---- scratch ---------------------------------------------------------------------- */

typedef struct {
    uint32_t gt_id, pred_id, cat;
    double iou;
} pq_match;

/* Per segment of the image in hand. */
typedef struct {
    int cat;          /* index into the GT categories, -1 if unknown */
    uint64_t pixels;  /* its pixels in the PNG */
    int matched;
} seg_state;

struct pq_scratch {
    id_table gt_slots, pred_slots, gt_unknown;
    uint32_t *unknown_ids; /* GT ids in the PNG but not the JSON, in order found */
    size_t n_unknown, cap_unknown;
    uint32_t *counts;      /* (n_gt + 2) x (n_pred + 2) shared pixels */
    size_t cap_counts;
    uint8_t *gt_row, *pred_row;
    size_t cap_gt_row, cap_pred_row;
    png_buffer gt_pixels, pred_pixels; /* the decoded PNGs, kept from one image to the next */
};

pq_scratch *pq_scratch_new(void) { return calloc(1, sizeof(pq_scratch)); }

void pq_scratch_free(pq_scratch *s) {
    if (!s)
        return;
    id_table_release(&s->gt_slots);
    id_table_release(&s->pred_slots);
    id_table_release(&s->gt_unknown);
    free(s->unknown_ids);
    free(s->counts);
    free(s->gt_row);
    free(s->pred_row);
    png_buffer_release(&s->gt_pixels);
    png_buffer_release(&s->pred_pixels);
    free(s);
}

/* Grows *pp to hold n elements of size elem; keeps the contents. */
static int grow(void *pp, size_t *cap, size_t n, size_t elem) {
    if (n <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < n)
        ncap *= 2;
    void *np = realloc(*(void **)pp, ncap * elem);
    if (!np)
        return -1;
    *(void **)pp = np;
    *cap = ncap;
    return 0;
}

int pq_events_push(pq_events *ev, pq_event e) {
    if (grow(&ev->items, &ev->cap, ev->n + 1, sizeof e) != 0)
        return -1;
    ev->items[ev->n++] = e;
    return 0;
}

void pq_events_release(pq_events *ev) {
    free(ev->items);
    ev->items = NULL;
    ev->n = ev->cap = 0;
}

/* ---- one image ----------------------------------------------------------------------- */

/* What an image evaluation works on besides its input. */
typedef struct {
    const pq_image_input *in;
    pq_scratch *s;
    size_t ng, np;          /* JSON segments */
    size_t stride;          /* np + 2: columns of counts */
    seg_state *gt, *pred;
    uint32_t min_unknown_pred; /* smallest pred id in the PNG but not the JSON */
} image_work;

#define SLOT_VOID(n) ((uint32_t)(n))
#define SLOT_OTHER(n) ((uint32_t)(n) + 1)
#define MAX_COUNT_CELLS ((size_t)1 << 25)

static int open_pair(const pq_image_input *in, pq_scratch *s, png_reader **gr, png_reader **pr, avps_error *err) {
    const char *img = in->gt_ann->image_id;
    *gr = in->gt_image ? png_reader_open_buffered(in->gt_png, in->gt_image->width, in->gt_image->height,
                                                  &s->gt_pixels, err)
                       : png_reader_open_buffered(in->gt_png, 0, 0, &s->gt_pixels, err);
    if (!*gr)
        return avps_prefix(err, "%s: image %s", in->gt->path, img);
    uint32_t gw = png_reader_width(*gr), gh = png_reader_height(*gr);
    if (in->gt_image && (in->gt_image->width != gw || in->gt_image->height != gh))
        return avps_fail(err, "%s: image %s: the PNG %s is %ux%u but images[] says %ux%u", in->gt->path, img,
                         in->gt_png, gw, gh, in->gt_image->width, in->gt_image->height);
    if (in->pred_ids)
        return 0; /* made at the ground truth's size by the caller */
    *pr = png_reader_open_buffered(in->pred_png, gw, gh, &s->pred_pixels, err);
    if (!*pr)
        return avps_prefix(err, "%s: image %s: ground truth %s", in->pred_json_path, img, in->gt_png);
    uint32_t pw = png_reader_width(*pr), ph = png_reader_height(*pr);
    if (pw != gw || ph != gh)
        return avps_fail(err, "%s: image %s: the PNG %s is %ux%u but the ground truth %s is %ux%u",
                         in->pred_json_path, img, in->pred_png, pw, ph, in->gt_png, gw, gh);
    return 0;
}

static int build_slots(image_work *w, avps_error *err) {
    const pq_image_input *in = w->in;
    pq_scratch *s = w->s;
    if (id_table_reset(&s->gt_slots, w->ng) || id_table_reset(&s->pred_slots, w->np) ||
        id_table_reset(&s->gt_unknown, 64))
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < w->ng; i++) {
        id_table_put(&s->gt_slots, in->gt_ann->segments[i].id, (uint32_t)i);
        w->gt[i].cat = pan_dataset_category_index(in->gt, in->gt_ann->segments[i].category_id);
    }
    for (size_t i = 0; i < w->np; i++) {
        id_table_put(&s->pred_slots, in->pred_ann->segments[i].id, (uint32_t)i);
        w->pred[i].cat = pan_dataset_category_index(in->gt, in->pred_ann->segments[i].category_id);
    }
    s->n_unknown = 0;
    w->min_unknown_pred = UINT32_MAX;
    return 0;
}

/* A GT id in the PNG: its slot, remembering ids the JSON lacks. */
static uint32_t gt_slot(image_work *w, uint32_t id) {
    if (id == 0)
        return SLOT_VOID(w->ng);
    uint32_t slot = id_table_get(&w->s->gt_slots, id);
    if (slot != UINT32_MAX)
        return slot;
    pq_scratch *s = w->s;
    /* keep the unknown-id table at most half full */
    if (2 * (s->n_unknown + 1) > (size_t)s->gt_unknown.mask + 1) {
        id_table old = s->gt_unknown;
        memset(&s->gt_unknown, 0, sizeof s->gt_unknown);
        if (id_table_reset(&s->gt_unknown, 2 * (s->n_unknown + 1)) != 0) {
            id_table_release(&s->gt_unknown);
            s->gt_unknown = old; /* out of memory: the note will be short, the stats unaffected */
            return SLOT_OTHER(w->ng);
        }
        for (size_t i = 0; i < s->n_unknown; i++)
            id_table_put(&s->gt_unknown, s->unknown_ids[i], 0);
        id_table_release(&old);
    }
    if (id_table_put(&s->gt_unknown, id, 0) &&
        grow(&s->unknown_ids, &s->cap_unknown, s->n_unknown + 1, sizeof *s->unknown_ids) == 0)
        s->unknown_ids[s->n_unknown++] = id;
    return SLOT_OTHER(w->ng);
}

static uint32_t pred_slot(image_work *w, uint32_t id) {
    if (id == 0)
        return SLOT_VOID(w->np);
    uint32_t slot = id_table_get(&w->s->pred_slots, id);
    if (slot != UINT32_MAX)
        return slot;
    if (id < w->min_unknown_pred)
        w->min_unknown_pred = id;
    return SLOT_OTHER(w->np);
}

/* A pixel's id, R + 256 G + 65536 B, from one 4-byte load (rows have a byte of slack). */
static uint32_t id_at(const uint8_t *p) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
    return v & 0xffffffu;
#else
    return rgb_to_id(p);
#endif
}

typedef uint8_t bytes16 __attribute__((vector_size(16)));

/* Whether the 5 pixels after the one at p (3 bytes each, in a row with at least 16 bytes
 * after p + 3) equal it, in both rows: bytes [0, 18) of each are 3-periodic. */
static int same_next5(const uint8_t *g, const uint8_t *p) {
    bytes16 g0, g3, p0, p3;
    memcpy(&g0, g, 16);
    memcpy(&g3, g + 3, 16);
    memcpy(&p0, p, 16);
    memcpy(&p3, p + 3, 16);
    bytes16 diff = (g0 ^ g3) | (p0 ^ p3);
    uint64_t lo, hi;
    memcpy(&lo, &diff, 8);
    memcpy(&hi, (const uint8_t *)&diff + 8, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (lo | (hi & 0x00ffffffffffffffu)) == 0; /* lanes 0..14 */
#else
    return (lo | (hi & 0xffffffffffffff00u)) == 0;
#endif
}

/* The run of equal (GT id, pred id) pairs being counted: both ids in one 64-bit key, so
 * that staying in a run costs one comparison. */
typedef struct {
    uint64_t key;   /* gt id | pred id << 32; ids are 24-bit, so UINT64_MAX is no pair */
    uint32_t gs, ps; /* the slots of the key's ids */
    size_t cell;    /* gs x stride + ps */
    uint32_t length;
} pair_run;

/* Ends the run in hand and starts one at key; only an id that changed is looked up. */
static void pair_change(image_work *w, pair_run *r, uint64_t key) {
    w->s->counts[r->cell] += r->length;
    uint32_t gid = (uint32_t)key, pid = (uint32_t)(key >> 32);
    if (r->key == UINT64_MAX || gid != (uint32_t)r->key)
        r->gs = gt_slot(w, gid);
    if (r->key == UINT64_MAX || pid != (uint32_t)(r->key >> 32))
        r->ps = pred_slot(w, pid);
    r->key = key;
    r->cell = (size_t)r->gs * w->stride + r->ps;
    r->length = 1;
}

/* Counts the pixels every (GT slot, pred slot) pair shares, a row at a time. */
static int count_pixels(image_work *w, png_reader *gr, png_reader *pr, avps_error *err) {
    pq_scratch *s = w->s;
    uint32_t width = png_reader_width(gr), height = png_reader_height(gr);
    if (grow(&s->gt_row, &s->cap_gt_row, (size_t)width * 3 + 1, 1) ||
        grow(&s->pred_row, &s->cap_pred_row, (size_t)width * 3 + 1, 1))
        return avps_fail(err, "out of memory");
    /* the slack id_at reads; rows the readers hand back in place have their own */
    s->gt_row[(size_t)width * 3] = s->pred_row[(size_t)width * 3] = 0;
    pair_run r = {UINT64_MAX, 0, 0, 0, 0};
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *g = png_reader_next_row(gr, s->gt_row, err), *p = s->pred_row;
        if (!g || (pr && !(p = png_reader_next_row(pr, s->pred_row, err))))
            return -1;
        const uint32_t *ids = pr ? NULL : w->in->pred_ids + (size_t)y * width;
        if (ids) {
            for (uint32_t x = 0; x < width; x++, g += 3) {
                uint64_t key = id_at(g) | (uint64_t)ids[x] << 32;
                if (key == r.key)
                    r.length++;
                else
                    pair_change(w, &r, key);
            }
            continue;
        }
        for (uint32_t x = 0; x < width; x++, g += 3, p += 3) {
            uint64_t key = id_at(g) | (uint64_t)id_at(p) << 32;
            if (key != r.key) {
                pair_change(w, &r, key);
                continue;
            }
            r.length++;
            /* inside a run: skip 5 pixels at a time while both rows stay the same */
            while (x + 6 <= width && same_next5(g, p)) {
                r.length += 5;
                x += 5, g += 15, p += 15;
            }
        }
    }
    s->counts[r.cell] += r.length;
    return 0;
}

static void sum_pixels(image_work *w) {
    const uint32_t *c = w->s->counts;
    for (size_t g = 0; g < w->ng + 2; g++)
        for (size_t p = 0; p < w->np + 2; p++) {
            uint32_t n = c[g * w->stride + p];
            if (g < w->ng)
                w->gt[g].pixels += n;
            if (p < w->np)
                w->pred[p].pixels += n;
        }
}

/* panopticapi's checks, in its order: ids of the PNG in increasing order (in the JSON?
 * a known category?), then segments of the JSON missing from the PNG. */
static int check_prediction(const image_work *w, avps_error *err) {
    const pq_image_input *in = w->in;
    const char *img = in->gt_ann->image_id;
    uint32_t bad_cat_id = UINT32_MAX;
    size_t bad_cat = 0;
    for (size_t p = 0; p < w->np; p++)
        if (w->pred[p].pixels > 0 && w->pred[p].cat < 0 && in->pred_ann->segments[p].id < bad_cat_id) {
            bad_cat_id = in->pred_ann->segments[p].id;
            bad_cat = p;
        }
    if (w->min_unknown_pred < bad_cat_id)
        return avps_fail(err, "%s: image %s: segment %u is in the PNG %s but not in segments_info",
                         in->pred_json_path, img, w->min_unknown_pred, in->pred_png);
    if (bad_cat_id != UINT32_MAX)
        return avps_fail(err, "%s: image %s: segment %u has category_id %d, which is not among the categories of %s",
                         in->pred_json_path, img, bad_cat_id, in->pred_ann->segments[bad_cat].category_id,
                         in->gt->path);
    size_t missing = 0, first = 0;
    for (size_t p = 0; p < w->np; p++)
        if (w->pred[p].pixels == 0 && missing++ == 0)
            first = p;
    if (missing)
        return avps_fail(err, "%s: image %s: segment %u is in segments_info but not in the PNG %s%s",
                         in->pred_json_path, img, in->pred_ann->segments[first].id, in->pred_png,
                         missing > 1 ? " (and more)" : "");
    return 0;
}

static int uint32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int emit_notes(image_work *w, pq_events *out) {
    const pan_annotation *gt = w->in->gt_ann;
    for (size_t g = 0; g < w->ng; g++) {
        pq_event e = {0, 0, gt->segments[g].id, 0, 0};
        if (w->gt[g].pixels == 0)
            e.kind = PQ_NOTE_GT_JSON_ONLY;
        else if ((double)w->gt[g].pixels != gt->segments[g].area)
            e.kind = PQ_NOTE_AREA;
        else
            continue;
        if (pq_events_push(out, e) != 0)
            return -1;
    }
    if (w->s->n_unknown > 1)
        qsort(w->s->unknown_ids, w->s->n_unknown, sizeof(uint32_t), uint32_cmp);
    for (size_t i = 0; i < w->s->n_unknown; i++) {
        pq_event e = {PQ_NOTE_GT_PNG_ONLY, 0, w->s->unknown_ids[i], 0, 0};
        if (pq_events_push(out, e) != 0)
            return -1;
    }
    return 0;
}

static int match_cmp(const void *a, const void *b) {
    const pq_match *x = a, *y = b;
    if (x->gt_id != y->gt_id)
        return (x->gt_id > y->gt_id) - (x->gt_id < y->gt_id);
    return (x->pred_id > y->pred_id) - (x->pred_id < y->pred_id);
}

/* Matches are pairs of one category sharing IoU > 0.5, where the union leaves out the
 * prediction's VOID pixels and takes the GT area from the JSON. They are emitted in
 * panopticapi's order (by GT id, then pred id) so that IoU sums agree to the bit. */
static int emit_matches(image_work *w, pq_events *out) {
    const pan_annotation *gt = w->in->gt_ann, *pred = w->in->pred_ann;
    const uint32_t *c = w->s->counts;
    const uint32_t *void_row = c + SLOT_VOID(w->ng) * w->stride;
    pq_match *m = NULL;
    size_t n = 0, cap = 0;
    for (size_t g = 0; g < w->ng; g++) {
        if (gt->segments[g].iscrowd || w->gt[g].cat < 0)
            continue;
        for (size_t p = 0; p < w->np; p++) {
            uint32_t inter = c[g * w->stride + p];
            if (inter == 0 || pred->segments[p].category_id != gt->segments[g].category_id)
                continue;
            double uni = (double)w->pred[p].pixels + gt->segments[g].area - (double)inter - (double)void_row[p];
            double iou = (double)inter / uni;
            if (!(iou > 0.5))
                continue;
            if (grow(&m, &cap, n + 1, sizeof *m) != 0) {
                free(m);
                return -1;
            }
            m[n++] = (pq_match){gt->segments[g].id, pred->segments[p].id, (uint32_t)w->gt[g].cat, iou};
            w->gt[g].matched = w->pred[p].matched = 1;
        }
    }
    if (n > 1)
        qsort(m, n, sizeof *m, match_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = pq_events_push(out, (pq_event){PQ_TP, m[i].cat, 0, 0, m[i].iou});
    free(m);
    return rc;
}

/* Unmatched GT segments are false negatives, but crowd regions are not: the last crowd
 * segment of each category (panopticapi's dict keeps the last) excuses predictions of
 * that category lying mostly on it or on VOID. */
static int emit_misses(image_work *w, pq_events *out) {
    const pan_annotation *gt = w->in->gt_ann, *pred = w->in->pred_ann;
    const uint32_t *c = w->s->counts;
    const uint32_t *void_row = c + SLOT_VOID(w->ng) * w->stride;
    for (size_t g = 0; g < w->ng; g++) {
        if (w->gt[g].matched || gt->segments[g].iscrowd || w->gt[g].cat < 0)
            continue;
        if (pq_events_push(out, (pq_event){PQ_FN, (uint32_t)w->gt[g].cat, 0, 0, 0}) != 0)
            return -1;
    }
    for (size_t p = 0; p < w->np; p++) {
        if (w->pred[p].matched)
            continue;
        uint64_t ignored = void_row[p];
        for (size_t g = w->ng; g-- > 0;) /* the last crowd segment of the category */
            if (gt->segments[g].iscrowd && gt->segments[g].category_id == pred->segments[p].category_id) {
                ignored += c[g * w->stride + p];
                break;
            }
        if ((double)ignored / (double)w->pred[p].pixels > 0.5)
            continue;
        if (pq_events_push(out, (pq_event){PQ_FP, (uint32_t)w->pred[p].cat, 0, 0, 0}) != 0)
            return -1;
    }
    return 0;
}

static int evaluate(image_work *w, png_reader *gr, png_reader *pr, pq_events *out, avps_error *err) {
    const char *img = w->in->gt_ann->image_id;
    if ((w->ng + 2) * (w->np + 2) > MAX_COUNT_CELLS)
        return avps_fail(err, "%s: image %s: too many segments to pair (%zu in the ground truth, %zu predicted)",
                         w->in->pred_json_path, img, w->ng, w->np);
    if (grow(&w->s->counts, &w->s->cap_counts, (w->ng + 2) * w->stride, sizeof(uint32_t)) != 0 ||
        build_slots(w, err) != 0)
        return avps_fail(err, "image %s: out of memory", img);
    memset(w->s->counts, 0, (w->ng + 2) * w->stride * sizeof(uint32_t));
    if (count_pixels(w, gr, pr, err) != 0)
        return avps_prefix(err, "image %s", img);
    sum_pixels(w);
    if (check_prediction(w, err) != 0)
        return -1;
    if (emit_notes(w, out) != 0 || emit_matches(w, out) != 0 || emit_misses(w, out) != 0)
        return avps_fail(err, "image %s: out of memory", img);
    return 0;
}

int pq_image_eval(pq_scratch *s, const pq_image_input *in, pq_events *out, avps_error *err) {
    image_work w = {in, s, in->gt_ann->n_segments, in->pred_ann->n_segments, in->pred_ann->n_segments + 2,
                    NULL, NULL, UINT32_MAX};
    png_reader *gr = NULL, *pr = NULL;
    int rc = -1;
    w.gt = calloc(w.ng + 1, sizeof *w.gt);
    w.pred = calloc(w.np + 1, sizeof *w.pred);
    if (!w.gt || !w.pred)
        avps_fail(err, "image %s: out of memory", in->gt_ann->image_id);
    else if (open_pair(in, s, &gr, &pr, err) == 0)
        rc = evaluate(&w, gr, pr, out, err);
    png_reader_free(gr);
    png_reader_free(pr);
    free(w.gt);
    free(w.pred);
    return rc;
}
