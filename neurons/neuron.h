/* neuron.h — the one small interface every neuron model implements.
 *
 * A model keeps NEST's split: parameters (what a user sets, nesim_neuron_params),
 * derived constants (nesim_dyn, computed once per population by prepare()),
 * and state (n_state doubles per neuron; state[0] is always the membrane
 * potential v). Time inside a model is integer ticks.
 *
 * The engine never steps a neuron: it advances state in closed form when an
 * event reaches it, and asks the model to predict the first tick at which the
 * neuron would cross threshold on its own. Refractoriness: after a spike at t
 * the engine sets ref_until = t + ref_ticks, the first tick at which the
 * neuron is active again; until then v is held at v_reset and inputs to v are
 * dropped (synaptic currents keep integrating). A new model is one file with a
 * `const nesim_model` and one line in registry.c. */
#ifndef NESIM_NEURON_H
#define NESIM_NEURON_H

#include <math.h>
#include <stdint.h>

#include "sim/error.h"

#define NESIM_NEVER INT64_MAX

/* User parameters, SI units (seconds, volts, hertz). Each model reads and
 * validates the fields it uses and ignores the rest. */
typedef struct nesim_neuron_params {
    double tau_m;     /* membrane time constant (lif, lif_exp, alif) */
    double v_rest;    /* resting / leak reversal level E_L */
    double v_thresh;  /* threshold (baseline threshold for alif) */
    double v_reset;   /* reset value */
    double t_ref;     /* refractory period */
    double tau_e;     /* lif_exp: excitatory current decay (weights > 0) */
    double tau_i;     /* lif_exp: inhibitory current decay (weights < 0) */
    double tau_a;     /* alif: threshold adaptation decay */
    double b;         /* alif: threshold jump per spike */
    double i_drive;   /* if: constant drive dv/dt in V/s */
    double rate_hz;   /* poisson: firing rate */
    int reset_subtract; /* 1: v -= (threshold - v_reset) instead of v = v_reset */
} nesim_neuron_params;

enum { NESIM_TBL_MAX = 3 };

/* Derived constants of one population, in ticks. Owned by the population. */
typedef struct nesim_dyn {
    const struct nesim_model *model;
    nesim_neuron_params p;
    double tick_s;
    int64_t ref_ticks;
    int n_tau;                       /* time constants in use */
    double rate[NESIM_TBL_MAX];      /* 1/tau in 1/ticks */
    double *tbl[NESIM_TBL_MAX];      /* tbl[i][k] = exp(-rate[i] * k), k < tbl_n */
    uint32_t tbl_n;
    /* The same factors from two small tables (for searches that jump about):
     * exp(-rate[i] * k) ~ thi[i][k >> 8] * tlo[i][k & 255] for k < tsplit_n,
     * within an ulp or two of the direct expression. */
    double *thi[NESIM_TBL_MAX], *tlo[NESIM_TBL_MAX];
    uint32_t tsplit_n;
    double c[4];                     /* model-specific coefficients */
    /* Set by the engine (0 = exact): predict() may answer with an earlier
     * "check" tick, the first at which v comes within `slack` of threshold
     * (within slack / 2 when it already is within slack), so that the next
     * few inputs need no new prediction (see network.c, crossing.h). */
    double slack;
} nesim_dyn;

/* Scratch a prediction may use (a GSL root solver); owned by the engine. */
typedef struct nesim_scratch nesim_scratch;

typedef struct nesim_model {
    const char *name;
    int n_state;     /* doubles per neuron */
    int is_source;   /* spikes come from the engine's Poisson draw; no inputs */
    int integrates_while_refractory; /* inputs still move state (currents) */
    /* Validates d->p and fills the derived fields. Returns NESIM_OK or
     * NESIM_EINVAL naming the bad parameter. */
    int (*prepare)(nesim_dyn *d, nesim_error *err);
    /* Advances state s from tick `from` to tick `to` (>= from) in closed form. */
    void (*advance)(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref_until);
    /* Applies a weighted input at the state's current tick. */
    void (*input)(const nesim_dyn *d, double *s, double w, int refractory);
    /* Upper bound on how much input w can raise (v - threshold) at any later tick. */
    double (*kick)(const nesim_dyn *d, double w);
    /* Nonzero when the neuron is at or above threshold now. */
    int (*above)(const nesim_dyn *d, const double *s);
    /* Resets after a spike (reset value or subtraction; adaptation jump). */
    void (*fire)(const nesim_dyn *d, double *s);
    /* First tick k in [lo, hi) at which the neuron, left alone from state s
     * valid at tick t, is at or above threshold; NESIM_NEVER if none. hi may be
     * NESIM_NEVER (the model bounds its own horizon). With d->slack > 0 the
     * answer may be an earlier tick at which v is merely within slack of
     * threshold (never later than the crossing). *margin receives a lower
     * bound of (threshold - v) over the ticks before the answer. */
    int64_t (*predict)(const nesim_dyn *d, const double *s, int64_t t, int64_t ref_until,
                       int64_t lo, int64_t hi, nesim_scratch *ws, double *margin);
} nesim_model;

/* Looks a model up by name ("if", "lif", "lif_exp", "alif", "poisson"); NULL if unknown. */
const nesim_model *nesim_model_find(const char *name);
/* The registered model names, NULL-terminated. */
const char *const *nesim_model_names(void);

/* Prepares d for model m with parameters p at tick_s seconds per tick.
 * Allocates the decay tables; free with nesim_dyn_free(). */
int nesim_dyn_init(nesim_dyn *d, const nesim_model *m, const nesim_neuron_params *p,
                   double tick_s, nesim_error *err);
void nesim_dyn_free(nesim_dyn *d);

/* exp(-rate[i] * k) for integer k >= 0, from the table when it covers k.
 * Bit-identical to the direct expression. */
static inline double nesim_decay(const nesim_dyn *d, int i, int64_t k)
{
    return (uint64_t)k < d->tbl_n ? d->tbl[i][k] : exp(-d->rate[i] * (double)k);
}

/* Scratch for predictions: allocate once per engine. */
nesim_scratch *nesim_scratch_new(void);
void nesim_scratch_free(nesim_scratch *ws);

#endif
