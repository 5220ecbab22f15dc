/* heads.h: UPSNet's instance and panoptic heads on the FPN levels P2..P6: the RPN and
 * its proposals (rpn.c), the box head, its detections and the mask head (rcnn.c), and
 * the parameter-free panoptic head with UPSNet's post-processing (panoptic.c); their
 * weights and settings (heads_load.c). The conventions (py-faster-rcnn's +1 boxes,
 * Detectron's RoIAlign, cv2's resizes), with line references into uber-research/UPSNet,
 * are in shared/reference/upsnet/README.md and docs/model.md. Everything a head returns
 * lives in the arena it was given. Internal to model/. */
#ifndef AVPS_NN_UPSNET_HEADS_H
#define AVPS_NN_UPSNET_HEADS_H

#include "../../nn.h"

#define UPS_FPN_LEVELS 5     /* P2..P6, strides 4..64 */
#define UPS_ROI_LEVELS 4     /* RoIAlign reads P2..P5 */
#define UPS_MAX_RATIOS 8
#define UPS_MASK_CONVS 4

/* ---- settings -------------------------------------------------------------------------- */

/* UPSNet's test settings (config.py and the COCO yaml files); the names in comments are
 * the metadata keys that override them (ups_head_settings_read). */
typedef struct {
    int rpn_pre_nms;         /* rpn_pre_nms_top_n: per level, before NMS (1000) */
    int rpn_post_nms;        /* rpn_post_nms_top_n: per level after NMS, and over all levels (1000) */
    float rpn_nms;           /* rpn_nms_thresh (0.7) */
    float rpn_min_size;      /* rpn_min_size, in original-image pixels (0) */
    float anchor_scale;      /* anchor_scales: anchor size = scale x stride (8) */
    float ratios[UPS_MAX_RATIOS]; /* anchor_ratios, h / w (0.5, 1, 2) */
    int n_ratios;
    float bbox_weights[4];   /* bbox_reg_weights (10, 10, 5, 5) */
    float score_thresh;      /* score_thresh: a detection needs score > this (0.05) */
    float nms_thresh;        /* nms_thresh: per class (0.5) */
    int max_det;             /* max_det: over all classes (100) */
    float pan_score_thresh;  /* panoptic_score_thresh (0.6) */
    float pan_nms_thresh;    /* panoptic_nms_thresh, class-agnostic (0.5) */
    float removal_fraction;  /* mask_removal_fraction_threshold (0.3) */
    int stuff_area_limit;    /* panoptic_stuff_area_limit, original-image pixels (4096) */
    int enable_void;         /* panoptic_void: the void channel (1: box keep fraction 0.7 < 1) */
} ups_head_settings;

void ups_head_settings_default(ups_head_settings *s);

/* Where a setting's text comes from (the trunk's --set, then the weights' metadata):
 * NULL when absent. */
typedef const char *(*ups_setting_get)(void *ctx, const char *key);
/* Overrides the settings named above from get; fails naming `what` (the weights' path)
 * and the key when a value is not a number in range. */
int ups_head_settings_read(ups_head_settings *s, ups_setting_get get, void *ctx, const char *what, avps_error *err);

/* ---- weights -------------------------------------------------------------------------- */

typedef struct ups_heads ups_heads;
struct ups_heads {
    const nn_backend *be;
    void **owned; /* weight buffers, freed with the heads */
    size_t n_owned, cap_owned;
    ups_head_settings set;

    /* RPN (rpn.conv_proposal.0, rpn.cls_score, rpn.bbox_pred), shared over P2..P6 */
    nn_conv rpn_conv, rpn_cls, rpn_bbox;
    int anchors; /* per position: n_ratios */
    float cell_anchors[UPS_FPN_LEVELS][4 * UPS_MAX_RATIOS];

    /* box head (rcnn.fc6.0, fc7.0, cls_score, bbox_pred): class-specific regression */
    nn_fc fc6, fc7, cls_score, bbox_pred;
    int num_classes, channels, box_pool; /* 81, 256, 7 */

    /* mask head (mask_branch.mask_conv1..4.0, mask_deconv1.0, mask_score) */
    nn_conv mask_conv[UPS_MASK_CONVS];
    nn_deconv mask_deconv;
    nn_conv mask_score;
    int mask_pool, mask_size; /* 14, 28 */
};

/* The heads' weights under UPSNet's state-dict names (what make_weights.py writes), on
 * backend be, with settings s (copied). */
ups_heads *ups_heads_load(const st_file *st, const nn_backend *be, const ups_head_settings *s, avps_error *err);
void ups_heads_free(ups_heads *h);

/* ---- one image ------------------------------------------------------------------------ */

/* im_info: the resized image before padding, and the float32 scale it was resized by. */
typedef struct {
    int img_h, img_w;
    float scale;
} ups_im_info;

/* rpn.c: the RPN maps of every level and the proposals, UPSNet's order (descending
 * score), boxes x1 y1 x2 y2 in resized-image pixels. */
typedef struct {
    nn_tensor cls_prob[UPS_FPN_LEVELS];  /* 1 x A x h x w, after the sigmoid */
    nn_tensor bbox_pred[UPS_FPN_LEVELS]; /* 1 x 4A x h x w, channel 4a + k */
    int n;
    float *boxes, *scores; /* n x 4, n */
} ups_proposals;

int ups_rpn(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_im_info *im, ups_proposals *out,
            avps_error *err);

/* rcnn.c: the box head on n rois (n x 4): softmax probabilities and deltas. */
typedef struct {
    int n;
    const float *rois;     /* the rois given (not copied) */
    float *cls_prob;       /* n x num_classes */
    float *bbox_pred;      /* n x 4 num_classes */
} ups_box_out;

int ups_box_head(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const float *rois, int n, ups_box_out *out,
                 avps_error *err);

/* Detections in resized-image pixels, UPSNet's order: class by class (ascending), NMS
 * order within a class; labels are detection classes 1..num_classes-1. masks are the
 * mask head's mask_size x mask_size outputs of each detection's class: probabilities
 * (sigmoid) for detections, logits for the panoptic candidates. */
typedef struct {
    int n;
    float *boxes, *scores;
    int *labels;
    float *masks;
    int mask_size;
} ups_dets;

/* MaskROI then the mask head: the per-class path (score > score_thresh, per-class NMS,
 * max_det) with mask probabilities. */
int ups_detect(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_box_out *box, const ups_im_info *im,
               ups_dets *out, avps_error *err);
/* The mask head on n boxes (resized pixels) of classes labels: n x mask_size^2 of each
 * box's class channel into out, the sigmoid applied when probs. */
int ups_mask_head(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const float *boxes, const int *labels, int n,
                  int probs, float *out, avps_error *err);
/* RoIAlign (Detectron's: aligned=False, sampling 2) of n rois on P2..P5 with UPSNet's
 * level rule, pool x pool: out is n x C x pool x pool (the box head's input; tests). */
int ups_roi_align(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const float *rois, int n, int pool,
                  nn_tensor *out, avps_error *err);

/* panoptic.c: the panoptic head. sem_up is the semantic logits after the final x4
 * upsampling (1 x num_seg_classes x H x W, the padded input's size), sem_labels their
 * argmax (H x W, first index on ties). */
typedef struct {
    int cls;             /* 133-class index */
    int instance;        /* 0 for stuff, else the instance number */
    int area;
    int bbox[4];         /* UPSNet's [x, y, max - min, max - min] (no +1) */
} ups_pan_segment;

typedef struct {
    ups_dets cand;       /* candidates (class-agnostic MaskROI), logits of their class */
    int k;
    int *keep;           /* k indexes into cand, kept order (= instance order) */
    int *cls_inds;       /* k detection classes */
    float *cls_probs;    /* k scores */
    int h, w;
    uint8_t *labels;     /* h x w panoptic argmax: 0..52 stuff, 53 + i instance i, 255 void */
    int out_h, out_w;    /* the image's size as cv2 gives it back: round(img / scale) */
    uint8_t *labels_image; /* out_h x out_w: labels cropped and resized (INTER_NEAREST) */
    uint8_t *pan_2ch;    /* out_h x out_w x 2: class 0..132 or 255, instance number */
    int n_segments;
    ups_pan_segment *segments; /* each (class, instance) of pan_2ch, by class then instance */
} ups_panoptic_out;

int ups_panoptic(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_box_out *box,
                 const ups_im_info *im, const nn_tensor *sem_up, const uint8_t *sem_labels, ups_panoptic_out *out,
                 avps_error *err);

/* The panoptic candidates: MaskROI's class-agnostic path (score > pan_score_thresh, one
 * NMS, max_det), with its fallback when none passes (one box of zeros, class 0, score 1,
 * mask_roi.py:135-141), and the mask head's logits of their classes. */
int ups_panoptic_candidates(const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_box_out *box,
                            const ups_im_info *im, ups_dets *out, avps_error *err);

/* ---- shared by the heads' files -------------------------------------------------------- */

/* py-faster-rcnn's greedy NMS: boxes by descending score as order[] gives them, IoU
 * with +1 widths and heights in float32, suppress when IoU > thresh. keep[] gets the
 * survivors in order; returns their count. suppressed: n bytes of scratch. */
int ups_nms(const float *boxes, const int *order, int n, float thresh, unsigned char *suppressed, int *keep);
/* bbox_transform with weights, in float32, dw and dh clamped at log(1000 / 16); then
 * clipped to [0, w - 1] x [0, h - 1] */
void ups_box_decode_clip(const float box[4], const float delta[4], const float weights[4], int img_w, int img_h,
                         float out[4]);
/* cv2.resize(INTER_LINEAR) of a float plane sw x sh to the given size dw x dh, as
 * OpenCV 4.10 computes it for CV_32F (the 2x downscale included, where cv2 switches to
 * its area path); rows: sh x dw floats of scratch. (The trunk's ups_cv_resize_linear
 * resizes by a scale factor; this one is cv2 given a size, as mask removal calls it.) */
void ups_cv_resize_to(const float *src, int sw, int sh, float *dst, int dw, int dh, float *rows);
/* cv2.resize(INTER_NEAREST, fx = fy = f) of a u8 plane (row stride `stride`) to dw x dh
 * (the caller's round(side f)): source floor(x / f), at most the last; xofs: dw ints. */
void ups_cv_resize_nearest_u8(const uint8_t *src, int sw, int sh, int stride, uint8_t *dst, int dw, int dh, double f,
                              int *xofs);
/* indexes of x[0..n) by descending value, ties by index (stable); scratch from a */
int ups_sort_desc(nn_arena *a, const float *x, int n, int *idx, avps_error *err);

#endif
