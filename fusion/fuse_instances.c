/* fuse_instances.c: the instance side of the task-dependent level: each thing
 * category's instances from the end the class table names, kept when they reach their
 * end's confidence threshold, with their binary masks as RLE. */
#include "fuse_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fused_instances_release(fused_instances *fi) {
    for (size_t i = 0; i < fi->n; i++)
        rle_free(&fi->items[i].mask);
    free(fi->items);
    free(fi->from);
    free(fi->category_index);
    memset(fi, 0, sizeof *fi);
}

/* Every thing category's entry names an end that exists, or -1. */
static int check_table(const fusion_input *in, avps_error *err) {
    if (!in->is_end_of_category)
        return 0;
    for (size_t c = 0; c < in->n_categories; c++) {
        int e = in->is_end_of_category[c];
        if (in->categories[c].isthing && (e < -1 || e >= (int)in->n_ends))
            return avps_fail(err, "image %s: the class table names end %d for category %d, but there are %zu ends",
                             in->image_id, e, in->categories[c].id, in->n_ends);
    }
    return 0;
}

/* Whether instance i of end e is taken (1), left out (0), or wrong (-1). */
static int instance_taken(const fusion_params *p, const fusion_input *in, size_t e, size_t i, int need_soft,
                          long *cat, avps_error *err) {
    const is_instance *x = &in->ends[e].out->instances[i];
    *cat = fuse_category_index(in->categories, in->n_categories, x->category_id);
    if (*cat < 0)
        return avps_fail(err, "image %s: end %zu: instance %zu has category %d, which the dataset lacks", in->image_id,
                         e, i, x->category_id);
    if (!in->categories[*cat].isthing)
        return avps_fail(err, "image %s: end %zu: instance %zu has stuff category %d", in->image_id, e, i,
                         x->category_id);
    if (isnan(x->score))
        return avps_fail(err, "image %s: end %zu: instance %zu: the score is not a number", in->image_id, e, i);
    if (in->is_end_of_category && in->is_end_of_category[*cat] != (int)e)
        return 0;
    if (x->score < p->heuristic.confidence_thr[e])
        return 0;
    if (need_soft && !x->soft)
        return avps_fail(err,
                         "image %s: end %zu: instance %zu has a binary mask only; the upsnet combiner needs soft "
                         "masks (mask logits)",
                         in->image_id, e, i);
    return 1;
}

static int select_one(fused_instances *out, const fusion_input *in, size_t e, size_t i, long cat, avps_error *err) {
    const is_instance *x = &in->ends[e].out->instances[i];
    size_t k = out->n;
    if (is_instance_mask(x, in->h, in->w, &out->items[k].mask, err) != 0)
        return avps_prefix(err, "image %s: end %zu: instance %zu", in->image_id, e, i);
    out->items[k].category_id = x->category_id;
    out->items[k].score = x->score;
    out->items[k].end = (int)e;
    out->from[k] = x;
    out->category_index[k] = cat;
    out->n++;
    return 0;
}

int fused_instances_select(const fusion_params *p, const fusion_input *in, int need_soft, fused_instances *out,
                           avps_error *err) {
    memset(out, 0, sizeof *out);
    if (check_table(in, err) != 0)
        return -1;
    size_t total = 0;
    for (size_t e = 0; e < in->n_ends; e++)
        total += in->ends[e].out->n_instances;
    out->items = calloc(total + 1, sizeof *out->items);
    out->from = calloc(total + 1, sizeof *out->from);
    out->category_index = calloc(total + 1, sizeof *out->category_index);
    if (!out->items || !out->from || !out->category_index) {
        fused_instances_release(out);
        return avps_fail(err, "image %s: out of memory", in->image_id);
    }
    for (size_t e = 0; e < in->n_ends; e++)
        for (size_t i = 0; i < in->ends[e].out->n_instances; i++) {
            long cat;
            int taken = instance_taken(p, in, e, i, need_soft, &cat, err);
            if (taken < 0 || (taken && select_one(out, in, e, i, cat, err) != 0)) {
                fused_instances_release(out);
                return -1;
            }
        }
    return 0;
}
