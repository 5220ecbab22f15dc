/* forward.c: UPSNet's forward pass on one image, top to bottom in the order the data
 * flows (upsnet/models/resnet_upsnet.py at inference): preprocessing, ResNet, FPN,
 * semantic head, RPN and proposals, box head and detections, mask head, panoptic head.
 * Everything lives in the network's arena, reset at the start of each image. With a
 * dump folder every stage is written under the answer keys' names (input.npy,
 * res2.npy, ... pan_labels.npy), so that tests compare file by file. */
#include "upsnet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int ups_dump(const upsnet *u, const char *name, npy_dtype dtype, int ndim, const size_t *shape, const void *data,
             avps_error *err) {
    if (!u->dump_dir)
        return 0;
    npy_array arr;
    if (npy_array_alloc(&arr, dtype, ndim, shape, err) != 0)
        return -1;
    if (arr.nbytes)
        memcpy(arr.data, data, arr.nbytes);
    char file[1024];
    snprintf(file, sizeof file, "%s/%s.npy", u->dump_dir, name);
    int rc = npy_write(file, &arr, 0, err);
    npy_array_release(&arr);
    return rc;
}

int ups_dump_tensor(const upsnet *u, const char *name, const nn_tensor *t, avps_error *err) {
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    return ups_dump(u, name, NPY_F32, 4, shape, t->data, err);
}

static int dump_trunk(upsnet *u, const ups_image *im, avps_error *err) {
    static const char *res_names[UPS_STAGES] = {"res2", "res3", "res4", "res5"};
    static const char *fpn_names[UPS_LEVELS] = {"fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6"};
    float info[3] = {(float)im->img_h, (float)im->img_w, im->im_scale_f32};
    size_t s_info[2] = {1, 3};
    if (ups_dump_tensor(u, "input", &im->input, err) || ups_dump(u, "im_info", NPY_F32, 2, s_info, info, err))
        return -1;
    for (int l = 0; l < UPS_STAGES; l++)
        if (ups_dump_tensor(u, res_names[l], &im->res[l], err))
            return -1;
    for (int l = 0; l < UPS_LEVELS; l++)
        if (ups_dump_tensor(u, fpn_names[l], &im->fpn[l], err))
            return -1;
    return 0;
}

/* The semantic stages as the keys hold them: the logits, the upsampled logits' max and
 * top-1 minus top-2 margin, all classes on the input's two 16 x 16 corners, the
 * argmax, and the argmax at the image's size (crop to the resized image, cv2 nearest
 * resize by 1 / im_scale in float32, as upsnet_end2end_test.py). */
static int dump_semantic(upsnet *u, const ups_image *im, avps_error *err) {
    if (!u->dump_dir)
        return 0;
    nn_arena *a = &u->arena;
    nn_arena_mark mark = nn_arena_get_mark(a);
    const nn_tensor *up = &im->sem_up;
    int H = up->h, W = up->w, C = up->c, k = 16 < H && 16 < W ? 16 : (H < W ? H : W);
    size_t hw = (size_t)H * W;
    float *mx = nn_arena_alloc(a, hw * sizeof(float), err), *margin = nn_arena_alloc(a, hw * sizeof(float), err);
    float *tl = nn_arena_alloc(a, (size_t)C * k * k * sizeof(float), err);
    float *br = nn_arena_alloc(a, (size_t)C * k * k * sizeof(float), err);
    if (!mx || !margin || !tl || !br)
        return -1;
    for (size_t p = 0; p < hw; p++) {
        float t1 = -INFINITY, t2 = -INFINITY;
        for (int c = 0; c < C; c++) {
            float v = up->data[(size_t)c * hw + p];
            if (v > t1)
                t2 = t1, t1 = v;
            else if (v > t2)
                t2 = v;
        }
        mx[p] = t1, margin[p] = t1 - t2;
    }
    for (int c = 0; c < C; c++)
        for (int y = 0; y < k; y++)
            for (int x = 0; x < k; x++) {
                tl[((size_t)c * k + y) * k + x] = up->data[(size_t)c * hw + (size_t)y * W + x];
                br[((size_t)c * k + y) * k + x] = up->data[(size_t)c * hw + (size_t)(H - k + y) * W + (W - k + x)];
            }
    double f = 1.0 / (double)im->im_scale_f32;
    int ow = (int)nearbyint(im->img_w * f), oh = (int)nearbyint(im->img_h * f);
    uint8_t *img = nn_arena_alloc(a, (size_t)(ow > 0 ? ow : 1) * (oh > 0 ? oh : 1), err);
    if (!img)
        return -1;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            img[(size_t)y * ow + x] = im->sem_labels[(size_t)ups_cv_nearest_index(y, f, im->img_h) * W +
                                                     ups_cv_nearest_index(x, f, im->img_w)];
    size_t s_map[2] = {(size_t)H, (size_t)W}, s_crop[3] = {(size_t)C, (size_t)k, (size_t)k};
    size_t s_img[2] = {(size_t)oh, (size_t)ow};
    int rc = ups_dump_tensor(u, "sem_logits", &im->sem_logits, err) ||
             ups_dump(u, "sem_logits_up_max", NPY_F32, 2, s_map, mx, err) ||
             ups_dump(u, "sem_margin", NPY_F32, 2, s_map, margin, err) ||
             ups_dump(u, "sem_logits_up_crop_tl", NPY_F32, 3, s_crop, tl, err) ||
             ups_dump(u, "sem_logits_up_crop_br", NPY_F32, 3, s_crop, br, err) ||
             ups_dump(u, "sem_labels", NPY_U8, 2, s_map, im->sem_labels, err) ||
             ups_dump(u, "sem_labels_image", NPY_U8, 2, s_img, img, err);
    nn_arena_rewind(a, mark);
    return rc ? -1 : 0;
}

/* --semantic F.npy: the logits before the final upsampling, (1, classes, H/4, W/4) */
static int write_semantic(const upsnet *u, const ups_image *im, avps_error *err) {
    if (!u->semantic_path)
        return 0;
    const nn_tensor *t = &im->sem_logits;
    size_t shape[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    npy_array arr;
    if (npy_array_alloc(&arr, NPY_F32, 4, shape, err) != 0)
        return -1;
    memcpy(arr.data, t->data, arr.nbytes);
    int rc = npy_write(u->semantic_path, &arr, 0, err);
    npy_array_release(&arr);
    return rc;
}

static void print_timings(const upsnet *u) {
    if (u->timings)
        fprintf(stderr,
                "upsnet stages (s): preprocess %.3f, backbone %.3f (deformable %.3f), fpn %.3f, semantic %.3f "
                "(deformable %.3f), heads %.3f\n",
                u->t[UPS_T_PRE], u->t[UPS_T_BACKBONE], u->t[UPS_T_BACKBONE_DCN], u->t[UPS_T_FPN], u->t[UPS_T_SEMANTIC],
                u->t[UPS_T_SEMANTIC_DCN], u->t[UPS_T_HEADS]);
}

int upsnet_run(upsnet *u, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    nn_arena_reset(&u->arena);
    memset(res, 0, sizeof *res);
    memset(u->t, 0, sizeof u->t);
    ups_image im;
    memset(&im, 0, sizeof im);
    double t0 = ups_now();
    if (ups_preprocess(u, rgb, w, h, &im, err))
        return -1;
    u->t[UPS_T_PRE] = ups_now() - t0, t0 = ups_now();
    if (ups_backbone(u, &im, err))
        return -1;
    u->t[UPS_T_BACKBONE] = ups_now() - t0, t0 = ups_now();
    if (ups_fpn(u, &im, err))
        return -1;
    u->t[UPS_T_FPN] = ups_now() - t0;
    if (dump_trunk(u, &im, err))
        return -1;
    t0 = ups_now();
    if (ups_semantic(u, &im, err))
        return -1;
    u->t[UPS_T_SEMANTIC] = ups_now() - t0;
    if (dump_semantic(u, &im, err) || write_semantic(u, &im, err))
        return -1;
    res->mask_size = 28;
    res->paste = PASTE_TORCHVISION;
    print_timings(u);
    return 0;
}
