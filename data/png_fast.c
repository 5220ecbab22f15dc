/* png_fast.c: the common panoptic PNG (8-bit RGB or RGBA, not interlaced) decoded with
 * libdeflate instead of zlib, which inflates several times faster; libpng reads
 * everything else. Chunk CRCs and the zlib checksum are verified as libpng does; rows are
 * unfiltered in place, one at a time as they are asked for, against the row above them in
 * the same buffer (so no row is copied to be remembered). */
#include "png_fast.h"

#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void png_fast_release(png_fast *f) {
    if (!f->pixels_borrowed)
        free(f->pixels);
    free(f->zero_row);
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

/* The pixel buffer: the caller's, grown if short (its contents need not survive), or one
 * of the image's own. */
static uint8_t *pixel_buffer(png_fast *f, png_buffer *keep, size_t n) {
    if (!keep)
        return malloc(n);
    if (keep->cap < n) {
        free(keep->bytes);
        keep->cap = 0;
        if (!(keep->bytes = malloc(n)))
            return NULL;
        keep->cap = n;
    }
    f->pixels_borrowed = 1;
    return keep->bytes;
}

int png_fast_open(const uint8_t *data, size_t n, png_fast *f, png_buffer *keep, const char **why) {
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
        f->pixels = pixel_buffer(f, keep, size + 4);
        f->zero_row = calloc(stride + 4, 1);
        if (!dec || !f->pixels || !f->zero_row)
            *why = "out of memory", rc = -1;
        else if (libdeflate_zlib_decompress(dec, z, zlen, f->pixels, size, &got) != LIBDEFLATE_SUCCESS ||
                 got != size)
            *why = "bad image data", rc = -1;
        else
            memset(f->pixels + size, 0, 4); /* the slack the last pixel's word reads */
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

/* 16 bytes at a time: the Up filter (two thirds of the rows panopticapi's and PIL's
 * encoders write) is a plain byte-wise add, which the vector unit does 16 lanes wide. */
typedef uint8_t bytes16 __attribute__((vector_size(16)));

static void unfilter_up(uint8_t *row, const uint8_t *above, size_t stride) {
    size_t i = 0;
    for (; i + 16 <= stride; i += 16) {
        bytes16 a, b;
        memcpy(&a, row + i, 16);
        memcpy(&b, above + i, 16);
        a += b;
        memcpy(row + i, &a, 16);
    }
    for (; i < stride; i++)
        row[i] = (uint8_t)(row[i] + above[i]);
}

/* Sub and Paeth depend on the pixel to the left, so they go a pixel at a time, its 3 or 4
 * bytes as the lanes of one 32-bit word. A pixel's word is read 4 bytes wide even when it
 * has 3 (the buffers have 4 bytes of slack) but written as its own bytes only: a store
 * that overlaps the next pixel's load would stall the load until the store retires. */
static uint32_t load4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t load8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void store_pixel(uint8_t *p, uint32_t v, unsigned bpp) {
    if (bpp == 3) {
        uint16_t low = (uint16_t)v;
        memcpy(p, &low, 2);
        p[2] = (uint8_t)(v >> 16);
    } else {
        memcpy(p, &v, 4);
    }
}

/* (a + b) mod 256 in each byte lane. */
static uint32_t add_lanes(uint32_t a, uint32_t b) {
    return ((a & 0x7f7f7f7fu) + (b & 0x7f7f7f7fu)) ^ ((a ^ b) & 0x80808080u);
}

static uint32_t pixel_lanes(unsigned bpp) { return bpp == 3 ? 0xffffffu : 0xffffffffu; }

/* Flat regions, most of a panoptic PNG, filter to zeros under Sub and Paeth, and there
 * the serial chain through the left pixel can be cut: 4 pixels (12 or 16 bytes, a
 * "quad") whose filtered bytes are all zero repeat the pixel on their left (Sub, and
 * Paeth where the row above repeats its own left pixel, which makes Paeth predict left)
 * or copy the row above (Paeth where the left pixel equals the one above-left, which
 * makes it predict above; once copied, that stays true along the quad). Callers keep
 * 16 bytes of the row after i, so the 8-byte loads stay inside it. */
static int quad_is_zero(const uint8_t *p, unsigned bpp) {
    return (load8(p) | (bpp == 3 ? load4(p + 8) : load8(p + 8))) == 0;
}

/* Whether each byte of the quad at p equals the byte one pixel to its left. */
static int quad_repeats_left(const uint8_t *p, unsigned bpp) {
    return load8(p) == load8(p - bpp) && (bpp == 3 ? load4(p + 8) == load4(p + 5) : load8(p + 8) == load8(p + 4));
}

/* Writes pixel (its bpp bytes in the low lanes) 4 times from p. */
static void quad_fill(uint8_t *p, uint32_t pixel, unsigned bpp) {
    if (bpp == 3) {
        uint64_t lanes8 = (uint64_t)pixel * 0x0001000001000001u; /* bytes 0-7 of 3-periodic */
        uint32_t lanes4 = (uint32_t)(lanes8 >> 16);              /* bytes 8-11 = bytes 2-5 */
        memcpy(p, &lanes8, 8);
        memcpy(p + 8, &lanes4, 4);
    } else {
        uint64_t lanes8 = (uint64_t)pixel * 0x0000000100000001u;
        memcpy(p, &lanes8, 8);
        memcpy(p + 8, &lanes8, 8);
    }
}

static void quad_copy(uint8_t *p, const uint8_t *from, unsigned bpp) {
    uint64_t lanes8 = load8(from);
    memcpy(p, &lanes8, 8);
    if (bpp == 3) {
        uint32_t lanes4 = load4(from + 8);
        memcpy(p + 8, &lanes4, 4);
    } else {
        lanes8 = load8(from + 8);
        memcpy(p + 8, &lanes8, 8);
    }
}

static void unfilter_sub(uint8_t *row, size_t stride, unsigned bpp) {
    uint32_t lanes = pixel_lanes(bpp), left = load4(row) & lanes;
    for (size_t i = bpp; i < stride;) {
        if (i + 16 <= stride && quad_is_zero(row + i, bpp)) {
            quad_fill(row + i, left, bpp);
            i += 4 * bpp;
            continue;
        }
        uint32_t out = add_lanes(load4(row + i), left);
        store_pixel(row + i, out, bpp);
        left = out & lanes;
        i += bpp;
    }
}

static uint32_t paeth_lanes(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t v = 0;
    for (int k = 0; k < 32; k += 8)
        v |= (uint32_t)paeth((uint8_t)(a >> k), (uint8_t)(b >> k), (uint8_t)(c >> k)) << k;
    return v;
}

/* Where the pixel above equals the one above-left, Paeth predicts the left pixel; where
 * the left equals the above-left, the one above: in flat regions a pixel costs two
 * comparisons, and a quad of zeros (see quad_is_zero) a few. */
static void unfilter_paeth(uint8_t *row, const uint8_t *above, size_t stride, unsigned bpp) {
    uint32_t lanes = pixel_lanes(bpp), left = add_lanes(load4(row), load4(above) & lanes);
    store_pixel(row, left, bpp);
    left &= lanes;
    for (size_t i = bpp; i < stride;) {
        uint32_t c = load4(above + i - bpp) & lanes;
        if (i + 16 <= stride && quad_is_zero(row + i, bpp)) {
            if (quad_repeats_left(above + i, bpp)) {
                quad_fill(row + i, left, bpp);
                i += 4 * bpp;
                continue;
            }
            if (left == c) {
                quad_copy(row + i, above + i, bpp);
                i += 4 * bpp;
                left = load4(above + i - bpp) & lanes; /* what was copied, read where no store is pending */
                continue;
            }
        }
        uint32_t b = load4(above + i) & lanes;
        uint32_t predicted = b == c ? left : left == c ? b : paeth_lanes(left, b, c);
        uint32_t out = add_lanes(load4(row + i), predicted);
        store_pixel(row + i, out, bpp);
        left = out & lanes;
        i += bpp;
    }
}

/* Undoes the row's filter in place (above: the row above, already unfiltered). */
static int unfilter(uint8_t *row, const uint8_t *above, size_t stride, unsigned bpp, int type) {
    switch (type) {
    case 0:
        return 0;
    case 1:
        unfilter_sub(row, stride, bpp);
        return 0;
    case 2:
        unfilter_up(row, above, stride);
        return 0;
    case 3:
        for (size_t i = 0; i < stride; i++)
            row[i] = (uint8_t)(row[i] + ((i >= bpp ? row[i - bpp] : 0) + above[i]) / 2);
        return 0;
    case 4:
        unfilter_paeth(row, above, stride, bpp);
        return 0;
    }
    return -1;
}

const uint8_t *png_fast_next_row(png_fast *f, uint8_t *rgb) {
    size_t stride = (size_t)f->width * f->bpp;
    if (f->next_row >= f->height)
        return NULL;
    uint8_t *row = f->pixels + (size_t)f->next_row * (stride + 1);
    const uint8_t *above = f->next_row ? row - stride : f->zero_row;
    if (unfilter(row + 1, above, stride, f->bpp, row[0]) != 0)
        return NULL;
    f->next_row++;
    if (f->bpp == 3)
        return row + 1; /* followed by the next row's filter byte or the buffer's slack */
    for (uint32_t x = 0; x < f->width; x++)
        memcpy(rgb + 3 * x, row + 1 + 4 * x, 3);
    return rgb;
}
