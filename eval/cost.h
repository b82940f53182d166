/* cost.h — what a run would cost on a chip: mapping, NeuroBench metrics, energy.
 *
 * For a layer model: the model input and every coded layer's outputs become
 * groups of neurons placed on the chip (net/map.h); each coded layer is an
 * edge from the neurons that produce its input (the model input, or the
 * nearest coded layer upstream) to its own neurons. Spikes per input channel
 * of the run give the exact routing cost: each spike is sent once to every
 * destination core of its source neuron, over dimension-order routes.
 *
 * The counts come from the run (spikes, SOPs, membrane updates as the
 * kernels counted them: sim/coding.h); the metrics are eval/metrics.h's. */
#ifndef NESIM_COST_H
#define NESIM_COST_H

#include "eval/chiptime.h"
#include "eval/energy.h"
#include "net/chip.h"
#include "net/map.h"
#include "sim/infer.h"
#include "sim/network.h"
#include "sim/nir_run.h"

typedef struct nesim_cost_layer {
    uint64_t cores, compartments;
    double weight_bits_stored;
    nesim_energy_input in;
    nesim_energy_layer e;
} nesim_cost_layer;

typedef struct nesim_cost {
    const char *chip, *dense;
    nesim_chip_caps caps;
    nesim_mapping map;
    size_t n;
    nesim_cost_layer *layer;
    nesim_energy_report energy;
    double spikes_per_channel;     /* spikes / input channels x samples (layer runs) */
    double sb_vs_fp16, sb_vs_int8; /* SpikingBrain's arithmetic estimate, as reductions */
    double map_seconds;
} nesim_cost;

/* Fills the energy parameters and capacities from a neuromorphic profile and
 * the dense parameters from a dense profile. */
int nesim_cost_params(const nesim_chip *chip, const nesim_chip *dense, nesim_chip_caps *caps,
                      nesim_energy_params *ep, nesim_dense_params *dp, nesim_error *err);

/* What every pricing starts with: *out zeroed with the profiles' names,
 * capacities and prices filled (nesim_cost_params), and, for a run timed on
 * the chip (chip_seconds > 0 over ticks > 0), static energy priced per
 * chip-time step instead of the profile's tick. */
int nesim_cost_begin(const nesim_chip *chip, const nesim_chip *dense, int64_t ticks, double chip_seconds,
                     nesim_cost *out, nesim_energy_params *ep, nesim_dense_params *dp, nesim_error *err);

/* Maps and prices a finished layer run. Free with nesim_cost_free. */
int nesim_cost_layers(const nesim_chip *chip, const nesim_chip *dense, const nesim_infer *m,
                      const nesim_infer_report *r, double model_tick_s, nesim_cost *out,
                      nesim_error *err);
void nesim_cost_free(nesim_cost *c);
/* Only the mapping of nesim_cost_layers (out->caps, out->map), from the
 * loaded layers before a run (the same placement), e.g. to time the run. */
int nesim_cost_layers_map(const nesim_chip *chip, const nesim_chip *dense, const nesim_infer *m, nesim_cost *out,
                          nesim_error *err);
/* The same as nesim_cost_layers with the run's chip time (<= 0: none):
 * static energy over it instead of ticks x the profile's tick. */
int nesim_cost_layers_timed(const nesim_chip *chip, const nesim_chip *dense, const nesim_infer *m,
                            const nesim_infer_report *r, double model_tick_s, double chip_seconds, nesim_cost *out,
                            nesim_error *err);

/* A layer model as chip time reads it (eval/chiptime.h), on the mapping of
 * nesim_cost_layers_map: its groups, plus one relay group per coded layer —
 * the layer's input coder, whose channel c sits on the core of the neuron
 * holding input value c (the model input's coder is a source: its spikes
 * come from off the chip) — with one edge from it to the layer's outputs
 * (dense for linear, conv for conv2d), crossed in the step. A spike of
 * coded layer i's input channel c is neuron nesim_layers_ct_neuron(v, i, c)
 * (UINT32_MAX: the layer codes nothing). *tmap is the mapping the timing
 * reads; m and map must outlive *out. */
typedef struct nesim_layers_ct nesim_layers_ct;
int nesim_cost_layers_ct(const nesim_infer *m, const nesim_mapping *map, nesim_layers_ct **out, nesim_ct_graph *view,
                         const nesim_mapping **tmap, nesim_error *err);
uint32_t nesim_layers_ct_neuron(const nesim_layers_ct *v, size_t layer, uint32_t channel);
void nesim_layers_ct_free(nesim_layers_ct *v);

/* Maps and prices a recurrent network after a run of `ticks` ticks:
 * populations are groups (fan-in: the most synapses any neuron receives;
 * weights stored as 32-bit values, or the chip's widest), projections are
 * edges routed by their actual targets; spikes[g] is neuron g's spike count
 * (global id). Layer entries of *out are the populations. A graph drawn in
 * parts (net/graph.h: each rank its own targets' synapses) is mapped by the
 * network's ranks together (nesim_net_set_comm): every rank calls this and
 * the functions below alike, and all get the whole model's mapping. */
int nesim_cost_network(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net,
                       const uint64_t *spikes, int64_t ticks, nesim_cost *out, nesim_error *err);
/* The same, with the run's chip time (eval/chiptime.h; <= 0: none): static
 * energy is then static power over chip_seconds, not ticks x the profile's
 * tick. */
int nesim_cost_network_timed(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net,
                             const uint64_t *spikes, int64_t ticks, double chip_seconds, nesim_cost *out,
                             nesim_error *err);
/* nesim_cost_network_timed with the mapping nesim_cost_network_map made of
 * the same network before the run (the placement does not change): it is
 * moved out of *mapped into *out instead of being made again (a failure
 * before that leaves it in *mapped; the caller frees *mapped either way).
 * mapped NULL, or without a mapping: mapped here. */
int nesim_cost_network_mapped(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net,
                              nesim_cost *mapped, const uint64_t *spikes, int64_t ticks, double chip_seconds,
                              nesim_cost *out, nesim_error *err);
/* Only the mapping of nesim_cost_network (out->caps, out->map; the same
 * placement, before a run), e.g. to time the run as it goes. */
int nesim_cost_network_map(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net, nesim_cost *out,
                           nesim_error *err);

/* Maps and prices a NIR graph's run (sim/nir_run.h) of `ticks` steps of
 * tick_s: groups are its Input, neuron and Threshold nodes (in run order;
 * *group_node, malloc'd, gives each group's node), edges join groups that
 * wiring (Linear, Conv, Pool, ...) connects, routed by the neurons each
 * output actually reaches; a wiring node's SOPs, dense MACs and weights
 * count in the group it feeds. Layer entries of *out are the groups. */
int nesim_cost_nir(const nesim_chip *chip, const nesim_chip *dense, const nesim_nir_graph *g,
                   const nesim_nir_net *net, int64_t ticks, double tick_s, size_t samples, nesim_cost *out,
                   int **group_node, nesim_error *err);
/* The same with the run's chip time (eval/chiptime.h; <= 0: none): static
 * energy over it instead of ticks x the profile's tick. */
int nesim_cost_nir_timed(const nesim_chip *chip, const nesim_chip *dense, const nesim_nir_graph *g,
                         const nesim_nir_net *net, int64_t ticks, double tick_s, size_t samples, double chip_seconds,
                         nesim_cost *out, int **group_node, nesim_error *err);

/* A NIR graph as chip time reads it (eval/chiptime.h): the groups of
 * nesim_cost_nir's mapping (group_node), edges between groups that wiring
 * joins (crossed in the same step), neurons with a leak, or fed by a
 * wiring node with a bias, drifting; the Input a source. nesim_cost_nir_ct
 * fills *view (valid while *out lives; g and net must outlive both). */
typedef struct nesim_nir_ct nesim_nir_ct;
int nesim_cost_nir_ct(const nesim_nir_graph *g, const nesim_nir_net *net, const int *group_node, int n_groups,
                      nesim_nir_ct **out, nesim_ct_graph *view, nesim_error *err);
void nesim_cost_nir_ct_free(nesim_nir_ct *c);

#endif
