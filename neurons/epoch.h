/* epoch.h — the epoch representation lif and lif_exp keep (internal to those
 * two models; their fast kernels).
 *
 * Their membrane follows a sum of exponentials, v - E_L = sum_i X_i e^{-(t-T0)/tau_i},
 * so a neuron keeps the invariant coefficients x_i = X_i e^{(t-T0)/tau_i}
 * that only inputs change: an input at tick t adds w g_i e^{(t-T0)/tau_i}, a
 * factor shared by every target of the tick, and needs no per-neuron advance.
 * T0 is the start of the current epoch (a power-of-two number of ticks, short
 * enough that the factors stay in range); a neuron's coefficients are rebased
 * lazily the first time it is touched in a new epoch. While refractory (v
 * frozen at v_reset, inputs to v dropped) the membrane coefficient is
 * garbage; at the end of the period (an event at ref_until - 1, after that
 * tick's deliveries: the record's NESIM_F_WAKE) it is set from v_reset and
 * the currents.
 *
 * Record use: x[] the coefficients, ts the epoch, stamp the last tick touched,
 * budget lif's trip level of x[0] or lif_exp's margin. */
#ifndef NESIM_EPOCH_H
#define NESIM_EPOCH_H

#include <math.h>

#include "neurons/population.h"

enum { NESIM_EP_LO_BITS = 8, NESIM_EP_LO_N = 1 << NESIM_EP_LO_BITS };

typedef struct nesim_epoch {
    int nt, shift;     /* time constants; epochs of 2^shift ticks */
    int lif;           /* 1: lif (the trip level scales with x[0] on a rebase) */
    int64_t jmax;      /* E_i(j) = e^{+j rate_i}, D_i(j) = e^{-j rate_i} for 0 <= j <= jmax */
    double *tab;
    const double *ehi[3], *elo[3], *dhi[3], *dlo[3];
    double cth;        /* lif: theta - E_L; lif_exp: E_L - theta */
    double tau0;       /* 1 / rate[0] */
    double gexc[3], ginh[3]; /* coefficient gains per unit weight */
    int64_t tick, ep;  /* the factors below hold at tick (epoch ep) */
    double E[3], D[3], U;
} nesim_epoch;

/* Allocates p->impl for nt time constants (lif 1, lif_exp 3). */
int nesim_epoch_start(nesim_pop *p, int nt, int lif, nesim_error *err);
void nesim_epoch_stop(nesim_pop *p);

static inline double nesim_ep_e(const nesim_epoch *E, int i, int64_t j)
{
    return E->ehi[i][j >> NESIM_EP_LO_BITS] * E->elo[i][j & (NESIM_EP_LO_N - 1)];
}

static inline double nesim_ep_d(const nesim_epoch *E, int i, int64_t j)
{
    return E->dhi[i][j >> NESIM_EP_LO_BITS] * E->dlo[i][j & (NESIM_EP_LO_N - 1)];
}

/* e^{-rate_i j} for any j >= 0 (beyond the tables: directly, 0 once negligible) */
double nesim_ep_decay_any(const nesim_epoch *E, const nesim_dyn *d, int i, int64_t j);

static inline void nesim_ep_at_tick(nesim_epoch *E, int64_t t)
{
    if (E->tick == t)
        return;
    E->tick = t;
    E->ep = t >> E->shift;
    int64_t j = t - (E->ep << E->shift);
    for (int i = 0; i < E->nt; i++) {
        E->E[i] = nesim_ep_e(E, i, j);
        E->D[i] = nesim_ep_d(E, i, j);
    }
    E->U = E->cth * E->E[0];
}

/* Moves a neuron's coefficients into the epoch of E's tick. */
void nesim_ep_rebase(const nesim_epoch *E, const nesim_dyn *d, nesim_nrec *r);

static inline void nesim_ep_ensure(const nesim_epoch *E, const nesim_dyn *d, nesim_nrec *r)
{
    if (r->ts != E->ep)
        nesim_ep_rebase(E, d, r);
}

/* Neuron j's (v, ge, gi) at tick now from its coefficients (v frozen at
 * v_reset while refractory). */
void nesim_ep_state(const nesim_pop *p, uint32_t j, int64_t now, double *out);

/* What a delivery does first to each target: its coefficients into epoch ep
 * (E's), and 1 if this is the first input of tick t (a membrane update). */
static inline uint64_t nesim_ep_touch(const nesim_epoch *E, const nesim_dyn *d, nesim_nrec *r, int64_t ep,
                                      int64_t t)
{
    if (r->ts != ep)
        nesim_ep_rebase(E, d, r);
    uint64_t first = r->stamp != t;
    r->stamp = t;
    return first;
}

/* The models' own parts of the epoch kernels below: the threshold test in the
 * invariant space, whether an input used up the margin, a new prediction from
 * tick `from` (`standing`: the prediction still queued, NESIM_NEVER when it
 * was consumed) and the end of refractoriness at tick rr. */
typedef int (*nesim_ep_above_fn)(const nesim_epoch *E, const nesim_nrec *r);
typedef int (*nesim_ep_spent_fn)(const nesim_nrec *r);
typedef void (*nesim_ep_predict_fn)(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t from, int64_t standing);
typedef void (*nesim_ep_restart_fn)(nesim_pop *p, uint32_t j, nesim_nrec *r, int64_t rr, int64_t from);

/* The test kernel (population.h's contract) of an epoch model: each model
 * calls it with its own functions, which the compiler inlines (the pointers
 * are constants at the call). A wake-up (NESIM_F_WAKE) is refractoriness
 * ending, bookkeeping rather than an update. */
static inline __attribute__((always_inline)) void nesim_ep_test(nesim_pop *p, int64_t t, nesim_ep_above_fn above,
                                                               nesim_ep_spent_fn spent,
                                                               nesim_ep_predict_fn predict,
                                                               nesim_ep_restart_fn restart)
{
    nesim_epoch *E = p->impl;
    nesim_ep_at_tick(E, t);
    for (size_t k = 0; k < p->n_cand; k++) {
        uint32_t j = p->cand[k];
        nesim_nrec *r = &p->rec[j];
        uint8_t fl = r->flags;
        r->flags = fl & NESIM_F_WAKE;
        if ((fl & (NESIM_F_DUE | NESIM_F_WAKE)) == NESIM_F_DUE) {
            p->c.updates += r->stamp != t;
            r->stamp = t;
        }
        nesim_ep_ensure(E, &p->dyn, r);
        if (fl & NESIM_F_WAKE) {
            if (fl & NESIM_F_DUE) /* the wake-up event, at ref_until - 1 */
                restart(p, j, r, t + 1, t + 1);
        } else if (above(E, r)) {
            nesim_pop_fires(p, j);
        } else if (fl & NESIM_F_DUE) {
            r->pred = NESIM_NEVER; /* consumed; stale by inhibition */
            if (!nesim_pop_later(p, j))
                predict(p, j, r, t + 1, NESIM_NEVER);
        } else if (spent(r) && !nesim_pop_later(p, j)) {
            predict(p, j, r, t + 1, r->pred);
        }
    }
}

/* The settle kernel: the predictions test deferred (population.h). */
static inline __attribute__((always_inline)) void nesim_ep_settle(nesim_pop *p, int64_t t,
                                                                 nesim_ep_predict_fn predict)
{
    for (size_t k = 0; k < p->n_later; k++) {
        uint32_t j = p->later[k];
        predict(p, j, &p->rec[j], t + 1, p->rec[j].pred);
    }
    p->n_later = 0;
}

/* The reset kernel: v frozen until ref_until, so with a period of two ticks
 * or more the membrane restarts after the deliveries of ref_until - 1 (a
 * wake-up event); otherwise at once. */
static inline __attribute__((always_inline)) void nesim_ep_reset(nesim_pop *p, uint32_t j, int64_t t,
                                                                nesim_ep_restart_fn restart)
{
    nesim_nrec *r = &p->rec[j];
    int64_t rt = p->dyn.ref_ticks;
    r->pred = NESIM_NEVER;
    r->gen++;
    r->budget = INFINITY;
    if (rt >= 2) {
        r->flags |= NESIM_F_WAKE;
        nesim_pop_predict(p, r, j, t + rt - 1);
    } else {
        restart(p, j, r, t + rt, t + 1);
    }
}

#endif
