/* cmd_import.c: `avps import`, a network's dumped outputs in the field's formats (COCO
 * results JSON with RLE masks, grey PNG label maps) turned into a prediction store that
 * the replay backend reads. `avps export` of that store gives the same files back. */
#include "commands.h"

#include "../model/model.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>

const char import_usage[] =
    "usage: avps import --gt-json F --results R --semantic-dir D --out STORE --head NAME [--threads N]\n"
    "  Makes a prediction store (docs/formats.md) for the images of the panoptic dataset F\n"
    "  from a COCO results JSON R (compressed RLE masks, scores) and 8-bit grey semantic\n"
    "  PNGs in D (value = category id, 0 = no class; named as F's PNGs). Image ids must be\n"
    "  integers, as in COCO.\n";

typedef struct {
    const char *gt_json, *results, *semantic_dir, *out, *name;
    long threads;
    pan_dataset *gt;
    inst_dataset images;     /* the panoptic images as inst_results_load wants them */
    inst_dataset *res;
    size_t *by_image;        /* result indexes grouped by image index, file order within */
    size_t *image_start;     /* n_images + 1 offsets into by_image */
    int16_t channel_of[256]; /* grey value -> channel, -1 for none */
    int32_t *channel_category;
    store_writer *store;
} import_job;

static int parse_options(int argc, char **argv, import_job *o, avps_error *err) {
    for (int i = 0; i < argc; i++) {
        const char *threads = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--results", &o->results, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-dir", &o->semantic_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--head", &o->name, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err))) {
            if (r < 0 || (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0))
                return -1;
            continue;
        }
        return avps_fail(err, "import: unknown argument '%s'\n%s", argv[i], import_usage);
    }
    if (!o->gt_json || !o->results || !o->semantic_dir || !o->out || !o->name)
        return avps_fail(err, "import: --gt-json, --results, --semantic-dir, --out and --head are required\n%s",
                         import_usage);
    return 0;
}

static int by_id(const void *a, const void *b) {
    const inst_image *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* The dataset's images with integer ids, sorted, and its categories as channels. */
static int images_prepare(import_job *ij, avps_error *err) {
    const pan_dataset *gt = ij->gt;
    ij->images = (inst_dataset){.path = gt->path, .n_images = gt->n_images};
    ij->images.images = calloc(gt->n_images + 1, sizeof *ij->images.images);
    ij->channel_category = calloc(gt->n_categories + 1, sizeof *ij->channel_category);
    if (!ij->images.images || !ij->channel_category)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < gt->n_images; i++) {
        char *end;
        long long id = strtoll(gt->images[i].id, &end, 10);
        if (*end || end == gt->images[i].id)
            return avps_fail(err, "%s: image %s: import needs integer image ids", gt->path, gt->images[i].id);
        ij->images.images[i] = (inst_image){id, gt->images[i].width, gt->images[i].height};
    }
    qsort(ij->images.images, gt->n_images, sizeof *ij->images.images, by_id);
    for (int v = 0; v < 256; v++)
        ij->channel_of[v] = -1;
    for (size_t c = 0; c < gt->n_categories; c++) {
        int32_t id = gt->categories[c].id;
        if (id <= 0 || id > 255)
            return avps_fail(err, "%s: category %d does not fit an 8-bit semantic PNG", gt->path, id);
        ij->channel_of[id] = (int16_t)c;
        ij->channel_category[c] = id;
    }
    return 0;
}

/* Groups the results by image (counting sort: file order kept within an image). */
static int results_group(import_job *ij, avps_error *err) {
    size_t n_img = ij->images.n_images, n = ij->res->n_annotations;
    ij->image_start = calloc(n_img + 2, sizeof *ij->image_start);
    ij->by_image = malloc((n + 1) * sizeof *ij->by_image);
    if (!ij->image_start || !ij->by_image)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const inst_annotation *a = &ij->res->annotations[i];
        if (pan_dataset_category_index(ij->gt, a->category_id) < 0)
            return avps_fail(err, "%s: image %lld: result %zu: category %d is not in %s", ij->results,
                             (long long)a->image_id, i, a->category_id, ij->gt->path);
        ij->image_start[inst_image_index(&ij->images, a->image_id) + 2]++;
    }
    for (size_t k = 2; k <= n_img + 1; k++)
        ij->image_start[k] += ij->image_start[k - 1];
    for (size_t i = 0; i < n; i++)
        ij->by_image[ij->image_start[inst_image_index(&ij->images, ij->res->annotations[i].image_id) + 1]++] = i;
    return 0;
}

static int read_labels(const import_job *ij, const char *path, const pan_image *im, ss_map *ss, avps_error *err) {
    png_reader *r = png_reader_open_sized(path, im->width, im->height, err);
    if (!r)
        return -1;
    int rc = 0;
    uint8_t *rgb = malloc((size_t)im->width * 3 + 1);
    if (png_reader_source_depth(r) == 16)
        rc = avps_fail(err, "%s: a 16-bit PNG: only 8-bit semantic PNGs are read (category ids fit 8 bits; "
                       "a 16-bit map would lose its low byte), write it as 8-bit grey", path);
    else if (png_reader_width(r) != im->width || png_reader_height(r) != im->height)
        rc = avps_fail(err, "%s: %ux%u, but image %s is %ux%u", path, png_reader_width(r), png_reader_height(r),
                       im->id, im->width, im->height);
    else if (!rgb || !(ss->labels = malloc((size_t)im->width * im->height * sizeof *ss->labels)))
        rc = avps_fail(err, "out of memory");
    for (uint32_t y = 0; rc == 0 && y < im->height; y++) {
        if ((rc = png_reader_read_row(r, rgb, err)) != 0)
            break;
        for (uint32_t x = 0; rc == 0 && x < im->width; x++) {
            const uint8_t *p = rgb + 3 * x;
            if (p[0] != p[1] || p[1] != p[2])
                rc = avps_fail(err, "%s: pixel (%u, %u) is not grey: a semantic PNG holds category ids", path, x, y);
            else if (p[0] && ij->channel_of[p[0]] < 0)
                rc = avps_fail(err, "%s: pixel (%u, %u) holds %u, not a category of %s", path, x, y, p[0], ij->gt->path);
            else
                ss->labels[(size_t)y * im->width + x] = p[0] ? (uint16_t)ij->channel_of[p[0]] : SS_LABEL_NONE;
        }
    }
    free(rgb);
    png_reader_free(r);
    return rc;
}

static int build_output(const import_job *ij, const pan_image *im, head_output *out, avps_error *err) {
    out->width = im->width, out->height = im->height;
    ss_map *ss = &out->ss;
    *ss = (ss_map){.kind = SS_LABELS, .channels = (uint32_t)ij->gt->n_categories, .h = im->height, .w = im->width};
    ss->geo = ss_geometry_stretch(im->width, im->height, im->width, im->height);
    if (!(ss->channel_category = malloc(sizeof(int32_t) * ss->channels)))
        return avps_fail(err, "out of memory");
    memcpy(ss->channel_category, ij->channel_category, sizeof(int32_t) * ss->channels);
    long img = inst_image_index(&ij->images, strtoll(im->id, NULL, 10));
    size_t first = ij->image_start[img], last = ij->image_start[img + 1];
    if (!(out->instances = calloc(last - first + 1, sizeof *out->instances)))
        return avps_fail(err, "out of memory");
    for (size_t k = first; k < last; k++) {
        const inst_annotation *a = &ij->res->annotations[ij->by_image[k]];
        is_instance *inst = &out->instances[out->n_instances++];
        *inst = (is_instance){.category_id = a->category_id, .score = a->score};
        inst->box[0] = a->bbox[0], inst->box[1] = a->bbox[1];
        inst->box[2] = a->bbox[0] + a->bbox[2], inst->box[3] = a->bbox[1] + a->bbox[3];
        inst->mask = a->rle; /* borrowed: released below, before head_output_release */
    }
    return 0;
}

/* Every semantic PNG is there and of its image's size before the store is started, so a
 * missing one fails in a second, not after the others were written. */
static int check_pngs(const import_job *ij, avps_error *err) {
    for (size_t i = 0; i < ij->gt->n_annotations; i++) {
        const pan_annotation *ann = &ij->gt->annotations[i];
        const pan_image *im = pan_dataset_find_image(ij->gt, ann->image_id);
        if (!im)
            return avps_fail(err, "%s: image %s has an annotation but no entry in images", ij->gt_json, ann->image_id);
        char *png = path_join(ij->semantic_dir, ann->file_name);
        png_reader *r = png ? png_reader_open_sized(png, im->width, im->height, err) : NULL;
        if (!png)
            avps_fail(err, "out of memory");
        png_reader_free(r);
        free(png);
        if (!r)
            return avps_prefix(err, "image %s", ann->image_id);
    }
    return 0;
}

static int import_one(void *ctx, int thread, size_t item, job_blob *blob, avps_error *err) {
    import_job *ij = ctx;
    const pan_annotation *ann = &ij->gt->annotations[item];
    const pan_image *im = pan_dataset_find_image(ij->gt, ann->image_id);
    (void)thread, (void)blob;
    if (!im)
        return avps_fail(err, "%s: image %s has an annotation but no entry in images", ij->gt_json, ann->image_id);
    head_output out = {0};
    char *png = path_join(ij->semantic_dir, ann->file_name);
    int rc = png ? build_output(ij, im, &out, err) : avps_fail(err, "out of memory");
    if (rc == 0)
        rc = read_labels(ij, png, im, &out.ss, err);
    if (rc == 0)
        rc = store_writer_put(ij->store, im->id, &out, err);
    for (size_t i = 0; i < out.n_instances; i++)
        out.instances[i].mask = (rle_mask){0}; /* borrowed from ij->res */
    head_output_release(&out);
    free(png);
    return rc == 0 ? 0 : avps_prefix(err, "image %s", ann->image_id);
}

int cmd_import(avps_job *job, int argc, char **argv) {
    import_job ij = {0};
    avps_error err;
    int rc = parse_options(argc, argv, &ij, &err);
    if (rc == 0) {
        if (!ij.threads)
            ij.threads = job_cpu_count();
        ij.gt = pan_dataset_load(ij.gt_json, PAN_GROUND_TRUTH, &err);
        rc = ij.gt ? images_prepare(&ij, &err) : -1;
    }
    if (rc == 0)
        rc = (ij.res = inst_results_load(ij.results, &ij.images, IOU_SEGM, NULL, NULL, &err)) ? 0 : -1;
    if (rc == 0)
        rc = results_group(&ij, &err);
    if (rc == 0 && job_is_root(job))
        rc = check_pngs(&ij, &err);
    char *staging = rc == 0 ? store_staging_path(ij.out) : NULL;
    if (rc == 0)
        rc = staging ? job_output_dir(job, ij.out, &err) || job_output_claim(job, staging, &err)
                     : avps_fail(&err, "out of memory");
    free(staging);
    if (rc == 0)
        rc = (ij.store = store_writer_new(ij.out, ij.name, SS_LABELS, ij.channel_category,
                                          (uint32_t)ij.gt->n_categories, job_is_root(job), &err)) ? 0 : -1;
    if (rc == 0)
        job_barrier(job); /* the root has made the staging folder */
    if (rc == 0) {
        job_blob *blobs = job_map(job, ij.gt->n_annotations, (int)ij.threads, import_one, &ij);
        if (blobs) {
            rc = store_writer_finish(ij.store, &err);
            job_blobs_free(blobs, ij.gt->n_annotations);
        }
    }
    store_writer_free(ij.store);
    inst_dataset_free(ij.res);
    free(ij.images.images);
    free(ij.by_image);
    free(ij.image_start);
    free(ij.channel_category);
    pan_dataset_free(ij.gt);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
