/* store_internal.h — what the trace store's files share: the nesim_trace
 * handle, the writer's batches, and small SQLite helpers. Not installed API. */
#ifndef NESIM_TRACES_STORE_INTERNAL_H
#define NESIM_TRACES_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "traces/store.h"

/* One spike as the producer appends it: 16 bytes, so a 4 MiB batch holds 256 Ki. */
typedef struct trace_spike {
    int64_t tick;
    uint32_t neuron;
    uint16_t layer;
    int8_t sign;
    uint8_t pad;
} trace_spike;

typedef struct trace_act {
    int64_t tick, spikes, sops;
    int layer;
} trace_act;

typedef struct trace_named {
    int layer;
    char *name;
    double value;
} trace_named;

typedef struct trace_code {
    int layer;
    int64_t sample, t0, steps;
    double vth;
} trace_code;

typedef struct trace_layer_row {
    int idx;
    char *name, *type, *coding;
    int64_t neurons, fan_in;
} trace_layer_row;

/* A batch: everything appended between two hand-overs. Spikes have a fixed
 * capacity (the hand-over trigger); the rare records grow as needed, and
 * activity hands over at a soft cap. The writer commits after a batch that
 * ends at a consistent point (`synced`: the producer called nesim_trace_sync
 * after its last append) or the final one; other batches stay in the open
 * transaction, so a committed trace is always self-consistent. */
typedef struct trace_batch {
    trace_spike *spikes;
    size_t n_spikes, cap_spikes;
    trace_act *act;
    size_t n_act, cap_act;
    nesim_trace_sample_row *samples;
    size_t n_samples, cap_samples;
    trace_named *metrics, *energy;
    size_t n_metrics, cap_metrics, n_energy, cap_energy;
    trace_layer_row *layers;
    size_t n_layers, cap_layers;
    trace_code *codes;
    size_t n_codes, cap_codes;
    bool final;                 /* the run's last batch */
    bool synced;                /* ends at a consistent point: commit after it */
    nesim_trace_status status;  /* for the final batch */
    struct trace_batch *next;
} trace_batch;

typedef struct trace_totals {
    int64_t spikes, sops, first, last; /* first/last: -1 if no spike */
} trace_totals;

typedef struct trace_pending_act {
    int64_t tick, spikes, sops;
    bool valid;
} trace_pending_act;

typedef struct trace_writer trace_writer;

struct nesim_trace {
    sqlite3 *db;
    char *path;
    nesim_trace_mode mode;
    trace_writer *w;                 /* non-NULL while a run is active */
    void (*end_active)(nesim_trace *); /* the writer's: ends an active run as failed (close) */
    nesim_trace_writer_stats last;   /* stats of the last ended run */
    bool immutable;                  /* read with immutable=1 (read-only media) */
    bool wal_unread;                 /* ... and its -wal file holds commits it does not see */
    bool wrote;                      /* a run was recorded through this handle */
};

/* ---- helpers shared by the store's files (store.c) ---- */

/* Fails with NESIM_EINTERNAL (or NESIM_EINVAL for SQLITE_NOTADB/CORRUPT)
 * naming the file, what was being done and SQLite's message. */
int trace_sqlite_fail(nesim_trace *t, nesim_error *err, const char *what);
int trace_prepare(nesim_trace *t, const char *sql, sqlite3_stmt **st, nesim_error *err);
/* strdup of a column (NULL stays NULL); sets *oom on allocation failure. */
char *trace_col_strdup(sqlite3_stmt *st, int col, bool *oom);
/* Current UTC time as ISO-8601 with milliseconds into buf[32]. */
void trace_now_iso(char buf[32]);
/* A value read from the database failed its check: NESIM_EINVAL with one
 * line naming the file, table, run and what (readers, svg, report). */
int trace_bad_row(nesim_trace *t, nesim_error *err, const char *table, int64_t run, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A tick or count as a trace may hold it: [0, NESIM_TRACE_TICK_LIMIT). */
static inline bool trace_tick_ok(int64_t v) { return v >= 0 && v < NESIM_TRACE_TICK_LIMIT; }
/* NESIM_ESTATE if a run is active (readers use the connection). */
int trace_check_idle(nesim_trace *t, nesim_error *err);
/* NESIM_EINVAL unless run exists. */
int trace_check_run(nesim_trace *t, int64_t run, nesim_error *err);
/* nesim_trace_export for the HDF5 formats (export_h5.c). */
int trace_export_h5(nesim_trace *t, int64_t run, nesim_trace_format fmt, const char *path, nesim_error *err);

/* A row of spike_groups or activity_blocks covers at most this many ticks,
 * so a reader of a tick window looks back this far for rows reaching in. */
#define TRACE_MAX_SPAN 256

/* The views over the streamed tables (schema version 5; also created by
 * the upgrade from version 4): one row per spike, one per (layer, tick)
 * (counts of a tick stored in two rows, reported in two batches, add up). */
#define TRACE_VIEWS_SQL                                                                                     \
    "CREATE VIEW spikes (run, layer, neuron, tick, sign) AS"                                                \
    " SELECT e.run, e.layer, e.u % L.neurons, e.tick + e.u / L.neurons, e.sign FROM"                        \
    " (SELECT g.run AS run, g.layer AS layer, g.tick AS tick,"                                              \
    " CASE WHEN j.value < 0 THEN -1 - j.value ELSE j.value END AS u,"                                       \
    " CASE WHEN j.value < 0 THEN -1 ELSE 1 END AS sign"                                                     \
    " FROM spike_groups AS g, json_each(g.neurons) AS j) AS e"                                              \
    " JOIN layers AS L ON L.run = e.run AND L.idx = e.layer;\n"                                             \
    "CREATE VIEW activity (run, layer, tick, spikes, sops) AS"                                              \
    " SELECT run, layer, tick, sum(spikes), sum(sops) FROM"                                                 \
    " (SELECT run, layer, tick, spikes, sops FROM activity_blocks WHERE per_tick IS NULL"                   \
    " UNION ALL SELECT b.run, b.layer, b.tick + json_extract(j.value, '$[0]'),"                             \
    " json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]')"                                         \
    " FROM activity_blocks AS b, json_each(b.per_tick) AS j WHERE b.per_tick IS NOT NULL)"                  \
    " GROUP BY run, layer, tick;\n"

typedef struct trace_ns {
    int64_t neuron;
    int sign;
} trace_ns;

/* Parses one spike_groups.neurons text, appending the decoded (neuron, sign)
 * pairs to the growing array *v; NESIM_EINVAL if it is not a JSON array of
 * integers. */
int trace_decode_group(const char *txt, size_t len, trace_ns **v, size_t *n, size_t *cap, nesim_error *err);


#endif
