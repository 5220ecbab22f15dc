/* bench_polygon: CPU time of rle_from_polygon alone, over every ground-truth polygon of
 * a COCO instances file (as `avps eval ap` rasterises them), repeated in passes. Prints
 * the median pass in milliseconds, the polygon count and a hash of all the runs, so two
 * builds can be compared for speed and for identical masks.
 *
 *   build/bench_polygon GT.json [PASSES]
 */
#include "../data/data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    double *xy;
    size_t k;
    uint32_t h, w;
} bench_polygon;

static char *read_all(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, fp) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(fp);
    return s;
}

static const cJSON *image_of(const cJSON *images, double id) {
    const cJSON *im;
    cJSON_ArrayForEach(im, images) {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(im, "id");
        if (cJSON_IsNumber(i) && i->valuedouble == id)
            return im;
    }
    return NULL;
}

/* Every polygon of every annotation whose segmentation is a list of polygons. */
static bench_polygon *load_polygons(const cJSON *root, size_t *n) {
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations"), *a;
    size_t cap = 1024;
    bench_polygon *p = malloc(cap * sizeof *p);
    *n = 0;
    cJSON_ArrayForEach(a, anns) {
        const cJSON *seg = cJSON_GetObjectItemCaseSensitive(a, "segmentation"), *poly;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "image_id");
        const cJSON *im = cJSON_IsNumber(id) ? image_of(images, id->valuedouble) : NULL;
        const cJSON *hj = cJSON_GetObjectItemCaseSensitive(im, "height");
        const cJSON *wj = cJSON_GetObjectItemCaseSensitive(im, "width");
        if (!cJSON_IsArray(seg) || !cJSON_IsNumber(hj) || !cJSON_IsNumber(wj))
            continue; /* crowds' RLE, or not an annotation this bench can use */
        uint32_t h = (uint32_t)hj->valuedouble, w = (uint32_t)wj->valuedouble;
        cJSON_ArrayForEach(poly, seg) {
            size_t m = (size_t)cJSON_GetArraySize(poly), j = 0;
            if (m < 6)
                continue;
            if (*n == cap)
                p = realloc(p, (cap *= 2) * sizeof *p);
            double *xy = malloc(m * sizeof *xy);
            const cJSON *x;
            cJSON_ArrayForEach(x, poly) xy[j++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
            p[(*n)++] = (bench_polygon){.xy = xy, .k = m / 2, .h = h, .w = w};
        }
    }
    return p;
}

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s GT.json [PASSES]\n", argv[0]);
        return 2;
    }
    int passes = argc > 2 ? atoi(argv[2]) : 20;
    if (passes < 1)
        passes = 1;
    char *text = read_all(argv[1]);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    if (!root) {
        fprintf(stderr, "%s: cannot read or parse\n", argv[1]);
        return 1;
    }
    size_t n;
    bench_polygon *p = load_polygons(root, &n);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", argv[1]);
        return 1;
    }
    double *ms = malloc((size_t)(passes > 0 ? passes : 1) * sizeof *ms);
    uint64_t hash = 1469598103934665603ull;
    for (int r = 0; r < passes; r++) {
        double t0 = cpu_seconds();
        for (size_t i = 0; i < n; i++) {
            rle_mask m;
            if (rle_from_polygon(p[i].xy, p[i].k, p[i].h, p[i].w, &m) != 0) {
                fprintf(stderr, "polygon %zu: rle_from_polygon failed\n", i);
                return 1;
            }
            if (r == 0)
                for (size_t j = 0; j < m.m; j++)
                    hash = (hash ^ m.cnts[j]) * 1099511628211ull;
            rle_free(&m);
        }
        ms[r] = 1e3 * (cpu_seconds() - t0);
    }
    qsort(ms, (size_t)passes, sizeof *ms, cmp_double);
    printf("%zu polygons, median pass %.2f ms (of %d), runs hash %016llx\n", n, ms[passes / 2], passes,
           (unsigned long long)hash);
    return 0;
}
