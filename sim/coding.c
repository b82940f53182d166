/* coding.c — the spike coding of a layer's input (see coding.h). */
#include "sim/coding.h"

#include <math.h>
#include <string.h>

static int64_t mag64(int64_t n) { return n < 0 ? -n : n; } /* |n| <= 2^53 here */

void nesim_coded_opts_init(nesim_coded_opts *o)
{
    memset(o, 0, sizeof *o);
    o->coding = NESIM_CODE_BITWISE_BIDIR;
    o->k = 3.0;
    o->threads = 1;
}

void nesim_coded_stats_init(nesim_coded_stats *st)
{
    memset(st, 0, sizeof *st);
    st->first_tick = st->last_tick = -1;
}

void nesim_coded_stats_add(nesim_coded_stats *t, const nesim_coded_stats *s)
{
    t->samples += s->samples;
    t->inputs += s->inputs;
    t->spikes += s->spikes;
    t->sops += s->sops;
    t->steps += s->steps;
    t->vth += s->vth; /* divided by samples in finish */
    t->updates += s->updates;
    if (s->max_count > t->max_count)
        t->max_count = s->max_count;
    t->clipped += s->clipped;
    t->silent += s->silent;
    for (int b = 0; b <= NESIM_CODED_HIST; b++)
        t->hist[b] += s->hist[b];
    if (s->first_tick >= 0 && (t->first_tick < 0 || s->first_tick < t->first_tick))
        t->first_tick = s->first_tick;
    if (s->last_tick > t->last_tick)
        t->last_tick = s->last_tick;
    if (s->t_end > t->t_end)
        t->t_end = s->t_end;
}

void nesim_coded_stats_finish(nesim_coded_stats *st)
{
    if (st->samples)
        st->vth /= (double)st->samples;
    int64_t small = 0;
    for (int b = 0; b < NESIM_CODED_HIST; b++)
        small += st->hist[b];
    st->frac_small = st->inputs ? (double)small / (double)st->inputs : 0;
    st->spikes_per_channel = st->inputs ? (double)st->spikes / (double)st->inputs : 0;
}

int nesim_code_check(const char *kind, const char *name, const nesim_coded_opts *o, nesim_error *err)
{
    if (!o)
        return nesim_fail(err, NESIM_EINVAL, "%s '%s': no options", kind, name);
    if (nesim_coding_steps(o->coding, 0) < 0)
        return nesim_fail(err, NESIM_EINVAL, "%s '%s': invalid coding %d", kind, name, (int)o->coding);
    if (!(o->vth >= 0) || isinf(o->vth))
        return nesim_fail(err, NESIM_EINVAL,
                          "%s '%s': fixed threshold %g is not positive and finite (0 selects the adaptive threshold)",
                          kind, name, o->vth);
    if (o->vth == 0 && (!(o->k > 0) || isinf(o->k)))
        return nesim_fail(err, NESIM_EINVAL, "%s '%s': threshold divisor k = %g is not positive and finite", kind,
                          name, o->k);
    if (o->t0 < 0)
        return nesim_fail(err, NESIM_EINVAL, "%s '%s': t0 = %lld is negative", kind, name, (long long)o->t0);
    if (o->min_steps < 0 || o->min_steps > NESIM_CODING_BITS_MAX ||
        (o->min_steps > 0 && !nesim_coding_is_bitwise(o->coding)))
        return nesim_fail(err, NESIM_EINVAL, "%s '%s': min_steps %lld (a bitwise coding's, 0 .. %d)", kind, name,
                          (long long)o->min_steps, NESIM_CODING_BITS_MAX);
    if (o->step_events_len && !o->step_events)
        return nesim_fail(err, NESIM_EINVAL, "%s '%s': step_events_len %zu without a step_events array", kind,
                          name, o->step_events_len);
    return NESIM_OK;
}

int nesim_code_row(const char *kind, const char *name, const nesim_coded_opts *o, const float *x, size_t in,
                   size_t sample, int64_t *rep, double *vth_out, int64_t *T_out, nesim_coded_stats *st,
                   nesim_error *err)
{
    nesim_coded_stats_init(st);
    /* Find a non-finite activation first: with the adaptive threshold it would
     * poison V_th and the count check would then blame the wrong input. */
    for (size_t i = 0; i < in; i++)
        if (!isfinite(x[i]))
            return nesim_fail(err, NESIM_EINVAL, "%s '%s': sample %zu, input %zu: activation %g is not finite", kind,
                              name, sample, i, (double)x[i]);
    double vth = o->vth > 0 ? o->vth : nesim_vth_adaptive(x, in, o->k);
    int64_t M = 0;
    for (size_t i = 0; i < in; i++) {
        int64_t n;
        if (nesim_spike_count_checked(x[i], vth, &n, err) != NESIM_OK)
            return nesim_context(err, "%s '%s': sample %zu, input %zu: ", kind, name, sample, i);
        int64_t r = nesim_coding_representable(o->coding, n);
        rep[i] = r;
        int64_t a = mag64(n);
        st->hist[a < NESIM_CODED_HIST ? a : NESIM_CODED_HIST]++;
        st->silent += n == 0;
        st->clipped += r != n;
        if (mag64(r) > M)
            M = mag64(r);
    }
    int64_t T = nesim_coding_steps(o->coding, M);
    if (T >= 0 && T < o->min_steps) /* the tensor's T: leading zero bits */
        T = o->min_steps;
    if (T < 0 || (nesim_coding_is_bitwise(o->coding) && T > NESIM_CODING_BITS_MAX))
        return nesim_fail(err, NESIM_EINTERNAL, "%s '%s': no step count for max count %lld", kind, name, (long long)M);
    st->samples = 1;
    st->inputs = (int64_t)in;
    st->max_count = M;
    st->steps = T;
    st->vth = vth;
    *vth_out = vth;
    *T_out = T;
    return NESIM_OK;
}

int nesim_code_emit(const char *kind, const char *name, const nesim_coded_opts *o, const int64_t *rep, size_t in,
                    int64_t T, int64_t t0, size_t sample, int64_t *events_out, nesim_error *err)
{
    int64_t events = 0;
    for (size_t i = 0; i < in; i++) {
        if (!rep[i])
            continue;
        int64_t k = nesim_coding_spikes(o->coding, rep[i], T);
        if (__builtin_add_overflow(events, k, &events))
            return nesim_fail(err, NESIM_EINVAL, "%s '%s': sample %zu: the spike count overflows", kind, name, sample);
        if (o->chan_spikes)
            o->chan_spikes[i] += (uint64_t)k;
    }
    for (int64_t t = 0; o->on_spike && events && t < T; t++)
        for (size_t i = 0; i < in; i++) {
            int s = rep[i] ? nesim_coding_spike(o->coding, rep[i], T, t) : 0;
            if (s)
                o->on_spike(o->spike_user, (uint32_t)i, t0 + t, s);
        }
    *events_out = events;
    return NESIM_OK;
}
