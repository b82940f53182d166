/* api.c — the JSON endpoints of `nesim serve` (see serve.h for the
 * shapes): the page, runs, one run's report, layers, binned activity, paged
 * spikes and the energy breakdown. Everything is read through the traces/
 * readers (prepared statements, read-only connection).
 *
 * Each runs on a worker thread with its own database connection (c->t) and
 * only fills its call's answer (serve_internal.h).
 *
 * Guarantees: each handler answers exactly once; a missing run or layer is
 * 404, a bad parameter 400 naming it; responses are bounded (5000 bins per
 * layer, 100000 spikes); a spike page never ends between two spikes of the
 * same (tick, neuron), so the cursor "TICK:NEURON" resumes exactly after the
 * page and paging yields every spike once. */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char nesim_page_html[];
extern const unsigned long nesim_page_html_len;

#define BINS_DEFAULT 500
#define BINS_MAX 5000
#define LIMIT_DEFAULT 10000
#define LIMIT_MAX 100000

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }
static json_t *count_or_null(int64_t v) { return v < 0 ? json_null() : json_integer(v); }

void serve_api_page(serve_call *c)
{
    char *b = malloc(nesim_page_html_len ? nesim_page_html_len : 1);
    if (!b) {
        serve_call_json(c, 500, NULL);
        return;
    }
    memcpy(b, nesim_page_html, nesim_page_html_len);
    serve_call_bytes(c, 200, "text/html; charset=utf-8", b, nesim_page_html_len);
    c->page = true;
}

/* ---------------------------------------------------------------- runs */


void serve_api_runs(serve_call *c)
{
    nesim_trace_run *runs;
    size_t n;
    nesim_error err = {0};
    if (nesim_trace_runs(c->t, &runs, &n, &err)) {
        serve_call_failure(c, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++) {
        const nesim_trace_run *r = &runs[i];
        nesim_trace_totals tot;
        if (nesim_trace_totals_get(c->t, r->id, &tot, &err)) {
            json_decref(arr);
            nesim_trace_runs_free(runs, n);
            serve_call_failure(c, &err);
            return;
        }
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(r->id));
        json_object_set_new(o, "status", json_string(nesim_trace_status_name(r->status)));
        json_object_set_new(o, "kind", json_string(nesim_trace_kind_name(r->kind)));
        json_object_set_new(o, "record", json_string(nesim_trace_level_name(r->record)));
        json_object_set_new(o, "started_at", str_or_null(r->started_at));
        json_object_set_new(o, "ended_at", str_or_null(r->ended_at));
        json_object_set_new(o, "samples", count_or_null(r->samples));
        json_object_set_new(o, "virtual_ticks", count_or_null(r->virtual_ticks));
        json_object_set_new(o, "spikes", count_or_null(tot.spikes));
        json_object_set_new(o, "tick_s", serve_real(r->tick_s));
        json_object_set_new(o, "spec_file", str_or_null(r->spec_file));
        json_object_set_new(o, "chip", str_or_null(r->chip));
        json_object_set_new(o, "parent_run", r->parent_run > 0 ? json_integer(r->parent_run) : json_null());
        if (json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    nesim_trace_runs_free(runs, n);
    json_t *root = arr ? json_object() : NULL;
    if (root)
        json_object_set_new(root, "runs", arr);
    else
        json_decref(arr);
    serve_call_json(c, 200, root);
}

void serve_api_run(serve_call *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        serve_call_json(c, 500, NULL);
        return;
    }
    nesim_error err = {0};
    int rc = nesim_trace_report(c->t, c->id, f, true, &err);
    if (fclose(f) && !rc)
        rc = nesim_fail(&err, NESIM_ENOMEM, "out of memory");
    if (rc) {
        free(buf);
        serve_call_failure(c, &err);
        return;
    }
    /* exactly the report's bytes: parse nothing, re-encode nothing */
    serve_call_bytes(c, 200, "application/json; charset=utf-8", buf, len);
}

void serve_api_layers(serve_call *c)
{
    nesim_trace_layer *L;
    size_t n;
    if (!serve_call_layers(c, &L, &n))
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "idx", json_integer(L[i].idx));
        json_object_set_new(o, "name", json_string(L[i].name));
        json_object_set_new(o, "type", str_or_null(L[i].type));
        json_object_set_new(o, "coding", str_or_null(L[i].coding));
        json_object_set_new(o, "neurons", json_integer(L[i].neurons));
        json_object_set_new(o, "fan_in", json_integer(L[i].fan_in));
        json_object_set_new(o, "spikes", count_or_null(L[i].spikes));
        json_object_set_new(o, "sops", count_or_null(L[i].sops));
        json_object_set_new(o, "first_tick", count_or_null(L[i].first_tick));
        json_object_set_new(o, "last_tick", count_or_null(L[i].last_tick));
        json_object_set_new(o, "totals_final", json_boolean(L[i].totals_final));
        json_array_append_new(arr, o);
    }
    nesim_trace_layers_free(L, n);
    json_t *root = json_object();
    json_object_set_new(root, "layers", arr);
    serve_call_json(c, 200, root);
}

/* ----------------------------------------------------------- activity */

void serve_api_activity(serve_call *c)
{
    nesim_trace_run run;
    nesim_trace_layer *L = NULL;
    size_t n = 0;
    int64_t *spk = NULL, *sop = NULL;
    bool *seen = NULL;
    if (!serve_call_load_run(c, &run))
        return;
    if (!serve_call_layers(c, &L, &n))
        goto out;
    int64_t from, to, bins = BINS_DEFAULT;
    if (!serve_call_window(c, 0, serve_run_last_tick(&run, L, n), &from, &to))
        goto out;
    const char *b = serve_call_param(c, "bins");
    if (b && !serve_call_uint(c, "bins", b, BINS_MAX, &bins))
        goto out;
    if (bins < 1) {
        serve_call_error(c, 400, "bins: at least 1");
        goto out;
    }
    int64_t span = to - from + 1;
    int64_t nb = bins < span ? bins : span;
    int64_t bin_ticks = (span + nb - 1) / nb;
    nb = (span + bin_ticks - 1) / bin_ticks;
    size_t cells = (n ? n : 1) * (size_t)nb;
    spk = calloc(cells, sizeof *spk);
    sop = calloc(cells, sizeof *sop);
    seen = calloc(n ? n : 1, sizeof *seen);
    if (!spk || !sop || !seen) {
        serve_call_json(c, 500, NULL);
        goto out;
    }
    nesim_error err = {0};
    nesim_trace_activity_iter *it;
    if (nesim_trace_activity_open(c->t, c->id, -1, from, to, &it, &err)) {
        serve_call_failure(c, &err);
        goto out;
    }
    nesim_trace_activity_rec a;
    bool got;
    size_t pos = 0;
    int rc;
    while (!(rc = nesim_trace_activity_next(it, &a, &got, &err)) && got) {
        /* rows come ordered by layer: look the position up when it changes */
        if (pos >= n || L[pos].idx != a.layer) {
            pos = 0;
            while (pos < n && L[pos].idx != a.layer)
                pos++;
            if (pos == n)
                continue;
        }
        size_t k = (size_t)((a.tick - from) / bin_ticks);
        spk[pos * (size_t)nb + k] += a.spikes;
        sop[pos * (size_t)nb + k] += a.sops;
        seen[pos] = true;
    }
    nesim_trace_activity_close(it);
    if (rc) {
        serve_call_failure(c, &err);
        goto out;
    }
    /* a layer with spikes but no activity rows: count its spikes */
    for (size_t i = 0; i < n && run.record == NESIM_TRACE_SPIKES; i++) {
        if (seen[i])
            continue;
        nesim_trace_spike_iter *si;
        if (nesim_trace_spikes_open(c->t, c->id, L[i].idx, from, to, &si, &err)) {
            serve_call_failure(c, &err);
            goto out;
        }
        nesim_trace_spike_rec r;
        while (!(rc = nesim_trace_spikes_next(si, &r, &got, &err)) && got)
            spk[i * (size_t)nb + (size_t)((r.tick - from) / bin_ticks)]++;
        nesim_trace_spikes_close(si);
        if (rc) {
            serve_call_failure(c, &err);
            goto out;
        }
    }
    json_t *root = json_object(), *layers = json_array();
    json_object_set_new(root, "from", json_integer(from));
    json_object_set_new(root, "to", json_integer(to));
    json_object_set_new(root, "bin_ticks", json_integer(bin_ticks));
    json_object_set_new(root, "bins", json_integer(nb));
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object(), *xs = json_array(), *xo = json_array();
        for (int64_t k = 0; k < nb; k++) {
            json_array_append_new(xs, json_integer(spk[i * (size_t)nb + (size_t)k]));
            json_array_append_new(xo, json_integer(sop[i * (size_t)nb + (size_t)k]));
        }
        json_object_set_new(o, "idx", json_integer(L[i].idx));
        json_object_set_new(o, "name", json_string(L[i].name));
        json_object_set_new(o, "spikes", xs);
        json_object_set_new(o, "sops", xo);
        json_array_append_new(layers, o);
    }
    json_object_set_new(root, "layers", layers);
    /* a timed run: the chip time elapsed at each bin edge (nb + 1 values), so
     * the activity can be read against chip time as well as ticks */
    double *chip = NULL;
    int64_t nchip = 0;
    if (nesim_trace_chip_steps_get(c->t, c->id, &chip, &nchip, &err)) {
        json_decref(root);
        serve_call_failure(c, &err);
        goto out;
    }
    if (nchip > to) {
        json_t *edges = json_array();
        double acc = 0;
        int64_t k = 0;
        for (int64_t t = 0; t <= to + 1 && k <= nb; t++) {
            if (t == from + k * bin_ticks || t == to + 1) {
                json_array_append_new(edges, json_real(acc));
                k++;
            }
            if (t <= to)
                acc += chip[t];
        }
        json_object_set_new(root, "chip_s", edges);
    }
    free(chip);
    serve_call_json(c, 200, root);
out:
    free(spk);
    free(sop);
    free(seen);
    nesim_trace_layers_free(L, n);
    nesim_trace_run_clear(&run);
}

/* ------------------------------------------------------------- spikes */

void serve_api_spikes(serve_call *c)
{
    nesim_trace_layer *L = NULL;
    size_t n = 0;
    nesim_trace_spike_rec *page = NULL;
    nesim_trace_spike_iter *it = NULL;
    const char *lv = serve_call_param(c, "layer");
    if (!serve_call_layers(c, &L, &n))
        goto out;
    if (!lv) {
        serve_call_error(c, 400, "layer: required (a layer name or index)");
        goto out;
    }
    int layer;
    if (!serve_call_layer(c, L, n, lv, &layer))
        goto out;
    int64_t from, to, limit = LIMIT_DEFAULT, at = -1, an = -1;
    if (!serve_call_window(c, 0, SERVE_TICK_PARAM_MAX, &from, &to))
        goto out;
    const char *lim = serve_call_param(c, "limit"), *after = serve_call_param(c, "after");
    if (lim && !serve_call_uint(c, "limit", lim, LIMIT_MAX, &limit))
        goto out;
    if (limit < 1) {
        serve_call_error(c, 400, "limit: at least 1");
        goto out;
    }
    if (after && !serve_parse_cursor(after, &at, &an)) {
        serve_call_error(c, 400, "after: expected a cursor TICK:NEURON as given in 'next', got '%.*s%s'", SERVE_QUOTE,
                         after, strlen(after) > SERVE_QUOTE ? "..." : "");
        goto out;
    }
    int64_t start = at > from ? at : from;
    /* the page is read first (at most limit + one (tick, neuron) group),
     * then cut and written */
    size_t cap = (size_t)(limit < 4096 ? limit + 8 : 4096), count = 0;
    bool more = false;
    page = malloc(cap * sizeof *page);
    if (!page) {
        serve_call_json(c, 500, NULL);
        goto out;
    }
    nesim_error err = {0};
    if (start <= to) {
        if (nesim_trace_spikes_open(c->t, c->id, layer, start, to, &it, &err)) {
            serve_call_failure(c, &err);
            goto out;
        }
        size_t group = 0; /* trailing spikes sharing the last one's (tick, neuron) */
        nesim_trace_spike_rec r;
        bool got;
        int rc;
        while (!(rc = nesim_trace_spikes_next(it, &r, &got, &err)) && got) {
            if (r.tick == at && r.neuron <= an)
                continue;
            bool same = count > 0 && r.tick == page[count - 1].tick && r.neuron == page[count - 1].neuron;
            if ((int64_t)count >= limit) {
                more = true;
                if (!same)
                    break;
                if (count > group) { /* end the page before the group */
                    count -= group;
                    break;
                }
                more = false; /* the whole page is one (tick, neuron): finish the group */
            }
            if (count == cap) {
                size_t nc = cap * 2;
                nesim_trace_spike_rec *np = realloc(page, nc * sizeof *np);
                if (!np) {
                    serve_call_json(c, 500, NULL);
                    goto out;
                }
                page = np;
                cap = nc;
            }
            page[count++] = r;
            group = same ? group + 1 : 1;
        }
        if (rc) {
            serve_call_failure(c, &err);
            goto out;
        }
    }
    serve_out ow, *w = &ow;
    serve_out_init(w);
    serve_out_lit(w, "{\"layer\":");
    serve_out_int(w, layer);
    serve_out_lit(w, ",\"spikes\":[");
    for (size_t i = 0; i < count; i++) {
        serve_out_raw(w, i ? ",[" : "[", i ? 2 : 1);
        serve_out_int(w, page[i].tick);
        serve_out_raw(w, ",", 1);
        serve_out_int(w, page[i].neuron);
        serve_out_raw(w, page[i].sign < 0 ? ",-1]" : ",1]", page[i].sign < 0 ? 4 : 3);
    }
    serve_out_lit(w, "],\"next\":");
    if (more) {
        serve_out_raw(w, "\"", 1);
        serve_out_int(w, page[count - 1].tick);
        serve_out_raw(w, ":", 1);
        serve_out_int(w, page[count - 1].neuron);
        serve_out_lit(w, "\"}");
    } else {
        serve_out_lit(w, "null}");
    }
    size_t len;
    char *body = serve_out_take(w, &len);
    if (body)
        serve_call_bytes(c, 200, "application/json; charset=utf-8", body, len);
    else
        serve_call_json(c, 500, NULL);
out:
    nesim_trace_spikes_close(it);
    free(page);
    nesim_trace_layers_free(L, n);
}

/* ------------------------------------------------------------- energy */

static void add_term(json_t *terms, const char *name, double j)
{
    json_t *v = json_object_get(terms, name);
    if (v)
        json_real_set(v, json_real_value(v) + j);
    else
        json_object_set_new(terms, name, json_real(j));
}

void serve_api_energy(serve_call *c)
{
    nesim_trace_layer *L;
    size_t n;
    if (!serve_call_layers(c, &L, &n))
        return;
    nesim_trace_value *v;
    size_t nv;
    nesim_error err = {0};
    if (nesim_trace_energies(c->t, c->id, &v, &nv, &err)) {
        nesim_trace_layers_free(L, n);
        serve_call_failure(c, &err);
        return;
    }
    json_t *terms = json_object(), *per = json_array(), *run_terms = json_object();
    double total = 0, run_total = 0;
    for (size_t i = 0; i < nv; i++) {
        if (!isfinite(v[i].value))
            continue;
        total += v[i].value;
        add_term(terms, v[i].name, v[i].value);
        if (v[i].layer < 0) {
            run_total += v[i].value;
            add_term(run_terms, v[i].name, v[i].value);
        }
    }
    for (size_t l = 0; l < n; l++) {
        json_t *o = json_object(), *lt = json_object();
        double lsum = 0;
        for (size_t i = 0; i < nv; i++)
            if (v[i].layer == L[l].idx && isfinite(v[i].value)) {
                lsum += v[i].value;
                add_term(lt, v[i].name, v[i].value);
            }
        json_object_set_new(o, "idx", json_integer(L[l].idx));
        json_object_set_new(o, "name", json_string(L[l].name));
        json_object_set_new(o, "terms", lt);
        json_object_set_new(o, "total_j", json_real(lsum));
        json_array_append_new(per, o);
    }
    json_t *rl = json_object();
    json_object_set_new(rl, "terms", run_terms);
    json_object_set_new(rl, "total_j", json_real(run_total));
    json_t *root = json_object();
    json_object_set_new(root, "total_j", json_real(total));
    json_object_set_new(root, "terms", terms);
    json_object_set_new(root, "per_layer", per);
    json_object_set_new(root, "run_level", rl);
    nesim_trace_values_free(v, nv);
    nesim_trace_layers_free(L, n);
    serve_call_json(c, 200, root);
}
