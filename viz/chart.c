/* chart.c: the chart model's checks and its layout, shared by the SVG and PNG renderings
 * so that both put every bar and point at the same place. */
#include "viz.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define BAR_H 9
#define ROW_GAP 8
#define NAME_CHAR_W 7 /* a rough width of a 12 px DejaVu Sans character */
#define TOP 58        /* title and legend above the plot */
#define BOTTOM 48     /* ticks and the axis label below it */
#define LEGEND_W 130  /* lines: the legend column on the right */

int viz_chart_check(const viz_chart *c, avps_error *err) {
    if (!(c->v_max > c->v_min))
        return avps_fail(err, "chart \"%s\": the value axis is empty", c->title ? c->title : "");
    if (c->kind == VIZ_CHART_LINES && !(c->x_max > c->x_min))
        return avps_fail(err, "chart \"%s\": the x axis is empty", c->title ? c->title : "");
    if (c->n_series == 0 || c->n_series > 64)
        return avps_fail(err, "chart \"%s\": %zu series (1..64)", c->title ? c->title : "", c->n_series);
    if (c->kind == VIZ_CHART_BARS && (c->n_categories == 0 || c->n_categories > 4096 || !c->category))
        return avps_fail(err, "chart \"%s\": %zu categories (1..4096, named)", c->title ? c->title : "",
                         c->n_categories);
    for (size_t s = 0; s < c->n_series; s++) {
        const viz_series *v = &c->series[s];
        if (c->kind == VIZ_CHART_BARS && v->n != c->n_categories)
            return avps_fail(err, "chart \"%s\": series \"%s\" has %zu values for %zu categories",
                             c->title ? c->title : "", v->name ? v->name : "", v->n, c->n_categories);
        if (c->kind == VIZ_CHART_LINES && (!v->x || v->n > 100000))
            return avps_fail(err, "chart \"%s\": series \"%s\" needs x values (at most 100000)",
                             c->title ? c->title : "", v->name ? v->name : "");
        if (v->n && !v->y)
            return avps_fail(err, "chart \"%s\": series \"%s\" has no values", c->title ? c->title : "",
                             v->name ? v->name : "");
    }
    if (c->highlight)
        for (size_t k = 0; k < c->n_categories; k++)
            if (c->highlight[k] >= (int)c->n_series)
                return avps_fail(err, "chart \"%s\": category %zu highlights series %d of %zu",
                                 c->title ? c->title : "", k, c->highlight[k], c->n_series);
    return 0;
}

void viz_chart_layout(const viz_chart *c, viz_chart_box *b) {
    memset(b, 0, sizeof *b);
    b->plot_y = TOP;
    if (c->kind == VIZ_CHART_BARS) {
        size_t longest = 8;
        for (size_t k = 0; k < c->n_categories; k++) {
            size_t n = c->category[k] ? strlen(c->category[k]) : 0;
            size_t m = c->note && c->note[k] ? strlen(c->note[k]) : 0;
            longest = n > longest ? n : m > longest ? m : longest;
        }
        if (longest > 32)
            longest = 32;
        b->bar_h = BAR_H;
        b->row_h = (int)c->n_series * BAR_H + ROW_GAP;
        if (c->note && b->row_h < 30)
            b->row_h = 30;
        b->plot_x = (int)longest * NAME_CHAR_W + 16;
        b->plot_w = 520;
        b->plot_h = (int)c->n_categories * b->row_h;
        b->width = b->plot_x + b->plot_w + 40;
        b->legend_x = b->plot_x;
        b->legend_y = 34;
    } else {
        b->plot_x = 64;
        b->plot_w = 480;
        b->plot_h = 360;
        b->width = b->plot_x + b->plot_w + LEGEND_W + 20;
        b->legend_x = b->plot_x + b->plot_w + 16;
        b->legend_y = TOP;
    }
    b->height = b->plot_y + b->plot_h + BOTTOM;
}

static double clamp01(double f) { return f < 0 ? 0 : f > 1 ? 1 : f; }

double viz_chart_value_pos(const viz_chart *c, const viz_chart_box *b, double v) {
    double f = clamp01((v - c->v_min) / (c->v_max - c->v_min));
    return c->kind == VIZ_CHART_BARS ? b->plot_x + f * b->plot_w : b->plot_y + (1 - f) * b->plot_h;
}

double viz_chart_x_pos(const viz_chart *c, const viz_chart_box *b, double x) {
    return b->plot_x + clamp01((x - c->x_min) / (c->x_max - c->x_min)) * b->plot_w;
}

int viz_chart_bar_top(const viz_chart_box *b, const viz_chart *c, size_t k, size_t s) {
    (void)c;
    return b->plot_y + (int)k * b->row_h + ROW_GAP / 2 + (int)s * b->bar_h;
}

void viz_chart_legend_pos(const viz_chart *c, const viz_chart_box *b, size_t i, int *x, int *y) {
    if (c->kind == VIZ_CHART_BARS) {
        *x = b->legend_x + (int)i * 150;
        *y = b->legend_y;
    } else {
        *x = b->legend_x;
        *y = b->legend_y + (int)i * 18;
    }
}

int viz_chart_write(const viz_chart *c, const char *path, avps_error *err) {
    size_t n = strlen(path);
    if (n > 4 && strcasecmp(path + n - 4, ".svg") == 0)
        return viz_chart_write_svg(c, path, err);
    if (n > 4 && strcasecmp(path + n - 4, ".png") == 0)
        return viz_chart_write_png(c, path, err);
    return avps_fail(err, "%s: a chart is written as .svg or .png", path);
}

double viz_chart_tick_step(double lo, double hi) {
    static const double mult[] = {1, 0.5, 0.2, 0.1};
    double span = hi - lo, base = pow(10, floor(log10(span)));
    for (size_t i = 0; i < 3; i++)
        if (span / (base * mult[i]) >= 4)
            return base * mult[i];
    return base * mult[3];
}
