/* cmd_eval_ap.c: `avps eval ap`, pycocotools' COCOeval (segm or bbox) as an MPI program.
 * Each rank loads only the annotations of its images, matches them, and sends compact
 * per-detection records to the root, which accumulates them in image-id order. */
#include "commands.h"

#include "../eval/eval.h"
#include "cli.h"
#include "report.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char eval_ap_usage[] =
    "usage: avps eval ap --gt F --dt F [--json OUT] [--iou-type segm|bbox] [--threads N]\n"
    "         [--img-ids I,..] [--cat-ids C,..] [--no-use-cats] [--max-dets 1,10,100]\n"
    "         [--iou-thrs T,..] [--rec-thrs R,..] [--area-rng LABEL:LO:HI,..] [--eval-out F.npz]\n"
    "         [--plot-pr F.svg|F.png] [--progress auto|bar|lines|none]\n"
    "  COCO mask (or box) AP exactly as pycocotools' COCOeval: prints the 12-line summary\n"
    "  and AP per category; --json writes {\"stats\": {...}, \"per_class_AP\": {...}, ...};\n"
    "  the other options are COCOeval's Params, --eval-out its precision, recall, scores;\n"
    "  --plot-pr draws precision against recall per IoU threshold (all categories, area all,\n"
    "  maxDets 100) from that precision array, as SVG or PNG by the file's extension.\n";

typedef struct {
    const char *gt, *dt, *out_json, *iou, *out_npz, *plot_pr;
    long threads;
    progress_mode progress;
    iou_type type;
    ap_params *params; /* COCOeval's Params, the defaults unless set */
} ap_options;

typedef struct {
    avps_job *job;
    iou_type type;
    inst_dataset *gt, *dt;
    ap_index *ix;
} ap_job;

/* COCOeval's Params and --eval-out: 1 when argv[*i] is one of them, -1 on a bad value. */
static int parse_param(int argc, char **argv, int *i, ap_options *o, avps_error *err) {
    static const char *const lists[] = {"--iou-thrs", "--rec-thrs", "--max-dets", "--area-rng", "--cat-ids", "--img-ids"};
    const char *v = NULL;
    int r;
    if (strcmp(argv[*i], "--no-use-cats") == 0) {
        o->params->use_cats = 0;
        return 1;
    }
    if ((r = cli_take(argc, argv, i, "--eval-out", &o->out_npz, err)) != 0 ||
        (r = cli_take(argc, argv, i, "--plot-pr", &o->plot_pr, err)) != 0)
        return r;
    for (size_t k = 0; k < sizeof lists / sizeof *lists; k++)
        if ((r = cli_take(argc, argv, i, lists[k], &v, err)) != 0)
            return r < 0 ? -1 : ap_params_set(o->params, lists[k], v, err) == 0 ? 1 : -1;
    return 0;
}

static int parse_options(int argc, char **argv, ap_options *o, avps_error *err) {
    if (!(o->params = ap_params_new()))
        return avps_fail(err, "out of memory");
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "eval ap", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *threads = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt", &o->gt, err)) || (r = cli_take(argc, argv, &i, "--dt", &o->dt, err)) ||
            (r = cli_take(argc, argv, &i, "--json", &o->out_json, err)) ||
            (r = cli_take(argc, argv, &i, "--iou-type", &o->iou, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err))) {
            if (r < 0)
                return -1;
            if (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0)
                return -1;
            continue;
        }
        if ((r = parse_param(argc, argv, &i, o, err)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        return avps_fail(err, "eval ap: unknown argument '%s'\n%s", argv[i], eval_ap_usage);
    }
    if (!o->gt || !o->dt)
        return avps_fail(err, "eval ap: --gt and --dt are required\n%s", eval_ap_usage);
    if (o->iou && strcmp(o->iou, "segm") != 0 && strcmp(o->iou, "bbox") != 0)
        return avps_fail(err, "eval ap: --iou-type must be segm or bbox, not '%s'", o->iou);
    o->type = o->iou && strcmp(o->iou, "bbox") == 0 ? IOU_BBOX : IOU_SEGM;
    return 0;
}

static int keep_mine(void *ctx, size_t image_index) {
    const avps_job *job = ctx;
    return image_index % (size_t)job_size(job) == (size_t)job_rank(job);
}

static int eval_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    ap_job *aj = ctx;
    ap_records rec = {0};
    (void)thread;
    int rc = ap_image_eval(aj->ix, item, aj->type, &rec, err);
    if (rc == 0 && job_blob_append(out, rec.data, rec.len) != 0)
        rc = avps_fail(err, "out of memory");
    ap_records_release(&rec);
    return rc;
}

static int report(const ap_options *o, const ap_job *aj, job_blob *blobs, avps_error *err) {
    size_t n = aj->gt->n_images;
    const uint8_t **rec = malloc((n + 1) * sizeof *rec);
    size_t *len = malloc((n + 1) * sizeof *len);
    ap_summary s = {0};
    int rc = rec && len ? 0 : avps_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rec[i] = blobs[i].data;
        len[i] = blobs[i].len;
    }
    if (rc == 0)
        rc = ap_accumulate_params(aj->ix, rec, len, o->out_npz || o->plot_pr, (int)o->threads, &s, err);
    if (rc == 0 && o->out_npz)
        rc = ap_write_npz(o->out_npz, &s, err);
    if (rc == 0 && o->plot_pr)
        rc = report_pr_chart(&s, ap_index_params(aj->ix), o->plot_pr, err);
    if (rc == 0 && o->out_json)
        rc = ap_write_json(o->out_json, &s, aj->gt, err);
    if (rc == 0) {
        ap_print_summary(stdout, &s, o->type);
        ap_print_detectron2(stdout, &s, aj->gt, o->type);
    }
    ap_summary_release(&s);
    free(rec);
    free(len);
    return rc;
}

/* ---- warnings: what pycocotools accepts silently, said once by the root ------------------
 * Each rank holds the results of its own images; one item per rank gathers its counts. */
typedef struct {
    uint64_t n_results;
    uint64_t n[2], first_pos[2]; /* [0] categories not in the ground truth, [1] masks from boxes */
    int64_t first_image[2];
    int32_t first_category;
} ap_notes;

static int notes_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    const ap_job *aj = ctx;
    ap_notes nt = {.n_results = aj->dt->n_annotations};
    (void)thread, (void)item;
    for (size_t i = 0; i < aj->dt->n_annotations; i++) {
        const inst_annotation *a = &aj->dt->annotations[i];
        int is[2] = {inst_category_index(aj->gt, a->category_id) < 0, aj->type == IOU_SEGM && a->mask_from_box};
        for (int k = 0; k < 2; k++)
            if (is[k] && nt.n[k]++ == 0) { /* file order within a rank: its first is the first */
                nt.first_pos[k] = (uint64_t)(a->id - 1), nt.first_image[k] = a->image_id;
                if (k == 0)
                    nt.first_category = a->category_id;
            }
    }
    return job_blob_append(out, &nt, sizeof nt) == 0 ? 0 : avps_fail(err, "out of memory");
}

static void print_notes(const ap_options *o, const job_blob *blobs, size_t n) {
    ap_notes all = {0};
    for (size_t r = 0; r < n; r++) {
        ap_notes nt;
        if (blobs[r].len != sizeof nt)
            continue;
        memcpy(&nt, blobs[r].data, sizeof nt);
        all.n_results += nt.n_results;
        for (int k = 0; k < 2; k++) {
            if (nt.n[k] && (!all.n[k] || nt.first_pos[k] < all.first_pos[k])) {
                all.first_pos[k] = nt.first_pos[k], all.first_image[k] = nt.first_image[k];
                if (k == 0)
                    all.first_category = nt.first_category;
            }
            all.n[k] += nt.n[k];
        }
    }
    if (all.n_results == 0)
        fprintf(stderr, "avps: warning: %s: the results list is empty: every AP is 0 where the ground truth has "
                        "objects (pycocotools' loadRes raises an IndexError on an empty list)\n", o->dt);
    if (all.n[0])
        fprintf(stderr, "avps: warning: %s: %llu results have a category that is not in %s, and are ignored as "
                        "pycocotools ignores them; the first: image %lld, result %llu, category %d\n",
                o->dt, (unsigned long long)all.n[0], o->gt, (long long)all.first_image[0],
                (unsigned long long)all.first_pos[0], all.first_category);
    if (all.n[1])
        fprintf(stderr, "avps: warning: %s: %llu of %llu results have a box but no \"segmentation\"; --iou-type segm "
                        "evaluates their boxes as masks, as pycocotools' loadRes does (the first: image %lld, result "
                        "%llu); --iou-type bbox gives box AP\n",
                o->dt, (unsigned long long)all.n[1], (unsigned long long)all.n_results, (long long)all.first_image[1],
                (unsigned long long)all.first_pos[1]);
}

static void notes(avps_job *job, const ap_options *o, ap_job *aj) {
    size_t n = (size_t)job_size(job);
    job_blob *blobs = job_map(job, n, 1, notes_one, aj);
    if (blobs)
        print_notes(o, blobs, n);
    job_blobs_free(blobs, n);
}

static int has_chart_extension(const char *path) {
    size_t n = strlen(path);
    return n > 4 && (strcasecmp(path + n - 4, ".svg") == 0 || strcasecmp(path + n - 4, ".png") == 0);
}

static int run(avps_job *job, ap_options *o, ap_job *aj, avps_error *err) {
    if (o->out_json && job_output_file(job, o->out_json, err) != 0)
        return -1;
    if (o->plot_pr && (!has_chart_extension(o->plot_pr) ? avps_fail(err, "--plot-pr %s: the file must end in .svg or .png", o->plot_pr)
                                                         : job_output_file(job, o->plot_pr, err)) != 0)
        return -1;
    if (!(aj->gt = inst_gt_load_threads(o->gt, o->type, keep_mine, job, (int)o->threads, err)) ||
        !(aj->dt = inst_results_load_threads(o->dt, aj->gt, o->type, keep_mine, job, (int)o->threads, err)))
        return -1;
    if (!(aj->ix = ap_index_new_params(aj->gt, aj->dt, o->params, err)))
        return -1;
    notes(job, o, aj);
    job_blob *blobs = progress_map(job, aj->gt->n_images, (int)o->threads, eval_one, aj, o->progress, "avps eval ap");
    if (!blobs)
        return 0;
    int rc = report(o, aj, blobs, err);
    job_blobs_free(blobs, aj->gt->n_images);
    return rc;
}

int cmd_eval_ap(avps_job *job, int argc, char **argv) {
    ap_options o = {0};
    ap_job aj = {job, IOU_SEGM, NULL, NULL, NULL};
    avps_error err;
    int rc = parse_options(argc, argv, &o, &err);
    if (rc == 0) {
        if (!o.threads)
            o.threads = job_cpu_count();
        aj.type = o.type;
        rc = run(job, &o, &aj, &err);
    }
    ap_index_free(aj.ix);
    ap_params_free(o.params);
    inst_dataset_free(aj.gt);
    inst_dataset_free(aj.dt);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
