/* store.c: writing the prediction store that the replay backend reads (docs/formats.md):
 * DIR/head.json, and per image DIR/<image_id>.json (instances, SS geometry),
 * DIR/<image_id>.ss.npy.zst (the SS) and DIR/<image_id>.masks.npy.zst (soft masks). */
#include "head_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Files go to "DIR.partial" (every rank writes there), which store_writer_finish puts in
 * DIR's place: a store is only ever seen whole, and a failed job leaves a previous one as
 * it was (the job removes the staging folder, docs/formats.md "Output paths"). */
struct store_writer {
    char *final_dir;
    char *dir, *name;
    ss_kind kind;
    uint32_t channels;
    int32_t *channel_category;
    int no_instances; /* a semantic-only end: head.json says so */
};

const char *ss_kind_name(ss_kind k) { return k == SS_PROBS ? "probs" : k == SS_LOGITS ? "logits" : "labels"; }

char *store_staging_path(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    char *s = malloc(n + sizeof ".partial");
    if (s) {
        memcpy(s, dir, n);
        memcpy(s + n, ".partial", sizeof ".partial");
    }
    return s;
}

/* DIR may be new, an empty folder or a previous store (it has head.json): anything else
 * would be lost when the new store takes its place. */
static int check_target(const char *dir, avps_error *err) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? 0 : avps_fail(err, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return avps_fail(err, "%s: exists and is not a folder", dir);
    char *head = path_join(dir, "head.json");
    int is_store = head && stat(head, &st) == 0;
    free(head);
    DIR *d = is_store ? NULL : opendir(dir);
    const struct dirent *e;
    while (d && (e = readdir(d)) && (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")))
        ;
    int empty = d && !e;
    if (d)
        closedir(d);
    if (!is_store && !empty)
        return avps_fail(err, "%s: a folder that is neither empty nor a prediction store (no head.json): a new "
                              "store would replace it; give a new folder",
                         dir);
    return 0;
}

static int staging_make(const store_writer *sw, avps_error *err) {
    struct stat st;
    if (lstat(sw->dir, &st) == 0)
        return avps_fail(err, "%s: left by an interrupted import or export (or in use by one now); remove it",
                         sw->dir);
    return check_target(sw->final_dir, err) != 0 || dir_create(sw->dir, err) != 0 ? -1 : 0;
}

store_writer *store_writer_new(const char *dir, const char *head_name, ss_kind kind, const int32_t *channel_category,
                               uint32_t channels, int prepare, avps_error *err) {
    store_writer *sw = calloc(1, sizeof *sw);
    if (sw) {
        sw->final_dir = strdup(dir), sw->dir = store_staging_path(dir), sw->name = strdup(head_name);
        sw->kind = kind, sw->channels = channels;
        sw->channel_category = malloc(sizeof(int32_t) * (channels + 1));
    }
    if (!sw || !sw->final_dir || !sw->dir || !sw->name || !sw->channel_category) {
        store_writer_free(sw);
        avps_fail(err, "out of memory");
        return NULL;
    }
    if (channels)
        memcpy(sw->channel_category, channel_category, sizeof(int32_t) * channels);
    if (prepare && staging_make(sw, err) != 0) {
        store_writer_free(sw);
        return NULL;
    }
    return sw;
}

char *store_file_path(const char *dir, const char *image_id, const char *suffix) {
    size_t n = strlen(image_id) + strlen(suffix) + 1;
    char *name = malloc(n), *path = NULL;
    if (name) {
        snprintf(name, n, "%s%s", image_id, suffix);
        path = path_join(dir, name);
    }
    free(name);
    return path;
}

static int put_ss(const store_writer *sw, const char *image_id, const ss_map *ss, avps_error *err) {
    npy_array a = {0};
    if (sw->channels == 0)
        return 0; /* an instance-only end */
    if (ss->kind == SS_LABELS) {
        a = (npy_array){NPY_U16, 2, {ss->h, ss->w}, ss->labels, (size_t)ss->h * ss->w * 2};
    } else {
        a = (npy_array){NPY_F16, 3, {ss->channels, ss->h, ss->w}, ss->scores,
                        (size_t)ss->channels * ss->h * ss->w * 2};
    }
    char *path = store_file_path(sw->dir, image_id, ".ss.npy.zst");
    int rc = path ? npy_write(path, &a, 0, err) : avps_fail(err, "out of memory");
    free(path);
    return rc;
}

/* Soft masks of every instance that has one, as N x M x M fp16. */
static int put_masks(const store_writer *sw, const char *image_id, const head_output *out, avps_error *err) {
    size_t n = 0, m = 0;
    for (size_t i = 0; i < out->n_instances; i++)
        if (out->instances[i].soft) {
            const is_instance *inst = &out->instances[i];
            if (n && (inst->soft_h != m || inst->soft_w != m))
                return avps_fail(err, "soft masks of different sizes in one image");
            if (inst->soft_h != inst->soft_w)
                return avps_fail(err, "a %ux%u soft mask: the store keeps square ones", inst->soft_w, inst->soft_h);
            m = inst->soft_h, n++;
        }
    if (n == 0)
        return 0;
    npy_array a;
    size_t shape[3] = {n, m, m};
    if (npy_array_alloc(&a, NPY_F16, 3, shape, err) != 0)
        return -1;
    uint16_t *dst = a.data;
    for (size_t i = 0; i < out->n_instances; i++)
        for (size_t k = 0; out->instances[i].soft && k < m * m; k++)
            *dst++ = half_from_float(out->instances[i].soft[k]);
    char *path = store_file_path(sw->dir, image_id, ".masks.npy.zst");
    int rc = path ? npy_write(path, &a, 0, err) : avps_fail(err, "out of memory");
    free(path);
    npy_array_release(&a);
    return rc;
}

static const char *paste_name(paste_convention p) {
    return p == PASTE_DETECTRON2 ? "detectron2" : p == PASTE_MMDET_V1 ? "mmdet_v1" : "torchvision";
}

static void put_instance(FILE *fp, const is_instance *inst, size_t soft_index) {
    fprintf(fp, "    {\"category_id\": %d, \"score\": %.17g, ", inst->category_id, inst->score);
    if (inst->soft) {
        fprintf(fp, "\"box\": [%.17g, %.17g, %.17g, %.17g], \"soft\": %zu, \"paste\": \"%s\"}", inst->box[0],
                inst->box[1], inst->box[2], inst->box[3], soft_index, paste_name(inst->paste));
        return;
    }
    char *counts = rle_to_string(&inst->mask);
    fprintf(fp, "\"segmentation\": {\"size\": [%u, %u], \"counts\": ", inst->mask.h, inst->mask.w);
    json_put_string(fp, counts ? counts : "");
    fputs("}}", fp);
    free(counts);
}

static int put_json(const store_writer *sw, const char *image_id, const head_output *out, avps_error *err) {
    char *path = store_file_path(sw->dir, image_id, ".json");
    atomic_file af;
    if (!path || file_atomic_open(&af, path, err) != 0) {
        free(path);
        return path ? -1 : avps_fail(err, "out of memory");
    }
    free(path);
    const ss_geometry *g = &out->ss.geo;
    fprintf(af.fp, "{\"width\": %u, \"height\": %u,\n \"ss\": {\"scale\": [%.17g, %.17g], \"offset\": [%.17g, %.17g], "
                   "\"valid\": [%u, %u]},\n \"instances\": [",
            out->width, out->height, g->scale_x, g->scale_y, g->offset_x, g->offset_y, g->valid_w, g->valid_h);
    size_t soft = 0;
    for (size_t i = 0; i < out->n_instances; i++) {
        fputs(i ? ",\n" : "\n", af.fp);
        put_instance(af.fp, &out->instances[i], soft);
        soft += out->instances[i].soft != NULL;
    }
    fputs("]}\n", af.fp);
    return file_atomic_commit(&af, err);
}

int store_writer_put(store_writer *sw, const char *image_id, const head_output *out, avps_error *err) {
    if (out->ss.channels != sw->channels || (sw->channels && out->ss.kind != sw->kind))
        return avps_fail(err, "image %s: its semantic output differs from the store's (%u %s channels)", image_id,
                         sw->channels, ss_kind_name(sw->kind));
    if (put_ss(sw, image_id, &out->ss, err) != 0 || put_masks(sw, image_id, out, err) != 0 ||
        put_json(sw, image_id, out, err) != 0)
        return avps_prefix(err, "store %s, image %s", sw->dir, image_id);
    return 0;
}

/* The staging folder takes DIR's place: renamed onto a new path, or exchanged with what
 * is there (checked at the start: an empty folder or a previous store), then removed. */
static int store_put_in_place(const store_writer *sw, avps_error *err) {
    if (check_target(sw->final_dir, err) != 0)
        return -1;
    struct stat st;
    if (stat(sw->final_dir, &st) != 0) {
        if (rename(sw->dir, sw->final_dir) != 0)
            return avps_fail(err, "%s: cannot rename %s into place: %s", sw->final_dir, sw->dir, strerror(errno));
        return 0;
    }
    if (renameat2(AT_FDCWD, sw->dir, AT_FDCWD, sw->final_dir, RENAME_EXCHANGE) != 0)
        return avps_fail(err, "%s: cannot exchange the previous store with %s: %s", sw->final_dir, sw->dir,
                         strerror(errno));
    path_remove_all(sw->dir); /* the previous store */
    return 0;
}

int store_writer_finish(store_writer *sw, avps_error *err) {
    char *path = path_join(sw->dir, "head.json");
    atomic_file af;
    int rc = path ? file_atomic_open(&af, path, err) : avps_fail(err, "out of memory");
    free(path);
    if (rc != 0)
        return -1;
    fputs("{\"name\": ", af.fp);
    json_put_string(af.fp, sw->name);
    fprintf(af.fp, ", \"ss_kind\": \"%s\",%s\n \"categories\": [", sw->channels ? ss_kind_name(sw->kind) : "none",
            sw->no_instances ? " \"instances\": false," : "");
    for (uint32_t c = 0; c < sw->channels; c++)
        fprintf(af.fp, "%s%d", c ? ", " : "", sw->channel_category[c]);
    fputs("]}\n", af.fp);
    return file_atomic_commit(&af, err) != 0 ? -1 : store_put_in_place(sw, err);
}

void store_writer_no_instances(store_writer *sw) { sw->no_instances = 1; }

void store_writer_free(store_writer *sw) {
    if (!sw)
        return;
    free(sw->final_dir);
    free(sw->dir);
    free(sw->name);
    free(sw->channel_category);
    free(sw);
}
