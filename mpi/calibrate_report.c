/* calibrate_report.c: what `avps calibrate` tells beyond the class table: the regret of
 * the table against a per-class oracle on the evaluation split and how much of its gain
 * over the best single end survives the bootstrap, as JSON and as a few lines. */
#include "calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_number(FILE *fp, double v) {
    if (isnan(v) || isinf(v))
        fputs("null", fp);
    else
        fprintf(fp, "%.17g", v);
}

/* {"end": value, ...} */
static void put_by_end(FILE *fp, const class_table *t, const double *v) {
    fputc('{', fp);
    for (size_t e = 0; e < t->n_ends; e++) {
        fputs(e ? ", " : "", fp);
        json_put_string(fp, t->end_names[e]);
        fputs(": ", fp);
        put_number(fp, v[e]);
    }
    fputc('}', fp);
}

/* The end with the best score (lower index on a tie), or -1 when one is undefined. */
static int oracle_end(const class_table *t, const double *row) {
    int best = 0;
    for (size_t e = 0; e < t->n_ends; e++) {
        if (isnan(row[e]))
            return -1;
        if (row[e] > row[best])
            best = (int)e;
    }
    return best;
}

static void put_eval(FILE *fp, const class_table *t, const calib_report *r) {
    fprintf(fp, ",\n  \"evaluation\": {\n    \"classes_counted\": %zu,\n    \"mean_table\": ", r->n_eval_classes);
    put_number(fp, r->mean_table);
    fputs(",\n    \"mean_oracle\": ", fp);
    put_number(fp, r->mean_oracle);
    fputs(",\n    \"regret\": ", fp);
    put_number(fp, r->regret);
    fputs(",\n    \"mean_end\": ", fp);
    put_by_end(fp, t, r->mean_end);
    fputs(",\n    \"best_single_end\": ", fp);
    json_put_string(fp, t->end_names[r->best_single]);
    fputs(",\n    \"gain_over_best_single\": ", fp);
    put_number(fp, r->gain);
    fputs(",\n    \"classes\": [", fp);
    for (size_t c = 0; c < t->n_classes; c++) {
        const double *row = r->eval_score + c * t->n_ends;
        fprintf(fp, "%s\n      {\"category_id\": %d, \"n_eval\": %llu, \"table_end\": ", c ? "," : "",
                t->category_id[c], (unsigned long long)r->n_eval[c]);
        json_put_string(fp, t->end_names[t->chosen[c]]);
        int oracle = oracle_end(t, row);
        fputs(", \"oracle_end\": ", fp);
        if (oracle < 0)
            fputs("null", fp);
        else
            json_put_string(fp, t->end_names[oracle]);
        fputs(", \"score\": ", fp);
        put_by_end(fp, t, row);
        fputc('}', fp);
    }
    fputs("\n    ]\n  }", fp);
}

static void put_bootstrap(FILE *fp, const class_table *t, const calib_report *r) {
    fprintf(fp, ",\n  \"bootstrap\": {\n    \"resamples\": %zu,\n    \"seed\": %llu", r->bootstrap,
            (unsigned long long)r->seed);
    if (r->has_eval) {
        const struct {
            const char *name;
            double v;
        } rows[] = {{"gain_mean", r->gain_mean},         {"gain_p5", r->gain_p5},
                    {"gain_p95", r->gain_p95},           {"gain_positive_fraction", r->gain_positive},
                    {"regret_mean", r->regret_mean},
                    {"gain_surviving", r->gain > 0 ? r->gain_mean / r->gain : NAN}};
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
            fprintf(fp, ",\n    \"%s\": ", rows[i].name);
            put_number(fp, rows[i].v);
        }
    }
    fputs(",\n    \"agreement\": {", fp);
    for (size_t c = 0; c < t->n_classes; c++) {
        fprintf(fp, "%s\"%d\": ", c ? ", " : "", t->category_id[c]);
        put_number(fp, r->agreement[c]);
    }
    fputs("}\n  }", fp);
}

int calib_report_write(const char *path, const class_table *t, const calib_report *r, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    FILE *fp = af.fp;
    fputs("{\n  \"metric\": ", fp);
    json_put_string(fp, t->metric);
    fputs(",\n  \"ends\": [", fp);
    for (size_t e = 0; e < t->n_ends; e++) {
        fputs(e ? ", " : "", fp);
        json_put_string(fp, t->end_names[e]);
    }
    fprintf(fp, "],\n  \"heldout_images\": %zu,\n  \"eval_images\": %zu", r->n_heldout_images, r->n_eval_images);
    if (r->has_eval)
        put_eval(fp, t, r);
    if (r->bootstrap > 0)
        put_bootstrap(fp, t, r);
    fputs("\n}\n", fp);
    return file_atomic_commit(&af, err);
}

void calib_report_print(FILE *fp, const class_table *t, const calib_report *r) {
    size_t fallback = 0;
    for (size_t c = 0; c < t->n_classes; c++)
        fallback += (size_t)t->fallback[c];
    fprintf(fp, "calibrate: %zu ends, %zu thing classes, %zu held-out images, %zu evaluation images, metric %s\n",
            t->n_ends, t->n_classes, r->n_heldout_images, r->n_eval_images, t->metric);
    fputs("class table:", fp);
    for (size_t e = 0; e < t->n_ends; e++) {
        size_t n = 0;
        for (size_t c = 0; c < t->n_classes; c++)
            n += t->chosen[c] == (int)e;
        fprintf(fp, "%s %s for %zu classes", e ? "," : "", t->end_names[e], n);
    }
    fprintf(fp, "; %zu of them by fallback to %s (fewer than %llu held-out instances or a score undefined)\n",
            fallback, t->end_names[t->overall_best], (unsigned long long)t->min_instances);
    if (r->has_eval) {
        fprintf(fp, "evaluation (%zu classes with instances), mean %s: table %.4f, oracle %.4f", r->n_eval_classes,
                t->metric, r->mean_table, r->mean_oracle);
        for (size_t e = 0; e < t->n_ends; e++)
            fprintf(fp, ", %s %.4f", t->end_names[e], r->mean_end[e]);
        fprintf(fp, "\nregret (oracle - table) %.4f; gain over the best single end (%s) %.4f\n", r->regret,
                t->end_names[r->best_single], r->gain);
    }
    if (r->bootstrap > 0 && r->has_eval)
        fprintf(fp,
                "bootstrap (%zu resamples of the held-out images): gain mean %.4f, 5th percentile %.4f, "
                "95th %.4f, > 0 in %.0f%% of resamples; regret mean %.4f\n",
                r->bootstrap, r->gain_mean, r->gain_p5, r->gain_p95, 100 * r->gain_positive, r->regret_mean);
}
