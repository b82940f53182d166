/* nir.h — `nesim run model.nir` and `nesim spec model.nir` as library calls.
 *
 * A NIR graph comes from its HDF5 file or from the JSON spec `nesim spec`
 * prints (net/nir.h); it runs on input frames [samples, steps, features...]
 * (.npy, any numeric dtype: spikes or currents per step) through
 * sim/nir_run.h, and the report gives per node its spikes, synaptic
 * operations, updates and firing rate, per sample the readout (the Output
 * node's values summed over the steps) and its argmax, and a checksum of
 * every spike (step, node, index) for exact comparisons, and the energy:
 * SOPs x energy.synaptic_op + updates x energy.neuron_update_active +
 * spikes x energy.spike_out of the --chip profile, bias additions as graded
 * element ops, beside the same graph stepped densely (every MAC of every
 * step in fp16 on dense-45nm). Routing is not priced. */
#ifndef NESIM_JOBS_NIR_H
#define NESIM_JOBS_NIR_H

#include <jansson.h>

#include "base/error.h"
#include "net/nir.h"
#include "sim/nir_run.h"
#include "traces/store.h"

typedef struct nesim_nir_job_opts {
    const char *model;      /* .nir file or its JSON spec */
    const char *input;      /* .npy [samples, steps, features...] */
    nesim_nir_opts run;
    int strict;             /* refuse edges that name no node (no repair) */
    size_t max_samples;     /* 0: all */
    const char *spikes_out; /* write every spike as CSV (sample,step,node,index) here, or NULL */
    const char *chip;       /* profile for the energy (NULL: loihi; "none": no energy) */
    int timing;             /* nesim_timing (eval/chiptime.h): chip time per step on the chip */
    double input_dt;        /* async timing: real time between steps' input events (0: run.dt) */
    const char *timing_steps; /* with timing: each step's chip time, f64 [samples x steps] .npy */
    /* Record the run in this trace (traces/store.h): one layer per spiking
     * node (its spikes, and as its SOPs those of the Linear/Conv/Pool nodes
     * that feed it), ticks = sample x steps + step of dt seconds, one sample
     * row per input sample; the spec stored is the graph's JSON. The report
     * gets "trace": {"file", "run"}. */
    const char *trace;
    nesim_trace_level record; /* default spikes */
    /* Replay (nesim_nir_replay): instead of model and input, the graph and
     * run options stored with run replay_run of replay_db, the layer
     * replay_layer's recorded spikes as its output, the nodes after it run
     * again; parent_run marks the recorded replay. */
    const char *replay_db;
    int64_t replay_run;
    const char *replay_layer;
    int64_t parent_run;
    void (*progress)(void *user, double done);
    void *user;
} nesim_nir_job_opts;

void nesim_nir_job_opts_init(nesim_nir_job_opts *o);

/* Nonzero when path is a NIR model nesim reads: an HDF5 file, or a JSON
 * object with "nesim_nir". */
int nesim_nir_job_is_model(const char *path);

/* Loads the graph from a .nir file or its JSON spec; *notes (may be NULL)
 * points to the repair notes (in g). */
int nesim_nir_job_load(const char *path, int strict, nesim_nir_graph *g, nesim_error *err);

/* Runs the job; *report (caller decrefs) is the whole result as JSON. */
int nesim_nir_job(const nesim_nir_job_opts *o, json_t **report, nesim_error *err);

/* The spec of a NIR file (JSON, caller decrefs). */
int nesim_nir_spec_build(const char *path, int strict, json_t **spec, nesim_error *err);

#endif
