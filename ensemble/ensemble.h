/* ensemble: a weighted ensemble of heads that is itself a head (E-UPS: four UPSNet ends
 * with weights 0.4, 1.2, 1.1, 1.3). docs/algorithms.md, "Weighted ensemble (E-UPS)",
 * gives every choice and its measurement.
 *
 * Contract:
 * - The ensemble's output is a pure function of its members' outputs for the image and
 *   of the weights and options: the same on any rank and thread.
 * - Weights are normalised to sum 1; a negative, non-finite or all-zero set of weights is
 *   an error naming the member.
 * - Members must give SS channels of the same categories (any order; the first member's
 *   order is the ensemble's) and images of the same size; otherwise an error names the
 *   member.
 * - SS: the weighted mean of the members' logits when every member gives logits (the
 *   output is logits), else of their probabilities (logits through a softmax, label
 *   maps one-hot; the output is probabilities), on the first member's grid: members on
 *   that grid are averaged cell by cell, others resampled to it (bilinear as
 *   ss_sampler, label maps nearest). fp16 out.
 * - IS: an output-level approximation of mmdetection's RoI-level ensemble: members'
 *   instances of one class that overlap are grouped, a group scores the weighted mean of
 *   its members' scores with a missing member counting 0, its soft mask is the weighted
 *   mean of its members' masks, then class-wise NMS and the top max_instances.
 * - Memory: the members' outputs for one image and the ensemble's, nothing more.
 */
#ifndef AVPS_ENSEMBLE_H
#define AVPS_ENSEMBLE_H

#include "../model/model.h"

typedef struct {
    double group_iou;       /* instances of one class whose mask IoU is above it group (0.5) */
    double nms_iou;         /* a group whose mask IoU with a better one of its class is above it goes (0.5) */
    size_t max_instances;   /* the best this many groups are kept (100) */
} ensemble_options;

void ensemble_options_default(ensemble_options *opt);
/* IoU thresholds must lie in [0, 1]. */
int ensemble_options_check(const ensemble_options *opt, avps_error *err);

/* Checks the weights (names[i] names member i in messages) and writes them normalised
 * to sum 1 into normalised (n entries). A member of weight 0 has no say: its SS adds
 * nothing and its instances are left out. */
int ensemble_weights_normalise(const double *weights, const char *const *names, size_t n, double *normalised,
                               avps_error *err);

/* Combines n members' outputs for one image into out (released by the caller with
 * head_output_release). weights need not be normalised; names name the members in
 * messages. */
int ensemble_merge(const head_output *members, const double *weights, const char *const *names, size_t n,
                   const ensemble_options *opt, head_output *out, avps_error *err);

/* A head named `name` that runs the n members on each image and merges their outputs.
 * It takes the members in every case: they are freed with it, or at once when it fails.
 * opt may be NULL for the defaults. */
head *ensemble_head_new(const char *name, head **members, const double *weights, size_t n,
                        const ensemble_options *opt, avps_error *err);

#endif
