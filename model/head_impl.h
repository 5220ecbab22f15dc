/* head_impl.h: what a backend gives the head dispatcher (model/head.c). Internal to
 * model/; other modules see only model.h. */
#ifndef AVPS_HEAD_IMPL_H
#define AVPS_HEAD_IMPL_H

#include "model.h"

typedef struct {
    int (*run)(void *state, const head_input *in, head_output *out, avps_error *err);
    void (*free)(void *state);
    /* the SS channels' dataset categories (owned by the state) */
    uint32_t (*channels)(const void *state, const int32_t **category);
    /* NULL: the end gives instances; else 0 for one that never does */
    int (*has_instances)(const void *state);
} head_ops;

/* Each backend's constructor: fills *ops and returns its state, or NULL with err set. */
void *sim_head_new(const head_config *cfg, const pan_dataset *ds, ss_kind *kind, head_ops *ops, avps_error *err);
void *native_head_new(const head_config *cfg, const pan_dataset *ds, ss_kind *kind, head_ops *ops,
                      avps_error *err);
void *replay_head_new(const head_config *cfg, const pan_dataset *ds, ss_kind *kind, head_ops *ops,
                      avps_error *err);

/* DIR/<image_id><suffix>, the name of a store's per-image file (model/store.c). Caller frees. */
char *store_file_path(const char *dir, const char *image_id, const char *suffix);

#endif
