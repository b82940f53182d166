/* synth.h — deterministic synthetic tensors for model specs.
 *
 * Large examples (a SpikingBrain-7B-shaped layer: 233 M weights) ship as a
 * spec line, not as files: {"synthetic": {"dist": "normal", "std": 0.02,
 * "seed": 7, "shape": [out, in], "quantize": "int8", "group": 128}}.
 * Value n (flat row-major index) is a function of (seed, n) alone: the
 * top 53 bits of splitmix64 at position n of the seed's stream give a
 * uniform u in (0, 1); normal values are mean + std * inverse-CDF(u) (a
 * table of GSL's gsl_cdf_ugaussian_Pinv, linear between 8193 points over
 * [0.0025, 0.9975], within 1e-4 sigma; GSL's function itself in the tails),
 * uniform ones lo + (hi - lo) u; or a constant. Being counter-based, the
 * values are made on every core and do not depend on how many there are;
 * any group can be made on its own. Quantised to int8 per group of `group` elements along the last
 * axis (symmetric: scale = max|w| / 127, q = round-half-even(w / scale)),
 * the way SpikingBrain's released INT8 weights are laid out. */
#ifndef NESIM_SYNTH_H
#define NESIM_SYNTH_H

#include "net/spec.h"
#include "net/tensor.h"

/* Fills *t (F32, or I8 when quantised) and, for I8, *scales (F32 [rows,
 * last/group]); both views of buffers returned in *buf and *scales_buf, which
 * the caller frees with free(). `what` names the tensor in messages. */
int nesim_synth_generate(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, void **buf,
                         nesim_tensor *scales, void **scales_buf, nesim_error *err);

/* The same tensor with only rows [row_lo, row_hi) of its first axis made
 * (each row's values are those of the whole tensor; a rank's share of a
 * weight): the buffers are whole, the other rows never touched and not to
 * be read (their scales are 0). */
int nesim_synth_generate_rows(const nesim_spec_tensor *st, const char *what, size_t row_lo, size_t row_hi,
                              nesim_tensor *t, void **buf, nesim_tensor *scales, void **scales_buf, nesim_error *err);

/* What nesim_synth_generate would make, without making it: shape, dtype,
 * count and nbytes of *t and *scales (data NULL); the same errors. */
int nesim_synth_describe(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, nesim_tensor *scales,
                         nesim_error *err);

/* Makes the tensor nesim_synth_describe described into buffers the caller
 * owns: t->data (t->nbytes) and, for I8, scales->data (scales->nbytes), every
 * byte written (a reused buffer needs no clearing). The same values as
 * nesim_synth_generate. */
int nesim_synth_fill(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, nesim_tensor *scales,
                     nesim_error *err);

/* The same, on the scalar path when `scalar` (else the vector one where the
 * CPU has it): the tests' check that both give the same bits. */
int nesim_synth_generate_on(const nesim_spec_tensor *st, const char *what, int scalar, nesim_tensor *t, void **buf,
                            nesim_tensor *scales, void **scales_buf, nesim_error *err);

/* One int8 group's quantisation as synthesis does it: q[i] =
 * clamp(round-half-even(v[i] / s), -127, 127) for |v[i] / s| <= 127.5, on
 * the scalar path when `scalar`, else the vector one where the CPU has it
 * (the tests' check that both round every half-integer alike). */
void nesim_synth_quantise(const double *v, size_t m, float s, int8_t *q, int scalar);

#endif
