/* maskrcnn.h: the Mask R-CNN ResNet-FPN network's layers and settings, shared by its
 * loader (load.c) and its forward pass (forward.c). Internal to model/. */
#ifndef AVPS_NN_MASKRCNN_H
#define AVPS_NN_MASKRCNN_H

#include "../../nn.h"

typedef struct maskrcnn maskrcnn;

/* the kind nets/nets.c lists */
extern const nn_net_kind maskrcnn_kind;

maskrcnn *maskrcnn_load(const st_file *st, const native_options *opt, avps_error *err);
/* Runs the network on one RGB image (nn_result: the arrays live in the arena). */
int maskrcnn_run(maskrcnn *m, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err);
void maskrcnn_free(maskrcnn *m);

#define MRCNN_LEVELS 4     /* ResNet stages C2..C5, FPN levels P2..P5 (+ P6 by max pooling) */
#define MRCNN_MAX_ANCHORS 16

/* A residual block: bottleneck (1x1, 3x3, 1x1) or basic (3x3, 3x3), with an optional
 * projection shortcut. */
typedef struct {
    nn_conv conv1, conv2, conv3, down;
    int bottleneck, has_down;
} mrcnn_block;

struct maskrcnn {
    const nn_backend *be;
    nn_arena arena;
    void **owned;            /* weight buffers, freed with the network */
    size_t n_owned, cap_owned;

    nn_conv stem;
    mrcnn_block *blocks;
    int n_blocks, layer_end[MRCNN_LEVELS]; /* blocks of stage i end before layer_end[i] */
    nn_conv fpn_inner[MRCNN_LEVELS], fpn_out[MRCNN_LEVELS];
    nn_conv rpn_conv, rpn_cls, rpn_bbox;
    int anchors;                             /* per position */
    float cell_anchors[MRCNN_LEVELS + 1][4 * MRCNN_MAX_ANCHORS];
    nn_fc fc6, fc7, cls_score, bbox_pred;
    int num_classes, box_pool;               /* box_pool: RoIAlign size (7) */
    nn_conv *mask_convs;
    int n_mask_convs, mask_pool;             /* mask_pool: RoIAlign size (14) */
    nn_deconv mask_deconv;
    nn_conv mask_logits;

    /* settings, from the weights' __metadata__ or torchvision's defaults */
    float min_size, max_size, mean[3], std[3];
    int rpn_pre_nms, rpn_post_nms, detections;
    float rpn_nms, box_score, box_nms;

    /* tests */
    char *dump_dir;
    float *proposals;
    int n_proposals;
};

#endif
