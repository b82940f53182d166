/* linleak.c — integrate-and-fire with a linear leak, as TrueNorth's neurons
 * leak: between inputs v moves towards v_rest at `leak` volts per second and
 * stops there; an input w adds w to v. v_rest lies below threshold, so v
 * never climbs to threshold on its own: a neuron fires only at an input. */
#include "neurons/model_util.h"
#include "neurons/point.h"

enum { P_V_THRESH, P_V_RESET, P_T_REF, P_V_REST, P_LEAK, P_RESET_SUBTRACT, N_PARAMS };

static const nesim_param_def params[N_PARAMS] = {
    NESIM_PDEF_V_THRESH, NESIM_PDEF_V_RESET, NESIM_PDEF_T_REF,
    {"v_rest", "V", 0, 0, "the level the leak moves v to, below v_thresh"},
    {"leak", "V/s", 1, NESIM_P_NONNEG, "how fast v moves towards v_rest"},
    NESIM_PDEF_RESET_SUBTRACT,
};

static int linleak_prepare(nesim_dyn *d, nesim_error *err)
{
    if (!(d->par[P_V_REST] < d->v_thresh))
        return nesim_fail(err, NESIM_EINVAL, "v_rest %g must lie below v_thresh %g", d->par[P_V_REST],
                          d->v_thresh);
    d->c[0] = d->par[P_LEAK] * d->tick_s; /* volts per tick */
    return nesim_check_reset(d, err);
}

/* v frozen while refractory (nesim_v_from), then a ramp to v_rest. */
static inline void linleak_adv(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    int64_t f = nesim_v_from(from, ref);
    if (to <= f)
        return;
    double rest = d->par[P_V_REST], step = d->c[0] * (double)(to - f);
    s[0] = s[0] > rest ? fmax(rest, s[0] - step) : fmin(rest, s[0] + step);
}

static inline void linleak_inp(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

static double linleak_kick(const nesim_dyn *d, double w) { return w > 0 ? w : 0; }

/* Left alone, v only moves away from threshold (or towards v_rest below
 * it): at threshold now, or never; no closer than max(v, v_rest) ahead. */
static inline int64_t linleak_pred(const nesim_dyn *d, const double *s, int64_t t, int64_t ref,
                                   int64_t lo, int64_t hi, nesim_scratch *ws, double *margin)
{
    int64_t s0 = nesim_v_from(t, ref), k = lo > s0 ? lo : s0;
    double v[1] = {s[0]};
    linleak_adv(d, v, t, k, ref);
    if (v[0] >= d->v_thresh && k < hi)
        return *margin = INFINITY, k;
    *margin = d->v_thresh - fmax(fmax(v[0], s[0]), d->par[P_V_REST]);
    return NESIM_NEVER;
}

NESIM_POINT_MODEL(linleak, linleak_adv, linleak_inp, linleak_pred)

static const nesim_pop_ops *linleak_ops(const nesim_dyn *d) { return &linleak_point_ops; }
static int linleak_drifts(const nesim_dyn *d) { return d->par[P_LEAK] > 0; }

const nesim_model nesim_model_linleak = {
    .name = "linleak", .doc = "integrate-and-fire with a linear leak to v_rest (TrueNorth-style)",
    .params = params, .n_params = N_PARAMS, .n_state = 1, .rules = 1u << NESIM_RULE_FIXED,
    .prepare = linleak_prepare, .kick = linleak_kick, .ops = linleak_ops, .drifts = linleak_drifts,
    .advance = linleak_advance, .input = linleak_input, .above = linleak_above, .fire = linleak_fire,
    .predict = linleak_predict,
};
