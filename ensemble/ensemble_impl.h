/* ensemble_impl.h: the two halves of ensemble_merge (ensemble/ensemble_merge.c), one file
 * each. Internal to ensemble/; other modules see only ensemble.h. */
#ifndef AVPS_ENSEMBLE_IMPL_H
#define AVPS_ENSEMBLE_IMPL_H

#include "ensemble.h"

/* The weighted mean of the members' SS on the first member's grid (ensemble_ss.c).
 * weights are normalised; out->ss is filled, out's other fields are left alone. */
int ensemble_ss_merge(const head_output *members, const double *weights, const char *const *names, size_t n,
                      ss_map *out, avps_error *err);

/* Grouped, averaged and suppressed instances (ensemble_is.c) into out->instances. */
int ensemble_is_merge(const head_output *members, const double *weights, const char *const *names, size_t n,
                      const ensemble_options *opt, head_output *out, avps_error *err);

#endif
