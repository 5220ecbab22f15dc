/* category_map.c: a network's class indexes (contiguous, from 0) to the dataset's
 * category ids, as `--category-map` gives them: a JSON object {"index": id or null}, a
 * JSON list [id of index 0, ...], a file holding either, or a named preset for the
 * common contiguous orders (docs/formats.md, "Category maps"). */
#include "data.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* COCO's panoptic ids are in id order with the 80 things (1..90) before the 53 stuff
 * (92..200), so one table serves coco80, coco133 and mmdetection's panoptic order. */
static int preset_fill(const char *name, category_map *m) {
    size_t n = synth_category_count(), things = 0;
    for (size_t i = 0; i < n; i++)
        things += synth_category_at(i)->isthing != 0;
    int stuff_fpn = strcmp(name, "detectron2-panoptic-fpn-stuff") == 0;
    size_t first = 0, count = 0, skip = 0;
    if (!strcmp(name, "coco80") || !strcmp(name, "detectron2-coco") || !strcmp(name, "mmdet-coco"))
        first = 0, count = things;
    else if (!strcmp(name, "coco133") || !strcmp(name, "detectron2-coco-panoptic") ||
             !strcmp(name, "mmdet-coco-panoptic"))
        first = 0, count = n;
    else if (stuff_fpn) /* index 0 is Panoptic FPN's merged "things" class: no category */
        first = things, count = n - things, skip = 1;
    else
        return -1;
    m->n = count + skip;
    if (!(m->to = calloc(m->n, sizeof *m->to)))
        return -2;
    for (size_t i = 0; i < count; i++)
        m->to[skip + i] = synth_category_at(first + i)->id;
    return 0;
}

static int map_add(category_map *m, double key, const cJSON *v, const char *what, avps_error *err) {
    /* the range first: converting an out-of-range double to long is undefined */
    if (!(key >= 0 && key <= CATEGORY_MAP_MAX_INDEX) || key != (double)(long)key)
        return avps_fail(err, "%s: index %g is not an integer 0..%d", what, key, CATEGORY_MAP_MAX_INDEX);
    if (!cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 2147483647.0 &&
                              v->valuedouble == (double)(long)v->valuedouble))
        return avps_fail(err, "%s: index %ld must map to a category id (an integer >= 1) or null", what, (long)key);
    size_t k = (size_t)key;
    if (k >= m->n) {
        int32_t *to = realloc(m->to, (k + 1) * sizeof *to);
        if (!to)
            return avps_fail(err, "out of memory");
        for (size_t i = m->n; i <= k; i++)
            to[i] = CATEGORY_MAP_ABSENT;
        m->to = to, m->n = k + 1;
    } else if (m->to[k] != CATEGORY_MAP_ABSENT) {
        return avps_fail(err, "%s: index %zu is mapped twice", what, k);
    }
    m->to[k] = cJSON_IsNull(v) ? CATEGORY_MAP_NONE : (int32_t)v->valuedouble;
    return 0;
}

static int parse_json(const char *text, category_map *m, const char *what, avps_error *err) {
    cJSON *root = cJSON_Parse(text);
    int rc = 0;
    if (cJSON_IsString(root)) {
        char *name = strdup(root->valuestring);
        cJSON_Delete(root);
        rc = name ? category_map_load(name, m, err) : avps_fail(err, "out of memory");
        free(name);
        return rc;
    }
    if (!cJSON_IsObject(root) && !cJSON_IsArray(root))
        rc = avps_fail(err, "%s: a category map is a JSON object {\"index\": category id, ...}, a list of ids or "
                            "a preset name",
                       what);
    const cJSON *v;
    double pos = 0;
    const cJSON *list = rc == 0 ? root : NULL;
    cJSON_ArrayForEach(v, list) {
        double key = pos++;
        if (cJSON_IsObject(root)) {
            char *end;
            key = strtod(v->string, &end);
            if (!*v->string || *end)
                key = -1;
        }
        if ((rc = map_add(m, key, v, what, err)) != 0)
            break;
    }
    cJSON_Delete(root);
    return rc;
}

int category_map_load(const char *spec, category_map *m, avps_error *err) {
    memset(m, 0, sizeof *m);
    int rc = preset_fill(spec, m);
    if (rc == -2)
        return avps_fail(err, "out of memory");
    if (rc == 0)
        return (m->name = strdup(spec)) ? 0 : avps_fail(err, "out of memory");
    rc = 0;
    const char *p = spec + strspn(spec, " \t\r\n");
    if (*p == '{' || *p == '[') {
        rc = parse_json(spec, m, "--category-map", err);
    } else if (!strchr(spec, '/') && !strchr(spec, '.')) {
        rc = avps_fail(err, "category map '%s': not a preset (coco80, coco133, detectron2-coco, "
                            "detectron2-coco-panoptic, detectron2-panoptic-fpn-stuff, mmdet-coco, "
                            "mmdet-coco-panoptic), a JSON object or a file",
                       spec);
    } else {
        size_t len;
        char *text = file_read_all(spec, &len, err);
        rc = text ? parse_json(text, m, spec, err) : -1;
        free(text);
    }
    free(m->name); /* a file naming a preset: the file names the map in messages */
    m->name = NULL;
    if (rc == 0 && !(m->name = strdup(*p == '{' || *p == '[' ? "--category-map" : spec)))
        rc = avps_fail(err, "out of memory");
    if (rc == 0 && m->n == 0)
        rc = avps_fail(err, "category map %s is empty", spec);
    if (rc != 0)
        category_map_release(m);
    return rc;
}

int32_t category_map_get(const category_map *m, int64_t index) {
    return index >= 0 && (uint64_t)index < m->n ? m->to[index] : CATEGORY_MAP_ABSENT;
}

void category_map_release(category_map *m) {
    free(m->to);
    free(m->name);
    memset(m, 0, sizeof *m);
}
