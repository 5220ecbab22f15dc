/* unit_rle_decode.c: the fast decoder of compressed counts strings (rle_from_chars,
 * rle_from_chars_scratch, rle_chars_area) against the decoder it replaced, kept as an
 * oracle in rle_oracle.h: on random good strings, plain and as JSON text, and on every
 * kind of bad one (a character outside the alphabet, a string ending inside a value, a
 * value of too many chunks, a negative run, runs not adding up to h x w, a broken
 * escape), the same verdict, runs and area from all three. */
#include "rle_oracle.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t s;
} prng;

static uint64_t next(prng *g) { /* xorshift64* */
    g->s ^= g->s >> 12, g->s ^= g->s << 25, g->s ^= g->s >> 27;
    return g->s * 2685821657736338717ull;
}

static uint32_t below(prng *g, uint32_t n) { return (uint32_t)(next(g) % n); }

/* A run of a size that exercises one-, two- and many-chunk deltas and empty runs. */
static uint32_t random_run(prng *g, uint64_t left) {
    static const uint32_t limits[] = {1, 8, 40, 600, 20000, 3000000, UINT32_MAX};
    uint32_t lim = limits[below(g, sizeof limits / sizeof *limits)];
    uint64_t r = next(g) % ((uint64_t)lim + 1);
    return (uint32_t)(r < left ? r : left);
}

/* A well-formed string (caller frees) for random runs of an h x w mask. */
static char *random_good(prng *g, uint32_t *h, uint32_t *w) {
    uint32_t cnts[64];
    size_t m = 1 + below(g, 64);
    uint64_t sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += cnts[i] = random_run(g, UINT32_MAX - sum);
    if (sum == 0) /* a 0-pixel mask is the empty string, tested apart */
        cnts[0] = 1, sum = 1;
    *h = 1, *w = (uint32_t)sum;
    if (sum % 7 == 0 && sum > 7) /* another shape with the same count */
        *h = 7, *w = (uint32_t)(sum / 7);
    rle_mask r = {*h, *w, m, cnts};
    return rle_to_string(&r);
}

/* s as JSON text: each backslash doubled (caller frees). */
static char *json_escape(const char *s, size_t *len) {
    size_t n = strlen(s), k = 0;
    char *e = malloc(2 * n + 1);
    if (!e)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        e[k++] = s[i];
        if (s[i] == '\\')
            e[k++] = '\\';
    }
    e[k] = '\0';
    *len = k;
    return e;
}

/* The three fast decoders against the oracle on one string; 1 when all agree. Counts
 * the oracle's verdicts, so the test can show that it saw both. */
static int agrees(const char *s, size_t len, int esc, uint32_t h, uint32_t w, rle_scratch *sc, int tally[2]) {
    rle_mask want, got, view;
    uint64_t want_area = 0, got_area = 0;
    int want_rc = oracle_from_chars(s, len, esc, h, w, &want);
    int area_rc = oracle_chars_area(s, len, esc, h, w, &want_area);
    int got_rc = rle_from_chars(s, len, esc, h, w, &got);
    int view_rc = rle_from_chars_scratch(s, len, esc, h, w, sc, &view);
    int got_area_rc = rle_chars_area(s, len, esc, h, w, &got_area);
    int ok = want_rc == area_rc && got_rc == want_rc && view_rc == want_rc && got_area_rc == want_rc;
    if (ok && want_rc == 0) {
        ok = got.m == want.m && view.m == want.m && got.h == h && got.w == w && view.h == h && view.w == w &&
             got_area == want_area && rle_area(&want) == want_area &&
             (want.m == 0 ? !got.cnts && !view.cnts
                          : memcmp(got.cnts, want.cnts, want.m * sizeof *want.cnts) == 0 &&
                                memcmp(view.cnts, want.cnts, want.m * sizeof *want.cnts) == 0);
    }
    if (ok && want_rc != 0) /* a failure leaves the mask empty, as before */
        ok = got.m == 0 && !got.cnts && view.m == 0 && !view.cnts;
    tally[want_rc == 0]++;
    rle_free(&want);
    rle_free(&got);
    return ok;
}

/* Good strings, plain and escaped, at their size, one pixel off, and cut short. */
static void test_good(check_tally *t, prng *g, rle_scratch *sc) {
    int bad = 0, tally[2] = {0, 0}, escapes = 0;
    for (int i = 0; i < 4000; i++) {
        uint32_t h, w;
        char *s = random_good(g, &h, &w);
        size_t elen = 0;
        char *e = s ? json_escape(s, &elen) : NULL;
        if (!s || !e) {
            bad++;
        } else {
            size_t len = strlen(s);
            escapes += elen > len;
            bad += !agrees(s, len, 0, h, w, sc, tally);
            bad += !agrees(e, elen, 1, h, w, sc, tally);
            bad += !agrees(s, len, 0, h, w + 1, sc, tally); /* sum short of h x w */
            bad += !agrees(s, len, 0, 1, w - 1, sc, tally);  /* sum past it */
            bad += !agrees(s, below(g, (uint32_t)len), 0, h, w, sc, tally); /* truncated */
            bad += !agrees(e, below(g, (uint32_t)elen), 1, h, w, sc, tally);
        }
        free(s);
        free(e);
    }
    CHECK(t, bad == 0);
    CHECK(t, tally[0] > 1000 && tally[1] > 1000 && escapes > 100);
}

/* Good strings with one character replaced by any byte, or an extra chunk, or a value
 * made too long: bad characters, too-long values, negative runs, wrong sums. */
static void test_mutated(check_tally *t, prng *g, rle_scratch *sc) {
    int bad = 0, tally[2] = {0, 0};
    for (int i = 0; i < 4000; i++) {
        uint32_t h, w;
        char *s = random_good(g, &h, &w);
        if (!s) {
            bad++;
            continue;
        }
        size_t len = strlen(s);
        char buf[64 * 8 + 16];
        memcpy(buf, s, len);
        size_t at = below(g, (uint32_t)len);
        int kind = (int)below(g, 4);
        if (kind == 0) { /* any byte anywhere */
            buf[at] = (char)below(g, 256);
        } else if (kind == 1) { /* an alphabet character: usually a negative run or a wrong sum */
            buf[at] = (char)(48 + below(g, 64));
        } else if (kind == 2) { /* 6 to 8 continuation chunks before a last one */
            size_t k = 6 + below(g, 3);
            memmove(buf + at + k, buf + at, len - at);
            for (size_t j = 0; j < k; j++)
                buf[at + j] = (char)(48 + 32 + below(g, 32));
            len += k;
        } else { /* a lone backslash, in JSON text */
            buf[at] = '\\';
        }
        bad += !agrees(buf, len, kind == 3 || below(g, 2), h, w, sc, tally);
        bad += !agrees(buf, len, 0, h, w, sc, tally);
        free(s);
    }
    CHECK(t, bad == 0);
    CHECK(t, tally[0] > 1000 && tally[1] > 20); /* a few mutations still decode */
}

/* Strings of random alphabet characters and backslash pairs: mostly refused, each for
 * its own reason; the sizes are small, so that some add up. */
static void test_random_chars(check_tally *t, prng *g, rle_scratch *sc) {
    int bad = 0, tally[2] = {0, 0};
    for (int i = 0; i < 20000; i++) {
        char buf[40];
        size_t len = below(g, 40);
        for (size_t j = 0; j < len; j++)
            buf[j] = (char)(below(g, 8) == 0 ? '\\' : 48 + (below(g, 2) ? below(g, 32) : below(g, 64)));
        uint32_t h = 1 + below(g, 4), w = below(g, 40);
        bad += !agrees(buf, len, (int)below(g, 2), h, w, sc, tally);
    }
    CHECK(t, bad == 0);
    CHECK(t, tally[0] > 1000);
}

/* Hand-picked cases, each with the answer worked out (so these fail even if the oracle
 * and the fast decoder were wrong the same way), then checked against the oracle. */
static void test_cases(check_tally *t, rle_scratch *sc) {
    static const struct {
        const char *s;
        int esc;
        uint32_t h, w;
        int rc;
        uint64_t area;
    } cases[] = {
        {"", 0, 0, 0, 0, 0},           /* 0 pixels: no runs */
        {"", 0, 1, 1, -1, 0},          /* no runs for a pixel */
        {"1", 0, 1, 1, 0, 0},          /* one 0 pixel */
        {"01", 0, 1, 1, 0, 1},         /* one 1 pixel */
        {"322OO", 0, 3, 3, 0, 3},      /* 3 2 2 1 1 */
        {"322O", 0, 3, 3, -1, 0},      /* short of 9 */
        {"322OOO", 0, 3, 3, 0, 3},     /* then 1 - 1: an empty run */
        {"0O", 0, 1, 1, -1, 0},        /* -1: a negative run */
        {"`", 0, 1, 1, -1, 0},         /* a continuation chunk at the end: truncated */
        {"/", 0, 1, 1, -1, 0},         /* below the alphabet */
        {"p", 0, 1, 1, -1, 0},         /* above it (48 + 64) */
        {"\\1", 0, 1, 44, 0, 0},       /* backslash as a chunk: 12 + 1 * 32 = 44 */
        {"\\\\1", 1, 1, 44, 0, 0},     /* the same, as JSON text */
        {"\\1", 1, 1, 44, -1, 0},      /* a lone backslash in JSON text */
        {"\\", 1, 1, 1, -1, 0},        /* a lone backslash at the end */
        {"\\\\\\1", 1, 1, 44, -1, 0},  /* three backslashes */
        {"ooooooo0", 0, 1, 1, -1, 0},  /* 8 chunks: longer than any delta */
        {"ooooooO", 0, 1, 1, -1, 0},   /* 7 chunks, -1: negative */
        {"oooooo0", 0, 1, 1, -1, 0},   /* 7 chunks: 2^30 - 1, not 1 */
        {"oooooo0", 0, 1, 1073741823, 0, 0}, /* ... which is right for 2^30 - 1 pixels */
    };
    int tally[2] = {0, 0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = strlen(cases[i].s);
        rle_mask r;
        uint64_t area = 99;
        int rc = rle_from_chars(cases[i].s, len, cases[i].esc, cases[i].h, cases[i].w, &r);
        int area_rc = rle_chars_area(cases[i].s, len, cases[i].esc, cases[i].h, cases[i].w, &area);
        int ok = rc == cases[i].rc && area_rc == cases[i].rc && (rc != 0 || area == cases[i].area) &&
                 agrees(cases[i].s, len, cases[i].esc, cases[i].h, cases[i].w, sc, tally);
        if (!ok)
            fprintf(stderr, "case %zu \"%s\": rc %d area rc %d area %llu\n", i, cases[i].s, rc, area_rc,
                    (unsigned long long)area);
        CHECK(t, ok);
        rle_free(&r);
    }
}

int main(void) {
    check_tally t = {0, 0};
    prng g = {0x9e3779b97f4a7c15ull};
    rle_scratch sc = {0}; /* shared by every call, as eval shares it within an image */
    test_cases(&t, &sc);
    test_good(&t, &g, &sc);
    test_mutated(&t, &g, &sc);
    test_random_chars(&t, &g, &sc);
    rle_scratch_free(&sc);
    return check_report(&t);
}
