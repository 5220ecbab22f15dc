/* gt_scan.c: one pass over a COCO instances ground-truth file that finds the spans of its
 * top-level values and of each annotation object, so that the reader never needs a
 * cJSON tree of the whole file (about 14 times the file's size, mostly polygons). It is
 * a bracket matcher, not a parser: every span it returns is then parsed by cJSON, which
 * keeps the JSON rules (and the error messages, via the whole-tree reader) cJSON's. */
#include "gt_scan.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

const char *json_space_skip(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* memchr, as the strings (RLE counts) are most of a results file's bytes. */
const char *json_string_end(const char *p, const char *end) {
    for (const char *q; (q = memchr(p, '"', (size_t)(end - p))); p = q + 1) {
        size_t slashes = 0;
        while (q - slashes > p && q[-1 - (ptrdiff_t)slashes] == '\\')
            slashes++;
        if (slashes % 2 == 0)
            return q;
    }
    return NULL;
}

const char *json_container_end(const char *p, const char *end, int room) {
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '"') {
            if (!(p = json_string_end(p + 1, end)))
                return NULL;
        } else if (*p == '{' || *p == '[') {
            if (++depth > room)
                return NULL;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

/* The span of the value at p, nested at `level` in the file (the root is 1): a container
 * to its closing bracket, a string to its closing quote, anything else up to the next
 * ',', '}' or cJSON whitespace. NULL when none can be found. */
static const char *value_span_end(const char *p, const char *end, int level) {
    /* a container at level L opens with cJSON's depth L - 1, which must stay below the
     * limit for every level inside it; a margin keeps clear of off-by-ones */
    int room = CJSON_NESTING_LIMIT - level - 4;
    if (p == end)
        return NULL;
    if (*p == '{' || *p == '[')
        return json_container_end(p, end, room);
    if (*p == '"') {
        const char *q = json_string_end(p + 1, end);
        return q ? q + 1 : NULL;
    }
    if (!*p || !strchr("-0123456789tfn", *p)) /* cJSON would skip a byte-order mark here */
        return NULL;
    const char *q = p;
    while (q < end && *q != ',' && *q != '}' && (unsigned char)*q > 32)
        q++;
    return q;
}

static int span_push(gt_span **spans, size_t *n, size_t *cap, gt_span s) {
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 1024;
        gt_span *grown = realloc(*spans, grown_cap * sizeof *grown);
        if (!grown)
            return -1;
        *spans = grown, *cap = grown_cap;
    }
    (*spans)[(*n)++] = s;
    return 0;
}

/* The objects of the "annotations" list opening at p; returns just past its ']', or
 * NULL (with *rc = -1 when out of memory). */
static const char *elements_scan(const char *p, const char *end, gt_layout *out, int *rc) {
    size_t cap = 0;
    if (p == end || *p != '[')
        return NULL;
    p = json_space_skip(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        const char *e = p < end && *p == '{' ? value_span_end(p, end, 3) : NULL;
        if (!e)
            return NULL;
        if (span_push(&out->elements, &out->n_elements, &cap, (gt_span){p, e}) != 0) {
            *rc = -1;
            return NULL;
        }
        p = json_space_skip(e, end);
        if (p < end && *p == ']')
            return p + 1;
        if (p == end || *p != ',')
            return NULL;
        p = json_space_skip(p + 1, end);
    }
}

/* A key made of plain bytes: no escapes, no control characters (cJSON would decode the
 * first, and a NUL would end its copy of the key). */
static int key_plain(const char *k, const char *end) {
    for (; k < end; k++)
        if (*k == '\\' || (unsigned char)*k < 32)
            return 0;
    return 1;
}

static int key_is(const char *k, const char *end, const char *name) {
    size_t n = strlen(name);
    return (size_t)(end - k) == n && memcmp(k, name, n) == 0;
}

/* The top level, key by key. */
static int layout_scan(const char *text, size_t len, gt_layout *out) {
    const char *end = text + len, *p = json_space_skip(text, end);
    size_t others_cap = 0;
    int rc = 0;
    if (p == end || *p != '{')
        return 0;
    p = json_space_skip(p + 1, end);
    for (;;) {
        if (p == end || *p != '"')
            return 0;
        const char *k = p + 1, *ke = json_string_end(k, end);
        if (!ke || !key_plain(k, ke))
            return 0;
        p = json_space_skip(ke + 1, end);
        if (p == end || *p != ':')
            return 0;
        p = json_space_skip(p + 1, end);
        gt_span *slot = key_is(k, ke, "images")        ? &out->images
                        : key_is(k, ke, "categories")  ? &out->categories
                        : key_is(k, ke, "annotations") ? &out->annotations
                                                       : NULL;
        const char *e;
        if (slot && slot->begin) /* a repeated key: cJSON keeps the first; leave it to the tree */
            return 0;
        if (slot == &out->annotations)
            e = elements_scan(p, end, out, &rc);
        else
            e = value_span_end(p, end, 2);
        if (!e)
            return rc;
        if (slot)
            *slot = (gt_span){p, e};
        else if (span_push(&out->others, &out->n_others, &others_cap, (gt_span){p, e}) != 0)
            return -1;
        p = json_space_skip(e, end);
        if (p < end && *p == '}')
            return 1;
        if (p == end || *p != ',')
            return 0;
        p = json_space_skip(p + 1, end);
    }
}

int gt_scan(const char *text, size_t len, gt_layout *out) {
    memset(out, 0, sizeof *out);
    int rc = layout_scan(text, len, out);
    if (rc != 1)
        gt_layout_free(out);
    return rc;
}

void gt_layout_free(gt_layout *layout) {
    free(layout->elements);
    free(layout->others);
    memset(layout, 0, sizeof *layout);
}
