/* record.c — recording a run into a trace (see record.h). */
#include "traces/record.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/report.h"
#include "net/jsonmsg.h"
#include "traces/sha256.h"

struct nesim_recorder {
    nesim_trace *t;
    nesim_trace_level level;
    int64_t run;
    nesim_trace_sigsave old_sig;
    int sigint;
    /* network runs: activity of the current tick, per population */
    const nesim_net *net;
    int64_t tick;
    int npop;
    int64_t *spk, *sops;
    uint64_t *fanout; /* synapses out of each neuron (global id) */
};

/* Every weight file the spec names, once each, with its SHA-256. */
/* Records file f (once) with its SHA-256 (NULL if it cannot be read now). */
static void add_file(const char *f, nesim_trace_weight *out, char (*hex)[65], size_t *n)
{
    if (!f)
        return;
    for (size_t j = 0; j < *n; j++)
        if (strcmp(out[j].file, f) == 0)
            return;
    nesim_error e;
    out[*n].file = f;
    out[*n].hash = nesim_sha256_file(f, hex[*n], &e) ? NULL : hex[*n];
    (*n)++;
}

/* Every file the spec's numbers come from: layer weights and scales, and a
 * network's listed synapses, matrices and per-neuron parameters. */
static int spec_weights(const nesim_spec *s, nesim_trace_weight **out, char (**hex)[65], size_t *n)
{
    size_t cap = 2 * s->n_layers * 2 + 1 + s->n_projs * (1 + NESIM_SYN_LISTS);
    for (size_t i = 0; i < s->n_pops; i++)
        cap += s->pops[i].n_arrays;
    *out = calloc(cap, sizeof **out);
    *hex = calloc(cap, sizeof **hex);
    *n = 0;
    if (!*out || !*hex)
        return -1;
    for (size_t i = 0; i < s->n_pops; i++)
        for (size_t k = 0; k < s->pops[i].n_arrays; k++)
            add_file(s->pops[i].arrays[k].file, *out, *hex, n);
    for (size_t i = 0; i < s->n_projs; i++) {
        add_file(s->projs[i].has_matrix ? s->projs[i].matrix.file : NULL, *out, *hex, n);
        for (int k = 0; k < NESIM_SYN_LISTS; k++)
            add_file(s->projs[i].has_syn[k] ? s->projs[i].syn[k].file : NULL, *out, *hex, n);
    }
    for (size_t i = 0; i < s->n_layers; i++) {
        const nesim_spec_tensor *ts[2] = {&s->layers[i].weight, &s->layers[i].bias};
        for (int k = 0; k < 2; k++) {
            const char *files[2] = {ts[k]->kind == NESIM_TSRC_FILE ? ts[k]->file : NULL,
                                    ts[k]->kind == NESIM_TSRC_FILE && !ts[k]->tensor ? ts[k]->scales : NULL};
            for (int f = 0; f < 2; f++)
                add_file(files[f], *out, *hex, n);
        }
    }
    return 0;
}

static int add_layers(nesim_recorder *r, const nesim_spec *spec, const nesim_infer *m, nesim_error *err)
{
    int rc = NESIM_OK;
    for (size_t i = 0; !rc && i < spec->n_layers; i++) {
        const nesim_spec_layer *L = &spec->layers[i];
        int coded = L->type == NESIM_LAYER_LINEAR || L->type == NESIM_LAYER_CONV2D;
        int64_t in = (int64_t)nesim_infer_layer_inputs(m, i);
        nesim_trace_layer_info li = {.name = L->name, .type = nesim_layer_type_name(L->type),
                                     .coding = coded ? (L->graded ? "none" : nesim_coding_name(L->coding)) : NULL,
                                     .neurons = in, .fan_in = in};
        rc = nesim_trace_add_layer(r->t, &li, NULL, err);
    }
    return rc;
}

static int add_populations(nesim_recorder *r, const nesim_net *net, nesim_error *err)
{
    const nesim_graph *g = nesim_net_graph(net);
    r->net = net;
    r->npop = g->n_pops;
    r->spk = calloc((size_t)r->npop + 1, sizeof *r->spk);
    r->sops = calloc((size_t)r->npop + 1, sizeof *r->sops);
    r->fanout = calloc(g->n_total ? g->n_total : 1, sizeof *r->fanout);
    if (!r->spk || !r->sops || !r->fanout)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int j = 0; j < g->n_projs; j++) {
        const nesim_graph_pop *pre = &g->pops[g->projs[j].s.pre];
        for (uint32_t i = 0; i < pre->n; i++)
            r->fanout[pre->first + i] += nesim_graph_fanout(g, j, i);
    }
    int rc = NESIM_OK;
    for (int p = 0; !rc && p < r->npop; p++) {
        nesim_trace_layer_info li = {.name = g->pops[p].name, .type = g->pops[p].dyn.model->name,
                                     .neurons = g->pops[p].n};
        rc = nesim_trace_add_layer(r->t, &li, NULL, err);
    }
    return rc;
}

static void recorder_free(nesim_recorder *r)
{
    if (!r)
        return;
    if (r->sigint)
        nesim_trace_signals_restore(&r->old_sig);
    nesim_trace_close(r->t); /* ends a run still active as failed */
    free(r->spk);
    free(r->sops);
    free(r->fanout);
    free(r);
}

int nesim_record_begin(const nesim_record_opts *o, const nesim_infer *m, const nesim_net *net, nesim_recorder **out,
                       nesim_error *err)
{
    *out = NULL;
    nesim_recorder *r = calloc(1, sizeof *r);
    if (!r)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    r->level = o->level;
    r->tick = -1;
    int rc = nesim_trace_open(o->path, NESIM_TRACE_WRITE, &r->t, err);
    if (rc) {
        free(r);
        return rc;
    }
    nesim_trace_weight *w = NULL;
    char(*hex)[65] = NULL;
    size_t nw = 0;
    char *text = NULL; /* the spec's bytes as read, if it can still be read */
    size_t text_n;
    if (nesim_json_read_file(o->spec->file, (size_t)64 << 20, "model spec", "64 MiB", &text, &text_n, NULL))
        text = NULL;
    if (spec_weights(o->spec, &w, &hex, &nw)) {
        free(w), free(hex), free(text);
        recorder_free(r);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    nesim_trace_run_info info = {.kind = m ? NESIM_TRACE_LAYERS : NESIM_TRACE_NETWORK, .record = o->level,
                                 .spec_file = o->spec->file, .spec_text = text, .weights = w, .n_weights = nw,
                                 .chip = o->chip, .dense = o->chip ? o->dense : NULL, .seed = o->seed,
                                 .has_seed = 1, .tick_s = o->spec->tick, .parent_run = o->parent_run,
                                 .note = o->note};
    rc = nesim_trace_begin_run(r->t, &info, &r->run, err);
    free(w), free(hex), free(text);
    if (!rc)
        rc = m ? add_layers(r, o->spec, m, err) : add_populations(r, net, err);
    if (!rc && !nesim_trace_signals_install(&r->old_sig, NULL))
        r->sigint = 1;
    if (rc) {
        recorder_free(r);
        return rc;
    }
    *out = r;
    return NESIM_OK;
}

/* ---- the layer runner's observers ---- */

static void on_spike(void *user, size_t layer, uint32_t channel, int64_t tick, int sign)
{
    nesim_recorder *r = user;
    nesim_trace_spike(r->t, (int)layer, channel, tick, sign);
}

static void on_activity(void *user, size_t layer, int64_t tick, int64_t events, int64_t sops)
{
    nesim_recorder *r = user;
    nesim_trace_activity(r->t, (int)layer, tick, events, sops);
}

static void on_sample(void *user, size_t sample, int64_t first, int64_t end)
{
    nesim_recorder *r = user;
    nesim_trace_sample(r->t, (int64_t)sample, first, end > first ? end - 1 : first);
    nesim_trace_sync(r->t); /* every layer's spikes and activity of the sample are in */
}

static void on_code(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth)
{
    nesim_recorder *r = user;
    nesim_trace_code(r->t, (int)layer, (int64_t)sample, t0, steps, vth);
}

nesim_infer_sink nesim_record_infer_sink(nesim_recorder *r)
{
    return (nesim_infer_sink){.spike = r->level == NESIM_TRACE_SPIKES ? on_spike : NULL,
                              .activity = on_activity, .sample = on_sample,
                              .code = r->level == NESIM_TRACE_SPIKES ? on_code : NULL, .user = r};
}

/* ---- networks ---- */

static void flush_tick(nesim_recorder *r)
{
    for (int p = 0; r->tick >= 0 && p < r->npop; p++)
        if (r->spk[p]) {
            nesim_trace_activity(r->t, p, r->tick, r->spk[p], r->sops[p]);
            r->spk[p] = r->sops[p] = 0;
        }
    if (r->tick >= 0)
        nesim_trace_sync(r->t); /* the tick is whole: spikes and activity */
}

int nesim_record_chip_steps(nesim_recorder *r, const double *seconds, int64_t n)
{
    return nesim_trace_chip_steps(r->t, seconds, n);
}

int nesim_record_net_spike(nesim_recorder *r, int64_t t, uint32_t id, int pop)
{
    if (t != r->tick) {
        flush_tick(r);
        r->tick = t;
    }
    r->spk[pop]++;
    r->sops[pop] += (int64_t)r->fanout[id];
    int rc = nesim_trace_spike(r->t, pop, id - nesim_population_first(r->net, pop), t, 1);
    return rc != NESIM_OK || nesim_trace_sigint_seen();
}

int64_t nesim_record_run_id(const nesim_recorder *r) { return r->run; }

int nesim_record_interrupted(const nesim_recorder *r) { return r && r->sigint && nesim_trace_sigint_seen(); }

/* ---- the end ---- */

static int store_number(void *user, int layer, const char *name, double value)
{
    nesim_recorder *r = user;
    if (layer < 0 && !strcmp(name, "trace_close_s"))
        return 0; /* closing the trace is not the run's */
    return nesim_trace_metric(r->t, layer, name, value) != NESIM_OK;
}

int nesim_record_end(nesim_recorder *r, const json_t *report, const nesim_cost *cost, int64_t samples, int64_t ticks,
                     nesim_trace_status status, nesim_error *err)
{
    if (r->net)
        flush_tick(r);
    int interrupted = nesim_record_interrupted(r);
    if (status == NESIM_TRACE_COMPLETE) {
        if (report) {
            nesim_report_numbers(report, store_number, r);
            const char *sum = json_string_value(json_object_get(report, "spike_checksum"));
            if (sum)
                nesim_trace_set_checksum(r->t, sum);
        }
        for (size_t i = 0; cost && i < cost->n; i++)
            for (int term = 0; term < NESIM_E_TERMS; term++)
                if (cost->layer[i].e.term[term] != 0)
                    nesim_trace_energy(r->t, (int)i, nesim_energy_term_name(term), cost->layer[i].e.term[term]);
        nesim_trace_set_extent(r->t, samples, ticks);
    } else if (r->net) {
        nesim_trace_set_extent(r->t, -1, ticks);
    }
    nesim_trace_status st = interrupted ? NESIM_TRACE_INTERRUPTED : status;
    int rc = nesim_trace_end_run(r->t, st, err);
    recorder_free(r);
    return rc;
}
