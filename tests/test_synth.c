/* test_synth.c — synthetic tensors (net/synth.h) against GSL's statistics.
 *
 * Oracles from outside the generator: GSL's normal CDF (a Kolmogorov distance
 * over a million values), gsl_stats mean and sd, the normal tail mass, and
 * the quantisation rule recomputed here from the float values. The
 * counter-based property is checked directly: a value depends on (seed, flat
 * index) only, so a larger tensor starts with a smaller one's values. */
#include "tests/support/check.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/synth.h"

static nesim_spec_tensor spec_of(nesim_synth_dist d, double a, double b, uint64_t seed, int64_t rows, int64_t cols)
{
    nesim_spec_tensor st;
    memset(&st, 0, sizeof st);
    st.kind = NESIM_TSRC_SYNTHETIC;
    st.dist = d;
    st.a = a;
    st.b = b;
    st.seed = seed;
    st.ndim = 2;
    st.shape[0] = rows;
    st.shape[1] = cols;
    return st;
}

typedef struct made {
    nesim_tensor t, s;
    void *buf, *sbuf;
} made;

static void make(const nesim_spec_tensor *st, made *m)
{
    nesim_error err = {0};
    assert_ok(nesim_synth_generate(st, "test", &m->t, &m->buf, &m->s, &m->sbuf, &err), &err);
}

static void unmake(made *m)
{
    free(m->buf);
    free(m->sbuf);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_normal_is_normal(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    nesim_spec_tensor st = spec_of(NESIM_SYNTH_NORMAL, 0.1, 0.02, 7, 1024, N / 1024);
    made m;
    make(&st, &m);
    assert_int_equal(m.t.dtype, NESIM_F32);
    double *v = malloc(N * sizeof *v);
    assert_non_null(v);
    const float *f = m.t.data;
    size_t tail = 0;
    for (size_t i = 0; i < N; i++) {
        v[i] = f[i];
        tail += fabs(v[i] - 0.1) > 3 * 0.02;
    }
    double mean = gsl_stats_mean(v, 1, N), sd = gsl_stats_sd(v, 1, N);
    assert_true(fabs(mean - 0.1) < 4 * 0.02 / sqrt(N));
    assert_true(fabs(sd / 0.02 - 1) < 0.005);
    /* P(|z| > 3) = 0.0027: 2831 expected, sd ~53 */
    assert_in_range(tail, 2831 - 300, 2831 + 300);
    qsort(v, N, sizeof *v, cmp_d);
    double ks = 0;
    for (size_t i = 0; i < N; i++) {
        double F = gsl_cdf_gaussian_P(v[i] - 0.1, 0.02);
        ks = fmax(ks, fmax(fabs(F - (double)i / N), fabs(F - (double)(i + 1) / N)));
    }
    /* the 0.1 % critical value of the KS statistic is 1.95 / sqrt(N) = 0.0019 */
    if (!(ks < 0.0019))
        fail_msg("Kolmogorov distance %g to N(0.1, 0.02)", ks);
    free(v);
    unmake(&m);
}

static void test_counter_based(void **state)
{
    (void)state;
    /* float: a 3-row tensor starts with the 1-row tensor of the same seed */
    nesim_spec_tensor a = spec_of(NESIM_SYNTH_NORMAL, 0, 1, 11, 1, 1000), b = spec_of(NESIM_SYNTH_NORMAL, 0, 1, 11, 3, 1000),
                      c = spec_of(NESIM_SYNTH_NORMAL, 0, 1, 12, 1, 1000);
    made ma, mb, mc;
    make(&a, &ma);
    make(&b, &mb);
    make(&c, &mc);
    assert_memory_equal(ma.t.data, mb.t.data, 1000 * sizeof(float));
    assert_true(memcmp(ma.t.data, mc.t.data, 1000 * sizeof(float)) != 0); /* another seed, other values */
    unmake(&ma), unmake(&mb), unmake(&mc);
    /* int8: groups are made on their own, so the same rows quantise the same */
    nesim_spec_tensor q1 = spec_of(NESIM_SYNTH_NORMAL, 0, 0.02, 5, 2, 256), q2 = spec_of(NESIM_SYNTH_NORMAL, 0, 0.02, 5, 600, 256);
    q1.quantize = q2.quantize = NESIM_QUANT_INT8;
    q1.group = q2.group = 128;
    make(&q1, &ma);
    make(&q2, &mb);
    assert_memory_equal(ma.t.data, mb.t.data, 2 * 256);
    assert_memory_equal(ma.s.data, mb.s.data, 4 * sizeof(float));
    unmake(&ma), unmake(&mb);
}

/* int8 groups: scale = max|w| / 127 of the group's values, q = round-half-even(w / scale) */
static void test_int8_groups(void **state)
{
    (void)state;
    nesim_spec_tensor f = spec_of(NESIM_SYNTH_NORMAL, 0, 0.02, 9, 300, 384), q = f;
    q.quantize = NESIM_QUANT_INT8;
    q.group = 128;
    made mf, mq;
    make(&f, &mf);
    make(&q, &mq);
    assert_int_equal(mq.t.dtype, NESIM_I8);
    assert_int_equal(mq.s.shape[0], 300);
    assert_int_equal(mq.s.shape[1], 3);
    const float *w = mf.t.data, *s = mq.s.data;
    const int8_t *qq = mq.t.data;
    for (size_t g = 0; g < 900; g++) {
        int top = 0;
        double mx = 0;
        for (size_t i = 0; i < 128; i++)
            mx = fmax(mx, fabs(w[g * 128 + i]));
        /* the float copy is the double value rounded: the scale agrees to float rounding */
        assert_true(fabs(s[g] - mx / 127) <= 1e-6 * mx / 127);
        for (size_t i = 0; i < 128; i++) {
            int v = qq[g * 128 + i];
            top |= v == 127 || v == -127;
            assert_true(fabs(v * (double)s[g] - w[g * 128 + i]) <= 0.5 * s[g] * (1 + 1e-5));
        }
        assert_true(top); /* the largest value of a group is +-127 */
    }
    unmake(&mf), unmake(&mq);
}

static void test_uniform_and_const(void **state)
{
    (void)state;
    enum { N = 1 << 18 };
    nesim_spec_tensor u = spec_of(NESIM_SYNTH_UNIFORM, -1, 3, 2, 256, N / 256), c = spec_of(NESIM_SYNTH_CONST, 0.5, 0, 0, 2, 10);
    made mu, mc;
    make(&u, &mu);
    make(&c, &mc);
    const float *f = mu.t.data;
    double sum = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(f[i] >= -1 && f[i] <= 3);
        sum += f[i];
    }
    /* mean 1, sd of the mean 4 / sqrt(12 N) */
    assert_true(fabs(sum / N - 1) < 5 * 4 / sqrt(12.0 * N));
    for (size_t i = 0; i < 20; i++)
        assert_true(((const float *)mc.t.data)[i] == 0.5f);
    unmake(&mu), unmake(&mc);
}

/* The vector path (AVX-512 where this CPU has it) and the scalar one give
 * the same bits, tails included (a million values reach |z| > 3 often). */
static void test_paths_agree(void **state)
{
    (void)state;
    nesim_spec_tensor f = spec_of(NESIM_SYNTH_NORMAL, -0.3, 1.5, 21, 1000, 1003), q = spec_of(NESIM_SYNTH_NORMAL, 0, 0.02, 4, 700, 1024);
    q.quantize = NESIM_QUANT_INT8;
    q.group = 128;
    const nesim_spec_tensor *sts[2] = {&f, &q};
    for (int k = 0; k < 2; k++) {
        made a, b;
        nesim_error err = {0};
        assert_ok(nesim_synth_generate_on(sts[k], "test", 0, &a.t, &a.buf, &a.s, &a.sbuf, &err), &err);
        assert_ok(nesim_synth_generate_on(sts[k], "test", 1, &b.t, &b.buf, &b.s, &b.sbuf, &err), &err);
        assert_memory_equal(a.t.data, b.t.data, a.t.nbytes);
        if (k)
            assert_memory_equal(a.s.data, b.s.data, a.s.nbytes);
        unmake(&a), unmake(&b);
    }
}

/* Quantisation rounds v / s: the vector path's shortcut (a product with
 * 1 / s, divided only near a half-integer) must round exactly like the
 * division at, and one or two units in the last place around, every
 * half-integer and integer of the range, for scales of many mantissas. */
static void test_quantise_ties(void **state)
{
    (void)state;
    enum { M = 8 * 1024 };
    static double v[M];
    static int8_t qa[M], qb[M];
    const float scales[] = {1.0f, 0.0001574803f, 3.0e-4f, 7.77e-5f, 1.2345678f, 0.1f, 2.5e-7f};
    size_t n = 0, differ = 0;
    for (size_t si = 0; si < sizeof scales / sizeof *scales; si++) {
        const double s = scales[si];
        n = 0;
        for (int k = -255; k <= 255 && n + 10 <= M; k++) {
            double x = 0.5 * k, c = x * s; /* x * s rounded: v / s near x */
            double d[5] = {c, nextafter(c, INFINITY), nextafter(c, -INFINITY),
                           nextafter(nextafter(c, INFINITY), INFINITY), nextafter(nextafter(c, -INFINITY), -INFINITY)};
            for (int e = 0; e < 5; e++)
                v[n++] = d[e];
        }
        nesim_synth_quantise(v, n, (float)s, qa, 1);
        nesim_synth_quantise(v, n, (float)s, qb, 0);
        for (size_t i = 0; i < n; i++) {
            double x = v[i] / (float)s, r = nearbyint(x); /* the reference: round-half-even of the quotient */
            r = r > 127 ? 127 : r < -127 ? -127 : r;
            assert_int_equal(qa[i], (int)r);
            differ += qb[i] != qa[i];
        }
    }
    assert_int_equal(differ, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_is_normal),
        cmocka_unit_test(test_counter_based),
        cmocka_unit_test(test_int8_groups),
        cmocka_unit_test(test_uniform_and_const),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_quantise_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
