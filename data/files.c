/* files.c: reading whole files, atomic writes (temporary file + rename) and paths. */
#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *file_read_all(const char *path, size_t *len, avps_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        avps_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(fp);
                avps_fail(err, "%s: out of memory reading the file", path);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        avps_fail(err, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char *str_concat3(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

int file_atomic_open(atomic_file *af, const char *path, avps_error *err) {
    char suffix[48];
    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
    af->fp = NULL;
    af->final_path = strdup(path);
    af->tmp_path = str_concat3(path, suffix, "");
    if (!af->final_path || !af->tmp_path) {
        file_atomic_abort(af);
        return avps_fail(err, "%s: out of memory", path);
    }
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int e = errno;
        file_atomic_abort(af);
        return avps_fail(err, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

int file_atomic_commit(atomic_file *af, avps_error *err) {
    int bad = ferror(af->fp);
    if (fclose(af->fp) != 0)
        bad = 1;
    af->fp = NULL;
    if (bad) {
        avps_fail(err, "%s: write error (disk full?)", af->final_path);
        file_atomic_abort(af);
        return -1;
    }
    if (rename(af->tmp_path, af->final_path) != 0) {
        avps_fail(err, "%s: cannot rename into place: %s", af->final_path, strerror(errno));
        file_atomic_abort(af);
        return -1;
    }
    free(af->final_path);
    free(af->tmp_path);
    af->final_path = af->tmp_path = NULL;
    return 0;
}

void file_atomic_abort(atomic_file *af) {
    if (af->fp)
        fclose(af->fp);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->final_path);
    free(af->tmp_path);
    af->fp = NULL;
    af->final_path = af->tmp_path = NULL;
}

char *path_without_json_suffix(const char *path) {
    size_t n = strlen(path);
    char *s = strdup(path);
    if (s && n >= 5 && strcmp(path + n - 5, ".json") == 0)
        s[n - 5] = '\0';
    return s;
}

char *path_join(const char *dir, const char *name) {
    if (!*dir || name[0] == '/')
        return strdup(name);
    size_t n = strlen(dir);
    return str_concat3(dir, dir[n - 1] == '/' ? "" : "/", name);
}

int dir_create(const char *path, avps_error *err) {
    char *p = strdup(path);
    if (!p)
        return avps_fail(err, "%s: out of memory", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return avps_fail(err, "%s: cannot create the folder: %s", path, strerror(e));
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return 0;
}
