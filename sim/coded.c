/* coded.c — event-driven coded linear layer: validation, spike coding of a
 * sample, the event plan, counters, and the dense GSL reference.
 * (Guarantees in coded.h; the hot loops are in coded_kernels.c.)
 *
 * Per sample: counts come from neurons/coder (the same threshold, rounding,
 * clipping and step rules as everywhere else in nesim); the spike train of
 * every input is laid out as an event plan (coded_internal.h); the kernels
 * then stream each weight row once and add the gathered weights of every
 * event. Counters are computed from the integer counts, independently of the
 * floating-point work. */
#include "sim/coded.h"

#include <gsl/gsl_blas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/coded_internal.h"

static const char *lname(const nesim_coded_linear *L)
{
    return L && L->name ? L->name : "linear";
}

static int64_t mag64(int64_t n) { return n < 0 ? -n : n; } /* |n| <= 2^53 here */

/* ---- layer ---- */

static int float_dtype(nesim_dtype d)
{
    return d == NESIM_F32 || d == NESIM_F64 || d == NESIM_F16 || d == NESIM_BF16;
}

static int view_ok(const nesim_tensor *t)
{
    size_t sz = nesim_dtype_size(t->dtype);
    return sz && t->data && t->count && t->nbytes / sz == t->count && t->nbytes % sz == 0;
}

static nesim_tensor borrowed(const nesim_tensor *t)
{
    nesim_tensor v = *t;
    v.map_base = NULL; /* the layer never owns, so never unmaps, the data */
    v.map_len = 0;
    return v;
}

int nesim_coded_linear_init(nesim_coded_linear *L, const char *name, const nesim_tensor *weight,
                            const nesim_tensor *scales, size_t group, const nesim_tensor *bias,
                            size_t expect_in, size_t expect_out, nesim_error *err)
{
    const char *nm = name ? name : "linear";
    if (!L || !weight)
        return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': no %s", nm,
                          L ? "weight tensor" : "layer");
    memset(L, 0, sizeof *L);
    L->name = nm;
    if (weight->ndim != 2)
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': weight must be 2-D [out, in], got %d dimensions", nm,
                          weight->ndim);
    int64_t out = weight->shape[0], in = weight->shape[1];
    if (out < 1 || in < 1 || in >= (INT64_C(1) << 32))
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': weight shape [%lld, %lld] (need out >= 1 and "
                          "1 <= in < 2^32)",
                          nm, (long long)out, (long long)in);
    if ((expect_in && (size_t)in != expect_in) || (expect_out && (size_t)out != expect_out))
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': weight shape [%lld, %lld] does not match the "
                          "layer's [out %zu, in %zu]",
                          nm, (long long)out, (long long)in, expect_out, expect_in);
    if (!float_dtype(weight->dtype) && weight->dtype != NESIM_I8)
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': weight dtype %s (expected f32, f64, f16, bf16 or i8)",
                          nm, nesim_dtype_name(weight->dtype));
    if (!view_ok(weight) || weight->count != (size_t)out * (size_t)in)
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': weight view holds %zu elements, shape [%lld, %lld] "
                          "needs %zu",
                          nm, weight->count, (long long)out, (long long)in,
                          (size_t)out * (size_t)in);
    L->weight = borrowed(weight);
    L->in = (size_t)in;
    L->out = (size_t)out;
    L->group = (size_t)in;

    if (scales) {
        if (weight->dtype != NESIM_I8)
            return nesim_fail(err, NESIM_EINVAL,
                              "coded linear '%s': group scales given for %s weights (only i8 "
                              "weights are scaled)",
                              nm, nesim_dtype_name(weight->dtype));
        if (group < 1 || (size_t)in % group != 0)
            return nesim_fail(err, NESIM_EINVAL,
                              "coded linear '%s': scale group %zu does not divide in = %lld", nm,
                              group, (long long)in);
        size_t ng = (size_t)in / group;
        if (scales->dtype != NESIM_F32)
            return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': scales dtype %s (expected f32)",
                              nm, nesim_dtype_name(scales->dtype));
        if (scales->ndim != 2 || scales->shape[0] != out || scales->shape[1] != (int64_t)ng ||
            !view_ok(scales) || scales->count != (size_t)out * ng)
            return nesim_fail(err, NESIM_EINVAL,
                              "coded linear '%s': scales must have shape [%lld, %zu] (out, in / "
                              "group %zu), got %d-D [%lld, %lld]",
                              nm, (long long)out, ng, group, scales->ndim,
                              (long long)scales->shape[0],
                              scales->ndim > 1 ? (long long)scales->shape[1] : -1LL);
        L->scales = borrowed(scales);
        L->has_scales = 1;
        L->group = group;
    }
    if (bias) {
        if (bias->ndim != 1 || bias->shape[0] != out || !view_ok(bias) ||
            bias->count != (size_t)out)
            return nesim_fail(err, NESIM_EINVAL,
                              "coded linear '%s': bias must have shape [%lld], got %d-D [%lld]", nm,
                              (long long)out, bias->ndim, bias->ndim ? (long long)bias->shape[0] : -1LL);
        L->bias = borrowed(bias);
        L->has_bias = 1;
    }
    return NESIM_OK;
}

void nesim_coded_opts_init(nesim_coded_opts *o)
{
    memset(o, 0, sizeof *o);
    o->coding = NESIM_CODE_BITWISE_BIDIR;
    o->k = 3.0;
}

static int check_opts(const nesim_coded_linear *L, const nesim_coded_opts *o, nesim_error *err)
{
    if (!o)
        return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': no options", lname(L));
    if (nesim_coding_steps(o->coding, 0) < 0)
        return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': invalid coding %d", lname(L),
                          (int)o->coding);
    if (!(o->vth >= 0) || isinf(o->vth))
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': fixed threshold %g is not positive and finite "
                          "(0 selects the adaptive threshold)",
                          lname(L), o->vth);
    if (o->vth == 0 && (!(o->k > 0) || isinf(o->k)))
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': threshold divisor k = %g is not positive and finite",
                          lname(L), o->k);
    if (o->t0 < 0)
        return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': t0 = %lld is negative", lname(L),
                          (long long)o->t0);
    if (o->step_events_len && !o->step_events)
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': step_events_len %zu without a step_events array",
                          lname(L), o->step_events_len);
    return NESIM_OK;
}

/* ---- coding one sample ---- */

/* Threshold and played counts of one row, with the raw-count counters
 * (clipped, silent, histogram, max count) written into *st. */
static int count_row(const char *nm, const nesim_coded_opts *o, const float *x, size_t in,
                     size_t sample, int64_t *rep, double *vth_out, nesim_coded_stats *st,
                     nesim_error *err)
{
    /* Find a non-finite activation first: with the adaptive threshold it would
     * poison V_th and the count check would then blame the wrong input. */
    for (size_t i = 0; i < in; i++)
        if (!isfinite(x[i]))
            return nesim_fail(err, NESIM_EINVAL,
                              "coded linear '%s': sample %zu, input %zu: activation %g is not "
                              "finite",
                              nm, sample, i, (double)x[i]);
    double vth = o->vth > 0 ? o->vth : nesim_vth_adaptive(x, in, o->k);
    int64_t M = 0;
    for (size_t i = 0; i < in; i++) {
        int64_t n;
        if (nesim_spike_count_checked(x[i], vth, &n, err) != NESIM_OK)
            return nesim_context(err, "coded linear '%s': sample %zu, input %zu: ", nm, sample, i);
        int64_t r = nesim_coding_representable(o->coding, n);
        rep[i] = r;
        int64_t a = mag64(n);
        st->hist[a < NESIM_CODED_HIST ? a : NESIM_CODED_HIST]++;
        st->silent += n == 0;
        st->clipped += r != n;
        if (mag64(r) > M)
            M = mag64(r);
    }
    st->max_count = M;
    *vth_out = vth;
    return NESIM_OK;
}

typedef struct work {
    size_t in;
    int64_t *rep;      /* played counts [in] */
    uint32_t *nz;      /* inputs with a nonzero played count, ascending [in] */
    uint32_t *negtmp;  /* -1 events of the chunk being laid out [in] */
    int64_t *mags;     /* sorted |played N| (binary/ternary step counts) [in] */
    uint32_t *idx;     /* events */
    size_t idx_cap;
    nesim_coded_seg *seg;
    size_t seg_cap, nseg;
    int64_t *step_ev;  /* bitwise: events per step [T] */
    double *bias;      /* [out] or NULL */
} work;

static void work_free(work *w)
{
    free(w->rep);
    free(w->nz);
    free(w->negtmp);
    free(w->mags);
    free(w->idx);
    free(w->seg);
    free(w->step_ev);
    free(w->bias);
    memset(w, 0, sizeof *w);
}

static int work_init(work *w, const nesim_coded_linear *L, nesim_error *err)
{
    memset(w, 0, sizeof *w);
    size_t in = L->in;
    w->in = in;
    w->rep = malloc(in * sizeof *w->rep);
    w->nz = malloc(in * sizeof *w->nz);
    w->negtmp = malloc(in * sizeof *w->negtmp);
    w->mags = malloc(in * sizeof *w->mags);
    if (L->has_bias)
        w->bias = malloc(L->out * sizeof *w->bias);
    if (!w->rep || !w->nz || !w->negtmp || !w->mags || (L->has_bias && !w->bias)) {
        work_free(w);
        return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory (in = %zu)",
                          lname(L), in);
    }
    if (L->has_bias)
        for (size_t o = 0; o < L->out; o++)
            w->bias[o] = nesim_tensor_get(&L->bias, o);
    return NESIM_OK;
}

/* p grown to hold at least n (>= 1) elements of size sz — p itself if it
 * already does — or NULL, p untouched, when memory runs out. */
static void *grow(void *p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return p;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c = c > SIZE_MAX / 2 ? n : c * 2;
    if (c > SIZE_MAX / sz)
        return NULL;
    void *q = realloc(p, c * sz);
    if (q)
        *cap = c;
    return q;
}

/* Appends events idx[begin .. end), of which the first npos are +1, as
 * segments of group g and step weight wt holding at most cap events each. */
static int add_segments(work *w, uint32_t g, double wt, size_t begin, size_t npos, size_t end,
                        size_t cap)
{
    for (size_t a = begin; a < end; a += cap) {
        size_t b = end - a > cap ? a + cap : end;
        nesim_coded_seg *sp = grow(w->seg, &w->seg_cap, w->nseg + 1, sizeof *sp);
        if (!sp)
            return -1;
        w->seg = sp;
        size_t pos_end = begin + npos;
        size_t np = pos_end > a ? (pos_end < b ? pos_end : b) - a : 0;
        w->seg[w->nseg++] = (nesim_coded_seg){
            .wt = wt, .g = g, .np = (uint32_t)np, .nn = (uint32_t)(b - a - np), .off = a};
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int is_bitwise(nesim_coding c)
{
    return c == NESIM_CODE_BITWISE || c == NESIM_CODE_BITWISE_BIDIR || c == NESIM_CODE_BITWISE_TWOS;
}

/* Lays out the events of the played counts w->rep (T steps, `events` in
 * all) as a plan: chunk by chunk (a scale group for int8), step by step
 * within a chunk; binary/ternary steps all weigh 1 and share one segment
 * list per chunk, an input repeating once per spike. Bitwise codings also
 * get their events per step in w->step_ev. */
static int build_plan(const nesim_coded_linear *L, nesim_coding c, int64_t T, size_t events,
                      work *w, nesim_coded_plan *p, nesim_error *err)
{
    const size_t in = L->in;
    const int is_int = L->weight.dtype == NESIM_I8, bw = is_bitwise(c);
    size_t chunk = is_int ? NESIM_CODED_CHUNK_INT : NESIM_CODED_CHUNK_FLOAT;
    if (L->has_scales)
        chunk = L->group;
    if (chunk > in)
        chunk = in;
    const size_t cap = is_int ? NESIM_CODED_SEG_INT : NESIM_CODED_SEG_FLOAT;
    const int64_t nsteps = bw ? T : 1;
    size_t nnz = 0;
    for (size_t i = 0; i < in; i++)
        if (w->rep[i])
            w->nz[nnz++] = (uint32_t)i;
    uint32_t *ix = grow(w->idx, &w->idx_cap, events ? events : 1, sizeof *ix);
    if (!ix)
        return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory for %zu events",
                          lname(L), events);
    w->idx = ix;
    if (bw) { /* T <= NESIM_CODING_BITS_MAX */
        int64_t *se = realloc(w->step_ev, (size_t)T * sizeof *se);
        if (!se)
            return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory", lname(L));
        w->step_ev = se;
        memset(se, 0, (size_t)T * sizeof *se);
    }
    w->nseg = 0;
    size_t n = 0; /* events laid out so far */
    size_t k0 = 0; /* first entry of nz in the current chunk */
    for (size_t c0 = 0; c0 < in && k0 < nnz; c0 += chunk) {
        const size_t c1 = c0 + chunk;
        size_t k1 = k0;
        while (k1 < nnz && w->nz[k1] < c1)
            k1++;
        for (int64_t t = 0; t < nsteps && k1 > k0; t++) {
            size_t begin = n, nneg = 0;
            for (size_t k = k0; k < k1; k++) {
                uint32_t i = w->nz[k];
                int64_t r = w->rep[i];
                if (bw) {
                    int s = nesim_coding_spike(c, r, T, t);
                    if (s > 0)
                        w->idx[n++] = i;
                    else if (s < 0)
                        w->negtmp[nneg++] = i;
                } else if (nesim_coding_spike(c, r, T, 0) > 0) {
                    for (int64_t m = nesim_coding_spikes(c, r, T); m > 0; m--)
                        w->idx[n++] = i;
                } else {
                    w->negtmp[nneg++] = i;
                }
            }
            const size_t npos = n - begin;
            for (size_t m = 0; m < nneg; m++) {
                uint32_t i = w->negtmp[m];
                for (int64_t q = bw ? 1 : nesim_coding_spikes(c, w->rep[i], T); q > 0; q--)
                    w->idx[n++] = i;
            }
            if (bw)
                w->step_ev[t] += (int64_t)(n - begin);
            double wt = bw ? nesim_coding_step_weight(c, T, t) : 1.0;
            if (add_segments(w, (uint32_t)(c0 / chunk), wt, begin, npos, n, cap))
                return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory", lname(L));
        }
        k0 = k1;
    }
    if (n != events)
        return nesim_fail(err, NESIM_EINTERNAL,
                          "coded linear '%s': laid out %zu events, the coder counts %zu", lname(L),
                          n, events);
    p->idx = w->idx;
    p->seg = w->seg;
    p->nseg = w->nseg;
    return NESIM_OK;
}

/* Events at step t of a binary/ternary train: the inputs with |played N| > t. */
static void report_steps(const nesim_coded_opts *o, const work *w, nesim_coding c, int64_t T,
                         size_t nmags, int64_t tick0)
{
    size_t k = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t ev;
        if (is_bitwise(c)) {
            ev = w->step_ev[t];
        } else {
            while (k < nmags && w->mags[k] <= t)
                k++;
            ev = (int64_t)(nmags - k);
        }
        int64_t tick = tick0 + t;
        if ((uint64_t)(tick - o->t0) < o->step_events_len)
            o->step_events[tick - o->t0] = ev;
        if (o->on_step)
            o->on_step(o->user, tick, ev);
    }
}

/* Codes and plays one sample starting at tick0; fills *st (zeroed here). */
static int run_sample(const nesim_coded_linear *L, const nesim_coded_opts *o, const float *x,
                      float *y, size_t sample, int64_t tick0, work *w, nesim_coded_stats *st,
                      nesim_error *err)
{
    memset(st, 0, sizeof *st);
    const nesim_coding c = o->coding;
    const char *nm = lname(L);
    double vth;
    int rc = count_row(nm, o, x, L->in, sample, w->rep, &vth, st, err);
    if (rc)
        return rc;
    int64_t T = nesim_coding_steps(c, st->max_count);
    if (T < 0 || (is_bitwise(c) && T > NESIM_CODING_BITS_MAX))
        return nesim_fail(err, NESIM_EINTERNAL, "coded linear '%s': no step count for max count %lld",
                          nm, (long long)st->max_count);
    if (T > INT64_MAX - tick0)
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': sample %zu: virtual time overflows (%lld steps "
                          "from tick %lld)",
                          nm, sample, (long long)T, (long long)tick0);
    int64_t events = 0;
    size_t nmags = 0;
    for (size_t i = 0; i < L->in; i++) {
        int64_t r = w->rep[i];
        if (!r)
            continue;
        if (__builtin_add_overflow(events, nesim_coding_spikes(c, r, T), &events))
            return nesim_fail(err, NESIM_EINVAL,
                              "coded linear '%s': sample %zu: the spike count overflows", nm, sample);
        w->mags[nmags++] = mag64(r);
    }
    int64_t sops;
    if ((uint64_t)events > SIZE_MAX / sizeof(uint32_t) ||
        __builtin_mul_overflow(events, (int64_t)L->out, &sops))
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': sample %zu: %lld events are too many to play", nm,
                          sample, (long long)events);
    nesim_coded_plan plan;
    rc = build_plan(L, c, T, (size_t)events, w, &plan, err);
    if (rc)
        return rc;
    nesim_coded_rows(L, &plan, vth, w->bias, y);

    st->samples = 1;
    st->inputs = (int64_t)L->in;
    st->spikes = events;
    st->sops = sops;
    st->steps = T;
    st->vth = vth;
    int64_t small = 0;
    for (int b = 0; b < NESIM_CODED_HIST; b++)
        small += st->hist[b];
    st->frac_small = (double)small / (double)L->in;
    st->spikes_per_channel = (double)events / (double)L->in;
    st->first_tick = st->last_tick = -1;
    if (events > 0) {
        if (is_bitwise(c)) {
            int64_t f = -1, l = -1;
            for (int64_t t = 0; t < T; t++)
                if (w->step_ev[t]) {
                    if (f < 0)
                        f = t;
                    l = t;
                }
            st->first_tick = tick0 + f;
            st->last_tick = tick0 + l;
        } else { /* every one of the M steps carries the inputs with |N| = M */
            st->first_tick = tick0;
            st->last_tick = tick0 + T - 1;
        }
    }
    st->t_end = tick0 + T;
    if (o->on_step || o->step_events_len) {
        if (!is_bitwise(c))
            qsort(w->mags, nmags, sizeof *w->mags, cmp_i64);
        report_steps(o, w, c, T, nmags, tick0);
    }
    return NESIM_OK;
}

static void add_stats(nesim_coded_stats *t, const nesim_coded_stats *s)
{
    t->samples += s->samples;
    t->inputs += s->inputs;
    t->spikes += s->spikes;
    t->sops += s->sops;
    t->steps += s->steps;
    t->vth += s->vth; /* divided by samples at the end */
    if (s->max_count > t->max_count)
        t->max_count = s->max_count;
    t->clipped += s->clipped;
    t->silent += s->silent;
    for (int b = 0; b <= NESIM_CODED_HIST; b++)
        t->hist[b] += s->hist[b];
    if (s->first_tick >= 0 && t->first_tick < 0)
        t->first_tick = s->first_tick;
    if (s->last_tick >= 0)
        t->last_tick = s->last_tick;
    t->t_end = s->t_end;
}

int nesim_coded_linear_batch(const nesim_coded_linear *L, const nesim_coded_opts *o,
                             const float *x, size_t samples, float *y, nesim_coded_stats *total,
                             nesim_coded_stats *per_sample, nesim_error *err)
{
    if (!L || !L->weight.data)
        return nesim_fail(err, NESIM_EINVAL, "coded linear: layer not initialised");
    int rc = check_opts(L, o, err);
    if (rc)
        return rc;
    if (samples && (!x || !y))
        return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': no input or output buffer",
                          lname(L));
    nesim_coded_stats tot;
    memset(&tot, 0, sizeof tot);
    tot.first_tick = tot.last_tick = -1;
    tot.t_end = o->t0;
    work w;
    if ((rc = work_init(&w, L, err)))
        return rc;
    int64_t tick = o->t0;
    for (size_t s = 0; s < samples; s++) {
        nesim_coded_stats one;
        rc = run_sample(L, o, x + s * L->in, y + s * L->out, s, tick, &w, &one, err);
        if (rc)
            break;
        tick = one.t_end;
        add_stats(&tot, &one);
        if (per_sample)
            per_sample[s] = one;
    }
    work_free(&w);
    if (rc)
        return rc;
    if (tot.samples) {
        tot.vth /= (double)tot.samples;
        int64_t small = 0;
        for (int b = 0; b < NESIM_CODED_HIST; b++)
            small += tot.hist[b];
        tot.frac_small = (double)small / (double)tot.inputs;
        tot.spikes_per_channel = (double)tot.spikes / (double)tot.inputs;
    }
    if (total)
        *total = tot;
    return NESIM_OK;
}

int nesim_coded_linear_forward(const nesim_coded_linear *L, const nesim_coded_opts *o,
                               const float *x, float *y, nesim_coded_stats *st, nesim_error *err)
{
    return nesim_coded_linear_batch(L, o, x, 1, y, st, NULL, err);
}

int nesim_coded_dense_input(const nesim_coded_opts *o, const float *x, size_t in, double *u,
                            double *vth, nesim_error *err)
{
    int rc = check_opts(NULL, o, err);
    if (rc)
        return rc;
    int64_t *rep = malloc((in ? in : 1) * sizeof *rep);
    if (!rep)
        return nesim_fail(err, NESIM_ENOMEM, "coded input: out of memory (in = %zu)", in);
    nesim_coded_stats st;
    memset(&st, 0, sizeof st);
    double v;
    rc = count_row("linear", o, x, in, 0, rep, &v, &st, err);
    if (!rc) {
        for (size_t i = 0; i < in; i++)
            u[i] = (double)rep[i] * v; /* exact: |rep| <= 2^53 */
        if (vth)
            *vth = v;
    }
    free(rep);
    return rc;
}

/* ---- dense reference ---- */

static double weight_at(const nesim_coded_linear *L, size_t o, size_t i)
{
    double w = nesim_tensor_get(&L->weight, o * L->in + i);
    if (L->has_scales)
        w *= nesim_tensor_get(&L->scales, o * (L->in / L->group) + i / L->group);
    return w;
}

int nesim_linear_dense_ref(const nesim_coded_linear *L, const double *u, double *y,
                           nesim_dense_precision prec, nesim_error *err)
{
    if (!L || !L->weight.data || !u || !y)
        return nesim_fail(err, NESIM_EINVAL, "dense reference: missing layer or vectors");
    const size_t in = L->in, out = L->out;
    int status;
    if (prec == NESIM_DENSE_F64) {
        double *A = malloc(in * out * sizeof *A); /* init bounded in*out by the view */
        if (!A)
            return nesim_fail(err, NESIM_ENOMEM, "dense reference '%s': no memory for %zu x %zu",
                              lname(L), out, in);
        for (size_t o = 0; o < out; o++)
            for (size_t i = 0; i < in; i++)
                A[o * in + i] = weight_at(L, o, i);
        for (size_t o = 0; o < out; o++)
            y[o] = L->has_bias ? nesim_tensor_get(&L->bias, o) : 0.0;
        gsl_matrix_const_view Av = gsl_matrix_const_view_array(A, out, in);
        gsl_vector_const_view uv = gsl_vector_const_view_array(u, in);
        gsl_vector_view yv = gsl_vector_view_array(y, out);
        status = gsl_blas_dgemv(CblasNoTrans, 1.0, &Av.matrix, &uv.vector, 1.0, &yv.vector);
        free(A);
    } else if (prec == NESIM_DENSE_F32) {
        const int in_place = L->weight.dtype == NESIM_F32 && nesim_tensor_is_aligned(&L->weight);
        float *A = NULL, *uf = malloc(in * sizeof *uf), *yf = malloc(out * sizeof *yf);
        if (!in_place)
            A = malloc(in * out * sizeof *A);
        if (!uf || !yf || (!in_place && !A)) {
            free(A);
            free(uf);
            free(yf);
            return nesim_fail(err, NESIM_ENOMEM, "dense reference '%s': out of memory", lname(L));
        }
        if (!in_place)
            for (size_t o = 0; o < out; o++)
                for (size_t i = 0; i < in; i++)
                    A[o * in + i] = (float)weight_at(L, o, i);
        for (size_t i = 0; i < in; i++)
            uf[i] = (float)u[i];
        gsl_matrix_float_const_view Av = gsl_matrix_float_const_view_array(
            in_place ? (const float *)L->weight.data : A, out, in);
        gsl_vector_float_const_view uv = gsl_vector_float_const_view_array(uf, in);
        gsl_vector_float_view yv = gsl_vector_float_view_array(yf, out);
        status = gsl_blas_sgemv(CblasNoTrans, 1.0f, &Av.matrix, &uv.vector, 0.0f, &yv.vector);
        for (size_t o = 0; o < out; o++)
            y[o] = (double)yf[o] + (L->has_bias ? nesim_tensor_get(&L->bias, o) : 0.0);
        free(A);
        free(uf);
        free(yf);
    } else {
        return nesim_fail(err, NESIM_EINVAL, "dense reference '%s': unknown precision %d",
                          lname(L), (int)prec);
    }
    if (status)
        return nesim_fail(err, NESIM_EINTERNAL, "dense reference '%s': GSL BLAS error %d",
                          lname(L), status);
    return NESIM_OK;
}
