/* conv.c — coded conv2d and pooling (see conv.h). */
#include "sim/conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/loads.h"

int nesim_conv2d_init(nesim_conv2d *L, const char *name, const nesim_tensor *weight,
                      const nesim_tensor *bias, size_t c, size_t h, size_t w, size_t sh, size_t sw,
                      size_t ph, size_t pw, nesim_error *err)
{
    memset(L, 0, sizeof *L);
    L->name = name ? name : "conv2d";
    if (weight->ndim != 4 || (size_t)weight->shape[1] != c)
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: weight must be [out, %zu, kh, kw] for an input of %zu channels", L->name, c, c);
    nesim_dtype dt = weight->dtype;
    if (dt != NESIM_F32 && dt != NESIM_F64 && dt != NESIM_F16 && dt != NESIM_BF16 && dt != NESIM_I8)
        return nesim_fail(err, NESIM_EINVAL, "%s: weight dtype %s (expected f32, f64, f16, bf16 or i8)", L->name,
                          nesim_dtype_name(dt));
    if (weight->fortran)
        return nesim_fail(err, NESIM_EINVAL, "%s: a Fortran-order weight view (make it C order with "
                          "nesim_tensor_to_c_order)", L->name);
    L->c = c, L->h = h, L->w = w, L->sh = sh, L->sw = sw, L->ph = ph, L->pw = pw;
    L->o = (size_t)weight->shape[0], L->kh = (size_t)weight->shape[2], L->kw = (size_t)weight->shape[3];
    if (sh < 1 || sw < 1 || h + 2 * ph < L->kh || w + 2 * pw < L->kw)
        return nesim_fail(err, NESIM_EINVAL, "%s: kernel %zux%zu does not fit input %zux%zu (padding %zu,%zu)",
                          L->name, L->kh, L->kw, h, w, ph, pw);
    L->oh = (h + 2 * ph - L->kh) / sh + 1;
    L->ow = (w + 2 * pw - L->kw) / sw + 1;
    if (bias && (bias->ndim != 1 || (size_t)bias->shape[0] != L->o))
        return nesim_fail(err, NESIM_EINVAL, "%s: bias must have shape [%zu]", L->name, L->o);
    L->k = *weight;
    L->k.map_base = NULL; /* borrowed: the layer never unmaps it */
    L->k.map_len = 0;
    L->b = bias ? malloc(L->o * sizeof *L->b) : NULL;
    if (bias && !L->b)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", L->name);
    for (size_t i = 0; bias && i < L->o; i++)
        L->b[i] = nesim_tensor_get(bias, i);
    return NESIM_OK;
}

void nesim_conv2d_free(nesim_conv2d *L)
{
    free(L->b);
    L->b = NULL;
}

void nesim_conv2d_span(size_t i, size_t pad, size_t k, size_t stride, size_t n_out, size_t *lo, size_t *hi)
{
    /* i + pad = o * stride + kk with 0 <= kk < k */
    size_t top = i + pad;
    *lo = top + 1 > k ? (top - (k - 1) + stride - 1) / stride : 0;
    size_t h = top / stride;
    *hi = h < n_out - 1 ? h : n_out - 1;
}

/* Plays one sample's counts cnt through the kernel (dtype DT folded in). */
static inline __attribute__((always_inline)) void play(const nesim_conv2d *L, const nesim_coded_opts *o,
                                                       const int64_t *cnt, int64_t T, double *acc,
                                                       uint32_t *reached, nesim_coded_stats *s, nesim_dtype dt)
{
    const size_t n = L->c * L->h * L->w, nout = L->o * L->oh * L->ow;
    const unsigned char *kd = L->k.data;
    for (int64_t t = 0; t < T; t++) {
        if (t > 0 && nesim_coding_is_bitwise(o->coding))
            for (size_t j = 0; j < nout; j++)
                acc[j] *= 2;
        int64_t events = 0, ups = 0;
        for (size_t i = 0; i < n; i++) {
            int sp = cnt[i] ? nesim_coding_spike(o->coding, cnt[i], T, t) : 0;
            if (!sp)
                continue;
            events++;
            size_t c = i / (L->h * L->w), iy = (i / L->w) % L->h, ix = i % L->w, y0, y1, x0, x1;
            nesim_conv2d_span(iy, L->ph, L->kh, L->sh, L->oh, &y0, &y1);
            nesim_conv2d_span(ix, L->pw, L->kw, L->sw, L->ow, &x0, &x1);
            for (size_t oy = y0; oy <= y1; oy++) {
                size_t ky = iy + L->ph - oy * L->sh;
                for (size_t ox = x0; ox <= x1; ox++) {
                    size_t kx = ix + L->pw - ox * L->sw;
                    for (size_t oc = 0; oc < L->o; oc++) {
                        size_t j = (oc * L->oh + oy) * L->ow + ox;
                        double wv = nesim_ld(dt, kd, ((oc * L->c + c) * L->kh + ky) * L->kw + kx);
                        acc[j] += sp * wv;
                        if (t > 0 && wv != 0 && reached[j] != (uint32_t)t) {
                            reached[j] = (uint32_t)t;
                            ups++;
                        }
                    }
                    s->sops += (int64_t)L->o;
                }
            }
        }
        s->spikes += events;
        s->updates += t == 0 ? (int64_t)nout : ups;
        if (events) {
            if (s->first_tick < 0)
                s->first_tick = o->t0 + t;
            s->last_tick = o->t0 + t;
        }
        if (o->on_step)
            o->on_step(o->user, o->t0 + t, events);
    }
}

int nesim_conv2d_forward(const nesim_conv2d *L, const nesim_coded_opts *o, const float *x, float *y,
                         nesim_coded_stats *st, nesim_error *err)
{
    size_t n = L->c * L->h * L->w, nout = L->o * L->oh * L->ow;
    int rc = nesim_code_check("conv2d", L->name, o, err);
    if (rc)
        return rc;
    int64_t *cnt = malloc(n * sizeof *cnt);
    double *acc = calloc(nout, sizeof *acc);
    uint32_t *reached = calloc(nout, sizeof *reached);
    if (!cnt || !acc || !reached) {
        free(cnt), free(acc), free(reached);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", L->name);
    }
    nesim_coded_stats s;
    double vth;
    int64_t T, events;
    rc = nesim_code_row("conv2d", L->name, o, x, n, 0, cnt, &vth, &T, &s, err);
    if (!rc)
        rc = nesim_code_emit("conv2d", L->name, o, cnt, n, T, o->t0, 0, &events, err);
    if (!rc) {
        switch (L->k.dtype) {
        case NESIM_F32: play(L, o, cnt, T, acc, reached, &s, NESIM_F32); break;
        case NESIM_F64: play(L, o, cnt, T, acc, reached, &s, NESIM_F64); break;
        case NESIM_F16: play(L, o, cnt, T, acc, reached, &s, NESIM_F16); break;
        case NESIM_BF16: play(L, o, cnt, T, acc, reached, &s, NESIM_BF16); break;
        default: play(L, o, cnt, T, acc, reached, &s, NESIM_I8); break;
        }
        if (s.spikes != events)
            rc = nesim_fail(err, NESIM_EINTERNAL, "%s: played %lld events, the coder counts %lld", L->name,
                            (long long)s.spikes, (long long)events);
    }
    if (!rc) {
        for (size_t j = 0; j < nout; j++)
            y[j] = (float)(vth * acc[j] + (L->b ? L->b[j / (L->oh * L->ow)] : 0.0));
        s.t_end = o->t0 + T;
        nesim_coded_stats_finish(&s);
        if (st)
            *st = s;
    }
    free(cnt);
    free(acc);
    free(reached);
    return rc;
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
                            s += nesim_tensor_get(&L->k, ((oc * L->c + c) * L->kh + ky) * L->kw + kx) *
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
