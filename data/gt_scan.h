/* gt_scan.h: private to data/: where the parts of a COCO instances ground-truth file lie
 * (see gt_scan.c), found without building a tree, so that the annotations can be read one
 * object at a time. It understands only the usual layout and defers everything else. */
#ifndef AVPS_GT_SCAN_H
#define AVPS_GT_SCAN_H

#include <stddef.h>

/* Bytes [begin, end) of one JSON value in the text; begin is NULL for a key not present. */
typedef struct {
    const char *begin, *end;
} gt_span;

typedef struct {
    gt_span images, categories, annotations; /* the values of these keys */
    gt_span *elements;                       /* each object of the "annotations" list, in order */
    size_t n_elements;
    gt_span *others; /* the values of every other key, for the caller to check */
    size_t n_others;
} gt_layout;

/* Scans a top-level object whose keys are plain (no escapes or control characters),
 * each of "images", "categories", "annotations" at most once, "annotations" a list of
 * objects, with only space, tab, CR and LF between tokens; text after the closing brace
 * is not looked at (cJSON ignores it too). Returns 1 with *out filled, 0 for any other
 * text (the caller then reads it as one tree, which gives the answer or the error), -1
 * when out of memory. The spans' syntax is not checked here: the caller parses each with
 * cJSON and must check that it ends where its span ends. A container nested deep enough
 * that the whole file would pass cJSON's nesting limit where the span alone would not
 * also returns 0. Free with gt_layout_free. */
/* Shared with the results reader: the first byte at or after p that is not JSON
 * whitespace; the closing quote of the string whose first character is at p (the first
 * '"' after an even number of backslashes), or NULL; just past the bracket that closes
 * the container opening at p, skipping strings, or NULL, also when it nests deeper than
 * `room` levels (itself the first). */
const char *json_space_skip(const char *p, const char *end);
const char *json_string_end(const char *p, const char *end);
const char *json_container_end(const char *p, const char *end, int room);

int gt_scan(const char *text, size_t len, gt_layout *out);
void gt_layout_free(gt_layout *layout);

#endif
