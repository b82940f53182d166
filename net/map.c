/* map.c — placement and dimension-order routing (see map.h). */
#include "net/map.h"

#include "base/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nesim_map_chip_xy(const nesim_chip_caps *caps, uint64_t core, uint64_t *cx, uint64_t *cy)
{
    uint64_t chip = core / caps->cores_per_chip;
    *cx = caps->chip_mesh_x ? chip % caps->chip_mesh_x : chip;
    *cy = caps->chip_mesh_x ? chip / caps->chip_mesh_x : 0;
}

void nesim_map_core_xy(const nesim_chip_caps *caps, uint64_t core, uint64_t *x, uint64_t *y)
{
    uint64_t cx, cy, k = core % caps->cores_per_chip;
    uint64_t r = k / (caps->cores_per_router ? caps->cores_per_router : 1);
    nesim_map_chip_xy(caps, core, &cx, &cy);
    *x = cx * caps->mesh_x + r % caps->mesh_x;
    *y = cy * caps->mesh_y + r / caps->mesh_x;
}

void nesim_map_free(nesim_mapping *m)
{
    for (size_t j = 0; j < m->n_edges; j++) {
        if (m->dest_cores)
            free(m->dest_cores[j]);
        if (m->hops_ew)
            free(m->hops_ew[j]);
        if (m->hops_ns)
            free(m->hops_ns[j]);
        if (m->hops_chip)
            free(m->hops_chip[j]);
    }
    free(m->hops_chip);
    free(m->dest_cores);
    free(m->hops_ew);
    free(m->hops_ns);
    for (size_t i = 0; m->place && i < m->n_groups; i++)
        free(m->place[i].core);
    free(m->place);
    free(m->syn_bytes_core_max);
    memset(m, 0, sizeof *m);
}

static uint64_t udiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

typedef struct route {
    uint64_t src, dst;
} route;

typedef struct routes {
    route *v;
    size_t n, cap;
} routes;

static int cmp_route(const void *a, const void *b)
{
    const route *x = a, *y = b;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return (x->dst > y->dst) - (x->dst < y->dst);
}

/* Adds source core src's entries to post's cores marked in used. */
static int add_routes(routes *rt, uint64_t src, const nesim_map_place *post, const uint8_t *used)
{
    for (uint64_t d = 0; d < post->n_cores; d++) {
        if (!used[d])
            continue;
        route *v = nesim_grown(rt->v, rt->n + 1, &rt->cap, sizeof *v, 256);
        if (!v)
            return -1;
        rt->v = v;
        rt->v[rt->n++] = (route){src, post->first_core + d};
    }
    return 0;
}

/* A group whose cores are given: checks them and records the window they
 * span. Slots count compartments as automatic placement does (one per
 * neuron: a given placement does not split fan-ins). */
static int place_given(const nesim_chip_caps *caps, const nesim_map_group *G, nesim_map_place *P, double *syn_max,
                       uint32_t **given, uint64_t *given_cap, nesim_error *err)
{
    uint64_t max_cores = caps->chip_mesh_x && caps->chip_mesh_y
                             ? caps->chip_mesh_x * caps->chip_mesh_y * caps->cores_per_chip
                             : UINT64_MAX;
    if (caps->fan_in_max && G->fan_in > caps->fan_in_max)
        return nesim_fail(err, NESIM_EINVAL, "%s: fan-in of %llu synapses per neuron exceeds the chip's limit of %llu",
                          G->name, (unsigned long long)G->fan_in, (unsigned long long)caps->fan_in_max);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t i = 0; i < G->neurons; i++) {
        uint64_t c = G->cores[i];
        if (c >= max_cores)
            return nesim_fail(err, NESIM_EINVAL, "%s: neuron %llu is placed on core %llu; the system has %llu cores",
                              G->name, (unsigned long long)i, (unsigned long long)c, (unsigned long long)max_cores);
        if (c >= *given_cap) {
            size_t old = *given_cap, cap = old;
            uint32_t *v = nesim_grown(*given, c + 1, &cap, sizeof *v, 64);
            if (!v)
                return nesim_fail(err, NESIM_ENOMEM, "mapping: out of memory");
            memset(v + old, 0, (cap - old) * sizeof *v);
            *given = v, *given_cap = cap;
        }
        if (++(*given)[c] > caps->neurons_per_core)
            return nesim_fail(err, NESIM_EINVAL, "%s: neuron %llu is placed on core %llu, which already holds %llu neurons (the chip's limit)",
                              G->name, (unsigned long long)i, (unsigned long long)c,
                              (unsigned long long)caps->neurons_per_core);
        lo = c < lo ? c : lo;
        hi = c > hi ? c : hi;
    }
    double bits = caps->weight_bits_max > 0 && G->weight_bits > caps->weight_bits_max ? caps->weight_bits_max : G->weight_bits;
    P->compartments = 1;
    P->weight_bits = bits;
    P->per_core = 1;
    if (!G->neurons)
        return NESIM_OK;
    P->first_core = lo;
    P->n_cores = hi - lo + 1;
    if (!(P->core = malloc(G->neurons * sizeof *P->core)))
        return nesim_fail(err, NESIM_ENOMEM, "mapping: out of memory");
    memcpy(P->core, G->cores, G->neurons * sizeof *P->core);
    /* cores this group is the first to use; its fullest core's synapses */
    uint32_t *cnt = calloc(P->n_cores, sizeof *cnt);
    if (!cnt)
        return nesim_fail(err, NESIM_ENOMEM, "mapping: out of memory");
    uint64_t full = 0;
    for (uint64_t i = 0; i < G->neurons; i++) {
        uint32_t k = ++cnt[G->cores[i] - lo];
        full = k > full ? k : full;
    }
    for (uint64_t d = 0; d < P->n_cores; d++)
        P->owned_cores += cnt[d] && (*given)[lo + d] == cnt[d];
    free(cnt);
    double bytes = (double)full * (double)G->fan_in * bits / 8.0;
    if (bytes > caps->synapse_bytes_per_core)
        return nesim_fail(err, NESIM_EINVAL, "%s: %llu neurons on one core need %.0f bytes of synapses; a core holds %.0f",
                          G->name, (unsigned long long)full, bytes, caps->synapse_bytes_per_core);
    *syn_max = bytes;
    return NESIM_OK;
}

int nesim_map_place_groups(const nesim_chip_caps *caps, const nesim_map_group *g, size_t n_groups, nesim_mapping *m,
                    nesim_error *err)
{
    memset(m, 0, sizeof *m);
    uint64_t cpr = caps->cores_per_router ? caps->cores_per_router : 1;
    if (!caps->neurons_per_core || !caps->cores_per_chip || !caps->mesh_x || !caps->mesh_y ||
        caps->mesh_x * caps->mesh_y * cpr < caps->cores_per_chip || !(caps->synapse_bytes_per_core > 0))
        return nesim_fail(err, NESIM_EINVAL, "chip: capacities must be positive and the mesh must hold its cores");
    m->n_groups = n_groups;
    m->place = calloc(n_groups ? n_groups : 1, sizeof *m->place);
    m->syn_bytes_core_max = calloc(n_groups ? n_groups : 1, sizeof *m->syn_bytes_core_max);
    if (!m->place || !m->syn_bytes_core_max) {
        nesim_map_free(m);
        return nesim_fail(err, NESIM_ENOMEM, "mapping: out of memory");
    }
    uint64_t core = 0;
    /* the last core opened and what it holds (packing) */
    int have_open = 0;
    uint64_t open_core = 0, open_slots = 0;
    double open_bytes = 0;
    for (size_t i = 1; i < n_groups; i++)
        if (!g[i].cores != !g[0].cores) {
            const char *with = g[i].cores ? g[i].name : g[0].name, *without = g[i].cores ? g[0].name : g[i].name;
            nesim_map_free(m);
            return nesim_fail(err, NESIM_EINVAL, "%s has its cores given but %s does not: give every group's placement or none",
                              with, without);
        }
    uint32_t *given = NULL; /* neuron slots taken on each core by given placements */
    uint64_t given_cap = 0;
    for (size_t i = 0; i < n_groups; i++) {
        const nesim_map_group *G = &g[i];
        if (G->cores) {
            int rc = place_given(caps, G, &m->place[i], &m->syn_bytes_core_max[i], &given, &given_cap, err);
            if (rc) {
                free(given);
                nesim_map_free(m);
                return rc;
            }
            if (G->neurons && m->place[i].first_core + m->place[i].n_cores > core)
                core = m->place[i].first_core + m->place[i].n_cores;
            continue;
        }
        uint64_t comp = 1, fan = G->fan_in;
        if (caps->fan_in_max && G->fan_in > caps->fan_in_max) {
            if (!caps->split_fan_in) {
                free(given);
                nesim_map_free(m);
                return nesim_fail(err, NESIM_EINVAL, "%s: fan-in of %llu synapses per neuron exceeds the chip's limit of %llu",
                                  G->name, (unsigned long long)G->fan_in, (unsigned long long)caps->fan_in_max);
            }
            comp = (G->fan_in + caps->fan_in_max - 1) / caps->fan_in_max;
            fan = (G->fan_in + comp - 1) / comp;
        }
        double bits = caps->weight_bits_max > 0 && G->weight_bits > caps->weight_bits_max ? caps->weight_bits_max : G->weight_bits;
        double per_neuron = (double)fan * bits / 8.0; /* per compartment */
        uint64_t by_mem = per_neuron > 0 ? (uint64_t)floor(caps->synapse_bytes_per_core / per_neuron) : UINT64_MAX;
        if (by_mem == 0) {
            free(given);
            nesim_map_free(m);
            return nesim_fail(err, NESIM_EINVAL,
                              "%s: one neuron's %llu synapses at %g bits need %.0f bytes; a core holds %.0f bytes of synapses",
                              G->name, (unsigned long long)fan, bits, per_neuron, caps->synapse_bytes_per_core);
        }
        /* compartments of one neuron stay together on a core */
        uint64_t slots = caps->neurons_per_core / comp;
        if (slots == 0) {
            free(given);
            nesim_map_free(m);
            return nesim_fail(err, NESIM_EINVAL, "%s: a neuron needs %llu compartments; a core has %llu",
                              G->name, (unsigned long long)comp, (unsigned long long)caps->neurons_per_core);
        }
        uint64_t per = slots < by_mem / comp ? slots : by_mem / comp;
        if (per == 0) {
            free(given);
            nesim_map_free(m);
            return nesim_fail(err, NESIM_EINVAL, "%s: one neuron's %llu compartments do not fit a core's synapse memory",
                              G->name, (unsigned long long)comp);
        }
        m->place[i].compartments = comp;
        m->place[i].weight_bits = bits;
        per_neuron *= (double)comp;
        m->place[i].per_core = per;
        uint64_t full = G->neurons < per ? G->neurons : per;
        m->syn_bytes_core_max[i] = (double)full * per_neuron;
        if (caps->pack && have_open && G->neurons && G->neurons <= per &&
            open_slots + G->neurons * comp <= caps->neurons_per_core &&
            open_bytes + (double)G->neurons * per_neuron <= caps->synapse_bytes_per_core) {
            /* the whole group fits in what the last core has left: it shares it */
            m->place[i].first_core = open_core;
            m->place[i].n_cores = 1;
            m->place[i].owned_cores = 0;
            open_slots += G->neurons * comp;
            open_bytes += (double)G->neurons * per_neuron;
            continue;
        }
        m->place[i].first_core = core;
        m->place[i].n_cores = G->neurons ? (G->neurons + per - 1) / per : 0;
        m->place[i].owned_cores = m->place[i].n_cores;
        core += m->place[i].n_cores;
        if (m->place[i].n_cores) {
            uint64_t last = G->neurons - (m->place[i].n_cores - 1) * per;
            have_open = 1;
            open_core = core - 1;
            open_slots = last * comp;
            open_bytes = (double)last * per_neuron;
        }
    }
    free(given);
    m->cores = core;
    for (size_t i = 0; i < n_groups; i++)
        m->cores_used += m->place[i].owned_cores;
    m->chips = (core + caps->cores_per_chip - 1) / caps->cores_per_chip;
    if (caps->chip_mesh_x && caps->chip_mesh_y && m->chips > caps->chip_mesh_x * caps->chip_mesh_y) {
        unsigned long long need = m->chips;
        nesim_map_free(m);
        return nesim_fail(err, NESIM_EINVAL,
                          "the model needs %llu chips; the largest system (chip_mesh) holds %llu x %llu = %llu",
                          need, (unsigned long long)caps->chip_mesh_x, (unsigned long long)caps->chip_mesh_y,
                          (unsigned long long)(caps->chip_mesh_x * caps->chip_mesh_y));
    }
    return NESIM_OK;
}

int nesim_map_route_edges(const nesim_chip_caps *caps, const nesim_map_group *g, const nesim_map_edge *e, size_t n_edges,
                    nesim_mapping *m, nesim_error *err)
{
    m->n_edges = n_edges;
    m->dest_cores = calloc(n_edges ? n_edges : 1, sizeof *m->dest_cores);
    m->hops_ew = calloc(n_edges ? n_edges : 1, sizeof *m->hops_ew);
    m->hops_ns = calloc(n_edges ? n_edges : 1, sizeof *m->hops_ns);
    m->hops_chip = calloc(n_edges ? n_edges : 1, sizeof *m->hops_chip);
    if (!m->dest_cores || !m->hops_ew || !m->hops_ns || !m->hops_chip) {
        nesim_map_free(m);
        return nesim_fail(err, NESIM_ENOMEM, "mapping: out of memory");
    }
    uint32_t *tg = NULL;
    uint8_t *seen = NULL, *useen = NULL;
    size_t tg_cap = 0;
    routes rt = {0};
    int rc = NESIM_OK;
    for (size_t j = 0; j < n_edges; j++) {
        const nesim_map_edge *E = &e[j];
        const nesim_map_place *pre = &m->place[E->pre], *post = &m->place[E->post];
        uint64_t npre = g[E->pre].neurons, npost = g[E->post].neurons;
        m->dest_cores[j] = calloc(npre ? npre : 1, sizeof(uint32_t));
        m->hops_ew[j] = calloc(npre ? npre : 1, sizeof(uint64_t));
        m->hops_ns[j] = calloc(npre ? npre : 1, sizeof(uint64_t));
        m->hops_chip[j] = calloc(npre ? npre : 1, sizeof(uint64_t));
        seen = realloc(seen, post->n_cores ? post->n_cores : 1);
        if (!E->dense && !E->reach && tg_cap < npost) {
            tg_cap = npost;
            tg = realloc(tg, tg_cap * sizeof *tg);
        }
        if (!m->dest_cores[j] || !m->hops_ew[j] || !m->hops_ns[j] || !m->hops_chip[j] || !seen ||
            (!E->dense && !E->reach && !tg))
            goto oom;
        /* dense edges: the route of a spike depends only on its source core */
        uint64_t last_core = UINT64_MAX, ew = 0, ns = 0, nd = 0, xc = 0;
        useen = realloc(useen, post->n_cores ? post->n_cores : 1);
        if (!useen)
            goto oom;
        for (uint64_t i = 0; i < npre; i++) {
            uint64_t sc = nesim_map_core(pre, i), sx, sy, scx, scy;
            nesim_map_core_xy(caps, sc, &sx, &sy);
            nesim_map_chip_xy(caps, sc, &scx, &scy);
            if (E->dense && sc == last_core) {
                m->dest_cores[j][i] = (uint32_t)nd, m->hops_ew[j][i] = ew, m->hops_ns[j][i] = ns;
                m->hops_chip[j][i] = xc;
                continue;
            }
            memset(seen, 0, post->n_cores);
            if (E->dense) {
                memset(seen, 1, post->n_cores);
            } else if (E->reach) {
                const uint64_t *b = E->reach + i * nesim_map_reach_words(post);
                for (uint64_t d = 0; d < post->n_cores; d++)
                    seen[d] = (uint8_t)(b[d / 64] >> (d % 64) & 1);
            } else {
                size_t f = E->targets(E->user, i, tg, tg_cap);
                for (size_t k = 0; k < f && k < tg_cap; k++)
                    seen[nesim_map_core(post, tg[k]) - post->first_core] = 1;
            }
            ew = ns = nd = xc = 0;
            for (uint64_t d = 0; d < post->n_cores; d++) {
                if (!seen[d])
                    continue;
                uint64_t dx, dy, dcx, dcy;
                nesim_map_core_xy(caps, post->first_core + d, &dx, &dy);
                nesim_map_chip_xy(caps, post->first_core + d, &dcx, &dcy);
                uint64_t hx = udiff(sx, dx), hy = udiff(sy, dy);
                ew += hx, ns += hy, nd++;
                xc += udiff(scx, dcx) + udiff(scy, dcy);
                if (hx + hy > m->max_hops)
                    m->max_hops = hx + hy;
            }
            if (caps->fan_out_max && nd > caps->fan_out_max) {
                rc = nesim_fail(err, NESIM_EINVAL,
                                "%s -> %s: a neuron must reach %llu cores; the chip allows %llu per neuron",
                                g[E->pre].name, g[E->post].name, (unsigned long long)nd,
                                (unsigned long long)caps->fan_out_max);
                goto done;
            }
            /* routing table of a source core: the union of its neurons' destinations */
            if (sc != last_core) {
                if (last_core != UINT64_MAX && add_routes(&rt, last_core, post, useen))
                    goto oom;
                memset(useen, 0, post->n_cores);
            }
            for (uint64_t d = 0; d < post->n_cores; d++)
                useen[d] |= seen[d];
            last_core = sc;
            m->dest_cores[j][i] = (uint32_t)nd, m->hops_ew[j][i] = ew, m->hops_ns[j][i] = ns;
            m->hops_chip[j][i] = xc;
        }
        if (last_core != UINT64_MAX && add_routes(&rt, last_core, post, useen))
            goto oom;
    }
    /* entries: distinct (source core, destination core) pairs over all edges
       (edges out of cores that groups share meet in one table) */
    if (rt.n > 1)
        qsort(rt.v, rt.n, sizeof *rt.v, cmp_route);
    for (size_t k = 0; k < rt.n; k++)
        m->routes += k == 0 || rt.v[k].src != rt.v[k - 1].src || rt.v[k].dst != rt.v[k - 1].dst;
done:
    free(rt.v);
    free(tg);
    free(seen);
    free(useen);
    if (rc)
        nesim_map_free(m);
    return rc;
oom:
    rc = nesim_fail(err, NESIM_ENOMEM, "mapping: out of memory");
    goto done;
}

int nesim_map(const nesim_chip_caps *caps, const nesim_map_group *g, size_t n_groups, const nesim_map_edge *e,
              size_t n_edges, nesim_mapping *m, nesim_error *err)
{
    int rc = nesim_map_place_groups(caps, g, n_groups, m, err);
    return rc ? rc : nesim_map_route_edges(caps, g, e, n_edges, m, err);
}
