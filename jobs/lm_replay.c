/* lm_replay.c — replaying a recorded language-model run from one of its
 * projections (see replay.h, nesim_lm_replay). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/lm.h"
#include "jobs/replay.h"
#include "net/lm.h"
#include "net/lm_graph.h"
#include "traces/rebuild.h"

/* The recorded token ids: layer 0's spikes, one per sample, in tick order. */
static int recorded_tokens(nesim_trace *db, const nesim_trace_run *run, size_t S, size_t vocab, int32_t *ids,
                           nesim_error *err)
{
    nesim_trace_spike_iter *it = NULL;
    int rc = nesim_trace_spikes_open(db, run->id, 0, 0, NESIM_TRACE_TICK_MAX, &it, err);
    size_t n = 0;
    for (bool got = true; !rc && got;) {
        nesim_trace_spike_rec sp;
        if ((rc = nesim_trace_spikes_next(it, &sp, &got, err)) || !got)
            break;
        if (n >= S || sp.neuron < 0 || (uint64_t)sp.neuron >= vocab || sp.sign != 1) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld, layer 0 (tokens): spike %zu (neuron %lld, tick %lld) is "
                            "not one token id below %zu per sample", nesim_trace_path(db), (long long)run->id, n,
                            (long long)sp.neuron, (long long)sp.tick, vocab);
            break;
        }
        ids[n++] = (int32_t)sp.neuron;
    }
    nesim_trace_spikes_close(it);
    if (!rc && n != S)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: %zu samples but %zu recorded tokens (layer 0)",
                        nesim_trace_path(db), (long long)run->id, S, n);
    return rc;
}

/* The name of trace layer `layer`, after checking the run has a layer per
 * projection and the token stream. */
static int layer_name(nesim_trace *db, const nesim_trace_run *run, size_t np, int layer, char *buf, size_t cap,
                      nesim_error *err)
{
    nesim_trace_layer *L = NULL;
    size_t n = 0;
    int rc = nesim_trace_layers(db, run->id, &L, &n, err);
    if (!rc && n != np + 1)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld has %zu layers; its spec has %zu projections and the token "
                        "stream", nesim_trace_path(db), (long long)run->id, n, np);
    if (!rc)
        snprintf(buf, cap, "%s", L[layer].name);
    nesim_trace_layers_free(L, n);
    return rc;
}

/* The run-level metric `name`, or def. */
static double run_metric(nesim_trace *db, int64_t run, const char *name, double def, nesim_error *err)
{
    nesim_trace_value *v = NULL;
    size_t n = 0;
    double out = def;
    if (nesim_trace_metrics(db, run, &v, &n, err))
        return def;
    for (size_t i = 0; i < n; i++)
        if (v[i].layer < 0 && !strcmp(v[i].name, name))
            out = v[i].value;
    nesim_trace_values_free(v, n);
    return out;
}

/* The spec with the spiked projections numbered above P set to o's coding and k. */
static json_t *changed_spec(const json_t *spec, size_t P, const nesim_replay_opts *o)
{
    json_t *s = json_deep_copy(spec);
    size_t i, p = 0;
    json_t *e;
    json_array_foreach(json_object_get(s, "nodes"), i, e) {
        const char *tn = json_string_value(json_object_get(e, "type"));
        if (!tn || strcmp(tn, "linear"))
            continue;
        const char *cn = json_string_value(json_object_get(e, "coding"));
        if (p++ <= P || !cn || !strcmp(cn, "none"))
            continue;
        if (o->coding >= 0)
            json_object_set_new(e, "coding", json_string(nesim_coding_name((nesim_coding)o->coding)));
        if (o->k > 0)
            json_object_set_new(e, "k", json_real(o->k));
    }
    return s;
}

int nesim_lm_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    nesim_trace *db = NULL;
    nesim_trace_run run = {0};
    nesim_lm_model *m = NULL;
    json_t *spec = NULL, *spec2 = NULL, *rep = NULL;
    nesim_lm_graph *g = NULL;
    int32_t *ids = NULL;
    double *cnt = NULL, *vth = NULL;
    int64_t *t0 = NULL, *counts = NULL;
    int layer = -1;
    char label[96];
    int rc = nesim_trace_open(o->db, NESIM_TRACE_READ, &db, err);
    if (!rc)
        rc = nesim_trace_get_run(db, o->run, &run, err);
    if (!rc && (run.kind != NESIM_TRACE_LAYERS || run.record != NESIM_TRACE_SPIKES || run.status != NESIM_TRACE_COMPLETE))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld must be a complete run recorded with --record spikes",
                        o->db, (long long)o->run);
    snprintf(label, sizeof label, "%s: run %lld's spec", o->db, (long long)o->run);
    if (!rc && !(spec = run.spec_text ? json_loads(run.spec_text, JSON_REJECT_DUPLICATES, NULL) : NULL))
        rc = nesim_fail(err, NESIM_EINVAL, "%s is not JSON", label);
    if (!rc)
        rc = nesim_rebuild_check_weights(run.weights, run.id, err);
    const char *dir = json_string_value(json_object_get(spec, "checkpoint"));
    if (!rc && !dir)
        rc = nesim_fail(err, NESIM_EINVAL, "%s names no checkpoint", label);
    if (!rc)
        rc = nesim_lm_open(dir, &m, err);
    if (!rc)
        rc = nesim_lm_graph_from_json(m, spec, label, &g, err);
    const size_t np = g ? g->n_proj : 0;
    if (!rc)
        rc = nesim_trace_find_layer(db, run.id, o->from_layer, &layer, err);
    if (!rc && (layer < 1 || (size_t)layer > np))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: layer %d is %s; replay starts at a projection (1..%zu)",
                        o->db, (long long)run.id, layer, layer == 0 ? "the token stream" : "not a projection", np);
    const size_t P = rc ? 0 : (size_t)layer - 1;
    const nesim_lm_node *pn = rc ? NULL : &g->node[g->proj_node[P]];
    char lname[256] = "";
    if (!rc && !(rc = layer_name(db, &run, np, layer, lname, sizeof lname, err)) && strcmp(lname, pn->name))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: layer %d is '%s' but its spec's projection %zu is '%s'",
                        o->db, (long long)run.id, layer, lname, P, pn->name);
    if (!rc && !pn->po.spiked)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: layer %d is graded (coding none): it has no spikes to "
                        "replay from", o->db, (long long)run.id, layer);
    const size_t S = rc || run.samples < 1 ? 0 : (size_t)run.samples;
    if (!rc && (S == 0 || S > m->cfg.max_pos))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: %lld samples; a language-model run has 1..%zu tokens",
                        o->db, (long long)run.id, (long long)run.samples, m->cfg.max_pos);
    const size_t in = rc ? 0 : (size_t)pn->w.shape[1];
    if (!rc) {
        ids = malloc(S * sizeof *ids);
        cnt = calloc(S * in, sizeof *cnt);
        counts = malloc(S * in * sizeof *counts);
        vth = calloc(S, sizeof *vth);
        t0 = calloc(S, sizeof *t0);
        if (!ids || !cnt || !counts || !vth || !t0)
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = recorded_tokens(db, &run, S, m->cfg.vocab, ids, err);
    if (!rc)
        rc = nesim_rebuild_counts(db, &run, layer, pn->po.coding, S, in, cnt, vth, t0, err);
    for (size_t k = 0; !rc && k < S * in; k++)
        counts[k] = (int64_t)cnt[k];
    double pf = rc ? 0 : run_metric(db, run.id, "prefill_tokens", (double)S, err);
    size_t prefill = pf >= 0 && pf <= (double)S ? (size_t)pf : S;
    if (!rc && !(spec2 = changed_spec(spec, P, o)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    nesim_trace_close(db); /* the recorder may write the same file */
    db = NULL;
    const char *out = o->trace ? o->trace : o->db;
    if (!rc) {
        char note[160];
        snprintf(note, sizeof note, "replay of run %lld from layer %d", (long long)run.id, layer);
        nesim_lm_job_opts jo;
        nesim_lm_job_opts_init(&jo);
        jo.spec = run.spec_file ? run.spec_file : dir;
        jo.spec_json = spec2;
        jo.ids = ids, jo.n_ids = S, jo.prefill = prefill;
        jo.output = o->output;
        jo.chip = o->chip ? o->chip : run.chip;
        jo.dense = o->dense ? o->dense : run.dense;
        jo.trace = out, jo.record = o->record, jo.parent_run = run.id, jo.note = note;
        jo.expect_proj = (int64_t)P, jo.expect_counts = counts, jo.expect_vth = vth, jo.expect_tokens = S;
        jo.progress = o->progress, jo.user = o->user;
        rc = nesim_lm_job(&jo, &rep, err);
    }
    if (!rc) {
        json_t *rp = json_object(), *tr = json_object_get(rep, "trace");
        json_object_set_new(rp, "parent_run", json_integer(run.id));
        json_object_set_new(rp, "from_layer", json_integer(layer));
        json_object_set_new(rp, "from_layer_name", json_string(g->node[g->proj_node[P]].name));
        json_object_set_new(rp, "trace", json_string(out));
        json_object_set(rp, "run", json_object_get(tr, "run"));
        json_object_set_new(rep, "replay", rp);
        *report = rep;
    } else {
        json_decref(rep);
    }
    json_decref(spec);
    json_decref(spec2);
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
    free(ids), free(cnt), free(counts), free(vth), free(t0);
    nesim_trace_run_clear(&run);
    nesim_trace_close(db);
    return rc;
}
