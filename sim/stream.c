/* stream.c — overlapping fixed-threshold layers (see stream.h).
 *
 * Each tick, every layer with input events applies them through the coded
 * linear kernel (a ternary train of one step, worth one unit per spike), so
 * synaptic work is counted and done exactly as for any coded layer; then
 * the neurons that may cross test their threshold. Only neurons that got
 * input this tick, or fired last tick (draining), are tested. */
#include "sim/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lstate {
    double *v;          /* membrane of this layer's outputs */
    float *x;           /* this tick's input spikes (+-1, 0) */
    float *dv;          /* kernel output */
    int8_t *next;       /* spikes emitted this tick, for the next layer */
    uint8_t *hot;       /* fired last tick: test again while draining */
    int64_t *cnt;       /* per input channel: net spikes received */
    int64_t first, last; /* ticks of this sample's first and last input event */
    int any_in, started;
} lstate;

static int is_bitwise(nesim_coding c)
{
    return c == NESIM_CODE_BITWISE || c == NESIM_CODE_BITWISE_BIDIR || c == NESIM_CODE_BITWISE_TWOS;
}

static void free_states(lstate *ls, size_t n)
{
    for (size_t k = 0; ls && k < n; k++) {
        free(ls[k].v), free(ls[k].x), free(ls[k].dv), free(ls[k].next), free(ls[k].hot), free(ls[k].cnt);
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
    double *u0 = malloc(in0 * sizeof *u0);
    int rc = (!ls || !u0) ? nesim_fail(err, NESIM_ENOMEM, "out of memory") : NESIM_OK;
    for (size_t k = 0; !rc && k < n; k++) {
        size_t in = S[k].L->in, out = S[k].L->out;
        ls[k].v = calloc(out, sizeof(double));
        ls[k].x = calloc(in, sizeof(float));
        ls[k].dv = calloc(out, sizeof(float));
        ls[k].next = calloc(out, 1);
        ls[k].hot = calloc(out, 1);
        ls[k].cnt = calloc(in, sizeof(int64_t));
        if (!ls[k].v || !ls[k].x || !ls[k].dv || !ls[k].next || !ls[k].hot || !ls[k].cnt)
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    /* the first layer's input: counts and steps of its own coding */
    double vth0 = 0;
    int64_t T0 = 0, *N0 = ls ? ls[0].cnt : NULL;
    if (!rc)
        rc = nesim_coded_dense_input(&S[0].in, x, in0, u0, &vth0, err);
    for (size_t i = 0; !rc && i < in0; i++) {
        N0[i] = (int64_t)llround(u0[i] / vth0);
        int64_t a = N0[i] < 0 ? -N0[i] : N0[i];
        T0 = a > T0 ? a : T0;
    }
    if (!rc)
        T0 = nesim_coding_steps(S[0].in.coding, T0);
    nesim_coded_opts unit;
    nesim_coded_opts_init(&unit);
    unit.coding = NESIM_CODE_TERNARY;
    unit.vth = 1;
    int64_t last = t0 - 1;
    for (size_t k = 0; k < n; k++) {
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
            size_t in = S[k].L->in, out = S[k].L->out;
            double unit_value;
            l->any_in = 0;
            if (k == 0) {
                int64_t t = tau - t0;
                if (t < T0) {
                    busy = 1;
                    for (size_t i = 0; i < in; i++) {
                        l->x[i] = (float)nesim_coding_spike(S[0].in.coding, N0[i], T0, t);
                        l->any_in |= l->x[i] != 0;
                        if (l->x[i] != 0 && S[0].chan_spikes)
                            S[0].chan_spikes[i]++;
                        if (l->x[i] != 0 && S[0].on_spike)
                            S[0].on_spike(S[0].spike_user, (uint32_t)i, tau, l->x[i] > 0 ? 1 : -1);
                    }
                }
                unit_value = vth0 * (is_bitwise(S[0].in.coding) ? nesim_coding_step_weight(S[0].in.coding, T0, t) : 1);
            } else {
                for (size_t i = 0; i < in; i++) {
                    l->x[i] = ls[k - 1].next[i];
                    l->any_in |= l->x[i] != 0;
                    if (l->x[i] != 0) {
                        l->cnt[i] += (int64_t)l->x[i];
                        if (S[k].chan_spikes)
                            S[k].chan_spikes[i]++;
                        if (S[k].on_spike)
                            S[k].on_spike(S[k].spike_user, (uint32_t)i, tau, l->x[i] > 0 ? 1 : -1);
                    }
                }
                unit_value = S[k].in.vth;
            }
            int bias_now = !l->started && tau == t0 + (int64_t)k;
            if (bias_now) {
                l->started = 1;
                for (size_t o = 0; S[k].L->has_bias && o < out; o++)
                    l->v[o] += nesim_tensor_get(&S[k].L->bias, o);
            }
            if (l->any_in) {
                nesim_coded_linear nb = *S[k].L;
                nb.has_bias = 0;
                nesim_coded_stats s1;
                unit.t0 = tau;
                if ((rc = nesim_coded_linear_forward(&nb, &unit, l->x, l->dv, &s1, err)))
                    break;
                for (size_t o = 0; o < out; o++)
                    l->v[o] += unit_value * (double)l->dv[o];
                st[k].spikes += s1.spikes;
                st[k].sops += s1.sops;
                if (S[k].in.on_step)
                    S[k].in.on_step(S[k].in.user, tau, s1.spikes);
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
                int all = l->any_in || bias_now, hot = 0;
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
    free(u0);
    free_states(ls, n);
    return rc;
}
