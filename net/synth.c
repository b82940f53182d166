/* synth.c — synthetic tensors (see synth.h). */
#include "net/synth.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

static double draw(const nesim_spec_tensor *st, gsl_rng *r)
{
    switch (st->dist) {
    case NESIM_SYNTH_NORMAL: return st->a + gsl_ran_gaussian_ziggurat(r, st->b);
    case NESIM_SYNTH_UNIFORM: return st->a + (st->b - st->a) * gsl_rng_uniform(r);
    default: return st->a;
    }
}

int nesim_synth_generate(const nesim_spec_tensor *st, const char *what, nesim_tensor *t, void **buf,
                         nesim_tensor *scales, void **scales_buf, nesim_error *err)
{
    memset(t, 0, sizeof *t);
    memset(scales, 0, sizeof *scales);
    *buf = *scales_buf = NULL;
    if (st->kind != NESIM_TSRC_SYNTHETIC || st->ndim < 1 || st->ndim > 8)
        return nesim_fail(err, NESIM_EINVAL, "%s: not a synthetic tensor", what);
    size_t count = 1;
    for (int i = 0; i < st->ndim; i++) {
        if (st->shape[i] < 1 || count > ((size_t)1 << 40) / (size_t)st->shape[i])
            return nesim_fail(err, NESIM_EINVAL, "%s: bad synthetic shape", what);
        count *= (size_t)st->shape[i];
        t->shape[i] = st->shape[i];
    }
    t->ndim = st->ndim;
    t->count = count;
    size_t last = (size_t)st->shape[st->ndim - 1], rows = count / last;
    size_t group = st->group > 0 ? (size_t)st->group : last;
    int q8 = st->quantize == NESIM_QUANT_INT8;
    if (q8 && last % group)
        return nesim_fail(err, NESIM_EINVAL, "%s: group %zu does not divide %zu", what, group, last);
    gsl_rng *r = nesim_rng_new(st->seed, 0);
    *buf = malloc(count * (q8 ? 1 : sizeof(float)));
    float *sc = q8 ? malloc(rows * (last / group) * sizeof(float)) : NULL;
    double *tmp = q8 ? malloc(group * sizeof(double)) : NULL;
    if (!r || !*buf || (q8 && (!sc || !tmp))) {
        if (r)
            gsl_rng_free(r);
        free(*buf);
        free(sc);
        free(tmp);
        *buf = NULL;
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory for %zu synthetic values", what, count);
    }
    if (!q8) {
        float *f = *buf;
        for (size_t i = 0; i < count; i++)
            f[i] = (float)draw(st, r);
        t->dtype = NESIM_F32;
    } else {
        int8_t *q = *buf;
        for (size_t g = 0; g < count / group; g++) {
            double mx = 0;
            for (size_t j = 0; j < group; j++) {
                tmp[j] = draw(st, r);
                mx = fmax(mx, fabs(tmp[j]));
            }
            float s = mx > 0 ? (float)(mx / 127.0) : 1.0f;
            sc[g] = s;
            for (size_t j = 0; j < group; j++) {
                double v = nearbyint(tmp[j] / s);
                q[g * group + j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
        t->dtype = NESIM_I8;
        scales->dtype = NESIM_F32;
        scales->ndim = 2;
        scales->shape[0] = (int64_t)rows;
        scales->shape[1] = (int64_t)(last / group);
        scales->count = rows * (last / group);
        scales->nbytes = scales->count * sizeof(float);
        scales->data = sc;
        *scales_buf = sc;
    }
    t->nbytes = count * nesim_dtype_size(t->dtype);
    t->data = *buf;
    free(tmp);
    gsl_rng_free(r);
    return NESIM_OK;
}
