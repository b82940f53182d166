/* lm.c — the language-model job: prompt, generation, perplexity, energy.
 * See lm.h. */
#include "jobs/lm.h"

#include "base/par.h"
#include "eval/lmtime.h"
#include "eval/roofline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/chip.h"
#include "net/jsonmsg.h"
#include "net/lm.h"
#include "net/tensor.h"
#include "sim/network.h"
#include "traces/record_lm.h"

typedef struct prices {
    int on;
    double sop, update, mac16, add16;
    double gmac, gelem; /* graded work: the chip's graded.* or, without them, the dense fp16 */
    double tick_s; /* the chip's seconds per tick (1 ms without one) */
} prices;

static double spiking_j(const prices *p, const nesim_lm_totals *t)
{
    return (double)t->sops * p->sop + (double)t->updates * p->update;
}

static double graded_j(const prices *p, const nesim_lm_totals *t)
{
    return (double)(t->dense_macs + t->attn_macs) * p->gmac + (double)t->elem_ops * p->gelem;
}

static double ann_j(const prices *p, const nesim_lm_totals *t)
{
    return (double)(t->equiv_macs + t->attn_macs) * p->mac16 + (double)t->elem_ops * p->add16;
}

static int load_prices(const nesim_lm_job_opts *o, prices *p, json_t *rep, nesim_error *err)
{
    memset(p, 0, sizeof *p);
    p->tick_s = 1e-3;
    if (o->chip && !strcmp(o->chip, "none"))
        return NESIM_OK;
    nesim_chip *chip = NULL, *dense = NULL;
    int rc = nesim_chip_load(o->chip ? o->chip : "loihi", NULL, &chip, err);
    if (!rc)
        rc = nesim_chip_load(o->dense ? o->dense : "dense-45nm", NULL, &dense, err);
    if (!rc && chip->kind != NESIM_CHIP_NEUROMORPHIC)
        rc = nesim_fail(err, NESIM_EINVAL, "--chip %s: a neuromorphic profile is needed for the spiking share",
                        chip->name);
    if (!rc && dense->kind != NESIM_CHIP_DENSE)
        rc = nesim_fail(err, NESIM_EINVAL, "--dense %s: a dense profile is needed for the graded share", dense->name);
    if (!rc)
        rc = nesim_chip_dense_op(dense, "fp16", NESIM_OP_MAC, &p->mac16, err);
    if (!rc)
        rc = nesim_chip_dense_op(dense, "fp16", NESIM_OP_ADD, &p->add16, err);
    if (!rc) {
        p->on = 1;
        p->sop = chip->p.energy.synaptic_op;
        p->update = chip->p.energy.neuron_update_active;
        p->tick_s = chip->p.tick_s;
        p->gmac = chip->p.has_graded ? chip->p.graded_mac_j : p->mac16;
        p->gelem = chip->p.has_graded ? chip->p.graded_elem_j : p->add16;
        json_object_set_new(rep, "graded_on", json_string(chip->p.has_graded ? chip->name : dense->name));
        json_object_set_new(rep, "chip", json_string(chip->name));
        json_object_set_new(rep, "dense", json_string(dense->name));
    }
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    return rc;
}

static json_t *totals_json(const nesim_lm_totals *t, const prices *p)
{
    json_t *j = json_object();
    json_object_set_new(j, "tokens", json_integer(t->tokens));
    json_object_set_new(j, "spikes", json_integer(t->spikes));
    json_object_set_new(j, "sops", json_integer(t->sops));
    json_object_set_new(j, "membrane_updates", json_integer(t->updates));
    json_object_set_new(j, "coded_inputs", json_integer(t->spiked_inputs));
    json_object_set_new(j, "sparsity", json_real(t->spiked_inputs ? (double)t->silent_inputs / (double)t->spiked_inputs : 0));
    json_object_set_new(j, "window_sparsity", json_real(t->slots ? 1.0 - (double)t->spikes / (double)t->slots : 0));
    json_object_set_new(j, "share_counts_le7",
                        json_real(t->spiked_inputs ? (double)t->small_inputs / (double)t->spiked_inputs : 0));
    json_object_set_new(j, "dense_macs", json_integer(t->dense_macs));
    json_object_set_new(j, "attention_macs", json_integer(t->attn_macs));
    json_object_set_new(j, "element_ops", json_integer(t->elem_ops));
    json_object_set_new(j, "ann_macs", json_integer(t->equiv_macs + t->attn_macs));
    if (p->on) {
        double s = spiking_j(p, t), g = graded_j(p, t);
        json_object_set_new(j, "spiking_j", json_real(s));
        json_object_set_new(j, "graded_j", json_real(g));
        json_object_set_new(j, "graded_share", json_real(s + g > 0 ? g / (s + g) : 0));
        json_object_set_new(j, "ann_fp16_j", json_real(ann_j(p, t)));
        /* the same energy by term: spiking = synaptic + update, graded =
         * multiply-adds (graded projections, attention) + element-wise ops */
        json_t *terms = json_object();
        json_object_set_new(terms, "synaptic_j", json_real((double)t->sops * p->sop));
        json_object_set_new(terms, "update_j", json_real((double)t->updates * p->update));
        json_object_set_new(terms, "graded_mac_j", json_real((double)(t->dense_macs + t->attn_macs) * p->gmac));
        json_object_set_new(terms, "graded_elementwise_j", json_real((double)t->elem_ops * p->gelem));
        json_object_set_new(j, "energy_terms", terms);
    }
    return j;
}

/* The ANN on GPU boards, per token, by the roofline in bf16: every
 * projection weight is one MAC per token and two bytes; each attention MAC
 * reads one cached key or value (two bytes). The prompt is one batch (its
 * weights read once for all its tokens); generation is batch 1 (every token
 * reads every weight). */
static int gpu_baselines(const char *list, const nesim_lm_totals *pre, const nesim_lm_totals *dec, json_t *rep,
                         nesim_error *err)
{
    nesim_chip **g;
    size_t ng;
    int rc = nesim_gpu_list_load(list, &g, &ng, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < ng && !rc; i++) {
        json_t *o = json_object();
        const nesim_lm_totals *ph[2] = {pre, dec};
        const char *names[2] = {"prefill", "decode"};
        for (int k = 0; k < 2 && !rc; k++) {
            double nt = (double)ph[k]->tokens;
            if (nt <= 0)
                continue;
            double w = (double)ph[k]->equiv_macs / nt, a = (double)ph[k]->attn_macs / nt;
            double bytes = 2 * a + 2 * w / (k == 0 ? nt : 1);
            nesim_roofline r;
            if (!(rc = nesim_roofline_of(g[i], "bf16", w + a, bytes, "token", &r, err)))
                json_object_set_new(o, names[k], nesim_roofline_json(&r));
        }
        json_object_set_new(o, "profile", json_string(g[i]->name));
        json_array_append_new(arr, o);
    }
    json_object_set_new(rep, "gpu_baselines", arr);
    nesim_gpu_list_free(g, ng);
    return rc;
}

/* The run's totals so far summed by layer kind (each node's share, by the
 * block it is in); seen[k]: the graph has nodes of kind k. */
static void kind_totals(const nesim_lm_graph *g, const nesim_lm_run *r, const nesim_lm_kind *kind,
                        nesim_lm_totals by[NESIM_LMK_KINDS], int seen[NESIM_LMK_KINDS])
{
    memset(by, 0, NESIM_LMK_KINDS * sizeof *by);
    memset(seen, 0, NESIM_LMK_KINDS * sizeof *seen);
    for (size_t i = 0; i < g->n; i++) {
        const nesim_lm_totals *nt = nesim_lm_node_totals(r, i);
        nesim_lm_totals *b = &by[kind[i]];
        seen[kind[i]] = 1;
        b->tokens = nt->tokens > b->tokens ? nt->tokens : b->tokens;
        b->spikes += nt->spikes, b->sops += nt->sops, b->updates += nt->updates;
        b->spiked_inputs += nt->spiked_inputs, b->silent_inputs += nt->silent_inputs;
        b->small_inputs += nt->small_inputs, b->slots += nt->slots, b->dense_macs += nt->dense_macs;
        b->attn_macs += nt->attn_macs, b->elem_ops += nt->elem_ops, b->equiv_macs += nt->equiv_macs;
    }
}

static void diff(nesim_lm_totals *d, const nesim_lm_totals *a, const nesim_lm_totals *b)
{
    d->tokens = a->tokens - b->tokens;
    d->spikes = a->spikes - b->spikes;
    d->sops = a->sops - b->sops;
    d->updates = a->updates - b->updates;
    d->spiked_inputs = a->spiked_inputs - b->spiked_inputs;
    d->silent_inputs = a->silent_inputs - b->silent_inputs;
    d->small_inputs = a->small_inputs - b->small_inputs;
    d->slots = a->slots - b->slots;
    d->dense_macs = a->dense_macs - b->dense_macs;
    d->attn_macs = a->attn_macs - b->attn_macs;
    d->elem_ops = a->elem_ops - b->elem_ops;
    d->equiv_macs = a->equiv_macs - b->equiv_macs;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return (int32_t)b;
}

/* -log softmax(x)[target] in double */
static double nll(const float *x, size_t n, int32_t target)
{
    double mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    double z = 0;
    for (size_t i = 0; i < n; i++)
        z += exp((double)x[i] - mx);
    return log(z) + mx - (double)x[target];
}

static int read_tokens(const char *path, int32_t **ids, size_t *n, nesim_error *err)
{
    nesim_tensor t;
    int rc = nesim_npy_load(path, &t, err);
    if (rc)
        return rc;
    if (t.ndim != 1 || t.dtype == NESIM_F32 || t.dtype == NESIM_F64 || t.dtype == NESIM_F16 ||
        t.dtype == NESIM_BF16 || t.count == 0) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_EINVAL, "%s: token ids must be a non-empty 1-D integer array", path);
    }
    *ids = malloc(t.count * sizeof **ids);
    if (!*ids) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t.count; i++) {
        double v = nesim_tensor_get(&t, i);
        if (v < 0 || v > 2147483647.0) {
            nesim_tensor_release(&t);
            free(*ids);
            *ids = NULL;
            return nesim_fail(err, NESIM_EINVAL, "%s: element %zu: token id %.0f is out of range", path, i, v);
        }
        (*ids)[i] = (int32_t)v;
    }
    *n = t.count;
    nesim_tensor_release(&t);
    return NESIM_OK;
}

static int read_text(const char *path, char **text, nesim_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nesim_fail(err, NESIM_EINVAL, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap && n < ((size_t)16 << 20)) {
            char *b2 = realloc(b, 2 * cap + 1);
            if (!b2) {
                free(b);
                b = NULL;
                break;
            }
            b = b2, cap *= 2;
        } else if (n == cap) {
            break;
        }
    }
    fclose(f);
    if (!b)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    b[n] = 0;
    if (strlen(b) != n) {
        free(b);
        return nesim_fail(err, NESIM_EINVAL, "%s: contains a NUL byte", path);
    }
    *text = b;
    return NESIM_OK;
}

/* ---------------------------------------------------------------- spec */

json_t *nesim_lm_spec_json(const nesim_lm_graph *g, const char *dir)
{
    json_t *j = json_object(), *nodes = nesim_lm_graph_nodes_json(g);
    if (!j || !nodes) {
        json_decref(j);
        json_decref(nodes);
        return NULL;
    }
    json_object_set_new(j, "nesim_lm_spec", json_integer(2));
    json_object_set_new(j, "checkpoint", json_string(dir));
    json_object_set_new(j, "architecture", json_string(nesim_lm_arch_name(g->m->cfg.arch)));
    json_object_set_new(j, "nodes", nodes);
    json_object_set_new(j, "output", json_string(g->node[g->output].name));
    return j;
}

int nesim_lm_spec_build(const char *dir, nesim_lm_spiked_set set, nesim_coding coding, double k, json_t **spec,
                        nesim_error *err)
{
    *spec = NULL;
    nesim_lm_model *m;
    nesim_lm_graph *g = NULL;
    int rc = nesim_lm_open(dir, &m, err);
    if (!rc)
        rc = nesim_lm_graph_from_model(m, set, coding, k, &g, err);
    if (!rc && !(*spec = nesim_lm_spec_json(g, dir)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
    return rc;
}

int nesim_lm_spec_is(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DISABLE_EOF_CHECK, &je);
    int is = json_is_object(j) && json_object_get(j, "nesim_lm_spec");
    json_decref(j);
    return is;
}

/* The spec's checkpoint folder into *dir (caller frees); label names the
 * spec in messages. */
static int spec_checkpoint(const char *label, const json_t *root, char **dir, nesim_error *err)
{
    nesim_jctx c = {label, err};
    json_t *v = json_object_get(root, "nesim_lm_spec");
    if (!json_is_integer(v) || json_integer_value(v) != 2)
        return nesim_json_bad(&c, "nesim_lm_spec", "must be 2 (the format this build reads)");
    v = json_object_get(root, "checkpoint");
    if (!json_is_string(v))
        return nesim_json_bad(&c, "checkpoint", "must be the checkpoint folder's path");
    if (!(*dir = strdup(json_string_value(v))))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    return NESIM_OK;
}

/* Reads the spec file at path into *root and its checkpoint into *dir. */
static int spec_dir(const char *path, json_t **root, char **dir, nesim_error *err)
{
    int rc = nesim_json_load_object(path, (size_t)16 << 20, "language-model spec", "16 MiB", root, err);
    return rc ? rc : spec_checkpoint(path, *root, dir, err);
}

/* Perplexity of ids[0..n) (next-token NLL over n - 1 predictions), the
 * projections played as po says. */
/* --threads: 0 is every core. */
static int threads_of(const nesim_lm_job_opts *o) { return o->threads > 0 ? o->threads : nesim_par_cores(); }

/* Threads and ranks of a run (--threads; mpirun). */
static void share_work(nesim_lm_run *r, const nesim_lm_job_opts *o)
{
    nesim_lm_run_set_threads(r, threads_of(o));
    nesim_lm_run_set_comm(r, nesim_comm_size(o->comm) > 1 ? o->comm : NULL);
}

static int perplexity(const nesim_lm_graph *g, const nesim_lm_proj_opts *po, const nesim_lm_job_opts *o,
                      const int32_t *ids, size_t n, float *lg,
                      double *ppl, nesim_lm_totals *tot, nesim_error *err)
{
    nesim_lm_run *r;
    int rc = nesim_lm_run_new(g, po, &r, err);
    if (rc)
        return rc;
    share_work(r, o);
    double s = 0;
    for (size_t i = 0; i + 1 < n && !rc; i++)
        if (!(rc = nesim_lm_step(r, ids[i], lg, err)))
            s += nll(lg, g->vocab, ids[i + 1]);
    *ppl = exp(s / (double)(n - 1));
    *tot = *nesim_lm_run_totals(r);
    nesim_lm_run_free(r);
    return rc;
}

static int eval(const nesim_lm_job_opts *o, const nesim_lm_model *m, const nesim_lm_graph *g, json_t *rep, float *lg,
                nesim_error *err)
{
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n;
    int rc = read_text(o->eval_text, &text, err);
    if (rc)
        return rc;
    rc = nesim_lm_encode(m, text, &ids, &n, err);
    free(text);
    if (rc) {
        nesim_suffix(err, " (in %s)", o->eval_text);
        return rc;
    }
    size_t cap = o->eval_max ? o->eval_max : g->max_pos;
    if (cap > g->max_pos)
        cap = g->max_pos;
    if (n > cap)
        n = cap;
    if (n < 2) {
        free(ids);
        return nesim_fail(err, NESIM_EINVAL, "%s: needs at least 2 tokens", o->eval_text);
    }
    json_t *ev = json_object();
    json_object_set_new(rep, "eval", ev);
    json_object_set_new(ev, "file", json_string(o->eval_text));
    json_object_set_new(ev, "tokens", json_integer((json_int_t)n));
    nesim_lm_proj_opts *po = malloc((g->n_proj + 1) * sizeof *po);
    if (!po) {
        free(ids);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < g->n_proj; j++) /* the ANN: every projection graded */
        po[j] = g->node[g->proj_node[j]].po, po[j].spiked = 0;
    double ppl;
    nesim_lm_totals t;
    rc = perplexity(g, po, o, ids, n, lg, &ppl, &t, err);
    json_object_set_new(ev, "ann_ppl", json_real(ppl));
    json_t *rows = json_array();
    json_object_set_new(ev, "spiking", rows);
    size_t nk = o->ks ? o->nks : 1;
    for (size_t i = 0; i < nk && !rc; i++) {
        /* the graph's codings; --k values replace every spiked projection's k */
        double k = o->ks ? o->ks[i] : o->k;
        for (size_t j = 0; j < g->n_proj; j++) {
            po[j] = g->node[g->proj_node[j]].po;
            if (o->ks)
                po[j].k = k;
        }
        if (!(rc = perplexity(g, po, o, ids, n, lg, &ppl, &t, err))) {
            json_t *row = json_object();
            json_object_set_new(row, "k", json_real(k));
            json_object_set_new(row, "ppl", json_real(ppl));
            json_object_set_new(row, "sparsity",
                                json_real(t.spiked_inputs ? (double)t.silent_inputs / (double)t.spiked_inputs : 0));
            json_object_set_new(row, "window_sparsity",
                                json_real(t.slots ? 1.0 - (double)t.spikes / (double)t.slots : 0));
            json_object_set_new(row, "share_counts_le7",
                                json_real(t.spiked_inputs ? (double)t.small_inputs / (double)t.spiked_inputs : 0));
            json_object_set_new(row, "spikes_per_token", json_real((double)t.spikes / (double)t.tokens));
            json_array_append_new(rows, row);
        }
        if (o->progress)
            o->progress(o->user, (double)(i + 1) / (double)nk);
    }
    free(ids);
    free(po);
    return rc;
}

/* The short names of the spiked projections ("q_proj", ...: what follows
 * the last dot of their node names), each once, in graph order. */
static json_t *spiked_kinds(const nesim_lm_graph *g, const nesim_lm_proj_opts *po)
{
    json_t *a = json_array();
    for (size_t p = 0; p < g->n_proj; p++) {
        const nesim_lm_node *n = &g->node[g->proj_node[p]];
        if (!(po ? po[p].spiked : n->po.spiked))
            continue;
        const char *dot = strrchr(n->name, '.'), *kind = dot ? dot + 1 : n->name;
        int seen = 0;
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) seen |= !strcmp(json_string_value(v), kind);
        if (!seen)
            json_array_append_new(a, json_string(kind));
    }
    return a;
}

/* Mixtures of experts: which experts each moe node routed this token to,
 * and the share of the model's weights the token used (every weight but
 * those of the experts not routed). Returns 1 when the graph has one. */
static int moe_params(const nesim_lm_graph *g, const nesim_lm_run *r, json_t *tj, double *active_sum)
{
    double total = 0, idle = 0;
    int any = 0;
    json_t *ex = NULL;
    for (size_t i = 0; i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        if (n->type == NESIM_LMN_LINEAR || n->type == NESIM_LMN_EMBEDDING || n->type == NESIM_LMN_MOE)
            total += (double)n->w.count;
        if (n->type != NESIM_LMN_MOE)
            continue;
        any = 1;
        size_t k;
        const int32_t *sel = nesim_lm_run_routes(r, i, &k);
        json_t *a = json_array();
        for (size_t q = 0; q < k; q++)
            json_array_append_new(a, json_integer(sel[q]));
        if (!ex)
            ex = json_object();
        json_object_set_new(ex, n->name, a);
        for (size_t e = 0; e < n->n_experts; e++) {
            int routed = 0;
            for (size_t q = 0; q < k; q++)
                routed |= (size_t)sel[q] == e;
            if (!routed) /* shared weights between experts count once per expert here: the graph may repeat names */
                for (int j = 0; j < 3; j++)
                    idle += (double)g->node[n->experts[3 * e + j]].w.count;
        }
    }
    if (!any)
        return 0;
    double share = total > 0 ? (total - idle) / total : 0;
    json_object_set_new(tj, "experts", ex);
    json_object_set_new(tj, "active_param_share", json_real(share));
    *active_sum += share;
    return 1;
}

/* SpikingBrain's steps over a whole tensor: the prompt played once to learn
 * each projection's largest T over its tokens (values and counts do not
 * depend on T), then r plays it with those T. The report gets both virtual
 * times. */
typedef struct tsteps {
    int64_t *max;
} tsteps;
static void ts_code(void *user, size_t proj, size_t token, int64_t t0, int64_t steps, double vth)
{
    tsteps *t = user;
    if (steps > t->max[proj])
        t->max[proj] = steps;
}
static int tensor_steps(const nesim_lm_graph *g, const nesim_lm_proj_opts *po, const nesim_lm_job_opts *o,
                        const int32_t *ids,
                        size_t prefill, float *lg, nesim_lm_run *r, json_t *rep, nesim_error *err)
{
    nesim_lm_run *r0 = NULL;
    tsteps t = {calloc(g->n_proj + 1, sizeof(int64_t))};
    int rc = t.max ? nesim_lm_run_new(g, po, &r0, err) : nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (!rc) {
        share_work(r0, o);
        nesim_lm_sink sk = {.code = ts_code, .user = &t};
        nesim_lm_run_set_sink(r0, &sk);
    }
    for (size_t i = 0; !rc && i < prefill; i++)
        rc = nesim_lm_step(r0, ids[i], lg, err);
    json_t *so = json_object();
    json_object_set_new(so, "prefill", json_string("tensor"));
    json_object_set_new(so, "decode", json_string("row (each generated token is its own tensor)"));
    if (!rc)
        json_object_set_new(so, "prefill_ticks_row", json_integer(nesim_lm_run_tick(r0)));
    json_t *ta = json_array();
    for (size_t p = 0; !rc && p < g->n_proj; p++) {
        const nesim_lm_proj_opts *pc = nesim_lm_proj_coding(r, p);
        if (!pc->spiked || !nesim_coding_is_bitwise(pc->coding))
            continue;
        rc = nesim_lm_run_set_min_steps(r, p, t.max[p], err);
        json_t *pj = json_object();
        json_object_set_new(pj, "name", json_string(g->node[g->proj_node[p]].name));
        json_object_set_new(pj, "steps", json_integer(t.max[p]));
        json_array_append_new(ta, pj);
    }
    json_object_set_new(so, "tensor_steps", ta);
    json_object_set_new(rep, "steps_over", so);
    nesim_lm_run_free(r0);
    free(t.max);
    return rc;
}

int nesim_lm_job(const nesim_lm_job_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    nesim_lm_model *m = NULL;
    nesim_lm_run *r = NULL;
    nesim_npy_writer *w = NULL;
    int32_t *ids = NULL, *gen = NULL;
    size_t n = 0;
    float *lg = NULL;
    prices pr;
    json_t *rep = json_object(), *sroot = NULL;
    char *sdir = NULL;
    nesim_lm_graph *g = NULL;
    nesim_lm_recorder *rec = NULL;
    nesim_lm_timer *tm = NULL;
    char *spec_text = NULL;
    nesim_lm_job_opts oo = *o; /* o with the spec's folder and codings */
    const char *label = o->spec ? o->spec : "spec";
    int rc = NESIM_OK;
    if (o->spec_json) {
        sroot = json_incref((json_t *)o->spec_json);
        if (!(rc = spec_checkpoint(label, sroot, &sdir, err)))
            oo.dir = sdir;
    } else if (o->spec && !(rc = spec_dir(o->spec, &sroot, &sdir, err))) {
        oo.dir = sdir;
    }
    o = &oo;
    if (!rc)
        rc = nesim_lm_open_ranks(o->dir, nesim_comm_rank(o->comm), nesim_comm_size(o->comm), &m, err);
    /* steps over the whole prompt by default where the model's own code does
     * so (SpikingBrain-7B's checkpoints); a spec or other model: each token */
    if (!rc && oo.steps_tensor < 0)
        oo.steps_tensor = m->cfg.arch == NESIM_LM_GLA_SWA && !sroot;
    /* the input is checked before the graph is built: a synthetic
     * checkpoint makes its tensors then, which may take a while */
    const int have_input = o->prompt || o->tokens || o->ids;
    if (!rc && o->prompt)
        rc = nesim_lm_encode(m, o->prompt, &ids, &n, err);
    else if (!rc && o->tokens)
        rc = read_tokens(o->tokens, &ids, &n, err);
    else if (!rc && o->ids) {
        if (!(ids = malloc((o->n_ids ? o->n_ids : 1) * sizeof *ids)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        else
            memcpy(ids, o->ids, o->n_ids * sizeof *ids), n = o->n_ids;
    }
    const size_t prefill = o->ids ? (o->prefill < n ? o->prefill : n) : n;
    if (!rc && have_input && n + o->generate > m->cfg.max_pos)
        rc = nesim_fail(err, NESIM_EINVAL, "%zu prompt + %zu generated tokens exceed the position limit %zu",
                        n, o->generate, m->cfg.max_pos);
    if (!rc && !have_input && !o->eval_text)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: give --prompt TEXT, --tokens IDS.npy or --eval-text FILE", o->dir);
    for (size_t i = 0; !rc && i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= m->cfg.vocab)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: token %zu: id %d is not below vocab_size %zu",
                            o->tokens ? o->tokens : "prompt", i, ids[i], m->cfg.vocab);
    if (!rc && sroot)
        rc = nesim_lm_graph_from_json(m, sroot, label, &g, err);
    else if (!rc)
        rc = nesim_lm_graph_from_model(m, o->set, o->coding, o->k, &g, err);
    /* --spiked on a spec: every projection spiked, or none (a checkpoint's graph took it already) */
    nesim_lm_proj_opts *po_over = NULL;
    if (!rc && sroot && o->set_given && o->set != NESIM_LM_SET_RELEASED) {
        if (!(po_over = calloc(g->n_proj + 1, sizeof *po_over)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        for (size_t q = 0; !rc && q < g->n_proj; q++) {
            const nesim_lm_node *pn = &g->node[g->proj_node[q]];
            po_over[q] = pn->po;
            po_over[q].spiked = o->set == NESIM_LM_SET_ALL;
            if (o->set == NESIM_LM_SET_ALL && !pn->po.spiked)
                po_over[q].coding = o->coding, po_over[q].k = o->k;
        }
    }
    if (!rc && o->trace && o->eval_text)
        rc = nesim_fail(err, NESIM_EINVAL, "--trace records one sequence: give --prompt or --tokens, not --eval-text");
    if (!rc)
        rc = load_prices(o, &pr, rep, err);
    if (!rc && o->gpu) /* named boards must exist before the run */
        rc = nesim_gpu_list_check(o->gpu, err);
    if (!rc && !(lg = malloc(m->cfg.vocab * sizeof *lg)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    const int rank0 = nesim_comm_rank(o->comm) == 0; /* writes the trace and the files */
    if (!rc && o->output && n && rank0) {
        int64_t shape[2] = {(int64_t)(n + o->generate), (int64_t)m->cfg.vocab};
        rc = nesim_npy_writer_open(o->output, NESIM_F32, 2, shape, &w, err);
    }
    if (!rc) {
        const nesim_lm_config *c = &m->cfg;
        json_t *mj = json_object();
        json_object_set_new(mj, "dir", json_string(m->dir));
        json_object_set_new(mj, "architecture", json_string(nesim_lm_arch_name(c->arch)));
        json_object_set_new(mj, "layers", json_integer((json_int_t)c->layers));
        json_object_set_new(mj, "hidden", json_integer((json_int_t)c->hidden));
        json_object_set_new(mj, "intermediate", json_integer((json_int_t)c->inter));
        json_object_set_new(mj, "heads", json_integer((json_int_t)c->heads));
        json_object_set_new(mj, "kv_heads", json_integer((json_int_t)c->kv_heads));
        json_object_set_new(mj, "vocab", json_integer((json_int_t)c->vocab));
        json_object_set_new(rep, "model", mj);
        json_object_set_new(rep, "coding", json_string(nesim_coding_name(o->coding)));
        json_object_set_new(rep, "k", json_real(o->k));
        if (o->spec)
            json_object_set_new(rep, "spec", json_string(o->spec));
        json_object_set_new(rep, "spiked", spiked_kinds(g, po_over));
        json_object_set_new(rep, "nodes", json_integer((json_int_t)g->n));
    }
    if (!rc && n) {
        rc = nesim_lm_run_new(g, po_over, &r, err);
        if (!rc)
            share_work(r, o);
        if (!rc && o->expect_proj >= 0 && o->expect_counts)
            rc = nesim_lm_run_expect(r, (size_t)o->expect_proj, o->expect_counts, o->expect_vth, o->expect_tokens,
                                     err);
        if (!rc && o->trace && rank0) {
            json_t *sj = nesim_lm_spec_json(g, o->dir);
            if (!sj || !(spec_text = json_dumps(sj, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))))
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            json_decref(sj);
            if (!rc) {
                nesim_lm_record_opts ro = {.path = o->trace, .level = o->record, .g = g,
                                           .spec_file = o->spec ? o->spec : o->dir, .spec_text = spec_text,
                                           .chip = pr.on ? json_string_value(json_object_get(rep, "chip")) : NULL,
                                           .dense = pr.on ? json_string_value(json_object_get(rep, "dense")) : NULL,
                                           .tick_s = pr.tick_s > 0 ? pr.tick_s : 1e-3, .parent_run = o->parent_run,
                                           .note = o->note};
                rc = nesim_lm_record_begin(&ro, &rec, err);
            }
            if (!rc) {
                nesim_lm_sink sk = nesim_lm_record_sink(rec);
                nesim_lm_run_set_sink(r, &sk);
            }
        }
        rc = nesim_comm_agree(o->comm, rc, err); /* rank 0 alone may have failed */
        if (!rc && o->timing) { /* the spiked projections on the chip, timed token by token */
            nesim_chip *chip = NULL;
            if (o->chip && !strcmp(o->chip, "none"))
                rc = nesim_fail(err, NESIM_EINVAL, "--timing needs a chip (--chip)");
            else if (!(rc = nesim_chip_load(o->chip ? o->chip : "loihi", NULL, &chip, err)))
                rc = nesim_lm_timer_new(chip, g, r, (nesim_timing)o->timing, &tm, err);
            nesim_chip_free(chip);
            if (!rc) {
                nesim_lm_sink rs = rec ? nesim_lm_record_sink(rec) : (nesim_lm_sink){0};
                nesim_lm_sink ts = nesim_lm_timer_sink(tm, rec ? &rs : NULL);
                nesim_lm_run_set_sink(r, &ts);
            }
        }
        /* what it takes to hold the spiked projections on the chip (graded work runs beside it):
         * the --timing mapping, or the same mapping made for this alone */
        if (!rc && !(o->chip && !strcmp(o->chip, "none"))) {
            nesim_chip *chip = NULL;
            nesim_lm_timer *ut = tm;
            nesim_error e2 = {0};
            if (!ut && !nesim_chip_load(o->chip ? o->chip : "loihi", NULL, &chip, &e2) &&
                chip->kind == NESIM_CHIP_NEUROMORPHIC && nesim_lm_timer_new(chip, g, r, NESIM_TIMING_SIMPLE, &ut, &e2))
                ut = NULL; /* nothing spiked: nothing to hold */
            if (ut) {
                uint64_t cores, chips;
                nesim_lm_timer_usage(ut, &cores, &chips);
                json_object_set_new(rep, "chip_usage", json_pack("{s:I, s:I, s:s}", "cores", (json_int_t)cores, "chips",
                                                                 (json_int_t)chips, "holds", "the spiked projections"));
            }
            if (ut != tm)
                nesim_lm_timer_free(ut);
            nesim_chip_free(chip);
        }
        if (!rc && o->steps_tensor && prefill > 1)
            rc = tensor_steps(g, po_over, o, ids, prefill, lg, r, rep, err);
        json_t *toks = json_array();
        json_object_set_new(rep, "per_token", toks);
        if (!rc && !(gen = malloc((n + o->generate + 1) * sizeof *gen)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        nesim_lm_totals before, d, pre;
        /* every node's layer kind, for the per-token and whole-run breakdowns */
        nesim_lm_kind *kind = !rc ? malloc(g->n * sizeof *kind) : NULL;
        nesim_lm_totals kprev[NESIM_LMK_KINDS], know[NESIM_LMK_KINDS];
        int kseen[NESIM_LMK_KINDS];
        if (kind) {
            nesim_lm_graph_kinds(g, kind);
            kind_totals(g, r, kind, kprev, kseen);
        }
        memset(&pre, 0, sizeof pre);
        double active_sum = 0;
        size_t n_moe_tok = 0;
        size_t total = n + o->generate, played = 0;
        int32_t next = 0;
        for (size_t i = 0; i < total && !rc; i++) {
            int32_t tok = i < n ? ids[i] : next;
            before = *nesim_lm_run_totals(r);
            if (rec)
                rc = nesim_lm_record_token(rec, i, tok, nesim_lm_run_tick(r));
            /* rank 0 alone records: its failure ends every rank before the
             * token's exchanges (nothing, with one rank) */
            if ((rc = nesim_comm_agree(o->comm, rc, err)))
                break;
            if ((rc = nesim_lm_step(r, tok, lg, err)))
                break;
            if (i + 1 == prefill) {
                pre = *nesim_lm_run_totals(r);
                for (size_t p = 0; o->steps_tensor && p < g->n_proj && !rc; p++) /* generated tokens: their own T */
                    if (nesim_lm_proj_coding(r, p)->spiked && nesim_coding_is_bitwise(nesim_lm_proj_coding(r, p)->coding))
                        rc = nesim_lm_run_set_min_steps(r, p, 0, err);
                if (o->steps_tensor)
                    json_object_set_new(json_object_get(rep, "steps_over"), "prefill_ticks_tensor",
                                        json_integer(nesim_lm_run_tick(r)));
            }
            if (w) /* a failure ends the loop after this token's agreement */
                rc = nesim_npy_writer_append(w, lg, m->cfg.vocab * sizeof *lg, err);
            diff(&d, nesim_lm_run_totals(r), &before);
            next = argmax(lg, m->cfg.vocab);
            if (i >= prefill)
                gen[i - prefill] = tok;
            json_t *tj = totals_json(&d, &pr);
            json_object_del(tj, "tokens");
            json_object_set_new(tj, "pos", json_integer((json_int_t)i));
            json_object_set_new(tj, "id", json_integer(tok));
            const char *tx = nesim_lm_token_text(m, tok);
            if (tx)
                json_object_set_new(tj, "text", json_string(tx));
            json_object_set_new(tj, "phase", json_string(i < prefill ? "prefill" : "decode"));
            if (moe_params(g, r, tj, &active_sum))
                n_moe_tok++;
            if (kind) { /* this token's work by layer kind */
                kind_totals(g, r, kind, know, kseen);
                json_t *tk = json_object();
                for (int k = 0; k < NESIM_LMK_KINDS; k++) {
                    nesim_lm_totals dk;
                    diff(&dk, &know[k], &kprev[k]);
                    if (!kseen[k])
                        continue;
                    json_t *o1 = json_pack("{s:I, s:I, s:I}", "spikes", (json_int_t)dk.spikes, "sops",
                                           (json_int_t)dk.sops, "graded_ops",
                                           (json_int_t)(dk.dense_macs + dk.attn_macs + dk.elem_ops));
                    if (pr.on) {
                        json_object_set_new(o1, "spiking_j", json_real(spiking_j(&pr, &dk)));
                        json_object_set_new(o1, "graded_j", json_real(graded_j(&pr, &dk)));
                    }
                    json_object_set_new(tk, nesim_lm_kind_name((nesim_lm_kind)k), o1);
                }
                json_object_set_new(tj, "by_kind", tk);
                memcpy(kprev, know, sizeof kprev);
            }
            json_array_append_new(toks, tj);
            played = i + 1;
            int stop = !rc && rec && nesim_lm_record_interrupted(rec);
            if (nesim_comm_size(o->comm) > 1) { /* rank 0's failure or stop signal ends every rank */
                nesim_error e2 = {0};
                if (stop)
                    nesim_fail(&e2, NESIM_EIO, "interrupted by a signal");
                else if (rc)
                    e2 = *err;
                int arc = nesim_comm_agree(o->comm, stop ? NESIM_EIO : rc, &e2);
                if (arc && !stop)
                    rc = arc, *err = e2;
            }
            if (stop)
                break; /* the run is marked interrupted; the CLI then dies of the signal */
            if (o->progress)
                o->progress(o->user, (double)(i + 1) / (double)total * (o->eval_text ? 0.2 : 1.0));
        }
        if (!rc && nesim_comm_size(o->comm) > 1) { /* how the run was split: a simulation detail */
            nesim_comm_stats cs = nesim_comm_statistics(o->comm);
            uint64_t v[1] = {cs.bytes_sent};
            if (!(rc = nesim_comm_sum_u64(o->comm, v, 1, "the traffic summary", err))) {
                json_t *mj = json_object();
                json_object_set_new(mj, "ranks", json_integer(nesim_comm_size(o->comm)));
                json_object_set_new(mj, "split", json_string("rows: every projection's outputs (spiked and graded) "
                                                             "in blocks of 64 rows, one block range per rank, "
                                                             "gathered after each; the rest whole on every rank"));
                json_object_set_new(mj, "bytes_sent", json_integer((json_int_t)v[0]));
                json_object_set_new(mj, "bytes_per_token",
                                    json_real(played ? (double)v[0] / (double)played : 0));
                json_object_set_new(mj, "collectives", json_integer((json_int_t)cs.collectives));
                json_object_set_new(mj, "rank0_wait_s", json_real(cs.wait_s));
                json_object_set_new(rep, "mpi", mj);
            }
        }
        if (!rc && tm) {
            nesim_chiptime_result cr;
            if (!(rc = nesim_lm_timer_finish(tm, nesim_lm_run_tick(r), &cr, err))) {
                json_t *cj = nesim_chiptime_json(&cr, (nesim_timing)o->timing, -1);
                double ph_s[2] = {0, 0};
                size_t ph_n[2] = {0, 0};
                size_t ti;
                json_t *tv;
                json_array_foreach(toks, ti, tv) {
                    double s = nesim_lm_timer_token_s(tm, ti);
                    json_object_set_new(tv, "chip_s", json_real(s));
                    ph_s[ti >= prefill] += s;
                    ph_n[ti >= prefill]++;
                }
                uint64_t cores, chips;
                nesim_lm_timer_usage(tm, &cores, &chips);
                json_object_set_new(cj, "cores", json_integer((json_int_t)cores));
                json_object_set_new(cj, "chips", json_integer((json_int_t)chips));
                for (int k = 0; k < 2; k++)
                    if (ph_n[k]) {
                        json_t *pj = json_object();
                        json_object_set_new(pj, "tokens", json_integer((json_int_t)ph_n[k]));
                        json_object_set_new(pj, "per_token_s", json_real(ph_s[k] / (double)ph_n[k]));
                        json_object_set_new(pj, "tokens_per_s", json_real(ph_s[k] > 0 ? (double)ph_n[k] / ph_s[k] : 0));
                        json_object_set_new(cj, k ? "decode" : "prefill", pj);
                    }
                json_t *pp = json_array();
                for (size_t q = 0; q < g->n_proj; q++) {
                    if (!nesim_lm_proj_coding(r, q)->spiked)
                        continue;
                    json_t *pj = json_object();
                    json_object_set_new(pj, "name", json_string(g->node[g->proj_node[q]].name));
                    json_object_set_new(pj, "chip_s", json_real(nesim_lm_timer_proj_s(tm, q)));
                    json_array_append_new(pp, pj);
                }
                json_object_set_new(cj, "per_projection", pp);
                json_object_set_new(cj, "note", json_string("the spiked projections only: graded work (norms, "
                                                            "attention, graded projections) takes no chip time here"));
                json_object_set_new(rep, "chip_time", cj);
            }
        }
        if (!rc && n_moe_tok)
            json_object_set_new(rep, "active_param_share", json_real(active_sum / (double)n_moe_tok));
        if (!rc) {
            /* by layer kind: each node's share of the totals, summed by the block it is in */
            if (kind) {
                nesim_lm_totals by[NESIM_LMK_KINDS];
                int seen[NESIM_LMK_KINDS];
                kind_totals(g, r, kind, by, seen);
                json_t *bk = json_object();
                for (int k = 0; k < NESIM_LMK_KINDS; k++)
                    if (seen[k])
                        json_object_set_new(bk, nesim_lm_kind_name((nesim_lm_kind)k), totals_json(&by[k], &pr));
                json_object_set_new(rep, "by_kind", bk);
            }
            nesim_lm_lazy_stats lz;
            nesim_lm_lazy_stats_get(m, &lz);
            if (lz.made) /* weights made as they ran (synthetic "lazy" rules: routed experts) */
                json_object_set_new(rep, "lazy_weights",
                                    json_pack("{s:I, s:I, s:I, s:I}", "made", (json_int_t)lz.made, "hits",
                                              (json_int_t)lz.hits, "evicted", (json_int_t)lz.evicted, "peak_bytes",
                                              (json_int_t)lz.peak_bytes));
            json_object_set_new(rep, "total", totals_json(nesim_lm_run_totals(r), &pr));
            diff(&d, nesim_lm_run_totals(r), &pre);
            json_object_set_new(rep, "prefill", totals_json(&pre, &pr));
            json_object_set_new(rep, "decode", totals_json(&d, &pr));
            if (o->gpu)
                rc = gpu_baselines(o->gpu, &pre, &d, rep, err);
            const size_t ngen = played > prefill ? played - prefill : 0;
            if (m->token) {
                size_t len = 0;
                for (size_t i = 0; i < ngen; i++)
                    len += strlen(m->token[gen[i]] ? m->token[gen[i]] : "");
                char *s = malloc(len + 1);
                if (s) {
                    s[0] = 0;
                    for (size_t i = 0, at = 0; i < ngen; i++) {
                        const char *tx = m->token[gen[i]] ? m->token[gen[i]] : "";
                        memcpy(s + at, tx, strlen(tx) + 1);
                        at += strlen(tx);
                    }
                    json_object_set_new(rep, "generated_text", json_string(s));
                    free(s);
                }
            }
            json_t *ga = json_array();
            for (size_t i = 0; i < ngen; i++)
                json_array_append_new(ga, json_integer(gen[i]));
            json_object_set_new(rep, "generated", ga);
            if (o->prompt)
                json_object_set_new(rep, "prompt", json_string(o->prompt));
            /* per projection; their spike counts (graph order) in one
             * checksum, a cheap regression pin (tests/pinned/checksums.txt) */
            json_t *lj = json_array();
            uint64_t ck = NESIM_SPIKE_CHECKSUM_INIT;
            for (size_t p = 0; p < g->n_proj; p++) {
                const nesim_lm_node *nd = &g->node[g->proj_node[p]];
                const nesim_coded_stats *st = nesim_lm_proj_stats(r, p);
                ck = nesim_spike_checksum_add(ck, st->spikes, (uint32_t)p);
                json_t *pj = json_object();
                json_object_set_new(pj, "name", json_string(nd->name));
                json_object_set_new(pj, "spiked", json_boolean(nesim_lm_proj_coding(r, p)->spiked));
                json_object_set_new(pj, "spikes", json_integer(st->spikes));
                json_object_set_new(pj, "sops", json_integer(st->sops));
                json_object_set_new(pj, "silent", json_integer(st->silent));
                json_object_set_new(pj, "inputs", json_integer(st->inputs));
                int64_t small = 0;
                for (int b2 = 0; b2 < NESIM_CODED_HIST; b2++)
                    small += st->hist[b2];
                json_object_set_new(pj, "in", json_integer((json_int_t)nd->w.shape[1]));
                json_object_set_new(pj, "out", json_integer((json_int_t)nd->w.shape[0]));
                json_object_set_new(pj, "steps", json_integer(st->steps));
                json_object_set_new(pj, "frac_counts_0_7",
                                    json_real(st->inputs ? (double)small / (double)st->inputs : 0));
                json_array_append_new(lj, pj);
            }
            json_object_set_new(rep, "projections", lj);
            char hex[24];
            snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ck);
            json_object_set_new(rep, "spike_checksum", json_string(hex));
        }
        free(kind);
        if (rec) {
            int64_t id = nesim_lm_record_run_id(rec);
            nesim_error e2 = {0};
            nesim_trace_status st = rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE;
            int rc2 = nesim_lm_record_end(rec, rc ? NULL : rep, (int64_t)prefill, st, rc ? &e2 : err);
            rec = NULL;
            if (!rc && rc2)
                rc = rc2;
            if (!rc) {
                json_t *tj = json_object();
                json_object_set_new(tj, "file", json_string(o->trace));
                json_object_set_new(tj, "run", json_integer(id));
                json_object_set_new(rep, "trace", tj);
            }
        }
    }
    if (!rc && w) {
        rc = nesim_npy_writer_close(w, err);
        w = NULL;
    }
    if (!rc && o->eval_text)
        rc = eval(o, m, g, rep, lg, err);
    if (w)
        nesim_npy_writer_abort(w);
    nesim_lm_timer_free(tm);
    nesim_lm_run_free(r);
    nesim_lm_close(m);
    free(ids);
    free(gen);
    free(lg);
    nesim_lm_graph_free(g);
    free(spec_text);
    free(po_over);
    free(sdir);
    json_decref(sroot);
    if (rc) {
        json_decref(rep);
        return rc;
    }
    *report = rep;
    return NESIM_OK;
}

void nesim_lm_job_opts_init(nesim_lm_job_opts *o)
{
    memset(o, 0, sizeof *o);
    o->set = NESIM_LM_SET_RELEASED;
    o->coding = NESIM_CODE_BITWISE_BIDIR;
    o->k = 3;
    o->steps_tensor = -1;
    o->record = NESIM_TRACE_SPIKES;
    o->expect_proj = -1;
}

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

void nesim_lm_report_print(const json_t *rep, FILE *out)
{
    const json_t *m = json_object_get(rep, "model"), *tot = json_object_get(rep, "total");
    fprintf(out, "model      %s (%s): %lld layers, hidden %lld, %lld heads / %lld KV, vocab %lld\n",
            json_string_value(json_object_get(m, "dir")), json_string_value(json_object_get(m, "architecture")),
            (long long)num(m, "layers"), (long long)num(m, "hidden"), (long long)num(m, "heads"),
            (long long)num(m, "kv_heads"), (long long)num(m, "vocab"));
    if (json_object_get(rep, "spec"))
        fprintf(out, "coding     per projection, from %s; spiked somewhere:",
                json_string_value(json_object_get(rep, "spec")));
    else
        fprintf(out, "coding     %s, k = %g; spiked:", json_string_value(json_object_get(rep, "coding")), num(rep, "k"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rep, "spiked"), i, v) fprintf(out, " %s", json_string_value(v));
    fprintf(out, "\n");
    if (json_object_get(rep, "prompt"))
        fprintf(out, "prompt     %s\n", json_string_value(json_object_get(rep, "prompt")));
    if (json_object_get(rep, "generated_text"))
        fprintf(out, "generated  %s\n", json_string_value(json_object_get(rep, "generated_text")));
    if (tot) {
        const char *ph[] = {"prefill", "decode", "total"};
        fprintf(out, "\n%-8s %7s %11s %13s %9s %9s", "phase", "tokens", "spikes/tok", "SOPs/tok", "N = 0",
                "|N|<=7");
        int en = json_object_get(tot, "spiking_j") != NULL;
        if (en)
            fprintf(out, " %12s %12s %8s %12s", "spiking/tok", "graded/tok", "graded%", "ANN fp16/tok");
        fprintf(out, "\n");
        for (int p = 0; p < 3; p++) {
            const json_t *t = json_object_get(rep, ph[p]);
            double nt = num(t, "tokens");
            if (nt <= 0)
                continue;
            fprintf(out, "%-8s %7.0f %11.0f %13.0f %9.3f %9.3f", ph[p], nt, num(t, "spikes") / nt, num(t, "sops") / nt,
                    num(t, "sparsity"), num(t, "share_counts_le7"));
            if (en)
                fprintf(out, " %10.3g J %10.3g J %7.1f%% %10.3g J", num(t, "spiking_j") / nt, num(t, "graded_j") / nt,
                        100 * num(t, "graded_share"), num(t, "ann_fp16_j") / nt);
            fprintf(out, "\n");
        }
        const json_t *lw = json_object_get(rep, "lazy_weights");
        if (lw)
            fprintf(out, "weights made as they ran: %lld tensors made, %lld found kept, %lld dropped; at most %.1f MB held\n",
                    (long long)num(lw, "made"), (long long)num(lw, "hits"), (long long)num(lw, "evicted"),
                    num(lw, "peak_bytes") / 1e6);
        const json_t *cu = json_object_get(rep, "chip_usage");
        if (cu)
            fprintf(out, "chip: the spiked projections' weights and neurons take %lld cores on %lld chips of %s\n",
                    (long long)num(cu, "cores"), (long long)num(cu, "chips"),
                    json_string_value(json_object_get(rep, "chip")));
        const json_t *bk = json_object_get(rep, "by_kind");
        if (json_object_size(bk)) {
            fprintf(out, "\n%-10s %11s %13s %9s %12s", "by kind", "spikes/tok", "SOPs/tok", "N = 0", "graded/tok");
            if (en)
                fprintf(out, " %12s %12s %7s", "spiking J", "graded J", "share");
            fprintf(out, "\n");
            double all = en ? num(tot, "spiking_j") + num(tot, "graded_j") : 0;
            const char *kn;
            json_t *kt;
            json_object_foreach((json_t *)bk, kn, kt) {
                double nt = num(kt, "tokens") > 0 ? num(kt, "tokens") : 1;
                fprintf(out, "%-10s %11.0f %13.0f %9.3f %12.4g", kn, num(kt, "spikes") / nt, num(kt, "sops") / nt,
                        num(kt, "sparsity"),
                        (num(kt, "dense_macs") + num(kt, "attention_macs") + num(kt, "element_ops")) / nt);
                if (en)
                    fprintf(out, " %10.3g J %10.3g J %6.1f%%", num(kt, "spiking_j") / nt, num(kt, "graded_j") / nt,
                            all > 0 ? 100 * (num(kt, "spiking_j") + num(kt, "graded_j")) / all : 0);
                fprintf(out, "\n");
            }
            double ci = num(tot, "coded_inputs");
            if (ci > 0)
                fprintf(out, "spiked inputs: %.2f spikes per channel, %.1f %% silent, %.1f %% of counts |N| <= 7 "
                             "(SpikingBrain-7B reports 1.13, 18.4 %%, 94.1 %%)\n",
                        num(tot, "spikes") / ci, 100 * num(tot, "sparsity"), 100 * num(tot, "share_counts_le7"));
        }
        if (en)
            fprintf(out, "energy: spiking share on %s (SOPs, membrane updates), graded share (norms, attention, "
                         "graded projections) at %s's graded prices, ANN on %s fp16; routing not priced\n",
                    json_string_value(json_object_get(rep, "chip")), json_string_value(json_object_get(rep, "graded_on")),
                    json_string_value(json_object_get(rep, "dense")));
        size_t gi;
        json_t *gv;
        json_array_foreach(json_object_get(rep, "gpu_baselines"), gi, gv) {
            fprintf(out, "ANN on %-11s", json_string_value(json_object_get(gv, "profile")));
            for (int p = 0; p < 2; p++) {
                const json_t *rf = json_object_get(gv, ph[p]);
                if (rf)
                    fprintf(out, "  %s %.3g J/tok, %.3g us/tok (%s-bound)", ph[p], num(rf, "energy_j"),
                            num(rf, "time_s") * 1e6, json_string_value(json_object_get(rf, "bound")));
            }
            fprintf(out, "\n");
        }
        if (json_array_size(json_object_get(rep, "gpu_baselines")))
            fprintf(out, "GPU: bf16 roofline, board power x time; prompt as one batch, generation batch 1; "
                         "utilisation as each profile assumes (nesim chips NAME)\n");
        const json_t *so = json_object_get(rep, "steps_over");
        if (so && json_object_get(so, "prefill_ticks_tensor"))
            fprintf(out, "steps over the whole prompt (SpikingBrain's T per tensor): the prompt takes %lld virtual "
                         "ticks, %lld with each token's own T; same counts, same outputs\n",
                    (long long)num(so, "prefill_ticks_tensor"), (long long)num(so, "prefill_ticks_row"));
        const json_t *ct = json_object_get(rep, "chip_time");
        if (ct) {
            fprintf(out, "chip time (%s) on %s, %lld cores on %lld chips:", json_string_value(json_object_get(ct, "model")),
                    json_string_value(json_object_get(rep, "chip")), (long long)num(ct, "cores"),
                    (long long)num(ct, "chips"));
            for (int p = 0; p < 2; p++) {
                const json_t *pj = json_object_get(ct, ph[p]);
                if (pj)
                    fprintf(out, "  %s %.4g us/tok (%.4g tok per chip-second)", ph[p], num(pj, "per_token_s") * 1e6,
                            num(pj, "tokens_per_s"));
            }
            fprintf(out, "\n  (%s)\n", json_string_value(json_object_get(ct, "note")));
        }
    }
    const json_t *ev = json_object_get(rep, "eval");
    if (ev) {
        fprintf(out, "\nperplexity on %s (%lld tokens): ANN %.3f\n"
                     "(N = 0: share of coded inputs with count 0; sparsity: share of input x step slots of\n"
                     " each token's spike window without a spike, SpikingBrain's measure)\n", json_string_value(json_object_get(ev, "file")),
                (long long)num(ev, "tokens"), num(ev, "ann_ppl"));
        static const double sb_k[] = {2, 2.5, 3, 3.5, 4}, sb_sp[] = {0.730, 0.709, 0.692, 0.677, 0.664},
                            sb_le7[] = {0.989, 0.976, 0.951, 0.916, 0.877};
        fprintf(out, "%6s %10s %9s %9s %9s %12s   %s\n", "k", "spk ppl", "N = 0", "sparsity", "|N|<=7",
                "spikes/tok", "SpikingBrain-7B Table 11 (sparsity, |N|<=7)");
        json_array_foreach(json_object_get(ev, "spiking"), i, v)
        {
            double k = num(v, "k");
            fprintf(out, "%6g %10.3f %9.3f %9.3f %9.3f %12.0f", k, num(v, "ppl"), num(v, "sparsity"),
                    num(v, "window_sparsity"), num(v, "share_counts_le7"), num(v, "spikes_per_token"));
            for (int j = 0; j < 5; j++)
                if (fabs(k - sb_k[j]) < 1e-9)
                    fprintf(out, "   %.3f, %.3f", sb_sp[j], sb_le7[j]);
            fprintf(out, "\n");
        }
    }
}
