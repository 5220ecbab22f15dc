/* cmd_synth.c: `avps synth`, writes the synthetic world as COCO panoptic files: a ground
 * truth and a perturbed prediction. Ranks and threads write the PNGs of their images;
 * the root assembles the two JSON files in image order. */
#include "commands.h"

#include "cli.h"

#include <stdlib.h>
#include <string.h>

const char synth_usage[] =
    "usage: avps synth --out DIR [--images N] [--width W] [--height H] [--seed S] [--threads N]\n"
    "  Writes DIR/gt.json, DIR/gt/*.png, DIR/pred.json and DIR/pred/*.png: a synthetic\n"
    "  COCO-like panoptic ground truth (default 100 images of 640x480) and a perturbed\n"
    "  prediction of it. The same seed gives the same files for any number of ranks.\n";

typedef struct {
    const char *out;
    long images, width, height, seed, threads;
    char *gt_dir, *pred_dir;
} synth_options;

static int parse_options(int argc, char **argv, synth_options *o, avps_error *err) {
    static const char *const names[] = {"--images", "--width", "--height", "--seed", "--threads"};
    long *const slots[] = {&o->images, &o->width, &o->height, &o->seed, &o->threads};
    static const long hi[] = {100000000, 16384, 16384, 2147483647, 1024};
    for (int i = 0; i < argc; i++) {
        int r = cli_take(argc, argv, &i, "--out", &o->out, err), matched = r != 0;
        for (size_t k = 0; k < 5 && r == 0; k++) {
            const char *v = NULL;
            r = cli_take(argc, argv, &i, names[k], &v, err);
            if (r > 0) {
                matched = 1;
                if (cli_int(names[k], v, k == 3 ? 0 : 1, hi[k], slots[k], err) != 0)
                    return -1;
            }
        }
        if (r < 0)
            return -1;
        if (!matched)
            return avps_fail(err, "synth: unknown argument '%s'\n%s", argv[i], synth_usage);
    }
    if (!o->out)
        return avps_fail(err, "synth: --out is required\n%s", synth_usage);
    return 0;
}

static void file_name_of(size_t item, char *buf, size_t len) { snprintf(buf, len, "%012zu.png", item + 1); }

static int write_png_ids(const char *dir, const char *name, uint32_t w, uint32_t h, const uint32_t *ids,
                         avps_error *err) {
    size_t npix = (size_t)w * h;
    uint8_t *rgb = malloc(npix * 3 + 1);
    char *path = path_join(dir, name);
    int rc = -1;
    if (!rgb || !path) {
        avps_fail(err, "out of memory");
    } else {
        for (size_t i = 0; i < npix; i++)
            id_to_rgb(ids[i], rgb + 3 * i);
        rc = png_write_rgb(path, w, h, rgb, err);
    }
    free(rgb);
    free(path);
    return rc;
}

/* The item's blob: n_gt, n_pred, then the segments. */
static int synth_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    const synth_options *o = ctx;
    (void)thread;
    synth_params p = {(uint64_t)o->seed, (uint32_t)o->width, (uint32_t)o->height};
    synth_image img;
    char name[32];
    if (synth_image_render(&p, item, &img, err) != 0)
        return -1;
    file_name_of(item, name, sizeof name);
    uint64_t counts[2] = {img.n_gt, img.n_pred};
    int rc = write_png_ids(o->gt_dir, name, p.width, p.height, img.gt_ids, err);
    if (rc == 0)
        rc = write_png_ids(o->pred_dir, name, p.width, p.height, img.pred_ids, err);
    if (rc == 0 && (job_blob_append(out, counts, sizeof counts) ||
                    job_blob_append(out, img.gt_segments, img.n_gt * sizeof *img.gt_segments) ||
                    job_blob_append(out, img.pred_segments, img.n_pred * sizeof *img.pred_segments)))
        rc = avps_fail(err, "out of memory");
    synth_image_release(&img);
    return rc;
}

/* Builds one side's dataset from the blobs; segments point into the blobs. */
static int assemble(const synth_options *o, job_blob *blobs, int side, pan_dataset *ds, char (*names)[32],
                    char (*ids)[24], char (*cat_names)[16]) {
    size_t n = (size_t)o->images, nc = synth_category_count();
    ds->n_images = ds->n_annotations = n;
    ds->n_categories = nc;
    ds->images = calloc(n, sizeof *ds->images);
    ds->annotations = calloc(n, sizeof *ds->annotations);
    ds->categories = calloc(nc, sizeof *ds->categories);
    if (!ds->images || !ds->annotations || !ds->categories)
        return -1;
    for (size_t c = 0; c < nc; c++) {
        ds->categories[c].id = synth_category(c, &ds->categories[c].isthing, cat_names[c], 16);
        ds->categories[c].name = cat_names[c];
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t counts[2];
        memcpy(counts, blobs[i].data, sizeof counts);
        file_name_of(i, names[i], 32);
        snprintf(ids[i], 24, "%zu", i + 1);
        ds->images[i] = (pan_image){ids[i], names[i], (uint32_t)o->width, (uint32_t)o->height};
        pan_annotation *a = &ds->annotations[i];
        a->image_id = ids[i];
        a->file_name = names[i];
        a->n_segments = counts[side];
        a->segments = (pan_segment *)(blobs[i].data + sizeof counts) + (side ? counts[0] : 0);
    }
    return 0;
}

static void disassemble(pan_dataset *ds) {
    free(ds->images);
    free(ds->annotations);
    free(ds->categories);
}

static int write_json(const synth_options *o, job_blob *blobs, avps_error *err) {
    size_t n = (size_t)o->images;
    char (*names)[32] = calloc(n, sizeof *names);
    char (*ids)[24] = calloc(n, sizeof *ids);
    char (*cat_names)[16] = calloc(synth_category_count(), sizeof *cat_names);
    char *gt_json = path_join(o->out, "gt.json"), *pred_json = path_join(o->out, "pred.json");
    int rc = -1;
    for (int side = 0; side < 2 && names && ids && cat_names && gt_json && pred_json; side++) {
        pan_dataset ds = {0};
        if (assemble(o, blobs, side, &ds, names, ids, cat_names) != 0) {
            disassemble(&ds);
            break;
        }
        rc = pan_dataset_write(&ds, side ? pred_json : gt_json, err);
        disassemble(&ds);
        if (rc != 0)
            break;
    }
    if (rc != 0 && err->msg[0] == '\0')
        avps_fail(err, "out of memory");
    free(names);
    free(ids);
    free(cat_names);
    free(gt_json);
    free(pred_json);
    return rc;
}

int cmd_synth(avps_job *job, int argc, char **argv) {
    synth_options o = {NULL, 100, 640, 480, 1, 0, NULL, NULL};
    avps_error err = {{0}};
    int rc = parse_options(argc, argv, &o, &err);
    if (rc == 0) {
        if (!o.threads)
            o.threads = job_cpu_count();
        o.gt_dir = path_join(o.out, "gt");
        o.pred_dir = path_join(o.out, "pred");
        rc = o.gt_dir && o.pred_dir ? 0 : avps_fail(&err, "out of memory");
    }
    if (rc == 0)
        rc = dir_create(o.gt_dir, &err) || dir_create(o.pred_dir, &err) ? -1 : 0;
    if (rc == 0) {
        job_blob *blobs = job_map(job, (size_t)o.images, (int)o.threads, synth_one, &o);
        if (blobs) {
            rc = write_json(&o, blobs, &err);
            job_blobs_free(blobs, (size_t)o.images);
        }
    }
    free(o.gt_dir);
    free(o.pred_dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
