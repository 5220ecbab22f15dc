/* ensemble_merge.c: one image's ensemble: the members' outputs checked against each
 * other, the weights normalised, then the SS half (ensemble_ss.c) and the IS half
 * (ensemble_is.c). */
#include "ensemble_impl.h"

#include <math.h>
#include <stdlib.h>

void ensemble_options_default(ensemble_options *opt) { *opt = (ensemble_options){0.5, 0.5, 100}; }

int ensemble_options_check(const ensemble_options *opt, avps_error *err) {
    if (!(opt->group_iou >= 0 && opt->group_iou <= 1 && opt->nms_iou >= 0 && opt->nms_iou <= 1))
        return avps_fail(err, "IoU thresholds must lie in [0, 1] (group %g, NMS %g)", opt->group_iou, opt->nms_iou);
    return 0;
}

int ensemble_weights_normalise(const double *weights, const char *const *names, size_t n, double *normalised,
                               avps_error *err) {
    double total = 0;
    if (n == 0)
        return avps_fail(err, "an ensemble needs at least one member");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(weights[i]) || weights[i] < 0)
            return avps_fail(err, "member %s: weight %g; weights must be finite and not negative", names[i],
                             weights[i]);
        total += weights[i];
    }
    if (!(total > 0))
        return avps_fail(err, "members %s ... %s: every weight is 0", names[0], names[n - 1]);
    for (size_t i = 0; i < n; i++)
        normalised[i] = weights[i] / total;
    return 0;
}

int ensemble_merge(const head_output *members, const double *weights, const char *const *names, size_t n,
                   const ensemble_options *opt, head_output *out, avps_error *err) {
    *out = (head_output){0};
    double *w = malloc((n + 1) * sizeof *w);
    if (!w)
        return avps_fail(err, "out of memory");
    int rc = ensemble_weights_normalise(weights, names, n, w, err);
    if (rc == 0)
        rc = ensemble_options_check(opt, err);
    for (size_t i = 1; rc == 0 && i < n; i++)
        if (members[i].width != members[0].width || members[i].height != members[0].height)
            rc = avps_fail(err, "member %s gives a %ux%u image, member %s %ux%u", names[i], members[i].width,
                           members[i].height, names[0], members[0].width, members[0].height);
    out->width = members[0].width, out->height = members[0].height;
    if (rc == 0)
        rc = ensemble_ss_merge(members, w, names, n, &out->ss, err);
    if (rc == 0)
        rc = ensemble_is_merge(members, w, names, n, opt, out, err);
    if (rc != 0)
        head_output_release(out);
    free(w);
    return rc;
}
