/* test_coder.c — spike coder: names, thresholds, counts, steps, exact trains. */
#include "tests/support/check.h"

#include <string.h>

#include "neurons/coder.h"

#define NC 5
static const nesim_coding all[NC] = {NESIM_CODE_BINARY, NESIM_CODE_TERNARY, NESIM_CODE_BITWISE,
                                     NESIM_CODE_BITWISE_BIDIR, NESIM_CODE_BITWISE_TWOS};
#define P2(k) (INT64_C(1) << (k))

static void test_names(void **state)
{
    static const char *const want[NC] = {"binary", "ternary", "bitwise", "bitwise-bidirectional",
                                         "bitwise-twos-complement"};
    for (int i = 0; i < NC; i++) {
        nesim_coding c = (nesim_coding)99;
        nesim_error err = {0};
        assert_ok(nesim_coding_parse(want[i], &c, &err), &err);
        assert_int_equal(c, all[i]);
        assert_string_equal(nesim_coding_name(all[i]), want[i]);
    }
    static const char *const bad[] = {"", "Binary", "bitwise-bidir", "twos", "binary ", "bitwise-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nesim_coding c = NESIM_CODE_TERNARY;
        nesim_error err = {0};
        assert_int_equal(nesim_coding_parse(bad[i], &c, &err), NESIM_EINVAL);
        assert_int_equal(err.code, NESIM_EINVAL);
        assert_non_null(strstr(err.msg, "unknown spike coding"));
        assert_int_equal(c, NESIM_CODE_TERNARY); /* untouched */
    }
    nesim_coding c;
    assert_int_equal(nesim_coding_parse(NULL, &c, NULL), NESIM_EINVAL);
    assert_string_equal(nesim_coding_name((nesim_coding)99), "invalid");
}

static void test_vth(void **state)
{
    float zero[4] = {0, 0, 0, 0};
    assert_true(nesim_vth_adaptive(zero, 4, 3.0) == 1e-5);
    assert_true(nesim_vth_adaptive(zero, 0, 3.0) == 1e-5);
    assert_true(nesim_vth_adaptive(NULL, 0, 3.0) == 1e-5);
    float tiny[2] = {1e-6f, -1e-6f};
    assert_true(nesim_vth_adaptive(tiny, 2, 3.0) == 1e-5);
    float small[1] = {1.5e-5f}; /* 5e-6: just below the floor */
    assert_true(nesim_vth_adaptive(small, 1, 3.0) == 1e-5);
    double low[1] = {3.3e-5}; /* 1.1e-5: just above the floor, kept */
    assert_true(nesim_vth_adaptive_d(low, 1, 3.0) == 3.3e-5 / 1.0 / 3.0);
    float huge[3] = {1e30f, -1e30f, 3e38f};
    assert_true(nesim_vth_adaptive(huge, 3, 3.0) == 1e4);
    float inf[2] = {1.0f, -INFINITY};
    assert_true(nesim_vth_adaptive(inf, 2, 3.0) == 1e4);

    /* mean(|x|) = 3, k = 3: exactly 1 */
    float row[4] = {1, -2, 3, -6};
    assert_true(nesim_vth_adaptive(row, 4, 3.0) == 1.0);
    assert_true(nesim_vth_adaptive(row, 4, 1.5) == 2.0);
    double rowd[4] = {1, -2, 3, -6};
    assert_true(nesim_vth_adaptive_d(rowd, 4, 3.0) == 1.0);
    double top = 1e4 * 3 * 4; /* mean 3e4 / 3 = 1e4, exactly at the clamp */
    double edge[4] = {top, 0, 0, 0};
    assert_true(nesim_vth_adaptive_d(edge, 4, 3.0) == 1e4);
    double above[4] = {top * 2, 0, 0, 0};
    assert_true(nesim_vth_adaptive_d(above, 4, 3.0) == 1e4);

    /* Index order: 1 + 2^-53 rounds back to 1 (tie to even) twice, so the sum is
     * exactly 1; summing the small terms first would give 1 + 2^-52. */
    float ordf[3] = {1.0f, 0x1p-53f, -0x1p-53f};
    assert_true(nesim_vth_adaptive(ordf, 3, 1.0) == 1.0 / 3.0);
    double ordd[3] = {1.0, 0x1p-53, -0x1p-53};
    assert_true(nesim_vth_adaptive_d(ordd, 3, 1.0) == 1.0 / 3.0);
    double ordr[3] = {0x1p-53, -0x1p-53, 1.0};
    assert_true(nesim_vth_adaptive_d(ordr, 3, 1.0) == (1.0 + 0x1p-52) / 3.0);

    /* Faults propagate as NaN rather than being clamped away. */
    float nanrow[3] = {1, NAN, 2};
    assert_true(isnan(nesim_vth_adaptive(nanrow, 3, 3.0)));
    assert_true(isnan(nesim_vth_adaptive(row, 4, 0.0)));
    assert_true(isnan(nesim_vth_adaptive(row, 4, -3.0)));
    assert_true(isnan(nesim_vth_adaptive(row, 4, NAN)));
    assert_true(isnan(nesim_vth_adaptive_d(rowd, 4, INFINITY)));
    assert_true(isnan(nesim_vth_adaptive(zero, 4, 0.0)));
}

static void test_count_rounding(void **state)
{
    static const struct {
        double x, vth;
        int64_t n;
    } cases[] = {
        {0.5, 1, 0},    {1.5, 1, 2},    {2.5, 1, 2},   {3.5, 1, 4},    {-0.5, 1, 0},
        {-1.5, 1, -2},  {-2.5, 1, -2},  {-3.5, 1, -4}, {0.49999999999999994, 1, 0},
        {0.5000000000000001, 1, 1},     {2.6, 1, 3},   {-2.6, 1, -3},  {0, 1, 0},
        {-0.0, 1, 0},   {0.75, 0.5, 2}, {1.25, 0.5, 2}, {7, 1, 7},     {-5, 1, -5},
        {1e6, 1, 1000000}, /* no upper clamp below 2^53 */
        {12.0, 3.0, 4}, {300.4, 1, 300},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n = nesim_spike_count(cases[i].x, cases[i].vth);
        if (n != cases[i].n)
            fail_msg("count(%.17g, %g) = %lld, want %lld", cases[i].x, cases[i].vth, (long long)n,
                     (long long)cases[i].n);
        int64_t m = -77;
        nesim_error err = {0};
        assert_ok(nesim_spike_count_checked(cases[i].x, cases[i].vth, &m, &err), &err);
        assert_int_equal(m, cases[i].n);
    }
}

static void test_count_saturation(void **state)
{
    const int64_t lim = P2(53);
    assert_int_equal(NESIM_COUNT_MAX, lim);
    assert_int_equal(nesim_spike_count(1e300, 1e-5), lim);
    assert_int_equal(nesim_spike_count(-1e300, 1e-5), -lim);
    assert_int_equal(nesim_spike_count(INFINITY, 1), lim);
    assert_int_equal(nesim_spike_count(-INFINITY, 1), -lim);
    assert_int_equal(nesim_spike_count(NAN, 1), 0);
    assert_int_equal(nesim_spike_count(1, NAN), 0);
    assert_int_equal(nesim_spike_count(0x1p53 - 1, 1), lim - 1);

    nesim_error err = {0};
    int64_t n = 0;
    /* exactly 2^53 is representable, not saturated */
    assert_ok(nesim_spike_count_checked(0x1p53, 1, &n, &err), &err);
    assert_int_equal(n, lim);
    assert_ok(nesim_spike_count_checked(-0x1p53, 1, &n, &err), &err);
    assert_int_equal(n, -lim);
    assert_int_equal(nesim_spike_count_checked(0x1p53 + 2, 1, &n, &err), NESIM_EINVAL);
    assert_int_equal(n, lim);
    assert_non_null(strstr(err.msg, "saturates"));
    memset(&err, 0, sizeof err);
    assert_int_equal(nesim_spike_count_checked(-1e300, 1e-5, &n, &err), NESIM_EINVAL);
    assert_int_equal(n, -lim);
    assert_int_equal(err.code, NESIM_EINVAL);
}

static void test_count_rejects(void **state)
{
    static const struct {
        double x, vth;
    } bad[] = {
        {NAN, 1}, {INFINITY, 1}, {-INFINITY, 1}, {1, NAN}, {1, INFINITY},
        {1, 0},   {1, -1},       {0, 0},         {0, -INFINITY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nesim_error err = {0};
        int64_t n = -77;
        if (nesim_spike_count_checked(bad[i].x, bad[i].vth, &n, &err) != NESIM_EINVAL)
            fail_msg("checked count accepted x=%g vth=%g", bad[i].x, bad[i].vth);
        assert_int_equal(err.code, NESIM_EINVAL);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(n, nesim_spike_count(bad[i].x, bad[i].vth));
        /* The message names the faulty operand, not a saturation. */
        const char *what = isfinite(bad[i].x) ? "threshold" : "activation";
        if (!strstr(err.msg, what))
            fail_msg("x=%g vth=%g: message '%s' lacks '%s'", bad[i].x, bad[i].vth, err.msg, what);
    }
    int64_t n;
    assert_int_equal(nesim_spike_count_checked(NAN, 1, &n, NULL), NESIM_EINVAL);
    assert_int_equal(n, 0);
}

static void test_representable(void **state)
{
    static const int64_t ns[] = {-300, -5, -1, 0, 1, 5, 256, P2(53), -P2(53)};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        int64_t n = ns[i], pos = n < 0 ? 0 : n;
        assert_int_equal(nesim_coding_representable(NESIM_CODE_BINARY, n), pos);
        assert_int_equal(nesim_coding_representable(NESIM_CODE_BITWISE, n), pos);
        assert_int_equal(nesim_coding_representable(NESIM_CODE_TERNARY, n), n);
        assert_int_equal(nesim_coding_representable(NESIM_CODE_BITWISE_BIDIR, n), n);
        assert_int_equal(nesim_coding_representable(NESIM_CODE_BITWISE_TWOS, n), n);
    }
}

static void test_steps(void **state)
{
    static const struct {
        int64_t M, bits, twos;
    } cases[] = {
        {0, 1, 2},     {1, 1, 2},     {2, 2, 3},     {3, 2, 3},     {4, 3, 4},
        {7, 3, 4},     {8, 4, 5},     {255, 8, 9},   {256, 9, 10},  {P2(40), 41, 42},
        {P2(40) - 1, 40, 41},         {P2(53), 54, 55},             {P2(53) - 1, 53, 54},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t M = cases[i].M;
        assert_int_equal(nesim_coding_steps(NESIM_CODE_BINARY, M), M);
        assert_int_equal(nesim_coding_steps(NESIM_CODE_TERNARY, M), M);
        assert_int_equal(nesim_coding_steps(NESIM_CODE_BITWISE, M), cases[i].bits);
        assert_int_equal(nesim_coding_steps(NESIM_CODE_BITWISE_BIDIR, M), cases[i].bits);
        assert_int_equal(nesim_coding_steps(NESIM_CODE_BITWISE_TWOS, M), cases[i].twos);
    }
    for (int i = 0; i < NC; i++) {
        assert_int_equal(nesim_coding_steps(all[i], -1), -1);
        assert_int_equal(nesim_coding_steps(all[i], INT64_MIN), -1);
        assert_int_equal(nesim_coding_steps(all[i], P2(53) + 1), -1);
        assert_int_equal(nesim_coding_steps(all[i], INT64_MAX), -1);
    }
    assert_int_equal(nesim_coding_steps((nesim_coding)99, 3), -1);
}

/* The exact trains, written out. M is the tensor's largest magnitude. */
static void test_exact_trains(void **state)
{
    enum { B = NESIM_CODE_BINARY, TE = NESIM_CODE_TERNARY, BW = NESIM_CODE_BITWISE,
           BD = NESIM_CODE_BITWISE_BIDIR, TW = NESIM_CODE_BITWISE_TWOS };
    static const struct {
        int c;
        int64_t n, M, T;
        int8_t s[12];
    } cases[] = {
        {B, 0, 0, 0, {0}},
        {B, 1, 1, 1, {1}},
        {B, 5, 5, 5, {1, 1, 1, 1, 1}},
        {B, 3, 5, 5, {1, 1, 1, 0, 0}},
        {B, -5, 0, 0, {0}},
        {B, -5, 5, 5, {0, 0, 0, 0, 0}},
        {B, 7, 8, 8, {1, 1, 1, 1, 1, 1, 1, 0}},
        {TE, 0, 3, 3, {0, 0, 0}},
        {TE, 1, 1, 1, {1}},
        {TE, 5, 5, 5, {1, 1, 1, 1, 1}},
        {TE, -5, 5, 5, {-1, -1, -1, -1, -1}},
        {TE, -2, 4, 4, {-1, -1, 0, 0}},
        {TE, 8, 8, 8, {1, 1, 1, 1, 1, 1, 1, 1}},
        {BW, 0, 0, 1, {0}},
        {BW, 1, 1, 1, {1}},
        {BW, 5, 5, 3, {1, 0, 1}},
        {BW, -5, 0, 1, {0}},
        {BW, -5, 5, 3, {0, 0, 0}},
        {BW, 7, 7, 3, {1, 1, 1}},
        {BW, 8, 8, 4, {1, 0, 0, 0}},
        {BW, 5, 8, 4, {0, 1, 0, 1}},
        {BW, 6, 6, 3, {1, 1, 0}},
        {BW, 256, 256, 9, {1, 0, 0, 0, 0, 0, 0, 0, 0}},
        {BW, 255, 256, 9, {0, 1, 1, 1, 1, 1, 1, 1, 1}},
        {BD, 0, 0, 1, {0}},
        {BD, 1, 1, 1, {1}},
        {BD, -1, 1, 1, {-1}},
        {BD, 5, 5, 3, {1, 0, 1}},
        {BD, -5, 5, 3, {-1, 0, -1}},
        {BD, -5, 8, 4, {0, -1, 0, -1}},
        {BD, 7, 7, 3, {1, 1, 1}},
        {BD, -7, 7, 3, {-1, -1, -1}},
        {BD, 8, 8, 4, {1, 0, 0, 0}},
        {BD, -8, 8, 4, {-1, 0, 0, 0}},
        {BD, 256, 256, 9, {1, 0, 0, 0, 0, 0, 0, 0, 0}},
        {BD, -256, 256, 9, {-1, 0, 0, 0, 0, 0, 0, 0, 0}},
        {BD, -300, 300, 9, {-1, 0, 0, -1, 0, -1, -1, 0, 0}},
        {TW, 0, 0, 2, {0, 0}},
        {TW, 1, 1, 2, {0, 1}},
        {TW, -1, 1, 2, {-1, 1}},                   /* 11: -2 + 1 */
        {TW, 5, 5, 4, {0, 1, 0, 1}},
        {TW, -5, 5, 4, {-1, 0, 1, 1}},             /* 1011 = 11: -8 + 2 + 1 */
        {TW, -5, 8, 5, {-1, 1, 0, 1, 1}},          /* 11011: -16 + 8 + 2 + 1 */
        {TW, 7, 7, 4, {0, 1, 1, 1}},
        {TW, -7, 7, 4, {-1, 0, 0, 1}},             /* 1001: -8 + 1 */
        {TW, 8, 8, 5, {0, 1, 0, 0, 0}},
        {TW, -8, 8, 5, {-1, 1, 0, 0, 0}},          /* 11000: -16 + 8 */
        {TW, 256, 256, 10, {0, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
        {TW, -256, 256, 10, {-1, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
        {TW, -2, 2, 3, {-1, 1, 0}},                /* 110: -4 + 2 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nesim_coding c = (nesim_coding)cases[i].c;
        int64_t n = cases[i].n, T = cases[i].T;
        const char *nm = nesim_coding_name(c);
        int64_t got_T = nesim_coding_steps(c, cases[i].M);
        if (got_T != T)
            fail_msg("%s M=%lld: T=%lld, want %lld", nm, (long long)cases[i].M, (long long)got_T,
                     (long long)T);
        int8_t out[16];
        memset(out, 99, sizeof out);
        nesim_error err = {0};
        assert_ok(nesim_coding_train(c, n, T, out, &err), &err);
        int64_t nz = 0;
        for (int64_t t = 0; t < T; t++) {
            if (out[t] != cases[i].s[t] || nesim_coding_spike(c, n, T, t) != cases[i].s[t])
                fail_msg("%s n=%lld T=%lld: step %lld is %d, want %d", nm, (long long)n,
                         (long long)T, (long long)t, out[t], cases[i].s[t]);
            nz += cases[i].s[t] != 0;
        }
        assert_int_equal(out[T], 99); /* nothing written past T */
        assert_int_equal(nesim_coding_decode(c, T, cases[i].s), nesim_coding_representable(c, n));
        assert_int_equal(nesim_coding_spikes(c, n, T), nz);
    }
}

/* Independent spike count: bits by repeated halving, no masks or shifts. */
static int64_t ref_spikes(nesim_coding c, int64_t n, int64_t T)
{
    if ((c == NESIM_CODE_BINARY || c == NESIM_CODE_BITWISE) && n < 0)
        n = 0;
    if (c == NESIM_CODE_BINARY || c == NESIM_CODE_TERNARY)
        return n < 0 ? -n : n;
    int64_t u = n < 0 ? -n : n;
    if (c == NESIM_CODE_BITWISE_TWOS) {
        int64_t p = 1;
        for (int64_t i = 0; i < T; i++)
            p *= 2;
        u = ((n % p) + p) % p;
    }
    int64_t k = 0;
    for (; u > 0; u /= 2)
        k += u % 2;
    return k;
}

static void roundtrip(nesim_coding c, int64_t n, int64_t M)
{
    const char *nm = nesim_coding_name(c);
    int64_t r = nesim_coding_representable(c, n);
    int64_t T = nesim_coding_steps(c, M);
    assert_true(T >= 0);
    int8_t out[1024];
    assert_true(T <= (int64_t)sizeof out);
    nesim_error err = {0};
    assert_ok(nesim_coding_train(c, n, T, out, &err), &err);
    int64_t dec = nesim_coding_decode(c, T, out);
    if (dec != r)
        fail_msg("%s n=%lld M=%lld T=%lld: decode %lld, want %lld", nm, (long long)n, (long long)M,
                 (long long)T, (long long)dec, (long long)r);
    double sum = 0, nz = 0;
    for (int64_t t = 0; t < T; t++) {
        assert_true(out[t] >= -1 && out[t] <= 1);
        assert_int_equal(out[t], nesim_coding_spike(c, n, T, t));
        sum += nesim_coding_step_weight(c, T, t) * out[t];
        nz += out[t] != 0;
    }
    assert_true(sum == (double)r);
    int64_t sp = nesim_coding_spikes(c, n, T), ref = ref_spikes(c, n, T);
    if (sp != ref || sp != (int64_t)nz)
        fail_msg("%s n=%lld T=%lld: spikes %lld, reference %lld, train %g", nm, (long long)n,
                 (long long)T, (long long)sp, (long long)ref, nz);
}

static void test_roundtrip_all(void **state)
{
    for (int i = 0; i < NC; i++)
        for (int64_t n = -300; n <= 300; n++) {
            int64_t r = nesim_coding_representable(all[i], n);
            int64_t m = r < 0 ? -r : r;
            roundtrip(all[i], n, m);
            roundtrip(all[i], n, n < 0 ? -n : n);
            roundtrip(all[i], n, m + 1);
            roundtrip(all[i], n, 300);
            roundtrip(all[i], n, 1000);
        }
}

static void test_large_counts(void **state)
{
    static const int64_t ns[] = {P2(40), -P2(40), P2(40) - 1, -(P2(40) + 12345), P2(53), -P2(53),
                                 P2(53) - 1, -(P2(53) - 1)};
    for (int i = 2; i < NC; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            int64_t n = ns[j], m = n < 0 ? -n : n;
            roundtrip(all[i], n, m);
            roundtrip(all[i], n, P2(53));
        }
    /* The widest bitwise trains decode without overflow (UBSan watches). */
    int8_t ones[63], sgn[63];
    memset(ones, 1, sizeof ones);
    memcpy(sgn, ones, sizeof sgn);
    sgn[0] = -1;
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BITWISE, 63, ones), INT64_MAX);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BITWISE_TWOS, 63, sgn), -1);
    memset(ones, -1, sizeof ones);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BITWISE_BIDIR, 63, ones), -INT64_MAX);
    int8_t tr[63];
    nesim_error err = {0};
    assert_ok(nesim_coding_train(NESIM_CODE_BITWISE_TWOS, -P2(62), 63, tr, &err), &err);
    assert_int_equal(tr[0], -1);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BITWISE_TWOS, 63, tr), -P2(62));
    assert_int_equal(nesim_coding_spikes(NESIM_CODE_BITWISE_TWOS, -P2(62), 63), 1);
}

static void test_step_weight(void **state)
{
    for (int64_t t = 0; t < 7; t++) {
        assert_true(nesim_coding_step_weight(NESIM_CODE_BINARY, 7, t) == 1.0);
        assert_true(nesim_coding_step_weight(NESIM_CODE_TERNARY, 7, t) == 1.0);
    }
    static const double w4[4] = {8, 4, 2, 1};
    for (int i = 2; i < NC; i++) {
        for (int64_t t = 0; t < 4; t++)
            assert_true(nesim_coding_step_weight(all[i], 4, t) == w4[t]);
        assert_true(nesim_coding_step_weight(all[i], 55, 0) == 0x1p54);
        assert_true(nesim_coding_step_weight(all[i], 4, 4) == 0.0);
        assert_true(nesim_coding_step_weight(all[i], 4, -1) == 0.0);
        assert_true(nesim_coding_step_weight(all[i], 64, 0) == 0.0);
        assert_true(nesim_coding_step_weight(all[i], 0, 0) == 0.0);
    }
    assert_true(nesim_coding_step_weight(NESIM_CODE_BINARY, 3, 3) == 0.0);
    assert_true(nesim_coding_step_weight((nesim_coding)99, 3, 0) == 0.0);
}

static void test_invalid(void **state)
{
    int8_t out[70];
    memset(out, 99, sizeof out);
    static const struct {
        int c;
        int64_t n, T;
    } bad[] = {
        {NESIM_CODE_BINARY, 6, 5},          {NESIM_CODE_TERNARY, -6, 5},
        {NESIM_CODE_BINARY, 0, -1},         {NESIM_CODE_BITWISE, 8, 3},
        {NESIM_CODE_BITWISE, 0, 0},         {NESIM_CODE_BITWISE, 1, 64},
        {NESIM_CODE_BITWISE_BIDIR, -8, 3},  {NESIM_CODE_BITWISE_TWOS, 8, 4},
        {NESIM_CODE_BITWISE_TWOS, -9, 4},   {NESIM_CODE_BITWISE_TWOS, 0, 64},
        {NESIM_CODE_BITWISE_TWOS, 0, 0},    {99, 0, 3},
        {-1, 0, 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nesim_error err = {0};
        if (nesim_coding_train((nesim_coding)bad[i].c, bad[i].n, bad[i].T, out, &err) != NESIM_EINVAL)
            fail_msg("train accepted coding %d n=%lld T=%lld", bad[i].c, (long long)bad[i].n,
                     (long long)bad[i].T);
        assert_int_equal(err.code, NESIM_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], 99); /* untouched */

    /* Edges that do fit. */
    nesim_error err = {0};
    assert_ok(nesim_coding_train(NESIM_CODE_BINARY, 0, 0, NULL, &err), &err);
    assert_ok(nesim_coding_train(NESIM_CODE_BINARY, -9, 0, NULL, &err), &err);
    assert_ok(nesim_coding_train(NESIM_CODE_BITWISE, -9, 1, out, &err), &err);
    assert_int_equal(out[0], 0);
    int8_t m8[4];
    assert_ok(nesim_coding_train(NESIM_CODE_BITWISE_TWOS, -8, 4, m8, &err), &err);
    assert_memory_equal(m8, ((int8_t[]){-1, 0, 0, 0}), 4);
    int8_t one[1];
    assert_ok(nesim_coding_train(NESIM_CODE_BITWISE_TWOS, -1, 1, one, &err), &err);
    assert_int_equal(one[0], -1);

    /* spike(): out-of-range steps and T are silent; too-large counts truncate. */
    assert_int_equal(nesim_coding_spike(NESIM_CODE_TERNARY, -3, 3, 3), 0);
    assert_int_equal(nesim_coding_spike(NESIM_CODE_TERNARY, -3, 3, -1), 0);
    assert_int_equal(nesim_coding_spike(NESIM_CODE_BITWISE, 1, 64, 63), 0);
    assert_int_equal(nesim_coding_spike(NESIM_CODE_BITWISE, 1, 0, 0), 0);
    assert_int_equal(nesim_coding_spike((nesim_coding)99, 1, 1, 0), 0);
    assert_int_equal(nesim_coding_spike(NESIM_CODE_BINARY, 9, 2, 1), 1);
    assert_int_equal(nesim_coding_spike(NESIM_CODE_BITWISE, 9, 3, 2), 1); /* low bits of 1001 */
    assert_int_equal(nesim_coding_spike(NESIM_CODE_TERNARY, INT64_MIN, 2, 1), -1);
    assert_int_equal(nesim_coding_spikes(NESIM_CODE_TERNARY, -9, 4), 4);
    assert_int_equal(nesim_coding_spikes(NESIM_CODE_BITWISE_BIDIR, INT64_MIN, 63), 0);
    assert_int_equal(nesim_coding_spikes(NESIM_CODE_BITWISE, 5, 64), 0);

    /* decode(): each entry counts by its sign; invalid T decodes to 0. */
    int8_t junk[3] = {5, 0, -100};
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BITWISE, 3, junk), 3);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_TERNARY, 3, junk), 0);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BINARY, 2, junk), 1);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BITWISE, 0, junk), 0);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BINARY, -1, junk), 0);
    assert_int_equal(nesim_coding_decode((nesim_coding)99, 3, junk), 0);
    assert_int_equal(nesim_coding_decode(NESIM_CODE_BINARY, 0, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),         cmocka_unit_test(test_vth),
        cmocka_unit_test(test_count_rounding), cmocka_unit_test(test_count_saturation),
        cmocka_unit_test(test_count_rejects), cmocka_unit_test(test_representable),
        cmocka_unit_test(test_steps),         cmocka_unit_test(test_exact_trains),
        cmocka_unit_test(test_roundtrip_all), cmocka_unit_test(test_large_counts),
        cmocka_unit_test(test_step_weight),   cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
