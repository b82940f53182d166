/* infer.c — a model's layers, run sample by sample (see infer.h).
 *
 * The layers come loaded from net/layers.h; here they get their kernels
 * (coded linear, conv2d, overlapping chains) and their observers, and the
 * samples are played in virtual time. Spikes, per-channel counts and count
 * statistics come from the kernels themselves (sim/coding.h), once. */
#include "sim/infer.h"


#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/par.h"
#include "base/mem.h"
#include "sim/conv.h"
#include "sim/stream.h"

typedef struct nesim_infer nesim_infer;

typedef struct lctx {
    nesim_infer *m;
    size_t layer;
} lctx;

typedef struct lrt {
    const nesim_layer *def;
    nesim_coded_linear lin;
    nesim_conv2d conv;
    nesim_coded_opts opts;
    int ready;                 /* its tensors are made and its kernels set up (layer_ready) */
} lrt;

struct nesim_infer {
    nesim_layers *g;
    lrt *L;
    size_t n;
    float **out;               /* each layer's output for the current sample */
    int64_t *done;             /* tick at which each layer's output is complete */
    nesim_infer_sink sink;     /* observers (traces); zero when none */
    lctx *ctx;                 /* per layer: who the observers hear from */
    nesim_stream_layer *S;     /* a chain's layers (scratch, n) */
    nesim_coded_stats *acc;    /* a chain's stats (scratch, n) */
    nesim_coded_opts *saved;   /* replay: the options it overrides (n) */
    size_t start;              /* first layer run (replay); 0 normally */
    const float *start_x;      /* replay: inputs of layer start */
    const double *start_vth;   /* replay: its thresholds per sample */
    const int64_t *start_t0;   /* replay: its first tick per sample */
    int64_t *act;              /* events per tick */
    size_t n_act, cap_act;
    int act_oom;
    nesim_layer_report *rep;
    /* a run in progress (begin, feed..., finish) */
    int64_t run_tick;          /* the tick the next sample may start at */
    size_t run_sample, run_total;
    int run_dense;
    size_t batch;              /* samples played layer by layer together (nesim_infer_set_batch) */
    double synth_first_s;      /* synthesis seconds before the first coded layer could play */
    int started;               /* a coded layer has been made ready */
    nesim_comm *comm;          /* ranks (nesim_infer_set_comm), or NULL */
    int split_obs;             /* observers may hear each sample on one rank (nesim_infer_set_split_observers) */
    int run_split;             /* this run does: begin decided, finish sums */
};

static void setup_opts(lrt *l)
{
    const nesim_spec_layer *sl = l->def->sl;
    nesim_coded_opts_init(&l->opts);
    l->opts.coding = sl->coding;
    l->opts.k = sl->k > 0 ? sl->k : 3;
    l->opts.vth = sl->adaptive ? 0 : sl->threshold;
}

static int setup_kernels(lrt *l, nesim_error *err)
{
    const nesim_layer *d = l->def;
    const nesim_spec_layer *sl = d->sl;
    if (sl->type == NESIM_LAYER_LINEAR) {
        int rc = nesim_coded_linear_init(&l->lin, sl->name, &d->w, d->s.data ? &d->s : NULL, d->group,
                                         d->b.data ? &d->b : NULL, d->in, 0, err);
        l->lin.nnz_in = d->nnz_in;
        return rc;
    }
    if (sl->type == NESIM_LAYER_CONV2D)
        return nesim_conv2d_init(&l->conv, sl->name, &d->w, d->b.data ? &d->b : NULL, d->in_dim[0], d->in_dim[1],
                                 d->in_dim[2], d->sh, d->sw, d->ph, d->pw, err);
    return NESIM_OK;
}

/* Samples a layer-major pass plays together: a coded linear layer's batch
 * (sim/coded.c plays up to 16 samples through one pass over its weight). */
#define INFER_BATCH 16

void nesim_infer_set_batch(nesim_infer *m, size_t samples) { m->batch = samples; }

void nesim_infer_set_threads(nesim_infer *m, int threads)
{
    for (size_t i = 0; i < m->n; i++)
        m->L[i].opts.threads = threads > 0 ? threads : 1;
}

void nesim_infer_set_comm(nesim_infer *m, nesim_comm *comm)
{
    m->comm = nesim_comm_size(comm) > 1 ? comm : NULL;
    for (size_t i = 0; i < m->n; i++)
        m->L[i].opts.comm = m->comm;
}

int nesim_infer_open(const nesim_spec *spec, nesim_infer **out, nesim_error *err)
{
    *out = NULL;
    nesim_layers *g;
    int rc = nesim_layers_open_lazy(spec, &g, err);
    if (rc)
        return rc;
    size_t n = nesim_layers_count(g);
    nesim_infer *m = calloc(1, sizeof *m);
    if (!m || !(m->L = calloc(n, sizeof *m->L)) || !(m->rep = calloc(n, sizeof *m->rep)) ||
        !(m->out = calloc(n, sizeof *m->out)) || !(m->done = calloc(n, sizeof *m->done)) ||
        !(m->ctx = calloc(n, sizeof *m->ctx)) || !(m->S = calloc(n, sizeof *m->S)) ||
        !(m->acc = calloc(n, sizeof *m->acc)) || !(m->saved = calloc(n, sizeof *m->saved))) {
        if (m)
            m->g = g;
        nesim_infer_close(m);
        if (!m)
            nesim_layers_close(g);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    m->g = g;
    m->n = n;
    m->batch = INFER_BATCH;
    for (size_t i = 0; i < n; i++) {
        lrt *l = &m->L[i];
        l->def = nesim_layers_get(g, i);
        m->ctx[i] = (lctx){m, i};
        setup_opts(l);
        /* a layer with synthetic weights still to make gets its kernels when
         * it first plays (layer_ready); the others now */
        if (nesim_layers_is_ready(g, i) && !(rc = setup_kernels(l, err)))
            l->ready = 1;
        if (!rc && (!(m->out[i] = malloc((l->def->out ? l->def->out : 1) * sizeof(float))) ||
                    !(m->rep[i].chan_spikes = calloc(l->def->in ? l->def->in : 1, sizeof(uint64_t)))))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        if (rc) {
            nesim_context(err, "%s: layers[%zu] (%s): ", spec->file, i, l->def->sl->name);
            nesim_infer_close(m);
            return rc;
        }
    }
    *out = m;
    return NESIM_OK;
}

void nesim_infer_close(nesim_infer *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->L && i < m->n; i++)
        nesim_conv2d_free(&m->L[i].conv);
    for (size_t i = 0; m->out && i < m->n; i++)
        free(m->out[i]);
    for (size_t i = 0; m->rep && i < m->n; i++)
        free(m->rep[i].chan_spikes);
    free(m->out);
    free(m->done);
    free(m->ctx);
    free(m->S);
    free(m->acc);
    free(m->saved);
    free(m->act);
    free(m->L);
    free(m->rep);
    nesim_layers_close(m->g);
    free(m);
}

/* Makes layer i's synthetic tensors (if still to be made) and sets up its
 * kernels, once: right before the layer first plays. */
static int layer_ready(nesim_infer *m, size_t i, nesim_error *err)
{
    lrt *l = &m->L[i];
    if (!l->ready) {
        int rc = nesim_layers_ready(m->g, i, err);
        if (!rc && (rc = setup_kernels(l, err)))
            nesim_context(err, "%s: layers[%zu] (%s): ", nesim_layers_spec(m->g)->file, i, l->def->sl->name);
        if (rc)
            return rc;
        l->ready = 1;
    }
    if (!m->started && l->def->coded) {
        m->started = 1;
        m->synth_first_s = nesim_layers_synth_s(m->g);
    }
    return NESIM_OK;
}

/* Every layer's weights counted: a layer never made is made now (a
 * released one keeps its counts). */
static int all_counted(nesim_infer *m, nesim_error *err)
{
    int rc = NESIM_OK;
    for (size_t i = 0; i < m->n && !rc; i++)
        if (!nesim_layers_counted(m->g, i))
            rc = layer_ready(m, i, err);
    return rc;
}

/* After the run's last batch passed layer i: its synthetic weight is given
 * back (the next layer's weight is made in its buffers), so a stack of
 * layers needs about one layer's weights in memory, not all of them. */
static void layer_spent(nesim_infer *m, size_t i)
{
    if (nesim_layers_release(m->g, i))
        m->L[i].ready = 0; /* its kernels read the old views: set up again if it plays again */
}

double nesim_infer_synth_s(const nesim_infer *m) { return nesim_layers_synth_s(m->g); }
double nesim_infer_synth_first_s(const nesim_infer *m)
{
    return m->started ? m->synth_first_s : nesim_layers_synth_s(m->g);
}

const nesim_layers *nesim_infer_graph(const nesim_infer *m) { return m->g; }
size_t nesim_infer_input_size(const nesim_infer *m) { return nesim_layers_input_size(m->g); }
size_t nesim_infer_output_size(const nesim_infer *m) { return nesim_layers_output_size(m->g); }
size_t nesim_infer_layers(const nesim_infer *m) { return m->n; }
size_t nesim_infer_layer_inputs(const nesim_infer *m, size_t layer) { return m->L[layer].def->in; }

void nesim_infer_set_split_observers(nesim_infer *m, int on) { m->split_obs = on; }
int nesim_infer_split_observers(const nesim_infer *m) { return m->run_split; }

void nesim_infer_set_sink(nesim_infer *m, const nesim_infer_sink *sink)
{
    if (sink)
        m->sink = *sink;
    else
        memset(&m->sink, 0, sizeof m->sink);
}

/* ---- observers ---- */

/* Room for the activity of ticks [0, n), zero where new; nonzero when out
 * of memory (nothing changed). */
static int act_room(nesim_infer *m, size_t n)
{
    size_t old = m->cap_act;
    int64_t *a = nesim_grown(m->act, n, &m->cap_act, sizeof *a, 1024);
    if (!a)
        return 1;
    memset(a + old, 0, (m->cap_act - old) * sizeof *a);
    m->act = a;
    return 0;
}

/* on_step: events per tick, summed over layers (the run's activity) */
static void on_step(void *user, int64_t tick, int64_t events)
{
    const lctx *c = user;
    nesim_infer *m = c->m;
    if (tick < 0 || m->act_oom)
        return;
    if (act_room(m, (size_t)tick + 1)) {
        m->act_oom = 1;
        return;
    }
    m->act[tick] += events;
    if (m->sink.activity && events) {
        /* SOPs per input spike: every output for linear, a conv input's mean coverage */
        const nesim_layer *d = m->L[c->layer].def;
        double fan = d->in ? d->dense_taps / (double)d->in : 0;
        m->sink.activity(m->sink.user, c->layer, tick, events, (int64_t)((double)events * fan));
    }
    if ((size_t)tick + 1 > m->n_act)
        m->n_act = (size_t)tick + 1;
}

static void on_spike(void *user, uint32_t channel, int64_t tick, int sign)
{
    const lctx *c = user;
    c->m->sink.spike(c->m->sink.user, c->layer, channel, tick, sign);
}

/* ---- running ---- */

/* The ANN path of one layer: exact activations, no coding. */
static int dense_layer(const lrt *l, const float *x, float *y, nesim_error *err)
{
    const nesim_layer *d = l->def;
    size_t n = d->in > d->out ? d->in : d->out;
    double *u = malloc(2 * n * sizeof *u);
    if (!u)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t i = 0; i < d->in; i++)
        u[i] = x[i];
    int rc = NESIM_OK;
    if (d->sl->type == NESIM_LAYER_LINEAR)
        rc = nesim_linear_dense_ref(&l->lin, u, u + n, NESIM_DENSE_F64, err);
    else
        nesim_conv2d_dense(&l->conv, u, u + n);
    for (size_t j = 0; j < d->out; j++)
        y[j] = (float)u[n + j];
    free(u);
    return rc;
}

/* A graded layer ("coding": "none") in a spiking run: the dense product, and
 * one message and one MAC per nonzero input and target. */
static int graded_layer(nesim_infer *m, size_t i, const float *cur, float *nx, nesim_error *err)
{
    const lrt *l = &m->L[i];
    int rc = dense_layer(l, cur, nx, err);
    if (rc)
        return rc;
    nesim_layer_report *gr = &m->rep[i];
    for (size_t c = 0; c < l->def->in; c++) {
        if (cur[c] == 0) {
            gr->st.silent++;
            continue;
        }
        if (cur[c] != 1 && cur[c] != -1)
            gr->graded_nonbinary = 1;
        gr->chan_spikes[c]++;
        gr->graded_macs += (double)nesim_layer_targets(l->def, c, NULL, 0);
    }
    gr->st.inputs += (int64_t)l->def->in;
    gr->st.samples++;
    return NESIM_OK;
}

static void report_init(nesim_infer *m, size_t samples)
{
    for (size_t i = 0; i < m->n; i++) {
        const nesim_layer *d = m->L[i].def;
        nesim_layer_report *r = &m->rep[i];
        uint64_t *chan = r->chan_spikes;
        memset(r, 0, sizeof *r);
        r->chan_spikes = chan;
        memset(chan, 0, (d->in ? d->in : 1) * sizeof *chan);
        r->def = d;
        r->src = d->src;
        r->name = d->sl->name;
        r->type = nesim_layer_type_name(d->sl->type);
        r->coding = d->coded ? (d->sl->graded ? "none" : nesim_coding_name(d->sl->coding)) : NULL;
        r->in = d->in;
        r->out = d->out;
        nesim_coded_stats_init(&r->st);
        r->dense_macs = d->dense_macs * (double)samples;
    }
}

/* Runs the chain of overlapping layers that starts at layer i. */
static int run_chain(nesim_infer *m, size_t i, const float *cur, int64_t start, int64_t *tick, nesim_error *err)
{
    size_t n = m->L[i].def->seg;
    for (size_t k = 0; k < n; k++) {
        int rc = layer_ready(m, i + k, err);
        if (rc)
            return rc;
        lrt *l = &m->L[i + k];
        m->S[k].L = &l->lin;
        m->S[k].in = l->opts;
        m->S[k].relu = l->def->sl->activation == NESIM_ACT_RELU;
        nesim_coded_stats_init(&m->acc[k]);
    }
    int64_t end;
    int rc = nesim_stream_forward(m->S, n, cur, m->out[i + n - 1], m->acc, start, &end, err);
    if (rc)
        return rc;
    for (size_t k = 0; k < n; k++) {
        nesim_coded_stats_add(&m->rep[i + k].st, &m->acc[k]);
        m->done[i + k] = end;
    }
    if (end > *tick)
        *tick = end;
    return NESIM_OK;
}

/* What a layer that does not code does to one sample: flatten or pool. */
static void plain_layer(const nesim_layer *d, const float *cur, float *nx)
{
    if (d->sl->type == NESIM_LAYER_FLATTEN)
        memcpy(nx, cur, d->in * sizeof *nx);
    else
        nesim_pool2d(cur, d->in_dim[0], d->in_dim[1], d->in_dim[2], (size_t)d->sl->kernel[0],
                     (size_t)d->sl->kernel[1], (size_t)d->sl->stride[0], (size_t)d->sl->stride[1],
                     d->sl->type == NESIM_LAYER_AVGPOOL2D, nx);
}

static void relu_if(const nesim_layer *d, float *nx)
{
    if (d->sl->activation == NESIM_ACT_RELU)
        for (size_t j = 0; j < d->out; j++)
            nx[j] = nx[j] > 0 ? nx[j] : 0;
}

int nesim_infer_dense(nesim_infer *m, const float *x, size_t samples, float *y, nesim_error *err)
{
    const size_t in_size = nesim_infer_input_size(m), out_size = nesim_infer_output_size(m);
    for (size_t s = 0; s < samples; s++) {
        const float *in = x + s * in_size;
        for (size_t i = 0; i < m->n; i++) {
            const nesim_layer *d = m->L[i].def;
            const float *cur = d->src < 0 ? in : m->out[d->src];
            int rc = layer_ready(m, i, err);
            if (rc)
                return rc;
            if (d->coded)
                rc = dense_layer(&m->L[i], cur, m->out[i], err);
            else
                plain_layer(d, cur, m->out[i]);
            if (rc)
                return nesim_context(err, "sample %zu: ", s);
            relu_if(d, m->out[i]);
        }
        if (y)
            memcpy(y + s * out_size, m->out[m->n - 1], out_size * sizeof *y);
    }
    return NESIM_OK;
}

static int layer_major(const nesim_infer *m);

/* Every layer's observers on (the run's counters, then the sink) or off. */
static void set_observers(nesim_infer *m, int on)
{
    for (size_t i = 0; i < m->n; i++) {
        nesim_coded_opts *o = &m->L[i].opts;
        o->on_step = on ? on_step : NULL;
        o->user = &m->ctx[i];
        o->chan_spikes = on ? m->rep[i].chan_spikes : NULL;
        o->on_spike = on && m->sink.spike ? on_spike : NULL;
        o->spike_user = &m->ctx[i];
    }
}

void nesim_infer_begin(nesim_infer *m, size_t total, int dense)
{
    report_init(m, total);
    m->run_tick = 0;
    m->run_sample = 0;
    m->run_total = total;
    m->run_dense = dense;
    m->run_split = m->split_obs && m->comm && !dense && layer_major(m);
    m->n_act = 0;
    m->act_oom = 0;
    if (m->act)
        memset(m->act, 0, m->cap_act * sizeof *m->act);
    set_observers(m, !dense);
}

/* Coded layer i has played sample s from tick `start` (st): counted, told to
 * the code observer, its output ready at st->t_end; returns the run's tick. */
static int64_t layer_done(nesim_infer *m, size_t i, size_t s, int64_t start, const nesim_coded_stats *st,
                          int64_t tick)
{
    nesim_coded_stats_add(&m->rep[i].st, st);
    if (m->sink.code)
        m->sink.code(m->sink.user, i, s, start, st->steps, st->vth);
    m->done[i] = st->t_end;
    return st->t_end > tick ? st->t_end : tick;
}

/* ---- layer by layer over a batch ---- */

/* A run can play a batch of samples layer by layer when every layer is a
 * spiking linear layer or a plain one (no conv2d, graded layer, chain or
 * replay start) and it is not the dense ANN path. */
static int layer_major(const nesim_infer *m)
{
    if (m->run_dense || m->start || m->start_x || m->batch < 2)
        return 0;
    for (size_t i = 0; i < m->n; i++) {
        const nesim_layer *d = m->L[i].def;
        if (d->in_seg || d->seg > 1 || d->sl->type == NESIM_LAYER_CONV2D)
            return 0;
        if (d->sl->type == NESIM_LAYER_LINEAR && (!d->coded || d->sl->graded))
            return 0;
    }
    return 1;
}

typedef struct batch_scratch {
    float **out;               /* per layer: [B, out] */
    int64_t **counts;          /* per linear layer: [B, in] */
    nesim_coded_stats **st;    /* per linear layer: [B] */
} batch_scratch;

static void batch_scratch_free(batch_scratch *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->out)
            free(b->out[i]);
        if (b->counts)
            free(b->counts[i]);
        if (b->st)
            free(b->st[i]);
    }
    free(b->out);
    free(b->counts);
    free(b->st);
}

static int batch_scratch_new(const nesim_infer *m, size_t B, batch_scratch *b)
{
    memset(b, 0, sizeof *b);
    if (!(b->out = calloc(m->n, sizeof *b->out)) || !(b->counts = calloc(m->n, sizeof *b->counts)) ||
        !(b->st = calloc(m->n, sizeof *b->st)))
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        const nesim_layer *d = m->L[i].def;
        if (!(b->out[i] = malloc(B * (d->out ? d->out : 1) * sizeof(float))))
            return -1;
        if (d->sl->type == NESIM_LAYER_LINEAR &&
            (!(b->counts[i] = malloc(B * (d->in ? d->in : 1) * sizeof(int64_t))) ||
             !(b->st[i] = malloc(B * sizeof(nesim_coded_stats)))))
            return -1;
    }
    return 0;
}

/* Several ranks, after pass 1 of a batch of B samples (rank r played the
 * samples nesim_par_split(B, 1, r, K)): every rank's counts and stats of
 * every linear layer, and the last layer's outputs, to every rank. */
static int exchange_batch(nesim_infer *m, batch_scratch *b, size_t B, nesim_error *err)
{
    const int K = nesim_comm_size(m->comm), me = nesim_comm_rank(m->comm);
    size_t *bytes = malloc((size_t)K * sizeof *bytes), lo, hi;
    if (!bytes)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = NESIM_OK;
    for (size_t i = 0; i < m->n && !rc; i++) {
        const nesim_layer *d = m->L[i].def;
        const int lin = d->sl->type == NESIM_LAYER_LINEAR, last = i + 1 == m->n;
        /* what pass 2 reads: counts and stats of linear layers, the last outputs */
        for (int part = 0; part < 3 && !rc; part++) {
            size_t w = part == 0 ? (lin ? d->in * sizeof(int64_t) : 0)
                     : part == 1 ? (lin ? sizeof(nesim_coded_stats) : 0)
                                 : (last ? d->out * sizeof(float) : 0);
            if (!w)
                continue;
            unsigned char *base = part == 0 ? (unsigned char *)b->counts[i]
                                : part == 1 ? (unsigned char *)b->st[i]
                                            : (unsigned char *)b->out[i];
            for (int r = 0; r < K; r++) {
                nesim_par_split(B, 1, r, K, &lo, &hi);
                bytes[r] = (hi - lo) * w;
            }
            nesim_par_split(B, 1, me, K, &lo, &hi);
            const void *all;
            if (!(rc = nesim_comm_allgatherv(m->comm, base + lo * w, bytes, &all, "the exchange of a batch's samples",
                                             err)))
                memcpy(base, all, B * w); /* blocks in rank order: samples in order */
        }
    }
    free(bytes);
    return rc;
}

/* Samples [k0, k0 + B) of x, layer by layer: each coded linear layer plays
 * the batch through one pass over its weight (pass 1, no observers, every
 * sample from tick 0); then, sample by sample in order, each layer's spikes
 * are placed in virtual time and the observers hear exactly what the
 * sample-by-sample loop would have told them (pass 2). Returns 1 without
 * having changed anything when pass 1 fails (weights given back are made
 * again as asked for; the caller plays the batch
 * sample by sample and reports the failure where it happens). */
static int feed_batch(nesim_infer *m, batch_scratch *b, const float *x, size_t k0, size_t B, float *y,
                      nesim_infer_progress progress, void *user, nesim_error *err)
{
    const size_t in_size = nesim_infer_input_size(m), out_size = nesim_infer_output_size(m);
    /* several ranks: each plays its block of the batch's samples through
     * every layer (its whole rows: a sample is computed as with one rank) */
    size_t a = 0, e = B;
    if (m->comm)
        nesim_par_split(B, 1, nesim_comm_rank(m->comm), nesim_comm_size(m->comm), &a, &e);
    int failed = 0;
    /* no later batch plays these layers: each can give back its weight */
    const int last = m->run_sample + k0 + B >= m->run_total;
    for (size_t i = 0; i < m->n && !failed; i++) {
        if (layer_ready(m, i, err))
            return -1;
        lrt *l = &m->L[i];
        const nesim_layer *d = l->def;
        const float *src = d->src < 0 ? x + k0 * in_size : b->out[d->src];
        const size_t src_w = d->src < 0 ? in_size : m->L[d->src].def->out;
        if (d->sl->type == NESIM_LAYER_LINEAR) {
            nesim_coded_opts o = l->opts;
            o.t0 = 0;
            o.comm = NULL;
            nesim_error e2 = {0};
            if (src_w != d->in ||
                (e > a && nesim_coded_linear_batch_counts(&l->lin, &o, src + a * src_w, e - a, b->out[i] + a * d->out,
                                                          b->st[i] + a, b->counts[i] + a * d->in, &e2)))
                failed = 1;
        } else {
            for (size_t k = a; k < e; k++)
                plain_layer(d, src + k * src_w, b->out[i] + k * d->out);
        }
        for (size_t k = a; !failed && k < e; k++)
            relu_if(d, b->out[i] + k * d->out);
        if (!failed && last)
            layer_spent(m, i);
    }
    if (m->comm) { /* every rank falls back if one failed; else each gets every sample's counts and stats */
        nesim_error e3 = {0};
        if (nesim_comm_agree(m->comm, failed ? NESIM_EINVAL : NESIM_OK, &e3))
            return nesim_comm_broken(m->comm) ? (*err = e3, -1) : 1;
        if (exchange_batch(m, b, B, err))
            return -1;
    } else if (failed) {
        return 1;
    }
    int64_t tick = m->run_tick;
    for (size_t k = 0; k < B; k++) {
        const size_t s = m->run_sample + k0 + k;
        const int64_t ready = tick;
        for (size_t i = 0; i < m->n; i++) {
            lrt *l = &m->L[i];
            const nesim_layer *d = l->def;
            int64_t start = d->src < 0 ? ready : m->done[d->src];
            l->opts.t0 = start;
            m->done[i] = start;
            if (d->sl->type != NESIM_LAYER_LINEAR)
                continue;
            nesim_coded_stats st = b->st[i][k]; /* relative to tick 0: moved to start */
            if (st.first_tick >= 0) {
                st.first_tick += start;
                st.last_tick += start;
            }
            st.t_end += start;
            /* split observers hear a sample on the rank that played it */
            int rc = m->run_split && (k < a || k >= e)
                         ? NESIM_OK
                         : nesim_coded_observe(&l->lin, &l->opts, b->counts[i] + k * d->in, st.steps, start, k0 + k,
                                               err);
            if (rc)
                return nesim_context(err, "sample %zu: ", s), -1;
            tick = layer_done(m, i, s, start, &st, tick);
        }
        if (y)
            memcpy(y + (k0 + k) * out_size, b->out[m->n - 1] + k * out_size, out_size * sizeof *y);
        m->run_tick = tick;
        if (m->sink.sample)
            m->sink.sample(m->sink.user, s, ready, tick);
        if (progress && progress(user, (int64_t)s + 1, (int64_t)m->run_total))
            return nesim_fail(err, NESIM_EIO, "stopped after %zu samples", s + 1), -1;
    }
    return 0;
}

static int feed_samples(nesim_infer *m, const float *x, size_t samples, float *y, nesim_infer_progress progress,
                        void *user, nesim_error *err);

int nesim_infer_feed(nesim_infer *m, const float *x, size_t samples, float *y, nesim_infer_progress progress,
                     void *user, nesim_error *err)
{
    if (!layer_major(m) || samples < 2)
        return feed_samples(m, x, samples, y, progress, user, err);
    const size_t in_size = nesim_infer_input_size(m), out_size = nesim_infer_output_size(m);
    /* several ranks split a batch by samples: each plays a whole batch of
     * its own per pass over a weight */
    const size_t per = m->batch * (size_t)nesim_comm_size(m->comm);
    const size_t B = samples < per ? samples : per;
    batch_scratch b;
    if (batch_scratch_new(m, B, &b)) { /* no memory for a batch: sample by sample */
        batch_scratch_free(&b, m->n);
        return feed_samples(m, x, samples, y, progress, user, err);
    }
    int rc = NESIM_OK;
    const size_t first = m->run_sample;
    for (size_t k0 = 0; k0 < samples && !rc; k0 += B) {
        const size_t n = samples - k0 < B ? samples - k0 : B;
        int r = feed_batch(m, &b, x, k0, n, y, progress, user, err);
        if (r > 0) { /* pass 1 failed: this batch sample by sample, which says where */
            m->run_sample = first + k0;
            rc = feed_samples(m, x + k0 * in_size, n, y ? y + k0 * out_size : NULL, progress, user, err);
            m->run_sample = first;
        } else if (r < 0) {
            rc = err->code ? err->code : NESIM_EINTERNAL;
        }
    }
    batch_scratch_free(&b, m->n);
    if (!rc)
        m->run_sample = first + samples;
    return rc;
}

static int feed_each(nesim_infer *m, const float *x, size_t samples, float *y, nesim_infer_progress progress,
                        void *user, nesim_error *err)
{
    const size_t in_size = nesim_infer_input_size(m), out_size = nesim_infer_output_size(m);
    const int dense = m->run_dense;
    int64_t tick = m->run_tick;
    for (size_t k = 0; k < samples; k++) {
        const size_t s = m->run_sample + k; /* the run's sample index */
        const float *in = m->start_x ? NULL : x + k * in_size;
        /* a layer reads the model input or an earlier layer's output */
        int64_t ready = m->start_t0 ? m->start_t0[s] : tick; /* tick at which the input is complete */
        for (size_t i = m->start; i < m->n; i++) {
            lrt *l = &m->L[i];
            const nesim_layer *d = l->def;
            int first = i == m->start && m->start_x;
            const float *cur = first ? m->start_x + s * d->in : d->src < 0 ? in : m->out[d->src];
            int64_t start = first ? ready : d->src < 0 ? ready : m->done[d->src];
            if (i == m->start && m->start_vth)
                l->opts.vth = m->start_vth[s];
            float *nx = m->out[i];
            int rc = layer_ready(m, i, err);
            if (rc)
                return rc;
            l->opts.t0 = start;
            m->done[i] = start;
            if (d->in_seg && !dense)
                continue; /* run by its chain's head */
            if (d->seg > 1 && !dense) {
                if ((rc = run_chain(m, i, cur, start, &tick, err)))
                    return nesim_context(err, "sample %zu: ", s);
                continue;
            }
            nesim_coded_stats st;
            if (d->coded && (dense || d->sl->graded)) {
                rc = dense ? dense_layer(l, cur, nx, err) : graded_layer(m, i, cur, nx, err);
            } else if (d->sl->type == NESIM_LAYER_LINEAR) {
                rc = nesim_coded_linear_forward(&l->lin, &l->opts, cur, nx, &st, err);
            } else if (d->sl->type == NESIM_LAYER_CONV2D) {
                rc = nesim_conv2d_forward(&l->conv, &l->opts, cur, nx, &st, err);
            } else {
                plain_layer(d, cur, nx);
            }
            if (rc)
                return nesim_context(err, "sample %zu: ", s);
            if (d->coded && !dense && !d->sl->graded)
                tick = layer_done(m, i, s, start, &st, tick);
            relu_if(d, nx);
        }
        if (y)
            memcpy(y + k * out_size, m->out[m->n - 1], out_size * sizeof *y);
        m->run_tick = tick;
        if (m->sink.sample && !dense)
            m->sink.sample(m->sink.user, s, ready, tick);
        if (progress && progress(user, (int64_t)s + 1, (int64_t)m->run_total))
            return nesim_fail(err, NESIM_EIO, "stopped after %zu samples", s + 1);
    }
    m->run_sample += samples;
    return NESIM_OK;
}

/* Sample by sample; with split observers, rank 0 alone tells them (every
 * rank plays every sample here). */
static int feed_samples(nesim_infer *m, const float *x, size_t samples, float *y, nesim_infer_progress progress,
                        void *user, nesim_error *err)
{
    if (!m->run_split || nesim_comm_rank(m->comm) == 0)
        return feed_each(m, x, samples, y, progress, user, err);
    set_observers(m, 0);
    int rc = feed_each(m, x, samples, y, progress, user, err);
    set_observers(m, 1);
    return rc;
}

/* Split observers: each rank counted the samples it told them; the run's
 * activity per tick and spikes per channel are the sums over ranks (exact:
 * integers, in any order). */
static int sum_observed(nesim_infer *m, nesim_error *err)
{
    int rc = m->act_oom ? nesim_fail(err, NESIM_ENOMEM, "out of memory recording activity") : NESIM_OK;
    if ((rc = nesim_comm_agree(m->comm, rc, err)))
        return rc;
    int64_t len = -(int64_t)m->n_act; /* the longest over ranks */
    if ((rc = nesim_comm_min_i64(m->comm, &len, "the length of the run's activity", err)))
        return rc;
    rc = act_room(m, (size_t)-len) ? nesim_fail(err, NESIM_ENOMEM, "out of memory recording activity") : NESIM_OK;
    if ((rc = nesim_comm_agree(m->comm, rc, err)))
        return rc;
    m->n_act = (size_t)-len;
    if (m->n_act && (rc = nesim_comm_sum_u64(m->comm, (uint64_t *)m->act, m->n_act, "the run's activity", err)))
        return rc;
    for (size_t i = 0; i < m->n && !rc; i++)
        if (m->L[i].def->in)
            rc = nesim_comm_sum_u64(m->comm, m->rep[i].chan_spikes, m->L[i].def->in, "the spikes per channel", err);
    return rc;
}

int nesim_infer_finish(nesim_infer *m, nesim_infer_report *rep, nesim_error *err)
{
    const int64_t tick = m->run_tick;
    memset(rep, 0, sizeof *rep);
    /* the report counts every layer's weights, played or not (a replay
     * from a later layer, a run of no samples) */
    int rc0 = all_counted(m, err);
    if (rc0)
        return rc0;
    rep->n_layers = m->n;
    rep->layers = m->rep;
    rep->samples = (int64_t)m->run_sample;
    rep->ticks = tick;
    if (m->run_split && (rc0 = sum_observed(m, err)))
        return rc0;
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
        nesim_coded_stats_finish(st);
        st->t_end = tick;
        rep->spikes += st->spikes;
        rep->sops += st->sops;
        rep->dense_macs += m->rep[i].dense_macs;
    }
    return NESIM_OK;
}

int nesim_infer_run(nesim_infer *m, const float *x, size_t samples, float *y, int dense,
                    nesim_infer_report *rep, nesim_infer_progress progress, void *user,
                    nesim_error *err)
{
    nesim_infer_begin(m, samples, dense);
    int rc = nesim_infer_feed(m, x, samples, y, progress, user, err);
    if (rc)
        return rc;
    return nesim_infer_finish(m, rep, err);
}

int nesim_infer_run_from(nesim_infer *m, size_t start, const float *x, const double *vth,
                         const int64_t *t0, size_t samples, float *y, int coding, double k,
                         nesim_infer_report *rep, nesim_error *err)
{
    if (start >= m->n)
        return nesim_fail(err, NESIM_EINVAL, "replay: no layer %zu", start);
    const nesim_layer *h = m->L[start].def;
    if (!h->coded)
        return nesim_fail(err, NESIM_EINVAL, "replay: layer '%s' does not code spikes", h->sl->name);
    if (h->in_seg || h->sl->graded)
        return nesim_fail(err, NESIM_EINVAL, "replay: layer '%s' takes %s input; replay starts at a coded layer",
                          h->sl->name, h->sl->graded ? "graded" : "its spikes from an overlapping IF");
    for (size_t i = start + 1; i < m->n; i++)
        if (m->L[i].def->src < (long)start)
            return nesim_fail(err, NESIM_EINVAL, "replay: layer '%s' reads from before '%s'", m->L[i].def->sl->name,
                              h->sl->name);
    for (size_t i = 0; i < m->n; i++)
        m->saved[i] = m->L[i].opts;
    for (size_t i = start + 1; i < m->n; i++) {
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
    for (size_t i = 0; i < m->n; i++)
        m->L[i].opts = m->saved[i];
    return rc;
}
