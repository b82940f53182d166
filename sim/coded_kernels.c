/* coded_kernels.c — the hot loops of the coded linear layer: play an event
 * plan (coded_internal.h) through every weight row.
 *
 * Guarantees: each event costs one gather of w[o, i] and one add per target
 * row o (one SOP), in the weight's stored precision; float sums run over one
 * segment (<= NESIM_CODED_SEG_FLOAT events) and are then added in double
 * (all in double when the layer asks for exact_sums);
 * int8 sums are exact in int32 and scaled once per segment; the result for
 * row o does not depend on how rows are blocked. Nothing is allocated.
 *
 * Why it is shaped like this (measured on the 3584 -> 18944 benchmark):
 * - Rows go in blocks of four: the event indices of a segment are loaded once
 *   per block instead of once per row, and the four sums are independent add
 *   chains that pipeline.
 * - The segment sums live in small non-inlined functions: inlined into the
 *   row loop, gcc ran out of registers and reloaded the row pointers from the
 *   stack on every event (~10 % slower).
 * - While a block is played, the next block's rows are prefetched (into L2),
 *   a few lines after each segment, spread so the whole next block is asked
 *   for by the time it starts: the gathers of a block then hit cache instead
 *   of waiting on memory (f32 +30 %, int8 +40 %).
 * - Loads go through memcpy (views may be unaligned); gcc turns them into
 *   plain moves.
 * - A batch (several samples of one call) plays through tiles instead
 *   (nesim_coded_tiles_new): R = 64 / element-size rows stored input-major, so
 *   an event reads one 64-byte line holding its weights to all R rows, added
 *   into R sums at once with vector instructions, and a tile (in x 64 bytes,
 *   224 KiB for in = 3584) stays in L2 while every sample of the batch is
 *   played through it. Each row's sum takes the same operations in the same
 *   order as in the row kernel, so both give the same bits.
 * - Threads take disjoint ranges of rows (whole blocks or tiles); a row is
 *   computed by one thread exactly as by one thread alone. */
#include "sim/coded_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/par.h"
#include "sim/loads.h"

/* SEG(NAME, ESZ, ACC, LOAD): sums of one segment over four rows (NAME) and
 * over one row (NAME##_1). ESZ is the element size, ACC the type of the sum,
 * LOAD(ptr) reads one element. e..pe are the +1 events, pe..ne the -1. */
#define SEG(NAME, ESZ, ACC, LOAD)                                                               \
    static __attribute__((noinline)) void NAME(const unsigned char *r0, size_t ld,              \
                                               const uint32_t *e, const uint32_t *pe,           \
                                               const uint32_t *ne, double c[4])                 \
    {                                                                                           \
        const unsigned char *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;                        \
        ACC c0 = 0, c1 = 0, c2 = 0, c3 = 0;                                                     \
        for (; e < pe; e++) {                                                                   \
            size_t j = (size_t)*e * (ESZ);                                                      \
            c0 += LOAD(r0 + j);                                                                 \
            c1 += LOAD(r1 + j);                                                                 \
            c2 += LOAD(r2 + j);                                                                 \
            c3 += LOAD(r3 + j);                                                                 \
        }                                                                                       \
        for (; e < ne; e++) {                                                                   \
            size_t j = (size_t)*e * (ESZ);                                                      \
            c0 -= LOAD(r0 + j);                                                                 \
            c1 -= LOAD(r1 + j);                                                                 \
            c2 -= LOAD(r2 + j);                                                                 \
            c3 -= LOAD(r3 + j);                                                                 \
        }                                                                                       \
        c[0] = (double)c0;                                                                      \
        c[1] = (double)c1;                                                                      \
        c[2] = (double)c2;                                                                      \
        c[3] = (double)c3;                                                                      \
    }                                                                                           \
    static __attribute__((noinline)) double NAME##_1(const unsigned char *r0, const uint32_t *e, \
                                                     const uint32_t *pe, const uint32_t *ne)    \
    {                                                                                           \
        ACC c0 = 0;                                                                             \
        for (; e < pe; e++)                                                                     \
            c0 += LOAD(r0 + (size_t)*e * (ESZ));                                                \
        for (; e < ne; e++)                                                                     \
            c0 -= LOAD(r0 + (size_t)*e * (ESZ));                                                \
        return (double)c0;                                                                      \
    }

/* Every (suffix, element size, sum type, load) the kernels come in; the _d
 * ones are exact_sums: float weights summed in double (the language-model
 * oracles). */
#define KERNEL_TYPES(X)                                                                         \
    X(f32, 4, float, ld_f32)                                                                    \
    X(f64, 8, double, ld_f64)                                                                   \
    X(f16, 2, float, ld_f16)                                                                    \
    X(bf16, 2, float, ld_bf16)                                                                  \
    X(i8, 1, int32_t, ld_i8)                                                                    \
    X(f32_d, 4, double, ld_f32)                                                                 \
    X(f16_d, 2, double, ld_f16)                                                                 \
    X(bf16_d, 2, double, ld_bf16)

#define SEG_OF(SFX, ESZ, ACC, LOAD) SEG(seg_##SFX, ESZ, ACC, LOAD)
KERNEL_TYPES(SEG_OF)

typedef void (*seg4_fn)(const unsigned char *, size_t, const uint32_t *, const uint32_t *,
                        const uint32_t *, double *);
typedef double (*seg1_fn)(const unsigned char *, const uint32_t *, const uint32_t *,
                          const uint32_t *);

/* Scale of row o, group g (1 without scales). */
static inline double scale_at(const unsigned char *S, size_t ng, size_t o, uint32_t g)
{
    return S ? (double)ld_f32(S + (o * ng + g) * 4) : 1.0;
}

/* TSEG(NAME, ESZ, ACC, LOAD): the sums of one segment over the R = 64 / ESZ
 * rows of a tile: c[r] = sum of the +1 events' weights minus the -1 events',
 * in event order, in ACC. T is the tile (input i's line at T + 64 i). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TILE_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("tree-vectorize")))
#else
#define TILE_CLONES
#endif
#define TSEG(NAME, ESZ, ACC, LOAD)                                                              \
    TILE_CLONES static void NAME(const unsigned char *T, const uint32_t *e, const uint32_t *pe,  \
                                 const uint32_t *ne, double *c)                                 \
    {                                                                                           \
        enum { R = 64 / (ESZ) };                                                                \
        ACC acc[R];                                                                             \
        for (int r = 0; r < R; r++)                                                             \
            acc[r] = 0;                                                                         \
        for (; e < pe; e++) {                                                                   \
            const unsigned char *w = T + (size_t)*e * 64;                                       \
            for (int r = 0; r < R; r++)                                                         \
                acc[r] += LOAD(w + r * (ESZ));                                                  \
        }                                                                                       \
        for (; e < ne; e++) {                                                                   \
            const unsigned char *w = T + (size_t)*e * 64;                                       \
            for (int r = 0; r < R; r++)                                                         \
                acc[r] -= LOAD(w + r * (ESZ));                                                  \
        }                                                                                       \
        for (int r = 0; r < R; r++)                                                             \
            c[r] = (double)acc[r];                                                              \
    }

#define TSEG_OF(SFX, ESZ, ACC, LOAD) TSEG(tseg_##SFX, ESZ, ACC, LOAD)
KERNEL_TYPES(TSEG_OF)

typedef void (*tseg_fn)(const unsigned char *, const uint32_t *, const uint32_t *, const uint32_t *,
                        double *);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* int8 tiles by hand: the 64 sums live in four (AVX-512) or eight (AVX2)
 * registers for the whole segment; the vectorised loop above keeps them in
 * memory and reloads them on every event. */
__attribute__((target("avx512f"))) static void tseg_i8_512(const unsigned char *T, const uint32_t *e,
                                                          const uint32_t *pe, const uint32_t *ne, double *c)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (; e < pe; e++) {
        const unsigned char *w = T + (size_t)*e * 64;
        a0 = _mm512_add_epi32(a0, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)w)));
        a1 = _mm512_add_epi32(a1, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 16))));
        a2 = _mm512_add_epi32(a2, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 32))));
        a3 = _mm512_add_epi32(a3, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 48))));
    }
    for (; e < ne; e++) {
        const unsigned char *w = T + (size_t)*e * 64;
        a0 = _mm512_sub_epi32(a0, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)w)));
        a1 = _mm512_sub_epi32(a1, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 16))));
        a2 = _mm512_sub_epi32(a2, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 32))));
        a3 = _mm512_sub_epi32(a3, _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(w + 48))));
    }
    _mm512_storeu_pd(c, _mm512_cvtepi32_pd(_mm512_castsi512_si256(a0)));
    _mm512_storeu_pd(c + 8, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a0, 1)));
    _mm512_storeu_pd(c + 16, _mm512_cvtepi32_pd(_mm512_castsi512_si256(a1)));
    _mm512_storeu_pd(c + 24, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a1, 1)));
    _mm512_storeu_pd(c + 32, _mm512_cvtepi32_pd(_mm512_castsi512_si256(a2)));
    _mm512_storeu_pd(c + 40, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a2, 1)));
    _mm512_storeu_pd(c + 48, _mm512_cvtepi32_pd(_mm512_castsi512_si256(a3)));
    _mm512_storeu_pd(c + 56, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a3, 1)));
}

__attribute__((target("avx2"))) static void tseg_i8_256(const unsigned char *T, const uint32_t *e,
                                                       const uint32_t *pe, const uint32_t *ne, double *c)
{
    __m256i a[8];
    for (int k = 0; k < 8; k++)
        a[k] = _mm256_setzero_si256();
    for (; e < pe; e++) {
        const unsigned char *w = T + (size_t)*e * 64;
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_add_epi32(a[k], _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + 8 * k))));
    }
    for (; e < ne; e++) {
        const unsigned char *w = T + (size_t)*e * 64;
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_sub_epi32(a[k], _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + 8 * k))));
    }
    for (int k = 0; k < 8; k++) {
        _mm256_storeu_pd(c + 8 * k, _mm256_cvtepi32_pd(_mm256_castsi256_si128(a[k])));
        _mm256_storeu_pd(c + 8 * k + 4, _mm256_cvtepi32_pd(_mm256_extracti128_si256(a[k], 1)));
    }
}

static tseg_fn tseg_i8_best(void)
{
    if (__builtin_cpu_supports("avx512f"))
        return tseg_i8_512;
    if (__builtin_cpu_supports("avx2"))
        return tseg_i8_256;
    return tseg_i8;
}
#else
static tseg_fn tseg_i8_best(void) { return tseg_i8; }
#endif

/* The row loop, shared by every dtype, over rows [o_lo, o_hi) (o_lo a
 * multiple of 4): the per-segment call is indirect but costs little next to
 * the ~100 gathers a segment holds on the benchmark. */
static void rows(const nesim_coded_linear *L, const nesim_coded_plan *p, double vth, const double *bias,
                 float *y, size_t o_lo, size_t o_hi, size_t esz, seg4_fn seg4, seg1_fn seg1)
{
    const unsigned char *W = L->weight.data;
    const unsigned char *S = L->has_scales ? L->scales.data : NULL;
    const size_t ld = L->in * esz, ng = L->in / L->group, nseg = p->nseg;
    const uint32_t *idx = p->idx;
    /* Bytes of the next block to prefetch after each segment (whole lines). */
    const size_t pf_step = nseg ? (4 * ld + 64 * nseg - 1) / (64 * nseg) * 64 : 0;
    size_t o = o_lo;
    for (; o + 4 <= o_hi; o += 4) {
        const unsigned char *r0 = W + o * ld;
        const unsigned char *pf = r0 + 4 * ld, *pf_end = o + 8 <= o_hi ? pf + 4 * ld : pf;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t s = 0; s < nseg; s++) {
            const nesim_coded_seg *sg = p->seg + s;
            const uint32_t *e = idx + sg->off, *pe = e + sg->np, *ne = pe + sg->nn;
            double c[4];
            seg4(r0, ld, e, pe, ne, c);
            a0 += sg->wt * scale_at(S, ng, o, sg->g) * c[0];
            a1 += sg->wt * scale_at(S, ng, o + 1, sg->g) * c[1];
            a2 += sg->wt * scale_at(S, ng, o + 2, sg->g) * c[2];
            a3 += sg->wt * scale_at(S, ng, o + 3, sg->g) * c[3];
            for (const unsigned char *pq = pf + pf_step; pf < pq && pf < pf_end; pf += 64)
                __builtin_prefetch(pf, 0, 2);
        }
        y[o] = (float)(vth * a0 + (bias ? bias[o] : 0.0));
        y[o + 1] = (float)(vth * a1 + (bias ? bias[o + 1] : 0.0));
        y[o + 2] = (float)(vth * a2 + (bias ? bias[o + 2] : 0.0));
        y[o + 3] = (float)(vth * a3 + (bias ? bias[o + 3] : 0.0));
    }
    for (; o < o_hi; o++) { /* the last rows, one at a time */
        const unsigned char *r0 = W + o * ld;
        double a0 = 0;
        for (size_t s = 0; s < nseg; s++) {
            const nesim_coded_seg *sg = p->seg + s;
            const uint32_t *e = idx + sg->off, *pe = e + sg->np, *ne = pe + sg->nn;
            a0 += sg->wt * scale_at(S, ng, o, sg->g) * seg1(r0, e, pe, ne);
        }
        y[o] = (float)(vth * a0 + (bias ? bias[o] : 0.0));
    }
}

/* Tile t of W into D (in x 64 bytes): each input's R weights gathered from
 * R rows, missing rows zero. The element size is a constant in each
 * instantiation, so every copy is one move; blocks of 64 inputs keep the R
 * source lines and the 64 destination lines in L1. */
#define TILE_FILL(NAME, ESZ)                                                                    \
    static void NAME(const unsigned char *W, size_t in, size_t out, size_t t, unsigned char *D)   \
    {                                                                                           \
        enum { R = 64 / (ESZ) };                                                                \
        const size_t o0 = t * R, nr = out - o0 < R ? out - o0 : R;                              \
        if (nr < R)                                                                             \
            memset(D, 0, in * 64);                                                              \
        for (size_t i0 = 0; i0 < in; i0 += 64) {                                                \
            const size_t i1 = i0 + 64 < in ? i0 + 64 : in;                                      \
            for (size_t r = 0; r < nr; r++) {                                                   \
                const unsigned char *src = W + ((o0 + r) * in) * (ESZ);                         \
                for (size_t i = i0; i < i1; i++)                                                \
                    memcpy(D + i * 64 + r * (ESZ), src + i * (ESZ), (ESZ));                     \
            }                                                                                   \
        }                                                                                       \
    }
TILE_FILL(fill1, 1)
TILE_FILL(fill2, 2)
TILE_FILL(fill4, 4)
TILE_FILL(fill8, 8)

static void fill_tile(const nesim_coded_linear *L, size_t t, unsigned char *D)
{
    const unsigned char *W = L->weight.data;
    switch (nesim_dtype_size(L->weight.dtype)) {
    case 1: fill1(W, L->in, L->out, t, D); break;
    case 2: fill2(W, L->in, L->out, t, D); break;
    case 4: fill4(W, L->in, L->out, t, D); break;
    default: fill8(W, L->in, L->out, t, D); break;
    }
}

/* Tiles [t_lo, t_hi) for every sample: a tile's rows take each sample's
 * segments in plan order, as rows() does. Without the layer's tiles (TL
 * NULL) each tile is made in `scratch` just before it is played: one pass
 * over the rows for the whole batch, and the tile is hot when it is read. */
static void tiles(const nesim_coded_linear *L, const unsigned char *TL, unsigned char *scratch,
                  const nesim_coded_plan *plans, size_t n, const double *vth, const double *bias, float *y,
                  size_t t_lo, size_t t_hi, size_t esz, tseg_fn seg)
{
    const unsigned char *S = L->has_scales ? L->scales.data : NULL;
    const size_t R = 64 / esz, ng = L->in / L->group, out = L->out;
    for (size_t t = t_lo; t < t_hi; t++) {
        const unsigned char *T = TL ? TL + t * L->in * 64 : scratch;
        if (!TL)
            fill_tile(L, t, scratch);
        const size_t o0 = t * R, nr = out - o0 < R ? out - o0 : R;
        for (size_t s = 0; s < n; s++) {
            const nesim_coded_plan *p = plans + s;
            double a[64] = {0}, c[64];
            for (size_t k = 0; k < p->nseg; k++) {
                const nesim_coded_seg *sg = p->seg + k;
                const uint32_t *e = p->idx + sg->off, *pe = e + sg->np, *ne = pe + sg->nn;
                seg(T, e, pe, ne, c);
                for (size_t r = 0; r < nr; r++)
                    a[r] += sg->wt * scale_at(S, ng, o0 + r, sg->g) * c[r];
            }
            float *ys = y + s * out;
            for (size_t r = 0; r < nr; r++)
                ys[o0 + r] = (float)(vth[s] * a[r] + (bias ? bias[o0 + r] : 0.0));
        }
    }
}

typedef struct kern {
    seg4_fn seg4;
    seg1_fn seg1;
    tseg_fn tseg;
    size_t esz;
} kern;

static kern pick(const nesim_coded_linear *L)
{
    const int d = L->exact_sums;
    switch (L->weight.dtype) {
    case NESIM_F32: return d ? (kern){seg_f32_d, seg_f32_d_1, tseg_f32_d, 4} : (kern){seg_f32, seg_f32_1, tseg_f32, 4};
    case NESIM_F64: return (kern){seg_f64, seg_f64_1, tseg_f64, 8};
    case NESIM_F16: return d ? (kern){seg_f16_d, seg_f16_d_1, tseg_f16_d, 2} : (kern){seg_f16, seg_f16_1, tseg_f16, 2};
    case NESIM_BF16:
        return d ? (kern){seg_bf16_d, seg_bf16_d_1, tseg_bf16_d, 2} : (kern){seg_bf16, seg_bf16_1, tseg_bf16, 2};
    case NESIM_I8: return (kern){seg_i8, seg_i8_1, tseg_i8_best(), 1};
    default: return (kern){0}; /* rejected by nesim_coded_linear_init */
    }
}

typedef struct job {
    const nesim_coded_linear *L;
    size_t r_lo, r_hi;           /* the rows this rank computes (all with one rank) */
    int tiled;                   /* play through tiles (the layer's, or made as played) */
    const unsigned char *tiles;
    const nesim_coded_plan *plans;
    size_t n;
    const double *vth, *bias;
    float *y;
    kern k;
} job;

static void run_part(void *ctx, int k, int n)
{
    const job *j = ctx;
    const nesim_coded_linear *L = j->L;
    size_t lo, hi;
    if (j->tiled) {
        size_t R = 64 / j->k.esz, t0 = j->r_lo / R; /* r_lo is a multiple of R */
        nesim_par_split((j->r_hi - j->r_lo + R - 1) / R, 1, k, n, &lo, &hi);
        lo += t0, hi += t0;
        unsigned char *scratch = j->tiles || lo == hi ? NULL : aligned_alloc(64, L->in * 64);
        if (j->tiles || scratch) {
            tiles(L, j->tiles, scratch, j->plans, j->n, j->vth, j->bias, j->y, lo, hi, j->k.esz, j->k.tseg);
            free(scratch);
            return;
        }
        /* no memory for one tile: the row kernel, on the same rows, gives the same bits */
        lo *= R;
        hi = hi * R < L->out ? hi * R : L->out;
    } else {
        nesim_par_split(j->r_hi - j->r_lo, 4, k, n, &lo, &hi);
        lo += j->r_lo, hi += j->r_lo;
    }
    for (size_t s = 0; s < j->n; s++)
        rows(L, j->plans + s, j->vth[s], j->bias, j->y + s * L->out, lo, hi, j->k.esz, j->k.seg4, j->k.seg1);
}

/* Below this many SOPs a call runs on one thread: starting one costs ~20 us. */
#define PAR_MIN_SOPS ((size_t)1 << 21)

/* Several ranks: rank r's rows of the layer (base/par.h). */
void nesim_coded_rank_rows(const nesim_coded_linear *L, const nesim_comm *comm, int r, size_t *lo, size_t *hi)
{
    nesim_par_split(L->out, NESIM_RANK_ROWS, r, nesim_comm_size(comm), lo, hi);
}

/* Every rank's rows of y [n x out] to every rank: each packs its column
 * block, one Allgatherv, each unpacks the others'. */
static int gather_rows(const nesim_coded_linear *L, nesim_comm *comm, size_t n, float *y, nesim_error *err)
{
    int K = nesim_comm_size(comm), me = nesim_comm_rank(comm);
    size_t lo, hi, *bytes = malloc((size_t)K * sizeof *bytes);
    if (!bytes)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int r = 0; r < K; r++) {
        nesim_coded_rank_rows(L, comm, r, &lo, &hi);
        bytes[r] = n * (hi - lo) * sizeof(float);
    }
    nesim_coded_rank_rows(L, comm, me, &lo, &hi);
    float *mine = malloc(bytes[me] ? bytes[me] : 1);
    int rc = mine ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t s = 0; !rc && s < n; s++)
        memcpy(mine + s * (hi - lo), y + s * L->out + lo, (hi - lo) * sizeof *y);
    const void *all;
    if (!rc && !(rc = nesim_comm_allgatherv(comm, mine, bytes, &all, "the exchange of a layer's rows", err))) {
        const float *src = all;
        for (int r = 0; r < K; r++) {
            nesim_coded_rank_rows(L, comm, r, &lo, &hi);
            for (size_t s = 0; s < n; s++, src += hi - lo)
                if (r != me)
                    memcpy(y + s * L->out + lo, src, (hi - lo) * sizeof *y);
        }
    }
    free(mine);
    free(bytes);
    if (rc)
        nesim_context(err, "coded linear '%s': ", L->name);
    return rc;
}

int nesim_coded_rows(const nesim_coded_linear *L, const unsigned char *tl, const nesim_coded_plan *plans, size_t n,
                     const double *vth, const double *bias, float *y, int threads, nesim_comm *comm,
                     nesim_error *err)
{
    job j = {L, 0, L->out, tl != NULL || n >= NESIM_CODED_TILE_MIN, tl, plans, n, vth, bias, y, pick(L)};
    if (!j.k.esz)
        return NESIM_OK;
    int split = nesim_comm_size(comm) > 1;
    if (split)
        nesim_coded_rank_rows(L, comm, nesim_comm_rank(comm), &j.r_lo, &j.r_hi);
    size_t events = 0, rows = j.r_hi - j.r_lo;
    for (size_t s = 0; s < n; s++)
        for (size_t k = 0; k < plans[s].nseg; k++)
            events += (size_t)plans[s].seg[k].np + plans[s].seg[k].nn;
    size_t units = j.tiled ? (rows + 64 / j.k.esz - 1) / (64 / j.k.esz) : (rows + 3) / 4;
    if (threads > 1 && events * rows < PAR_MIN_SOPS)
        threads = 1;
    if ((size_t)threads > units)
        threads = (int)(units ? units : 1);
    if (rows)
        nesim_par_run(threads, run_part, &j);
    return split ? gather_rows(L, comm, n, y, err) : NESIM_OK;
}

typedef struct fill_job {
    const nesim_coded_linear *L;
    unsigned char *T;
    size_t nt;
} fill_job;

static void fill_part(void *ctx, int k, int n)
{
    const fill_job *j = ctx;
    size_t lo, hi;
    nesim_par_split(j->nt, 1, k, n, &lo, &hi);
    for (size_t t = lo; t < hi; t++)
        fill_tile(j->L, t, j->T + t * j->L->in * 64);
}

int nesim_coded_tiles_new(const nesim_coded_linear *L, int threads, unsigned char **out, nesim_error *err)
{
    *out = NULL;
    const size_t esz = nesim_dtype_size(L->weight.dtype), R = 64 / esz, in = L->in;
    const size_t nt = (L->out + R - 1) / R;
    if (nt > SIZE_MAX / 64 / in)
        return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': tiles too large", L->name);
    /* huge pages: a 7B model's tiles are gigabytes */
    unsigned char *T = nesim_alloc_big(nt * in * 64);
    if (!T)
        return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory for %zu MiB of weight tiles",
                          L->name, nt * in * 64 >> 20);
    fill_job j = {L, T, nt};
    if ((size_t)threads > nt)
        threads = (int)nt;
    nesim_par_run(L->out * in < PAR_MIN_SOPS ? 1 : threads, fill_part, &j);
    *out = T;
    return NESIM_OK;
}
