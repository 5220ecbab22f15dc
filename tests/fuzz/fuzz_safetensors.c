/* fuzz_safetensors.c: safetensors weights (model/nn/core/safetensors.c): the header, its
 * tensors and metadata, and every tensor read as float32 at its own shape. */
#include "../../model/nn/nn.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "w.safetensors", data, size);
    st_file *f = st_open(path, &err);
    if (f) {
        for (size_t i = 0; i < f->n_tensors; i++) {
            const st_tensor *t = &f->tensors[i];
            FUZZ_ASSERT(t->begin <= t->end && t->end <= f->data_len);
            FUZZ_ASSERT(st_find(f, t->name) == t);
            size_t numel = 1;
            for (int d = 0; d < t->ndim; d++)
                numel *= (size_t)t->shape[d];
            if (numel > ((size_t)1 << 24))
                continue;
            float *dst = malloc((numel ? numel : 1) * sizeof *dst);
            FUZZ_ASSERT(dst);
            (void)st_read_f32(f, t->name, t->ndim, t->shape, dst, &err);
            free(dst);
        }
        for (size_t i = 0; i < f->n_meta; i++)
            FUZZ_ASSERT(st_meta(f, f->meta_keys[i]) != NULL);
        st_close(f);
    }
    unlink(path);
    return 0;
}
