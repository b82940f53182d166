/* run.h — `nesim run` as a library call: a model spec run end to end.
 *
 * A layer model plays its input samples (an .npy, or heavy-tailed synthetic
 * ones) through its coded layers; with labels it also runs the same layers
 * as the ANN and compares; a network runs for `seconds` of virtual time. On a
 * chip the run is mapped and priced; with a trace it is recorded as it goes.
 * The result is the run's report (eval/report.h). */
#ifndef NESIM_JOBS_RUN_H
#define NESIM_JOBS_RUN_H

#include <jansson.h>
#include <stdint.h>

#include "base/comm.h"
#include "base/error.h"
#include "traces/store.h"

typedef struct nesim_run_opts {
    const char *spec;              /* the spec's path: JSON, or a SANA-FE network (.yaml, .yml, .net:
                                      net/sanafe.h; with a SANA-FE architecture as the chip) */
    /* layer models */
    const char *input;             /* .npy [samples, features...], any numeric dtype */
    uint64_t random_n;             /* or this many synthetic samples (Student t, nu = 3) */
    uint64_t samples;              /* 0: all */
    const char *output;            /* write the readout, f32 [samples, outputs] */
    const char *labels;            /* integer labels [samples]: accuracy */
    /* networks */
    double seconds;                /* > 0; 0: one second */
    int64_t steps;                 /* networks: > 0 runs this many ticks instead of seconds */
    int timing;                    /* nesim_timing (eval/chiptime.h): chip time per step on the chip */
    const char *timing_steps;      /* with timing: write each step's chip time (s), f64 [steps] .npy */
    /* both */
    const char *chip;              /* profile name or path; NULL or "none": no chip */
    const char *dense;             /* dense baseline profile; NULL: dense-45nm */
    const char *gpu;               /* layer models: GPU profiles to set beside, comma-separated, or NULL */
    const char *trace;             /* trace database, or NULL */
    nesim_trace_level record;
    int has_seed;
    uint64_t seed;                 /* else the spec's */
    int threads;                   /* layer models: threads per coded layer (0: every core);
                                      networks: threads the neurons are split over
                                      (nesim_run_network_threads; 0: decided by its size) */
    int no_overlap;                /* networks on several ranks or threads: the blocking
                                      exchange even where min delay >= 2 would let each
                                      exchange overlap the next window (nesim_net_set_overlap) */
    uint64_t max_memory;           /* refuse a run estimated above this many bytes
                                      (net/estimate.h); 0: the memory available now */
    /* Optional: progress in [0, 1]; called often, cheap to ignore. */
    void (*progress)(void *user, double done);
    void *user;
    /* Optional: the ranks to split the run over (base/comm.h; mpirun). Every
     * rank runs the same call; rank 0 alone writes the trace, and every rank
     * returns the same report. NULL: this process alone. */
    nesim_comm *comm;
} nesim_run_opts;

/* Runs o->spec; *report (the caller json_decref()s it) is the run's report,
 * with "trace_close_s" when a trace was written. Bad input of any kind is
 * NESIM_EINVAL with one line naming it, found before the run starts (an
 * --output that cannot be written included, and a run whose memory estimate
 * exceeds max_memory: nothing is allocated for it); an interrupted recording is
 * NESIM_EIO after the trace was marked interrupted. When writing --output
 * fails after a good run, the run is still reported (*report set) and
 * recorded complete, and the failure is returned. */
int nesim_run_spec(const nesim_run_opts *o, json_t **report, nesim_error *err);

/* The threads a network spec runs on with these options: o->threads when
 * given, else every core for a network of 2 million synapses or more, else
 * one; one when the memory estimate says a split run (about twice one
 * thread's memory: the shared graph and the threads' slices of its rows)
 * does not fit; 1 under mpirun (one thread per rank) and for a layer model.
 * Results are the same for any count, bit for bit. */
struct nesim_spec;
int nesim_run_network_threads(const nesim_run_opts *o, const struct nesim_spec *spec);

#endif
