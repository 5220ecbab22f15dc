/* upsnet.h: UPSNet (uber-research/UPSNet, ResNet-50/101 FPN, optional DCN v1) as one
 * network of the engine: its layers and settings, and the internal API its parts share.
 * load.c reads the weights and settings, trunk.c the preprocessing, the Caffe-style
 * ResNet and the FPN, semantic.c the semantic head, heads.h (rpn.c, rcnn.c,
 * panoptic.c) the instance and panoptic heads; forward.c runs them in data-flow order.
 * The conventions, with line references into UPSNet, are in docs/model.md and in
 * shared/reference/upsnet/README.md. Internal to model/. */
#ifndef AVPS_NN_UPSNET_H
#define AVPS_NN_UPSNET_H

#include "../../nn.h"

typedef struct upsnet upsnet;

/* the kind nets/nets.c lists */
extern const nn_net_kind upsnet_kind;

#define UPS_STAGES 4        /* res2..res5 */
#define UPS_LEVELS 5        /* fpn_p2..fpn_p6 */
#define UPS_SEM_MAX_LAYERS 8

/* A Caffe-style bottleneck: the stride on conv1 (1x1), conv2 a 3x3 (deformable, with
 * its own offset convolution, when dcn), conv3 a 1x1, a projection shortcut when
 * has_down. Frozen batch norm is folded into each convolution. */
typedef struct {
    nn_conv conv1, offset, conv2, conv3, down;
    int dcn, has_down;
} ups_block;

/* wall seconds of the last image's stages, printed with --set timings=1 (measuring) */
enum { UPS_T_PRE, UPS_T_BACKBONE, UPS_T_BACKBONE_DCN, UPS_T_FPN, UPS_T_SEMANTIC, UPS_T_SEMANTIC_DCN, UPS_T_HEADS,
       UPS_T_COUNT };
double ups_now(void);

struct ups_heads; /* heads.h: RPN, box and mask heads, panoptic head (their weights) */

struct upsnet {
    const nn_backend *be;
    nn_arena arena;
    void **owned; /* weight buffers, freed with the network */
    size_t n_owned, cap_owned;

    /* trunk */
    nn_conv stem;
    ups_block *blocks;
    int n_blocks, stage_end[UPS_STAGES]; /* stage i's blocks end before stage_end[i] */
    int n_dcn_blocks;
    nn_conv fpn_lateral[UPS_STAGES], fpn_out[UPS_STAGES];
    nn_fc fpn_gap;
    int with_gap;
    /* semantic head: a shared subnet of deformable layers, then a 1x1 classifier */
    nn_conv sem_offset[UPS_SEM_MAX_LAYERS], sem_conv[UPS_SEM_MAX_LAYERS];
    int sem_layers;
    nn_conv sem_score;
    int num_seg_classes;

    struct ups_heads *heads;
    int32_t *seg_category;  /* num_seg_classes COCO ids */
    int32_t *det_category;  /* heads->num_classes COCO ids (0: background) */
    int num_stuff;          /* semantic classes [0, num_stuff) are stuff */
    float *proposals;       /* tests: these proposals instead of the RPN's */
    int n_proposals;

    /* settings: the weights' __metadata__, then --set, over UPSNet's COCO defaults */
    double min_size, max_size, mean_bgr[3];
    int pad_to;

    char *dump_dir; /* tests: every stage under the answer keys' names */
    char *semantic_path; /* --semantic: sem_logits as .npy */
    int timings;
    double t[UPS_T_COUNT];
    char **set_keys, **set_values; /* --set KEY=VALUE */
    unsigned char *set_used;
    int n_set;
};

/* One image through the network: everything lives in the network's arena. */
typedef struct {
    uint32_t orig_w, orig_h;  /* the image as read */
    int img_w, img_h;         /* resized, unpadded */
    double im_scale;          /* what the resize used (double, as UPSNet's Python) */
    float im_scale_f32;       /* im_info's float32 copy (box scaling, post-processing) */
    nn_tensor input;          /* 1 x 3 x H x W, BGR, mean-subtracted, padded */
    nn_tensor res[UPS_STAGES];
    nn_tensor fpn[UPS_LEVELS];
    nn_tensor sem_logits;     /* 1 x classes x H/4 x W/4, before the final upsampling */
    nn_tensor sem_up;         /* 1 x classes x H x W (the padded input's size) */
    uint8_t *sem_labels;      /* H x W argmax of sem_up, first index on ties */
} ups_image;

/* ---- load.c: weights and settings (shared with the heads' loaders) ---------------- */

float *ups_owned_floats(upsnet *u, size_t n, avps_error *err);
/* A convolution `prefix`.weight (4-D), its frozen batch norm `bn` folded in, or its
 * `prefix`.bias when has_bias (else zero bias); in channels must be `in`; padding k/2. */
int ups_load_conv(upsnet *u, const st_file *st, const char *prefix, const char *bn, int has_bias, int in, int stride,
                  nn_conv *cv, avps_error *err);
/* A linear layer `prefix`.weight (out x in), `prefix`.bias. */
int ups_load_fc(upsnet *u, const st_file *st, const char *prefix, int in, nn_fc *fc, avps_error *err);
/* A setting by name: --set KEY=VALUE first, then the weights' __metadata__; NULL when
 * neither has it. Every --set key must be asked for by some loader (see upsnet_load). */
const char *ups_setting(upsnet *u, const st_file *st, const char *key);
/* The setting as n numbers ("800", "102.98,115.95,122.77"); untouched when absent. */
int ups_setting_numbers(upsnet *u, const st_file *st, const char *key, double *out, int n, avps_error *err);

/* ---- trunk.c -------------------------------------------------------------------------- */

/* cv2.resize(INTER_LINEAR) of one float plane, sw x sh to dw x dh, with cv2's
 * inv_scale_x/y (fx, fy; dw / sw when cv2 is given a size): source position
 * (x + 0.5) / fx - 0.5 in float, clamped at the borders as cv2 does. Scratch from a. */
int ups_cv_resize_linear(nn_arena *a, const float *src, int sw, int sh, float *dst, int dw, int dh, double fx,
                         double fy, avps_error *err);
/* cv2.resize(INTER_NEAREST) index: floor(x / fx) in double, at most in - 1. */
int ups_cv_nearest_index(int x, double fx, int in);

int ups_preprocess(upsnet *u, const uint8_t *rgb, uint32_t w, uint32_t h, ups_image *im, avps_error *err);
int ups_backbone(upsnet *u, ups_image *im, avps_error *err);
int ups_fpn(upsnet *u, ups_image *im, avps_error *err);

/* ---- semantic.c ------------------------------------------------------------------------ */

/* sem_logits, then sem_up (the x4 upsampling) and sem_labels. */
int ups_semantic(upsnet *u, ups_image *im, avps_error *err);

/* ---- forward.c: dumping stages (tests) ------------------------------------------------ */

/* DIR/name.npy when the network has a dump folder; 0 otherwise. */
int ups_dump(const upsnet *u, const char *name, npy_dtype dtype, int ndim, const size_t *shape, const void *data,
             avps_error *err);
int ups_dump_tensor(const upsnet *u, const char *name, const nn_tensor *t, avps_error *err);

upsnet *upsnet_load(const st_file *st, const native_options *opt, avps_error *err);
int upsnet_run(upsnet *u, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err);
void upsnet_free(upsnet *u);

#endif
