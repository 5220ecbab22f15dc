/* import_panoptic.c: a COCO panoptic prediction (JSON + PNGs, as detectron2's
 * COCOPanopticEvaluator, mmdetection's CocoPanopticMetric and UPSNet's test write it)
 * imported as an end: every segment's category gives the semantic label map, every thing
 * segment an instance (its mask, and the "score" of its segments_info entry, else 1). */
#include "import.h"

#include <stdlib.h>
#include <string.h>

/* pan_segment keeps no score: read them from the JSON, in the same order. */
static int read_scores(import_job *ij, avps_error *err) {
    size_t len;
    char *text = file_read_all(ij->panoptic_json, &len, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    int rc = cJSON_GetArraySize(anns) == (int)ij->pan->n_annotations
                 ? 0
                 : avps_fail(err, "%s: cannot read its annotations a second time", ij->panoptic_json);
    if (rc == 0 && !(ij->pan_scores = calloc(ij->pan->n_annotations + 1, sizeof *ij->pan_scores)))
        rc = avps_fail(err, "out of memory");
    size_t i = 0;
    const cJSON *a;
    const cJSON *list = rc == 0 ? anns : NULL;
    cJSON_ArrayForEach(a, list) {
        const pan_annotation *pa = &ij->pan->annotations[i];
        const cJSON *segs = cJSON_GetObjectItemCaseSensitive(a, "segments_info"), *s;
        if (!(ij->pan_scores[i] = malloc((pa->n_segments + 1) * sizeof **ij->pan_scores))) {
            rc = avps_fail(err, "out of memory");
            break;
        }
        size_t j = 0;
        cJSON_ArrayForEach(s, segs) {
            const cJSON *score = cJSON_GetObjectItemCaseSensitive(s, "score");
            if (j >= pa->n_segments)
                break;
            if (score && (!cJSON_IsNumber(score) || !(score->valuedouble == score->valuedouble))) {
                rc = avps_fail(err, "%s: image %s: segment %u: \"score\" must be a number", ij->panoptic_json,
                               pa->image_id, pa->segments[j].id);
                break;
            }
            ij->pan_scores[i][j++] = score ? score->valuedouble : 1.0;
        }
        if (rc != 0)
            break;
        i++;
    }
    cJSON_Delete(root);
    return rc;
}

int import_panoptic_prepare(import_job *ij, avps_error *err) {
    if (!ij->panoptic_dir && !(ij->panoptic_dir = ij->work_pan_dir = path_without_json_suffix(ij->panoptic_json)))
        return avps_fail(err, "out of memory");
    if (!(ij->pan = pan_dataset_load(ij->panoptic_json, PAN_PREDICTION, err)) || read_scores(ij, err) != 0)
        return -1;
    for (size_t i = 0; i < ij->pan->n_annotations; i++) {
        const pan_annotation *a = &ij->pan->annotations[i];
        for (size_t j = 0; j < a->n_segments; j++) {
            uint16_t ch;
            char where[1200];
            snprintf(where, sizeof where, "%s: image %s: segment %u: its category", ij->panoptic_json, a->image_id,
                     a->segments[j].id);
            int32_t cat = a->segments[j].category_id;
            if (cat < 0 || cat >= LABEL_VALUES)
                return avps_fail(err, "%s %d is not a category of %s", where, cat, ij->gt->path);
            if (import_label(ij, (uint32_t)cat, where, &ch, err) != 0)
                return -1;
        }
    }
    ij->kind = SS_LABELS;
    ij->channels = (uint32_t)ij->gt->n_categories;
    if (!(ij->channel_category = malloc(sizeof(int32_t) * (ij->channels + 1))))
        return avps_fail(err, "out of memory");
    for (uint32_t c = 0; c < ij->channels; c++)
        ij->channel_category[c] = ij->gt->categories[c].id;
    return 0;
}

/* Each pixel's segment index (n_segments for VOID), from the PNG's ids. */
static int segment_map(const import_job *ij, const pan_annotation *a, const pan_image *im, uint32_t *seg,
                       avps_error *err) {
    char *path = path_join(ij->panoptic_dir, a->file_name);
    png_reader *r = path ? png_reader_open_sized(path, im->width, im->height, err) : NULL;
    uint8_t *row = malloc((size_t)im->width * 3 + 1);
    int rc = !path || !row ? avps_fail(err, "out of memory") : r ? 0 : -1;
    uint32_t last = 0;
    for (uint32_t y = 0; rc == 0 && y < im->height; y++) {
        if ((rc = png_reader_read_row(r, row, err)) != 0)
            break;
        for (uint32_t x = 0; rc == 0 && x < im->width; x++) {
            uint32_t id = rgb_to_id(row + 3 * x), k = (uint32_t)a->n_segments;
            if (id != 0 && last < a->n_segments && a->segments[last].id == id)
                k = last;
            for (uint32_t j = 0; id != 0 && k == a->n_segments && j < a->n_segments; j++)
                if (a->segments[j].id == id)
                    k = j;
            if (id != 0 && k == a->n_segments)
                rc = avps_fail(err, "%s: pixel (%u, %u) has id %u, which segments_info lacks", path, x, y, id);
            seg[(size_t)y * im->width + x] = k;
            last = k < a->n_segments ? k : last;
        }
    }
    png_reader_free(r);
    free(row);
    free(path);
    return rc;
}

static int thing_instances(const import_job *ij, const pan_annotation *a, const double *scores, const uint32_t *seg,
                           head_output *out, avps_error *err) {
    size_t npix = (size_t)out->width * out->height;
    uint8_t *mask = malloc(npix + 1);
    if (!mask || !(out->instances = calloc(a->n_segments + 1, sizeof *out->instances))) {
        free(mask);
        return avps_fail(err, "out of memory");
    }
    int rc = 0;
    for (size_t j = 0; rc == 0 && j < a->n_segments; j++) {
        uint16_t ch = SS_LABEL_NONE;
        import_label(ij, (uint32_t)a->segments[j].category_id, "", &ch, err); /* checked at prepare */
        if (ch == SS_LABEL_NONE || !ij->gt->categories[ch].isthing)
            continue;
        for (size_t p = 0; p < npix; p++)
            mask[p] = seg[p] == j;
        is_instance *inst = &out->instances[out->n_instances];
        *inst = (is_instance){.category_id = ij->gt->categories[ch].id, .score = scores[j]};
        if (rle_encode(mask, out->height, out->width, &inst->mask) != 0) {
            rc = avps_fail(err, "out of memory");
            break;
        }
        out->n_instances++;
        double b[4];
        rle_bbox(&inst->mask, b);
        inst->box[0] = b[0], inst->box[1] = b[1], inst->box[2] = b[0] + b[2], inst->box[3] = b[1] + b[3];
    }
    free(mask);
    /* highest score first, ties in segment order (a stable insertion sort) */
    for (size_t i = 1; i < out->n_instances; i++) {
        is_instance x = out->instances[i];
        size_t k = i;
        for (; k > 0 && out->instances[k - 1].score < x.score; k--)
            out->instances[k] = out->instances[k - 1];
        out->instances[k] = x;
    }
    return rc;
}

int import_panoptic_read(const import_job *ij, const pan_image *im, head_output *out, avps_error *err) {
    const pan_annotation *a = pan_dataset_find_annotation(ij->pan, im->id);
    if (!a)
        return avps_fail(err, "%s: no annotation for image %s", ij->panoptic_json, im->id);
    size_t npix = (size_t)im->width * im->height;
    ss_map *ss = &out->ss;
    *ss = (ss_map){.kind = SS_LABELS, .channels = ij->channels, .h = im->height, .w = im->width};
    ss->geo = ss_geometry_stretch(im->width, im->height, im->width, im->height);
    uint32_t *seg = malloc(npix * sizeof *seg + 1);
    uint16_t *lab = malloc((a->n_segments + 1) * sizeof *lab);
    int rc = seg && lab && (ss->labels = malloc(npix * sizeof *ss->labels)) &&
                     (ss->channel_category = malloc(sizeof(int32_t) * (ij->channels + 1)))
                 ? 0
                 : avps_fail(err, "out of memory");
    if (rc == 0) {
        memcpy(ss->channel_category, ij->channel_category, sizeof(int32_t) * ij->channels);
        rc = segment_map(ij, a, im, seg, err);
    }
    for (size_t j = 0; rc == 0 && j < a->n_segments; j++)
        import_label(ij, (uint32_t)a->segments[j].category_id, "", &lab[j], err); /* checked at prepare */
    if (rc == 0)
        lab[a->n_segments] = SS_LABEL_NONE;
    for (size_t p = 0; rc == 0 && p < npix; p++)
        ss->labels[p] = lab[seg[p]];
    if (rc == 0)
        rc = thing_instances(ij, a, ij->pan_scores[a - ij->pan->annotations], seg, out, err);
    free(seg);
    free(lab);
    return rc;
}

void import_panoptic_release(import_job *ij) {
    for (size_t i = 0; ij->pan && ij->pan_scores && i < ij->pan->n_annotations; i++)
        free(ij->pan_scores[i]);
    free(ij->pan_scores);
    free(ij->work_pan_dir);
    pan_dataset_free(ij->pan);
}
