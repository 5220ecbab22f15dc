/* cmd_calibrate.c: `avps calibrate`, the options around the calibration core
 * (calibrate.h): which end gives each thing class its instances, from a held-out split,
 * with the regret on an evaluation split and a bootstrap over held-out images. */
#include "commands.h"

#include "calibrate.h"
#include "cli.h"
#include "progress.h"
#include "end_spec.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char calibrate_usage[] =
    "usage: avps calibrate --heldout-json F [--heldout-dir D] [--eval-json F [--eval-dir D]]\n"
    "                      [--progress auto|bar|lines|none]\n"
    "                      --end NAME=SPEC --end NAME=SPEC ... --out class_table.json\n"
    "                      [--metric mask_ap|pq_th] [--min-instances N] [--bootstrap B] [--seed S]\n"
    "                      [--report F.json] [--plot-class-table F.svg|F.png] [--threads N]\n"
    "  Measures every end's per-class mask AP (or, with pq_th, the per-class PQ of the end's\n"
    "  own panoptic result) on the held-out panoptic split F (PNGs in D, default F without\n"
    "  .json) and writes the class table: for each thing class the end with the better\n"
    "  score; classes with fewer than N held-out instances (default 10) take\n"
    "  the end better overall. SPEC is sim:PROFILE[:SEED], replay:STORE_DIR or\n"
    "  ensemble:M*W,M*W,... (members M = MNAME=sim:... or MNAME=replay:..., weights W). With\n"
    "  --eval-json: the table's regret against a per-class oracle on that split, and over B\n"
    "  resamples of the held-out images (default 100, seeded by S, default 1) how much of\n"
    "  its gain over the best single end survives. The splits must not share an image.\n"
    "  --table F instead of --out: assess the class table F (for exactly these ends) rather\n"
    "  than choose one: its choices, scores measured anew, in the report and on stdout.\n"
    "  --plot-class-table draws the table: per thing class each end's held-out score, the\n"
    "  pick and its regret (docs/formats.md, \"Figures\"), as SVG or PNG by the extension.\n";

#define MAX_END_ARGS 64

typedef struct {
    const char *heldout_json, *heldout_dir, *eval_json, *eval_dir, *out, *report, *table, *plot;
    const char *end_text[MAX_END_ARGS];
    size_t n_ends;
    calib_params p;
    long threads;
} calibrate_options;

/* The numeric options: --min-instances, --bootstrap, --seed, --threads. */
static int take_numbers(int argc, char **argv, int *i, calibrate_options *o, avps_error *err) {
    const char *v = NULL;
    long n;
    int r;
    if ((r = cli_take(argc, argv, i, "--min-instances", &v, err)) > 0) {
        r = cli_int("--min-instances", v, 0, 2147483647, &n, err) == 0 ? 1 : -1;
        o->p.min_instances = (uint64_t)n;
    } else if (r == 0 && (r = cli_take(argc, argv, i, "--bootstrap", &v, err)) > 0) {
        r = cli_int("--bootstrap", v, 0, 100000, &n, err) == 0 ? 1 : -1;
        o->p.bootstrap = (size_t)n;
    } else if (r == 0 && (r = cli_take(argc, argv, i, "--seed", &v, err)) > 0) {
        r = cli_int("--seed", v, 0, 2147483647, &n, err) == 0 ? 1 : -1;
        o->p.seed = (uint64_t)n;
    } else if (r == 0 && (r = cli_take(argc, argv, i, "--threads", &v, err)) > 0) {
        r = cli_int("--threads", v, 1, 1024, &o->threads, err) == 0 ? 1 : -1;
    }
    return r;
}

static int parse_options(int argc, char **argv, calibrate_options *o, avps_error *err) {
    o->p = (calib_params){"mask_ap", 10, 100, 1, 0, NULL, PROGRESS_AUTO, "avps calibrate"};
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "calibrate", &o->p.progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *end = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--heldout-json", &o->heldout_json, err)) ||
            (r = cli_take(argc, argv, &i, "--heldout-dir", &o->heldout_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--eval-json", &o->eval_json, err)) ||
            (r = cli_take(argc, argv, &i, "--eval-dir", &o->eval_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--report", &o->report, err)) ||
            (r = cli_take(argc, argv, &i, "--table", &o->table, err)) ||
            (r = cli_take(argc, argv, &i, "--plot-class-table", &o->plot, err)) ||
            (r = cli_take(argc, argv, &i, "--metric", &o->p.metric, err)) ||
            (r = cli_take(argc, argv, &i, "--end", &end, err)) || (r = take_numbers(argc, argv, &i, o, err))) {
            if (r < 0)
                return -1;
            if (end && o->n_ends == MAX_END_ARGS)
                return avps_fail(err, "calibrate: at most %d ends", MAX_END_ARGS);
            if (end)
                o->end_text[o->n_ends++] = end;
            continue;
        }
        return avps_fail(err, "calibrate: unknown argument '%s'\n%s", argv[i], calibrate_usage);
    }
    if (!o->heldout_json || !o->out == !o->table || o->n_ends == 0)
        return avps_fail(err, "calibrate: --heldout-json, --out (or --table) and at least one --end are required\n%s",
                         calibrate_usage);
    if (o->eval_dir && !o->eval_json)
        return avps_fail(err, "calibrate: --eval-dir without --eval-json");
    if (o->report && !o->eval_json && o->p.bootstrap == 0)
        return avps_fail(err, "calibrate: --report needs --eval-json or --bootstrap");
    return 0;
}

/* Everything the command owns, released in one place. */
typedef struct {
    pan_dataset *heldout, *eval;
    char *heldout_dir, *eval_dir;
    end_spec specs[MAX_END_ARGS];
    head *heads[MAX_END_ARGS];
    size_t n_heads;
    class_table table, given;
    calib_report report;
} calibrate_state;

static void state_release(calibrate_state *s) {
    for (size_t e = 0; e < s->n_heads; e++) {
        head_free(s->heads[e]);
        end_spec_release(&s->specs[e]);
    }
    pan_dataset_free(s->heldout);
    pan_dataset_free(s->eval);
    free(s->heldout_dir);
    free(s->eval_dir);
    class_table_release(&s->table);
    class_table_release(&s->given);
    calib_report_release(&s->report);
}

static int make_heads(const calibrate_options *o, calibrate_state *s, avps_error *err) {
    for (size_t e = 0; e < o->n_ends; e++) {
        if (end_spec_parse(o->end_text[e], &s->specs[e], err) != 0)
            return -1;
        s->n_heads = e + 1;
        for (size_t f = 0; f < e; f++)
            if (strcmp(s->specs[f].cfg.name, s->specs[e].cfg.name) == 0)
                return avps_fail(err, "calibrate: two ends are named '%s'", s->specs[e].cfg.name);
        if (!(s->heads[e] = end_spec_head_new(&s->specs[e], s->heldout, err)))
            return -1;
        /* one-sided ends (docs/algorithms.md, "Two-level fusion") */
        const int32_t *cats;
        const char *name = s->specs[e].cfg.name;
        if (!head_has_instances(s->heads[e]))
            return avps_fail(err, "calibrate: end %s gives no instances (a semantic-only end): the class table has "
                                  "no choice to make; fuse it without one (avps fuse, no --class-table)", name);
        if (head_channels(s->heads[e], &cats) == 0 && o->p.metric && strcmp(o->p.metric, "pq_th") == 0)
            return avps_fail(err, "calibrate: end %s has no semantic side (an instance-only end), so it has no "
                                  "panoptic result of its own for --metric pq_th: use mask_ap", name);
    }
    return 0;
}

/* The report first, the table last: a table on disk means the whole run succeeded. */
static int write_outputs(const calibrate_options *o, calibrate_state *s, avps_error *err) {
    if (o->report && calib_report_write(o->report, &s->table, &s->report, err) != 0)
        return -1;
    if (o->plot && report_class_table_chart(&s->table, s->heldout, o->plot, err) != 0) {
        if (o->report)
            unlink(o->report);
        return -1;
    }
    if (o->out && class_table_write(o->out, &s->table, err) != 0) {
        if (o->report)
            unlink(o->report);
        if (o->plot)
            unlink(o->plot);
        return -1;
    }
    calib_report_print(stdout, &s->table, &s->report);
    return 0;
}

static int run(avps_job *job, calibrate_options *o, calibrate_state *s, avps_error *err) {
    if ((o->report && job_output_file(job, o->report, err) != 0) || (o->out && job_output_file(job, o->out, err) != 0) ||
        (o->plot && job_output_file(job, o->plot, err) != 0))
        return -1;
    size_t plot_len = o->plot ? strlen(o->plot) : 0;
    if (o->plot && !(plot_len > 4 && (strcasecmp(o->plot + plot_len - 4, ".svg") == 0 ||
                                      strcasecmp(o->plot + plot_len - 4, ".png") == 0)))
        return avps_fail(err, "--plot-class-table %s: the file must end in .svg or .png", o->plot);
    if (!o->heldout_dir)
        o->heldout_dir = s->heldout_dir = path_without_json_suffix(o->heldout_json);
    if (o->eval_json && !o->eval_dir)
        o->eval_dir = s->eval_dir = path_without_json_suffix(o->eval_json);
    if (!o->heldout_dir || (o->eval_json && !o->eval_dir))
        return avps_fail(err, "out of memory");
    if (!(s->heldout = pan_dataset_load(o->heldout_json, PAN_GROUND_TRUTH, err)) ||
        (o->eval_json && !(s->eval = pan_dataset_load(o->eval_json, PAN_GROUND_TRUTH, err))))
        return -1;
    if (make_heads(o, s, err) != 0)
        return -1;
    if (o->table) {
        const char *names[MAX_END_ARGS];
        for (size_t e = 0; e < s->n_heads; e++)
            names[e] = s->specs[e].cfg.name;
        if (class_table_read(o->table, s->heldout, names, s->n_heads, &s->given, err) != 0)
            return -1;
        o->p.given = &s->given;
    }
    calib_split heldout = {s->heldout, o->heldout_dir}, eval = {s->eval, o->eval_dir};
    o->p.threads = (int)o->threads;
    if (calibrate_run(job, &o->p, s->heads, s->n_heads, &heldout, s->eval ? &eval : NULL, &s->table, &s->report,
                      err) != 0)
        return -1;
    return job_is_root(job) ? write_outputs(o, s, err) : 0;
}

int cmd_calibrate(avps_job *job, int argc, char **argv) {
    calibrate_options o = {0};
    calibrate_state s = {0};
    avps_error err;
    int rc = parse_options(argc, argv, &o, &err);
    if (rc == 0) {
        if (!o.threads)
            o.threads = job_cpu_count();
        rc = run(job, &o, &s, &err);
    }
    state_release(&s);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
