/* network.c — populations, projections and the event-driven run loop.
 *
 * The loop reads as three verbs per active tick: deliver (apply the inputs due
 * now), test (threshold for every neuron something reached), fire (reset,
 * record, send). Predictions of threshold crossings are queue events
 * cancelled by generation counter; an input re-predicts only when it could
 * bring the crossing earlier (its kick exceeds the neuron's remaining margin),
 * and a prediction made stale by inhibition is re-checked when it comes due. */
#include "sim/network.h"

#include <gsl/gsl_randist.h>
#include <stdlib.h>
#include <string.h>

#include "sim/queue.h"
#include "sim/rng.h"

enum { F_DUE = 1 };
#ifndef SLACK_KICKS
#define SLACK_KICKS 3.0
#endif
enum { STREAM_INIT = 0, STREAM_SOURCE = 1, STREAM_PROJ = 2 };

typedef struct pop {
    char name[64];
    nesim_dyn dyn;
    uint32_t n, first;
    double *state;
    nesim_init_dist init;
    gsl_rng *rng; /* Poisson draws */
    nesim_counters c;
    int record;
    int *out;
    int n_out;
} pop;

typedef struct proj {
    nesim_proj_spec s;
    uint64_t *row; /* NESIM_FIXED_PROB: CSR offsets per source, n_pre + 1 */
    uint32_t *col;
    uint64_t n_syn;
    double kick;
} proj;

struct nesim_net {
    double tick_s;
    uint64_t seed;
    int started;
    pop *pops;
    int n_pops;
    proj *projs;
    int n_projs;
    uint32_t n_total;
    /* per neuron, by global id */
    int64_t *t_state, *ref_until, *pred, *stamp;
    uint32_t *gen;
    double *budget, *kick;
    uint8_t *flags;
    int *pop_of;
    nesim_queue q;
    nesim_scratch *ws;
    uint32_t *cand, *fire;
    size_t n_cand, n_fire;
    nesim_spike *spikes;
    size_t n_spikes, cap_spikes;
    nesim_spike_sink sink;
    void *sink_ctx;
    nesim_queue_stats qs;
    double depth_wsum;
    int64_t depth_t, t0;
    uint64_t depth_last;
};

nesim_net *nesim_net_new(double tick_s, uint64_t seed, nesim_error *err)
{
    nesim_init();
    if (!(tick_s > 0) || !(tick_s < 1e6)) {
        nesim_fail(err, NESIM_EINVAL, "tick must be a positive number of seconds (got %g)", tick_s);
        return NULL;
    }
    nesim_net *net = calloc(1, sizeof *net);
    if (!net) {
        nesim_fail(err, NESIM_ENOMEM, "out of memory");
        return NULL;
    }
    net->tick_s = tick_s;
    net->seed = seed;
    return net;
}

void nesim_net_free(nesim_net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->n_pops; i++) {
        nesim_dyn_free(&net->pops[i].dyn);
        free(net->pops[i].state);
        free(net->pops[i].out);
        if (net->pops[i].rng)
            gsl_rng_free(net->pops[i].rng);
    }
    for (int i = 0; i < net->n_projs; i++) {
        free(net->projs[i].row);
        free(net->projs[i].col);
    }
    free(net->pops);
    free(net->projs);
    free(net->t_state);
    free(net->ref_until);
    free(net->pred);
    free(net->stamp);
    free(net->gen);
    free(net->budget);
    free(net->kick);
    free(net->flags);
    free(net->pop_of);
    free(net->cand);
    free(net->fire);
    free(net->spikes);
    if (net->started)
        nesim_queue_free(&net->q);
    nesim_scratch_free(net->ws);
    free(net);
}

int nesim_add_population(nesim_net *net, const nesim_pop_spec *spec, int *id, nesim_error *err)
{
    const char *name = spec->name ? spec->name : "";
    if (net->started)
        return nesim_fail(err, NESIM_ESTATE, "population '%s': network already running", name);
    for (int i = 0; i < net->n_pops; i++)
        if (strcmp(net->pops[i].name, name) == 0)
            return nesim_fail(err, NESIM_EINVAL, "population '%s': name already used", name);
    if (strlen(name) >= sizeof net->pops[0].name)
        return nesim_fail(err, NESIM_EINVAL, "population name '%.40s...' is too long", name);
    const nesim_model *m = spec->model ? nesim_model_find(spec->model) : NULL;
    if (!m)
        return nesim_fail(err, NESIM_EINVAL, "population '%s': unknown neuron model '%s'", name,
                          spec->model ? spec->model : "(none)");
    if (spec->n == 0)
        return nesim_fail(err, NESIM_EINVAL, "population '%s': empty (n must be > 0)", name);
    if ((uint64_t)net->n_total + spec->n >= (1ull << 31))
        return nesim_fail(err, NESIM_EINVAL, "population '%s': more than 2^31 neurons in all", name);
    const nesim_init_dist *in = &spec->v_init;
    if (!isfinite(in->a) || !isfinite(in->b) || (in->kind == NESIM_INIT_UNIFORM && !(in->b >= in->a)) ||
        (in->kind == NESIM_INIT_NORMAL && !(in->b >= 0)) || in->kind > NESIM_INIT_NORMAL)
        return nesim_fail(err, NESIM_EINVAL, "population '%s': bad initial distribution of v", name);
    pop *np = realloc(net->pops, (net->n_pops + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    net->pops = np;
    pop *p = &net->pops[net->n_pops];
    memset(p, 0, sizeof *p);
    int rc = nesim_dyn_init(&p->dyn, m, &spec->params, net->tick_s, err);
    if (rc)
        return nesim_context(err, "population '%s' (%s): ", name, m->name);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n = spec->n;
    p->first = net->n_total;
    p->init = *in;
    net->n_total += spec->n;
    if (id)
        *id = net->n_pops;
    net->n_pops++;
    return NESIM_OK;
}

static int pop_out_add(pop *p, int j)
{
    int *o = realloc(p->out, (p->n_out + 1) * sizeof *o);
    if (!o)
        return -1;
    p->out = o;
    p->out[p->n_out++] = j;
    return 0;
}

static int draw_fixed_prob(nesim_net *net, proj *pj, const pop *pre, const pop *post,
                           nesim_error *err)
{
    gsl_rng *r = nesim_rng_new(net->seed, STREAM_PROJ + (uint64_t)net->n_projs);
    size_t cap = 1024;
    pj->row = malloc((pre->n + 1) * sizeof *pj->row);
    pj->col = malloc(cap * sizeof *pj->col);
    if (!r || !pj->row || !pj->col)
        goto oom;
    double p = pj->s.p;
    uint64_t n = 0;
    int self = pj->s.pre == pj->s.post && pj->s.no_autapses;
    for (uint32_t i = 0; i < pre->n; i++) {
        pj->row[i] = n;
        if (p <= 0)
            continue;
        /* Geometric gaps between successes of independent Bernoulli(p) trials:
         * the same distribution as testing every pair, at the cost of the
         * synapses drawn. */
        int64_t j = -1;
        for (;;) {
            /* the gap in double: gsl_ran_geometric's unsigned int overflows
             * for p below ~1e-9 (and is 0 once 1 - p == 1) */
            double gap = p >= 1 ? 1 : floor(log(gsl_rng_uniform_pos(r)) / log1p(-p)) + 1;
            if (!(gap < (double)post->n - (double)j))
                break;
            j += (int64_t)gap;
            if (self && (uint32_t)j == i)
                continue;
            if (n == cap) {
                cap *= 2;
                uint32_t *c = realloc(pj->col, cap * sizeof *c);
                if (!c)
                    goto oom;
                pj->col = c;
            }
            pj->col[n++] = (uint32_t)j;
        }
    }
    pj->row[pre->n] = n;
    pj->n_syn = n;
    gsl_rng_free(r);
    return NESIM_OK;
oom:
    if (r)
        gsl_rng_free(r);
    return nesim_fail(err, NESIM_ENOMEM, "out of memory drawing connections");
}

int nesim_connect(nesim_net *net, const nesim_proj_spec *s, int *id, nesim_error *err)
{
    if (net->started)
        return nesim_fail(err, NESIM_ESTATE, "projection: network already running");
    if (s->pre < 0 || s->pre >= net->n_pops || s->post < 0 || s->post >= net->n_pops)
        return nesim_fail(err, NESIM_EINVAL, "projection: no population %d", s->pre < 0 || s->pre >= net->n_pops ? s->pre : s->post);
    pop *pre = &net->pops[s->pre], *post = &net->pops[s->post];
    const char *a = pre->name, *b = post->name;
    if (s->delay < 1)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: delay must be >= 1 tick (got %lld)", a, b, (long long)s->delay);
    if (!isfinite(s->weight))
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: weight must be finite", a, b);
    if (s->kind == NESIM_FIXED_PROB && !(s->p >= 0 && s->p <= 1))
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: p must be in [0, 1] (got %g)", a, b, s->p);
    if (s->kind == NESIM_ONE_TO_ONE && pre->n != post->n)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: one-to-one needs equal sizes (%u vs %u)", a, b, pre->n, post->n);
    if (s->kind > NESIM_FIXED_PROB)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: unknown connection rule", a, b);
    if (post->dyn.model->is_source)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: '%s' is a spike source and takes no input", a, b, b);
    proj *np = realloc(net->projs, (net->n_projs + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    net->projs = np;
    proj *pj = &net->projs[net->n_projs];
    memset(pj, 0, sizeof *pj);
    pj->s = *s;
    pj->kick = post->dyn.model->kick(&post->dyn, s->weight);
    if (s->kind == NESIM_FIXED_PROB) {
        int rc = draw_fixed_prob(net, pj, pre, post, err);
        if (rc) {
            free(pj->row);
            free(pj->col);
            return rc;
        }
    } else if (s->kind == NESIM_ALL_TO_ALL) {
        pj->n_syn = (uint64_t)pre->n * post->n;
        if (s->pre == s->post && s->no_autapses)
            pj->n_syn -= pre->n;
    } else {
        pj->n_syn = pre->n;
    }
    if (pop_out_add(pre, net->n_projs)) {
        free(pj->row);
        free(pj->col);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    if (id)
        *id = net->n_projs;
    net->n_projs++;
    return NESIM_OK;
}

int nesim_record(nesim_net *net, int p, int on, nesim_error *err)
{
    if (p < 0 || p >= net->n_pops)
        return nesim_fail(err, NESIM_EINVAL, "record: no population %d", p);
    net->pops[p].record = on;
    return NESIM_OK;
}

void nesim_set_sink(nesim_net *net, nesim_spike_sink sink, void *ctx)
{
    net->sink = sink;
    net->sink_ctx = ctx;
}

/* ---- the run loop ------------------------------------------------------- */

static void set_pred(nesim_net *net, uint32_t g, int64_t k)
{
    if (k == net->pred[g])
        return;
    net->pred[g] = k;
    net->gen[g]++;
    if (k != NESIM_NEVER)
        /* k > now, so the push cannot fail for time; memory failure is
         * reported by the next take via q.size bookkeeping being intact. */
        nesim_queue_push(&net->q, k, NESIM_EV_PREDICT, g, net->gen[g], NULL);
}

static void predict(nesim_net *net, pop *p, uint32_t g, int64_t lo, int64_t hi)
{
    double *st = p->state + (size_t)(g - p->first) * p->dyn.model->n_state;
    double m;
    int64_t k = p->dyn.model->predict(&p->dyn, st, net->t_state[g], net->ref_until[g], lo, hi, net->ws, &m);
    p->c.predictions++;
    net->budget[g] = m * (1 - 1e-12) - 1e-300;
    if (k != NESIM_NEVER || hi == NESIM_NEVER)
        set_pred(net, g, k);
}

static void source_next(nesim_net *net, pop *p, uint32_t g, int64_t after)
{
    double prob = p->dyn.c[0];
    if (prob <= 0)
        set_pred(net, g, NESIM_NEVER);
    else
        set_pred(net, g, after + (int64_t)gsl_ran_geometric(p->rng, prob));
}

static int start(nesim_net *net, nesim_error *err)
{
    uint32_t N = net->n_total;
    int64_t max_delay = 1;
    for (int j = 0; j < net->n_projs; j++)
        if (net->projs[j].s.delay > max_delay)
            max_delay = net->projs[j].s.delay;
    uint32_t ring = 8192;
    if (max_delay + 1 > ring && max_delay < (1 << 20))
        ring = (uint32_t)max_delay + 1;
    int rc = nesim_queue_init(&net->q, ring, err);
    if (rc)
        return rc;
    /* Prediction slack: a population's predictions may stop short of the
     * crossing by SLACK_KICKS of its largest incoming kick, so a few inputs
     * pass before a new prediction is needed (fewer logs and root searches,
     * fewer stale events). Changes cost only, never a spike. */
    for (int j = 0; j < net->n_projs; j++) {
        pop *post = &net->pops[net->projs[j].s.post];
        if (SLACK_KICKS * net->projs[j].kick > post->dyn.slack)
            post->dyn.slack = SLACK_KICKS * net->projs[j].kick;
    }
    net->started = 1;
    size_t n = N ? N : 1;
    net->t_state = calloc(n, sizeof *net->t_state);
    net->ref_until = calloc(n, sizeof *net->ref_until);
    net->pred = malloc(n * sizeof *net->pred);
    net->stamp = malloc(n * sizeof *net->stamp);
    net->gen = calloc(n, sizeof *net->gen);
    net->budget = calloc(n, sizeof *net->budget);
    net->kick = calloc(n, sizeof *net->kick);
    net->flags = calloc(n, 1);
    net->pop_of = malloc(n * sizeof *net->pop_of);
    net->cand = malloc(n * sizeof *net->cand);
    net->fire = malloc(n * sizeof *net->fire);
    net->ws = nesim_scratch_new();
    if (!net->t_state || !net->ref_until || !net->pred || !net->stamp || !net->gen || !net->budget ||
        !net->kick || !net->flags || !net->pop_of || !net->cand || !net->fire || !net->ws)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for %u neurons", N);
    for (uint32_t g = 0; g < N; g++) {
        net->pred[g] = NESIM_NEVER;
        net->stamp[g] = -1;
    }
    for (int i = 0; i < net->n_pops; i++) {
        pop *p = &net->pops[i];
        const nesim_model *m = p->dyn.model;
        p->state = calloc((size_t)p->n * m->n_state, sizeof(double));
        gsl_rng *r = nesim_rng_new(net->seed, STREAM_INIT + 16 * (uint64_t)i);
        p->rng = nesim_rng_new(net->seed, STREAM_SOURCE + 16 * (uint64_t)i);
        if (!p->state || !r || !p->rng) {
            if (r)
                gsl_rng_free(r);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for population '%s'", p->name);
        }
        for (uint32_t j = 0; j < p->n; j++) {
            double *st = p->state + (size_t)j * m->n_state;
            switch (p->init.kind) {
            case NESIM_INIT_CONST: st[0] = p->init.a; break;
            case NESIM_INIT_UNIFORM: st[0] = p->init.a + (p->init.b - p->init.a) * gsl_rng_uniform(r); break;
            case NESIM_INIT_NORMAL: st[0] = p->init.a + gsl_ran_gaussian(r, p->init.b); break;
            }
            uint32_t g = p->first + j;
            net->pop_of[g] = i;
            if (m->is_source)
                source_next(net, p, g, -1);
            else
                predict(net, p, g, 0, NESIM_NEVER);
        }
        gsl_rng_free(r);
    }
    return NESIM_OK;
}

static inline void touch(nesim_net *net, pop *p, uint32_t g, int64_t t)
{
    if (net->stamp[g] == t)
        return;
    net->stamp[g] = t;
    net->cand[net->n_cand++] = g;
    net->kick[g] = 0;
    net->flags[g] = 0;
    if (!p->dyn.model->is_source && net->t_state[g] != t) {
        double *st = p->state + (size_t)(g - p->first) * p->dyn.model->n_state;
        p->dyn.model->advance(&p->dyn, st, net->t_state[g], t, net->ref_until[g]);
        net->t_state[g] = t;
    }
    p->c.updates++;
}

static void deliver(nesim_net *net, const nesim_ev *e, int64_t t)
{
    const proj *pj = &net->projs[e->aux];
    pop *pre = &net->pops[pj->s.pre], *post = &net->pops[pj->s.post];
    uint32_t i = e->id - pre->first;
    const nesim_model *m = post->dyn.model;
    int ns = m->n_state, keep = m->integrates_while_refractory;
    double w = pj->s.weight, kick = pj->kick;
    uint32_t lo = 0, hi = 0;
    const uint32_t *col = NULL;
    if (pj->s.kind == NESIM_FIXED_PROB) {
        col = pj->col + pj->row[i];
        hi = (uint32_t)(pj->row[i + 1] - pj->row[i]);
    } else if (pj->s.kind == NESIM_ALL_TO_ALL) {
        hi = post->n;
    } else {
        lo = i;
        hi = i + 1;
    }
    int skip_self = pj->s.kind == NESIM_ALL_TO_ALL && pj->s.pre == pj->s.post && pj->s.no_autapses;
    uint64_t count = 0;
    for (uint32_t k = lo; k < hi; k++) {
        uint32_t j = col ? col[k] : k;
        if (skip_self && j == i)
            continue;
        uint32_t g = post->first + j;
        touch(net, post, g, t);
        int refr = t < net->ref_until[g];
        m->input(&post->dyn, post->state + (size_t)j * ns, w, refr);
        if (!refr || keep)
            net->kick[g] += kick;
        count++;
    }
    post->c.sops += count;
    post->c.events++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int emit(nesim_net *net, pop *p, int pi, uint32_t g, int64_t t, nesim_error *err)
{
    p->c.spikes++;
    if (p->record) {
        if (net->n_spikes == net->cap_spikes) {
            size_t cap = net->cap_spikes ? net->cap_spikes * 2 : 4096;
            nesim_spike *s = realloc(net->spikes, cap * sizeof *s);
            if (!s)
                return nesim_fail(err, NESIM_ENOMEM, "out of memory recording spikes");
            net->spikes = s;
            net->cap_spikes = cap;
        }
        net->spikes[net->n_spikes++] = (nesim_spike){t, g};
    }
    if (net->sink && net->sink(net->sink_ctx, t, g, pi))
        return nesim_fail(err, NESIM_EIO, "spike sink stopped the run at tick %lld", (long long)t);
    for (int k = 0; k < p->n_out; k++) {
        const proj *pj = &net->projs[p->out[k]];
        int rc = nesim_queue_push(&net->q, t + pj->s.delay, NESIM_EV_DELIVER, g, (uint32_t)p->out[k], err);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

static int step(nesim_net *net, int64_t t, nesim_error *err)
{
    nesim_ev *dv, *pv;
    size_t nd, np;
    int rc = nesim_queue_take(&net->q, t, 0, &dv, &nd, &pv, &np, err);
    if (rc)
        return rc;
    uint64_t depth = net->q.size;
    if (depth > net->qs.max_depth)
        net->qs.max_depth = depth;
    net->qs.ticks_active++;
    net->n_cand = 0;
    net->n_fire = 0;
    /* 1. deliver */
    for (size_t k = 0; k < nd; k++)
        deliver(net, &dv[k], t);
    for (size_t k = 0; k < np; k++) {
        uint32_t g = pv[k].id;
        pop *p = &net->pops[net->pop_of[g]];
        p->c.events++;
        if (pv[k].aux != net->gen[g])
            continue; /* cancelled */
        touch(net, p, g, t);
        net->flags[g] |= F_DUE;
    }
    /* 2. test */
    for (size_t k = 0; k < net->n_cand; k++) {
        uint32_t g = net->cand[k];
        pop *p = &net->pops[net->pop_of[g]];
        const nesim_model *m = p->dyn.model;
        if (m->is_source) {
            if (net->flags[g] & F_DUE)
                net->fire[net->n_fire++] = g;
            continue;
        }
        double *st = p->state + (size_t)(g - p->first) * m->n_state;
        if (t >= net->ref_until[g] && m->above(&p->dyn, st)) {
            net->fire[net->n_fire++] = g;
        } else if (net->flags[g] & F_DUE) {
            net->pred[g] = NESIM_NEVER; /* consumed; stale by inhibition */
            predict(net, p, g, t + 1, NESIM_NEVER);
        } else if (net->kick[g] > 0) {
            net->budget[g] -= net->kick[g];
            if (net->budget[g] < 0)
                predict(net, p, g, t + 1, net->pred[g]);
        }
    }
    /* 3. fire */
    if (net->n_fire > 1)
        qsort(net->fire, net->n_fire, sizeof *net->fire, cmp_u32);
    for (size_t k = 0; k < net->n_fire; k++) {
        uint32_t g = net->fire[k];
        int pi = net->pop_of[g];
        pop *p = &net->pops[pi];
        const nesim_model *m = p->dyn.model;
        if (m->is_source) {
            net->pred[g] = NESIM_NEVER;
            source_next(net, p, g, t);
        } else {
            double *st = p->state + (size_t)(g - p->first) * m->n_state;
            m->fire(&p->dyn, st);
            net->ref_until[g] = t + p->dyn.ref_ticks;
            net->pred[g] = NESIM_NEVER;
            net->gen[g]++;
            predict(net, p, g, t + 1, NESIM_NEVER);
        }
        if ((rc = emit(net, p, pi, g, t, err)))
            return rc;
    }
    nesim_queue_done(&net->q);
    net->depth_wsum += (double)net->depth_last * (double)(t - net->depth_t);
    net->depth_t = t;
    net->depth_last = net->q.size;
    return NESIM_OK;
}

int nesim_run(nesim_net *net, int64_t n_ticks, nesim_error *err)
{
    if (n_ticks < 0)
        return nesim_fail(err, NESIM_EINVAL, "run: negative duration (%lld ticks)", (long long)n_ticks);
    if (net->n_pops == 0)
        return nesim_fail(err, NESIM_EINVAL, "run: the network has no population");
    int rc;
    if (!net->started && (rc = start(net, err)))
        return rc;
    int64_t end = net->q.now + n_ticks;
    for (;;) {
        int64_t t = nesim_queue_peek_tick(&net->q);
        if (t >= end)
            break;
        if ((rc = step(net, t, err)))
            return rc;
    }
    net->depth_wsum += (double)net->depth_last * (double)(end - net->depth_t);
    net->depth_t = end;
    /* Jump the queue's clock over the silent tail. */
    net->q.now = end;
    int64_t span = end - net->t0;
    net->qs.mean_depth = span > 0 ? net->depth_wsum / (double)span : 0;
    return NESIM_OK;
}

/* ---- read-out ------------------------------------------------------------ */

int64_t nesim_now(const nesim_net *net) { return net->started ? net->q.now : 0; }
double nesim_tick_seconds(const nesim_net *net) { return net->tick_s; }
int nesim_population_count(const nesim_net *net) { return net->n_pops; }
const char *nesim_population_name(const nesim_net *net, int p) { return net->pops[p].name; }
uint32_t nesim_population_size(const nesim_net *net, int p) { return net->pops[p].n; }
uint32_t nesim_population_first(const nesim_net *net, int p) { return net->pops[p].first; }
const nesim_counters *nesim_population_counters(const nesim_net *net, int p) { return &net->pops[p].c; }
uint64_t nesim_projection_synapses(const nesim_net *net, int j) { return net->projs[j].n_syn; }
nesim_queue_stats nesim_queue_statistics(const nesim_net *net) { return net->qs; }

int nesim_projection_count(const nesim_net *net) { return net->n_projs; }
const nesim_proj_spec *nesim_projection_spec(const nesim_net *net, int j) { return &net->projs[j].s; }
const nesim_dyn *nesim_population_dyn(const nesim_net *net, int p) { return &net->pops[p].dyn; }

size_t nesim_projection_targets(const nesim_net *net, int j, uint32_t i, uint32_t *out, size_t cap)
{
    const proj *pj = &net->projs[j];
    const pop *post = &net->pops[pj->s.post];
    size_t n = 0;
    if (pj->s.kind == NESIM_FIXED_PROB) {
        for (uint64_t k = pj->row[i]; k < pj->row[i + 1]; k++, n++)
            if (n < cap)
                out[n] = pj->col[k];
    } else if (pj->s.kind == NESIM_ONE_TO_ONE) {
        if (cap)
            out[0] = i;
        n = 1;
    } else {
        int skip = pj->s.pre == pj->s.post && pj->s.no_autapses;
        for (uint32_t k = 0; k < post->n; k++)
            if (!(skip && k == i)) {
                if (n < cap)
                    out[n] = k;
                n++;
            }
    }
    return n;
}

int nesim_population_of(const nesim_net *net, uint32_t g)
{
    for (int i = 0; i < net->n_pops; i++)
        if (g >= net->pops[i].first && g < net->pops[i].first + net->pops[i].n)
            return i;
    return -1;
}

const nesim_spike *nesim_spikes(const nesim_net *net, size_t *n)
{
    *n = net->n_spikes;
    return net->spikes;
}

int nesim_neuron_state(nesim_net *net, uint32_t g, double *state, int max, nesim_error *err)
{
    int pi = nesim_population_of(net, g);
    if (pi < 0)
        return nesim_fail(err, NESIM_EINVAL, "no neuron %u", g);
    pop *p = &net->pops[pi];
    const nesim_model *m = p->dyn.model;
    int n = m->n_state < max ? m->n_state : max;
    if (!net->started) {
        return nesim_fail(err, NESIM_ESTATE, "neuron state: the network has not run yet");
    }
    double tmp[8] = {0};
    memcpy(tmp, p->state + (size_t)(g - p->first) * m->n_state, m->n_state * sizeof(double));
    if (m->advance)
        m->advance(&p->dyn, tmp, net->t_state[g], net->q.now, net->ref_until[g]);
    memcpy(state, tmp, n * sizeof(double));
    return NESIM_OK;
}

uint64_t nesim_spike_checksum(const nesim_spike *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        uint64_t w[2] = {(uint64_t)s[i].t, s[i].id};
        const unsigned char *b = (const unsigned char *)w;
        for (size_t k = 0; k < sizeof w; k++)
            h = (h ^ b[k]) * 1099511628211ull;
    }
    return h;
}
