/* cmd_infer.c: `avps infer`, one image through a Mask R-CNN run by avps's own engine,
 * written as COCO results (RLE masks, scores, boxes) for anyone to check. Runs on the
 * root rank only: one image. --dump-dir and --proposals are for the parity tests
 * (tests/test_native.sh); --repeat and --plain-gemm for measuring (scripts/bench-native). */
#include "commands.h"

#include "../model/model.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char infer_usage[] =
    "usage: avps infer --weights F --image IMG --json OUT [--score-thr X] [--detections N]\n"
    "                  [--device cpu] [--image-id N] [--plain-gemm] [--repeat N]\n"
    "                  [--dump-dir D] [--proposals F.npy] [--set KEY=VALUE]... [--semantic F.npy]\n"
    "                  [--panoptic-json F.json]\n"
    "  Runs the Mask R-CNN ResNet-FPN of a safetensors file (scripts/pth-to-safetensors makes\n"
    "  one from a PyTorch checkpoint) on a PNG or JPEG image and writes its detections as a\n"
    "  COCO results list: image_id, category_id (the network's class), bbox, score and the\n"
    "  mask as compressed RLE (probabilities pasted and cut at 0.5). --score-thr and\n"
    "  --detections override the weights' settings (default 0.05 and 100). --repeat N runs\n"
    "  N times and prints the seconds per image; --plain-gemm uses the plain C GEMM instead\n"
    "  of OpenBLAS. Tests: --dump-dir writes each stage's output as .npy, --proposals\n"
    "  replaces the RPN's proposals. UPSNet weights (recognised by their names): --set\n"
    "  overrides a setting of the weights' metadata (min_size, max_size, ...), --semantic\n"
    "  writes the semantic logits before the final upsampling, --panoptic-json the network's\n"
    "  panoptic result as one COCO panoptic annotation with its PNG beside it (F without\n"
    "  .json, + .png); boxes are UPSNet's [x, y, x2 - x1 + 1, y2 - y1 + 1]. mmdetection HTC\n"
    "  weights: the same --set (min_size/max_size as mmdetection's scale=(max_size,\n"
    "  min_size)), category ids from the weights' class tables, --semantic the semantic\n"
    "  head's logits (1, classes, H/8, W/8). See docs/model.md.\n";

#define INFER_MAX_SETTINGS 64

typedef struct {
    const char *weights, *image, *json, *dump_dir, *panoptic_json;
    long image_id, repeat;
    const char *settings[INFER_MAX_SETTINGS];
    native_options net;
} infer_options;

static int parse(int argc, char **argv, infer_options *o, avps_error *err) {
    memset(o, 0, sizeof *o);
    o->net.score_thresh = -1, o->repeat = 1;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        long n;
        int r;
        if ((r = cli_take(argc, argv, &i, "--weights", &o->weights, err)) || (r = cli_take(argc, argv, &i, "--image", &o->image, err)) ||
            (r = cli_take(argc, argv, &i, "--json", &o->json, err)) ||
            (r = cli_take(argc, argv, &i, "--device", &o->net.device, err)) ||
            (r = cli_take(argc, argv, &i, "--dump-dir", &o->dump_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--proposals", &o->net.proposals, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic", &o->net.semantic, err)) ||
            (r = cli_take(argc, argv, &i, "--panoptic-json", &o->panoptic_json, err))) {
            if (r < 0)
                return -1;
        } else if ((r = cli_take(argc, argv, &i, "--set", &v, err))) {
            if (r < 0)
                return -1;
            if (!strchr(v, '=') || v[0] == '=')
                return avps_fail(err, "--set %s: expected KEY=VALUE", v);
            if (o->net.n_settings == INFER_MAX_SETTINGS)
                return avps_fail(err, "--set: at most %d settings", INFER_MAX_SETTINGS);
            o->settings[o->net.n_settings++] = v;
        } else if ((r = cli_take(argc, argv, &i, "--score-thr", &v, err))) {
            if (r < 0 || cli_double("--score-thr", v, &o->net.score_thresh, err) != 0)
                return -1;
            if (o->net.score_thresh < 0 || o->net.score_thresh > 1)
                return avps_fail(err, "--score-thr must be in [0, 1]");
        } else if ((r = cli_take(argc, argv, &i, "--detections", &v, err))) {
            if (r < 0 || cli_int("--detections", v, 1, 100000, &n, err) != 0)
                return -1;
            o->net.detections = (int)n;
        } else if ((r = cli_take(argc, argv, &i, "--image-id", &v, err))) {
            if (r < 0 || cli_int("--image-id", v, 0, 1L << 53, &o->image_id, err) != 0)
                return -1;
        } else if ((r = cli_take(argc, argv, &i, "--repeat", &v, err))) {
            if (r < 0 || cli_int("--repeat", v, 1, 1000, &o->repeat, err) != 0)
                return -1;
        } else if (strcmp(argv[i], "--plain-gemm") == 0) {
            o->net.plain_gemm = 1;
        } else {
            return avps_fail(err, "unknown option '%s'\n%s", argv[i], infer_usage);
        }
    }
    if (!o->weights || !o->image || (!o->json && !o->dump_dir && !o->net.semantic && !o->panoptic_json))
        return avps_fail(err, "--weights, --image and an output (--json, --panoptic-json, --semantic, --dump-dir) are required\n%s",
                         infer_usage);
    o->net.dump_dir = o->dump_dir;
    o->net.settings = o->settings;
    return 0;
}

/* The COCO results list, atomically; masks pasted at the image's size. With a dump
 * folder, also the masks as one (K, H, W) uint8 array, masks.npy. */
static int write_results(const infer_options *o, const head_output *out, int plus_one, avps_error *err) {
    if (!o->json)
        return 0;
    atomic_file af;
    npy_array masks = {0};
    if (o->dump_dir) {
        size_t shape[3] = {out->n_instances, out->height, out->width};
        if (npy_array_alloc(&masks, NPY_U8, 3, shape, err) != 0)
            return -1;
    }
    if (file_atomic_open(&af, o->json, err) != 0) {
        npy_array_release(&masks);
        return -1;
    }
    fputc('[', af.fp);
    int rc = 0;
    for (size_t i = 0; i < out->n_instances && rc == 0; i++) {
        const is_instance *inst = &out->instances[i];
        rle_mask rle;
        if ((rc = is_instance_mask(inst, out->height, out->width, &rle, err)) != 0)
            break;
        char *counts = rle_to_string(&rle);
        if (o->dump_dir)
            rle_decode(&rle, (uint8_t *)masks.data + i * out->height * out->width);
        rle_free(&rle);
        if (!counts) {
            rc = avps_fail(err, "out of memory");
            break;
        }
        fprintf(af.fp, "%s\n{\"image_id\": %ld, \"category_id\": %d, \"bbox\": [%.9g, %.9g, %.9g, %.9g], "
                       "\"score\": %.9g, \"segmentation\": {\"size\": [%u, %u], \"counts\": ",
                i ? "," : "", o->image_id, inst->category_id, inst->box[0], inst->box[1], inst->box[2] - inst->box[0] + (float)plus_one,
                inst->box[3] - inst->box[1] + (float)plus_one, inst->score, out->height, out->width);
        json_put_string(af.fp, counts);
        fputs("}}", af.fp);
        free(counts);
    }
    fputs("]\n", af.fp);
    if (rc == 0 && o->dump_dir) {
        char *path = path_join(o->dump_dir, "masks.npy");
        rc = path ? npy_write(path, &masks, 0, err) : avps_fail(err, "out of memory");
        free(path);
    }
    npy_array_release(&masks);
    if (rc != 0) {
        file_atomic_abort(&af);
        return -1;
    }
    return file_atomic_commit(&af, err);
}

/* --panoptic-json F: the PNG (F less ".json", + ".png") first, then the annotation that
 * names it; on a failure neither stays. */
static int write_panoptic(const infer_options *o, const native_panoptic *p, avps_error *err) {
    if (!o->panoptic_json)
        return 0;
    if (!p->width)
        return avps_fail(err, "--panoptic-json: %s gives no panoptic result (UPSNet weights do)", o->weights);
    size_t n = strlen(o->panoptic_json);
    size_t stem = n > 5 && strcmp(o->panoptic_json + n - 5, ".json") == 0 ? n - 5 : n;
    char *png = malloc(stem + 5);
    if (!png)
        return avps_fail(err, "out of memory");
    memcpy(png, o->panoptic_json, stem);
    memcpy(png + stem, ".png", 5);
    const char *base = strrchr(png, '/') ? strrchr(png, '/') + 1 : png;
    if (png_write_ids(png, p->width, p->height, p->ids, err) != 0) {
        free(png);
        return -1;
    }
    atomic_file af;
    if (file_atomic_open(&af, o->panoptic_json, err) != 0) {
        unlink(png);
        free(png);
        return -1;
    }
    fprintf(af.fp, "{\"image_id\": %ld, \"file_name\": ", o->image_id);
    json_put_string(af.fp, base);
    fputs(", \"segments_info\": [", af.fp);
    for (size_t i = 0; i < p->n_segments; i++) {
        const native_pan_segment *s = &p->segments[i];
        fprintf(af.fp, "%s\n{\"id\": %u, \"category_id\": %d, \"iscrowd\": 0, \"isthing\": %d, \"area\": %u, "
                       "\"bbox\": [%d, %d, %d, %d]}",
                i ? "," : "", s->id, s->category_id, s->isthing, s->area, s->bbox[0], s->bbox[1], s->bbox[2], s->bbox[3]);
    }
    fputs("]}\n", af.fp);
    int rc = file_atomic_commit(&af, err);
    if (rc != 0)
        unlink(png);
    free(png);
    return rc;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Every output the command was asked for is checked and claimed before the network runs,
 * so that a bad --out path fails in a second, not after the forward pass. */
static int claim_outputs(avps_job *job, const infer_options *o, avps_error *err) {
    const char *files[] = {o->json, o->panoptic_json, o->net.semantic};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i] && job_output_file(job, files[i], err) != 0)
            return -1;
    if (o->dump_dir && (job_output_dir(job, o->dump_dir, err) != 0 || dir_create(o->dump_dir, err) != 0))
        return -1;
    return 0;
}

int cmd_infer(avps_job *job, int argc, char **argv) {
    avps_error err;
    infer_options o;
    if (parse(argc, argv, &o, &err) != 0)
        job_fail(job, &err);
    if (!job_is_root(job))
        return 0;
    if (claim_outputs(job, &o, &err) != 0)
        job_fail(job, &err);
    native_net *net = native_net_load(o.weights, &o.net, &err);
    if (!net)
        job_fail(job, &err);
    head_output out = {0};
    double best = 0;
    size_t first_mallocs = 0;
    for (long r = 0; r < o.repeat; r++) {
        if (r == 1)
            first_mallocs = native_net_arena_mallocs(net);
        head_output_release(&out);
        double t0 = now();
        if (native_net_run(net, o.image, &out, &err) != 0) {
            native_net_free(net);
            job_fail(job, &err);
        }
        double t = now() - t0;
        best = r == 0 || t < best ? t : best;
    }
    if (o.repeat > 1)
        fprintf(stderr, "avps infer: %.3f s per image (best of %ld), arena %.0f MB, %zu arena blocks allocated after the first image\n",
                best, o.repeat, (double)native_net_peak_bytes(net) / 1e6, native_net_arena_mallocs(net) - first_mallocs);
    native_panoptic pan;
    native_net_panoptic(net, &pan);
    int rc = write_results(&o, &out, native_net_box_plus_one(net), &err);
    if (rc == 0)
        rc = write_panoptic(&o, &pan, &err);
    head_output_release(&out);
    native_net_free(net);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
