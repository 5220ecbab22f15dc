/* fuzz_npy.c: NumPy arrays (data/npy.c, npy_header.c), the same bytes read as a plain
 * .npy and as a zstd-compressed .npy.zst (seeds of both kinds). */
#include "../../data/data.h"
#include "fuzz.h"

static void read_one(const char *path) {
    avps_error err;
    npy_array a = {0};
    if (npy_read(path, NULL, &a, &err) == 0) {
        size_t n = npy_dtype_size(a.dtype);
        for (int d = 0; d < a.ndim; d++)
            n *= a.shape[d];
        FUZZ_ASSERT(n == a.nbytes && a.ndim >= 0 && a.ndim <= NPY_MAX_DIMS);
        if (a.nbytes) {
            volatile uint8_t last = ((uint8_t *)a.data)[a.nbytes - 1];
            (void)last;
        }
        npy_array_release(&a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fuzz_write(path, sizeof path, "a.npy", data, size);
    read_one(path);
    unlink(path);
    fuzz_write(path, sizeof path, "a.npy.zst", data, size);
    read_one(path);
    unlink(path);
    return 0;
}
