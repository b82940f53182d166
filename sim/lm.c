/* lm.c — a language model's graph played token by token, its projections
 * spiked or graded. See lm.h for the numerics. */
#include "sim/lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/par.h"
#include "sim/loads.h"

/* Per node at run time. */
typedef struct nrt {
    double *out;               /* [dim] this token's output */
    int64_t ready;             /* tick at which out is complete */
    nesim_coded_linear lin;    /* linear */
    double *norm_w;            /* rmsnorm: weight as double */
    double *inv_freq;          /* attention: [head_dim / 2] */
    double *kc, *vc;           /* attention: [cap][kv_heads * head_dim] */
    double *sk, *sv;           /* attention: sink keys and values [n_sinks][kv_heads * head_dim] */
    double *S;                 /* gla: the state [kv_heads][head_dim][head_dim], across tokens */
    double *h, *z;             /* moe: an expert's hidden vector; router scores [n_experts] */
    int32_t *sel;              /* moe: this token's experts [top_k], by rank */
    double *wsel;              /* moe: and their weights */
} nrt;

struct nesim_lm_run {
    const nesim_lm_graph *g;
    nrt *rt;                   /* [g->n] */
    size_t cap, pos;
    double *q, *k, *sc;        /* attention scratch: rotated q [dim], k [kv dim], scores [max_pos + 1] */
    float *xf, *yf;            /* a projection's input and output */
    nesim_coded_stats *st;     /* [n_proj] */
    nesim_lm_proj_opts *po;    /* [n_proj] */
    int64_t *min_steps;        /* [n_proj]: a whole tensor's T (0: each token's own) */
    nesim_lm_totals tot;
    nesim_lm_totals *node_tot; /* [g->n]: the part of tot each node did (a moe node: its experts too) */
    int64_t tick;              /* virtual time: where the next token starts */
    int threads;               /* per projection (nesim_lm_run_set_threads) */
    nesim_comm *comm;          /* ranks splitting each spiked projection's rows, or NULL */
    nesim_lm_sink sink;
    /* replay's check (nesim_lm_run_expect) */
    size_t exp_proj, exp_tokens;
    int64_t *exp_counts;
    double *exp_vth, *exp_u;
};

/* What a projection's observers need: which projection, whose sink. */
typedef struct pctx {
    const nesim_lm_run *r;
    size_t proj, out;
} pctx;

static void on_step(void *user, int64_t tick, int64_t events)
{
    const pctx *c = user;
    if (events)
        c->r->sink.activity(c->r->sink.user, c->proj, tick, events, events * (int64_t)c->out);
}

static void on_spike(void *user, uint32_t channel, int64_t tick, int sign)
{
    const pctx *c = user;
    c->r->sink.spike(c->r->sink.user, c->proj, channel, tick, sign);
}

int nesim_lm_run_new(const nesim_lm_graph *g, const nesim_lm_proj_opts *po, nesim_lm_run **out, nesim_error *err)
{
    *out = NULL;
    nesim_lm_run *r = calloc(1, sizeof *r);
    if (!r)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    r->g = g;
    size_t wide = 1, qmax = 1, kvmax = 1, sinks = 0;
    for (size_t i = 0; i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        wide = n->dim > wide ? n->dim : wide;
        if (n->type == NESIM_LMN_LINEAR && (size_t)n->w.shape[1] > wide)
            wide = (size_t)n->w.shape[1];
        if (n->type == NESIM_LMN_ATTENTION) {
            qmax = n->dim > qmax ? n->dim : qmax;
            kvmax = n->kv_heads * n->head_dim > kvmax ? n->kv_heads * n->head_dim : kvmax;
            sinks = n->n_sinks > sinks ? n->n_sinks : sinks;
        }
    }
    r->rt = calloc(g->n, sizeof *r->rt);
    r->q = malloc(qmax * sizeof *r->q);
    r->k = malloc(kvmax * sizeof *r->k);
    r->sc = malloc((g->max_pos + 1 + sinks) * sizeof *r->sc);
    r->xf = malloc(wide * sizeof *r->xf);
    r->yf = malloc(wide * sizeof *r->yf);
    r->st = calloc(g->n_proj + 1, sizeof *r->st);
    r->po = calloc(g->n_proj + 1, sizeof *r->po);
    r->min_steps = calloc(g->n_proj + 1, sizeof *r->min_steps);
    r->node_tot = calloc(g->n, sizeof *r->node_tot);
    int rc = !r->rt || !r->q || !r->k || !r->sc || !r->xf || !r->yf || !r->st || !r->po || !r->min_steps ||
                     !r->node_tot
                 ? nesim_fail(err, NESIM_ENOMEM, "out of memory")
                 : NESIM_OK;
    for (size_t i = 0; !rc && i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        nrt *t = &r->rt[i];
        if (!(t->out = malloc(n->dim * sizeof *t->out))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        if (n->type == NESIM_LMN_LINEAR) {
            /* coded layers borrow their name: the node's; a lazy weight's when it runs */
            if (!n->lazy)
                rc = nesim_coded_linear_init(&t->lin, n->name, &n->w, n->has_scale ? &n->scale : NULL, n->group,
                                             n->has_b ? &n->b : NULL, 0, 0, err);
            t->lin.exact_sums = 1;
            r->po[n->proj] = po ? po[n->proj] : n->po;
            nesim_coded_stats_init(&r->st[n->proj]);
            const nesim_lm_proj_opts *p = &r->po[n->proj];
            if (!rc && p->spiked && (!(p->k > 0) || !isfinite(p->k)))
                rc = nesim_fail(err, NESIM_EINVAL, "%s: k must be positive and finite (got %g)", n->name, p->k);
        } else if (n->type == NESIM_LMN_RMSNORM) {
            if (!(t->norm_w = malloc(n->dim * sizeof *t->norm_w)))
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            for (size_t j = 0; !rc && j < n->dim; j++)
                t->norm_w[j] = nesim_tensor_get(&n->w, j);
        } else if (n->type == NESIM_LMN_MOE) {
            size_t inter = 1;
            for (size_t e = 0; e < n->n_experts; e++)
                inter = g->node[n->experts[3 * e]].dim > inter ? g->node[n->experts[3 * e]].dim : inter;
            if (n->shared[0] >= 0 && g->node[n->shared[0]].dim > inter)
                inter = g->node[n->shared[0]].dim;
            if (!(t->h = malloc(inter * sizeof *t->h)) || !(t->z = malloc(n->n_experts * sizeof *t->z)) ||
                !(t->sel = malloc(n->top_k * sizeof *t->sel)) || !(t->wsel = malloc(n->top_k * sizeof *t->wsel)))
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        } else if (n->type == NESIM_LMN_GLA) {
            if (!(t->S = calloc(n->kv_heads * n->head_dim * n->head_dim, sizeof *t->S)) ||
                (n->has_norm && !(t->norm_w = malloc(n->head_dim * sizeof *t->norm_w))))
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory (%s's state)", n->name);
            for (size_t j = 0; !rc && n->has_norm && j < n->head_dim; j++)
                t->norm_w[j] = nesim_tensor_get(&n->w, j);
        } else if (n->type == NESIM_LMN_ATTENTION) {
            if (!(t->inv_freq = malloc(n->head_dim / 2 * sizeof *t->inv_freq)))
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            for (size_t j = 0; !rc && j < n->head_dim / 2; j++)
                t->inv_freq[j] = 1.0 / pow(n->rope_theta, (double)(2 * j) / (double)n->head_dim);
            const size_t ns = n->n_sinks * n->kv_heads * n->head_dim;
            if (!rc && ns && (!(t->sk = malloc(ns * sizeof *t->sk)) || !(t->sv = malloc(ns * sizeof *t->sv))))
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            for (size_t j = 0; !rc && j < ns; j++) {
                t->sk[j] = nesim_tensor_get(&n->sink_k, j);
                t->sv[j] = nesim_tensor_get(&n->sink_v, j);
            }
        }
    }
    if (rc) {
        nesim_lm_run_free(r);
        return rc;
    }
    *out = r;
    return NESIM_OK;
}

void nesim_lm_run_set_threads(nesim_lm_run *r, int threads) { r->threads = threads > 0 ? threads : 1; }
void nesim_lm_run_set_comm(nesim_lm_run *r, nesim_comm *comm) { r->comm = comm; }

void nesim_lm_run_free(nesim_lm_run *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->rt && i < r->g->n; i++) {
        nrt *t = &r->rt[i];
        free(t->out), free(t->norm_w), free(t->inv_freq), free(t->kc), free(t->vc), free(t->S);
        free(t->sk), free(t->sv);
        free(t->h), free(t->z), free(t->sel), free(t->wsel);
    }
    free(r->rt), free(r->q), free(r->k), free(r->sc), free(r->xf), free(r->yf), free(r->st), free(r->po);
    free(r->min_steps);
    free(r->node_tot);
    free(r->exp_counts), free(r->exp_vth), free(r->exp_u);
    free(r);
}

void nesim_lm_run_reset(nesim_lm_run *r)
{
    r->pos = 0;
    for (size_t i = 0; i < r->g->n; i++) /* a new sequence: recurrent states start at zero */
        if (r->rt[i].S)
            memset(r->rt[i].S, 0,
                   r->g->node[i].kv_heads * r->g->node[i].head_dim * r->g->node[i].head_dim * sizeof(double));
}
size_t nesim_lm_run_pos(const nesim_lm_run *r) { return r->pos; }
int64_t nesim_lm_run_tick(const nesim_lm_run *r) { return r->tick; }
const nesim_lm_totals *nesim_lm_run_totals(const nesim_lm_run *r) { return &r->tot; }
const nesim_lm_totals *nesim_lm_node_totals(const nesim_lm_run *r, size_t node) { return &r->node_tot[node]; }
const nesim_coded_stats *nesim_lm_proj_stats(const nesim_lm_run *r, size_t proj) { return &r->st[proj]; }
const nesim_lm_proj_opts *nesim_lm_proj_coding(const nesim_lm_run *r, size_t proj) { return &r->po[proj]; }

int nesim_lm_run_set_min_steps(nesim_lm_run *r, size_t proj, int64_t steps, nesim_error *err)
{
    if (proj >= r->g->n_proj)
        return nesim_fail(err, NESIM_EINVAL, "projection %zu: the graph has %zu", proj, r->g->n_proj);
    if (steps < 0 || steps > NESIM_CODING_BITS_MAX ||
        (steps > 0 && (!r->po[proj].spiked || !nesim_coding_is_bitwise(r->po[proj].coding))))
        return nesim_fail(err, NESIM_EINVAL, "projection %zu: %lld steps (a spiked bitwise projection's, 0 .. %d)", proj,
                          (long long)steps, NESIM_CODING_BITS_MAX);
    r->min_steps[proj] = steps;
    return NESIM_OK;
}

void nesim_lm_run_set_sink(nesim_lm_run *r, const nesim_lm_sink *sink)
{
    if (sink)
        r->sink = *sink;
    else
        memset(&r->sink, 0, sizeof r->sink);
}

int nesim_lm_run_expect(nesim_lm_run *r, size_t proj, const int64_t *counts, const double *vth, size_t tokens,
                        nesim_error *err)
{
    const nesim_lm_graph *g = r->g;
    if (proj >= g->n_proj || !r->po[proj].spiked)
        return nesim_fail(err, NESIM_EINVAL, "projection %zu is not a spiked projection of the model", proj);
    const size_t in = (size_t)g->node[g->proj_node[proj]].w.shape[1];
    free(r->exp_counts), free(r->exp_vth), free(r->exp_u);
    r->exp_counts = malloc((tokens ? tokens : 1) * in * sizeof *r->exp_counts);
    r->exp_vth = malloc((tokens ? tokens : 1) * sizeof *r->exp_vth);
    r->exp_u = malloc(in * sizeof *r->exp_u);
    if (!r->exp_counts || !r->exp_vth || !r->exp_u) {
        free(r->exp_counts), free(r->exp_vth), free(r->exp_u);
        r->exp_counts = NULL, r->exp_vth = NULL, r->exp_u = NULL;
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    memcpy(r->exp_counts, counts, tokens * in * sizeof *counts);
    memcpy(r->exp_vth, vth, tokens * sizeof *vth);
    r->exp_proj = proj;
    r->exp_tokens = tokens;
    return NESIM_OK;
}

/* The replay check of projection `proj`'s input xf at the current token. */
static int check_expected(const nesim_lm_run *r, const nesim_coded_linear *L, size_t proj, const nesim_coded_opts *o,
                          const float *xf, nesim_error *err)
{
    const size_t tok = (size_t)r->tot.tokens, in = L->in;
    if (tok >= r->exp_tokens)
        return nesim_fail(err, NESIM_EINVAL, "token %zu: the recorded run has only %zu tokens", tok, r->exp_tokens);
    double vth;
    int rc = nesim_coded_dense_input(o, xf, in, r->exp_u, &vth, err);
    if (rc)
        return rc;
    if (vth != r->exp_vth[tok])
        return nesim_fail(err, NESIM_EINVAL, "token %zu: %s: threshold %.17g now, %.17g recorded: the recomputation "
                          "does not reach the recorded activity (weights or nesim changed?)",
                          tok, L->name, vth, r->exp_vth[tok]);
    for (size_t i = 0; i < in; i++) {
        int64_t now = llround(r->exp_u[i] / vth), was = r->exp_counts[tok * in + i];
        if (now != was)
            return nesim_fail(err, NESIM_EINVAL, "token %zu: %s, channel %zu: count %lld now, %lld recorded: the "
                              "recomputation does not reach the recorded activity", tok, L->name, i, (long long)now,
                              (long long)was);
    }
    return NESIM_OK;
}

/* Rows [lo, hi) of a graded projection: y[o] = float(sum_i W[o, i] x[i] in
 * double, in i order) + bias: each row whole, so any split gives the same
 * bits. */
static void graded_rows(const nesim_coded_linear *L, const float *xf, double *y, size_t lo, size_t hi)
{
    const size_t in = L->in;
    const unsigned char *W = L->weight.data;
    const size_t esz = nesim_dtype_size(L->weight.dtype);
    for (size_t o = lo; o < hi; o++) {
        const unsigned char *row = W + o * in * esz;
        double s = 0;
        switch (L->weight.dtype) { /* one loop per dtype: the loads inline */
        case NESIM_F32: for (size_t i = 0; i < in; i++) s += (double)ld_f32(row + 4 * i) * (double)xf[i]; break;
        case NESIM_BF16: for (size_t i = 0; i < in; i++) s += (double)ld_bf16(row + 2 * i) * (double)xf[i]; break;
        case NESIM_F16: for (size_t i = 0; i < in; i++) s += (double)ld_f16(row + 2 * i) * (double)xf[i]; break;
        case NESIM_I8: { /* w = q x scale, formed in double (exact), as a float64 checkpoint of w would hold it */
            const size_t g = L->has_scales ? L->group : in, G = in / g;
            for (size_t i = 0; i < in; i++) {
                double sc = L->has_scales ? (double)ld_f32((const unsigned char *)L->scales.data + 4 * (o * G + i / g)) : 1.0;
                s += (double)(int8_t)row[i] * sc * (double)xf[i];
            }
            break;
        }
        default: for (size_t i = 0; i < in; i++) s += nesim_ld(L->weight.dtype, row, i) * (double)xf[i]; break;
        }
        if (L->has_bias)
            s += nesim_tensor_get(&L->bias, o);
        y[o] = (double)(float)s;
    }
}

typedef struct graded_job {
    const nesim_coded_linear *L;
    const float *xf;
    double *y;
    size_t lo, hi;
} graded_job;

static void graded_part(void *ctx, int k, int n)
{
    const graded_job *j = ctx;
    size_t a, b;
    nesim_par_split(j->hi - j->lo, 4, k, n, &a, &b);
    graded_rows(j->L, j->xf, j->y, j->lo + a, j->lo + b);
}

/* Below this many multiply-adds a graded projection takes one thread. */
#define GRADED_PAR_MIN ((size_t)1 << 20)

/* A graded projection, y = W x (+ b), rows split over the ranks (blocks of
 * 64, then gathered) and over the threads: the same bits for any split. */
static int graded(nesim_lm_run *r, const nesim_coded_linear *L, double *y, nesim_error *err)
{
    const int K = nesim_comm_size(r->comm);
    graded_job j = {L, r->xf, y, 0, L->out};
    if (K > 1)
        nesim_par_split(L->out, NESIM_RANK_ROWS, nesim_comm_rank(r->comm), K, &j.lo, &j.hi);
    int threads = L->in * (j.hi - j.lo) < GRADED_PAR_MIN ? 1 : r->threads;
    if (threads > 1)
        nesim_par_run(threads, graded_part, &j);
    else
        graded_rows(L, r->xf, y, j.lo, j.hi);
    if (K == 1)
        return NESIM_OK;
    size_t *bytes = malloc((size_t)K * sizeof *bytes);
    if (!bytes)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int k = 0; k < K; k++) {
        size_t a, b;
        nesim_par_split(L->out, NESIM_RANK_ROWS, k, K, &a, &b);
        bytes[k] = (b - a) * sizeof *y;
    }
    const void *all;
    int rc = nesim_comm_allgatherv(r->comm, y + j.lo, bytes, &all, "the exchange of a projection's rows", err);
    free(bytes);
    if (rc)
        return nesim_context(err, "projection '%s': ", L->name);
    if (all != (const void *)y) /* blocks in rank order: y itself */
        memcpy(y, all, L->out * sizeof *y);
    return NESIM_OK;
}

/* A projection: y = L(float(x)), spiked (coded, event by event, from tick
 * t0) or graded (dense in double); *t_end: the tick after its last step. */
static int project(nesim_lm_run *r, const nesim_coded_linear *L, size_t proj, const double *x, double *y, int64_t t0,
                   int64_t *t_end, nesim_error *err)
{
    nesim_coded_stats *acc = &r->st[proj];
    const size_t in = L->in;
    for (size_t i = 0; i < in; i++)
        r->xf[i] = (float)x[i];
    r->tot.equiv_macs += (int64_t)(in * L->out);
    *t_end = t0;
    if (r->po[proj].spiked) {
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.coding = r->po[proj].coding;
        o.k = r->po[proj].k;
        o.t0 = t0;
        o.min_steps = r->min_steps[proj];
        o.threads = r->threads;
        o.comm = r->comm;
        pctx c = {r, proj, L->out};
        if (r->sink.activity)
            o.on_step = on_step, o.user = &c;
        if (r->sink.spike)
            o.on_spike = on_spike, o.spike_user = &c;
        int rc = r->exp_counts && proj == r->exp_proj ? check_expected(r, L, proj, &o, r->xf, err) : NESIM_OK;
        nesim_coded_stats st;
        if (!rc)
            rc = nesim_coded_linear_forward(L, &o, r->xf, r->yf, &st, err);
        if (rc)
            return rc;
        if (r->sink.code)
            r->sink.code(r->sink.user, proj, (size_t)r->tot.tokens, t0, st.steps, st.vth);
        *t_end = st.t_end;
        nesim_coded_stats_add(acc, &st);
        r->tot.spikes += st.spikes;
        r->tot.sops += st.sops;
        r->tot.updates += st.updates;
        r->tot.spiked_inputs += st.inputs;
        r->tot.slots += st.inputs * st.steps;
        r->tot.silent_inputs += st.silent;
        for (int b = 0; b < NESIM_CODED_HIST; b++)
            r->tot.small_inputs += st.hist[b];
        for (size_t o2 = 0; o2 < L->out; o2++)
            y[o2] = r->yf[o2];
        return NESIM_OK;
    }
    int rc = graded(r, L, y, err);
    if (rc)
        return rc;
    acc->samples++;
    r->tot.dense_macs += (int64_t)(in * L->out);
    return NESIM_OK;
}

static int grow_cache(nesim_lm_run *r, size_t need, nesim_error *err)
{
    if (need <= r->cap)
        return NESIM_OK;
    size_t cap = r->cap ? r->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > r->g->max_pos)
        cap = r->g->max_pos;
    for (size_t i = 0; i < r->g->n; i++) {
        const nesim_lm_node *n = &r->g->node[i];
        if (n->type != NESIM_LMN_ATTENTION)
            continue;
        const size_t KV = n->kv_heads * n->head_dim;
        double *a = realloc(r->rt[i].kc, cap * KV * sizeof(double));
        if (!a)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory (KV cache of %zu positions)", cap);
        r->rt[i].kc = a;
        double *b = realloc(r->rt[i].vc, cap * KV * sizeof(double));
        if (!b)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory (KV cache of %zu positions)", cap);
        r->rt[i].vc = b;
    }
    r->cap = cap;
    return NESIM_OK;
}

/* Hugging Face's rotate_half RoPE: pairs (i, i + d/2). */
static void rope(const double *inv_freq, size_t pos, double *x, size_t heads, size_t hd)
{
    const size_t half = hd / 2;
    for (size_t j = 0; j < half; j++) {
        double a = (double)pos * inv_freq[j], c = cos(a), s = sin(a);
        for (size_t h = 0; h < heads; h++) {
            double *p = x + h * hd, x1 = p[j], x2 = p[j + half];
            p[j] = x1 * c - x2 * s;
            p[j + half] = x2 * c + x1 * s;
        }
    }
}

/* W8ASpike's int8 fake quantization of one token's head: x -> round(x / s) s
 * with s = clamp(max|x| / 127, 1e-5, 1e4), the integer clamped to [-128, 127]. */
void nesim_lm_int8_fake_quant(double *x, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(x[i]));
    double s = mx / 127.0;
    s = s < 1e-5 ? 1e-5 : s > 1e4 ? 1e4 : s;
    for (size_t i = 0; i < n; i++) {
        double q = nearbyint(x[i] / s);
        x[i] = (q > 127 ? 127 : q < -128 ? -128 : q) * s;
    }
}

/* A spike-coded query head: its values become counts times V_th. */
static void code_query(double *x, size_t n, double k)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m += fabs(x[i]);
    double vth = m / (double)n / k;
    vth = vth < 1e-5 ? 1e-5 : vth > 1e4 ? 1e4 : vth;
    for (size_t i = 0; i < n; i++)
        x[i] = nearbyint(x[i] / vth) * vth;
}

/* Causal attention at position p: q, k, v from the node's inputs. */
static void attention(nesim_lm_run *r, const nesim_lm_node *n, nrt *t, size_t p)
{
    const size_t nh = n->heads, nkv = n->kv_heads, hd = n->head_dim, Q = nh * hd, KV = nkv * hd;
    const double *qi = r->rt[n->in[0]].out, *ki = r->rt[n->in[1]].out, *vi = r->rt[n->in[2]].out;
    memcpy(r->q, qi, Q * sizeof *r->q);
    memcpy(r->k, ki, KV * sizeof *r->k);
    rope(t->inv_freq, p, r->q, nh, hd);
    rope(t->inv_freq, p, r->k, nkv, hd);
    r->tot.elem_ops += 3 * (int64_t)(Q + KV);
    memcpy(t->kc + p * KV, r->k, KV * sizeof(double));
    memcpy(t->vc + p * KV, vi, KV * sizeof(double));
    if (n->kv_int8) { /* the cache holds int8 values: per token and KV head */
        for (size_t g = 0; g < nkv; g++) {
            nesim_lm_int8_fake_quant(t->kc + p * KV + g * hd, hd);
            nesim_lm_int8_fake_quant(t->vc + p * KV + g * hd, hd);
        }
        r->tot.elem_ops += 3 * 2 * (int64_t)KV;
    }
    if (n->q_k > 0) { /* the query spike-coded per head */
        for (size_t h = 0; h < nh; h++)
            code_query(r->q + h * hd, hd, n->q_k);
        r->tot.elem_ops += 3 * (int64_t)Q;
    }
    /* the sinks first (always visible), then the window's positions */
    const size_t lo = n->window && p + 1 > n->window ? p + 1 - n->window : 0, ns = n->n_sinks, cnt = ns + p + 1 - lo;
    const double scale = 1.0 / sqrt((double)hd);
    for (size_t h = 0; h < nh; h++) {
        const size_t g = h / (nh / nkv);
        const double *qh = r->q + h * hd;
        double mx = -INFINITY;
        for (size_t j = 0; j < cnt; j++) {
            const double *kj = j < ns ? t->sk + j * KV + g * hd : t->kc + (lo + j - ns) * KV + g * hd;
            double s = 0;
            for (size_t d = 0; d < hd; d++)
                s += qh[d] * kj[d];
            r->sc[j] = s * scale;
            if (r->sc[j] > mx)
                mx = r->sc[j];
        }
        double z = 0;
        for (size_t j = 0; j < cnt; j++)
            z += (r->sc[j] = exp(r->sc[j] - mx));
        double *oh = t->out + h * hd;
        memset(oh, 0, hd * sizeof *oh);
        for (size_t j = 0; j < cnt; j++) {
            const double a = r->sc[j] / z,
                         *vj = j < ns ? t->sv + j * KV + g * hd : t->vc + (lo + j - ns) * KV + g * hd;
            for (size_t d = 0; d < hd; d++)
                oh[d] += a * vj[d];
        }
    }
    r->tot.attn_macs += 2 * (int64_t)(nh * hd * cnt);
    r->tot.elem_ops += 4 * (int64_t)(nh * cnt);
}

/* Gated linear attention, one token: each KV head's state decays by alpha
 * along the key dimension and takes k^T v; each query head reads it. */
static void gla(nesim_lm_run *r, const nesim_lm_node *n, nrt *t)
{
    const size_t nh = n->heads, nkv = n->kv_heads, hd = n->head_dim, per = nh / nkv;
    const double *q = r->rt[n->in[0]].out, *k = r->rt[n->in[1]].out, *v = r->rt[n->in[2]].out,
                 *gk = n->key_gate ? NULL : r->rt[n->in[3]].out;
    const double scale = 1.0 / sqrt((double)hd);
    for (size_t g = 0; g < nkv; g++) {
        double *S = t->S + g * hd * hd;
        for (size_t i = 0; i < hd; i++) {
            const double ki = k[g * hd + i];
            double alpha;
            if (n->key_gate) {
                alpha = 1.0 - ki; /* the key-tied gate */
            } else {
                const double a = gk[g * hd + i];
                /* log sigmoid(a) = -log(1 + exp(-a)), stably */
                const double ls = a >= 0 ? -log1p(exp(-a)) : a - log1p(exp(a));
                alpha = exp(ls / n->gate_norm);
            }
            double *row = S + i * hd;
            for (size_t j = 0; j < hd; j++)
                row[j] = alpha * row[j] + ki * v[g * hd + j];
        }
    }
    for (size_t h = 0; h < nh; h++) {
        const double *S = t->S + (h / per) * hd * hd, *qh = q + h * hd;
        double *oh = t->out + h * hd;
        memset(oh, 0, hd * sizeof *oh);
        for (size_t i = 0; i < hd; i++) {
            const double qi = qh[i] * scale;
            const double *row = S + i * hd;
            for (size_t j = 0; j < hd; j++)
                oh[j] += qi * row[j];
        }
        if (n->has_norm) {
            double ss = 0;
            for (size_t j = 0; j < hd; j++)
                ss += oh[j] * oh[j];
            const double s = 1.0 / sqrt(ss / (double)hd + n->eps);
            for (size_t j = 0; j < hd; j++)
                oh[j] = oh[j] * s * t->norm_w[j];
        }
    }
    /* graded work: the state's outer products and the read-out are MACs; the
     * decay a multiply per state element, the gate 4 operations per element,
     * the norm 4 per output */
    r->tot.attn_macs += (int64_t)(nkv * hd * hd + nh * hd * hd);
    r->tot.elem_ops += (int64_t)(nkv * hd * hd + 4 * nkv * hd + (n->has_norm ? 4 * nh * hd : 0));
}

void nesim_lm_topk(const double *z, size_t n, size_t k, int32_t *sel)
{
    for (size_t q = 0; q < k; q++) {
        size_t best = n;
        for (size_t e = 0; e < n; e++) {
            int taken = 0;
            for (size_t j = 0; j < q; j++)
                taken |= (size_t)sel[j] == e;
            if (!taken && (best == n || z[e] > z[best] || (isnan(z[best]) && !isnan(z[e]))))
                best = e;
        }
        sel[q] = (int32_t)best;
    }
}

/* One expert (three routed linear nodes) on x from tick t0: out = down(silu(gate x) up x). */
/* A lazy projection's weight, made (or found) and its kernel set on it,
 * right before it runs: the views stay valid until the next make. */
static int lazy_ready(nesim_lm_run *r, size_t i, nesim_error *err)
{
    const nesim_lm_node *n = &r->g->node[i];
    if (!n->lazy)
        return NESIM_OK;
    nesim_tensor w, sc;
    int rc = nesim_lm_tensor_make(r->g->m, n->wname, &w, &sc, err);
    if (!rc)
        rc = nesim_coded_linear_init(&r->rt[i].lin, n->name, &w, n->has_scale ? &sc : NULL, n->group,
                                     n->has_b ? &n->b : NULL, 0, 0, err);
    r->rt[i].lin.exact_sums = 1;
    return rc;
}

static int expert(nesim_lm_run *r, const int *e3, const double *x, double *h, int64_t t0, int64_t *t_end,
                  nesim_error *err)
{
    const nesim_lm_graph *g = r->g;
    nrt *G = &r->rt[e3[0]], *U = &r->rt[e3[1]], *D = &r->rt[e3[2]];
    const nesim_lm_node *gn = &g->node[e3[0]], *un = &g->node[e3[1]], *dn = &g->node[e3[2]];
    int64_t tg, tu, td;
    int rc;
    if ((rc = lazy_ready(r, (size_t)e3[0], err)) || (rc = project(r, &G->lin, gn->proj, x, G->out, t0, &tg, err)) ||
        (rc = lazy_ready(r, (size_t)e3[1], err)) || (rc = project(r, &U->lin, un->proj, x, U->out, t0, &tu, err)))
        return rc;
    for (size_t j = 0; j < gn->dim; j++)
        h[j] = G->out[j] / (1.0 + exp(-G->out[j])) * U->out[j];
    r->tot.elem_ops += 5 * (int64_t)gn->dim;
    if ((rc = lazy_ready(r, (size_t)e3[2], err)) ||
        (rc = project(r, &D->lin, dn->proj, h, D->out, tg > tu ? tg : tu, &td, err)))
        return rc;
    G->ready = tg, U->ready = tu, D->ready = td;
    *t_end = td;
    return NESIM_OK;
}

/* A mixture of experts: the router picks top_k experts; only they run. */
static int moe(nesim_lm_run *r, const nesim_lm_node *n, nrt *t, const double *x, nesim_error *err)
{
    const size_t E = n->n_experts, in = n->dim;
    for (size_t e = 0; e < E; e++) {
        double z = 0;
        for (size_t j = 0; j < in; j++)
            z += nesim_tensor_get(&n->w, e * in + j) * x[j];
        t->z[e] = z;
    }
    r->tot.dense_macs += (int64_t)(E * in);
    if (n->act_sigmoid) {
        for (size_t e = 0; e < E; e++)
            t->z[e] = 1.0 / (1.0 + exp(-t->z[e]));
    } else {
        double mx = -INFINITY, sum = 0;
        for (size_t e = 0; e < E; e++)
            mx = t->z[e] > mx ? t->z[e] : mx;
        for (size_t e = 0; e < E; e++)
            sum += (t->z[e] = exp(t->z[e] - mx));
        for (size_t e = 0; e < E; e++)
            t->z[e] /= sum;
    }
    r->tot.elem_ops += 4 * (int64_t)E;
    nesim_lm_topk(t->z, E, n->top_k, t->sel);
    double wsum = 0;
    for (size_t k = 0; k < n->top_k; k++)
        wsum += (t->wsel[k] = t->z[t->sel[k]]);
    if (n->renormalize && wsum > 0)
        for (size_t k = 0; k < n->top_k; k++)
            t->wsel[k] /= wsum;
    memset(t->out, 0, in * sizeof *t->out);
    const int64_t t0 = t->ready;
    int64_t end = t0, te;
    int rc;
    for (size_t k = 0; k < n->top_k; k++) {
        const int *e3 = n->experts + 3 * t->sel[k];
        if ((rc = expert(r, e3, x, t->h, t0, &te, err)))
            return rc;
        const double *d = r->rt[e3[2]].out;
        for (size_t j = 0; j < in; j++)
            t->out[j] += t->wsel[k] * d[j];
        end = te > end ? te : end;
    }
    if (n->shared[0] >= 0) {
        if ((rc = expert(r, n->shared, x, t->h, t0, &te, err)))
            return rc;
        const double *d = r->rt[n->shared[2]].out;
        for (size_t j = 0; j < in; j++)
            t->out[j] += d[j];
        end = te > end ? te : end;
    }
    r->tot.elem_ops += 2 * (int64_t)(in * (n->top_k + (n->shared[0] >= 0)));
    t->ready = end;
    return NESIM_OK;
}

const int32_t *nesim_lm_run_routes(const nesim_lm_run *r, size_t node, size_t *k)
{
    const nesim_lm_node *n = &r->g->node[node];
    *k = n->type == NESIM_LMN_MOE ? n->top_k : 0;
    return n->type == NESIM_LMN_MOE ? r->rt[node].sel : NULL;
}

int nesim_lm_step(nesim_lm_run *r, int32_t token, float *logits, nesim_error *err)
{
    const nesim_lm_graph *g = r->g;
    const size_t p = r->pos;
    nesim_lm_totals *tot = &r->tot;
    if (token < 0 || (size_t)token >= g->vocab)
        return nesim_fail(err, NESIM_EINVAL, "token %zu: id %ld is outside the vocabulary [0, %zu)", p,
                          (long)token, g->vocab);
    if (p >= g->max_pos)
        return nesim_fail(err, NESIM_EINVAL, "token %zu: past the model's position limit (max_position_embeddings %zu)",
                          p, g->max_pos);
    int rc = grow_cache(r, p + 1, err);
    if (rc)
        return rc;
    const int64_t first = r->tick;
    for (size_t i = 0; i < g->n; i++) {
        const nesim_lm_node *n = &g->node[i];
        nrt *t = &r->rt[i];
        double *out = t->out;
        const size_t d = n->dim;
        const double *a = n->in[0] >= 0 ? r->rt[n->in[0]].out : NULL;
        const double *b = n->in[1] >= 0 ? r->rt[n->in[1]].out : NULL;
        const nesim_lm_totals before = *tot;
        t->ready = first;
        for (int j = 0; j < 4; j++)
            if (n->in[j] >= 0 && r->rt[n->in[j]].ready > t->ready)
                t->ready = r->rt[n->in[j]].ready;
        switch (n->type) {
        case NESIM_LMN_EMBEDDING:
            for (size_t j = 0; j < d; j++)
                out[j] = nesim_tensor_get(&n->w, (size_t)token * d + j);
            break;
        case NESIM_LMN_RMSNORM: {
            double ss = 0;
            for (size_t j = 0; j < d; j++)
                ss += a[j] * a[j];
            double s = 1.0 / sqrt(ss / (double)d + n->eps);
            for (size_t j = 0; j < d; j++)
                out[j] = a[j] * s * t->norm_w[j];
            tot->elem_ops += 4 * (int64_t)d;
            break;
        }
        case NESIM_LMN_LINEAR:
            if (n->routed)
                break; /* its moe node runs it */
            if ((rc = lazy_ready(r, i, err)) || (rc = project(r, &t->lin, n->proj, a, out, t->ready, &t->ready, err)))
                return rc;
            break;
        case NESIM_LMN_MOE:
            if ((rc = moe(r, n, t, a, err)))
                return rc;
            break;
        case NESIM_LMN_ATTENTION:
            attention(r, n, t, p);
            break;
        case NESIM_LMN_GLA:
            gla(r, n, t);
            break;
        case NESIM_LMN_ADD:
            for (size_t j = 0; j < d; j++)
                out[j] = a[j] + b[j];
            tot->elem_ops += (int64_t)d;
            break;
        case NESIM_LMN_MUL:
            for (size_t j = 0; j < d; j++)
                out[j] = a[j] * b[j];
            tot->elem_ops += (int64_t)d;
            break;
        case NESIM_LMN_SILU:
            for (size_t j = 0; j < d; j++)
                out[j] = a[j] / (1.0 + exp(-a[j]));
            tot->elem_ops += 4 * (int64_t)d;
            break;
        case NESIM_LMN_RELU:
            for (size_t j = 0; j < d; j++)
                out[j] = a[j] > 0 ? a[j] : 0;
            tot->elem_ops += (int64_t)d;
            break;
        case NESIM_LMN_SIGMOID:
            for (size_t j = 0; j < d; j++)
                out[j] = 1.0 / (1.0 + exp(-a[j]));
            tot->elem_ops += 4 * (int64_t)d;
            break;
        default:
            return nesim_fail(err, NESIM_EINTERNAL, "%s: unknown node type %d", n->name, (int)n->type);
        }
        nesim_lm_totals *nt = &r->node_tot[i];
        nt->spikes += tot->spikes - before.spikes;
        nt->sops += tot->sops - before.sops;
        nt->updates += tot->updates - before.updates;
        nt->spiked_inputs += tot->spiked_inputs - before.spiked_inputs;
        nt->silent_inputs += tot->silent_inputs - before.silent_inputs;
        nt->small_inputs += tot->small_inputs - before.small_inputs;
        nt->slots += tot->slots - before.slots;
        nt->dense_macs += tot->dense_macs - before.dense_macs;
        nt->attn_macs += tot->attn_macs - before.attn_macs;
        nt->elem_ops += tot->elem_ops - before.elem_ops;
        nt->equiv_macs += tot->equiv_macs - before.equiv_macs;
        nt->tokens++;
    }
    const nrt *o = &r->rt[g->output];
    for (size_t j = 0; j < g->vocab; j++)
        logits[j] = (float)o->out[j];
    if (r->sink.token)
        r->sink.token(r->sink.user, (size_t)tot->tokens, first, o->ready);
    r->tick = o->ready;
    r->pos++;
    tot->tokens++;
    return NESIM_OK;
}
