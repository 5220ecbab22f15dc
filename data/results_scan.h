/* results_scan.h: private to data/: the fast reader of one COCO result object (see
 * results_scan.c). It understands only the usual shape and defers everything else. */
#ifndef AVPS_RESULTS_SCAN_H
#define AVPS_RESULTS_SCAN_H

#include <stddef.h>

/* The fields of {"image_id": N, "category_id": N, "segmentation": {"size": [H, W],
 * "counts": "..."}, "score": X[, "bbox": [X, Y, W, H]]}, keys in any order, each once. */
typedef struct {
    double image_id, category_id, score, bbox[4], size[2];
    int has_bbox;
    const char *counts;  /* the counts string as it is in the text (between the quotes) */
    size_t counts_len;
    int counts_escaped;  /* it holds "\\" (a backslash of the RLE alphabet); no other escape */
} result_fields;

/* Reads the object in [begin, end) (end just past its '}'). Returns 1 with *f filled
 * when the object is strict JSON of the shape above, with every number a strict JSON
 * number whose value is what strtod gives (as cJSON reads it); 0 for anything else
 * (other keys, repeated keys, escapes other than "\\", other whitespace, other types,
 * malformed text): the caller then reads the object with cJSON, which gives the answer
 * or the error message. */
int result_scan(const char *begin, const char *end, result_fields *f);

#endif
