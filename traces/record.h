/* record.h — recording a run into a trace as it goes: the adapter between
 * the simulation's observers (sim/infer.h sinks, the network's spike sink)
 * and the trace writer (traces/store.h), and, at the end, the run's report
 * (eval/report.h) stored as metrics, its energy and its spike checksum.
 *
 * For a layer model a layer's trace neurons are its input channels (the
 * spikes it receives: an adaptive layer's spikes exist only as the next
 * layer's input coding); for a network, populations are layers. Per sample
 * and coded layer the first tick, steps and threshold go to the codes table
 * (what replay needs). Ctrl-C while recording marks the run interrupted. */
#ifndef NESIM_TRACES_RECORD_H
#define NESIM_TRACES_RECORD_H

#include <jansson.h>

#include "eval/cost.h"
#include "net/spec.h"
#include "sim/infer.h"
#include "sim/network.h"
#include "traces/store.h"

typedef struct nesim_recorder nesim_recorder;

typedef struct nesim_record_opts {
    const char *path;          /* the trace database (created if needed) */
    nesim_trace_level level;
    const nesim_spec *spec;
    const char *chip, *dense;  /* profile names, or NULL */
    uint64_t seed;
    int64_t parent_run;        /* replays: the run replayed; 0 otherwise */
    const char *note;
} nesim_record_opts;

/* Opens the trace and begins a run of the spec's layers (m) or network
 * (net; exactly one of them is given), adding its layers or populations. */
int nesim_record_begin(const nesim_record_opts *o, const nesim_infer *m, const nesim_net *net, nesim_recorder **out,
                       nesim_error *err);

/* The observers to install on the layer runner (nesim_infer_set_sink). */
nesim_infer_sink nesim_record_infer_sink(nesim_recorder *r);

/* Feeds one network spike (from the network's sink); nonzero: stop the run
 * (the trace failed, or Ctrl-C). */
int nesim_record_net_spike(nesim_recorder *r, int64_t t, uint32_t id, int pop);

/* The run's chip time per tick (nesim_trace_chip_steps), before the end. */
int nesim_record_chip_steps(nesim_recorder *r, const double *seconds, int64_t n);

/* The id of the run being recorded. */
int64_t nesim_record_run_id(const nesim_recorder *r);

/* Nonzero once Ctrl-C was pressed while recording. */
int nesim_record_interrupted(const nesim_recorder *r);

/* Ends the run and closes the trace: with a report, its numbers become
 * metrics and its checksum the run's; the cost's energy per layer and term
 * is stored; samples / ticks (-1: derived) set the extent; status says how
 * the run ended (an interrupted one is marked so whatever status says).
 * Frees r in every case. */
int nesim_record_end(nesim_recorder *r, const json_t *report, const nesim_cost *cost, int64_t samples, int64_t ticks,
                     nesim_trace_status status, nesim_error *err);

#endif
