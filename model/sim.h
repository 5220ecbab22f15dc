/* sim.h: the simulated heads' profiles (model/sim_profile.c), shared with the simulation
 * itself (model/sim_head.c). Internal to model/. */
#ifndef AVPS_SIM_H
#define AVPS_SIM_H

#include "model.h"

/* How good one simulated end is. Every quality varies per class by this end's own
 * offsets (class_spread) and by a class difficulty common to all ends; per object, its
 * errors mix a part common to all ends (weight `shared`) with its own. */
typedef struct {
    char name[64];
    /* semantic segmentation */
    ss_kind ss_kind;
    double ss_input_scale;  /* the network's input size over the image's */
    uint32_t ss_stride;     /* grid stride on that input; padded to 32 */
    double ss_boundary;     /* amplitude of the boundary displacement, image pixels */
    double ss_stuff_error;  /* chance a stuff segment is labelled as another class */
    double ss_thing_error;  /* the same for a thing segment */
    double ss_confidence;   /* probability of the predicted class */
    /* instance segmentation */
    double is_recall;       /* chance a ground-truth thing is detected */
    double is_boundary;     /* mask boundary noise, in logits of the 28x28 mask */
    double is_localisation; /* box edge noise, as a fraction of the box size */
    double is_calibration;  /* how strongly scores follow how easy the object was */
    double is_false_positives; /* mean false detections per image */
    double is_confusion;    /* chance a detection gets another class */
    int is_soft;            /* 28x28 soft masks (1) or full-image binary masks (0) */
    /* across classes and ends */
    double class_spread;
    double shared;
} sim_profile;

/* A built-in profile by name, or a profile JSON file (see docs/simulation.md) when
 * `profile` names a file. */
int sim_profile_get(const char *profile, sim_profile *out, avps_error *err);

/* Each class's quality offset for the end `head_name` under `seed` (what raises or
 * lowers its recall and error rates): this end's own draw, centred over the classes of
 * its kind and scaled by class_spread, minus a difficulty common to every end. It
 * depends on no image. `isthing` and `quality` hold n entries. */
void sim_class_quality(const sim_profile *p, uint64_t seed, const char *head_name, const uint8_t *isthing,
                       size_t n, double *quality);

#endif
