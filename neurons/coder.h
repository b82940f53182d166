/* coder.h — SpikingBrain-style spike coding of activations (pure functions).
 *
 * An activation x becomes an integer spike count N = round(x / V_th), and N is
 * played out as a train of T virtual time steps s_0 .. s_{T-1}, each -1, 0 or +1.
 * Guarantees, for every coding c, every n and every T >= nesim_coding_steps(c, M)
 * with M >= |nesim_coding_representable(c, n)| (M <= NESIM_COUNT_MAX):
 *   - nesim_coding_train() succeeds and
 *     sum_t nesim_coding_step_weight(c, T, t) * s_t == nesim_coding_representable(c, n)
 *     exactly (nesim_coding_decode computes it in integers);
 *   - nesim_coding_spikes() is the number of nonzero s_t.
 * Binary and unsigned bitwise cannot represent N < 0: such counts play out as 0
 * (representable() says so; the caller counts the clipping).
 * Bitwise codings are played most significant bit first; the receiver shifts its
 * accumulator left once per step and then adds, which is the same as weighting
 * step t by 2^(T-1-t). Two's complement sends its sign bit (t = 0, weight
 * +2^(T-1)) as -1, so the same positive weights decode it: the sign bit is worth
 * -2^(T-1) in two's complement.
 * No function keeps state, allocates, prints or reads the floating-point
 * environment except nearbyint(), which must run under the default rounding mode. */
#ifndef NESIM_CODER_H
#define NESIM_CODER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef enum {
    NESIM_CODE_BINARY,        /* {0,1}: one spike per step for N steps, N >= 0 */
    NESIM_CODE_TERNARY,       /* {-1,0,1}: sign(N) for |N| steps */
    NESIM_CODE_BITWISE,       /* {0,1}: bits of N, N >= 0 */
    NESIM_CODE_BITWISE_BIDIR, /* {-1,0,1}: bits of |N|, negated if N < 0 */
    NESIM_CODE_BITWISE_TWOS   /* {-1,0,1}: bits of N & (2^T - 1), sign bit as -1 */
} nesim_coding;

/* Counts saturate here: every |N| up to 2^53 is an exact double, so V_th * N
 * stays exact and the bitwise step counts stay small (<= 55). */
#define NESIM_COUNT_MAX (INT64_C(1) << 53)
/* Largest T accepted by the bitwise codings: decoding then fits in int64. */
#define NESIM_CODING_BITS_MAX 63

/* Nonzero for the bitwise codings (steps weigh 2^(T-1-t)), 0 for binary and ternary. */
int nesim_coding_is_bitwise(nesim_coding c);

/* "binary", "ternary", "bitwise", "bitwise-bidirectional", "bitwise-twos-complement"
 * (exact, case-sensitive). Anything else, or NULL, is NESIM_EINVAL; *out untouched. */
int nesim_coding_parse(const char *name, nesim_coding *out, nesim_error *err);
/* The name parse() accepts; "invalid" for a value outside the enum. */
const char *nesim_coding_name(nesim_coding c);

/* V_th = mean(|x|) / k clamped to [1e-5, 1e4]. The mean is accumulated in double,
 * in index order, then divided by n (so the result does not depend on threading
 * or vector width). n == 0 gives 1e-5. A NaN in x, or a k that is not positive
 * and finite, gives NaN (never clamped) so that the checked count below rejects
 * the row instead of hiding the fault. Infinite |x| gives 1e4. */
double nesim_vth_adaptive(const float *x, size_t n, double k);
double nesim_vth_adaptive_d(const double *x, size_t n, double k);

/* N = x / vth rounded half to even (nearbyint, default rounding mode: 0.5 -> 0,
 * 1.5 -> 2, -0.5 -> 0), saturated to [-NESIM_COUNT_MAX, NESIM_COUNT_MAX].
 * No other clamp. A NaN quotient gives 0; infinities saturate. */
int64_t nesim_spike_count(double x, double vth);
/* As above, but NESIM_EINVAL when x or vth is NaN/infinite, vth <= 0, or the
 * count saturates. *out always receives nesim_spike_count(x, vth). */
int nesim_spike_count_checked(double x, double vth, int64_t *out, nesim_error *err);

/* The count actually played: max(n, 0) for binary and unsigned bitwise, n
 * otherwise (and for an invalid coding). */
int64_t nesim_coding_representable(nesim_coding c, int64_t n);

/* Steps T for a tensor whose largest |representable count| is M:
 * binary/ternary M; bitwise/bidirectional max(1, ceil(log2(M+1)));
 * two's complement max(2, ceil(log2(M+1)) + 1). -1 when M < 0, M > NESIM_COUNT_MAX
 * or c is invalid. */
int64_t nesim_coding_steps(nesim_coding c, int64_t M);

/* s_t in {-1, 0, +1} for count n (clipped by representable()) at step t of T.
 * 0 when t is outside [0, T), c is invalid, or a bitwise T is outside
 * [1, NESIM_CODING_BITS_MAX]. A count too large for T is truncated (binary/ternary
 * emit T spikes; bitwise emit the low T bits): train() rejects that case. */
int nesim_coding_spike(nesim_coding c, int64_t n, int64_t T, int64_t t);

/* Weight of step t: 1 for binary/ternary, 2^(T-1-t) for the bitwise codings;
 * 0 outside [0, T) or for an invalid coding/T. */
double nesim_coding_step_weight(nesim_coding c, int64_t T, int64_t t);

/* Writes the T spikes of count n into out[0..T-1] (out may be NULL when T == 0).
 * NESIM_EINVAL, out untouched, when c is invalid, T < 0, a bitwise T is outside
 * [1, NESIM_CODING_BITS_MAX], or representable(c, n) does not fit in T steps. */
int nesim_coding_train(nesim_coding c, int64_t n, int64_t T, int8_t *out, nesim_error *err);

/* sum_t weight_t * sign(train[t]), in exact integer arithmetic (bitwise: shift
 * left, then add). Each entry counts by its sign only, so any int8 input is safe.
 * 0 when c is invalid, T < 0 or a bitwise T is outside [1, NESIM_CODING_BITS_MAX]. */
int64_t nesim_coding_decode(nesim_coding c, int64_t T, const int8_t *train);

/* Spikes emitted for count n over T steps: sum_t |s_t| (binary/ternary
 * min(|n|, T), bitwise popcount, two's complement popcount of n & (2^T - 1)). */
int64_t nesim_coding_spikes(nesim_coding c, int64_t n, int64_t T);

#endif
