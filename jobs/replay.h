/* replay.h — `nesim replay` as a library call: a recorded layer's input
 * spikes drive that layer and every layer after it again.
 *
 * Layer L's inputs are rebuilt exactly from its recorded spikes: per sample,
 * the count of each channel is the sum of sign x step weight over its spikes
 * (the codes table gives each sample's first tick and steps), and the input
 * value is count x the recorded threshold; the layer then runs with that
 * threshold fixed, so its output — and everything downstream, if nothing was
 * changed — is bit for bit the original. The replay is recorded as a new run
 * whose parent is the one replayed, and may change the chip, the coding or k
 * of the layers after L. Weights are found through the stored spec; a weight
 * file that moved or changed since (SHA-256) is an error. */
#ifndef NESIM_JOBS_REPLAY_H
#define NESIM_JOBS_REPLAY_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "traces/store.h"

typedef struct nesim_replay_opts {
    const char *db;            /* the trace holding the run */
    int64_t run;
    const char *from_layer;    /* a layer name or index */
    const char *chip;          /* NULL: the run's (loihi if it had none) */
    const char *dense;         /* NULL: the run's, or dense-45nm */
    int coding;                /* >= 0: the input coding of the layers after L */
    double k;                  /* > 0: their adaptive-threshold divisor */
    const char *trace;         /* where to record the replay; NULL: db */
    nesim_trace_level record;
    const char *output;        /* language models: the replay's logits, f32 [tokens, vocab] */
    int quiet;                 /* language models: no progress */
    void (*progress)(void *user, double done);
    void *user;
} nesim_replay_opts;

/* Replays; *report is the replay's run report (eval/report.h) with a
 * "replay" object: {"parent_run", "from_layer", "from_layer_name", "trace",
 * "run"}. */
int nesim_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err);

/* A language-model run (its stored spec is a language-model spec): the
 * recorded tokens (layer 0's spikes) are played again, teacher-forced, the
 * projections before L with their recorded codings; L's input is checked
 * count for count and threshold for threshold against its recorded spikes
 * (nesim_lm_run_expect), so the replay stands on exactly the recorded
 * activity; L keeps its coding, the spiked projections after it take
 * o->coding / o->k. The residual stream and KV cache before L are rebuilt by
 * recomputation, not stored (a trace would need layers x hidden doubles per
 * token). *report is jobs/lm.h's report plus the "replay" object. nesim_replay
 * calls this for such runs. */
int nesim_lm_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err);

/* A NIR graph's run (its stored spec has "nesim_nir"): layer L's recorded
 * spikes are played as L's output and the nodes after it run again, with
 * the run's dt, discretisation and reset (stored with its spec), on o->chip
 * or the run's chip; nothing changed gives the recorded spikes exactly. A
 * node after L that also takes input from before L is refused; --coding,
 * --k and --output do not apply. *report is jobs/nir.h's report plus the
 * "replay" object. nesim_replay calls this for such runs (jobs/nir_replay.c). */
int nesim_nir_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err);

#endif
