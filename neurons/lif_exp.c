/* lif_exp.c — LIF with exponential current synapses (the CUBA network):
 *   tau_m dv/dt = ge + gi - (v - v_rest),  tau_e dge/dt = -ge,  tau_i dgi/dt = -gi
 * An input w > 0 adds w to ge, w < 0 adds w to gi (volts). The exact
 * propagator over dt ticks, with A = ge tau_e/(tau_e - tau_m), B likewise:
 *   v(dt) = v_rest + (v - v_rest - A - B) e^{-dt/tau_m} + A e^{-dt/tau_e} + B e^{-dt/tau_i}
 * While refractory v is frozen and the currents keep decaying. The crossing
 * can fall between inputs (v may rise, then fall): found by crossing.c.
 *
 * Kernels: the epoch representation (epoch.h) with a fixed threshold and
 * reset to v_reset; the default kernels otherwise. */
#include "neurons/epoch.h"
#include "neurons/model_util.h"
#include "neurons/point.h"

enum { P_TAU_M, P_V_REST, P_V_THRESH, P_V_RESET, P_T_REF, P_TAU_E, P_TAU_I, P_RESET_SUBTRACT, N_PARAMS };
enum { TM = 0, TE = 1, TI = 2 };

static const nesim_param_def params[N_PARAMS] = {
    {"tau_m", "s", NAN, NESIM_P_POSITIVE, "membrane time constant"},
    {"v_rest", "V", 0, 0, "resting (leak reversal) level E_L"},
    NESIM_PDEF_V_THRESH, NESIM_PDEF_V_RESET, NESIM_PDEF_T_REF,
    {"tau_e", "s", NAN, NESIM_P_POSITIVE, "excitatory current decay (weights > 0)"},
    {"tau_i", "s", NAN, NESIM_P_POSITIVE, "inhibitory current decay (weights < 0)"},
    NESIM_PDEF_RESET_SUBTRACT,
};

static int lx_prepare(nesim_dyn *d, nesim_error *err)
{
    const double *p = d->par;
    int rc = nesim_check_reset(d, err);
    if (rc)
        return rc;
    if (p[P_TAU_E] == p[P_TAU_M] || p[P_TAU_I] == p[P_TAU_M])
        return nesim_fail(err, NESIM_EINVAL, "tau_e and tau_i must differ from tau_m (%g s)", p[P_TAU_M]);
    d->n_tau = 3;
    d->rate[TM] = d->tick_s / p[P_TAU_M];
    d->rate[TE] = d->tick_s / p[P_TAU_E];
    d->rate[TI] = d->tick_s / p[P_TAU_I];
    d->c[0] = p[P_TAU_E] / (p[P_TAU_E] - p[P_TAU_M]);
    d->c[1] = p[P_TAU_I] / (p[P_TAU_I] - p[P_TAU_M]);
    /* Peak of the response of v to a unit jump of ge: the kick bound. */
    double tm = p[P_TAU_M], te = p[P_TAU_E];
    double tpk = log(tm / te) * te * tm / (tm - te);
    d->c[2] = te / (tm - te) * (exp(-tpk / tm) - exp(-tpk / te));
    return NESIM_OK;
}

/* Propagates (v, ge, gi) over dt >= 0 ticks with v free. */
static inline void lx_free(const nesim_dyn *d, double *s, int64_t dt)
{
    double em = nesim_decay(d, TM, dt), ee = nesim_decay(d, TE, dt), ei = nesim_decay(d, TI, dt);
    double a = s[1] * d->c[0], b = s[2] * d->c[1], el = d->par[P_V_REST];
    s[0] = el + (s[0] - el - a - b) * em + a * ee + b * ei;
    s[1] *= ee;
    s[2] *= ei;
}

static inline void lx_adv(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    if (from < ref) { /* frozen v; currents decay up to the end of refractoriness */
        int64_t e = to < ref ? to : ref;
        s[1] *= nesim_decay(d, TE, e - from);
        s[2] *= nesim_decay(d, TI, e - from);
        from = e;
    }
    if (to > from)
        lx_free(d, s, to - from);
}

static inline void lx_inp(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (w >= 0)
        s[1] += w;
    else
        s[2] += w;
}

static double lx_kick(const nesim_dyn *d, double w) { return w > 0 ? w * d->c[2] : 0; }

static inline int64_t lx_pred(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                              int64_t hi, nesim_scratch *ws, double *margin)
{
    double st[NESIM_STATE_MAX];
    for (int i = 0; i < d->n_state; i++)
        st[i] = s[i];
    int64_t s0 = t;
    if (t < ref) {
        NESIM_POINT_ADVANCE(lx_adv, d, st, t, ref, ref);
        s0 = ref;
    }
    double a = st[1] * d->c[0], b = st[2] * d->c[1];
    nesim_expsum f = {.c0 = d->par[P_V_REST] - d->v_thresh, .n = 3, .d = d,
                      .x = {st[0] - d->par[P_V_REST] - a - b, a, b}, .term = {TM, TE, TI}};
    nesim_rule_terms(d, st + d->rule_off, &f);
    int64_t from = lo > s0 ? lo : s0;
    int64_t top = hi == NESIM_NEVER ? -1 : hi - 1 - s0;
    int64_t k = nesim_expsum_predict(&f, from - s0, top, d->slack, ws, margin);
    return k < 0 ? NESIM_NEVER : s0 + k;
}

NESIM_POINT_MODEL(lif_exp, lx_adv, lx_inp, lx_pred)

/* ---- the epoch kernels (fixed threshold, reset to v_reset) ---- */

/* The model's search (crossing.c) on the coefficients at s0. */
static void ep_predict(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t s0, int64_t hi)
{
    if (hi != NESIM_NEVER && hi <= s0) { /* tested at s0 anyway */
        r->budget = INFINITY;
        return;
    }
    const nesim_epoch *E = p->impl;
    p->c.predictions++;
    int64_t j0 = s0 - (r->ts << E->shift);
    nesim_expsum f = {.c0 = E->cth, .n = 3, .d = &p->dyn,
                      .x = {r->x[0] * nesim_ep_d(E, 0, j0), r->x[1] * nesim_ep_d(E, 1, j0),
                            r->x[2] * nesim_ep_d(E, 2, j0)},
                      .term = {0, 1, 2}};
    double m;
    int64_t k = nesim_expsum_predict(&f, 0, hi == NESIM_NEVER ? -1 : hi - 1 - s0, p->dyn.slack, p->io->ws, &m);
    r->budget = m * (1 - 1e-12) - 1e-300;
    if (k >= 0)
        nesim_pop_predict(p, r, j, s0 + k);
    else if (hi == NESIM_NEVER)
        nesim_pop_predict(p, r, j, NESIM_NEVER);
}

/* End of refractoriness at tick rr: the membrane coefficient restarts from
 * v_reset and the currents. */
static void ep_restart(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t rr, int64_t from)
{
    const nesim_epoch *E = p->impl;
    int64_t jr = rr - (r->ts << E->shift);
    double v = p->dyn.v_reset - p->dyn.par[P_V_REST];
    r->flags &= (uint8_t)~NESIM_F_WAKE;
    r->pred = NESIM_NEVER;
    r->x[0] = (v - r->x[1] * nesim_ep_d(E, 1, jr) - r->x[2] * nesim_ep_d(E, 2, jr)) * nesim_ep_e(E, 0, jr);
    ep_predict(p, j, r, from, NESIM_NEVER);
}

static int ep_start(nesim_pop *p, nesim_error *err)
{
    int rc = nesim_epoch_start(p, 3, 0, err);
    if (rc)
        return rc;
    nesim_epoch *E = p->impl;
    const nesim_dyn *d = &p->dyn;
    /* v - E_L = X e_m + A e_e + B e_i with A = c0 ge, B = c1 gi; an input to
     * ge adds c0 w to A and takes it from X */
    E->cth = d->par[P_V_REST] - d->v_thresh;
    E->gexc[0] = -d->c[0];
    E->gexc[1] = d->c[0];
    E->ginh[0] = -d->c[1];
    E->ginh[2] = d->c[1];
    return NESIM_OK;
}

static void ep_init(nesim_pop *p, uint32_t j, double v0)
{
    nesim_nrec *r = &p->rec[j];
    r->stamp = -1;
    r->x[0] = v0 - p->dyn.par[P_V_REST];
    ep_predict(p, j, r, 0, NESIM_NEVER);
}

static uint64_t ep_deliver(nesim_pop *p, const nesim_fan *f, double w, double kick, int64_t t)
{
    nesim_epoch *E = p->impl;
    const nesim_dyn *d = &p->dyn;
    nesim_ep_at_tick(E, t);
    const int64_t ep = E->ep;
    nesim_nrec *rec = p->rec;
    uint64_t ups = 0;
    if (w >= 0) {
        const double w0 = w * E->gexc[0] * E->E[0], w1 = w * E->gexc[1] * E->E[1];
        NESIM_FAN_EACH(f, j, {
            nesim_nrec *r = &rec[j];
            ups += nesim_ep_touch(E, d, r, ep, t);
            r->x[0] += w0;
            r->x[1] += w1;
            double b = r->budget - kick;
            r->budget = b;
            if (b < 0)
                nesim_pop_mark(p, r, j);
        });
    } else {
        const double w0 = w * E->ginh[0] * E->E[0], w2 = w * E->ginh[2] * E->E[2];
        NESIM_FAN_EACH(f, j, {
            nesim_nrec *r = &rec[j];
            ups += nesim_ep_touch(E, d, r, ep, t);
            r->x[0] += w0;
            r->x[2] += w2;
        });
    }
    return ups;
}

/* v - threshold = (E_L - theta) + sum_i x_i D_i at E's tick */
static int ep_above(const nesim_epoch *E, const nesim_nrec *r)
{
    return E->cth + r->x[0] * E->D[0] + r->x[1] * E->D[1] + r->x[2] * E->D[2] >= 0;
}
static int ep_spent(const nesim_nrec *r) { return r->budget < 0; }
static void ep_test(nesim_pop *p, int64_t t) { nesim_ep_test(p, t, ep_above, ep_spent, ep_predict, ep_restart); }
static void ep_settle(nesim_pop *p, int64_t t) { nesim_ep_settle(p, t, ep_predict); }
static void ep_reset(nesim_pop *p, uint32_t j, int64_t t) { nesim_ep_reset(p, j, t, ep_restart); }

static const nesim_pop_ops epoch_ops = {
    .name = "lif_exp/epoch", .start = ep_start, .stop = nesim_epoch_stop, .init = ep_init,
    .deliver = ep_deliver, .test = ep_test, .settle = ep_settle, .reset = ep_reset, .state = nesim_ep_state,
};

static const nesim_pop_ops *lx_ops(const nesim_dyn *d)
{
    return d->rule_kind == NESIM_RULE_FIXED && !d->reset_subtract && !d->varied ? &epoch_ops : &lif_exp_point_ops;
}

static int lx_drifts(const nesim_dyn *d) { return 1; }

const nesim_model nesim_model_lif_exp = {
    .name = "lif_exp", .doc = "LIF with exponential current synapses (CUBA; Brette et al. 2007, Benchmark 2)",
    .params = params, .n_params = N_PARAMS, .n_state = 3, .integrates_while_refractory = 1,
    .rules = NESIM_RULES_ALL, .prepare = lx_prepare, .kick = lx_kick, .ops = lx_ops, .drifts = lx_drifts,
    .advance = lif_exp_advance, .input = lif_exp_input, .above = lif_exp_above, .fire = lif_exp_fire,
    .predict = lif_exp_predict,
};
