/* unit_paste.c: mask_paste in each convention against hand-worked bilinear weights,
 * and its edges: boxes partly or wholly outside the image, degenerate and inverted boxes,
 * refused arguments. Pixels outside the pasted rectangle must keep their sentinel. */
#include "../data/data.h"
#include "check.h"

#include <math.h>
#include <stddef.h>

#define SENTINEL (-1.0f)

/* A 2 x 2 mask with dyadic values, so every expected probability is exact. */
static const float MASK_A[4] = {1.0f, 0.5f, 0.25f, 0.0f};
/* The "X" mask: 0 1 / 1 0. */
static const float MASK_X[4] = {0.0f, 1.0f, 1.0f, 0.0f};

static void fill(float *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = SENTINEL;
}

/* 1 when every pixel outside rows [y0, y1) x columns [x0, x1) still holds the sentinel. */
static int outside_untouched(const float *out, int h, int w, int y0, int y1, int x0, int x1) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if ((y < y0 || y >= y1 || x < x0 || x >= x1) && out[y * w + x] != SENTINEL)
                return 0;
    return 1;
}

/* 1 when the rows x cols block at (y0, x0) equals tab exactly. */
static int block_equals(const float *out, int w, int y0, int x0, int rows, int cols, const float *tab) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (out[(y0 + r) * w + x0 + c] != tab[r * cols + c])
                return 0;
    return 1;
}

/* Expected value from per-axis weights on mask rows / columns 0 and 1. */
static float weighted(const float m[4], const double wy[2], const double wx[2]) {
    double v = 0.0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++)
            v += wy[r] * wx[c] * m[r * 2 + c];
    return (float)v;
}

/* 1 when out[y0 + i][x0 + j] == weighted(m, wt[i], wt[j]) for i, j < n. */
static int matches_weights(const float *out, int w, int y0, int x0, int n, const double (*wt)[2],
                           const float m[4]) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (out[(y0 + i) * w + x0 + j] != weighted(m, wt[i], wt[j]))
                return 0;
    return 1;
}

/* mmdet v1, X mask, box truncated to pixels 1..4: n = 4 samples of 2 cells, source
 * coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1), i.e. weights on
 * (cell 0, cell 1) of (1, 0), (.75, .25), (.25, .75), (0, 1); value = wy0 wx1 + wy1 wx0. */
static const float MMDET_X[16] = {
    0.0f,  0.25f,  0.75f,  1.0f,  /* */
    0.25f, 0.375f, 0.625f, 0.75f, /* */
    0.75f, 0.625f, 0.375f, 0.25f, /* */
    1.0f,  0.75f,  0.25f,  0.0f,
};

static void test_mmdet_hand(check_tally *t) {
    float out[36];
    fill(out, 36);
    const double box[4] = {1.7, 1.2, 4.9, 4.0}; /* truncates to 1, 1, 4, 4 */
    CHECK(t, mask_paste(MASK_X, 2, 2, box, PASTE_MMDET_V1, 6, 6, out) == 0);
    CHECK(t, block_equals(out, 6, 1, 1, 4, 4, MMDET_X));
    CHECK(t, outside_untouched(out, 6, 6, 1, 5, 1, 5));
}

static void test_mmdet_edges(check_tally *t) {
    float out[36];
    fill(out, 36);
    const double left[4] = {-2.5, -2.5, 1.5, 1.5}; /* truncation toward zero: -2..1, n = 4 */
    CHECK(t, mask_paste(MASK_X, 2, 2, left, PASTE_MMDET_V1, 6, 6, out) == 0);
    const float tl[4] = {0.375f, 0.25f, 0.25f, 0.0f}; /* samples 2, 3 of each axis */
    CHECK(t, block_equals(out, 6, 0, 0, 2, 2, tl));
    CHECK(t, outside_untouched(out, 6, 6, 0, 2, 0, 2));
    fill(out, 36);
    const double right[4] = {4.0, 4.0, 7.0, 7.0}; /* pixels 4..7, only 4 and 5 inside */
    CHECK(t, mask_paste(MASK_X, 2, 2, right, PASTE_MMDET_V1, 6, 6, out) == 0);
    const float br[4] = {0.0f, 0.25f, 0.25f, 0.375f};
    CHECK(t, block_equals(out, 6, 4, 4, 2, 2, br));
    CHECK(t, outside_untouched(out, 6, 6, 4, 6, 4, 6));
    fill(out, 36);
    const double inverted[4] = {4.0, 1.0, 2.0, 4.0}; /* w = max(2 - 4 + 1, 1) = 1 at x = 4 */
    CHECK(t, mask_paste(MASK_X, 2, 2, inverted, PASTE_MMDET_V1, 6, 6, out) == 0);
    const float col[4] = {0.5f, 0.5f, 0.5f, 0.5f}; /* one sample: the mean of both columns */
    CHECK(t, block_equals(out, 6, 1, 4, 4, 1, col));
    CHECK(t, outside_untouched(out, 6, 6, 1, 5, 4, 5));
}

/* torchvision, mask A padded to 4 x 4, box 2.25..5.75 scaled by (2 + 2) / 2 about its
 * centre 4: 0.5..7.5, truncated to 0..7, n = 8 samples of 4 padded cells at
 * 0.5 d - 0.25: weights on (mask cell 0, mask cell 1), the padding counting zero. */
static const double TV_WT[8][2] = {{0, 0},     {.25, 0},   {.75, 0}, {.75, .25},
                                   {.25, .75}, {0, .75},   {0, .25}, {0, 0}};

static void test_torchvision_hand(check_tally *t) {
    float out[64];
    fill(out, 64);
    const double box[4] = {2.25, 2.25, 5.75, 5.75};
    CHECK(t, mask_paste(MASK_A, 2, 2, box, PASTE_TORCHVISION, 8, 8, out) == 0);
    CHECK(t, matches_weights(out, 8, 0, 0, 8, TV_WT, MASK_A));
    CHECK(t, out[3 * 8 + 3] == 0.703125f); /* .75 .75 1 + .75 .25 .5 + .25 .75 .25 */
    CHECK(t, out[1 * 8 + 4] == 0.15625f);  /* .25 (.25 1 + .75 .5) */
    CHECK(t, out[0] == 0.0f);              /* padding row: written, zero */
}

static void test_torchvision_edges(check_tally *t) {
    float out[64];
    fill(out, 64);
    const double flat[4] = {3.0, 2.25, 3.0, 5.75}; /* zero width: one column at x = 3 */
    CHECK(t, mask_paste(MASK_A, 2, 2, flat, PASTE_TORCHVISION, 8, 8, out) == 0);
    CHECK(t, outside_untouched(out, 8, 8, 0, 8, 3, 4));
    CHECK(t, out[3 * 8 + 3] == 0.59375f); /* x sample 1.5: half of each column; .75 .75 + .25 .125 */
    fill(out, 64);
    const double inverted[4] = {5.0, 2.0, 3.0, 6.0};
    CHECK(t, mask_paste(MASK_A, 2, 2, inverted, PASTE_TORCHVISION, 8, 8, out) == 0);
    CHECK(t, outside_untouched(out, 8, 8, 0, 0, 0, 0));
    fill(out, 64);
    const double clipped[4] = {-1.0, -1.0, 2.5, 2.5}; /* expands to -2.75..4.25, truncated -2..4 */
    CHECK(t, mask_paste(MASK_A, 2, 2, clipped, PASTE_TORCHVISION, 8, 8, out) == 0);
    CHECK(t, outside_untouched(out, 8, 8, 0, 5, 0, 5));
    /* n = 7 from -2: pixel 0 is sample 2, at 4 (2.5) / 7 - 0.5 = 13 / 14 of padded cell 0 */
    double w0[2] = {13.0 / 14.0, 0.0};
    CHECK(t, fabsf(out[0] - weighted(MASK_A, w0, w0)) < 1e-6f);
}

/* The expansion is float32, as in torchvision: 66 - 45 * (11 / 9) is 11 there, but
 * 10.99999999999999 in double (UPSNet), which would truncate to 10. */
static void test_torchvision_float32_box(check_tally *t) {
    float out[130], ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    fill(out, 130);
    const double box[4] = {21.0, 0.0, 111.0, 1.0};
    CHECK(t, mask_paste(ones, 1, 9, box, PASTE_TORCHVISION, 1, 130, out) == 0);
    CHECK(t, outside_untouched(out, 1, 130, 0, 1, 11, 122));
    CHECK(t, out[11] == 0.0f && out[66] == 0.25f); /* rows: 2 samples of 3, the first at 0.25 */
}

/* detectron2, mask A, box 1..5 (4 px for 2 cells): pixel p samples (p + .5 - 1) / 4 * 2
 * - .5 = p / 2 - .75, non-zero for p in 0..5; weights on (cell 0, cell 1) with zero
 * padding beyond them. */
static const double D2_WT[6][2] = {{.25, 0}, {.75, 0}, {.75, .25}, {.25, .75}, {0, .75}, {0, .25}};

static void test_detectron2_hand(check_tally *t) {
    float out[49];
    fill(out, 49);
    const double box[4] = {1.0, 1.0, 5.0, 5.0};
    CHECK(t, mask_paste(MASK_A, 2, 2, box, PASTE_DETECTRON2, 7, 7, out) == 0);
    CHECK(t, matches_weights(out, 7, 0, 0, 6, D2_WT, MASK_A));
    CHECK(t, outside_untouched(out, 7, 7, 0, 6, 0, 6));
    CHECK(t, out[0] == 0.0625f);          /* .25 .25 1 */
    CHECK(t, out[2 * 7 + 2] == 0.703125f); /* .75 .75 1 + .75 .25 .5 + .25 .75 .25 */
}

static void test_detectron2_edges(check_tally *t) {
    float out[40];
    fill(out, 40);
    const float ones[2] = {1.0f, 1.0f};
    const double wide[4] = {10.0, 0.0, 30.0, 1.0}; /* 10 px a cell: the fringe reaches 5..34 */
    CHECK(t, mask_paste(ones, 1, 2, wide, PASTE_DETECTRON2, 1, 40, out) == 0);
    CHECK(t, outside_untouched(out, 1, 40, 0, 1, 5, 35));
    CHECK(t, fabsf(out[5] - 0.05f) < 1e-6f && fabsf(out[34] - 0.05f) < 1e-6f);
    CHECK(t, out[20] == 1.0f);
    fill(out, 40);
    const double flat[4] = {3.0, 0.0, 3.0, 1.0}, inverted[4] = {5.0, 0.0, 3.0, 1.0};
    CHECK(t, mask_paste(ones, 1, 2, flat, PASTE_DETECTRON2, 1, 40, out) == 0);
    CHECK(t, mask_paste(ones, 1, 2, inverted, PASTE_DETECTRON2, 1, 40, out) == 0);
    CHECK(t, outside_untouched(out, 1, 40, 0, 0, 0, 0));
    fill(out, 40);
    const double clipped[4] = {-3.0, 0.0, 1.0, 1.0}; /* 2 px a cell: pixels -4..1 sampled */
    CHECK(t, mask_paste(ones, 1, 2, clipped, PASTE_DETECTRON2, 1, 40, out) == 0);
    CHECK(t, outside_untouched(out, 1, 40, 0, 1, 0, 2));
    CHECK(t, out[0] == 0.75f && out[1] == 0.25f); /* samples 1.25, 1.75: cell 1 and padding */
}

static void test_outside_and_refusals(check_tally *t) {
    float out[36];
    fill(out, 36);
    const double far[4] = {20.0, 20.0, 30.0, 30.0}, before[4] = {-30.0, -30.0, -20.0, -20.0};
    const paste_convention all[3] = {PASTE_TORCHVISION, PASTE_DETECTRON2, PASTE_MMDET_V1};
    for (int c = 0; c < 3; c++) {
        CHECK(t, mask_paste(MASK_A, 2, 2, far, all[c], 6, 6, out) == 0);
        CHECK(t, mask_paste(MASK_A, 2, 2, before, all[c], 6, 6, out) == 0);
        CHECK(t, mask_paste(MASK_A, 2, 2, far, all[c], 0, 0, out) == 0);
    }
    CHECK(t, outside_untouched(out, 6, 6, 0, 0, 0, 0));
    const double ok[4] = {1, 1, 4, 4}, nan_box[4] = {1, 1, NAN, 4}, huge[4] = {1, 1, 1e300, 4};
    CHECK(t, mask_paste(NULL, 2, 2, ok, PASTE_MMDET_V1, 6, 6, out) == -1);
    CHECK(t, mask_paste(MASK_A, 0, 2, ok, PASTE_MMDET_V1, 6, 6, out) == -1);
    CHECK(t, mask_paste(MASK_A, 2, 2, nan_box, PASTE_DETECTRON2, 6, 6, out) == -1);
    CHECK(t, mask_paste(MASK_A, 2, 2, huge, PASTE_TORCHVISION, 6, 6, out) == -1);
    CHECK(t, mask_paste(MASK_A, 2, 2, ok, (paste_convention)7, 6, 6, out) == -1);
    CHECK(t, mask_paste(MASK_A, 2, 2, ok, PASTE_MMDET_V1, 6, 6, NULL) == -1);
    CHECK(t, outside_untouched(out, 6, 6, 0, 0, 0, 0));
}

int main(void) {
    check_tally t = {0, 0};
    test_mmdet_hand(&t);
    test_mmdet_edges(&t);
    test_torchvision_hand(&t);
    test_torchvision_edges(&t);
    test_torchvision_float32_box(&t);
    test_detectron2_hand(&t);
    test_detectron2_edges(&t);
    test_outside_and_refusals(&t);
    return check_report(&t);
}
