/* run.c — a model spec run end to end (see run.h). */
#include "jobs/run.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/rng.h"
#include "eval/cost.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "net/chip.h"
#include "net/spec.h"
#include "net/tensor.h"
#include "sim/infer.h"
#include "sim/network.h"
#include "traces/record.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Reads an .npy of any numeric dtype as float rows of `width` values. */
static int load_rows(const char *path, size_t width, float **out, size_t *rows, nesim_error *err)
{
    nesim_tensor t;
    int rc = nesim_npy_load(path, &t, err);
    if (rc)
        return rc;
    if (t.ndim < 1 || t.count == 0 || t.shape[0] < 1 || t.count / (size_t)t.shape[0] != width ||
        t.count % (size_t)t.shape[0]) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_EINVAL, "%s: expected [samples, ...] with %zu values per sample", path, width);
    }
    if ((rc = nesim_tensor_check_finite(&t, path, err))) {
        nesim_tensor_release(&t);
        return rc;
    }
    *rows = (size_t)t.shape[0];
    *out = malloc(t.count * sizeof **out);
    if (!*out) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t.count; i++)
        (*out)[i] = (float)nesim_tensor_get(&t, i);
    nesim_tensor_release(&t);
    return NESIM_OK;
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
    nesim_infer_sink next;
    uint64_t sum;
    const nesim_run_opts *o;
    int64_t total;
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
static void sum_activity(void *user, size_t layer, int64_t tick, int64_t events, int64_t sops)
{
    sum_sink *k = user;
    if (k->next.activity)
        k->next.activity(k->next.user, layer, tick, events, sops);
}
static void sum_sample(void *user, size_t sample, int64_t first, int64_t end)
{
    sum_sink *k = user;
    if (k->next.sample)
        k->next.sample(k->next.user, sample, first, end);
}
static void sum_code(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth)
{
    sum_sink *k = user;
    if (k->next.code)
        k->next.code(k->next.user, layer, sample, t0, steps, vth);
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

static int run_layers(const nesim_run_opts *o, const nesim_spec *spec, json_t **report, nesim_error *err)
{
    nesim_infer *m = NULL;
    float *x = NULL, *y = NULL, *ya = NULL, *lab = NULL;
    size_t rows = 0, nl = 0;
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    nesim_recorder *rec = NULL;
    double close_s = -1;
    int rc = nesim_infer_open(spec, &m, err);
    if (rc)
        return rc;
    size_t w = nesim_infer_input_size(m), ow = nesim_infer_output_size(m);
    if (o->input) {
        rc = load_rows(o->input, w, &x, &rows, err);
    } else if (o->random_n) {
        rows = (size_t)o->random_n;
        x = malloc(rows * w * sizeof *x);
        gsl_rng *r = nesim_rng_new(o->has_seed ? o->seed : spec->seed, 1000);
        if (!x || !r)
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory for %zu synthetic samples", rows);
        for (size_t i = 0; !rc && i < rows * w; i++)
            x[i] = (float)gsl_ran_tdist(r, 3.0);
        if (r)
            gsl_rng_free(r);
    } else {
        rc = nesim_fail(err, NESIM_EINVAL, "%s has layers: give --input X.npy or --random-input N", spec->file);
    }
    if (!rc && o->samples && o->samples < rows)
        rows = (size_t)o->samples;
    if (!rc && o->labels) {
        rc = load_rows(o->labels, 1, &lab, &nl, err);
        if (!rc && nl < rows)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %zu labels for %zu samples", o->labels, nl, rows);
        for (size_t s = 0; !rc && s < rows; s++)
            if (!(lab[s] >= 0 && lab[s] < (float)ow && lab[s] == floorf(lab[s])))
                rc = nesim_fail(err, NESIM_EINVAL, "%s: label %zu is %g, not a class index 0..%zu", o->labels, s,
                                (double)lab[s], ow - 1);
    }
    if (!rc && !(y = malloc(rows * ow * sizeof *y)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (!rc)
        rc = load_chips(o, &chip, &dense, err);
    uint64_t seed = o->has_seed ? o->seed : spec->seed;
    if (!rc && o->trace) {
        nesim_record_opts ro = {.path = o->trace, .level = o->record, .spec = spec,
                                .chip = use_chip(o) ? chip->name : NULL, .dense = use_chip(o) ? dense->name : NULL,
                                .seed = seed};
        rc = nesim_record_begin(&ro, m, NULL, &rec, err);
    }
    /* the ANN pass first: it reuses the report buffers the spiking pass fills */
    if (!rc && lab) {
        nesim_infer_report dense_rep;
        if (!(ya = malloc(rows * ow * sizeof *ya)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        if (!rc)
            rc = nesim_infer_run(m, x, rows, ya, 1, &dense_rep, NULL, NULL, err);
    }
    sum_sink ck = {.o = o};
    if (rec)
        ck.next = nesim_record_infer_sink(rec);
    nesim_infer_sink cks = {.spike = sum_spike, .activity = sum_activity, .sample = sum_sample, .code = sum_code,
                            .user = &ck};
    nesim_infer_set_sink(m, &cks);
    progress_ctx pc = {o, rec};
    nesim_infer_report rep;
    double t0 = now_s();
    if (!rc)
        rc = nesim_infer_run(m, x, rows, y, 0, &rep, layer_progress, &pc, err);
    double wall = now_s() - t0;
    nesim_infer_set_sink(m, NULL);
    int interrupted = nesim_record_interrupted(rec);
    double ann = 0, snn = 0, agree = 0;
    for (size_t s = 0; !rc && lab && s < rows; s++) {
        size_t ks = argmax(y + s * ow, ow), ka = argmax(ya + s * ow, ow);
        snn += (double)(ks == (size_t)lab[s]) / (double)rows;
        ann += (double)(ka == (size_t)lab[s]) / (double)rows;
        agree += (double)(ks == ka) / (double)rows;
    }
    if (!rc && o->output) {
        int64_t shape[2] = {(int64_t)rows, (int64_t)ow};
        rc = nesim_npy_write(o->output, NESIM_F32, 2, shape, y, err);
    }
    if (!rc && chip && !(rc = nesim_cost_layers(chip, dense, m, &rep, spec->tick, &cost, err)))
        costp = &cost;
    json_t *r = NULL;
    if (!rc) {
        nesim_run_extras ex = {.wall_s = wall, .peak_rss_mib = peak_rss_mib(), .has_accuracy = lab != NULL,
                               .acc_spiking = snn, .acc_ann = ann, .acc_agree = agree, .has_checksum = 1,
                               .spike_checksum = ck.sum};
        if (!(r = nesim_report_layers(spec, &rep, costp, &ex)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
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
    if (costp)
        nesim_cost_free(costp);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    free(x), free(y), free(ya), free(lab);
    nesim_infer_close(m);
    return rc;
}

/* ---- networks ---- */

typedef struct net_sink {
    nesim_isi isi;
    nesim_recorder *rec;
    uint64_t checksum;
} net_sink;

static int on_net_spike(void *ctx, int64_t t, uint32_t id, int pop)
{
    net_sink *ns = ctx;
    nesim_isi_add(&ns->isi, id, t);
    ns->checksum = nesim_spike_checksum_add(ns->checksum, t, id);
    return ns->rec ? nesim_record_net_spike(ns->rec, t, id, pop) : 0;
}

static int run_network(const nesim_run_opts *o, const nesim_spec *spec, json_t **report, nesim_error *err)
{
    double seconds = o->seconds > 0 ? o->seconds : 1;
    double ticks_d = seconds / spec->tick;
    if (!(ticks_d < 9.2e18))
        return nesim_fail(err, NESIM_EINVAL, "--seconds: %g s is more ticks of %g s than virtual time holds", seconds,
                          spec->tick);
    int64_t total = (int64_t)llround(ticks_d);
    nesim_graph *g;
    uint64_t seed = o->has_seed ? o->seed : spec->seed;
    int rc = nesim_spec_build_graph(spec, seed, &g, err);
    if (rc)
        return rc;
    nesim_net *net = nesim_net_from_graph(g, err);
    if (!net)
        return err->code;
    net_sink ns = {.checksum = NESIM_SPIKE_CHECKSUM_INIT};
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    double close_s = -1;
    if ((rc = nesim_isi_init(&ns.isi, g->n_total, err)) || (rc = load_chips(o, &chip, &dense, err)))
        goto done;
    if (o->trace) {
        nesim_record_opts ro = {.path = o->trace, .level = o->record, .spec = spec,
                                .chip = chip ? chip->name : NULL, .dense = chip ? dense->name : NULL, .seed = seed};
        if ((rc = nesim_record_begin(&ro, NULL, net, &ns.rec, err)))
            goto done;
    }
    nesim_set_sink(net, on_net_spike, &ns);
    double t0 = now_s();
    int64_t chunk = o->progress ? (total + 99) / 100 : total;
    for (int64_t done = 0; done < total && !rc; done += chunk) {
        rc = nesim_run(net, total - done < chunk ? total - done : chunk, err);
        if (o->progress)
            o->progress(o->user, (double)(done + chunk < total ? done + chunk : total) / (double)total);
    }
    double wall = now_s() - t0;
    int interrupted = nesim_record_interrupted(ns.rec);
    if (!rc && chip && !(rc = nesim_cost_network(chip, dense, net, ns.isi.count, total, &cost, err)))
        costp = &cost;
    json_t *r = NULL;
    if (!rc) {
        nesim_run_extras ex = {.wall_s = wall, .peak_rss_mib = peak_rss_mib(), .has_checksum = 1,
                               .spike_checksum = ns.checksum};
        if (!(r = nesim_report_network(spec, net, &ns.isi, total, costp, &ex)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
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
        else if (!rc && rc2)
            rc = rc2, *err = e2;
    }
    if (!rc && close_s >= 0)
        json_object_set_new(r, "trace_close_s", json_real(close_s));
    if (rc)
        json_decref(r);
    else
        *report = r;
done:
    if (ns.rec)
        nesim_record_end(ns.rec, NULL, NULL, -1, -1, NESIM_TRACE_FAILED, NULL);
    if (costp)
        nesim_cost_free(costp);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_isi_free(&ns.isi);
    nesim_net_free(net);
    return rc;
}

int nesim_run_spec(const nesim_run_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    nesim_spec *spec = NULL;
    int rc = nesim_spec_load(o->spec, &spec, err);
    if (rc)
        return rc;
    if (spec->n_layers) {
        if (o->seconds > 0)
            rc = nesim_fail(err, NESIM_EINVAL, "--seconds: %s is a layer model (its samples set its time)", spec->file);
        else
            rc = run_layers(o, spec, report, err);
    } else {
        const char *bad = o->input ? "--input" : o->random_n ? "--random-input" : o->samples ? "--samples"
                          : o->output ? "--output" : o->labels ? "--labels" : NULL;
        if (bad)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %s is a network (give --seconds S, not samples)", bad, spec->file);
        else
            rc = run_network(o, spec, report, err);
    }
    nesim_spec_free(spec);
    return rc;
}
