/* model: heads, the network ends of AntVisionPS. A head turns one image into a semantic
 * segmentation (SS) and an instance segmentation (IS); ensembles, fusion and evaluation
 * consume exactly that and nothing else.
 *
 * Contract:
 * - A head is made from a head_config (backend by name: "sim", "replay") and the
 *   dataset's categories; head_run fills a head_output for one image. The output holds
 *   that image only; the caller releases it before asking for the next one.
 * - SS stays at the head's native resolution, in fp16 (probabilities or logits) or as a
 *   label map, with the exact geometry back to the image; consumers upsample where they
 *   combine, a row at a time (ss_sampler).
 * - Channels and instances carry dataset category ids: a head's own categories are
 *   mapped at head_new, and a head category with no mapping is an error there.
 * - The same (seed, head name, image) gives the same output on any rank or thread.
 */
#ifndef AVPS_MODEL_H
#define AVPS_MODEL_H

#include "../data/data.h"

/* ---- semantic segmentation ---------------------------------------------------------- */

typedef enum {
    SS_PROBS,  /* fp16 class probabilities, summing to about 1 over the channels */
    SS_LOGITS, /* fp16 logits; consumers apply a softmax over the channels */
    SS_LABELS  /* a label map: the argmax only, as UPSNet's test gives */
} ss_kind;

#define SS_LABEL_NONE 0xFFFFu /* a label-map pixel with no class */

/* Where the grid lies on the image, as torch's interpolate(align_corners=False) sees it:
 * grid column u and image column x are related by u + 0.5 = (x + 0.5) * scale_x + offset_x
 * (rows alike). A network that resizes by s, pads at the bottom and right and outputs at
 * stride r has scale = s / r and offset 0. Only the first valid_w columns and valid_h
 * rows cover the image; the rest is padding and is never sampled. */
typedef struct {
    double scale_x, scale_y;
    double offset_x, offset_y;
    uint32_t valid_w, valid_h;
} ss_geometry;

typedef struct {
    ss_kind kind;
    uint32_t channels, h, w;     /* the grid, padding included */
    int32_t *channel_category;   /* channels entries: the dataset category of each channel */
    uint16_t *scores;            /* PROBS / LOGITS: channels x h x w, channel-major, fp16 */
    uint16_t *labels;            /* LABELS: h x w channel indexes or SS_LABEL_NONE */
    ss_geometry geo;
} ss_map;

const char *ss_kind_name(ss_kind k); /* "probs", "logits", "labels" */

/* The geometry of a grid of size (gw, gh) stretched over a (w, h) image. */
ss_geometry ss_geometry_stretch(uint32_t gw, uint32_t gh, uint32_t w, uint32_t h);

/* Upsamples an SS to image rows: probabilities of row y, channels x width, channel-major,
 * bilinear as torch's interpolate(align_corners=False). Logits pass through a softmax
 * at the grid's own resolution, before upsampling; a label map gives one-hot rows,
 * nearest rather than bilinear. One sampler per image and thread. */
typedef struct ss_sampler ss_sampler;
ss_sampler *ss_sampler_new(const ss_map *ss, uint32_t width, avps_error *err);
void ss_sampler_row(ss_sampler *s, uint32_t y, float *out);
void ss_sampler_free(ss_sampler *s);

/* For exact argmaxes that read only the channels that can win (fusion's, per pixel).
 * PROBS and LOGITS only. ss_sampler_at_row selects image row y and gives bounds: every
 * value of channel c at a pixel x of the row lies within [lo, hi][c * cells + u] of its
 * grid cell u = ss_sampler_cell(s, x) (the min and max of the cell's four corners) up to
 * rounding, a few float ulps of the cell's largest finite corner; a cell with a
 * non-finite corner gets [-inf, inf]. Bounds are made once per pair of grid rows: it
 * returns 1 when they changed since the last call, 0 when not, -1 with err when out of
 * memory. ss_sampler_value is then bit for bit what ss_sampler_row gives c at x. */
uint32_t ss_sampler_cells(const ss_sampler *s);
uint32_t ss_sampler_cell(const ss_sampler *s, uint32_t x);
int ss_sampler_at_row(ss_sampler *s, uint32_t y, const float **lo, const float **hi, avps_error *err);
float ss_sampler_value(const ss_sampler *s, uint32_t c, uint32_t x);

/* ---- instance segmentation ------------------------------------------------------------ */

typedef struct {
    int32_t category_id;
    double score;
    double box[4];        /* x1, y1, x2, y2 in image pixels, as Mask R-CNN heads give */
    float *soft;          /* soft_h x soft_w probabilities in the box, or NULL */
    uint32_t soft_h, soft_w;
    paste_convention paste;
    rle_mask mask;        /* the full-image binary mask when soft is NULL */
} is_instance;

/* The instance's binary mask at the image's size (soft masks pasted and cut at 0.5). */
int is_instance_mask(const is_instance *inst, uint32_t h, uint32_t w, rle_mask *out, avps_error *err);
/* The rectangle [x0, y0, x1, y1) a soft mask's paste can write in an h x w image: its box
 * grown by two mask cells and three pixels, which every paste convention stays within. */
void is_instance_paste_rect(const is_instance *inst, uint32_t h, uint32_t w, uint32_t r[4]);

/* ---- one image's output ----------------------------------------------------------------- */

typedef struct {
    uint32_t width, height;
    ss_map ss;
    size_t n_instances;
    is_instance *instances;  /* sorted by score, highest first, ties in a fixed order */
} head_output;

void head_output_release(head_output *out);

/* ---- heads --------------------------------------------------------------------------- */

typedef struct {
    const char *name;     /* the end's name: "r50", "htc_uw_dc", ... (seeds its noise) */
    const char *backend;  /* "sim" or "replay" */
    const char *profile;  /* sim: a built-in profile name or a profile JSON file */
    const char *store;    /* replay: the prediction store's folder */
    uint64_t seed;        /* sim: the world's seed */
} head_config;
/* The native backend (docs/model.md) takes profile = the network's safetensors weights and
 * store = the folder holding the dataset's images (by file_name). */

/* What a head is given for one image: its id and size, and for sim the ground truth
 * (the panoptic annotation and its PNG). gt_ids, when the caller has decoded the PNG
 * once for all its heads (avps run), is that PNG's segment ids, row-major at the image's
 * size; a head then reads it instead of gt_png, which stays the name for messages. */
typedef struct {
    const pan_image *image;
    const pan_annotation *gt;
    const char *gt_png;
    const uint32_t *gt_ids;
} head_input;

typedef struct head head;

head *head_new(const head_config *cfg, const pan_dataset *ds, avps_error *err);
int head_run(head *h, const head_input *in, head_output *out, avps_error *err);
const char *head_name(const head *h);
ss_kind head_ss_kind(const head *h);
/* The number of SS channels; *category gets their dataset categories (the head's own). */
uint32_t head_channels(const head *h, const int32_t **category);
/* 0 for an end that gives no instances at all (a semantic-only replay store), else 1;
 * head_channels() == 0 is an end without a semantic side. */
int head_has_instances(const head *h);
void head_free(head *h);

/* A head whose outputs another module makes (an ensemble of heads, ensemble/): ops->run
 * fills a head_output for one image as a backend does, and must be safe to call from
 * several threads at once on different images; ops->channels gives its SS channels'
 * categories (owned by state). The head takes state in every case: head_free calls
 * ops->free(state), and so does head_new_custom when it fails. */
typedef struct {
    int (*run)(void *state, const head_input *in, head_output *out, avps_error *err);
    uint32_t (*channels)(const void *state, const int32_t **category);
    void (*free)(void *state);
} head_custom_ops;
head *head_new_custom(const char *name, ss_kind kind, const head_custom_ops *ops, void *state, avps_error *err);

/* Built-in sim profiles, by name; NULL after the last. */
const char *sim_profile_builtin_name(size_t i);

/* ---- the native engine: Mask R-CNN ResNet-FPN from safetensors weights ---------------
 * docs/model.md. A run gives instances with soft masks (PASTE_TORCHVISION) whose
 * category_id is the network's class index (torchvision's 91 classes are COCO ids), and
 * no semantic segmentation (an SS of 0 channels). */

typedef struct {
    double score_thresh;     /* < 0: the weights' box_score_thresh (else 0.05) */
    int detections;          /* <= 0: the weights' box_detections_per_img (else 100) */
    const char *device;      /* "cpu" (NULL means cpu) */
    int plain_gemm;          /* the plain C GEMM instead of OpenBLAS's (to measure it) */
    const char *dump_dir;    /* tests: each stage's output as .npy files here */
    const char *proposals;   /* tests: these RPN proposals (.npy, P x 4) instead of the RPN's */
    const char *const *settings; /* "KEY=VALUE": override the weights' metadata (UPSNet) */
    int n_settings;
    const char *semantic;    /* UPSNet: its semantic logits before the final upsampling (.npy) */
} native_options;

/* A network's own panoptic result (UPSNet's panoptic head), beside its instances:
 * segment ids per pixel (0: void), COCO category ids, UPSNet's bbox (no +1). */
typedef struct {
    uint32_t id;
    int32_t category_id;
    int isthing;
    uint32_t area;
    int32_t bbox[4];
} native_pan_segment;

typedef struct {
    uint32_t width, height;     /* 0 when the network has no panoptic output */
    const uint32_t *ids;        /* height x width */
    size_t n_segments;
    const native_pan_segment *segments;
} native_panoptic;

typedef struct native_net native_net;
native_net *native_net_load(const char *weights, const native_options *opt, avps_error *err);
/* Runs on an image file (PNG or JPEG). */
int native_net_run(native_net *n, const char *image_path, head_output *out, avps_error *err);
/* The most memory one image has taken from the network's arena so far, in bytes, and
 * how many blocks the arena has allocated (steady state: none after the first image). */
size_t native_net_peak_bytes(const native_net *n);
/* The last run's panoptic result (valid until the next run) and whether the network's
 * COCO boxes are [x, y, x2 - x1 + 1, y2 - y1 + 1] (UPSNet's results writer). */
void native_net_panoptic(const native_net *n, native_panoptic *out);
int native_net_box_plus_one(const native_net *n);
/* "maskrcnn" or "upsnet" */
const char *native_net_kind(const native_net *n);
size_t native_net_arena_mallocs(const native_net *n);
void native_net_free(native_net *n);

/* ---- the prediction store (replay's input, export's and import's output) -------------
 * See docs/formats.md: DIR/head.json, DIR/ss/<image_id>.npy.zst, DIR/is/<image_id>.json. */

typedef struct store_writer store_writer;
/* Starts a store for a head with these channels (ss kind and categories). Files are
 * written into the staging folder store_staging_path(dir), which store_writer_finish
 * puts in dir's place (dir may be new, an empty folder or a previous store, replaced as
 * a whole). With prepare (one process of a job, the root), checks dir and makes the
 * staging folder (refused if it exists); other processes write once it is made. */
store_writer *store_writer_new(const char *dir, const char *head_name, ss_kind kind, const int32_t *channel_category,
                               uint32_t channels, int prepare, avps_error *err);
/* "DIR.partial". Caller frees. */
char *store_staging_path(const char *dir);
/* Writes one image's outputs atomically. Thread-safe for different images. */
int store_writer_put(store_writer *sw, const char *image_id, const head_output *out, avps_error *err);
/* A semantic-only end: head.json says it has no instance side ("instances": false), so
 * that fusion takes every thing class from the other end. A store of 0 channels is an
 * instance-only end ("ss_kind": "none", no SS files). */
void store_writer_no_instances(store_writer *sw);
/* Writes head.json (last, so a store without it is incomplete) and puts the store in
 * place. Only once every image is written (on the root, after the job's map). */
int store_writer_finish(store_writer *sw, avps_error *err);
void store_writer_free(store_writer *sw);

/* Decodes a PNG or JPEG photo (by content) to 8-bit RGB, h x w x 3, as the native
 * engine reads its input; caller frees *rgb. For pictures of results (avps show). */
int model_image_read(const char *path, uint8_t **rgb, uint32_t *w, uint32_t *h, avps_error *err);

#endif
