/* conv.c — coded conv2d and pooling (see conv.h). */
#include "sim/conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nesim_conv2d_init(nesim_conv2d *L, const char *name, const nesim_tensor *weight,
                      const nesim_tensor *bias, size_t c, size_t h, size_t w, size_t sh, size_t sw,
                      size_t ph, size_t pw, nesim_error *err)
{
    memset(L, 0, sizeof *L);
    L->name = name ? name : "conv2d";
    if (weight->ndim != 4 || (size_t)weight->shape[1] != c)
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: weight must be [out, %zu, kh, kw] for an input of %zu channels", L->name, c, c);
    L->c = c, L->h = h, L->w = w, L->sh = sh, L->sw = sw, L->ph = ph, L->pw = pw;
    L->o = (size_t)weight->shape[0], L->kh = (size_t)weight->shape[2], L->kw = (size_t)weight->shape[3];
    if (sh < 1 || sw < 1 || h + 2 * ph < L->kh || w + 2 * pw < L->kw)
        return nesim_fail(err, NESIM_EINVAL, "%s: kernel %zux%zu does not fit input %zux%zu (padding %zu,%zu)",
                          L->name, L->kh, L->kw, h, w, ph, pw);
    L->oh = (h + 2 * ph - L->kh) / sh + 1;
    L->ow = (w + 2 * pw - L->kw) / sw + 1;
    if (bias && (bias->ndim != 1 || (size_t)bias->shape[0] != L->o))
        return nesim_fail(err, NESIM_EINVAL, "%s: bias must have shape [%zu]", L->name, L->o);
    L->k = malloc(weight->count * sizeof *L->k);
    L->b = bias ? malloc(L->o * sizeof *L->b) : NULL;
    if (!L->k || (bias && !L->b)) {
        nesim_conv2d_free(L);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", L->name);
    }
    for (size_t i = 0; i < weight->count; i++)
        L->k[i] = nesim_tensor_get(weight, i);
    for (size_t i = 0; bias && i < L->o; i++)
        L->b[i] = nesim_tensor_get(bias, i);
    return NESIM_OK;
}

void nesim_conv2d_free(nesim_conv2d *L)
{
    free(L->k);
    free(L->b);
    L->k = L->b = NULL;
}

static int is_bitwise(nesim_coding c)
{
    return c == NESIM_CODE_BITWISE || c == NESIM_CODE_BITWISE_BIDIR || c == NESIM_CODE_BITWISE_TWOS;
}

int nesim_conv2d_forward(const nesim_conv2d *L, const nesim_coded_opts *o, const float *x, float *y,
                         nesim_coded_stats *st, nesim_error *err)
{
    size_t n = L->c * L->h * L->w, nout = L->o * L->oh * L->ow;
    double vth = o->vth > 0 ? o->vth : nesim_vth_adaptive(x, n, o->k);
    if (!isfinite(vth) || !(vth > 0))
        return nesim_fail(err, NESIM_EINVAL, "%s: input holds NaN or Inf", L->name);
    int64_t *cnt = malloc(n * sizeof *cnt);
    double *acc = calloc(nout, sizeof *acc);
    if (!cnt || !acc) {
        free(cnt);
        free(acc);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", L->name);
    }
    nesim_coded_stats s;
    memset(&s, 0, sizeof s);
    s.samples = 1;
    s.inputs = (int64_t)n;
    s.vth = vth;
    s.first_tick = s.last_tick = -1;
    int64_t M = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t raw;
        if (nesim_spike_count_checked(x[i], vth, &raw, err)) {
            free(cnt);
            free(acc);
            return nesim_context(err, "%s: input %zu: ", L->name, i);
        }
        int64_t a = raw < 0 ? -raw : raw;
        s.hist[a < NESIM_CODED_HIST ? a : NESIM_CODED_HIST]++;
        cnt[i] = nesim_coding_representable(o->coding, raw);
        if (cnt[i] != raw)
            s.clipped++;
        else if (raw == 0)
            s.silent++;
        int64_t p = cnt[i] < 0 ? -cnt[i] : cnt[i];
        M = p > M ? p : M;
    }
    int64_t T = nesim_coding_steps(o->coding, M);
    s.steps = T;
    s.max_count = M;
    for (int64_t t = 0; t < T; t++) {
        if (t > 0 && is_bitwise(o->coding))
            for (size_t j = 0; j < nout; j++)
                acc[j] *= 2;
        int64_t events = 0;
        for (size_t i = 0; i < n; i++) {
            int sp = nesim_coding_spike(o->coding, cnt[i], T, t);
            if (!sp)
                continue;
            events++;
            size_t c = i / (L->h * L->w), iy = (i / L->w) % L->h, ix = i % L->w;
            /* outputs whose window covers (iy, ix): iy + ph = oy*sh + ky */
            for (size_t oy = 0; oy < L->oh; oy++) {
                size_t base = oy * L->sh;
                if (iy + L->ph < base || iy + L->ph - base >= L->kh)
                    continue;
                size_t ky = iy + L->ph - base;
                for (size_t ox = 0; ox < L->ow; ox++) {
                    size_t bx = ox * L->sw;
                    if (ix + L->pw < bx || ix + L->pw - bx >= L->kw)
                        continue;
                    size_t kx = ix + L->pw - bx;
                    for (size_t oc = 0; oc < L->o; oc++)
                        acc[(oc * L->oh + oy) * L->ow + ox] +=
                            sp * L->k[((oc * L->c + c) * L->kh + ky) * L->kw + kx];
                    s.sops += (int64_t)L->o;
                }
            }
        }
        s.spikes += events;
        if (events) {
            if (s.first_tick < 0)
                s.first_tick = o->t0 + t;
            s.last_tick = o->t0 + t;
        }
        if (o->on_step)
            o->on_step(o->user, o->t0 + t, events);
    }
    for (size_t j = 0; j < nout; j++)
        y[j] = (float)(vth * acc[j] + (L->b ? L->b[j / (L->oh * L->ow)] : 0.0));
    s.t_end = o->t0 + T;
    s.frac_small = n ? (double)(n - (size_t)s.hist[NESIM_CODED_HIST]) / (double)n : 0;
    s.spikes_per_channel = n ? (double)s.spikes / (double)n : 0;
    if (st)
        *st = s;
    free(cnt);
    free(acc);
    return NESIM_OK;
}

void nesim_conv2d_dense(const nesim_conv2d *L, const double *x, double *y)
{
    for (size_t oc = 0; oc < L->o; oc++)
        for (size_t oy = 0; oy < L->oh; oy++)
            for (size_t ox = 0; ox < L->ow; ox++) {
                double s = L->b ? L->b[oc] : 0;
                for (size_t c = 0; c < L->c; c++)
                    for (size_t ky = 0; ky < L->kh; ky++)
                        for (size_t kx = 0; kx < L->kw; kx++) {
                            long iy = (long)(oy * L->sh + ky) - (long)L->ph;
                            long ix = (long)(ox * L->sw + kx) - (long)L->pw;
                            if (iy < 0 || ix < 0 || iy >= (long)L->h || ix >= (long)L->w)
                                continue;
                            s += L->k[((oc * L->c + c) * L->kh + ky) * L->kw + kx] *
                                 x[(c * L->h + (size_t)iy) * L->w + (size_t)ix];
                        }
                y[(oc * L->oh + oy) * L->ow + ox] = s;
            }
}

void nesim_pool2d(const float *x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                  size_t sw, int avg, float *y)
{
    size_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;
    for (size_t ch = 0; ch < c; ch++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                double s = 0;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++)
                        s += x[(ch * h + oy * sh + ky) * w + ox * sw + kx];
                y[(ch * oh + oy) * ow + ox] = (float)(avg ? s / (double)(kh * kw) : s);
            }
}
