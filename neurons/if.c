/* if.c — integrate-and-fire without leak: v integrates inputs and an optional
 * constant drive (dv/dt = i_drive); used by coded layers and as the simplest
 * oracle. Crossing times are exact: v is linear in time (with the adaptive
 * rule the threshold decays, and the first tick is found by bisection on the
 * grid: v - threshold is then monotone or has one peak). */
#include "neurons/model_util.h"
#include "neurons/point.h"

enum { P_V_THRESH, P_V_RESET, P_T_REF, P_I_DRIVE, P_RESET_SUBTRACT, N_PARAMS };

static const nesim_param_def params[N_PARAMS] = {
    NESIM_PDEF_V_THRESH, NESIM_PDEF_V_RESET, NESIM_PDEF_T_REF,
    {"i_drive", "V/s", 0, 0, "constant drive dv/dt"},
    NESIM_PDEF_RESET_SUBTRACT,
};

static int if_prepare(nesim_dyn *d, nesim_error *err)
{
    int rc = nesim_check_reset(d, err);
    if (rc)
        return rc;
    d->c[0] = d->par[P_I_DRIVE] * d->tick_s; /* dv per tick */
    return NESIM_OK;
}

static inline void if_adv(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    int64_t f = nesim_v_from(from, ref);
    if (to > f && d->c[0] != 0)
        s[0] += d->c[0] * (double)(to - f);
}

static inline void if_inp(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

static double if_kick(const nesim_dyn *d, double w) { return w > 0 ? w : 0; }

/* v - threshold at tick k, v from v0 and the rule's a0 at tick s0. */
static inline double if_gap(const nesim_dyn *d, double v0, double a0, int64_t s0, int64_t k)
{
    return v0 + d->c[0] * (double)(k - s0) - (d->v_thresh + a0 * nesim_decay(d, d->rule_tau, k - s0));
}

/* The adaptive rule (a0 > 0): the first k in [kmin, hi) with gap >= 0. The
 * gap is a line minus a decaying exponential: concave, rising throughout
 * when the drive is >= 0, else rising to one peak and falling. */
static int64_t if_first_adaptive(const nesim_dyn *d, double v0, double a0, int64_t s0, int64_t kmin,
                                 int64_t hi, double *margin)
{
    const double dv = d->c[0], r = d->rate[d->rule_tau];
    const int64_t top = hi == NESIM_NEVER ? INT64_MAX / 4 : hi - 1; /* last tick that may answer */
    double g = if_gap(d, v0, a0, s0, kmin);
    if (g >= 0)
        return *margin = INFINITY, kmin;
    if (kmin > top) {
        *margin = -g;
        return NESIM_NEVER;
    }
    int64_t rise_end; /* the gap rises on [kmin, rise_end] */
    if (dv < 0) {
        double pk = a0 * r > -dv ? log(a0 * r / -dv) / r : 0; /* continuous peak, after s0 */
        int64_t p0 = pk > 4e15 ? INT64_MAX / 4 : s0 + (int64_t)pk;
        rise_end = p0 + 1 < kmin ? kmin : p0 + 1 > top ? top : p0 + 1;
        /* the integer peak is p0 or p0 + 1 */
        int64_t best = rise_end;
        if (p0 >= kmin && p0 <= top && if_gap(d, v0, a0, s0, p0) > if_gap(d, v0, a0, s0, best))
            best = p0;
        double gmax = if_gap(d, v0, a0, s0, best);
        if (gmax < 0) {
            *margin = -gmax;
            return NESIM_NEVER;
        }
        rise_end = best;
    } else if (dv == 0 && !(v0 - d->v_thresh > 0)) {
        *margin = d->v_thresh - v0; /* the gap rises towards v0 - v_thresh <= 0 */
        return NESIM_NEVER;
    } else {
        /* rising without bound (or to v0 - v_thresh > 0): double the step
         * until the gap is reached or the bound cuts the search */
        int64_t step = 1, u = kmin;
        for (;;) {
            int64_t nu = u > top - step ? top : u + step;
            if (if_gap(d, v0, a0, s0, nu) >= 0 || nu == top) {
                rise_end = nu;
                break;
            }
            u = nu;
            step *= 2;
        }
        if (if_gap(d, v0, a0, s0, rise_end) < 0) {
            *margin = -if_gap(d, v0, a0, s0, rise_end);
            return NESIM_NEVER;
        }
    }
    int64_t lo = kmin, h = rise_end; /* gap(lo) < 0 <= gap(h), rising between */
    while (h - lo > 1) {
        int64_t mid = lo + (h - lo) / 2;
        if (if_gap(d, v0, a0, s0, mid) >= 0)
            h = mid;
        else
            lo = mid;
    }
    *margin = -if_gap(d, v0, a0, s0, h - 1);
    return h;
}

static inline int64_t if_pred(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                              int64_t hi, nesim_scratch *ws, double *margin)
{
    int64_t s0 = nesim_v_from(t, ref), kmin = lo > s0 ? lo : s0;
    double v0 = s[0], dv = d->c[0], th = d->v_thresh;
    if (d->rule_kind == NESIM_RULE_ADAPTIVE) {
        /* the rule's state decays from t, not from the end of refractoriness */
        double a0 = s[d->rule_off] * nesim_decay(d, d->rule_tau, s0 - t);
        if (a0 > 0)
            return if_first_adaptive(d, v0, a0, s0, kmin, hi, margin);
    }
#define V_AT(k) (v0 + dv * (double)((k) - s0))
    if (V_AT(kmin) >= th)
        return *margin = INFINITY, kmin;
    if (dv <= 0) {
        *margin = th - v0;
        return NESIM_NEVER;
    }
    double need = ceil((th - v0) / dv);
    int64_t k = need > 4e18 ? NESIM_NEVER : s0 + (int64_t)need;
    if (k < kmin)
        k = kmin;
    while (k != NESIM_NEVER && k > kmin && V_AT(k - 1) >= th)
        k--;
    while (k != NESIM_NEVER && V_AT(k) < th)
        k++;
    if (k >= hi) {
        *margin = hi == NESIM_NEVER ? 0 : th - V_AT(hi - 1);
        return NESIM_NEVER;
    }
    *margin = th - V_AT(k - 1);
    return k;
#undef V_AT
}

NESIM_POINT_MODEL(if, if_adv, if_inp, if_pred)

static const nesim_pop_ops *if_ops(const nesim_dyn *d) { return &if_point_ops; }

static int if_drifts(const nesim_dyn *d) { return d->c[0] != 0; }

const nesim_model nesim_model_if = {
    .name = "if", .doc = "integrate-and-fire without leak, optional constant drive",
    .params = params, .n_params = N_PARAMS, .n_state = 1, .rules = NESIM_RULES_ALL,
    .prepare = if_prepare, .kick = if_kick, .ops = if_ops, .drifts = if_drifts,
    .advance = if_advance, .input = if_input, .above = if_above, .fire = if_fire, .predict = if_predict,
};
