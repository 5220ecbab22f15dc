/* end_spec: a network end named on the command line as NAME=SPEC, the way `avps
 * calibrate` (and `avps run`) take their ends. SPEC is one of
 *   sim:PROFILE[:SEED]   a simulated head (a built-in profile or a profile JSON file;
 *                        SEED, the world's seed, defaults to 1 as in `avps export`)
 *   replay:STORE_DIR     a prediction store written by export or import
 * NAME is the end's name: it seeds a sim head's noise (as `avps export --head NAME`) and
 * is how the class table refers to the end. */
#ifndef AVPS_END_SPEC_H
#define AVPS_END_SPEC_H

#include "../model/model.h"

typedef struct {
    char *text;      /* an owned copy of NAME=SPEC, cut into the strings cfg points to */
    head_config cfg; /* ready for head_new */
} end_spec;

/* Fails with a message quoting text when it is not NAME=sim:PROFILE[:SEED] or
 * NAME=replay:DIR, or NAME is empty. */
int end_spec_parse(const char *text, end_spec *out, avps_error *err);
void end_spec_release(end_spec *s);

#endif
