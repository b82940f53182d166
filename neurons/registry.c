/* registry.c — the list of neuron models, and what every model shares:
 * derived-constant set-up, decay tables and parameter checks. */
#include "neurons/model_util.h"

#include <stdlib.h>
#include <string.h>

extern const nesim_model nesim_model_if, nesim_model_lif, nesim_model_lif_exp,
    nesim_model_alif, nesim_model_poisson;

static const nesim_model *const models[] = {
    &nesim_model_if, &nesim_model_lif, &nesim_model_lif_exp, &nesim_model_alif,
    &nesim_model_poisson,
};
static const char *const names[] = {"if", "lif", "lif_exp", "alif", "poisson", NULL};

const nesim_model *nesim_model_find(const char *name)
{
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        if (strcmp(models[i]->name, name) == 0)
            return models[i];
    return NULL;
}

const char *const *nesim_model_names(void) { return names; }

int nesim_dyn_init(nesim_dyn *d, const nesim_model *m, const nesim_neuron_params *p,
                   double tick_s, nesim_error *err)
{
    memset(d, 0, sizeof *d);
    d->model = m;
    d->p = *p;
    d->tick_s = tick_s;
    if (!(tick_s > 0) || !isfinite(tick_s))
        return nesim_fail(err, NESIM_EINVAL, "tick must be > 0 seconds (got %g)", tick_s);
    if (!(p->t_ref >= 0) || !isfinite(p->t_ref))
        return nesim_fail(err, NESIM_EINVAL, "t_ref must be >= 0 (got %g)", p->t_ref);
    d->ref_ticks = (int64_t)llround(p->t_ref / tick_s);
    int rc = m->prepare(d, err);
    if (rc)
        return rc;
    double max_tau = 0;
    for (int i = 0; i < d->n_tau; i++)
        max_tau = fmax(max_tau, 1.0 / d->rate[i]);
    double want = ceil(12.0 * max_tau) + 1;
    d->tbl_n = d->n_tau ? (uint32_t)fmin(want, 16384.0) : 0;
    for (int i = 0; i < d->n_tau; i++) {
        d->tbl[i] = malloc(d->tbl_n * sizeof(double));
        if (!d->tbl[i]) {
            nesim_dyn_free(d);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for decay tables");
        }
        for (uint32_t k = 0; k < d->tbl_n; k++)
            d->tbl[i][k] = exp(-d->rate[i] * (double)k);
    }
    /* split tables over 64 of the longest time constant (at most 2^24 ticks) */
    double span = ceil(64.0 * max_tau);
    uint32_t nhi = d->n_tau ? (uint32_t)fmin(span / 256.0 + 1, 65536.0) : 0;
    d->tsplit_n = nhi * 256;
    for (int i = 0; i < d->n_tau; i++) {
        d->thi[i] = malloc((nhi + 256) * sizeof(double));
        if (!d->thi[i]) {
            nesim_dyn_free(d);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for decay tables");
        }
        d->tlo[i] = d->thi[i] + nhi;
        for (uint32_t h = 0; h < nhi; h++)
            d->thi[i][h] = exp(-d->rate[i] * (double)h * 256.0);
        for (uint32_t l = 0; l < 256; l++)
            d->tlo[i][l] = exp(-d->rate[i] * (double)l);
    }
    return NESIM_OK;
}

void nesim_dyn_free(nesim_dyn *d)
{
    for (int i = 0; i < NESIM_TBL_MAX; i++) {
        free(d->tbl[i]);
        free(d->thi[i]);
        d->tbl[i] = NULL;
        d->thi[i] = d->tlo[i] = NULL;
    }
    d->tbl_n = 0;
    d->tsplit_n = 0;
}

int nesim_check_pos(double v, const char *name, nesim_error *err)
{
    if (!(v > 0) || !isfinite(v))
        return nesim_fail(err, NESIM_EINVAL, "%s must be > 0 (got %g)", name, v);
    return NESIM_OK;
}

int nesim_check_finite(double v, const char *name, nesim_error *err)
{
    if (!isfinite(v))
        return nesim_fail(err, NESIM_EINVAL, "%s must be finite (got %g)", name, v);
    return NESIM_OK;
}

int nesim_check_reset(const nesim_neuron_params *p, nesim_error *err)
{
    int rc;
    if ((rc = nesim_check_finite(p->v_thresh, "v_thresh", err)) ||
        (rc = nesim_check_finite(p->v_reset, "v_reset", err)))
        return rc;
    if (!(p->v_reset < p->v_thresh))
        return nesim_fail(err, NESIM_EINVAL, "v_reset (%g) must be below v_thresh (%g)",
                          p->v_reset, p->v_thresh);
    return NESIM_OK;
}

void nesim_reset_v(const nesim_dyn *d, double *v, double threshold)
{
    if (d->p.reset_subtract)
        *v -= threshold - d->p.v_reset;
    else
        *v = d->p.v_reset;
}
