/* progress: the console progress line that `avps run` and every long command share
 * (run_progress.c): images done of total, images/s and time left, on the root's stderr.
 *
 * Contract: the same --progress modes everywhere (auto, bar, lines, none); `auto` draws a
 * bar only on a terminal outside a launcher, prints lines otherwise, and stays silent for
 * work done within its first two seconds, so that a short command's stderr holds only
 * its warnings. bar and lines, asked for, print from the start. */
#ifndef AVPS_PROGRESS_H
#define AVPS_PROGRESS_H

#include "job.h"

typedef enum { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_LINES, PROGRESS_NONE } progress_mode;
typedef struct {
    progress_mode mode;
    int patient; /* chosen by auto: nothing before PROGRESS_AUTO_DELAY seconds */
    const char *what;
    size_t total, already;
    double start, last_print;
    size_t last_done;
    int printed;
} run_progress;
#define PROGRESS_AUTO_DELAY 2.0

int run_progress_mode(const char *text, progress_mode *mode);
/* Decides auto, on the root: a bar only on a terminal outside a launcher (docs/config.md). */
void run_progress_start(run_progress *p, progress_mode mode, const char *what, size_t total, size_t already);
void run_progress_update(void *ctx, size_t done); /* a job_progress_fn */
double run_now(void);

/* cli_take for --progress: 1 when argv[*i] was it (mode set), 0 when another option,
 * -1 with err (naming cmd) for a missing or unknown mode. */
int progress_take(int argc, char **argv, int *i, const char *cmd, progress_mode *mode, avps_error *err);

/* job_map with the progress line: the same blobs on the root (NULL elsewhere), items
 * handed out dynamically; `what` heads the line ("avps eval pq"). */
job_blob *progress_map(avps_job *job, size_t n_items, int threads, job_item_fn fn, void *ctx, progress_mode mode,
                       const char *what);

#endif
