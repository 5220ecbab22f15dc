/* fuzz_png.c: panoptic PNG reading (data/png_io.c): both paths, png_fast (8-bit RGB/RGBA,
 * not interlaced) and libpng (every other colour type, depth, tRNS, Adam7), every row. */
#include "../../data/data.h"
#include "fuzz.h"

static void read_all(png_reader *r) {
    avps_error err;
    uint32_t w = png_reader_width(r), h = png_reader_height(r);
    FUZZ_ASSERT((uint64_t)w * h <= ((uint64_t)1 << 31));
    /* exactly 3 bytes a pixel: a row written past it is an ASan finding */
    uint8_t *row = malloc((size_t)w * 3 + 1);
    FUZZ_ASSERT(row);
    for (uint32_t y = 0; y < h; y++)
        if (png_reader_read_row(r, row, &err) != 0)
            break;
    free(row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "in.png", data, size);
    png_reader *r = png_reader_open(path, &err);
    if (r) {
        read_all(r);
        png_reader_free(r);
    }
    /* libpng's path on what the libdeflate path reads too */
    r = png_reader_open_libpng(path, 0, 0, &err);
    if (r) {
        read_all(r);
        png_reader_free(r);
    }
    /* the sized open refuses another size before allocating */
    r = png_reader_open_sized(path, 3, 2, &err);
    if (r) {
        FUZZ_ASSERT(png_reader_width(r) == 3 && png_reader_height(r) == 2);
        read_all(r);
        png_reader_free(r);
    }
    unlink(path);
    return 0;
}
