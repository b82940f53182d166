/* lif.c — leaky integrate-and-fire with voltage-jump synapses (Brette et al.
 * 2007, Benchmark 4): tau_m dv/dt = v_rest - v, an input w adds w to v.
 * Between inputs v relaxes monotonically to v_rest, so the crossing time has
 * the closed form t = tau_m ln((v_rest - v) / (v_rest - v_thresh)).
 *
 * Two sets of kernels: with a fixed threshold and reset to v_reset, the epoch
 * representation (epoch.h), which tests and trips in the invariant space
 * directly: v >= theta  <=>  x >= (theta - E_L) e^{(t-T0)/tau}; otherwise
 * (reset by subtraction, the adaptive rule: "alif") the default kernels. */
#include "neurons/epoch.h"
#include "neurons/model_util.h"
#include "neurons/point.h"

enum { P_TAU_M, P_V_REST, P_V_THRESH, P_V_RESET, P_T_REF, P_RESET_SUBTRACT, N_PARAMS };
enum { TM = 0 };

/* Check levels of the epoch prediction: within slack, then within slack / 2. */
#ifndef LIF_LEVELS
#define LIF_LEVELS 2
#endif

static const nesim_param_def params[N_PARAMS] = {
    {"tau_m", "s", NAN, NESIM_P_POSITIVE, "membrane time constant"},
    {"v_rest", "V", 0, 0, "resting (leak reversal) level E_L"},
    NESIM_PDEF_V_THRESH, NESIM_PDEF_V_RESET, NESIM_PDEF_T_REF, NESIM_PDEF_RESET_SUBTRACT,
};

static int lif_prepare(nesim_dyn *d, nesim_error *err)
{
    int rc = nesim_check_reset(d, err);
    if (rc)
        return rc;
    d->n_tau = 1;
    d->rate[TM] = d->tick_s / d->par[P_TAU_M];
    return NESIM_OK;
}

static inline void lif_adv(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    int64_t f = nesim_v_from(from, ref);
    if (to > f)
        s[0] = d->par[P_V_REST] + (s[0] - d->par[P_V_REST]) * nesim_decay(d, TM, to - f);
}

static inline void lif_inp(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

static double lif_kick(const nesim_dyn *d, double w) { return w > 0 ? w : 0; }

/* First tick in [kmin, hi) with v >= th for v relaxing from v0 at s0 to el > th. */
static int64_t lif_first(const nesim_dyn *d, double v0, int64_t s0, int64_t kmin, double th)
{
    double el = d->par[P_V_REST];
#define V_AT(k) (el + (v0 - el) * nesim_decay(d, TM, (k) - s0))
    /* logf is a guess good to ~1e-7 relative; the loops below settle the tick
     * exactly against the same propagator the engine advances with. */
    double tstar = (double)logf((float)((el - v0) / (el - th))) / d->rate[TM];
    int64_t k = tstar > 4e18 ? NESIM_NEVER : s0 + (int64_t)tstar + 1;
    if (k < kmin)
        k = kmin;
    while (k != NESIM_NEVER && k > kmin && V_AT(k - 1) >= th)
        k--;
    while (k != NESIM_NEVER && V_AT(k) < th)
        k++;
    return k;
}

/* The adaptive rule: v - threshold = (E_L - theta) + (v - E_L) e_m - a e_a,
 * searched by crossing.c (refractory: v frozen, a decaying, until ref). */
static int64_t lif_pred_rule(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                             int64_t hi, nesim_scratch *ws, double *margin)
{
    double st[NESIM_STATE_MAX];
    for (int i = 0; i < d->n_state; i++)
        st[i] = s[i];
    int64_t s0 = t;
    if (t < ref) {
        NESIM_POINT_ADVANCE(lif_adv, d, st, t, ref, ref);
        s0 = ref;
    }
    nesim_expsum f = {.c0 = d->par[P_V_REST] - d->v_thresh, .n = 1, .d = d,
                      .x = {st[0] - d->par[P_V_REST]}, .term = {TM}};
    nesim_rule_terms(d, st + d->rule_off, &f);
    int64_t from = lo > s0 ? lo : s0;
    int64_t top = hi == NESIM_NEVER ? -1 : hi - 1 - s0;
    int64_t k = nesim_expsum_predict(&f, from - s0, top, d->slack, ws, margin);
    return k < 0 ? NESIM_NEVER : s0 + k;
}

static inline int64_t lif_pred(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                               int64_t hi, nesim_scratch *ws, double *margin)
{
    if (d->rule_kind != NESIM_RULE_FIXED)
        return lif_pred_rule(d, s, t, ref, lo, hi, ws, margin);
    int64_t s0 = nesim_v_from(t, ref), kmin = lo > s0 ? lo : s0;
    double v0 = s[0], el = d->par[P_V_REST], th = d->v_thresh;
    double vmin = V_AT(kmin);
    if (vmin >= th)
        return *margin = INFINITY, kmin;
    if (el <= th) { /* relaxes to a level at or below threshold: never crosses */
        *margin = th - fmax(vmin, el);
        return NESIM_NEVER;
    }
    /* far below threshold: answer when v comes within slack (a check) */
    double tc = th - d->slack;
    int64_t k = lif_first(d, v0, s0, kmin, vmin < tc ? tc : th);
    if (k >= hi) {
        *margin = th - V_AT(hi - 1);
        return NESIM_NEVER;
    }
    *margin = th - V_AT(k - 1);
    return k;
#undef V_AT
}

NESIM_POINT_MODEL(lif, lif_adv, lif_inp, lif_pred)

/* ---- the epoch kernels (fixed threshold, reset to v_reset) ---- */

/* First tick >= s0 at which x[0] reaches the threshold level, or (when
 * further than the slack below it) a check tick no later than that; the trip
 * level is the threshold level of the tick before the answer, exactly: an
 * input that lifts x[0] to it could bring the crossing earlier. */
static void ep_predict(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t s0)
{
    const nesim_epoch *E = p->impl;
    p->c.predictions++;
    int64_t T0 = r->ts << E->shift, j0 = s0 - T0, k;
    double u = r->x[0], cu = E->cth, trip = INFINITY;
    if (u >= cu * nesim_ep_e(E, 0, j0)) {
        k = s0;
    } else if (!(cu < 0)) { /* relaxes to a level at or below threshold */
        k = NESIM_NEVER;
        trip = cu * nesim_ep_e(E, 0, j0);
    } else {
        /* the check level: within slack, or within half of it once there */
        double e0 = nesim_ep_e(E, 0, j0), ct = cu - p->dyn.slack;
        int exact = 0;
        if (!(u < ct * e0)) {
            ct = cu - 0.5 * p->dyn.slack;
            exact = LIF_LEVELS < 2 || !(u < ct * e0);
        }
        double y = log(u / (exact ? cu : ct)) * E->tau0;
        int64_t jj = !(y < (double)E->jmax) ? E->jmax : (int64_t)y + 1;
        if (jj <= j0)
            jj = j0 + 1;
        while (jj > j0 + 1 && u >= cu * nesim_ep_e(E, 0, jj - 1))
            jj--;
        if (exact)
            while (jj < E->jmax && u < cu * nesim_ep_e(E, 0, jj))
                jj++;
        k = T0 + jj;
        trip = cu * nesim_ep_e(E, 0, jj - 1);
    }
    r->budget = trip;
    nesim_pop_predict(p, r, j, k);
}

/* End of refractoriness at tick rr (the neuron is in the epoch of rr - 1 or
 * rr): the membrane coefficient restarts from v_reset. */
static void ep_restart(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t rr, int64_t from)
{
    const nesim_epoch *E = p->impl;
    int64_t jr = rr - (r->ts << E->shift);
    r->flags &= (uint8_t)~NESIM_F_WAKE;
    r->pred = NESIM_NEVER;
    r->x[0] = (p->dyn.v_reset - p->dyn.par[P_V_REST]) * nesim_ep_e(E, 0, jr);
    ep_predict(p, j, r, from);
}

static int ep_start(nesim_pop *p, nesim_error *err)
{
    int rc = nesim_epoch_start(p, 1, 1, err);
    if (rc)
        return rc;
    nesim_epoch *E = p->impl;
    E->cth = p->dyn.v_thresh - p->dyn.par[P_V_REST];
    E->gexc[0] = E->ginh[0] = 1;
    return NESIM_OK;
}

static void ep_init(nesim_pop *p, uint32_t j, double v0)
{
    nesim_nrec *r = &p->rec[j];
    r->stamp = -1;
    r->x[0] = v0 - p->dyn.par[P_V_REST];
    ep_predict(p, j, r, 0);
}

static uint64_t ep_deliver(nesim_pop *p, const nesim_fan *f, double w, double kick, int64_t t)
{
    nesim_epoch *E = p->impl;
    const nesim_dyn *d = &p->dyn;
    nesim_ep_at_tick(E, t);
    const double wE = w * E->E[0];
    const int64_t ep = E->ep;
    nesim_nrec *rec = p->rec;
    uint64_t ups = 0; /* neurons touched for the first time this tick */
    if (kick > 0) {
        NESIM_FAN_EACH(f, j, {
            nesim_nrec *r = &rec[j];
            ups += nesim_ep_touch(E, d, r, ep, t);
            double u = r->x[0] + wE;
            r->x[0] = u;
            if (u >= r->budget)
                nesim_pop_mark(p, r, j);
        });
    } else {
        NESIM_FAN_EACH(f, j, {
            nesim_nrec *r = &rec[j];
            ups += nesim_ep_touch(E, d, r, ep, t);
            r->x[0] += wE;
        });
    }
    return ups;
}

static int ep_above(const nesim_epoch *E, const nesim_nrec *r) { return r->x[0] >= E->U; }
static int ep_spent(const nesim_nrec *r) { return r->x[0] >= r->budget; }
static void ep_repredict(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t from, int64_t standing)
{
    ep_predict(p, j, r, from); /* a new search from the state: nothing to reuse */
}
static void ep_test(nesim_pop *p, int64_t t) { nesim_ep_test(p, t, ep_above, ep_spent, ep_repredict, ep_restart); }
static void ep_settle(nesim_pop *p, int64_t t) { nesim_ep_settle(p, t, ep_repredict); }
static void ep_reset(nesim_pop *p, uint32_t j, int64_t t) { nesim_ep_reset(p, j, t, ep_restart); }

static const nesim_pop_ops epoch_ops = {
    .name = "lif/epoch", .start = ep_start, .stop = nesim_epoch_stop, .init = ep_init,
    .deliver = ep_deliver, .test = ep_test, .settle = ep_settle, .reset = ep_reset, .state = nesim_ep_state,
};

static const nesim_pop_ops *lif_ops(const nesim_dyn *d)
{
    return d->rule_kind == NESIM_RULE_FIXED && !d->reset_subtract && !d->varied ? &epoch_ops : &lif_point_ops;
}

static int lif_drifts(const nesim_dyn *d) { return 1; }

const nesim_model nesim_model_lif = {
    .name = "lif", .doc = "leaky integrate-and-fire, voltage-jump synapses (Brette et al. 2007, Benchmark 4)",
    .params = params, .n_params = N_PARAMS, .n_state = 1, .rules = NESIM_RULES_ALL,
    .prepare = lif_prepare, .kick = lif_kick, .ops = lif_ops, .drifts = lif_drifts,
    .advance = lif_advance, .input = lif_input, .above = lif_above, .fire = lif_fire, .predict = lif_predict,
};
