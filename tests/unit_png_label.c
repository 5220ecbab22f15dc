/* unit_png_label: label-map PNGs read as their values (png_label_*, data/png_io.c), on
 * files written here with libpng in every colour type and depth a label map comes in,
 * plain and Adam7-interlaced (which Pillow cannot write): each must read back as the
 * values written, 16-bit ones whole; a non-grey RGB pixel and a wrong size are refused. */
#include "../data/data.h"
#include "check.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W 37
#define H 23

/* The value of pixel (x, y) for a map of `bits` bits per value. */
static uint16_t value_at(uint32_t x, uint32_t y, int bits) {
    uint32_t v = (x * 7919u + y * 104729u + x * y) % (1u << bits);
    return (uint16_t)v;
}

/* Writes a W x H PNG of the given type and depth, each sample from value_at (RGB: the
 * value thrice, alpha: anything), with gray_break set: pixel (3, 2)'s green off by one. */
static int write_png(const char *path, int type, int depth, int interlace, int gray_break) {
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!fp || !info || setjmp(png_jmpbuf(png)))
        return -1;
    png_init_io(png, fp);
    png_set_IHDR(png, info, W, H, depth, type, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < 256; i++)
            pal[i] = (png_color){(png_byte)(i * 37), (png_byte)(255 - i), (png_byte)(i * 11)}; /* not grey */
        png_set_PLTE(png, info, pal, 1 << depth);
        png_byte trns[1] = {0};
        png_set_tRNS(png, info, trns, 1, NULL);
    }
    png_write_info(png, info);
    int channels = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGBA ? 4 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t bytes_per = depth == 16 ? 2 : 1;
    png_bytep *rows = calloc(H, sizeof *rows);
    for (uint32_t y = 0; y < H; y++) {
        rows[y] = calloc((size_t)W * channels * bytes_per + 1, 1);
        for (uint32_t x = 0; x < W; x++) {
            uint16_t v = value_at(x, y, depth);
            for (int c = 0; c < channels; c++) {
                uint16_t s = c == 3 || (c == 1 && channels == 2) ? 12345 % (1u << depth) : v;
                if (gray_break && c == 1 && channels >= 3 && x == 3 && y == 2)
                    s ^= 1;
                if (depth == 16) {
                    rows[y][(x * channels + c) * 2] = (png_byte)(s >> 8);
                    rows[y][(x * channels + c) * 2 + 1] = (png_byte)s;
                } else if (depth == 8) {
                    rows[y][x * channels + c] = (png_byte)s;
                } else { /* packed, big-endian within the byte */
                    size_t bit = (size_t)x * depth;
                    rows[y][bit / 8] |= (png_byte)(s << (8 - depth - bit % 8));
                }
            }
        }
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(fp);
    for (uint32_t y = 0; y < H; y++)
        free(rows[y]);
    free(rows);
    return 0;
}

static int reads_back(const char *path, int depth, avps_error *err) {
    png_label_reader *r = png_label_open(path, W, H, err);
    if (!r)
        return 0;
    uint16_t row[W];
    int same = png_label_width(r) == W && png_label_height(r) == H && png_label_depth(r) == (unsigned)depth;
    for (uint32_t y = 0; same && y < H; y++) {
        if (png_label_read_row(r, row, err) != 0)
            same = 0;
        for (uint32_t x = 0; same && x < W; x++)
            same = row[x] == value_at(x, y, depth);
    }
    png_label_free(r);
    return same;
}

int main(void) {
    check_tally tally = {0}, *t = &tally;
    char path[] = "/tmp/avps_pnglabel_XXXXXX";
    int fd = mkstemp(path);
    CHECK(t, fd >= 0);
    close(fd);
    static const struct { int type, depth; } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, 1}, {PNG_COLOR_TYPE_GRAY, 2}, {PNG_COLOR_TYPE_GRAY, 4}, {PNG_COLOR_TYPE_GRAY, 8},
        {PNG_COLOR_TYPE_GRAY, 16}, {PNG_COLOR_TYPE_PALETTE, 1}, {PNG_COLOR_TYPE_PALETTE, 4},
        {PNG_COLOR_TYPE_PALETTE, 8}, {PNG_COLOR_TYPE_GRAY_ALPHA, 8}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16},
        {PNG_COLOR_TYPE_RGB, 8}, {PNG_COLOR_TYPE_RGB, 16}, {PNG_COLOR_TYPE_RGBA, 8}, {PNG_COLOR_TYPE_RGBA, 16}};
    avps_error err;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int interlace = 0; interlace < 2; interlace++) {
            CHECK(t, write_png(path, kinds[k].type, kinds[k].depth, interlace, 0) == 0);
            int ok = reads_back(path, kinds[k].depth, &err);
            if (!ok)
                fprintf(stderr, "type %d depth %d interlace %d: %s\n", kinds[k].type, kinds[k].depth, interlace, err.msg);
            CHECK(t, ok);
        }
    for (int interlace = 0; interlace < 2; interlace++) {
        CHECK(t, write_png(path, PNG_COLOR_TYPE_RGB, 16, interlace, 1) == 0);
        CHECK(t, !reads_back(path, 16, &err) && strstr(err.msg, "pixel (3, 2) is not grey"));
    }
    CHECK(t, write_png(path, PNG_COLOR_TYPE_GRAY, 16, 0, 0) == 0);
    CHECK(t, png_label_open(path, W + 1, H, &err) == NULL && strstr(err.msg, "but 38x23 is expected"));
    unlink(path);
    CHECK(t, png_label_open(path, W, H, &err) == NULL && strstr(err.msg, path));
    return check_report(t);
}
