/* sim_profile.c: the built-in profiles of the simulated ends and the profile JSON
 * reader. The figures are invented to order the ends as the AntVisionPS paper's tables
 * do (UPS ends stronger on stuff, HTC ends on things, SENet-154 > ResNet-101 > ResNet-50,
 * BFP, LSH, UW and DC each a small gain); they describe no real network. They were tuned
 * against scripts/measure-sim (docs/simulation.md). */
#include "sim.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each end is its family's base moved by two steps: `things` moves the instance side
 * (recall, masks, boxes, scores, confusion), `stuff` the semantic side (labels and
 * boundaries). One step is about 2 mask AP and 1.7 PQ^Th, or 1.7 PQ^St (measured).
 * The UPS base is ResNet-101: semantic logits at the input's size, stride 4. The HTC
 * base is plain HTC: semantic probabilities at 0.75 of the size, stride 8, a weaker
 * semantic side and a stronger instance side than any UPS end. */
typedef enum { FAMILY_UPS, FAMILY_HTC, FAMILY_NULL } profile_family;

typedef struct {
    const char *name;
    profile_family family;
    double things, stuff;
} profile_entry;

static const profile_entry builtin[] = {
    {"r50", FAMILY_UPS, -1.4, -1.4},
    {"r101", FAMILY_UPS, 0, 0},
    {"r101_bfp", FAMILY_UPS, 1.2, 0},   /* a balanced feature pyramid: things */
    {"r101_lsh", FAMILY_UPS, 0.6, 1.5}, /* mostly a better semantic side: stuff */
    {"r101_bfp_lsh", FAMILY_UPS, 1.8, 1.5},
    {"senet154", FAMILY_UPS, 2.1, 1.5},
    {"senet154_lsh", FAMILY_UPS, 2.7, 2.6},
    {"htc", FAMILY_HTC, 0, 0},
    {"htc_uw", FAMILY_HTC, 1.2, 0.8},   /* uncertainty-weighted losses */
    {"htc_dc", FAMILY_HTC, 1.0, 1.4},   /* deformable convolutions */
    {"htc_uw_dc", FAMILY_HTC, 2.5, 2.8}, /* LWL-HTC, the best HTC end */
    /* The null pair: equal quality on every class (no per-class offsets of their own),
     * so that per-class selection between them can only pick noise. */
    {"null_a", FAMILY_NULL, 1.0, 1.0},
    {"null_b", FAMILY_NULL, 1.0, 1.0},
};

static void profile_build(const profile_entry *e, sim_profile *p) {
    double t = e->things, u = e->stuff;
    int htc = e->family == FAMILY_HTC;
    *p = (sim_profile){.ss_kind = htc || e->family == FAMILY_NULL ? SS_PROBS : SS_LOGITS,
                       .ss_input_scale = htc ? 0.75 : 1.0,
                       .ss_stride = htc ? 8 : 4,
                       .is_soft = 1,
                       .class_spread = e->family == FAMILY_NULL ? 0 : 0.2,
                       .shared = 0.5};
    snprintf(p->name, sizeof p->name, "%s", e->name);
    if (htc) {
        p->ss_stuff_error = 0.43 - 0.015 * u, p->ss_thing_error = 0.14 - 0.006 * u;
        p->ss_boundary = 4.6 - 0.15 * u, p->ss_confidence = 0.655 + 0.0075 * u;
        p->is_recall = 0.745 + 0.018 * t, p->is_boundary = 1.25 - 0.06 * t;
        p->is_localisation = 0.0465 - 0.003 * t, p->is_calibration = 2.48 + 0.15 * t;
        p->is_false_positives = 3.32 - 0.15 * t, p->is_confusion = 0.0686 - 0.0045 * t;
    } else {
        p->ss_stuff_error = 0.325 - 0.015 * u, p->ss_thing_error = 0.118 - 0.005 * u;
        p->ss_boundary = 3.55 - 0.2 * u, p->ss_confidence = 0.705 + 0.01 * u;
        p->is_recall = 0.675 + 0.02 * t, p->is_boundary = 1.70 - 0.08 * t;
        p->is_localisation = 0.059 - 0.003 * t, p->is_calibration = 1.8 + 0.15 * t;
        p->is_false_positives = 3.8 - 0.25 * t, p->is_confusion = 0.09 - 0.005 * t;
    }
}

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

static int builtin_find(const char *name, sim_profile *out) {
    for (size_t i = 0; name && i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0) {
            profile_build(&builtin[i], out);
            return 1;
        }
    return 0;
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
    int rc = builtin_find(base ? base : "r50", out) ? 0 : avps_fail(err, "%s: \"base\" names no built-in profile", path);
    const cJSON *item;
    cJSON_ArrayForEach(item, root) if (rc == 0) rc = read_field(item, out, path, err);
    cJSON_Delete(root);
    return rc;
}

int sim_profile_get(const char *profile, sim_profile *out, avps_error *err) {
    if (!profile)
        return avps_fail(err, "a sim head needs a profile");
    if (builtin_find(profile, out))
        return 0;
    if (!strchr(profile, '/') && !strstr(profile, ".json"))
        return avps_fail(err, "no built-in sim profile \"%s\" (and it is not a .json file)", profile);
    return profile_load(profile, out, err);
}
