/* data: the file formats avps reads and writes, and the synthetic world.
 *
 * Contract:
 * - Every function that can fail returns 0 (or a non-NULL pointer) on success and
 *   -1 (or NULL) on failure, after filling an avps_error with a message that names
 *   the file and, where there is one, the image id and segment id.
 * - Files are written atomically: to a temporary name beside the target, then renamed,
 *   so a failed run leaves nothing partial behind.
 * - Pixels are streamed: a PNG is read one row at a time, never a whole dataset.
 * - Nothing here keeps global mutable state; every object is owned by whoever called
 *   its _new/_load and released with the matching _free.
 */
#ifndef AVPS_DATA_H
#define AVPS_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ---------------------------------------------------------------- */

typedef struct {
    char msg[1024];
} avps_error;

/* Formats the message into err and returns -1, so callers can `return avps_fail(...)`. */
int avps_fail(avps_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Puts "<formatted>: " before the message already in err; returns -1. */
int avps_prefix(avps_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- small file helpers ------------------------------------------------------ */

/* Reads a whole file; *len gets its size. The buffer is NUL-terminated; caller frees. */
char *file_read_all(const char *path, size_t *len, avps_error *err);

/* Writes atomically: an open FILE on "<path>.tmp.<pid>", then file_atomic_commit renames it
 * into place (or file_atomic_abort removes it). */
typedef struct {
    FILE *fp;
    char *final_path;
    char *tmp_path;
} atomic_file;
int file_atomic_open(atomic_file *af, const char *path, avps_error *err);
int file_atomic_commit(atomic_file *af, avps_error *err);
void file_atomic_abort(atomic_file *af);

/* "a/b/panoptic.json" -> "a/b/panoptic" (panopticapi's default PNG folder). Caller frees. */
char *path_without_json_suffix(const char *path);
/* dir + "/" + name. Caller frees. */
char *path_join(const char *dir, const char *name);
/* mkdir -p; 0 on success or if it exists. */
int dir_create(const char *path, avps_error *err);

/* ---- COCO panoptic JSON -------------------------------------------------------- */

typedef struct {
    uint32_t id;          /* R + 256 G + 256^2 B of its pixels; never 0 (VOID) */
    int32_t category_id;
    int iscrowd;
    double area;          /* from the JSON; ground truth only */
    int32_t bbox[4];      /* x, y, w, h; written by the synthetic world */
} pan_segment;

typedef struct {
    char *image_id;       /* the JSON value as text: 501, or "frankfurt_000000" */
    char *file_name;      /* the PNG's name inside the dataset's folder */
    size_t n_segments;
    pan_segment *segments;
} pan_annotation;

typedef struct {
    char *id;             /* as pan_annotation.image_id */
    char *file_name;
    uint32_t width, height;
} pan_image;

typedef struct {
    int32_t id;
    int isthing;
    char *name;
} pan_category;

typedef struct {
    const char *key;
    size_t index;
} pan_key_index;

typedef struct {
    char *path;                 /* the file it was read from */
    size_t n_images;
    pan_image *images;
    size_t n_annotations;
    pan_annotation *annotations; /* in file order: dataset order */
    size_t n_categories;
    pan_category *categories;    /* in file order */
    /* sorted by image id, for lookup */
    pan_key_index *annotation_index;
    pan_key_index *image_index;
} pan_dataset;

/* Ground truth needs iscrowd and area on every segment; predictions need neither. */
typedef enum { PAN_GROUND_TRUTH, PAN_PREDICTION } pan_role;

pan_dataset *pan_dataset_load(const char *path, pan_role role, avps_error *err);
void pan_dataset_free(pan_dataset *ds);
const pan_annotation *pan_dataset_find_annotation(const pan_dataset *ds, const char *image_id);
const pan_image *pan_dataset_find_image(const pan_dataset *ds, const char *image_id);
/* Index into ds->categories, or -1. Categories are few; a linear scan is enough. */
int pan_dataset_category_index(const pan_dataset *ds, int32_t category_id);
/* Writes images, annotations (segments with id, category_id, iscrowd, area, bbox) and
 * categories as COCO panoptic JSON, atomically. */
int pan_dataset_write(const pan_dataset *ds, const char *path, avps_error *err);

/* ---- PNG -------------------------------------------------------------------------- */

/* Panoptic PNGs hold segment ids as colours: id = R + 256 G + 256^2 B. Palette, grey and
 * 16-bit images are converted to 8-bit RGB and alpha is dropped, as PIL + panopticapi's
 * rgb2id see them. */
static inline uint32_t rgb_to_id(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}
static inline void id_to_rgb(uint32_t id, uint8_t *p) {
    p[0] = (uint8_t)id; p[1] = (uint8_t)(id >> 8); p[2] = (uint8_t)(id >> 16);
}

typedef struct png_reader png_reader;
png_reader *png_reader_open(const char *path, avps_error *err);
uint32_t png_reader_width(const png_reader *r);
uint32_t png_reader_height(const png_reader *r);
/* Decodes the next row into rgb (3 * width bytes). */
int png_reader_read_row(png_reader *r, uint8_t *rgb, avps_error *err);
void png_reader_free(png_reader *r);

/* Writes an 8-bit RGB PNG atomically. */
int png_write_rgb(const char *path, uint32_t width, uint32_t height, const uint8_t *rgb,
                  avps_error *err);

/* ---- the synthetic world ---------------------------------------------------------- */

/* A deterministic COCO-like panoptic world: the same (seed, image index) gives the same
 * ground truth and the same perturbed prediction on any rank. */
typedef struct {
    uint64_t seed;
    uint32_t width, height;
} synth_params;

/* The synthetic category set: 80 things then 53 stuff classes, as COCO panoptic has;
 * synth_category gives the id, isthing and name of one. */
size_t synth_category_count(void);
int32_t synth_category(size_t index, int *isthing, char *name, size_t name_len);

/* Renders image `index`: ids (width*height) for the ground truth and for a perturbed
 * prediction, with their segments (area and bbox from the pixels). Caller frees the
 * segment arrays. */
typedef struct {
    uint32_t *gt_ids, *pred_ids;
    pan_segment *gt_segments, *pred_segments;
    size_t n_gt, n_pred;
} synth_image;
int synth_image_render(const synth_params *p, uint64_t index, synth_image *out, avps_error *err);
void synth_image_release(synth_image *img);

#endif
