/* ap_accumulate.c: COCOeval.accumulate and summarize on the records of all images, in
 * image-id order, with numpy's arithmetic: stable sorts by score, np.spacing(1) in the
 * precision, the precision envelope, searchsorted on the recall points (and accumulate's
 * stop at the first point past the last detection), and means taken with numpy's
 * pairwise summation, so the figures agree to the last bit. */
#include "eval.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* numpy's pairwise sum of a contiguous float64 array (add.reduce). */
static double pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* np.mean(vals), vals being s[s > -1], or -1 when nothing is defined. numpy's reduction
 * hands the inner loop blocks of its buffer size (8192) and adds their pairwise sums in
 * turn. */
static double mean_of(const double *vals, size_t k) {
    if (k == 0)
        return -1;
    double sum = 0.0;
    for (size_t off = 0; off < k; off += 8192)
        sum += pairwise_sum(vals + off, k - off < 8192 ? k - off : 8192);
    return sum / (double)k;
}

/* ---- gathering the records ----------------------------------------------------------- */

typedef struct {
    const ap_record_det *dets;
    uint32_t n_dt, n_gt;
} image_part;

typedef struct {
    image_part *parts; /* images in order */
    size_t n, cap;
} part_list;

typedef struct {
    double score;
    uint32_t rank; /* its place among its image's detections of the class: maxDets cuts on it */
    uint32_t matched, ignored;
} flat_det;

/* A thread's buffers for the cells it accumulates, grown to the largest (class, area). */
enum { RADIX_BITS = 11, RADIX_BUCKETS = 1 << RADIX_BITS };
typedef struct {
    flat_det *all;  /* the (class, area)'s detections, up to the largest maxDets, by score */
    flat_det *cell; /* those one maxDets keeps, in the same order */
    flat_det *tmp;  /* the radix sort's other half */
    uint64_t *key;  /* [2 * cap]: keys and the radix sort's other half */
    double *pr, *rc;
    size_t count[RADIX_BUCKETS];
    size_t cap;
} cell_scratch;

static void scratch_release(cell_scratch *s) {
    free(s->all), free(s->cell), free(s->tmp), free(s->key), free(s->pr), free(s->rc);
}

static int scratch_reserve(cell_scratch *s, size_t n) {
    if (n < s->cap)
        return 0;
    size_t cap = n + 1 > 2 * s->cap ? n + 1 : 2 * s->cap;
    scratch_release(s);
    s->all = malloc(cap * sizeof *s->all), s->cell = malloc(cap * sizeof *s->cell);
    s->tmp = malloc(cap * sizeof *s->tmp), s->key = malloc(cap * 2 * sizeof *s->key);
    s->pr = malloc(cap * sizeof *s->pr), s->rc = malloc(cap * sizeof *s->rc);
    s->cap = cap;
    if (s->all && s->cell && s->tmp && s->key && s->pr && s->rc)
        return 0;
    scratch_release(s);
    s->all = s->cell = s->tmp = NULL, s->key = NULL, s->pr = s->rc = NULL, s->cap = 0;
    return -1;
}

/* A key whose unsigned order is descending score: the bits of -score made monotone
 * (sign bit flipped for positives, all bits for negatives); +0.0 for -0.0, which
 * compares equal to it. Scores are finite or infinite, never NaN (strict JSON). */
static uint64_t descending_key(double score) {
    double neg = -score + 0.0;
    uint64_t u;
    memcpy(&u, &neg, sizeof u);
    return u >> 63 ? ~u : u | (1ull << 63);
}

/* np.argsort(-scores, kind='mergesort') of s->all[0..n): stable, so ties keep the order
 * the detections are in. An LSD radix sort on the key is stable too and gives that
 * order; passes whose digit is the same for every detection are skipped. */
static void sort_by_score(cell_scratch *s, size_t n) {
    flat_det *d = s->all, *tmp = s->tmp;
    uint64_t *key = s->key, *key_tmp = s->key + n;
    size_t *count = s->count;
    for (size_t i = 0; i < n; i++)
        key[i] = descending_key(d[i].score);
    for (unsigned shift = 0; shift < 64; shift += RADIX_BITS) {
        memset(count, 0, sizeof s->count);
        for (size_t i = 0; i < n; i++)
            count[(key[i] >> shift) & (RADIX_BUCKETS - 1)]++;
        if (n == 0 || count[(key[0] >> shift) & (RADIX_BUCKETS - 1)] == n)
            continue;
        for (size_t b = 0, sum = 0; b < RADIX_BUCKETS; b++) {
            size_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t at = count[(key[i] >> shift) & (RADIX_BUCKETS - 1)]++;
            key_tmp[at] = key[i];
            tmp[at] = d[i];
        }
        memcpy(key, key_tmp, n * sizeof *key);
        memcpy(d, tmp, n * sizeof *d);
    }
}

/* lists[k * A + a]: the parts of (class k, area a), images in order. */
static int gather(size_t k_total, size_t A, size_t n_images, const uint8_t *const *records, const size_t *len,
                  part_list *lists) {
    for (size_t i = 0; i < n_images; i++)
        for (size_t off = 0; off + sizeof(ap_record_head) <= len[i];) {
            ap_record_head h;
            memcpy(&h, records[i] + off, sizeof h);
            off += sizeof h;
            if (h.cat >= k_total || h.area >= A || h.n_dt > (len[i] - off) / sizeof(ap_record_det))
                return -1;
            part_list *l = &lists[h.cat * A + h.area];
            if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 16;
                image_part *p = realloc(l->parts, cap * sizeof *p);
                if (!p)
                    return -1;
                l->parts = p;
                l->cap = cap;
            }
            /* records are byte-packed; the dets are aligned since the head is 16 bytes */
            l->parts[l->n++] = (image_part){(const ap_record_det *)(const void *)(records[i] + off), h.n_dt, h.n_gt};
            off += h.n_dt * sizeof(ap_record_det);
        }
    return 0;
}

static void free_lists(part_list *lists, size_t n) {
    for (size_t i = 0; lists && i < n; i++)
        free(lists[i].parts);
    free(lists);
}

/* ---- accumulate ------------------------------------------------------------------- */

typedef struct {
    const ap_params *p;
    ap_dims d;
    double *precision; /* [T][R][K][A][M] */
    double *recall;    /* [T][K][A][M] */
    double *scores;    /* [T][R][K][A][M], or NULL when not wanted */
    int rec_sorted;    /* recThrs non-decreasing: one forward scan finds every point */
} ap_eval;

static size_t p_at(const ap_eval *e, size_t t, size_t r, size_t k, size_t a, size_t m) {
    return (((t * e->d.R + r) * e->d.K + k) * e->d.A + a) * e->d.M + m;
}
static size_t r_at(const ap_eval *e, size_t t, size_t k, size_t a, size_t m) {
    return ((t * e->d.K + k) * e->d.A + a) * e->d.M + m;
}

static int eval_alloc(ap_eval *e, const ap_params *p, ap_dims d, int want_scores) {
    size_t np_ = d.T * d.R * d.K * d.A * d.M, nr = d.T * d.K * d.A * d.M;
    *e = (ap_eval){p, d, malloc((np_ + 1) * sizeof(double)), malloc((nr + 1) * sizeof(double)),
                   want_scores ? malloc((np_ + 1) * sizeof(double)) : NULL, 1};
    for (size_t r = 1; r < p->n_rec; r++)
        if (p->rec_thrs[r] < p->rec_thrs[r - 1])
            e->rec_sorted = 0;
    if (!e->precision || !e->recall || (want_scores && !e->scores))
        return -1;
    for (size_t i = 0; i < np_; i++)
        e->precision[i] = -1;
    for (size_t i = 0; i < nr; i++)
        e->recall[i] = -1;
    for (size_t i = 0; e->scores && i < np_; i++)
        e->scores[i] = -1;
    return 0;
}

static void eval_release(ap_eval *e) {
    free(e->precision);
    free(e->recall);
    free(e->scores);
}

/* np.searchsorted(rc, v, side='left'): the first i with rc[i] >= v (rc is non-decreasing). */
static size_t search_left(const double *rc, size_t n, double v) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rc[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* One threshold: cumulative TP/FP, the envelope and the sampled precision. */
static void precision_at(ap_eval *e, const flat_det *d, size_t nd, uint32_t npig, size_t t, size_t k, size_t a,
                         size_t m, double *pr, double *rc) {
    /* rc = tp / npig and pr = tp / (fp + tp + eps) as numpy computes them; an ignored
     * detection changes neither sum, a false positive leaves rc, and 0 / x is 0, so the
     * divisions are done only where a value changes (the same doubles, fewer divides) */
    double tp = 0, fp = 0, r = 0, q = 0;
    for (size_t i = 0; i < nd; i++) {
        if (!(d[i].ignored >> t & 1)) {
            if (d[i].matched >> t & 1) {
                tp += 1;
                r = tp / (double)npig;
                q = tp / (fp + tp + DBL_EPSILON);
            } else {
                fp += 1;
                if (tp != 0)
                    q = tp / (fp + tp + DBL_EPSILON);
            }
        }
        rc[i] = r;
        pr[i] = q;
    }
    e->recall[r_at(e, t, k, a, m)] = nd ? rc[nd - 1] : 0;
    /* the envelope, pr[i - 1] = max(pr[i - 1], pr[i]) from the end, as a running maximum
     * (no NaN can arise: the same values, without a branch that mispredicts) */
    double top = 0;
    for (size_t i = nd; i-- > 0;) {
        top = pr[i] > top ? pr[i] : top;
        pr[i] = top;
    }
    /* accumulate's q and ss start at 0 and its loop stops at the first point past the
     * detections (an IndexError it catches), whatever the order of recThrs */
    int stopped = 0;
    size_t i = 0;
    for (size_t r = 0; r < e->d.R; r++) {
        if (e->rec_sorted) /* searchsorted, side left, continuing from the last point */
            while (i < nd && rc[i] < e->p->rec_thrs[r])
                i++;
        else
            i = stopped ? nd : search_left(rc, nd, e->p->rec_thrs[r]);
        stopped = i >= nd;
        e->precision[p_at(e, t, r, k, a, m)] = stopped ? 0 : pr[i];
        if (e->scores)
            e->scores[p_at(e, t, r, k, a, m)] = stopped ? 0 : d[i].score;
    }
}

/* The cells (k, a, m) for m in [m0, m1) of one class and area range. accumulate sorts
 * the first maxDets detections of each image per cell; the detections one maxDets keeps
 * are those of the largest with rank < maxDets, in the same relative order, so their
 * stable sort by score is the largest's sort with the others left out: one sort serves
 * every maxDets. */
static int accumulate_area(ap_eval *e, cell_scratch *s, const part_list *l, size_t k, size_t a, size_t m0,
                           size_t m1) {
    uint32_t npig = 0, max_all = 0;
    for (size_t m = m0; m < m1; m++)
        if (e->p->max_dets[m] > max_all)
            max_all = e->p->max_dets[m];
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++) {
        total += l->parts[i].n_dt < max_all ? l->parts[i].n_dt : max_all;
        npig += l->parts[i].n_gt;
    }
    if (l->n == 0 || npig == 0)
        return 0;
    if (scratch_reserve(s, total) != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        for (uint32_t j = 0; j < l->parts[i].n_dt && j < max_all; j++, n++) {
            const ap_record_det *r = &l->parts[i].dets[j];
            s->all[n] = (flat_det){r->score, j, r->matched, r->ignored};
        }
    sort_by_score(s, n);
    for (size_t m = m0; m < m1; m++) {
        uint32_t max_det = e->p->max_dets[m];
        const flat_det *d = s->all;
        size_t nd = n;
        if (max_det < max_all) {
            nd = 0;
            for (size_t i = 0; i < n; i++)
                if (s->all[i].rank < max_det)
                    s->cell[nd++] = s->all[i];
            d = s->cell;
        }
        for (size_t t = 0; t < e->d.T; t++)
            precision_at(e, d, nd, npig, t, k, a, m, s->pr, s->rc);
    }
    return 0;
}

/* Classes [k0, k1) on one thread; each writes only its own classes' slots of the arrays. */
typedef struct {
    ap_eval *e;
    const part_list *lists;
    size_t k0, k1;
    int rc;
} class_chunk;

static void *class_chunk_run(void *arg) {
    class_chunk *c = arg;
    cell_scratch s = {0};
    c->rc = 0;
    for (size_t k = c->k0; k < c->k1 && c->rc == 0; k++)
        for (size_t a = 0; a < c->e->d.A && c->rc == 0; a++)
            c->rc = accumulate_area(c->e, &s, &c->lists[k * c->e->d.A + a], k, a, 0, c->e->d.M);
    scratch_release(&s);
    return NULL;
}

/* Every class on up to `threads` threads, in contiguous runs of about equal numbers of
 * detections. Classes are independent and write disjoint slots, and summarize reads
 * them afterwards in its own order, so the figures do not depend on the split. */
static int accumulate_classes(ap_eval *e, const part_list *lists, int threads) {
    size_t K = e->d.K, A = e->d.A, total = 0;
    size_t *start = malloc((K + 1) * sizeof *start); /* detections before class k */
    if (!start)
        return -1;
    for (size_t k = 0; k < K; k++) {
        start[k] = total;
        total += 1;
        for (size_t a = 0; a < A; a++)
            for (size_t i = 0; i < lists[k * A + a].n; i++)
                total += lists[k * A + a].parts[i].n_dt;
    }
    start[K] = total;
    size_t t_n = threads > 1 ? (size_t)threads : 1;
    if (t_n > K)
        t_n = K ? K : 1;
    if (t_n > total / 512 + 1) /* a thread per at least 512 detections (about 0.2 ms): starting one costs more */
        t_n = total / 512 + 1;
    class_chunk *chunks = calloc(t_n, sizeof *chunks);
    if (!chunks) {
        free(start);
        return -1;
    }
    for (size_t t = 0, k = 0; t < t_n; t++) {
        chunks[t] = (class_chunk){e, lists, k, k, 0};
        while (k < K && (t + 1 == t_n || start[k] * t_n < total * (t + 1)))
            k++;
        chunks[t].k1 = k;
    }
    chunks_run(chunks, sizeof *chunks, t_n, class_chunk_run);
    int rc = 0;
    for (size_t t = 0; t < t_n; t++)
        if (chunks[t].rc != 0)
            rc = -1;
    free(chunks);
    free(start);
    return rc;
}

/* ---- summarize ------------------------------------------------------------------- */

/* One row of summarize: precision (ap) or recall at threshold t (all when t < 0), area
 * range a, maxDets index m, over the classes [k0, k1); -1 when a or m is missing. */
typedef struct {
    int ap;
    long t, a, m;
} row_sel;

static double summarize(const ap_eval *e, row_sel s, size_t k0, size_t k1, double *buf) {
    if (s.t == -2 || s.a < 0 || s.m < 0)
        return -1;
    size_t n = 0, k_step = e->d.A * e->d.M; /* the stride of k in both arrays */
    for (size_t t = 0; t < e->d.T; t++) {
        if (s.t >= 0 && t != (size_t)s.t)
            continue;
        if (s.ap) {
            for (size_t r = 0; r < e->d.R; r++) {
                const double *v = &e->precision[p_at(e, t, r, k0, (size_t)s.a, (size_t)s.m)];
                for (size_t k = k0; k < k1; k++, v += k_step) {
                    buf[n] = *v; /* s[s > -1], kept as it is read */
                    n += *v > -1;
                }
            }
        } else {
            const double *v = &e->recall[r_at(e, t, k0, (size_t)s.a, (size_t)s.m)];
            for (size_t k = k0; k < k1; k++, v += k_step) {
                buf[n] = *v;
                n += *v > -1;
            }
        }
    }
    return mean_of(buf, n);
}

/* np.where(iouThr == p.iouThrs): the threshold that compares equal (-2 when none). */
static long threshold_index(const ap_params *p, double v) {
    for (size_t t = 0; t < p->n_iou; t++)
        if (p->iou_thrs[t] == v)
            return (long)t;
    return -2;
}

static long area_index(const ap_params *p, const char *label) {
    for (size_t a = 0; a < p->n_areas; a++)
        if (strcmp(p->areas[a].label, label) == 0)
            return (long)a;
    return -1;
}

static long max_dets_index(const ap_params *p, uint32_t v) {
    for (size_t m = 0; m < p->n_max_dets; m++)
        if (p->max_dets[m] == v)
            return (long)m;
    return -1;
}

/* summarize()'s twelve rows; the first six, per class, are the per-class rows. */
static void stat_rows(const ap_params *p, row_sel rows[12]) {
    static const char *const area[12] = {"all", "all", "all", "small", "medium", "large",
                                         "all", "all", "all", "small", "medium", "large"};
    /* maxDets: 100 for the first row (a literal in summarize), then p.maxDets[0..2] */
    static const int md[12] = {-1, 2, 2, 2, 2, 2, 0, 1, 2, 2, 2, 2};
    for (int i = 0; i < 12; i++) {
        rows[i].ap = i < 6;
        rows[i].t = i == 1 ? threshold_index(p, .5) : i == 2 ? threshold_index(p, .75) : -1;
        rows[i].a = area_index(p, area[i]);
        rows[i].m = max_dets_index(p, md[i] < 0 ? 100 : p->max_dets[md[i]]);
    }
}

static void summarize_all(const ap_eval *e, ap_summary *s, double *buf) {
    row_sel rows[12];
    stat_rows(e->p, rows);
    for (int i = 0; i < 12; i++)
        s->stats[i] = summarize(e, rows[i], 0, e->d.K, buf);
    for (size_t k = 0; k < e->d.K; k++) {
        for (int i = 0; i < AP_CLASS_ROWS; i++)
            s->per_class_rows[k * AP_CLASS_ROWS + (size_t)i] = summarize(e, rows[i], k, k + 1, buf);
        s->per_class_ap[k] = s->per_class_rows[k * AP_CLASS_ROWS];
    }
}

static int accumulate_core(const ap_params *p, ap_dims d, const int32_t *class_ids, size_t n_images,
                           const uint8_t *const *records, const size_t *len, int want_arrays, int threads,
                           ap_summary *out) {
    ap_eval e;
    size_t K = d.K;
    part_list *lists = calloc(K * d.A + 1, sizeof *lists);
    memset(out, 0, sizeof *out);
    out->n_categories = K;
    out->dims = d;
    out->iou_lo = p->iou_thrs[0], out->iou_hi = p->iou_thrs[p->n_iou - 1];
    for (int i = 0; i < 3; i++)
        out->max_dets[i] = p->max_dets[i];
    out->per_class_ap = malloc((K + 1) * sizeof(double));
    out->per_class_rows = malloc((K * AP_CLASS_ROWS + 1) * sizeof(double));
    out->class_ids = malloc((K + 1) * sizeof(int32_t));
    int rc = eval_alloc(&e, p, d, want_arrays) == 0 && lists && out->per_class_ap && out->per_class_rows &&
                     out->class_ids
                 ? 0
                 : -1;
    if (rc == 0) {
        memcpy(out->class_ids, class_ids, K * sizeof(int32_t));
        rc = gather(K, d.A, n_images, records, len, lists);
    }
    if (rc == 0)
        rc = accumulate_classes(&e, lists, threads);
    double *buf = rc == 0 ? malloc((d.T * d.R * K + 1) * sizeof(double)) : NULL;
    if (rc == 0 && !buf)
        rc = -1;
    if (rc == 0)
        summarize_all(&e, out, buf);
    free(buf);
    free_lists(lists, K * d.A);
    if (rc == 0 && want_arrays) {
        out->precision = e.precision, out->recall = e.recall, out->scores = e.scores;
        e.precision = e.recall = e.scores = NULL;
    }
    eval_release(&e);
    if (rc != 0)
        ap_summary_release(out);
    return rc;
}

int ap_accumulate(const inst_dataset *gt, const uint8_t *const *records, const size_t *len, ap_summary *out,
                  avps_error *err) {
    ap_params *p = ap_params_new();
    int rc = -1;
    if (p) {
        ap_dims d = {p->n_iou, p->n_rec, gt->n_categories, p->n_areas, p->n_max_dets};
        rc = accumulate_core(p, d, gt->category_ids, gt->n_images, records, len, 0, 1, out);
    } else
        memset(out, 0, sizeof *out);
    ap_params_free(p);
    if (rc != 0)
        return avps_fail(err, "accumulating AP: out of memory or malformed records");
    return 0;
}

int ap_accumulate_params(const ap_index *ix, const uint8_t *const *records, const size_t *len, int want_arrays,
                         int threads, ap_summary *out, avps_error *err) {
    ap_dims d = ap_index_dims(ix);
    int32_t *ids = malloc((d.K + 1) * sizeof *ids);
    int rc = -1;
    if (ids) {
        for (size_t k = 0; k < d.K; k++)
            ids[k] = ap_index_class_id(ix, k);
        rc = accumulate_core(ap_index_params(ix), d, ids, ap_index_n_images(ix), records, len, want_arrays,
                            threads, out);
    } else
        memset(out, 0, sizeof *out);
    free(ids);
    if (rc != 0)
        return avps_fail(err, "accumulating AP: out of memory or malformed records");
    return 0;
}

/* Only the lists of area "all" are used; each class is accumulated alone, as a one-class
 * evaluation, and summarised as summarize_all does its per-class row. */
int ap_per_class(size_t n_categories, size_t n_images, const uint8_t *const *records, const size_t *len,
                 double *per_class_ap, avps_error *err) {
    ap_params *p = ap_params_new();
    size_t K = n_categories ? n_categories : 1;
    ap_eval e = {0};
    cell_scratch scratch = {0};
    part_list *lists = calloc(K * (p ? p->n_areas : 1), sizeof *lists);
    double *buf = p ? malloc((p->n_iou * p->n_rec + 1) * sizeof *buf) : NULL;
    int rc = p && lists && buf ? 0 : -1;
    if (rc == 0) {
        ap_dims d = {p->n_iou, p->n_rec, 1, p->n_areas, p->n_max_dets};
        rc = eval_alloc(&e, p, d, 0);
    }
    if (rc == 0)
        rc = gather(n_categories, p->n_areas, n_images, records, len, lists);
    row_sel row0 = {1, -1, 0, p ? (long)p->n_max_dets - 1 : 0};
    for (size_t k = 0; k < n_categories && rc == 0; k++) {
        size_t np_ = e.d.T * e.d.R * e.d.A * e.d.M;
        for (size_t i = 0; i < np_; i++)
            e.precision[i] = -1;
        rc = accumulate_area(&e, &scratch, &lists[k * e.d.A], 0, 0, e.d.M - 1, e.d.M);
        per_class_ap[k] = summarize(&e, row0, 0, 1, buf);
    }
    free_lists(lists, K * (p ? p->n_areas : 1));
    free(buf);
    scratch_release(&scratch);
    eval_release(&e);
    ap_params_free(p);
    if (rc != 0)
        return avps_fail(err, "accumulating per-class AP: out of memory or malformed records");
    return 0;
}

void ap_summary_release(ap_summary *s) {
    free(s->per_class_ap);
    free(s->per_class_rows);
    free(s->class_ids);
    free(s->precision);
    free(s->recall);
    free(s->scores);
    s->per_class_ap = s->per_class_rows = s->precision = s->recall = s->scores = NULL;
    s->class_ids = NULL;
}

/* ---- output --------------------------------------------------------------------------- */

void ap_print_summary(FILE *fp, const ap_summary *s, iou_type type) {
    static const char *const area[12] = {"all", "all", "all", "small", "medium", "large",
                                         "all", "all", "all", "small", "medium", "large"};
    static const int md[12] = {-1, 2, 2, 2, 2, 2, 0, 1, 2, 2, 2, 2};
    char range[64];
    snprintf(range, sizeof range, "%0.2f:%0.2f", s->iou_lo, s->iou_hi);
    fprintf(fp, "Evaluate annotation type *%s*\n", type == IOU_SEGM ? "segm" : "bbox");
    for (int i = 0; i < 12; i++)
        fprintf(fp, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3u ] = %0.3f\n",
                i < 6 ? "Average Precision" : "Average Recall", i < 6 ? "(AP)" : "(AR)",
                i == 1 ? "0.50" : i == 2 ? "0.75" : range, area[i], md[i] < 0 ? 100u : s->max_dets[md[i]],
                s->stats[i]);
}

static const char *const stat_names[12] = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                           "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

int ap_write_json(const char *path, const ap_summary *s, const inst_dataset *gt, avps_error *err) {
    (void)gt;
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    fputs("{\n  \"stats\": {", af.fp);
    for (int i = 0; i < 12; i++)
        fprintf(af.fp, "%s\"%s\": %.17g", i ? ", " : "", stat_names[i], s->stats[i]);
    /* per_class_AP, then the other AP rows per class, each its own map */
    for (int row = 0; row < AP_CLASS_ROWS; row++) {
        fprintf(af.fp, "},\n  \"per_class_%s\": {", stat_names[row]);
        for (size_t k = 0; k < s->n_categories; k++)
            fprintf(af.fp, "%s\n    \"%d\": %.17g", k ? "," : "", s->class_ids[k],
                    s->per_class_rows[k * AP_CLASS_ROWS + (size_t)row]);
        fputs("\n  ", af.fp);
    }
    fputs("}\n}\n", af.fp);
    return file_atomic_commit(&af, err);
}

int ap_write_npz(const char *path, const ap_summary *s, avps_error *err) {
    const ap_dims *d = &s->dims;
    if (!s->precision)
        return avps_fail(err, "%s: no arrays were kept to write", path);
    static const char *const names[3] = {"precision", "recall", "scores"};
    npy_array a[3] = {
        {NPY_F64, 5, {d->T, d->R, d->K, d->A, d->M}, s->precision, d->T * d->R * d->K * d->A * d->M * sizeof(double)},
        {NPY_F64, 4, {d->T, d->K, d->A, d->M, 0}, s->recall, d->T * d->K * d->A * d->M * sizeof(double)},
        {NPY_F64, 5, {d->T, d->R, d->K, d->A, d->M}, s->scores, d->T * d->R * d->K * d->A * d->M * sizeof(double)},
    };
    return npz_write(path, names, a, 3, err);
}
