/* json_compare: checks a report against a reference answer. Integers (n, tp, fp, fn)
 * must be equal; other numbers equal to 1e-9 relative, or exactly with --exact. Every key
 * of the expected file must be present. Prints each difference; exits 1 if there is any. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exact;

static int is_integer_key(const char *k) {
    return !strcmp(k, "n") || !strcmp(k, "tp") || !strcmp(k, "fp") || !strcmp(k, "fn");
}

static int compare(const cJSON *want, const cJSON *got, const char *path) {
    int bad = 0;
    if (cJSON_IsObject(want)) {
        const cJSON *w;
        cJSON_ArrayForEach(w, want) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, w->string);
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
            if (!g) {
                printf("missing: %s\n", sub);
                bad++;
                continue;
            }
            bad += compare(w, g, sub);
        }
        return bad;
    }
    if (!cJSON_IsNumber(want) || !cJSON_IsNumber(got)) {
        printf("not a number: %s\n", path);
        return 1;
    }
    double a = want->valuedouble, b = got->valuedouble;
    const char *key = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int ok = exact || is_integer_key(key) ? a == b : fabs(a - b) <= 1e-9 * fabs(a) || (a == 0 && fabs(b) < 1e-300);
    if (!ok)
        printf("differs: %s: expected %.17g, got %.17g\n", path, a, b);
    return !ok;
}

static cJSON *load(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return cJSON_Parse(buf);
}

int main(int argc, char **argv) {
    exact = argc == 4 && strcmp(argv[1], "--exact") == 0;
    argv += exact;
    argc -= exact;
    if (argc != 3) {
        fprintf(stderr, "usage: json_compare [--exact] EXPECTED GOT\n");
        return 2;
    }
    cJSON *want = load(argv[1]), *got = load(argv[2]);
    if (!want || !got) {
        printf("cannot read %s\n", want ? argv[2] : argv[1]);
        return 1;
    }
    int bad = compare(want, got, "");
    cJSON_Delete(want);
    cJSON_Delete(got);
    return bad ? 1 : 0;
}
