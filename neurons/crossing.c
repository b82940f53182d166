/* crossing.c — first threshold crossing of a sum of exponentials (see crossing.h). */
#include "neurons/crossing.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Far below threshold the first check is at a level FAR_FRAC of the way up
 * (or within slack, whichever is further): a neuron far below gets a margin
 * of that size, so more inputs pass before it must predict again (CUBA,
 * 4,000 neurons: 3.59 M predictions -> 3.3 M). */
#ifndef FAR_FRAC
#define FAR_FRAC 0.35
#endif
/* Check levels of nesim_expsum_predict: within slack, then within slack / 2. */
#ifndef SLACK_LEVELS
#define SLACK_LEVELS 2
#endif

struct nesim_scratch {
    gsl_root_fsolver *brent;
};

nesim_scratch *nesim_scratch_new(void)
{
    nesim_scratch *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->brent = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
    if (!ws->brent) {
        free(ws);
        return NULL;
    }
    return ws;
}

void nesim_scratch_free(nesim_scratch *ws)
{
    if (!ws)
        return;
    gsl_root_fsolver_free(ws->brent);
    free(ws);
}

double nesim_expsum_at(const nesim_expsum *f, int64_t s)
{
    double v = f->c0;
    for (int i = 0; i < f->n; i++)
        v += f->x[i] * nesim_decay(f->d, f->term[i], s);
    return v;
}

static double expsum_cont(double s, void *arg)
{
    const nesim_expsum *f = arg;
    double v = f->c0;
    for (int i = 0; i < f->n; i++)
        v += f->x[i] * exp(-f->d->rate[f->term[i]] * s);
    return v;
}

/* Offset past which f keeps the sign of c0: every term is then below |c0|/n. */
static int64_t horizon(const nesim_expsum *f)
{
    double scale = fabs(f->c0), h = 0;
    if (scale == 0) {
        for (int i = 0; i < f->n; i++)
            scale = fmax(scale, fabs(f->x[i]));
        scale *= 1e-12;
    }
    if (scale == 0)
        return 0;
    for (int i = 0; i < f->n; i++)
        if (f->x[i] != 0)
            h = fmax(h, log(f->n * fabs(f->x[i]) / scale) / f->d->rate[f->term[i]]);
    return h > 1e12 ? (int64_t)1e12 : (int64_t)ceil(h) + 1;
}

static inline double min2(double a, double b) { return a < b ? a : b; }
static inline double max2(double a, double b) { return a > b ? a : b; }

/* Smallest k in (a, b] with f(k) >= 0, given f(a) < 0 <= f(b) and f rising on
 * [a, b]. Inside the decay tables integer bisection is cheapest (a lookup per
 * term); a bracket reaching past them is narrowed by GSL's Brent solver on the
 * continuous function first, then settled on the grid. */
static int64_t settle(const nesim_expsum *f, int64_t a, int64_t b, nesim_scratch *ws)
{
    if (b - a > 32 && (uint64_t)b >= f->d->tbl_n && ws) {
        gsl_function F = {expsum_cont, (void *)f};
        if (gsl_root_fsolver_set(ws->brent, &F, (double)a, (double)b) == GSL_SUCCESS) {
            for (int it = 0; it < 60; it++) {
                if (gsl_root_fsolver_iterate(ws->brent) != GSL_SUCCESS)
                    break;
                double xl = gsl_root_fsolver_x_lower(ws->brent);
                double xu = gsl_root_fsolver_x_upper(ws->brent);
                if (xu - xl < 0.5)
                    break;
            }
            double r = gsl_root_fsolver_root(ws->brent);
            int64_t lo = (int64_t)floor(r) - 1, hi = (int64_t)ceil(r) + 1;
            if (lo > a && lo < b && nesim_expsum_at(f, lo) < 0)
                a = lo;
            if (hi < b && hi > a && nesim_expsum_at(f, hi) >= 0)
                b = hi;
        }
    }
    while (b - a > 1) {
        int64_t m = a + (b - a) / 2;
        if (nesim_expsum_at(f, m) >= 0)
            b = m;
        else
            a = m;
    }
    return b;
}

/* The general search: branch and bound over [lo, hi]. */
static int64_t first_general(const nesim_expsum *f, int64_t lo, int64_t hi, nesim_scratch *ws,
                             double *margin)
{
    double mg = INFINITY;
    int unbounded = hi < 0;
    if (unbounded)
        hi = lo + horizon(f);
    if (hi - lo > ((int64_t)1 << 40))
        hi = lo + ((int64_t)1 << 40);
    int64_t stack[2 * 64][2];
    int sp = 0;
    if (hi >= lo) {
        stack[sp][0] = lo;
        stack[sp][1] = hi;
        sp++;
    }
    int64_t found = -1;
    while (sp > 0 && found < 0) {
        sp--;
        int64_t a = stack[sp][0], b = stack[sp][1];
        double ub = f->c0, dlb = 0;
        for (int i = 0; i < f->n; i++) {
            int k = f->term[i];
            double ta = f->x[i] * nesim_decay(f->d, k, a);
            double tb = f->x[i] * nesim_decay(f->d, k, b);
            ub += max2(ta, tb);
            dlb += min2(-f->d->rate[k] * ta, -f->d->rate[k] * tb);
        }
        if (ub < 0) {
            mg = min2(mg, -ub);
            continue;
        }
        if (b - a < 8) {
            for (int64_t k = a; k <= b; k++) {
                double fk = nesim_expsum_at(f, k);
                if (fk >= 0) {
                    found = k;
                    break;
                }
                mg = min2(mg, -fk);
            }
            continue;
        }
        double fa = nesim_expsum_at(f, a);
        if (fa >= 0) {
            found = a;
            break;
        }
        if (dlb >= 0) {
            double fb = nesim_expsum_at(f, b);
            if (fb < 0) {
                mg = min2(mg, -fb);
                continue;
            }
            found = settle(f, a, b, ws);
            mg = min2(mg, -nesim_expsum_at(f, found - 1));
            break;
        }
        mg = min2(mg, -fa);
        int64_t m = a + (b - a) / 2;
        stack[sp][0] = m + 1;
        stack[sp][1] = b;
        stack[sp + 1][0] = a;
        stack[sp + 1][1] = m;
        sp += 2;
    }
    if (found < 0 && unbounded) {
        /* past the horizon f stays below c0 plus its decaying positive terms:
         * the margin covers that tail too */
        double tail = -f->c0;
        for (int i = 0; i < f->n; i++)
            if (f->x[i] > 0)
                tail -= f->x[i] * nesim_decay(f->d, f->term[i], hi);
        mg = min2(mg, tail);
    }
    if (margin)
        *margin = mg;
    return found;
}

/* ---- the fast path ---------------------------------------------------- */

/* f prepared for repeated evaluation: rates and table rows at hand. */
typedef struct fx {
    int n;
    double c0;
    double x[NESIM_TBL_MAX], r[NESIM_TBL_MAX];
    const double *hi[NESIM_TBL_MAX], *lo[NESIM_TBL_MAX];
    uint64_t tn;
} fx;

static inline __attribute__((always_inline)) void fx_prepare(fx *F, const nesim_expsum *f, const int n)
{
    F->n = n;
    F->c0 = f->c0;
    F->tn = f->d->tsplit_n;
#pragma GCC unroll 4
    for (int i = 0; i < n; i++) {
        F->x[i] = f->x[i];
        F->r[i] = f->d->rate[f->term[i]];
        F->hi[i] = f->d->thi[f->term[i]];
        F->lo[i] = f->d->tlo[f->term[i]];
    }
}

/* The terms x_i e^{-r_i s}, the factors from the small split tables (they
 * stay in the first-level cache while a search jumps about). */
static inline void fx_terms(const fx *F, const int n, int64_t s, double *t)
{
    if ((uint64_t)s < F->tn)
        #pragma GCC unroll 4
        for (int i = 0; i < n; i++)
            t[i] = F->x[i] * (F->hi[i][s >> 8] * F->lo[i][s & 255]);
    else
        #pragma GCC unroll 4
        for (int i = 0; i < n; i++)
            t[i] = F->x[i] * exp(-F->r[i] * (double)s);
}

static inline double fx_val(const fx *F, const int n, const double *t)
{
    double v = F->c0;
    #pragma GCC unroll 4
    for (int i = 0; i < n; i++)
        v += t[i];
    return v;
}

static inline double fx_der(const fx *F, const int n, const double *t)
{
    double dv = 0;
    #pragma GCC unroll 4
    for (int i = 0; i < n; i++)
        dv -= F->r[i] * t[i];
    return dv;
}

static inline __attribute__((always_inline)) double fx_at(const fx *F, const int n, int64_t s, double *fp)
{
    double t[NESIM_TBL_MAX];
    fx_terms(F, n, s, t);
    if (fp)
        *fp = fx_der(F, n, t);
    return fx_val(F, n, t);
}

static inline double dmax(double a, double b) { return a > b ? a : b; }

/* ceil for |x| < 2^62 */
static inline int64_t iceil(double x)
{
    int64_t i = (int64_t)x;
    return i + ((double)i < x);
}

/* Fast path for c0 > 0 (f ends above zero) and at most three terms, given
 * the terms t at lo and f(lo) < 0.
 *
 * f' = sum y_k e^{-r_k s} with y_k = -r_k x_k has at most two real zeros
 * (Laguerre's rule of signs: no more than the sign changes of its
 * coefficients ordered by rate). Going through the possible sign sequences of
 * f' after lo — (+), (-,+), (+,-), (-,+,-), (+,-,+) — with f ending at c0 > 0,
 * the sign of f changes exactly once after lo in every case but the last
 * (rise, peak, dip, rise), which needs y = (+,-,+). There, the peak is
 * located first (h = f' e^{r_1 s} has a single minimum, at s_h in closed
 * form, so f' changes sign at most once on each side of it): if it reaches
 * zero the crossing is on the rising flank before it, otherwise f changes
 * sign once after it. A single sign change means the sign of f at any tick
 * tells on which side of the crossing it lies: a safeguarded Newton /
 * Illinois search on the grid finds the first tick in a few evaluations.
 * Before the answer f has at most a dip (and the peak, evaluated): its
 * largest value sits at the ends or at the peak, so the margin needs no scan.
 * Returns 0 when rounding defeats the reasoning (the caller then searches in
 * general). */
static inline __attribute__((always_inline)) int first_cpos(const fx *F, const int n, int64_t lo, int64_t hi,
                                                           const double *tlo, double flo, int64_t *found,
                                                           double *margin)
{
    if (!(F->c0 > 0) || n > 3) /* the reasoning above holds for three terms at most */
        return 0;
    if (hi >= 0 && hi <= lo) {
        *margin = -flo;
        *found = -1;
        return 1;
    }
    /* an offset by which f >= 0 for sure: the negative terms, decaying at
     * least as fast as the slowest of them, have fallen below c0 (computed
     * when needed: a bounded search uses hi) */
    double neg = 0, rneg = INFINITY, fpa = 0;
    #pragma GCC unroll 4
    for (int i = 0; i < n; i++) {
        fpa -= F->r[i] * tlo[i];
        if (tlo[i] < 0) {
            neg -= tlo[i];
            if (F->r[i] < rneg)
                rneg = F->r[i];
        }
    }
    if (!(neg > F->c0))
        return 0; /* f(lo) < 0 by rounding alone */
    int capped = hi >= 0;
    int64_t bound = capped ? hi : -1;
    double peak = -INFINITY, fhi = NAN;
    int64_t a = lo, b = -1;
    double fa = flo, fb = 0;
    if (n == 3 && fpa > 0) {
        /* terms by rate; the rise-peak-dip-rise shape needs y = (+,-,+) */
        int o0 = 0, o1 = 1, o2 = 2, tmp;
        if (F->r[o1] < F->r[o0])
            tmp = o0, o0 = o1, o1 = tmp;
        if (F->r[o2] < F->r[o1])
            tmp = o1, o1 = o2, o2 = tmp;
        if (F->r[o1] < F->r[o0])
            tmp = o0, o0 = o1, o1 = tmp;
        double r1 = F->r[o0], r2 = F->r[o1], r3 = F->r[o2];
        double y1 = -r1 * F->x[o0], y2 = -r2 * F->x[o1], y3 = -r3 * F->x[o2];
        /* f' >= e^{-r1 (s - lo)} (f'_1(lo) + f'_2(lo)) after lo: if that is
         * not negative f only rises, and the peak needs no search */
        if (y1 > 0 && y2 < 0 && y3 > 0 && r1 < r2 && r2 < r3 && r1 * tlo[o0] + r2 * tlo[o1] > 0) {
            /* h = y1 + y2 e^{-p s} + y3 e^{-q s} has its minimum at s_h */
            double p = r2 - r1, q = r3 - r1;
            double sh = log(-q * y3 / (p * y2)) / (q - p);
            if (sh > (double)lo && sh < 1e15) {
                int64_t e = bound < 0 || sh < (double)bound ? (int64_t)sh : bound;
                /* e, e + 1 and the cap in one round (independent evaluations) */
                double fpe, fe = fx_at(F, n, e, &fpe);
                double fpe1, fe1 = fx_at(F, n, e + 1, &fpe1);
                if (capped && e + 1 < bound)
                    fhi = fx_at(F, n, bound, NULL);
                if (fpe < 0) {
                    /* the peak lies in (lo, e), where f' falls through zero once:
                     * find the last tick with f' >= 0 (Illinois on f') */
                    int64_t u = lo, v = e;
                    double gu = fpa, gv = fpe, fu = flo;
                    int last = 0;
                    for (int it = 0; v - u > 1; it++) {
                        int64_t m;
                        if ((it & 3) == 3) {
                            m = u + (v - u) / 2;
                        } else {
                            double est = (double)u + (double)(v - u) * (gu / (gu - gv));
                            m = !(est < (double)v) ? v - 1 : !(est > (double)u) ? u + 1 : (int64_t)est;
                            if (m >= v)
                                m = v - 1;
                            if (m <= u)
                                m = u + 1;
                        }
                        double g, fm = fx_at(F, n, m, &g);
                        if (g >= 0) {
                            u = m;
                            gu = g;
                            fu = fm;
                            if (last > 0)
                                gv *= 0.5;
                            last = 1;
                        } else {
                            v = m;
                            gv = g;
                            if (last < 0)
                                gu *= 0.5;
                            last = -1;
                        }
                    }
                    e = u;
                    fe = fu;
                    fe1 = fx_at(F, n, e + 1, &fpe1);
                } else if (capped && e == bound) {
                    /* f' >= 0 up to the cap: f rises on [lo, hi] */
                    if (fe < 0) {
                        *margin = -fe;
                        *found = -1;
                        return 1;
                    }
                    b = e;
                    fb = fe;
                    goto search;
                }
                /* f rises on [lo, e]; e + 1 is past the peak or still rising */
                if (fe >= 0) { /* crossing on the rising flank */
                    b = e;
                    fb = fe;
                    goto search;
                }
                if (fe1 >= 0 && (!capped || e + 1 <= hi)) {
                    *found = e + 1;
                    *margin = -fe;
                    return 1;
                }
                peak = dmax(fe, fe1);
                if (capped && e + 1 >= hi) {
                    *margin = -dmax(flo, peak);
                    *found = -1;
                    return 1;
                }
                a = e + 1;
                fa = fe1;
                fpa = fpe1;
            }
        }
    }
    /* one sign change after a */
    if (capped && a < bound) { /* the end decides whether there is a crossing at all */
        fb = fhi == fhi ? fhi : fx_at(F, n, bound, NULL);
        if (fb < 0) {
            *margin = -dmax(dmax(flo, peak), dmax(fa, fb));
            *found = -1;
            return 1;
        }
        b = bound;
    }
search:;
    /* Newton from the left while its step stays inside the bracket (on a
     * concave rise it never overshoots), Illinois otherwise, and a bisection
     * every fourth step when Newton is not the one making progress. Each
     * round evaluates the chosen tick s and s - 1 together: when the estimate
     * is right to the tick, that settles it. */
    double ga = fa, gb = fb;
    int last = 0, it = 0, iters = 0;
    for (;;) {
        if (b >= 0 && b - a <= 1)
            break;
        int64_t s = -1;
        if (fpa > 0) {
            double step = -fa / fpa;
            if (b < 0 ? step < 1e15 : step < (double)(b - a - 1))
                s = a + (step < 1 ? 1 : iceil(step));
        }
        if (s < 0) {
            if (b < 0) { /* no bracket yet and no Newton step: the bound gives one */
                if (bound < 0) {
                    double span = log(neg / F->c0) / rneg;
                    if (!(span < 1e15))
                        return 0;
                    bound = lo + iceil(span) + 1;
                }
                if (a >= bound)
                    return 0; /* rounding defeated the bound */
                fb = fx_at(F, n, bound, NULL);
                if (fb < 0) {
                    if (!capped)
                        return 0;
                    *margin = -dmax(dmax(flo, peak), dmax(fa, fb));
                    *found = -1;
                    return 1;
                }
                b = bound;
                gb = fb;
                ga = fa;
                continue;
            }
            if ((++it & 3) == 0) {
                s = a + (b - a) / 2;
            } else {
                double est = (double)a + (double)(b - a) * (ga / (ga - gb));
                s = !(est < (double)b) ? b - 1 : !(est > (double)a) ? a + 1 : iceil(est);
                if (s >= b)
                    s = b - 1;
                if (s <= a)
                    s = a + 1;
            }
        }
        double fp, fs = fx_at(F, n, s, &fp);
        if (s - 1 > a) {
            double fp0, f0 = fx_at(F, n, s - 1, &fp0);
            if (f0 >= 0) {
                s = s - 1, fs = f0, fp = fp0;
            } else if (fs >= 0) {
                a = s - 1;
                fa = f0;
                b = s;
                break;
            }
        }
        if (fs >= 0) {
            b = s;
            fb = gb = fs;
            if (last > 0)
                ga *= 0.5;
            last = 1;
        } else {
            a = s;
            fa = ga = fs;
            fpa = fp;
            if (last < 0)
                gb *= 0.5;
            last = -1;
        }
        if (++iters > 100)
            return 0;
    }
    *found = b;
    *margin = -dmax(dmax(flo, peak), fa);
    return 1;
}

/* The first s in [lo, hi] with f(s) >= 0 for f with constant F->c0, given the
 * terms t at lo. f->c0 must equal F->c0 (the general search reads f). n is
 * F->n, a constant where the caller can make it one: the compiler then
 * unrolls every evaluation over the terms, the bulk of a search. */
static inline __attribute__((always_inline)) int64_t first_at_n(const nesim_expsum *f, const fx *F, int64_t lo,
                                                               int64_t hi, const double *t, nesim_scratch *ws,
                                                               double *margin, const int n)
{
    double flo = fx_val(F, n, t);
    if (flo >= 0) {
        *margin = INFINITY;
        return lo;
    }
    int64_t k;
    if (first_cpos(F, n, lo, hi, t, flo, &k, margin))
        return k;
    return first_general(f, lo, hi, ws, margin);
}

/* three terms: lif_exp, or lif with a current */
static int64_t first_at3(const nesim_expsum *f, const fx *F, int64_t lo, int64_t hi, const double *t,
                         nesim_scratch *ws, double *margin)
{
    return first_at_n(f, F, lo, hi, t, ws, margin, 3);
}

static int64_t first_at(const nesim_expsum *f, const fx *F, int64_t lo, int64_t hi, const double *t,
                        nesim_scratch *ws, double *margin)
{
    if (F->n == 3)
        return first_at3(f, F, lo, hi, t, ws, margin);
    return first_at_n(f, F, lo, hi, t, ws, margin, F->n);
}

/* nesim_expsum_predict's fast path for n terms (n <= NESIM_TBL_MAX). */
static inline __attribute__((always_inline)) int64_t predict_n(nesim_expsum *f, int64_t from, int64_t top,
                                                              double slack, nesim_scratch *ws, double *margin,
                                                              const int n)
{
    fx F;
    double t[NESIM_TBL_MAX];
    if (n != 3) { /* unrolled loops over a variable n read past it (on dead paths) */
        memset(&F, 0, sizeof F);
        memset(t, 0, sizeof t);
    }
    fx_prepare(&F, f, n);
    fx_terms(&F, n, from, t);
    double f0 = fx_val(&F, n, t);
    for (int l = 0; l < SLACK_LEVELS && slack > 0; l++, slack *= 0.5) {
        if (f0 < -slack) {
            /* far below threshold: answer when f comes within slack, or
             * within FAR_FRAC of the distance when that is further (a check) */
            double c0 = f->c0;
            if (l == 0 && -f0 * FAR_FRAC > slack)
                slack = -f0 * FAR_FRAC;
            f->c0 = F.c0 = c0 + slack;
            int64_t k = first_at(f, &F, from, top, t, ws, margin);
            f->c0 = c0;
            *margin += slack;
            return k;
        }
    }
    return first_at(f, &F, from, top, t, ws, margin);
}

int64_t nesim_expsum_predict(nesim_expsum *f, int64_t from, int64_t top, double slack,
                             nesim_scratch *ws, double *margin)
{
    if (top >= 0 && top < from) {
        *margin = INFINITY;
        return -1;
    }
    if (f->n > NESIM_TBL_MAX) {
        if (slack > 0 && nesim_expsum_at(f, from) < -slack) {
            double c0 = f->c0;
            f->c0 = c0 + slack;
            int64_t k = first_general(f, from, top, ws, margin);
            f->c0 = c0;
            *margin += slack;
            return k;
        }
        return first_general(f, from, top, ws, margin);
    }
    if (f->n == 3)
        return predict_n(f, from, top, slack, ws, margin, 3);
    return predict_n(f, from, top, slack, ws, margin, f->n);
}
