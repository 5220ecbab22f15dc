/* fuzz_polygon.c: COCO polygon and box rasterisation (rle_from_polygon, rle_from_bbox),
 * the polygon's runs checked bit for bit against the rasteriser it replaced
 * (tests/poly_oracle.h). Input: h, w (one byte each), a mode byte, then coordinates: with
 * mode & 1 raw doubles (NaN, infinities, 1e300), else int16 / 4 (points in and around the
 * image). */
#include "../../data/data.h"
#include "../poly_oracle.h"
#include "fuzz.h"

static void check(const rle_mask *r, uint32_t h, uint32_t w) {
    uint64_t s = 0;
    for (size_t i = 0; i < r->m; i++)
        s += r->cnts[i];
    FUZZ_ASSERT(r->h == h && r->w == w && s == (uint64_t)h * w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3)
        return 0;
    uint32_t h = data[0], w = data[1];
    int raw = data[2] & 1;
    data += 3, size -= 3;
    size_t step = raw ? 8 : 2, n = size / step;
    double *xy = malloc((n ? n : 1) * sizeof *xy);
    FUZZ_ASSERT(xy);
    for (size_t i = 0; i < n; i++) {
        if (raw) {
            memcpy(&xy[i], data + 8 * i, 8);
        } else {
            int16_t v;
            memcpy(&v, data + 2 * i, 2);
            xy[i] = v / 4.0;
        }
    }
    rle_mask r = {0}, want = {0};
    int rc = rle_from_polygon(xy, n / 2, h, w, &r), rc_want = oracle_rle_from_polygon(xy, n / 2, h, w, 0, &want);
    FUZZ_ASSERT(rc == rc_want);
    if (rc == 0) {
        check(&r, h, w);
        FUZZ_ASSERT(r.m == want.m && !memcmp(r.cnts, want.cnts, r.m * sizeof *r.cnts));
        rle_free(&r);
        rle_free(&want);
    }
    if (n >= 4 && rle_from_bbox(xy, h, w, &r) == 0) {
        check(&r, h, w);
        rle_free(&r);
    }
    free(xy);
    return 0;
}
