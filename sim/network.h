/* network.h — run a recurrent spiking network in virtual time (public API).
 *
 * The network's structure is a graph (net/graph.h: populations of one neuron
 * model each, projections with drawn connectivity); this engine runs it.
 * Virtual time is int64 ticks of tick_s seconds. Initial states and Poisson
 * spike trains are keyed draws of (network seed, population, neuron)
 * (base/rng.h): the same seed gives the same spikes, byte for byte, however
 * the neurons are split over threads or ranks.
 *
 * Order inside one tick t (documented, canonical):
 *   1. deliveries due at t, by (source neuron id, projection id); within a
 *      projection targets in ascending index: each applies its weight;
 *   2. every neuron whose predicted crossing is due at t, or whose remaining
 *      margin below threshold an input may have used up, is tested against
 *      threshold (a neuron an input left with margin to spare cannot be above
 *      it, so testing it would change nothing);
 *   3. the neurons that fire, in ascending global id, are recorded, reset and
 *      send their spikes (deliveries at t + delay; delay >= 1 tick).
 * No step visits a neuron that nothing reached: cost follows activity. The
 * neurons themselves are the models' business (neurons/population.h): the
 * engine holds the queue, the order and the projections, and calls each
 * population's kernels. */
#ifndef NESIM_NETWORK_H
#define NESIM_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "base/comm.h"
#include "base/error.h"
#include "net/graph.h"
#include "neurons/population.h"

typedef struct nesim_net nesim_net;

typedef struct nesim_queue_stats {
    uint64_t max_depth;
    double mean_depth;     /* time-weighted over virtual time run */
    uint64_t ticks_active; /* ticks at which anything happened */
} nesim_queue_stats;

typedef struct nesim_spike {
    int64_t t;
    uint32_t id;  /* global neuron id: population first id + index */
    uint32_t pop; /* its population (so the record has no padding bytes) */
} nesim_spike;

/* Called for every spike, in canonical order. Return nonzero to stop the run
 * (nesim_run then fails with NESIM_EIO and the sink's message). */
typedef int (*nesim_spike_sink)(void *ctx, int64_t t, uint32_t id, int pop);

/* Creates a network with an empty graph of its own. Returns NULL and fills
 * err on bad arguments. */
nesim_net *nesim_net_new(double tick_s, uint64_t seed, nesim_error *err);
/* Creates a network that runs graph g (taking ownership of it, also on failure). */
nesim_net *nesim_net_from_graph(nesim_graph *g, nesim_error *err);
/* Creates a network that runs graph g, which stays the caller's and must
 * outlive it: several networks (the threads of a split run, each simulating
 * its share with state of its own) read one graph. Its populations and
 * projections cannot be added to. */
nesim_net *nesim_net_sharing(const nesim_graph *g, nesim_error *err);
void nesim_net_free(nesim_net *net);

/* nesim_graph_add_population / nesim_graph_connect on the network's graph,
 * before the first run (NESIM_ESTATE afterwards). */
int nesim_add_population(nesim_net *net, const nesim_pop_spec *spec, int *id, nesim_error *err);
int nesim_connect(nesim_net *net, const nesim_proj_spec *spec, int *id, nesim_error *err);

/* ---- several ranks (mpirun) ----
 * With a communicator of K > 1 ranks (base/comm.h) every rank holds the graph
 * (the whole of it, or the part whose targets it simulates: net/graph.h) but
 * simulates only its share of the neurons: each population split in K
 * contiguous blocks (nesim_par_split: rank r the r-th), spike sources too
 * (their draws are keyed by neuron). Ranks run epochs of min-delay ticks on their own;
 * a spike fired in an epoch cannot arrive before the next one, so after each
 * epoch the ranks exchange the epoch's spikes (8 bytes each, an Allgatherv),
 * every rank queues them like its own, and each delivers only to the targets
 * it simulates. Silent stretches cost no exchange: each exchange also agrees
 * on the next tick anything happens. With a min delay of two ticks or more
 * the exchange is double-buffered instead (nesim_net_set_overlap): windows
 * of min_delay / 2 ticks, each window's spikes travelling while the next
 * window runs; with a min delay of one tick (nothing can overlap the next
 * epoch) the exchange travels while the epoch's last tick makes its
 * predictions, which follow its threshold tests. The sink and the recorded spikes see
 * every rank's spikes, in canonical order, after each exchange; counters are
 * summed over the ranks at the end of each nesim_run. Spikes, counters and
 * everything computed from them are the same bytes for any K (the queue
 * statistics are this rank's own queue). */

/* Splits the network over comm's ranks, before the first run (NESIM_ESTATE
 * afterwards). Every rank must make the same calls with the same graph. The
 * communicator stays the caller's. */
int nesim_net_set_comm(nesim_net *net, nesim_comm *comm, nesim_error *err);
/* The communicator given by nesim_net_set_comm, or NULL. */
nesim_comm *nesim_net_comm(const nesim_net *net);
/* With a min delay of two ticks or more, each exchange travels while the
 * next window of min_delay / 2 ticks runs, otherwise while the epoch's last
 * tick makes its predictions (on, the default); off: the blocking exchange
 * after every epoch of min_delay ticks, nothing running while it travels.
 * The same spikes and counters either way (a benchmark's and a test's
 * switch). */
void nesim_net_set_overlap(nesim_net *net, int on);
/* Whether exchanges overlap work (nesim_net_set_overlap's switch). */
int nesim_net_overlaps(const nesim_net *net);
/* Ticks between two exchanges of the ranks: the overlapped exchange's
 * window (min_delay / 2, at most 2^30; *overlapped 1) when it is in use,
 * else the blocking exchange's epoch (min_delay, at most 2^31). */
int64_t nesim_net_exchange_ticks(const nesim_net *net, int *overlapped);

/* The neurons of population pop this rank simulates: local indices [*lo, *hi). */
void nesim_population_owned(const nesim_net *net, int pop, uint32_t *lo, uint32_t *hi);

typedef struct nesim_net_traffic {
    uint64_t epochs;    /* exchanges: one per epoch in which anything happened (blocking),
                         * one per window run (overlapped: silent stretches still skipped) */
    uint64_t spikes;    /* spikes this rank sent */
    uint64_t bytes;     /* bytes this rank sent (spikes and per-epoch headers) */
    uint64_t deferred;  /* predictions this rank made while an exchange travelled (blocking
                         * exchange: those of each epoch's last tick) */
} nesim_net_traffic;
nesim_net_traffic nesim_net_traffic_of(const nesim_net *net);

/* The structure being run (valid while the network is). */
const nesim_graph *nesim_net_graph(const nesim_net *net);

/* Keeps the spikes of population pop in memory (see nesim_spikes). */
int nesim_record(nesim_net *net, int pop, int on, nesim_error *err);
void nesim_set_sink(nesim_net *net, nesim_spike_sink sink, void *ctx);

/* The whole number of ticks of tick_s seconds nearest `seconds` of virtual
 * time (`what` names the option in the message). NESIM_EINVAL when it is
 * not finite, below one tick, or beyond what int64 ticks hold (2^62, with
 * room for delays). */
int nesim_ticks_of(double seconds, double tick_s, const char *what, int64_t *ticks, nesim_error *err);

/* Runs n_ticks more ticks of virtual time. The first run initialises states
 * and predictions; the network is then frozen (no more populations or
 * projections). A failure (out of memory, a sink that stops) leaves the
 * network unusable for further runs. */
int nesim_run(nesim_net *net, int64_t n_ticks, nesim_error *err);

/* Read-out. Pointers stay valid until the next run or free. */
int64_t nesim_now(const nesim_net *net);
double nesim_tick_seconds(const nesim_net *net);
int nesim_population_count(const nesim_net *net);
const char *nesim_population_name(const nesim_net *net, int pop);
uint32_t nesim_population_size(const nesim_net *net, int pop);
uint32_t nesim_population_first(const nesim_net *net, int pop);
int nesim_population_of(const nesim_net *net, uint32_t global_id);
const nesim_counters *nesim_population_counters(const nesim_net *net, int pop);
/* The name of the kernels the population runs on ("lif/epoch", "if/point", ...). */
const char *nesim_population_kernels(const nesim_net *net, int pop);
uint64_t nesim_projection_synapses(const nesim_net *net, int proj);
nesim_queue_stats nesim_queue_statistics(const nesim_net *net);
int nesim_projection_count(const nesim_net *net);
const nesim_proj_spec *nesim_projection_spec(const nesim_net *net, int proj);
/* Copies the targets (local indices in the post population, ascending) of
 * source i of projection proj into out (up to cap); returns the fan-out. */
size_t nesim_projection_targets(const nesim_net *net, int proj, uint32_t i, uint32_t *out, size_t cap);
/* The weights of those targets, in the same order (an explicit projection's
 * per synapse; otherwise the projection's weight); returns the fan-out. */
size_t nesim_projection_weights(const nesim_net *net, int proj, uint32_t i, double *w, size_t cap);
/* The population's derived model constants (tests, reports); when its
 * parameters vary by neuron, those of its first neuron. */
const nesim_dyn *nesim_population_dyn(const nesim_net *net, int pop);
/* Neuron global_id's own constants (per-neuron parameters included); NULL
 * if there is no such neuron. */
const nesim_dyn *nesim_neuron_dyn(const nesim_net *net, uint32_t global_id);
const nesim_spike *nesim_spikes(const nesim_net *net, size_t *n);
/* Membrane state of one neuron advanced to the current tick (tests, probes):
 * up to max of its state values (v first). */
int nesim_neuron_state(nesim_net *net, uint32_t global_id, double *state, int max, nesim_error *err);

/* 64-bit FNV-1a over (t, id) of the recorded spikes: a cheap exact regression check. */
uint64_t nesim_spike_checksum(const nesim_spike *s, size_t n);
/* The same, one spike at a time: start from NESIM_SPIKE_CHECKSUM_INIT. */
#define NESIM_SPIKE_CHECKSUM_INIT 1469598103934665603ull
uint64_t nesim_spike_checksum_add(uint64_t h, int64_t t, uint32_t id);

#endif
