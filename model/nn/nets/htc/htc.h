/* htc.h: mmdetection's Hybrid Task Cascade (HybridTaskCascade with HTCRoIHead: ResNet +
 * FPN, RPN, a cascade of box stages, interleaved mask stages with the mask information
 * flow, the fused semantic head), its layers and settings, shared by its loader (load.c)
 * and its forward pass (forward.c). Internal to model/. The numerics are mmdetection
 * 3.x's (docs/model.md). */
#ifndef AVPS_NN_HTC_H
#define AVPS_NN_HTC_H

#include "../../nn.h"

typedef struct htc htc;

extern const nn_net_kind htc_kind;

#define HTC_LEVELS 4      /* ResNet stages C2..C5, FPN P2..P5 (+ P6 by max pooling) */
#define HTC_MAX_STAGES 6
#define HTC_MAX_FCS 4
#define HTC_MAX_ANCHORS 16

/* A convolution's deformable part, when it has one (mmcv's DeformConv2dPack, version 1,
 * or ModulatedDeformConv2dPack, version 2; 0: a plain convolution): conv_offset, whose
 * output is the offsets (then, v2, the mask logits), groups offset groups. */
typedef struct {
    nn_conv offset;
    int version, groups;
} htc_dcn;

typedef struct {
    nn_conv conv1, conv2, conv3, down;
    htc_dcn dcn2; /* conv2 deformable: mmdetection's ResNet dcn / stage_with_dcn */
    int bottleneck, has_down;
} htc_block;

/* Shared2FCBBoxHead, class-agnostic regression: fcs, then the class logits (num_classes
 * + 1, background last) and 4 deltas, decoded with this stage's means and stds. */
typedef struct {
    nn_fc fcs[HTC_MAX_FCS], cls, reg;
    int n_fcs;
    float means[4], stds[4];
} htc_box_stage;

/* A semantic-head ConvModule: deformable in the DC head. */
typedef struct {
    nn_conv conv;
    htc_dcn dcn;
} htc_sem_conv;

/* HTCMaskHead: (conv_res of the previous stage's feature, added), convs, deconv + ReLU,
 * per-class logits. */
typedef struct {
    nn_conv conv_res, *convs, logits;
    nn_deconv up;
    int has_res, n_convs;
} htc_mask_stage;

struct htc {
    const nn_backend *be;
    nn_arena arena;
    void **owned;
    size_t n_owned, cap_owned;

    nn_conv stem;
    htc_block *blocks;
    int n_blocks, layer_end[HTC_LEVELS];
    nn_conv lateral[HTC_LEVELS], fpn_out[HTC_LEVELS];
    nn_conv rpn_conv, rpn_cls, rpn_reg;
    int anchors, n_anchor_scales, n_anchor_ratios;
    float anchor_scales[HTC_MAX_ANCHORS], anchor_ratios[HTC_MAX_ANCHORS];
    float base_anchors[HTC_LEVELS + 1][4 * HTC_MAX_ANCHORS];

    int has_semantic, n_sem_convs, sem_classes;
    htc_sem_conv sem_lateral[HTC_LEVELS + 1], *sem_convs, sem_embed;
    nn_conv sem_logits;

    int n_stages, num_classes, n_stages_meta;
    htc_box_stage box[HTC_MAX_STAGES];
    htc_mask_stage mask[HTC_MAX_STAGES];

    /* settings, from the weights' __metadata__ (defaults: htc_r50_fpn_1x_coco) */
    int scale_long, scale_short, pad_div;
    float mean[3], std[3];
    float strides[HTC_LEVELS + 1];
    int rpn_nms_pre, rpn_max, max_per_img;
    float rpn_nms, rpn_min_size, score_thr, nms_thr, mask_thr, wh_ratio_clip;
    int box_roi, mask_roi, sem_roi, sampling_ratio, finest_scale, fusion_level;
    float sem_stride;
    float plus_one; /* numerics: 0 mmdet3, 1 mmdet_v1 (+1 box widths, RoIAlign end, NMS areas, levels) */
    int fuse_bbox, fuse_mask, mask_info_flow, mask_merge_mean;
    int32_t *thing_category, *semantic_category; /* class -> dataset category id */

    char *semantic_path; /* --semantic: the logits as .npy */
    /* tests */
    char *dump_dir;
    float *proposals;
    int n_proposals;
};

/* Where settings come from while loading: --set KEY=VALUE (the last of a key wins), else
 * the weights' __metadata__; used[i] marks the --set entries read. */
typedef struct {
    const st_file *st;
    const char *const *set;
    int n_set;
    unsigned char *used;
} htc_meta;

/* settings.c: htc_settings_read before the tensors, htc_settings_check after them */
int htc_settings_read(htc *m, const htc_meta *ms, avps_error *err);
int htc_settings_check(htc *m, const htc_meta *ms, avps_error *err);
/* calloc'd memory freed with the network */
void *htc_owned(htc *m, size_t bytes, avps_error *err);

htc *htc_load(const st_file *st, const native_options *opt, avps_error *err);
int htc_run(htc *m, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err);
void htc_free(htc *m);

#endif
