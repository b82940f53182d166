/* threshold.c — the threshold rules' tables (see threshold.h). */
#include "neurons/threshold.h"

#include <string.h>

static const nesim_param_def adaptive_params[] = {
    {"tau_a", "s", NAN, NESIM_P_POSITIVE, "decay time constant of the threshold's adaptation"},
    {"b", "V", 0, NESIM_P_NONNEG, "threshold jump per spike"},
};

static const nesim_rule rules[NESIM_RULE_COUNT] = {
    [NESIM_RULE_FIXED] = {"fixed", NESIM_RULE_FIXED, NULL, 0, 0, "threshold = v_thresh"},
    [NESIM_RULE_ADAPTIVE] = {"adaptive", NESIM_RULE_ADAPTIVE, adaptive_params, 2, 1,
                             "threshold = v_thresh + a; a += b per spike, decays with tau_a"},
};
static const char *const names[] = {"fixed", "adaptive", NULL};

const nesim_rule *nesim_rule_find(const char *name)
{
    for (int i = 0; name && i < NESIM_RULE_COUNT; i++)
        if (strcmp(rules[i].name, name) == 0)
            return &rules[i];
    return NULL;
}

const char *const *nesim_rule_names(void) { return names; }
const nesim_rule *nesim_rule_fixed(void) { return &rules[NESIM_RULE_FIXED]; }

int nesim_rule_prepare(nesim_dyn *d, int first, nesim_error *err)
{
    d->rule_kind = d->rule->kind;
    if (d->rule_kind != NESIM_RULE_ADAPTIVE)
        return NESIM_OK;
    if (d->n_tau >= NESIM_TBL_MAX)
        return nesim_fail(err, NESIM_EINVAL, "the adaptive threshold needs a time constant the model has no room for");
    d->rule_tau = d->n_tau++;
    d->rate[d->rule_tau] = d->tick_s / d->par[first];
    d->rule_b = d->par[first + 1];
    return NESIM_OK;
}
