/* image_read.c: the engine's photo reader (nn_image_read) under the module's contract, so
 * that pictures of results are drawn over the very pixels a native head would see. */
#include "model.h"

#include "nn/nn.h"

int model_image_read(const char *path, uint8_t **rgb, uint32_t *w, uint32_t *h, avps_error *err) {
    return nn_image_read(path, rgb, w, h, err);
}
