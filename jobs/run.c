/* run.c — a model spec run end to end (see run.h). */
#include "jobs/run.h"

#include "base/par.h"

#include <gsl/gsl_randist.h>
#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/mem.h"
#include "net/sanafe.h"
#include "base/rng.h"
#include "eval/cost.h"
#include "eval/report.h"
#include "net/estimate.h"
#include "eval/stats.h"
#include "net/chip.h"
#include "net/spec.h"
#include "net/tensor.h"
#include "sim/infer.h"
#include "sim/network.h"
#include "eval/chiptime.h"
#include "eval/roofline.h"
#include "traces/record.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Wall seconds of a run's phases, for the report's "phases_s": load (the
 * spec, tensor files, the network graph), synthesis (synthetic weights),
 * setup (chips, trace, the chip-time mapping), run, cost (mapping and
 * pricing after the run), report; first_event is what comes before the
 * first event: load, setup and the synthesis of the layers made before it
 * (a layer model makes each layer's synthetic weights when the layer first
 * plays, so that is the first coded layer's). synthesis (all of it, taken
 * out of run) appears only when the run made synthetic tensors. */
typedef struct phases {
    double start, mark;
    double load, synthesis, setup, run, cost, report;
    double synth_first; /* of synthesis: what came before the first event (layers are made as they first play) */
} phases;

/* Seconds since the last mark (and marks now). */
static double lap(phases *p)
{
    double t = now_s(), d = t - p->mark;
    p->mark = t;
    return d;
}

static void add_phases(json_t *r, phases *p)
{
    p->report += lap(p);
    json_t *j = json_object();
    json_object_set_new(j, "load", json_real(p->load));
    if (p->synthesis > 0) /* only when synthetic tensors were made (a trace keeps 0.0 as 0) */
        json_object_set_new(j, "synthesis", json_real(p->synthesis));
    json_object_set_new(j, "setup", json_real(p->setup));
    json_object_set_new(j, "first_event", json_real(p->load + p->synth_first + p->setup));
    json_object_set_new(j, "run", json_real(p->run));
    json_object_set_new(j, "cost", json_real(p->cost));
    json_object_set_new(j, "report", json_real(p->report));
    json_object_set_new(j, "total", json_real(p->mark - p->start));
    json_object_set_new(r, "phases_s", j);
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Where a layer run's samples come from, a batch at a time: an .npy of any
 * numeric dtype (memory-mapped, converted per batch), or heavy-tailed
 * synthetic rows from one RNG stream (the same values whatever the batch). */
typedef struct sample_source {
    nesim_tensor t;  /* an input file, or t.data NULL */
    gsl_rng *r;      /* synthetic */
    const char *path;
    size_t width, rows, next;
} sample_source;

static int source_open(sample_source *S, const nesim_run_opts *o, const nesim_spec *spec, size_t width,
                       nesim_error *err)
{
    memset(S, 0, sizeof *S);
    S->width = width;
    if (o->input) {
        S->path = o->input;
        int rc = nesim_npy_load(o->input, &S->t, err);
        if (rc)
            return rc;
        const nesim_tensor *t = &S->t;
        if (t->ndim < 1 || t->count == 0 || t->shape[0] < 1 || t->count / (size_t)t->shape[0] != width ||
            t->count % (size_t)t->shape[0])
            return nesim_fail(err, NESIM_EINVAL, "%s: expected [samples, ...] with %zu values per sample", o->input,
                              width);
        S->rows = (size_t)t->shape[0];
    } else if (o->random_n) {
        S->rows = (size_t)o->random_n;
        if (!(S->r = nesim_rng_new(o->has_seed ? o->seed : spec->seed, 1000)))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    } else {
        return nesim_fail(err, NESIM_EINVAL, "%s has layers: give --input X.npy or --random-input N", spec->file);
    }
    if (o->samples && o->samples < S->rows)
        S->rows = (size_t)o->samples;
    return NESIM_OK;
}

/* The next n rows into x (n * width floats); NaN/Inf is an error naming the
 * sample and value. */
static int source_read(sample_source *S, float *x, size_t n, nesim_error *err)
{
    const size_t w = S->width;
    for (size_t k = 0; k < n * w; k++) {
        if (S->r) {
            x[k] = (float)gsl_ran_tdist(S->r, 3.0);
            continue;
        }
        double v = nesim_tensor_get(&S->t, S->next * w + k);
        if (!isfinite(v))
            return nesim_fail(err, NESIM_EINVAL, "%s: sample %zu, value %zu is %s", S->path, S->next + k / w, k % w,
                              isnan(v) ? "NaN" : "infinite");
        x[k] = (float)v;
    }
    S->next += n;
    return NESIM_OK;
}

static void source_close(sample_source *S)
{
    nesim_tensor_release(&S->t);
    if (S->r)
        gsl_rng_free(S->r);
}

/* Labels: small (one value per sample), read whole; each must be a class
 * index 0..classes-1 of any integer or float dtype. */
static int load_labels(const char *path, size_t rows, size_t classes, int32_t **out, nesim_error *err)
{
    nesim_tensor t;
    int rc = nesim_npy_load(path, &t, err);
    if (rc)
        return rc;
    if (t.ndim < 1 || t.count != (t.ndim ? (size_t)t.shape[0] : 1))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: expected [samples] labels", path);
    else if (t.count < rows)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: %zu labels for %zu samples", path, t.count, rows);
    else if (!(*out = malloc((rows ? rows : 1) * sizeof **out)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t s = 0; !rc && s < rows; s++) {
        double v = nesim_tensor_get(&t, s);
        if (!(v >= 0 && v < (double)classes && v == floor(v)))
            rc = nesim_fail(err, NESIM_EINVAL, "%s: label %zu is %g, not a class index 0..%zu", path, s, v,
                            classes - 1);
        else
            (*out)[s] = (int32_t)v;
    }
    nesim_tensor_release(&t);
    return rc;
}

static size_t argmax(const float *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[k])
            k = i;
    return k;
}

static int use_chip(const nesim_run_opts *o) { return o->chip && strcmp(o->chip, "none") != 0; }
static const char *dense_name(const nesim_run_opts *o) { return o->dense ? o->dense : "dense-45nm"; }

static int load_chips(const nesim_run_opts *o, nesim_chip **chip, nesim_chip **dense, nesim_error *err)
{
    *chip = *dense = NULL;
    if (!use_chip(o))
        return NESIM_OK;
    int rc = nesim_chip_load(o->chip, NULL, chip, err);
    if (!rc)
        rc = nesim_chip_load(dense_name(o), NULL, dense, err);
    return rc;
}

/* ---- layer models ---- */

/* The layer run's spike checksum, whatever order layers report their spikes
 * in: the sum of a mixed FNV-1a hash of each spike's (layer, channel, tick,
 * sign). Chains to the trace's observers. */
typedef struct sum_sink {
    nesim_infer_sink next; /* first: the fwd_ hooks read it through user */
    uint64_t sum;
} sum_sink;

static void sum_spike(void *user, size_t layer, uint32_t channel, int64_t tick, int sign)
{
    sum_sink *k = user;
    uint64_t w[3] = {(uint64_t)layer << 32 | channel, (uint64_t)tick, (uint64_t)(int64_t)sign};
    const unsigned char *b = (const unsigned char *)w;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof w; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    k->sum += nesim_mix64(h);
    if (k->next.spike)
        k->next.spike(k->next.user, layer, channel, tick, sign);
}

/* Hooks an observer does not use pass the call on to the next one: user is
 * a sink whose first member is that next observer (sum_sink, time_sink). */
static void fwd_activity(void *user, size_t layer, int64_t tick, int64_t events, int64_t sops)
{
    const nesim_infer_sink *next = user;
    if (next->activity)
        next->activity(next->user, layer, tick, events, sops);
}
static void fwd_sample(void *user, size_t sample, int64_t first, int64_t end)
{
    const nesim_infer_sink *next = user;
    if (next->sample)
        next->sample(next->user, sample, first, end);
}
static void fwd_code(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth)
{
    const nesim_infer_sink *next = user;
    if (next->code)
        next->code(next->user, layer, sample, t0, steps, vth);
}

/* Chip time of a layer run: a sample's spikes are gathered (layers report
 * theirs one after the other, branches from the same tick), then handed to
 * the timing step by step in tick order. Chains to the trace's observers. */
typedef struct time_sink {
    nesim_infer_sink next; /* first: the fwd_ hooks read it through user */
    nesim_layers_ct *view;
    nesim_chiptime *ct;
    nesim_ct_feed feed;   /* the sample's spikes; each coded layer's windows, keyed by layer */
    int failed;
    nesim_error err;
} time_sink;

static void time_spike(void *user, size_t layer, uint32_t channel, int64_t tick, int sign)
{
    time_sink *k = user;
    uint32_t id = nesim_layers_ct_neuron(k->view, layer, channel);
    if (!k->failed && id != UINT32_MAX && nesim_ct_feed_spike(&k->feed, tick, id, &k->err))
        k->failed = 1;
    if (k->next.spike)
        k->next.spike(k->next.user, layer, channel, tick, sign);
}
static void time_sample(void *user, size_t sample, int64_t first, int64_t end)
{
    time_sink *k = user;
    if (k->failed)
        k->feed.n = 0;
    else if (nesim_ct_feed_flush(&k->feed, k->ct, &k->err))
        k->failed = 1;
    if (k->next.sample)
        k->next.sample(k->next.user, sample, first, end);
}
static void time_code(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth)
{
    time_sink *k = user;
    if (!k->failed && nesim_ct_feed_window(&k->feed, (int64_t)layer, t0, steps, &k->err))
        k->failed = 1;
    if (k->next.code)
        k->next.code(k->next.user, layer, sample, t0, steps, vth);
}

/* Chip time while each coded layer plays (its ticks' steps, over all
 * samples): layers that play together (branches) share their steps. */
static json_t *layer_chip_time(const time_sink *k, const nesim_chiptime_result *c, const nesim_infer *m)
{
    const nesim_layers *G = nesim_infer_graph(m);
    json_t *a = json_array();
    for (size_t l = 0; a && l < nesim_infer_layers(m); l++) {
        const nesim_layer *d = nesim_layers_get(G, l);
        if (!d->coded || d->sl->graded)
            continue;
        double s = nesim_ct_feed_window_s(&k->feed, c, (int64_t)l);
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(d->sl->name));
        json_object_set_new(o, "chip_s", json_real(s));
        json_object_set_new(o, "share", json_real(c->total_s > 0 ? s / c->total_s : 0));
        json_array_append_new(a, o);
    }
    return a;
}

typedef struct progress_ctx {
    const nesim_run_opts *o;
    nesim_recorder *rec;
} progress_ctx;

static int layer_progress(void *user, int64_t done, int64_t total)
{
    progress_ctx *p = user;
    if (p->o->progress)
        p->o->progress(p->o->user, total > 0 ? (double)done / (double)total : 1);
    return nesim_record_interrupted(p->rec);
}

/* Samples per batch: inputs and readouts (twice with labels: the ANN's too)
 * within about 64 MiB, so a million samples never sit in memory at once. */
static size_t batch_rows(size_t w, size_t ow, size_t rows)
{
    size_t per = (w + 2 * ow) * sizeof(float);
    size_t b = ((size_t)64 << 20) / (per ? per : 1);
    if (b < 1)
        b = 1;
    return b < rows ? b : rows;
}

/* The ANN of a layer model on GPU boards, per inference at batch 1, by the
 * roofline in bf16: its dense MACs, and its weights and activations (two
 * bytes each) moved once. */
static int layer_gpu_baselines(const char *list, const nesim_cost *c, json_t *report, nesim_error *err)
{
    double macs = 0, weights = 0, acts = 0, samples = 0;
    for (size_t i = 0; i < c->n; i++) {
        const nesim_energy_input *x = &c->layer[i].in;
        samples = x->samples > samples ? x->samples : samples;
        macs += x->dense_macs;
        weights += x->weights;
        acts += x->in_values + x->out_values; /* over all samples */
    }
    if (samples <= 0)
        return NESIM_OK;
    macs /= samples;
    double bytes = 2 * weights + 2 * acts / samples;
    nesim_chip **g;
    size_t ng;
    int rc = nesim_gpu_list_load(list, &g, &ng, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < ng && !rc; i++) {
        nesim_roofline r;
        if (!(rc = nesim_roofline_of(g[i], "bf16", macs, bytes, "inference", &r, err)))
            json_array_append_new(arr, nesim_roofline_json(&r));
    }
    json_object_set_new(report, "gpu_baselines", arr);
    nesim_gpu_list_free(g, ng);
    return rc;
}

/* How the run was split (a simulation detail: results are the same for any
 * number of ranks): the ranks' traffic, summed over them, and rank 0's wait.
 * Under mpirun the section is "mpi" (with threads_per_rank when each rank
 * runs a group of threads); threads of one process (a group) say "threads",
 * with the same fields. */
static int add_mpi(json_t *r, nesim_comm *comm, const nesim_net *net, nesim_error *err)
{
    nesim_net_traffic t = {0};
    if (net)
        t = nesim_net_traffic_of(net);
    else /* layers: the rows each rank computed, exchanged after every coded layer */
        t.bytes = nesim_comm_statistics(comm).bytes_sent;
    nesim_comm_stats cs = nesim_comm_statistics(comm);
    uint64_t v[4] = {t.spikes, t.bytes, cs.collectives, t.deferred};
    int rc = nesim_comm_sum_u64(comm, v, 4, "the traffic summary", err);
    if (rc)
        return rc;
    json_t *m = json_object();
    const int threads = nesim_comm_threads(comm), hybrid = threads > 1 && nesim_comm_size(comm) > threads;
    json_object_set_new(m, "ranks", json_integer(nesim_comm_size(comm) / (hybrid ? threads : 1)));
    if (hybrid) /* mpirun's ranks, each a group of threads */
        json_object_set_new(m, "threads_per_rank", json_integer(threads));
    json_object_set_new(m, "split", json_string(net ? hybrid ? "neurons: each population in contiguous blocks, one per "
                                                               "thread of each rank"
                                                    : "neurons: each population in contiguous blocks, one per rank"
                                                    : "samples: a batch played layer by layer is split by samples "
                                                      "(each rank plays its block through every layer; counts, "
                                                      "stats and outputs are exchanged), other runs by rows of "
                                                      "each coded linear layer (blocks of 64)"));
    if (net) {
        const nesim_graph *g = nesim_net_graph(net);
        const int one_process = nesim_comm_is_group(comm) && !hybrid;
        json_object_set_new(m, "graph", json_string(nesim_graph_is_part(g)
                                                        ? "part: each rank drew its own targets' synapses (a chip "
                                                          "mapping and chip time merge the ranks' destinations)"
                                                    : one_process
                                                        ? "whole: one graph, read by every thread"
                                                        : "whole: every rank drew every synapse (asynchronous "
                                                          "chip time follows each spike to every target)"));
        json_object_set_new(m, "synapses_rank0", json_integer((json_int_t)nesim_graph_synapses_here(g)));
        int overlapped;
        int64_t w = nesim_net_exchange_ticks(net, &overlapped);
        json_object_set_new(m, "exchange",
                            json_string(overlapped ? "overlapped: each window's spikes travel while the next window runs"
                                        : nesim_net_overlaps(net)
                                            ? "blocking: after each epoch of min-delay ticks, travelling while the "
                                              "epoch's last tick makes its predictions"
                                            : "blocking: after each epoch of min-delay ticks"));
        json_object_set_new(m, "window_ticks", json_integer((json_int_t)w));
        json_object_set_new(m, "exchanges", json_integer((json_int_t)t.epochs));
        json_object_set_new(m, "spikes_exchanged", json_integer((json_int_t)v[0]));
        json_object_set_new(m, "predictions_overlapped", json_integer((json_int_t)v[3]));
    }
    json_object_set_new(m, "bytes_sent", json_integer((json_int_t)v[1]));
    if (net)
        json_object_set_new(m, "bytes_per_spike", json_integer((json_int_t)sizeof(uint32_t[2])));
    json_object_set_new(m, "collectives", json_integer((json_int_t)(v[2] / (uint64_t)nesim_comm_size(comm))));
    json_object_set_new(m, "rank0_wait_s", json_real(cs.wait_s));
    json_object_set_new(r, nesim_comm_is_group(comm) && !hybrid ? "threads" : "mpi", m);
    return NESIM_OK;
}

static int run_layers(const nesim_run_opts *o, const nesim_spec *spec, phases *ph, json_t **report, nesim_error *err)
{
    nesim_infer *m = NULL;
    float *x = NULL, *y = NULL, *ya = NULL;
    int32_t *lab = NULL;
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    nesim_recorder *rec = NULL;
    nesim_npy_writer *out = NULL;
    sample_source src;
    memset(&src, 0, sizeof src);
    double close_s = -1;
    int rc = o->output ? nesim_tio_check_writable(o->output, err) : NESIM_OK;
    if (!rc)
        rc = nesim_infer_open(spec, &m, err);
    if (rc)
        return rc;
    double synth_open = nesim_infer_synth_s(m); /* synthetic weights made by the open (none: made as played) */
    ph->load += lap(ph) - synth_open;
    nesim_infer_set_threads(m, o->threads > 0 ? o->threads : nesim_par_cores());
    nesim_infer_set_comm(m, nesim_comm_size(o->comm) > 1 ? o->comm : NULL);
    /* without a trace or chip time the observers only sum (the checksum,
     * the counters): each rank counts the samples it played */
    nesim_infer_set_split_observers(m, !o->trace && !o->timing);
    const int rank0 = nesim_comm_rank(o->comm) == 0; /* writes the trace and the files */
    size_t w = nesim_infer_input_size(m), ow = nesim_infer_output_size(m);
    rc = source_open(&src, o, spec, w, err);
    size_t rows = src.rows, B = rc ? 1 : batch_rows(w, ow, rows);
    if (!rc && o->labels)
        rc = load_labels(o->labels, rows, ow, &lab, err);
    if (!rc && (!(x = malloc(B * w * sizeof *x)) || !(y = malloc(B * ow * sizeof *y)) ||
                (lab && !(ya = malloc(B * ow * sizeof *ya)))))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory for a batch of %zu samples", B);
    if (!rc)
        rc = load_chips(o, &chip, &dense, err);
    if (!rc && o->gpu) /* named boards must exist before the run */
        rc = nesim_gpu_list_check(o->gpu, err);
    uint64_t seed = o->has_seed ? o->seed : spec->seed;
    if (!rc && o->trace && rank0) {
        nesim_record_opts ro = {.path = o->trace, .level = o->record, .spec = spec,
                                .chip = use_chip(o) ? chip->name : NULL, .dense = use_chip(o) ? dense->name : NULL,
                                .seed = seed};
        rc = nesim_record_begin(&ro, m, NULL, &rec, err);
    }
    rc = nesim_comm_agree(o->comm, rc, err); /* rank 0 alone may have failed */
    /* chip time: mapped before the run, fed as the run goes */
    time_sink tk = {0};
    nesim_cost pre;
    int have_pre = 0;
    if (!rc && o->timing_steps && !o->timing)
        rc = nesim_fail(err, NESIM_EINVAL, "--timing-steps needs --timing");
    if (!rc && o->timing) {
        nesim_ct_graph view;
        const nesim_mapping *tmap;
        if (!chip)
            rc = nesim_fail(err, NESIM_EINVAL, "--timing needs a chip (--chip)");
        else if (!(rc = nesim_cost_layers_map(chip, dense, m, &pre, err))) {
            have_pre = 1;
            if (!(rc = nesim_cost_layers_ct(m, &pre.map, &tk.view, &view, &tmap, err)) &&
                !(rc = nesim_chiptime_new_graph(chip, &pre.caps, tmap, &view, (nesim_timing)o->timing, &tk.ct, err)))
                nesim_chiptime_set_input_dt(tk.ct, spec->tick);
        }
    }
    sum_sink ck = {0};
    if (rec)
        tk.next = nesim_record_infer_sink(rec);
    if (tk.ct)
        ck.next = (nesim_infer_sink){.spike = time_spike, .activity = fwd_activity, .sample = time_sample,
                                     .code = time_code, .user = &tk};
    else
        ck.next = tk.next;
    nesim_infer_sink cks = {.spike = sum_spike, .activity = fwd_activity, .sample = fwd_sample, .code = fwd_code,
                            .user = &ck};
    nesim_infer_set_sink(m, &cks);
    progress_ctx pc = {o, rec};
    nesim_infer_report rep;
    double wall = 0, ann = 0, snn = 0, agree = 0;
    int out_rc = NESIM_OK;
    nesim_error out_err = {0};
    if (!rc)
        nesim_infer_begin(m, rows, 0);
    ph->setup += lap(ph);
    for (size_t done = 0; !rc && done < rows;) {
        size_t n = rows - done < B ? rows - done : B;
        if ((rc = source_read(&src, x, n, err)))
            break;
        if (lab && (rc = nesim_infer_dense(m, x, n, ya, err)))
            break;
        double t0 = now_s(), s0 = nesim_infer_synth_s(m);
        rc = nesim_infer_feed(m, x, n, y, layer_progress, &pc, err);
        wall += now_s() - t0 - (nesim_infer_synth_s(m) - s0); /* simulation, not weight making */
        for (size_t k = 0; !rc && lab && k < n; k++) {
            size_t ks = argmax(y + k * ow, ow), ka = argmax(ya + k * ow, ow), l = (size_t)lab[done + k];
            snn += ks == l;
            ann += ka == l;
            agree += ks == ka;
        }
        /* the readout goes out as it comes: written to a temp file, renamed at
         * the end. A failure to write it (a full disk) does not stop the run:
         * its results are still reported and recorded. */
        if (!rc && o->output && rank0 && !out && !out_rc) {
            int64_t shape[2] = {(int64_t)rows, (int64_t)ow};
            out_rc = nesim_npy_writer_open(o->output, NESIM_F32, 2, shape, &out, &out_err);
        }
        if (!rc && out && (out_rc = nesim_npy_writer_append(out, y, n * ow * sizeof *y, &out_err))) {
            nesim_npy_writer_abort(out);
            out = NULL;
        }
        done += n;
    }
    if (!rc)
        rc = nesim_infer_finish(m, &rep, err);
    if (!rc && nesim_infer_split_observers(m))
        rc = nesim_comm_sum_u64(o->comm, &ck.sum, 1, "the spike checksum", err);
    nesim_infer_set_sink(m, NULL);
    ph->synthesis = nesim_infer_synth_s(m);
    ph->synth_first = nesim_infer_synth_first_s(m);
    ph->run += lap(ph) - (ph->synthesis - synth_open);
    int interrupted = nesim_record_interrupted(rec);
    if (lab && rows) {
        snn /= (double)rows, ann /= (double)rows, agree /= (double)rows;
    }
    /* an output that fails after a good run does not lose the run: its
     * results are reported and recorded, and the failure is the exit status */
    if (out) {
        if (!rc && !out_rc)
            out_rc = nesim_npy_writer_close(out, &out_err);
        else
            nesim_npy_writer_abort(out);
        out = NULL;
    }
    nesim_chiptime_result ctr = {0};
    if (!rc && tk.failed)
        rc = tk.err.code ? tk.err.code : NESIM_ENOMEM, *err = tk.err;
    else if (!rc && tk.ct)
        rc = nesim_chiptime_finish(tk.ct, rep.ticks, &ctr, err);
    if (!rc && tk.ct && rec && nesim_record_chip_steps(rec, ctr.step_s, ctr.steps))
        rc = nesim_fail(err, NESIM_EIO, "%s: storing the chip time of %lld steps failed", o->trace,
                        (long long)ctr.steps);
    if (!rc && tk.ct && o->timing_steps && rank0) {
        int64_t shape[1] = {ctr.steps};
        rc = nesim_npy_write(o->timing_steps, NESIM_F64, 1, shape, ctr.step_s, err);
    }
    if (!rc && chip &&
        !(rc = nesim_cost_layers_timed(chip, dense, m, &rep, spec->tick, tk.ct ? ctr.total_s : -1, &cost, err)))
        costp = &cost;
    ph->cost += lap(ph);
    json_t *r = NULL;
    if (!rc) {
        nesim_run_extras ex = {.wall_s = wall, .peak_rss_mib = peak_rss_mib(), .has_accuracy = lab != NULL,
                               .acc_spiking = snn, .acc_ann = ann, .acc_agree = agree, .has_checksum = 1,
                               .spike_checksum = ck.sum};
        if (!(r = nesim_report_layers(spec, &rep, costp, &ex)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
        else if (nesim_comm_size(o->comm) > 1 && !(rc = add_mpi(r, o->comm, NULL, err)))
            json_object_set_new(json_object_get(r, "mpi"), "observed",
                                json_string(nesim_infer_split_observers(m)
                                                ? "each sample's spikes counted on the rank that played it, "
                                                  "summed over the ranks at the end"
                                                : "every sample's spikes told on every rank, in order (the "
                                                  "trace or the chip time hears them)"));
        else if (o->gpu && costp)
            rc = layer_gpu_baselines(o->gpu, costp, r, err);
        if (!rc && tk.ct) {
            json_t *cj = nesim_chiptime_json(&ctr, (nesim_timing)o->timing, costp ? costp->energy.total : -1);
            double per = rep.samples > 0 ? ctr.total_s / (double)rep.samples : 0;
            json_object_set_new(cj, "per_inference_s", json_real(per));
            json_object_set_new(cj, "inferences_per_s", json_real(per > 0 ? 1 / per : 0));
            json_t *pl = layer_chip_time(&tk, &ctr, m);
            if (pl)
                json_object_set_new(cj, "per_layer", pl);
            json_object_set_new(r, "chip_time", cj);
        }
        if (!rc)
            add_phases(r, ph);
    }
    if (rec) {
        double tc = now_s();
        nesim_error e2 = {0};
        nesim_trace_status st = rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE;
        int rc2 = nesim_record_end(rec, r, costp, rc ? -1 : rep.samples, rc ? -1 : rep.ticks, st, &e2);
        close_s = now_s() - tc;
        if (interrupted)
            rc = nesim_fail(err, NESIM_EIO, "interrupted; the trace marks the run interrupted");
        else if (!rc && rc2)
            rc = rc2, *err = e2;
    }
    if (!rc && close_s >= 0)
        json_object_set_new(r, "trace_close_s", json_real(close_s));
    if (rc)
        json_decref(r);
    else
        *report = r;
    if (!rc && out_rc)
        rc = out_rc, *err = out_err;
    if (costp)
        nesim_cost_free(costp);
    nesim_chiptime_free(tk.ct);
    nesim_layers_ct_free(tk.view);
    nesim_ct_feed_free(&tk.feed);
    if (have_pre)
        nesim_cost_free(&pre);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    free(x), free(y), free(ya), free(lab);
    source_close(&src);
    nesim_infer_close(m);
    return rc;
}

/* ---- networks ---- */

typedef struct net_sink {
    nesim_isi isi;
    nesim_recorder *rec;
    uint64_t checksum;
    nesim_chiptime *ct;
    nesim_error ct_err;
    int ct_failed;
} net_sink;

static int on_net_spike(void *ctx, int64_t t, uint32_t id, int pop)
{
    net_sink *ns = ctx;
    nesim_isi_add(&ns->isi, id, t);
    ns->checksum = nesim_spike_checksum_add(ns->checksum, t, id);
    if (ns->ct && !ns->ct_failed && nesim_chiptime_step(ns->ct, t, &id, 1, &ns->ct_err))
        return ns->ct_failed = 1; /* stops the run; the error is the timing's */
    return ns->rec ? nesim_record_net_spike(ns->rec, t, id, pop) : 0;
}

static double jnum(const json_t *o, const char *a, const char *b)
{
    const json_t *x = json_object_get(o, a);
    if (b)
        x = json_object_get(x, b);
    return json_number_value(x);
}

/* SANA-FE's run summary, in its terms, from the report (a SANA-FE network
 * run): its "total_spikes" are synaptic events; its soma energy is nesim's
 * updates, idle neurons and spikes out; its network energy the messages and
 * their hops. */
static int add_sanafe_summary(json_t *r)
{
    const json_t *t = json_object_get(r, "totals"), *e = json_object_get(r, "energy"),
                 *ct = json_object_get(r, "chip_time"), *terms = json_object_get(e, "terms");
    json_t *s = json_object(), *en = json_object();
    double soma = jnum(terms, "update", NULL) + jnum(terms, "idle", NULL) + jnum(terms, "spike_out", NULL);
    double net = jnum(terms, "delivery", NULL) + jnum(terms, "routing", NULL);
    if (!s || !en || json_object_set_new(s, "timesteps_executed", json_integer((json_int_t)jnum(t, "virtual_ticks", NULL))) ||
        json_object_set_new(s, "total_spikes", json_integer((json_int_t)jnum(t, "sops", NULL))) ||
        json_object_set_new(s, "total_messages_sent", ct ? json_integer((json_int_t)jnum(ct, "messages", NULL)) : json_null()) ||
        json_object_set_new(s, "total_neurons_updated",
                            json_integer((json_int_t)jnum(r, "neurobench", "membrane_updates"))) ||
        json_object_set_new(s, "total_neurons_fired", json_integer((json_int_t)jnum(t, "spikes", NULL))) ||
        json_object_set_new(s, "sim_time", json_real(ct ? jnum(ct, "total_s", NULL) : jnum(e, "duration_s", NULL))) ||
        json_object_set_new(en, "synapse", json_real(jnum(terms, "synaptic", NULL))) ||
        json_object_set_new(en, "dendrite", json_real(0)) || json_object_set_new(en, "soma", json_real(soma)) ||
        json_object_set_new(en, "network", json_real(net)) ||
        json_object_set_new(en, "total", json_real(jnum(e, "total_j", NULL))) || json_object_set(s, "energy", en) ||
        json_object_set(r, "sanafe_summary", s)) {
        json_decref(s), json_decref(en);
        return -1;
    }
    json_decref(s), json_decref(en);
    return 0;
}

/* The network's ticks from --seconds or --steps. */
static int network_ticks(const nesim_run_opts *o, const nesim_spec *spec, int64_t *total, nesim_error *err)
{
    double seconds = o->seconds > 0 ? o->seconds : 1;
    *total = o->steps;
    if (o->steps > 0 && o->seconds > 0)
        return nesim_fail(err, NESIM_EINVAL, "give --seconds or --steps, not both");
    if (o->steps <= 0)
        return nesim_ticks_of(seconds, spec->tick, "--seconds", total, err);
    return NESIM_OK;
}

/* The graph of spec for this process, whose ranks' (or threads') neurons
 * run `threads` to a process. Under mpirun each process draws only the
 * synapses of the targets it simulates (NEST's way; keyed draws make them
 * the whole graph's: net/graph.h) and the ranks sum the counts a report
 * needs and merge what a chip mapping and chip time need (eval/cost.c,
 * eval/chiptime.c; a passive population's input marks are gathered step by
 * step). Asynchronous chip time follows each spike to every target neuron:
 * then every rank draws the whole graph. */
static int build_graph(const nesim_run_opts *o, const nesim_spec *spec, int threads, nesim_graph **g,
                       nesim_error *err)
{
    uint64_t seed = o->has_seed ? o->seed : spec->seed;
    const int K = nesim_comm_size(o->comm);
    if (K <= 1 || !nesim_chiptime_parts_ok((nesim_timing)o->timing))
        return nesim_spec_build_graph(spec, seed, g, err);
    nesim_graph_part part = {nesim_comm_rank(o->comm) * threads, threads, K * threads};
    int rc = nesim_spec_build_graph_part(spec, seed, &part, g, err);
    /* agreed first: the gather is a collective a failed rank would not join */
    if (!(rc = nesim_comm_agree(o->comm, rc, err)))
        rc = nesim_graph_part_gather(*g, o->comm, err);
    if (rc) {
        nesim_graph_free(*g);
        *g = NULL;
    }
    return rc;
}

/* Runs the network of spec: its own graph, or `shared` (built by the caller
 * from the same spec and seed, read by every thread of a split run). */
static int run_network(const nesim_run_opts *o, const nesim_spec *spec, const nesim_graph *shared, phases *ph,
                       json_t **report, nesim_error *err)
{
    int64_t total;
    int rc = network_ticks(o, spec, &total, err);
    if (rc)
        return rc;
    uint64_t seed = o->has_seed ? o->seed : spec->seed;
    nesim_net *net;
    if (shared) {
        net = nesim_net_sharing(shared, err);
    } else {
        nesim_graph *own;
        if ((rc = build_graph(o, spec, 1, &own, err)))
            return rc;
        net = nesim_net_from_graph(own, err);
    }
    if (!net)
        return err->code;
    const nesim_graph *g = nesim_net_graph(net);
    nesim_net_set_overlap(net, !o->no_overlap);
    if (nesim_comm_size(o->comm) > 1 && (rc = nesim_net_set_comm(net, o->comm, err))) {
        nesim_net_free(net);
        return rc;
    }
    ph->load += lap(ph);
    net_sink ns = {.checksum = NESIM_SPIKE_CHECKSUM_INIT};
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL, pre, *prep = NULL; /* pre: the timed run's mapping, priced after it */
    double close_s = -1;
    if ((rc = nesim_isi_init(&ns.isi, g->n_total, err)) || (rc = load_chips(o, &chip, &dense, err)))
        goto done;
    if (o->timing_steps && !o->timing)
        rc = nesim_fail(err, NESIM_EINVAL, "--timing-steps needs --timing");
    if (!rc && o->timing) {
        if (!chip)
            rc = nesim_fail(err, NESIM_EINVAL, "--timing needs a chip (--chip)");
        else if (!chip->p.has_latency)
            rc = nesim_fail(err, NESIM_EINVAL, "--timing: chip %s has no latency section: it cannot time a run "
                            "(profiles with one: loihi, loihi-sanafe)", chip->name);
        else if (!(rc = nesim_cost_network_map(chip, dense, net, &pre, err))) {
            prep = &pre;
            rc = nesim_chiptime_new(chip, &pre.caps, &pre.map, net, (nesim_timing)o->timing, &ns.ct, err);
            if (!rc) /* async: a step's events arrive one tick apart in real time */
                nesim_chiptime_set_input_dt(ns.ct, spec->tick);
            if (!rc) /* every rank sees every spike: each times its share of the steps */
                nesim_chiptime_share(ns.ct, nesim_comm_rank(o->comm), nesim_comm_size(o->comm));
        }
        if (rc)
            goto done;
    }
    if (o->trace && nesim_comm_rank(o->comm) == 0) { /* the other ranks send rank 0 their spikes anyway */
        nesim_record_opts ro = {.path = o->trace, .level = o->record, .spec = spec,
                                .chip = chip ? chip->name : NULL, .dense = chip ? dense->name : NULL, .seed = seed};
        rc = nesim_record_begin(&ro, NULL, net, &ns.rec, err);
    }
    if ((rc = nesim_comm_agree(o->comm, rc, err))) /* rank 0 alone may have failed */
        goto done;
    nesim_set_sink(net, on_net_spike, &ns);
    ph->setup += lap(ph);
    double t0 = now_s();
    int64_t chunk = o->progress ? (total + 99) / 100 : total;
    for (int64_t done = 0; done < total && !rc; done += chunk) {
        rc = nesim_run(net, total - done < chunk ? total - done : chunk, err);
        if (o->progress)
            o->progress(o->user, (double)(done + chunk < total ? done + chunk : total) / (double)total);
    }
    double wall = now_s() - t0;
    ph->run += lap(ph);
    int interrupted = nesim_record_interrupted(ns.rec);
    int sink_stop = rc == NESIM_EIO && ns.rec; /* the recorder stopped the run: its error explains why */
    nesim_chiptime_result ctr = {0};
    if (ns.ct_failed)
        rc = ns.ct_err.code, *err = ns.ct_err;
    else if (!rc && ns.ct)
        rc = nesim_chiptime_finish_shared(ns.ct, total, o->comm, &ctr, err);
    if (!rc && ns.ct && ns.rec && nesim_record_chip_steps(ns.rec, ctr.step_s, ctr.steps))
        rc = nesim_fail(err, NESIM_EIO, "%s: storing the chip time of %lld steps failed", o->trace,
                        (long long)ctr.steps);
    if (!rc && ns.ct && o->timing_steps && nesim_comm_rank(o->comm) == 0) {
        int64_t shape[1] = {ctr.steps};
        rc = nesim_npy_write(o->timing_steps, NESIM_F64, 1, shape, ctr.step_s, err);
    }
    if (!rc && chip) {
        if (!(rc = nesim_cost_network_mapped(chip, dense, net, prep, ns.isi.count, total, ns.ct ? ctr.total_s : -1,
                                             &cost, err)))
            costp = &cost;
        /* every rank maps (a part graph: together), so every rank meets a
         * model the chip cannot hold: agreed, it ends with one line */
        rc = nesim_comm_agree(o->comm, rc, err);
    }
    ph->cost += lap(ph);
    json_t *r = NULL;
    if (!rc) {
        nesim_run_extras ex = {.wall_s = wall, .peak_rss_mib = peak_rss_mib(), .has_checksum = 1,
                               .spike_checksum = ns.checksum};
        if (!(r = nesim_report_network(spec, net, &ns.isi, total, costp, &ex)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
        else if (ns.ct)
            json_object_set_new(r, "chip_time", nesim_chiptime_json(&ctr, (nesim_timing)o->timing,
                                                              costp ? costp->energy.total : -1));
        if (r)
            add_phases(r, ph);
        if (r && nesim_comm_size(o->comm) > 1 && add_mpi(r, o->comm, net, err))
            rc = err->code;
    }
    if (ns.rec) {
        double tc = now_s();
        nesim_error e2 = {0};
        int rc2 = nesim_record_end(ns.rec, r, costp, -1, nesim_now(net), rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE,
                                   &e2);
        ns.rec = NULL;
        close_s = now_s() - tc;
        if (interrupted)
            rc = nesim_fail(err, NESIM_EIO, "interrupted; the trace marks the run interrupted");
        else if (rc2 && (!rc || sink_stop))
            rc = rc2, *err = e2; /* the trace's own error (disk full, a lock held too long), not "sink stopped" */
    }
    if (!rc && close_s >= 0)
        json_object_set_new(r, "trace_close_s", json_real(close_s));
    if (!rc && nesim_sanafe_file_kind(spec->file) && chip && add_sanafe_summary(r))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (rc)
        json_decref(r);
    else
        *report = r;
done:
    if (ns.rec)
        nesim_record_end(ns.rec, NULL, NULL, -1, -1, NESIM_TRACE_FAILED, NULL);
    if (costp)
        nesim_cost_free(costp);
    if (prep)
        nesim_cost_free(prep);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_isi_free(&ns.isi);
    nesim_chiptime_free(ns.ct);
    nesim_net_free(net);
    return rc;
}

/* ---- a network on several threads ----------------------------------------
 *
 * The split mpirun makes, inside one process: thread r is rank r of a group
 * (base/comm.h), runs the one graph built for all of them with state of its
 * own, simulates its block of every population and exchanges spikes with the
 * others every min-delay ticks (sim/network.h). Results are the same as on one thread, bit for bit; only
 * thread 0 writes the trace and reports progress, and its report is the
 * run's. */

/* A network is split over threads by default only when it has this many
 * synapses: an exchange every min-delay ticks costs a few microseconds, so
 * the gain depends on the work between exchanges. Measured (bench/threads.sh):
 * Benchmark 4 at 4,000 neurons and a 0.1 ms tick gains nothing (0.96x),
 * CUBA of that size 1.4x, CUBA at 20,000 neurons 1.7x. Synapses are the
 * proxy the spec gives before the run (activity is not known yet), kept
 * conservative: --threads decides for any network. */
#define NET_THREADS_MIN_SYNAPSES 2e6

typedef struct net_thread {
    nesim_run_opts o;
    const nesim_spec *spec;
    const nesim_graph *g;
    json_t *report;
    nesim_error err;
    int rc;
    pthread_t th;
} net_thread;

static void *net_thread_main(void *arg)
{
    net_thread *t = arg;
    phases ph = {0};
    ph.start = ph.mark = now_s();
    t->rc = run_network(&t->o, t->spec, t->g, &ph, &t->report, &t->err);
    nesim_comm_group_leave(t->o.comm, t->rc, &t->err);
    return NULL;
}

/* The threads a network runs on: --threads, else every core for one of at
 * least NET_THREADS_MIN_SYNAPSES synapses; under mpirun --threads per rank
 * (ranks x threads), else one. The
 * threads share one graph; each holds its own state and a copy of its slice
 * of the rows, so a split run needs about twice one thread's memory: one
 * thread when that is more than there is. */
int nesim_run_network_threads(const nesim_run_opts *o, const nesim_spec *spec)
{
    if (spec->n_layers)
        return 1;
    int ranks = nesim_comm_size(o->comm) > 1;
    if (ranks && o->threads <= 0)
        return 1; /* mpirun started as many as wanted */
    nesim_estimate e;
    nesim_spec_estimate(spec, 0, &e);
    int k = o->threads > 0 ? o->threads : e.synapses >= NET_THREADS_MIN_SYNAPSES ? nesim_par_cores() : 1;
    uint64_t avail = o->max_memory ? o->max_memory : nesim_mem_available();
    if (k > 1 && avail && 2 * e.bytes > (double)avail)
        k = 1;
    return k;
}

static int run_network_split(const nesim_run_opts *o, const nesim_spec *spec, phases *ph, json_t **report,
                             nesim_error *err)
{
    int K = nesim_run_network_threads(o, spec);
    if (K <= 1)
        return run_network(o, spec, NULL, ph, report, err);
    /* one graph, built here, read by every thread (each has its own state);
     * a bad --seconds or --steps is refused before it is built, as with one */
    int64_t total;
    nesim_graph *g = NULL;
    int rc = network_ticks(o, spec, &total, err);
    if (!rc)
        rc = build_graph(o, spec, K, &g, err);
    if (rc)
        return rc;
    nesim_comm_group *grp;
    net_thread *t = calloc((size_t)K, sizeof *t);
    rc = t ? nesim_comm_group_new(K, o->comm, &grp, err) : nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (rc) {
        free(t);
        nesim_graph_free(g);
        return rc;
    }
    int started = 1;
    for (; started < K; started++) {
        net_thread *w = &t[started];
        w->o = *o;
        w->o.comm = nesim_comm_group_member(grp, started);
        w->o.progress = NULL; /* thread 0 reports it */
        w->spec = spec;
        w->g = g;
        if (pthread_create(&w->th, NULL, net_thread_main, w))
            break;
    }
    nesim_comm *c0 = nesim_comm_group_member(grp, 0);
    if (started < K) { /* the started ones end at their first exchange; then one thread runs it */
        nesim_error e = {0};
        nesim_comm_group_leave(c0, nesim_fail(&e, NESIM_ENOMEM, "could not start thread %d", started), &e);
    } else {
        nesim_run_opts o0 = *o;
        o0.comm = c0;
        rc = run_network(&o0, spec, g, ph, report, err);
        nesim_comm_group_leave(c0, rc, err);
    }
    for (int r = 1; r < started; r++) {
        pthread_join(t[r].th, NULL);
        json_decref(t[r].report);
    }
    free(t);
    nesim_comm_group_free(grp);
    if (started < K)
        rc = run_network(o, spec, g, ph, report, err);
    nesim_graph_free(g);
    return rc;
}

/* Refuses a run whose estimate exceeds the memory it may use, before
 * anything big is allocated. */
static int check_memory(const nesim_run_opts *o, const nesim_spec *spec, nesim_error *err)
{
    size_t samples = o->random_n;
    if (spec->n_layers && o->input) {
        nesim_tensor t;
        if (nesim_npy_load(o->input, &t, err) == NESIM_OK) { /* a mapping: the header is all it reads */
            samples = t.ndim ? (size_t)t.shape[0] : 1;
            nesim_tensor_release(&t);
        }
    }
    if (o->samples && o->samples < samples)
        samples = o->samples;
    nesim_estimate e;
    nesim_spec_estimate(spec, spec->n_layers ? samples : 0, &e);
    uint64_t avail = o->max_memory ? o->max_memory : nesim_mem_available();
    if (!avail || e.bytes <= (double)avail)
        return NESIM_OK;
    char need[32], have[32], big[32], limit[96];
    nesim_mem_format((double)avail, have, sizeof have);
    snprintf(limit, sizeof limit, o->max_memory ? "--max-memory allows %s" : "this machine has %s available", have);
    return nesim_fail(err, NESIM_EINVAL, "%s: the run needs about %s (largest: %s, %s); %s, so nothing was allocated%s",
                      spec->file, nesim_mem_format(e.bytes, need, sizeof need), e.largest,
                      nesim_mem_format(e.largest_bytes, big, sizeof big), limit,
                      o->max_memory ? "" : " (--max-memory SIZE runs it anyway)");
}

/* A SANA-FE network (net/sanafe.h): its mapping is translated onto the chip
 * the run uses, and a SANA-FE architecture names its units. */
static int load_sanafe_net(const nesim_run_opts *o, nesim_spec **spec, nesim_error *err)
{
    nesim_sanafe_arch *arch = NULL;
    nesim_chip *chip = NULL;
    nesim_sanafe_layout lay = {0}, *layp = NULL;
    int rc = NESIM_OK;
    if (use_chip(o)) {
        if (nesim_sanafe_file_kind(o->chip) == 1) { /* its unit names too: read it once */
            if (!(rc = nesim_sanafe_arch_load(o->chip, &arch, err)))
                rc = nesim_chip_from_sanafe(arch, &chip, err);
        } else
            rc = nesim_chip_load(o->chip, NULL, &chip, err);
        if (!rc && chip->kind == NESIM_CHIP_NEUROMORPHIC) {
            lay = (nesim_sanafe_layout){chip->p.mesh_x, chip->p.mesh_y, chip->p.cores_per_router,
                                        chip->p.cores_per_chip};
            layp = &lay;
        }
    }
    if (!rc)
        rc = nesim_sanafe_net_load(o->spec, arch, layp, spec, err);
    nesim_chip_free(chip);
    nesim_sanafe_arch_free(arch);
    return rc;
}

int nesim_run_spec(const nesim_run_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    nesim_spec *spec = NULL;
    phases ph = {0};
    ph.start = ph.mark = now_s();
    int rc = nesim_sanafe_file_kind(o->spec) ? load_sanafe_net(o, &spec, err) : nesim_spec_load(o->spec, &spec, err);
    if (rc)
        return rc;
    if ((rc = check_memory(o, spec, err))) {
        nesim_spec_free(spec);
        return rc;
    }
    ph.load += lap(&ph);
    if (spec->n_layers) {
        if (o->seconds > 0 || o->steps > 0)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %s is a layer model (its samples set its time)",
                            o->steps > 0 ? "--steps" : "--seconds", spec->file);
        else
            rc = run_layers(o, spec, &ph, report, err);
    } else {
        const char *bad = o->input ? "--input" : o->random_n ? "--random-input" : o->samples ? "--samples"
                          : o->output ? "--output" : o->labels ? "--labels" : NULL;
        if (bad)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %s is a network (give --seconds S, not samples)", bad, spec->file);
        else
            rc = run_network_split(o, spec, &ph, report, err);
    }
    nesim_spec_free(spec);
    return rc;
}
