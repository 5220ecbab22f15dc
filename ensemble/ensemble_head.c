/* ensemble_head.c: an ensemble as a head (model.h's head_new_custom): each image runs
 * every member, in member order, and merges their outputs (ensemble_merge.c). */
#include "ensemble.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t n;
    head **members;
    double *weights;
    const char **names; /* the members' own names (head_name) */
    ensemble_options opt;
} ensemble_state;

static void ensemble_free(void *p) {
    ensemble_state *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        head_free(s->members[i]);
    free(s->members);
    free(s->weights);
    free(s->names);
    free(s);
}

static uint32_t ensemble_channels(const void *p, const int32_t **category) {
    const ensemble_state *s = p;
    return head_channels(s->members[0], category);
}

static int ensemble_run(void *p, const head_input *in, head_output *out, avps_error *err) {
    const ensemble_state *s = p;
    head_output *outs = calloc(s->n, sizeof *outs);
    int rc = outs ? 0 : avps_fail(err, "out of memory");
    for (size_t i = 0; i < s->n && rc == 0; i++)
        rc = head_run(s->members[i], in, &outs[i], err);
    if (rc == 0)
        rc = ensemble_merge(outs, s->weights, s->names, s->n, &s->opt, out, err);
    for (size_t i = 0; outs && i < s->n; i++)
        head_output_release(&outs[i]);
    free(outs);
    return rc;
}

/* Every member's channels must carry the first member's categories, in any order. */
static int channels_check(const ensemble_state *s, avps_error *err) {
    const int32_t *ref, *cats;
    uint32_t n_ref = head_channels(s->members[0], &ref);
    for (size_t i = 1; i < s->n; i++) {
        uint32_t n = head_channels(s->members[i], &cats);
        if (n != n_ref)
            return avps_fail(err, "member %s has %u semantic channels, member %s %u: their categories differ",
                             s->names[i], n, s->names[0], n_ref);
        for (uint32_t c = 0; c < n_ref; c++) {
            uint32_t k = 0;
            while (k < n && cats[k] != ref[c])
                k++;
            if (k == n)
                return avps_fail(err, "member %s has no semantic channel for category %d, which member %s has",
                                 s->names[i], ref[c], s->names[0]);
        }
    }
    return 0;
}

head *ensemble_head_new(const char *name, head **members, const double *weights, size_t n,
                        const ensemble_options *opt, avps_error *err) {
    ensemble_state *s = calloc(1, sizeof *s);
    double *normalised = malloc((n + 1) * sizeof *normalised);
    if (s) {
        s->members = calloc(n + 1, sizeof *s->members);
        s->weights = malloc((n + 1) * sizeof *s->weights);
        s->names = calloc(n + 1, sizeof *s->names);
    }
    if (!s || !normalised || !s->members || !s->weights || !s->names) {
        for (size_t i = 0; i < n; i++)
            head_free(members[i]);
        ensemble_free(s);
        free(normalised);
        avps_fail(err, "ensemble %s: out of memory", name);
        return NULL;
    }
    s->n = n;
    for (size_t i = 0; i < n; i++)
        s->members[i] = members[i], s->weights[i] = weights[i], s->names[i] = head_name(members[i]);
    if (opt)
        s->opt = *opt;
    else
        ensemble_options_default(&s->opt);
    int rc = ensemble_weights_normalise(weights, s->names, n, normalised, err);
    if (rc == 0)
        rc = ensemble_options_check(&s->opt, err);
    if (rc == 0)
        rc = channels_check(s, err);
    int logits = 1;
    for (size_t i = 0; i < n; i++)
        logits &= head_ss_kind(members[i]) == SS_LOGITS;
    free(normalised);
    if (rc != 0) {
        avps_prefix(err, "ensemble %s", name);
        ensemble_free(s);
        return NULL;
    }
    head_custom_ops ops = {ensemble_run, ensemble_channels, ensemble_free};
    return head_new_custom(name, logits ? SS_LOGITS : SS_PROBS, &ops, s, err);
}
