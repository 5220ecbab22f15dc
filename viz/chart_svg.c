/* chart_svg.c: a chart as SVG text (a few elements per bar or line, names XML-escaped),
 * laid out by viz_chart_layout. Elements carry a class (plot, bar, line, tick, legend)
 * and bars their series and category index, so that scripts can read the figure back. */
#include "viz.h"

#include <math.h>

#define FONT "font-family=\"DejaVu Sans, sans-serif\""

static void put_text(FILE *fp, const char *cls, double x, double y, const char *anchor, int px, const char *s) {
    fprintf(fp, "<text class=\"%s\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\" %s>", cls, x, y,
            anchor, px, FONT);
    viz_put_escaped(fp, s);
    fputs("</text>\n", fp);
}

static void put_color(FILE *fp, const uint8_t rgb[3]) { fprintf(fp, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]); }

static void put_legend(FILE *fp, const viz_chart *c, const viz_chart_box *b) {
    for (size_t s = 0; s < c->n_series; s++) {
        int x, y;
        viz_chart_legend_pos(c, b, s, &x, &y);
        fprintf(fp, "<rect class=\"legend\" x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"", x, y);
        put_color(fp, c->series[s].color);
        fputs("\"/>\n", fp);
        put_text(fp, "legend", x + 16, y + 11, "start", 12, c->series[s].name);
    }
}

/* The value axis: ticks and grid lines, along x for bars, along y for lines. */
static void put_value_axis(FILE *fp, const viz_chart *c, const viz_chart_box *b) {
    double step = viz_chart_tick_step(c->v_min, c->v_max);
    for (double v = ceil(c->v_min / step) * step; v <= c->v_max + step * 1e-9; v += step) {
        double p = viz_chart_value_pos(c, b, v);
        char label[32];
        snprintf(label, sizeof label, "%g", fabs(v) < step * 1e-9 ? 0 : v);
        if (c->kind == VIZ_CHART_BARS) {
            fprintf(fp, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#dddddd\"/>\n", p,
                    b->plot_y, p, b->plot_y + b->plot_h);
            put_text(fp, "tick", p, b->plot_y + b->plot_h + 16, "middle", 11, label);
        } else {
            fprintf(fp, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n",
                    b->plot_x, p, b->plot_x + b->plot_w, p);
            put_text(fp, "tick", b->plot_x - 6, p + 4, "end", 11, label);
        }
    }
}

static void put_x_axis(FILE *fp, const viz_chart *c, const viz_chart_box *b) {
    double step = viz_chart_tick_step(c->x_min, c->x_max);
    for (double x = ceil(c->x_min / step) * step; x <= c->x_max + step * 1e-9; x += step) {
        char label[32];
        snprintf(label, sizeof label, "%g", fabs(x) < step * 1e-9 ? 0 : x);
        put_text(fp, "tick", viz_chart_x_pos(c, b, x), b->plot_y + b->plot_h + 16, "middle", 11, label);
    }
}

static void put_bars(FILE *fp, const viz_chart *c, const viz_chart_box *b) {
    for (size_t k = 0; k < c->n_categories; k++) {
        int row = b->plot_y + (int)k * b->row_h;
        put_text(fp, "category", b->plot_x - 8, row + 14, "end", 12, c->category[k]);
        if (c->note && c->note[k])
            put_text(fp, "note", b->plot_x - 8, row + 27, "end", 10, c->note[k]);
        for (size_t s = 0; s < c->n_series; s++) {
            double v = c->series[s].y[k];
            if (isnan(v))
                continue;
            double end = viz_chart_value_pos(c, b, v);
            int hl = c->highlight && c->highlight[k] == (int)s;
            fprintf(fp,
                    "<rect class=\"bar%s\" data-series=\"%zu\" data-category=\"%zu\" x=\"%d\" y=\"%d\" "
                    "width=\"%.2f\" height=\"%d\" fill=\"",
                    hl ? " pick" : "", s, k, b->plot_x, viz_chart_bar_top(b, c, k, s), end - b->plot_x, b->bar_h);
            put_color(fp, c->series[s].colors ? c->series[s].colors[k] : c->series[s].color);
            fputs(hl ? "\" stroke=\"#000000\" stroke-width=\"1.5\"/>\n" : "\"/>\n", fp);
        }
    }
}

static void put_lines(FILE *fp, const viz_chart *c, const viz_chart_box *b) {
    for (size_t s = 0; s < c->n_series; s++) {
        const viz_series *v = &c->series[s];
        int open = 0;
        for (size_t i = 0; i < v->n; i++) {
            if (isnan(v->y[i]) || isnan(v->x[i])) {
                if (open)
                    fputs("\"/>\n", fp);
                open = 0;
                continue;
            }
            if (!open) {
                fprintf(fp, "<polyline class=\"line\" data-series=\"%zu\" fill=\"none\" stroke-width=\"1.5\" stroke=\"", s);
                put_color(fp, v->color);
                fputs("\" points=\"", fp);
            }
            fprintf(fp, "%s%.2f,%.2f", open ? " " : "", viz_chart_x_pos(c, b, v->x[i]), viz_chart_value_pos(c, b, v->y[i]));
            open = 1;
        }
        if (open)
            fputs("\"/>\n", fp);
    }
}

int viz_chart_write_svg(const viz_chart *c, const char *path, avps_error *err) {
    if (viz_chart_check(c, err) != 0)
        return avps_prefix(err, "%s", path);
    viz_chart_box b;
    viz_chart_layout(c, &b);
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    FILE *fp = af.fp;
    fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            b.width, b.height, b.width, b.height);
    fprintf(fp, "<rect class=\"background\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", b.width,
            b.height);
    put_text(fp, "title", b.width / 2.0, 20, "middle", 15, c->title);
    put_value_axis(fp, c, &b);
    if (c->kind == VIZ_CHART_LINES)
        put_x_axis(fp, c, &b);
    fprintf(fp,
            "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444444\"/>\n",
            b.plot_x, b.plot_y, b.plot_w, b.plot_h);
    if (c->kind == VIZ_CHART_BARS)
        put_bars(fp, c, &b);
    else
        put_lines(fp, c, &b);
    put_legend(fp, c, &b);
    put_text(fp, "axis", b.plot_x + b.plot_w / 2.0, b.plot_y + b.plot_h + 38, "middle", 12, c->x_label);
    if (c->y_label && c->kind == VIZ_CHART_LINES)
        fprintf(fp, "<g transform=\"translate(16 %.1f) rotate(-90)\">", b.plot_y + b.plot_h / 2.0);
    if (c->y_label && c->kind == VIZ_CHART_LINES) {
        put_text(fp, "axis", 0, 0, "middle", 12, c->y_label);
        fputs("</g>\n", fp);
    }
    fputs("</svg>\n", fp);
    return file_atomic_commit(&af, err);
}
