/* fuzz_sim_profile.c: sim head profile files (model/sim_profile.c). */
#include "../../model/sim.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    avps_error err;
    sim_profile p;
    fuzz_write(path, sizeof path, "profile.json", data, size);
    if (sim_profile_get(path, &p, &err) == 0) {
        uint8_t isthing[3] = {1, 0, 1};
        double q[3];
        sim_class_quality(&p, 1, "r50", isthing, 3, q);
    }
    unlink(path);
    return 0;
}
