/* report_html.c: report.html (report_html.h): the paper's tables, the figures in
 * OUT/figures/, the class table, per-class PQ with category names, timings and provenance,
 * in one page that a browser opens from disk. Numbers are in percent with one decimal,
 * as table3.md and the paper print them. */
#include "report_html.h"
#include "../viz/viz.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef AVPS_VERSION
#define AVPS_VERSION "0.1.0"
#endif

static const char style[] =
    "body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:72em}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "caption{text-align:left;font-weight:bold;padding:0.3em 0}"
    "th,td{border:1px solid #bbb;padding:0.2em 0.6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "thead th{background:#e8eef6}"
    "tr.ours td{font-weight:bold}"
    ".sim{background:#fff3cd;border:2px solid #e0a800;padding:0.8em;font-weight:bold}"
    "figure{display:inline-block;margin:0.5em}figure img{max-width:100%;border:1px solid #ccc}"
    "code{background:#f3f3f3;padding:0 0.2em}";

static int head_is_sim(const run_head *h) { return h->backend && strcmp(h->backend, "sim") == 0; }

static void sim_banner(FILE *fp, const run_config *cfg) {
    size_t n = 0;
    for (size_t h = 0; h < cfg->n_heads; h++)
        n += (size_t)head_is_sim(&cfg->heads[h]);
    if (n == 0)
        return;
    fputs("<p class=\"sim\" id=\"simulation\">Simulation: ", fp);
    fprintf(fp, "%zu of the %zu heads are simulated (backend <code>sim</code>:", n, cfg->n_heads);
    for (size_t h = 0, k = 0; h < cfg->n_heads; h++)
        if (head_is_sim(&cfg->heads[h])) {
            fputs(k++ ? ", " : " ", fp);
            viz_put_escaped(fp, cfg->heads[h].name);
        }
    fputs("). These numbers exercise the system; they are not any network's results on COCO "
          "(docs/simulation.md).</p>\n", fp);
}

static void table_head(FILE *fp, int with_miou) {
    fputs("<thead><tr><th>Method</th><th>PQ</th><th>SQ</th><th>RQ</th><th>PQ<sup>Th</sup></th><th>SQ<sup>Th</sup></th>"
          "<th>RQ<sup>Th</sup></th><th>PQ<sup>St</sup></th><th>SQ<sup>St</sup></th><th>RQ<sup>St</sup></th>",
          fp);
    fputs(with_miou ? "<th>mIoU (SS)</th></tr></thead>\n" : "</tr></thead>\n", fp);
}

static void paper_table(FILE *fp, const report_table *t, const pan_dataset *gt) {
    int with_miou = t->n_rows > 0 && t->rows[0].miou >= 0;
    fputs("<table id=\"", fp);
    viz_put_escaped(fp, t->id);
    fputs("\"><caption>", fp);
    viz_put_escaped(fp, t->title);
    fputs("</caption>\n", fp);
    table_head(fp, with_miou);
    fputs("<tbody>\n", fp);
    for (size_t r = 0; r < t->n_rows; r++) {
        const report_row *row = &t->rows[r];
        fputs(strncmp(row->name, "Fusion", 6) == 0 ? "<tr class=\"ours\"><td>" : "<tr><td>", fp);
        viz_put_escaped(fp, row->name);
        fputs("</td>", fp);
        for (int g = 0; g < 3; g++) {
            pq_summary s = pq_summarize(row->pq, gt, g == 0 ? -1 : g == 1 ? 1 : 0);
            fprintf(fp, "<td>%.1f</td><td>%.1f</td><td>%.1f</td>", 100 * s.pq, 100 * s.sq, 100 * s.rq);
        }
        if (with_miou)
            fprintf(fp, "<td>%.1f</td>", 100 * row->miou);
        fputs("</tr>\n", fp);
    }
    fputs("</tbody></table>\n", fp);
}

static void category_name(FILE *fp, const pan_category *c) {
    if (c->name)
        viz_put_escaped(fp, c->name);
    else
        fprintf(fp, "%d", c->id);
}

/* panopticapi's per_class: the categories with a TP, FP or FN. */
static void per_class_table(FILE *fp, const report_row *row, size_t index, const pan_dataset *gt) {
    fprintf(fp, "<table id=\"per-class-%zu\" class=\"per-class\"><caption>Per-class PQ: ", index);
    viz_put_escaped(fp, row->name);
    fputs("</caption>\n<thead><tr><th>Category</th><th>id</th><th>kind</th><th>PQ</th><th>SQ</th><th>RQ</th>"
          "<th>TP</th><th>FP</th><th>FN</th></tr></thead>\n<tbody>\n",
          fp);
    for (size_t i = 0; i < row->pq->n_categories && i < gt->n_categories; i++) {
        const pq_class_stat *c = &row->pq->per_class[i];
        if (c->tp + c->fp + c->fn == 0)
            continue;
        double pq, sq, rq;
        pq_class_ratios(c, &pq, &sq, &rq);
        fputs("<tr><td>", fp);
        category_name(fp, &gt->categories[i]);
        fprintf(fp, "</td><td>%d</td><td>%s</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%llu</td><td>%llu</td>"
                    "<td>%llu</td></tr>\n",
                gt->categories[i].id, gt->categories[i].isthing == 1 ? "thing" : "stuff", 100 * pq, 100 * sq,
                100 * rq, (unsigned long long)c->tp, (unsigned long long)c->fp, (unsigned long long)c->fn);
    }
    fputs("</tbody></table>\n", fp);
}

static const pan_category *find_category(const pan_dataset *gt, int32_t id) {
    for (size_t i = 0; i < gt->n_categories; i++)
        if (gt->categories[i].id == id)
            return &gt->categories[i];
    return NULL;
}

static void score_cell(FILE *fp, double v) {
    if (isnan(v))
        fputs("<td>&ndash;</td>", fp);
    else
        fprintf(fp, "<td>%.1f</td>", 100 * v);
}

/* Per thing class: each end's held-out metric, the end chosen, and the regret (the best
 * end's score less the chosen one's, where both are defined). */
static void class_table_html(FILE *fp, const class_table *t, const pan_dataset *gt) {
    fputs("<table id=\"class-table\"><caption>Class table (metric ", fp);
    viz_put_escaped(fp, t->metric);
    fprintf(fp, ", classes with fewer than %llu held-out instances take the overall best end, ",
            (unsigned long long)t->min_instances);
    viz_put_escaped(fp, t->end_names[t->overall_best]);
    fputs(")</caption>\n<thead><tr><th>Category</th><th>id</th><th>held-out instances</th>", fp);
    for (size_t e = 0; e < t->n_ends; e++) {
        fputs("<th>", fp);
        viz_put_escaped(fp, t->end_names[e]);
        fputs("</th>", fp);
    }
    fputs("<th>chosen</th><th>regret</th></tr></thead>\n<tbody>\n", fp);
    for (size_t c = 0; c < t->n_classes; c++) {
        const pan_category *cat = find_category(gt, t->category_id[c]);
        const double *score = &t->score[c * t->n_ends];
        fputs("<tr><td>", fp);
        if (cat)
            category_name(fp, cat);
        else
            fprintf(fp, "%d", t->category_id[c]);
        fprintf(fp, "</td><td>%d</td><td>%llu</td>", t->category_id[c], (unsigned long long)t->n_heldout[c]);
        double best = NAN;
        for (size_t e = 0; e < t->n_ends; e++) {
            score_cell(fp, score[e]);
            if (!isnan(score[e]) && (isnan(best) || score[e] > best))
                best = score[e];
        }
        fputs("<td>", fp);
        viz_put_escaped(fp, t->end_names[t->chosen[c]]);
        fputs(t->fallback[c] ? " (fallback)</td>" : "</td>", fp);
        score_cell(fp, isnan(best) || isnan(score[t->chosen[c]]) ? NAN : best - score[t->chosen[c]]);
        fputs("</tr>\n", fp);
    }
    fputs("</tbody></table>\n", fp);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_picture(const char *name) {
    size_t n = strlen(name);
    return name[0] != '.' && !strstr(name, ".tmp.") &&
           ((n > 4 && strcmp(name + n - 4, ".svg") == 0) || (n > 4 && strcmp(name + n - 4, ".png") == 0));
}

/* Every SVG and PNG of the figures' folder (the stage that becomes OUT/figures), by
 * name; a PNG is left out when its SVG is there. */
static void figures(FILE *fp, const char *dir) {
    DIR *d = dir ? opendir(dir) : NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!is_picture(de->d_name))
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    if (d)
        closedir(d);
    if (names)
        qsort(names, n, sizeof *names, name_cmp);
    fputs("<h2>Figures</h2>\n", fp);
    if (n == 0)
        fputs("<p id=\"no-figures\">No figures in <code>figures/</code>.</p>\n", fp);
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(names[k]);
        if (strcmp(names[k] + len - 4, ".png") == 0 && k > 0 && strncmp(names[k - 1], names[k], len - 4) == 0 &&
            strcmp(names[k - 1] + len - 4, ".svg") == 0 && strlen(names[k - 1]) == len)
            continue; /* sorted: stem.png follows stem.svg */
        fputs("<figure><img src=\"figures/", fp);
        viz_put_escaped(fp, names[k]);
        fputs("\" alt=\"", fp);
        viz_put_escaped(fp, names[k]);
        fputs("\"><figcaption>", fp);
        viz_put_escaped(fp, names[k]);
        fputs("</figcaption></figure>\n", fp);
    }
    for (size_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
}

static void heads_table(FILE *fp, const run_config *cfg) {
    fputs("<table id=\"heads\"><caption>Heads</caption>\n<thead><tr><th>Head</th><th>backend</th><th>profile or store"
          "</th><th>role</th></tr></thead>\n<tbody>\n",
          fp);
    for (size_t h = 0; h < cfg->n_heads; h++) {
        const run_head *hd = &cfg->heads[h];
        const char *role = h == cfg->lwl_htc ? "LWL-HTC" : "";
        for (size_t m = 0; m < cfg->n_members; m++)
            if (cfg->members[m] == h)
                role = "E-UPS member";
        fputs("<tr><td>", fp);
        viz_put_escaped(fp, hd->name);
        fputs("</td><td>", fp);
        viz_put_escaped(fp, hd->backend);
        fputs("</td><td>", fp);
        viz_put_escaped(fp, hd->profile ? hd->profile : hd->store);
        fprintf(fp, "</td><td>%s</td></tr>\n", role);
    }
    fputs("</tbody></table>\n", fp);
}

static void timings_table(FILE *fp, const report_html_input *in) {
    if (in->n_timings == 0)
        return;
    fputs("<h2>Timings</h2>\n<table id=\"timings\"><thead><tr><th>What</th><th>value</th></tr></thead>\n<tbody>\n",
          fp);
    for (size_t k = 0; k < in->n_timings; k++) {
        fputs("<tr><td>", fp);
        viz_put_escaped(fp, in->timings[k].name);
        fprintf(fp, "</td><td>%.3f %s</td></tr>\n", in->timings[k].value, in->timings[k].unit);
    }
    fputs("</tbody></table>\n", fp);
}

static void provenance(FILE *fp, const report_html_input *in) {
    const run_config *cfg = in->cfg;
    char *config = path_canonical(cfg->path), *gt = path_canonical(in->gt->path);
    fputs("<h2>Provenance</h2>\n<table id=\"provenance\"><tbody>\n<tr><td>avps</td><td>" AVPS_VERSION "</td></tr>\n"
          "<tr><td>config</td><td>",
          fp);
    viz_put_escaped(fp, config ? config : cfg->path);
    fprintf(fp, "</td></tr>\n<tr><td>config FNV-1a 64</td><td>%016llx</td></tr>\n<tr><td>evaluation ground truth</td><td>",
            (unsigned long long)cfg->hash);
    viz_put_escaped(fp, gt ? gt : in->gt->path);
    fprintf(fp, " (%zu images)</td></tr>\n", in->gt->n_annotations);
    for (size_t k = 0; k < in->n_digests; k++) {
        fputs("<tr><td>", fp);
        viz_put_escaped(fp, in->digest_names[k]);
        fprintf(fp, " FNV-1a 64</td><td>%016llx</td></tr>\n", (unsigned long long)in->digests[k]);
    }
    fputs("</tbody></table>\n", fp);
    free(config);
    free(gt);
}

void report_html_write(FILE *fp, const report_html_input *in) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", fp);
    viz_put_escaped(fp, in->command);
    fputs(": AntVisionPS report</title>\n<style>", fp);
    fputs(style, fp);
    fputs("</style>\n</head>\n<body>\n<h1>", fp);
    viz_put_escaped(fp, in->command);
    fputs(": AntVisionPS (ICCV 2019 COCO + Mapillary workshop) report</h1>\n", fp);
    sim_banner(fp, in->cfg);
    fputs("<h2>Tables</h2>\n<p>PQ, SQ and RQ in percent, as panopticapi computes them; Th: things, St: stuff.</p>\n", fp);
    for (size_t t = 0; t < in->n_tables; t++)
        paper_table(fp, &in->tables[t], in->gt);
    figures(fp, in->figures_dir);
    if (in->classes) {
        fputs("<h2>Class table</h2>\n<p>Held-out metric of each end per thing class, in percent.</p>\n", fp);
        class_table_html(fp, in->classes, in->gt);
    }
    fputs("<h2>Per-class PQ</h2>\n", fp);
    for (size_t r = 0; r < in->n_per_class; r++)
        per_class_table(fp, &in->per_class[r], r, in->gt);
    fputs("<h2>Heads</h2>\n", fp);
    heads_table(fp, in->cfg);
    timings_table(fp, in);
    provenance(fp, in);
    fputs("</body>\n</html>\n", fp);
}
