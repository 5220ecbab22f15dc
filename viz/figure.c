/* figure.c: a chart as a list of shapes (rectangles, lines, text), written either as SVG
 * text or rendered to a PNG, so that both files show the same picture. */
#include "viz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int kind; /* 0 rect, 1 line, 2 text */
    double x, y, x2, y2; /* rect: x, y, w, h; line: ends; text: anchor point (baseline) */
    uint8_t rgb[3];
    int size, anchor; /* text: px, 0 start 1 middle 2 end; line: width */
    char *text;
} fig_op;

struct viz_figure {
    int width, height;
    fig_op *ops;
    size_t n, cap;
    int failed; /* out of memory once: writing fails */
};

viz_figure *viz_figure_new(int width, int height) {
    viz_figure *f = calloc(1, sizeof *f);
    if (f) {
        f->width = width;
        f->height = height;
    }
    return f;
}

void viz_figure_free(viz_figure *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->ops[i].text);
    free(f->ops);
    free(f);
}

static fig_op *push(viz_figure *f) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        fig_op *ops = realloc(f->ops, cap * sizeof *ops);
        if (!ops) {
            f->failed = 1;
            return NULL;
        }
        f->ops = ops;
        f->cap = cap;
    }
    fig_op *o = &f->ops[f->n++];
    memset(o, 0, sizeof *o);
    return o;
}

void viz_fig_rect(viz_figure *f, double x, double y, double w, double h, const uint8_t rgb[3]) {
    fig_op *o = push(f);
    if (o)
        *o = (fig_op){0, x, y, w, h, {rgb[0], rgb[1], rgb[2]}, 0, 0, NULL};
}

void viz_fig_line(viz_figure *f, double x1, double y1, double x2, double y2, const uint8_t rgb[3], int width) {
    fig_op *o = push(f);
    if (o)
        *o = (fig_op){1, x1, y1, x2, y2, {rgb[0], rgb[1], rgb[2]}, width, 0, NULL};
}

void viz_fig_text(viz_figure *f, double x, double y, int size, int anchor, const uint8_t rgb[3], const char *text) {
    char *copy = strdup(text);
    fig_op *o = copy ? push(f) : NULL;
    if (!o) {
        free(copy);
        f->failed = 1;
        return;
    }
    *o = (fig_op){2, x, y, 0, 0, {rgb[0], rgb[1], rgb[2]}, size, anchor, copy};
}

static void svg_text(FILE *fp, const char *s) {
    for (; *s; s++)
        if (*s == '<')
            fputs("&lt;", fp);
        else if (*s == '>')
            fputs("&gt;", fp);
        else if (*s == '&')
            fputs("&amp;", fp);
        else
            fputc(*s, fp);
}

int viz_figure_write_svg(const viz_figure *f, const char *path, avps_error *err) {
    if (f->failed)
        return avps_fail(err, "%s: out of memory drawing the figure", path);
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    FILE *fp = af.fp;
    fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"DejaVu Sans, sans-serif\">\n",
            f->width, f->height, f->width, f->height);
    static const char *const anchors[3] = {"start", "middle", "end"};
    for (size_t i = 0; i < f->n; i++) {
        const fig_op *o = &f->ops[i];
        char color[8];
        snprintf(color, sizeof color, "#%02x%02x%02x", o->rgb[0], o->rgb[1], o->rgb[2]);
        if (o->kind == 0)
            fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", o->x, o->y, o->x2,
                    o->y2, color);
        else if (o->kind == 1)
            fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%d\"/>\n",
                    o->x, o->y, o->x2, o->y2, color, o->size);
        else {
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" fill=\"%s\">", o->x, o->y,
                    o->size, anchors[o->anchor], color);
            svg_text(fp, o->text);
            fputs("</text>\n", fp);
        }
    }
    fputs("</svg>\n", fp);
    return file_atomic_commit(&af, err);
}

static void plot_dot(viz_canvas *c, long x, long y, const uint8_t rgb[3], int width) {
    for (long dy = -(width - 1) / 2; dy <= width / 2; dy++)
        for (long dx = -(width - 1) / 2; dx <= width / 2; dx++)
            if (x + dx >= 0 && y + dy >= 0 && x + dx < (long)c->width && y + dy < (long)c->height)
                memcpy(c->rgb + 3 * ((size_t)(y + dy) * c->width + (size_t)(x + dx)), rgb, 3);
}

static void render_line(viz_canvas *c, const fig_op *o) {
    double dx = o->x2 - o->x, dy = o->y2 - o->y;
    int steps = (int)ceil(fmax(fabs(dx), fabs(dy))) + 1;
    for (int s = 0; s <= steps; s++)
        plot_dot(c, lround(o->x + dx * s / steps), lround(o->y + dy * s / steps), o->rgb, o->size);
}

int viz_figure_write_png(const viz_figure *f, const char *path, avps_error *err) {
    static const uint8_t white[3] = {255, 255, 255};
    if (f->failed)
        return avps_fail(err, "%s: out of memory drawing the figure", path);
    viz_canvas *c = viz_canvas_new((uint32_t)f->width, (uint32_t)f->height, white);
    if (!c)
        return avps_fail(err, "%s: out of memory", path);
    viz_font *fonts[64] = {0}; /* by pixel size */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < f->n; i++) {
        const fig_op *o = &f->ops[i];
        if (o->kind == 0) {
            viz_fill_rect(c, (int)lround(o->x), (int)lround(o->y), (int)lround(o->x2), (int)lround(o->y2), o->rgb);
        } else if (o->kind == 1) {
            render_line(c, o);
        } else {
            int px = o->size < 6 ? 6 : o->size > 63 ? 63 : o->size;
            if (!fonts[px] && !(fonts[px] = viz_font_open(NULL, px, err))) {
                rc = -1;
                break;
            }
            int w = viz_text_width(fonts[px], o->text);
            int x = (int)lround(o->x) - (o->anchor == 1 ? w / 2 : o->anchor == 2 ? w : 0);
            viz_draw_text(c, fonts[px], x, (int)lround(o->y) - viz_font_ascent(fonts[px]), o->text, o->rgb, NULL);
        }
    }
    for (int k = 0; k < 64; k++)
        viz_font_free(fonts[k]);
    if (rc == 0)
        rc = viz_canvas_write_png(c, path, err);
    viz_canvas_free(c);
    return rc;
}
