/* fuzz.h: what the libFuzzer harnesses of tests/fuzz/ share. Each harness is one
 * LLVMFuzzerTestOneInput; the parsers read files, so the input is written to a temporary
 * file first. FUZZ_ASSERT aborts, which libFuzzer (and driver.c) report as a finding. */
#ifndef AVPS_FUZZ_H
#define AVPS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The path "<TMPDIR>/avps-fuzz-<pid>-<name>", in buf (which is returned). */
static inline const char *fuzz_path(char *buf, size_t n, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(buf, n, "%s/avps-fuzz-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
    return buf;
}

/* Writes bytes to the temporary file `name` (see fuzz_path); the path is in buf. Exits
 * (it is the harness that failed, not the parser) when the file cannot be written. */
static inline const char *fuzz_write(char *buf, size_t n, const char *name, const void *data, size_t size) {
    fuzz_path(buf, n, name);
    FILE *fp = fopen(buf, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror(buf);
        exit(2);
    }
    return buf;
}

#endif
