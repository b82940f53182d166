/* layers.c — loading a spec's layers (see layers.h). */
#include "net/layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "base/par.h"
#include "net/synth.h"

/* A lazy open's layer: tensors made, described only (never made: nothing
 * counted), or released after making (counted; the weight made again when
 * asked for). */
enum { PEND_MADE = 0, PEND_DESCRIBED = 1, PEND_RELEASED = 2 };
enum { SPARE_MAX = 16 };

struct nesim_layers {
    const nesim_spec *spec;
    nesim_layer *L;
    size_t n;
    size_t in_size, out_size;
    /* what the loads own */
    int (*own)[3];            /* per layer: w, s, b own an .npy mapping */
    void *(*buf)[4];          /* per layer: synthetic data */
    size_t (*cap)[2];         /* per layer: the bytes buf[0] and buf[1] hold (a spare may be larger than its tensor) */
    nesim_safetensors **stf;
    char **stf_path;
    size_t n_stf;
    double synth_s;           /* wall seconds spent making synthetic tensors */
    unsigned char *pending;   /* per layer (lazy opens): a PEND_* state */
    /* buffers of released weights, reused by the next synthetic weight that
     * fits: a warm page costs nothing, a fresh one a fault (and on a VM a
     * trip to the host) */
    struct spare {
        void *p;
        size_t cap;
    } spare[SPARE_MAX];
    int n_spare;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int open_st(nesim_layers *g, const char *path, nesim_safetensors **out, nesim_error *err)
{
    for (size_t i = 0; i < g->n_stf; i++)
        if (strcmp(g->stf_path[i], path) == 0)
            return *out = g->stf[i], NESIM_OK;
    nesim_safetensors **f = realloc(g->stf, (g->n_stf + 1) * sizeof *f);
    if (f)
        g->stf = f;
    char **p = realloc(g->stf_path, (g->n_stf + 1) * sizeof *p);
    if (p)
        g->stf_path = p;
    if (!f || !p)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = nesim_safetensors_open(path, out, err);
    if (rc)
        return rc;
    g->stf[g->n_stf] = *out;
    g->stf_path[g->n_stf++] = strdup(path);
    return NESIM_OK;
}

/* Loads one spec tensor into t (and its scales into s when s is given). */
static int load_tensor(nesim_layers *g, const nesim_spec_tensor *st, nesim_tensor *t, int *own, nesim_tensor *s,
                       int *own_s, void **buf, void **sbuf, nesim_error *err)
{
    if (st->kind == NESIM_TSRC_SYNTHETIC) {
        nesim_tensor dummy;
        double t0 = mono_s();
        int rc = nesim_synth_generate(st, "synthetic tensor", t, buf, s ? s : &dummy, sbuf, err);
        g->synth_s += mono_s() - t0;
        return rc;
    }
    if (ends_with(st->file, ".safetensors")) {
        nesim_safetensors *f;
        int rc = open_st(g, st->file, &f, err);
        if (rc)
            return rc;
        if (!st->tensor)
            return nesim_fail(err, NESIM_EINVAL, "%s: a .safetensors file needs \"tensor\"", st->file);
        if ((rc = nesim_safetensors_get(f, st->tensor, t, err)))
            return rc;
        if (st->scales && s)
            return nesim_safetensors_get(f, st->scales, s, err);
        return NESIM_OK;
    }
    int rc = nesim_npy_load(st->file, t, err);
    if (rc)
        return rc;
    *own = 1;
    if (st->scales && s) {
        if ((rc = nesim_npy_load(st->scales, s, err)))
            return rc;
        *own_s = 1;
    }
    return NESIM_OK;
}

/* The name a tensor goes by in messages: its file (and tensor), or "synthetic". */
static const char *where(const nesim_spec_tensor *st, int scales, char *buf, size_t cap)
{
    if (st->kind == NESIM_TSRC_SYNTHETIC)
        snprintf(buf, cap, "synthetic %s", scales ? "scales" : "tensor");
    else if (st->tensor)
        snprintf(buf, cap, "%s, tensor '%s'", st->file, scales ? st->scales : st->tensor);
    else
        snprintf(buf, cap, "%s", scales ? st->scales : st->file);
    return buf;
}

static int check_finite(const nesim_tensor *t, const char *what, const nesim_spec_tensor *st, int scales,
                        nesim_error *err)
{
    char w[600], label[700];
    snprintf(label, sizeof label, "%s (%s)", what, where(st, scales, w, sizeof w));
    return nesim_tensor_check_finite(t, label, err);
}

static size_t prod(const size_t *d, int nd)
{
    size_t p = 1;
    for (int i = 0; i < nd; i++)
        p *= d[i];
    return p;
}

typedef struct count_job {
    nesim_layer *l;
    size_t ng;      /* scale groups per row */
    uint32_t *part; /* parts 1.. count here ([k - 1] * in); part 0 into l->nnz_in */
} count_job;

/* nz[i] += (r[i] != 0), i < m */
static void count_scalar(const int8_t *r, size_t m, uint32_t *nz)
{
    for (size_t i = 0; i < m; i++)
        nz[i] += r[i] != 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The same 64 bytes at a time: a mask of the nonzero bytes adds one to
 * their counters, 16 at a time. */
__attribute__((target("avx512f,avx512bw"))) static void count_512(const int8_t *r, size_t m, uint32_t *nz)
{
    const __m512i one = _mm512_set1_epi32(1);
    size_t i = 0;
    for (; i + 64 <= m; i += 64) {
        __m512i b = _mm512_loadu_si512((const void *)(r + i));
        __mmask64 k = _mm512_test_epi8_mask(b, b);
        for (int h = 0; h < 4; h++) {
            __m512i a = _mm512_loadu_si512((const void *)(nz + i + 16 * (size_t)h));
            a = _mm512_mask_add_epi32(a, (__mmask16)(k >> (16 * h)), a, one);
            _mm512_storeu_si512((void *)(nz + i + 16 * (size_t)h), a);
        }
    }
    count_scalar(r + i, m - i, nz + i);
}
static int have_count_512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }
#else
static void count_512(const int8_t *r, size_t m, uint32_t *nz) { count_scalar(r, m, nz); }
static int have_count_512(void) { return 0; }
#endif

/* Nonzero int8 weights (scale nonzero) per input channel over part k of n of the rows. */
static void count_part(void *ctx, int k, int n)
{
    const count_job *j = ctx;
    const nesim_layer *l = j->l;
    const size_t in = l->in;
    size_t lo, hi;
    nesim_par_split(l->out, 1, k, n, &lo, &hi);
    uint32_t *nz = k ? j->part + (size_t)(k - 1) * in : l->nnz_in;
    const int8_t *q = l->w.data;
    const unsigned char *sc = l->s.data;
    const int fast = have_count_512();
    for (size_t o = lo; o < hi; o++)
        for (size_t g0 = 0; g0 < in; g0 += l->group) {
            float f = 1;
            if (sc)
                memcpy(&f, sc + (o * j->ng + g0 / l->group) * sizeof f, sizeof f);
            if (f == 0)
                continue;
            (fast ? count_512 : count_scalar)(q + o * in + g0, l->group, nz + g0);
        }
}

/* Zero weights (scale included) and, per input channel, the targets reached
 * through a nonzero weight. */
static int count_weights(nesim_layer *l, nesim_error *err)
{
    if (!(l->nnz_in = calloc(l->in ? l->in : 1, sizeof *l->nnz_in)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    const nesim_tensor *w = &l->w;
    if (l->sl->type == NESIM_LAYER_LINEAR) {
        size_t in = l->in, out = l->out, ng = l->s.data ? in / l->group : 1;
        if (w->dtype == NESIM_I8 && (!l->s.data || l->s.dtype == NESIM_F32)) {
            /* the common large case (int8 with f32 group scales), read as
             * bytes on every core, rows split: integer counts, so the same
             * for any split */
            int threads = out * in < ((size_t)1 << 22) ? 1 : nesim_par_cores();
            uint32_t *part = threads > 1 ? calloc((size_t)(threads - 1) * in, sizeof *part) : NULL;
            if (threads > 1 && !part)
                threads = 1;
            count_job j = {l, ng, part};
            nesim_par_run(threads, count_part, &j);
            for (int k = 1; k < threads; k++)
                for (size_t i = 0; i < in; i++)
                    l->nnz_in[i] += part[(size_t)(k - 1) * in + i];
            free(part);
        } else {
            for (size_t o = 0; o < out; o++)
                for (size_t i = 0; i < in; i++) {
                    double v = nesim_tensor_get(w, o * in + i);
                    if (v != 0 && l->s.data)
                        v = nesim_tensor_get(&l->s, o * ng + i / l->group);
                    l->nnz_in[i] += v != 0;
                }
        }
        double nz = 0;
        for (size_t i = 0; i < in; i++)
            nz += l->nnz_in[i];
        l->zero_weights = (double)w->count - nz;
        return NESIM_OK;
    }
    /* conv2d: nonzero output channels per (c, ky, kx), then per input the taps covering it */
    size_t c = l->in_dim[0], h = l->in_dim[1], wd = l->in_dim[2], kk = l->kh * l->kw;
    uint32_t *nzk = calloc(c * kk > 0 ? c * kk : 1, sizeof *nzk);
    if (!nzk)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    double nz = 0;
    for (size_t oc = 0; oc < l->oc; oc++)
        for (size_t k = 0; k < c * kk; k++)
            if (nesim_tensor_get(w, oc * c * kk + k) != 0)
                nzk[k]++, nz++;
    l->zero_weights = (double)w->count - nz;
    size_t oh = l->out_dim[1], ow = l->out_dim[2];
    for (size_t i = 0; i < l->in; i++) {
        size_t ci = i / (h * wd), iy = (i / wd) % h, ix = i % wd;
        uint64_t n = 0;
        for (size_t oy = 0; oy < oh; oy++) {
            if (iy + l->ph < oy * l->sh || iy + l->ph - oy * l->sh >= l->kh)
                continue;
            size_t ky = iy + l->ph - oy * l->sh;
            for (size_t ox = 0; ox < ow; ox++) {
                if (ix + l->pw < ox * l->sw || ix + l->pw - ox * l->sw >= l->kw)
                    continue;
                n += nzk[(ci * l->kh + ky) * l->kw + ix + l->pw - ox * l->sw];
            }
        }
        l->nnz_in[i] = (uint32_t)n;
        l->dense_taps += (double)nesim_layer_targets(l, i, NULL, 0);
    }
    free(nzk);
    return NESIM_OK;
}

static int setup_layer(nesim_layers *g, nesim_layer *l, nesim_error *err)
{
    const nesim_spec_layer *sl = l->sl;
    size_t i = l->index;
    int rc;
    memcpy(l->out_dim, l->in_dim, sizeof l->in_dim);
    l->out_nd = l->in_nd;
    l->in = prod(l->in_dim, l->in_nd);
    switch (sl->type) {
    case NESIM_LAYER_LINEAR:
    case NESIM_LAYER_CONV2D: {
        l->coded = 1;
        if (g->pending && sl->type == NESIM_LAYER_LINEAR && sl->weight.kind == NESIM_TSRC_SYNTHETIC &&
            (sl->bias.kind == NESIM_TSRC_NONE || sl->bias.kind == NESIM_TSRC_SYNTHETIC)) {
            /* made when the layer first runs (nesim_layers_ready): shapes now */
            nesim_tensor unused;
            if ((rc = nesim_synth_describe(&sl->weight, "synthetic tensor", &l->w, &l->s, err)) ||
                (sl->bias.kind != NESIM_TSRC_NONE &&
                 (rc = nesim_synth_describe(&sl->bias, "synthetic tensor", &l->b, &unused, err))))
                return rc;
            g->pending[i] = PEND_DESCRIBED;
        } else {
            if ((rc = load_tensor(g, &sl->weight, &l->w, &g->own[i][0], &l->s, &g->own[i][1], &g->buf[i][0],
                                  &g->buf[i][1], err)))
                return rc;
            if (sl->bias.kind != NESIM_TSRC_NONE &&
                (rc = load_tensor(g, &sl->bias, &l->b, &g->own[i][2], NULL, NULL, &g->buf[i][2], &g->buf[i][3], err)))
                return rc;
        }
        if (g->pending && g->pending[i]) {
            /* synthetic values are finite by construction */
        } else if ((rc = check_finite(&l->w, "weight", &sl->weight, 0, err)) ||
            (l->s.data && (rc = check_finite(&l->s, "scales", &sl->weight, 1, err))) ||
            (l->b.data && (rc = check_finite(&l->b, "bias", &sl->bias, 0, err))))
            return rc;
        if (sl->type == NESIM_LAYER_LINEAR) {
            if (l->in_nd != 1)
                return nesim_fail(err, NESIM_EINVAL,
                                  "linear needs a flat input, got %d dimensions (add a flatten layer)", l->in_nd);
            if (l->w.ndim != 2 || l->w.shape[1] < 1 || l->w.shape[0] < 1 || (size_t)l->w.shape[1] != l->in)
                return nesim_fail(err, NESIM_EINVAL, "weight must be [out, %zu] for an input of %zu values, got %s",
                                  l->in, l->in, l->w.ndim == 2 ? "another shape" : "another rank");
            l->group = l->s.data && l->s.ndim == 2 && l->s.shape[1] > 0 ? l->in / (size_t)l->s.shape[1] : l->in;
            if (sl->weight.group > 0)
                l->group = (size_t)sl->weight.group;
            if (!l->group)
                l->group = l->in;
            l->out_nd = 1;
            l->out_dim[0] = (size_t)l->w.shape[0];
            l->dense_macs = l->dense_taps = (double)l->in * (double)l->out_dim[0];
        } else {
            if (l->in_nd != 3)
                return nesim_fail(err, NESIM_EINVAL, "conv2d needs a [channels, height, width] input, got %d dimensions",
                                  l->in_nd);
            if (l->s.data)
                return nesim_fail(err, NESIM_EINVAL, "conv2d: quantised kernels with scales are not supported");
            if (l->w.ndim != 4 || (size_t)l->w.shape[1] != l->in_dim[0])
                return nesim_fail(err, NESIM_EINVAL, "weight must be [out, %zu, kh, kw] for an input of %zu channels",
                                  l->in_dim[0], l->in_dim[0]);
            l->oc = (size_t)l->w.shape[0], l->kh = (size_t)l->w.shape[2], l->kw = (size_t)l->w.shape[3];
            l->sh = (size_t)sl->stride[0], l->sw = (size_t)sl->stride[1];
            l->ph = (size_t)sl->padding[0], l->pw = (size_t)sl->padding[1];
            if (l->oc < 1 || l->kh < 1 || l->kw < 1 || l->in_dim[1] + 2 * l->ph < l->kh || l->in_dim[2] + 2 * l->pw < l->kw)
                return nesim_fail(err, NESIM_EINVAL, "kernel %zux%zu does not fit input %zux%zu (padding %zu,%zu)", l->kh,
                                  l->kw, l->in_dim[1], l->in_dim[2], l->ph, l->pw);
            l->out_dim[0] = l->oc;
            l->out_dim[1] = (l->in_dim[1] + 2 * l->ph - l->kh) / l->sh + 1;
            l->out_dim[2] = (l->in_dim[2] + 2 * l->pw - l->kw) / l->sw + 1;
            l->dense_macs = (double)prod(l->out_dim, 3) * (double)(l->in_dim[0] * l->kh * l->kw);
        }
        if (l->b.ndim && (l->b.ndim != 1 || (size_t)l->b.shape[0] != l->out_dim[0]))
            return nesim_fail(err, NESIM_EINVAL, "bias must have shape [%zu]", l->out_dim[0]);
        l->out = prod(l->out_dim, l->out_nd);
        l->weights = (double)l->w.count;
        l->weight_bytes = (double)(l->w.nbytes + l->s.nbytes + l->b.nbytes);
        l->weight_bits = 8.0 * (double)nesim_dtype_size(l->w.dtype);
        return g->pending && g->pending[i] ? NESIM_OK : count_weights(l, err);
    }
    case NESIM_LAYER_FLATTEN:
        l->out_nd = 1;
        l->out_dim[0] = l->in;
        break;
    default: /* pools */
        if (l->in_nd != 3)
            return nesim_fail(err, NESIM_EINVAL, "pooling needs a [channels, height, width] input, got %d dimensions",
                              l->in_nd);
        if ((size_t)sl->kernel[0] > l->in_dim[1] || (size_t)sl->kernel[1] > l->in_dim[2])
            return nesim_fail(err, NESIM_EINVAL, "pool kernel %lldx%lld larger than input %zux%zu",
                              (long long)sl->kernel[0], (long long)sl->kernel[1], l->in_dim[1], l->in_dim[2]);
        l->out_dim[1] = (l->in_dim[1] - (size_t)sl->kernel[0]) / (size_t)sl->stride[0] + 1;
        l->out_dim[2] = (l->in_dim[2] - (size_t)sl->kernel[1]) / (size_t)sl->stride[1] + 1;
        break;
    }
    l->out = prod(l->out_dim, l->out_nd);
    return NESIM_OK;
}

/* Fixed-threshold binary/ternary linear layers fed by the linear layer
 * before them overlap with it in virtual time (sim/stream.h). */
static void find_chains(nesim_layers *g)
{
    for (size_t i = 0; i < g->n; i++) {
        nesim_layer *h = &g->L[i];
        h->seg = 1;
        if (h->in_seg || h->sl->type != NESIM_LAYER_LINEAR || h->sl->graded)
            continue;
        for (size_t k = i + 1; k < g->n; k++) {
            const nesim_layer *l = &g->L[k];
            int ok = l->sl->type == NESIM_LAYER_LINEAR && l->src == (long)k - 1 && !l->sl->adaptive &&
                     !l->sl->graded && (l->sl->coding == NESIM_CODE_BINARY || l->sl->coding == NESIM_CODE_TERNARY);
            for (size_t r = k + 1; ok && r < g->n; r++)
                ok = g->L[r].src != (long)k - 1; /* inner outputs are not kept */
            if (!ok)
                break;
            g->L[k].in_seg = 1;
            h->seg++;
        }
    }
}

static int layers_open(const nesim_spec *spec, int lazy, nesim_layers **out, nesim_error *err)
{
    *out = NULL;
    if (!spec->n_layers || spec->input_ndim < 1)
        return nesim_fail(err, NESIM_EINVAL, "%s: the model has no layers", spec->file);
    if (spec->input_ndim > 3)
        return nesim_fail(err, NESIM_EINVAL, "%s: input: at most 3 dimensions ([c, h, w])", spec->file);
    nesim_layers *g = calloc(1, sizeof *g);
    size_t n = spec->n_layers;
    if (!g || !(g->L = calloc(n, sizeof *g->L)) || !(g->own = calloc(n, sizeof *g->own)) ||
        !(g->buf = calloc(n, sizeof *g->buf)) || !(g->cap = calloc(n, sizeof *g->cap)) ||
        (lazy && !(g->pending = calloc(n, 1)))) {
        nesim_layers_close(g);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    g->spec = spec;
    g->n = n;
    size_t in_dim[3] = {0};
    int in_nd = spec->input_ndim;
    for (int i = 0; i < in_nd; i++)
        in_dim[i] = (size_t)spec->input_shape[i];
    g->in_size = prod(in_dim, in_nd);
    for (size_t i = 0; i < n; i++) {
        nesim_layer *l = &g->L[i];
        l->sl = &spec->layers[i];
        l->index = i;
        /* from: -2 the previous layer (the model input for the first) */
        l->src = l->sl->from == -2 ? (long)i - 1 : l->sl->from;
        const size_t *d = l->src < 0 ? in_dim : g->L[l->src].out_dim;
        memcpy(l->in_dim, d, sizeof l->in_dim);
        l->in_nd = l->src < 0 ? in_nd : g->L[l->src].out_nd;
        int rc = setup_layer(g, l, err);
        if (rc) {
            nesim_context(err, "%s: layers[%zu] (%s): ", spec->file, i, l->sl->name);
            nesim_layers_close(g);
            return rc;
        }
    }
    g->out_size = g->L[n - 1].out;
    find_chains(g);
    *out = g;
    return NESIM_OK;
}

int nesim_layers_open(const nesim_spec *spec, nesim_layers **out, nesim_error *err)
{
    return layers_open(spec, 0, out, err);
}

int nesim_layers_open_lazy(const nesim_spec *spec, nesim_layers **out, nesim_error *err)
{
    return layers_open(spec, 1, out, err);
}

int nesim_layers_is_ready(const nesim_layers *g, size_t i)
{
    return !g->pending || i >= g->n || g->pending[i] == PEND_MADE;
}

int nesim_layers_counted(const nesim_layers *g, size_t i)
{
    return !g->pending || i >= g->n || g->pending[i] != PEND_DESCRIBED;
}

/* A buffer of at least `need` bytes (*cap: what it holds): the smallest
 * spare that fits, or new. */
static void *spare_take(nesim_layers *g, size_t need, size_t *cap)
{
    int best = -1;
    for (int k = 0; k < g->n_spare; k++)
        if (g->spare[k].cap >= need && (best < 0 || g->spare[k].cap < g->spare[best].cap))
            best = k;
    if (best < 0) {
        *cap = need ? need : 1;
        return nesim_alloc_big(*cap);
    }
    void *p = g->spare[best].p;
    *cap = g->spare[best].cap;
    g->spare[best] = g->spare[--g->n_spare];
    return p;
}

static void spare_put(nesim_layers *g, void *p, size_t cap)
{
    if (!p)
        return;
    if (g->n_spare == SPARE_MAX) {
        free(p);
        return;
    }
    g->spare[g->n_spare++] = (struct spare){p, cap};
}

/* Layer i's weight and scales buffers to the spares, its views emptied. */
static void give_back(nesim_layers *g, size_t i)
{
    spare_put(g, g->buf[i][0], g->cap[i][0]);
    spare_put(g, g->buf[i][1], g->cap[i][1]);
    g->buf[i][0] = g->buf[i][1] = NULL;
    g->L[i].w.data = g->L[i].s.data = NULL;
}

/* Makes layer i's synthetic weight (and scales) in spare or new buffers. */
static int make_weight(nesim_layers *g, size_t i, nesim_error *err)
{
    nesim_layer *l = &g->L[i];
    const nesim_spec_tensor *st = &l->sl->weight;
    int rc = nesim_synth_describe(st, "synthetic tensor", &l->w, &l->s, err);
    if (rc)
        return rc;
    double t0 = mono_s();
    size_t *cap = g->cap[i];
    void *w = spare_take(g, l->w.nbytes, &cap[0]), *s = l->s.nbytes ? spare_take(g, l->s.nbytes, &cap[1]) : NULL;
    g->buf[i][0] = w;
    g->buf[i][1] = s;
    l->w.data = w;
    l->s.data = s;
    if (!w || (l->s.nbytes && !s))
        rc = nesim_fail(err, NESIM_ENOMEM, "synthetic tensor: out of memory for %zu values", l->w.count);
    else
        rc = nesim_synth_fill(st, "synthetic tensor", &l->w, &l->s, err);
    if (rc) {
        give_back(g, i);
        return rc;
    }
    g->synth_s += mono_s() - t0;
    return NESIM_OK;
}

int nesim_layers_ready(nesim_layers *g, size_t i, nesim_error *err)
{
    if (!g->pending || i >= g->n || g->pending[i] == PEND_MADE)
        return NESIM_OK;
    nesim_layer *l = &g->L[i];
    const nesim_spec_layer *sl = l->sl;
    int rc = make_weight(g, i, err);
    if (!rc && g->pending[i] == PEND_DESCRIBED) {
        if (sl->bias.kind != NESIM_TSRC_NONE)
            rc = load_tensor(g, &sl->bias, &l->b, &g->own[i][2], NULL, NULL, &g->buf[i][2], &g->buf[i][3], err);
        double t0 = mono_s();
        if (!rc)
            rc = count_weights(l, err);
        g->synth_s += mono_s() - t0; /* part of making the layer: not of the run */
    }
    if (rc)
        return nesim_context(err, "%s: layers[%zu] (%s): ", g->spec->file, i, sl->name);
    g->pending[i] = PEND_MADE;
    return NESIM_OK;
}

int nesim_layers_release(nesim_layers *g, size_t i)
{
    if (!g->pending || i >= g->n || g->pending[i] != PEND_MADE || !g->buf[i][0])
        return 0;
    give_back(g, i);
    g->pending[i] = PEND_RELEASED;
    return 1;
}

void nesim_layers_close(nesim_layers *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->L && i < g->n; i++) {
        nesim_layer *l = &g->L[i];
        nesim_tensor *t[3] = {&l->w, &l->s, &l->b};
        for (int k = 0; k < 3 && g->own; k++)
            if (g->own[i][k])
                nesim_tensor_release(t[k]);
        for (int k = 0; k < 4 && g->buf; k++)
            free(g->buf[i][k]);
        free(l->nnz_in);
    }
    for (int k = 0; k < g->n_spare; k++)
        free(g->spare[k].p);
    for (size_t i = 0; i < g->n_stf; i++) {
        nesim_safetensors_close(g->stf[i]);
        free(g->stf_path[i]);
    }
    free(g->stf);
    free(g->stf_path);
    free(g->own);
    free(g->buf);
    free(g->cap);
    free(g->pending);
    free(g->L);
    free(g);
}

size_t nesim_layers_count(const nesim_layers *g) { return g->n; }
double nesim_layers_synth_s(const nesim_layers *g) { return g->synth_s; }
const nesim_layer *nesim_layers_get(const nesim_layers *g, size_t i) { return &g->L[i]; }
const nesim_spec *nesim_layers_spec(const nesim_layers *g) { return g->spec; }
size_t nesim_layers_input_size(const nesim_layers *g) { return g->in_size; }
size_t nesim_layers_output_size(const nesim_layers *g) { return g->out_size; }

static void span(size_t i, size_t pad, size_t k, size_t stride, size_t n_out, size_t *lo, size_t *hi)
{
    size_t top = i + pad;
    *lo = top + 1 > k ? (top - (k - 1) + stride - 1) / stride : 0;
    size_t h = top / stride;
    *hi = h < n_out - 1 ? h : n_out - 1;
}

size_t nesim_layer_targets(const nesim_layer *l, uint64_t i, uint32_t *out, size_t cap)
{
    size_t n = 0;
    if (l->sl->type == NESIM_LAYER_CONV2D) {
        size_t h = l->in_dim[1], w = l->in_dim[2], oh = l->out_dim[1], ow = l->out_dim[2];
        size_t iy = (size_t)(i / w) % h, ix = (size_t)i % w, y0, y1, x0, x1;
        span(iy, l->ph, l->kh, l->sh, oh, &y0, &y1);
        span(ix, l->pw, l->kw, l->sw, ow, &x0, &x1);
        if (y0 > y1 || x0 > x1)
            return 0;
        if (!out || !cap)
            return l->oc * (y1 - y0 + 1) * (x1 - x0 + 1);
        for (size_t oc = 0; oc < l->oc; oc++)
            for (size_t oy = y0; oy <= y1; oy++)
                for (size_t ox = x0; ox <= x1; ox++, n++)
                    if (n < cap)
                        out[n] = (uint32_t)((oc * oh + oy) * ow + ox);
        return n;
    }
    if (!out || !cap)
        return l->out;
    for (size_t o = 0; o < l->out; o++, n++)
        if (n < cap)
            out[n] = (uint32_t)o;
    return n;
}
