/* trace_run.h — `nesim run --trace`: records a run into a trace database
 * through traces/store.h, as the run goes. */
#ifndef NESIM_CLI_TRACE_RUN_H
#define NESIM_CLI_TRACE_RUN_H

#include <signal.h>

#include "net/spec.h"
#include "sim/cost.h"
#include "sim/infer.h"
#include "sim/network.h"
#include "traces/store.h"

typedef struct trace_run {
    nesim_trace *t;
    nesim_trace_level level;
    int64_t run;
    struct sigaction old_int;
    int sigint;
    /* network runs: activity of the current tick, per population */
    int64_t tick;
    int npop;
    int64_t *spk, *sops;
    uint64_t *fanout; /* synapses out of each neuron (global id) */
    const nesim_net *net;
} trace_run;

/* Opens path, begins a run of the spec (layers or network) and adds its
 * layers or populations. infer or net gives the structure. */
int trace_run_begin(trace_run *tr, const char *path, const char *record, const nesim_spec *spec,
                    const nesim_infer *infer, const nesim_net *net, const char *chip, uint64_t seed,
                    int64_t parent, const char *note, nesim_error *err);

/* Observers to install on the layer runner. */
nesim_infer_sink trace_run_infer_sink(trace_run *tr);

/* The network spike sink: also feeds `next` (the ISI statistics). */
int trace_run_net_spike(trace_run *tr, int64_t t, uint32_t id, int pop);

/* After the run: per-layer metrics and energy, extent, status; closes. */
int trace_run_end_layers(trace_run *tr, const nesim_infer_report *r, const nesim_cost *cost, int status,
                         nesim_error *err);
int trace_run_end_network(trace_run *tr, int64_t ticks, const nesim_cost *cost, int status, nesim_error *err);

/* Nonzero once Ctrl-C was pressed during a traced run. */
int trace_run_interrupted(const trace_run *tr);

#endif
