/* nir.c — a NIR graph run on input frames, reported as JSON. */
#include "jobs/nir.h"

#include "eval/chiptime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cost.h"
#include "net/chip.h"
#include "net/jsonmsg.h"
#include "net/tensor.h"

enum { SPEC_MAX_BYTES = 1 << 30 };

void nesim_nir_job_opts_init(nesim_nir_job_opts *o)
{
    memset(o, 0, sizeof *o);
    o->run.disc = NESIM_NIR_EULER;
    o->record = NESIM_TRACE_SPIKES;
}

static int named_nir(const char *path)
{
    size_t len = strlen(path);
    return len > 4 && strcmp(path + len - 4, ".nir") == 0;
}

int nesim_nir_job_is_model(const char *path)
{
    if (nesim_nir_is_hdf5(path) || named_nir(path))
        return 1; /* a .nir that is not HDF5 gets the NIR reader's message */
    /* a JSON spec: look for its key near the start without parsing it all */
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return n && strstr(buf, "\"nesim_nir\"") != NULL;
}

int nesim_nir_job_load(const char *path, int strict, nesim_nir_graph *g, nesim_error *err)
{
    if (nesim_nir_is_hdf5(path) || named_nir(path))
        return nesim_nir_load(path, !strict, g, err);
    json_t *root = NULL;
    int rc = nesim_json_load_object(path, SPEC_MAX_BYTES, "NIR spec", "1 GiB", &root, err);
    if (rc)
        return rc;
    rc = nesim_nir_from_json(root, path, g, err);
    json_decref(root);
    return rc;
}

int nesim_nir_spec_build(const char *path, int strict, json_t **spec, nesim_error *err)
{
    nesim_nir_graph g;
    int rc = nesim_nir_job_load(path, strict, &g, err);
    if (rc)
        return rc;
    *spec = nesim_nir_to_json(&g);
    nesim_nir_free(&g);
    return *spec ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
}

/* The frames of the input file as doubles [samples][steps][features]. */
static int load_frames(const char *path, size_t features, double **frames, size_t *samples, size_t *steps,
                       nesim_error *err)
{
    nesim_tensor t;
    int rc = nesim_npy_load(path, &t, err);
    if (rc)
        return rc;
    size_t feat = 1;
    for (int d = 2; d < t.ndim; d++)
        feat *= (size_t)t.shape[d];
    if (t.ndim < 3 || feat != features || t.shape[0] < 1 || t.shape[1] < 1) {
        char sh[128] = "";
        size_t u = 0;
        for (int d = 0; d < t.ndim && u < sizeof sh - 24; d++)
            u += (size_t)snprintf(sh + u, sizeof sh - u, "%s%lld", d ? ", " : "", (long long)t.shape[d]);
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: shape [%s]: expected [samples, steps, features...] with %zu features per step "
                          "(the graph's Input)",
                          path, sh, features);
    }
    if ((rc = nesim_tensor_check_finite(&t, path, err))) {
        nesim_tensor_release(&t);
        return rc;
    }
    double *f = malloc(t.count * sizeof *f);
    if (!f) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < t.count; i++)
        f[i] = nesim_tensor_get(&t, i);
    *samples = (size_t)t.shape[0];
    *steps = (size_t)t.shape[1];
    *frames = f;
    nesim_tensor_release(&t);
    return NESIM_OK;
}

static int json_bad(json_t *o) { return o == NULL; }

/* ---- recording ------------------------------------------------------------ */

typedef struct nir_rec {
    nesim_trace *t;
    nesim_trace_sigsave sig;
    int sig_on;
    const nesim_nir_graph *g;
    nesim_nir_net *net;
    int *layer_of;       /* node -> its layer, or -1 */
    int *sop_layer;      /* node -> the layer its SOPs are counted in, or -1 */
    uint64_t *prev_sops;
    size_t *seen;        /* spikes of this sample already recorded, per node */
    int64_t base;        /* first tick of the sample */
    int64_t run;
    int interrupted;
} nir_rec;

static int rec_step(void *ctx, int64_t step)
{
    nir_rec *r = ctx;
    int64_t tick = r->base + step;
    for (int i = 0; i < r->g->n_nodes; i++) {
        if (r->layer_of[i] >= 0) {
            size_t n;
            const nesim_nir_spike *sp = nesim_nir_spikes(r->net, i, &n);
            int64_t k = 0;
            for (; r->seen[i] < n; r->seen[i]++, k++)
                nesim_trace_spike(r->t, r->layer_of[i], sp[r->seen[i]].idx, tick, 1);
            if (k)
                nesim_trace_activity(r->t, r->layer_of[i], tick, k, 0);
        }
        if (r->sop_layer[i] >= 0) {
            uint64_t s = nesim_nir_counts_of(r->net, i)->sops;
            if (s != r->prev_sops[i])
                nesim_trace_activity(r->t, r->sop_layer[i], tick, 0, (int64_t)(s - r->prev_sops[i]));
            r->prev_sops[i] = s;
        }
    }
    nesim_trace_sync(r->t);
    if (nesim_trace_stop_signal()) {
        r->interrupted = 1;
        return 1;
    }
    return 0;
}

static void rec_free(nir_rec *r)
{
    free(r->layer_of);
    free(r->sop_layer);
    free(r->prev_sops);
    free(r->seen);
}

/* Opens the trace, begins the run, adds a layer per spiking node and maps
 * every SOP-counting node to the layer it feeds (nesim_nir_feeds). */
static int rec_begin(nir_rec *r, const nesim_nir_job_opts *o, const nesim_nir_graph *g, nesim_nir_net *net,
                     nesim_error *err)
{
    memset(r, 0, sizeof *r);
    r->g = g;
    r->net = net;
    int n = g->n_nodes;
    r->layer_of = malloc((size_t)n * sizeof *r->layer_of);
    r->sop_layer = malloc((size_t)n * sizeof *r->sop_layer);
    r->prev_sops = calloc((size_t)n, sizeof *r->prev_sops);
    r->seen = calloc((size_t)n, sizeof *r->seen);
    if (!r->layer_of || !r->sop_layer || !r->prev_sops || !r->seen)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int layers = 0;
    for (int k = 0; k < n; k++) {
        int i = nesim_nir_run_order(net, k);
        r->layer_of[i] = nesim_nir_node_spikes(net, i) ? layers++ : -1;
    }
    for (int i = 0; i < n; i++) {
        r->sop_layer[i] = -1;
        if (!nesim_nir_node_dense_macs(net, i))
            continue;
        int d = nesim_nir_feeds(net, i); /* a graded group (LI, ...) is no layer: its SOPs are not recorded */
        r->sop_layer[i] = d >= 0 ? r->layer_of[d] : -1;
    }
    json_t *spec = nesim_nir_to_json(g);
    if (spec) /* what a replay needs to run the graph the same way */
        json_object_set_new(spec, "run",
                            json_pack("{sfssss}", "dt", o->run.dt, "discretisation",
                                      o->run.disc == NESIM_NIR_EXACT ? "exact" : "euler", "reset",
                                      o->run.reset_subtract ? "subtract" : "value"));
    char *text = spec ? json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(spec);
    if (!text)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = nesim_trace_open(o->trace, NESIM_TRACE_WRITE, &r->t, err);
    if (!rc) {
        nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS,
                                     .record = o->record,
                                     .spec_file = o->model,
                                     .spec_text = text,
                                     .chip = o->chip && strcmp(o->chip, "none") ? o->chip : (o->chip ? NULL : "loihi"),
                                     .tick_s = o->run.dt > 0 ? o->run.dt : 1,
                                     .parent_run = o->parent_run,
                                     .note = o->replay_db ? "NIR graph, replay" : "NIR graph"};
        rc = nesim_trace_begin_run(r->t, &info, &r->run, err);
    }
    free(text);
    for (int k = 0; !rc && k < n; k++) {
        int i = nesim_nir_run_order(net, k);
        if (r->layer_of[i] < 0)
            continue;
        nesim_trace_layer_info li = {.name = g->nodes[i].name,
                                     .type = nesim_nir_type_name(g->nodes[i].type),
                                     .neurons = (int64_t)nesim_nir_node_size(net, i)};
        int idx;
        rc = nesim_trace_add_layer(r->t, &li, &idx, err);
    }
    if (!rc && !nesim_trace_signals_install(&r->sig, NULL))
        r->sig_on = 1;
    return rc;
}

/* Ends the run: totals, energy rows and the checksum with it; status from rc. */
static int rec_end(nir_rec *r, int rc, const json_t *rep, const char *checksum, size_t samples, size_t steps,
                   nesim_error *err)
{
    if (!r->t)
        return rc;
    if (!rc) {
        nesim_trace_set_checksum(r->t, checksum);
        nesim_trace_set_extent(r->t, (int64_t)samples, (int64_t)(samples * steps));
        const char *term;
        json_t *v;
        json_object_foreach(json_object_get(json_object_get(rep, "energy"), "terms_j"), term, v)
            nesim_trace_energy(r->t, -1, term, json_real_value(v));
        nesim_trace_metric(r->t, -1, "updates", (double)json_integer_value(json_object_get(rep, "updates")));
        nesim_trace_metric(r->t, -1, "bias_ops", (double)json_integer_value(json_object_get(rep, "bias_ops")));
    }
    nesim_trace_status st = r->interrupted ? NESIM_TRACE_INTERRUPTED : rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE;
    nesim_error e2 = {0};
    int rc2 = nesim_trace_end_run(r->t, st, &e2);
    if (r->sig_on)
        nesim_trace_signals_restore(&r->sig);
    nesim_trace_close(r->t);
    r->t = NULL;
    if (r->interrupted && (!rc || rc == NESIM_EIO))
        return nesim_fail(err, NESIM_EIO, "interrupted; the trace marks the run interrupted");
    if (!rc && rc2) {
        *err = e2;
        return rc2;
    }
    return rc;
}

/* Energy and chip time of the run mapped on the --chip profile (eval/cost.h:
 * synaptic events, updates, idle neurons, spikes out, deliveries to cores,
 * routing hops, static power), bias additions as graded element ops on top,
 * beside the same graph stepped densely (every MAC of every step in fp16 on
 * dense-45nm). */
static int price(const nesim_nir_job_opts *o, json_t *rep, const nesim_nir_graph *g, const nesim_nir_net *net,
                 const nesim_nir_counts *t, uint64_t macs, size_t samples, size_t steps, double chip_s,
                 nesim_error *err)
{
    if (o->chip && !strcmp(o->chip, "none"))
        return NESIM_OK;
    nesim_chip *chip = NULL, *dense = NULL;
    double mac16 = 0, add16 = 0;
    int *gnode = NULL;
    nesim_cost cost;
    memset(&cost, 0, sizeof cost);
    int rc = nesim_chip_load(o->chip ? o->chip : "loihi", NULL, &chip, err);
    if (!rc)
        rc = nesim_chip_load("dense-45nm", NULL, &dense, err);
    if (!rc && chip->kind != NESIM_CHIP_NEUROMORPHIC)
        rc = nesim_fail(err, NESIM_EINVAL, "--chip %s: a neuromorphic profile is needed", chip->name);
    if (!rc)
        rc = nesim_chip_dense_op(dense, "fp16", NESIM_OP_MAC, &mac16, err);
    if (!rc)
        rc = nesim_chip_dense_op(dense, "fp16", NESIM_OP_ADD, &add16, err);
    double tick_s = o->run.dt > 0 ? o->run.dt : 1;
    if (!rc)
        rc = nesim_cost_nir_timed(chip, dense, g, net, (int64_t)(samples * steps), tick_s, samples, chip_s, &cost,
                                  &gnode, err);
    if (!rc) {
        const nesim_chip_params *p = &chip->p;
        double bias = (double)t->bias_ops * (p->has_graded ? p->graded_elem_j : add16);
        json_t *e = json_object(), *terms = json_object(), *use = json_object();
        json_object_set_new(e, "chip", json_string(chip->name));
        for (int k = 0; k < NESIM_E_TERMS; k++)
            json_object_set_new(terms, nesim_energy_term_name(k), json_real(cost.energy.term[k]));
        json_object_set_new(terms, "bias", json_real(bias));
        json_object_set_new(e, "terms_j", terms);
        json_object_set_new(e, "total_j", json_real(cost.energy.total + bias));
        json_object_set_new(e, "per_sop_j", json_real(t->sops ? (cost.energy.total + bias) / (double)t->sops : 0));
        json_object_set_new(e, "chip_time_s", json_real(cost.energy.duration_s));
        json_object_set_new(e, "dense_fp16_j", json_real((double)macs * mac16));
        json_object_set_new(e, "dense_profile", json_string(dense->name));
        json_object_set_new(rep, "energy", e);
        json_object_set_new(use, "cores", json_integer((json_int_t)cost.map.cores));
        json_object_set_new(use, "chips", json_integer((json_int_t)cost.map.chips));
        json_object_set_new(use, "max_hops", json_integer((json_int_t)cost.map.max_hops));
        json_object_set_new(use, "routes", json_integer((json_int_t)cost.map.routes));
        json_object_set_new(use, "map_seconds", json_real(cost.map_seconds));
        json_object_set_new(rep, "chip_usage", use);
        /* per group: its cores and energy, on its node's entry */
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(rep, "nodes"), i, n)
        {
            for (size_t a = 0; a < cost.n; a++)
                if (!strcmp(g->nodes[gnode[a]].name, json_string_value(json_object_get(n, "name")))) {
                    json_object_set_new(n, "cores", json_integer((json_int_t)cost.layer[a].cores));
                    json_object_set_new(n, "energy_j", json_real(cost.layer[a].e.total));
                }
        }
    }
    free(gnode);
    nesim_cost_free(&cost);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    return rc;
}

/* ---- replay source ---------------------------------------------------------- */

typedef struct rp_src {
    nesim_trace *t;
    int64_t run;
    nesim_trace_sample_row *S;
    size_t n_samples, steps;
    int layer;
    char *layer_name, *model, *chip;
    int node;
    nesim_nir_spike *sp;
    size_t n_sp, cap_sp;
} rp_src;

static void rp_close(rp_src *r)
{
    if (r->t)
        nesim_trace_close(r->t);
    free(r->S);
    free(r->layer_name);
    free(r->model);
    free(r->chip);
    free(r->sp);
    memset(r, 0, sizeof *r);
}

/* Opens the run, its graph and run options; o (a copy) takes them. */
static int rp_open(rp_src *r, nesim_nir_job_opts *o, nesim_nir_graph *g, nesim_error *err)
{
    memset(g, 0, sizeof *g);
    nesim_trace_run run;
    memset(&run, 0, sizeof run);
    r->run = o->replay_run;
    int rc = nesim_trace_open(o->replay_db, NESIM_TRACE_READ, &r->t, err);
    if (!rc)
        rc = nesim_trace_get_run(r->t, o->replay_run, &run, err);
    if (!rc && (run.record != NESIM_TRACE_SPIKES || run.status != NESIM_TRACE_COMPLETE))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld must be complete and recorded with --record spikes",
                        o->replay_db, (long long)o->replay_run);
    json_t *spec = NULL;
    if (!rc) {
        json_error_t je;
        spec = run.spec_text ? json_loads(run.spec_text, 0, &je) : NULL;
        if (!nesim_nir_json_is(spec))
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld is not a NIR graph's", o->replay_db, (long long)o->replay_run);
    }
    if (!rc)
        rc = nesim_nir_from_json(spec, o->replay_db, g, err);
    if (!rc) {
        json_t *ro = json_object_get(spec, "run");
        const char *d = json_string_value(json_object_get(ro, "discretisation")),
                   *rs = json_string_value(json_object_get(ro, "reset"));
        if (!json_is_number(json_object_get(ro, "dt")) || !d || !rs)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: the stored spec has no run options (run.dt, "
                            "run.discretisation, run.reset)", o->replay_db, (long long)o->replay_run);
        else {
            o->run.dt = json_number_value(json_object_get(ro, "dt"));
            o->run.disc = strcmp(d, "exact") ? NESIM_NIR_EULER : NESIM_NIR_EXACT;
            o->run.reset_subtract = strcmp(rs, "subtract") == 0;
        }
    }
    json_decref(spec);
    if (!rc)
        rc = nesim_trace_find_layer(r->t, o->replay_run, o->replay_layer, &r->layer, err);
    nesim_trace_layer *L = NULL;
    size_t nl = 0;
    if (!rc)
        rc = nesim_trace_layers(r->t, o->replay_run, &L, &nl, err);
    for (size_t k = 0; !rc && k < nl; k++)
        if (L[k].idx == r->layer && !(r->layer_name = strdup(L[k].name)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    nesim_trace_layers_free(L, nl);
    if (!rc)
        rc = nesim_trace_samples(r->t, o->replay_run, &r->S, &r->n_samples, err);
    if (!rc && !r->n_samples)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld has no samples", o->replay_db, (long long)o->replay_run);
    if (!rc) {
        r->steps = (size_t)(r->S[0].last_tick - r->S[0].first_tick + 1);
        for (size_t k = 0; k < r->n_samples; k++)
            if ((size_t)(r->S[k].last_tick - r->S[k].first_tick + 1) != r->steps)
                rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: samples of different lengths", o->replay_db,
                                (long long)o->replay_run);
    }
    if (!rc) {
        r->model = strdup(run.spec_file ? run.spec_file : o->replay_db);
        r->chip = run.chip ? strdup(run.chip) : NULL;
        o->model = r->model;
        if (!o->chip)
            o->chip = r->chip;
        o->input = NULL;
    }
    nesim_trace_run_clear(&run);
    if (rc)
        nesim_nir_free(g);
    return rc;
}

/* The replayed layer's spikes of sample s, steps from the sample's first tick. */
static int rp_sample(rp_src *r, size_t s, nesim_error *err)
{
    nesim_trace_spike_iter *it;
    int64_t first = r->S[s].first_tick;
    r->n_sp = 0;
    int rc = nesim_trace_spikes_open(r->t, r->run, r->layer, first, r->S[s].last_tick, &it, err);
    if (rc)
        return rc;
    nesim_trace_spike_rec x;
    bool got;
    while (!(rc = nesim_trace_spikes_next(it, &x, &got, err)) && got) {
        if (r->n_sp == r->cap_sp) {
            size_t nc = r->cap_sp ? 2 * r->cap_sp : 1024;
            nesim_nir_spike *ns = realloc(r->sp, nc * sizeof *ns);
            if (!ns) {
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
                break;
            }
            r->sp = ns;
            r->cap_sp = nc;
        }
        r->sp[r->n_sp++] = (nesim_nir_spike){x.tick - first, (uint32_t)x.neuron};
    }
    nesim_trace_spikes_close(it);
    return rc;
}

/* Chip time of the run (--timing): the mapping nesim_cost_nir makes, timed
 * step by step from each sample's spikes and input events. */
typedef struct nir_timer {
    nesim_chiptime *ct;
    nesim_nir_ct *view_of;
    int *gnode, ng;
    uint32_t *first;    /* per group: its first neuron in the timing's numbering */
    size_t *cur;        /* per group: cursor in the sample's spike list */
    uint32_t *ids;
    size_t cap_ids;
    nesim_chiptime_result r;
} nir_timer;

static void timer_free(nir_timer *t)
{
    nesim_chiptime_free(t->ct);
    nesim_cost_nir_ct_free(t->view_of);
    free(t->gnode), free(t->first), free(t->cur), free(t->ids);
    memset(t, 0, sizeof *t);
}

static int timer_open(nir_timer *t, const nesim_nir_job_opts *o, const nesim_nir_graph *g, const nesim_nir_net *net,
                      nesim_error *err)
{
    memset(t, 0, sizeof *t);
    if (o->chip && !strcmp(o->chip, "none"))
        return nesim_fail(err, NESIM_EINVAL, "--timing needs a chip (--chip)");
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost pre;
    memset(&pre, 0, sizeof pre);
    int rc = nesim_chip_load(o->chip ? o->chip : "loihi", NULL, &chip, err);
    if (!rc && (chip->kind != NESIM_CHIP_NEUROMORPHIC || !chip->p.has_latency))
        rc = nesim_fail(err, NESIM_EINVAL, "--timing: chip %s has no latency section: it cannot time a run "
                        "(profiles with one: loihi, loihi-sanafe)", chip->name);
    if (!rc)
        rc = nesim_chip_load("dense-45nm", NULL, &dense, err);
    /* before the run the counters are zero: this is the mapping alone */
    if (!rc)
        rc = nesim_cost_nir(chip, dense, g, net, 0, o->run.dt > 0 ? o->run.dt : 1, 0, &pre, &t->gnode, err);
    nesim_ct_graph view;
    if (!rc) {
        t->ng = (int)pre.n;
        rc = nesim_cost_nir_ct(g, net, t->gnode, t->ng, &t->view_of, &view, err);
    }
    if (!rc)
        rc = nesim_chiptime_new_graph(chip, &pre.caps, &pre.map, &view, (nesim_timing)o->timing, &t->ct, err);
    if (!rc) /* async: input events arrive in real time, one step per dt */
        nesim_chiptime_set_input_dt(t->ct, o->input_dt > 0 ? o->input_dt : o->run.dt > 0 ? o->run.dt : 1);
    if (!rc && (!(t->first = calloc((size_t)t->ng + 1, sizeof *t->first)) ||
                !(t->cur = calloc((size_t)t->ng + 1, sizeof *t->cur))))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int a = 0; !rc && a < t->ng; a++)
        t->first[a + 1] = t->first[a] + (uint32_t)nesim_nir_node_size(net, t->gnode[a]);
    if (pre.layer)
        nesim_cost_free(&pre);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    if (rc)
        timer_free(t);
    return rc;
}

/* Feeds one finished sample's steps: the Input group's nonzero frame values
 * and every spiking group's spikes, as events of step base + step. */
static int timer_sample(nir_timer *t, const nesim_nir_graph *g, const nesim_nir_net *net, const double *frames,
                        size_t steps, int64_t base, nesim_error *err)
{
    size_t nin = nesim_nir_input_size(net);
    for (int a = 0; a < t->ng; a++)
        t->cur[a] = 0;
    for (size_t st = 0; st < steps; st++) {
        size_t n = 0;
        for (int a = 0; a < t->ng; a++) {
            int node = t->gnode[a];
            size_t need = n + nesim_nir_node_size(net, node);
            if (need > t->cap_ids) {
                uint32_t *ni = realloc(t->ids, need * sizeof *ni);
                if (!ni)
                    return nesim_fail(err, NESIM_ENOMEM, "out of memory");
                t->ids = ni, t->cap_ids = need;
            }
            if (g->nodes[node].type == NESIM_NIR_INPUT) {
                for (size_t k = 0; k < nin; k++)
                    if (frames[st * nin + k] != 0)
                        t->ids[n++] = t->first[a] + (uint32_t)k;
                continue;
            }
            size_t ns;
            const nesim_nir_spike *sp = nesim_nir_spikes(net, node, &ns);
            while (t->cur[a] < ns && sp[t->cur[a]].step < (int64_t)st)
                t->cur[a]++;
            for (; t->cur[a] < ns && sp[t->cur[a]].step == (int64_t)st; t->cur[a]++)
                t->ids[n++] = t->first[a] + sp[t->cur[a]].idx;
        }
        int rc = nesim_chiptime_step(t->ct, base + (int64_t)st, t->ids, n, err);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

int nesim_nir_job(const nesim_nir_job_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    nesim_nir_graph g;
    nesim_nir_net *net = NULL;
    double *frames = NULL;
    FILE *csv = NULL;
    json_t *rep = NULL;
    size_t samples = 0, steps = 0;
    nir_rec rec;
    memset(&rec, 0, sizeof rec);
    rp_src rp;
    memset(&rp, 0, sizeof rp);
    nir_timer tm;
    memset(&tm, 0, sizeof tm);
    nesim_nir_job_opts oo = *o; /* a replay takes its run options from the trace */
    int rc = o->replay_db ? rp_open(&rp, &oo, &g, err) : nesim_nir_job_load(o->model, o->strict, &g, err);
    if (rc) {
        rp_close(&rp);
        return rc;
    }
    o = &oo;
    if ((rc = nesim_nir_net_new(&g, &o->run, o->model, &net, err)))
        goto done;
    if (o->replay_db) {
        samples = rp.n_samples;
        steps = rp.steps;
        if (!(frames = calloc(steps * nesim_nir_input_size(net) + 1, sizeof *frames))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            goto done;
        }
        if ((rp.node = nesim_nir_node_find(&g, rp.layer_name)) < 0) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: layer '%s' is no node of the stored graph",
                            o->replay_db, (long long)o->replay_run, rp.layer_name);
            goto done;
        }
    } else {
        if (!o->input) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: give --input FRAMES.npy ([samples, steps, %zu])", o->model,
                            nesim_nir_input_size(net));
            goto done;
        }
        if ((rc = load_frames(o->input, nesim_nir_input_size(net), &frames, &samples, &steps, err)))
            goto done;
    }
    if (o->max_samples && samples > o->max_samples)
        samples = o->max_samples;
    if (o->spikes_out) {
        csv = fopen(o->spikes_out, "w");
        if (!csv) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %s", o->spikes_out, strerror(errno));
            goto done;
        }
        fputs("sample,step,node,index\n", csv);
    }
    if (o->timing_steps && !o->timing) {
        rc = nesim_fail(err, NESIM_EINVAL, "--timing-steps needs --timing");
        goto done;
    }
    if (o->timing && (rc = timer_open(&tm, o, &g, net, err)))
        goto done;
    if (o->trace) {
        if ((rc = rec_begin(&rec, o, &g, net, err)))
            goto done;
        nesim_nir_set_step_hook(net, rec_step, &rec);
    }
    rep = json_object();
    json_t *per_sample = json_array(), *nodes = json_array();
    if (!rep || !per_sample || !nodes) {
        json_decref(per_sample);
        json_decref(nodes);
        goto nomem;
    }
    json_object_set_new(rep, "samples_detail", per_sample);
    json_object_set_new(rep, "nodes", nodes);
    int n_nodes = g.n_nodes;
    uint64_t h = 1469598103934665603ull; /* FNV-1a over (sample, step, node, index) */
    size_t nin = nesim_nir_input_size(net), nout = nesim_nir_output_size(net);
    for (size_t s = 0; s < samples; s++) {
        if (rec.t) {
            rec.base = (int64_t)(s * steps);
            memset(rec.seen, 0, (size_t)g.n_nodes * sizeof *rec.seen);
        }
        if (o->replay_db && ((rc = rp_sample(&rp, s, err)) ||
                             (rc = nesim_nir_set_replay(net, rp.node, rp.sp, rp.n_sp, err))))
            goto done;
        if ((rc = nesim_nir_run_sample(net, frames + (o->replay_db ? 0 : s * steps * nin), steps, err)))
            goto done;
        if (tm.ct && (rc = timer_sample(&tm, &g, net, frames + (o->replay_db ? 0 : s * steps * nin), steps,
                                        (int64_t)(s * steps), err)))
            goto done;
        if (rec.t) {
            nesim_trace_sample(rec.t, (int64_t)s, (int64_t)(s * steps), (int64_t)((s + 1) * steps - 1));
            nesim_trace_sync(rec.t);
        }
        for (int i = 0; i < n_nodes; i++) {
            size_t ns;
            const nesim_nir_spike *sp = nesim_nir_spikes(net, i, &ns);
            for (size_t k = 0; k < ns; k++) {
                uint64_t key[4] = {s, (uint64_t)sp[k].step, (uint64_t)i, sp[k].idx};
                const unsigned char *p = (const unsigned char *)key;
                for (size_t b = 0; b < sizeof key; b++)
                    h = (h ^ p[b]) * 1099511628211ull;
                if (csv)
                    fprintf(csv, "%zu,%lld,%s,%u\n", s, (long long)sp[k].step, g.nodes[i].name, sp[k].idx);
            }
        }
        json_t *one = json_object(), *ro = json_array();
        if (json_bad(one) || json_bad(ro)) {
            json_decref(one);
            json_decref(ro);
            goto nomem;
        }
        const double *r = nesim_nir_readout(net);
        size_t best = 0;
        for (size_t k = 0; r && k < nout; k++) {
            json_array_append_new(ro, json_real(r[k]));
            if (r[k] > r[best])
                best = k;
        }
        json_object_set_new(one, "readout", ro);
        if (nout)
            json_object_set_new(one, "argmax", json_integer((json_int_t)best));
        json_array_append_new(per_sample, one);
        if (o->progress)
            o->progress(o->user, (double)(s + 1) / (double)samples);
    }
    if (csv) {
        int bad = ferror(csv);
        bad |= fclose(csv) != 0;
        csv = NULL;
        if (bad) {
            rc = nesim_fail(err, NESIM_EIO, "%s: write failed", o->spikes_out);
            goto done;
        }
    }
    nesim_nir_counts tot = {0};
    uint64_t neurons = 0, macs = 0;
    for (int k = 0; k < n_nodes; k++) {
        int i = nesim_nir_run_order(net, k); /* the report lists nodes in run order */
        const nesim_nir_counts *c = nesim_nir_counts_of(net, i);
        json_t *n = json_object(), *shape = json_array();
        if (json_bad(n) || json_bad(shape)) {
            json_decref(n);
            json_decref(shape);
            goto nomem;
        }
        int64_t sh[NESIM_NIR_MAX_DIM];
        int nd = nesim_nir_node_shape(net, i, sh, NESIM_NIR_MAX_DIM);
        for (int d = 0; d < nd; d++)
            json_array_append_new(shape, json_integer(sh[d]));
        size_t size = nesim_nir_node_size(net, i);
        json_object_set_new(n, "name", json_string(g.nodes[i].name));
        json_object_set_new(n, "type", json_string(nesim_nir_type_name(g.nodes[i].type)));
        json_object_set_new(n, "shape", shape);
        json_object_set_new(n, "size", json_integer((json_int_t)size));
        json_object_set_new(n, "spikes", json_integer((json_int_t)c->spikes));
        json_object_set_new(n, "sops", json_integer((json_int_t)c->sops));
        json_object_set_new(n, "updates", json_integer((json_int_t)c->updates));
        json_object_set_new(n, "bias_ops", json_integer((json_int_t)c->bias_ops));
        uint64_t m = nesim_nir_node_dense_macs(net, i) * (uint64_t)steps * (uint64_t)samples;
        if (m)
            json_object_set_new(n, "dense_macs", json_integer((json_int_t)m));
        macs += m;
        if (nesim_nir_node_spikes(net, i)) {
            double slots = (double)size * (double)steps * (double)samples;
            json_object_set_new(n, "spikes_per_neuron_step", json_real(slots > 0 ? (double)c->spikes / slots : 0));
            neurons += size;
        }
        json_array_append_new(nodes, n);
        tot.spikes += c->spikes;
        tot.sops += c->sops;
        tot.updates += c->updates;
        tot.bias_ops += c->bias_ops;
    }
    char hx[17];
    snprintf(hx, sizeof hx, "%016llx", (unsigned long long)h);
    json_object_set_new(rep, "model", json_string(o->model));
    json_object_set_new(rep, "input", o->input ? json_string(o->input) : json_null());
    if (g.notes[0])
        json_object_set_new(rep, "import_notes", json_string(g.notes));
    json_object_set_new(rep, "nir_version", json_string(g.version ? g.version : ""));
    json_object_set_new(rep, "discretisation", json_string(o->run.disc == NESIM_NIR_EULER ? "euler" : "exact"));
    json_object_set_new(rep, "dt_s", json_real(o->run.dt));
    json_object_set_new(rep, "reset", json_string(o->run.reset_subtract ? "subtract" : "value"));
    json_object_set_new(rep, "dense", json_boolean(o->run.dense));
    json_object_set_new(rep, "samples", json_integer((json_int_t)samples));
    json_object_set_new(rep, "steps", json_integer((json_int_t)steps));
    json_object_set_new(rep, "spiking_neurons", json_integer((json_int_t)neurons));
    json_object_set_new(rep, "spikes", json_integer((json_int_t)tot.spikes));
    json_object_set_new(rep, "sops", json_integer((json_int_t)tot.sops));
    json_object_set_new(rep, "updates", json_integer((json_int_t)tot.updates));
    json_object_set_new(rep, "bias_ops", json_integer((json_int_t)tot.bias_ops));
    double slots = (double)neurons * (double)steps * (double)samples;
    json_object_set_new(rep, "spikes_per_neuron_step", json_real(slots > 0 ? (double)tot.spikes / slots : 0));
    json_object_set_new(rep, "spike_checksum", json_string(hx));
    json_object_set_new(rep, "dense_macs", json_integer((json_int_t)macs));
    if (tm.ct) {
        if ((rc = nesim_chiptime_finish(tm.ct, (int64_t)(samples * steps), &tm.r, err)))
            goto done;
        if (o->timing_steps) {
            int64_t shape[1] = {tm.r.steps};
            if ((rc = nesim_npy_write(o->timing_steps, NESIM_F64, 1, shape, tm.r.step_s, err)))
                goto done;
        }
    }
    if ((rc = price(o, rep, &g, net, &tot, macs, samples, steps, tm.ct ? tm.r.total_s : -1, err)))
        goto done;
    if (tm.ct) {
        const json_t *en = json_object_get(rep, "energy");
        json_t *ctj = nesim_chiptime_json(&tm.r, (nesim_timing)o->timing,
                                          en ? json_real_value(json_object_get(en, "total_j")) : -1);
        json_object_set_new(ctj, "per_inference_s", json_real(samples ? tm.r.total_s / (double)samples : 0));
        json_object_set_new(ctj, "inferences_per_s", json_real(tm.r.total_s > 0 ? (double)samples / tm.r.total_s : 0));
        json_object_set_new(rep, "chip_time", ctj);
        if (rec.t && nesim_trace_chip_steps(rec.t, tm.r.step_s, tm.r.steps)) {
            rc = nesim_fail(err, NESIM_EIO, "%s: storing the chip time failed", o->trace);
            goto done;
        }
    }
    if (rec.t) {
        int64_t run = rec.run;
        if ((rc = rec_end(&rec, NESIM_OK, rep, hx, samples, steps, err)))
            goto done;
        json_object_set_new(rep, "trace", json_pack("{sssI}", "file", o->trace, "run", (json_int_t)run));
    }
    *report = rep;
    rep = NULL;
    goto done;
nomem:
    rc = nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
done:
    if (rec.t) /* a failure after the run began: the trace says so */
        rc = rec_end(&rec, rc ? rc : NESIM_EIO, NULL, "", 0, 0, err);
    rec_free(&rec);
    timer_free(&tm);
    rp_close(&rp);
    if (csv)
        fclose(csv);
    json_decref(rep);
    free(frames);
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
    return rc;
}

