/* end_spec: a network end named on the command line as NAME=SPEC, the way `avps
 * calibrate` (and `avps run`) take their ends. SPEC is one of
 *   sim:PROFILE[:SEED]   a simulated head (a built-in profile or a profile JSON file;
 *                        SEED, the world's seed, defaults to 1 as in `avps export`)
 *   replay:STORE_DIR     a prediction store written by export or import
 *   ensemble:M*W,M*W...  the weighted ensemble (ensemble/ensemble.h) of members M, each
 *                        MNAME=sim:... or MNAME=replay:..., with weight W; e.g. E-UPS:
 *                        ensemble:r50=sim:r50*0.4,r101=sim:r101*1.2,...
 * NAME is the end's name: it seeds a sim head's noise (as `avps export --head NAME`) and
 * is how the class table refers to the end. */
#ifndef AVPS_END_SPEC_H
#define AVPS_END_SPEC_H

#include "../model/model.h"

typedef struct end_spec {
    char *text;               /* an owned copy of NAME=SPEC, cut into the strings cfg points to */
    head_config cfg;          /* sim and replay: ready for head_new; ensemble: name only */
    size_t n_members;         /* ensemble: its members (> 0) and their weights */
    struct end_spec *members;
    double *weights;
} end_spec;

/* Fails with a message quoting text when it is none of the forms above, NAME is empty,
 * a weight is not a finite number, or an ensemble's member is itself an ensemble. */
int end_spec_parse(const char *text, end_spec *out, avps_error *err);
/* The head the spec describes, for dataset ds (head_new, or ensemble_head_new on its
 * members' heads, which checks the weights). */
head *end_spec_head_new(const end_spec *s, const pan_dataset *ds, avps_error *err);
void end_spec_release(end_spec *s);
/* Says once on stderr when the SS average mixes a label map (one-hot: 1 at its class)
 * with probabilities or logits: the label-map end then decides nearly every pixel
 * (docs/algorithms.md, "Two-level fusion"). where: the command or config, for the message. */
void end_kinds_warn(const char *where, head *const *heads, const double *weights, size_t n);

#endif
