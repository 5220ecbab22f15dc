/* gemm.c: the matrix product under convolutions and fully connected layers, either
 * OpenBLAS's sgemm or a plain C one (cache-blocked; kept to measure what OpenBLAS earns,
 * docs/performance.md).
 *
 * OpenBLAS is opened with dlopen the first time the engine asks for it, not linked into
 * bin/avps: its library constructor starts a thread pool whose worker spins on
 * sched_yield for about 0.1 s of a core, which every command (eval pq, eval ap, help)
 * paid although only the native engine multiplies with it (docs/performance.md,
 * "OpenBLAS opened on first use"). <cblas.h> still gives the types. */
#include "../nn.h"

#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Debian's libopenblas0 (any of its pthread, openmp and serial builds) provides this
 * soname; it is the library `-lopenblas` used to resolve to. */
#define OPENBLAS_SONAME "libopenblas.so.0"

typedef void sgemm_fn(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                      const blasint, const blasint, const blasint, const float, const float *, const blasint,
                      const float *, const blasint, const float, float *, const blasint);
/* the header's own declaration, checked at compile time (no reference to the symbol) */
_Static_assert(__builtin_types_compatible_p(__typeof__(cblas_sgemm), sgemm_fn), "cblas_sgemm's type changed");

/* The one piece of process-wide state: what dlopen found, written once under
 * pthread_once and only read afterwards. A library is loaded once per process whatever
 * owns it, so a per-engine copy would hold the same pointer; keeping it here lets every
 * engine (and every thread) share one load without a lock. The library is never
 * closed: its threads live until the process ends. */
static struct {
    pthread_once_t once;
    sgemm_fn *sgemm;
    char why[256]; /* dlerror's text when sgemm is NULL */
} openblas = {PTHREAD_ONCE_INIT, NULL, ""};

static void openblas_open(void) {
    void *lib = dlopen(OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    void *sym = lib ? dlsym(lib, "cblas_sgemm") : NULL;
    if (!sym) {
        const char *e = dlerror();
        snprintf(openblas.why, sizeof openblas.why, "%s", e ? e : "cblas_sgemm not found");
        return;
    }
    /* POSIX allows converting dlsym's result to a function pointer; ISO C does not say,
     * so copy the bytes rather than cast */
    memcpy(&openblas.sgemm, &sym, sizeof openblas.sgemm);
}

static sgemm_fn *openblas_sgemm(void) {
    pthread_once(&openblas.once, openblas_open);
    return openblas.sgemm;
}

int nn_blas_load(avps_error *err) {
    if (openblas_sgemm())
        return 0;
    return avps_fail(err,
                     "native engine: cannot load OpenBLAS (%s); install Debian's libopenblas0 "
                     "(scripts/setup-deps), or run avps infer --plain-gemm (the plain C GEMM, about 20x slower)",
                     openblas.why);
}

#define BLOCK_K 128
#define BLOCK_N 512

/* C[i][j] = sum_p A[i][p] * B[p][j]: rows of B streamed in blocks that stay in cache. */
static void gemm_plain_nn(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    for (int i = 0; i < m; i++)
        memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)n);
    for (int j0 = 0; j0 < n; j0 += BLOCK_N) {
        int jn = n - j0 < BLOCK_N ? n - j0 : BLOCK_N;
        for (int p0 = 0; p0 < k; p0 += BLOCK_K) {
            int pk = k - p0 < BLOCK_K ? k - p0 : BLOCK_K;
            for (int i = 0; i < m; i++) {
                float *crow = c + (size_t)i * ldc + j0;
                const float *arow = a + (size_t)i * lda + p0;
                for (int p = 0; p < pk; p++) {
                    float av = arow[p];
                    const float *brow = b + (size_t)(p0 + p) * ldb + j0;
                    for (int j = 0; j < jn; j++)
                        crow[j] += av * brow[j];
                }
            }
        }
    }
}

/* C[i][j] = sum_p A[i][p] * B[j][p]: dot products of rows. */
static void gemm_plain_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const float *x = a + (size_t)i * lda, *y = b + (size_t)j * ldb;
            float s[8] = {0};
            int p = 0;
            for (; p + 8 <= k; p += 8)
                for (int q = 0; q < 8; q++)
                    s[q] += x[p + q] * y[p + q];
            float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            for (; p < k; p++)
                t += x[p] * y[p];
            c[(size_t)i * ldc + j] = t;
        }
}

void nn_gemm(int use_blas, int m, int n, int k, const float *a, int lda, const float *b, int ldb, int b_trans,
             float *c, int ldc) {
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        for (int i = 0; i < m; i++)
            memset(c + (size_t)i * ldc, 0, sizeof(float) * (size_t)n);
        return;
    }
    if (use_blas) {
        sgemm_fn *sgemm = openblas_sgemm();
        if (!sgemm) { /* a caller that skipped nn_blas_load: a bug, not bad input */
            fprintf(stderr, "avps: nn_gemm with BLAS before nn_blas_load succeeded\n");
            abort();
        }
        sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
              0.0f, c, ldc);
    } else if (b_trans)
        gemm_plain_nt(m, n, k, a, lda, b, ldb, c, ldc);
    else
        gemm_plain_nn(m, n, k, a, lda, b, ldb, c, ldc);
}
