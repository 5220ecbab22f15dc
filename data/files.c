/* files.c: reading whole files, atomic writes (temporary file + rename) and paths. */
#include "data.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
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

/* The file a path names once its symbolic links are followed (a dangling one included:
 * writing through it creates its target). Caller frees. */
static char *follow_links(const char *path, avps_error *err) {
    char *p = strdup(path);
    for (int hops = 0; p; hops++) {
        struct stat ls;
        if (lstat(p, &ls) != 0 || !S_ISLNK(ls.st_mode))
            return p;
        char link[PATH_MAX];
        ssize_t n = hops < 40 ? readlink(p, link, sizeof link - 1) : -1;
        if (n < 0) {
            avps_fail(err, "%s: cannot follow the symbolic link: %s", path, strerror(hops < 40 ? errno : ELOOP));
            free(p);
            return NULL;
        }
        link[n] = '\0';
        char *slash = strrchr(p, '/');
        if (slash && link[0] != '/')
            slash[1] = '\0';
        char *next = str_concat3(slash && link[0] != '/' ? p : "", link, "");
        free(p);
        p = next;
    }
    avps_fail(err, "%s: out of memory", path);
    return NULL;
}

/* Standard output, a device or a FIFO: written in place, since it cannot be replaced. */
static int open_direct(atomic_file *af, const char *path, int is_stdout, avps_error *err) {
    af->fp = is_stdout ? stdout : fopen(path, "wb");
    af->is_stdout = is_stdout;
    if (!af->fp) {
        int e = errno;
        file_atomic_abort(af);
        return avps_fail(err, "%s: cannot open for writing: %s", path, strerror(e));
    }
    return 0;
}

/* A regular file, new or not: "<target>.tmp.<pid>" beside it, renamed onto it at commit
 * (an existing file keeps its permissions). */
static int open_replacing(atomic_file *af, const char *path, const struct stat *old, avps_error *err) {
    char suffix[48];
    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
    char *target = follow_links(path, err);
    if (!target) {
        file_atomic_abort(af);
        return -1;
    }
    af->tmp_path = str_concat3(target, suffix, "");
    af->target = target;
    if (!af->tmp_path) {
        file_atomic_abort(af);
        return avps_fail(err, "%s: out of memory", path);
    }
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp || (old && fchmod(fileno(af->fp), old->st_mode & 07777) != 0)) {
        int e = errno;
        avps_fail(err, "%s: cannot create the temporary file %s beside it: %s", path, af->tmp_path, strerror(e));
        file_atomic_abort(af);
        return -1;
    }
    return 0;
}

/* The folder a new or replaced file goes into must exist and take new files (the
 * temporary file is made there). */
static int parent_writable(const char *target, const char *shown, avps_error *err) {
    char *dir = strdup(target);
    if (!dir)
        return avps_fail(err, "%s: out of memory", shown);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x" -> "/" */
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) != 0)
        rc = avps_fail(err, "%s: cannot write in the folder %s: %s", shown, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = avps_fail(err, "%s: %s is not a folder", shown, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = avps_fail(err, "%s: cannot write in the folder %s: %s", shown, dir, strerror(errno));
    free(dir);
    return rc;
}

static int is_stdout_file(const struct stat *st) {
    struct stat out;
    return fstat(STDOUT_FILENO, &out) == 0 && out.st_dev == st->st_dev && out.st_ino == st->st_ino;
}

int file_output_check(const char *path, avps_error *err) {
    struct stat st;
    if (strcmp(path, "-") == 0)
        return 0;
    int exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT)
        return avps_fail(err, "%s: cannot write: %s", path, strerror(errno));
    if (exists && S_ISDIR(st.st_mode))
        return avps_fail(err, "%s: is a folder; give the name of a file to write", path);
    if (exists && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
        return avps_fail(err, "%s: is neither a regular file, a character device nor a FIFO; not written", path);
    if (exists && is_stdout_file(&st))
        return 0;
    if (exists && !S_ISREG(st.st_mode))
        return access(path, W_OK) == 0 ? 0 : avps_fail(err, "%s: cannot open for writing: %s", path, strerror(errno));
    char *target = follow_links(path, err); /* a new file, or one replaced through a temporary file */
    int rc = target ? parent_writable(target, path, err) : -1;
    free(target);
    return rc;
}

int dir_output_check(const char *path, avps_error *err) {
    char *p = strdup(path);
    if (!p)
        return avps_fail(err, "%s: out of memory", path);
    struct stat st;
    int rc = 0, own = 1; /* own: p is path itself, not a folder above it */
    for (;;) {
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                rc = own ? avps_fail(err, "%s: exists and is not a folder", path)
                         : avps_fail(err, "%s: cannot make the folder: %s is not a folder", path, p);
            else if (access(p, W_OK | X_OK) != 0)
                rc = avps_fail(err, "%s: cannot write in the folder %s: %s", path, p, strerror(errno));
            break;
        }
        if (errno != ENOENT) {
            rc = avps_fail(err, "%s: cannot make the folder: %s: %s", path, p, strerror(errno));
            break;
        }
        char *slash = strrchr(p, '/');
        while (slash && slash > p && slash[1] == '\0') { /* "a/b/" */
            *slash = '\0';
            slash = strrchr(p, '/');
        }
        if (!slash) {
            strcpy(p, ".");
        } else if (slash == p) {
            p[1] = '\0';
        } else {
            *slash = '\0';
        }
        own = 0;
    }
    free(p);
    return rc;
}

char *path_parent(const char *path) {
    char *p = strdup(path);
    char *slash = p ? strrchr(p, '/') : NULL;
    if (p && !slash)
        strcpy(p, ".");
    else if (slash)
        slash[slash == p] = '\0';
    return p;
}

char *path_first_missing(const char *path) {
    char *p = strdup(path), *missing = NULL;
    struct stat st;
    while (p && lstat(p, &st) != 0 && errno == ENOENT) {
        free(missing);
        missing = strdup(p);
        char *slash = strrchr(p, '/');
        while (slash && slash > p && slash[1] == '\0') {
            *slash = '\0';
            slash = strrchr(p, '/');
        }
        if (!slash || slash == p)
            break;
        *slash = '\0';
    }
    free(p);
    return missing;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0; /* go on: remove as much as can be removed */
}

void path_remove_all(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode))
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        unlink(path);
}

int file_atomic_open(atomic_file *af, const char *path, avps_error *err) {
    *af = (atomic_file){0};
    if (!(af->final_path = strdup(path)))
        return avps_fail(err, "%s: out of memory", path);
    if (strcmp(path, "-") == 0)
        return open_direct(af, "standard output", 1, err);
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            return open_replacing(af, path, NULL, err);
        file_atomic_abort(af);
        return avps_fail(err, "%s: cannot write: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode) || (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))) {
        file_output_check(path, err); /* its message */
        file_atomic_abort(af);
        return -1;
    }
    /* /dev/stdout, /proc/self/fd/1 or the very file standard output goes to */
    if (is_stdout_file(&st))
        return open_direct(af, path, 1, err);
    if (S_ISREG(st.st_mode))
        return open_replacing(af, path, &st, err);
    return open_direct(af, path, 0, err);
}

/* Flushes and closes (standard output: flushes only); 0 or the errno of the failure. */
static int close_checked(atomic_file *af) {
    int e = 0;
    if (fflush(af->fp) != 0)
        e = errno;
    if (ferror(af->fp) && !e)
        e = EIO;
    if (!af->is_stdout && fclose(af->fp) != 0 && !e)
        e = errno;
    af->fp = NULL;
    return e;
}

int file_atomic_close(atomic_file *af, avps_error *err) {
    int e = af->fp ? close_checked(af) : 0;
    if (e) {
        avps_fail(err, "%s: write error: %s", af->is_stdout && strcmp(af->final_path, "-") == 0 ? "standard output"
                                                                                                : af->final_path,
                  strerror(e));
        file_atomic_abort(af);
        return -1;
    }
    return 0;
}

int file_atomic_commit(atomic_file *af, avps_error *err) {
    if (file_atomic_close(af, err) != 0)
        return -1;
    if (af->tmp_path && rename(af->tmp_path, af->target) != 0) {
        avps_fail(err, "%s: cannot rename into place: %s", af->final_path, strerror(errno));
        file_atomic_abort(af);
        return -1;
    }
    free(af->tmp_path);
    af->tmp_path = NULL;
    file_atomic_abort(af);
    return 0;
}

void file_atomic_abort(atomic_file *af) {
    if (af->fp && !af->is_stdout)
        fclose(af->fp);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->final_path);
    free(af->target);
    free(af->tmp_path);
    *af = (atomic_file){0};
}

char *path_without_json_suffix(const char *path) {
    size_t n = strlen(path);
    char *s = strdup(path);
    if (s && n >= 5 && strcmp(path + n - 5, ".json") == 0)
        s[n - 5] = '\0';
    return s;
}

char *path_canonical(const char *path) {
    char *real = realpath(path, NULL);
    return real ? real : strdup(path);
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
        struct stat st;
        if (mkdir(p, 0777) != 0 && (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
            int e = errno == EEXIST ? ENOTDIR : errno;
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
