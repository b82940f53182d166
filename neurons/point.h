/* point.h — the default population kernels, for any model given by its point
 * dynamics. Include it in a model file and instantiate it once:
 *
 *     NESIM_POINT_MODEL(PFX, ADVANCE, INPUT, PREDICT)
 *
 * where ADVANCE, INPUT and PREDICT are the model's static inline functions
 * (the membrane only: signatures as nesim_model.advance / .input / .predict;
 * PREDICT must fold the threshold rule in, nesim_rule_terms). It defines
 * PFX_ops (the kernels) and PFX_advance, PFX_input, PFX_above, PFX_fire,
 * PFX_predict (the point functions with the threshold rule composed in, for
 * the model table). The model's functions are inlined into every loop: a new
 * model runs without a function pointer per synapse.
 *
 * What the kernels do (the engine's contract, population.h):
 * - state: n_state doubles per neuron (rec.x when they fit, else p->state),
 *   valid at rec.ts; rec.budget
 *   is the margin (volts) an input may still use before the neuron must be
 *   tested; rec.ref_until the end of refractoriness.
 * - deliver: advance each target to t (once per tick: an update), apply the
 *   input; an excitatory kick takes from the budget, and a spent budget marks
 *   the neuron. Inhibition never marks: it cannot bring a crossing earlier.
 * - test: a marked or due neuron at or above threshold (and not refractory)
 *   fires; otherwise a due one (its prediction consumed, or made stale by
 *   inhibition) or one whose budget is spent predicts again.
 * - reset: the membrane resets against the threshold it crossed, the rule
 *   jumps, refractoriness starts, and the next crossing is predicted. */
#ifndef NESIM_POINT_H
#define NESIM_POINT_H

#include "neurons/population.h"
#include "neurons/threshold.h"

static inline double *nesim_point_state(const nesim_pop *p, uint32_t j)
{
    return p->state ? p->state + (size_t)j * (size_t)p->dyn.n_state : p->rec[j].x;
}

/* The membrane's advance with the rule's. */
#define NESIM_POINT_ADVANCE(ADV, d, s, from, to, ref)                                             \
    do {                                                                                          \
        ADV((d), (s), (from), (to), (ref));                                                       \
        nesim_rule_advance((d), (s) + (d)->rule_off, (from), (to));                               \
    } while (0)

#ifndef NESIM_POINT_AHEAD
#define NESIM_POINT_AHEAD 16
#endif

/* deliver_w's row loop over records holding their state (locals of it) */
#define NESIM_POINT_ROW(PFX, KICKS)                                                               \
    do {                                                                                          \
        for (uint32_t k = 0; k < cnt; k++) {                                                      \
            if (k + NESIM_POINT_AHEAD < cnt)                                                      \
                __builtin_prefetch(&rec[col[k + NESIM_POINT_AHEAD]], 1);                          \
            const uint32_t j = col[k];                                                            \
            nesim_nrec *const r = &rec[j];                                                        \
            ups += PFX##_k_at(r, j, cls, cdyn, d0, r->x, wv[k], KICKS, kick, t, keep, cand, &nc); \
        }                                                                                         \
    } while (0)

#define NESIM_POINT_MODEL(PFX, ADV, INP, PRED)                                                    \
    static void PFX##_advance(const nesim_dyn *d, double *s, int64_t from, int64_t to,            \
                              int64_t ref)                                                        \
    {                                                                                             \
        NESIM_POINT_ADVANCE(ADV, d, s, from, to, ref);                                            \
    }                                                                                             \
    static void PFX##_input(const nesim_dyn *d, double *s, double w, int refractory)              \
    {                                                                                             \
        INP(d, s, w, refractory);                                                                 \
    }                                                                                             \
    static int PFX##_above(const nesim_dyn *d, const double *s)                                   \
    {                                                                                             \
        return s[0] >= nesim_rule_level(d, s + d->rule_off);                                      \
    }                                                                                             \
    static void PFX##_fire(const nesim_dyn *d, double *s)                                         \
    {                                                                                             \
        nesim_reset_v(d, &s[0], nesim_rule_level(d, s + d->rule_off));                           \
        nesim_rule_fire(d, s + d->rule_off);                                                      \
    }                                                                                             \
    static int64_t PFX##_predict(const nesim_dyn *d, const double *s, int64_t t, int64_t ref,     \
                                 int64_t lo, int64_t hi, nesim_scratch *ws, double *margin)       \
    {                                                                                             \
        return PRED(d, s, t, ref, lo, hi, ws, margin);                                            \
    }                                                                                             \
    static inline void PFX##_k_predict(nesim_pop *p, uint32_t j, int64_t lo, int64_t hi)          \
    {                                                                                             \
        nesim_nrec *r = &p->rec[j];                                                               \
        double m;                                                                                 \
        int64_t k = PRED(nesim_pop_dyn(p, j), nesim_point_state(p, j), r->ts, r->ref_until, lo, hi,\
                         p->io->ws, &m);                                                          \
        p->c.predictions++;                                                                       \
        r->budget = m * (1 - 1e-12) - 1e-300;                                                     \
        if (k != NESIM_NEVER || hi == NESIM_NEVER)                                                \
            nesim_pop_predict(p, r, j, k);                                                        \
    }                                                                                             \
    static void PFX##_k_init(nesim_pop *p, uint32_t j, double v0)                                 \
    {                                                                                             \
        double *s = nesim_point_state(p, j);                                                      \
        s[0] = v0;                                                                                \
        nesim_rule_init(nesim_pop_dyn(p, j), s + p->dyn.rule_off);                                \
        PFX##_k_predict(p, j, 0, NESIM_NEVER);                                                    \
    }                                                                                             \
    /* one input to neuron j (record r, state st; its constants cdyn[cls[j]], */            \
    /* or d0 without classes); a spent budget queues it in cand (*nc entries)  */            \
    static inline __attribute__((always_inline)) uint64_t PFX##_k_at(nesim_nrec *r, uint32_t j,   \
                                                                    const uint32_t *cls, const nesim_dyn *cdyn, \
                                                                    const nesim_dyn *d0, double *st, double w, \
                                                                    int kicks, double kick, int64_t t,  \
                                                                    int keep, uint32_t *cand, size_t *nc) \
    {                                                                                             \
        uint64_t up = 0;                                                                          \
        /* looked up where used: most inputs find the neuron at this tick already */             \
        const nesim_dyn *d;                                                                       \
        if (r->ts != t) { /* the constants are read here: once per neuron and tick */            \
            d = cls ? &cdyn[cls[j]] : d0;                                                         \
            NESIM_POINT_ADVANCE(ADV, d, st, r->ts, t, r->ref_until);                              \
            r->ts = t;                                                                            \
            up = 1;                                                                               \
        }                                                                                         \
        int refr = t < r->ref_until;                                                              \
        d = cls ? &cdyn[cls[j]] : d0; /* dead unless INP reads it */                           \
        INP(d, st, w, refr);                                                                      \
        if (kicks && (!refr || keep)) { /* kicks: kick > 0, a constant in the row loops */       \
            r->budget -= kick;                                                                    \
            nesim_cand_mark_if(cand, nc, r, j, r->budget < 0);                                    \
        }                                                                                         \
        return up;                                                                                \
    }                                                                                             \
    static inline __attribute__((always_inline)) uint64_t PFX##_k_one(nesim_pop *p, uint32_t j, double w,   \
                                                                     double kick, int64_t t, int keep) \
    {                                                                                             \
        return PFX##_k_at(&p->rec[j], j, p->cls, p->cdyn, &p->dyn, nesim_point_state(p, j), w, kick > 0, \
                          kick, t, keep, p->cand, &p->n_cand);                                    \
    }                                                                                             \
    static uint64_t PFX##_k_deliver(nesim_pop *p, const nesim_fan *f, double w, double kick,      \
                                    int64_t t)                                                    \
    {                                                                                             \
        const int keep = p->dyn.model->integrates_while_refractory;                               \
        uint64_t ups = 0;                                                                         \
        NESIM_FAN_EACH(f, j, { ups += PFX##_k_one(p, j, w, kick, t, keep); });                    \
        return ups;                                                                               \
    }                                                                                             \
    static uint64_t PFX##_k_deliver_w(nesim_pop *p, const uint32_t *col, const double *wv,        \
                                      uint32_t cnt, double kick, int64_t t)                       \
    {                                                                                             \
        const int keep = p->dyn.model->integrates_while_refractory;                               \
        uint64_t ups = 0;                                                                         \
        if (!p->state) {                                                                          \
            /* the common case, state in the record: the population's fields in   */            \
            /* locals (a store through a record could alias them, so the compiler */            \
            /* would reload them for every synapse), the candidate count too      */            \
            nesim_nrec *const rec = p->rec;                                                       \
            uint32_t *const cand = p->cand;                                                       \
            const uint32_t *const cls = p->cls;                                                   \
            const nesim_dyn *const cdyn = p->cdyn, *const d0 = &p->dyn;                           \
            size_t nc = p->n_cand;                                                                \
            /* a row's kick is one sign: the loop without the test, twice */                     \
            if (kick > 0)                                                                         \
                NESIM_POINT_ROW(PFX, 1);                                                          \
            else                                                                                  \
                NESIM_POINT_ROW(PFX, 0);                                                          \
            p->n_cand = nc;                                                                       \
            return ups;                                                                           \
        }                                                                                         \
        for (uint32_t k = 0; k < cnt; k++) {                                                      \
            /* the records of a row are scattered: fetch ahead of the branches */                 \
            if (k + NESIM_POINT_AHEAD < cnt)                                                      \
                __builtin_prefetch(&p->rec[col[k + NESIM_POINT_AHEAD]], 1);                       \
            ups += PFX##_k_one(p, col[k], wv[k], kick, t, keep);                                  \
        }                                                                                         \
        return ups;                                                                               \
    }                                                                                             \
    static void PFX##_k_test(nesim_pop *p, int64_t t)                                             \
    {                                                                                             \
        for (size_t k = 0; k < p->n_cand; k++) {                                                  \
            uint32_t j = p->cand[k];                                                              \
            const nesim_dyn *d = nesim_pop_dyn(p, j);                                             \
            nesim_nrec *r = &p->rec[j];                                                           \
            uint8_t fl = r->flags;                                                                \
            r->flags = 0;                                                                         \
            double *st = nesim_point_state(p, j);                                                 \
            if ((fl & NESIM_F_DUE) && t == 0)                                                     \
                p->c.updates++; /* the state is already at tick 0: counted here */                \
            if (r->ts != t) {                                                                     \
                NESIM_POINT_ADVANCE(ADV, d, st, r->ts, t, r->ref_until);                          \
                r->ts = t;                                                                        \
                p->c.updates++;                                                                   \
            }                                                                                     \
            if (t >= r->ref_until && st[0] >= nesim_rule_level(d, st + d->rule_off)) {            \
                nesim_pop_fires(p, j);                                                            \
            } else if (fl & NESIM_F_DUE) {                                                        \
                r->pred = NESIM_NEVER; /* consumed; stale by inhibition */                        \
                if (!nesim_pop_later(p, j))                                                       \
                    PFX##_k_predict(p, j, t + 1, NESIM_NEVER);                                    \
            } else if (r->budget < 0 && !nesim_pop_later(p, j)) {                                 \
                PFX##_k_predict(p, j, t + 1, r->pred);                                            \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    static void PFX##_k_settle(nesim_pop *p, int64_t t)                                           \
    {                                                                                             \
        for (size_t k = 0; k < p->n_later; k++)                                                   \
            PFX##_k_predict(p, p->later[k], t + 1, p->rec[p->later[k]].pred);                     \
        p->n_later = 0;                                                                           \
    }                                                                                             \
    static void PFX##_k_reset(nesim_pop *p, uint32_t j, int64_t t)                                \
    {                                                                                             \
        nesim_nrec *r = &p->rec[j];                                                               \
        const nesim_dyn *d = nesim_pop_dyn(p, j);                                                 \
        PFX##_fire(d, nesim_point_state(p, j));                                                   \
        r->ref_until = t + d->ref_ticks;                                                          \
        r->pred = NESIM_NEVER;                                                                    \
        r->gen++;                                                                                 \
        PFX##_k_predict(p, j, t + 1, NESIM_NEVER);                                                \
    }                                                                                             \
    static void PFX##_k_state(const nesim_pop *p, uint32_t j, int64_t now, double *out)           \
    {                                                                                             \
        const nesim_nrec *r = &p->rec[j];                                                         \
        for (int i = 0; i < p->dyn.n_state; i++)                                                  \
            out[i] = nesim_point_state(p, j)[i];                                                  \
        NESIM_POINT_ADVANCE(ADV, nesim_pop_dyn(p, j), out, r->ts, now, r->ref_until);             \
    }                                                                                             \
    static const nesim_pop_ops PFX##_point_ops = {                                                \
        .name = #PFX "/point", .uses_state = 1, .init = PFX##_k_init,                             \
        .deliver = PFX##_k_deliver, .deliver_w = PFX##_k_deliver_w, .test = PFX##_k_test,         \
        .settle = PFX##_k_settle, .reset = PFX##_k_reset,                                         \
        .state = PFX##_k_state};

#endif
