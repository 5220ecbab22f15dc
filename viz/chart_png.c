/* chart_png.c: a chart drawn on a viz canvas (bars as filled rectangles in their series'
 * exact colour, lines two pixels wide, text by FreeType), laid out by viz_chart_layout. */
#include "viz.h"

#include <math.h>

static const uint8_t WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0}, AXIS[3] = {68, 68, 68},
                     GRID[3] = {221, 221, 221}, TEXT[3] = {20, 20, 20};

typedef struct {
    viz_canvas *canvas;
    viz_font *small, *normal, *large;
} png_ctx;

/* Text with its baseline-box top at y, anchored left (0), centred (1) or right (2) at x. */
static void text_at(png_ctx *g, viz_font *f, double x, int y, int anchor, const char *s) {
    if (!s)
        return;
    int w = viz_text_width(f, s);
    viz_draw_text(g->canvas, f, (int)lround(x - (anchor == 1 ? w / 2.0 : anchor == 2 ? w : 0)), y, s, TEXT, NULL);
}

static void frame(viz_canvas *cv, int x, int y, int w, int h, const uint8_t rgb[3]) {
    viz_fill_rect(cv, x, y, w, 1, rgb);
    viz_fill_rect(cv, x, y + h - 1, w, 1, rgb);
    viz_fill_rect(cv, x, y, 1, h, rgb);
    viz_fill_rect(cv, x + w - 1, y, 1, h, rgb);
}

/* A segment two pixels wide, stepped one pixel at a time along its longer side. */
static void segment(viz_canvas *cv, double x0, double y0, double x1, double y1, const uint8_t rgb[3]) {
    double n = fmax(fabs(x1 - x0), fabs(y1 - y0));
    int steps = (int)ceil(n);
    for (int i = 0; i <= steps; i++) {
        double t = steps ? (double)i / steps : 0;
        viz_fill_rect(cv, (int)lround(x0 + t * (x1 - x0)) - 1, (int)lround(y0 + t * (y1 - y0)) - 1, 2, 2, rgb);
    }
}

static void draw_value_axis(png_ctx *g, const viz_chart *c, const viz_chart_box *b) {
    double step = viz_chart_tick_step(c->v_min, c->v_max);
    for (double v = ceil(c->v_min / step) * step; v <= c->v_max + step * 1e-9; v += step) {
        int p = (int)lround(viz_chart_value_pos(c, b, v));
        char label[32];
        snprintf(label, sizeof label, "%g", fabs(v) < step * 1e-9 ? 0 : v);
        if (c->kind == VIZ_CHART_BARS) {
            viz_fill_rect(g->canvas, p, b->plot_y, 1, b->plot_h, GRID);
            text_at(g, g->small, p, b->plot_y + b->plot_h + 4, 1, label);
        } else {
            viz_fill_rect(g->canvas, b->plot_x, p, b->plot_w, 1, GRID);
            text_at(g, g->small, b->plot_x - 6, p - 7, 2, label);
        }
    }
    if (c->kind == VIZ_CHART_LINES) {
        step = viz_chart_tick_step(c->x_min, c->x_max);
        for (double x = ceil(c->x_min / step) * step; x <= c->x_max + step * 1e-9; x += step) {
            char label[32];
            snprintf(label, sizeof label, "%g", fabs(x) < step * 1e-9 ? 0 : x);
            text_at(g, g->small, viz_chart_x_pos(c, b, x), b->plot_y + b->plot_h + 4, 1, label);
        }
    }
}

static void draw_bars(png_ctx *g, const viz_chart *c, const viz_chart_box *b) {
    for (size_t k = 0; k < c->n_categories; k++) {
        int row = b->plot_y + (int)k * b->row_h;
        text_at(g, g->normal, b->plot_x - 8, row + 1, 2, c->category[k]);
        if (c->note && c->note[k])
            text_at(g, g->small, b->plot_x - 8, row + 16, 2, c->note[k]);
        for (size_t s = 0; s < c->n_series; s++) {
            double v = c->series[s].y[k];
            if (isnan(v))
                continue;
            int top = viz_chart_bar_top(b, c, k, s), w = (int)lround(viz_chart_value_pos(c, b, v)) - b->plot_x;
            viz_fill_rect(g->canvas, b->plot_x, top, w, b->bar_h, c->series[s].colors ? c->series[s].colors[k] : c->series[s].color);
            if (c->highlight && c->highlight[k] == (int)s && w > 0)
                frame(g->canvas, b->plot_x, top, w, b->bar_h, BLACK);
        }
    }
}

static void draw_lines(png_ctx *g, const viz_chart *c, const viz_chart_box *b) {
    for (size_t s = 0; s < c->n_series; s++) {
        const viz_series *v = &c->series[s];
        for (size_t i = 0; i + 1 < v->n; i++) {
            if (isnan(v->y[i]) || isnan(v->x[i]) || isnan(v->y[i + 1]) || isnan(v->x[i + 1]))
                continue;
            segment(g->canvas, viz_chart_x_pos(c, b, v->x[i]), viz_chart_value_pos(c, b, v->y[i]),
                    viz_chart_x_pos(c, b, v->x[i + 1]), viz_chart_value_pos(c, b, v->y[i + 1]), v->color);
        }
    }
}

static void draw_legend(png_ctx *g, const viz_chart *c, const viz_chart_box *b) {
    for (size_t s = 0; s < c->n_series; s++) {
        int x, y;
        viz_chart_legend_pos(c, b, s, &x, &y);
        viz_fill_rect(g->canvas, x, y, 12, 12, c->series[s].color);
        text_at(g, g->normal, x + 16, y - 2, 0, c->series[s].name);
    }
}

int viz_chart_write_png(const viz_chart *c, const char *path, avps_error *err) {
    if (viz_chart_check(c, err) != 0)
        return avps_prefix(err, "%s", path);
    viz_chart_box b;
    viz_chart_layout(c, &b);
    png_ctx g = {0};
    int rc = 0;
    if (!(g.canvas = viz_canvas_new((uint32_t)b.width, (uint32_t)b.height, WHITE)))
        rc = avps_fail(err, "%s: a %d x %d chart is too large", path, b.width, b.height);
    if (rc == 0 && (!(g.small = viz_font_open(NULL, 11, err)) || !(g.normal = viz_font_open(NULL, 12, err)) ||
                    !(g.large = viz_font_open(NULL, 15, err))))
        rc = -1;
    if (rc == 0) {
        text_at(&g, g.large, b.width / 2.0, 6, 1, c->title);
        draw_value_axis(&g, c, &b);
        if (c->kind == VIZ_CHART_BARS)
            draw_bars(&g, c, &b);
        else
            draw_lines(&g, c, &b);
        frame(g.canvas, b.plot_x, b.plot_y, b.plot_w + 1, b.plot_h + 1, AXIS);
        draw_legend(&g, c, &b);
        text_at(&g, g.normal, b.plot_x + b.plot_w / 2.0, b.plot_y + b.plot_h + 24, 1, c->x_label);
        if (c->kind == VIZ_CHART_LINES)
            text_at(&g, g.normal, 8, b.plot_y - 18, 0, c->y_label);
        rc = viz_canvas_write_png(g.canvas, path, err);
    }
    viz_font_free(g.small);
    viz_font_free(g.normal);
    viz_font_free(g.large);
    viz_canvas_free(g.canvas);
    return rc;
}
