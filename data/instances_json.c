/* instances_json.c: COCO instances ground truth and detection results, read the way
 * pycocotools' COCO() and loadRes() read them, into plain arrays with masks as RLE.
 * Results files reach hundreds of MB: they are parsed one list element at a time, so
 * cJSON never holds more than one detection's tree per thread; the elements are split
 * over threads once one scan has found their bounds. Ground truth is read the same way
 * (gt_scan.c finds its parts; "images" and "categories" are one small tree each, the
 * annotations one object at a time on threads); any error sends it to the whole-file
 * tree reader, so that the error reported is the one that reader gives. */
#include "data.h"
#include "gt_scan.h"
#include "results_scan.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small JSON helpers -------------------------------------------------------------- */

static int json_int64(const cJSON *obj, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9e15)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int json_number(const cJSON *obj, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return -1;
    *out = v->valuedouble;
    return 0;
}

static int json_box(const cJSON *v, double box[4]) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 4)
        return -1;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        if (!cJSON_IsNumber(x))
            return -1;
        box[i++] = x->valuedouble;
    }
    return 0;
}

/* ---- segmentation -> RLE, as the COCO API's annToRLE ---------------------------------- */

static int numbers_of(const cJSON *arr, double **xy, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    *xy = malloc((*n ? *n : 1) * sizeof **xy);
    if (!*xy)
        return -1;
    size_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        if (!cJSON_IsNumber(x))
            return -1;
        (*xy)[i++] = x->valuedouble;
    }
    return 0;
}

/* rle_from_polygon's and rle_from_bbox's failures, as a user reads them. */
static const char *polygon_failure(int rc) {
    return rc == -2 ? "has a coordinate that is not finite or beyond 1.07e8 (5 x 2^29 must fit an int)"
                    : "is too large (out of memory)";
}

/* Polygons, or boxes when the first "polygon" has exactly four numbers (frPyObjects). */
static const char *polygons_to_rle(const cJSON *seg, uint32_t h, uint32_t w, rle_mask *out) {
    size_t n = (size_t)cJSON_GetArraySize(seg), done = 0;
    const cJSON *first = cJSON_GetArrayItem(seg, 0);
    if (n == 0 || !cJSON_IsArray(first))
        return "is an empty list or not a list of polygons";
    int boxes = cJSON_GetArraySize(first) == 4;
    if (!boxes && cJSON_GetArraySize(first) < 5)
        return "has a first polygon of fewer than 5 numbers";
    rle_mask *parts = calloc(n, sizeof *parts);
    const char *why = parts ? NULL : "is too large (out of memory)";
    const cJSON *poly;
    cJSON_ArrayForEach(poly, seg) {
        double *xy = NULL;
        size_t k;
        int rc;
        if (why)
            break;
        if (!cJSON_IsArray(poly) || numbers_of(poly, &xy, &k) != 0)
            why = "holds a polygon that is not a list of numbers";
        else if (boxes && k != 4)
            why = "mixes boxes (4 numbers) with polygons";
        else if ((rc = boxes ? rle_from_bbox(xy, h, w, &parts[done])
                             : rle_from_polygon(xy, k / 2, h, w, &parts[done])) != 0)
            why = polygon_failure(rc);
        else
            done++;
        free(xy);
    }
    if (!why && rle_merge(parts, n, 0, out) != 0)
        why = "is too large (out of memory)";
    for (size_t i = 0; i < done; i++)
        rle_free(&parts[i]);
    free(parts);
    return why;
}

static const char *rle_object_to_rle(const cJSON *seg, uint32_t h, uint32_t w, rle_mask *out) {
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(seg, "size");
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(seg, "counts");
    double sz[2];
    if (!cJSON_IsArray(size) || cJSON_GetArraySize(size) != 2 || !cJSON_IsNumber(size->child) ||
        !cJSON_IsNumber(size->child->next))
        return "has no \"size\": [h, w]";
    sz[0] = size->child->valuedouble;
    sz[1] = size->child->next->valuedouble;
    if (sz[0] != h || sz[1] != w)
        return "has a \"size\" that differs from its image's height and width";
    if (cJSON_IsString(counts))
        return rle_from_string(counts->valuestring, h, w, out) == 0 ? NULL
                                                                    : "has a malformed \"counts\" string";
    if (!cJSON_IsArray(counts))
        return "has no \"counts\"";
    size_t m = (size_t)cJSON_GetArraySize(counts), i = 0;
    uint32_t *c = malloc((m ? m : 1) * sizeof *c);
    if (!c)
        return "is too large (out of memory)";
    const cJSON *x;
    cJSON_ArrayForEach(x, counts) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > UINT32_MAX ||
            x->valuedouble != floor(x->valuedouble))
            break;
        c[i++] = (uint32_t)x->valuedouble;
    }
    int rc = i == m ? rle_from_counts(c, m, h, w, out) : -1;
    free(c);
    return rc == 0 ? NULL : "has \"counts\" that are not runs adding up to height x width";
}

static const char *segmentation_to_rle(const cJSON *seg, uint32_t h, uint32_t w, rle_mask *out) {
    if (cJSON_IsArray(seg))
        return polygons_to_rle(seg, h, w, out);
    if (cJSON_IsObject(seg))
        return rle_object_to_rle(seg, h, w, out);
    return "is missing or neither polygons nor RLE";
}

/* ---- datasets ------------------------------------------------------------------------ */

void inst_dataset_free(inst_dataset *ds) {
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_annotations; i++)
        rle_free(&ds->annotations[i].rle);
    free(ds->annotations);
    free(ds->images);
    for (size_t c = 0; ds->category_names && c < ds->n_categories; c++)
        free(ds->category_names[c]);
    free(ds->category_names);
    free(ds->category_ids);
    free(ds->path);
    free(ds->text);
    free(ds);
}

const rle_mask *inst_annotation_mask(const inst_annotation *a, rle_scratch *sc, rle_mask *view) {
    if (!a->counts)
        return &a->rle;
    /* checked when it was read: only memory can fail */
    return rle_from_chars_scratch(a->counts, a->counts_len, a->counts_escaped, a->rle.h, a->rle.w, sc, view) == 0
               ? view
               : NULL;
}

static int image_cmp(const void *a, const void *b) {
    int64_t x = ((const inst_image *)a)->id, y = ((const inst_image *)b)->id;
    return (x > y) - (x < y);
}

static int int32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

long inst_image_index(const inst_dataset *ds, int64_t image_id) {
    inst_image probe = {image_id, 0, 0};
    const inst_image *im = ds->n_images ? bsearch(&probe, ds->images, ds->n_images, sizeof probe, image_cmp) : NULL;
    return im ? (long)(im - ds->images) : -1;
}

long inst_category_index(const inst_dataset *ds, int32_t category_id) {
    const int32_t *c =
        ds->n_categories ? bsearch(&category_id, ds->category_ids, ds->n_categories, sizeof category_id, int32_cmp)
                         : NULL;
    return c ? (long)(c - ds->category_ids) : -1;
}

static inst_dataset *dataset_new(const char *path) {
    inst_dataset *ds = calloc(1, sizeof *ds);
    if (ds && !(ds->path = strdup(path))) {
        free(ds);
        return NULL;
    }
    return ds;
}

static int parse_images(inst_dataset *ds, const cJSON *imgs, avps_error *err) {
    if (!cJSON_IsArray(imgs))
        return avps_fail(err, "%s: \"images\" is missing or not a list", ds->path);
    ds->images = calloc((size_t)cJSON_GetArraySize(imgs) + 1, sizeof *ds->images);
    if (!ds->images)
        return avps_fail(err, "%s: out of memory", ds->path);
    const cJSON *im;
    cJSON_ArrayForEach(im, imgs) {
        inst_image *o = &ds->images[ds->n_images];
        int64_t w, h;
        if (json_int64(im, "id", &o->id) != 0)
            return avps_fail(err, "%s: images[%zu]: \"id\" is missing or not an integer", ds->path, ds->n_images);
        if (json_int64(im, "width", &w) != 0 || json_int64(im, "height", &h) != 0 || w < 1 || h < 1 ||
            w > 1 << 20 || h > 1 << 20)
            return avps_fail(err, "%s: image %lld: \"width\" or \"height\" is missing or not a positive integer",
                             ds->path, (long long)o->id);
        o->width = (uint32_t)w;
        o->height = (uint32_t)h;
        ds->n_images++;
    }
    qsort(ds->images, ds->n_images, sizeof *ds->images, image_cmp);
    for (size_t i = 1; i < ds->n_images; i++)
        if (ds->images[i].id == ds->images[i - 1].id)
            return avps_fail(err, "%s: image %lld appears twice in images", ds->path, (long long)ds->images[i].id);
    return 0;
}

static int parse_categories(inst_dataset *ds, const cJSON *cats, avps_error *err) {
    if (!cJSON_IsArray(cats))
        return avps_fail(err, "%s: \"categories\" is missing or not a list", ds->path);
    ds->category_ids = calloc((size_t)cJSON_GetArraySize(cats) + 1, sizeof *ds->category_ids);
    if (!ds->category_ids)
        return avps_fail(err, "%s: out of memory", ds->path);
    const cJSON *c;
    cJSON_ArrayForEach(c, cats) {
        int64_t id;
        if (json_int64(c, "id", &id) != 0 || id < INT32_MIN || id > INT32_MAX)
            return avps_fail(err, "%s: categories[%zu]: \"id\" is missing or not an integer", ds->path,
                             ds->n_categories);
        ds->category_ids[ds->n_categories++] = (int32_t)id;
    }
    qsort(ds->category_ids, ds->n_categories, sizeof *ds->category_ids, int32_cmp);
    for (size_t i = 1; i < ds->n_categories; i++)
        if (ds->category_ids[i] == ds->category_ids[i - 1])
            return avps_fail(err, "%s: category %d appears twice in categories", ds->path, ds->category_ids[i]);
    /* names, for tables people read (AP-person); ids are checked above */
    if (!(ds->category_names = calloc(ds->n_categories + 1, sizeof *ds->category_names)))
        return avps_fail(err, "%s: out of memory", ds->path);
    cJSON_ArrayForEach(c, cats) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        int64_t id = 0;
        long k = json_int64(c, "id", &id) == 0 ? inst_category_index(ds, (int32_t)id) : -1;
        if (k >= 0 && cJSON_IsString(name) && !(ds->category_names[k] = strdup(name->valuestring)))
            return avps_fail(err, "%s: out of memory", ds->path);
    }
    return 0;
}

/* Fields every annotation needs; returns its image's index. */
static long parse_common(const inst_dataset *gt, const cJSON *a, inst_annotation *o, const char *path,
                         const char *what, size_t pos, avps_error *err) {
    int64_t cat;
    if (!cJSON_IsObject(a) || json_int64(a, "image_id", &o->image_id) != 0)
        return avps_fail(err, "%s: %s %zu: \"image_id\" is missing or not an integer", path, what, pos);
    if (json_int64(a, "category_id", &cat) != 0 || cat < INT32_MIN || cat > INT32_MAX)
        return avps_fail(err, "%s: image %lld: %s %zu: \"category_id\" is missing or not an integer", path,
                         (long long)o->image_id, what, pos);
    o->category_id = (int32_t)cat;
    long img = inst_image_index(gt, o->image_id);
    if (img < 0)
        return avps_fail(err, "%s: %s %zu: image %lld is not among the images of %s", path, what, pos,
                         (long long)o->image_id, gt->path);
    return img;
}

/* A ground-truth annotation's segmentation, left to rasterise on a thread once every
 * record has been read; annotations[i] gets the mask of deferred[i]. */
typedef struct {
    const cJSON *seg;
    uint32_t h, w;
} gt_segment;

/* One annotation into *out; with `deferred`, a segm annotation's mask is left there for
 * gt_rasterise (its fields are read here as before); without it, it is made here. Reads
 * ds only, so threads may call it at once. */
static int gt_annotation_read(const inst_dataset *ds, const cJSON *a, iou_type type, size_t pos,
                              gt_segment *deferred, inst_annotation *out, avps_error *err) {
    inst_annotation o = {0};
    long img = parse_common(ds, a, &o, ds->path, "annotations", pos, err);
    if (img < 0)
        return -1;
    int64_t crowd;
    const char *p = ds->path;
    long long im = (long long)o.image_id;
    if (json_int64(a, "id", &o.id) != 0)
        return avps_fail(err, "%s: image %lld: annotations[%zu]: \"id\" is missing or not an integer", p, im, pos);
    if (json_int64(a, "iscrowd", &crowd) != 0 || (crowd != 0 && crowd != 1))
        return avps_fail(err, "%s: image %lld: annotation %lld: \"iscrowd\" is missing or not 0 or 1", p, im,
                         (long long)o.id);
    o.iscrowd = (int)crowd;
    if (json_number(a, "area", &o.area) != 0)
        return avps_fail(err, "%s: image %lld: annotation %lld: \"area\" is missing or not a number", p, im,
                         (long long)o.id);
    const cJSON *bbox = cJSON_GetObjectItemCaseSensitive(a, "bbox");
    if (json_box(bbox, o.bbox) != 0 && type == IOU_BBOX)
        return avps_fail(err, "%s: image %lld: annotation %lld: \"bbox\" is missing or not 4 numbers", p, im,
                         (long long)o.id);
    if (type == IOU_SEGM && deferred) {
        const inst_image *i = &ds->images[img];
        *deferred = (gt_segment){cJSON_GetObjectItemCaseSensitive(a, "segmentation"), i->height, i->width};
    } else if (type == IOU_SEGM) {
        const inst_image *i = &ds->images[img];
        const char *why =
            segmentation_to_rle(cJSON_GetObjectItemCaseSensitive(a, "segmentation"), i->height, i->width, &o.rle);
        if (why)
            return avps_fail(err, "%s: image %lld: annotation %lld: the segmentation %s", p, im, (long long)o.id,
                             why);
    }
    *out = o;
    return 0;
}

/* An annotation of an image that `keep` drops: skipped unread (as an unreadable image_id
 * is not: that is an error for gt_annotation_read to report). */
static int gt_annotation_dropped(const inst_dataset *ds, const cJSON *a, inst_keep_fn keep, void *ctx) {
    int64_t image_id;
    long img;
    return keep && json_int64(a, "image_id", &image_id) == 0 && (img = inst_image_index(ds, image_id)) >= 0 &&
           !keep(ctx, (size_t)img);
}

static int parse_gt_annotation(inst_dataset *ds, const cJSON *a, iou_type type, size_t pos, gt_segment *deferred,
                               avps_error *err) {
    if (gt_annotation_read(ds, a, type, pos, deferred ? &deferred[ds->n_annotations] : NULL,
                           &ds->annotations[ds->n_annotations], err) != 0)
        return -1;
    ds->n_annotations++;
    return 0;
}

/* A contiguous run of deferred masks for one thread, stopping at its first failure. */
typedef struct {
    inst_annotation *anns;
    const gt_segment *segs;
    size_t first, last; /* annotations [first, last) */
    size_t failed_at;   /* last when none failed */
    const char *why;
} gt_raster_chunk;

static void *gt_raster_chunk_run(void *arg) {
    gt_raster_chunk *c = arg;
    c->failed_at = c->last;
    for (size_t i = c->first; i < c->last; i++) {
        const gt_segment *s = &c->segs[i];
        if ((c->why = segmentation_to_rle(s->seg, s->h, s->w, &c->anns[i].rle)) != NULL) {
            c->failed_at = i;
            break;
        }
    }
    return NULL;
}

/* Rasterises the deferred masks of ds->annotations on up to `threads` threads (each mask
 * depends on its annotation alone). The failure reported is the first in file order, with
 * the message the one-thread path gives. */
static int gt_rasterise(inst_dataset *ds, const gt_segment *segs, int threads, avps_error *err) {
    size_t n = ds->n_annotations, t_n = (size_t)threads;
    if (t_n > n / 64 + 1) /* a thread per at least 64 masks: starting one costs more */
        t_n = n / 64 + 1;
    gt_raster_chunk *chunks = calloc(t_n, sizeof *chunks);
    if (!chunks)
        return avps_fail(err, "%s: out of memory", ds->path);
    for (size_t t = 0; t < t_n; t++)
        chunks[t] = (gt_raster_chunk){ds->annotations, segs, n * t / t_n, n * (t + 1) / t_n, 0, NULL};
    chunks_run(chunks, sizeof *chunks, t_n, gt_raster_chunk_run);
    int rc = 0;
    for (size_t t = 0; t < t_n && rc == 0; t++) {
        const gt_raster_chunk *c = &chunks[t];
        if (c->why) {
            const inst_annotation *a = &ds->annotations[c->failed_at];
            rc = avps_fail(err, "%s: image %lld: annotation %lld: the segmentation %s", ds->path,
                           (long long)a->image_id, (long long)a->id, c->why);
        }
    }
    free(chunks);
    return rc;
}

static int parse_gt(inst_dataset *ds, const cJSON *root, iou_type type, inst_keep_fn keep, void *ctx, int threads,
                    avps_error *err) {
    if (!cJSON_IsObject(root))
        return avps_fail(err, "%s: the top level is not a JSON object", ds->path);
    if (parse_images(ds, cJSON_GetObjectItemCaseSensitive(root, "images"), err) != 0 ||
        parse_categories(ds, cJSON_GetObjectItemCaseSensitive(root, "categories"), err) != 0)
        return -1;
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    if (!cJSON_IsArray(anns))
        return avps_fail(err, "%s: \"annotations\" is missing or not a list", ds->path);
    ds->annotations = calloc((size_t)cJSON_GetArraySize(anns) + 1, sizeof *ds->annotations);
    if (!ds->annotations)
        return avps_fail(err, "%s: out of memory", ds->path);
    gt_segment *deferred = NULL;
    if (type == IOU_SEGM && threads > 1 &&
        !(deferred = calloc((size_t)cJSON_GetArraySize(anns) + 1, sizeof *deferred)))
        return avps_fail(err, "%s: out of memory", ds->path);
    size_t pos = 0;
    int rc = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, anns) {
        if (gt_annotation_dropped(ds, a, keep, ctx)) {
            pos++;
            continue;
        }
        if ((rc = parse_gt_annotation(ds, a, type, pos++, deferred, err)) != 0)
            break;
    }
    /* the masks before a record's error come first in file order: one of them failing
     * is the error to report */
    if (deferred) {
        avps_error first = {{0}};
        if (gt_rasterise(ds, deferred, threads, &first) != 0) {
            *err = first;
            rc = -1;
        }
        free(deferred);
    }
    return rc;
}

/* Line and column (both from 1) of byte `at` in `text`, for messages a user can act on. */
static void text_position(const char *text, const char *at, int *line, int *col) {
    *line = 1, *col = 1;
    for (const char *p = text; at && p < at; p++, (*col)++)
        if (*p == '\n')
            (*line)++, *col = 0;
}

static cJSON *parse_text(const char *path, const char *text, size_t len, avps_error *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line, col;
        text_position(text, end, &line, &col);
        avps_fail(err, "%s: malformed JSON near line %d, column %d", path, line, col);
    }
    return root;
}

/* The whole file as one cJSON tree: the reader every error goes to (its messages are the
 * ones users and tests know), and the reference the streamed reader is fuzzed against.
 * Takes `text` and frees it as soon as the tree is built. */
static inst_dataset *gt_read_tree(const char *path, char *text, size_t len, iou_type type, inst_keep_fn keep,
                                  void *ctx, int threads, avps_error *err) {
    cJSON *root = parse_text(path, text, len, err);
    free(text);
    inst_dataset *ds = root ? dataset_new(path) : NULL;
    if (root && !ds)
        avps_fail(err, "%s: out of memory", path);
    if (ds && parse_gt(ds, root, type, keep, ctx, threads, err) != 0) {
        inst_dataset_free(ds);
        ds = NULL;
    }
    cJSON_Delete(root);
    return ds;
}

/* ---- ground truth, streamed ------------------------------------------------------------ */

/* The value in span s as cJSON reads it, or NULL unless it is one value ending where the
 * span ends (anything else is for the tree reader to judge). */
static cJSON *span_parse(const gt_span *s) {
    const char *stop = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s->begin, (size_t)(s->end - s->begin), &stop, 0);
    if (v && stop != s->end) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v;
}

/* "images" or "categories": small, read as one tree. */
static int gt_part_read(inst_dataset *ds, const gt_span *s, int (*read)(inst_dataset *, const cJSON *, avps_error *)) {
    avps_error ignored;
    cJSON *v = s->begin ? span_parse(s) : NULL;
    int rc = v && read(ds, v, &ignored) == 0 ? 0 : -1;
    cJSON_Delete(v);
    return rc;
}

/* A contiguous run of annotation objects for one thread, read (masks and all) in order up
 * to the first that fails; the kept ones go to out[first..]. */
typedef struct {
    const inst_dataset *ds;
    const gt_span *spans;
    iou_type type;
    inst_keep_fn keep;
    void *ctx;
    size_t first, last; /* spans [first, last) */
    inst_annotation *out;
    size_t n_kept;
    int failed;
} gt_chunk;

static void *gt_chunk_read(void *arg) {
    gt_chunk *c = arg;
    avps_error ignored;
    for (size_t pos = c->first; pos < c->last && !c->failed; pos++) {
        cJSON *a = span_parse(&c->spans[pos]);
        if (!a) {
            c->failed = 1;
        } else if (!gt_annotation_dropped(c->ds, a, c->keep, c->ctx)) {
            if (gt_annotation_read(c->ds, a, c->type, pos, NULL, &c->out[c->first + c->n_kept], &ignored) != 0)
                c->failed = 1;
            else
                c->n_kept++;
        }
        cJSON_Delete(a);
    }
    return NULL;
}

/* The annotations, one object at a time on up to `threads` threads; -1 if any fails
 * (what was read is then in ds, for inst_dataset_free). */
static int gt_annotations_read(inst_dataset *ds, const gt_layout *lay, iou_type type, inst_keep_fn keep, void *ctx,
                               int threads) {
    size_t n = lay->n_elements, t_n = threads < 1 ? 1 : (size_t)threads;
    if (t_n > n / 64 + 1) /* a thread per at least 64 annotations: starting one costs more */
        t_n = n / 64 + 1;
    gt_chunk *chunks = calloc(t_n, sizeof *chunks);
    if (!chunks || !(ds->annotations = malloc((n ? n : 1) * sizeof *ds->annotations))) {
        free(chunks);
        return -1;
    }
    for (size_t t = 0; t < t_n; t++)
        chunks[t] = (gt_chunk){ds, lay->elements, type, keep, ctx, n * t / t_n, n * (t + 1) / t_n,
                               ds->annotations, 0, 0};
    chunks_run(chunks, sizeof *chunks, t_n, gt_chunk_read);
    int rc = 0;
    for (size_t t = 0; t < t_n; t++) { /* gather in order; free what follows a failure */
        const gt_chunk *c = &chunks[t];
        for (size_t k = 0; k < c->n_kept; k++) {
            inst_annotation *a = &ds->annotations[c->first + k];
            if (rc == 0)
                ds->annotations[ds->n_annotations++] = *a;
            else
                rle_free(&a->rle);
        }
        if (c->failed)
            rc = -1;
    }
    free(chunks);
    if (rc == 0 && ds->n_annotations < n) { /* other ranks' images dropped: give back the room */
        inst_annotation *fit = realloc(ds->annotations, (ds->n_annotations ? ds->n_annotations : 1) * sizeof *fit);
        if (fit)
            ds->annotations = fit;
    }
    return rc;
}

/* The ground truth without a tree of the whole file: peak memory is the text plus the
 * annotations read, not the ~14x of a tree. NULL for any text that is not the usual
 * layout or that has an error anywhere (every value is still parsed, so an error in one
 * nobody reads is seen): the tree reader then reads it and reports the error. */
static inst_dataset *gt_read_streamed(const char *path, const char *text, size_t len, iou_type type,
                                      inst_keep_fn keep, void *ctx, int threads) {
    gt_layout lay;
    if (gt_scan(text, len, &lay) != 1)
        return NULL;
    inst_dataset *ds = dataset_new(path);
    int ok = ds && lay.annotations.begin;
    for (size_t i = 0; ok && i < lay.n_others; i++) {
        cJSON *v = span_parse(&lay.others[i]);
        ok = v != NULL;
        cJSON_Delete(v);
    }
    ok = ok && gt_part_read(ds, &lay.images, parse_images) == 0 &&
         gt_part_read(ds, &lay.categories, parse_categories) == 0 &&
         gt_annotations_read(ds, &lay, type, keep, ctx, threads) == 0;
    gt_layout_free(&lay);
    if (!ok) {
        inst_dataset_free(ds);
        return NULL;
    }
    return ds;
}

inst_dataset *inst_gt_load_threads(const char *path, iou_type type, inst_keep_fn keep, void *ctx, int threads,
                                   avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return NULL;
    inst_dataset *ds = gt_read_streamed(path, text, len, type, keep, ctx, threads);
    if (ds)
        free(text);
    else
        ds = gt_read_tree(path, text, len, type, keep, ctx, threads, err);
    /* cJSON's trees are many small blocks (about 80 bytes a number of every polygon);
     * glibc keeps freed heap for later mallocs, but what comes next (the results' text)
     * is mapped afresh, so without this what the trees took stays resident */
    malloc_trim(0);
    return ds;
}

inst_dataset *inst_gt_load(const char *path, iou_type type, inst_keep_fn keep, void *ctx, avps_error *err) {
    return inst_gt_load_threads(path, type, keep, ctx, 1, err);
}

inst_dataset *inst_gt_load_tree(const char *path, iou_type type, inst_keep_fn keep, void *ctx, int threads,
                                avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    inst_dataset *ds = text ? gt_read_tree(path, text, len, type, keep, ctx, threads, err) : NULL;
    malloc_trim(0);
    return ds;
}

/* ---- results ---------------------------------------------------------------------- */

typedef struct {
    inst_dataset *ds;
    const inst_dataset *gt;
    iou_type type;
    int bbox_branch; /* loadRes takes its branch from the first result */
    int masks_only;  /* inst_masks_load: no bbox branch, known categories */
    int need_score;
    int keep_compressed; /* segm masks stay counts strings in the text (inst_annotation_mask) */
    inst_keep_fn keep;
    void *ctx;
} results_state;

/* loadRes: with a bbox, area = w * h and a missing segmentation is the box; without, area
 * and bbox come from the mask. Then id = index + 1, iscrowd = 0. *kept is 0 for a result
 * of an image st->keep drops. Reads st only, so threads may call it at once. */
static int parse_result(const results_state *st, const cJSON *a, size_t pos, inst_annotation *out, int *kept,
                        avps_error *err) {
    inst_annotation o = {0};
    const char *p = st->ds->path;
    *kept = 0;
    long img = parse_common(st->gt, a, &o, p, "result", pos, err);
    if (img < 0)
        return -1;
    long long im = (long long)o.image_id;
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(a, "score");
    if ((score || st->need_score) && json_number(a, "score", &o.score) != 0)
        return avps_fail(err, "%s: image %lld: result %zu: \"score\" is missing or not a number", p, im, pos);
    if (st->masks_only && inst_category_index(st->gt, o.category_id) < 0)
        return avps_fail(err, "%s: image %lld: result %zu: category %d is not among the categories", p, im, pos,
                         o.category_id);
    o.id = (int64_t)pos + 1;
    if (st->keep && !st->keep(st->ctx, (size_t)img))
        return 0;
    const inst_image *i = &st->gt->images[img];
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(a, "segmentation");
    int has_box = json_box(cJSON_GetObjectItemCaseSensitive(a, "bbox"), o.bbox) == 0;
    if (st->bbox_branch && !has_box)
        return avps_fail(err, "%s: image %lld: result %zu: \"bbox\" is missing, but the first result has one", p,
                         im, pos);
    if (st->type == IOU_SEGM || !st->bbox_branch) {
        const char *why = NULL;
        int rc;
        if (!seg && st->bbox_branch) {
            why = (rc = rle_from_bbox(o.bbox, i->height, i->width, &o.rle)) != 0 ? polygon_failure(rc) : NULL;
            o.mask_from_box = 1;
        } else {
            why = segmentation_to_rle(seg, i->height, i->width, &o.rle);
        }
        if (why) {
            rle_free(&o.rle);
            return avps_fail(err, "%s: image %lld: result %zu: the segmentation %s", p, im, pos, why);
        }
    }
    if (st->bbox_branch) {
        o.area = o.bbox[2] * o.bbox[3];
    } else {
        o.area = (double)rle_area(&o.rle);
        if (!has_box)
            rle_bbox(&o.rle, o.bbox);
    }
    if (st->type == IOU_BBOX)
        rle_free(&o.rle);
    *out = o;
    *kept = 1;
    return 0;
}

/* parse_result for an object result_scan read: the same result, or 0 ("read it with
 * cJSON") wherever parse_result would fail, so that the error message is parse_result's. */
static int result_from_fields(const results_state *st, const result_fields *f, size_t pos, inst_annotation *out,
                              int *kept) {
    inst_annotation o = {0};
    *kept = 0;
    if (f->image_id != floor(f->image_id) || fabs(f->image_id) > 9e15 || f->category_id != floor(f->category_id) ||
        f->category_id < INT32_MIN || f->category_id > INT32_MAX)
        return 0;
    o.image_id = (int64_t)f->image_id;
    o.category_id = (int32_t)f->category_id;
    long img = inst_image_index(st->gt, o.image_id);
    if (img < 0 || (st->masks_only && inst_category_index(st->gt, o.category_id) < 0))
        return 0;
    o.score = f->score;
    o.id = (int64_t)pos + 1;
    if (st->keep && !st->keep(st->ctx, (size_t)img))
        return 1;
    const inst_image *i = &st->gt->images[img];
    if (f->has_bbox)
        memcpy(o.bbox, f->bbox, sizeof o.bbox);
    else if (st->bbox_branch)
        return 0;
    /* a mask kept compressed is only checked (and measured) here, unless its box is needed */
    int check_only = st->type == IOU_SEGM && st->keep_compressed && (st->bbox_branch || f->has_bbox);
    uint64_t pixels = 0;
    if (st->type == IOU_SEGM || !st->bbox_branch) {
        if (f->size[0] != i->height || f->size[1] != i->width || f->counts_len > UINT32_MAX)
            return 0;
        if (check_only ? rle_chars_area(f->counts, f->counts_len, f->counts_escaped, i->height, i->width, &pixels)
                       : rle_from_chars(f->counts, f->counts_len, f->counts_escaped, i->height, i->width, &o.rle))
            return 0;
        if (!check_only)
            pixels = rle_area(&o.rle);
    }
    if (st->bbox_branch) {
        o.area = o.bbox[2] * o.bbox[3];
    } else {
        o.area = (double)pixels;
        if (!f->has_bbox)
            rle_bbox(&o.rle, o.bbox);
    }
    if (st->type == IOU_BBOX) {
        rle_free(&o.rle);
    } else if (st->keep_compressed) { /* checked and measured: decoded again when evaluated */
        rle_free(&o.rle);
        o.rle = (rle_mask){.h = i->height, .w = i->width, .m = 0, .cnts = NULL};
        o.counts = f->counts, o.counts_len = (uint32_t)f->counts_len, o.counts_escaped = f->counts_escaped;
    }
    *out = o;
    *kept = 1;
    return 1;
}

static int first_has_bbox(const cJSON *a) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(a, "bbox");
    return b && !(cJSON_IsArray(b) && cJSON_GetArraySize(b) == 0);
}

/* "FILE: WHERE: malformed JSON near line L, column C (WHY)"; where and why may be empty. */
static int results_syntax_error(const char *path, const char *text, const char *at, const char *where,
                                const char *why, avps_error *err) {
    int line, col;
    text_position(text, at, &line, &col);
    return avps_fail(err, "%s: %s%smalformed JSON near line %d, column %d%s%s%s", path, where, *where ? ": " : "",
                     line, col, *why ? " (" : "", why, *why ? ")" : "");
}

/* One result object's bytes in the text. */
typedef struct {
    const char *begin, *end;
} result_span;

/* The list's own syntax, checked as strictly as cJSON (and Python's json) would (no
 * trailing comma), in one scan that finds each object's span without parsing it. A list
 * error is kept in *list_err (with *n_list_err = the number of objects before it) rather
 * than returned, because an error inside an earlier object must be reported first, as a
 * reader going from the start would. Returns -1 only when out of memory. */
static int results_spans(const char *path, const char *text, size_t len, result_span **spans, size_t *n,
                         int *list_failed, avps_error *list_err) {
    const char *p = json_space_skip(text, text + len), *end = text + len;
    size_t cap = 0;
    char what[96];
    *spans = NULL, *n = 0, *list_failed = 1;
    if (p == end || *p != '[') {
        avps_fail(list_err, "%s: results must be a JSON list of detections", path);
        return 0;
    }
    p = json_space_skip(p + 1, end);
    for (size_t pos = 0; p == end || *p != ']' || pos > 0; pos++) { /* "[]" is the empty list */
        const char *e = p < end && *p == '{' ? json_container_end(p, end, INT_MAX) : NULL;
        if (!e) {
            snprintf(what, sizeof what, "result %zu", pos);
            results_syntax_error(path, text, p, what, "an object was expected", list_err);
            return 0;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 4096;
            result_span *grown = realloc(*spans, cap * sizeof *grown);
            if (!grown)
                return avps_fail(list_err, "%s: out of memory", path);
            *spans = grown;
        }
        (*spans)[(*n)++] = (result_span){p, e};
        p = json_space_skip(e, end);
        if (p < end && *p == ']')
            break;
        if (p == end || *p != ',') {
            snprintf(what, sizeof what, "after result %zu", pos);
            results_syntax_error(path, text, p, what, "',' or ']' expected", list_err);
            return 0;
        }
        p = json_space_skip(p + 1, end);
    }
    if (json_space_skip(p + 1, end) != end) {
        results_syntax_error(path, text, json_space_skip(p + 1, end), "", "text after the list of results", list_err);
        return 0;
    }
    *list_failed = 0;
    return 0;
}

/* A contiguous run of result objects for one thread; its kept results go to out[first..]. */
typedef struct {
    const results_state *st;
    const char *text;
    const result_span *spans;
    size_t first, last; /* spans [first, last) */
    inst_annotation *out;
    size_t n_kept;
    int failed;
    avps_error err;
} results_chunk;

/* Parses one chunk in order, stopping at its first error (the earliest in the chunk). */
static void *results_chunk_parse(void *arg) {
    results_chunk *c = arg;
    const char *path = c->st->ds->path;
    char what[96];
    for (size_t pos = c->first; pos < c->last; pos++) {
        const result_span *s = &c->spans[pos];
        result_fields f;
        int kept = 0;
        if (result_scan(s->begin, s->end, &f) &&
            result_from_fields(c->st, &f, pos, &c->out[c->first + c->n_kept], &kept)) {
            c->n_kept += (size_t)kept;
            continue;
        }
        const char *bad = NULL;
        cJSON *a = cJSON_ParseWithLengthOpts(s->begin, (size_t)(s->end - s->begin), &bad, 0);
        if (!a) {
            snprintf(what, sizeof what, "result %zu", pos);
            results_syntax_error(path, c->text, bad ? bad : s->begin, what, "", &c->err);
            c->failed = 1;
            break;
        }
        int rc = parse_result(c->st, a, pos, &c->out[c->first + c->n_kept], &kept, &c->err);
        cJSON_Delete(a);
        if (rc != 0) {
            c->failed = 1;
            break;
        }
        c->n_kept += (size_t)kept;
    }
    return NULL;
}

/* Splits the spans over up to `threads` threads, then gathers the kept results in file
 * order. The first error in file order is the one reported, whatever thread met it. */
static int results_parse_spans(results_state *st, const char *text, const result_span *spans, size_t n,
                               int threads, avps_error *err) {
    const char *path = st->ds->path;
    size_t t_n = threads < 1 ? 1 : (size_t)threads;
    if (t_n > n / 256 + 1) /* a thread per at least 256 results: starting one costs more */
        t_n = n / 256 + 1;
    results_chunk *chunks = calloc(t_n, sizeof *chunks);
    if (!chunks || !(st->ds->annotations = malloc((n ? n : 1) * sizeof *st->ds->annotations))) {
        free(chunks);
        return avps_fail(err, "%s: out of memory", path);
    }
    for (size_t t = 0; t < t_n; t++)
        chunks[t] = (results_chunk){st, text, spans, n * t / t_n, n * (t + 1) / t_n, st->ds->annotations,
                                    0, 0, {{0}}};
    chunks_run(chunks, sizeof *chunks, t_n, results_chunk_parse);
    int rc = 0;
    for (size_t t = 0; t < t_n; t++) { /* gather in order; free what follows an error */
        results_chunk *c = &chunks[t];
        for (size_t k = 0; k < c->n_kept; k++) {
            inst_annotation *a = &st->ds->annotations[c->first + k];
            if (rc == 0)
                st->ds->annotations[st->ds->n_annotations++] = *a;
            else
                rle_free(&a->rle);
        }
        if (rc == 0 && c->failed) {
            *err = c->err;
            rc = -1;
        }
    }
    free(chunks);
    if (rc == 0 && st->ds->n_annotations < n) { /* other ranks' images dropped: give back the room */
        inst_annotation *fit = realloc(st->ds->annotations, (st->ds->n_annotations ? st->ds->n_annotations : 1) *
                                                                sizeof *fit);
        if (fit)
            st->ds->annotations = fit;
    }
    return rc;
}

/* Results are read one object at a time (cJSON never holds more than one detection's
 * tree), on up to `threads` threads: the objects are independent once the list's scan has
 * found where each starts and ends. */
static int parse_results(results_state *st, const char *text, size_t len, int threads, avps_error *err) {
    const char *path = st->ds->path;
    result_span *spans;
    size_t n;
    int list_failed;
    avps_error list_err;
    if (results_spans(path, text, len, &spans, &n, &list_failed, &list_err) != 0) {
        *err = list_err;
        free(spans);
        return -1;
    }
    if (n > 0) { /* loadRes takes its branch from the first result */
        const char *bad = NULL;
        cJSON *a = cJSON_ParseWithLengthOpts(spans[0].begin, (size_t)(spans[0].end - spans[0].begin), &bad, 0);
        if (!a) {
            results_syntax_error(path, text, bad ? bad : spans[0].begin, "result 0", "", err);
            free(spans);
            return -1;
        }
        st->bbox_branch = !st->masks_only && first_has_bbox(a);
        cJSON_Delete(a);
    }
    int rc = results_parse_spans(st, text, spans, n, threads, err);
    free(spans);
    if (rc == 0 && list_failed) {
        *err = list_err;
        rc = -1;
    }
    return rc;
}

static inst_dataset *results_run(results_state *st, const char *path, char *text, size_t len, int threads,
                                 avps_error *err) {
    if (!st->ds) {
        free(text);
        avps_fail(err, "%s: out of memory", path);
        return NULL;
    }
    int rc = parse_results(st, text, len, threads, err);
    if (rc == 0 && st->keep_compressed)
        st->ds->text = text; /* the masks' counts strings are in it */
    else
        free(text);
    if (rc != 0) {
        inst_dataset_free(st->ds);
        return NULL;
    }
    return st->ds;
}

static inst_dataset *results_load(const char *path, const inst_dataset *gt, iou_type type, inst_keep_fn keep,
                                  void *ctx, int threads, int keep_compressed, avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return NULL;
    results_state st = {dataset_new(path), gt, type, 0, 0, 1, keep_compressed, keep, ctx};
    return results_run(&st, path, text, len, threads, err);
}

inst_dataset *inst_results_load_threads(const char *path, const inst_dataset *gt, iou_type type,
                                        inst_keep_fn keep, void *ctx, int threads, avps_error *err) {
    return results_load(path, gt, type, keep, ctx, threads, 1, err);
}

inst_dataset *inst_results_load(const char *path, const inst_dataset *gt, iou_type type, inst_keep_fn keep,
                                void *ctx, avps_error *err) {
    return results_load(path, gt, type, keep, ctx, 1, 0, err);
}

inst_dataset *inst_masks_load(const char *path, const inst_dataset *gt, int need_score, inst_keep_fn keep,
                              void *ctx, avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return NULL;
    results_state st = {dataset_new(path), gt, IOU_SEGM, 0, 1, need_score, 0, keep, ctx};
    return results_run(&st, path, text, len, 1, err);
}

/* ---- images and categories of a panoptic dataset --------------------------------------- */

static int frame_images(inst_dataset *ds, const pan_dataset *pan, avps_error *err) {
    for (size_t i = 0; i < pan->n_images; i++) {
        const pan_image *im = &pan->images[i];
        char *end;
        long long id = strtoll(im->id, &end, 10);
        if (!*im->id || *end || im->width > 1 << 20 || im->height > 1 << 20)
            return avps_fail(err, "%s: image %s: the id is not an integer or the image is over 2^20 pixels a side",
                             pan->path, im->id);
        ds->images[ds->n_images++] = (inst_image){id, im->width, im->height};
    }
    qsort(ds->images, ds->n_images, sizeof *ds->images, image_cmp);
    for (size_t i = 1; i < ds->n_images; i++)
        if (ds->images[i].id == ds->images[i - 1].id)
            return avps_fail(err, "%s: image %lld appears twice in images", pan->path, (long long)ds->images[i].id);
    return 0;
}

inst_dataset *inst_frame_from_pan(const pan_dataset *pan, avps_error *err) {
    inst_dataset *ds = dataset_new(pan->path);
    if (ds) {
        ds->images = calloc(pan->n_images + 1, sizeof *ds->images);
        ds->category_ids = calloc(pan->n_categories + 1, sizeof *ds->category_ids);
        ds->annotations = calloc(1, sizeof *ds->annotations);
    }
    if (!ds || !ds->images || !ds->category_ids || !ds->annotations) {
        inst_dataset_free(ds);
        avps_fail(err, "%s: out of memory", pan->path);
        return NULL;
    }
    for (size_t c = 0; c < pan->n_categories; c++)
        ds->category_ids[ds->n_categories++] = pan->categories[c].id;
    qsort(ds->category_ids, ds->n_categories, sizeof *ds->category_ids, int32_cmp);
    int rc = (ds->category_names = calloc(ds->n_categories + 1, sizeof *ds->category_names)) ? 0 : -1;
    for (size_t c = 0; rc == 0 && c < pan->n_categories; c++) {
        long k = inst_category_index(ds, pan->categories[c].id);
        if (k >= 0 && pan->categories[c].name && !ds->category_names[k] &&
            !(ds->category_names[k] = strdup(pan->categories[c].name)))
            rc = -1;
    }
    if (rc != 0) {
        inst_dataset_free(ds);
        avps_fail(err, "%s: out of memory", pan->path);
        return NULL;
    }
    if (frame_images(ds, pan, err) != 0) {
        inst_dataset_free(ds);
        return NULL;
    }
    return ds;
}
