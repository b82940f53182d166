/* layers.h — a model spec's layers, loaded: the layer graph as data.
 *
 * nesim_layers_open() loads every layer's tensors (memory-mapped .npy or
 * .safetensors views, or generated synthetic ones: the loading policy lives
 * here and nowhere else), rejects NaN/Inf weights naming the layer, the file
 * and the tensor, works out each layer's input and output shapes along the
 * graph ("from"), finds the chains of overlapping fixed-threshold layers, and
 * counts what the metrics need and the runner does not: weights, zero
 * weights, and per input channel the targets it reaches through a nonzero
 * weight. Nothing here runs a sample: sim/infer.h does. */
#ifndef NESIM_NET_LAYERS_H
#define NESIM_NET_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "net/spec.h"
#include "net/tensor.h"

typedef struct nesim_layer {
    const nesim_spec_layer *sl;  /* borrowed from the spec */
    size_t index;
    long src;                    /* the layer it reads: -1 the model input */
    int coded;                   /* linear or conv2d (spikes in, or graded with coding none) */
    int in_nd, out_nd;
    size_t in_dim[3], out_dim[3];
    size_t in, out;              /* values per sample */
    nesim_tensor w, s, b;        /* views; s and b have data NULL when absent */
    size_t group;                /* linear with scales: scale group along `in` */
    /* conv2d geometry (kernel [oc, c, kh, kw]) */
    size_t oc, kh, kw, sh, sw, ph, pw;
    /* static facts */
    double weights, zero_weights;   /* zero: the effective weight (scale included) is 0 */
    uint32_t *nnz_in;            /* [in]: targets each input channel reaches through a nonzero weight */
    double dense_macs;           /* one dense evaluation: in*out (conv: every kernel tap, padding too) */
    double dense_taps;           /* one dense evaluation without the padding taps (NeuroBench's Dense) */
    double weight_bytes;         /* weights, scales and bias as stored */
    double weight_bits;          /* per weight as stored */
    /* chains of overlapping fixed-threshold layers (sim/stream.h) */
    size_t seg;                  /* layers run as one chain from here (>= 1) */
    int in_seg;                  /* run by an earlier layer's chain */
} nesim_layer;

typedef struct nesim_layers nesim_layers;

/* Loads the layers of spec (which must outlive the result). Messages name
 * "FILE: layers[i] (NAME): ...". */
int nesim_layers_open(const nesim_spec *spec, nesim_layers **out, nesim_error *err);
/* The same, but a linear layer whose weight (and bias) is synthetic only
 * has its shapes until nesim_layers_ready(g, i) makes it: a run makes each
 * layer's weights when the layer first plays, so the first event comes
 * after one layer's synthesis, not all of them. Until then the layer's w,
 * s and b have data NULL and its nnz_in is NULL. */
int nesim_layers_open_lazy(const nesim_spec *spec, nesim_layers **out, nesim_error *err);
/* Makes layer i's pending synthetic tensors and counts its weights; a no-op
 * for a layer that has them. Not thread-safe. */
int nesim_layers_ready(nesim_layers *g, size_t i, nesim_error *err);
/* Whether layer i has its tensors (always, after nesim_layers_open). */
int nesim_layers_is_ready(const nesim_layers *g, size_t i);
/* Whether layer i's weights are counted (weights, zero_weights, nnz_in):
 * made once, released or not. */
int nesim_layers_counted(const nesim_layers *g, size_t i);
/* Gives back layer i's synthetic weight (and scales) when a lazy open made
 * them: the buffers are kept for the next synthetic weight that fits, w and
 * s get data NULL, the counts stay, and nesim_layers_ready makes the same
 * values again if the layer is asked for later. Returns 1 when released, 0
 * when there was nothing to release (tensors from files, not made yet). Any
 * kernel set up on the old views must be set up again. */
int nesim_layers_release(nesim_layers *g, size_t i);
void nesim_layers_close(nesim_layers *g);

size_t nesim_layers_count(const nesim_layers *g);
/* Wall seconds spent making synthetic tensors (by the open, and by
 * nesim_layers_ready with the counting of their weights). */
double nesim_layers_synth_s(const nesim_layers *g);
const nesim_layer *nesim_layers_get(const nesim_layers *g, size_t i);
const nesim_spec *nesim_layers_spec(const nesim_layers *g);
size_t nesim_layers_input_size(const nesim_layers *g);  /* values per sample */
size_t nesim_layers_output_size(const nesim_layers *g); /* of the last layer */

/* Targets (output indices) that input channel i of layer l reaches: all
 * outputs for linear, the outputs whose window covers it for conv2d.
 * Copies up to cap into out and returns the count. */
size_t nesim_layer_targets(const nesim_layer *l, uint64_t i, uint32_t *out, size_t cap);

#endif
