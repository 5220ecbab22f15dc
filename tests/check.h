/* check.h: the few lines of test harness the C unit tests share. A test prints nothing
 * when it passes; main prints "N passed, N failed" and fails if any check failed. */
#ifndef AVPS_CHECK_H
#define AVPS_CHECK_H

#include <stdio.h>

typedef struct {
    int passed, failed;
} check_tally;

#define CHECK(t, cond)                                                                \
    do {                                                                              \
        if (cond) {                                                                   \
            (t)->passed++;                                                            \
        } else {                                                                      \
            (t)->failed++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

static inline int check_report(const check_tally *t) {
    printf("%d passed, %d failed\n", t->passed, t->failed);
    return t->failed ? 1 : 0;
}

#endif
