/* dyn.c — what every model shares: parameter resolution (names, defaults,
 * ranges), the common derived constants, and the decay tables (neuron.h). */
#include "neurons/model_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nesim_dyn_param_count(const nesim_dyn *d)
{
    return d->model->n_params + (d->rule ? d->rule->n_params : 0);
}

const nesim_param_def *nesim_dyn_param_def(const nesim_dyn *d, int i)
{
    if (i < 0)
        return NULL;
    if (i < d->model->n_params)
        return &d->model->params[i];
    i -= d->model->n_params;
    return d->rule && i < d->rule->n_params ? &d->rule->params[i] : NULL;
}

static int param_index(const nesim_dyn *d, const char *name)
{
    int n = nesim_dyn_param_count(d);
    for (int i = 0; i < n; i++)
        if (strcmp(nesim_dyn_param_def(d, i)->name, name) == 0)
            return i;
    return -1;
}

double nesim_dyn_param(const nesim_dyn *d, const char *name)
{
    int i = param_index(d, name);
    return i < 0 ? NAN : d->par[i];
}

/* "a, b, c" of the population's parameter names. */
static const char *param_list(const nesim_dyn *d, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    int n = nesim_dyn_param_count(d);
    for (int i = 0; i < n && o + 1 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", nesim_dyn_param_def(d, i)->name);
    if (!n)
        snprintf(buf, cap, "none");
    return buf;
}

static int check_value(const nesim_param_def *p, double v, nesim_error *err)
{
    if (!isfinite(v))
        return nesim_fail(err, NESIM_EINVAL, "%s must be finite (got %g)", p->name, v);
    if ((p->flags & NESIM_P_POSITIVE) && !(v > 0))
        return nesim_fail(err, NESIM_EINVAL, "%s must be > 0 (got %g)", p->name, v);
    if ((p->flags & NESIM_P_NONNEG) && !(v >= 0))
        return nesim_fail(err, NESIM_EINVAL, "%s must be >= 0 (got %g)", p->name, v);
    if ((p->flags & NESIM_P_BOOL) && v != 0 && v != 1)
        return nesim_fail(err, NESIM_EINVAL, "%s is true or false (1 or 0; got %g)", p->name, v);
    return NESIM_OK;
}

int nesim_dyn_init(nesim_dyn *d, const nesim_model *m, const nesim_rule *r, const nesim_param *params,
                   size_t n_params, double tick_s, nesim_error *err)
{
    int rc = nesim_dyn_prepare(d, m, r, params, n_params, tick_s, err);
    return rc ? rc : nesim_dyn_tables(d, err);
}

int nesim_dyn_prepare(nesim_dyn *d, const nesim_model *m, const nesim_rule *r, const nesim_param *params,
                      size_t n_params, double tick_s, nesim_error *err)
{
    memset(d, 0, sizeof *d);
    if (!m)
        return nesim_fail(err, NESIM_EINVAL, "no neuron model");
    d->model = m;
    d->rule = r ? r : nesim_rule_fixed();
    d->tick_s = tick_s;
    if (!(tick_s > 0) || !isfinite(tick_s))
        return nesim_fail(err, NESIM_EINVAL, "tick must be > 0 seconds (got %g)", tick_s);
    if (!(m->rules & (1u << d->rule->kind)))
        return nesim_fail(err, NESIM_EINVAL, "model %s does not take the %s threshold rule", m->name, d->rule->name);
    int np = nesim_dyn_param_count(d);
    if (np > NESIM_PARAM_MAX || m->n_state + d->rule->n_state > NESIM_STATE_MAX)
        return nesim_fail(err, NESIM_EINTERNAL, "model %s: too many parameters or state variables", m->name);
    unsigned char given[NESIM_PARAM_MAX] = {0};
    for (int i = 0; i < np; i++)
        d->par[i] = nesim_dyn_param_def(d, i)->def;
    for (size_t k = 0; k < n_params; k++) {
        const char *name = params[k].name ? params[k].name : "(null)";
        int i = param_index(d, name);
        if (i < 0) {
            char list[256];
            return nesim_fail(err, NESIM_EINVAL, "%s takes no parameter '%.40s' (its parameters: %s)",
                              d->rule->kind == NESIM_RULE_FIXED ? m->name : "the model with this threshold rule",
                              name, param_list(d, list, sizeof list));
        }
        if (given[i])
            return nesim_fail(err, NESIM_EINVAL, "parameter %s given twice", name);
        given[i] = 1;
        d->par[i] = params[k].value;
    }
    for (int i = 0; i < np; i++) {
        const nesim_param_def *p = nesim_dyn_param_def(d, i);
        if (!given[i] && isnan(p->def))
            return nesim_fail(err, NESIM_EINVAL, "%s is required (%s%s%s)", p->name, p->doc,
                              p->unit[0] ? ", in " : "", p->unit);
        int rc = check_value(p, d->par[i], err);
        if (rc)
            return rc;
    }
    int i;
    if ((i = param_index(d, "t_ref")) >= 0)
        d->ref_ticks = (int64_t)llround(d->par[i] / tick_s);
    if ((i = param_index(d, "v_thresh")) >= 0)
        d->v_thresh = d->par[i];
    if ((i = param_index(d, "v_reset")) >= 0)
        d->v_reset = d->par[i];
    if ((i = param_index(d, "reset_subtract")) >= 0)
        d->reset_subtract = d->par[i] != 0;
    d->rule_off = m->n_state;
    d->n_state = m->n_state + d->rule->n_state;
    int rc = m->prepare ? m->prepare(d, err) : NESIM_OK;
    if (!rc)
        rc = nesim_rule_prepare(d, m->n_params, err);
    return rc;
}

int nesim_dyn_tables(nesim_dyn *d, nesim_error *err)
{
    double max_tau = 0;
    for (int t = 0; t < d->n_tau; t++)
        max_tau = fmax(max_tau, 1.0 / d->rate[t]);
    double want = ceil(12.0 * max_tau) + 1;
    d->tbl_n = d->n_tau ? (uint32_t)fmin(want, 16384.0) : 0;
    for (int t = 0; t < d->n_tau; t++) {
        d->tbl[t] = malloc(d->tbl_n * sizeof(double));
        if (!d->tbl[t]) {
            nesim_dyn_free(d);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for decay tables");
        }
        for (uint32_t k = 0; k < d->tbl_n; k++)
            d->tbl[t][k] = exp(-d->rate[t] * (double)k);
    }
    /* split tables over 64 of the longest time constant (at most 2^24 ticks) */
    double span = ceil(64.0 * max_tau);
    uint32_t nhi = d->n_tau ? (uint32_t)fmin(span / 256.0 + 1, 65536.0) : 0;
    d->tsplit_n = nhi * 256;
    for (int t = 0; t < d->n_tau; t++) {
        d->thi[t] = malloc((nhi + 256) * sizeof(double));
        if (!d->thi[t]) {
            nesim_dyn_free(d);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory for decay tables");
        }
        d->tlo[t] = d->thi[t] + nhi;
        for (uint32_t h = 0; h < nhi; h++)
            d->thi[t][h] = exp(-d->rate[t] * (double)h * 256.0);
        for (uint32_t l = 0; l < 256; l++)
            d->tlo[t][l] = exp(-d->rate[t] * (double)l);
    }
    return NESIM_OK;
}

int nesim_dyn_same_rates(const nesim_dyn *a, const nesim_dyn *b)
{
    if (a->n_tau != b->n_tau)
        return 0;
    for (int t = 0; t < a->n_tau; t++)
        if (a->rate[t] != b->rate[t])
            return 0;
    return 1;
}

void nesim_dyn_share_tables(nesim_dyn *d, const nesim_dyn *owner)
{
    nesim_dyn_free(d);
    for (int i = 0; i < NESIM_TBL_MAX; i++) {
        d->tbl[i] = owner->tbl[i];
        d->thi[i] = owner->thi[i];
        d->tlo[i] = owner->tlo[i];
    }
    d->tbl_n = owner->tbl_n;
    d->tsplit_n = owner->tsplit_n;
    d->tbl_shared = 1;
}

void nesim_dyn_free(nesim_dyn *d)
{
    for (int i = 0; i < NESIM_TBL_MAX; i++) {
        if (!d->tbl_shared) {
            free(d->tbl[i]);
            free(d->thi[i]);
        }
        d->tbl[i] = NULL;
        d->thi[i] = d->tlo[i] = NULL;
    }
    d->tbl_n = 0;
    d->tsplit_n = 0;
    d->tbl_shared = 0;
}
