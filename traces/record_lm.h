/* record_lm.h — recording a language-model run into a trace: the adapter
 * between the engine's observers (sim/lm.h nesim_lm_sink) and the trace
 * writer (traces/store.h).
 *
 * Layout of the run (kind "layers"; samples are tokens):
 *   layer 0      "tokens" (type "embedding", neurons = vocab): one spike per
 *                token, neuron = its id, at the token's first tick — the
 *                token stream as an input spike train; what replay plays again;
 *   layer 1 + p  projection p of the graph (net/lm_graph.h: its linear nodes
 *                in order, e.g. "layers.0.q_proj" ... "lm_head"), named as
 *                its node, type "linear", coding its coding or "none"
 *                (graded), neurons = its input channels (the spikes it
 *                receives);
 *   samples      one per token, its ticks; codes: per spiked projection and
 *                token the first tick, steps and threshold (replay's input);
 *   metrics      run-level "prefill_tokens" (samples below it are the prompt's,
 *                the rest were generated) and the report's totals by dotted
 *                path (total.*, prefill.*, decode.*); per projection
 *                "spiked", "silent_inputs", "inputs";
 *   energy       run-level terms "spiking" and "graded" (jobs/lm.h).
 * The stored spec is the run's language-model spec (every projection's
 * coding and k), so a reader needs nothing but the trace and the checkpoint
 * (its safetensors files are hashed into the run's weights). */
#ifndef NESIM_TRACES_RECORD_LM_H
#define NESIM_TRACES_RECORD_LM_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "net/lm_graph.h"
#include "sim/lm.h"
#include "traces/store.h"

typedef struct nesim_lm_recorder nesim_lm_recorder;

typedef struct nesim_lm_record_opts {
    const char *path;              /* the trace database (created if needed) */
    nesim_trace_level level;
    const nesim_lm_graph *g;       /* its projections' codings are the ones played */
    const char *spec_file;         /* as given (checkpoint folder or spec), for the runs table */
    const char *spec_text;         /* the run's spec as JSON text */
    const char *chip, *dense;      /* profile names, or NULL */
    double tick_s;                 /* seconds per tick, > 0 */
    int64_t parent_run;            /* replays: the run replayed; 0 otherwise */
    const char *note;
} nesim_lm_record_opts;

/* Opens the trace, begins the run and adds its layers; installs the stop
 * signal handlers (Ctrl-C marks the run interrupted). */
int nesim_lm_record_begin(const nesim_lm_record_opts *o, nesim_lm_recorder **out, nesim_error *err);

/* The observers to install on the engine (nesim_lm_run_set_sink). */
nesim_lm_sink nesim_lm_record_sink(nesim_lm_recorder *r);

/* Records token number `token` (id) as it enters at tick `tick` (before
 * nesim_lm_step plays it). */
int nesim_lm_record_token(nesim_lm_recorder *r, size_t token, int32_t id, int64_t tick);

int64_t nesim_lm_record_run_id(const nesim_lm_recorder *r);
/* Nonzero once a stop signal came (the job stops between tokens). */
int nesim_lm_record_interrupted(const nesim_lm_recorder *r);

/* Ends the run: with report (jobs/lm.h's JSON; may be NULL) its totals
 * become metrics and its energy rows; prefill marks the prompt's tokens.
 * An interrupted run is marked so whatever status says. Frees r. */
int nesim_lm_record_end(nesim_lm_recorder *r, const json_t *report, int64_t prefill, nesim_trace_status status,
                        nesim_error *err);

#endif
