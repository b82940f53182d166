/* lm_graph.h — a language model as a graph of named nodes: what the engine
 * (sim/lm.h) plays token by token and what a language-model spec
 * (`nesim spec CHECKPOINT_DIR`) writes down, node for node.
 *
 * Node types (the spec's "type"), each producing one vector per token:
 *   embedding  the token's row of weight [vocab, dim] (the graph's input;
 *              exactly one);
 *   rmsnorm    x / sqrt(mean(x^2) + eps) * weight [dim];
 *   linear     weight [out, in] (F32/F16/BF16/F64, or I8 with F32 scales)
 *              applied to its input rounded to float32, + bias [out]; its
 *              input is coded into spikes (coding, k: sim/coded.h) or, with
 *              coding "none", computed densely (graded); its output is
 *              rounded to float32;
 *   attention  causal softmax attention of inputs q [heads * head_dim], k and
 *              v [kv_heads * head_dim] over the positions so far (a KV cache;
 *              window > 0: the last `window` positions), RoPE (Hugging
 *              Face's rotate_half, base rope_theta) on q and k, grouped-query
 *              (heads / kv_heads query heads share a KV head); optionally as
 *              SpikingBrain's W8ASpike plays it: "kv_quant": "int8" caches K
 *              (after RoPE) and V fake-quantized per token and KV head
 *              (scale = clamp(max|x| / 127, 1e-5, 1e4), round half to even,
 *              clamp to [-128, 127]), and "q_k": k spike-codes the rotated
 *              query per token and head (V_th = clamp(mean|q_h| / k, 1e-5,
 *              1e4), q_h = round(q_h / V_th) V_th). The order (RoPE, then
 *              quantization) is an assumption: the released
 *              window_attention.py was not at hand to confirm it;
 *              "sinks": {"k": TENSOR, "v": TENSOR} ([S, kv_heads *
 *              head_dim] each) adds S learned key/value pairs that every
 *              query attends to besides its window (SpikingBrain-76B's
 *              sink tokens; as stored: no RoPE, no int8 — an assumption,
 *              the 76B's code is not released);
 *   add, mul   elementwise a + b, a x b of two inputs of one size;
 *   silu, relu, sigmoid  elementwise x / (1 + exp(-x)), max(x, 0), 1 / (1 + exp(-x));
 *   gla        gated linear attention (SpikingBrain-7B's even layers, as
 *              flash-linear-attention's recurrence): inputs q [heads *
 *              head_dim], k, v and gk [kv_heads * head_dim]; per KV head g a
 *              state S_g [head_dim x head_dim] carried across tokens,
 *              S_g = diag(alpha_g) S_g + k_g^T v_g with alpha =
 *              sigmoid(gk)^(1 / gate_norm) (exp of logsigmoid / gate_norm),
 *              or with "gate": "key" (SpikingBrain-76B's key-tied gate, no
 *              gk input) alpha = 1 - k, k then in [0, 1] (a sigmoid feature
 *              map);
 *              head h reads o_h = (q_h / sqrt(head_dim)) S_g, g = h / (heads
 *              / kv_heads); with a "norm" weight [head_dim] each o_h is
 *              RMS-normalised (eps) and scaled by it;
 *   moe        a mixture of experts over its input x: router weight [E, in]
 *              (graded), probabilities by softmax or sigmoid ("act"), the
 *              top_k largest (ties: the lower index), their weights
 *              renormalised to sum 1 when "renormalize"; each expert is a
 *              SwiGLU MLP of three linear nodes marked "routed" (gate, up:
 *              from x; down: from silu(gate) x up), run only when routed,
 *              so only routed experts spike, count SOPs and take time;
 *              "shared" (optional) is an expert that always runs with
 *              weight 1. Output: the weighted sum of the experts' outputs.
 * A linear node marked "routed" is run by the moe node that names it, never
 * in node order; its "input" only states its input's size.
 * Everything but a linear node's input and output runs in double.
 *
 * Nodes are in an order in which every input comes before its user (a
 * spec's order must be such an order, so a graph has no cycles); "output"
 * names the node whose vector is the logits [vocab]. Linear nodes are the
 * graph's projections, numbered 0, 1, ... in node order.
 *
 * A graph borrows its tensors from an open checkpoint (net/lm.h), by name;
 * it owns its names and any scale it had to convert. Nothing prints. */
#ifndef NESIM_NET_LM_GRAPH_H
#define NESIM_NET_LM_GRAPH_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"
#include "net/lm.h"
#include "neurons/coder.h"

typedef enum {
    NESIM_LMN_EMBEDDING,
    NESIM_LMN_RMSNORM,
    NESIM_LMN_LINEAR,
    NESIM_LMN_ATTENTION,
    NESIM_LMN_ADD,
    NESIM_LMN_MUL,
    NESIM_LMN_SILU,
    NESIM_LMN_RELU,
    NESIM_LMN_GLA,
    NESIM_LMN_MOE,
    NESIM_LMN_SIGMOID,
    NESIM_LMN_TYPES
} nesim_lm_node_type;

/* "embedding", "rmsnorm", ... ; "?" outside the enum. */
const char *nesim_lm_node_type_name(nesim_lm_node_type t);

/* How a projection's input is played. */
typedef struct nesim_lm_proj_opts {
    int spiked;        /* 0: graded (dense) */
    nesim_coding coding;
    double k;
} nesim_lm_proj_opts;

typedef struct nesim_lm_node {
    nesim_lm_node_type type;
    char *name;
    int in[4];                 /* input nodes (attention: q, k, v; gla: q, k, v, gk; add, mul: a, b); -1 unused */
    size_t dim;                /* output size */
    /* embedding, rmsnorm, linear: views into the checkpoint */
    char *wname, *bname;       /* tensor names; bname NULL without a bias */
    nesim_tensor w, b, scale;  /* scale: I8 weights, F32 [out, in / group] */
    size_t group;
    int has_b, has_scale;
    int w_owned;               /* w is a heap copy (a W8ASpike weight, quantised at load) */
    double eps;                /* rmsnorm */
    size_t heads, kv_heads, head_dim, window; /* attention */
    double rope_theta;
    double gate_norm;          /* gla: alpha = sigmoid(gk)^(1 / gate_norm) */
    int kv_int8;               /* attention: K and V cached fake-quantized to int8 per token and KV head */
    double q_k;                /* attention: > 0 spike-codes the query with this k; 0: graded */
    char *sink_kname, *sink_vname; /* attention: learned sink keys and values [n_sinks, kv_heads * head_dim] */
    nesim_tensor sink_k, sink_v;
    size_t n_sinks;            /* 0: none */
    int has_norm;              /* gla: o_h RMS-normalised with weight w [head_dim] */
    int key_gate;              /* gla: alpha = 1 - k (no gk input) */
    int routed;                /* linear: run by a moe node, not in node order */
    int lazy;                  /* linear: its weight is made when it runs (nesim_lm_tensor_make) */
    int *experts;              /* moe: [n_experts][3] node indices (gate, up, down) */
    size_t n_experts, top_k;
    int shared[3];             /* moe: the shared expert's nodes, or -1 */
    int act_sigmoid;           /* moe: router probabilities by sigmoid (else softmax) */
    int renormalize;           /* moe: top-k weights divided by their sum */
    nesim_lm_proj_opts po;     /* linear */
    size_t proj;               /* linear: its number among the projections */
} nesim_lm_node;

typedef struct nesim_lm_graph {
    nesim_lm_node *node;
    size_t n;
    size_t embed, output;      /* node indices */
    size_t n_proj;
    size_t *proj_node;         /* [n_proj] node index of each projection */
    size_t vocab, max_pos;
    const nesim_lm_model *m;   /* borrowed */
} nesim_lm_graph;

/* Codings of the architecture's graph: SpikingBrain's released choice (q,
 * k, v, o, gate and up spiked; down_proj and lm_head graded) or all / none,
 * with one coding and k. */
typedef enum { NESIM_LM_SET_RELEASED, NESIM_LM_SET_ALL, NESIM_LM_SET_NONE } nesim_lm_spiked_set;

/* The graph of checkpoint m's architecture (embedding -> L x [rmsnorm,
 * q/k/v_proj, attention, o_proj, add, rmsnorm, gate_proj, up_proj, silu,
 * mul, down_proj, add] -> rmsnorm -> lm_head), its projections played as
 * `set` says with coding and k. Node names follow the tensors
 * ("layers.2.mlp.down_proj" is model.layers.2.mlp.down_proj.weight). */
int nesim_lm_graph_from_model(const nesim_lm_model *m, nesim_lm_spiked_set set, nesim_coding coding, double k,
                              nesim_lm_graph **out, nesim_error *err);

/* The graph a spec's "nodes" and "output" describe (label names the spec in
 * messages), its tensors looked up by name in m. Every field is checked:
 * an unknown type (the supported ones listed), an input that is not an
 * earlier node, sizes that do not fit along an edge, a tensor that is
 * missing or misshapen: NESIM_EINVAL naming the node ("nodes[7]
 * (layers.0.attn).heads: ..."). */
int nesim_lm_graph_from_json(const nesim_lm_model *m, const json_t *spec, const char *label, nesim_lm_graph **out,
                             nesim_error *err);

/* The graph as a spec's "nodes" array (and *output_name the output node's
 * name, borrowed); reading it back with nesim_lm_graph_from_json gives the
 * same graph. NULL on no memory. */
json_t *nesim_lm_graph_nodes_json(const nesim_lm_graph *g);

void nesim_lm_graph_free(nesim_lm_graph *g);

/* What a node belongs to, for reports by layer kind: the gated linear
 * attention, sliding-window or full softmax attention, mixture-of-experts
 * or dense MLP block it is part of, the embedding, the head (final norm and
 * lm_head), or other (the residual adds and the norms before blocks).
 * Projections (and norms, sums) shared by a linear and a softmax attention
 * running side by side are "hybrid". */
typedef enum {
    NESIM_LMK_GLA,
    NESIM_LMK_SWA,
    NESIM_LMK_ATTENTION,
    NESIM_LMK_HYBRID,   /* shared by linear and softmax attention side by side (the 76B's layers) */
    NESIM_LMK_MLP,
    NESIM_LMK_MOE,
    NESIM_LMK_EMBEDDING,
    NESIM_LMK_HEAD,
    NESIM_LMK_OTHER,
    NESIM_LMK_KINDS
} nesim_lm_kind;

/* "gla", "swa", "attention", "hybrid", "mlp", "moe", "embedding", "head", "other". */
const char *nesim_lm_kind_name(nesim_lm_kind k);
/* kind[i] for every node of g (caller's array of g->n): a gla or attention
 * node and the projections (with their elementwise feature maps) that feed
 * it or read it; a moe node with its router and experts; the linear and
 * elementwise nodes between a norm and the residual add that are not
 * attention: mlp. */
void nesim_lm_graph_kinds(const nesim_lm_graph *g, nesim_lm_kind *kind);

/* The node called name, or -1. */
int nesim_lm_graph_find(const nesim_lm_graph *g, const char *name);

#endif
