/* population.h — the population kernels: how the engine runs a model.
 *
 * The engine (sim/network.c) owns the queue, the event order and the
 * projections; a model owns what happens inside its neurons. Per tick the
 * engine calls, for one population at a time:
 *   deliver(fan, w)  apply weight w to every target of one delivery (a source
 *                    spike through one projection), in ascending target order;
 *                    mark the targets that may now be at threshold;
 *   test(t)          for every marked neuron (and every neuron whose predicted
 *                    crossing came due, flagged NESIM_F_DUE), decide: fire (append
 *                    to io->fire), or predict again;
 *   reset(j, t)      for each neuron that fired, in ascending order.
 * Kernels never touch the queue: a prediction is appended to io->wake
 * (nesim_pop_predict) and the engine queues it after the call, in order, so a
 * kernel needs nothing above neurons/. A prediction event carries the
 * neuron's generation; bumping the generation cancels the pending one.
 *
 * Per neuron the engine keeps one 64-byte record (one cache line). pred, gen
 * and flags are shared with the engine; the rest belongs to the kernels. */
#ifndef NESIM_POPULATION_H
#define NESIM_POPULATION_H

#include <stddef.h>
#include <stdint.h>

#include "neurons/neuron.h"

enum { NESIM_F_CAND = 1, NESIM_F_DUE = 2, NESIM_F_WAKE = 4 };

enum { NESIM_REC_STATE = 3 };

typedef struct nesim_nrec {
    double x[NESIM_REC_STATE]; /* kernel: model coefficients (lif, lif_exp epochs), or
                                * a point model's state when it fits */
    double budget; /* kernel: margin left (volts), or a trip level */
    int64_t pred;  /* predicted tick, NESIM_NEVER if none */
    union {
        int64_t ref_until; /* kernel: first tick out of refractoriness */
        int64_t stamp;     /* kernel: last tick touched */
    };
    union {
        int64_t ts;    /* kernel: tick of the state, or its epoch */
        uint64_t draw; /* kernel: a source's position in its keyed sequence */
    };
    uint32_t gen;  /* generation of the live prediction event */
    uint8_t flags; /* NESIM_F_* (F_WAKE: kernel-defined) */
} nesim_nrec;

typedef struct nesim_counters {
    uint64_t spikes;
    uint64_t sops;        /* synaptic events delivered to this population */
    uint64_t updates;     /* neuron state updates (neuron x tick touched) */
    uint64_t events;      /* queue events handled for this population */
    uint64_t predictions; /* threshold-crossing predictions computed */
} nesim_counters;

/* A prediction to queue: neuron `id` (global) at tick t with generation gen. */
typedef struct nesim_wake {
    int64_t t;
    uint32_t id, gen;
} nesim_wake;

/* What the engine lends the kernels: the tick's fire list, the wake buffer
 * (room for one entry per neuron of the largest population: a kernel call
 * predicts each neuron at most once), the prediction scratch. */
typedef struct nesim_kio {
    uint32_t *fire;
    size_t n_fire;
    nesim_wake *wake;
    size_t n_wake;
    nesim_scratch *ws;
} nesim_kio;

/* One population at run time. */
typedef struct nesim_pop {
    nesim_dyn dyn;       /* the population's constants (class 0 when they vary) */
    /* Per-neuron parameters: neuron j's constants are cdyn[cls[j]] (same
     * model, rule and state layout as dyn); cls NULL: dyn for all. */
    const nesim_dyn *cdyn;
    const uint32_t *cls;
    uint32_t n, first;   /* neurons; global id of the first */
    nesim_nrec *rec;     /* n records */
    double *state;       /* n * dyn.n_state doubles when ops->uses_state and the
                          * state does not fit a record (NESIM_REC_STATE) */
    uint32_t *cand;      /* local indices to test this tick */
    size_t n_cand;
    /* Deferred predictions (ops->settle): when the engine sets defer for a
     * tick, test queues in later[] the neurons it would predict (each with
     * r->pred the bound it would use) instead of predicting them, and settle
     * predicts them afterwards, from the same state: the engine sends the
     * tick's spikes to the other ranks first, so the exchange travels while
     * the predictions run. n + 1 slots (allocated by the engine). */
    uint32_t *later;
    size_t n_later;
    int defer;
    nesim_counters c;
    uint64_t seed, stream; /* neuron j's keyed draws: nesim_key(seed, stream, j) (base/rng.h) */
    void *impl;          /* the kernels' private data (ops->start) */
    nesim_kio *io;
} nesim_pop;

/* The targets of one delivery: col[0..cnt) when col is set, otherwise
 * lo..hi-1 without skip (UINT32_MAX: none). */
typedef struct nesim_fan {
    const uint32_t *col;
    uint32_t cnt, lo, hi, skip;
} nesim_fan;

/* Runs BODY with the uint32_t variable named by J bound to each target of
 * fan F, ascending. */
#define NESIM_FAN_EACH(F, J, BODY)                                                                \
    do {                                                                                          \
        /* locals, not loads through F: a store in BODY cannot alias them */                     \
        const uint32_t *const col_ = (F)->col;                                                    \
        const uint32_t cnt_ = (F)->cnt, lo_ = (F)->lo, hi_ = (F)->hi, skip_ = (F)->skip;          \
        if (col_) {                                                                               \
            for (uint32_t k_ = 0; k_ < cnt_; k_++) {                                              \
                uint32_t J = col_[k_];                                                            \
                BODY                                                                              \
            }                                                                                     \
        } else {                                                                                  \
            for (uint32_t J = lo_; J < hi_; J++) {                                                \
                if (J == skip_)                                                                   \
                    continue;                                                                     \
                BODY                                                                              \
            }                                                                                     \
        }                                                                                         \
    } while (0)

typedef struct nesim_pop_ops {
    const char *name;   /* "lif/epoch", "if/point", ... (diagnostics) */
    int uses_state;     /* the kernels keep n_state doubles per neuron: in
                         * rec[j].x when n_state <= NESIM_REC_STATE, else in
                         * p->state (the engine allocates it, zeroed) */
    /* Private data for a run (may be NULL); NESIM_ENOMEM naming the population. */
    int (*start)(nesim_pop *p, nesim_error *err);
    void (*stop)(nesim_pop *p); /* frees p->impl; may be NULL */
    /* Neuron j at tick 0 with membrane v0: state and first prediction. */
    void (*init)(nesim_pop *p, uint32_t j, double v0);
    /* Weight w (kick = model->kick(w)) to every target of f at tick t;
     * returns the targets touched for the first time this tick (updates). */
    uint64_t (*deliver)(nesim_pop *p, const nesim_fan *f, double w, double kick, int64_t t);
    /* Optional: the same for targets col[k] each with its own weight wv[k],
     * k < cnt, in that order (an explicit projection's row in one call);
     * without it the engine calls deliver once per run of equal weights. */
    uint64_t (*deliver_w)(nesim_pop *p, const uint32_t *col, const double *wv, uint32_t cnt, double kick, int64_t t);
    void (*test)(nesim_pop *p, int64_t t);
    /* Optional: the predictions test deferred at tick t (p->later), each from
     * t + 1 and bounded by r->pred; empties the list. Without it the engine
     * never sets defer. */
    void (*settle)(nesim_pop *p, int64_t t);
    void (*reset)(nesim_pop *p, uint32_t j, int64_t t);
    /* Neuron j's n_state values advanced to tick now (read-out, no side effects). */
    void (*state)(const nesim_pop *p, uint32_t j, int64_t now, double *out);
} nesim_pop_ops;

/* Neuron j's constants. */
static inline const nesim_dyn *nesim_pop_dyn(const nesim_pop *p, uint32_t j)
{
    return p->cls ? &p->cdyn[p->cls[j]] : &p->dyn;
}

/* Queues neuron j for the test phase (once per tick). */
static inline void nesim_pop_mark(nesim_pop *p, nesim_nrec *r, uint32_t j)
{
    if (!(r->flags & NESIM_F_CAND)) {
        r->flags |= NESIM_F_CAND;
        p->cand[p->n_cand++] = j;
    }
}

/* nesim_pop_mark when `spent`, without a branch, on a candidate list cand of
 * *n entries (p->cand, p->n_cand, or the caller's copies of them held in
 * registers over a row): in a dense tick the budget of a neuron is spent by
 * one of its inputs and stays spent for the rest, so the test is taken about
 * half the time and a branch on it mispredicts as often. cand holds n + 1
 * slots: the write past the count is harmless. */
static inline void nesim_cand_mark_if(uint32_t *cand, size_t *n, nesim_nrec *r, uint32_t j, int spent)
{
    unsigned add = (unsigned)spent & (unsigned)!(r->flags & NESIM_F_CAND);
    r->flags |= (uint8_t)(add * NESIM_F_CAND);
    cand[*n] = j;
    *n += add;
}


/* Sets neuron j's prediction to tick k (> now; NESIM_NEVER: none): a new
 * generation, and a wake-up for the engine to queue. */
static inline void nesim_pop_predict(nesim_pop *p, nesim_nrec *r, uint32_t j, int64_t k)
{
    if (k == r->pred)
        return;
    r->pred = k;
    r->gen++;
    if (k != NESIM_NEVER)
        p->io->wake[p->io->n_wake++] = (nesim_wake){k, p->first + j, r->gen};
}

/* In test, for a neuron that needs a new prediction bounded by r->pred:
 * queues it for settle and returns 1 when the tick's predictions are
 * deferred, else returns 0 (predict now). */
static inline int nesim_pop_later(nesim_pop *p, uint32_t j)
{
    if (!p->defer)
        return 0;
    p->later[p->n_later++] = j;
    return 1;
}

static inline void nesim_pop_fires(nesim_pop *p, uint32_t j) { p->io->fire[p->io->n_fire++] = j; }

/* After a spike: v = v_reset, or v -= threshold - v_reset in subtract mode. */
static inline void nesim_reset_v(const nesim_dyn *d, double *v, double threshold)
{
    if (d->reset_subtract)
        *v -= threshold - d->v_reset;
    else
        *v = d->v_reset;
}

/* The tick from which v evolves: v is frozen while refractory. */
static inline int64_t nesim_v_from(int64_t from, int64_t ref_until)
{
    return from > ref_until ? from : ref_until;
}

#endif
