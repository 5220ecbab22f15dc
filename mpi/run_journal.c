/* run_journal.c: what makes `avps run --resume` possible. Each finished image's record is
 * written atomically to OUT/work/<item>.rec (a header with the config's hash, the item,
 * the length and a checksum, then the record), and only then noted as a line
 * "<item> <image id>" in the journal of the process that made it (OUT/journal/<rank>.<pid>.log,
 * one file per process so that no two processes append to one file). On resume, an
 * image counts as done when a journal names it and its record checks out; everything
 * else is done again, by any number of ranks. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char magic[8];
    uint64_t config_hash, item, len, checksum;
} rec_header;

/* 2: the record carries each step's CPU seconds (a version 1 record is redone) */
static const char rec_magic[8] = "AVPSREC2";

static char *rec_path(const char *work_dir, size_t item) {
    char name[48];
    snprintf(name, sizeof name, "%zu.rec", item);
    return path_join(work_dir, name);
}

int run_journal_open(run_state *rs, avps_error *err) {
    char *dir = path_join(rs->cfg->out, "journal");
    char name[64];
    snprintf(name, sizeof name, "%d.%ld.log", job_rank(rs->job), (long)getpid());
    char *path = dir ? path_join(dir, name) : NULL;
    int rc = path ? dir_create(dir, err) : avps_fail(err, "out of memory");
    if (rc == 0 && (rs->journal_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        rc = avps_fail(err, "%s: cannot open the journal: %s", path, strerror(errno));
    free(dir);
    free(path);
    return rc;
}

int run_journal_put(run_state *rs, size_t item, const job_blob *blob, avps_error *err) {
    rec_header h = {{0}, rs->cfg->hash, item, blob->len, run_fnv(RUN_FNV_START, blob->data, blob->len)};
    memcpy(h.magic, rec_magic, sizeof h.magic);
    char *path = rec_path(rs->work_dir, item);
    atomic_file af;
    if (!path)
        return avps_fail(err, "out of memory");
    int rc = file_atomic_open(&af, path, err);
    if (rc == 0) {
        if (fwrite(&h, sizeof h, 1, af.fp) != 1 || (blob->len && fwrite(blob->data, blob->len, 1, af.fp) != 1)) {
            file_atomic_abort(&af);
            rc = avps_fail(err, "%s: write error (disk full?)", path);
        } else {
            rc = file_atomic_commit(&af, err);
        }
    }
    free(path);
    if (rc != 0)
        return -1;
    char line[160];
    int n = snprintf(line, sizeof line, "%zu %s\n", item, rs->gt->annotations[item].image_id);
    if (n < 0 || n >= (int)sizeof line)
        n = snprintf(line, sizeof line, "%zu -\n", item);
    if (write(rs->journal_fd, line, (size_t)n) != n)
        return avps_fail(err, "%s/journal: write error (disk full?): %s", rs->cfg->out, strerror(errno));
    return 0;
}

/* Reads OUT/work/<item>.rec into blob when it is whole and made by this config. */
static int load_record(const char *work_dir, uint64_t hash, size_t item, job_blob *blob) {
    char *path = rec_path(work_dir, item);
    avps_error ignored;
    size_t len = 0;
    char *data = path ? file_read_all(path, &len, &ignored) : NULL;
    free(path);
    rec_header h;
    int ok = data && len >= sizeof h;
    if (ok) {
        memcpy(&h, data, sizeof h);
        ok = memcmp(h.magic, rec_magic, sizeof h.magic) == 0 && h.config_hash == hash && h.item == item &&
             h.len == len - sizeof h && h.checksum == run_fnv(RUN_FNV_START, data + sizeof h, h.len);
    }
    if (ok && blob) {
        blob->len = 0;
        ok = job_blob_append(blob, data + sizeof h, h.len) == 0;
    }
    free(data);
    return ok;
}

int run_journal_read(const char *out_dir, uint64_t config_hash, size_t item, job_blob *blob) {
    char *wdir = path_join(out_dir, "work");
    int ok = wdir && load_record(wdir, config_hash, item, blob);
    free(wdir);
    return ok ? 0 : -1;
}

/* Marks the items named by one journal file. */
static void read_journal(const char *path, const pan_dataset *gt, uint8_t *named) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char line[256];
    while (fgets(line, sizeof line, fp)) {
        char *end;
        unsigned long long item = strtoull(line, &end, 10);
        if (end == line || *end != ' ' || item >= gt->n_annotations)
            continue;
        char *id = end + 1;
        id[strcspn(id, "\n")] = 0;
        if (strcmp(id, gt->annotations[item].image_id) == 0)
            named[item] = 1; /* a line cut short by a crash names nothing */
    }
    fclose(fp);
}

int run_journal_load(const char *out_dir, uint64_t config_hash, const pan_dataset *gt, job_blob *blobs, size_t **todo,
                     size_t *n_todo, avps_error *err) {
    size_t n = gt->n_annotations;
    uint8_t *named = calloc(n + 1, 1);
    char *jdir = path_join(out_dir, "journal"), *wdir = path_join(out_dir, "work");
    *todo = calloc(n + 1, sizeof **todo);
    *n_todo = 0;
    int rc = named && jdir && wdir && *todo ? 0 : avps_fail(err, "out of memory");
    DIR *d = rc == 0 ? opendir(jdir) : NULL;
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".log") != 0)
            continue;
        char *p = path_join(jdir, de->d_name);
        if (p)
            read_journal(p, gt, named);
        free(p);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!named[i] || !load_record(wdir, config_hash, i, blobs ? &blobs[i] : NULL))
            (*todo)[(*n_todo)++] = i;
    free(named);
    free(jdir);
    free(wdir);
    return rc;
}
