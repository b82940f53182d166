/* stream.c — overlapping fixed-threshold layers (see stream.h).
 *
 * Each tick, every layer with input events plays them through the coded
 * kernels (a ternary train of one step); then the neurons that may cross
 * test their threshold. Only neurons that got input this tick, or fired last
 * tick (draining), are tested. Scratch is allocated once per sample. */
#include "sim/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/coded_internal.h"

typedef struct lstate {
    nesim_coded_linear nb; /* the layer without its bias (applied once, at its first tick) */
    nesim_coded_work w;    /* w.rep: this tick's input spikes (+-1, 0) */
    int has_w;
    double *v;             /* membrane of this layer's outputs */
    float *dv;             /* kernel output */
    int8_t *next;          /* spikes emitted this tick, for the next layer */
    uint8_t *hot;          /* fired last tick: test again while draining */
    int64_t *cnt;          /* per input channel: net spikes received */
    int64_t first, last;   /* ticks of this sample's first and last input event */
    int started;
} lstate;

static void free_states(lstate *ls, size_t n)
{
    for (size_t k = 0; ls && k < n; k++) {
        if (ls[k].has_w)
            nesim_coded_work_free(&ls[k].w);
        free(ls[k].v), free(ls[k].dv), free(ls[k].next), free(ls[k].hot), free(ls[k].cnt);
    }
    free(ls);
}

int nesim_stream_forward(const nesim_stream_layer *S, size_t n, const float *x, float *y,
                         nesim_coded_stats *st, int64_t t0, int64_t *t_end, nesim_error *err)
{
    for (size_t k = 1; k < n; k++)
        if (!(S[k].in.vth > 0) || (S[k].in.coding != NESIM_CODE_BINARY && S[k].in.coding != NESIM_CODE_TERNARY))
            return nesim_fail(err, NESIM_EINVAL, "%s: overlapping layers need binary or ternary coding with a fixed threshold",
                              S[k].L->name);
    size_t in0 = S[0].L->in;
    lstate *ls = calloc(n, sizeof *ls);
    int rc = !ls ? nesim_fail(err, NESIM_ENOMEM, "out of memory") : NESIM_OK;
    for (size_t k = 0; !rc && k < n; k++) {
        size_t in = S[k].L->in, out = S[k].L->out;
        ls[k].nb = *S[k].L;
        ls[k].nb.has_bias = 0;
        if ((rc = nesim_coded_work_init(&ls[k].w, &ls[k].nb, err)))
            break;
        ls[k].has_w = 1;
        ls[k].v = calloc(out, sizeof(double));
        ls[k].dv = calloc(out, sizeof(float));
        ls[k].next = calloc(out, 1);
        ls[k].hot = calloc(out, 1);
        ls[k].cnt = calloc(in, sizeof(int64_t));
        if (!ls[k].v || !ls[k].dv || !ls[k].next || !ls[k].hot || !ls[k].cnt)
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    /* the first layer's input: counts and steps of its own coding */
    double vth0 = 0;
    int64_t T0 = 0, *N0 = ls ? ls[0].cnt : NULL;
    nesim_coded_stats s0;
    if (!rc)
        rc = nesim_code_row("coded linear", S[0].L->name, &S[0].in, x, in0, 0, N0, &vth0, &T0, &s0, err);
    int64_t last = t0 - 1;
    for (size_t k = 0; !rc && k < n; k++) {
        st[k].samples++;
        st[k].inputs += (int64_t)S[k].L->in;
        st[k].vth += k ? S[k].in.vth : vth0;
    }
    for (int64_t tau = t0; !rc; tau++) {
        int busy = 0;
        /* last layer first: layer k reads what layer k - 1 emitted last tick */
        for (size_t kk = n; kk-- > 0 && !rc;) {
            size_t k = kk;
            lstate *l = &ls[k];
            const nesim_coded_opts *io = &S[k].in;
            size_t in = S[k].L->in, out = S[k].L->out, events = 0, nh = 0;
            double unit_value;
            int64_t *rep = l->w.rep;
            if (k == 0) {
                int64_t t = tau - t0;
                memset(rep, 0, in * sizeof *rep);
                if (t < T0) {
                    busy = 1;
                    for (size_t i = 0; i < in; i++)
                        rep[i] = nesim_coding_spike(io->coding, N0[i], T0, t);
                }
                unit_value = vth0 * (nesim_coding_is_bitwise(io->coding) ? nesim_coding_step_weight(io->coding, T0, t) : 1);
            } else {
                for (size_t i = 0; i < in; i++) {
                    rep[i] = ls[k - 1].next[i];
                    if (rep[i])
                        l->cnt[i] += rep[i];
                }
                unit_value = io->vth;
            }
            for (size_t i = 0; i < in; i++) {
                if (!rep[i])
                    continue;
                events++;
                l->w.hit[nh++] = (uint32_t)i;
                if (io->chan_spikes)
                    io->chan_spikes[i]++;
                if (io->on_spike)
                    io->on_spike(io->spike_user, (uint32_t)i, tau, rep[i] > 0 ? 1 : -1);
            }
            int bias_now = !l->started && tau == t0 + (int64_t)k;
            if (bias_now) {
                l->started = 1;
                for (size_t o = 0; S[k].L->has_bias && o < out; o++)
                    l->v[o] += nesim_tensor_get(&S[k].L->bias, o);
            }
            if (events) {
                if ((rc = nesim_coded_play(&l->nb, &l->w, NESIM_CODE_TERNARY, 1, events, 1.0, l->dv, err)))
                    break;
                for (size_t o = 0; o < out; o++)
                    l->v[o] += unit_value * (double)l->dv[o];
                st[k].spikes += (int64_t)events;
                st[k].sops += (int64_t)(events * out);
                st[k].updates += nesim_coded_reached(&l->nb, l->w.hit, nh);
                if (io->on_step)
                    io->on_step(io->user, tau, (int64_t)events);
                if (!l->first)
                    l->first = tau + 1; /* stored +1: 0 means none yet */
                l->last = tau;
                if (st[k].first_tick < 0 || tau < st[k].first_tick)
                    st[k].first_tick = tau;
                if (tau > st[k].last_tick)
                    st[k].last_tick = tau;
                last = tau > last ? tau : last;
            }
            /* fire: this layer's outputs are the next layer's IF inputs */
            if (k + 1 < n) {
                double th = S[k + 1].in.vth;
                int tern = S[k + 1].in.coding == NESIM_CODE_TERNARY && !S[k].relu;
                int all = events || bias_now, hot = 0;
                for (size_t o = 0; o < out; o++) {
                    l->next[o] = 0;
                    if (!all && !l->hot[o])
                        continue;
                    if (l->v[o] >= th / 2) {
                        l->next[o] = 1;
                        l->v[o] -= th;
                    } else if (tern && l->v[o] < -th / 2) {
                        l->next[o] = -1;
                        l->v[o] += th;
                    }
                    if (l->next[o] && !events)
                        st[k].updates++; /* a draining neuron's reset */
                    l->hot[o] = l->next[o] != 0;
                    hot |= l->hot[o];
                }
                busy |= hot;
            }
        }
        if (!busy && tau >= t0 + (int64_t)n)
            break;
    }
    if (!rc) {
        lstate *l = &ls[n - 1];
        for (size_t o = 0; o < S[n - 1].L->out; o++) {
            double v = l->v[o];
            y[o] = (float)(S[n - 1].relu && v < 0 ? 0 : v);
        }
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < S[k].L->in; i++) {
                int64_t a = ls[k].cnt[i] < 0 ? -ls[k].cnt[i] : ls[k].cnt[i];
                st[k].hist[a < NESIM_CODED_HIST ? a : NESIM_CODED_HIST]++;
                st[k].silent += a == 0;
                st[k].max_count = a > st[k].max_count ? a : st[k].max_count;
            }
        *t_end = last + 1 > t0 ? last + 1 : t0;
        for (size_t k = 0; k < n; k++)
            if (ls[k].first)
                st[k].steps += ls[k].last - (ls[k].first - 1) + 1; /* ticks spanned */
    }
    free_states(ls, n);
    return rc;
}
