/* classic.h — the classic recurrent benchmarks, built through the public API.
 *
 *   "b4"   Brette et al. 2007, Benchmark 4: LIF with voltage jumps, resting
 *          level above threshold (the event-driven benchmark).
 *   "cuba" Brian2's CUBA example (Vogels & Abbott 2005 as in Brette 2007,
 *          Benchmark 2): LIF with exponential currents.
 * Both: 80 % excitatory / 20 % inhibitory, p = 0.02 (autapses allowed, as in
 * Brian2's connect(p=...)), refractory 5 ms, V_r -60 mV, V_t -50 mV,
 * E_L -49 mV, v0 uniform in [V_r, V_t), delay one tick (Brian2's default:
 * a spike is felt at the next step). */
#ifndef NESIM_CLASSIC_H
#define NESIM_CLASSIC_H

#include "net/graph.h"

typedef struct nesim_classic_opts {
    const char *name;   /* "b4" or "cuba" */
    uint32_t neurons;   /* total; 0 = 4000 */
    double tick_s;      /* 0 = 1e-4 */
    uint64_t seed;
    double v_rest;      /* NaN or 0 = the benchmark's -49 mV */
    uint64_t max_memory;/* refuse a network estimated above this (net/estimate.h); 0: the memory available */
} nesim_classic_opts;

/* Builds the network's graph; *exc and *inh receive the population ids (may
 * be NULL). The caller frees *out with nesim_graph_free (or runs it:
 * nesim_net_from_graph). */
int nesim_classic_build(const nesim_classic_opts *o, nesim_graph **out, int *exc, int *inh,
                        nesim_error *err);

/* The benchmark names, NULL-terminated, and a one-line description of each. */
const char *const *nesim_classic_names(void);
const char *nesim_classic_describe(const char *name);

#endif
