/* canvas.c: the RGB canvas every picture is drawn on, and its PNG. */
#include "viz.h"

#include <stdlib.h>
#include <string.h>

viz_canvas *viz_canvas_new(uint32_t width, uint32_t height, const uint8_t background[3]) {
    if (width == 0 || height == 0 || width > 1u << 15 || height > 1u << 15)
        return NULL;
    viz_canvas *c = malloc(sizeof *c);
    uint8_t *rgb = malloc((size_t)width * height * 3);
    if (!c || !rgb) {
        free(c);
        free(rgb);
        return NULL;
    }
    *c = (viz_canvas){width, height, rgb};
    for (size_t i = 0; i < (size_t)width * height; i++)
        memcpy(rgb + 3 * i, background, 3);
    return c;
}

void viz_canvas_free(viz_canvas *c) {
    if (c)
        free(c->rgb);
    free(c);
}

void viz_canvas_blit(viz_canvas *c, int x, int y, uint32_t w, uint32_t h, const uint8_t *rgb) {
    for (uint32_t r = 0; r < h; r++) {
        long cy = (long)y + r;
        if (cy < 0 || cy >= (long)c->height)
            continue;
        for (uint32_t q = 0; q < w; q++) {
            long cx = (long)x + q;
            if (cx >= 0 && cx < (long)c->width)
                memcpy(c->rgb + 3 * ((size_t)cy * c->width + (size_t)cx), rgb + 3 * ((size_t)r * w + q), 3);
        }
    }
}

void viz_fill_rect(viz_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]) {
    for (long cy = y < 0 ? 0 : y; cy < (long)y + h && cy < (long)c->height; cy++)
        for (long cx = x < 0 ? 0 : x; cx < (long)x + w && cx < (long)c->width; cx++)
            memcpy(c->rgb + 3 * ((size_t)cy * c->width + (size_t)cx), rgb, 3);
}

int viz_canvas_write_png(const viz_canvas *c, const char *path, avps_error *err) {
    return png_write_rgb(path, c->width, c->height, c->rgb, err);
}
