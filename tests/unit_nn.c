/* unit_nn.c: the native engine's parts against expectations computed here independently
 * (naive loops in double, hand-worked values, torchvision's documented anchors): arena
 * reuse, GEMM, convolution, transposed convolution, pooling, resizing, RoIAlign, box
 * decoding, NMS, and the safetensors reader's defences. */
#include "../model/nn/nn.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float lcg(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static void test_arena(check_tally *t) {
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    void *p1 = nn_arena_alloc(&a, 1000, &err), *p2 = nn_arena_alloc(&a, (size_t)20 << 20, &err);
    CHECK(t, p1 && p2 && ((uintptr_t)p1 % 64) == 0 && ((uintptr_t)p2 % 64) == 0);
    nn_arena_reset(&a);
    /* the same requests after a reset get the same memory: nothing new is allocated */
    void *q1 = nn_arena_alloc(&a, 1000, &err), *q2 = nn_arena_alloc(&a, (size_t)20 << 20, &err);
    CHECK(t, q1 == p1 && q2 == p2);
    nn_tensor x;
    CHECK(t, nn_tensor_new(&a, NN_DEVICE_CPU, 1 << 30, 1 << 30, 1 << 30, 1 << 30, &x, &err) == -1);
    /* a rewind frees what came after the mark; a kept tensor moves down to the mark with
     * its values, across chunks too */
    nn_arena_reset(&a);
    nn_arena_mark m = nn_arena_get_mark(&a);
    size_t before = a.used;
    nn_tensor tmp, big, kept;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 100, 100, &tmp, &err);
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 4, 1024, 1024, &big, &err); /* 16 MB: another chunk */
    for (size_t i = 0; i < nn_numel(&big); i++)
        big.data[i] = (float)i;
    kept = big;
    CHECK(t, nn_tensor_keep(&a, m, &kept, &err) == 0);
    CHECK(t, kept.data == tmp.data || kept.data == big.data);
    int same = kept.c == 4 && kept.h == 1024;
    for (size_t i = 0; same && i < nn_numel(&kept); i++)
        same = kept.data[i] == (float)i;
    CHECK(t, same);
    CHECK(t, a.used - before == nn_numel(&kept) * sizeof(float));
    nn_arena_rewind(&a, m);
    CHECK(t, a.used == before);
    void *again = nn_arena_alloc(&a, 100 * 100 * sizeof(float), &err);
    CHECK(t, again == tmp.data);
    nn_arena_release(&a);
}

static void test_gemm(check_tally *t) {
    enum { M = 7, N = 300, K = 150 };
    static float a[M * K], b[K * N], bt[N * K], c1[M * N], c2[M * N], c3[M * N];
    unsigned s = 1;
    for (int i = 0; i < M * K; i++)
        a[i] = lcg(&s);
    for (int i = 0; i < K * N; i++)
        b[i] = lcg(&s);
    for (int p = 0; p < K; p++)
        for (int j = 0; j < N; j++)
            bt[j * K + p] = b[p * N + j];
    avps_error err;
    int blas_ok = nn_blas_load(&err) == 0;
    CHECK(t, blas_ok);
    double worst = 0;
    for (int use_blas = 0; use_blas < 1 + blas_ok; use_blas++) {
        nn_gemm(use_blas, M, N, K, a, K, b, N, 0, c1, N);
        nn_gemm(use_blas, M, N, K, a, K, bt, K, 1, c2, N);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double ref = 0;
                for (int p = 0; p < K; p++)
                    ref += (double)a[i * K + p] * b[p * N + j];
                worst = fmax(worst, fmax(fabs(c1[i * N + j] - ref), fabs(c2[i * N + j] - ref)));
            }
    }
    CHECK(t, worst < 1e-4);
    nn_gemm(0, M, N, 0, a, K, b, N, 0, c3, N);
    CHECK(t, c3[0] == 0 && c3[M * N - 1] == 0);
}

/* A convolution checked against the definition, computed in double. */
static void test_conv(check_tally *t, int k, int stride, int pad, int relu) {
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    enum { C = 3, O = 5, H = 9, W = 11 };
    float wt[O * C * 9], bias[O];
    unsigned s = 7;
    for (int i = 0; i < O * C * k * k; i++)
        wt[i] = lcg(&s);
    for (int i = 0; i < O; i++)
        bias[i] = lcg(&s);
    nn_conv cv = {wt, bias, O, C, k, k, stride, pad};
    nn_tensor in, out;
    CHECK(t, nn_tensor_new(&a, NN_DEVICE_CPU, 2, C, H, W, &in, &err) == 0);
    for (size_t i = 0; i < nn_numel(&in); i++)
        in.data[i] = lcg(&s);
    const nn_backend *be = nn_cpu_backend(0, &err);
    CHECK(t, be->conv2d(be, &a, &cv, &in, relu, &out, &err) == 0);
    int ho = (H + 2 * pad - k) / stride + 1, wo = (W + 2 * pad - k) / stride + 1;
    CHECK(t, out.h == ho && out.w == wo && out.c == O && out.n == 2);
    double worst = 0;
    for (int n = 0; n < 2; n++)
        for (int o = 0; o < O; o++)
            for (int y = 0; y < ho; y++)
                for (int x = 0; x < wo; x++) {
                    double v = bias[o];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = y * stride - pad + ky, ix = x * stride - pad + kx;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    v += (double)wt[((o * C + c) * k + ky) * k + kx] *
                                         in.data[((n * C + c) * H + iy) * W + ix];
                            }
                    if (relu && v < 0)
                        v = 0;
                    worst = fmax(worst, fabs(v - out.data[((n * O + o) * ho + y) * wo + x]));
                }
    CHECK(t, worst < 1e-5);
    nn_arena_release(&a);
}

static void test_deconv(check_tally *t) {
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    enum { C = 3, O = 2, H = 4, W = 5 };
    float raw[C * O * 4], wt[O * 4 * C], bias[O] = {0.5f, -0.25f};
    unsigned s = 3;
    for (int i = 0; i < C * O * 4; i++)
        raw[i] = lcg(&s);
    for (int ci = 0; ci < C; ci++)
        for (int r = 0; r < O * 4; r++)
            wt[r * C + ci] = raw[ci * O * 4 + r];
    nn_deconv dc = {wt, bias, O, C, 2, 2, 2, 0};
    nn_tensor in, out;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, C, H, W, &in, &err);
    for (size_t i = 0; i < nn_numel(&in); i++)
        in.data[i] = lcg(&s);
    const nn_backend *be = nn_cpu_backend(1, &err);
    CHECK(t, be != NULL);
    if (!be) {
        nn_arena_release(&a);
        return;
    }
    CHECK(t, be->deconv2d(be, &a, &dc, &in, 0, &out, &err) == 0);
    CHECK(t, out.h == 2 * H && out.w == 2 * W);
    double worst = 0; /* kernel 2, stride 2: output (2y + dy, 2x + dx) sees input (y, x) only */
    for (int o = 0; o < O; o++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++) {
                double v = bias[o];
                for (int c = 0; c < C; c++)
                    v += (double)raw[((c * O + o) * 2 + y % 2) * 2 + x % 2] * in.data[(c * H + y / 2) * W + x / 2];
                worst = fmax(worst, fabs(v - out.data[(o * 2 * H + y) * 2 * W + x]));
            }
    CHECK(t, worst < 1e-5);
    nn_arena_release(&a);
}

static void test_pool_resize(check_tally *t) {
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    const nn_backend *be = nn_cpu_backend(0, &err);
    nn_tensor in, out;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 2, 2, &in, &err);
    float v[4] = {0, 1, 2, 3};
    memcpy(in.data, v, sizeof v);
    /* 2x2 -> 4x4 bilinear, align_corners False: source x = (d + 0.5) / 2 - 0.5 clamped */
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 4, 4, &out, &err);
    be->resize_bilinear(&in, &out);
    const float want[16] = {0, .25f, .75f, 1, .5f, .75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3};
    int same = 1;
    for (int i = 0; i < 16; i++)
        same &= fabsf(out.data[i] - want[i]) < 1e-6f;
    CHECK(t, same);
    /* nearest 2 -> 3 (torch: floor(d * 2 / 3)): columns 0, 0, 1 */
    nn_tensor wide;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 2, 3, &wide, &err);
    memset(wide.data, 0, 6 * sizeof(float));
    be->resize_nearest_add(&in, &wide);
    CHECK(t, wide.data[0] == 0 && wide.data[1] == 0 && wide.data[2] == 1 && wide.data[3] == 2 && wide.data[5] == 3);
    /* 3x3 max pool, stride 2, padding 1 over 0..15 in a 4x4: maxima of each window */
    nn_tensor sq, pooled;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 4, 4, &sq, &err);
    for (int i = 0; i < 16; i++)
        sq.data[i] = (float)i;
    CHECK(t, be->max_pool(&a, &sq, 3, 2, 1, &pooled, &err) == 0);
    CHECK(t, pooled.h == 2 && pooled.w == 2 && pooled.data[0] == 5 && pooled.data[1] == 7 && pooled.data[2] == 13 &&
                 pooled.data[3] == 15);
    float sm[3] = {1, 2, 3};
    be->softmax_rows(sm, 1, 3);
    double e = exp(1) + exp(2) + exp(3);
    CHECK(t, fabs(sm[2] - exp(3) / e) < 1e-6 && fabs(sm[0] - exp(1) / e) < 1e-6);
    nn_arena_release(&a);
}

/* On a ramp f(y, x) = x bilinear sampling is exact, so a bin's value is the mean of its
 * sample columns: box (0, 0, 8, 8), 2x2 bins, 2x2 samples at x = 1, 3 and 5, 7. */
static void test_roi_align(check_tally *t) {
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    nn_tensor f, out;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 10, 10, &f, &err);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++)
            f.data[y * 10 + x] = (float)x;
    float box[4] = {0, 0, 8, 8}, scale = 1;
    int level = 0;
    nn_roi_align_params p = {2, 2, 2, 0, 0};
    const nn_backend *be = nn_cpu_backend(0, &err);
    CHECK(t, be->roi_align(&a, &f, &scale, box, &level, 1, &p, &out, &err) == 0);
    CHECK(t, fabsf(out.data[0] - 2) < 1e-6f && fabsf(out.data[1] - 6) < 1e-6f && fabsf(out.data[2] - 2) < 1e-6f);
    /* aligned: half a pixel to the left: 1.5 and 5.5; at scale 1/2 the box is 0..4: 0.5, 2.5 */
    p.aligned = 1;
    be->roi_align(&a, &f, &scale, box, &level, 1, &p, &out, &err);
    CHECK(t, fabsf(out.data[0] - 1.5f) < 1e-6f && fabsf(out.data[1] - 5.5f) < 1e-6f);
    p.aligned = 0, scale = 0.5f;
    be->roi_align(&a, &f, &scale, box, &level, 1, &p, &out, &err);
    CHECK(t, fabsf(out.data[0] - 1) < 1e-6f && fabsf(out.data[1] - 3) < 1e-6f);
    nn_arena_release(&a);
}

static void test_boxes(check_tally *t) {
    /* torchvision's base anchors for size 32, ratios 0.5, 1, 2 */
    float sizes[1] = {32}, ratios[3] = {0.5f, 1, 2}, cell[12];
    nn_cell_anchors(sizes, 1, ratios, 3, cell);
    const float want[12] = {-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23};
    CHECK(t, memcmp(cell, want, sizeof want) == 0);
    float anchor[4] = {10, 20, 50, 40}, zero[4] = {0}, w1[4] = {1, 1, 1, 1}, out[4];
    nn_box_decode(anchor, zero, w1, out);
    CHECK(t, out[0] == 10 && out[1] == 20 && out[2] == 50 && out[3] == 40);
    float d[4] = {0.5f, 0, (float)log(2.0), 0}; /* centre +20 px, width doubled */
    nn_box_decode(anchor, d, w1, out);
    CHECK(t, fabsf(out[0] - 10) < 1e-4f && fabsf(out[2] - 90) < 1e-4f && out[1] == 20);
    nn_box_clip(out, 60, 30);
    CHECK(t, out[2] == 60 && out[3] == 30);
    /* NMS: b overlaps a by IoU 0.81 (suppressed at 0.5), c is apart */
    float boxes[12] = {0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30}, scores[3] = {0.9f, 0.8f, 0.7f};
    int cls_same[3] = {0, 0, 0}, cls_diff[3] = {0, 1, 0}, keep[3];
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    CHECK(t, nn_batched_nms(&a, boxes, scores, cls_same, 3, 0.5f, 3, keep, &err) == 2 && keep[0] == 0 && keep[1] == 2);
    CHECK(t, nn_batched_nms(&a, boxes, scores, cls_same, 3, 0.9f, 3, keep, &err) == 3);
    CHECK(t, nn_batched_nms(&a, boxes, scores, cls_diff, 3, 0.5f, 3, keep, &err) == 3 && keep[1] == 1);
    CHECK(t, nn_batched_nms(&a, boxes, scores, cls_diff, 3, 0.5f, 2, keep, &err) == 2);
    float x[5] = {0.1f, 0.5f, 0.3f, 0.5f, 0.2f};
    int top[3];
    CHECK(t, nn_top_k(&a, x, 5, 3, top, &err) == 0 && top[0] == 1 && top[1] == 3 && top[2] == 2);
    nn_arena_release(&a);
}

/* ---- safetensors ---- */

static int write_st(const char *path, const char *header, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    unsigned long long len = strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    fwrite(le, 1, 8, fp);
    fputs(header, fp);
    fwrite(data, 1, n, fp);
    return fclose(fp);
}

static int st_fails_with(const char *path, const char *header, size_t n, const char *needle) {
    static const float data[64];
    avps_error err = {{0}};
    write_st(path, header, data, n);
    st_file *f = st_open(path, &err);
    st_close(f);
    return !f && strstr(err.msg, needle) != NULL;
}

static void test_safetensors(check_tally *t) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/avps_unit_nn_%d.safetensors", (int)getpid());
    float data[6] = {1, 2, 3, 4, 5, 6};
    write_st(path,
             "{\"__metadata__\":{\"min_size\":\"256\"},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
             data, sizeof data);
    avps_error err;
    st_file *f = st_open(path, &err);
    CHECK(t, f != NULL);
    if (f) {
        float out[4];
        int64_t shape[2] = {2, 2}, wrong[2] = {4, 1};
        CHECK(t, st_read_f32(f, "a", 2, shape, out, &err) == 0 && out[3] == 4);
        CHECK(t, st_read_f32(f, "b", 1, shape, out, &err) == 0 && out[0] == 5 && out[1] == 6);
        CHECK(t, st_read_f32(f, "a", 2, wrong, out, &err) == -1 && strstr(err.msg, "tensor a has shape (2, 2)"));
        CHECK(t, st_read_f32(f, "c", 2, shape, out, &err) == -1 && strstr(err.msg, "no tensor c"));
        CHECK(t, st_meta(f, "min_size") && strcmp(st_meta(f, "min_size"), "256") == 0);
        st_close(f);
    }
    CHECK(t, st_fails_with(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16,
                           "hold 16 bytes"));
    CHECK(t, st_fails_with(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "outside"));
    CHECK(t, st_fails_with(path,
                           "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                           16, "overlap"));
    CHECK(t, st_fails_with(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}",
                           16, "overflows"));
    CHECK(t, st_fails_with(path, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
                           "unknown dtype \"Q4\""));
    CHECK(t, st_fails_with(path, "[1,2]", 0, "not a JSON object"));
    /* issue 12 item 3: cJSON keeps both copies of a repeated key */
    CHECK(t, st_fails_with(path,
                           "{\"__metadata__\":{\"x\":\"1\"},\"__metadata__\":{\"x\":\"1\",\"y\":\"2\"},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                           8, "key \"__metadata__\" twice"));
    CHECK(t, st_fails_with(path, "{\"__metadata__\":{\"x\":\"1\",\"x\":\"2\"}}", 0, "key \"x\" twice"));
    CHECK(t, st_fails_with(path, "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                           "key \"dtype\" twice"));
    CHECK(t, st_fails_with(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "key \"a\" twice"));
    CHECK(t, st_fails_with(path, "{\"__metadata__\":{\"x\":\"1\"},\"__metadata__\":{\"x\":\"1\"}}", 0,
                           path));
    /* a header length beyond the file */
    FILE *fp = fopen(path, "wb");
    fwrite("\xff\xff\xff\x00\x00\x00\x00\x00{}", 1, 10, fp);
    fclose(fp);
    f = st_open(path, &err);
    CHECK(t, !f && strstr(err.msg, "header length"));
    unlink(path);
}

int main(void) {
    check_tally t = {0, 0};
    test_arena(&t);
    test_gemm(&t);
    test_conv(&t, 3, 1, 1, 0);
    test_conv(&t, 3, 2, 1, 1);
    test_conv(&t, 1, 1, 0, 1);
    test_conv(&t, 1, 2, 0, 0);
    test_deconv(&t);
    test_pool_resize(&t);
    test_roi_align(&t);
    test_boxes(&t);
    test_safetensors(&t);
    return check_report(&t);
}
