/* png_fast.h: private to data/: the libdeflate path of png_reader (see png_fast.c). */
#ifndef AVPS_PNG_FAST_H
#define AVPS_PNG_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"

typedef struct {
    uint32_t width, height, next_row;
    unsigned bpp;     /* 3 (RGB) or 4 (RGBA) */
    uint8_t *pixels;  /* the inflated rows, each with its filter byte; unfiltered up to next_row */
    uint8_t *zero_row; /* what the first row is unfiltered against */
    int pixels_borrowed; /* pixels belong to the caller's png_buffer */
} png_fast;

/* 1: decoded, rows ready; 0: not a kind this path reads (use libpng); -1: corrupt, with
 * the reason in *why. */
int png_fast_open(const uint8_t *data, size_t n, png_fast *f, png_buffer *keep, const char **why);
/* The next row as RGB: in place for RGB files, else converted into rgb; NULL for an
 * unknown filter. */
const uint8_t *png_fast_next_row(png_fast *f, uint8_t *rgb);
void png_fast_release(png_fast *f);

#endif
