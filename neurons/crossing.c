/* crossing.c — first threshold crossing of a sum of exponentials (see crossing.h). */
#include "neurons/crossing.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <stdlib.h>

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

int64_t nesim_expsum_first(const nesim_expsum *f, int64_t lo, int64_t hi, nesim_scratch *ws,
                           double *margin)
{
    double mg = INFINITY;
    if (hi < 0)
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
    if (margin)
        *margin = mg;
    return found;
}
