/* coder.c — spike coding of activations (see coder.h for the guarantees). */
#include "neurons/coder.h"

#include <math.h>
#include <string.h>

#define VTH_MIN 1e-5
#define VTH_MAX 1e4

static const char *const names[] = {
    [NESIM_CODE_BINARY] = "binary",
    [NESIM_CODE_TERNARY] = "ternary",
    [NESIM_CODE_BITWISE] = "bitwise",
    [NESIM_CODE_BITWISE_BIDIR] = "bitwise-bidirectional",
    [NESIM_CODE_BITWISE_TWOS] = "bitwise-twos-complement",
};
#define NCODINGS (sizeof names / sizeof names[0])

static int valid(nesim_coding c)
{
    /* Compared as unsigned: the enum's underlying type may be either. */
    return (unsigned)c < NCODINGS;
}

int nesim_coding_is_bitwise(nesim_coding c)
{
    return c == NESIM_CODE_BITWISE || c == NESIM_CODE_BITWISE_BIDIR || c == NESIM_CODE_BITWISE_TWOS;
}



/* T accepted by coding c; bitwise weights beyond 2^62 would overflow int64. */
static int valid_T(nesim_coding c, int64_t T)
{
    if (!valid(c))
        return 0;
    if (nesim_coding_is_bitwise(c))
        return T >= 1 && T <= NESIM_CODING_BITS_MAX;
    return T >= 0;
}

/* |n| without the overflow of -INT64_MIN. */
static uint64_t mag(int64_t n)
{
    return n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
}

/* Number of significant bits; equals ceil(log2(u + 1)) exactly, since
 * 2^(b-1) <= u < 2^b implies 2^(b-1) < u + 1 <= 2^b. */
static int bitlen(uint64_t u)
{
    int b = 0;
    for (; u; u >>= 1)
        b++;
    return b;
}

static int64_t popcount(uint64_t u)
{
    int64_t k = 0;
    for (; u; u &= u - 1)
        k++;
    return k;
}

/* Low T bits of u, for 1 <= T <= 63. */
static uint64_t low_bits(uint64_t u, int64_t T)
{
    return u & ((UINT64_C(1) << T) - 1);
}

int nesim_coding_parse(const char *name, nesim_coding *out, nesim_error *err)
{
    for (size_t i = 0; name && i < NCODINGS; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (nesim_coding)i;
            return NESIM_OK;
        }
    return nesim_fail(err, NESIM_EINVAL,
                      "unknown spike coding '%s' (expected binary, ternary, bitwise, "
                      "bitwise-bidirectional or bitwise-twos-complement)",
                      name ? name : "(null)");
}

const char *nesim_coding_name(nesim_coding c)
{
    return valid(c) ? names[c] : "invalid";
}

static double clamp_vth(double sum, size_t n, double k)
{
    /* A bad k is a configuration error: NaN makes every checked count fail. */
    if (!(k > 0) || isinf(k))
        return NAN;
    double v = n ? sum / (double)n / k : 0.0;
    /* Comparisons (not fmin/fmax) so that NaN passes through to be rejected. */
    if (v < VTH_MIN)
        return VTH_MIN;
    if (v > VTH_MAX)
        return VTH_MAX;
    return v;
}

double nesim_vth_adaptive(const float *x, size_t n, double k)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)x[i]);
    return clamp_vth(s, n, k);
}

double nesim_vth_adaptive_d(const double *x, size_t n, double k)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs(x[i]);
    return clamp_vth(s, n, k);
}

int64_t nesim_spike_count(double x, double vth)
{
    const double lim = (double)NESIM_COUNT_MAX;
    double q = x / vth;
    /* Converting NaN or an out-of-range double to int64 is undefined: test first.
     * 2^53 is exact, and nothing <= 2^53 rounds above it. */
    if (isnan(q))
        return 0;
    if (q >= lim)
        return NESIM_COUNT_MAX;
    if (q <= -lim)
        return -NESIM_COUNT_MAX;
    return (int64_t)nearbyint(q);
}

int nesim_spike_count_checked(double x, double vth, int64_t *out, nesim_error *err)
{
    *out = nesim_spike_count(x, vth);
    if (!isfinite(x))
        return nesim_fail(err, NESIM_EINVAL, "spike count: activation is %g", x);
    if (!isfinite(vth) || !(vth > 0))
        return nesim_fail(err, NESIM_EINVAL, "spike count: threshold %g is not positive and finite",
                          vth);
    if (fabs(x / vth) > (double)NESIM_COUNT_MAX)
        return nesim_fail(err, NESIM_EINVAL, "spike count: %g / %g saturates at 2^53", x, vth);
    return NESIM_OK;
}

int64_t nesim_coding_representable(nesim_coding c, int64_t n)
{
    if ((c == NESIM_CODE_BINARY || c == NESIM_CODE_BITWISE) && n < 0)
        return 0;
    return n;
}

int64_t nesim_coding_steps(nesim_coding c, int64_t M)
{
    if (!valid(c) || M < 0 || M > NESIM_COUNT_MAX)
        return -1;
    int64_t b = bitlen((uint64_t)M);
    switch (c) {
    case NESIM_CODE_BINARY:
    case NESIM_CODE_TERNARY:
        return M;
    case NESIM_CODE_BITWISE:
    case NESIM_CODE_BITWISE_BIDIR:
        return b > 1 ? b : 1;
    case NESIM_CODE_BITWISE_TWOS:
        /* One more bit for the sign, so both -M and +M fit. */
        return b + 1 > 2 ? b + 1 : 2;
    }
    return -1;
}

int nesim_coding_spike(nesim_coding c, int64_t n, int64_t T, int64_t t)
{
    if (!valid_T(c, T) || t < 0 || t >= T)
        return 0;
    n = nesim_coding_representable(c, n);
    int sgn = (n > 0) - (n < 0);
    switch (c) {
    case NESIM_CODE_BINARY:
    case NESIM_CODE_TERNARY:
        return (uint64_t)t < mag(n) ? sgn : 0;
    case NESIM_CODE_BITWISE:
    case NESIM_CODE_BITWISE_BIDIR:
        return (int)((mag(n) >> (T - 1 - t)) & 1) * sgn;
    case NESIM_CODE_BITWISE_TWOS: {
        int bit = (int)((low_bits((uint64_t)n, T) >> (T - 1 - t)) & 1);
        /* The sign bit is worth -2^(T-1): send it negated so every step keeps
         * the plain weight 2^(T-1-t). */
        return t == 0 ? -bit : bit;
    }
    }
    return 0;
}

double nesim_coding_step_weight(nesim_coding c, int64_t T, int64_t t)
{
    if (!valid_T(c, T) || t < 0 || t >= T)
        return 0.0;
    return nesim_coding_is_bitwise(c) ? ldexp(1.0, (int)(T - 1 - t)) : 1.0;
}

/* Whether count n (already representable) fits in T steps of coding c. */
static int fits(nesim_coding c, int64_t n, int64_t T)
{
    switch (c) {
    case NESIM_CODE_BINARY:
    case NESIM_CODE_TERNARY:
        return mag(n) <= (uint64_t)T;
    case NESIM_CODE_BITWISE:
    case NESIM_CODE_BITWISE_BIDIR:
        return bitlen(mag(n)) <= T;
    case NESIM_CODE_BITWISE_TWOS: {
        int64_t half = INT64_C(1) << (T - 1); /* T <= 63 */
        return n >= -half && n < half;
    }
    }
    return 0;
}

int nesim_coding_train(nesim_coding c, int64_t n, int64_t T, int8_t *out, nesim_error *err)
{
    if (!valid(c))
        return nesim_fail(err, NESIM_EINVAL, "spike train: invalid coding %d", (int)c);
    if (!valid_T(c, T))
        return nesim_fail(err, NESIM_EINVAL, "spike train: %s cannot use T = %lld steps",
                          names[c], (long long)T);
    int64_t r = nesim_coding_representable(c, n);
    if (!fits(c, r, T))
        return nesim_fail(err, NESIM_EINVAL, "spike train: %s count %lld does not fit in %lld steps",
                          names[c], (long long)r, (long long)T);
    for (int64_t t = 0; t < T; t++)
        out[t] = (int8_t)nesim_coding_spike(c, r, T, t);
    return NESIM_OK;
}

int64_t nesim_coding_decode(nesim_coding c, int64_t T, const int8_t *train)
{
    if (!valid_T(c, T))
        return 0;
    int64_t acc = 0;
    /* Bitwise: Horner (shift, then add) as the hardware does; with |s| <= 1 and
     * T <= 63, |acc| <= 2^T - 1 never overflows. */
    int64_t base = nesim_coding_is_bitwise(c) ? 2 : 1;
    for (int64_t t = 0; t < T; t++)
        acc = acc * base + ((train[t] > 0) - (train[t] < 0));
    return acc;
}

int64_t nesim_coding_spikes(nesim_coding c, int64_t n, int64_t T)
{
    if (!valid_T(c, T))
        return 0;
    n = nesim_coding_representable(c, n);
    switch (c) {
    case NESIM_CODE_BINARY:
    case NESIM_CODE_TERNARY:
        return mag(n) < (uint64_t)T ? (int64_t)mag(n) : T;
    case NESIM_CODE_BITWISE:
    case NESIM_CODE_BITWISE_BIDIR:
        return popcount(low_bits(mag(n), T));
    case NESIM_CODE_BITWISE_TWOS:
        return popcount(low_bits((uint64_t)n, T));
    }
    return 0;
}
