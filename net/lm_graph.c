/* lm_graph.c — language models as graphs of named nodes (see lm_graph.h). */
#include "net/lm_graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jsonmsg.h"

static const char *const type_names[] = {"embedding", "rmsnorm", "linear", "attention", "add",
                                         "mul",       "silu",    "relu",   "gla",  "moe", "sigmoid", NULL};

const char *nesim_lm_node_type_name(nesim_lm_node_type t)
{
    return (unsigned)t < NESIM_LMN_TYPES ? type_names[t] : "?";
}

void nesim_lm_graph_free(nesim_lm_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->node[i].name);
        free(g->node[i].wname);
        free(g->node[i].bname);
        free(g->node[i].sink_kname);
        free(g->node[i].sink_vname);
        free(g->node[i].experts);
        nesim_tensor_release(&g->node[i].scale); /* a converted copy; a view releases nothing */
        if (g->node[i].w_owned)
            nesim_tensor_release(&g->node[i].w);
    }
    free(g->node);
    free(g->proj_node);
    free(g);
}

int nesim_lm_graph_find(const nesim_lm_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->node[i].name, name))
            return (int)i;
    return -1;
}

/* ---- building ---------------------------------------------------------- */

typedef struct builder {
    nesim_lm_graph *g;
    size_t cap;
    nesim_error *err;
} builder;

static int builder_new(builder *b, const nesim_lm_model *m, size_t cap, nesim_error *err)
{
    b->err = err;
    b->cap = cap ? cap : 1;
    b->g = calloc(1, sizeof *b->g);
    if (b->g)
        b->g->node = calloc(b->cap, sizeof *b->g->node);
    if (!b->g || !b->g->node) {
        free(b->g);
        b->g = NULL;
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    b->g->m = m;
    b->g->vocab = m->cfg.vocab;
    b->g->max_pos = m->cfg.max_pos;
    return NESIM_OK;
}

/* Appends a node named name (copied); *out points at it. */
static int add_node(builder *b, nesim_lm_node_type t, const char *name, nesim_lm_node **out)
{
    if (b->g->n == b->cap) {
        nesim_lm_node *nn = realloc(b->g->node, 2 * b->cap * sizeof *nn);
        if (!nn)
            return nesim_fail(b->err, NESIM_ENOMEM, "out of memory");
        memset(nn + b->cap, 0, b->cap * sizeof *nn);
        b->g->node = nn;
        b->cap *= 2;
    }
    nesim_lm_node *n = &b->g->node[b->g->n++];
    n->type = t;
    n->in[0] = n->in[1] = n->in[2] = n->in[3] = -1;
    if (!(n->name = strdup(name)))
        return nesim_fail(b->err, NESIM_ENOMEM, "out of memory");
    *out = n;
    return NESIM_OK;
}

static int set_str(char **dst, const char *s, nesim_error *err)
{
    if (!(*dst = strdup(s)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    return NESIM_OK;
}

/* The projection list, once all nodes are in. */
static int finish(builder *b)
{
    nesim_lm_graph *g = b->g;
    g->n_proj = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->node[i].type == NESIM_LMN_LINEAR)
            g->node[i].proj = g->n_proj++;
    g->proj_node = malloc((g->n_proj ? g->n_proj : 1) * sizeof *g->proj_node);
    if (!g->proj_node)
        return nesim_fail(b->err, NESIM_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n; i++)
        if (g->node[i].type == NESIM_LMN_LINEAR)
            g->proj_node[g->node[i].proj] = i;
    return NESIM_OK;
}

/* ---- the architecture's graph ------------------------------------------ */

static const char *const tensor_kind[NESIM_LM_NPROJ] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                        "mlp",       "mlp",       "mlp"};

/* ---- SpikingBrain-7B's hybrid (GLAswaForCausalLM) ---------------------- */

static json_t *j_linear(const char *name, const char *input, const char *tensor, int bias, size_t out, size_t in,
                        int spiked, nesim_coding coding, double k)
{
    char w[200], b[200];
    snprintf(w, sizeof w, "%s.weight", tensor);
    snprintf(b, sizeof b, "%s.bias", tensor);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:[I,I], s:s}", "name", name, "type", "linear", "input", input,
                          "weight", w, "shape", (json_int_t)out, (json_int_t)in, "coding",
                          spiked ? nesim_coding_name(coding) : "none");
    if (o && bias)
        json_object_set_new(o, "bias", json_string(b));
    if (o && spiked)
        json_object_set_new(o, "k", json_real(k));
    return o;
}

/* The hybrid's nodes as a spec would write them, read back by
 * nesim_lm_graph_from_json (so they are checked like any spec). The tensor
 * names are the released model's (BICLab/SpikingBrain-7B, W8ASpike/
 * modeling_gla_swa.py and gla_attention.py: flash-linear-attention's
 * layout): model.embeddings; per layer l (prefix model.layers.l) attn_norm;
 * then either sliding-window attention (attn.{q,k,v,o}_proj, q/k/v biased; K
 * and V int8 and the query spike-coded with k = 3, as W8ASpike) or gated
 * linear attention (attn.{q,k,v,gk,o}_proj, q/k/v/gk biased; q and k through
 * ReLU; alpha = sigmoid(gk)^(1 / gla_gate_norm); each head's read-out
 * RMS-normalised by attn.g_norm.weight [head_dim]); the residual add;
 * mlp_norm; the SwiGLU MLP (mlp.{gate,up,down}_proj); the add; model.norm and
 * lm_head. Spiked as released: every attention projection, gate and up;
 * down_proj and lm_head graded. (The graph's node names keep nesim's:
 * input_layernorm, post_attention_layernorm.) */
static json_t *gla_swa_nodes(const nesim_lm_config *c, nesim_lm_spiked_set set, nesim_coding coding, double k)
{
    const int all = set == NESIM_LM_SET_ALL, none = set == NESIM_LM_SET_NONE;
    const int sp = !none; /* the released set's spiked projections */
    const size_t H = c->hidden, Q = c->heads * c->head_dim, KV = c->kv_heads * c->head_dim, I = c->inter;
    json_t *a = json_array();
    char name[160], in[160], t[200], h[160] = "embed", q[160], kk[160], v[160], g[160];
    json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", "embed", "type", "embedding", "weight",
                                       "model.embeddings.weight"));
    for (size_t l = 0; a && l < c->layers; l++) {
        snprintf(in, sizeof in, "layers.%zu.input_layernorm", l);
        snprintf(t, sizeof t, "model.layers.%zu.attn_norm.weight", l);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:f}", "name", in, "type", "rmsnorm", "input", h,
                                           "weight", t, "eps", c->eps));
        const char *proj[] = {"q_proj", "k_proj", "v_proj", "gk_proj"};
        const size_t outs[] = {Q, KV, KV, KV};
        int gla = !c->swa[l];
        for (int p = 0; p < 3 + gla; p++) {
            snprintf(name, sizeof name, "layers.%zu.%s", l, proj[p]);
            snprintf(t, sizeof t, "model.layers.%zu.attn.%s", l, proj[p]);
            json_array_append_new(a, j_linear(name, in, t, 1, outs[p], H, sp, coding, k));
        }
        snprintf(q, sizeof q, "layers.%zu.q_proj", l);
        snprintf(kk, sizeof kk, "layers.%zu.k_proj", l);
        snprintf(v, sizeof v, "layers.%zu.v_proj", l);
        snprintf(g, sizeof g, "layers.%zu.gk_proj", l);
        snprintf(name, sizeof name, "layers.%zu.attn", l);
        if (gla) {
            char qr[160], kr[160];
            snprintf(qr, sizeof qr, "layers.%zu.q_relu", l);
            snprintf(kr, sizeof kr, "layers.%zu.k_relu", l);
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", qr, "type", "relu", "input", q));
            json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", kr, "type", "relu", "input", kk));
            snprintf(t, sizeof t, "model.layers.%zu.attn.g_norm.weight", l);
            json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:s, s:f}", "name",
                                               name, "type", "gla", "q", qr, "k", kr, "v", v, "gk", g, "heads",
                                               (json_int_t)c->heads, "kv_heads", (json_int_t)c->kv_heads, "head_dim",
                                               (json_int_t)c->head_dim, "gate_norm", c->gate_norm, "norm", t, "eps",
                                               c->eps));
        } else {
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:I}", "name", name, "type",
                                  "attention", "q", q, "k", kk, "v", v, "heads", (json_int_t)c->heads, "kv_heads",
                                  (json_int_t)c->kv_heads, "head_dim", (json_int_t)c->head_dim, "rope_theta",
                                  c->rope_theta, "window", (json_int_t)c->window);
            if (o && !none) { /* W8ASpike: int8 K/V, the query spiked with k = 3 */
                json_object_set_new(o, "kv_quant", json_string("int8"));
                json_object_set_new(o, "q_k", json_real(3));
            }
            json_array_append_new(a, o);
        }
        char o_[160];
        snprintf(o_, sizeof o_, "layers.%zu.o_proj", l);
        snprintf(t, sizeof t, "model.layers.%zu.attn.o_proj", l);
        json_array_append_new(a, j_linear(o_, name, t, 0, H, Q, sp, coding, k));
        snprintf(name, sizeof name, "layers.%zu.attn_add", l);
        json_array_append_new(a, json_pack("{s:s, s:s, s:[s,s]}", "name", name, "type", "add", "inputs", h, o_));
        snprintf(h, sizeof h, "%s", name);
        snprintf(in, sizeof in, "layers.%zu.post_attention_layernorm", l);
        snprintf(t, sizeof t, "model.layers.%zu.mlp_norm.weight", l);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:f}", "name", in, "type", "rmsnorm", "input", h,
                                           "weight", t, "eps", c->eps));
        char gp[160], up[160], act[160], gated[160], dn[160];
        snprintf(gp, sizeof gp, "layers.%zu.gate_proj", l);
        snprintf(up, sizeof up, "layers.%zu.up_proj", l);
        snprintf(t, sizeof t, "model.layers.%zu.mlp.gate_proj", l);
        json_array_append_new(a, j_linear(gp, in, t, 0, I, H, sp, coding, k));
        snprintf(t, sizeof t, "model.layers.%zu.mlp.up_proj", l);
        json_array_append_new(a, j_linear(up, in, t, 0, I, H, sp, coding, k));
        snprintf(act, sizeof act, "layers.%zu.act", l);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", act, "type", "silu", "input", gp));
        snprintf(gated, sizeof gated, "layers.%zu.gated", l);
        json_array_append_new(a, json_pack("{s:s, s:s, s:[s,s]}", "name", gated, "type", "mul", "inputs", act, up));
        snprintf(dn, sizeof dn, "layers.%zu.down_proj", l);
        snprintf(t, sizeof t, "model.layers.%zu.mlp.down_proj", l);
        json_array_append_new(a, j_linear(dn, gated, t, 0, H, I, all, coding, k));
        snprintf(name, sizeof name, "layers.%zu.mlp_add", l);
        json_array_append_new(a, json_pack("{s:s, s:s, s:[s,s]}", "name", name, "type", "add", "inputs", h, dn));
        snprintf(h, sizeof h, "%s", name);
    }
    json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:f}", "name", "norm", "type", "rmsnorm", "input", h,
                                       "weight", "model.norm.weight", "eps", c->eps));
    json_array_append_new(a, j_linear("lm_head", "norm", c->tied ? "model.embeddings" : "lm_head", 0, c->vocab, H,
                                      all, coding, k));
    /* a node json_pack could not make (no memory) leaves the array short */
    size_t want = 3;
    for (size_t l = 0; l < c->layers; l++)
        want += c->swa[l] ? 14 : 17;
    if (a && json_array_size(a) != want) {
        json_decref(a);
        return NULL;
    }
    return a ? json_pack("{s:o, s:s}", "nodes", a, "output", "lm_head") : NULL;
}

int nesim_lm_graph_from_model(const nesim_lm_model *m, nesim_lm_spiked_set set, nesim_coding coding, double k,
                              nesim_lm_graph **out, nesim_error *err)
{
    *out = NULL;
    const nesim_lm_config *c = &m->cfg;
    if (c->arch == NESIM_LM_GLA_SWA) {
        json_t *spec = gla_swa_nodes(c, set, coding, k);
        if (!spec)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        char label[4200];
        snprintf(label, sizeof label, "%s (GLAswaForCausalLM)", m->dir);
        int rc = nesim_lm_graph_from_json(m, spec, label, out, err);
        json_decref(spec);
        return rc;
    }
    builder b;
    int rc = builder_new(&b, m, 16 * c->layers + 4, err);
    if (rc)
        return rc;
    nesim_lm_node *n;
    char name[160], tn[200];
    const unsigned released = (1u << NESIM_LM_Q) | (1u << NESIM_LM_K) | (1u << NESIM_LM_V) | (1u << NESIM_LM_O) |
                              (1u << NESIM_LM_GATE) | (1u << NESIM_LM_UP);
    const unsigned spiked = set == NESIM_LM_SET_ALL ? ~0u : set == NESIM_LM_SET_NONE ? 0u : released;
    if (!(rc = add_node(&b, NESIM_LMN_EMBEDDING, "embed", &n)) &&
        !(rc = set_str(&n->wname, "model.embed_tokens.weight", err))) {
        n->w = m->embed;
        n->dim = c->hidden;
    }
    int h = 0; /* the residual stream's node */
    for (size_t l = 0; l < c->layers && !rc; l++) {
        const nesim_lm_layer *ly = &m->layer[l];
        int base = (int)b.g->n, proj[NESIM_LM_NPROJ];
        /* input norm */
        snprintf(name, sizeof name, "layers.%zu.input_layernorm", l);
        snprintf(tn, sizeof tn, "model.%s.weight", name);
        if ((rc = add_node(&b, NESIM_LMN_RMSNORM, name, &n)) || (rc = set_str(&n->wname, tn, err)))
            break;
        n->in[0] = h, n->w = ly->in_norm, n->eps = c->eps, n->dim = c->hidden;
        int norm1 = base;
        /* q, k, v */
        for (int kd = NESIM_LM_Q; kd <= NESIM_LM_V && !rc; kd++) {
            snprintf(name, sizeof name, "layers.%zu.%s", l, nesim_lm_proj_name(kd));
            snprintf(tn, sizeof tn, "model.layers.%zu.%s.%s.weight", l, tensor_kind[kd], nesim_lm_proj_name(kd));
            proj[kd] = (int)b.g->n;
            if ((rc = add_node(&b, NESIM_LMN_LINEAR, name, &n)) || (rc = set_str(&n->wname, tn, err)))
                break;
            n->in[0] = norm1;
        }
        if (rc)
            break;
        snprintf(name, sizeof name, "layers.%zu.attn", l);
        if ((rc = add_node(&b, NESIM_LMN_ATTENTION, name, &n)))
            break;
        int attn = (int)b.g->n - 1;
        n->in[0] = proj[NESIM_LM_Q], n->in[1] = proj[NESIM_LM_K], n->in[2] = proj[NESIM_LM_V];
        n->heads = c->heads, n->kv_heads = c->kv_heads, n->head_dim = c->head_dim, n->window = c->window;
        n->rope_theta = c->rope_theta, n->dim = c->heads * c->head_dim;
        snprintf(name, sizeof name, "layers.%zu.o_proj", l);
        snprintf(tn, sizeof tn, "model.layers.%zu.self_attn.o_proj.weight", l);
        proj[NESIM_LM_O] = (int)b.g->n;
        if ((rc = add_node(&b, NESIM_LMN_LINEAR, name, &n)) || (rc = set_str(&n->wname, tn, err)))
            break;
        n->in[0] = attn;
        snprintf(name, sizeof name, "layers.%zu.attn_add", l);
        if ((rc = add_node(&b, NESIM_LMN_ADD, name, &n)))
            break;
        n->in[0] = h, n->in[1] = proj[NESIM_LM_O], n->dim = c->hidden;
        h = (int)b.g->n - 1;
        snprintf(name, sizeof name, "layers.%zu.post_attention_layernorm", l);
        snprintf(tn, sizeof tn, "model.%s.weight", name);
        if ((rc = add_node(&b, NESIM_LMN_RMSNORM, name, &n)) || (rc = set_str(&n->wname, tn, err)))
            break;
        n->in[0] = h, n->w = ly->post_norm, n->eps = c->eps, n->dim = c->hidden;
        int norm2 = (int)b.g->n - 1;
        for (int kd = NESIM_LM_GATE; kd <= NESIM_LM_UP && !rc; kd++) {
            snprintf(name, sizeof name, "layers.%zu.%s", l, nesim_lm_proj_name(kd));
            snprintf(tn, sizeof tn, "model.layers.%zu.mlp.%s.weight", l, nesim_lm_proj_name(kd));
            proj[kd] = (int)b.g->n;
            if ((rc = add_node(&b, NESIM_LMN_LINEAR, name, &n)) || (rc = set_str(&n->wname, tn, err)))
                break;
            n->in[0] = norm2;
        }
        if (rc)
            break;
        snprintf(name, sizeof name, "layers.%zu.act", l);
        if ((rc = add_node(&b, NESIM_LMN_SILU, name, &n)))
            break;
        n->in[0] = proj[NESIM_LM_GATE], n->dim = c->inter;
        snprintf(name, sizeof name, "layers.%zu.gated", l);
        if ((rc = add_node(&b, NESIM_LMN_MUL, name, &n)))
            break;
        n->in[0] = (int)b.g->n - 2, n->in[1] = proj[NESIM_LM_UP], n->dim = c->inter;
        int gated = (int)b.g->n - 1;
        snprintf(name, sizeof name, "layers.%zu.down_proj", l);
        snprintf(tn, sizeof tn, "model.layers.%zu.mlp.down_proj.weight", l);
        proj[NESIM_LM_DOWN] = (int)b.g->n;
        if ((rc = add_node(&b, NESIM_LMN_LINEAR, name, &n)) || (rc = set_str(&n->wname, tn, err)))
            break;
        n->in[0] = gated;
        snprintf(name, sizeof name, "layers.%zu.mlp_add", l);
        if ((rc = add_node(&b, NESIM_LMN_ADD, name, &n)))
            break;
        n->in[0] = h, n->in[1] = proj[NESIM_LM_DOWN], n->dim = c->hidden;
        h = (int)b.g->n - 1;
        /* the projections' tensors and codings */
        for (int kd = 0; kd < NESIM_LM_NPROJ && !rc; kd++) {
            nesim_lm_node *p = &b.g->node[proj[kd]];
            p->w = ly->w[kd];
            p->dim = (size_t)ly->w[kd].shape[0];
            if (ly->has_b[kd]) {
                snprintf(tn, sizeof tn, "model.layers.%zu.%s.%s.bias", l, tensor_kind[kd], nesim_lm_proj_name(kd));
                if ((rc = set_str(&p->bname, tn, err)))
                    break;
                p->b = ly->b[kd], p->has_b = 1;
            }
            if (ly->has_scale[kd]) {
                p->scale = ly->scale[kd], p->group = ly->group[kd], p->has_scale = 1;
                p->scale.heap = NULL; /* the model owns a converted copy */
                p->scale.map_base = NULL;
            }
            p->po = (nesim_lm_proj_opts){(int)(spiked >> kd & 1), coding, k};
        }
    }
    if (!rc && !(rc = add_node(&b, NESIM_LMN_RMSNORM, "norm", &n)) && !(rc = set_str(&n->wname, "model.norm.weight", err)))
        n->in[0] = h, n->w = m->final_norm, n->eps = c->eps, n->dim = c->hidden;
    if (!rc && !(rc = add_node(&b, NESIM_LMN_LINEAR, "lm_head", &n)) &&
        !(rc = set_str(&n->wname, c->tied ? "model.embed_tokens.weight" : "lm_head.weight", err))) {
        n->in[0] = (int)b.g->n - 2, n->w = m->lm_head, n->dim = c->vocab;
        n->po = (nesim_lm_proj_opts){(int)(spiked >> NESIM_LM_NPROJ & 1), coding, k};
        b.g->output = b.g->n - 1;
    }
    if (!rc)
        rc = finish(&b);
    if (rc) {
        nesim_lm_graph_free(b.g);
        return rc;
    }
    *out = b.g;
    return NESIM_OK;
}

/* ---- to and from JSON --------------------------------------------------- */

json_t *nesim_lm_graph_nodes_json(const nesim_lm_graph *g)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(n->name));
        json_object_set_new(o, "type", json_string(nesim_lm_node_type_name(n->type)));
        switch (n->type) {
        case NESIM_LMN_EMBEDDING:
            json_object_set_new(o, "weight", json_string(n->wname));
            break;
        case NESIM_LMN_RMSNORM:
            json_object_set_new(o, "input", json_string(g->node[n->in[0]].name));
            json_object_set_new(o, "weight", json_string(n->wname));
            json_object_set_new(o, "eps", json_real(n->eps));
            break;
        case NESIM_LMN_LINEAR:
            json_object_set_new(o, "input", json_string(g->node[n->in[0]].name));
            json_object_set_new(o, "weight", json_string(n->wname));
            if (n->bname)
                json_object_set_new(o, "bias", json_string(n->bname));
            json_object_set_new(o, "shape", json_pack("[II]", (json_int_t)n->w.shape[0], (json_int_t)n->w.shape[1]));
            json_object_set_new(o, "coding", json_string(n->po.spiked ? nesim_coding_name(n->po.coding) : "none"));
            if (n->po.spiked)
                json_object_set_new(o, "k", json_real(n->po.k));
            if (n->routed)
                json_object_set_new(o, "routed", json_true());
            break;
        case NESIM_LMN_ATTENTION:
            json_object_set_new(o, "q", json_string(g->node[n->in[0]].name));
            json_object_set_new(o, "k", json_string(g->node[n->in[1]].name));
            json_object_set_new(o, "v", json_string(g->node[n->in[2]].name));
            json_object_set_new(o, "heads", json_integer((json_int_t)n->heads));
            json_object_set_new(o, "kv_heads", json_integer((json_int_t)n->kv_heads));
            json_object_set_new(o, "head_dim", json_integer((json_int_t)n->head_dim));
            json_object_set_new(o, "rope_theta", json_real(n->rope_theta));
            json_object_set_new(o, "window", json_integer((json_int_t)n->window));
            if (n->kv_int8)
                json_object_set_new(o, "kv_quant", json_string("int8"));
            if (n->q_k > 0)
                json_object_set_new(o, "q_k", json_real(n->q_k));
            if (n->n_sinks)
                json_object_set_new(o, "sinks", json_pack("{s:s, s:s}", "k", n->sink_kname, "v", n->sink_vname));
            break;
        case NESIM_LMN_MOE: {
            json_object_set_new(o, "input", json_string(g->node[n->in[0]].name));
            json_object_set_new(o, "router", json_string(n->wname));
            json_object_set_new(o, "act", json_string(n->act_sigmoid ? "sigmoid" : "softmax"));
            json_object_set_new(o, "top_k", json_integer((json_int_t)n->top_k));
            json_object_set_new(o, "renormalize", json_boolean(n->renormalize));
            json_t *ex = json_array();
            for (size_t e = 0; e < n->n_experts; e++)
                json_array_append_new(ex, json_pack("[sss]", g->node[n->experts[3 * e]].name,
                                                    g->node[n->experts[3 * e + 1]].name,
                                                    g->node[n->experts[3 * e + 2]].name));
            json_object_set_new(o, "experts", ex);
            if (n->shared[0] >= 0)
                json_object_set_new(o, "shared", json_pack("[sss]", g->node[n->shared[0]].name,
                                                           g->node[n->shared[1]].name, g->node[n->shared[2]].name));
            break;
        }
        case NESIM_LMN_GLA:
            json_object_set_new(o, "q", json_string(g->node[n->in[0]].name));
            json_object_set_new(o, "k", json_string(g->node[n->in[1]].name));
            json_object_set_new(o, "v", json_string(g->node[n->in[2]].name));
            if (n->key_gate)
                json_object_set_new(o, "gate", json_string("key"));
            else
                json_object_set_new(o, "gk", json_string(g->node[n->in[3]].name));
            json_object_set_new(o, "heads", json_integer((json_int_t)n->heads));
            json_object_set_new(o, "kv_heads", json_integer((json_int_t)n->kv_heads));
            json_object_set_new(o, "head_dim", json_integer((json_int_t)n->head_dim));
            json_object_set_new(o, "gate_norm", json_real(n->gate_norm));
            if (n->has_norm) {
                json_object_set_new(o, "norm", json_string(n->wname));
                json_object_set_new(o, "eps", json_real(n->eps));
            }
            break;
        case NESIM_LMN_ADD:
        case NESIM_LMN_MUL:
            json_object_set_new(o, "inputs", json_pack("[ss]", g->node[n->in[0]].name, g->node[n->in[1]].name));
            break;
        default:
            json_object_set_new(o, "input", json_string(g->node[n->in[0]].name));
            break;
        }
        json_array_append_new(a, o);
    }
    return a;
}

/* Messages name the node: "LABEL: nodes[7] (layers.0.attn).heads: ...". */
typedef struct rd {
    const char *label;
    nesim_error *err;
    size_t i;
    const char *name;
} rd;

static int bad(const rd *r, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(const rd *r, const char *field, const char *fmt, ...)
{
    char msg[600], shown[NESIM_JSON_SHOWN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nesim_fail(r->err, NESIM_EINVAL, "%s: nodes[%zu]%s%s%s%s%s: %s", r->label, r->i, r->name ? " (" : "",
                      r->name ? nesim_json_show(r->name, shown) : "", r->name ? ")" : "", field ? "." : "",
                      field ? field : "", msg);
}

static const char *const node_keys[NESIM_LMN_TYPES][14] = {
    [NESIM_LMN_EMBEDDING] = {"name", "type", "weight", NULL},
    [NESIM_LMN_RMSNORM] = {"name", "type", "input", "weight", "eps", NULL},
    [NESIM_LMN_LINEAR] = {"name", "type", "input", "weight", "bias", "shape", "coding", "k", "routed", NULL},
    [NESIM_LMN_ATTENTION] = {"name", "type", "q", "k", "v", "heads", "kv_heads", "head_dim", "rope_theta", "window",
                             "kv_quant", "q_k", "sinks", NULL},
    [NESIM_LMN_ADD] = {"name", "type", "inputs", NULL},
    [NESIM_LMN_MUL] = {"name", "type", "inputs", NULL},
    [NESIM_LMN_SILU] = {"name", "type", "input", NULL},
    [NESIM_LMN_RELU] = {"name", "type", "input", NULL},
    [NESIM_LMN_GLA] = {"name", "type", "q", "k", "v", "gk", "gate", "heads", "kv_heads", "head_dim", "gate_norm", "norm",
                       "eps", NULL},
    [NESIM_LMN_MOE] = {"name", "type", "input", "router", "act", "top_k", "renormalize", "experts", "shared", NULL},
    [NESIM_LMN_SIGMOID] = {"name", "type", "input", NULL},
};

/* The earlier node named by field `key` (a string). */
static int input_of(const rd *r, const builder *b, const json_t *o, const char *key, const json_t *v, int *out)
{
    if (!v)
        v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (!s)
        return bad(r, key, "must name an earlier node");
    for (size_t j = 0; j < b->g->n; j++)
        if (!strcmp(b->g->node[j].name, s)) {
            *out = (int)j;
            return NESIM_OK;
        }
    char shown[NESIM_JSON_SHOWN];
    return bad(r, key, "'%s' is not an earlier node (inputs come before their users; a graph has no cycles)",
               nesim_json_show(s, shown));
}

static int pos_int(const rd *r, const json_t *o, const char *key, size_t max, size_t *out, int zero_ok)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < (zero_ok ? 0 : 1) || (unsigned long long)json_integer_value(v) > max)
        return bad(r, key, "must be an integer in [%d, %zu]", zero_ok ? 0 : 1, max);
    *out = (size_t)json_integer_value(v);
    return NESIM_OK;
}

static int pos_real(const rd *r, const json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !(json_number_value(v) < 1e300))
        return bad(r, key, "must be a positive number");
    *out = json_number_value(v);
    return NESIM_OK;
}

/* Rounds a float to bfloat16 (to nearest, ties to even), as PyTorch stores
 * the result of a bf16 operation computed in float. */
static float round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) /* inf, nan: as is */
        return f;
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* SpikingBrain's W8ASpike checkpoints keep each QuantLinear's weight in
 * bf16 with a buffer "<module>.weight_quantizer.scales" ([out, in / group,
 * 1], or [out, 1]), and use (weight / scales).round() * scales in the
 * weight's dtype (quant_linear.py's Quantizer). When that buffer is there,
 * the node's weight becomes that product, computed as PyTorch does on the
 * CPU (each operation in float, its result rounded to the weight's dtype;
 * round half to even): a heap copy the node owns. */
static int fake_quant(const rd *r, const nesim_lm_model *m, nesim_lm_node *n, const char *key, const char *name)
{
    size_t len = strlen(name);
    if (len < 7 || strcmp(name + len - 7, ".weight"))
        return NESIM_OK;
    char sn[320];
    snprintf(sn, sizeof sn, "%.*s.weight_quantizer.scales", (int)(len - 7), name);
    nesim_tensor sc;
    nesim_error e;
    if (nesim_lm_tensor(m, sn, &sc, &e) || !sc.data)
        return NESIM_OK; /* no quantizer: the weight as stored */
    const nesim_tensor *w = &n->w;
    const size_t out = (size_t)w->shape[0], in = (size_t)w->shape[1];
    size_t G = sc.ndim >= 2 ? (size_t)sc.shape[1] : 1;
    if (sc.ndim < 2 || sc.ndim > 3 || (size_t)sc.shape[0] != out || !G || in % G || sc.count != out * G ||
        (w->dtype != NESIM_BF16 && w->dtype != NESIM_F32))
        return bad(r, key, "tensor '%s' must be [%zu, G, 1] or [%zu, 1] with G dividing %zu, for a BF16 or F32 "
                           "weight (got %d dimensions, %zu values; weight %s)",
                   sn, out, out, in, sc.ndim, sc.count, nesim_dtype_name(w->dtype));
    const size_t g = in / G, esz = nesim_dtype_size(w->dtype);
    unsigned char *q = malloc(w->count * esz);
    if (!q)
        return bad(r, key, "out of memory for the quantised copy of '%s'", name);
    const int bf = w->dtype == NESIM_BF16;
    for (size_t o = 0; o < out; o++)
        for (size_t i = 0; i < in; i++) {
            float x = (float)nesim_tensor_get(w, o * in + i), s = (float)nesim_tensor_get(&sc, o * G + i / g);
            float d = x / s;
            if (bf)
                d = round_bf16(d);
            float v = nearbyintf(d) * s; /* the default rounding mode: half to even */
            if (bf) {
                uint32_t u;
                v = round_bf16(v);
                memcpy(&u, &v, sizeof u);
                uint16_t h = (uint16_t)(u >> 16);
                memcpy(q + (o * in + i) * 2, &h, 2);
            } else {
                memcpy(q + (o * in + i) * 4, &v, 4);
            }
            if (!isfinite(v)) {
                free(q);
                return bad(r, key, "tensor '%s': row %zu, column %zu: scale %g gives %g", name, o, i, (double)s,
                           (double)v);
            }
        }
    nesim_tensor c = *w;
    c.map_base = NULL, c.map_len = 0;
    c.data = c.heap = q;
    n->w = c;
    n->w_owned = 1;
    return NESIM_OK;
}

/* A float tensor of ndim dimensions [d0, d1] (0: any size), or for a
 * linear weight also I8 with "<name>_scale"; a linear weight with a
 * W8ASpike quantizer's scales is quantised as the released code does. */
static int tensor_of(const rd *r, const nesim_lm_model *m, nesim_lm_node *n, const char *key, int ndim, size_t d0,
                     size_t d1, int linear)
{
    const char *name = key[0] == 'w' ? n->wname : n->bname;
    nesim_tensor *t = key[0] == 'w' ? &n->w : &n->b;
    nesim_error e;
    if (nesim_lm_tensor(m, name, t, &e))
        return bad(r, key, "%s", e.msg);
    if (!t->data && !(linear && key[0] == 'w'))
        return bad(r, key, "tensor '%s' is made lazily; only a projection's weight may be", name);
    if (linear && key[0] == 'w')
        n->lazy = !t->data;
    int ok = t->ndim == ndim && (d0 == 0 || (size_t)t->shape[0] == d0) &&
             (ndim < 2 || d1 == 0 || (size_t)t->shape[1] == d1);
    if (!ok) {
        char got[96] = "", want[64];
        for (int j = 0, at = 0; j < t->ndim && j < 4; j++)
            at += snprintf(got + at, sizeof got - (size_t)at, "%s%lld", j ? ", " : "", (long long)t->shape[j]);
        if (ndim == 1)
            snprintf(want, sizeof want, "[%zu]", d0);
        else if (d0)
            snprintf(want, sizeof want, "[%zu, %zu]", d0, d1);
        else
            snprintf(want, sizeof want, "[out, %zu]", d1);
        return bad(r, key, "tensor '%s' has shape [%s], expected %s", name, got, want);
    }
    if (t->dtype == NESIM_I8 && linear && key[0] == 'w') {
        char sn[300], what[400];
        snprintf(sn, sizeof sn, "%s_scale", name);
        nesim_tensor st;
        if (nesim_lm_tensor(m, sn, &st, &e))
            return bad(r, key, "tensor '%s' is I8 but '%s' is missing", name, sn);
        snprintf(what, sizeof what, "tensor '%s'", sn);
        if (nesim_lm_scale_view(&st, what, (size_t)t->shape[0], (size_t)t->shape[1], &n->scale, &n->group, &e))
            return bad(r, key, "%s", e.msg);
        n->has_scale = 1;
        return NESIM_OK;
    }
    if (t->dtype != NESIM_F32 && t->dtype != NESIM_F16 && t->dtype != NESIM_BF16 && t->dtype != NESIM_F64)
        return bad(r, key, "tensor '%s' is %s; expected F32, F16, BF16 or F64%s", name, nesim_dtype_name(t->dtype),
                   linear ? " (or I8 with a _scale)" : "");
    if (linear && key[0] == 'w' && t->data)
        return fake_quant(r, m, n, key, name);
    return NESIM_OK;
}

/* One expert: three routed linear nodes, gate and up from the moe's input,
 * down back to its size. */
static int read_expert(const rd *r, builder *b, const json_t *a, const char *field, size_t in, int out[3])
{
    if (!json_is_array(a) || json_array_size(a) != 3)
        return bad(r, field, "an expert is [gate, up, down]: three routed linear nodes");
    for (int j = 0; j < 3; j++) {
        int rc = input_of(r, b, NULL, field, json_array_get(a, (size_t)j), &out[j]);
        if (rc)
            return rc;
        const nesim_lm_node *x = &b->g->node[out[j]];
        if (x->type != NESIM_LMN_LINEAR || !x->routed)
            return bad(r, field, "'%s' is not a linear node marked \"routed\"", x->name);
    }
    const nesim_lm_node *g = &b->g->node[out[0]], *u = &b->g->node[out[1]], *d = &b->g->node[out[2]];
    if ((size_t)g->w.shape[1] != in || (size_t)u->w.shape[1] != in || g->dim != u->dim ||
        (size_t)d->w.shape[1] != g->dim || d->dim != in)
        return bad(r, field, "gate and up must map %zu to one size and down back to %zu ('%s' %lld -> %lld, '%s' "
                             "%lld -> %lld, '%s' %lld -> %lld)",
                   in, in, g->name, (long long)g->w.shape[1], (long long)g->dim, u->name, (long long)u->w.shape[1],
                   (long long)u->dim, d->name, (long long)d->w.shape[1], (long long)d->dim);
    return NESIM_OK;
}

static int read_moe(const rd *r, builder *b, const json_t *o, nesim_lm_node *n)
{
    const nesim_lm_model *m = b->g->m;
    int rc;
    if ((rc = input_of(r, b, o, "input", NULL, &n->in[0])))
        return rc;
    const size_t in = b->g->node[n->in[0]].dim;
    n->dim = in;
    const char *rn = json_string_value(json_object_get(o, "router"));
    if (!rn)
        return bad(r, "router", "must name a tensor of the checkpoint ([experts, %zu])", in);
    if ((rc = set_str(&n->wname, rn, r->err)) || (rc = tensor_of(r, m, n, "weight", 2, 0, in, 0)))
        return rc;
    const json_t *ex = json_object_get(o, "experts");
    if (!json_is_array(ex) || json_array_size(ex) < 1 || json_array_size(ex) > 65536)
        return bad(r, "experts", "must list 1 to 65536 experts");
    n->n_experts = json_array_size(ex);
    if ((size_t)n->w.shape[0] != n->n_experts)
        return bad(r, "router", "tensor '%s' scores %lld experts; the node lists %zu", rn, (long long)n->w.shape[0],
                   n->n_experts);
    if ((rc = pos_int(r, o, "top_k", n->n_experts, &n->top_k, 0)))
        return rc;
    const char *act = json_string_value(json_object_get(o, "act"));
    if (!act || (strcmp(act, "softmax") && strcmp(act, "sigmoid")))
        return bad(r, "act", "must be softmax or sigmoid");
    n->act_sigmoid = !strcmp(act, "sigmoid");
    const json_t *rz = json_object_get(o, "renormalize");
    if (rz && !json_is_boolean(rz))
        return bad(r, "renormalize", "must be true or false");
    n->renormalize = rz && json_is_true(rz);
    if (!(n->experts = malloc(3 * n->n_experts * sizeof *n->experts)))
        return nesim_fail(r->err, NESIM_ENOMEM, "out of memory");
    for (size_t e = 0; e < n->n_experts; e++)
        if ((rc = read_expert(r, b, json_array_get(ex, e), "experts", in, n->experts + 3 * e)))
            return rc;
    n->shared[0] = n->shared[1] = n->shared[2] = -1;
    const json_t *sh = json_object_get(o, "shared");
    if (sh && (rc = read_expert(r, b, sh, "shared", in, n->shared)))
        return rc;
    return NESIM_OK;
}

static int read_node(const rd *r, builder *b, const json_t *o, nesim_lm_node_type type, nesim_lm_node *n)
{
    const nesim_lm_model *m = b->g->m;
    int rc;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        int known = 0;
        for (int k = 0; k < 14 && node_keys[type][k]; k++)
            known |= !strcmp(key, node_keys[type][k]);
        if (!known) {
            char shown[NESIM_JSON_SHOWN];
            return bad(r, NULL, "unknown key '%s' for a %s node", nesim_json_show(key, shown),
                       nesim_lm_node_type_name(type));
        }
    }
    const char *wn = json_string_value(json_object_get(o, "weight"));
    if (type == NESIM_LMN_EMBEDDING || type == NESIM_LMN_RMSNORM || type == NESIM_LMN_LINEAR) {
        if (!wn)
            return bad(r, "weight", "must name a tensor of the checkpoint");
        if ((rc = set_str(&n->wname, wn, r->err)))
            return rc;
    }
    switch (type) {
    case NESIM_LMN_EMBEDDING:
        if ((rc = tensor_of(r, m, n, "weight", 2, m->cfg.vocab, 0, 0)))
            return rc;
        n->dim = (size_t)n->w.shape[1];
        return NESIM_OK;
    case NESIM_LMN_RMSNORM:
        if ((rc = input_of(r, b, o, "input", NULL, &n->in[0])) || (rc = pos_real(r, o, "eps", &n->eps)))
            return rc;
        n->dim = b->g->node[n->in[0]].dim;
        return tensor_of(r, m, n, "weight", 1, n->dim, 0, 0);
    case NESIM_LMN_LINEAR: {
        if ((rc = input_of(r, b, o, "input", NULL, &n->in[0])))
            return rc;
        const size_t in = b->g->node[n->in[0]].dim;
        if ((rc = tensor_of(r, m, n, "weight", 2, 0, in, 1)))
            return rc;
        n->dim = (size_t)n->w.shape[0];
        json_t *sh = json_object_get(o, "shape");
        if (sh && !(json_is_array(sh) && json_array_size(sh) == 2 &&
                    json_integer_value(json_array_get(sh, 0)) == (json_int_t)n->dim &&
                    json_integer_value(json_array_get(sh, 1)) == (json_int_t)in))
            return bad(r, "shape", "must be [%zu, %zu] (the tensor's; informative only)", n->dim, in);
        const char *bn = json_string_value(json_object_get(o, "bias"));
        if (json_object_get(o, "bias") && !bn)
            return bad(r, "bias", "must name a tensor of the checkpoint");
        if (bn) {
            if ((rc = set_str(&n->bname, bn, r->err)) || (rc = tensor_of(r, m, n, "bias", 1, n->dim, 0, 1)))
                return rc;
            n->has_b = 1;
        }
        const char *cn = json_string_value(json_object_get(o, "coding"));
        nesim_error e;
        n->po = (nesim_lm_proj_opts){1, NESIM_CODE_BITWISE_BIDIR, 3.0};
        if (!cn || (strcmp(cn, "none") && nesim_coding_parse(cn, &n->po.coding, &e)))
            return bad(r, "coding", "must be none, binary, ternary, bitwise, bitwise-bidirectional or "
                                    "bitwise-twos-complement");
        n->po.spiked = strcmp(cn, "none") != 0;
        json_t *kv = json_object_get(o, "k");
        if (kv && !(json_is_number(kv) && json_number_value(kv) > 0 && json_number_value(kv) < 1e6))
            return bad(r, "k", "must be a number in (0, 1e6)");
        if (kv)
            n->po.k = json_number_value(kv);
        json_t *ro = json_object_get(o, "routed");
        if (ro && !json_is_boolean(ro))
            return bad(r, "routed", "must be true or false");
        n->routed = ro && json_is_true(ro);
        return NESIM_OK;
    }
    case NESIM_LMN_ATTENTION: {
        if ((rc = input_of(r, b, o, "q", NULL, &n->in[0])) || (rc = input_of(r, b, o, "k", NULL, &n->in[1])) ||
            (rc = input_of(r, b, o, "v", NULL, &n->in[2])) || (rc = pos_int(r, o, "heads", 65536, &n->heads, 0)) ||
            (rc = pos_int(r, o, "kv_heads", 65536, &n->kv_heads, 0)) ||
            (rc = pos_int(r, o, "head_dim", 65536, &n->head_dim, 0)) ||
            (rc = pos_real(r, o, "rope_theta", &n->rope_theta)) ||
            (rc = pos_int(r, o, "window", (size_t)1 << 40, &n->window, 1)))
            return rc;
        if (n->heads % n->kv_heads)
            return bad(r, "kv_heads", "must divide heads (%zu by %zu)", n->heads, n->kv_heads);
        if (n->head_dim % 2)
            return bad(r, "head_dim", "must be even for RoPE (got %zu)", n->head_dim);
        const json_t *kq = json_object_get(o, "kv_quant");
        if (kq && !(json_is_string(kq) && (!strcmp(json_string_value(kq), "int8") ||
                                           !strcmp(json_string_value(kq), "none"))))
            return bad(r, "kv_quant", "must be int8 or none");
        n->kv_int8 = kq && !strcmp(json_string_value(kq), "int8");
        if (json_object_get(o, "q_k") && (rc = pos_real(r, o, "q_k", &n->q_k)))
            return rc;
        const size_t want[3] = {n->heads * n->head_dim, n->kv_heads * n->head_dim, n->kv_heads * n->head_dim};
        static const char *const qkv[3] = {"q", "k", "v"};
        for (int j = 0; j < 3; j++)
            if (b->g->node[n->in[j]].dim != want[j])
                return bad(r, qkv[j], "'%s' gives %zu values; %s needs %zu", b->g->node[n->in[j]].name,
                           b->g->node[n->in[j]].dim, qkv[j], want[j]);
        n->dim = want[0];
        const json_t *sk = json_object_get(o, "sinks");
        if (sk) { /* learned sink keys and values, each [S, kv_heads * head_dim] */
            const char *kn = json_string_value(json_object_get(sk, "k")), *vn = json_string_value(json_object_get(sk, "v"));
            if (!json_is_object(sk) || json_object_size(sk) != 2 || !kn || !vn)
                return bad(r, "sinks", "must be {\"k\": TENSOR, \"v\": TENSOR}");
            if ((rc = set_str(&n->sink_kname, kn, r->err)) || (rc = set_str(&n->sink_vname, vn, r->err)))
                return rc;
            nesim_tensor *ts[2] = {&n->sink_k, &n->sink_v};
            const char *names[2] = {kn, vn};
            for (int j = 0; j < 2; j++) {
                nesim_error e;
                if (nesim_lm_tensor(b->g->m, names[j], ts[j], &e))
                    return bad(r, "sinks", "%s", e.msg);
                if (!ts[j]->data)
                    return bad(r, "sinks", "tensor '%s' is made lazily; only a projection's weight may be", names[j]);
                if (ts[j]->ndim != 2 || ts[j]->shape[0] < 1 || ts[j]->shape[0] > 65536 ||
                    (size_t)ts[j]->shape[1] != want[1] || ts[j]->shape[0] != ts[0]->shape[0] ||
                    (ts[j]->dtype != NESIM_F32 && ts[j]->dtype != NESIM_F16 && ts[j]->dtype != NESIM_BF16 &&
                     ts[j]->dtype != NESIM_F64))
                    return bad(r, "sinks", "tensor '%s' must be float [S, %zu] (S up to 65536, the same for k and v)",
                               names[j], want[1]);
            }
            n->n_sinks = (size_t)n->sink_k.shape[0];
        }
        return NESIM_OK;
    }
    case NESIM_LMN_GLA: {
        const json_t *gt = json_object_get(o, "gate");
        if (gt && !(json_is_string(gt) && (!strcmp(json_string_value(gt), "gk") || !strcmp(json_string_value(gt), "key"))))
            return bad(r, "gate", "must be gk (a gate input) or key (alpha = 1 - k)");
        n->key_gate = gt && !strcmp(json_string_value(gt), "key");
        if (n->key_gate && json_object_get(o, "gk"))
            return bad(r, "gk", "a key-tied gate takes no gk");
        if ((rc = input_of(r, b, o, "q", NULL, &n->in[0])) || (rc = input_of(r, b, o, "k", NULL, &n->in[1])) ||
            (rc = input_of(r, b, o, "v", NULL, &n->in[2])) ||
            (!n->key_gate && (rc = input_of(r, b, o, "gk", NULL, &n->in[3]))) ||
            (rc = pos_int(r, o, "heads", 65536, &n->heads, 0)) ||
            (rc = pos_int(r, o, "kv_heads", 65536, &n->kv_heads, 0)) ||
            (rc = pos_int(r, o, "head_dim", 4096, &n->head_dim, 0)))
            return rc;
        if (n->heads % n->kv_heads)
            return bad(r, "kv_heads", "must divide heads (%zu by %zu)", n->heads, n->kv_heads);
        n->gate_norm = 16;
        if (json_object_get(o, "gate_norm") && (rc = pos_real(r, o, "gate_norm", &n->gate_norm)))
            return rc;
        const size_t want[4] = {n->heads * n->head_dim, n->kv_heads * n->head_dim, n->kv_heads * n->head_dim,
                                n->kv_heads * n->head_dim};
        static const char *const qkvg[4] = {"q", "k", "v", "gk"};
        for (int j = 0; j < (n->key_gate ? 3 : 4); j++)
            if (b->g->node[n->in[j]].dim != want[j])
                return bad(r, qkvg[j], "'%s' gives %zu values; %s needs %zu", b->g->node[n->in[j]].name,
                           b->g->node[n->in[j]].dim, qkvg[j], want[j]);
        n->dim = want[0];
        const char *wn2 = json_string_value(json_object_get(o, "norm"));
        if (json_object_get(o, "norm") && !wn2)
            return bad(r, "norm", "must name a tensor of the checkpoint");
        if (wn2) {
            if ((rc = set_str(&n->wname, wn2, r->err)) || (rc = pos_real(r, o, "eps", &n->eps)) ||
                (rc = tensor_of(r, m, n, "weight", 1, n->head_dim, 0, 0)))
                return rc;
            n->has_norm = 1;
        } else if (json_object_get(o, "eps")) {
            return bad(r, "eps", "only with a norm");
        }
        return NESIM_OK;
    }
    case NESIM_LMN_MOE:
        return read_moe(r, b, o, n);
    case NESIM_LMN_ADD:
    case NESIM_LMN_MUL: {
        json_t *a = json_object_get(o, "inputs");
        if (!json_is_array(a) || json_array_size(a) != 2)
            return bad(r, "inputs", "must name two earlier nodes");
        if ((rc = input_of(r, b, o, "inputs", json_array_get(a, 0), &n->in[0])) ||
            (rc = input_of(r, b, o, "inputs", json_array_get(a, 1), &n->in[1])))
            return rc;
        if (b->g->node[n->in[0]].dim != b->g->node[n->in[1]].dim)
            return bad(r, "inputs", "sizes differ: '%s' gives %zu, '%s' %zu", b->g->node[n->in[0]].name,
                       b->g->node[n->in[0]].dim, b->g->node[n->in[1]].name, b->g->node[n->in[1]].dim);
        n->dim = b->g->node[n->in[0]].dim;
        return NESIM_OK;
    }
    default:
        if ((rc = input_of(r, b, o, "input", NULL, &n->in[0])))
            return rc;
        n->dim = b->g->node[n->in[0]].dim;
        return NESIM_OK;
    }
}

int nesim_lm_graph_from_json(const nesim_lm_model *m, const json_t *spec, const char *label, nesim_lm_graph **out,
                             nesim_error *err)
{
    *out = NULL;
    const json_t *a = json_object_get(spec, "nodes");
    if (!json_is_array(a) || json_array_size(a) == 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: nodes: must be a non-empty array", label);
    if (json_array_size(a) > 1000000)
        return nesim_fail(err, NESIM_EINVAL, "%s: nodes: more than 1,000,000", label);
    builder b;
    int rc = builder_new(&b, m, json_array_size(a), err);
    if (rc)
        return rc;
    int embed = -1;
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        rd r = {label, err, i, NULL};
        if (!json_is_object(o)) {
            rc = bad(&r, NULL, "must be an object");
            break;
        }
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *tn = json_string_value(json_object_get(o, "type"));
        r.name = name;
        if (!name || !name[0] || strlen(name) > 200) {
            rc = bad(&r, "name", "must be a non-empty string of at most 200 bytes");
            break;
        }
        if (nesim_lm_graph_find(b.g, name) >= 0) {
            rc = bad(&r, "name", "is taken by an earlier node");
            break;
        }
        int t = tn ? nesim_json_find_name(type_names, tn) : -1;
        if (t < 0) {
            char list[200];
            rc = bad(&r, "type", "must be one of %s", nesim_json_list_names(type_names, list, sizeof list));
            break;
        }
        if (t == NESIM_LMN_EMBEDDING && embed >= 0) {
            rc = bad(&r, "type", "a second embedding: the graph has one input, nodes[%d]", embed);
            break;
        }
        nesim_lm_node *n;
        if ((rc = add_node(&b, (nesim_lm_node_type)t, name, &n)))
            break;
        if (t == NESIM_LMN_EMBEDDING)
            embed = (int)i;
        if ((rc = read_node(&r, &b, o, (nesim_lm_node_type)t, n)))
            break;
        for (int j = 0; j < 4 && !(n->type == NESIM_LMN_LINEAR && n->routed); j++)
            if (n->in[j] >= 0 && b.g->node[n->in[j]].type == NESIM_LMN_LINEAR && b.g->node[n->in[j]].routed) {
                rc = bad(&r, NULL, "reads '%s', a routed expert projection: only its moe node runs it",
                         b.g->node[n->in[j]].name);
                break;
            }
        if (rc)
            break;
    }
    const char *on = json_string_value(json_object_get(spec, "output"));
    int oi = !rc && on ? nesim_lm_graph_find(b.g, on) : -1;
    if (!rc && embed < 0)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: nodes: no embedding node (the token input)", label);
    if (!rc && oi < 0)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: output: must name a node", label);
    if (!rc && b.g->node[oi].dim != m->cfg.vocab)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: output: '%s' gives %zu values; the logits are [vocab %zu]", label, on,
                        b.g->node[oi].dim, m->cfg.vocab);
    if (!rc) {
        b.g->embed = (size_t)embed;
        b.g->output = (size_t)oi;
        rc = finish(&b);
    }
    if (rc) {
        nesim_lm_graph_free(b.g);
        return rc;
    }
    *out = b.g;
    return NESIM_OK;
}

const char *nesim_lm_kind_name(nesim_lm_kind k)
{
    static const char *const names[] = {"gla",       "swa",   "attention", "hybrid", "mlp", "moe", "embedding",
                                        "head",      "other"};
    return (unsigned)k < NESIM_LMK_KINDS ? names[k] : "?";
}

static int elementwise(nesim_lm_node_type t)
{
    return t == NESIM_LMN_RELU || t == NESIM_LMN_SIGMOID || t == NESIM_LMN_SILU || t == NESIM_LMN_MUL;
}

static int attention_kind(nesim_lm_kind k)
{
    return k == NESIM_LMK_GLA || k == NESIM_LMK_SWA || k == NESIM_LMK_ATTENTION || k == NESIM_LMK_HYBRID;
}

/* A node that two attention kinds claim is the hybrid's. */
static void claim(nesim_lm_kind *kind, int i, nesim_lm_kind k)
{
    if (kind[i] == NESIM_LMK_OTHER || kind[i] == k)
        kind[i] = k;
    else if (attention_kind(kind[i]) && attention_kind(k))
        kind[i] = NESIM_LMK_HYBRID;
}

void nesim_lm_graph_kinds(const nesim_lm_graph *g, nesim_lm_kind *kind)
{
    for (size_t i = 0; i < g->n; i++)
        kind[i] = NESIM_LMK_OTHER;
    /* the mixing nodes and what feeds them: projections and their feature
     * maps, back to the norm */
    for (size_t i = 0; i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        nesim_lm_kind k = n->type == NESIM_LMN_GLA         ? NESIM_LMK_GLA
                          : n->type == NESIM_LMN_ATTENTION ? (n->window ? NESIM_LMK_SWA : NESIM_LMK_ATTENTION)
                          : n->type == NESIM_LMN_MOE       ? NESIM_LMK_MOE
                                                           : NESIM_LMK_OTHER;
        if (k == NESIM_LMK_OTHER)
            continue;
        kind[i] = k;
        if (k == NESIM_LMK_MOE) {
            for (size_t e = 0; e < 3 * n->n_experts; e++)
                kind[n->experts[e]] = k;
            for (int e = 0; e < 3; e++)
                if (n->shared[e] >= 0)
                    kind[n->shared[e]] = k;
            continue;
        }
        for (int j = 0; j < 4; j++) {
            int x = n->in[j];
            while (x >= 0 && (g->node[x].type == NESIM_LMN_LINEAR || elementwise(g->node[x].type))) {
                claim(kind, x, k);
                x = g->node[x].type == NESIM_LMN_LINEAR ? -1 : g->node[x].in[0];
            }
        }
    }
    /* what reads only attention outputs (their norms, their sum, the output
     * projection), in node order so chains follow */
    for (size_t i = 0; i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        if (kind[i] != NESIM_LMK_OTHER || n->in[0] < 0 ||
            !(n->type == NESIM_LMN_LINEAR || n->type == NESIM_LMN_RMSNORM || n->type == NESIM_LMN_ADD))
            continue;
        int all = 1;
        nesim_lm_kind k = kind[n->in[0]];
        for (int j = 0; j < 4 && all; j++)
            if (n->in[j] >= 0) {
                all = attention_kind(kind[n->in[j]]);
                if (all && kind[n->in[j]] != k)
                    k = NESIM_LMK_HYBRID;
            }
        if (all)
            kind[i] = k;
    }
    kind[g->embed] = NESIM_LMK_EMBEDDING;
    kind[g->output] = NESIM_LMK_HEAD;
    if (g->node[g->output].in[0] >= 0 && g->node[g->node[g->output].in[0]].type == NESIM_LMN_RMSNORM)
        kind[g->node[g->output].in[0]] = NESIM_LMK_HEAD;
    /* the rest of the projections and their products: the dense MLPs */
    for (size_t i = 0; i < g->n; i++)
        if (kind[i] == NESIM_LMK_OTHER && (g->node[i].type == NESIM_LMN_LINEAR || elementwise(g->node[i].type)))
            kind[i] = NESIM_LMK_MLP;
}
