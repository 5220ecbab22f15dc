/* charts.c: the plots of a run, as figures (figure.c): grouped bars for per-class numbers
 * (the class table, per-class PQ) and lines for precision-recall curves. */
#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const uint8_t ink[3] = {30, 30, 30}, grid[3] = {220, 220, 220}, axis[3] = {120, 120, 120};

void viz_palette(size_t i, uint8_t rgb[3]) {
    static const uint8_t colors[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                          {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                          {188, 189, 34}, {23, 190, 207}};
    memcpy(rgb, colors[i % 10], 3);
}

static void legend(viz_figure *f, double x, double y, size_t n, const char *const *names) {
    for (size_t s = 0; s < n; s++) {
        uint8_t c[3];
        viz_palette(s, c);
        viz_fig_rect(f, x, y + 16.0 * (double)s - 9, 10, 10, c);
        viz_fig_text(f, x + 14, y + 16.0 * (double)s, 11, 0, ink, names[s]);
    }
}

enum { LABEL_W = 170, BAR_W = 380, NOTE_W = 120, TOP = 48, BAR_H = 9 };

viz_figure *viz_bar_chart(const viz_bars *b) {
    double row = (double)b->n_series * BAR_H + 6;
    int width = LABEL_W + BAR_W + NOTE_W + 20, height = TOP + (int)(row * (double)b->n_groups) + 30;
    viz_figure *f = viz_figure_new(width, height);
    if (!f)
        return NULL;
    viz_fig_text(f, 10, 18, 14, 0, ink, b->title);
    legend(f, LABEL_W + 10, 36, 0, NULL);
    for (size_t s = 0; s < b->n_series; s++) { /* the legend in one line */
        uint8_t c[3];
        viz_palette(s, c);
        viz_fig_rect(f, LABEL_W + 130.0 * (double)s, 27, 10, 10, c);
        viz_fig_text(f, LABEL_W + 130.0 * (double)s + 14, 36, 11, 0, ink, b->series[s]);
    }
    double x0 = LABEL_W, y_end = TOP + row * (double)b->n_groups;
    for (int t = 0; t <= 10; t += 2) { /* grid every 20 % */
        double x = x0 + BAR_W * t / 10.0;
        char tick[16];
        snprintf(tick, sizeof tick, "%d", t * 10);
        viz_fig_line(f, x, TOP - 4, x, y_end, t ? grid : axis, 1);
        viz_fig_text(f, x, y_end + 14, 10, 1, axis, tick);
    }
    for (size_t g = 0; g < b->n_groups; g++) {
        double y = TOP + row * (double)g;
        viz_fig_text(f, LABEL_W - 6, y + row / 2 + 4, 11, 2, ink, b->group[g]);
        for (size_t s = 0; s < b->n_series; s++) {
            double v = b->value[g * b->n_series + s], by = y + 3 + BAR_H * (double)s;
            uint8_t c[3];
            viz_palette(s, c);
            if (isnan(v)) {
                viz_fig_text(f, x0 + 3, by + BAR_H - 1, 8, 0, axis, "n/a");
                continue;
            }
            double w = BAR_W * (v < 0 ? 0 : v > 1 ? 1 : v);
            if (b->mark && b->mark[g] == (int)s) /* the pick: an outline around its bar */
                viz_fig_rect(f, x0 - 1, by - 1, w + 2, BAR_H + 1, ink);
            viz_fig_rect(f, x0, by, w, BAR_H - 1, c);
        }
        if (b->note && b->note[g])
            viz_fig_text(f, x0 + BAR_W + 8, y + row / 2 + 4, 10, 0, ink, b->note[g]);
    }
    return f;
}

enum { PLOT_X = 60, PLOT_Y = 40, PLOT_W = 420, PLOT_H = 320 };

viz_figure *viz_line_chart(const viz_lines *l) {
    viz_figure *f = viz_figure_new(PLOT_X + PLOT_W + 150, PLOT_Y + PLOT_H + 50);
    if (!f)
        return NULL;
    viz_fig_text(f, 10, 20, 14, 0, ink, l->title);
    for (int t = 0; t <= 10; t += 2) {
        double gx = PLOT_X + PLOT_W * t / 10.0, gy = PLOT_Y + PLOT_H - PLOT_H * t / 10.0;
        char tick[16];
        snprintf(tick, sizeof tick, "%.1f", t / 10.0);
        viz_fig_line(f, gx, PLOT_Y, gx, PLOT_Y + PLOT_H, grid, 1);
        viz_fig_line(f, PLOT_X, gy, PLOT_X + PLOT_W, gy, grid, 1);
        viz_fig_text(f, gx, PLOT_Y + PLOT_H + 14, 10, 1, axis, tick);
        viz_fig_text(f, PLOT_X - 4, gy + 4, 10, 2, axis, tick);
    }
    viz_fig_line(f, PLOT_X, PLOT_Y + PLOT_H, PLOT_X + PLOT_W, PLOT_Y + PLOT_H, axis, 1);
    viz_fig_line(f, PLOT_X, PLOT_Y, PLOT_X, PLOT_Y + PLOT_H, axis, 1);
    viz_fig_text(f, PLOT_X + PLOT_W / 2.0, PLOT_Y + PLOT_H + 34, 11, 1, ink, l->x_label);
    viz_fig_text(f, 10, PLOT_Y - 8, 11, 0, ink, l->y_label);
    for (size_t s = 0; s < l->n_series; s++) {
        uint8_t c[3];
        viz_palette(s, c);
        const double *y = l->y + s * l->n_points;
        for (size_t i = 0; i + 1 < l->n_points && y[i] >= 0 && y[i + 1] >= 0; i++)
            viz_fig_line(f, PLOT_X + PLOT_W * l->x[i], PLOT_Y + PLOT_H - PLOT_H * y[i], PLOT_X + PLOT_W * l->x[i + 1],
                         PLOT_Y + PLOT_H - PLOT_H * y[i + 1], c, 2);
    }
    legend(f, PLOT_X + PLOT_W + 16, PLOT_Y + 10, l->n_series, l->series);
    return f;
}
