/* rle_oracle.h: the compressed-counts decoder as it was before the fast one in
 * data/rle.c (one get_value call per value, then the checks), kept for the tests only as
 * the oracle the fast decoder must agree with on every string, good or bad
 * (unit_rle_decode.c). Not for the product: it is the slow form of the same rules. */
#ifndef AVPS_RLE_ORACLE_H
#define AVPS_RLE_ORACLE_H

#include "../data/data.h"

#include <stdlib.h>

enum { ORACLE_CHUNK_BITS = 5, ORACLE_CHUNK_MASK = 0x1f, ORACLE_CHUNK_SIGN = 0x10, ORACLE_CHUNK_MORE = 0x20,
       ORACLE_CHAR_BASE = 48, ORACLE_MAX_CHUNKS = 7 };

static int oracle_get_value(const char **ps, const char *end, int json_escaped, int64_t *out) {
    const char *s = *ps;
    int64_t x = 0;
    for (int k = 0; k < ORACLE_MAX_CHUNKS && s < end; k++) {
        int ch = (unsigned char)*s++;
        if (ch == '\\' && json_escaped && (s == end || *s++ != '\\'))
            return -1;
        if (ch < ORACLE_CHAR_BASE || ch >= ORACLE_CHAR_BASE + 64)
            return -1;
        int c = ch - ORACLE_CHAR_BASE;
        x |= (int64_t)(c & ORACLE_CHUNK_MASK) << (ORACLE_CHUNK_BITS * k);
        if (!(c & ORACLE_CHUNK_MORE)) {
            /* Sign extension: the bits above are all 0, so OR-ing in ones is a subtraction. */
            if (c & ORACLE_CHUNK_SIGN)
                x -= (int64_t)1 << (ORACLE_CHUNK_BITS * (k + 1));
            *ps = s;
            *out = x;
            return 0;
        }
    }
    return -1;
}

static int oracle_from_chars(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, rle_mask *out) {
    *out = (rle_mask){.h = h, .w = w, .m = 0, .cnts = NULL};
    const char *end = s + len;
    uint32_t *cnts = malloc((len ? len : 1) * sizeof *cnts); /* at least a character a run */
    if (!cnts)
        return -1;
    uint64_t sum = 0, total = (uint64_t)h * w;
    size_t m = 0;
    while (s < end) {
        int64_t x;
        if (oracle_get_value(&s, end, json_escaped, &x) != 0)
            goto fail;
        if (m > 2)
            x += cnts[m - 2];
        if (x < 0 || x > UINT32_MAX || (sum += (uint64_t)x) > total)
            goto fail;
        cnts[m++] = (uint32_t)x;
    }
    if (sum != total)
        goto fail;
    out->cnts = m ? cnts : NULL;
    out->m = m;
    if (!m)
        free(cnts);
    return 0;
fail:
    free(cnts);
    return -1;
}

static int oracle_chars_area(const char *s, size_t len, int json_escaped, uint32_t h, uint32_t w, uint64_t *area) {
    const char *end = s + len;
    uint64_t sum = 0, total = (uint64_t)h * w, ones = 0;
    int64_t before_last = 0, last = 0; /* runs m-2 and m-1: the deltas' bases */
    for (size_t m = 0; s < end; m++) {
        int64_t x;
        if (oracle_get_value(&s, end, json_escaped, &x) != 0)
            return -1;
        if (m > 2)
            x += before_last;
        if (x < 0 || x > UINT32_MAX || (sum += (uint64_t)x) > total)
            return -1;
        ones += m % 2 ? (uint64_t)x : 0;
        before_last = last, last = x;
    }
    if (sum != total)
        return -1;
    *area = ones;
    return 0;
}

#endif
