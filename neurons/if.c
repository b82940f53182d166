/* if.c — integrate-and-fire without leak: v integrates inputs and an optional
 * constant drive (dv/dt = i_drive); used by coded layers and as the simplest
 * oracle. Crossing times are exact: v is linear in time. */
#include "neurons/model_util.h"

static int if_prepare(nesim_dyn *d, nesim_error *err)
{
    int rc;
    if ((rc = nesim_check_reset(&d->p, err)) || (rc = nesim_check_finite(d->p.i_drive, "i_drive", err)))
        return rc;
    d->c[0] = d->p.i_drive * d->tick_s; /* dv per tick */
    return NESIM_OK;
}

static void if_advance(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref)
{
    int64_t f = nesim_v_from(from, ref);
    if (to > f && d->c[0] != 0)
        s[0] += d->c[0] * (double)(to - f);
}

static void if_input(const nesim_dyn *d, double *s, double w, int refractory)
{
    if (!refractory)
        s[0] += w;
}

static double if_kick(const nesim_dyn *d, double w) { return w > 0 ? w : 0; }
static int if_above(const nesim_dyn *d, const double *s) { return s[0] >= d->p.v_thresh; }
static void if_fire(const nesim_dyn *d, double *s) { nesim_reset_v(d, &s[0], d->p.v_thresh); }

static int64_t if_predict(const nesim_dyn *d, const double *s, int64_t t, int64_t ref, int64_t lo,
                          int64_t hi, nesim_scratch *ws, double *margin)
{
    int64_t s0 = nesim_v_from(t, ref), kmin = lo > s0 ? lo : s0;
    double v0 = s[0], dv = d->c[0], th = d->p.v_thresh;
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

const nesim_model nesim_model_if = {
    .name = "if", .n_state = 1, .prepare = if_prepare, .advance = if_advance,
    .input = if_input, .kick = if_kick, .above = if_above, .fire = if_fire,
    .predict = if_predict,
};
