/* network.c — the event-driven run loop over a graph's populations.
 *
 * The loop reads as three verbs per active tick: deliver (apply the inputs due
 * now), test (threshold for the neurons that need it), fire (reset, record,
 * send). Everything inside a neuron belongs to its model's kernels
 * (neurons/population.h); the engine owns the queue, the canonical order, the
 * projections and the counters. Predictions of threshold crossings are queue
 * events cancelled by generation counter; a kernel hands its predictions back
 * in the wake buffer and the engine queues them after the call, in order.
 *
 * Per neuron the engine keeps one 64-byte record (one cache line): the pred
 * and gen of its live prediction and the flags are the engine's, the rest is
 * the kernels'. */
#include "sim/network.h"

#include <gsl/gsl_cdf.h>
#include <stdlib.h>
#include <string.h>

#include "base/comm.h"
#include "base/mem.h"
#include "base/par.h"
#include "base/rng.h"
#include "neurons/crossing.h"
#include "sim/queue.h"

/* Prediction slack in largest incoming kicks: 3 for voltage jumps, 4 for
 * current synapses (their kick bound, the peak response, is looser). */
#ifndef SLACK_KICKS
#define SLACK_KICKS 3.0
#endif
#ifndef SLACK_KICKS_CURRENT
#define SLACK_KICKS_CURRENT 4.0
#endif

typedef struct rpop {
    nesim_pop k;            /* what the kernels see */
    nesim_dyn *cdyn;        /* per-neuron parameter classes: views of the graph's, with this run's slack */
    const nesim_pop_ops *ops;
    int record;
    int active;             /* in this tick's list of populations to test */
    uint32_t lo, hi;        /* the neurons this rank simulates (all with one rank) */
    nesim_counters sum;     /* k.c summed over the ranks (several ranks) */
} rpop;

/* A projection's rows restricted to the targets this rank simulates (CSR:
 * row offsets, targets ascending, and an explicit projection's weights). */
typedef struct local_rows {
    uint64_t *row;
    uint32_t *col;
    double *w;
    int borrowed;           /* the graph's own rows (a part drawn for exactly this rank) */
} local_rows;

/* A spike as ranks exchange it: its tick's offset in the epoch, its neuron. */
typedef struct wire_spike {
    uint32_t dt, id;
} wire_spike;

struct nesim_net {
    nesim_graph *g;
    int shares_g;           /* g is the caller's (nesim_net_sharing): read, never changed or freed */
    int started, broken;
    rpop *pops;             /* parallel to g->pops */
    int cap_pops;
    double *kick;           /* per projection: the post model's kick bound of its weight */
    nesim_nrec *rec;        /* per neuron, by global id */
    int *pop_of;
    nesim_queue q;
    nesim_kio io;
    int *act;               /* populations with candidates this tick */
    uint32_t *fire_tmp;     /* the fire list's sort (as large as it) */
    int n_act;
    nesim_spike *spikes;
    size_t n_spikes, cap_spikes;
    nesim_spike_sink sink;
    void *sink_ctx;
    nesim_queue_stats qs;
    double depth_wsum;
    int64_t depth_t, t0;
    uint64_t depth_last;
    /* several ranks (nesim_net_set_comm) */
    nesim_comm *comm;
    int rank, ranks;
    wire_spike *out;        /* this rank's spikes of the epoch, canonical order */
    size_t n_out, cap_out;
    local_rows *local;      /* per projection with rows: its rows on this rank */
    nesim_spike *merged;    /* every rank's, merged into canonical order */
    size_t cap_merged;
    nesim_net_traffic traffic;
    int overlap;            /* min delay >= 2: exchanges overlap the next window (run_ranks_overlap);
                             * otherwise the predictions of an epoch's last tick run while it travels */
    int64_t defer_tick;     /* the tick whose predictions wait for settle (-1: none) */
    int *pend;              /* populations with deferred predictions, of tick pend_t */
    int n_pend;
    int64_t pend_t;
};

/* A network over g (shared: the caller's, only read); NULL when out of memory. */
static nesim_net *net_over(nesim_graph *g, int shared, nesim_error *err)
{
    nesim_init();
    nesim_net *net = calloc(1, sizeof *net);
    if (!net || (g->n_pops && !(net->pops = calloc((size_t)g->n_pops, sizeof *net->pops)))) {
        free(net);
        nesim_fail(err, NESIM_ENOMEM, "out of memory");
        return NULL;
    }
    net->g = g;
    net->shares_g = shared;
    net->cap_pops = g->n_pops;
    net->overlap = 1;
    net->defer_tick = -1;
    return net;
}

nesim_net *nesim_net_from_graph(nesim_graph *g, nesim_error *err)
{
    if (!g)
        return NULL;
    nesim_net *net = net_over(g, 0, err);
    if (!net)
        nesim_graph_free(g);
    return net;
}

nesim_net *nesim_net_sharing(const nesim_graph *g, nesim_error *err)
{
    return net_over((nesim_graph *)g, 1, err); /* only read: shares_g keeps the mutators and the free away */
}

nesim_net *nesim_net_new(double tick_s, uint64_t seed, nesim_error *err)
{
    nesim_graph *g = nesim_graph_new(tick_s, seed, err);
    return g ? nesim_net_from_graph(g, err) : NULL;
}

void nesim_net_free(nesim_net *net)
{
    if (!net)
        return;
    for (int i = 0; net->pops && i < net->g->n_pops; i++) {
        rpop *p = &net->pops[i];
        if (p->ops && p->ops->stop)
            p->ops->stop(&p->k);
        free(p->k.state);
        free(p->k.cand);
        free(p->k.later);
        free(p->cdyn);
    }
    free(net->pops);
    free(net->kick);
    free(net->rec);
    free(net->pop_of);
    free(net->io.fire);
    free(net->fire_tmp);
    free(net->io.wake);
    nesim_scratch_free(net->io.ws);
    free(net->act);
    free(net->pend);
    free(net->spikes);
    free(net->out);
    free(net->merged);
    for (int j = 0; net->local && j < net->g->n_projs; j++)
        if (!net->local[j].borrowed)
            free(net->local[j].row), free(net->local[j].col), free(net->local[j].w);
    free(net->local);
    if (net->started)
        nesim_queue_free(&net->q);
    if (!net->shares_g)
        nesim_graph_free(net->g);
    free(net);
}

int nesim_add_population(nesim_net *net, const nesim_pop_spec *spec, int *id, nesim_error *err)
{
    if (net->started || net->shares_g)
        return nesim_fail(err, NESIM_ESTATE, "population '%.64s': network %s",
                          spec->name ? spec->name : "", net->started ? "already running" : "shares its graph");
    if (net->g->n_pops == net->cap_pops) {
        int cap = net->cap_pops ? 2 * net->cap_pops : 8;
        rpop *np = realloc(net->pops, (size_t)cap * sizeof *np);
        if (!np)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        net->pops = np;
        net->cap_pops = cap;
    }
    int rc = nesim_graph_add_population(net->g, spec, id, err);
    if (!rc)
        memset(&net->pops[net->g->n_pops - 1], 0, sizeof *net->pops);
    return rc;
}

int nesim_connect(nesim_net *net, const nesim_proj_spec *spec, int *id, nesim_error *err)
{
    if (net->started || net->shares_g)
        return nesim_fail(err, NESIM_ESTATE, "projection: network %s", net->started ? "already running" : "shares its graph");
    return nesim_graph_connect(net->g, spec, id, err);
}

const nesim_graph *nesim_net_graph(const nesim_net *net) { return net->g; }

int nesim_record(nesim_net *net, int p, int on, nesim_error *err)
{
    if (p < 0 || p >= net->g->n_pops)
        return nesim_fail(err, NESIM_EINVAL, "record: no population %d", p);
    net->pops[p].record = on;
    return NESIM_OK;
}

void nesim_net_set_overlap(nesim_net *net, int on) { net->overlap = on != 0; }
int nesim_net_overlaps(const nesim_net *net) { return net->overlap; }

/* The smallest delay, at least 1 (INT64_MAX without projections: no spike
 * crosses ranks). */
static int64_t min_delay_of(const nesim_graph *g)
{
    int64_t d = INT64_MAX;
    for (int j = 0; j < g->n_projs; j++)
        d = g->projs[j].s.delay < d ? g->projs[j].s.delay : d;
    return d < 1 ? 1 : d;
}

int64_t nesim_net_exchange_ticks(const nesim_net *net, int *overlapped)
{
    int64_t d = min_delay_of(net->g);
    *overlapped = net->overlap && net->ranks > 1 && d >= 2;
    return *overlapped ? (d / 2 < (1ll << 30) ? d / 2 : (1ll << 30)) : d < (1ll << 31) ? d : (1ll << 31);
}

void nesim_set_sink(nesim_net *net, nesim_spike_sink sink, void *ctx)
{
    net->sink = sink;
    net->sink_ctx = ctx;
}

int nesim_net_set_comm(nesim_net *net, nesim_comm *comm, nesim_error *err)
{
    if (net->started)
        return nesim_fail(err, NESIM_ESTATE, "ranks: the network is already running");
    net->comm = comm;
    net->rank = nesim_comm_rank(comm);
    net->ranks = nesim_comm_size(comm);
    return NESIM_OK;
}

nesim_comm *nesim_net_comm(const nesim_net *net) { return net->comm; }

void nesim_population_owned(const nesim_net *net, int p, uint32_t *lo, uint32_t *hi)
{
    uint32_t n = net->g->pops[p].n;
    int K = net->ranks > 1 ? net->ranks : 1;
    size_t a, b;
    nesim_par_split(n, 1, K > 1 ? net->rank : 0, K, &a, &b);
    *lo = (uint32_t)a, *hi = (uint32_t)b;
}

nesim_net_traffic nesim_net_traffic_of(const nesim_net *net) { return net->traffic; }

/* ---- the run loop ------------------------------------------------------- */

/* Does this rank simulate neuron g (global id)? */
static inline int owns(const nesim_net *net, uint32_t g)
{
    const rpop *p = &net->pops[net->pop_of[g]];
    uint32_t j = g - p->k.first;
    return j >= p->lo && j < p->hi;
}


/* Queues the predictions the kernels made. */
static int drain(nesim_net *net, nesim_error *err)
{
    nesim_kio *io = &net->io;
    enum { AHEAD = 4 }; /* predictions land in scattered buckets: fetch them ahead */
    for (size_t k = 0; k < io->n_wake && k < AHEAD; k++)
        nesim_queue_prefetch(&net->q, io->wake[k].t, NESIM_EV_PREDICT);
    for (size_t k = 0; k < io->n_wake; k++) {
        if (k + AHEAD < io->n_wake)
            nesim_queue_prefetch(&net->q, io->wake[k + AHEAD].t, NESIM_EV_PREDICT);
        int rc = nesim_queue_add(&net->q, io->wake[k].t, NESIM_EV_PREDICT, io->wake[k].id, io->wake[k].gen, err);
        if (rc) {
            io->n_wake = 0;
            return rc;
        }
    }
    io->n_wake = 0;
    return NESIM_OK;
}

static inline void activate(nesim_net *net, rpop *p)
{
    if (p->k.n_cand && !p->active) {
        p->active = 1;
        net->act[net->n_act++] = (int)(p - net->pops);
    }
}

/* Several ranks: each projection's rows cut down to this rank's targets
 * (rows are ascending, so each keeps one slice), built once so a delivery
 * reads only what this rank needs. */
static int local_rows_build(nesim_net *net, nesim_error *err)
{
    const nesim_graph *g = net->g;
    if (!(net->local = calloc((size_t)g->n_projs + 1, sizeof *net->local)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int j = 0; j < g->n_projs; j++) {
        const nesim_graph_proj *pj = &g->projs[j];
        if (!pj->row)
            continue;
        local_rows *L = &net->local[j];
        uint32_t n_pre = g->pops[pj->s.pre].n, lo = net->pops[pj->s.post].lo, hi = net->pops[pj->s.post].hi;
        if ((lo < pj->part_lo || hi > pj->part_hi) && lo < hi)
            return nesim_fail(err, NESIM_EINVAL, "ranks: this rank simulates neurons %u .. %u of '%s', but its graph "
                              "drew the synapses of %u .. %u only", lo, hi - 1, g->pops[pj->s.post].name,
                              pj->part_lo, pj->part_hi - 1);
        if (lo == pj->part_lo && hi == pj->part_hi) { /* already this rank's alone */
            *L = (local_rows){.row = pj->row, .col = pj->col, .w = pj->w, .borrowed = 1};
            continue;
        }
        if (!(L->row = malloc(((size_t)n_pre + 1) * sizeof *L->row)))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        uint64_t nnz = 0;
        for (uint32_t i = 0; i < n_pre; i++) {
            uint64_t a = pj->row[i], b = pj->row[i + 1];
            uint64_t r0 = nesim_graph_lower_bound(pj->col, a, b, lo), r1 = nesim_graph_lower_bound(pj->col, r0, b, hi);
            L->row[i] = nnz;
            nnz += r1 - r0;
        }
        L->row[n_pre] = nnz;
        L->col = malloc((nnz ? nnz : 1) * sizeof *L->col);
        if (pj->w)
            L->w = malloc((nnz ? nnz : 1) * sizeof *L->w);
        if (!L->col || (pj->w && !L->w))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for this rank's %llu synapses", (unsigned long long)nnz);
        for (uint32_t i = 0; i < n_pre; i++) {
            uint64_t a = pj->row[i], b = pj->row[i + 1], r0 = nesim_graph_lower_bound(pj->col, a, b, lo);
            uint64_t n = L->row[i + 1] - L->row[i];
            memcpy(L->col + L->row[i], pj->col + r0, n * sizeof *L->col);
            if (pj->w)
                memcpy(L->w + L->row[i], pj->w + r0, n * sizeof *L->w);
        }
    }
    return NESIM_OK;
}

static int start(nesim_net *net, nesim_error *err)
{
    const nesim_graph *g = net->g;
    uint32_t N = g->n_total;
    int64_t max_delay = 1;
    for (int j = 0; j < g->n_projs; j++)
        if (g->projs[j].s.delay > max_delay)
            max_delay = g->projs[j].s.delay;
    uint32_t ring = 8192;
    if (max_delay + 1 > ring && max_delay < (1 << 20))
        ring = (uint32_t)max_delay + 1;
    int rc = nesim_queue_init(&net->q, ring, err);
    if (rc)
        return rc;
    net->started = 1;
    uint32_t largest = 1;
    for (int i = 0; i < g->n_pops; i++) {
        rpop *p = &net->pops[i];
        p->k.dyn = g->pops[i].dyn; /* a view: the tables stay the graph's */
        p->k.n = g->pops[i].n;
        p->k.first = g->pops[i].first;
        p->k.io = &net->io;
        p->ops = p->k.dyn.model->ops(&p->k.dyn);
        nesim_population_owned(net, i, &p->lo, &p->hi);
        if (g->pops[i].cls) {
            uint32_t nc = g->pops[i].n_cls;
            if (!(p->cdyn = malloc(nc * sizeof *p->cdyn)))
                return nesim_fail(err, NESIM_ENOMEM, "out of memory for population '%s'", g->pops[i].name);
            memcpy(p->cdyn, g->pops[i].cdyn, nc * sizeof *p->cdyn);
            p->k.cdyn = p->cdyn;
            p->k.cls = g->pops[i].cls;
        }
        if (p->k.n > largest)
            largest = p->k.n;
    }
    /* Prediction slack: a population's predictions may stop short of the
     * crossing by a few of its largest incoming kicks, so a few inputs pass
     * before a new prediction is needed (fewer logs and root searches, fewer
     * stale events). Changes cost only, never a spike. */
    net->kick = malloc((g->n_projs ? (size_t)g->n_projs : 1) * sizeof *net->kick);
    if (!net->kick)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int j = 0; j < g->n_projs; j++) {
        rpop *post = &net->pops[g->projs[j].s.post];
        const nesim_model *m = post->k.dyn.model;
        /* an explicit projection's weights differ: the larger kick of its
         * extremes; per-neuron constants: the largest over the classes (a
         * bound for every neuron; a loose one costs predictions, never a spike) */
        uint32_t nc = post->cdyn ? g->pops[g->projs[j].s.post].n_cls : 1;
        double kmax = 0;
        for (uint32_t c = 0; c < nc; c++) {
            const nesim_dyn *d = post->cdyn ? &post->cdyn[c] : &post->k.dyn;
            double k0 = m->kick(d, g->projs[j].w_min), k1 = m->kick(d, g->projs[j].w_max);
            kmax = fmax(kmax, fmax(k0, k1));
        }
        net->kick[j] = kmax;
        double kicks = m->integrates_while_refractory ? SLACK_KICKS_CURRENT : SLACK_KICKS;
        if (kicks * net->kick[j] > post->k.dyn.slack)
            post->k.dyn.slack = kicks * net->kick[j];
    }
    for (int i = 0; i < g->n_pops; i++)
        for (uint32_t c = 0; net->pops[i].cdyn && c < g->pops[i].n_cls; c++)
            net->pops[i].cdyn[c].slack = net->pops[i].k.dyn.slack;
    if (nesim_graph_is_part(g) && net->ranks <= 1)
        return nesim_fail(err, NESIM_EINVAL, "the graph holds only a part of its synapses: it runs on ranks only");
    if (net->ranks > 1 && (rc = local_rows_build(net, err)))
        return rc;
    size_t n = N ? N : 1;
    net->rec = aligned_alloc(64, n * sizeof *net->rec);
    net->pop_of = malloc(n * sizeof *net->pop_of);
    net->io.fire = malloc(n * sizeof *net->io.fire);
    net->fire_tmp = malloc(n * sizeof *net->fire_tmp);
    net->io.wake = malloc((size_t)largest * sizeof *net->io.wake);
    net->act = malloc((g->n_pops ? (size_t)g->n_pops : 1) * sizeof *net->act);
    net->pend = malloc((g->n_pops ? (size_t)g->n_pops : 1) * sizeof *net->pend);
    net->io.ws = nesim_scratch_new();
    if (!net->rec || !net->pop_of || !net->io.fire || !net->fire_tmp || !net->io.wake || !net->act || !net->pend ||
        !net->io.ws)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for %u neurons", N);
    memset(net->rec, 0, n * sizeof *net->rec);
    for (uint32_t i = 0; i < N; i++)
        net->rec[i].pred = NESIM_NEVER;
    for (int i = 0; i < g->n_pops; i++) {
        rpop *p = &net->pops[i];
        const nesim_init_dist *in = &g->pops[i].v_init;
        p->k.rec = net->rec + p->k.first;
        /* a state that fits lives in the record (zeroed above): one cache
         * line per neuron touched, not two */
        const int own_state = p->ops->uses_state && p->k.dyn.n_state > NESIM_REC_STATE;
        if (own_state)
            p->k.state = calloc((size_t)p->k.n * (size_t)p->k.dyn.n_state, sizeof(double));
        p->k.cand = malloc(((size_t)p->k.n + 1) * sizeof *p->k.cand);
        if (p->ops->settle && net->ranks > 1)
            p->k.later = malloc(((size_t)p->k.n + 1) * sizeof *p->k.later);
        p->k.seed = g->seed;
        p->k.stream = NESIM_STREAM(NESIM_STREAM_SOURCE, (uint64_t)i);
        if ((own_state && !p->k.state) || !p->k.cand || (p->ops->settle && net->ranks > 1 && !p->k.later))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for population '%s'", g->pops[i].name);
        if (p->ops->start && (rc = p->ops->start(&p->k, err)))
            return nesim_context(err, "population '%s': ", g->pops[i].name);
        const uint64_t stream = NESIM_STREAM(NESIM_STREAM_INIT, (uint64_t)i);
        for (uint32_t j = 0; j < p->k.n; j++)
            net->pop_of[p->k.first + j] = i;
        for (uint32_t j = p->lo; j < p->hi; j++) {
            /* keyed by (population, neuron): a rank draws its own neurons' */
            uint64_t key = nesim_key(g->seed, stream, j);
            double v0 = 0;
            switch (in->kind) {
            case NESIM_INIT_CONST: v0 = in->a; break;
            case NESIM_INIT_UNIFORM: v0 = in->a + (in->b - in->a) * nesim_open01(nesim_key_next(&key)); break;
            case NESIM_INIT_NORMAL: v0 = in->a + in->b * gsl_cdf_ugaussian_Pinv(nesim_open01(nesim_key_next(&key))); break;
            case NESIM_INIT_VALUES: v0 = in->values[j]; break;
            case NESIM_INIT_REST: {
                const nesim_dyn *d = nesim_pop_dyn(&p->k, j);
                v0 = nesim_dyn_param(d, "v_rest");
                if (isnan(v0))
                    v0 = d->v_reset;
                break;
            }
            }
            p->ops->init(&p->k, j, v0);
        }
        if ((rc = drain(net, err)))
            return rc;
    }
    return NESIM_OK;
}

/* ---- 1. deliver ---- */

static void deliver(nesim_net *net, const nesim_ev *e, int64_t t)
{
    const nesim_graph_proj *pj = &net->g->projs[e->aux];
    const nesim_graph_pop *pre = &net->g->pops[pj->s.pre];
    rpop *post = &net->pops[pj->s.post];
    uint32_t i = e->id - pre->first;
    nesim_fan f = {.col = NULL, .skip = UINT32_MAX};
    /* the targets this rank simulates: all, or a slice of an ascending row */
    uint32_t lo = post->lo, hi = post->hi;
    int split = net->ranks > 1;
    if (!split || owns(net, e->id))
        post->k.c.events++;
    uint64_t r0 = 0, r1 = 0;
    const uint32_t *col = pj->col;
    const double *wv = pj->w;
    if (pj->row) {
        const uint64_t *row = pj->row;
        if (split) {
            const local_rows *L = &net->local[e->aux];
            row = L->row, col = L->col, wv = L->w;
        }
        r0 = row[i], r1 = row[i + 1];
    }
    if (pj->s.kind == NESIM_EXPLICIT) {
        /* per-synapse weights: the whole row in one call where the kernels
         * take a weight per target, else one call per run of equal weights;
         * targets ascending either way */
        uint64_t ups = 0, cnt = 0;
        if (post->ops->deliver_w) {
            ups = post->ops->deliver_w(&post->k, col + r0, wv + r0, (uint32_t)(r1 - r0), net->kick[e->aux], t);
            cnt = r1 - r0;
        }
        for (uint64_t k = post->ops->deliver_w ? r1 : r0, end = r1; k < end;) {
            uint64_t r = k + 1;
            while (r < end && wv[r] == wv[k])
                r++;
            nesim_fan run = {.col = col + k, .cnt = (uint32_t)(r - k), .skip = UINT32_MAX};
            ups += post->ops->deliver(&post->k, &run, wv[k], net->kick[e->aux], t);
            cnt += r - k;
            k = r;
        }
        post->k.c.sops += cnt;
        post->k.c.updates += ups;
        activate(net, post);
        return;
    }
    if (pj->s.kind == NESIM_FIXED_PROB) {
        f.col = col + r0;
        f.cnt = (uint32_t)(r1 - r0);
    } else if (pj->s.kind == NESIM_ALL_TO_ALL) {
        f.lo = split ? lo : 0;
        f.hi = split ? hi : post->k.n;
        f.cnt = f.hi - f.lo;
        if (pj->s.pre == pj->s.post && pj->s.no_autapses && i >= f.lo && i < f.hi) {
            f.skip = i;
            f.cnt--;
        }
    } else {
        if (split && !(i >= lo && i < hi))
            return; /* its one target is another rank's */
        f.lo = i;
        f.hi = i + 1;
        f.cnt = 1;
    }
    if (split && f.cnt == 0)
        return;
    uint64_t ups = post->ops->deliver(&post->k, &f, pj->s.weight, net->kick[e->aux], t);
    post->k.c.sops += f.cnt;
    post->k.c.updates += ups;
    activate(net, post);
}

/* ---- 3. fire ---- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* a[0..n) ascending (distinct values below `below`): insertion for a few,
 * else a radix sort by bytes, as many passes as `below` has bytes (a
 * network with hundreds of spikes a tick spent 4 % of its run in qsort). */
static void sort_fired(uint32_t *a, size_t n, uint32_t *tmp, uint32_t below)
{
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = a[i];
            size_t k = i;
            for (; k > 0 && a[k - 1] > v; k--)
                a[k] = a[k - 1];
            a[k] = v;
        }
        return;
    }
    uint32_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 32 && (shift == 0 || (below - 1) >> shift); shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((src[i] >> shift) & 255) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 255]++] = src[i];
        uint32_t *t = src;
        src = dst, dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* A spike in canonical order: kept if its population is recorded, and
 * handed to the sink. */
static int publish(nesim_net *net, int pi, uint32_t g, int64_t t, nesim_error *err)
{
    if (net->pops[pi].record) {
        nesim_spike *s = nesim_grown(net->spikes, net->n_spikes + 1, &net->cap_spikes, sizeof *s, 4096);
        if (!s)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory recording spikes");
        net->spikes = s;
        net->spikes[net->n_spikes++] = (nesim_spike){t, g, (uint32_t)pi};
    }
    if (net->sink && net->sink(net->sink_ctx, t, g, pi))
        return nesim_fail(err, NESIM_EIO, "spike sink stopped the run at tick %lld", (long long)t);
    return NESIM_OK;
}

/* Queues the deliveries of neuron g's spike at tick t. */
static int send(nesim_net *net, int pi, uint32_t g, int64_t t, nesim_error *err)
{
    const nesim_graph_pop *gp = &net->g->pops[pi];
    for (int k = 0; k < gp->n_out; k++) {
        const nesim_graph_proj *pj = &net->g->projs[gp->out[k]];
        int rc = nesim_queue_add(&net->q, t + pj->s.delay, NESIM_EV_DELIVER, g, (uint32_t)gp->out[k], err);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

static int emit(nesim_net *net, rpop *p, int pi, uint32_t g, int64_t t, int64_t epoch0, nesim_error *err)
{
    p->k.c.spikes++;
    if (net->ranks > 1) { /* published after the exchange, with the other ranks' */
        wire_spike *o = nesim_grown(net->out, net->n_out + 1, &net->cap_out, sizeof *o, 4096);
        if (!o)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory buffering spikes");
        net->out = o;
        net->out[net->n_out++] = (wire_spike){(uint32_t)(t - epoch0), g};
    } else {
        int rc = publish(net, pi, g, t, err);
        if (rc)
            return rc;
    }
    return send(net, pi, g, t, err);
}

static int step(nesim_net *net, int64_t t, int64_t epoch0, nesim_error *err)
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
    /* 1. deliver */
    for (size_t k = 0; k < nd; k++)
        deliver(net, &dv[k], t);
    for (size_t k = 0; k < np; k++) {
        uint32_t g = pv[k].id;
        rpop *p = &net->pops[net->pop_of[g]];
        nesim_nrec *r = &net->rec[g];
        p->k.c.events++;
        if (pv[k].aux != r->gen)
            continue; /* cancelled */
        r->flags |= NESIM_F_DUE;
        nesim_pop_mark(&p->k, r, g - p->k.first);
        activate(net, p);
    }
    /* 2. test, 3. fire: population by population, so ascending global id */
    if (net->n_act > 16) {
        qsort(net->act, (size_t)net->n_act, sizeof *net->act, cmp_int);
    } else { /* a few: by insertion (libc's qsort costs hundreds of instructions a call) */
        for (int a = 1; a < net->n_act; a++) {
            int v = net->act[a], b = a;
            for (; b > 0 && net->act[b - 1] > v; b--)
                net->act[b] = net->act[b - 1];
            net->act[b] = v;
        }
    }
    const int defer = t == net->defer_tick;
    for (int a = 0; a < net->n_act; a++) {
        int pi = net->act[a];
        rpop *p = &net->pops[pi];
        net->io.n_fire = 0;
        p->k.defer = defer && p->k.later;
        p->ops->test(&p->k, t);
        p->k.defer = 0;
        if (p->k.n_later) {
            net->pend[net->n_pend++] = pi;
            net->pend_t = t;
        }
        p->k.n_cand = 0;
        p->active = 0;
        if ((rc = drain(net, err)))
            return rc;
        if (net->io.n_fire > 1)
            sort_fired(net->io.fire, net->io.n_fire, net->fire_tmp, p->k.n);
        for (size_t k = 0; k < net->io.n_fire; k++) {
            uint32_t j = net->io.fire[k];
            p->ops->reset(&p->k, j, t);
            if ((rc = drain(net, err)) || (rc = emit(net, p, pi, p->k.first + j, t, epoch0, err)))
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

/* The predictions step deferred (net->defer_tick), made now; the queue's
 * depth after the tick counts them, as without deferral. */
static int settle(nesim_net *net, nesim_error *err)
{
    int rc = NESIM_OK;
    for (int a = 0; a < net->n_pend && !rc; a++) {
        nesim_pop *k = &net->pops[net->pend[a]].k;
        net->traffic.deferred += k->n_later;
        net->pops[net->pend[a]].ops->settle(k, net->pend_t);
        rc = drain(net, err);
    }
    if (net->n_pend)
        net->depth_last = net->q.size;
    net->n_pend = 0;
    return rc;
}

/* Steps every tick with an event before stop (epoch0: the tick the ranks'
 * spike offsets count from). */
static int run_until(nesim_net *net, int64_t stop, int64_t epoch0, nesim_error *err)
{
    for (;;) {
        int64_t t = nesim_queue_peek_tick(&net->q);
        if (t >= stop)
            return NESIM_OK;
        int rc = step(net, t, epoch0, err);
        if (rc)
            return rc;
    }
}

/* ---- several ranks: epochs and exchanges ---- */

/* What each rank sends after an epoch (or a window), in one fixed-size
 * Allgather: its status, its next event, its spike count, then up to `cap`
 * of its spikes (a block of the same size on every rank); the rest follow
 * in an Allgatherv. cap follows the largest count seen lately, the same on
 * every rank (all see the same counts): a network's usual epoch needs one
 * collective. */
typedef struct wire_top {
    int64_t spikes; /* this rank's spikes of the epoch or window */
    int64_t next;   /* its next event (overlapped: after the window, the other ranks' spikes excluded) */
    int64_t failed; /* its status: nonzero ends the run on every rank */
} wire_top;

/* The smallest block, in spikes per rank; the bound on one block over all
 * ranks (a burst beyond goes to the allgatherv). */
enum { WIRE_INLINE = 30, WIRE_BLOCK_BYTES = 1 << 22 };

/* The next blocks' spikes per rank from the largest count of the exchange
 * just finished (recent: a decaying maximum, kept by the caller). */
static size_t wire_cap(uint64_t *recent, int64_t most, size_t cap_max)
{
    *recent = (uint64_t)most > *recent - *recent / 16 ? (uint64_t)most : *recent - *recent / 16;
    size_t want = WIRE_INLINE;
    while (want < *recent + *recent / 4 && want < cap_max)
        want *= 2;
    return want < cap_max ? want : cap_max;
}

/* Room for a block of `stride` bytes per rank: mine and every rank's. */
static int wire_room(unsigned char **snd, size_t *snd_cap, unsigned char **rcv, size_t *rcv_cap, size_t stride,
                     int K, nesim_error *err)
{
    if (stride > *snd_cap) {
        free(*snd);
        if (!(*snd = malloc(stride)))
            return *snd_cap = 0, nesim_fail(err, NESIM_ENOMEM, "out of memory for the spike exchange");
        *snd_cap = stride;
    }
    if (stride * (size_t)K > *rcv_cap) {
        free(*rcv);
        if (!(*rcv = malloc(stride * (size_t)K)))
            return *rcv_cap = 0, nesim_fail(err, NESIM_ENOMEM, "out of memory for the spike exchange");
        *rcv_cap = stride * (size_t)K;
    }
    return NESIM_OK;
}

/* The largest block, in spikes per rank, for K ranks. */
static size_t wire_cap_max(int K)
{
    size_t m = WIRE_BLOCK_BYTES / ((size_t)K * sizeof(wire_spike));
    return m < WIRE_INLINE ? WIRE_INLINE : m;
}

/* What every rank's block (of `sent` spikes at most) says; each rank's count
 * and first spikes go to cnt and in. */
typedef struct wire_sum {
    int failed, over;            /* some rank failed; some rank sent more than its block holds */
    int64_t next, total, most;   /* the earliest next event; spikes in all; the most of one rank */
} wire_sum;

static wire_sum wire_read(const unsigned char *rcv, size_t stride, int K, size_t sent, int64_t *cnt,
                          const wire_spike **in)
{
    wire_sum w = {.next = INT64_MAX};
    for (int r = 0; r < K; r++) {
        wire_top top;
        memcpy(&top, rcv + (size_t)r * stride, sizeof top);
        w.failed |= top.failed != 0;
        w.next = top.next < w.next ? top.next : w.next;
        w.total += top.spikes;
        w.most = top.spikes > w.most ? top.spikes : w.most;
        w.over |= top.spikes > (int64_t)sent;
        cnt[r] = top.spikes;
        in[r] = (const wire_spike *)(rcv + (size_t)r * stride + sizeof top);
    }
    return w;
}

/* The spikes past the blocks, every rank's beyond its first `sent`, in one
 * allgatherv into *rest (this rank's from beyond; bytes: per rank, scratch). */
static int wire_rest(nesim_net *net, const int64_t *cnt, size_t sent, size_t *bytes, const wire_spike *beyond,
                     const void **rest, nesim_error *err)
{
    for (int r = 0; r < net->ranks; r++)
        bytes[r] = cnt[r] > (int64_t)sent ? (size_t)(cnt[r] - (int64_t)sent) * sizeof(wire_spike) : 0;
    int rc = nesim_comm_allgatherv(net->comm, beyond, bytes, rest, "the spike exchange", err);
    if (!rc)
        net->traffic.bytes += bytes[net->rank];
    return rc;
}

/* Fills a block: the top, the first ni of n spikes, zeros (defined bytes on the wire). */
static void wire_fill(unsigned char *blk, const wire_top *top, const wire_spike *sp, size_t ni, size_t cap)
{
    memcpy(blk, top, sizeof *top);
    if (ni)
        memcpy(blk + sizeof *top, sp, ni * sizeof *sp);
    memset(blk + sizeof *top + ni * sizeof *sp, 0, (cap - ni) * sizeof *sp);
}

static int cmp_spike(const void *a, const void *b)
{
    const nesim_spike *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Queues the other ranks' spikes and publishes everyone's in canonical
 * order (every rank publishes the same list). Rank r sent count[r] spikes:
 * the first (up to n_inline) at inl[r], the rest at rest[off .. ] where
 * off sums the earlier ranks' rests (one allgatherv, rank by rank). */
static int take_spikes(nesim_net *net, const int64_t *count, const wire_spike *const *inl, size_t n_inline,
                       const wire_spike *rest, int64_t epoch0, nesim_error *err)
{
    const int64_t ni = (int64_t)n_inline;
    size_t total = 0;
    for (int r = 0; r < net->ranks; r++)
        total += (size_t)count[r];
    if (total > net->cap_merged) {
        nesim_spike *m = realloc(net->merged, total * sizeof *m);
        if (!m)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory merging %zu spikes", total);
        net->merged = m, net->cap_merged = total;
    }
    /* each rank's spikes come in canonical order: merge them (rank r's
     * next is at i[r] of count[r]) */
    enum { MERGE_MAX = 16 };
    int K = net->ranks;
    if (K <= MERGE_MAX) {
        int64_t i[MERGE_MAX] = {0};
        size_t off[MERGE_MAX];
        for (int r = 0, o = 0; r < K; r++) {
            off[r] = (size_t)o;
            o += count[r] > ni ? (int)(count[r] - ni) : 0;
        }
        for (size_t k = 0; k < total; k++) {
            const wire_spike *best = NULL;
            int br = -1;
            for (int r = 0; r < K; r++) {
                if (i[r] >= count[r])
                    continue;
                const wire_spike *w = i[r] < ni ? &inl[r][i[r]] : &rest[off[r] + (size_t)(i[r] - ni)];
                if (!best || w->dt < best->dt || (w->dt == best->dt && w->id < best->id))
                    best = w, br = r;
            }
            i[br]++;
            net->merged[k] = (nesim_spike){epoch0 + best->dt, best->id, (uint32_t)net->pop_of[best->id]};
        }
    } else {
        size_t k = 0;
        for (int r = 0; r < K; r++)
            for (int64_t j = 0; j < count[r]; j++, k++) {
                const wire_spike *w = j < ni ? &inl[r][j] : rest++;
                net->merged[k] = (nesim_spike){epoch0 + w->dt, w->id, (uint32_t)net->pop_of[w->id]};
            }
        qsort(net->merged, total, sizeof *net->merged, cmp_spike);
    }
    int rc = NESIM_OK;
    for (size_t i = 0; i < total && !rc; i++) {
        const nesim_spike *sp = &net->merged[i];
        if (!owns(net, sp->id))
            rc = send(net, (int)sp->pop, sp->id, sp->t, err);
        if (!rc)
            rc = publish(net, (int)sp->pop, sp->id, sp->t, err);
    }
    return rc;
}

/* Runs [now, end) on several ranks. Each pass: exchange the last epoch's
 * spikes and every rank's next event and status; stop if one failed or
 * nothing is left before end; else run the epoch that starts at the
 * earliest next event and is min-delay long (shorter at end). The exchange
 * is posted before the predictions of the epoch's last tick (deferred by
 * step, made by settle while it travels): a spike of that tick needs only
 * the threshold test, and a prediction's tick lies past the epoch. With a
 * min delay of one tick (CUBA, Benchmark 4) every tick is an epoch, and the
 * predictions are most of a tick's work. */
static int run_ranks(nesim_net *net, int64_t end, nesim_error *err)
{
    int K = net->ranks, rc = NESIM_OK;
    size_t *bytes = malloc((size_t)K * sizeof *bytes);
    int64_t *cnt = malloc((size_t)K * sizeof *cnt);
    const wire_spike **in = malloc((size_t)K * sizeof *in);
    unsigned char *snd = NULL, *rcv = NULL;
    size_t snd_cap = 0, rcv_cap = 0, cap = WIRE_INLINE;
    const size_t cap_max = wire_cap_max(K);
    uint64_t recent = 0;
    if (!bytes || !cnt || !in) {
        free(bytes), free(cnt), free((void *)in);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    int overlapped;
    const int64_t len = nesim_net_exchange_ticks(net, &overlapped);
    int64_t epoch0 = 0;
    for (;;) {
        const size_t sent = cap, stride = sizeof(wire_top) + sent * sizeof(wire_spike);
        const size_t n_in = net->n_out < sent ? net->n_out : sent;
        wire_top mine = {(int64_t)net->n_out, nesim_queue_peek_tick(&net->q), rc};
        if (net->n_pend && net->pend_t + 1 < mine.next) /* the deferred predictions lie past pend_t */
            mine.next = net->pend_t + 1;
        int crc = wire_room(&snd, &snd_cap, &rcv, &rcv_cap, stride, K, err);
        if (!crc) {
            wire_fill(snd, &mine, net->out, n_in, sent);
            crc = nesim_comm_allgather_post(net->comm, snd, stride, rcv, "the spike exchange", err);
        }
        if (crc) {
            rc = crc;
            break;
        }
        if (!rc) /* a failure here is told at the next exchange */
            rc = settle(net, err);
        if ((crc = nesim_comm_allgather_finish(net->comm, err))) {
            rc = crc;
            break;
        }
        net->traffic.bytes += stride;
        const wire_sum w = wire_read(rcv, stride, K, sent, cnt, in);
        const int64_t next = w.next;
        if (w.failed) { /* every rank ends with the first failing rank's message */
            rc = nesim_comm_agree(net->comm, rc, err);
            break;
        }
        if (w.total) {
            const void *rest = NULL;
            if (w.over && (crc = wire_rest(net, cnt, sent, bytes, net->out + n_in, &rest, err))) {
                rc = crc;
                break;
            }
            net->traffic.epochs++;
            net->traffic.spikes += net->n_out;
            net->n_out = 0;
            cap = wire_cap(&recent, w.most, cap_max); /* the next blocks' size: every rank alike */
            if (!rc)
                rc = take_spikes(net, cnt, in, sent, rest, epoch0, err);
        }
        if (rc)
            continue; /* told to every rank at the next exchange */
        if (next >= end)
            break;
        epoch0 = next;
        const int64_t stop = end - epoch0 > len ? epoch0 + len : end;
        net->defer_tick = net->overlap ? stop - 1 : -1;
        rc = run_until(net, stop, epoch0, err);
        net->defer_tick = -1;
    }
    if (!rc) /* nothing is left deferred: a failed post or finish ends the run anyway */
        rc = settle(net, err);
    free(bytes), free(cnt), free((void *)in), free(snd), free(rcv);
    return rc;
}

/* ---- several ranks, each exchange overlapped with the next window ----
 *
 * With a min delay D >= 2 a spike fired at tick s arrives at s + D or later,
 * so time splits into windows of W = D / 2 ticks whose spikes are needed two
 * windows later, not one: a rank posts a window's exchange (non-blocking),
 * runs the next window while it travels, then finishes it, queues the other
 * ranks' spikes and posts the window it just ran (double buffering: one
 * window in flight, one being filled). Each rank sends a fixed-size block:
 * its status, its next event, its spike count and up to `cap` spikes; more
 * follow in an allgatherv at the finish. cap follows the largest count seen
 * lately, the same on every rank (all see the same counts). Silent
 * stretches: when a finished exchange holds no spike and no rank's next
 * event falls before the end of the window just run, that window was silent
 * everywhere and nothing is in flight, so the next window starts at the
 * earliest next event. The spikes are published exchange by exchange in
 * canonical order, as with the blocking exchange: the same bytes. */
typedef struct overlap {
    size_t cap, cap_max, stride; /* spikes inline per rank; block bytes per rank */
    uint64_t recent;             /* a decaying maximum of the per-rank count */
    unsigned char *snd, *rcv;    /* this rank's block, every rank's blocks */
    size_t snd_cap, rcv_cap;
    wire_spike *held;            /* the spikes of the window in flight (all of them) */
    size_t n_held, cap_held;
    int64_t epoch0;              /* its first tick */
    size_t *bytes;               /* per rank: the allgatherv's counts */
    int64_t *cnt;
    const wire_spike **in;
} overlap;

static void overlap_free(overlap *o)
{
    free(o->snd), free(o->rcv), free(o->held), free(o->bytes), free(o->cnt), free((void *)o->in);
}

/* Posts the window [epoch0, ...) just run: this rank's spikes move to held
 * (net->out is then empty for the next window) and its block goes out. */
static int overlap_post(nesim_net *net, overlap *o, int64_t epoch0, int status, nesim_error *err)
{
    const int K = net->ranks;
    size_t n = net->n_out, ni = n < o->cap ? n : o->cap;
    o->stride = sizeof(wire_top) + o->cap * sizeof(wire_spike);
    int rc = wire_room(&o->snd, &o->snd_cap, &o->rcv, &o->rcv_cap, o->stride, K, err);
    if (rc)
        return rc;
    wire_top top = {(int64_t)n, nesim_queue_peek_tick(&net->q), status};
    wire_fill(o->snd, &top, net->out, ni, o->cap);
    wire_spike *w = o->held;
    size_t wc = o->cap_held;
    o->held = net->out, o->cap_held = net->cap_out, o->n_held = n;
    net->out = w, net->cap_out = wc, net->n_out = 0;
    o->epoch0 = epoch0;
    net->traffic.epochs++;
    net->traffic.spikes += n;
    net->traffic.bytes += o->stride;
    return nesim_comm_allgather_post(net->comm, o->snd, o->stride, o->rcv, "the spike exchange", err);
}

/* Finishes the window in flight. *failed: some rank reported a failure
 * (then nothing was taken; the caller agrees on it). Otherwise the other
 * ranks' spikes are queued and everyone's published; *jump is the earliest
 * next event when the window that ended at `stop` was silent everywhere
 * (else -1). A return other than NESIM_OK with !*failed: the exchange itself
 * broke, or this rank failed taking (reported at the next post). */
static int overlap_finish(nesim_net *net, overlap *o, int64_t stop, int *failed, int64_t *jump, nesim_error *err)
{
    const int K = net->ranks;
    const size_t sent = o->cap; /* the blocks in flight hold up to this many spikes (cap moves below) */
    *failed = 0, *jump = -1;
    int rc = nesim_comm_allgather_finish(net->comm, err);
    if (rc)
        return rc;
    const wire_sum w = wire_read(o->rcv, o->stride, K, sent, o->cnt, o->in);
    *failed = w.failed;
    if (*failed)
        return NESIM_OK;
    if (!w.total) {
        if (w.next >= stop)
            *jump = w.next;
        return NESIM_OK;
    }
    const void *rest = NULL;
    if (w.over && (rc = wire_rest(net, o->cnt, sent, o->bytes, o->held + (o->n_held < sent ? o->n_held : sent),
                                  &rest, err)))
        return rc;
    o->cap = wire_cap(&o->recent, w.most, o->cap_max); /* from the counts every rank saw alike */
    return take_spikes(net, o->cnt, o->in, sent, rest, o->epoch0, err);
}

/* Runs [now, end) on several ranks with min delay >= 2: windows of
 * min_delay / 2 ticks, each exchange in flight while the next window runs. */
static int run_ranks_overlap(nesim_net *net, int64_t end, nesim_error *err)
{
    const int K = net->ranks;
    int overlapped;
    const int64_t W = nesim_net_exchange_ticks(net, &overlapped);
    overlap o = {.cap = WIRE_INLINE};
    o.cap_max = wire_cap_max(K);
    o.bytes = malloc((size_t)K * sizeof *o.bytes);
    o.cnt = malloc((size_t)K * sizeof *o.cnt);
    o.in = malloc((size_t)K * sizeof *o.in);
    if (!o.bytes || !o.cnt || !o.in) {
        overlap_free(&o);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    int64_t s = nesim_queue_peek_tick(&net->q);
    int rc = nesim_comm_min_i64(net->comm, &s, "the first window", err);
    int pending = 0;
    while (!rc && s < end) {
        int64_t stop = end - s > W ? s + W : end;
        rc = run_until(net, stop, s, err);
        int failed = 0;
        int64_t jump = -1;
        if (pending) {
            pending = 0;
            int frc = overlap_finish(net, &o, stop, &failed, &jump, err);
            if (failed) {
                rc = nesim_comm_agree(net->comm, rc, err);
                break;
            }
            if (frc && nesim_comm_broken(net->comm)) {
                rc = frc;
                break;
            }
            if (!rc)
                rc = frc; /* a failure to take: reported with this window */
        }
        int prc = overlap_post(net, &o, s, rc, err);
        if (prc) {
            rc = prc;
            break;
        }
        pending = 1;
        int64_t ns = jump > stop ? jump : stop;
        if (rc || ns >= end) { /* the last window (or a failure to report): drain */
            pending = 0;
            int frc = overlap_finish(net, &o, ns, &failed, &jump, err);
            if (failed)
                rc = nesim_comm_agree(net->comm, rc, err);
            else if (frc && nesim_comm_broken(net->comm))
                rc = frc;
            else /* a failure to take the last window reaches every rank */
                rc = nesim_comm_agree(net->comm, frc, err);
            break;
        }
        s = ns;
    }
    overlap_free(&o);
    return rc;
}

/* Sums the ranks' counters into sum (nesim_population_counters reads them). */
static int sum_counters(nesim_net *net, nesim_error *err)
{
    int n = net->g->n_pops;
    uint64_t *v = malloc((size_t)n * 5 * sizeof *v);
    if (!v)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int p = 0; p < n; p++) {
        const nesim_counters *c = &net->pops[p].k.c;
        uint64_t *o = v + 5 * p;
        o[0] = c->spikes, o[1] = c->sops, o[2] = c->updates, o[3] = c->events, o[4] = c->predictions;
    }
    int rc = nesim_comm_sum_u64(net->comm, v, (size_t)n * 5, "the counters' sum", err);
    for (int p = 0; !rc && p < n; p++) {
        const uint64_t *o = v + 5 * p;
        net->pops[p].sum = (nesim_counters){.spikes = o[0], .sops = o[1], .updates = o[2], .events = o[3],
                                            .predictions = o[4]};
    }
    free(v);
    return rc;
}

int nesim_run(nesim_net *net, int64_t n_ticks, nesim_error *err)
{
    if (n_ticks < 0)
        return nesim_fail(err, NESIM_EINVAL, "run: negative duration (%lld ticks)", (long long)n_ticks);
    if (net->g->n_pops == 0)
        return nesim_fail(err, NESIM_EINVAL, "run: the network has no population");
    if (net->broken)
        return nesim_fail(err, NESIM_ESTATE, "run: an earlier run of this network failed");
    int rc;
    if (!net->started && (rc = start(net, err))) {
        net->broken = 1;
        return rc;
    }
    if (n_ticks > INT64_MAX - net->q.now)
        return nesim_fail(err, NESIM_EINVAL, "run: %lld ticks from tick %lld overflow virtual time",
                          (long long)n_ticks, (long long)net->q.now);
    int64_t end = net->q.now + n_ticks;
    if (net->ranks > 1) {
        int overlapped;
        nesim_net_exchange_ticks(net, &overlapped);
        if ((rc = overlapped ? run_ranks_overlap(net, end, err) : run_ranks(net, end, err)) ||
            (rc = sum_counters(net, err))) {
            net->broken = 1;
            return rc;
        }
    } else if ((rc = run_until(net, end, 0, err))) {
        net->broken = 1;
        return rc;
    }
    net->depth_wsum += (double)net->depth_last * (double)(end - net->depth_t);
    net->depth_t = end;
    nesim_queue_advance(&net->q, end); /* over the silent tail */
    int64_t span = end - net->t0;
    net->qs.mean_depth = span > 0 ? net->depth_wsum / (double)span : 0;
    return NESIM_OK;
}

/* ---- read-out ------------------------------------------------------------ */

int64_t nesim_now(const nesim_net *net) { return net->started ? net->q.now : 0; }
double nesim_tick_seconds(const nesim_net *net) { return net->g->tick_s; }
int nesim_population_count(const nesim_net *net) { return net->g->n_pops; }
const char *nesim_population_name(const nesim_net *net, int p) { return net->g->pops[p].name; }
uint32_t nesim_population_size(const nesim_net *net, int p) { return net->g->pops[p].n; }
uint32_t nesim_population_first(const nesim_net *net, int p) { return net->g->pops[p].first; }
const nesim_counters *nesim_population_counters(const nesim_net *net, int p)
{
    return net->ranks > 1 ? &net->pops[p].sum : &net->pops[p].k.c;
}
uint64_t nesim_projection_synapses(const nesim_net *net, int j) { return net->g->projs[j].n_syn; }
nesim_queue_stats nesim_queue_statistics(const nesim_net *net) { return net->qs; }
int nesim_projection_count(const nesim_net *net) { return net->g->n_projs; }
const nesim_proj_spec *nesim_projection_spec(const nesim_net *net, int j) { return &net->g->projs[j].s; }
const nesim_dyn *nesim_population_dyn(const nesim_net *net, int p)
{
    return net->started ? &net->pops[p].k.dyn : &net->g->pops[p].dyn;
}
int nesim_population_of(const nesim_net *net, uint32_t g) { return nesim_graph_population_of(net->g, g); }

const nesim_dyn *nesim_neuron_dyn(const nesim_net *net, uint32_t g)
{
    int pi = nesim_graph_population_of(net->g, g);
    if (pi < 0)
        return NULL;
    const nesim_graph_pop *P = &net->g->pops[pi];
    if (!P->cls)
        return nesim_population_dyn(net, pi);
    uint32_t c = P->cls[g - P->first];
    return net->started ? &net->pops[pi].cdyn[c] : &P->cdyn[c];
}

const char *nesim_population_kernels(const nesim_net *net, int p)
{
    const nesim_dyn *d = &net->g->pops[p].dyn;
    return d->model->ops(d)->name;
}

size_t nesim_projection_targets(const nesim_net *net, int j, uint32_t i, uint32_t *out, size_t cap)
{
    return nesim_graph_targets(net->g, j, i, out, cap);
}

size_t nesim_projection_weights(const nesim_net *net, int j, uint32_t i, double *w, size_t cap)
{
    const nesim_graph_proj *pj = &net->g->projs[j];
    size_t n = nesim_graph_targets(net->g, j, i, NULL, 0);
    for (size_t k = 0; k < n && k < cap; k++)
        w[k] = pj->s.kind == NESIM_EXPLICIT ? pj->w[pj->row[i] + k] : pj->s.weight;
    return n;
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
    if (!net->started)
        return nesim_fail(err, NESIM_ESTATE, "neuron state: the network has not run yet");
    rpop *p = &net->pops[pi];
    if (!owns(net, g))
        return nesim_fail(err, NESIM_EINVAL, "neuron %u: simulated by another rank", g);
    double tmp[NESIM_STATE_MAX] = {0};
    p->ops->state(&p->k, g - p->k.first, net->q.now, tmp);
    int n = p->k.dyn.n_state < max ? p->k.dyn.n_state : max;
    memcpy(state, tmp, (size_t)(n > 0 ? n : 0) * sizeof(double));
    return NESIM_OK;
}

#define FNV_PRIME 1099511628211ull

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* FNV-1a over v's 8 bytes, least significant first (memory order here): a
 * zero byte only multiplies, so the run of zero bytes above v's highest set
 * one is one multiplication by a power of the prime (mod 2^64, the same
 * value): a word of b set bytes takes b + 1 dependent multiplications, not
 * 8 (a spike's tick and id below 2^16: 6, not 16). */
static inline uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    static const uint64_t pw[9] = {1ull,
                                   FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME * FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME,
                                   FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME * FNV_PRIME *
                                       FNV_PRIME};
    int nb = v ? (64 - __builtin_clzll(v) + 7) / 8 : 0;
    for (int k = 0; k < nb; k++, v >>= 8)
        h = (h ^ (v & 0xff)) * FNV_PRIME;
    return h * pw[8 - nb];
}

uint64_t nesim_spike_checksum_add(uint64_t h, int64_t t, uint32_t id)
{
    return fnv_u64(fnv_u64(h, (uint64_t)t), id);
}
#else
uint64_t nesim_spike_checksum_add(uint64_t h, int64_t t, uint32_t id)
{
    uint64_t w[2] = {(uint64_t)t, id};
    const unsigned char *b = (const unsigned char *)w;
    for (size_t k = 0; k < sizeof w; k++)
        h = (h ^ b[k]) * FNV_PRIME;
    return h;
}
#endif

uint64_t nesim_spike_checksum(const nesim_spike *s, size_t n)
{
    uint64_t h = NESIM_SPIKE_CHECKSUM_INIT;
    for (size_t i = 0; i < n; i++)
        h = nesim_spike_checksum_add(h, s[i].t, s[i].id);
    return h;
}

int nesim_ticks_of(double seconds, double tick_s, const char *what, int64_t *ticks, nesim_error *err)
{
    double n = seconds / tick_s;
    if (!(tick_s > 0) || !isfinite(n) || !(n < 0x1p62))
        return nesim_fail(err, NESIM_EINVAL, "%s: %g s is more ticks of %g s than virtual time holds (at most 2^62)",
                          what, seconds, tick_s);
    if (!(n >= 0.5))
        return nesim_fail(err, NESIM_EINVAL, "%s: %g s is shorter than one tick of %g s", what, seconds, tick_s);
    *ticks = (int64_t)llround(n);
    return NESIM_OK;
}
