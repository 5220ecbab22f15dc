/* npz.c: writing NumPy .npz archives (np.savez): a zip of stored .npy members, so that
 * `np.load` reads COCOeval's arrays from `avps eval ap --eval-out`. Stored, not deflated:
 * the arrays are small next to the results file and np.savez stores too. The CRC-32 is
 * libdeflate's (zlib's polynomial), the library PNG decoding already links. */
#include "npy_header.h"

#include <errno.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP_VERSION 20        /* 2.0: what a stored member needs */
#define ZIP_DOS_DATE 0x0021   /* 1980-01-01, the earliest date zip can say: same arrays, same bytes */
#define ZIP_NAME_MAX 200

typedef struct {
    uint8_t b[64];
    size_t n;
} zip_bytes;

static void put16(zip_bytes *z, uint32_t v) {
    z->b[z->n++] = (uint8_t)v;
    z->b[z->n++] = (uint8_t)(v >> 8);
}

static void put32(zip_bytes *z, uint32_t v) {
    put16(z, v & 0xffff);
    put16(z, v >> 16);
}

typedef struct {
    char name[ZIP_NAME_MAX + 5]; /* NAME.npy */
    uint32_t crc, size, offset;
} zip_member;

/* The fields a local header and a central directory entry share, from "version needed". */
static void put_common(zip_bytes *z, const zip_member *m) {
    put16(z, ZIP_VERSION);
    put16(z, 0); /* flags */
    put16(z, 0); /* method: stored */
    put16(z, 0); /* time 00:00:00 */
    put16(z, ZIP_DOS_DATE);
    put32(z, m->crc);
    put32(z, m->size); /* compressed */
    put32(z, m->size);
    put16(z, (uint32_t)strlen(m->name));
    put16(z, 0); /* extra field */
}

static int put_bytes(FILE *fp, const void *p, size_t n) { return n && fwrite(p, 1, n, fp) != n ? -1 : 0; }

int npz_write(const char *path, const char *const *names, const npy_array *arrays, size_t n, avps_error *err) {
    zip_member *m = calloc(n + 1, sizeof *m);
    if (!m)
        return avps_fail(err, "%s: out of memory", path);
    char (*heads)[NPY_PREAMBLE_MAX] = malloc((n + 1) * sizeof *heads);
    size_t *head_len = malloc((n + 1) * sizeof *head_len);
    uint64_t offset = 0;
    int rc = heads && head_len ? 0 : avps_fail(err, "%s: out of memory", path);
    /* everything that can be refused is, before the file is opened */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const npy_array *a = &arrays[i];
        size_t nbytes;
        if (strlen(names[i]) == 0 || strlen(names[i]) > ZIP_NAME_MAX || strchr(names[i], '/'))
            rc = avps_fail(err, "%s: member name '%s' is empty, too long or has a '/'", path, names[i]);
        else if ((unsigned)a->dtype >= NPY_DTYPE_COUNT || a->ndim < 0 || a->ndim > NPY_MAX_DIMS ||
                 npy_shape_bytes(a->dtype, a->ndim, a->shape, &nbytes) || nbytes != a->nbytes ||
                 (nbytes && !a->data))
            rc = avps_fail(err, "%s: member '%s': not a valid array", path, names[i]);
        if (rc)
            break;
        head_len[i] = npy_header_format(a, heads[i]);
        uint64_t size = (uint64_t)head_len[i] + a->nbytes;
        snprintf(m[i].name, sizeof m[i].name, "%s.npy", names[i]);
        if (size > UINT32_MAX || offset + 30 + strlen(m[i].name) + size > UINT32_MAX)
            rc = avps_fail(err, "%s: member '%s' would pass 4 GiB, which needs zip64 (not written)", path, names[i]);
        else {
            m[i].size = (uint32_t)size;
            m[i].offset = (uint32_t)offset;
            uint32_t crc = libdeflate_crc32(0, heads[i], head_len[i]);
            m[i].crc = a->nbytes ? libdeflate_crc32(crc, a->data, a->nbytes) : crc;
            offset += 30 + strlen(m[i].name) + size;
        }
    }
    uint64_t central = 0;
    for (size_t i = 0; i < n; i++)
        central += 46 + strlen(m[i].name);
    if (rc == 0 && (n > 0xffff || offset + central + 22 > UINT32_MAX))
        rc = avps_fail(err, "%s: too many members or too big for a zip without zip64 (not written)", path);
    atomic_file af;
    int opened = rc == 0 && file_atomic_open(&af, path, err) == 0;
    if (rc == 0 && !opened)
        rc = -2;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        zip_bytes z = {{0}, 0};
        put32(&z, ZIP_LOCAL_SIG);
        put_common(&z, &m[i]);
        if (put_bytes(af.fp, z.b, z.n) || put_bytes(af.fp, m[i].name, strlen(m[i].name)) ||
            put_bytes(af.fp, heads[i], head_len[i]) || put_bytes(af.fp, arrays[i].data, arrays[i].nbytes))
            rc = -3;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        zip_bytes z = {{0}, 0};
        put32(&z, ZIP_CENTRAL_SIG);
        put16(&z, ZIP_VERSION); /* made by: MS-DOS attributes, so no mode bits to choose */
        put_common(&z, &m[i]);
        put16(&z, 0); /* comment */
        put16(&z, 0); /* disk */
        put16(&z, 0); /* internal attributes */
        put32(&z, 0); /* external attributes */
        put32(&z, m[i].offset);
        if (put_bytes(af.fp, z.b, z.n) || put_bytes(af.fp, m[i].name, strlen(m[i].name)))
            rc = -3;
    }
    if (rc == 0) {
        zip_bytes z = {{0}, 0};
        put32(&z, ZIP_END_SIG);
        put16(&z, 0); /* this disk */
        put16(&z, 0); /* the disk of the central directory */
        put16(&z, (uint32_t)n);
        put16(&z, (uint32_t)n);
        put32(&z, (uint32_t)central);
        put32(&z, (uint32_t)offset);
        put16(&z, 0); /* comment */
        if (put_bytes(af.fp, z.b, z.n))
            rc = -3;
    }
    if (rc == -3)
        avps_fail(err, "%s: write error: %s", path, strerror(errno));
    if (rc == 0)
        rc = file_atomic_commit(&af, err);
    else if (opened)
        file_atomic_abort(&af);
    free(m);
    free(heads);
    free(head_len);
    return rc ? -1 : 0;
}
