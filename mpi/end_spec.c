/* end_spec.c: NAME=sim:PROFILE[:SEED] and NAME=replay:DIR into a head_config. */
#include "end_spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char spec_help[] = "an end is NAME=sim:PROFILE[:SEED] or NAME=replay:STORE_DIR";

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

void end_spec_release(end_spec *s) {
    free(s->text);
    memset(s, 0, sizeof *s);
}
