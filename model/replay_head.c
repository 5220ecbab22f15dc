/* replay_head.c: the `replay` backend, outputs that real networks dumped elsewhere, read
 * back from a prediction store (model/store.c writes one; docs/formats.md specifies it).
 * Everything read is checked, since it comes from other programs: shapes and dtypes,
 * NaN, probabilities that do not sum to 1, categories without a mapping. */
#include "head_impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

typedef struct {
    char *dir, *name;
    ss_kind kind;
    uint32_t channels;
    int32_t *channel_category;  /* mapped to the dataset */
    size_t n_map;
    int32_t (*map)[2];          /* head category -> dataset category, from head.json */
    category_map preset;        /* or a named map (or a file): indexes outside it refused */
    int has_preset;
    int no_instances;           /* "instances": false, a semantic-only end */
    const pan_dataset *ds;
} replay_state;

static void replay_free(void *p) {
    replay_state *s = p;
    if (!s)
        return;
    free(s->dir);
    free(s->name);
    free(s->channel_category);
    free(s->map);
    if (s->has_preset)
        category_map_release(&s->preset);
    free(s);
}

/* The dataset category of a head category, or -1 when it has no mapping. */
static int32_t map_category(const replay_state *s, double head_id) {
    if (head_id != floor(head_id) || fabs(head_id) > 2147483647.0)
        return -1;
    int32_t id = (int32_t)head_id;
    if (s->has_preset) {
        int32_t to = category_map_get(&s->preset, id);
        return to > 0 && pan_dataset_category_index(s->ds, to) >= 0 ? to : -1;
    }
    for (size_t i = 0; i < s->n_map; i++)
        if (s->map[i][0] == id)
            return s->map[i][1];
    return pan_dataset_category_index(s->ds, id) >= 0 ? id : -1;
}

static int read_map(replay_state *s, const cJSON *map, const char *path, avps_error *err) {
    if (!map)
        return 0;
    if (cJSON_IsString(map)) {
        if (category_map_load(map->valuestring, &s->preset, err) != 0)
            return avps_prefix(err, "%s: \"category_map\"", path);
        s->has_preset = 1;
        return 0;
    }
    if (!cJSON_IsObject(map))
        return avps_fail(err, "%s: \"category_map\" must be an object or a preset name", path);
    size_t n = (size_t)cJSON_GetArraySize(map);
    if (!(s->map = calloc(n + 1, sizeof *s->map)))
        return avps_fail(err, "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, map) {
        char *end;
        long from = strtol(m->string, &end, 10);
        /* ranges before the casts: a double out of int32's range has no defined conversion */
        if (end == m->string || *end || from < 0 || from > INT32_MAX || !cJSON_IsNumber(m) ||
            !(m->valuedouble >= 1 && m->valuedouble <= INT32_MAX) || m->valuedouble != floor(m->valuedouble) ||
            pan_dataset_category_index(s->ds, (int32_t)m->valuedouble) < 0)
            return avps_fail(err, "%s: category_map \"%s\" must map a category id to one of %s", path, m->string,
                             s->ds->path);
        s->map[s->n_map][0] = (int32_t)from, s->map[s->n_map++][1] = (int32_t)m->valuedouble;
    }
    return 0;
}

static int read_head_json(replay_state *s, const char *path, avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "ss_kind"));
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
    int rc = 0;
    if (!cJSON_IsObject(root))
        rc = avps_fail(err, "%s: not a JSON object", path);
    else if (!kind || (strcmp(kind, "probs") && strcmp(kind, "logits") && strcmp(kind, "labels") && strcmp(kind, "none")))
        rc = avps_fail(err, "%s: \"ss_kind\" must be \"probs\", \"logits\", \"labels\" or \"none\"", path);
    else if (!cJSON_IsArray(cats) || (cJSON_GetArraySize(cats) < 1) != (strcmp(kind, "none") == 0) ||
             cJSON_GetArraySize(cats) >= (int)SS_LABEL_NONE)
        rc = avps_fail(err, "%s: \"categories\" must list the category id of each channel (none for \"ss_kind\" "
                            "\"none\")", path);
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(root, "instances");
    if (rc == 0 && inst && !cJSON_IsBool(inst))
        rc = avps_fail(err, "%s: \"instances\" must be true or false", path);
    if (rc == 0) {
        s->no_instances = cJSON_IsFalse(inst);
        s->kind = kind[0] == 'p' ? SS_PROBS : kind[1] == 'o' ? SS_LOGITS : kind[0] == 'n' ? SS_PROBS : SS_LABELS;
        s->channels = (uint32_t)cJSON_GetArraySize(cats);
        rc = read_map(s, cJSON_GetObjectItemCaseSensitive(root, "category_map"), path, err);
    }
    if (rc == 0 && !(s->channel_category = malloc(sizeof(int32_t) * s->channels + 1)))
        rc = avps_fail(err, "out of memory");
    const cJSON *c;
    uint32_t i = 0;
    if (rc == 0)
        cJSON_ArrayForEach(c, cats) {
            int32_t mapped = cJSON_IsNumber(c) ? map_category(s, c->valuedouble) : -1;
            if (mapped < 0) {
                rc = avps_fail(err, "%s: channel %u: category %g has no mapping to the categories of %s", path, i,
                               cJSON_IsNumber(c) ? c->valuedouble : NAN, s->ds->path);
                break;
            }
            s->channel_category[i++] = mapped;
        }
    cJSON_Delete(root);
    return rc;
}

static int replay_run(void *state, const head_input *in, head_output *out, avps_error *err);

static int replay_has_instances(const void *state) { return !((const replay_state *)state)->no_instances; }

static uint32_t replay_channels(const void *state, const int32_t **category) {
    const replay_state *s = state;
    *category = s->channel_category;
    return s->channels;
}

/* Each image of the dataset has its files, checked before any image is run: a store that
 * lacks one fails at once, not after the other images were done and written. */
static char *store_npy_path(const char *dir, const char *image_id, const char *suffix);

static int check_one(const char *path, const char *head_name, const char *id, avps_error *err) {
    struct stat st;
    if (!path)
        return avps_fail(err, "out of memory");
    if (stat(path, &st) != 0)
        return avps_fail(err, "head %s, image %s: %s: %s (the store lacks this image's outputs; checked before any "
                              "image is run)", head_name, id, path, strerror(errno));
    return 0;
}

static int check_files(const replay_state *s, const char *head_name, avps_error *err) {
    for (size_t i = 0; i < s->ds->n_annotations; i++) {
        const char *id = s->ds->annotations[i].image_id;
        char *json = store_file_path(s->dir, id, ".json");
        int rc = check_one(json, head_name, id, err);
        free(json);
        if (rc == 0 && s->channels > 0) { /* an instance-only end has no SS files */
            char *ss = store_npy_path(s->dir, id, ".ss.npy");
            rc = check_one(ss, head_name, id, err);
            free(ss);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

void *replay_head_new(const head_config *cfg, const pan_dataset *ds, ss_kind *kind, head_ops *ops,
                      avps_error *err) {
    if (!cfg->store) {
        avps_fail(err, "head %s: a replay head needs a store folder", cfg->name);
        return NULL;
    }
    replay_state *s = calloc(1, sizeof *s);
    char *path = path_join(cfg->store, "head.json");
    if (!s || !path || !(s->dir = strdup(cfg->store)) || !(s->name = strdup(cfg->name))) {
        avps_fail(err, "out of memory");
    } else {
        s->ds = ds;
        int rc = read_head_json(s, path, err);
        if (rc != 0)
            avps_prefix(err, "head %s", cfg->name);
        if (rc == 0 && check_files(s, cfg->name, err) == 0) {
            free(path);
            *kind = s->kind;
            *ops = (head_ops){replay_run, replay_free, replay_channels, replay_has_instances};
            return s;
        }
    }
    free(path);
    replay_free(s);
    return NULL;
}

/* ---- one image ------------------------------------------------------------------------ */

/* Scores as fp16, checked: finite, and for probabilities summing to about 1 per cell. */
static int ss_scores_take(const replay_state *s, npy_array *a, ss_map *ss, const char *path, avps_error *err) {
    size_t cells = (size_t)ss->h * ss->w, n = cells * ss->channels;
    uint16_t *h = a->dtype == NPY_F16 ? a->data : malloc(n * sizeof *h + 1);
    if (!h)
        return avps_fail(err, "out of memory");
    if (a->dtype == NPY_F32)
        for (size_t i = 0; i < n; i++)
            h[i] = half_from_float(((const float *)a->data)[i]);
    ss->scores = h;
    if (a->dtype == NPY_F16)
        a->data = NULL; /* taken */
    for (size_t i = 0; i < n; i++)
        if ((h[i] & 0x7C00) == 0x7C00)
            return avps_fail(err, "%s: channel %zu, cell (%zu, %zu) is not finite", path, i / cells, i % cells % ss->w,
                             i % cells / ss->w);
    for (size_t i = 0; s->kind == SS_PROBS && i < cells; i++) {
        double sum = 0;
        for (uint32_t c = 0; c < ss->channels; c++)
            sum += float_from_half(h[c * cells + i]);
        if (fabs(sum - 1) > 0.02)
            return avps_fail(err, "%s: the probabilities of cell (%zu, %zu) sum to %g, not 1", path, i % ss->w,
                             i / ss->w, sum);
    }
    return 0;
}

static int ss_labels_take(npy_array *a, ss_map *ss, const char *path, avps_error *err) {
    size_t n = (size_t)ss->h * ss->w;
    if (!(ss->labels = malloc(n * sizeof *ss->labels + 1)))
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t v = a->dtype == NPY_U8 ? ((const uint8_t *)a->data)[i] : ((const uint16_t *)a->data)[i];
        int none = a->dtype == NPY_U8 ? v == 255 : v == SS_LABEL_NONE;
        if (!none && v >= ss->channels)
            return avps_fail(err, "%s: cell (%zu, %zu) holds label %u, but there are %u channels", path, i % ss->w,
                             i / ss->w, v, ss->channels);
        ss->labels[i] = none ? SS_LABEL_NONE : (uint16_t)v;
    }
    return 0;
}

static int read_geometry(const cJSON *g, ss_map *ss, const char *path, avps_error *err) {
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(g, "scale");
    const cJSON *offset = cJSON_GetObjectItemCaseSensitive(g, "offset");
    const cJSON *valid = cJSON_GetObjectItemCaseSensitive(g, "valid");
    double v[6];
    const cJSON *pairs[3] = {scale, offset, valid};
    for (int k = 0; k < 3; k++) {
        if (cJSON_GetArraySize(pairs[k]) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(pairs[k], 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(pairs[k], 1)))
            return avps_fail(err, "%s: \"ss\" needs \"scale\", \"offset\" and \"valid\" as pairs of numbers", path);
        v[2 * k] = cJSON_GetArrayItem(pairs[k], 0)->valuedouble;
        v[2 * k + 1] = cJSON_GetArrayItem(pairs[k], 1)->valuedouble;
    }
    if (!(v[0] > 0) || !(v[1] > 0) || v[4] < 1 || v[5] < 1 || v[4] > ss->w || v[5] > ss->h)
        return avps_fail(err, "%s: \"ss\": scale must be positive and valid within the %ux%u grid", path, ss->w,
                         ss->h);
    ss->geo = (ss_geometry){v[0], v[1], v[2], v[3], (uint32_t)v[4], (uint32_t)v[5]};
    return 0;
}

/* DIR/<image_id><suffix>.zst, or the plain DIR/<image_id><suffix> (what a writer without
 * zstd, scripts/avps_store.py, writes) when only that one exists. */
static char *store_npy_path(const char *dir, const char *image_id, const char *suffix) {
    char *zst = malloc(strlen(suffix) + 5), *path = NULL;
    if (!zst)
        return NULL;
    snprintf(zst, strlen(suffix) + 5, "%s.zst", suffix);
    path = store_file_path(dir, image_id, zst);
    free(zst);
    if (path && access(path, F_OK) != 0) {
        char *plain = store_file_path(dir, image_id, suffix);
        if (plain && access(plain, F_OK) == 0) {
            free(path);
            return plain;
        }
        free(plain);
    }
    return path;
}

static int read_ss(const replay_state *s, const char *image_id, const cJSON *geo, head_output *out, avps_error *err) {
    ss_map *ss = &out->ss;
    if (s->channels == 0) { /* an instance-only end */
        *ss = (ss_map){.kind = s->kind};
        return 0;
    }
    char *path = store_npy_path(s->dir, image_id, ".ss.npy");
    npy_array a = {0};
    npy_expect want = {0};
    if (s->kind == SS_LABELS)
        want = (npy_expect){NPY_DTYPE_BIT(NPY_U8) | NPY_DTYPE_BIT(NPY_U16), 2, {0}};
    else
        want = (npy_expect){NPY_DTYPE_BIT(NPY_F16) | NPY_DTYPE_BIT(NPY_F32), 3, {s->channels}};
    int rc = path ? npy_read(path, &want, &a, err) : avps_fail(err, "out of memory");
    if (rc == 0) {
        ss->kind = s->kind, ss->channels = s->channels;
        int lab = s->kind == SS_LABELS;
        ss->h = (uint32_t)a.shape[lab ? 0 : 1], ss->w = (uint32_t)a.shape[lab ? 1 : 2];
        if (ss->h == 0 || ss->w == 0)
            rc = avps_fail(err, "%s: an empty semantic grid", path);
    }
    if (rc == 0 && !(ss->channel_category = malloc(sizeof(int32_t) * s->channels)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0) {
        memcpy(ss->channel_category, s->channel_category, sizeof(int32_t) * s->channels);
        ss->geo = ss_geometry_stretch(ss->w, ss->h, out->width, out->height);
        if (geo)
            rc = read_geometry(geo, ss, path, err);
    }
    if (rc == 0)
        rc = s->kind == SS_LABELS ? ss_labels_take(&a, ss, path, err) : ss_scores_take(s, &a, ss, path, err);
    npy_array_release(&a);
    free(path);
    return rc;
}

typedef struct {
    npy_array masks; /* N x M x M soft masks, read when an instance needs one */
    int loaded;
    char *path;
} soft_masks;

static int soft_mask_take(const replay_state *s, const char *image_id, soft_masks *sm, double index, is_instance *inst,
                          avps_error *err) {
    if (!sm->loaded) {
        npy_expect want = {NPY_DTYPE_BIT(NPY_F16) | NPY_DTYPE_BIT(NPY_F32), 3, {0}};
        if (!(sm->path = store_npy_path(s->dir, image_id, ".masks.npy")))
            return avps_fail(err, "out of memory");
        if (npy_read(sm->path, &want, &sm->masks, err) != 0)
            return -1;
        sm->loaded = 1;
        if (sm->masks.shape[1] != sm->masks.shape[2] || sm->masks.shape[1] == 0)
            return avps_fail(err, "%s: soft masks must be N x M x M", sm->path);
    }
    size_t n = sm->masks.shape[0], m = sm->masks.shape[1];
    if (index != floor(index) || index < 0 || index >= (double)n)
        return avps_fail(err, "\"soft\" %g is not an index into the %zu masks of %s", index, n, sm->path);
    if (!(inst->soft = malloc(m * m * sizeof *inst->soft)))
        return avps_fail(err, "out of memory");
    inst->soft_h = inst->soft_w = (uint32_t)m;
    for (size_t k = 0, base = (size_t)index * m * m; k < m * m; k++) {
        float v = sm->masks.dtype == NPY_F16 ? float_from_half(((const uint16_t *)sm->masks.data)[base + k])
                                             : ((const float *)sm->masks.data)[base + k];
        if (!(v >= 0 && v <= 1))
            return avps_fail(err, "%s: mask %g holds %g, not a probability", sm->path, index, v);
        inst->soft[k] = v;
    }
    return 0;
}

static int read_paste(const cJSON *p, paste_convention *out) {
    const char *name = p ? cJSON_GetStringValue(p) : "torchvision";
    if (!name)
        return -1;
    if (strcmp(name, "torchvision") == 0)
        *out = PASTE_TORCHVISION;
    else if (strcmp(name, "detectron2") == 0)
        *out = PASTE_DETECTRON2;
    else if (strcmp(name, "mmdet_v1") == 0)
        *out = PASTE_MMDET_V1;
    else
        return -1;
    return 0;
}

/* Uncompressed RLE, COCO's list of counts (what the pure-numpy writer gives). */
static int counts_from_list(const cJSON *list, uint32_t h, uint32_t w, rle_mask *out) {
    size_t n = (size_t)cJSON_GetArraySize(list), k = 0;
    uint32_t *c = malloc((n + 1) * sizeof *c);
    const cJSON *v;
    int rc = c ? 0 : -1;
    cJSON_ArrayForEach(v, list) {
        if (rc != 0 || !cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 4294967295.0) ||
            v->valuedouble != floor(v->valuedouble)) {
            rc = -1;
            break;
        }
        c[k++] = (uint32_t)v->valuedouble;
    }
    if (rc == 0)
        rc = rle_from_counts(c, k, h, w, out);
    free(c);
    return rc;
}

static int read_instance(const replay_state *s, const char *image_id, const cJSON *j, soft_masks *sm,
                         const head_output *out, is_instance *inst, avps_error *err) {
    const cJSON *cat = cJSON_GetObjectItemCaseSensitive(j, "category_id");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(j, "score");
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(j, "segmentation");
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(j, "box");
    const cJSON *soft = cJSON_GetObjectItemCaseSensitive(j, "soft");
    if (cJSON_IsNumber(cat) && s->has_preset && map_category(s, cat->valuedouble) < 0)
        return avps_fail(err, "category index %g is outside the category map %s (or maps to none of %s)",
                         cat->valuedouble, s->preset.name, s->ds->path);
    if (!cJSON_IsNumber(cat) || (inst->category_id = map_category(s, cat->valuedouble)) < 0)
        return avps_fail(err, "category %g has no mapping to the categories of %s", cJSON_IsNumber(cat) ? cat->valuedouble : NAN,
                         s->ds->path);
    if (!cJSON_IsNumber(score) || !isfinite(score->valuedouble))
        return avps_fail(err, "\"score\" must be a finite number");
    inst->score = score->valuedouble;
    if (cJSON_IsNumber(soft)) {
        if (cJSON_GetArraySize(box) != 4)
            return avps_fail(err, "a soft mask needs \"box\": [x1, y1, x2, y2]");
        for (int k = 0; k < 4; k++) {
            const cJSON *v = cJSON_GetArrayItem(box, k);
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
                return avps_fail(err, "\"box\" must hold 4 finite numbers");
            inst->box[k] = v->valuedouble;
        }
        if (read_paste(cJSON_GetObjectItemCaseSensitive(j, "paste"), &inst->paste) != 0)
            return avps_fail(err, "\"paste\" must be \"torchvision\", \"detectron2\" or \"mmdet_v1\"");
        return soft_mask_take(s, image_id, sm, soft->valuedouble, inst, err);
    }
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(seg, "size");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(seg, "counts");
    if (!(cJSON_IsString(counts) || cJSON_IsArray(counts)) || cJSON_GetArraySize(size) != 2)
        return avps_fail(err, "an instance needs \"segmentation\" (RLE) or \"box\" and \"soft\"");
    double h = cJSON_GetArrayItem(size, 0)->valuedouble, w = cJSON_GetArrayItem(size, 1)->valuedouble;
    if (h != out->height || w != out->width)
        return avps_fail(err, "its mask is %gx%g, the image %ux%u", w, h, out->width, out->height);
    if (cJSON_IsString(counts) ? rle_from_string(counts->valuestring, out->height, out->width, &inst->mask) != 0
                               : counts_from_list(counts, out->height, out->width, &inst->mask) != 0)
        return avps_fail(err, "malformed RLE counts");
    double bbox[4];
    rle_bbox(&inst->mask, bbox);
    inst->box[0] = bbox[0], inst->box[1] = bbox[1], inst->box[2] = bbox[0] + bbox[2], inst->box[3] = bbox[1] + bbox[3];
    return 0;
}

/* Highest score first; ties keep the file's order (a stable sort by hand: qsort is not). */
static void sort_by_score(is_instance *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        is_instance x = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1].score < x.score; j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

static int read_instances(const replay_state *s, const char *image_id, const cJSON *list, head_output *out,
                          const char *path, avps_error *err) {
    if (!cJSON_IsArray(list))
        return avps_fail(err, "%s: \"instances\" must be a list", path);
    size_t n = (size_t)cJSON_GetArraySize(list);
    soft_masks sm = {0};
    if (!(out->instances = calloc(n + 1, sizeof *out->instances)))
        return avps_fail(err, "out of memory");
    const cJSON *j;
    int rc = 0;
    cJSON_ArrayForEach(j, list) {
        if ((rc = read_instance(s, image_id, j, &sm, out, &out->instances[out->n_instances++], err)) != 0) {
            avps_prefix(err, "%s: instance %zu", path, out->n_instances - 1);
            break;
        }
    }
    npy_array_release(&sm.masks);
    free(sm.path);
    if (rc == 0)
        sort_by_score(out->instances, out->n_instances);
    return rc;
}

static int replay_run(void *state, const head_input *in, head_output *out, avps_error *err) {
    const replay_state *s = state;
    char *path = store_file_path(s->dir, in->image->id, ".json");
    size_t len;
    char *text = path ? file_read_all(path, &len, err) : NULL;
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    int rc = 0;
    out->width = in->image->width, out->height = in->image->height;
    if (!path)
        rc = avps_fail(err, "out of memory");
    else if (!text)
        rc = -1;
    else if (!cJSON_IsObject(root))
        rc = avps_fail(err, "%s: not a JSON object", path);
    if (rc == 0)
        rc = read_instances(s, in->image->id, cJSON_GetObjectItemCaseSensitive(root, "instances"), out, path, err);
    if (rc == 0)
        rc = read_ss(s, in->image->id, cJSON_GetObjectItemCaseSensitive(root, "ss"), out, err);
    cJSON_Delete(root);
    free(path);
    return rc;
}
