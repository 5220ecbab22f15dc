/* forward.c: UPSNet's forward pass on one image, top to bottom in the order the data
 * flows (upsnet/models/resnet_upsnet.py at inference): preprocessing, ResNet, FPN,
 * semantic head, RPN and proposals, box head and detections, mask head, panoptic head.
 * Everything lives in the network's arena, reset at the start of each image. With a
 * dump folder every stage is written under the answer keys' names (input.npy,
 * res2.npy, ... pan_labels.npy), so that tests compare file by file. */
#include "upsnet.h"
#include "heads.h"

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

/* ---- the heads (heads.h), dumped under the keys' names ------------------------------ */

static int dump_dets(const upsnet *u, const char *prefix, const ups_dets *d, const char *masks, avps_error *err) {
    char name[64];
    size_t n = (size_t)d->n, s2[2] = {n, 4}, s1[1] = {n}, s3[3] = {n, (size_t)d->mask_size, (size_t)d->mask_size};
    snprintf(name, sizeof name, "%s_boxes_resized", prefix);
    if (ups_dump(u, name, NPY_F32, 2, s2, d->boxes, err))
        return -1;
    snprintf(name, sizeof name, "%s_scores", prefix);
    if (ups_dump(u, name, NPY_F32, 1, s1, d->scores, err))
        return -1;
    snprintf(name, sizeof name, "%s_labels", prefix);
    return ups_dump(u, name, NPY_I32, 1, s1, d->labels, err) || ups_dump(u, masks, NPY_F32, 3, s3, d->masks, err) ? -1 : 0;
}

static int dump_rpn(const upsnet *u, const ups_proposals *p, avps_error *err) {
    char name[64];
    for (int l = 0; l < UPS_FPN_LEVELS; l++) {
        snprintf(name, sizeof name, "rpn_cls_prob_p%d", l + 2);
        if (ups_dump_tensor(u, name, &p->cls_prob[l], err))
            return -1;
        snprintf(name, sizeof name, "rpn_bbox_pred_p%d", l + 2);
        if (ups_dump_tensor(u, name, &p->bbox_pred[l], err))
            return -1;
    }
    size_t s2[2] = {(size_t)p->n, 4}, s1[1] = {(size_t)p->n};
    return ups_dump(u, "rpn_rois", NPY_F32, 2, s2, p->boxes, err) ||
                   ups_dump(u, "rpn_roi_scores", NPY_F32, 1, s1, p->scores, err)
               ? -1
               : 0;
}

static int dump_panoptic(const upsnet *u, const ups_panoptic_out *pan, avps_error *err) {
    size_t sk[1] = {(size_t)pan->k}, sl[2] = {(size_t)pan->h, (size_t)pan->w};
    size_t si[2] = {(size_t)pan->out_h, (size_t)pan->out_w}, s3[3] = {(size_t)pan->out_h, (size_t)pan->out_w, 2};
    return dump_dets(u, "pan_det", &pan->cand, "pan_mask_logits", err) ||
                   ups_dump(u, "pan_keep", NPY_I32, 1, sk, pan->keep, err) ||
                   ups_dump(u, "pan_cls_inds", NPY_I32, 1, sk, pan->cls_inds, err) ||
                   ups_dump(u, "pan_cls_probs", NPY_F32, 1, sk, pan->cls_probs, err) ||
                   ups_dump(u, "pan_labels", NPY_U8, 2, sl, pan->labels, err) ||
                   ups_dump(u, "pan_labels_image", NPY_U8, 2, si, pan->labels_image, err) ||
                   ups_dump(u, "panoptic_2ch", NPY_U8, 3, s3, pan->pan_2ch, err)
               ? -1
               : 0;
}

/* The panoptic result at the image's size (cv2's round(resized / scale) can differ by a
 * pixel: cropped, or void beyond it), segment id = COCO id x 1000 + instance number, the
 * areas counted on the final map. */
static int panoptic_result(upsnet *u, const ups_image *im, const ups_panoptic_out *pan, native_panoptic *out,
                           avps_error *err) {
    nn_arena *a = &u->arena;
    uint32_t W = im->orig_w, H = im->orig_h;
    uint32_t *ids = nn_arena_alloc(a, (size_t)W * H * sizeof(uint32_t), err);
    native_pan_segment *segs =
        nn_arena_alloc(a, (size_t)(pan->n_segments ? pan->n_segments : 1) * sizeof(native_pan_segment), err);
    if (!ids || !segs)
        return -1;
    for (int i = 0; i < pan->n_segments; i++) {
        const ups_pan_segment *s = &pan->segments[i];
        if (s->cls < 0 || s->cls >= u->num_seg_classes)
            return avps_fail(err, "native engine: panoptic segment of class %d", s->cls);
        segs[i] = (native_pan_segment){(uint32_t)u->seg_category[s->cls] * 1000u + (uint32_t)s->instance,
                                       u->seg_category[s->cls],
                                       s->instance > 0,
                                       0,
                                       {s->bbox[0], s->bbox[1], s->bbox[2], s->bbox[3]}};
    }
    for (uint32_t y = 0; y < H; y++)
        for (uint32_t x = 0; x < W; x++) {
            uint32_t id = 0;
            if ((int)y < pan->out_h && (int)x < pan->out_w) {
                const uint8_t *p = pan->pan_2ch + 2 * ((size_t)y * pan->out_w + x);
                if (p[0] != 255 && p[0] < u->num_seg_classes)
                    id = (uint32_t)u->seg_category[p[0]] * 1000u + p[1];
            }
            ids[(size_t)y * W + x] = id;
            if (id)
                for (int i = 0; i < pan->n_segments; i++)
                    if (segs[i].id == id) {
                        segs[i].area++;
                        break;
                    }
        }
    int n = 0;
    for (int i = 0; i < pan->n_segments; i++)
        if (segs[i].area > 0)
            segs[n++] = segs[i];
    *out = (native_panoptic){W, H, ids, (size_t)n, segs};
    return 0;
}

/* RPN, box head, detections with their masks, panoptic head; res gets the detections
 * in image pixels (resized / im_scale in float32, as upsnet_end2end_test.py) with COCO
 * category ids, and the panoptic result. */
static int run_heads(upsnet *u, ups_image *im, nn_result *res, avps_error *err) {
    const ups_heads *h = u->heads;
    nn_arena *a = &u->arena;
    ups_im_info info = {im->img_h, im->img_w, im->im_scale_f32};
    ups_proposals prop;
    ups_box_out box;
    ups_dets det;
    ups_panoptic_out pan;
    if (ups_rpn(h, a, im->fpn, &info, &prop, err) || dump_rpn(u, &prop, err))
        return -1;
    const float *rois = u->proposals ? u->proposals : prop.boxes;
    int n_rois = u->proposals ? u->n_proposals : prop.n;
    if (ups_box_head(h, a, im->fpn, rois, n_rois, &box, err))
        return -1;
    size_t sp[2] = {(size_t)n_rois, (size_t)h->num_classes};
    if (ups_dump(u, "rcnn_cls_prob", NPY_F32, 2, sp, box.cls_prob, err) || ups_detect(h, a, im->fpn, &box, &info, &det, err) ||
        dump_dets(u, "det", &det, "det_mask_probs", err))
        return -1;
    if (ups_panoptic(h, a, im->fpn, &box, &info, &im->sem_up, im->sem_labels, &pan, err) ||
        dump_panoptic(u, &pan, err) || panoptic_result(u, im, &pan, &res->panoptic, err))
        return -1;
    res->n = det.n, res->scores = det.scores, res->masks = det.masks, res->mask_size = det.mask_size;
    res->boxes = nn_arena_alloc(a, (size_t)(det.n ? det.n : 1) * 4 * sizeof(float), err);
    res->labels = nn_arena_alloc(a, (size_t)(det.n ? det.n : 1) * sizeof(int), err);
    if (!res->boxes || !res->labels)
        return -1;
    for (int i = 0; i < 4 * det.n; i++)
        res->boxes[i] = det.boxes[i] / im->im_scale_f32;
    for (int i = 0; i < det.n; i++) {
        if (det.labels[i] < 1 || det.labels[i] >= h->num_classes)
            return avps_fail(err, "native engine: detection of class %d", det.labels[i]);
        res->labels[i] = u->det_category[det.labels[i]];
    }
    size_t s2[2] = {(size_t)det.n, 4};
    return ups_dump(u, "det_boxes", NPY_F32, 2, s2, res->boxes, err);
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
    t0 = ups_now();
    if (run_heads(u, &im, res, err))
        return -1;
    u->t[UPS_T_HEADS] = ups_now() - t0;
    /* UPSNet's COCO masks: the box expanded by 30/28, the mask padded by one pixel,
     * resized into the truncated box (bbox_transform.py:365-381), torchvision's rule */
    res->paste = PASTE_TORCHVISION;
    res->box_plus_one = 1;
    /* the semantic logits before the final x4: the x4 (align_corners False) and the
     * resize compose to one scale, im_scale / 4 */
    const nn_tensor *lg = &im.sem_logits;
    int stride = im.input.w / lg->w;
    res->ss_logits = lg->data, res->ss_c = lg->c, res->ss_h = lg->h, res->ss_w = lg->w;
    res->ss_scale_x = res->ss_scale_y = im.im_scale / stride;
    res->ss_valid_w = (im.img_w + stride - 1) / stride, res->ss_valid_h = (im.img_h + stride - 1) / stride;
    print_timings(u);
    return 0;
}
