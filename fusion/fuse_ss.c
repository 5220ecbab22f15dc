/* fuse_ss.c: the semantic side of the task-dependent level: the ends' class
 * probabilities, each upsampled to the image by its own ss_sampler, averaged with
 * normalised weights over the dataset's categories, one image row at a time. */
#include "fuse_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ss_sampler *sampler;
    float *row;         /* channels x w, the end's probabilities for the row */
    uint32_t channels;
    long *cat_index;    /* per channel: its dataset category's index */
    float weight;       /* normalised */
} fused_source;

struct fused_ss {
    size_t n_categories;
    uint32_t w;
    size_t n_sources;
    fused_source src[FUSION_MAX_ENDS];
};

long fuse_category_index(const pan_category *categories, size_t n, int32_t category_id) {
    for (size_t c = 0; c < n; c++)
        if (categories[c].id == category_id)
            return (long)c;
    return -1;
}

void fused_ss_free(fused_ss *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n_sources; i++) {
        ss_sampler_free(f->src[i].sampler);
        free(f->src[i].row);
        free(f->src[i].cat_index);
    }
    free(f);
}

int fuse_check_weights(const fusion_input *in, double *total, avps_error *err) {
    *total = 0;
    for (size_t e = 0; e < in->n_ends; e++) {
        double wt = in->ends[e].ss_weight;
        if (!isfinite(wt) || wt < 0)
            return avps_fail(err, "image %s: end %zu: SS weight %g must be a finite number >= 0", in->image_id, e, wt);
        *total += wt;
    }
    if (*total <= 0)
        return avps_fail(err, "image %s: the SS weights of the %zu ends are all 0", in->image_id, in->n_ends);
    return 0;
}

int fuse_check_end_ss(const fusion_input *in, size_t e, avps_error *err) {
    const char *id = in->image_id;
    const ss_map *ss = &in->ends[e].out->ss;
    if (ss->channels == 0 || ss->geo.valid_w == 0 || ss->geo.valid_h == 0 || ss->geo.valid_w > ss->w ||
        ss->geo.valid_h > ss->h || !ss->channel_category)
        return avps_fail(err, "image %s: end %zu: no SS to average (%u channels, valid %ux%u of a %ux%u grid)", id, e,
                         ss->channels, ss->geo.valid_w, ss->geo.valid_h, ss->w, ss->h);
    if (ss->kind == SS_LABELS ? !ss->labels : !ss->scores)
        return avps_fail(err, "image %s: end %zu: the SS (%s) has no data", id, e, ss_kind_name(ss->kind));
    for (uint32_t c = 0; c < ss->channels; c++) {
        if (fuse_category_index(in->categories, in->n_categories, ss->channel_category[c]) < 0)
            return avps_fail(err, "image %s: end %zu: SS channel %u has category %d, which the dataset lacks", id, e,
                             c, ss->channel_category[c]);
        for (uint32_t d = 0; d < c; d++)
            if (ss->channel_category[d] == ss->channel_category[c])
                return avps_fail(err, "image %s: end %zu: SS channels %u and %u both have category %d", id, e, d, c,
                                 ss->channel_category[c]);
    }
    return 0;
}

float fuse_end_weight(const fusion_input *in, size_t e, double total) {
    double wt = in->ends[e].ss_weight;
    return wt == 0 ? 0.0f : (float)(wt / total);
}

void fuse_end_channels(const fusion_input *in, size_t e, long *channel_of) {
    const ss_map *ss = &in->ends[e].out->ss;
    for (size_t k = 0; k < in->n_categories; k++)
        channel_of[k] = -1;
    for (uint32_t c = 0; c < ss->channels; c++)
        channel_of[fuse_category_index(in->categories, in->n_categories, ss->channel_category[c])] = c;
}

static int source_init(fused_source *s, const fusion_input *in, size_t e, float weight, avps_error *err) {
    const ss_map *ss = &in->ends[e].out->ss;
    if (fuse_check_end_ss(in, e, err) != 0)
        return -1;
    s->channels = ss->channels;
    s->weight = weight;
    s->row = malloc((size_t)ss->channels * in->w * sizeof *s->row + 1);
    s->cat_index = malloc(ss->channels * sizeof *s->cat_index);
    if (!s->row || !s->cat_index)
        return avps_fail(err, "image %s: out of memory", in->image_id);
    for (uint32_t c = 0; c < ss->channels; c++)
        s->cat_index[c] = fuse_category_index(in->categories, in->n_categories, ss->channel_category[c]);
    if (!(s->sampler = ss_sampler_new(ss, in->w, err)))
        return avps_prefix(err, "image %s: end %zu", in->image_id, e);
    return 0;
}

int fuse_check_ss(const fusion_input *in, avps_error *err) {
    double total;
    if (fuse_check_weights(in, &total, err) != 0)
        return -1;
    for (size_t e = 0; e < in->n_ends; e++)
        if (in->ends[e].ss_weight != 0 && fuse_check_end_ss(in, e, err) != 0)
            return -1;
    return 0;
}

fused_ss *fused_ss_new(const fusion_input *in, avps_error *err) {
    double total;
    if (fuse_check_weights(in, &total, err) != 0)
        return NULL;
    fused_ss *f = calloc(1, sizeof *f);
    if (!f) {
        avps_fail(err, "image %s: out of memory", in->image_id);
        return NULL;
    }
    f->n_categories = in->n_categories;
    f->w = in->w;
    for (size_t e = 0; e < in->n_ends; e++) {
        if (in->ends[e].ss_weight == 0)
            continue; /* gives no SS: not even checked, so an end may come without one */
        fused_source *s = &f->src[f->n_sources++];
        if (source_init(s, in, e, fuse_end_weight(in, e, total), err) != 0) {
            fused_ss_free(f);
            return NULL;
        }
    }
    return f;
}

/* Sources are added in end order, so the sums are the same on every run. */
void fused_ss_row(fused_ss *f, uint32_t y, float *out) {
    uint32_t w = f->w;
    memset(out, 0, f->n_categories * w * sizeof *out);
    for (size_t i = 0; i < f->n_sources; i++) {
        fused_source *s = &f->src[i];
        ss_sampler_row(s->sampler, y, s->row);
        for (uint32_t c = 0; c < s->channels; c++) {
            float *dst = out + (size_t)s->cat_index[c] * w;
            const float *src = s->row + (size_t)c * w;
            for (uint32_t x = 0; x < w; x++)
                dst[x] += s->weight * src[x];
        }
    }
}
