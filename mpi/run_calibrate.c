/* run_calibrate.c: the class table of `avps run` from its held-out pass. Each end's
 * per-class PQ on the held-out split (PQ^Th per thing class, from the same records as the
 * evaluation) and its number of held-out instances go into fusion/'s class_table, whose
 * rules pick the end per class (class_table_choose). Per-class mask AP, the default of
 * `avps calibrate`, is not computed here yet (docs/config.md). */
#include "run.h"

#include <stdlib.h>
#include <string.h>

int run_class_table_from_totals(const run_totals *t, const pan_dataset *heldout, const run_config *cfg,
                                class_table *table, avps_error *err) {
    const char *names[2] = {run_end_names[END_E_UPS], run_end_names[END_LWL_HTC]};
    size_t n_things = 0;
    for (size_t c = 0; c < heldout->n_categories; c++)
        n_things += heldout->categories[c].isthing != 0;
    if (class_table_init(table, "pq_th", names, 2, n_things, err) != 0)
        return -1;
    table->min_instances = (uint64_t)cfg->min_instances;
    size_t k = 0;
    for (size_t c = 0; c < heldout->n_categories; c++) {
        if (!heldout->categories[c].isthing)
            continue;
        table->category_id[k] = heldout->categories[c].id;
        for (int e = 0; e < 2; e++) {
            const pq_class_stat *s = &t->pq[e]->per_class[c];
            double pq, sq, rq;
            pq_class_ratios(s, &pq, &sq, &rq);
            /* a class neither end saw nor predicted has no score: it falls back */
            if (s->tp + s->fp + s->fn > 0)
                table->score[k * 2 + (size_t)e] = pq;
            if (e == 0)
                table->n_heldout[k] = s->tp + s->fn;
        }
        k++;
    }
    return class_table_choose(table, err);
}
