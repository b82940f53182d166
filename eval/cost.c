/* cost.c — mapping + metrics + energy of a layer run (see cost.h). */
#include "eval/cost.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int nesim_cost_params(const nesim_chip *chip, const nesim_chip *dense, nesim_chip_caps *caps,
                      nesim_energy_params *ep, nesim_dense_params *dp, nesim_error *err)
{
    if (chip->kind != NESIM_CHIP_NEUROMORPHIC)
        return nesim_fail(err, NESIM_EINVAL, "%s: '%s' is a dense baseline, not a neuromorphic chip", chip->file, chip->name);
    if (dense->kind != NESIM_CHIP_DENSE)
        return nesim_fail(err, NESIM_EINVAL, "%s: '%s' is not a dense baseline", dense->file, dense->name);
    const nesim_chip_params *p = &chip->p;
    *caps = (nesim_chip_caps){.neurons_per_core = p->neurons_per_core,
                              .synapse_bytes_per_core = (double)p->synapse_memory_bytes_per_core,
                              .fan_in_max = p->fan_in_max, .fan_out_max = p->fan_out_max,
                              .cores_per_chip = p->cores_per_chip, .cores_per_router = p->cores_per_router,
                              .mesh_x = p->mesh_x, .mesh_y = p->mesh_y,
                              .chip_mesh_x = p->chip_mesh_x, .chip_mesh_y = p->chip_mesh_y,
                              .weight_bits_max = p->weight_bits_max, .split_fan_in = 1};
    *ep = (nesim_energy_params){.sop = p->energy.synaptic_op, .update_active = p->energy.neuron_update_active,
                                .update_idle = p->energy.neuron_update_idle, .spike_out = p->energy.spike_out,
                                .spike_core = p->energy.spike_within_core, .hop_ew = p->energy.hop_ew,
                                .hop_ns = p->energy.hop_ns, .hop_chip = p->energy.hop_chip,
                                .static_w_per_core = chip->d.static_power_per_core_w,
                                .step_s = p->tick_s};
    memset(dp, 0, sizeof *dp);
    int i8 = nesim_chip_dtype_index("int8"), f16 = nesim_chip_dtype_index("fp16"), f32 = nesim_chip_dtype_index("fp32");
    dp->int8_add = dense->dense.add_j[i8];
    dp->int8_mult = dense->dense.mult_j[i8];
    dp->fp16_add = dense->dense.add_j[f16];
    dp->fp16_mult = dense->dense.mult_j[f16];
    dp->fp32_add = dense->dense.has[f32] ? dense->dense.add_j[f32] : 0;
    dp->fp32_mult = dense->dense.has[f32] ? dense->dense.mult_j[f32] : 0;
    double scale = 64.0 / (dense->dense.word_bits ? dense->dense.word_bits : 64); /* to 64-bit accesses */
    for (size_t k = 0; k < 3 && k < dense->dense.n_sram; k++) {
        dp->sram_size[k] = (double)dense->dense.sram[k].capacity_bytes;
        dp->sram_read64[k] = dense->dense.sram[k].read_j * scale;
    }
    dp->dram_read64 = dense->dense.dram_min_j * scale;
    return NESIM_OK;
}

int nesim_cost_begin(const nesim_chip *chip, const nesim_chip *dense, int64_t ticks, double chip_seconds,
                     nesim_cost *out, nesim_energy_params *ep, nesim_dense_params *dp, nesim_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = nesim_cost_params(chip, dense, &out->caps, ep, dp, err);
    if (rc)
        return rc;
    if (chip_seconds > 0 && ticks > 0)
        ep->step_s = chip_seconds / (double)ticks; /* static energy over the chip's own time */
    out->chip = chip->name;
    out->dense = dense->name;
    return NESIM_OK;
}

static size_t layer_targets(void *user, uint64_t i, uint32_t *out, size_t cap)
{
    return nesim_layer_targets(user, i, out, cap);
}

void nesim_cost_free(nesim_cost *c)
{
    nesim_map_free(&c->map);
    free(c->layer);
    c->layer = NULL;
}

/* The groups and edges of a layer model's mapping, from its loaded layers
 * (the same before a run as after): group 0 the model input, group 1 + i
 * layer i's outputs (non-coded layers hold no neurons: their values travel
 * with their source's); each coded layer an edge from the group holding
 * its input. Returns the edges. */
static size_t layer_groups(const nesim_infer *m, nesim_map_group *g, nesim_map_edge *e, long *group_of, int *edge_of)
{
    const nesim_layers *G = nesim_infer_graph(m);
    size_t n = nesim_infer_layers(m), ne = 0;
    g[0] = (nesim_map_group){.name = "input", .neurons = nesim_infer_input_size(m)};
    for (size_t i = 0; i < n; i++) {
        const nesim_layer *d = nesim_layers_get(G, i);
        long src = d->src < 0 ? 0 : group_of[d->src];
        int coded = d->coded;
        /* a neuron's fan-in: its row (linear) or kernel (conv2d) */
        g[i + 1] = (nesim_map_group){.name = d->sl->name, .neurons = coded ? d->out : 0,
                                     .fan_in = coded ? (uint64_t)(d->dense_macs / (d->out ? (double)d->out : 1) + 0.5) : 0,
                                     .weight_bits = d->weight_bits};
        group_of[i] = coded ? (long)i + 1 : src;
        edge_of[i] = -1;
        if (coded) {
            e[ne] = (nesim_map_edge){.pre = (int)src, .post = (int)i + 1,
                                     .dense = d->sl->type == NESIM_LAYER_LINEAR,
                                     .targets = layer_targets, .user = (void *)d};
            edge_of[i] = (int)ne++;
        }
    }
    return ne;
}

int nesim_cost_layers_map(const nesim_chip *chip, const nesim_chip *dense, const nesim_infer *m, nesim_cost *out,
                          nesim_error *err)
{
    nesim_energy_params ep;
    nesim_dense_params dp;
    int rc = nesim_cost_begin(chip, dense, 0, -1, out, &ep, &dp, err);
    if (rc)
        return rc;
    size_t n = nesim_infer_layers(m);
    nesim_map_group *g = calloc(n + 1, sizeof *g);
    nesim_map_edge *e = calloc(n ? n : 1, sizeof *e);
    long *group_of = calloc(n + 1, sizeof *group_of);
    int *edge_of = calloc(n ? n : 1, sizeof *edge_of);
    if (!g || !e || !group_of || !edge_of)
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (!rc) {
        size_t ne = layer_groups(m, g, e, group_of, edge_of);
        rc = nesim_map(&out->caps, g, n + 1, e, ne, &out->map, err);
    }
    free(g), free(e), free(group_of), free(edge_of);
    return rc;
}

int nesim_cost_layers(const nesim_chip *chip, const nesim_chip *dense, const nesim_infer *m,
                      const nesim_infer_report *r, double model_tick_s, nesim_cost *out,
                      nesim_error *err)
{
    return nesim_cost_layers_timed(chip, dense, m, r, model_tick_s, -1, out, err);
}

int nesim_cost_layers_timed(const nesim_chip *chip, const nesim_chip *dense, const nesim_infer *m,
                            const nesim_infer_report *r, double model_tick_s, double chip_seconds, nesim_cost *out,
                            nesim_error *err)
{
    nesim_energy_params ep;
    nesim_dense_params dp;
    int rc = nesim_cost_begin(chip, dense, r->ticks, chip_seconds, out, &ep, &dp, err);
    if (rc)
        return rc;
    size_t n = r->n_layers;
    nesim_map_group *g = calloc(n + 1, sizeof *g);
    nesim_map_edge *e = calloc(n ? n : 1, sizeof *e);
    long *group_of = calloc(n + 1, sizeof *group_of); /* neuron group holding layer i's output */
    int *edge_of = calloc(n ? n : 1, sizeof *edge_of);
    out->layer = calloc(n ? n : 1, sizeof *out->layer);
    if (!g || !e || !group_of || !edge_of || !out->layer) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    out->n = n;
    size_t ne = layer_groups(m, g, e, group_of, edge_of);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((rc = nesim_map(&out->caps, g, n + 1, e, ne, &out->map, err)))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->map_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    nesim_energy_input *ein = calloc(n ? n : 1, sizeof *ein);
    nesim_energy_layer *eout = calloc(n ? n : 1, sizeof *eout);
    if (!ein || !eout) {
        free(ein);
        free(eout);
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    double inputs = 0;
    for (size_t i = 0; i < n; i++) {
        const nesim_layer_report *L = &r->layers[i];
        const nesim_layer *d = L->def;
        nesim_cost_layer *C = &out->layer[i];
        nesim_energy_input *x = &ein[i];
        if (edge_of[i] < 0)
            continue;
        int j = edge_of[i];
        const nesim_map_place *pl = &out->map.place[i + 1];
        const nesim_map_place *pre = &out->map.place[e[j].pre];
        uint64_t npre = g[e[j].pre].neurons;
        C->cores = pl->n_cores;
        C->compartments = pl->compartments;
        C->weight_bits_stored = pl->weight_bits;
        x->sops = (double)L->st.sops + L->graded_macs; /* a graded MAC is priced as a synaptic op */
        x->neurons = (double)L->out;
        /* the kernels' count; a graded layer updates each neuron once per sample */
        x->membrane_updates = d->sl->graded ? (double)L->out * (double)L->st.samples : (double)L->st.updates;
        x->spikes_in = x->spikes_out = (double)L->st.spikes;
        for (size_t c = 0; c < L->in; c++) {
            if (!L->chan_spikes[c] || !npre)
                continue;
            uint64_t src = L->in == npre ? c : (uint64_t)((double)c * (double)npre / (double)L->in);
            double s = (double)L->chan_spikes[c];
            x->deliveries += s * out->map.dest_cores[j][src];
            x->hops_ew += s * (double)out->map.hops_ew[j][src];
            x->hops_ns += s * (double)out->map.hops_ns[j][src];
            x->hops_chip += s * (double)out->map.hops_chip[j][src];
        }
        /* split fan-in: each update sends compartments - 1 partial sums */
        x->deliveries += x->membrane_updates * (double)(pl->compartments - 1);
        x->cores = (double)pl->n_cores;
        x->dense_macs = L->dense_macs;
        x->weights = d->weights;
        x->samples = (double)r->samples;
        x->weight_bytes = d->weight_bytes;
        x->weight_bits = d->weight_bits;
        x->in_values = (double)L->in * (double)r->samples;
        x->out_values = (double)L->out * (double)r->samples;
        (void)pre;
        inputs += (double)L->st.inputs;
    }
    nesim_energy_compute(&ep, &dp, ein, n, (double)r->ticks, model_tick_s, (double)out->map.cores, eout, &out->energy);
    for (size_t i = 0; i < n; i++) {
        out->layer[i].in = ein[i];
        out->layer[i].e = eout[i];
    }
    free(ein);
    free(eout);
    out->spikes_per_channel = inputs > 0 ? (double)r->spikes / inputs : 0;
    nesim_spikingbrain_estimate(&dp, out->spikes_per_channel, &out->sb_vs_fp16, &out->sb_vs_int8);
done:
    free(g);
    free(e);
    free(group_of);
    free(edge_of);
    if (rc)
        nesim_cost_free(out);
    return rc;
}

typedef struct proj_ctx {
    const nesim_net *net;
    int proj;
} proj_ctx;

static size_t proj_targets(void *user, uint64_t i, uint32_t *out, size_t cap)
{
    const proj_ctx *c = user;
    return nesim_projection_targets(c->net, c->proj, (uint32_t)i, out, cap);
}

static int population_drifts(const nesim_net *net, int p)
{
    const nesim_graph_pop *P = &nesim_net_graph(net)->pops[p];
    for (uint32_t c = 0; c < (P->cls ? P->n_cls : 1); c++) {
        const nesim_dyn *d = P->cls ? &P->cdyn[c] : &P->dyn;
        if (!d->model->is_source && d->model->drifts && d->model->drifts(d))
            return 1;
    }
    return 0;
}

/* A part graph's destination cores of projection j (post placed *post):
 * per pre neuron, the cores of its targets on this rank, merged over the
 * ranks (bitwise OR: the union). Returns the words (the caller frees them),
 * NULL with err filled on failure. */
static uint64_t *merged_reach(const nesim_net *net, int j, const nesim_map_place *post, uint32_t *tg, size_t tg_cap,
                              nesim_error *err)
{
    const nesim_proj_spec *ps = nesim_projection_spec(net, j);
    const uint64_t npre = nesim_population_size(net, ps->pre), words = nesim_map_reach_words(post);
    uint64_t *reach = calloc(npre && words ? npre * words : 1, sizeof *reach);
    if (!reach) {
        nesim_fail(err, NESIM_ENOMEM, "out of memory");
        return NULL;
    }
    for (uint64_t i = 0; i < npre; i++) {
        size_t f = nesim_projection_targets(net, j, (uint32_t)i, tg, tg_cap);
        for (size_t k = 0; k < f && k < tg_cap; k++) {
            uint64_t d = nesim_map_core(post, tg[k]) - post->first_core;
            reach[i * words + d / 64] |= (uint64_t)1 << (d % 64);
        }
    }
    if (nesim_comm_reduce_u64(nesim_net_comm(net), reach, npre * words, NESIM_REDUCE_OR,
                              "the destination cores of a projection", err)) {
        free(reach);
        return NULL;
    }
    return reach;
}

/* Groups and edges of a network, and its mapping: out->caps, out->map,
 * out->map_seconds. A graph drawn in parts (each rank its own targets'
 * synapses) is mapped by its ranks together: each counts the fan-in of the
 * neurons it holds (every synapse into them is on this rank), the largest
 * over the ranks sizes the placement, which every rank then makes alike,
 * and each edge's destination cores are every rank's merged. */
static int map_network(const nesim_net *net, int asynchronous, nesim_cost *out, nesim_error *err)
{
    int rc = NESIM_OK;
    int np = nesim_population_count(net), nj = nesim_projection_count(net);
    const int part = nesim_graph_is_part(nesim_net_graph(net));
    if (part && !nesim_net_comm(net))
        return nesim_fail(err, NESIM_EINVAL, "a graph drawn in parts is mapped by its ranks together: the network "
                                             "has no ranks (nesim_net_set_comm)");
    nesim_map_group *g = calloc((size_t)(np ? np : 1), sizeof *g);
    nesim_map_edge *e = calloc(nj ? (size_t)nj : 1, sizeof *e);
    proj_ctx *ctx = calloc(nj ? (size_t)nj : 1, sizeof *ctx);
    uint32_t **fan = calloc((size_t)(np ? np : 1), sizeof *fan); /* synapses into each neuron */
    uint64_t *fan_max = calloc((size_t)(np ? np : 1), sizeof *fan_max);
    uint64_t **reach = calloc(nj ? (size_t)nj : 1, sizeof *reach);
    uint32_t *tg = NULL;
    size_t tg_cap = 0;
    if (!g || !e || !ctx || !fan || !fan_max || !reach) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    for (int p = 0; p < np; p++) {
        uint32_t n = nesim_population_size(net, p);
        if (!(fan[p] = calloc(n, sizeof **fan))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            goto done;
        }
        if (n > tg_cap)
            tg_cap = n;
    }
    if (!(tg = malloc((tg_cap ? tg_cap : 1) * sizeof *tg))) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    for (int j = 0; j < nj; j++) {
        const nesim_proj_spec *ps = nesim_projection_spec(net, j);
        for (uint32_t i = 0; i < nesim_population_size(net, ps->pre); i++) {
            size_t f = nesim_projection_targets(net, j, i, tg, tg_cap);
            for (size_t k = 0; k < f && k < tg_cap; k++)
                fan[ps->post][tg[k]]++;
        }
        ctx[j] = (proj_ctx){net, j};
        e[j] = (nesim_map_edge){.pre = ps->pre, .post = ps->post, .dense = 0, .targets = proj_targets, .user = &ctx[j]};
    }
    for (int p = 0; p < np; p++)
        for (uint32_t i = 0; i < nesim_population_size(net, p); i++)
            fan_max[p] = fan[p][i] > fan_max[p] ? fan[p][i] : fan_max[p];
    if (part && (rc = nesim_comm_reduce_u64(nesim_net_comm(net), fan_max, (size_t)np, NESIM_REDUCE_MAX,
                                            "the largest fan-in of each population", err)))
        goto done;
    for (int p = 0; p < np; p++)
        g[p] = (nesim_map_group){.name = nesim_population_name(net, p), .neurons = nesim_population_size(net, p),
                                 .fan_in = fan_max[p], .weight_bits = 32, .cores = nesim_net_graph(net)->pops[p].cores};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out->caps.pack = 1; /* populations of any size share cores as their neurons allow */
    if (asynchronous) /* an asynchronous chip's cores are layers (Speck): one group, its own cores */
        out->caps.pack = 0;
    if ((rc = nesim_map_place_groups(&out->caps, g, (size_t)np, &out->map, err)))
        goto done;
    for (int j = 0; part && j < nj; j++)
        if (!(e[j].reach = reach[j] = merged_reach(net, j, &out->map.place[e[j].post], tg, tg_cap, err))) {
            nesim_map_free(&out->map);
            rc = err->code;
            goto done;
        }
    if ((rc = nesim_map_route_edges(&out->caps, g, e, (size_t)nj, &out->map, err)))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->map_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
done:
    for (int p = 0; fan && p < np; p++)
        free(fan[p]);
    for (int j = 0; reach && j < nj; j++)
        free(reach[j]);
    free(reach);
    free(fan);
    free(fan_max);
    free(tg);
    free(g);
    free(e);
    free(ctx);
    return rc;
}

int nesim_cost_network_map(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net, nesim_cost *out,
                           nesim_error *err)
{
    nesim_energy_params ep;
    nesim_dense_params dp;
    int rc = nesim_cost_begin(chip, dense, 0, -1, out, &ep, &dp, err);
    if (!rc)
        rc = map_network(net, chip->p.asynchronous, out, err);
    if (rc)
        nesim_cost_free(out);
    return rc;
}

int nesim_cost_network(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net,
                       const uint64_t *spikes, int64_t ticks, nesim_cost *out, nesim_error *err)
{
    return nesim_cost_network_timed(chip, dense, net, spikes, ticks, -1, out, err);
}

int nesim_cost_network_timed(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net,
                             const uint64_t *spikes, int64_t ticks, double chip_seconds, nesim_cost *out,
                             nesim_error *err)
{
    return nesim_cost_network_mapped(chip, dense, net, NULL, spikes, ticks, chip_seconds, out, err);
}

int nesim_cost_network_mapped(const nesim_chip *chip, const nesim_chip *dense, const nesim_net *net,
                              nesim_cost *mapped, const uint64_t *spikes, int64_t ticks, double chip_seconds,
                              nesim_cost *out, nesim_error *err)
{
    nesim_energy_params ep;
    nesim_dense_params dp;
    int rc = nesim_cost_begin(chip, dense, ticks, chip_seconds, out, &ep, &dp, err);
    if (rc)
        return rc;
    int np = nesim_population_count(net), nj = nesim_projection_count(net);
    nesim_energy_input *ein = calloc((size_t)(np ? np : 1), sizeof *ein);
    nesim_energy_layer *eout = calloc((size_t)(np ? np : 1), sizeof *eout);
    out->layer = calloc((size_t)(np ? np : 1), sizeof *out->layer);
    if (!ein || !eout || !out->layer) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    out->n = (size_t)np;
    if (mapped && mapped->map.place) { /* the placement is the same before a run as after: taken, not made again */
        out->caps = mapped->caps, out->map = mapped->map, out->map_seconds = mapped->map_seconds;
        memset(&mapped->map, 0, sizeof mapped->map);
    } else if ((rc = map_network(net, chip->p.asynchronous, out, err))) {
        goto done;
    }
    for (int p = 0; p < np; p++) {
        const nesim_counters *k = nesim_population_counters(net, p);
        nesim_energy_input *x = &ein[p];
        x->sops = (double)k->sops;
        x->neurons = (double)nesim_population_size(net, p);
        /* A time-stepped chip updates a neuron whose state drifts (a leak, a
         * drive) in every step, whether or not an event reached it; others
         * only in the steps input reaches them (the engine's count). With
         * per-neuron parameters the population drifts if any neuron does. */
        x->membrane_updates = population_drifts(net, p) ? x->neurons * (double)ticks : (double)k->updates;
        x->spikes_out = (double)k->spikes;
        x->cores = (double)out->map.place[p].owned_cores; /* a shared core's static power is counted once */
        out->layer[p].cores = out->map.place[p].owned_cores;
        out->layer[p].compartments = out->map.place[p].compartments;
        out->layer[p].weight_bits_stored = out->map.place[p].weight_bits;
    }
    /* routing: into the post population, from each source neuron's spikes;
     * and the synaptic ops each projection receives, priced by its storage */
    double *st_ops = calloc((size_t)(np ? np : 1) * 3, sizeof *st_ops);
    if (!st_ops) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    for (int j = 0; j < nj; j++) {
        const nesim_proj_spec *ps = nesim_projection_spec(net, j);
        nesim_energy_input *x = &ein[ps->post];
        uint32_t first = nesim_population_first(net, ps->pre);
        int st = (int)nesim_storage_of(ps) - NESIM_STORE_DENSE;
        for (uint32_t i = 0; i < nesim_population_size(net, ps->pre); i++) {
            double s = (double)spikes[first + i];
            if (s > 0)
                st_ops[3 * ps->post + st] += s * (double)nesim_graph_fanout(nesim_net_graph(net), j, i);
            x->spikes_in += s;
            x->deliveries += s * out->map.dest_cores[j][i];
            x->hops_ew += s * (double)out->map.hops_ew[j][i];
            x->hops_ns += s * (double)out->map.hops_ns[j][i];
            x->hops_chip += s * (double)out->map.hops_chip[j][i];
        }
        uint64_t syn = nesim_projection_synapses(net, j);
        x->weights += (double)syn;
        x->dense_macs += (double)syn * (double)ticks; /* a clock-driven simulator's synaptic work */
    }
    /* the engine counted each population's ops; their mix by storage sets the price of one */
    const double *eby = chip->p.energy.syn_by_storage;
    for (int p = 0; p < np; p++) {
        double n3 = st_ops[3 * p] + st_ops[3 * p + 1] + st_ops[3 * p + 2];
        if (n3 > 0)
            ein[p].sop_j = (st_ops[3 * p] * eby[0] + st_ops[3 * p + 1] * eby[1] + st_ops[3 * p + 2] * eby[2]) / n3;
    }
    free(st_ops);
    nesim_energy_compute(&ep, &dp, ein, (size_t)np, (double)ticks, nesim_tick_seconds(net), (double)out->map.cores,
                         eout, &out->energy);
    for (int p = 0; p < np; p++) {
        out->layer[p].in = ein[p];
        out->layer[p].e = eout[p];
    }
done:
    free(ein);
    free(eout);
    if (rc)
        nesim_cost_free(out);
    return rc;
}

/* ---- a layer model as chip time reads it ---- */

struct nesim_layers_ct {
    const nesim_infer *m;
    size_t n;             /* layers */
    int ng, ne;           /* the view's groups (mapping groups, then one coder per coded layer) and edges */
    uint32_t *size;
    int *kind;
    int *edge_layer;      /* per edge: its layer */
    int *coder_of;        /* per layer: its coder's view group, or -1 */
    uint32_t *first;      /* per view group: its first neuron */
    nesim_mapping tm;     /* the places the timing reads */
    uint32_t **cores;     /* per coder: its channels' cores (owned) */
};

static uint32_t lv_size(void *u, int g) { return ((nesim_layers_ct *)u)->size[g]; }
static int lv_kind(void *u, int g, uint32_t i) { return ((nesim_layers_ct *)u)->kind[g]; }
static const nesim_layer *lv_layer(const nesim_layers_ct *v, int e)
{
    return nesim_layers_get(nesim_infer_graph(v->m), (size_t)v->edge_layer[e]);
}
static void lv_edge(void *u, int e, int *pre, int *post, int *syn, int64_t *delay)
{
    nesim_layers_ct *v = u;
    int i = v->edge_layer[e];
    *pre = v->coder_of[i], *post = i + 1, *delay = 0;
    *syn = lv_layer(v, e)->sl->type == NESIM_LAYER_LINEAR ? NESIM_CT_DENSE : NESIM_CT_CONV;
}
static size_t lv_targets(void *u, int e, uint32_t i, uint32_t *out, size_t cap)
{
    return nesim_layer_targets(lv_layer(u, e), i, out, cap);
}
static int lv_dense(void *u, int e) { return lv_layer(u, e)->sl->type == NESIM_LAYER_LINEAR; }

void nesim_layers_ct_free(nesim_layers_ct *v)
{
    if (!v)
        return;
    for (int k = 0; v->cores && k < v->ng; k++)
        free(v->cores[k]);
    free(v->cores);
    free(v->tm.place);
    free(v->size), free(v->kind), free(v->edge_layer), free(v->coder_of), free(v->first);
    free(v);
}

int nesim_cost_layers_ct(const nesim_infer *m, const nesim_mapping *map, nesim_layers_ct **out, nesim_ct_graph *view,
                         const nesim_mapping **tmap, nesim_error *err)
{
    *out = NULL;
    const nesim_layers *G = nesim_infer_graph(m);
    size_t n = nesim_infer_layers(m), coded = 0;
    for (size_t i = 0; i < n; i++)
        coded += nesim_layers_get(G, i)->coded && !nesim_layers_get(G, i)->sl->graded;
    if (map->n_groups != n + 1)
        return nesim_fail(err, NESIM_EINTERNAL, "chip time: the mapping has %zu groups, the model %zu layers",
                          map->n_groups, n);
    nesim_layers_ct *v = calloc(1, sizeof *v);
    int ng = (int)(n + 1 + coded);
    if (!v || !(v->size = calloc((size_t)ng, sizeof *v->size)) || !(v->kind = calloc((size_t)ng, sizeof *v->kind)) ||
        !(v->edge_layer = calloc(coded ? coded : 1, sizeof *v->edge_layer)) ||
        !(v->coder_of = malloc((n ? n : 1) * sizeof *v->coder_of)) ||
        !(v->first = calloc((size_t)ng + 1, sizeof *v->first)) || !(v->cores = calloc((size_t)ng, sizeof *v->cores)) ||
        !(v->tm.place = calloc((size_t)ng, sizeof *v->tm.place))) {
        nesim_layers_ct_free(v);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    v->m = m, v->n = n, v->ng = ng;
    v->tm.n_groups = (size_t)ng;
    v->tm.cores = map->cores;
    long *group_of = malloc((n + 1) * sizeof *group_of);
    if (!group_of) {
        nesim_layers_ct_free(v);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    v->size[0] = (uint32_t)nesim_infer_input_size(m);
    v->kind[0] = NESIM_CT_SOURCE;
    v->tm.place[0] = map->place[0];
    int k = (int)n + 1;
    for (size_t i = 0; i < n; i++) {
        const nesim_layer *d = nesim_layers_get(G, i);
        long src = d->src < 0 ? 0 : group_of[d->src];
        group_of[i] = d->coded ? (long)i + 1 : src;
        v->size[i + 1] = d->coded ? (uint32_t)d->out : 0;
        v->kind[i + 1] = NESIM_CT_PASSIVE;
        v->tm.place[i + 1] = map->place[i + 1]; /* its core array stays the mapping's */
        v->coder_of[i] = -1;
        if (!d->coded || d->sl->graded)
            continue; /* graded input: no spikes, no coder */
        /* the coder: channel c on the core of the neuron holding input value c */
        const nesim_map_place *P = &map->place[src];
        uint64_t npre = src == 0 ? nesim_infer_input_size(m) : nesim_layers_get(G, (size_t)src - 1)->out;
        uint32_t *cores = malloc((d->in ? d->in : 1) * sizeof *cores);
        if (!cores) {
            free(group_of);
            nesim_layers_ct_free(v);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        }
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t c = 0; c < d->in; c++) {
            uint64_t at = d->in == npre || !npre ? c : (uint64_t)((double)c * (double)npre / (double)d->in);
            uint64_t core = npre ? nesim_map_core(P, at < npre ? at : npre - 1) : 0;
            cores[c] = (uint32_t)core;
            lo = core < lo ? core : lo;
            hi = core > hi ? core : hi;
        }
        v->cores[k] = cores;
        v->size[k] = (uint32_t)d->in;
        v->kind[k] = src == 0 ? NESIM_CT_SOURCE : NESIM_CT_RELAY;
        v->tm.place[k] = (nesim_map_place){.first_core = d->in ? lo : 0, .n_cores = d->in ? hi - lo + 1 : 0,
                                           .per_core = 1, .core = cores, .compartments = 1};
        v->coder_of[i] = k;
        v->edge_layer[v->ne++] = (int)i;
        k++;
    }
    free(group_of);
    v->ng = k;
    v->tm.n_groups = (size_t)k;
    for (int p = 0; p < k; p++)
        v->first[p + 1] = v->first[p] + v->size[p];
    *view = (nesim_ct_graph){.user = v, .n_groups = k, .n_edges = v->ne, .size = lv_size, .kind = lv_kind,
                             .edge = lv_edge, .targets = lv_targets, .dense = lv_dense};
    *tmap = &v->tm;
    *out = v;
    return NESIM_OK;
}

uint32_t nesim_layers_ct_neuron(const nesim_layers_ct *v, size_t layer, uint32_t channel)
{
    if (layer >= v->n || v->coder_of[layer] < 0 || channel >= v->size[v->coder_of[layer]])
        return UINT32_MAX;
    return v->first[v->coder_of[layer]] + channel;
}
