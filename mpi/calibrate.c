/* calibrate.c: the class table from a held-out split. Ranks run every end on their
 * images (calibrate_image.c); the root turns the records into each end's per-class
 * metric, the table, the regret on the evaluation split and the bootstrap over held-out
 * images. */
#include "calibrate_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- before the job: what is refused on every rank ----------------------------------- */

static int same_categories(const pan_dataset *a, const pan_dataset *b, avps_error *err) {
    int same = a->n_categories == b->n_categories;
    for (size_t k = 0; same && k < a->n_categories; k++)
        same = a->categories[k].id == b->categories[k].id && a->categories[k].isthing == b->categories[k].isthing;
    return same ? 0 : avps_fail(err, "%s and %s have different categories (ids, order or isthing)", a->path, b->path);
}

static int disjoint(const pan_dataset *heldout, const pan_dataset *eval, avps_error *err) {
    for (size_t i = 0; i < eval->n_annotations; i++)
        if (pan_dataset_find_annotation(heldout, eval->annotations[i].image_id))
            return avps_fail(err,
                             "image %s is in both %s (held-out) and %s (evaluation): the splits must not share an "
                             "image",
                             eval->annotations[i].image_id, heldout->path, eval->path);
    return 0;
}

static int check_inputs(const calib_params *p, size_t n_ends, const calib_split *heldout, const calib_split *eval,
                        avps_error *err) {
    if (strcmp(p->metric, "mask_ap") != 0 && strcmp(p->metric, "pq_th") != 0)
        return avps_fail(err, "calibrate: unknown metric '%s' (mask_ap or pq_th)", p->metric);
    if (n_ends < 1)
        return avps_fail(err, "calibrate: no ends given");
    if (heldout->ds->n_annotations == 0)
        return avps_fail(err, "%s: the held-out split has no images", heldout->ds->path);
    if (eval && (same_categories(heldout->ds, eval->ds, err) != 0 || disjoint(heldout->ds, eval->ds, err) != 0))
        return -1;
    for (size_t k = 0; k < heldout->ds->n_categories; k++)
        if (heldout->ds->categories[k].isthing)
            return 0;
    return avps_fail(err, "%s: no thing category: there is nothing to calibrate", heldout->ds->path);
}

/* ---- on the root: records to scores ----------------------------------------------------- */

/* One split's records: recs[e * n + i], lens[e * n + i] for end e and image i, images in
 * image-id order (numeric when every id is an integer, as COCOeval sorts them; dataset
 * order otherwise), and the non-crowd instances count[i * n_things + k] (k sorted). */
typedef struct {
    size_t n;
    const uint8_t **recs;
    size_t *lens;
    uint32_t *count;
} split_records;

typedef struct {
    long long id;
    size_t index;
} id_order;

static int id_order_cmp(const void *a, const void *b) {
    const id_order *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int order_by_id(const pan_dataset *ds, size_t *order) {
    size_t n = ds->n_annotations;
    id_order *o = malloc((n + 1) * sizeof *o);
    if (!o)
        return -1;
    int numeric = 1;
    for (size_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        o[i] = (id_order){strtoll(ds->annotations[i].image_id, &end, 10), i};
        numeric &= !errno && end != ds->annotations[i].image_id && *end == '\0';
    }
    if (numeric)
        qsort(o, n, sizeof *o, id_order_cmp);
    for (size_t i = 0; i < n; i++)
        order[i] = numeric ? o[i].index : i;
    free(o);
    return 0;
}

static void split_records_release(split_records *s) {
    free(s->recs);
    free(s->lens);
    free(s->count);
}

/* Adds the image's non-crowd instances to count (per sorted category): the area-"all"
 * n_gt of AP records, or the matches and false negatives of PQ events. */
static void count_instances(int pq, const uint8_t *rec, size_t len, size_t n_things, uint32_t *count) {
    for (size_t off = 0; pq && off + sizeof(pq_thing_event) <= len; off += sizeof(pq_thing_event)) {
        pq_thing_event e;
        memcpy(&e, rec + off, sizeof e);
        if (e.cat < n_things && e.kind != PQ_FP)
            count[e.cat]++;
    }
    for (size_t off = 0; !pq && off + sizeof(ap_record_head) <= len;) {
        ap_record_head h;
        memcpy(&h, rec + off, sizeof h);
        off += sizeof h + h.n_dt * sizeof(ap_record_det);
        if (h.area == 0 && h.cat < n_things)
            count[h.cat] += h.n_gt;
    }
}

static int gather_split(const calib_job *cj, const job_blob *blobs, int s, split_records *out) {
    const pan_dataset *ds = cj->split[s]->ds;
    size_t n = cj->n_split[s], first = s ? cj->n_split[0] : 0, ne = cj->n_ends;
    size_t *order = malloc((n + 1) * sizeof *order);
    *out = (split_records){n, malloc((n * ne + 1) * sizeof *out->recs), malloc((n * ne + 1) * sizeof *out->lens),
                           calloc(n * cj->n_things + 1, sizeof *out->count)};
    int rc = order && out->recs && out->lens && out->count ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) /* PQ: dataset order, as pq_compute adds images */
        order[i] = i;
    if (rc == 0 && !cj->pq) /* AP: image-id order, as COCOeval */
        rc = order_by_id(ds, order);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const job_blob *b = &blobs[first + order[i]];
        size_t off = 0;
        for (size_t e = 0; e < ne; e++) {
            uint64_t len;
            memcpy(&len, b->data + off, sizeof len);
            out->recs[e * n + i] = b->data + off + sizeof len;
            out->lens[e * n + i] = (size_t)len;
            off += sizeof len + (size_t)len;
        }
        count_instances(cj->pq, out->recs[i], out->lens[i], cj->n_things, out->count + i * cj->n_things);
    }
    free(order);
    return rc;
}

/* Per-class PQ of one end on the images picked, from their events in order: the IoUs
 * are summed as pq_compute sums them. NAN where TP + FP + FN = 0, as panopticapi leaves
 * such a class out. */
static int pq_per_class(const split_records *sr, size_t e, const size_t *pick, size_t n_pick, size_t n_things,
                        double *pq, avps_error *err) {
    pq_class_stat *st = calloc(n_things + 1, sizeof *st);
    if (!st)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n_pick; i++) {
        const uint8_t *rec = sr->recs[e * sr->n + pick[i]];
        size_t len = sr->lens[e * sr->n + pick[i]];
        for (size_t off = 0; off + sizeof(pq_thing_event) <= len; off += sizeof(pq_thing_event)) {
            pq_thing_event ev;
            memcpy(&ev, rec + off, sizeof ev);
            if (ev.cat >= n_things)
                continue;
            st[ev.cat].tp += ev.kind == PQ_TP;
            st[ev.cat].fp += ev.kind == PQ_FP;
            st[ev.cat].fn += ev.kind == PQ_FN;
            if (ev.kind == PQ_TP)
                st[ev.cat].iou += ev.iou;
        }
    }
    for (size_t k = 0; k < n_things; k++) {
        double sq, rq;
        pq_class_ratios(&st[k], &pq[k], &sq, &rq);
        if (st[k].tp + st[k].fp + st[k].fn == 0)
            pq[k] = -1;
    }
    free(st);
    return 0;
}

/* Per-class AP of every end on the images picked (indexes into sr, repeats allowed),
 * into score[c * n_ends + e] for table class c (sorted_of[c] its sorted index); and the
 * instance counts per class. */
static int score_images(const calib_job *cj, const split_records *sr, const size_t *pick, size_t n_pick,
                        const size_t *sorted_of, size_t n_classes, double *score, uint64_t *count, avps_error *err) {
    const uint8_t **recs = malloc((n_pick + 1) * sizeof *recs);
    size_t *lens = malloc((n_pick + 1) * sizeof *lens);
    double *ap = malloc((cj->n_things + 1) * sizeof *ap);
    int rc = recs && lens && ap ? 0 : avps_fail(err, "out of memory");
    for (size_t e = 0; rc == 0 && e < cj->n_ends; e++) {
        for (size_t i = 0; i < n_pick; i++) {
            recs[i] = sr->recs[e * sr->n + pick[i]];
            lens[i] = sr->lens[e * sr->n + pick[i]];
        }
        rc = cj->pq ? pq_per_class(sr, e, pick, n_pick, cj->n_things, ap, err)
                    : ap_per_class(cj->n_things, n_pick, recs, lens, ap, err);
        for (size_t c = 0; rc == 0 && c < n_classes; c++)
            score[c * cj->n_ends + e] = ap[sorted_of[c]] > -1 ? ap[sorted_of[c]] : NAN;
    }
    for (size_t c = 0; rc == 0 && c < n_classes; c++) {
        count[c] = 0;
        for (size_t i = 0; i < n_pick; i++)
            count[c] += sr->count[pick[i] * cj->n_things + sorted_of[c]];
    }
    free(recs);
    free(lens);
    free(ap);
    return rc;
}

/* ---- on the root: regret and bootstrap ------------------------------------------------- */

/* The mean over the classes counted (an evaluation instance, every end defined) of the
 * evaluation score of each class's end (chosen[c]; or the best end with chosen NULL). */
static double eval_mean(const class_table *t, const calib_report *r, const int *chosen, int single) {
    double sum = 0;
    size_t n = 0;
    for (size_t c = 0; c < t->n_classes; c++) {
        const double *row = r->eval_score + c * t->n_ends;
        int defined = r->n_eval[c] > 0;
        for (size_t e = 0; e < t->n_ends; e++)
            defined &= !isnan(row[e]);
        if (!defined)
            continue;
        double v = single >= 0 ? row[single] : chosen ? row[chosen[c]] : row[0];
        for (size_t e = 1; !chosen && single < 0 && e < t->n_ends; e++)
            v = row[e] > v ? row[e] : v;
        sum += v;
        n++;
    }
    return n ? sum / (double)n : NAN;
}

static void regret(const class_table *t, calib_report *r) {
    r->n_eval_classes = 0;
    for (size_t c = 0; c < t->n_classes; c++)
        r->n_eval_classes += r->n_eval[c] > 0;
    r->mean_table = eval_mean(t, r, t->chosen, -1);
    r->mean_oracle = eval_mean(t, r, NULL, -1);
    r->regret = r->mean_oracle - r->mean_table;
    r->best_single = 0;
    for (size_t e = 0; e < t->n_ends; e++) {
        r->mean_end[e] = eval_mean(t, r, NULL, (int)e);
        if (r->mean_end[e] > r->mean_end[r->best_single])
            r->best_single = (int)e;
    }
    r->gain = r->mean_table - r->mean_end[r->best_single];
}

/* splitmix64: a small, well-mixed generator whose stream depends on the seed only. */
static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n): draws above the last multiple of n are redrawn (no modulo bias). */
static size_t draw_below(uint64_t *state, size_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do
        v = splitmix64(state);
    while (v >= limit);
    return (size_t)(v % n);
}

static int size_cmp(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int double_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's default: linear between the order statistics around q (n - 1). */
static double percentile(const double *sorted, size_t n, double q) {
    double pos = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

static void bootstrap_summary(calib_report *r) {
    size_t b = r->bootstrap;
    double *g = malloc((b + 1) * sizeof *g);
    double sum = 0, rsum = 0;
    size_t pos = 0;
    for (size_t i = 0; i < b; i++) {
        sum += r->boot_gain[i];
        rsum += r->boot_regret[i];
        pos += r->boot_gain[i] > 0;
    }
    r->gain_mean = sum / (double)b;
    r->regret_mean = rsum / (double)b;
    r->gain_positive = (double)pos / (double)b;
    r->gain_p5 = r->gain_p95 = NAN;
    if (g) {
        memcpy(g, r->boot_gain, b * sizeof *g);
        qsort(g, b, sizeof *g, double_cmp);
        r->gain_p5 = percentile(g, b, 5);
        r->gain_p95 = percentile(g, b, 95);
    }
    free(g);
}

/* B tables, each from a resample with replacement of the held-out images (sorted, so
 * that the records keep image-id order and repeats sit together). */
static int bootstrap(const calib_job *cj, const split_records *held, const size_t *sorted_of, const class_table *t,
                     calib_report *r, avps_error *err) {
    class_table bt;
    size_t n = held->n;
    size_t *pick = malloc((n + 1) * sizeof *pick);
    int rc = class_table_init(&bt, t->metric, (const char *const *)t->end_names, t->n_ends, t->n_classes, err);
    if (rc == 0 && !pick)
        rc = avps_fail(err, "out of memory");
    uint64_t state = r->seed;
    for (size_t b = 0; rc == 0 && b < r->bootstrap; b++) {
        for (size_t i = 0; i < n; i++)
            pick[i] = draw_below(&state, n);
        qsort(pick, n, sizeof *pick, size_cmp);
        bt.min_instances = t->min_instances;
        memcpy(bt.category_id, t->category_id, t->n_classes * sizeof *bt.category_id);
        rc = score_images(cj, held, pick, n, sorted_of, t->n_classes, bt.score, bt.n_heldout, err);
        if (rc == 0)
            rc = class_table_choose(&bt, err);
        for (size_t c = 0; rc == 0 && c < t->n_classes; c++)
            r->agreement[c] += bt.chosen[c] == t->chosen[c];
        if (rc == 0 && r->has_eval) {
            double m = eval_mean(t, r, bt.chosen, -1);
            r->boot_gain[b] = m - r->mean_end[r->best_single];
            r->boot_regret[b] = r->mean_oracle - m;
        }
    }
    for (size_t c = 0; rc == 0 && c < t->n_classes; c++)
        r->agreement[c] /= (double)r->bootstrap;
    if (rc == 0 && r->has_eval && r->bootstrap > 0)
        bootstrap_summary(r);
    if (bt.n_classes || bt.end_names)
        class_table_release(&bt);
    free(pick);
    return rc;
}

/* ---- on the root: putting it together ------------------------------------------------- */

static int report_alloc(calib_report *r, size_t n_classes, size_t n_ends, avps_error *err) {
    size_t nc = n_classes + 1, b = r->bootstrap + 1;
    r->eval_score = malloc(nc * n_ends * sizeof *r->eval_score);
    r->n_eval = calloc(nc, sizeof *r->n_eval);
    r->mean_end = calloc(n_ends + 1, sizeof *r->mean_end);
    r->boot_gain = calloc(b, sizeof *r->boot_gain);
    r->boot_regret = calloc(b, sizeof *r->boot_regret);
    r->agreement = calloc(nc, sizeof *r->agreement);
    if (!r->eval_score || !r->n_eval || !r->mean_end || !r->boot_gain || !r->boot_regret || !r->agreement)
        return avps_fail(err, "out of memory");
    return 0;
}

/* A given table's choices (classes in the same thing order: both read for ds). */
static void keep_choices(const class_table *given, class_table *t) {
    t->overall_best = given->overall_best;
    t->min_instances = given->min_instances;
    for (size_t c = 0; c < t->n_classes && c < given->n_classes; c++) {
        t->chosen[c] = given->chosen[c];
        t->fallback[c] = given->fallback[c];
    }
}

static int build(const calib_job *cj, const calib_params *p, const job_blob *blobs, class_table *t, calib_report *r,
                 avps_error *err) {
    const pan_dataset *ds = cj->split[0]->ds;
    split_records held = {0}, ev = {0};
    size_t *sorted_of = malloc((cj->n_things + 1) * sizeof *sorted_of), *all = NULL;
    const char **names = malloc(cj->n_ends * sizeof *names);
    int rc = sorted_of && names ? 0 : avps_fail(err, "out of memory");
    for (size_t e = 0; rc == 0 && e < cj->n_ends; e++)
        names[e] = head_name(cj->ends[e]);
    if (rc == 0)
        rc = class_table_init(t, p->metric, names, cj->n_ends, cj->n_things, err);
    for (size_t k = 0, c = 0; rc == 0 && k < ds->n_categories; k++)
        if (ds->categories[k].isthing) {
            t->category_id[c] = ds->categories[k].id;
            sorted_of[c++] = (size_t)((const int32_t *)bsearch(&ds->categories[k].id, cj->thing_ids, cj->n_things,
                                                               sizeof(int32_t), calib_int32_cmp) - cj->thing_ids);
        }
    t->min_instances = p->min_instances;
    r->bootstrap = p->bootstrap;
    r->seed = p->seed;
    r->n_heldout_images = cj->n_split[0];
    r->n_eval_images = cj->n_split[1];
    r->has_eval = cj->split[1] != NULL;
    size_t n_all = cj->n_split[0] > cj->n_split[1] ? cj->n_split[0] : cj->n_split[1];
    if (rc == 0 && (report_alloc(r, t->n_classes, t->n_ends, err) != 0 || !(all = malloc((n_all + 1) * sizeof *all))))
        rc = avps_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < n_all; i++)
        all[i] = i;
    if (rc == 0 && (gather_split(cj, blobs, 0, &held) != 0 || (r->has_eval && gather_split(cj, blobs, 1, &ev) != 0)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0)
        rc = score_images(cj, &held, all, held.n, sorted_of, t->n_classes, t->score, t->n_heldout, err);
    if (rc == 0)
        rc = class_table_choose(t, err);
    if (rc == 0 && p->given)
        keep_choices(p->given, t);
    if (rc == 0 && r->has_eval) {
        rc = score_images(cj, &ev, all, ev.n, sorted_of, t->n_classes, r->eval_score, r->n_eval, err);
        if (rc == 0)
            regret(t, r);
    }
    if (rc == 0 && p->bootstrap > 0)
        rc = bootstrap(cj, &held, sorted_of, t, r, err);
    split_records_release(&held);
    split_records_release(&ev);
    free(sorted_of);
    free(names);
    free(all);
    return rc;
}

static void calib_job_release(calib_job *cj, size_t n_threads) {
    for (size_t i = 0; cj->scratch && i < n_threads; i++)
        pq_scratch_free(cj->scratch[i]);
    free(cj->scratch);
    free(cj->thing_ids);
}

int calibrate_run(avps_job *job, const calib_params *p, head *const *ends, size_t n_ends, const calib_split *heldout,
                  const calib_split *eval, class_table *table, calib_report *report, avps_error *err) {
    memset(table, 0, sizeof *table);
    memset(report, 0, sizeof *report);
    if (check_inputs(p, n_ends, heldout, eval, err) != 0)
        return -1;
    const pan_dataset *ds = heldout->ds;
    calib_job cj = {ends, n_ends, {heldout, eval}, {ds->n_annotations, eval ? eval->ds->n_annotations : 0}, 0,
                    malloc((ds->n_categories + 1) * sizeof(int32_t)), 0, NULL};
    if (!cj.thing_ids)
        return avps_fail(err, "out of memory");
    for (size_t k = 0; k < ds->n_categories; k++)
        if (ds->categories[k].isthing)
            cj.thing_ids[cj.n_things++] = ds->categories[k].id;
    qsort(cj.thing_ids, cj.n_things, sizeof *cj.thing_ids, calib_int32_cmp);
    size_t n_threads = p->threads > 0 ? (size_t)p->threads : 1;
    cj.pq = strcmp(p->metric, "pq_th") == 0;
    if (cj.pq && !(cj.scratch = calloc(n_threads, sizeof *cj.scratch))) {
        free(cj.thing_ids);
        return avps_fail(err, "out of memory");
    }
    for (size_t i = 0; cj.pq && i < n_threads; i++)
        if (!(cj.scratch[i] = pq_scratch_new())) {
            calib_job_release(&cj, n_threads);
            return avps_fail(err, "out of memory");
        }
    size_t n_items = cj.n_split[0] + cj.n_split[1];
    job_blob *blobs = progress_map(job, n_items, (int)n_threads, calib_image, &cj,
                                   p->what ? p->progress : PROGRESS_NONE, p->what);
    int rc = blobs ? build(&cj, p, blobs, table, report, err) : 0;
    if (blobs)
        job_blobs_free(blobs, n_items);
    calib_job_release(&cj, n_threads);
    if (rc != 0) {
        class_table_release(table);
        calib_report_release(report);
    }
    return rc;
}

void calib_report_release(calib_report *r) {
    free(r->eval_score);
    free(r->n_eval);
    free(r->mean_end);
    free(r->boot_gain);
    free(r->boot_regret);
    free(r->agreement);
    memset(r, 0, sizeof *r);
}
