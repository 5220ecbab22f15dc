/* cmd_combine.c: `avps combine`, panopticapi's heuristic combination of semantic and
 * instance predictions (COCO results files) into COCO panoptic JSON and PNGs. Each rank
 * reads the masks of its own images; its threads combine images and write their PNGs;
 * the root writes the JSON in the order of the images file. */
#include "commands.h"

#include "../fusion/fusion.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>

const char combine_usage[] =
    "usage: avps combine --semantic F --instances F [--instances F ...] --images F --categories F\n"
    "                    --out-json F [--out-dir D] [--confidence-thr X | --confidence-thr END=X ...]\n"
    "                    [--overlap-thr X] [--stuff-area-limit N] [--threads N]\n"
    "  panopticapi's combine_semantic_and_instance_predictions: instances by score, then the\n"
    "  stuff segments of the semantic results, written as COCO panoptic JSON and PNGs\n"
    "  (--out-dir defaults to the --out-json path without .json). Each --instances file is a\n"
    "  network end, numbered from 0; --confidence-thr END=X sets one end's threshold, X all\n"
    "  of them. Defaults: 0.5, --overlap-thr 0.5, --stuff-area-limit 4096.\n";

typedef struct {
    const char *semantic, *images, *categories, *out_json, *out_dir;
    const char *instances[FUSION_MAX_ENDS];
    int n_ends;
    combine_params params;
    long threads;
} combine_options;

/* The results of one file, grouped by item (image): item i's are order[start[i]] ..
 * order[start[i + 1] - 1], in file order. */
typedef struct {
    inst_dataset *ds;
    size_t *start, *order;
} results_by_image;

typedef struct {
    const combine_options *opt;
    avps_job *job;
    pan_dataset *frame;        /* images (in item order) and categories */
    inst_dataset *ref;         /* the same, for reading results against */
    size_t *item_of_ref;       /* ref->images index -> item */
    char **png_names;          /* per item */
    char *png_stage;           /* the PNGs' staging folder (job_output_stage) */
    results_by_image semantic, ends[FUSION_MAX_ENDS];
} combine_job;

/* ---- options ------------------------------------------------------------------------ */

static int parse_confidence(const char *text, combine_params *p, avps_error *err) {
    const char *eq = strchr(text, '=');
    double thr;
    if (!eq) {
        if (cli_double("--confidence-thr", text, &thr, err) != 0)
            return -1;
        for (int e = 0; e < FUSION_MAX_ENDS; e++)
            p->confidence_thr[e] = thr;
        return 0;
    }
    char end_text[16];
    long end;
    snprintf(end_text, sizeof end_text, "%.*s", (int)(eq - text < 15 ? eq - text : 15), text);
    if (cli_int("--confidence-thr END", end_text, 0, FUSION_MAX_ENDS - 1, &end, err) != 0 ||
        cli_double("--confidence-thr", eq + 1, &thr, err) != 0)
        return -1;
    p->confidence_thr[end] = thr;
    return 0;
}

/* Options that take a number; 1 when argv[*i] was one of them, -1 on a bad value. */
static int take_number(int argc, char **argv, int *i, combine_options *o, avps_error *err) {
    const char *v = NULL;
    long n;
    int r;
    if ((r = cli_take(argc, argv, i, "--confidence-thr", &v, err)) != 0)
        return r < 0 || parse_confidence(v, &o->params, err) != 0 ? -1 : 1;
    if ((r = cli_take(argc, argv, i, "--overlap-thr", &v, err)) != 0)
        return r < 0 || cli_double("--overlap-thr", v, &o->params.overlap_thr, err) != 0 ? -1 : 1;
    if ((r = cli_take(argc, argv, i, "--stuff-area-limit", &v, err)) != 0) {
        if (r < 0 || cli_int("--stuff-area-limit", v, 0, 1L << 40, &n, err) != 0)
            return -1;
        o->params.stuff_area_limit = (uint64_t)n;
        return 1;
    }
    if ((r = cli_take(argc, argv, i, "--threads", &v, err)) != 0)
        return r < 0 || cli_int("--threads", v, 1, 1024, &o->threads, err) != 0 ? -1 : 1;
    return 0;
}

static int parse_options(int argc, char **argv, combine_options *o, avps_error *err) {
    combine_params_default(&o->params);
    for (int i = 0; i < argc; i++) {
        const char *inst = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--semantic", &o->semantic, err)) ||
            (r = cli_take(argc, argv, &i, "--images", &o->images, err)) ||
            (r = cli_take(argc, argv, &i, "--categories", &o->categories, err)) ||
            (r = cli_take(argc, argv, &i, "--out-json", &o->out_json, err)) ||
            (r = cli_take(argc, argv, &i, "--out-dir", &o->out_dir, err)) ||
            (r = take_number(argc, argv, &i, o, err))) {
            if (r < 0)
                return -1;
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--instances", &inst, err)) != 0) {
            if (r < 0)
                return -1;
            if (o->n_ends == FUSION_MAX_ENDS)
                return avps_fail(err, "combine: at most %d --instances files", FUSION_MAX_ENDS);
            o->instances[o->n_ends++] = inst;
            continue;
        }
        return avps_fail(err, "combine: unknown argument '%s'\n%s", argv[i], combine_usage);
    }
    if (!o->semantic || !o->n_ends || !o->images || !o->categories || !o->out_json)
        return avps_fail(err, "combine: --semantic, --instances, --images, --categories and --out-json are "
                              "required\n%s",
                         combine_usage);
    return 0;
}

/* ---- inputs ------------------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* PNGs go straight into the output folder, one per image. */
static int make_png_names(combine_job *cj, avps_error *err) {
    const pan_dataset *f = cj->frame;
    cj->png_names = calloc(f->n_images + 1, sizeof *cj->png_names);
    char **sorted = calloc(f->n_images + 1, sizeof *sorted);
    int rc = cj->png_names && sorted ? 0 : avps_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < f->n_images; i++) {
        const char *fn = f->images[i].file_name;
        if (!*fn || strchr(fn, '/'))
            rc = avps_fail(err, "%s: image %s: \"file_name\" is missing, empty or has a '/'", f->path,
                           f->images[i].id);
        else if (!(cj->png_names[i] = sorted[i] = panoptic_png_name(fn)))
            rc = avps_fail(err, "out of memory");
    }
    if (rc == 0)
        qsort(sorted, f->n_images, sizeof *sorted, name_cmp);
    for (size_t i = 1; rc == 0 && i < f->n_images; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0)
            rc = avps_fail(err, "%s: two images would write %s", f->path, sorted[i]);
    free(sorted);
    return rc;
}

static int map_items(combine_job *cj, avps_error *err) {
    size_t n = cj->frame->n_images;
    cj->item_of_ref = calloc(n + 1, sizeof *cj->item_of_ref);
    if (!cj->item_of_ref)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        cj->item_of_ref[inst_image_index(cj->ref, strtoll(cj->frame->images[i].id, NULL, 10))] = i;
    return 0;
}

static int keep_mine(void *ctx, size_t ref_index) {
    const combine_job *cj = ctx;
    return cj->item_of_ref[ref_index] % (size_t)job_size(cj->job) == (size_t)job_rank(cj->job);
}

static size_t item_of(const combine_job *cj, const inst_annotation *a) {
    return cj->item_of_ref[inst_image_index(cj->ref, a->image_id)];
}

static int group_by_image(const combine_job *cj, results_by_image *r, avps_error *err) {
    size_t n = cj->frame->n_images, na = r->ds->n_annotations;
    r->start = calloc(n + 2, sizeof *r->start);
    r->order = calloc(na + 1, sizeof *r->order);
    if (!r->start || !r->order)
        return avps_fail(err, "out of memory");
    for (size_t a = 0; a < na; a++)
        r->start[item_of(cj, &r->ds->annotations[a]) + 2]++;
    for (size_t i = 2; i < n + 2; i++)
        r->start[i] += r->start[i - 1];
    for (size_t a = 0; a < na; a++) /* start[i + 1] counts item i's as they are placed */
        r->order[r->start[item_of(cj, &r->ds->annotations[a]) + 1]++] = a;
    return 0;
}

static int load_results(combine_job *cj, results_by_image *r, const char *path, int need_score, avps_error *err) {
    r->ds = inst_masks_load(path, cj->ref, need_score, keep_mine, cj, err);
    return r->ds ? group_by_image(cj, r, err) : -1;
}

static void results_release(results_by_image *r) {
    inst_dataset_free(r->ds);
    free(r->start);
    free(r->order);
}

static int load_inputs(combine_job *cj, avps_error *err) {
    const combine_options *o = cj->opt;
    if (!(cj->frame = pan_frame_load(o->images, o->categories, err)) ||
        !(cj->ref = inst_frame_from_pan(cj->frame, err)) || make_png_names(cj, err) != 0 || map_items(cj, err) != 0 ||
        load_results(cj, &cj->semantic, o->semantic, 0, err) != 0)
        return -1;
    for (int e = 0; e < o->n_ends; e++)
        if (load_results(cj, &cj->ends[e], o->instances[e], 1, err) != 0)
            return -1;
    return 0;
}

/* ---- one image ------------------------------------------------------------------------- */

static size_t count_of(const results_by_image *r, size_t item) { return r->start[item + 1] - r->start[item]; }

/* Instances of every end, end 0's first, each in file order; the masks are borrowed. */
static void gather(const combine_job *cj, size_t item, fusion_instance *inst, fusion_stuff *stuff) {
    size_t k = 0;
    for (int e = 0; e < cj->opt->n_ends; e++)
        for (size_t j = cj->ends[e].start[item]; j < cj->ends[e].start[item + 1]; j++) {
            const inst_annotation *a = &cj->ends[e].ds->annotations[cj->ends[e].order[j]];
            inst[k++] = (fusion_instance){a->category_id, a->score, a->rle, e};
        }
    const results_by_image *s = &cj->semantic;
    for (size_t j = s->start[item]; j < s->start[item + 1]; j++) {
        const inst_annotation *a = &s->ds->annotations[s->order[j]];
        stuff[j - s->start[item]] = (fusion_stuff){a->category_id, a->rle};
    }
}

/* The item's blob: its segments, as pan_segment records. */
static int combine_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    const combine_job *cj = ctx;
    const pan_image *im = &cj->frame->images[item];
    (void)thread;
    size_t n_inst = 0, n_stuff = count_of(&cj->semantic, item);
    for (int e = 0; e < cj->opt->n_ends; e++)
        n_inst += count_of(&cj->ends[e], item);
    fusion_instance *inst = malloc((n_inst + 1) * sizeof *inst);
    fusion_stuff *stuff = malloc((n_stuff + 1) * sizeof *stuff);
    fusion_panoptic pan = {0};
    int rc = inst && stuff ? 0 : avps_fail(err, "out of memory");
    if (rc == 0) {
        gather(cj, item, inst, stuff);
        combine_input in = {im->id, im->height, im->width, inst, n_inst, stuff, n_stuff,
                            cj->frame->categories, cj->frame->n_categories};
        rc = combine_heuristic(&cj->opt->params, &in, &pan, err);
    }
    if (rc == 0)
        rc = fusion_panoptic_color_ids(&pan, cj->frame->categories, cj->frame->n_categories, im->id, err);
    if (rc == 0)
        rc = fusion_panoptic_write_png(&pan, cj->png_stage, cj->png_names[item], err);
    if (rc == 0 && job_blob_append(out, pan.segments, pan.n_segments * sizeof *pan.segments) != 0)
        rc = avps_fail(err, "out of memory");
    fusion_panoptic_release(&pan);
    free(inst);
    free(stuff);
    return rc;
}

/* ---- the panoptic JSON ---------------------------------------------------------------- */

/* A view of the frame with the segments of the blobs; nothing is copied. */
static int write_json(const combine_job *cj, job_blob *blobs, avps_error *err) {
    const pan_dataset *f = cj->frame;
    pan_annotation *anns = calloc(f->n_images + 1, sizeof *anns);
    if (!anns)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < f->n_images; i++)
        anns[i] = (pan_annotation){f->images[i].id, cj->png_names[i], blobs[i].len / sizeof(pan_segment),
                                   (pan_segment *)blobs[i].data};
    pan_dataset view = {.path = f->path, .n_images = f->n_images, .images = f->images,
                        .n_annotations = f->n_images, .annotations = anns,
                        .n_categories = f->n_categories, .categories = f->categories};
    int rc = pan_dataset_write(&view, cj->opt->out_json, err);
    free(anns);
    return rc;
}

/* Every rank has read and checked its inputs before any file is written: a job_map of
 * one empty item per rank is a barrier that also carries a failure to the root. */
static int inputs_checked(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    (void)ctx, (void)thread, (void)item, (void)out, (void)err;
    return 0;
}

static int run(combine_job *cj, avps_error *err) {
    avps_job *job = cj->job;
    /* the PNGs are staged: a failure leaves a previous output folder as it was */
    if (load_inputs(cj, err) != 0 || job_output_json(job, cj->opt->out_json, err) != 0 ||
        job_output_stage(job, cj->opt->out_dir, &cj->png_stage, err) != 0)
        return -1;
    job_blobs_free(job_map(job, (size_t)job_size(job), 1, inputs_checked, NULL), (size_t)job_size(job));
    size_t n = cj->frame->n_images;
    job_blob *blobs = job_map(job, n, (int)cj->opt->threads, combine_one, cj);
    if (!blobs)
        return 0; /* not the root: its part is sent */
    int rc = write_json(cj, blobs, err);
    job_blobs_free(blobs, n);
    return rc == 0 ? job_output_publish(cj->png_stage, cj->opt->out_dir, err) : -1;
}

static void combine_job_release(combine_job *cj) {
    results_release(&cj->semantic);
    for (int e = 0; e < FUSION_MAX_ENDS; e++)
        results_release(&cj->ends[e]);
    for (size_t i = 0; cj->png_names && i < cj->frame->n_images; i++)
        free(cj->png_names[i]);
    free(cj->png_names);
    free(cj->png_stage);
    free(cj->item_of_ref);
    inst_dataset_free(cj->ref);
    pan_dataset_free(cj->frame);
}

int cmd_combine(avps_job *job, int argc, char **argv) {
    combine_options opt = {0};
    combine_job cj = {.opt = &opt, .job = job};
    char *dir = NULL;
    avps_error err;
    int rc = parse_options(argc, argv, &opt, &err);
    if (rc == 0) {
        if (!opt.threads)
            opt.threads = job_cpu_count();
        if (!opt.out_dir)
            opt.out_dir = dir = path_without_json_suffix(opt.out_json);
        rc = opt.out_dir ? run(&cj, &err) : avps_fail(&err, "out of memory");
    }
    combine_job_release(&cj);
    free(dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
