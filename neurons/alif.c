/* alif.c — adaptive LIF: voltage-jump LIF whose threshold jumps by b at each
 * spike and relaxes back to v_thresh with tau_a:
 *   tau_m dv/dt = v_rest - v,  tau_a da/dt = -a,  threshold = v_thresh + a.
 * v - threshold is a sum of two exponentials and a constant: crossing.c. */
#include "neurons/model_util.h"

enum { TM = 0, TA = 1 };

static int al_prepare(nesim_dyn *d, nesim_error *err)
{
    int rc;
    if ((rc = nesim_check_pos(d->p.tau_m, "tau_m", err)) || (rc = nesim_check_pos(d->p.tau_a, "tau_a", err)) ||
        (rc = nesim_check_finite(d->p.v_rest, "v_rest", err)) || (rc = nesim_check_reset(&d->p, err)))
        return rc;
    if (!(d->p.b >= 0) || !isfinite(d->p.b))
        return nesim_fail(err, NESIM_EINVAL, "b must be >= 0 (got %g)", d->p.b);
    d->n_tau = 2;
    d->rate[TM] = d->tick_s / d->p.tau_m;
    d->rate[TA] = d->tick_s / d->p.tau_a;
    return NESIM_OK;
}

static void al_advance(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    int64_t f = nesim_v_from(from, ref);
    if (to > f)
        s[0] = d->p.v_rest + (s[0] - d->p.v_rest) * nesim_decay(d, TM, to - f);
    if (to > from)
        s[1] *= nesim_decay(d, TA, to - from);
}

static void al_input(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

static double al_kick(const nesim_dyn *d, double w) { return w > 0 ? w : 0; }
static int al_above(const nesim_dyn *d, const double *s) { return s[0] >= d->p.v_thresh + s[1]; }

static void al_fire(const nesim_dyn *d, double *s)
{
    nesim_reset_v(d, &s[0], d->p.v_thresh + s[1]);
    s[1] += d->p.b;
}

static int64_t al_predict(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                          int64_t hi, nesim_scratch *ws, double *margin)
{
    double st[2] = {s[0], s[1]};
    int64_t s0 = t;
    if (t < ref) {
        al_advance(d, st, t, ref, ref);
        s0 = ref;
    }
    nesim_expsum f = {.c0 = d->p.v_rest - d->p.v_thresh, .n = 2, .d = d,
                      .x = {st[0] - d->p.v_rest, -st[1]}, .term = {TM, TA}};
    int64_t from = lo > s0 ? lo : s0;
    int64_t top = hi == NESIM_NEVER ? -1 : hi - 1 - s0;
    int64_t k = nesim_expsum_predict(&f, from - s0, top, d->slack, ws, margin);
    return k < 0 ? NESIM_NEVER : s0 + k;
}

const nesim_model nesim_model_alif = {
    .name = "alif", .n_state = 2, .prepare = al_prepare, .advance = al_advance,
    .input = al_input, .kick = al_kick, .above = al_above, .fire = al_fire,
    .predict = al_predict,
};
