/* run_progress.c: the progress line of `avps run` and the other long commands, on the
 * root: images done of total, images per second and time left. A bar refreshed in place on a terminal, plain lines
 * (every 10 % or 10 s) otherwise. `auto` cannot trust isatty under a launcher: Open MPI
 * gives every rank a pseudo-terminal even when mpirun's output goes to a file, so under
 * a launcher (or with CI set, or TERM=dumb) auto means lines; --progress bar forces the bar. */
#include "progress.h"

#include "cli.h"

#include <pthread.h>
#include <stdatomic.h>
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
    p->patient = mode == PROGRESS_AUTO;
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
    if (p->patient && !p->printed && elapsed < PROGRESS_AUTO_DELAY)
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

int progress_take(int argc, char **argv, int *i, const char *cmd, progress_mode *mode, avps_error *err) {
    const char *text = NULL;
    int r = cli_take(argc, argv, i, "--progress", &text, err);
    if (r == 1 && run_progress_mode(text, mode) != 0)
        return avps_fail(err, "%s: --progress must be auto, bar, lines or none, not '%s'", cmd, text);
    return r;
}

/* job_map keeps its static sharding (item i on rank i mod size), which commands rely on
 * when each rank loads only its own images' annotations. The root sees only its own
 * items finish, so its share done, scaled to all items, is the line's count: ranks get
 * equal shares, and the line ends at the total once every rank has sent its part. */
typedef struct {
    job_item_fn fn;
    void *ctx;
    run_progress prog;
    size_t n_items, n_mine;
    atomic_size_t done;
    pthread_mutex_t lock;
} progress_ctx;

static int progress_item(void *ctx, int thread, size_t item, job_blob *out, avps_error *err) {
    progress_ctx *pc = ctx;
    if (pc->fn(pc->ctx, thread, item, out, err) != 0)
        return -1;
    size_t done = atomic_fetch_add(&pc->done, 1) + 1;
    if (pthread_mutex_trylock(&pc->lock) == 0) { /* a busy line skips this tick */
        run_progress_update(&pc->prog, done >= pc->n_mine ? pc->n_items - 1 : done * pc->n_items / pc->n_mine);
        pthread_mutex_unlock(&pc->lock);
    }
    return 0;
}

job_blob *progress_map(avps_job *job, size_t n_items, int threads, job_item_fn fn, void *ctx, progress_mode mode,
                       const char *what) {
    if (!job_is_root(job) || mode == PROGRESS_NONE || n_items == 0)
        return job_map(job, n_items, threads, fn, ctx);
    progress_ctx pc = {.fn = fn, .ctx = ctx, .n_items = n_items};
    size_t size = (size_t)job_size(job);
    pc.n_mine = (n_items + size - 1) / size;
    atomic_init(&pc.done, 0);
    pthread_mutex_init(&pc.lock, NULL);
    run_progress_start(&pc.prog, mode, what, n_items, 0);
    job_blob *blobs = job_map(job, n_items, threads, progress_item, &pc);
    run_progress_update(&pc.prog, n_items);
    pthread_mutex_destroy(&pc.lock);
    return blobs;
}
