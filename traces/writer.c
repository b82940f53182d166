/* writer.c — streaming a run into a trace without stalling the simulation.
 *
 * Guarantees:
 * - The producer (the simulation's thread) only appends to an in-memory
 *   batch: a spike is a few range checks and a 16-byte store. When the batch is
 *   full it is handed to the writer thread; the producer waits only when
 *   two batches are already pending (one being committed, one queued), so
 *   memory is bounded by three batches.
 * - The writer thread commits each batch in ONE transaction (BEGIN
 *   IMMEDIATE ... COMMIT) with prepared statements: layers added since the
 *   last batch, then spikes, activity, samples, metrics, energy. A batch is
 *   therefore either entirely in the file or not at all: after SIGKILL the
 *   committed batches are intact and the run still says 'running'.
 * - The run's status, end time, extent and per-layer totals are written in
 *   the last transaction, so 'complete' implies all data is there.
 * - Spikes leave the writer grouped per (layer, tick), neurons ascending,
 *   whatever order the producer appended them in (see store.h for the row
 *   format). Groups longer than CHUNK bytes of text are split into parts so
 *   no row overflows a 4 KiB page.
 * - After any failure the run is marked 'failed' (best effort) and the first
 *   error is returned by nesim_trace_end_run; later batches are discarded so
 *   the producer never blocks on a dead writer.
 */
#include "traces/store_internal.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "traces/sha256.h"
#include "base/mem.h"

#define DEFAULT_BATCH_SPIKES ((size_t)1 << 18) /* 4 MiB of spikes per batch */
#define MIN_BATCH_SPIKES 16
#define MAX_BATCH_SPIKES ((size_t)1 << 26)
#define MAX_LAYERS 65535       /* trace_spike.layer is 16 bits */
#define RARE_SOFT_CAP 65536    /* samples + metrics + energy per batch before a hand-over */
/* Text bytes per spike_groups or activity_blocks row before it is cut: with
 * the key columns the record stays under SQLite's ~4000-byte local payload
 * limit for index b-trees on the 16 KiB pages traces are created with
 * (store.c), so no row spills into overflow pages. Measured
 * (bench/trace_write): 880-byte rows on 4 KiB pages store 17 M spikes/s
 * dense and 7.9 M sparse; 3600-byte rows on 16 KiB pages 23 M and 12 M. */
#define CHUNK 3600
#define ROWS_PER_INSERT 64     /* rows per multi-row INSERT: fewer statement executions */
#define NBATCH 3
#define HEARTBEAT_S 5          /* seconds between heartbeats of a quiet run */

/* A row of spike_groups or activity_blocks waiting for its INSERT. */
typedef struct trace_row {
    int layer;
    int64_t tick, part, span, n, sops; /* n: spikes (the row's, or the block's total) */
    size_t off, len;                   /* its text in the arena; len 0: NULL */
} trace_row;

/* The writer's view of a layer: its size (the stride of a row's elements)
 * and, per table (spike_groups, activity_blocks), the start tick of its
 * latest row and the next part for that tick. */
typedef struct trace_wl {
    int64_t neurons;
    int64_t last_tick[2], next_part[2];
} trace_wl;

struct trace_writer {
    nesim_trace *t;
    int64_t run;
    nesim_trace_level level;
    size_t batch_spikes, act_soft_cap;

    /* ---- producer side (the thread that began the run) ---- */
    trace_batch *fill;
    int n_layers, cap_layers;
    int64_t *neurons;        /* per layer */
    char **names;            /* per layer, for the uniqueness check */
    trace_totals *totals;    /* per layer, from activity; read by the writer in the final batch */
    trace_totals *counted;   /* per layer, from spike calls: the fallback when activity never came */
    trace_pending_act *pend; /* per layer: activity of the current tick */
    int64_t max_sample, max_tick;
    int64_t ext_samples, ext_ticks;
    int pcode;               /* first producer-side failure */
    nesim_error perr;
    int64_t waits;
    double wait_s;

    /* ---- shared, under mu ---- */
    pthread_mutex_t mu;
    pthread_cond_t work, space;
    trace_batch *head, *tail; /* queued batches */
    int pending;              /* queued + being written */
    trace_batch *free_list;
    pthread_t thread;
    bool thread_started;
    atomic_int wcode;         /* first writer failure (werr is written before it) */
    nesim_error werr;
    _Atomic int64_t st_batches, st_spikes, st_rows;

    /* ---- writer side ---- */
    sqlite3_stmt *st_layer, *st_group1, *st_groupN, *st_maxpart, *st_actmaxpart, *st_act, *st_actN, *st_sample, *st_metric,
        *st_energy, *st_totals, *st_end, *st_code, *st_beat, *st_chip;
    double *chip_s;           /* producer side: chip time per tick, written with the final batch */
    int64_t n_chip;
    bool in_txn;              /* a transaction spans the batches since the last commit */
    char checksum[17];        /* producer side: the run's spike checksum, "" if none */
    trace_spike *scratch;
    size_t *counts;
    size_t cap_counts;
    trace_act *ascratch;
    size_t cap_ascratch;
    trace_wl *wl;             /* per layer: neurons and where its rows stand */
    int cap_wl;
    char *arena;
    size_t arena_len;
    trace_row rows[ROWS_PER_INSERT];
    int n_rows, row_kind;
};

static const char *const status_sql[] = {"running", "complete", "failed", "interrupted"};

/* ---------------------------------------------------------------- helpers */

static int writer_status(const trace_writer *w)
{
    if (w->pcode)
        return w->pcode;
    return atomic_load_explicit(&w->wcode, memory_order_acquire);
}

/* Records the first producer-side failure; later ones are dropped. */
static int pfail(trace_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pfail(trace_writer *w, int code, const char *fmt, ...)
{
    if (!w->pcode) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        nesim_fail(&w->perr, code, "%s: run %lld: %s", w->t->path, (long long)w->run, msg);
        w->pcode = code;
    }
    return w->pcode;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    void *q = nesim_grown(*p, need, cap, elem, 64);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

static void batch_reset(trace_batch *b)
{
    for (size_t i = 0; i < b->n_metrics; i++)
        free(b->metrics[i].name);
    b->n_codes = 0;
    for (size_t i = 0; i < b->n_energy; i++)
        free(b->energy[i].name);
    for (size_t i = 0; i < b->n_layers; i++) {
        free(b->layers[i].name);
        free(b->layers[i].type);
        free(b->layers[i].coding);
    }
    b->n_spikes = b->n_act = b->n_samples = b->n_metrics = b->n_energy = b->n_layers = 0;
    b->final = false;
    b->synced = false;
    b->next = NULL;
}

static void batch_free(trace_batch *b)
{
    if (!b)
        return;
    batch_reset(b);
    free(b->spikes);
    free(b->act);
    free(b->samples);
    free(b->codes);
    free(b->metrics);
    free(b->energy);
    free(b->layers);
    free(b);
}

static bool batch_empty(const trace_batch *b)
{
    return !b->n_spikes && !b->n_act && !b->n_samples && !b->n_metrics && !b->n_energy && !b->n_layers &&
           !b->n_codes;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --------------------------------------------------------- writer thread */

static void wfail(trace_writer *w, const char *what)
{
    if (atomic_load(&w->wcode))
        return;
    int rc = sqlite3_errcode(w->t->db) & 0xff;
    int code = rc == SQLITE_FULL || rc == SQLITE_IOERR ? NESIM_EIO : NESIM_EINTERNAL;
    nesim_fail(&w->werr, code, "%s: run %lld: %s: %s", w->t->path, (long long)w->run, what,
               sqlite3_errmsg(w->t->db));
    atomic_store_explicit(&w->wcode, code, memory_order_release);
}

static void wfail_msg(trace_writer *w, int code, const char *msg)
{
    if (atomic_load(&w->wcode))
        return;
    nesim_fail(&w->werr, code, "%s: run %lld: %s", w->t->path, (long long)w->run, msg);
    atomic_store_explicit(&w->wcode, code, memory_order_release);
}

static int step_done(trace_writer *w, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        wfail(w, what);
        return -1;
    }
    return 0;
}

/* Decimal digits of v into p; returns the length. */
static size_t fmt_i64(char *p, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10));
    size_t k = 0;
    if (v < 0)
        p[k++] = '-';
    while (n)
        p[k++] = tmp[--n];
    return k;
}

/* The largest .layer of items src[0 .. n) into maxl (0 when none). */
#define MAX_LAYER(src, n, maxl)                                                                   \
    do {                                                                                          \
        (maxl) = 0;                                                                               \
        for (size_t i_ = 0; i_ < (n); i_++)                                                       \
            if ((src)[i_].layer > (maxl))                                                         \
                (maxl) = (src)[i_].layer;                                                         \
    } while (0)

/* Copies items src[0 .. n) into dst grouped by .layer, each layer's in
 * their order (a stable counting sort: O(n)); afterwards w->counts[l] is the
 * end of layer l in dst, for l <= maxl (w->counts holds maxl + 2). A macro:
 * spikes and activity entries are different types, copied by assignment. */
#define GROUP_BY_LAYER(w, src, n, dst, maxl)                                                      \
    do {                                                                                          \
        memset((w)->counts, 0, ((size_t)(maxl) + 2) * sizeof *(w)->counts);                       \
        for (size_t i_ = 0; i_ < (n); i_++)                                                       \
            (w)->counts[(src)[i_].layer + 1]++;                                                   \
        for (int l_ = 0; l_ <= (maxl); l_++)                                                      \
            (w)->counts[l_ + 1] += (w)->counts[l_];                                               \
        /* counts[l] is now the start of layer l; advance copies as we scatter */                 \
        for (size_t i_ = 0; i_ < (n); i_++)                                                       \
            (dst)[(w)->counts[(src)[i_].layer]++] = (src)[i_];                                    \
    } while (0)

/* Rows waiting in w->rows are all of one table (kind): spike_groups rows
 * bind (run, layer, tick, part, span, n, neurons), activity_blocks rows
 * (run, layer, tick, part, span, spikes, sops, per_tick). */
enum { ROW_SPIKES, ROW_ACT };

static int flush_rows(trace_writer *w)
{
    int kind = w->row_kind, nb = kind == ROW_SPIKES ? 7 : 8, i = 0;
    sqlite3_stmt *multi = kind == ROW_SPIKES ? w->st_groupN : w->st_actN;
    sqlite3_stmt *one = kind == ROW_SPIKES ? w->st_group1 : w->st_act;
    const char *what = kind == ROW_SPIKES ? "storing spikes" : "storing activity";
    for (; i < w->n_rows; i++) {
        sqlite3_stmt *st = w->n_rows == ROWS_PER_INSERT ? multi : one;
        int b = st == multi ? nb * i : 0;
        const trace_row *r = &w->rows[i];
        sqlite3_bind_int64(st, b + 1, w->run);
        sqlite3_bind_int(st, b + 2, r->layer);
        sqlite3_bind_int64(st, b + 3, r->tick);
        sqlite3_bind_int64(st, b + 4, r->part);
        sqlite3_bind_int64(st, b + 5, r->span);
        sqlite3_bind_int64(st, b + 6, r->n);
        if (kind == ROW_ACT)
            sqlite3_bind_int64(st, b + 7, r->sops);
        if (r->len)
            sqlite3_bind_text(st, b + nb, w->arena + r->off, (int)r->len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, b + nb);
        if ((st == one || i == ROWS_PER_INSERT - 1) && step_done(w, st, what))
            return -1;
    }
    if (kind == ROW_SPIKES)
        atomic_fetch_add(&w->st_rows, w->n_rows);
    w->n_rows = 0;
    w->arena_len = 0;
    return 0;
}

static int grow_wl(trace_writer *w, int layers)
{
    if (layers <= w->cap_wl)
        return 0;
    int nc = w->cap_wl ? w->cap_wl : 16;
    while (nc < layers)
        nc *= 2;
    trace_wl *a = realloc(w->wl, (size_t)nc * sizeof *a);
    if (!a)
        return -1;
    w->wl = a;
    for (int i = w->cap_wl; i < nc; i++)
        w->wl[i] = (trace_wl){.neurons = 0, .last_tick = {-1, -1}, .next_part = {0, 0}};
    w->cap_wl = nc;
    return 0;
}

/* The first part number for a new row of (layer, tick) in a table. Rows of
 * one batch start at distinct (tick, part), so a row can only collide with
 * rows of earlier batches: a tick continued across a batch boundary (the
 * usual case, known without a query) or an out-of-order tick (asked of the
 * database). */
static int64_t first_part(trace_writer *w, int kind, int layer, int64_t tick)
{
    trace_wl *L = &w->wl[layer];
    if (tick > L->last_tick[kind])
        return 0;
    if (tick == L->last_tick[kind])
        return L->next_part[kind];
    if (w->n_rows && flush_rows(w))
        return -1;
    sqlite3_stmt *st = kind == ROW_SPIKES ? w->st_maxpart : w->st_actmaxpart;
    sqlite3_bind_int64(st, 1, w->run);
    sqlite3_bind_int(st, 2, layer);
    sqlite3_bind_int64(st, 3, tick);
    int64_t part = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        part = sqlite3_column_int64(st, 0);
    else
        wfail(w, kind == ROW_SPIKES ? "reading spike parts" : "reading activity parts");
    sqlite3_reset(st);
    return part;
}

/* Appends one row to w->rows: its text is what was formatted at w->arena +
 * w->arena_len, len bytes (0: NULL); part from row_room. */
static void add_row(trace_writer *w, int kind, int layer, int64_t tick, int64_t part, int64_t span, int64_t n,
                    int64_t sops, size_t len)
{
    trace_wl *L = &w->wl[layer];
    if (tick >= L->last_tick[kind]) {
        L->last_tick[kind] = tick;
        L->next_part[kind] = part + 1;
    }
    w->rows[w->n_rows++] = (trace_row){.layer = layer, .tick = tick, .part = part, .span = span, .n = n,
                                       .sops = sops, .off = w->arena_len, .len = len};
    w->arena_len += len;
}

/* Makes room for one more row of (layer, tick) (flushing the waiting rows
 * when the buffer is full) and returns its part, or -1 on failure. Call it
 * before formatting the row's text: finding the part may flush the arena. */
static int64_t row_room(trace_writer *w, int kind, int layer, int64_t tick)
{
    if (w->n_rows && (w->n_rows == ROWS_PER_INSERT || w->row_kind != kind) && flush_rows(w))
        return -1;
    w->row_kind = kind;
    return first_part(w, kind, layer, tick);
}

/* Writes one layer's spikes, ordered by (tick, neuron), as rows of at most
 * TRACE_MAX_SPAN ticks and about CHUNK bytes: element v of a row starting at
 * tick t0 is u = (tick - t0) * neurons + neuron, or -1 - u for sign -1. */
static int emit_spikes(trace_writer *w, int layer, const trace_spike *s, size_t m)
{
    int64_t N = w->wl[layer].neurons;
    for (size_t i = 0; i < m;) {
        int64_t t0 = s[i].tick, cnt = 0, last = t0, part = row_room(w, ROW_SPIKES, layer, t0);
        if (part < 0)
            return -1;
        char *start = w->arena + w->arena_len, *p = start;
        *p++ = '[';
        while (i < m && p - start < CHUNK && s[i].tick - t0 < TRACE_MAX_SPAN) {
            if (cnt)
                *p++ = ',';
            int64_t u = (s[i].tick - t0) * N + (int64_t)s[i].neuron;
            p += fmt_i64(p, s[i].sign > 0 ? u : -1 - u);
            last = s[i].tick;
            cnt++, i++;
        }
        *p++ = ']';
        add_row(w, ROW_SPIKES, layer, t0, part, last - t0 + 1, cnt, 0, (size_t)(p - start));
    }
    return 0;
}

static int cmp_tick_neuron(const void *a, const void *b)
{
    const trace_spike *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

static int cmp_neuron(const void *a, const void *b)
{
    const trace_spike *x = a, *y = b;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

static void sort_by_neuron(trace_spike *s, size_t n)
{
    if (n > 24) {
        qsort(s, n, sizeof *s, cmp_neuron);
        return;
    }
    for (size_t i = 1; i < n; i++) { /* small groups: insertion sort beats qsort's call overhead */
        trace_spike x = s[i];
        size_t j = i;
        for (; j > 0 && s[j - 1].neuron > x.neuron; j--)
            s[j] = s[j - 1];
        s[j] = x;
    }
}

/* Groups the batch's spikes by layer (a stable counting sort: O(n)), then
 * orders each layer by (tick, neuron) — usually already true or true up to
 * the order within a tick, which is checked first so sorted input costs one
 * pass — and writes the layer's rows. */
static int write_spikes(trace_writer *w, trace_batch *b)
{
    size_t n = b->n_spikes;
    if (!n)
        return 0;
    int maxl;
    MAX_LAYER(b->spikes, n, maxl);
    if (grow((void **)&w->counts, &w->cap_counts, (size_t)maxl + 2, sizeof *w->counts)) {
        wfail_msg(w, NESIM_ENOMEM, "out of memory");
        return -1;
    }
    GROUP_BY_LAYER(w, b->spikes, n, w->scratch, maxl);
    size_t seg = 0;
    for (int l = 0; l <= maxl; l++) {
        size_t end = w->counts[l]; /* after scattering: end of layer l */
        trace_spike *s = w->scratch + seg;
        size_t m = end - seg;
        seg = end;
        if (!m)
            continue;
        bool ticks_sorted = true, all_sorted = true;
        for (size_t i = 1; i < m; i++) {
            if (s[i].tick < s[i - 1].tick) {
                ticks_sorted = false;
                break;
            }
            if (s[i].tick == s[i - 1].tick && s[i].neuron < s[i - 1].neuron)
                all_sorted = false;
        }
        if (!ticks_sorted)
            qsort(s, m, sizeof *s, cmp_tick_neuron);
        else if (!all_sorted)
            for (size_t a = 0; a < m;) {
                size_t c = a + 1;
                while (c < m && s[c].tick == s[a].tick)
                    c++;
                sort_by_neuron(s + a, c - a);
                a = c;
            }
        if (emit_spikes(w, l, s, m))
            return -1;
    }
    if (w->n_rows && flush_rows(w))
        return -1;
    atomic_fetch_add(&w->st_spikes, (int64_t)n);
    return 0;
}

static int cmp_act_tick(const void *a, const void *b)
{
    const trace_act *x = a, *y = b;
    return (x->tick > y->tick) - (x->tick < y->tick);
}

/* Writes one layer's activity, ordered by tick with each tick once, as rows
 * of at most TRACE_MAX_SPAN ticks: a row of one tick holds its counts; a
 * longer one its totals, and per_tick = [[dt, spikes, sops], ...]. */
static int emit_act(trace_writer *w, int layer, const trace_act *a, size_t m)
{
    for (size_t i = 0; i < m;) {
        int64_t t0 = a[i].tick, spikes = 0, sops = 0, last = t0, part = row_room(w, ROW_ACT, layer, t0);
        if (part < 0)
            return -1;
        char *start = w->arena + w->arena_len, *p = start;
        size_t first = i;
        *p++ = '[';
        while (i < m && p - start < CHUNK && a[i].tick - t0 < TRACE_MAX_SPAN) {
            if (i > first)
                *p++ = ',';
            *p++ = '[';
            p += fmt_i64(p, a[i].tick - t0);
            *p++ = ',';
            p += fmt_i64(p, a[i].spikes);
            *p++ = ',';
            p += fmt_i64(p, a[i].sops);
            *p++ = ']';
            spikes += a[i].spikes, sops += a[i].sops, last = a[i].tick;
            i++;
        }
        *p++ = ']';
        size_t len = i - first > 1 ? (size_t)(p - start) : 0;
        add_row(w, ROW_ACT, layer, t0, part, last - t0 + 1, spikes, sops, len);
    }
    return 0;
}

/* The batch's activity, grouped by layer like spikes; within a layer sorted
 * by tick and one entry per tick (counts of a tick reported twice add up). */
static int write_act(trace_writer *w, trace_batch *b)
{
    size_t n = b->n_act;
    if (!n)
        return 0;
    int maxl;
    MAX_LAYER(b->act, n, maxl);
    if (grow((void **)&w->counts, &w->cap_counts, (size_t)maxl + 2, sizeof *w->counts) ||
        grow((void **)&w->ascratch, &w->cap_ascratch, n, sizeof *w->ascratch)) {
        wfail_msg(w, NESIM_ENOMEM, "out of memory");
        return -1;
    }
    GROUP_BY_LAYER(w, b->act, n, w->ascratch, maxl);
    size_t seg = 0;
    for (int l = 0; l <= maxl; l++) {
        size_t end = w->counts[l];
        trace_act *a = w->ascratch + seg;
        size_t m = end - seg;
        seg = end;
        if (!m)
            continue;
        bool sorted = true;
        for (size_t i = 1; i < m && sorted; i++)
            sorted = a[i].tick > a[i - 1].tick;
        if (!sorted) {
            qsort(a, m, sizeof *a, cmp_act_tick);
            size_t k = 0;
            for (size_t i = 1; i < m; i++)
                if (a[i].tick == a[k].tick)
                    a[k].spikes += a[i].spikes, a[k].sops += a[i].sops;
                else
                    a[++k] = a[i];
            m = k + 1;
        }
        if (emit_act(w, l, a, m))
            return -1;
    }
    return w->n_rows ? flush_rows(w) : 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_layer(sqlite3_stmt *st, int i, int layer)
{
    if (layer < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int(st, i, layer);
}

static void bind_tick_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* The run's heartbeat: readers take a run whose writer stopped beating (or
 * whose process is gone) for abandoned. */
static int heartbeat(trace_writer *w)
{
    char now[32];
    trace_now_iso(now);
    sqlite3_bind_int64(w->st_beat, 1, w->run);
    sqlite3_bind_text(w->st_beat, 2, now, -1, SQLITE_TRANSIENT);
    return step_done(w, w->st_beat, "writing the heartbeat");
}

static int write_final(trace_writer *w, trace_batch *b)
{
    for (int l = 0; l < w->n_layers; l++) {
        /* a layer whose activity was never reported counts its stored spikes */
        trace_totals *tt = &w->totals[l];
        if (tt->spikes == 0 && w->counted[l].spikes > 0) {
            tt->spikes = w->counted[l].spikes;
            tt->first = w->counted[l].first;
            tt->last = w->counted[l].last;
        }
        sqlite3_bind_int64(w->st_totals, 1, w->run);
        sqlite3_bind_int(w->st_totals, 2, l);
        sqlite3_bind_int64(w->st_totals, 3, tt->spikes);
        sqlite3_bind_int64(w->st_totals, 4, tt->sops);
        bind_tick_or_null(w->st_totals, 5, tt->first);
        bind_tick_or_null(w->st_totals, 6, tt->last);
        if (step_done(w, w->st_totals, "storing layer totals"))
            return -1;
    }
    for (int64_t k = 0; k < w->n_chip; k++) {
        sqlite3_bind_int64(w->st_chip, 1, w->run);
        sqlite3_bind_int64(w->st_chip, 2, k);
        sqlite3_bind_double(w->st_chip, 3, w->chip_s[k]);
        if (step_done(w, w->st_chip, "storing chip time"))
            return -1;
    }
    char now[32];
    trace_now_iso(now);
    int64_t samples = w->ext_samples >= 0 ? w->ext_samples : w->max_sample >= 0 ? w->max_sample + 1 : -1;
    int64_t ticks = w->ext_ticks >= 0 ? w->ext_ticks : w->max_tick >= 0 ? w->max_tick + 1 : -1;
    sqlite3_bind_int64(w->st_end, 1, w->run);
    sqlite3_bind_text(w->st_end, 2, status_sql[b->status], -1, SQLITE_STATIC);
    sqlite3_bind_text(w->st_end, 3, now, -1, SQLITE_TRANSIENT);
    bind_tick_or_null(w->st_end, 4, samples);
    bind_tick_or_null(w->st_end, 5, ticks);
    bind_text_or_null(w->st_end, 6, w->checksum[0] ? w->checksum : NULL);
    return step_done(w, w->st_end, "ending the run");
}

static int write_batch(trace_writer *w, trace_batch *b)
{
    sqlite3 *db = w->t->db;
    if (!w->in_txn) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
            wfail(w, "starting a transaction");
            return -1;
        }
        w->in_txn = true;
    }
    for (size_t i = 0; i < b->n_layers; i++) {
        const trace_layer_row *L = &b->layers[i];
        sqlite3_bind_int64(w->st_layer, 1, w->run);
        sqlite3_bind_int(w->st_layer, 2, L->idx);
        sqlite3_bind_text(w->st_layer, 3, L->name, -1, SQLITE_STATIC);
        bind_text_or_null(w->st_layer, 4, L->type);
        bind_text_or_null(w->st_layer, 5, L->coding);
        sqlite3_bind_int64(w->st_layer, 6, L->neurons);
        sqlite3_bind_int64(w->st_layer, 7, L->fan_in);
        if (step_done(w, w->st_layer, "storing a layer"))
            goto fail;
        if (grow_wl(w, L->idx + 1)) {
            wfail_msg(w, NESIM_ENOMEM, "out of memory");
            goto fail;
        }
        w->wl[L->idx].neurons = L->neurons;
    }
    if (write_spikes(w, b))
        goto fail;
    if (write_act(w, b))
        goto fail;
    for (size_t i = 0; i < b->n_samples; i++) {
        const nesim_trace_sample_row *s = &b->samples[i];
        sqlite3_bind_int64(w->st_sample, 1, w->run);
        sqlite3_bind_int64(w->st_sample, 2, s->sample);
        sqlite3_bind_int64(w->st_sample, 3, s->first_tick);
        sqlite3_bind_int64(w->st_sample, 4, s->last_tick);
        if (step_done(w, w->st_sample, "storing a sample"))
            goto fail;
    }
    for (size_t i = 0; i < b->n_codes; i++) {
        const trace_code *c = &b->codes[i];
        sqlite3_bind_int64(w->st_code, 1, w->run);
        sqlite3_bind_int(w->st_code, 2, c->layer);
        sqlite3_bind_int64(w->st_code, 3, c->sample);
        sqlite3_bind_int64(w->st_code, 4, c->t0);
        sqlite3_bind_int64(w->st_code, 5, c->steps);
        sqlite3_bind_double(w->st_code, 6, c->vth);
        if (step_done(w, w->st_code, "storing a sample's coding"))
            goto fail;
    }
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = k ? w->st_energy : w->st_metric;
        const trace_named *v = k ? b->energy : b->metrics;
        size_t nv = k ? b->n_energy : b->n_metrics;
        for (size_t i = 0; i < nv; i++) {
            sqlite3_bind_int64(st, 1, w->run);
            bind_layer(st, 2, v[i].layer);
            sqlite3_bind_text(st, 3, v[i].name, -1, SQLITE_STATIC);
            if (isnan(v[i].value))
                sqlite3_bind_null(st, 4); /* a metric that is not a number */
            else
                sqlite3_bind_double(st, 4, v[i].value);
            if (step_done(w, st, k ? "storing energy" : "storing a metric"))
                goto fail;
        }
    }
    if (b->final && write_final(w, b))
        goto fail;
    atomic_fetch_add(&w->st_batches, 1);
    if (!b->synced && !b->final)
        return 0; /* mid-tick: commit with a later batch that ends consistently */
    if (heartbeat(w) || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        wfail(w, "committing a batch");
        goto fail;
    }
    w->in_txn = false;
    return 0;
fail:
    w->n_rows = 0;
    w->arena_len = 0;
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    w->in_txn = false;
    return -1;
}

/* Best effort after a failure: the run must not keep saying 'running'. */
static void mark_failed(trace_writer *w)
{
    char now[32], sql[160];
    trace_now_iso(now);
    snprintf(sql, sizeof sql, "UPDATE runs SET status = 'failed', ended_at = '%s' WHERE id = %lld", now,
             (long long)w->run);
    sqlite3_exec(w->t->db, sql, NULL, NULL, NULL);
}

static void *writer_main(void *arg)
{
    trace_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->head) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += HEARTBEAT_S;
            if (pthread_cond_timedwait(&w->work, &w->mu, &until) == ETIMEDOUT && !w->head && !w->in_txn &&
                !atomic_load(&w->wcode)) {
                /* a quiet run (a long network stretch without spikes) still beats */
                pthread_mutex_unlock(&w->mu);
                heartbeat(w);
                pthread_mutex_lock(&w->mu);
            }
        }
        trace_batch *b = w->head;
        w->head = b->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        bool final = b->final;
        if (!atomic_load(&w->wcode))
            write_batch(w, b);
        if (final && atomic_load(&w->wcode))
            mark_failed(w);
        batch_reset(b);

        pthread_mutex_lock(&w->mu);
        b->next = w->free_list;
        w->free_list = b;
        w->pending--;
        pthread_cond_signal(&w->space);
        pthread_mutex_unlock(&w->mu);
        if (final)
            return NULL;
    }
}

/* ------------------------------------------------------- producer side */

static int push_act(trace_writer *w, int layer, const trace_pending_act *p)
{
    trace_batch *b = w->fill;
    if (grow((void **)&b->act, &b->cap_act, b->n_act + 1, sizeof *b->act))
        return pfail(w, NESIM_ENOMEM, "out of memory");
    b->act[b->n_act++] = (trace_act){.tick = p->tick, .spikes = p->spikes, .sops = p->sops, .layer = layer};
    return NESIM_OK;
}

/* Moves every layer's pending activity (its latest tick's counts) into the
 * filling batch. Done only where a batch is committed (a sync point, a
 * flush, the end): a batch handed over mid-tick is committed together with
 * the later batch that ends consistently, so the tick's counts may travel
 * with that one, and a (layer, tick) is then stored once, not in pieces. */
static int flush_pending(trace_writer *w)
{
    for (int l = 0; l < w->n_layers; l++)
        if (w->pend[l].valid) {
            if (push_act(w, l, &w->pend[l]))
                return w->pcode;
            w->pend[l].valid = false;
        }
    return NESIM_OK;
}

static void enqueue(trace_writer *w, trace_batch *b)
{
    b->next = NULL;
    if (w->tail)
        w->tail->next = b;
    else
        w->head = b;
    w->tail = b;
    w->pending++;
    pthread_cond_signal(&w->work);
}

/* Hands the filling batch to the writer and takes a free one. */
static int handoff(trace_writer *w)
{
    if (w->fill->synced && flush_pending(w))
        return w->pcode;
    pthread_mutex_lock(&w->mu);
    if (w->pending >= 2) {
        double t0 = now_s();
        w->waits++;
        while (w->pending >= 2)
            pthread_cond_wait(&w->space, &w->mu);
        w->wait_s += now_s() - t0;
    }
    enqueue(w, w->fill);
    /* at most one batch was with the writer before the enqueue, one with
     * us: of three, one is free */
    w->fill = w->free_list;
    w->free_list = w->fill->next;
    w->fill->next = NULL;
    pthread_mutex_unlock(&w->mu);
    return writer_status(w);
}

static trace_writer *active(nesim_trace *t) { return t ? t->w : NULL; }

int nesim_trace_spike(nesim_trace *t, int layer, int64_t neuron, int64_t tick, int sign)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (w->level < NESIM_TRACE_SPIKES || w->pcode)
        return writer_status(w);
    if (layer < 0 || layer >= w->n_layers)
        return pfail(w, NESIM_EINVAL, "spike in layer %d, but the run has %d layers", layer, w->n_layers);
    if (neuron < 0 || neuron >= w->neurons[layer])
        return pfail(w, NESIM_EINVAL, "spike of neuron %lld in layer %d of %lld neurons", (long long)neuron,
                     layer, (long long)w->neurons[layer]);
    if (tick < 0)
        return pfail(w, NESIM_EINVAL, "spike at negative tick %lld", (long long)tick);
    if (sign != 1 && sign != -1)
        return pfail(w, NESIM_EINVAL, "spike sign %d (expected +1 or -1)", sign);
    trace_totals *c = &w->counted[layer];
    c->spikes++;
    if (c->first < 0 || tick < c->first)
        c->first = tick;
    if (tick > c->last)
        c->last = tick;
    trace_batch *b = w->fill;
    b->synced = false;
    b->spikes[b->n_spikes++] =
        (trace_spike){.tick = tick, .neuron = (uint32_t)neuron, .layer = (uint16_t)layer, .sign = (int8_t)sign};
    if (tick > w->max_tick)
        w->max_tick = tick;
    /* hand over as soon as the batch is full, so what the caller appended
     * before this call (its activity included) commits together */
    if (b->n_spikes == b->cap_spikes)
        return handoff(w);
    return writer_status(w);
}

int nesim_trace_activity(nesim_trace *t, int layer, int64_t tick, int64_t spikes, int64_t sops)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (w->pcode)
        return w->pcode;
    if (layer < 0 || layer >= w->n_layers)
        return pfail(w, NESIM_EINVAL, "activity in layer %d, but the run has %d layers", layer, w->n_layers);
    if (tick < 0 || spikes < 0 || sops < 0)
        return pfail(w, NESIM_EINVAL, "activity of layer %d: negative tick or count (tick %lld, spikes %lld, sops %lld)",
                     layer, (long long)tick, (long long)spikes, (long long)sops);
    trace_totals *tt = &w->totals[layer];
    tt->spikes += spikes;
    tt->sops += sops;
    if (spikes > 0) {
        if (tt->first < 0 || tick < tt->first)
            tt->first = tick;
        if (tick > tt->last)
            tt->last = tick;
    }
    if (tick > w->max_tick)
        w->max_tick = tick;
    if (w->level < NESIM_TRACE_ACTIVITY)
        return writer_status(w);
    w->fill->synced = false;
    trace_pending_act *p = &w->pend[layer];
    if (p->valid && p->tick == tick) {
        p->spikes += spikes;
        p->sops += sops;
        return writer_status(w);
    }
    if (p->valid && push_act(w, layer, p))
        return w->pcode;
    *p = (trace_pending_act){.tick = tick, .spikes = spikes, .sops = sops, .valid = true};
    if (w->fill->n_act >= w->act_soft_cap)
        return handoff(w);
    return writer_status(w);
}

static int rare_full(const trace_batch *b)
{
    return b->n_samples + b->n_metrics + b->n_energy + b->n_codes >= RARE_SOFT_CAP;
}

int nesim_trace_sample(nesim_trace *t, int64_t sample, int64_t first_tick, int64_t last_tick)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (w->pcode)
        return w->pcode;
    if (sample < 0 || first_tick < 0 || last_tick < first_tick)
        return pfail(w, NESIM_EINVAL, "sample %lld: bad tick range (first %lld, last %lld)", (long long)sample,
                     (long long)first_tick, (long long)last_tick);
    trace_batch *b = w->fill;
    b->synced = false;
    if (grow((void **)&b->samples, &b->cap_samples, b->n_samples + 1, sizeof *b->samples))
        return pfail(w, NESIM_ENOMEM, "out of memory");
    b->samples[b->n_samples++] = (nesim_trace_sample_row){sample, first_tick, last_tick};
    if (sample > w->max_sample)
        w->max_sample = sample;
    if (last_tick > w->max_tick)
        w->max_tick = last_tick;
    return rare_full(b) ? handoff(w) : writer_status(w);
}

static int add_named(nesim_trace *t, bool energy, int layer, const char *name, double value)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (w->pcode)
        return w->pcode;
    const char *what = energy ? "energy term" : "metric";
    if (layer < -1 || layer >= w->n_layers)
        return pfail(w, NESIM_EINVAL, "%s for layer %d, but the run has %d layers", what, layer, w->n_layers);
    if (!name || !*name)
        return pfail(w, NESIM_EINVAL, "%s without a name", what);
    if (energy ? !isfinite(value) : isinf(value))
        return pfail(w, NESIM_EINVAL, "%s '%s' is %s", what, name, energy ? "not finite" : "infinite");
    trace_batch *b = w->fill;
    b->synced = false;
    trace_named **arr = energy ? &b->energy : &b->metrics;
    size_t *n = energy ? &b->n_energy : &b->n_metrics, *cap = energy ? &b->cap_energy : &b->cap_metrics;
    char *dup = strdup(name);
    if (!dup || grow((void **)arr, cap, *n + 1, sizeof **arr)) {
        free(dup);
        return pfail(w, NESIM_ENOMEM, "out of memory");
    }
    (*arr)[(*n)++] = (trace_named){.layer = layer, .name = dup, .value = value};
    return rare_full(b) ? handoff(w) : writer_status(w);
}

int nesim_trace_metric(nesim_trace *t, int layer, const char *name, double value)
{
    return add_named(t, false, layer, name, value);
}

int nesim_trace_energy(nesim_trace *t, int layer, const char *term, double joules)
{
    return add_named(t, true, layer, term, joules);
}

int nesim_trace_code(nesim_trace *t, int layer, int64_t sample, int64_t t0, int64_t steps, double vth)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (w->pcode)
        return w->pcode;
    if (layer < 0 || layer >= w->n_layers)
        return pfail(w, NESIM_EINVAL, "coding of layer %d, but the run has %d layers", layer, w->n_layers);
    if (sample < 0 || t0 < 0 || steps < 0 || !(vth > 0) || !isfinite(vth))
        return pfail(w, NESIM_EINVAL, "coding of layer %d, sample %lld: t0 %lld, steps %lld, V_th %g", layer,
                     (long long)sample, (long long)t0, (long long)steps, vth);
    trace_batch *b = w->fill;
    b->synced = false;
    if (grow((void **)&b->codes, &b->cap_codes, b->n_codes + 1, sizeof *b->codes))
        return pfail(w, NESIM_ENOMEM, "out of memory");
    b->codes[b->n_codes++] = (trace_code){layer, sample, t0, steps, vth};
    return rare_full(b) ? handoff(w) : writer_status(w);
}

int nesim_trace_set_checksum(nesim_trace *t, const char *hex)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (!hex || strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
        return pfail(w, NESIM_EINVAL, "spike checksum '%.20s' is not 16 hex digits", hex ? hex : "");
    memcpy(w->checksum, hex, 17);
    return writer_status(w);
}

int nesim_trace_set_extent(nesim_trace *t, int64_t samples, int64_t virtual_ticks)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (samples >= 0)
        w->ext_samples = samples;
    if (virtual_ticks >= 0)
        w->ext_ticks = virtual_ticks;
    return writer_status(w);
}

int nesim_trace_chip_steps(nesim_trace *t, const double *seconds, int64_t n)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (n < 0 || (n && !seconds))
        return pfail(w, NESIM_EINVAL, "chip time: %lld steps", (long long)n);
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(seconds[k]) || seconds[k] < 0)
            return pfail(w, NESIM_EINVAL, "chip time of tick %lld: %g is not a duration", (long long)k, seconds[k]);
    double *c = malloc((size_t)(n ? n : 1) * sizeof *c);
    if (!c)
        return pfail(w, NESIM_ENOMEM, "out of memory for %lld steps of chip time", (long long)n);
    memcpy(c, seconds, (size_t)n * sizeof *c);
    free(w->chip_s);
    w->chip_s = c;
    w->n_chip = n;
    return writer_status(w);
}

int nesim_trace_sync(nesim_trace *t)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    if (w->pcode)
        return w->pcode;
    trace_batch *b = w->fill;
    b->synced = true;
    /* half full is enough to commit here: a consistent point may not come
     * again before the batch must be handed over mid-tick */
    /* (a run without spikes has a spike batch of one entry: never "half full") */
    if ((b->cap_spikes > 1 && b->n_spikes >= b->cap_spikes / 2) || b->n_act >= w->act_soft_cap / 2 || rare_full(b))
        return handoff(w);
    return writer_status(w);
}

int nesim_trace_flush(nesim_trace *t)
{
    trace_writer *w = active(t);
    if (!w)
        return NESIM_ESTATE;
    bool pend = false;
    for (int l = 0; l < w->n_layers && !pend; l++)
        pend = w->pend[l].valid;
    if (w->pcode)
        return w->pcode;
    w->fill->synced = true;
    if (batch_empty(w->fill) && !pend)
        return writer_status(w);
    return handoff(w);
}

int nesim_trace_add_layer(nesim_trace *t, const nesim_trace_layer_info *li, int *idx, nesim_error *err)
{
    trace_writer *w = active(t);
    if (!w)
        return nesim_fail(err, NESIM_ESTATE, "%s: add_layer outside a run", t ? t->path : "trace");
    if (w->pcode)
        return nesim_fail(err, w->pcode, "%s", w->perr.msg);
    if (!li || !li->name || !*li->name)
        return nesim_fail(err, NESIM_EINVAL, "%s: run %lld: a layer needs a name", t->path, (long long)w->run);
    if (li->neurons <= 0 || li->neurons > (int64_t)UINT32_MAX + 1 || li->fan_in < 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: run %lld: layer '%s': %lld neurons, fan-in %lld (need 1..2^32, >= 0)",
                          t->path, (long long)w->run, li->name, (long long)li->neurons, (long long)li->fan_in);
    if (w->n_layers >= MAX_LAYERS)
        return nesim_fail(err, NESIM_EINVAL, "%s: run %lld: more than %d layers", t->path, (long long)w->run,
                          MAX_LAYERS);
    for (int l = 0; l < w->n_layers; l++)
        if (!strcmp(w->names[l], li->name))
            return nesim_fail(err, NESIM_EINVAL, "%s: run %lld: two layers named '%s'", t->path, (long long)w->run,
                              li->name);
    if (w->n_layers == w->cap_layers) {
        int nc = w->cap_layers ? 2 * w->cap_layers : 16;
        int64_t *nn = realloc(w->neurons, (size_t)nc * sizeof *nn);
        if (nn)
            w->neurons = nn;
        char **na = realloc(w->names, (size_t)nc * sizeof *na);
        if (na)
            w->names = na;
        trace_totals *tt = realloc(w->totals, (size_t)nc * sizeof *tt);
        if (tt)
            w->totals = tt;
        trace_totals *tc = realloc(w->counted, (size_t)nc * sizeof *tc);
        if (tc)
            w->counted = tc;
        trace_pending_act *pa = realloc(w->pend, (size_t)nc * sizeof *pa);
        if (pa)
            w->pend = pa;
        if (!nn || !na || !tt || !tc || !pa)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        w->cap_layers = nc;
    }
    trace_batch *b = w->fill;
    if (grow((void **)&b->layers, &b->cap_layers, b->n_layers + 1, sizeof *b->layers))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int l = w->n_layers;
    trace_layer_row row = {.idx = l,
                           .name = strdup(li->name),
                           .type = li->type ? strdup(li->type) : NULL,
                           .coding = li->coding ? strdup(li->coding) : NULL,
                           .neurons = li->neurons,
                           .fan_in = li->fan_in};
    char *name2 = strdup(li->name);
    if (!row.name || !name2 || (li->type && !row.type) || (li->coding && !row.coding)) {
        free(row.name), free(row.type), free(row.coding), free(name2);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    b->layers[b->n_layers++] = row;
    w->names[l] = name2;
    w->neurons[l] = li->neurons;
    w->totals[l] = w->counted[l] = (trace_totals){0, 0, -1, -1};
    w->pend[l] = (trace_pending_act){0};
    w->n_layers++;
    if (idx)
        *idx = l;
    return NESIM_OK;
}

/* ------------------------------------------------------ begin / end run */

static void writer_free(trace_writer *w)
{
    if (!w)
        return;
    batch_free(w->fill);
    while (w->free_list) {
        trace_batch *b = w->free_list;
        w->free_list = b->next;
        batch_free(b);
    }
    sqlite3_stmt *sts[] = {w->st_layer,  w->st_group1, w->st_groupN, w->st_maxpart, w->st_actmaxpart, w->st_act, w->st_actN,
                           w->st_sample, w->st_metric, w->st_energy, w->st_totals,  w->st_end, w->st_code, w->st_beat,
                           w->st_chip};
    for (size_t i = 0; i < sizeof sts / sizeof *sts; i++)
        sqlite3_finalize(sts[i]);
    for (int l = 0; l < w->n_layers; l++)
        free(w->names[l]);
    free(w->names);
    free(w->neurons);
    free(w->totals);
    free(w->counted);
    free(w->pend);
    free(w->scratch);
    free(w->counts);
    free(w->wl);
    free(w->ascratch);
    free(w->chip_s);
    free(w->arena);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->space);
    free(w);
}

static trace_batch *batch_new(size_t cap_spikes, bool with_spikes)
{
    trace_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cap_spikes = with_spikes ? cap_spikes : 0;
    if (with_spikes && !(b->spikes = malloc(cap_spikes * sizeof *b->spikes))) {
        free(b);
        return NULL;
    }
    return b;
}

static char *weights_json(const nesim_trace_run_info *info)
{
    if (!info->n_weights)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; a && i < info->n_weights; i++) {
        const nesim_trace_weight *wt = &info->weights[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(a, o) ||
            json_object_set_new(o, "file", wt->file ? json_string(wt->file) : json_null()) ||
            json_object_set_new(o, "hash", wt->hash ? json_string(wt->hash) : json_null())) {
            json_decref(a);
            return NULL;
        }
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static int prepare_all(nesim_trace *t, trace_writer *w, nesim_error *err)
{
    /* multi-row statements: one statement execution per ROWS_PER_INSERT rows */
    char *multi = malloc(128 + ROWS_PER_INSERT * 20), *multi_act = malloc(128 + ROWS_PER_INSERT * 20);
    if (!multi || !multi_act) {
        free(multi);
        free(multi_act);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    static const char group1[] = "INSERT INTO spike_groups (run, layer, tick, part, span, n, neurons) VALUES (?,?,?,?,?,?,?)";
    static const char act1[] =
        "INSERT INTO activity_blocks (run, layer, tick, part, span, spikes, sops, per_tick) VALUES (?,?,?,?,?,?,?,?)";
    strcpy(multi, group1);
    strcpy(multi_act, act1);
    for (int i = 1; i < ROWS_PER_INSERT; i++) {
        strcat(multi, ",(?,?,?,?,?,?,?)");
        strcat(multi_act, ",(?,?,?,?,?,?,?,?)");
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } q[] = {
        {&w->st_layer, "INSERT INTO layers (run, idx, name, type, coding, neurons, fan_in) VALUES (?,?,?,?,?,?,?)"},
        {&w->st_group1, group1},
        {&w->st_groupN, multi},
        {&w->st_maxpart, "SELECT coalesce(max(part) + 1, 0) FROM spike_groups WHERE run = ?1 AND layer = ?2 AND tick = ?3"},
        {&w->st_act, act1},
        {&w->st_actN, multi_act},
        {&w->st_actmaxpart,
         "SELECT coalesce(max(part) + 1, 0) FROM activity_blocks WHERE run = ?1 AND layer = ?2 AND tick = ?3"},
        {&w->st_sample, "INSERT INTO samples (run, sample, first_tick, last_tick) VALUES (?1, ?2, ?3, ?4)"
                        " ON CONFLICT (run, sample) DO UPDATE SET first_tick = min(first_tick, excluded.first_tick),"
                        " last_tick = max(last_tick, excluded.last_tick)"},
        {&w->st_metric, "INSERT INTO metrics (run, layer, name, value) VALUES (?1, ?2, ?3, ?4)"},
        {&w->st_energy, "INSERT INTO energy (run, layer, term, joules) VALUES (?1, ?2, ?3, ?4)"},
        {&w->st_totals, "UPDATE layers SET spikes = ?3, sops = ?4, first_tick = ?5, last_tick = ?6"
                        " WHERE run = ?1 AND idx = ?2"},
        {&w->st_end, "UPDATE runs SET status = ?2, ended_at = ?3, samples = ?4, virtual_ticks = ?5,"
                     " spike_checksum = ?6 WHERE id = ?1"},
        {&w->st_code, "INSERT INTO codes (run, layer, sample, t0, steps, vth) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
        {&w->st_beat, "UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1"},
        {&w->st_chip, "INSERT INTO chip_steps (run, tick, seconds) VALUES (?1, ?2, ?3)"},
    };
    int rc = NESIM_OK;
    for (size_t i = 0; i < sizeof q / sizeof *q && !rc; i++)
        rc = trace_prepare(t, q[i].sql, q[i].st, err);
    free(multi);
    free(multi_act);
    return rc;
}

/* The id a new run takes: past every run id any table still names, so rows
 * left behind by a run deleted by hand (sqlite3 DELETE FROM runs ...) are
 * never adopted by the new run. Text or blob ids sort above integers and are
 * excluded by the range (reals are not); each max() is one index probe. */
static int next_run_id(nesim_trace *t, int64_t *id, nesim_error *err)
{
    static const char sql[] =
        "SELECT max(m) FROM (SELECT max(id) m FROM runs WHERE id <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM layers WHERE run <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM activity_blocks WHERE run <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM spike_groups WHERE run <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM samples WHERE run <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM codes WHERE run <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM metrics WHERE run <= 9223372036854775807"
        " UNION ALL SELECT max(run) FROM energy WHERE run <= 9223372036854775807)";
    sqlite3_stmt *st;
    int rc = trace_prepare(t, sql, &st, err);
    if (rc)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = trace_sqlite_fail(t, err, "choosing the run id");
    } else {
        /* a crafted run column may hold a real (3.5); ids above it are free too */
        int64_t top = 0;
        if (sqlite3_column_type(st, 0) == SQLITE_INTEGER)
            top = sqlite3_column_int64(st, 0);
        else if (sqlite3_column_type(st, 0) == SQLITE_FLOAT) {
            double d = floor(sqlite3_column_double(st, 0));
            top = d >= 9223372036854774784.0 ? INT64_MAX : d < 0 ? 0 : (int64_t)d;
        }
        if (top == INT64_MAX) /* no id above it (and top + 1 would overflow) */
            rc = nesim_fail(err, NESIM_EINVAL, "%s: table runs: no run id left after %lld", t->path,
                            (long long)top);
        else
            *id = top < 0 ? 1 : top + 1;
    }
    sqlite3_finalize(st);
    return rc;
}

static int insert_run_row(nesim_trace *t, const nesim_trace_run_info *info, int64_t id, int64_t *run_id,
                          nesim_error *err);

static int insert_run(nesim_trace *t, const nesim_trace_run_info *info, int64_t *run_id, nesim_error *err)
{
    /* choosing the id and inserting the row are one transaction, so two
     * writers on one file never pick the same id */
    if (sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return trace_sqlite_fail(t, err, "recording the run");
    int64_t id = 0; /* set by next_run_id when it succeeds */
    int rc0 = next_run_id(t, &id, err);
    if (!rc0)
        rc0 = insert_run_row(t, info, id, run_id, err);
    if (rc0) {
        sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
        return rc0;
    }
    if (sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc0 = trace_sqlite_fail(t, err, "recording the run");
        sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc0;
}

static int insert_run_row(nesim_trace *t, const nesim_trace_run_info *info, int64_t id, int64_t *run_id,
                          nesim_error *err)
{
    char hash[65], now[32];
    const char *spec_hash = info->spec_hash;
    if (!spec_hash && info->spec_text) {
        nesim_sha256_buf(info->spec_text, strlen(info->spec_text), hash);
        spec_hash = hash;
    }
    char *weights = weights_json(info);
    if (info->n_weights && !weights)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    trace_now_iso(now);
    sqlite3_stmt *st;
    int rc = trace_prepare(t,
                           "INSERT INTO runs (status, kind, record, spec_file, spec_text, spec_hash, weights, chip,"
                           " seed, tick_s, started_at, nesim_version, parent_run, note, dense, writer_pid,"
                           " writer_host, heartbeat_at, id)"
                           " VALUES ('running', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                           " ?16, ?10, ?17)",
                           &st, err);
    if (rc) {
        free(weights);
        return rc;
    }
    sqlite3_bind_text(st, 1, nesim_trace_kind_name(info->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nesim_trace_level_name(info->record), -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, info->spec_file);
    bind_text_or_null(st, 4, info->spec_text);
    bind_text_or_null(st, 5, spec_hash);
    bind_text_or_null(st, 6, weights);
    bind_text_or_null(st, 7, info->chip);
    if (info->has_seed)
        sqlite3_bind_int64(st, 8, (int64_t)info->seed); /* the uint64's bit pattern */
    else
        sqlite3_bind_null(st, 8);
    sqlite3_bind_double(st, 9, info->tick_s);
    sqlite3_bind_text(st, 10, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 11, nesim_version(), -1, SQLITE_STATIC);
    if (info->parent_run > 0)
        sqlite3_bind_int64(st, 12, info->parent_run);
    else
        sqlite3_bind_null(st, 12);
    bind_text_or_null(st, 13, info->note);
    bind_text_or_null(st, 14, info->dense);
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        host[0] = 0;
    host[sizeof host - 1] = 0;
    sqlite3_bind_int64(st, 15, (int64_t)getpid());
    bind_text_or_null(st, 16, host[0] ? host : NULL);
    sqlite3_bind_int64(st, 17, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "recording the run");
    else
        *run_id = sqlite3_last_insert_rowid(t->db);
    sqlite3_finalize(st);
    free(weights);
    return rc;
}

static void end_active(nesim_trace *t) { nesim_trace_end_run(t, NESIM_TRACE_FAILED, NULL); }

int nesim_trace_begin_run(nesim_trace *t, const nesim_trace_run_info *info, int64_t *run_id, nesim_error *err)
{
    if (t->mode != NESIM_TRACE_WRITE)
        return nesim_fail(err, NESIM_ESTATE, "%s: opened read-only; cannot record a run", t->path);
    if (t->w)
        return nesim_fail(err, NESIM_ESTATE, "%s: a run is already being recorded", t->path);
    if (!info || !(info->tick_s > 0) || !isfinite(info->tick_s))
        return nesim_fail(err, NESIM_EINVAL, "%s: a run needs seconds per tick > 0", t->path);
    if ((unsigned)info->kind > NESIM_TRACE_NETWORK || (unsigned)info->record > NESIM_TRACE_SPIKES)
        return nesim_fail(err, NESIM_EINVAL, "%s: bad run kind or record level", t->path);
    if (info->parent_run < 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: parent run %lld", t->path, (long long)info->parent_run);
    int rc;
    if (info->parent_run > 0 && (rc = trace_check_run(t, info->parent_run, err)))
        return nesim_context(err, "parent run: ");
    size_t bs = info->batch_spikes ? info->batch_spikes : DEFAULT_BATCH_SPIKES;
    if (bs < MIN_BATCH_SPIKES || bs > MAX_BATCH_SPIKES)
        return nesim_fail(err, NESIM_EINVAL, "%s: batch of %zu spikes (allowed %d..%zu)", t->path, bs,
                          MIN_BATCH_SPIKES, MAX_BATCH_SPIKES);

    trace_writer *w = calloc(1, sizeof *w);
    if (!w)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    w->t = t;
    w->level = info->record;
    w->batch_spikes = bs;
    w->act_soft_cap = bs / 4 + 64;
    w->max_sample = w->max_tick = w->ext_samples = w->ext_ticks = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->space, NULL);
    bool spikes = info->record == NESIM_TRACE_SPIKES;
    /* Without spikes a batch fills through activity; a spike batch of 1 entry
     * keeps the hot path's "full" test meaningful without a branch. */
    w->fill = batch_new(spikes ? bs : 1, true);
    for (int i = 1; i < NBATCH && w->fill; i++) {
        trace_batch *b = batch_new(spikes ? bs : 1, true);
        if (!b)
            break;
        b->next = w->free_list;
        w->free_list = b;
    }
    w->arena = malloc(ROWS_PER_INSERT * (CHUNK + 64)); /* a row stops after the element that passes CHUNK */
    if (spikes)
        w->scratch = malloc(bs * sizeof *w->scratch);
    int nfree = 0;
    for (trace_batch *b = w->free_list; b; b = b->next)
        nfree++;
    if (!w->fill || nfree != NBATCH - 1 || !w->arena || (spikes && !w->scratch)) {
        writer_free(w);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for the trace batches");
    }
    if ((rc = prepare_all(t, w, err)) || (rc = insert_run(t, info, &w->run, err))) {
        writer_free(w);
        return rc;
    }
    /* The writer thread must not take the caller's signals (SIGINT above
     * all): block everything while creating it; it inherits the mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc) {
        mark_failed(w);
        writer_free(w);
        return nesim_fail(err, NESIM_EINTERNAL, "%s: cannot start the writer thread", t->path);
    }
    w->thread_started = true;
    t->w = w;
    t->wrote = true;
    t->end_active = end_active;
    if (run_id)
        *run_id = w->run;
    return NESIM_OK;
}

int nesim_trace_end_run(nesim_trace *t, nesim_trace_status status, nesim_error *err)
{
    trace_writer *w = active(t);
    if (!w)
        return nesim_fail(err, NESIM_ESTATE, "%s: no run is being recorded", t ? t->path : "trace");
    if (status != NESIM_TRACE_COMPLETE && status != NESIM_TRACE_FAILED && status != NESIM_TRACE_INTERRUPTED)
        status = NESIM_TRACE_FAILED;
    flush_pending(w);
    trace_batch *b = w->fill;
    b->final = true;
    b->status = writer_status(w) ? NESIM_TRACE_FAILED : status;
    pthread_mutex_lock(&w->mu);
    while (w->pending >= 2)
        pthread_cond_wait(&w->space, &w->mu);
    enqueue(w, b);
    w->fill = NULL;
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);

    int rc = NESIM_OK;
    if (w->pcode)
        rc = nesim_fail(err, w->pcode, "%s", w->perr.msg);
    else if (atomic_load(&w->wcode))
        rc = nesim_fail(err, atomic_load(&w->wcode), "%s", w->werr.msg);
    nesim_trace_writer_stats_get(t, &t->last);
    t->w = NULL;
    writer_free(w);
    return rc;
}


void nesim_trace_writer_stats_get(const nesim_trace *t, nesim_trace_writer_stats *st)
{
    const trace_writer *w = t->w;
    if (!w) {
        *st = t->last;
        return;
    }
    st->batches = atomic_load(&((trace_writer *)w)->st_batches);
    st->spikes = atomic_load(&((trace_writer *)w)->st_spikes);
    st->spike_rows = atomic_load(&((trace_writer *)w)->st_rows);
    st->waits = w->waits;
    st->wait_s = w->wait_s;
}
