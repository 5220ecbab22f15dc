/* ap_accumulate.c: COCOeval.accumulate and summarize on the records of all images, in
 * image-id order, with numpy's arithmetic: stable sorts by score, np.spacing(1) in the
 * precision, the precision envelope, searchsorted on the 101 recall points, and means
 * taken with numpy's pairwise summation, so the figures agree to the last bit. */
#include "eval.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static const int max_dets[AP_M] = {1, 10, 100};

/* np.linspace(0, 1, 101). */
static double recall_point(int r) { return r == AP_R - 1 ? 1.0 : (double)r * (1.0 / (AP_R - 1)) + 0.0; }

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

/* np.mean(s[s > -1]), or -1 when nothing is defined. numpy's reduction hands the inner
 * loop blocks of its buffer size (8192) and adds their pairwise sums in turn. */
static double mean_defined(double *vals, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (vals[i] > -1)
            vals[k++] = vals[i];
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
    size_t seq;
    uint16_t matched, ignored;
} flat_det;

static int flat_cmp(const void *a, const void *b) {
    const flat_det *x = a, *y = b;
    if (-x->score != -y->score)
        return -x->score < -y->score ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int gather(size_t k_total, size_t n_images, const uint8_t *const *records, const size_t *len,
                  part_list *lists) {
    for (size_t i = 0; i < n_images; i++)
        for (size_t off = 0; off + sizeof(ap_record_head) <= len[i];) {
            ap_record_head h;
            memcpy(&h, records[i] + off, sizeof h);
            off += sizeof h;
            if (h.cat >= k_total || h.area >= AP_A || h.n_dt > (len[i] - off) / sizeof(ap_record_det))
                return -1;
            part_list *l = &lists[h.cat * AP_A + h.area];
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

/* ---- accumulate ------------------------------------------------------------------- */

typedef struct {
    size_t K;
    double *precision; /* [T][R][K][A][M] */
    double *recall;    /* [T][K][A][M] */
} ap_eval;

static size_t p_at(const ap_eval *e, int t, int r, size_t k, int a, int m) {
    return ((((size_t)t * AP_R + (size_t)r) * e->K + k) * AP_A + (size_t)a) * AP_M + (size_t)m;
}
static size_t r_at(const ap_eval *e, int t, size_t k, int a, int m) {
    return (((size_t)t * e->K + k) * AP_A + (size_t)a) * AP_M + (size_t)m;
}

/* One threshold: cumulative TP/FP, the envelope and the sampled precision. */
static void precision_at(ap_eval *e, const flat_det *d, size_t nd, uint32_t npig, int t, size_t k, int a, int m,
                         double *pr, double *rc) {
    double tp = 0, fp = 0;
    for (size_t i = 0; i < nd; i++) {
        int ig = d[i].ignored >> t & 1, mt = d[i].matched >> t & 1;
        tp += mt && !ig;
        fp += !mt && !ig;
        rc[i] = tp / (double)npig;
        pr[i] = tp / (fp + tp + DBL_EPSILON);
    }
    e->recall[r_at(e, t, k, a, m)] = nd ? rc[nd - 1] : 0;
    for (size_t i = nd; i-- > 1;)
        if (pr[i] > pr[i - 1])
            pr[i - 1] = pr[i];
    size_t i = 0;
    for (int r = 0; r < AP_R; r++) {
        double thr = recall_point(r);
        while (i < nd && rc[i] < thr) /* searchsorted, side left */
            i++;
        e->precision[p_at(e, t, r, k, a, m)] = i < nd ? pr[i] : 0;
    }
}

static int accumulate_one(ap_eval *e, const part_list *l, size_t k, int a, int m) {
    size_t total = 0;
    uint32_t npig = 0;
    for (size_t i = 0; i < l->n; i++) {
        total += l->parts[i].n_dt < (uint32_t)max_dets[m] ? l->parts[i].n_dt : (uint32_t)max_dets[m];
        npig += l->parts[i].n_gt;
    }
    if (l->n == 0 || npig == 0)
        return 0;
    flat_det *d = malloc((total + 1) * sizeof *d);
    double *pr = malloc((total + 1) * sizeof *pr), *rc = malloc((total + 1) * sizeof *rc);
    if (!d || !pr || !rc) {
        free(d), free(pr), free(rc);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        for (uint32_t j = 0; j < l->parts[i].n_dt && j < (uint32_t)max_dets[m]; j++, n++) {
            const ap_record_det *s = &l->parts[i].dets[j];
            d[n] = (flat_det){s->score, n, s->matched, s->ignored};
        }
    qsort(d, n, sizeof *d, flat_cmp);
    for (int t = 0; t < AP_T; t++)
        precision_at(e, d, n, npig, t, k, a, m, pr, rc);
    free(d), free(pr), free(rc);
    return 0;
}

/* ---- summarize ------------------------------------------------------------------- */

/* The mean of precision (ap) or recall over the given threshold (or all when t < 0). */
static double summarize(const ap_eval *e, int ap, int t_only, int a, int m, double *buf) {
    size_t n = 0;
    for (int t = 0; t < AP_T; t++) {
        if (t_only >= 0 && t != t_only)
            continue;
        if (ap) {
            for (int r = 0; r < AP_R; r++)
                for (size_t k = 0; k < e->K; k++)
                    buf[n++] = e->precision[p_at(e, t, r, k, a, m)];
        } else {
            for (size_t k = 0; k < e->K; k++)
                buf[n++] = e->recall[r_at(e, t, k, a, m)];
        }
    }
    return mean_defined(buf, n);
}

/* np.where(iouThr == p.iouThrs) for .75: the threshold that compares equal. */
static int threshold_index(double v) {
    double step = (0.95 - 0.5) / (AP_T - 1);
    for (int t = 0; t < AP_T; t++)
        if ((t == AP_T - 1 ? 0.95 : (double)t * step + 0.5) == v)
            return t;
    return -1;
}

static void summarize_all(const ap_eval *e, ap_summary *s, double *buf) {
    static const struct {
        int ap, t, a, m;
    } rows[12] = {{1, -1, 0, 2}, {1, -2, 0, 2}, {1, -3, 0, 2}, {1, -1, 1, 2}, {1, -1, 2, 2}, {1, -1, 3, 2},
                  {0, -1, 0, 0}, {0, -1, 0, 1}, {0, -1, 0, 2}, {0, -1, 1, 2}, {0, -1, 2, 2}, {0, -1, 3, 2}};
    for (int i = 0; i < 12; i++) {
        int t = rows[i].t == -2 ? threshold_index(0.5) : rows[i].t == -3 ? threshold_index(0.75) : -1;
        s->stats[i] = summarize(e, rows[i].ap, t, rows[i].a, rows[i].m, buf);
    }
    for (size_t k = 0; k < e->K; k++) {
        size_t n = 0;
        for (int t = 0; t < AP_T; t++)
            for (int r = 0; r < AP_R; r++)
                buf[n++] = e->precision[p_at(e, t, r, k, 0, AP_M - 1)];
        s->per_class_ap[k] = mean_defined(buf, n);
    }
    for (int t = 0; t < AP_T; t++)
        for (int r = 0; r < AP_R; r++) {
            for (size_t k = 0; k < e->K; k++)
                buf[k] = e->precision[p_at(e, t, r, k, 0, AP_M - 1)];
            s->pr[t][r] = mean_defined(buf, e->K);
        }
}

int ap_accumulate(const inst_dataset *gt, const uint8_t *const *records, const size_t *len, ap_summary *out,
                  avps_error *err) {
    size_t K = gt->n_categories, np_ = (size_t)AP_T * AP_R * (K ? K : 1) * AP_A * AP_M;
    ap_eval e = {K, malloc(np_ * sizeof(double)), malloc((size_t)AP_T * (K ? K : 1) * AP_A * AP_M * sizeof(double))};
    part_list *lists = calloc((K ? K : 1) * AP_A, sizeof *lists);
    memset(out, 0, sizeof *out);
    out->n_categories = K;
    out->per_class_ap = malloc((K ? K : 1) * sizeof(double));
    int rc = e.precision && e.recall && lists && out->per_class_ap ? 0 : -1;
    if (rc == 0) {
        for (size_t i = 0; i < np_; i++)
            e.precision[i] = -1;
        for (size_t i = 0; i < (size_t)AP_T * K * AP_A * AP_M; i++)
            e.recall[i] = -1;
        rc = gather(K, gt->n_images, records, len, lists);
    }
    for (size_t k = 0; k < K && rc == 0; k++)
        for (int a = 0; a < AP_A && rc == 0; a++)
            for (int m = 0; m < AP_M && rc == 0; m++)
                rc = accumulate_one(&e, &lists[k * AP_A + a], k, a, m);
    double *buf = rc == 0 ? malloc(np_ * sizeof(double)) : NULL;
    if (rc == 0 && !buf)
        rc = -1;
    if (rc == 0)
        summarize_all(&e, out, buf);
    free(buf);
    for (size_t i = 0; lists && i < K * AP_A; i++)
        free(lists[i].parts);
    free(lists);
    free(e.precision);
    free(e.recall);
    if (rc != 0) {
        ap_summary_release(out);
        return avps_fail(err, "accumulating AP: out of memory or malformed records");
    }
    return 0;
}

/* Only the lists of area "all" are used; each class is accumulated alone, as a one-class
 * evaluation, and summarised as summarize_all does its per-class row. */
int ap_per_class(size_t n_categories, size_t n_images, const uint8_t *const *records, const size_t *len,
                 double *per_class_ap, avps_error *err) {
    size_t K = n_categories ? n_categories : 1, np_ = (size_t)AP_T * AP_R * AP_A * AP_M;
    ap_eval e = {1, malloc(np_ * sizeof(double)), malloc((size_t)AP_T * AP_A * AP_M * sizeof(double))};
    part_list *lists = calloc(K * AP_A, sizeof *lists);
    double *buf = malloc((size_t)AP_T * AP_R * sizeof *buf);
    int rc = e.precision && e.recall && lists && buf ? 0 : -1;
    if (rc == 0)
        rc = gather(n_categories, n_images, records, len, lists);
    for (size_t k = 0; k < n_categories && rc == 0; k++) {
        for (size_t i = 0; i < np_; i++)
            e.precision[i] = -1;
        rc = accumulate_one(&e, &lists[k * AP_A], 0, 0, AP_M - 1);
        size_t n = 0;
        for (int t = 0; t < AP_T; t++)
            for (int r = 0; r < AP_R; r++)
                buf[n++] = e.precision[p_at(&e, t, r, 0, 0, AP_M - 1)];
        per_class_ap[k] = mean_defined(buf, n);
    }
    for (size_t i = 0; lists && i < K * AP_A; i++)
        free(lists[i].parts);
    free(lists);
    free(buf);
    free(e.precision);
    free(e.recall);
    if (rc != 0)
        return avps_fail(err, "accumulating per-class AP: out of memory or malformed records");
    return 0;
}

void ap_summary_release(ap_summary *s) {
    free(s->per_class_ap);
    s->per_class_ap = NULL;
}

/* ---- output --------------------------------------------------------------------------- */

void ap_print_summary(FILE *fp, const ap_summary *s, iou_type type) {
    static const struct {
        int ap;
        const char *iou, *area;
        int dets;
    } rows[12] = {{1, "0.50:0.95", "all", 100},   {1, "0.50", "all", 100},      {1, "0.75", "all", 100},
                  {1, "0.50:0.95", "small", 100}, {1, "0.50:0.95", "medium", 100}, {1, "0.50:0.95", "large", 100},
                  {0, "0.50:0.95", "all", 1},     {0, "0.50:0.95", "all", 10},     {0, "0.50:0.95", "all", 100},
                  {0, "0.50:0.95", "small", 100}, {0, "0.50:0.95", "medium", 100}, {0, "0.50:0.95", "large", 100}};
    fprintf(fp, "Evaluate annotation type *%s*\n", type == IOU_SEGM ? "segm" : "bbox");
    for (int i = 0; i < 12; i++)
        fprintf(fp, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                rows[i].ap ? "Average Precision" : "Average Recall", rows[i].ap ? "(AP)" : "(AR)", rows[i].iou,
                rows[i].area, rows[i].dets, s->stats[i]);
}

static const char *const stat_names[12] = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                           "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

int ap_write_json(const char *path, const ap_summary *s, const inst_dataset *gt, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    fputs("{\n  \"stats\": {", af.fp);
    for (int i = 0; i < 12; i++)
        fprintf(af.fp, "%s\"%s\": %.17g", i ? ", " : "", stat_names[i], s->stats[i]);
    fputs("},\n  \"per_class_AP\": {", af.fp);
    for (size_t k = 0; k < s->n_categories; k++)
        fprintf(af.fp, "%s\n    \"%d\": %.17g", k ? "," : "", gt->category_ids[k], s->per_class_ap[k]);
    fputs("\n  }\n}\n", af.fp);
    return file_atomic_commit(&af, err);
}
