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
} nesim_replay_opts;

/* Replays; *report is the replay's run report (eval/report.h) with a
 * "replay" object: {"parent_run", "from_layer", "from_layer_name", "trace",
 * "run"}. */
int nesim_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err);

#endif
