/* settings.c: HTC's inference settings: mmdetection's config values that change inference,
 * read from the weights' __metadata__ (docs/model.md lists the keys and their defaults,
 * htc_r50_fpn_1x_coco's) and overridden by `--set KEY=VALUE` (the last of a key wins; a
 * key that is no setting is refused), then checked against the architecture the tensors
 * gave; the anchors and the class-to-category tables follow from them. */
#include "htc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A setting's value: the last --set of the key, else __metadata__'s, else NULL. */
static const char *meta_get(const htc_meta *ms, const char *key) {
    for (int i = ms->n_set - 1; i >= 0; i--) {
        size_t n = strlen(key);
        if (strncmp(ms->set[i], key, n) == 0 && ms->set[i][n] == '=') {
            for (int j = 0; j < ms->n_set; j++)
                if (strncmp(ms->set[j], key, n) == 0 && ms->set[j][n] == '=')
                    ms->used[j] = 1;
            return ms->set[i] + n + 1;
        }
    }
    return st_meta(ms->st, key);
}
/* Numbers from __metadata__ ("800", or a list "0.5,1.0,2.0"); absent keys keep *n = 0. */
static int meta_floats(const htc_meta *ms, const char *key, float *out, int max, int *n, avps_error *err) {
    const st_file *st = ms->st;
    const char *v = meta_get(ms, key);
    *n = 0;
    if (!v)
        return 0;
    const char *s = v;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '[' || *s == ']' || *s == '(' || *s == ')')
            s++;
        if (!*s)
            break;
        char *end;
        double d = strtod(s, &end);
        if (end == s || *n == max || !isfinite(d))
            return avps_fail(err, "%s: __metadata__ %s = \"%s\" is not a list of at most %d numbers", st->path, key, v, max);
        out[(*n)++] = (float)d;
        s = end;
    }
    return 0;
}

static int meta_exact(const htc_meta *ms, const char *key, float *out, int want, avps_error *err) {
    float tmp[64];
    int n;
    const st_file *st = ms->st;
    if (meta_floats(ms, key, tmp, 64, &n, err))
        return -1;
    if (n == 0 && !meta_get(ms, key))
        return 0;
    if (n != want)
        return avps_fail(err, "%s: __metadata__ %s must hold %d number%s", st->path, key, want, want == 1 ? "" : "s");
    memcpy(out, tmp, sizeof(float) * (size_t)want);
    return 0;
}

static int meta_int(const htc_meta *ms, const char *key, int *out, int lo, int hi, avps_error *err) {
    const st_file *st = ms->st;
    float v = (float)*out;
    if (meta_exact(ms, key, &v, 1, err))
        return -1;
    if (v < (float)lo || v > (float)hi || v != floorf(v))
        return avps_fail(err, "%s: __metadata__ %s must be a whole number in [%d, %d]", st->path, key, lo, hi);
    *out = (int)v;
    return 0;
}

/* A class-to-category table: `key` lists n category ids; without it, COCO's defaults. */
static int load_table(htc *m, const htc_meta *ms, const char *key, int n, int32_t **out, avps_error *err) {
    static const int32_t coco_things[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                            22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
                                            46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
                                            67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};
    const st_file *st = ms->st;
    if (!(*out = htc_owned(m, sizeof(int32_t) * (size_t)n, err)))
        return -1;
    if (meta_get(ms, key)) {
        float *ids = htc_owned(m, sizeof(float) * ((size_t)n + 1), err);
        int k;
        if (!ids || meta_floats(ms, key, ids, n + 1, &k, err))
            return -1;
        if (k != n)
            return avps_fail(err, "%s: setting %s lists %d categories, the network has %d classes", st->path, key, k, n);
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] > 1e9f || ids[i] != floorf(ids[i]))
                return avps_fail(err, "%s: setting %s: entry %d is not a category id", st->path, key, i);
            (*out)[i] = (int32_t)ids[i];
        }
        return 0;
    }
    if (n == 80) {
        memcpy(*out, coco_things, sizeof coco_things);
        return 0;
    }
    if (n == (int)synth_category_count()) { /* COCO panoptic, by ascending id */
        for (int i = 0; i < n; i++)
            (*out)[i] = synth_category_at((size_t)i)->id;
        for (int i = 1; i < n; i++) /* insertion sort: the table is by kind first */
            for (int j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
                int32_t t = (*out)[j];
                (*out)[j] = (*out)[j - 1], (*out)[j - 1] = t;
            }
        return 0;
    }
    if (n == 183) { /* COCO-Stuff: ids 1..182 are things and stuff, 183 is "other" */
        for (int i = 0; i < n; i++)
            (*out)[i] = i + 1;
        return 0;
    }
    return avps_fail(err, "%s: %d classes need a class-to-category table (__metadata__ %s): only COCO's 80 detection and "
                          "133 (panoptic) or 183 (COCO-Stuff) semantic classes have defaults", st->path, n, key);
}

/* Every setting that does not depend on the architecture; before the tensors (the first
 * box fc's size follows from bbox_roi_size). */
int htc_settings_read(htc *m, const htc_meta *ms, avps_error *err) {
    const st_file *st = ms->st;
    const char *arch = meta_get(ms, "numerics");
    if (arch && strcmp(arch, "mmdet3") != 0 && strcmp(arch, "mmdet_v1") != 0)
        return avps_fail(err, "%s: setting numerics = \"%s\": \"mmdet3\" or \"mmdet_v1\"", st->path, arch);
    m->plus_one = arch && strcmp(arch, "mmdet_v1") == 0 ? 1.0f : 0.0f;
    float scale[2] = {1333, 800}, mean[3] = {123.675f, 116.28f, 103.53f}, stdv[3] = {58.395f, 57.12f, 57.375f};
    float roi_strides[HTC_LEVELS] = {4, 8, 16, 32}, strides[HTC_LEVELS + 1] = {4, 8, 16, 32, 64};
    m->pad_div = 32, m->rpn_nms_pre = 1000, m->rpn_max = 1000, m->max_per_img = 100;
    m->rpn_nms = 0.7f, m->rpn_min_size = 0, m->score_thr = 0.001f, m->nms_thr = 0.5f, m->mask_thr = 0.5f;
    m->wh_ratio_clip = 16.0f / 1000.0f;
    m->box_roi = 7, m->mask_roi = 14, m->sem_roi = 14, m->sampling_ratio = 0, m->finest_scale = 56, m->fusion_level = 1;
    m->sem_stride = 8, m->mask_info_flow = 1, m->fuse_bbox = m->fuse_mask = 1, m->n_stages_meta = 3;
    const float stds[3][4] = {{0.1f, 0.1f, 0.2f, 0.2f}, {0.05f, 0.05f, 0.1f, 0.1f}, {0.033f, 0.033f, 0.067f, 0.067f}};
    for (int s = 0; s < HTC_MAX_STAGES; s++)
        memcpy(m->box[s].stds, stds[s < 3 ? s : 2], sizeof stds[0]);
    if (meta_exact(ms, "image_scale", scale, 2, err) || meta_exact(ms, "image_mean", mean, 3, err) ||
        meta_exact(ms, "image_std", stdv, 3, err) || meta_int(ms, "pad_size_divisor", &m->pad_div, 1, 4096, err) ||
        meta_exact(ms, "anchor_strides", strides, HTC_LEVELS + 1, err) ||
        meta_int(ms, "rpn_nms_pre", &m->rpn_nms_pre, 1, 1000000, err) ||
        meta_int(ms, "rpn_max_per_img", &m->rpn_max, 1, 1000000, err) ||
        meta_exact(ms, "rpn_nms_thresh", &m->rpn_nms, 1, err) || meta_exact(ms, "rpn_min_bbox_size", &m->rpn_min_size, 1, err) ||
        meta_exact(ms, "rcnn_score_thr", &m->score_thr, 1, err) || meta_exact(ms, "rcnn_nms_thresh", &m->nms_thr, 1, err) ||
        meta_int(ms, "rcnn_max_per_img", &m->max_per_img, 1, 1000000, err) ||
        meta_exact(ms, "mask_thr_binary", &m->mask_thr, 1, err) ||
        meta_int(ms, "num_stages", &m->n_stages_meta, 1, HTC_MAX_STAGES, err) ||
        meta_int(ms, "bbox_roi_size", &m->box_roi, 1, 64, err) || meta_int(ms, "mask_roi_size", &m->mask_roi, 1, 64, err) ||
        meta_int(ms, "semantic_roi_size", &m->sem_roi, 1, 64, err) ||
        meta_int(ms, "roi_sampling_ratio", &m->sampling_ratio, 0, 64, err) ||
        meta_exact(ms, "roi_strides", roi_strides, HTC_LEVELS, err) ||
        meta_exact(ms, "semantic_roi_stride", &m->sem_stride, 1, err) ||
        meta_int(ms, "finest_scale", &m->finest_scale, 1, 100000, err) ||
        meta_int(ms, "semantic_fusion_level", &m->fusion_level, 0, HTC_LEVELS, err) ||
        meta_int(ms, "mask_info_flow", &m->mask_info_flow, 0, 1, err) || meta_exact(ms, "wh_ratio_clip", &m->wh_ratio_clip, 1, err))
        return -1;
    /* mmdetection's keep-ratio Resize scale = (max_size, min_size), as `--set` names them */
    float max_size = scale[0] > scale[1] ? scale[0] : scale[1], min_size = scale[0] > scale[1] ? scale[1] : scale[0];
    if (meta_exact(ms, "max_size", &max_size, 1, err) || meta_exact(ms, "min_size", &min_size, 1, err))
        return -1;
    if (!(min_size >= 1 && max_size >= 1 && min_size <= 100000 && max_size <= 100000))
        return avps_fail(err, "%s: settings image_scale / min_size / max_size must be sizes in [1, 100000]", st->path);
    m->scale_long = (int)(max_size > min_size ? max_size : min_size);
    m->scale_short = (int)(max_size > min_size ? min_size : max_size);
    if (meta_floats(ms, "anchor_scales", m->anchor_scales, HTC_MAX_ANCHORS, &m->n_anchor_scales, err) ||
        meta_floats(ms, "anchor_ratios", m->anchor_ratios, HTC_MAX_ANCHORS, &m->n_anchor_ratios, err))
        return -1;
    if (!m->n_anchor_scales)
        m->anchor_scales[0] = 8, m->n_anchor_scales = 1;
    if (!m->n_anchor_ratios)
        m->anchor_ratios[0] = 0.5f, m->anchor_ratios[1] = 1.0f, m->anchor_ratios[2] = 2.0f, m->n_anchor_ratios = 3;
    char key[40];
    for (int s = 0; s < HTC_MAX_STAGES; s++)
        if ((snprintf(key, sizeof key, "bbox_stds_%d", s), meta_exact(ms, key, m->box[s].stds, 4, err)) ||
            (snprintf(key, sizeof key, "bbox_means_%d", s), meta_exact(ms, key, m->box[s].means, 4, err)))
            return -1;
    const char *merge = meta_get(ms, "mask_merge"), *fusion = meta_get(ms, "semantic_fusion");
    if (merge && strcmp(merge, "last") != 0 && strcmp(merge, "mean") != 0)
        return avps_fail(err, "%s: setting mask_merge = \"%s\": \"last\" or \"mean\"", st->path, merge);
    m->mask_merge_mean = merge && strcmp(merge, "mean") == 0;
    if (fusion)
        m->fuse_bbox = strstr(fusion, "bbox") != NULL, m->fuse_mask = strstr(fusion, "mask") != NULL;
    memcpy(m->mean, mean, sizeof mean), memcpy(m->std, stdv, sizeof stdv), memcpy(m->strides, strides, sizeof strides);
    for (int i = 0; i < 3; i++)
        if (!(m->std[i] > 0))
            return avps_fail(err, "%s: setting image_std must be positive", st->path);
    for (int l = 0; l < HTC_LEVELS; l++)
        if (roi_strides[l] != strides[l] || !(strides[l] > 0))
            return avps_fail(err, "%s: RoI strides must be the FPN's (%g for level %d)", st->path, strides[l], l);
    return 0;
}

/* What depends on the architecture: the stage count, the anchors, the class tables; and
 * every --set key must have been a setting. */
int htc_settings_check(htc *m, const htc_meta *ms, avps_error *err) {
    const st_file *st = ms->st;
    if (m->n_stages_meta != m->n_stages)
        return avps_fail(err, "%s: setting num_stages = %d, the weights have %d", st->path, m->n_stages_meta, m->n_stages);
    if (m->n_anchor_scales * m->n_anchor_ratios != m->anchors)
        return avps_fail(err, "%s: %d anchor scales x %d ratios, but rpn_head.rpn_cls has %d anchors", st->path,
                         m->n_anchor_scales, m->n_anchor_ratios, m->anchors);
    for (int l = 0; l <= HTC_LEVELS; l++)
        nn_mmdet_base_anchors(m->strides[l], m->anchor_scales, m->n_anchor_scales, m->anchor_ratios,
                              m->n_anchor_ratios, m->plus_one, m->base_anchors[l]);
    if (load_table(m, ms, "thing_categories", m->num_classes, &m->thing_category, err))
        return -1;
    if (m->has_semantic && load_table(m, ms, "semantic_categories", m->sem_classes, &m->semantic_category, err))
        return -1;
    for (int i = 0; i < ms->n_set; i++)
        if (!ms->used[i])
            return avps_fail(err, "%s: --set %s: not a setting of HTC (docs/model.md lists them)", st->path, ms->set[i]);
    return 0;
}
