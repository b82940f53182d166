/* synth.h — deterministic synthetic tensors for model specs.
 *
 * Large examples (a SpikingBrain-7B-shaped layer: 233 M weights) ship as a
 * spec line, not as files: {"synthetic": {"dist": "normal", "std": 0.02,
 * "seed": 7, "shape": [out, in], "quantize": "int8", "group": 128}}.
 * Values come from GSL's mt19937 (pinned) seeded by nesim_rng_new(seed, 0),
 * drawn in row-major order: normal by the ziggurat method, uniform, or a
 * constant. Quantised to int8 per group of `group` elements along the last
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

#endif
