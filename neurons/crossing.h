/* crossing.h — first threshold crossing of a sum of exponentials, on the tick grid.
 *
 * Every leaky model here, left alone, follows
 *     f(s) = v(s) - threshold(s) = c0 + sum_i x[i] * exp(-rate[i] * s)
 * for s ticks after the state's tick. This module finds the first integer s in
 * [lo, hi] with f(s) >= 0. It brackets by branch and bound (each term is
 * monotone, so its extreme on an interval sits at an end: that bounds f and f'
 * from the ends alone), and inside a bracket where f rises it finds the root
 * with GSL's Brent solver, then settles the tick exactly on the grid. */
#ifndef NESIM_CROSSING_H
#define NESIM_CROSSING_H

#include "neurons/neuron.h"

typedef struct nesim_expsum {
    double c0;
    int n;
    double x[NESIM_TBL_MAX];
    int term[NESIM_TBL_MAX];  /* index into d->rate / d->tbl */
    const nesim_dyn *d;
} nesim_expsum;

/* f at integer offset s (uses the decay tables). */
double nesim_expsum_at(const nesim_expsum *f, int64_t s);

/* The prediction every leaky model makes: the first s in [from, top] (top < 0:
 * no bound) with f(s) >= 0; with slack > 0, when f(from) < -slack, the first s
 * at which f comes within max(slack, 0.35 |f(from)|) of 0 instead (a check,
 * never later than the crossing), and when f(from) is within slack but below
 * -slack / 2, the first s within slack / 2; -1 when there is none (without
 * a bound: none before the horizon past which f keeps its sign).
 * *margin receives a lower bound of -f over the offsets before the answer.
 * f is restored. */
int64_t nesim_expsum_predict(nesim_expsum *f, int64_t from, int64_t top, double slack,
                             nesim_scratch *ws, double *margin);

#endif
