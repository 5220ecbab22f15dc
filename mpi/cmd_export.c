/* cmd_export.c: `avps export`, any head's outputs (simulated or stored) in the field's
 * formats: instances as a COCO results JSON (compressed RLE), semantic segmentation as
 * grey PNG label maps. What a user hands to pycocotools or panopticapi. */
#include "commands.h"

#include "../ensemble/ensemble.h"
#include "../model/model.h"
#include "cli.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>

const char export_usage[] =
    "usage: avps export --gt-json F [--gt-dir D] --head NAME --backend sim|replay [--profile P]\n"
    "                   [--progress auto|bar|lines|none]\n"
    "                   [--store D] [--seed S] [--results F] [--semantic-dir D] [--semantic-json F]\n"
    "                   [--store-out D] [--threads N] [--weights F --images D]\n"
    "       avps export --gt-json F --head NAME --member NAME:PROFILE:WEIGHT ... [--member-store NAME:DIR:WEIGHT ...]\n"
    "                   [--group-iou X] [--nms-iou X] [outputs as above]\n"
    "  Runs a head on every image of the panoptic dataset F and writes its instances as a\n"
    "  COCO results JSON (--results: compressed RLE, bbox from the mask, score) and its\n"
    "  semantic segmentation as 8-bit grey PNGs (--semantic-dir: value = the argmax's\n"
    "  category id, 0 = no class; named as the ground truth's PNGs) or as COCO results with\n"
    "  one RLE per image and category (--semantic-json, panopticapi's combine input), and\n"
    "  everything as a\n"
    "  prediction store (--store-out, docs/formats.md). sim heads need the\n"
    "  ground truth PNGs (--gt-dir, default F without .json); replay heads read --store.\n"
    "  With --member (a sim head of a profile) or --member-store (a replay head of a store),\n"
    "  given once per member, the head NAME is their weighted ensemble (docs/algorithms.md,\n"
    "  \"Weighted ensemble\"): --group-iou (0.5) groups instances, --nms-iou (0.5) suppresses.\n"
    "  Native heads (--backend native) run the Mask R-CNN of --weights on the images in --images.\n";

#define EXPORT_MAX_MEMBERS 16

typedef struct {
    const char *gt_json, *gt_dir, *results, *semantic_dir, *semantic_json, *store_out;
    store_writer *store;
    head_config head_cfg;
    const char *member[EXPORT_MAX_MEMBERS]; /* NAME:PROFILE:WEIGHT or NAME:DIR:WEIGHT */
    int member_is_store[EXPORT_MAX_MEMBERS];
    size_t n_members;
    ensemble_options ensemble;
    long threads;
    progress_mode progress;
    pan_dataset *gt;
    head *head;
} export_job;

static int parse_options(int argc, char **argv, export_job *o, avps_error *err) {
    head_config *h = &o->head_cfg;
    h->seed = 1;
    ensemble_options_default(&o->ensemble);
    for (int i = 0; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "export", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *threads = NULL, *seed = NULL, *member = NULL, *member_store = NULL, *group_iou = NULL,
                   *nms_iou = NULL;
        long v;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--gt-dir", &o->gt_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--results", &o->results, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-dir", &o->semantic_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--semantic-json", &o->semantic_json, err)) ||
            (r = cli_take(argc, argv, &i, "--store-out", &o->store_out, err)) ||
            (r = cli_take(argc, argv, &i, "--head", &h->name, err)) ||
            (r = cli_take(argc, argv, &i, "--backend", &h->backend, err)) ||
            (r = cli_take(argc, argv, &i, "--profile", &h->profile, err)) ||
            (r = cli_take(argc, argv, &i, "--store", &h->store, err)) ||
            (r = cli_take(argc, argv, &i, "--weights", &h->profile, err)) ||
            (r = cli_take(argc, argv, &i, "--images", &h->store, err)) ||
            (r = cli_take(argc, argv, &i, "--seed", &seed, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err)) ||
            (r = cli_take(argc, argv, &i, "--member", &member, err)) ||
            (r = cli_take(argc, argv, &i, "--member-store", &member_store, err)) ||
            (r = cli_take(argc, argv, &i, "--group-iou", &group_iou, err)) ||
            (r = cli_take(argc, argv, &i, "--nms-iou", &nms_iou, err))) {
            if (r < 0 || (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0))
                return -1;
            if ((group_iou && cli_double("--group-iou", group_iou, &o->ensemble.group_iou, err) != 0) ||
                (nms_iou && cli_double("--nms-iou", nms_iou, &o->ensemble.nms_iou, err) != 0))
                return -1;
            if ((member || member_store) && o->n_members == EXPORT_MAX_MEMBERS)
                return avps_fail(err, "export: more than %d members", EXPORT_MAX_MEMBERS);
            if (member || member_store) {
                o->member_is_store[o->n_members] = member_store != NULL;
                o->member[o->n_members++] = member ? member : member_store;
            }
            if (seed && cli_int("--seed", seed, 0, 2147483647, &v, err) != 0)
                return -1;
            if (seed)
                h->seed = (uint64_t)v;
            continue;
        }
        return avps_fail(err, "export: unknown argument '%s'\n%s", argv[i], export_usage);
    }
    if (!o->gt_json || !h->name || (!h->backend && !o->n_members))
        return avps_fail(err, "export: --gt-json, --head and --backend (or --member) are required\n%s", export_usage);
    if (h->backend && o->n_members)
        return avps_fail(err, "export: --backend names one head's backend; an ensemble's members carry their own\n%s",
                         export_usage);
    if (!o->results && !o->semantic_dir && !o->semantic_json && !o->store_out)
        return avps_fail(err, "export: nothing to write: give --results, --semantic-dir, --semantic-json or --store-out\n%s",
                         export_usage);
    return 0;
}

/* One member NAME:MIDDLE:WEIGHT: a sim head of profile MIDDLE, or a replay head of store
 * MIDDLE (which may hold ':'), with its weight. */
static head *member_new(const export_job *o, size_t i, char *spec, double *weight, avps_error *err) {
    char *first = strchr(spec, ':'), *last = strrchr(spec, ':');
    const char *option = o->member_is_store[i] ? "--member-store" : "--member";
    if (!first || first == last || first == spec || first + 1 == last)
        return avps_fail(err, "export: %s %s: expected NAME:%s:WEIGHT", option, o->member[i],
                         o->member_is_store[i] ? "DIR" : "PROFILE"), NULL;
    *first = *last = '\0';
    if (cli_double(option, last + 1, weight, err) != 0)
        return NULL;
    head_config cfg = {spec, o->member_is_store[i] ? "replay" : "sim", NULL, NULL, o->head_cfg.seed};
    if (o->member_is_store[i])
        cfg.store = first + 1;
    else
        cfg.profile = first + 1;
    return head_new(&cfg, o->gt, err);
}

/* The head to export: the one of --head/--backend, or the ensemble of the members. */
static head *export_head_new(const export_job *o, avps_error *err) {
    if (!o->n_members)
        return head_new(&o->head_cfg, o->gt, err);
    head *members[EXPORT_MAX_MEMBERS];
    double weights[EXPORT_MAX_MEMBERS];
    size_t n = 0;
    for (; n < o->n_members; n++) {
        char *spec = strdup(o->member[n]);
        members[n] = spec ? member_new(o, n, spec, &weights[n], err) : NULL;
        if (!spec)
            avps_fail(err, "out of memory");
        free(spec);
        if (!members[n])
            break;
    }
    if (n < o->n_members) {
        while (n > 0)
            head_free(members[--n]);
        return NULL;
    }
    return ensemble_head_new(o->head_cfg.name, members, weights, n, &o->ensemble, err);
}

/* The argmax's category per pixel, a row at a time, as an 8-bit grey label map. */
/* The argmax's category per pixel as an 8-bit grey label map (0: no class). */
static int semantic_labels(const head_output *out, uint8_t *gray, avps_error *err) {
    const ss_map *ss = &out->ss;
    uint32_t w = out->width, h = out->height;
    float *row = malloc((size_t)ss->channels * w * sizeof *row);
    uint16_t *arg = malloc(sizeof *arg * (w + 1));
    ss_sampler *sampler = ss_sampler_new(ss, w, err);
    int rc = sampler ? 0 : -1;
    if (rc == 0 && (!row || !arg))
        rc = avps_fail(err, "out of memory");
    for (uint32_t c = 0; rc == 0 && c < ss->channels; c++)
        if (ss->channel_category[c] < 0 || ss->channel_category[c] > 255)
            rc = avps_fail(err, "category %d does not fit an 8-bit semantic PNG", ss->channel_category[c]);
    for (uint32_t y = 0; rc == 0 && y < h; y++) {
        ss_sampler_row(sampler, y, row);
        /* channel-major rows: the running maximum vectorises across the row */
        float *best = row; /* channel 0's values become the running maximum */
        memset(arg, 0, w * sizeof *arg);
        for (uint32_t c = 1; c < ss->channels; c++) {
            const float *v = row + (size_t)c * w;
            for (uint32_t x = 0; x < w; x++) {
                int better = v[x] > best[x];
                best[x] = better ? v[x] : best[x];
                arg[x] = better ? (uint16_t)c : arg[x];
            }
        }
        for (uint32_t x = 0; x < w; x++)
            gray[(size_t)y * w + x] = best[x] > 0 ? (uint8_t)ss->channel_category[arg[x]] : 0;
    }
    ss_sampler_free(sampler);
    free(row);
    free(arg);
    return rc;
}

/* One entry per category present: its pixels as compressed RLE. */
static int append_semantic(const pan_annotation *ann, const uint8_t *gray, uint32_t h, uint32_t w, job_blob *b,
                           avps_error *err) {
    uint8_t present[256] = {0};
    uint8_t *mask = malloc((size_t)h * w + 1);
    int rc = mask ? 0 : avps_fail(err, "out of memory");
    for (size_t i = 0; i < (size_t)h * w; i++)
        present[gray[i]] = 1;
    for (int v = 1; v < 256 && rc == 0; v++) {
        if (!present[v])
            continue;
        for (size_t i = 0; i < (size_t)h * w; i++)
            mask[i] = gray[i] == v;
        rle_mask m;
        char *counts = NULL;
        char line[256];
        if (rle_encode(mask, h, w, &m) != 0 || !(counts = rle_to_string(&m)))
            rc = avps_fail(err, "out of memory");
        snprintf(line, sizeof line,
                 "{\"image_id\": %s, \"category_id\": %d, \"segmentation\": {\"size\": [%u, %u], \"counts\": \"",
                 ann->image_id, v, h, w);
        if (rc == 0 && (job_blob_append(b, line, strlen(line)) || job_blob_append_json_text(b, counts) ||
                        job_blob_append(b, "\"}},\n", 5)))
            rc = avps_fail(err, "out of memory");
        free(counts);
        rle_free(&m);
    }
    free(mask);
    return rc;
}

static int write_semantic(const export_job *ej, const pan_annotation *ann, const head_output *out, job_blob *sem,
                          avps_error *err) {
    uint8_t *gray = malloc((size_t)out->width * out->height + 1);
    char *path = ej->semantic_dir ? path_join(ej->semantic_dir, ann->file_name) : NULL;
    int rc = gray && (path || !ej->semantic_dir) ? semantic_labels(out, gray, err) : avps_fail(err, "out of memory");
    if (rc == 0 && ej->semantic_dir)
        rc = png_write_gray(path, out->width, out->height, gray, err);
    if (rc == 0 && ej->semantic_json)
        rc = append_semantic(ann, gray, out->height, out->width, sem, err);
    free(gray);
    free(path);
    return rc;
}

/* One results entry per instance, each ending in ",\n" (the root trims the last). */
static int append_instances(const pan_annotation *ann, const head_output *out, job_blob *b, avps_error *err) {
    for (size_t i = 0; i < out->n_instances; i++) {
        const is_instance *inst = &out->instances[i];
        rle_mask m;
        if (is_instance_mask(inst, out->height, out->width, &m, err) != 0)
            return avps_prefix(err, "instance %zu", i);
        double box[4];
        rle_bbox(&m, box);
        char *counts = rle_to_string(&m);
        char line[512];
        snprintf(line, sizeof line,
                 "{\"image_id\": %s, \"category_id\": %d, \"bbox\": [%.17g, %.17g, %.17g, %.17g], \"score\": %.17g, "
                 "\"segmentation\": {\"size\": [%u, %u], \"counts\": \"",
                 ann->image_id, inst->category_id, box[0], box[1], box[2], box[3], inst->score, m.h, m.w);
        int bad = !counts || job_blob_append(b, line, strlen(line)) || job_blob_append_json_text(b, counts) ||
                  job_blob_append(b, "\"}},\n", 5);
        free(counts);
        rle_free(&m);
        if (bad)
            return avps_fail(err, "out of memory");
    }
    return 0;
}

static int export_one(void *ctx, int thread, size_t item, job_blob *blob, avps_error *err) {
    export_job *ej = ctx;
    const pan_annotation *ann = &ej->gt->annotations[item];
    const pan_image *im = pan_dataset_find_image(ej->gt, ann->image_id);
    (void)thread;
    if (!im)
        return avps_fail(err, "%s: image %s has an annotation but no entry in images", ej->gt_json, ann->image_id);
    char *png = path_join(ej->gt_dir, ann->file_name);
    head_input in = {im, ann, png, NULL};
    head_output out;
    int rc = png ? head_run(ej->head, &in, &out, err) : avps_fail(err, "out of memory");
    job_blob res = {0}, sem = {0};
    if (rc == 0 && ej->results)
        rc = append_instances(ann, &out, &res, err);
    if (rc == 0 && (ej->semantic_dir || ej->semantic_json))
        rc = write_semantic(ej, ann, &out, &sem, err);
    /* the blob: the results part's length, the results part, the semantic part */
    uint64_t len = res.len;
    if (rc == 0 && (job_blob_append(blob, &len, sizeof len) || job_blob_append(blob, res.data, res.len) ||
                    job_blob_append(blob, sem.data, sem.len)))
        rc = avps_fail(err, "out of memory");
    free(res.data);
    free(sem.data);
    if (rc == 0 && ej->store_out)
        rc = store_writer_put(ej->store, ann->image_id, &out, err);
    if (png && rc != 0)
        avps_prefix(err, "image %s", ann->image_id);
    if (png)
        head_output_release(&out);
    free(png);
    return rc;
}

/* A JSON list of the entries in part 0 (results) or 1 (semantic) of every blob. */
static int write_list(const char *path, const export_job *ej, const job_blob *blobs, int part, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    const char *sep = "";
    fputs("[", af.fp);
    for (size_t i = 0; i < ej->gt->n_annotations; i++) {
        uint64_t len;
        memcpy(&len, blobs[i].data, sizeof len);
        const char *p = (const char *)blobs[i].data + sizeof len + (part ? len : 0);
        size_t n = part ? blobs[i].len - sizeof len - len : len;
        if (n < 2)
            continue;
        fputs(sep, af.fp);
        fwrite(p, 1, n - 2, af.fp); /* without the last ",\n" */
        sep = ",\n";
    }
    fputs("]\n", af.fp);
    return file_atomic_commit(&af, err);
}

/* Every output checked, and what it will create claimed, before any work (job.h). */
static int claim_outputs(avps_job *job, const export_job *ej, avps_error *err) {
    if ((ej->results && job_output_file(job, ej->results, err) != 0) ||
        (ej->semantic_json && job_output_file(job, ej->semantic_json, err) != 0) ||
        (ej->semantic_dir && job_output_dir(job, ej->semantic_dir, err) != 0))
        return -1;
    if (!ej->store_out)
        return 0;
    char *staging = store_staging_path(ej->store_out);
    int rc = staging ? job_output_dir(job, ej->store_out, err) || job_output_claim(job, staging, err)
                     : avps_fail(err, "out of memory");
    free(staging);
    return rc ? -1 : 0;
}

int cmd_export(avps_job *job, int argc, char **argv) {
    export_job ej = {0};
    avps_error err;
    char *dir = NULL;
    int rc = parse_options(argc, argv, &ej, &err);
    if (rc == 0) {
        if (!ej.threads)
            ej.threads = job_cpu_count();
        if (!ej.gt_dir)
            ej.gt_dir = dir = path_without_json_suffix(ej.gt_json);
        ej.gt = pan_dataset_load(ej.gt_json, PAN_GROUND_TRUTH, &err);
        rc = ej.gt ? 0 : -1;
    }
    if (rc == 0)
        rc = (ej.head = export_head_new(&ej, &err)) ? 0 : -1;
    if (rc == 0)
        rc = claim_outputs(job, &ej, &err);
    const int32_t *no_cats;
    if (rc == 0 && (ej.semantic_dir || ej.semantic_json) && head_channels(ej.head, &no_cats) == 0)
        rc = avps_fail(&err, "export: head %s has no semantic side (an instance-only end): no --semantic-dir or "
                             "--semantic-json to write", head_name(ej.head));
    if (rc == 0 && ej.semantic_dir && job_is_root(job))
        rc = dir_create(ej.semantic_dir, &err);
    if (rc == 0 && ej.store_out) {
        const int32_t *cats;
        uint32_t channels = head_channels(ej.head, &cats);
        ej.store = store_writer_new(ej.store_out, head_name(ej.head), head_ss_kind(ej.head), cats, channels,
                                    job_is_root(job), &err);
        rc = ej.store ? 0 : -1;
        if (rc == 0 && !head_has_instances(ej.head))
            store_writer_no_instances(ej.store);
    }
    if (rc == 0)
        job_barrier(job); /* the root has made the folders */
    if (rc == 0) {
        job_blob *blobs = progress_map(job, ej.gt->n_annotations, (int)ej.threads, export_one, &ej, ej.progress, "avps export");
        if (blobs && ej.results)
            rc = write_list(ej.results, &ej, blobs, 0, &err);
        if (blobs && rc == 0 && ej.semantic_json)
            rc = write_list(ej.semantic_json, &ej, blobs, 1, &err);
        if (blobs && rc == 0 && ej.store)
            rc = store_writer_finish(ej.store, &err);
        if (blobs)
            job_blobs_free(blobs, ej.gt->n_annotations);
    }
    store_writer_free(ej.store);
    head_free(ej.head);
    pan_dataset_free(ej.gt);
    free(dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
