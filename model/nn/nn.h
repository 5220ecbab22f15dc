/* nn.h: the native inference engine, internal to model/ (other modules see only the
 * native_net part of model.h). Four parts:
 * - tensors: float32 NCHW, tagged with the device their data lives on, carved from an
 *   arena that is reset per image, so that steady-state inference allocates nothing;
 * - a backend: a table of operators; the CPU one is in cpu/, a GPU one slots in
 *   beside it with the same table, and the networks call only the table;
 * - safetensors weights, memory-mapped and checked (core/safetensors.c);
 * - networks behind one interface (nn_net), each in its folder under nets/: Mask R-CNN
 *   ResNet-FPN with torchvision 0.14's semantics (nets/maskrcnn/).
 * Files: core/ (arena, tensors, boxes, safetensors, images), cpu/ (the CPU backend),
 * nets/ (the networks). docs/model.md describes it all. */
#ifndef AVPS_NN_H
#define AVPS_NN_H

#include "../model.h"

#include <stddef.h>
#include <stdint.h>

/* ---- arena ------------------------------------------------------------------------ */

/* Chunks of memory handed out in order (a bump pointer moving through the chunks);
 * reset makes them all free again but keeps them, so the second image of a size
 * allocates nothing. A mark remembers the bump pointer; rewinding to it frees everything
 * allocated since, which is how the network drops a block's temporaries. */
typedef struct nn_chunk nn_chunk;
typedef struct {
    nn_chunk *chunks, *current;
    size_t peak;  /* bytes in use at most since creation (for the docs' figures) */
    size_t used;
    size_t mallocs; /* chunks allocated since creation: flat from the second image on */
} nn_arena;

typedef struct {
    nn_chunk *chunk;
    size_t chunk_used, used;
} nn_arena_mark;

void nn_arena_init(nn_arena *a);
/* 64-byte aligned, uninitialised; NULL (with err) when out of memory. */
void *nn_arena_alloc(nn_arena *a, size_t bytes, avps_error *err);
void nn_arena_reset(nn_arena *a);
nn_arena_mark nn_arena_get_mark(const nn_arena *a);
void nn_arena_rewind(nn_arena *a, nn_arena_mark m);
void nn_arena_release(nn_arena *a);

/* ---- tensors ------------------------------------------------------------------------- */

typedef enum { NN_DEVICE_CPU } nn_device;

typedef struct {
    float *data;
    int n, c, h, w;
    nn_device device;
} nn_tensor;

static inline size_t nn_numel(const nn_tensor *t) { return (size_t)t->n * t->c * t->h * t->w; }
/* A tensor of this shape from the arena; -1 on overflow or no memory. */
int nn_tensor_new(nn_arena *a, nn_device dev, int n, int c, int h, int w, nn_tensor *t, avps_error *err);
/* Frees everything allocated since mark m except tensor *t, which moves to m (its data
 * may overlap its new place: it is moved, not copied). */
int nn_tensor_keep(nn_arena *a, nn_arena_mark m, nn_tensor *t, avps_error *err);

/* ---- layers: weights in the layout the operators want ----------------------------- */

/* A convolution with frozen batch norm folded in: weight [out][in * kh * kw], bias [out]. */
typedef struct {
    float *weight, *bias;
    int out, in, kh, kw, stride, pad;
} nn_conv;

/* A transposed convolution: weight [out * kh * kw][in] (regrouped at load), bias [out]. */
typedef struct {
    float *weight, *bias;
    int out, in, kh, kw, stride, pad;
} nn_deconv;

/* Fully connected: weight [out][in], bias [out]. */
typedef struct {
    float *weight, *bias;
    int out, in;
} nn_fc;

/* ---- the backend: a table of operators --------------------------------------------
 * Every operator reads and writes tensors on the backend's device; scratch memory comes
 * from the arena. A box is x1, y1, x2, y2 (float), the layout torchvision uses. */

typedef struct {
    int out_h, out_w;
    int sampling_ratio;  /* > 0: that many samples per bin and axis; else adaptive */
    int aligned;         /* torchvision's aligned flag: half-pixel offset, no min size */
    int plus_one;        /* mmdetection v1 (aligned ignored): start x1 * scale, end (x2 + 1) * scale,
                          * no offset, width max(end - start, 0) */
} nn_roi_align_params;

typedef struct nn_backend {
    const char *name;
    nn_device device;
    /* out = act(conv(in) + bias), act = ReLU when relu; out is allocated here. */
    int (*conv2d)(const struct nn_backend *b, nn_arena *a, const nn_conv *cv, const nn_tensor *in, int relu,
                  nn_tensor *out, avps_error *err);
    int (*deconv2d)(const struct nn_backend *b, nn_arena *a, const nn_deconv *dc, const nn_tensor *in, int relu,
                    nn_tensor *out, avps_error *err);
    /* in: rows x fc->in (rows = n, the rest flattened); out: rows x 1 x 1 x fc->out */
    int (*linear)(const struct nn_backend *b, nn_arena *a, const nn_fc *fc, const nn_tensor *in, int relu,
                  nn_tensor *out, avps_error *err);
    void (*relu)(nn_tensor *t);
    void (*add)(nn_tensor *acc, const nn_tensor *x, int relu); /* acc += x, then ReLU when relu */
    int (*max_pool)(nn_arena *a, const nn_tensor *in, int k, int stride, int pad, nn_tensor *out, avps_error *err);
    /* torch's interpolate(mode="nearest") to out's h x w, added into out when accumulate */
    void (*resize_nearest_add)(const nn_tensor *in, nn_tensor *out);
    /* torch's interpolate(mode="bilinear", align_corners=False) to out's h x w */
    void (*resize_bilinear)(const nn_tensor *in, nn_tensor *out);
    void (*softmax_rows)(float *x, int rows, int cols);
    void (*sigmoid)(float *x, size_t n);
    /* RoIAlign of box rois[k] (4 floats, image coordinates) from feats[level[k]], whose
     * spatial scale is scales[level[k]]: out is k x C x out_h x out_w, allocated here. */
    int (*roi_align)(nn_arena *a, const nn_tensor *feats, const float *scales, const float *rois, const int *level,
                     int k, const nn_roi_align_params *p, nn_tensor *out, avps_error *err);
    /* torchvision.ops.deform_conv2d with cv's weights, stride and padding: offset is
     * n x 2 * offset_groups * kh * kw x Ho x Wo, (dy, dx) per tap; mask (v2) is
     * n x offset_groups * kh * kw x Ho x Wo or NULL (v1); then bias and ReLU as conv2d. */
    int (*deform_conv2d)(const struct nn_backend *b, nn_arena *a, const nn_conv *cv, const nn_tensor *in,
                         const nn_tensor *offset, const nn_tensor *mask, int dilation, int offset_groups, int relu,
                         nn_tensor *out, avps_error *err);
    /* torch's interpolate(mode="bilinear", align_corners=True) to out's h x w */
    void (*resize_bilinear_corners)(const nn_tensor *in, nn_tensor *out);
} nn_backend;

/* The CPU backend; use_blas picks OpenBLAS's sgemm over the plain C one. With use_blas
 * it loads OpenBLAS (nn_blas_load) and returns NULL, the reason in err, if it cannot. */
const nn_backend *nn_cpu_backend(int use_blas, avps_error *err);
/* Opens OpenBLAS (dlopen, once per process, thread-safe); 0, or -1 with the reason in
 * err. nn_gemm with use_blas needs it to have succeeded. */
int nn_blas_load(avps_error *err);

/* GEMM, row-major: C[m x n] (leading dimension ldc) = A[m x k] * B (k x n, or n x k
 * when b_trans), leading dimensions of A and B their row lengths unless given. */
void nn_gemm(int use_blas, int m, int n, int k, const float *a, int lda, const float *b, int ldb, int b_trans,
             float *c, int ldc);
/* The CPU backend's deform_conv2d (cpu/deform.c); call it through the table. */
int nn_cpu_deform_conv2d(int use_blas, nn_device dev, nn_arena *a, const nn_conv *cv, const nn_tensor *in,
                         const nn_tensor *offset, const nn_tensor *mask, int dilation, int offset_groups, int relu,
                         nn_tensor *out, avps_error *err);

/* ---- box operators (host side; small data) --------------------------------------- */

/* torchvision's AnchorGenerator cell anchors for one level: ratios outer, sizes inner,
 * each (-w, -h, w, h) / 2 rounded: out[4 * n_ratios * n_sizes]. */
void nn_cell_anchors(const float *sizes, int n_sizes, const float *ratios, int n_ratios, float *out);
/* BoxCoder.decode_single: box = decode(delta, anchor) with weights wx wy ww wh, dw and dh
 * clamped at log(1000 / 16). */
void nn_box_decode(const float anchor[4], const float delta[4], const float weights[4], float out[4]);
void nn_box_clip(float box[4], float w, float h);
/* Greedy NMS (torchvision's nms) over n boxes of one class; order[] are indexes sorted by
 * score, best first; keep[] gets the survivors in that order; returns their count.
 * suppressed is n bytes of scratch. */
int nn_nms(const float *boxes, const int *order, int n, float iou_thresh, unsigned char *suppressed, int *keep);
/* batched_nms: NMS within each class (cls[i]), survivors sorted by score (stable);
 * writes at most max_keep indexes to keep and returns how many. Scratch from the arena. */
int nn_batched_nms(nn_arena *a, const float *boxes, const float *scores, const int *cls, int n, float iou_thresh,
                   int max_keep, int *keep, avps_error *err);
/* The same with pixel widths x2 - x1 + plus_one in the areas and the intersection
 * (plus_one 1: mmdetection v1's nms kernel; 0: the two above). */
int nn_nms_px(const float *boxes, const int *order, int n, float iou_thresh, float plus_one, unsigned char *suppressed,
              int *keep);
int nn_batched_nms_px(nn_arena *a, const float *boxes, const float *scores, const int *cls, int n, float iou_thresh,
                      float plus_one, int max_keep, int *keep, avps_error *err);
/* mmdetection's AnchorGenerator base anchors of one level (base size = stride), ratio r
 * outer and scale s inner, w = stride / sqrt(r) * s, h = stride * sqrt(r) * s: plus_one 0
 * (3.x: centre 0, corners -+ w / 2, unrounded) or 1 (v1: centre (stride - 1) / 2, corners
 * centre -+ (w - 1) / 2, rounded half to even as torch.round does); out: 4 per anchor. */
void nn_mmdet_base_anchors(float stride, const float *scales, int n_scales, const float *ratios, int n_ratios,
                           float plus_one, float *out);
/* mmdetection's delta2bbox, plus_one 0 (3.x: size x2 - x1, corners gx -+ gw / 2, clipped
 * to [0, img_w] x [0, img_h]) or 1 (v1: size x2 - x1 + 1, corners gx - gw / 2 + 0.5 and
 * gx + gw / 2 - 0.5, clipped to [0, img_w - 1] x [0, img_h - 1]); deltas * stds + means,
 * log sizes clamped at |log(wh_ratio_clip)|. */
void nn_mmdet_decode(const float prior[4], const float delta[4], const float means[4], const float stds[4],
                     float wh_ratio_clip, float img_w, float img_h, float plus_one, float out[4]);
/* SingleRoIExtractor.map_roi_levels: floor(log2(sqrt(w * h) / finest_scale + 1e-6)) in
 * [0, levels - 1], w = x2 - x1 + plus_one (v1: 1), h likewise; NaN goes to level 0. */
int nn_mmdet_roi_level(const float box[4], int finest_scale, int levels, float plus_one);
/* Indexes of the min(k, n) largest of x[0..n) (ties: lower index first), sorted
 * descending. Scratch from the arena. */
int nn_top_k(nn_arena *a, const float *x, int n, int k, int *idx, avps_error *err);

/* ---- safetensors -------------------------------------------------------------------- */

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t begin, end; /* byte offsets into the data section */
    int used;
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_len;
    const unsigned char *data; /* the data section */
    size_t data_len;
    size_t n_tensors;
    st_tensor *tensors;        /* sorted by name */
    size_t n_meta;
    char **meta_keys, **meta_values;
} st_file;

st_file *st_open(const char *path, avps_error *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);
/* Copies a tensor as float32 into dst (numel floats), converting F16/BF16/F64; fails
 * naming file and tensor for other dtypes or when its shape is not `shape` (ndim dims). */
int st_read_f32(const st_file *f, const char *name, int ndim, const int64_t *shape, float *dst, avps_error *err);

/* ---- images ------------------------------------------------------------------------ */

/* Decodes a PNG or JPEG (by content) to 8-bit RGB, h x w x 3; caller frees *rgb. */
int nn_image_read(const char *path, uint8_t **rgb, uint32_t *w, uint32_t *h, avps_error *err);

/* OpenCV's resize(INTER_LINEAR) of an 8-bit sw x sh image of cn interleaved channels to
 * dw x dh, to the byte (mmdetection's test pipeline resizes so); scratch from the arena. */
int nn_resize_u8_linear(nn_arena *a, const uint8_t *src, int sw, int sh, int cn, uint8_t *dst, int dw, int dh,
                        avps_error *err);

/* ---- networks ------------------------------------------------------------------------
 * Every network of the engine (nets/<name>/) is a kind: it recognises its weights by the
 * tensors' names, loads from the open file, and runs on one RGB image. nets/nets.c holds
 * the table of kinds; the native head sees only nn_net_*. */

/* What one image gives, whichever network: detections in image pixels, best first, each
 * with a mask_size x mask_size probability mask of its class, to be pasted by `paste`.
 * Labels are the network's class index (COCO ids for torchvision's 91 classes). The
 * arrays live in the network's arena and stay valid until its next run. */
typedef struct {
    int n;
    float *boxes;  /* n x 4 */
    float *scores;
    int *labels;
    float *masks;  /* n x mask_size x mask_size */
    int mask_size;
    paste_convention paste;
    int box_plus_one;          /* COCO boxes x2 - x1 + 1 wide (UPSNet) */
    /* semantic logits (UPSNet, HTC): ss_c x ss_h x ss_w on the padded grid, whose column u
     * covers image column x by u + 0.5 = (x + 0.5) * ss_scale_x (the resize by the scale,
     * then the stride; rows by ss_scale_y); the first ss_valid_w x ss_valid_h cover the
     * image. ss_c 0: none */
    const float *ss_logits;
    int ss_c, ss_h, ss_w, ss_valid_w, ss_valid_h;
    double ss_scale_x, ss_scale_y;
    native_panoptic panoptic;  /* the network's own panoptic result, or width 0 */
} nn_result;

typedef struct {
    const char *name;                      /* "maskrcnn": what `avps infer` reports */
    int (*recognises)(const st_file *st);  /* by the tensors' names; no errors */
    void *(*load)(const st_file *st, const native_options *opt, avps_error *err);
    int (*run)(void *net, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err);
    void (*free)(void *net);
    const nn_arena *(*arena)(const void *net);
    /* the semantic classes' categories (COCO ids), or 0 when it has no semantic branch;
     * NULL: none */
    int (*semantic)(const void *net, const int32_t **category);
} nn_net_kind;

typedef struct nn_net nn_net;

/* Opens the weights, finds the kind that recognises them (or fails naming the file and
 * the kinds it tried) and loads it. */
nn_net *nn_net_load(const char *weights, const native_options *opt, avps_error *err);
int nn_net_run(nn_net *net, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err);
const char *nn_net_kind_name(const nn_net *net);
size_t nn_net_arena_peak(const nn_net *net);
/* The network's semantic classes (their categories in *category), 0 when none. */
int nn_net_semantic_classes(const nn_net *net, const int32_t **category);
size_t nn_net_arena_mallocs(const nn_net *net);
void nn_net_free(nn_net *net);

#endif
