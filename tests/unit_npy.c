/* unit_npy.c: NumPy arrays in data/npy.c: round trips of every dtype and shape, the
 * header numpy writes, the headers Python would read, every refusal (with the file in
 * the message), zstd streams of every shape (frames without size, several frames,
 * skippable frames, cut or corrupt ones), and exhaustive half-float checks against a
 * reference written from the IEEE definition rather than from half.c. */
#include "../data/data.h"
#include "check.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static char tmpdir[] = "/tmp/avps_unit_npy_XXXXXX";

static char *tmp_path(const char *name) {
    return path_join(tmpdir, name);
}

/* Removed first: ext4 flushes a file truncated and rewritten in place on close. */
static void write_file(const char *path, const void *data, size_t n) {
    remove(path);
    FILE *fp = fopen(path, "wb");
    if (n)
        fwrite(data, 1, n, fp);
    fclose(fp);
}

/* Fails when npy_read succeeds or its message lacks the path or `needle`. */
static int read_fails(const char *path, const npy_expect *e, const char *needle) {
    npy_array a;
    avps_error err = {""};
    int rc = npy_read(path, e, &a, &err);
    int ok = rc == -1 && strstr(err.msg, path) && strstr(err.msg, needle) && a.data == NULL;
    if (!ok)
        fprintf(stderr, "%s: rc %d, message '%s', wanted one with '%s'\n", path, rc, err.msg, needle);
    if (rc == 0)
        npy_array_release(&a);
    return ok;
}

/* A .npy by hand: magic, version major.0, the dict's length in 2 (1.0) or 4 bytes, the
 * dict, then ndata bytes 0, 1, 2, ... Returns its size. */
static size_t raw_npy(uint8_t *buf, int major, const char *dict, size_t ndata) {
    size_t len = strlen(dict), at = 8;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    for (int i = 0; i < (major == 1 ? 2 : 4); i++)
        buf[at++] = (uint8_t)(len >> 8 * i);
    memcpy(buf + at, dict, len);
    at += len;
    for (size_t i = 0; i < ndata; i++)
        buf[at++] = (uint8_t)i;
    return at;
}

static void fill_pattern(npy_array *a, unsigned seed) {
    uint8_t *p = a->data;
    for (size_t i = 0; i < a->nbytes; i++)
        p[i] = (uint8_t)(i * 37 + seed + (i >> 8));
}

/* ---- round trips -------------------------------------------------------------------- */

static void test_round_trips(check_tally *t) {
    static const struct {
        int ndim;
        size_t shape[NPY_MAX_DIMS];
    } shapes[] = {{0, {0}}, {1, {0}}, {1, {7}}, {2, {3, 4}}, {3, {2, 0, 3}}, {4, {2, 3, 4, 5}}, {3, {3, 40, 50}}};
    static const char *const suffixes[] = {".npy", ".npy.zst"};
    const size_t item[NPY_DTYPE_COUNT] = {2, 4, 1, 2, 4, 8}; /* f2 f4 u1 u2 i4 f8 */
    for (int d = 0; d < NPY_DTYPE_COUNT; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int z = 0; z < 2; z++) {
                char name[64];
                snprintf(name, sizeof name, "rt_%d_%zu%s", d, s, suffixes[z]);
                char *path = tmp_path(name);
                npy_array a, b;
                avps_error err;
                CHECK(t, npy_array_alloc(&a, (npy_dtype)d, shapes[s].ndim, shapes[s].shape, &err) == 0);
                size_t count = 1;
                for (int i = 0; i < shapes[s].ndim; i++)
                    count *= shapes[s].shape[i];
                CHECK(t, a.nbytes == count * item[d] && npy_dtype_size((npy_dtype)d) == item[d]);
                fill_pattern(&a, (unsigned)(d * 10 + s));
                CHECK(t, npy_write(path, &a, 0, &err) == 0);
                npy_expect want = {NPY_DTYPE_BIT(d), shapes[s].ndim, {0}};
                memcpy(want.shape, shapes[s].shape, sizeof want.shape);
                int rc = npy_read(path, &want, &b, &err);
                CHECK(t, rc == 0);
                if (rc == 0) {
                    CHECK(t, b.dtype == (npy_dtype)d && b.ndim == a.ndim && b.nbytes == a.nbytes);
                    CHECK(t, memcmp(a.shape, b.shape, sizeof a.shape) == 0);
                    CHECK(t, a.nbytes == 0 ? b.data == NULL : memcmp(a.data, b.data, a.nbytes) == 0);
                    npy_array_release(&b);
                }
                npy_array_release(&a);
                free(path);
            }
}

/* The preamble numpy 1.x/2.x writes, worked out by hand: dict, 21 - digits(shape[0])
 * spaces of room, spaces to a multiple of 64 with the newline. */
static void test_header_bytes(check_tally *t) {
    static const char dict34[] = "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }";
    static const char dict_scalar[] = "{'descr': '<i4', 'fortran_order': False, 'shape': (), }";
    npy_array a;
    avps_error err;
    size_t len;
    char *path = tmp_path("hdr.npy");

    CHECK(t, npy_array_alloc(&a, NPY_F16, 2, (size_t[]){3, 4}, &err) == 0);
    CHECK(t, npy_write(path, &a, 0, &err) == 0);
    uint8_t *f = (uint8_t *)file_read_all(path, &len, &err);
    CHECK(t, f && len == 128 + 24); /* 10 + 59 + 20 + 38 spaces + newline, then 12 halves */
    CHECK(t, f && memcmp(f, "\x93NUMPY\x01\x00\x76\x00", 10) == 0 && memcmp(f + 10, dict34, 59) == 0);
    int spaces = 1;
    for (size_t i = 69; f && i < 127; i++)
        spaces &= f[i] == ' ';
    CHECK(t, f && spaces && f[127] == '\n');
    free(f);
    npy_array_release(&a);

    CHECK(t, npy_array_alloc(&a, NPY_I32, 0, NULL, &err) == 0 && a.nbytes == 4);
    CHECK(t, npy_write(path, &a, 0, &err) == 0);
    f = (uint8_t *)file_read_all(path, &len, &err);
    CHECK(t, f && len == 128 + 4); /* 10 + 55 + 62 spaces + newline; no room for a scalar */
    CHECK(t, f && f[8] == 118 && memcmp(f + 10, dict_scalar, 55) == 0 && f[65] == ' ' && f[127] == '\n');
    free(f);
    npy_array_release(&a);
    free(path);
}

/* ---- headers ------------------------------------------------------------------------- */

static void test_header_variants(check_tally *t) {
    static const struct {
        int major;
        const char *dict;
        npy_dtype dtype;
        int ndim;
        size_t shape[NPY_MAX_DIMS];
        size_t nbytes;
    } cases[] = {
        {1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<u2'}", NPY_U16, 2, {2, 3}, 12},
        {1, "{ \"descr\" : \"<f4\" ,\n 'fortran_order':False,'shape':(5,),}   \n", NPY_F32, 1, {5}, 20},
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", NPY_U8, 0, {0}, 1},
        {1, "{'descr': '<u1', 'fortran_order': False, 'shape': (3L, 2L), }", NPY_U8, 2, {3, 2}, 6},
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 0, 3), }", NPY_I32, 3, {2, 0, 3}, 0},
        {1, "{'descr':'<f2','fortran_order':False,'shape':( 4 , 1 , )}", NPY_F16, 2, {4, 1}, 8},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1, 1, 1), }", NPY_F16, 4, {1, 1, 1, 1}, 2},
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", NPY_F32, 1, {2}, 8},
        {3, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }\n", NPY_U16, 1, {3}, 6},
    };
    uint8_t buf[512];
    char *path = tmp_path("variant.npy");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(path, buf, raw_npy(buf, cases[i].major, cases[i].dict, cases[i].nbytes));
        npy_array a;
        avps_error err;
        int rc = npy_read(path, NULL, &a, &err);
        CHECK(t, rc == 0);
        if (rc != 0) {
            fprintf(stderr, "case %zu: %s\n", i, err.msg);
            continue;
        }
        CHECK(t, a.dtype == cases[i].dtype && a.ndim == cases[i].ndim && a.nbytes == cases[i].nbytes);
        CHECK(t, memcmp(a.shape, cases[i].shape, sizeof a.shape) == 0);
        CHECK(t, a.nbytes < 2 || ((uint8_t *)a.data)[1] == 1); /* the bytes after the header */
        npy_array_release(&a);
    }
    free(path);
}

static void test_header_refusals(check_tally *t) {
    static const struct {
        int major;
        const char *dict;
        size_t ndata;
        const char *needle;
    } cases[] = {
        {4, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2, "version 4.0"},
        {1, "{'descr': '<f2', 'fortran_order': False, }", 2, "lacks 'shape'"},
        {1, "{'descr': '<f2', 'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2, "twice"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 2, "unknown key 'extra'"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (5), }", 10, "not a tuple"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (-1,), }", 0, "negative"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }", 2, "more than 5"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1.5,), }", 2, "malformed at byte"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (05,), }", 10, "malformed at byte"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,) 'x'}", 2, "expected ',' or '}'"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), } x", 2, "only spaces after"},
        {1, "{'descr': '<f2', 'fortran_order': 0, 'shape': (1,), }", 2, "True or False"},
        {1, "{'descr': '<f2', 'fortran_order': True, 'shape': (1,), }", 2, "fortran_order True"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4, "big-endian dtype '>f4'"},
        {1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", 8, "unsupported dtype '<i8'"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4, "structured"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, "overflows"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }", 0, "overflows"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 0, "too large"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", 11, "the data ends early"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", 13, "more data than the header says"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", 0, "the data ends early"},
        {2, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", 7, "more data"},
    };
    uint8_t buf[512];
    char *path = tmp_path("refused.npy");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(path, buf, raw_npy(buf, cases[i].major, cases[i].dict, cases[i].ndata));
        CHECK(t, read_fails(path, NULL, cases[i].needle));
    }
    /* the preamble itself */
    size_t n = raw_npy(buf, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2);
    write_file(path, buf, 9);
    CHECK(t, read_fails(path, NULL, "too short"));
    write_file(path, "PK\x03\x04 not numpy at all", 22);
    CHECK(t, read_fails(path, NULL, "no \\x93NUMPY magic"));
    buf[7] = 1; /* version 1.1 */
    write_file(path, buf, n);
    CHECK(t, read_fails(path, NULL, "version 1.1"));
    buf[7] = 0;
    buf[8] = 0xff; /* a header length past the end of the file */
    write_file(path, buf, n);
    CHECK(t, read_fails(path, NULL, "header says 255 bytes"));
    n = raw_npy(buf, 2, "{}", 0);
    buf[10] = 0x7f; /* 2.0's 4-byte length: 8 MB */
    write_file(path, buf, n);
    CHECK(t, read_fails(path, NULL, "too long"));
    free(path);
    CHECK(t, read_fails("/nonexistent/x.npy.zst", NULL, "cannot open"));
}

/* ---- what a reader expects -------------------------------------------------------------- */

static void test_expectations(check_tally *t) {
    char *path = tmp_path("expect.npy.zst");
    npy_array a, b;
    avps_error err;
    CHECK(t, npy_array_alloc(&a, NPY_F32, 3, (size_t[]){3, 4, 5}, &err) == 0);
    CHECK(t, npy_write(path, &a, 0, &err) == 0);
    npy_expect halves = {NPY_DTYPE_BIT(NPY_F16) | NPY_DTYPE_BIT(NPY_U16), 0, {0}};
    CHECK(t, read_fails(path, &halves, "dtype '<f4', expected '<f2' or '<u2'"));
    npy_expect flat = {0, 2, {0}};
    CHECK(t, read_fails(path, &flat, "shape (3, 4, 5), expected (any, any)"));
    npy_expect wrong_h = {NPY_DTYPE_BIT(NPY_F32), 3, {3, 5, 0}};
    CHECK(t, read_fails(path, &wrong_h, "shape (3, 4, 5), expected (3, 5, any)"));
    npy_expect longer = {0, 0, {0, 0, 0, 2}};
    CHECK(t, read_fails(path, &longer, "expected (any, any, any, 2) or longer"));
    npy_expect fits = {NPY_DTYPE_BIT(NPY_F16) | NPY_DTYPE_BIT(NPY_F32), 3, {3, 0, 5}};
    CHECK(t, npy_read(path, &fits, &b, &err) == 0 && b.nbytes == 240);
    npy_array_release(&b);
    npy_expect any_ndim = {0, 0, {3}};
    CHECK(t, npy_read(path, &any_ndim, &b, &err) == 0 && b.ndim == 3);
    npy_array_release(&b);
    npy_array_release(&a);
    free(path);
}

static size_t count_dir_entries(void) {
    DIR *d = opendir(tmpdir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_write_refusals(check_tally *t) {
    npy_array a;
    avps_error err;
    CHECK(t, npy_array_alloc(&a, NPY_U8, 1, (size_t[]){4}, &err) == 0);
    size_t before = count_dir_entries();
    char *missing = tmp_path("no/such/dir/x.npy.zst");
    CHECK(t, npy_write(missing, &a, 0, &err) == -1 && strstr(err.msg, missing));
    a.nbytes = 3; /* disagrees with the shape */
    char *path = tmp_path("bad_array.npy.zst");
    CHECK(t, npy_write(path, &a, 0, &err) == -1 && strstr(err.msg, "not a valid array"));
    CHECK(t, count_dir_entries() == before); /* nothing left behind, not even a temporary */
    a.nbytes = 4;
    npy_array_release(&a);
    size_t too_big[2] = {(size_t)1 << 40, (size_t)1 << 40};
    CHECK(t, npy_array_alloc(&a, NPY_U8, 2, too_big, &err) == -1 && strstr(err.msg, "overflows"));
    CHECK(t, npy_array_alloc(&a, NPY_U8, NPY_MAX_DIMS + 1, too_big, &err) == -1);
    free(missing);
    free(path);
}

/* ---- zstd streams ------------------------------------------------------------------------ */

/* One frame without a content size, fed in `chunk`-byte pieces as a pipe would. */
static uint8_t *frame_without_size(const uint8_t *src, size_t n, size_t chunk, size_t *out_len) {
    ZSTD_CStream *cs = ZSTD_createCStream();
    size_t cap = ZSTD_compressBound(n) + 1024, at = 0;
    uint8_t *dst = malloc(cap);
    ZSTD_initCStream(cs, 3);
    for (size_t off = 0; off < n; off += chunk) {
        ZSTD_inBuffer in = {src + off, n - off < chunk ? n - off : chunk, 0};
        while (in.pos < in.size) {
            ZSTD_outBuffer out = {dst + at, cap - at, 0};
            ZSTD_compressStream(cs, &out, &in);
            at += out.pos;
        }
    }
    for (size_t left = 1; left;) {
        ZSTD_outBuffer out = {dst + at, cap - at, 0};
        left = ZSTD_endStream(cs, &out);
        at += out.pos;
    }
    ZSTD_freeCStream(cs);
    *out_len = at;
    return dst;
}

/* A frame with a content size (as zstandard's compress() and `zstd` write) appended to dst. */
static size_t append_frame(uint8_t *dst, size_t at, size_t cap, const void *src, size_t n) {
    return at + ZSTD_compress(dst + at, cap - at, src, n, 1);
}

static size_t append_skippable(uint8_t *dst, size_t at) {
    memcpy(dst + at, "\x50\x2a\x4d\x18\x03\x00\x00\x00xyz", 11); /* magic 0x184D2A50, 3 bytes */
    return at + 11;
}

static void test_zstd_streams(check_tally *t) {
    /* a 133 x 120 x 160 half array: many zstd blocks, more than one input buffer */
    npy_array a, b;
    avps_error err;
    CHECK(t, npy_array_alloc(&a, NPY_F16, 3, (size_t[]){133, 120, 160}, &err) == 0);
    uint16_t *h = a.data;
    for (size_t i = 0; i < a.nbytes / 2; i++)
        h[i] = half_from_float(sinf((float)i * 0.001f) * (float)(i % 977));
    char *plain = tmp_path("big.npy"), *zst = tmp_path("big.npy.zst"), *path = tmp_path("stream.npy.zst");
    CHECK(t, npy_write(plain, &a, 0, &err) == 0);
    size_t n_npy, n_zst;
    uint8_t *npy = (uint8_t *)file_read_all(plain, &n_npy, &err);
    CHECK(t, npy_write(zst, &a, 0, &err) == 0);
    uint8_t *z = (uint8_t *)file_read_all(zst, &n_zst, &err);
    CHECK(t, npy && z && n_zst < n_npy);
    CHECK(t, z && ZSTD_getFrameContentSize(z, n_zst) == n_npy); /* ours records the size */

    size_t n;
    uint8_t *nosize = frame_without_size(npy, n_npy, 4096, &n);
    CHECK(t, ZSTD_getFrameContentSize(nosize, n) == ZSTD_CONTENTSIZE_UNKNOWN);
    write_file(path, nosize, n);
    CHECK(t, npy_read(path, NULL, &b, &err) == 0 && b.nbytes == a.nbytes && memcmp(b.data, a.data, a.nbytes) == 0);
    npy_array_release(&b);
    free(nosize);

    /* header in one frame, the data cut in two, a skippable frame between */
    size_t cap = 2 * n_npy + 4096, cut = 128 + 1001, at = 0;
    uint8_t *multi = malloc(cap);
    at = append_frame(multi, at, cap, npy, 128);
    at = append_skippable(multi, at);
    at = append_frame(multi, at, cap, npy + 128, cut - 128);
    at = append_frame(multi, at, cap, npy + cut, n_npy - cut);
    at = append_skippable(multi, at);
    write_file(path, multi, at);
    CHECK(t, npy_read(path, NULL, &b, &err) == 0 && b.nbytes == a.nbytes && memcmp(b.data, a.data, a.nbytes) == 0);
    npy_array_release(&b);

    /* a second copy of the data, or one byte more, is refused */
    at = append_frame(multi, 0, cap, npy, n_npy);
    at = append_frame(multi, at, cap, "x", 1);
    write_file(path, multi, at);
    CHECK(t, read_fails(path, NULL, "more data than the header says"));
    at = append_frame(multi, 0, cap, npy, n_npy - 1);
    write_file(path, multi, at);
    CHECK(t, read_fails(path, NULL, "the data ends early"));

    /* plain bytes under a .zst name; zstd around something else */
    write_file(path, npy, n_npy);
    CHECK(t, read_fails(path, NULL, "not a zstd stream"));
    at = append_frame(multi, 0, cap, "just some text, not an array", 28);
    write_file(path, multi, at);
    CHECK(t, read_fails(path, NULL, "no \\x93NUMPY magic"));
    write_file(path, "", 0);
    CHECK(t, read_fails(path, NULL, "too short"));

    free(multi);
    free(npy);
    free(z);
    free(plain);
    free(zst);
    free(path);
    npy_array_release(&a);
}

/* Every cut and every changed byte of a small .npy.zst is refused. */
static void test_zstd_damage(check_tally *t) {
    npy_array a;
    avps_error err;
    CHECK(t, npy_array_alloc(&a, NPY_F16, 2, (size_t[]){30, 40}, &err) == 0);
    uint16_t *h = a.data;
    for (size_t i = 0; i < a.nbytes / 2; i++)
        h[i] = half_from_float((float)(i * 2654435761u % 1000) / 7.0f);
    char *zst = tmp_path("small.npy.zst"), *path = tmp_path("damaged.npy.zst");
    size_t n_zst;
    CHECK(t, npy_write(zst, &a, 0, &err) == 0);
    uint8_t *z = (uint8_t *)file_read_all(zst, &n_zst, &err);
    CHECK(t, z && n_zst > 1000);
    /* cut anywhere: the frame is incomplete */
    int all_truncated = 1;
    for (size_t len = 1; z && len < n_zst; len++) {
        write_file(path, z, len);
        all_truncated &= read_fails(path, NULL, "truncated zstd stream");
    }
    CHECK(t, all_truncated);

    /* any changed byte: the decoder, the content size or the checksum catches it */
    int all_refused = 1;
    for (size_t i = 0; z && i < n_zst; i++) {
        z[i] ^= 0x5a;
        write_file(path, z, n_zst);
        z[i] ^= 0x5a;
        npy_array c;
        if (npy_read(path, NULL, &c, &err) == 0) {
            all_refused = 0;
            fprintf(stderr, "byte %zu changed, still read\n", i);
            npy_array_release(&c);
        } else {
            all_refused &= strstr(err.msg, path) != NULL;
        }
    }
    CHECK(t, all_refused);

    free(z);
    free(zst);
    free(path);
    npy_array_release(&a);
}

/* ---- half floats --------------------------------------------------------------------- */

/* The value of a half from the IEEE definition, in double: (-1)^s 2^(e-15) 1.m, or
 * 2^-14 0.m for e = 0. */
static double half_value(uint16_t h) {
    int e = h >> 10 & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

static uint32_t float_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static float float_of_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void test_half_known(check_tally *t) {
    static const struct {
        uint16_t h;
        double v;
    } known[] = {{0x0000, 0.0},         {0x3c00, 1.0},          {0xc000, -2.0},        {0x7bff, 65504.0},
                 {0x0001, 0x1p-24},     {0x03ff, 1023 * 0x1p-24}, {0x0400, 0x1p-14},   {0x3555, 0.333251953125},
                 {0x3c01, 1.0009765625}, {0xfbff, -65504.0},    {0x7c00, INFINITY},    {0xfc00, -INFINITY}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        CHECK(t, (double)float_from_half(known[i].h) == known[i].v);
        CHECK(t, half_from_float((float)known[i].v) == known[i].h);
    }
    CHECK(t, float_bits(float_from_half(0x8000)) == 0x80000000u);
    CHECK(t, half_from_float(-0.0f) == 0x8000);
    /* rounding, by hand */
    CHECK(t, half_from_float(1.0f + 0x1p-11f) == 0x3c00);     /* tie, to even */
    CHECK(t, half_from_float(1.0f + 3 * 0x1p-11f) == 0x3c02); /* tie, to even (up) */
    CHECK(t, half_from_float(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);
    CHECK(t, half_from_float(65519.99f) == 0x7bff);
    CHECK(t, half_from_float(65520.0f) == 0x7c00);
    CHECK(t, half_from_float(1e6f) == 0x7c00 && half_from_float(-1e6f) == 0xfc00);
    CHECK(t, half_from_float(0x1p-25f) == 0x0000);               /* tie between 0 and 2^-24 */
    CHECK(t, half_from_float(0x1p-25f * 1.0000001f) == 0x0001);
    CHECK(t, half_from_float(1.5f * 0x1p-24f) == 0x0002);        /* tie, to even */
    CHECK(t, half_from_float(2.5f * 0x1p-24f) == 0x0002);
    CHECK(t, half_from_float(1023.5f * 0x1p-24f) == 0x0400);     /* rounds up into the normals */
    CHECK(t, half_from_float(1e-8f) == 0x0000 && half_from_float(-1e-8f) == 0x8000);
    CHECK(t, half_from_float(1e-45f) == 0x0000);                 /* the smallest float subnormal */
    /* NaNs keep sign and the payload's top bits; a payload that would vanish becomes 1 */
    CHECK(t, float_bits(float_from_half(0x7e00)) == 0x7fc00000u);
    CHECK(t, float_bits(float_from_half(0xfd01)) == 0xffa02000u);
    CHECK(t, half_from_float(float_of_bits(0x7fc00000u)) == 0x7e00);
    CHECK(t, half_from_float(float_of_bits(0xff802000u)) == 0xfc01);
    CHECK(t, half_from_float(float_of_bits(0x7f800001u)) == 0x7c01);
}

static uint16_t nearest_half_reference(float f, const double *positive, size_t count);

static void test_half_exhaustive(check_tally *t) {
    /* every half: the IEEE value, and back to itself */
    int exact = 1, back = 1, nan_ok = 1;
    double positive[0x7c01]; /* the finite non-negative halves and inf, in increasing order */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = float_from_half((uint16_t)h);
        double v = half_value((uint16_t)h);
        if (isnan(v)) {
            nan_ok &= isnan(f) && !!signbit(f) == (int)(h >> 15) && half_from_float(f) == h;
            continue;
        }
        exact &= (double)f == v && !!signbit(f) == (int)(h >> 15);
        back &= half_from_float(f) == h;
        if (h <= 0x7c00)
            positive[h] = v;
    }
    CHECK(t, exact);
    CHECK(t, back);
    CHECK(t, nan_ok);
    /* every midpoint between neighbours ties to the even one; a float either side goes
     * to the nearer */
    int ties = 1;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float mid = (float)((positive[h] + positive[h + 1]) / 2); /* 12 significant bits: exact */
        uint16_t even = (uint16_t)(h & 1 ? h + 1 : h);
        ties &= half_from_float(mid) == even && half_from_float(-mid) == (even | 0x8000);
        ties &= half_from_float(nextafterf(mid, 0)) == h && half_from_float(nextafterf(mid, INFINITY)) == h + 1;
    }
    CHECK(t, ties);
    /* floats across the whole range, against a nearest-value search */
    int sampled = 1;
    for (uint64_t bits = 0; bits < 0x7f800000u; bits += 1237) {
        float f = float_of_bits((uint32_t)bits);
        sampled &= half_from_float(f) == nearest_half_reference(f, positive, 0x7c01);
    }
    CHECK(t, sampled);
}

/* The nearest of the sorted non-negative halves (ties to the even code), or inf past
 * 65504 + half an ulp, as IEEE round-to-nearest-even defines it. */
static uint16_t nearest_half_reference(float f, const double *positive, size_t count) {
    double v = f;
    if (v >= 65520.0)
        return 0x7c00;
    size_t lo = 0, hi = count - 1; /* positive[lo] <= v < positive[hi] */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (positive[mid] <= v)
            lo = mid;
        else
            hi = mid;
    }
    double below = v - positive[lo], above = positive[hi] - v;
    if (below != above)
        return (uint16_t)(below < above ? lo : hi);
    return (uint16_t)(lo & 1 ? hi : lo);
}

int main(void) {
    check_tally t = {0, 0};
    if (!mkdtemp(tmpdir))
        return 2;
    test_round_trips(&t);
    test_header_bytes(&t);
    test_header_variants(&t);
    test_header_refusals(&t);
    test_expectations(&t);
    test_write_refusals(&t);
    test_zstd_streams(&t);
    test_zstd_damage(&t);
    test_half_known(&t);
    test_half_exhaustive(&t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        t.failed++;
    return check_report(&t);
}
