/* run_config.c: reads and checks an `avps run` config (docs/config.md). Every key is
 * known and typed; an unknown key or a value of the wrong type is an error that names
 * the key by its path, so that a typo never silently falls back to a default. */
#include "run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const run_end_names[RUN_ENDS] = {"e_ups", "lwl_htc", "fusion"};

uint64_t run_fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int run_file_digest(const char *path, uint64_t *digest, avps_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return avps_fail(err, "%s: cannot read", path);
    uint8_t buf[65536];
    uint64_t h = RUN_FNV_START;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        h = run_fnv(h, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    *digest = h;
    return bad ? avps_fail(err, "%s: read error", path) : 0;
}

/* ---- typed access with the key's path in messages -------------------------------------- */

typedef struct {
    const char *file;
    avps_error *err;
} reader;

static int bad_type(const reader *r, const char *key, const char *want) {
    return avps_fail(r->err, "%s: \"%s\" must be %s", r->file, key, want);
}

/* Every member of obj must be one of the names (NULL-terminated). */
static int check_keys(const reader *r, const cJSON *obj, const char *prefix, const char *const *names) {
    for (const cJSON *m = obj->child; m; m = m->next) {
        int known = 0;
        for (size_t k = 0; names[k] && !known; k++)
            known = strcmp(m->string, names[k]) == 0;
        if (!known)
            return avps_fail(r->err, "%s: unknown key \"%s%s%s\"", r->file, prefix, *prefix ? "." : "", m->string);
    }
    return 0;
}

static char *key_path(const char *prefix, const char *name) {
    size_t n = strlen(prefix) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", prefix, *prefix ? "." : "", name);
    return s;
}

/* A string relative to the config's folder (is_path) or as is; absent leaves *out. */
static int get_string(const reader *r, const cJSON *obj, const char *prefix, const char *name, const char *base,
                      int is_path, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v)
        return 0;
    char *key = key_path(prefix, name);
    int rc = 0;
    if (!cJSON_IsString(v) || !*v->valuestring)
        rc = bad_type(r, key ? key : name, "a non-empty string");
    else if (is_path && v->valuestring[0] != '/' && base)
        rc = (*out = path_join(base, v->valuestring)) ? 0 : avps_fail(r->err, "out of memory");
    else
        rc = (*out = strdup(v->valuestring)) ? 0 : avps_fail(r->err, "out of memory");
    free(key);
    return rc;
}

static int get_number(const reader *r, const cJSON *obj, const char *prefix, const char *name, double lo, double hi,
                      double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v)
        return 0;
    char *key = key_path(prefix, name);
    char want[96];
    snprintf(want, sizeof want, "a number from %g to %g", lo, hi);
    int rc = !cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi
                 ? bad_type(r, key ? key : name, want)
                 : 0;
    if (rc == 0)
        *out = v->valuedouble;
    free(key);
    return rc;
}

static int get_int(const reader *r, const cJSON *obj, const char *prefix, const char *name, long lo, long hi,
                   long *out) {
    double d = (double)*out;
    if (get_number(r, obj, prefix, name, (double)lo, (double)hi, &d) != 0)
        return -1;
    if (d != floor(d)) {
        char *key = key_path(prefix, name);
        bad_type(r, key ? key : name, "a whole number");
        free(key);
        return -1;
    }
    *out = (long)d;
    return 0;
}

static int get_bool(const reader *r, const cJSON *obj, const char *prefix, const char *name, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v)) {
        char *key = key_path(prefix, name);
        bad_type(r, key ? key : name, "true or false");
        free(key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static const cJSON *get_object(const reader *r, const cJSON *obj, const char *name, int required, int *rc) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *rc = 0;
    if (!v && required)
        *rc = avps_fail(r->err, "%s: \"%s\" is required", r->file, name);
    else if (v && !cJSON_IsObject(v))
        *rc = bad_type(r, name, "an object");
    return *rc == 0 ? v : NULL;
}

/* ---- sections ------------------------------------------------------------------------------ */

static int read_dataset(const reader *r, const cJSON *obj, const char *prefix, const char *base, run_dataset *ds) {
    static const char *const keys[] = {"gt_json", "gt_dir", NULL};
    if (!cJSON_IsObject(obj))
        return bad_type(r, prefix, "an object");
    if (check_keys(r, obj, prefix, keys) != 0 || get_string(r, obj, prefix, "gt_json", base, 1, &ds->gt_json) != 0 ||
        get_string(r, obj, prefix, "gt_dir", base, 1, &ds->gt_dir) != 0)
        return -1;
    if (!ds->gt_json)
        return avps_fail(r->err, "%s: \"%s.gt_json\" is required", r->file, prefix);
    if (!ds->gt_dir && !(ds->gt_dir = path_without_json_suffix(ds->gt_json)))
        return avps_fail(r->err, "out of memory");
    return 0;
}

static int read_datasets(const reader *r, const cJSON *root, const char *base, run_config *cfg) {
    static const char *const keys[] = {"heldout", "eval", NULL};
    int rc;
    const cJSON *d = get_object(r, root, "datasets", 1, &rc);
    if (!d || check_keys(r, d, "datasets", keys) != 0)
        return -1;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(d, "eval");
    const cJSON *ho = cJSON_GetObjectItemCaseSensitive(d, "heldout");
    if (!ev)
        return avps_fail(r->err, "%s: \"datasets.eval\" is required", r->file);
    if (read_dataset(r, ev, "datasets.eval", base, &cfg->eval) != 0)
        return -1;
    cfg->has_heldout = ho != NULL;
    return ho ? read_dataset(r, ho, "datasets.heldout", base, &cfg->heldout) : 0;
}

static int read_head(const reader *r, const cJSON *h, size_t i, const char *base, run_head *out) {
    static const char *const keys[] = {"name", "backend", "profile", "store", "weight", NULL};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "heads[%zu]", i);
    if (!cJSON_IsObject(h))
        return bad_type(r, prefix, "an object");
    out->weight = 1;
    if (check_keys(r, h, prefix, keys) != 0 || get_string(r, h, prefix, "name", NULL, 0, &out->name) != 0 ||
        get_string(r, h, prefix, "backend", NULL, 0, &out->backend) != 0 ||
        get_string(r, h, prefix, "profile", NULL, 0, &out->profile) != 0 ||
        get_string(r, h, prefix, "store", base, 1, &out->store) != 0 ||
        get_number(r, h, prefix, "weight", 0, 1e9, &out->weight) != 0)
        return -1;
    if (!out->name || !out->backend)
        return avps_fail(r->err, "%s: \"%s.name\" and \"%s.backend\" are required", r->file, prefix, prefix);
    if (strcmp(out->backend, "sim") == 0 && !out->profile)
        out->profile = strdup(out->name); /* a sim head named after its profile */
    size_t plen = out->profile ? strlen(out->profile) : 0;
    if (plen && out->profile[0] != '/' && base &&
        (strchr(out->profile, '/') || (plen > 5 && strcmp(out->profile + plen - 5, ".json") == 0) ||
         strcmp(out->backend, "native") == 0)) {
        char *p = path_join(base, out->profile); /* a profile or weights file, not a built-in name */
        if (!p)
            return avps_fail(r->err, "out of memory");
        free(out->profile);
        out->profile = p;
    }
    if (strcmp(out->backend, "sim") != 0 && strcmp(out->backend, "replay") != 0 &&
        strcmp(out->backend, "native") != 0)
        return avps_fail(r->err, "%s: \"%s.backend\" must be \"sim\", \"replay\" or \"native\", not \"%s\"",
                         r->file, prefix, out->backend);
    if (strcmp(out->backend, "native") == 0 && !out->profile)
        return avps_fail(r->err, "%s: \"%s.profile\" is required for a native head (its safetensors weights)", r->file,
                         prefix);
    if (strcmp(out->backend, "sim") != 0 && !out->store)
        return avps_fail(r->err, "%s: \"%s.store\" is required for a %s head (%s)", r->file, prefix, out->backend,
                         strcmp(out->backend, "native") == 0 ? "the folder of the images" : "the prediction store");
    return 0;
}

static int read_heads(const reader *r, const cJSON *root, const char *base, run_config *cfg) {
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(root, "heads");
    if (!hs)
        return avps_fail(r->err, "%s: \"heads\" is required", r->file);
    if (!cJSON_IsArray(hs) || cJSON_GetArraySize(hs) < 1 || cJSON_GetArraySize(hs) > RUN_MAX_HEADS)
        return bad_type(r, "heads", "a list of 1 to 16 heads");
    size_t i = 0;
    for (const cJSON *h = hs->child; h; h = h->next, i++) {
        if (read_head(r, h, i, base, &cfg->heads[i]) != 0)
            return -1;
        cfg->n_heads = i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->heads[j].name, cfg->heads[i].name) == 0)
                return avps_fail(r->err, "%s: \"heads[%zu].name\": two heads are named \"%s\"", r->file, i,
                                 cfg->heads[i].name);
    }
    return 0;
}

static int head_index(const run_config *cfg, const char *name, size_t *out) {
    for (size_t i = 0; i < cfg->n_heads; i++)
        if (strcmp(cfg->heads[i].name, name) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

static int read_ensemble(const reader *r, const cJSON *root, run_config *cfg) {
    static const char *const keys[] = {"name", "members", "weights", NULL};
    int rc;
    const cJSON *e = get_object(r, root, "ensemble", 1, &rc);
    if (!e || check_keys(r, e, "ensemble", keys) != 0 || get_string(r, e, "ensemble", "name", NULL, 0, &cfg->ensemble_name))
        return -1;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "members");
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) < 1 || cJSON_GetArraySize(m) > RUN_MAX_HEADS)
        return bad_type(r, "ensemble.members", "a list of 1 to 16 head names");
    size_t i = 0;
    for (const cJSON *x = m->child; x; x = x->next, i++) {
        if (!cJSON_IsString(x))
            return avps_fail(r->err, "%s: \"ensemble.members[%zu]\" must be a head name", r->file, i);
        if (head_index(cfg, x->valuestring, &cfg->members[i]) != 0)
            return avps_fail(r->err, "%s: \"ensemble.members[%zu]\": no head is named \"%s\"", r->file, i,
                             x->valuestring);
        cfg->weights[i] = cfg->heads[cfg->members[i]].weight;
    }
    cfg->n_members = i;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "weights");
    if (w && (!cJSON_IsArray(w) || (size_t)cJSON_GetArraySize(w) != cfg->n_members))
        return bad_type(r, "ensemble.weights", "a list of numbers, one per member");
    i = 0;
    double sum = 0;
    for (const cJSON *x = w ? w->child : NULL; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0)
            return avps_fail(r->err, "%s: \"ensemble.weights[%zu]\" must be a number, 0 or more", r->file, i);
        cfg->weights[i] = x->valuedouble;
    }
    for (i = 0; i < cfg->n_members; i++)
        sum += cfg->weights[i];
    if (!(sum > 0))
        return avps_fail(r->err, "%s: \"ensemble.weights\" are all zero", r->file);
    if (!cfg->ensemble_name && !(cfg->ensemble_name = strdup("e_ups")))
        return avps_fail(r->err, "out of memory");
    return 0;
}

static int read_confidence(const reader *r, const cJSON *f, run_config *cfg) {
    static const char *const keys[] = {"e_ups", "lwl_htc", NULL};
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "confidence_thr");
    if (!c)
        return 0;
    if (cJSON_IsNumber(c)) {
        double v = 0;
        if (get_number(r, f, "fusion", "confidence_thr", 0, 1, &v) != 0)
            return -1;
        for (int e = 0; e < FUSION_MAX_ENDS; e++)
            cfg->combine.confidence_thr[e] = v;
        return 0;
    }
    if (!cJSON_IsObject(c))
        return bad_type(r, "fusion.confidence_thr", "a number or {\"e_ups\": x, \"lwl_htc\": y}");
    return check_keys(r, c, "fusion.confidence_thr", keys) != 0 ||
                   get_number(r, c, "fusion.confidence_thr", "e_ups", 0, 1, &cfg->combine.confidence_thr[0]) != 0 ||
                   get_number(r, c, "fusion.confidence_thr", "lwl_htc", 0, 1, &cfg->combine.confidence_thr[1]) != 0
               ? -1
               : 0;
}

static int read_ss_weights(const reader *r, const cJSON *f, run_config *cfg) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(f, "ss_weights");
    if (!w)
        return 0;
    if (!cJSON_IsArray(w) || cJSON_GetArraySize(w) != 2)
        return bad_type(r, "fusion.ss_weights", "a list of two numbers (e_ups, lwl_htc)");
    for (int i = 0; i < 2; i++) {
        const cJSON *x = cJSON_GetArrayItem(w, i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0)
            return avps_fail(r->err, "%s: \"fusion.ss_weights[%d]\" must be a number, 0 or more", r->file, i);
        cfg->ss_weights[i] = x->valuedouble;
    }
    if (!(cfg->ss_weights[0] + cfg->ss_weights[1] > 0))
        return avps_fail(r->err, "%s: \"fusion.ss_weights\" are both zero", r->file);
    return 0;
}

static int read_fusion(const reader *r, const cJSON *root, const char *base, run_config *cfg) {
    static const char *const keys[] = {"class_table", "metric", "min_instances", "ss_weights", "combiner",
                                       "confidence_thr", "overlap_thr", "stuff_area_limit", NULL};
    int rc;
    long area = (long)cfg->combine.stuff_area_limit;
    const cJSON *f = get_object(r, root, "fusion", 0, &rc);
    if (rc != 0)
        return -1;
    if (f && (check_keys(r, f, "fusion", keys) != 0 ||
              get_string(r, f, "fusion", "class_table", base, 1, &cfg->class_table) != 0 ||
              get_string(r, f, "fusion", "metric", NULL, 0, &cfg->metric) != 0 ||
              get_int(r, f, "fusion", "min_instances", 0, 1000000000, &cfg->min_instances) != 0 ||
              read_ss_weights(r, f, cfg) != 0 ||
              get_string(r, f, "fusion", "combiner", NULL, 0, &cfg->combiner) != 0 || read_confidence(r, f, cfg) != 0 ||
              get_number(r, f, "fusion", "overlap_thr", 0, 1, &cfg->combine.overlap_thr) != 0 ||
              get_int(r, f, "fusion", "stuff_area_limit", 0, 1L << 40, &area) != 0))
        return -1;
    cfg->combine.stuff_area_limit = (uint64_t)area;
    if (!cfg->metric && !(cfg->metric = strdup("mask_ap")))
        return avps_fail(r->err, "out of memory");
    if (!cfg->combiner && !(cfg->combiner = strdup("heuristic")))
        return avps_fail(r->err, "out of memory");
    if (strcmp(cfg->metric, "mask_ap") != 0 && strcmp(cfg->metric, "pq_th") != 0)
        return avps_fail(r->err, "%s: \"fusion.metric\" must be \"mask_ap\" or \"pq_th\", not \"%s\"", r->file,
                         cfg->metric);
    if (combiner_kind_parse(cfg->combiner, &cfg->combiner_kind) != 0)
        return avps_fail(r->err, "%s: \"fusion.combiner\" must be \"heuristic\" or \"upsnet\", not \"%s\"", r->file,
                         cfg->combiner);
    if (!cfg->class_table && !cfg->has_heldout)
        return avps_fail(r->err, "%s: \"datasets.heldout\" is required unless \"fusion.class_table\" names a table",
                         r->file);
    return 0;
}

static int read_root(const reader *r, const cJSON *root, const char *base, run_config *cfg) {
    static const char *const keys[] = {"seed", "datasets", "heads", "ensemble", "lwl_htc", "fusion", "out",
                                       "write_end_panoptic", "threads", "chunk", "comment", NULL};
    long seed = 1;
    char *lwl = NULL;
    if (!cJSON_IsObject(root))
        return avps_fail(r->err, "%s: the config must be a JSON object", r->file);
    int rc = check_keys(r, root, "", keys) != 0 || get_int(r, root, "", "seed", 0, 2147483647L, &seed) != 0 ||
                     read_datasets(r, root, base, cfg) != 0 || read_heads(r, root, base, cfg) != 0 ||
                     read_ensemble(r, root, cfg) != 0 || get_string(r, root, "", "lwl_htc", NULL, 0, &lwl) != 0 ||
                     read_fusion(r, root, base, cfg) != 0 || get_string(r, root, "", "out", base, 1, &cfg->out) != 0 ||
                     get_bool(r, root, "", "write_end_panoptic", &cfg->write_end_panoptic) != 0 ||
                     get_int(r, root, "", "threads", 0, 1024, &cfg->threads) != 0 ||
                     get_int(r, root, "", "chunk", 0, 1000000, &cfg->chunk) != 0
                 ? -1
                 : 0;
    cfg->seed = (uint64_t)seed;
    if (rc == 0 && !lwl)
        rc = avps_fail(r->err, "%s: \"lwl_htc\" (the name of the HTC head) is required", r->file);
    if (rc == 0 && head_index(cfg, lwl, &cfg->lwl_htc) != 0)
        rc = avps_fail(r->err, "%s: \"lwl_htc\": no head is named \"%s\"", r->file, lwl);
    free(lwl);
    return rc;
}

int run_config_load(const char *path, run_config *cfg, avps_error *err) {
    memset(cfg, 0, sizeof *cfg);
    combine_params_default(&cfg->combine);
    cfg->ss_weights[0] = cfg->ss_weights[1] = 1;
    cfg->min_instances = 10;
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text)
        return -1;
    cfg->hash = run_fnv(RUN_FNV_START, text, len);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root)
        return avps_fail(err, "%s: not valid JSON", path);
    reader r = {path, err};
    char *base = strdup(path);
    char *slash = base ? strrchr(base, '/') : NULL;
    if (slash)
        *slash = 0;
    int rc = base && (cfg->path = strdup(path)) ? read_root(&r, root, slash ? base : ".", cfg)
                                                : avps_fail(err, "out of memory");
    free(base);
    cJSON_Delete(root);
    if (rc != 0)
        run_config_release(cfg); /* what was read before the error */
    return rc;
}

void run_config_release(run_config *cfg) {
    free(cfg->path);
    free(cfg->heldout.gt_json);
    free(cfg->heldout.gt_dir);
    free(cfg->eval.gt_json);
    free(cfg->eval.gt_dir);
    for (size_t i = 0; i < RUN_MAX_HEADS; i++) {
        free(cfg->heads[i].name);
        free(cfg->heads[i].backend);
        free(cfg->heads[i].profile);
        free(cfg->heads[i].store);
    }
    free(cfg->ensemble_name);
    free(cfg->class_table);
    free(cfg->metric);
    free(cfg->combiner);
    free(cfg->out);
    memset(cfg, 0, sizeof *cfg);
}

head *run_head_new(const run_config *cfg, size_t i, const pan_dataset *ds, avps_error *err) {
    const run_head *h = &cfg->heads[i];
    head_config hc = {h->name, h->backend, h->profile, h->store, cfg->seed};
    head *out = head_new(&hc, ds, err);
    if (!out)
        avps_prefix(err, "%s: heads[%zu] (%s)", cfg->path, i, h->name);
    return out;
}
