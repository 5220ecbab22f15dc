/* npy_tool: data/npy.c from the command line, for the numpy cross-checks in
 * tests/test_npy_numpy.sh, the valgrind suite and timing. Errors go to stderr, exit 1.
 *
 *   npy_tool copy IN OUT [LEVEL]   read IN (.npy or .npy.zst), write OUT
 *   npy_tool halves OUT            every half bit pattern 0..65535 as float32 (float_from_half)
 *   npy_tool to-half IN OUT        a float32 array as the '<u2' bits of half_from_float
 *   npy_tool time IN SECONDS       reads IN repeatedly; prints MB/s of array data
 */
#include "../data/data.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int copy(const char *in, const char *out, int level, avps_error *err) {
    npy_array a;
    if (npy_read(in, NULL, &a, err))
        return -1;
    int rc = npy_write(out, &a, level, err);
    npy_array_release(&a);
    return rc;
}

static int halves(const char *out, avps_error *err) {
    size_t n = 65536;
    npy_array a;
    if (npy_array_alloc(&a, NPY_F32, 1, &n, err))
        return -1;
    float *f = a.data;
    for (size_t i = 0; i < n; i++)
        f[i] = float_from_half((uint16_t)i);
    int rc = npy_write(out, &a, 0, err);
    npy_array_release(&a);
    return rc;
}

static int to_half(const char *in, const char *out, avps_error *err) {
    npy_array a, h;
    npy_expect want = {.dtypes = NPY_DTYPE_BIT(NPY_F32)};
    if (npy_read(in, &want, &a, err))
        return -1;
    int rc = npy_array_alloc(&h, NPY_U16, a.ndim, a.shape, err);
    if (rc == 0) {
        const float *f = a.data;
        uint16_t *bits = h.data;
        for (size_t i = 0; i < a.nbytes / 4; i++)
            bits[i] = half_from_float(f[i]);
        rc = npy_write(out, &h, 0, err);
        npy_array_release(&h);
    }
    npy_array_release(&a);
    return rc;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int time_reads(const char *in, double seconds, avps_error *err) {
    double start = now(), elapsed = 0, bytes = 0;
    long reads = 0;
    while (elapsed < seconds) {
        npy_array a;
        if (npy_read(in, NULL, &a, err))
            return -1;
        bytes += (double)a.nbytes;
        npy_array_release(&a);
        reads++;
        elapsed = now() - start;
    }
    printf("%s: %ld reads, %.3f ms each, %.0f MB/s of array data\n", in, reads, 1e3 * elapsed / (double)reads,
           bytes / elapsed / 1e6);
    return 0;
}

int main(int argc, char **argv) {
    avps_error err;
    int rc;
    if (argc >= 4 && argc <= 5 && strcmp(argv[1], "copy") == 0)
        rc = copy(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : 0, &err);
    else if (argc == 3 && strcmp(argv[1], "halves") == 0)
        rc = halves(argv[2], &err);
    else if (argc == 4 && strcmp(argv[1], "to-half") == 0)
        rc = to_half(argv[2], argv[3], &err);
    else if (argc == 4 && strcmp(argv[1], "time") == 0)
        rc = time_reads(argv[2], atof(argv[3]), &err);
    else
        rc = avps_fail(&err, "usage: npy_tool copy IN OUT [LEVEL] | halves OUT | to-half IN OUT | time IN SECONDS");
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    return rc ? 1 : 0;
}
