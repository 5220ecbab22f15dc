/* cmd_import.c: `avps import`, a network's dumped outputs in the formats users have them
 * (COCO results JSON; semantic label-map PNGs, .npy / .npy.zst arrays or detectron2's
 * sem_seg_predictions.json; or a COCO panoptic prediction) turned into a prediction store
 * that the replay backend reads. Either side may be missing (an instance-only or a
 * semantic-only end). The store is written to its staging folder and put in place only
 * when every image is done (model/store.c), so a failed import leaves nothing behind. */
#include "commands.h"

#include "cli.h"
#include "progress.h"
#include "import.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char import_usage[] =
    "usage: avps import --gt-json F --out STORE --head NAME [--results R]\n"
    "                   [--semantic-dir D [--semantic-format png|npy] [--semantic-kind probs|logits]\n"
    "                    [--ss-stride N] | --semantic-json S | --panoptic-json P [--panoptic-dir D]]\n"
    "                   [--category-map M] [--results-category-map M] [--semantic-category-map M]\n"
    "                   [--ignore-label N|none] [--threads N] [--progress auto|bar|lines|none]\n"
    "  Makes a prediction store (docs/formats.md) for the images of the panoptic dataset F.\n"
    "  Instances: a COCO results JSON R. Semantic side: per image, in D, a label-map PNG\n"
    "  (8- or 16-bit grey, or palette indexes) or an array <stem>.npy / <stem>.npy.zst (C x h x w\n"
    "  probabilities or logits, or an h x w label map); or detectron2's sem_seg_predictions.json\n"
    "  S. Or both sides from a COCO panoptic prediction P (PNGs in D, default P without .json).\n"
    "  Label values and result categories are category ids, or a network's class indexes\n"
    "  mapped by M (a JSON object or list, a file, or a preset: coco80, coco133, ...).\n"
    "  Image ids must be integers, as in COCO.\n";

static int take_number(int argc, char **argv, int *i, import_job *o, avps_error *err) {
    const char *v = NULL;
    int r;
    if ((r = cli_take(argc, argv, i, "--threads", &v, err)) != 0)
        return r < 0 || cli_int("--threads", v, 1, 1024, &o->threads, err) != 0 ? -1 : 1;
    if ((r = cli_take(argc, argv, i, "--ss-stride", &v, err)) != 0)
        return r < 0 || cli_int("--ss-stride", v, 1, 1024, &o->stride, err) != 0 ? -1 : 1;
    return 0;
}

static int parse_options(int argc, char **argv, import_job *o, avps_error *err) {
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "import", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--results", &o->results, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-dir", &o->semantic_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-format", &o->semantic_format, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-kind", &o->semantic_kind, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-json", &o->semantic_json, err)) ||
            (r = cli_take(argc, argv, &i, "--panoptic-json", &o->panoptic_json, err)) ||
            (r = cli_take(argc, argv, &i, "--panoptic-dir", &o->panoptic_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--category-map", &o->map_spec, err)) ||
            (r = cli_take(argc, argv, &i, "--results-category-map", &o->results_map_spec, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-category-map", &o->semantic_map_spec, err)) ||
            (r = cli_take(argc, argv, &i, "--ignore-label", &o->ignore_text, err)) ||
            (r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--head", &o->name, err)) || (r = take_number(argc, argv, &i, o, err))) {
            if (r < 0)
                return -1;
            continue;
        }
        return avps_fail(err, "import: unknown argument '%s'\n%s", argv[i], import_usage);
    }
    if (!o->gt_json || !o->out || !o->name)
        return avps_fail(err, "import: --gt-json, --out and --head are required\n%s", import_usage);
    int n_sem = !!o->semantic_dir + !!o->semantic_json + !!o->panoptic_json;
    if (n_sem > 1)
        return avps_fail(err, "import: give one of --semantic-dir, --semantic-json and --panoptic-json");
    if (o->panoptic_json && o->results)
        return avps_fail(err, "import: --panoptic-json gives the instances too: no --results with it");
    if (!n_sem && !o->results)
        return avps_fail(err, "import: nothing to import: give --results, a semantic source or --panoptic-json\n%s",
                         import_usage);
    const char *fmt = o->semantic_format ? o->semantic_format : "png";
    if (strcmp(fmt, "png") && strcmp(fmt, "npy"))
        return avps_fail(err, "import: --semantic-format must be png or npy, not '%s'", fmt);
    o->sem = o->panoptic_json ? SEM_PANOPTIC : o->semantic_json ? SEM_JSON : !o->semantic_dir ? SEM_NONE
             : strcmp(fmt, "npy") == 0 ? SEM_NPY : SEM_PNG;
    if (o->semantic_kind && strcmp(o->semantic_kind, "probs") && strcmp(o->semantic_kind, "logits"))
        return avps_fail(err, "import: --semantic-kind must be probs or logits, not '%s'", o->semantic_kind);
    return 0;
}

static int by_id(const void *a, const void *b) {
    const inst_image *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int load_maps(import_job *ij, avps_error *err) {
    const char *rs = ij->results_map_spec ? ij->results_map_spec : ij->map_spec;
    const char *ss = ij->semantic_map_spec ? ij->semantic_map_spec : ij->map_spec;
    if (rs && (ij->has_results_map = category_map_load(rs, &ij->results_map, err) == 0) == 0)
        return avps_prefix(err, "import");
    if (ss && (ij->has_semantic_map = category_map_load(ss, &ij->semantic_map, err) == 0) == 0)
        return avps_prefix(err, "import");
    /* 0 is "no class" in a map of category ids; networks mark it 255 (detectron2's and
     * mmsegmentation's ignore value) */
    ij->ignore_label = ij->has_semantic_map ? 255 : 0;
    if (ij->ignore_text && strcmp(ij->ignore_text, "none") == 0)
        ij->ignore_label = -1;
    else if (ij->ignore_text && cli_int("--ignore-label", ij->ignore_text, 0, LABEL_VALUES - 1, &ij->ignore_label,
                                        err) != 0)
        return -1;
    return 0;
}

/* What each label value means, once: a channel (the dataset category's index), no class,
 * or one of the two refusals. */
static int label_table(import_job *ij, avps_error *err) {
    if (!(ij->label_channel = malloc(LABEL_VALUES * sizeof *ij->label_channel)))
        return avps_fail(err, "out of memory");
    for (long v = 0; v < LABEL_VALUES; v++) {
        int32_t cat = (int32_t)v, *to = &ij->label_channel[v];
        if (v == ij->ignore_label) {
            *to = LABEL_NO_CLASS;
            continue;
        }
        if (ij->has_semantic_map && (cat = category_map_get(&ij->semantic_map, v)) <= 0) {
            *to = cat == CATEGORY_MAP_NONE ? LABEL_NO_CLASS : LABEL_OUTSIDE_MAP;
            continue;
        }
        long c = pan_dataset_category_index(ij->gt, cat);
        *to = c < 0 ? LABEL_NOT_IN_DATASET : (int32_t)c;
    }
    return 0;
}

int import_label(const import_job *ij, uint32_t v, const char *where, uint16_t *channel, avps_error *err) {
    int32_t c = v < LABEL_VALUES ? ij->label_channel[v] : LABEL_OUTSIDE_MAP;
    if (c >= 0 || c == LABEL_NO_CLASS) {
        *channel = c >= 0 ? (uint16_t)c : SS_LABEL_NONE;
        return 0;
    }
    if (!ij->has_semantic_map)
        return avps_fail(err, "%s holds %u, not a category of %s", where, v, ij->gt->path);
    if (c == LABEL_OUTSIDE_MAP)
        return avps_fail(err, "%s holds index %u, outside the category map %s", where, v, ij->semantic_map.name);
    return avps_fail(err, "%s holds index %u, which the category map %s makes category %d, not a category of %s",
                     where, v, ij->semantic_map.name, category_map_get(&ij->semantic_map, v), ij->gt->path);
}

/* The dataset's images with integer ids, sorted, and its categories as label channels. */
static int images_prepare(import_job *ij, avps_error *err) {
    const pan_dataset *gt = ij->gt;
    ij->images = (inst_dataset){.path = gt->path, .n_images = gt->n_images};
    ij->images.images = calloc(gt->n_images + 1, sizeof *ij->images.images);
    if (!ij->images.images)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < gt->n_images; i++) {
        char *end;
        long long id = strtoll(gt->images[i].id, &end, 10);
        if (*end || end == gt->images[i].id)
            return avps_fail(err, "%s: image %s: import needs integer image ids", gt->path, gt->images[i].id);
        ij->images.images[i] = (inst_image){id, gt->images[i].width, gt->images[i].height};
    }
    qsort(ij->images.images, gt->n_images, sizeof *ij->images.images, by_id);
    for (size_t i = 1; i < gt->n_images; i++)
        if (ij->images.images[i].id == ij->images.images[i - 1].id)
            return avps_fail(err, "%s: image %lld is listed twice", gt->path, (long long)ij->images.images[i].id);
    return 0;
}

/* Maps the results' categories (a network's indexes under a map; null drops the result)
 * and groups them by image (counting sort: file order kept within an image). */
static int results_group(import_job *ij, avps_error *err) {
    size_t n_img = ij->images.n_images, n = ij->res ? ij->res->n_annotations : 0;
    ij->image_start = calloc(n_img + 2, sizeof *ij->image_start);
    ij->by_image = malloc((n + 1) * sizeof *ij->by_image);
    if (!ij->image_start || !ij->by_image)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        inst_annotation *a = &ij->res->annotations[i];
        int32_t cat = a->category_id;
        if (ij->has_results_map && (cat = category_map_get(&ij->results_map, a->category_id)) == CATEGORY_MAP_ABSENT)
            return avps_fail(err, "%s: image %lld: result %zu: category index %d is outside the category map %s",
                             ij->results, (long long)a->image_id, i, a->category_id, ij->results_map.name);
        if (cat != CATEGORY_MAP_NONE && pan_dataset_category_index(ij->gt, cat) < 0)
            return avps_fail(err, "%s: image %lld: result %zu: category %d%s is not in %s", ij->results,
                             (long long)a->image_id, i, cat, ij->has_results_map ? " (mapped)" : "", ij->gt->path);
        a->category_id = cat;
        if (cat != CATEGORY_MAP_NONE)
            ij->image_start[inst_image_index(&ij->images, a->image_id) + 2]++;
    }
    for (size_t k = 2; k <= n_img + 1; k++)
        ij->image_start[k] += ij->image_start[k - 1];
    for (size_t i = 0; i < n; i++)
        if (ij->res->annotations[i].category_id != CATEGORY_MAP_NONE)
            ij->by_image[ij->image_start[inst_image_index(&ij->images, ij->res->annotations[i].image_id) + 1]++] = i;
    return 0;
}

static int results_instances(const import_job *ij, const pan_image *im, head_output *out, avps_error *err) {
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
    for (size_t i = 0; ij->sem == SEM_PNG && i < ij->gt->n_annotations; i++) {
        const pan_annotation *ann = &ij->gt->annotations[i];
        const pan_image *im = pan_dataset_find_image(ij->gt, ann->image_id);
        if (!im)
            return avps_fail(err, "%s: image %s has an annotation but no entry in images", ij->gt_json, ann->image_id);
        char *png = path_join(ij->semantic_dir, ann->file_name);
        png_label_reader *r = png ? png_label_open(png, im->width, im->height, err) : NULL;
        if (!png)
            avps_fail(err, "out of memory");
        png_label_free(r);
        free(png);
        if (!r)
            return avps_prefix(err, "image %s", ann->image_id);
    }
    return 0;
}

static int build_output(const import_job *ij, const pan_annotation *ann, const pan_image *im, head_output *out,
                        avps_error *err) {
    out->width = im->width, out->height = im->height;
    out->ss = (ss_map){.kind = ij->kind};
    if (ij->sem == SEM_PANOPTIC)
        return import_panoptic_read(ij, im, out, err);
    if (ij->res && results_instances(ij, im, out, err) != 0)
        return -1;
    return ij->sem == SEM_NONE ? 0 : import_semantic_read(ij, ann, im, &out->ss, err);
}

static int import_one(void *ctx, int thread, size_t item, job_blob *blob, avps_error *err) {
    import_job *ij = ctx;
    const pan_annotation *ann = &ij->gt->annotations[item];
    const pan_image *im = pan_dataset_find_image(ij->gt, ann->image_id);
    (void)thread, (void)blob;
    head_output out = {0};
    int rc = im ? build_output(ij, ann, im, &out, err)
                : avps_fail(err, "%s: image %s has an annotation but no entry in images", ij->gt_json, ann->image_id);
    if (rc == 0)
        rc = store_writer_put(ij->store, im->id, &out, err);
    for (size_t i = 0; ij->res && i < out.n_instances; i++)
        out.instances[i].mask = (rle_mask){0}; /* borrowed from ij->res */
    head_output_release(&out);
    return rc == 0 ? 0 : avps_prefix(err, "image %s", ann->image_id);
}

/* A store folder given as a link to a folder is followed: the store replaces the
 * target, and the link stays. */
static int resolve_out(import_job *ij, avps_error *err) {
    struct stat st;
    if (lstat(ij->out, &st) != 0 || !S_ISLNK(st.st_mode))
        return 0;
    if (!(ij->out_target = path_canonical(ij->out)))
        return avps_fail(err, "out of memory");
    ij->out = ij->out_target;
    return 0;
}

/* Inputs read and checked on every rank before anything is written; the store goes to
 * its staging folder, which the job removes if it fails (store_writer_new). */
static int prepare(avps_job *job, import_job *ij, avps_error *err) {
    if (!(ij->gt = pan_dataset_load(ij->gt_json, PAN_GROUND_TRUTH, err)) || images_prepare(ij, err) != 0 ||
        load_maps(ij, err) != 0 || label_table(ij, err) != 0)
        return -1;
    if (ij->results && !(ij->res = inst_results_load(ij->results, &ij->images, IOU_SEGM, NULL, NULL, err)))
        return -1;
    if (results_group(ij, err) != 0)
        return -1;
    ij->kind = SS_LABELS;
    if (ij->sem == SEM_PANOPTIC ? import_panoptic_prepare(ij, err) != 0
                                : ij->sem != SEM_NONE && import_semantic_prepare(ij, err) != 0)
        return -1;
    if (job_is_root(job) && check_pngs(ij, err) != 0)
        return -1;
    if (resolve_out(ij, err) != 0)
        return -1;
    char *staging = store_staging_path(ij->out);
    int rc = staging ? job_output_dir(job, ij->out, err) || job_output_claim(job, staging, err)
                     : avps_fail(err, "out of memory");
    free(staging);
    if (rc != 0)
        return -1;
    if (!(ij->store = store_writer_new(ij->out, ij->name, ij->kind, ij->channel_category, ij->channels,
                                       job_is_root(job), err)))
        return -1;
    if (!ij->res && ij->sem != SEM_PANOPTIC)
        store_writer_no_instances(ij->store);
    job_barrier(job); /* the root has made the staging folder */
    return 0;
}

static int run(avps_job *job, import_job *ij, avps_error *err) {
    if (prepare(job, ij, err) != 0)
        return -1;
    size_t n = ij->gt->n_annotations;
    job_blob *blobs = progress_map(job, n, (int)ij->threads, import_one, ij, ij->progress, "avps import");
    if (!blobs)
        return 0;
    job_blobs_free(blobs, n);
    return store_writer_finish(ij->store, err);
}

int cmd_import(avps_job *job, int argc, char **argv) {
    import_job ij = {0};
    avps_error err;
    int rc = parse_options(argc, argv, &ij, &err);
    if (rc == 0) {
        if (!ij.threads)
            ij.threads = job_cpu_count();
        rc = run(job, &ij, &err);
    }
    store_writer_free(ij.store);
    import_semantic_release(&ij);
    import_panoptic_release(&ij);
    inst_dataset_free(ij.res);
    free(ij.images.images);
    free(ij.by_image);
    free(ij.image_start);
    free(ij.channel_category);
    free(ij.label_channel);
    free(ij.out_target);
    if (ij.has_results_map)
        category_map_release(&ij.results_map);
    if (ij.has_semantic_map)
        category_map_release(&ij.semantic_map);
    pan_dataset_free(ij.gt);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
