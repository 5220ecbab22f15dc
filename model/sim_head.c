/* sim_head.c: the `sim` backend, simulated heads computed on the fly from the panoptic
 * ground truth of each image (docs/simulation.md). It exists to exercise and measure
 * the system without stored predictions; it models no real network.
 *
 * Every random draw is a hash of (seed, who, what, which object), not a position in a
 * stream, so an image's output does not depend on which rank or thread made it, nor on
 * what it made before. "who" is the head's name, or 0 for the part of an error common to
 * every end: real networks fail on the same hard objects. */
#include "head_impl.h"
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SHARED 0u
#define MASK_SIZE 28
#define MAX_DETECTIONS 100

enum { K_CLASS = 1, K_PARTNER, K_SS_LABEL, K_SS_CONF, K_SS_FIELD, K_DETECT, K_CONFUSE, K_BOX, K_MASK_FIELD,
       K_SCORE, K_FALSE_POS };

typedef struct {
    sim_profile prof;
    uint64_t seed, who;
    size_t n_cat;
    int32_t *cat_id;
    uint8_t *isthing;
    double *quality;   /* per category: this end's offset minus the common difficulty */
    uint32_t *partner; /* per category: the class it is confused with, common to all ends */
} sim_state;

/* ---- counter-based randomness ------------------------------------------------------ */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t draw(const sim_state *s, uint64_t who, uint64_t image, uint64_t kind, uint64_t item) {
    uint64_t h = mix64(s->seed + 0x9E3779B97F4A7C15ull);
    h = mix64(h ^ who);
    h = mix64(h ^ (image * 0xD1B54A32D192ED03ull));
    h = mix64(h ^ (kind << 40) ^ item);
    return h;
}
static double unit_of(uint64_t h) { return ((double)(h >> 11) + 0.5) * 0x1.0p-53; }
static double normal_of(uint64_t h) {
    return sqrt(-2 * log(unit_of(h))) * cos(6.283185307179586 * unit_of(mix64(h)));
}
static double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }
/* A draw whose error is partly common to every end: the standard normal mix. */
static double shared_normal(const sim_state *s, uint64_t image, uint64_t kind, uint64_t item) {
    double w = s->prof.shared;
    return sqrt(w) * normal_of(draw(s, SHARED, image, kind, item)) +
           sqrt(1 - w) * normal_of(draw(s, s->who, image, kind, item));
}
static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }
static double sigmoid(double v) { return 1 / (1 + exp(-v)); }
/* Soft masks hold fp16 values, as a store keeps them, so a stored sim head replays exactly. */
static float as_half(double v) { return float_from_half(half_from_float((float)v)); }

static uint64_t text_hash(const char *t) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *t; t++)
        h = (h ^ (uint8_t)*t) * 0x100000001B3ull;
    return h;
}

/* ---- the head ----------------------------------------------------------------------- */

static void sim_free(void *p) {
    sim_state *s = p;
    if (!s)
        return;
    free(s->cat_id);
    free(s->isthing);
    free(s->quality);
    free(s->partner);
    free(s);
}

/* The class that `c` is confused with: another of the same kind, common to all ends. */
static uint32_t partner_pick(const sim_state *s, size_t c) {
    size_t same = 0;
    for (size_t d = 0; d < s->n_cat; d++)
        same += d != c && s->isthing[d] == s->isthing[c];
    if (!same)
        return (uint32_t)c;
    size_t pick = draw(s, SHARED, 0, K_PARTNER, c) % same;
    for (size_t d = 0; d < s->n_cat; d++)
        if (d != c && s->isthing[d] == s->isthing[c] && pick-- == 0)
            return (uint32_t)d;
    return (uint32_t)c;
}

/* Per class: quality offsets (sim.h: sim_class_quality) and a confusion partner of the
 * same kind (thing or stuff). A class's offset is a property of (seed, head, class),
 * never of the image, so what a held-out split says about a class holds on the
 * evaluation split. This end's own draws are centred over the classes of each kind:
 * they move quality between classes, not the end's total, which the profile alone sets
 * whatever the seed. */
static void class_quality_init(sim_state *s) {
    double sum[2] = {0, 0};
    size_t count[2] = {0, 0};
    for (size_t c = 0; c < s->n_cat; c++) {
        s->quality[c] = normal_of(draw(s, s->who, 0, K_CLASS, c));
        sum[s->isthing[c] != 0] += s->quality[c];
        count[s->isthing[c] != 0]++;
    }
    for (size_t c = 0; c < s->n_cat; c++) {
        int k = s->isthing[c] != 0;
        double difficulty = 0.06 * normal_of(draw(s, SHARED, 0, K_CLASS, c));
        s->quality[c] = s->prof.class_spread * (s->quality[c] - sum[k] / (double)count[k]) - difficulty;
    }
}

static uint64_t head_who(const char *name) { return text_hash(name) | 1; /* never SHARED */ }

void sim_class_quality(const sim_profile *p, uint64_t seed, const char *head_name, const uint8_t *isthing,
                       size_t n, double *quality) {
    sim_state s = {.prof = *p, .seed = seed, .who = head_who(head_name), .n_cat = n,
                   .isthing = (uint8_t *)isthing, .quality = quality};
    class_quality_init(&s);
}

static int sim_run(void *state, const head_input *in, head_output *out, avps_error *err);

static uint32_t sim_channels(const void *state, const int32_t **category) {
    const sim_state *s = state;
    *category = s->cat_id;
    return (uint32_t)s->n_cat;
}

void *sim_head_new(const head_config *cfg, const pan_dataset *ds, ss_kind *kind, head_ops *ops, avps_error *err) {
    sim_state *s = calloc(1, sizeof *s);
    if (!s) {
        avps_fail(err, "out of memory");
        return NULL;
    }
    if (sim_profile_get(cfg->profile, &s->prof, err) != 0) {
        avps_prefix(err, "head %s", cfg->name);
        sim_free(s);
        return NULL;
    }
    s->seed = cfg->seed;
    s->who = head_who(cfg->name);
    s->n_cat = ds->n_categories;
    s->cat_id = calloc(s->n_cat + 1, sizeof *s->cat_id);
    s->isthing = calloc(s->n_cat + 1, 1);
    s->quality = calloc(s->n_cat + 1, sizeof *s->quality);
    s->partner = calloc(s->n_cat + 1, sizeof *s->partner);
    if (!s->cat_id || !s->isthing || !s->quality || !s->partner || s->n_cat == 0 || s->n_cat >= SS_LABEL_NONE) {
        avps_fail(err, "head %s: %s", cfg->name, s->n_cat ? "out of memory" : "the dataset has no categories");
        sim_free(s);
        return NULL;
    }
    for (size_t c = 0; c < s->n_cat; c++) {
        s->cat_id[c] = ds->categories[c].id;
        s->isthing[c] = (uint8_t)ds->categories[c].isthing;
    }
    class_quality_init(s);
    for (size_t c = 0; c < s->n_cat; c++)
        s->partner[c] = partner_pick(s, c);
    *kind = s->prof.ss_kind;
    *ops = (head_ops){sim_run, sim_free, sim_channels, NULL};
    return s;
}

/* How much class c scales an error rate: exp(-k * quality), divided by the mean of that
 * factor over this end's own offsets (a lognormal's), so that wide per-class offsets
 * move errors between classes without raising the end's errors overall. */
static double error_scale(const sim_state *s, size_t c, double k) {
    double spread = s->prof.class_spread;
    return exp(-k * s->quality[c] - 0.5 * k * k * spread * spread);
}

/* ---- the ground truth of one image ----------------------------------------------------- */

typedef struct {
    uint32_t w, h;
    size_t n;              /* segments */
    uint16_t *seg;         /* w x h: segment index + 1, 0 = VOID or an id not in the JSON */
    uint32_t *cat;         /* per segment: category index */
    uint64_t *area;
    uint32_t (*box)[4];    /* per segment: min x, min y, max x, max y */
} truth;

static void truth_release(truth *t) {
    free(t->seg);
    free(t->cat);
    free(t->area);
    free(t->box);
}

static int segment_by_id(const pan_annotation *gt, uint32_t id) {
    for (size_t i = 0; i < gt->n_segments; i++)
        if (gt->segments[i].id == id)
            return (int)i;
    return -1;
}

/* One row of segment ids into the truth: segment indexes, areas and boxes. */
static void truth_add_row(truth *t, const pan_annotation *gt, uint32_t y, const uint32_t *ids) {
    uint32_t last_id = 0;
    int last_seg = -1;
    for (uint32_t x = 0; x < t->w; x++) {
        uint32_t id = ids[x];
        if (id != last_id || x == 0)
            last_seg = id ? segment_by_id(gt, id) : -1, last_id = id;
        t->seg[(size_t)y * t->w + x] = (uint16_t)(last_seg + 1);
        if (last_seg < 0)
            continue;
        uint32_t *b = t->box[last_seg];
        t->area[last_seg]++;
        if (x < b[0]) b[0] = x;
        if (y < b[1]) b[1] = y;
        if (x > b[2]) b[2] = x;
        if (y > b[3]) b[3] = y;
    }
}

static int truth_read_pixels(truth *t, const pan_annotation *gt, const char *png, const uint32_t *gt_ids,
                             avps_error *err) {
    if (gt_ids) { /* decoded once by the caller for all its heads */
        for (uint32_t y = 0; y < t->h; y++)
            truth_add_row(t, gt, y, gt_ids + (size_t)y * t->w);
        return 0;
    }
    png_reader *r = png_reader_open_sized(png, t->w, t->h, err);
    if (!r)
        return -1;
    int rc = 0;
    if (png_reader_width(r) != t->w || png_reader_height(r) != t->h)
        rc = avps_fail(err, "%s: %ux%u, but the image is %ux%u", png, png_reader_width(r), png_reader_height(r),
                       t->w, t->h);
    uint8_t *rgb = rc ? NULL : malloc((size_t)t->w * 3);
    uint32_t *ids = rc ? NULL : malloc((size_t)t->w * sizeof *ids);
    if (!rc && (!rgb || !ids))
        rc = avps_fail(err, "out of memory");
    for (uint32_t y = 0; rc == 0 && y < t->h; y++) {
        if ((rc = png_reader_read_row(r, rgb, err)) != 0)
            break;
        for (uint32_t x = 0; x < t->w; x++)
            ids[x] = rgb_to_id(rgb + 3 * x);
        truth_add_row(t, gt, y, ids);
    }
    free(rgb);
    free(ids);
    png_reader_free(r);
    return rc;
}

static int truth_load(truth *t, const sim_state *s, const head_input *in, avps_error *err) {
    memset(t, 0, sizeof *t);
    t->w = in->image->width, t->h = in->image->height;
    t->n = in->gt ? in->gt->n_segments : 0;
    if (!in->gt || !in->gt_png)
        return avps_fail(err, "a sim head needs the image's panoptic ground truth");
    if (t->n >= 0xFFFF)
        return avps_fail(err, "%zu segments, more than a sim head handles", t->n);
    t->seg = malloc((size_t)t->w * t->h * sizeof *t->seg + 1);
    t->cat = calloc(t->n + 1, sizeof *t->cat);
    t->area = calloc(t->n + 1, sizeof *t->area);
    t->box = calloc(t->n + 1, sizeof *t->box);
    if (!t->seg || !t->cat || !t->area || !t->box)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < t->n; i++) {
        int c = -1;
        for (size_t k = 0; k < s->n_cat; k++)
            if (s->cat_id[k] == in->gt->segments[i].category_id)
                c = (int)k;
        if (c < 0)
            return avps_fail(err, "segment %u: category %d is not in the dataset", in->gt->segments[i].id,
                             in->gt->segments[i].category_id);
        t->cat[i] = (uint32_t)c;
        t->box[i][0] = t->box[i][1] = UINT32_MAX;
    }
    return truth_read_pixels(t, in->gt, in->gt_png, in->gt_ids, err);
}

/* Segment index + 1 at image point (x, y), clamped into the image. */
static uint16_t truth_at(const truth *t, double x, double y) {
    long xi = lround(x), yi = lround(y);
    xi = xi < 0 ? 0 : xi >= (long)t->w ? (long)t->w - 1 : xi;
    yi = yi < 0 ? 0 : yi >= (long)t->h ? (long)t->h - 1 : yi;
    return t->seg[(size_t)yi * t->w + (size_t)xi];
}

/* ---- semantic segmentation ------------------------------------------------------------ */

typedef struct {
    uint32_t label, runner; /* category indexes: the predicted class and the second one */
    float conf;
} segment_belief;

/* A smooth displacement, partly common to every end: two plane waves per axis. */
typedef struct {
    double fx[4], fy[4], phase[4], amp[4];
} wave_field;

static void wave_field_init(wave_field *f, const sim_state *s, uint64_t image, uint64_t kind, double scale) {
    for (int i = 0; i < 4; i++) {
        uint64_t who = i < 2 ? SHARED : s->who;
        double weight = i < 2 ? sqrt(s->prof.shared) : sqrt(1 - s->prof.shared);
        double period = 30 + 90 * unit_of(draw(s, who, image, kind, 4 * (uint64_t)i));
        double angle = 6.283185307179586 * unit_of(draw(s, who, image, kind, 4 * (uint64_t)i + 1));
        f->fx[i] = cos(angle) * 6.283185307179586 / period;
        f->fy[i] = sin(angle) * 6.283185307179586 / period;
        f->phase[i] = 6.283185307179586 * unit_of(draw(s, who, image, kind, 4 * (uint64_t)i + 2));
        f->amp[i] = scale * weight;
    }
}
static double wave_at(const wave_field *f, int first, double x, double y) {
    return f->amp[first] * sin(f->fx[first] * x + f->fy[first] * y + f->phase[first]) +
           f->amp[first + 2] * sin(f->fx[first + 2] * x + f->fy[first + 2] * y + f->phase[first + 2]);
}

static void beliefs_make(const sim_state *s, const truth *t, uint64_t image, segment_belief *b) {
    uint32_t fallback = 0;
    uint64_t best = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->area[i] > best)
            best = t->area[i], fallback = t->cat[i];
    b[0] = (segment_belief){fallback, s->partner[fallback], (float)(s->prof.ss_confidence * 0.7)};
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->cat[i];
        double p_err = (s->isthing[c] ? s->prof.ss_thing_error : s->prof.ss_stuff_error) * error_scale(s, c, 4);
        int wrong = normal_cdf(shared_normal(s, image, K_SS_LABEL, i)) < clamp(p_err, 0, 0.9);
        double conf = s->prof.ss_confidence + 0.08 * shared_normal(s, image, K_SS_CONF, i);
        conf = clamp(wrong ? 0.8 * conf : conf, 0.3, 0.97);
        b[i + 1] = wrong ? (segment_belief){s->partner[c], c, (float)conf}
                         : (segment_belief){c, s->partner[c], (float)conf};
    }
}

/* A belief's three distinct scores: its class, the runner-up, every other class. */
static void belief_scores(ss_kind kind, const segment_belief *sb, uint32_t channels, uint16_t out[3]) {
    double p[3] = {sb->conf, (1 - sb->conf) * 0.6, (1 - sb->conf) * 0.4 / (channels > 2 ? channels - 2 : 1)};
    for (int k = 0; k < 3; k++)
        out[k] = half_from_float((float)(kind == SS_LOGITS ? log(p[k]) : p[k]));
}

/* Cells of value 0xFFFF are padding: a flat distribution. */
static void ss_fill_scores(ss_map *ss, const segment_belief *b, size_t n_beliefs, uint16_t (*scores)[3],
                           const uint16_t *cell_seg, size_t cells) {
    uint32_t C = ss->channels;
    for (size_t i = 0; i < n_beliefs; i++)
        belief_scores(ss->kind, &b[i], C, scores[i]);
    uint16_t flat = half_from_float((float)(ss->kind == SS_LOGITS ? log(1.0 / C) : 1.0 / C));
    for (uint32_t c = 0; c < C; c++) {
        uint16_t *plane = ss->scores + (size_t)c * cells;
        for (size_t i = 0; i < cells; i++) {
            uint16_t k = cell_seg[i];
            plane[i] = k == 0xFFFF ? flat : scores[k][c == b[k].label ? 0 : c == b[k].runner ? 1 : 2];
        }
    }
}

/* The grid of a network that resizes by input_scale, pads to 32 and outputs at stride. */
static void grid_size(const sim_profile *p, uint32_t w, uint32_t h, ss_map *ss) {
    uint32_t stride = p->ss_stride;
    uint32_t wi = (uint32_t)fmax(1, lround(w * p->ss_input_scale)), hi = (uint32_t)fmax(1, lround(h * p->ss_input_scale));
    ss->w = (wi + 31) / 32 * 32 / stride, ss->h = (hi + 31) / 32 * 32 / stride;
    ss->geo = (ss_geometry){p->ss_input_scale / stride, p->ss_input_scale / stride, 0, 0,
                            (wi + stride - 1) / stride, (hi + stride - 1) / stride};
}

static int ss_make(const sim_state *s, const truth *t, uint64_t image, ss_map *ss, avps_error *err) {
    grid_size(&s->prof, t->w, t->h, ss);
    ss->kind = s->prof.ss_kind;
    ss->channels = (uint32_t)s->n_cat;
    size_t cells = (size_t)ss->w * ss->h;
    segment_belief *b = malloc((t->n + 1) * sizeof *b);
    uint16_t *cell_seg = malloc(cells * sizeof *cell_seg);
    uint16_t(*scores)[3] = malloc((t->n + 1) * sizeof *scores);
    ss->channel_category = malloc(s->n_cat * sizeof *ss->channel_category);
    if (ss->kind == SS_LABELS)
        ss->labels = malloc(cells * sizeof *ss->labels);
    else
        ss->scores = malloc(cells * s->n_cat * sizeof *ss->scores);
    if (!b || !cell_seg || !scores || !ss->channel_category || (!ss->labels && !ss->scores)) {
        free(b), free(cell_seg), free(scores);
        return avps_fail(err, "out of memory for a %ux%u x %zu semantic grid", ss->w, ss->h, s->n_cat);
    }
    memcpy(ss->channel_category, s->cat_id, s->n_cat * sizeof *s->cat_id);
    beliefs_make(s, t, image, b);
    wave_field field;
    wave_field_init(&field, s, image, K_SS_FIELD, s->prof.ss_boundary);
    for (uint32_t v = 0; v < ss->h; v++)
        for (uint32_t u = 0; u < ss->w; u++) {
            double x = (u + 0.5) / ss->geo.scale_x - 0.5, y = (v + 0.5) / ss->geo.scale_y - 0.5;
            int pad = u >= ss->geo.valid_w || v >= ss->geo.valid_h;
            cell_seg[(size_t)v * ss->w + u] =
                pad ? 0xFFFF : truth_at(t, x + wave_at(&field, 0, x, y), y + wave_at(&field, 1, x, y));
        }
    for (size_t i = 0; i < cells && ss->labels; i++)
        ss->labels[i] = cell_seg[i] == 0xFFFF ? SS_LABEL_NONE : (uint16_t)b[cell_seg[i]].label;
    if (ss->scores)
        ss_fill_scores(ss, b, t->n + 1, scores, cell_seg, cells);
    free(b);
    free(cell_seg);
    free(scores);
    return 0;
}

/* ---- instance segmentation ------------------------------------------------------------- */

static int instance_mask(const sim_state *s, const truth *t, uint64_t image, size_t seg, double hardness,
                         is_instance *inst, avps_error *err) {
    inst->soft_h = inst->soft_w = MASK_SIZE;
    inst->paste = PASTE_TORCHVISION;
    if (!(inst->soft = malloc(MASK_SIZE * MASK_SIZE * sizeof *inst->soft)))
        return avps_fail(err, "out of memory");
    double noise = s->prof.is_boundary * error_scale(s, t->cat[seg], 2) * (1 + 0.5 * hardness);
    wave_field field;
    wave_field_init(&field, s, image, K_MASK_FIELD, noise);
    /* sampled at 8 units a cell: waves of 4 to 15 cells across the mask */
    double bw = (inst->box[2] - inst->box[0]) / MASK_SIZE, bh = (inst->box[3] - inst->box[1]) / MASK_SIZE;
    for (int i = 0; i < MASK_SIZE; i++)
        for (int j = 0; j < MASK_SIZE; j++) {
            int inside = 0;
            for (int k = 0; k < 4; k++) {
                double px = inst->box[0] + (j + 0.25 + 0.5 * (k & 1)) * bw;
                double py = inst->box[1] + (i + 0.25 + 0.5 * (k >> 1)) * bh;
                inside += truth_at(t, px - 0.5, py - 0.5) == seg + 1;
            }
            double logit = 8 * (inside / 4.0 - 0.5) + wave_at(&field, 0, 8.0 * j + 131 * (double)seg, 8.0 * i);
            inst->soft[i * MASK_SIZE + j] = as_half(sigmoid(logit));
        }
    return 0;
}

static void detection_box(const sim_state *s, const truth *t, uint64_t image, size_t seg, double box[4]) {
    const uint32_t *b = t->box[seg];
    double w = b[2] + 1.0 - b[0], h = b[3] + 1.0 - b[1], loc = s->prof.is_localisation;
    double e[4];
    for (int k = 0; k < 4; k++)
        e[k] = loc * shared_normal(s, image, K_BOX, 4 * seg + (uint64_t)k);
    box[0] = b[0] + e[0] * w, box[2] = b[2] + 1.0 + e[2] * w;
    box[1] = b[1] + e[1] * h, box[3] = b[3] + 1.0 + e[3] * h;
    if (box[2] < box[0] + 1) box[2] = box[0] + 1;
    if (box[3] < box[1] + 1) box[3] = box[1] + 1;
}

/* Detects thing segment `seg`, or returns 0 when this end misses it. */
static int detect_segment(const sim_state *s, const truth *t, uint64_t image, size_t seg, is_instance *inst,
                          avps_error *err) {
    uint32_t c = t->cat[seg];
    double recall = clamp(s->prof.is_recall + s->quality[c], 0.02, 0.99) * (1 - 0.5 * exp(-(double)t->area[seg] / 800));
    double p = normal_cdf(shared_normal(s, image, K_DETECT, seg));
    if (p >= recall)
        return 0;
    double hardness = p / recall;
    double p_confuse = clamp(s->prof.is_confusion * error_scale(s, c, 4), 0, 0.9);
    int confused = normal_cdf(shared_normal(s, image, K_CONFUSE, seg)) < p_confuse;
    inst->category_id = s->cat_id[confused ? s->partner[c] : c];
    double logit = s->prof.is_calibration * (0.8 - hardness) - (confused ? 1.0 : 0.0) +
                   0.5 * shared_normal(s, image, K_SCORE, seg);
    inst->score = sigmoid(logit);
    detection_box(s, t, image, seg, inst->box);
    return instance_mask(s, t, image, seg, hardness, inst, err) == 0 ? 1 : -1;
}

/* A false detection: an elliptic blob of a random thing class with a low score. With
 * chance `shared` it is one that every end may make (networks hallucinate alike). */
static int false_positive(const sim_state *s, const truth *t, uint64_t image, uint64_t k, is_instance *inst,
                          avps_error *err) {
    int common = unit_of(draw(s, s->who, image, K_FALSE_POS, k)) < s->prof.shared;
    uint64_t r = mix64(draw(s, common ? SHARED : s->who, image, K_FALSE_POS, k));
    size_t n_things = 0;
    for (size_t c = 0; c < s->n_cat; c++)
        n_things += s->isthing[c];
    size_t pick = mix64(r) % (n_things ? n_things : s->n_cat);
    for (size_t c = 0; c < s->n_cat; c++)
        if ((!n_things || s->isthing[c]) && pick-- == 0)
            inst->category_id = s->cat_id[c];
    double bw = 10 + 150 * pow(unit_of(mix64(r + 1)), 2), bh = 10 + 150 * pow(unit_of(mix64(r + 2)), 2);
    double cx = t->w * unit_of(mix64(r + 3)), cy = t->h * unit_of(mix64(r + 4));
    inst->box[0] = cx - bw / 2, inst->box[1] = cy - bh / 2, inst->box[2] = cx + bw / 2, inst->box[3] = cy + bh / 2;
    inst->score = sigmoid(s->prof.is_calibration * -0.6 + 0.7 * normal_of(mix64(r + 5)));
    inst->soft_h = inst->soft_w = MASK_SIZE;
    inst->paste = PASTE_TORCHVISION;
    if (!(inst->soft = malloc(MASK_SIZE * MASK_SIZE * sizeof *inst->soft)))
        return avps_fail(err, "out of memory");
    for (int i = 0; i < MASK_SIZE; i++)
        for (int j = 0; j < MASK_SIZE; j++) {
            double dx = (j + 0.5) / MASK_SIZE * 2 - 1, dy = (i + 0.5) / MASK_SIZE * 2 - 1;
            inst->soft[i * MASK_SIZE + j] = as_half(sigmoid(6 * (0.8 - dx * dx - dy * dy)));
        }
    return 0;
}

static uint64_t poisson(double mean, uint64_t h) {
    double limit = exp(-mean), prod = unit_of(h);
    uint64_t n = 0;
    while (prod > limit && n < 1000)
        prod *= unit_of(h = mix64(h + 0x632BE59BD9B4E019ull)), n++;
    return n;
}

static int by_score(const void *a, const void *b) {
    const is_instance *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->category_id - y->category_id;
}

/* Binary masks for profiles that give them: the soft mask pasted and cut. */
static int instances_binarise(const truth *t, is_instance *inst, size_t n, avps_error *err) {
    for (size_t i = 0; i < n; i++) {
        rle_mask m;
        if (is_instance_mask(&inst[i], t->h, t->w, &m, err) != 0)
            return -1;
        free(inst[i].soft);
        inst[i].soft = NULL;
        inst[i].mask = m;
    }
    return 0;
}

static int is_make(const sim_state *s, const truth *t, uint64_t image, head_output *out, avps_error *err) {
    uint64_t n_fp = poisson(s->prof.is_false_positives, draw(s, s->who, image, K_FALSE_POS, UINT64_MAX));
    out->instances = calloc(t->n + n_fp + 1, sizeof *out->instances);
    if (!out->instances)
        return avps_fail(err, "out of memory");
    for (size_t i = 0; i < t->n; i++) {
        if (!s->isthing[t->cat[i]] || t->area[i] == 0)
            continue;
        int rc = detect_segment(s, t, image, i, &out->instances[out->n_instances], err);
        if (rc < 0)
            return -1;
        out->n_instances += (size_t)rc;
    }
    for (uint64_t k = 0; k < n_fp; k++)
        if (false_positive(s, t, image, k, &out->instances[out->n_instances++], err) != 0)
            return -1;
    /* input order and glibc's qsort are both fixed, so ties come out alike on every rank */
    qsort(out->instances, out->n_instances, sizeof *out->instances, by_score);
    while (out->n_instances > MAX_DETECTIONS)
        free(out->instances[--out->n_instances].soft);
    return s->prof.is_soft ? 0 : instances_binarise(t, out->instances, out->n_instances, err);
}

static int sim_run(void *state, const head_input *in, head_output *out, avps_error *err) {
    const sim_state *s = state;
    truth t;
    uint64_t image = text_hash(in->image->id);
    int rc = truth_load(&t, s, in, err);
    out->width = in->image->width, out->height = in->image->height;
    if (rc == 0)
        rc = ss_make(s, &t, image, &out->ss, err);
    if (rc == 0)
        rc = is_make(s, &t, image, out, err);
    truth_release(&t);
    return rc;
}
