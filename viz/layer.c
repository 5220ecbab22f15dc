/* layer.c: a segmentation laid over the canvas: colours blended, contours, class names. */
#include "viz.h"

#include <stdlib.h>
#include <string.h>

void viz_segment_color(const pan_category *cat, uint32_t segment_number, uint8_t rgb[3]) {
    pan_category_color(cat, rgb);
    if (cat->isthing != 1)
        return;
    uint32_t h = segment_number * 2654435761u; /* a fixed jitter per number, up to +-40 */
    for (int k = 0; k < 3; k++) {
        int v = rgb[k] + (int)((h >> (8 * k)) & 0xFF) * 80 / 255 - 40;
        rgb[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* Where a label goes: the segment's pixel nearest (in its row) to the mean of its pixels. */
typedef struct {
    double sx, sy;
    size_t n;
    long x, y, best;
} label_spot;

static int on_edge(const viz_layer *l, uint32_t x, uint32_t y) {
    uint32_t s = l->segment[(size_t)y * l->width + x];
    return (x > 0 && l->segment[(size_t)y * l->width + x - 1] != s) ||
           (x + 1 < l->width && l->segment[(size_t)y * l->width + x + 1] != s) ||
           (y > 0 && l->segment[(size_t)(y - 1) * l->width + x] != s) ||
           (y + 1 < l->height && l->segment[(size_t)(y + 1) * l->width + x] != s);
}

static void draw_labels(viz_canvas *c, int x0, int y0, const viz_layer *l, label_spot *spots, viz_font *font,
                        size_t min_area) {
    for (uint32_t y = 0; y < l->height; y++)
        for (uint32_t x = 0; x < l->width; x++) {
            uint32_t s = l->segment[(size_t)y * l->width + x];
            label_spot *sp = s ? &spots[s - 1] : NULL;
            if (!sp || sp->n < min_area || (long)y != (long)(sp->sy / (double)sp->n + 0.5))
                continue;
            long d = labs((long)x - (long)(sp->sx / (double)sp->n + 0.5));
            if (sp->best < 0 || d < sp->best) {
                sp->best = d;
                sp->x = x;
                sp->y = y;
            }
        }
    static const uint8_t white[3] = {255, 255, 255}, dark[3] = {30, 30, 30};
    int (*boxes)[4] = calloc(l->n_segments + 1, sizeof *boxes), n_boxes = 0;
    size_t *order = malloc((l->n_segments + 1) * sizeof *order);
    for (size_t i = 0; order && i < l->n_segments; i++) { /* larger first; insertion: segments are few */
        size_t j = i;
        for (; j > 0 && spots[order[j - 1]].n < spots[i].n; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    for (size_t i = 0; boxes && order && i < l->n_segments; i++) {
        size_t s = order[i];
        if (spots[s].best >= 0 && l->label[s]) {
            int w = viz_text_width(font, l->label[s]), x = (int)spots[s].x - w / 2, y = (int)spots[s].y - 6;
            /* inside the layer where it fits: a label never spills into the next picture */
            x = x + w + 2 > (int)l->width ? (int)l->width - w - 2 : x;
            y = y + 14 > (int)l->height ? (int)l->height - 14 : y;
            x = x < 2 ? 2 : x;
            y = y < 0 ? 0 : y;
            int clash = 0; /* a label over another is unreadable: the larger segment's stays */
            for (int k = 0; k < n_boxes && !clash; k++)
                clash = x < boxes[k][2] && boxes[k][0] < x + w + 4 && y < boxes[k][3] && boxes[k][1] < y + 15;
            if (clash)
                continue;
            boxes[n_boxes][0] = x - 2, boxes[n_boxes][1] = y, boxes[n_boxes][2] = x + w + 2, boxes[n_boxes][3] = y + 15;
            n_boxes++;
            viz_draw_text(c, font, x0 + x, y0 + y, l->label[s], white, dark);
        }
    }
    free(order);
    free(boxes);
}

int viz_draw_layer(viz_canvas *c, int x0, int y0, const viz_layer *l, double alpha, viz_font *font,
                   size_t min_label_area, avps_error *err) {
    label_spot *spots = calloc(l->n_segments + 1, sizeof *spots);
    if (!spots)
        return avps_fail(err, "out of memory");
    unsigned a = (unsigned)(alpha * 256 + 0.5);
    for (uint32_t y = 0; y < l->height; y++)
        for (uint32_t x = 0; x < l->width; x++) {
            long cx = (long)x0 + x, cy = (long)y0 + y;
            uint32_t s = l->segment[(size_t)y * l->width + x];
            if (s == 0 || s > l->n_segments || cx < 0 || cy < 0 || cx >= (long)c->width || cy >= (long)c->height)
                continue;
            spots[s - 1].sx += x;
            spots[s - 1].sy += y;
            spots[s - 1].n++;
            uint8_t *p = c->rgb + 3 * ((size_t)cy * c->width + (size_t)cx);
            if (on_edge(l, x, y)) {
                memset(p, 255, 3);
                continue;
            }
            for (int k = 0; k < 3; k++)
                p[k] = (uint8_t)((p[k] * (256 - a) + l->color[s - 1][k] * a) >> 8);
        }
    for (size_t s = 0; s < l->n_segments; s++)
        spots[s].best = -1;
    if (font && l->label)
        draw_labels(c, x0, y0, l, spots, font, min_label_area);
    free(spots);
    return 0;
}
