/* combine_upsnet.c: UPSNet's parameter-free panoptic head (Xiong et al., CVPR 2019) as a
 * combiner of the fused SS and the selected instances, for one image: class-agnostic box
 * NMS, mask removal, then per pixel the argmax over [stuff logits | per instance, its
 * class's semantic logit in its box plus its mask logit | unknown], computed a row at a
 * time. What we take from UPSNet's test code and where we differ: docs/algorithms.md,
 * "UPSNet combiner". */
#include "fuse_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Probabilities below this count as this, so that their log is finite. */
#define PROB_FLOOR 1e-6f
/* Soft mask probabilities are clamped to [MASK_CLAMP, 1 - MASK_CLAMP] before the logit
 * (about -13.8 .. 13.8), so that a hard 0 or 1 stays finite. */
#define MASK_CLAMP 1e-6

typedef struct {
    size_t item;               /* index into the selected instances */
    long cat;                  /* category index */
    uint32_t x0, y0, x1, y1;   /* the box's pixels, [x0, x1) x [y0, y1) */
    float *logit;              /* (y1 - y0) x (x1 - x0) mask logits, row-major */
} upsnet_instance;

typedef struct {
    const fusion_params *p;
    const fusion_input *in;
    const fused_instances *fi;
    upsnet_instance *kept;
    size_t n_kept;
    float log_c; /* log of the number of categories: a logit is 0 at chance, 1 / C */
} upsnet_state;

/* ---- which instances: score order, class-agnostic NMS, mask removal --------------- */

typedef struct {
    double score;
    size_t index;
} scored_item;

static int scored_item_cmp(const void *a, const void *b) {
    const scored_item *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Box IoU with UPSNet's (Detectron's) pixel-inclusive areas: (x2 - x1 + 1)(y2 - y1 + 1). */
static double box_iou(const double *a, const double *b) {
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]) + 1, ih = fmin(a[3], b[3]) - fmax(a[1], b[1]) + 1;
    if (iw <= 0 || ih <= 0)
        return 0;
    double inter = iw * ih;
    double area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
    return inter / (area_a + area_b - inter);
}

/* Greedy NMS over all classes: an instance is dropped when its box overlaps a kept one
 * by IoU > nms_thr; at most max_instances stay. Writes their indexes in score order. */
static size_t nms_class_agnostic(const upsnet_state *st, const scored_item *order, size_t *kept) {
    size_t n = 0;
    for (size_t k = 0; k < st->fi->n && n < st->p->upsnet.max_instances; k++) {
        const double *box = st->fi->from[order[k].index]->box;
        int keep = 1;
        for (size_t j = 0; j < n && keep; j++)
            keep = box_iou(st->fi->from[kept[j]]->box, box) <= st->p->upsnet.nms_thr;
        if (keep)
            kept[n++] = order[k].index;
    }
    return n;
}

/* Mask removal: in score order, an instance whose mask is empty, or of which more than
 * removal_thr is already covered by kept instances of its class, is dropped. Keeps the
 * survivors' indexes in place; returns their number, or -1 when out of memory. */
static long mask_removal(const upsnet_state *st, size_t *items, size_t n) {
    size_t n_cat = st->in->n_categories, kept = 0;
    rle_mask *taken = calloc(n_cat + 1, sizeof *taken); /* per class: its kept masks' union */
    long rc = taken ? 0 : -1;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const rle_mask *m = &st->fi->items[items[k]].mask;
        long cat = st->fi->category_index[items[k]];
        uint64_t area = rle_area(m), covered = 0;
        rle_mask left, grown;
        if (area == 0)
            continue;
        if (taken[cat].m > 0) {
            if (mask_minus(m, &taken[cat], &left) != 0) {
                rc = -1;
                break;
            }
            covered = area - rle_area(&left);
            rle_free(&left);
        }
        if ((double)covered / (double)area > st->p->upsnet.removal_thr)
            continue;
        if (taken[cat].m == 0)
            rc = mask_none(m->h, m->w, &taken[cat]);
        if (rc == 0 && mask_union(&taken[cat], m, &grown) != 0)
            rc = -1;
        if (rc == 0) {
            rle_free(&taken[cat]);
            taken[cat] = grown;
            items[kept++] = items[k];
        }
    }
    for (size_t c = 0; taken && c < n_cat; c++)
        rle_free(&taken[c]);
    free(taken);
    return rc == 0 ? (long)kept : -1;
}

/* ---- each kept instance's box and mask logits --------------------------------------- */

/* Pastes the soft mask into prob (the image) with the head's convention. The instance's
 * box is the rectangle the paste writes (found by filling the image with -1 first): the
 * box's integer pixels, as UPSNet crops them, in whichever convention the head follows.
 * Keeps the logits of the box's pixels. */
static int instance_logits(upsnet_instance *u, const is_instance *x, uint32_t h, uint32_t w, float *prob) {
    for (size_t i = 0; i < (size_t)h * w; i++)
        prob[i] = -1;
    if (mask_paste(x->soft, x->soft_h, x->soft_w, x->box, x->paste, h, w, prob) != 0)
        return -2;
    u->x0 = w, u->y0 = h, u->x1 = 0, u->y1 = 0;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t i = 0; i < w; i++)
            if (prob[(size_t)y * w + i] >= 0) {
                u->x0 = i < u->x0 ? i : u->x0, u->x1 = i + 1 > u->x1 ? i + 1 : u->x1;
                u->y0 = y < u->y0 ? y : u->y0, u->y1 = y + 1;
            }
    if (u->x1 <= u->x0 || u->y1 <= u->y0)
        u->x0 = u->x1 = u->y0 = u->y1 = 0; /* pastes nothing */
    uint32_t bw = u->x1 - u->x0, bh = u->y1 - u->y0;
    if (!(u->logit = malloc((size_t)bw * bh * sizeof *u->logit + 1)))
        return -1;
    for (uint32_t y = 0; y < bh; y++)
        for (uint32_t i = 0; i < bw; i++) {
            double q = prob[(size_t)(u->y0 + y) * w + u->x0 + i];
            q = q < MASK_CLAMP ? MASK_CLAMP : q > 1 - MASK_CLAMP ? 1 - MASK_CLAMP : q;
            u->logit[(size_t)y * bw + i] = (float)log(q / (1 - q));
        }
    return 0;
}

static int prepare_kept(upsnet_state *st, const size_t *items, size_t n, avps_error *err) {
    const fusion_input *in = st->in;
    float *prob = malloc((size_t)in->h * in->w * sizeof *prob);
    st->kept = calloc(n + 1, sizeof *st->kept);
    if (!prob || !st->kept) {
        free(prob);
        return avps_fail(err, "image %s: out of memory", in->image_id);
    }
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        upsnet_instance *u = &st->kept[st->n_kept++];
        const fusion_instance *fx = &st->fi->items[items[k]];
        u->item = items[k];
        u->cat = st->fi->category_index[items[k]];
        rc = instance_logits(u, st->fi->from[items[k]], in->h, in->w, prob);
        if (rc == -2)
            avps_fail(err, "image %s: end %d: cannot paste the soft mask of a category %d instance", in->image_id,
                      fx->end, fx->category_id);
        else if (rc != 0)
            avps_fail(err, "image %s: out of memory", in->image_id);
    }
    free(prob);
    return rc == 0 ? 0 : -1;
}

/* ---- the panoptic logits, a row at a time ------------------------------------------- */

static float logit_of(float prob, float log_c) { return logf(prob > PROB_FLOOR ? prob : PROB_FLOOR) + log_c; }

typedef struct {
    float *probs;     /* n_categories x w */
    float *inst_best; /* per pixel: the best instance logit, and which */
    uint32_t *inst_label;
    float *cover_max; /* the highest semantic logit among instances whose box covers it */
    uint32_t *cover_n;
} row_buffers;

/* Instance channels of row y: its class's semantic logit plus its mask logit, in its box. */
static void row_instances(const upsnet_state *st, uint32_t y, row_buffers *b) {
    uint32_t w = st->in->w;
    size_t n_cat = st->in->n_categories;
    for (uint32_t x = 0; x < w; x++)
        b->inst_best[x] = -INFINITY, b->inst_label[x] = FUSE_LABEL_NONE, b->cover_max[x] = -INFINITY, b->cover_n[x] = 0;
    for (size_t k = 0; k < st->n_kept; k++) {
        const upsnet_instance *u = &st->kept[k];
        if (y < u->y0 || y >= u->y1)
            continue;
        const float *sem = b->probs + (size_t)u->cat * w;
        const float *mask = u->logit + (size_t)(y - u->y0) * (u->x1 - u->x0);
        for (uint32_t x = u->x0; x < u->x1; x++) {
            float s = logit_of(sem[x], st->log_c), v = s + mask[x - u->x0];
            b->cover_max[x] = fmaxf(b->cover_max[x], s);
            b->cover_n[x]++;
            if (v > b->inst_best[x]) /* ties: the earlier (better scored) instance */
                b->inst_best[x] = v, b->inst_label[x] = (uint32_t)(n_cat + k);
        }
    }
}

/* The argmax of one pixel, first channel on ties as torch.max: stuff, then instances,
 * then unknown (VOID). */
static uint32_t pixel_label(const upsnet_state *st, const row_buffers *b, uint32_t x) {
    const fusion_input *in = st->in;
    uint32_t w = in->w, stuff = FUSE_LABEL_NONE;
    float stuff_p = -1, thing_p = -1, total = 0;
    for (size_t c = 0; c < in->n_categories; c++) {
        float q = b->probs[c * w + x];
        total += q;
        if (in->categories[c].isthing) {
            if (q > thing_p)
                thing_p = q;
        } else if (q > stuff_p) {
            stuff_p = q, stuff = (uint32_t)c;
        }
    }
    if (total <= 0)
        return FUSE_LABEL_NONE; /* no semantic prediction here at all */
    float best = stuff == FUSE_LABEL_NONE ? -INFINITY : logit_of(stuff_p, st->log_c);
    uint32_t label = stuff;
    if (b->inst_best[x] > best)
        best = b->inst_best[x], label = b->inst_label[x];
    /* UPSNet's instance term is 0 outside the instance's box, so the max over instances
     * is at least 0 unless every instance covers the pixel. */
    float inst_max = b->cover_n[x] < st->n_kept ? fmaxf(b->cover_max[x], 0) : b->cover_max[x];
    if (st->n_kept == 0)
        inst_max = 0;
    float unknown = thing_p < 0 ? -INFINITY : logit_of(thing_p, st->log_c) - inst_max;
    return unknown > best ? FUSE_LABEL_NONE : label;
}

static int panoptic_labels(const upsnet_state *st, fused_ss *ss, uint32_t *labels, avps_error *err) {
    const fusion_input *in = st->in;
    uint32_t w = in->w;
    row_buffers b = {malloc(in->n_categories * w * sizeof(float) + 1), malloc(w * sizeof(float)),
                     malloc(w * sizeof(uint32_t)), malloc(w * sizeof(float)), malloc(w * sizeof(uint32_t))};
    int rc = 0;
    if (!b.probs || !b.inst_best || !b.inst_label || !b.cover_max || !b.cover_n)
        rc = avps_fail(err, "image %s: out of memory", in->image_id);
    for (uint32_t y = 0; rc == 0 && y < in->h; y++) {
        fused_ss_row(ss, y, b.probs);
        row_instances(st, y, &b);
        for (uint32_t x = 0; x < w; x++)
            labels[(size_t)y * w + x] = pixel_label(st, &b, x);
    }
    free(b.probs), free(b.inst_best), free(b.inst_label), free(b.cover_max), free(b.cover_n);
    return rc;
}

/* ---- segments: instances in score order, then stuff in category order ----------------- */

static int build_segments(const upsnet_state *st, rle_mask *masks, fusion_panoptic *out) {
    const fusion_input *in = st->in;
    size_t n_cat = in->n_categories, cap = 0;
    for (size_t k = 0; k < st->n_kept; k++) {
        rle_mask *m = &masks[n_cat + k];
        if (m->m > 0 && fuse_panoptic_append(out, &cap, st->fi->items[st->kept[k].item].category_id, m) != 0)
            return -1;
    }
    for (size_t c = 0; c < n_cat; c++) {
        rle_mask *m = &masks[c];
        if (m->m == 0 || rle_area(m) < st->p->heuristic.stuff_area_limit)
            continue; /* below the area limit: VOID */
        if (fuse_panoptic_append(out, &cap, in->categories[c].id, m) != 0)
            return -1;
    }
    return 0;
}

static int select_instances(upsnet_state *st, avps_error *err) {
    size_t n = st->fi->n;
    scored_item *order = malloc((n + 1) * sizeof *order);
    size_t *items = malloc((n + 1) * sizeof *items);
    int rc = 0;
    if (!order || !items) {
        rc = avps_fail(err, "image %s: out of memory", st->in->image_id);
    } else {
        for (size_t i = 0; i < n; i++)
            order[i] = (scored_item){st->fi->items[i].score, i};
        qsort(order, n, sizeof *order, scored_item_cmp);
        long kept = mask_removal(st, items, nms_class_agnostic(st, order, items));
        rc = kept < 0 ? avps_fail(err, "image %s: out of memory", st->in->image_id)
                      : prepare_kept(st, items, (size_t)kept, err);
    }
    free(order);
    free(items);
    return rc;
}

int combine_upsnet(const fusion_params *p, const fusion_input *in, fused_ss *ss, const fused_instances *fi,
                   fusion_panoptic *out, avps_error *err) {
    upsnet_state st = {p, in, fi, NULL, 0, logf((float)in->n_categories)};
    size_t n_labels = in->n_categories + fi->n;
    uint32_t *labels = NULL;
    rle_mask *masks = NULL;
    int rc = select_instances(&st, err);
    if (rc == 0) {
        labels = malloc((size_t)in->h * in->w * sizeof *labels);
        masks = calloc(n_labels + 1, sizeof *masks);
        if (!labels || !masks)
            rc = avps_fail(err, "image %s: out of memory", in->image_id);
    }
    if (rc == 0)
        rc = panoptic_labels(&st, ss, labels, err);
    if (rc == 0 && fuse_labels_to_masks(labels, in->h, in->w, in->n_categories + st.n_kept, masks) != 0)
        rc = avps_fail(err, "image %s: out of memory", in->image_id);
    if (rc == 0 && build_segments(&st, masks, out) != 0)
        rc = avps_fail(err, "image %s: out of memory, or more segments than ids", in->image_id);
    for (size_t l = 0; masks && l < n_labels; l++)
        rle_free(&masks[l]);
    free(masks);
    free(labels);
    for (size_t k = 0; k < st.n_kept; k++)
        free(st.kept[k].logit);
    free(st.kept);
    return rc;
}
