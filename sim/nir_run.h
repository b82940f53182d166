/* nir_run.h — run a NIR graph (net/nir.h) step by step, driven by activity.
 *
 * Time is steps of dt seconds. Per step, nodes run in topological order of
 * the graph's forward edges; an edge that closes a cycle (found by a
 * depth-first walk from the Input nodes, in edge order) carries its source's
 * output of the previous step, as recurrent layers in snnTorch and Norse do;
 * before step 0 a linear node's "previous output" is its bias. A cycle with
 * no neuron or Delay node in it is refused.
 *
 * Values between nodes are sparse (index, value) lists: a spike is an
 * (index, 1). Linear, Conv and Pool nodes scatter each nonzero input to its
 * targets (their synaptic operations, SOPs); neurons that nothing reached
 * and that cannot fire on their own are not visited — when an input reaches
 * one later, the steps it missed are taken then (they cannot make it fire;
 * see quiescence below), so the result is bit for bit that of stepping every
 * neuron every step (opts.dense does that, as a check).
 *
 * Dynamics, per neuron, with x the summed input of the step (held over the
 * step), and the node's parameters (NIR's names; r = R):
 *   I         v <- v + dt R x
 *   IF        as I; fires when v > v_threshold (strictly)
 *   LI, LIF   euler: v <- v + dt/tau (v_leak - v + R x)
 *             exact: v <- v_inf + (v - v_inf) e^(-dt/tau), v_inf = v_leak + R x
 *   CubaLI, CubaLIF
 *             euler: I <- I + dt/tau_syn (-I + w_in x), then
 *                    v <- v + dt/tau_mem (v_leak - v + R I)   (the new I, as snnTorch's
 *                    Synaptic and Norse's CubaLIF step)
 *             exact: the closed-form solution over the step with x held
 *   Threshold y = 1 if x > v_threshold else 0
 *   Delay     y(t + round(delay/dt)) = x(t)
 * A spike resets v to v_reset (0 when absent) or, with reset_subtract, lowers
 * v by v_threshold - v_reset. Euler needs dt <= every tau (else it is
 * unstable and refused). euler is the default: the graphs in the wild were
 * trained with it (snnTorch maps beta = 1 - dt/tau_mem), and a model trained
 * with one discretisation gives wrong answers under the other.
 *
 * A spiking neuron left alone is quiescent when it provably cannot cross
 * threshold: max(v, v_leak + max(R I, 0)) <= v_threshold (free evolution
 * moves v monotonically toward targets no higher than that bound). Only
 * neurons that are not quiescent are visited without input. */
#ifndef NESIM_SIM_NIR_RUN_H
#define NESIM_SIM_NIR_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "net/nir.h"

typedef enum nesim_nir_disc { NESIM_NIR_EULER, NESIM_NIR_EXACT } nesim_nir_disc;

typedef struct nesim_nir_opts {
    double dt;            /* seconds per step; 0: not given (refused when a node needs it) */
    nesim_nir_disc disc;
    int reset_subtract;
    int dense;            /* visit every neuron every step (a hold-out check) */
} nesim_nir_opts;

typedef struct nesim_nir_counts {
    uint64_t spikes;      /* spikes emitted (neuron and Threshold nodes) */
    uint64_t sops;        /* synaptic operations (Linear, Affine, Conv, Pool): nonzero weight x nonzero input */
    uint64_t updates;     /* neuron state updates (neuron x step computed) */
    uint64_t bias_ops;    /* bias additions (dense work, every step) */
} nesim_nir_counts;

typedef struct nesim_nir_spike {
    int64_t step;
    uint32_t idx;         /* flat index in the node's output (C order) */
} nesim_nir_spike;

typedef struct nesim_nir_net nesim_nir_net;

/* Builds a runnable network from g (which must outlive it): checks types,
 * parameters, shapes along every edge and cycles; one line naming the node
 * on a problem (file names the source in messages). */
int nesim_nir_net_new(const nesim_nir_graph *g, const nesim_nir_opts *o, const char *file, nesim_nir_net **out,
                      nesim_error *err);
void nesim_nir_net_free(nesim_nir_net *net);

/* Values per step the Input node takes, and the Output node's size. */
size_t nesim_nir_input_size(const nesim_nir_net *net);
size_t nesim_nir_output_size(const nesim_nir_net *net);
/* The node order of g; per node its output size and (for shaped nodes) shape. */
size_t nesim_nir_node_size(const nesim_nir_net *net, int node);
int nesim_nir_node_shape(const nesim_nir_net *net, int node, int64_t *shape, int max);
/* The k-th node in run (topological) order. */
int nesim_nir_run_order(const nesim_nir_net *net, int k);
/* Multiply-accumulates one step of node i costs computed densely (Linear,
 * Affine, Conv: weights x output positions; Pool: window x outputs): the
 * ANN baseline. */
uint64_t nesim_nir_node_dense_macs(const nesim_nir_net *net, int node);
/* Mapping a graph on a chip: "groups" are the Input node and every neuron
 * and Threshold node; the nodes between them (Linear, Conv, Pool, Flatten,
 * Scale, Delay, Identity) are the wiring. Nonzero for a group. */
int nesim_nir_node_is_group(const nesim_nir_net *net, int node);
/* The inputs of group `dst` that output i of group `src` reaches through
 * wiring alone (forward edges, nonzero weights), ascending, into out (up to
 * cap); returns their number (0 when dst is not directly downstream). */
size_t nesim_nir_reach(const nesim_nir_net *net, int src, uint32_t i, int dst, uint32_t *out, size_t cap);
/* The group whose neurons a wiring node's synaptic operations feed: the
 * nearest one downstream (breadth first, edges in order); -1 if none. */
int nesim_nir_feeds(const nesim_nir_net *net, int node);
/* Events each output of a group emitted over every sample run so far (its
 * spikes; for the Input node, its nonzero frame values). NULL for others. */
const uint64_t *nesim_nir_event_counts(const nesim_nir_net *net, int node);
/* Nonzero for spiking nodes (neurons that fire, Threshold). */
int nesim_nir_node_spikes(const nesim_nir_net *net, int node);

/* Called after every step of a sample (a recorder reads counters and spikes
 * there); a nonzero return stops the sample with NESIM_EIO. NULL: none. */
typedef int (*nesim_nir_step_hook)(void *ctx, int64_t step);
void nesim_nir_set_step_hook(nesim_nir_net *net, nesim_nir_step_hook fn, void *ctx);

/* Replay: node `node`'s output is given — spikes[0..n) of the next sample, in
 * (step, index) order — instead of computed, and only it and the nodes
 * downstream of it run (the rest stay silent). NESIM_EINVAL naming the node
 * when a node downstream also takes input from outside (it would miss
 * values the trace does not hold). The spikes are borrowed until the sample
 * has run. node -1: normal runs again. */
int nesim_nir_set_replay(nesim_nir_net *net, int node, const nesim_nir_spike *spikes, size_t n, nesim_error *err);

/* Runs one sample from rest: frames is [steps][input size]. The spike lists
 * and the readout describe this sample; the counters add up over samples. */
int nesim_nir_run_sample(nesim_nir_net *net, const double *frames, size_t steps, nesim_error *err);

/* The last sample's spikes of node i, in (step, index) order. */
const nesim_nir_spike *nesim_nir_spikes(const nesim_nir_net *net, int node, size_t *n);
/* The last sample's Output values summed over its steps (output size values). */
const double *nesim_nir_readout(const nesim_nir_net *net);
/* Counters of node i over every sample run so far. */
const nesim_nir_counts *nesim_nir_counts_of(const nesim_nir_net *net, int node);
/* Neuron i's state (v, and I for Cuba nodes) after the last step: for tests. */
int nesim_nir_state(const nesim_nir_net *net, int node, size_t i, double *v, double *cur);

#endif
