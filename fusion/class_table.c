/* class_table.c: the class table of the task-dependent level: for every thing class the
 * end whose instances it takes, with each end's held-out score and instance count, as
 * chosen by `avps calibrate` and read back by fusion. The JSON is documented in
 * docs/formats.md ("class_table.json") and the choice rules in docs/algorithms.md. */
#include "fusion.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_metrics[] = {"mask_ap", "pq_th"};

static int metric_known(const char *m) {
    for (size_t i = 0; i < sizeof known_metrics / sizeof *known_metrics; i++)
        if (strcmp(m, known_metrics[i]) == 0)
            return 1;
    return 0;
}

void class_table_release(class_table *t) {
    for (size_t e = 0; t->end_names && e < t->n_ends; e++)
        free(t->end_names[e]);
    free(t->end_names);
    free(t->metric);
    free(t->category_id);
    free(t->chosen);
    free(t->score);
    free(t->n_heldout);
    free(t->fallback);
    memset(t, 0, sizeof *t);
}

int class_table_init(class_table *t, const char *metric, const char *const *end_names, size_t n_ends,
                     size_t n_classes, avps_error *err) {
    memset(t, 0, sizeof *t);
    size_t nc = n_classes ? n_classes : 1, ne = n_ends ? n_ends : 1;
    t->metric = strdup(metric);
    t->n_ends = n_ends;
    t->end_names = calloc(ne, sizeof *t->end_names);
    t->n_classes = n_classes;
    t->category_id = calloc(nc, sizeof *t->category_id);
    t->chosen = calloc(nc, sizeof *t->chosen);
    t->score = malloc(nc * ne * sizeof *t->score);
    t->n_heldout = calloc(nc, sizeof *t->n_heldout);
    t->fallback = calloc(nc, sizeof *t->fallback);
    int ok = t->metric && t->end_names && t->category_id && t->chosen && t->score && t->n_heldout && t->fallback;
    for (size_t e = 0; ok && e < n_ends; e++)
        ok = (t->end_names[e] = strdup(end_names[e])) != NULL;
    if (!ok) {
        class_table_release(t);
        return avps_fail(err, "class table: out of memory");
    }
    for (size_t i = 0; i < nc * ne; i++)
        t->score[i] = NAN;
    return 0;
}

/* ---- choosing ------------------------------------------------------------------------ */

static int row_defined(const class_table *t, size_t c) {
    for (size_t e = 0; e < t->n_ends; e++)
        if (isnan(t->score[c * t->n_ends + e]))
            return 0;
    return 1;
}

/* The end with the best mean over the classes every end has a score for: comparing
 * means over different class sets would favour an end that skipped hard classes. */
static int best_overall(const class_table *t) {
    int best = 0;
    double best_mean = -INFINITY;
    for (size_t e = 0; e < t->n_ends; e++) {
        double sum = 0;
        size_t n = 0;
        for (size_t c = 0; c < t->n_classes; c++)
            if (row_defined(t, c)) {
                sum += t->score[c * t->n_ends + e];
                n++;
            }
        if (n > 0 && sum / (double)n > best_mean) {
            best_mean = sum / (double)n;
            best = (int)e;
        }
    }
    return best;
}

int class_table_choose(class_table *t, avps_error *err) {
    if (t->n_ends == 0)
        return avps_fail(err, "class table: no ends to choose from");
    for (size_t c = 0; c < t->n_classes; c++)
        for (size_t e = 0; e < t->n_ends; e++)
            if (isinf(t->score[c * t->n_ends + e]))
                return avps_fail(err, "class table: category %d: end %s: infinite score", t->category_id[c],
                                 t->end_names[e]);
    t->overall_best = best_overall(t);
    for (size_t c = 0; c < t->n_classes; c++) {
        const double *row = t->score + c * t->n_ends;
        t->fallback[c] = t->n_heldout[c] < t->min_instances || !row_defined(t, c);
        t->chosen[c] = t->overall_best;
        if (t->fallback[c])
            continue;
        int best = 0;
        for (size_t e = 1; e < t->n_ends; e++) /* strictly better: a tie keeps the lower index */
            if (row[e] > row[best])
                best = (int)e;
        t->chosen[c] = best;
    }
    return 0;
}

/* ---- writing --------------------------------------------------------------------------- */

static void put_number(FILE *fp, double v) {
    if (isnan(v))
        fputs("null", fp);
    else
        fprintf(fp, "%.17g", v);
}

int class_table_write(const char *path, const class_table *t, avps_error *err) {
    if (t->n_ends == 0 || t->overall_best < 0 || (size_t)t->overall_best >= t->n_ends)
        return avps_fail(err, "%s: a class table needs ends and an overall best end among them", path);
    for (size_t c = 0; c < t->n_classes; c++)
        if (t->chosen[c] < 0 || (size_t)t->chosen[c] >= t->n_ends)
            return avps_fail(err, "%s: category %d: chosen end %d out of range", path, t->category_id[c], t->chosen[c]);
    atomic_file af;
    if (file_atomic_open(&af, path, err) != 0)
        return -1;
    FILE *fp = af.fp;
    fputs("{\n  \"format\": \"avps class table 1\",\n  \"metric\": ", fp);
    json_put_string(fp, t->metric);
    fprintf(fp, ",\n  \"min_instances\": %llu,\n  \"ends\": [", (unsigned long long)t->min_instances);
    for (size_t e = 0; e < t->n_ends; e++) {
        fputs(e ? ", " : "", fp);
        json_put_string(fp, t->end_names[e]);
    }
    fputs("],\n  \"overall_best\": ", fp);
    json_put_string(fp, t->end_names[t->overall_best]);
    fputs(",\n  \"classes\": [", fp);
    for (size_t c = 0; c < t->n_classes; c++) {
        fprintf(fp, "%s\n    {\"category_id\": %d, \"end\": ", c ? "," : "", t->category_id[c]);
        json_put_string(fp, t->end_names[t->chosen[c]]);
        fprintf(fp, ", \"fallback\": %s, \"n_heldout\": %llu, \"score\": {", t->fallback[c] ? "true" : "false",
                (unsigned long long)t->n_heldout[c]);
        for (size_t e = 0; e < t->n_ends; e++) {
            fputs(e ? ", " : "", fp);
            json_put_string(fp, t->end_names[e]);
            fputs(": ", fp);
            put_number(fp, t->score[c * t->n_ends + e]);
        }
        fputs("}}", fp);
    }
    fputs("\n  ]\n}\n", fp);
    return file_atomic_commit(&af, err);
}

/* ---- reading --------------------------------------------------------------------------- */

/* A whole number in [0, hi], or -1. */
static int get_count(const cJSON *v, double hi, uint64_t *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > hi || floor(v->valuedouble) != v->valuedouble)
        return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

/* What the reader needs while it walks the file. */
typedef struct {
    const char *path;
    size_t n_table_ends;
    const char **table_ends; /* borrowed from the cJSON tree */
    int *to_caller;          /* table end index -> the caller's index */
} table_reader;

static long table_end_index(const table_reader *r, const char *name) {
    for (size_t e = 0; e < r->n_table_ends; e++)
        if (strcmp(r->table_ends[e], name) == 0)
            return (long)e;
    return -1;
}

/* "ends": unique strings; with the caller's ends, exactly those. */
static int read_ends(table_reader *r, const cJSON *root, const char *const *end_names, size_t n_ends,
                     avps_error *err) {
    const cJSON *ends = cJSON_GetObjectItemCaseSensitive(root, "ends");
    if (!cJSON_IsArray(ends) || cJSON_GetArraySize(ends) < 1)
        return avps_fail(err, "%s: \"ends\" must be a non-empty list of end names", r->path);
    size_t n = (size_t)cJSON_GetArraySize(ends);
    r->table_ends = calloc(n, sizeof *r->table_ends);
    r->to_caller = calloc(n, sizeof *r->to_caller);
    if (!r->table_ends || !r->to_caller)
        return avps_fail(err, "out of memory");
    size_t i = 0;
    for (const cJSON *v = ends->child; v; v = v->next, i++) {
        if (!cJSON_IsString(v))
            return avps_fail(err, "%s: ends[%zu] is not a string", r->path, i);
        if (table_end_index(r, v->valuestring) >= 0)
            return avps_fail(err, "%s: ends[%zu]: end '%s' is named twice", r->path, i, v->valuestring);
        r->table_ends[i] = v->valuestring;
        r->to_caller[i] = (int)i;
        r->n_table_ends = i + 1;
        if (!end_names)
            continue;
        r->to_caller[i] = -1;
        for (size_t e = 0; e < n_ends; e++)
            if (strcmp(end_names[e], v->valuestring) == 0)
                r->to_caller[i] = (int)e;
        if (r->to_caller[i] < 0)
            return avps_fail(err, "%s: ends[%zu]: unknown end '%s' (not one of the ends given)", r->path, i,
                             v->valuestring);
    }
    for (size_t e = 0; end_names && e < n_ends; e++)
        if (table_end_index(r, end_names[e]) < 0)
            return avps_fail(err, "%s: end '%s' is not in the table", r->path, end_names[e]);
    return 0;
}

/* An end named by a string field of a class: the caller's index, or -1. */
static int read_end_field(const table_reader *r, const cJSON *v, const char *what, int *out, avps_error *err) {
    long e = cJSON_IsString(v) ? table_end_index(r, v->valuestring) : -1;
    if (!cJSON_IsString(v))
        return avps_fail(err, "%s must be an end name", what);
    if (e < 0)
        return avps_fail(err, "%s: unknown end '%s'", what, v->valuestring);
    *out = r->to_caller[e];
    return 0;
}

/* "score": {end: number or null} for every end of the table. */
static int read_scores(const table_reader *r, const cJSON *v, double *row, avps_error *err) {
    if (!cJSON_IsObject(v))
        return avps_fail(err, "\"score\" must be an object of end: number or null");
    size_t n = 0;
    for (const cJSON *s = v->child; s; s = s->next, n++) {
        long e = table_end_index(r, s->string);
        if (e < 0)
            return avps_fail(err, "score: unknown end '%s'", s->string);
        if (!cJSON_IsNull(s) && !(cJSON_IsNumber(s) && isfinite(s->valuedouble)))
            return avps_fail(err, "score of end '%s' must be a finite number or null", s->string);
        row[r->to_caller[e]] = cJSON_IsNull(s) ? NAN : s->valuedouble;
    }
    if (n != r->n_table_ends)
        return avps_fail(err, "\"score\" must give every end of the table once");
    return 0;
}

/* One element of "classes" into slot (its thing ordinal in ds). */
static int read_class(const table_reader *r, const cJSON *js, const pan_dataset *ds, const size_t *slot_of,
                      uint8_t *seen, class_table *t, avps_error *err) {
    uint64_t id;
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(js, "category_id");
    if (!cJSON_IsObject(js))
        return avps_fail(err, "not an object");
    if (!cJSON_IsNumber(cid) || cid->valuedouble != floor(cid->valuedouble) || fabs(cid->valuedouble) > 2147483647.0)
        return avps_fail(err, "\"category_id\" must be an integer");
    int32_t cat = (int32_t)cid->valuedouble;
    int k = pan_dataset_category_index(ds, cat);
    if (k < 0)
        return avps_fail(err, "category %d is unknown to %s", cat, ds->path);
    if (!ds->categories[k].isthing)
        return avps_fail(err, "category %d (%s) is a stuff category; the table holds thing classes", cat,
                         ds->categories[k].name);
    size_t c = slot_of[k];
    if (seen[c])
        return avps_fail(err, "category %d is listed twice", cat);
    seen[c] = 1;
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(js, "fallback");
    if (read_end_field(r, cJSON_GetObjectItemCaseSensitive(js, "end"), "\"end\"", &t->chosen[c], err) != 0)
        return avps_prefix(err, "category %d", cat);
    if (!cJSON_IsBool(fb))
        return avps_fail(err, "category %d: \"fallback\" must be true or false", cat);
    t->fallback[c] = cJSON_IsTrue(fb);
    if (get_count(cJSON_GetObjectItemCaseSensitive(js, "n_heldout"), 1e15, &id) != 0)
        return avps_fail(err, "category %d: \"n_heldout\" must be a whole number >= 0", cat);
    t->n_heldout[c] = id;
    if (read_scores(r, cJSON_GetObjectItemCaseSensitive(js, "score"), t->score + c * t->n_ends, err) != 0)
        return avps_prefix(err, "category %d", cat);
    return 0;
}

/* The header fields, then the classes in ds's thing order. */
static int read_table(table_reader *r, const cJSON *root, const pan_dataset *ds, const char *const *end_names,
                      size_t n_ends, class_table *t, avps_error *err) {
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(root, "metric");
    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "classes");
    uint64_t min_instances;
    if (!cJSON_IsString(metric) || !metric_known(metric->valuestring))
        return avps_fail(err, "%s: \"metric\" must be \"mask_ap\" or \"pq_th\"", r->path);
    if (get_count(cJSON_GetObjectItemCaseSensitive(root, "min_instances"), 1e15, &min_instances) != 0)
        return avps_fail(err, "%s: \"min_instances\" must be a whole number >= 0", r->path);
    if (read_ends(r, root, end_names, n_ends, err) != 0)
        return -1;
    if (!cJSON_IsArray(classes))
        return avps_fail(err, "%s: \"classes\" must be a list", r->path);
    size_t n_things = 0;
    size_t *slot_of = malloc((ds->n_categories + 1) * sizeof *slot_of);
    if (!slot_of)
        return avps_fail(err, "out of memory");
    for (size_t k = 0; k < ds->n_categories; k++)
        slot_of[k] = ds->categories[k].isthing ? n_things++ : (size_t)-1;
    const char *const *names = end_names ? end_names : r->table_ends;
    size_t n_names = end_names ? n_ends : r->n_table_ends;
    uint8_t *seen = NULL;
    int rc = class_table_init(t, metric->valuestring, names, n_names, n_things, err);
    if (rc == 0 && !(seen = calloc(n_things + 1, 1)))
        rc = avps_fail(err, "out of memory");
    for (size_t k = 0, c = 0; rc == 0 && k < ds->n_categories; k++)
        if (ds->categories[k].isthing)
            t->category_id[c++] = ds->categories[k].id;
    if (rc == 0) {
        t->min_instances = min_instances;
        char what[64];
        snprintf(what, sizeof what, "%s: \"overall_best\"", r->path);
        rc = read_end_field(r, cJSON_GetObjectItemCaseSensitive(root, "overall_best"), what, &t->overall_best, err);
    }
    size_t i = 0;
    for (const cJSON *js = classes->child; rc == 0 && js; js = js->next, i++)
        if ((rc = read_class(r, js, ds, slot_of, seen, t, err)) != 0)
            avps_prefix(err, "%s: classes[%zu]", r->path, i);
    for (size_t c = 0; rc == 0 && c < n_things; c++)
        if (!seen[c])
            rc = avps_fail(err, "%s: thing category %d (%s) of %s is missing from the table", r->path,
                           t->category_id[c], ds->categories[pan_dataset_category_index(ds, t->category_id[c])].name,
                           ds->path);
    free(seen);
    free(slot_of);
    return rc;
}

int class_table_read(const char *path, const pan_dataset *ds, const char *const *end_names, size_t n_ends,
                     class_table *t, avps_error *err) {
    size_t len;
    memset(t, 0, sizeof *t);
    char *text = file_read_all(path, &len, err);
    if (!text)
        return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    table_reader r = {path, 0, NULL, NULL};
    int rc = cJSON_IsObject(root) ? read_table(&r, root, ds, end_names, n_ends, t, err)
                                  : avps_fail(err, "%s: not a JSON object (a class table is one)", path);
    free(r.table_ends);
    free(r.to_caller);
    cJSON_Delete(root);
    if (rc != 0)
        class_table_release(t);
    return rc;
}

int class_table_end_map(const class_table *t, const pan_dataset *ds, int *end_of_category, avps_error *err) {
    for (size_t k = 0; k < ds->n_categories; k++) {
        end_of_category[k] = -1;
        if (!ds->categories[k].isthing)
            continue;
        size_t c = 0;
        while (c < t->n_classes && t->category_id[c] != ds->categories[k].id)
            c++;
        if (c == t->n_classes)
            return avps_fail(err, "class table: thing category %d (%s) of %s has no class", ds->categories[k].id,
                             ds->categories[k].name, ds->path);
        end_of_category[k] = t->chosen[c];
    }
    return 0;
}
