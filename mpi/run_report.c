/* run_report.c: what `avps run` writes on the root: report.json (per end the PQ report of
 * `avps eval pq --json`, the SS mIoU, and the run's provenance), table3.md (the layout of
 * the paper's Table 3). Records are added in dataset order (run_fold.c), so every byte of report.json is the same for any number of ranks and threads;
 * timings, which are not, go to timings.json (cmd_run.c). */
#include "run.h"

#include <stdlib.h>
#include <string.h>

#ifndef AVPS_VERSION
#define AVPS_VERSION "0.1.0"
#endif

int run_totals_init(run_totals *t, size_t n_categories, avps_error *err) {
    memset(t, 0, sizeof *t);
    for (int e = 0; e < RUN_ENDS; e++) {
        t->pq[e] = pq_totals_new(n_categories);
        t->ss_inter[e] = calloc(n_categories + 1, sizeof(uint64_t));
        t->ss_pred[e] = calloc(n_categories + 1, sizeof(uint64_t));
        t->ss_gt[e] = calloc(n_categories + 1, sizeof(uint64_t));
        if (!t->pq[e] || !t->ss_inter[e] || !t->ss_pred[e] || !t->ss_gt[e])
            return avps_fail(err, "out of memory");
    }
    return 0;
}

void run_totals_release(run_totals *t) {
    for (int e = 0; e < RUN_ENDS; e++) {
        pq_totals_free(t->pq[e]);
        free(t->ss_inter[e]);
        free(t->ss_pred[e]);
        free(t->ss_gt[e]);
    }
    memset(t, 0, sizeof *t);
}

int run_totals_add(run_totals *t, const pan_dataset *gt, size_t item, const run_record *rec, avps_error *err) {
    const char *id = gt->annotations[item].image_id;
    for (uint32_t e = 0; e < rec->n_ends; e++) {
        if (pq_totals_add(t->pq[e], id, rec->events[e], rec->n_events[e]) != 0)
            return avps_fail(err, "image %s: malformed statistics", id);
        for (size_t k = 0; k < rec->n_ss[e]; k++) {
            const run_ss_count *c = &rec->ss[e][k];
            if (c->cat >= gt->n_categories)
                return avps_fail(err, "image %s: malformed statistics", id);
            t->ss_inter[e][c->cat] += c->inter;
            t->ss_pred[e][c->cat] += c->pred;
            t->ss_gt[e][c->cat] += c->gt;
        }
    }
    for (int s = 0; s < STEP_COUNT; s++)
        t->seconds[s] += rec->seconds[s], t->cpu[s] += rec->cpu[s];
    return 0;
}

/* Mean IoU over the categories that occur in the ground truth or the prediction. */
double run_miou(const run_totals *t, int end, size_t n_categories) {
    double sum = 0;
    size_t n = 0;
    for (size_t c = 0; c < n_categories; c++) {
        uint64_t uni = t->ss_pred[end][c] + t->ss_gt[end][c] - t->ss_inter[end][c];
        if (uni == 0)
            continue;
        sum += (double)t->ss_inter[end][c] / (double)uni;
        n++;
    }
    return n ? sum / (double)n : 0;
}

static void write_provenance(FILE *fp, const run_report_input *in) {
    fprintf(fp, "  \"provenance\": {\n    \"avps_version\": \"%s\",\n    \"config\": ", AVPS_VERSION);
    char *config = path_canonical(in->cfg->path);
    json_put_string(fp, config ? config : in->cfg->path);
    free(config);
    fprintf(fp, ",\n    \"config_fnv1a64\": \"%016llx\",\n    \"input_fnv1a64\": {", (unsigned long long)in->cfg->hash);
    for (size_t k = 0; k < in->n_digests; k++) {
        fprintf(fp, "%s\n      ", k ? "," : "");
        json_put_string(fp, in->digest_names[k]);
        fprintf(fp, ": \"%016llx\"", (unsigned long long)in->digests[k]);
    }
    fputs("\n    }\n  }\n", fp);
}

void run_report_put(FILE *fp, const run_report_input *in) {
    const run_config *cfg = in->cfg;
    fputs("{\n  \"ends\": {\n", fp);
    for (int e = 0; e < RUN_ENDS; e++) {
        fprintf(fp, "    \"%s\": ", run_end_names[e]);
        pq_write_report(fp, in->totals->pq[e], in->gt);
        fprintf(fp, "    %s\n", e + 1 < RUN_ENDS ? "," : "");
    }
    fputs("  },\n  \"ss_miou\": {", fp);
    for (int e = 0; e < RUN_ENDS; e++)
        fprintf(fp, "%s\"%s\": %.17g", e ? ", " : "", run_end_names[e], run_miou(in->totals, e, in->gt->n_categories));
    fprintf(fp, "},\n  \"images\": %zu,\n  \"heads\": {\"e_ups\": [", in->gt->n_annotations);
    for (size_t m = 0; m < cfg->n_members; m++) {
        fprintf(fp, "%s{\"name\": ", m ? ", " : "");
        json_put_string(fp, cfg->heads[cfg->members[m]].name);
        fprintf(fp, ", \"weight\": %.17g}", cfg->weights[m]);
    }
    fputs("], \"lwl_htc\": ", fp);
    json_put_string(fp, cfg->heads[cfg->lwl_htc].name);
    fputs("},\n  \"class_table\": ", fp);
    json_put_string(fp, "class_table.json");
    fputs(",\n", fp);
    write_provenance(fp, in);
    fputs("}\n", fp);
}

/* The paper's Table 3: PQ, SQ, RQ over all, things and stuff, one row per end. */
static void table3(FILE *fp, const run_report_input *in) {
    static const char *const rows[RUN_ENDS] = {"E-UPS", "LWL-HTC", "Fusion (ours)"};
    fprintf(fp, "| Method | PQ | SQ | RQ | PQ^Th | SQ^Th | RQ^Th | PQ^St | SQ^St | RQ^St | mIoU (SS) |\n");
    fprintf(fp, "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int e = 0; e < RUN_ENDS; e++) {
        fprintf(fp, "| %s |", rows[e]);
        for (int g = 0; g < 3; g++) {
            pq_summary s = pq_summarize(in->totals->pq[e], in->gt, g == 0 ? -1 : g == 1 ? 1 : 0);
            fprintf(fp, " %.1f | %.1f | %.1f |", 100 * s.pq, 100 * s.sq, 100 * s.rq);
        }
        fprintf(fp, " %.1f |\n", 100 * run_miou(in->totals, e, in->gt->n_categories));
    }
}

void run_table3_put(FILE *fp, const run_report_input *in) {
    char *gt = path_canonical(in->gt->path);
    fprintf(fp, "Table 3 layout (AntVisionPS, ICCV 2019 COCO workshop), on %s, %zu images\n\n",
            gt ? gt : in->gt->path, in->gt->n_annotations);
    free(gt);
    table3(fp, in);
}

void run_table3_print(FILE *fp, const run_report_input *in) {
    table3(fp, in);
}
