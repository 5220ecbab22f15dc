/* report.h: what `avps run` and `avps tables` write for people to look at beside their
 * JSON: the figures (report_figures.c), drawn with viz's charts from data the commands
 * already hold. docs/formats.md, "Figures", names the files.
 *
 * Every figure is written as SVG and PNG under OUT/figures/:
 *   class_table.svg/.png          per thing class both ends' held-out metric, the pick, the regret
 *   pq_per_class_<end>.svg/.png   per category PQ of one end (<end>: e_ups, lwl_htc, fusion)
 *   pr_curves.svg/.png            precision/recall per IoU threshold (where AP is computed)
 * A command stages them (report_figures_stage: OUT/figures.partial) and publishes them
 * with its other reports (report_figures_publish), so a failure leaves OUT/figures as it
 * was; a failure returns -1 with err. */
#ifndef AVPS_MPI_REPORT_H
#define AVPS_MPI_REPORT_H

#include "../eval/eval.h"
#include "../fusion/fusion.h"

#define REPORT_FIGURES_DIR "figures"

typedef struct {
    const pan_dataset *gt;            /* the categories (names, ids, isthing) */
    const class_table *table;         /* NULL: no class table figure */
    size_t n_ends;                    /* per-class PQ figures, one per end */
    const char *const *end_names;     /* file-name part: pq_per_class_<name> */
    const char *const *end_titles;    /* shown in the figure (NULL: the name) */
    const pq_totals *const *pq;       /* n_ends */
} report_figures_input;

/* A fresh, empty staging folder for out's figures (*stage: caller frees; removed first
 * when an interrupted command left it); publishing puts its files in out/figures. */
int report_figures_stage(const char *out, char **stage, avps_error *err);
int report_figures_publish(const char *stage, const char *out, avps_error *err);
/* Writes the figures into the folder fig_dir (a stage). */
int report_figures_write(const char *fig_dir, const report_figures_input *in, avps_error *err);

/* The class table figure alone (path ending in .svg or .png); metric names the score. */
int report_class_table_chart(const class_table *t, const pan_dataset *ds, const char *path, avps_error *err);
/* One end's per-class PQ bars (every category with a TP, FP or FN, as panopticapi's per_class). */
int report_pq_chart(const pq_totals *t, const pan_dataset *gt, const char *title, const char *path, avps_error *err);
/* PR curves from the arrays ap_accumulate_params keeps (want_arrays): precision
 * T x R x K x A x M, as --eval-out writes it. One curve per IoU threshold of p: at each
 * recall threshold the mean precision over the categories where it is defined (> -1), as
 * COCOeval.summarize averages; area "all" (else the first range), maxDets 100 (else the
 * largest). */
int report_pr_chart(const ap_summary *s, const ap_params *p, const char *path, avps_error *err);

#endif
