/* image.c: the native engine's input images, PNG (data/'s png_reader, libpng) or JPEG
 * (libjpeg-turbo), told apart by their first bytes and decoded to 8-bit RGB. */
#include "../nn.h"

#include <errno.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_MAX_PIXELS ((size_t)1 << 28)

static int read_png(const char *path, uint8_t **rgb, uint32_t *w, uint32_t *h, avps_error *err) {
    png_reader *r = png_reader_open(path, err);
    if (!r)
        return -1;
    *w = png_reader_width(r), *h = png_reader_height(r);
    if ((size_t)*w * *h > IMAGE_MAX_PIXELS || !*w || !*h) {
        png_reader_free(r);
        return avps_fail(err, "%s: image of %ux%u pixels is empty or too large", path, *w, *h);
    }
    if (!(*rgb = malloc((size_t)*w * *h * 3))) {
        png_reader_free(r);
        return avps_fail(err, "%s: out of memory", path);
    }
    for (uint32_t y = 0; y < *h; y++)
        if (png_reader_read_row(r, *rgb + (size_t)y * *w * 3, err) != 0) {
            free(*rgb), *rgb = NULL;
            png_reader_free(r);
            return -1;
        }
    png_reader_free(r);
    return 0;
}

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    f->base.format_message(cinfo, f->msg);
    longjmp(f->jump, 1);
}

/* A warning (corrupt or truncated data, which libjpeg would fill with grey) is an
 * error too: silently wrong pixels are worse than none. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0)
        jpeg_on_error(cinfo);
}

/* libjpeg reports errors by longjmp; everything it allocated is freed by
 * jpeg_destroy_decompress, and the pixel buffer is freed here. */
static int read_jpeg(const char *path, FILE *fp, uint8_t **rgb, uint32_t *w, uint32_t *h, avps_error *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    uint8_t *volatile pixels = NULL;
    cinfo.err = jpeg_std_error(&fail.base);
    fail.base.error_exit = jpeg_on_error;
    fail.base.emit_message = jpeg_on_message;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return avps_fail(err, "%s: bad JPEG: %s", path, fail.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    *w = cinfo.output_width, *h = cinfo.output_height;
    if ((size_t)*w * *h > IMAGE_MAX_PIXELS || cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return avps_fail(err, "%s: JPEG of %ux%u pixels is too large or not colour", path, *w, *h);
    }
    if (!(pixels = malloc((size_t)*w * *h * 3))) {
        jpeg_destroy_decompress(&cinfo);
        return avps_fail(err, "%s: out of memory", path);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * *w * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *rgb = pixels;
    return 0;
}

int nn_image_read(const char *path, uint8_t **rgb, uint32_t *w, uint32_t *h, avps_error *err) {
    *rgb = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return avps_fail(err, "%s: cannot open image: %s", path, strerror(errno));
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, fp);
    int rc;
    if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
        rewind(fp);
        rc = read_jpeg(path, fp, rgb, w, h, err);
    } else if (got == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) {
        rc = read_png(path, rgb, w, h, err);
    } else {
        rc = avps_fail(err, "%s: not a PNG or JPEG image", path);
    }
    fclose(fp);
    return rc;
}
