/* ap_params.c: COCOeval's Params (the thresholds, maxDets, area ranges, ids, useCats) and
 * their command-line text. Values pycocotools would take but that can only be a mistake
 * (a NaN, a threshold outside [0, 1], an id twice, an empty range) are refused with the
 * flag and the item named; what it does with the rest is kept (maxDets sorted, --cat-ids
 * sorted when useCats, as evaluate() makes them). */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* np.linspace(lo, hi, n): i * step + lo, the last one exactly hi. */
static void linspace(double *v, size_t n, double lo, double hi) {
    double step = (hi - lo) / (double)(n - 1);
    for (size_t i = 0; i < n; i++)
        v[i] = i == n - 1 ? hi : (double)i * step + lo;
}

ap_params *ap_params_new(void) {
    static const ap_area_range coco_areas[4] = {
        {0, 1e10, "all"}, {0, 32 * 32, "small"}, {32 * 32, 96 * 96, "medium"}, {96 * 96, 1e10, "large"}};
    ap_params *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_iou = 10, p->n_rec = 101, p->n_max_dets = 3, p->n_areas = 4, p->use_cats = 1;
    p->iou_thrs = malloc(p->n_iou * sizeof *p->iou_thrs);
    p->rec_thrs = malloc(p->n_rec * sizeof *p->rec_thrs);
    p->max_dets = malloc(p->n_max_dets * sizeof *p->max_dets);
    p->areas = malloc(p->n_areas * sizeof *p->areas);
    if (!p->iou_thrs || !p->rec_thrs || !p->max_dets || !p->areas) {
        ap_params_free(p);
        return NULL;
    }
    linspace(p->iou_thrs, p->n_iou, 0.5, 0.95);
    linspace(p->rec_thrs, p->n_rec, 0.0, 1.0);
    p->max_dets[0] = 1, p->max_dets[1] = 10, p->max_dets[2] = 100;
    memcpy(p->areas, coco_areas, sizeof coco_areas);
    return p;
}

void ap_params_free(ap_params *p) {
    if (!p)
        return;
    free(p->iou_thrs);
    free(p->rec_thrs);
    free(p->max_dets);
    free(p->areas);
    free(p->cat_ids);
    free(p->img_ids);
    free(p);
}

/* ---- comma lists ---------------------------------------------------------------------- */

/* Splits text at commas into a fresh array of fresh strings; refuses an empty item. */
static char **split_list(const char *flag, const char *text, size_t *n, avps_error *err) {
    size_t count = 1;
    for (const char *c = text; *c; c++)
        count += *c == ',';
    if (count > AP_LIST_MAX) {
        avps_fail(err, "%s: %zu items, at most %d", flag, count, AP_LIST_MAX);
        return NULL;
    }
    char **items = calloc(count + 1, sizeof *items);
    char *copy = strdup(text);
    if (!items || !copy) {
        free(items), free(copy);
        avps_fail(err, "%s: out of memory", flag);
        return NULL;
    }
    items[0] = copy; /* items[0] owns the buffer the others point into */
    size_t k = 1;
    for (char *c = copy; *c; c++)
        if (*c == ',') {
            *c = '\0';
            items[k++] = c + 1;
        }
    for (size_t i = 0; i < count; i++)
        if (!*items[i]) {
            avps_fail(err, "%s: item %zu of '%s' is empty", flag, i + 1, text);
            free(copy), free(items);
            return NULL;
        }
    *n = count;
    return items;
}

static void free_list(char **items) {
    if (items)
        free(items[0]);
    free(items);
}

static int parse_double(const char *flag, const char *s, double *v, avps_error *err) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || isnan(*v) || (errno == ERANGE && fabs(*v) < 1))
        return avps_fail(err, "%s: '%s' is not a number", flag, s);
    return 0;
}

static int parse_int(const char *flag, const char *s, long long lo, long long hi, long long *v, avps_error *err) {
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || *v < lo || *v > hi)
        return avps_fail(err, "%s: '%s' is not an integer from %lld to %lld", flag, s, lo, hi);
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}
static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}
static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- one flag each ---------------------------------------------------------------------- */

/* --iou-thrs and --rec-thrs: numbers in [0, 1]; IoU thresholds distinct and at most 32. */
static int set_thresholds(const char *flag, char **items, size_t n, int distinct, double **out, size_t *n_out,
                          avps_error *err) {
    if (distinct && n > AP_T_MAX)
        return avps_fail(err, "%s: %zu thresholds, at most %d", flag, n, AP_T_MAX);
    double *v = malloc(n * sizeof *v);
    if (!v)
        return avps_fail(err, "%s: out of memory", flag);
    for (size_t i = 0; i < n; i++) {
        if (parse_double(flag, items[i], &v[i], err) != 0 ||
            ((v[i] < 0 || v[i] > 1) && avps_fail(err, "%s: %s is outside [0, 1]", flag, items[i]))) {
            free(v);
            return -1;
        }
        for (size_t j = 0; distinct && j < i; j++)
            if (v[j] == v[i]) {
                free(v);
                return avps_fail(err, "%s: %s is given twice", flag, items[i]);
            }
    }
    free(*out);
    *out = v;
    *n_out = n;
    return 0;
}

static int set_max_dets(ap_params *p, const char *flag, char **items, size_t n, avps_error *err) {
    if (n < 3)
        return avps_fail(err, "%s: %zu values, at least 3 (COCOeval.summarize reads maxDets[0..2])", flag, n);
    uint32_t *v = malloc(n * sizeof *v);
    if (!v)
        return avps_fail(err, "%s: out of memory", flag);
    for (size_t i = 0; i < n; i++) {
        long long x;
        if (parse_int(flag, items[i], 1, 1000000, &x, err) != 0) {
            free(v);
            return -1;
        }
        v[i] = (uint32_t)x;
    }
    qsort(v, n, sizeof *v, cmp_u32);
    for (size_t i = 1; i < n; i++)
        if (v[i] == v[i - 1]) {
            uint32_t twice = v[i];
            free(v);
            return avps_fail(err, "%s: %u is given twice", flag, twice);
        }
    free(p->max_dets);
    p->max_dets = v;
    p->n_max_dets = n;
    return 0;
}

/* label:lo:hi */
static int parse_area(const char *flag, char *item, ap_area_range *a, avps_error *err) {
    char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ':'))
        return avps_fail(err, "%s: '%s' is not LABEL:LO:HI", flag, item);
    *c1 = *c2 = '\0';
    size_t len = strlen(item);
    if (len == 0 || len >= AP_LABEL_MAX || strspn(item, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
        return avps_fail(err, "%s: label '%s' must be 1 to %d letters, digits, '_' or '-'", flag, item,
                         AP_LABEL_MAX - 1);
    memcpy(a->label, item, len + 1);
    if (parse_double(flag, c1 + 1, &a->lo, err) != 0 || parse_double(flag, c2 + 1, &a->hi, err) != 0)
        return -1;
    if (a->lo > a->hi)
        return avps_fail(err, "%s: range '%s' is empty (%s > %s)", flag, item, c1 + 1, c2 + 1);
    return 0;
}

static int set_areas(ap_params *p, const char *flag, char **items, size_t n, avps_error *err) {
    ap_area_range *v = calloc(n, sizeof *v);
    if (!v)
        return avps_fail(err, "%s: out of memory", flag);
    for (size_t i = 0; i < n; i++) {
        int rc = parse_area(flag, items[i], &v[i], err);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(v[j].label, v[i].label) == 0)
                rc = avps_fail(err, "%s: label '%s' is given twice", flag, v[i].label);
        if (rc != 0) {
            free(v);
            return -1;
        }
    }
    free(p->areas);
    p->areas = v;
    p->n_areas = n;
    return 0;
}

/* --cat-ids (int32) and --img-ids (int64): distinct; sorted here or in ap_params_sorted. */
static int set_ids(const char *flag, char **items, size_t n, int wide, void **out, size_t *n_out, avps_error *err) {
    void *v = malloc(n * (wide ? sizeof(int64_t) : sizeof(int32_t)));
    if (!v)
        return avps_fail(err, "%s: out of memory", flag);
    for (size_t i = 0; i < n; i++) {
        long long x;
        if (parse_int(flag, items[i], wide ? INT64_MIN : INT32_MIN, wide ? INT64_MAX : INT32_MAX, &x, err) != 0) {
            free(v);
            return -1;
        }
        if (wide)
            ((int64_t *)v)[i] = x;
        else
            ((int32_t *)v)[i] = (int32_t)x;
    }
    /* distinct: check on a sorted copy, keep the order given (useCats 0 follows it) */
    size_t sz = wide ? sizeof(int64_t) : sizeof(int32_t);
    uint8_t *s = malloc(n * sz);
    if (!s) {
        free(v);
        return avps_fail(err, "%s: out of memory", flag);
    }
    memcpy(s, v, n * sz);
    qsort(s, n, sz, wide ? cmp_i64 : cmp_i32);
    for (size_t i = 1; i < n; i++)
        if (memcmp(s + i * sz, s + (i - 1) * sz, sz) == 0) {
            long long twice = wide ? ((int64_t *)(void *)s)[i] : ((int32_t *)(void *)s)[i];
            free(s), free(v);
            return avps_fail(err, "%s: %lld is given twice", flag, twice);
        }
    free(s);
    *out = v;
    *n_out = n;
    return 0;
}

int ap_params_set(ap_params *p, const char *flag, const char *text, avps_error *err) {
    static const char *const flags[] = {"--iou-thrs", "--rec-thrs", "--max-dets", "--area-rng", "--cat-ids",
                                        "--img-ids"};
    int which = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(flag, flags[i]) == 0)
            which = i;
    if (which < 0)
        return 1;
    size_t n = 0;
    char **items = split_list(flag, text, &n, err);
    if (!items)
        return -1;
    int rc;
    switch (which) {
    case 0: rc = set_thresholds(flag, items, n, 1, &p->iou_thrs, &p->n_iou, err); break;
    case 1: rc = set_thresholds(flag, items, n, 0, &p->rec_thrs, &p->n_rec, err); break;
    case 2: rc = set_max_dets(p, flag, items, n, err); break;
    case 3: rc = set_areas(p, flag, items, n, err); break;
    default: {
        void *ids = NULL;
        size_t n_ids = 0;
        rc = set_ids(flag, items, n, which == 5, &ids, &n_ids, err);
        if (rc == 0 && which == 4) {
            free(p->cat_ids);
            p->cat_ids = ids, p->n_cat_ids = n_ids;
        } else if (rc == 0) {
            free(p->img_ids);
            p->img_ids = ids, p->n_img_ids = n_ids;
            qsort(p->img_ids, p->n_img_ids, sizeof *p->img_ids, cmp_i64);
        }
    }
    }
    free_list(items);
    return rc;
}
