/* spec.h — the JSON model spec: parse, validate, build the recurrent part.
 *
 * Guarantees
 * - Parsing is strict and total: any input (bytes of any kind, any size)
 *   either yields a fully validated nesim_spec or fails with NESIM_EINVAL
 *   (NESIM_ENOMEM / NESIM_EIO for resources) and ONE line in err->msg that
 *   starts with the file name:
 *     syntax errors (from jansson)   "FILE:LINE:COLUMN: what"
 *     semantic errors                "FILE: json.path: what"
 *   e.g. "model.json: layers[2].coding: unknown coding 'bitwize' (expected
 *   binary, ternary, bitwise, bitwise-bidirectional, bitwise-twos-complement)".
 *   Strings quoted from the input are truncated and control bytes escaped, so
 *   the message stays one line. Nothing prints, exits or aborts.
 * - Validation covers everything the parser can know without the weight
 *   files: every key is known (unknown keys are errors naming the key and
 *   listing the valid ones), every value has the right JSON type (integer
 *   fields reject reals such as 1.0, booleans reject 0/1), every range is
 *   checked, names are unique, projections name existing populations, and
 *   each population's parameters are checked by its neuron model (the same
 *   check nesim_add_population runs), so nesim_spec_build_network fails only
 *   on resources.
 * - A nesim_spec is plain data and owns all of its strings; it does not keep
 *   the JSON tree or the input buffer. Weight files are NOT opened here: a
 *   tensor reference records file/tensor/scales/group or synthetic
 *   parameters, for the tensor loader to use.
 *
 * Format (version 1). JSON, keys in snake_case, ONE unit convention: times in
 * seconds, voltages in volts, rates in hertz; the only exception is "delay",
 * which is an integer number of ticks (its seconds form is "delay_s").
 *
 * {
 *   "nesim": 1,                 required; format version, integer, must be 1
 *   "name": "cuba",             optional string (default "model")
 *   "description": "...",       optional free text, ignored
 *   "tick": 1e-4,               required; seconds per tick, 0 < tick < 1e6
 *   "seed": 1,                  optional default network seed, integer >= 0
 *   "input": {"shape": [64]},   layer models only; required when "layers" is
 *                               given; 1..8 positive integer dims
 *   "layers": [ layer, ... ],   optional; non-empty if present
 *   "populations": [ pop, ...], optional; non-empty if present
 *   "projections": [ proj, ...] optional (may be empty); needs "populations"
 *   "published": {"source": "...", "frac_counts_0_7": 0.941,
 *                 "spikes_per_channel": 1.13, "silent_fraction": 0.184}
 *                               optional; published spike-count figures that
 *                               `nesim run` prints beside the measured ones
 * }
 * A spec has layers, populations, or both.
 *
 * layer — the feed-forward (converted) part, in execution order:
 *   common: "type" (required), "name" (optional, unique among layers, not
 *   "input", default "<type><index>", e.g. "linear0"), "from" (optional:
 *   "input" for the model input, or the name of an EARLIER layer, so layers
 *   may branch but never cycle; default the previous layer, the model input
 *   for the first).
 *   "linear": "weight" (tensor, [out, in]), "bias" (tensor, [out], optional),
 *             "activation": "relu" | "none" (default "none"; applied to the
 *             layer's output), and the coding of the layer's INPUT:
 *             "coding": "binary" | "ternary" | "bitwise" |
 *                       "bitwise-bidirectional" | "bitwise-twos-complement"
 *                       | "none" (graded input, computed densely: MACs)
 *                       (default "bitwise-bidirectional", SpikingBrain's),
 *             "threshold": "adaptive" (default; V_th = mean|x| / k per row)
 *                          | a number > 0 (a fixed V_th, in the units of the
 *                          activation, not volts),
 *             "k": number > 0 (default 3; only with an adaptive threshold).
 *   "conv2d": as linear (weight [out, in, kh, kw], bias [out]) plus
 *             "stride" (default 1, >= 1) and "padding" (default 0, >= 0),
 *             each an integer or [h, w].
 *   "flatten": no other keys.
 *   "sumpool2d", "avgpool2d": "kernel" (required, >= 1), "stride" (default
 *             = kernel), each an integer or [h, w]. Pooling acts on spikes and
 *             does not re-code, so no coding keys.
 *   Integers in kernel/stride/padding are at most 2^31 - 1.
 *
 * tensor — one of
 *   {"file": "fc1.weight.npy"}                              an .npy file
 *   {"file": "q.npy", "scales": "q.scales.npy", "group": 128}
 *                                       int8 .npy with per-group scales in
 *                                       another .npy file
 *   {"file": "model.safetensors", "tensor": "layers.0.q_proj.weight",
 *    "scales": "layers.0.q_proj.scales", "group": 128}
 *                                       a tensor (and, optionally, its scales
 *                                       tensor) inside a .safetensors file
 *   {"synthetic": {"dist": "normal", "mean": 0, "std": 0.02, "seed": 7,
 *                  "shape": [out, in], "quantize": "int8", "group": 128}}
 *                                       generated by the loader; dist
 *                                       "normal" (std required >= 0, mean
 *                                       default 0), "uniform" (low < high,
 *                                       both required), "const" (value
 *                                       required); seed default 0; quantize
 *                                       "none" (default) | "int8".
 *   File names must be non-empty; relative names are stored resolved against
 *   the spec file's directory (absolute names are kept). "group" (> 0,
 *   elements per scale along the last axis) needs "scales" or "quantize":
 *   "int8"; without it there is one scale per row. Synthetic shapes must fit
 *   the layer (linear weight 2-D, conv2d 4-D, bias 1-D matching the weight's
 *   out) and a synthetic group must divide the last dimension. Dims are
 *   positive, their product at most 2^40.
 *
 * pop — a population of one neuron model:
 *   "name": required, non-empty, < 64 bytes, unique among populations,
 *   "model": "if" | "lif" | "lif_exp" | "alif" | "linleak" | "loihi" | "poisson" (required;
 *             "alif" is lif with the adaptive threshold rule),
 *   "threshold": "fixed" | "adaptive" (optional; the threshold rule, default
 *             the model's: fixed, adaptive for alif),
 *   "n": integer, 1 .. 2^31 - 1 (and all populations together < 2^31),
 *   "params": object (optional); keys exactly the parameters of the model
 *             and its threshold rule (`nesim models` lists them with units
 *             and defaults: a key the model does not use is an error naming
 *             it); numbers, or true/false for reset_subtract; absent ones
 *             take their defaults, a required one (time constants,
 *             v_thresh, rate_hz) must be given. Any parameter may instead
 *             be given per neuron: an ARRAY of n numbers (inline, or
 *             {"file": "x.npy"}, 1-D, any numeric dtype); neurons of equal
 *             values share their constants (net/classes.h),
 *   "v_init": {"const": v} | {"uniform": [lo, hi]} (lo <= hi)
 *             | {"normal": [mean, sd]} (sd >= 0) | {"values": ARRAY} (n
 *             values, one per neuron); default: each neuron at its own
 *             v_rest (v_reset for a model without v_rest),
 *   "cores": ARRAY (optional): n whole numbers >= 0, the chip core of each
 *             neuron (net/map.h's numbering); given for every population
 *             or for none; default: the mapper places them.
 *
 * proj — a projection, connectivity drawn at build time:
 *   "pre", "post": population names (required); post must not be a source
 *             (poisson),
 *   "rule": "fixed_prob" | "all_to_all" | "one_to_one" (required),
 *   "p": number in [0, 1]: required for fixed_prob, not allowed otherwise,
 *   "weight": number, volts (a jump, or a current increment) (required),
 *   "delay": integer ticks >= 1, or "delay_s": seconds, a whole number >= 1
 *            of ticks (to 1e-9 relative); at most one; default 1 tick;
 *            at most 2^31 - 1 ticks,
 *   "autapses": true/false (default true, as Brian2's connect(p=...));
 *            only matters when pre == post,
 *   "storage": "dense" | "sparse" | "conv" (optional): how a chip stores
 *            the synapses, which sets a synaptic operation's latency and,
 *            on profiles that price them apart, its energy; default dense
 *            for all_to_all and one_to_one, sparse otherwise.
 *   one_to_one needs pre and post of the same size.
 *   "rule": "explicit" lists the synapses instead (no p, weight or autapses):
 *     "matrix": ARRAY, a dense weight matrix [post, pre] (any float dtype;
 *            zeros are not synapses), or
 *     "synapses": {"pre": ARRAY, "post": ARRAY, "weight": ARRAY,
 *            "delay": ARRAY (optional, integer ticks)}: one synapse per
 *            element (COO), indices into the populations, equal lengths;
 *     ARRAY is {"file": "x.npy"} (resolved against the spec's folder, read
 *     in binary, O(elements)) or an inline JSON array (of arrays, for a
 *     matrix); "delay" (ticks, or "delay_s") applies to synapses without
 *     their own. Checked when the graph is built: an index outside its
 *     population, a non-integer index or delay, a non-finite weight, lists
 *     of different lengths, a matrix of the wrong shape — one line naming
 *     the projection, the list and the element.
 */
#ifndef NESIM_NET_SPEC_H
#define NESIM_NET_SPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "net/graph.h"
#include "neurons/coder.h"
#include "neurons/neuron.h"

#define NESIM_SPEC_VERSION 1
#define NESIM_SPEC_MAX_DIM 8

typedef enum nesim_tensor_source {
    NESIM_TSRC_NONE = 0,  /* absent (an optional bias) */
    NESIM_TSRC_FILE,
    NESIM_TSRC_SYNTHETIC
} nesim_tensor_source;

typedef enum nesim_synth_dist { NESIM_SYNTH_NORMAL = 0, NESIM_SYNTH_UNIFORM, NESIM_SYNTH_CONST } nesim_synth_dist;
typedef enum nesim_quantize { NESIM_QUANT_NONE = 0, NESIM_QUANT_INT8 } nesim_quantize;

/* Where a layer's weight or bias comes from. */
typedef struct nesim_spec_tensor {
    nesim_tensor_source kind;
    /* NESIM_TSRC_FILE */
    char *file;     /* resolved path */
    char *tensor;   /* tensor name inside a .safetensors file; NULL for .npy */
    char *scales;   /* NULL, or: a tensor name (with `tensor`) or a resolved .npy path */
    /* NESIM_TSRC_SYNTHETIC */
    nesim_synth_dist dist;
    double a, b;    /* normal: mean a, sd b; uniform: [a, b); const: a */
    uint64_t seed;
    int ndim;
    int64_t shape[NESIM_SPEC_MAX_DIM];
    nesim_quantize quantize;
    /* both: elements per scale group along the last axis; 0 = one scale per row */
    int64_t group;
} nesim_spec_tensor;

typedef enum nesim_layer_type {
    NESIM_LAYER_LINEAR = 0,
    NESIM_LAYER_CONV2D,
    NESIM_LAYER_FLATTEN,
    NESIM_LAYER_SUMPOOL2D,
    NESIM_LAYER_AVGPOOL2D
} nesim_layer_type;

typedef enum nesim_activation { NESIM_ACT_NONE = 0, NESIM_ACT_RELU } nesim_activation;

typedef struct nesim_spec_layer {
    char *name;
    nesim_layer_type type;
    int from;                         /* input: -2 the previous layer (the model input
                                         for layers[0]); -1 the model input; >= 0 an
                                         earlier layer's index */
    /* linear, conv2d */
    nesim_spec_tensor weight, bias;   /* bias.kind == NESIM_TSRC_NONE when absent */
    nesim_activation activation;
    nesim_coding coding;              /* how this layer's input becomes spikes */
    int graded;                       /* "coding": "none": graded input, no spikes (MACs) */
    int adaptive;                     /* 1: V_th = mean|x| / k; 0: V_th = threshold */
    double k;
    double threshold;
    /* conv2d: stride, padding; pools: kernel, stride. [h, w]; unused are 0 */
    int64_t kernel[2], stride[2], padding[2];
} nesim_spec_layer;

/* An array given in a spec: an .npy file, or inline numbers (a matrix
 * inline is rows x cols, row-major). */
typedef struct nesim_spec_array {
    char *file;                       /* resolved path, or NULL: inline */
    double *v;                        /* inline values (per-neuron parameters: also a file's) */
    size_t n, rows, cols;             /* inline: n values; a matrix's shape (rows 0: 1-D) */
} nesim_spec_array;

typedef struct nesim_spec_pop {
    char *name;
    char *model;
    char *threshold;                  /* a threshold rule's name, or NULL (the model's) */
    uint32_t n;
    nesim_param *params;              /* as given, in file order; names owned */
    size_t n_params;
    /* parameters given per neuron: names owned; values read (n each, also
     * from a file, at parse time) */
    char **array_names;
    struct nesim_spec_array *arrays;
    size_t n_arrays;
    nesim_init_dist v_init;           /* values: into v_values */
    struct nesim_spec_array v_values;
    uint32_t *cores;                  /* "cores": neuron j on core cores[j], or NULL */
} nesim_spec_pop;

enum { NESIM_SYN_PRE, NESIM_SYN_POST, NESIM_SYN_WEIGHT, NESIM_SYN_DELAY, NESIM_SYN_LISTS };

typedef struct nesim_spec_proj {
    int pre, post;                    /* indices into nesim_spec.pops */
    enum nesim_conn_kind rule;
    double p;                         /* fixed_prob only; 0 otherwise */
    double weight;
    int64_t delay;                    /* ticks */
    int autapses;
    enum nesim_syn_storage storage;   /* "storage" (NESIM_STORE_AUTO when absent) */
    /* explicit: a matrix, or the synapse lists (delay optional) */
    int has_matrix;
    nesim_spec_array matrix;
    nesim_spec_array syn[NESIM_SYN_LISTS];
    int has_syn[NESIM_SYN_LISTS];
} nesim_spec_proj;

typedef struct nesim_spec {
    char *file;                       /* name used in messages (name_for_errors) */
    char *name;
    double tick;
    int has_seed;
    uint64_t seed;                    /* 0 when has_seed is 0 */
    int input_ndim;                   /* 0: no "input" */
    int64_t input_shape[NESIM_SPEC_MAX_DIM];
    nesim_spec_layer *layers;
    size_t n_layers;
    nesim_spec_pop *pops;
    size_t n_pops;
    nesim_spec_proj *projs;
    size_t n_projs;
    /* "published": figures to print beside the run's own (NaN when absent) */
    int has_published;
    char *pub_source;
    double pub_frac_small, pub_spikes_per_channel, pub_silent;
} nesim_spec;

/* Reads and parses the file at path; weight paths resolve against path's
 * directory; messages start with path as given. */
int nesim_spec_load(const char *path, nesim_spec **out, nesim_error *err);

/* Parses text[0..len) (need not be NUL-terminated; NUL bytes are a syntax
 * error). name_for_errors starts every message (NULL: "<spec>"); base_dir
 * (NULL or "": keep relative names as written) resolves weight files. */
int nesim_spec_parse(const char *text, size_t len, const char *name_for_errors,
                     const char *base_dir, nesim_spec **out, nesim_error *err);

void nesim_spec_free(nesim_spec *s);

/* One "synthetic" object ({"dist": ..., "shape": [...], ...}, as a layer's
 * weight takes it) into *t; messages name "FILE: PATH". */
int nesim_spec_parse_synthetic(const json_t *v, const char *file, const char *path, nesim_spec_tensor *t,
                               nesim_error *err);

/* Creates a graph with tick s->tick and the given seed (pass s->seed to use
 * the file's), adds the populations in file order (ids 0, 1, ...) and then
 * the projections in file order (ids 0, 1, ...), drawing connectivity.
 * Errors carry the JSON path ("FILE: populations[1]: ..."). A spec without
 * populations is NESIM_EINVAL. The caller frees *out with nesim_graph_free
 * (or hands it to nesim_net_from_graph). */
int nesim_spec_build_graph(const nesim_spec *s, uint64_t seed, nesim_graph **out, nesim_error *err);
/* The same, holding only part (may be NULL: all) of each fixed_prob and
 * explicit projection's targets (nesim_graph_set_part). */
int nesim_spec_build_graph_part(const nesim_spec *s, uint64_t seed, const nesim_graph_part *part, nesim_graph **out,
                                nesim_error *err);

/* Names as written in specs; "?" outside the enum. */
const char *nesim_layer_type_name(nesim_layer_type t);
const char *nesim_activation_name(nesim_activation a);

#endif
