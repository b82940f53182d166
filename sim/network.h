/* network.h — build a spiking network and run it in virtual time (public API).
 *
 * A network is populations of one neuron model each, projections between them
 * and an event-driven run loop. Virtual time is int64 ticks of tick_s seconds.
 * Everything random (initial states, connectivity, Poisson sources) draws from
 * GSL's mt19937, one stream per population/projection, seeded from the
 * network seed and the object's index: the same seed gives the same network
 * and the same spikes, byte for byte.
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
 * No step visits a neuron that nothing reached: cost follows activity. */
#ifndef NESIM_NETWORK_H
#define NESIM_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "neurons/neuron.h"
#include "sim/error.h"

typedef struct nesim_net nesim_net;

enum nesim_init_kind { NESIM_INIT_CONST = 0, NESIM_INIT_UNIFORM, NESIM_INIT_NORMAL };

typedef struct nesim_init_dist {
    enum nesim_init_kind kind;
    double a, b; /* const: a; uniform: [a, b); normal: mean a, sd b */
} nesim_init_dist;

typedef struct nesim_pop_spec {
    const char *name;            /* copied; unique within the network */
    const char *model;           /* "if", "lif", "lif_exp", "alif", "poisson" */
    uint32_t n;                  /* neurons, > 0 */
    nesim_neuron_params params;
    nesim_init_dist v_init;      /* initial membrane potential */
} nesim_pop_spec;

enum nesim_conn_kind { NESIM_ALL_TO_ALL = 0, NESIM_ONE_TO_ONE, NESIM_FIXED_PROB };

typedef struct nesim_proj_spec {
    int pre, post;               /* population ids */
    enum nesim_conn_kind kind;
    double p;                    /* NESIM_FIXED_PROB: connection probability in [0, 1] */
    double weight;               /* volts (a jump, or a current increment) */
    int64_t delay;               /* ticks, >= 1 */
    int no_autapses;             /* pre == post: skip i -> i */
} nesim_proj_spec;

typedef struct nesim_counters {
    uint64_t spikes;
    uint64_t sops;        /* synaptic events delivered to this population */
    uint64_t updates;     /* neuron state updates (neuron x tick touched) */
    uint64_t events;      /* queue events handled for this population */
    uint64_t predictions; /* threshold-crossing predictions computed */
} nesim_counters;

typedef struct nesim_queue_stats {
    uint64_t max_depth;
    double mean_depth;    /* time-weighted over virtual time run */
    uint64_t ticks_active; /* ticks at which anything happened */
} nesim_queue_stats;

typedef struct nesim_spike {
    int64_t t;
    uint32_t id; /* global neuron id: population first id + index */
} nesim_spike;

/* Called for every spike, in canonical order. Return nonzero to stop the run
 * (nesim_run then fails with NESIM_EIO and the sink's message). */
typedef int (*nesim_spike_sink)(void *ctx, int64_t t, uint32_t id, int pop);

/* Creates an empty network. Returns NULL and fills err on bad arguments. */
nesim_net *nesim_net_new(double tick_s, uint64_t seed, nesim_error *err);
void nesim_net_free(nesim_net *net);

/* Adds a population; *id receives its index. Fails with NESIM_EINVAL on an
 * unknown model, n = 0, bad parameters (message names the population). */
int nesim_add_population(nesim_net *net, const nesim_pop_spec *spec, int *id, nesim_error *err);

/* Adds a projection and draws its connectivity now. *id receives its index. */
int nesim_connect(nesim_net *net, const nesim_proj_spec *spec, int *id, nesim_error *err);

/* Keeps the spikes of population pop in memory (see nesim_spikes). */
int nesim_record(nesim_net *net, int pop, int on, nesim_error *err);
void nesim_set_sink(nesim_net *net, nesim_spike_sink sink, void *ctx);

/* Runs n_ticks more ticks of virtual time. The first run initialises states
 * and predictions; the network is then frozen (no more populations or projections). */
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
uint64_t nesim_projection_synapses(const nesim_net *net, int proj);
nesim_queue_stats nesim_queue_statistics(const nesim_net *net);
int nesim_projection_count(const nesim_net *net);
const nesim_proj_spec *nesim_projection_spec(const nesim_net *net, int proj);
/* Copies the targets (local indices in the post population, ascending) of
 * source i of projection proj into out (up to cap); returns the fan-out. */
size_t nesim_projection_targets(const nesim_net *net, int proj, uint32_t i, uint32_t *out, size_t cap);
/* The population's derived model constants (tests, reports). */
const nesim_dyn *nesim_population_dyn(const nesim_net *net, int pop);
const nesim_spike *nesim_spikes(const nesim_net *net, size_t *n);
/* Membrane state of one neuron advanced to the current tick (tests, probes). */
int nesim_neuron_state(nesim_net *net, uint32_t global_id, double *state, int max, nesim_error *err);

/* 64-bit FNV-1a over (t, id) of the recorded spikes: a cheap exact regression check. */
uint64_t nesim_spike_checksum(const nesim_spike *s, size_t n);

#endif
