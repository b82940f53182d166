/* read.c — reading runs back: run rows, layers with their totals, metrics,
 * energy, samples, and iterators over spikes and per-tick activity.
 *
 * Guarantees:
 * - Every reader checks that the run exists (NESIM_EINVAL "FILE: no run N
 *   (runs: a..b)") and refuses to run while the same handle records a run.
 * - Spikes come out ordered by (layer, tick, neuron), one prepared statement
 *   walking the spike_groups primary key (no sort in SQL); the parts of a
 *   group split across rows or batches are merged and re-sorted here.
 * - Layer totals of a run that never ended (killed) are rebuilt from its
 *   activity rows, else from its spikes, and flagged totals_final = false.
 * - All returned memory belongs to the caller, freed by the matching _free.
 */
#include "traces/store_internal.h"
#include "base/mem.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- runs */

static int parse_enum(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* Seconds since an ISO-8601 UTC stamp "2025-01-31T12:00:00.123Z", or -1. */
static double age_s(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                       &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t then = timegm(&tm);
    return then == (time_t)-1 ? -1 : difftime(time(NULL), then);
}

/* A 'running' run's writer is alive: on this host, its process exists (and
 * beat in the last 10 minutes: a pid may be reused); elsewhere, it beat in
 * the last minute (writers beat every few seconds). */
static bool writer_alive(const nesim_trace_run *r)
{
    double age = age_s(r->heartbeat_at);
    if (age < 0 || r->writer_pid <= 0)
        return false;
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        host[0] = 0;
    host[sizeof host - 1] = 0;
    if (r->writer_host && !strcmp(r->writer_host, host)) {
        if (r->writer_pid > INT32_MAX || (kill((pid_t)r->writer_pid, 0) != 0 && errno != EPERM))
            return false;
        return age < 600;
    }
    return age < 60;
}

static bool tick_ok(int64_t v) { return trace_tick_ok(v); }
#define bad_row trace_bad_row

static int row_to_run(nesim_trace *t, sqlite3_stmt *st, nesim_trace_run *r, bool with_text, nesim_error *err)
{
    static const char *const statuses[] = {"running", "complete", "failed", "interrupted"};
    static const char *const kinds[] = {"layers", "network"};
    static const char *const levels[] = {"none", "activity", "spikes"};
    memset(r, 0, sizeof *r);
    bool oom = false;
    r->id = sqlite3_column_int64(st, 0);
    int s = parse_enum((const char *)sqlite3_column_text(st, 1), statuses, 4);
    int k = parse_enum((const char *)sqlite3_column_text(st, 2), kinds, 2);
    int l = parse_enum((const char *)sqlite3_column_text(st, 3), levels, 3);
    if (s < 0 || k < 0 || l < 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: run %lld: corrupt status, kind or record level", t->path,
                          (long long)r->id);
    r->status = (nesim_trace_status)s;
    r->kind = (nesim_trace_kind)k;
    r->record = (nesim_trace_level)l;
    r->spec_file = trace_col_strdup(st, 4, &oom);
    r->spec_text = with_text ? trace_col_strdup(st, 5, &oom) : NULL;
    r->spec_hash = trace_col_strdup(st, 6, &oom);
    r->weights = trace_col_strdup(st, 7, &oom);
    r->chip = trace_col_strdup(st, 8, &oom);
    r->has_seed = sqlite3_column_type(st, 9) != SQLITE_NULL;
    r->seed = (uint64_t)sqlite3_column_int64(st, 9);
    r->tick_s = sqlite3_column_double(st, 10);
    r->started_at = trace_col_strdup(st, 11, &oom);
    r->ended_at = trace_col_strdup(st, 12, &oom);
    r->nesim_version = trace_col_strdup(st, 13, &oom);
    r->parent_run = sqlite3_column_int64(st, 14);
    r->samples = sqlite3_column_type(st, 15) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 15);
    r->virtual_ticks = sqlite3_column_type(st, 16) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 16);
    r->note = trace_col_strdup(st, 17, &oom);
    r->dense = trace_col_strdup(st, 18, &oom);
    r->spike_checksum = trace_col_strdup(st, 19, &oom);
    r->writer_pid = sqlite3_column_int64(st, 20);
    r->writer_host = trace_col_strdup(st, 21, &oom);
    r->heartbeat_at = trace_col_strdup(st, 22, &oom);
    if (!oom && r->status == NESIM_TRACE_RUNNING && !writer_alive(r))
        r->status = NESIM_TRACE_ABANDONED;
    if (oom) {
        nesim_trace_run_clear(r);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    int rc = NESIM_OK;
    if (!(r->tick_s > 0) || !isfinite(r->tick_s))
        rc = bad_row(t, err, "runs", r->id, "column tick_s: %g is not a positive duration", r->tick_s);
    else if (r->samples != -1 && !tick_ok(r->samples))
        rc = bad_row(t, err, "runs", r->id, "column samples: %lld out of range", (long long)r->samples);
    else if (r->virtual_ticks != -1 && !tick_ok(r->virtual_ticks))
        rc = bad_row(t, err, "runs", r->id, "column virtual_ticks: %lld out of range", (long long)r->virtual_ticks);
    else if (r->parent_run < 0 || r->parent_run >= r->id)
        rc = bad_row(t, err, "runs", r->id, "column parent_run: %lld is not an earlier run", (long long)r->parent_run);
    if (rc)
        nesim_trace_run_clear(r);
    return rc;
}

#define RUN_COLUMNS                                                                                      \
    "id, status, kind, record, spec_file, %s, spec_hash, weights, chip, seed, tick_s, started_at,"       \
    " ended_at, nesim_version, parent_run, samples, virtual_ticks, note, dense, spike_checksum, writer_pid,"  \
    " writer_host, heartbeat_at"

void nesim_trace_run_clear(nesim_trace_run *r)
{
    if (!r)
        return;
    free(r->spec_file), free(r->spec_text), free(r->spec_hash), free(r->weights), free(r->chip);
    free(r->started_at), free(r->ended_at), free(r->nesim_version), free(r->note);
    free(r->dense), free(r->spike_checksum), free(r->writer_host), free(r->heartbeat_at);
    memset(r, 0, sizeof *r);
}

void nesim_trace_runs_free(nesim_trace_run *runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++)
        nesim_trace_run_clear(&runs[i]);
    free(runs);
}

int nesim_trace_runs(nesim_trace *t, nesim_trace_run **runs, size_t *n, nesim_error *err)
{
    *runs = NULL;
    *n = 0;
    int rc = trace_check_idle(t, err);
    if (rc)
        return rc;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " RUN_COLUMNS " FROM runs ORDER BY id", "NULL");
    sqlite3_stmt *st;
    if ((rc = trace_prepare(t, sql, &st, err)))
        return rc;
    size_t cap = 0;
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        nesim_trace_run *nr = nesim_grown(*runs, *n + 1, &cap, sizeof *nr, 16);
        if (!nr) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        *runs = nr;
        if (!(rc = row_to_run(t, st, &(*runs)[*n], false, err)))
            (*n)++;
    }
    if (!rc && s != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "reading runs");
    sqlite3_finalize(st);
    if (rc) {
        nesim_trace_runs_free(*runs, *n);
        *runs = NULL;
        *n = 0;
    }
    return rc;
}

int nesim_trace_get_run(nesim_trace *t, int64_t id, nesim_trace_run *run, nesim_error *err)
{
    memset(run, 0, sizeof *run);
    int rc = trace_check_run(t, id, err);
    if (rc)
        return rc;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?1", "spec_text");
    sqlite3_stmt *st;
    if ((rc = trace_prepare(t, sql, &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = row_to_run(t, st, run, true, err);
    else
        rc = trace_sqlite_fail(t, err, "reading a run");
    sqlite3_finalize(st);
    return rc;
}

int nesim_trace_last_run(nesim_trace *t, int64_t *id, nesim_error *err)
{
    int rc = trace_check_idle(t, err);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t, "SELECT max(id) FROM runs", &st, err)))
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = trace_sqlite_fail(t, err, "reading runs");
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: the trace holds no runs", t->path);
    else
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* -------------------------------------------------------------- layers */

void nesim_trace_layers_free(nesim_trace_layer *layers, size_t n)
{
    for (size_t i = 0; layers && i < n; i++) {
        free(layers[i].name);
        free(layers[i].type);
        free(layers[i].coding);
    }
    free(layers);
}

/* Totals of a layer whose run never wrote them: from activity if any rows
 * exist, else from the stored spikes (SOPs then unknown). */
static int rebuild_totals(nesim_trace *t, int64_t run, nesim_trace_layer *L, nesim_error *err)
{
    L->spikes = L->sops = L->first_tick = L->last_tick = -1;
    nesim_trace_activity_iter *it;
    int rc = nesim_trace_activity_open(t, run, L->idx, 0, NESIM_TRACE_TICK_MAX, &it, err);
    if (rc)
        return rc;
    nesim_trace_activity_rec a;
    bool got, any = false;
    int64_t sp = 0, so = 0;
    while (!(rc = nesim_trace_activity_next(it, &a, &got, err)) && got) {
        any = true;
        if (a.spikes >= NESIM_TRACE_TICK_LIMIT - sp || a.sops >= NESIM_TRACE_TICK_LIMIT - so) {
            rc = bad_row(t, err, "activity_blocks", run, "layer %d: counts out of range", L->idx);
            break;
        }
        sp += a.spikes, so += a.sops;
        if (a.spikes > 0) {
            if (L->first_tick < 0)
                L->first_tick = a.tick;
            L->last_tick = a.tick;
        }
    }
    nesim_trace_activity_close(it);
    if (rc || any) {
        L->spikes = sp, L->sops = so;
        return rc;
    }
    sqlite3_stmt *st;
    if ((rc = trace_prepare(t,
                            "SELECT count(*), total(n), min(tick), max(tick + span - 1)"
                            " FROM spike_groups WHERE run = ?1 AND layer = ?2",
                            &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, L->idx);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = trace_sqlite_fail(t, err, "rebuilding layer totals");
        sqlite3_finalize(st);
        return rc;
    }
    bool found = sqlite3_column_int64(st, 0) > 0;
    if (found) {
        /* total(): a double that cannot overflow, checked below like any count */
        double s = sqlite3_column_double(st, 1);
        L->spikes = s >= 0 && s < 0x1p62 ? (int64_t)s : -2;
        L->first_tick = sqlite3_column_type(st, 2) == SQLITE_INTEGER ? sqlite3_column_int64(st, 2) : -2;
        L->last_tick = sqlite3_column_type(st, 3) == SQLITE_INTEGER ? sqlite3_column_int64(st, 3) : -2;
    }
    sqlite3_finalize(st);
    if (found && (!tick_ok(L->spikes) || !tick_ok(L->first_tick) || !tick_ok(L->last_tick)))
        return bad_row(t, err, "spike_groups", run, "layer %d: counts or ticks out of range", L->idx);
    return NESIM_OK;
}

/* The run's layers, checked; totals a killed run never wrote are rebuilt
 * only if asked (rebuilding reads activity, whose readers need the layers). */
static int read_layers(nesim_trace *t, int64_t run, bool rebuild, nesim_trace_layer **layers, size_t *n,
                       nesim_error *err)
{
    *layers = NULL;
    *n = 0;
    int rc = trace_check_run(t, run, err);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t,
                                  "SELECT idx, name, type, coding, neurons, fan_in, spikes, sops, first_tick, last_tick"
                                  " FROM layers WHERE run = ?1 ORDER BY idx",
                                  &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    size_t cap = 0;
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        nesim_trace_layer *nl = nesim_grown(*layers, *n + 1, &cap, sizeof *nl, 16);
        if (!nl) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        *layers = nl;
        nesim_trace_layer *L = &(*layers)[*n];
        memset(L, 0, sizeof *L);
        bool oom = false;
        int64_t idx = sqlite3_column_int64(st, 0);
        L->idx = idx >= 0 && idx < NESIM_TRACE_LAYERS_MAX ? (int)idx : -1;
        L->name = trace_col_strdup(st, 1, &oom);
        L->type = trace_col_strdup(st, 2, &oom);
        L->coding = trace_col_strdup(st, 3, &oom);
        (*n)++;
        if (oom || !L->name) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        L->neurons = sqlite3_column_int64(st, 4);
        L->fan_in = sqlite3_column_int64(st, 5);
        L->totals_final = sqlite3_column_type(st, 6) != SQLITE_NULL;
        L->spikes = sqlite3_column_int64(st, 6);
        L->sops = sqlite3_column_int64(st, 7);
        L->first_tick = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 8);
        L->last_tick = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 9);
    }
    if (!rc && s != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "reading layers");
    sqlite3_finalize(st);
    for (size_t i = 0; !rc && i < *n; i++) {
        const nesim_trace_layer *L = &(*layers)[i];
        if (L->idx != (int)i || i >= NESIM_TRACE_LAYERS_MAX)
            rc = bad_row(t, err, "layers", run, "idx %d: layer indices must run 0, 1, ... (expected %zu)", L->idx, i);
        else if (!*L->name)
            rc = bad_row(t, err, "layers", run, "idx %d: empty name", L->idx);
        else if (L->neurons < 1 || L->neurons >= (INT64_C(1) << 31) || L->fan_in < 0 || L->fan_in >= (INT64_C(1) << 31))
            rc = bad_row(t, err, "layers", run, "idx %d: neurons %lld or fan_in %lld out of range", L->idx,
                         (long long)L->neurons, (long long)L->fan_in);
        else if (L->totals_final && (!tick_ok(L->spikes) || !tick_ok(L->sops)))
            rc = bad_row(t, err, "layers", run, "idx %d: spikes %lld or sops %lld out of range", L->idx,
                         (long long)L->spikes, (long long)L->sops);
        else if ((L->first_tick != -1 && !tick_ok(L->first_tick)) || (L->last_tick != -1 && !tick_ok(L->last_tick)) ||
                 (L->first_tick == -1) != (L->last_tick == -1) || L->first_tick > L->last_tick)
            rc = bad_row(t, err, "layers", run, "idx %d: first_tick %lld / last_tick %lld out of range", L->idx,
                         (long long)L->first_tick, (long long)L->last_tick);
        for (size_t k = 0; !rc && k < i; k++)
            if (!strcmp((*layers)[k].name, L->name))
                rc = bad_row(t, err, "layers", run, "idx %d: name '%.40s' repeated", L->idx, L->name);
    }
    for (size_t i = 0; rebuild && !rc && i < *n; i++)
        if (!(*layers)[i].totals_final)
            rc = rebuild_totals(t, run, &(*layers)[i], err);
    if (rc) {
        nesim_trace_layers_free(*layers, *n);
        *layers = NULL;
        *n = 0;
    }
    return rc;
}

int nesim_trace_layers(nesim_trace *t, int64_t run, nesim_trace_layer **layers, size_t *n, nesim_error *err)
{
    return read_layers(t, run, true, layers, n, err);
}

const char *nesim_trace_layer_list(const nesim_trace_layer *L, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && k < cap - 1; i++) {
        int w = snprintf(buf + k, cap - k, "%s%d %s", i ? ", " : "", L[i].idx, L[i].name);
        k += w > 0 ? (size_t)w : 0;
    }
    if (k >= cap - 1 && cap > 4)
        strcpy(buf + cap - 4, "...");
    return buf;
}

int nesim_trace_find_layer(nesim_trace *t, int64_t run, const char *name_or_index, int *idx, nesim_error *err)
{
    nesim_trace_layer *L;
    size_t n;
    int rc = nesim_trace_layers(t, run, &L, &n, err);
    if (rc)
        return rc;
    const char *s = name_or_index ? name_or_index : "";
    for (size_t i = 0; i < n; i++)
        if (!strcmp(L[i].name, s)) {
            *idx = L[i].idx;
            nesim_trace_layers_free(L, n);
            return NESIM_OK;
        }
    char *end;
    long v = *s ? strtol(s, &end, 10) : -1;
    if (*s && !*end)
        for (size_t i = 0; i < n; i++)
            if (L[i].idx == v) {
                *idx = L[i].idx;
                nesim_trace_layers_free(L, n);
                return NESIM_OK;
            }
    char list[200];
    nesim_trace_layer_list(L, n, list, sizeof list);
    rc = n ? nesim_fail(err, NESIM_EINVAL, "%s: run %lld has no layer '%s' (layers: %s)", t->path, (long long)run, s,
                        list)
           : nesim_fail(err, NESIM_EINVAL, "%s: run %lld has no layer '%s' (it has no layers)", t->path,
                        (long long)run, s);
    nesim_trace_layers_free(L, n);
    return rc;
}

/* ------------------------------------------------- metrics, energy, samples */

void nesim_trace_values_free(nesim_trace_value *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].name);
    free(v);
}

/* The run's layers, checked (nesim_trace_layers), as a count. */
static int layer_count(nesim_trace *t, int64_t run, int *n, nesim_error *err)
{
    nesim_trace_layer *L;
    size_t k;
    int rc = read_layers(t, run, false, &L, &k, err);
    if (!rc)
        nesim_trace_layers_free(L, k);
    *n = (int)k;
    return rc;
}

/* Neurons of each of the run's layers (checked), malloc'd. */
static int layer_neurons(nesim_trace *t, int64_t run, int64_t **neurons, int *n, nesim_error *err)
{
    nesim_trace_layer *L;
    size_t k;
    *neurons = NULL;
    int rc = read_layers(t, run, false, &L, &k, err);
    if (rc)
        return rc;
    *neurons = malloc((k ? k : 1) * sizeof **neurons);
    for (size_t i = 0; *neurons && i < k; i++)
        (*neurons)[i] = L[i].neurons;
    nesim_trace_layers_free(L, k);
    *n = (int)k;
    return *neurons ? NESIM_OK : nesim_fail(err, NESIM_ENOMEM, "out of memory");
}

static int read_values(nesim_trace *t, int64_t run, const char *sql, nesim_trace_value **v, size_t *n,
                       nesim_error *err)
{
    *v = NULL;
    *n = 0;
    int n_layers = 0;
    int rc = layer_count(t, run, &n_layers, err);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t, sql, &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    size_t cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        nesim_trace_value *nv = nesim_grown(*v, *n + 1, &cap, sizeof *nv, 16);
        if (!nv) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        *v = nv;
        bool oom = false;
        nesim_trace_value *x = &(*v)[(*n)++];
        int64_t layer = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
        x->layer = layer >= -1 && layer < NESIM_TRACE_LAYERS_MAX ? (int)layer : -2;
        x->name = trace_col_strdup(st, 1, &oom);
        x->value = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
        if (oom) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        const char *table = strstr(sql, "FROM energy") ? "energy" : "metrics";
        if (!x->name || x->layer == -2 || x->layer >= n_layers || isinf(x->value) ||
            (table[0] == 'e' && !isfinite(x->value))) {
            rc = bad_row(t, err, table, run, "row %zu: layer %lld of %d, name %s, value %g", *n - 1, (long long)layer,
                         n_layers, x->name ? "given" : "missing", x->value);
            break;
        }
    }
    if (!rc && s != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "reading metrics or energy");
    sqlite3_finalize(st);
    if (rc) {
        nesim_trace_values_free(*v, *n);
        *v = NULL;
        *n = 0;
    }
    return rc;
}

int nesim_trace_metrics(nesim_trace *t, int64_t run, nesim_trace_value **v, size_t *n, nesim_error *err)
{
    return read_values(t, run,
                       "SELECT layer, name, value FROM metrics WHERE run = ?1 ORDER BY layer IS NULL, layer, rowid",
                       v, n, err);
}

int nesim_trace_energies(nesim_trace *t, int64_t run, nesim_trace_value **v, size_t *n, nesim_error *err)
{
    return read_values(t, run,
                       "SELECT layer, term, joules FROM energy WHERE run = ?1 ORDER BY layer IS NULL, layer, rowid",
                       v, n, err);
}

int nesim_trace_chip_steps_get(nesim_trace *t, int64_t run, double **seconds, int64_t *n, nesim_error *err)
{
    *seconds = NULL;
    *n = 0;
    nesim_trace_run r = {0};
    int rc = nesim_trace_get_run(t, run, &r, err);
    int64_t limit = r.virtual_ticks;
    nesim_trace_run_clear(&r);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t, "SELECT tick, seconds FROM chip_steps WHERE run = ?1 ORDER BY tick", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    size_t cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t tick = sqlite3_column_int64(st, 0);
        double x = sqlite3_column_double(st, 1);
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || tick != *n || (limit >= 0 && tick >= limit)) {
            rc = bad_row(t, err, "chip_steps", run, "tick %lld: ticks must run 0, 1, ... within the run's %lld",
                         (long long)tick, (long long)limit);
            break;
        }
        if (sqlite3_column_type(st, 1) != SQLITE_FLOAT && sqlite3_column_type(st, 1) != SQLITE_INTEGER) {
            rc = bad_row(t, err, "chip_steps", run, "tick %lld: seconds is not a number", (long long)tick);
            break;
        }
        if (!isfinite(x) || x < 0) {
            rc = bad_row(t, err, "chip_steps", run, "tick %lld: %g is not a duration", (long long)tick, x);
            break;
        }
        double *nv = nesim_grown(*seconds, (size_t)*n + 1, &cap, sizeof *nv, 1024);
        if (!nv) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        *seconds = nv;
        (*seconds)[(*n)++] = x;
    }
    if (!rc && s != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "reading chip_steps");
    sqlite3_finalize(st);
    if (rc) {
        free(*seconds);
        *seconds = NULL;
        *n = 0;
    }
    return rc;
}

int nesim_trace_samples(nesim_trace *t, int64_t run, nesim_trace_sample_row **rows, size_t *n, nesim_error *err)
{
    *rows = NULL;
    *n = 0;
    int rc = trace_check_run(t, run, err);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t, "SELECT sample, first_tick, last_tick FROM samples WHERE run = ?1 ORDER BY sample",
                                  &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    size_t cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        nesim_trace_sample_row *nr = nesim_grown(*rows, *n + 1, &cap, sizeof *nr, 64);
        if (!nr) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        *rows = nr;
        nesim_trace_sample_row r = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                    sqlite3_column_int64(st, 2)};
        if (!tick_ok(r.sample) || !tick_ok(r.first_tick) || !tick_ok(r.last_tick) || r.first_tick > r.last_tick) {
            rc = bad_row(t, err, "samples", run, "sample %lld: ticks %lld..%lld out of range", (long long)r.sample,
                         (long long)r.first_tick, (long long)r.last_tick);
            break;
        }
        (*rows)[(*n)++] = r;
    }
    if (!rc && s != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "reading samples");
    sqlite3_finalize(st);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

int nesim_trace_totals_get(nesim_trace *t, int64_t run, nesim_trace_totals *tot, nesim_error *err)
{
    memset(tot, 0, sizeof *tot);
    nesim_trace_layer *L;
    size_t n;
    int rc = nesim_trace_layers(t, run, &L, &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        tot->spikes = (tot->spikes < 0 || L[i].spikes < 0) ? -1 : tot->spikes + L[i].spikes;
        tot->sops = (tot->sops < 0 || L[i].sops < 0) ? -1 : tot->sops + L[i].sops;
    }
    nesim_trace_layers_free(L, n);
    sqlite3_stmt *st;
    if ((rc = trace_prepare(t,
                            "SELECT (SELECT virtual_ticks FROM runs WHERE id = ?1),"
                            " (SELECT count(*) FROM energy WHERE run = ?1),"
                            " (SELECT coalesce(sum(joules), 0) FROM energy WHERE run = ?1)",
                            &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW) {
        tot->virtual_ticks = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
        tot->has_energy = sqlite3_column_int64(st, 1) > 0;
        tot->joules = sqlite3_column_double(st, 2);
    } else {
        rc = trace_sqlite_fail(t, err, "reading totals");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------ rows of several ticks */

/* Rows of spike_groups and activity_blocks cover ticks [tick, tick + span):
 * a window [from, to] reads the rows starting in [from - TRACE_MAX_SPAN + 1,
 * to], ordered by (layer, tick, part) along the primary key. Rows of a layer
 * start in ascending order, so once a row starting at s is read, the items
 * already decoded with tick < s are final (no later row reaches back): they
 * are sorted (usually already in order) and handed out, the rest wait.
 * row_merge is that bookkeeping, for items of any type that begin with
 * their int64_t tick; the iterators below give it their row decoder. */
typedef struct row_merge {
    sqlite3_stmt *st;
    bool row_ready;       /* st sits on a row of the next layer, not yet consumed */
    bool eof;             /* no more rows */
    bool sorted;          /* items [pos, n) are in cmp order */
    unsigned char *buf;   /* the current layer's decoded items: [pos, ready) final and sorted */
    size_t esz, n, cap, pos, ready;
    int layer;
    int (*cmp)(const void *, const void *);
} row_merge;

static void rm_init(row_merge *m, size_t esz, int (*cmp)(const void *, const void *))
{
    memset(m, 0, sizeof *m);
    m->esz = esz, m->cmp = cmp, m->layer = -1, m->sorted = true;
}

static int64_t rm_tick(const row_merge *m, size_t i)
{
    int64_t t;
    memcpy(&t, m->buf + i * m->esz, sizeof t);
    return t;
}

/* Appends one decoded item (NESIM_ENOMEM when it cannot). */
static int rm_add(row_merge *m, const void *item)
{
    unsigned char *nb = nesim_grown(m->buf, m->n + 1, &m->cap, m->esz, 256);
    if (!nb)
        return NESIM_ENOMEM;
    m->buf = nb;
    if (m->n > m->pos && m->sorted && m->cmp(item, m->buf + (m->n - 1) * m->esz) < 0)
        m->sorted = false;
    memcpy(m->buf + m->n++ * m->esz, item, m->esz);
    return NESIM_OK;
}

static void rm_sort(row_merge *m)
{
    if (!m->sorted)
        qsort(m->buf + m->pos * m->esz, m->n - m->pos, m->esz, m->cmp);
    m->sorted = true;
}

/* Reads rows until items [pos, ready) are final, or none are left (then
 * pos == ready). decode(ctx, err) appends the items of the row st sits on;
 * its failure ends the iteration and is returned. `what` names the reading
 * in SQLite failures. */
static int rm_fill(row_merge *m, nesim_trace *t, const char *what, int (*decode)(void *ctx, nesim_error *err),
                   void *ctx, nesim_error *err)
{
    while (m->pos == m->ready) {
        if (m->pos) { /* drop what was handed out */
            memmove(m->buf, m->buf + m->pos * m->esz, (m->n - m->pos) * m->esz);
            m->n -= m->pos;
            m->ready = m->pos = 0;
        }
        if (m->eof) {
            if (!m->n)
                return NESIM_OK;
            rm_sort(m);
            m->ready = m->n;
            continue;
        }
        int rc = SQLITE_ROW;
        if (!m->row_ready && (rc = sqlite3_step(m->st)) != SQLITE_ROW) {
            m->eof = true;
            if (rc != SQLITE_DONE)
                return trace_sqlite_fail(t, err, what);
            continue;
        }
        m->row_ready = false;
        int layer = sqlite3_column_int(m->st, 0);
        int64_t start = sqlite3_column_int64(m->st, 1);
        if (m->n && layer != m->layer) { /* the layer is complete: hand it out, keep the row */
            m->row_ready = true;
            rm_sort(m);
            m->ready = m->n;
            continue;
        }
        m->layer = layer;
        rm_sort(m);
        while (m->ready < m->n && rm_tick(m, m->ready) < start)
            m->ready++;
        if ((rc = decode(ctx, err))) {
            m->eof = true;
            m->n = m->pos = m->ready = 0;
            return rc;
        }
    }
    return NESIM_OK;
}

static void rm_free(row_merge *m)
{
    sqlite3_finalize(m->st);
    free(m->buf);
}

static int clamp_window(int64_t *from, int64_t *to)
{
    if (*from < 0)
        *from = 0;
    return *to >= *from;
}

/* The first tick a row may start at and still reach into a window from `from`. */
static int64_t reach_back(int64_t from) { return from > TRACE_MAX_SPAN - 1 ? from - (TRACE_MAX_SPAN - 1) : 0; }

/* Binds a row reader's query (?1 run, ?2 layer, ?3..?4 the ticks whose rows
 * can reach into [from, to]) after clamping the window; an empty window
 * reads nothing. */
static void bind_window(row_merge *m, int64_t run, int layer, int64_t *from, int64_t *to)
{
    if (!clamp_window(from, to))
        m->eof = true;
    sqlite3_bind_int64(m->st, 1, run);
    sqlite3_bind_int(m->st, 2, layer);
    sqlite3_bind_int64(m->st, 3, reach_back(*from));
    sqlite3_bind_int64(m->st, 4, *to);
}

/* ------------------------------------------------------------- spikes */

typedef struct spike_item {
    int64_t tick, neuron; /* tick first: row_merge reads it */
    int sign;
} spike_item;

struct nesim_trace_spike_iter {
    nesim_trace *t;
    int64_t run, from, to;
    int64_t *neurons; /* per layer: neuron indices must stay below */
    int n_layers;
    row_merge m;      /* items in (tick, neuron) order */
    trace_ns *dec;    /* one row's elements */
    size_t n_dec, cap_dec;
};

static int cmp_spike_item(const void *a, const void *b)
{
    const spike_item *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

int nesim_trace_spikes_open(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                            nesim_trace_spike_iter **it, nesim_error *err)
{
    *it = NULL;
    int rc = trace_check_run(t, run, err);
    if (rc)
        return rc;
    nesim_trace_spike_iter *x = calloc(1, sizeof *x);
    if (!x)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    x->t = t;
    x->run = run;
    rm_init(&x->m, sizeof(spike_item), cmp_spike_item);
    if ((rc = layer_neurons(t, run, &x->neurons, &x->n_layers, err))) {
        free(x);
        return rc;
    }
    /* ORDER BY follows the primary key (run, layer, tick, part): no sorting */
    const char *sql = layer >= 0 ? "SELECT layer, tick, span, neurons FROM spike_groups"
                                   " WHERE run = ?1 AND layer = ?2 AND tick BETWEEN ?3 AND ?4 ORDER BY tick, part"
                                 : "SELECT layer, tick, span, neurons FROM spike_groups"
                                   " WHERE run = ?1 AND tick BETWEEN ?3 AND ?4 ORDER BY layer, tick, part";
    if ((rc = trace_prepare(t, sql, &x->m.st, err))) {
        free(x->neurons);
        free(x);
        return rc;
    }
    bind_window(&x->m, run, layer, &from, &to);
    x->from = from;
    x->to = to;
    *it = x;
    return NESIM_OK;
}

/* Checks a row's place and span; the elements' stride is the layer's size. */
static int row_extent(nesim_trace *t, int64_t run, const char *table, int n_layers, int layer, int64_t tick,
                      int64_t span, nesim_error *err)
{
    if (layer < 0 || layer >= n_layers || !tick_ok(tick) || span < 1 || span > TRACE_MAX_SPAN ||
        !tick_ok(tick + span - 1))
        return bad_row(t, err, table, run, "layer %d of %d, tick %lld, span %lld: out of range", layer, n_layers,
                       (long long)tick, (long long)span);
    return NESIM_OK;
}

/* Decodes the row st sits on (columns layer, tick, span, neurons) into
 * (tick, neuron, sign) with tick in [from, to]; calls put for each. */
static int decode_spike_row(nesim_trace *t, int64_t run, sqlite3_stmt *st, const int64_t *neurons, int n_layers,
                            trace_ns **dec, size_t *n_dec, size_t *cap_dec, int64_t from, int64_t to,
                            int (*put)(void *, int64_t, int64_t, int), void *ctx, nesim_error *err)
{
    int layer = sqlite3_column_int(st, 0);
    int64_t tick = sqlite3_column_int64(st, 1), span = sqlite3_column_int64(st, 2);
    int rc = row_extent(t, run, "spike_groups", n_layers, layer, tick, span, err);
    if (rc)
        return rc;
    const char *txt = (const char *)sqlite3_column_text(st, 3);
    int len = sqlite3_column_bytes(st, 3);
    *n_dec = 0;
    if ((rc = trace_decode_group(txt ? txt : "", txt ? (size_t)len : 0, dec, n_dec, cap_dec, err)))
        return nesim_context(err, "%s: layer %d, tick %lld: ", t->path, layer, (long long)tick);
    int64_t N = neurons[layer];
    for (size_t i = 0; i < *n_dec; i++) {
        int64_t u = (*dec)[i].neuron, dt = u / N;
        if (dt >= span)
            return bad_row(t, err, "spike_groups", run,
                           "layer %d, tick %lld: element %lld lies past the row's %lld ticks of %lld neurons", layer,
                           (long long)tick, (long long)u, (long long)span, (long long)N);
        int64_t tk = tick + dt;
        if (tk >= from && tk <= to && (rc = put(ctx, tk, u - dt * N, (*dec)[i].sign)))
            return rc;
    }
    return NESIM_OK;
}

static int put_item(void *ctx, int64_t tick, int64_t neuron, int sign)
{
    nesim_trace_spike_iter *x = ctx;
    spike_item it = {tick, neuron, sign};
    return rm_add(&x->m, &it);
}

static int decode_spike_items(void *ctx, nesim_error *err)
{
    nesim_trace_spike_iter *x = ctx;
    int rc = decode_spike_row(x->t, x->run, x->m.st, x->neurons, x->n_layers, &x->dec, &x->n_dec, &x->cap_dec,
                              x->from, x->to, put_item, x, err);
    return rc == NESIM_ENOMEM ? nesim_fail(err, rc, "out of memory") : rc;
}

int nesim_trace_spikes_next(nesim_trace_spike_iter *x, nesim_trace_spike_rec *s, bool *got, nesim_error *err)
{
    *got = false;
    int rc = rm_fill(&x->m, x->t, "reading spikes", decode_spike_items, x, err);
    if (rc || x->m.pos == x->m.ready)
        return rc;
    const spike_item *it = (const spike_item *)(void *)(x->m.buf + x->m.pos++ * x->m.esz);
    s->layer = x->m.layer;
    s->tick = it->tick;
    s->neuron = it->neuron;
    s->sign = it->sign;
    *got = true;
    return NESIM_OK;
}

void nesim_trace_spikes_close(nesim_trace_spike_iter *x)
{
    if (!x)
        return;
    rm_free(&x->m);
    free(x->dec);
    free(x->neurons);
    free(x);
}

static int count_one(void *ctx, int64_t tick, int64_t neuron, int sign)
{
    (void)tick, (void)neuron, (void)sign;
    ++*(int64_t *)ctx;
    return NESIM_OK;
}

int nesim_trace_spike_count(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to, int64_t *n,
                            nesim_error *err)
{
    *n = 0;
    int rc = trace_check_run(t, run, err);
    if (rc || !clamp_window(&from, &to))
        return rc;
    int64_t *neurons = NULL;
    int n_layers = 0;
    if ((rc = layer_neurons(t, run, &neurons, &n_layers, err)))
        return rc;
    /* rows wholly inside the window count by their n; the rows at its edges
     * (starting before it, or running past its end) are decoded */
    static const char *const q[3][2] = {
        {"SELECT total(n), min(n) FROM spike_groups WHERE run = ?1 AND tick BETWEEN ?3 AND ?4"
         " AND tick + span - 1 <= ?4",
         "SELECT total(n), min(n) FROM spike_groups WHERE run = ?1 AND layer = ?2 AND tick BETWEEN ?3 AND ?4"
         " AND tick + span - 1 <= ?4"},
        {"SELECT layer, tick, span, neurons FROM spike_groups WHERE run = ?1 AND tick BETWEEN ?5 AND ?3 - 1",
         "SELECT layer, tick, span, neurons FROM spike_groups WHERE run = ?1 AND layer = ?2"
         " AND tick BETWEEN ?5 AND ?3 - 1"},
        {"SELECT layer, tick, span, neurons FROM spike_groups WHERE run = ?1 AND tick BETWEEN ?6 AND ?4"
         " AND tick + span - 1 > ?4",
         "SELECT layer, tick, span, neurons FROM spike_groups WHERE run = ?1 AND layer = ?2"
         " AND tick BETWEEN ?6 AND ?4 AND tick + span - 1 > ?4"}};
    trace_ns *dec = NULL;
    size_t n_dec = 0, cap_dec = 0;
    int64_t tail = reach_back(to) > from ? reach_back(to) : from; /* rows that may run past the window */
    for (int k = 0; k < 3 && !rc; k++) {
        sqlite3_stmt *st;
        if ((rc = trace_prepare(t, q[k][layer >= 0], &st, err)))
            break;
        sqlite3_bind_int64(st, 1, run);
        sqlite3_bind_int(st, 2, layer);
        sqlite3_bind_int64(st, 3, from);
        sqlite3_bind_int64(st, 4, to);
        sqlite3_bind_int64(st, 5, reach_back(from));
        sqlite3_bind_int64(st, 6, tail);
        int s;
        if (k == 0) {
            if ((s = sqlite3_step(st)) == SQLITE_ROW) {
                double total = sqlite3_column_double(st, 0);
                if (!(total >= 0 && total < 0x1p62) || sqlite3_column_int64(st, 1) < 0)
                    rc = bad_row(t, err, "spike_groups", run, "column n: counts out of range (total %g)", total);
                else
                    *n = (int64_t)total;
            } else {
                rc = trace_sqlite_fail(t, err, "counting spikes");
            }
        } else {
            while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
                rc = decode_spike_row(t, run, st, neurons, n_layers, &dec, &n_dec, &cap_dec, from, to, count_one, n,
                                      err);
            if (!rc && s != SQLITE_DONE)
                rc = trace_sqlite_fail(t, err, "counting spikes");
        }
        sqlite3_finalize(st);
    }
    free(dec);
    free(neurons);
    return rc;
}

/* ----------------------------------------------------------- activity */

typedef struct act_item {
    int64_t tick, spikes, sops; /* tick first: row_merge reads it */
} act_item;

struct nesim_trace_activity_iter {
    nesim_trace *t;
    int64_t run, from, to;
    int n_layers;
    row_merge m; /* items by tick; equal ticks add up when handed out */
};

static int cmp_act_item(const void *a, const void *b)
{
    const act_item *x = a, *y = b;
    return (x->tick > y->tick) - (x->tick < y->tick);
}

int nesim_trace_activity_open(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to,
                              nesim_trace_activity_iter **it, nesim_error *err)
{
    *it = NULL;
    int rc = trace_check_run(t, run, err);
    if (rc)
        return rc;
    nesim_trace_activity_iter *x = calloc(1, sizeof *x);
    if (!x)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    x->t = t;
    x->run = run;
    rm_init(&x->m, sizeof(act_item), cmp_act_item);
    if ((rc = layer_count(t, run, &x->n_layers, err))) {
        free(x);
        return rc;
    }
    const char *sql = layer >= 0 ? "SELECT layer, tick, span, spikes, sops, per_tick FROM activity_blocks"
                                   " WHERE run = ?1 AND layer = ?2 AND tick BETWEEN ?3 AND ?4 ORDER BY tick, part"
                                 : "SELECT layer, tick, span, spikes, sops, per_tick FROM activity_blocks"
                                   " WHERE run = ?1 AND tick BETWEEN ?3 AND ?4 ORDER BY layer, tick, part";
    if ((rc = trace_prepare(t, sql, &x->m.st, err))) {
        free(x);
        return rc;
    }
    bind_window(&x->m, run, layer, &from, &to);
    x->from = from;
    x->to = to;
    *it = x;
    return NESIM_OK;
}

static int put_act(nesim_trace_activity_iter *x, int64_t tick, int64_t spikes, int64_t sops)
{
    if (tick < x->from || tick > x->to)
        return NESIM_OK;
    act_item it = {tick, spikes, sops};
    return rm_add(&x->m, &it);
}

/* One non-negative decimal integer below 2^62 at *p. */
static bool parse_count(const char **p, const char *end, int64_t *v)
{
    const char *s = *p;
    int64_t x = 0;
    if (s == end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9') {
        if (x > (NESIM_TRACE_TICK_LIMIT - 10) / 10)
            return false;
        x = x * 10 + (*s++ - '0');
    }
    *p = s;
    *v = x;
    return true;
}

/* Decodes the activity row st sits on (layer, tick, span, spikes, sops,
 * per_tick): its ticks must lie in the span, ascend, and add up to the
 * row's totals. */
static int decode_act_row(nesim_trace_activity_iter *x)
{
    sqlite3_stmt *st = x->m.st;
    int64_t tick = sqlite3_column_int64(st, 1), span = sqlite3_column_int64(st, 2);
    int64_t spikes = sqlite3_column_int64(st, 3), sops = sqlite3_column_int64(st, 4);
    if (!tick_ok(spikes) || !tick_ok(sops))
        return -1;
    if (sqlite3_column_type(st, 5) == SQLITE_NULL)
        return span == 1 ? put_act(x, tick, spikes, sops) : -1;
    const char *p = (const char *)sqlite3_column_text(st, 5), *end = p + sqlite3_column_bytes(st, 5);
    int64_t sum_s = 0, sum_o = 0, prev = -1;
    if (!p || p == end || *p++ != '[')
        return -1;
    for (;;) {
        int64_t dt, s, o;
        if (p == end || *p++ != '[' || !parse_count(&p, end, &dt) || p == end || *p++ != ',' ||
            !parse_count(&p, end, &s) || p == end || *p++ != ',' || !parse_count(&p, end, &o) || p == end ||
            *p++ != ']' || dt <= prev || dt >= span)
            return -1;
        prev = dt;
        sum_s += s, sum_o += o; /* each < 2^62, at most 256 of them: no overflow */
        int rc = put_act(x, tick + dt, s, o);
        if (rc)
            return rc;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p + 1 == end && *p == ']')
            break;
        return -1;
    }
    return sum_s == spikes && sum_o == sops ? NESIM_OK : -1;
}

static int decode_act_items(void *ctx, nesim_error *err)
{
    nesim_trace_activity_iter *x = ctx;
    int layer = sqlite3_column_int(x->m.st, 0);
    int64_t start = sqlite3_column_int64(x->m.st, 1), span = sqlite3_column_int64(x->m.st, 2);
    int rc = row_extent(x->t, x->run, "activity_blocks", x->n_layers, layer, start, span, err);
    if (!rc && (rc = decode_act_row(x)))
        rc = rc == NESIM_ENOMEM ? nesim_fail(err, rc, "out of memory")
                                : bad_row(x->t, err, "activity_blocks", x->run,
                                          "layer %d, tick %lld: counts or per_tick out of range or inconsistent", layer,
                                          (long long)start);
    return rc;
}

int nesim_trace_activity_next(nesim_trace_activity_iter *x, nesim_trace_activity_rec *a, bool *got,
                              nesim_error *err)
{
    *got = false;
    int rc = rm_fill(&x->m, x->t, "reading activity", decode_act_items, x, err);
    if (rc || x->m.pos == x->m.ready)
        return rc;
    /* the same tick in two rows (reported in two batches) adds up */
    act_item it, nx;
    memcpy(&it, x->m.buf + x->m.pos++ * x->m.esz, sizeof it);
    while (x->m.pos < x->m.ready && rm_tick(&x->m, x->m.pos) == it.tick) {
        memcpy(&nx, x->m.buf + x->m.pos++ * x->m.esz, sizeof nx);
        it.spikes += nx.spikes;
        it.sops += nx.sops;
        if (!tick_ok(it.spikes) || !tick_ok(it.sops))
            return bad_row(x->t, err, "activity_blocks", x->run, "layer %d, tick %lld: counts out of range",
                           x->m.layer, (long long)it.tick);
    }
    a->layer = x->m.layer;
    a->tick = it.tick;
    a->spikes = it.spikes;
    a->sops = it.sops;
    *got = true;
    return NESIM_OK;
}

void nesim_trace_activity_close(nesim_trace_activity_iter *x)
{
    if (!x)
        return;
    rm_free(&x->m);
    free(x);
}

int nesim_trace_codes(nesim_trace *t, int64_t run, int layer, nesim_trace_code_row **rows, size_t *n,
                      nesim_error *err)
{
    *rows = NULL;
    *n = 0;
    int rc = trace_check_run(t, run, err);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t,
                                  "SELECT sample, t0, steps, vth FROM codes WHERE run = ?1 AND layer = ?2"
                                  " ORDER BY sample",
                                  &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, layer);
    size_t cap = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        nesim_trace_code_row *nr = nesim_grown(*rows, *n + 1, &cap, sizeof *nr, 64);
        if (!nr) {
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
            break;
        }
        *rows = nr;
        nesim_trace_code_row r = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                  sqlite3_column_int64(st, 2), sqlite3_column_double(st, 3)};
        if (!tick_ok(r.sample) || !tick_ok(r.t0) || r.steps < 0 || r.steps > (INT64_C(1) << 31) ||
            !(r.vth > 0) || !isfinite(r.vth)) {
            rc = bad_row(t, err, "codes", run, "layer %d, sample %lld: t0 %lld, steps %lld, vth %g out of range", layer,
                         (long long)r.sample, (long long)r.t0, (long long)r.steps, r.vth);
            break;
        }
        (*rows)[(*n)++] = r;
    }
    if (!rc && s != SQLITE_DONE)
        rc = trace_sqlite_fail(t, err, "reading codes");
    sqlite3_finalize(st);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

int nesim_trace_code_count(nesim_trace *t, int64_t run, int layer, int64_t *n, nesim_error *err)
{
    *n = 0;
    int rc = trace_check_run(t, run, err);
    sqlite3_stmt *st;
    if (rc || (rc = trace_prepare(t, "SELECT count(*) FROM codes WHERE run = ?1 AND layer = ?2", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, layer);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        rc = trace_sqlite_fail(t, err, "counting codes");
    sqlite3_finalize(st);
    return rc;
}
