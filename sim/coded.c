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

#include "base/par.h"
#include "sim/coded_internal.h"
#include "sim/loads.h"

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
    if (weight->fortran || (scales && scales->fortran))
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': a Fortran-order view (rows are read in place: make it C order "
                          "with nesim_tensor_to_c_order)",
                          nm);
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

static int check_opts(const nesim_coded_linear *L, const nesim_coded_opts *o, nesim_error *err)
{
    return nesim_code_check("coded linear", lname(L), o, err);
}

/* ---- the event plan ---- */

static void work_free(nesim_coded_work *w)
{
    free(w->rep);
    free(w->nz);
    free(w->negtmp);
    free(w->mags);
    free(w->idx);
    free(w->seg);
    free(w->step_ev);
    free(w->bias);
    free(w->hit);
    memset(w, 0, sizeof *w);
}

void nesim_coded_work_free(nesim_coded_work *w) { work_free(w); }

int nesim_coded_work_init(nesim_coded_work *w, const nesim_coded_linear *L, nesim_error *err)
{
    memset(w, 0, sizeof *w);
    size_t in = L->in;
    w->in = in;
    w->rep = malloc(in * sizeof *w->rep);
    w->nz = malloc(in * sizeof *w->nz);
    w->negtmp = malloc(in * sizeof *w->negtmp);
    w->mags = malloc(in * sizeof *w->mags);
    w->hit = malloc(in * sizeof *w->hit);
    if (L->has_bias)
        w->bias = malloc(L->out * sizeof *w->bias);
    if (!w->rep || !w->nz || !w->negtmp || !w->mags || !w->hit || (L->has_bias && !w->bias)) {
        work_free(w);
        return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory (in = %zu)", lname(L), in);
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
static int add_segments(nesim_coded_work *w, uint32_t g, double wt, size_t begin, size_t npos, size_t end,
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

/* Lays out the events of the played counts w->rep (T steps, `events` in
 * all) as a plan: chunk by chunk (a scale group for int8), step by step
 * within a chunk; binary/ternary steps all weigh 1 and share one segment
 * list per chunk, an input repeating once per spike. Bitwise codings also
 * get their events per step in w->step_ev. */
static int build_plan(const nesim_coded_linear *L, nesim_coding c, int64_t T, size_t events,
                      nesim_coded_work *w, nesim_coded_plan *p, nesim_error *err)
{
    const size_t in = L->in;
    const int is_int = L->weight.dtype == NESIM_I8, bw = nesim_coding_is_bitwise(c);
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
    w->nnz = nnz;
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

int nesim_coded_play(const nesim_coded_linear *L, nesim_coded_work *w, nesim_coding c, int64_t T, size_t events,
                     double vth, float *y, nesim_error *err)
{
    nesim_coded_plan plan;
    int rc = build_plan(L, c, T, events, w, &plan, err);
    if (rc)
        return rc;
    return nesim_coded_rows(L, NULL, &plan, 1, &vth, w->bias, y, 1, NULL, err);
}

/* Events at step t of a binary/ternary train: the inputs with |played N| > t. */
static void report_steps(const nesim_coded_opts *o, const nesim_coded_work *w, nesim_coding c, int64_t T,
                         size_t nmags, int64_t tick0)
{
    size_t k = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t ev;
        if (nesim_coding_is_bitwise(c)) {
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

/* A stored weight is nonzero: any bit set but a float's sign (-0 is zero). */
static inline int is_nonzero(const unsigned char *e, size_t esz, int fl)
{
    switch (esz) {
    case 1: return e[0] != 0;
    case 2: { uint16_t v; memcpy(&v, e, 2); return (fl ? v & 0x7fffu : v) != 0; }
    case 4: { uint32_t v; memcpy(&v, e, 4); return (fl ? v & 0x7fffffffu : v) != 0; }
    default: { uint64_t v; memcpy(&v, e, 8); return (fl ? v & 0x7fffffffffffffffull : v) != 0; }
    }
}

int64_t nesim_coded_reached(const nesim_coded_linear *L, const uint32_t *hit, size_t nh)
{
    return nesim_coded_reached_rows(L, hit, nh, 0, L->out);
}

int64_t nesim_coded_reached_rows(const nesim_coded_linear *L, const uint32_t *hit, size_t nh, size_t lo, size_t hi)
{
    if (!nh)
        return 0;
    for (size_t k = 0; L->nnz_in && k < nh; k++)
        if (L->nnz_in[hit[k]] == L->out)
            return (int64_t)(hi - lo); /* one event reaches them all */
    const size_t esz = nesim_dtype_size(L->weight.dtype), ng = L->in / L->group;
    const int fl = L->weight.dtype != NESIM_I8;
    const unsigned char *base = L->weight.data;
    int64_t n = 0;
    for (size_t o = lo; o < hi; o++) {
        const unsigned char *row = base + o * L->in * esz;
        for (size_t k = 0; k < nh; k++) {
            const unsigned char *e = row + (size_t)hit[k] * esz;
            int nonzero = is_nonzero(e, esz, fl);
            if (nonzero && L->has_scales) /* F32, checked at init */
                nonzero = ld_f32((const unsigned char *)L->scales.data + 4 * (o * ng + hit[k] / L->group)) != 0;
            if (nonzero) {
                n++;
                break;
            }
        }
    }
    return n;
}

/* NeuroBench's membrane updates of one sample: every output neuron at the
 * first step, then at each later step the neurons that one of the step's
 * events reaches through a nonzero weight. */
static int64_t membrane_updates(const nesim_coded_linear *L, nesim_coded_work *w, nesim_coding c, int64_t T,
                                size_t lo, size_t hi)
{
    int64_t ups = (int64_t)(hi - lo);
    for (int64_t t = 1; t < T; t++) {
        size_t nh = 0;
        for (size_t k = 0; k < w->nnz; k++)
            if (nesim_coding_spike(c, w->rep[w->nz[k]], T, t))
                w->hit[nh++] = w->nz[k];
        ups += nesim_coded_reached_rows(L, w->hit, nh, lo, hi);
    }
    return ups;
}

/* One sample of a batch between its two phases. */
typedef struct sample_job {
    const float *x;
    size_t sample;
    nesim_coded_work *w;
    nesim_coded_plan plan;
    double vth;
    int64_t T, events, first, last; /* first, last: steps with events, from the sample's start (-1: none) */
    size_t nmags;
    nesim_coded_stats st;
    int rc_row, rc_plan;            /* coding the row; laying out and counting (after the row's checks) */
    nesim_error err_row, err_plan;
} sample_job;

/* The part of a sample that depends on nothing but its input (phase one,
 * on any thread): its counts, T and threshold, its events laid out as a
 * plan, its membrane updates, its steps with events. Failures are kept, to
 * be told in sample order by finish_sample. */
static void code_sample(const nesim_coded_linear *L, const nesim_coded_opts *o, sample_job *J)
{
    const nesim_coding c = o->coding;
    const char *nm = lname(L);
    nesim_coded_work *w = J->w;
    J->first = J->last = -1;
    if ((J->rc_row = nesim_code_row("coded linear", nm, o, J->x, L->in, J->sample, w->rep, &J->vth, &J->T, &J->st,
                                    &J->err_row)))
        return;
    const int64_t T = J->T;
    int64_t events = 0, sops;
    for (size_t i = 0; i < L->in; i++)
        if (w->rep[i] && __builtin_add_overflow(events, nesim_coding_spikes(c, w->rep[i], T), &events)) {
            J->rc_plan = nesim_fail(&J->err_plan, NESIM_EINVAL, "coded linear '%s': sample %zu: the spike count overflows",
                                    nm, J->sample);
            return;
        }
    J->events = events;
    size_t nmags = 0;
    for (size_t i = 0; i < L->in; i++)
        if (w->rep[i])
            w->mags[nmags++] = mag64(w->rep[i]);
    J->nmags = nmags;
    if ((uint64_t)events > SIZE_MAX / sizeof(uint32_t) || __builtin_mul_overflow(events, (int64_t)L->out, &sops)) {
        J->rc_plan = nesim_fail(&J->err_plan, NESIM_EINVAL, "coded linear '%s': sample %zu: %lld events are too many to play",
                                nm, J->sample, (long long)events);
        return;
    }
    if ((J->rc_plan = build_plan(L, c, T, (size_t)events, w, &J->plan, &J->err_plan)))
        return;
    J->st.spikes = events;
    J->st.sops = sops;
    /* several ranks: this rank's rows only (the weight's other rows may not
     * be on this rank); batch_run sums them over the ranks */
    size_t lo = 0, hi = L->out;
    nesim_coded_rank_rows(L, o->comm, nesim_comm_rank(o->comm), &lo, &hi);
    J->st.updates = membrane_updates(L, w, c, T, lo, hi);
    nesim_coded_stats_finish(&J->st);
    if (events > 0) {
        if (nesim_coding_is_bitwise(c)) {
            for (int64_t t = 0; t < T; t++)
                if (w->step_ev[t]) {
                    if (J->first < 0)
                        J->first = t;
                    J->last = t;
                }
        } else { /* every one of the M steps carries the inputs with |N| = M */
            J->first = 0;
            J->last = T - 1;
        }
    }
    if ((o->on_step || o->step_events_len) && !nesim_coding_is_bitwise(c))
        qsort(w->mags, nmags, sizeof *w->mags, cmp_i64);
}

/* The part that places a sample in virtual time from tick0 and tells the
 * observers (phase two, in sample order on the calling thread): its
 * failures first, in the order one sample alone meets them. */
static int finish_sample(const nesim_coded_linear *L, const nesim_coded_opts *o, sample_job *J, int64_t tick0,
                         nesim_error *err)
{
    const char *nm = lname(L);
    if (J->rc_row)
        return *err = J->err_row, J->rc_row;
    if (J->T > INT64_MAX - tick0)
        return nesim_fail(err, NESIM_EINVAL,
                          "coded linear '%s': sample %zu: virtual time overflows (%lld steps "
                          "from tick %lld)",
                          nm, J->sample, (long long)J->T, (long long)tick0);
    int64_t events;
    int rc = nesim_code_emit("coded linear", nm, o, J->w->rep, L->in, J->T, tick0, J->sample, &events, err);
    if (rc)
        return rc;
    if (J->rc_plan)
        return *err = J->err_plan, J->rc_plan;
    if (events != J->events)
        return nesim_fail(err, NESIM_EINTERNAL, "coded linear '%s': sample %zu: emitted %lld events, laid out %lld", nm,
                          J->sample, (long long)events, (long long)J->events);
    if (J->first >= 0) {
        J->st.first_tick = tick0 + J->first;
        J->st.last_tick = tick0 + J->last;
    }
    J->st.t_end = tick0 + J->T;
    if (o->on_step || o->step_events_len)
        report_steps(o, J->w, o->coding, J->T, J->nmags, tick0);
    return NESIM_OK;
}

typedef struct code_batch {
    const nesim_coded_linear *L;
    const nesim_coded_opts *o;
    sample_job *jobs;
    size_t m;
} code_batch;

/* Thread k of n codes samples k, k + n, ...: which thread codes a sample
 * changes nothing in it. */
static void code_part(void *ctx, int k, int n)
{
    const code_batch *B = ctx;
    for (size_t j = (size_t)k; j < B->m; j += (size_t)n)
        code_sample(B->L, B->o, &B->jobs[j]);
}

/* The batch loop. counts (may be NULL) receives each sample's played
 * counts; with `apart` every sample is coded from tick o->t0 (its place in
 * virtual time is the caller's) instead of where the previous one ended.
 * A batch's samples are coded on every thread, then placed in time and told
 * to the observers in order, then played together through the weight. */
static int batch_run(const nesim_coded_linear *L, const nesim_coded_opts *o, const float *x, size_t samples,
                     float *y, nesim_coded_stats *total, nesim_coded_stats *per_sample, int64_t *counts, int apart,
                     nesim_error *err)
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
    nesim_coded_stats_init(&tot);
    tot.t_end = o->t0;
    const size_t nb = samples < NESIM_CODED_BATCH ? (samples ? samples : 1) : NESIM_CODED_BATCH;
    nesim_coded_work w[NESIM_CODED_BATCH];
    sample_job jobs[NESIM_CODED_BATCH];
    nesim_coded_plan plans[NESIM_CODED_BATCH];
    double vth[NESIM_CODED_BATCH];
    size_t nw = 0;
    for (; nw < nb && !rc; nw++)
        rc = nesim_coded_work_init(&w[nw], L, err);
    int64_t tick = o->t0;
    for (size_t b0 = 0; b0 < samples && !rc; b0 += nb) {
        const size_t m = samples - b0 < nb ? samples - b0 : nb;
        for (size_t k = 0; k < m; k++)
            jobs[k] = (sample_job){.x = x + (b0 + k) * L->in, .sample = b0 + k, .w = &w[k]};
        code_batch B = {L, o, jobs, m};
        int nt = o->threads > 0 ? o->threads : 1;
        nesim_par_run(nt < (int)m ? nt : (int)m, code_part, &B);
        size_t k = 0;
        for (; k < m && !rc; k++) {
            rc = finish_sample(L, o, &jobs[k], apart ? o->t0 : tick, err);
            if (!rc && !apart)
                tick = jobs[k].st.t_end;
            if (!rc && counts)
                memcpy(counts + (b0 + k) * L->in, w[k].rep, L->in * sizeof *counts);
            plans[k] = jobs[k].plan;
            vth[k] = jobs[k].vth;
        }
        if (!rc && nesim_comm_size(o->comm) > 1) { /* each rank counted its rows' updates */
            uint64_t ups[NESIM_CODED_BATCH];
            for (k = 0; k < m; k++)
                ups[k] = (uint64_t)jobs[k].st.updates;
            if (!(rc = nesim_comm_sum_u64(o->comm, ups, m, "the sum of a layer's membrane updates", err)))
                for (k = 0; k < m; k++)
                    jobs[k].st.updates = (int64_t)ups[k];
        }
        if (rc)
            break;
        /* a batch plays through tiles: the layer's, or each made just before
         * it is played (one pass over the rows for the whole batch) */
        if ((rc = nesim_coded_rows(L, L->tiles, plans, m, vth, w[0].bias, y + b0 * L->out, o->threads, o->comm, err)))
            break;
        for (k = 0; k < m; k++) {
            nesim_coded_stats_add(&tot, &jobs[k].st);
            if (per_sample)
                per_sample[b0 + k] = jobs[k].st;
        }
    }
    for (size_t k = 0; k < nw; k++)
        work_free(&w[k]);
    if (rc)
        return rc;
    nesim_coded_stats_finish(&tot);
    if (total)
        *total = tot;
    return NESIM_OK;
}

int nesim_coded_linear_batch(const nesim_coded_linear *L, const nesim_coded_opts *o,
                             const float *x, size_t samples, float *y, nesim_coded_stats *total,
                             nesim_coded_stats *per_sample, nesim_error *err)
{
    return batch_run(L, o, x, samples, y, total, per_sample, NULL, 0, err);
}

int nesim_coded_linear_batch_counts(const nesim_coded_linear *L, const nesim_coded_opts *o, const float *x,
                                    size_t samples, float *y, nesim_coded_stats *per_sample, int64_t *counts,
                                    nesim_error *err)
{
    if (!o || !counts)
        return nesim_fail(err, NESIM_EINVAL, "coded linear '%s': no options or counts", lname(L));
    nesim_coded_opts q = *o; /* the observers wait for nesim_coded_observe */
    q.on_step = NULL;
    q.on_spike = NULL;
    q.step_events = NULL;
    q.step_events_len = 0;
    q.chan_spikes = NULL;
    return batch_run(L, &q, x, samples, y, NULL, per_sample, counts, 1, err);
}

int nesim_coded_observe(const nesim_coded_linear *L, const nesim_coded_opts *o, const int64_t *rep, int64_t T,
                        int64_t t0, size_t sample, nesim_error *err)
{
    int64_t events;
    int rc = nesim_code_emit("coded linear", lname(L), o, rep, L->in, T, t0, sample, &events, err);
    if (rc || !(o->on_step || o->step_events_len))
        return rc;
    /* what report_steps reads, as code_sample and build_plan leave it */
    nesim_coded_work w;
    memset(&w, 0, sizeof w);
    w.mags = malloc((L->in ? L->in : 1) * sizeof *w.mags);
    w.step_ev = calloc(T > 0 ? (size_t)T : 1, sizeof *w.step_ev);
    if (!w.mags || !w.step_ev) {
        free(w.mags);
        free(w.step_ev);
        return nesim_fail(err, NESIM_ENOMEM, "coded linear '%s': out of memory", lname(L));
    }
    size_t nmags = 0;
    for (size_t i = 0; i < L->in; i++)
        if (rep[i])
            w.mags[nmags++] = mag64(rep[i]);
    if (nesim_coding_is_bitwise(o->coding)) {
        for (int64_t t = 0; t < T; t++)
            for (size_t i = 0; i < L->in; i++)
                w.step_ev[t] += rep[i] && nesim_coding_spike(o->coding, rep[i], T, t) != 0;
    } else {
        qsort(w.mags, nmags, sizeof *w.mags, cmp_i64);
    }
    report_steps(o, &w, o->coding, T, nmags, t0);
    free(w.mags);
    free(w.step_ev);
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
    double v;
    int64_t T;
    rc = nesim_code_row("coded linear", "linear", o, x, in, 0, rep, &v, &T, &st, err);
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
