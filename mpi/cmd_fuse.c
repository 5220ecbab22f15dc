/* cmd_fuse.c: `avps fuse`, the two-level fusion of two network ends (simulated or stored)
 * with a class table, written as COCO panoptic JSON + PNGs that panopticapi reads. Each
 * rank runs the heads on its images and writes their PNGs; the root writes the JSON in
 * the order of the dataset. */
#include "commands.h"

#include "../fusion/fusion.h"
#include "cli.h"
#include "progress.h"
#include "end_spec.h"

#include <stdlib.h>
#include <string.h>

const char fuse_usage[] =
    "usage: avps fuse --gt-json F [--gt-dir D] --end NAME=SPEC --end NAME=SPEC [--class-table F]\n"
    "                 [--progress auto|bar|lines|none]\n"
    "                 --out-json F [--out-dir D] [--ss-weights A,B] [--combiner heuristic|upsnet]\n"
    "                 [--confidence-thr X] [--overlap-thr X] [--stuff-area-limit N] [--threads N]\n"
    "  Fuses two ends image by image: the SS averaged (weights A, B; default equal), each\n"
    "  thing class's instances from the end the class table names, then the combiner. SPEC\n"
    "  is sim:PROFILE[:SEED] or replay:STORE_DIR; NAME is how the class table names the end.\n"
    "  An end without a semantic side gives no SS; with an end without instances every thing\n"
    "  class takes the other end's, and no class table is needed.\n"
    "  The images are those of the panoptic JSON F (sim heads also read its PNGs, --gt-dir,\n"
    "  default F without .json). Writes COCO panoptic JSON and PNGs (--out-dir defaults to\n"
    "  --out-json without .json). Defaults: 0.5, 0.5, 4096 as panopticapi.\n";

typedef struct {
    const char *gt_json, *gt_dir, *table, *out_json, *out_dir, *ends_text[2];
    int n_ends;
    double ss_weights[2];
    fusion_params params;
    long threads;
    progress_mode progress;
} fuse_options;

/* What each end gives, fixed once its head is made: an end without a semantic side
 * (0 channels) has SS weight 0; one without instances is never a class's source. */

typedef struct {
    const fuse_options *opt;
    pan_dataset *gt;
    end_spec specs[2];
    head *heads[2];
    class_table table;
    int *end_of_category;
    char **png_names;
    double ss_weights[2];
} fuse_job;

static int parse_weights(const char *text, double w[2], avps_error *err) {
    char *end;
    w[0] = strtod(text, &end);
    if (*end != ',')
        return avps_fail(err, "fuse: --ss-weights must be two numbers A,B, not '%s'", text);
    w[1] = strtod(end + 1, &end);
    if (*end || !(w[0] >= 0) || !(w[1] >= 0) || !(w[0] + w[1] > 0))
        return avps_fail(err, "fuse: --ss-weights must be two numbers >= 0, not both 0: '%s'", text);
    return 0;
}

/* Options that take a number or a name; 1 when argv[*i] was one, -1 on a bad value. */
static int take_value(int argc, char **argv, int *i, fuse_options *o, avps_error *err) {
    const char *v = NULL;
    long n;
    int r;
    if ((r = cli_take(argc, argv, i, "--ss-weights", &v, err)) != 0)
        return r < 0 || parse_weights(v, o->ss_weights, err) != 0 ? -1 : 1;
    if ((r = cli_take(argc, argv, i, "--combiner", &v, err)) != 0) {
        if (r > 0 && combiner_kind_parse(v, &o->params.combiner) != 0)
            return avps_fail(err, "fuse: --combiner must be heuristic or upsnet, not '%s'", v);
        return r;
    }
    if ((r = cli_take(argc, argv, i, "--confidence-thr", &v, err)) != 0) {
        double x;
        if (r < 0 || cli_double("--confidence-thr", v, &x, err) != 0)
            return -1;
        for (int e = 0; e < FUSION_MAX_ENDS; e++)
            o->params.heuristic.confidence_thr[e] = x;
        return 1;
    }
    if ((r = cli_take(argc, argv, i, "--overlap-thr", &v, err)) != 0)
        return r < 0 || cli_double("--overlap-thr", v, &o->params.heuristic.overlap_thr, err) != 0 ? -1 : 1;
    if ((r = cli_take(argc, argv, i, "--stuff-area-limit", &v, err)) != 0) {
        if (r < 0 || cli_int("--stuff-area-limit", v, 0, 1L << 40, &n, err) != 0)
            return -1;
        o->params.heuristic.stuff_area_limit = (uint64_t)n;
        return 1;
    }
    if ((r = cli_take(argc, argv, i, "--threads", &v, err)) != 0)
        return r < 0 || cli_int("--threads", v, 1, 1024, &o->threads, err) != 0 ? -1 : 1;
    return 0;
}

static int parse_options(int argc, char **argv, fuse_options *o, avps_error *err) {
    fusion_params_default(&o->params);
    o->ss_weights[0] = o->ss_weights[1] = 1;
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "fuse", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *end = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--gt-dir", &o->gt_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--class-table", &o->table, err)) ||
            (r = cli_take(argc, argv, &i, "--out-json", &o->out_json, err)) ||
            (r = cli_take(argc, argv, &i, "--out-dir", &o->out_dir, err)) || (r = take_value(argc, argv, &i, o, err))) {
            if (r < 0)
                return -1;
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--end", &end, err)) != 0) {
            if (r < 0)
                return -1;
            if (o->n_ends == 2)
                return avps_fail(err, "fuse: exactly two --end are fused");
            o->ends_text[o->n_ends++] = end;
            continue;
        }
        return avps_fail(err, "fuse: unknown argument '%s'\n%s", argv[i], fuse_usage);
    }
    if (!o->gt_json || o->n_ends != 2 || !o->out_json)
        return avps_fail(err, "fuse: --gt-json, two --end and --out-json are required\n%s", fuse_usage);
    return 0;
}

/* ---- inputs -------------------------------------------------------------------------- */

static int load_inputs(fuse_job *fj, avps_error *err) {
    const fuse_options *o = fj->opt;
    if (!(fj->gt = pan_dataset_load(o->gt_json, PAN_GROUND_TRUTH, err)))
        return -1;
    const char *names[2];
    for (int e = 0; e < 2; e++) {
        if (end_spec_parse(o->ends_text[e], &fj->specs[e], err) != 0 ||
            !(fj->heads[e] = head_new(&fj->specs[e].cfg, fj->gt, err)))
            return -1;
        names[e] = fj->specs[e].cfg.name;
    }
    if (strcmp(names[0], names[1]) == 0)
        return avps_fail(err, "fuse: both ends are named %s", names[0]);
    int with_is[2], n_with_is = 0;
    for (int e = 0; e < 2; e++) {
        const int32_t *cats;
        fj->ss_weights[e] = head_channels(fj->heads[e], &cats) ? o->ss_weights[e] : 0;
        n_with_is += with_is[e] = head_has_instances(fj->heads[e]);
    }
    if (fj->ss_weights[0] + fj->ss_weights[1] <= 0)
        return avps_fail(err, "fuse: no semantic side to fuse: ends %s and %s give none (or have weight 0)", names[0],
                         names[1]);
    if (!o->table && n_with_is == 2)
        return avps_fail(err, "fuse: --class-table is required when both ends give instances\n%s", fuse_usage);
    if (o->table && class_table_read(o->table, fj->gt, names, 2, &fj->table, err) != 0)
        return -1;
    fj->end_of_category = calloc(fj->gt->n_categories + 1, sizeof *fj->end_of_category);
    fj->png_names = calloc(fj->gt->n_annotations + 1, sizeof *fj->png_names);
    if (!fj->end_of_category || !fj->png_names)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < fj->gt->n_annotations; i++) {
        const pan_image *im = pan_dataset_find_image(fj->gt, fj->gt->annotations[i].image_id);
        if (!im)
            return avps_fail(err, "%s: image %s: in \"annotations\" but not in \"images\"", fj->gt->path,
                             fj->gt->annotations[i].image_id);
        if (!(fj->png_names[i] = panoptic_png_name(im->file_name)))
            return avps_fail(err, "out of memory");
    }
    if (n_with_is == 2)
        return class_table_end_map(&fj->table, fj->gt, fj->end_of_category, err);
    /* the class table has no choice to make: every thing class takes the end that has
     * instances (none when neither has) */
    for (size_t c = 0; c < fj->gt->n_categories; c++)
        fj->end_of_category[c] = !fj->gt->categories[c].isthing ? -1 : with_is[0] ? 0 : with_is[1] ? 1 : -1;
    return 0;
}

/* ---- one image ------------------------------------------------------------------------ */

/* The item's blob: its segments, as pan_segment records. */
static int fuse_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    const fuse_job *fj = ctx;
    const pan_annotation *ann = &fj->gt->annotations[item];
    const pan_image *im = pan_dataset_find_image(fj->gt, ann->image_id);
    char *gt_png = path_join(fj->opt->gt_dir, ann->file_name);
    head_output outs[2] = {{0}};
    fusion_panoptic pan = {0};
    int n_run = 0, rc = gt_png ? 0 : avps_fail(err, "out of memory");
    (void)thread;
    head_input in = {im, ann, gt_png, NULL};
    for (; rc == 0 && n_run < 2; n_run++)
        if ((rc = head_run(fj->heads[n_run], &in, &outs[n_run], err)) != 0)
            break;
    if (rc == 0) {
        fusion_end ends[2] = {{&outs[0], fj->ss_weights[0]}, {&outs[1], fj->ss_weights[1]}};
        fusion_input fi = {im->id, im->height, im->width, ends, 2, fj->end_of_category, fj->gt->categories,
                           fj->gt->n_categories, NULL};
        rc = fusion_run(&fj->opt->params, &fi, &pan, err);
    }
    if (rc == 0)
        rc = fusion_panoptic_color_ids(&pan, fj->gt->categories, fj->gt->n_categories, im->id, err);
    if (rc == 0)
        rc = fusion_panoptic_write_png(&pan, fj->opt->out_dir, fj->png_names[item], err);
    if (rc == 0 && job_blob_append(out, pan.segments, pan.n_segments * sizeof *pan.segments) != 0)
        rc = avps_fail(err, "out of memory");
    for (int e = 0; e < n_run && e < 2; e++)
        head_output_release(&outs[e]);
    fusion_panoptic_release(&pan);
    free(gt_png);
    return rc;
}

/* ---- the JSON ---------------------------------------------------------------------------- */

static int write_json(const fuse_job *fj, job_blob *blobs, avps_error *err) {
    size_t n = fj->gt->n_annotations;
    pan_annotation *anns = calloc(n + 1, sizeof *anns);
    pan_image *images = calloc(n + 1, sizeof *images);
    if (!anns || !images) {
        free(anns);
        free(images);
        return avps_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        images[i] = *pan_dataset_find_image(fj->gt, fj->gt->annotations[i].image_id);
        anns[i] = (pan_annotation){images[i].id, fj->png_names[i], blobs[i].len / sizeof(pan_segment),
                                   (pan_segment *)blobs[i].data};
    }
    pan_dataset view = {.path = fj->gt->path, .n_images = n, .images = images, .n_annotations = n,
                        .annotations = anns, .n_categories = fj->gt->n_categories, .categories = fj->gt->categories};
    int rc = pan_dataset_write(&view, fj->opt->out_json, err);
    free(anns);
    free(images);
    return rc;
}

static int inputs_checked(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    (void)ctx, (void)thread, (void)item, (void)out, (void)err;
    return 0;
}

static int run(avps_job *job, fuse_job *fj, avps_error *err) {
    if (load_inputs(fj, err) != 0 || job_output_json(job, fj->opt->out_json, err) != 0 ||
        job_output_files_in(job, fj->opt->out_dir, fj->png_names, fj->gt->n_annotations, err) != 0)
        return -1;
    if (job_is_root(job))
        end_kinds_warn("fuse", fj->heads, fj->opt->ss_weights, 2);
    /* every rank's inputs are good before any file is written */
    job_blobs_free(job_map(job, (size_t)job_size(job), 1, inputs_checked, NULL), (size_t)job_size(job));
    size_t n = fj->gt->n_annotations;
    job_blob *blobs = progress_map(job, n, (int)fj->opt->threads, fuse_one, fj, fj->opt->progress, "avps fuse");
    if (!blobs)
        return 0;
    int rc = write_json(fj, blobs, err);
    job_blobs_free(blobs, n);
    return rc;
}

int cmd_fuse(avps_job *job, int argc, char **argv) {
    fuse_options opt = {0};
    fuse_job fj = {.opt = &opt};
    char *gt_dir = NULL, *out_dir = NULL;
    avps_error err;
    int rc = parse_options(argc, argv, &opt, &err);
    if (rc == 0) {
        if (!opt.threads)
            opt.threads = job_cpu_count();
        for (int e = 0; e < FUSION_MAX_ENDS; e++) /* both ends alike unless said otherwise */
            opt.params.heuristic.confidence_thr[e] = opt.params.heuristic.confidence_thr[0];
        if (!opt.gt_dir)
            opt.gt_dir = gt_dir = path_without_json_suffix(opt.gt_json);
        if (!opt.out_dir)
            opt.out_dir = out_dir = path_without_json_suffix(opt.out_json);
        rc = opt.gt_dir && opt.out_dir ? run(job, &fj, &err) : avps_fail(&err, "out of memory");
    }
    for (int e = 0; e < 2; e++) {
        head_free(fj.heads[e]);
        end_spec_release(&fj.specs[e]);
    }
    for (size_t i = 0; fj.png_names && fj.gt && i < fj.gt->n_annotations; i++)
        free(fj.png_names[i]);
    free(fj.png_names);
    free(fj.end_of_category);
    class_table_release(&fj.table);
    pan_dataset_free(fj.gt);
    free(gt_dir);
    free(out_dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
