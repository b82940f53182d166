/* stream.h — fixed-threshold layers whose IF neurons fire as they integrate.
 *
 * With an adaptive threshold a layer must wait for its whole input row
 * (V_th = mean|x|/k needs it), so layers run one after another. With a fixed
 * threshold theta and binary or ternary coding, the previous layer's output
 * neurons are integrate-and-fire neurons that spike while they integrate:
 * a neuron starts at v = 0, integrates its synaptic input (and its bias, at
 * the layer's first tick), emits +1 when v >= theta/2 and subtracts theta
 * (ternary: -1 when v < -theta/2, adding theta), at most one spike per tick.
 * Its spikes reach the next layer one tick later, so layers overlap in
 * virtual time. A neuron that keeps integrating and is left to drain emits
 * round(X / theta) spikes in all (ties rounded up; binary: none for X < 0) for
 * a total input X; the next layer then sees exactly those counts times theta.
 *
 * The first layer of a chain codes the model input (or its source layer's
 * output) as usual (sim/coding.h): adaptive or fixed threshold, any coding,
 * played over its coding's steps. Each tick's events go through the coded
 * kernels (one ternary step worth one unit), so synaptic work is counted and
 * done exactly as for any coded layer. */
#ifndef NESIM_STREAM_H
#define NESIM_STREAM_H

#include "sim/coded.h"

typedef struct nesim_stream_layer {
    const nesim_coded_linear *L;
    nesim_coded_opts in;  /* coding of this layer's input (and its observers:
                             chan_spikes, on_spike, on_step); layers after the
                             first: binary or ternary with a fixed threshold */
    int relu;             /* activation on this layer's output */
} nesim_stream_layer;

/* Runs one sample through n chained layers starting at tick t0. y receives
 * the last layer's accumulated output. st[k] (n entries) are added to.
 * *t_end receives the tick after the last event. */
int nesim_stream_forward(const nesim_stream_layer *S, size_t n, const float *x, float *y,
                         nesim_coded_stats *st, int64_t t0, int64_t *t_end, nesim_error *err);

#endif
