/* end_spec.c: NAME=sim:PROFILE[:SEED], NAME=replay:DIR and NAME=ensemble:MEMBERS into
 * the head they describe. */
#include "end_spec.h"

#include "../ensemble/ensemble.h"

#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char spec_help[] =
    "an end is NAME=sim:PROFILE[:SEED], NAME=replay:STORE_DIR or NAME=ensemble:MEMBER*WEIGHT,... with each "
    "MEMBER a sim or replay end";

/* A trailing ":DIGITS" is the seed; a profile path may itself hold a ':' elsewhere. */
static int split_seed(char *profile, uint64_t *seed) {
    char *colon = strrchr(profile, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return 0;
    errno = 0;
    unsigned long long v = strtoull(colon + 1, NULL, 10);
    if (errno || v > 2147483647ull)
        return -1;
    *seed = v;
    *colon = '\0';
    return 0;
}

/* One member "MNAME=SPEC*W" of an ensemble, cut at its last '*'. */
static int parse_member(char *text, end_spec *m, double *weight) {
    char *star = strrchr(text, '*'), *end;
    if (!star)
        return -1;
    *star = '\0';
    *weight = strtod(star + 1, &end);
    avps_error ignored;
    if (end == star + 1 || *end || !isfinite(*weight) || end_spec_parse(text, m, &ignored) != 0)
        return -1;
    return m->n_members ? -1 : 0; /* no ensemble of ensembles */
}

/* "M*W,M*W,...": the members, in order. */
static int parse_members(char *list, end_spec *out) {
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    out->members = calloc(n, sizeof *out->members);
    out->weights = calloc(n, sizeof *out->weights);
    if (!out->members || !out->weights)
        return -1;
    for (char *item = list, *next; item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        if (parse_member(item, &out->members[out->n_members], &out->weights[out->n_members]) != 0) {
            end_spec_release(&out->members[out->n_members]);
            return -1;
        }
        out->n_members++;
    }
    return 0;
}

int end_spec_parse(const char *text, end_spec *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    out->text = strdup(text);
    if (!out->text)
        return avps_fail(err, "out of memory");
    char *eq = strchr(out->text, '=');
    head_config *cfg = &out->cfg;
    cfg->seed = 1;
    int rc = 0;
    if (!eq || eq == out->text) {
        rc = -1;
    } else {
        *eq = '\0';
        cfg->name = out->text;
        char *spec = eq + 1;
        if (strncmp(spec, "sim:", 4) == 0 && spec[4]) {
            cfg->backend = "sim";
            cfg->profile = spec + 4;
            rc = split_seed(spec + 4, &cfg->seed);
        } else if (strncmp(spec, "ensemble:", 9) == 0 && spec[9]) {
            rc = parse_members(spec + 9, out);
        } else if (strncmp(spec, "replay:", 7) == 0 && spec[7]) {
            cfg->backend = "replay";
            cfg->store = spec + 7;
        } else {
            rc = -1;
        }
    }
    if (rc != 0) {
        end_spec_release(out);
        return avps_fail(err, "end '%s': %s (seed 0..2147483647)", text, spec_help);
    }
    return 0;
}

head *end_spec_head_new(const end_spec *s, const pan_dataset *ds, avps_error *err) {
    if (s->n_members == 0)
        return head_new(&s->cfg, ds, err);
    head **members = calloc(s->n_members, sizeof *members);
    const char *name = s->cfg.name;
    if (!members)
        return avps_fail(err, "end %s: out of memory", name), NULL;
    size_t n = 0;
    while (n < s->n_members && (members[n] = end_spec_head_new(&s->members[n], ds, err)))
        n++;
    head *h = NULL;
    if (n == s->n_members)
        h = ensemble_head_new(name, members, s->weights, n, NULL, err); /* takes the members */
    else
        while (n > 0)
            head_free(members[--n]);
    if (!h)
        avps_prefix(err, "end %s", name);
    free(members);
    return h;
}

void end_spec_release(end_spec *s) {
    for (size_t i = 0; i < s->n_members; i++)
        end_spec_release(&s->members[i]);
    free(s->members);
    free(s->weights);
    free(s->text);
    memset(s, 0, sizeof *s);
}

void end_kinds_warn(const char *where, head *const *heads, const double *weights, size_t n) {
    const head *labels = NULL, *scores = NULL;
    double w_labels = 0, w_scores = 0;
    for (size_t e = 0; e < n; e++) {
        if (!(weights[e] > 0))
            continue; /* its SS is not read */
        if (head_ss_kind(heads[e]) == SS_LABELS && !labels)
            labels = heads[e], w_labels = weights[e];
        else if (head_ss_kind(heads[e]) != SS_LABELS && !scores)
            scores = heads[e], w_scores = weights[e];
    }
    if (labels && scores)
        fprintf(stderr,
                "avps: warning: %s: the SS average mixes end %s, a label map (one-hot), with end %s's %s (weights "
                "%g and %g): the label map outvotes the probabilities wherever its weight is at least the other's, "
                "so end %s decides %s; see docs/algorithms.md, \"Two-level fusion\"\n",
                where, head_name(labels), head_name(scores), ss_kind_name(head_ss_kind(scores)), w_labels, w_scores,
                head_name(labels), w_labels >= w_scores ? "every pixel" : "most pixels");
}
