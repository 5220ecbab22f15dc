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

/* ---- threads ---------------------------------------------------------------- */

/* Runs fn on each of n chunks of `size` bytes at `chunks`: chunk 0 on this thread, the
 * others on threads of their own, joined before it returns. A chunk that gets no thread
 * (none to be had, or no memory to track them) runs here, so every chunk always runs;
 * each chunk reports its own outcome in its bytes. */
void chunks_run(void *chunks, size_t size, size_t n, void *(*fn)(void *));

/* ---- small file helpers ------------------------------------------------------ */

/* Reads a whole file; *len gets its size. The buffer is NUL-terminated; caller frees. */
char *file_read_all(const char *path, size_t *len, avps_error *err);

/* Writes an output file (docs/formats.md, "Output paths"): a regular file or a new path
 * through "<target>.tmp.<pid>" in the same folder, renamed onto it by file_atomic_commit
 * (file_atomic_abort removes it); a symbolic link is followed and its target written that
 * way; standard output ("-", or a path that is it, such as /dev/stdout), a character
 * device or a FIFO is written in place; a folder is refused. */
typedef struct {
    FILE *fp;
    char *final_path;  /* as given, for messages */
    char *target;      /* the file renamed onto: final_path with its links followed */
    char *tmp_path;    /* NULL when written in place */
    int is_stdout;
} atomic_file;
int file_atomic_open(atomic_file *af, const char *path, avps_error *err);
int file_atomic_commit(atomic_file *af, avps_error *err);
/* The first half of file_atomic_commit: closes the file and checks every write (an error
 * aborts it) but renames nothing, so outputs that stand or fall together are all closed
 * before any is committed. */
int file_atomic_close(atomic_file *af, avps_error *err);
void file_atomic_abort(atomic_file *af);
/* What file_atomic_open would refuse, checked before any work: a folder, a socket, a
 * block device, a new or regular file whose folder is missing or not writable. 0 for
 * anything it would write. */
int file_output_check(const char *path, avps_error *err);
/* The same for an output folder: the path is a writable folder, or the nearest folder
 * above it that exists is writable (dir_create will make the rest). */
int dir_output_check(const char *path, avps_error *err);
/* The outermost path that a write to path would create: path itself or a folder above
 * it; NULL when path exists. Caller frees. */
char *path_first_missing(const char *path);
/* The folder a path is in: "a/b.json" -> "a", "b.json" -> ".". Caller frees. */
char *path_parent(const char *path);
/* Removes a file, or a folder and all it holds; what cannot be removed stays. */
void path_remove_all(const char *path);

/* "a/b/panoptic.json" -> "a/b/panoptic" (panopticapi's default PNG folder). Caller frees. */
char *path_without_json_suffix(const char *path);
/* The absolute path without links, "." or "..", for reports (one file, one name wherever
 * it is called from); the path as given when it cannot be resolved. Caller frees. */
char *path_canonical(const char *path);
/* dir + "/" + name. Caller frees. */
char *path_join(const char *dir, const char *name);
/* mkdir -p; 0 on success or if it exists. */
int dir_create(const char *path, avps_error *err);

/* Writes s as a JSON string literal, quoted and escaped. */
void json_put_string(FILE *fp, const char *s);

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
    char *supercategory;  /* optional: NULL when the file has none, and then not written */
    int has_color;        /* the file gave "color": [r, g, b] */
    uint8_t color[3];
} pan_category;

/* The colour c is drawn in and written with: its own, else COCO's panoptic colour of its
 * id, else one made from the id (data/category_colors.c). */
void pan_category_color(const pan_category *c, uint8_t rgb[3]);
/* COCO's panoptic colour of category id, or NULL for an id COCO does not have. */
const uint8_t *coco_category_color(int32_t id);

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

/* The PNG name panopticapi gives a result of the image file_name: every ".jpg" made ".png"
 * (a new string; NULL when out of memory). */
char *panoptic_png_name(const char *file_name);
pan_dataset *pan_dataset_load(const char *path, pan_role role, avps_error *err);
void pan_dataset_free(pan_dataset *ds);
const pan_annotation *pan_dataset_find_annotation(const pan_dataset *ds, const char *image_id);
const pan_image *pan_dataset_find_image(const pan_dataset *ds, const char *image_id);
/* Index into ds->categories, or -1. Categories are few; a linear scan is enough. */
int pan_dataset_category_index(const pan_dataset *ds, int32_t category_id);
/* Writes images, annotations (segments with id, category_id, iscrowd, area, bbox) and
 * categories as COCO panoptic JSON, atomically. */
int pan_dataset_write(const pan_dataset *ds, const char *path, avps_error *err);
/* The same file written annotation by annotation, so that a writer holds one image's
 * segments at a time: open writes frame's images (and later its categories), add appends
 * one annotation, commit finishes and renames it in place; abort removes it. */
typedef struct {
    atomic_file af;
    const pan_dataset *frame;
    size_t n_written;
    int open;
} pan_writer;
int pan_writer_open(pan_writer *w, const char *path, const pan_dataset *frame, avps_error *err);
void pan_writer_add(pan_writer *w, const pan_annotation *a);
int pan_writer_commit(pan_writer *w, avps_error *err);
void pan_writer_abort(pan_writer *w);
/* A dataset without annotations, as panopticapi's combiner takes its inputs: the
 * "images" of images_path (a COCO file) and the categories of categories_path (a JSON
 * list of categories, or a file with "categories"). */
pan_dataset *pan_frame_load(const char *images_path, const char *categories_path, avps_error *err);

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
/* As png_reader_open, but a PNG whose header is not want_w x want_h is refused, naming
 * the file, before anything is allocated from it. Every reader also refuses a header
 * claiming more pixels than the file's length can decode to. */
png_reader *png_reader_open_sized(const char *path, uint32_t want_w, uint32_t want_h, avps_error *err);
/* As png_reader_open_sized, always through libpng, even for the 8-bit RGB(A) files the
 * libdeflate path reads: the tests and the fuzzer read every file both ways. */
png_reader *png_reader_open_libpng(const char *path, uint32_t want_w, uint32_t want_h, avps_error *err);
/* Memory a caller keeps from one image to the next, so that a large image's pixels are not
 * mapped and faulted in afresh every time (for 2048x1024 that was half the CPU time, in
 * the kernel). Starts zeroed; the readers opened with it must be freed before it is
 * released, and use it one at a time. */
typedef struct {
    uint8_t *bytes;
    size_t cap;
} png_buffer;
/* As png_reader_open_sized, the decoded image held in *keep (grown as needed). */
png_reader *png_reader_open_buffered(const char *path, uint32_t want_w, uint32_t want_h, png_buffer *keep,
                                     avps_error *err);
void png_buffer_release(png_buffer *keep);
uint32_t png_reader_width(const png_reader *r);
uint32_t png_reader_height(const png_reader *r);
/* Bits per sample in the file (1, 2, 4, 8 or 16) before the conversion to 8-bit RGB, which
 * keeps only the high byte of 16-bit samples: label-map readers refuse 16. */
unsigned png_reader_source_depth(const png_reader *r);
/* Decodes the next row into rgb (3 * width bytes). */
int png_reader_read_row(png_reader *r, uint8_t *rgb, avps_error *err);
/* As png_reader_read_row, without a copy where the reader holds the row as RGB already:
 * returns the row, either inside the reader (valid until its next read) or rgb, or NULL
 * on error. rgb must hold 3 * width + 1 bytes; either way one byte after the row's end
 * can be read (what it holds is unspecified). */
const uint8_t *png_reader_next_row(png_reader *r, uint8_t *rgb, avps_error *err);
void png_reader_free(png_reader *r);

/* Writes an 8-bit RGB PNG atomically. */
int png_write_rgb(const char *path, uint32_t width, uint32_t height, const uint8_t *rgb,
                  avps_error *err);
/* Writes segment ids (width x height, row-major) as a COCO panoptic PNG, atomically. */
int png_write_ids(const char *path, uint32_t width, uint32_t height, const uint32_t *ids, avps_error *err);
/* Writes an 8-bit grey PNG atomically (semantic label maps: value = category id). */
int png_write_gray(const char *path, uint32_t width, uint32_t height, const uint8_t *gray, avps_error *err);

/* A label-map PNG read as its values (data/png_io.c): grey at any depth as its values
 * (16-bit ones whole, as cv2.imwrite writes a uint16 map), palette images as their
 * indexes (tRNS ignored), grey-alpha as the grey; RGB(A) only where R = G = B. A header
 * other than want_w x want_h (when not 0) is refused, naming the file. */
typedef struct png_label_reader png_label_reader;
png_label_reader *png_label_open(const char *path, uint32_t want_w, uint32_t want_h, avps_error *err);
uint32_t png_label_width(const png_label_reader *r);
uint32_t png_label_height(const png_label_reader *r);
/* The file's colour type as PNG numbers it (0 grey, 2 RGB, 3 palette, 4 grey-alpha, 6 RGBA)
 * and its bits per sample. */
int png_label_color_type(const png_label_reader *r);
unsigned png_label_depth(const png_label_reader *r);
/* Decodes the next row's values into row (width entries). */
int png_label_read_row(png_label_reader *r, uint16_t *row, avps_error *err);
void png_label_free(png_label_reader *r);

/* ---- instance masks: COCO run-length encoding --------------------------------------
 *
 * As the COCO API keeps them: runs over the pixels in column-major order (x outer, y
 * inner), alternating 0s and 1s and starting with a run of 0s (which may be empty).
 * Everything here works on runs, never on pixels, except encoding and decoding. */

typedef struct {
    uint32_t h, w;
    size_t m;        /* number of runs */
    uint32_t *cnts;  /* owned; NULL when m == 0 */
} rle_mask;

void rle_free(rle_mask *r);  /* frees cnts; r itself is the caller's */
/* mask is h x w, row-major, non-zero = on. */
int rle_encode(const uint8_t *mask, uint32_t h, uint32_t w, rle_mask *out);
/* Writes h x w row-major 0/1 bytes. */
void rle_decode(const rle_mask *r, uint8_t *mask);
/* The compressed "counts" string of the COCO results format: each run from the fourth on
 * as a delta from the run two before, in chunks of 5 data bits plus a continuation bit,
 * each chunk a character from 48. Caller frees. */
char *rle_to_string(const rle_mask *r);
/* Fails (-1) on a malformed string or runs that do not add up to h x w. */
int rle_from_string(const char *s, uint32_t h, uint32_t w, rle_mask *out);
/* The same for the len characters at s (no terminating NUL needed); with json_escaped,
 * s is the string as JSON text, where the two characters \\ stand for one backslash. */
int rle_from_chars(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, rle_mask *out);
/* rle_from_chars's checks without keeping the runs: 0 and the mask's area (rle_area),
 * or -1 where rle_from_chars would fail. */
int rle_chars_area(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, uint64_t *area);
/* Room for the runs of masks decoded one after another, kept and grown, so that a caller
 * decoding many masks allocates once, not per mask. Start it zeroed; rle_scratch_free. */
typedef struct {
    uint32_t *cnts;
    size_t cap;
} rle_scratch;
void rle_scratch_free(rle_scratch *sc);
/* rle_from_chars into *sc: out->cnts points into sc (not rle_free'd; valid until sc is
 * used again or freed). -1 as rle_from_chars fails, or out of memory. */
int rle_from_chars_scratch(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, rle_scratch *sc,
                           rle_mask *out);
/* Uncompressed RLE: the counts as a list, as COCO stores crowds. Checks the sum. */
int rle_from_counts(const uint32_t *counts, size_t m, uint32_t h, uint32_t w, rle_mask *out);
uint64_t rle_area(const rle_mask *r);
/* COCO's toBbox (pycocotools 2.0.11): x, y, w, h of the on pixels; all 0 for fewer than
 * two runs. Empty runs of ones are skipped, as 2.0.11 does. */
void rle_bbox(const rle_mask *r, double bbox[4]);
/* Union (intersect = 0) or intersection (intersect = 1) of n masks of one size; a 0x0
 * mask for n == 0; -1 for masks of different sizes or runs that do not add up. */
int rle_merge(const rle_mask *masks, size_t n, int intersect, rle_mask *out);
/* IoU of a detection and a ground truth; for a crowd ground truth the union is the
 * detection's area. -1 when the sizes differ. */
double rle_iou(const rle_mask *dt, const rle_mask *gt, int gt_iscrowd);
/* rle_iou with each mask's rle_bbox and the detection's rle_area already computed, so a
 * caller pairing many masks measures each one once. */
double rle_iou_boxed(const rle_mask *dt, const double dt_box[4], uint64_t dt_area, const rle_mask *gt,
                     const double gt_box[4], int gt_iscrowd);
/* COCO's polygon rasteriser (frPoly): xy holds k points, scaled by 5, walked along the
 * edges and sampled back, exactly as the COCO API does; points may lie anywhere outside
 * the image, at a cost bounded by the image. -2 for a coordinate that is not finite or
 * whose scaled value reaches 2^29 (edge lengths must fit COCO's int), -1 out of memory. */
int rle_from_polygon(const double *xy, size_t k, uint32_t h, uint32_t w, rle_mask *out);
/* COCO's frBbox: the box x, y, w, h as the 4-point polygon. */
int rle_from_bbox(const double bbox[4], uint32_t h, uint32_t w, rle_mask *out);
/* IoU of boxes x, y, w, h; crowd: union = the detection's box area. */
double bbox_iou(const double dt[4], const double gt[4], int gt_iscrowd);

/* Soft masks of Mask R-CNN heads pasted into the image: how the box maps to pixels
 * differs between code bases, so the convention is a parameter (see data/mask_paste.c). */
typedef enum {
    PASTE_TORCHVISION, /* torchvision paste_masks_in_image (also Detectron1 / UPSNet): mask padded by one
                          zero cell, box scaled by (M + 2) / M, truncated, +1 size, bilinear resize */
    PASTE_DETECTRON2,  /* detectron2 paste_masks_in_image: grid_sample at pixel centres of the unrounded
                          box, zero outside the mask */
    PASTE_MMDET_V1,    /* mmdetection v1 get_seg_masks: box truncated, +1 size (x2 - x1 + 1), bilinear
                          resize of the unpadded mask */
} paste_convention;

/* Pastes an mh x mw probability mask for box (x1, y1, x2, y2) into an h x w image of
 * probabilities (row-major): writes the box's rectangle, clipped to the image, and leaves
 * every other pixel untouched (the caller zeroes them). Returns 0, or -1 for NULL
 * pointers, an empty mask, an unknown convention or a non-finite or |c| > 1e8 coordinate. */
int mask_paste(const float *mask, uint32_t mh, uint32_t mw, const double box[4], paste_convention conv,
               uint32_t h, uint32_t w, float *out);

/* ---- COCO instances and results JSON ------------------------------------------------ */

typedef enum { IOU_SEGM, IOU_BBOX } iou_type;

typedef struct {
    int64_t id;          /* ground truth: the JSON id; results: index + 1, as loadRes numbers them */
    int64_t image_id;
    int32_t category_id;
    int iscrowd;
    double area;         /* ground truth: the JSON area; results: as loadRes computes it */
    double bbox[4];
    double score;        /* results only */
    rle_mask rle;        /* segm only: the mask at the image's size */
    int mask_from_box;   /* results, segm: no "segmentation", the box made the mask (loadRes) */
    /* results read by inst_results_load_threads, segm: the mask still compressed, its
     * counts string in the dataset's text (rle has h and w, no runs); see
     * inst_annotation_mask. NULL otherwise. */
    const char *counts;
    uint32_t counts_len;
    int counts_escaped;  /* the string holds JSON escapes (\\ for a backslash) */
} inst_annotation;

typedef struct {
    int64_t id;
    uint32_t width, height;
} inst_image;

typedef struct {
    char *path;
    size_t n_images;
    inst_image *images;          /* sorted by id, as COCOeval takes them */
    size_t n_categories;
    int32_t *category_ids;       /* sorted */
    char **category_names;       /* by index into category_ids; NULL entries where none */
    size_t n_annotations;
    inst_annotation *annotations; /* in file order, only those kept */
    char *text;                   /* results with compressed masks: the file's text */
} inst_dataset;

/* Which images this process needs, by index into the sorted images: annotations of
 * other images are skipped at load. NULL keeps all. */
typedef int (*inst_keep_fn)(void *ctx, size_t image_index);

/* Ground truth: images, categories, annotations (polygons, uncompressed or compressed
 * RLE; a first polygon of exactly four numbers makes them boxes, as in the COCO API). */
inst_dataset *inst_gt_load(const char *path, iou_type type, inst_keep_fn keep, void *ctx, avps_error *err);
/* The same on up to `threads` threads: the same annotations, masks, order and error
 * messages. Both read the annotations one object at a time (no tree of the whole file:
 * peak memory about the file's size plus the annotations read). */
inst_dataset *inst_gt_load_threads(const char *path, iou_type type, inst_keep_fn keep, void *ctx, int threads,
                                   avps_error *err);
/* The same, read as one cJSON tree of the whole file (about 14x its size): the reader the
 * two above hand every file with an error to, so that their messages are its messages;
 * public for the fuzz harness, which checks that they agree with it on every input. */
inst_dataset *inst_gt_load_tree(const char *path, iou_type type, inst_keep_fn keep, void *ctx, int threads,
                                avps_error *err);
/* Results: a JSON list of image_id, category_id, score, segmentation (compressed RLE) and
 * optional bbox, numbered and measured as pycocotools' loadRes does; an image unknown to
 * gt is an error. Parsed one element at a time, on one thread. */
inst_dataset *inst_results_load(const char *path, const inst_dataset *gt, iou_type type, inst_keep_fn keep,
                                void *ctx, avps_error *err);
/* The same on up to `threads` threads (keep must then be safe to call from them): the
 * same annotations, order and error messages, but segm masks given as compressed RLE
 * strings are checked and measured, then kept compressed (annotation->counts, in the
 * file's text, which the dataset keeps): memory is about the file's size, not every
 * mask's runs. Read them with inst_annotation_mask. */
inst_dataset *inst_results_load_threads(const char *path, const inst_dataset *gt, iou_type type,
                                        inst_keep_fn keep, void *ctx, int threads, avps_error *err);
/* Masks for the combiners: a results list of image_id, category_id and segmentation
 * (compressed or uncompressed RLE, or polygons), with a "score" when need_score (else 0
 * where absent). A category unknown to gt is an error; bbox is ignored; area is the
 * mask's pixel count. */
inst_dataset *inst_masks_load(const char *path, const inst_dataset *gt, int need_score, inst_keep_fn keep,
                              void *ctx, avps_error *err);
/* The images and categories of a panoptic dataset as an instances dataset without
 * annotations, to read results against; image ids must be integers, as in results. */
inst_dataset *inst_frame_from_pan(const pan_dataset *pan, avps_error *err);
void inst_dataset_free(inst_dataset *ds);
/* The annotation's mask: &a->rle, or, for a mask kept compressed, *view with the runs
 * decoded into *sc (see rle_from_chars_scratch). NULL when out of memory. */
const rle_mask *inst_annotation_mask(const inst_annotation *a, rle_scratch *sc, rle_mask *view);
/* Index of the image in ds->images, or -1. */
long inst_image_index(const inst_dataset *ds, int64_t image_id);
long inst_category_index(const inst_dataset *ds, int32_t category_id);

/* ---- panoptic ground truth as instances ---------------------------------------------- */

/* Reads the panoptic PNG of ann and gives, for each of its segments whose category is a
 * thing, its mask as RLE (masks[i] for ann->segments[i]; stuff segments get m = 0).
 * *h and *w receive the image size. */
int pan_thing_masks(const pan_dataset *ds, const pan_annotation *ann, const char *png_path, rle_mask *masks,
                    uint32_t *h, uint32_t *w, avps_error *err);

/* ---- category maps: a network's class indexes to dataset ids (data/category_map.c) ---
 * spec: a preset name (coco80, coco133, detectron2-coco, detectron2-coco-panoptic,
 * detectron2-panoptic-fpn-stuff, mmdet-coco, mmdet-coco-panoptic), a JSON object
 * {"index": id or null} or list [id, ...] given inline, or a file holding one of them
 * (or a preset name as a JSON string). null maps an index to no category. */
#define CATEGORY_MAP_ABSENT (-1) /* an index the map does not name */
#define CATEGORY_MAP_NONE 0      /* an index mapped to null: no category */
#define CATEGORY_MAP_MAX_INDEX 65535
typedef struct {
    char *name;   /* the preset or file, for messages */
    size_t n;
    int32_t *to;  /* n entries: a category id, CATEGORY_MAP_NONE or CATEGORY_MAP_ABSENT */
} category_map;
int category_map_load(const char *spec, category_map *m, avps_error *err);
/* The dataset id of index, CATEGORY_MAP_NONE, or CATEGORY_MAP_ABSENT outside the map. */
int32_t category_map_get(const category_map *m, int64_t index);
void category_map_release(category_map *m);

/* ---- NumPy arrays: .npy, and .npy.zst (the same bytes as one or more zstd frames) -----
 *
 * Dense head outputs of the prediction store, COCOeval's arrays (float64, 5 axes).
 * Little-endian, C order, at most NPY_MAX_DIMS axes. */

typedef enum { NPY_F16, NPY_F32, NPY_U8, NPY_U16, NPY_I32, NPY_F64 } npy_dtype; /* '<f2' '<f4' '|u1' '<u2' '<i4' '<f8' */
#define NPY_DTYPE_COUNT 6
#define NPY_MAX_DIMS 5 /* COCOeval's precision is T x R x K x A x M */
#define NPY_DTYPE_BIT(d) (1u << (d)) /* for npy_expect.dtypes */

typedef struct {
    npy_dtype dtype;
    int ndim;                    /* 0 (a scalar) to NPY_MAX_DIMS */
    size_t shape[NPY_MAX_DIMS];  /* entries past ndim are 0 */
    void *data;                  /* owned; NULL when nbytes == 0 */
    size_t nbytes;               /* product(shape) * item size */
} npy_array;

/* What a reader requires; every field 0 means "any" (so a scalar cannot be required). */
typedef struct {
    unsigned dtypes;             /* NPY_DTYPE_BIT(NPY_F16) | NPY_DTYPE_BIT(NPY_F32) ... */
    int ndim;
    size_t shape[NPY_MAX_DIMS];
} npy_expect;

size_t npy_dtype_size(npy_dtype d);
const char *npy_dtype_descr(npy_dtype d); /* as numpy writes it: "<f2" ... */
/* Zeroed data for the shape; fails on overflow or no memory. */
int npy_array_alloc(npy_array *a, npy_dtype dtype, int ndim, const size_t *shape, avps_error *err);
void npy_array_release(npy_array *a); /* frees data; a itself is the caller's */
/* Reads a .npy (path ends in ".npy") or anything else as zstd-compressed .npy. Any
 * zstd stream: several frames, with or without content size. expect may be NULL. */
int npy_read(const char *path, const npy_expect *expect, npy_array *out, avps_error *err);
/* Writes atomically, with the version 1.0 header numpy writes (byte for byte); plain when
 * path ends in ".npy", else zstd at `level` (0 = 3) with a checksum. */
int npy_write(const char *path, const npy_array *a, int level, avps_error *err);
/* Writes arrays[i] as member names[i].npy of a .npz archive, as np.savez (stored, not
 * compressed), atomically; refuses what would need zip64 before writing anything. */
int npz_write(const char *path, const char *const *names, const npy_array *arrays, size_t n, avps_error *err);

/* IEEE binary16: exact one way, round to nearest even the other, as numpy's astype. */
float float_from_half(uint16_t h);
uint16_t half_from_float(float f);

/* ---- the synthetic world ---------------------------------------------------------- */

/* A synthetic COCO-like panoptic world, made to exercise and measure the system; it is
 * not real data. The same (seed, image id) gives the same ground truth and the same
 * perturbed prediction on any rank. */

/* The 133 COCO panoptic categories (80 things, then 53 stuff) with their COCO ids, names
 * and supercategories, and how the world draws them. */
typedef struct {
    int32_t id;
    int isthing;
    const char *name, *supercategory;
    unsigned frequency; /* relative weight among its kind (things or stuff), roughly COCO's */
    int size;           /* things: -1 typically small, 0 medium, 1 large; stuff: 0 */
} synth_category_info;

#define SYNTH_CATEGORY_COUNT 133 /* 80 things, then 53 stuff */
size_t synth_category_count(void);
/* NULL past the end. */
const synth_category_info *synth_category_at(size_t index);
/* Index of the category with COCO id `id`, or -1. */
int synth_category_index(int32_t id);
/* The id, isthing and name (copied into name) of category `index`. */
int32_t synth_category(size_t index, int *isthing, char *name, size_t name_len);

/* The two splits have disjoint image ids: evaluation images 1..N, held-out images
 * SYNTH_HELDOUT_FIRST_ID + k; both splits hold at most SYNTH_MAX_IMAGES images. */
#define SYNTH_MAX_IMAGES 100000000ull
#define SYNTH_HELDOUT_FIRST_ID (SYNTH_MAX_IMAGES + 1)
typedef enum { SYNTH_VAL, SYNTH_HELDOUT } synth_split;
/* The image id of the k-th image (from 0) of a split. */
uint64_t synth_image_id(synth_split split, uint64_t k);

typedef struct {
    uint64_t seed;
    uint32_t width, height;
    int with_pred; /* also render the perturbed prediction */
} synth_params;

/* Renders the image with id `image_id`: ids (width*height) for the ground truth and,
 * with with_pred, for a perturbed prediction (else pred_ids is NULL and n_pred 0), with
 * their segments (area and bbox from the pixels). Release with synth_image_release. */
typedef struct {
    uint32_t *gt_ids, *pred_ids;
    pan_segment *gt_segments, *pred_segments;
    size_t n_gt, n_pred;
} synth_image;
int synth_image_render(const synth_params *p, uint64_t image_id, synth_image *out, avps_error *err);
void synth_image_release(synth_image *img);

#endif
