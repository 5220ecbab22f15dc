/* upsnet_heads_tool: UPSNet's heads (model/nn/nets/upsnet/heads.h) run stage by stage on
 * an answer-key folder's own inputs, for tests/test_upsnet_heads.sh. Errors go to stderr,
 * exit 1.
 *
 *   upsnet_heads_tool WEIGHTS KEYS OUT
 *   upsnet_heads_tool cv-linear SRC SIZES OUT    (cross-checks against cv2 itself)
 *   upsnet_heads_tool cv-nearest SRC F OUT
 *
 * Reads KEYS/fpn_p2..p6.npy, im_info.npy, rpn_rois.npy, det_boxes_resized.npy,
 * det_labels.npy, pan_det_boxes_resized.npy, pan_det_labels.npy, sem_logits.npy and
 * roi_probe_rois.npy; writes to OUT under the keys' names: the RPN maps and proposals
 * (from the FPN), rcnn_cls_prob, the detections and their masks (from the key's
 * proposals), det_mask_probs_fed (the mask head on the key's detections),
 * roi_probe_feats, the panoptic head's outputs (from the key's proposals and semantic
 * logits, upsampled here), pan_mask_logits_fed (the second mask pass on the key's
 * candidates), and segments.npy (S x 7 int32: class, instance, area, bbox).
 * cv-linear resizes the float32 plane SRC (.npy, h x w) to each (w, h) row of SIZES
 * (int32, n x 2), writing OUT/linear_<i>.npy; cv-nearest resizes the u8 plane SRC by
 * the factor F into OUT (.npy), the size round(side F). */
#include "../model/nn/nets/upsnet/heads.h"
#include "../model/nn/nets/upsnet/upsnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *keys, *out;
    avps_error *err;
    npy_array held[16];
    int n_held;
} tool;

static int load(tool *t, const char *name, npy_dtype dtype, int ndim, npy_array **a) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", t->keys, name);
    npy_expect want = {.dtypes = NPY_DTYPE_BIT(dtype), .ndim = ndim};
    if (t->n_held == 16)
        return avps_fail(t->err, "upsnet_heads_tool: too many inputs");
    *a = &t->held[t->n_held];
    if (npy_read(path, &want, *a, t->err) != 0)
        return -1;
    t->n_held++;
    return 0;
}

static int save(const tool *t, const char *name, npy_dtype dtype, int ndim, const size_t *shape, const void *data) {
    npy_array arr;
    if (npy_array_alloc(&arr, dtype, ndim, shape, t->err) != 0)
        return -1;
    if (arr.nbytes)
        memcpy(arr.data, data, arr.nbytes);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", t->out, name);
    int rc = npy_write(path, &arr, 0, t->err);
    npy_array_release(&arr);
    return rc;
}

static int save_tensor(const tool *t, const char *name, const nn_tensor *x) {
    size_t shape[4] = {(size_t)x->n, (size_t)x->c, (size_t)x->h, (size_t)x->w};
    return save(t, name, NPY_F32, 4, shape, x->data);
}

static int save_dets(const tool *t, const char *prefix, const ups_dets *d, int probs) {
    char name[64];
    size_t n = (size_t)d->n, s2[2] = {n, 4}, s1[1] = {n}, s3[3] = {n, (size_t)d->mask_size, (size_t)d->mask_size};
    snprintf(name, sizeof name, "%s_boxes_resized", prefix);
    if (save(t, name, NPY_F32, 2, s2, d->boxes))
        return -1;
    snprintf(name, sizeof name, "%s_scores", prefix);
    if (save(t, name, NPY_F32, 1, s1, d->scores))
        return -1;
    snprintf(name, sizeof name, "%s_labels", prefix);
    if (save(t, name, NPY_I32, 1, s1, d->labels))
        return -1;
    snprintf(name, sizeof name, probs ? "%s_mask_probs" : "pan_mask_logits", prefix);
    return save(t, name, NPY_F32, 3, s3, d->masks);
}

static const char *meta_get(void *ctx, const char *key) { return st_meta(ctx, key); }

static int rpn_stage(tool *t, const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_im_info *im) {
    ups_proposals p;
    if (ups_rpn(h, a, fpn, im, &p, t->err) != 0)
        return -1;
    char name[64];
    for (int l = 0; l < UPS_FPN_LEVELS; l++) {
        snprintf(name, sizeof name, "rpn_cls_prob_p%d", l + 2);
        if (save_tensor(t, name, &p.cls_prob[l]))
            return -1;
        snprintf(name, sizeof name, "rpn_bbox_pred_p%d", l + 2);
        if (save_tensor(t, name, &p.bbox_pred[l]))
            return -1;
    }
    size_t s2[2] = {(size_t)p.n, 4}, s1[1] = {(size_t)p.n};
    return save(t, "rpn_rois", NPY_F32, 2, s2, p.boxes) || save(t, "rpn_roi_scores", NPY_F32, 1, s1, p.scores) ? -1 : 0;
}

/* The mask head on the key's own boxes and classes: out gets n x 28 x 28. */
static int fed_masks(tool *t, const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const char *boxes_key,
                     const char *labels_key, int probs, const char *out_name) {
    npy_array *b, *l;
    if (load(t, boxes_key, NPY_F32, 2, &b) || load(t, labels_key, NPY_I32, 1, &l))
        return -1;
    int n = (int)b->shape[0];
    if (b->shape[1] != 4 || l->shape[0] != (size_t)n)
        return avps_fail(t->err, "%s: %s and %s do not match", t->keys, boxes_key, labels_key);
    size_t mm = (size_t)h->mask_size * h->mask_size;
    float *m = nn_arena_alloc(a, (n ? n : 1) * mm * sizeof(float), t->err);
    if (!m || ups_mask_head(h, a, fpn, b->data, l->data, n, probs, m, t->err))
        return -1;
    size_t s3[3] = {(size_t)n, (size_t)h->mask_size, (size_t)h->mask_size};
    return save(t, out_name, NPY_F32, 3, s3, m);
}

static int heads_stages(tool *t, const ups_heads *h, nn_arena *a, const nn_tensor *fpn, const ups_im_info *im) {
    npy_array *rois, *probe, *sem;
    if (load(t, "rpn_rois", NPY_F32, 2, &rois) || load(t, "roi_probe_rois", NPY_F32, 2, &probe) ||
        load(t, "sem_logits", NPY_F32, 4, &sem))
        return -1;
    if (rois->shape[1] != 4 || probe->shape[1] != 4)
        return avps_fail(t->err, "%s: rois are not N x 4", t->keys);
    int n = (int)rois->shape[0];
    ups_box_out box;
    ups_dets dets;
    if (ups_box_head(h, a, fpn, rois->data, n, &box, t->err) || ups_detect(h, a, fpn, &box, im, &dets, t->err))
        return -1;
    size_t sp[2] = {(size_t)n, (size_t)h->num_classes};
    if (save(t, "rcnn_cls_prob", NPY_F32, 2, sp, box.cls_prob) || save_dets(t, "det", &dets, 1))
        return -1;
    /* det_boxes: the resized boxes over im_scale in float32, as upsnet_end2end_test.py:73 */
    for (int i = 0; i < 4 * dets.n; i++)
        dets.boxes[i] /= im->scale;
    size_t s2[2] = {(size_t)dets.n, 4};
    if (save(t, "det_boxes", NPY_F32, 2, s2, dets.boxes))
        return -1;
    if (fed_masks(t, h, a, fpn, "det_boxes_resized", "det_labels", 1, "det_mask_probs_fed") ||
        fed_masks(t, h, a, fpn, "pan_det_boxes_resized", "pan_det_labels", 0, "pan_mask_logits_fed"))
        return -1;

    nn_tensor pf;
    int np_ = (int)probe->shape[0];
    if (ups_roi_align(h, a, fpn, probe->data, np_, h->box_pool, &pf, t->err))
        return -1;
    nn_tensor first = pf;
    int keep_c = pf.c < 64 ? pf.c : 64;
    first.c = keep_c;
    float *f64 = nn_arena_alloc(a, (size_t)np_ * keep_c * pf.h * pf.w * sizeof(float), t->err);
    if (!f64)
        return -1;
    size_t plane = (size_t)pf.h * pf.w;
    for (int r = 0; r < np_; r++)
        memcpy(f64 + (size_t)r * keep_c * plane, pf.data + (size_t)r * pf.c * plane, keep_c * plane * sizeof(float));
    first.data = f64;
    if (save_tensor(t, "roi_probe_feats", &first))
        return -1;

    /* the panoptic head on the key's semantic logits, upsampled x4 as fcn.py:100-102 */
    nn_tensor sl = {sem->data, (int)sem->shape[0], (int)sem->shape[1], (int)sem->shape[2], (int)sem->shape[3],
                    NN_DEVICE_CPU}, up;
    if (nn_tensor_new(a, NN_DEVICE_CPU, 1, sl.c, 4 * sl.h, 4 * sl.w, &up, t->err))
        return -1;
    h->be->resize_bilinear(&sl, &up);
    ups_panoptic_out pan;
    if (ups_panoptic(h, a, fpn, &box, im, &up, NULL, &pan, t->err) || save_dets(t, "pan_det", &pan.cand, 0))
        return -1;
    size_t sk[1] = {(size_t)pan.k}, sl2[2] = {(size_t)pan.h, (size_t)pan.w};
    size_t si[2] = {(size_t)pan.out_h, (size_t)pan.out_w}, s3[3] = {(size_t)pan.out_h, (size_t)pan.out_w, 2};
    if (save(t, "pan_keep", NPY_I32, 1, sk, pan.keep) || save(t, "pan_cls_inds", NPY_I32, 1, sk, pan.cls_inds) ||
        save(t, "pan_cls_probs", NPY_F32, 1, sk, pan.cls_probs) || save(t, "pan_labels", NPY_U8, 2, sl2, pan.labels) ||
        save(t, "pan_labels_image", NPY_U8, 2, si, pan.labels_image) ||
        save(t, "panoptic_2ch", NPY_U8, 3, s3, pan.pan_2ch))
        return -1;
    int *seg = nn_arena_alloc(a, (size_t)(pan.n_segments ? pan.n_segments : 1) * 7 * sizeof(int), t->err);
    if (!seg)
        return -1;
    for (int i = 0; i < pan.n_segments; i++) {
        const ups_pan_segment *s = &pan.segments[i];
        int row[7] = {s->cls, s->instance, s->area, s->bbox[0], s->bbox[1], s->bbox[2], s->bbox[3]};
        memcpy(seg + 7 * (size_t)i, row, sizeof row);
    }
    size_t ss[2] = {(size_t)pan.n_segments, 7};
    return save(t, "segments", NPY_I32, 2, ss, seg);
}

static int run(tool *t, const char *weights) {
    st_file *st = st_open(weights, t->err);
    if (!st)
        return -1;
    ups_head_settings set;
    ups_head_settings_default(&set);
    ups_heads *h = NULL;
    nn_arena arena;
    nn_arena_init(&arena);
    int rc = -1;
    const nn_backend *be = nn_cpu_backend(1, t->err);
    if (!be || ups_head_settings_read(&set, meta_get, st, weights, t->err) ||
        !(h = ups_heads_load(st, be, &set, t->err)))
        goto done;
    nn_tensor fpn[UPS_FPN_LEVELS];
    char name[32];
    for (int l = 0; l < UPS_FPN_LEVELS; l++) {
        npy_array *f;
        snprintf(name, sizeof name, "fpn_p%d", l + 2);
        if (load(t, name, NPY_F32, 4, &f))
            goto done;
        fpn[l] = (nn_tensor){f->data, (int)f->shape[0], (int)f->shape[1], (int)f->shape[2], (int)f->shape[3],
                             NN_DEVICE_CPU};
    }
    npy_array *info;
    if (load(t, "im_info", NPY_F32, 2, &info))
        goto done;
    const float *iv = info->data;
    ups_im_info im = {(int)iv[0], (int)iv[1], iv[2]};
    if (rpn_stage(t, h, &arena, fpn, &im) || heads_stages(t, h, &arena, fpn, &im))
        goto done;
    printf("arena peak %zu bytes\n", arena.peak);
    rc = 0;
done:
    for (int i = 0; i < t->n_held; i++)
        npy_array_release(&t->held[i]);
    nn_arena_release(&arena);
    ups_heads_free(h);
    st_close(st);
    return rc;
}

static int cv_linear(const char *src, const char *sizes, const char *out, avps_error *err) {
    npy_array a, s;
    npy_expect ws = {.dtypes = NPY_DTYPE_BIT(NPY_F32), .ndim = 2}, wz = {.dtypes = NPY_DTYPE_BIT(NPY_I32), .ndim = 2};
    if (npy_read(src, &ws, &a, err))
        return -1;
    if (npy_read(sizes, &wz, &s, err)) {
        npy_array_release(&a);
        return -1;
    }
    int rc = 0, sw = (int)a.shape[1], sh = (int)a.shape[0];
    const int *sz = s.data;
    for (size_t i = 0; i < s.shape[0] && !rc; i++) {
        int dw = sz[2 * i], dh = sz[2 * i + 1];
        npy_array o;
        size_t shape[2] = {(size_t)dh, (size_t)dw};
        float *rows = malloc((size_t)sh * dw * sizeof(float));
        if (!rows || dw < 1 || dh < 1 || npy_array_alloc(&o, NPY_F32, 2, shape, err)) {
            free(rows);
            rc = avps_fail(err, "cv-linear: size %d x %d", dw, dh);
            break;
        }
        ups_cv_resize_to(a.data, sw, sh, o.data, dw, dh, rows);
        char path[4096];
        snprintf(path, sizeof path, "%s/linear_%zu.npy", out, i);
        rc = npy_write(path, &o, 0, err);
        npy_array_release(&o);
        free(rows);
    }
    npy_array_release(&a);
    npy_array_release(&s);
    return rc;
}

/* The trunk's resize by a factor (ups_cv_resize_linear) of each plane of a C x H x W
 * array: cv2.resize(src, None, fx=f, fy=f) of the H x W x C image, size cvRound(side f). */
static int cv_linear_factor(const char *src, double f, const char *out, avps_error *err) {
    npy_array a, o;
    npy_expect want = {.dtypes = NPY_DTYPE_BIT(NPY_F32), .ndim = 3};
    if (npy_read(src, &want, &a, err))
        return -1;
    int c = (int)a.shape[0], sh = (int)a.shape[1], sw = (int)a.shape[2];
    int dw = (int)lrint(sw * f), dh = (int)lrint(sh * f), rc = -1;
    size_t shape[3] = {(size_t)c, (size_t)dh, (size_t)dw};
    nn_arena ar;
    nn_arena_init(&ar);
    if (dw > 0 && dh > 0 && npy_array_alloc(&o, NPY_F32, 3, shape, err) == 0) {
        rc = 0;
        for (int k = 0; k < c && !rc; k++)
            rc = ups_cv_resize_linear(&ar, (const float *)a.data + (size_t)k * sh * sw, sw, sh,
                                      (float *)o.data + (size_t)k * dh * dw, dw, dh, f, f, err);
        if (!rc)
            rc = npy_write(out, &o, 0, err);
        npy_array_release(&o);
    } else if (!err->msg[0]) {
        avps_fail(err, "cv-linear-f: size %d x %d", dw, dh);
    }
    nn_arena_release(&ar);
    npy_array_release(&a);
    return rc;
}

static int cv_nearest(const char *src, double f, const char *out, avps_error *err) {
    npy_array a, o;
    npy_expect want = {.dtypes = NPY_DTYPE_BIT(NPY_U8), .ndim = 2};
    if (npy_read(src, &want, &a, err))
        return -1;
    int sw = (int)a.shape[1], sh = (int)a.shape[0];
    int dw = (int)lrint(sw * f), dh = (int)lrint(sh * f);
    size_t shape[2] = {(size_t)dh, (size_t)dw};
    int *xofs = malloc((size_t)(dw > 0 ? dw : 1) * sizeof(int));
    int rc = -1;
    if (xofs && dw > 0 && dh > 0 && npy_array_alloc(&o, NPY_U8, 2, shape, err) == 0) {
        ups_cv_resize_nearest_u8(a.data, sw, sh, sw, o.data, dw, dh, f, xofs);
        rc = npy_write(out, &o, 0, err);
        npy_array_release(&o);
    } else if (!err->msg[0]) {
        avps_fail(err, "cv-nearest: size %d x %d", dw, dh);
    }
    free(xofs);
    npy_array_release(&a);
    return rc;
}

int main(int argc, char **argv) {
    avps_error err = {0};
    if (argc == 5 && (!strcmp(argv[1], "cv-linear") || !strcmp(argv[1], "cv-nearest") || !strcmp(argv[1], "cv-linear-f"))) {
        int rc = !strcmp(argv[1], "cv-linear")     ? cv_linear(argv[2], argv[3], argv[4], &err)
                 : !strcmp(argv[1], "cv-linear-f") ? cv_linear_factor(argv[2], strtod(argv[3], NULL), argv[4], &err)
                                                   : cv_nearest(argv[2], strtod(argv[3], NULL), argv[4], &err);
        if (rc)
            fprintf(stderr, "%s\n", err.msg);
        return rc ? 1 : 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: upsnet_heads_tool WEIGHTS KEYS OUT | cv-linear SRC SIZES OUT | cv-linear-f SRC F OUT | cv-nearest SRC F OUT\n");
        return 1;
    }
    tool t = {argv[2], argv[3], &err, {{0}}, 0};
    if (run(&t, argv[1])) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    return 0;
}
