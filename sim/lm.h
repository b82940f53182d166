/* lm.h — a language model played token by token: graded operations
 * (embedding, RMSNorm, RoPE, causal softmax attention with a KV cache,
 * SwiGLU, residual adds) around linear projections whose inputs are coded
 * into spikes (sim/coded.h) or, with coding "none", computed densely.
 *
 * Numerics (what reference.py reproduces in PyTorch float64):
 *   the residual stream, norms, RoPE, attention and SwiGLU run in double;
 *   a projection's input is rounded to float (as a coded layer takes it),
 *   its output y = W (N V_th) + b (spiked; N per token row, V_th = clamp(
 *   mean|x| / k)) or W x + b (dense) is summed in double and rounded to float.
 *
 * Graded work is counted, never hidden: dense projection MACs, attention
 * MACs (q.k and attention.V over the cached positions) and element
 * operations (norms, RoPE, softmax, SiLU, the gate product, residual adds).
 * Cost follows activity for the spiked projections (one gather-add per SOP).
 * Nothing prints; a run owns its KV cache and scratch. */
#ifndef NESIM_SIM_LM_H
#define NESIM_SIM_LM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "net/lm.h"
#include "sim/coded.h"

/* One projection's settings. */
typedef struct nesim_lm_proj_opts {
    int spiked;        /* 0: graded (dense) */
    nesim_coding coding;
    double k;
} nesim_lm_proj_opts;

typedef struct nesim_lm_opts {
    nesim_coding coding;
    double k;          /* adaptive threshold divisor (default 3) */
    /* Bit j (j = NESIM_LM_Q .. NESIM_LM_DOWN, NESIM_LM_NPROJ for lm_head):
     * that projection's input is spiked; otherwise it is graded (dense). */
    unsigned spiked;
    /* Optional (NULL: the above for all), borrowed until nesim_lm_run_new
     * returns: per projection l * NESIM_LM_NPROJ + kind, then lm_head at
     * layers * NESIM_LM_NPROJ — a spec's per-layer codings. */
    const nesim_lm_proj_opts *per;
} nesim_lm_opts;

/* SpikingBrain's released choice: q, k, v, o, gate and up spiked; down_proj
 * and lm_head graded. */
#define NESIM_LM_SPIKED_RELEASED                                                                            \
    ((1u << NESIM_LM_Q) | (1u << NESIM_LM_K) | (1u << NESIM_LM_V) | (1u << NESIM_LM_O) |                    \
     (1u << NESIM_LM_GATE) | (1u << NESIM_LM_UP))
#define NESIM_LM_SPIKED_ALL (NESIM_LM_SPIKED_RELEASED | (1u << NESIM_LM_DOWN) | (1u << NESIM_LM_NPROJ))

/* Bitwise bidirectional, k = 3, the released spiked set. */
void nesim_lm_opts_init(nesim_lm_opts *o);

/* Counters summed over the tokens played (exact integers). */
typedef struct nesim_lm_totals {
    int64_t tokens;
    int64_t spikes, sops, updates;  /* spiked projections */
    int64_t spiked_inputs, silent_inputs, small_inputs; /* counts; |N| = 0; |N| <= 7 */
    int64_t slots;        /* input x step slots of the spike windows (sum of in x T) */
    int64_t dense_macs;   /* graded projections */
    int64_t attn_macs;    /* q.k and attention.V */
    int64_t elem_ops;     /* norms, RoPE, softmax, SiLU, products, adds */
    int64_t equiv_macs;   /* MACs of every projection run densely (the ANN) */
} nesim_lm_totals;

typedef struct nesim_lm_run nesim_lm_run;

/* A run over m (borrowed, must outlive it) with room for m->cfg.max_pos
 * positions of KV cache. */
int nesim_lm_run_new(const nesim_lm_model *m, const nesim_lm_opts *o, nesim_lm_run **out, nesim_error *err);
void nesim_lm_run_free(nesim_lm_run *r);
/* Forgets every position (a new sequence); totals are kept. */
void nesim_lm_run_reset(nesim_lm_run *r);
/* The tick at which the next token starts (virtual time, see below). */
int64_t nesim_lm_run_tick(const nesim_lm_run *r);
/* Positions played since the last reset. */
size_t nesim_lm_run_pos(const nesim_lm_run *r);

/* Plays token at the next position: logits[0..vocab) receive the model's
 * output. A token id outside [0, vocab) or a full context (max_pos) is
 * NESIM_EINVAL naming the position. */
int nesim_lm_step(nesim_lm_run *r, int32_t token, float *logits, nesim_error *err);

/* Observers of a run, for traces. proj is the flat projection index
 * (l * NESIM_LM_NPROJ + kind; lm_head is layers * NESIM_LM_NPROJ); token
 * counts the tokens played by this run (resets included).
 *
 * Virtual time: a token's spike trains are played one projection after the
 * other as the data flows: q, k and v start together at the token's first
 * tick, o_proj when the last of them ends, gate and up together after it,
 * down_proj after them, the next layer after that, lm_head last; a graded
 * projection takes no ticks. The next token starts where lm_head ended.
 *   spike     every input spike of a spiked projection (channel < its in);
 *   activity  per tick with events: the events and the SOPs they cause;
 *   code      per spiked projection and token: first tick, steps, V_th;
 *   token     the token's ticks [first_tick, end_tick). */
typedef struct nesim_lm_sink {
    void (*spike)(void *user, size_t proj, uint32_t channel, int64_t tick, int sign);
    void (*activity)(void *user, size_t proj, int64_t tick, int64_t events, int64_t sops);
    void (*code)(void *user, size_t proj, size_t token, int64_t t0, int64_t steps, double vth);
    void (*token)(void *user, size_t token, int64_t first_tick, int64_t end_tick);
    void *user;
} nesim_lm_sink;

/* Installs (or with NULL removes) the observers. */
void nesim_lm_run_set_sink(nesim_lm_run *r, const nesim_lm_sink *sink);

/* A replay's check: from now on, spiked projection `proj` must code the
 * token numbered t (t < tokens) into exactly counts[t * in ..] (played
 * counts, in = its input size) under exactly threshold vth[t]; the first
 * difference fails nesim_lm_step with NESIM_EINVAL naming the token, the
 * projection and the channel. Arrays are copied. */
int nesim_lm_run_expect(nesim_lm_run *r, size_t proj, const int64_t *counts, const double *vth, size_t tokens,
                        nesim_error *err);

const nesim_lm_totals *nesim_lm_run_totals(const nesim_lm_run *r);
/* Statistics of projection `kind` of layer l (kind NESIM_LM_NPROJ: lm_head,
 * l ignored), summed over the tokens played; spike figures are zero for a
 * graded projection. */
const nesim_coded_stats *nesim_lm_proj_stats(const nesim_lm_run *r, size_t l, int kind);

#endif
