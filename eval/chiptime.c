/* chiptime.c — chip time of a mapped network, step by step (chiptime.h). */
#include "eval/chiptime.h"

#include "base/comm.h"
#include "base/mem.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *nesim_timing_name(nesim_timing t)
{
    return t == NESIM_TIMING_SIMPLE ? "simple" : t == NESIM_TIMING_DETAILED ? "detailed"
           : t == NESIM_TIMING_ASYNC    ? "async"
                                        : "none";
}

int nesim_timing_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "simple") == 0)
        return NESIM_TIMING_SIMPLE;
    if (strcmp(name, "async") == 0)
        return NESIM_TIMING_ASYNC;
    if (strcmp(name, "detailed") == 0)
        return NESIM_TIMING_DETAILED;
    if (strcmp(name, "none") == 0)
        return NESIM_TIMING_NONE;
    return -1;
}

/* A growable array of uint32_t. */
typedef struct u32v {
    uint32_t *v;
    size_t n, cap;
} u32v;

static int u32v_push(u32v *a, uint32_t x)
{
    uint32_t *v = nesim_grown(a->v, a->n + 1, &a->cap, sizeof *v, 64);
    if (!v)
        return -1;
    a->v = v;
    a->v[a->n++] = x;
    return 0;
}

/* ---- the detailed model's events ---- */

/* EV_FIRST: a message enters the mesh at its sender (then as EV_ARRIVE).
 * EV_HOP: a message at the end of a link (EV_ARRIVE), then that link tries
 * its next message (EV_TRY) — one event for the two that were always popped
 * one after the other (same time, consecutive sequence numbers). */
enum { EV_ARRIVE, EV_TRY, EV_RELEASE, EV_FIRST, EV_HOP };

typedef struct ev {
    double t;
    uint64_t seq;
    int kind;
    uint32_t a; /* message (arrive) or link (try, release) */
} ev;

typedef struct dmsg {
    double t_req;      /* when it began waiting for its current link */
    uint32_t x, y;     /* router it is at */
    uint32_t dx, dy;   /* destination router */
    uint32_t core;     /* destination core */
    double work;       /* receive time at the destination core */
    int32_t prev;      /* link whose buffer holds it, -1 none */
    int32_t next;      /* next in a link's queue */
    double t0;         /* when its sender sends it */
    uint64_t seq;      /* its place among events of the same time */
} dmsg;

/* A run of messages of one neuron: its own row, or a dense edge's shared list. */
typedef struct mspan mspan;
struct mspan {
    const uint32_t *core;
    const double *work;
    const int32_t *edge; /* NULL: all cross edge `e` */
    int32_t e;
    size_t n;
};

/* async: a message on its way to a group */
typedef struct amsg {
    double arrive, work;
    uint32_t core, src;   /* destination core; source neuron (global) */
    int32_t edge;
    uint64_t seq;
} amsg;
typedef struct amsgv {
    amsg *v;
    size_t n, cap;
} amsgv;

/* Marks a rank sends with its count: a step with no more than these on any
 * rank needs one collective, not two. */
enum { MARKS_INLINE = 63 };

struct nesim_chiptime {
    nesim_ct_graph G;
    uint32_t *first;      /* per group: its first neuron (n_groups + 1) */
    nesim_timing model;
    nesim_chip_latency L;
    nesim_chip_caps caps;
    uint32_t N;
    uint64_t n_cores;
    struct core_xy { uint32_t x, y, cx, cy; } *xy; /* per core: mesh and chip coordinates (no division per message) */
    uint32_t *core_of, *slot;
    uint32_t *tcount;     /* scratch: synapses per destination core of one neuron (n_cores) */
    uint64_t *tcores;     /* and the cores it reaches */
    uint8_t *drift, *source;
    uint8_t *relay;       /* per neuron: a source whose spikes cost a spike out */
    int64_t *dense_at;    /* per group: the last step a dense edge gave all its neurons input (-1) */
    double *prefix;       /* per neuron: static neuron-pass time of the lower slots on its core */
    uint64_t *msg_row;    /* CSR per neuron: its messages */
    uint32_t *msg_core;
    double *msg_work;
    int32_t *msg_edge;    /* the edge each message crosses */
    /* dense edges: one message list per edge, the same for every pre neuron
     * (so a dense layer costs its destination cores, not pre x cores) */
    uint32_t **dl_core;   /* per edge (NULL: not dense) */
    double **dl_work;
    size_t *dl_n;
    int **dense_out;      /* per group: its dense out edges, -1 ended */
    uint32_t *group_n;    /* per neuron: its group */
    size_t max_spans;
    struct mspan *spans;  /* scratch: max_spans */
    double *base;         /* per core: the static neuron pass (access, drifting updates) */
    double base_max;
    uint64_t base_core;
    double sync;
    uint64_t routers;
    /* input-driven updates of non-drifting neurons: marks per future step */
    int any_passive;
    int64_t *touched_at, *counted_at;
    int64_t ring_n;
    u32v *ring;           /* ring[s % ring_n]: neurons given input at step s */
    /* graph parts (G.merge): a rank marks only its own targets, so the
     * marks of a step are gathered; may[s % ring_n] says a spike reached a
     * passive population's edge for step s (every rank alike: spikes are
     * every rank's), so a step no input reaches needs no exchange */
    uint8_t *may;
    u32v part_marks, gathered;
    uint32_t *mark_blk;   /* gather_marks: every rank's block, then this rank's */
    size_t *mark_bytes;
    int n_pops;
    int **out_proj;       /* per population: projections to passive populations, -1 ended */
    uint32_t *tg;
    size_t tg_cap;
    /* per step */
    int64_t next_step;    /* first step not yet closed */
    u32v fired;           /* spikes of the open step */
    int64_t open_step;
    double *gen, *recv;   /* per core */
    uint32_t *touched_n;  /* per core: passive neurons updated */
    uint8_t *active;
    u32v active_cores;
    /* detailed */
    uint32_t box_x;        /* routers per row of the region routes stay in */
    double *busy_until, *busy_sum, *core_free;
    uint32_t *occ;
    uint8_t *lused;
    int32_t *qhead, *qtail;
    u32v used_links;
    dmsg *msgs;
    size_t n_msgs, cap_msgs;
    ev *heap;
    size_t n_heap, cap_heap;
    uint64_t seq;
    u32v *core_touched;   /* detailed: per core, slots of passive neurons updated this step */
    /* async */
    double input_dt;
    double *last_done;    /* per neuron: when the last message that reached it was done */
    double *afree;        /* per core: when it is free */
    double *dense_done;   /* per core: when the last dense message (every neuron on it) was done */
    double done_max;      /* the last event so far */
    struct amsgv *pending; /* per group: messages on their way to it */
    /* results */
    double *step_s;
    size_t cap_steps;
    nesim_chiptime_result r;
    double step_blocked;  /* detailed: this step's waits for full buffers */
    /* shared (nesim_chiptime_share): this member times the steps s with
     * s % parts == part and keeps their records until the gather */
    int part, parts;
    struct ct_rec *recs;
    size_t n_recs, cap_recs;
    /* shared: the spikes of the open block of `parts` steps, held until the
     * block is complete, so that every member times its step of a block at
     * the same point of the run (closing them one by one as spikes come
     * would put each member's step on the others' critical path in turn) */
    struct ct_pend { int64_t t; uint32_t id; } *pend;
    size_t n_pend, cap_pend;
};

/* What a step leaves for the results (before synchronisation): its time,
 * its critical core and bound, its busiest link (-1: none) and the time its
 * messages waited for full buffers. Plain data: shared steps travel as bytes. */
typedef struct ct_rec {
    int64_t s;
    double t;
    uint64_t crit;
    int32_t bound;
    int32_t link;
    double link_busy;
    double blocked;
} ct_rec;

void nesim_chiptime_free(nesim_chiptime *ct)
{
    if (!ct)
        return;
    free(ct->first);
    free(ct->xy);
    free(ct->recs);
    free(ct->pend);
    free(ct->core_of), free(ct->slot), free(ct->drift), free(ct->source), free(ct->prefix);
    free(ct->msg_row), free(ct->msg_core), free(ct->msg_work), free(ct->base);
    free(ct->touched_at), free(ct->counted_at);
    for (int64_t i = 0; ct->ring && i < ct->ring_n; i++)
        free(ct->ring[i].v);
    free(ct->ring);
    free(ct->may), free(ct->part_marks.v), free(ct->gathered.v), free(ct->mark_blk), free(ct->mark_bytes);
    for (int p = 0; ct->out_proj && p < ct->n_pops; p++)
        free(ct->out_proj[p]);
    free(ct->out_proj);
    free(ct->tg);
    free(ct->msg_edge);
    for (int e = 0; ct->dl_core && e < ct->G.n_edges; e++)
        free(ct->dl_core[e]), free(ct->dl_work[e]);
    free(ct->dl_core), free(ct->dl_work), free(ct->dl_n);
    for (int p = 0; ct->dense_out && p < ct->n_pops; p++)
        free(ct->dense_out[p]);
    free(ct->dense_out);
    free(ct->group_n);
    free(ct->spans);
    free(ct->relay);
    free(ct->dense_at);
    free(ct->last_done);
    free(ct->afree);
    free(ct->dense_done);
    for (int p = 0; ct->pending && p < ct->n_pops; p++)
        free(ct->pending[p].v);
    free(ct->pending);
    free(ct->tcount);
    free(ct->tcores);
    free(ct->fired.v);
    free(ct->gen), free(ct->recv), free(ct->touched_n), free(ct->active), free(ct->active_cores.v);
    free(ct->busy_until), free(ct->busy_sum), free(ct->core_free), free(ct->occ), free(ct->lused), free(ct->qhead), free(ct->qtail);
    free(ct->used_links.v);
    free(ct->msgs);
    free(ct->heap);
    if (ct->core_touched)
        for (uint64_t c = 0; c < ct->n_cores; c++)
            free(ct->core_touched[c].v);
    free(ct->core_touched);
    free(ct->step_s);
    free(ct);
}

/* ---- building ---- */

static double syn_latency(const nesim_chip_latency *L, int syn)
{
    return syn == NESIM_CT_DENSE ? L->syn_dense : syn == NESIM_CT_CONV ? L->syn_conv : L->syn_sparse;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The destination cores of pre neuron i of edge e (ascending, in
 * ct->tcores; returns how many) and its synapses on each (ct->tcount[core],
 * which the caller clears); *lat: the edge's latency per synaptic op. */
static size_t edge_cores(nesim_chiptime *ct, const nesim_mapping *map, int e, uint32_t i, double *lat)
{
    int pre, post, syn;
    int64_t delay;
    ct->G.edge(ct->G.user, e, &pre, &post, &syn, &delay);
    const nesim_map_place *P = &map->place[post];
    *lat = syn_latency(&ct->L, syn);
    const int dense = ct->G.dense && ct->G.dense(ct->G.user, e);
    const size_t f = dense ? ct->first[post + 1] - ct->first[post] : ct->G.targets(ct->G.user, e, i, ct->tg, ct->tg_cap);
    size_t nt = 0;
    for (size_t k = 0; k < f; k++) {
        uint64_t c = nesim_map_core(P, dense ? k : ct->tg[k]);
        if (!ct->tcount[c]++)
            ct->tcores[nt++] = c;
    }
    if (nt > 1)
        qsort(ct->tcores, nt, sizeof *ct->tcores, cmp_u64);
    return nt;
}

/* Messages of pre neuron i of edge e: one per destination core, by
 * ascending core, each doing message_in and one synaptic op per synapse it
 * meets there. A dense edge reaches every post neuron (no target list is
 * asked for); a given placement may scatter targets over cores in any
 * order. With row_fill, written at g's row. Returns how many. */
static size_t edge_messages(nesim_chiptime *ct, const nesim_mapping *map, int e, uint32_t i, uint64_t *row_fill,
                            uint32_t g)
{
    double lat;
    const size_t nt = edge_cores(ct, map, e, i, &lat);
    for (size_t k = 0; k < nt; k++) {
        uint64_t c = ct->tcores[k];
        if (row_fill) {
            uint64_t at = row_fill[g]++;
            ct->msg_core[at] = (uint32_t)c;
            ct->msg_work[at] = ct->L.message_in + (double)ct->tcount[c] * lat;
            ct->msg_edge[at] = e;
        }
        ct->tcount[c] = 0;
    }
    return nt;
}

/* Every rank's n items of `size` bytes from mine, rank by rank, into *got
 * (the communicator's buffer, valid until its next collective) and their
 * number into *total: the counts travel first. status is the caller's so
 * far: it and this function's own failures are agreed before anything is
 * exchanged, so a rank that failed still joins and every rank returns the
 * same status. A collective of comm. */
static int gather_items(nesim_comm *comm, int status, const void *mine, uint64_t n, size_t size, const void **got,
                        size_t *total, const char *what, nesim_error *err)
{
    const int K = nesim_comm_size(comm);
    uint64_t *cnt = malloc((size_t)K * sizeof *cnt);
    size_t *bytes = malloc((size_t)K * sizeof *bytes);
    int rc = status ? status : !cnt || !bytes ? nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory") : NESIM_OK;
    *got = NULL, *total = 0;
    if (!(rc = nesim_comm_agree(comm, rc, err)))
        rc = nesim_comm_allgather(comm, &n, sizeof n, cnt, what, err);
    if (!rc) {
        for (int r = 0; r < K; r++) {
            bytes[r] = (size_t)cnt[r] * size;
            *total += (size_t)cnt[r];
        }
        rc = nesim_comm_allgatherv(comm, mine, bytes, got, what, err);
    }
    free(cnt), free(bytes);
    return rc;
}

/* One message of a graph drawn in parts: source g to a core, with the
 * synapses it meets there over edge e. */
typedef struct part_msg {
    uint32_t g, core, count;
    int32_t edge;
} part_msg;

static int cmp_part_msg(const void *a, const void *b)
{
    const part_msg *x = a, *y = b;
    if (x->g != y->g)
        return x->g < y->g ? -1 : 1;
    if (x->edge != y->edge)
        return x->edge < y->edge ? -1 : 1;
    return (x->core > y->core) - (x->core < y->core);
}

/* A graph drawn in parts: every rank counts its targets' synapses per
 * source, edge and core, the ranks' lists are gathered, sorted by (source,
 * edge, core) and the counts of one message summed (integers: the same for
 * any number of ranks), and the message table is filled from the result,
 * as the whole graph's targets would have filled it. */
static int merged_messages(nesim_chiptime *ct, const nesim_mapping *map, int status, nesim_error *err)
{
    const nesim_ct_graph *G = &ct->G;
    nesim_comm *comm = G->merge;
    part_msg *mine = NULL, *all = NULL;
    size_t n = 0, cap = 0, total = 0;
    double *lat = malloc((size_t)(G->n_edges ? G->n_edges : 1) * sizeof *lat); /* per edge, per synaptic op */
    int rc = status ? status : !lat ? nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory") : NESIM_OK;
    for (int j = 0; !rc && j < G->n_edges; j++) {
        int pre, post, syn;
        int64_t delay;
        G->edge(G->user, j, &pre, &post, &syn, &delay);
        lat[j] = syn_latency(&ct->L, syn);
    }
    for (int j = 0; !rc && G->merge_give && j < G->n_edges; j++) {
        int pre, post, syn;
        int64_t delay;
        G->edge(G->user, j, &pre, &post, &syn, &delay);
        if (G->dense && G->dense(G->user, j))
            continue; /* its one shared list, made by build */
        for (uint32_t i = 0; !rc && i < ct->first[pre + 1] - ct->first[pre]; i++) {
            double l;
            const size_t nt = edge_cores(ct, map, j, i, &l);
            part_msg *v = nesim_grown(mine, n + nt, &cap, sizeof *v, 4096);
            if (!v)
                rc = nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
            else
                mine = v;
            for (size_t k = 0; k < nt; k++) {
                uint64_t c = ct->tcores[k];
                if (v)
                    mine[n++] = (part_msg){ct->first[pre] + i, (uint32_t)c, ct->tcount[c], j};
                ct->tcount[c] = 0;
            }
        }
    }
    /* every rank joins the exchange, failed or not */
    const void *got;
    rc = gather_items(comm, rc, mine, n, sizeof *mine, &got, &total, "the chip time's messages", err);
    free(mine); /* gathered: the list is in got */
    if (!rc && !(all = malloc((total ? total : 1) * sizeof *all)))
        rc = nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory for %zu messages", total);
    if (rc)
        return free(all), free(lat), rc;
    memcpy(all, got, total * sizeof *all);
    qsort(all, total, sizeof *all, cmp_part_msg);
    size_t m = 0; /* merged in place: one message per (source, edge, core) */
    for (size_t k = 0; k < total; k++) {
        if (m && all[m - 1].g == all[k].g && all[m - 1].edge == all[k].edge && all[m - 1].core == all[k].core)
            all[m - 1].count += all[k].count;
        else
            all[m++] = all[k];
    }
    ct->msg_core = malloc((m ? m : 1) * sizeof *ct->msg_core);
    ct->msg_work = malloc((m ? m : 1) * sizeof *ct->msg_work);
    ct->msg_edge = malloc((m ? m : 1) * sizeof *ct->msg_edge);
    if (!ct->msg_core || !ct->msg_work || !ct->msg_edge)
        return free(all), free(lat), nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory for %zu messages", m);
    for (size_t k = 0; k < m; k++) {
        ct->msg_row[all[k].g + 1]++;
        ct->msg_core[k] = all[k].core;
        ct->msg_work[k] = ct->L.message_in + (double)all[k].count * lat[all[k].edge];
        ct->msg_edge[k] = all[k].edge;
    }
    for (uint32_t g = 0; g < ct->N; g++)
        ct->msg_row[g + 1] += ct->msg_row[g];
    free(all), free(lat);
    return NESIM_OK;
}

static int build(nesim_chiptime *ct, const nesim_mapping *map, nesim_error *err)
{
    const nesim_ct_graph *G = &ct->G;
    int np = G->n_groups, nj = G->n_edges;
    if ((size_t)np != map->n_groups)
        return nesim_fail(err, NESIM_EINTERNAL, "chip time: %d groups, the mapping has %zu", np, map->n_groups);
    if (!(ct->first = malloc(((size_t)np + 1) * sizeof *ct->first)))
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    uint32_t N = 0;
    for (int p = 0; p < np; p++) {
        ct->first[p] = N;
        N += G->size(G->user, p);
    }
    ct->first[np] = N;
    ct->N = N;
    ct->n_pops = np;
    ct->n_cores = map->cores;
    size_t n1 = N ? N : 1, c1 = ct->n_cores ? ct->n_cores : 1;
    ct->core_of = malloc(n1 * sizeof *ct->core_of);
    ct->slot = malloc(n1 * sizeof *ct->slot);
    ct->drift = calloc(n1, 1);
    ct->source = calloc(n1, 1);
    ct->relay = calloc(n1, 1);
    ct->prefix = malloc(n1 * sizeof *ct->prefix);
    ct->msg_row = calloc(n1 + 1, sizeof *ct->msg_row);
    ct->base = calloc(c1, sizeof *ct->base);
    ct->gen = calloc(c1, sizeof *ct->gen);
    ct->recv = calloc(c1, sizeof *ct->recv);
    ct->touched_n = calloc(c1, sizeof *ct->touched_n);
    ct->active = calloc(c1, 1);
    ct->core_free = calloc(c1, sizeof *ct->core_free);
    ct->out_proj = calloc((size_t)(np ? np : 1), sizeof *ct->out_proj);
    ct->active_cores.v = malloc(c1 * sizeof *ct->active_cores.v); /* room for every core: pushes cannot fail */
    ct->active_cores.cap = c1;
    uint32_t *count = calloc(c1, sizeof *count);
    if (!ct->core_of || !ct->slot || !ct->drift || !ct->source || !ct->relay || !ct->prefix || !ct->msg_row || !ct->base ||
        !ct->gen || !ct->recv || !ct->touched_n || !ct->active || !ct->core_free || !ct->out_proj || !ct->active_cores.v || !count) {
        free(count);
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory for %u neurons", N);
    }
    /* neurons on cores, in placement order: their slots and the static pass */
    size_t tg_cap = 1;
    for (int p = 0; p < np; p++) {
        const nesim_map_place *P = &map->place[p];
        uint32_t first = ct->first[p], n = ct->first[p + 1] - first;
        if (n > tg_cap)
            tg_cap = n;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t g = first + i;
            uint64_t c = nesim_map_core(P, i);
            int kind = G->kind(G->user, p, i);
            ct->core_of[g] = (uint32_t)c;
            ct->slot[g] = count[c]++;
            ct->source[g] = kind == NESIM_CT_SOURCE || kind == NESIM_CT_RELAY;
            ct->relay[g] = kind == NESIM_CT_RELAY;
            ct->drift[g] = kind == NESIM_CT_DRIFT;
            double own = ct->source[g] ? 0 : ct->L.neuron_access + (ct->drift[g] ? ct->L.neuron_update : 0);
            ct->prefix[g] = ct->base[c];
            ct->base[c] += own;
            if (!ct->source[g] && !ct->drift[g])
                ct->any_passive = 1;
        }
    }
    free(count);
    for (uint64_t c = 0; c < ct->n_cores; c++)
        if (ct->base[c] > ct->base_max)
            ct->base_max = ct->base[c], ct->base_core = c;
    ct->tg_cap = tg_cap;
    if (!(ct->tcount = calloc(c1, sizeof *ct->tcount)) || !(ct->tcores = malloc(c1 * sizeof *ct->tcores)) ||
        !(ct->dense_at = malloc((size_t)(np ? np : 1) * sizeof *ct->dense_at)))
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    for (int p = 0; p < np; p++)
        ct->dense_at[p] = -1;
    if (!(ct->tg = malloc(tg_cap * sizeof *ct->tg)))
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    /* messages per neuron: count, then fill (a graph in parts: merged over its ranks) */
    if (G->merge) {
        /* gather_marks' arrays, sized for every neuron (a step marks each
         * once): a step's exchange never allocates, so no rank can fail
         * alone between two collectives; a failure here is agreed with the
         * messages' merge */
        int pre = NESIM_OK;
        if (ct->any_passive) {
            const size_t K = (size_t)nesim_comm_size(G->merge);
            ct->part_marks.v = malloc(n1 * sizeof *ct->part_marks.v);
            ct->gathered.v = malloc(n1 * sizeof *ct->gathered.v);
            ct->mark_blk = malloc((K + 1) * (1 + MARKS_INLINE) * sizeof *ct->mark_blk);
            ct->mark_bytes = malloc(K * sizeof *ct->mark_bytes);
            ct->part_marks.cap = ct->gathered.cap = n1;
            if (!ct->part_marks.v || !ct->gathered.v || !ct->mark_blk || !ct->mark_bytes)
                pre = nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        }
        int rc = merged_messages(ct, map, pre, err);
        if (rc)
            return rc;
    }
    for (int pass = 0; pass < 2 && !G->merge; pass++) {
        uint64_t *fill = NULL;
        if (pass == 1) {
            for (uint32_t g = 0; g < N; g++)
                ct->msg_row[g + 1] += ct->msg_row[g];
            uint64_t total = ct->msg_row[N];
            ct->msg_core = malloc((total ? total : 1) * sizeof *ct->msg_core);
            ct->msg_work = malloc((total ? total : 1) * sizeof *ct->msg_work);
            ct->msg_edge = malloc((total ? total : 1) * sizeof *ct->msg_edge);
            fill = malloc(n1 * sizeof *fill);
            if (!ct->msg_core || !ct->msg_work || !ct->msg_edge || !fill) {
                free(fill);
                return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory for %llu messages",
                                  (unsigned long long)total);
            }
            memcpy(fill, ct->msg_row, n1 * sizeof *fill);
        }
        for (int j = 0; j < nj; j++) {
            int pre, post, syn;
            int64_t delay;
            G->edge(G->user, j, &pre, &post, &syn, &delay);
            if (G->dense && G->dense(G->user, j))
                continue; /* its one shared list, below */
            uint32_t first = ct->first[pre];
            for (uint32_t i = 0; i < ct->first[pre + 1] - first; i++) {
                size_t m = edge_messages(ct, map, j, i, fill, first + i);
                if (pass == 0)
                    ct->msg_row[first + i + 1] += m;
            }
        }
        free(fill);
    }
    /* dense edges: one list each; groups: their dense out edges; neurons: their group */
    if (!(ct->dl_core = calloc((size_t)(nj ? nj : 1), sizeof *ct->dl_core)) ||
        !(ct->dl_work = calloc((size_t)(nj ? nj : 1), sizeof *ct->dl_work)) ||
        !(ct->dl_n = calloc((size_t)(nj ? nj : 1), sizeof *ct->dl_n)) ||
        !(ct->dense_out = calloc((size_t)(np ? np : 1), sizeof *ct->dense_out)) ||
        !(ct->group_n = malloc(n1 * sizeof *ct->group_n)))
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    for (int p = 0; p < np; p++)
        for (uint32_t g = ct->first[p]; g < ct->first[p + 1]; g++)
            ct->group_n[g] = (uint32_t)p;
    for (int p = 0; p < np; p++) {
        int k = 0;
        if (!(ct->dense_out[p] = malloc((size_t)(nj + 1) * sizeof **ct->dense_out)))
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        for (int j = 0; j < nj; j++) {
            int pre, post, syn;
            int64_t delay;
            G->edge(G->user, j, &pre, &post, &syn, &delay);
            if (pre == p && G->dense && G->dense(G->user, j))
                ct->dense_out[p][k++] = j;
        }
        ct->dense_out[p][k] = -1;
        if ((size_t)k + 1 > ct->max_spans)
            ct->max_spans = (size_t)k + 1;
    }
    if (!ct->max_spans)
        ct->max_spans = 1;
    if (!(ct->spans = malloc(ct->max_spans * sizeof *ct->spans)))
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    for (int j = 0; j < nj; j++) {
        int pre, post, syn;
        int64_t delay;
        G->edge(G->user, j, &pre, &post, &syn, &delay);
        if (!G->dense || !G->dense(G->user, j))
            continue;
        size_t cap = map->place[post].n_cores ? map->place[post].n_cores : 1;
        uint64_t row = 0;
        uint32_t *oc = ct->msg_core;
        double *ow = ct->msg_work;
        int32_t *oe = ct->msg_edge;
        /* edge_messages writes at msg arrays: point them at the edge's own list for the call */
        ct->dl_core[j] = malloc(cap * sizeof **ct->dl_core);
        ct->dl_work[j] = malloc(cap * sizeof **ct->dl_work);
        int32_t *edges = malloc(cap * sizeof *edges);
        if (!ct->dl_core[j] || !ct->dl_work[j] || !edges) {
            free(edges);
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        }
        ct->msg_core = ct->dl_core[j], ct->msg_work = ct->dl_work[j], ct->msg_edge = edges;
        ct->dl_n[j] = edge_messages(ct, map, j, 0, &row, 0);
        ct->msg_core = oc, ct->msg_work = ow, ct->msg_edge = oe;
        free(edges);
    }
    /* projections into passive populations: their targets are updated when input arrives */
    int64_t max_delay = 0;
    uint8_t *passive = calloc((size_t)(np ? np : 1), 1);
    if (!passive)
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    for (int p = 0; p < np; p++)
        for (uint32_t g = ct->first[p]; g < ct->first[p + 1]; g++)
            passive[p] |= !ct->source[g] && !ct->drift[g];
    for (int p = 0; p < np; p++) {
        int k = 0;
        if (!(ct->out_proj[p] = malloc((size_t)(nj + 1) * sizeof **ct->out_proj))) {
            free(passive);
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        }
        for (int j = 0; j < nj; j++) {
            int pre, post, syn;
            int64_t delay;
            G->edge(G->user, j, &pre, &post, &syn, &delay);
            if (pre != p || !passive[post])
                continue;
            ct->out_proj[p][k++] = j;
            if (delay > max_delay)
                max_delay = delay;
        }
        ct->out_proj[p][k] = -1;
    }
    free(passive);
    if (ct->any_passive) {
        ct->ring_n = max_delay + 1;
        ct->ring = calloc((size_t)ct->ring_n, sizeof *ct->ring);
        ct->touched_at = malloc(n1 * sizeof *ct->touched_at);
        ct->counted_at = malloc(n1 * sizeof *ct->counted_at);
        ct->may = calloc((size_t)ct->ring_n, 1);
        if (!ct->ring || !ct->touched_at || !ct->counted_at || !ct->may)
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        for (uint32_t g = 0; g < N; g++)
            ct->touched_at[g] = ct->counted_at[g] = -1;
    }
    /* routers in use (the sync table's key) and the mesh region routes stay in */
    uint64_t *rk = malloc(c1 * sizeof *rk);
    if (!rk)
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    uint64_t bx = 0, by = 0;
    if (!(ct->xy = malloc(c1 * sizeof *ct->xy))) {
        free(rk);
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    }
    for (uint64_t c = 0; c < ct->n_cores; c++) {
        uint64_t x, y, cx, cy;
        nesim_map_core_xy(&ct->caps, c, &x, &y);
        nesim_map_chip_xy(&ct->caps, c, &cx, &cy);
        ct->xy[c] = (struct core_xy){(uint32_t)x, (uint32_t)y, (uint32_t)cx, (uint32_t)cy};
        rk[c] = y << 32 | x;
        bx = x + 1 > bx ? x + 1 : bx;
        by = y + 1 > by ? y + 1 : by;
    }
    qsort(rk, ct->n_cores, sizeof *rk, cmp_u64);
    for (uint64_t c = 0; c < ct->n_cores; c++)
        ct->routers += c == 0 || rk[c] != rk[c - 1];
    free(rk);
    ct->sync = ct->L.n_sync ? ct->L.sync_s[0] : 0;
    for (size_t k = 0; k < ct->L.n_sync; k++)
        if (ct->L.sync_routers[k] <= ct->routers)
            ct->sync = ct->L.sync_s[k];
    if (ct->model == NESIM_TIMING_ASYNC) {
        ct->sync = 0; /* no barrier */
        ct->last_done = calloc(n1, sizeof *ct->last_done);
        ct->afree = calloc(c1, sizeof *ct->afree);
        ct->dense_done = calloc(c1, sizeof *ct->dense_done);
        ct->pending = calloc((size_t)(np ? np : 1), sizeof *ct->pending);
        if (!ct->last_done || !ct->afree || !ct->dense_done || !ct->pending)
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    }
    if (ct->model == NESIM_TIMING_DETAILED) {
        if (bx * by > (1u << 26))
            return nesim_fail(err, NESIM_EINVAL, "chip time: the mapping spans %llu x %llu routers, too many for the "
                              "detailed model", (unsigned long long)bx, (unsigned long long)by);
        ct->box_x = (uint32_t)bx;
        size_t nl = (size_t)bx * by * 4;
        ct->busy_until = calloc(nl, sizeof *ct->busy_until);
        ct->busy_sum = calloc(nl, sizeof *ct->busy_sum);
        ct->occ = calloc(nl, sizeof *ct->occ);
        ct->lused = calloc(nl, 1);
        ct->qhead = malloc(nl * sizeof *ct->qhead);
        ct->qtail = malloc(nl * sizeof *ct->qtail);
        ct->core_touched = calloc(c1, sizeof *ct->core_touched);
        if (!ct->busy_until || !ct->busy_sum || !ct->occ || !ct->lused || !ct->qhead || !ct->qtail || !ct->core_touched)
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory for the mesh");
        for (size_t l = 0; l < nl; l++)
            ct->qhead[l] = ct->qtail[l] = -1;
    }
    return NESIM_OK;
}

int nesim_chiptime_new_graph(const nesim_chip *chip, const nesim_chip_caps *caps, const nesim_mapping *map,
                             const nesim_ct_graph *g, nesim_timing model, nesim_chiptime **out, nesim_error *err)
{
    *out = NULL;
    if (chip->kind != NESIM_CHIP_NEUROMORPHIC || !chip->p.has_latency)
        return nesim_fail(err, NESIM_EINVAL, "chip %s has no latency section: it cannot time a run (profiles with "
                          "one: loihi, loihi-sanafe)", chip->name);
    if (model != NESIM_TIMING_SIMPLE && model != NESIM_TIMING_DETAILED && model != NESIM_TIMING_ASYNC)
        return nesim_fail(err, NESIM_EINVAL, "timing model must be simple, detailed or async");
    if (chip->p.asynchronous && model != NESIM_TIMING_ASYNC)
        return nesim_fail(err, NESIM_EINVAL, "chip %s is asynchronous (no time step): time it with --timing async",
                          chip->name);
    if (!chip->p.asynchronous && model == NESIM_TIMING_ASYNC)
        return nesim_fail(err, NESIM_EINVAL, "chip %s is time-stepped: time it with --timing simple or detailed",
                          chip->name);
    if (g->merge && (g->dense || model == NESIM_TIMING_ASYNC))
        return nesim_fail(err, NESIM_EINVAL, "chip time from graph parts: no dense edges, no asynchronous model");
    nesim_chiptime *ct = calloc(1, sizeof *ct);
    if (!ct)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    ct->model = model;
    ct->L = chip->p.latency;
    ct->caps = *caps;
    ct->G = *g;
    ct->open_step = -1;
    ct->input_dt = chip->p.tick_s;
    int rc = build(ct, map, err);
    if (rc) {
        nesim_chiptime_free(ct);
        return rc;
    }
    ct->r.sync_s = ct->sync;
    ct->r.routers = ct->routers;
    ct->r.max_step = -1;
    *out = ct;
    return NESIM_OK;
}

/* ---- a recurrent network as a graph ---- */

static uint32_t net_size(void *u, int p) { return nesim_population_size(u, p); }

static int net_kind(void *u, int p, uint32_t i)
{
    const nesim_dyn *d = nesim_neuron_dyn(u, nesim_population_first(u, p) + i);
    if (d->model->is_source)
        return NESIM_CT_SOURCE;
    return d->model->drifts && d->model->drifts(d) ? NESIM_CT_DRIFT : NESIM_CT_PASSIVE;
}

static void net_edge(void *u, int e, int *pre, int *post, int *syn, int64_t *delay)
{
    const nesim_proj_spec *ps = nesim_projection_spec(u, e);
    *pre = ps->pre, *post = ps->post, *delay = ps->delay;
    enum nesim_syn_storage st = nesim_storage_of(ps);
    *syn = st == NESIM_STORE_DENSE ? NESIM_CT_DENSE : st == NESIM_STORE_CONV ? NESIM_CT_CONV : NESIM_CT_SPARSE;
}

static size_t net_targets(void *u, int e, uint32_t i, uint32_t *out, size_t cap)
{
    return nesim_projection_targets(u, e, i, out, cap);
}

/* A graph drawn in parts: the targets this rank's part holds (all-to-all
 * and one-to-one rules list every target on every rank: counted once, by
 * the rank holding each). cap is the largest population's size. */
static size_t net_targets_part(void *u, int e, uint32_t i, uint32_t *out, size_t cap)
{
    const nesim_graph *G = nesim_net_graph(u);
    uint32_t lo, hi;
    nesim_graph_part_range(G, nesim_projection_spec(u, e)->post, &lo, &hi);
    size_t n = nesim_projection_targets(u, e, i, out, cap), k = 0;
    for (size_t m = 0; m < n && m < cap; m++)
        if (out[m] >= lo && out[m] < hi)
            out[k++] = out[m];
    return k;
}

int nesim_chiptime_new(const nesim_chip *chip, const nesim_chip_caps *caps, const nesim_mapping *map,
                       const nesim_net *net, nesim_timing model, nesim_chiptime **out, nesim_error *err)
{
    *out = NULL;
    const nesim_graph *G = nesim_net_graph(net);
    const int part = nesim_graph_is_part(G);
    if (part && (!nesim_chiptime_parts_ok(model) || !nesim_net_comm(net)))
        return nesim_fail(err, NESIM_EINVAL, "chip time needs the whole graph here (the asynchronous model), and "
                                             "this rank drew only its targets' synapses");
    nesim_ct_graph g = {.user = (void *)net, .n_groups = nesim_population_count(net),
                        .n_edges = nesim_projection_count(net), .size = net_size, .kind = net_kind,
                        .edge = net_edge, .targets = net_targets};
    if (part) { /* the first member of each part gives its messages (a rank's threads share its part) */
        g.targets = net_targets_part;
        g.merge = nesim_net_comm(net);
        g.merge_give = nesim_comm_rank(g.merge) == G->part.first;
    }
    return nesim_chiptime_new_graph(chip, caps, map, &g, model, out, err);
}

int nesim_chiptime_parts_ok(nesim_timing model)
{
    /* a passive population's marks are gathered step by step (gather_marks);
     * the asynchronous model follows each neuron's last input */
    return model != NESIM_TIMING_ASYNC;
}

/* ---- one step ---- */

/* The messages of neuron g: its own row, then its group's dense edges' lists. */
static size_t msg_spans(const nesim_chiptime *ct, uint32_t g, mspan *out)
{
    size_t k = 0;
    uint64_t a = ct->msg_row[g], b = ct->msg_row[g + 1];
    if (b > a)
        out[k++] = (mspan){ct->msg_core + a, ct->msg_work + a, ct->msg_edge + a, -1, (size_t)(b - a)};
    for (const int *j = ct->dense_out[ct->group_n[g]]; *j >= 0; j++)
        if (ct->dl_n[*j])
            out[k++] = (mspan){ct->dl_core[*j], ct->dl_work[*j], NULL, *j, ct->dl_n[*j]};
    return k;
}

static uint64_t msg_count(const nesim_chiptime *ct, uint32_t g)
{
    uint64_t n = ct->msg_row[g + 1] - ct->msg_row[g];
    for (const int *j = ct->dense_out[ct->group_n[g]]; *j >= 0; j++)
        n += ct->dl_n[*j];
    return n;
}

static void mark_active(nesim_chiptime *ct, uint64_t c)
{
    if (!ct->active[c]) {
        ct->active[c] = 1;
        u32v_push(&ct->active_cores, (uint32_t)c); /* room was reserved: cannot fail past the first step */
    }
}

/* Passive targets of g's spike at step s get input at s + delay. */
static int mark_targets(nesim_chiptime *ct, uint32_t g, int64_t s)
{
    int lo = 0, hi = ct->n_pops; /* the group holding g: first[lo] <= g < first[lo + 1] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (ct->first[mid] <= g)
            lo = mid;
        else
            hi = mid;
    }
    int p = lo;
    uint32_t i = g - ct->first[p];
    for (const int *j = ct->out_proj[p]; *j >= 0; j++) {
        int pre, post, syn;
        int64_t delay;
        ct->G.edge(ct->G.user, *j, &pre, &post, &syn, &delay);
        uint32_t first = ct->first[post];
        int64_t s2 = s + delay;
        u32v *ring = &ct->ring[s2 % ct->ring_n];
        ct->may[s2 % ct->ring_n] = 1;
        int dense = ct->G.dense && ct->G.dense(ct->G.user, *j);
        if (dense && ct->dense_at[post] == s2)
            continue; /* the whole group is marked for that step already */
        size_t f = dense ? ct->first[post + 1] - first : ct->G.targets(ct->G.user, *j, i, ct->tg, ct->tg_cap);
        if (dense)
            ct->dense_at[post] = s2;
        for (size_t k = 0; k < f; k++) {
            uint32_t h = first + (dense ? (uint32_t)k : ct->tg[k]);
            if (ct->touched_at[h] != s2 && !ct->drift[h]) {
                ct->touched_at[h] = s2;
                if (u32v_push(ring, h))
                    return -1;
            }
        }
    }
    return 0;
}

/* ---- the detailed model ---- */

static int heap_push_seq(nesim_chiptime *ct, double t, uint64_t seq, int kind, uint32_t a);

static int heap_push(nesim_chiptime *ct, double t, int kind, uint32_t a)
{
    return heap_push_seq(ct, t, ct->seq++, kind, a);
}

/* (t, seq) order as one unsigned 128-bit comparison: times are >= 0 (a -0
 * is made +0 on the way in), and a non-negative double's bits order as it
 * does; seq is unique, so the order is total and any heap pops the same. */
static inline int ev_less(const ev *x, const ev *y)
{
    uint64_t a, b;
    memcpy(&a, &x->t, sizeof a);
    memcpy(&b, &y->t, sizeof b);
    return ((unsigned __int128)a << 64 | x->seq) < ((unsigned __int128)b << 64 | y->seq);
}

static int heap_push_seq(nesim_chiptime *ct, double t, uint64_t seq, int kind, uint32_t a)
{
    ev *nh = nesim_grown(ct->heap, ct->n_heap + 1, &ct->cap_heap, sizeof *nh, 256);
    if (!nh)
        return -1;
    ct->heap = nh;
    ev e = {t + 0.0, seq, kind, a};
    size_t i = ct->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!ev_less(&e, &ct->heap[up]))
            break;
        ct->heap[i] = ct->heap[up];
        i = up;
    }
    ct->heap[i] = e;
    return 0;
}

/* The smallest event out: the hole goes down along the smaller children to
 * a leaf (one comparison a level), then the last event rises into it from
 * there (it belongs near the bottom: a level or two). */
static ev heap_pop(nesim_chiptime *ct)
{
    ev top = ct->heap[0], last = ct->heap[--ct->n_heap];
    size_t i = 0, n = ct->n_heap;
    if (!n)
        return top;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        size_t m = l + 1 < n && ev_less(&ct->heap[l + 1], &ct->heap[l]) ? l + 1 : l;
        ct->heap[i] = ct->heap[m];
        i = m;
    }
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!ev_less(&last, &ct->heap[up]))
            break;
        ct->heap[i] = ct->heap[up];
        i = up;
    }
    ct->heap[i] = last;
    return top;
}

static const char *const dir_name[4] = {"E", "W", "N", "S"};

static uint32_t link_of(const nesim_chiptime *ct, uint32_t x, uint32_t y, int dir)
{
    return ((y * ct->box_x) + x) * 4 + (uint32_t)dir;
}

/* Hop latency of the link leaving (x, y) in direction dir (a chip crossing adds hop_chip). */
static double link_latency(const nesim_chiptime *ct, uint32_t x, uint32_t y, int dir)
{
    uint64_t mx = ct->caps.mesh_x, my = ct->caps.mesh_y;
    if (dir < 2) {
        uint32_t nx = dir == 0 ? x + 1 : x - 1;
        return ct->L.hop_ew + (x / mx != nx / mx ? ct->L.hop_chip : 0);
    }
    uint32_t ny = dir == 2 ? y + 1 : y - 1;
    return ct->L.hop_ns + (y / my != ny / my ? ct->L.hop_chip : 0);
}

static int add_msg(nesim_chiptime *ct, double t, uint32_t sx, uint32_t sy, uint32_t core, double work)
{
    dmsg *nm = nesim_grown(ct->msgs, ct->n_msgs + 1, &ct->cap_msgs, sizeof *nm, 256);
    if (!nm)
        return -1;
    ct->msgs = nm;
    uint32_t m = (uint32_t)ct->n_msgs++;
    ct->msgs[m] = (dmsg){.x = sx, .y = sy, .dx = ct->xy[core].x, .dy = ct->xy[core].y, .core = core, .work = work,
                         .prev = -1, .next = -1, .t0 = t, .seq = ct->seq++};
    return 0; /* it enters the heap in simulate_mesh */
}

static int use_link(nesim_chiptime *ct, uint32_t l)
{
    if (ct->lused[l])
        return 0;
    ct->lused[l] = 1;
    return u32v_push(&ct->used_links, l);
}

/* Starts the head of link l's queue if the link is idle and its buffer has room. */
static int try_link(nesim_chiptime *ct, uint32_t l, double now)
{
    int32_t h = ct->qhead[l];
    if (h < 0 || ct->busy_until[l] > now || ct->occ[l] >= ct->L.link_buffer)
        return 0;
    dmsg *m = &ct->msgs[h];
    ct->qhead[l] = m->next;
    if (ct->qhead[l] < 0)
        ct->qtail[l] = -1;
    ct->step_blocked += now - m->t_req;
    uint32_t x = l / 4 % ct->box_x, y = l / 4 / ct->box_x;
    int dir = (int)(l % 4);
    double lat = link_latency(ct, x, y, dir);
    ct->busy_until[l] = now + lat;
    ct->busy_sum[l] += lat;
    ct->occ[l]++;
    if (m->prev >= 0) { /* it leaves the buffer it waited in */
        ct->occ[m->prev]--;
        /* the link behind it tries its queue now, after this event; with
         * no queue there is nothing to try: a message queued there later
         * tries the link itself, in the state this try would see (a change
         * of that state comes with its own try), and leaving the event out
         * keeps every other event's order (Loihi DVS: 1.8 M of 20 M) */
        if (ct->qhead[m->prev] >= 0 && heap_push(ct, now, EV_TRY, (uint32_t)m->prev))
            return -1;
    }
    m->prev = (int32_t)l;
    m->x = dir == 0 ? x + 1 : dir == 1 ? x - 1 : x;
    m->y = dir == 2 ? y + 1 : dir == 3 ? y - 1 : y;
    if (heap_push(ct, now + lat, EV_HOP, (uint32_t)h))
        return -1;
    return 0;
}

/* Runs the step's messages through the mesh; returns the time the last
 * receiving core finished (0: none), *core_last its core, *net_bound whether
 * that core had been idle waiting for the message. */
static int simulate_mesh(nesim_chiptime *ct, double *last, uint64_t *core_last, int *net_bound)
{
    *last = 0;
    /* The messages come as runs sorted by (send time, seq) (a core sends in
     * slot order, each message after the last): only each run's next one
     * waits in the heap, so the heap holds runs and messages in flight, not
     * every message of the step; the order of events is the same as with
     * all of them in it (each run's next is its smallest). */
    for (size_t m = 0; m < ct->n_msgs; m++)
        if ((m == 0 || ct->msgs[m].t0 < ct->msgs[m - 1].t0) &&
            heap_push_seq(ct, ct->msgs[m].t0, ct->msgs[m].seq, EV_FIRST, (uint32_t)m))
            return -1;
    while (ct->n_heap) {
        ev e = heap_pop(ct);
        int32_t then_try = -1; /* EV_HOP: the link it crossed, tried after the arrival */
        if (e.kind == EV_HOP) {
            then_try = ct->msgs[e.a].prev;
            e.kind = EV_ARRIVE;
        }
        if (e.kind == EV_FIRST) {
            size_t n = (size_t)e.a + 1;
            if (n < ct->n_msgs && !(ct->msgs[n].t0 < ct->msgs[n - 1].t0) &&
                heap_push_seq(ct, ct->msgs[n].t0, ct->msgs[n].seq, EV_FIRST, (uint32_t)n))
                return -1;
            e.kind = EV_ARRIVE;
        }
        if (e.kind == EV_TRY) {
            if (try_link(ct, e.a, e.t))
                return -1;
        } else if (e.kind == EV_RELEASE) {
            ct->occ[e.a]--;
            if (try_link(ct, e.a, e.t))
                return -1;
        } else {
            dmsg *m = &ct->msgs[e.a];
            if (m->x == m->dx && m->y == m->dy) {
                double start = ct->core_free[m->core] > e.t ? ct->core_free[m->core] : e.t;
                ct->core_free[m->core] = start + m->work;
                mark_active(ct, m->core);
                if (ct->core_free[m->core] > *last || (ct->core_free[m->core] == *last && m->core < *core_last)) {
                    *last = ct->core_free[m->core];
                    *core_last = m->core;
                    *net_bound = start == e.t;
                }
                if (m->prev >= 0 && heap_push(ct, start, EV_RELEASE, (uint32_t)m->prev))
                    return -1;
            } else {
                int dir = m->x != m->dx ? (m->dx > m->x ? 0 : 1) : (m->dy > m->y ? 2 : 3);
                uint32_t l = link_of(ct, m->x, m->y, dir);
                if (use_link(ct, l))
                    return -1;
                m->t_req = e.t;
                m->next = -1;
                if (ct->qtail[l] >= 0)
                    ct->msgs[ct->qtail[l]].next = (int32_t)e.a;
                else
                    ct->qhead[l] = (int32_t)e.a;
                ct->qtail[l] = (int32_t)e.a;
                if (try_link(ct, l, e.t))
                    return -1;
            }
            if (then_try >= 0 && try_link(ct, (uint32_t)then_try, e.t))
                return -1;
        }
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The detailed step: each core's neuron pass in slot order sends the fired
 * neurons' messages, which cross the mesh. Returns the step's time before
 * synchronisation. */
static int detailed_step(nesim_chiptime *ct, const uint32_t *fired, size_t nf, double *out, uint64_t *crit,
                         nesim_ct_bound *bound)
{
    const nesim_chip_latency *L = &ct->L;
    /* fired neurons by (core, slot) */
    uint32_t *order = malloc((nf ? nf : 1) * sizeof *order);
    uint64_t *kk = malloc((nf ? nf : 1) * 2 * sizeof *kk);
    if (!order || !kk) {
        free(order), free(kk);
        return -1;
    }
    for (size_t k = 0; k < nf; k++)
        kk[2 * k] = (uint64_t)ct->core_of[fired[k]] << 32 | ct->slot[fired[k]], kk[2 * k + 1] = fired[k];
    qsort(kk, nf, 2 * sizeof *kk, cmp_u64);
    for (size_t k = 0; k < nf; k++)
        order[k] = (uint32_t)kk[2 * k + 1];
    free(kk);
    double gen_max = ct->base_max;
    uint64_t gen_core = ct->base_core;
    int rc = 0;
    for (size_t k = 0; k < nf && !rc;) {
        uint32_t c = ct->core_of[order[k]];
        u32v *T = &ct->core_touched[c];
        if (T->n > 1)
            qsort(T->v, T->n, sizeof *T->v, cmp_u32);
        double extra = 0; /* spikes and messages of the lower slots */
        size_t e = k;
        for (; e < nf && ct->core_of[order[e]] == c && !rc; e++) {
            uint32_t g = order[e];
            size_t below = 0, lo = 0, hi = T->n; /* passive neurons updated at lower slots */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (T->v[mid] < ct->slot[g])
                    lo = mid + 1;
                else
                    hi = mid;
            }
            below = lo;
            int self = lo < T->n && T->v[lo] == ct->slot[g];
            double t = ct->prefix[g] + extra + (double)below * L->neuron_update;
            if (!ct->source[g])
                t += L->neuron_access + (ct->drift[g] || self ? L->neuron_update : 0) + L->spike_out;
            else if (ct->relay[g])
                t += L->spike_out;
            uint32_t x = ct->xy[c].x, y = ct->xy[c].y;
            mspan *sp = ct->spans;
            size_t ns = msg_spans(ct, g, sp);
            for (size_t q = 0; q < ns && !rc; q++)
                for (size_t m = 0; m < sp[q].n && !rc; m++) {
                    t += L->message_out;
                    rc = add_msg(ct, t, x, y, sp[q].core[m], sp[q].work[m]);
                }
            extra += (ct->source[g] && !ct->relay[g] ? 0 : L->spike_out) + (double)msg_count(ct, g) * L->message_out;
        }
        double end = ct->base[c] + (double)T->n * L->neuron_update + extra;
        if (end > gen_max)
            gen_max = end, gen_core = c;
        k = e;
    }
    /* cores with updates but no spikes */
    for (size_t a = 0; a < ct->active_cores.n; a++) {
        uint32_t c = ct->active_cores.v[a];
        double end = ct->base[c] + (double)ct->core_touched[c].n * L->neuron_update;
        if (end > gen_max)
            gen_max = end, gen_core = c;
    }
    free(order);
    if (rc)
        return -1;
    double last;
    uint64_t core_last = 0;
    int net_bound = 0;
    if (simulate_mesh(ct, &last, &core_last, &net_bound))
        return -1;
    if (last > gen_max) {
        *out = last, *crit = core_last, *bound = net_bound ? NESIM_CT_NET : NESIM_CT_RECV;
    } else {
        *out = gen_max, *crit = gen_core, *bound = NESIM_CT_GEN;
    }
    return 0;
}

/* Adds step q->s to the results (steps in order: the sums are made in step
 * order whoever timed the step). */
static int record_step(nesim_chiptime *ct, const ct_rec *q)
{
    int64_t s = q->s;
    double *st = nesim_grown(ct->step_s, (size_t)s + 1, &ct->cap_steps, sizeof *st, 1024);
    if (!st)
        return -1;
    ct->step_s = st;
    double t = q->t + ct->sync;
    ct->step_s[s] = t;
    ct->r.total_s += t;
    ct->r.blocked_s += q->blocked;
    if (t > ct->r.max_s || ct->r.max_step < 0) {
        ct->r.max_s = t;
        ct->r.max_step = s;
        ct->r.critical_core = q->crit;
        ct->r.bound = (nesim_ct_bound)q->bound;
        ct->r.link_dir = NULL;
        ct->r.link_busy_s = 0;
        if (q->link >= 0) {
            uint32_t l = (uint32_t)q->link;
            ct->r.link_busy_s = q->link_busy;
            ct->r.link_x = l / 4 % ct->box_x;
            ct->r.link_y = l / 4 / ct->box_x;
            ct->r.link_dir = dir_name[l % 4];
        }
    }
    return 0;
}

/* A step just timed: recorded now, or kept for the gather when shared. */
static int keep_step(nesim_chiptime *ct, int64_t s, double t, uint64_t crit, nesim_ct_bound bound)
{
    ct_rec q = {.s = s, .t = t, .crit = crit, .bound = (int32_t)bound, .link = -1, .blocked = ct->step_blocked};
    ct->step_blocked = 0;
    for (size_t k = 0; k < ct->used_links.n; k++) { /* the busiest link, the first of equals */
        uint32_t l = ct->used_links.v[k];
        if (ct->busy_sum[l] > q.link_busy)
            q.link_busy = ct->busy_sum[l], q.link = (int32_t)l;
    }
    if (ct->parts <= 1)
        return record_step(ct, &q);
    ct_rec *recs = nesim_grown(ct->recs, ct->n_recs + 1, &ct->cap_recs, sizeof *recs, 1024);
    if (!recs)
        return -1;
    ct->recs = recs;
    ct->recs[ct->n_recs++] = q;
    return 0;
}

static int cmp_amsg(const void *a, const void *b)
{
    const amsg *x = a, *y = b;
    if (x->arrive != y->arrive)
        return x->arrive < y->arrive ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static double hop_time(const nesim_chiptime *ct, uint64_t from, uint64_t to)
{
    uint64_t sx = ct->xy[from].x, sy = ct->xy[from].y, dx = ct->xy[to].x, dy = ct->xy[to].y;
    uint64_t scx = ct->xy[from].cx, scy = ct->xy[from].cy, dcx = ct->xy[to].cx, dcy = ct->xy[to].cy;
    uint64_t hx = sx > dx ? sx - dx : dx - sx, hy = sy > dy ? sy - dy : dy - sy;
    uint64_t hc = (scx > dcx ? scx - dcx : dcx - scx) + (scy > dcy ? scy - dcy : dcy - scy);
    return (double)hx * ct->L.hop_ew + (double)hy * ct->L.hop_ns + (double)hc * ct->L.hop_chip;
}

/* async: the messages waiting for group p, in arrival order, each on its
 * core in turn; the neurons they reach learn when they were done. */
static int drain_group(nesim_chiptime *ct, int p, double *step_done)
{
    amsgv *q = &ct->pending[p];
    if (q->n > 1)
        qsort(q->v, q->n, sizeof *q->v, cmp_amsg);
    uint32_t first = ct->first[p];
    for (size_t k = 0; k < q->n; k++) {
        const amsg *m = &q->v[k];
        double start = m->arrive > ct->afree[m->core] ? m->arrive : ct->afree[m->core];
        double done = start + m->work;
        ct->afree[m->core] = done;
        if (done > *step_done)
            *step_done = done;
        int pre, post, syn;
        int64_t delay;
        ct->G.edge(ct->G.user, m->edge, &pre, &post, &syn, &delay);
        if (ct->G.dense && ct->G.dense(ct->G.user, m->edge)) { /* every neuron on the core */
            if (done > ct->dense_done[m->core])
                ct->dense_done[m->core] = done;
            continue;
        }
        size_t f = ct->G.targets(ct->G.user, m->edge, m->src - ct->first[pre], ct->tg, ct->tg_cap);
        for (size_t i = 0; i < f && i < ct->tg_cap; i++) {
            uint32_t j = first + ct->tg[i];
            if (ct->core_of[j] == m->core && done > ct->last_done[j])
                ct->last_done[j] = done;
        }
    }
    q->n = 0;
    return 0;
}

static int async_step(nesim_chiptime *ct, int64_t s, uint32_t *fired, size_t nf, double *out)
{
    const nesim_chip_latency *L = &ct->L;
    double t_in = (double)s * ct->input_dt, step_done = t_in;
    if (nf > 1)
        qsort(fired, nf, sizeof *fired, cmp_u32);
    size_t k = 0;
    for (int p = 0; p < ct->n_pops; p++) {
        if (ct->pending[p].n && drain_group(ct, p, &step_done))
            return -1;
        for (; k < nf && fired[k] < ct->first[p + 1]; k++) {
            uint32_t g = fired[k];
            double last = ct->last_done[g] > ct->dense_done[ct->core_of[g]] ? ct->last_done[g]
                                                                             : ct->dense_done[ct->core_of[g]];
            double ready = (last > t_in ? last : t_in) +
                           (ct->source[g] && !ct->relay[g] ? 0 : L->spike_out);
            if (ready > step_done)
                step_done = ready;
            mspan *sp = ct->spans;
            size_t ns = msg_spans(ct, g, sp);
            for (size_t sq = 0; sq < ns; sq++)
                for (size_t m = 0; m < sp[sq].n; m++) {
                    int32_t edge = sp[sq].edge ? sp[sq].edge[m] : sp[sq].e;
                    int pre, post, syn;
                    int64_t delay;
                    ct->G.edge(ct->G.user, edge, &pre, &post, &syn, &delay);
                    amsgv *q = &ct->pending[post];
                    amsg *v = nesim_grown(q->v, q->n + 1, &q->cap, sizeof *v, 64);
                    if (!v)
                        return -1;
                    q->v = v;
                    q->v[q->n++] = (amsg){.arrive = ready + L->message_out + hop_time(ct, ct->core_of[g], sp[sq].core[m]),
                                          .work = sp[sq].work[m], .core = sp[sq].core[m], .src = g, .edge = edge,
                                          .seq = ct->seq++};
                }
        }
    }
    /* messages to groups earlier in the order (recurrent wiring) wait for the next step's turn */
    if (step_done > ct->done_max)
        ct->done_max = step_done;
    *out = step_done - t_in;
    return 0;
}

/* Graph parts: the passive neurons given input at step s, from every rank's
 * own marks (ring: this rank's), into *all (n of them; global ids, each once:
 * a neuron is on one rank's part, and a rank's threads share its part, so
 * only the first of them gives). A collective of G.merge: one allgather of
 * each rank's count and first MARKS_INLINE marks, an allgatherv of the rest
 * when some rank has more. */
static int gather_marks(nesim_chiptime *ct, int64_t s, const u32v *ring, const uint32_t **all, size_t *n,
                        nesim_error *err)
{
    nesim_comm *comm = ct->G.merge;
    const int K = nesim_comm_size(comm);
    const size_t blk = 1 + MARKS_INLINE;
    u32v *mine = &ct->part_marks;
    mine->n = 0;
    for (size_t k = 0; ct->G.merge_give && k < ring->n; k++)
        if (ct->counted_at[ring->v[k]] != s) { /* room for every neuron: build */
            ct->counted_at[ring->v[k]] = s;
            mine->v[mine->n++] = ring->v[k];
        }
    uint32_t *got = ct->mark_blk, *own = got + (size_t)K * blk;
    const size_t inl = mine->n < MARKS_INLINE ? mine->n : MARKS_INLINE;
    own[0] = (uint32_t)mine->n; /* neurons of this rank: < 2^32 */
    if (inl)
        memcpy(own + 1, mine->v, inl * sizeof *own);
    int rc = nesim_comm_allgather(comm, own, blk * sizeof *own, got, "the chip time's input marks", err);
    if (rc)
        return rc;
    size_t total = 0;
    int over = 0;
    for (int r = 0; r < K; r++) {
        total += got[(size_t)r * blk];
        over |= got[(size_t)r * blk] > MARKS_INLINE;
    }
    const unsigned char *rest = NULL;
    if (over) {
        for (int r = 0; r < K; r++) {
            uint32_t c = got[(size_t)r * blk];
            ct->mark_bytes[r] = (c > MARKS_INLINE ? c - MARKS_INLINE : 0) * sizeof(uint32_t);
        }
        const void *v;
        if ((rc = nesim_comm_allgatherv(comm, mine->v + inl, ct->mark_bytes, &v, "the chip time's input marks", err)))
            return rc;
        rest = v;
    }
    if (total > ct->gathered.cap) /* every neuron at most once: a peer out of step */
        return nesim_fail(err, NESIM_EIO, "chip time: %zu input marks gathered for %u neurons", total, ct->N);
    u32v *out = &ct->gathered;
    out->n = 0;
    for (int r = 0; r < K; r++) {
        const uint32_t *b = got + (size_t)r * blk;
        for (uint32_t k = 0; k < b[0] && k < MARKS_INLINE; k++)
            out->v[out->n++] = b[1 + k];
        for (uint32_t k = MARKS_INLINE; k < b[0]; k++, rest += sizeof(uint32_t))
            memcpy(&out->v[out->n++], rest, sizeof *out->v);
    }
    *all = out->v;
    *n = total;
    return NESIM_OK;
}

/* Prices step s from its spikes (ct->fired) and the input reaching it. */
static int close_step(nesim_chiptime *ct, int64_t s, nesim_error *err)
{
    const nesim_chip_latency *L = &ct->L;
    const uint32_t *fired = ct->fired.v;
    size_t nf = ct->fired.n;
    /* passive neurons given input now (by this step's spikes too, over edges of delay 0) */
    if (ct->any_passive) {
        for (size_t k = 0; k < nf; k++)
            if (mark_targets(ct, fired[k], s))
                return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        u32v *ring = &ct->ring[s % ct->ring_n];
        const uint32_t *marks = ring->v;
        size_t n_marks = ring->n;
        if (ct->G.merge) { /* every rank's marks, in a step some spike's input reaches */
            int rc = ct->may[s % ct->ring_n] ? gather_marks(ct, s, ring, &marks, &n_marks, err) : NESIM_OK;
            if (rc)
                return rc;
            ct->may[s % ct->ring_n] = 0;
            if (ct->parts > 1 && s % ct->parts != ct->part)
                n_marks = 0; /* another member times this step */
        }
        for (size_t k = 0; k < n_marks; k++) {
            uint32_t h = marks[k];
            if (ct->counted_at[h] == s && !ct->G.merge)
                continue;
            ct->counted_at[h] = s;
            uint32_t c = ct->core_of[h];
            ct->touched_n[c]++;
            mark_active(ct, c);
            if (ct->core_touched && u32v_push(&ct->core_touched[c], ct->slot[h]))
                return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        }
        ring->n = 0;
    }
    for (size_t k = 0; k < nf; k++)
        ct->r.messages += msg_count(ct, fired[k]);
    double t;
    uint64_t crit = ct->base_core;
    nesim_ct_bound bound = NESIM_CT_GEN;
    int mine = 1;
    if (ct->model == NESIM_TIMING_ASYNC) {
        if (async_step(ct, s, ct->fired.v, nf, &t))
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        bound = NESIM_CT_NET;
    } else if (ct->parts > 1 && s % ct->parts != ct->part) {
        mine = 0; /* another member times this step */
        t = 0;
    } else if (!nf && !ct->active_cores.n) {
        t = ct->base_max; /* a silent step: the neuron pass alone */
    } else if (ct->model == NESIM_TIMING_SIMPLE) {
        for (size_t k = 0; k < nf; k++) {
            uint32_t g = fired[k], c = ct->core_of[g];
            uint64_t nm = msg_count(ct, g);
            ct->gen[c] += (ct->source[g] && !ct->relay[g] ? 0 : L->spike_out) + (double)nm * L->message_out;
            mark_active(ct, c);
            mspan *sp = ct->spans;
            size_t ns = msg_spans(ct, g, sp);
            for (size_t q = 0; q < ns; q++)
                for (size_t m = 0; m < sp[q].n; m++) {
                    ct->recv[sp[q].core[m]] += sp[q].work[m];
                    mark_active(ct, sp[q].core[m]);
                }
        }
        t = ct->base_max;
        for (size_t a = 0; a < ct->active_cores.n; a++) {
            uint32_t c = ct->active_cores.v[a];
            double gen = ct->base[c] + ct->gen[c] + (double)ct->touched_n[c] * L->neuron_update;
            if (gen > t || (gen == t && c < crit))
                t = gen, crit = c, bound = NESIM_CT_GEN;
            if (ct->recv[c] > t || (ct->recv[c] == t && c < crit && bound == NESIM_CT_RECV))
                t = ct->recv[c], crit = c, bound = NESIM_CT_RECV;
        }
    } else if (detailed_step(ct, fired, nf, &t, &crit, &bound)) {
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    }
    int rc = mine ? keep_step(ct, s, t, crit, bound) : 0;
    /* clear what this step touched */
    for (size_t a = 0; a < ct->active_cores.n; a++) {
        uint32_t c = ct->active_cores.v[a];
        ct->gen[c] = ct->recv[c] = ct->core_free[c] = 0;
        ct->touched_n[c] = 0;
        ct->active[c] = 0;
        if (ct->core_touched)
            ct->core_touched[c].n = 0;
    }
    ct->active_cores.n = 0;
    for (size_t k = 0; k < ct->used_links.n; k++) {
        uint32_t l = ct->used_links.v[k];
        ct->busy_until[l] = ct->busy_sum[l] = 0;
        ct->occ[l] = 0;
        ct->lused[l] = 0;
        ct->qhead[l] = ct->qtail[l] = -1;
    }
    ct->used_links.n = 0;
    ct->n_msgs = 0;
    ct->fired.n = 0;
    return rc ? nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory") : NESIM_OK;
}

/* Closes every step before `upto`. */
static int close_until(nesim_chiptime *ct, int64_t upto, nesim_error *err)
{
    while (ct->next_step < upto) {
        int64_t s = ct->next_step++;
        if (s != ct->open_step)
            ct->fired.n = 0;
        int rc = close_step(ct, s, err);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

static int step_now(nesim_chiptime *ct, int64_t t, const uint32_t *ids, size_t n, nesim_error *err);

/* Shared: times the held block (its spikes, then every step of it before cap). */
static int flush_block(nesim_chiptime *ct, int64_t cap, nesim_error *err)
{
    if (!ct->n_pend)
        return NESIM_OK;
    int64_t end = (ct->pend[0].t / ct->parts + 1) * ct->parts;
    int rc = NESIM_OK;
    for (size_t a = 0; a < ct->n_pend && !rc;) {
        size_t b = a;
        while (b < ct->n_pend && ct->pend[b].t == ct->pend[a].t)
            b++;
        for (size_t q = a; q < b && !rc; q++)
            rc = step_now(ct, ct->pend[q].t, &ct->pend[q].id, 1, err);
        a = b;
    }
    ct->n_pend = 0;
    return rc ? rc : close_until(ct, end < cap ? end : cap, err);
}

int nesim_chiptime_step(nesim_chiptime *ct, int64_t t, const uint32_t *ids, size_t n, nesim_error *err)
{
    if (ct->parts <= 1)
        return step_now(ct, t, ids, n, err);
    int64_t last = ct->n_pend ? ct->pend[ct->n_pend - 1].t : -1;
    if (t < ct->next_step || t < last || t < ct->open_step)
        return nesim_fail(err, NESIM_EINVAL, "chip time: step %lld after step %lld", (long long)t,
                          (long long)(last > ct->next_step - 1 ? last : ct->next_step - 1));
    int rc = NESIM_OK;
    if (ct->n_pend && t / ct->parts != ct->pend[0].t / ct->parts && (rc = flush_block(ct, INT64_MAX, err)))
        return rc;
    for (size_t k = 0; k < n; k++) {
        struct ct_pend *v = nesim_grown(ct->pend, ct->n_pend + 1, &ct->cap_pend, sizeof *v, 4096);
        if (!v)
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
        ct->pend = v;
        ct->pend[ct->n_pend++] = (struct ct_pend){t, ids[k]};
    }
    return NESIM_OK;
}

static int step_now(nesim_chiptime *ct, int64_t t, const uint32_t *ids, size_t n, nesim_error *err)
{
    if (t < ct->next_step || t < ct->open_step)
        return nesim_fail(err, NESIM_EINVAL, "chip time: step %lld after step %lld", (long long)t,
                          (long long)(ct->open_step > ct->next_step - 1 ? ct->open_step : ct->next_step - 1));
    if (t != ct->open_step) {
        int rc = close_until(ct, ct->open_step + 1 > ct->next_step ? ct->open_step + 1 : ct->next_step, err);
        if (!rc)
            rc = close_until(ct, t, err);
        if (rc)
            return rc;
        ct->open_step = t;
    }
    for (size_t k = 0; k < n; k++) {
        if (ids[k] >= ct->N)
            return nesim_fail(err, NESIM_EINVAL, "chip time: no neuron %u", ids[k]);
        if (u32v_push(&ct->fired, ids[k]))
            return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    }
    return NESIM_OK;
}

void nesim_chiptime_set_input_dt(nesim_chiptime *ct, double seconds)
{
    if (seconds > 0)
        ct->input_dt = seconds;
}

void nesim_chiptime_share(nesim_chiptime *ct, int part, int parts)
{
    if (ct->model == NESIM_TIMING_ASYNC || parts <= 1 || part < 0 || part >= parts || ct->next_step > 0)
        return; /* asynchronous time runs across steps: one member keeps it all */
    ct->part = part, ct->parts = parts;
}

/* Shared: every member's records, each step in its place, added in step order. */
static int gather_steps(nesim_chiptime *ct, nesim_comm *comm, nesim_error *err)
{
    int K = nesim_comm_size(comm);
    if (K != ct->parts)
        return nesim_fail(err, NESIM_EINVAL, "chip time: shared over %d parts but gathered over %d ranks", ct->parts, K);
    int64_t steps = ct->next_step;
    ct_rec *all = malloc((size_t)(steps ? steps : 1) * sizeof *all);
    const void *got;
    size_t total;
    int rc = gather_items(comm, all ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory"), ct->recs,
                          ct->n_recs, sizeof(ct_rec), &got, &total, "the chip time's steps", err);
    if (!rc) {
        for (int64_t s = 0; s < steps; s++)
            all[s].s = -1;
        const unsigned char *p = got;
        for (size_t k = 0; k < total; k++, p += sizeof(ct_rec)) {
            ct_rec q;
            memcpy(&q, p, sizeof q);
            if (q.s >= 0 && q.s < steps)
                all[q.s] = q;
        }
        for (int64_t s = 0; s < steps && !rc; s++)
            if (all[s].s != s)
                rc = nesim_fail(err, NESIM_EIO, "chip time: no rank timed step %lld", (long long)s);
            else if (record_step(ct, &all[s]))
                rc = nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    }
    free(all);
    return rc;
}

int nesim_chiptime_finish(nesim_chiptime *ct, int64_t steps, nesim_chiptime_result *r, nesim_error *err)
{
    return nesim_chiptime_finish_shared(ct, steps, NULL, r, err);
}

int nesim_chiptime_finish_shared(nesim_chiptime *ct, int64_t steps, nesim_comm *comm, nesim_chiptime_result *r,
                                 nesim_error *err)
{
    int rc = ct->parts > 1 ? flush_block(ct, steps, err) : NESIM_OK;
    if (!rc)
        rc = close_until(ct, steps, err);
    if (rc)
        return rc;
    if (ct->parts > 1 && (rc = gather_steps(ct, comm, err)))
        return rc;
    ct->r.steps = ct->next_step;
    ct->r.mean_s = ct->r.steps ? ct->r.total_s / (double)ct->r.steps : 0;
    if (ct->model == NESIM_TIMING_ASYNC) { /* chip time is the time elapsed, not a sum of steps */
        double window = (double)ct->next_step * ct->input_dt;
        ct->r.elapsed_s = ct->done_max > window ? ct->done_max : window;
        ct->r.total_s = ct->r.elapsed_s;
    }
    ct->r.step_s = ct->step_s;
    *r = ct->r;
    return NESIM_OK;
}

double nesim_chiptime_span_s(const nesim_chiptime_result *r, int64_t t0, int64_t t1)
{
    double s = 0;
    for (int64_t k = t0 < 0 ? 0 : t0; k < t1 && k < r->steps; k++)
        s += r->step_s[k];
    return s;
}

int nesim_ct_feed_spike(nesim_ct_feed *f, int64_t tick, uint32_t id, nesim_error *err)
{
    uint64_t *b = nesim_grown(f->buf, f->n + 1, &f->cap, sizeof *b, 4096);
    if (!b)
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    f->buf = b;
    f->buf[f->n++] = (uint64_t)tick << 32 | id;
    return NESIM_OK;
}

int nesim_ct_feed_flush(nesim_ct_feed *f, nesim_chiptime *ct, nesim_error *err)
{
    if (f->n > 1)
        qsort(f->buf, f->n, sizeof *f->buf, cmp_u64);
    int rc = NESIM_OK;
    for (size_t a = 0; a < f->n && !rc;) {
        int64_t t = (int64_t)(f->buf[a] >> 32);
        size_t b = a;
        while (b < f->n && (int64_t)(f->buf[b] >> 32) == t)
            b++;
        if (b - a > f->ids_cap) {
            uint32_t *v = realloc(f->ids, (b - a) * sizeof *v);
            if (!v) {
                rc = nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
                break;
            }
            f->ids = v, f->ids_cap = b - a;
        }
        for (size_t q = a; q < b; q++)
            f->ids[q - a] = (uint32_t)f->buf[q];
        rc = nesim_chiptime_step(ct, t, f->ids, b - a, err);
        a = b;
    }
    f->n = 0;
    return rc;
}

int nesim_ct_feed_window(nesim_ct_feed *f, int64_t key, int64_t t0, int64_t steps, nesim_error *err)
{
    int64_t *w = nesim_grown(f->win, f->n_win + 1, &f->cap_win, 3 * sizeof *w, 256); /* (key, t0, steps) each */
    if (!w)
        return nesim_fail(err, NESIM_ENOMEM, "chip time: out of memory");
    f->win = w;
    f->win[3 * f->n_win] = key, f->win[3 * f->n_win + 1] = t0, f->win[3 * f->n_win + 2] = steps;
    f->n_win++;
    return NESIM_OK;
}

double nesim_ct_feed_window_s(const nesim_ct_feed *f, const nesim_chiptime_result *r, int64_t key)
{
    double s = 0;
    for (size_t w = 0; w < f->n_win; w++)
        if (f->win[3 * w] == key)
            s += nesim_chiptime_span_s(r, f->win[3 * w + 1], f->win[3 * w + 1] + f->win[3 * w + 2]);
    return s;
}

void nesim_ct_feed_free(nesim_ct_feed *f)
{
    free(f->buf), free(f->ids), free(f->win);
    memset(f, 0, sizeof *f);
}

/* The chip-time section of a report: per step, per run, throughput and the
 * energy-delay product. */
json_t *nesim_chiptime_json(const nesim_chiptime_result *c, nesim_timing model, double energy_j)
{
    static const char *const bounds[] = {"neuron pass", "receiving", "network"};
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(nesim_timing_name(model)));
    json_object_set_new(o, "steps", json_integer(c->steps));
    json_object_set_new(o, "total_s", json_real(c->total_s));
    json_object_set_new(o, "mean_step_s", json_real(c->mean_s));
    json_object_set_new(o, "max_step_s", json_real(c->max_s));
    json_object_set_new(o, "max_step", json_integer(c->max_step));
    if (model == NESIM_TIMING_ASYNC) /* steps are latencies; chip time is the time elapsed */
        json_object_set_new(o, "elapsed_s", json_real(c->elapsed_s));
    json_object_set_new(o, "critical_core", json_integer((json_int_t)c->critical_core));
    json_object_set_new(o, "bound", json_string(bounds[c->bound]));
    if (c->link_dir) {
        json_t *l = json_object();
        json_object_set_new(l, "x", json_integer((json_int_t)c->link_x));
        json_object_set_new(l, "y", json_integer((json_int_t)c->link_y));
        json_object_set_new(l, "dir", json_string(c->link_dir));
        json_object_set_new(l, "busy_s", json_real(c->link_busy_s));
        json_object_set_new(o, "busiest_link", l);
    }
    json_object_set_new(o, "sync_s", json_real(c->sync_s));
    json_object_set_new(o, "routers", json_integer((json_int_t)c->routers));
    json_object_set_new(o, "messages", json_integer((json_int_t)c->messages));
    if (model == NESIM_TIMING_DETAILED)
        json_object_set_new(o, "queued_s", json_real(c->blocked_s));
    json_object_set_new(o, "steps_per_s", json_real(c->total_s > 0 ? (double)c->steps / c->total_s : 0));
    if (energy_j >= 0)
        json_object_set_new(o, "energy_delay_js", json_real(energy_j * c->total_s));
    return o;
}

