/* run_progress.c: the progress line of `avps run` on the root: images done of total,
 * images per second and time left. A bar refreshed in place on a terminal, plain lines
 * (every 10 % or 10 s) otherwise. `auto` cannot trust isatty under a launcher: Open MPI
 * gives every rank a pseudo-terminal even when mpirun's output goes to a file, so under
 * a launcher (or with CI set, or TERM=dumb) auto means lines; --progress bar forces the bar. */
#include "run.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int run_progress_mode(const char *text, progress_mode *mode) {
    static const char *const names[] = {"auto", "bar", "lines", "none"};
    for (int k = 0; k < 4; k++)
        if (strcmp(text, names[k]) == 0) {
            *mode = (progress_mode)k;
            return 0;
        }
    return -1;
}

static int under_launcher(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static progress_mode decide(progress_mode mode) {
    if (mode != PROGRESS_AUTO)
        return mode;
    const char *term = getenv("TERM");
    int terminal = isatty(STDERR_FILENO) && !under_launcher() && !getenv("CI") && !(term && strcmp(term, "dumb") == 0);
    return terminal ? PROGRESS_BAR : PROGRESS_LINES;
}

void run_progress_start(run_progress *p, progress_mode mode, const char *what, size_t total, size_t already) {
    memset(p, 0, sizeof *p);
    p->mode = decide(mode);
    p->what = what;
    p->total = total;
    p->already = already;
    p->start = p->last_print = run_now();
}

static void format_eta(double seconds, char *buf, size_t n) {
    if (seconds < 0 || seconds > 1e7)
        snprintf(buf, n, "?");
    else if (seconds >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(seconds / 3600), (int)(seconds / 60) % 60);
    else if (seconds >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(seconds / 60), (int)seconds % 60);
    else
        snprintf(buf, n, "%.0fs", seconds);
}

void run_progress_update(void *ctx, size_t done) {
    run_progress *p = ctx;
    if (p->mode == PROGRESS_NONE)
        return;
    double t = run_now(), elapsed = t - p->start;
    size_t all = p->already + done, todo = p->total - p->already;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[32];
    format_eta(rate > 0 ? (double)(todo - done) / rate : -1, eta, sizeof eta);
    int finished = done >= todo;
    if (finished && p->printed && p->last_done == done)
        return;
    if (p->mode == PROGRESS_BAR) {
        if (!finished && t - p->last_print < 0.1)
            return;
        int width = 30, fill = p->total ? (int)((double)all * width / (double)p->total) : width;
        char bar[64];
        for (int k = 0; k < width; k++)
            bar[k] = k < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r%s [%s] %zu/%zu images, %.1f images/s, %s left \033[K%s", p->what, bar, all, p->total,
                rate, eta, finished ? "\n" : "");
    } else {
        size_t step = todo / 10 ? todo / 10 : 1;
        int due = finished || t - p->last_print >= 10 || done / step != p->last_done / step;
        if (!due)
            return;
        fprintf(stderr, "%s: %zu/%zu images, %.1f images/s, %s left\n", p->what, all, p->total, rate, eta);
    }
    fflush(stderr);
    p->last_print = t;
    p->last_done = done;
    p->printed = 1;
}
