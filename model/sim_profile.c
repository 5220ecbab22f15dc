/* sim_profile.c: the built-in profiles of the simulated ends and the profile JSON
 * reader. The figures are invented to order the ends as the AntVisionPS paper's tables
 * do (UPS ends stronger on stuff, HTC ends on things, SENet-154 > ResNet-101 > ResNet-50,
 * BFP, LSH, UW and DC each a small gain); they describe no real network. */
#include "sim.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/*  name           kind    scale stride bound stuff thing conf  recall isb  loc   cal  fp   conf. soft */
#define UPS(n, st, th, bd, cf, rc, ib, lc, ca, fp, cn) \
    {n, SS_LOGITS, 1.0, 4, bd, st, th, cf, rc, ib, lc, ca, fp, cn, 1, 0.08, 0.5}
#define HTC(n, st, th, bd, cf, rc, ib, lc, ca, fp, cn) \
    {n, SS_PROBS, 0.75, 8, bd, st, th, cf, rc, ib, lc, ca, fp, cn, 1, 0.08, 0.5}

static const sim_profile builtin[] = {
    UPS("r50", 0.140, 0.120, 3.0, 0.70, 0.72, 1.60, 0.060, 2.0, 4.0, 0.080),
    UPS("r101", 0.120, 0.110, 2.7, 0.72, 0.75, 1.50, 0.055, 2.2, 3.5, 0.070),
    UPS("r101_bfp", 0.115, 0.100, 2.6, 0.72, 0.77, 1.45, 0.050, 2.3, 3.2, 0.065),
    UPS("r101_lsh", 0.115, 0.100, 2.6, 0.72, 0.76, 1.35, 0.050, 2.3, 3.3, 0.065),
    UPS("r101_bfp_lsh", 0.110, 0.095, 2.5, 0.73, 0.78, 1.30, 0.048, 2.4, 3.0, 0.060),
    UPS("senet154", 0.100, 0.090, 2.3, 0.74, 0.79, 1.35, 0.046, 2.5, 2.8, 0.055),
    UPS("senet154_lsh", 0.095, 0.085, 2.2, 0.75, 0.80, 1.25, 0.044, 2.6, 2.6, 0.050),
    HTC("htc", 0.160, 0.100, 3.2, 0.68, 0.80, 1.10, 0.040, 2.8, 3.0, 0.050),
    HTC("htc_uw", 0.150, 0.095, 3.1, 0.69, 0.81, 1.05, 0.039, 2.9, 2.8, 0.048),
    HTC("htc_dc", 0.145, 0.095, 3.0, 0.69, 0.815, 1.05, 0.038, 2.9, 2.8, 0.047),
    HTC("htc_uw_dc", 0.135, 0.090, 2.9, 0.70, 0.83, 1.00, 0.036, 3.0, 2.6, 0.045),
    /* The null pair: equal quality on every class (no per-class offsets of their own),
     * so that per-class selection between them can only pick noise. */
    {"null_a", SS_PROBS, 1.0, 4, 2.6, 0.12, 0.10, 0.72, 0.78, 1.3, 0.048, 2.4, 3.0, 0.06, 1, 0.0, 0.5},
    {"null_b", SS_PROBS, 1.0, 4, 2.6, 0.12, 0.10, 0.72, 0.78, 1.3, 0.048, 2.4, 3.0, 0.06, 1, 0.0, 0.5},
};

const char *sim_profile_builtin_name(size_t i) {
    return i < sizeof builtin / sizeof builtin[0] ? builtin[i].name : NULL;
}

typedef struct {
    const char *key;
    size_t offset;
    double lo, hi;
} number_field;

#define FIELD(k, lo, hi) {#k, offsetof(sim_profile, k), lo, hi}
static const number_field number_fields[] = {
    FIELD(ss_input_scale, 0.05, 8),   FIELD(ss_boundary, 0, 100),      FIELD(ss_stuff_error, 0, 1),
    FIELD(ss_thing_error, 0, 1),      FIELD(ss_confidence, 0.01, 1),   FIELD(is_recall, 0, 1),
    FIELD(is_boundary, 0, 20),        FIELD(is_localisation, 0, 1),    FIELD(is_calibration, 0, 20),
    FIELD(is_false_positives, 0, 100), FIELD(is_confusion, 0, 1),      FIELD(class_spread, 0, 1),
    FIELD(shared, 0, 1),
};

static int read_field(const cJSON *item, sim_profile *p, const char *path, avps_error *err) {
    const char *k = item->string;
    for (size_t i = 0; i < sizeof number_fields / sizeof number_fields[0]; i++) {
        const number_field *f = &number_fields[i];
        if (strcmp(k, f->key) != 0)
            continue;
        if (!cJSON_IsNumber(item) || item->valuedouble < f->lo || item->valuedouble > f->hi)
            return avps_fail(err, "%s: \"%s\" must be a number in [%g, %g]", path, k, f->lo, f->hi);
        *(double *)((char *)p + f->offset) = item->valuedouble;
        return 0;
    }
    if (strcmp(k, "ss_stride") == 0) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 1 || item->valuedouble > 32 ||
            32 % (int)item->valuedouble != 0)
            return avps_fail(err, "%s: \"ss_stride\" must divide 32", path);
        p->ss_stride = (uint32_t)item->valuedouble;
    } else if (strcmp(k, "ss_kind") == 0) {
        const char *s = cJSON_GetStringValue(item);
        if (!s || (strcmp(s, "probs") && strcmp(s, "logits") && strcmp(s, "labels")))
            return avps_fail(err, "%s: \"ss_kind\" must be \"probs\", \"logits\" or \"labels\"", path);
        p->ss_kind = s[0] == 'p' ? SS_PROBS : s[1] == 'o' ? SS_LOGITS : SS_LABELS;
    } else if (strcmp(k, "is_soft") == 0) {
        if (!cJSON_IsBool(item))
            return avps_fail(err, "%s: \"is_soft\" must be true or false", path);
        p->is_soft = cJSON_IsTrue(item);
    } else if (strcmp(k, "base") != 0) {
        return avps_fail(err, "%s: unknown key \"%s\"", path, k);
    }
    return 0;
}

static const sim_profile *builtin_find(const char *name) {
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0)
            return &builtin[i];
    return NULL;
}

/* A profile file starts from "base" (a built-in, default r50) and overrides fields. */
static int profile_load(const char *path, sim_profile *out, avps_error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return avps_fail(err, "%s: not a JSON object", path);
    }
    const char *base = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "base"));
    const sim_profile *b = builtin_find(base ? base : "r50");
    int rc = 0;
    if (!b)
        rc = avps_fail(err, "%s: \"base\" names no built-in profile", path);
    else
        *out = *b;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) if (rc == 0) rc = read_field(item, out, path, err);
    cJSON_Delete(root);
    return rc;
}

int sim_profile_get(const char *profile, sim_profile *out, avps_error *err) {
    if (!profile)
        return avps_fail(err, "a sim head needs a profile");
    const sim_profile *b = builtin_find(profile);
    if (b) {
        *out = *b;
        return 0;
    }
    if (!strchr(profile, '/') && !strstr(profile, ".json"))
        return avps_fail(err, "no built-in sim profile \"%s\" (and it is not a .json file)", profile);
    return profile_load(profile, out, err);
}
