/* report_html.h: report.html, the page `avps run` and `avps tables` write beside their
 * JSON (mpi/report_html.c, docs/formats.md "report.html"). One self-contained file: inline
 * CSS, no script; the figures in OUT/figures/ (written by viz/'s plots) are referenced by
 * name when they exist. Every name from a config or a ground truth is HTML-escaped. A
 * page whose heads include a simulated one says so at the top, in a banner. The caller
 * opens and commits the file (it is staged with the command's other outputs). */
#ifndef AVPS_REPORT_HTML_H
#define AVPS_REPORT_HTML_H

#include "../fusion/fusion.h"
#include "run.h"

#include <stdio.h>

/* One row of a paper table: a name and its PQ totals; miou < 0 for no mIoU column. */
typedef struct {
    const char *name;
    const pq_totals *pq;
    double miou;
} report_row;

typedef struct {
    const char *id;    /* the table element's id ("table3") */
    const char *title; /* its caption */
    const report_row *rows;
    size_t n_rows;
} report_table;

typedef struct {
    const char *name;
    double value;
    const char *unit;
} report_timing;

typedef struct {
    const char *command; /* "avps run", "avps tables" */
    const run_config *cfg;
    const pan_dataset *gt; /* the evaluation split: category names and kinds */
    const report_table *tables;
    size_t n_tables;
    const report_row *per_class; /* a per-class table for each */
    size_t n_per_class;
    const class_table *classes; /* NULL: none */
    const report_timing *timings;
    size_t n_timings;
    const uint64_t *digests; /* provenance: input files' FNV-1a 64 */
    const char (*digest_names)[96];
    size_t n_digests;
    const char *figures_dir; /* its SVG and PNG files are shown, as figures/NAME */
} report_html_input;

/* Writes the page; errors only from the caller's file (checked when it is closed). */
void report_html_write(FILE *fp, const report_html_input *in);

#endif
