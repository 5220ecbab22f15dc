/* cmd_synth.c: `avps synth`, writes the synthetic world as COCO panoptic ground truth in
 * two splits with disjoint image ids, held-out and evaluation, and on request a perturbed
 * prediction of the evaluation split. Ranks and threads write the PNGs of their images;
 * the root assembles the JSON files in image order, so the bytes never depend on them. */
#include "commands.h"

#include "cli.h"
#include "progress.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char synth_usage[] =
    "usage: avps synth --out DIR [--images N] [--heldout M] [--size WxH] [--seed S] [--preset coco]\n"
    "                  [--progress auto|bar|lines|none]\n"
    "                  [--pred] [--threads N]\n"
    "  Writes a synthetic COCO-like panoptic world (not real data; it exists to exercise and\n"
    "  measure the system): DIR/val.json + DIR/val/*.png, N evaluation images, and\n"
    "  DIR/heldout.json + DIR/heldout/*.png, M held-out images with other ids, both with\n"
    "  COCO's 133 panoptic categories. --pred adds DIR/pred.json + DIR/pred/*.png, a\n"
    "  perturbed prediction of the evaluation images. Defaults: 100 + 100 images of 320x240,\n"
    "  seed 1; --preset coco: 5000 + 1000 images of 640x480 (options given override it).\n"
    "  The same arguments give the same bytes for any number of ranks and threads.\n";

typedef struct {
    const char *name;
    long images, heldout, width, height;
} synth_preset;

static const synth_preset presets[] = {
    {"default", 100, 100, 320, 240},
    {"coco", 5000, 1000, 640, 480},
};

enum { DIR_HELDOUT, DIR_VAL, DIR_PRED, N_DIRS };
static const char *const dir_names[N_DIRS] = {"heldout", "val", "pred"};

typedef struct {
    const char *out, *preset;
    long images, heldout, width, height, seed, threads; /* -1: not given */
    progress_mode progress;
    int pred;
    char *dirs[N_DIRS];
} synth_options;

/* "WxH", both in 1..16384. */
static int parse_size(const char *text, long *w, long *h, avps_error *err) {
    char *end = NULL, *end2 = NULL;
    errno = 0;
    long a = isdigit((unsigned char)text[0]) ? strtol(text, &end, 10) : -1;
    long b = end && *end == 'x' && isdigit((unsigned char)end[1]) ? strtol(end + 1, &end2, 10) : -1;
    if (errno || !end2 || *end2 != '\0' || a < 1 || a > 16384 || b < 1 || b > 16384)
        return avps_fail(err, "option --size: '%s' is not WIDTHxHEIGHT with both in 1..16384", text);
    *w = a;
    *h = b;
    return 0;
}

/* 1 when argv[*i] is a numeric option (parsed into its slot), 0 when not, -1 on error. */
static int take_number(int argc, char **argv, int *i, synth_options *o, avps_error *err) {
    static const char *const names[] = {"--images", "--heldout", "--seed", "--threads"};
    long *const slots[] = {&o->images, &o->heldout, &o->seed, &o->threads};
    static const long lo[] = {1, 0, 0, 1};
    static const long hi[] = {(long)SYNTH_MAX_IMAGES, (long)SYNTH_MAX_IMAGES, 2147483647, 1024};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const char *v = NULL;
        int r = cli_take(argc, argv, i, names[k], &v, err);
        if (r != 0)
            return r < 0 || cli_int(names[k], v, lo[k], hi[k], slots[k], err) != 0 ? -1 : 1;
    }
    return 0;
}

static int parse_arguments(int argc, char **argv, synth_options *o, avps_error *err) {
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "synth", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *size = NULL;
        int r;
        if (strcmp(argv[i], "--pred") == 0) {
            o->pred = 1;
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--preset", &o->preset, err)) ||
            (r = cli_take(argc, argv, &i, "--size", &size, err)) || (r = take_number(argc, argv, &i, o, err))) {
            if (r < 0 || (size && parse_size(size, &o->width, &o->height, err) != 0))
                return -1;
            continue;
        }
        return avps_fail(err, "synth: unknown argument '%s'\n%s", argv[i], synth_usage);
    }
    if (!o->out)
        return avps_fail(err, "synth: --out is required\n%s", synth_usage);
    return 0;
}

/* Fills what was not given from the preset, whatever the order of the options. */
static int apply_preset(synth_options *o, avps_error *err) {
    const char *name = o->preset ? o->preset : "default";
    for (size_t k = 0; k < sizeof presets / sizeof *presets; k++) {
        const synth_preset *p = &presets[k];
        if (strcmp(p->name, name) != 0)
            continue;
        o->images = o->images < 0 ? p->images : o->images;
        o->heldout = o->heldout < 0 ? p->heldout : o->heldout;
        o->width = o->width < 0 ? p->width : o->width;
        o->height = o->height < 0 ? p->height : o->height;
        o->seed = o->seed < 0 ? 1 : o->seed;
        return 0;
    }
    return avps_fail(err, "synth: unknown preset '%s' (known: default, coco)", name);
}

/* Items are the held-out images, then the evaluation images. */
static uint64_t item_image_id(const synth_options *o, size_t item) {
    return (long)item < o->heldout ? synth_image_id(SYNTH_HELDOUT, item)
                                   : synth_image_id(SYNTH_VAL, item - (size_t)o->heldout);
}

static void png_name_of(uint64_t image_id, char *buf, size_t len) {
    snprintf(buf, len, "%012llu.png", (unsigned long long)image_id);
}

static int write_png_ids(const char *dir, const char *name, uint32_t w, uint32_t h, const uint32_t *ids,
                         avps_error *err) {
    char *path = path_join(dir, name);
    int rc = path ? png_write_ids(path, w, h, ids, err) : avps_fail(err, "out of memory");
    free(path);
    return rc;
}

/* The item's blob: n_gt, n_pred, then the segments. */
static int synth_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    const synth_options *o = ctx;
    (void)thread;
    int heldout = (long)item < o->heldout;
    uint64_t id = item_image_id(o, item);
    synth_params p = {(uint64_t)o->seed, (uint32_t)o->width, (uint32_t)o->height, o->pred && !heldout};
    synth_image img;
    char name[32];
    if (synth_image_render(&p, id, &img, err) != 0)
        return -1;
    png_name_of(id, name, sizeof name);
    uint64_t counts[2] = {img.n_gt, img.n_pred};
    int rc = write_png_ids(o->dirs[heldout ? DIR_HELDOUT : DIR_VAL], name, p.width, p.height, img.gt_ids, err);
    if (rc == 0 && p.with_pred)
        rc = write_png_ids(o->dirs[DIR_PRED], name, p.width, p.height, img.pred_ids, err);
    if (rc == 0 && (job_blob_append(out, counts, sizeof counts) ||
                    job_blob_append(out, img.gt_segments, img.n_gt * sizeof *img.gt_segments) ||
                    job_blob_append(out, img.pred_segments, img.n_pred * sizeof *img.pred_segments)))
        rc = avps_fail(err, "out of memory");
    synth_image_release(&img);
    if (rc != 0)
        avps_prefix(err, "synthetic image %llu", (unsigned long long)id);
    return rc;
}

/* One JSON file: `n` items from `first`, their ground truth (side 0) or prediction (1). */
typedef struct {
    const char *file;
    size_t first, n;
    int side;
} json_part;

/* The text a written dataset points into, per image. */
typedef struct {
    char id[24], jpg[32], png[32];
} image_names;

/* The category table as pan_categories, its text copied: pan_category's is not const. */
typedef struct {
    pan_category cats[SYNTH_CATEGORY_COUNT];
    char text[SYNTH_CATEGORY_COUNT][2][32];
} category_list;

static size_t categories_fill(category_list *c) {
    for (size_t k = 0; k < SYNTH_CATEGORY_COUNT; k++) {
        const synth_category_info *info = synth_category_at(k);
        snprintf(c->text[k][0], sizeof c->text[k][0], "%s", info->name);
        snprintf(c->text[k][1], sizeof c->text[k][1], "%s", info->supercategory);
        c->cats[k] = (pan_category){info->id, info->isthing, c->text[k][0], c->text[k][1], 0, {0}};
    }
    return SYNTH_CATEGORY_COUNT;
}

/* Images name the JPEG a COCO image would have (there is none here), annotations their
 * PNG. Segments point into the blobs. */
static void assemble(const synth_options *o, job_blob *blobs, const json_part *part, pan_dataset *ds,
                     image_names *names) {
    for (size_t i = 0; i < part->n; i++) {
        size_t item = part->first + i;
        uint64_t id = item_image_id(o, item), counts[2];
        memcpy(counts, blobs[item].data, sizeof counts);
        image_names *nm = &names[i];
        snprintf(nm->id, sizeof nm->id, "%llu", (unsigned long long)id);
        snprintf(nm->jpg, sizeof nm->jpg, "%012llu.jpg", (unsigned long long)id);
        png_name_of(id, nm->png, sizeof nm->png);
        ds->images[i] = (pan_image){nm->id, nm->jpg, (uint32_t)o->width, (uint32_t)o->height};
        pan_annotation *a = &ds->annotations[i];
        a->image_id = nm->id;
        a->file_name = nm->png;
        a->n_segments = counts[part->side];
        a->segments = (pan_segment *)(blobs[item].data + sizeof counts) + (part->side ? counts[0] : 0);
    }
}

static int write_part(const synth_options *o, job_blob *blobs, const json_part *part, category_list *cl,
                      avps_error *err) {
    pan_dataset ds = {0};
    image_names *names = calloc(part->n + 1, sizeof *names);
    char *path = path_join(o->out, part->file);
    ds.n_images = ds.n_annotations = part->n;
    ds.images = calloc(part->n + 1, sizeof *ds.images);
    ds.annotations = calloc(part->n + 1, sizeof *ds.annotations);
    ds.n_categories = categories_fill(cl);
    ds.categories = cl->cats;
    int rc;
    if (!names || !path || !ds.images || !ds.annotations) {
        rc = avps_fail(err, "out of memory");
    } else {
        assemble(o, blobs, part, &ds, names);
        rc = pan_dataset_write(&ds, path, err);
    }
    free(names);
    free(path);
    free(ds.images);
    free(ds.annotations);
    return rc;
}

static int write_json(const synth_options *o, job_blob *blobs, avps_error *err) {
    size_t m = (size_t)o->heldout, n = (size_t)o->images;
    const json_part parts[] = {{"heldout.json", 0, m, 0}, {"val.json", m, n, 0}, {"pred.json", m, n, 1}};
    category_list *cl = malloc(sizeof *cl);
    if (!cl)
        return avps_fail(err, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < (o->pred ? 3u : 2u) && rc == 0; k++)
        rc = write_part(o, blobs, &parts[k], cl, err);
    free(cl);
    return rc;
}

static int run(avps_job *job, synth_options *o, avps_error *err) {
    if (o->threads < 0)
        o->threads = job_cpu_count();
    if (job_output_dir(job, o->out, err) != 0)
        return -1;
    for (int d = 0; d < N_DIRS; d++) {
        if (d == DIR_PRED && !o->pred)
            continue;
        if (!(o->dirs[d] = path_join(o->out, dir_names[d])))
            return avps_fail(err, "out of memory");
        if (job_is_root(job) && dir_create(o->dirs[d], err) != 0)
            return -1;
    }
    job_barrier(job); /* the root has made the folders it claimed */
    size_t n = (size_t)(o->heldout + o->images);
    job_blob *blobs = progress_map(job, n, (int)o->threads, synth_one, o, o->progress, "avps synth");
    if (!blobs)
        return 0; /* not the root: its part is sent */
    int rc = write_json(o, blobs, err);
    job_blobs_free(blobs, n);
    return rc;
}

int cmd_synth(avps_job *job, int argc, char **argv) {
    synth_options o = {NULL, NULL, -1, -1, -1, -1, -1, -1, PROGRESS_AUTO, 0, {NULL, NULL, NULL}};
    avps_error err = {{0}};
    int rc = parse_arguments(argc, argv, &o, &err);
    if (rc == 0)
        rc = apply_preset(&o, &err);
    if (rc == 0)
        rc = run(job, &o, &err);
    for (int d = 0; d < N_DIRS; d++)
        free(o.dirs[d]);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
