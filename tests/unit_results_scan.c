/* unit_results_scan.c: the fast reader of COCO result objects (data/results_scan.c)
 * against cJSON, the reader it stands in for: every number it reads has cJSON's value
 * to the bit (hand-picked edge cases and 200,000 generated ones in every printf form),
 * counts strings come back as they are in the text, and every object outside its shape or outside
 * strict JSON is handed back (0) for cJSON to read or refuse. */
#include "../data/data.h"
#include "../data/results_scan.h" /* white-box: private to data/ */
#include "check.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int scan_text(const char *text, result_fields *f) {
    return result_scan(text, text + strlen(text), f);
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The score NUM read both ways; 1 when result_scan takes it and agrees with cJSON. */
static int score_agrees(const char *num) {
    char text[512];
    snprintf(text, sizeof text,
             "{\"image_id\":1,\"category_id\":2,\"segmentation\":{\"size\":[4,5],\"counts\":\"04\"},\"score\":%s}", num);
    result_fields f = {0};
    cJSON *a = cJSON_Parse(text);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(a, "score");
    int taken = scan_text(text, &f);
    /* longer numbers are cJSON's to judge (it reads 63 characters of one) */
    int ok = strlen(num) > 63 ? !taken : a && cJSON_IsNumber(s) && taken && same_bits(f.score, s->valuedouble);
    if (!ok)
        fprintf(stderr, "score %s: scan %.17g, cJSON %.17g\n", num, f.score, s ? s->valuedouble : 0.0);
    cJSON_Delete(a);
    return ok;
}

static void test_numbers(check_tally *t) {
    static const char *edge[] = {"0", "-0", "0.0", "-0.0", "0e5", "-0E-5", "1", "-1", "0.315905", "123.0",
                                 "9007199254740992", "9007199254740993", "18446744073709551616",
                                 "1234567890123456789012", "0.1", "0.30000000000000004", "1e22", "1e23",
                                 "1e-22", "1e-23", "2.2250738585072014e-308", "4.9e-324", "1e-400", "1e400",
                                 "1.7976931348623157e308", "123456789012345.6", "0.000001234", "1E+2",
                                 "5e-1", "100000000000000000000000e-30"};
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        CHECK(t, score_agrees(edge[i]));
    uint64_t x = 0x9e3779b97f4a7c15u;
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        uint64_t bits = x;
        if (i % 3 == 0) { /* any finite double */
            memcpy(&v, &bits, sizeof v);
            if (v != v || v - v != 0)
                continue;
        } else { /* scores and pixel coordinates */
            v = (double)(x >> 11) / (double)((uint64_t)1 << 53) * (i % 3 == 1 ? 1.0 : 4096.0);
        }
        char num[400];
        static const char *form[] = {"%.17g", "%.16g", "%.15g", "%.6f", "%.3f", "%.0f", "%.10e", "%.2e", "%g"};
        snprintf(num, sizeof num, form[(x >> 3) % 9], v);
        bad += !score_agrees(num);
    }
    CHECK(t, bad == 0);
}

static void test_fields(check_tally *t) {
    result_fields f;
    const char *text = "{ \"score\" : 0.5 ,\n\t\"bbox\":[1.5, 2, 3e0, 4],\r\"segmentation\": {\"counts\": \"a\\\\b\","
                       " \"size\": [ 480 , 640 ]}, \"category_id\": 18, \"image_id\": -7 }";
    CHECK(t, scan_text(text, &f) == 1);
    CHECK(t, f.image_id == -7 && f.category_id == 18 && f.score == 0.5 && f.has_bbox);
    CHECK(t, f.bbox[0] == 1.5 && f.bbox[1] == 2 && f.bbox[2] == 3 && f.bbox[3] == 4);
    CHECK(t, f.size[0] == 480 && f.size[1] == 640);
    CHECK(t, f.counts_len == 4 && memcmp(f.counts, "a\\\\b", 4) == 0 && f.counts_escaped);
    const char *no_box = "{\"image_id\":1,\"category_id\":2,\"segmentation\":{\"size\":[4,5],\"counts\":\"04\"},"
                         "\"score\":1}";
    CHECK(t, scan_text(no_box, &f) == 1 && !f.has_bbox && f.counts_len == 2 && memcmp(f.counts, "04", 2) == 0 &&
                 !f.counts_escaped);
}

/* Objects outside the shape or outside strict JSON: all handed back to cJSON. */
static void test_deferred(check_tally *t) {
    static const char *seg = "\"segmentation\":{\"size\":[4,5],\"counts\":\"04\"}";
    static const char *rest[] = {
        "\"image_id\":1,\"category_id\":2,\"score\":1,\"score\":2",       /* a key twice */
        "\"image_id\":1,\"category_id\":2,\"score\":1,\"area\":3",        /* another key */
        "\"image_id\":1,\"category_id\":2",                               /* no score */
        "\"image_id\":1,\"score\":1",                                     /* no category */
        "\"image_id\":01,\"category_id\":2,\"score\":1",                  /* leading zero */
        "\"image_id\":1.,\"category_id\":2,\"score\":1",                  /* no fraction digits */
        "\"image_id\":.5,\"category_id\":2,\"score\":1",
        "\"image_id\":+1,\"category_id\":2,\"score\":1",
        "\"image_id\":1e,\"category_id\":2,\"score\":1",
        "\"image_id\":NaN,\"category_id\":2,\"score\":1",
        "\"image_id\":\"1\",\"category_id\":2,\"score\":1",               /* a string */
        "\"image_id\":null,\"category_id\":2,\"score\":1",
        "\"image_id\":1,\"category_id\":2,\"score\":1,",                  /* trailing comma */
        "\"image_id\":1,\"category_id\":2,\"score\":1,\"bbox\":[1,2,3]",  /* 3 numbers */
        "\"image_id\":1,\"category_id\":2,\"score\":1,\"bbox\":[1,2,3,4,5]",
        "\"image_id\":1,\"category_id\":2,\"score\":1\x0b",               /* not JSON whitespace */
        "\"image\\u005fid\":1,\"category_id\":2,\"score\":1",             /* an escaped key */
        ("\"image_id\":1,\"category_id\":2,\"score\":"
         "1.000000000000000000000000000000000000000000000000000000000000000000001"), /* over 63 characters */
    };
    char text[512];
    result_fields f;
    for (size_t i = 0; i < sizeof rest / sizeof *rest; i++) {
        snprintf(text, sizeof text, "{%s,%s}", seg, rest[i]);
        int got = scan_text(text, &f);
        if (got)
            fprintf(stderr, "taken: %s\n", text);
        CHECK(t, got == 0);
    }
    static const char *whole[] = {
        "{}",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":[[1,2,3,4,5,6]]}",  /* polygons */
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":[20]}}",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5]}}",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"0\\u0034\"}}",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"0\\n\"}}",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"0\t4\"}}",
        ("{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"04\","
         "\"size\":[4,5]}}"),
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"04\"}} ",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"04\"}",
        "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],\"counts\":\"04",
    };
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++) {
        int got = scan_text(whole[i], &f);
        if (got)
            fprintf(stderr, "taken: %s\n", whole[i]);
        CHECK(t, got == 0);
    }
}

/* rle_from_chars on a counts string as JSON text ("\\\\" for each backslash) gives the
 * runs of the string itself; a lone backslash is refused. */
static void test_escaped_counts(check_tally *t) {
    uint64_t x = 12345;
    int with_backslash = 0, bad = 0;
    for (int i = 0; i < 2000; i++) {
        uint32_t cnts[40], total = 0;
        for (int j = 0; j < 40; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            cnts[j] = (uint32_t)(x % 3000) + (j > 0);
            total += cnts[j];
        }
        rle_mask r, got;
        if (rle_from_counts(cnts, 40, 1, total, &r) != 0) {
            bad++;
            continue;
        }
        char *str = rle_to_string(&r), esc[1024];
        size_t n = 0;
        for (const char *c = str; c && *c && n + 2 < sizeof esc; c++) {
            if (*c == '\\')
                esc[n++] = '\\', with_backslash++;
            esc[n++] = *c;
        }
        uint64_t area = 0;
        bad += !str || rle_from_chars(esc, n, 1, 1, total, &got) != 0 || got.m != r.m ||
               memcmp(got.cnts, r.cnts, r.m * sizeof *r.cnts) != 0;
        bad += rle_chars_area(esc, n, 1, 1, total, &area) != 0 || area != rle_area(&r);
        bad += rle_chars_area(esc, n, 1, 1, total + 1, &area) != -1 || rle_chars_area(esc, n - 1, 1, 1, total, &area) != -1;
        rle_free(&got);
        rle_free(&r);
        free(str);
    }
    CHECK(t, bad == 0 && with_backslash > 100);
    rle_mask r;
    uint64_t area;
    CHECK(t, rle_from_chars("0\\", 2, 1, 1, 1, &r) == -1);        /* a lone backslash */
    CHECK(t, rle_chars_area("0\\", 2, 1, 1, 1, &area) == -1);
    CHECK(t, rle_from_chars("1", 1, 1, 1, 1, &r) == 0 && r.m == 1 && r.cnts[0] == 1); /* one 0 pixel */
    rle_free(&r);
}

/* The counts string's end as result_scan first read it, a character at a time: the
 * closing quote, or NULL for an escape other than "\\" or a control character. */
static const char *counts_end_oracle(const char *p, const char *end) {
    for (; p < end && *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            if (p + 1 == end || p[1] != '\\')
                return NULL;
            p++;
        }
    }
    return p < end ? p : NULL;
}

/* Random counts strings of alphabet characters, backslashes (paired or not), quotes
 * after a backslash, control characters and UTF-8 bytes, at every length around the
 * 8-byte steps: taken exactly when the one-character-at-a-time reading takes them. */
static void test_counts_strings(check_tally *t) {
    static const char pick[] = {'0', 'O', 'o', '\\', '\\', 0x01, 0x1f, ' ', (char)0xc3, (char)0xa9};
    uint64_t x = 99;
    int bad = 0, taken = 0, escaped = 0;
    for (int i = 0; i < 50000; i++) {
        char str[48], text[160];
        size_t n = 0, len;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        len = (size_t)(x % 40);
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned r = (unsigned)(x >> 20) % 64;
            str[n++] = r < sizeof pick ? pick[r] : r < 50 ? (char)('0' + r % 40) : '\\';
            if (str[n - 1] == '\\' && r % 5 == 0)
                str[n++] = '"'; /* an escaped quote: refused */
        }
        int k = snprintf(text, sizeof text,
                         "{\"image_id\":1,\"category_id\":2,\"score\":1,\"segmentation\":{\"size\":[4,5],"
                         "\"counts\":\"%.*s\"}}", (int)n, str);
        const char *open = strstr(text, "\"counts\":\"") + 10;
        const char *want = counts_end_oracle(open, text + k);
        int whole = want == open + n; /* the oracle takes the whole string */
        result_fields f = {0};
        int got = result_scan(text, text + k, &f);
        bad += got != whole;
        if (got && whole) {
            bad += f.counts != open || f.counts_len != n ||
                   f.counts_escaped != (memchr(str, '\\', n) != NULL);
            taken++;
            escaped += f.counts_escaped;
        }
    }
    CHECK(t, bad == 0 && taken > 1000 && escaped > 100);
}

int main(void) {
    check_tally t = {0};
    test_counts_strings(&t);
    test_numbers(&t);
    test_fields(&t);
    test_deferred(&t);
    test_escaped_counts(&t);
    return check_report(&t);
}
