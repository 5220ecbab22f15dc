/* report_figures.c: the figures of a run (mpi/report.h): the class table, each end's
 * per-class PQ and the PR curves of `avps eval ap`, turned into viz charts and written as
 * SVG and PNG. Values are drawn in percent, as panopticapi and detectron2 print them. */
#include "report.h"
#include "job.h"
#include "../viz/viz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Colours: matplotlib's "tab10", the palette pycocotools and detectron2 users plot with. */
static const uint8_t PALETTE[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};
static const uint8_t REGRET[3] = {127, 127, 127}, THING[3] = {31, 119, 180}, STUFF[3] = {255, 127, 14};

static const pan_category *find_category(const pan_dataset *ds, int32_t id) {
    for (size_t i = 0; i < ds->n_categories; i++)
        if (ds->categories[i].id == id)
            return &ds->categories[i];
    return NULL;
}

/* Writes the chart as base.svg and base.png. */
static int write_both(const viz_chart *c, const char *dir, const char *base, avps_error *err) {
    size_t n = strlen(dir) + strlen(base) + 8;
    char *path = malloc(n);
    if (!path)
        return avps_fail(err, "out of memory");
    snprintf(path, n, "%s/%s.svg", dir, base);
    int rc = viz_chart_write(c, path, err);
    snprintf(path, n, "%s/%s.png", dir, base);
    if (rc == 0)
        rc = viz_chart_write(c, path, err);
    free(path);
    return rc;
}

/* ---- the class table --------------------------------------------------------------------- */

static int class_table_chart(const class_table *t, const pan_dataset *ds, const char *dir, const char *base,
                             const char *path, avps_error *err) {
    size_t n = t->n_classes, n_ends = t->n_ends;
    double *values = calloc((n_ends + 1) * (n ? n : 1), sizeof *values);
    const char **names = calloc(n ? n : 1, sizeof *names);
    char **notes = calloc(n ? n : 1, sizeof *notes);
    viz_series *series = calloc(n_ends + 1, sizeof *series);
    int rc = values && names && notes && series ? 0 : avps_fail(err, "out of memory");
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const pan_category *cat = find_category(ds, t->category_id[k]);
        names[k] = cat ? cat->name : "?";
        double best = NAN;
        for (size_t e = 0; e < n_ends; e++) {
            double s = t->score[k * n_ends + e];
            values[e * n + k] = 100 * s;
            if (!isnan(s) && (isnan(best) || s > best))
                best = s;
        }
        /* regret: what the pick gives up against the best end on the held-out split */
        double picked = t->score[k * n_ends + (size_t)t->chosen[k]];
        values[n_ends * n + k] = isnan(best) || isnan(picked) ? NAN : 100 * (best - picked);
        size_t len = strlen(t->end_names[t->chosen[k]]) + 64;
        if (!(notes[k] = malloc(len)))
            rc = avps_fail(err, "out of memory");
        else
            snprintf(notes[k], len, "pick %s%s, n=%llu", t->end_names[t->chosen[k]],
                     t->fallback[k] ? " (fallback)" : "", (unsigned long long)t->n_heldout[k]);
    }
    const char *metric = strcmp(t->metric, "pq_th") == 0 ? "PQ" : "mask AP";
    char label[96];
    snprintf(label, sizeof label, "held-out %s (%%); grey: regret of the pick", metric);
    for (size_t e = 0; rc == 0 && e <= n_ends; e++) {
        series[e] = (viz_series){.name = e < n_ends ? t->end_names[e] : "regret", .n = n, .y = values + e * n};
        memcpy(series[e].color, e < n_ends ? PALETTE[e % 10] : REGRET, 3);
    }
    viz_chart c = {.kind = VIZ_CHART_BARS,
                   .title = "Class table: which end gives each thing class its instances",
                   .x_label = label,
                   .v_min = 0,
                   .v_max = 100,
                   .n_categories = n,
                   .category = names,
                   .note = (const char *const *)notes,
                   .highlight = t->chosen,
                   .n_series = n_ends + 1,
                   .series = series};
    if (rc == 0 && n == 0)
        rc = avps_fail(err, "the class table has no thing classes to draw");
    if (rc == 0)
        rc = path ? viz_chart_write(&c, path, err) : write_both(&c, dir, base, err);
    for (size_t k = 0; notes && k < n; k++)
        free(notes[k]);
    free(notes);
    free(names);
    free(values);
    free(series);
    return rc;
}

int report_class_table_chart(const class_table *t, const pan_dataset *ds, const char *path, avps_error *err) {
    return class_table_chart(t, ds, NULL, NULL, path, err);
}

/* ---- per-class PQ ------------------------------------------------------------------------ */

static int pq_chart(const pq_totals *t, const pan_dataset *gt, const char *title, const char *dir, const char *base,
                    const char *path, avps_error *err) {
    size_t n = gt->n_categories, shown = 0;
    double *values = malloc((n ? n : 1) * sizeof *values);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    uint8_t (*colors)[3] = malloc((n ? n : 1) * sizeof *colors);
    int rc = values && names && colors ? 0 : avps_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < n && i < t->n_categories; i++) {
        const pq_class_stat *s = &t->per_class[i];
        if (s->tp + s->fp + s->fn == 0)
            continue; /* as panopticapi's per_class: not in the ground truth nor the result */
        double pq, sq, rq;
        pq_class_ratios(s, &pq, &sq, &rq);
        names[shown] = gt->categories[i].name;
        values[shown] = 100 * pq;
        memcpy(colors[shown], gt->categories[i].isthing ? THING : STUFF, 3);
        shown++;
    }
    viz_series series = {.name = "PQ: things blue, stuff orange", .n = shown, .y = values,
                         .color = {31, 119, 180}, .colors = (const uint8_t(*)[3])colors};
    char full[160];
    snprintf(full, sizeof full, "Per-class PQ: %s", title);
    viz_chart c = {.kind = VIZ_CHART_BARS,
                   .title = full,
                   .x_label = "PQ (%)",
                   .v_min = 0,
                   .v_max = 100,
                   .n_categories = shown,
                   .category = names,
                   .n_series = 1,
                   .series = &series};
    if (rc == 0 && shown == 0)
        rc = avps_fail(err, "%s: no category has a segment to draw", title);
    if (rc == 0)
        rc = path ? viz_chart_write(&c, path, err) : write_both(&c, dir, base, err);
    free(values);
    free(names);
    free(colors);
    return rc;
}

int report_pq_chart(const pq_totals *t, const pan_dataset *gt, const char *title, const char *path, avps_error *err) {
    return pq_chart(t, gt, title, NULL, NULL, path, err);
}

/* ---- PR curves --------------------------------------------------------------------------- */

int report_pr_chart(const ap_summary *s, const ap_params *p, const char *path, avps_error *err) {
    ap_dims d = s->dims;
    if (!s->precision || d.T == 0 || d.R == 0 || d.A == 0 || d.M == 0 || d.T != p->n_iou || d.R != p->n_rec)
        return avps_fail(err, "%s: no precision array to draw", path);
    size_t area = 0, md = d.M - 1;
    for (size_t a = 0; a < d.A && a < p->n_areas; a++)
        if (strcmp(p->areas[a].label, "all") == 0) {
            area = a;
            break;
        }
    for (size_t m = 0; m < d.M && m < p->n_max_dets; m++)
        if (p->max_dets[m] == 100)
            md = m;
    double *y = malloc(d.T * d.R * sizeof *y);
    viz_series *series = calloc(d.T, sizeof *series);
    char (*names)[32] = calloc(d.T, sizeof *names);
    int rc = y && series && names ? 0 : avps_fail(err, "out of memory");
    for (size_t t = 0; rc == 0 && t < d.T; t++) {
        for (size_t r = 0; r < d.R; r++) {
            double sum = 0;
            size_t n = 0;
            for (size_t k = 0; k < d.K; k++) {
                double v = s->precision[(((t * d.R + r) * d.K + k) * d.A + area) * d.M + md];
                if (v > -1) {
                    sum += v;
                    n++;
                }
            }
            y[t * d.R + r] = n ? sum / (double)n : NAN;
        }
        snprintf(names[t], sizeof names[t], "IoU=%.2f", p->iou_thrs[t]);
        series[t] = (viz_series){.name = names[t], .n = d.R, .y = y + t * d.R, .x = p->rec_thrs};
        memcpy(series[t].color, PALETTE[t % 10], 3);
    }
    char title[96];
    snprintf(title, sizeof title, "Precision-recall per IoU threshold (area %s, maxDets %u)",
             area < p->n_areas ? p->areas[area].label : "?", md < p->n_max_dets ? p->max_dets[md] : 0);
    viz_chart c = {.kind = VIZ_CHART_LINES,
                   .title = title,
                   .x_label = "recall",
                   .y_label = "precision",
                   .v_min = 0,
                   .v_max = 1,
                   .x_min = 0,
                   .x_max = 1,
                   .n_series = d.T,
                   .series = series};
    if (rc == 0)
        rc = viz_chart_write(&c, path, err);
    free(y);
    free(series);
    free(names);
    return rc;
}

/* ---- a run's figures --------------------------------------------------------------------- */

static int has_segments(const pq_totals *t) {
    for (size_t i = 0; t && i < t->n_categories; i++)
        if (t->per_class[i].tp + t->per_class[i].fp + t->per_class[i].fn > 0)
            return 1;
    return 0;
}

int report_figures_stage(const char *out, char **stage, avps_error *err) {
    *stage = path_join(out, REPORT_FIGURES_DIR ".partial");
    if (!*stage)
        return avps_fail(err, "out of memory");
    path_remove_all(*stage);
    return dir_create(*stage, err);
}

int report_figures_publish(const char *stage, const char *out, avps_error *err) {
    char *fig = path_join(out, REPORT_FIGURES_DIR);
    int rc = fig ? job_output_publish(stage, fig, err) : avps_fail(err, "out of memory");
    free(fig);
    return rc;
}

int report_figures_write(const char *fig, const report_figures_input *in, avps_error *err) {
    int rc = 0;
    /* a figure with nothing to draw (no thing class; an end with no segment) is left out */
    if (rc == 0 && in->table && in->table->n_classes > 0)
        rc = class_table_chart(in->table, in->gt, fig, "class_table", NULL, err);
    for (size_t e = 0; rc == 0 && e < in->n_ends; e++) {
        char base[160];
        snprintf(base, sizeof base, "pq_per_class_%s", in->end_names[e]);
        if (!has_segments(in->pq[e]))
            continue;
        rc = pq_chart(in->pq[e], in->gt, in->end_titles ? in->end_titles[e] : in->end_names[e], fig, base, NULL, err);
    }
    return rc;
}
