/* loihi.c — Loihi's compartment in fixed point, as SANA-FE models it
 * (arch/loihi.yaml's loihi_lif soma): each step v is multiplied by
 * leak_decay and truncated toward zero to a multiple of `quantum` (1/64:
 * Loihi shifts weights and thresholds by 6 bits), then, unless refractory,
 * the bias and the step's inputs are added; the neuron fires when v >
 * v_thresh (strictly) and resets to v_reset. A user comparing against the
 * chip needs the chip's rounding, not doubles: with a bias off the 1/64
 * grid, `if` (exact arithmetic) and this model part ways within a few steps.
 *
 * The map v -> trunc(leak v) + bias is monotone in v, so left alone v moves
 * monotonically after one step: a prediction steps forward until v crosses,
 * stops rising (then it never will) or reaches the bound it was given —
 * unless the orbit's upper bound (lh_pred) is below threshold: then it
 * never fires, known in O(1).
 * Steps are exact and cost one multiply each; a neuron whose state changes
 * every step costs a step of work per step, as on the chip.
 *
 * refractory_steps R is SANA-FE's refractory_delay: its counter is set to R
 * at a spike and counts down at the end of every step, the spike's own
 * included, so after a spike at step t the neuron ignores bias and inputs in
 * steps t+1 .. t+R-1 (v still leaks): R = 0 and R = 1 both mean none. */
#include "neurons/model_util.h"
#include "neurons/point.h"

enum { P_V_THRESH, P_V_RESET, P_BIAS, P_LEAK, P_REF_STEPS, P_QUANTUM, N_PARAMS };
enum { C_BIAS, C_LEAK, C_Q, C_INVQ };

static const nesim_param_def params[N_PARAMS] = {
    {"v_thresh", "V", NAN, 0, "threshold: fires when v > v_thresh (strictly)"},
    {"v_reset", "V", 0, 0, "reset value (hard reset)"},
    {"bias", "V", 0, 0, "added every step the neuron is not refractory"},
    {"leak_decay", "", 1, NESIM_P_POSITIVE, "v is multiplied by this every step (1: no leak), in (0, 1]"},
    {"refractory_steps", "", 0, NESIM_P_NONNEG, "SANA-FE's refractory_delay: R - 1 steps without bias or input"},
    {"quantum", "V", 1.0 / 64, NESIM_P_POSITIVE, "v is truncated toward zero to a multiple of this each step"},
};

static int lh_prepare(nesim_dyn *d, nesim_error *err)
{
    const double *p = d->par;
    if (!(p[P_LEAK] <= 1))
        return nesim_fail(err, NESIM_EINVAL, "leak_decay must be in (0, 1] (got %g)", p[P_LEAK]);
    if (p[P_REF_STEPS] != floor(p[P_REF_STEPS]) || p[P_REF_STEPS] > 1e9)
        return nesim_fail(err, NESIM_EINVAL, "refractory_steps must be a whole number of steps (got %g)",
                          p[P_REF_STEPS]);
    if (!(p[P_V_RESET] <= p[P_V_THRESH]))
        return nesim_fail(err, NESIM_EINVAL, "v_reset (%g) must not exceed v_thresh (%g)", p[P_V_RESET],
                          p[P_V_THRESH]);
    d->c[C_BIAS] = p[P_BIAS];
    d->c[C_LEAK] = p[P_LEAK];
    d->c[C_Q] = p[P_QUANTUM];
    d->c[C_INVQ] = 1 / p[P_QUANTUM];
    /* v > v_thresh as the engine's v >= level: the next double up */
    d->v_thresh = nextafter(p[P_V_THRESH], INFINITY);
    d->v_reset = p[P_V_RESET];
    d->reset_subtract = 0;
    /* the engine's ref_until is the first active tick: spike tick + R */
    d->ref_ticks = (int64_t)p[P_REF_STEPS];
    return NESIM_OK;
}

/* One step into tick k (k >= ref: not refractory). */
static inline double lh_step(const nesim_dyn *d, double v, int64_t k, int64_t ref)
{
    v *= d->c[C_LEAK];
    v = trunc(v * d->c[C_INVQ]) * d->c[C_Q];
    return k >= ref ? v + d->c[C_BIAS] : v;
}

static inline void lh_adv(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    double v = s[0];
    for (int64_t k = from + 1; k <= to; k++)
        v = lh_step(d, v, k, ref);
    s[0] = v;
}

static inline void lh_inp(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

/* Truncation can carry an input's effect up to one quantum further. */
static double lh_kick(const nesim_dyn *d, double w) { return w > 0 ? w + d->c[C_Q] : 0; }

static inline int64_t lh_pred(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo, int64_t hi,
                              nesim_scratch *ws, double *margin)
{
    const double th = d->v_thresh;
    double v = s[0], vmax = -INFINITY;
    int64_t k = t;
    /* A bound on the whole orbit, so that a neuron that cannot reach
     * threshold costs O(1), not a step per tick (a negative v under a leak
     * climbs to 0 by one quantum a step): truncation moves v toward zero, so
     * f(v) <= max(leak v, 0) + bias, and every later v is at most
     * max(v, U) with U = bias / (1 - leak) for bias > 0 (a leak), 0 for
     * bias <= 0. */
    {
        double leak = d->c[C_LEAK], bias = d->c[C_BIAS], U;
        if (bias <= 0)
            U = 0;
        else
            U = leak < 1 ? bias / (1 - leak) : INFINITY;
        double top = fmax(v, U);
        if (top * (1 + 1e-12) + 1e-12 < th) {
            *margin = th - top;
            return NESIM_NEVER;
        }
    }
    /* up to lo, and through refractoriness, step by step */
    int64_t start = lo > ref ? lo : ref;
    if (start < t)
        start = t;
    while (k < start) {
        vmax = fmax(vmax, v);
        v = lh_step(d, v, k + 1, ref);
        k++;
    }
    for (;;) {
        if (k >= hi) {
            *margin = th - vmax;
            return NESIM_NEVER;
        }
        if (k >= lo && k >= ref && v >= th) {
            *margin = th - vmax;
            return k;
        }
        vmax = fmax(vmax, v);
        double nv = lh_step(d, v, k + 1, ref);
        if (k + 1 >= ref && !(nv > v)) { /* f monotone and f(v) <= v: it never rises again */
            *margin = th - vmax;
            return NESIM_NEVER;
        }
        v = nv;
        k++;
    }
}

NESIM_POINT_MODEL(loihi, lh_adv, lh_inp, lh_pred)

static const nesim_pop_ops *lh_ops(const nesim_dyn *d) { return &loihi_point_ops; }

static int lh_drifts(const nesim_dyn *d) { return d->c[C_BIAS] != 0 || d->c[C_LEAK] != 1; }

const nesim_model nesim_model_loihi = {
    .name = "loihi", .doc = "Loihi's compartment in fixed point (SANA-FE's loihi_lif): leak, truncate to 1/64, bias",
    .params = params, .n_params = N_PARAMS, .n_state = 1, .rules = 1u << NESIM_RULE_FIXED,
    .prepare = lh_prepare, .kick = lh_kick, .ops = lh_ops, .drifts = lh_drifts,
    .advance = loihi_advance, .input = loihi_input, .above = loihi_above, .fire = loihi_fire,
    .predict = loihi_predict,
};
