/* cli.c: option parsing shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_take(int argc, char **argv, int *i, const char *name, const char **value, avps_error *err) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return avps_fail(err, "option %s needs a value", name);
    *value = argv[++*i];
    return 1;
}

int cli_int(const char *option, const char *text, long lo, long hi, long *out, avps_error *err) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi)
        return avps_fail(err, "option %s: '%s' is not an integer in %ld..%ld", option, text, lo, hi);
    *out = v;
    return 0;
}

int cli_double(const char *option, const char *text, double *out, avps_error *err) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v))
        return avps_fail(err, "option %s: '%s' is not a finite number", option, text);
    *out = v;
    return 0;
}
