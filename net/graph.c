/* graph.c — populations, projections and their connectivity (see graph.h). */
#include "net/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/par.h"
#include "base/rng.h"

/* Projection j's connectivity draws from stream NESIM_STREAM(NESIM_STREAM_CONN,
 * j) (base/rng.h); the engine's (initial states, sources) are in domains of
 * their own, numbered by population in sim/network.c. */

static const char *const rule_names[] = {"all_to_all", "one_to_one", "fixed_prob", "explicit"};

const char *nesim_conn_rule_name(enum nesim_conn_kind k)
{
    return (unsigned)k < 4 ? rule_names[k] : "?";
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
    g->part = (nesim_graph_part){0, 1, 1};
    return g;
}

static void pop_clear(nesim_graph_pop *p)
{
    for (uint32_t c = 0; p->cdyn && c < p->n_cls; c++)
        nesim_dyn_free(&p->cdyn[c]); /* frees only the tables a class owns */
    free(p->cdyn);
    free(p->cls);
    if (p->v_init.kind == NESIM_INIT_VALUES)
        free((double *)p->v_init.values);
    p->v_init.values = NULL;
    if (!p->dyn.tbl_shared)
        nesim_dyn_free(&p->dyn);
    p->cdyn = NULL;
    p->cls = NULL;
    free(p->cores);
    p->cores = NULL;
}

/* The population's constants, one set per class of equal per-neuron values. */
static int pop_classes(nesim_graph *g, nesim_graph_pop *p, const nesim_pop_spec *spec, const nesim_model *m,
                       const nesim_rule *rule, nesim_error *err)
{
    size_t na = spec->n_arrays, ns = spec->n_params;
    for (size_t k = 0; k < na; k++) {
        if (!spec->arrays[k].name || !spec->arrays[k].v)
            return nesim_fail(err, NESIM_EINVAL, "per-neuron parameter %zu: no name or values", k);
        for (size_t i = 0; i < ns; i++)
            if (spec->params[i].name && strcmp(spec->params[i].name, spec->arrays[k].name) == 0)
                return nesim_fail(err, NESIM_EINVAL, "parameter %s given both per neuron and for all",
                                  spec->arrays[k].name);
        for (uint32_t j = 0; j < spec->n; j++)
            if (!isfinite(spec->arrays[k].v[j]))
                return nesim_fail(err, NESIM_EINVAL, "%s[%u] must be finite (got %g)", spec->arrays[k].name, j,
                                  spec->arrays[k].v[j]);
    }
    uint32_t *rep = NULL;
    int rc = nesim_param_classes(spec->n, spec->arrays, na, &p->cls, &rep, &p->n_cls, err);
    nesim_param *all = rc ? NULL : malloc((ns + na) * sizeof *all);
    if (!rc && !(p->cdyn = calloc(p->n_cls, sizeof *p->cdyn)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory for %u parameter classes", p->n_cls);
    if (!rc && !all)
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    const nesim_dyn *owner[NESIM_GRAPH_TABLE_SETS];
    int n_owner = 0;
    for (uint32_t c = 0; !rc && c < p->n_cls; c++) {
        memcpy(all, spec->params, ns * sizeof *all);
        for (size_t k = 0; k < na; k++)
            all[ns + k] = (nesim_param){spec->arrays[k].name, spec->arrays[k].v[rep[c]]};
        nesim_dyn *d = &p->cdyn[c];
        if ((rc = nesim_dyn_prepare(d, m, rule, all, ns + na, g->tick_s, err))) {
            nesim_context(err, "neuron %u: ", rep[c]);
            break;
        }
        d->varied = 1;
        int o = 0;
        while (o < n_owner && !nesim_dyn_same_rates(owner[o], d))
            o++;
        if (o < n_owner)
            nesim_dyn_share_tables(d, owner[o]);
        else if (n_owner < NESIM_GRAPH_TABLE_SETS && !(rc = nesim_dyn_tables(d, err)))
            owner[n_owner++] = d;
    }
    free(all);
    free(rep);
    if (!rc) {
        p->dyn = p->cdyn[0]; /* a view of class 0 */
        p->dyn.tbl_shared = 1;
    }
    return rc;
}

void nesim_graph_free(nesim_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_pops; i++) {
        free(g->pops[i].name);
        free(g->pops[i].out);
        pop_clear(&g->pops[i]);
    }
    for (int j = 0; j < g->n_projs; j++) {
        free(g->projs[j].row);
        free(g->projs[j].col);
        free(g->projs[j].w);
        free(g->projs[j].fan);
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
    if (in->kind == NESIM_INIT_VALUES) {
        if (!in->values)
            return nesim_fail(err, NESIM_EINVAL, "population '%.64s': v_init values missing", name);
        for (uint32_t j = 0; j < spec->n; j++)
            if (!isfinite(in->values[j]))
                return nesim_fail(err, NESIM_EINVAL, "population '%.64s': v_init[%u] must be finite", name, j);
    }
    if (!isfinite(in->a) || !isfinite(in->b) || (in->kind == NESIM_INIT_UNIFORM && !(in->b >= in->a)) ||
        (in->kind == NESIM_INIT_NORMAL && !(in->b >= 0)) || in->kind > NESIM_INIT_VALUES)
        return nesim_fail(err, NESIM_EINVAL, "population '%.64s': bad initial distribution of v", name);
    nesim_graph_pop *np = realloc(g->pops, (size_t)(g->n_pops + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    g->pops = np;
    nesim_graph_pop *p = &g->pops[g->n_pops];
    memset(p, 0, sizeof *p);
    int rc = spec->n_arrays ? pop_classes(g, p, spec, m, rule, err)
                            : nesim_dyn_init(&p->dyn, m, rule, spec->params, spec->n_params, g->tick_s, err);
    if (rc) {
        pop_clear(p);
        return nesim_context(err, "population '%.64s' (%s): ", name, spec->model);
    }
    if (!(p->name = strdup(name))) {
        pop_clear(p);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    p->n = spec->n;
    p->first = g->n_total;
    p->v_init = *in;
    p->v_init.values = NULL;
    if (in->kind == NESIM_INIT_VALUES) { /* the graph keeps its own copy */
        double *v = malloc((size_t)spec->n * sizeof *v);
        if (!v) {
            pop_clear(p);
            free(p->name);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        }
        memcpy(v, in->values, (size_t)spec->n * sizeof *v);
        p->v_init.values = v;
    }
    if (spec->cores) {
        if (!(p->cores = malloc((size_t)spec->n * sizeof *p->cores))) {
            pop_clear(p);
            free(p->name);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        }
        memcpy(p->cores, spec->cores, (size_t)spec->n * sizeof *p->cores);
    }
    g->n_total += spec->n;
    if (id)
        *id = g->n_pops;
    g->n_pops++;
    return NESIM_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

uint64_t nesim_graph_lower_bound(const uint32_t *col, uint64_t a, uint64_t b, uint32_t v)
{
    while (a < b) {
        uint64_t m = a + (b - a) / 2;
        if (col[m] < v)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* The targets of g's part in a population of n (all when g is whole). */
static void part_range(const nesim_graph *g, uint32_t n, uint32_t *lo, uint32_t *hi)
{
    size_t a = 0, b = n, x;
    if (g->part.total > 1) {
        nesim_par_split(n, 1, g->part.first, g->part.total, &a, &x);
        nesim_par_split(n, 1, g->part.first + g->part.count - 1, g->part.total, &x, &b);
    }
    *lo = (uint32_t)a, *hi = (uint32_t)b;
}

/* Fixed probability, keyed by target (NEST builds a rank's incoming synapses
 * the same way): target j's sources are the successes of independent
 * Bernoulli(p) trials over the pre population, drawn as geometric gaps from
 * j's own counter-based sequence (seed, projection, j) — the same
 * distribution as testing every pair, at the cost of the synapses drawn, and
 * any set of targets drawn alone gives the same synapses. They are drawn
 * target by target into columns, then turned into rows (targets come out
 * ascending). */
static int draw_fixed_prob(nesim_graph *g, nesim_graph_proj *pj, const nesim_graph_pop *pre,
                           const nesim_graph_pop *post, nesim_error *err)
{
    const uint32_t n_pre = pre->n;
    const double p = pj->s.p, lq = log1p(-p);
    /* the part's targets: the blocks of members first .. first + count - 1 */
    uint32_t lo, hi;
    part_range(g, post->n, &lo, &hi);
    pj->part_lo = lo, pj->part_hi = hi;
    const int self = pj->s.pre == pj->s.post && pj->s.no_autapses;
    const uint64_t stream = NESIM_STREAM(NESIM_STREAM_CONN, (uint64_t)g->n_projs);
    size_t cap = 1024;
    uint64_t n = 0;
    uint32_t *src = malloc(cap * sizeof *src);
    uint64_t *cs = malloc((hi - lo + 1) * sizeof *cs); /* column starts in src */
    pj->row = calloc((size_t)n_pre + 1, sizeof *pj->row);
    if (!src || !cs || !pj->row)
        goto oom;
    for (uint32_t j = (uint32_t)lo; j < hi; j++) {
        cs[j - lo] = n;
        if (!(p > 0))
            continue;
        uint64_t st = nesim_key(g->seed, stream, j);
        int64_t i = -1;
        for (;;) {
            double gap = nesim_key_geometric(&st, p, lq);
            if (!(gap < (double)n_pre - (double)i))
                break;
            i += (int64_t)gap;
            if (self && (uint32_t)i == j)
                continue;
            if (n == cap) {
                cap *= 2;
                uint32_t *c = realloc(src, cap * sizeof *c);
                if (!c)
                    goto oom;
                src = c;
            }
            src[n++] = (uint32_t)i;
            pj->row[i + 1]++;
        }
    }
    cs[hi - lo] = n;
    if (g->part.total > 1) { /* a part: each source's fan-out here, summed over the parts later */
        if (!(pj->fan = malloc(((size_t)n_pre ? n_pre : 1) * sizeof *pj->fan)))
            goto oom;
        for (uint32_t i = 0; i < n_pre; i++)
            pj->fan[i] = (uint32_t)pj->row[i + 1];
    }
    for (uint32_t i = 0; i < n_pre; i++)
        pj->row[i + 1] += pj->row[i];
    /* columns to rows: walking targets in order fills each row ascending */
    pj->col = malloc((n ? n : 1) * sizeof *pj->col);
    uint64_t *next = malloc(((size_t)n_pre + 1) * sizeof *next);
    if (!pj->col || !next) {
        free(next);
        goto oom;
    }
    memcpy(next, pj->row, ((size_t)n_pre + 1) * sizeof *next);
    for (uint32_t j = (uint32_t)lo; j < hi; j++)
        for (uint64_t k = cs[j - lo]; k < cs[j - lo + 1]; k++)
            pj->col[next[src[k]]++] = j;
    free(next);
    free(src);
    free(cs);
    pj->n_syn = pj->n_here = n;
    return NESIM_OK;
oom:
    free(src);
    free(cs);
    return nesim_fail(err, NESIM_ENOMEM, "out of memory drawing connections");
}

/* Appends projection pj (its arrays now owned by the graph) to g and to
 * the pre population's out list. */
static int append_proj(nesim_graph *g, const nesim_graph_proj *pj, int *id, nesim_error *err)
{
    nesim_graph_proj *np = realloc(g->projs, (size_t)(g->n_projs + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    g->projs = np;
    nesim_graph_pop *pre = &g->pops[pj->s.pre];
    int *o = realloc(pre->out, (size_t)(pre->n_out + 1) * sizeof *o);
    if (!o)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    pre->out = o;
    pre->out[pre->n_out++] = g->n_projs;
    g->projs[g->n_projs] = *pj;
    g->projs[g->n_projs].s.pre_idx = g->projs[g->n_projs].s.post_idx = NULL;
    g->projs[g->n_projs].s.w = NULL;
    g->projs[g->n_projs].s.delays = NULL;
    if (id)
        *id = g->n_projs;
    g->n_projs++;
    return NESIM_OK;
}

/* Sorts row k's targets ascending (with their weights) and merges repeats. */
static uint64_t sort_row(uint32_t *col, double *w, uint64_t n)
{
    int sorted = 1;
    for (uint64_t k = 1; k < n && sorted; k++)
        sorted = col[k - 1] < col[k];
    if (!sorted) /* insertion sort: rows arrive mostly ordered */
        for (uint64_t k = 1; k < n; k++) {
            uint32_t c = col[k];
            double x = w[k];
            uint64_t j = k;
            for (; j > 0 && col[j - 1] > c; j--)
                col[j] = col[j - 1], w[j] = w[j - 1];
            col[j] = c, w[j] = x;
        }
    uint64_t m = 0;
    for (uint64_t k = 0; k < n; k++) {
        if (m && col[m - 1] == col[k])
            w[m - 1] += w[k];
        else
            col[m] = col[k], w[m] = w[k], m++;
    }
    return m;
}

/* An explicit projection in a part graph keeps only its part's targets (its
 * rows are built whole: its lists are read whole anyway, and its counts and
 * fan-outs are then whole without the ranks' sum). */
static int cut_to_part(const nesim_graph *g, nesim_graph_proj *pj, uint32_t n_pre, uint32_t n_post,
                       nesim_error *err)
{
    uint32_t lo, hi;
    part_range(g, n_post, &lo, &hi);
    pj->part_lo = lo, pj->part_hi = hi;
    if (g->part.total <= 1)
        return NESIM_OK;
    if (!(pj->fan = malloc(((size_t)n_pre ? n_pre : 1) * sizeof *pj->fan)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    uint64_t out = 0;
    for (uint32_t i = 0; i < n_pre; i++) {
        uint64_t r0 = pj->row[i], r1 = pj->row[i + 1]; /* row[i + 1] is read before it is moved */
        uint64_t s0 = nesim_graph_lower_bound(pj->col, r0, r1, lo), s1 = nesim_graph_lower_bound(pj->col, s0, r1, hi);
        pj->fan[i] = (uint32_t)(r1 - r0);
        pj->row[i] = out;
        memmove(pj->col + out, pj->col + s0, (s1 - s0) * sizeof *pj->col);
        memmove(pj->w + out, pj->w + s0, (s1 - s0) * sizeof *pj->w);
        out += s1 - s0;
    }
    pj->row[n_pre] = out;
    pj->n_here = out;
    uint32_t *c = realloc(pj->col, (out ? out : 1) * sizeof *c);
    if (c)
        pj->col = c;
    double *w = realloc(pj->w, (out ? out : 1) * sizeof *w);
    if (w)
        pj->w = w;
    return NESIM_OK;
}

static int connect_explicit(nesim_graph *g, const nesim_proj_spec *s, int *id, nesim_error *err)
{
    const nesim_graph_pop *pre = &g->pops[s->pre], *post = &g->pops[s->post];
    const char *a = pre->name, *b = post->name;
    const uint64_t n = s->n_syn;
    if (n && (!s->pre_idx || !s->post_idx || !s->w))
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: explicit synapses need pre, post and weight lists",
                          a, b);
    int64_t dmin = s->delay, dmax = s->delay;
    for (uint64_t k = 0; k < n; k++) {
        int64_t d = s->delays ? s->delays[k] : s->delay;
        if (s->pre_idx[k] >= pre->n || s->post_idx[k] >= post->n)
            return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: synapse %llu: %u -> %u is outside %u x %u neurons",
                              a, b, (unsigned long long)k, s->pre_idx[k], s->post_idx[k], pre->n, post->n);
        if (!isfinite(s->w[k]))
            return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: synapse %llu: weight must be finite", a, b,
                              (unsigned long long)k);
        if (d < 1 || d > INT32_MAX)
            return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: synapse %llu: delay must be 1 .. 2^31 - 1 ticks "
                              "(got %lld)", a, b, (unsigned long long)k, (long long)d);
        if (k == 0 || d < dmin)
            dmin = d;
        if (k == 0 || d > dmax)
            dmax = d;
    }
    /* the distinct delays, in order: counting when their range is small, sorting otherwise */
    int64_t *dl = NULL;
    size_t nd = 0;
    uint64_t range = (uint64_t)(dmax - dmin) + 1;
    if (!s->delays || n == 0) {
        if (!(dl = malloc(sizeof *dl)))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        dl[nd++] = s->delay;
    } else if (range <= 4 * n + 65536) {
        uint8_t *seen = calloc(range, 1);
        if (!seen)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        for (uint64_t k = 0; k < n; k++)
            seen[s->delays[k] - dmin] = 1;
        for (uint64_t r = 0; r < range; r++)
            nd += seen[r];
        dl = malloc(nd * sizeof *dl);
        for (uint64_t r = 0, i = 0; dl && r < range; r++)
            if (seen[r])
                dl[i++] = dmin + (int64_t)r;
        free(seen);
        if (!dl)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    } else {
        if (!(dl = malloc(n * sizeof *dl)))
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        memcpy(dl, s->delays, n * sizeof *dl);
        qsort(dl, n, sizeof *dl, cmp_i64);
        for (uint64_t k = 0; k < n; k++)
            if (!nd || dl[nd - 1] != dl[k])
                dl[nd++] = dl[k];
    }
    /* each synapse's delay group */
    uint32_t *grp = nd > 1 ? malloc(n * sizeof *grp) : NULL;
    uint64_t *cnt = calloc((size_t)pre->n + 1, sizeof *cnt);
    int rc = (nd > 1 && !grp) || !cnt ? nesim_fail(err, NESIM_ENOMEM, "out of memory") : NESIM_OK;
    for (uint64_t k = 0; !rc && grp && k < n; k++) {
        size_t lo = 0, hi = nd; /* binary search: dl is ascending */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (dl[mid] <= s->delays[k])
                lo = mid;
            else
                hi = mid;
        }
        grp[k] = (uint32_t)lo;
    }
    /* the synapses grouped by delay (counting sort, stable): group d is ord[gs[d] .. gs[d + 1]) */
    uint64_t *gs = calloc(nd + 1, sizeof *gs), *ord = grp ? malloc(n * sizeof *ord) : NULL;
    if (!rc && (!gs || (grp && !ord)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    if (!rc) {
        for (uint64_t k = 0; k < n; k++)
            gs[(grp ? grp[k] : 0) + 1]++;
        for (size_t d = 0; d < nd; d++)
            gs[d + 1] += gs[d];
        for (uint64_t k = 0; grp && k < n; k++)
            ord[gs[grp[k]]++] = k;
        for (size_t d = nd; grp && d > 0; d--) /* the fills moved each start to the next group's */
            gs[d] = gs[d - 1];
        gs[0] = 0;
    }
    int first = -1;
    for (size_t d = 0; !rc && d < nd; d++) {
        nesim_graph_proj pj;
        memset(&pj, 0, sizeof pj);
        pj.s = *s;
        pj.s.kind = NESIM_EXPLICIT;
        pj.s.delay = dl[d];
        memset(cnt, 0, ((size_t)pre->n + 1) * sizeof *cnt);
        const uint64_t m = gs[d + 1] - gs[d];
        for (uint64_t q = gs[d]; q < gs[d + 1]; q++)
            cnt[s->pre_idx[ord ? ord[q] : q] + 1]++;
        pj.row = malloc(((size_t)pre->n + 1) * sizeof *pj.row);
        pj.col = malloc((m ? m : 1) * sizeof *pj.col);
        pj.w = malloc((m ? m : 1) * sizeof *pj.w);
        if (!pj.row || !pj.col || !pj.w) {
            free(pj.row), free(pj.col), free(pj.w);
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory for %llu synapses", (unsigned long long)m);
            break;
        }
        /* counting sort by pre neuron (stable), then each row by target */
        for (uint32_t i = 0; i < pre->n; i++)
            cnt[i + 1] += cnt[i];
        for (uint64_t q = gs[d]; q < gs[d + 1]; q++) {
            const uint64_t k = ord ? ord[q] : q, at = cnt[s->pre_idx[k]]++;
            pj.col[at] = s->post_idx[k];
            pj.w[at] = s->w[k];
        }
        /* cnt[i] is now the end of row i: compact each row in place */
        uint64_t out = 0, start = 0;
        for (uint32_t i = 0; i < pre->n; i++) {
            uint64_t end = cnt[i], len = sort_row(pj.col + start, pj.w + start, end - start);
            pj.row[i] = out;
            memmove(pj.col + out, pj.col + start, len * sizeof *pj.col);
            memmove(pj.w + out, pj.w + start, len * sizeof *pj.w);
            out += len;
            start = end;
        }
        pj.row[pre->n] = out;
        pj.n_syn = pj.n_here = out;
        pj.w_min = pj.w_max = 0;
        for (uint64_t k = 0; k < out; k++) {
            if (k == 0 || pj.w[k] < pj.w_min)
                pj.w_min = pj.w[k];
            if (k == 0 || pj.w[k] > pj.w_max)
                pj.w_max = pj.w[k];
        }
        int jid = -1;
        if ((rc = cut_to_part(g, &pj, pre->n, post->n, err)) || (rc = append_proj(g, &pj, &jid, err))) {
            free(pj.row), free(pj.col), free(pj.w), free(pj.fan);
            break;
        }
        if (first < 0)
            first = jid;
    }
    free(grp);
    free(gs);
    free(ord);
    free(cnt);
    free(dl);
    if (!rc && id)
        *id = first;
    return rc;
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
    if (s->kind > NESIM_EXPLICIT)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: unknown connection rule", a, b);
    if ((unsigned)s->storage > NESIM_STORE_CONV)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: unknown synapse storage", a, b);
    if (post->dyn.model->is_source)
        return nesim_fail(err, NESIM_EINVAL, "projection %s -> %s: '%s' is a spike source and takes no input", a, b,
                          b);
    if (s->kind == NESIM_EXPLICIT)
        return connect_explicit(g, s, id, err);
    nesim_graph_proj *np = realloc(g->projs, (size_t)(g->n_projs + 1) * sizeof *np);
    if (!np)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    g->projs = np;
    nesim_graph_proj *pj = &g->projs[g->n_projs];
    memset(pj, 0, sizeof *pj);
    pj->s = *s;
    pj->w_min = pj->w_max = s->weight;
    if (s->kind == NESIM_FIXED_PROB) {
        int rc = draw_fixed_prob(g, pj, pre, post, err);
        if (rc) {
            free(pj->row);
            free(pj->col);
            free(pj->fan);
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
        free(pj->fan);
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
    if (pj->s.kind == NESIM_FIXED_PROB || pj->s.kind == NESIM_EXPLICIT) {
        n = (size_t)(pj->row[i + 1] - pj->row[i]);
        if (cap)
            memcpy(out, pj->col + pj->row[i], (n < cap ? n : cap) * sizeof *out);
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

uint64_t nesim_graph_fanout(const nesim_graph *g, int j, uint32_t i)
{
    const nesim_graph_proj *pj = &g->projs[j];
    if (pj->fan)
        return pj->fan[i];
    return nesim_graph_targets(g, j, i, NULL, 0);
}

int nesim_graph_set_part(nesim_graph *g, nesim_graph_part part, nesim_error *err)
{
    if (g->n_projs)
        return nesim_fail(err, NESIM_EINVAL, "graph part: set it before the first projection");
    if (part.total < 1 || part.count < 1 || part.first < 0 || part.first + part.count > part.total)
        return nesim_fail(err, NESIM_EINVAL, "graph part: members %d .. %d of %d do not exist", part.first,
                          part.first + part.count - 1, part.total);
    g->part = part.count == part.total ? (nesim_graph_part){0, 1, 1} : part;
    return NESIM_OK;
}

void nesim_graph_part_range(const nesim_graph *g, int p, uint32_t *lo, uint32_t *hi)
{
    part_range(g, g->pops[p].n, lo, hi);
}

int nesim_graph_is_part(const nesim_graph *g)
{
    return g->part.total > 1;
}

int nesim_graph_part_gather(nesim_graph *g, nesim_comm *comm, nesim_error *err)
{
    /* in slices: a fan-out is 4 bytes, the sum takes 8 */
    enum { SLICE = 1 << 16 };
    uint64_t *buf = NULL;
    int rc = NESIM_OK;
    for (int j = 0; !rc && j < g->n_projs; j++) {
        nesim_graph_proj *pj = &g->projs[j];
        if (pj->s.kind != NESIM_FIXED_PROB)
            continue;
        uint64_t n = pj->n_here;
        if ((rc = nesim_comm_sum_u64(comm, &n, 1, "the graph's synapse counts", err)))
            break;
        pj->n_syn = n;
        if (!pj->fan)
            continue; /* a whole graph (the same on every member) */
        if (!buf && !(buf = malloc(SLICE * sizeof *buf))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        uint32_t n_pre = g->pops[pj->s.pre].n;
        for (uint32_t a = 0; !rc && a < n_pre; a += SLICE) {
            uint32_t m = n_pre - a < SLICE ? n_pre - a : SLICE;
            for (uint32_t i = 0; i < m; i++)
                buf[i] = pj->fan[a + i];
            if (!(rc = nesim_comm_sum_u64(comm, buf, m, "the graph's fan-outs", err)))
                for (uint32_t i = 0; i < m; i++)
                    pj->fan[a + i] = (uint32_t)buf[i];
        }
    }
    free(buf);
    return rc;
}

uint64_t nesim_graph_synapses_here(const nesim_graph *g)
{
    uint64_t n = 0;
    for (int j = 0; j < g->n_projs; j++)
        n += g->projs[j].n_here;
    return n;
}

const char *nesim_storage_name(enum nesim_syn_storage s)
{
    switch (s) {
    case NESIM_STORE_AUTO: return "auto";
    case NESIM_STORE_DENSE: return "dense";
    case NESIM_STORE_SPARSE: return "sparse";
    case NESIM_STORE_CONV: return "conv";
    }
    return "?";
}

int nesim_storage_parse(const char *name)
{
    for (int s = NESIM_STORE_AUTO; s <= NESIM_STORE_CONV; s++)
        if (!strcmp(name, nesim_storage_name((enum nesim_syn_storage)s)))
            return s;
    return -1;
}

enum nesim_syn_storage nesim_storage_of(const nesim_proj_spec *ps)
{
    if (ps->storage != NESIM_STORE_AUTO)
        return ps->storage;
    return ps->kind == NESIM_ALL_TO_ALL || ps->kind == NESIM_ONE_TO_ONE ? NESIM_STORE_DENSE : NESIM_STORE_SPARSE;
}
