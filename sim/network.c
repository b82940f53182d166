/* network.c — populations, projections and the event-driven run loop.
 *
 * The loop reads as three verbs per active tick: deliver (apply the inputs due
 * now), test (threshold for the neurons that need it), fire (reset, record,
 * send). Predictions of threshold crossings are queue events cancelled by
 * generation counter; an input re-predicts only when it could bring the
 * crossing earlier (its kick exceeds the neuron's remaining margin), and a
 * prediction made stale by inhibition is re-checked when it comes due.
 *
 * Per neuron the engine keeps one 64-byte record (one cache line): the
 * model's state or its epoch coefficients, the margin budget, the predicted
 * tick and its generation, the end of refractoriness. Only neurons whose
 * budget an input exhausted, or whose prediction came due, are tested.
 *
 * lif and lif_exp (reset to v_reset) run on a specialised path. Their
 * membrane follows a sum of exponentials, v - E_L = sum_i X_i e^{-(t-T0)/tau_i},
 * so the engine keeps the invariant coefficients x_i = X_i e^{(t-T0)/tau_i}
 * that only inputs change: an input at tick t adds w g_i e^{(t-T0)/tau_i}, a
 * factor shared by every target of the tick, and needs no per-neuron advance.
 * T0 is the start of the current epoch (a power-of-two number of ticks, short
 * enough that the factors stay in range); a neuron's coefficients are rebased
 * lazily the first time it is touched in a new epoch. lif tests and trips in
 * the invariant space directly: v >= theta  <=>  x >= (theta - E_L) e^{(t-T0)/tau}.
 * While refractory (v frozen at v_reset, inputs to v dropped) the membrane
 * coefficient is garbage; at the end of the period (an event at ref_until - 1,
 * after that tick's deliveries) it is set from v_reset and the currents. */
#include "sim/network.h"

#include <gsl/gsl_randist.h>
#include <stdlib.h>
#include <string.h>

#include "neurons/crossing.h"
#include "sim/queue.h"
#include "sim/rng.h"

/* Prediction slack in largest incoming kicks: 3 for voltage jumps, 4 for
 * current synapses (their kick bound, the peak response, is looser). */
#ifndef SLACK_KICKS
#define SLACK_KICKS 3.0
#endif
#ifndef SLACK_KICKS_CURRENT
#define SLACK_KICKS_CURRENT 4.0
#endif
#ifndef LIF_LEVELS
#define LIF_LEVELS 2
#endif
enum { STREAM_INIT = 0, STREAM_SOURCE = 1, STREAM_PROJ = 2 };
enum { F_CAND = 1, F_DUE = 2, F_WAKE = 4 };
enum { K_GENERIC = 0, K_LIF, K_LIFEXP };
enum { LO_BITS = 8, LO_N = 1 << LO_BITS };

typedef struct nrec {
    double x[3];   /* lif, lif_exp: epoch coefficients (v - E_L, ge, gi parts) */
    double budget; /* lif: trip level of x[0]; others: margin left, volts */
    int64_t pred;  /* predicted tick, NESIM_NEVER if none */
    union {
        int64_t ref_until; /* generic: first tick out of refractoriness */
        int64_t stamp;     /* lif, lif_exp: last tick touched (refractory <=> F_WAKE,
                            * and the pending wake-up event sits at ref_until - 1) */
    };
    int64_t ts;    /* generic: tick of the state, also the last tick touched;
                    * lif, lif_exp: epoch */
    uint32_t gen;  /* generation of the live prediction event */
    uint8_t flags;
} nrec;

typedef struct pop {
    char name[64];
    nesim_dyn dyn;
    uint32_t n, first;
    double *state; /* generic models: n_state doubles per neuron */
    nesim_init_dist init;
    gsl_rng *rng; /* Poisson draws */
    nesim_counters c;
    int record;
    int *out;
    int n_out;
    int kind;
    nrec *rec;      /* this population's records (net->rec + first) */
    uint32_t *cand; /* local indices to test this tick */
    size_t n_cand;
    /* lif, lif_exp: epochs of 2^shift ticks; E_i(j) = e^{+j rate_i} and
     * D_i(j) = e^{-j rate_i} for 0 <= j <= jmax as hi[j >> 8] * lo[j & 255] */
    int nt, shift;
    int64_t jmax;
    double *tab;
    const double *ehi[3], *elo[3], *dhi[3], *dlo[3];
    double cth;        /* lif: theta - E_L; lif_exp: E_L - theta */
    double tau0;       /* 1 / rate[0] */
    double gexc[3], ginh[3]; /* coefficient gains per unit weight */
    int64_t tick, ep;  /* the factors below hold at tick (epoch ep) */
    double E[3], D[3], U;
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
    nrec *rec; /* per neuron, by global id */
    int *pop_of;
    nesim_queue q;
    nesim_scratch *ws;
    uint32_t *fire;
    size_t n_fire;
    int *act; /* populations with candidates this tick */
    int n_act;
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
        free(net->pops[i].cand);
        free(net->pops[i].tab);
        if (net->pops[i].rng)
            gsl_rng_free(net->pops[i].rng);
    }
    for (int i = 0; i < net->n_projs; i++) {
        free(net->projs[i].row);
        free(net->projs[i].col);
    }
    free(net->pops);
    free(net->projs);
    free(net->rec);
    free(net->pop_of);
    free(net->fire);
    free(net->act);
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

static void set_pred(nesim_net *net, nrec *r, uint32_t g, int64_t k)
{
    if (k == r->pred)
        return;
    r->pred = k;
    r->gen++;
    if (k != NESIM_NEVER)
        /* k > now, so the push cannot fail for time; memory failure is
         * reported by the next take via q.size bookkeeping being intact. */
        nesim_queue_add(&net->q, k, NESIM_EV_PREDICT, g, r->gen, NULL);
}

/* Queues neuron j of p for the test phase (once per tick); a population
 * with its first candidate joins the tick's list of active populations. */
static inline void mark(nesim_net *net, pop *p, nrec *r, uint32_t j)
{
    if (!(r->flags & F_CAND)) {
        r->flags |= F_CAND;
        if (!p->n_cand)
            net->act[net->n_act++] = (int)(p - net->pops);
        p->cand[p->n_cand++] = j;
    }
}

/* ---- epochs (lif, lif_exp) ---- */

static inline double tab_e(const pop *p, int i, int64_t j)
{
    return p->ehi[i][j >> LO_BITS] * p->elo[i][j & (LO_N - 1)];
}

static inline double tab_d(const pop *p, int i, int64_t j)
{
    return p->dhi[i][j >> LO_BITS] * p->dlo[i][j & (LO_N - 1)];
}

/* e^{-rate_i j} for any j >= 0 (beyond the tables: directly, 0 once negligible) */
static double decay_any(const pop *p, int i, int64_t j)
{
    if (j <= p->jmax)
        return tab_d(p, i, j);
    double a = p->dyn.rate[i] * (double)j;
    return a > 700 ? 0 : exp(-a);
}

static inline void at_tick(pop *p, int64_t t)
{
    if (p->tick == t)
        return;
    p->tick = t;
    p->ep = t >> p->shift;
    int64_t j = t - (p->ep << p->shift);
    for (int i = 0; i < p->nt; i++) {
        p->E[i] = tab_e(p, i, j);
        p->D[i] = tab_d(p, i, j);
    }
    p->U = p->cth * p->E[0];
}

/* Moves a neuron's coefficients into the epoch of the population's tick. */
static void rebase(const pop *p, nrec *r)
{
    int64_t dj = (p->ep - r->ts) << p->shift;
    for (int i = 0; i < p->nt; i++) {
        double f = decay_any(p, i, dj);
        r->x[i] *= f;
        if (i == 0 && p->kind == K_LIF && isfinite(r->budget))
            r->budget *= f;
    }
    r->ts = p->ep;
}

static inline void ensure_epoch(const pop *p, nrec *r)
{
    if (r->ts != p->ep)
        rebase(p, r);
}

static int epochs_init(pop *p, nesim_error *err)
{
    const nesim_dyn *d = &p->dyn;
    p->kind = K_GENERIC;
    if (d->p.reset_subtract)
        return NESIM_OK;
    if (strcmp(d->model->name, "lif") == 0)
        p->kind = K_LIF;
    else if (strcmp(d->model->name, "lif_exp") == 0)
        p->kind = K_LIFEXP;
    else
        return NESIM_OK;
    p->nt = p->kind == K_LIF ? 1 : 3;
    p->tau0 = 1 / d->rate[0];
    double rmax = 0;
    for (int i = 0; i < p->nt; i++)
        rmax = fmax(rmax, d->rate[i]);
    /* an epoch spans at most 64 of the fastest time constant: factors stay
     * within e^{+-256} over the tables (four epochs) */
    int sh = 0;
    while (sh < 16 && (double)(2 << sh) * rmax <= 64)
        sh++;
    p->shift = sh;
    p->jmax = (int64_t)4 << sh;
    int64_t nhi = (p->jmax >> LO_BITS) + 1;
    size_t per = 2 * (size_t)(nhi + LO_N);
    p->tab = malloc(per * p->nt * sizeof(double));
    if (!p->tab)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for population '%s'", p->name);
    for (int i = 0; i < p->nt; i++) {
        double *ehi = p->tab + per * i, *dhi = ehi + nhi, *elo = dhi + nhi, *dlo = elo + LO_N;
        double r = d->rate[i];
        for (int64_t h = 0; h < nhi; h++) {
            ehi[h] = exp(r * (double)(h << LO_BITS));
            dhi[h] = exp(-r * (double)(h << LO_BITS));
        }
        for (int l = 0; l < LO_N; l++) {
            elo[l] = exp(r * l);
            dlo[l] = exp(-r * l);
        }
        p->ehi[i] = ehi;
        p->dhi[i] = dhi;
        p->elo[i] = elo;
        p->dlo[i] = dlo;
    }
    if (p->kind == K_LIF) {
        p->cth = d->p.v_thresh - d->p.v_rest;
        p->gexc[0] = p->ginh[0] = 1;
    } else {
        /* lif_exp: v - E_L = X e_m + A e_e + B e_i with A = c0 ge, B = c1 gi;
         * an input to ge adds c0 w to A and takes it from X */
        p->cth = d->p.v_rest - d->p.v_thresh;
        p->gexc[0] = -d->c[0];
        p->gexc[1] = d->c[0];
        p->ginh[0] = -d->c[1];
        p->ginh[2] = d->c[1];
    }
    p->tick = -1;
    return NESIM_OK;
}

/* lif: first tick >= s0 at which x[0] reaches the threshold level, or (when
 * further than the slack below it) a check tick no later than that; the trip
 * level is the threshold level of the tick before the answer, exactly: an
 * input that lifts x[0] to it could bring the crossing earlier. */
static void predict_lif(nesim_net *net, pop *p, uint32_t j, nrec *r, int64_t s0)
{
    p->c.predictions++;
    int64_t T0 = r->ts << p->shift, j0 = s0 - T0, k;
    double u = r->x[0], cu = p->cth, trip = INFINITY;
    if (u >= cu * tab_e(p, 0, j0)) {
        k = s0;
    } else if (!(cu < 0)) { /* relaxes to a level at or below threshold */
        k = NESIM_NEVER;
        trip = cu * tab_e(p, 0, j0);
    } else {
        /* the check level: within slack, or within half of it once there */
        double e0 = tab_e(p, 0, j0), ct = cu - p->dyn.slack;
        int exact = 0;
        if (!(u < ct * e0)) {
            ct = cu - 0.5 * p->dyn.slack;
            exact = LIF_LEVELS < 2 || !(u < ct * e0);
        }
        double y = log(u / (exact ? cu : ct)) * p->tau0;
        int64_t jj = !(y < (double)p->jmax) ? p->jmax : (int64_t)y + 1;
        if (jj <= j0)
            jj = j0 + 1;
        while (jj > j0 + 1 && u >= cu * tab_e(p, 0, jj - 1))
            jj--;
        if (exact)
            while (jj < p->jmax && u < cu * tab_e(p, 0, jj))
                jj++;
        k = T0 + jj;
        trip = cu * tab_e(p, 0, jj - 1);
    }
    r->budget = trip;
    set_pred(net, r, p->first + j, k);
}

/* lif_exp: the model's search (crossing.c) on the coefficients at s0. */
static void predict_lx(nesim_net *net, pop *p, uint32_t j, nrec *r, int64_t s0, int64_t hi)
{
    if (hi != NESIM_NEVER && hi <= s0) { /* tested at s0 anyway */
        r->budget = INFINITY;
        return;
    }
    p->c.predictions++;
    int64_t j0 = s0 - (r->ts << p->shift);
    nesim_expsum f = {.c0 = p->cth, .n = 3, .d = &p->dyn,
                      .x = {r->x[0] * tab_d(p, 0, j0), r->x[1] * tab_d(p, 1, j0), r->x[2] * tab_d(p, 2, j0)},
                      .term = {0, 1, 2}};
    double m;
    int64_t k = nesim_expsum_predict(&f, 0, hi == NESIM_NEVER ? -1 : hi - 1 - s0, p->dyn.slack, net->ws, &m);
    r->budget = m * (1 - 1e-12) - 1e-300;
    if (k >= 0)
        set_pred(net, r, p->first + j, s0 + k);
    else if (hi == NESIM_NEVER)
        set_pred(net, r, p->first + j, NESIM_NEVER);
}

/* End of refractoriness at tick rr (the neuron is in the epoch of rr - 1 or
 * rr): the membrane coefficient restarts from v_reset. */
static void restart(nesim_net *net, pop *p, uint32_t j, nrec *r, int64_t rr, int64_t from)
{
    int64_t jr = rr - (r->ts << p->shift);
    double v = p->dyn.p.v_reset - p->dyn.p.v_rest;
    r->flags &= (uint8_t)~F_WAKE;
    r->pred = NESIM_NEVER;
    if (p->kind == K_LIF) {
        r->x[0] = v * tab_e(p, 0, jr);
        predict_lif(net, p, j, r, from);
    } else {
        r->x[0] = (v - r->x[1] * tab_d(p, 1, jr) - r->x[2] * tab_d(p, 2, jr)) * tab_e(p, 0, jr);
        predict_lx(net, p, j, r, from, NESIM_NEVER);
    }
}

/* ---- generic models ---- */

static inline double *state_of(const pop *p, uint32_t j)
{
    return p->state + (size_t)j * p->dyn.model->n_state;
}

static void predict_gen(nesim_net *net, pop *p, uint32_t j, int64_t lo, int64_t hi)
{
    nrec *r = &p->rec[j];
    double m;
    int64_t k = p->dyn.model->predict(&p->dyn, state_of(p, j), r->ts, r->ref_until, lo, hi, net->ws, &m);
    p->c.predictions++;
    r->budget = m * (1 - 1e-12) - 1e-300;
    if (k != NESIM_NEVER || hi == NESIM_NEVER)
        set_pred(net, r, p->first + j, k);
}

static void source_next(nesim_net *net, pop *p, uint32_t j, int64_t after)
{
    double prob = p->dyn.c[0];
    nrec *r = &p->rec[j];
    if (prob <= 0)
        set_pred(net, r, p->first + j, NESIM_NEVER);
    else
        set_pred(net, r, p->first + j, after + (int64_t)gsl_ran_geometric(p->rng, prob));
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
    net->started = 1;
    for (int i = 0; i < net->n_pops; i++)
        if ((rc = epochs_init(&net->pops[i], err)))
            return rc;
    /* Prediction slack: a population's predictions may stop short of the
     * crossing by a few of its largest incoming kicks, so a few inputs pass
     * before a new prediction is needed (fewer logs and root searches, fewer
     * stale events). Changes cost only, never a spike. */
    for (int j = 0; j < net->n_projs; j++) {
        pop *post = &net->pops[net->projs[j].s.post];
        double kicks = post->dyn.model->integrates_while_refractory ? SLACK_KICKS_CURRENT : SLACK_KICKS;
        if (kicks * net->projs[j].kick > post->dyn.slack)
            post->dyn.slack = kicks * net->projs[j].kick;
    }
    size_t n = N ? N : 1;
    net->rec = aligned_alloc(64, n * sizeof *net->rec);
    net->pop_of = malloc(n * sizeof *net->pop_of);
    net->fire = malloc(n * sizeof *net->fire);
    net->act = malloc((size_t)net->n_pops * sizeof *net->act);
    net->ws = nesim_scratch_new();
    if (!net->rec || !net->pop_of || !net->fire || !net->act || !net->ws)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for %u neurons", N);
    memset(net->rec, 0, n * sizeof *net->rec);
    for (uint32_t g = 0; g < N; g++)
        net->rec[g].pred = NESIM_NEVER;
    for (int i = 0; i < net->n_pops; i++) {
        pop *p = &net->pops[i];
        const nesim_model *m = p->dyn.model;
        p->rec = net->rec + p->first;
        p->state = p->kind == K_GENERIC ? calloc((size_t)p->n * m->n_state, sizeof(double)) : NULL;
        p->cand = malloc((size_t)p->n * sizeof *p->cand);
        gsl_rng *r = nesim_rng_new(net->seed, STREAM_INIT + 16 * (uint64_t)i);
        p->rng = nesim_rng_new(net->seed, STREAM_SOURCE + 16 * (uint64_t)i);
        if ((p->kind == K_GENERIC && !p->state) || !p->cand || !r || !p->rng) {
            if (r)
                gsl_rng_free(r);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for population '%s'", p->name);
        }
        for (uint32_t j = 0; j < p->n; j++) {
            double v0 = 0;
            switch (p->init.kind) {
            case NESIM_INIT_CONST: v0 = p->init.a; break;
            case NESIM_INIT_UNIFORM: v0 = p->init.a + (p->init.b - p->init.a) * gsl_rng_uniform(r); break;
            case NESIM_INIT_NORMAL: v0 = p->init.a + gsl_ran_gaussian(r, p->init.b); break;
            }
            net->pop_of[p->first + j] = i;
            if (p->kind != K_GENERIC)
                p->rec[j].stamp = -1;
            if (p->kind == K_LIF) {
                p->rec[j].x[0] = v0 - p->dyn.p.v_rest;
                predict_lif(net, p, j, &p->rec[j], 0);
            } else if (p->kind == K_LIFEXP) {
                p->rec[j].x[0] = v0 - p->dyn.p.v_rest;
                predict_lx(net, p, j, &p->rec[j], 0, NESIM_NEVER);
            } else {
                state_of(p, j)[0] = v0;
                if (m->is_source)
                    source_next(net, p, j, -1);
                else
                    predict_gen(net, p, j, 0, NESIM_NEVER);
            }
        }
        gsl_rng_free(r);
    }
    return NESIM_OK;
}

/* ---- 1. deliver ---- */

/* Runs BODY for every target j of source i, in ascending order. */
#define FOR_TARGETS(BODY)                                                                          \
    do {                                                                                           \
        if (col) {                                                                                 \
            for (uint32_t k_ = 0; k_ < cnt; k_++) {                                                \
                uint32_t j = col[k_];                                                              \
                BODY                                                                               \
            }                                                                                      \
        } else {                                                                                   \
            for (uint32_t j = lo; j < hi; j++) {                                                   \
                if (j == skip)                                                                     \
                    continue;                                                                      \
                BODY                                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static void deliver(nesim_net *net, const nesim_ev *e, int64_t t)
{
    const proj *pj = &net->projs[e->aux];
    pop *pre = &net->pops[pj->s.pre], *post = &net->pops[pj->s.post];
    uint32_t i = e->id - pre->first;
    double w = pj->s.weight, kick = pj->kick;
    uint32_t lo = 0, hi = 0, cnt = 0, skip = UINT32_MAX;
    const uint32_t *col = NULL;
    if (pj->s.kind == NESIM_FIXED_PROB) {
        col = pj->col + pj->row[i];
        cnt = (uint32_t)(pj->row[i + 1] - pj->row[i]);
    } else if (pj->s.kind == NESIM_ALL_TO_ALL) {
        hi = post->n;
        cnt = hi;
        if (pj->s.pre == pj->s.post && pj->s.no_autapses) {
            skip = i;
            cnt--;
        }
    } else {
        lo = i;
        hi = i + 1;
        cnt = 1;
    }
    nrec *rec = post->rec;
    uint64_t ups = 0; /* neurons touched for the first time this tick */
    if (post->kind == K_LIF) {
        at_tick(post, t);
        double wE = w * post->E[0];
        int64_t ep = post->ep;
        if (kick > 0) {
            FOR_TARGETS({
                nrec *r = &rec[j];
                if (r->ts != ep)
                    rebase(post, r);
                ups += r->stamp != t;
                r->stamp = t;
                double u = r->x[0] + wE;
                r->x[0] = u;
                if (u >= r->budget)
                    mark(net, post, r, j);
            });
        } else {
            FOR_TARGETS({
                nrec *r = &rec[j];
                if (r->ts != ep)
                    rebase(post, r);
                ups += r->stamp != t;
                r->stamp = t;
                r->x[0] += wE;
            });
        }
    } else if (post->kind == K_LIFEXP) {
        at_tick(post, t);
        int64_t ep = post->ep;
        if (w >= 0) {
            double w0 = w * post->gexc[0] * post->E[0], w1 = w * post->gexc[1] * post->E[1];
            FOR_TARGETS({
                nrec *r = &rec[j];
                if (r->ts != ep)
                    rebase(post, r);
                ups += r->stamp != t;
                r->stamp = t;
                r->x[0] += w0;
                r->x[1] += w1;
                double b = r->budget - kick;
                r->budget = b;
                if (b < 0)
                    mark(net, post, r, j);
            });
        } else {
            double w0 = w * post->ginh[0] * post->E[0], w2 = w * post->ginh[2] * post->E[2];
            FOR_TARGETS({
                nrec *r = &rec[j];
                if (r->ts != ep)
                    rebase(post, r);
                ups += r->stamp != t;
                r->stamp = t;
                r->x[0] += w0;
                r->x[2] += w2;
            });
        }
    } else {
        const nesim_model *m = post->dyn.model;
        const nesim_dyn *d = &post->dyn;
        int keep = m->integrates_while_refractory;
        FOR_TARGETS({
            nrec *r = &rec[j];
            double *st = state_of(post, j);
            if (r->ts != t) {
                m->advance(d, st, r->ts, t, r->ref_until);
                r->ts = t;
                ups++;
            }
            int refr = t < r->ref_until;
            m->input(d, st, w, refr);
            if (kick > 0 && (!refr || keep)) {
                r->budget -= kick;
                if (r->budget < 0)
                    mark(net, post, r, j);
            }
        });
    }
    post->c.sops += cnt;
    post->c.updates += ups;
    post->c.events++;
}

/* ---- 2. test ---- */

static void test_lif(nesim_net *net, pop *p, int64_t t)
{
    at_tick(p, t);
    for (size_t k = 0; k < p->n_cand; k++) {
        uint32_t j = p->cand[k];
        nrec *r = &p->rec[j];
        uint8_t fl = r->flags;
        r->flags = fl & F_WAKE;
        ensure_epoch(p, r);
        if (fl & F_WAKE) {
            if (fl & F_DUE) /* the wake-up event, at ref_until - 1 */
                restart(net, p, j, r, t + 1, t + 1);
        } else if (r->x[0] >= p->U) {
            net->fire[net->n_fire++] = j;
        } else if (fl & F_DUE) {
            r->pred = NESIM_NEVER; /* consumed; stale by inhibition */
            predict_lif(net, p, j, r, t + 1);
        } else if (r->x[0] >= r->budget) {
            predict_lif(net, p, j, r, t + 1);
        }
    }
}

static void test_lx(nesim_net *net, pop *p, int64_t t)
{
    at_tick(p, t);
    double c = p->cth, d0 = p->D[0], d1 = p->D[1], d2 = p->D[2];
    for (size_t k = 0; k < p->n_cand; k++) {
        uint32_t j = p->cand[k];
        nrec *r = &p->rec[j];
        uint8_t fl = r->flags;
        r->flags = fl & F_WAKE;
        ensure_epoch(p, r);
        if (fl & F_WAKE) {
            if (fl & F_DUE) /* the wake-up event, at ref_until - 1 */
                restart(net, p, j, r, t + 1, t + 1);
        } else if (c + r->x[0] * d0 + r->x[1] * d1 + r->x[2] * d2 >= 0) {
            net->fire[net->n_fire++] = j;
        } else if (fl & F_DUE) {
            r->pred = NESIM_NEVER; /* consumed; stale by inhibition */
            predict_lx(net, p, j, r, t + 1, NESIM_NEVER);
        } else if (r->budget < 0) {
            predict_lx(net, p, j, r, t + 1, r->pred);
        }
    }
}

static void test_gen(nesim_net *net, pop *p, int64_t t)
{
    const nesim_model *m = p->dyn.model;
    for (size_t k = 0; k < p->n_cand; k++) {
        uint32_t j = p->cand[k];
        nrec *r = &p->rec[j];
        uint8_t fl = r->flags;
        r->flags = 0;
        if (m->is_source) {
            p->c.updates++;
            if (fl & F_DUE)
                net->fire[net->n_fire++] = j;
            continue;
        }
        double *st = state_of(p, j);
        if (r->ts != t) {
            m->advance(&p->dyn, st, r->ts, t, r->ref_until);
            r->ts = t;
            p->c.updates++;
        }
        if (t >= r->ref_until && m->above(&p->dyn, st)) {
            net->fire[net->n_fire++] = j;
        } else if (fl & F_DUE) {
            r->pred = NESIM_NEVER; /* consumed; stale by inhibition */
            predict_gen(net, p, j, t + 1, NESIM_NEVER);
        } else if (r->budget < 0) {
            predict_gen(net, p, j, t + 1, r->pred);
        }
    }
}

/* ---- 3. fire ---- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void reset(nesim_net *net, pop *p, uint32_t j, int64_t t)
{
    nrec *r = &p->rec[j];
    if (p->kind == K_GENERIC) {
        if (p->dyn.model->is_source) {
            r->pred = NESIM_NEVER;
            source_next(net, p, j, t);
            return;
        }
        p->dyn.model->fire(&p->dyn, state_of(p, j));
        r->ref_until = t + p->dyn.ref_ticks;
        r->pred = NESIM_NEVER;
        r->gen++;
        predict_gen(net, p, j, t + 1, NESIM_NEVER);
        return;
    }
    int64_t rt = p->dyn.ref_ticks;
    r->pred = NESIM_NEVER;
    r->gen++;
    r->budget = INFINITY;
    if (rt >= 2) { /* v frozen until ref_until: restart after the deliveries of ref_until - 1 */
        r->flags |= F_WAKE;
        set_pred(net, r, p->first + j, t + rt - 1);
    } else {
        restart(net, p, j, r, t + rt, t + 1);
    }
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
        int rc = nesim_queue_add(&net->q, t + pj->s.delay, NESIM_EV_DELIVER, g, (uint32_t)p->out[k], err);
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
    /* candidates left by a tick a spike sink cut short */
    for (int a = 0; a < net->n_act; a++) {
        pop *p = &net->pops[net->act[a]];
        for (size_t k = 0; k < p->n_cand; k++)
            p->rec[p->cand[k]].flags &= F_WAKE;
        p->n_cand = 0;
    }
    net->n_act = 0;
    uint64_t depth = net->q.size;
    if (depth > net->qs.max_depth)
        net->qs.max_depth = depth;
    net->qs.ticks_active++;
    /* 1. deliver */
    for (size_t k = 0; k < nd; k++)
        deliver(net, &dv[k], t);
    for (size_t k = 0; k < np; k++) {
        uint32_t g = pv[k].id;
        pop *p = &net->pops[net->pop_of[g]];
        nrec *r = &net->rec[g];
        p->c.events++;
        if (pv[k].aux != r->gen)
            continue; /* cancelled */
        r->flags |= F_DUE;
        if (p->kind != K_GENERIC) {
            if (!(r->flags & F_WAKE)) { /* a wake-up is bookkeeping, not an update */
                p->c.updates += r->stamp != t;
                r->stamp = t;
            }
        } else if (t == 0 && !p->dyn.model->is_source) {
            p->c.updates++; /* the state is already at tick 0: counted here */
        }
        mark(net, p, r, g - p->first);
    }
    /* 2. test, 3. fire: population by population, so ascending global id */
    if (net->n_act > 1)
        qsort(net->act, (size_t)net->n_act, sizeof *net->act, cmp_int);
    for (int a = 0; a < net->n_act; a++) {
        int pi = net->act[a];
        pop *p = &net->pops[pi];
        net->n_fire = 0;
        if (p->kind == K_LIF)
            test_lif(net, p, t);
        else if (p->kind == K_LIFEXP)
            test_lx(net, p, t);
        else
            test_gen(net, p, t);
        p->n_cand = 0;
        if (net->n_fire > 1)
            qsort(net->fire, net->n_fire, sizeof *net->fire, cmp_u32);
        for (size_t k = 0; k < net->n_fire; k++) {
            uint32_t j = net->fire[k];
            reset(net, p, j, t);
            if ((rc = emit(net, p, pi, p->first + j, t, err)))
                return rc;
        }
    }
    net->n_act = 0;
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
    const nrec *r = &net->rec[g];
    int64_t now = net->q.now;
    if (p->kind == K_GENERIC) {
        memcpy(tmp, state_of(p, g - p->first), m->n_state * sizeof(double));
        if (m->advance)
            m->advance(&p->dyn, tmp, r->ts, now, r->ref_until);
    } else {
        /* from the epoch coefficients; v is frozen while refractory */
        int64_t dj = now - (r->ts << p->shift);
        double part[3] = {0};
        for (int i = 0; i < p->nt; i++)
            part[i] = r->x[i] * decay_any(p, i, dj);
        int refr = (r->flags & F_WAKE) != 0;
        tmp[0] = refr ? p->dyn.p.v_reset : p->dyn.p.v_rest + part[0] + part[1] + part[2];
        if (p->kind == K_LIFEXP) {
            tmp[1] = part[1] / p->dyn.c[0];
            tmp[2] = part[2] / p->dyn.c[1];
        }
    }
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
