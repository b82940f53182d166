/* upgrade.c — converting a trace of an older schema to the current one, in
 * place, in one transaction (so a failure leaves the file as it was).
 *
 * Version 1 -> 2: runs gain `dense` and `spike_checksum`; a metric may be
 * NULL; the per-sample coding of every layer moves from the metrics named
 * vth@S, t0@S and steps@S to the codes table.
 * Version 2 -> 3: runs gain writer_pid, writer_host and heartbeat_at (a
 * 'running' run of an upgraded file has none, so readers call it abandoned:
 * its writer, an older nesim, cannot be running while the file upgrades).
 * Version 3 -> 4: chip_steps. Version 4 -> 5: rows of several ticks. */
#include "traces/store_internal.h"

#include <string.h>

static const char v1_to_v2[] =
    "ALTER TABLE runs ADD COLUMN dense TEXT;\n"
    "ALTER TABLE runs ADD COLUMN spike_checksum TEXT;\n"
    "CREATE TABLE codes ("
    " run INTEGER NOT NULL, layer INTEGER NOT NULL, sample INTEGER NOT NULL,"
    " t0 INTEGER NOT NULL, steps INTEGER NOT NULL, vth REAL NOT NULL,"
    " PRIMARY KEY (run, layer, sample)) WITHOUT ROWID;\n"
    "INSERT INTO codes (run, layer, sample, t0, steps, vth)"
    " SELECT v.run, v.layer, CAST(substr(v.name, 5) AS INTEGER), CAST(t.value AS INTEGER),"
    " CAST(s.value AS INTEGER), v.value"
    " FROM metrics AS v"
    " JOIN metrics AS t ON t.run = v.run AND t.layer = v.layer AND t.name = 't0@' || substr(v.name, 5)"
    " JOIN metrics AS s ON s.run = v.run AND s.layer = v.layer AND s.name = 'steps@' || substr(v.name, 5)"
    " WHERE v.name GLOB 'vth@[0-9]*' AND v.layer IS NOT NULL;\n"
    "CREATE TABLE metrics_v2 (run INTEGER NOT NULL, layer INTEGER, name TEXT NOT NULL, value REAL);\n"
    "INSERT INTO metrics_v2 (run, layer, name, value) SELECT run, layer, name, value FROM metrics"
    " WHERE NOT (name GLOB 'vth@[0-9]*' OR name GLOB 't0@[0-9]*' OR name GLOB 'steps@[0-9]*') ORDER BY rowid;\n"
    "DROP TABLE metrics;\n"
    "ALTER TABLE metrics_v2 RENAME TO metrics;\n"
    "CREATE INDEX metrics_by_run ON metrics (run, layer);\n"
    "PRAGMA user_version = 2;\n";

static const char v2_to_v3[] =
    "ALTER TABLE runs ADD COLUMN writer_pid INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN writer_host TEXT;\n"
    "ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;\n"
    "PRAGMA user_version = 3;\n";

/* Version 4: chip time per step (nesim run --timing). */
static const char v3_to_v4[] =
    "CREATE TABLE chip_steps ("
    " run INTEGER NOT NULL, tick INTEGER NOT NULL, seconds REAL NOT NULL,"
    " PRIMARY KEY (run, tick)) WITHOUT ROWID;\n"
    "PRAGMA user_version = 4;\n";

/* Version 5: rows of several ticks. spike_groups gains span (old rows: one
 * tick, so their elements need no change); activity becomes the view over
 * activity_blocks (old rows: blocks of one tick); the spikes view reads the
 * tick offset out of each element. */
static const char v4_to_v5[] =
    "ALTER TABLE spike_groups ADD COLUMN span INTEGER NOT NULL DEFAULT 1;\n"
    "CREATE TABLE activity_blocks ("
    " run INTEGER NOT NULL, layer INTEGER NOT NULL, tick INTEGER NOT NULL, part INTEGER NOT NULL,"
    " span INTEGER NOT NULL, spikes INTEGER NOT NULL, sops INTEGER NOT NULL, per_tick TEXT,"
    " PRIMARY KEY (run, layer, tick, part)) WITHOUT ROWID;\n"
    "INSERT INTO activity_blocks (run, layer, tick, part, span, spikes, sops, per_tick)"
    " SELECT run, layer, tick, 0, 1, spikes, sops, NULL FROM activity;\n"
    "DROP TABLE activity;\n"
    "DROP VIEW spikes;\n" TRACE_VIEWS_SQL
    "PRAGMA user_version = 5;\n";

int nesim_trace_upgrade(const char *path, int *from, nesim_error *err)
{
    sqlite3 *db = NULL;
    *from = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        int rc = nesim_fail(err, NESIM_EINVAL, "%s: cannot open for writing: %s", path,
                            db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st = NULL;
    int app = 0, ver = 0, rc = NESIM_OK;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT (SELECT application_id FROM pragma_application_id),"
                               " (SELECT user_version FROM pragma_user_version)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: not a nesim trace: %s", path, sqlite3_errmsg(db));
    } else {
        app = sqlite3_column_int(st, 0);
        ver = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    *from = ver;
    if (!rc && app != NESIM_TRACE_APPLICATION_ID)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: an SQLite database, but not a nesim trace", path);
    else if (!rc && (ver < 1 || ver > NESIM_TRACE_SCHEMA_VERSION))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: trace schema version %d: this nesim reads versions 1 to %d", path, ver,
                        NESIM_TRACE_SCHEMA_VERSION);
    if (!rc && ver == 1 && sqlite3_exec(db, v1_to_v2, NULL, NULL, NULL) != SQLITE_OK)
        rc = nesim_fail(err, NESIM_EINTERNAL, "%s: upgrading from version 1: %s", path, sqlite3_errmsg(db));
    if (!rc && ver <= 2 && sqlite3_exec(db, v2_to_v3, NULL, NULL, NULL) != SQLITE_OK)
        rc = nesim_fail(err, NESIM_EINTERNAL, "%s: upgrading from version 2: %s", path, sqlite3_errmsg(db));
    if (!rc && ver <= 3 && sqlite3_exec(db, v3_to_v4, NULL, NULL, NULL) != SQLITE_OK)
        rc = nesim_fail(err, NESIM_EINTERNAL, "%s: upgrading from version 3: %s", path, sqlite3_errmsg(db));
    if (!rc && ver <= 4 && sqlite3_exec(db, v4_to_v5, NULL, NULL, NULL) != SQLITE_OK)
        rc = nesim_fail(err, NESIM_EINTERNAL, "%s: upgrading from version 4: %s", path, sqlite3_errmsg(db));
    if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = nesim_fail(err, NESIM_EIO, "%s: committing the upgrade: %s", path, sqlite3_errmsg(db));
    if (rc)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(db);
    return rc;
}
