/* epoch.c — tables, rebasing and read-out of the epoch representation (epoch.h). */
#include "neurons/epoch.h"

#include <stdlib.h>
#include <string.h>

int nesim_epoch_start(nesim_pop *p, int nt, int lif, nesim_error *err)
{
    const nesim_dyn *d = &p->dyn;
    nesim_epoch *E = calloc(1, sizeof *E);
    if (!E)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    E->nt = nt;
    E->lif = lif;
    E->tau0 = 1 / d->rate[0];
    double rmax = 0;
    for (int i = 0; i < nt; i++)
        rmax = fmax(rmax, d->rate[i]);
    /* an epoch spans at most 64 of the fastest time constant: factors stay
     * within e^{+-256} over the tables (four epochs) */
    int sh = 0;
    while (sh < 16 && (double)(2 << sh) * rmax <= 64)
        sh++;
    E->shift = sh;
    E->jmax = (int64_t)4 << sh;
    int64_t nhi = (E->jmax >> NESIM_EP_LO_BITS) + 1;
    size_t per = 2 * (size_t)(nhi + NESIM_EP_LO_N);
    E->tab = malloc(per * (size_t)nt * sizeof(double));
    if (!E->tab) {
        free(E);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < nt; i++) {
        double *ehi = E->tab + per * (size_t)i, *dhi = ehi + nhi, *elo = dhi + nhi, *dlo = elo + NESIM_EP_LO_N;
        double r = d->rate[i];
        for (int64_t h = 0; h < nhi; h++) {
            ehi[h] = exp(r * (double)(h << NESIM_EP_LO_BITS));
            dhi[h] = exp(-r * (double)(h << NESIM_EP_LO_BITS));
        }
        for (int l = 0; l < NESIM_EP_LO_N; l++) {
            elo[l] = exp(r * l);
            dlo[l] = exp(-r * l);
        }
        E->ehi[i] = ehi;
        E->dhi[i] = dhi;
        E->elo[i] = elo;
        E->dlo[i] = dlo;
    }
    E->tick = -1;
    p->impl = E;
    return NESIM_OK;
}

void nesim_epoch_stop(nesim_pop *p)
{
    nesim_epoch *E = p->impl;
    if (E)
        free(E->tab);
    free(E);
    p->impl = NULL;
}

double nesim_ep_decay_any(const nesim_epoch *E, const nesim_dyn *d, int i, int64_t j)
{
    if (j <= E->jmax)
        return nesim_ep_d(E, i, j);
    double a = d->rate[i] * (double)j;
    return a > 700 ? 0 : exp(-a);
}

void nesim_ep_rebase(const nesim_epoch *E, const nesim_dyn *d, nesim_nrec *r)
{
    int64_t dj = (E->ep - r->ts) << E->shift;
    for (int i = 0; i < E->nt; i++) {
        double f = nesim_ep_decay_any(E, d, i, dj);
        r->x[i] *= f;
        if (i == 0 && E->lif && isfinite(r->budget))
            r->budget *= f;
    }
    r->ts = E->ep;
}

void nesim_ep_state(const nesim_pop *p, uint32_t j, int64_t now, double *out)
{
    const nesim_epoch *E = p->impl;
    const nesim_dyn *d = &p->dyn;
    const nesim_nrec *r = &p->rec[j];
    int64_t dj = now - (r->ts << E->shift);
    double part[3] = {0};
    for (int i = 0; i < E->nt; i++)
        part[i] = r->x[i] * nesim_ep_decay_any(E, d, i, dj);
    int refr = (r->flags & NESIM_F_WAKE) != 0;
    out[0] = refr ? d->v_reset : nesim_dyn_param(d, "v_rest") + part[0] + part[1] + part[2];
    if (E->nt == 3) {
        out[1] = part[1] / d->c[0];
        out[2] = part[2] / d->c[1];
    }
}
