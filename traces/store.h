/* store.h — nesim traces in SQLite: the schema, a streaming writer, readers
 * and the inspection renderers (report, CSV, raster and activity SVG, .npy
 * export, diff of two runs). One database file holds many runs.
 *
 * Guarantees:
 * - Schema version 5 (PRAGMA user_version = 5, PRAGMA application_id =
 *   0x4E53494D "NSIM"), documented table by table in traces/SCHEMA.md (the
 *   one description; schema_sql in store.c is the other side of it). Opening
 *   a file that is not SQLite, an SQLite file that is not a nesim trace, or a
 *   trace of another schema version fails with NESIM_EINVAL and one line
 *   naming the file and the problem; older versions name `nesim trace
 *   upgrade`. Nothing is ever migrated or modified silently.
 * - The writer never stalls the simulation while the disk keeps up: appends
 *   go into an in-memory batch; a writer thread writes full batches with
 *   prepared statements and commits at the first consistent point after each
 *   (nesim_trace_sync). The producer waits only if two batches are already
 *   pending, so memory stays bounded (three batches).
 * - A run is inserted as 'running' in its own transaction before any data,
 *   with its writer's pid, host and a heartbeat, and marked complete / failed
 *   / interrupted in the LAST transaction, together with its per-layer
 *   totals, so a run that says 'complete' has all its data. After SIGKILL (or
 *   power loss: WAL, synchronous=NORMAL) the file opens cleanly; readers call
 *   the run 'abandoned', and every commit is intact and self-consistent (a
 *   tick's spikes and activity commit together).
 * - Readers return spikes ordered by (tick, neuron) within a layer and by
 *   (layer, tick, neuron) across layers, whatever order they were written in.
 * - Renderers stream from the database: memory does not grow with the number
 *   of spikes (the activity SVG keeps at most 1000 bins per layer).
 * - A trace is input like any other: every value a reader takes from the
 *   database is checked as strictly as a spec's (layer indices 0..n-1,
 *   neurons and fan-in below 2^31, ticks and counts in [0, 2^62), neuron
 *   indices inside their layer, sample rows and codes in range, finite
 *   numbers) before it sizes anything; a bad one is NESIM_EINVAL with one
 *   line naming the file, table, run and row.
 * - Nothing here prints (except to the FILE * it is given) or exits; every
 *   function returns a status and fills a caller-owned nesim_error.
 *
 * Why spike_groups and a view rather than one table row per spike: a row per
 * spike costs 15-17 bytes and caps the writer near 1.1-1.5 M spikes/s
 * (measured; B-tree work per row), while a row of one layer over up to 256
 * ticks (cut at ~3.6 KB of text) costs ~7 bytes per spike in dense layers
 * and stores ~23 M spikes/s there, ~12 M/s in a sparse network with a few
 * spikes per tick; activity is stored the same way (activity_blocks). The
 * views keep `SELECT tick, neuron FROM spikes WHERE run = 1 AND layer = 0`
 * and `SELECT tick, spikes FROM activity ...` working from Python's sqlite3
 * with no nesim code.
 *
 * Recording a run (what `nesim run --trace` does):
 *
 *     nesim_trace *t;
 *     nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err);
 *     nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS, .record = level,
 *                                  .spec_file = f, .spec_text = text, .tick_s = spec->tick, ...};
 *     nesim_trace_begin_run(t, &info, &run_id, &err);
 *     nesim_trace_add_layer(t, &(nesim_trace_layer_info){"fc1", "linear", coding, out, in}, NULL, &err);
 *     nesim_trace_signals_install(&old, &err);          // optional: SIGINT, SIGTERM, SIGHUP
 *     for each tick:  nesim_trace_activity(t, l, tick, spikes, sops);
 *                     nesim_trace_spike(t, l, neuron, tick, sign);   // per spike
 *                     nesim_trace_sync(t);                            // the tick is whole
 *     per sample:     nesim_trace_sample(t, s, first, last); [nesim_trace_flush(t);]
 *     if (nesim_trace_stop_signal()) stop the loop;
 *     nesim_trace_metric(t, l, "vth_mean", v); nesim_trace_energy(t, l, "sop", j);
 *     nesim_trace_end_run(t, interrupted ? NESIM_TRACE_INTERRUPTED
 *                          : failed ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE, &err);
 *     nesim_trace_close(t);
 *
 * Threads: a nesim_trace is used by one thread (the one that opened it); the
 * writer thread it starts during a run is internal. Several processes may
 * read a trace while one writes it (WAL); writers from several processes
 * take turns, each batch waiting up to 10 s for the write lock.
 */
#ifndef NESIM_TRACES_STORE_H
#define NESIM_TRACES_STORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

#define NESIM_TRACE_SCHEMA_VERSION 5
#define NESIM_TRACE_APPLICATION_ID 0x4E53494D /* "NSIM" */

/* Every tick stored in a trace lies below this (2^62, like virtual time
 * itself: sim/network.h); readers refuse a database that says otherwise. */
#define NESIM_TRACE_TICK_LIMIT (INT64_C(1) << 62)
/* Layers one run may have, at most. */
#define NESIM_TRACE_LAYERS_MAX (1 << 20)

/* Open tick bounds for the tick-window arguments below (both inclusive). */
#define NESIM_TRACE_TICK_MIN INT64_MIN
#define NESIM_TRACE_TICK_MAX INT64_MAX

typedef struct nesim_trace nesim_trace;
struct sqlite3;

typedef enum nesim_trace_mode {
    NESIM_TRACE_READ,  /* an existing trace, read-only */
    NESIM_TRACE_WRITE  /* create the file and schema if needed, or open an existing trace */
} nesim_trace_mode;

typedef enum nesim_trace_status {
    NESIM_TRACE_RUNNING,
    NESIM_TRACE_COMPLETE,
    NESIM_TRACE_FAILED,
    NESIM_TRACE_INTERRUPTED,
    /* never stored: a 'running' run whose writer is gone (its process no
     * longer exists on this host, or its heartbeat stopped elsewhere) */
    NESIM_TRACE_ABANDONED
} nesim_trace_status;

/* What a run streams: none (the run, layers, samples, totals, metrics and
 * energy only), activity (+ per-tick per-layer counts), spikes (+ every spike). */
typedef enum nesim_trace_level {
    NESIM_TRACE_NONE,
    NESIM_TRACE_ACTIVITY,
    NESIM_TRACE_SPIKES
} nesim_trace_level;

typedef enum nesim_trace_kind { NESIM_TRACE_LAYERS, NESIM_TRACE_NETWORK } nesim_trace_kind;

/* csv, npy: every spike as rows; sonata, nir-events: HDF5 files other tools read (traces/export_h5.c) */
typedef enum nesim_trace_format { NESIM_TRACE_CSV, NESIM_TRACE_NPY, NESIM_TRACE_SONATA, NESIM_TRACE_NIR_EVENTS } nesim_trace_format;

const char *nesim_trace_status_name(nesim_trace_status s); /* "running", ... */
const char *nesim_trace_level_name(nesim_trace_level l);   /* "none", "activity", "spikes" */
const char *nesim_trace_kind_name(nesim_trace_kind k);     /* "layers", "network" */
/* Parses "none" | "activity" | "spikes" (for --record). */
int nesim_trace_level_parse(const char *s, nesim_trace_level *out, nesim_error *err);
/* Parses "csv" | "npy" (for --format). */
int nesim_trace_format_parse(const char *s, nesim_trace_format *out, nesim_error *err);

/* ---- opening ---- */

/* Opens (READ) or creates/opens (WRITE) the trace at path. Sets WAL,
 * synchronous=NORMAL and a 10 s busy timeout. Fails with NESIM_EINVAL if the
 * file is missing (READ), is not an SQLite database ("file is not a
 * database"), is SQLite but not a nesim trace, or has another schema version. */
int nesim_trace_open(const char *path, nesim_trace_mode mode, nesim_trace **out, nesim_error *err);

/* Converts the trace at path from an older schema version to this one, in
 * place and in one transaction; *from receives the version it had (already
 * current: nothing changes). NESIM_EINVAL for a file that is not a trace or
 * of a version this nesim does not know. */
int nesim_trace_upgrade(const char *path, int *from, nesim_error *err);

/* Closes the trace; NULL is fine. A run still active (an error path that
 * returned early) is ended as 'failed' first, so only a killed process
 * leaves a run 'running'. */
void nesim_trace_close(nesim_trace *t);

/* True when the file could only be read as immutable (read-only media, or
 * a folder the reader may not write: SQLite cannot make the -shm file WAL
 * mode needs). A writer that finished cleanly folded everything into the
 * file, so that reads it whole; wal_unread is true when a -wal file holds
 * commits the immutable read does not see (a run still being written, or
 * killed): readers say so. */
bool nesim_trace_is_immutable(const nesim_trace *t);
bool nesim_trace_wal_unread(const nesim_trace *t);

const char *nesim_trace_path(const nesim_trace *t);
/* The underlying connection, for queries this API lacks; not during a run. */
struct sqlite3 *nesim_trace_sqlite(nesim_trace *t);

/* ---- writing a run ---- */

typedef struct nesim_trace_weight {
    const char *file; /* as named in the spec */
    const char *hash; /* SHA-256 hex of the file (nesim_sha256_file), or NULL */
} nesim_trace_weight;

typedef struct nesim_trace_run_info {
    nesim_trace_kind kind;
    nesim_trace_level record;
    const char *spec_file;            /* may be NULL */
    const char *dense;                /* dense baseline profile name, or NULL */
    const char *spec_text;            /* the spec's bytes as read; may be NULL */
    const char *spec_hash;            /* NULL: SHA-256 of spec_text, computed here */
    const nesim_trace_weight *weights;
    size_t n_weights;
    const char *chip;                 /* chip profile name, or NULL */
    uint64_t seed;
    bool has_seed;
    double tick_s;                    /* seconds per tick, > 0 */
    int64_t parent_run;               /* the replayed run, 0 for none */
    const char *note;                 /* free text, or NULL */
    size_t batch_spikes;              /* spikes per batch; 0: 262144 (4 MiB) */
} nesim_trace_run_info;

/* Inserts the run as 'running' (committed at once) and starts the writer
 * thread. One run at a time per nesim_trace (NESIM_ESTATE otherwise); the
 * trace must have been opened with NESIM_TRACE_WRITE. */
int nesim_trace_begin_run(nesim_trace *t, const nesim_trace_run_info *info, int64_t *run_id,
                          nesim_error *err);

typedef struct nesim_trace_layer_info {
    const char *name;   /* required, unique within the run */
    const char *type;   /* "linear", "conv2d", "lif", ... or NULL */
    const char *coding; /* input coding, or NULL */
    int64_t neurons;    /* > 0: valid neuron indices are 0..neurons-1 */
    int64_t fan_in;     /* inputs per sample (layers) or 0 */
} nesim_trace_layer_info;

/* Adds the next layer (index 0, 1, ... in call order) to the active run.
 * Layers are committed with the next batch. */
int nesim_trace_add_layer(nesim_trace *t, const nesim_trace_layer_info *layer, int *idx,
                          nesim_error *err);

/* Streaming appends; call between begin_run and end_run from the thread that
 * began the run. They return NESIM_OK, or a sticky failure code once
 * anything went wrong (bad argument, writer error): the message comes back
 * from nesim_trace_end_run, which then marks the run 'failed'.
 *
 * spike: stored at level spikes (a no-op otherwise); sign is +1 or -1;
 *   0 <= neuron < the layer's neurons; tick >= 0.
 * activity: `spikes` spikes and `sops` synaptic operations of `layer` at
 *   `tick`. Calls for the same (layer, tick) add up, in any order and any
 *   granularity (once per tick or once per event). Stored at level
 *   activity and spikes; at every level the calls make the layer totals
 *   (spikes, sops, first/last tick with spikes) the report shows. Spike and
 *   activity calls are independent: report counts through activity (a
 *   layer that never gets any activity call takes its spike total from its
 *   spike calls, its SOPs then staying 0).
 * sample: ticks first..last (inclusive) belong to input sample `sample`.
 * metric / energy: layer -1 for run-level values; written with the next
 *   batch. A metric may be NaN (stored as NULL: "not a number"). Name the metrics as the live `nesim run --json` keys of a layer
 *   (e.g. "vth_mean", "steps", "dense_macs"): the report's JSON merges them
 *   into the layer objects, so it matches the live report key for key. */
int nesim_trace_spike(nesim_trace *t, int layer, int64_t neuron, int64_t tick, int sign);
int nesim_trace_activity(nesim_trace *t, int layer, int64_t tick, int64_t spikes, int64_t sops);
int nesim_trace_sample(nesim_trace *t, int64_t sample, int64_t first_tick, int64_t last_tick);
int nesim_trace_metric(nesim_trace *t, int layer, const char *name, double value);
/* How layer `layer` coded sample `sample`: its first tick, steps and
 * threshold (what replay rebuilds the layer's inputs from); codes table. */
int nesim_trace_code(nesim_trace *t, int layer, int64_t sample, int64_t t0, int64_t steps, double vth);
/* The run's spike checksum (16 hex digits), written with the run's end. */
int nesim_trace_set_checksum(nesim_trace *t, const char *hex);
int nesim_trace_energy(nesim_trace *t, int layer, const char *term, double joules);

/* Overrides the derived run extent: samples (default: 1 + the largest
 * sample recorded, NULL if none) and virtual_ticks (default: 1 + the last
 * tick seen in samples, activity or spikes). A network run should set its
 * simulated ticks here. Pass -1 to keep a value derived. */
int nesim_trace_set_extent(nesim_trace *t, int64_t samples, int64_t virtual_ticks);

/* The chip time of each virtual tick 0..n-1 (seconds, finite, >= 0; from
 * nesim run --timing), copied now and written with the run's last
 * transaction (table chip_steps). NESIM_EINVAL on a bad value. */
int nesim_trace_chip_steps(nesim_trace *t, const double *seconds, int64_t n);

/* Declares a consistent point: everything appended so far belongs together
 * (a finished tick's spikes and activity, a finished sample). Commits happen
 * only at such points (and at the end), so a reader, or a file left by a
 * killed process, never sees a tick's spikes without its activity or the
 * reverse. A recorder calls it after each tick or sample; a producer that
 * never calls it commits only at end_run. Hands the batch over when it is
 * at least half full. */
int nesim_trace_sync(nesim_trace *t);

/* nesim_trace_sync, and hands the current partial batch to the writer now
 * (e.g. at the end of a sample) so it commits soon; waits only if two
 * batches are pending. */
int nesim_trace_flush(nesim_trace *t);

/* Ends the active run: commits everything appended, then in one last
 * transaction the layer totals, extent, end time and `status` (COMPLETE,
 * FAILED or INTERRUPTED). If anything failed during the run, the run is
 * marked 'failed' instead and the first failure is returned. Stops the
 * writer thread; the trace can begin another run afterwards. */
int nesim_trace_end_run(nesim_trace *t, nesim_trace_status status, nesim_error *err);

typedef struct nesim_trace_writer_stats {
    int64_t batches;       /* transactions committed by the writer thread */
    int64_t spikes;        /* spikes stored */
    int64_t spike_rows;    /* spike_groups rows written */
    int64_t waits;         /* times the producer waited for the writer */
    double wait_s;         /* seconds it waited in total */
} nesim_trace_writer_stats;

/* Statistics of the last (or active) run's writer. */
void nesim_trace_writer_stats_get(const nesim_trace *t, nesim_trace_writer_stats *st);

/* ---- stop signals: SIGINT, SIGTERM, SIGHUP ---- */

/* The signals that stop a recording cleanly (Ctrl-C, kill, a closed
 * terminal): the current batch is finished and the run is marked
 * NESIM_TRACE_INTERRUPTED. */
enum { NESIM_TRACE_STOP_SIGNALS = 3 };
typedef struct nesim_trace_sigsave {
    struct sigaction old[NESIM_TRACE_STOP_SIGNALS];
} nesim_trace_sigsave;

/* Installs handlers for the stop signals that only record which one came
 * (a volatile sig_atomic_t, the only state they keep); the run loop polls
 * nesim_trace_stop_signal() and ends its run with NESIM_TRACE_INTERRUPTED.
 * SA_RESETHAND: a second signal gets the default action, so a stuck run
 * can still be killed. The previous actions go to *old (may be NULL) for
 * nesim_trace_signals_restore. Clears the flag. */
int nesim_trace_signals_install(nesim_trace_sigsave *old, nesim_error *err);
void nesim_trace_signals_restore(const nesim_trace_sigsave *old);
/* The stop signal received since install (SIGINT, SIGTERM, SIGHUP), or 0. */
int nesim_trace_stop_signal(void);
static inline bool nesim_trace_sigint_seen(void) { return nesim_trace_stop_signal() != 0; }

/* ---- reading ---- */

typedef struct nesim_trace_run {
    int64_t id;
    nesim_trace_status status;
    nesim_trace_kind kind;
    nesim_trace_level record;
    char *spec_file, *spec_text, *spec_hash, *weights, *chip; /* NULL when absent */
    char *started_at, *ended_at, *nesim_version, *note;
    char *dense, *spike_checksum;
    int64_t writer_pid;   /* 0: unknown */
    char *writer_host, *heartbeat_at; /* NULL when unknown */
    uint64_t seed;
    bool has_seed;
    double tick_s;
    int64_t parent_run;   /* 0: none */
    int64_t samples;      /* -1: unknown (run not ended, or no samples) */
    int64_t virtual_ticks;/* -1: unknown */
} nesim_trace_run;

/* All runs in id order; spec_text is left NULL in this listing (it can be
 * large): use nesim_trace_get_run for it. Free with nesim_trace_runs_free. */
int nesim_trace_runs(nesim_trace *t, nesim_trace_run **runs, size_t *n, nesim_error *err);
void nesim_trace_runs_free(nesim_trace_run *runs, size_t n);
/* One run, every field; NESIM_EINVAL "FILE: no run 7 (runs: 1..3)". Clear with _run_clear. */
int nesim_trace_get_run(nesim_trace *t, int64_t id, nesim_trace_run *run, nesim_error *err);
void nesim_trace_run_clear(nesim_trace_run *run);
/* The highest run id; NESIM_EINVAL if the trace holds no run. */
int nesim_trace_last_run(nesim_trace *t, int64_t *id, nesim_error *err);

typedef struct nesim_trace_layer {
    int idx;
    char *name, *type, *coding; /* type/coding NULL when absent */
    int64_t neurons, fan_in;
    int64_t spikes, sops;       /* -1: unknown */
    int64_t first_tick, last_tick; /* -1: no spike */
    bool totals_final;          /* false: rebuilt from activity/spikes (run not ended) */
} nesim_trace_layer;

int nesim_trace_layers(nesim_trace *t, int64_t run, nesim_trace_layer **layers, size_t *n,
                       nesim_error *err);
void nesim_trace_layers_free(nesim_trace_layer *layers, size_t n);
/* "0 fc1, 1 fc2, ..." into buf (cap bytes; "..." when cut short): what a
 * message lists when a layer is not found. Returns buf. */
const char *nesim_trace_layer_list(const nesim_trace_layer *L, size_t n, char *buf, size_t cap);
/* Resolves a layer given by name or by index (a name that matches wins over
 * an index); NESIM_EINVAL naming the run's layers if none matches. */
int nesim_trace_find_layer(nesim_trace *t, int64_t run, const char *name_or_index, int *idx,
                           nesim_error *err);

typedef struct nesim_trace_value {
    int layer;   /* -1: run level */
    char *name;  /* metric name or energy term */
    double value; /* NaN: a metric stored as NULL */
} nesim_trace_value;

/* Metrics / energy rows of a run in (layer, insertion) order, run-level last. */
int nesim_trace_metrics(nesim_trace *t, int64_t run, nesim_trace_value **v, size_t *n,
                        nesim_error *err);
int nesim_trace_energies(nesim_trace *t, int64_t run, nesim_trace_value **v, size_t *n,
                         nesim_error *err);
void nesim_trace_values_free(nesim_trace_value *v, size_t n);

typedef struct nesim_trace_sample_row {
    int64_t sample, first_tick, last_tick;
} nesim_trace_sample_row;

typedef struct nesim_trace_code_row {
    int64_t sample, t0, steps;
    double vth;
} nesim_trace_code_row;
/* Layer `layer`'s codes of every sample, in sample order; free(*rows). */
/* How many samples layer `layer` of a run has codes for (table codes). */
int nesim_trace_code_count(nesim_trace *t, int64_t run, int layer, int64_t *n, nesim_error *err);
int nesim_trace_codes(nesim_trace *t, int64_t run, int layer, nesim_trace_code_row **rows, size_t *n,
                      nesim_error *err);
/* A run's chip time per tick (table chip_steps), in tick order: *n = 0 when
 * the run was not timed; free(*seconds). Rows must cover ticks 0..n-1 once
 * each with finite, non-negative seconds, within the run's virtual ticks;
 * anything else fails naming the table, run and tick. */
int nesim_trace_chip_steps_get(nesim_trace *t, int64_t run, double **seconds, int64_t *n, nesim_error *err);
/* Samples in order; free(*rows). */
int nesim_trace_samples(nesim_trace *t, int64_t run, nesim_trace_sample_row **rows, size_t *n,
                        nesim_error *err);

typedef struct nesim_trace_totals {
    int64_t spikes, sops;  /* summed over layers (-1 if some layer's is unknown) */
    int64_t virtual_ticks; /* -1: unknown */
    double joules;         /* sum of every energy row; 0 if none */
    bool has_energy;
} nesim_trace_totals;
int nesim_trace_totals_get(nesim_trace *t, int64_t run, nesim_trace_totals *tot, nesim_error *err);

typedef struct nesim_trace_spike_rec {
    int layer;
    int64_t neuron, tick;
    int sign;
} nesim_trace_spike_rec;

typedef struct nesim_trace_spike_iter nesim_trace_spike_iter;
/* Spikes of `layer` (-1: every layer) with from <= tick <= to, ordered by
 * (layer, tick, neuron). The iterator holds one prepared statement. */
int nesim_trace_spikes_open(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                            nesim_trace_spike_iter **it, nesim_error *err);
/* *got = false at the end. */
int nesim_trace_spikes_next(nesim_trace_spike_iter *it, nesim_trace_spike_rec *s, bool *got,
                            nesim_error *err);
void nesim_trace_spikes_close(nesim_trace_spike_iter *it);
/* Number of stored spikes in the window (layer -1: all). */
int nesim_trace_spike_count(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                            int64_t *n, nesim_error *err);

typedef struct nesim_trace_activity_rec {
    int layer;
    int64_t tick, spikes, sops;
} nesim_trace_activity_rec;

typedef struct nesim_trace_activity_iter nesim_trace_activity_iter;
/* Per-tick activity rows of `layer` (-1: all) in the window, ordered by
 * (layer, tick); ticks without activity have no row. */
int nesim_trace_activity_open(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                              nesim_trace_activity_iter **it, nesim_error *err);
int nesim_trace_activity_next(nesim_trace_activity_iter *it, nesim_trace_activity_rec *a,
                              bool *got, nesim_error *err);
void nesim_trace_activity_close(nesim_trace_activity_iter *it);

/* ---- inspection renderers (what `nesim trace ...` prints) ---- */

/* One line per run: id, status, kind, record, started, samples, ticks, spikes, spec. */
int nesim_trace_list(nesim_trace *t, FILE *out, nesim_error *err);

/* The run's report rebuilt from the database alone: the run's attributes,
 * per layer spikes, SOPs, first/last spike tick, its metrics and energy, and
 * totals. json: one object {"run":{...},"layers":[...],"totals":{...}} whose
 * layer keys follow `nesim run --json` ("in", "neurons", "spikes", "sops",
 * "first_spike_tick", "last_spike_tick", then the layer's metrics by name,
 * and "energy": {term: joules}). */
int nesim_trace_report(nesim_trace *t, int64_t run, FILE *out, bool json, nesim_error *err);

/* The same report as a JSON tree (the caller json_decref()s *out). */
struct json_t;
int nesim_trace_report_json(nesim_trace *t, int64_t run, struct json_t **out, nesim_error *err);

/* Spikes of a layer (-1: all) in the window: csv ("layer,neuron,tick,sign"
 * header, layer as index) or an aligned table. */
int nesim_trace_spikes_print(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                             bool csv, FILE *out, nesim_error *err);

/* A raster plot of one layer as SVG: x = virtual time (labelled in s/ms/us
 * and ticks), y = neuron index (0 at the bottom), exactly one <rect> per
 * spike in the window (sign -1 spikes have class "n"), sample boundaries as
 * dashed vertical lines, a title. The default window (TICK_MIN/MAX) is the
 * run's extent. */
int nesim_trace_raster_svg(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                           FILE *out, nesim_error *err);

/* Spikes per tick of every layer as SVG: one <polyline> per layer and a
 * legend; more than 1000 ticks are averaged into 1000 bins (the y label
 * says so). Uses activity rows, or the spikes if only those were stored. */
int nesim_trace_activity_svg(nesim_trace *t, int64_t run, int64_t from, int64_t to, FILE *out,
                             nesim_error *err);

/* Every spike of the run, ordered by (layer, tick, neuron), to path: CSV
 * (layer,neuron,tick,sign) or .npy int64 [n, 4] of (layer, neuron, tick,
 * sign); or as HDF5: a SONATA spike report (/spikes/<layer>/timestamps in ms
 * and node_ids, by time) or NIR EventData per layer and sample (see
 * traces/export_h5.c). Written to a temporary file and renamed, so a reader
 * never sees a partial file. */
int nesim_trace_export(nesim_trace *t, int64_t run, nesim_trace_format fmt, const char *path,
                       nesim_error *err);

/* Differences between two runs: attributes that differ (spec hash, chip,
 * seed, coding, ...), then per layer (matched by index) spikes, SOPs and
 * energy of each run with the difference, and whether the two spike trains
 * are identical where both runs stored spikes; per energy term totals. */
int nesim_trace_diff(nesim_trace *t, int64_t run_a, int64_t run_b, FILE *out, bool json,
                     nesim_error *err);

#endif
