/* report.c — building the report of a run (see report.h). */
#include "eval/report.h"

#include <math.h>
#include <string.h>

#include "eval/metrics.h"

static const char *const fixed_keys[] = {"name", "type", "coding", "in", "spikes", "sops",
                                         "first_spike_tick", "last_spike_tick", "energy", NULL};

int nesim_report_layer_fixed(const char *key)
{
    for (int i = 0; fixed_keys[i]; i++)
        if (strcmp(fixed_keys[i], key) == 0)
            return 1;
    return 0;
}

json_t *nesim_report_number(double v)
{
    if (!isfinite(v))
        return json_null();
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* Sets key to a number; a failed allocation is caught by the caller's final check. */
static void num(json_t *o, const char *key, double v) { json_object_set_new(o, key, nesim_report_number(v)); }

json_t *nesim_report_layer_new(const char *name, const char *type, const char *coding, double in, double spikes,
                               double sops, double first, double last)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "name", json_string(name ? name : ""));
    json_object_set_new(o, "type", str_or_null(type));
    json_object_set_new(o, "coding", str_or_null(coding));
    num(o, "in", in);
    num(o, "spikes", spikes);
    num(o, "sops", sops);
    num(o, "first_spike_tick", first < 0 ? NAN : first);
    num(o, "last_spike_tick", last < 0 ? NAN : last);
    return o;
}

/* ---- shared parts ---- */

static json_t *layer_energy(const nesim_cost_layer *L)
{
    json_t *e = json_object(), *t = json_object();
    if (!e || !t) {
        json_decref(e);
        json_decref(t);
        return NULL;
    }
    double total = 0;
    for (int k = 0; k < NESIM_E_TERMS; k++)
        if (L->e.term[k] != 0) { /* traces keep the nonzero terms */
            num(t, nesim_energy_term_name(k), L->e.term[k]);
            total += L->e.term[k];
        }
    num(e, "total_j", total);
    json_object_set_new(e, "terms", t);
    return e;
}

static void add_cost(json_t *rep, const nesim_cost *c, double samples, int layers)
{
    const nesim_energy_report *E = &c->energy;
    json_t *en = json_object(), *terms = json_object(), *db = json_object(), *cu = json_object();
    json_object_set_new(en, "chip", json_string(c->chip));
    num(en, "total_j", E->total);
    num(en, "per_sop_j", E->per_sop);
    if (layers)
        num(en, "per_inference_j", samples > 0 ? E->total / samples : 0);
    num(en, "duration_s", E->duration_s);
    for (int t = 0; t < NESIM_E_TERMS; t++)
        num(terms, nesim_energy_term_name(t), E->term[t]);
    json_object_set_new(en, "terms", terms);
    json_object_set_new(db, "profile", json_string(c->dense));
    num(db, "fp16_arith_j", E->fp16_arith);
    num(db, "int8_arith_j", E->int8_arith);
    num(db, "fp16_with_memory_j", E->fp16_mem);
    num(db, "int8_with_memory_j", E->int8_mem);
    num(db, "spiking_with_memory_j", E->snn_arith_mem);
    if (layers) {
        json_t *sb = json_object();
        num(sb, "spikes_per_channel", c->spikes_per_channel);
        num(sb, "reduction_vs_fp16_mac", c->sb_vs_fp16);
        num(sb, "reduction_vs_int8_mac", c->sb_vs_int8);
        json_object_set_new(db, "spikingbrain_estimate", sb);
    }
    json_object_set_new(en, "dense_baselines", db);
    json_object_set_new(rep, "energy", en);
    num(cu, "cores", (double)c->map.cores_used);
    num(cu, "chips", (double)c->map.chips);
    num(cu, "max_hops", (double)c->map.max_hops);
    double crossings = 0;
    for (size_t i = 0; i < c->n; i++)
        crossings += c->layer[i].in.hops_chip;
    num(cu, "chip_crossings", crossings);
    num(cu, "routes", (double)c->map.routes);
    num(cu, "map_s", c->map_seconds);
    json_object_set_new(rep, "chip_usage", cu);
}

static void add_neurobench(json_t *rep, const nesim_neurobench *nb)
{
    json_t *o = json_object();
    num(o, "footprint_bytes", nb->footprint_bytes);
    num(o, "connection_sparsity", nb->connection_sparsity);
    num(o, "activation_sparsity", nb->activation_sparsity);
    num(o, "effective_macs", nb->effective_macs);
    num(o, "effective_acs", nb->effective_acs);
    num(o, "dense", nb->dense);
    num(o, "membrane_updates", nb->membrane_updates);
    num(o, "samples", nb->samples);
    json_object_set_new(rep, "neurobench", o);
}

static void add_extras(json_t *rep, const nesim_run_extras *x)
{
    if (!x)
        return;
    if (x->has_accuracy) {
        json_t *a = json_object();
        num(a, "spiking", x->acc_spiking);
        num(a, "ann", x->acc_ann);
        num(a, "agreement", x->acc_agree);
        json_object_set_new(rep, "accuracy", a);
    }
    if (x->has_checksum) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)x->spike_checksum);
        json_object_set_new(rep, "spike_checksum", json_string(hex));
    }
    if (x->wall_s >= 0)
        num(rep, "wall_s", x->wall_s);
    if (x->peak_rss_mib >= 0)
        num(rep, "peak_rss_mib", x->peak_rss_mib);
}

/* A report that could not be built whole (no memory) is none at all. */
static json_t *drop(json_t *rep, json_t *layers)
{
    json_decref(rep);
    json_decref(layers);
    return NULL;
}

/* ---- layer models ---- */

json_t *nesim_report_layers(const nesim_spec *spec, const nesim_infer_report *r, const nesim_cost *cost,
                            const nesim_run_extras *x)
{
    json_t *rep = json_object(), *layers = json_array();
    if (!rep || !layers)
        return drop(rep, layers);
    json_object_set_new(rep, "kind", json_string("layers"));
    json_object_set_new(rep, "model", json_string(spec->name));
    json_object_set_new(rep, "spec", json_string(spec->file));
    num(rep, "samples", (double)r->samples);
    num(rep, "tick_s", spec->tick);
    int64_t inputs = 0, small = 0, silent = 0;
    for (size_t i = 0; i < r->n_layers; i++) {
        const nesim_layer_report *l = &r->layers[i];
        const nesim_coded_stats *s = &l->st;
        json_t *o = nesim_report_layer_new(l->name, l->type, l->coding, (double)l->in, (double)s->spikes,
                                           (double)s->sops, (double)s->first_tick, (double)s->last_tick);
        if (!o)
            return drop(rep, layers);
        num(o, "neurons", (double)l->out);
        if (l->coding) {
            double eff, dense;
            int ac;
            nesim_metrics_layer_ops(l, &eff, &dense, &ac);
            num(o, "steps", (double)s->steps);
            num(o, "vth_mean", s->vth);
            num(o, "frac_counts_0_7", s->frac_small);
            num(o, "spikes_per_channel", s->spikes_per_channel);
            num(o, "silent_fraction", s->inputs ? (double)s->silent / (double)s->inputs : 0);
            num(o, "clipped", (double)s->clipped);
            num(o, "dense_macs", l->dense_macs);
            if (l->def->sl->graded)
                num(o, "graded_macs", l->graded_macs);
            num(o, "membrane_updates", (double)s->updates);
            num(o, "neurobench_effective_ops", eff);
            num(o, "neurobench_dense", dense);
            num(o, "neurobench_ac", ac);
            inputs += s->inputs;
            small += s->inputs - s->hist[NESIM_CODED_HIST];
            silent += s->silent;
        }
        if (cost && i < cost->n && l->coding) {
            num(o, "cores", (double)cost->layer[i].cores);
            num(o, "compartments", (double)cost->layer[i].compartments);
            json_object_set_new(o, "energy", layer_energy(&cost->layer[i]));
        }
        json_array_append_new(layers, o);
    }
    json_object_set_new(rep, "layers", layers);
    nesim_neurobench nb;
    nesim_own_metrics own;
    nesim_metrics_layers(r, &nb, &own);
    json_t *t = json_object();
    num(t, "spikes", (double)r->spikes);
    num(t, "sops", (double)r->sops);
    num(t, "dense_macs", r->dense_macs);
    num(t, "graded_macs", own.graded_macs);
    num(t, "virtual_ticks", (double)r->ticks);
    num(t, "events_per_tick_max", (double)r->activity_max);
    num(t, "events_per_tick_mean", r->activity_mean);
    num(t, "frac_counts_0_7", inputs ? (double)small / (double)inputs : 0);
    num(t, "spikes_per_channel", own.spikes_per_channel);
    num(t, "silent_fraction", inputs ? (double)silent / (double)inputs : 0);
    num(t, "membrane_updates", own.updates);
    json_object_set_new(rep, "totals", t);
    add_neurobench(rep, &nb);
    if (spec->has_published) {
        json_t *p = json_object();
        json_object_set_new(p, "source", json_string(spec->pub_source));
        num(p, "frac_counts_0_7", spec->pub_frac_small);
        num(p, "spikes_per_channel", spec->pub_spikes_per_channel);
        num(p, "silent_fraction", spec->pub_silent);
        json_object_set_new(rep, "published", p);
    }
    if (cost)
        add_cost(rep, cost, (double)r->samples, 1);
    add_extras(rep, x);
    return rep;
}

/* ---- networks ---- */

json_t *nesim_report_network(const nesim_spec *spec, const nesim_net *net, const nesim_isi *isi, int64_t ticks,
                             const nesim_cost *cost, const nesim_run_extras *x)
{
    json_t *rep = json_object(), *layers = json_array();
    if (!rep || !layers)
        return drop(rep, layers);
    const nesim_graph *g = nesim_net_graph(net);
    double seconds = (double)ticks * g->tick_s;
    json_object_set_new(rep, "kind", json_string("network"));
    json_object_set_new(rep, "model", json_string(spec ? spec->name : "network"));
    json_object_set_new(rep, "spec", str_or_null(spec ? spec->file : NULL));
    num(rep, "neurons", (double)g->n_total);
    num(rep, "seconds", seconds);
    num(rep, "tick_s", g->tick_s);
    uint64_t sops = 0, preds = 0, ups = 0;
    for (int p = 0; p < g->n_pops; p++) {
        const nesim_graph_pop *P = &g->pops[p];
        const nesim_counters *c = nesim_population_counters(net, p);
        int64_t first = -1, last = -1;
        double out = 0; /* synaptic events of its spikes (in flight at the end too), as a trace counts them */
        for (uint32_t i = P->first; i < P->first + P->n; i++)
            if (isi->count[i]) {
                if (first < 0 || isi->first[i] < first)
                    first = isi->first[i];
                if (isi->last[i] > last)
                    last = isi->last[i];
                for (int k = 0; k < P->n_out; k++)
                    out += (double)isi->count[i] * (double)nesim_graph_fanout(g, P->out[k], i - P->first);
            }
        json_t *o = nesim_report_layer_new(P->name, P->dyn.model->name, NULL, 0, (double)c->spikes, out,
                                           (double)first, (double)last);
        if (!o)
            return drop(rep, layers);
        num(o, "neurons", P->n);
        num(o, "rate_hz", seconds > 0 ? (double)c->spikes / ((double)P->n * seconds) : 0);
        num(o, "sops_in", (double)c->sops); /* synaptic events delivered to it */
        num(o, "updates", (double)c->updates);
        num(o, "predictions", (double)c->predictions);
        if (cost && p < (int)cost->n) {
            num(o, "cores", (double)cost->layer[p].cores);
            num(o, "compartments", (double)cost->layer[p].compartments);
            json_object_set_new(o, "energy", layer_energy(&cost->layer[p]));
        }
        json_array_append_new(layers, o);
        sops += c->sops;
        preds += c->predictions;
        ups += c->updates;
    }
    json_object_set_new(rep, "layers", layers);
    nesim_isi_summary s;
    nesim_error e;
    if (nesim_isi_summarise(isi, seconds, &s, &e))
        return drop(rep, NULL);
    nesim_queue_stats qs = nesim_queue_statistics(net);
    json_t *t = json_object();
    num(t, "spikes", (double)s.spikes);
    num(t, "sops", (double)sops);
    num(t, "mean_rate_hz", s.mean_rate_hz);
    num(t, "isi_cv", s.cv_mean); /* null when no neuron has two intervals */
    num(t, "cv_neurons", s.cv_neurons);
    num(t, "silent_neurons", s.silent);
    num(t, "updates", (double)ups);
    num(t, "predictions", (double)preds);
    num(t, "virtual_ticks", (double)ticks);
    num(t, "queue_max", (double)qs.max_depth);
    num(t, "queue_mean", qs.mean_depth);
    json_object_set_new(rep, "totals", t);
    nesim_neurobench nb;
    nesim_own_metrics own;
    nesim_metrics_network(net, isi->count, isi->last, ticks, &nb, &own);
    add_neurobench(rep, &nb);
    if (cost)
        add_cost(rep, cost, 0, 0);
    add_extras(rep, x);
    return rep;
}

/* ---- flattening, for traces ---- */

static int visit_obj(const json_t *o, char *path, size_t len, size_t cap, int layer, nesim_report_visit v, void *u,
                     int top)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)o, key, val) {
        if (top && layer >= 0 && nesim_report_layer_fixed(key))
            continue;
        if (top && layer < 0 && strcmp(key, "layers") == 0)
            continue;
        size_t kl = strlen(key);
        if (len + kl + 2 > cap)
            continue; /* a key too long to name: not a report key */
        size_t n = len;
        if (n)
            path[n++] = '.';
        memcpy(path + n, key, kl + 1);
        int rc = 0;
        if (json_is_object(val))
            rc = visit_obj(val, path, n + kl, cap, layer, v, u, 0);
        else if (json_is_number(val))
            rc = v(u, layer, path, json_number_value(val));
        else if (json_is_null(val))
            rc = v(u, layer, path, NAN);
        path[len] = 0;
        if (rc)
            return rc;
    }
    return 0;
}

int nesim_report_numbers(const json_t *report, nesim_report_visit visit, void *user)
{
    char path[256] = "";
    const json_t *layers = json_object_get(report, "layers");
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
        int rc = visit_obj(l, path, 0, sizeof path, (int)i, visit, user, 1);
        if (rc)
            return rc;
    }
    return visit_obj(report, path, 0, sizeof path, -1, visit, user, 1);
}

int nesim_report_set_path(json_t *obj, const char *dotted, json_t *value)
{
    char part[256];
    const char *p = dotted;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot)
            return json_object_set_new(obj, p, value) ? -1 : 0;
        size_t n = (size_t)(dot - p);
        if (n >= sizeof part) {
            json_decref(value);
            return -1;
        }
        memcpy(part, p, n);
        part[n] = 0;
        json_t *next = json_object_get(obj, part);
        if (!next) {
            next = json_object();
            if (json_object_set_new(obj, part, next)) {
                json_decref(value);
                return -1;
            }
        } else if (!json_is_object(next)) {
            json_decref(value);
            return -1;
        }
        obj = next;
        p = dot + 1;
    }
}

int nesim_report_write_json(const json_t *report, FILE *out, nesim_error *err)
{
    if (!report)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
    if (json_dumpf(report, out, JSON_COMPACT) || fputc('\n', out) == EOF || fflush(out))
        return nesim_fail(err, NESIM_EIO, "writing the report failed");
    return NESIM_OK;
}
