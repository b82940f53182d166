/* metrics.h — what a run cost, counted: NeuroBench's figures under NeuroBench's
 * names and exactly its definitions, and nesim's own beside them.
 *
 * NeuroBench (neurobench/metrics: workload and static metrics), for a layer
 * model (each coded layer's input coder is a spiking neuron layer; its
 * linear/conv2d is a connection layer called once per step of the train):
 *   footprint           bytes of parameters as stored (weights, scales, biases)
 *   connection_sparsity zero weights / weights of the connection layers (a
 *                       weight is zero when its stored value or its scale is)
 *   activation_sparsity zero outputs / outputs of the spiking neurons over
 *                       every step of every sample: 1 - spikes / sum(in x T)
 *   synaptic operations per sample: Effective_ACs (layers whose inputs are all
 *                       in {-1, 0, 1}: every coded layer), Effective_MACs (the
 *                       others: graded layers fed other values) — nonzero
 *                       input x nonzero weight pairs of every call, bias
 *                       excluded; Dense — every pair of every call, so a
 *                       T-step layer counts T x in x out (conv: the kernel taps
 *                       inside the input)
 *   membrane_updates    per sample: every neuron at a sample's first step, then
 *                       the neurons whose membrane changes at a later step (an
 *                       event reaches them through a nonzero weight; exact
 *                       cancellation of simultaneous inputs is not detected)
 * and for a recurrent network (one sample; each tick is a step; sources are
 * inputs, not neurons):
 *   footprint           one 32-bit weight per synapse
 *   connection_sparsity zero entries of the projections' [post, pre] matrices
 *   activation_sparsity 1 - spikes / (neurons x ticks)
 *   Effective_ACs       spikes x targets through nonzero weights; Dense ticks x
 *                       the matrices' entries
 *   membrane_updates    a leaky or driven neuron's v changes every tick it is
 *                       not refractory (v frozen: t_ref - 1 ticks after each
 *                       spike); an undriven IF's only when an input reaches it
 *                       (counted as the engine's touched neurons: an upper bound).
 * nesim's own (totals, not per sample): spikes, SOPs (spikes x fan-out, zero
 * weights included: what a chip delivers), graded MACs, the ANN's MACs, the
 * share of input channels whose count is 0 per sample (silent_fraction), the
 * engine's event-driven updates, virtual ticks. */
#ifndef NESIM_EVAL_METRICS_H
#define NESIM_EVAL_METRICS_H

#include <stdint.h>

#include "base/error.h"
#include "sim/infer.h"
#include "sim/network.h"

typedef struct nesim_neurobench {
    double footprint_bytes;
    double connection_sparsity;
    double activation_sparsity;
    double effective_macs, effective_acs, dense; /* per sample */
    double membrane_updates;                     /* per sample */
    double samples;
} nesim_neurobench;

typedef struct nesim_own_metrics {
    double spikes, sops;
    double graded_macs;       /* "coding": "none": MACs on nonzero graded inputs */
    double dense_macs;        /* what the ANN computes, all samples */
    double inputs, silent;    /* input channels x samples; those with count 0 or clipped */
    double silent_fraction;   /* silent / inputs */
    double spikes_per_channel;
    double updates;           /* event-driven membrane updates (neuron x step touched) */
    double virtual_ticks;
} nesim_own_metrics;

/* NeuroBench's and nesim's figures of a finished layer run. */
void nesim_metrics_layers(const nesim_infer_report *r, nesim_neurobench *nb, nesim_own_metrics *own);

/* Per layer: its NeuroBench synaptic operations (all samples), and whether
 * they are ACs. */
void nesim_metrics_layer_ops(const nesim_layer_report *l, double *effective, double *dense, int *is_ac);

/* The same for a network after `ticks` ticks; spikes[g] and last[g] are the
 * spike count and last spike tick of neuron g (eval/stats.h keeps both). */
void nesim_metrics_network(const nesim_net *net, const uint64_t *spikes, const int64_t *last, int64_t ticks,
                           nesim_neurobench *nb, nesim_own_metrics *own);

#endif
