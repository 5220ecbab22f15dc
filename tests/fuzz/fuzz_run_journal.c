/* fuzz_run_journal.c: what `avps run --resume` reads (mpi/run_journal.c): a journal and
 * the records it names, each record then parsed (run_record_parse). Input: the journal's
 * text, a NUL, then a record's bytes; the harness writes the record once whole (with the
 * header and checksum the writer gives it, as item 0) and once as it is (as item 1). */
#include "../../mpi/run.h"
#include "fuzz_config_files.h"

#include <sys/stat.h>

static pan_dataset *ds;
static char dir[512], jdir[600], wdir[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ds = fuzz_pan_dataset();
    fuzz_path(dir, sizeof dir, "run");
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    snprintf(wdir, sizeof wdir, "%s/work", dir);
    mkdir(dir, 0755), mkdir(jdir, 0755), mkdir(wdir, 0755);
    return 0;
}

static void put(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *fp = fopen(path, "wb");
    FUZZ_ASSERT(fp);
    if (na)
        fwrite(a, 1, na, fp);
    if (nb)
        fwrite(b, 1, nb, fp);
    fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *rec = nul ? nul + 1 : data + size;
    size_t rlen = (size_t)(data + size - rec);
    char jpath[700], r0[700], r1[700];
    snprintf(jpath, sizeof jpath, "%s/0.1.log", jdir);
    snprintf(r0, sizeof r0, "%s/0.rec", wdir);
    snprintf(r1, sizeof r1, "%s/1.rec", wdir);
    const uint64_t hash = 42;
    struct {
        char magic[8];
        uint64_t config_hash, item, len, checksum;
    } h = {"AVPSREC", hash, 0, rlen, run_fnv(RUN_FNV_START, rec, rlen)};
    memcpy(h.magic, "AVPSREC2", 8);
    put(jpath, data, jlen, NULL, 0);
    put(r0, &h, sizeof h, rec, rlen);
    put(r1, rec, rlen, NULL, 0);

    job_blob blobs[2];
    memset(blobs, 0, sizeof blobs);
    size_t *todo = NULL, n_todo = 0;
    avps_error err;
    if (run_journal_load(dir, hash, ds, blobs, &todo, &n_todo, &err) == 0) {
        FUZZ_ASSERT(n_todo <= ds->n_annotations);
        for (size_t i = 0; i < 2; i++) {
            run_record r;
            if (blobs[i].len && run_record_parse(blobs[i].data, blobs[i].len, &r) == 0) {
                FUZZ_ASSERT(r.n_ends <= RUN_ENDS);
            }
        }
    }
    free(todo);
    for (size_t i = 0; i < 2; i++)
        free(blobs[i].data);
    unlink(jpath), unlink(r0), unlink(r1);
    return 0;
}
