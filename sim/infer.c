/* infer.c — layer chains of a model spec, run sample by sample (see infer.h). */
#include "sim/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/synth.h"
#include "net/tensor.h"
#include "sim/conv.h"
#include "sim/stream.h"

typedef struct lrt {
    const nesim_spec_layer *sl;
    size_t in_dim[3], out_dim[3];
    int in_nd, out_nd;
    size_t in, out;
    nesim_coded_linear lin;
    nesim_conv2d conv;
    nesim_tensor w, s, b;      /* owned npy mappings or views (see own_*) */
    int own_w, own_s, own_b;   /* release with nesim_tensor_release */
    void *buf[4];              /* synthetic data */
    nesim_coded_opts opts;
    long src;                  /* input: -1 the model input, else a layer index */
    double zeros;              /* zero weights */
    size_t seg;                /* layers run as one overlapping chain from here (>= 1) */
    int in_seg;                /* run by an earlier layer's chain */
} lrt;

struct nesim_infer {
    lrt *L;
    size_t n;
    nesim_safetensors **stf;
    char **stf_path;
    size_t n_stf;
    size_t in_size, out_size;
    float **out;               /* each layer's output for the current sample */
    int64_t *done;             /* tick at which each layer's output is complete */
    nesim_infer_sink sink;     /* observers (traces); zero when none */
    size_t start;              /* first layer run (replay); 0 normally */
    const float *start_x;      /* replay: inputs of layer start */
    const double *start_vth;   /* replay: its thresholds per sample */
    const int64_t *start_t0;   /* replay: its first tick per sample */
    size_t cur_layer;          /* the layer whose steps on_step reports */
    int64_t *act;              /* events per tick */
    size_t n_act, cap_act;
    int act_oom;
    nesim_layer_report *rep;
};

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int open_st(nesim_infer *m, const char *path, nesim_safetensors **out, nesim_error *err)
{
    for (size_t i = 0; i < m->n_stf; i++)
        if (strcmp(m->stf_path[i], path) == 0)
            return *out = m->stf[i], NESIM_OK;
    nesim_safetensors **f = realloc(m->stf, (m->n_stf + 1) * sizeof *f);
    if (f)
        m->stf = f;
    char **p = realloc(m->stf_path, (m->n_stf + 1) * sizeof *p);
    if (p)
        m->stf_path = p;
    if (!f || !p)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = nesim_safetensors_open(path, out, err);
    if (rc)
        return rc;
    m->stf[m->n_stf] = *out;
    m->stf_path[m->n_stf++] = strdup(path);
    return NESIM_OK;
}

/* Loads one spec tensor into t (and scales into s when present). */
static int load_tensor(nesim_infer *m, lrt *l, const nesim_spec_tensor *st, nesim_tensor *t, int *own,
                       nesim_tensor *s, int *own_s, void **buf, void **sbuf, nesim_error *err)
{
    if (st->kind == NESIM_TSRC_SYNTHETIC) {
        nesim_tensor dummy;
        return nesim_synth_generate(st, "synthetic tensor", t, buf, s ? s : &dummy, sbuf, err);
    }
    if (ends_with(st->file, ".safetensors")) {
        nesim_safetensors *f;
        int rc = open_st(m, st->file, &f, err);
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

static size_t prod(const size_t *d, int nd)
{
    size_t p = 1;
    for (int i = 0; i < nd; i++)
        p *= d[i];
    return p;
}

static double count_zeros(const nesim_tensor *t)
{
    size_t z = 0;
    if (t->dtype == NESIM_I8) {
        const int8_t *p = t->data;
        for (size_t i = 0; i < t->count; i++)
            z += p[i] == 0;
    } else {
        for (size_t i = 0; i < t->count; i++)
            z += nesim_tensor_get(t, i) == 0;
    }
    return (double)z;
}

static int setup_layer(nesim_infer *m, lrt *l, nesim_error *err)
{
    const nesim_spec_layer *sl = l->sl;
    int rc;
    memcpy(l->out_dim, l->in_dim, sizeof l->in_dim);
    l->out_nd = l->in_nd;
    l->in = prod(l->in_dim, l->in_nd);
    nesim_coded_opts_init(&l->opts);
    l->opts.coding = sl->coding;
    l->opts.k = sl->k > 0 ? sl->k : 3;
    l->opts.vth = sl->adaptive ? 0 : sl->threshold;
    switch (sl->type) {
    case NESIM_LAYER_LINEAR:
    case NESIM_LAYER_CONV2D: {
        if ((rc = load_tensor(m, l, &sl->weight, &l->w, &l->own_w, &l->s, &l->own_s, &l->buf[0], &l->buf[1], err)))
            return rc;
        if (sl->bias.kind != NESIM_TSRC_NONE &&
            (rc = load_tensor(m, l, &sl->bias, &l->b, &l->own_b, NULL, NULL, &l->buf[2], &l->buf[3], err)))
            return rc;
        if ((rc = nesim_tensor_check_finite(&l->w, "weight", err)) ||
            (l->s.data && (rc = nesim_tensor_check_finite(&l->s, "scales", err))) ||
            (l->b.data && (rc = nesim_tensor_check_finite(&l->b, "bias", err))))
            return rc;
        int has_s = l->s.data != NULL;
        l->zeros = count_zeros(&l->w);
        if (sl->type == NESIM_LAYER_LINEAR) {
            if (l->in_nd != 1)
                return nesim_fail(err, NESIM_EINVAL, "linear needs a flat input, got %d dimensions (add a flatten layer)", l->in_nd);
            size_t group = has_s && l->s.ndim == 2 && l->s.shape[1] > 0 ? l->in / (size_t)l->s.shape[1] : l->in;
            if (sl->weight.group > 0)
                group = (size_t)sl->weight.group;
            if ((rc = nesim_coded_linear_init(&l->lin, sl->name, &l->w, has_s ? &l->s : NULL, group,
                                              l->b.data ? &l->b : NULL, l->in, 0, err)))
                return rc;
            l->out_nd = 1;
            l->out_dim[0] = l->lin.out;
        } else {
            if (l->in_nd != 3)
                return nesim_fail(err, NESIM_EINVAL, "conv2d needs a [channels, height, width] input, got %d dimensions", l->in_nd);
            if (has_s)
                return nesim_fail(err, NESIM_EINVAL, "conv2d: quantised kernels with scales are not supported");
            if ((rc = nesim_conv2d_init(&l->conv, sl->name, &l->w, l->b.data ? &l->b : NULL, l->in_dim[0],
                                        l->in_dim[1], l->in_dim[2], (size_t)sl->stride[0], (size_t)sl->stride[1],
                                        (size_t)sl->padding[0], (size_t)sl->padding[1], err)))
                return rc;
            l->out_dim[0] = l->conv.o, l->out_dim[1] = l->conv.oh, l->out_dim[2] = l->conv.ow;
        }
        break;
    }
    case NESIM_LAYER_FLATTEN:
        l->out_nd = 1;
        l->out_dim[0] = l->in;
        break;
    default: /* pools */
        if (l->in_nd != 3)
            return nesim_fail(err, NESIM_EINVAL, "pooling needs a [channels, height, width] input, got %d dimensions", l->in_nd);
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

int nesim_infer_open(const nesim_spec *spec, nesim_infer **out, nesim_error *err)
{
    *out = NULL;
    if (!spec->n_layers || spec->input_ndim < 1)
        return nesim_fail(err, NESIM_EINVAL, "%s: the model has no layers", spec->file);
    if (spec->input_ndim > 3)
        return nesim_fail(err, NESIM_EINVAL, "%s: input: at most 3 dimensions ([c, h, w])", spec->file);
    nesim_infer *m = calloc(1, sizeof *m);
    if (!m || !(m->L = calloc(spec->n_layers, sizeof *m->L)) ||
        !(m->rep = calloc(spec->n_layers, sizeof *m->rep))) {
        nesim_infer_close(m);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    m->n = spec->n_layers;
    size_t in_dim[3] = {0};
    int in_nd = spec->input_ndim;
    for (int i = 0; i < in_nd; i++)
        in_dim[i] = (size_t)spec->input_shape[i];
    m->in_size = prod(in_dim, in_nd);
    m->out = calloc(m->n, sizeof *m->out);
    m->done = calloc(m->n, sizeof *m->done);
    if (!m->out || !m->done) {
        nesim_infer_close(m);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n; i++) {
        lrt *l = &m->L[i];
        l->sl = &spec->layers[i];
        /* from: -2 the previous layer (the model input for the first) */
        l->src = l->sl->from == -2 ? (long)i - 1 : l->sl->from;
        const size_t *d = l->src < 0 ? in_dim : m->L[l->src].out_dim;
        memcpy(l->in_dim, d, sizeof l->in_dim);
        l->in_nd = l->src < 0 ? in_nd : m->L[l->src].out_nd;
        int rc = setup_layer(m, l, err);
        if (!rc && (!(m->out[i] = malloc((l->out ? l->out : 1) * sizeof(float))) ||
                    !(m->rep[i].chan_spikes = calloc(l->in ? l->in : 1, sizeof(uint64_t)))))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        if (rc) {
            nesim_context(err, "%s: layers[%zu] (%s): ", spec->file, i, l->sl->name);
            nesim_infer_close(m);
            return rc;
        }
    }
    m->out_size = m->L[m->n - 1].out;
    /* Fixed-threshold binary/ternary layers fed by the linear layer before
     * them overlap with it in virtual time (sim/stream.h): find the chains. */
    for (size_t i = 0; i < m->n; i++) {
        lrt *h = &m->L[i];
        h->seg = 1;
        if (h->in_seg || h->sl->type != NESIM_LAYER_LINEAR || h->sl->graded)
            continue;
        for (size_t k = i + 1; k < m->n; k++) {
            const lrt *l = &m->L[k];
            int ok = l->sl->type == NESIM_LAYER_LINEAR && l->src == (long)k - 1 && !l->sl->adaptive && !l->sl->graded &&
                     (l->sl->coding == NESIM_CODE_BINARY || l->sl->coding == NESIM_CODE_TERNARY);
            for (size_t r = k + 1; ok && r < m->n; r++)
                ok = m->L[r].src != (long)k - 1; /* inner outputs are not kept */
            if (!ok)
                break;
            m->L[k].in_seg = 1;
            h->seg++;
        }
    }
    *out = m;
    return NESIM_OK;
}

void nesim_infer_close(nesim_infer *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->L && i < m->n; i++) {
        lrt *l = &m->L[i];
        if (l->own_w)
            nesim_tensor_release(&l->w);
        if (l->own_s)
            nesim_tensor_release(&l->s);
        if (l->own_b)
            nesim_tensor_release(&l->b);
        for (int k = 0; k < 4; k++)
            free(l->buf[k]);
        nesim_conv2d_free(&l->conv);
    }
    for (size_t i = 0; i < m->n_stf; i++) {
        nesim_safetensors_close(m->stf[i]);
        free(m->stf_path[i]);
    }
    free(m->stf);
    free(m->stf_path);
    for (size_t i = 0; m->out && i < m->n; i++)
        free(m->out[i]);
    for (size_t i = 0; m->rep && i < m->n; i++)
        free(m->rep[i].chan_spikes);
    free(m->out);
    free(m->done);
    free(m->act);
    free(m->L);
    free(m->rep);
    free(m);
}

size_t nesim_infer_input_size(const nesim_infer *m) { return m->in_size; }
size_t nesim_infer_layers(const nesim_infer *m) { return m->n; }
size_t nesim_infer_layer_inputs(const nesim_infer *m, size_t layer) { return m->L[layer].in; }

size_t nesim_infer_layer_targets(const nesim_infer *m, size_t layer, uint64_t i, uint32_t *out, size_t cap)
{
    const lrt *l = &m->L[layer];
    size_t n = 0;
    if (l->sl->type == NESIM_LAYER_CONV2D) {
        const nesim_conv2d *C = &l->conv;
        size_t iy = (size_t)(i / C->w) % C->h, ix = (size_t)i % C->w;
        for (size_t oc = 0; oc < C->o; oc++)
            for (size_t oy = 0; oy < C->oh; oy++) {
                if (iy + C->ph < oy * C->sh || iy + C->ph - oy * C->sh >= C->kh)
                    continue;
                for (size_t ox = 0; ox < C->ow; ox++) {
                    if (ix + C->pw < ox * C->sw || ix + C->pw - ox * C->sw >= C->kw)
                        continue;
                    if (n < cap)
                        out[n] = (uint32_t)((oc * C->oh + oy) * C->ow + ox);
                    n++;
                }
            }
        return n;
    }
    for (size_t o = 0; o < l->out; o++, n++)
        if (n < cap)
            out[n] = (uint32_t)o;
    return n;
}
size_t nesim_infer_output_size(const nesim_infer *m) { return m->out_size; }

static void add_stats(nesim_coded_stats *acc, const nesim_coded_stats *s)
{
    acc->samples += s->samples;
    acc->inputs += s->inputs;
    acc->spikes += s->spikes;
    acc->sops += s->sops;
    acc->steps += s->steps;
    acc->vth += s->vth; /* summed; divided by samples at the end */
    acc->max_count = s->max_count > acc->max_count ? s->max_count : acc->max_count;
    acc->clipped += s->clipped;
    acc->silent += s->silent;
    for (int k = 0; k <= NESIM_CODED_HIST; k++)
        acc->hist[k] += s->hist[k];
    if (s->first_tick >= 0 && (acc->first_tick < 0 || s->first_tick < acc->first_tick))
        acc->first_tick = s->first_tick;
    if (s->last_tick > acc->last_tick)
        acc->last_tick = s->last_tick;
}

/* SOPs per input spike: all outputs for linear; a conv kernel's mean coverage */
static double mean_fanout(const nesim_infer *m, size_t layer)
{
    const lrt *l = &m->L[layer];
    if (l->sl->type != NESIM_LAYER_CONV2D)
        return (double)l->out;
    const nesim_conv2d *C = &l->conv;
    return (double)l->out * (double)(C->c * C->kh * C->kw) / (double)l->in; /* ignoring padding */
}

/* on_step: events per tick, summed over layers (the run's activity) */
static void on_step(void *user, int64_t tick, int64_t events)
{
    nesim_infer *m = user;
    if (tick < 0 || m->act_oom)
        return;
    if ((size_t)tick >= m->cap_act) {
        size_t cap = m->cap_act ? m->cap_act : 1024;
        while (cap <= (size_t)tick)
            cap *= 2;
        int64_t *a = realloc(m->act, cap * sizeof *a);
        if (!a) {
            m->act_oom = 1;
            return;
        }
        memset(a + m->cap_act, 0, (cap - m->cap_act) * sizeof *a);
        m->act = a;
        m->cap_act = cap;
    }
    m->act[tick] += events;
    if (m->sink.activity && events)
        m->sink.activity(m->sink.user, m->cur_layer, tick, events, (int64_t)((double)events * mean_fanout(m, m->cur_layer)));
    if ((size_t)tick + 1 > m->n_act)
        m->n_act = (size_t)tick + 1;
}

/* Spikes per input channel of one sample (for per-neuron routing costs),
 * and, for observers, the spikes themselves: the coding is deterministic, so
 * the played trains follow from the counts. */
static int count_channels(const nesim_infer *m, size_t layer, const float *x, int64_t T, int64_t t0,
                          uint64_t *chan, nesim_error *err)
{
    const lrt *l = &m->L[layer];
    double *u = malloc((l->in ? l->in : 1) * sizeof *u), vth;
    if (!u)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = nesim_coded_dense_input(&l->opts, x, l->in, u, &vth, err);
    for (size_t i = 0; !rc && i < l->in; i++) {
        int64_t N = (int64_t)llround(u[i] / vth);
        chan[i] += (uint64_t)nesim_coding_spikes(l->opts.coding, N, T);
        for (int64_t t = 0; N && m->sink.spike && t < T; t++) {
            int sp = nesim_coding_spike(l->opts.coding, N, T, t);
            if (sp)
                m->sink.spike(m->sink.user, layer, (uint32_t)i, t0 + t, sp);
        }
    }
    free(u);
    return rc;
}

void nesim_infer_set_sink(nesim_infer *m, const nesim_infer_sink *sink)
{
    if (sink)
        m->sink = *sink;
    else
        memset(&m->sink, 0, sizeof m->sink);
}

typedef struct stream_spike_ctx {
    nesim_infer *m;
    size_t layer;
} stream_spike_ctx;

static void stream_spike(void *user, uint32_t channel, int64_t tick, int sign)
{
    stream_spike_ctx *c = user;
    c->m->sink.spike(c->m->sink.user, c->layer, channel, tick, sign);
}

static void stream_step(void *user, int64_t tick, int64_t events)
{
    stream_spike_ctx *c = user;
    c->m->cur_layer = c->layer;
    on_step(c->m, tick, events);
}

/* The ANN path of one layer: exact activations, no coding. */
static int dense_layer(const lrt *l, const float *x, float *y, nesim_error *err)
{
    size_t n = l->in > l->out ? l->in : l->out;
    double *u = malloc(2 * n * sizeof *u);
    if (!u)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->in; i++)
        u[i] = x[i];
    int rc = NESIM_OK;
    if (l->sl->type == NESIM_LAYER_LINEAR)
        rc = nesim_linear_dense_ref(&l->lin, u, u + n, NESIM_DENSE_F64, err);
    else
        nesim_conv2d_dense(&l->conv, u, u + n);
    for (size_t j = 0; j < l->out; j++)
        y[j] = (float)u[n + j];
    free(u);
    return rc;
}

int nesim_infer_run(nesim_infer *m, const float *x, size_t samples, float *y, int dense,
                    nesim_infer_report *rep, nesim_infer_progress progress, void *user,
                    nesim_error *err)
{
    for (size_t i = 0; i < m->n; i++) {
        lrt *l = &m->L[i];
        nesim_layer_report *r = &m->rep[i];
        uint64_t *chan = r->chan_spikes;
        memset(r, 0, sizeof *r);
        r->chan_spikes = chan;
        memset(chan, 0, (l->in ? l->in : 1) * sizeof *chan);
        r->src = l->src;
        r->name = l->sl->name;
        r->type = nesim_layer_type_name(l->sl->type);
        int coded = l->sl->type == NESIM_LAYER_LINEAR || l->sl->type == NESIM_LAYER_CONV2D;
        r->coding = coded ? (l->sl->graded ? "none" : nesim_coding_name(l->sl->coding)) : NULL;
        r->in = l->in;
        r->out = l->out;
        r->st.first_tick = r->st.last_tick = -1;
        if (l->sl->type == NESIM_LAYER_LINEAR)
            r->dense_macs = (double)l->in * (double)l->out * (double)samples;
        else if (l->sl->type == NESIM_LAYER_CONV2D)
            r->dense_macs = (double)l->out * (double)(l->conv.c * l->conv.kh * l->conv.kw) * (double)samples;
        r->weight_bytes = (double)(l->w.nbytes + l->s.nbytes + l->b.nbytes);
        r->weights = (double)l->w.count;
        r->zero_weights = l->zeros;
        r->weight_bits = l->w.count ? 8.0 * (double)nesim_dtype_size(l->w.dtype) : 0;
    }
    int64_t tick = 0;
    m->n_act = 0;
    m->act_oom = 0;
    if (m->act)
        memset(m->act, 0, m->cap_act * sizeof *m->act);
    for (size_t i = 0; i < m->n; i++) {
        m->L[i].opts.on_step = dense ? NULL : on_step;
        m->L[i].opts.user = m;
    }
    for (size_t s = 0; s < samples; s++) {
        const float *in = m->start_x ? NULL : x + s * m->in_size;
        /* a layer reads the model input or an earlier layer's output */
        int64_t ready = m->start_t0 ? m->start_t0[s] : tick; /* tick at which the input is complete */
        for (size_t i = m->start; i < m->n; i++) {
            lrt *l = &m->L[i];
            const float *cur = i == m->start && m->start_x ? m->start_x + s * l->in : l->src < 0 ? in : m->out[l->src];
            int64_t start = i == m->start && m->start_x ? ready : l->src < 0 ? ready : m->done[l->src];
            if (i == m->start && m->start_vth)
                l->opts.vth = m->start_vth[s];
            float *nx = m->out[i];
            nesim_coded_stats st;
            int rc = NESIM_OK, coded = l->sl->type == NESIM_LAYER_LINEAR || l->sl->type == NESIM_LAYER_CONV2D;
            l->opts.t0 = start;
            m->done[i] = start;
            m->cur_layer = i;
            if (l->in_seg && !dense)
                continue; /* run by its chain's head */
            if (l->seg > 1 && !dense) {
                nesim_stream_layer S[64];
                nesim_coded_stats acc[64];
                stream_spike_ctx sctx[64];
                size_t n = l->seg < 64 ? l->seg : 64;
                for (size_t k = 0; k < n; k++) {
                    S[k].L = &m->L[i + k].lin;
                    S[k].in = m->L[i + k].opts;
                    S[k].relu = m->L[i + k].sl->activation == NESIM_ACT_RELU;
                    S[k].chan_spikes = m->rep[i + k].chan_spikes;
                    sctx[k] = (stream_spike_ctx){m, i + k};
                    S[k].on_spike = m->sink.spike ? stream_spike : NULL;
                    S[k].spike_user = &sctx[k];
                    S[k].in.on_step = stream_step;
                    S[k].in.user = &sctx[k];
                    memset(&acc[k], 0, sizeof acc[k]);
                    acc[k].first_tick = acc[k].last_tick = -1;
                }
                int64_t end;
                float *yl = m->out[i + n - 1];
                if ((rc = nesim_stream_forward(S, n, cur, yl, acc, start, &end, err)))
                    return nesim_context(err, "sample %zu: ", s);
                for (size_t k = 0; k < n; k++) {
                    add_stats(&m->rep[i + k].st, &acc[k]);
                    m->done[i + k] = end;
                }
                if (end > tick)
                    tick = end;
                continue;
            }
            if (coded && (dense || l->sl->graded)) {
                rc = dense_layer(l, cur, nx, err);
                if (!rc && !dense) {
                    /* graded input: one MAC per nonzero input and target */
                    nesim_layer_report *gr = &m->rep[i];
                    for (size_t c = 0; c < l->in; c++) {
                        if (cur[c] == 0) {
                            gr->st.silent++;
                            continue;
                        }
                        gr->chan_spikes[c]++; /* one message per nonzero value */
                        gr->graded_macs += (double)nesim_infer_layer_targets(m, i, c, NULL, 0);
                    }
                    gr->st.inputs += (int64_t)l->in;
                    gr->st.samples++;
                }
            } else if (l->sl->type == NESIM_LAYER_LINEAR) {
                rc = nesim_coded_linear_forward(&l->lin, &l->opts, cur, nx, &st, err);
            } else if (l->sl->type == NESIM_LAYER_CONV2D) {
                rc = nesim_conv2d_forward(&l->conv, &l->opts, cur, nx, &st, err);
            } else if (l->sl->type == NESIM_LAYER_FLATTEN) {
                memcpy(nx, cur, l->in * sizeof *nx);
            } else {
                nesim_pool2d(cur, l->in_dim[0], l->in_dim[1], l->in_dim[2], (size_t)l->sl->kernel[0],
                             (size_t)l->sl->kernel[1], (size_t)l->sl->stride[0], (size_t)l->sl->stride[1],
                             l->sl->type == NESIM_LAYER_AVGPOOL2D, nx);
            }
            if (rc)
                return nesim_context(err, "sample %zu: ", s);
            if (coded && !dense && !l->sl->graded) {
                if ((rc = count_channels(m, i, cur, st.steps, start, m->rep[i].chan_spikes, err)))
                    return nesim_context(err, "sample %zu: ", s);
                add_stats(&m->rep[i].st, &st);
                if (m->sink.code)
                    m->sink.code(m->sink.user, i, s, start, st.steps, st.vth);
                m->done[i] = st.t_end;
                if (st.t_end > tick)
                    tick = st.t_end;
            }
            if (l->sl->activation == NESIM_ACT_RELU)
                for (size_t j = 0; j < l->out; j++)
                    nx[j] = nx[j] > 0 ? nx[j] : 0;
        }
        if (y)
            memcpy(y + s * m->out_size, m->out[m->n - 1], m->out_size * sizeof *y);
        if (m->sink.sample && !dense)
            m->sink.sample(m->sink.user, s, ready, tick);
        if (progress && progress(user, (int64_t)s + 1, (int64_t)samples))
            return nesim_fail(err, NESIM_EIO, "stopped after %zu samples", s + 1);
    }
    memset(rep, 0, sizeof *rep);
    rep->n_layers = m->n;
    rep->layers = m->rep;
    rep->samples = (int64_t)samples;
    rep->ticks = tick;
    if (m->act_oom)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory recording activity");
    rep->activity = m->act;
    double sum = 0;
    for (size_t t = 0; t < m->n_act; t++) {
        rep->activity_max = m->act[t] > rep->activity_max ? m->act[t] : rep->activity_max;
        sum += (double)m->act[t];
    }
    rep->activity_mean = tick > 0 ? sum / (double)tick : 0;
    for (size_t i = 0; i < m->n; i++) {
        nesim_coded_stats *st = &m->rep[i].st;
        if (st->samples)
            st->vth /= (double)st->samples;
        st->frac_small = st->inputs ? (double)(st->inputs - st->hist[NESIM_CODED_HIST]) / (double)st->inputs : 0;
        st->spikes_per_channel = st->inputs ? (double)st->spikes / (double)st->inputs : 0;
        st->t_end = tick;
        rep->spikes += st->spikes;
        rep->sops += st->sops;
        rep->dense_macs += m->rep[i].dense_macs;
    }
    return NESIM_OK;
}

int nesim_infer_run_from(nesim_infer *m, size_t start, const float *x, const double *vth,
                         const int64_t *t0, size_t samples, float *y, int coding, double k,
                         nesim_infer_report *rep, nesim_error *err)
{
    if (start >= m->n)
        return nesim_fail(err, NESIM_EINVAL, "replay: no layer %zu", start);
    const lrt *h = &m->L[start];
    if (h->sl->type != NESIM_LAYER_LINEAR && h->sl->type != NESIM_LAYER_CONV2D)
        return nesim_fail(err, NESIM_EINVAL, "replay: layer '%s' does not code spikes", h->sl->name);
    if (h->in_seg || h->sl->graded)
        return nesim_fail(err, NESIM_EINVAL, "replay: layer '%s' takes %s input; replay starts at a coded layer",
                          h->sl->name, h->sl->graded ? "graded" : "its spikes from an overlapping IF");
    for (size_t i = start + 1; i < m->n; i++)
        if (m->L[i].src < (long)start)
            return nesim_fail(err, NESIM_EINVAL, "replay: layer '%s' reads from before '%s'", m->L[i].sl->name,
                              h->sl->name);
    nesim_coded_opts saved[256];
    size_t n = m->n < 256 ? m->n : 256;
    for (size_t i = 0; i < n; i++)
        saved[i] = m->L[i].opts;
    for (size_t i = start + 1; i < n; i++) {
        if (coding >= 0)
            m->L[i].opts.coding = (nesim_coding)coding;
        if (k > 0 && m->L[i].opts.vth == 0)
            m->L[i].opts.k = k;
    }
    m->start = start;
    m->start_x = x;
    m->start_vth = vth;
    m->start_t0 = t0;
    int rc = nesim_infer_run(m, NULL, samples, y, 0, rep, NULL, NULL, err);
    m->start = 0;
    m->start_x = NULL;
    m->start_vth = NULL;
    m->start_t0 = NULL;
    for (size_t i = 0; i < n; i++) {
        nesim_coded_opts keep = m->L[i].opts;
        m->L[i].opts = saved[i];
        m->L[i].opts.on_step = keep.on_step;
        m->L[i].opts.user = keep.user;
    }
    return rc;
}
