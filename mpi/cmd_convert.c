/* cmd_convert.c: `avps convert panoptic-to-instances`, the thing segments of a COCO
 * panoptic ground truth as a COCO instances file (compressed RLE masks, iscrowd carried
 * over), so that mask AP can be measured where only panoptic annotations exist. */
#include "commands.h"

#include "cli.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>

const char convert_usage[] =
    "usage: avps convert panoptic-to-instances --gt-json F [--gt-dir D] --out F [--threads N]\n"
    "                    [--progress auto|bar|lines|none]\n"
    "  Writes the thing segments of a COCO panoptic ground truth as COCO instances: one\n"
    "  annotation per segment (ids 1, 2, ... in dataset order), compressed RLE, iscrowd and\n"
    "  area from the panoptic JSON, bbox from the mask; thing categories only.\n";

typedef struct {
    const char *gt_json, *gt_dir, *out;
    long threads;
    progress_mode progress;
    pan_dataset *gt;
} convert_job;

static int parse_options(int argc, char **argv, convert_job *o, avps_error *err) {
    if (argc < 1 || strcmp(argv[0], "panoptic-to-instances") != 0)
        return avps_fail(err, "convert: the only conversion is panoptic-to-instances\n%s", convert_usage);
    for (int i = 1; i < argc; i++) {
        int pr = progress_take(argc, argv, &i, "convert", &o->progress, err);
        if (pr < 0)
            return -1;
        if (pr > 0)
            continue;
        const char *threads = NULL;
        int r = 0;
        if ((r = cli_take(argc, argv, &i, "--gt-json", &o->gt_json, err)) ||
            (r = cli_take(argc, argv, &i, "--gt-dir", &o->gt_dir, err)) ||
            (r = cli_take(argc, argv, &i, "--out", &o->out, err)) ||
            (r = cli_take(argc, argv, &i, "--threads", &threads, err))) {
            if (r < 0 || (threads && cli_int("--threads", threads, 1, 1024, &o->threads, err) != 0))
                return -1;
            continue;
        }
        return avps_fail(err, "convert: unknown argument '%s'\n%s", argv[i], convert_usage);
    }
    if (!o->gt_json || !o->out)
        return avps_fail(err, "convert: --gt-json and --out are required\n%s", convert_usage);
    return 0;
}

/* Blob: "h w\n" then one JSON fragment per thing segment, each ending in '\n'. */
static int convert_one(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    convert_job *cj = ctx;
    const pan_annotation *ann = &cj->gt->annotations[item];
    (void)thread;
    rle_mask *masks = calloc(ann->n_segments + 1, sizeof *masks);
    char *png = path_join(cj->gt_dir, ann->file_name);
    uint32_t h = 0, w = 0;
    int rc = masks && png ? pan_thing_masks(cj->gt, ann, png, masks, &h, &w, err) : avps_fail(err, "out of memory");
    char line[256];
    if (rc == 0) {
        snprintf(line, sizeof line, "%u %u\n", h, w);
        rc = job_blob_append(out, line, strlen(line));
    }
    for (size_t i = 0; rc == 0 && i < ann->n_segments; i++) {
        const pan_segment *s = &ann->segments[i];
        if (masks[i].h == 0)
            continue;
        double box[4];
        rle_bbox(&masks[i], box);
        char *counts = rle_to_string(&masks[i]);
        snprintf(line, sizeof line,
                 "\"category_id\": %d, \"iscrowd\": %d, \"area\": %.17g, \"bbox\": [%.17g, %.17g, %.17g, %.17g], "
                 "\"segmentation\": {\"size\": [%u, %u], \"counts\": \"",
                 s->category_id, s->iscrowd, s->area, box[0], box[1], box[2], box[3], h, w);
        rc = !counts || job_blob_append(out, line, strlen(line)) || job_blob_append_json_text(out, counts) ||
                     job_blob_append(out, "\"}}\n", 4)
                 ? avps_fail(err, "out of memory")
                 : 0;
        free(counts);
    }
    for (size_t i = 0; masks && i < ann->n_segments; i++)
        rle_free(&masks[i]);
    free(masks);
    free(png);
    return rc;
}

static void write_images(FILE *fp, const pan_dataset *gt, job_blob *blobs) {
    fputs("{\"images\": [", fp);
    for (size_t i = 0; i < gt->n_annotations; i++) {
        unsigned h = 0, w = 0;
        char head[32] = {0}; /* blobs are not NUL-terminated */
        memcpy(head, blobs[i].data, blobs[i].len < sizeof head - 1 ? blobs[i].len : sizeof head - 1);
        sscanf(head, "%u %u", &h, &w);
        const pan_image *im = pan_dataset_find_image(gt, gt->annotations[i].image_id);
        fprintf(fp, "%s\n  {\"id\": %s, \"file_name\": ", i ? "," : "", gt->annotations[i].image_id);
        json_put_string(fp, im ? im->file_name : gt->annotations[i].file_name);
        fprintf(fp, ", \"height\": %u, \"width\": %u}", h, w);
    }
}

static int write_instances(const convert_job *cj, job_blob *blobs, avps_error *err) {
    atomic_file af;
    if (file_atomic_open(&af, cj->out, err) != 0)
        return -1;
    write_images(af.fp, cj->gt, blobs);
    fputs("],\n\"annotations\": [", af.fp);
    size_t id = 0;
    for (size_t i = 0; i < cj->gt->n_annotations; i++) {
        const char *p = memchr(blobs[i].data, '\n', blobs[i].len), *end = (const char *)blobs[i].data + blobs[i].len;
        for (p = p ? p + 1 : end; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            fprintf(af.fp, "%s\n  {\"id\": %zu, \"image_id\": %s, %.*s", id ? "," : "", id + 1,
                    cj->gt->annotations[i].image_id, (int)(nl - p), p);
            id++;
            p = nl + 1;
        }
    }
    fputs("],\n\"categories\": [", af.fp);
    int first = 1;
    for (size_t c = 0; c < cj->gt->n_categories; c++)
        if (cj->gt->categories[c].isthing) {
            fprintf(af.fp, "%s\n  {\"id\": %d, \"name\": ", first ? "" : ",", cj->gt->categories[c].id);
            json_put_string(af.fp, cj->gt->categories[c].name);
            fputc('}', af.fp);
            first = 0;
        }
    fputs("]}\n", af.fp);
    return file_atomic_commit(&af, err);
}

int cmd_convert(avps_job *job, int argc, char **argv) {
    convert_job cj = {0};
    avps_error err;
    char *dir = NULL;
    int rc = parse_options(argc, argv, &cj, &err);
    if (rc == 0)
        rc = job_output_file(job, cj.out, &err);
    if (rc == 0) {
        if (!cj.threads)
            cj.threads = job_cpu_count();
        if (!cj.gt_dir)
            cj.gt_dir = dir = path_without_json_suffix(cj.gt_json);
        cj.gt = pan_dataset_load(cj.gt_json, PAN_GROUND_TRUTH, &err);
        rc = cj.gt ? 0 : -1;
    }
    if (rc == 0) {
        job_blob *blobs = progress_map(job, cj.gt->n_annotations, (int)cj.threads, convert_one, &cj, cj.progress, "avps convert");
        if (blobs) {
            rc = write_instances(&cj, blobs, &err);
            job_blobs_free(blobs, cj.gt->n_annotations);
        }
    }
    pan_dataset_free(cj.gt);
    free(dir);
    if (rc != 0)
        job_fail(job, &err);
    return 0;
}
