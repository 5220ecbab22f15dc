/* gemm.c: the matrix product under convolutions and fully connected layers, either
 * OpenBLAS's sgemm or a plain C one (cache-blocked; kept to measure what OpenBLAS earns,
 * docs/performance.md). */
#include "../nn.h"

#include <cblas.h>
#include <string.h>

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
    if (use_blas)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
                    0.0f, c, ldc);
    else if (b_trans)
        gemm_plain_nt(m, n, k, a, lda, b, ldb, c, ldc);
    else
        gemm_plain_nn(m, n, k, a, lda, b, ldb, c, ldc);
}
