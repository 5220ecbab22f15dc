/* pan_compare: checks a COCO panoptic result against a reference one segment by segment,
 * ignoring ids (the reference's are random colours): per image, the multisets of
 * (category_id, set of pixels) must be equal. Every image of the reference must be in
 * the result with a PNG of the same size. Prints each difference; exits 1 if any. */
#include "../data/data.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const pan_annotation *ann;
    png_reader *png;
    long *pair; /* per segment: the other side's segment with the same pixels, or -1 */
    uint8_t *row;
} side;

static long segment_index(const pan_annotation *a, uint32_t id) {
    for (size_t s = 0; s < a->n_segments; s++)
        if (a->segments[s].id == id)
            return (long)s;
    return -1;
}

static int side_open(side *s, const pan_annotation *a, const char *dir, avps_error *err) {
    char *path = path_join(dir, a->file_name);
    s->ann = a;
    s->png = path ? png_reader_open(path, err) : NULL;
    free(path);
    s->pair = malloc((a->n_segments + 1) * sizeof *s->pair);
    for (size_t k = 0; s->pair && k < a->n_segments; k++)
        s->pair[k] = -1;
    s->row = s->png ? malloc((size_t)png_reader_width(s->png) * 3 + 1) : NULL;
    return s->png && s->pair && s->row ? 0 : -1;
}

static void side_close(side *s) {
    if (s->png)
        png_reader_free(s->png);
    free(s->pair);
    free(s->row);
}

/* One pixel: both VOID, or segments that are each other's only partner so far. */
static int pixel_agrees(side *e, side *g, uint32_t eid, uint32_t gid, const char *image, uint32_t x, uint32_t y) {
    if (eid == 0 && gid == 0)
        return 1;
    long ei = eid ? segment_index(e->ann, eid) : -1, gi = gid ? segment_index(g->ann, gid) : -1;
    if (ei < 0 || gi < 0) {
        printf("image %s: pixel (%u, %u): reference id %u, result id %u (VOID or not in segments_info)\n", image, x,
               y, eid, gid);
        return 0;
    }
    if (e->pair[ei] < 0 && g->pair[gi] < 0) {
        e->pair[ei] = gi;
        g->pair[gi] = ei;
    }
    if (e->pair[ei] != gi || g->pair[gi] != ei) {
        printf("image %s: pixel (%u, %u): reference segment %u and result segment %u differ in their pixels\n",
               image, x, y, eid, gid);
        return 0;
    }
    return 1;
}

static int pixels_agree(side *e, side *g, const char *image) {
    uint32_t w = png_reader_width(e->png), h = png_reader_height(e->png);
    avps_error err;
    for (uint32_t y = 0; y < h; y++) {
        if (png_reader_read_row(e->png, e->row, &err) != 0 || png_reader_read_row(g->png, g->row, &err) != 0) {
            printf("%s\n", err.msg);
            return 0;
        }
        for (uint32_t x = 0; x < w; x++)
            if (!pixel_agrees(e, g, rgb_to_id(e->row + 3 * x), rgb_to_id(g->row + 3 * x), image, x, y))
                return 0;
    }
    return 1;
}

static int int32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Paired segments must have one category; segments without pixels must be alike too. */
static int categories_agree(const side *e, const side *g, const char *image) {
    int bad = 0;
    size_t ne = 0, ng = 0;
    int32_t *empty_e = malloc((e->ann->n_segments + 1) * sizeof *empty_e);
    int32_t *empty_g = malloc((g->ann->n_segments + 1) * sizeof *empty_g);
    if (!empty_e || !empty_g)
        abort();
    for (size_t s = 0; s < e->ann->n_segments; s++) {
        const pan_segment *es = &e->ann->segments[s];
        if (e->pair[s] < 0) {
            empty_e[ne++] = es->category_id;
        } else if (g->ann->segments[e->pair[s]].category_id != es->category_id) {
            printf("image %s: a segment of category %d in the reference is of category %d in the result\n", image,
                   es->category_id, g->ann->segments[e->pair[s]].category_id);
            bad = 1;
        }
    }
    for (size_t s = 0; s < g->ann->n_segments; s++)
        if (g->pair[s] < 0)
            empty_g[ng++] = g->ann->segments[s].category_id;
    qsort(empty_e, ne, sizeof *empty_e, int32_cmp);
    qsort(empty_g, ng, sizeof *empty_g, int32_cmp);
    if (ne != ng || (ne && memcmp(empty_e, empty_g, ne * sizeof *empty_e) != 0)) {
        printf("image %s: segments without pixels differ (%zu in the reference, %zu in the result)\n", image, ne, ng);
        bad = 1;
    }
    free(empty_e);
    free(empty_g);
    return !bad;
}

static int image_agrees(const pan_annotation *ea, const char *ref_dir, const pan_dataset *got, const char *got_dir) {
    const pan_annotation *ga = pan_dataset_find_annotation(got, ea->image_id);
    if (!ga) {
        printf("image %s: not in the result\n", ea->image_id);
        return 0;
    }
    side e = {0}, g = {0};
    avps_error err;
    int ok = side_open(&e, ea, ref_dir, &err) == 0 && side_open(&g, ga, got_dir, &err) == 0;
    if (!ok)
        printf("image %s: %s\n", ea->image_id, err.msg);
    else if (png_reader_width(e.png) != png_reader_width(g.png) || png_reader_height(e.png) != png_reader_height(g.png))
        ok = 0, printf("image %s: the PNGs differ in size\n", ea->image_id);
    ok = ok && pixels_agree(&e, &g, ea->image_id) && categories_agree(&e, &g, ea->image_id);
    side_close(&e);
    side_close(&g);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: pan_compare REF_JSON REF_DIR GOT_JSON GOT_DIR\n");
        return 2;
    }
    avps_error err;
    pan_dataset *ref = pan_dataset_load(argv[1], PAN_PREDICTION, &err);
    pan_dataset *got = ref ? pan_dataset_load(argv[3], PAN_PREDICTION, &err) : NULL;
    if (!ref || !got) {
        printf("%s\n", err.msg);
        pan_dataset_free(ref);
        return 1;
    }
    int bad = ref->n_annotations != got->n_annotations;
    if (bad)
        printf("%zu images in the reference, %zu in the result\n", ref->n_annotations, got->n_annotations);
    for (size_t i = 0; i < ref->n_annotations; i++)
        bad |= !image_agrees(&ref->annotations[i], argv[2], got, argv[4]);
    pan_dataset_free(ref);
    pan_dataset_free(got);
    return bad ? 1 : 0;
}
