/* fuzz_class_table.c: the class table (fusion/class_table.c) read against a fixed
 * dataset, with the table's own ends and with two ends the caller names. */
#include "../../fusion/fusion.h"
#include "fuzz_config_files.h"

static pan_dataset *ds;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ds = fuzz_pan_dataset();
    return 0;
}

static void check(const class_table *t) {
    int map[8];
    avps_error err;
    FUZZ_ASSERT(ds->n_categories <= 8);
    for (size_t c = 0; c < t->n_classes; c++)
        FUZZ_ASSERT(t->chosen[c] >= 0 && (size_t)t->chosen[c] < t->n_ends);
    FUZZ_ASSERT(t->overall_best >= 0 && (size_t)t->overall_best < t->n_ends);
    (void)class_table_end_map(t, ds, map, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const ends[2] = {"ups", "htc"};
    char path[512];
    avps_error err;
    class_table t;
    fuzz_write(path, sizeof path, "class_table.json", data, size);
    if (class_table_read(path, ds, NULL, 0, &t, &err) == 0) {
        check(&t);
        class_table_release(&t);
    }
    if (class_table_read(path, ds, ends, 2, &t, &err) == 0) {
        FUZZ_ASSERT(t.n_ends == 2);
        check(&t);
        class_table_release(&t);
    }
    unlink(path);
    return 0;
}
