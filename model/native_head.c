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
    native_panoptic panoptic; /* the last run's (in the network's arena) */
    int box_plus_one;
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

void native_net_panoptic(const native_net *n, native_panoptic *out) { *out = n->panoptic; }
int native_net_box_plus_one(const native_net *n) { return n->box_plus_one; }
const char *native_net_kind(const native_net *n) { return nn_net_kind_name(n->net); }
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

/* A network's semantic logits as an SS of logits (fp16) on its own grid, with the
 * geometry that maps it to the image (the resize and padding included). */
static int fill_semantic(const nn_result *r, head_output *out, avps_error *err) {
    ss_map *ss = &out->ss;
    size_t n = (size_t)r->ss_c * r->ss_h * r->ss_w;
    ss->kind = SS_LOGITS;
    ss->channels = (uint32_t)r->ss_c, ss->h = (uint32_t)r->ss_h, ss->w = (uint32_t)r->ss_w;
    ss->geo = (ss_geometry){r->ss_scale_x, r->ss_scale_y, 0, 0, (uint32_t)r->ss_valid_w, (uint32_t)r->ss_valid_h};
    if (!(ss->scores = malloc(n * sizeof *ss->scores)) || !(ss->channel_category = malloc(sizeof(int32_t) * ss->channels)))
        return avps_fail(err, "native engine: out of memory");
    for (size_t i = 0; i < n; i++)
        ss->scores[i] = half_from_float(r->ss_logits[i]);
    return 0;
}

static int fill_output(const nn_result *r, uint32_t w, uint32_t h, label_map map, const void *ctx,
                       head_output *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    out->width = w, out->height = h;
    out->ss.kind = SS_PROBS;
    out->ss.geo = ss_geometry_stretch(1, 1, w, h);
    if (r->n && !(out->instances = calloc((size_t)r->n, sizeof *out->instances)))
        return avps_fail(err, "native engine: out of memory");
    if (r->ss_c > 0 && fill_semantic(r, out, err) != 0)
        return -1;
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
                    nn_result *res, avps_error *err) {
    uint8_t *rgb;
    uint32_t w, h;
    if (nn_image_read(path, &rgb, &w, &h, err) != 0)
        return -1;
    nn_result local, *r = res ? res : &local;
    int rc = nn_net_run(net, rgb, w, h, r, err);
    free(rgb);
    if (rc != 0)
        return avps_prefix(err, "%s", path);
    if (fill_output(r, w, h, map, ctx, out, err) != 0)
        return -1;
    if (out->ss.channels) {
        const int32_t *cat;
        if (nn_net_semantic_classes(net, &cat) != (int)out->ss.channels || !cat)
            return avps_fail(err, "%s: the network's semantic classes do not match its logits", path);
        memcpy(out->ss.channel_category, cat, sizeof(int32_t) * out->ss.channels);
    }
    return 0;
}

int native_net_run(native_net *n, const char *image_path, head_output *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    memset(&n->panoptic, 0, sizeof n->panoptic);
    nn_result r;
    if (run_file(n->net, image_path, NULL, NULL, out, &r, err) == 0) {
        n->panoptic = r.panoptic, n->box_plus_one = r.box_plus_one;
        return 0;
    }
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
    int rc = run_file(s->net, path, dataset_category, s, out, NULL, err);
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
    const native_state *s = state;
    int n = nn_net_semantic_classes(s->net, category);
    return n > 0 ? (uint32_t)n : 0;
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
    const int32_t *cat;
    int n_sem = nn_net_semantic_classes(s->net, &cat);
    for (int c = 0; c < n_sem; c++)
        if (pan_dataset_category_index(ds, cat[c]) < 0) {
            avps_fail(err, "head %s: semantic class %d of %s is category %d, which the dataset does not have (set "
                           "seg_category_ids in the weights' metadata)", cfg->name, c, cfg->profile, cat[c]);
            native_free(s);
            return NULL;
        }
    *kind = n_sem > 0 ? SS_LOGITS : SS_PROBS;
    *ops = (head_ops){native_run, native_free, native_channels, NULL};
    return s;
}
