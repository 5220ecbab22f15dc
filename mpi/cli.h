/* cli: the small option parser every subcommand uses ("--name value" or "--name=value"). */
#ifndef AVPS_CLI_H
#define AVPS_CLI_H

#include "../data/data.h"

/* If argv[*i] is option `name`, stores its value, advances *i past it and returns 1;
 * returns -1 (with err) when the value is missing, 0 when argv[*i] is another option. */
int cli_take(int argc, char **argv, int *i, const char *name, const char **value, avps_error *err);
/* Parses a whole positive integer in [lo, hi]. */
int cli_int(const char *option, const char *text, long lo, long hi, long *out, avps_error *err);
/* Parses a whole finite number. */
int cli_double(const char *option, const char *text, double *out, avps_error *err);

#endif
