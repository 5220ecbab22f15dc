/* panoptic_json.c: COCO panoptic JSON (images, annotations with segments_info,
 * categories) read with cJSON into plain arrays, checked, and written back. */
#include "data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---------------------------------------------------------------------- */

/* Where cJSON stopped, as "line L, column C", for a parse error message. */
static void text_position(const char *text, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* An image id is a JSON integer or string; we keep its text. */
static char *image_id_text(const cJSON *v) {
    if (cJSON_IsString(v))
        return strdup(v->valuestring);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9e15)
        return NULL;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
    return strdup(buf);
}

static int get_int(const cJSON *obj, const char *key, long long lo, long long hi, long long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi)
        return -1;
    *out = (long long)v->valuedouble;
    return 0;
}

static const char *get_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int key_index_cmp(const void *a, const void *b) {
    return strcmp(((const pan_key_index *)a)->key, ((const pan_key_index *)b)->key);
}

/* Builds a sorted index; fails on the first duplicate key, returning its position. */
static pan_key_index *key_index_new(const char *const *keys, size_t n, const char **dup) {
    pan_key_index *ix = malloc((n ? n : 1) * sizeof *ix);
    if (!ix)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        ix[i].key = keys[i];
        ix[i].index = i;
    }
    qsort(ix, n, sizeof *ix, key_index_cmp);
    *dup = NULL;
    for (size_t i = 1; i < n; i++)
        if (strcmp(ix[i - 1].key, ix[i].key) == 0) {
            *dup = ix[i].key;
            break;
        }
    return ix;
}

static const pan_key_index *key_index_find(const pan_key_index *ix, size_t n, const char *key) {
    pan_key_index probe = {key, 0};
    return bsearch(&probe, ix, n, sizeof *ix, key_index_cmp);
}

static int segment_parse(const cJSON *js, pan_role role, const char *path, const char *image_id,
                         size_t pos, pan_segment *seg, avps_error *err) {
    long long id, cat, crowd = 0;
    if (!cJSON_IsObject(js))
        return avps_fail(err, "%s: image %s: segments_info[%zu] is not an object", path, image_id, pos);
    if (get_int(js, "id", 0, 0xFFFFFF, &id) != 0)
        return avps_fail(err, "%s: image %s: segments_info[%zu]: \"id\" is missing or not an integer in 0..16777215",
                         path, image_id, pos);
    if (id == 0)
        return avps_fail(err, "%s: image %s: segment 0: id 0 is VOID and cannot name a segment", path, image_id);
    if (get_int(js, "category_id", INT32_MIN, INT32_MAX, &cat) != 0)
        return avps_fail(err, "%s: image %s: segment %lld: \"category_id\" is missing or not an integer", path,
                         image_id, id);
    const cJSON *crowd_js = cJSON_GetObjectItemCaseSensitive(js, "iscrowd");
    if ((role == PAN_GROUND_TRUTH || crowd_js) && get_int(js, "iscrowd", 0, 1, &crowd) != 0)
        return avps_fail(err, "%s: image %s: segment %lld: \"iscrowd\" is missing or not 0 or 1", path, image_id,
                         id);
    const cJSON *area = cJSON_GetObjectItemCaseSensitive(js, "area");
    if (role == PAN_GROUND_TRUTH && (!cJSON_IsNumber(area) || area->valuedouble < 0))
        return avps_fail(err, "%s: image %s: segment %lld: \"area\" is missing or not a number >= 0", path,
                         image_id, id);
    memset(seg, 0, sizeof *seg);
    seg->id = (uint32_t)id;
    seg->category_id = (int32_t)cat;
    seg->iscrowd = (int)crowd;
    seg->area = cJSON_IsNumber(area) ? area->valuedouble : 0;
    return 0;
}

static int segment_ids_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* panopticapi keeps the last of two segments with one id; we refuse them. */
static int segments_check_unique(const pan_annotation *ann, const char *path, avps_error *err) {
    size_t n = ann->n_segments;
    if (n < 2)
        return 0;
    uint32_t *ids = malloc(n * sizeof *ids);
    if (!ids)
        return avps_fail(err, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        ids[i] = ann->segments[i].id;
    qsort(ids, n, sizeof *ids, segment_ids_cmp);
    for (size_t i = 1; i < n; i++)
        if (ids[i] == ids[i - 1]) {
            uint32_t dup = ids[i];
            free(ids);
            return avps_fail(err, "%s: image %s: segment %u appears twice in segments_info", path, ann->image_id,
                             dup);
        }
    free(ids);
    return 0;
}

static int annotation_parse(const cJSON *js, pan_role role, const char *path, size_t pos, pan_annotation *ann,
                            avps_error *err) {
    if (!cJSON_IsObject(js))
        return avps_fail(err, "%s: annotations[%zu] is not an object", path, pos);
    ann->image_id = image_id_text(cJSON_GetObjectItemCaseSensitive(js, "image_id"));
    if (!ann->image_id)
        return avps_fail(err, "%s: annotations[%zu]: \"image_id\" is missing or not an integer or string", path,
                         pos);
    const char *fn = get_string(js, "file_name");
    if (!fn)
        return avps_fail(err, "%s: image %s: \"file_name\" is missing or not a string", path, ann->image_id);
    ann->file_name = strdup(fn);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(js, "segments_info");
    if (!cJSON_IsArray(segs))
        return avps_fail(err, "%s: image %s: \"segments_info\" is missing or not an array", path, ann->image_id);
    size_t n = (size_t)cJSON_GetArraySize(segs);
    ann->segments = calloc(n ? n : 1, sizeof *ann->segments);
    if (!ann->file_name || !ann->segments)
        return avps_fail(err, "%s: out of memory", path);
    const cJSON *s;
    cJSON_ArrayForEach(s, segs) {
        if (segment_parse(s, role, path, ann->image_id, ann->n_segments, &ann->segments[ann->n_segments], err) != 0)
            return -1;
        ann->n_segments++;
    }
    return segments_check_unique(ann, path, err);
}

static int image_parse(const cJSON *js, const char *path, size_t pos, pan_image *im, avps_error *err) {
    long long w, h;
    if (!cJSON_IsObject(js))
        return avps_fail(err, "%s: images[%zu] is not an object", path, pos);
    im->id = image_id_text(cJSON_GetObjectItemCaseSensitive(js, "id"));
    if (!im->id)
        return avps_fail(err, "%s: images[%zu]: \"id\" is missing or not an integer or string", path, pos);
    if (get_int(js, "width", 1, INT32_MAX, &w) != 0 || get_int(js, "height", 1, INT32_MAX, &h) != 0)
        return avps_fail(err, "%s: image %s: \"width\" or \"height\" is missing or not a positive integer", path,
                         im->id);
    im->width = (uint32_t)w;
    im->height = (uint32_t)h;
    const char *fn = get_string(js, "file_name");
    im->file_name = strdup(fn ? fn : "");
    if (!im->file_name)
        return avps_fail(err, "%s: out of memory", path);
    return 0;
}

/* "color" is optional; when there, it must be three integers 0..255. */
static int category_color_parse(const cJSON *js, const char *path, long long id, pan_category *cat,
                                avps_error *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(js, "color");
    if (!c)
        return 0;
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 3)
        return avps_fail(err, "%s: category %lld: \"color\" is not a list of 3 integers", path, id);
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetArrayItem(c, k);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 255) ||
            v->valuedouble != (double)(int)v->valuedouble)
            return avps_fail(err, "%s: category %lld: \"color\"[%d] is not an integer 0..255", path, id, k);
        cat->color[k] = (uint8_t)v->valuedouble;
    }
    cat->has_color = 1;
    return 0;
}

static int category_parse(const cJSON *js, const char *path, size_t pos, pan_category *cat, avps_error *err) {
    long long id, isthing;
    if (!cJSON_IsObject(js) || get_int(js, "id", INT32_MIN, INT32_MAX, &id) != 0)
        return avps_fail(err, "%s: categories[%zu]: \"id\" is missing or not an integer", path, pos);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(js, "isthing");
    if (cJSON_IsBool(t))
        isthing = cJSON_IsTrue(t);
    else if (get_int(js, "isthing", 0, 1, &isthing) != 0)
        return avps_fail(err, "%s: category %lld: \"isthing\" is missing or not 0 or 1", path, id);
    const char *name = get_string(js, "name"), *super = get_string(js, "supercategory");
    cat->id = (int32_t)id;
    cat->isthing = (int)isthing;
    cat->name = strdup(name ? name : "");
    cat->supercategory = super ? strdup(super) : NULL;
    if (!cat->name || (super && !cat->supercategory))
        return avps_fail(err, "%s: out of memory", path);
    return category_color_parse(js, path, id, cat, err);
}

static int array_alloc(const cJSON *arr, size_t elem, void **out) {
    size_t n = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
    *out = calloc(n ? n : 1, elem);
    return *out ? 0 : -1;
}

static int dataset_build_indexes(pan_dataset *ds, avps_error *err) {
    size_t n = ds->n_annotations > ds->n_images ? ds->n_annotations : ds->n_images;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return avps_fail(err, "%s: out of memory", ds->path);
    const char *dup;
    for (size_t i = 0; i < ds->n_annotations; i++)
        keys[i] = ds->annotations[i].image_id;
    ds->annotation_index = key_index_new(keys, ds->n_annotations, &dup);
    if (ds->annotation_index && dup) {
        free(keys);
        return avps_fail(err, "%s: image %s has two entries in annotations", ds->path, dup);
    }
    for (size_t i = 0; i < ds->n_images; i++)
        keys[i] = ds->images[i].id;
    ds->image_index = key_index_new(keys, ds->n_images, &dup);
    free(keys);
    if (!ds->annotation_index || !ds->image_index)
        return avps_fail(err, "%s: out of memory", ds->path);
    if (dup)
        return avps_fail(err, "%s: image %s has two entries in images", ds->path, dup);
    for (size_t i = 1; i < ds->n_categories; i++)
        for (size_t j = 0; j < i; j++)
            if (ds->categories[i].id == ds->categories[j].id)
                return avps_fail(err, "%s: category %d appears twice in categories", ds->path,
                                 ds->categories[i].id);
    return 0;
}

static int dataset_parse(pan_dataset *ds, const cJSON *root, pan_role role, avps_error *err) {
    const char *path = ds->path;
    if (!cJSON_IsObject(root))
        return avps_fail(err, "%s: the top level is not a JSON object", path);
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
    if (!cJSON_IsArray(anns))
        return avps_fail(err, "%s: \"annotations\" is missing or not an array", path);
    if (role == PAN_GROUND_TRUTH && (!cJSON_IsArray(cats) || cJSON_GetArraySize(cats) == 0))
        return avps_fail(err, "%s: \"categories\" is missing or empty", path);
    if (array_alloc(anns, sizeof *ds->annotations, (void **)&ds->annotations) ||
        array_alloc(imgs, sizeof *ds->images, (void **)&ds->images) ||
        array_alloc(cats, sizeof *ds->categories, (void **)&ds->categories))
        return avps_fail(err, "%s: out of memory", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, anns) {
        if (annotation_parse(it, role, path, ds->n_annotations, &ds->annotations[ds->n_annotations], err) != 0) {
            ds->n_annotations++; /* so that free releases the partial entry */
            return -1;
        }
        ds->n_annotations++;
    }
    if (cJSON_IsArray(imgs))
        cJSON_ArrayForEach(it, imgs) {
            ds->n_images++;
            if (image_parse(it, path, ds->n_images - 1, &ds->images[ds->n_images - 1], err) != 0)
                return -1;
        }
    if (cJSON_IsArray(cats))
        cJSON_ArrayForEach(it, cats) {
            ds->n_categories++;
            if (category_parse(it, path, ds->n_categories - 1, &ds->categories[ds->n_categories - 1], err) != 0)
                return -1;
        }
    return dataset_build_indexes(ds, err);
}

/* The whole file parsed, or NULL with the file and the position of a syntax error. */
static cJSON *json_file_parse(const char *path, avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line, col;
        text_position(text, end ? end : text, &line, &col);
        avps_fail(err, "%s: malformed JSON near line %d, column %d", path, line, col);
    }
    free(text);
    return root;
}

/* panopticapi names a result's PNG after its image: every ".jpg" becomes ".png". */
char *panoptic_png_name(const char *file_name) {
    size_t n = strlen(file_name);
    char *s = strdup(file_name);
    for (size_t k = 0; s && k + 4 <= n; k++)
        if (memcmp(s + k, ".jpg", 4) == 0)
            memcpy(s + k, ".png", 4);
    return s;
}

pan_dataset *pan_dataset_load(const char *path, pan_role role, avps_error *err) {
    cJSON *root = json_file_parse(path, err);
    if (!root)
        return NULL;
    pan_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        cJSON_Delete(root);
        avps_fail(err, "%s: out of memory", path);
        return NULL;
    }
    int rc = dataset_parse(ds, root, role, err);
    cJSON_Delete(root);
    if (rc != 0) {
        pan_dataset_free(ds);
        return NULL;
    }
    return ds;
}

/* ---- images and categories alone (the combiner's inputs) ------------------------------ */


static int frame_parse_images(pan_dataset *ds, const cJSON *root, const char *path, avps_error *err) {
    const cJSON *imgs = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "images") : NULL;
    if (!cJSON_IsArray(imgs))
        return avps_fail(err, "%s: \"images\" is missing or not an array", path);
    if (array_alloc(imgs, sizeof *ds->images, (void **)&ds->images))
        return avps_fail(err, "%s: out of memory", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, imgs) {
        ds->n_images++;
        if (image_parse(it, path, ds->n_images - 1, &ds->images[ds->n_images - 1], err) != 0)
            return -1;
    }
    return 0;
}

static int frame_parse_categories(pan_dataset *ds, const cJSON *root, const char *path, avps_error *err) {
    const cJSON *cats = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "categories") : root;
    if (!cJSON_IsArray(cats) || cJSON_GetArraySize(cats) == 0)
        return avps_fail(err, "%s: not a list of categories, nor a file with \"categories\"", path);
    if (array_alloc(cats, sizeof *ds->categories, (void **)&ds->categories))
        return avps_fail(err, "%s: out of memory", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, cats) {
        ds->n_categories++;
        size_t k = ds->n_categories - 1;
        if (category_parse(it, path, k, &ds->categories[k], err) != 0)
            return -1;
        for (size_t j = 0; j < k; j++)
            if (ds->categories[j].id == ds->categories[k].id)
                return avps_fail(err, "%s: category %d appears twice", path, ds->categories[k].id);
    }
    return 0;
}

pan_dataset *pan_frame_load(const char *images_path, const char *categories_path, avps_error *err) {
    pan_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(images_path)) || array_alloc(NULL, sizeof *ds->annotations, (void **)&ds->annotations)) {
        pan_dataset_free(ds);
        avps_fail(err, "%s: out of memory", images_path);
        return NULL;
    }
    cJSON *imgs = json_file_parse(images_path, err);
    int rc = imgs ? frame_parse_images(ds, imgs, images_path, err) : -1;
    cJSON_Delete(imgs);
    cJSON *cats = rc == 0 ? json_file_parse(categories_path, err) : NULL;
    rc = cats ? frame_parse_categories(ds, cats, categories_path, err) : -1;
    cJSON_Delete(cats);
    if (rc == 0 && dataset_build_indexes(ds, err) != 0)
        rc = -1;
    if (rc != 0) {
        pan_dataset_free(ds);
        return NULL;
    }
    return ds;
}

void pan_dataset_free(pan_dataset *ds) {
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_annotations; i++) {
        free(ds->annotations[i].image_id);
        free(ds->annotations[i].file_name);
        free(ds->annotations[i].segments);
    }
    for (size_t i = 0; i < ds->n_images; i++) {
        free(ds->images[i].id);
        free(ds->images[i].file_name);
    }
    for (size_t i = 0; i < ds->n_categories; i++) {
        free(ds->categories[i].name);
        free(ds->categories[i].supercategory);
    }
    free(ds->annotations);
    free(ds->images);
    free(ds->categories);
    free(ds->annotation_index);
    free(ds->image_index);
    free(ds->path);
    free(ds);
}

const pan_annotation *pan_dataset_find_annotation(const pan_dataset *ds, const char *image_id) {
    const pan_key_index *k = key_index_find(ds->annotation_index, ds->n_annotations, image_id);
    return k ? &ds->annotations[k->index] : NULL;
}

const pan_image *pan_dataset_find_image(const pan_dataset *ds, const char *image_id) {
    const pan_key_index *k = key_index_find(ds->image_index, ds->n_images, image_id);
    return k ? &ds->images[k->index] : NULL;
}

int pan_dataset_category_index(const pan_dataset *ds, int32_t category_id) {
    for (size_t i = 0; i < ds->n_categories; i++)
        if (ds->categories[i].id == category_id)
            return (int)i;
    return -1;
}

/* ---- writing -------------------------------------------------------------------- */

void json_put_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20)
            fprintf(fp, "\\u%04x", c);
        else
            fputc(c, fp);
    }
    fputc('"', fp);
}

/* Image ids that look like integers are written as JSON numbers, as COCO has them. */
static void json_put_image_id(FILE *fp, const char *id) {
    char *end;
    strtoll(id, &end, 10);
    if (*id && *end == '\0')
        fputs(id, fp);
    else
        json_put_string(fp, id);
}

static void write_segment(FILE *fp, const pan_segment *s) {
    fprintf(fp, "{\"id\": %u, \"category_id\": %d, \"iscrowd\": %d, \"area\": %.17g, \"bbox\": [%d, %d, %d, %d]}",
            s->id, s->category_id, s->iscrowd, s->area, s->bbox[0], s->bbox[1], s->bbox[2], s->bbox[3]);
}

static void write_images(FILE *fp, const pan_dataset *ds) {
    fputs("{\"images\": [", fp);
    for (size_t i = 0; i < ds->n_images; i++) {
        const pan_image *im = &ds->images[i];
        fputs(i ? ",\n  {\"id\": " : "\n  {\"id\": ", fp);
        json_put_image_id(fp, im->id);
        fputs(", \"file_name\": ", fp);
        json_put_string(fp, im->file_name);
        fprintf(fp, ", \"width\": %u, \"height\": %u}", im->width, im->height);
    }
    fputs("],\n\"annotations\": [", fp);
}

static void write_annotation(FILE *fp, const pan_annotation *a, int first) {
    fputs(first ? "\n  {\"image_id\": " : ",\n  {\"image_id\": ", fp);
    json_put_image_id(fp, a->image_id);
    fputs(", \"file_name\": ", fp);
    json_put_string(fp, a->file_name);
    fputs(", \"segments_info\": [", fp);
    for (size_t j = 0; j < a->n_segments; j++) {
        if (j)
            fputs(", ", fp);
        write_segment(fp, &a->segments[j]);
    }
    fputs("]}", fp);
}

static void write_categories(FILE *fp, const pan_dataset *ds) {
    fputs("],\n\"categories\": [", fp);
    for (size_t i = 0; i < ds->n_categories; i++) {
        const pan_category *c = &ds->categories[i];
        fprintf(fp, "%s{\"id\": %d, \"name\": ", i ? ",\n  " : "\n  ", c->id);
        json_put_string(fp, c->name);
        if (c->supercategory) {
            fputs(", \"supercategory\": ", fp);
            json_put_string(fp, c->supercategory);
        }
        uint8_t rgb[3];
        pan_category_color(c, rgb);
        fprintf(fp, ", \"isthing\": %d, \"color\": [%d, %d, %d]}", c->isthing, rgb[0], rgb[1], rgb[2]);
    }
    fputs("]}\n", fp);
}

int pan_dataset_write(const pan_dataset *ds, const char *path, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    write_images(af.fp, ds);
    for (size_t i = 0; i < ds->n_annotations; i++)
        write_annotation(af.fp, &ds->annotations[i], i == 0);
    write_categories(af.fp, ds);
    return file_atomic_commit(&af, err);
}

int pan_writer_open(pan_writer *w, const char *path, const pan_dataset *frame, avps_error *err) {
    memset(w, 0, sizeof *w);
    if (file_atomic_open(&w->af, path, err) != 0)
        return -1;
    w->frame = frame;
    w->open = 1;
    write_images(w->af.fp, frame);
    return 0;
}

void pan_writer_add(pan_writer *w, const pan_annotation *a) {
    write_annotation(w->af.fp, a, w->n_written++ == 0);
}

int pan_writer_commit(pan_writer *w, avps_error *err) {
    write_categories(w->af.fp, w->frame);
    w->open = 0;
    return file_atomic_commit(&w->af, err);
}

void pan_writer_abort(pan_writer *w) {
    if (w->open)
        file_atomic_abort(&w->af);
    w->open = 0;
}
