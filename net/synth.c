/* synth.c — synthetic tensors (see synth.h).
 *
 * Every value is a function of (seed, its flat index) alone — a counter-based
 * generator — so any group of any tensor can be made on its own: the work is
 * split over threads by groups, the result is the same for any thread count,
 * and a layer can be regenerated tile by tile. */
#include "net/synth.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/par.h"
#include "base/rng.h"

/* The standard normal's inverse CDF on [ICDF_LO, 1 - ICDF_LO], tabulated at
 * ICDF_N equal steps and interpolated linearly (within 1e-4 sigma of GSL's
 * gsl_cdf_ugaussian_Pinv, worst at the ends); outside, GSL's directly. */
#define ICDF_N 8192
#define ICDF_LO 0.0025

typedef struct synth_job {
    const nesim_spec_tensor *st;
    uint64_t key;
    size_t group, ngroups;
    size_t g0;          /* the first group made (a row range: the groups of those rows) */
    int q8;
    void *out;
    float *scales;
    const double *icdf; /* [ICDF_N + 1] */
    int fast;           /* AVX-512 (F + DQ) here: normals eight at a time */
} synth_job;

/* Bits of element n: splitmix64's output at position n of the stream key. */
static inline uint64_t bits_at(uint64_t key, uint64_t n) { return nesim_mix64(key + n * 0x9e3779b97f4a7c15ull); }

/* A uniform in (0, 1) from the top 53 bits: never 0 or 1. */
static inline double unit(uint64_t b) { return ((double)(int64_t)(b >> 11) + 0.5) * 0x1p-53; }

static inline double std_normal(const double *tab, double u)
{
    double p = (u - ICDF_LO) * (ICDF_N / (1 - 2 * ICDF_LO));
    if (p >= 0 && p < ICDF_N) {
        int64_t k = (int64_t)p;
        double f = p - (double)k;
        return tab[k] + f * (tab[k + 1] - tab[k]);
    }
    return gsl_cdf_ugaussian_Pinv(u);
}

static inline double value_at(const synth_job *j, uint64_t n)
{
    const nesim_spec_tensor *st = j->st;
    switch (st->dist) {
    case NESIM_SYNTH_NORMAL: return st->a + st->b * std_normal(j->icdf, unit(bits_at(j->key, n)));
    case NESIM_SYNTH_UNIFORM: return st->a + (st->b - st->a) * unit(bits_at(j->key, n));
    default: return st->a;
    }
}

/* out[i] = value_at(j, n0 + i), i < m. */
static void values_scalar(const synth_job *j, uint64_t n0, double *out, size_t m)
{
    for (size_t i = 0; i < m; i++)
        out[i] = value_at(j, n0 + i);
}

/* max |v[i]|, i < m (values finite: no fmax call) */
static double absmax_scalar(const double *v, size_t m)
{
    double r = 0;
    for (size_t i = 0; i < m; i++)
        r = fabs(v[i]) > r ? fabs(v[i]) : r;
    return r;
}

/* q[i] = clamp(round-half-even(v[i] / s), -127, 127) without a libm call:
 * |v / s| <= 127 here, and adding 1.5 * 2^52 leaves no fraction bits
 * (default rounding mode). */
static void quantise_scalar(const double *v, size_t m, float s, int8_t *q)
{
    for (size_t i = 0; i < m; i++) {
        double x = (v[i] / s + 0x1.8p52) - 0x1.8p52;
        q[i] = (int8_t)(x > 127 ? 127 : x < -127 ? -127 : x);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The same values eight at a time, operation for operation (the same
 * multiplies and adds in the same order, integers exact, truncation as the
 * scalar cast): the bits do not depend on which path made them. Lanes outside
 * the table take the scalar path. */
__attribute__((target("avx512f,avx512dq"))) static void normals_512(const synth_job *j, uint64_t n0, double *out,
                                                                  size_t m)
{
    const __m512i gam = _mm512_set1_epi64((long long)0x9e3779b97f4a7c15ull),
                  m1 = _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ull),
                  m2 = _mm512_set1_epi64((long long)0x94d049bb133111ebull), key = _mm512_set1_epi64((long long)j->key),
                  lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512d half = _mm512_set1_pd(0.5), ulp = _mm512_set1_pd(0x1p-53), lo = _mm512_set1_pd(ICDF_LO),
                  scale = _mm512_set1_pd(ICDF_N / (1 - 2 * ICDF_LO)), zero = _mm512_setzero_pd(),
                  top = _mm512_set1_pd(ICDF_N), a = _mm512_set1_pd(j->st->a), b = _mm512_set1_pd(j->st->b);
    /* the counter times the golden gamma, stepped by an addition (mod 2^64:
     * the same integers as the multiplication) */
    const __m512i step = _mm512_set1_epi64((long long)(8 * 0x9e3779b97f4a7c15ull));
    __m512i xn = _mm512_add_epi64(
        _mm512_add_epi64(key, _mm512_mullo_epi64(_mm512_add_epi64(_mm512_set1_epi64((long long)n0), lane), gam)), gam);
    size_t i = 0;
    for (; i + 8 <= m; i += 8, xn = _mm512_add_epi64(xn, step)) {
        __m512i x = xn;
        x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), m1);
        x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)), m2);
        x = _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
        __m512d u = _mm512_mul_pd(_mm512_add_pd(_mm512_cvtepi64_pd(_mm512_srli_epi64(x, 11)), half), ulp);
        __m512d p = _mm512_mul_pd(_mm512_sub_pd(u, lo), scale);
        __mmask8 in = _mm512_cmp_pd_mask(p, zero, _CMP_GE_OQ) & _mm512_cmp_pd_mask(p, top, _CMP_LT_OQ);
        __m512i k = _mm512_maskz_cvttpd_epi64(in, p);
        __m512d f = _mm512_sub_pd(p, _mm512_cvtepi64_pd(k));
        __m512d t0 = _mm512_mask_i64gather_pd(zero, in, k, j->icdf, 8);
        __m512d t1 = _mm512_mask_i64gather_pd(zero, in, k, j->icdf + 1, 8);
        __m512d z = _mm512_add_pd(t0, _mm512_mul_pd(f, _mm512_sub_pd(t1, t0)));
        _mm512_storeu_pd(out + i, _mm512_add_pd(a, _mm512_mul_pd(b, z)));
        if (in != 0xff)
            for (int l = 0; l < 8; l++)
                if (!(in >> l & 1))
                    out[i + (size_t)l] = value_at(j, n0 + i + (uint64_t)l);
    }
    values_scalar(j, n0 + i, out + i, m - i);
}

/* max |v[i]|, i < m (values finite) */
__attribute__((target("avx512f,avx512dq"))) static double absmax_512(const double *v, size_t m)
{
    __m512d mx = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        mx = _mm512_max_pd(mx, _mm512_abs_pd(_mm512_loadu_pd(v + i)));
    double r = _mm512_reduce_max_pd(mx), t = absmax_scalar(v + i, m - i);
    return t > r ? t : r;
}

/* q[i] = clamp(round-half-even(v[i] / s), -127, 127), as the scalar loop.
 * A division costs several multiplications, so each lane first rounds
 * v * (1 / s), which is within 3 units in the last place of v / s (two
 * roundings more); the two round to the same integer unless that product
 * lies within that distance of a half-integer (|v / s| <= 127.5 here, so
 * 1e-12 covers it with room), and only such lanes are divided. */
__attribute__((target("avx512f,avx512dq"))) static void quantise_512(const double *v, size_t m, float s, int8_t *q)
{
    const __m512d sd = _mm512_set1_pd((double)s), magic = _mm512_set1_pd(0x1.8p52), hi = _mm512_set1_pd(127),
                  lo = _mm512_set1_pd(-127), inv = _mm512_set1_pd(1.0 / (double)s), half = _mm512_set1_pd(0.5),
                  near = _mm512_set1_pd(1e-12);
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        __m512d vi = _mm512_loadu_pd(v + i), y = _mm512_mul_pd(vi, inv);
        __m512d x = _mm512_sub_pd(_mm512_add_pd(y, magic), magic);
        __m512d off = _mm512_abs_pd(_mm512_sub_pd(_mm512_abs_pd(_mm512_sub_pd(y, x)), half));
        __mmask8 tie = _mm512_cmp_pd_mask(off, near, _CMP_LT_OQ);
        if (tie)
            x = _mm512_mask_sub_pd(x, tie, _mm512_add_pd(_mm512_div_pd(vi, sd), magic), magic);
        x = _mm512_min_pd(_mm512_max_pd(x, lo), hi);
        _mm_storel_epi64((__m128i *)(q + i), _mm512_cvtepi64_epi8(_mm512_cvttpd_epi64(x)));
    }
    quantise_scalar(v + i, m - i, s, q + i);
}

static int have_512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"); }
#else /* never called: have_512() is 0 */
static double absmax_512(const double *v, size_t m) { return absmax_scalar(v, m); }
static void quantise_512(const double *v, size_t m, float s, int8_t *q) { quantise_scalar(v, m, s, q); }
static void normals_512(const synth_job *j, uint64_t n0, double *out, size_t m) { values_scalar(j, n0, out, m); }
static int have_512(void) { return 0; }
#endif

static void values(const synth_job *j, uint64_t n0, double *out, size_t m)
{
    if (j->st->dist == NESIM_SYNTH_NORMAL && j->fast)
        normals_512(j, n0, out, m);
    else
        values_scalar(j, n0, out, m);
}

enum { CHUNK = 1024 };

static void synth_part(void *ctx, int k, int n)
{
    const synth_job *j = ctx;
    size_t lo, hi;
    nesim_par_split(j->ngroups, 1, k, n, &lo, &hi);
    lo += j->g0, hi += j->g0;
    double tmp[CHUNK];
    if (!j->q8) {
        float *f = j->out;
        for (size_t i = lo * j->group, e = hi * j->group; i < e; i += CHUNK) {
            size_t m = e - i < CHUNK ? e - i : CHUNK;
            values(j, i, tmp, m);
            for (size_t r = 0; r < m; r++)
                f[i + r] = (float)tmp[r];
        }
        return;
    }
    int8_t *q = j->out;
    for (size_t g = lo; g < hi; g++) {
        const size_t base = g * j->group;
        double mx = 0;
        /* a group longer than tmp is made twice: once for its max, once to quantise */
        for (size_t c = 0; c < j->group; c += CHUNK) {
            size_t m = j->group - c < CHUNK ? j->group - c : CHUNK;
            values(j, base + c, tmp, m);
            double a = j->fast ? absmax_512(tmp, m) : absmax_scalar(tmp, m);
            mx = a > mx ? a : mx;
        }
        float s = mx > 0 ? (float)(mx / 127.0) : 1.0f;
        j->scales[g] = s;
        for (size_t c = 0; c < j->group; c += CHUNK) {
            size_t m = j->group - c < CHUNK ? j->group - c : CHUNK;
            if (j->group > CHUNK)
                values(j, base + c, tmp, m);
            (j->fast ? quantise_512 : quantise_scalar)(tmp, m, s, q + base + c);
        }
    }
}

void nesim_synth_quantise(const double *v, size_t m, float s, int8_t *q, int scalar)
{
    (!scalar && have_512() ? quantise_512 : quantise_scalar)(v, m, s, q);
}

int nesim_synth_generate(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, void **buf,
                         nesim_tensor *scales, void **scales_buf, nesim_error *err)
{
    return nesim_synth_generate_on(st, what, 0, t, buf, scales, scales_buf, err);
}

int nesim_synth_describe(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, nesim_tensor *scales,
                         nesim_error *err)
{
    memset(t, 0, sizeof *t);
    memset(scales, 0, sizeof *scales);
    if (st->kind != NESIM_TSRC_SYNTHETIC || st->ndim < 1 || st->ndim > 8)
        return nesim_fail(err, NESIM_EINVAL, "%s: not a synthetic tensor", what);
    size_t count = 1;
    for (int i = 0; i < st->ndim; i++) {
        if (st->shape[i] < 1 || count > ((size_t)1 << 40) / (size_t)st->shape[i])
            return nesim_fail(err, NESIM_EINVAL, "%s: bad synthetic shape", what);
        count *= (size_t)st->shape[i];
        t->shape[i] = st->shape[i];
    }
    t->ndim = st->ndim;
    t->count = count;
    size_t last = (size_t)st->shape[st->ndim - 1], rows = count / last;
    size_t group = st->group > 0 ? (size_t)st->group : last;
    if (st->quantize == NESIM_QUANT_INT8) {
        if (last % group)
            return nesim_fail(err, NESIM_EINVAL, "%s: group %zu does not divide %zu", what, group, last);
        t->dtype = NESIM_I8;
        scales->dtype = NESIM_F32;
        scales->ndim = 2;
        scales->shape[0] = (int64_t)rows;
        scales->shape[1] = (int64_t)(last / group);
        scales->count = rows * (last / group);
        scales->nbytes = scales->count * sizeof(float);
    } else {
        t->dtype = NESIM_F32;
    }
    t->nbytes = count * nesim_dtype_size(t->dtype);
    return NESIM_OK;
}

static int generate(const nesim_spec_tensor *st, const char *what, int scalar, size_t row_lo, size_t row_hi,
                    nesim_tensor *t, void **buf, nesim_tensor *scales, void **scales_buf, nesim_error *err);

int nesim_synth_generate_on(const nesim_spec_tensor *st, const char *what, int scalar, nesim_tensor *t, void **buf,
                            nesim_tensor *scales, void **scales_buf, nesim_error *err)
{
    return generate(st, what, scalar, 0, SIZE_MAX, t, buf, scales, scales_buf, err);
}

int nesim_synth_generate_rows(const nesim_spec_tensor *st, const char *what, size_t row_lo, size_t row_hi,
                              nesim_tensor *t, void **buf, nesim_tensor *scales, void **scales_buf, nesim_error *err)
{
    return generate(st, what, 0, row_lo, row_hi, t, buf, scales, scales_buf, err);
}

/* Rows [row_lo, row_hi) of the tensor described in t (and scales) into
 * t->data (and scales->data): every core helps. */
static int fill(const nesim_spec_tensor *st, const char *what, int scalar, size_t row_lo, size_t row_hi,
                nesim_tensor *t, nesim_tensor *scales, nesim_error *err)
{
    size_t count = t->count, last = (size_t)st->shape[st->ndim - 1], rows = count / last;
    int q8 = st->quantize == NESIM_QUANT_INT8;
    size_t group = q8 && st->group > 0 ? (size_t)st->group : last; /* float values split by rows */
    if (row_hi > rows)
        row_hi = rows;
    if (row_lo > row_hi)
        row_lo = row_hi;
    double *icdf = malloc((ICDF_N + 1) * sizeof *icdf);
    if (!icdf)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", what);
    for (size_t k = 0; k <= ICDF_N; k++)
        icdf[k] = gsl_cdf_ugaussian_Pinv(ICDF_LO + (1 - 2 * ICDF_LO) * (double)k / ICDF_N);
    const size_t gpr = last / group; /* groups per row */
    synth_job j = {st, nesim_mix64(st->seed ^ 0x73796e7468ull /* "synth" */), group, (row_hi - row_lo) * gpr,
                   row_lo * gpr, q8, (void *)t->data, q8 ? (float *)scales->data : NULL, icdf, !scalar && have_512()};
    /* the values do not depend on the split: every core helps */
    int threads = nesim_par_cores();
    if ((row_hi - row_lo) * last < ((size_t)1 << 20))
        threads = 1;
    nesim_par_run(threads, synth_part, &j);
    free(icdf);
    return NESIM_OK;
}

int nesim_synth_fill(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, nesim_tensor *scales,
                     nesim_error *err)
{
    if (!t->data || (st->quantize == NESIM_QUANT_INT8 && !scales->data))
        return nesim_fail(err, NESIM_EINTERNAL, "%s: no buffer to fill", what);
    return fill(st, what, 0, 0, SIZE_MAX, t, scales, err);
}

static int generate(const nesim_spec_tensor *st, const char *what, int scalar, size_t row_lo, size_t row_hi,
                    nesim_tensor *t, void **buf, nesim_tensor *scales, void **scales_buf, nesim_error *err)
{
    *buf = *scales_buf = NULL;
    int rc = nesim_synth_describe(st, what, t, scales, err);
    if (rc)
        return rc;
    int q8 = st->quantize == NESIM_QUANT_INT8;
    *buf = nesim_alloc_big(t->nbytes);
    /* rows outside the range are never read: left untouched, so their pages
     * are never made resident (the scales, small, are zeroed) */
    float *sc = q8 ? calloc(scales->count, sizeof(float)) : NULL;
    if (!*buf || (q8 && !sc)) {
        free(*buf);
        free(sc);
        *buf = NULL;
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory for %zu synthetic values", what, t->count);
    }
    t->data = *buf;
    if (q8)
        scales->data = sc;
    if ((rc = fill(st, what, scalar, row_lo, row_hi, t, scales, err))) {
        free(*buf);
        free(sc);
        *buf = NULL;
        t->data = scales->data = NULL;
        return rc;
    }
    *scales_buf = sc;
    return NESIM_OK;
}
