/* native_head.c: the `native` backend: a network run by avps's own engine (nn/nn.h) on
 * the dataset's images, and native_net, the same network for `avps infer`. Instances
 * carry the network's soft masks, pasted by the network's rule; a network without a
 * semantic branch gives an SS of 0 channels (docs/model.md: how consumers see that). */
#include "head_impl.h"
#include "nn/nn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct native_net {
    nn_net *net;
};

native_net *native_net_load(const char *weights, const native_options *opt, avps_error *err) {
    native_net *n = calloc(1, sizeof *n);
    if (!n) {
        avps_fail(err, "native engine: out of memory");
        return NULL;
    }
    if (!(n->net = nn_net_load(weights, opt, err))) {
        free(n);
        return NULL;
    }
    return n;
}

size_t native_net_peak_bytes(const native_net *n) { return nn_net_arena_peak(n->net); }
size_t native_net_arena_mallocs(const native_net *n) { return nn_net_arena_mallocs(n->net); }

void native_net_free(native_net *n) {
    if (!n)
        return;
    nn_net_free(n->net);
    free(n);
}

/* keep(label) says whether a class is wanted, and map(label) its category; NULL: all, as is. */
typedef int32_t (*label_map)(const void *ctx, int label);

static int fill_output(const nn_result *r, uint32_t w, uint32_t h, label_map map, const void *ctx,
                       head_output *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    out->width = w, out->height = h;
    out->ss.kind = SS_PROBS;
    out->ss.geo = ss_geometry_stretch(1, 1, w, h);
    if (r->n && !(out->instances = calloc((size_t)r->n, sizeof *out->instances)))
        return avps_fail(err, "native engine: out of memory");
    size_t mm = (size_t)r->mask_size * r->mask_size;
    for (int i = 0; i < r->n; i++) {
        int32_t cat = map ? map(ctx, r->labels[i]) : r->labels[i];
        if (cat < 0)
            continue;
        is_instance *inst = &out->instances[out->n_instances];
        inst->category_id = cat;
        inst->score = r->scores[i];
        for (int k = 0; k < 4; k++)
            inst->box[k] = r->boxes[4 * (size_t)i + (size_t)k];
        if (!(inst->soft = malloc(mm * sizeof(float))))
            return avps_fail(err, "native engine: out of memory");
        memcpy(inst->soft, r->masks + (size_t)i * mm, mm * sizeof(float));
        inst->soft_h = inst->soft_w = (uint32_t)r->mask_size;
        inst->paste = r->paste;
        out->n_instances++;
    }
    return 0;
}

static int run_file(nn_net *net, const char *path, label_map map, const void *ctx, head_output *out,
                    avps_error *err) {
    uint8_t *rgb;
    uint32_t w, h;
    if (nn_image_read(path, &rgb, &w, &h, err) != 0)
        return -1;
    nn_result r;
    int rc = nn_net_run(net, rgb, w, h, &r, err);
    free(rgb);
    if (rc != 0)
        return avps_prefix(err, "%s", path);
    return fill_output(&r, w, h, map, ctx, out, err);
}

int native_net_run(native_net *n, const char *image_path, head_output *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    if (run_file(n->net, image_path, NULL, NULL, out, err) == 0)
        return 0;
    head_output_release(out);
    return -1;
}

/* ---- the head backend ------------------------------------------------------------- */

/* One network per head, its arena included: threads take turns (OpenBLAS already keeps
 * every core busy inside one image). */
typedef struct {
    nn_net *net;
    char *images;
    const pan_dataset *ds;
    pthread_mutex_t lock;
} native_state;

static int32_t dataset_category(const void *ctx, int label) {
    const native_state *s = ctx;
    return pan_dataset_category_index(s->ds, label) >= 0 ? label : -1;
}

static int native_run(void *state, const head_input *in, head_output *out, avps_error *err) {
    native_state *s = state;
    char *path = path_join(s->images, in->image->file_name);
    if (!path)
        return avps_fail(err, "native engine: out of memory");
    pthread_mutex_lock(&s->lock);
    int rc = run_file(s->net, path, dataset_category, s, out, err);
    pthread_mutex_unlock(&s->lock);
    free(path);
    if (rc == 0 && (out->width != in->image->width || out->height != in->image->height))
        rc = avps_fail(err, "image %s is %ux%u, the dataset says %ux%u", in->image->file_name, out->width, out->height,
                       in->image->width, in->image->height);
    return rc;
}

static void native_free(void *state) {
    native_state *s = state;
    if (!s)
        return;
    nn_net_free(s->net);
    free(s->images);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static uint32_t native_channels(const void *state, const int32_t **category) {
    (void)state;
    *category = NULL;
    return 0;
}

void *native_head_new(const head_config *cfg, const pan_dataset *ds, ss_kind *kind, head_ops *ops,
                      avps_error *err) {
    if (!cfg->profile || !cfg->store) {
        avps_fail(err, "head %s: the native backend needs weights (a safetensors file, as profile) and an images folder (as store)",
                      cfg->name);
        return NULL;
    }
    native_state *s = calloc(1, sizeof *s);
    native_options opt = {.score_thresh = -1};
    if (!s || !(s->images = strdup(cfg->store))) {
        free(s);
        avps_fail(err, "native engine: out of memory");
        return NULL;
    }
    s->ds = ds;
    pthread_mutex_init(&s->lock, NULL);
    if (!(s->net = nn_net_load(cfg->profile, &opt, err))) {
        native_free(s);
        return NULL;
    }
    *kind = SS_PROBS;
    *ops = (head_ops){native_run, native_free, native_channels, NULL};
    return s;
}
