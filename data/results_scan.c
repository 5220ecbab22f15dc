/* results_scan.c: reads one COCO result object of the usual shape (image_id,
 * category_id, segmentation as a compressed RLE string, score, bbox) straight from the
 * text, with no tree, no allocation and no locale look-up per number. cJSON spends most
 * of a results load on its per-node mallocs, key compares and strtod; this reader is the
 * common case only: whatever it does not understand it hands back (returns 0), and the
 * caller reads that object with cJSON as before, so answers and error messages are
 * cJSON's. Numbers: strict JSON numbers only; the value is exact where Clinger's fast
 * path applies (at most 2^53 in the digits, a power of ten up to 22: one correctly
 * rounded multiply or divide, the same double strtod returns), strtod otherwise. */
#include "results_scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* cJSON copies at most 63 characters of a number before strtod; longer ones are its to
 * judge. */
#define NUMBER_MAX_CHARS 63

/* A strict JSON number at p: its value in *out and the end, or NULL. */
static const char *scan_number(const char *p, const char *end, double *out) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *start = p;
    int neg = p < end && *p == '-';
    uint64_t m = 0;
    int digits = 0, exact = 1; /* digits: significant ones taken into m */
    long e10 = 0;
    p += neg;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            if (digits < 19)
                m = 10 * m + (uint64_t)(*p - '0'), digits++;
            else
                exact = 0;
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        if (++p == end || !is_digit(*p))
            return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (m == 0 && *p == '0') { /* leading zeros of the fraction: only the exponent moves */
                e10--;
            } else if (digits < 19) {
                m = 10 * m + (uint64_t)(*p - '0'), digits++, e10--;
            } else {
                exact = 0;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        long x = 0;
        for (; p < end && is_digit(*p); p++)
            if ((x = 10 * x + (*p - '0')) > 100000)
                exact = 0, x = 100000;
        e10 += eneg ? -x : x;
    }
    if (p - start > NUMBER_MAX_CHARS)
        return NULL;
    if (exact && m == 0) {
        *out = neg ? -0.0 : 0.0;
    } else if (exact && m <= (uint64_t)1 << 53 && e10 >= -22 && e10 <= 22) {
        double v = (double)m;
        v = e10 < 0 ? v / pow10[-e10] : v * pow10[e10];
        *out = neg ? -v : v;
    } else {
        char buf[NUMBER_MAX_CHARS + 1], *stop;
        memcpy(buf, start, (size_t)(p - start));
        buf[p - start] = '\0';
        *out = strtod(buf, &stop);
        if (stop != buf + (p - start))
            return NULL;
    }
    return p;
}

/* A key at p ('"' ... '"' with no escape or control character): [*k, *k_end) and the
 * end, or NULL. */
static const char *scan_key(const char *p, const char *end, const char **k, size_t *k_len) {
    if (p == end || *p != '"')
        return NULL;
    const char *s = ++p;
    for (; p < end && *p != '"'; p++)
        if (*p == '\\' || (unsigned char)*p < 0x20)
            return NULL;
    if (p == end)
        return NULL;
    *k = s, *k_len = (size_t)(p - s);
    return p + 1;
}

static int key_is(const char *k, size_t k_len, const char *name) {
    return strlen(name) == k_len && memcmp(k, name, k_len) == 0;
}

/* x in each of 8 bytes */
#define BYTES(x) (UINT64_C(0x0101010101010101) * (x))

/* The counts string at p: no escape but "\\", no control character. The first quote
 * ends it unless a backslash before it escapes it, which is refused anyway; so memchr
 * finds the end, a loop without exits looks for control characters and backslashes 8
 * bytes at a time, and only strings with backslashes are walked to check their pairs. */
static const char *scan_counts(const char *p, const char *end, result_fields *f) {
    if (p == end || *p != '"')
        return NULL;
    const char *s = ++p, *q = memchr(s, '"', (size_t)(end - s));
    if (!q)
        return NULL;
    uint64_t control = 0, backslash = 0;
    const char *c = s;
    for (; q - c >= 8; c += 8) { /* 8 at a time: any byte < 0x20, any byte 0 after ^ '\\' */
        uint64_t v, e;
        memcpy(&v, c, 8);
        e = v ^ BYTES(0x5c);
        control |= (v - BYTES(0x20)) & ~v & BYTES(0x80);
        backslash |= (e - BYTES(0x01)) & ~e & BYTES(0x80);
    }
    for (; c < q; c++)
        control |= (unsigned char)*c < 0x20, backslash |= *c == '\\';
    if (control)
        return NULL;
    for (c = s; backslash && c < q; c++)
        if (*c == '\\' && (++c == q || *c != '\\')) /* a lone one: another escape, or the quote's */
            return NULL;
    f->counts = s, f->counts_len = (size_t)(q - s), f->counts_escaped = backslash != 0;
    return q + 1;
}

/* '[' n numbers ']' into v. */
static const char *scan_numbers(const char *p, const char *end, double *v, int n) {
    if (p == end || *p != '[')
        return NULL;
    for (int i = 0; i < n; i++) {
        p = skip_ws(p + 1, end);
        if (!(p = scan_number(p, end, &v[i])))
            return NULL;
        p = skip_ws(p, end);
        if (p == end || *p != (i + 1 < n ? ',' : ']'))
            return NULL;
    }
    return p + 1;
}

/* {"size": [H, W], "counts": "..."}, in either order. */
static const char *scan_segmentation(const char *p, const char *end, result_fields *f) {
    int seen = 0;
    if (p == end || *p != '{')
        return NULL;
    p = skip_ws(p + 1, end);
    for (;;) {
        const char *k;
        size_t k_len;
        if (!(p = scan_key(p, end, &k, &k_len)))
            return NULL;
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return NULL;
        p = skip_ws(p + 1, end);
        int bit = key_is(k, k_len, "size") ? 1 : key_is(k, k_len, "counts") ? 2 : 0;
        if (!bit || (seen & bit))
            return NULL;
        seen |= bit;
        if (!(p = bit == 1 ? scan_numbers(p, end, f->size, 2) : scan_counts(p, end, f)))
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == '}')
            return seen == 3 ? p + 1 : NULL;
        if (p == end || *p != ',')
            return NULL;
        p = skip_ws(p + 1, end);
    }
}

enum { HAS_IMAGE = 1, HAS_CATEGORY = 2, HAS_SCORE = 4, HAS_BBOX = 8, HAS_SEGMENTATION = 16 };

int result_scan(const char *begin, const char *end, result_fields *f) {
    const char *p = begin;
    int seen = 0;
    if (p == end || *p != '{')
        return 0;
    p = skip_ws(p + 1, end);
    for (;;) {
        const char *k;
        size_t k_len;
        if (!(p = scan_key(p, end, &k, &k_len)))
            return 0;
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return 0;
        p = skip_ws(p + 1, end);
        int bit = 0;
        if (key_is(k, k_len, "image_id"))
            bit = HAS_IMAGE, p = scan_number(p, end, &f->image_id);
        else if (key_is(k, k_len, "category_id"))
            bit = HAS_CATEGORY, p = scan_number(p, end, &f->category_id);
        else if (key_is(k, k_len, "score"))
            bit = HAS_SCORE, p = scan_number(p, end, &f->score);
        else if (key_is(k, k_len, "bbox"))
            bit = HAS_BBOX, p = scan_numbers(p, end, f->bbox, 4);
        else if (key_is(k, k_len, "segmentation"))
            bit = HAS_SEGMENTATION, p = scan_segmentation(p, end, f);
        if (!bit || !p || (seen & bit))
            return 0;
        seen |= bit;
        p = skip_ws(p, end);
        if (p < end && *p == '}') {
            p++;
            break;
        }
        if (p == end || *p != ',')
            return 0;
        p = skip_ws(p + 1, end);
    }
    int needed = HAS_IMAGE | HAS_CATEGORY | HAS_SCORE | HAS_SEGMENTATION;
    f->has_bbox = (seen & HAS_BBOX) != 0;
    return p == end && (seen & needed) == needed;
}
