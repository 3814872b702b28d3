/* Exact fp32 kernels for x86 CPUs with AVX2 and FMA: the linear layers and the attention of decoding rows.
 *
 * Linear: y = x W^T (+ bias) (+ residual).
 * Every output element is one chain of fused multiply-adds over the input features in ascending
 * order, starting from zero; the bias and then the residual are added after the chain. Nothing else
 * enters its rounding: not the number of rows, not the tile a row falls in, not the thread that
 * computes it. So a row's bits do not depend on what shares its batch (the engine's contract), nor on
 * the thread count, nor on the CPU model, as long as it runs these instructions (FMA rounds once, by
 * IEEE 754). Built by hessgpt/exact_kernels.py with -ffp-contract=off so the compiler adds no contraction.
 *
 * The weight is packed once into panels of NR outputs: panel p holds W[p*NR:(p+1)*NR, :] transposed,
 * (K, NR) row-major, zero rows past N. A tile of MR rows x NR outputs keeps its 2*MR accumulators in
 * registers and streams the panel once (at one row, a pure weight read; at 16 rows the panel, 36-100 KB,
 * stays in L2 while the row groups pass over it). Threads split the panels.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#define NR 16       /* outputs per panel: two 8-float AVX registers */
#define MR_MAX 6    /* rows per tile: 12 accumulators + 2 weight vectors + 1 broadcast = 15 registers */
#define M_BLOCK 96  /* rows per pass over the panels, so a pass's inputs stay in L2 */

#define ZERO(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define STEP(i)                                              \
    a = _mm256_broadcast_ss(x + (size_t)(i) * ldx + k);      \
    c##i##0 = _mm256_fmadd_ps(a, w0, c##i##0);               \
    c##i##1 = _mm256_fmadd_ps(a, w1, c##i##1);
#define STORE(i)                                 \
    _mm256_storeu_ps(acc + (i) * NR, c##i##0);   \
    _mm256_storeu_ps(acc + (i) * NR + 8, c##i##1);
#define ROWS1(F) F(0)
#define ROWS2(F) ROWS1(F) F(1)
#define ROWS3(F) ROWS2(F) F(2)
#define ROWS4(F) ROWS3(F) F(3)
#define ROWS5(F) ROWS4(F) F(4)
#define ROWS6(F) ROWS5(F) F(5)

/* acc[i*NR + j] = sum over k of x[i*ldx + k] * panel[k*NR + j], for MR rows. */
#define TILE(MR)                                                                              \
    static void tile##MR(const float *x, long ldx, const float *panel, long K, float *acc) { \
        ROWS##MR(ZERO)                                                                        \
        for (long k = 0; k < K; k++) {                                                        \
            __m256 w0 = _mm256_loadu_ps(panel + k * NR), w1 = _mm256_loadu_ps(panel + k * NR + 8), a; \
            ROWS##MR(STEP)                                                                    \
        }                                                                                     \
        ROWS##MR(STORE)                                                                       \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)

typedef void (*tile_fn)(const float *, long, const float *, long, float *);
static const tile_fn TILES[MR_MAX + 1] = {0, tile1, tile2, tile3, tile4, tile5, tile6};

/* Bumped whenever the arithmetic or the calling convention changes; the loader checks it. */
int exact_kernels_version(void) { return 3; }

int fma_linear_panel_width(void) { return NR; }

/* y (M, N) = x (M, K) W^T [+ bias (N)] [+ residual (M, N)]; packed: (ceil(N / NR), K, NR). */
void fma_linear(const float *x, long M, long K, const float *packed, long N, const float *bias,
                const float *residual, float *y, int threads) {
    long panels = (N + NR - 1) / NR;
    for (long m_start = 0; m_start < M; m_start += M_BLOCK) {
        long m_end = m_start + M_BLOCK < M ? m_start + M_BLOCK : M;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (long p = 0; p < panels; p++) {
            float acc[MR_MAX * NR];
            const float *panel = packed + (size_t)p * K * NR;
            long n0 = p * NR, width = N - n0 < NR ? N - n0 : NR;
            for (long m0 = m_start; m0 < m_end; m0 += MR_MAX) {
                long rows = m_end - m0 < MR_MAX ? m_end - m0 : MR_MAX;
                TILES[rows](x + (size_t)m0 * K, K, panel, K, acc);
                for (long i = 0; i < rows; i++) {
                    float *out = y + (size_t)(m0 + i) * N + n0;
                    const float *res = residual ? residual + (size_t)(m0 + i) * N + n0 : 0;
                    for (long j = 0; j < width; j++) {
                        float v = acc[i * NR + j];
                        if (bias) v = v + bias[n0 + j];
                        if (res) v = res[j] + v;
                        out[j] = v;
                    }
                }
            }
        }
    }
}

/* Sum of the 8 lanes in a fixed order: (0+4, 1+5, 2+6, 3+7), then pairs, then the last two. */
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static inline float dot(const float *a, const float *b, long n) {
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
    for (long d = 8; d < n; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc);
    return hsum8(acc);
}

/* Attention of one new token per row over the first length[r] keys of its cache slot.
 *
 * q: (rows, heads, head_dim) with rows q_stride floats apart (a view into the qkv output); the caches:
 * (slots, kv_heads, capacity, head_dim); out: (rows, heads, head_dim); scratch: rows * heads * capacity
 * floats. Per (row, head): scores in key order (each a fixed-order dot product), their max, exp(score -
 * max) and the running total in key order, the values' weighted sum in key order, then one division.
 * A row reads only its own keys, so its bits do not depend on the other rows. head_dim % 8 == 0. */
void decode_attention(const float *q, long q_stride, long rows, long heads, long kv_heads, long head_dim,
                      const float *k_cache, const float *v_cache, long capacity, const long *slot,
                      const long *length, float *out, float *scratch, int threads) {
    long group = heads / kv_heads;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long task = 0; task < rows * heads; task++) {
        long r = task / heads, h = task % heads, kv = h / group, n = length[r];
        const float *qh = q + r * q_stride + h * head_dim;
        const float *keys = k_cache + ((size_t)slot[r] * kv_heads + kv) * capacity * head_dim;
        const float *values = v_cache + ((size_t)slot[r] * kv_heads + kv) * capacity * head_dim;
        float *p = scratch + (size_t)task * capacity, *o = out + (size_t)task * head_dim;
        float top = -__builtin_inff(), total = 0.0f;
        for (long j = 0; j < n; j++) {
            p[j] = dot(qh, keys + (size_t)j * head_dim, head_dim);
            top = p[j] > top ? p[j] : top;
        }
        for (long j = 0; j < n; j++) {
            p[j] = expf(p[j] - top);
            total += p[j];
        }
        for (long d = 0; d < head_dim; d += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (long j = 0; j < n; j++)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(values + (size_t)j * head_dim + d), acc);
            _mm256_storeu_ps(o + d, _mm256_div_ps(acc, _mm256_set1_ps(total)));
        }
    }
}

/* RMSNorm of each row: y = x * (1 / sqrt(mean(x^2) + eps)) * w; the sum of squares in a fixed order
 * (8 lanes over the row, then hsum8). cols % 8 == 0. */
void rms_norm(const float *x, long rows, long cols, const float *w, float eps, float *y) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        __m256 acc = _mm256_setzero_ps();
        for (long c = 0; c < cols; c += 8) {
            __m256 v = _mm256_loadu_ps(xr + c);
            acc = _mm256_fmadd_ps(v, v, acc);
        }
        __m256 scale = _mm256_set1_ps(1.0f / sqrtf(hsum8(acc) / (float)cols + eps));
        for (long c = 0; c < cols; c += 8)
            _mm256_storeu_ps(yr + c, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + c), scale), _mm256_loadu_ps(w + c)));
    }
}
