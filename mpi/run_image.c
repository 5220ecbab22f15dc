/* run_image.c: one image of `avps run`: the two ends' heads, each end's own panoptic
 * result, the two-level fusion (SS averaged, each thing class's instances from the end
 * the class table names, then the heuristic combiner), and for each its PQ events and
 * SS confusion counts. The record that comes out is all the root keeps of the image.
 * The SS argmax of each end and of the fusion is made once (fusion_labels_make, one
 * upsampling per end) and serves both the three fusion_run calls and the mIoU. The
 * ground-truth PNG is decoded once, before the heads, and its ids serve every sim head
 * of both ends (ensemble members included) and the SS labels of the evaluation. */
#include "run.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const run_step_names[STEP_COUNT] = {"heads", "fusion", "eval", "io"};

double run_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The calling thread's CPU seconds: unlike wall time, not inflated by other processes. */
static double thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}


/* ---- the image in hand ------------------------------------------------------------------ */

#define LABEL_NONE 0xFFFFu

typedef struct {
    const run_state *rs;
    const pan_image *im;
    const pan_annotation *gt_ann;
    char *gt_png;
    uint32_t *gt_ids;             /* the GT PNG's segment ids, w x h, decoded once */
    uint32_t w, h;
    size_t n_cat;
    head_output out[2];
    int n_run;                    /* ends whose heads ran */
    fusion_labels labels;         /* SS argmax per pixel of each end and of the fusion */
    fusion_panoptic pan[RUN_ENDS];
    uint32_t *ids;                /* scratch: segment ids of one end */
    double seconds[STEP_COUNT];   /* wall per step */
    double cpu[STEP_COUNT];       /* the thread's CPU per step */
} image_work;

static void work_release(image_work *w) {
    for (int e = 0; e < w->n_run; e++)
        head_output_release(&w->out[e]);
    fusion_labels_release(&w->labels);
    for (int e = 0; e < RUN_ENDS; e++)
        fusion_panoptic_release(&w->pan[e]);
    free(w->ids);
    free(w->gt_ids);
    free(w->gt_png);
}

/* The SS argmax of each end and of their weighted average, from one upsampling of each
 * end: they serve the three panoptic results (the heuristic combiner reads them instead
 * of upsampling again) and the mIoU. Labels are dataset category indexes, as fusion_run's. */
static int semantic_labels(image_work *w, avps_error *err) {
    const run_config *cfg = w->rs->cfg;
    fusion_end both[2] = {{&w->out[0], cfg->ss_weights[0]}, {&w->out[1], cfg->ss_weights[1]}};
    fusion_input in = {w->im->id, w->h, w->w, both, 2, NULL, w->rs->gt->categories, w->rs->gt->n_categories, NULL};
    return fusion_labels_make(&in, &w->labels, err) == 0 ? 0 : avps_prefix(err, "SS argmax");
}

/* End `which`'s panoptic result through fusion/'s one entry point: an end alone is
 * fusion_run with that end only; END_FUSION both ends, the SS weighted and each thing
 * class's instances from the end the class table names. */
static int panoptic_of(image_work *w, int which, avps_error *err) {
    const run_state *rs = w->rs;
    const run_config *cfg = rs->cfg;
    fusion_params p;
    fusion_params_default(&p);
    p.combiner = cfg->combiner_kind;
    p.heuristic = cfg->combine;
    if (which != END_FUSION) { /* one end: its own threshold is end 0's */
        p.heuristic.confidence_thr[0] = cfg->combine.confidence_thr[which];
        fusion_end one = {&w->out[which], 1};
        fusion_input in = {w->im->id,           w->h, w->w, &one, 1, NULL, rs->gt->categories, rs->gt->n_categories,
                           w->labels.end[which]};
        return fusion_run(&p, &in, &w->pan[which], err) == 0 ? 0 : avps_prefix(err, "%s", run_end_names[which]);
    }
    fusion_end both[2] = {{&w->out[0], cfg->ss_weights[0]}, {&w->out[1], cfg->ss_weights[1]}};
    fusion_input in = {w->im->id,           w->h, w->w, both, 2, rs->end_of_category, rs->gt->categories,
                       rs->gt->n_categories, w->labels.fused};
    return fusion_run(&p, &in, &w->pan[END_FUSION], err) == 0 ? 0 : avps_prefix(err, "fusion");
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* The GT PNG's segment ids, once per image: the heads and the evaluation share them. */
static int gt_decode(image_work *w, avps_error *err) {
    png_reader *r = png_reader_open_sized(w->gt_png, w->w, w->h, err);
    if (!r)
        return -1;
    int rc = 0;
    if (png_reader_width(r) != w->w || png_reader_height(r) != w->h)
        rc = avps_fail(err, "%s: image %s: the PNG is %ux%u, the JSON says %ux%u", w->gt_png, w->im->id,
                       png_reader_width(r), png_reader_height(r), w->w, w->h);
    uint8_t *rgb = malloc((size_t)w->w * 3 + 1);
    w->gt_ids = malloc((size_t)w->w * w->h * sizeof *w->gt_ids + 1);
    if (rc == 0 && (!rgb || !w->gt_ids))
        rc = avps_fail(err, "out of memory");
    for (uint32_t y = 0; rc == 0 && y < w->h; y++) {
        if ((rc = png_reader_read_row(r, rgb, err)) != 0)
            break;
        uint32_t *row = w->gt_ids + (size_t)y * w->w;
        for (uint32_t x = 0; x < w->w; x++)
            row[x] = rgb_to_id(rgb + 3 * x);
    }
    free(rgb);
    png_reader_free(r);
    return rc;
}

/* The ground truth's category index per pixel (LABEL_NONE for VOID and unknown ids). */
static void gt_labels(const image_work *w, uint16_t *labels) {
    uint32_t last_id = 0;
    uint16_t last_label = LABEL_NONE;
    for (size_t p = 0, n = (size_t)w->w * w->h; p < n; p++) {
        uint32_t id = w->gt_ids[p];
        if (id != last_id) { /* segments are few and runs long: a scan on change */
            last_id = id;
            last_label = LABEL_NONE;
            for (size_t s = 0; id && s < w->gt_ann->n_segments; s++)
                if (w->gt_ann->segments[s].id == id) {
                    int c = pan_dataset_category_index(w->rs->gt, w->gt_ann->segments[s].category_id);
                    last_label = c < 0 ? LABEL_NONE : (uint16_t)c;
                    break;
                }
        }
        labels[p] = last_label;
    }
}

/* Confusion counts of one end's SS against the ground truth, categories that occur only. */
static int ss_counts(const image_work *w, const uint16_t *gt, const uint32_t *pred, job_blob *counts, avps_error *err) {
    size_t n = w->n_cat, npix = (size_t)w->w * w->h;
    uint64_t *c = calloc(3 * n + 1, sizeof *c);
    if (!c)
        return avps_fail(err, "out of memory");
    for (size_t p = 0; p < npix; p++) {
        if (gt[p] == LABEL_NONE)
            continue; /* VOID is ignored, as semantic segmentation benchmarks do */
        c[3 * gt[p] + 2]++;
        if (pred[p] != FUSION_LABEL_NONE) {
            c[3 * pred[p] + 1]++;
            if (pred[p] == gt[p])
                c[3 * gt[p]]++;
        }
    }
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++)
        if (c[3 * k + 1] || c[3 * k + 2]) {
            run_ss_count s = {(uint32_t)k, 0, c[3 * k], c[3 * k + 1], c[3 * k + 2]};
            if (job_blob_append(counts, &s, sizeof s) != 0)
                rc = avps_fail(err, "out of memory");
        }
    free(c);
    return rc;
}

static int pq_events_of(image_work *w, int thread, int end, pq_events *ev, avps_error *err) {
    const fusion_panoptic *pan = &w->pan[end];
    fusion_panoptic_paint(pan, w->ids);
    pan_annotation pred = {w->im->id, w->im->file_name, pan->n_segments, pan->segments};
    char label[64];
    snprintf(label, sizeof label, "avps run (%s)", run_end_names[end]);
    pq_image_input in = {w->rs->gt, label, w->gt_ann, &pred, w->gt_png, NULL, w->im, w->ids};
    return pq_image_eval(w->rs->scratch[thread], &in, ev, err);
}

/* ---- outputs --------------------------------------------------------------------------- */

static int write_png(const image_work *w, const char *dir, int end, avps_error *err) {
    char *name = panoptic_png_name(w->im->file_name);
    char *path = name ? path_join(dir, name) : NULL;
    int rc = path ? 0 : avps_fail(err, "out of memory");
    if (rc == 0) {
        fusion_panoptic_paint(&w->pan[end], w->ids);
        rc = png_write_ids(path, w->w, w->h, w->ids, err);
    }
    free(name);
    free(path);
    return rc;
}

typedef struct {
    pq_events ev[RUN_ENDS];
    job_blob ss[RUN_ENDS];
} image_stats;

static int append_record(const image_work *w, const image_stats *st, job_blob *out, avps_error *err) {
    uint32_t head[2] = {0x52535641u /* "AVSR" */, RUN_ENDS};
    int bad = job_blob_append(out, head, sizeof head);
    for (int e = 0; e < RUN_ENDS; e++) {
        uint64_t n[3] = {st->ev[e].n, st->ss[e].len / sizeof(run_ss_count), w->pan[e].n_segments};
        bad = bad || job_blob_append(out, n, sizeof n);
    }
    for (int e = 0; e < RUN_ENDS; e++)
        bad = bad || job_blob_append(out, st->ev[e].items, st->ev[e].n * sizeof(pq_event)) ||
              job_blob_append(out, st->ss[e].data, st->ss[e].len) ||
              job_blob_append(out, w->pan[e].segments, w->pan[e].n_segments * sizeof(pan_segment));
    bad = bad || job_blob_append(out, w->seconds, sizeof w->seconds) || job_blob_append(out, w->cpu, sizeof w->cpu);
    return bad ? avps_fail(err, "out of memory") : 0;
}

int run_record_parse(const uint8_t *data, size_t len, run_record *rec) {
    memset(rec, 0, sizeof *rec);
    uint32_t head[2];
    if (len < sizeof head)
        return -1;
    memcpy(head, data, sizeof head);
    if (head[0] != 0x52535641u || head[1] < 1 || head[1] > RUN_ENDS)
        return -1;
    rec->n_ends = head[1];
    size_t off = sizeof head;
    uint64_t n[RUN_ENDS][3];
    if (len - off < rec->n_ends * sizeof n[0])
        return -1;
    memcpy(n, data + off, rec->n_ends * sizeof n[0]);
    off += rec->n_ends * sizeof n[0];
    for (uint32_t e = 0; e < rec->n_ends; e++) {
        size_t sizes[3] = {sizeof(pq_event), sizeof(run_ss_count), sizeof(pan_segment)};
        for (int k = 0; k < 3; k++)
            if (n[e][k] > (len - off) / sizes[k])
                return -1;
        rec->events[e] = (const pq_event *)(data + off), rec->n_events[e] = n[e][0];
        off += n[e][0] * sizes[0];
        rec->ss[e] = (const run_ss_count *)(data + off), rec->n_ss[e] = n[e][1];
        off += n[e][1] * sizes[1];
        rec->segments[e] = (const pan_segment *)(data + off), rec->n_segments[e] = n[e][2];
        off += n[e][2] * sizes[2];
    }
    if (len - off != sizeof rec->seconds + sizeof rec->cpu)
        return -1;
    memcpy(rec->seconds, data + off, sizeof rec->seconds);
    memcpy(rec->cpu, data + off + sizeof rec->seconds, sizeof rec->cpu);
    return 0;
}

/* ---- the stages ------------------------------------------------------------------------ */

static int run_heads(image_work *w, avps_error *err) {
    head_input in = {w->im, w->gt_ann, w->gt_png, w->gt_ids};
    for (int e = 0; e < 2; e++) {
        if (head_run(w->rs->ends[e], &in, &w->out[e], err) != 0)
            return -1;
        w->n_run = e + 1;
        if (w->out[e].width != w->w || w->out[e].height != w->h)
            return avps_fail(err, "head %s, image %s: output is %ux%u, the image %ux%u", head_name(w->rs->ends[e]),
                             w->im->id, w->out[e].width, w->out[e].height, w->w, w->h);
    }
    return 0;
}

static int evaluate(image_work *w, int thread, image_stats *st, avps_error *err) {
    uint16_t *gt = malloc((size_t)w->w * w->h * sizeof *gt + 1);
    int rc = gt ? 0 : avps_fail(err, "out of memory");
    if (rc == 0)
        gt_labels(w, gt);
    for (int e = 0; rc == 0 && e < RUN_ENDS; e++)
        rc = pq_events_of(w, thread, e, &st->ev[e], err) || ss_counts(w, gt, e == END_FUSION ? w->labels.fused : w->labels.end[e], &st->ss[e], err) ? -1 : 0;
    free(gt);
    return rc;
}

static int write_outputs(image_work *w, avps_error *err) {
    const run_state *rs = w->rs;
    for (int e = 0; e < 2; e++)
        if (rs->end_png_dir[e] && write_png(w, rs->end_png_dir[e], e, err) != 0)
            return -1;
    return write_png(w, rs->png_dir, END_FUSION, err);
}

/* Ends step `s`, begun at the wall and CPU times in *t and *c, and begins the next. */
static void step_done(image_work *w, int s, double *t, double *c) {
    double t1 = run_now(), c1 = thread_cpu_now();
    w->seconds[s] = t1 - *t, w->cpu[s] = c1 - *c;
    *t = t1, *c = c1;
}

static int image_stages(image_work *w, int thread, image_stats *st, avps_error *err) {
    double t = run_now(), c = thread_cpu_now();
    if (gt_decode(w, err) != 0 || run_heads(w, err) != 0)
        return -1;
    step_done(w, STEP_HEADS, &t, &c);
    if (semantic_labels(w, err) != 0)
        return -1;
    for (int e = 0; e < RUN_ENDS; e++)
        if (panoptic_of(w, e, err) != 0 ||
            fusion_panoptic_color_ids(&w->pan[e], w->rs->gt->categories, w->rs->gt->n_categories, w->im->id, err) != 0)
            return -1;
    step_done(w, STEP_FUSION, &t, &c);
    if (evaluate(w, thread, st, err) != 0)
        return -1;
    step_done(w, STEP_EVAL, &t, &c);
    if (write_outputs(w, err) != 0)
        return -1;
    step_done(w, STEP_IO, &t, &c);
    return 0;
}

int run_image(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    run_state *rs = ctx;
    image_work w = {.rs = rs, .n_cat = rs->gt->n_categories};
    image_stats st = {0};
    w.gt_ann = &rs->gt->annotations[item];
    w.im = pan_dataset_find_image(rs->gt, w.gt_ann->image_id);
    int rc = 0;
    if (!w.im)
        rc = avps_fail(err, "%s: image %s: in \"annotations\" but not in \"images\"", rs->gt->path, w.gt_ann->image_id);
    if (rc == 0) {
        w.w = w.im->width, w.h = w.im->height;
        w.gt_png = path_join(rs->gt_dir, w.gt_ann->file_name);
        w.ids = malloc((size_t)w.w * w.h * sizeof *w.ids + 1);
        rc = w.gt_png && w.ids ? image_stages(&w, thread, &st, err) : avps_fail(err, "out of memory");
    }
    if (rc == 0)
        rc = append_record(&w, &st, out, err);
    if (rc == 0)
        rc = run_journal_put(rs, item, out, err);
    for (int e = 0; e < RUN_ENDS; e++) {
        pq_events_release(&st.ev[e]);
        free(st.ss[e].data);
    }
    work_release(&w);
    if (rc == 0 && rs->die_after > 0 && ++rs->images_done >= rs->die_after)
        _exit(137); /* the test hook: a rank killed midway, after its records are on disk */
    return rc;
}
