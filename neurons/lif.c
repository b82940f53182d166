/* lif.c — leaky integrate-and-fire with voltage-jump synapses (Brette et al.
 * 2007, Benchmark 4): tau_m dv/dt = v_rest - v, an input w adds w to v.
 * Between inputs v relaxes monotonically to v_rest, so the crossing time has
 * the closed form t = tau_m ln((v_rest - v) / (v_rest - v_thresh)). */
#include "neurons/model_util.h"

static int lif_prepare(nesim_dyn *d, nesim_error *err)
{
    int rc;
    if ((rc = nesim_check_pos(d->p.tau_m, "tau_m", err)) ||
        (rc = nesim_check_finite(d->p.v_rest, "v_rest", err)) || (rc = nesim_check_reset(&d->p, err)))
        return rc;
    d->n_tau = 1;
    d->rate[0] = d->tick_s / d->p.tau_m;
    return NESIM_OK;
}

static void lif_advance(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    int64_t f = nesim_v_from(from, ref);
    if (to > f)
        s[0] = d->p.v_rest + (s[0] - d->p.v_rest) * nesim_decay(d, 0, to - f);
}

static void lif_input(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

static double lif_kick(const nesim_dyn *d, double w) { return w > 0 ? w : 0; }
static int lif_above(const nesim_dyn *d, const double *s) { return s[0] >= d->p.v_thresh; }
static void lif_fire(const nesim_dyn *d, double *s) { nesim_reset_v(d, &s[0], d->p.v_thresh); }

/* First tick in [kmin, hi) with v >= th for v relaxing from v0 at s0 to el > th. */
static int64_t lif_first(const nesim_dyn *d, double v0, int64_t s0, int64_t kmin, double th)
{
    double el = d->p.v_rest;
#define V_AT(k) (el + (v0 - el) * nesim_decay(d, 0, (k) - s0))
    /* logf is a guess good to ~1e-7 relative; the loops below settle the tick
     * exactly against the same propagator the engine advances with. */
    double tstar = (double)logf((float)((el - v0) / (el - th))) / d->rate[0];
    int64_t k = tstar > 4e18 ? NESIM_NEVER : s0 + (int64_t)tstar + 1;
    if (k < kmin)
        k = kmin;
    while (k != NESIM_NEVER && k > kmin && V_AT(k - 1) >= th)
        k--;
    while (k != NESIM_NEVER && V_AT(k) < th)
        k++;
    return k;
}

static int64_t lif_predict(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                           int64_t hi, nesim_scratch *ws, double *margin)
{
    int64_t s0 = nesim_v_from(t, ref), kmin = lo > s0 ? lo : s0;
    double v0 = s[0], el = d->p.v_rest, th = d->p.v_thresh;
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

const nesim_model nesim_model_lif = {
    .name = "lif", .n_state = 1, .prepare = lif_prepare, .advance = lif_advance,
    .input = lif_input, .kick = lif_kick, .above = lif_above, .fire = lif_fire,
    .predict = lif_predict,
};
