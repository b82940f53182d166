/* lmtime.c — a language model's spiked projections on a chip, timed token
 * by token (eval/lmtime.h). */
#include "eval/lmtime.h"

#include <stdlib.h>
#include <string.h>

#include "eval/cost.h"
#include "net/map.h"

struct nesim_lm_timer {
    const nesim_lm_graph *g;
    size_t n_proj;
    int *coder_of;        /* per projection: its coder group, or -1 (graded) */
    int ng, ne;
    uint32_t *size, *first;
    int *edge_proj;       /* per edge: its projection */
    nesim_cost map;       /* caps and mapping */
    nesim_chiptime *ct;
    nesim_lm_sink next;
    nesim_ct_feed feed;   /* the token's spikes; each spiked projection's windows, keyed by projection */
    int64_t *tok_first, *tok_end; /* per token: its ticks */
    size_t n_tok, cap_tok;
    nesim_chiptime_result res; /* after finish */
    int finished;
    int failed;
    nesim_error err;
};

static uint32_t lt_size(void *u, int g) { return ((nesim_lm_timer *)u)->size[g]; }
static int lt_kind(void *u, int g, uint32_t i) { return g % 2 == 0 ? NESIM_CT_SOURCE : NESIM_CT_PASSIVE; }
static void lt_edge(void *u, int e, int *pre, int *post, int *syn, int64_t *delay)
{
    *pre = 2 * e, *post = 2 * e + 1, *syn = NESIM_CT_DENSE, *delay = 0;
}
static size_t lt_targets(void *u, int e, uint32_t i, uint32_t *out, size_t cap)
{
    const nesim_lm_timer *t = u;
    uint32_t n = t->size[2 * e + 1];
    for (uint32_t k = 0; k < n && k < cap; k++)
        out[k] = k;
    return n;
}
static int lt_dense(void *u, int e) { return 1; }
static size_t map_targets(void *u, uint64_t i, uint32_t *out, size_t cap) { return 0; } /* dense: not called */

void nesim_lm_timer_free(nesim_lm_timer *t)
{
    if (!t)
        return;
    nesim_chiptime_free(t->ct);
    if (t->map.map.place)
        nesim_map_free(&t->map.map);
    free(t->coder_of), free(t->size), free(t->first), free(t->edge_proj);
    nesim_ct_feed_free(&t->feed);
    free(t->tok_first), free(t->tok_end);
    free(t);
}

static double weight_bits(const nesim_tensor *w)
{
    switch (w->dtype) {
    case NESIM_I8:
        return 8;
    case NESIM_F16:
    case NESIM_BF16:
        return 16;
    case NESIM_F64:
        return 64;
    default:
        return 32;
    }
}

int nesim_lm_timer_new(const nesim_chip *chip, const nesim_lm_graph *g, const nesim_lm_run *r, nesim_timing model,
                       nesim_lm_timer **out, nesim_error *err)
{
    *out = NULL;
    if (chip->kind != NESIM_CHIP_NEUROMORPHIC)
        return nesim_fail(err, NESIM_EINVAL, "--timing: %s is not a neuromorphic chip", chip->name);
    nesim_lm_timer *t = calloc(1, sizeof *t);
    size_t np = g->n_proj;
    if (!t || !(t->coder_of = malloc((np ? np : 1) * sizeof *t->coder_of)) ||
        !(t->size = calloc(2 * (np ? np : 1), sizeof *t->size)) ||
        !(t->first = calloc(2 * np + 1, sizeof *t->first)) ||
        !(t->edge_proj = calloc(np ? np : 1, sizeof *t->edge_proj))) {
        nesim_lm_timer_free(t);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    t->g = g, t->n_proj = np;
    nesim_map_group *grp = calloc(2 * (np ? np : 1), sizeof *grp);
    nesim_map_edge *edge = calloc(np ? np : 1, sizeof *edge);
    char **names = calloc(2 * (np ? np : 1), sizeof *names);
    int rc = grp && edge && names ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t p = 0; !rc && p < np; p++) {
        const nesim_lm_node *nd = &g->node[g->proj_node[p]];
        t->coder_of[p] = -1;
        if (!nesim_lm_proj_coding(r, p)->spiked)
            continue; /* graded: beside the chip */
        int e = t->ne++;
        size_t in = (size_t)nd->w.shape[1], o = (size_t)nd->w.shape[0];
        size_t L = strlen(nd->name) + 4;
        if (!(names[2 * e] = malloc(L))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        snprintf(names[2 * e], L, "%s.in", nd->name);
        grp[2 * e] = (nesim_map_group){.name = names[2 * e], .neurons = in};
        grp[2 * e + 1] = (nesim_map_group){.name = nd->name, .neurons = o, .fan_in = in, .weight_bits = weight_bits(&nd->w)};
        edge[e] = (nesim_map_edge){.pre = 2 * e, .post = 2 * e + 1, .dense = 1, .targets = map_targets};
        t->size[2 * e] = (uint32_t)in, t->size[2 * e + 1] = (uint32_t)o;
        t->coder_of[p] = 2 * e;
        t->edge_proj[e] = (int)p;
    }
    t->ng = 2 * t->ne;
    if (!rc && !t->ne)
        rc = nesim_fail(err, NESIM_EINVAL, "--timing: no projection is spiked, so nothing runs on the chip");
    if (!rc) {
        /* capacities only: the dense profile is not needed to map */
        const nesim_chip_params *P = &chip->p;
        t->map.caps = (nesim_chip_caps){.neurons_per_core = P->neurons_per_core,
                                        .synapse_bytes_per_core = (double)P->synapse_memory_bytes_per_core,
                                        .fan_in_max = P->fan_in_max, .fan_out_max = P->fan_out_max,
                                        .cores_per_chip = P->cores_per_chip, .cores_per_router = P->cores_per_router,
                                        .mesh_x = P->mesh_x, .mesh_y = P->mesh_y, .chip_mesh_x = P->chip_mesh_x,
                                        .chip_mesh_y = P->chip_mesh_y, .weight_bits_max = P->weight_bits_max,
                                        .split_fan_in = 1};
        rc = nesim_map(&t->map.caps, grp, (size_t)t->ng, edge, (size_t)t->ne, &t->map.map, err);
    }
    for (int k = 0; names && k < t->ng; k++)
        free(names[k]);
    free(names), free(grp), free(edge);
    for (int k = 0; !rc && k < t->ng; k++)
        t->first[k + 1] = t->first[k] + t->size[k];
    if (!rc) {
        nesim_ct_graph view = {.user = t, .n_groups = t->ng, .n_edges = t->ne, .size = lt_size, .kind = lt_kind,
                               .edge = lt_edge, .targets = lt_targets, .dense = lt_dense};
        rc = nesim_chiptime_new_graph(chip, &t->map.caps, &t->map.map, &view, model, &t->ct, err);
    }
    if (rc) {
        nesim_lm_timer_free(t);
        return rc;
    }
    *out = t;
    return NESIM_OK;
}

static void lt_spike(void *user, size_t proj, uint32_t channel, int64_t tick, int sign)
{
    nesim_lm_timer *t = user;
    if (!t->failed && proj < t->n_proj && t->coder_of[proj] >= 0 && channel < t->size[t->coder_of[proj]] &&
        nesim_ct_feed_spike(&t->feed, tick, t->first[t->coder_of[proj]] + channel, &t->err))
        t->failed = 1;
    if (t->next.spike)
        t->next.spike(t->next.user, proj, channel, tick, sign);
}

static void lt_activity(void *user, size_t proj, int64_t tick, int64_t events, int64_t sops)
{
    nesim_lm_timer *t = user;
    if (t->next.activity)
        t->next.activity(t->next.user, proj, tick, events, sops);
}

static void lt_code(void *user, size_t proj, size_t token, int64_t t0, int64_t steps, double vth)
{
    nesim_lm_timer *t = user;
    if (!t->failed && nesim_ct_feed_window(&t->feed, (int64_t)proj, t0, steps, &t->err))
        t->failed = 1;
    if (t->next.code)
        t->next.code(t->next.user, proj, token, t0, steps, vth);
}

/* A token is done: its spikes to the timing, in tick order. */
static void lt_token(void *user, size_t token, int64_t first, int64_t end)
{
    nesim_lm_timer *t = user;
    if (t->failed)
        t->feed.n = 0;
    else if (nesim_ct_feed_flush(&t->feed, t->ct, &t->err))
        t->failed = 1;
    if (!t->failed) {
        if (token >= t->cap_tok) {
            size_t nc = t->cap_tok ? 2 * t->cap_tok : 64;
            while (nc <= token)
                nc *= 2;
            int64_t *f = realloc(t->tok_first, nc * sizeof *f), *e = f ? realloc(t->tok_end, nc * sizeof *e) : NULL;
            if (f)
                t->tok_first = f;
            if (e)
                t->tok_end = e;
            if (!f || !e)
                t->failed = nesim_fail(&t->err, NESIM_ENOMEM, "chip time: out of memory");
            else
                t->cap_tok = nc;
        }
        if (!t->failed) {
            t->tok_first[token] = first, t->tok_end[token] = end;
            if (token + 1 > t->n_tok)
                t->n_tok = token + 1;
        }
    }
    if (t->next.token)
        t->next.token(t->next.user, token, first, end);
}

nesim_lm_sink nesim_lm_timer_sink(nesim_lm_timer *t, const nesim_lm_sink *next)
{
    if (next)
        t->next = *next;
    return (nesim_lm_sink){.spike = lt_spike, .activity = lt_activity, .code = lt_code, .token = lt_token, .user = t};
}

int nesim_lm_timer_finish(nesim_lm_timer *t, int64_t ticks, nesim_chiptime_result *res, nesim_error *err)
{
    if (t->failed) {
        *err = t->err;
        return t->err.code ? t->err.code : NESIM_ENOMEM;
    }
    int rc = nesim_chiptime_finish(t->ct, ticks, res, err);
    if (!rc)
        t->res = *res, t->finished = 1;
    return rc;
}

double nesim_lm_timer_token_s(const nesim_lm_timer *t, size_t token)
{
    if (!t->finished || token >= t->n_tok)
        return 0;
    return nesim_chiptime_span_s(&t->res, t->tok_first[token], t->tok_end[token]);
}

double nesim_lm_timer_proj_s(const nesim_lm_timer *t, size_t proj)
{
    return t->finished ? nesim_ct_feed_window_s(&t->feed, &t->res, (int64_t)proj) : 0;
}

void nesim_lm_timer_usage(const nesim_lm_timer *t, uint64_t *cores, uint64_t *chips)
{
    *cores = t->map.map.cores_used;
    *chips = t->map.map.chips;
}
