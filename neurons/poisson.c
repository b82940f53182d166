/* poisson.c — a Poisson spike source: each tick it fires with probability
 * p = rate * tick, independently (Brian2's PoissonGroup). The engine draws the
 * gap to the next spike from GSL's geometric distribution, so a source costs
 * one event per spike, not one per tick. */
#include "neurons/model_util.h"

static int po_prepare(nesim_dyn *d, nesim_error *err)
{
    double r = d->p.rate_hz;
    if (!(r >= 0) || !isfinite(r))
        return nesim_fail(err, NESIM_EINVAL, "rate_hz must be >= 0 (got %g)", r);
    d->c[0] = r * d->tick_s;
    if (d->c[0] > 1)
        return nesim_fail(err, NESIM_EINVAL,
                          "rate_hz %g exceeds one spike per tick (%g s); use a finer tick", r,
                          d->tick_s);
    return NESIM_OK;
}

const nesim_model nesim_model_poisson = {
    .name = "poisson", .n_state = 1, .is_source = 1, .prepare = po_prepare,
};
