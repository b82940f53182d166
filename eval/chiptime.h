/* chiptime.h — how long a mapped network takes on a time-stepped chip.
 *
 * A time-stepped chip (Loihi, TrueNorth) runs a step in two phases behind a
 * barrier: every core visits its neurons (access each, update those whose
 * state changes, emit spikes, send one message per destination core), and
 * every core processes the messages it receives (one per message, one per
 * synapse the message meets). Latencies per event come from the profile's
 * "latency" section (net/chip.h). Two models:
 *
 *   simple    each core's time is the larger of its generation work and its
 *             receive work; the step takes the slowest core plus the
 *             synchronisation cost (SANA-FE's "simple" model).
 *   detailed  the step's messages are simulated as discrete events: each
 *             leaves its core when the core's neuron pass reaches it, crosses
 *             the mesh link by link on its dimension-order route (x, then y),
 *             a link carries one message at a time for its hop latency, and a
 *             link's buffer at the next router holds link_buffer messages —
 *             a message whose next buffer is full waits where it is, holding
 *             its own slot (back-pressure) — and the destination core takes
 *             messages one at a time in arrival order. A hot link or core
 *             stretches the step. SANA-FE's "detailed" model instead
 *             estimates congestion from the density of messages along each
 *             route (semi-analytical); here every link and buffer is a
 *             resource in a discrete-event simulation.
 *
 * An asynchronous chip (Speck; a profile with "clocking": "asynchronous")
 * has no step and no barrier; its model is
 *
 *   async     every event is processed when it arrives. A step's input
 *             events arrive at s x input_dt (real time: the run's tick);
 *             a core takes the messages that reach it one at a time in
 *             arrival order (message_in + one synaptic op per synapse met),
 *             a neuron fires when the last message that reached it is done
 *             (or at its step's start) plus spike_out, and its messages
 *             leave after message_out and cross the mesh hop by hop. Groups
 *             are taken in order within a step, so wiring within a step
 *             (a NIR graph's) chains events through the layers. A step's
 *             time is its latency: from its input's arrival to the last
 *             event it caused; the run's chip time is the time elapsed from
 *             the first input to the last event (at least the input's own
 *             duration), over which resting power is paid.
 *
 * A neuron is updated in a step when its state can change: every step for a
 * model that drifts (leak or drive: neurons/neuron.h drifts()), otherwise in
 * the steps it receives input. A step costs one step of work whether or not
 * anything spikes; the cost of *computing* it follows activity (a step with
 * no spikes and no input is priced in O(1)). */
#ifndef NESIM_EVAL_CHIPTIME_H
#define NESIM_EVAL_CHIPTIME_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"
#include "net/chip.h"
#include "net/map.h"
#include "sim/network.h"

typedef enum nesim_timing {
    NESIM_TIMING_NONE = 0,
    NESIM_TIMING_SIMPLE,
    NESIM_TIMING_DETAILED,
    NESIM_TIMING_ASYNC
} nesim_timing;

/* "simple" / "detailed" / "async" / "none"; parse returns -1 for other names. */
const char *nesim_timing_name(nesim_timing t);
int nesim_timing_parse(const char *name);

typedef struct nesim_chiptime nesim_chiptime;

/* What bounded a step: a core's neuron pass, a core's receiving, or (detailed)
 * a message's path through the mesh. */
typedef enum { NESIM_CT_GEN = 0, NESIM_CT_RECV, NESIM_CT_NET } nesim_ct_bound;

typedef struct nesim_chiptime_result {
    int64_t steps;
    double total_s;            /* chip time of all steps */
    double mean_s, max_s;      /* per step */
    int64_t max_step;          /* the slowest step (first of equals) */
    uint64_t critical_core;    /* in it: the core that finished last */
    nesim_ct_bound bound;      /* and what bounded it */
    /* detailed: the link of the slowest step that was busiest, as the
     * router it leaves (x, y) and direction "E", "W", "N", "S"; busy time in
     * the step (0 and dir NULL when the step used no link) */
    uint64_t link_x, link_y;
    const char *link_dir;
    double link_busy_s;
    double sync_s;             /* per step */
    uint64_t routers;          /* routers in use (the sync table's key) */
    uint64_t messages;         /* spike messages over the run */
    double blocked_s;          /* detailed: time messages waited for a full buffer, summed */
    const double *step_s;      /* per step, owned by the nesim_chiptime (async: its latency) */
    double elapsed_s;          /* async: first input to last event (total_s is this) */
} nesim_chiptime_result;

/* What the timing reads of a mapped model (it keeps a copy of this struct
 * and calls it while it runs: user must outlive the nesim_chiptime). Neurons
 * are numbered group by group in group order; groups are the mapping's. */
/* how a neuron's state moves; a relay is a source whose spikes are another
 * group's neurons firing (a coded layer's input coder on the cores of the
 * layer it reads): no neuron pass of its own, but a spike out */
enum { NESIM_CT_PASSIVE = 0, NESIM_CT_DRIFT = 1, NESIM_CT_SOURCE = 2, NESIM_CT_RELAY = 3 };
enum { NESIM_CT_DENSE = 0, NESIM_CT_SPARSE = 1, NESIM_CT_CONV = 2 };    /* how an edge's synapses are stored */
typedef struct nesim_ct_graph {
    void *user;
    int n_groups, n_edges;
    uint32_t (*size)(void *user, int group);
    /* passive: updated in the steps input reaches it; drift: every step
     * (leak, drive, bias); source: makes spikes, no neuron work */
    int (*kind)(void *user, int group, uint32_t i);
    /* edge e joins group pre to post; input crosses it in `delay` steps (0:
     * the same step, as a NIR graph's wiring) */
    void (*edge)(void *user, int e, int *pre, int *post, int *syn, int64_t *delay);
    /* the targets (indices in post, ascending) of pre neuron i, up to cap */
    size_t (*targets)(void *user, int e, uint32_t i, uint32_t *out, size_t cap);
    /* optional: edge e is dense (every pre neuron reaches every post neuron),
     * so its messages follow from the placement, never from a target list */
    int (*dense)(void *user, int e);
    /* optional: targets lists only this rank's part of each edge's targets
     * (a graph drawn in parts): the ranks of merge count each source's
     * synapses per destination core from their parts and merge them (a
     * collective: every rank builds alike); with merge_give 0 a rank adds
     * nothing (it holds the same part as another: the threads of one rank).
     * A passive neuron's update follows its own input: each rank marks its
     * own targets, and the marks of every step some spike's input reaches
     * are gathered (a collective per such step, reached by every rank alike
     * because every rank is given every spike). Only the time-stepped
     * models, and no dense callback (nesim_chiptime_parts_ok). */
    nesim_comm *merge;
    int merge_give;
} nesim_ct_graph;

/* Prepares the timing of graph g as mapped by map on chip (which must have
 * a latency section: NESIM_EINVAL naming the chip otherwise). */
int nesim_chiptime_new_graph(const nesim_chip *chip, const nesim_chip_caps *caps, const nesim_mapping *map,
                             const nesim_ct_graph *g, nesim_timing model, nesim_chiptime **out, nesim_error *err);

/* Whether model can time a graph from parts of it on each rank: any but
 * the asynchronous model (NESIM_TIMING_NONE: no timing, nothing to need),
 * which follows each neuron's last input across steps, so every rank needs
 * the whole graph. */
int nesim_chiptime_parts_ok(nesim_timing model);

/* The same for a recurrent network (its populations are the groups, its
 * projections the edges: nesim_cost_network's mapping); net must outlive it.
 * A graph drawn in parts (net/graph.h) is timed by the network's ranks
 * together (nesim_net_set_comm: every rank calls this alike) when
 * nesim_chiptime_parts_ok says it can be; NESIM_EINVAL otherwise. */
int nesim_chiptime_new(const nesim_chip *chip, const nesim_chip_caps *caps, const nesim_mapping *map,
                       const nesim_net *net, nesim_timing model, nesim_chiptime **out, nesim_error *err);
void nesim_chiptime_free(nesim_chiptime *ct);

/* The spikes of step t (global neuron ids, any order), steps in ascending
 * order; steps not given have no spikes. NESIM_ENOMEM, or NESIM_EINVAL for a
 * step before the last one given. */
int nesim_chiptime_step(nesim_chiptime *ct, int64_t t, const uint32_t *ids, size_t n, nesim_error *err);

/* async: the real time between two steps' input events (default: the chip
 * profile's tick). */
void nesim_chiptime_set_input_dt(nesim_chiptime *ct, double seconds);

/* Closes steps up to `steps` and fills *r (valid until the next call or the
 * free). */
int nesim_chiptime_finish(nesim_chiptime *ct, int64_t steps, nesim_chiptime_result *r, nesim_error *err);

/* Several ranks or threads see every spike of a run: instead of each timing
 * every step, member `part` of `parts` times the steps s with s % parts ==
 * part (the simple and detailed models: each step is timed on its own;
 * asynchronous time, which runs across steps, stays whole: a no-op). Call it
 * before the first step; then finish with nesim_chiptime_finish_shared on
 * every member with their communicator (of `parts` ranks): the members' steps
 * are gathered and every member gets the same results, bit for bit those of
 * one member timing every step. */
struct nesim_comm;
void nesim_chiptime_share(nesim_chiptime *ct, int part, int parts);
int nesim_chiptime_finish_shared(nesim_chiptime *ct, int64_t steps, struct nesim_comm *comm,
                                 nesim_chiptime_result *r, nesim_error *err);

/* Chip time of steps [t0, t1) of a finished timing (clipped to its steps). */
double nesim_chiptime_span_s(const nesim_chiptime_result *r, int64_t t0, int64_t t1);

/* Spikes that arrive out of tick order — a layer model's or a language
 * model's layers report theirs one after the other, branches from the same
 * tick — gathered, then handed to the timing in tick order by flush; and the
 * tick windows parts of the model play in, by key, to price after finish.
 * Zero-initialise; free with nesim_ct_feed_free. */
typedef struct nesim_ct_feed {
    uint64_t *buf;        /* tick << 32 | neuron */
    size_t n, cap;
    uint32_t *ids;
    size_t ids_cap;
    int64_t *win;         /* key, first tick, steps */
    size_t n_win, cap_win;
} nesim_ct_feed;
int nesim_ct_feed_spike(nesim_ct_feed *f, int64_t tick, uint32_t id, nesim_error *err);
int nesim_ct_feed_flush(nesim_ct_feed *f, nesim_chiptime *ct, nesim_error *err);
int nesim_ct_feed_window(nesim_ct_feed *f, int64_t key, int64_t t0, int64_t steps, nesim_error *err);
/* The chip time of key's windows (those of one key may overlap: each counts). */
double nesim_ct_feed_window_s(const nesim_ct_feed *f, const nesim_chiptime_result *r, int64_t key);
void nesim_ct_feed_free(nesim_ct_feed *f);

/* The chip-time section of a report (new reference): per step and in all,
 * the slowest step and what bound it, throughput and, with energy_j >= 0,
 * the energy-delay product. */
json_t *nesim_chiptime_json(const nesim_chiptime_result *r, nesim_timing model, double energy_j);

#endif
