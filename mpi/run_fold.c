/* run_fold.c: the root's running totals of `avps run`. Records come from job_map_dynamic
 * in dataset order (those of a resumed run's earlier images are read back from OUT/work
 * when their turn comes), each is added to the PQ and SS totals and its segments appended
 * to the panoptic JSON files, and then it is dropped: the root holds one record at a time
 * here, whatever the number of images, and the bytes are those of adding them all at the
 * end. */
#include "run.h"

#include <stdlib.h>
#include <string.h>

int run_fold_open(run_fold *f, const pan_dataset *gt, const char *out_dir, uint64_t hash, const uint8_t *resumed,
                  char *const pan_paths[RUN_ENDS], avps_error *err) {
    memset(f, 0, sizeof *f);
    f->gt = gt, f->out_dir = out_dir, f->hash = hash, f->resumed = resumed;
    size_t n = gt->n_annotations;
    if (run_totals_init(&f->totals, gt->n_categories, err) != 0)
        return -1;
    /* panopticapi's layout: the images in the order of the annotations */
    if (!(f->images = calloc(n + 1, sizeof *f->images)))
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const pan_image *im = pan_dataset_find_image(gt, gt->annotations[i].image_id);
        if (!im)
            return avps_fail(err, "%s: image %s has no entry in \"images\"", gt->path, gt->annotations[i].image_id);
        f->images[i] = *im;
    }
    f->frame = (pan_dataset){.path = gt->path, .n_images = n, .images = f->images, .n_annotations = n,
                             .n_categories = gt->n_categories, .categories = gt->categories};
    for (int e = 0; e < RUN_ENDS; e++)
        if (pan_paths[e] && pan_writer_open(&f->pan[e], pan_paths[e], &f->frame, err) != 0)
            return -1;
    return 0;
}

void run_fold_release(run_fold *f) {
    for (int e = 0; e < RUN_ENDS; e++)
        pan_writer_abort(&f->pan[e]);
    if (f->totals.pq[0])
        run_totals_release(&f->totals);
    free(f->images);
    memset(f, 0, sizeof *f);
}

static int fold_record(run_fold *f, size_t item, const job_blob *blob, avps_error *err) {
    const char *id = f->gt->annotations[item].image_id;
    run_record rec;
    if (run_record_parse(blob->data, blob->len, &rec) != 0)
        return avps_fail(err, "image %s: malformed record", id);
    if (run_totals_add(&f->totals, f->gt, item, &rec, err) != 0)
        return -1;
    for (int e = 0; e < RUN_ENDS; e++) {
        if (!f->pan[e].open)
            continue;
        if ((uint32_t)e >= rec.n_ends)
            return avps_fail(err, "image %s: malformed record", id);
        char *name = panoptic_png_name(f->images[item].file_name);
        if (!name)
            return avps_fail(err, "out of memory");
        pan_annotation a = {f->images[item].id, name, rec.n_segments[e], (pan_segment *)rec.segments[e]};
        pan_writer_add(&f->pan[e], &a);
        free(name);
    }
    f->folded++;
    return 0;
}

/* The earlier run's records up to (not including) item `until`. */
static int fold_resumed(run_fold *f, size_t until, avps_error *err) {
    for (; f->next < until; f->next++) {
        if (!f->resumed || !f->resumed[f->next])
            return avps_fail(err, "image %s: no record (internal error: results out of order)",
                             f->gt->annotations[f->next].image_id);
        job_blob blob = {0};
        int rc = run_journal_read(f->out_dir, f->hash, f->next, &blob) != 0
                     ? avps_fail(err, "%s/work: the record of image %s changed during the run", f->out_dir,
                                 f->gt->annotations[f->next].image_id)
                     : fold_record(f, f->next, &blob, err);
        free(blob.data);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int run_fold_sink(void *ctx, size_t item, job_blob *blob, avps_error *err) {
    run_fold *f = ctx;
    int rc = item < f->next || item >= f->gt->n_annotations
                 ? avps_fail(err, "item %zu: out of order (internal error)", item)
                 : fold_resumed(f, item, err);
    if (rc == 0)
        rc = fold_record(f, item, blob, err);
    if (rc == 0)
        f->next = item + 1;
    free(blob->data);
    *blob = (job_blob){0};
    return rc;
}

int run_fold_finish(run_fold *f, avps_error *err) {
    if (fold_resumed(f, f->gt->n_annotations, err) != 0)
        return -1;
    for (int e = 0; e < RUN_ENDS; e++)
        if (f->pan[e].open && pan_writer_commit(&f->pan[e], err) != 0)
            return -1;
    return 0;
}
