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

#include "base/error.h"
#include "sim/lm.h"
#include "traces/store.h"

typedef struct nesim_lm_job_opts {
    const char *dir;          /* checkpoint folder, or */
    const char *spec;         /* a language-model spec (nesim_lm_spec_write); its
                                 per-projection codings and k replace lm's */
    const char *prompt;       /* text (needs vocab.json), or */
    const char *tokens;       /* .npy of token ids, 1-D, integer dtype */
    size_t generate;          /* greedy tokens to generate after the prompt */
    const char *output;       /* logits f32 [tokens, vocab], prompt then generated */
    const char *eval_text;    /* held-out text file: perplexity ANN vs spiking per k */
    const double *ks;         /* k values for eval (NULL: just o.k) */
    size_t nks;
    size_t eval_max;          /* tokens of eval text to use (0: up to max_pos) */
    nesim_lm_opts lm;         /* coding, k, spiked set */
    const char *chip, *dense; /* profiles (NULL: loihi, dense-45nm; chip "none": no energy) */
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
    int64_t parent_run;       /* replays: the run replayed */
    const char *note;
    /* A replay's check (nesim_lm_run_expect): projection expect_proj >= 0
     * must code token t into expect_counts[t * in ..] under expect_vth[t]. */
    int64_t expect_proj;
    const int64_t *expect_counts;
    const double *expect_vth;
    size_t expect_tokens;
} nesim_lm_job_opts;

/* Zeroes o and sets the defaults (nesim_lm_opts_init, no check). */
void nesim_lm_job_opts_init(nesim_lm_job_opts *o);

/* Runs the job; *report (caller decrefs) is the whole result as JSON. */
int nesim_lm_job(const nesim_lm_job_opts *o, json_t **report, nesim_error *err);

/* The equivalent spec of checkpoint dir under o (coding, k, spiked set):
 * JSON naming the checkpoint and, for every projection, its tensor, shape,
 * coding ("none": graded) and k — edit it and run it with nesim run. */
int nesim_lm_spec_build(const char *dir, const nesim_lm_opts *o, json_t **spec, nesim_error *err);

/* The spec of an open model m under lo (its per-projection codings when
 * lo->per is set), naming checkpoint folder dir. */
json_t *nesim_lm_spec_of(const nesim_lm_model *m, const char *dir, const nesim_lm_opts *lo);

/* Reads a spec's projections (JSON root; `label` names it in messages) into
 * per[layers * NESIM_LM_NPROJ + 1]: each exactly once, naming the tensor
 * m has. */
int nesim_lm_spec_projections(const char *label, const json_t *root, const nesim_lm_model *m, nesim_lm_proj_opts *per,
                              nesim_error *err);

/* Nonzero if path is a JSON file with the key "nesim_lm_spec". */
int nesim_lm_spec_is(const char *path);

/* Prints a report from nesim_lm_job as the text tables. */
void nesim_lm_report_print(const json_t *report, FILE *out);

#endif
