/* error.c: the one error type every module fills and every caller checks. */
#include "data.h"

#include <stdarg.h>
#include <string.h>

int avps_fail(avps_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int avps_prefix(avps_error *err, const char *fmt, ...) {
    if (err) {
        char head[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(head, sizeof head - 2, fmt, ap);
        va_end(ap);
        strcat(head, ": ");
        size_t h = strlen(head), cap = sizeof err->msg - 1;
        size_t t = strnlen(err->msg, cap);
        if (h + t > cap) /* keep the head whole; the end of the old message gives way */
            t = cap - h;
        memmove(err->msg + h, err->msg, t);
        memcpy(err->msg, head, h);
        err->msg[h + t] = '\0';
    }
    return -1;
}
