/* safetensors.c: reading weights in the safetensors format: 8 bytes little-endian
 * header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__":
 * {...}}, then the data. The file is memory-mapped; everything in the header is checked
 * against the file before any tensor is read, since weights come from elsewhere: header
 * length against file size, each tensor's byte range against dtype x shape (with
 * overflow checks), ranges inside the data and not overlapping. Errors name the file and
 * the tensor. */
#include "../nn.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20)

static const struct {
    const char *name;
    st_dtype dtype;
    size_t size;
} st_dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8}, {"I64", ST_I64, 8},
    {"I32", ST_I32, 4}, {"I16", ST_I16, 2}, {"I8", ST_I8, 1},     {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};

static size_t dtype_size(st_dtype d) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (st_dtypes[i].dtype == d)
            return st_dtypes[i].size;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int by_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

void st_close(st_file *f) {
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    for (size_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++)
        free(f->meta_keys[i]), free(f->meta_values[i]);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->tensors);
    free(f->path);
    free(f);
}

static int read_meta(st_file *f, const cJSON *meta, avps_error *err) {
    if (!cJSON_IsObject(meta))
        return avps_fail(err, "%s: \"__metadata__\" must be an object of strings", f->path);
    size_t n = (size_t)cJSON_GetArraySize(meta);
    f->meta_keys = calloc(n + 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return avps_fail(err, "%s: out of memory", f->path);
    const cJSON *m;
    cJSON_ArrayForEach(m, meta) {
        if (!cJSON_IsString(m))
            return avps_fail(err, "%s: __metadata__ \"%s\" is not a string", f->path, m->string);
        f->meta_keys[f->n_meta] = strdup(m->string);
        f->meta_values[f->n_meta] = strdup(m->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_values[f->n_meta])
            return avps_fail(err, "%s: out of memory", f->path);
        f->n_meta++;
    }
    return 0;
}

/* One header entry: dtype, shape and offsets, checked against the data section. */
static int read_entry(st_file *f, const cJSON *e, st_tensor *t, avps_error *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return avps_fail(err, "%s: tensor %s: header entry is not an object", f->path, name);
    const char *dt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "dtype"));
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt)
        return avps_fail(err, "%s: tensor %s: no dtype", f->path, name);
    size_t i = 0, nd = sizeof st_dtypes / sizeof *st_dtypes;
    while (i < nd && strcmp(st_dtypes[i].name, dt) != 0)
        i++;
    if (i == nd)
        return avps_fail(err, "%s: tensor %s: unknown dtype \"%s\"", f->path, name, dt);
    t->dtype = st_dtypes[i].dtype;
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > 8)
        return avps_fail(err, "%s: tensor %s: shape must be a list of at most 8 sizes", f->path, name);
    uint64_t count = 1;
    const cJSON *d;
    t->ndim = 0;
    cJSON_ArrayForEach(d, shape) {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (v < 0 || v != floor(v) || v > 9007199254740992.0)
            return avps_fail(err, "%s: tensor %s: shape holds a size that is not a count", f->path, name);
        uint64_t s = (uint64_t)v;
        if (s && count > UINT64_MAX / s)
            return avps_fail(err, "%s: tensor %s: shape overflows", f->path, name);
        count *= s;
        t->shape[t->ndim++] = (int64_t)s;
    }
    if (count > UINT64_MAX / st_dtypes[i].size)
        return avps_fail(err, "%s: tensor %s: shape overflows", f->path, name);
    uint64_t bytes = count * st_dtypes[i].size;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return avps_fail(err, "%s: tensor %s: data_offsets must be [begin, end]", f->path, name);
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble, en = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(offs, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(offs, 1)) || b < 0 ||
        en < b || b != floor(b) || en != floor(en) || en > (double)f->data_len)
        return avps_fail(err, "%s: tensor %s: data_offsets [%.0f, %.0f] outside the %zu bytes of data (truncated?)",
                         f->path, name, b, en, f->data_len);
    t->begin = (size_t)b, t->end = (size_t)en;
    if (t->end - t->begin != bytes)
        return avps_fail(err, "%s: tensor %s: data_offsets hold %zu bytes, dtype %s x shape needs %llu", f->path,
                         name, t->end - t->begin, dt, (unsigned long long)bytes);
    if (!(t->name = strdup(name)))
        return avps_fail(err, "%s: out of memory", f->path);
    return 0;
}

static int check_overlaps(st_file *f, avps_error *err) {
    if (f->n_tensors < 2)
        return 0;
    st_tensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order)
        return avps_fail(err, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, by_begin);
    int rc = 0;
    for (size_t i = 1; i < f->n_tensors && rc == 0; i++)
        if (order[i]->begin < order[i - 1]->end)
            rc = avps_fail(err, "%s: tensors %s and %s overlap", f->path, order[i - 1]->name, order[i]->name);
    free(order);
    return rc;
}
static int by_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* cJSON keeps every copy of a repeated key and readers would see only one of them (or, for
 * __metadata__, run twice), so a header with a key twice in any object is refused outright. */
static int check_duplicate_keys(st_file *f, const cJSON *node, avps_error *err) {
    size_t n = 0;
    const cJSON *c;
    for (c = node->child; c; c = c->next)
        if (check_duplicate_keys(f, c, err))
            return -1;
        else
            n++;
    if (!cJSON_IsObject(node) || n < 2)
        return 0;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys)
        return avps_fail(err, "%s: out of memory", f->path);
    n = 0;
    for (c = node->child; c; c = c->next)
        keys[n++] = c->string;
    qsort(keys, n, sizeof *keys, by_key);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(keys[i], keys[i - 1]) == 0)
            rc = avps_fail(err, "%s: the header holds the key \"%s\" twice in one object", f->path, keys[i]);
    free(keys);
    return rc;
}

static int parse_header(st_file *f, const char *text, size_t len, avps_error *err) {
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return avps_fail(err, "%s: the header is not a JSON object", f->path);
    }
    if (check_duplicate_keys(f, root, err)) {
        cJSON_Delete(root);
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    int rc = 0;
    if (!(f->tensors = calloc(n + 1, sizeof *f->tensors)))
        rc = avps_fail(err, "%s: out of memory", f->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (rc)
            break;
        if (strcmp(e->string, "__metadata__") == 0)
            rc = read_meta(f, e, err);
        else if ((rc = read_entry(f, e, &f->tensors[f->n_tensors], err)) == 0)
            f->n_tensors++;
    }
    cJSON_Delete(root);
    if (rc)
        return -1;
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, by_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, f->tensors[i - 1].name) == 0)
            return avps_fail(err, "%s: tensor %s appears twice", f->path, f->tensors[i].name);
    return check_overlaps(f, err);
}

st_file *st_open(const char *path, avps_error *err) {
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        avps_fail(err, "%s: out of memory", path);
        return NULL;
    }
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        avps_fail(err, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (sb.st_size < 8) {
        avps_fail(err, "%s: not a safetensors file (%lld bytes, truncated?)", path, (long long)sb.st_size);
        goto fail;
    }
    f->map_len = (size_t)sb.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        avps_fail(err, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    close(fd), fd = -1;
    const unsigned char *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > ST_MAX_HEADER || hlen > f->map_len - 8) {
        avps_fail(err, "%s: header length %llu does not fit the file's %zu bytes (truncated, or not safetensors)",
                  path, (unsigned long long)hlen, f->map_len);
        goto fail;
    }
    f->data = p + 8 + hlen;
    f->data_len = f->map_len - 8 - (size_t)hlen;
    if (parse_header(f, (const char *)p + 8, (size_t)hlen, err) != 0)
        goto fail;
    return f;
fail:
    if (fd >= 0)
        close(fd);
    st_close(f);
    return NULL;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    st_tensor key = {.name = (char *)name};
    return bsearch(&key, f->tensors, f->n_tensors, sizeof key, by_name);
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

static void shape_text(const int64_t *shape, int ndim, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, ")");
}

static float bf16_to_float(uint16_t v) {
    uint32_t bits = (uint32_t)v << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

int st_read_f32(const st_file *f, const char *name, int ndim, const int64_t *shape, float *dst, avps_error *err) {
    const st_tensor *t = st_find(f, name);
    if (!t)
        return avps_fail(err, "%s: no tensor %s (is this the network's state dict?)", f->path, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], have[128];
        shape_text(shape, ndim, want, sizeof want);
        shape_text(t->shape, t->ndim, have, sizeof have);
        return avps_fail(err, "%s: tensor %s has shape %s, the architecture needs %s", f->path, name, have, want);
    }
    size_t n = (t->end - t->begin) / dtype_size(t->dtype);
    const unsigned char *src = f->data + t->begin;
    ((st_tensor *)t)->used = 1;
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == ST_F32) {
            uint32_t b = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 | (uint32_t)src[4 * i + 2] << 16 |
                         (uint32_t)src[4 * i + 3] << 24;
            memcpy(&dst[i], &b, sizeof b);
        } else if (t->dtype == ST_F16) {
            dst[i] = float_from_half((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        } else if (t->dtype == ST_BF16) {
            dst[i] = bf16_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        } else if (t->dtype == ST_F64) {
            uint64_t b = 0;
            for (int k = 7; k >= 0; k--)
                b = b << 8 | src[8 * i + (size_t)k];
            double v;
            memcpy(&v, &b, sizeof v);
            dst[i] = (float)v;
        } else {
            return avps_fail(err, "%s: tensor %s: dtype is not floating point (F32, F16, BF16 or F64)", f->path,
                             name);
        }
        if (!isfinite(dst[i]))
            return avps_fail(err, "%s: tensor %s: element %zu is not finite", f->path, name, i);
    }
    return 0;
}
