/* ap_image.c: COCOeval.computeIoU and evaluateImg for one image: every category with
 * ground truth or detections there, the four area ranges, maxDets 100, and the quirks
 * that make the answers pycocotools' (stable sorts, IoU >= threshold, the crowd rule,
 * ignored GT sorted last, a GT with id 0 never counting as matched). */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DETS 100

/* The area ranges of COCOeval, bounds inclusive. */
static const double area_lo[AP_A] = {0, 0, 32 * 32, 96 * 96};
static const double area_hi[AP_A] = {1e10, 32 * 32, 96 * 96, 1e10};

/* np.linspace(.5, .95, 10): i * step + start, the last one exactly .95. */
static double iou_threshold(int t) {
    if (t == AP_T - 1)
        return 0.95;
    double step = (0.95 - 0.5) / (AP_T - 1);
    return (double)t * step + 0.5;
}

void ap_records_release(ap_records *r) {
    free(r->data);
    r->data = NULL;
    r->len = r->cap = 0;
}

static int records_put(ap_records *r, const void *p, size_t n) {
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        uint8_t *d = realloc(r->data, cap);
        if (!d)
            return -1;
        r->data = d;
        r->cap = cap;
    }
    memcpy(r->data + r->len, p, n);
    r->len += n;
    return 0;
}

/* ---- annotations by image and category -------------------------------------------------- */

struct ap_index {
    const inst_dataset *gt, *dt;
    /* for image i: gt_of[gt_start[i] .. gt_start[i+1]) index gt->annotations, sorted by
     * category then file order; the same for detections */
    size_t *gt_start, *gt_of, *dt_start, *dt_of;
};

typedef struct {
    const inst_annotation *anns;
    const inst_dataset *gt;
} by_cat_ctx;

/* Groups annotation indexes by image (counting sort keeps file order). */
static int group_by_image(const inst_dataset *gt, const inst_dataset *ds, size_t **start, size_t **of) {
    size_t n = gt->n_images;
    *start = calloc(n + 2, sizeof **start);
    *of = malloc((ds->n_annotations + 1) * sizeof **of);
    if (!*start || !*of)
        return -1;
    for (size_t i = 0; i < ds->n_annotations; i++)
        (*start)[inst_image_index(gt, ds->annotations[i].image_id) + 2]++;
    for (size_t i = 2; i < n + 2; i++)
        (*start)[i] += (*start)[i - 1];
    for (size_t i = 0; i < ds->n_annotations; i++)
        (*of)[(*start)[inst_image_index(gt, ds->annotations[i].image_id) + 1]++] = i;
    return 0;
}

/* Within an image, sorts by category, keeping file order (insertion sort: few per image). */
static void sort_by_category(const inst_dataset *ds, size_t *idx, size_t n) {
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        int32_t c = ds->annotations[v].category_id;
        while (j > 0 && ds->annotations[idx[j - 1]].category_id > c) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

ap_index *ap_index_new(const inst_dataset *gt, const inst_dataset *dt) {
    ap_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->gt = gt;
    ix->dt = dt;
    if (group_by_image(gt, gt, &ix->gt_start, &ix->gt_of) != 0 ||
        group_by_image(gt, dt, &ix->dt_start, &ix->dt_of) != 0) {
        ap_index_free(ix);
        return NULL;
    }
    for (size_t i = 0; i < gt->n_images; i++) {
        sort_by_category(gt, ix->gt_of + ix->gt_start[i], ix->gt_start[i + 1] - ix->gt_start[i]);
        sort_by_category(dt, ix->dt_of + ix->dt_start[i], ix->dt_start[i + 1] - ix->dt_start[i]);
    }
    return ix;
}

void ap_index_free(ap_index *ix) {
    if (!ix)
        return;
    free(ix->gt_start);
    free(ix->gt_of);
    free(ix->dt_start);
    free(ix->dt_of);
    free(ix);
}

/* ---- one (image, category) ------------------------------------------------------------ */

typedef struct {
    const inst_annotation **gt, **dt; /* dt best score first, at most MAX_DETS */
    size_t n_gt, n_dt;
    double *iou;                      /* n_dt x n_gt, GT in file order */
    iou_type type;
} cat_work;

/* Stable sort of detections by descending score (numpy's mergesort argsort of -score). */
static void sort_by_score(const inst_annotation **d, size_t n) {
    for (size_t i = 1; i < n; i++) {
        const inst_annotation *v = d[i];
        size_t j = i;
        while (j > 0 && -d[j - 1]->score > -v->score) {
            d[j] = d[j - 1];
            j--;
        }
        d[j] = v;
    }
}

static void compute_ious(cat_work *w) {
    for (size_t d = 0; d < w->n_dt; d++)
        for (size_t g = 0; g < w->n_gt; g++)
            w->iou[d * w->n_gt + g] = w->type == IOU_SEGM
                                          ? rle_iou(&w->dt[d]->rle, &w->gt[g]->rle, w->gt[g]->iscrowd)
                                          : bbox_iou(w->dt[d]->bbox, w->gt[g]->bbox, w->gt[g]->iscrowd);
}

static int outside(double area, int a) { return area < area_lo[a] || area > area_hi[a]; }

/* evaluateImg for one area range; order[] lists GT with non-ignored first. */
static int match_area(const cat_work *w, int a, uint32_t cat, size_t *order, uint8_t *gt_ignored,
                      uint8_t *gt_taken, ap_records *out) {
    size_t n = 0;
    uint32_t kept = 0;
    for (int pass = 0; pass < 2; pass++) /* stable: non-ignored first, then ignored */
        for (size_t g = 0; g < w->n_gt; g++) {
            int ig = w->gt[g]->iscrowd || outside(w->gt[g]->area, a);
            if (ig == pass)
                order[n++] = g;
        }
    for (size_t j = 0; j < w->n_gt; j++) {
        gt_ignored[j] = w->gt[order[j]]->iscrowd || outside(w->gt[order[j]]->area, a);
        kept += !gt_ignored[j];
    }
    ap_record_head head = {cat, (uint32_t)a, kept, (uint32_t)w->n_dt};
    if (records_put(out, &head, sizeof head) != 0)
        return -1;
    ap_record_det *dets = calloc(w->n_dt + 1, sizeof *dets);
    if (!dets)
        return -1;
    for (int t = 0; t < AP_T; t++) {
        memset(gt_taken, 0, w->n_gt);
        double thr = iou_threshold(t) < 1 - 1e-10 ? iou_threshold(t) : 1 - 1e-10;
        for (size_t d = 0; d < w->n_dt; d++) {
            double best = thr;
            long m = -1;
            for (size_t j = 0; j < w->n_gt; j++) {
                if (gt_taken[j] && !w->gt[order[j]]->iscrowd)
                    continue;
                if (m > -1 && !gt_ignored[m] && gt_ignored[j])
                    break;
                double v = w->iou[d * w->n_gt + order[j]];
                if (v < best)
                    continue;
                best = v;
                m = (long)j;
            }
            int matched = m >= 0 && w->gt[order[m]]->id != 0;
            int ignored = (m >= 0 && gt_ignored[m]) || (!matched && outside(w->dt[d]->area, a));
            if (m >= 0)
                gt_taken[m] = 1;
            dets[d].matched |= (uint16_t)(matched << t);
            dets[d].ignored |= (uint16_t)(ignored << t);
        }
    }
    for (size_t d = 0; d < w->n_dt; d++)
        dets[d].score = w->dt[d]->score;
    int rc = records_put(out, dets, w->n_dt * sizeof *dets);
    free(dets);
    return rc;
}

static int eval_category(cat_work *w, uint32_t cat, ap_records *out) {
    size_t g = w->n_gt;
    size_t *order = malloc((g + 1) * sizeof *order);
    uint8_t *flags = malloc(2 * g + 2);
    w->iou = malloc((w->n_dt * g + 1) * sizeof *w->iou);
    int rc = -1;
    if (order && flags && w->iou) {
        compute_ious(w);
        rc = 0;
        for (int a = 0; a < AP_A && rc == 0; a++)
            rc = match_area(w, a, cat, order, flags, flags + g + 1, out);
    }
    free(order);
    free(flags);
    free(w->iou);
    return rc;
}

int ap_image_eval(const ap_index *ix, size_t image, iou_type type, ap_records *out, avps_error *err) {
    const inst_dataset *gt = ix->gt, *dt = ix->dt;
    const size_t *go = ix->gt_of + ix->gt_start[image], *dto = ix->dt_of + ix->dt_start[image];
    size_t ng = ix->gt_start[image + 1] - ix->gt_start[image], nd = ix->dt_start[image + 1] - ix->dt_start[image];
    const inst_annotation **gts = malloc((ng + 1) * sizeof *gts), **dts = malloc((nd + 1) * sizeof *dts);
    int rc = gts && dts ? 0 : -1;
    size_t i = 0, j = 0;
    while (rc == 0 && (i < ng || j < nd)) {
        /* the next category present in the image, GT or detection */
        int32_t c = i < ng ? gt->annotations[go[i]].category_id : dt->annotations[dto[j]].category_id;
        if (j < nd && dt->annotations[dto[j]].category_id < c)
            c = dt->annotations[dto[j]].category_id;
        cat_work w = {gts, dts, 0, 0, NULL, type};
        for (; i < ng && gt->annotations[go[i]].category_id == c; i++)
            gts[w.n_gt++] = &gt->annotations[go[i]];
        for (; j < nd && dt->annotations[dto[j]].category_id == c; j++)
            dts[w.n_dt++] = &dt->annotations[dto[j]];
        long k = inst_category_index(gt, c);
        if (k < 0) /* COCOeval evaluates the categories of the ground truth only */
            continue;
        sort_by_score(dts, w.n_dt);
        if (w.n_dt > MAX_DETS)
            w.n_dt = MAX_DETS;
        rc = eval_category(&w, (uint32_t)k, out);
    }
    free(gts);
    free(dts);
    if (rc != 0)
        return avps_fail(err, "image %lld: out of memory", (long long)gt->images[image].id);
    return 0;
}
