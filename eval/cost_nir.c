/* cost_nir.c — a NIR graph's run mapped on a chip and priced (see cost.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/chiptime.h"
#include "eval/cost.h"

typedef struct reach_ctx {
    const nesim_nir_net *net;
    int src, dst;
} reach_ctx;

static size_t reach_targets(void *user, uint64_t i, uint32_t *out, size_t cap)
{
    const reach_ctx *c = user;
    return nesim_nir_reach(c->net, c->src, (uint32_t)i, c->dst, out, cap);
}

/* Whether wiring alone leads from group src to group dst (breadth first). */
static int wired(const nesim_nir_graph *g, const nesim_nir_net *net, int src, int dst, uint8_t *mark, int *queue)
{
    memset(mark, 0, (size_t)g->n_nodes);
    int head = 0, tail = 0;
    queue[tail++] = src;
    mark[src] = 1;
    while (head < tail) {
        int u = queue[head++];
        for (int e = 0; e < g->n_edges; e++) {
            if (g->edges[e][0] != u)
                continue;
            int v = g->edges[e][1];
            if (v == dst)
                return 1;
            if (mark[v] || nesim_nir_node_is_group(net, v))
                continue;
            mark[v] = 1;
            queue[tail++] = v;
        }
    }
    return 0;
}

int nesim_cost_nir(const nesim_chip *chip, const nesim_chip *dense, const nesim_nir_graph *g,
                   const nesim_nir_net *net, int64_t ticks, double tick_s, size_t samples, nesim_cost *out,
                   int **group_node, nesim_error *err)
{
    return nesim_cost_nir_timed(chip, dense, g, net, ticks, tick_s, samples, -1, out, group_node, err);
}

int nesim_cost_nir_timed(const nesim_chip *chip, const nesim_chip *dense, const nesim_nir_graph *g,
                         const nesim_nir_net *net, int64_t ticks, double tick_s, size_t samples, double chip_seconds,
                         nesim_cost *out, int **group_node, nesim_error *err)
{
    *group_node = NULL;
    nesim_energy_params ep;
    nesim_dense_params dp;
    int rc = nesim_cost_begin(chip, dense, ticks, chip_seconds, out, &ep, &dp, err);
    if (rc)
        return rc;
    int n = g->n_nodes, ng = 0, ne = 0;
    int *gid = malloc((size_t)n * sizeof *gid), *node_of = malloc((size_t)n * sizeof *node_of);
    int *queue = malloc(((size_t)n + 1) * sizeof *queue);
    uint8_t *mark = malloc((size_t)n + 1);
    nesim_map_group *grp = calloc((size_t)n, sizeof *grp);
    nesim_map_edge *edge = NULL;
    reach_ctx *ctx = NULL;
    uint32_t **fan = calloc((size_t)n, sizeof *fan);
    uint32_t *tg = NULL;
    nesim_energy_input *ein = calloc((size_t)n, sizeof *ein);
    nesim_energy_layer *eout = calloc((size_t)n, sizeof *eout);
    if (!gid || !node_of || !queue || !mark || !grp || !fan || !ein || !eout)
        goto nomem;
    size_t tg_cap = 1;
    for (int k = 0; k < n; k++) {
        int i = nesim_nir_run_order(net, k); /* groups in run order */
        gid[i] = -1;
        if (!nesim_nir_node_is_group(net, i))
            continue;
        gid[i] = ng;
        node_of[ng] = i;
        size_t sz = nesim_nir_node_size(net, i);
        if (sz > tg_cap)
            tg_cap = sz;
        if (!(fan[ng] = calloc(sz + 1, sizeof **fan)))
            goto nomem;
        ng++;
    }
    edge = calloc((size_t)ng * (size_t)ng + 1, sizeof *edge);
    ctx = calloc((size_t)ng * (size_t)ng + 1, sizeof *ctx);
    tg = malloc(tg_cap * sizeof *tg);
    out->layer = calloc((size_t)ng + 1, sizeof *out->layer);
    if (!edge || !ctx || !tg || !out->layer)
        goto nomem;
    out->n = (size_t)ng;
    for (int a = 0; a < ng; a++)
        for (int b = 0; b < ng; b++) {
            if (!wired(g, net, node_of[a], node_of[b], mark, queue))
                continue;
            ctx[ne] = (reach_ctx){net, node_of[a], node_of[b]};
            edge[ne] = (nesim_map_edge){.pre = a, .post = b, .dense = 0, .targets = reach_targets, .user = &ctx[ne]};
            for (size_t i = 0; i < nesim_nir_node_size(net, node_of[a]); i++) {
                size_t f = nesim_nir_reach(net, node_of[a], (uint32_t)i, node_of[b], tg, tg_cap);
                for (size_t k = 0; k < f && k < tg_cap; k++)
                    fan[b][tg[k]]++;
            }
            ne++;
        }
    for (int a = 0; a < ng; a++) {
        uint32_t mx = 0;
        size_t sz = nesim_nir_node_size(net, node_of[a]);
        for (size_t i = 0; i < sz; i++)
            mx = fan[a][i] > mx ? fan[a][i] : mx;
        grp[a] = (nesim_map_group){.name = g->nodes[node_of[a]].name, .neurons = sz, .fan_in = mx, .weight_bits = 32};
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out->caps.pack = 1;
    if (chip->p.asynchronous) /* an asynchronous chip's cores are layers (Speck): one group, its own cores */
        out->caps.pack = 0;
    if ((rc = nesim_map(&out->caps, grp, (size_t)ng, edge, (size_t)ne, &out->map, err)))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->map_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    for (int a = 0; a < ng; a++) {
        int i = node_of[a];
        const nesim_nir_counts *c = nesim_nir_counts_of(net, i);
        nesim_energy_input *x = &ein[a];
        x->membrane_updates = (double)c->updates;
        x->neurons = (double)nesim_nir_node_size(net, i);
        const uint64_t *ev = nesim_nir_event_counts(net, i);
        for (size_t k = 0; ev && k < nesim_nir_node_size(net, i); k++)
            x->spikes_out += (double)ev[k];
        x->cores = (double)out->map.place[a].owned_cores;
        x->samples = (double)samples;
        x->weight_bits = 32;
        out->layer[a].cores = out->map.place[a].owned_cores;
        out->layer[a].compartments = out->map.place[a].compartments;
        out->layer[a].weight_bits_stored = out->map.place[a].weight_bits;
    }
    /* synaptic work: each wiring node's in the group it feeds */
    for (int i = 0; i < n; i++) {
        uint64_t macs = nesim_nir_node_dense_macs(net, i);
        if (!macs)
            continue;
        int d = nesim_nir_feeds(net, i);
        if (d < 0)
            continue;
        nesim_energy_input *x = &ein[gid[d]];
        x->sops += (double)nesim_nir_counts_of(net, i)->sops;
        x->dense_macs += (double)macs * (double)ticks;
        const nesim_nir_param *w = nesim_nir_param_get(&g->nodes[i], "weight");
        if (w) {
            x->weights += (double)w->count;
            x->weight_bytes += (double)w->count * 4;
        }
    }
    /* routing: each event of a source neuron to its destination cores */
    for (int j = 0; j < ne; j++) {
        int a = edge[j].pre;
        const uint64_t *ev = nesim_nir_event_counts(net, node_of[a]);
        nesim_energy_input *x = &ein[edge[j].post];
        for (size_t i = 0; ev && i < nesim_nir_node_size(net, node_of[a]); i++) {
            double s = (double)ev[i];
            x->spikes_in += s;
            x->deliveries += s * out->map.dest_cores[j][i];
            x->hops_ew += s * (double)out->map.hops_ew[j][i];
            x->hops_ns += s * (double)out->map.hops_ns[j][i];
            x->hops_chip += s * (double)out->map.hops_chip[j][i];
        }
    }
    nesim_energy_compute(&ep, &dp, ein, (size_t)ng, (double)ticks, tick_s, (double)out->map.cores, eout, &out->energy);
    for (int a = 0; a < ng; a++) {
        out->layer[a].in = ein[a];
        out->layer[a].e = eout[a];
    }
    *group_node = node_of;
    node_of = NULL;
    goto done;
nomem:
    rc = nesim_fail(err, NESIM_ENOMEM, "out of memory mapping the graph");
done:
    for (int a = 0; fan && a < n; a++)
        free(fan[a]);
    free(fan);
    free(gid);
    free(node_of);
    free(queue);
    free(mark);
    free(grp);
    free(edge);
    free(ctx);
    free(tg);
    free(ein);
    free(eout);
    if (rc)
        nesim_cost_free(out);
    return rc;
}

/* ---- the graph as chip time reads it ---- */

struct nesim_nir_ct {
    const nesim_nir_net *net;
    int ne;
    int *node_of;      /* per group */
    int *kind;         /* per group: NESIM_CT_* */
    int (*edges)[3];   /* pre, post, synapse storage */
};

void nesim_cost_nir_ct_free(nesim_nir_ct *c)
{
    if (!c)
        return;
    free(c->node_of);
    free(c->kind);
    free(c->edges);
    free(c);
}

static uint32_t ct_size(void *u, int a)
{
    nesim_nir_ct *c = u;
    return (uint32_t)nesim_nir_node_size(c->net, c->node_of[a]);
}

static int ct_kind(void *u, int a, uint32_t i)
{
    return ((nesim_nir_ct *)u)->kind[a];
}

static void ct_edge(void *u, int e, int *pre, int *post, int *syn, int64_t *delay)
{
    nesim_nir_ct *c = u;
    *pre = c->edges[e][0], *post = c->edges[e][1], *syn = c->edges[e][2], *delay = 0;
}

static size_t ct_targets(void *u, int e, uint32_t i, uint32_t *out, size_t cap)
{
    nesim_nir_ct *c = u;
    return nesim_nir_reach(c->net, c->node_of[c->edges[e][0]], i, c->node_of[c->edges[e][1]], out, cap);
}

static int has_nonzero(const nesim_nir_param *p)
{
    for (size_t k = 0; p && !p->str && k < p->count; k++)
        if (p->v[k] != 0)
            return 1;
    return 0;
}

int nesim_cost_nir_ct(const nesim_nir_graph *g, const nesim_nir_net *net, const int *group_node, int n_groups,
                      nesim_nir_ct **out, nesim_ct_graph *view, nesim_error *err)
{
    *out = NULL;
    int n = g->n_nodes;
    nesim_nir_ct *c = calloc(1, sizeof *c);
    int *gid = malloc((size_t)n * sizeof *gid), *queue = malloc(((size_t)n + 1) * sizeof *queue);
    uint8_t *mark = malloc((size_t)n + 1);
    if (!c || !gid || !queue || !mark || !(c->node_of = malloc((size_t)(n_groups + 1) * sizeof *c->node_of)) ||
        !(c->kind = calloc((size_t)(n_groups + 1), sizeof *c->kind)) ||
        !(c->edges = malloc(((size_t)n_groups * (size_t)n_groups + 1) * sizeof *c->edges))) {
        free(gid), free(queue), free(mark);
        nesim_cost_nir_ct_free(c);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    c->net = net;
    for (int i = 0; i < n; i++)
        gid[i] = -1;
    for (int a = 0; a < n_groups; a++) {
        c->node_of[a] = group_node[a];
        gid[group_node[a]] = a;
        switch (g->nodes[group_node[a]].type) {
        case NESIM_NIR_INPUT: c->kind[a] = NESIM_CT_SOURCE; break;
        case NESIM_NIR_LIF: case NESIM_NIR_CUBALIF: case NESIM_NIR_LI: case NESIM_NIR_CUBALI:
            c->kind[a] = NESIM_CT_DRIFT; /* a leak moves the state every step */
            break;
        default: c->kind[a] = NESIM_CT_PASSIVE; break;
        }
    }
    for (int i = 0; i < n; i++) { /* a bias is input every step */
        const nesim_nir_node *nd = &g->nodes[i];
        int d = nesim_nir_feeds(net, i);
        if (d >= 0 && gid[d] >= 0 && c->kind[gid[d]] == NESIM_CT_PASSIVE && has_nonzero(nesim_nir_param_get(nd, "bias")))
            c->kind[gid[d]] = NESIM_CT_DRIFT;
    }
    for (int a = 0; a < n_groups; a++)
        for (int b = 0; b < n_groups; b++) {
            if (!wired(g, net, c->node_of[a], c->node_of[b], mark, queue))
                continue;
            int syn = NESIM_CT_DENSE;
            for (int i = 0; i < n; i++)
                if ((g->nodes[i].type == NESIM_NIR_CONV1D || g->nodes[i].type == NESIM_NIR_CONV2D) &&
                    nesim_nir_feeds(net, i) == c->node_of[b])
                    syn = NESIM_CT_CONV;
            c->edges[c->ne][0] = a, c->edges[c->ne][1] = b, c->edges[c->ne][2] = syn;
            c->ne++;
        }
    free(gid), free(queue), free(mark);
    *view = (nesim_ct_graph){.user = c, .n_groups = n_groups, .n_edges = c->ne, .size = ct_size, .kind = ct_kind,
                             .edge = ct_edge, .targets = ct_targets};
    *out = c;
    return NESIM_OK;
}
