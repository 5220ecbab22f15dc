/* ensemble_is.c: the instance half of an ensemble. mmdetection ensembles Mask R-CNN ends
 * on shared proposals (merge_aug_bboxes, merge_aug_masks); stored outputs share none, so
 * this groups the members' overlapping instances instead:
 *   1. every member's instances, pooled in order of weight x score (ties: member, then
 *      its own order); a member of weight 0 has no say;
 *   2. greedily, the first instance not yet grouped seeds a group, and each other
 *      member adds its ungrouped instance of the seed's class with the highest mask IoU
 *      with the seed, when that IoU is above group_iou: one instance per member at most;
 *   3. a group scores sum(weight x score) over its instances, the weights normalised
 *      over all members, so a member that missed the object counts 0; a group of one
 *      keeps its instance as it is, a larger one gets the union of its members' boxes
 *      and a 28x28 soft mask in it, the mean of the members' pasted masks weighted over
 *      the members present (a miss adds nothing to the mask);
 *   4. class-wise NMS on mask IoU (nms_iou), best score first, and the top max_instances. */
#include "ensemble_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_MASK_SIZE 28

typedef struct {
    size_t member, index;
    double key;    /* weight x score: the order in which instances seed groups */
    rle_mask mask; /* the binary mask at image size, for IoU */
    int taken;
} pooled;

typedef struct {
    size_t seed;     /* the position of its seed in the pool: the tie order */
    is_instance inst;
    rle_mask mask;
} group;

static const is_instance *pooled_instance(const head_output *members, const pooled *p) {
    return &members[p->member].instances[p->index];
}

static int by_key(const void *a, const void *b) {
    const pooled *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    if (x->member != y->member)
        return x->member < y->member ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_group_score(const void *a, const void *b) {
    const group *x = a, *y = b;
    if (x->inst.score != y->inst.score)
        return x->inst.score > y->inst.score ? -1 : 1;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

/* IoU of two binary masks; 0 when either is empty (rle_iou gives NaN there). */
static double mask_iou(const rle_mask *a, const rle_mask *b) {
    double v = rle_iou(a, b, 0);
    return v > 0 ? v : 0;
}

/* Frees and empties: a group may be released twice (dropped, then swept up). */
static void group_release(group *g) {
    free(g->inst.soft);
    rle_free(&g->inst.mask);
    rle_free(&g->mask);
    *g = (group){0};
}

/* ---- pooling ------------------------------------------------------------------------- */

static int pool_make(const head_output *members, const double *weights, const char *const *names, size_t n,
                     uint32_t h, uint32_t w, pooled **out, size_t *count, avps_error *err) {
    size_t total = 0;
    for (size_t m = 0; m < n; m++)
        total += members[m].n_instances;
    pooled *pool = calloc(total + 1, sizeof *pool);
    if (!pool)
        return avps_fail(err, "out of memory");
    size_t k = 0;
    int rc = 0;
    for (size_t m = 0; m < n && rc == 0; m++)
        for (size_t i = 0; i < members[m].n_instances && rc == 0 && weights[m] > 0; i++, k++) {
            const is_instance *inst = &members[m].instances[i];
            pool[k] = (pooled){m, i, weights[m] * inst->score, {0}, 0};
            if (!isfinite(inst->score))
                rc = avps_fail(err, "member %s, instance %zu: score %g", names[m], i, inst->score);
            else if (is_instance_mask(inst, h, w, &pool[k].mask, err) != 0)
                rc = avps_prefix(err, "member %s, instance %zu", names[m], i);
        }
    if (rc != 0) {
        for (size_t i = 0; i < total; i++)
            rle_free(&pool[i].mask);
        free(pool);
        return -1;
    }
    qsort(pool, k, sizeof *pool, by_key);
    *out = pool, *count = k;
    return 0;
}

/* Step 2: the pool positions of the seed's group, seed first, members in pool order. */
static size_t group_gather(const head_output *members, pooled *pool, size_t count, size_t seed, size_t n,
                           double group_iou, size_t *best, double *best_iou, size_t *parts) {
    const is_instance *s = pooled_instance(members, &pool[seed]);
    for (size_t m = 0; m < n; m++)
        best[m] = SIZE_MAX, best_iou[m] = group_iou;
    for (size_t q = seed + 1; q < count; q++) {
        const pooled *p = &pool[q];
        if (p->taken || p->member == pool[seed].member || pooled_instance(members, p)->category_id != s->category_id)
            continue;
        double iou = mask_iou(&p->mask, &pool[seed].mask);
        if (iou > best_iou[p->member]) /* strictly: the earlier of equal IoUs stays */
            best[p->member] = q, best_iou[p->member] = iou;
    }
    size_t k = 0;
    parts[k++] = seed;
    pool[seed].taken = 1;
    for (size_t q = seed + 1; q < count; q++)
        if (best[pool[q].member] == q)
            parts[k++] = q, pool[q].taken = 1;
    return k;
}

/* ---- a group's mask ------------------------------------------------------------------ */

/* Writes value over the on pixels of a binary mask (column-major runs). */
static void runs_fill(const rle_mask *m, float *image, float value) {
    size_t pos = 0;
    for (size_t r = 0; r < m->m; pos += m->cnts[r++])
        if (r % 2)
            for (size_t p = pos; p < pos + m->cnts[r]; p++)
                image[(p % m->h) * m->w + p / m->h] = value;
}

static float pixel(const float *image, uint32_t h, uint32_t w, long x, long y) {
    return x < 0 || y < 0 || x >= (long)w || y >= (long)h ? 0.0f : image[(size_t)y * w + (size_t)x];
}

/* Adds weight x the image's probabilities at the 28x28 cell centres of box to acc. */
static void sample_cells(const float *image, uint32_t h, uint32_t w, const double box[4], double weight, double *acc) {
    double cw = (box[2] - box[0]) / GROUP_MASK_SIZE, ch = (box[3] - box[1]) / GROUP_MASK_SIZE;
    for (int i = 0; i < GROUP_MASK_SIZE; i++) {
        double py = box[1] + (i + 0.5) * ch - 0.5; /* pixel centres lie at integer + 0.5 */
        double y0 = floor(py), fy = py - y0;
        for (int j = 0; j < GROUP_MASK_SIZE; j++) {
            double px = box[0] + (j + 0.5) * cw - 0.5, x0 = floor(px), fx = px - x0;
            long xi = (long)x0, yi = (long)y0;
            double top = pixel(image, h, w, xi, yi) * (1 - fx) + pixel(image, h, w, xi + 1, yi) * fx;
            double bottom = pixel(image, h, w, xi, yi + 1) * (1 - fx) + pixel(image, h, w, xi + 1, yi + 1) * fx;
            acc[i * GROUP_MASK_SIZE + j] += weight * (top * (1 - fy) + bottom * fy);
        }
    }
}

/* Pastes one member's instance into the zeroed scratch image, samples it in box and
 * zeroes the scratch image again. */
static int part_sample(const is_instance *inst, const rle_mask *mask, float *scratch, uint32_t h, uint32_t w,
                       const double box[4], double weight, double *acc) {
    if (!inst->soft) {
        runs_fill(mask, scratch, 1.0f);
        sample_cells(scratch, h, w, box, weight, acc);
        runs_fill(mask, scratch, 0.0f);
        return 0;
    }
    uint32_t r[4];
    is_instance_paste_rect(inst, h, w, r);
    int rc = mask_paste(inst->soft, inst->soft_h, inst->soft_w, inst->box, inst->paste, h, w, scratch);
    if (rc == 0)
        sample_cells(scratch, h, w, box, weight, acc);
    for (uint32_t y = r[1]; y < r[3]; y++)
        memset(scratch + (size_t)y * w + r[0], 0, (r[2] - r[0]) * sizeof *scratch);
    return rc;
}

/* The box an instance's mask lies in: its own box, or a binary mask's bounding box. */
static int part_box(const is_instance *inst, const rle_mask *mask, double box[4]) {
    if (inst->soft) {
        box[0] = fmin(inst->box[0], inst->box[2]), box[2] = fmax(inst->box[0], inst->box[2]);
        box[1] = fmin(inst->box[1], inst->box[3]), box[3] = fmax(inst->box[1], inst->box[3]);
        return 1;
    }
    double b[4];
    rle_bbox(mask, b);
    box[0] = b[0], box[1] = b[1], box[2] = b[0] + b[2], box[3] = b[1] + b[3];
    return b[2] > 0 && b[3] > 0;
}

static int copy_instance(const is_instance *src, is_instance *dst) {
    *dst = *src;
    dst->soft = NULL, dst->mask = (rle_mask){src->mask.h, src->mask.w, 0, NULL};
    if (src->soft) {
        size_t cells = (size_t)src->soft_h * src->soft_w;
        if (!(dst->soft = malloc(cells * sizeof *dst->soft + 1)))
            return -1;
        memcpy(dst->soft, src->soft, cells * sizeof *dst->soft);
        return 0;
    }
    if (src->mask.m && !(dst->mask.cnts = malloc(src->mask.m * sizeof *dst->mask.cnts)))
        return -1;
    if (src->mask.m)
        memcpy(dst->mask.cnts, src->mask.cnts, src->mask.m * sizeof *dst->mask.cnts);
    dst->mask.m = src->mask.m;
    return 0;
}

/* Step 3: the group's instance from its parts (pool positions). */
static int group_build(const head_output *members, const double *weights, const char *const *names, pooled *pool,
                       const size_t *parts, size_t k, float *scratch, uint32_t h, uint32_t w, group *g,
                       avps_error *err) {
    const is_instance *first = pooled_instance(members, &pool[parts[0]]);
    g->seed = parts[0];
    double score = 0;
    for (size_t i = 0; i < k; i++)
        score += weights[pool[parts[i]].member] * pooled_instance(members, &pool[parts[i]])->score;
    if (k == 1) {
        if (copy_instance(first, &g->inst) != 0)
            return avps_fail(err, "out of memory");
        g->inst.score = score;
        g->mask = pool[parts[0]].mask; /* moved: the pool no longer needs it */
        pool[parts[0]].mask = (rle_mask){0};
        return 0;
    }
    double box[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY}, b[4], acc[GROUP_MASK_SIZE * GROUP_MASK_SIZE] = {0};
    double present = 0;
    for (size_t i = 0; i < k; i++)
        if (part_box(pooled_instance(members, &pool[parts[i]]), &pool[parts[i]].mask, b))
            box[0] = fmin(box[0], b[0]), box[1] = fmin(box[1], b[1]), box[2] = fmax(box[2], b[2]),
            box[3] = fmax(box[3], b[3]);
    g->inst = (is_instance){first->category_id, score, {box[0], box[1], box[2], box[3]}, NULL, GROUP_MASK_SIZE,
                            GROUP_MASK_SIZE, PASTE_DETECTRON2, {0}};
    if (!(g->inst.soft = malloc(sizeof acc / sizeof acc[0] * sizeof *g->inst.soft)))
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < k; i++) {
        const pooled *p = &pool[parts[i]];
        if (part_sample(pooled_instance(members, p), &p->mask, scratch, h, w, box, weights[p->member], acc) != 0)
            return avps_fail(err, "member %s, instance %zu: its soft mask cannot be pasted", names[p->member],
                             p->index);
        present += weights[p->member];
    }
    /* fp16 values, as a store keeps them: an ensemble written to a store replays exactly */
    for (size_t c = 0; c < sizeof acc / sizeof acc[0]; c++)
        g->inst.soft[c] = float_from_half(half_from_float((float)(acc[c] / present)));
    return is_instance_mask(&g->inst, h, w, &g->mask, err);
}

/* ---- the whole ----------------------------------------------------------------------- */

/* Step 4: keeps the groups (sorted) that no better group of their class overlaps by
 * more than nms_iou, up to max; returns how many, moved to the front. */
static size_t groups_suppress(group *g, size_t n, double nms_iou, size_t max) {
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < max; i++) {
        int drop = 0;
        for (size_t j = 0; j < kept && !drop; j++)
            drop = g[j].inst.category_id == g[i].inst.category_id && mask_iou(&g[j].mask, &g[i].mask) > nms_iou;
        if (drop) {
            group_release(&g[i]);
            continue;
        }
        group moved = g[i];
        g[i] = (group){0};
        g[kept++] = moved;
    }
    for (size_t i = kept; i < n; i++)
        group_release(&g[i]);
    return kept;
}

int ensemble_is_merge(const head_output *members, const double *weights, const char *const *names, size_t n,
                      const ensemble_options *opt, head_output *out, avps_error *err) {
    uint32_t h = out->height, w = out->width;
    pooled *pool = NULL;
    size_t count = 0, n_groups = 0;
    if (pool_make(members, weights, names, n, h, w, &pool, &count, err) != 0)
        return -1;
    group *groups = calloc(count + 1, sizeof *groups);
    size_t *best = malloc(n * sizeof *best), *parts = malloc(n * sizeof *parts);
    double *best_iou = malloc(n * sizeof *best_iou);
    float *scratch = calloc((size_t)h * w + 1, sizeof *scratch); /* zero between uses */
    int rc = groups && best && parts && best_iou && scratch ? 0 : avps_fail(err, "out of memory");
    for (size_t s = 0; s < count && rc == 0; s++) {
        if (pool[s].taken)
            continue;
        size_t k = group_gather(members, pool, count, s, n, opt->group_iou, best, best_iou, parts);
        rc = group_build(members, weights, names, pool, parts, k, scratch, h, w, &groups[n_groups++], err);
    }
    if (rc == 0) {
        qsort(groups, n_groups, sizeof *groups, by_group_score);
        n_groups = groups_suppress(groups, n_groups, opt->nms_iou, opt->max_instances);
        out->instances = calloc(n_groups + 1, sizeof *out->instances);
        rc = out->instances ? 0 : avps_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n_groups; i++) {
        if (rc == 0) {
            out->instances[out->n_instances++] = groups[i].inst;
            groups[i].inst = (is_instance){0};
        }
        group_release(&groups[i]);
    }
    for (size_t i = 0; i < count; i++)
        rle_free(&pool[i].mask);
    free(pool);
    free(groups);
    free(best);
    free(parts);
    free(best_iou);
    free(scratch);
    return rc;
}
