/* ap_image.c: COCOeval.computeIoU and evaluateImg for one image: every category with
 * ground truth or detections there (or, without useCats, all of them as one), every area
 * range, the largest maxDets, and the quirks that make the answers pycocotools' (stable
 * sorts, IoU >= threshold, the crowd rule, ignored GT sorted last, a GT with id 0 never
 * counting as matched). */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

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
    const ap_params *p;
    ap_params *own;      /* the defaults, when the caller gave none */
    ap_dims dims;
    double *thr;         /* min(iouThrs[t], 1 - 1e-10), as evaluateImg */
    uint32_t max_det;    /* the largest maxDets */
    /* per GT category index: with useCats its k, else its place in p->cat_ids; -1 when
     * not evaluated */
    int32_t *k_of;
    int32_t *class_ids;  /* per k */
    uint8_t *img_on;     /* per image: evaluated (NULL: all) */
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

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The categories and images p names, which must be the ground truth's. */
static int resolve_ids(ap_index *ix, avps_error *err) {
    const inst_dataset *gt = ix->gt;
    const ap_params *p = ix->p;
    size_t n = p->cat_ids ? p->n_cat_ids : gt->n_categories;
    ix->k_of = malloc((gt->n_categories + 1) * sizeof *ix->k_of);
    ix->class_ids = malloc((n + 1) * sizeof *ix->class_ids);
    if (!ix->k_of || !ix->class_ids)
        return avps_fail(err, "out of memory");
    memcpy(ix->class_ids, p->cat_ids ? p->cat_ids : gt->category_ids, n * sizeof *ix->class_ids);
    if (p->use_cats) /* evaluate() takes np.unique(catIds) */
        qsort(ix->class_ids, n, sizeof *ix->class_ids, cmp_i32);
    for (size_t k = 0; k < gt->n_categories; k++)
        ix->k_of[k] = -1;
    for (size_t k = 0; k < n; k++) {
        long c = inst_category_index(gt, ix->class_ids[k]);
        if (c < 0)
            return avps_fail(err, "%s: --cat-ids: category %d is not among the ground truth's categories", gt->path,
                             (int)ix->class_ids[k]);
        ix->k_of[c] = (int32_t)k;
    }
    ix->dims.K = p->use_cats ? n : 1;
    if (!p->use_cats)
        ix->class_ids[0] = -1;
    if (!p->img_ids)
        return 0;
    if (!(ix->img_on = calloc(gt->n_images + 1, 1)))
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < p->n_img_ids; i++) {
        long m = inst_image_index(gt, p->img_ids[i]);
        if (m < 0)
            return avps_fail(err, "%s: --img-ids: image %lld is not among the ground truth's images", gt->path,
                             (long long)p->img_ids[i]);
        ix->img_on[m] = 1;
    }
    return 0;
}

ap_index *ap_index_new(const inst_dataset *gt, const inst_dataset *dt) {
    avps_error err;
    return ap_index_new_params(gt, dt, NULL, &err);
}

ap_index *ap_index_new_params(const inst_dataset *gt, const inst_dataset *dt, const ap_params *p, avps_error *err) {
    ap_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        avps_fail(err, "out of memory");
        return NULL;
    }
    ix->gt = gt;
    ix->dt = dt;
    ix->p = p ? p : (ix->own = ap_params_new());
    if (!ix->p || group_by_image(gt, gt, &ix->gt_start, &ix->gt_of) != 0 ||
        group_by_image(gt, dt, &ix->dt_start, &ix->dt_of) != 0 ||
        !(ix->thr = malloc((ix->p->n_iou + 1) * sizeof *ix->thr))) {
        avps_fail(err, "out of memory");
        ap_index_free(ix);
        return NULL;
    }
    p = ix->p;
    ix->dims = (ap_dims){p->n_iou, p->n_rec, 0, p->n_areas, p->n_max_dets};
    for (size_t t = 0; t < p->n_iou; t++)
        ix->thr[t] = p->iou_thrs[t] < 1 - 1e-10 ? p->iou_thrs[t] : 1 - 1e-10;
    ix->max_det = p->max_dets[p->n_max_dets - 1];
    if (resolve_ids(ix, err) != 0) {
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
    free(ix->thr);
    free(ix->k_of);
    free(ix->class_ids);
    free(ix->img_on);
    ap_params_free(ix->own);
    free(ix);
}

const ap_params *ap_index_params(const ap_index *ix) { return ix->p; }
ap_dims ap_index_dims(const ap_index *ix) { return ix->dims; }
size_t ap_index_n_images(const ap_index *ix) { return ix->gt->n_images; }
int32_t ap_index_class_id(const ap_index *ix, size_t k) { return ix->class_ids[k]; }

/* ---- one (image, category) ------------------------------------------------------------ */

typedef struct {
    const inst_annotation **gt, **dt; /* dt best score first, at most the largest maxDets */
    size_t n_gt, n_dt;
    double *iou;                      /* n_dt x n_gt, GT in file order */
    iou_type type;
    const ap_index *ix;
    rle_scratch *runs;                /* the image's room for decoding detections' masks */
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

/* Each mask's box (and each detection's area) is measured once, not once per pair. */
static int compute_ious(cat_work *w) {
    if (w->type != IOU_SEGM) {
        for (size_t d = 0; d < w->n_dt; d++)
            for (size_t g = 0; g < w->n_gt; g++)
                w->iou[d * w->n_gt + g] = bbox_iou(w->dt[d]->bbox, w->gt[g]->bbox, w->gt[g]->iscrowd);
        return 0;
    }
    if (w->n_gt == 0)
        return 0;
    double *boxes = malloc(((w->n_dt + w->n_gt) * 4 + 1) * sizeof *boxes);
    if (!boxes)
        return -1;
    double *gt_boxes = boxes + w->n_dt * 4;
    for (size_t g = 0; g < w->n_gt; g++)
        rle_bbox(&w->gt[g]->rle, gt_boxes + g * 4);
    for (size_t d = 0; d < w->n_dt; d++) {
        rle_mask decoded; /* a mask the loader kept compressed, decoded for this image only */
        const rle_mask *dm = inst_annotation_mask(w->dt[d], w->runs, &decoded);
        if (!dm) {
            free(boxes);
            return -1;
        }
        double *db = boxes + d * 4;
        rle_bbox(dm, db);
        uint64_t area = rle_area(dm);
        for (size_t g = 0; g < w->n_gt; g++)
            w->iou[d * w->n_gt + g] =
                rle_iou_boxed(dm, db, area, &w->gt[g]->rle, gt_boxes + g * 4, w->gt[g]->iscrowd);
    }
    free(boxes);
    return 0;
}

static int outside(double area, const ap_area_range *r) { return area < r->lo || area > r->hi; }

/* evaluateImg for one area range; order[] lists GT with non-ignored first. */
static int match_area(const cat_work *w, size_t a_index, uint32_t cat, size_t *order, uint8_t *gt_ignored,
                      uint8_t *gt_taken, ap_records *out) {
    const ap_area_range *a = &w->ix->p->areas[a_index];
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
    ap_record_head head = {cat, (uint32_t)a_index, kept, (uint32_t)w->n_dt};
    if (records_put(out, &head, sizeof head) != 0)
        return -1;
    ap_record_det *dets = calloc(w->n_dt + 1, sizeof *dets);
    if (!dets)
        return -1;
    for (size_t t = 0; t < w->ix->dims.T; t++) {
        memset(gt_taken, 0, w->n_gt);
        double thr = w->ix->thr[t];
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
            dets[d].matched |= (uint32_t)matched << t;
            dets[d].ignored |= (uint32_t)ignored << t;
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
        rc = compute_ious(w);
        for (size_t a = 0; a < w->ix->dims.A && rc == 0; a++)
            rc = match_area(w, a, cat, order, flags, flags + g + 1, out);
    }
    free(order);
    free(flags);
    free(w->iou);
    return rc;
}

/* The rank (k, or the place in catIds without useCats) of an annotation; -1: not evaluated. */
static int32_t rank_of(const ap_index *ix, const inst_annotation *a) {
    long c = inst_category_index(ix->gt, a->category_id);
    return c < 0 ? -1 : ix->k_of[c];
}

/* Stable sort by rank (few per image). */
static void sort_by_rank(const ap_index *ix, const inst_annotation **v, size_t n) {
    for (size_t i = 1; i < n; i++) {
        const inst_annotation *x = v[i];
        int32_t r = rank_of(ix, x);
        size_t j = i;
        while (j > 0 && rank_of(ix, v[j - 1]) > r) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static int eval_detections(cat_work *w, uint32_t k, ap_records *out) {
    sort_by_score(w->dt, w->n_dt);
    if (w->n_dt > w->ix->max_det)
        w->n_dt = w->ix->max_det;
    return eval_category(w, k, out);
}

/* useCats 0: the GT of the listed categories, in the order of catIds, as one class. */
static int eval_all_categories(const ap_index *ix, size_t image, cat_work *w, ap_records *out) {
    const inst_dataset *gt = ix->gt, *dt = ix->dt;
    for (size_t i = ix->gt_start[image]; i < ix->gt_start[image + 1]; i++)
        if (rank_of(ix, &gt->annotations[ix->gt_of[i]]) >= 0)
            w->gt[w->n_gt++] = &gt->annotations[ix->gt_of[i]];
    for (size_t i = ix->dt_start[image]; i < ix->dt_start[image + 1]; i++)
        if (rank_of(ix, &dt->annotations[ix->dt_of[i]]) >= 0)
            w->dt[w->n_dt++] = &dt->annotations[ix->dt_of[i]];
    if (w->n_gt == 0 && w->n_dt == 0)
        return 0;
    sort_by_rank(ix, w->gt, w->n_gt);
    sort_by_rank(ix, w->dt, w->n_dt);
    return eval_detections(w, 0, out);
}

int ap_image_eval(const ap_index *ix, size_t image, iou_type type, ap_records *out, avps_error *err) {
    const inst_dataset *gt = ix->gt, *dt = ix->dt;
    if (ix->img_on && !ix->img_on[image])
        return 0;
    const size_t *go = ix->gt_of + ix->gt_start[image], *dto = ix->dt_of + ix->dt_start[image];
    size_t ng = ix->gt_start[image + 1] - ix->gt_start[image], nd = ix->dt_start[image + 1] - ix->dt_start[image];
    const inst_annotation **gts = malloc((ng + 1) * sizeof *gts), **dts = malloc((nd + 1) * sizeof *dts);
    int rc = gts && dts ? 0 : -1;
    rle_scratch runs = {0};
    if (rc == 0 && !ix->p->use_cats) {
        cat_work w = {gts, dts, 0, 0, NULL, type, ix, &runs};
        rc = eval_all_categories(ix, image, &w, out);
        ng = nd = 0;
    }
    size_t i = 0, j = 0;
    while (rc == 0 && (i < ng || j < nd)) {
        /* the next category present in the image, GT or detection */
        int32_t c = i < ng ? gt->annotations[go[i]].category_id : dt->annotations[dto[j]].category_id;
        if (j < nd && dt->annotations[dto[j]].category_id < c)
            c = dt->annotations[dto[j]].category_id;
        cat_work w = {gts, dts, 0, 0, NULL, type, ix, &runs};
        for (; i < ng && gt->annotations[go[i]].category_id == c; i++)
            gts[w.n_gt++] = &gt->annotations[go[i]];
        for (; j < nd && dt->annotations[dto[j]].category_id == c; j++)
            dts[w.n_dt++] = &dt->annotations[dto[j]];
        long k = inst_category_index(gt, c);
        /* COCOeval evaluates the categories of the ground truth only, those of catIds */
        if (k < 0 || ix->k_of[k] < 0)
            continue;
        rc = eval_detections(&w, (uint32_t)ix->k_of[k], out);
    }
    free(gts);
    free(dts);
    rle_scratch_free(&runs);
    if (rc != 0)
        return avps_fail(err, "image %lld: out of memory", (long long)gt->images[image].id);
    return 0;
}
