/* lm.h — language-model checkpoints in the Hugging Face layout.
 *
 * A checkpoint folder holds config.json and either model.safetensors or a
 * sharded model.safetensors.index.json (its "weight_map" names the shard of
 * every tensor), plus, optionally, vocab.json ({"token": id, ...}) which lets
 * text be turned into token ids and back. Instead of safetensors it may hold
 * synthetic.json: rules {"match": GLOB, "synthetic": {...}} (a layer spec's
 * synthetic tensor) that make each tensor from a seed when it is first asked
 * for — a model at true shape without its weights on disk.
 *
 * Supported architectures (config "architectures"[0]): LlamaForCausalLM,
 * Qwen2ForCausalLM (q/k/v biases), MistralForCausalLM (sliding window),
 * GLAswaForCausalLM (SpikingBrain-7B: "attn_layers" lists the layers of
 * sliding-window softmax attention, every other layer is gated linear
 * attention with a gk_proj and a per-head norm; "gla_gate_norm", default 16;
 * q/k/v (and gk) biases; its graph is in net/lm_graph.h, and the tensor
 * names it assumes are listed there — the released modeling file was not
 * at hand).
 * Read from config.json: hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads (default: heads), head_dim
 * (default hidden / heads), vocab_size, max_position_embeddings,
 * rms_norm_eps, rope_theta (default 10000), tie_word_embeddings (default
 * false), attention_bias (Llama; Qwen2 always has q/k/v biases),
 * sliding_window (Mistral; Qwen2 only with use_sliding_window), hidden_act
 * (must be "silu"). rope_scaling other than null is refused.
 *
 * Guarantees:
 * - Weights are views into the memory-mapped safetensors files, in their
 *   stored dtype (F32, F16, BF16, F64), never copied or converted. A
 *   projection's weight may be I8 with scales in compressed-tensors' int8
 *   layout: "<name>_scale" of shape [out] or [out, 1] (per output channel)
 *   or [out, G] (groups of in / G inputs), w = q x scale; scales stored in
 *   another float dtype than F32 are converted once (out x G values) and
 *   must be exact in float32. Embeddings, norms and lm_head stay float.
 * - Every tensor the architecture needs is looked up by its Hugging Face
 *   name and its shape checked; a missing or misshapen tensor, a shard the
 *   index names but that is missing, an unknown architecture (the message
 *   lists the supported ones), a bad config value: NESIM_EINVAL, one line
 *   naming the file and the field or tensor (and the expected shape).
 * - Nothing prints or exits; the model owns its mappings and strings. */
#ifndef NESIM_NET_LM_H
#define NESIM_NET_LM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "net/tensor.h"

typedef enum { NESIM_LM_LLAMA, NESIM_LM_QWEN2, NESIM_LM_MISTRAL, NESIM_LM_GLA_SWA } nesim_lm_arch;

/* The Hugging Face class name of an architecture. */
const char *nesim_lm_arch_name(nesim_lm_arch a);

typedef struct nesim_lm_config {
    nesim_lm_arch arch;
    size_t hidden, inter, layers, heads, kv_heads, head_dim, vocab, max_pos;
    size_t window;    /* sliding window in positions; 0: none */
    double eps, rope_theta;
    int tied;         /* lm_head is the embedding */
    int qkv_bias;     /* q, k and v projections carry biases */
    /* GLAswaForCausalLM (SpikingBrain-7B): which layers are sliding-window
     * softmax attention (attn_layers), the rest gated linear attention */
    unsigned char *swa;  /* [layers]: 1 for an attn_layers entry; NULL for the other architectures */
    double gate_norm;    /* GLA: alpha = sigmoid(gk)^(1 / gate_norm) (default 16) */
} nesim_lm_config;

/* The projections of one decoder layer, in the order they run. */
enum { NESIM_LM_Q, NESIM_LM_K, NESIM_LM_V, NESIM_LM_O, NESIM_LM_GATE, NESIM_LM_UP, NESIM_LM_DOWN,
       NESIM_LM_NPROJ };
/* "q_proj", ..., "down_proj"; index NESIM_LM_NPROJ is "lm_head". */
const char *nesim_lm_proj_name(int kind);

typedef struct nesim_lm_layer {
    nesim_tensor in_norm, post_norm;        /* [hidden] */
    nesim_tensor w[NESIM_LM_NPROJ];         /* [out, in] */
    nesim_tensor b[NESIM_LM_NPROJ];         /* q, k, v biases when cfg.qkv_bias */
    int has_b[NESIM_LM_NPROJ];
    /* int8 weights (w dtype I8): F32 scales [out, in / group], w = q x scale */
    nesim_tensor scale[NESIM_LM_NPROJ];
    size_t group[NESIM_LM_NPROJ];
    int has_scale[NESIM_LM_NPROJ];
} nesim_lm_layer;

typedef struct nesim_lm_model {
    char *dir;
    nesim_lm_config cfg;
    nesim_tensor embed;      /* [vocab, hidden] */
    nesim_tensor final_norm; /* [hidden] */
    nesim_tensor lm_head;    /* [vocab, hidden]: the embedding when tied */
    nesim_lm_layer *layer;   /* [cfg.layers] */
    char **token;            /* [cfg.vocab] token texts from vocab.json, or NULL */
    size_t max_token_len;
    char **shard_files;      /* [nshards] the safetensors files' names in dir */
    struct nesim_lm_synth *syn; /* synthetic.json: tensors made when first asked for (lm.c) */
    /* private */
    nesim_safetensors **shards;
    size_t nshards;
} nesim_lm_model;

typedef struct nesim_lm_synth nesim_lm_synth;

/* Wall seconds spent making a synthetic checkpoint's tensors so far. */
double nesim_lm_synth_seconds(const nesim_lm_model *m);

/* A synthetic rule marked "lazy": true makes its tensors only when they are
 * used, and keeps them within "lazy_budget_mb" of synthetic.json (default
 * 4096), dropping the one used longest ago: a model larger than memory (the
 * 76B's routed experts) runs, each expert made when it is routed to.
 * nesim_lm_tensor gives such a tensor's shapes with data NULL;
 * nesim_lm_tensor_make makes (or finds) it and its scales (*scale zeroed
 * when not int8). The views stay valid until the next make. */
typedef struct nesim_lm_lazy_stats {
    uint64_t made, hits, evicted; /* tensors made, found kept, dropped */
    size_t peak_bytes;            /* most lazy bytes held at once */
} nesim_lm_lazy_stats;
int nesim_lm_tensor_make(const nesim_lm_model *m, const char *name, nesim_tensor *w, nesim_tensor *scale,
                         nesim_error *err);
void nesim_lm_lazy_stats_get(const nesim_lm_model *m, nesim_lm_lazy_stats *st);

/* Nonzero if dir is a folder with a config.json (a checkpoint, not a spec). */
int nesim_lm_is_checkpoint(const char *dir);

/* Reads the checkpoint folder at dir. *out is freed by nesim_lm_close. */
int nesim_lm_open(const char *dir, nesim_lm_model **out, nesim_error *err);
/* The same, as rank `rank` of `ranks` splitting the model's projections by
 * rows (mpirun; sim/lm.h nesim_lm_run_set_comm): a synthetic checkpoint
 * makes only this rank's rows of each projection weight (names ending in
 * _proj.weight, and an untied lm_head.weight), in blocks of
 * NESIM_RANK_ROWS rows (base/par.h), the split the projections run with. The rest is made whole. A
 * checkpoint on disk is mapped whole (the pages a rank never reads are never
 * read in). */
int nesim_lm_open_ranks(const char *dir, int rank, int ranks, nesim_lm_model **out, nesim_error *err);
void nesim_lm_close(nesim_lm_model *m);

/* The tensor called name in the checkpoint's loaded files (a view), or
 * NESIM_EINVAL naming it. */
int nesim_lm_tensor(const nesim_lm_model *m, const char *name, nesim_tensor *t, nesim_error *err);

/* The scales t of an int8 weight [out, in] as F32 [out, G] in *sc (a view
 * when t is F32, else a converted copy *sc owns: nesim_tensor_release), its
 * group in / G; `what` names t in messages. */
int nesim_lm_scale_view(const nesim_tensor *t, const char *what, size_t out, size_t in, nesim_tensor *sc,
                        size_t *group, nesim_error *err);

/* Text to token ids with vocab.json, longest token first at each position.
 * *ids (caller frees) receives *n ids. No vocab.json, or a character no
 * token covers: NESIM_EINVAL naming the column. */
int nesim_lm_encode(const nesim_lm_model *m, const char *text, int32_t **ids, size_t *n, nesim_error *err);

/* The text of token id, or NULL without vocab.json or out of range. */
const char *nesim_lm_token_text(const nesim_lm_model *m, int32_t id);

#endif
