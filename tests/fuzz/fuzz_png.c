/* fuzz_png.c: panoptic PNG reading (data/png_io.c): both paths, png_fast (8-bit RGB/RGBA,
 * not interlaced) and libpng (every other colour type, depth, tRNS, Adam7), every row; the
 * two paths must agree on every file both decode. */
#include "../../data/data.h"
#include "fuzz.h"

/* Every row, through png_reader_next_row (in_place) or png_reader_read_row; returns the
 * whole image when every row decoded, else NULL. */
static uint8_t *read_all(png_reader *r, int in_place) {
    avps_error err;
    uint32_t w = png_reader_width(r), h = png_reader_height(r);
    FUZZ_ASSERT((uint64_t)w * h <= ((uint64_t)1 << 31));
    size_t stride = (size_t)w * 3;
    /* exactly 3 bytes a pixel (and the slack byte): a row written past it is an ASan finding */
    uint8_t *row = malloc(stride + 1), *image = malloc(stride * h + 1);
    FUZZ_ASSERT(row && image);
    uint32_t y = 0;
    for (; y < h; y++) {
        const uint8_t *got = row;
        if (in_place ? !(got = png_reader_next_row(r, row, &err)) : png_reader_read_row(r, row, &err) != 0)
            break;
        /* the byte after an in-place row can be read */
        volatile uint8_t slack = got[stride];
        (void)slack;
        memcpy(image + (size_t)y * stride, got, stride);
    }
    free(row);
    if (y < h) {
        free(image);
        return NULL;
    }
    return image;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "in.png", data, size);
    uint8_t *fast = NULL, *slow = NULL;
    uint32_t w = 0, h = 0;
    png_reader *r = png_reader_open(path, &err);
    if (r) {
        w = png_reader_width(r), h = png_reader_height(r);
        fast = read_all(r, 1);
        png_reader_free(r);
    }
    /* libpng's path on what the libdeflate path reads too: where both decode every row,
     * the same pixels */
    r = png_reader_open_libpng(path, 0, 0, &err);
    if (r) {
        slow = read_all(r, 0);
        if (fast && slow) {
            FUZZ_ASSERT(png_reader_width(r) == w && png_reader_height(r) == h);
            FUZZ_ASSERT(memcmp(fast, slow, (size_t)w * h * 3) == 0);
        }
        png_reader_free(r);
    }
    free(fast);
    free(slow);
    /* the sized open refuses another size before allocating */
    r = png_reader_open_sized(path, 3, 2, &err);
    if (r) {
        FUZZ_ASSERT(png_reader_width(r) == 3 && png_reader_height(r) == 2);
        free(read_all(r, 0));
        png_reader_free(r);
    }
    unlink(path);
    return 0;
}
