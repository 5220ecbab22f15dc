/* pq_report.c: panopticapi's PQ sums and averages, its printed table, our JSON report
 * and the warnings about ground truth that panopticapi accepts silently. */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

pq_totals *pq_totals_new(size_t n_categories) {
    pq_totals *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_categories = n_categories;
    t->per_class = calloc(n_categories ? n_categories : 1, sizeof *t->per_class);
    if (!t->per_class) {
        free(t);
        return NULL;
    }
    return t;
}

void pq_totals_free(pq_totals *t) {
    if (!t)
        return;
    for (int k = 0; k < 3; k++)
        free(t->note_first_image[k]);
    free(t->per_class);
    free(t);
}

static int note_add(pq_totals *t, int k, const char *image_id, uint32_t segment_id) {
    if (t->note_count[k]++ == 0) {
        t->note_first_image[k] = strdup(image_id);
        t->note_first_segment[k] = segment_id;
        if (!t->note_first_image[k])
            return -1;
    }
    return 0;
}

int pq_totals_add(pq_totals *t, const char *image_id, const pq_event *ev, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const pq_event *e = &ev[i];
        if (e->kind >= PQ_NOTE_AREA) {
            if (e->kind > PQ_NOTE_GT_JSON_ONLY || note_add(t, (int)(e->kind - PQ_NOTE_AREA), image_id, e->segment_id))
                return -1;
            continue;
        }
        if (e->cat >= t->n_categories)
            return -1;
        pq_class_stat *c = &t->per_class[e->cat];
        if (e->kind == PQ_TP) {
            c->tp++;
            c->iou += e->iou;
        } else if (e->kind == PQ_FP) {
            c->fp++;
        } else {
            c->fn++;
        }
    }
    return 0;
}

/* The arithmetic of panopticapi's pq_average, operation for operation. */
void pq_class_ratios(const pq_class_stat *c, double *pq, double *sq, double *rq) {
    double denom = (double)c->tp + 0.5 * (double)c->fp + 0.5 * (double)c->fn;
    if (c->tp + c->fp + c->fn == 0) {
        *pq = *sq = *rq = 0.0;
        return;
    }
    *pq = c->iou / denom;
    *sq = c->tp != 0 ? c->iou / (double)c->tp : 0.0;
    *rq = (double)c->tp / denom;
}

pq_summary pq_summarize(const pq_totals *t, const pan_dataset *gt, int isthing) {
    pq_summary s = {0, 0, 0, 0};
    for (size_t i = 0; i < t->n_categories; i++) {
        const pq_class_stat *c = &t->per_class[i];
        if (isthing >= 0 && (gt->categories[i].isthing == 1) != isthing)
            continue;
        if (c->tp + c->fp + c->fn == 0)
            continue;
        double pq, sq, rq;
        pq_class_ratios(c, &pq, &sq, &rq);
        s.n++;
        s.pq += pq;
        s.sq += sq;
        s.rq += rq;
    }
    if (s.n > 0) { /* panopticapi divides by zero here; we report 0 with n = 0 */
        s.pq /= s.n;
        s.sq /= s.n;
        s.rq /= s.n;
    }
    return s;
}

static const char *const group_names[3] = {"All", "Things", "Stuff"};
static const int group_isthing[3] = {-1, 1, 0};

void pq_print_table(FILE *fp, const pq_totals *t, const pan_dataset *gt) {
    fprintf(fp, "%-10s| %5s  %5s  %5s %5s\n", "", "PQ", "SQ", "RQ", "N");
    fprintf(fp, "--------------------------------------\n");
    for (int k = 0; k < 3; k++) {
        pq_summary s = pq_summarize(t, gt, group_isthing[k]);
        fprintf(fp, "%-10s| %5.1f  %5.1f  %5.1f %5d\n", group_names[k], 100 * s.pq, 100 * s.sq, 100 * s.rq, s.n);
    }
}

void pq_print_notes(FILE *fp, const pq_totals *t, const pan_dataset *gt) {
    static const char *const what[3] = {
        ("have a JSON area that differs from their pixel count in the PNG; the JSON area is used, as "
         "panopticapi does (this is what lets PQ exceed 100 in other tools)"),
        "are in the PNG but not in segments_info; their pixels are ignored, as panopticapi does",
        "are in segments_info but not in the PNG; they count as false negatives, as panopticapi does",
    };
    for (int k = 0; k < 3; k++)
        if (t->note_count[k])
            fprintf(fp, "avps: warning: %s: %llu ground-truth segments %s (first: image %s, segment %u)\n", gt->path,
                    (unsigned long long)t->note_count[k], what[k], t->note_first_image[k], t->note_first_segment[k]);
}

static void write_report(FILE *fp, const pq_totals *t, const pan_dataset *gt) {
    fputs("{\n", fp);
    for (int k = 0; k < 3; k++) {
        pq_summary s = pq_summarize(t, gt, group_isthing[k]);
        fprintf(fp, "  ");
        json_put_string(fp, group_names[k]);
        fprintf(fp, ": {\"pq\": %.17g, \"sq\": %.17g, \"rq\": %.17g, \"n\": %d},\n", s.pq, s.sq, s.rq, s.n);
    }
    fputs("  \"per_class\": {", fp);
    for (size_t i = 0; i < t->n_categories; i++) {
        const pq_class_stat *c = &t->per_class[i];
        double pq, sq, rq;
        pq_class_ratios(c, &pq, &sq, &rq);
        fprintf(fp, "%s\n    \"%d\": {\"pq\": %.17g, \"sq\": %.17g, \"rq\": %.17g, \"tp\": %llu, \"fp\": %llu, "
                    "\"fn\": %llu, \"iou\": %.17g}",
                i ? "," : "", gt->categories[i].id, pq, sq, rq, (unsigned long long)c->tp,
                (unsigned long long)c->fp, (unsigned long long)c->fn, c->iou);
    }
    fputs("\n  }\n}\n", fp);
}

int pq_write_json(const char *path, const pq_totals *t, const pan_dataset *gt, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    write_report(af.fp, t, gt);
    return file_atomic_commit(&af, err);
}

void pq_write_report(FILE *fp, const pq_totals *t, const pan_dataset *gt) { write_report(fp, t, gt); }
