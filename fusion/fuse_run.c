/* fuse_run.c: fusion_run, the two levels for one image: the fused SS and the selected
 * instances (task-dependent), then a combiner (task-independent). The heuristic's
 * semantic input is the fused SS argmax, given as one candidate per stuff category. */
#include "fuse_internal.h"

#include <stdlib.h>
#include <string.h>

const char *combiner_kind_name(combiner_kind k) { return k == COMBINER_UPSNET ? "upsnet" : "heuristic"; }

int combiner_kind_parse(const char *name, combiner_kind *out) {
    if (strcmp(name, "heuristic") == 0)
        *out = COMBINER_HEURISTIC;
    else if (strcmp(name, "upsnet") == 0)
        *out = COMBINER_UPSNET;
    else
        return -1;
    return 0;
}

void fusion_params_default(fusion_params *p) {
    memset(p, 0, sizeof *p);
    p->combiner = COMBINER_HEURISTIC;
    combine_params_default(&p->heuristic);
    p->upsnet = (upsnet_params){.nms_thr = 0.5, .removal_thr = 0.3, .max_instances = 100};
}

int fuse_check_input(const fusion_input *in, avps_error *err) {
    if (in->n_ends == 0 || in->n_ends > FUSION_MAX_ENDS)
        return avps_fail(err, "image %s: %zu network ends; fusion takes 1 to %d", in->image_id, in->n_ends,
                         FUSION_MAX_ENDS);
    if (in->h == 0 || in->w == 0 || (uint64_t)in->h * in->w > UINT32_MAX)
        return avps_fail(err, "image %s: an image of %ux%u pixels cannot be fused", in->image_id, in->w, in->h);
    for (size_t e = 0; e < in->n_ends; e++) {
        const head_output *o = in->ends[e].out;
        if (!o)
            return avps_fail(err, "image %s: end %zu has no output", in->image_id, e);
        if (o->width != in->w || o->height != in->h)
            return avps_fail(err, "image %s: end %zu: its output is %ux%u, the image %ux%u", in->image_id, e, o->width,
                             o->height, in->w, in->h);
    }
    return 0;
}

/* The fused SS argmax over all categories; FUSE_LABEL_NONE where every probability is 0.
 * Ties go to the first category. */
static int semantic_labels(fused_ss *ss, const fusion_input *in, uint32_t *labels, avps_error *err) {
    size_t n = in->n_categories;
    float *row = malloc(n * in->w * sizeof *row + 1), *best = malloc(in->w * sizeof *best + 1);
    int rc = row && best ? 0 : avps_fail(err, "image %s: out of memory", in->image_id);
    for (uint32_t y = 0; rc == 0 && y < in->h; y++) {
        fused_ss_row(ss, y, row);
        uint32_t *out = labels + (size_t)y * in->w;
        fuse_argmax_reset(in->w, best, out);
        for (size_t c = 0; c < n; c++)
            fuse_argmax_take(row + c * in->w, (uint32_t)c, in->w, best, out);
    }
    free(row);
    free(best);
    return rc;
}

/* The heuristic's semantic input: the caller's label map, or the fused SS argmax. */
static int heuristic_labels(const fusion_input *in, fused_ss *ss, uint32_t **owned, const uint32_t **labels,
                            avps_error *err) {
    *owned = NULL;
    if ((*labels = in->ss_labels))
        return 0;
    if (!(*owned = malloc((size_t)in->h * in->w * sizeof **owned)))
        return avps_fail(err, "image %s: out of memory", in->image_id);
    *labels = *owned;
    return semantic_labels(ss, in, *owned, err);
}

/* Only stuff categories become candidates: combine_heuristic skips thing ones, whose
 * pixels stay VOID unless an instance takes them. */
static int run_heuristic(const fusion_params *p, const fusion_input *in, fused_ss *ss, const fused_instances *fi,
                         fusion_panoptic *out, avps_error *err) {
    size_t n = in->n_categories;
    uint32_t *owned = NULL;
    const uint32_t *labels = NULL;
    rle_mask *masks = calloc(n + 1, sizeof *masks);
    fusion_stuff *stuff = calloc(n + 1, sizeof *stuff);
    int rc = -1;
    if (!masks || !stuff)
        avps_fail(err, "image %s: out of memory", in->image_id);
    else if (heuristic_labels(in, ss, &owned, &labels, err) != 0)
        ;
    else if (fuse_labels_to_masks(labels, in->h, in->w, n, masks) != 0)
        avps_fail(err, "image %s: out of memory", in->image_id);
    else
        rc = 0;
    free(owned);
    size_t n_stuff = 0;
    for (size_t c = 0; rc == 0 && c < n; c++)
        if (!in->categories[c].isthing && masks[c].m > 0)
            stuff[n_stuff++] = (fusion_stuff){in->categories[c].id, masks[c]};
    if (rc == 0) {
        combine_input ci = {in->image_id, in->h, in->w, fi->items, fi->n, stuff, n_stuff, in->categories, n};
        rc = combine_heuristic(&p->heuristic, &ci, out, err);
    }
    for (size_t c = 0; masks && c < n; c++)
        rle_free(&masks[c]);
    free(masks);
    free(stuff);
    return rc;
}

/* With the caller's label map the heuristic upsamples nothing: the SS is only checked. */
int fusion_run(const fusion_params *p, const fusion_input *in, fusion_panoptic *out, avps_error *err) {
    *out = (fusion_panoptic){.h = in->h, .w = in->w};
    if (fuse_check_input(in, err) != 0)
        return -1;
    int upsnet = p->combiner == COMBINER_UPSNET;
    fused_ss *ss = NULL;
    if (!upsnet && in->ss_labels ? fuse_check_ss(in, err) != 0 : !(ss = fused_ss_new(in, err)))
        return -1;
    fused_instances fi;
    int rc = fused_instances_select(p, in, upsnet, &fi, err);
    if (rc == 0) {
        rc = upsnet ? combine_upsnet(p, in, ss, &fi, out, err) : run_heuristic(p, in, ss, &fi, out, err);
        fused_instances_release(&fi);
    }
    fused_ss_free(ss);
    if (rc != 0)
        fusion_panoptic_release(out);
    return rc;
}
