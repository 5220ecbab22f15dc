/* fuzz_run_config.c: the run config of `avps run` (mpi/run_config.c), and the NAME=SPEC
 * end syntax of calibrate and run (mpi/end_spec.c) on the same bytes. */
#include "../../mpi/end_spec.h"
#include "../../mpi/run.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    run_config cfg;
    fuzz_write(path, sizeof path, "run.json", data, size);
    memset(&cfg, 0, sizeof cfg);
    if (run_config_load(path, &cfg, &err) == 0)
        run_config_release(&cfg);
    unlink(path);
    char *text = malloc(size + 1);
    FUZZ_ASSERT(text);
    memcpy(text, data, size);
    text[size] = 0;
    end_spec spec;
    if (strlen(text) < 4096 && end_spec_parse(text, &spec, &err) == 0)
        end_spec_release(&spec);
    free(text);
    return 0;
}
