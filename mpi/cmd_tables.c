/* cmd_tables.c: `avps tables CONFIG`, the layout of the paper's Tables 1-3 from whatever
 * heads an `avps run` config names: every head alone and the E-UPS ensemble (Table 1:
 * the UPS variants), the heads outside the ensemble (Table 2: the HTC variants), and
 * E-UPS, LWL-HTC and their fusion (Table 3). Every row is one end's own panoptic result
 * (fusion_run, the config's combiner and thresholds) scored with PQ as panopticapi. On
 * the simulated world it exercises the system; on stored outputs of real networks it
 * reproduces the paper's tables. Writes OUT/tables.md, OUT/tables.json and OUT/report.html. */
#include "commands.h"

#include "../ensemble/ensemble.h"
#include "calibrate.h"
#include "cli.h"
#include "report.h"
#include "report_html.h"
#include "run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char tables_usage[] =
    "usage: avps tables CONFIG [--out DIR] [--threads N] [--progress auto|bar|lines|none]\n"
    "  The paper's Tables 1-3 from the heads an `avps run` config names (docs/config.md):\n"
    "  PQ, SQ, RQ over all, things and stuff of every head alone, of the E-UPS ensemble, of\n"
    "  LWL-HTC and of the fusion. The class table is the config's \"fusion.class_table\", or\n"
    "  is chosen on the held-out split. Writes DIR/tables.md, DIR/tables.json (DIR: the\n"
    "  config's \"out\" unless --out), the same bytes for any number of ranks, DIR/figures/\n"
    "  and DIR/report.html (the tables and figures as a page).\n";

/* Rows: heads 0..n_heads-1, then E-UPS, then the fusion (LWL-HTC is its head's row). */
typedef struct {
    run_config cfg;
    avps_job *job;
    pan_dataset *eval, *heldout;
    head *heads[RUN_MAX_HEADS];
    class_table table;
    int *end_of_category;
    pq_scratch **scratch;
    size_t n_rows;
    progress_mode progress;
    double t0; /* when the command started, for the page's timing */
} tables_job;

static size_t row_e_ups(const tables_job *tj) { return tj->cfg.n_heads; }
static size_t row_fusion(const tables_job *tj) { return tj->cfg.n_heads + 1; }

/* ---- one image ------------------------------------------------------------------------- */

static int score(const tables_job *tj, int thread, const pan_image *im, const pan_annotation *ann, const char *gt_png,
                 const fusion_end *ends, size_t n_ends, const int *end_of_category, job_blob *out, avps_error *err) {
    fusion_params p;
    fusion_params_default(&p);
    p.combiner = tj->cfg.combiner_kind;
    p.heuristic = tj->cfg.combine;
    fusion_input in = {im->id, im->height, im->width, ends, n_ends, end_of_category, tj->eval->categories,
                       tj->eval->n_categories, NULL};
    fusion_panoptic pan = {0};
    pq_events ev = {0};
    uint32_t *ids = malloc((size_t)im->width * im->height * sizeof *ids + 1);
    int rc = ids ? fusion_run(&p, &in, &pan, err) : avps_fail(err, "out of memory");
    if (rc == 0) {
        fusion_panoptic_paint(&pan, ids);
        pan_annotation pred = {im->id, im->file_name, pan.n_segments, pan.segments};
        pq_image_input pi = {tj->eval, "avps tables", ann, &pred, gt_png, NULL, im, ids};
        rc = pq_image_eval(tj->scratch[thread], &pi, &ev, err);
    }
    uint64_t n = ev.n;
    if (rc == 0 && (job_blob_append(out, &n, sizeof n) != 0 || job_blob_append(out, ev.items, ev.n * sizeof *ev.items)))
        rc = avps_fail(err, "out of memory");
    pq_events_release(&ev);
    fusion_panoptic_release(&pan);
    free(ids);
    return rc;
}

/* The item's blob: per row, a count and that many pq_events. */
static int tables_image(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    const tables_job *tj = ctx;
    const run_config *cfg = &tj->cfg;
    const pan_annotation *ann = &tj->eval->annotations[item];
    const pan_image *im = pan_dataset_find_image(tj->eval, ann->image_id);
    char *gt_png = path_join(cfg->eval.gt_dir, ann->file_name);
    head_output outs[RUN_MAX_HEADS], e_ups = {0};
    size_t n_run = 0;
    int rc = im && gt_png ? 0 : avps_fail(err, "%s: image %s: not in \"images\"", tj->eval->path, ann->image_id);
    head_input in = {im, ann, gt_png, NULL};
    for (; rc == 0 && n_run < cfg->n_heads; n_run++)
        if ((rc = head_run(tj->heads[n_run], &in, &outs[n_run], err)) != 0)
            break;
    for (size_t h = 0; rc == 0 && h < cfg->n_heads; h++) {
        fusion_end one = {&outs[h], 1};
        rc = score(tj, thread, im, ann, gt_png, &one, 1, NULL, out, err);
    }
    head_output members[RUN_MAX_HEADS];
    const char *names[RUN_MAX_HEADS];
    for (size_t m = 0; rc == 0 && m < cfg->n_members; m++) {
        members[m] = outs[cfg->members[m]];
        names[m] = cfg->heads[cfg->members[m]].name;
    }
    const head_output *ups = cfg->n_members == 1 ? &outs[cfg->members[0]] : &e_ups;
    ensemble_options eo; /* the defaults, as avps run's ensemble head */
    ensemble_options_default(&eo);
    if (rc == 0 && cfg->n_members > 1)
        rc = ensemble_merge(members, cfg->weights, names, cfg->n_members, &eo, &e_ups, err);
    if (rc == 0) {
        fusion_end one = {ups, 1};
        rc = score(tj, thread, im, ann, gt_png, &one, 1, NULL, out, err);
    }
    if (rc == 0) {
        fusion_end both[2] = {{ups, cfg->ss_weights[0]}, {&outs[cfg->lwl_htc], cfg->ss_weights[1]}};
        rc = score(tj, thread, im, ann, gt_png, both, 2, tj->end_of_category, out, err);
    }
    if (cfg->n_members > 1)
        head_output_release(&e_ups);
    for (size_t h = 0; h < n_run && h < cfg->n_heads; h++)
        head_output_release(&outs[h]);
    free(gt_png);
    return rc;
}

/* ---- setup ------------------------------------------------------------------------------ */

/* The class table: the config's, or chosen on the held-out split with E-UPS (an ensemble
 * head of fresh members) against LWL-HTC. On the root only; the others get it below. */
static int choose_table(tables_job *tj, avps_error *err) {
    const run_config *cfg = &tj->cfg;
    head *ends[2] = {NULL, NULL}, *members[RUN_MAX_HEADS] = {0};
    int rc = 0;
    for (size_t m = 0; rc == 0 && m < cfg->n_members; m++)
        if (!(members[m] = run_head_new(cfg, cfg->members[m], tj->eval, err)))
            rc = -1;
    if (rc != 0) {
        for (size_t m = 0; m < cfg->n_members; m++)
            head_free(members[m]);
        return -1;
    }
    ends[0] = cfg->n_members == 1 ? members[0]
                                  : ensemble_head_new(cfg->ensemble_name, members, cfg->weights, cfg->n_members, NULL, err);
    if (!ends[0] || !(ends[1] = run_head_new(cfg, cfg->lwl_htc, tj->eval, err)))
        rc = -1;
    const char *names[2] = {ends[0] ? head_name(ends[0]) : "", ends[1] ? head_name(ends[1]) : ""};
    if (rc == 0 && cfg->class_table) {
        rc = class_table_read(cfg->class_table, tj->eval, names, 2, &tj->table, err);
        if (rc != 0)
            avps_prefix(err, "%s: \"fusion.class_table\"", cfg->path);
    } else if (rc == 0) {
        calib_params p = {.metric = cfg->metric, .min_instances = (uint64_t)cfg->min_instances, .seed = cfg->seed,
                          .threads = (int)cfg->threads, .progress = tj->progress,
                          .what = "avps tables (held-out)"};
        calib_split heldout = {tj->heldout, cfg->heldout.gt_dir};
        calib_report report = {0};
        rc = calibrate_run(tj->job, &p, ends, 2, &heldout, NULL, &tj->table, &report, err);
        calib_report_release(&report);
    }
    head_free(ends[0]);
    head_free(ends[1]);
    return rc;
}

static int load(tables_job *tj, const char *config, const char *out, long threads, avps_error *err) {
    run_config *cfg = &tj->cfg;
    if (run_config_load(config, cfg, err) != 0)
        return -1;
    if (out) {
        free(cfg->out);
        if (!(cfg->out = strdup(out)))
            return avps_fail(err, "out of memory");
    }
    if (!cfg->out)
        return avps_fail(err, "%s: \"out\" is not set and no --out was given", cfg->path);
    cfg->threads = threads ? threads : cfg->threads ? cfg->threads : job_cpu_count();
    if (!(tj->eval = pan_dataset_load(cfg->eval.gt_json, PAN_GROUND_TRUTH, err)))
        return -1;
    if (!cfg->class_table && (!(tj->heldout = pan_dataset_load(cfg->heldout.gt_json, PAN_GROUND_TRUTH, err)) ||
                              run_heads_check(cfg, tj->heldout, err) != 0))
        return -1;
    for (size_t h = 0; h < cfg->n_heads; h++)
        if (!(tj->heads[h] = run_head_new(cfg, h, tj->eval, err)))
            return -1;
    tj->n_rows = cfg->n_heads + 2;
    tj->scratch = calloc((size_t)cfg->threads, sizeof *tj->scratch);
    tj->end_of_category = calloc(tj->eval->n_categories + 1, sizeof *tj->end_of_category);
    if (!tj->scratch || !tj->end_of_category)
        return avps_fail(err, "out of memory");
    for (long t = 0; t < cfg->threads; t++)
        if (!(tj->scratch[t] = pq_scratch_new()))
            return avps_fail(err, "out of memory");
    return 0;
}

/* ---- the tables ------------------------------------------------------------------------------ */

static int is_member(const run_config *cfg, size_t h) {
    for (size_t m = 0; m < cfg->n_members; m++)
        if (cfg->members[m] == h)
            return 1;
    return 0;
}

static const char *row_name(const tables_job *tj, size_t r) {
    return r == row_e_ups(tj) ? "E-UPS" : r == row_fusion(tj) ? "Fusion" : tj->cfg.heads[r].name;
}

static void md_row(FILE *fp, const tables_job *tj, pq_totals *const *t, size_t r) {
    fprintf(fp, "| %s |", row_name(tj, r));
    for (int g = 0; g < 3; g++) {
        pq_summary s = pq_summarize(t[r], tj->eval, g == 0 ? -1 : g == 1 ? 1 : 0);
        fprintf(fp, " %.1f | %.1f | %.1f |", 100 * s.pq, 100 * s.sq, 100 * s.rq);
    }
    fputc('\n', fp);
}

static void md_table(FILE *fp, const tables_job *tj, pq_totals *const *t, const char *title, const size_t *rows,
                     size_t n) {
    fprintf(fp, "%s\n\n| Method | PQ | SQ | RQ | PQ^Th | SQ^Th | RQ^Th | PQ^St | SQ^St | RQ^St |\n", title);
    fprintf(fp, "|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < n; k++)
        md_row(fp, tj, t, rows[k]);
    fputc('\n', fp);
}

static void write_md(const tables_job *tj, pq_totals *const *t, FILE *fp) {
    const run_config *cfg = &tj->cfg;
    size_t rows[RUN_MAX_HEADS + 2], n = 0;
    fprintf(fp, "Tables 1-3 of AntVisionPS (ICCV 2019 COCO workshop), laid out from %s on %s, %zu images\n\n",
            cfg->path, tj->eval->path, tj->eval->n_annotations);
    for (size_t h = 0; h < cfg->n_heads; h++)
        if (is_member(cfg, h))
            rows[n++] = h;
    rows[n++] = row_e_ups(tj);
    md_table(fp, tj, t, "Table 1: the UPS ends and their weighted ensemble", rows, n);
    n = 0;
    for (size_t h = 0; h < cfg->n_heads; h++)
        if (!is_member(cfg, h))
            rows[n++] = h;
    md_table(fp, tj, t, "Table 2: the other ends (HTC variants)", rows, n);
    size_t three[3] = {row_e_ups(tj), cfg->lwl_htc, row_fusion(tj)};
    md_table(fp, tj, t, "Table 3: E-UPS, LWL-HTC and the two-level fusion", three, 3);
}

static void write_json(const tables_job *tj, pq_totals *const *t, FILE *fp) {
    fputs("{\n  \"rows\": {\n", fp);
    for (size_t r = 0; r < tj->n_rows; r++) {
        fputs("    ", fp);
        json_put_string(fp, r == row_e_ups(tj) ? "e_ups" : r == row_fusion(tj) ? "fusion" : row_name(tj, r));
        fputs(": ", fp);
        pq_write_report(fp, t[r], tj->eval);
        fprintf(fp, "    %s\n", r + 1 < tj->n_rows ? "," : "");
    }
    fputs("  },\n  \"lwl_htc\": ", fp);
    json_put_string(fp, tj->cfg.heads[tj->cfg.lwl_htc].name);
    fputs("\n}\n", fp);
}

/* report.html: the three tables of write_md, per-class PQ of Table 3's rows, the class
 * table, the figures in OUT/figures, the wall time and the ground truth's digest. */
static void write_html(const tables_job *tj, pq_totals *const *t, const char *figures_dir, FILE *fp) {
    const run_config *cfg = &tj->cfg;
    report_row rows[RUN_MAX_HEADS + 2];
    size_t n = 0;
    for (size_t h = 0; h < cfg->n_heads; h++)
        if (is_member(cfg, h))
            rows[n++] = (report_row){row_name(tj, h), t[h], -1};
    rows[n++] = (report_row){"E-UPS", t[row_e_ups(tj)], -1};
    size_t n1 = n;
    for (size_t h = 0; h < cfg->n_heads; h++)
        if (!is_member(cfg, h))
            rows[n++] = (report_row){row_name(tj, h), t[h], -1};
    report_row three[3] = {{"E-UPS", t[row_e_ups(tj)], -1},
                           {row_name(tj, cfg->lwl_htc), t[cfg->lwl_htc], -1},
                           {"Fusion", t[row_fusion(tj)], -1}};
    report_table tables[3] = {{"table1", "Table 1: the UPS ends and their weighted ensemble", rows, n1},
                              {"table2", "Table 2: the other ends (HTC variants)", rows + n1, n - n1},
                              {"table3", "Table 3: E-UPS, LWL-HTC and the two-level fusion", three, 3}};
    report_timing wall = {"avps tables (wall, up to the report)", run_now() - tj->t0, "s"};
    uint64_t digest[1];
    char digest_name[1][96] = {"eval_gt_json"};
    avps_error ignored;
    size_t n_digests = run_file_digest(cfg->eval.gt_json, &digest[0], &ignored) == 0 ? 1 : 0;
    report_html_input hi = {.command = "avps tables", .cfg = cfg, .gt = tj->eval, .tables = tables, .n_tables = 3,
                            .per_class = three, .n_per_class = 3, .classes = &tj->table, .timings = &wall,
                            .n_timings = 1, .digests = digest, .digest_names = digest_name, .n_digests = n_digests,
                            .figures_dir = figures_dir};
    report_html_write(fp, &hi);
}

/* tables.md, tables.json, report.html and the staged figures stand or fall together:
 * all are written and closed before any is put in place, so a full disk leaves the
 * previous ones as they were. */
static int write_tables(const tables_job *tj, pq_totals *const *t, const char *md, const char *js, const char *html,
                        const char *stage, avps_error *err) {
    atomic_file a = {0}, b = {0}, c = {0};
    int rc = file_atomic_open(&a, md, err) != 0 || file_atomic_open(&b, js, err) != 0 ||
                     file_atomic_open(&c, html, err) != 0
                 ? -1
                 : 0;
    if (rc == 0) {
        write_md(tj, t, a.fp);
        write_json(tj, t, b.fp);
        write_html(tj, t, stage, c.fp);
        rc = file_atomic_close(&a, err) != 0 || file_atomic_close(&b, err) != 0 || file_atomic_close(&c, err) != 0
                 ? -1
                 : 0;
    }
    if (rc == 0)
        rc = report_figures_publish(stage, tj->cfg.out, err);
    if (rc == 0)
        rc = file_atomic_commit(&a, err) != 0 || file_atomic_commit(&b, err) != 0 || file_atomic_commit(&c, err) != 0
                 ? -1
                 : 0;
    file_atomic_abort(&a);
    file_atomic_abort(&b);
    file_atomic_abort(&c);
    return rc;
}

/* The class table and the per-class PQ of E-UPS, LWL-HTC and the fusion, under the
 * names avps run gives them (mpi/report.h), into the stage that becomes OUT/figures. */
static int write_figures(const tables_job *tj, pq_totals *const *t, const char *stage, avps_error *err) {
    const char *titles[RUN_ENDS] = {tj->cfg.ensemble_name, tj->cfg.heads[tj->cfg.lwl_htc].name, "two-level fusion"};
    const pq_totals *pq[RUN_ENDS] = {t[row_e_ups(tj)], t[tj->cfg.lwl_htc], t[row_fusion(tj)]};
    report_figures_input in = {.gt = tj->eval, .table = &tj->table, .n_ends = RUN_ENDS,
                               .end_names = run_end_names, .end_titles = titles, .pq = pq};
    return report_figures_write(stage, &in, err);
}

static int report(const tables_job *tj, job_blob *blobs, avps_error *err) {
    pq_totals *t[RUN_MAX_HEADS + 2] = {0};
    int rc = 0;
    for (size_t r = 0; rc == 0 && r < tj->n_rows; r++)
        if (!(t[r] = pq_totals_new(tj->eval->n_categories)))
            rc = avps_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < tj->eval->n_annotations; i++) {
        size_t off = 0;
        for (size_t r = 0; rc == 0 && r < tj->n_rows; r++) {
            uint64_t n;
            if (blobs[i].len - off < sizeof n)
                rc = -1;
            else {
                memcpy(&n, blobs[i].data + off, sizeof n);
                off += sizeof n;
                if (n > (blobs[i].len - off) / sizeof(pq_event) ||
                    pq_totals_add(t[r], tj->eval->annotations[i].image_id, (const pq_event *)(blobs[i].data + off), n))
                    rc = -1;
                off += n * sizeof(pq_event);
            }
        }
        if (rc != 0)
            avps_fail(err, "image %s: malformed statistics", tj->eval->annotations[i].image_id);
    }
    char *md = path_join(tj->cfg.out, "tables.md"), *js = path_join(tj->cfg.out, "tables.json"),
         *html = path_join(tj->cfg.out, "report.html");
    if (rc == 0 && (!md || !js || !html))
        rc = avps_fail(err, "out of memory");
    if (rc == 0)
        rc = dir_create(tj->cfg.out, err);
    char *stage = NULL;
    if (rc == 0)
        rc = report_figures_stage(tj->cfg.out, &stage, err);
    if (rc == 0)
        rc = write_figures(tj, t, stage, err);
    if (rc == 0) /* after the figures, which the page embeds */
        rc = write_tables(tj, t, md, js, html, stage, err);
    if (stage && rc != 0)
        path_remove_all(stage);
    free(stage);
    for (size_t r = 0; r < tj->n_rows; r++)
        pq_totals_free(t[r]);
    free(md);
    free(js);
    free(html);
    return rc;
}

static int no_work(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    (void)ctx, (void)thread, (void)item, (void)out, (void)err;
    return 0;
}

/* The class table reaches every rank through the output folder, under a staging name that
 * a failed run removes; it becomes DIR/class_table.json only with the tables, so a failure
 * leaves a previous one as it was. */
#define TABLE_STAGED "class_table.json.partial"

static int publish_table(const tables_job *tj, const char *staged, avps_error *err) {
    char *final = path_join(tj->cfg.out, "class_table.json");
    int rc = final ? 0 : avps_fail(err, "out of memory");
    if (rc == 0 && rename(staged, final) != 0)
        rc = avps_fail(err, "%s: cannot rename to %s: %s", staged, final, strerror(errno));
    free(final);
    return rc;
}

static int run(tables_job *tj, const char *config, const char *out, long threads, avps_error *err) {
    char *const outputs[] = {"tables.md", "tables.json", "report.html", "class_table.json", TABLE_STAGED};
    if (load(tj, config, out, threads, err) != 0 || job_output_files_in(tj->job, tj->cfg.out, outputs, 5, err) != 0)
        return -1;
    job_blobs_free(job_map(tj->job, (size_t)job_size(tj->job), 1, no_work, NULL), (size_t)job_size(tj->job));
    if (choose_table(tj, err) != 0)
        return -1;
    /* the table reaches every rank through the output folder, as in avps run */
    char *path = path_join(tj->cfg.out, TABLE_STAGED);
    const char *names[2] = {tj->cfg.n_members == 1 ? tj->cfg.heads[tj->cfg.members[0]].name : tj->cfg.ensemble_name,
                            tj->cfg.heads[tj->cfg.lwl_htc].name};
    int rc = path ? 0 : avps_fail(err, "out of memory");
    if (rc == 0 && job_is_root(tj->job))
        rc = dir_create(tj->cfg.out, err) || class_table_write(path, &tj->table, err) ? -1 : 0;
    if (rc == 0) {
        job_blobs_free(job_map(tj->job, (size_t)job_size(tj->job), 1, no_work, NULL), (size_t)job_size(tj->job));
        class_table_release(&tj->table);
        rc = class_table_read(path, tj->eval, names, 2, &tj->table, err);
    }
    if (rc == 0)
        rc = class_table_end_map(&tj->table, tj->eval, tj->end_of_category, err);
    size_t n = tj->eval->n_annotations;
    if (rc != 0) {
        free(path);
        return -1;
    }
    job_blob *blobs = progress_map(tj->job, n, (int)tj->cfg.threads, tables_image, tj, tj->progress, "avps tables");
    if (blobs) { /* the root */
        rc = report(tj, blobs, err);
        job_blobs_free(blobs, n);
        if (rc == 0)
            rc = publish_table(tj, path, err);
    }
    free(path);
    return rc;
}

int cmd_tables(avps_job *job, int argc, char **argv) {
    const char *config = NULL, *out = NULL, *threads_text = NULL;
    long threads = 0;
    avps_error err;
    int rc = 0;
    progress_mode progress = PROGRESS_AUTO;
    for (int i = 0; rc == 0 && i < argc; i++) {
        int r;
        if ((r = progress_take(argc, argv, &i, "tables", &progress, &err))) {
            rc = r < 0 ? -1 : 0;
        } else if ((r = cli_take(argc, argv, &i, "--out", &out, &err)) || (r = cli_take(argc, argv, &i, "--threads", &threads_text, &err))) {
            if (r < 0 || (threads_text && cli_int("--threads", threads_text, 1, 1024, &threads, &err) != 0))
                rc = -1;
        } else if (argv[i][0] != '-' && !config) {
            config = argv[i];
        } else {
            rc = avps_fail(&err, "tables: unknown argument '%s'\n%s", argv[i], tables_usage);
        }
    }
    if (rc == 0 && !config)
        rc = avps_fail(&err, "tables: a CONFIG file is required\n%s", tables_usage);
    tables_job tj = {.job = job, .progress = progress, .t0 = run_now()};
    if (rc == 0)
        rc = run(&tj, config, out, threads, &err);
    for (size_t h = 0; h < RUN_MAX_HEADS; h++)
        head_free(tj.heads[h]);
    if (tj.scratch)
        for (long t = 0; t < tj.cfg.threads; t++)
            pq_scratch_free(tj.scratch[t]);
    free(tj.scratch);
    free(tj.end_of_category);
    class_table_release(&tj.table);
    pan_dataset_free(tj.eval);
    pan_dataset_free(tj.heldout);
    run_config_release(&tj.cfg);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
