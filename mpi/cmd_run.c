/* cmd_run.c: `avps run CONFIG`, the whole AntVisionPS evaluation as one MPI job.
 *
 * Stages: every rank reads the config, the splits and makes its heads; the root checks
 * the output folder; then (1) the held-out split is run and the root builds the class
 * table (skipped when the config names one, or on --resume when OUT has one); (2) the
 * evaluation images are handed out dynamically (job_map_dynamic), each rank writing its
 * PNGs and per-image records, journalled for --resume, while the root adds the records
 * in dataset order as they come (run_fold.c) and appends them to panoptic.json; (3) it
 * writes report.json, table3.md, class_table.json and timings.json. The output folder must be seen by every rank (a shared file system). */
#include "commands.h"

#include "../ensemble/ensemble.h"
#include "calibrate.h"
#include "cli.h"
#include "end_spec.h"
#include "report.h"
#include "report_html.h"
#include "run.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

const char run_usage[] =
    "usage: avps run CONFIG [--out DIR] [--resume] [--threads N] [--chunk N]\n"
    "                [--progress auto|bar|lines|none] [--quiet]\n"
    "  The AntVisionPS evaluation as one job (docs/config.md): the class table from the\n"
    "  held-out split, then per evaluation image the E-UPS ensemble, LWL-HTC and their\n"
    "  two-level fusion, evaluated with PQ. Writes DIR/report.json (identical for any\n"
    "  number of ranks), table3.md, panoptic.json + panoptic/, class_table.json,\n"
    "  timings.json and figures/ (class table, per-class PQ, SVG + PNG). --resume finishes a run that was stopped, redoing only missing images.\n"
    "  --out overrides the config's \"out\"; --progress auto draws a bar on a terminal\n"
    "  outside a launcher and prints lines otherwise.\n";

typedef struct {
    const char *config, *out;
    int resume, quiet;
    long threads, chunk;
    progress_mode progress;
} run_options;

enum { STAGE_LOAD, STAGE_CALIBRATE, STAGE_EVALUATE, STAGE_REPORT, STAGE_COUNT };
static const char *const stage_names[STAGE_COUNT] = {"load", "calibrate", "evaluate", "report"};

typedef struct {
    run_options opt;
    run_config cfg;
    avps_job *job;
    pan_dataset *eval, *heldout;
    head *ends[2];
    class_table table;
    int *end_of_category;
    pq_scratch **scratch;
    run_state rs;
    double stage_seconds[STAGE_COUNT];
    size_t images_now; /* evaluation images done by this invocation (not resumed) */
    char gpu[64];      /* the root's device, "" for none */
    int calibrated;    /* the held-out pass ran in this invocation */
    size_t buffered_max; /* the most records the root held waiting for an earlier one */
    job_rank_stats *rank_stats; /* root: each rank's figures of the evaluation pass */
} run_job;

/* ---- options ------------------------------------------------------------------------ */

static int parse_options(int argc, char **argv, run_options *o, avps_error *err) {
    for (int i = 0; i < argc; i++) {
        const char *threads = NULL, *chunk = NULL, *progress = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err)) ||
            (r = cli_take(argc, argv, &i, "--chunk", &chunk, err)) ||
            (r = cli_take(argc, argv, &i, "--progress", &progress, err))) {
            if (r < 0 || (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0) ||
                (chunk && cli_int("--chunk", chunk, 1, 1000000, &o->chunk, err) != 0))
                return -1;
            if (progress && run_progress_mode(progress, &o->progress) != 0)
                return avps_fail(err, "run: --progress must be auto, bar, lines or none, not '%s'", progress);
            continue;
        }
        if (strcmp(argv[i], "--resume") == 0)
            o->resume = 1;
        else if (strcmp(argv[i], "--quiet") == 0)
            o->quiet = 1;
        else if (argv[i][0] != '-' && !o->config)
            o->config = argv[i];
        else
            return avps_fail(err, "run: unknown argument '%s'\n%s", argv[i], run_usage);
    }
    if (!o->config)
        return avps_fail(err, "run: a CONFIG file is required\n%s", run_usage);
    if (o->quiet)
        o->progress = PROGRESS_NONE;
    return 0;
}

/* ---- inputs ----------------------------------------------------------------------------- */

static int make_ends(run_job *rj, avps_error *err) {
    const run_config *cfg = &rj->cfg;
    head *members[RUN_MAX_HEADS] = {0};
    for (size_t m = 0; m < cfg->n_members; m++)
        if (!(members[m] = run_head_new(cfg, cfg->members[m], rj->eval, err))) {
            for (size_t k = 0; k < m; k++)
                head_free(members[k]);
            return -1;
        }
    if (cfg->n_members == 1)
        rj->ends[0] = members[0];
    else if (!(rj->ends[0] = ensemble_head_new(cfg->ensemble_name, members, cfg->weights, cfg->n_members, NULL, err)))
        return avps_prefix(err, "%s: ensemble", cfg->path);
    if (!(rj->ends[1] = run_head_new(cfg, cfg->lwl_htc, rj->eval, err)))
        return -1;
    if (job_is_root(rj->job))
        end_kinds_warn(cfg->path, rj->ends, cfg->ss_weights, 2);
    return 0;
}

/* Held-out and evaluation images must differ, or the class table would see the answers. */
static int check_disjoint(const pan_dataset *heldout, const pan_dataset *eval, avps_error *err) {
    for (size_t i = 0; i < heldout->n_annotations; i++)
        if (pan_dataset_find_annotation(eval, heldout->annotations[i].image_id))
            return avps_fail(err, "%s: image %s is also in the evaluation split %s", heldout->path,
                             heldout->annotations[i].image_id, eval->path);
    return 0;
}

static int load_inputs(run_job *rj, avps_error *err) {
    run_config *cfg = &rj->cfg;
    if (run_config_load(rj->opt.config, cfg, err) != 0)
        return -1;
    if (rj->opt.out) {
        free(cfg->out);
        if (!(cfg->out = strdup(rj->opt.out)))
            return avps_fail(err, "out of memory");
    }
    if (!cfg->out)
        return avps_fail(err, "%s: \"out\" is not set and no --out was given", cfg->path);
    if (rj->opt.threads)
        cfg->threads = rj->opt.threads;
    if (!cfg->threads)
        cfg->threads = job_cpu_count();
    if (rj->opt.chunk)
        cfg->chunk = rj->opt.chunk;
    if (!(rj->eval = pan_dataset_load(cfg->eval.gt_json, PAN_GROUND_TRUTH, err)))
        return -1;
    if (!cfg->class_table) {
        if (!(rj->heldout = pan_dataset_load(cfg->heldout.gt_json, PAN_GROUND_TRUTH, err)) ||
            check_disjoint(rj->heldout, rj->eval, err) != 0 || run_heads_check(cfg, rj->heldout, err) != 0)
            return -1;
    }
    if (make_ends(rj, err) != 0)
        return -1;
    if (cfg->class_table) {
        const char *names[2] = {head_name(rj->ends[0]), head_name(rj->ends[1])};
        if (class_table_read(cfg->class_table, rj->eval, names, 2, &rj->table, err) != 0)
            return avps_prefix(err, "%s: \"fusion.class_table\"", cfg->path);
    }
    rj->scratch = calloc((size_t)cfg->threads, sizeof *rj->scratch);
    if (!rj->scratch)
        return avps_fail(err, "out of memory");
    for (long t = 0; t < cfg->threads; t++)
        if (!(rj->scratch[t] = pq_scratch_new()))
            return avps_fail(err, "out of memory");
    return 0;
}

static int path_exists(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    struct stat st;
    int yes = p && stat(p, &st) == 0;
    free(p);
    return yes;
}

/* The root's look at OUT before anything is written: a finished or stopped run is only
 * continued on purpose (--resume), and only with the config that made it. */
static int check_out(const run_job *rj, avps_error *err) {
    const char *out = rj->cfg.out;
    if (!rj->opt.resume && (path_exists(out, "run.id") || path_exists(out, "report.json")))
        return avps_fail(err, "%s: holds a previous run; use --resume to finish it, or another --out", out);
    char *path = path_join(out, "run.id");
    size_t len;
    avps_error ignored;
    char *text = path ? file_read_all(path, &len, &ignored) : NULL;
    char want[32];
    snprintf(want, sizeof want, "%016llx\n", (unsigned long long)rj->cfg.hash);
    int rc = 0;
    if (text && strcmp(text, want) != 0)
        rc = avps_fail(err, "%s: was made by another config (%.16s, this one is %.16s); cannot resume it", out, text,
                       want);
    free(text);
    free(path);
    return rc;
}

static int write_text(const char *path, const char *text, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    fputs(text, af.fp);
    return file_atomic_commit(&af, err);
}

/* Every rank makes the folders it writes into (mkdir -p of an existing one is a no-op). */
static int make_dirs(run_job *rj, avps_error *err) {
    run_state *rs = &rj->rs;
    const char *out = rj->cfg.out;
    if (!(rs->png_dir = path_join(out, "panoptic")) || !(rs->work_dir = path_join(out, "work")))
        return avps_fail(err, "out of memory");
    if (dir_create(out, err) != 0 || dir_create(rs->png_dir, err) != 0 || dir_create(rs->work_dir, err) != 0)
        return -1;
    if (!rj->cfg.write_end_panoptic)
        return 0;
    char *ends = path_join(out, "ends");
    int rc = ends ? dir_create(ends, err) : avps_fail(err, "out of memory");
    for (int e = 0; rc == 0 && e < 2; e++)
        rc = (rs->end_png_dir[e] = path_join(ends, run_end_names[e])) ? dir_create(rs->end_png_dir[e], err)
                                                                       : avps_fail(err, "out of memory");
    free(ends);
    return rc;
}

/* ---- stages ------------------------------------------------------------------------------ */

static int no_work(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    (void)ctx, (void)thread, (void)item, (void)out, (void)err;
    return 0;
}

/* Every rank reaches this point, or the job ends with the first failure's message. */
static void barrier(avps_job *job) {
    job_blobs_free(job_map(job, (size_t)job_size(job), 1, no_work, NULL), (size_t)job_size(job));
}

/* The held-out pass (calibrate_run, collective): the root writes OUT/class_table.json. */
static int calibrate(run_job *rj, const char *table_path, avps_error *err) {
    calib_params p = {.metric = rj->cfg.metric, .min_instances = (uint64_t)rj->cfg.min_instances,
                      .seed = rj->cfg.seed, .threads = (int)rj->cfg.threads,
                      .progress = rj->opt.progress, .what = "avps run (held-out)"};
    calib_split heldout = {rj->heldout, rj->cfg.heldout.gt_dir};
    class_table table = {0};
    calib_report report = {0};
    int rc = calibrate_run(rj->job, &p, rj->ends, 2, &heldout, NULL, &table, &report, err);
    if (rc == 0 && job_is_root(rj->job))
        rc = class_table_write(table_path, &table, err);
    calib_report_release(&report);
    class_table_release(&table);
    return rc;
}

/* The class table every rank uses: the config's, or one made from the held-out split. */
static int class_table_stage(run_job *rj, avps_error *err) {
    char *path = path_join(rj->cfg.out, "class_table.json");
    const char *names[2] = {head_name(rj->ends[0]), head_name(rj->ends[1])};
    int rc = path ? 0 : avps_fail(err, "out of memory");
    if (rc == 0 && rj->cfg.class_table) {
        rc = job_is_root(rj->job) ? class_table_write(path, &rj->table, err) : 0;
    } else if (rc == 0) {
        /* --resume keeps the table it made before; every rank sees the same folder */
        if (!(rj->opt.resume && path_exists(rj->cfg.out, "class_table.json"))) {
            rc = calibrate(rj, path, err);
            rj->calibrated = 1;
        }
        if (rc == 0)
            barrier(rj->job); /* the root has written the table */
        if (rc == 0)
            rc = class_table_read(path, rj->eval, names, 2, &rj->table, err);
    }
    if (rc == 0 && !(rj->end_of_category = calloc(rj->eval->n_categories + 1, sizeof *rj->end_of_category)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0)
        rc = class_table_end_map(&rj->table, rj->eval, rj->end_of_category, err);
    free(path);
    return rc;
}

/* ---- the root's reports -------------------------------------------------------------------- */

/* The evaluation pass's figures summed over ranks: CPU, worker waits, the root's main
 * thread (scheduling, receiving and folding: what the root spends beyond its own workers). */
typedef struct {
    double cpu, wait, root_main_cpu, root_fold_cpu;
} rank_sums;

static rank_sums sum_ranks(const run_job *rj) {
    rank_sums s = {0};
    for (int r = 0; rj->rank_stats && r < job_size(rj->job); r++)
        s.cpu += rj->rank_stats[r].cpu, s.wait += rj->rank_stats[r].wait;
    if (rj->rank_stats)
        s.root_main_cpu = rj->rank_stats[0].main_cpu, s.root_fold_cpu = rj->rank_stats[0].sink_cpu;
    return s;
}

static double per_image(double v, size_t images) { return images ? v / (double)images : 0; }

static void put_rank_stats(FILE *fp, const job_rank_stats *s, int rank) {
    fprintf(fp, "    {\"rank\": %d, \"images\": %llu, \"wall_seconds\": %.6f, \"cpu_seconds\": %.6f, ", rank,
            (unsigned long long)s->items, s->wall, s->cpu);
    fprintf(fp, "\"cpu_seconds_per_image\": %.6f, \"main_thread_cpu_seconds\": %.6f, \"fold_cpu_seconds\": %.6f,\n",
            per_image(s->cpu, (size_t)s->items), s->main_cpu, s->sink_cpu);
    fprintf(fp, "     \"wait_seconds\": %.6f, \"wait_max_seconds\": %.6f, \"wait_end_seconds\": %.6f, ", s->wait,
            s->wait_max, s->wait_end);
    fprintf(fp, "\"requests\": %llu, \"request_seconds\": %.6f, ", (unsigned long long)s->requests, s->request);
    fprintf(fp, "\"request_max_seconds\": %.6f, \"held_seconds\": %.6f, \"peak_rss_kib\": %llu}", s->request_max,
            s->held, (unsigned long long)s->peak_rss_kib);
}

static void put_timings(FILE *fp, const run_job *rj, const run_totals *t) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double eval_s = rj->stage_seconds[STAGE_EVALUATE];
    fprintf(fp, "{\n  \"ranks\": %d,\n  \"threads\": %ld,\n  \"images\": %zu,\n  \"images_this_run\": %zu,\n",
            job_size(rj->job), rj->cfg.threads, rj->eval->n_annotations, rj->images_now);
    fprintf(fp, "  \"images_per_second\": %.6g,\n  \"stages_wall_seconds\": {", eval_s > 0 ? (double)rj->images_now / eval_s : 0);
    for (int s = 0; s < STAGE_COUNT; s++)
        fprintf(fp, "%s\"%s\": %.6f", s ? ", " : "", stage_names[s], rj->stage_seconds[s]);
    fputs("},\n  \"steps_thread_seconds\": {", fp);
    for (int s = 0; s < STEP_COUNT; s++)
        fprintf(fp, "%s\"%s\": %.6f", s ? ", " : "", run_step_names[s], t->seconds[s]);
    fputs("},\n  \"steps_cpu_seconds\": {", fp);
    for (int s = 0; s < STEP_COUNT; s++)
        fprintf(fp, "%s\"%s\": %.6f", s ? ", " : "", run_step_names[s], t->cpu[s]);
    rank_sums sums = sum_ranks(rj);
    fprintf(fp, "},\n  \"cpu_seconds_per_image\": %.6f,\n  \"wait_seconds_per_image\": %.6f,\n",
            per_image(sums.cpu, rj->images_now), per_image(sums.wait, rj->images_now));
    fprintf(fp, "  \"root_main_thread_cpu_seconds_per_image\": %.6f,\n  \"root_fold_cpu_seconds_per_image\": %.6f,\n",
            per_image(sums.root_main_cpu, rj->images_now), per_image(sums.root_fold_cpu, rj->images_now));
    fputs("  \"rank_stats\": [\n", fp);
    for (int r = 0; rj->rank_stats && r < job_size(rj->job); r++) {
        put_rank_stats(fp, &rj->rank_stats[r], r);
        fputs(r + 1 < job_size(rj->job) ? ",\n" : "\n", fp);
    }
    fprintf(fp, "  ],\n  \"root_gpu\": ");
    if (rj->gpu[0])
        json_put_string(fp, rj->gpu);
    else
        fputs("null", fp);
    fprintf(fp, ",\n  \"root_records_buffered_max\": %zu,\n  \"root_peak_rss_kib\": %ld\n}\n", rj->buffered_max,
            ru.ru_maxrss);
}

static int add_digest(run_report_input *in, const char *name, const char *path, avps_error *err) {
    snprintf(in->digest_names[in->n_digests], sizeof in->digest_names[0], "%s", name);
    return run_file_digest(path, &in->digests[in->n_digests++], err);
}

/* The ground truths, a given class table, each replay head's head.json and each sim
 * head's profile when it is a file (a built-in profile is part of the version). */
static int digest_inputs(const run_job *rj, run_report_input *in, avps_error *err) {
    const run_config *cfg = &rj->cfg;
    if (add_digest(in, "eval_gt_json", cfg->eval.gt_json, err) != 0 ||
        (rj->heldout && add_digest(in, "heldout_gt_json", cfg->heldout.gt_json, err) != 0) ||
        (cfg->class_table && add_digest(in, "class_table", cfg->class_table, err) != 0))
        return -1;
    for (size_t h = 0; h < cfg->n_heads; h++) {
        const run_head *hd = &cfg->heads[h];
        char name[96];
        if (strcmp(hd->backend, "replay") == 0) {
            char *p = path_join(hd->store, "head.json");
            snprintf(name, sizeof name, "heads.%s.store_head_json", hd->name);
            int rc = p ? add_digest(in, name, p, err) : avps_fail(err, "out of memory");
            free(p);
            if (rc != 0)
                return -1;
        } else if (hd->profile && strchr(hd->profile, '/')) {
            snprintf(name, sizeof name, "heads.%s.profile", hd->name);
            if (add_digest(in, name, hd->profile, err) != 0)
                return -1;
        }
    }
    return 0;
}

/* report.html: Table 3 of the three ends, their per-class PQ, the class table, the
 * figures in OUT/figures, the timings and the provenance of report.json. */
static void put_html(FILE *fp, const run_job *rj, const run_report_input *in, const char *figures_dir) {
    static const char *const rows[RUN_ENDS] = {"E-UPS", "LWL-HTC", "Fusion (ours)"};
    report_row row[RUN_ENDS];
    for (int e = 0; e < RUN_ENDS; e++)
        row[e] = (report_row){rows[e], in->totals->pq[e], run_miou(in->totals, e, rj->eval->n_categories)};
    report_table table3 = {"table3", "Table 3: E-UPS, LWL-HTC and the two-level fusion", row, RUN_ENDS};
    report_timing timings[2 * STEP_COUNT + STAGE_COUNT + 4];
    char names[2 * STEP_COUNT + STAGE_COUNT][48];
    size_t n = 0;
    for (int s = 0; s < STAGE_COUNT; s++, n++) {
        snprintf(names[n], sizeof names[n], "stage %s (wall)", stage_names[s]);
        timings[n] = (report_timing){names[n], rj->stage_seconds[s], "s"};
    }
    for (int s = 0; s < STEP_COUNT; s++, n++) {
        snprintf(names[n], sizeof names[n], "step %s (thread seconds)", run_step_names[s]);
        timings[n] = (report_timing){names[n], in->totals->seconds[s], "s"};
    }
    for (int s = 0; s < STEP_COUNT; s++, n++) {
        snprintf(names[n], sizeof names[n], "step %s (CPU seconds)", run_step_names[s]);
        timings[n] = (report_timing){names[n], in->totals->cpu[s], "s"};
    }
    double eval_s = rj->stage_seconds[STAGE_EVALUATE];
    timings[n++] = (report_timing){"images per second", eval_s > 0 ? (double)rj->images_now / eval_s : 0, ""};
    rank_sums sums = sum_ranks(rj);
    timings[n++] = (report_timing){"CPU per image, all ranks", per_image(sums.cpu, rj->images_now), "s"};
    timings[n++] = (report_timing){"workers' wait for work per image", per_image(sums.wait, rj->images_now), "s"};
    timings[n++] = (report_timing){"root main thread CPU per image", per_image(sums.root_main_cpu, rj->images_now), "s"};
    report_html_input hi = {.command = "avps run", .cfg = &rj->cfg, .gt = rj->eval, .tables = &table3, .n_tables = 1,
                            .per_class = row, .n_per_class = RUN_ENDS, .classes = &rj->table, .timings = timings,
                            .n_timings = n, .digests = in->digests, .digest_names = in->digest_names,
                            .n_digests = in->n_digests, .figures_dir = figures_dir};
    report_html_write(fp, &hi);
}

/* Removes what a killed process left half-written (<name>.tmp.<pid>) in a folder. */
static void remove_temporaries(const char *dir) {
    DIR *d = dir ? opendir(dir) : NULL;
    for (struct dirent *de; d && (de = readdir(d));)
        if (strstr(de->d_name, ".tmp.")) {
            char *p = path_join(dir, de->d_name);
            if (p)
                unlink(p);
            free(p);
        }
    if (d)
        closedir(d);
}

/* The class table and each end's per-class PQ (mpi/report.h), into the stage. */
static int write_figures(const run_job *rj, const run_totals *totals, const char *stage, avps_error *err) {
    const char *titles[RUN_ENDS] = {rj->cfg.ensemble_name, rj->cfg.heads[rj->cfg.lwl_htc].name, "two-level fusion"};
    const pq_totals *pq[RUN_ENDS];
    for (int e = 0; e < RUN_ENDS; e++)
        pq[e] = totals->pq[e];
    report_figures_input in = {.gt = rj->eval, .table = &rj->table, .n_ends = RUN_ENDS,
                               .end_names = run_end_names, .end_titles = titles, .pq = pq};
    return report_figures_write(stage, &in, err);
}

/* The reports, from the totals of every record. They stand or fall together: the
 * figures are drawn into a stage and the four files written and closed before any is
 * put in place, so a failure (a full disk) leaves the previous reports as they were. */
enum { REPORT_JSON, REPORT_TABLE3, REPORT_TIMINGS, REPORT_HTML, REPORT_FILES };
static const char *const report_file_names[REPORT_FILES] = {"report.json", "table3.md", "timings.json", "report.html"};

static int write_reports(run_job *rj, run_fold *fold, run_report_input *in, const char *stage, double t0,
                         avps_error *err) {
    atomic_file af[REPORT_FILES] = {{0}};
    int rc = write_figures(rj, &fold->totals, stage, err);
    for (int f = 0; rc == 0 && f < REPORT_FILES; f++) {
        char *path = path_join(rj->cfg.out, report_file_names[f]);
        rc = path ? file_atomic_open(&af[f], path, err) : avps_fail(err, "out of memory");
        free(path);
    }
    if (rc == 0) {
        run_report_put(af[REPORT_JSON].fp, in);
        run_table3_put(af[REPORT_TABLE3].fp, in);
        rj->stage_seconds[STAGE_REPORT] = run_now() - t0;
        put_timings(af[REPORT_TIMINGS].fp, rj, &fold->totals);
        put_html(af[REPORT_HTML].fp, rj, in, stage);
    }
    for (int f = 0; rc == 0 && f < REPORT_FILES; f++)
        rc = file_atomic_close(&af[f], err);
    if (rc == 0)
        rc = report_figures_publish(stage, rj->cfg.out, err);
    for (int f = 0; rc == 0 && f < REPORT_FILES; f++)
        rc = file_atomic_commit(&af[f], err);
    for (int f = 0; f < REPORT_FILES; f++)
        file_atomic_abort(&af[f]);
    return rc;
}

static int report(run_job *rj, run_fold *fold, double t0, avps_error *err) {
    run_report_input in = {.cfg = &rj->cfg, .gt = rj->eval, .totals = &fold->totals};
    char *stage = NULL;
    int rc = digest_inputs(rj, &in, err);
    if (rc == 0)
        rc = report_figures_stage(rj->cfg.out, &stage, err);
    if (rc == 0)
        rc = write_reports(rj, fold, &in, stage, t0, err);
    if (stage && rc != 0)
        path_remove_all(stage);
    free(stage);
    if (rc == 0 && !rj->opt.quiet)
        run_table3_print(stdout, &in);
    if (rc == 0) { /* what a killed run left (the folders' files are all in place now) */
        remove_temporaries(rj->cfg.out);
        remove_temporaries(rj->rs.png_dir);
        remove_temporaries(rj->rs.work_dir);
        for (int e = 0; e < 2; e++)
            remove_temporaries(rj->rs.end_png_dir[e]);
    }
    if (rc == 0 && !rj->opt.quiet) {
        fprintf(stderr, "avps run: stages");
        for (int s = 0; s < STAGE_COUNT; s++)
            fprintf(stderr, " %s %.2f s%s", stage_names[s], rj->stage_seconds[s], s + 1 < STAGE_COUNT ? "," : "");
        fprintf(stderr, "; results in %s\n", rj->cfg.out);
    }
    return rc;
}

/* The root's running totals and the panoptic files they write: OUT/panoptic.json and,
 * when asked, OUT/ends/<end>.json. */
static int fold_open(run_job *rj, run_fold *fold, const uint8_t *resumed, avps_error *err) {
    char *paths[RUN_ENDS] = {0};
    char *ends = path_join(rj->cfg.out, "ends");
    int rc = ends && (paths[END_FUSION] = path_join(rj->cfg.out, "panoptic.json")) ? 0 : avps_fail(err, "out of memory");
    for (int e = 0; rc == 0 && rj->cfg.write_end_panoptic && e < 2; e++) {
        char name[32];
        snprintf(name, sizeof name, "%s.json", run_end_names[e]);
        if (!(paths[e] = path_join(ends, name)))
            rc = avps_fail(err, "out of memory");
    }
    if (rc == 0)
        rc = run_fold_open(fold, rj->eval, rj->cfg.out, rj->cfg.hash, resumed, paths, err);
    for (int e = 0; e < RUN_ENDS; e++)
        free(paths[e]);
    free(ends);
    return rc;
}

/* The root's share of the evaluation pass: what earlier runs finished, and the totals. */
static int evaluate_prepare(run_job *rj, run_fold *fold, uint8_t **resumed, size_t **todo, size_t *n_todo,
                            avps_error *err) {
    size_t n = rj->eval->n_annotations;
    if (!(*resumed = calloc(n + 1, 1)))
        return avps_fail(err, "out of memory");
    if (run_journal_load(rj->cfg.out, rj->cfg.hash, rj->eval, NULL, todo, n_todo, err) != 0)
        return -1;
    memset(*resumed, 1, n);
    for (size_t k = 0; k < *n_todo; k++)
        (*resumed)[(*todo)[k]] = 0;
    return fold_open(rj, fold, *resumed, err);
}

/* The evaluation pass: the images still to do, handed out dynamically; the root folds
 * their records, with the journalled ones, in dataset order as they come. */
static int evaluate(run_job *rj, avps_error *err) {
    run_state *rs = &rj->rs;
    size_t n = rj->eval->n_annotations, n_todo = 0, *todo = NULL;
    rs->gt = rj->eval;
    rs->gt_dir = rj->cfg.eval.gt_dir;
    rs->end_of_category = rj->end_of_category;
    if (run_journal_open(rs, err) != 0)
        return -1;
    run_fold fold = {0};
    uint8_t *resumed = NULL;
    int root = job_is_root(rj->job), rc = 0;
    if (root && evaluate_prepare(rj, &fold, &resumed, &todo, &n_todo, err) != 0)
        rc = -1;
    /* small enough to balance and to bound what the root holds, large enough that asking is rare */
    size_t chunk = rj->cfg.chunk ? (size_t)rj->cfg.chunk : 0;
    if (!chunk)
        chunk = n_todo / ((size_t)job_size(rj->job) * (size_t)rj->cfg.threads * 8) + 1;
    if (!rj->cfg.chunk && chunk > 8)
        chunk = 8;
    run_progress prog;
    run_progress_start(&prog, rj->opt.progress, "avps run", n, n - n_todo);
    double t0 = run_now();
    job_dynamic plan = {.chunk = chunk, .threads = (int)rj->cfg.threads, .fn = run_image, .ctx = rs,
                        .sink = run_fold_sink, .sink_ctx = &fold, .progress = run_progress_update, .progress_ctx = &prog};
    if (root && rc == 0 && !(plan.stats = rj->rank_stats = calloc((size_t)job_size(rj->job), sizeof *rj->rank_stats)))
        rc = avps_fail(err, "out of memory");
    if (rc != 0) /* only the root can fail here, before any rank asks for work */
        job_fail(rj->job, err);
    job_map_dynamic(rj->job, n, todo, n_todo, &plan);
    rj->stage_seconds[STAGE_EVALUATE] = run_now() - t0;
    rj->images_now = n_todo;
    rj->buffered_max = plan.buffered_max;
    free(todo);
    double t1 = run_now();
    if (root)
        rc = run_fold_finish(&fold, err);
    if (root && rc == 0)
        rc = report(rj, &fold, t1, err);
    run_fold_release(&fold);
    free(resumed);
    return rc;
}

static int run(run_job *rj, avps_error *err) {
    double t0 = run_now();
    run_gpu_bind(rj->gpu, sizeof rj->gpu); /* before any head could start a GPU runtime */
    int root = job_is_root(rj->job);
    if (load_inputs(rj, err) != 0 || (root && check_out(rj, err) != 0))
        return -1;
    barrier(rj->job); /* every rank's inputs are good: now the folder may be written */
    char id[32];
    snprintf(id, sizeof id, "%016llx\n", (unsigned long long)rj->cfg.hash);
    char *id_path = path_join(rj->cfg.out, "run.id");
    int rc = id_path ? make_dirs(rj, err) : avps_fail(err, "out of memory");
    if (rc == 0 && root)
        rc = write_text(id_path, id, err);
    free(id_path);
    rj->rs = (run_state){.cfg = &rj->cfg, .job = rj->job, .ends = {rj->ends[0], rj->ends[1]}, .scratch = rj->scratch,
                         .png_dir = rj->rs.png_dir, .work_dir = rj->rs.work_dir,
                         .end_png_dir = {rj->rs.end_png_dir[0], rj->rs.end_png_dir[1]}, .journal_fd = -1};
    const char *die = getenv("AVPS_TEST_DIE_AFTER");
    rj->rs.die_after = die ? strtol(die, NULL, 10) : 0;
    rj->stage_seconds[STAGE_LOAD] = run_now() - t0;
    if (rc != 0)
        return -1;
    double t1 = run_now();
    if (class_table_stage(rj, err) != 0)
        return -1;
    rj->stage_seconds[STAGE_CALIBRATE] = run_now() - t1;
    return evaluate(rj, err);
}

static void run_job_release(run_job *rj) {
    for (int e = 0; e < 2; e++) {
        head_free(rj->ends[e]);
        free(rj->rs.end_png_dir[e]);
    }
    if (rj->scratch)
        for (long t = 0; t < rj->cfg.threads; t++)
            pq_scratch_free(rj->scratch[t]);
    free(rj->scratch);
    if (rj->rs.journal_fd >= 0)
        close(rj->rs.journal_fd);
    free(rj->rs.png_dir);
    free(rj->rs.work_dir);
    free(rj->end_of_category);
    free(rj->rank_stats);
    class_table_release(&rj->table);
    pan_dataset_free(rj->eval);
    pan_dataset_free(rj->heldout);
    run_config_release(&rj->cfg);
}

int cmd_run(avps_job *job, int argc, char **argv) {
    run_job rj = {.job = job, .rs = {.journal_fd = -1}};
    avps_error err;
    int rc = parse_options(argc, argv, &rj.opt, &err);
    if (rc == 0)
        rc = run(&rj, &err);
    run_job_release(&rj);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
