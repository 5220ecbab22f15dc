/* unit_data.c: the data module: errors, paths, PNG round trips, COCO panoptic JSON
 * reading and its refusals, and the synthetic world's determinism. */
#include "../data/data.h"
#include "../data/png_fast.h" /* white-box: the libdeflate path refuses on its own too */
#include "check.h"

#include <libdeflate.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/avps_unit_data_XXXXXX";

static char *write_text(const char *name, const char *text) {
    char *path = path_join(tmpdir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void test_errors_and_paths(check_tally *t) {
    avps_error err;
    CHECK(t, avps_fail(&err, "segment %d", 7) == -1);
    CHECK(t, avps_prefix(&err, "f.json: image %s", "5") == -1);
    CHECK(t, strcmp(err.msg, "f.json: image 5: segment 7") == 0);
    char *a = path_without_json_suffix("x/panoptic_val.json"), *b = path_without_json_suffix("x/y.png");
    CHECK(t, strcmp(a, "x/panoptic_val") == 0);
    CHECK(t, strcmp(b, "x/y.png") == 0);
    char *c = path_join("dir/", "f.png"), *d = path_join("dir", "f.png");
    CHECK(t, strcmp(c, "dir/f.png") == 0 && strcmp(d, "dir/f.png") == 0);
    free(a), free(b), free(c), free(d);
}

static void test_png_round_trip(check_tally *t) {
    enum { W = 5, H = 3 };
    uint8_t rgb[W * H * 3], row[W * 3];
    for (int i = 0; i < W * H; i++)
        id_to_rgb((uint32_t)(i * 1234567u) & 0xFFFFFF, rgb + 3 * i);
    avps_error err;
    char *path = path_join(tmpdir, "rt.png");
    CHECK(t, png_write_rgb(path, W, H, rgb, &err) == 0);
    png_reader *r = png_reader_open(path, &err);
    CHECK(t, r != NULL);
    if (!r)
        return;
    CHECK(t, png_reader_width(r) == W && png_reader_height(r) == H);
    int same = 1;
    for (int y = 0; y < H; y++) {
        CHECK(t, png_reader_read_row(r, row, &err) == 0);
        for (int x = 0; x < W; x++)
            same &= rgb_to_id(row + 3 * x) == ((uint32_t)((y * W + x) * 1234567u) & 0xFFFFFF);
    }
    CHECK(t, same);
    CHECK(t, png_reader_read_row(r, row, &err) == -1); /* past the end */
    png_reader_free(r);
    char *bad = write_text("bad.png", "this is not a PNG");
    CHECK(t, png_reader_open(bad, &err) == NULL && strstr(err.msg, "bad.png") != NULL);
    free(path);
    free(bad);
}

/* A larger image with smooth and noisy parts, so that the encoder picks every filter;
 * then one flipped byte, which the chunk CRC must catch. */
static void test_png_filters_and_crc(check_tally *t) {
    enum { W = 97, H = 61 };
    static uint8_t rgb[W * H * 3], row[W * 3];
    uint64_t z = 12345;
    for (int i = 0; i < W * H; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t id = i % W < 40 ? (uint32_t)(i / W * 3 + i % W / 8) : (uint32_t)(z >> 40);
        id_to_rgb(id & 0xFFFFFF, rgb + 3 * i);
    }
    avps_error err;
    char *path = path_join(tmpdir, "filters.png");
    CHECK(t, png_write_rgb(path, W, H, rgb, &err) == 0);
    png_reader *r = png_reader_open(path, &err);
    CHECK(t, r != NULL);
    int same = r != NULL;
    for (int y = 0; r && y < H; y++)
        same &= png_reader_read_row(r, row, &err) == 0 && memcmp(row, rgb + y * W * 3, W * 3) == 0;
    CHECK(t, same);
    png_reader_free(r);
    FILE *fp = fopen(path, "r+b");
    fseek(fp, 60, SEEK_SET); /* inside the first IDAT */
    int c = fgetc(fp);
    fseek(fp, 60, SEEK_SET);
    fputc(c ^ 0x40, fp);
    fclose(fp);
    r = png_reader_open(path, &err);
    CHECK(t, r == NULL && strstr(err.msg, "filters.png: corrupt PNG") != NULL);
    png_reader_free(r);
    free(path);
}

/* A 2-bit palette PNG with a tRNS chunk, as Pillow writes a P image with transparency:
 * libpng's palette expansion makes RGBA of it, which once overflowed the RGB row. */
static void test_png_palette_trns(check_tally *t) {
    static const uint8_t png[] = {
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 3, 0, 0, 0, 2, 2, 3, 0, 0, 0, 224,
        26, 142, 137, 0, 0, 0, 9, 80, 76, 84, 69, 10, 20, 30, 200, 100, 50, 0, 255, 7, 31, 54, 174, 179, 0, 0,
        0, 3, 116, 82, 78, 83, 0, 128, 255, 236, 247, 179, 24, 0, 0, 0, 12, 73, 68, 65, 84, 120, 156, 99, 144,
        96, 152, 0, 0, 0, 220, 0, 169, 108, 231, 192, 35, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130};
    static const uint8_t want[2][9] = {{10, 20, 30, 200, 100, 50, 0, 255, 7}, {0, 255, 7, 200, 100, 50, 10, 20, 30}};
    char *path = path_join(tmpdir, "palette_trns.png");
    FILE *fp = fopen(path, "wb");
    CHECK(t, fp && fwrite(png, 1, sizeof png, fp) == sizeof png && fclose(fp) == 0);
    avps_error err;
    png_reader *r = png_reader_open(path, &err);
    CHECK(t, r != NULL && png_reader_width(r) == 3 && png_reader_height(r) == 2);
    uint8_t row[9];
    for (int y = 0; r && y < 2; y++)
        CHECK(t, png_reader_read_row(r, row, &err) == 0 && memcmp(row, want[y], 9) == 0);
    png_reader_free(r);
    free(path);
}

/* A PNG of the given header around a tiny IDAT (one zero row of 1 pixel, compressed),
 * CRCs right: what a hostile or truncated file looks like to the header checks. */
static size_t tiny_png(uint8_t *out, uint32_t w, uint32_t h, int depth, int type, int interlace) {
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        (uint8_t)depth, (uint8_t)type, 0, 0, (uint8_t)interlace};
    uint8_t raw[4] = {0}, z[64]; /* one row of one RGB pixel */
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(9);
    size_t zlen = libdeflate_zlib_compress(c, raw, sizeof raw, z, sizeof z);
    libdeflate_free_compressor(c);
    size_t n = 0;
    memcpy(out, sig, 8), n = 8;
    const struct { const char *type; const uint8_t *data; size_t len; } chunks[] = {
        {"IHDR", ihdr, 13}, {"IDAT", z, zlen}, {"IEND", NULL, 0}};
    for (int i = 0; i < 3; i++) {
        uint32_t len = (uint32_t)chunks[i].len;
        uint8_t *p = out + n;
        p[0] = (uint8_t)(len >> 24), p[1] = (uint8_t)(len >> 16), p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
        memcpy(p + 4, chunks[i].type, 4);
        if (len)
            memcpy(p + 8, chunks[i].data, len);
        uint32_t crc = libdeflate_crc32(0, p + 4, len + 4);
        p[8 + len] = (uint8_t)(crc >> 24), p[9 + len] = (uint8_t)(crc >> 16);
        p[10 + len] = (uint8_t)(crc >> 8), p[11 + len] = (uint8_t)crc;
        n += 12 + len;
    }
    return n;
}

/* A small file claiming 46341 x 46341 is refused from its header, on the libdeflate path
 * (RGB), libpng's Adam7 path and libpng's streamed path (grey), with the file named and
 * nothing sized from the header; a file of the wrong size is refused before it is read. */
static void test_png_header_bounds(check_tally *t) {
    static const struct { int depth, type, interlace; } kinds[] = {{8, 2, 0}, {8, 6, 0}, {8, 2, 1}, {8, 0, 0}, {1, 0, 1}, {16, 0, 0}};
    uint8_t png[128];
    char *path = path_join(tmpdir, "huge.png");
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        size_t n = tiny_png(png, 46341, 46341, kinds[k].depth, kinds[k].type, kinds[k].interlace);
        FILE *fp = fopen(path, "wb");
        CHECK(t, fp && fwrite(png, 1, n, fp) == n && fclose(fp) == 0);
        avps_error err = {{0}};
        png_reader *r = png_reader_open(path, &err);
        CHECK(t, r == NULL && strstr(err.msg, "huge.png: corrupt PNG: the header claims 46341x46341") != NULL &&
                     strstr(err.msg, "out of memory") == NULL);
        png_reader_free(r);
        r = png_reader_open_sized(path, 640, 480, &err);
        CHECK(t, r == NULL && strstr(err.msg, "huge.png: the PNG is 46341x46341, but 640x480 is expected") != NULL);
        png_reader_free(r);
    }
    /* the fast path on its own refuses too (it is also reached without png_reader) */
    size_t n = tiny_png(png, 40000, 40000, 8, 2, 0);
    png_fast f;
    const char *why = NULL;
    CHECK(t, png_fast_open(png, n, &f, NULL, &why) == -1 && why && strstr(why, "too short") != NULL);
    /* a legal 1x1 file passes both checks; an image of zeros, compressed as far as deflate
     * goes, is within the bound */
    n = tiny_png(png, 1, 1, 8, 2, 0);
    FILE *fp = fopen(path, "wb");
    CHECK(t, fp && fwrite(png, 1, n, fp) == n && fclose(fp) == 0);
    avps_error err = {{0}};
    png_reader *r = png_reader_open_sized(path, 1, 1, &err);
    uint8_t row[3] = {9, 9, 9};
    CHECK(t, r != NULL && png_reader_read_row(r, row, &err) == 0 && row[0] == 0 && row[2] == 0);
    png_reader_free(r);
    enum { Z = 2000 };
    uint8_t *zeros = calloc((size_t)Z * Z * 3, 1);
    CHECK(t, zeros && png_write_rgb(path, Z, Z, zeros, &err) == 0);
    r = png_reader_open_sized(path, Z, Z, &err);
    CHECK(t, r != NULL);
    png_reader_free(r);
    free(zeros);
    free(path);
}

/* The format puts IHDR first; libpng skips an ancillary chunk before a later IHDR, which
 * the size checks never saw (a fuzz finding: a 3x2 open returned a 6x5 image). Refused on
 * every path, naming the file. */
static void test_png_ihdr_not_first(check_tally *t) {
    uint8_t png[128], out[160];
    size_t n = tiny_png(png, 6, 5, 8, 2, 0);
    static const uint8_t extra[12] = {0, 0, 0, 0, 'a', 'a', 'a', 'a', 0, 0, 0, 0};
    uint8_t chunk[12];
    memcpy(chunk, extra, sizeof chunk);
    uint32_t crc = libdeflate_crc32(0, chunk + 4, 4);
    chunk[8] = (uint8_t)(crc >> 24), chunk[9] = (uint8_t)(crc >> 16), chunk[10] = (uint8_t)(crc >> 8);
    chunk[11] = (uint8_t)crc;
    memcpy(out, png, 8);
    memcpy(out + 8, chunk, sizeof chunk);
    memcpy(out + 20, png + 8, n - 8);
    char *path = path_join(tmpdir, "late_ihdr.png");
    FILE *fp = fopen(path, "wb");
    CHECK(t, fp && fwrite(out, 1, n + 12, fp) == n + 12 && fclose(fp) == 0);
    avps_error err = {{0}};
    png_reader *r = png_reader_open_sized(path, 3, 2, &err);
    CHECK(t, r == NULL && strstr(err.msg, "late_ihdr.png: corrupt PNG: the first chunk is not a 13-byte IHDR"));
    png_reader_free(r);
    r = png_reader_open_libpng(path, 0, 0, &err);
    CHECK(t, r == NULL && strstr(err.msg, "late_ihdr.png: corrupt PNG: the first chunk is not"));
    png_reader_free(r);
    png_label_reader *l = png_label_open(path, 3, 2, &err);
    CHECK(t, l == NULL && strstr(err.msg, "late_ihdr.png: corrupt PNG: the first chunk is not"));
    png_label_free(l);
    free(path);
}

static const char gt_ok[] =
    "{\"images\": [{\"id\": 5, \"file_name\": \"a.jpg\", \"width\": 4, \"height\": 2}],\n"
    " \"annotations\": [{\"image_id\": 5, \"file_name\": \"a.png\", \"segments_info\": [\n"
    "   {\"id\": 7, \"category_id\": 1, \"iscrowd\": 0, \"area\": 3},\n"
    "   {\"id\": 9, \"category_id\": 2, \"iscrowd\": 1, \"area\": 5}]},\n"
    "  {\"image_id\": \"city_1\", \"file_name\": \"b.png\", \"segments_info\": []}],\n"
    " \"categories\": [{\"id\": 1, \"name\": \"a\", \"isthing\": 1}, {\"id\": 2, \"name\": \"b\", \"isthing\": 0}]}";

static void test_json_reading(check_tally *t) {
    avps_error err;
    char *p = write_text("gt.json", gt_ok);
    pan_dataset *ds = pan_dataset_load(p, PAN_GROUND_TRUTH, &err);
    CHECK(t, ds != NULL);
    if (ds) {
        const pan_annotation *a = pan_dataset_find_annotation(ds, "5");
        CHECK(t, a && a->n_segments == 2 && a->segments[1].id == 9 && a->segments[1].iscrowd == 1);
        CHECK(t, a && a->segments[0].area == 3 && a->segments[1].category_id == 2);
        CHECK(t, pan_dataset_find_annotation(ds, "city_1") != NULL);
        CHECK(t, pan_dataset_find_annotation(ds, "6") == NULL);
        const pan_image *im = pan_dataset_find_image(ds, "5");
        CHECK(t, im && im->width == 4 && im->height == 2);
        CHECK(t, pan_dataset_category_index(ds, 2) == 1 && pan_dataset_category_index(ds, 3) == -1);
        CHECK(t, ds->categories[0].isthing == 1 && ds->categories[1].isthing == 0);
    }
    pan_dataset_free(ds);
    free(p);
}

/* Each text must be refused with a message containing `want`. */
static void expect_refusal(check_tally *t, const char *text, pan_role role, const char *want) {
    avps_error err = {{0}};
    char *p = write_text("bad.json", text);
    pan_dataset *ds = pan_dataset_load(p, role, &err);
    CHECK(t, ds == NULL);
    if (!strstr(err.msg, want) || !strstr(err.msg, "bad.json"))
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, want);
    CHECK(t, strstr(err.msg, want) != NULL && strstr(err.msg, "bad.json") != NULL);
    pan_dataset_free(ds);
    free(p);
}

static void test_json_refusals(check_tally *t) {
    expect_refusal(t, "{\"annotations\": [\n  {\"image_id\": 1,, }]}", PAN_PREDICTION, "malformed JSON near line 2");
    expect_refusal(t,
                   "{\"annotations\": [{\"image_id\": 3, \"file_name\": \"x.png\", \"segments_info\": "
                   "[{\"id\": 4, \"category_id\": 1}, {\"id\": 4, \"category_id\": 2}]}]}",
                   PAN_PREDICTION, "image 3: segment 4 appears twice");
    expect_refusal(t,
                   "{\"annotations\": [{\"image_id\": 3, \"file_name\": \"x.png\", \"segments_info\": "
                   "[{\"id\": 4, \"category_id\": 1, \"area\": 2}]}], \"categories\": [{\"id\": 1, \"isthing\": 1}]}",
                   PAN_GROUND_TRUTH, "segment 4: \"iscrowd\" is missing");
    expect_refusal(t,
                   "{\"annotations\": [{\"image_id\": 3, \"file_name\": \"x.png\", \"segments_info\": []},"
                   "{\"image_id\": 3, \"file_name\": \"y.png\", \"segments_info\": []}]}",
                   PAN_PREDICTION, "image 3 has two entries");
    expect_refusal(t, "{\"annotations\": [{\"image_id\": 3, \"segments_info\": []}]}", PAN_PREDICTION,
                   "image 3: \"file_name\" is missing");
    expect_refusal(t, "{\"annotations\": []}", PAN_GROUND_TRUTH, "\"categories\" is missing");
    expect_refusal(t,
                   "{\"annotations\": [{\"image_id\": 3, \"file_name\": \"x.png\", \"segments_info\": "
                   "[{\"id\": 0, \"category_id\": 1}]}]}",
                   PAN_PREDICTION, "id 0 is VOID");
}

static void test_synth(check_tally *t) {
    synth_params p = {42, 64, 48, 1};
    synth_image a, b, c;
    avps_error err;
    CHECK(t, synth_image_render(&p, 3, &a, &err) == 0);
    CHECK(t, synth_image_render(&p, 3, &b, &err) == 0);
    p.seed = 43;
    CHECK(t, synth_image_render(&p, 3, &c, &err) == 0);
    CHECK(t, memcmp(a.gt_ids, b.gt_ids, 64 * 48 * sizeof(uint32_t)) == 0);
    CHECK(t, memcmp(a.pred_ids, b.pred_ids, 64 * 48 * sizeof(uint32_t)) == 0);
    CHECK(t, memcmp(a.gt_ids, c.gt_ids, 64 * 48 * sizeof(uint32_t)) != 0);
    double gt_area = 0, pred_area = 0;
    size_t void_px = 0;
    for (size_t i = 0; i < a.n_gt; i++)
        gt_area += a.gt_segments[i].area;
    for (size_t i = 0; i < a.n_pred; i++)
        pred_area += a.pred_segments[i].area;
    for (size_t i = 0; i < 64 * 48; i++)
        void_px += a.gt_ids[i] == 0;
    CHECK(t, gt_area + (double)void_px == 64 * 48);
    CHECK(t, pred_area == 64 * 48); /* predictions cover every pixel */
    synth_image_release(&a);
    synth_image_release(&b);
    synth_image_release(&c);
}

int main(void) {
    check_tally t = {0, 0};
    if (!mkdtemp(tmpdir))
        return 2;
    test_errors_and_paths(&t);
    test_png_round_trip(&t);
    test_png_filters_and_crc(&t);
    test_png_palette_trns(&t);
    test_png_header_bounds(&t);
    test_png_ihdr_not_first(&t);
    test_json_reading(&t);
    test_json_refusals(&t);
    test_synth(&t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        t.failed++;
    return check_report(&t);
}
