/* unit_mmdet_v1.c: mmdetection v1's +1 box conventions (HTC's numerics=mmdet_v1) as
 * operators, against cases computed by hand in the comments (no runnable v1 reference
 * exists): delta2bbox and its inverse bbox2delta, RoIAlign with the box end at
 * (x2 + 1) * scale, NMS with +1 areas, map_roi_levels with +1 sizes, the anchors
 * (centred at (stride - 1) / 2, +1 sizes, rounded); each beside the
 * mmdetection 3.x value, so that a case tells the two apart. */
#include "../model/nn/nn.h"
#include "check.h"

#include <math.h>
#include <string.h>

static int near(float a, float b) { return fabsf(a - b) < 1e-4f; }

static void test_decode(check_tally *t) {
    const float prior[4] = {10, 20, 29, 39}, zero[4] = {0}, one[4] = {1, 1, 1, 1}, clip = 16.0f / 1000.0f;
    float out[4];
    /* v1: pw = 29 - 10 + 1 = 20, px = 19.5; dx = 0.1 moves the centre 2 px: 21.5 -+ 10 -+ 0.5
     * = 12, 31; 3.x: pw = 19, centre 21.4, 11.9 .. 30.9 */
    float d[4] = {1, 0, 0, 0}, stds[4] = {0.1f, 0.1f, 0.2f, 0.2f};
    nn_mmdet_decode(prior, d, zero, stds, clip, 100, 100, 1, out);
    CHECK(t, near(out[0], 12) && near(out[2], 31) && near(out[1], 20) && near(out[3], 39));
    nn_mmdet_decode(prior, d, zero, stds, clip, 100, 100, 0, out);
    CHECK(t, near(out[0], 11.9f) && near(out[2], 30.9f));
    /* dw = log 2: v1 gw = 40, 19.5 - 20 + 0.5 = 0 .. 19.5 + 20 - 0.5 = 39, clipped at
     * img_w - 1 = 34; 3.x gw = 38: 0.5 .. 38.5, clipped at img_w = 35 */
    float dw[4] = {0, 0, (float)log(2.0), 0};
    nn_mmdet_decode(prior, dw, zero, one, clip, 35, 100, 1, out);
    CHECK(t, near(out[0], 0) && near(out[2], 34));
    nn_mmdet_decode(prior, dw, zero, one, clip, 35, 100, 0, out);
    CHECK(t, near(out[0], 0.5f) && near(out[2], 35));
    /* v1's bbox2delta (written here from its definition) then delta2bbox gives the box back */
    const float gt[4] = {12.5f, 22, 40, 33}, means[4] = {0.01f, -0.02f, 0.03f, 0};
    float pw = prior[2] - prior[0] + 1, ph = prior[3] - prior[1] + 1;
    float gw = gt[2] - gt[0] + 1, gh = gt[3] - gt[1] + 1;
    float enc[4] = {((gt[0] + gt[2]) * 0.5f - (prior[0] + prior[2]) * 0.5f) / pw,
                    ((gt[1] + gt[3]) * 0.5f - (prior[1] + prior[3]) * 0.5f) / ph, logf(gw / pw), logf(gh / ph)};
    for (int k = 0; k < 4; k++)
        enc[k] = (enc[k] - means[k]) / stds[k];
    nn_mmdet_decode(prior, enc, means, stds, clip, 100, 100, 1, out);
    CHECK(t, near(out[0], gt[0]) && near(out[1], gt[1]) && near(out[2], gt[2]) && near(out[3], gt[3]));
    nn_mmdet_decode(prior, enc, means, stds, clip, 100, 100, 0, out);
    CHECK(t, !near(out[0], gt[0]) && !near(out[2], gt[2])); /* 3.x's decode of v1 deltas is off */
}

/* On a ramp f(y, x) = x bilinear sampling is exact: a bin is the mean of its samples' x. */
static void test_roi_align(check_tally *t) {
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    nn_tensor f, out;
    nn_tensor_new(&a, NN_DEVICE_CPU, 1, 1, 10, 10, &f, &err);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++)
            f.data[y * 10 + x] = (float)x;
    const nn_backend *be = nn_cpu_backend(0, &err);
    float box[4] = {0, 0, 7, 7}, scale = 1;
    int level = 0;
    /* v1: start 0, end (7 + 1) = 8, 2 bins of 4, 2 samples at 1, 3 | 5, 7: 2, 6 */
    nn_roi_align_params p = {2, 2, 2, 1, 1};
    CHECK(t, be->roi_align(&a, &f, &scale, box, &level, 1, &p, &out, &err) == 0);
    CHECK(t, near(out.data[0], 2) && near(out.data[1], 6) && near(out.data[3], 6));
    /* 3.x (aligned): -0.5 .. 6.5, bins of 3.5, samples 0.375 (read as 0.375), 2.125: 1.25 */
    p.plus_one = 0;
    be->roi_align(&a, &f, &scale, box, &level, 1, &p, &out, &err);
    CHECK(t, near(out.data[0], 1.25f));
    /* v1 at scale 1/2: 0 .. 4, bins of 2, samples 0.5, 1.5 | 2.5, 3.5: 1, 3 */
    p.plus_one = 1, scale = 0.5f;
    be->roi_align(&a, &f, &scale, box, &level, 1, &p, &out, &err);
    CHECK(t, near(out.data[0], 1) && near(out.data[1], 3));
    /* v1 adaptive sampling: box (2, 0, 5, 3) at scale 1 is 2 .. 6, ceil(4 / 2) = 2 samples
     * per bin: 2.5, 3.5 | 4.5, 5.5: 3, 5 */
    float box2[4] = {2, 0, 5, 3};
    p.sampling_ratio = 0, scale = 1;
    be->roi_align(&a, &f, &scale, box2, &level, 1, &p, &out, &err);
    CHECK(t, near(out.data[0], 3) && near(out.data[1], 5));
    nn_arena_release(&a);
}

static void test_nms(check_tally *t) {
    /* (0,0,9,9) and (5,0,14,9): v1 areas 10 x 10 = 100, overlap 5 x 10 = 50, IoU 50 / 150
     * = 1/3; 3.x areas 81, overlap 4 x 9 = 36, IoU 36 / 126 = 0.286. At 0.3 v1 drops the
     * second, 3.x keeps it. Touching boxes (0,0,4,4), (4,0,8,4): v1 overlap 1 x 5, IoU
     * 5 / 45 = 0.111 > 0.1; 3.x 0. */
    const float boxes[8] = {0, 0, 9, 9, 5, 0, 14, 9}, touch[8] = {0, 0, 4, 4, 4, 0, 8, 4};
    int order[2] = {0, 1}, keep[2];
    unsigned char supp[2];
    CHECK(t, nn_nms_px(boxes, order, 2, 0.3f, 1, supp, keep) == 1 && keep[0] == 0);
    CHECK(t, nn_nms_px(boxes, order, 2, 0.3f, 0, supp, keep) == 2);
    CHECK(t, nn_nms_px(boxes, order, 2, 0.34f, 1, supp, keep) == 2);
    CHECK(t, nn_nms_px(touch, order, 2, 0.1f, 1, supp, keep) == 1);
    CHECK(t, nn_nms_px(touch, order, 2, 0.1f, 0, supp, keep) == 2);
    /* batched: the same pair in two classes is not compared across classes */
    nn_arena a;
    avps_error err;
    nn_arena_init(&a);
    const float scores[2] = {0.9f, 0.8f};
    int same[2] = {0, 0}, diff[2] = {0, 1}, kept[2];
    CHECK(t, nn_batched_nms_px(&a, boxes, scores, same, 2, 0.3f, 1, 10, kept, &err) == 1);
    CHECK(t, nn_batched_nms_px(&a, boxes, scores, diff, 2, 0.3f, 1, 10, kept, &err) == 2);
    nn_arena_release(&a);
}

static void test_levels(check_tally *t) {
    /* finest 56: (0,0,111,111) v1 sqrt(112 * 112) / 56 = 2: level 1; 3.x 111 / 56 < 2: 0.
     * (0,0,447,447): v1 448 / 56 = 8: 3; 3.x 7.98: 2. (0,0,54,54): v1 55 / 56 < 1: 0.
     * (0,0,2000,2000): clamped at 3. A point box (5,5,5,5): v1 size 1: 0. */
    const float b1[4] = {0, 0, 111, 111}, b2[4] = {0, 0, 447, 447}, b3[4] = {0, 0, 54, 54};
    const float b4[4] = {0, 0, 2000, 2000}, b5[4] = {5, 5, 5, 5}, b6[4] = {0, 0, 223, 111};
    CHECK(t, nn_mmdet_roi_level(b1, 56, 4, 1) == 1 && nn_mmdet_roi_level(b1, 56, 4, 0) == 0);
    CHECK(t, nn_mmdet_roi_level(b2, 56, 4, 1) == 3 && nn_mmdet_roi_level(b2, 56, 4, 0) == 2);
    CHECK(t, nn_mmdet_roi_level(b3, 56, 4, 1) == 0);
    CHECK(t, nn_mmdet_roi_level(b4, 56, 4, 1) == 3 && nn_mmdet_roi_level(b5, 56, 4, 1) == 0);
    /* 224 x 112: sqrt = 158.4, / 56 = 2.83: level 1 */
    CHECK(t, nn_mmdet_roi_level(b6, 56, 4, 1) == 1);
}

static void test_anchors(check_tally *t) {
    float a[4 * 2];
    /* stride 16, ratio 1, scale 8: w = h = 128; v1 centre 7.5, 7.5 -+ 63.5 = -56, 71;
     * 3.x centre 0: -64, 64 */
    const float one[1] = {1}, eight[1] = {8};
    nn_mmdet_base_anchors(16, eight, 1, one, 1, 1, a);
    CHECK(t, a[0] == -56 && a[1] == -56 && a[2] == 71 && a[3] == 71);
    nn_mmdet_base_anchors(16, eight, 1, one, 1, 0, a);
    CHECK(t, a[0] == -64 && a[1] == -64 && a[2] == 64 && a[3] == 64);
    /* stride 4, ratio 0.5, scale 8: w = 32 sqrt 2 = 45.2548, h = 16 sqrt 2 = 22.6274; v1
     * centre 1.5: x 1.5 -+ 22.1274 = -20.63, 23.63 -> -21, 24; y 1.5 -+ 10.8137 = -9.31,
     * 12.31 -> -9, 12; 3.x unrounded -+ 22.6274, 11.3137 */
    const float half[1] = {0.5f};
    nn_mmdet_base_anchors(4, eight, 1, half, 1, 1, a);
    CHECK(t, a[0] == -21 && a[1] == -9 && a[2] == 24 && a[3] == 12);
    nn_mmdet_base_anchors(4, eight, 1, half, 1, 0, a);
    CHECK(t, near(a[0], -22.6274f) && near(a[1], -11.3137f) && near(a[2], 22.6274f) && near(a[3], 11.3137f));
    /* torch.round is half to even: stride 8, scale 1.875 (w = 15), centre 3.5 -+ 7 = -3.5,
     * 10.5 -> -4, 10 (half away from zero would give 11); then scale 8: 3.5 -+ 31.5 */
    const float scales[2] = {1.875f, 8};
    nn_mmdet_base_anchors(8, scales, 2, one, 1, 1, a);
    CHECK(t, a[0] == -4 && a[2] == 10 && a[4] == -28 && a[6] == 35);
}

int main(void) {
    check_tally t = {0, 0};
    test_decode(&t);
    test_roi_align(&t);
    test_nms(&t);
    test_levels(&t);
    test_anchors(&t);
    return check_report(&t);
}
