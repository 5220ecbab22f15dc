/* import.h: the pieces of `avps import` (cmd_import.c, import_semantic.c,
 * import_panoptic.c): one job, read by every image's worker. Internal to mpi/. */
#ifndef AVPS_IMPORT_H
#define AVPS_IMPORT_H

#include "../model/model.h"
#include "progress.h"

#include <cjson/cJSON.h>

typedef enum { SEM_NONE, SEM_PNG, SEM_NPY, SEM_JSON, SEM_PANOPTIC } sem_source;

/* label_channel[] entries that are not a channel index */
#define LABEL_NO_CLASS (-1)
#define LABEL_OUTSIDE_MAP (-2)
#define LABEL_NOT_IN_DATASET (-3)
#define LABEL_VALUES 65536

typedef struct {
    const char *gt_json, *results, *semantic_dir, *semantic_json, *semantic_format, *semantic_kind;
    const char *panoptic_json, *panoptic_dir, *out, *name;
    const char *map_spec, *results_map_spec, *semantic_map_spec, *ignore_text;
    long threads, stride; /* stride 0: a grid stretched over the image */
    progress_mode progress;
    pan_dataset *gt;
    inst_dataset images;           /* the panoptic images as inst_results_load wants them */
    inst_dataset *res;
    size_t *by_image;              /* result indexes grouped by image index, file order within */
    size_t *image_start;           /* n_images + 1 offsets into by_image */
    category_map results_map, semantic_map;
    int has_results_map, has_semantic_map;
    long ignore_label;             /* a label value meaning "no class", or -1 */
    int32_t *label_channel;        /* LABEL_VALUES entries: a label value's channel, or LABEL_* */
    sem_source sem;
    ss_kind kind;
    uint32_t channels;
    int32_t *channel_category;
    /* SEM_JSON: detectron2's sem_seg_predictions.json, entries grouped by image index */
    cJSON *semseg;
    const cJSON **semseg_items;
    size_t *semseg_pos;            /* each item's index in the file, for messages */
    size_t *semseg_start;
    /* SEM_PANOPTIC */
    pan_dataset *pan;
    double **pan_scores;           /* per prediction annotation, per segment (1 when absent) */
    char *work_pan_dir;            /* the default --panoptic-dir, owned */
    char *out_target;              /* out, when it is a link to a folder: its target */
    store_writer *store;
} import_job;

/* The category of an image's PNG or array: "<stem><suffix>" in dir. Caller frees. */
char *import_stem_path(const char *dir, const char *file_name, const char *suffix);
/* The channel of label value v, or a message naming where and why (v outside the map, not a
 * dataset category). *channel gets SS_LABEL_NONE for no class. */
int import_label(const import_job *ij, uint32_t v, const char *where, uint16_t *channel, avps_error *err);

/* import_semantic.c: the semantic side. Prepare reads what the store's kind and channels
 * need (the first array, the JSON) before anything is written; read fills one image. */
int import_semantic_prepare(import_job *ij, avps_error *err);
int import_semantic_read(const import_job *ij, const pan_annotation *ann, const pan_image *im, ss_map *ss,
                         avps_error *err);
void import_semantic_release(import_job *ij);

/* import_panoptic.c: a COCO panoptic prediction as an end: label map and thing instances. */
int import_panoptic_prepare(import_job *ij, avps_error *err);
int import_panoptic_read(const import_job *ij, const pan_image *im, head_output *out, avps_error *err);
void import_panoptic_release(import_job *ij);

#endif
