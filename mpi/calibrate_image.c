/* calibrate_image.c: calibration's work on every rank, one image at a time: each end
 * runs on the image and its result is matched to the ground truth, giving pycocotools'
 * per-image AP records of its instances (mask_ap) or pq_compute's events on the thing
 * classes of its own panoptic result (pq_th). Only these records leave the rank. */
#include "calibrate_impl.h"

#include <stdlib.h>
#include <string.h>

/* The image's thing segments as a one-image COCO ground truth, exactly as `avps convert
 * panoptic-to-instances` writes them (ids from 1, iscrowd and area from the JSON). */
static int gt_instances(const calib_job *cj, const pan_dataset *ds, const pan_annotation *ann, rle_mask *masks,
                        inst_image *image, inst_dataset *gt) {
    *gt = (inst_dataset){.path = ds->path, .n_images = 1, .images = image, .n_categories = cj->n_things,
                         .category_ids = cj->thing_ids};
    gt->annotations = calloc(ann->n_segments + 1, sizeof *gt->annotations);
    if (!gt->annotations)
        return -1;
    for (size_t i = 0; i < ann->n_segments; i++) {
        const pan_segment *s = &ann->segments[i];
        if (masks[i].h == 0)
            continue;
        inst_annotation *a = &gt->annotations[gt->n_annotations];
        *a = (inst_annotation){.id = (int64_t)gt->n_annotations + 1, .image_id = image->id,
                               .category_id = s->category_id, .iscrowd = s->iscrowd, .area = s->area, .rle = masks[i]};
        rle_bbox(&masks[i], a->bbox);
        gt->n_annotations++;
    }
    return 0;
}

/* One end on one image: its instances as results (area from the mask, as loadRes), then
 * the image's AP records, appended to the blob after their length. */
static int end_ap_records(const calib_job *cj, head *end, const head_output *o, const inst_dataset *gt, job_blob *blob,
                          avps_error *err) {
    const head_output out = *o;
    uint32_t h = gt->images[0].height, w = gt->images[0].width;
    inst_dataset dt = {.path = gt->path, .n_images = 1, .images = gt->images, .n_categories = cj->n_things,
                       .category_ids = cj->thing_ids};
    int rc = out.width == w && out.height == h
                 ? 0
                 : avps_fail(err, "end %s gives %ux%u, the ground truth PNG is %ux%u", head_name(end), out.width,
                             out.height, w, h);
    if (rc == 0 && !(dt.annotations = calloc(out.n_instances + 1, sizeof *dt.annotations)))
        rc = avps_fail(err, "out of memory");
    for (size_t j = 0; rc == 0 && j < out.n_instances; j++, dt.n_annotations++) {
        inst_annotation *a = &dt.annotations[j];
        if (is_instance_mask(&out.instances[j], h, w, &a->rle, err) != 0) {
            rc = avps_prefix(err, "end %s, instance %zu", head_name(end), j);
            break;
        }
        a->id = (int64_t)j + 1;
        a->image_id = gt->images[0].id;
        a->category_id = out.instances[j].category_id;
        a->score = out.instances[j].score;
        a->area = (double)rle_area(&a->rle);
        rle_bbox(&a->rle, a->bbox);
    }
    ap_index *ix = rc == 0 ? ap_index_new(gt, &dt) : NULL;
    ap_records rec = {0};
    if (rc == 0 && !ix)
        rc = avps_fail(err, "out of memory");
    if (rc == 0)
        rc = ap_image_eval(ix, 0, IOU_SEGM, &rec, err);
    uint64_t len = rec.len;
    if (rc == 0 && (job_blob_append(blob, &len, sizeof len) || job_blob_append(blob, rec.data, rec.len)))
        rc = avps_fail(err, "out of memory");
    ap_records_release(&rec);
    ap_index_free(ix);
    for (size_t j = 0; j < dt.n_annotations; j++)
        rle_free(&dt.annotations[j].rle);
    free(dt.annotations);
    return rc;
}

/* pq_th: the end's own panoptic result (fusion_run with this end alone, the heuristic
 * combiner at panopticapi's defaults) against the ground truth, as panopticapi's
 * pq_compute per image; the thing classes' sums go into the blob after their length. */
static int end_pq_records(const calib_job *cj, pq_scratch *scratch, const head_output *o, const head_input *in,
                          const pan_dataset *ds, job_blob *blob, avps_error *err) {
    fusion_params fp;
    fusion_params_default(&fp);
    fusion_end fe = {o, 1.0};
    fusion_input fi = {in->image->id, o->height, o->width, &fe, 1, NULL, ds->categories, ds->n_categories, NULL};
    fusion_panoptic pan = {0};
    pq_events ev = {0};
    uint32_t *ids = NULL;
    /* pq_image_eval reads the ids at the ground truth's size, which images[] gives */
    int rc = o->width == in->image->width && o->height == in->image->height
                 ? fusion_run(&fp, &fi, &pan, err)
                 : avps_fail(err, "its output is %ux%u, the image %ux%u", o->width, o->height, in->image->width,
                             in->image->height);
    if (rc == 0 && !(ids = malloc((size_t)pan.h * pan.w * sizeof *ids + 1)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0) {
        fusion_panoptic_paint(&pan, ids);
        pan_annotation pred = {in->gt->image_id, in->gt->file_name, pan.n_segments, pan.segments};
        pq_image_input pi = {ds, "(the end's own panoptic result)", in->gt, &pred, in->gt_png, NULL, in->image, ids};
        rc = pq_image_eval(scratch, &pi, &ev, err);
    }
    job_blob part = {0};
    for (size_t i = 0; rc == 0 && i < ev.n; i++) {
        const pq_event *e = &ev.items[i];
        if (e->kind > PQ_FN || !ds->categories[e->cat].isthing)
            continue;
        int32_t id = ds->categories[e->cat].id;
        const int32_t *k = bsearch(&id, cj->thing_ids, cj->n_things, sizeof id, calib_int32_cmp);
        pq_thing_event te = {(uint32_t)(k - cj->thing_ids), e->kind, e->iou};
        if (job_blob_append(&part, &te, sizeof te) != 0)
            rc = avps_fail(err, "out of memory");
    }
    uint64_t len = part.len;
    if (rc == 0 && (job_blob_append(blob, &len, sizeof len) || job_blob_append(blob, part.data, part.len)))
        rc = avps_fail(err, "out of memory");
    free(part.data);
    free(ids);
    pq_events_release(&ev);
    fusion_panoptic_release(&pan);
    return rc;
}

static int end_records(const calib_job *cj, int thread, head *end, const head_input *in, const pan_dataset *ds,
                       const inst_dataset *gt, job_blob *blob, avps_error *err) {
    head_output out;
    if (head_run(end, in, &out, err) != 0)
        return -1;
    int rc = cj->pq ? end_pq_records(cj, cj->scratch[thread], &out, in, ds, blob, err)
                    : end_ap_records(cj, end, &out, gt, blob, err);
    head_output_release(&out);
    if (rc != 0 && cj->pq)
        avps_prefix(err, "end %s", head_name(end));
    return rc;
}

int calib_image(void *ctx, int thread, size_t item, job_blob *blob, avps_error *err) {
    const calib_job *cj = ctx;
    int s = item >= cj->n_split[0];
    const pan_dataset *ds = cj->split[s]->ds;
    const pan_annotation *ann = &ds->annotations[s ? item - cj->n_split[0] : item];
    const pan_image *im = pan_dataset_find_image(ds, ann->image_id);
    if (!im)
        return avps_fail(err, "%s: image %s has an annotation but no entry in images", ds->path, ann->image_id);
    char *png = path_join(cj->split[s]->png_dir, ann->file_name);
    rle_mask *masks = calloc(ann->n_segments + 1, sizeof *masks);
    inst_image image = {(int64_t)item, 0, 0};
    inst_dataset gt = {0};
    int rc = png && masks ? 0 : avps_fail(err, "out of memory");
    if (rc == 0 && !cj->pq) /* mask AP: the ground truth's instances, once for every end */
        rc = pan_thing_masks(ds, ann, png, masks, &image.height, &image.width, err);
    if (rc == 0 && !cj->pq && gt_instances(cj, ds, ann, masks, &image, &gt) != 0)
        rc = avps_fail(err, "out of memory");
    head_input in = {im, ann, png, NULL};
    for (size_t e = 0; rc == 0 && e < cj->n_ends; e++)
        if ((rc = end_records(cj, thread, cj->ends[e], &in, ds, &gt, blob, err)) != 0)
            avps_prefix(err, "%s: image %s", ds->path, ann->image_id);
    free(gt.annotations);
    for (size_t i = 0; masks && i < ann->n_segments; i++)
        rle_free(&masks[i]);
    free(masks);
    free(png);
    return rc;
}
