/* viz: pictures of results, at the end of the data flow (data -> model -> ensemble ->
 * fusion -> eval -> viz); mpi's `avps show` and the report drive it.
 *
 * Contract:
 * - A canvas is 8-bit RGB, row-major; drawing clips to it, so no call writes outside.
 * - A layer is a result as people see it: per pixel the index of its segment (0: none),
 *   per segment a colour and an optional label. viz_draw_layer blends the colours over
 *   what is on the canvas, draws each segment's contour and labels the larger ones.
 * - Text is rasterised by FreeType from a TrueType font (DejaVu Sans, from Debian's
 *   fonts-dejavu-core, unless AVPS_FONT names another file).
 * - viz reads only data.h: images, results and metrics come from its caller.
 */
#ifndef AVPS_VIZ_H
#define AVPS_VIZ_H

#include "../data/data.h"

typedef struct {
    uint32_t width, height;
    uint8_t *rgb;
} viz_canvas;

viz_canvas *viz_canvas_new(uint32_t width, uint32_t height, const uint8_t background[3]);
void viz_canvas_free(viz_canvas *c);
/* Copies a w x h RGB picture with its top-left corner at (x, y). */
void viz_canvas_blit(viz_canvas *c, int x, int y, uint32_t w, uint32_t h, const uint8_t *rgb);
void viz_fill_rect(viz_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]);
int viz_canvas_write_png(const viz_canvas *c, const char *path, avps_error *err);

typedef struct {
    uint32_t width, height;
    const uint32_t *segment; /* width x height: 1..n_segments, 0 where there is none */
    size_t n_segments;
    const uint8_t (*color)[3];  /* per segment (index - 1) */
    const char *const *label;   /* per segment, NULL entries (or NULL) for none */
} viz_layer;

typedef struct viz_font viz_font;
/* Opens the font at pixel size px (path NULL: AVPS_FONT, else DejaVu Sans). */
viz_font *viz_font_open(const char *path, int px, avps_error *err);
void viz_font_free(viz_font *f);
/* The width in pixels text takes. */
int viz_text_width(viz_font *f, const char *text);
/* Draws UTF-8 text with its top-left at (x, y); on a box of colour box unless box is NULL. */
void viz_draw_text(viz_canvas *c, viz_font *f, int x, int y, const char *text, const uint8_t rgb[3],
                   const uint8_t *box);

/* Draws the layer with its top-left at (x, y): colours blended with weight alpha (0..1),
 * contours in white, and the label of every segment of at least min_label_area pixels
 * (font NULL: no labels) near its centre. Returns -1 with err when out of memory. */
int viz_draw_layer(viz_canvas *c, int x, int y, const viz_layer *layer, double alpha, viz_font *font,
                   size_t min_label_area, avps_error *err);

/* The colour a segment is drawn in: its category's for stuff; for things that colour
 * jittered by the segment's number, so that neighbouring instances differ. */
void viz_segment_color(const pan_category *cat, uint32_t segment_number, uint8_t rgb[3]);

/* Writes s as text or a quoted attribute value of HTML or XML (the report page, the SVG
 * figures): & < > " ' as &amp; &lt; &gt; &quot; &#39;; the C0 control bytes other than tab,
 * LF and CR, which XML cannot hold, left out; all other bytes (UTF-8) as they are. */
void viz_put_escaped(FILE *fp, const char *s);

/* ---- charts (chart.c: the model and its layout; chart_svg.c, chart_png.c: the two renderings)
 *
 * A chart is plain data: a title, axis labels and series, drawn either as grouped bars or
 * as lines (x, y points per series). Bars run horizontally, one row of bars (one per
 * series) per category, its name on the left, so that 133 category names stay readable
 * without rotated text. Both renderings lay the chart out the same way (viz_chart_layout),
 * so a bar is as long in the SVG as in the PNG. Values outside the axis are clamped to it;
 * NAN draws nothing (no bar; a break in a line). */

typedef enum { VIZ_CHART_BARS, VIZ_CHART_LINES } viz_chart_kind;

typedef struct {
    const char *name;     /* in the legend */
    uint8_t color[3];
    size_t n;             /* bars: the chart's n_categories; lines: the points */
    const double *y;      /* n values */
    const double *x;      /* lines only: n values */
    const uint8_t (*colors)[3]; /* bars: n colours, one per bar, instead of color; or NULL */
} viz_series;

typedef struct {
    viz_chart_kind kind;
    const char *title, *x_label, *y_label; /* bars: x_label names the value axis */
    double v_min, v_max;              /* the value axis (bars: horizontal; lines: y) */
    double x_min, x_max;              /* lines only */
    size_t n_categories;              /* bars: the rows, top to bottom */
    const char *const *category;      /* n_categories names */
    const char *const *note;          /* bars: per category a second line under its name, or NULL */
    const int *highlight;             /* bars: per category the series whose bar is outlined
                                         (the class table's pick), -1 for none; or NULL */
    size_t n_series;
    const viz_series *series;
} viz_chart;

/* Where things go, in pixels from the top-left (the PNG's pixels; the SVG's user units). */
typedef struct {
    int width, height;
    int plot_x, plot_y, plot_w, plot_h; /* the plotting area, inside the axes */
    int row_h, bar_h;                   /* bars: a category's row and one bar's thickness */
    int legend_x, legend_y;             /* the first legend entry */
} viz_chart_box;

/* Refuses a chart whose series do not match its kind and categories (err names it). */
int viz_chart_check(const viz_chart *c, avps_error *err);
void viz_chart_layout(const viz_chart *c, viz_chart_box *box);
/* Bars: the column where value v ends (clamped to the axis); lines: the row of value v. */
double viz_chart_value_pos(const viz_chart *c, const viz_chart_box *box, double v);
/* Lines: the column of x (clamped). */
double viz_chart_x_pos(const viz_chart *c, const viz_chart_box *box, double x);
/* Bars: the top row of bar s of category k. */
int viz_chart_bar_top(const viz_chart_box *box, const viz_chart *c, size_t k, size_t s);
/* The step between ticks: 1, 2 or 5 times a power of ten, 4 to 10 ticks over [lo, hi]. */
double viz_chart_tick_step(double lo, double hi);
/* Legend entry i's top-left. */
void viz_chart_legend_pos(const viz_chart *c, const viz_chart_box *box, size_t i, int *x, int *y);

/* Writes the chart atomically as SVG text or as a PNG (drawn with viz_canvas and FreeType). */
int viz_chart_write_svg(const viz_chart *c, const char *path, avps_error *err);
int viz_chart_write_png(const viz_chart *c, const char *path, avps_error *err);
/* By the path's extension: .svg or .png (anything else is refused). */
int viz_chart_write(const viz_chart *c, const char *path, avps_error *err);

#endif
