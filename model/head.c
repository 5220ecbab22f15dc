/* head.c: a head is a backend chosen by name behind one interface (or outputs made by
 * another module, head_new_custom); this file picks the backend and forwards to it. */
#include "head_impl.h"

#include <stdlib.h>
#include <string.h>

struct head {
    head_ops ops;
    void *state;
    ss_kind kind;
    char *name;
};

head *head_new(const head_config *cfg, const pan_dataset *ds, avps_error *err) {
    if (!cfg->name || !cfg->name[0]) {
        avps_fail(err, "a head needs a name");
        return NULL;
    }
    if (!cfg->backend) {
        avps_fail(err, "head %s: no backend given (sim or replay)", cfg->name);
        return NULL;
    }
    head *h = calloc(1, sizeof *h);
    if (!h || !(h->name = strdup(cfg->name))) {
        free(h);
        avps_fail(err, "head %s: out of memory", cfg->name);
        return NULL;
    }
    if (strcmp(cfg->backend, "sim") == 0)
        h->state = sim_head_new(cfg, ds, &h->kind, &h->ops, err);
    else if (strcmp(cfg->backend, "replay") == 0)
        h->state = replay_head_new(cfg, ds, &h->kind, &h->ops, err);
    else if (strcmp(cfg->backend, "native") == 0)
        h->state = native_head_new(cfg, ds, &h->kind, &h->ops, err);
    else
        avps_fail(err, "head %s: unknown backend \"%s\" (sim, replay or native)", cfg->name, cfg->backend);
    if (!h->state) {
        free(h->name);
        free(h);
        return NULL;
    }
    return h;
}

head *head_new_custom(const char *name, ss_kind kind, const head_custom_ops *ops, void *state, avps_error *err) {
    head *h = name && name[0] ? calloc(1, sizeof *h) : NULL;
    if (!h || !(h->name = strdup(name))) {
        if (name && name[0])
            avps_fail(err, "head %s: out of memory", name);
        else
            avps_fail(err, "a head needs a name");
        free(h);
        ops->free(state);
        return NULL;
    }
    h->ops = (head_ops){ops->run, ops->free, ops->channels, NULL};
    h->state = state;
    h->kind = kind;
    return h;
}

int head_run(head *h, const head_input *in, head_output *out, avps_error *err) {
    memset(out, 0, sizeof *out);
    if (h->ops.run(h->state, in, out, err) == 0)
        return 0;
    head_output_release(out);
    return avps_prefix(err, "head %s, image %s", h->name, in->image->id);
}

const char *head_name(const head *h) { return h->name; }
ss_kind head_ss_kind(const head *h) { return h->kind; }
uint32_t head_channels(const head *h, const int32_t **category) { return h->ops.channels(h->state, category); }
int head_has_instances(const head *h) { return h->ops.has_instances ? h->ops.has_instances(h->state) : 1; }

void head_free(head *h) {
    if (!h)
        return;
    h->ops.free(h->state);
    free(h->name);
    free(h);
}
