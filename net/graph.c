/* graph.c — populations, projections and their connectivity (see graph.h). */
#include "net/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* Stream numbers (base/rng.h): projection j draws from STREAM_PROJ + j. The
 * engine's streams (initial states, sources) are numbered in sim/network.c. */
enum { STREAM_PROJ = 2 };

static const char *const rule_names[] = {"all_to_all", "one_to_one", "fixed_prob"};

const char *nesim_conn_rule_name(enum nesim_conn_kind k)
{
    return (unsigned)k < 3 ? rule_names[k] : "?";
}

nesim_graph *nesim_graph_new(double tick_s, uint64_t seed, nesim_error *err)
{
    if (!(tick_s > 0) || !(tick_s < 1e6)) {
        nesim_fail(err, NESIM_EINVAL, "tick must be a positive number of seconds (got %g)", tick_s);
        return NULL;
    }
    nesim_graph *g = calloc(1, sizeof *g);
    if (!g) {
        nesim_fail(err, NESIM_ENOMEM, "out of memory");
        return NULL;
    }
    g->tick_s = tick_s;
    g->seed = seed;
    return g;
}

void nesim_graph_free(nesim_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_pops; i++) {
        free(g->pops[i].name);
        free(g->pops[i].out);
        nesim_dyn_free(&g->pops[i].dyn);
    }
    for (int j = 0; j < g->n_projs; j++) {
        free(g->projs[j].row);
        free(g->projs[j].col);
    }
    free(g->pops);
    free(g->projs);
    free(g);
}

int nesim_graph_add_population(nesim_graph *g, const nesim_pop_spec *spec, int *id, nesim_error *err)
{
    const char *name = spec->name ? spec->name : "";
    if (!name[0])
        return nesim_fail(err, NESIM_EINVAL, "population: no name");
    for (int i = 0; i < g->n_pops; i++)
        if (strcmp(g->pops[i].name, name) == 0)
            return nesim_fail(err, NESIM_EINVAL, "population '%.64s': name already used", name);
    const nesim_rule *rule = NULL, *alias_rule = NULL;
    const nesim_model *m = spec->model ? nesim_model_find(spec->model, &alias_rule) : NULL;
    if (!m)
        return nesim_fail(err, NESIM_EINVAL, "population '%.64s': unknown neuron model '%.40s'", name,
                          spec->model ? spec->model : "(none)");
    rule = alias_rule;
    if (spec->threshold) {
        const nesim_rule *r = nesim_rule_find(spec->threshold);
        if (!r)
            return nesim_fail(err, NESIM_EINVAL, "population '%.64s': unknown threshold rule '%.40s'", name,
                              spec->threshold);
        if (alias_rule && r != alias_rule)
            return nesim_fail(err, NESIM_EINVAL, "population '%.64s': model %s implies the %s threshold rule, not %s",
                              name, spec->model, alias_rule->name, r->name);
        rule = r;
    }
    if (spec->n == 0)
        return nesim_fail(err, NESIM_EINVAL, "population '%.64s': empty (n must be > 0)", name);
    if ((uint64_t)g->n_total + spec->n >= (1ull << 31))
        return nesim_fail(err, NESIM_EINVAL, "population '%.64s': more than 2^31 neurons in all", name);
    const nesim_init_dist *in = &spec->v_init;
    if (!isfinite(in->a) || !isfinite(in->b) || (in->kind == NESIM_INIT_UNIFORM && !(in->b >= in->a)) ||
        (in->kind == NESIM_INIT_NORMAL && !(in->b >= 0)) || in->kind > NESIM_INIT_NORMAL)
        return nesim_fail(err, NESIM_EINVAL, "population '%.64s': bad initial distribution of v", name);
    nesim_graph_pop *np = realloc(g->pops, (size_t)(g->n_pops + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    g->pops = np;
    nesim_graph_pop *p = &g->pops[g->n_pops];
    memset(p, 0, sizeof *p);
    int rc = nesim_dyn_init(&p->dyn, m, rule, spec->params, spec->n_params, g->tick_s, err);
    if (rc) {
        nesim_dyn_free(&p->dyn);
        return nesim_context(err, "population '%.64s' (%s): ", name, spec->model);
    }
    if (!(p->name = strdup(name))) {
        nesim_dyn_free(&p->dyn);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    p->n = spec->n;
    p->first = g->n_total;
    p->v_init = *in;
    g->n_total += spec->n;
    if (id)
        *id = g->n_pops;
    g->n_pops++;
    return NESIM_OK;
}

static int draw_fixed_prob(nesim_graph *g, nesim_graph_proj *pj, const nesim_graph_pop *pre,
                           const nesim_graph_pop *post, nesim_error *err)
{
    gsl_rng *r = nesim_rng_new(g->seed, STREAM_PROJ + (uint64_t)g->n_projs);
    size_t cap = 1024;
    pj->row = malloc((pre->n + 1) * sizeof *pj->row);
    pj->col = malloc(cap * sizeof *pj->col);
    if (!r || !pj->row || !pj->col)
        goto oom;
    double p = pj->s.p;
    uint64_t n = 0;
    int self = pj->s.pre == pj->s.post && pj->s.no_autapses;
    for (uint32_t i = 0; i < pre->n; i++) {
        pj->row[i] = n;
        if (p <= 0)
            continue;
        /* Geometric gaps between successes of independent Bernoulli(p) trials:
         * the same distribution as testing every pair, at the cost of the
         * synapses drawn. */
        int64_t j = -1;
        for (;;) {
            /* the gap in double: gsl_ran_geometric's unsigned int overflows
             * for p below ~1e-9 (and is 0 once 1 - p == 1) */
            double gap = p >= 1 ? 1 : floor(log(gsl_rng_uniform_pos(r)) / log1p(-p)) + 1;
            if (!(gap < (double)post->n - (double)j))
                break;
            j += (int64_t)gap;
            if (self && (uint32_t)j == i)
                continue;
            if (n == cap) {
                cap *= 2;
                uint32_t *c = realloc(pj->col, cap * sizeof *c);
                if (!c)
                    goto oom;
                pj->col = c;
            }
            pj->col[n++] = (uint32_t)j;
        }
    }
    pj->row[pre->n] = n;
    pj->n_syn = n;
    gsl_rng_free(r);
    return NESIM_OK;
oom:
    if (r)
        gsl_rng_free(r);
    return nesim_fail(err, NESIM_ENOMEM, "out of memory drawing connections");
}

int nesim_graph_connect(nesim_graph *g, const nesim_proj_spec *s, int *id, nesim_error *err)
{
    if (s->pre < 0 || s->pre >= g->n_pops || s->post < 0 || s->post >= g->n_pops)
        return nesim_fail(err, NESIM_EINVAL, "projection: no population %d",
                          s->pre < 0 || s->pre >= g->n_pops ? s->pre : s->post);
    nesim_graph_pop *pre = &g->pops[s->pre], *post = &g->pops[s->post];
    const char *a = pre->name, *b = post->name;
    if (s->delay < 1)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: delay must be >= 1 tick (got %lld)", a, b,
                          (long long)s->delay);
    if (!isfinite(s->weight))
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: weight must be finite", a, b);
    if (s->kind == NESIM_FIXED_PROB && !(s->p >= 0 && s->p <= 1))
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: p must be in [0, 1] (got %g)", a, b, s->p);
    if (s->kind == NESIM_ONE_TO_ONE && pre->n != post->n)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: one-to-one needs equal sizes (%u vs %u)", a, b,
                          pre->n, post->n);
    if (s->kind > NESIM_FIXED_PROB)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: unknown connection rule", a, b);
    if (post->dyn.model->is_source)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: '%s' is a spike source and takes no input", a, b,
                          b);
    nesim_graph_proj *np = realloc(g->projs, (size_t)(g->n_projs + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    g->projs = np;
    nesim_graph_proj *pj = &g->projs[g->n_projs];
    memset(pj, 0, sizeof *pj);
    pj->s = *s;
    if (s->kind == NESIM_FIXED_PROB) {
        int rc = draw_fixed_prob(g, pj, pre, post, err);
        if (rc) {
            free(pj->row);
            free(pj->col);
            return rc;
        }
    } else if (s->kind == NESIM_ALL_TO_ALL) {
        pj->n_syn = (uint64_t)pre->n * post->n;
        if (s->pre == s->post && s->no_autapses)
            pj->n_syn -= pre->n;
    } else {
        pj->n_syn = pre->n;
    }
    int *o = realloc(pre->out, (size_t)(pre->n_out + 1) * sizeof *o);
    if (!o) {
        free(pj->row);
        free(pj->col);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    pre->out = o;
    pre->out[pre->n_out++] = g->n_projs;
    if (id)
        *id = g->n_projs;
    g->n_projs++;
    return NESIM_OK;
}

int nesim_graph_population_of(const nesim_graph *g, uint32_t gid)
{
    int lo = 0, hi = g->n_pops - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const nesim_graph_pop *p = &g->pops[mid];
        if (gid < p->first)
            hi = mid - 1;
        else if (gid >= p->first + p->n)
            lo = mid + 1;
        else
            return mid;
    }
    return -1;
}

size_t nesim_graph_targets(const nesim_graph *g, int j, uint32_t i, uint32_t *out, size_t cap)
{
    const nesim_graph_proj *pj = &g->projs[j];
    const nesim_graph_pop *post = &g->pops[pj->s.post];
    size_t n = 0;
    if (pj->s.kind == NESIM_FIXED_PROB) {
        for (uint64_t k = pj->row[i]; k < pj->row[i + 1]; k++, n++)
            if (n < cap)
                out[n] = pj->col[k];
    } else if (pj->s.kind == NESIM_ONE_TO_ONE) {
        if (cap)
            out[0] = i;
        n = 1;
    } else {
        int skip = pj->s.pre == pj->s.post && pj->s.no_autapses;
        for (uint32_t k = 0; k < post->n; k++)
            if (!(skip && k == i)) {
                if (n < cap)
                    out[n] = k;
                n++;
            }
    }
    return n;
}
