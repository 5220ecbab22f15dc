/* fuzz_store_head.c: a prediction store as the replay head reads it (model/replay_head.c):
 * head.json, then one image's <image id>.json (its instances and the mask file it names).
 * Input: head.json's bytes, a NUL, then the image's JSON. */
#include "../../model/model.h"
#include "fuzz_config_files.h"

#include <sys/stat.h>

static pan_dataset *ds;
static char dir[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ds = fuzz_pan_dataset();
    fuzz_path(dir, sizeof dir, "store");
    mkdir(dir, 0755);
    return 0;
}

static void put(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    FUZZ_ASSERT(fp);
    if (n)
        fwrite(p, 1, n, fp);
    fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t hlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *img = nul ? nul + 1 : data + size;
    char hpath[600], ipath[600];
    snprintf(hpath, sizeof hpath, "%s/head.json", dir);
    snprintf(ipath, sizeof ipath, "%s/1.json", dir);
    put(hpath, data, hlen);
    put(ipath, img, (size_t)(data + size - img));
    head_config cfg = {"fuzz", "replay", NULL, dir, 1};
    avps_error err;
    head *h = head_new(&cfg, ds, &err);
    if (h) {
        const int32_t *cats;
        uint32_t n = head_channels(h, &cats);
        for (uint32_t c = 0; c < n; c++)
            FUZZ_ASSERT(pan_dataset_category_index(ds, cats[c]) >= 0);
        head_input in = {&ds->images[0], &ds->annotations[0], NULL, NULL};
        head_output out;
        memset(&out, 0, sizeof out);
        (void)head_run(h, &in, &out, &err);
        head_output_release(&out);
        head_free(h);
    }
    unlink(hpath), unlink(ipath);
    return 0;
}
