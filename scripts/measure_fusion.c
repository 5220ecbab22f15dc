/* measure_fusion.c: measures the two-level fusion on a synthetic world (avps synth) with
 * two simulated ends, for docs/algorithms.md: each end alone, SS averaging alone, class
 * table IS selection alone, the full fusion, each with the heuristic and the UPSNet
 * combiner, scored by the project's PQ evaluator. The class table is chosen on the
 * held-out split: per thing class, the end with the higher PQ there; classes with fewer
 * than --min-count held-out instances take the end better on PQ^Th. Single-threaded; a
 * measuring tool, not part of avps.
 *
 * usage: build/measure_fusion WORLD [--ups r101] [--htc htc_uw_dc] [--seed 1] [--min-count 10] */
#include "../eval/eval.h"
#include "../fusion/fusion.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { END_UPS, END_HTC, N_ENDS };

typedef struct {
    const char *name;
    double weight[N_ENDS]; /* SS weights */
    int is_from;           /* -1: the class table; else every thing class from this end */
    int n_ends;            /* 1: end is_from alone */
    combiner_kind combiner;
} config;

typedef struct {
    pan_dataset *ds;
    char *dir;
    head *ends[N_ENDS];
    pq_scratch *scratch;
    pq_events ev;
    avps_error err;
} world;

static void die(const char *what, const avps_error *err) {
    fprintf(stderr, "measure_fusion: %s: %s\n", what, err->msg);
    exit(1);
}

/* Evaluates one fused image into totals. */
static void eval_image(world *w, size_t a, const fusion_panoptic *pan, pq_totals *totals) {
    const pan_annotation *gt = &w->ds->annotations[a];
    uint32_t *ids = malloc((size_t)pan->h * pan->w * sizeof *ids);
    fusion_panoptic_paint(pan, ids);
    pan_annotation pred = {gt->image_id, gt->file_name, pan->n_segments, pan->segments};
    char *png = path_join(w->dir, gt->file_name);
    pq_image_input in = {w->ds, "(fusion)", gt, &pred, png, NULL, pan_dataset_find_image(w->ds, gt->image_id), ids};
    w->ev.n = 0;
    if (pq_image_eval(w->scratch, &in, &w->ev, &w->err) != 0 ||
        pq_totals_add(totals, gt->image_id, w->ev.items, w->ev.n) != 0)
        die("eval", &w->err);
    free(png);
    free(ids);
}

static void run_heads(world *w, size_t a, head_output out[N_ENDS]) {
    const pan_annotation *gt = &w->ds->annotations[a];
    char *png = path_join(w->dir, gt->file_name);
    head_input hin = {pan_dataset_find_image(w->ds, gt->image_id), gt, png, NULL};
    for (int e = 0; e < N_ENDS; e++)
        if (head_run(w->ends[e], &hin, &out[e], &w->err) != 0)
            die("head", &w->err);
    free(png);
}

static void fuse(world *w, const config *c, const int *table, head_output out[N_ENDS], size_t a,
                 fusion_panoptic *pan) {
    fusion_params p;
    fusion_params_default(&p);
    p.combiner = c->combiner;
    fusion_end ends[N_ENDS];
    int *all = malloc(w->ds->n_categories * sizeof *all);
    for (size_t k = 0; k < w->ds->n_categories; k++)
        all[k] = c->is_from;
    fusion_input in = {w->ds->annotations[a].image_id, out[0].height, out[0].width, ends, 0, NULL,
                       w->ds->categories, w->ds->n_categories, NULL};
    if (c->n_ends == 1) {
        ends[0] = (fusion_end){&out[c->is_from], 1};
        in.n_ends = 1;
    } else {
        for (int e = 0; e < N_ENDS; e++)
            ends[e] = (fusion_end){&out[e], c->weight[e]};
        in.n_ends = N_ENDS;
        in.is_end_of_category = c->is_from < 0 ? table : all;
    }
    if (fusion_run(&p, &in, pan, &w->err) != 0)
        die("fusion", &w->err);
    free(all);
}

static world world_open(const char *dir, const char *split, const config *unused, char **profiles, uint64_t seed) {
    (void)unused;
    world w = {0};
    char name[64];
    snprintf(name, sizeof name, "%s.json", split);
    char *json = path_join(dir, name);
    if (!(w.ds = pan_dataset_load(json, PAN_GROUND_TRUTH, &w.err)))
        die(json, &w.err);
    w.dir = path_without_json_suffix(json);
    free(json);
    for (int e = 0; e < N_ENDS; e++) {
        head_config hc = {profiles[e], "sim", profiles[e], NULL, seed};
        if (!(w.ends[e] = head_new(&hc, w.ds, &w.err)))
            die(profiles[e], &w.err);
    }
    w.scratch = pq_scratch_new();
    return w;
}

static void world_close(world *w) {
    for (int e = 0; e < N_ENDS; e++)
        head_free(w->ends[e]);
    pq_scratch_free(w->scratch);
    pq_events_release(&w->ev);
    free(w->dir);
    pan_dataset_free(w->ds);
}

/* The class table from each end alone on the held-out split. */
static int *choose_table(world *h, long min_count) {
    size_t n = h->ds->n_categories;
    pq_totals *t[N_ENDS] = {pq_totals_new(n), pq_totals_new(n)};
    config alone[N_ENDS] = {{"", {1, 0}, END_UPS, 1, COMBINER_HEURISTIC}, {"", {0, 1}, END_HTC, 1, COMBINER_HEURISTIC}};
    for (size_t a = 0; a < h->ds->n_annotations; a++) {
        head_output out[N_ENDS];
        run_heads(h, a, out);
        for (int e = 0; e < N_ENDS; e++) {
            fusion_panoptic pan;
            fuse(h, &alone[e], NULL, out, a, &pan);
            eval_image(h, a, &pan, t[e]);
            fusion_panoptic_release(&pan);
        }
        for (int e = 0; e < N_ENDS; e++)
            head_output_release(&out[e]);
    }
    double th[N_ENDS] = {pq_summarize(t[END_UPS], h->ds, 1).pq, pq_summarize(t[END_HTC], h->ds, 1).pq};
    int overall = th[END_HTC] > th[END_UPS] ? END_HTC : END_UPS;
    printf("held-out PQ^Th: UPS %.1f, HTC %.1f\n", 100 * th[END_UPS], 100 * th[END_HTC]);
    int *table = malloc(n * sizeof *table);
    size_t picks[N_ENDS] = {0}, fallback = 0;
    for (size_t c = 0; c < n; c++) {
        table[c] = -1;
        if (!h->ds->categories[c].isthing)
            continue;
        double pq[N_ENDS], sq, rq;
        for (int e = 0; e < N_ENDS; e++)
            pq_class_ratios(&t[e]->per_class[c], &pq[e], &sq, &rq);
        uint64_t count = t[END_UPS]->per_class[c].tp + t[END_UPS]->per_class[c].fn;
        table[c] = count < (uint64_t)min_count ? overall : pq[END_HTC] > pq[END_UPS] ? END_HTC : END_UPS;
        fallback += count < (uint64_t)min_count;
        picks[table[c]]++;
    }
    printf("class table (held-out, %zu images): %zu thing classes from UPS, %zu from HTC, %zu by fallback to %s\n",
           h->ds->n_annotations, picks[END_UPS], picks[END_HTC], fallback, overall == END_HTC ? "HTC" : "UPS");
    for (int e = 0; e < N_ENDS; e++)
        pq_totals_free(t[e]);
    return table;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: measure_fusion WORLD [--ups P] [--htc P] [--seed S] [--min-count N]\n");
        return 2;
    }
    char *profiles[N_ENDS] = {"r101", "htc_uw_dc"};
    uint64_t seed = 1;
    long min_count = 10;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ups") == 0)
            profiles[END_UPS] = argv[i + 1];
        else if (strcmp(argv[i], "--htc") == 0)
            profiles[END_HTC] = argv[i + 1];
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--min-count") == 0)
            min_count = strtol(argv[i + 1], NULL, 10);
    }
    world held = world_open(argv[1], "heldout", NULL, profiles, seed);
    int *table = choose_table(&held, min_count);
    world_close(&held);

    static const config configs[] = {
        {"UPS alone", {1, 0}, END_UPS, 1, COMBINER_HEURISTIC},
        {"HTC alone", {0, 1}, END_HTC, 1, COMBINER_HEURISTIC},
        {"SS average, IS from UPS", {1, 1}, END_UPS, 2, COMBINER_HEURISTIC},
        {"SS average, IS from HTC", {1, 1}, END_HTC, 2, COMBINER_HEURISTIC},
        {"SS from UPS, IS by class table", {1, 0}, -1, 2, COMBINER_HEURISTIC},
        {"full fusion (SS average, IS by table)", {1, 1}, -1, 2, COMBINER_HEURISTIC},
        {"UPS alone", {1, 0}, END_UPS, 1, COMBINER_UPSNET},
        {"HTC alone", {0, 1}, END_HTC, 1, COMBINER_UPSNET},
        {"SS average, IS from UPS", {1, 1}, END_UPS, 2, COMBINER_UPSNET},
        {"SS average, IS from HTC", {1, 1}, END_HTC, 2, COMBINER_UPSNET},
        {"SS from UPS, IS by class table", {1, 0}, -1, 2, COMBINER_UPSNET},
        {"full fusion (SS average, IS by table)", {1, 1}, -1, 2, COMBINER_UPSNET},
    };
    enum { N_CONFIGS = sizeof configs / sizeof *configs };
    world val = world_open(argv[1], "val", NULL, profiles, seed);
    pq_totals *totals[N_CONFIGS];
    double seconds[N_CONFIGS] = {0};
    for (int k = 0; k < N_CONFIGS; k++)
        totals[k] = pq_totals_new(val.ds->n_categories);
    for (size_t a = 0; a < val.ds->n_annotations; a++) {
        head_output out[N_ENDS];
        run_heads(&val, a, out);
        for (int k = 0; k < N_CONFIGS; k++) {
            fusion_panoptic pan;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            fuse(&val, &configs[k], table, out, a, &pan);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            seconds[k] += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            eval_image(&val, a, &pan, totals[k]);
            fusion_panoptic_release(&pan);
        }
        for (int e = 0; e < N_ENDS; e++)
            head_output_release(&out[e]);
    }
    printf("evaluation: %zu images; ends UPS = %s, HTC = %s; seed %llu\n", val.ds->n_annotations, profiles[END_UPS],
           profiles[END_HTC], (unsigned long long)seed);
    printf("| combiner | configuration | PQ | SQ | RQ | PQ^Th | PQ^St | ms/image |\n|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < N_CONFIGS; k++) {
        pq_summary all = pq_summarize(totals[k], val.ds, -1), th = pq_summarize(totals[k], val.ds, 1),
                   st = pq_summarize(totals[k], val.ds, 0);
        printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", combiner_kind_name(configs[k].combiner),
               configs[k].name, 100 * all.pq, 100 * all.sq, 100 * all.rq, 100 * th.pq, 100 * st.pq,
               1000 * seconds[k] / (double)val.ds->n_annotations);
        pq_totals_free(totals[k]);
    }
    world_close(&val);
    free(table);
    return 0;
}
