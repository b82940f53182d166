/* trace_run.c — recording `nesim run` into a trace (see trace_run.h). */
#include "cli/trace_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jsonmsg.h"
#include "traces/sha256.h"

/* Weight files named by the spec, each once, with their SHA-256. */
static size_t spec_weights(const nesim_spec *s, nesim_trace_weight *w, char (*hex)[65], size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_layers; i++) {
        const nesim_spec_tensor *ts[2] = {&s->layers[i].weight, &s->layers[i].bias};
        for (int k = 0; k < 2; k++) {
            const char *files[2] = {ts[k]->kind == NESIM_TSRC_FILE ? ts[k]->file : NULL,
                                    ts[k]->kind == NESIM_TSRC_FILE && !ts[k]->tensor ? ts[k]->scales : NULL};
            for (int f = 0; f < 2; f++) {
                if (!files[f] || n == cap)
                    continue;
                int seen = 0;
                for (size_t j = 0; j < n; j++)
                    seen |= strcmp(w[j].file, files[f]) == 0;
                if (seen)
                    continue;
                nesim_error e;
                w[n].file = files[f];
                w[n].hash = nesim_sha256_file(files[f], hex[n], &e) ? NULL : hex[n];
                n++;
            }
        }
    }
    return n;
}

int trace_run_begin(trace_run *tr, const char *path, const char *record, const nesim_spec *spec,
                    const nesim_infer *infer, const nesim_net *net, const char *chip, uint64_t seed,
                    int64_t parent, const char *note, nesim_error *err)
{
    memset(tr, 0, sizeof *tr);
    tr->tick = -1;
    int rc = nesim_trace_level_parse(record, &tr->level, err);
    if (rc)
        return rc;
    if ((rc = nesim_trace_open(path, NESIM_TRACE_WRITE, &tr->t, err)))
        return rc;
    enum { MAXW = 256 };
    nesim_trace_weight *w = calloc(MAXW, sizeof *w);
    char(*hex)[65] = calloc(MAXW, sizeof *hex);
    char *text = NULL; /* the spec's bytes as read, if it can still be read */
    size_t text_n;
    if (nesim_json_read_file(spec->file, (size_t)64 << 20, "model spec", "64 MiB", &text, &text_n, NULL))
        text = NULL;
    if (!w || !hex) {
        free(w), free(hex), free(text);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    nesim_trace_run_info info = {.kind = infer ? NESIM_TRACE_LAYERS : NESIM_TRACE_NETWORK, .record = tr->level,
                                 .spec_file = spec->file, .spec_text = text, .weights = w,
                                 .n_weights = spec_weights(spec, w, hex, MAXW), .chip = chip, .seed = seed,
                                 .has_seed = 1, .tick_s = spec->tick, .parent_run = parent, .note = note};
    rc = nesim_trace_begin_run(tr->t, &info, &tr->run, err);
    free(w), free(hex), free(text);
    if (infer) {
        nesim_infer_report none = {0};
        (void)none;
        for (size_t i = 0; !rc && i < spec->n_layers; i++) {
            const nesim_spec_layer *L = &spec->layers[i];
            int coded = L->type == NESIM_LAYER_LINEAR || L->type == NESIM_LAYER_CONV2D;
            nesim_trace_layer_info li = {.name = L->name, .type = nesim_layer_type_name(L->type),
                                         .coding = coded ? (L->graded ? "none" : nesim_coding_name(L->coding)) : NULL,
                                         .neurons = 0, .fan_in = 0};
            /* a layer's trace neurons are its input channels: the spikes it receives */
            li.neurons = (int64_t)nesim_infer_layer_inputs(infer, i);
            li.fan_in = li.neurons;
            rc = nesim_trace_add_layer(tr->t, &li, NULL, err);
        }
    } else {
        tr->net = net;
        tr->npop = nesim_population_count(net);
        uint32_t N = 0;
        for (int p = 0; p < tr->npop; p++)
            N += nesim_population_size(net, p);
        tr->spk = calloc((size_t)tr->npop, sizeof *tr->spk);
        tr->sops = calloc((size_t)tr->npop, sizeof *tr->sops);
        tr->fanout = calloc(N ? N : 1, sizeof *tr->fanout);
        if (!rc && (!tr->spk || !tr->sops || !tr->fanout))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        for (int j = 0; !rc && j < nesim_projection_count(net); j++) {
            const nesim_proj_spec *ps = nesim_projection_spec(net, j);
            uint32_t first = nesim_population_first(net, ps->pre);
            for (uint32_t i = 0; i < nesim_population_size(net, ps->pre); i++)
                tr->fanout[first + i] += nesim_projection_targets(net, j, i, NULL, 0);
        }
        for (int p = 0; !rc && p < tr->npop; p++) {
            nesim_trace_layer_info li = {.name = nesim_population_name(net, p),
                                         .type = nesim_population_dyn(net, p)->model->name,
                                         .neurons = nesim_population_size(net, p)};
            rc = nesim_trace_add_layer(tr->t, &li, NULL, err);
        }
    }
    if (!rc && !nesim_trace_sigint_install(&tr->old_int, NULL))
        tr->sigint = 1;
    if (rc) {
        nesim_error e2;
        nesim_trace_end_run(tr->t, NESIM_TRACE_FAILED, &e2);
        nesim_trace_close(tr->t);
        tr->t = NULL;
    }
    return rc;
}

static void on_spike(void *user, size_t layer, uint32_t channel, int64_t tick, int sign)
{
    trace_run *tr = user;
    nesim_trace_spike(tr->t, (int)layer, channel, tick, sign);
}

static void on_activity(void *user, size_t layer, int64_t tick, int64_t events, int64_t sops)
{
    trace_run *tr = user;
    nesim_trace_activity(tr->t, (int)layer, tick, events, sops);
}

static void on_sample(void *user, size_t sample, int64_t first, int64_t end)
{
    trace_run *tr = user;
    nesim_trace_sample(tr->t, (int64_t)sample, first, end > first ? end - 1 : first);
}

/* per-sample coding of each layer, kept for replay as metrics name@sample */
static void on_code(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth)
{
    trace_run *tr = user;
    char name[48];
    snprintf(name, sizeof name, "vth@%zu", sample);
    nesim_trace_metric(tr->t, (int)layer, name, vth);
    snprintf(name, sizeof name, "t0@%zu", sample);
    nesim_trace_metric(tr->t, (int)layer, name, (double)t0);
    snprintf(name, sizeof name, "steps@%zu", sample);
    nesim_trace_metric(tr->t, (int)layer, name, (double)steps);
}

nesim_infer_sink trace_run_infer_sink(trace_run *tr)
{
    return (nesim_infer_sink){.spike = tr->level == NESIM_TRACE_SPIKES ? on_spike : NULL,
                              .activity = on_activity, .sample = on_sample,
                              .code = tr->level == NESIM_TRACE_SPIKES ? on_code : NULL, .user = tr};
}

static void flush_tick(trace_run *tr)
{
    for (int p = 0; tr->tick >= 0 && p < tr->npop; p++)
        if (tr->spk[p]) {
            nesim_trace_activity(tr->t, p, tr->tick, tr->spk[p], tr->sops[p]);
            tr->spk[p] = tr->sops[p] = 0;
        }
}

int trace_run_net_spike(trace_run *tr, int64_t t, uint32_t id, int pop)
{
    if (t != tr->tick) {
        flush_tick(tr);
        tr->tick = t;
    }
    tr->spk[pop]++;
    tr->sops[pop] += (int64_t)tr->fanout[id];
    return nesim_trace_spike(tr->t, pop, id - nesim_population_first(tr->net, pop), t, 1) == NESIM_OK &&
                   !nesim_trace_sigint_seen()
               ? 0
               : 1;
}

int trace_run_interrupted(const trace_run *tr) { return tr->sigint && nesim_trace_sigint_seen(); }

static int finish(trace_run *tr, int status, nesim_error *err)
{
    if (tr->sigint)
        sigaction(SIGINT, &tr->old_int, NULL);
    nesim_trace_status st = status == NESIM_TRACE_COMPLETE && trace_run_interrupted(tr) ? NESIM_TRACE_INTERRUPTED
                                                                                          : (nesim_trace_status)status;
    int rc = nesim_trace_end_run(tr->t, st, err);
    nesim_trace_close(tr->t);
    tr->t = NULL;
    free(tr->spk), free(tr->sops), free(tr->fanout);
    return rc;
}

static void energy_rows(trace_run *tr, const nesim_cost *c)
{
    for (size_t i = 0; c && i < c->n; i++)
        for (int term = 0; term < NESIM_E_TERMS; term++)
            if (c->layer[i].e.term[term] != 0)
                nesim_trace_energy(tr->t, (int)i, nesim_energy_term_name(term), c->layer[i].e.term[term]);
}

int trace_run_end_layers(trace_run *tr, const nesim_infer_report *r, const nesim_cost *cost, int status,
                         nesim_error *err)
{
    for (size_t i = 0; r && status == NESIM_TRACE_COMPLETE && i < r->n_layers; i++) {
        const nesim_layer_report *l = &r->layers[i];
        const nesim_coded_stats *s = &l->st;
        if (!l->coding)
            continue;
        nesim_trace_metric(tr->t, (int)i, "steps", (double)s->steps);
        nesim_trace_metric(tr->t, (int)i, "vth_mean", s->vth);
        nesim_trace_metric(tr->t, (int)i, "dense_macs", l->dense_macs);
        nesim_trace_metric(tr->t, (int)i, "frac_counts_0_7", s->frac_small);
        nesim_trace_metric(tr->t, (int)i, "spikes_per_channel", s->spikes_per_channel);
        nesim_trace_metric(tr->t, (int)i, "activation_sparsity", s->inputs ? (double)s->silent / (double)s->inputs : 0);
        nesim_trace_metric(tr->t, (int)i, "clipped", (double)s->clipped);
        nesim_trace_metric(tr->t, (int)i, "neurons", (double)l->out);
        if (cost)
            nesim_trace_metric(tr->t, (int)i, "cores", (double)cost->layer[i].cores);
    }
    if (r && status == NESIM_TRACE_COMPLETE)
        nesim_trace_set_extent(tr->t, r->samples, r->ticks);
    energy_rows(tr, cost);
    return finish(tr, status, err);
}

int trace_run_end_network(trace_run *tr, int64_t ticks, const nesim_cost *cost, int status, nesim_error *err)
{
    flush_tick(tr);
    nesim_trace_set_extent(tr->t, -1, ticks);
    energy_rows(tr, cost);
    return finish(tr, status, err);
}
