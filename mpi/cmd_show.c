/* cmd_show.c: `avps show`, pictures of results for people: each chosen image in a row,
 * its photo (or, for the synthetic world, a neutral background labelled as such) and
 * then every result column laid over it (viz/): panoptic outputs, semantic label maps or
 * instance results, and the ground truth last. With the ends and the fusion as columns
 * this is the paper's Figure 4; --top N picks the images where the last column gains
 * the most PQ over the best other panoptic column (per-image PQ, eval/), computed over
 * ranks and threads like `avps eval pq`. */
#include "commands.h"

#include "../eval/eval.h"
#include "../model/model.h"
#include "../viz/viz.h"
#include "cli.h"
#include "progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char show_usage[] =
    "usage: avps show --gt-json F [--gt-dir D] --column NAME=SPEC [--column NAME=SPEC ...] --out PNG\n"
    "                 [--images ID,ID,... | --top N] [--photos DIR] [--no-gt] [--cell-width W]\n"
    "                 [--threads N] [--progress auto|bar|lines|none]\n"
    "  Draws each chosen image as a row: the photo (--photos DIR holds the images' file_name;\n"
    "  without it a neutral background labelled synthetic), then each column's result laid\n"
    "  over it in category colours with contours and class names, then the ground truth\n"
    "  (unless --no-gt). SPEC: a COCO panoptic JSON (PNGs beside it, without .json),\n"
    "  sem:DIR (8-bit label-map PNGs, value = category id) or inst:RESULTS.json (COCO\n"
    "  results, masks of score >= 0.5). --top N: the N images where the last column's PQ\n"
    "  exceeds most that of the best other panoptic column (Figure 4: --column E-UPS=...\n"
    "  --column LWL-HTC=... --column fusion=...). Default: the first image.\n";

#define MAX_COLUMNS 8
enum { COL_PANOPTIC, COL_SEMANTIC, COL_INSTANCES };

typedef struct {
    const char *name;
    int kind;
    const char *path; /* JSON or folder */
    char *dir;        /* panoptic: the PNG folder */
    pan_dataset *pan;
    inst_dataset *inst;
} show_column;

typedef struct {
    const char *gt_json, *gt_dir, *out, *images, *photos;
    long top, cell_width, threads;
    int no_gt;
    progress_mode progress;
    const char *column_text[MAX_COLUMNS];
    size_t n_columns;
} show_options;

typedef struct {
    show_options *opt;
    avps_job *job;
    pan_dataset *gt;
    inst_dataset *frame; /* the ground truth's images and categories, for instance results */
    show_column col[MAX_COLUMNS];
    size_t n_col;
    pq_scratch **scratch;
} show_job;

static int parse_options(int argc, char **argv, show_options *o, avps_error *err) {
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "show", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *top = NULL, *width = NULL, *threads = NULL, *column = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--gt-dir", &o->gt_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--images", &o->images, err)) ||
            (r = cli_take(argc, argv, &i, "--photos", &o->photos, err)) ||
            (r = cli_take(argc, argv, &i, "--top", &top, err)) ||
            (r = cli_take(argc, argv, &i, "--cell-width", &width, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err)) ||
            (r = cli_take(argc, argv, &i, "--column", &column, err))) {
            if (r < 0 || (top && cli_int("--top", top, 1, 1000, &o->top, err) != 0) ||
                (width && cli_int("--cell-width", width, 16, 4096, &o->cell_width, err) != 0) ||
                (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0))
                return -1;
            if (column && o->n_columns == MAX_COLUMNS)
                return avps_fail(err, "show: at most %d --column", MAX_COLUMNS);
            if (column)
                o->column_text[o->n_columns++] = column;
            continue;
        }
        if (strcmp(argv[i], "--no-gt") == 0)
            o->no_gt = 1;
        else
            return avps_fail(err, "show: unknown argument '%s'\n%s", argv[i], show_usage);
    }
    if (!o->gt_json || !o->out || (o->n_columns == 0 && o->no_gt))
        return avps_fail(err, "show: --gt-json, --out and a --column (or the ground truth) are required\n%s",
                         show_usage);
    if (o->top && o->images)
        return avps_fail(err, "show: --images and --top exclude each other");
    return 0;
}

static int open_column(show_job *sj, show_column *c, const char *text, avps_error *err) {
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || !eq[1])
        return avps_fail(err, "show: --column '%s' is not NAME=SPEC", text);
    c->name = strndup(text, (size_t)(eq - text));
    if (!c->name)
        return avps_fail(err, "out of memory");
    const char *spec = eq + 1;
    if (strncmp(spec, "sem:", 4) == 0) {
        c->kind = COL_SEMANTIC;
        c->path = spec + 4;
        return 0;
    }
    if (strncmp(spec, "inst:", 5) == 0) {
        c->kind = COL_INSTANCES;
        c->path = spec + 5;
        if (!sj->frame && !(sj->frame = inst_frame_from_pan(sj->gt, err)))
            return -1;
        return (c->inst = inst_masks_load(c->path, sj->frame, 1, NULL, NULL, err)) ? 0 : -1;
    }
    c->kind = COL_PANOPTIC;
    c->path = spec;
    if (!(c->dir = path_without_json_suffix(spec)))
        return avps_fail(err, "out of memory");
    return (c->pan = pan_dataset_load(spec, PAN_PREDICTION, err)) ? 0 : -1;
}

/* ---- reading one image's results as segment maps ------------------------------------- */

/* One cell's picture: per pixel a segment number (0 none), per segment colour and label. */
typedef struct {
    uint32_t w, h;
    uint32_t *seg;
    size_t n;
    uint8_t (*color)[3];
    char **label;
} cell_map;

static void cell_map_release(cell_map *m) {
    for (size_t s = 0; m->label && s < m->n; s++)
        free(m->label[s]);
    free(m->label);
    free(m->color);
    free(m->seg);
    *m = (cell_map){0};
}

static int cell_map_alloc(cell_map *m, uint32_t w, uint32_t h, size_t n, avps_error *err) {
    *m = (cell_map){w, h, calloc((size_t)w * h + 1, sizeof *m->seg), n, calloc(n + 1, sizeof *m->color),
                    calloc(n + 1, sizeof *m->label)};
    if (!m->seg || !m->color || !m->label) {
        cell_map_release(m);
        return avps_fail(err, "out of memory");
    }
    return 0;
}

static const pan_category *category_of(const show_job *sj, int32_t id) {
    int k = pan_dataset_category_index(sj->gt, id);
    return k < 0 ? NULL : &sj->gt->categories[k];
}

/* A panoptic PNG and its segments_info: segment numbers are positions in segments_info. */
static int read_panoptic(const show_job *sj, const pan_dataset *ds, const char *dir, const pan_image *im,
                         cell_map *m, avps_error *err) {
    const pan_annotation *ann = pan_dataset_find_annotation(ds, im->id);
    if (!ann)
        return avps_fail(err, "%s: image %s: no annotation for this image", ds->path, im->id);
    if (cell_map_alloc(m, im->width, im->height, ann->n_segments, err) != 0)
        return -1;
    for (size_t s = 0; s < ann->n_segments; s++) {
        const pan_category *cat = category_of(sj, ann->segments[s].category_id);
        if (!cat)
            return avps_fail(err, "%s: image %s: segment %u: category %d is not in %s", ds->path, im->id,
                             ann->segments[s].id, ann->segments[s].category_id, sj->gt->path);
        viz_segment_color(cat, (uint32_t)s + 1, m->color[s]);
        if (cat->name && !(m->label[s] = strdup(cat->name)))
            return avps_fail(err, "out of memory");
    }
    char *png = path_join(dir, ann->file_name);
    png_reader *r = png ? png_reader_open_sized(png, im->width, im->height, err) : NULL;
    uint8_t *row = malloc((size_t)im->width * 3 + 1);
    int rc = png && r && row ? 0 : -1;
    if (!png || (r && !row))
        avps_fail(err, "out of memory");
    for (uint32_t y = 0; rc == 0 && y < im->height; y++) {
        rc = png_reader_read_row(r, row, err);
        for (uint32_t x = 0; rc == 0 && x < im->width; x++) {
            uint32_t id = rgb_to_id(row + 3 * x);
            for (size_t s = 0; id && s < ann->n_segments; s++)
                if (ann->segments[s].id == id) {
                    m->seg[(size_t)y * im->width + x] = (uint32_t)s + 1;
                    break;
                }
        }
    }
    png_reader_free(r);
    free(row);
    free(png);
    return rc;
}

/* An 8-bit label map: a segment per category, numbered by category index + 1. */
static int read_semantic(const show_job *sj, const char *dir, const pan_image *im, const pan_annotation *gt_ann,
                         cell_map *m, avps_error *err) {
    const pan_dataset *gt = sj->gt;
    if (cell_map_alloc(m, im->width, im->height, gt->n_categories, err) != 0)
        return -1;
    for (size_t c = 0; c < gt->n_categories; c++) {
        pan_category stuff = gt->categories[c];
        stuff.isthing = 0; /* one region per class: no jitter */
        viz_segment_color(&stuff, 0, m->color[c]);
        if (gt->categories[c].name && !(m->label[c] = strdup(gt->categories[c].name)))
            return avps_fail(err, "out of memory");
    }
    char *png = path_join(dir, gt_ann->file_name);
    png_reader *r = png ? png_reader_open_sized(png, im->width, im->height, err) : NULL;
    uint8_t *row = malloc((size_t)im->width * 3 + 1);
    int rc = png && r && row ? 0 : -1;
    if (!png || (r && !row))
        avps_fail(err, "out of memory");
    for (uint32_t y = 0; rc == 0 && y < im->height; y++) {
        rc = png_reader_read_row(r, row, err);
        for (uint32_t x = 0; rc == 0 && x < im->width; x++) {
            int k = row[3 * x] ? pan_dataset_category_index(gt, row[3 * x]) : -1;
            if (row[3 * x] && k < 0)
                rc = avps_fail(err, "%s: image %s: pixel (%u, %u): category %u is not in %s", png, im->id, x, y,
                               row[3 * x], gt->path);
            else
                m->seg[(size_t)y * im->width + x] = (uint32_t)(k + 1);
        }
    }
    png_reader_free(r);
    free(row);
    free(png);
    return rc;
}

/* Instance results of score >= 0.5, painted lowest score first so the best lie on top. */
static int read_instances(const show_job *sj, const show_column *c, const pan_image *im, cell_map *m,
                          avps_error *err) {
    const inst_dataset *ds = c->inst;
    char *end;
    long long image_id = strtoll(im->id, &end, 10);
    size_t n = 0;
    for (size_t a = 0; a < ds->n_annotations; a++)
        n += ds->annotations[a].image_id == image_id && ds->annotations[a].score >= 0.5;
    if (cell_map_alloc(m, im->width, im->height, n, err) != 0)
        return -1;
    uint8_t *mask = malloc((size_t)im->width * im->height + 1);
    if (!mask)
        return avps_fail(err, "out of memory");
    size_t k = 0;
    for (size_t a = 0; a < ds->n_annotations; a++) {
        const inst_annotation *ia = &ds->annotations[a];
        if (ia->image_id != image_id || ia->score < 0.5)
            continue;
        const pan_category *cat = category_of(sj, ia->category_id);
        if (!cat || ia->rle.h != im->height || ia->rle.w != im->width) {
            free(mask);
            return avps_fail(err, "%s: image %s: result %zu: %s", c->path, im->id, a + 1,
                             cat ? "mask size differs from the image's" : "category not in the ground truth");
        }
        viz_segment_color(cat, (uint32_t)k + 1, m->color[k]);
        char text[160];
        snprintf(text, sizeof text, "%s %.2f", cat->name ? cat->name : "?", ia->score);
        if (!(m->label[k] = strdup(text))) {
            free(mask);
            return avps_fail(err, "out of memory");
        }
        k++;
    }
    /* results are best first within an image (COCO order): paint in reverse */
    for (size_t a = ds->n_annotations, j = n; a-- > 0;) {
        const inst_annotation *ia = &ds->annotations[a];
        if (ia->image_id != image_id || ia->score < 0.5)
            continue;
        j--;
        rle_decode(&ia->rle, mask); /* row-major */
        for (size_t p = 0; p < (size_t)im->width * im->height; p++)
            if (mask[p])
                m->seg[p] = (uint32_t)j + 1;
    }
    free(mask);
    return 0;
}

/* ---- per-image PQ for --top ------------------------------------------------------------ */

static int image_pq(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    show_job *sj = ctx;
    const pan_annotation *gt_ann = &sj->gt->annotations[item];
    const pan_image *im = pan_dataset_find_image(sj->gt, gt_ann->image_id);
    char *gt_png = path_join(sj->opt->gt_dir, gt_ann->file_name);
    int rc = gt_png ? 0 : avps_fail(err, "out of memory");
    for (size_t c = 0; rc == 0 && c < sj->n_col; c++) {
        double pq = NAN;
        if (sj->col[c].kind == COL_PANOPTIC) {
            const pan_annotation *pa = pan_dataset_find_annotation(sj->col[c].pan, gt_ann->image_id);
            if (!pa)
                return avps_fail(err, "%s: image %s: no prediction for this image", sj->col[c].path, gt_ann->image_id);
            char *png = path_join(sj->col[c].dir, pa->file_name);
            pq_image_input in = {sj->gt, sj->col[c].path, gt_ann, pa, gt_png, png, im, NULL};
            pq_events ev = {0};
            pq_totals *t = pq_totals_new(sj->gt->n_categories);
            rc = png && t ? pq_image_eval(sj->scratch[thread], &in, &ev, err) : avps_fail(err, "out of memory");
            if (rc == 0 && pq_totals_add(t, gt_ann->image_id, ev.items, ev.n) == 0)
                pq = pq_summarize(t, sj->gt, -1).pq;
            pq_totals_free(t);
            pq_events_release(&ev);
            free(png);
        }
        if (rc == 0 && job_blob_append(out, &pq, sizeof pq) != 0)
            rc = avps_fail(err, "out of memory");
    }
    free(gt_png);
    return rc;
}

static int by_gain(const void *a, const void *b) {
    const double *x = a, *y = b; /* {gain, index} */
    if (x[0] != y[0])
        return x[0] < y[0] ? 1 : -1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

/* The images where the last column gains most over the best other panoptic column; the
 * images where it cannot be measured (no segment in any) come last. Root only. */
static int choose_top(show_job *sj, size_t *rows, size_t *n_rows, avps_error *err) {
    size_t n = sj->gt->n_annotations, n_pan = 0, k = sj->n_col;
    for (size_t c = 0; c < k; c++)
        n_pan += sj->col[c].kind == COL_PANOPTIC;
    if (n_pan < 2 || sj->col[k - 1].kind != COL_PANOPTIC)
        return avps_fail(err, "show: --top needs two panoptic columns or more, the last the one that gains");
    if (!(sj->scratch = calloc((size_t)sj->opt->threads, sizeof *sj->scratch)))
        return avps_fail(err, "out of memory");
    for (long t = 0; t < sj->opt->threads; t++)
        if (!(sj->scratch[t] = pq_scratch_new()))
            return avps_fail(err, "out of memory");
    job_blob *blobs = progress_map(sj->job, n, (int)sj->opt->threads, image_pq, sj, sj->opt->progress,
                                   "avps show");
    if (!blobs)
        return 1; /* not the root */
    double *gain = malloc((n + 1) * 2 * sizeof *gain);
    if (!gain) {
        job_blobs_free(blobs, n);
        return avps_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const double *pq = (const double *)blobs[i].data;
        double best = -INFINITY;
        for (size_t c = 0; c + 1 < k; c++)
            if (sj->col[c].kind == COL_PANOPTIC && pq[c] > best)
                best = pq[c];
        gain[2 * i] = isfinite(pq[k - 1] - best) ? pq[k - 1] - best : -INFINITY;
        gain[2 * i + 1] = (double)i;
    }
    job_blobs_free(blobs, n);
    qsort(gain, n, 2 * sizeof *gain, by_gain);
    *n_rows = (size_t)sj->opt->top < n ? (size_t)sj->opt->top : n;
    for (size_t r = 0; r < *n_rows; r++)
        rows[r] = (size_t)gain[2 * r + 1];
    free(gain);
    return 0;
}

/* --images: annotations by image id, in the order given. */
static int choose_listed(const show_job *sj, size_t *rows, size_t *n_rows, avps_error *err) {
    const char *p = sj->opt->images;
    *n_rows = 0;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        char id[128];
        if (len == 0 || len >= sizeof id)
            return avps_fail(err, "show: --images '%s' is not a list of image ids", sj->opt->images);
        memcpy(id, p, len);
        id[len] = 0;
        const pan_annotation *a = pan_dataset_find_annotation(sj->gt, id);
        if (!a)
            return avps_fail(err, "%s: image %s: not in the ground truth", sj->gt->path, id);
        if (*n_rows == 1000)
            return avps_fail(err, "show: at most 1000 images");
        rows[(*n_rows)++] = (size_t)(a - sj->gt->annotations);
        p += len + (p[len] == ',');
    }
    return 0;
}

/* ---- drawing --------------------------------------------------------------------------- */

#define HEADER_H 26
#define GAP 4
static const uint8_t white[3] = {255, 255, 255}, black[3] = {20, 20, 20}, neutral[3] = {150, 150, 150};

/* Nearest-neighbour scaling to the cell: segment maps must keep their numbers. */
static void scale_u32(const uint32_t *src, uint32_t w, uint32_t h, uint32_t *dst, uint32_t cw, uint32_t ch) {
    for (uint32_t y = 0; y < ch; y++)
        for (uint32_t x = 0; x < cw; x++)
            dst[(size_t)y * cw + x] = src[(size_t)(y * (uint64_t)h / ch) * w + (size_t)(x * (uint64_t)w / cw)];
}

static void scale_rgb(const uint8_t *src, uint32_t w, uint32_t h, uint8_t *dst, uint32_t cw, uint32_t ch) {
    for (uint32_t y = 0; y < ch; y++)
        for (uint32_t x = 0; x < cw; x++)
            memcpy(dst + 3 * ((size_t)y * cw + x),
                   src + 3 * ((size_t)(y * (uint64_t)h / ch) * w + (size_t)(x * (uint64_t)w / cw)), 3);
}

typedef struct {
    viz_canvas *canvas;
    viz_font *font, *small;
    uint32_t cw, ch;
    uint8_t *photo;  /* cell-sized, or NULL: the neutral background */
    uint32_t *seg;   /* cell-sized scratch */
} drawing;

static int draw_cell(drawing *d, int x, int y, const cell_map *m, avps_error *err) {
    if (d->photo)
        viz_canvas_blit(d->canvas, x, y, d->cw, d->ch, d->photo);
    else
        viz_fill_rect(d->canvas, x, y, (int)d->cw, (int)d->ch, neutral);
    if (!m)
        return 0;
    scale_u32(m->seg, m->w, m->h, d->seg, d->cw, d->ch);
    viz_layer layer = {d->cw, d->ch, d->seg, m->n, (const uint8_t(*)[3])m->color, (const char *const *)m->label};
    size_t min_area = (size_t)d->cw * d->ch / 40 + 1;
    return viz_draw_layer(d->canvas, x, y, &layer, d->photo ? 0.55 : 0.85, d->small, min_area, err);
}

static int read_column(const show_job *sj, size_t c, const pan_image *im, const pan_annotation *ann, cell_map *m,
                       avps_error *err) {
    const show_column *col = &sj->col[c];
    if (col->kind == COL_PANOPTIC)
        return read_panoptic(sj, col->pan, col->dir, im, m, err);
    if (col->kind == COL_SEMANTIC)
        return read_semantic(sj, col->path, im, ann, m, err);
    return read_instances(sj, col, im, m, err);
}

static int load_photo(const show_job *sj, const pan_image *im, drawing *d, avps_error *err) {
    free(d->photo);
    d->photo = NULL;
    if (!sj->opt->photos)
        return 0;
    char *path = path_join(sj->opt->photos, im->file_name);
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    int rc = path ? model_image_read(path, &rgb, &w, &h, err) : avps_fail(err, "out of memory");
    if (rc == 0 && (w != im->width || h != im->height))
        rc = avps_fail(err, "%s: image %s: the photo is %ux%u, the ground truth says %ux%u", path, im->id, w, h,
                       im->width, im->height);
    if (rc == 0 && !(d->photo = malloc((size_t)d->cw * d->ch * 3)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0)
        scale_rgb(rgb, w, h, d->photo, d->cw, d->ch);
    free(rgb);
    free(path);
    return rc;
}

static int draw_row(const show_job *sj, drawing *d, size_t row, size_t ann_index, avps_error *err) {
    const pan_annotation *ann = &sj->gt->annotations[ann_index];
    const pan_image *im = pan_dataset_find_image(sj->gt, ann->image_id);
    if (!im)
        return avps_fail(err, "%s: image %s: not in \"images\"", sj->gt->path, ann->image_id);
    int y = HEADER_H + (int)row * (int)(d->ch + GAP);
    if (load_photo(sj, im, d, err) != 0)
        return -1;
    cell_map m = {0};
    int rc = draw_cell(d, 0, y, NULL, err);
    char caption[200];
    snprintf(caption, sizeof caption, "image %s%s", ann->image_id, d->photo ? "" : " (synthetic)");
    viz_draw_text(d->canvas, d->small, 3, y + 2, caption, white, black);
    for (size_t c = 0; rc == 0 && c <= sj->n_col; c++) {
        int x = (int)(c + 1) * (int)(d->cw + GAP);
        if (c == sj->n_col) { /* the ground truth */
            if (sj->opt->no_gt)
                break;
            char *dir = (char *)sj->opt->gt_dir;
            rc = read_panoptic(sj, sj->gt, dir, im, &m, err);
        } else {
            rc = read_column(sj, c, im, ann, &m, err);
        }
        if (rc == 0)
            rc = draw_cell(d, x, y, &m, err);
        cell_map_release(&m);
    }
    return rc;
}

static int draw(const show_job *sj, const size_t *rows, size_t n_rows, avps_error *err) {
    const pan_image *first = pan_dataset_find_image(sj->gt, sj->gt->annotations[rows[0]].image_id);
    if (!first)
        return avps_fail(err, "%s: image %s: not in \"images\"", sj->gt->path, sj->gt->annotations[rows[0]].image_id);
    drawing d = {0};
    d.cw = sj->opt->cell_width ? (uint32_t)sj->opt->cell_width : (first->width < 320 ? first->width : 320);
    d.ch = (uint32_t)((uint64_t)first->height * d.cw / first->width);
    if (d.ch < 1)
        d.ch = 1;
    size_t n_cells = sj->n_col + 1 + !sj->opt->no_gt;
    uint32_t W = (uint32_t)(n_cells * (d.cw + GAP) - GAP), H = (uint32_t)(HEADER_H + n_rows * (d.ch + GAP) - GAP);
    d.canvas = viz_canvas_new(W, H, white);
    d.seg = malloc((size_t)d.cw * d.ch * sizeof *d.seg);
    int rc = d.canvas && d.seg ? 0 : avps_fail(err, "out of memory or a picture over 32768 pixels a side");
    if (rc == 0 && (!(d.font = viz_font_open(NULL, 15, err)) || !(d.small = viz_font_open(NULL, 11, err))))
        rc = -1;
    for (size_t c = 0; rc == 0 && c < n_cells; c++) {
        const char *title = c == 0 ? "image" : c <= sj->n_col ? sj->col[c - 1].name : "ground truth";
        int tw = viz_text_width(d.font, title);
        viz_draw_text(d.canvas, d.font, (int)(c * (d.cw + GAP)) + ((int)d.cw - tw) / 2, 4, title, black, NULL);
    }
    for (size_t r = 0; rc == 0 && r < n_rows; r++)
        rc = draw_row(sj, &d, r, rows[r], err);
    if (rc == 0)
        rc = viz_canvas_write_png(d.canvas, sj->opt->out, err);
    viz_font_free(d.font);
    viz_font_free(d.small);
    viz_canvas_free(d.canvas);
    free(d.seg);
    free(d.photo);
    return rc;
}

static int run(show_job *sj, avps_error *err) {
    show_options *o = sj->opt;
    if (!(sj->gt = pan_dataset_load(o->gt_json, PAN_GROUND_TRUTH, err)))
        return -1;
    if (sj->gt->n_annotations == 0)
        return avps_fail(err, "%s: no annotations to draw", o->gt_json);
    for (size_t c = 0; c < o->n_columns; c++, sj->n_col++)
        if (open_column(sj, &sj->col[c], o->column_text[c], err) != 0)
            return -1;
    size_t *rows = malloc(1001 * sizeof *rows), n_rows = 1;
    if (!rows)
        return avps_fail(err, "out of memory");
    rows[0] = 0;
    int rc = o->top ? choose_top(sj, rows, &n_rows, err) : o->images ? choose_listed(sj, rows, &n_rows, err) : 0;
    if (rc == 0 && job_is_root(sj->job))
        rc = n_rows ? draw(sj, rows, n_rows, err) : avps_fail(err, "show: no image to draw");
    free(rows);
    return rc < 0 ? -1 : 0;
}

int cmd_show(avps_job *job, int argc, char **argv) {
    show_options opt = {0};
    show_job sj = {.opt = &opt, .job = job};
    char *gt_dir = NULL;
    avps_error err;
    int rc = parse_options(argc, argv, &opt, &err);
    if (rc == 0) {
        if (!opt.threads)
            opt.threads = job_cpu_count();
        if (!opt.gt_dir && !(opt.gt_dir = gt_dir = path_without_json_suffix(opt.gt_json)))
            rc = avps_fail(&err, "out of memory");
    }
    if (rc == 0)
        rc = run(&sj, &err);
    for (size_t c = 0; c < sj.n_col; c++) {
        free((char *)sj.col[c].name);
        free(sj.col[c].dir);
        pan_dataset_free(sj.col[c].pan);
        inst_dataset_free(sj.col[c].inst);
    }
    if (sj.col[sj.n_col].name) { /* a column that failed to open */
        free((char *)sj.col[sj.n_col].name);
        free(sj.col[sj.n_col].dir);
        pan_dataset_free(sj.col[sj.n_col].pan);
    }
    if (sj.scratch)
        for (long t = 0; t < opt.threads; t++)
            pq_scratch_free(sj.scratch[t]);
    free(sj.scratch);
    inst_dataset_free(sj.frame);
    pan_dataset_free(sj.gt);
    free(gt_dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
