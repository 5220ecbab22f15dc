/* png_tool: data/png_io.c's panoptic PNG reader from the command line, for the Pillow
 * cross-checks of tests/test_png_modes.sh. For each PNG given, writes PNG.fast.rgb (read
 * as avps reads it: libdeflate where it can, else libpng) and PNG.libpng.rgb (always
 * libpng): "P6 W H 255\n" and the 8-bit RGB rows (a binary PPM), or, when the reader
 * refuses the file, PNG.<path>.err holding the message. Exit 1 only if a file cannot be
 * written. */
#include "../data/data.h"

#include <stdio.h>
#include <stdlib.h>

static int save_error(const char *out, const char *msg) {
    FILE *fp = fopen(out, "w");
    if (!fp)
        return -1;
    fprintf(fp, "%s\n", msg);
    return fclose(fp);
}

static int read_into(png_reader *r, FILE *fp, avps_error *err) {
    uint32_t w = png_reader_width(r), h = png_reader_height(r);
    uint8_t *row = malloc((size_t)w * 3 + 1);
    if (!row)
        return avps_fail(err, "out of memory");
    fprintf(fp, "P6 %u %u 255\n", w, h);
    int rc = 0;
    for (uint32_t y = 0; y < h && rc == 0; y++)
        if ((rc = png_reader_read_row(r, row, err)) == 0 && fwrite(row, 3, w, fp) != w)
            rc = avps_fail(err, "short write");
    free(row);
    return rc;
}

/* One path: name is "fast" or "libpng". */
static int convert(const char *png, const char *name, int libpng_only) {
    char out[4096], err_out[4096];
    snprintf(out, sizeof out, "%s.%s.rgb", png, name);
    snprintf(err_out, sizeof err_out, "%s.%s.err", png, name);
    avps_error err = {0};
    png_reader *r = libpng_only ? png_reader_open_libpng(png, 0, 0, &err) : png_reader_open(png, &err);
    if (!r)
        return save_error(err_out, err.msg);
    FILE *fp = fopen(out, "wb");
    if (!fp) {
        png_reader_free(r);
        return -1;
    }
    int rc = read_into(r, fp, &err);
    png_reader_free(r);
    if (fclose(fp) != 0)
        return -1;
    if (rc != 0) {
        remove(out);
        return save_error(err_out, err.msg);
    }
    return 0;
}

int main(int argc, char **argv) {
    int status = 0;
    for (int i = 1; i < argc; i++)
        if (convert(argv[i], "fast", 0) != 0 || convert(argv[i], "libpng", 1) != 0) {
            fprintf(stderr, "png_tool: cannot write the outputs of %s\n", argv[i]);
            status = 1;
        }
    return status;
}
