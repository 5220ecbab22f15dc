/* import_semantic.c: the semantic side of `avps import`, in the forms networks dump it:
 * label-map PNGs (8- or 16-bit grey, palette indexes), NumPy arrays (.npy or .npy.zst:
 * C x h x w probabilities or logits, kept as they are, or an h x w label map), and
 * detectron2's sem_seg_predictions.json (one RLE per image and category). */
#include "import.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *import_stem_path(const char *dir, const char *file_name, const char *suffix) {
    size_t n = strlen(file_name), s = strlen(suffix);
    if (n > 4 && strcmp(file_name + n - 4, ".png") == 0)
        n -= 4;
    char *name = malloc(n + s + 1), *path = NULL;
    if (name) {
        snprintf(name, n + s + 1, "%.*s%s", (int)n, file_name, suffix);
        path = path_join(dir, name);
    }
    free(name);
    return path;
}

/* ---- arrays ------------------------------------------------------------------------------ */

/* <stem>.npy or <stem>.npy.zst, whichever exists (both: refused, as ambiguous). */
static int npy_path(const import_job *ij, const pan_annotation *ann, char **out, avps_error *err) {
    char *plain = import_stem_path(ij->semantic_dir, ann->file_name, ".npy");
    char *zst = import_stem_path(ij->semantic_dir, ann->file_name, ".npy.zst");
    int rc = 0;
    *out = NULL;
    if (!plain || !zst)
        rc = avps_fail(err, "out of memory");
    else if (access(plain, F_OK) == 0 && access(zst, F_OK) == 0)
        rc = avps_fail(err, "%s and %s both exist: keep one", plain, zst);
    else if (access(plain, F_OK) == 0)
        *out = plain, plain = NULL;
    else if (access(zst, F_OK) == 0)
        *out = zst, zst = NULL;
    else
        rc = avps_fail(err, "%s: no semantic array (nor %s)", plain, zst);
    free(plain);
    free(zst);
    return rc;
}

static const npy_expect any_array = {NPY_DTYPE_BIT(NPY_F16) | NPY_DTYPE_BIT(NPY_F32) | NPY_DTYPE_BIT(NPY_U8) |
                                         NPY_DTYPE_BIT(NPY_U16) | NPY_DTYPE_BIT(NPY_I32),
                                     0,
                                     {0}};

static int is_float(const npy_array *a) { return a->dtype == NPY_F16 || a->dtype == NPY_F32; }

/* A label map is h x w or 1 x h x w (mmsegmentation's); scores are C x h x w. */
static int array_grid(const npy_array *a, const char *path, int *labels, uint32_t *c, uint32_t *h, uint32_t *w,
                      avps_error *err) {
    *labels = !is_float(a);
    if (a->ndim == 2 && *labels)
        *c = 1, *h = (uint32_t)a->shape[0], *w = (uint32_t)a->shape[1];
    else if (a->ndim == 3 && (!*labels || a->shape[0] == 1))
        *c = (uint32_t)a->shape[0], *h = (uint32_t)a->shape[1], *w = (uint32_t)a->shape[2];
    else
        return avps_fail(err, "%s: a semantic array is C x h x w scores (float) or an h x w label map (integer), "
                              "not %d axes of %s",
                         path, a->ndim, npy_dtype_descr(a->dtype));
    if (*h == 0 || *w == 0 || *c == 0 || a->shape[0] > 65535)
        return avps_fail(err, "%s: an empty semantic grid, or too many channels", path);
    return 0;
}

/* Score channels: the map's category of each index, or the dataset's categories in order. */
static int score_channels(import_job *ij, uint32_t c, const char *path, avps_error *err) {
    if (!ij->semantic_kind)
        return avps_fail(err, "%s: a float array: say whether it holds probabilities or logits "
                              "(--semantic-kind probs|logits)", path);
    ij->kind = strcmp(ij->semantic_kind, "probs") == 0 ? SS_PROBS : SS_LOGITS;
    if (!ij->has_semantic_map && c != ij->gt->n_categories)
        return avps_fail(err, "%s: %u channels, but %s has %zu categories: give --category-map to say which "
                              "channel is which", path, c, ij->gt->path, ij->gt->n_categories);
    ij->channels = c;
    if (!(ij->channel_category = malloc(sizeof(int32_t) * c)))
        return avps_fail(err, "out of memory");
    for (uint32_t k = 0; k < c; k++) {
        int32_t id = ij->has_semantic_map ? category_map_get(&ij->semantic_map, k) : ij->gt->categories[k].id;
        if (id == CATEGORY_MAP_ABSENT)
            return avps_fail(err, "%s: channel %u is outside the category map %s", path, k, ij->semantic_map.name);
        if (id == CATEGORY_MAP_NONE || pan_dataset_category_index(ij->gt, id) < 0)
            return avps_fail(err, "%s: channel %u maps to %s%d, not a category of %s", path, k,
                             id == CATEGORY_MAP_NONE ? "null " : "category ", id, ij->gt->path);
        ij->channel_category[k] = id;
    }
    return 0;
}

static int label_channels(import_job *ij, avps_error *err) {
    ij->kind = SS_LABELS;
    ij->channels = (uint32_t)ij->gt->n_categories;
    if (!(ij->channel_category = malloc(sizeof(int32_t) * (ij->channels + 1))))
        return avps_fail(err, "out of memory");
    for (uint32_t c = 0; c < ij->channels; c++)
        ij->channel_category[c] = ij->gt->categories[c].id;
    return 0;
}

/* The first image's array tells the store's kind and channels. */
static int npy_prepare(import_job *ij, avps_error *err) {
    if (ij->gt->n_annotations == 0)
        return label_channels(ij, err);
    char *path = NULL;
    npy_array a = {0};
    int labels = 0;
    uint32_t c, h, w;
    int rc = npy_path(ij, &ij->gt->annotations[0], &path, err);
    if (rc == 0)
        rc = npy_read(path, &any_array, &a, err);
    if (rc == 0)
        rc = array_grid(&a, path, &labels, &c, &h, &w, err);
    if (rc == 0)
        rc = labels ? label_channels(ij, err) : score_channels(ij, c, path, err);
    npy_array_release(&a);
    free(path);
    return rc;
}

/* Where the grid lies: --ss-stride R puts cell u over pixels [R u, R u + R), padding past
 * the image; else the grid is stretched over the image (the identity at its size). */
static int grid_geometry(const import_job *ij, const pan_image *im, ss_map *ss, const char *path, avps_error *err) {
    if (!ij->stride) {
        ss->geo = ss_geometry_stretch(ss->w, ss->h, im->width, im->height);
        return 0;
    }
    uint32_t r = (uint32_t)ij->stride, vw = (im->width + r - 1) / r, vh = (im->height + r - 1) / r;
    if (vw > ss->w || vh > ss->h)
        return avps_fail(err, "%s: a %ux%u grid at stride %u cannot cover the %ux%u image", path, ss->w, ss->h, r,
                         im->width, im->height);
    ss->geo = (ss_geometry){1.0 / r, 1.0 / r, 0, 0, vw, vh};
    return 0;
}

static int scores_take(const import_job *ij, npy_array *a, ss_map *ss, const char *path, avps_error *err) {
    size_t cells = (size_t)ss->h * ss->w, n = cells * ss->channels;
    uint16_t *h = a->dtype == NPY_F16 ? a->data : malloc(n * sizeof *h + 1);
    if (!h)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; a->dtype == NPY_F32 && i < n; i++)
        h[i] = half_from_float(((const float *)a->data)[i]);
    ss->scores = h;
    if (a->dtype == NPY_F16)
        a->data = NULL; /* taken */
    for (size_t i = 0; i < n; i++)
        if ((h[i] & 0x7C00) == 0x7C00)
            return avps_fail(err, "%s: channel %zu, cell (%zu, %zu) is not finite", path, i / cells, i % cells % ss->w,
                             i % cells / ss->w);
    for (size_t i = 0; ij->kind == SS_PROBS && i < cells; i++) {
        double sum = 0;
        for (uint32_t c = 0; c < ss->channels; c++)
            sum += float_from_half(h[c * cells + i]);
        if (fabs(sum - 1) > 0.02)
            return avps_fail(err, "%s: the probabilities of cell (%zu, %zu) sum to %g, not 1 (logits? "
                                  "--semantic-kind logits)", path, i % ss->w, i / ss->w, sum);
    }
    return 0;
}

static int labels_take(const import_job *ij, const npy_array *a, ss_map *ss, const char *path, avps_error *err) {
    size_t n = (size_t)ss->h * ss->w;
    char where[1200];
    for (size_t i = 0; i < n; i++) {
        int64_t v = a->dtype == NPY_U8 ? ((const uint8_t *)a->data)[i]
                    : a->dtype == NPY_U16 ? ((const uint16_t *)a->data)[i] : ((const int32_t *)a->data)[i];
        uint16_t ch;
        if (v < 0 || v >= LABEL_VALUES || ij->label_channel[v] < LABEL_NO_CLASS) {
            snprintf(where, sizeof where, "%s: cell (%zu, %zu)", path, i % ss->w, i / ss->w);
            if (v < 0 || v >= LABEL_VALUES)
                return avps_fail(err, "%s holds %lld, not a label 0..65535", where, (long long)v);
            return import_label(ij, (uint32_t)v, where, &ch, err);
        }
        ss->labels[i] = ij->label_channel[v] >= 0 ? (uint16_t)ij->label_channel[v] : SS_LABEL_NONE;
    }
    return 0;
}

static int npy_read_image(const import_job *ij, const pan_annotation *ann, const pan_image *im, ss_map *ss,
                          avps_error *err) {
    char *path = NULL;
    npy_array a = {0};
    int labels = 0;
    uint32_t c = 0, h = 0, w = 0;
    int rc = npy_path(ij, ann, &path, err);
    if (rc == 0)
        rc = npy_read(path, &any_array, &a, err);
    if (rc == 0)
        rc = array_grid(&a, path, &labels, &c, &h, &w, err);
    if (rc == 0 && labels != (ij->kind == SS_LABELS))
        rc = avps_fail(err, "%s: a %s array, but the first image's is %s", path, labels ? "label" : "score",
                       labels ? "scores" : "a label map");
    if (rc == 0 && !labels && c != ij->channels)
        rc = avps_fail(err, "%s: %u channels, but the first image's array has %u", path, c, ij->channels);
    if (rc == 0) {
        ss->h = h, ss->w = w;
        rc = grid_geometry(ij, im, ss, path, err);
    }
    if (rc == 0 && labels && !(ss->labels = malloc((size_t)h * w * sizeof *ss->labels)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0)
        rc = labels ? labels_take(ij, &a, ss, path, err) : scores_take(ij, &a, ss, path, err);
    npy_array_release(&a);
    free(path);
    return rc;
}

/* ---- label-map PNGs --------------------------------------------------------------------- */

static int png_read_image(const import_job *ij, const pan_annotation *ann, const pan_image *im, ss_map *ss,
                          avps_error *err) {
    char *path = path_join(ij->semantic_dir, ann->file_name);
    png_label_reader *r = path ? png_label_open(path, im->width, im->height, err) : NULL;
    uint16_t *row = malloc(((size_t)im->width + 1) * sizeof *row);
    int rc = !path || !row ? avps_fail(err, "out of memory") : r ? 0 : -1;
    char where[1200];
    ss->h = im->height, ss->w = im->width;
    ss->geo = ss_geometry_stretch(im->width, im->height, im->width, im->height);
    if (rc == 0 && !(ss->labels = malloc((size_t)im->width * im->height * sizeof *ss->labels)))
        rc = avps_fail(err, "out of memory");
    for (uint32_t y = 0; rc == 0 && y < im->height; y++) {
        if ((rc = png_label_read_row(r, row, err)) != 0)
            break;
        uint16_t *dst = ss->labels + (size_t)y * im->width;
        for (uint32_t x = 0; rc == 0 && x < im->width; x++) {
            int32_t c = ij->label_channel[row[x]];
            if (c >= 0 || c == LABEL_NO_CLASS) {
                dst[x] = c >= 0 ? (uint16_t)c : SS_LABEL_NONE;
                continue;
            }
            snprintf(where, sizeof where, "%s: pixel (%u, %u)", path, x, y);
            rc = import_label(ij, row[x], where, &dst[x], err);
        }
    }
    png_label_free(r);
    free(row);
    free(path);
    return rc;
}

/* ---- detectron2's sem_seg_predictions.json --------------------------------------------- */

/* The image an entry names: "image_id" (an integer), or "file_name" (a path whose last
 * component, less its extension, is the stem of the image's file_name: detectron2 writes
 * the input image's path). */
static const char *base_stem(const char *path, size_t *len) {
    const char *slash = strrchr(path, '/'), *b = slash ? slash + 1 : path, *dot = strrchr(b, '.');
    *len = dot ? (size_t)(dot - b) : strlen(b);
    return b;
}

static long entry_image(const import_job *ij, const cJSON *e) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "image_id");
    const char *fn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "file_name"));
    if (cJSON_IsNumber(id) || cJSON_IsString(id)) {
        char text[64];
        if (cJSON_IsNumber(id))
            snprintf(text, sizeof text, "%.17g", id->valuedouble);
        else
            snprintf(text, sizeof text, "%s", id->valuestring);
        for (size_t i = 0; i < ij->gt->n_images; i++)
            if (strcmp(ij->gt->images[i].id, text) == 0)
                return (long)i;
        return -1;
    }
    if (!fn)
        return -2;
    size_t n, m;
    const char *s = base_stem(fn, &n);
    for (size_t i = 0; i < ij->gt->n_images; i++) {
        const char *t = base_stem(ij->gt->images[i].file_name, &m);
        if (m == n && strncmp(s, t, n) == 0)
            return (long)i;
    }
    return -1;
}

static int json_prepare(import_job *ij, avps_error *err) {
    size_t len, n_img = ij->gt->n_images;
    char *text = file_read_all(ij->semantic_json, &len, err);
    if (!text)
        return -1;
    const char *bad = NULL;
    ij->semseg = cJSON_ParseWithOpts(text, &bad, 1);
    long at = bad ? (long)(bad - text) : 0;
    free(text);
    if (!cJSON_IsArray(ij->semseg))
        return avps_fail(err, "%s: not a JSON list of semantic results (%s near byte %ld)", ij->semantic_json,
                         ij->semseg ? "not a list" : "malformed JSON", at);
    size_t n = (size_t)cJSON_GetArraySize(ij->semseg);
    long *image_of = malloc((n + 1) * sizeof *image_of);
    ij->semseg_items = malloc((n + 1) * sizeof *ij->semseg_items);
    ij->semseg_pos = malloc((n + 1) * sizeof *ij->semseg_pos);
    ij->semseg_start = calloc(n_img + 2, sizeof *ij->semseg_start);
    if (!image_of || !ij->semseg_items || !ij->semseg_pos || !ij->semseg_start) {
        free(image_of);
        return avps_fail(err, "out of memory");
    }
    size_t k = 0;
    int rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ij->semseg) {
        long img = entry_image(ij, e);
        if (img < 0) {
            const char *fn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "file_name"));
            rc = avps_fail(err, "%s: entry %zu: %s", ij->semantic_json, k,
                           img == -2 ? "needs \"file_name\" or \"image_id\"" : "its image is not in the dataset");
            if (img == -1 && fn)
                avps_prefix(err, "file %s", fn); /* the name, for the user to look up */
            break;
        }
        image_of[k++] = img;
        ij->semseg_start[img + 2]++;
    }
    for (size_t i = 2; rc == 0 && i <= n_img + 1; i++)
        ij->semseg_start[i] += ij->semseg_start[i - 1];
    k = 0;
    const cJSON *list = rc == 0 ? ij->semseg : NULL;
    cJSON_ArrayForEach(e, list) {
        size_t at = ij->semseg_start[image_of[k] + 1]++;
        ij->semseg_items[at] = e, ij->semseg_pos[at] = k++;
    }
    free(image_of);
    return rc != 0 ? -1 : label_channels(ij, err);
}

static int entry_mask(const cJSON *e, const pan_image *im, rle_mask *m) {
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(e, "segmentation");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(seg, "size");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(seg, "counts");
    if (cJSON_GetArraySize(size) != 2 || cJSON_GetArrayItem(size, 0)->valuedouble != im->height ||
        cJSON_GetArrayItem(size, 1)->valuedouble != im->width)
        return -1;
    if (cJSON_IsString(counts))
        return rle_from_string(counts->valuestring, im->height, im->width, m);
    if (!cJSON_IsArray(counts))
        return -1;
    size_t n = (size_t)cJSON_GetArraySize(counts), k = 0;
    uint32_t *c = malloc((n + 1) * sizeof *c);
    const cJSON *v;
    int rc = c ? 0 : -1;
    cJSON_ArrayForEach(v, counts) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 4294967296.0)) {
            rc = -1;
            break;
        }
        c[k++] = (uint32_t)v->valuedouble;
    }
    if (rc == 0)
        rc = rle_from_counts(c, k, im->height, im->width, m);
    free(c);
    return rc;
}

static int json_read_image(const import_job *ij, const pan_image *im, ss_map *ss, avps_error *err) {
    size_t npix = (size_t)im->width * im->height, img = (size_t)(im - ij->gt->images);
    uint8_t *bits = malloc(npix + 1);
    ss->h = im->height, ss->w = im->width;
    ss->geo = ss_geometry_stretch(im->width, im->height, im->width, im->height);
    int rc = bits && (ss->labels = malloc(npix * sizeof *ss->labels)) ? 0 : avps_fail(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < npix; i++)
        ss->labels[i] = SS_LABEL_NONE;
    char where[1200];
    for (size_t k = ij->semseg_start[img]; rc == 0 && k < ij->semseg_start[img + 1]; k++) {
        const cJSON *e = ij->semseg_items[k], *cat = cJSON_GetObjectItemCaseSensitive(e, "category_id");
        snprintf(where, sizeof where, "%s: image %s: entry %zu", ij->semantic_json, im->id, ij->semseg_pos[k]);
        rle_mask m = {0};
        uint16_t ch = SS_LABEL_NONE;
        if (!cJSON_IsNumber(cat) || cat->valuedouble != floor(cat->valuedouble) || cat->valuedouble < 0 ||
            cat->valuedouble >= LABEL_VALUES)
            rc = avps_fail(err, "%s: \"category_id\" must be an integer 0..65535", where);
        else if ((rc = import_label(ij, (uint32_t)cat->valuedouble, where, &ch, err)) != 0)
            break;
        else if (entry_mask(e, im, &m) != 0)
            rc = avps_fail(err, "%s: \"segmentation\" must be an RLE of the %ux%u image", where, im->width, im->height);
        if (rc == 0) {
            rle_decode(&m, bits);
            for (size_t i = 0; rc == 0 && i < npix; i++) {
                if (!bits[i])
                    continue;
                if (ss->labels[i] != SS_LABEL_NONE)
                    rc = avps_fail(err, "%s: pixel (%zu, %zu) is already taken by another entry", where,
                                   i % im->width, i / im->width);
                ss->labels[i] = ch;
            }
        }
        rle_free(&m);
    }
    free(bits);
    return rc;
}

/* ---- the interface ------------------------------------------------------------------------- */

int import_semantic_prepare(import_job *ij, avps_error *err) {
    if (ij->sem == SEM_NPY)
        return npy_prepare(ij, err);
    if (ij->sem == SEM_JSON)
        return json_prepare(ij, err);
    return label_channels(ij, err);
}

int import_semantic_read(const import_job *ij, const pan_annotation *ann, const pan_image *im, ss_map *ss,
                         avps_error *err) {
    ss->kind = ij->kind, ss->channels = ij->channels;
    if (!(ss->channel_category = malloc(sizeof(int32_t) * (ij->channels + 1))))
        return avps_fail(err, "out of memory");
    memcpy(ss->channel_category, ij->channel_category, sizeof(int32_t) * ij->channels);
    if (ij->sem == SEM_NPY)
        return npy_read_image(ij, ann, im, ss, err);
    if (ij->sem == SEM_JSON)
        return json_read_image(ij, im, ss, err);
    return png_read_image(ij, ann, im, ss, err);
}

void import_semantic_release(import_job *ij) {
    cJSON_Delete(ij->semseg);
    free(ij->semseg_items);
    free(ij->semseg_pos);
    free(ij->semseg_start);
}
