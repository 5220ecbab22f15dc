/* table_text.c: the per-class tables people read on the console. AP as detectron2's
 * COCOEvaluator logs it (percent, "Evaluation results for segm:" and "Per-category segm
 * AP:" as tabulate's pipe tables, three category/AP pairs a row) and per-class PQ in the
 * layout of panopticapi's printed table. Category names come from the ground truth; a
 * category without one shows its id. */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* tabulate's "pipe" format: each column as wide as its widest cell or its header plus
 * two, one space of padding either side, colons marking the alignment. cells are
 * row-major, NULL for a missing cell (shown empty). */
static void pipe_table(FILE *fp, size_t n_cols, const char *const *headers, int center, size_t n_rows,
                       const char *const *cells) {
    size_t width[16] = {0};
    for (size_t c = 0; c < n_cols && c < 16; c++) {
        width[c] = strlen(headers[c]) + 2;
        for (size_t r = 0; r < n_rows; r++) {
            const char *s = cells[r * n_cols + c];
            if (s && strlen(s) > width[c])
                width[c] = strlen(s);
        }
    }
    for (size_t r = 0; r < n_rows + 2; r++) {
        fputc('|', fp);
        for (size_t c = 0; c < n_cols && c < 16; c++) {
            if (r == 1) {
                fputc(':', fp); /* the column is width + 2 wide with its padding */
                for (size_t k = 0; k < width[c]; k++)
                    fputc('-', fp);
                fputs(center ? ":|" : "-|", fp);
                continue;
            }
            const char *s = r == 0 ? headers[c] : cells[(r - 2) * n_cols + c];
            size_t len = s ? strlen(s) : 0, pad = width[c] - len, left = center ? pad / 2 : 0;
            fprintf(fp, " %*s%s%*s |", (int)left, "", s ? s : "", (int)(pad - left), "");
        }
        fputc('\n', fp);
    }
}

static void percent_text(double v, char *buf, size_t n) {
    if (v < 0 || isnan(v))
        snprintf(buf, n, "nan");
    else
        snprintf(buf, n, "%.3f", 100 * v);
}

void ap_print_detectron2(FILE *fp, const ap_summary *s, const inst_dataset *gt, iou_type type) {
    static const char *const names[6] = {"AP", "AP50", "AP75", "APs", "APm", "APl"};
    const char *kind = type == IOU_SEGM ? "segm" : "bbox";
    char small[6][32];
    const char *row[6];
    for (int i = 0; i < 6; i++) {
        percent_text(s->stats[i], small[i], sizeof small[i]);
        row[i] = small[i];
    }
    fprintf(fp, "Evaluation results for %s:\n", kind);
    pipe_table(fp, 6, names, 1, 1, row);
    size_t k = s->n_categories, cols = k * 2 < 6 ? k * 2 : 6;
    if (cols == 0)
        return;
    size_t n_rows = (k * 2 + cols - 1) / cols;
    char (*ids)[16] = calloc(k + 1, sizeof *ids), (*aps)[32] = calloc(k + 1, sizeof *aps);
    const char **cells = calloc(n_rows * cols + 1, sizeof *cells);
    if (!ids || !aps || !cells) {
        fprintf(fp, "(per-category table: out of memory)\n");
    } else {
        /* detectron2 flattens (name, AP) pairs and deals them into `cols` columns */
        for (size_t c = 0; c < k; c++) {
            snprintf(ids[c], sizeof ids[c], "%d", gt->category_ids[c]);
            percent_text(s->per_class_ap[c], aps[c], sizeof aps[c]);
            const char *name = gt->category_names && gt->category_names[c] ? gt->category_names[c] : ids[c];
            cells[2 * c] = name;
            cells[2 * c + 1] = aps[c];
        }
        const char *headers[6] = {"category", "AP", "category", "AP", "category", "AP"};
        fprintf(fp, "Per-category %s AP:\n", kind);
        pipe_table(fp, cols, headers, 0, n_rows, cells);
    }
    free(ids);
    free(aps);
    free(cells);
}

void pq_print_per_class(FILE *fp, const pq_totals *t, const pan_dataset *gt) {
    int w = 10;
    for (size_t i = 0; i < t->n_categories; i++)
        if (gt->categories[i].name && (int)strlen(gt->categories[i].name) + 1 > w)
            w = (int)strlen(gt->categories[i].name) + 1;
    fprintf(fp, "%-*s| %5s  %5s  %5s %6s %6s %6s  %s\n", w, "", "PQ", "SQ", "RQ", "TP", "FP", "FN", "kind");
    for (int k = 0; k < w + 50; k++)
        fputc('-', fp);
    fputc('\n', fp);
    for (size_t i = 0; i < t->n_categories; i++) {
        const pq_class_stat *c = &t->per_class[i];
        if (c->tp + c->fp + c->fn == 0) /* not in panopticapi's per_class either */
            continue;
        double pq, sq, rq;
        pq_class_ratios(c, &pq, &sq, &rq);
        char id[16];
        snprintf(id, sizeof id, "%d", gt->categories[i].id);
        fprintf(fp, "%-*s| %5.1f  %5.1f  %5.1f %6llu %6llu %6llu  %s\n", w,
                gt->categories[i].name ? gt->categories[i].name : id, 100 * pq, 100 * sq, 100 * rq,
                (unsigned long long)c->tp, (unsigned long long)c->fp, (unsigned long long)c->fn,
                gt->categories[i].isthing == 1 ? "thing" : "stuff");
    }
}
