/* load.c: builds UPSNet from a safetensors state dict with UPSNet's own names
 * (resnet_backbone.*, fpn.*, fcn_head.*, rpn.*, rcnn.*, mask_branch.*), as
 * shared/reference/upsnet/make_weights.py or scripts/pth-to-safetensors write it. The
 * architecture is read from the names and shapes: the ResNet depth from the blocks
 * present, DCN blocks from conv2_offset, the GAP term from fpn.fpn_gap, the semantic
 * subnet's depth from fcn_head.fcn_subnet.conv.N. Frozen batch norm (eval-mode
 * BatchNorm2d, eps 1e-5) is folded into the convolution before it. Settings come from
 * the header's __metadata__ and `--set KEY=VALUE`, over UPSNet's COCO defaults. */
#include "upsnet.h"
#include "heads.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FROZEN_BN_EPS 1e-5f

float *ups_owned_floats(upsnet *u, size_t n, avps_error *err) {
    if (u->n_owned == u->cap_owned) {
        size_t cap = u->cap_owned ? 2 * u->cap_owned : 64;
        void **p = realloc(u->owned, cap * sizeof *p);
        if (!p)
            return avps_fail(err, "native engine: out of memory"), NULL;
        u->owned = p, u->cap_owned = cap;
    }
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return avps_fail(err, "native engine: out of memory for %zu weights", n), NULL;
    return u->owned[u->n_owned++] = f;
}

static const char *name_of(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *name_of(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return buf;
}

static const st_tensor *shape_of(const st_file *st, const char *name, int ndim, avps_error *err) {
    const st_tensor *t = st_find(st, name);
    if (!t) {
        avps_fail(err, "%s: no tensor %s (is this a complete UPSNet state dict?)", st->path, name);
        return NULL;
    }
    if (t->ndim != ndim) {
        avps_fail(err, "%s: tensor %s has %d dimensions, the architecture needs %d", st->path, name, t->ndim, ndim);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0 || t->shape[i] > (1 << 20)) {
            avps_fail(err, "%s: tensor %s has an implausible shape", st->path, name);
            return NULL;
        }
    return t;
}

int ups_load_conv(upsnet *u, const st_file *st, const char *prefix, const char *bn, int has_bias, int in, int stride,
                  nn_conv *cv, avps_error *err) {
    char name[300];
    const st_tensor *t = shape_of(st, name_of(name, sizeof name, "%s.weight", prefix), 4, err);
    if (!t)
        return -1;
    int64_t shape[4] = {t->shape[0], in, t->shape[2], t->shape[3]};
    *cv = (nn_conv){NULL, NULL, (int)shape[0], in, (int)shape[2], (int)shape[3], stride, (int)shape[2] / 2};
    size_t n = (size_t)shape[0] * in * shape[2] * shape[3];
    if (!(cv->weight = ups_owned_floats(u, n, err)) || !(cv->bias = ups_owned_floats(u, (size_t)cv->out, err)))
        return -1;
    if (st_read_f32(st, name, 4, shape, cv->weight, err) != 0)
        return -1;
    int64_t vec[1] = {cv->out};
    if (!bn) {
        if (!has_bias) {
            memset(cv->bias, 0, sizeof(float) * (size_t)cv->out);
            return 0;
        }
        return st_read_f32(st, name_of(name, sizeof name, "%s.bias", prefix), 1, vec, cv->bias, err);
    }
    float *gamma = ups_owned_floats(u, (size_t)cv->out * 3, err);
    if (!gamma)
        return -1;
    float *mean = gamma + cv->out, *var = mean + cv->out;
    if (st_read_f32(st, name_of(name, sizeof name, "%s.weight", bn), 1, vec, gamma, err) != 0 ||
        st_read_f32(st, name_of(name, sizeof name, "%s.bias", bn), 1, vec, cv->bias, err) != 0 ||
        st_read_f32(st, name_of(name, sizeof name, "%s.running_mean", bn), 1, vec, mean, err) != 0 ||
        st_read_f32(st, name_of(name, sizeof name, "%s.running_var", bn), 1, vec, var, err) != 0)
        return -1;
    size_t per_out = n / (size_t)cv->out;
    for (int o = 0; o < cv->out; o++) {
        if (!(var[o] + FROZEN_BN_EPS > 0))
            return avps_fail(err, "%s: tensor %s.running_var: entry %d is not positive", st->path, bn, o);
        float scale = gamma[o] / sqrtf(var[o] + FROZEN_BN_EPS);
        cv->bias[o] = cv->bias[o] - mean[o] * scale;
        for (size_t i = 0; i < per_out; i++)
            cv->weight[(size_t)o * per_out + i] *= scale;
    }
    return 0;
}

int ups_load_fc(upsnet *u, const st_file *st, const char *prefix, int in, nn_fc *fc, avps_error *err) {
    char name[300];
    const st_tensor *t = shape_of(st, name_of(name, sizeof name, "%s.weight", prefix), 2, err);
    if (!t)
        return -1;
    if (t->shape[1] != in)
        return avps_fail(err, "%s: tensor %s takes %lld inputs, the layer before gives %d", st->path, name,
                         (long long)t->shape[1], in);
    *fc = (nn_fc){NULL, NULL, (int)t->shape[0], in};
    int64_t shape[2] = {fc->out, in}, vec[1] = {fc->out};
    if (!(fc->weight = ups_owned_floats(u, (size_t)fc->out * in, err)) ||
        !(fc->bias = ups_owned_floats(u, (size_t)fc->out, err)))
        return -1;
    if (st_read_f32(st, name, 2, shape, fc->weight, err) != 0)
        return -1;
    return st_read_f32(st, name_of(name, sizeof name, "%s.bias", prefix), 1, vec, fc->bias, err);
}

const char *ups_setting(upsnet *u, const st_file *st, const char *key) {
    for (int i = u->n_set - 1; i >= 0; i--) /* the last --set of a key wins */
        if (strcmp(u->set_keys[i], key) == 0) {
            for (int j = 0; j < u->n_set; j++)
                if (strcmp(u->set_keys[j], key) == 0)
                    u->set_used[j] = 1;
            return u->set_values[i];
        }
    return st_meta(st, key);
}

int ups_setting_numbers(upsnet *u, const st_file *st, const char *key, double *out, int n, avps_error *err) {
    const char *v = ups_setting(u, st, key);
    if (!v)
        return 0;
    double tmp[16];
    int k = 0;
    const char *s = v;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '[' || *s == ']' || *s == '(' || *s == ')')
            s++;
        if (!*s)
            break;
        char *end;
        double d = strtod(s, &end);
        if (end == s || k == n || k == 16 || !isfinite(d))
            return avps_fail(err, "%s: setting %s = \"%s\" is not %d number%s", st->path, key, v, n, n > 1 ? "s" : "");
        tmp[k++] = d;
        s = end;
    }
    if (k != n)
        return avps_fail(err, "%s: setting %s = \"%s\" is not %d number%s", st->path, key, v, n, n > 1 ? "s" : "");
    memcpy(out, tmp, sizeof(double) * (size_t)n);
    return 0;
}

/* res2..res5: stride on the first 1x1 of each stage's first block (res2: 1), a
 * projection shortcut there; DCN where the block has conv2_offset. */
static int load_backbone(upsnet *u, const st_file *st, int *stage_channels, avps_error *err) {
    if (ups_load_conv(u, st, "resnet_backbone.conv1.conv1", "resnet_backbone.conv1.bn1", 0, 3, 2, &u->stem, err) != 0)
        return -1;
    char name[300], base[200], conv[240], bn[240];
    int n = 0;
    for (int l = 0; l < UPS_STAGES; l++)
        for (int b = 0; st_find(st, name_of(name, sizeof name, "resnet_backbone.res%d.layers.%d.conv1.weight", l + 2, b));
             b++)
            n++;
    if (!(u->blocks = calloc((size_t)(n ? n : 1), sizeof *u->blocks)))
        return avps_fail(err, "native engine: out of memory");
    int in = u->stem.out;
    for (int l = 0; l < UPS_STAGES; l++) {
        for (int b = 0;; b++) {
            name_of(base, sizeof base, "resnet_backbone.res%d.layers.%d", l + 2, b);
            if (!st_find(st, name_of(name, sizeof name, "%s.conv1.weight", base)))
                break;
            ups_block *blk = &u->blocks[u->n_blocks++];
            int stride = (l > 0 && b == 0) ? 2 : 1;
            blk->dcn = st_find(st, name_of(name, sizeof name, "%s.conv2_offset.weight", base)) != NULL;
            blk->has_down = st_find(st, name_of(name, sizeof name, "%s.downsample.0.weight", base)) != NULL;
            if (ups_load_conv(u, st, name_of(conv, sizeof conv, "%s.conv1", base), name_of(bn, sizeof bn, "%s.bn1", base), 0,
                              in, stride, &blk->conv1, err) ||
                ups_load_conv(u, st, name_of(conv, sizeof conv, "%s.conv2", base), name_of(bn, sizeof bn, "%s.bn2", base), 0,
                              blk->conv1.out, 1, &blk->conv2, err) ||
                ups_load_conv(u, st, name_of(conv, sizeof conv, "%s.conv3", base), name_of(bn, sizeof bn, "%s.bn3", base), 0,
                              blk->conv2.out, 1, &blk->conv3, err))
                return -1;
            if (blk->conv2.kh != 3 || blk->conv2.kw != 3)
                return avps_fail(err, "%s: %s.conv2.weight is not 3x3", st->path, base);
            if (blk->dcn) {
                if (ups_load_conv(u, st, name_of(conv, sizeof conv, "%s.conv2_offset", base), NULL, 1, blk->conv1.out, 1,
                                  &blk->offset, err))
                    return -1;
                if (blk->offset.out % 18 != 0 || blk->conv2.in % (blk->offset.out / 18) != 0)
                    return avps_fail(err, "%s: %s.conv2_offset.weight has %d channels, not 18 per deformable group",
                                     st->path, base, blk->offset.out);
                u->n_dcn_blocks++;
            }
            int out = blk->conv3.out;
            if (blk->has_down) {
                if (ups_load_conv(u, st, name_of(conv, sizeof conv, "%s.downsample.0", base),
                                  name_of(bn, sizeof bn, "%s.downsample.1", base), 0, in, stride, &blk->down, err))
                    return -1;
                blk->down.pad = 0;
                if (blk->down.out != out)
                    return avps_fail(err, "%s: %s.downsample.0.weight gives %d channels, the block %d", st->path, base,
                                     blk->down.out, out);
            } else if (in != out || stride != 1) {
                return avps_fail(err, "%s: %s changes shape but has no downsample", st->path, base);
            }
            in = out;
        }
        u->stage_end[l] = u->n_blocks;
        if (u->stage_end[l] == (l ? u->stage_end[l - 1] : 0))
            return avps_fail(err, "%s: no tensor resnet_backbone.res%d.layers.0.conv1.weight", st->path, l + 2);
        stage_channels[l] = in;
    }
    return 0;
}

/* fpn.fpn_pK_1x1 (laterals), fpn.fpn_pK (outputs), fpn.fpn_gap when present. */
static int load_fpn(upsnet *u, const st_file *st, const int *stage_channels, avps_error *err) {
    char p[100];
    for (int l = 0; l < UPS_STAGES; l++) {
        if (ups_load_conv(u, st, name_of(p, sizeof p, "fpn.fpn_p%d_1x1", l + 2), NULL, 1, stage_channels[l], 1,
                          &u->fpn_lateral[l], err))
            return -1;
        int c = u->fpn_lateral[l].out;
        if (ups_load_conv(u, st, name_of(p, sizeof p, "fpn.fpn_p%d", l + 2), NULL, 1, c, 1, &u->fpn_out[l], err))
            return -1;
        if (c != u->fpn_lateral[0].out || u->fpn_out[l].out != c)
            return avps_fail(err, "%s: FPN level P%d has %d channels, P2 %d", st->path, l + 2, c, u->fpn_lateral[0].out);
    }
    u->with_gap = st_find(st, "fpn.fpn_gap.weight") != NULL;
    if (u->with_gap) {
        if (ups_load_fc(u, st, "fpn.fpn_gap", stage_channels[UPS_STAGES - 1], &u->fpn_gap, err))
            return -1;
        if (u->fpn_gap.out != u->fpn_lateral[UPS_STAGES - 1].out)
            return avps_fail(err, "%s: fpn.fpn_gap.weight gives %d channels, P5 has %d", st->path, u->fpn_gap.out,
                             u->fpn_lateral[UPS_STAGES - 1].out);
    }
    return 0;
}

/* fcn_head.fcn_subnet.conv.N.0.{conv_offset,conv} and fcn_head.score */
static int load_semantic(upsnet *u, const st_file *st, avps_error *err) {
    char p[200], q[200], name[300];
    int in = u->fpn_out[0].out;
    while (st_find(st, name_of(name, sizeof name, "fcn_head.fcn_subnet.conv.%d.0.conv.weight", u->sem_layers))) {
        int i = u->sem_layers;
        if (i == UPS_SEM_MAX_LAYERS)
            return avps_fail(err, "%s: more than %d semantic subnet layers", st->path, UPS_SEM_MAX_LAYERS);
        if (ups_load_conv(u, st, name_of(p, sizeof p, "fcn_head.fcn_subnet.conv.%d.0.conv_offset", i), NULL, 1, in, 1,
                          &u->sem_offset[i], err) ||
            ups_load_conv(u, st, name_of(q, sizeof q, "fcn_head.fcn_subnet.conv.%d.0.conv", i), NULL, 1, in, 1,
                          &u->sem_conv[i], err))
            return -1;
        if (u->sem_offset[i].out % 18 != 0 || in % (u->sem_offset[i].out / 18) != 0)
            return avps_fail(err, "%s: %s.weight has %d channels, not 18 per deformable group", st->path, p,
                             u->sem_offset[i].out);
        in = u->sem_conv[i].out;
        u->sem_layers++;
    }
    if (u->sem_layers == 0)
        return avps_fail(err, "%s: no tensor fcn_head.fcn_subnet.conv.0.0.conv.weight", st->path);
    /* the four levels' subnet outputs, concatenated */
    if (ups_load_conv(u, st, "fcn_head.score", NULL, 1, 4 * in, 1, &u->sem_score, err))
        return -1;
    u->num_seg_classes = u->sem_score.out;
    if (u->num_seg_classes > 255) /* label maps are uint8 with 255 = void, as UPSNet's */
        return avps_fail(err, "%s: fcn_head.score.weight has %d classes, at most 255 are supported", st->path,
                         u->num_seg_classes);
    return 0;
}

static int load_settings(upsnet *u, const st_file *st, avps_error *err) {
    u->min_size = 800, u->max_size = 1333, u->pad_to = 32;
    const double mean[3] = {102.9801, 115.9465, 122.7717}; /* config.network.pixel_means (BGR) */
    memcpy(u->mean_bgr, mean, sizeof mean);
    double pad = u->pad_to;
    if (ups_setting_numbers(u, st, "min_size", &u->min_size, 1, err) ||
        ups_setting_numbers(u, st, "max_size", &u->max_size, 1, err) ||
        ups_setting_numbers(u, st, "pixel_means", u->mean_bgr, 3, err) ||
        ups_setting_numbers(u, st, "pad_to", &pad, 1, err))
        return -1;
    if (!(u->min_size >= 1 && u->min_size <= 1e5 && u->max_size >= 1 && u->max_size <= 1e5))
        return avps_fail(err, "%s: settings min_size and max_size must be in [1, 100000]", st->path);
    if (!(pad >= 1 && pad <= 1024 && pad == floor(pad)))
        return avps_fail(err, "%s: setting pad_to must be a whole number in [1, 1024]", st->path);
    u->pad_to = (int)pad;
    double timings = 0;
    if (ups_setting_numbers(u, st, "timings", &timings, 1, err))
        return -1;
    u->timings = timings != 0;
    if (u->pad_to % 32 != 0)
        return avps_fail(err, "%s: setting pad_to must be a multiple of 32 (the FPN's coarsest stride)", st->path);
    return 0;
}

static int take_settings(upsnet *u, const native_options *opt, avps_error *err) {
    if (opt->n_settings <= 0)
        return 0;
    int n = opt->n_settings;
    u->set_keys = calloc((size_t)n, sizeof *u->set_keys);
    u->set_values = calloc((size_t)n, sizeof *u->set_values);
    u->set_used = calloc((size_t)n, 1);
    if (!u->set_keys || !u->set_values || !u->set_used)
        return avps_fail(err, "native engine: out of memory");
    for (int i = 0; i < n; i++) {
        const char *kv = opt->settings[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return avps_fail(err, "--set %s: expected KEY=VALUE", kv);
        u->n_set = i + 1;
        if (!(u->set_keys[i] = strndup(kv, (size_t)(eq - kv))) || !(u->set_values[i] = strdup(eq + 1)))
            return avps_fail(err, "native engine: out of memory");
    }
    return 0;
}

/* UPSNet's COCO class orders (init_coco.py, json_dataset.py): the 133 semantic classes
 * are the panoptic stuff categories by ascending id, then the things by ascending id;
 * detection class j (1..80) is the j-th thing. Metadata seg_category_ids /
 * det_category_ids (every class's COCO id, comma separated; det without background)
 * override them; networks of other class counts need them (else ids = indexes). */
static int load_categories(upsnet *u, const st_file *st, avps_error *err) {
    int ns = u->num_seg_classes, nd = u->heads->num_classes;
    u->seg_category = calloc((size_t)ns, sizeof *u->seg_category);
    u->det_category = calloc((size_t)nd, sizeof *u->det_category);
    double *v = calloc((size_t)(ns > nd ? ns : nd), sizeof *v);
    if (!u->seg_category || !u->det_category || !v) {
        free(v);
        return avps_fail(err, "native engine: out of memory");
    }
    for (int i = 0; i < ns; i++)
        u->seg_category[i] = i;
    for (int i = 0; i < nd; i++)
        u->det_category[i] = i;
    u->num_stuff = ns - (nd - 1);
    size_t n = synth_category_count();
    if (ns == (int)n && nd == 81) {
        int k = 0;
        for (int thing = 0; thing <= 1; thing++)
            for (size_t i = 0; i < n; i++) { /* the table is by ascending id within a kind */
                int isthing;
                int32_t id = synth_category(i, &isthing, NULL, 0);
                if (isthing == thing)
                    u->seg_category[k++] = id;
            }
        u->num_stuff = (int)n - 80;
    }
    int rc = 0;
    if (ups_setting(u, st, "seg_category_ids") && !(rc = ups_setting_numbers(u, st, "seg_category_ids", v, ns, err)))
        for (int i = 0; i < ns; i++)
            u->seg_category[i] = (int32_t)v[i];
    if (!rc && ups_setting(u, st, "num_stuff_classes")) {
        double d = 0;
        if (!(rc = ups_setting_numbers(u, st, "num_stuff_classes", &d, 1, err)) && !(d >= 0 && d < ns))
            rc = avps_fail(err, "%s: setting num_stuff_classes must be in [0, %d)", st->path, ns);
        u->num_stuff = (int)d;
    }
    for (int j = 1; j < nd; j++)
        u->det_category[j] = u->num_stuff + j - 1 < ns ? u->seg_category[u->num_stuff + j - 1] : j;
    if (!rc && ups_setting(u, st, "det_category_ids") &&
        !(rc = ups_setting_numbers(u, st, "det_category_ids", v, nd - 1, err)))
        for (int j = 1; j < nd; j++)
            u->det_category[j] = (int32_t)v[j - 1];
    free(v);
    return rc ? -1 : 0;
}

typedef struct {
    upsnet *u;
    const st_file *st;
} setting_ctx;

static const char *head_setting(void *ctx, const char *key) {
    setting_ctx *c = ctx;
    return ups_setting(c->u, c->st, key);
}

/* The heads' weights and settings (heads.h); avps infer's --score-thr and --detections
 * override score_thresh and max_det. */
static int load_heads(upsnet *u, const st_file *st, const native_options *opt, avps_error *err) {
    ups_head_settings hs;
    ups_head_settings_default(&hs);
    setting_ctx ctx = {u, st};
    if (ups_head_settings_read(&hs, head_setting, &ctx, st->path, err) != 0)
        return -1;
    if (opt->score_thresh >= 0)
        hs.score_thresh = (float)opt->score_thresh;
    if (opt->detections > 0)
        hs.max_det = opt->detections;
    if (!(u->heads = ups_heads_load(st, u->be, &hs, err)))
        return -1;
    if (u->heads->channels != u->fpn_out[0].out)
        return avps_fail(err, "%s: rpn.conv_proposal.0.weight takes %d channels, the FPN gives %d", st->path,
                         u->heads->channels, u->fpn_out[0].out);
    return 0;
}

static int load_proposals(upsnet *u, const char *path, avps_error *err) {
    npy_expect want = {NPY_DTYPE_BIT(NPY_F32), 2, {0, 4, 0, 0}};
    npy_array a;
    if (npy_read(path, &want, &a, err) != 0)
        return -1;
    u->n_proposals = (int)a.shape[0];
    u->proposals = ups_owned_floats(u, a.shape[0] * 4, err);
    if (u->proposals && a.nbytes)
        memcpy(u->proposals, a.data, a.nbytes);
    npy_array_release(&a);
    return u->proposals ? 0 : -1;
}

upsnet *upsnet_load(const st_file *st, const native_options *opt, avps_error *err) {
    upsnet *u = calloc(1, sizeof *u);
    if (!u) {
        avps_fail(err, "native engine: out of memory");
        return NULL;
    }
    nn_arena_init(&u->arena);
    int stage_channels[UPS_STAGES];
    int rc = !(u->be = nn_cpu_backend(!opt->plain_gemm, err)) || take_settings(u, opt, err) ||
             load_backbone(u, st, stage_channels, err) || load_fpn(u, st, stage_channels, err) || load_semantic(u, st, err) || load_settings(u, st, err) ||
             load_heads(u, st, opt, err) || load_categories(u, st, err);
    if (!rc && opt->proposals)
        rc = load_proposals(u, opt->proposals, err);
    for (int i = 0; !rc && i < u->n_set; i++)
        if (!u->set_used[i])
            rc = avps_fail(err, "--set %s: not a setting of UPSNet (see docs/model.md)", u->set_keys[i]);
    if (!rc && opt->dump_dir && !(u->dump_dir = strdup(opt->dump_dir)))
        rc = avps_fail(err, "native engine: out of memory");
    if (!rc && opt->semantic && !(u->semantic_path = strdup(opt->semantic)))
        rc = avps_fail(err, "native engine: out of memory");
    if (rc) {
        upsnet_free(u);
        return NULL;
    }
    return u;
}

void upsnet_free(upsnet *u) {
    if (!u)
        return;
    ups_heads_free(u->heads);
    free(u->seg_category), free(u->det_category);
    for (size_t i = 0; i < u->n_owned; i++)
        free(u->owned[i]);
    free(u->owned);
    free(u->blocks);
    for (int i = 0; i < u->n_set; i++)
        free(u->set_keys[i]), free(u->set_values[i]);
    free(u->set_keys), free(u->set_values), free(u->set_used);
    free(u->dump_dir);
    free(u->semantic_path);
    nn_arena_release(&u->arena);
    free(u);
}

/* UPSNet's state-dict names: the backbone under resnet_backbone, the FPN under fpn */
static int upsnet_recognises(const st_file *st) {
    return st_find(st, "resnet_backbone.conv1.conv1.weight") && st_find(st, "fpn.fpn_p2.weight");
}

static void *upsnet_load_any(const st_file *st, const native_options *opt, avps_error *err) {
    return upsnet_load(st, opt, err);
}
static int upsnet_run_any(void *u, const uint8_t *rgb, uint32_t w, uint32_t h, nn_result *res, avps_error *err) {
    return upsnet_run(u, rgb, w, h, res, err);
}
static void upsnet_free_any(void *u) { upsnet_free(u); }
static const nn_arena *upsnet_arena(const void *u) { return &((const upsnet *)u)->arena; }

static int upsnet_semantic(const void *v, const int32_t **category) {
    const upsnet *u = v;
    *category = u->seg_category;
    return u->num_seg_classes;
}

const nn_net_kind upsnet_kind = {"upsnet", upsnet_recognises, upsnet_load_any, upsnet_run_any, upsnet_free_any,
                                 upsnet_arena, upsnet_semantic};
