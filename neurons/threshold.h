/* threshold.h — threshold rules: when a neuron fires, apart from its membrane.
 *
 * As in sPyNNaker, the threshold is its own part: a population is a membrane
 * model plus one rule, and any model that lists a rule in its `rules` mask
 * takes it. A rule has parameters (after the model's in nesim_dyn.par) and
 * state (after the model's, from state[d->rule_off]).
 *
 *   fixed     threshold = v_thresh (the model's parameter)
 *   adaptive  threshold = v_thresh + a, a jumps by b at each spike and decays
 *             back with tau_a: tau_a da/dt = -a (Bellec et al.'s ALIF)
 *
 * The rule's functions are inline and switch on d->rule_kind (the same for a
 * whole population, so the branch is free): the default kernels and every
 * model's predict() use them without a call. A prediction folds the rule's
 * part into the crossing search: the threshold is v_thresh plus a sum of
 * decaying exponentials (nesim_rule_terms), so v - threshold stays a sum of
 * exponentials for leaky models. Adding a rule: an enum value, a case in each
 * function below, a table entry in threshold.c. */
#ifndef NESIM_THRESHOLD_H
#define NESIM_THRESHOLD_H

#include "neurons/crossing.h"
#include "neurons/neuron.h"

enum { NESIM_RULE_FIXED = 0, NESIM_RULE_ADAPTIVE = 1, NESIM_RULE_COUNT };
#define NESIM_RULES_ALL ((1u << NESIM_RULE_COUNT) - 1)

typedef struct nesim_rule {
    const char *name;
    int kind;                        /* NESIM_RULE_* */
    const nesim_param_def *params;
    int n_params;
    int n_state;
    const char *doc;
} nesim_rule;

/* "fixed", "adaptive"; NULL if unknown. */
const nesim_rule *nesim_rule_find(const char *name);
const char *const *nesim_rule_names(void);
const nesim_rule *nesim_rule_fixed(void);

/* Derives the rule's constants (its rate joins d->rate at d->n_tau) from its
 * parameters at d->par[first..]; NESIM_EINVAL naming a bad one. */
int nesim_rule_prepare(nesim_dyn *d, int first, nesim_error *err);

/* The threshold now, given the rule's state rs = s + d->rule_off. */
static inline double nesim_rule_level(const nesim_dyn *d, const double *rs)
{
    return d->rule_kind == NESIM_RULE_ADAPTIVE ? d->v_thresh + rs[0] : d->v_thresh;
}

/* The rule's state over to - from >= 0 ticks (it does not freeze while refractory). */
static inline void nesim_rule_advance(const nesim_dyn *d, double *rs, int64_t from, int64_t to)
{
    if (d->rule_kind == NESIM_RULE_ADAPTIVE && to > from)
        rs[0] *= nesim_decay(d, d->rule_tau, to - from);
}

/* After a spike (the membrane reset already used the level before it). */
static inline void nesim_rule_fire(const nesim_dyn *d, double *rs)
{
    if (d->rule_kind == NESIM_RULE_ADAPTIVE)
        rs[0] += d->rule_b;
}

/* Initial state. */
static inline void nesim_rule_init(const nesim_dyn *d, double *rs)
{
    if (d->rule_kind == NESIM_RULE_ADAPTIVE)
        rs[0] = 0;
}

/* Appends the rule's time-varying part, -(threshold - v_thresh), to f as
 * decaying terms (f = v - threshold, with c0 already holding -v_thresh's
 * share). Returns 0, or -1 if f has no room. */
static inline int nesim_rule_terms(const nesim_dyn *d, const double *rs, nesim_expsum *f)
{
    if (d->rule_kind != NESIM_RULE_ADAPTIVE)
        return 0;
    if (f->n >= NESIM_TBL_MAX)
        return -1;
    f->x[f->n] = -rs[0];
    f->term[f->n] = d->rule_tau;
    f->n++;
    return 0;
}

#endif
