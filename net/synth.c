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
    size_t count, group, ngroups;
    int q8;
    void *out;
    float *scales;
    const double *icdf; /* [ICDF_N + 1] */
} synth_job;

/* Bits of element n: splitmix64's output at position n of the stream key. */
static inline uint64_t bits_at(uint64_t key, uint64_t n) { return nesim_mix64(key + n * 0x9e3779b97f4a7c15ull); }

/* A uniform in (0, 1) from the top 53 bits: never 0 or 1. */
static inline double unit(uint64_t b) { return ((double)(int64_t)(b >> 11) + 0.5) * 0x1p-53; }

static inline double std_normal(const double *tab, double u)
{
    double p = (u - ICDF_LO) * (ICDF_N / (1 - 2 * ICDF_LO));
    if (p >= 0 && p < ICDF_N) {
        size_t k = (size_t)p;
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

static void synth_part(void *ctx, int k, int n)
{
    const synth_job *j = ctx;
    size_t lo, hi;
    nesim_par_split(j->ngroups, 1, k, n, &lo, &hi);
    if (!j->q8) {
        float *f = j->out;
        for (size_t i = lo * j->group, e = hi * j->group; i < e; i++)
            f[i] = (float)value_at(j, i);
        return;
    }
    int8_t *q = j->out;
    double tmp[1024];
    for (size_t g = lo; g < hi; g++) {
        const size_t base = g * j->group;
        double mx = 0;
        /* a group longer than tmp is made twice: once for its max, once to quantise */
        const int keep = j->group <= sizeof tmp / sizeof *tmp;
        for (size_t i = 0; i < j->group; i++) {
            double v = value_at(j, base + i);
            if (keep)
                tmp[i] = v;
            double a = fabs(v);
            mx = a > mx ? a : mx; /* finite values: no fmax call */
        }
        float s = mx > 0 ? (float)(mx / 127.0) : 1.0f;
        j->scales[g] = s;
        for (size_t i = 0; i < j->group; i++) {
            /* round half to even without a libm call: |w / s| <= 127 here, and
             * adding 1.5 * 2^52 leaves no fraction bits (default rounding mode) */
            double v = ((keep ? tmp[i] : value_at(j, base + i)) / s + 0x1.8p52) - 0x1.8p52;
            q[base + i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

int nesim_synth_generate(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, void **buf,
                         nesim_tensor *scales, void **scales_buf, nesim_error *err)
{
    memset(t, 0, sizeof *t);
    memset(scales, 0, sizeof *scales);
    *buf = *scales_buf = NULL;
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
    int q8 = st->quantize == NESIM_QUANT_INT8;
    if (q8 && last % group)
        return nesim_fail(err, NESIM_EINVAL, "%s: group %zu does not divide %zu", what, group, last);
    if (!q8)
        group = last; /* float values split by rows */
    double *icdf = malloc((ICDF_N + 1) * sizeof *icdf);
    *buf = nesim_alloc_big(count * (q8 ? 1 : sizeof(float)));
    float *sc = q8 ? malloc(rows * (last / group) * sizeof(float)) : NULL;
    if (!icdf || !*buf || (q8 && !sc)) {
        free(icdf);
        free(*buf);
        free(sc);
        *buf = NULL;
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory for %zu synthetic values", what, count);
    }
    for (size_t k = 0; k <= ICDF_N; k++)
        icdf[k] = gsl_cdf_ugaussian_Pinv(ICDF_LO + (1 - 2 * ICDF_LO) * (double)k / ICDF_N);
    synth_job j = {st, nesim_mix64(st->seed ^ 0x73796e7468ull /* "synth" */), count, group, count / group, q8,
                   *buf, sc, icdf};
    /* the values do not depend on the split: every core helps */
    int threads = nesim_par_cores();
    if (count < ((size_t)1 << 20))
        threads = 1;
    nesim_par_run(threads, synth_part, &j);
    free(icdf);
    if (!q8) {
        t->dtype = NESIM_F32;
    } else {
        t->dtype = NESIM_I8;
        scales->dtype = NESIM_F32;
        scales->ndim = 2;
        scales->shape[0] = (int64_t)rows;
        scales->shape[1] = (int64_t)(last / group);
        scales->count = rows * (last / group);
        scales->nbytes = scales->count * sizeof(float);
        scales->data = sc;
        *scales_buf = sc;
    }
    t->nbytes = count * nesim_dtype_size(t->dtype);
    t->data = *buf;
    return NESIM_OK;
}
