/* report.c — text and JSON views of runs: the run list, the report of one
 * run rebuilt from the database alone, and the diff of two runs.
 *
 * Guarantees:
 * - Everything printed comes from the trace file; nothing is recomputed
 *   from the spec or the weights.
 * - The JSON report's layer objects use the key names of `nesim run --json`
 *   ("in", "neurons", "spikes", "sops", "first_spike_tick",
 *   "last_spike_tick"), and a layer's stored metrics are merged in under
 *   their own names (never overriding those keys), so a run traced with its
 *   live metrics compares key for key with its live report.
 * - Unknown values (a run that never ended, a level that stored nothing)
 *   print as "?" in text and null in JSON, never as a made-up 0.
 */
#include "traces/store_internal.h"

#include "eval/report.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* int64 counts in a trace stay below 2^53, so a double carries them exactly. */
static const char *grouped(int64_t v, char *buf, size_t n) { return nesim_fmt_grouped((double)v, buf, n); }

/* A count, or "?" when unknown (-1). */
static const char *count_str(int64_t v, char *buf, size_t n)
{
    if (v < 0) {
        snprintf(buf, n, "?");
        return buf;
    }
    return grouped(v, buf, n);
}

static const char *delta_str(int64_t a, int64_t b, char *buf, size_t n)
{
    if (a < 0 || b < 0) {
        snprintf(buf, n, "?");
        return buf;
    }
    if (n < 2) {
        buf[0] = 0;
        return buf;
    }
    buf[0] = '+'; /* overwritten by grouped() unless b > a */
    grouped(b - a, buf + (b > a), n - 1);
    return buf;
}

static json_t *json_count(int64_t v) { return v < 0 ? json_null() : json_integer(v); }

static json_t *json_str(const char *s) { return s ? json_string(s) : json_null(); }

static int write_json(json_t *j, FILE *out, nesim_error *err)
{
    if (!j)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory building JSON");
    int bad = json_dumpf(j, out, JSON_COMPACT);
    json_decref(j);
    if (bad || fputc('\n', out) == EOF)
        return nesim_fail(err, NESIM_EIO, "writing the report failed");
    return NESIM_OK;
}

static int check_out(FILE *out, nesim_error *err)
{
    if (fflush(out) || ferror(out))
        return nesim_fail(err, NESIM_EIO, "writing output failed");
    return NESIM_OK;
}

/* ------------------------------------------------------------ list */

int nesim_trace_list(nesim_trace *t, FILE *out, nesim_error *err)
{
    nesim_trace_run *runs;
    size_t n;
    int rc = nesim_trace_runs(t, &runs, &n, err);
    if (rc)
        return rc;
    if (!n)
        fprintf(out, "%s: no runs\n", t->path);
    else
        fprintf(out, "%5s  %-11s %-8s %-8s %-24s %8s %10s %14s  %s\n", "run", "status", "kind", "record",
                "started (UTC)", "samples", "ticks", "spikes", "spec");
    for (size_t i = 0; i < n && !rc; i++) {
        const nesim_trace_run *r = &runs[i];
        nesim_trace_totals tot;
        if ((rc = nesim_trace_totals_get(t, r->id, &tot, err)))
            break;
        char b1[32], b2[32], b3[32], parent[48] = "";
        if (r->parent_run)
            snprintf(parent, sizeof parent, "  (replay of run %" PRId64 ")", r->parent_run);
        fprintf(out, "%5" PRId64 "  %-11s %-8s %-8s %-24s %8s %10s %14s  %s%s\n", r->id,
                nesim_trace_status_name(r->status), nesim_trace_kind_name(r->kind),
                nesim_trace_level_name(r->record), r->started_at ? r->started_at : "", count_str(r->samples, b1, sizeof b1),
                count_str(r->virtual_ticks, b2, sizeof b2), count_str(tot.spikes, b3, sizeof b3),
                r->spec_file ? r->spec_file : "-", parent);
    }
    nesim_trace_runs_free(runs, n);
    return rc ? rc : check_out(out, err);
}

/* ------------------------------------------------------------ report */

typedef struct run_view {
    nesim_trace_run run;
    nesim_trace_layer *layers;
    size_t n_layers;
    nesim_trace_value *metrics, *energy;
    size_t n_metrics, n_energy;
    double *chip;           /* chip time per tick (table chip_steps), n_chip 0 if untimed */
    int64_t n_chip;
} run_view;

static void view_free(run_view *v)
{
    nesim_trace_run_clear(&v->run);
    nesim_trace_layers_free(v->layers, v->n_layers);
    nesim_trace_values_free(v->metrics, v->n_metrics);
    nesim_trace_values_free(v->energy, v->n_energy);
    free(v->chip);
    memset(v, 0, sizeof *v);
}

static int view_load(nesim_trace *t, int64_t run, run_view *v, nesim_error *err)
{
    memset(v, 0, sizeof *v);
    int rc = nesim_trace_get_run(t, run, &v->run, err);
    if (!rc)
        rc = nesim_trace_layers(t, run, &v->layers, &v->n_layers, err);
    if (!rc)
        rc = nesim_trace_metrics(t, run, &v->metrics, &v->n_metrics, err);
    if (!rc)
        rc = nesim_trace_energies(t, run, &v->energy, &v->n_energy, err);
    if (!rc)
        rc = nesim_trace_chip_steps_get(t, run, &v->chip, &v->n_chip, err);
    if (rc)
        view_free(v);
    return rc;
}

/* Energy of a layer (-1: run-level rows only; -2: all rows); *has = any row. */
static double energy_of(const run_view *v, int layer, bool *has)
{
    double j = 0;
    *has = false;
    for (size_t i = 0; i < v->n_energy; i++)
        if (layer == -2 || v->energy[i].layer == layer) {
            j += v->energy[i].value;
            *has = true;
        }
    return j;
}

static void totals_of(const run_view *v, int64_t *spikes, int64_t *sops)
{
    *spikes = *sops = 0;
    for (size_t i = 0; i < v->n_layers; i++) {
        *spikes = (*spikes < 0 || v->layers[i].spikes < 0) ? -1 : *spikes + v->layers[i].spikes;
        *sops = (*sops < 0 || v->layers[i].sops < 0) ? -1 : *sops + v->layers[i].sops;
    }
}


static json_t *run_json(const nesim_trace_run *r)
{
    json_t *o = json_object();
    json_t *weights = r->weights ? json_loads(r->weights, 0, NULL) : NULL;
    json_object_set_new(o, "id", json_integer(r->id));
    json_object_set_new(o, "status", json_string(nesim_trace_status_name(r->status)));
    json_object_set_new(o, "kind", json_string(nesim_trace_kind_name(r->kind)));
    json_object_set_new(o, "record", json_string(nesim_trace_level_name(r->record)));
    json_object_set_new(o, "spec_file", json_str(r->spec_file));
    json_object_set_new(o, "spec_hash", json_str(r->spec_hash));
    json_object_set_new(o, "weights", weights ? weights : json_null());
    json_object_set_new(o, "chip", json_str(r->chip));
    /* seeds above 2^63 would not survive as a JSON integer: a string then */
    if (!r->has_seed)
        json_object_set_new(o, "seed", json_null());
    else if (r->seed <= (uint64_t)INT64_MAX)
        json_object_set_new(o, "seed", json_integer((json_int_t)r->seed));
    else {
        char s[32];
        snprintf(s, sizeof s, "%" PRIu64, r->seed);
        json_object_set_new(o, "seed", json_string(s));
    }
    json_object_set_new(o, "tick_s", json_real(r->tick_s));
    json_object_set_new(o, "started_at", json_str(r->started_at));
    json_object_set_new(o, "ended_at", json_str(r->ended_at));
    json_object_set_new(o, "nesim_version", json_str(r->nesim_version));
    json_object_set_new(o, "parent_run", r->parent_run ? json_integer(r->parent_run) : json_null());
    json_object_set_new(o, "samples", json_count(r->samples));
    json_object_set_new(o, "virtual_ticks", json_count(r->virtual_ticks));
    json_object_set_new(o, "note", json_str(r->note));
    return o;
}

static json_t *energy_json(const run_view *v, int layer)
{
    json_t *e = json_object();
    for (size_t i = 0; i < v->n_energy; i++)
        if (layer == -2 || v->energy[i].layer == layer) {
            /* terms repeated (or summed across layers) add up */
            json_t *old = json_object_get(e, v->energy[i].name);
            double prev = old ? json_number_value(old) : 0;
            json_object_set_new(e, v->energy[i].name, nesim_report_number(prev + v->energy[i].value));
        }
    return e;
}

/* The report of the run rebuilt from the database alone (eval/report.h):
 * the fixed keys of each layer from the layers table, its metrics merged in,
 * its energy from the energy table, every run-level metric at its dotted
 * path, the strings from the run's row and stored spec; plus "run", the
 * trace's own record of where the run came from. */
static json_t *report_tree(const run_view *v)
{
    const nesim_trace_run *r = &v->run;
    json_t *root = json_object(), *layers = json_array();
    if (!root || !layers) {
        json_decref(root);
        json_decref(layers);
        return NULL;
    }
    json_t *spec = r->spec_text ? json_loads(r->spec_text, 0, NULL) : NULL;
    json_object_set_new(root, "kind", json_string(nesim_trace_kind_name(r->kind)));
    json_object_set_new(root, "model", json_str(json_string_value(json_object_get(spec, "name"))));
    json_object_set_new(root, "spec", json_str(r->spec_file));
    int placed = 0;
    for (size_t m = 0; m < v->n_metrics; m++) {
        if (v->metrics[m].layer >= 0)
            continue;
        if (!placed && strchr(v->metrics[m].name, '.')) {
            json_object_set(root, "layers", layers);
            placed = 1;
        }
        nesim_report_set_path(root, v->metrics[m].name, nesim_report_number(v->metrics[m].value));
    }
    if (!placed)
        json_object_set(root, "layers", layers);
    json_decref(layers); /* root holds it */
    if (v->n_chip > 0) { /* the stored steps, not the report's copy of their summary */
        double total = 0, mx = -1;
        int64_t at = 0;
        for (int64_t k = 0; k < v->n_chip; k++) {
            total += v->chip[k];
            if (v->chip[k] > mx)
                mx = v->chip[k], at = k;
        }
        nesim_report_set_path(root, "chip_time.steps", json_integer(v->n_chip));
        nesim_report_set_path(root, "chip_time.total_s", json_real(total));
        nesim_report_set_path(root, "chip_time.mean_step_s", json_real(total / (double)v->n_chip));
        nesim_report_set_path(root, "chip_time.max_step_s", json_real(mx));
        nesim_report_set_path(root, "chip_time.max_step", json_integer(at));
    }
    for (size_t i = 0; i < v->n_layers; i++) {
        const nesim_trace_layer *L = &v->layers[i];
        json_t *o = nesim_report_layer_new(L->name, L->type, L->coding, (double)L->fan_in,
                                           L->spikes < 0 ? NAN : (double)L->spikes, L->sops < 0 ? NAN : (double)L->sops,
                                           (double)L->first_tick, (double)L->last_tick);
        if (!o)
            continue;
        int has_neurons = 0;
        for (size_t m = 0; m < v->n_metrics; m++)
            if (v->metrics[m].layer == L->idx && !nesim_report_layer_fixed(v->metrics[m].name)) {
                nesim_report_set_path(o, v->metrics[m].name, nesim_report_number(v->metrics[m].value));
                has_neurons |= strcmp(v->metrics[m].name, "neurons") == 0;
            }
        if (!has_neurons) /* a trace that recorded no metrics: its neuron count */
            json_object_set_new(o, "neurons", json_integer(L->neurons));
        bool has;
        double total = energy_of(v, L->idx, &has);
        if (has) {
            json_t *e = json_object();
            json_object_set_new(e, "total_j", nesim_report_number(total));
            json_object_set_new(e, "terms", energy_json(v, L->idx));
            json_object_set_new(o, "energy", e);
        }
        json_array_append_new(layers, o);
    }
    /* what a trace without a recorded report (a synthetic writer, an old
     * schema, a run that never ended) still knows */
    if (!json_object_get(root, "samples") && r->samples >= 0)
        json_object_set_new(root, "samples", json_integer(r->samples));
    if (!json_object_get(root, "tick_s"))
        json_object_set_new(root, "tick_s", nesim_report_number(r->tick_s));
    json_t *tot = json_object_get(root, "totals");
    if (!json_is_object(tot)) {
        tot = json_object();
        json_object_set_new(root, "totals", tot);
    }
    int64_t spikes, sops;
    totals_of(v, &spikes, &sops);
    if (!json_object_get(tot, "spikes"))
        json_object_set_new(tot, "spikes", json_count(spikes));
    if (!json_object_get(tot, "sops"))
        json_object_set_new(tot, "sops", json_count(sops));
    if (!json_object_get(tot, "virtual_ticks"))
        json_object_set_new(tot, "virtual_ticks", json_count(r->virtual_ticks));
    bool has_energy;
    double joules = energy_of(v, -2, &has_energy);
    json_t *en = json_object_get(root, "energy");
    if (has_energy && !json_is_object(en)) {
        en = json_object();
        json_object_set_new(root, "energy", en);
    }
    if (has_energy && !json_object_get(en, "total_j")) {
        json_object_set_new(en, "total_j", nesim_report_number(joules));
        json_object_set_new(en, "terms", energy_json(v, -2));
    }
    if (json_is_object(en)) {
        json_object_set_new(en, "chip", json_str(r->chip));
        json_t *db = json_object_get(en, "dense_baselines");
        if (json_is_object(db))
            json_object_set_new(db, "profile", json_str(r->dense));
    }
    json_t *pub = json_object_get(root, "published");
    if (json_is_object(pub))
        json_object_set_new(pub, "source",
                            json_str(json_string_value(json_object_get(json_object_get(spec, "published"), "source"))));
    if (r->spike_checksum)
        json_object_set_new(root, "spike_checksum", json_string(r->spike_checksum));
    json_object_set_new(root, "run", run_json(r));
    json_decref(spec);
    return root;
}

int nesim_trace_report_json(nesim_trace *t, int64_t run, json_t **out, nesim_error *err)
{
    run_view v;
    *out = NULL;
    int rc = view_load(t, run, &v, err);
    if (rc)
        return rc;
    *out = report_tree(&v);
    view_free(&v);
    return *out ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
}


static void print_time(FILE *out, double s)
{
    if (s >= 1 || s == 0)
        fprintf(out, "%.6g s", s);
    else if (s >= 1e-3)
        fprintf(out, "%.6g ms", s * 1e3);
    else
        fprintf(out, "%.6g us", s * 1e6);
}

static int report_text(nesim_trace *t, const run_view *v, FILE *out, nesim_error *err)
{
    const nesim_trace_run *r = &v->run;
    char b1[32], b2[32], b3[32];
    fprintf(out, "run %" PRId64 " of %s — %s, %s, record %s\n", r->id, t->path, nesim_trace_status_name(r->status),
            nesim_trace_kind_name(r->kind), nesim_trace_level_name(r->record));
    fprintf(out, "  spec         %s", r->spec_file ? r->spec_file : "-");
    if (r->spec_hash)
        fprintf(out, "  (sha256 %.16s…)", r->spec_hash);
    fputc('\n', out);
    if (r->weights)
        fprintf(out, "  weights      %s\n", r->weights);
    fprintf(out, "  chip         %s   seed ", r->chip ? r->chip : "-");
    if (r->has_seed)
        fprintf(out, "%" PRIu64, r->seed);
    else
        fputc('-', out);
    fprintf(out, "   tick ");
    print_time(out, r->tick_s);
    fputc('\n', out);
    fprintf(out, "  time         %s -> %s   (nesim %s)\n", r->started_at ? r->started_at : "?",
            r->ended_at ? r->ended_at : "not ended", r->nesim_version ? r->nesim_version : "?");
    if (r->parent_run)
        fprintf(out, "  replay of    run %" PRId64 "\n", r->parent_run);
    if (r->note)
        fprintf(out, "  note         %s\n", r->note);
    fprintf(out, "  samples      %s   virtual time %s ticks", count_str(r->samples, b1, sizeof b1),
            count_str(r->virtual_ticks, b2, sizeof b2));
    if (r->virtual_ticks >= 0) {
        fputs(" (", out);
        print_time(out, (double)r->virtual_ticks * r->tick_s);
        fputc(')', out);
    }
    fputs("\n\n", out);

    bool rebuilt = false;
    for (size_t i = 0; i < v->n_layers; i++)
        rebuilt |= !v->layers[i].totals_final;
    if (rebuilt)
        fprintf(out, "  (totals rebuilt from the stored activity/spikes: the run did not end)\n\n");
    (void)b3;
    json_t *rep = report_tree(v);
    int rc = nesim_report_print(rep, out, err);
    json_decref(rep);
    return rc ? rc : check_out(out, err);
}

int nesim_trace_report(nesim_trace *t, int64_t run, FILE *out, bool json, nesim_error *err)
{
    run_view v;
    int rc = view_load(t, run, &v, err);
    if (rc)
        return rc;
    if (json) {
        json_t *rep = report_tree(&v);
        rc = rep ? write_json(rep, out, err) : nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
    } else {
        rc = report_text(t, &v, out, err);
    }
    view_free(&v);
    return rc;
}

/* ------------------------------------------------------------ diff */

typedef struct train_diff {
    bool compared;     /* both runs stored spikes */
    int64_t differing; /* spikes present in one run only (a sign change counts once) */
    int64_t first_tick, first_neuron;
} train_diff;

static int compare_trains(nesim_trace *t, int64_t ra, int64_t rb, int layer, train_diff *d, nesim_error *err)
{
    nesim_trace_spike_iter *ia = NULL, *ib = NULL;
    d->differing = 0;
    d->first_tick = d->first_neuron = -1;
    int rc = nesim_trace_spikes_open(t, ra, layer, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &ia, err);
    if (!rc)
        rc = nesim_trace_spikes_open(t, rb, layer, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &ib, err);
    nesim_trace_spike_rec a, b;
    bool ga = false, gb = false;
    if (!rc)
        rc = nesim_trace_spikes_next(ia, &a, &ga, err);
    if (!rc)
        rc = nesim_trace_spikes_next(ib, &b, &gb, err);
    while (!rc && (ga || gb)) {
        int c = !ga ? 1 : !gb ? -1 : a.tick != b.tick ? (a.tick < b.tick ? -1 : 1)
                                                     : (a.neuron > b.neuron) - (a.neuron < b.neuron);
        if (c != 0 || a.sign != b.sign) {
            const nesim_trace_spike_rec *s = c <= 0 ? &a : &b;
            if (d->differing++ == 0)
                d->first_tick = s->tick, d->first_neuron = s->neuron;
        }
        if (c <= 0)
            rc = nesim_trace_spikes_next(ia, &a, &ga, err);
        if (!rc && c >= 0)
            rc = nesim_trace_spikes_next(ib, &b, &gb, err);
    }
    nesim_trace_spikes_close(ia);
    nesim_trace_spikes_close(ib);
    d->compared = !rc;
    return rc;
}

static const nesim_trace_layer *layer_at(const run_view *v, int idx)
{
    for (size_t i = 0; i < v->n_layers; i++)
        if (v->layers[i].idx == idx)
            return &v->layers[i];
    return NULL;
}

static bool str_differs(const char *a, const char *b) { return (a == NULL) != (b == NULL) || (a && strcmp(a, b)); }

static void add_attr(json_t *attrs, FILE *out, bool json, const char *name, const char *a, const char *b)
{
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "a", json_str(a));
        json_object_set_new(o, "b", json_str(b));
        json_array_append_new(attrs, o);
    } else {
        fprintf(out, "  %-22s %s  vs  %s\n", name, a ? a : "-", b ? b : "-");
    }
}

static int diff_attrs(const run_view *A, const run_view *B, json_t *attrs, FILE *out, bool json)
{
    const nesim_trace_run *a = &A->run, *b = &B->run;
    int n = 0;
    char x[64], y[64];
#define ATTR_S(label, fa, fb)                                                                                   \
    if (str_differs(fa, fb))                                                                                    \
        add_attr(attrs, out, json, label, fa, fb), n++
    ATTR_S("kind", nesim_trace_kind_name(a->kind), nesim_trace_kind_name(b->kind));
    ATTR_S("record", nesim_trace_level_name(a->record), nesim_trace_level_name(b->record));
    ATTR_S("status", nesim_trace_status_name(a->status), nesim_trace_status_name(b->status));
    ATTR_S("spec file", a->spec_file, b->spec_file);
    ATTR_S("spec sha256", a->spec_hash, b->spec_hash);
    ATTR_S("weights", a->weights, b->weights);
    ATTR_S("chip", a->chip, b->chip);
    if (a->has_seed != b->has_seed || a->seed != b->seed) {
        snprintf(x, sizeof x, "%" PRIu64, a->seed);
        snprintf(y, sizeof y, "%" PRIu64, b->seed);
        if (!a->has_seed)
            strcpy(x, "-");
        if (!b->has_seed)
            strcpy(y, "-");
        add_attr(attrs, out, json, "seed", x, y), n++;
    }
    if (a->tick_s != b->tick_s) {
        snprintf(x, sizeof x, "%.9g s", a->tick_s);
        snprintf(y, sizeof y, "%.9g s", b->tick_s);
        add_attr(attrs, out, json, "tick", x, y), n++;
    }
    if (a->samples != b->samples || a->virtual_ticks != b->virtual_ticks) {
        snprintf(x, sizeof x, "%" PRId64 " samples, %" PRId64 " ticks", a->samples, a->virtual_ticks);
        snprintf(y, sizeof y, "%" PRId64 " samples, %" PRId64 " ticks", b->samples, b->virtual_ticks);
        add_attr(attrs, out, json, "extent", x, y), n++;
    }
    size_t nl = A->n_layers > B->n_layers ? A->n_layers : B->n_layers;
    for (size_t i = 0; i < nl; i++) {
        const nesim_trace_layer *la = i < A->n_layers ? &A->layers[i] : NULL;
        const nesim_trace_layer *lb = i < B->n_layers ? &B->layers[i] : NULL;
        char label[96];
        if (!la || !lb) {
            snprintf(label, sizeof label, "layer %zu", i);
            add_attr(attrs, out, json, label, la ? la->name : "absent", lb ? lb->name : "absent"), n++;
            continue;
        }
        snprintf(label, sizeof label, "layer %zu name", i);
        ATTR_S(label, la->name, lb->name);
        snprintf(label, sizeof label, "layer %s type", la->name);
        ATTR_S(label, la->type, lb->type);
        snprintf(label, sizeof label, "layer %s coding", la->name);
        ATTR_S(label, la->coding, lb->coding);
        if (la->neurons != lb->neurons) {
            snprintf(label, sizeof label, "layer %s neurons", la->name);
            snprintf(x, sizeof x, "%" PRId64, la->neurons);
            snprintf(y, sizeof y, "%" PRId64, lb->neurons);
            add_attr(attrs, out, json, label, x, y), n++;
        }
    }
#undef ATTR_S
    return n;
}

static json_t *triple(int64_t a, int64_t b)
{
    json_t *o = json_object();
    json_object_set_new(o, "a", json_count(a));
    json_object_set_new(o, "b", json_count(b));
    json_object_set_new(o, "delta", a >= 0 && b >= 0 ? json_integer(b - a) : json_null());
    return o;
}

static json_t *triple_j(bool ha, double a, bool hb, double b)
{
    json_t *o = json_object();
    json_object_set_new(o, "a", ha ? json_real(a) : json_null());
    json_object_set_new(o, "b", hb ? json_real(b) : json_null());
    json_object_set_new(o, "delta", ha && hb ? json_real(b - a) : json_null());
    return o;
}

static void fmt_joules(char *buf, size_t n, bool has, double j)
{
    if (has)
        snprintf(buf, n, "%.4g", j);
    else
        snprintf(buf, n, "-");
}

static void fmt_djoules(char *buf, size_t n, bool ha, double a, bool hb, double b)
{
    if (ha && hb && a == b)
        snprintf(buf, n, "0");
    else if (ha && hb)
        snprintf(buf, n, "%+.3g", b - a);
    else
        snprintf(buf, n, "-");
}

int nesim_trace_diff(nesim_trace *t, int64_t run_a, int64_t run_b, FILE *out, bool json, nesim_error *err)
{
    run_view A, B;
    int rc = view_load(t, run_a, &A, err);
    if (rc)
        return rc;
    if ((rc = view_load(t, run_b, &B, err))) {
        view_free(&A);
        return rc;
    }
    json_t *root = NULL, *attrs = NULL, *layers = NULL;
    if (json) {
        root = json_object();
        attrs = json_array();
        layers = json_array();
        json_object_set_new(root, "a", json_integer(run_a));
        json_object_set_new(root, "b", json_integer(run_b));
    } else {
        fprintf(out, "diff of run %" PRId64 " (A) and run %" PRId64 " (B) in %s\n", run_a, run_b, t->path);
    }
    if (diff_attrs(&A, &B, attrs, out, json) == 0 && !json)
        fprintf(out, "  the runs agree on spec, weights, chip, seed, tick, extent and layers\n");
    if (!json)
        fprintf(out, "\n  %-12s %13s %13s %11s %15s %15s %13s %11s %11s %10s  %s\n", "layer", "spikes A", "spikes B",
                "diff", "SOPs A", "SOPs B", "diff", "J A", "J B", "diff", "spike trains");
    bool both_spikes = A.run.record == NESIM_TRACE_SPIKES && B.run.record == NESIM_TRACE_SPIKES;
    size_t nl = A.n_layers > B.n_layers ? A.n_layers : B.n_layers;
    for (size_t i = 0; i < nl && !rc; i++) {
        const nesim_trace_layer *la = layer_at(&A, (int)i), *lb = layer_at(&B, (int)i);
        int64_t sa = la ? la->spikes : -1, sb = lb ? lb->spikes : -1;
        int64_t oa = la ? la->sops : -1, ob = lb ? lb->sops : -1;
        bool ha = false, hb = false;
        double ja = la ? energy_of(&A, (int)i, &ha) : 0, jb = lb ? energy_of(&B, (int)i, &hb) : 0;
        train_diff td = {0};
        if (both_spikes && la && lb && (rc = compare_trains(t, run_a, run_b, (int)i, &td, err)))
            break;
        char trains[96];
        if (!td.compared)
            snprintf(trains, sizeof trains, "not compared (%s)", !(la && lb) ? "layer missing" : "spikes not stored in both");
        else if (!td.differing)
            snprintf(trains, sizeof trains, "identical");
        else
            snprintf(trains, sizeof trains, "%" PRId64 " differ (first: tick %" PRId64 ", neuron %" PRId64 ")",
                     td.differing, td.first_tick, td.first_neuron);
        const char *name = la ? la->name : lb->name;
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer((json_int_t)i));
            json_object_set_new(o, "name", json_string(name));
            json_object_set_new(o, "spikes", triple(sa, sb));
            json_object_set_new(o, "sops", triple(oa, ob));
            json_object_set_new(o, "joules", triple_j(ha, ja, hb, jb));
            json_object_set_new(o, "spike_trains_identical", td.compared ? json_boolean(!td.differing) : json_null());
            json_object_set_new(o, "spikes_differing", td.compared ? json_integer(td.differing) : json_null());
            json_array_append_new(layers, o);
        } else {
            char c[6][32], e[3][32];
            fmt_joules(e[0], sizeof e[0], ha, ja);
            fmt_joules(e[1], sizeof e[1], hb, jb);
            fmt_djoules(e[2], sizeof e[2], ha, ja, hb, jb);
            fprintf(out, "  %-12s %13s %13s %11s %15s %15s %13s %11s %11s %10s  %s\n", name,
                    count_str(sa, c[0], 32), count_str(sb, c[1], 32), delta_str(sa, sb, c[2], 32),
                    count_str(oa, c[3], 32), count_str(ob, c[4], 32), delta_str(oa, ob, c[5], 32), e[0], e[1], e[2],
                    trains);
        }
    }
    if (!rc) {
        int64_t sa, oa, sb, ob;
        totals_of(&A, &sa, &oa);
        totals_of(&B, &sb, &ob);
        bool ha, hb;
        double ja = energy_of(&A, -2, &ha), jb = energy_of(&B, -2, &hb);
        /* energy by term, summed over layers: where a chip-only change shows */
        json_t *terms = json ? json_array() : NULL;
        if (json) {
            json_t *tot = json_object();
            json_object_set_new(tot, "spikes", triple(sa, sb));
            json_object_set_new(tot, "sops", triple(oa, ob));
            json_object_set_new(tot, "joules", triple_j(ha, ja, hb, jb));
            json_object_set_new(root, "attributes", attrs);
            json_object_set_new(root, "layers", layers);
            json_object_set_new(root, "totals", tot);
        } else {
            char c[6][32], e[3][32];
            fmt_joules(e[0], sizeof e[0], ha, ja);
            fmt_joules(e[1], sizeof e[1], hb, jb);
            fmt_djoules(e[2], sizeof e[2], ha, ja, hb, jb);
            fprintf(out, "  %-12s %13s %13s %11s %15s %15s %13s %11s %11s %10s\n", "total", count_str(sa, c[0], 32),
                    count_str(sb, c[1], 32), delta_str(sa, sb, c[2], 32), count_str(oa, c[3], 32),
                    count_str(ob, c[4], 32), delta_str(oa, ob, c[5], 32), e[0], e[1], e[2]);
            if (ha || hb)
                fprintf(out, "\n  energy by term (J)   %11s %11s %10s\n", "A", "B", "diff");
        }
        /* union of terms, in A's order then B's new ones */
        for (int side = 0; side < 2; side++) {
            const run_view *V = side ? &B : &A, *W = side ? &A : &B;
            for (size_t i = 0; i < V->n_energy; i++) {
                const char *term = V->energy[i].name;
                bool seen = false;
                for (size_t k = 0; k < i && !seen; k++)
                    seen = !strcmp(V->energy[k].name, term);
                for (size_t k = 0; side && k < W->n_energy && !seen; k++)
                    seen = !strcmp(W->energy[k].name, term);
                if (seen)
                    continue;
                double x = 0, y = 0;
                bool hx = false, hy = false;
                for (size_t k = 0; k < A.n_energy; k++)
                    if (!strcmp(A.energy[k].name, term))
                        x += A.energy[k].value, hx = true;
                for (size_t k = 0; k < B.n_energy; k++)
                    if (!strcmp(B.energy[k].name, term))
                        y += B.energy[k].value, hy = true;
                if (json) {
                    json_t *o = triple_j(hx, x, hy, y);
                    json_object_set_new(o, "term", json_string(term));
                    json_array_append_new(terms, o);
                } else {
                    char e[3][32];
                    fmt_joules(e[0], sizeof e[0], hx, x);
                    fmt_joules(e[1], sizeof e[1], hy, y);
                    fmt_djoules(e[2], sizeof e[2], hx, x, hy, y);
                    fprintf(out, "    %-18s %11s %11s %10s\n", term, e[0], e[1], e[2]);
                }
            }
        }
        if (json) {
            json_object_set_new(root, "energy_terms", terms);
            rc = write_json(root, out, err);
            root = NULL;
        } else {
            rc = check_out(out, err);
        }
    }
    if (root) { /* failed before handing it over */
        json_object_set_new(root, "attributes", attrs);
        json_object_set_new(root, "layers", layers);
        json_decref(root);
    }
    view_free(&A);
    view_free(&B);
    return rc;
}
