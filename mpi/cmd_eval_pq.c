/* cmd_eval_pq.c: `avps eval pq`, panopticapi's pq_compute as an MPI program.
 * Images are sharded over ranks and threads; their events come back to the root, which
 * adds them in dataset order, prints the table and writes the JSON report. */
#include "commands.h"

#include "../eval/eval.h"
#include "cli.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>

const char eval_pq_usage[] =
    "usage: avps eval pq --gt-json F [--gt-dir D] --pred-json F [--pred-dir D] [--json OUT] [--threads N]\n"
    "                    [--per-class] [--progress auto|bar|lines|none]\n"
    "  Panoptic quality exactly as panopticapi's pq_compute. Folders default to the JSON\n"
    "  path without .json. Prints the All/Things/Stuff table (--per-class: also\n"
    "  each class by name, panopticapi's per_class in its table's layout); --json writes the report.\n";

typedef struct {
    const char *gt_json, *gt_dir, *pred_json, *pred_dir, *out_json;
    long threads;
    int per_class;
    progress_mode progress;
} pq_options;

typedef struct {
    const pq_options *opt;
    pan_dataset *gt, *pred;
    const pan_annotation **pred_of; /* per GT annotation */
    pq_scratch **scratch;           /* per thread */
} pq_job;

static int parse_options(int argc, char **argv, pq_options *o, avps_error *err) {
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "eval pq", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *threads = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--gt-dir", &o->gt_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--pred-json", &o->pred_json, err)) ||
            (r = cli_take(argc, argv, &i, "--pred-dir", &o->pred_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--json", &o->out_json, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err))) {
            if (r < 0)
                return -1;
            if (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0)
                return -1;
            continue;
        }
        if (strcmp(argv[i], "--per-class") == 0) {
            o->per_class = 1;
            continue;
        }
        return avps_fail(err, "eval pq: unknown argument '%s'\n%s", argv[i], eval_pq_usage);
    }
    if (!o->gt_json || !o->pred_json)
        return avps_fail(err, "eval pq: --gt-json and --pred-json are required\n%s", eval_pq_usage);
    return 0;
}

static int eval_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    pq_job *pj = ctx;
    const pan_annotation *gt_ann = &pj->gt->annotations[item];
    pq_image_input in = {pj->gt, pj->pred->path, gt_ann, pj->pred_of[item], NULL, NULL,
                         pan_dataset_find_image(pj->gt, gt_ann->image_id), NULL};
    char *gt_png = path_join(pj->opt->gt_dir, gt_ann->file_name);
    char *pred_png = path_join(pj->opt->pred_dir, in.pred_ann->file_name);
    pq_events ev = {0};
    int rc = -1;
    if (!gt_png || !pred_png) {
        avps_fail(err, "out of memory");
    } else {
        in.gt_png = gt_png;
        in.pred_png = pred_png;
        rc = pq_image_eval(pj->scratch[thread], &in, &ev, err);
        if (rc == 0 && job_blob_append(out, ev.items, ev.n * sizeof *ev.items) != 0)
            rc = avps_fail(err, "out of memory");
    }
    pq_events_release(&ev);
    free(gt_png);
    free(pred_png);
    return rc;
}

/* panopticapi requires a prediction for every ground-truth image and ignores the rest. */
static int pair_annotations(pq_job *pj, avps_error *err) {
    size_t n = pj->gt->n_annotations;
    pj->pred_of = calloc(n ? n : 1, sizeof *pj->pred_of);
    if (!pj->pred_of)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *id = pj->gt->annotations[i].image_id;
        pj->pred_of[i] = pan_dataset_find_annotation(pj->pred, id);
        if (!pj->pred_of[i])
            return avps_fail(err, "%s: image %s: no prediction for this image of %s", pj->pred->path, id,
                             pj->gt->path);
    }
    return 0;
}

static int report(const pq_job *pj, job_blob *blobs, avps_error *err) {
    pq_totals *t = pq_totals_new(pj->gt->n_categories);
    if (!t)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < pj->gt->n_annotations; i++)
        if (pq_totals_add(t, pj->gt->annotations[i].image_id, (const pq_event *)blobs[i].data,
                          blobs[i].len / sizeof(pq_event)) != 0) {
            pq_totals_free(t);
            return avps_fail(err, "image %s: malformed statistics", pj->gt->annotations[i].image_id);
        }
    pq_print_notes(stderr, t, pj->gt);
    int rc = pj->opt->out_json ? pq_write_json(pj->opt->out_json, t, pj->gt, err) : 0;
    if (rc == 0)
        pq_print_table(stdout, t, pj->gt);
    if (rc == 0 && pj->opt->per_class) {
        fputc('\n', stdout);
        pq_print_per_class(stdout, t, pj->gt);
    }
    pq_totals_free(t);
    return rc;
}

static int run(avps_job *job, pq_options *opt, pq_job *pj, avps_error *err) {
    if (opt->out_json && job_output_file(job, opt->out_json, err) != 0)
        return -1;
    if (!(pj->gt = pan_dataset_load(opt->gt_json, PAN_GROUND_TRUTH, err)) ||
        !(pj->pred = pan_dataset_load(opt->pred_json, PAN_PREDICTION, err)) || pair_annotations(pj, err) != 0)
        return -1;
    pj->scratch = calloc((size_t)opt->threads, sizeof *pj->scratch);
    if (!pj->scratch)
        return avps_fail(err, "out of memory");
    for (long t = 0; t < opt->threads; t++)
        if (!(pj->scratch[t] = pq_scratch_new()))
            return avps_fail(err, "out of memory");
    job_blob *blobs = progress_map(job, pj->gt->n_annotations, (int)opt->threads, eval_one, pj, opt->progress, "avps eval pq");
    if (!blobs)
        return 0; /* not the root: its part is sent */
    int rc = report(pj, blobs, err);
    job_blobs_free(blobs, pj->gt->n_annotations);
    return rc;
}

int cmd_eval_pq(avps_job *job, int argc, char **argv) {
    pq_options opt = {0};
    pq_job pj = {&opt, NULL, NULL, NULL, NULL};
    char *gt_dir = NULL, *pred_dir = NULL;
    avps_error err;
    int rc = parse_options(argc, argv, &opt, &err);
    if (rc == 0) {
        if (!opt.threads)
            opt.threads = job_cpu_count();
        gt_dir = opt.gt_dir ? NULL : path_without_json_suffix(opt.gt_json);
        pred_dir = opt.pred_dir ? NULL : path_without_json_suffix(opt.pred_json);
        if (!opt.gt_dir)
            opt.gt_dir = gt_dir;
        if (!opt.pred_dir)
            opt.pred_dir = pred_dir;
        rc = opt.gt_dir && opt.pred_dir ? run(job, &opt, &pj, &err) : avps_fail(&err, "out of memory");
    }
    if (pj.scratch)
        for (long t = 0; t < opt.threads; t++)
            pq_scratch_free(pj.scratch[t]);
    free(pj.scratch);
    free(pj.pred_of);
    pan_dataset_free(pj.gt);
    pan_dataset_free(pj.pred);
    free(gt_dir);
    free(pred_dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
