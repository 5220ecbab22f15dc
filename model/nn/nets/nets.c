/* nets.c: the table of the engine's networks and nn_net, which picks one by the names of
 * the tensors in a weights file. A new network adds its kind to the table. */
#include "../nn.h"
#include "htc/htc.h"
#include "maskrcnn/maskrcnn.h"
#include "upsnet/upsnet.h"

#include <stdlib.h>
#include <string.h>

static const nn_net_kind *const net_kinds[] = {&maskrcnn_kind, &upsnet_kind, &htc_kind};
#define N_KINDS (sizeof net_kinds / sizeof net_kinds[0])

struct nn_net {
    const nn_net_kind *kind;
    void *net;
};

nn_net *nn_net_load(const char *weights, const native_options *opt, avps_error *err) {
    if (opt->device && strcmp(opt->device, "cpu") != 0) {
        avps_fail(err, "native engine: unknown device \"%s\" (this build has: cpu)", opt->device);
        return NULL;
    }
    st_file *st = st_open(weights, err);
    if (!st)
        return NULL;
    const nn_net_kind *kind = NULL;
    for (size_t i = 0; i < N_KINDS && !kind; i++)
        if (net_kinds[i]->recognises(st))
            kind = net_kinds[i];
    nn_net *n = NULL;
    if (!kind)
        avps_fail(err, "%s: not weights of a network the engine knows (it knows: torchvision's Mask R-CNN ResNet-FPN, UPSNet, mmdetection's HTC)",
                  weights);
    else if (!(n = calloc(1, sizeof *n)))
        avps_fail(err, "native engine: out of memory");
    else if (!(n->net = kind->load(st, opt, err))) {
        free(n);
        n = NULL;
    } else
        n->kind = kind;
    st_close(st);
    return n;
}

int nn_net_run(nn_net *n, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    return n->kind->run(n->net, rgb, w, h, res, err);
}

const char *nn_net_kind_name(const nn_net *n) { return n->kind->name; }
int nn_net_semantic_classes(const nn_net *n, const int32_t **category) {
    *category = NULL;
    return n->kind->semantic ? n->kind->semantic(n->net, category) : 0;
}
size_t nn_net_arena_peak(const nn_net *n) { return n->kind->arena(n->net)->peak; }
size_t nn_net_arena_mallocs(const nn_net *n) { return n->kind->arena(n->net)->mallocs; }

void nn_net_free(nn_net *n) {
    if (!n)
        return;
    n->kind->free(n->net);
    free(n);
}
