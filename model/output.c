/* output.c: what every head gives, shared by all backends: the SS grid's geometry and
 * its upsampling to image rows, instance masks at image size, and releasing an output. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ss_geometry ss_geometry_stretch(uint32_t gw, uint32_t gh, uint32_t w, uint32_t h) {
    return (ss_geometry){(double)gw / w, (double)gh / h, 0, 0, gw, gh};
}

/* Grid coordinate of image coordinate x, clamped as torch's bilinear interpolation does. */
static void grid_coord(double x, double scale, double offset, uint32_t valid, uint32_t *i0, uint32_t *i1,
                       float *frac) {
    double s = (x + 0.5) * scale + offset - 0.5;
    if (s < 0)
        s = 0;
    if (s > valid - 1)
        s = valid - 1;
    *i0 = (uint32_t)s;
    *i1 = *i0 + 1 < valid ? *i0 + 1 : *i0;
    *frac = (float)(s - *i0);
}

static void sample_labels(const ss_map *ss, uint32_t y, uint32_t width, float *out) {
    const ss_geometry *g = &ss->geo;
    double v = floor((y + 0.5) * g->scale_y + g->offset_y);
    uint32_t row = v < 0 ? 0 : v >= g->valid_h ? g->valid_h - 1 : (uint32_t)v;
    memset(out, 0, sizeof(float) * ss->channels * width);
    for (uint32_t x = 0; x < width; x++) {
        double u = floor((x + 0.5) * g->scale_x + g->offset_x);
        uint32_t col = u < 0 ? 0 : u >= g->valid_w ? g->valid_w - 1 : (uint32_t)u;
        uint16_t label = ss->labels[(size_t)row * ss->w + col];
        if (label < ss->channels)
            out[(size_t)label * width + x] = 1.0f;
    }
}

struct ss_sampler {
    const ss_map *ss;
    uint32_t width, gw, gh;  /* gw x gh: the valid part of the grid */
    float *grid;             /* channels x gh x gw probabilities */
    float *column;           /* channels x gw: the grid interpolated to one image row */
    uint32_t *col0, *col1;   /* per image column: the two grid columns it reads */
    float *frac;             /* and the weight of the second */
    /* the row ss_sampler_at_row selected, and its cells' bounds (channels x gw each) */
    uint32_t v0, v1, bounds_v0;
    float fv;
    float *lo, *hi;
};

/* Logits become probabilities at the grid's resolution, before upsampling: a softmax
 * per grid cell costs a fraction of one per image pixel (docs/algorithms.md). */
static void grid_softmax(float *grid, uint32_t channels, size_t cells) {
    for (size_t i = 0; i < cells; i++) {
        float top = -INFINITY, sum = 0;
        for (uint32_t c = 0; c < channels; c++)
            top = grid[c * cells + i] > top ? grid[c * cells + i] : top; /* fmaxf, inlined */
        for (uint32_t c = 0; c < channels; c++)
            sum += grid[c * cells + i] = expf(grid[c * cells + i] - top);
        for (uint32_t c = 0; c < channels; c++)
            grid[c * cells + i] /= sum;
    }
}

static void grid_widen(ss_sampler *s) {
    const ss_map *ss = s->ss;
    size_t cells = (size_t)s->gw * s->gh;
    for (uint32_t c = 0; c < ss->channels; c++)
        for (uint32_t v = 0; v < s->gh; v++) {
            const uint16_t *src = ss->scores + ((size_t)c * ss->h + v) * ss->w;
            float *dst = s->grid + c * cells + (size_t)v * s->gw;
            for (uint32_t u = 0; u < s->gw; u++)
                dst[u] = float_from_half(src[u]);
        }
    if (ss->kind == SS_LOGITS)
        grid_softmax(s->grid, ss->channels, cells);
}

ss_sampler *ss_sampler_new(const ss_map *ss, uint32_t width, avps_error *err) {
    ss_sampler *s = calloc(1, sizeof *s);
    int labels = ss->kind == SS_LABELS;
    if (s) {
        s->ss = ss, s->width = width, s->gw = ss->geo.valid_w, s->gh = ss->geo.valid_h;
        s->bounds_v0 = UINT32_MAX;
        s->col0 = malloc(sizeof(uint32_t) * (width + 1));
        s->col1 = malloc(sizeof(uint32_t) * (width + 1));
        s->frac = malloc(sizeof(float) * (width + 1));
        s->grid = labels ? NULL : malloc(sizeof(float) * ss->channels * s->gw * s->gh + 1);
        s->column = labels ? NULL : malloc(sizeof(float) * ss->channels * s->gw + 1);
    }
    if (!s || !s->col0 || !s->col1 || !s->frac || (!labels && (!s->grid || !s->column))) {
        ss_sampler_free(s);
        avps_fail(err, "out of memory for a semantic sampler");
        return NULL;
    }
    for (uint32_t x = 0; x < width; x++)
        grid_coord(x, ss->geo.scale_x, ss->geo.offset_x, s->gw, &s->col0[x], &s->col1[x], &s->frac[x]);
    if (!labels)
        grid_widen(s);
    return s;
}

void ss_sampler_free(ss_sampler *s) {
    if (!s)
        return;
    free(s->col0);
    free(s->col1);
    free(s->frac);
    free(s->grid);
    free(s->column);
    free(s->lo);
    free(s->hi);
    free(s);
}

void ss_sampler_row(ss_sampler *s, uint32_t y, float *out) {
    const ss_map *ss = s->ss;
    if (ss->kind == SS_LABELS) {
        sample_labels(ss, y, s->width, out);
        return;
    }
    uint32_t v0, v1;
    float fv;
    grid_coord(y, ss->geo.scale_y, ss->geo.offset_y, s->gh, &v0, &v1, &fv);
    size_t cells = (size_t)s->gw * s->gh;
    for (uint32_t c = 0; c < ss->channels; c++) {
        const float *top = s->grid + c * cells + (size_t)v0 * s->gw, *bottom = s->grid + c * cells + (size_t)v1 * s->gw;
        float *col = s->column + (size_t)c * s->gw;
        for (uint32_t u = 0; u < s->gw; u++)
            col[u] = top[u] * (1 - fv) + bottom[u] * fv;
        float *o = out + (size_t)c * s->width;
        for (uint32_t x = 0; x < s->width; x++)
            o[x] = col[s->col0[x]] * (1 - s->frac[x]) + col[s->col1[x]] * s->frac[x];
    }
}

uint32_t ss_sampler_cells(const ss_sampler *s) {
    return s->gw;
}

uint32_t ss_sampler_cell(const ss_sampler *s, uint32_t x) {
    return s->col0[x];
}

/* Cell u of a grid row pair reads columns u and u + 1 (u alone at the last column), as
 * grid_coord pairs them. */
static void cell_bounds(ss_sampler *s) {
    size_t cells = (size_t)s->gw * s->gh;
    for (uint32_t c = 0; c < s->ss->channels; c++) {
        const float *top = s->grid + c * cells + (size_t)s->v0 * s->gw;
        const float *bottom = s->grid + c * cells + (size_t)s->v1 * s->gw;
        float *lo = s->lo + (size_t)c * s->gw, *hi = s->hi + (size_t)c * s->gw;
        for (uint32_t u = 0; u < s->gw; u++) {
            uint32_t u1 = u + 1 < s->gw ? u + 1 : u;
            float q[4] = {top[u], top[u1], bottom[u], bottom[u1]};
            float a = q[0], b = q[0];
            int finite = 1;
            for (int i = 0; i < 4; i++) {
                finite &= isfinite(q[i]) != 0;
                a = q[i] < a ? q[i] : a;
                b = q[i] > b ? q[i] : b;
            }
            lo[u] = finite ? a : -INFINITY;
            hi[u] = finite ? b : INFINITY;
        }
    }
}

int ss_sampler_at_row(ss_sampler *s, uint32_t y, const float **lo, const float **hi, avps_error *err) {
    if (s->ss->kind == SS_LABELS)
        return avps_fail(err, "a label-map SS has no bounds to prune with");
    grid_coord(y, s->ss->geo.scale_y, s->ss->geo.offset_y, s->gh, &s->v0, &s->v1, &s->fv);
    if (!s->lo) {
        s->lo = malloc(sizeof(float) * s->ss->channels * s->gw + 1);
        s->hi = malloc(sizeof(float) * s->ss->channels * s->gw + 1);
        if (!s->lo || !s->hi)
            return avps_fail(err, "out of memory for a semantic sampler's bounds");
    }
    *lo = s->lo, *hi = s->hi;
    if (s->bounds_v0 == s->v0)
        return 0;
    cell_bounds(s);
    s->bounds_v0 = s->v0;
    return 1;
}

/* The arithmetic of ss_sampler_row for one channel and pixel, in the same order. */
float ss_sampler_value(const ss_sampler *s, uint32_t c, uint32_t x) {
    size_t cells = (size_t)s->gw * s->gh;
    const float *top = s->grid + c * cells + (size_t)s->v0 * s->gw;
    const float *bottom = s->grid + c * cells + (size_t)s->v1 * s->gw;
    uint32_t u0 = s->col0[x], u1 = s->col1[x];
    float a = top[u0] * (1 - s->fv) + bottom[u0] * s->fv;
    float b = top[u1] * (1 - s->fv) + bottom[u1] * s->fv;
    return a * (1 - s->frac[x]) + b * s->frac[x];
}

/* Pixels a paste can write lie within the box grown by two mask cells and three pixels
 * on every side, whatever the convention; only that rectangle is pasted and scanned. */
void is_instance_paste_rect(const is_instance *inst, uint32_t h, uint32_t w, uint32_t r[4]) {
    double mx = 2 * fabs(inst->box[2] - inst->box[0]) / inst->soft_w + 3;
    double my = 2 * fabs(inst->box[3] - inst->box[1]) / inst->soft_h + 3;
    double lo_x = fmin(inst->box[0], inst->box[2]) - mx, hi_x = fmax(inst->box[0], inst->box[2]) + mx;
    double lo_y = fmin(inst->box[1], inst->box[3]) - my, hi_y = fmax(inst->box[1], inst->box[3]) + my;
    r[0] = lo_x <= 0 ? 0 : lo_x >= w ? w : (uint32_t)lo_x;
    r[1] = lo_y <= 0 ? 0 : lo_y >= h ? h : (uint32_t)lo_y;
    r[2] = hi_x <= 0 ? 0 : hi_x >= w ? w : (uint32_t)ceil(hi_x);
    r[3] = hi_y <= 0 ? 0 : hi_y >= h ? h : (uint32_t)ceil(hi_y);
}

typedef struct {
    uint32_t *cnts;
    size_t m, cap;
} run_list;

static int run_push(run_list *l, uint32_t run) {
    if (l->m == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        uint32_t *grown = realloc(l->cnts, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->cnts = grown, l->cap = cap;
    }
    l->cnts[l->m++] = run;
    return 0;
}

/* Runs of an h x w image that is 0 outside rectangle r and, inside, on where prob > 0.5. */
static int runs_from_rect(const float *prob, uint32_t h, uint32_t w, const uint32_t r[4], rle_mask *out) {
    run_list l = {0};
    uint32_t run = 0;
    int on = 0, rc = 0;
    for (uint32_t x = 0; x < w && rc == 0; x++) {
        int inside = x >= r[0] && x < r[2];
        for (uint32_t y = 0; y < h && rc == 0; y++) {
            if (!inside && !on) { /* a whole column of zeros */
                run += h;
                break;
            }
            int bit = inside && y >= r[1] && y < r[3] && prob[(size_t)y * w + x] > 0.5f;
            if (bit == on)
                run++;
            else
                rc = run_push(&l, run), run = 1, on = bit;
        }
    }
    if (rc == 0)
        rc = run_push(&l, run);
    if (rc != 0) {
        free(l.cnts);
        return -1;
    }
    *out = (rle_mask){h, w, l.m, l.cnts};
    return 0;
}

int is_instance_mask(const is_instance *inst, uint32_t h, uint32_t w, rle_mask *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    if (!inst->soft) {
        if (inst->mask.h != h || inst->mask.w != w)
            return avps_fail(err, "instance mask is %ux%u, the image %ux%u", inst->mask.w, inst->mask.h, w, h);
        out->h = h, out->w = w, out->m = inst->mask.m;
        if (out->m && !(out->cnts = malloc(out->m * sizeof *out->cnts)))
            return avps_fail(err, "out of memory");
        if (out->m)
            memcpy(out->cnts, inst->mask.cnts, out->m * sizeof *out->cnts);
        return 0;
    }
    uint32_t r[4];
    is_instance_paste_rect(inst, h, w, r);
    float *prob = malloc((size_t)h * w * sizeof *prob + 1); /* read only inside r */
    int rc = -1;
    if (!prob)
        return avps_fail(err, "out of memory for a %ux%u mask", w, h);
    for (uint32_t y = r[1]; y < r[3]; y++)
        memset(prob + (size_t)y * w + r[0], 0, (r[2] - r[0]) * sizeof *prob);
    if (mask_paste(inst->soft, inst->soft_h, inst->soft_w, inst->box, inst->paste, h, w, prob) != 0)
        avps_fail(err, "cannot paste the soft mask of a category %d instance", inst->category_id);
    /* > 0.5, as mmdetection (UPSNet's and HTC's code base) binarises */
    else if ((rc = runs_from_rect(prob, h, w, r, out)) != 0)
        avps_fail(err, "out of memory encoding a mask");
    free(prob);
    return rc;
}

void head_output_release(head_output *out) {
    free(out->ss.channel_category);
    free(out->ss.scores);
    free(out->ss.labels);
    for (size_t i = 0; i < out->n_instances; i++) {
        free(out->instances[i].soft);
        rle_free(&out->instances[i].mask);
    }
    free(out->instances);
    memset(out, 0, sizeof *out);
}
