/* record_lm.c — recording a language-model run into a trace (see record_lm.h). */
#include "traces/record_lm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "traces/sha256.h"

struct nesim_lm_recorder {
    nesim_trace *t;
    nesim_trace_level level;
    int64_t run;
    nesim_trace_sigsave old_sig;
    int sigint;
    size_t np;    /* projections */
    size_t vocab;
};

static void recorder_free(nesim_lm_recorder *r)
{
    if (!r)
        return;
    if (r->sigint)
        nesim_trace_signals_restore(&r->old_sig);
    nesim_trace_close(r->t); /* ends a run still active as failed */
    free(r);
}

static int add_layers(nesim_lm_recorder *r, const nesim_lm_record_opts *o, nesim_error *err)
{
    const nesim_lm_graph *g = o->g;
    nesim_trace_layer_info tok = {.name = "tokens", .type = "embedding", .neurons = (int64_t)g->vocab, .fan_in = 1};
    int rc = nesim_trace_add_layer(r->t, &tok, NULL, err);
    for (size_t p = 0; !rc && p < r->np; p++) {
        const nesim_lm_node *n = &g->node[g->proj_node[p]];
        nesim_trace_layer_info li = {.name = n->name, .type = "linear",
                                     .coding = n->po.spiked ? nesim_coding_name(n->po.coding) : "none",
                                     .neurons = (int64_t)n->w.shape[1], .fan_in = (int64_t)n->w.shape[1]};
        rc = nesim_trace_add_layer(r->t, &li, NULL, err);
    }
    return rc;
}

int nesim_lm_record_begin(const nesim_lm_record_opts *o, nesim_lm_recorder **out, nesim_error *err)
{
    *out = NULL;
    nesim_lm_recorder *r = calloc(1, sizeof *r);
    if (!r)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    r->level = o->level;
    r->np = o->g->n_proj;
    r->vocab = o->g->vocab;
    const nesim_lm_model *m = o->g->m;
    int rc = nesim_trace_open(o->path, NESIM_TRACE_WRITE, &r->t, err);
    if (rc) {
        free(r);
        return rc;
    }
    /* every safetensors file of the checkpoint, with its SHA-256 */
    const size_t nw = m->nshards;
    nesim_trace_weight *w = calloc(nw + 1, sizeof *w);
    char(*hex)[65] = calloc(nw + 1, sizeof *hex);
    char(*path)[4096] = calloc(nw + 1, sizeof *path);
    if (!w || !hex || !path) {
        free(w), free(hex), free(path);
        recorder_free(r);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nw; i++) {
        nesim_error e;
        snprintf(path[i], sizeof path[i], "%s/%s", m->dir, m->shard_files[i]);
        w[i].file = path[i];
        w[i].hash = nesim_sha256_file(path[i], hex[i], &e) ? NULL : hex[i];
    }
    nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS, .record = o->level, .spec_file = o->spec_file,
                                 .spec_text = o->spec_text, .weights = w, .n_weights = nw, .chip = o->chip,
                                 .dense = o->chip ? o->dense : NULL, .tick_s = o->tick_s,
                                 .parent_run = o->parent_run, .note = o->note};
    rc = nesim_trace_begin_run(r->t, &info, &r->run, err);
    free(w), free(hex), free(path);
    if (!rc)
        rc = add_layers(r, o, err);
    if (!rc && !nesim_trace_signals_install(&r->old_sig, NULL))
        r->sigint = 1;
    if (rc) {
        recorder_free(r);
        return rc;
    }
    *out = r;
    return NESIM_OK;
}

/* ---- the engine's observers: projection p is trace layer 1 + p ---- */

static void on_spike(void *user, size_t proj, uint32_t channel, int64_t tick, int sign)
{
    nesim_lm_recorder *r = user;
    nesim_trace_spike(r->t, (int)proj + 1, channel, tick, sign);
}

static void on_activity(void *user, size_t proj, int64_t tick, int64_t events, int64_t sops)
{
    nesim_lm_recorder *r = user;
    nesim_trace_activity(r->t, (int)proj + 1, tick, events, sops);
}

static void on_code(void *user, size_t proj, size_t token, int64_t t0, int64_t steps, double vth)
{
    nesim_lm_recorder *r = user;
    nesim_trace_code(r->t, (int)proj + 1, (int64_t)token, t0, steps, vth);
}

static void on_token(void *user, size_t token, int64_t first, int64_t end)
{
    nesim_lm_recorder *r = user;
    nesim_trace_sample(r->t, (int64_t)token, first, end > first ? end - 1 : first);
    nesim_trace_sync(r->t); /* every projection's spikes and activity of the token are in */
}

nesim_lm_sink nesim_lm_record_sink(nesim_lm_recorder *r)
{
    const int spikes = r->level == NESIM_TRACE_SPIKES;
    return (nesim_lm_sink){.spike = spikes ? on_spike : NULL, .activity = on_activity,
                           .code = spikes ? on_code : NULL, .token = on_token, .user = r};
}

int nesim_lm_record_token(nesim_lm_recorder *r, size_t token, int32_t id, int64_t tick)
{
    (void)token;
    int rc = nesim_trace_activity(r->t, 0, tick, 1, 0);
    return rc ? rc : nesim_trace_spike(r->t, 0, id, tick, 1);
}

int64_t nesim_lm_record_run_id(const nesim_lm_recorder *r) { return r->run; }

int nesim_lm_record_interrupted(const nesim_lm_recorder *r)
{
    return r && r->sigint && nesim_trace_sigint_seen();
}

/* ---- the end ---- */

static void store_totals(nesim_lm_recorder *r, const char *prefix, const json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (!json_is_number(v))
            continue;
        char name[128];
        snprintf(name, sizeof name, "%s.%s", prefix, k);
        nesim_trace_metric(r->t, -1, name, json_number_value(v));
    }
}

int nesim_lm_record_end(nesim_lm_recorder *r, const json_t *report, int64_t prefill, nesim_trace_status status,
                        nesim_error *err)
{
    int interrupted = nesim_lm_record_interrupted(r);
    nesim_trace_metric(r->t, -1, "prefill_tokens", (double)prefill);
    if (status == NESIM_TRACE_COMPLETE && report) {
        static const char *const parts[] = {"total", "prefill", "decode"};
        for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
            const json_t *o = json_object_get(report, parts[i]);
            if (json_is_object(o))
                store_totals(r, parts[i], o);
        }
        const json_t *tot0 = json_object_get(report, "total");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(report, "projections"), i, p) {
            if (i >= r->np)
                break;
            nesim_trace_metric(r->t, (int)i + 1, "spiked", json_is_true(json_object_get(p, "spiked")));
            nesim_trace_metric(r->t, (int)i + 1, "silent_inputs",
                               json_number_value(json_object_get(p, "silent")));
            double in = json_number_value(json_object_get(p, "inputs"));
            double sil = json_number_value(json_object_get(p, "silent"));
            double spk = json_number_value(json_object_get(p, "spikes"));
            nesim_trace_metric(r->t, (int)i + 1, "inputs", in);
            /* the keys the layer report shows */
            nesim_trace_metric(r->t, (int)i + 1, "in", json_number_value(json_object_get(p, "in")));
            nesim_trace_metric(r->t, (int)i + 1, "neurons", json_number_value(json_object_get(p, "out")));
            nesim_trace_metric(r->t, (int)i + 1, "steps", json_number_value(json_object_get(p, "steps")));
            nesim_trace_metric(r->t, (int)i + 1, "spikes_per_channel", in > 0 ? spk / in : NAN);
            nesim_trace_metric(r->t, (int)i + 1, "silent_fraction", in > 0 ? sil / in : NAN);
            nesim_trace_metric(r->t, (int)i + 1, "frac_counts_0_7",
                               in > 0 ? json_number_value(json_object_get(p, "frac_counts_0_7")) : NAN);
        }
        nesim_trace_metric(r->t, 0, "in", 1);
        nesim_trace_metric(r->t, 0, "neurons", (double)r->vocab);
        nesim_trace_metric(r->t, 0, "steps", NAN);
        nesim_trace_metric(r->t, 0, "spikes_per_channel", NAN);
        nesim_trace_metric(r->t, 0, "silent_fraction", NAN);
        nesim_trace_metric(r->t, 0, "frac_counts_0_7", NAN);
        /* run totals under the layer report's keys */
        static const char *const keys[][2] = {{"spikes", "spikes"}, {"sops", "sops"},
                                              {"dense_macs", "ann_macs"}, {"frac_counts_0_7", "share_counts_le7"},
                                              {"silent_fraction", "sparsity"}};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            char name[64];
            snprintf(name, sizeof name, "totals.%s", keys[k][0]);
            nesim_trace_metric(r->t, -1, name, json_number_value(json_object_get(tot0, keys[k][1])));
        }
        double ci = json_number_value(json_object_get(tot0, "coded_inputs"));
        nesim_trace_metric(r->t, -1, "totals.spikes_per_channel",
                           ci > 0 ? json_number_value(json_object_get(tot0, "spikes")) / ci : NAN);
        const json_t *tot = json_object_get(report, "total");
        const json_t *sj = json_object_get(tot, "spiking_j"), *gj = json_object_get(tot, "graded_j");
        if (json_is_number(sj))
            nesim_trace_energy(r->t, -1, "spiking", json_number_value(sj));
        if (json_is_number(gj))
            nesim_trace_energy(r->t, -1, "graded", json_number_value(gj));
    }
    nesim_trace_status st = interrupted ? NESIM_TRACE_INTERRUPTED : status;
    int rc = nesim_trace_end_run(r->t, st, err);
    recorder_free(r);
    return rc;
}
