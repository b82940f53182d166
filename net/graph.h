/* graph.h — a recurrent network as data: populations of one neuron model
 * each, and projections between them with their connectivity drawn.
 *
 * The graph is what the engine runs (sim/network.h), what the mapper places
 * on a chip (eval/cost.h) and what a trace records; none of them draws
 * connectivity again. Connectivity is a counter-based draw keyed by (graph
 * seed, projection index, target neuron) (base/rng.h): the same seed gives
 * the same synapses, byte for byte, and any set of targets drawn alone gets
 * the same synapses as in the whole graph.
 *
 * Connection rules: all_to_all (optionally without i -> i), one_to_one, and
 * fixed_prob (each pair independently with probability p, drawn as geometric
 * gaps; stored as CSR, targets ascending), with one weight and delay per
 * projection; and explicit: a list of synapses pre -> post, each with its
 * own weight and delay (a connectome, a NIR graph's weight matrix), stored
 * as CSR with per-synapse weights, one projection per distinct delay
 * (ascending), built by counting sorts in O(synapses x log(delays) + pre
 * neurons x delays). */
#ifndef NESIM_NET_GRAPH_H
#define NESIM_NET_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "base/comm.h"
#include "base/error.h"
#include "net/classes.h"
#include "neurons/neuron.h"
#include "neurons/threshold.h"

/* NESIM_INIT_REST: each neuron at its own resting level (v_rest, or v_reset
 * when the model has none), which differs by neuron when v_rest does;
 * NESIM_INIT_VALUES: neuron i at values[i]. */
enum nesim_init_kind { NESIM_INIT_CONST = 0, NESIM_INIT_UNIFORM, NESIM_INIT_NORMAL, NESIM_INIT_REST, NESIM_INIT_VALUES };

typedef struct nesim_init_dist {
    enum nesim_init_kind kind;
    double a, b; /* const: a; uniform: [a, b); normal: mean a, sd b; rest: unused */
    const double *values; /* values: n finite values (borrowed in a spec; the graph keeps a copy) */
} nesim_init_dist;

typedef struct nesim_pop_spec {
    const char *name;            /* copied; unique within the network */
    const char *model;           /* a name of nesim_model_names() */
    const char *threshold;       /* a rule of nesim_rule_names(), or NULL: the model's own */
    uint32_t n;                  /* neurons, > 0 */
    const nesim_param *params;   /* named values (see NESIM_PARAMS); copied */
    size_t n_params;
    /* Parameters given per neuron (n values each; read during the call
     * only); a name may not also be among params. */
    const nesim_param_array *arrays;
    size_t n_arrays;
    nesim_init_dist v_init;      /* initial membrane potential */
    /* Where the neurons sit on a chip: neuron j on core cores[j] (global
     * core numbers, net/map.h; copied), or NULL: the mapper places them. */
    const uint32_t *cores;
} nesim_pop_spec;

enum nesim_conn_kind { NESIM_ALL_TO_ALL = 0, NESIM_ONE_TO_ONE, NESIM_FIXED_PROB, NESIM_EXPLICIT };

/* How a chip stores a projection's synapses, which sets the time (and, on
 * profiles that price them apart, the energy) of one synaptic operation:
 * AUTO is dense for all_to_all and one_to_one, sparse otherwise. */
enum nesim_syn_storage { NESIM_STORE_AUTO = 0, NESIM_STORE_DENSE, NESIM_STORE_SPARSE, NESIM_STORE_CONV };

typedef struct nesim_proj_spec {
    int pre, post;               /* population ids */
    enum nesim_conn_kind kind;
    double p;                    /* NESIM_FIXED_PROB: connection probability in [0, 1] */
    double weight;               /* volts (a jump, or a current increment) */
    int64_t delay;               /* ticks, >= 1 */
    int no_autapses;             /* pre == post: skip i -> i */
    enum nesim_syn_storage storage;
    /* NESIM_EXPLICIT (borrowed, read during connect only): n_syn synapses
     * pre_idx[k] -> post_idx[k] of weight w[k] and delay delays[k] ticks
     * (delays NULL: `delay` for all; weight is unused). Synapses repeating a
     * (pre, post, delay) are one synapse of their summed weight. */
    const uint32_t *pre_idx, *post_idx;
    const double *w;
    const int64_t *delays;
    uint64_t n_syn;
} nesim_proj_spec;

typedef struct nesim_graph_pop {
    char *name;
    uint32_t n, first;           /* neurons; global id of the first */
    nesim_dyn dyn;               /* the model's prepared constants (class 0 when they vary) */
    /* Per-neuron parameters: neuron j's constants are cdyn[cls[j]], n_cls
     * classes of equal values (net/classes.h); cls NULL when none vary.
     * Decay tables are built once per distinct set of time constants (for
     * the first NESIM_GRAPH_TABLE_SETS of them; further classes compute
     * exp() directly, bit-identically) and shared. */
    nesim_dyn *cdyn;
    uint32_t *cls, n_cls;
    nesim_init_dist v_init;
    int *out;                    /* projections leaving this population, in id order */
    int n_out;
    uint32_t *cores;             /* placement given with the population, or NULL */
} nesim_graph_pop;

typedef struct nesim_graph_proj {
    nesim_proj_spec s;
    uint64_t *row;               /* fixed_prob, explicit: CSR offsets per pre neuron (n_pre + 1) */
    uint32_t *col;               /* fixed_prob, explicit: targets, ascending per pre neuron */
    double *w;                   /* explicit: the weight of each synapse, parallel to col */
    double w_min, w_max;         /* explicit: its weights' range (s.weight otherwise) */
    uint64_t n_syn;              /* the whole projection's (a part graph's fixed_prob: once gathered) */
    /* fixed_prob, explicit: the targets held (row and col hold only these:
     * the whole post population unless the graph is a part), and in a part
     * graph each pre neuron's whole fan-out (a fixed_prob projection's: its
     * part's until nesim_graph_part_gather) */
    uint32_t part_lo, part_hi;
    uint64_t n_here;             /* synapses held in row / col */
    uint32_t *fan;
} nesim_graph_proj;

/* Which part of the targets a graph draws: members first .. first + count - 1
 * of total, each population split in total blocks as nesim_par_split does
 * (the split sim/network.c gives ranks). */
typedef struct nesim_graph_part {
    int first, count, total;
} nesim_graph_part;

typedef struct nesim_graph {
    double tick_s;
    uint64_t seed;
    nesim_graph_pop *pops;
    int n_pops;
    nesim_graph_proj *projs;
    int n_projs;
    uint32_t n_total;            /* neurons in all populations (< 2^31) */
    nesim_graph_part part;       /* {0, 1, 1}: the whole graph */
} nesim_graph;

/* An empty graph. Returns NULL and fills err on a bad tick or no memory. */
nesim_graph *nesim_graph_new(double tick_s, uint64_t seed, nesim_error *err);
void nesim_graph_free(nesim_graph *g);

enum { NESIM_GRAPH_TABLE_SETS = 64 };

/* Adds a population; *id (may be NULL) receives its index. NESIM_EINVAL on an
 * unknown model or rule, n = 0, a bad parameter (message names the
 * population, the parameter and, for a per-neuron one, the neuron) or
 * initial distribution. */
int nesim_graph_add_population(nesim_graph *g, const nesim_pop_spec *spec, int *id, nesim_error *err);

/* Adds a projection and draws its connectivity now. *id (may be NULL)
 * receives its index (explicit: of the first of its projections, one per
 * distinct delay). NESIM_EINVAL naming both populations on a bad spec (an
 * explicit synapse's index out of range, a non-finite weight or a delay
 * outside [1, 2^31 - 1] is named by its position in the list). */
int nesim_graph_connect(nesim_graph *g, const nesim_proj_spec *spec, int *id, nesim_error *err);

/* The population holding global neuron id g (-1 if none): binary search. */
int nesim_graph_population_of(const nesim_graph *g, uint32_t global_id);

/* Copies the targets (local indices in the post population, ascending) of
 * pre neuron i of projection j into out (up to cap); returns how many there
 * are — in a part graph only the part's of a fixed_prob or explicit
 * projection. */
size_t nesim_graph_targets(const nesim_graph *g, int j, uint32_t i, uint32_t *out, size_t cap);
/* The first k in [a, b) with col[k] >= v (col ascending there): where a
 * row's targets from v on begin. */
uint64_t nesim_graph_lower_bound(const uint32_t *col, uint64_t a, uint64_t b, uint32_t v);
/* Pre neuron i's whole fan-out in projection j (a part graph's: once gathered). */
uint64_t nesim_graph_fanout(const nesim_graph *g, int j, uint32_t i);

/* Makes g hold only a part of each fixed_prob and explicit projection it
 * connects from now on (NEST's way: a rank builds the synapses of the
 * targets it simulates): fixed_prob draws only the part (its draws are keyed
 * by target, so the part's synapses are the whole graph's), explicit is built
 * whole from its lists and cut. Call before connecting; NESIM_EINVAL on a bad part or a
 * graph that has projections. A part graph is mapped onto a chip and timed
 * on it by its ranks together (eval/cost.h; eval/chiptime.h, which says
 * when it needs the whole graph). */
int nesim_graph_set_part(nesim_graph *g, nesim_graph_part part, nesim_error *err);
/* Is g a part (some targets not drawn)? */
int nesim_graph_is_part(const nesim_graph *g);
/* The neurons of population p whose incoming synapses g's part holds:
 * [*lo, *hi) (all of them when g is whole). A fixed_prob or explicit
 * projection's targets lie there; the other rules list every target. */
void nesim_graph_part_range(const nesim_graph *g, int p, uint32_t *lo, uint32_t *hi);
/* Makes a part graph's counts whole: sums every fixed_prob projection's
 * synapse count and fan-outs over the members of comm (each holding one
 * part, together all of them). A collective: every member calls it. */
int nesim_graph_part_gather(nesim_graph *g, nesim_comm *comm, nesim_error *err);
/* The synapses g holds (what the parts split). */
uint64_t nesim_graph_synapses_here(const nesim_graph *g);

/* Names as written in specs; "?" outside the enum. */
const char *nesim_conn_rule_name(enum nesim_conn_kind k);
/* "auto", "dense", "sparse", "conv"; parse: -1 for other names. */
const char *nesim_storage_name(enum nesim_syn_storage s);
int nesim_storage_parse(const char *name);
/* The storage a projection's synapses get (AUTO resolved by its rule). */
enum nesim_syn_storage nesim_storage_of(const nesim_proj_spec *ps);

#endif
