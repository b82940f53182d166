/* lm.c — reads a Hugging Face checkpoint folder (config.json, safetensors,
 * optional vocab.json) into views of its weights. See lm.h. */
#include "net/lm.h"
#include "base/mem.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include "base/par.h"
#include <time.h>

#include "base/rng.h"
#include "net/jsonmsg.h"
#include "net/spec.h"
#include "net/synth.h"

static const char *const arch_names[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM",
                                         "GLAswaForCausalLM", NULL};
static const char *const proj_names[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                         "gate_proj", "up_proj", "down_proj", "lm_head"};

const char *nesim_lm_arch_name(nesim_lm_arch a)
{
    return (unsigned)a <= NESIM_LM_GLA_SWA ? arch_names[a] : "?";
}

const char *nesim_lm_proj_name(int kind)
{
    return kind >= 0 && kind <= NESIM_LM_NPROJ ? proj_names[kind] : "?";
}

int nesim_lm_is_checkpoint(const char *dir)
{
    struct stat st;
    char p[4096];
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return 0;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ------------------------------------------------------------- config */

static int load_json(const char *path, size_t max, const char *what, json_t **root, nesim_error *err)
{
    return nesim_json_load_object(path, max, what, max > (1u << 20) ? "64 MiB" : "1 MiB", root, err);
}

/* A positive integer field (or def when absent and def > 0), at most max. */
static int get_size(const nesim_jctx *c, json_t *o, const char *key, size_t def, size_t max, size_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (!def)
            return nesim_json_missing(c, "", key);
        *out = def;
        return NESIM_OK;
    }
    if (!json_is_integer(v))
        return nesim_json_bad(c, key, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < 1 || (unsigned long long)x > max)
        return nesim_json_bad(c, key, "must be in [1, %zu] (got %lld)", max, (long long)x);
    *out = (size_t)x;
    return NESIM_OK;
}

static int get_real(const nesim_jctx *c, json_t *o, const char *key, double def, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (def <= 0)
            return nesim_json_missing(c, "", key);
        *out = def;
        return NESIM_OK;
    }
    if (!json_is_number(v))
        return nesim_json_bad(c, key, "must be a number");
    *out = json_number_value(v);
    if (!(*out > 0) || *out > 1e300)
        return nesim_json_bad(c, key, "must be positive and finite (got %g)", *out);
    return NESIM_OK;
}

static int get_bool(const nesim_jctx *c, json_t *o, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NESIM_OK; /* *out keeps its default */
    if (!json_is_boolean(v))
        return nesim_json_bad(c, key, "must be true or false");
    *out = json_is_true(v);
    return NESIM_OK;
}

static int parse_config(const char *path, json_t *root, nesim_lm_config *cfg, nesim_error *err)
{
    nesim_jctx c = {path, err};
    char list[200];
    memset(cfg, 0, sizeof *cfg);
    json_t *a = json_object_get(root, "architectures");
    const char *an = json_is_array(a) && json_array_size(a) == 1 ? json_string_value(json_array_get(a, 0)) : NULL;
    int ai = an ? nesim_json_find_name(arch_names, an) : -1;
    if (ai < 0) {
        char shown[NESIM_JSON_SHOWN];
        return nesim_json_bad(&c, "architectures", "%s%s%s is not supported (supported: %s)", an ? "'" : "",
                              an ? nesim_json_show(an, shown) : "a list of one class name", an ? "'" : "",
                              nesim_json_list_names(arch_names, list, sizeof list));
    }
    cfg->arch = (nesim_lm_arch)ai;
    const size_t big = (size_t)1 << 30;
    int rc;
    /* flash-linear-attention's configs (SpikingBrain-7B's) say norm_eps */
    const char *eps_key =
        json_object_get(root, "rms_norm_eps") || !json_object_get(root, "norm_eps") ? "rms_norm_eps" : "norm_eps";
    if ((rc = get_size(&c, root, "hidden_size", 0, big, &cfg->hidden)) ||
        (rc = get_size(&c, root, "intermediate_size", 0, big, &cfg->inter)) ||
        (rc = get_size(&c, root, "num_hidden_layers", 0, 100000, &cfg->layers)) ||
        (rc = get_size(&c, root, "num_attention_heads", 0, 65536, &cfg->heads)) ||
        (rc = get_size(&c, root, "num_key_value_heads", cfg->heads, 65536, &cfg->kv_heads)) ||
        (rc = get_size(&c, root, "head_dim", cfg->hidden / cfg->heads ? cfg->hidden / cfg->heads : 1, 65536,
                       &cfg->head_dim)) ||
        (rc = get_size(&c, root, "vocab_size", 0, big, &cfg->vocab)) ||
        (rc = get_size(&c, root, "max_position_embeddings", 0, big, &cfg->max_pos)) ||
        (rc = get_real(&c, root, eps_key, 0, &cfg->eps)) ||
        (rc = get_real(&c, root, "rope_theta", 10000.0, &cfg->rope_theta)) ||
        (rc = get_bool(&c, root, "tie_word_embeddings", &cfg->tied)))
        return rc;
    if (cfg->heads % cfg->kv_heads)
        return nesim_json_bad(&c, "num_key_value_heads", "must divide num_attention_heads (%zu by %zu)", cfg->heads,
                              cfg->kv_heads);
    if (cfg->head_dim % 2)
        return nesim_json_bad(&c, "head_dim", "must be even for RoPE (got %zu)", cfg->head_dim);
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !(json_is_string(act) &&
                 (!strcmp(json_string_value(act), "silu") || !strcmp(json_string_value(act), "swish"))))
        return nesim_json_bad(&c, "hidden_act", "only \"silu\" (or its other name \"swish\": SwiGLU) is supported");
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs))
        return nesim_json_bad(&c, "rope_scaling", "is not supported (only plain RoPE)");
    if (cfg->arch == NESIM_LM_GLA_SWA) {
        /* SpikingBrain-7B: Qwen2's biases, a 4K window on the softmax layers */
        cfg->qkv_bias = 1;
        if ((rc = get_real(&c, root, "gla_gate_norm", 16.0, &cfg->gate_norm)))
            return rc;
        if ((rc = get_size(&c, root, "sliding_window", 4096, big, &cfg->window)))
            return rc;
        json_t *al = json_object_get(root, "attn_layers");
        if (!json_is_array(al))
            return nesim_json_bad(&c, "attn_layers", "must list the sliding-window attention layers (the rest are GLA)");
        if (!(cfg->swa = calloc(cfg->layers ? cfg->layers : 1, 1)))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        size_t i;
        json_t *v;
        json_array_foreach(al, i, v) {
            json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
            if (x < 0 || (size_t)x >= cfg->layers || cfg->swa[x])
                return nesim_json_bad(&c, "attn_layers", "entry %zu: must be a layer index below %zu, each once", i,
                                      cfg->layers);
            cfg->swa[x] = 1;
        }
        return NESIM_OK;
    }
    if (cfg->arch == NESIM_LM_QWEN2)
        cfg->qkv_bias = 1;
    else if ((rc = get_bool(&c, root, "attention_bias", &cfg->qkv_bias)))
        return rc;
    int use_window = cfg->arch == NESIM_LM_MISTRAL;
    if (cfg->arch == NESIM_LM_QWEN2 && (rc = get_bool(&c, root, "use_sliding_window", &use_window)))
        return rc;
    json_t *sw = json_object_get(root, "sliding_window");
    if (use_window && sw && !json_is_null(sw) && (rc = get_size(&c, root, "sliding_window", 0, big, &cfg->window)))
        return rc;
    return NESIM_OK;
}

/* ---------------------------------------------------- synthetic weights */

/* A checkpoint folder may hold synthetic.json instead of safetensors files:
 * {"seed": S, "tensors": [{"match": GLOB, "synthetic": {...}}, ...]}. A
 * tensor is made by the first rule whose glob (fnmatch) matches its name,
 * the first time it is asked for, and kept; its seed is the rule's mixed
 * with S and the name, so every tensor has its own values. An int8 rule's
 * scales answer to "<name>_scale". */
typedef struct syn_rule {
    char *match;
    nesim_spec_tensor st;
    int lazy; /* made only by nesim_lm_tensor_make, kept within the budget */
} syn_rule;

typedef struct syn_made {
    char *name;
    nesim_tensor t, s;
    void *buf, *sbuf;
    int lazy;
    uint64_t used;  /* lazy: when last asked for (a counter) */
    size_t bytes;
} syn_made;

struct nesim_lm_synth {
    char *path;
    uint64_t seed;
    syn_rule *rule;
    size_t n_rule;
    syn_made *made;
    size_t n_made, cap_made;
    double seconds; /* spent making tensors */
    size_t budget, lazy_bytes; /* lazy tensors: bytes allowed, held */
    uint64_t clock;
    nesim_lm_lazy_stats lz;
    int rank, ranks;    /* projection weights: only rank's rows are made (nesim_lm_open_ranks) */
};

static void synth_free(nesim_lm_synth *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_rule; i++)
        free(s->rule[i].match);
    for (size_t i = 0; i < s->n_made; i++) {
        free(s->made[i].name);
        free(s->made[i].buf);
        free(s->made[i].sbuf);
    }
    free(s->rule);
    free(s->made);
    free(s->path);
    free(s);
}

static int load_synth(const char *path, nesim_lm_synth **out, nesim_error *err)
{
    json_t *root;
    *out = NULL;
    int rc = load_json(path, 1u << 20, "synthetic weights", &root, err);
    if (rc)
        return rc;
    nesim_jctx c = {path, err};
    nesim_lm_synth *s = calloc(1, sizeof *s);
    json_t *a = json_object_get(root, "tensors"), *seed = json_object_get(root, "seed");
    if (!s || !(s->path = strdup(path)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    else if (seed && !(json_is_integer(seed) && json_integer_value(seed) >= 0))
        rc = nesim_json_bad(&c, "seed", "must be an integer >= 0");
    else if (json_object_get(root, "lazy_budget_mb") &&
             !(json_is_integer(json_object_get(root, "lazy_budget_mb")) &&
               json_integer_value(json_object_get(root, "lazy_budget_mb")) >= 1 &&
               json_integer_value(json_object_get(root, "lazy_budget_mb")) <= (1 << 24)))
        rc = nesim_json_bad(&c, "lazy_budget_mb", "must be an integer in 1 .. 16777216 (MiB)");
    else if (!json_is_array(a) || !json_array_size(a) || json_array_size(a) > 100000)
        rc = nesim_json_bad(&c, "tensors", "must be a non-empty array of {\"match\": GLOB, \"synthetic\": {...}}");
    else if (!(s->rule = calloc(json_array_size(a), sizeof *s->rule)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (!rc && seed)
        s->seed = (uint64_t)json_integer_value(seed);
    if (!rc) {
        json_t *lb = json_object_get(root, "lazy_budget_mb");
        s->budget = (size_t)(lb ? json_integer_value(lb) : 4096) << 20;
    }
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        if (rc)
            break;
        char where[64];
        snprintf(where, sizeof where, "tensors[%zu]", i);
        const char *mt = json_string_value(json_object_get(o, "match"));
        json_t *sy = json_object_get(o, "synthetic"), *lz = json_object_get(o, "lazy");
        if (!json_is_object(o) || !mt || !mt[0] || !sy || (lz && !json_is_boolean(lz)) ||
            json_object_size(o) != 2u + (lz != NULL)) {
            rc = nesim_json_bad(&c, where, "must be {\"match\": GLOB, \"synthetic\": {...}[, \"lazy\": true]}");
            break;
        }
        s->rule[i].lazy = lz && json_is_true(lz);
        char sp[80];
        snprintf(sp, sizeof sp, "%s.synthetic", where);
        if ((rc = nesim_spec_parse_synthetic(sy, path, sp, &s->rule[i].st, err)))
            break;
        if (!(s->rule[i].match = strdup(mt)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        s->n_rule = i + 1;
    }
    json_decref(root);
    if (rc) {
        synth_free(s);
        return rc;
    }
    *out = s;
    return NESIM_OK;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int synth_make(nesim_lm_synth *s, const syn_rule *r, const char *base, nesim_tensor *t, nesim_error *err);

/* The first rule whose glob matches name, or NULL. */
static const syn_rule *find_rule(const nesim_lm_synth *s, const char *name)
{
    for (size_t i = 0; s && i < s->n_rule; i++)
        if (!fnmatch(s->rule[i].match, name, 0))
            return &s->rule[i];
    return NULL;
}

/* Tensor `name` of a synthetic checkpoint: 1 found (*t a view of the kept
 * tensor), 0 no rule makes it, < 0 failed (err filled). */
static int synth_get(nesim_lm_synth *s, const char *name, nesim_tensor *t, nesim_error *err)
{
    if (!s)
        return 0;
    size_t len = strlen(name);
    int want_scale = len > 6 && !strcmp(name + len - 6, "_scale");
    char base[512];
    snprintf(base, sizeof base, "%.*s", want_scale ? (int)(len - 6) : (int)len, name);
    for (size_t i = 0; i < s->n_made; i++)
        if (!strcmp(s->made[i].name, base)) {
            if (want_scale && !s->made[i].s.data)
                return 0;
            *t = want_scale ? s->made[i].s : s->made[i].t;
            return 1;
        }
    const syn_rule *r = find_rule(s, base);
    if (!r || (want_scale && r->st.quantize != NESIM_QUANT_INT8))
        return 0;
    if (r->lazy) { /* shapes only: nesim_lm_tensor_make makes it when it is used */
        nesim_tensor dt, ds;
        char what[600];
        snprintf(what, sizeof what, "%s: tensor '%s'", s->path, base);
        if (nesim_synth_describe(&r->st, what, &dt, &ds, err))
            return -1;
        *t = want_scale ? ds : dt;
        return 1;
    }
    nesim_tensor got;
    if (synth_make(s, r, base, &got, err) < 0)
        return -1;
    syn_made *mk = &s->made[s->n_made - 1];
    *t = want_scale ? mk->s : mk->t;
    return 1;
}

/* Makes tensor `base` by rule r into a new entry of s->made (its last). */
static int synth_make(nesim_lm_synth *s, const syn_rule *r, const char *base, nesim_tensor *t, nesim_error *err)
{
    syn_made *nm = nesim_grown(s->made, s->n_made + 1, &s->cap_made, sizeof *nm, 64);
    if (!nm)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory"), -1;
    s->made = nm;
    syn_made *mk = &s->made[s->n_made];
    memset(mk, 0, sizeof *mk);
    nesim_spec_tensor st = r->st;
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name: each tensor its own stream */
    for (const char *p = base; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    st.seed = nesim_mix64(r->st.seed ^ nesim_mix64(s->seed ^ h));
    char what[600];
    snprintf(what, sizeof what, "%s: tensor '%s'", s->path, base);
    double t0 = mono_s();
    int rc;
    size_t len = strlen(base);
    if (s->ranks > 1 && st.ndim == 2 && /* a projection's weight: each rank multiplies by its rows only */
        ((len > 12 && !strcmp(base + len - 12, "_proj.weight")) || !strcmp(base, "lm_head.weight"))) {
        size_t lo, hi;
        nesim_par_split((size_t)st.shape[0], NESIM_RANK_ROWS, s->rank, s->ranks, &lo, &hi);
        rc = nesim_synth_generate_rows(&st, what, lo, hi, &mk->t, &mk->buf, &mk->s, &mk->sbuf, err);
    } else {
        rc = nesim_synth_generate(&st, what, &mk->t, &mk->buf, &mk->s, &mk->sbuf, err);
    }
    s->seconds += mono_s() - t0;
    if (rc)
        return -1;
    if (!(mk->name = strdup(base))) {
        free(mk->buf), free(mk->sbuf);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory"), -1;
    }
    s->n_made++;
    *t = mk->t;
    return 1;
}

double nesim_lm_synth_seconds(const nesim_lm_model *m) { return m->syn ? m->syn->seconds : 0; }

void nesim_lm_lazy_stats_get(const nesim_lm_model *m, nesim_lm_lazy_stats *st)
{
    if (m->syn)
        *st = m->syn->lz;
    else
        memset(st, 0, sizeof *st);
}

int nesim_lm_tensor_make(const nesim_lm_model *m, const char *name, nesim_tensor *w, nesim_tensor *scale,
                         nesim_error *err)
{
    nesim_lm_synth *s = m->syn;
    const syn_rule *r = find_rule(s, name);
    if (!r || !r->lazy)
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%s' is not made lazily", m->dir, name);
    s->clock++;
    for (size_t i = 0; i < s->n_made; i++)
        if (!strcmp(s->made[i].name, name)) {
            s->made[i].used = s->clock;
            s->lz.hits++;
            *w = s->made[i].t, *scale = s->made[i].s;
            return NESIM_OK;
        }
    nesim_tensor dt, ds;
    char what[600];
    snprintf(what, sizeof what, "%s: tensor '%s'", s->path, name);
    if (nesim_synth_describe(&r->st, what, &dt, &ds, err))
        return err->code;
    size_t need = dt.nbytes + ds.nbytes;
    /* make room: the lazy tensors asked for longest ago go first */
    while (s->lazy_bytes + need > s->budget) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < s->n_made; i++)
            if (s->made[i].lazy && (victim == SIZE_MAX || s->made[i].used < s->made[victim].used))
                victim = i;
        if (victim == SIZE_MAX)
            break; /* one tensor larger than the budget: held alone */
        syn_made *v = &s->made[victim];
        s->lazy_bytes -= v->bytes;
        free(v->name), free(v->buf), free(v->sbuf);
        s->made[victim] = s->made[--s->n_made];
        s->lz.evicted++;
    }
    nesim_tensor got;
    int rc = synth_make(s, r, name, &got, err);
    if (rc < 0)
        return err->code;
    syn_made *mk = &s->made[s->n_made - 1];
    mk->lazy = 1, mk->used = s->clock, mk->bytes = need;
    s->lazy_bytes += need;
    s->lz.made++;
    if (s->lazy_bytes > s->lz.peak_bytes)
        s->lz.peak_bytes = s->lazy_bytes;
    *w = mk->t, *scale = mk->s;
    return NESIM_OK;
}

/* ------------------------------------------------------------ weights */

typedef struct lookup {
    const char *dir;
    json_t *weight_map; /* sharded: name -> file; NULL for one file */
    const char *index_path;
    nesim_safetensors **st;
    char **files;
    size_t n;
    int allow_i8; /* the tensor being looked up may be int8 (a projection) */
    nesim_lm_synth *syn; /* a synthetic checkpoint's rules, or NULL */
} lookup;

static int shard_for(lookup *L, const char *file, nesim_safetensors **out, const char *tensor, nesim_error *err)
{
    for (size_t i = 0; i < L->n; i++)
        if (!strcmp(L->files[i], file)) {
            *out = L->st[i];
            return NESIM_OK;
        }
    char path[4096];
    char shown[NESIM_JSON_SHOWN];
    if (strchr(file, '/') || !strcmp(file, "..") || !file[0])
        return nesim_fail(err, NESIM_EINVAL, "%s: weight_map.%s: shard name '%s' must be a file in the folder",
                          L->index_path, tensor, nesim_json_show(file, shown));
    snprintf(path, sizeof path, "%s/%s", L->dir, file);
    struct stat sb;
    if (stat(path, &sb))
        return nesim_fail(err, NESIM_EINVAL, "%s: weight_map.%s: shard '%s' is missing", L->index_path, tensor,
                          nesim_json_show(file, shown));
    nesim_safetensors **st2 = realloc(L->st, (L->n + 1) * sizeof *L->st);
    if (!st2)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    L->st = st2;
    char **f2 = realloc(L->files, (L->n + 1) * sizeof *L->files);
    if (!f2)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    L->files = f2;
    if (!(L->files[L->n] = strdup(file)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = nesim_safetensors_open(path, &L->st[L->n], err);
    if (rc) {
        free(L->files[L->n]);
        return rc;
    }
    *out = L->st[L->n++];
    return NESIM_OK;
}

/* The tensor `name`, which must be a float tensor of shape [d0] (d1 == 0)
 * or [d0, d1]. */
static int get_t(lookup *L, const char *name, size_t d0, size_t d1, nesim_tensor *t, nesim_error *err)
{
    nesim_safetensors *st;
    int rc;
    if (L->syn) {
        if ((rc = synth_get(L->syn, name, t, err)) < 0)
            return err->code;
        if (!rc)
            return nesim_fail(err, NESIM_EINVAL, "%s: no rule makes tensor '%s' (expected shape [%zu%s%.0zu])",
                              L->syn->path, name, d0, d1 ? ", " : "", d1);
    } else if (L->weight_map) {
        json_t *f = json_object_get(L->weight_map, name);
        if (!f)
            return nesim_fail(err, NESIM_EINVAL, "%s: weight_map: tensor '%s' is missing (expected shape [%zu%s%.0zu])",
                              L->index_path, name, d0, d1 ? ", " : "", d1);
        if (!json_is_string(f))
            return nesim_fail(err, NESIM_EINVAL, "%s: weight_map.%s: must be a file name", L->index_path, name);
        if ((rc = shard_for(L, json_string_value(f), &st, name, err)))
            return rc;
    } else {
        st = L->st[0];
    }
    if (!L->syn && (rc = nesim_safetensors_get(st, name, t, err))) {
        nesim_suffix(err, " (expected shape [%zu%s%.0zu])", d0, d1 ? ", " : "", d1);
        return rc;
    }
    int want = d1 ? 2 : 1;
    int ok = t->ndim == want && (size_t)t->shape[0] == d0 && (!d1 || (size_t)t->shape[1] == d1);
    if (!ok) {
        char got[160] = "";
        size_t m = 0;
        for (int i = 0; i < t->ndim && m < sizeof got - 24; i++)
            m += (size_t)snprintf(got + m, sizeof got - m, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        return nesim_fail(err, NESIM_EINVAL, "%s/%s: tensor '%s' has shape [%s], expected [%zu%s%.0zu]", L->dir,
                          L->syn             ? "synthetic.json"
                          : L->weight_map    ? json_string_value(json_object_get(L->weight_map, name))
                                             : "model.safetensors",
                          name, got, d0, d1 ? ", " : "", d1);
    }
    if (t->dtype != NESIM_F32 && t->dtype != NESIM_F16 && t->dtype != NESIM_BF16 && t->dtype != NESIM_F64 &&
        !(t->dtype == NESIM_I8 && L->allow_i8))
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%s' is %s; expected F32, F16, BF16 or F64%s", L->dir, name,
                          nesim_dtype_name(t->dtype), L->allow_i8 ? " (or I8 with a weight_scale)" : "");
    return NESIM_OK;
}

int nesim_lm_scale_view(const nesim_tensor *t, const char *what, size_t out, size_t in, nesim_tensor *sc,
                        size_t *group, nesim_error *err)
{
    size_t G = t->ndim == 1 ? 1 : t->ndim == 2 ? (size_t)t->shape[1] : 0;
    if (t->ndim < 1 || (size_t)t->shape[0] != out || !G || in % G ||
        (t->dtype != NESIM_F32 && t->dtype != NESIM_F16 && t->dtype != NESIM_BF16 && t->dtype != NESIM_F64))
        return nesim_fail(err, NESIM_EINVAL, "%s must be float of shape [%zu], [%zu, 1] or [%zu, G] with G dividing %zu",
                          what, out, out, out, in);
    *group = in / G;
    memset(sc, 0, sizeof *sc);
    sc->dtype = NESIM_F32;
    sc->ndim = 2;
    sc->shape[0] = (int64_t)out, sc->shape[1] = (int64_t)G;
    sc->count = out * G;
    sc->nbytes = sc->count * sizeof(float);
    if (t->dtype == NESIM_F32) {
        sc->data = t->data; /* a view into the mapping */
        return NESIM_OK;
    }
    float *f = malloc(sc->nbytes);
    if (!f)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t i = 0; i < sc->count; i++) {
        double v = nesim_tensor_get(t, i);
        f[i] = (float)v;
        if ((double)f[i] != v || !isfinite(v)) {
            free(f);
            return nesim_fail(err, NESIM_EINVAL, "%s, element %zu: %g is not a finite float32 scale", what, i, v);
        }
    }
    sc->data = sc->heap = f;
    return NESIM_OK;
}

int nesim_lm_tensor(const nesim_lm_model *m, const char *name, nesim_tensor *t, nesim_error *err)
{
    int got = synth_get(m->syn, name, t, err);
    if (got)
        return got > 0 ? NESIM_OK : err->code;
    for (size_t i = 0; i < m->nshards; i++) {
        nesim_error e;
        if (!nesim_safetensors_get(m->shards[i], name, t, &e))
            return NESIM_OK;
    }
    return nesim_fail(err, NESIM_EINVAL, "%s: no tensor '%s' in the checkpoint's files", m->dir, name);
}

/* The scales of int8 projection weight `name` ([out, in]): "<name>_scale". */
static int get_scale(lookup *L, const char *name, size_t out, size_t in, nesim_tensor *sc, size_t *group,
                     nesim_error *err)
{
    char sn[300], what[400];
    snprintf(sn, sizeof sn, "%s_scale", name);
    nesim_tensor t;
    int rc;
    if (L->syn) {
        if ((rc = synth_get(L->syn, sn, &t, err)) < 0)
            return err->code;
        if (!rc)
            return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%s' is I8 but no rule makes '%s'", L->syn->path, name, sn);
        snprintf(what, sizeof what, "%s: tensor '%s'", L->syn->path, sn);
        return nesim_lm_scale_view(&t, what, out, in, sc, group, err);
    }
    nesim_safetensors *st = L->st ? L->st[0] : NULL;
    if (L->weight_map) {
        json_t *f = json_object_get(L->weight_map, sn);
        if (!json_is_string(f))
            return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%s' is I8 but weight_map names no '%s' (its scales: "
                              "[%zu] or [%zu, groups])", L->index_path, name, sn, out, out);
        if ((rc = shard_for(L, json_string_value(f), &st, sn, err)))
            return rc;
    }
    if (nesim_safetensors_get(st, sn, &t, err))
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%s' is I8 but '%s' is missing (its scales: [%zu] or [%zu, "
                          "groups])", L->dir, name, sn, out, out);
    snprintf(what, sizeof what, "%s: tensor '%s'", L->dir, sn);
    return nesim_lm_scale_view(&t, what, out, in, sc, group, err);
}

static int load_weights(nesim_lm_model *m, lookup *L, nesim_error *err)
{
    const nesim_lm_config *c = &m->cfg;
    const size_t H = c->hidden, Q = c->heads * c->head_dim, KV = c->kv_heads * c->head_dim, I = c->inter;
    const size_t shape[NESIM_LM_NPROJ][2] = {{Q, H}, {KV, H}, {KV, H}, {H, Q}, {I, H}, {I, H}, {H, I}};
    char name[256];
    int rc;
    if ((rc = get_t(L, "model.embed_tokens.weight", c->vocab, H, &m->embed, err)) ||
        (rc = get_t(L, "model.norm.weight", H, 0, &m->final_norm, err)))
        return rc;
    if (c->tied)
        m->lm_head = m->embed;
    else if ((rc = get_t(L, "lm_head.weight", c->vocab, H, &m->lm_head, err)))
        return rc;
    for (size_t l = 0; l < c->layers; l++) {
        nesim_lm_layer *ly = &m->layer[l];
        snprintf(name, sizeof name, "model.layers.%zu.input_layernorm.weight", l);
        if ((rc = get_t(L, name, H, 0, &ly->in_norm, err)))
            return rc;
        snprintf(name, sizeof name, "model.layers.%zu.post_attention_layernorm.weight", l);
        if ((rc = get_t(L, name, H, 0, &ly->post_norm, err)))
            return rc;
        for (int k = 0; k < NESIM_LM_NPROJ; k++) {
            const char *grp = k <= NESIM_LM_O ? "self_attn" : "mlp";
            snprintf(name, sizeof name, "model.layers.%zu.%s.%s.weight", l, grp, proj_names[k]);
            L->allow_i8 = 1; /* projections may be int8 with scales */
            rc = get_t(L, name, shape[k][0], shape[k][1], &ly->w[k], err);
            L->allow_i8 = 0;
            if (rc)
                return rc;
            if (ly->w[k].dtype == NESIM_I8) {
                if ((rc = get_scale(L, name, shape[k][0], shape[k][1], &ly->scale[k], &ly->group[k], err)))
                    return rc;
                ly->has_scale[k] = 1;
            }
            if (c->qkv_bias && k <= NESIM_LM_V) {
                snprintf(name, sizeof name, "model.layers.%zu.%s.%s.bias", l, grp, proj_names[k]);
                if ((rc = get_t(L, name, shape[k][0], 0, &ly->b[k], err)))
                    return rc;
                ly->has_b[k] = 1;
            }
        }
    }
    return NESIM_OK;
}

/* -------------------------------------------------------------- vocab */

static int load_vocab(nesim_lm_model *m, const char *path, nesim_error *err)
{
    json_t *root;
    int rc = load_json(path, (size_t)64 << 20, "vocabulary", &root, err);
    if (rc)
        return rc;
    if (!(m->token = calloc(m->cfg.vocab, sizeof *m->token))) {
        json_decref(root);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    const char *key;
    json_t *v;
    char shown[NESIM_JSON_SHOWN];
    json_object_foreach(root, key, v)
    {
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
        if (id < 0 || (size_t)id >= m->cfg.vocab) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: '%s': token id must be an integer in [0, %zu)", path,
                            nesim_json_show(key, shown), m->cfg.vocab);
            break;
        }
        if (m->token[id]) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: '%s': id %lld is taken twice", path,
                            nesim_json_show(key, shown), (long long)id);
            break;
        }
        if (!(m->token[id] = strdup(key))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        size_t len = strlen(key);
        if (len > m->max_token_len)
            m->max_token_len = len;
    }
    json_decref(root);
    return rc;
}

/* --------------------------------------------------------------- open */

int nesim_lm_open(const char *dir, nesim_lm_model **out, nesim_error *err)
{
    return nesim_lm_open_ranks(dir, 0, 1, out, err);
}

int nesim_lm_open_ranks(const char *dir, int rank, int ranks, nesim_lm_model **out, nesim_error *err)
{
    *out = NULL;
    char path[4096], ipath[4096];
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return nesim_fail(err, NESIM_EINVAL, "%s: not a checkpoint folder", dir);
    nesim_lm_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    lookup L = {dir, NULL, ipath, NULL, NULL, 0, 0, NULL};
    char spath[4096];
    json_t *cfg = NULL, *index = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = load_json(path, 1u << 20, "model config", &cfg, err);
    if (!rc)
        rc = parse_config(path, cfg, &m->cfg, err);
    if (!rc && !(m->layer = calloc(m->cfg.layers, sizeof *m->layer)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (!rc) {
        snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", dir);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        snprintf(spath, sizeof spath, "%s/synthetic.json", dir);
        if (stat(ipath, &sb) && stat(path, &sb) && stat(spath, &sb) == 0) {
            rc = load_synth(spath, &m->syn, err);
            if (!rc)
                m->syn->rank = rank, m->syn->ranks = ranks;
            L.syn = m->syn;
        } else if (stat(ipath, &sb) == 0) {
            rc = load_json(ipath, (size_t)64 << 20, "safetensors index", &index, err);
            if (!rc && !json_is_object(L.weight_map = json_object_get(index, "weight_map")))
                rc = nesim_fail(err, NESIM_EINVAL, "%s: weight_map: required object missing", ipath);
        } else if (stat(path, &sb)) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: no model.safetensors, model.safetensors.index.json or synthetic.json",
                            dir);
        } else {
            nesim_safetensors *one;
            L.index_path = path;
            rc = shard_for(&L, "model.safetensors", &one, "model.safetensors", err);
        }
    }
    if (!rc && m->cfg.arch != NESIM_LM_GLA_SWA)
        rc = load_weights(m, &L, err);
    /* a spec's graph looks tensors up by name (the hybrid's always; any
     * graph's extra tensors, as sinks): every shard of an index is opened */
    if (!rc && L.weight_map) {
        const char *key;
        json_t *f;
        json_object_foreach(L.weight_map, key, f) {
            nesim_safetensors *one;
            if (!json_is_string(f)) {
                rc = nesim_fail(err, NESIM_EINVAL, "%s: weight_map.%s: must be a file name", ipath, key);
                break;
            }
            if ((rc = shard_for(&L, json_string_value(f), &one, key, err)))
                break;
        }
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/vocab.json", dir);
        if (stat(path, &sb) == 0)
            rc = load_vocab(m, path, err);
    }
    json_decref(cfg);
    json_decref(index);
    m->shard_files = L.files; /* file names in the folder, for the trace's weight hashes */
    m->shards = L.st;
    m->nshards = L.n;
    if (rc) {
        nesim_lm_close(m);
        return rc;
    }
    *out = m;
    return NESIM_OK;
}

void nesim_lm_close(nesim_lm_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nshards; i++) {
        nesim_safetensors_close(m->shards[i]);
        free(m->shard_files[i]);
    }
    free(m->shards);
    free(m->shard_files);
    if (m->token)
        for (size_t i = 0; i < m->cfg.vocab; i++)
            free(m->token[i]);
    free(m->token);
    for (size_t l = 0; m->layer && l < m->cfg.layers; l++)
        for (int k = 0; k < NESIM_LM_NPROJ; k++)
            nesim_tensor_release(&m->layer[l].scale[k]); /* a converted copy; views release nothing */
    free(m->layer);
    free(m->cfg.swa);
    synth_free(m->syn);
    free(m->dir);
    free(m);
}

/* -------------------------------------------------------------- text */

int nesim_lm_encode(const nesim_lm_model *m, const char *text, int32_t **ids, size_t *n, nesim_error *err)
{
    *ids = NULL;
    *n = 0;
    if (!m->token)
        return nesim_fail(err, NESIM_EINVAL, "%s: no vocab.json: give token ids (--tokens ids.npy)", m->dir);
    size_t len = strlen(text);
    int32_t *out = malloc((len ? len : 1) * sizeof *out);
    if (!out)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t best = 0;
        int32_t bid = -1;
        for (size_t v = 0; v < m->cfg.vocab; v++) {
            const char *t = m->token[v];
            size_t tl = t ? strlen(t) : 0;
            if (tl > best && tl <= len - i && !memcmp(text + i, t, tl))
                best = tl, bid = (int32_t)v;
        }
        if (bid < 0) {
            free(out);
            return nesim_fail(err, NESIM_EINVAL, "text: column %zu: byte 0x%02x is in no token of %s/vocab.json",
                              i + 1, (unsigned char)text[i], m->dir);
        }
        out[k++] = bid;
        i += best;
    }
    *ids = out;
    *n = k;
    return NESIM_OK;
}

const char *nesim_lm_token_text(const nesim_lm_model *m, int32_t id)
{
    return m->token && id >= 0 && (size_t)id < m->cfg.vocab ? m->token[id] : NULL;
}
