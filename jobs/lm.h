/* lm.h — `nesim run CHECKPOINT_DIR` as a library call: a language model
 * played token by token (prompt, greedy generation, held-out perplexity per
 * k), priced per token with the spiking and the graded share apart.
 *
 * Energy (arithmetic and synaptic events only; routing is not priced):
 *   spiking share  SOPs x energy.synaptic_op + membrane updates x
 *                  energy.neuron_update_active of the neuromorphic --chip;
 *   graded share   (dense projection MACs + attention MACs) x graded.mac and
 *                  element operations x graded.element_op of the --chip
 *                  profile (net/chip.h; each with its source or assumption),
 *                  or, for a profile without them, the --dense profile's fp16
 *                  MAC and add ("graded_on" in the report names which);
 *   ANN baseline   every projection, attention and element op in fp16 on
 *                  the dense profile. */
#ifndef NESIM_JOBS_LM_H
#define NESIM_JOBS_LM_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "base/comm.h"
#include "base/error.h"
#include "net/lm_graph.h"
#include "sim/lm.h"
#include "traces/store.h"

typedef struct nesim_lm_job_opts {
    const char *dir;          /* checkpoint folder, or */
    const char *spec;         /* a language-model spec (nesim_lm_spec_build): its
                                 graph and codings replace set, coding and k */
    const char *prompt;       /* text (needs vocab.json), or */
    const char *tokens;       /* .npy of token ids, 1-D, integer dtype */
    size_t generate;          /* greedy tokens to generate after the prompt */
    const char *output;       /* logits f32 [tokens, vocab], prompt then generated */
    const char *eval_text;    /* held-out text file: perplexity ANN vs spiking per k */
    const double *ks;         /* k values for eval (NULL: just o.k) */
    size_t nks;
    size_t eval_max;          /* tokens of eval text to use (0: up to max_pos) */
    nesim_lm_spiked_set set;  /* the checkpoint's graph: which projections are spiked */
    int set_given;            /* a spec too: ALL spikes every projection (the report's "all linear
                                 layers"), NONE none (the ANN), RELEASED keeps the spec's codings */
    nesim_coding coding;      /* ... with this coding */
    double k;                 /* ... and threshold divisor (default 3) */
    const char *chip, *dense; /* profiles (NULL: loihi, dense-45nm; chip "none": no energy) */
    const char *gpu;          /* GPU profiles to compare with, comma-separated (eval/roofline.h), or NULL */
    int steps_tensor;         /* 1: a projection's T over the whole prompt (SpikingBrain's
                                 dynamic_spikes over batch x sequence; generated tokens are
                                 each their own tensor); 0: each token its own T; -1 (the
                                 default): 1 for a GLAswaForCausalLM checkpoint, else 0 */
    int threads;              /* threads per spiked projection (0: every core) */
    int timing;               /* nesim_timing: chip time per token of the spiked projections
                                 (eval/lmtime.h), with --prompt / --tokens */
    void (*progress)(void *user, double done);
    void *user;
    /* A spec in memory (a replay's), used instead of reading `spec`, which
     * then only names it in messages and the trace. */
    const json_t *spec_json;
    /* The tokens to play, in memory (a replay's: prompt and generated tokens
     * teacher-forced), instead of prompt/tokens; the first `prefill` are the
     * prompt's. */
    const int32_t *ids;
    size_t n_ids, prefill;
    /* Record the run (--prompt / --tokens / ids; not --eval-text) in this
     * trace at this level (traces/record_lm.h); the report gets "trace":
     * {"file", "run"}. */
    const char *trace;
    nesim_trace_level record;
    /* Optional: ranks splitting every spiked projection's rows (mpirun;
     * base/comm.h). Every rank runs the same call; rank 0 alone writes the
     * trace and --output. NULL: this process alone. */
    nesim_comm *comm;
    int64_t parent_run;       /* replays: the run replayed */
    const char *note;
    /* A replay's check (nesim_lm_run_expect): projection expect_proj >= 0
     * must code token t into expect_counts[t * in ..] under expect_vth[t]. */
    int64_t expect_proj;
    const int64_t *expect_counts;
    const double *expect_vth;
    size_t expect_tokens;
} nesim_lm_job_opts;

/* Zeroes o and sets the defaults (released set, bitwise-bidirectional,
 * k = 3, record spikes, no check). */
void nesim_lm_job_opts_init(nesim_lm_job_opts *o);

/* Runs the job; *report (caller decrefs) is the whole result as JSON. */
int nesim_lm_job(const nesim_lm_job_opts *o, json_t **report, nesim_error *err);

/* The spec of checkpoint dir: its graph (net/lm_graph.h) with the
 * projections played as set, coding and k say — JSON naming the checkpoint,
 * every node with its inputs, tensors (by name in the safetensors files),
 * sizes and, for projections, coding ("none": graded) and k. Edit it (codings
 * per layer, or the graph itself) and run it with nesim run. */
int nesim_lm_spec_build(const char *dir, nesim_lm_spiked_set set, nesim_coding coding, double k, json_t **spec,
                        nesim_error *err);

/* The spec of graph g over checkpoint folder dir; NULL on no memory. */
json_t *nesim_lm_spec_json(const nesim_lm_graph *g, const char *dir);

/* Nonzero if path is a JSON file with the key "nesim_lm_spec". */
int nesim_lm_spec_is(const char *path);

/* Prints a report from nesim_lm_job as the text tables. */
void nesim_lm_report_print(const json_t *report, FILE *out);

#endif
