/* npy.c: reading and writing NumPy arrays, plain (.npy) or zstd-compressed (.npy.zst).
 * Reading streams the file through ZSTD_decompressStream straight into the array, so any
 * valid zstd stream works (several frames, no content size) and memory never exceeds the
 * array the header announces: a byte beyond it is an error, not a bigger buffer. */
#include "npy_header.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c keeps array bytes as they are in the file, little-endian: big-endian hosts need byte swaps"
#endif

#define NPY_HEADER_MAX 65536          /* ours are < 256 bytes; numpy's own loader refuses > 10000 */
#define NPY_FIRST_CHUNK (16u << 20)   /* data buffers grow from here up to what the header says */

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int npy_array_alloc(npy_array *a, npy_dtype dtype, int ndim, const size_t *shape, avps_error *err) {
    memset(a, 0, sizeof *a);
    if ((unsigned)dtype >= NPY_DTYPE_COUNT || ndim < 0 || ndim > NPY_MAX_DIMS)
        return avps_fail(err, "npy array: unknown dtype %d or %d dimensions (at most %d)", (int)dtype, ndim,
                         NPY_MAX_DIMS);
    a->dtype = dtype;
    a->ndim = ndim;
    if (ndim)
        memcpy(a->shape, shape, (size_t)ndim * sizeof *shape);
    if (npy_shape_bytes(dtype, ndim, shape, &a->nbytes))
        return avps_fail(err, "npy array: shape overflows the address space");
    if (a->nbytes && !(a->data = calloc(1, a->nbytes)))
        return avps_fail(err, "npy array: out of memory for %zu bytes", a->nbytes);
    return 0;
}

void npy_array_release(npy_array *a) {
    free(a->data);
    a->data = NULL;
    a->nbytes = 0;
}

/* ---- the decompressed byte stream ----------------------------------------------------- */

typedef struct {
    const char *path;
    FILE *fp;
    ZSTD_DCtx *dctx;     /* NULL for a plain .npy */
    uint8_t *in;
    ZSTD_inBuffer src;
    int at_eof;          /* fread has returned 0 */
    int frame_open;      /* a frame has begun and not ended: at EOF, the file was cut */
} npy_source;

static int source_open(npy_source *s, const char *path, avps_error *err) {
    memset(s, 0, sizeof *s);
    s->path = path;
    if (!(s->fp = fopen(path, "rb")))
        return avps_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (has_suffix(path, ".npy"))
        return 0;
    s->dctx = ZSTD_createDCtx();
    s->in = malloc(ZSTD_DStreamInSize());
    if (!s->dctx || !s->in)
        return avps_fail(err, "%s: out of memory", path);
    return 0;
}

static void source_close(npy_source *s) {
    if (s->fp)
        fclose(s->fp);
    ZSTD_freeDCtx(s->dctx);
    free(s->in);
}

static int zstd_failure(const npy_source *s, size_t ret, avps_error *err) {
    if (ZSTD_getErrorCode(ret) == ZSTD_error_prefix_unknown)
        return avps_fail(err, "%s: not a zstd stream (a plain .npy must be named *.npy)", s->path);
    return avps_fail(err, "%s: corrupt zstd stream: %s", s->path, ZSTD_getErrorName(ret));
}

static int zstd_read(npy_source *s, uint8_t *dst, size_t n, size_t *got, avps_error *err) {
    ZSTD_outBuffer out = {dst, n, 0};
    while (out.pos < out.size) {
        if (s->src.pos == s->src.size && !s->at_eof) {
            size_t r = fread(s->in, 1, ZSTD_DStreamInSize(), s->fp);
            if (r == 0 && ferror(s->fp))
                return avps_fail(err, "%s: read error", s->path);
            s->at_eof = r == 0;
            s->src = (ZSTD_inBuffer){s->in, r, 0};
        }
        size_t in_before = s->src.pos, out_before = out.pos;
        size_t ret = ZSTD_decompressStream(s->dctx, &out, &s->src);
        if (ZSTD_isError(ret))
            return zstd_failure(s, ret, err);
        int progress = s->src.pos != in_before || out.pos != out_before;
        if (progress)
            s->frame_open = ret != 0; /* 0: a frame just ended, fully flushed */
        else if (s->src.pos < s->src.size)
            return avps_fail(err, "%s: corrupt zstd stream: the decoder is stuck", s->path);
        else if (s->at_eof)
            break;
    }
    if (out.pos < out.size && s->frame_open)
        return avps_fail(err, "%s: truncated zstd stream: the last frame is incomplete", s->path);
    *got = out.pos;
    return 0;
}

/* Up to n bytes into dst; *got < n only at the end of the stream. */
static int source_read(npy_source *s, void *dst, size_t n, size_t *got, avps_error *err) {
    if (s->dctx)
        return zstd_read(s, dst, n, got, err);
    *got = fread(dst, 1, n, s->fp);
    if (*got < n && ferror(s->fp))
        return avps_fail(err, "%s: read error", s->path);
    return 0;
}

/* ---- reading ------------------------------------------------------------------------- */

static int read_header(npy_source *s, npy_array *a, avps_error *err) {
    uint8_t pre[12];
    size_t got;
    if (source_read(s, pre, 10, &got, err))
        return -1;
    if (got < 10 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return avps_fail(err, "%s: not a .npy file (%s)", s->path, got < 10 ? "too short" : "no \\x93NUMPY magic");
    unsigned major = pre[6], minor = pre[7];
    if ((major < 1 || major > 3) || minor != 0)
        return avps_fail(err, "%s: .npy format version %u.%u is not one of 1.0, 2.0, 3.0", s->path, major, minor);
    size_t len = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (major > 1) { /* versions 2.0 and 3.0: a 4-byte length */
        if (source_read(s, pre + 10, 2, &got, err))
            return -1;
        if (got < 2)
            return avps_fail(err, "%s: not a .npy file (too short)", s->path);
        len |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (len > NPY_HEADER_MAX)
        return avps_fail(err, "%s: .npy header of %zu bytes is too long (at most %d)", s->path, len, NPY_HEADER_MAX);
    char *text = malloc(len + 1);
    if (!text)
        return avps_fail(err, "%s: out of memory", s->path);
    int rc = source_read(s, text, len, &got, err);
    if (rc == 0 && got < len)
        rc = avps_fail(err, "%s: the .npy header says %zu bytes, the file ends after %zu", s->path, len, got);
    if (rc == 0 && npy_header_parse(text, len, a, err))
        rc = avps_prefix(err, "%s: .npy header", s->path);
    free(text);
    return rc;
}

static int check_expect(const char *path, const npy_array *a, const npy_expect *e, avps_error *err) {
    if (!e)
        return 0;
    if (e->dtypes && !(e->dtypes & NPY_DTYPE_BIT(a->dtype))) {
        char want[64] = "";
        for (int d = 0; d < NPY_DTYPE_COUNT; d++)
            if (e->dtypes & NPY_DTYPE_BIT(d))
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%s'", *want ? " or " : "",
                         npy_dtype_descr((npy_dtype)d));
        return avps_fail(err, "%s: dtype '%s', expected %s", path, npy_dtype_descr(a->dtype), want);
    }
    int ok = !e->ndim || e->ndim == a->ndim;
    for (int i = 0; ok && i < NPY_MAX_DIMS; i++)
        ok = !e->shape[i] || (i < a->ndim && e->shape[i] == a->shape[i]);
    if (ok)
        return 0;
    int want_ndim = e->ndim;
    for (int i = 0; i < NPY_MAX_DIMS; i++)
        if (e->shape[i] && i >= want_ndim)
            want_ndim = i + 1;
    char want[NPY_SHAPE_TEXT_MAX], found[NPY_SHAPE_TEXT_MAX];
    npy_shape_text(e->shape, want_ndim, 1, want);
    npy_shape_text(a->shape, a->ndim, 0, found);
    return avps_fail(err, "%s: shape %s, expected %s%s", path, found, want, e->ndim ? "" : " or longer");
}

static int data_size_error(const npy_source *s, const npy_array *a, const char *what, avps_error *err) {
    char shape[NPY_SHAPE_TEXT_MAX];
    npy_shape_text(a->shape, a->ndim, 0, shape);
    return avps_fail(err, "%s: %s: shape %s of '%s' is %zu bytes of data", s->path, what, shape,
                     npy_dtype_descr(a->dtype), a->nbytes);
}

/* The buffer grows as bytes arrive, so a header that lies about a huge shape costs no
 * more memory than the file really holds. */
static int read_data(npy_source *s, npy_array *a, avps_error *err) {
    size_t have = 0, cap = 0;
    while (have < a->nbytes) {
        if (have == cap) {
            if (cap == 0)
                cap = a->nbytes < NPY_FIRST_CHUNK ? a->nbytes : NPY_FIRST_CHUNK;
            else
                cap = cap > a->nbytes / 2 ? a->nbytes : cap * 2;
            void *grown = realloc(a->data, cap);
            if (!grown)
                return avps_fail(err, "%s: out of memory for %zu bytes", s->path, cap);
            a->data = grown;
        }
        size_t got;
        if (source_read(s, (uint8_t *)a->data + have, cap - have, &got, err))
            return -1;
        have += got;
        if (have < cap)
            return data_size_error(s, a, "the data ends early", err);
    }
    uint8_t extra;
    size_t got;
    if (source_read(s, &extra, 1, &got, err))
        return -1;
    return got ? data_size_error(s, a, "more data than the header says", err) : 0;
}

int npy_read(const char *path, const npy_expect *expect, npy_array *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    npy_source s;
    int rc = source_open(&s, path, err) || read_header(&s, out, err) || check_expect(path, out, expect, err) ||
             read_data(&s, out, err);
    source_close(&s);
    if (rc)
        npy_array_release(out);
    return rc ? -1 : 0;
}

/* ---- writing ------------------------------------------------------------------------- */

static int write_zstd(FILE *fp, const char *head, size_t head_len, const npy_array *a, int level,
                      const char *path, avps_error *err) {
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t out_cap = ZSTD_CStreamOutSize();
    uint8_t *buf = malloc(out_cap);
    int rc = cctx && buf ? 0 : avps_fail(err, "%s: out of memory", path);
    size_t r = 0;
    if (rc == 0 && (ZSTD_isError(r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level ? level : 3)) ||
                    ZSTD_isError(r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) ||
                    ZSTD_isError(r = ZSTD_CCtx_setPledgedSrcSize(cctx, head_len + a->nbytes))))
        rc = avps_fail(err, "%s: zstd: %s", path, ZSTD_getErrorName(r));
    /* the header, then the data, in one frame that records its size */
    for (int part = 0; rc == 0 && part < 2; part++) {
        ZSTD_inBuffer in = {part ? a->data : head, part ? a->nbytes : head_len, 0};
        ZSTD_EndDirective mode = part ? ZSTD_e_end : ZSTD_e_continue;
        do {
            ZSTD_outBuffer out = {buf, out_cap, 0};
            r = ZSTD_compressStream2(cctx, &out, &in, mode);
            if (ZSTD_isError(r))
                rc = avps_fail(err, "%s: zstd: %s", path, ZSTD_getErrorName(r));
            else if (fwrite(buf, 1, out.pos, fp) != out.pos)
                rc = avps_fail(err, "%s: write error: %s", path, strerror(errno));
        } while (rc == 0 && (part ? r != 0 : in.pos < in.size));
    }
    ZSTD_freeCCtx(cctx);
    free(buf);
    return rc;
}

int npy_write(const char *path, const npy_array *a, int level, avps_error *err) {
    size_t nbytes;
    if ((unsigned)a->dtype >= NPY_DTYPE_COUNT || a->ndim < 0 || a->ndim > NPY_MAX_DIMS ||
        npy_shape_bytes(a->dtype, a->ndim, a->shape, &nbytes) || nbytes != a->nbytes || (nbytes && !a->data))
        return avps_fail(err, "%s: not a valid array (dtype, shape and nbytes disagree)", path);
    char head[NPY_PREAMBLE_MAX];
    size_t head_len = npy_header_format(a, head);
    atomic_file af;
    if (file_atomic_open(&af, path, err))
        return -1;
    int rc;
    if (has_suffix(path, ".npy"))
        rc = fwrite(head, 1, head_len, af.fp) == head_len && (!nbytes || fwrite(a->data, 1, nbytes, af.fp) == nbytes)
                 ? 0
                 : avps_fail(err, "%s: write error: %s", path, strerror(errno));
    else
        rc = write_zstd(af.fp, head, head_len, a, level, path, err);
    if (rc) {
        file_atomic_abort(&af);
        return -1;
    }
    return file_atomic_commit(&af, err);
}
