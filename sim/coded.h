/* coded.h — event-driven coded linear layer (the SpikingBrain 1.0 scheme).
 *
 * One sample is one input row x[0..in). The layer codes it into spikes and
 * accumulates the spikes, event by event, in its `out` target neurons:
 *   V_th = mean(|x|) / k clamped to [1e-5, 1e4] (nesim_vth_adaptive), or a
 *          fixed threshold given by the caller;
 *   N_i  = round-half-to-even(x_i / V_th) (nesim_spike_count_checked);
 *   the played count is nesim_coding_representable(coding, N_i) (binary and
 *          unsigned bitwise clip N < 0 to 0; the clipping is counted);
 *   T    = nesim_coding_steps(coding, max_i |played N_i|);
 *   input i emits s_t(i) in {-1, 0, +1} at virtual tick t0 + t, t in [0, T)
 *          (nesim_coding_spike); each nonzero s_t(i) is one event;
 *   every event reaches all `out` targets: one synaptic operation (SOP) each;
 *   target o accumulates acc_o += w[o,i] * s (binary, ternary) or, bitwise,
 *          doubles acc_o at each new step and then adds — computed as the
 *          equivalent exact step weight 2^(T-1-t) on each step's sum, so a
 *          row can take every step of one input chunk while it is in cache;
 *   y_o  = V_th * acc_o + b_o.
 *
 * Guarantees:
 * - y equals the dense product W (N V_th) + b of the played counts, up to
 *   floating-point summation error: float weights are summed in float over at
 *   most 128 events at a time (error <= 127 * 2^-24 < 7.6e-6 of the sum of
 *   the magnitudes) and those partial sums in double; int8 weights are summed
 *   exactly in int32 per scale group and step, then scaled in double. So
 *   |y_o - dense_o| <= 1e-5 * (V_th sum_i |w_oi N_i| + |b_o|). Rounding y to
 *   float is the last step.
 * - Cost follows activity: the work is one gather-and-add per SOP (plus
 *   O(in * steps) to build the event lists); the weight matrix is streamed
 *   once per sample, never copied or converted as a whole. Extra memory is
 *   O(in + out + events) per call.
 * - Weights keep their stored precision: f32, f64, f16, bf16, or int8 with
 *   optional per-group f32 scales (w[o,i] = q[o,i] * scale[o, i / group]).
 *   Views may be unaligned (safetensors): every element is read via memcpy.
 *   Views are C order (rows read in place); a Fortran-order view is refused
 *   (nesim_npy_load transposes such files on load).
 * - Counters (nesim_coded_stats) are exact integers computed from the counts,
 *   not from the floating-point work.
 * - Bad input is NESIM_EINVAL with a message naming the layer and, for
 *   activations, the sample and the input index; NaN/Inf activations are
 *   always rejected, never coded. Nothing prints, exits or keeps state
 *   between calls; calls on the same layer may run concurrently.
 * - Weight and bias values are not checked: a NaN weight yields a NaN output,
 *   as the dense product would.
 */
#ifndef NESIM_CODED_H
#define NESIM_CODED_H

#include <stddef.h>
#include <stdint.h>

#include "net/tensor.h"
#include "base/error.h"
#include "neurons/coder.h"
#include "sim/coding.h"

/* A layer: borrowed views of its weight, scales and bias. The tensors' data
 * must outlive the layer; the nesim_tensor structs themselves are copied
 * (as non-owning views), so they need not. */
typedef struct nesim_coded_linear {
    const char *name;     /* for messages; borrowed */
    nesim_tensor weight;  /* [out, in], row-major: F32, F64, F16, BF16 or I8 */
    nesim_tensor scales;  /* I8 only: F32 [out, in / group] */
    nesim_tensor bias;    /* [out], any dtype */
    size_t in, out;
    size_t group;         /* scale group along `in` (== in when there are no scales) */
    int has_scales, has_bias;
    /* Optional (NULL: unknown), borrowed: per input channel the outputs it
     * reaches through a nonzero weight (net/layers.h). Set after init, it
     * lets the NeuroBench membrane-update count skip the weight reads when
     * an event's channel reaches every output. */
    const uint32_t *nnz_in;
    /* Set after init (default 0): float weights are summed in double, not in
     * float per segment, so y is W (N V_th) + b correctly rounded to ~1e-15
     * before the final rounding to float. The language-model engine sets it:
     * a count round(x / V_th) downstream must not flip on summation order. */
    int exact_sums;
    /* Optional (NULL: none), borrowed, set after init: the weight as tiles
     * (nesim_coded_tiles_new), so every call plays through them — a layer
     * called many times with one sample, such as a language model's, pays
     * for the layout once. */
    const unsigned char *tiles;
} nesim_coded_linear;

/* Validates and fills *L. weight must be 2-D [out, in] with in, out >= 1 and
 * in < 2^32, of dtype F32/F64/F16/BF16/I8. expect_in / expect_out, when
 * nonzero, must match the weight's shape (a model spec's declared sizes).
 * scales (may be NULL) only with I8: F32 of shape [out, in / group], group
 * >= 1 dividing in; I8 without scales means scale 1. group is ignored when
 * scales is NULL. bias (may be NULL): shape [out]. name may be NULL
 * ("linear"). Any violation is NESIM_EINVAL naming the layer and the shapes. */
int nesim_coded_linear_init(nesim_coded_linear *L, const char *name, const nesim_tensor *weight,
                            const nesim_tensor *scales, size_t group, const nesim_tensor *bias,
                            size_t expect_in, size_t expect_out, nesim_error *err);

/* The weight of L as tiles of R = 64 / element-size rows, input-major: tile
 * t holds rows t R .. t R + R - 1 (missing rows zero), input i's weights to
 * them in the 64 bytes at t * in * 64 + 64 i. An event then reads one cache
 * line for R rows. *tiles (64-byte aligned, as large as the weight rounded up
 * to whole tiles) is the caller's, to free(); NESIM_ENOMEM without memory. Made
 * on `threads` threads. */
int nesim_coded_tiles_new(const nesim_coded_linear *L, int threads, unsigned char **tiles, nesim_error *err);

/* For a caller that learns where a sample lands in virtual time only after
 * a whole batch was played (a model run layer by layer over a batch of
 * samples): nesim_coded_linear_batch with every sample coded from tick o->t0
 * on its own, none of o's observers (on_spike, on_step, step_events,
 * chan_spikes) called, and counts[s * in + i] receiving sample s's played
 * counts (int64 [samples, in], the caller's). per_sample (may be NULL) as in
 * nesim_coded_linear_batch, every sample relative to o->t0. The outputs are
 * those of nesim_coded_linear_batch, bit for bit. */
int nesim_coded_linear_batch_counts(const nesim_coded_linear *L, const nesim_coded_opts *o, const float *x,
                                    size_t samples, float *y, nesim_coded_stats *per_sample, int64_t *counts,
                                    nesim_error *err);

/* The observer calls of o for one sample with played counts rep[0..in) and
 * T steps starting at tick t0 — the same calls, in the same order, that
 * nesim_coded_linear_batch makes for it (spikes, per-channel counts, then
 * per-step events). `sample` names it in messages. */
int nesim_coded_observe(const nesim_coded_linear *L, const nesim_coded_opts *o, const int64_t *rep, int64_t T,
                        int64_t t0, size_t sample, nesim_error *err);

/* One sample: x[0..in) -> y[0..out). st may be NULL. */
int nesim_coded_linear_forward(const nesim_coded_linear *L, const nesim_coded_opts *o,
                               const float *x, float *y, nesim_coded_stats *st,
                               nesim_error *err);

/* `samples` rows x[s*in ..] -> y[s*out ..], each with its own V_th, played one
 * after another in virtual time: sample s starts at the tick where sample
 * s-1 ended (t0 + sum of the earlier T). total (may be NULL) sums the
 * counters; per_sample (may be NULL) receives one stats record per sample.
 * On failure y may be partly written. */
int nesim_coded_linear_batch(const nesim_coded_linear *L, const nesim_coded_opts *o,
                             const float *x, size_t samples, float *y, nesim_coded_stats *total,
                             nesim_coded_stats *per_sample, nesim_error *err);

/* The dense equivalent of the coded input: u[i] = played N_i * V_th, with the
 * same threshold, rounding, clipping and checks as the layer. *vth may be NULL. */
int nesim_coded_dense_input(const nesim_coded_opts *o, const float *x, size_t in, double *u,
                            double *vth, nesim_error *err);

typedef enum {
    NESIM_DENSE_F64, /* a double copy of W (dequantised), gsl_blas_dgemv: O(in*out) memory */
    NESIM_DENSE_F32  /* gsl_blas_sgemv; f32 weights used in place when aligned,
                        otherwise a float copy of W is made */
} nesim_dense_precision;

/* Dense reference y = W u + b with GSL BLAS, u of length in, y of length out
 * (for the coded layer, u from nesim_coded_dense_input). */
int nesim_linear_dense_ref(const nesim_coded_linear *L, const double *u, double *y,
                           nesim_dense_precision prec, nesim_error *err);

#endif
