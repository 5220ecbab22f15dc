/* fuzz_rle.c: the compressed RLE counts string (rle_from_string) and every RLE operation
 * on what it gives: area, bbox, to/from string, decode/encode, merge, IoU; and the fast
 * decoders (rle_from_chars, rle_from_chars_scratch, rle_chars_area, plain and as JSON
 * text) against the old one kept as an oracle. Input: h, w (one byte each, so decoding
 * stays small), then the string. */
#include "../../data/data.h"
#include "../rle_oracle.h"
#include "fuzz.h"

static uint64_t sum_runs(const rle_mask *r) {
    uint64_t s = 0;
    for (size_t i = 0; i < r->m; i++)
        s += r->cnts[i];
    return s;
}

static void check_ops(const rle_mask *r) {
    uint64_t n = (uint64_t)r->h * r->w;
    FUZZ_ASSERT(sum_runs(r) == n);
    uint64_t area = rle_area(r);
    FUZZ_ASSERT(area <= n);
    double bb[4];
    rle_bbox(r, bb);
    if (area > 0 || r->m < 2 || r->h == 0)
        FUZZ_ASSERT(bb[0] >= 0 && bb[1] >= 0 && bb[0] + bb[2] <= r->w && bb[1] + bb[3] <= r->h);
    else /* only empty runs of 1s: pycocotools' box starts at x = w, y = h and wraps */
        FUZZ_ASSERT(bb[0] == r->w && bb[1] == r->h && bb[2] == (uint32_t)(1 - r->w) && bb[3] == (uint32_t)(1 - r->h));

    /* to_string then from_string gives the same runs */
    char *s = rle_to_string(r);
    FUZZ_ASSERT(s);
    rle_mask back = {0};
    FUZZ_ASSERT(rle_from_string(s, r->h, r->w, &back) == 0);
    FUZZ_ASSERT(back.m == r->m && (r->m == 0 || memcmp(back.cnts, r->cnts, r->m * sizeof *r->cnts) == 0));
    free(s);
    rle_free(&back);

    /* decode then encode keeps the pixels */
    uint8_t *mask = malloc(n ? n : 1);
    FUZZ_ASSERT(mask);
    rle_decode(r, mask);
    uint64_t on = 0;
    for (uint64_t i = 0; i < n; i++)
        on += mask[i] != 0;
    FUZZ_ASSERT(on == area);
    rle_mask enc = {0};
    FUZZ_ASSERT(rle_encode(mask, r->h, r->w, &enc) == 0);
    FUZZ_ASSERT(rle_area(&enc) == area && sum_runs(&enc) == n);
    free(mask);

    /* merging a mask with itself (and its re-encoding) changes nothing */
    rle_mask pair[2] = {*r, enc}, u = {0}, x = {0};
    FUZZ_ASSERT(rle_merge(pair, 2, 0, &u) == 0 && rle_area(&u) == area);
    FUZZ_ASSERT(rle_merge(pair, 2, 1, &x) == 0 && rle_area(&x) == area);
    double iou = rle_iou(r, &enc, 0);
    FUZZ_ASSERT(area ? iou == 1.0 : iou == 0.0);
    FUZZ_ASSERT(rle_iou(r, &enc, 1) == (area ? 1.0 : 0.0));
    rle_free(&u);
    rle_free(&x);
    rle_free(&enc);
}

/* Every fast decoder gives the oracle's verdict, runs and area on the len bytes at s. */
static void check_decoders(const char *s, size_t len, int esc, uint32_t h, uint32_t w) {
    rle_mask want, got, view;
    rle_scratch sc = {0};
    uint64_t want_area = 0, got_area = 0;
    int rc = oracle_from_chars(s, len, esc, h, w, &want);
    FUZZ_ASSERT(oracle_chars_area(s, len, esc, h, w, &want_area) == rc);
    FUZZ_ASSERT(rle_from_chars(s, len, esc, h, w, &got) == rc);
    FUZZ_ASSERT(rle_from_chars_scratch(s, len, esc, h, w, &sc, &view) == rc);
    FUZZ_ASSERT(rle_chars_area(s, len, esc, h, w, &got_area) == rc);
    FUZZ_ASSERT(got.m == want.m && view.m == want.m && (rc != 0 || got_area == want_area));
    FUZZ_ASSERT(want.m == 0 || (memcmp(got.cnts, want.cnts, want.m * sizeof *want.cnts) == 0 &&
                                memcmp(view.cnts, want.cnts, want.m * sizeof *want.cnts) == 0));
    rle_free(&want);
    rle_free(&got);
    rle_scratch_free(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint32_t h = data[0], w = data[1];
    char *s = malloc(size - 1);
    FUZZ_ASSERT(s);
    memcpy(s, data + 2, size - 2);
    s[size - 2] = 0;
    check_decoders((const char *)data + 2, size - 2, 0, h, w);
    check_decoders((const char *)data + 2, size - 2, 1, h, w);
    rle_mask r = {0};
    if (rle_from_string(s, h, w, &r) == 0) {
        FUZZ_ASSERT(r.h == h && r.w == w);
        check_ops(&r);
        rle_free(&r);
    }
    /* the same bytes as uncompressed counts (2 bytes each) */
    size_t m = (size - 2) / 2;
    uint32_t *counts = malloc((m ? m : 1) * sizeof *counts);
    FUZZ_ASSERT(counts);
    for (size_t i = 0; i < m; i++)
        counts[i] = (uint32_t)data[2 + 2 * i] | (uint32_t)data[3 + 2 * i] << 8;
    if (rle_from_counts(counts, m, h, w, &r) == 0) {
        check_ops(&r);
        rle_free(&r);
    }
    free(counts);
    free(s);
    return 0;
}
