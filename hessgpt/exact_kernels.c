/* Exact fp32 kernels for x86 CPUs with AVX2 and FMA: the linear layers, attention, norms and activations,
 * and the decoder layers built from them in one call (decoder_layers, at the end).
 *
 * Linear: y = x W^T (+ bias) (+ residual).
 * Every output element is one chain of fused multiply-adds over the input features in ascending
 * order, starting from zero; the bias and then the residual are added after the chain. Nothing else
 * enters its rounding: not the number of rows, not the tile a row falls in, not the thread that
 * computes it. So a row's bits do not depend on what shares its batch (the engine's contract), nor on
 * the thread count, nor on the CPU model, as long as it runs these instructions (FMA rounds once, by
 * IEEE 754). Built by hessgpt/exact_kernels.py with -ffp-contract=off so the compiler adds no contraction.
 *
 * The weight is packed once into panels of nr outputs: panel p holds W[p*nr:(p+1)*nr, :] transposed,
 * (K, nr) row-major, zero rows past N; nr is 16 (two AVX2 registers) or, on CPUs with AVX-512, 32 (two
 * AVX-512 registers). A tile of MR rows x nr outputs keeps its 2*MR accumulators in registers and
 * streams the panel once (at one row, a pure weight read; at 16 rows the panel, 36-200 KB, stays in L2
 * while the row groups pass over it, and they prefetch the next one together). Threads share the
 * panels, a chunk at a time.
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- Work sharing without barriers ----------------------------------------------------------------
 * A call's work is cut into chunks; the calling thread and the pool's workers claim chunks one at a
 * time and the call returns when every chunk is done, whoever did it. A worker that the OS has not
 * scheduled simply claims nothing. A barrier-based runtime (OpenMP) instead waits for every thread of
 * the team at the end of each parallel region: on a 2-vCPU machine where another process holds one
 * CPU, each of the ~150 regions of a decode step then waits a scheduler time slice (a step went from
 * 60 ms to over 1 s). Which thread computes a chunk never changes its bits. */
#define MAX_WORKERS 63
#define SPIN_ROUNDS 20000 /* ~100 us of polling before a worker sleeps */

typedef void (*chunk_fn)(const void *job, long chunk);

static struct {
    _Atomic uint64_t state; /* generation << 32 | next unclaimed chunk */
    _Atomic long done;      /* chunks finished in this generation */
    const void *job;
    chunk_fn run;
    long chunks;
    _Atomic int sleeping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_mutex_t caller; /* callers from several threads take turns */
    int workers;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .caller = PTHREAD_MUTEX_INITIALIZER};

/* A forked child has no workers: it starts a fresh pool. */
static void pool_after_fork(void) {
    pool.workers = 0;
    atomic_store(&pool.sleeping, 0);
    pthread_mutex_init(&pool.lock, 0);
    pthread_cond_init(&pool.wake, 0);
    pthread_mutex_init(&pool.caller, 0);
}

/* Claim and run chunks of generation gen until none is left. Returns after the last claim fails. */
static void work(uint64_t gen) {
    for (;;) {
        uint64_t seen = atomic_load(&pool.state);
        if (seen >> 32 != gen || (long)(seen & 0xffffffffu) >= pool.chunks) return;
        const void *job = pool.job;
        chunk_fn run = pool.run;
        /* The fields read above belong to gen if the claim below succeeds: the state has then not
           moved, and a new run moves it (to a generation with nothing to claim) before its fields. */
        if (!atomic_compare_exchange_strong(&pool.state, &seen, seen + 1)) continue;
        run(job, (long)(seen & 0xffffffffu));
        atomic_fetch_add(&pool.done, 1);
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    uint64_t last = atomic_load(&pool.state) >> 32;
    for (;;) {
        uint64_t gen = atomic_load(&pool.state) >> 32;
        for (int spin = 0; gen == last && spin < SPIN_ROUNDS; spin++) {
            _mm_pause();
            gen = atomic_load(&pool.state) >> 32;
        }
        if (gen == last) {
            pthread_mutex_lock(&pool.lock);
            atomic_store(&pool.sleeping, 1);
            while ((gen = atomic_load(&pool.state) >> 32) == last) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_store(&pool.sleeping, 0);
            pthread_mutex_unlock(&pool.lock);
        }
        last = gen;
        work(gen);
    }
    return 0;
}

/* Run chunks 0..chunks-1 of job with up to threads threads (the caller included). */
static void run_chunks(chunk_fn run, const void *job, long chunks, int threads) {
    if (threads < 1) threads = 1;
    if (threads - 1 > MAX_WORKERS) threads = MAX_WORKERS + 1;
    if (threads == 1 || chunks == 1) {
        for (long c = 0; c < chunks; c++) run(job, c);
        return;
    }
    pthread_mutex_lock(&pool.caller);
    static int fork_handler;
    if (!fork_handler) fork_handler = pthread_atfork(0, 0, pool_after_fork) == 0;
    while (pool.workers < threads - 1) {
        pthread_t t;
        if (pthread_create(&t, 0, worker_main, 0) != 0) break;
        pthread_detach(t);
        pool.workers++;
    }
    /* First a generation with nothing to claim, so that a worker still looking at the last one cannot
       claim a chunk while the fields change; then the real one, which publishes them. */
    uint64_t gen = (atomic_load(&pool.state) >> 32) + 1;
    atomic_store(&pool.state, gen << 32 | 0xffffffffu);
    pool.job = job;
    pool.run = run;
    pool.chunks = chunks;
    atomic_store(&pool.done, 0);
    gen++;
    atomic_store(&pool.state, gen << 32);
    if (atomic_load(&pool.sleeping)) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    work(gen);
    while (atomic_load(&pool.done) < chunks) _mm_pause();
    pthread_mutex_unlock(&pool.caller);
}

#define NR 16       /* outputs per AVX2 panel: two 8-float registers */
#define MR_MAX 6    /* rows per AVX2 tile: 12 accumulators + 2 weight vectors + 1 broadcast = 15 registers */
#define NR_WIDE 32  /* outputs per AVX-512 panel: two 16-float registers */
#define MR_WIDE 12  /* rows per AVX-512 tile: 24 accumulators + 2 weight vectors + 1 broadcast of 32 */
#define M_BLOCK 96  /* rows per pass over the panels, so a pass's inputs stay in L2 */
#define PIECE_FLOATS 4096 /* a piece of a panel: 16 KB, which stays in L1 while many row groups use it */

/* Row i's input at the current k: rows 3j, 3j+1, 3j+2 are x_j, x_j + ldx and x_j + 2 ldx (one base
 * register and the row stride in bytes as index, scale 1 or 2), four bases moving along k together.
 * Addressing each row from x itself needs a register per row: the 10-12-row tiles then spilled row
 * pointers and ran 15-25% slower (in L1, one thread). */
#define ROW_BASE(i) ((i) < 3 ? x0 : (i) < 6 ? x3 : (i) < 9 ? x6 : x9)
#define ROW_INPUT(i) (*(const float *)((const char *)ROW_BASE(i) + ((i) % 3) * row_bytes))
#define ROW_BASES                                                                                \
    long row_bytes = ldx * (long)sizeof(float);                                                  \
    const float *x0 = x, *x3 = x + 3 * ldx, *x6 = x + 6 * ldx, *x9 = x + 9 * ldx;
#define NEXT_K x0++, x3++, x6++, x9++
#define ZERO(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define LOAD(i)                                    \
    if (resume) {                                  \
        c##i##0 = _mm256_loadu_ps(acc + (i) * NR);     \
        c##i##1 = _mm256_loadu_ps(acc + (i) * NR + 8); \
    }
#define STEP(i)                                   \
    a = _mm256_broadcast_ss(&ROW_INPUT(i));       \
    c##i##0 = _mm256_fmadd_ps(a, w0, c##i##0);    \
    c##i##1 = _mm256_fmadd_ps(a, w1, c##i##1);
#define STORE(i)                                 \
    _mm256_storeu_ps(acc + (i) * NR, c##i##0);   \
    _mm256_storeu_ps(acc + (i) * NR + 8, c##i##1);
#define ZERO_WIDE(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define LOAD_WIDE(i)                                       \
    if (resume) {                                          \
        c##i##0 = _mm512_loadu_ps(acc + (i) * NR_WIDE);      \
        c##i##1 = _mm512_loadu_ps(acc + (i) * NR_WIDE + 16); \
    }
#define STEP_WIDE(i)                              \
    a = _mm512_set1_ps(ROW_INPUT(i));             \
    c##i##0 = _mm512_fmadd_ps(a, w0, c##i##0);    \
    c##i##1 = _mm512_fmadd_ps(a, w1, c##i##1);
#define STORE_WIDE(i)                                  \
    _mm512_storeu_ps(acc + (i) * NR_WIDE, c##i##0);    \
    _mm512_storeu_ps(acc + (i) * NR_WIDE + 16, c##i##1);
#define ROWS1(F) F(0)
#define ROWS2(F) ROWS1(F) F(1)
#define ROWS3(F) ROWS2(F) F(2)
#define ROWS4(F) ROWS3(F) F(3)
#define ROWS5(F) ROWS4(F) F(4)
#define ROWS6(F) ROWS5(F) F(5)
#define ROWS7(F) ROWS6(F) F(6)
#define ROWS8(F) ROWS7(F) F(7)
#define ROWS9(F) ROWS8(F) F(8)
#define ROWS10(F) ROWS9(F) F(9)
#define ROWS11(F) ROWS10(F) F(10)
#define ROWS12(F) ROWS11(F) F(11)

/* acc[i*nr + j] (+)= sum over k < K of x[i*ldx + k] * panel[k*nr + j], for MR rows and the panel's nr
 * outputs: from zero, or with `resume` continuing the FMA chains stored in acc (a float stored and
 * loaded back is unchanged, so a chain cut into pieces gives the bits of one chain). With pf_step > 0
 * each step also prefetches the byte pf + k * pf_step into L2: the tile's share of the next piece, so
 * that memory streams it while this piece's row groups compute from cache.
 * The AVX2 tile (16 outputs) and the AVX-512 tile (32 outputs) run the same chain per output: FMA is
 * elementwise and rounds once, so the vector width changes no bit, only the outputs per instruction.
 * The two tile macros differ in every line's types and intrinsics, so they stay two. */
#define TILE(MR)                                                                              \
    static void tile##MR(const float *x, long ldx, const float *panel, long K, float *acc,  \
                         int resume, const char *pf, long pf_step) {                          \
        ROWS##MR(ZERO)                                                                        \
        ROWS##MR(LOAD)                                                                        \
        ROW_BASES                                                                             \
        for (long k = 0; k < K; k++, NEXT_K) {                                                \
            if (pf_step) _mm_prefetch(pf + k * pf_step, _MM_HINT_T1);                        \
            __m256 w0 = _mm256_loadu_ps(panel + k * NR), w1 = _mm256_loadu_ps(panel + k * NR + 8), a; \
            ROWS##MR(STEP)                                                                    \
        }                                                                                     \
        ROWS##MR(STORE)                                                                       \
    }
#define TILE_WIDE_PREFETCHING(MR, NAME, HINT)                                                         \
    __attribute__((target("avx512f"))) static void NAME(                                            \
        const float *x, long ldx, const float *panel, long K, float *acc, int resume, const char *pf, \
        long pf_step) {                                                                              \
        ROWS##MR(ZERO_WIDE)                                                                          \
        ROWS##MR(LOAD_WIDE)                                                                          \
        ROW_BASES                                                                                    \
        for (long k = 0; k < K; k++, NEXT_K) {                                                       \
            if (pf_step) _mm_prefetch(pf + k * pf_step, HINT);                                      \
            __m512 w0 = _mm512_loadu_ps(panel + k * NR_WIDE), w1 = _mm512_loadu_ps(panel + k * NR_WIDE + 16), a; \
            ROWS##MR(STEP_WIDE)                                                                      \
        }                                                                                            \
        ROWS##MR(STORE_WIDE)                                                                         \
    }
/* Two versions of each AVX-512 tile: the next piece prefetched into L2, or into L1 (see linear_chunk). */
#define TILE_WIDE(MR) TILE_WIDE_PREFETCHING(MR, wide##MR, _MM_HINT_T1) TILE_WIDE_PREFETCHING(MR, wide##MR##_l1, _MM_HINT_T0)
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
TILE_WIDE(1) TILE_WIDE(2) TILE_WIDE(3) TILE_WIDE(4) TILE_WIDE(5) TILE_WIDE(6)
TILE_WIDE(7) TILE_WIDE(8) TILE_WIDE(9) TILE_WIDE(10) TILE_WIDE(11) TILE_WIDE(12)

/* One row, two adjacent panels at once (acc: 2 * NR_WIDE): four independent FMA chains over two
 * streams. With one panel, its two chains wait on the FMA latency: 11% slower over SmolLM2's linears. */
__attribute__((target("avx512f"))) static void wide_row_pair(const float *x, const float *panel, long K,
                                                              float *acc) {
    const float *next = panel + (size_t)K * NR_WIDE;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (long k = 0; k < K; k++) {
        __m512 s = _mm512_set1_ps(x[k]);
        a0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(panel + k * NR_WIDE), a0);
        a1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(panel + k * NR_WIDE + 16), a1);
        b0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(next + k * NR_WIDE), b0);
        b1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(next + k * NR_WIDE + 16), b1);
    }
    _mm512_storeu_ps(acc, a0), _mm512_storeu_ps(acc + 16, a1);
    _mm512_storeu_ps(acc + NR_WIDE, b0), _mm512_storeu_ps(acc + NR_WIDE + 16, b1);
}

typedef void (*tile_fn)(const float *, long, const float *, long, float *, int, const char *, long);
static const tile_fn TILES[MR_MAX + 1] = {0, tile1, tile2, tile3, tile4, tile5, tile6};
static const tile_fn TILES_WIDE[MR_WIDE + 1] = {0,      wide1, wide2, wide3, wide4,  wide5, wide6,
                                                wide7, wide8, wide9, wide10, wide11, wide12};
static const tile_fn TILES_WIDE_L1[MR_WIDE + 1] = {0,         wide1_l1, wide2_l1,  wide3_l1,  wide4_l1,
                                                   wide5_l1,  wide6_l1, wide7_l1,  wide8_l1,  wide9_l1,
                                                   wide10_l1, wide11_l1, wide12_l1};

/* Bumped whenever the arithmetic or the calling convention changes; the loader checks it. */
int exact_kernels_version(void) { return 15; }

/* The panel widths this CPU can run: 16 (AVX2) always, 32 where it has AVX-512. */
int fma_linear_widest_panel(void) { return __builtin_cpu_supports("avx512f") ? NR_WIDE : NR; }

/* ---- Weights kept as codes -------------------------------------------------------------------------
 * A model imported from a quantized file (a GGUF's Q4_0, Q4_1 or Q8_0) has fp32 weights that are all
 * d*q + m within each block of 32 inputs of an output: q an integer of 4 bits (0..15) or 8 bits
 * (-128..127), d and m fp16 numbers. Kept as such codes, a weight takes 5 or 9 bits instead of 32, and
 * the kernels rebuild its fp32 bits as they stream it: d*q is exact in fp32 (an 11-bit d times an 8-bit q),
 * so one FMA q*d + m rounds once, as the importer's (d * q) + m did. The chains then multiply the very
 * same weights (the same bits as from fp32 panels) while the weight stream shrinks to a fifth at 4 bits.
 * pack_codes finds d, m and q for every block, and refuses a weight that some block does not rebuild
 * exactly (see rebuilds for zeros): that weight stays in fp32 panels (so do Q5 weights, which need 5 bits, and k-quants, whose
 * scales are not fp16).
 *
 * Panel p of a coded weight (nr outputs): K / 32 blocks, each: nr fp16 d, nr fp16 m, then 32 rows of
 * codes, one per input. 4 bits: nr / 2 bytes a row, byte j holding output j in its low nibble and output
 * j + nr / 2 in its high one. 8 bits: nr signed bytes a row. */
#define CODE_BLOCK 32
#define CODE_PREFETCH_BLOCKS 8

static long code_row_bytes(long nr, int bits) { return nr * bits / 8; }

long code_block_bytes(long nr, int bits) { return 4 * nr + CODE_BLOCK * code_row_bytes(nr, bits); }

static int same_bits(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4), memcpy(&y, &b, 4);
    return x == y;
}

static float hmin8(__m256 v) {
    __m128 h = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_min_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_min_ss(h, _mm_movehdup_ps(h)));
}

static float hmax8(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* Whether every weight of a block (v: 32 floats) is q * d + m, rounded once, for an integer q in
 * [low, high]; q filled in. Equal as numbers: a weight -0 rebuilds as +0 (Q4_0's d * (8 - 8) with d < 0),
 * which no chain can tell apart: a chain starts at +0 and never holds -0 (adding zeros of either sign to
 * +0 gives +0), so adding x * -0 or x * +0 to it changes nothing. */
static int rebuilds(const __m256 v[4], float m, float d, float low, float high, int32_t *q) {
    __m256 mv = _mm256_set1_ps(m), dv = _mm256_set1_ps(d), lowv = _mm256_set1_ps(low), highv = _mm256_set1_ps(high);
    for (int i = 0; i < 4; i++) {
        __m256 r = _mm256_setzero_ps();
        if (d != 0)
            r = _mm256_round_ps(_mm256_div_ps(_mm256_sub_ps(v[i], mv), dv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm256_min_ps(_mm256_max_ps(r, lowv), highv);
        if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_fmadd_ps(r, dv, mv), v[i], _CMP_EQ_OQ)) != 0xff) return 0;
        _mm256_storeu_si256((__m256i *)(q + 8 * i), _mm256_cvtps_epi32(r));
    }
    return 1;
}

/* d and m (fp16 bits) and q of one block of weights, when some fp16 d and m rebuild every weight bit for
 * bit. Two quantizer families are recognised:
 * - Q4_1 (4 bits) and Q8_0 (8 bits, m = 0): m is the block's smallest weight (or zero) and d the range
 *   over the levels rounded to fp16; the rebuilt range can round it one fp16 step either way, so three
 *   d are tried;
 * - Q4_0 (4 bits): d * (q - 8) with d of either sign, the weight of largest magnitude at q = 0: m is that
 *   weight and d = -m / 8 (exact). */
static int encode_block(const float *w, int bits, uint16_t *d_out, uint16_t *m_out, int32_t *q) {
    const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
    __m256 v[4], lo, hi, amax = _mm256_setzero_ps();
    int finite = 1;
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(w + 8 * i);
        __m256 a = _mm256_andnot_ps(sign, v[i]);
        finite &= _mm256_movemask_ps(_mm256_cmp_ps(a, inf, _CMP_LT_OQ)) == 0xff; /* no NaN, no infinity */
        lo = i ? _mm256_min_ps(lo, v[i]) : v[i], hi = i ? _mm256_max_ps(hi, v[i]) : v[i];
        amax = _mm256_max_ps(amax, a);
    }
    if (!finite) return 0;
    float low = bits == 4 ? 0 : -128, high = bits == 4 ? 15 : 127, m = bits == 4 ? hmin8(lo) : 0.0f;
    double span = bits == 4 ? ((double)hmax8(hi) - m) / high : (double)hmax8(amax) / high;
    uint16_t mh = _cvtss_sh(m, _MM_FROUND_TO_NEAREST_INT), dh = _cvtss_sh((float)span, _MM_FROUND_TO_NEAREST_INT);
    if (same_bits(_cvtsh_ss(mh), m) && dh < 0x7c00) /* m is an fp16 and the range does not overflow fp16 */
        for (int t = 0; t < 3; t++) {
            uint16_t cand = t == 0 ? dh : t == 1 ? dh + 1 : dh - 1;
            if ((t == 2 && dh == 0) || cand >= 0x7c00) continue;
            if (rebuilds(v, m, _cvtsh_ss(cand), low, high, q)) {
                *d_out = cand, *m_out = mh;
                return 1;
            }
        }
    if (bits != 4) return 0;
    float big = w[0];
    for (int i = 1; i < CODE_BLOCK; i++)
        if (fabsf(w[i]) > fabsf(big)) big = w[i];
    float d = -big / 8;
    uint16_t d0 = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT), m0 = _cvtss_sh(big, _MM_FROUND_TO_NEAREST_INT);
    if (!same_bits(_cvtsh_ss(d0), d) || !same_bits(_cvtsh_ss(m0), big) || !rebuilds(v, big, d, low, high, q)) return 0;
    *d_out = d0, *m_out = m0;
    return 1;
}

typedef struct {
    const float *w;
    uint8_t *out;
    long N, K, nr, panels_per_chunk, panels;
    int bits;
    atomic_int failed;
} codes_job;

static void codes_chunk(const void *arg, long chunk) {
    codes_job *j = (codes_job *)arg;
    long K = j->K, nr = j->nr, blocks = K / CODE_BLOCK, row_bytes = code_row_bytes(nr, j->bits), half = nr / 2;
    long p_end = (chunk + 1) * j->panels_per_chunk < j->panels ? (chunk + 1) * j->panels_per_chunk : j->panels;
    int32_t q[CODE_BLOCK];
    for (long p = chunk * j->panels_per_chunk; p < p_end; p++)
        for (long b = 0; b < blocks; b++) {
            if (atomic_load_explicit(&j->failed, memory_order_relaxed)) return;
            uint8_t *block = j->out + (size_t)(p * blocks + b) * code_block_bytes(nr, j->bits), *codes = block + 4 * nr;
            uint16_t d[NR_WIDE], m[NR_WIDE];
            memset(codes, 0, CODE_BLOCK * row_bytes);
            for (long jj = 0; jj < nr; jj++) {
                long n = p * nr + jj;
                d[jj] = m[jj] = 0;
                if (n >= j->N) continue;
                if (!encode_block(j->w + (size_t)n * K + b * CODE_BLOCK, j->bits, d + jj, m + jj, q)) {
                    atomic_store(&j->failed, 1);
                    return;
                }
                for (int k = 0; k < CODE_BLOCK; k++) {
                    uint8_t *row = codes + k * row_bytes;
                    if (j->bits == 8)
                        row[jj] = (uint8_t)(int8_t)q[k];
                    else
                        row[jj % half] |= (uint8_t)(q[k] << (jj < half ? 0 : 4));
                }
            }
            memcpy(block, d, nr * 2), memcpy(block + 2 * nr, m, nr * 2);
        }
}

/* The codes of w (N, K) row-major, K % 32 == 0, in panels of nr outputs (zero past N): 1 when every
 * block rebuilds exactly, else 0 (out is then partly written). Panels shared among the threads. */
int pack_codes(const float *w, long N, long K, long nr, int bits, uint8_t *out, int threads) {
    long panels = (N + nr - 1) / nr, chunks = panels < 64 ? panels : 64;
    codes_job job = {w, out, N, K, nr, (panels + chunks - 1) / chunks, panels, bits, 0};
    run_chunks(codes_chunk, &job, (panels + job.panels_per_chunk - 1) / job.panels_per_chunk, threads);
    return !atomic_load(&job.failed);
}

/* The fp32 weights of one row of codes into w0 and w1 (outputs 0-15 and 16-31 of a 32-output panel, or
 * 0-7 and 8-15 of a 16-output one), given d and m of their block (HALVES: one vector of fp16s). They use
 * bits (a constant where inlined) and fifteen (a vector of 15) from the calling function. The AVX-512
 * and AVX2 forms differ in every line's types and intrinsics, so they stay two. */
#define HALVES(p, i) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p) + (i)))
#define DECODE(c, dlo, dhi, mlo, mhi, w0, w1)                                                                   \
    if (bits == 4) {                                                                                           \
        __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c)));                               \
        w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, fifteen)), dlo, mlo);                      \
        w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), dhi, mhi);                          \
    } else {                                                                                                   \
        __m512i v0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c)));                              \
        __m512i v1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(c) + 1));                          \
        w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v0), dlo, mlo);                                                \
        w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v1), dhi, mhi);                                                \
    }

#define HALVES_NARROW(p, i) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p) + (i)))
#define DECODE_NARROW(c, dlo, dhi, mlo, mhi, w0, w1)                                                            \
    if (bits == 4) {                                                                                           \
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c)));                               \
        w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, fifteen)), dlo, mlo);                      \
        w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), dhi, mhi);                          \
    } else {                                                                                                   \
        __m256i v0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(c)));                              \
        __m256i v1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((c) + 8)));                        \
        w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v0), dlo, mlo);                                                \
        w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v1), dhi, mhi);                                                \
    }

/* Rows k0 .. k0 + kc - 1 (whole blocks) of a coded 16-output panel as fp32 (kc, 16): what a fp32 panel
 * holds. */
static void unpack_rows(const uint8_t *panel, int bits, long k0, long kc, float *out) {
    long row_bytes = code_row_bytes(NR, bits);
    const __m256i fifteen = _mm256_set1_epi32(15);
    for (long b = k0 / CODE_BLOCK; b < (k0 + kc) / CODE_BLOCK; b++) {
        const uint8_t *block = panel + (size_t)b * code_block_bytes(NR, bits), *codes = block + 4 * NR;
        __m256 d0 = HALVES_NARROW(block, 0), d1 = HALVES_NARROW(block, 1);
        __m256 m0 = HALVES_NARROW(block, 2), m1 = HALVES_NARROW(block, 3);
        float *o = out + (b * CODE_BLOCK - k0) * NR;
        for (int k = 0; k < CODE_BLOCK; k++) {
            __m256 w0, w1;
            DECODE_NARROW(codes + k * row_bytes, d0, d1, m0, m1, w0, w1)
            _mm256_storeu_ps(o + k * NR, w0), _mm256_storeu_ps(o + k * NR + 8, w1);
        }
    }
}

/* unpack_rows for panels of 32 outputs, on AVX-512. */
__attribute__((target("avx512f"))) static void unpack_rows_wide(const uint8_t *panel, int bits, long k0, long kc,
                                                                float *out) {
    long row_bytes = code_row_bytes(NR_WIDE, bits);
    const __m512i fifteen = _mm512_set1_epi32(15);
    for (long b = k0 / CODE_BLOCK; b < (k0 + kc) / CODE_BLOCK; b++) {
        const uint8_t *block = panel + (size_t)b * code_block_bytes(NR_WIDE, bits), *codes = block + 4 * NR_WIDE;
        __m512 d0 = HALVES(block, 0), d1 = HALVES(block, 1), m0 = HALVES(block, 2), m1 = HALVES(block, 3);
        float *o = out + (b * CODE_BLOCK - k0) * NR_WIDE;
        for (int k = 0; k < CODE_BLOCK; k++) {
            __m512 w0, w1;
            DECODE(codes + k * row_bytes, d0, d1, m0, m1, w0, w1)
            _mm512_storeu_ps(o + k * NR_WIDE, w0), _mm512_storeu_ps(o + k * NR_WIDE + 16, w1);
        }
    }
}

/* A whole coded weight as fp32 panels (panels, K, nr): the loader compares it with the packed weight. */
void unpack_codes(const uint8_t *codes, long panels, long K, long nr, int bits, float *out) {
    size_t panel_bytes = (size_t)(K / CODE_BLOCK) * code_block_bytes(nr, bits);
    for (long p = 0; p < panels; p++) {
        if (nr == NR_WIDE)
            unpack_rows_wide(codes + p * panel_bytes, bits, 0, K, out + (size_t)p * K * nr);
        else
            unpack_rows(codes + p * panel_bytes, bits, 0, K, out + (size_t)p * K * nr);
    }
}

/* One row against one or two adjacent coded panels of 32 outputs (acc: 2 * NR_WIDE), each weight rebuilt
 * in registers: the chains of wide_row_pair with a fifth (4 bits) or 28% (8 bits) of its weight stream. */
__attribute__((target("avx512f"), always_inline)) static inline void coded_row(const float *x, const uint8_t *panel,
                                                                               long K, float *acc, const int bits,
                                                                               const int pair) {
    long block_bytes = code_block_bytes(NR_WIDE, bits), row_bytes = code_row_bytes(NR_WIDE, bits);
    const uint8_t *next = panel + (size_t)(K / CODE_BLOCK) * block_bytes;
    const __m512i fifteen = _mm512_set1_epi32(15);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (long b = 0; b < K / CODE_BLOCK; b++) {
        const uint8_t *A = panel + (size_t)b * block_bytes, *B = next + (size_t)b * block_bytes;
        /* Eight blocks ahead (5 KB a panel at 4 bits): 14-30% less time per one-row step than with the
           hardware's prefetch alone (SmolLM2, Intel Xeon; 4 and 16 ahead gained less). A prefetch past
           the panel's end is harmless: it never faults. */
        for (long off = 0; off < block_bytes; off += 64) {
            _mm_prefetch((const char *)A + CODE_PREFETCH_BLOCKS * block_bytes + off, _MM_HINT_T0);
            if (pair) _mm_prefetch((const char *)B + CODE_PREFETCH_BLOCKS * block_bytes + off, _MM_HINT_T0);
        }
        __m512 ad0 = HALVES(A, 0), ad1 = HALVES(A, 1), am0 = HALVES(A, 2), am1 = HALVES(A, 3);
        __m512 bd0 = ad0, bd1 = ad1, bm0 = am0, bm1 = am1;
        if (pair) bd0 = HALVES(B, 0), bd1 = HALVES(B, 1), bm0 = HALVES(B, 2), bm1 = HALVES(B, 3);
        const uint8_t *ca = A + 4 * NR_WIDE, *cb = B + 4 * NR_WIDE;
        const float *xb = x + b * CODE_BLOCK;
        for (int k = 0; k < CODE_BLOCK; k++) {
            __m512 s = _mm512_set1_ps(xb[k]), w0, w1;
            DECODE(ca + k * row_bytes, ad0, ad1, am0, am1, w0, w1)
            a0 = _mm512_fmadd_ps(s, w0, a0);
            a1 = _mm512_fmadd_ps(s, w1, a1);
            if (pair) {
                DECODE(cb + k * row_bytes, bd0, bd1, bm0, bm1, w0, w1)
                b0 = _mm512_fmadd_ps(s, w0, b0);
                b1 = _mm512_fmadd_ps(s, w1, b1);
            }
        }
    }
    _mm512_storeu_ps(acc, a0), _mm512_storeu_ps(acc + 16, a1);
    if (pair) _mm512_storeu_ps(acc + NR_WIDE, b0), _mm512_storeu_ps(acc + NR_WIDE + 16, b1);
}

/* The four instances, so that the bit width and the pairing are constants inside the loop. */
__attribute__((target("avx512f"))) static void coded_row4(const float *x, const uint8_t *panel, long K, float *acc,
                                                           int pair) {
    if (pair)
        coded_row(x, panel, K, acc, 4, 1);
    else
        coded_row(x, panel, K, acc, 4, 0);
}
__attribute__((target("avx512f"))) static void coded_row8(const float *x, const uint8_t *panel, long K, float *acc,
                                                           int pair) {
    if (pair)
        coded_row(x, panel, K, acc, 8, 1);
    else
        coded_row(x, panel, K, acc, 8, 0);
}

/* y (M, N) = x (M, K) W^T [+ bias (N)] [+ residual (M, N)]; packed: (ceil(N / nr), K, nr) floats, or
 * with bits 4 or 8 the same panels as codes. */
typedef struct {
    const float *x, *packed, *bias, *residual;
    const uint8_t *codes;
    float *y;
    long M, K, N, nr, panels, panels_per_chunk, big_chunks, tail_per_chunk, threads;
    int bits;
} linear_job;

/* The first panel of chunk c (c <= chunks): big_chunks of panels_per_chunk panels, then smaller chunks
 * of tail_per_chunk, so that the threads finish together even when the host delays one. With equal
 * chunks the caller's wait for the last one took 4% of a full bench's samples; the smaller tail took
 * 5% off SmolLM2's linears at 32 rows and 1.5% at 256 (Intel Xeon, in turns, median of 80). */
static inline long chunk_start(const linear_job *a, long c) {
    long p = c <= a->big_chunks ? c * a->panels_per_chunk
                                : a->big_chunks * a->panels_per_chunk + (c - a->big_chunks) * a->tail_per_chunk;
    return p < a->panels ? p : a->panels;
}

/* Rows m_start .. m_end - 1 of panel p's outputs from their chains in acc (row stride nr): the bias,
 * then the residual, added after the chain. */
static void store_panel(const linear_job *a, long m_start, long m_end, long p, const float *acc) {
    long N = a->N, nr = a->nr, n0 = p * nr, width = N - n0 < nr ? N - n0 : nr;
    for (long m = m_start; m < m_end; m++) {
        float *out = a->y + (size_t)m * N + n0;
        const float *res = a->residual ? a->residual + (size_t)m * N + n0 : 0;
        for (long j = 0; j < width; j++) {
            float v = acc[(m - m_start) * nr + j];
            if (a->bias) v = v + a->bias[n0 + j];
            if (res) v = res[j] + v;
            out[j] = v;
        }
    }
}

static void linear_chunk(const void *arg, long chunk) {
    const linear_job *a = arg;
    long K = a->K, nr = a->nr, p_start = chunk_start(a, chunk), p_end = chunk_start(a, chunk + 1);
    int wide = nr == NR_WIDE;
    long mr_max = wide ? MR_WIDE : MR_MAX;
    float acc[M_BLOCK * NR_WIDE];
    if (a->M == 1 && wide) { /* one row on AVX-512: panels in pairs */
        long p = p_start;
        for (; p + 1 < p_end; p += 2) {
            wide_row_pair(a->x, a->packed + (size_t)p * K * nr, K, acc);
            store_panel(a, 0, 1, p, acc);
            store_panel(a, 0, 1, p + 1, acc + NR_WIDE);
        }
        if (p < p_end) {
            wide1(a->x, K, a->packed + (size_t)p * K * nr, K, acc, 0, 0, 0);
            store_panel(a, 0, 1, p, acc);
        }
        return;
    }
    for (long m_start = 0; m_start < a->M; m_start += M_BLOCK) {
        long m_end = m_start + M_BLOCK < a->M ? m_start + M_BLOCK : a->M;
        /* Each row group prefetches an equal share of the next piece (the panels are read in memory
           order), so the memory stream runs at an even rate through all of them (when only the first
           group prefetched, the others computed with memory idle: 16 rows took the time of the weight
           stream plus the arithmetic). One group alone issues no prefetch: on AVX2 the hardware's
           sequential prefetch keeps up (AMD EPYC). On AVX-512 it does not (Intel Xeon: 8 rows took 1.4x
           the time of 16), so there 2-12 rows run as two groups, which prefetch. */
        long groups = (m_end - m_start + mr_max - 1) / mr_max;
        if (groups == 1 && wide && m_end - m_start > 1) groups = 2;
        /* Pieces pay when many row groups reuse them (prompts: 10% faster). With two or three groups
           (decoding 13-36 rows): on AVX2 the whole panel from L2 is faster (16 rows: 10%, AMD EPYC); on
           AVX-512, pieces half as long prefetched into L1, where every group then reads them, are (16
           rows: 7%, 32 rows: 5%, Intel Xeon). Measured with the weights streaming from memory. */
        int few = groups > 1 && groups <= 3;
        long piece_len = groups > 3 ? PIECE_FLOATS / nr : few && wide ? PIECE_FLOATS / 2 / nr : K;
        const tile_fn *tiles = !wide ? TILES : few ? TILES_WIDE_L1 : TILES_WIDE;
        long share = (piece_len * nr * (long)sizeof(float) + groups - 1) / groups;
        long step = groups > 1 ? (nr * (long)sizeof(float) + groups - 1) / groups : 0;
        for (long p = p_start; p < p_end; p++) {
            const float *panel = a->packed + (size_t)p * K * nr;
            for (long k0 = 0; k0 < K; k0 += piece_len) {
                long kc = K - k0 < piece_len ? K - k0 : piece_len;
                const float *piece = panel + (size_t)k0 * nr;
                /* Prefetched while this piece is in use: the next piece, or after the chunk's last one the
                   first piece of the chunk this thread most likely claims next (threads claim in turns),
                   so that its stream does not start cold (4% at 16 rows); none after the call's last. */
                const char *next = (const char *)(piece + (size_t)kc * nr);
                if (p + 1 == p_end && k0 + kc == K) {
                    long q = chunk_start(a, chunk + a->threads);
                    next = q < a->panels ? (const char *)(a->packed + (size_t)q * K * nr) : 0;
                }
                /* Rows spread evenly over the groups (32 rows: 6, 6, 5, 5, 5, 5, not 6 x 5 + 2): a tile of
                   fewer than 4 rows has too few independent FMA chains to keep the units busy. */
                long base = (m_end - m_start) / groups, extra = (m_end - m_start) % groups, rows;
                for (long m0 = m_start, g = 0; m0 < m_end; m0 += rows, g++) {
                    rows = base + (g < extra);
                    tiles[rows](a->x + (size_t)m0 * K + k0, K, piece, kc, acc + (m0 - m_start) * nr, k0 > 0,
                                next ? next + g * share : 0, next ? step : 0);
                }
            }
            store_panel(a, m_start, m_end, p, acc);
        }
    }
}

/* 2-6 rows against one coded panel of 32 outputs (acc: rows x NR_WIDE), each weight rebuilt once in
 * registers for all the rows: a step with a few rows (guessed tokens, a few users) then costs little
 * more than one row, as it does from fp32 panels, instead of rebuilding every piece through memory. */
#define CODED_ZERO(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0;
#define CODED_STEP(i)                                                           \
    {                                                                           \
        __m512 s = _mm512_set1_ps(x[(size_t)(i) * ldx + b * CODE_BLOCK + k]);  \
        c##i##0 = _mm512_fmadd_ps(s, w0, c##i##0);                              \
        c##i##1 = _mm512_fmadd_ps(s, w1, c##i##1);                              \
    }
#define CODED_STORE(i) _mm512_storeu_ps(acc + (i) * NR_WIDE, c##i##0), _mm512_storeu_ps(acc + (i) * NR_WIDE + 16, c##i##1);
#define CODED_TILE(MR)                                                                                         \
    __attribute__((target("avx512f"), always_inline)) static inline void coded_tile##MR##_bits(                \
        const float *x, long ldx, const uint8_t *panel, long K, float *acc, const int bits) {                  \
        long block_bytes = code_block_bytes(NR_WIDE, bits), row_bytes = code_row_bytes(NR_WIDE, bits);         \
        const __m512i fifteen = _mm512_set1_epi32(15);                                                         \
        ROWS##MR(CODED_ZERO)                                                                                   \
        for (long b = 0; b < K / CODE_BLOCK; b++) {                                                            \
            const uint8_t *A = panel + (size_t)b * block_bytes, *c = A + 4 * NR_WIDE;                          \
            for (long off = 0; off < block_bytes; off += 64)                                                   \
                _mm_prefetch((const char *)A + CODE_PREFETCH_BLOCKS * block_bytes + off, _MM_HINT_T0);         \
            __m512 d0 = HALVES(A, 0), d1 = HALVES(A, 1), m0 = HALVES(A, 2), m1 = HALVES(A, 3);                 \
            for (int k = 0; k < CODE_BLOCK; k++) {                                                             \
                __m512 w0, w1;                                                                                 \
                DECODE(c + k * row_bytes, d0, d1, m0, m1, w0, w1)                                              \
                ROWS##MR(CODED_STEP)                                                                           \
            }                                                                                                  \
        }                                                                                                      \
        ROWS##MR(CODED_STORE)                                                                                  \
    }                                                                                                          \
    __attribute__((target("avx512f"))) static void coded_tile##MR(const float *x, long ldx, const uint8_t *panel, \
                                                                  long K, float *acc, int bits) {              \
        if (bits == 4)                                                                                         \
            coded_tile##MR##_bits(x, ldx, panel, K, acc, 4);                                                   \
        else                                                                                                   \
            coded_tile##MR##_bits(x, ldx, panel, K, acc, 8);                                                   \
    }
CODED_TILE(2) CODED_TILE(3) CODED_TILE(4) CODED_TILE(5) CODED_TILE(6)
#define CODED_TILE_ROWS 6 /* with more rows the FMAs set the time: 8 rows measured no faster than pieces */
typedef void (*coded_tile_fn)(const float *, long, const uint8_t *, long, float *, int);
static const coded_tile_fn CODED_TILES[CODED_TILE_ROWS + 1] = {0, 0, coded_tile2, coded_tile3, coded_tile4,
                                                               coded_tile5, coded_tile6};

/* The same on AVX2, against one coded panel of 16 outputs, for 1-4 rows (with more, the accumulators,
 * d, m and the rebuilt weights no longer fit the 16 registers). The two tile macros differ in every
 * line's types and intrinsics, so they stay two. */
#define NARROW_ZERO(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = c##i##0;
#define NARROW_STEP(i)                                                              \
    {                                                                               \
        __m256 s = _mm256_broadcast_ss(x + (size_t)(i) * ldx + b * CODE_BLOCK + k); \
        c##i##0 = _mm256_fmadd_ps(s, w0, c##i##0);                                  \
        c##i##1 = _mm256_fmadd_ps(s, w1, c##i##1);                                  \
    }
#define NARROW_STORE(i) _mm256_storeu_ps(acc + (i) * NR, c##i##0), _mm256_storeu_ps(acc + (i) * NR + 8, c##i##1);
#define CODED_TILE_NARROW(MR)                                                                                  \
    __attribute__((always_inline)) static inline void coded_narrow##MR##_bits(                                 \
        const float *x, long ldx, const uint8_t *panel, long K, float *acc, const int bits) {                  \
        long block_bytes = code_block_bytes(NR, bits), row_bytes = code_row_bytes(NR, bits);                   \
        const __m256i fifteen = _mm256_set1_epi32(15);                                                         \
        ROWS##MR(NARROW_ZERO)                                                                                  \
        for (long b = 0; b < K / CODE_BLOCK; b++) {                                                            \
            const uint8_t *A = panel + (size_t)b * block_bytes, *c = A + 4 * NR;                               \
            for (long off = 0; off < block_bytes; off += 64)                                                   \
                _mm_prefetch((const char *)A + CODE_PREFETCH_BLOCKS * block_bytes + off, _MM_HINT_T0);         \
            __m256 d0 = HALVES_NARROW(A, 0), d1 = HALVES_NARROW(A, 1);                                         \
            __m256 m0 = HALVES_NARROW(A, 2), m1 = HALVES_NARROW(A, 3);                                         \
            for (int k = 0; k < CODE_BLOCK; k++) {                                                             \
                __m256 w0, w1;                                                                                 \
                DECODE_NARROW(c + k * row_bytes, d0, d1, m0, m1, w0, w1)                                       \
                ROWS##MR(NARROW_STEP)                                                                          \
            }                                                                                                  \
        }                                                                                                      \
        ROWS##MR(NARROW_STORE)                                                                                 \
    }                                                                                                          \
    static void coded_narrow##MR(const float *x, long ldx, const uint8_t *panel, long K, float *acc, int bits) { \
        if (bits == 4)                                                                                         \
            coded_narrow##MR##_bits(x, ldx, panel, K, acc, 4);                                                 \
        else                                                                                                   \
            coded_narrow##MR##_bits(x, ldx, panel, K, acc, 8);                                                 \
    }
CODED_TILE_NARROW(1) CODED_TILE_NARROW(2) CODED_TILE_NARROW(3) CODED_TILE_NARROW(4)
#define CODED_NARROW_ROWS 4
static const coded_tile_fn CODED_NARROW_TILES[CODED_NARROW_ROWS + 1] = {0, coded_narrow1, coded_narrow2, coded_narrow3,
                                                                       coded_narrow4};

/* A chunk of a coded weight's panels. A few rows rebuild the weights in registers (coded_row at one row
 * on AVX-512, then the coded tiles: up to 6 rows on AVX-512, 4 on AVX2); more rows rebuild each piece of
 * a panel once into an L1 buffer that every row group's tile then reads, as it would read a fp32 panel. */
static void coded_chunk(const void *arg, long chunk) {
    const linear_job *a = arg;
    long K = a->K, nr = a->nr, p_start = chunk_start(a, chunk), p_end = chunk_start(a, chunk + 1);
    size_t panel_bytes = (size_t)(K / CODE_BLOCK) * code_block_bytes(nr, a->bits);
    int wide = nr == NR_WIDE;
    float acc[M_BLOCK * NR_WIDE];
    if (a->M == 1 && wide) {
        for (long p = p_start; p < p_end; p += 2) {
            int pair = p + 1 < p_end;
            (a->bits == 4 ? coded_row4 : coded_row8)(a->x, a->codes + p * panel_bytes, K, acc, pair);
            store_panel(a, 0, 1, p, acc);
            if (pair) store_panel(a, 0, 1, p + 1, acc + NR_WIDE);
        }
        return;
    }
    if (a->M <= (wide ? CODED_TILE_ROWS : CODED_NARROW_ROWS)) {
        for (long p = p_start; p < p_end; p++) {
            (wide ? CODED_TILES : CODED_NARROW_TILES)[a->M](a->x, K, a->codes + p * panel_bytes, K, acc, a->bits);
            store_panel(a, 0, a->M, p, acc);
        }
        return;
    }
    float piece[PIECE_FLOATS] __attribute__((aligned(64)));
    long piece_len = PIECE_FLOATS / nr, mr_max = wide ? MR_WIDE : MR_MAX; /* piece_len: whole blocks */
    const tile_fn *tiles = wide ? TILES_WIDE : TILES;
    for (long m_start = 0; m_start < a->M; m_start += M_BLOCK) {
        long m_end = m_start + M_BLOCK < a->M ? m_start + M_BLOCK : a->M;
        long groups = (m_end - m_start + mr_max - 1) / mr_max;
        long base = (m_end - m_start) / groups, extra = (m_end - m_start) % groups, rows;
        for (long p = p_start; p < p_end; p++) {
            for (long k0 = 0; k0 < K; k0 += piece_len) {
                long kc = K - k0 < piece_len ? K - k0 : piece_len;
                if (wide)
                    unpack_rows_wide(a->codes + p * panel_bytes, a->bits, k0, kc, piece);
                else
                    unpack_rows(a->codes + p * panel_bytes, a->bits, k0, kc, piece);
                for (long m0 = m_start, g = 0; m0 < m_end; m0 += rows, g++) {
                    rows = base + (g < extra);
                    tiles[rows](a->x + (size_t)m0 * K + k0, K, piece, kc, acc + (m0 - m_start) * nr, k0 > 0, 0, 0);
                }
            }
            store_panel(a, m_start, m_end, p, acc);
        }
    }
}

/* nr: the panel width the weight was packed with, 16 or (where fma_linear_widest_panel allows) 32.
 * bits: 0 for fp32 panels, 4 or 8 for codes (pack_codes). */
void fma_linear(const float *x, long M, long K, const void *packed, long N, long nr, int bits, const float *bias,
                const float *residual, float *y, int threads) {
    long panels = (N + nr - 1) / nr;
    /* 4 chunks per thread: few enough that each is a long stream (16 rows: 7% faster than 8 per thread),
       enough that a thread the OS delays leaves little to wait for. */
    long chunks = 4L * threads < panels ? 4L * threads : panels, per = (panels + chunks - 1) / chunks;
    /* The last chunk of each thread's share split in four (at least two panels, which one row reads in pairs). */
    long big = (panels + per - 1) / per - threads, tail = per < 8 ? (per < 2 ? per : 2) : (per + 3) / 4;
    if (big < 0) big = 0;
    linear_job job = {x, bits ? 0 : packed, bias, residual, bits ? packed : 0, y, M, K, N, nr, panels, per, big,
                      tail, threads, bits};
    run_chunks(bits ? coded_chunk : linear_chunk, &job, big + (panels - big * per + tail - 1) / tail, threads);
}

/* Each row's index of its largest value among its first cols, as torch.argmax gives it: the first of
 * equal maxima, and the first NaN if there is one. Rows stride floats apart, shared among the threads:
 * torch's own argmax over a decoding step's logits runs an OpenMP region whose thread then spins on the
 * other core while the next step's kernels want it. */
typedef struct {
    const float *x;
    long cols, stride;
    long *out;
} argmax_job;

static void argmax_chunk(const void *arg, long row) {
    const argmax_job *a = arg;
    const float *x = a->x + (size_t)row * a->stride;
    long best = 0;
    for (long j = 0; j < a->cols; j++) {
        if (x[j] != x[j]) { /* NaN */
            best = j;
            break;
        }
        if (x[j] > x[best]) best = j;
    }
    a->out[row] = best;
}

void argmax_rows(const float *x, long rows, long cols, long stride, long *out, int threads) {
    argmax_job job = {x, cols, stride, out};
    run_chunks(argmax_chunk, &job, rows, threads);
}

/* Sum of the 8 lanes in a fixed order: (0+4, 1+5, 2+6, 3+7), then pairs, then the last two. */
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The lane sums of eight vectors as one vector: out[i] = ((a_i[0] + a_i[1]) + (a_i[2] + a_i[3])) +
 * ((a_i[4] + a_i[5]) + (a_i[6] + a_i[7])), the same tree for every i. */
static inline __m256 sum8x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                            __m256 a7) {
    __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* e^x for 8 floats, the same bits on every CPU with AVX2 and FMA (the C library's expf may differ
 * between library versions). x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts), e^r from a degree-7
 * polynomial, times 2^n. Relative error under 2 ulp (tests/test_exact_kernels.py); below -87.3 the
 * result is 0 (no subnormals), above 88.7 infinity, NaN stays NaN. */
static inline __m256 exp8(__m256 x) {
    const __m256 high = _mm256_set1_ps(88.72283935546875f), low = _mm256_set1_ps(-87.33654022216797f);
    __m256 clamped = _mm256_max_ps(_mm256_min_ps(x, high), low);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n, n in [-126, 128]: n = 128 (x near the top) is 2 * 2^127. */
    __m256i e = _mm256_cvtps_epi32(n);
    __m256i top = _mm256_cmpgt_epi32(e, _mm256_set1_epi32(127));
    e = _mm256_sub_epi32(e, _mm256_and_si256(top, _mm256_set1_epi32(1)));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
    p = _mm256_mul_ps(p, scale);
    p = _mm256_blendv_ps(p, _mm256_add_ps(p, p), _mm256_castsi256_ps(top));
    p = _mm256_blendv_ps(p, _mm256_setzero_ps(), _mm256_cmp_ps(x, low, _CMP_LT_OQ));
    p = _mm256_blendv_ps(p, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, high, _CMP_GT_OQ));
    return _mm256_blendv_ps(p, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

void exp_floats(const float *x, long n, float *out) { /* n % 8 == 0; for the tests */
    for (long i = 0; i < n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
}

/* Attention of each row over the first length[r] keys of its cache slot (a prompt's row at position i:
 * length i + 1; a decoding row: its whole prefix). The row's keys and values are in the cache already.
 *
 * q: (rows, heads, head_dim) with rows q_stride floats apart (a view into the qkv output); the caches:
 * (slots, kv_heads, capacity, head_dim); out: (rows, heads, head_dim). Per (row, query head): scores
 * eight keys at a time (each an FMA chain over 8-float pieces of the head, then sum8x8's tree), their
 * max, exp8(score - max), the total in 8 lanes then hsum8, each output lane's weighted sum of values in
 * key order, one division. A row reads only its own keys, so its bits depend neither on the other rows
 * nor on whether its prompt was computed at once or token by token.
 *
 * A task is a block of up to Q_BLOCK rows of one slot at consecutive positions (a prompt's rows; a
 * decoding row is a block of one) and one key head with the query heads that share it: each block of
 * keys and values comes from memory once and serves every row and head of the task from cache. How rows
 * fall into blocks changes no row's arithmetic. head_dim % 8 == 0 and head_dim <= 256 (checked by the
 * caller: bounds the task's arrays on the stack). */
#define Q_BLOCK 16 /* a prompt's rows per task */
#define V_BLOCK 64 /* keys per pass of the values' sums: 16 KB of values at 64 floats a head */
#define MAX_TASK_SCORES 65536

typedef struct {
    const float *q, *k_cache, *v_cache;
    const long *slot, *length, *block_start; /* task block b: rows block_start[b] .. block_start[b + 1] - 1 */
    float *out;
    long q_stride, heads, kv_heads, head_dim, capacity;
} attention_job;

/* p[t] = q . key t for t < count (count <= 8; keys head_dim floats apart), -inf for t >= count. The
 * lanes past count compute with the last key again (always in the cache) and are then masked: one
 * fully unrolled loop, so the eight accumulators stay in registers. */
static inline void score8(const float *q, const float *keys, long count, long head_dim, float *p) {
    const float *k[8];
    for (int t = 0; t < 8; t++) k[t] = keys + (t < count ? t : count - 1) * head_dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (long d = 0; d < head_dim; d += 8) {
        __m256 v = _mm256_loadu_ps(q + d);
        a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[0] + d), a0);
        a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[1] + d), a1);
        a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[2] + d), a2);
        a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[3] + d), a3);
        a4 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[4] + d), a4);
        a5 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[5] + d), a5);
        a6 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[6] + d), a6);
        a7 = _mm256_fmadd_ps(v, _mm256_loadu_ps(k[7] + d), a7);
    }
    __m256 s = sum8x8(a0, a1, a2, a3, a4, a5, a6, a7);
    if (count < 8) {
        __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
        s = _mm256_blendv_ps(s, _mm256_set1_ps(-__builtin_inff()),
                             _mm256_cmp_ps(lane, _mm256_set1_ps((float)count), _CMP_GE_OQ));
    }
    _mm256_storeu_ps(p, s);
}

/* p[0 .. n rounded up to 8) -> exp8(p - max), padding 0; returns the total (8 lanes, then hsum8). */
static inline float softmax_weights(float *p, long n) {
    long padded = (n + 7) & ~7L;
    __m256 top = _mm256_set1_ps(-__builtin_inff());
    for (long j = 0; j < padded; j += 8) top = _mm256_max_ps(top, _mm256_loadu_ps(p + j));
    top = _mm256_max_ps(top, _mm256_permute2f128_ps(top, top, 1));
    top = _mm256_max_ps(top, _mm256_shuffle_ps(top, top, 0x4e));
    top = _mm256_max_ps(top, _mm256_shuffle_ps(top, top, 0xb1));
    __m256 sum = _mm256_setzero_ps();
    for (long j = 0; j < padded; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), top));
        _mm256_storeu_ps(p + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum8(sum);
}

/* acc (head_dim) += sum over keys j0 <= j < j1 of p[j] * value j, each lane in key order: 64 floats
 * at a time in eight registers, the rest 8 at a time. */
static inline void add_values(float *acc, const float *p, const float *values, long j0, long j1, long head_dim) {
    long c0 = 0;
    for (; c0 + 64 <= head_dim; c0 += 64) {
        __m256 s0 = _mm256_loadu_ps(acc + c0), s1 = _mm256_loadu_ps(acc + c0 + 8);
        __m256 s2 = _mm256_loadu_ps(acc + c0 + 16), s3 = _mm256_loadu_ps(acc + c0 + 24);
        __m256 s4 = _mm256_loadu_ps(acc + c0 + 32), s5 = _mm256_loadu_ps(acc + c0 + 40);
        __m256 s6 = _mm256_loadu_ps(acc + c0 + 48), s7 = _mm256_loadu_ps(acc + c0 + 56);
        for (long j = j0; j < j1; j++) {
            __m256 w = _mm256_set1_ps(p[j]);
            const float *v = values + (size_t)j * head_dim + c0;
            s0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), s0);
            s1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), s1);
            s2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), s2);
            s3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), s3);
            s4 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 32), s4);
            s5 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 40), s5);
            s6 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 48), s6);
            s7 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 56), s7);
        }
        _mm256_storeu_ps(acc + c0, s0), _mm256_storeu_ps(acc + c0 + 8, s1);
        _mm256_storeu_ps(acc + c0 + 16, s2), _mm256_storeu_ps(acc + c0 + 24, s3);
        _mm256_storeu_ps(acc + c0 + 32, s4), _mm256_storeu_ps(acc + c0 + 40, s5);
        _mm256_storeu_ps(acc + c0 + 48, s6), _mm256_storeu_ps(acc + c0 + 56, s7);
    }
    for (; c0 < head_dim; c0 += 8) {
        __m256 s0 = _mm256_loadu_ps(acc + c0);
        for (long j = j0; j < j1; j++)
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(values + (size_t)j * head_dim + c0), s0);
        _mm256_storeu_ps(acc + c0, s0);
    }
}

static void attention_chunk(const void *arg, long task) { /* one block of rows, one key head */
    const attention_job *a = arg;
    long b = task / a->kv_heads, kv = task % a->kv_heads, head_dim = a->head_dim;
    long r0 = a->block_start[b], rows = a->block_start[b + 1] - r0, group = a->heads / a->kv_heads;
    long n_max = a->length[r0 + rows - 1]; /* consecutive positions: the block's last row is its longest */
    long stride = (n_max + 7) & ~7L, lines = group * rows; /* line g * rows + i: head kv * group + g, row i */
    size_t base = ((size_t)a->slot[r0] * a->kv_heads + kv) * a->capacity * head_dim;
    const float *keys = a->k_cache + base, *values = a->v_cache + base;
    float p[lines * stride], acc[lines * head_dim], total[lines]; /* sizes bounded by the caller */
    /* Each block of keys (then of values) serves every head and row of the task while it is in L1:
       read from memory once. The order of the loops changes no line's arithmetic. */
    for (long j0 = 0; j0 < n_max; j0 += 8) {
        /* Prefetched: the keys two blocks ahead, and this block's values for the second pass. */
        long ahead = n_max - j0 - 16 < 8 ? n_max - j0 - 16 : 8, here = n_max - j0 < 8 ? n_max - j0 : 8;
        const float *k_ahead = keys + (size_t)(j0 + 16) * head_dim, *v = values + (size_t)j0 * head_dim;
        for (long i = 0; i < ahead * head_dim; i += 16) _mm_prefetch((const char *)(k_ahead + i), _MM_HINT_T0);
        for (long i = 0; i < here * head_dim; i += 16) _mm_prefetch((const char *)(v + i), _MM_HINT_T1);
        for (long g = 0; g < group; g++)
            for (long i = 0; i < rows; i++) {
                long n = a->length[r0 + i];
                if (j0 < n)
                    score8(a->q + (r0 + i) * a->q_stride + (kv * group + g) * head_dim, keys + (size_t)j0 * head_dim,
                           n - j0 < 8 ? n - j0 : 8, head_dim, p + (g * rows + i) * stride + j0);
            }
    }
    for (long line = 0; line < lines; line++) total[line] = softmax_weights(p + line * stride, a->length[r0 + line % rows]);
    memset(acc, 0, sizeof(float) * lines * head_dim);
    for (long j0 = 0; j0 < n_max; j0 += V_BLOCK)
        for (long line = 0; line < lines; line++) {
            long n = a->length[r0 + line % rows], j1 = j0 + V_BLOCK < n ? j0 + V_BLOCK : n;
            if (j0 < j1) add_values(acc + line * head_dim, p + line * stride, values, j0, j1, head_dim);
        }
    for (long line = 0; line < lines; line++) {
        long i = line % rows, h = kv * group + line / rows;
        float *o = a->out + ((size_t)(r0 + i) * a->heads + h) * head_dim;
        __m256 divisor = _mm256_set1_ps(total[line]);
        for (long c = 0; c < head_dim; c += 8)
            _mm256_storeu_ps(o + c, _mm256_div_ps(_mm256_loadu_ps(acc + line * head_dim + c), divisor));
    }
}

void attention(const float *q, long q_stride, long rows, long heads, long kv_heads, long head_dim,
               const float *k_cache, const float *v_cache, long capacity, const long *slot, const long *length,
               float *out, int threads) {
    long start[rows + 1], blocks = 0; /* rows: at most the engine's prefill budget */
    for (long r = 0; r < rows; r++) {
        long in_block = blocks ? r - start[blocks - 1] : 0;
        /* A task's scores (rows x query heads of a key head x keys, on its stack) stay under 256 KB. */
        if (!blocks || slot[r] != slot[r - 1] || length[r] != length[r - 1] + 1 || in_block == Q_BLOCK ||
            (in_block + 1) * (heads / kv_heads) * ((length[r] + 7) & ~7L) > MAX_TASK_SCORES)
            start[blocks++] = r;
    }
    start[blocks] = rows;
    attention_job job = {q, k_cache, v_cache, slot, length, start, out, q_stride, heads, kv_heads, head_dim, capacity};
    run_chunks(attention_chunk, &job, blocks * kv_heads, threads);
}

/* out (rows, cols) = silu(gate) * up, where x (rows, 2 * cols) holds gate then up on each row;
 * silu(g) = g / (1 + exp8(-g)). */
static inline __m256 silu_mul8(__m256 g, __m256 up) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), up);
}

void silu_mul(const float *x, long rows, long cols, float *out) {
    for (long r = 0; r < rows; r++) {
        const float *gate = x + (size_t)r * 2 * cols, *up = gate + cols;
        float *o = out + (size_t)r * cols;
        long c = 0;
        for (; c + 8 <= cols; c += 8)
            _mm256_storeu_ps(o + c, silu_mul8(_mm256_loadu_ps(gate + c), _mm256_loadu_ps(up + c)));
        if (c < cols) { /* the last cols % 8, through zero-padded copies */
            float g[8] = {0}, u[8] = {0}, y[8];
            memcpy(g, gate + c, (cols - c) * sizeof(float));
            memcpy(u, up + c, (cols - c) * sizeof(float));
            _mm256_storeu_ps(y, silu_mul8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
            memcpy(o + c, y, (cols - c) * sizeof(float));
        }
    }
}

/* Rotary embedding of the query and key heads (the first heads of each row of x, rows x_stride floats
 * apart), into out (rows, heads, head_dim). Within a head, pairs (2i, 2i + 1) rotate by the angle of
 * frequency i at the row's position: (a cos - b sin, a sin + b cos), from tables (positions, head_dim / 2). */
void rotary(const float *x, long x_stride, long rows, long heads, long head_dim, const float *cos_table,
            const float *sin_table, const long *position, float *out) {
    long half = head_dim / 2;
    for (long r = 0; r < rows; r++) {
        const float *c = cos_table + (size_t)position[r] * half, *s = sin_table + (size_t)position[r] * half;
        for (long h = 0; h < heads; h++) {
            const float *in = x + (size_t)r * x_stride + h * head_dim;
            float *o = out + ((size_t)r * heads + h) * head_dim;
            for (long i = 0; i < half; i++) {
                float a = in[2 * i], b = in[2 * i + 1];
                o[2 * i] = a * c[i] - b * s[i];
                o[2 * i + 1] = a * s[i] + b * c[i];
            }
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

/* LayerNorm of each row: mean and variance summed in row order (in double, rounded once), then
 * (x - mean) / sqrt(var + eps) * w + b. */
void layer_norm(const float *x, long rows, long cols, const float *w, const float *b, float eps, float *y) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        double sum = 0.0, squares = 0.0;
        for (long c = 0; c < cols; c++) sum += xr[c];
        float mean = (float)(sum / cols);
        for (long c = 0; c < cols; c++) {
            double d = (double)xr[c] - mean;
            squares += d * d;
        }
        float inv = 1.0f / sqrtf((float)(squares / cols) + eps);
        for (long c = 0; c < cols; c++) yr[c] = (xr[c] - mean) * inv * w[c] + (b ? b[c] : 0.0f);
    }
}

/* GELU, tanh form, in place: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))). */
void gelu_tanh(float *x, long n) {
    const float k = 0.7978845608028654f;
    for (long i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

/* Rotary tables, as the float32 formula computes them: inv_freq[i] = 1 / theta^(2i / head_dim),
 * angle = position * inv_freq[i]; cos and sin from the C library, the same on every machine that runs
 * the same library. */
void rope_tables(float theta, long head_dim, long positions, float *cos_out, float *sin_out) {
    long half = head_dim / 2;
    for (long i = 0; i < half; i++) {
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        for (long p = 0; p < positions; p++) {
            float angle = (float)p * inv_freq;
            cos_out[p * half + i] = cosf(angle);
            sin_out[p * half + i] = sinf(angle);
        }
    }
}

/* Writes each row's keys and values (rows, kv_heads, head_dim; rows src_stride floats apart, heads
 * contiguous) into the caches (slots, kv_heads, capacity, head_dim) at the row's slot and position. */
void store_kv(const float *k, long k_stride, const float *v, long v_stride, long rows, long kv_heads,
              long head_dim, float *k_cache, float *v_cache, long capacity, const long *slot, const long *position) {
    for (long r = 0; r < rows; r++)
        for (long h = 0; h < kv_heads; h++) {
            size_t at = (((size_t)slot[r] * kv_heads + h) * capacity + position[r]) * head_dim;
            memcpy(k_cache + at, k + r * k_stride + h * head_dim, head_dim * sizeof(float));
            memcpy(v_cache + at, v + r * v_stride + h * head_dim, head_dim * sizeof(float));
        }
}

/* ---- The decoder layers in one call ----------------------------------------------------------------
 * The per-op forward of hessgpt/inference.py, op for op on the same buffers: the same bits, with one
 * call per forward pass instead of about ten trips through Python per layer. x (rows, width) is the
 * residual stream, updated in place (the residual adds read each element before writing it). */
typedef struct {
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b; /* the biases: LayerNorm's, or null for RMSNorm */
    const void *qkv;
    const float *qkv_b;
    const void *out;
    const float *out_b;
    const void *fc;
    const float *fc_b;
    const void *proj;
    const float *proj_b;                        /* packed panels or codes; biases or null */
    long qkv_bits, out_bits, fc_bits, proj_bits; /* 0 (fp32 panels), 4 or 8 (codes) */
} layer_weights;

typedef struct {
    long width, heads, kv_heads, head_dim, hidden, nr, capacity;
    long llama;    /* RMSNorm, rotary and a SiLU-gated MLP (fc: gate then up); else LayerNorm and GELU */
    float eps;
    const float *cos_table, *sin_table; /* rotary tables (positions, head_dim / 2), llama only */
} stack_shape;

/* Floats per row of each scratch buffer; GPT-2 needs no rotated copy and no activation buffer. */
typedef struct {
    long qkv, qk, att, fc, act;
} stack_widths;

static stack_widths widths_of(const stack_shape *s) {
    long H = s->heads, KV = s->kv_heads, hd = s->head_dim;
    stack_widths w = {(H + 2 * KV) * hd, s->llama ? (H + KV) * hd : 0, H * hd,
                      s->llama ? 2 * s->hidden : s->hidden, s->llama ? s->hidden : 0};
    return w;
}

/* The floats of scratch decoder_layers needs for rows rows. */
long decoder_scratch_floats(const stack_shape *s, long rows) {
    stack_widths w = widths_of(s);
    return rows * (s->width + w.qkv + w.qk + w.att + w.fc + w.act);
}

/* The ops between the linears, on rows r0 .. r0 + n - 1 (each row on its own). */
typedef struct {
    const stack_shape *s;
    const layer_weights *w;
    float *x, *h, *qkv, *qk, *fc, *act, *k_cache, *v_cache;
    const long *slot, *position;
    long rows;
    int step;
} rows_job;

enum { NORM1, ROTARY_AND_STORE, NORM2, ACTIVATION };
#define ROW_BLOCK 32 /* rows per chunk of the ops between the linears: a decoding step's rows run inline */

static void rows_chunk(const void *arg, long chunk) {
    const rows_job *j = arg;
    const stack_shape *s = j->s;
    long r0 = chunk * ROW_BLOCK, n = j->rows - r0 < ROW_BLOCK ? j->rows - r0 : ROW_BLOCK;
    long H = s->heads, KV = s->kv_heads, hd = s->head_dim, d = s->width;
    stack_widths w = widths_of(s);
    switch (j->step) {
    case NORM1:
    case NORM2: {
        const float *norm_w = j->step == NORM1 ? j->w->norm1_w : j->w->norm2_w;
        if (s->llama)
            rms_norm(j->x + r0 * d, n, d, norm_w, s->eps, j->h + r0 * d);
        else
            layer_norm(j->x + r0 * d, n, d, norm_w, j->step == NORM1 ? j->w->norm1_b : j->w->norm2_b, s->eps,
                       j->h + r0 * d);
        break;
    }
    case ROTARY_AND_STORE: { /* keys rotated into qk (llama), or read in place from qkv (GPT-2) */
        const float *k = j->qkv + r0 * w.qkv + H * hd;
        long k_stride = w.qkv;
        if (s->llama) {
            rotary(j->qkv + r0 * w.qkv, w.qkv, n, H + KV, hd, s->cos_table, s->sin_table, j->position + r0,
                   j->qk + r0 * w.qk);
            k = j->qk + r0 * w.qk + H * hd, k_stride = w.qk;
        }
        store_kv(k, k_stride, j->qkv + r0 * w.qkv + (H + KV) * hd, w.qkv, n, KV, hd, j->k_cache, j->v_cache,
                 s->capacity, j->slot + r0, j->position + r0);
        break;
    }
    case ACTIVATION:
        if (s->llama)
            silu_mul(j->fc + r0 * w.fc, n, s->hidden, j->act + r0 * w.act);
        else
            gelu_tanh(j->fc + r0 * w.fc, n * w.fc);
        break;
    }
}

/* One step of rows_chunk over every row: prompts' rows shared among the threads. */
static void for_rows(rows_job *j, int step, int threads) {
    j->step = step;
    run_chunks(rows_chunk, j, (j->rows + ROW_BLOCK - 1) / ROW_BLOCK, threads);
}

void decoder_layers(float *x, long rows, const layer_weights *layers, float *const *k_caches,
                    float *const *v_caches, long n_layers, const stack_shape *s, const long *slot,
                    const long *position, const long *length, float *scratch, int threads) {
    long H = s->heads, KV = s->kv_heads, hd = s->head_dim, d = s->width, nr = s->nr;
    stack_widths wd = widths_of(s);
    float *h = scratch, *qkv = h + rows * d, *qk = qkv + rows * wd.qkv, *att = qk + rows * wd.qk;
    float *fc = att + rows * wd.att, *act = fc + rows * wd.fc;
    /* Queries: rotated in qk (llama), or in place in qkv (GPT-2). */
    const float *q = s->llama ? qk : qkv;
    long q_stride = s->llama ? wd.qk : wd.qkv;
    rows_job job = {s, 0, x, h, qkv, qk, fc, act, 0, 0, slot, position, rows, NORM1};
    for (long l = 0; l < n_layers; l++) {
        const layer_weights *w = layers + l;
        job.w = w, job.k_cache = k_caches[l], job.v_cache = v_caches[l];
        for_rows(&job, NORM1, threads);
        fma_linear(h, rows, d, w->qkv, wd.qkv, nr, w->qkv_bits, w->qkv_b, 0, qkv, threads);
        for_rows(&job, ROTARY_AND_STORE, threads);
        attention(q, q_stride, rows, H, KV, hd, k_caches[l], v_caches[l], s->capacity, slot, length, att, threads);
        fma_linear(att, rows, wd.att, w->out, d, nr, w->out_bits, w->out_b, x, x, threads);
        for_rows(&job, NORM2, threads);
        fma_linear(h, rows, d, w->fc, wd.fc, nr, w->fc_bits, w->fc_b, 0, fc, threads);
        for_rows(&job, ACTIVATION, threads);
        fma_linear(s->llama ? act : fc, rows, s->hidden, w->proj, d, nr, w->proj_bits, w->proj_b, x, x, threads);
    }
}
