/* estimate.h — how much memory a spec's run will take, before anything is
 * built, so an oversize run is refused up front instead of swapping or
 * being killed hours in.
 *
 * Counted: per neuron of a network (its 64-byte record, state, queue and
 * fire lists, statistics, trace and mapping arrays), per drawn synapse
 * (4-byte targets, with the growth slack of drawing, and row offsets),
 * synthetic weights (generated into memory; weight files are mapped and stay
 * in the page cache), per-layer buffers, a layer run's per-tick activity for
 * `samples` samples, and the sample batches (at most 64 MiB). An estimate,
 * not a bound: it is meant to be within a factor of two for large runs,
 * where it matters. */
#ifndef NESIM_NET_ESTIMATE_H
#define NESIM_NET_ESTIMATE_H

#include <stddef.h>

#include "net/spec.h"

typedef struct nesim_estimate {
    double bytes;          /* the whole run */
    double largest_bytes;  /* its largest item */
    char largest[160];     /* what that item is ("projection exc -> exc: 1e+10 synapses") */
    double synapses;       /* a network's synapses, expected (fixed probability) or stored */
} nesim_estimate;

/* Fills *e for a run of `samples` input samples (layer models; 0 for a
 * network). Never fails: what it cannot size it leaves out. */
void nesim_spec_estimate(const nesim_spec *s, size_t samples, nesim_estimate *e);

/* Bytes a network of `neurons` neurons (state doubles each) with `synapses`
 * drawn synapses and `rows` pre neurons over its projections takes. */
double nesim_estimate_network(double neurons, double state, double synapses, double rows);

#endif
