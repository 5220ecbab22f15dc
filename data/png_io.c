/* png_io.c: panoptic PNGs through libpng, read one row at a time (interlaced images,
 * which cannot be streamed, are decoded whole) and written atomically. */
#include "data.h"
#include "png_fast.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct png_reader {
    FILE *fp;
    char *path;
    png_structp png;
    png_infop info;
    uint32_t width, height, next_row;
    uint8_t *whole; /* the decoded image, for interlaced files only */
    png_bytep *rows; /* row pointers into whole */
    char libpng_msg[256];
    int fast;      /* decoded by png_fast */
    unsigned source_depth; /* bits per sample in the file, before conversion to RGB8 */
    int indexed;           /* palette image: rows read as indexes, coloured here */
    int colours;           /* entries of its PLTE */
    png_color palette[256];
    png_fast fast_image;
};

static void on_png_error(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->libpng_msg, sizeof r->libpng_msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png; /* a bad colour profile or the like does not change the ids */
    (void)msg;
}

/* Converts whatever the file holds to 8-bit RGB, as PIL's RGB view does, except palette
 * images: those are read as one index a byte and coloured by palette_to_rgb, since libpng
 * colours an index past the PLTE's end black (and Pillow grey). A tRNS chunk is left
 * alone (panopticapi ignores transparency); only a real alpha channel is stripped. */
static int set_rgb8_transforms(png_reader *r) {
    png_structp png = r->png;
    int type = png_get_color_type(png, r->info);
    if (png_get_bit_depth(png, r->info) == 16)
        png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp palette;
        if (png_get_PLTE(png, r->info, &palette, &r->colours) == 0 || r->colours > 256)
            return -1;
        memcpy(r->palette, palette, (size_t)r->colours * sizeof *palette);
        png_set_packing(png);
        r->indexed = 1;
    }
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    if (type & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    return 0;
}

/* A row of width indexes, one a byte, made RGB in place (from the end, so no index is
 * overwritten before it is read). An index past the PLTE's end is an error in a PNG. */
static int palette_to_rgb(const png_reader *r, uint8_t *row, uint32_t y, avps_error *err) {
    for (uint32_t x = r->width; x-- > 0;) {
        unsigned i = row[x];
        if ((int)i >= r->colours)
            return avps_fail(err, "%s: corrupt PNG at row %u: palette index %u past the palette's %d colours",
                             r->path, y, i, r->colours);
        row[3 * (size_t)x] = r->palette[i].red;
        row[3 * (size_t)x + 1] = r->palette[i].green;
        row[3 * (size_t)x + 2] = r->palette[i].blue;
    }
    return 0;
}

static int reader_start(png_reader *r, avps_error *err) {
    if (setjmp(png_jmpbuf(r->png)))
        return avps_fail(err, "%s: corrupt PNG: %s", r->path, r->libpng_msg);
    png_init_io(r->png, r->fp);
#ifdef PNG_IGNORE_ADLER32
    /* The Adler-32 of the zlib stream costs a tenth of the decoding and guards what each
     * chunk's CRC, still checked, already guards. */
    png_set_option(r->png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    png_read_info(r->png, r->info);
    r->width = png_get_image_width(r->png, r->info);
    r->height = png_get_image_height(r->png, r->info);
    if ((uint64_t)r->width * r->height > ((uint64_t)1 << 31))
        return avps_fail(err, "%s: image of %ux%u pixels is too large", r->path, r->width, r->height);
    /* Pillow opens 16-bit grey as 32-bit integers and clips them to 255 as RGB, and
     * panopticapi's rgb2id cannot take grey at all: no reading of it keeps the values. */
    if (png_get_color_type(r->png, r->info) == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(r->png, r->info) == 16)
        return avps_fail(err, "%s: 16-bit grey PNG: panoptic ids are 8-bit RGB colours (Pillow would clip "
                              "every value above 255); write the ids as RGB", r->path);
    if (set_rgb8_transforms(r) != 0)
        return avps_fail(err, "%s: corrupt PNG: a palette image without its palette", r->path);
    int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    /* Rows are read into width * 3 bytes: refuse any layout the transforms did not make RGB8
     * (or, for a palette image, one index a byte). */
    unsigned channels = r->indexed ? 1 : 3;
    if (png_get_channels(r->png, r->info) != channels || png_get_bit_depth(r->png, r->info) != 8 ||
        png_get_rowbytes(r->png, r->info) != (size_t)r->width * channels)
        return avps_fail(err, "%s: PNG layout not read as 8-bit RGB (colour type %d)", r->path,
                         png_get_color_type(r->png, r->info));
    if (passes > 1) {
        size_t stride = (size_t)r->width * 3;
        r->whole = malloc(stride * r->height);
        r->rows = malloc(r->height * sizeof *r->rows);
        if (!r->whole || !r->rows)
            return avps_fail(err, "%s: out of memory", r->path);
        for (uint32_t y = 0; y < r->height; y++)
            r->rows[y] = r->whole + y * stride;
        png_read_image(r->png, r->rows);
        for (uint32_t y = 0; y < r->height && r->indexed; y++)
            if (palette_to_rgb(r, r->rows[y], y, err) != 0)
                return -1;
    }
    return 0;
}

/* Deflate expands at most 1032-fold (a 258-byte match in two bits), so a file of n bytes
 * holds at most about 1032 n bytes of filtered rows: a header claiming more is refused
 * before anything is sized from it. */
#define PNG_MAX_INFLATE_RATIO 1032

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the IHDR of a PNG's bytes against the expected size (0 x 0: any) and against what
 * the file's length can decode to. Files without the PNG signature are left to the
 * decoders, which refuse them; a PNG whose first chunk is not IHDR (as the format requires)
 * is refused here, since libpng skips chunks before a later IHDR that was never checked. */
static int check_header(const char *path, const uint8_t *d, size_t n, uint32_t want_w, uint32_t want_h,
                        unsigned *source_depth, avps_error *err) {
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (n < 8 || memcmp(d, sig, 8) != 0)
        return 0;
    if (n < 8 + 25 || be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4) != 0)
        return avps_fail(err, "%s: corrupt PNG: the first chunk is not a 13-byte IHDR", path);
    uint32_t w = be32(d + 16), h = be32(d + 20);
    unsigned depth = d[24], type = d[25];
    *source_depth = depth;
    unsigned channels = type == 2 ? 3 : type == 4 ? 2 : type == 6 ? 4 : 1;
    if ((want_w || want_h) && (w != want_w || h != want_h))
        return avps_fail(err, "%s: the PNG is %ux%u, but %ux%u is expected", path, w, h, want_w, want_h);
    uint64_t raw = (uint64_t)w * h * channels * (depth > 16 ? 16 : depth) / 8;
    if (raw > (uint64_t)n * PNG_MAX_INFLATE_RATIO + 4096)
        return avps_fail(err, "%s: corrupt PNG: the header claims %ux%u pixels, more than its %zu bytes can hold",
                         path, w, h, n);
    if ((uint64_t)w * h > ((uint64_t)1 << 31))
        return avps_fail(err, "%s: image of %ux%u pixels is too large", path, w, h);
    return 0;
}

png_reader *png_reader_open(const char *path, avps_error *err) {
    return png_reader_open_sized(path, 0, 0, err);
}

static png_reader *reader_open(const char *path, uint32_t want_w, uint32_t want_h, int try_fast, png_buffer *keep,
                               avps_error *err) {
    png_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        avps_fail(err, "%s: out of memory", path);
        return NULL;
    }
    size_t len;
    uint8_t *bytes = (uint8_t *)file_read_all(path, &len, err);
    if (!bytes) {
        avps_fail(err, "%s: cannot open the PNG", path);
        png_reader_free(r);
        return NULL;
    }
    if (check_header(path, bytes, len, want_w, want_h, &r->source_depth, err) != 0) {
        free(bytes);
        png_reader_free(r);
        return NULL;
    }
    const char *why = NULL;
    int fast = try_fast ? png_fast_open(bytes, len, &r->fast_image, keep, &why) : 0;
    free(bytes);
    if (fast != 0) {
        if (fast < 0) {
            avps_fail(err, "%s: corrupt PNG: %s", path, why);
            png_reader_free(r);
            return NULL;
        }
        r->fast = 1;
        r->width = r->fast_image.width;
        r->height = r->fast_image.height;
        return r;
    }
    r->fp = fopen(path, "rb");
    if (!r->fp) {
        avps_fail(err, "%s: cannot open the PNG", path);
        png_reader_free(r);
        return NULL;
    }
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_png_error, on_png_warning);
    r->info = r->png ? png_create_info_struct(r->png) : NULL;
    if (!r->info) {
        avps_fail(err, "%s: out of memory", path);
        png_reader_free(r);
        return NULL;
    }
    if (reader_start(r, err) != 0) {
        png_reader_free(r);
        return NULL;
    }
    return r;
}

png_reader *png_reader_open_sized(const char *path, uint32_t want_w, uint32_t want_h, avps_error *err) {
    return reader_open(path, want_w, want_h, 1, NULL, err);
}

png_reader *png_reader_open_buffered(const char *path, uint32_t want_w, uint32_t want_h, png_buffer *keep,
                                     avps_error *err) {
    return reader_open(path, want_w, want_h, 1, keep, err);
}

png_reader *png_reader_open_libpng(const char *path, uint32_t want_w, uint32_t want_h, avps_error *err) {
    return reader_open(path, want_w, want_h, 0, NULL, err);
}

void png_buffer_release(png_buffer *keep) {
    free(keep->bytes);
    keep->bytes = NULL;
    keep->cap = 0;
}

uint32_t png_reader_width(const png_reader *r) { return r->width; }
uint32_t png_reader_height(const png_reader *r) { return r->height; }
unsigned png_reader_source_depth(const png_reader *r) { return r->source_depth; }

const uint8_t *png_reader_next_row(png_reader *r, uint8_t *rgb, avps_error *err) {
    if (r->next_row >= r->height) {
        avps_fail(err, "%s: read past the last row", r->path);
        return NULL;
    }
    if (r->fast) {
        const uint8_t *row = png_fast_next_row(&r->fast_image, rgb);
        if (!row)
            avps_fail(err, "%s: corrupt PNG at row %u: unknown filter", r->path, r->next_row);
        r->next_row++;
        return row;
    }
    if (r->whole) {
        memcpy(rgb, r->whole + (size_t)r->next_row++ * r->width * 3, (size_t)r->width * 3);
        return rgb;
    }
    if (setjmp(png_jmpbuf(r->png))) {
        avps_fail(err, "%s: corrupt PNG at row %u: %s", r->path, r->next_row, r->libpng_msg);
        return NULL;
    }
    png_read_row(r->png, rgb, NULL);
    r->next_row++;
    return !r->indexed || palette_to_rgb(r, rgb, r->next_row - 1, err) == 0 ? rgb : NULL;
}

int png_reader_read_row(png_reader *r, uint8_t *rgb, avps_error *err) {
    const uint8_t *row = png_reader_next_row(r, rgb, err);
    if (!row)
        return -1;
    if (row != rgb)
        memcpy(rgb, row, (size_t)r->width * 3);
    return 0;
}

void png_reader_free(png_reader *r) {
    if (!r)
        return;
    if (r->png)
        png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    if (r->fp)
        fclose(r->fp);
    png_fast_release(&r->fast_image);
    free(r->whole);
    free(r->rows);
    free(r->path);
    free(r);
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct {
    char libpng_msg[256];
} png_write_state;

static void on_png_write_error(png_structp png, png_const_charp msg) {
    png_write_state *st = png_get_error_ptr(png);
    snprintf(st->libpng_msg, sizeof st->libpng_msg, "%s", msg);
    png_longjmp(png, 1);
}

/* channels: 3 (RGB) or 1 (grey), 8 bits each. */
static int png_encode(FILE *fp, uint32_t width, uint32_t height, int channels, const uint8_t *pixels,
                      png_write_state *st) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, st, on_png_write_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(st->libpng_msg, sizeof st->libpng_msg, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * width * (size_t)channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static int png_write(const char *path, uint32_t width, uint32_t height, int channels, const uint8_t *pixels,
                     avps_error *err) {
    atomic_file af;
    png_write_state st = {{0}};
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    if (png_encode(af.fp, width, height, channels, pixels, &st) != 0) {
        file_atomic_abort(&af);
        return avps_fail(err, "%s: cannot write the PNG: %s", path, st.libpng_msg);
    }
    return file_atomic_commit(&af, err);
}

int png_write_rgb(const char *path, uint32_t width, uint32_t height, const uint8_t *rgb, avps_error *err) {
    return png_write(path, width, height, 3, rgb, err);
}

int png_write_ids(const char *path, uint32_t width, uint32_t height, const uint32_t *ids, avps_error *err) {
    size_t npix = (size_t)width * height;
    uint8_t *rgb = malloc(npix * 3 + 1);
    if (!rgb)
        return avps_fail(err, "%s: out of memory", path);
    for (size_t i = 0; i < npix; i++)
        id_to_rgb(ids[i], rgb + 3 * i);
    int rc = png_write_rgb(path, width, height, rgb, err);
    free(rgb);
    return rc;
}

int png_write_gray(const char *path, uint32_t width, uint32_t height, const uint8_t *gray, avps_error *err) {
    return png_write(path, width, height, 1, gray, err);
}

/* ---- label maps read as their values ------------------------------------------------
 * Semantic label maps are not colours: a 16-bit grey map holds category ids whole and a
 * palette map holds them as indexes, so neither goes through the RGB8 conversion above. */

struct png_label_reader {
    FILE *fp;
    char *path;
    png_structp png;
    png_infop info;
    uint32_t width, height, next_row;
    int color_type;
    unsigned depth, channels, bytes; /* after unpacking: samples per pixel, bytes per sample */
    uint8_t *raw;                    /* one row, or the whole image when interlaced */
    png_bytep *rows;
    char libpng_msg[256];
};

static void on_label_error(png_structp png, png_const_charp msg) {
    png_label_reader *r = png_get_error_ptr(png);
    snprintf(r->libpng_msg, sizeof r->libpng_msg, "%s", msg);
    png_longjmp(png, 1);
}

void png_label_free(png_label_reader *r) {
    if (!r)
        return;
    png_destroy_read_struct(&r->png, &r->info, NULL);
    if (r->fp)
        fclose(r->fp);
    free(r->raw);
    free(r->rows);
    free(r->path);
    free(r);
}

static int label_start(png_label_reader *r, avps_error *err) {
    if (setjmp(png_jmpbuf(r->png)))
        return avps_fail(err, "%s: corrupt PNG: %s", r->path, r->libpng_msg);
    png_init_io(r->png, r->fp);
    png_read_info(r->png, r->info);
    r->width = png_get_image_width(r->png, r->info);
    r->height = png_get_image_height(r->png, r->info);
    r->color_type = png_get_color_type(r->png, r->info);
    r->depth = png_get_bit_depth(r->png, r->info);
    if (r->depth < 8)
        png_set_packing(r->png); /* one byte per sample, the value kept (not scaled) */
    int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    r->channels = png_get_channels(r->png, r->info);
    r->bytes = png_get_bit_depth(r->png, r->info) == 16 ? 2 : 1;
    size_t stride = (size_t)r->width * r->channels * r->bytes;
    if (png_get_rowbytes(r->png, r->info) != stride || r->channels < 1 || r->channels > 4)
        return avps_fail(err, "%s: PNG layout not read as a label map (colour type %d)", r->path, r->color_type);
    size_t n_rows = passes > 1 ? r->height : 1;
    if (!(r->raw = malloc(stride * n_rows + 1)) || (passes > 1 && !(r->rows = malloc(r->height * sizeof *r->rows))))
        return avps_fail(err, "%s: out of memory", r->path);
    if (passes > 1) {
        for (uint32_t y = 0; y < r->height; y++)
            r->rows[y] = r->raw + y * stride;
        png_read_image(r->png, r->rows);
    }
    return 0;
}

png_label_reader *png_label_open(const char *path, uint32_t want_w, uint32_t want_h, avps_error *err) {
    png_label_reader *r = calloc(1, sizeof *r);
    size_t len = 0;
    uint8_t *bytes = r && (r->path = strdup(path)) ? (uint8_t *)file_read_all(path, &len, err) : NULL;
    unsigned depth = 0;
    int rc = 0;
    if (!r || !r->path)
        rc = avps_fail(err, "%s: out of memory", path);
    else if (!bytes)
        rc = avps_fail(err, "%s: cannot open the PNG", path);
    else
        rc = check_header(path, bytes, len, want_w, want_h, &depth, err);
    free(bytes);
    if (rc == 0 && !(r->fp = fopen(path, "rb")))
        rc = avps_fail(err, "%s: cannot open the PNG", path);
    if (rc == 0) {
        r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_label_error, on_png_warning);
        r->info = r->png ? png_create_info_struct(r->png) : NULL;
        rc = r->info ? label_start(r, err) : avps_fail(err, "%s: out of memory", path);
    }
    if (rc == 0 && (want_w || want_h) && (r->width != want_w || r->height != want_h))
        rc = avps_fail(err, "%s: the PNG is %ux%u, but %ux%u is expected", path, r->width, r->height, want_w, want_h);
    if (rc != 0) {
        png_label_free(r);
        return NULL;
    }
    return r;
}

uint32_t png_label_width(const png_label_reader *r) { return r->width; }
uint32_t png_label_height(const png_label_reader *r) { return r->height; }
int png_label_color_type(const png_label_reader *r) { return r->color_type; }
unsigned png_label_depth(const png_label_reader *r) { return r->depth; }

static uint16_t label_sample(const png_label_reader *r, const uint8_t *row, size_t x, unsigned c) {
    const uint8_t *p = row + (x * r->channels + c) * r->bytes;
    return r->bytes == 2 ? (uint16_t)(p[0] << 8 | p[1]) : p[0]; /* PNG samples are big-endian */
}

int png_label_read_row(png_label_reader *r, uint16_t *row, avps_error *err) {
    if (r->next_row >= r->height)
        return avps_fail(err, "%s: read past the last row", r->path);
    uint8_t *raw = r->rows ? r->rows[r->next_row] : r->raw;
    if (!r->rows) {
        if (setjmp(png_jmpbuf(r->png)))
            return avps_fail(err, "%s: corrupt PNG: %s", r->path, r->libpng_msg);
        png_read_row(r->png, raw, NULL);
    }
    int rgb = r->color_type & PNG_COLOR_MASK_COLOR && r->color_type != PNG_COLOR_TYPE_PALETTE;
    for (uint32_t x = 0; x < r->width; x++) {
        uint16_t v = label_sample(r, raw, x, 0);
        if (rgb && (label_sample(r, raw, x, 1) != v || label_sample(r, raw, x, 2) != v))
            return avps_fail(err, "%s: pixel (%u, %u) is not grey: a label map holds one value per pixel", r->path, x,
                             r->next_row);
        row[x] = v;
    }
    r->next_row++;
    return 0;
}
