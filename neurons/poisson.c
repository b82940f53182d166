/* poisson.c — a Poisson spike source: each tick it fires with probability
 * p = rate * tick, independently (Brian2's PoissonGroup). The gap to the next
 * spike is geometric, drawn from the neuron's own keyed sequence (base/rng.h:
 * the population's seed and stream, the neuron's index), so a source costs
 * one event per spike, not one per tick, and any rank can run any of them. */
#include <math.h>

#include "base/rng.h"
#include "neurons/model_util.h"

enum { P_RATE_HZ, N_PARAMS };

static const nesim_param_def params[N_PARAMS] = {
    {"rate_hz", "Hz", NAN, NESIM_P_NONNEG, "firing rate"},
};

static int po_prepare(nesim_dyn *d, nesim_error *err)
{
    double r = d->par[P_RATE_HZ];
    d->c[0] = r * d->tick_s;
    if (d->c[0] > 1)
        return nesim_fail(err, NESIM_EINVAL, "rate_hz %g exceeds one spike per tick (%g s); use a finer tick", r,
                          d->tick_s);
    return NESIM_OK;
}

static double po_kick(const nesim_dyn *d, double w) { return 0; }

static void next_spike(nesim_pop *p, uint32_t j, int64_t after)
{
    double prob = nesim_pop_dyn(p, j)->c[0];
    nesim_nrec *r = &p->rec[j];
    if (prob <= 0) {
        nesim_pop_predict(p, r, j, NESIM_NEVER);
        return;
    }
    double gap = nesim_key_geometric(&r->draw, prob, log1p(-prob));
    nesim_pop_predict(p, r, j, gap < 4e18 - (double)after ? after + (int64_t)gap : NESIM_NEVER);
}

static void po_init(nesim_pop *p, uint32_t j, double v0)
{
    p->rec[j].draw = nesim_key(p->seed, p->stream, j);
    next_spike(p, j, -1);
}

static uint64_t po_deliver(nesim_pop *p, const nesim_fan *f, double w, double kick, int64_t t)
{
    return 0; /* sources take no input (the engine refuses projections to them) */
}

static void po_test(nesim_pop *p, int64_t t)
{
    for (size_t k = 0; k < p->n_cand; k++) {
        uint32_t j = p->cand[k];
        nesim_nrec *r = &p->rec[j];
        uint8_t fl = r->flags;
        r->flags = 0;
        p->c.updates++;
        if (fl & NESIM_F_DUE)
            nesim_pop_fires(p, j);
    }
}

static void po_reset(nesim_pop *p, uint32_t j, int64_t t)
{
    p->rec[j].pred = NESIM_NEVER;
    next_spike(p, j, t);
}

static void po_state(const nesim_pop *p, uint32_t j, int64_t now, double *out) { out[0] = 0; }

static const nesim_pop_ops source_ops = {
    .name = "poisson/source", .init = po_init, .deliver = po_deliver, .test = po_test,
    .reset = po_reset, .state = po_state,
};

static const nesim_pop_ops *po_ops(const nesim_dyn *d) { return &source_ops; }

const nesim_model nesim_model_poisson = {
    .name = "poisson", .doc = "Poisson spike source (one Bernoulli draw per tick, drawn as geometric gaps)",
    .params = params, .n_params = N_PARAMS, .n_state = 1, .is_source = 1, .rules = 1u << NESIM_RULE_FIXED,
    .prepare = po_prepare, .kick = po_kick, .ops = po_ops,
};
