/* png_fast.c: the common panoptic PNG (8-bit RGB or RGBA, not interlaced) decoded with
 * libdeflate instead of zlib, which inflates several times faster; libpng reads
 * everything else. Chunk CRCs and the zlib checksum are verified as libpng does; rows are
 * unfiltered one at a time as they are asked for. */
#include "png_fast.h"

#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void png_fast_release(png_fast *f) {
    free(f->pixels);
    free(f->prev);
    memset(f, 0, sizeof *f);
}

/* Walks the chunks: IHDR first, IDATs gathered, every CRC checked, IEND last. Returns 1
 * with the zlib stream in *z when the image is one we decode, 0 when libpng should. */
static int gather_idat(const uint8_t *d, size_t n, png_fast *f, uint8_t **z, size_t *zlen, const char **why) {
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (n < 8 + 25 || memcmp(d, sig, 8) != 0 || be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
        return 0;
    const uint8_t *h = d + 16;
    f->width = be32(h);
    f->height = be32(h + 4);
    if (h[8] != 8 || (h[9] != 2 && h[9] != 6) || h[12] != 0 || f->width == 0 || f->height == 0 ||
        (uint64_t)f->width * f->height > ((uint64_t)1 << 31))
        return 0;
    f->bpp = h[9] == 2 ? 3 : 4;
    *z = malloc(n);
    if (!*z)
        return *why = "out of memory", -1;
    *zlen = 0;
    for (size_t p = 8;;) {
        if (p + 12 > n)
            return *why = "truncated file", -1;
        uint32_t len = be32(d + p);
        if (len > n - p - 12)
            return *why = "truncated chunk", -1;
        if (libdeflate_crc32(0, d + p + 4, len + 4) != be32(d + p + 8 + len))
            return *why = "CRC error", -1;
        if (memcmp(d + p + 4, "IDAT", 4) == 0) {
            memcpy(*z + *zlen, d + p + 8, len);
            *zlen += len;
        } else if (memcmp(d + p + 4, "IEND", 4) == 0) {
            return 1;
        }
        p += 12 + len;
    }
}

int png_fast_open(const uint8_t *data, size_t n, png_fast *f, const char **why) {
    uint8_t *z = NULL;
    size_t zlen = 0;
    memset(f, 0, sizeof *f);
    int rc = gather_idat(data, n, f, &z, &zlen, why);
    if (rc == 1) {
        size_t stride = (size_t)f->width * f->bpp, size = (stride + 1) * f->height, got = 0;
        /* deflate expands at most 1032-fold: refuse a header its data cannot fill
         * before sizing the buffer from it */
        if (size / 1032 > zlen + 16) {
            free(z);
            png_fast_release(f);
            return *why = "the image data is too short for the header's size", -1;
        }
        struct libdeflate_decompressor *dec = libdeflate_alloc_decompressor();
        f->pixels = malloc(size);
        f->prev = calloc(stride, 1);
        if (!dec || !f->pixels || !f->prev)
            *why = "out of memory", rc = -1;
        else if (libdeflate_zlib_decompress(dec, z, zlen, f->pixels, size, &got) != LIBDEFLATE_SUCCESS ||
                 got != size)
            *why = "bad image data", rc = -1;
        libdeflate_free_decompressor(dec);
    }
    free(z);
    if (rc != 1)
        png_fast_release(f);
    return rc;
}

static uint8_t paeth(uint8_t a, uint8_t b, uint8_t c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Undoes the row's filter in place (prev holds the previous unfiltered row). */
static int unfilter(uint8_t *row, const uint8_t *prev, size_t stride, unsigned bpp, int type) {
    size_t i;
    switch (type) {
    case 0:
        return 0;
    case 1:
        for (i = bpp; i < stride; i++)
            row[i] = (uint8_t)(row[i] + row[i - bpp]);
        return 0;
    case 2:
        for (i = 0; i < stride; i++)
            row[i] = (uint8_t)(row[i] + prev[i]);
        return 0;
    case 3:
        for (i = 0; i < stride; i++)
            row[i] = (uint8_t)(row[i] + ((i >= bpp ? row[i - bpp] : 0) + prev[i]) / 2);
        return 0;
    case 4:
        for (i = 0; i < bpp; i++)
            row[i] = (uint8_t)(row[i] + prev[i]);
        for (; i < stride; i++)
            row[i] = (uint8_t)(row[i] + paeth(row[i - bpp], prev[i], prev[i - bpp]));
        return 0;
    }
    return -1;
}

int png_fast_read_row(png_fast *f, uint8_t *rgb) {
    size_t stride = (size_t)f->width * f->bpp;
    uint8_t *row = f->pixels + (size_t)f->next_row * (stride + 1);
    if (f->next_row >= f->height || unfilter(row + 1, f->prev, stride, f->bpp, row[0]) != 0)
        return -1;
    memcpy(f->prev, row + 1, stride);
    if (f->bpp == 3) {
        memcpy(rgb, row + 1, stride);
    } else {
        for (uint32_t x = 0; x < f->width; x++)
            memcpy(rgb + 3 * x, row + 1 + 4 * x, 3);
    }
    f->next_row++;
    return 0;
}
