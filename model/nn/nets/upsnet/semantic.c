/* semantic.c: UPSNet's semantic head (upsnet/models/fcn.py): one subnet of deformable
 * 3x3 layers (each with its own 3x3 offset convolution, bias, ReLU), applied with the
 * same weights to P2, P3, P4 and P5; P3..P5 upsampled x2, x4, x8 (bilinear,
 * align_corners False) to P2's size; concatenated; a 1x1 classifier (sem_logits); then
 * x4 bilinear to the padded input (sem_up) and its argmax (sem_labels). */
#include "upsnet.h"

#include <string.h>

static int subnet(upsnet *u, const nn_tensor *in, nn_tensor *out, avps_error *err) {
    const nn_backend *be = u->be;
    nn_arena *a = &u->arena;
    nn_arena_mark mark = nn_arena_get_mark(a);
    nn_tensor x = *in;
    for (int i = 0; i < u->sem_layers; i++) {
        nn_tensor off, y;
        double t0 = ups_now();
        if (be->conv2d(be, a, &u->sem_offset[i], &x, 0, &off, err) ||
            be->deform_conv2d(be, a, &u->sem_conv[i], &x, &off, NULL, 1, u->sem_offset[i].out / 18, 1, &y, err))
            return -1;
        u->t[UPS_T_SEMANTIC_DCN] += ups_now() - t0;
        x = y;
    }
    *out = x;
    return nn_tensor_keep(a, mark, out, err);
}

int ups_semantic(upsnet *u, ups_image *im, avps_error *err) {
    const nn_backend *be = u->be;
    nn_arena *a = &u->arena;
    nn_tensor feat;
    int h = im->fpn[0].h, w = im->fpn[0].w, c = u->sem_conv[u->sem_layers - 1].out;
    if (nn_tensor_new(a, be->device, 1, 4 * c, h, w, &feat, err) != 0)
        return -1;
    size_t plane = (size_t)h * w;
    for (int l = 0; l < UPS_STAGES; l++) {
        nn_arena_mark mark = nn_arena_get_mark(a);
        nn_tensor s;
        if (subnet(u, &im->fpn[l], &s, err) != 0)
            return -1;
        if (s.h << l != h || s.w << l != w)
            return avps_fail(err, "native engine: semantic level P%d is %dx%d, P2 %dx%d", l + 2, s.w, s.h, w, h);
        nn_tensor slot = {feat.data + (size_t)l * c * plane, 1, c, h, w, feat.device};
        if (l == 0)
            memcpy(slot.data, s.data, sizeof(float) * c * plane);
        else
            be->resize_bilinear(&s, &slot);
        nn_arena_rewind(a, mark);
    }
    if (be->conv2d(be, a, &u->sem_score, &feat, 0, &im->sem_logits, err))
        return -1;
    const nn_tensor *lg = &im->sem_logits;
    if (nn_tensor_new(a, be->device, 1, lg->c, im->input.h, im->input.w, &im->sem_up, err) != 0)
        return -1;
    be->resize_bilinear(lg, &im->sem_up);
    size_t hw = (size_t)im->input.h * im->input.w;
    nn_arena_mark mark = nn_arena_get_mark(a);
    float *top = nn_arena_alloc(a, hw * sizeof(float), err);
    uint8_t *labels = nn_arena_alloc(a, hw, err);
    if (!top || !labels)
        return -1;
    /* channel by channel (the planes are large); strictly greater: first index on ties */
    memcpy(top, im->sem_up.data, hw * sizeof(float));
    memset(labels, 0, hw);
    for (int k = 1; k < lg->c; k++) {
        const float *v = im->sem_up.data + (size_t)k * hw;
        for (size_t p = 0; p < hw; p++)
            if (v[p] > top[p])
                top[p] = v[p], labels[p] = (uint8_t)k;
    }
    /* keep the labels, drop the running maximum */
    nn_arena_rewind(a, mark);
    if (!(im->sem_labels = nn_arena_alloc(a, hw, err)))
        return -1;
    memmove(im->sem_labels, labels, hw);
    return 0;
}
