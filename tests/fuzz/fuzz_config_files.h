/* fuzz_config_files.h: the small fixed panoptic dataset the configuration-file harnesses
 * read their input against (two thing categories, one stuff, two images). */
#ifndef AVPS_FUZZ_CONFIG_FILES_H
#define AVPS_FUZZ_CONFIG_FILES_H

#include "../../data/data.h"
#include "fuzz.h"

static const char fuzz_pan_json[] =
    "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 4, \"height\": 3},"
    " {\"id\": 2, \"file_name\": \"b.jpg\", \"width\": 2, \"height\": 2}],"
    " \"annotations\": [{\"image_id\": 1, \"file_name\": \"a.png\", \"segments_info\": ["
    "{\"id\": 3, \"category_id\": 1, \"iscrowd\": 0, \"area\": 5, \"bbox\": [0, 0, 2, 2]}]},"
    " {\"image_id\": 2, \"file_name\": \"b.png\", \"segments_info\": []}],"
    " \"categories\": [{\"id\": 1, \"name\": \"person\", \"isthing\": 1}, {\"id\": 3, \"name\": \"car\", \"isthing\": 1},"
    " {\"id\": 184, \"name\": \"tree\", \"isthing\": 0}]}";

static inline pan_dataset *fuzz_pan_dataset(void) {
    char path[512];
    avps_error err;
    fuzz_write(path, sizeof path, "fixed-panoptic.json", fuzz_pan_json, sizeof fuzz_pan_json - 1);
    pan_dataset *ds = pan_dataset_load(path, PAN_GROUND_TRUTH, &err);
    unlink(path);
    if (!ds) {
        fprintf(stderr, "the fixed panoptic dataset: %s\n", err.msg);
        exit(2);
    }
    return ds;
}

#endif
