/* run_gpu.c: which GPU a rank of `avps run` uses. Ranks on one node share its GPUs by
 * their node-local rank: local rank r takes the (r mod n)-th of the devices it may see
 * (CUDA_VISIBLE_DEVICES when the launcher or the user set it, else every /dev/nvidiaN),
 * and narrows CUDA_VISIBLE_DEVICES to that one before any head starts, so that a CUDA
 * backend sees exactly one device. Without GPUs nothing changes (sim and replay heads
 * use none). */
#include "run.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

int run_gpu_pick(long local_rank, const char *visible, size_t n_devices, char *out, size_t out_len) {
    out[0] = 0;
    if (local_rank < 0)
        local_rank = 0;
    if (visible) { /* a list "2,5,7" (or UUIDs): take the entry by position */
        size_t n = 0;
        for (const char *p = visible; *p; p++)
            n += *p == ',';
        n += *visible != 0;
        if (n == 0)
            return 0;
        size_t want = (size_t)local_rank % n, k = 0;
        const char *start = visible;
        while (k < want) {
            start = strchr(start, ',') + 1;
            k++;
        }
        size_t len = strcspn(start, ",");
        if (len == 0 || len >= out_len)
            return 0;
        memcpy(out, start, len);
        out[len] = 0;
        return 1;
    }
    if (n_devices == 0)
        return 0;
    snprintf(out, out_len, "%zu", (size_t)local_rank % n_devices);
    return 1;
}

/* /dev/nvidia0, /dev/nvidia1, ...: the NVIDIA devices, without linking CUDA. */
static size_t count_nvidia_devices(void) {
    DIR *d = opendir("/dev");
    size_t n = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        const char *s = de->d_name;
        if (strncmp(s, "nvidia", 6) != 0 || !s[6])
            continue;
        int digits = 1;
        for (const char *p = s + 6; *p; p++)
            digits &= *p >= '0' && *p <= '9';
        n += digits;
    }
    if (d)
        closedir(d);
    return n;
}

static long node_local_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                                       "PMIX_LOCAL_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strtol(v, NULL, 10);
    }
    return 0;
}

int run_gpu_bind(char *chosen, size_t len) {
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (!run_gpu_pick(node_local_rank(), visible, visible ? 0 : count_nvidia_devices(), chosen, len))
        return 0;
    setenv("CUDA_VISIBLE_DEVICES", chosen, 1);
    return 1;
}
