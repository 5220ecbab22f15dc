/* fuzz_image.c: the native engine's input images (model/nn/core/image.c): PNG through
 * png_reader, JPEG through libjpeg-turbo, told apart by their first bytes. */
#include "../../model/nn/nn.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    fuzz_write(path, sizeof path, "in.img", data, size);
    if (nn_image_read(path, &rgb, &w, &h, &err) == 0) {
        FUZZ_ASSERT(w > 0 && h > 0 && rgb);
        /* touch the last pixel: the buffer must hold all of them */
        volatile uint8_t last = rgb[(size_t)w * h * 3 - 1];
        (void)last;
        free(rgb);
    }
    unlink(path);
    return 0;
}
