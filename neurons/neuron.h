/* neuron.h — what a neuron model is: its parameters, its derived constants,
 * its point dynamics, and the population kernels the engine runs it with.
 *
 * A model keeps NEST's split: parameters (what a user sets: a table of named
 * values with units, defaults and ranges, nesim_param_def), derived constants
 * (nesim_dyn, computed once per population by prepare()), and state (n_state
 * doubles per neuron; state[0] is always the membrane potential v). Time
 * inside a model is integer ticks.
 *
 * A population is a membrane model plus a threshold rule (neurons/threshold.h:
 * fixed, or adaptive as in sPyNNaker's threshold types); the rule's
 * parameters and state sit after the model's. "alif" is the name of lif with
 * the adaptive rule.
 *
 * The engine never steps a neuron: it advances state in closed form when an
 * event reaches it, and asks the model to predict the first tick at which the
 * neuron would cross threshold on its own. Refractoriness: after a spike at t
 * a model sets ref_until = t + ref_ticks, the first tick at which the neuron
 * is active again; until then v is held at v_reset and inputs to v are
 * dropped (synaptic currents keep integrating).
 *
 * A model owns its whole behaviour, fast path included: ops() hands the
 * engine a table of population kernels (neurons/population.h) for the
 * population's parameters. Simple models get theirs from the default
 * implementation (neurons/point.h), instantiated over the model's own inline
 * point functions, so no function pointer is called per synapse; a model may
 * hand-write faster kernels (lif and lif_exp keep an epoch representation).
 * A new model is one file and one line in registry.c; see README "Adding a
 * neuron model". */
#ifndef NESIM_NEURON_H
#define NESIM_NEURON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define NESIM_NEVER INT64_MAX

enum {
    NESIM_PARAM_MAX = 16, /* parameters of a model and its threshold rule together */
    NESIM_TBL_MAX = 4,    /* time constants of a model and its rule together */
    NESIM_STATE_MAX = 8   /* state doubles of a model and its rule together */
};

/* ---- parameters --------------------------------------------------------- */

enum {
    NESIM_P_POSITIVE = 1, /* must be > 0 (and finite) */
    NESIM_P_NONNEG = 2,   /* must be >= 0 (and finite) */
    NESIM_P_BOOL = 4      /* true/false in a spec (1/0 in the C API) */
};

/* One parameter a model (or threshold rule) reads. A default of NAN makes it
 * required. Values are SI: seconds, volts, hertz. */
typedef struct nesim_param_def {
    const char *name;  /* snake_case, as written in specs */
    const char *unit;  /* "s", "V", "Hz", "V/s", or "" */
    double def;        /* default, or NAN: required */
    unsigned flags;    /* NESIM_P_* */
    const char *doc;   /* one line */
} nesim_param_def;

/* A named value, as a population is given it (spec or C API). */
typedef struct nesim_param {
    const char *name;
    double value;
} nesim_param;

/* Sets .params and .n_params of a struct initialiser from a list of
 * {"name", value} pairs: NESIM_PARAMS({"tau_m", 20e-3}, {"v_rest", -0.049}). */
#define NESIM_PARAMS(...)                                                                         \
    .params = (const nesim_param[]){__VA_ARGS__},                                                 \
    .n_params = sizeof((const nesim_param[]){__VA_ARGS__}) / sizeof(nesim_param)

/* ---- derived constants -------------------------------------------------- */

struct nesim_model;
struct nesim_rule;
struct nesim_pop_ops;

/* Derived constants of one population, in ticks. Owned by the population. */
typedef struct nesim_dyn {
    const struct nesim_model *model;
    const struct nesim_rule *rule;   /* never NULL: the fixed rule by default */
    double par[NESIM_PARAM_MAX];     /* the model's parameters in table order, then the rule's */
    double tick_s;
    /* common, filled from the parameters of those names when the model has them */
    int64_t ref_ticks;               /* t_ref in ticks */
    double v_thresh, v_reset;        /* baseline threshold, reset level */
    int reset_subtract;              /* v -= threshold - v_reset instead of v = v_reset */
    /* the threshold rule (threshold.h) */
    int rule_kind;                   /* NESIM_RULE_* */
    int rule_off;                    /* its state: state[rule_off ..] */
    int rule_tau;                    /* adaptive: index of its rate in rate[] */
    double rule_b;                   /* adaptive: threshold jump per spike */
    int n_state;                     /* model and rule state doubles per neuron */
    /* decay tables of the time constants in use */
    int n_tau;
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
     * few inputs need no new prediction (see crossing.h). */
    double slack;
    /* Set on every class of a population whose parameters vary by neuron
     * (net/graph.h): the model must use kernels that read each neuron's
     * constants (the default ones, point.h), not population-wide ones. */
    int varied;
    int tbl_shared;                  /* the tables are another dyn's (not freed here) */
} nesim_dyn;

/* Scratch a prediction may use (a GSL root solver); owned by the engine. */
typedef struct nesim_scratch nesim_scratch;

/* ---- the model ---------------------------------------------------------- */

typedef struct nesim_model {
    const char *name;
    const char *doc;                 /* one line, for `nesim models` and errors */
    const nesim_param_def *params;   /* its table */
    int n_params;
    int n_state;                     /* doubles per neuron (the rule's come on top) */
    int is_source;                   /* spikes come from the model alone; no inputs */
    int integrates_while_refractory; /* inputs still move state (currents) */
    unsigned rules;                  /* threshold rules it takes: bit NESIM_RULE_* */
    /* Validates d->par (ranges are checked before) and fills the derived
     * fields. Returns NESIM_OK or NESIM_EINVAL naming the bad parameter. */
    int (*prepare)(nesim_dyn *d, nesim_error *err);
    /* Upper bound on how much input w can raise (v - threshold) at any later tick. */
    double (*kick)(const nesim_dyn *d, double w);
    /* The population kernels for these constants (never NULL). */
    const struct nesim_pop_ops *(*ops)(const nesim_dyn *d);
    /* Nonzero when v changes at every tick it is not refractory (a leak or a
     * drive): NeuroBench's membrane updates then count every such tick. NULL
     * for sources. */
    int (*drifts)(const nesim_dyn *d);
    /* Point dynamics, for tests and reference steppers (NULL for sources).
     * advance: state s from tick `from` to tick `to` (>= from) in closed form;
     * input: a weighted input at the state's current tick; above: at or above
     * threshold now; fire: reset after a spike (and the rule's jump);
     * predict: the first tick k in [lo, hi) at which the neuron, left alone
     * from state s valid at tick t, is at or above threshold, NESIM_NEVER if
     * none (hi may be NESIM_NEVER); with d->slack > 0 possibly an earlier
     * tick within slack of threshold; *margin receives a lower bound of
     * (threshold - v) over the ticks before the answer. */
    void (*advance)(const nesim_dyn *d, double *s, int64_t from, int64_t to, int64_t ref_until);
    void (*input)(const nesim_dyn *d, double *s, double w, int refractory);
    int (*above)(const nesim_dyn *d, const double *s);
    void (*fire)(const nesim_dyn *d, double *s);
    int64_t (*predict)(const nesim_dyn *d, const double *s, int64_t t, int64_t ref_until,
                       int64_t lo, int64_t hi, nesim_scratch *ws, double *margin);
} nesim_model;

/* Looks a model up by name (see nesim_model_names); NULL if unknown. An alias
 * ("alif") gives its model and sets *rule (may be NULL) to the rule it
 * implies; otherwise *rule is set to NULL (the caller's choice stands). */
const nesim_model *nesim_model_find(const char *name, const struct nesim_rule **rule);
/* The names a spec may use ("if", "lif", "lif_exp", "alif", "linleak",
 * "poisson"), NULL-terminated, in registry order. */
const char *const *nesim_model_names(void);

/* Prepares d for model m with threshold rule r (NULL: fixed) and the given
 * named parameters at tick_s seconds per tick: every name must be one of the
 * model's or the rule's parameters (NESIM_EINVAL naming it and listing the
 * valid ones), each at most once; absent ones take their defaults (a
 * required one is an error); values are range-checked, then the model's
 * prepare() runs. Allocates the decay tables; free with nesim_dyn_free(). */
int nesim_dyn_init(nesim_dyn *d, const nesim_model *m, const struct nesim_rule *r,
                   const nesim_param *params, size_t n_params, double tick_s, nesim_error *err);
void nesim_dyn_free(nesim_dyn *d);
/* nesim_dyn_init in two halves: the constants without the decay tables
 * (d then answers nesim_decay from exp(), bit-identically, and crossing
 * searches use exp() throughout), and the tables. A population with many
 * per-neuron classes builds tables once per distinct set of rates and lends
 * them (nesim_dyn_share_tables). */
int nesim_dyn_prepare(nesim_dyn *d, const nesim_model *m, const struct nesim_rule *r,
                      const nesim_param *params, size_t n_params, double tick_s, nesim_error *err);
int nesim_dyn_tables(nesim_dyn *d, nesim_error *err);
/* Nonzero when a and b decay at the same rates (they may share tables). */
int nesim_dyn_same_rates(const nesim_dyn *a, const nesim_dyn *b);
/* Frees d's own tables and points d at owner's (owner must outlive d). */
void nesim_dyn_share_tables(nesim_dyn *d, const nesim_dyn *owner);

/* The value of parameter `name` of the population (NAN if it has none). */
double nesim_dyn_param(const nesim_dyn *d, const char *name);
/* Parameter i of the model-and-rule table (i < nesim_dyn_param_count), or NULL. */
const nesim_param_def *nesim_dyn_param_def(const nesim_dyn *d, int i);
int nesim_dyn_param_count(const nesim_dyn *d);

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
