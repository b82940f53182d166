/* lif_exp.c — LIF with exponential current synapses (the CUBA network):
 *   tau_m dv/dt = ge + gi - (v - v_rest),  tau_e dge/dt = -ge,  tau_i dgi/dt = -gi
 * An input w > 0 adds w to ge, w < 0 adds w to gi (volts). The exact
 * propagator over dt ticks, with A = ge tau_e/(tau_e - tau_m), B likewise:
 *   v(dt) = v_rest + (v - v_rest - A - B) e^{-dt/tau_m} + A e^{-dt/tau_e} + B e^{-dt/tau_i}
 * While refractory v is frozen and the currents keep decaying. The crossing
 * can fall between inputs (v may rise, then fall): found by crossing.c. */
#include "neurons/model_util.h"

enum { TM = 0, TE = 1, TI = 2 };

static int lx_prepare(nesim_dyn *d, nesim_error *err)
{
    const nesim_neuron_params *p = &d->p;
    int rc;
    if ((rc = nesim_check_pos(p->tau_m, "tau_m", err)) || (rc = nesim_check_pos(p->tau_e, "tau_e", err)) ||
        (rc = nesim_check_pos(p->tau_i, "tau_i", err)) ||
        (rc = nesim_check_finite(p->v_rest, "v_rest", err)) || (rc = nesim_check_reset(p, err)))
        return rc;
    if (p->tau_e == p->tau_m || p->tau_i == p->tau_m)
        return nesim_fail(err, NESIM_EINVAL, "tau_e and tau_i must differ from tau_m (%g s)", p->tau_m);
    d->n_tau = 3;
    d->rate[TM] = d->tick_s / p->tau_m;
    d->rate[TE] = d->tick_s / p->tau_e;
    d->rate[TI] = d->tick_s / p->tau_i;
    d->c[0] = p->tau_e / (p->tau_e - p->tau_m);
    d->c[1] = p->tau_i / (p->tau_i - p->tau_m);
    /* Peak of the response of v to a unit jump of ge: the kick bound. */
    double tpk = log(p->tau_m / p->tau_e) * p->tau_e * p->tau_m / (p->tau_m - p->tau_e);
    d->c[2] = p->tau_e / (p->tau_m - p->tau_e) * (exp(-tpk / p->tau_m) - exp(-tpk / p->tau_e));
    return NESIM_OK;
}

/* Propagates (v, ge, gi) over dt >= 0 ticks with v free. */
static void lx_free(const nesim_dyn *d, double *s, int64_t dt)
{
    double em = nesim_decay(d, TM, dt), ee = nesim_decay(d, TE, dt), ei = nesim_decay(d, TI, dt);
    double a = s[1] * d->c[0], b = s[2] * d->c[1], el = d->p.v_rest;
    s[0] = el + (s[0] - el - a - b) * em + a * ee + b * ei;
    s[1] *= ee;
    s[2] *= ei;
}

static void lx_advance(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
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

static void lx_input(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (w >= 0)
        s[1] += w;
    else
        s[2] += w;
}

static double lx_kick(const nesim_dyn *d, double w) { return w > 0 ? w * d->c[2] : 0; }
static int lx_above(const nesim_dyn *d, const double *s) { return s[0] >= d->p.v_thresh; }
static void lx_fire(const nesim_dyn *d, double *s) { nesim_reset_v(d, &s[0], d->p.v_thresh); }

static int64_t lx_predict(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                          int64_t hi, nesim_scratch *ws, double *margin)
{
    double st[3] = {s[0], s[1], s[2]};
    int64_t s0 = t;
    if (t < ref) {
        lx_advance(d, st, t, ref, ref);
        s0 = ref;
    }
    double a = st[1] * d->c[0], b = st[2] * d->c[1];
    nesim_expsum f = {.c0 = d->p.v_rest - d->p.v_thresh, .n = 3, .d = d,
                      .x = {st[0] - d->p.v_rest - a - b, a, b}, .term = {TM, TE, TI}};
    int64_t from = lo > s0 ? lo : s0;
    int64_t top = hi == NESIM_NEVER ? -1 : hi - 1 - s0;
    int64_t k = nesim_expsum_predict(&f, from - s0, top, d->slack, ws, margin);
    return k < 0 ? NESIM_NEVER : s0 + k;
}

const nesim_model nesim_model_lif_exp = {
    .name = "lif_exp", .n_state = 3, .integrates_while_refractory = 1, .prepare = lx_prepare, .advance = lx_advance,
    .input = lx_input, .kick = lx_kick, .above = lx_above, .fire = lx_fire,
    .predict = lx_predict,
};
