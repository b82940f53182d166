/* lm.h — a language model played token by token: the nodes of its graph
 * (net/lm_graph.h) run in order for each token; linear nodes are
 * projections whose inputs are coded into spikes (sim/coded.h) or, with
 * coding "none", computed densely; everything else is graded work.
 *
 * Numerics (what examples/tiny-lm/reference.py reproduces in PyTorch float64):
 *   node outputs are doubles; a projection's input is rounded to float (as a
 *   coded layer takes it), its output y = W (N V_th) + b (spiked; N per token
 *   row, V_th = clamp(mean|x| / k)) or W x + b (dense) is summed in double
 *   and rounded to float; norms, RoPE, attention, activations and products
 *   run in double.
 *
 * Graded work is counted, never hidden: dense projection MACs, attention
 * MACs (q.k and attention.V over the cached positions) and element
 * operations (norms 4 per element, RoPE 3 per rotated element, softmax 4
 * per score, SiLU 4, ReLU, products and adds 1). Cost follows activity for
 * the spiked projections (one gather-add per SOP). Nothing prints; a run
 * owns its KV caches and buffers. */
#ifndef NESIM_SIM_LM_H
#define NESIM_SIM_LM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "net/lm_graph.h"
#include "sim/coded.h"

/* Counters summed over the tokens played (exact integers). */
typedef struct nesim_lm_totals {
    int64_t tokens;
    int64_t spikes, sops, updates;  /* spiked projections */
    int64_t spiked_inputs, silent_inputs, small_inputs; /* counts; |N| = 0; |N| <= 7 */
    int64_t slots;        /* input x step slots of the spike windows (sum of in x T) */
    int64_t dense_macs;   /* graded projections */
    int64_t attn_macs;    /* q.k and attention.V */
    int64_t elem_ops;     /* norms, RoPE, softmax, activations, products, adds */
    int64_t equiv_macs;   /* MACs of every projection run densely (the ANN) */
} nesim_lm_totals;

typedef struct nesim_lm_run nesim_lm_run;

/* A run of graph g (borrowed, must outlive it) with room for g->max_pos
 * positions of KV cache. po (may be NULL: the graph's) gives every
 * projection's coding instead, [g->n_proj], copied. */
int nesim_lm_run_new(const nesim_lm_graph *g, const nesim_lm_proj_opts *po, nesim_lm_run **out, nesim_error *err);
void nesim_lm_run_free(nesim_lm_run *r);
/* Threads each spiked projection plays its events on (default 1; the
 * results are the same bits for any count). */
void nesim_lm_run_set_threads(nesim_lm_run *r, int threads);
/* Splits every spiked projection's output rows over comm's ranks (the same
 * bits on every rank; sim/coding.h); the rest (graded projections,
 * attention, norms) runs whole on every rank. NULL: this process alone. */
void nesim_lm_run_set_comm(nesim_lm_run *r, nesim_comm *comm);
/* Forgets every position (a new sequence); totals and virtual time go on. */
void nesim_lm_run_reset(nesim_lm_run *r);
/* Positions played since the last reset. */
size_t nesim_lm_run_pos(const nesim_lm_run *r);
/* The tick at which the next token starts (virtual time, see below). */
int64_t nesim_lm_run_tick(const nesim_lm_run *r);

/* Plays token at the next position: logits[0..vocab) receive the output
 * node's vector (rounded to float). A token id outside [0, vocab) or a full
 * context (max_pos) is NESIM_EINVAL naming the position. */
int nesim_lm_step(nesim_lm_run *r, int32_t token, float *logits, nesim_error *err);

/* Observers of a run, for traces. proj is the projection's number
 * (net/lm_graph.h); token counts the tokens played by this run.
 *
 * Virtual time: a node is ready at the latest tick its inputs are (the
 * embedding at the token's first tick); a spiked projection plays its
 * trains from the tick its input is ready and is ready when they end; every
 * other node takes no ticks. So in a decoder layer q, k and v start
 * together, o_proj when the last of them ends, gate and up together after
 * it, down_proj after them. The next token starts where the output is ready.
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

/* W8ASpike's int8 fake quantization of one token's KV head, in place:
 * x -> round(x / s) s, s = clamp(max|x| / 127, 1e-5, 1e4), integers clamped
 * to [-128, 127] (round half to even). */
void nesim_lm_int8_fake_quant(double *x, size_t n);

/* The k largest of z[0..n) by rank into sel (ties: the lower index first;
 * a NaN never wins). k <= n. */
void nesim_lm_topk(const double *z, size_t n, size_t k, int32_t *sel);

/* The experts moe node `node` routed the last token to (by rank), *k of
 * them; NULL (and 0) for another node. Valid until the next step. */
const int32_t *nesim_lm_run_routes(const nesim_lm_run *r, size_t node, size_t *k);

/* Installs (or with NULL removes) the observers. */
void nesim_lm_run_set_sink(nesim_lm_run *r, const nesim_lm_sink *sink);

/* From now on, spiked projection proj plays at least `steps` steps per
 * token (sim/coding.h min_steps; 0: each token its own T): SpikingBrain's T
 * over a whole prompt. A graded or non-bitwise projection takes only 0. */
int nesim_lm_run_set_min_steps(nesim_lm_run *r, size_t proj, int64_t steps, nesim_error *err);

/* A replay's check: from now on, spiked projection `proj` must code the
 * token numbered t (t < tokens) into exactly counts[t * in ..] (played
 * counts, in = its input size) under exactly threshold vth[t]; the first
 * difference fails nesim_lm_step with NESIM_EINVAL naming the token, the
 * projection and the channel. Arrays are copied. */
int nesim_lm_run_expect(nesim_lm_run *r, size_t proj, const int64_t *counts, const double *vth, size_t tokens,
                        nesim_error *err);

const nesim_lm_totals *nesim_lm_run_totals(const nesim_lm_run *r);
/* The part of the totals node `node` of the graph did (a moe node: with
 * the experts it ran); over all nodes they add up to the run's totals. */
const nesim_lm_totals *nesim_lm_node_totals(const nesim_lm_run *r, size_t node);
/* Statistics of projection proj, summed over the tokens played; spike
 * figures are zero for a graded projection. */
const nesim_coded_stats *nesim_lm_proj_stats(const nesim_lm_run *r, size_t proj);
/* The coding projection proj plays. */
const nesim_lm_proj_opts *nesim_lm_proj_coding(const nesim_lm_run *r, size_t proj);

#endif
