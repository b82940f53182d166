/* spec.c — the JSON model spec (format and guarantees: spec.h).
 *
 * jansson parses the text (duplicate keys rejected, top level must be an
 * object); then one pass walks the tree in a fixed order (tick before
 * populations, populations before projections) so later checks can rely on
 * earlier values, copying everything into plain structs. Each object's keys
 * are checked before its values so that a misspelt key is reported as
 * unknown rather than as a missing required one. The JSON tree is dropped
 * before returning: the spec owns copies of every string.
 *
 * nesim_spec_load reads the file itself and hands the bytes to
 * nesim_spec_parse (json_loadb, the same lexer as json_load_file, so the same
 * line/column positions): one code path for files and the fuzzer, a size
 * limit before any allocation, and our own I/O status codes. */
#include "net/spec.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/jsonmsg.h"
#include "net/tensor.h"

enum { PATHN = NESIM_JSON_PATHN, SHOWN = NESIM_JSON_SHOWN };

/* The shared JSON-message helpers (net/jsonmsg.h), under short local names. */
#define find_name nesim_json_find_name
#define list_names nesim_json_list_names
#define show nesim_json_show
#define ascii_line nesim_json_ascii_line
#define sub nesim_json_sub
#define idx nesim_json_idx
#define bad(c, ...) nesim_json_bad(&(c)->j, __VA_ARGS__)
#define oom(c) nesim_json_oom(&(c)->j)
#define missing(c, path, key) nesim_json_missing(&(c)->j, path, key)

#define SPEC_MAX_BYTES (64u << 20)      /* a model spec is small; refuse anything absurd */
#define DIM_PRODUCT_MAX (INT64_C(1) << 40)
#define NAME_MAX_BYTES 63               /* names appear in one-line messages and report tables */

typedef struct pctx {
    nesim_jctx j; /* file name for messages, and the error to fill */
    const char *base_dir;
} pctx;

/* ---- names ------------------------------------------------------------- */

static const char *const layer_types[] = {"linear", "conv2d", "flatten", "sumpool2d", "avgpool2d", NULL};
static const char *const activations[] = {"none", "relu", NULL};
static const char *const rules[] = {"all_to_all", "one_to_one", "fixed_prob", "explicit", NULL}; /* enum order */
static const char *const dists[] = {"normal", "uniform", "const", NULL};
static const char *const quantizers[] = {"none", "int8", NULL};
static const char *const codings[] = {"binary", "ternary", "bitwise", "bitwise-bidirectional",
                                      "bitwise-twos-complement", "none", NULL};
enum { CODING_NONE = 5 }; /* graded input: no spikes (index in codings[]) */

static const char *name_at(const char *const *list, size_t n, int i)
{
    return i >= 0 && (size_t)i < n ? list[i] : "?";
}
const char *nesim_layer_type_name(nesim_layer_type t) { return name_at(layer_types, 5, (int)t); }
const char *nesim_activation_name(nesim_activation a) { return name_at(activations, 2, (int)a); }

/* ---- messages ---------------------------------------------------------- */


static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* ---- typed access ------------------------------------------------------ */

static int want_object(pctx *c, const json_t *v, const char *path)
{
    return json_is_object(v) ? NESIM_OK : bad(c, path, "expected an object, got %s", jtype(v));
}

static int check_keys(pctx *c, const json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (find_name(allowed, key) < 0) {
            char s[SHOWN], list[300];
            return bad(c, path[0] ? path : NULL, "unknown key '%s' (expected %s)", show(key, s),
                       list_names(allowed, list, sizeof list));
        }
    }
    return NESIM_OK;
}

static int want_number(pctx *c, const json_t *v, const char *path, double *out)
{
    if (!json_is_number(v))
        return bad(c, path, "expected a number, got %s", jtype(v));
    *out = json_number_value(v);
    return NESIM_OK;
}

static int want_int(pctx *c, const json_t *v, const char *path, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v))
        return bad(c, path, "expected an integer, got %s", jtype(v));
    int64_t x = (int64_t)json_integer_value(v);
    if (x < lo)
        return bad(c, path, "must be >= %lld (got %lld)", (long long)lo, (long long)x);
    if (x > hi)
        return bad(c, path, "must be <= %lld (got %lld)", (long long)hi, (long long)x);
    *out = x;
    return NESIM_OK;
}

static int want_bool(pctx *c, const json_t *v, const char *path, int *out)
{
    if (!json_is_boolean(v))
        return bad(c, path, "expected true or false, got %s", jtype(v));
    *out = json_is_true(v);
    return NESIM_OK;
}

/* A non-empty string. */
static int want_string(pctx *c, const json_t *v, const char *path, const char **out)
{
    if (!json_is_string(v))
        return bad(c, path, "expected a string, got %s", jtype(v));
    if (json_string_length(v) == 0)
        return bad(c, path, "must not be empty");
    *out = json_string_value(v);
    return NESIM_OK;
}

/* One of the names in list; *out receives its index. */
static int want_enum(pctx *c, const json_t *v, const char *path, const char *what,
                     const char *const *list, int *out)
{
    const char *s;
    int rc = want_string(c, v, path, &s);
    if (rc)
        return rc;
    int i = find_name(list, s);
    if (i < 0) {
        char sh[SHOWN], names[300];
        return bad(c, path, "unknown %s '%s' (expected %s)", what, show(s, sh),
                   list_names(list, names, sizeof names));
    }
    *out = i;
    return NESIM_OK;
}

static int want_name(pctx *c, const json_t *v, const char *path, char **out)
{
    const char *s;
    int rc = want_string(c, v, path, &s);
    if (rc)
        return rc;
    if (strlen(s) > NAME_MAX_BYTES)
        return bad(c, path, "name longer than %d bytes", NAME_MAX_BYTES);
    for (const unsigned char *q = (const unsigned char *)s; *q; q++)
        if (*q < 0x20 || *q == 0x7f) /* a name is printed: reports, traces, CSV rows, SVG */
            return bad(c, path, "control character 0x%02x in a name", *q);
    if (!(*out = strdup(s)))
        return oom(c);
    return NESIM_OK;
}

/* An integer, or [h, w] of integers, each in [lo, INT32_MAX]. */
static int want_pair(pctx *c, const json_t *v, const char *path, int64_t lo, int64_t out[2])
{
    char p[PATHN];
    if (json_is_array(v)) {
        if (json_array_size(v) != 2)
            return bad(c, path, "expected an integer or [h, w], got an array of %zu", json_array_size(v));
        for (size_t i = 0; i < 2; i++) {
            int rc = want_int(c, json_array_get(v, i), idx(p, path, i), lo, INT32_MAX, &out[i]);
            if (rc)
                return rc;
        }
        return NESIM_OK;
    }
    if (!json_is_integer(v))
        return bad(c, path, "expected an integer or [h, w], got %s", jtype(v));
    int rc = want_int(c, v, path, lo, INT32_MAX, &out[0]);
    out[1] = out[0];
    return rc;
}

/* 1..NESIM_SPEC_MAX_DIM positive dims whose product is at most 2^40. */
static int want_shape(pctx *c, const json_t *v, const char *path, int *ndim, int64_t *shape)
{
    if (!json_is_array(v))
        return bad(c, path, "expected an array of dimensions, got %s", jtype(v));
    size_t n = json_array_size(v);
    if (n < 1 || n > NESIM_SPEC_MAX_DIM)
        return bad(c, path, "must have 1 to %d dimensions (got %zu)", NESIM_SPEC_MAX_DIM, n);
    int64_t prod = 1;
    char p[PATHN];
    for (size_t i = 0; i < n; i++) {
        int rc = want_int(c, json_array_get(v, i), idx(p, path, i), 1, DIM_PRODUCT_MAX, &shape[i]);
        if (rc)
            return rc;
        if (shape[i] > DIM_PRODUCT_MAX / prod)
            return bad(c, path, "more than 2^40 elements");
        prod *= shape[i];
    }
    *ndim = (int)n;
    return NESIM_OK;
}

static char *resolve(const char *base, const char *name)
{
    if (name[0] == '/' || !base || !base[0])
        return strdup(name);
    size_t bl = strlen(base), nl = strlen(name);
    int slash = base[bl - 1] == '/';
    char *s = malloc(bl + !slash + nl + 1);
    if (s) {
        memcpy(s, base, bl);
        if (!slash)
            s[bl] = '/';
        memcpy(s + bl + !slash, name, nl + 1);
    }
    return s;
}

/* ---- tensors ----------------------------------------------------------- */

static int parse_synthetic(pctx *c, const json_t *v, const char *path, nesim_spec_tensor *t)
{
    static const char *const keys_normal[] = {"dist", "mean", "std", "seed", "shape", "quantize", "group", NULL};
    static const char *const keys_uniform[] = {"dist", "low", "high", "seed", "shape", "quantize", "group", NULL};
    static const char *const keys_const[] = {"dist", "value", "seed", "shape", "quantize", "group", NULL};
    static const char *const *const keys[] = {keys_normal, keys_uniform, keys_const};
    char p[PATHN];
    int rc, d, q = NESIM_QUANT_NONE;
    json_t *x;
    if ((rc = want_object(c, v, path)))
        return rc;
    /* The dist decides which keys are valid, so it is read first. */
    if (!(x = json_object_get(v, "dist")))
        return missing(c, path, "dist");
    if ((rc = want_enum(c, x, sub(p, path, "dist"), "dist", dists, &d)) ||
        (rc = check_keys(c, v, path, keys[d])))
        return rc;
    t->kind = NESIM_TSRC_SYNTHETIC;
    t->dist = (nesim_synth_dist)d;
    if (!(x = json_object_get(v, "shape")))
        return missing(c, path, "shape");
    if ((rc = want_shape(c, x, sub(p, path, "shape"), &t->ndim, t->shape)))
        return rc;
    if ((x = json_object_get(v, "seed"))) {
        int64_t s;
        if ((rc = want_int(c, x, sub(p, path, "seed"), 0, INT64_MAX, &s)))
            return rc;
        t->seed = (uint64_t)s;
    }
    if ((x = json_object_get(v, "quantize")) &&
        (rc = want_enum(c, x, sub(p, path, "quantize"), "quantization", quantizers, &q)))
        return rc;
    t->quantize = (nesim_quantize)q;
    if ((x = json_object_get(v, "group"))) {
        if ((rc = want_int(c, x, sub(p, path, "group"), 1, DIM_PRODUCT_MAX, &t->group)))
            return rc;
        if (t->quantize != NESIM_QUANT_INT8)
            return bad(c, p, "a scale group needs \"quantize\": \"int8\"");
        if (t->shape[t->ndim - 1] % t->group)
            return bad(c, p, "%lld does not divide the last dimension %lld", (long long)t->group,
                       (long long)t->shape[t->ndim - 1]);
    }
    if (t->dist == NESIM_SYNTH_NORMAL) {
        if ((x = json_object_get(v, "mean")) && (rc = want_number(c, x, sub(p, path, "mean"), &t->a)))
            return rc;
        if (!(x = json_object_get(v, "std")))
            return missing(c, path, "std");
        if ((rc = want_number(c, x, sub(p, path, "std"), &t->b)))
            return rc;
        if (!(t->b >= 0))
            return bad(c, p, "must be >= 0 (got %g)", t->b);
    } else if (t->dist == NESIM_SYNTH_UNIFORM) {
        if (!(x = json_object_get(v, "low")))
            return missing(c, path, "low");
        if ((rc = want_number(c, x, sub(p, path, "low"), &t->a)))
            return rc;
        if (!(x = json_object_get(v, "high")))
            return missing(c, path, "high");
        if ((rc = want_number(c, x, sub(p, path, "high"), &t->b)))
            return rc;
        if (!(t->a < t->b))
            return bad(c, path, "low (%g) must be below high (%g)", t->a, t->b);
    } else {
        if (!(x = json_object_get(v, "value")))
            return missing(c, path, "value");
        if ((rc = want_number(c, x, sub(p, path, "value"), &t->a)))
            return rc;
    }
    return NESIM_OK;
}

int nesim_spec_parse_synthetic(const json_t *v, const char *file, const char *path, nesim_spec_tensor *t,
                               nesim_error *err)
{
    pctx c = {{file, err}, NULL};
    memset(t, 0, sizeof *t);
    return parse_synthetic(&c, v, path, t);
}

static int parse_tensor(pctx *c, const json_t *v, const char *path, nesim_spec_tensor *t)
{
    static const char *const keys[] = {"file", "tensor", "scales", "group", "synthetic", NULL};
    char p[PATHN];
    const char *s;
    int rc;
    json_t *x;
    if ((rc = want_object(c, v, path)) || (rc = check_keys(c, v, path, keys)))
        return rc;
    if ((x = json_object_get(v, "synthetic"))) {
        if (json_object_size(v) != 1)
            return bad(c, path, "'synthetic' excludes file, tensor, scales and group");
        return parse_synthetic(c, x, sub(p, path, "synthetic"), t);
    }
    if (!(x = json_object_get(v, "file")))
        return bad(c, path, "needs 'file' or 'synthetic'");
    if ((rc = want_string(c, x, sub(p, path, "file"), &s)))
        return rc;
    t->kind = NESIM_TSRC_FILE;
    if (!(t->file = resolve(c->base_dir, s)))
        return oom(c);
    if ((x = json_object_get(v, "tensor"))) {
        if ((rc = want_string(c, x, sub(p, path, "tensor"), &s)))
            return rc;
        if (!(t->tensor = strdup(s)))
            return oom(c);
    }
    if ((x = json_object_get(v, "scales"))) {
        if ((rc = want_string(c, x, sub(p, path, "scales"), &s)))
            return rc;
        /* Inside a .safetensors file scales name a tensor; beside an .npy
         * they name another .npy file, which resolves like "file". */
        if (!(t->scales = t->tensor ? strdup(s) : resolve(c->base_dir, s)))
            return oom(c);
    }
    if ((x = json_object_get(v, "group"))) {
        if ((rc = want_int(c, x, sub(p, path, "group"), 1, DIM_PRODUCT_MAX, &t->group)))
            return rc;
        if (!t->scales)
            return bad(c, p, "a scale group needs 'scales'");
    }
    return NESIM_OK;
}

/* ---- layers ------------------------------------------------------------ */

static int parse_layer(pctx *c, const json_t *v, const char *path, size_t i, nesim_spec_layer *layers)
{
    nesim_spec_layer *L = &layers[i];
    static const char *const k_linear[] = {"name", "type", "from", "weight", "bias", "activation",
                                           "coding", "k", "threshold", NULL};
    static const char *const k_conv[] = {"name", "type", "from", "weight", "bias", "activation",
                                         "coding", "k", "threshold", "stride", "padding", NULL};
    static const char *const k_flatten[] = {"name", "type", "from", NULL};
    static const char *const k_pool[] = {"name", "type", "from", "kernel", "stride", NULL};
    static const char *const *const keys[] = {k_linear, k_conv, k_flatten, k_pool, k_pool};
    char p[PATHN];
    int rc, ty;
    json_t *x;
    if ((rc = want_object(c, v, path)))
        return rc;
    if (!(x = json_object_get(v, "type")))
        return missing(c, path, "type");
    if ((rc = want_enum(c, x, sub(p, path, "type"), "layer type", layer_types, &ty)) ||
        (rc = check_keys(c, v, path, keys[ty])))
        return rc;
    L->type = (nesim_layer_type)ty;
    if ((x = json_object_get(v, "name"))) {
        if ((rc = want_name(c, x, sub(p, path, "name"), &L->name)))
            return rc;
    } else {
        char def[32];
        snprintf(def, sizeof def, "%s%zu", layer_types[ty], i);
        if (!(L->name = strdup(def)))
            return oom(c);
    }
    if (strcmp(L->name, "input") == 0)
        return bad(c, sub(p, path, "name"), "'input' is reserved for the model input (see 'from')");
    L->from = -2;
    if ((x = json_object_get(v, "from"))) {
        const char *src;
        if ((rc = want_string(c, x, sub(p, path, "from"), &src)))
            return rc;
        if (strcmp(src, "input") == 0) {
            L->from = -1;
        } else {
            /* Only earlier layers: layers run in file order, so branches
             * are possible and cycles are not. */
            for (size_t j = 0; j < i && L->from == -2; j++)
                if (strcmp(layers[j].name, src) == 0)
                    L->from = (int)j;
            if (L->from == -2) {
                char sh[SHOWN];
                return bad(c, p, "no earlier layer '%s' (expected \"input\" or the name of a layer before this one)",
                           show(src, sh));
            }
        }
    }
    if (L->type == NESIM_LAYER_FLATTEN)
        return NESIM_OK;
    if (L->type == NESIM_LAYER_SUMPOOL2D || L->type == NESIM_LAYER_AVGPOOL2D) {
        if (!(x = json_object_get(v, "kernel")))
            return missing(c, path, "kernel");
        if ((rc = want_pair(c, x, sub(p, path, "kernel"), 1, L->kernel)))
            return rc;
        L->stride[0] = L->kernel[0];
        L->stride[1] = L->kernel[1];
        if ((x = json_object_get(v, "stride")) && (rc = want_pair(c, x, sub(p, path, "stride"), 1, L->stride)))
            return rc;
        return NESIM_OK;
    }
    /* linear, conv2d */
    int conv = L->type == NESIM_LAYER_CONV2D;
    if (conv) {
        L->stride[0] = L->stride[1] = 1;
        if ((x = json_object_get(v, "stride")) && (rc = want_pair(c, x, sub(p, path, "stride"), 1, L->stride)))
            return rc;
        if ((x = json_object_get(v, "padding")) && (rc = want_pair(c, x, sub(p, path, "padding"), 0, L->padding)))
            return rc;
    }
    if (!(x = json_object_get(v, "weight")))
        return missing(c, path, "weight");
    if ((rc = parse_tensor(c, x, sub(p, path, "weight"), &L->weight)))
        return rc;
    int wdim = conv ? 4 : 2;
    if (L->weight.kind == NESIM_TSRC_SYNTHETIC && L->weight.ndim != wdim)
        return bad(c, sub(p, path, "weight.synthetic.shape"), "a %s weight is %d-D (%s), got %d-D",
                   layer_types[ty], wdim, conv ? "[out, in, kh, kw]" : "[out, in]", L->weight.ndim);
    if ((x = json_object_get(v, "bias"))) {
        if ((rc = parse_tensor(c, x, sub(p, path, "bias"), &L->bias)))
            return rc;
        if (L->bias.kind == NESIM_TSRC_SYNTHETIC) {
            sub(p, path, "bias.synthetic.shape");
            if (L->bias.ndim != 1)
                return bad(c, p, "a bias is 1-D, got %d-D", L->bias.ndim);
            if (L->weight.kind == NESIM_TSRC_SYNTHETIC && L->bias.shape[0] != L->weight.shape[0])
                return bad(c, p, "bias length %lld differs from the weight's %lld outputs",
                           (long long)L->bias.shape[0], (long long)L->weight.shape[0]);
        }
    }
    int a = NESIM_ACT_NONE, cd = NESIM_CODE_BITWISE_BIDIR;
    if ((x = json_object_get(v, "activation")) &&
        (rc = want_enum(c, x, sub(p, path, "activation"), "activation", activations, &a)))
        return rc;
    L->activation = (nesim_activation)a;
    if ((x = json_object_get(v, "coding")) &&
        (rc = want_enum(c, x, sub(p, path, "coding"), "coding", codings, &cd)))
        return rc;
    /* The coder owns the name -> enum mapping; codings[] only lists the
     * names for messages, so the two cannot disagree silently. */
    L->graded = cd == CODING_NONE;
    if (L->graded)
        L->coding = NESIM_CODE_BITWISE_BIDIR; /* unused */
    else if (nesim_coding_parse(codings[cd], &L->coding, NULL))
        return nesim_fail(c->j.err, NESIM_EINTERNAL, "%s: coding table out of date", c->j.file);
    L->adaptive = 1;
    L->k = 3;
    if ((x = json_object_get(v, "threshold"))) {
        sub(p, path, "threshold");
        if (json_is_string(x)) {
            if (strcmp(json_string_value(x), "adaptive") != 0) {
                char sh[SHOWN];
                return bad(c, p, "expected \"adaptive\" or a number > 0, got '%s'",
                           show(json_string_value(x), sh));
            }
        } else if (json_is_number(x)) {
            L->adaptive = 0;
            L->threshold = json_number_value(x);
            if (!(L->threshold > 0))
                return bad(c, p, "must be > 0 (got %g)", L->threshold);
        } else {
            return bad(c, p, "expected \"adaptive\" or a number > 0, got %s", jtype(x));
        }
    }
    if ((x = json_object_get(v, "k"))) {
        if ((rc = want_number(c, x, sub(p, path, "k"), &L->k)))
            return rc;
        if (!(L->k > 0))
            return bad(c, p, "must be > 0 (got %g)", L->k);
        if (!L->adaptive)
            return bad(c, p, "only applies to an adaptive threshold (threshold is %g)", L->threshold);
    }
    if (!L->adaptive)
        L->k = 0;
    return NESIM_OK;
}

/* ---- populations and projections -------------------------------------- */

/* The model's and the rule's parameter tables, for a key being read. */
static const nesim_param_def *find_param(const nesim_model *m, const nesim_rule *r, const char *key)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, key) == 0)
            return &m->params[i];
    for (int i = 0; r && i < r->n_params; i++)
        if (strcmp(r->params[i].name, key) == 0)
            return &r->params[i];
    return NULL;
}

static const char *param_names(const nesim_model *m, const nesim_rule *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < m->n_params && o + 1 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", m->params[i].name);
    for (int i = 0; r && i < r->n_params && o + 1 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", r->params[i].name);
    return o ? buf : "none";
}

static int parse_array(pctx *c, const json_t *v, const char *path, int matrix, nesim_spec_array *a);
static int array_view(const nesim_spec_array *a, const char *what, int ndim, nesim_tensor *t, const double **v,
                      size_t *n, size_t *rows, size_t *cols, nesim_error *err);

/* A per-neuron parameter: n values, inline or from a 1-D .npy file (read now,
 * so that lengths and values are checked with the spec's path). */
static int parse_param_array(pctx *c, const json_t *v, const char *path, uint32_t n, nesim_spec_array *a)
{
    int rc = parse_array(c, v, path, 0, a);
    if (rc)
        return rc;
    if (a->file) {
        nesim_tensor t;
        nesim_error e = {0};
        const double *inline_v; /* NULL: the values are t's */
        size_t rows, cols;
        if ((rc = array_view(a, NULL, 1, &t, &inline_v, &a->n, &rows, &cols, &e)))
            return rc == NESIM_ENOMEM ? oom(c) : bad(c, path, "%s", e.msg);
        if (!(a->v = malloc((a->n ? a->n : 1) * sizeof *a->v))) {
            nesim_tensor_release(&t);
            return oom(c);
        }
        for (size_t k = 0; k < a->n; k++)
            a->v[k] = nesim_tensor_get(&t, k);
        nesim_tensor_release(&t);
    }
    if (a->n != n)
        return bad(c, path, "%zu values for a population of %u neurons", a->n, n);
    for (size_t k = 0; k < a->n; k++)
        if (!isfinite(a->v[k])) {
            char q[PATHN];
            return bad(c, idx(q, path, k), "%g is not a finite value", a->v[k]);
        }
    return NESIM_OK;
}

static int parse_params(pctx *c, const json_t *v, const char *path, const nesim_model *m, const nesim_rule *r,
                        const char *model_name, nesim_spec_pop *P)
{
    char p[PATHN];
    const char *key;
    json_t *x;
    int rc;
    if ((rc = want_object(c, v, path)))
        return rc;
    json_object_foreach((json_t *)v, key, x) {
        if (!find_param(m, r, key)) {
            char s[SHOWN], list[300];
            return bad(c, path, "unknown key '%s' (%s takes %s)", show(key, s), model_name,
                       param_names(m, r, list, sizeof list));
        }
    }
    size_t n = json_object_size(v);
    if (n && (!(P->params = calloc(n, sizeof *P->params)) || !(P->arrays = calloc(n, sizeof *P->arrays)) ||
              !(P->array_names = calloc(n, sizeof *P->array_names))))
        return oom(c);
    json_object_foreach((json_t *)v, key, x) {
        const nesim_param_def *d = find_param(m, r, key);
        if (json_is_array(x) || json_is_object(x)) { /* per neuron */
            size_t k = P->n_arrays++;
            if (!(P->array_names[k] = strdup(key)))
                return oom(c);
            if ((rc = parse_param_array(c, x, sub(p, path, key), P->n, &P->arrays[k])))
                return rc;
            continue;
        }
        nesim_param *q = &P->params[P->n_params];
        if (!(q->name = strdup(key)))
            return oom(c);
        P->n_params++;
        if (d->flags & NESIM_P_BOOL) {
            int b = 0;
            if ((rc = want_bool(c, x, sub(p, path, key), &b)))
                return rc;
            q->value = b;
        } else if ((rc = want_number(c, x, sub(p, path, key), &q->value))) {
            return rc;
        }
    }
    return NESIM_OK;
}

static int parse_v_init(pctx *c, const json_t *v, const char *path, nesim_spec_pop *P)
{
    static const char *const keys[] = {"const", "uniform", "normal", "values", NULL};
    nesim_init_dist *d = &P->v_init;
    char p[PATHN], q[PATHN];
    int rc;
    if ((rc = want_object(c, v, path)) || (rc = check_keys(c, v, path, keys)))
        return rc;
    if (json_object_size(v) != 1)
        return bad(c, path, "give exactly one of const, uniform, normal, values");
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)v, key, x) {
        int k = find_name(keys, key);
        sub(p, path, key);
        d->kind = (enum nesim_init_kind)k;
        if (k == 0)
            return want_number(c, x, p, &d->a);
        if (k == 3) { /* one value per neuron */
            d->kind = NESIM_INIT_VALUES;
            if ((rc = parse_param_array(c, x, p, P->n, &P->v_values)))
                return rc;
            d->values = P->v_values.v;
            return NESIM_OK;
        }
        if (!json_is_array(x) || json_array_size(x) != 2)
            return bad(c, p, "expected [%s], got %s", k == 1 ? "low, high" : "mean, sd",
                       json_is_array(x) ? "an array of another length" : jtype(x));
        if ((rc = want_number(c, json_array_get(x, 0), idx(q, p, 0), &d->a)) ||
            (rc = want_number(c, json_array_get(x, 1), idx(q, p, 1), &d->b)))
            return rc;
        if (k == 1 && !(d->a <= d->b))
            return bad(c, p, "low (%g) must not exceed high (%g)", d->a, d->b);
        if (k == 2 && !(d->b >= 0))
            return bad(c, p, "sd must be >= 0 (got %g)", d->b);
    }
    return NESIM_OK;
}

static int parse_pop(pctx *c, const json_t *v, const char *path, double tick, nesim_spec_pop *P)
{
    static const char *const keys[] = {"name", "model", "threshold", "n", "params", "v_init", "cores", NULL};
    char p[PATHN];
    int rc;
    json_t *x;
    if ((rc = want_object(c, v, path)) || (rc = check_keys(c, v, path, keys)))
        return rc;
    if (!(x = json_object_get(v, "name")))
        return missing(c, path, "name");
    if ((rc = want_name(c, x, sub(p, path, "name"), &P->name)))
        return rc;
    if (!(x = json_object_get(v, "model")))
        return missing(c, path, "model");
    int mi;
    if ((rc = want_enum(c, x, sub(p, path, "model"), "neuron model", nesim_model_names(), &mi)))
        return rc;
    if (!(P->model = strdup(nesim_model_names()[mi])))
        return oom(c);
    const nesim_rule *rule;
    const nesim_model *m = nesim_model_find(P->model, &rule);
    if ((x = json_object_get(v, "threshold"))) {
        int ri;
        if ((rc = want_enum(c, x, sub(p, path, "threshold"), "threshold rule", nesim_rule_names(), &ri)))
            return rc;
        const nesim_rule *r = nesim_rule_find(nesim_rule_names()[ri]);
        if (rule && r != rule)
            return bad(c, p, "model %s implies the %s threshold rule", P->model, rule->name);
        if (!(m->rules & (1u << r->kind)))
            return bad(c, p, "model %s does not take the %s threshold rule", P->model, r->name);
        rule = r;
        if (!(P->threshold = strdup(r->name)))
            return oom(c);
    }
    if (!(x = json_object_get(v, "n")))
        return missing(c, path, "n");
    int64_t n;
    if ((rc = want_int(c, x, sub(p, path, "n"), 1, INT32_MAX, &n)))
        return rc;
    P->n = (uint32_t)n;
    if ((x = json_object_get(v, "params")) &&
        (rc = parse_params(c, x, sub(p, path, "params"), m, rule, P->model, P)))
        return rc;
    /* The model's own parameter check, here so that errors carry the JSON
     * path and building cannot fail on parameters later. */
    nesim_dyn d;
    nesim_error e = {0};
    nesim_param *all = malloc((P->n_params + P->n_arrays + 1) * sizeof *all);
    if (!all)
        return oom(c);
    if (P->n_params) /* no "params": nothing to copy (and P->params is NULL) */
        memcpy(all, P->params, P->n_params * sizeof *all);
    /* per-neuron values: the first neuron's here (names, required ones);
     * every neuron's when the graph is built, naming the neuron */
    for (size_t k = 0; k < P->n_arrays; k++)
        all[P->n_params + k] = (nesim_param){P->array_names[k], P->arrays[k].v[0]};
    rc = nesim_dyn_prepare(&d, m, rule, all, P->n_params + P->n_arrays, tick, &e);
    free(all);
    nesim_dyn_free(&d);
    if (rc == NESIM_ENOMEM)
        return oom(c);
    if (rc)
        return bad(c, sub(p, path, "params"), "%s%s", P->n_arrays ? "neuron 0: " : "", e.msg);
    P->v_init = (nesim_init_dist){.kind = NESIM_INIT_REST, .a = 0, .b = 0};
    if ((x = json_object_get(v, "v_init")) && (rc = parse_v_init(c, x, sub(p, path, "v_init"), P)))
        return rc;
    if ((x = json_object_get(v, "cores"))) {
        nesim_spec_array a = {0};
        sub(p, path, "cores");
        rc = parse_param_array(c, x, p, P->n, &a);
        if (!rc && !(P->cores = malloc((size_t)P->n * sizeof *P->cores)))
            rc = oom(c);
        for (uint32_t j = 0; !rc && j < P->n; j++) {
            if (!(a.v[j] >= 0 && a.v[j] <= (double)UINT32_MAX && a.v[j] == floor(a.v[j]))) {
                char q[PATHN];
                rc = bad(c, idx(q, p, j), "a core is a whole number >= 0 (got %g)", a.v[j]);
            } else {
                P->cores[j] = (uint32_t)a.v[j];
            }
        }
        free(a.file);
        free(a.v);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

static int find_pop(pctx *c, const nesim_spec *s, const json_t *v, const char *path, int *out)
{
    const char *name;
    int rc = want_string(c, v, path, &name);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->n_pops; i++)
        if (strcmp(s->pops[i].name, name) == 0) {
            *out = (int)i;
            return NESIM_OK;
        }
    char sh[SHOWN], list[300];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; i < s->n_pops && o < sizeof list - 80; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", s->pops[i].name);
    if (o >= sizeof list - 80)
        snprintf(list + o, sizeof list - o, ", ...");
    return bad(c, path, "no population '%s' (populations: %s)", show(name, sh), list);
}

/* An ARRAY: {"file": "x.npy"}, or inline numbers (matrix: arrays of equal length). */
static int parse_array(pctx *c, const json_t *v, const char *path, int matrix, nesim_spec_array *a)
{
    static const char *const keys[] = {"file", NULL};
    char p[PATHN];
    int rc;
    if (json_is_object(v)) {
        const char *f;
        if ((rc = check_keys(c, v, path, keys)))
            return rc;
        json_t *x = json_object_get(v, "file");
        if (!x)
            return missing(c, path, "file");
        if ((rc = want_string(c, x, sub(p, path, "file"), &f)))
            return rc;
        if (!(a->file = resolve(c->base_dir, f)))
            return oom(c);
        return NESIM_OK;
    }
    if (!json_is_array(v))
        return bad(c, path, "expected {\"file\": \"x.npy\"} or an array, got %s", jtype(v));
    size_t rows = matrix ? json_array_size(v) : 0, cols = matrix ? 0 : json_array_size(v);
    if (matrix && rows)
        cols = json_is_array(json_array_get(v, 0)) ? json_array_size(json_array_get(v, 0)) : 0;
    size_t n = matrix ? rows * cols : cols;
    if (matrix && (!rows || !cols))
        return bad(c, path, "a matrix needs rows of numbers");
    if (!(a->v = malloc((n ? n : 1) * sizeof *a->v)))
        return oom(c);
    a->n = n, a->rows = rows, a->cols = cols;
    for (size_t r = 0; r < (matrix ? rows : 1); r++) {
        const json_t *row = matrix ? json_array_get(v, r) : v;
        if (!json_is_array(row) || json_array_size(row) != cols)
            return bad(c, idx(p, path, r), "rows must be arrays of %zu numbers", cols);
        for (size_t k = 0; k < cols; k++) {
            const json_t *x = json_array_get(row, k);
            if (!json_is_number(x)) {
                char q[PATHN];
                return bad(c, matrix ? idx(p, idx(q, path, r), k) : idx(p, path, k), "expected a number, got %s",
                           jtype(x));
            }
            a->v[r * cols + k] = json_number_value(x);
        }
    }
    return NESIM_OK;
}

static int parse_explicit(pctx *c, const json_t *v, const char *path, nesim_spec_proj *J)
{
    static const char *const syn_keys[] = {"pre", "post", "weight", "delay", NULL};
    char p[PATHN], q[PATHN];
    int rc;
    json_t *m = json_object_get(v, "matrix"), *sy = json_object_get(v, "synapses");
    for (const char *const *k = (const char *const[]){"p", "weight", "autapses", NULL}; *k; k++)
        if (json_object_get(v, *k))
            return bad(c, sub(p, path, *k), "not for rule explicit (the synapses carry their weights)");
    if (!!m == !!sy)
        return bad(c, path, "rule explicit needs 'matrix' or 'synapses' (one of them)");
    if (m) {
        J->has_matrix = 1;
        return parse_array(c, m, sub(p, path, "matrix"), 1, &J->matrix);
    }
    sub(p, path, "synapses");
    if ((rc = want_object(c, sy, p)) || (rc = check_keys(c, sy, p, syn_keys)))
        return rc;
    for (int i = 0; i < NESIM_SYN_LISTS; i++) {
        json_t *x = json_object_get(sy, syn_keys[i]);
        if (!x && i != NESIM_SYN_DELAY)
            return missing(c, p, syn_keys[i]);
        if (x && (rc = parse_array(c, x, sub(q, p, syn_keys[i]), 0, &J->syn[i])))
            return rc;
        J->has_syn[i] = x != NULL;
    }
    return NESIM_OK;
}

/* An explicit projection's synapses as lists (COO). */
typedef struct syn_lists {
    uint32_t *pre, *post;
    double *w;
    int64_t *delay;
    uint64_t n;
} syn_lists;

static void syn_lists_free(syn_lists *o)
{
    free(o->pre), free(o->post), free(o->w), free(o->delay);
    memset(o, 0, sizeof *o);
}

static int explicit_lists(const nesim_spec *s, const nesim_spec_proj *J, syn_lists *o, nesim_error *err);

/* Inline synapses are data the parse has in hand: checked now, as a file's
 * are when the graph is built (same messages). */
static int check_inline(pctx *c, const char *path, const nesim_spec *s, const nesim_spec_proj *J)
{
    int files = J->has_matrix && J->matrix.file;
    for (int k = 0; k < NESIM_SYN_LISTS; k++)
        files |= J->has_syn[k] && J->syn[k].file;
    if (files)
        return NESIM_OK;
    syn_lists sl = {0};
    int rc = explicit_lists(s, J, &sl, c->j.err);
    syn_lists_free(&sl);
    return rc ? nesim_context(c->j.err, "%s: %s: ", c->j.file, path) : NESIM_OK;
}

static int parse_proj(pctx *c, const json_t *v, const char *path, const nesim_spec *s, nesim_spec_proj *J)
{
    static const char *const keys[] = {"pre", "post", "rule", "p", "weight", "delay", "delay_s",
                                       "autapses", "matrix", "synapses", "storage", NULL};
    static const char *const storages[] = {"auto", "dense", "sparse", "conv", NULL}; /* enum order */
    char p[PATHN];
    int rc, r;
    json_t *x;
    if ((rc = want_object(c, v, path)) || (rc = check_keys(c, v, path, keys)))
        return rc;
    if (!(x = json_object_get(v, "pre")))
        return missing(c, path, "pre");
    if ((rc = find_pop(c, s, x, sub(p, path, "pre"), &J->pre)))
        return rc;
    if (!(x = json_object_get(v, "post")))
        return missing(c, path, "post");
    if ((rc = find_pop(c, s, x, sub(p, path, "post"), &J->post)))
        return rc;
    const nesim_spec_pop *pre = &s->pops[J->pre], *post = &s->pops[J->post];
    if (nesim_model_find(post->model, NULL)->is_source)
        return bad(c, p, "population '%s' is a spike source (%s) and takes no input", post->name,
                   post->model);
    if (!(x = json_object_get(v, "rule")))
        return missing(c, path, "rule");
    if ((rc = want_enum(c, x, sub(p, path, "rule"), "connection rule", rules, &r)))
        return rc;
    J->rule = (enum nesim_conn_kind)r;
    if ((x = json_object_get(v, "storage"))) {
        int st;
        if ((rc = want_enum(c, x, sub(p, path, "storage"), "synapse storage", storages, &st)))
            return rc;
        J->storage = (enum nesim_syn_storage)st;
    }
    if (J->rule != NESIM_EXPLICIT && (json_object_get(v, "matrix") || json_object_get(v, "synapses")))
        return bad(c, path, "'matrix' and 'synapses' are for rule explicit");
    if (J->rule == NESIM_EXPLICIT && (rc = parse_explicit(c, v, path, J)))
        return rc;
    if (J->rule == NESIM_EXPLICIT && (rc = check_inline(c, path, s, J)))
        return rc;
    if (J->rule == NESIM_ONE_TO_ONE && pre->n != post->n)
        return bad(c, p, "one_to_one needs equal sizes ('%s' has %u, '%s' has %u)", pre->name,
                   pre->n, post->name, post->n);
    x = json_object_get(v, "p");
    if (J->rule == NESIM_FIXED_PROB) {
        if (!x)
            return missing(c, path, "p");
        if ((rc = want_number(c, x, sub(p, path, "p"), &J->p)))
            return rc;
        if (!(J->p >= 0 && J->p <= 1))
            return bad(c, p, "must be in [0, 1] (got %g)", J->p);
    } else if (x) {
        return bad(c, sub(p, path, "p"), "only for rule fixed_prob");
    }
    if (J->rule != NESIM_EXPLICIT && !(x = json_object_get(v, "weight")))
        return missing(c, path, "weight");
    if (J->rule != NESIM_EXPLICIT && (rc = want_number(c, x, sub(p, path, "weight"), &J->weight)))
        return rc;
    J->delay = 1;
    json_t *dt = json_object_get(v, "delay"), *ds = json_object_get(v, "delay_s");
    if (dt && ds)
        return bad(c, path, "give 'delay' (ticks) or 'delay_s' (seconds), not both");
    if (dt && (rc = want_int(c, dt, sub(p, path, "delay"), 1, INT32_MAX, &J->delay)))
        return rc;
    if (ds) {
        double sec;
        if ((rc = want_number(c, ds, sub(p, path, "delay_s"), &sec)))
            return rc;
        double ticks = sec / s->tick, r0 = nearbyint(ticks);
        if (!(ticks >= 0.5) || !(ticks < (double)INT32_MAX + 0.5))
            return bad(c, p, "%g s is %g ticks of %g s; must be 1 .. 2^31 - 1 ticks", sec, ticks, s->tick);
        if (fabs(ticks - r0) > 1e-9 * r0)
            return bad(c, p, "%g s is not a whole number of ticks of %g s (%.6g ticks)", sec, s->tick, ticks);
        J->delay = (int64_t)r0;
    }
    J->autapses = 1;
    if ((x = json_object_get(v, "autapses")) && (rc = want_bool(c, x, sub(p, path, "autapses"), &J->autapses)))
        return rc;
    return NESIM_OK;
}

/* ---- the document ------------------------------------------------------ */

/* A non-empty array; *n receives its size. */
static int want_list(pctx *c, const json_t *v, const char *path, size_t *n)
{
    if (!json_is_array(v))
        return bad(c, path, "expected an array, got %s", jtype(v));
    if ((*n = json_array_size(v)) == 0)
        return bad(c, path, "must not be empty (leave the key out instead)");
    return NESIM_OK;
}

static int parse_doc(pctx *c, const json_t *root, nesim_spec *s)
{
    static const char *const keys[] = {"nesim", "name", "description", "tick", "seed", "input",
                                       "layers", "populations", "projections", "published", NULL};
    char p[PATHN];
    int rc;
    json_t *x;
    if (!json_is_object(root))
        return bad(c, NULL, "the top level must be an object, got %s", jtype(root));
    if ((rc = check_keys(c, root, "", keys)))
        return rc;

    int64_t version;
    if (!(x = json_object_get(root, "nesim")))
        return missing(c, "", "nesim");
    if ((rc = want_int(c, x, "nesim", INT64_MIN, INT64_MAX, &version)))
        return rc;
    if (version != NESIM_SPEC_VERSION)
        return bad(c, "nesim", "unsupported format version %lld (this build reads %d)",
                   (long long)version, NESIM_SPEC_VERSION);
    const char *str = "model";
    if ((x = json_object_get(root, "name")) && (rc = want_string(c, x, "name", &str)))
        return rc;
    if (!(s->name = strdup(str)))
        return oom(c);
    if ((x = json_object_get(root, "description")) && !json_is_string(x))
        return bad(c, "description", "expected a string, got %s", jtype(x));
    s->pub_frac_small = s->pub_spikes_per_channel = s->pub_silent = NAN;
    if ((x = json_object_get(root, "published"))) {
        static const char *const pk[] = {"source", "frac_counts_0_7", "spikes_per_channel", "silent_fraction", NULL};
        double *dst[3] = {&s->pub_frac_small, &s->pub_spikes_per_channel, &s->pub_silent};
        if ((rc = want_object(c, x, "published")) || (rc = check_keys(c, x, "published", pk)))
            return rc;
        const char *src = "published";
        json_t *y;
        if ((y = json_object_get(x, "source")) && (rc = want_string(c, y, "published.source", &src)))
            return rc;
        if (!(s->pub_source = strdup(src)))
            return oom(c);
        for (int k = 0; k < 3; k++)
            if ((y = json_object_get(x, pk[k + 1]))) {
                char q[PATHN];
                snprintf(q, sizeof q, "published.%s", pk[k + 1]);
                if ((rc = want_number(c, y, q, dst[k])))
                    return rc;
                if (!(*dst[k] >= 0))
                    return bad(c, q, "must be >= 0");
            }
        s->has_published = 1;
    }
    if (!(x = json_object_get(root, "tick")))
        return missing(c, "", "tick");
    if ((rc = want_number(c, x, "tick", &s->tick)))
        return rc;
    if (!(s->tick > 0 && s->tick < 1e6))
        return bad(c, "tick", "must be in (0, 1e6) seconds (got %g)", s->tick);
    if ((x = json_object_get(root, "seed"))) {
        int64_t seed;
        if ((rc = want_int(c, x, "seed", 0, INT64_MAX, &seed)))
            return rc;
        s->has_seed = 1;
        s->seed = (uint64_t)seed;
    }

    json_t *in = json_object_get(root, "input"), *layers = json_object_get(root, "layers");
    json_t *pops = json_object_get(root, "populations"), *projs = json_object_get(root, "projections");
    if (!layers && !pops)
        return bad(c, NULL, "a spec needs 'layers' or 'populations' (or both)");
    if (in) {
        static const char *const in_keys[] = {"shape", NULL};
        if (!layers)
            return bad(c, "input", "only used with 'layers'");
        if ((rc = want_object(c, in, "input")) || (rc = check_keys(c, in, "input", in_keys)))
            return rc;
        if (!(x = json_object_get(in, "shape")))
            return missing(c, "input", "shape");
        if ((rc = want_shape(c, x, "input.shape", &s->input_ndim, s->input_shape)))
            return rc;
    } else if (layers) {
        return bad(c, "input", "required when 'layers' are given");
    }

    if (layers) {
        size_t n;
        if ((rc = want_list(c, layers, "layers", &n)))
            return rc;
        if (!(s->layers = calloc(n, sizeof *s->layers)))
            return oom(c);
        for (size_t i = 0; i < n; i++) {
            s->n_layers = i + 1; /* so free() sees the partly filled entry */
            if ((rc = parse_layer(c, json_array_get(layers, i), idx(p, "layers", i), i, s->layers)))
                return rc;
            for (size_t j = 0; j < i; j++)
                if (strcmp(s->layers[j].name, s->layers[i].name) == 0) {
                    char sh[SHOWN], q[PATHN];
                    return bad(c, sub(q, p, "name"), "'%s' already names layers[%zu]",
                               show(s->layers[i].name, sh), j);
                }
        }
    }

    if (pops) {
        size_t n;
        uint64_t total = 0;
        if ((rc = want_list(c, pops, "populations", &n)))
            return rc;
        if (!(s->pops = calloc(n, sizeof *s->pops)))
            return oom(c);
        for (size_t i = 0; i < n; i++) {
            s->n_pops = i + 1;
            nesim_spec_pop *P = &s->pops[i];
            if ((rc = parse_pop(c, json_array_get(pops, i), idx(p, "populations", i), s->tick, P)))
                return rc;
            char q[PATHN];
            for (size_t j = 0; j < i; j++)
                if (strcmp(s->pops[j].name, P->name) == 0) {
                    char sh[SHOWN];
                    return bad(c, sub(q, p, "name"), "'%s' already names populations[%zu]",
                               show(P->name, sh), j);
                }
            if ((total += P->n) > INT32_MAX)
                return bad(c, sub(q, p, "n"), "more than 2^31 - 1 neurons in all populations");
        }
    }

    if (projs) {
        if (!pops)
            return bad(c, "projections", "needs 'populations'");
        if (!json_is_array(projs))
            return bad(c, "projections", "expected an array, got %s", jtype(projs));
        size_t n = json_array_size(projs);
        if (n && !(s->projs = calloc(n, sizeof *s->projs)))
            return oom(c);
        for (size_t i = 0; i < n; i++) {
            s->n_projs = i + 1;
            if ((rc = parse_proj(c, json_array_get(projs, i), idx(p, "projections", i), s, &s->projs[i])))
                return rc;
        }
    }
    return NESIM_OK;
}

int nesim_spec_parse(const char *text, size_t len, const char *name_for_errors,
                     const char *base_dir, nesim_spec **out, nesim_error *err)
{
    *out = NULL;
    pctx c = {{name_for_errors ? name_for_errors : "<spec>", err}, base_dir};
    json_error_t je;
    /* JSON_DECODE_ANY stays off (top level must be an object or array);
     * duplicate keys would silently shadow each other, so they are errors. */
    json_t *root = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        int code = json_error_code(&je) == json_error_out_of_memory ? NESIM_ENOMEM : NESIM_EINVAL;
        char what[4 * JSON_ERROR_TEXT_LENGTH];
        ascii_line(je.text, what, sizeof what);
        if (je.line > 0)
            return nesim_fail(err, code, "%s:%d:%d: %s", c.j.file, je.line, je.column, what);
        return nesim_fail(err, code, "%s: %s", c.j.file, what);
    }
    nesim_spec *s = calloc(1, sizeof *s);
    int rc = s ? NESIM_OK : oom(&c);
    if (s && !(s->file = strdup(c.j.file)))
        rc = oom(&c);
    if (!rc)
        rc = parse_doc(&c, root, s);
    json_decref(root);
    if (rc) {
        nesim_spec_free(s);
        return rc;
    }
    *out = s;
    return NESIM_OK;
}

int nesim_spec_load(const char *path, nesim_spec **out, nesim_error *err)
{
    *out = NULL;
    char *buf;
    size_t n;
    int rc0 = nesim_json_read_file(path, SPEC_MAX_BYTES, "model spec", "64 MiB", &buf, &n, err);
    if (rc0)
        return rc0;
    /* Weight files resolve against the directory the spec lives in. */
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (slash && !(dir = strndup(path, slash == path ? 1 : (size_t)(slash - path)))) {
        free(buf);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    }
    int rc = nesim_spec_parse(buf, n, path, dir, out, err);
    free(dir);
    free(buf);
    return rc;
}

static void free_tensor(nesim_spec_tensor *t)
{
    free(t->file);
    free(t->tensor);
    free(t->scales);
}

void nesim_spec_free(nesim_spec *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_layers; i++) {
        free(s->layers[i].name);
        free_tensor(&s->layers[i].weight);
        free_tensor(&s->layers[i].bias);
    }
    for (size_t i = 0; i < s->n_pops; i++) {
        free(s->pops[i].name);
        free(s->pops[i].model);
        free(s->pops[i].threshold);
        for (size_t k = 0; k < s->pops[i].n_params; k++)
            free((char *)s->pops[i].params[k].name);
        free(s->pops[i].params);
        for (size_t k = 0; k < s->pops[i].n_arrays; k++)
            free(s->pops[i].array_names[k]), free(s->pops[i].arrays[k].file), free(s->pops[i].arrays[k].v);
        free(s->pops[i].array_names);
        free(s->pops[i].arrays);
        free(s->pops[i].v_values.file), free(s->pops[i].v_values.v);
        free(s->pops[i].cores);
    }
    for (size_t i = 0; i < s->n_projs; i++) {
        nesim_spec_proj *J = &s->projs[i];
        free(J->matrix.file), free(J->matrix.v);
        for (int k = 0; k < NESIM_SYN_LISTS; k++)
            free(J->syn[k].file), free(J->syn[k].v);
    }
    free(s->layers);
    free(s->pops);
    free(s->projs);
    free(s->name);
    free(s->pub_source);
    free(s->file);
    free(s);
}

/* ---- building ---------------------------------------------------------- */


/* The values of a spec array: inline, or read from its .npy file (binary,
 * O(elements)); *t (when a file) is released by the caller. ndim 1 or 2.
 * Messages start with `what: ` (what NULL: with the file's name alone). */
static int array_view(const nesim_spec_array *a, const char *what, int ndim, nesim_tensor *t, const double **v,
                      size_t *n, size_t *rows, size_t *cols, nesim_error *err)
{
    memset(t, 0, sizeof *t);
    *v = NULL;
    if (!a->file) {
        *v = a->v, *n = a->n, *rows = a->rows, *cols = a->cols;
        return NESIM_OK;
    }
    int rc = nesim_npy_load(a->file, t, err);
    if (rc)
        return what ? nesim_context(err, "%s: ", what) : rc;
    if (t->ndim != ndim || t->dtype == NESIM_BOOL) {
        int nd = t->ndim;
        const char *dt = nesim_dtype_name(t->dtype);
        nesim_tensor_release(t);
        return nesim_fail(err, NESIM_EINVAL, "%s%s%s must be a %d-D numeric array (it is %d-D %s)", what ? what : "",
                          what ? ": " : "", a->file, ndim, nd, dt);
    }
    *n = t->count;
    *rows = ndim == 2 ? (size_t)t->shape[0] : 0;
    *cols = ndim == 2 ? (size_t)t->shape[1] : t->count;
    return NESIM_OK;
}

static double av(const nesim_tensor *t, const double *v, size_t i) { return v ? v[i] : nesim_tensor_get(t, i); }

static int explicit_lists(const nesim_spec *s, const nesim_spec_proj *J, syn_lists *o, nesim_error *err)
{
    const nesim_spec_pop *pre = &s->pops[J->pre], *post = &s->pops[J->post];
    nesim_tensor t;
    const double *v;
    size_t n, rows, cols;
    int rc;
    if (J->has_matrix) {
        if ((rc = array_view(&J->matrix, "matrix", 2, &t, &v, &n, &rows, &cols, err)))
            return rc;
        if (rows != post->n || cols != pre->n) {
            nesim_tensor_release(&t);
            return nesim_fail(err, NESIM_EINVAL, "matrix: shape [%zu, %zu], expected [post %u, pre %u]", rows, cols,
                              post->n, pre->n);
        }
        uint64_t nz = 0;
        for (size_t k = 0; k < n; k++)
            nz += av(&t, v, k) != 0;
        o->pre = malloc((nz ? nz : 1) * sizeof *o->pre);
        o->post = malloc((nz ? nz : 1) * sizeof *o->post);
        o->w = malloc((nz ? nz : 1) * sizeof *o->w);
        if (!o->pre || !o->post || !o->w) {
            nesim_tensor_release(&t);
            return nesim_fail(err, NESIM_ENOMEM, "matrix: out of memory for %llu synapses", (unsigned long long)nz);
        }
        for (size_t r = 0, k = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++) {
                double x = av(&t, v, r * cols + c);
                if (x != 0) /* zeros are not synapses; NaN is (and is refused by the graph) */
                    o->pre[k] = (uint32_t)c, o->post[k] = (uint32_t)r, o->w[k] = x, k++;
            }
        o->n = nz;
        nesim_tensor_release(&t);
        return NESIM_OK;
    }
    static const char *const names[NESIM_SYN_LISTS] = {"synapses.pre", "synapses.post", "synapses.weight",
                                                       "synapses.delay"};
    size_t len = 0;
    for (int i = 0; i < NESIM_SYN_LISTS; i++) {
        if (!J->has_syn[i])
            continue;
        if ((rc = array_view(&J->syn[i], names[i], 1, &t, &v, &n, &rows, &cols, err)))
            return rc;
        if (i == 0) {
            len = n;
            o->pre = malloc((len ? len : 1) * sizeof *o->pre);
            o->post = malloc((len ? len : 1) * sizeof *o->post);
            o->w = malloc((len ? len : 1) * sizeof *o->w);
            o->delay = J->has_syn[NESIM_SYN_DELAY] ? malloc((len ? len : 1) * sizeof *o->delay) : NULL;
            if (!o->pre || !o->post || !o->w || (J->has_syn[NESIM_SYN_DELAY] && !o->delay))
                rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory for %zu synapses", names[i], len);
        } else if (n != len) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %zu elements, but synapses.pre has %zu", names[i], n, len);
        }
        const double lim = i == NESIM_SYN_PRE ? pre->n : i == NESIM_SYN_POST ? post->n : (double)INT32_MAX + 1;
        for (size_t k = 0; !rc && k < n; k++) {
            double x = av(&t, v, k);
            if (i == NESIM_SYN_WEIGHT) {
                if (!isfinite(x))
                    rc = nesim_fail(err, NESIM_EINVAL, "%s: element %zu: %g is not a finite weight", names[i], k, x);
                else
                    o->w[k] = x;
                continue;
            }
            /* whole: the cast is exact once x is known to lie in [0, lim), and
             * costs no call (floor is one without SSE4.1) */
            if (!(x >= (i == NESIM_SYN_DELAY ? 1 : 0) && x < lim && (double)(int64_t)x == x)) {
                if (i == NESIM_SYN_DELAY)
                    rc = nesim_fail(err, NESIM_EINVAL, "%s: element %zu: %.15g is not a delay of 1 .. 2^31 - 1 ticks",
                                    names[i], k, x);
                else
                    rc = nesim_fail(err, NESIM_EINVAL, "%s: element %zu: %.15g is not a neuron index of '%s' (0 .. %u)",
                                    names[i], k, x, i == NESIM_SYN_PRE ? pre->name : post->name,
                                    (i == NESIM_SYN_PRE ? pre->n : post->n) - 1);
            } else if (i == NESIM_SYN_PRE) {
                o->pre[k] = (uint32_t)x;
            } else if (i == NESIM_SYN_POST) {
                o->post[k] = (uint32_t)x;
            } else {
                o->delay[k] = (int64_t)x;
            }
        }
        nesim_tensor_release(&t);
        if (rc)
            return rc;
    }
    o->n = len;
    return NESIM_OK;
}

int nesim_spec_build_graph(const nesim_spec *s, uint64_t seed, nesim_graph **out, nesim_error *err)
{
    return nesim_spec_build_graph_part(s, seed, NULL, out, err);
}

int nesim_spec_build_graph_part(const nesim_spec *s, uint64_t seed, const nesim_graph_part *part, nesim_graph **out,
                                nesim_error *err)
{
    *out = NULL;
    if (!s->n_pops)
        return nesim_fail(err, NESIM_EINVAL, "%s: populations: the spec has none to build", s->file);
    nesim_graph *g = nesim_graph_new(s->tick, seed, err);
    if (!g)
        return nesim_context(err, "%s: tick: ", s->file);
    if (part && nesim_graph_set_part(g, *part, err)) {
        nesim_graph_free(g);
        return err->code;
    }
    int *ids = malloc(s->n_pops * sizeof *ids);
    int rc = ids ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", s->file);
    for (size_t i = 0; !rc && i < s->n_pops; i++) {
        const nesim_spec_pop *P = &s->pops[i];
        nesim_param_array *pa = P->n_arrays ? malloc(P->n_arrays * sizeof *pa) : NULL;
        if (P->n_arrays && !pa) {
            rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", s->file);
            break;
        }
        for (size_t k = 0; k < P->n_arrays; k++)
            pa[k] = (nesim_param_array){P->array_names[k], P->arrays[k].v};
        nesim_pop_spec ps = {.name = P->name, .model = P->model, .threshold = P->threshold, .n = P->n,
                             .params = P->params, .n_params = P->n_params, .arrays = pa,
                             .n_arrays = P->n_arrays, .v_init = P->v_init, .cores = P->cores};
        if ((rc = nesim_graph_add_population(g, &ps, &ids[i], err)))
            nesim_context(err, "%s: populations[%zu]: ", s->file, i);
        free(pa);
    }
    for (size_t i = 0; !rc && i < s->n_projs; i++) {
        const nesim_spec_proj *J = &s->projs[i];
        nesim_proj_spec ps = {.pre = ids[J->pre], .post = ids[J->post], .kind = J->rule, .p = J->p,
                              .weight = J->weight, .delay = J->delay, .no_autapses = !J->autapses,
                              .storage = J->storage};
        syn_lists sl = {0};
        if (J->rule == NESIM_EXPLICIT && !(rc = explicit_lists(s, J, &sl, err)))
            ps.pre_idx = sl.pre, ps.post_idx = sl.post, ps.w = sl.w, ps.delays = sl.delay, ps.n_syn = sl.n;
        if (rc || (rc = nesim_graph_connect(g, &ps, NULL, err)))
            nesim_context(err, "%s: projections[%zu]: ", s->file, i);
        syn_lists_free(&sl);
    }
    free(ids);
    if (rc) {
        nesim_graph_free(g);
        return rc;
    }
    *out = g;
    return NESIM_OK;
}
