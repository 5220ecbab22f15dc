/* deform_tool: runs the engine's deform_conv2d on .npy files, for the torchvision
 * cross-check in tests/test_deform.sh. Errors go to stderr, exit 1.
 *
 *   deform_tool DIR STRIDE PAD DILATION OFFSET_GROUPS
 *
 * DIR holds input.npy [N,C,H,W], weight.npy [O,C,kh,kw], bias.npy [O], offset.npy and,
 * for v2, mask.npy (all float32); writes DIR/out.npy (plain GEMM) and DIR/out_blas.npy. */
#include "../model/nn/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int load4(const char *dir, const char *name, int ndim, npy_array *a, avps_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    npy_expect want = {.dtypes = NPY_DTYPE_BIT(NPY_F32), .ndim = ndim};
    return npy_read(path, &want, a, err);
}

static nn_tensor as_tensor(const npy_array *a) {
    nn_tensor t = {a->data, (int)a->shape[0], (int)a->shape[1], (int)a->shape[2], (int)a->shape[3], NN_DEVICE_CPU};
    return t;
}

static int save(const char *dir, const char *name, const nn_tensor *t, avps_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    npy_array a;
    if (npy_array_alloc(&a, NPY_F32, 4, shape, err))
        return -1;
    memcpy(a.data, t->data, nn_numel(t) * sizeof(float));
    int rc = npy_write(path, &a, 0, err);
    npy_array_release(&a);
    return rc;
}

static int run(const char *dir, int stride, int pad, int dilation, int groups, avps_error *err) {
    npy_array x = {0}, w = {0}, b = {0}, off = {0}, m = {0};
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/mask.npy", dir);
    int has_mask = access(mpath, F_OK) == 0, rc = -1;
    if (load4(dir, "input.npy", 4, &x, err) || load4(dir, "weight.npy", 4, &w, err) ||
        load4(dir, "bias.npy", 1, &b, err) || load4(dir, "offset.npy", 4, &off, err) ||
        (has_mask && load4(dir, "mask.npy", 4, &m, err)))
        goto done;
    nn_conv cv = {w.data, b.data, (int)w.shape[0], (int)w.shape[1], (int)w.shape[2], (int)w.shape[3], stride, pad};
    nn_tensor in = as_tensor(&x), ot = as_tensor(&off), mt = has_mask ? as_tensor(&m) : (nn_tensor){0};
    for (int blas = 0; blas < 2; blas++) {
        const nn_backend *be = nn_cpu_backend(blas, err);
        if (!be)
            goto done;
        nn_arena a;
        nn_arena_init(&a);
        nn_tensor out;
        int r = be->deform_conv2d(be, &a, &cv, &in, &ot, has_mask ? &mt : NULL, dilation, groups, 0, &out, err);
        if (r == 0)
            r = save(dir, blas ? "out_blas.npy" : "out.npy", &out, err);
        nn_arena_release(&a);
        if (r)
            goto done;
    }
    rc = 0;
done:
    npy_array_release(&x), npy_array_release(&w), npy_array_release(&b), npy_array_release(&off);
    npy_array_release(&m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: deform_tool DIR STRIDE PAD DILATION OFFSET_GROUPS\n");
        return 1;
    }
    avps_error err = {0};
    if (run(argv[1], atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    return 0;
}
