/* store.c — opening a trace: schema creation, version and identity checks,
 * connection settings; names of the enums; the SIGINT flag; helpers the
 * other trace files share.
 *
 * Guarantees: a file is modified only after it has been recognised as a
 * nesim trace of the current schema version or as an empty database (which then gets
 * the schema, created in one transaction so a concurrent creator cannot
 * interleave). Every failure names the file. */
#include "traces/store_internal.h"
#include "base/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The schema, version 5. Kept in step with the comment in store.h and with
 * traces/SCHEMA.md; a change to it needs a new NESIM_TRACE_SCHEMA_VERSION
 * and a step in upgrade.c. */
static const char schema_sql[] =
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " status TEXT NOT NULL CHECK (status IN ('running','complete','failed','interrupted')),"
    " kind TEXT NOT NULL CHECK (kind IN ('layers','network')),"
    " record TEXT NOT NULL CHECK (record IN ('none','activity','spikes')),"
    " spec_file TEXT, spec_text TEXT, spec_hash TEXT, weights TEXT, chip TEXT,"
    " seed INTEGER, tick_s REAL NOT NULL CHECK (tick_s > 0),"
    " started_at TEXT NOT NULL, ended_at TEXT, nesim_version TEXT NOT NULL,"
    " parent_run INTEGER REFERENCES runs (id), samples INTEGER, virtual_ticks INTEGER, note TEXT,"
    " dense TEXT, spike_checksum TEXT, writer_pid INTEGER, writer_host TEXT, heartbeat_at TEXT);\n"
    "CREATE TABLE layers ("
    " run INTEGER NOT NULL REFERENCES runs (id), idx INTEGER NOT NULL,"
    " name TEXT NOT NULL, type TEXT, coding TEXT,"
    " neurons INTEGER NOT NULL, fan_in INTEGER NOT NULL DEFAULT 0,"
    " spikes INTEGER, sops INTEGER, first_tick INTEGER, last_tick INTEGER,"
    " PRIMARY KEY (run, idx)) WITHOUT ROWID;\n"
    "CREATE TABLE activity_blocks ("
    " run INTEGER NOT NULL, layer INTEGER NOT NULL, tick INTEGER NOT NULL, part INTEGER NOT NULL,"
    " span INTEGER NOT NULL, spikes INTEGER NOT NULL, sops INTEGER NOT NULL, per_tick TEXT,"
    " PRIMARY KEY (run, layer, tick, part)) WITHOUT ROWID;\n"
    "CREATE TABLE spike_groups ("
    " run INTEGER NOT NULL, layer INTEGER NOT NULL, tick INTEGER NOT NULL,"
    " part INTEGER NOT NULL, n INTEGER NOT NULL, neurons TEXT NOT NULL, span INTEGER NOT NULL DEFAULT 1,"
    " PRIMARY KEY (run, layer, tick, part)) WITHOUT ROWID;\n"
    TRACE_VIEWS_SQL
    "CREATE TABLE samples ("
    " run INTEGER NOT NULL, sample INTEGER NOT NULL,"
    " first_tick INTEGER NOT NULL, last_tick INTEGER NOT NULL,"
    " PRIMARY KEY (run, sample)) WITHOUT ROWID;\n"
    "CREATE TABLE codes ("
    " run INTEGER NOT NULL, layer INTEGER NOT NULL, sample INTEGER NOT NULL,"
    " t0 INTEGER NOT NULL, steps INTEGER NOT NULL, vth REAL NOT NULL,"
    " PRIMARY KEY (run, layer, sample)) WITHOUT ROWID;\n"
    "CREATE TABLE metrics (run INTEGER NOT NULL, layer INTEGER, name TEXT NOT NULL, value REAL);\n"
    "CREATE INDEX metrics_by_run ON metrics (run, layer);\n"
    "CREATE TABLE energy (run INTEGER NOT NULL, layer INTEGER, term TEXT NOT NULL, joules REAL NOT NULL);\n"
    "CREATE INDEX energy_by_run ON energy (run, layer);\n"
    "CREATE TABLE chip_steps ("
    " run INTEGER NOT NULL, tick INTEGER NOT NULL, seconds REAL NOT NULL,"
    " PRIMARY KEY (run, tick)) WITHOUT ROWID;\n";

const char *nesim_trace_status_name(nesim_trace_status s)
{
    switch (s) {
    case NESIM_TRACE_RUNNING: return "running";
    case NESIM_TRACE_COMPLETE: return "complete";
    case NESIM_TRACE_FAILED: return "failed";
    case NESIM_TRACE_INTERRUPTED: return "interrupted";
    case NESIM_TRACE_ABANDONED: return "abandoned";
    }
    return "?";
}

const char *nesim_trace_level_name(nesim_trace_level l)
{
    switch (l) {
    case NESIM_TRACE_NONE: return "none";
    case NESIM_TRACE_ACTIVITY: return "activity";
    case NESIM_TRACE_SPIKES: return "spikes";
    }
    return "?";
}

const char *nesim_trace_kind_name(nesim_trace_kind k)
{
    return k == NESIM_TRACE_LAYERS ? "layers" : k == NESIM_TRACE_NETWORK ? "network" : "?";
}

int nesim_trace_level_parse(const char *s, nesim_trace_level *out, nesim_error *err)
{
    for (int l = NESIM_TRACE_NONE; l <= NESIM_TRACE_SPIKES; l++)
        if (s && !strcmp(s, nesim_trace_level_name((nesim_trace_level)l))) {
            *out = (nesim_trace_level)l;
            return NESIM_OK;
        }
    return nesim_fail(err, NESIM_EINVAL, "--record: expected none, activity or spikes, got '%s'",
                      s ? s : "");
}

int nesim_trace_format_parse(const char *s, nesim_trace_format *out, nesim_error *err)
{
    if (s && !strcmp(s, "csv"))
        *out = NESIM_TRACE_CSV;
    else if (s && !strcmp(s, "npy"))
        *out = NESIM_TRACE_NPY;
    else if (s && !strcmp(s, "sonata"))
        *out = NESIM_TRACE_SONATA;
    else if (s && !strcmp(s, "nir-events"))
        *out = NESIM_TRACE_NIR_EVENTS;
    else
        return nesim_fail(err, NESIM_EINVAL, "--format: expected csv, npy, sonata or nir-events, got '%s'",
                          s ? s : "");
    return NESIM_OK;
}

/* ---- helpers ---- */

int trace_sqlite_fail(nesim_trace *t, nesim_error *err, const char *what)
{
    int rc = sqlite3_errcode(t->db) & 0xff;
    /* A damaged file is bad input (exit 2), not an internal failure. */
    int code = (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) ? NESIM_EINVAL : NESIM_EINTERNAL;
    return nesim_fail(err, code, "%s: %s: %s", t->path, what, sqlite3_errmsg(t->db));
}

int trace_prepare(nesim_trace *t, const char *sql, sqlite3_stmt **st, nesim_error *err)
{
    if (sqlite3_prepare_v2(t->db, sql, -1, st, NULL) != SQLITE_OK)
        return trace_sqlite_fail(t, err, "preparing a query");
    return NESIM_OK;
}

char *trace_col_strdup(sqlite3_stmt *st, int col, bool *oom)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    if (!s)
        return NULL;
    char *d = strdup((const char *)s);
    if (!d)
        *oom = true;
    return d;
}

void trace_now_iso(char buf[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, 32 - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

int trace_bad_row(nesim_trace *t, nesim_error *err, const char *table, int64_t run, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nesim_fail(err, NESIM_EINVAL, "%s: table %s, run %lld, %s (a corrupt or edited trace)", t->path, table,
                      (long long)run, what);
}

int trace_check_idle(nesim_trace *t, nesim_error *err)
{
    if (t->w)
        return nesim_fail(err, NESIM_ESTATE, "%s: a run is being written; read it after nesim_trace_end_run",
                          t->path);
    return NESIM_OK;
}

int trace_check_run(nesim_trace *t, int64_t run, nesim_error *err)
{
    int rc = trace_check_idle(t, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = trace_prepare(t, "SELECT (SELECT 1 FROM runs WHERE id = ?1), min(id), max(id) FROM runs", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = trace_sqlite_fail(t, err, "reading runs");
    } else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: no run %lld (the trace holds no runs)", t->path,
                            (long long)run);
        else
            rc = nesim_fail(err, NESIM_EINVAL, "%s: no run %lld (runs: %lld..%lld)", t->path, (long long)run,
                            (long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
    return rc;
}

int trace_decode_group(const char *txt, size_t len, trace_ns **v, size_t *n, size_t *cap, nesim_error *err)
{
    const char *p = txt, *end = txt + len;
    if (p == end || *p++ != '[')
        goto bad;
    while (p < end && *p == ' ')
        p++;
    if (p < end && *p == ']' && p + 1 == end)
        return NESIM_OK;
    for (;;) {
        bool neg = false;
        if (p < end && *p == '-')
            neg = true, p++;
        if (p == end || *p < '0' || *p > '9')
            goto bad;
        int64_t x = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (x > (INT64_MAX - 9) / 10)
                goto bad;
            x = x * 10 + (*p++ - '0');
        }
        if (neg && x == 0)
            goto bad;
        trace_ns *nv = nesim_grown(*v, *n + 1, cap, sizeof *nv, 1024);
        if (!nv)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        *v = nv;
        /* -1 - neuron encodes sign -1 (see store.h): -6 is neuron 5 */
        (*v)[(*n)++] = (trace_ns){.neuron = neg ? x - 1 : x, .sign = neg ? -1 : 1};
        while (p < end && *p == ' ')
            p++;
        if (p < end && *p == ',') {
            p++;
            while (p < end && *p == ' ')
                p++;
            continue;
        }
        if (p < end && *p == ']' && p + 1 == end)
            return NESIM_OK;
        goto bad;
    }
bad:
    return nesim_fail(err, NESIM_EINVAL, "corrupt spike_groups row: '%.40s'", txt);
}

/* ---- opening ---- */

static int read_identity(nesim_trace *t, int *app_id, int *version, int *objects, nesim_error *err)
{
    sqlite3_stmt *st;
    /* The first read of the file: where a non-SQLite file is detected. */
    if (sqlite3_prepare_v2(t->db,
                           "SELECT (SELECT application_id FROM pragma_application_id),"
                           " (SELECT user_version FROM pragma_user_version),"
                           " (SELECT count(*) FROM sqlite_schema)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        goto fail;
    }
    *app_id = sqlite3_column_int(st, 0);
    *version = sqlite3_column_int(st, 1);
    *objects = sqlite3_column_int(st, 2);
    sqlite3_finalize(st);
    return NESIM_OK;
fail:;
    int rc = sqlite3_errcode(t->db) & 0xff;
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT || rc == SQLITE_CANTOPEN)
        return nesim_fail(err, NESIM_EINVAL, "%s: not a nesim trace: %s", t->path, sqlite3_errmsg(t->db));
    return trace_sqlite_fail(t, err, "reading the schema");
}

static int exec(nesim_trace *t, const char *sql, const char *what, nesim_error *err)
{
    if (sqlite3_exec(t->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return trace_sqlite_fail(t, err, what);
    return NESIM_OK;
}

static int create_schema(nesim_trace *t, nesim_error *err)
{
    /* WAL is a property of the file; it must be set outside a transaction.
     * The page size (before the first write): 16 KiB pages hold rows of a
     * few thousand bytes without overflow pages (writer.c's CHUNK). */
    int rc = exec(t, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL", "setting WAL mode", err);
    if (!rc)
        rc = exec(t, "BEGIN IMMEDIATE", "creating the schema", err);
    if (rc)
        return rc;
    int app, ver, objects;
    if ((rc = read_identity(t, &app, &ver, &objects, err))) {
        sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (objects == 0) { /* still empty: nobody created it while we waited for the lock */
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 NESIM_TRACE_APPLICATION_ID, NESIM_TRACE_SCHEMA_VERSION);
        rc = exec(t, schema_sql, "creating the schema", err);
        if (!rc)
            rc = exec(t, pragmas, "creating the schema", err);
    }
    if (!rc)
        rc = exec(t, "COMMIT", "creating the schema", err);
    if (rc)
        sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* The last failure was SQLite unable to create or write the -shm/-wal files
 * (read-only file system, or no write permission on the folder). */
static bool read_only_place(sqlite3 *db)
{
    int e = sqlite3_extended_errcode(db);
    int p = e & 0xff;
    return p == SQLITE_CANTOPEN || p == SQLITE_READONLY || e == SQLITE_IOERR_SHMOPEN || e == SQLITE_IOERR_SHMSIZE;
}

/* Opens path as an immutable, read-only URI (path percent-encoded). */
static int open_immutable(const char *path, sqlite3 **db)
{
    size_t n = strlen(path);
    char *uri = malloc(3 * n + 32);
    if (!uri)
        return SQLITE_NOMEM;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#' || *c < 0x21 || *c >= 0x7f)
            o += sprintf(o, "%%%02X", *c);
        else
            *o++ = (char)*c;
    }
    strcpy(o, "?immutable=1");
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    free(uri);
    return rc;
}

bool nesim_trace_is_immutable(const nesim_trace *t) { return t && t->immutable; }
bool nesim_trace_wal_unread(const nesim_trace *t) { return t && t->wal_unread; }

int nesim_trace_open(const char *path, nesim_trace_mode mode, nesim_trace **out, nesim_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return nesim_fail(err, NESIM_EINVAL, "trace: no file name given");
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return nesim_fail(err, NESIM_EINVAL, "%s: is a directory, not a trace database", path);
    } else if (mode == NESIM_TRACE_READ) {
        return nesim_fail(err, NESIM_EINVAL, "%s: %s", path, strerror(errno));
    }
    nesim_trace *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    t->mode = mode;
    /* NOMUTEX: one thread uses the connection at a time (the caller's, or the
     * writer thread during a run, handed over by pthread_create/join), so
     * SQLite's per-call mutexes would only cost time. */
    int flags = (mode == NESIM_TRACE_READ ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    int rc = NESIM_OK, orc = sqlite3_open_v2(path, &t->db, flags, NULL);
    if (orc != SQLITE_OK && mode == NESIM_TRACE_READ) {
        /* A read-write connection is preferred for reading because the last
         * connection to close then checkpoints and removes the -wal/-shm
         * files; a file we may not write is still read, read-only. */
        sqlite3_close_v2(t->db);
        t->db = NULL;
        orc = sqlite3_open_v2(path, &t->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    }
    if (orc != SQLITE_OK) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: cannot open: %s", path,
                        t->db ? sqlite3_errmsg(t->db) : "out of memory");
        goto done;
    }
    sqlite3_extended_result_codes(t->db, 1);
    sqlite3_busy_timeout(t->db, 10000);
    int app, ver, objects;
    rc = read_identity(t, &app, &ver, &objects, err);
    if (rc && mode == NESIM_TRACE_READ && read_only_place(t->db)) {
        /* a file left in WAL mode needs its -shm beside it: on read-only
         * media (or in a folder we may not write) read it as immutable */
        sqlite3_close_v2(t->db);
        t->db = NULL;
        if (open_immutable(path, &t->db) == SQLITE_OK) {
            sqlite3_extended_result_codes(t->db, 1);
            t->immutable = true;
            char wal[4096];
            struct stat ws;
            snprintf(wal, sizeof wal, "%s-wal", path);
            t->wal_unread = stat(wal, &ws) == 0 && ws.st_size > 0;
            rc = read_identity(t, &app, &ver, &objects, err);
        }
    }
    if (rc)
        goto done;
    if (objects == 0 && app == 0 && ver == 0) {
        if (mode == NESIM_TRACE_READ) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: an empty database, not a nesim trace", path);
            goto done;
        }
        if ((rc = create_schema(t, err)) || (rc = read_identity(t, &app, &ver, &objects, err)))
            goto done;
    }
    if (app != NESIM_TRACE_APPLICATION_ID) {
        rc = nesim_fail(err, NESIM_EINVAL,
                        "%s: an SQLite database, but not a nesim trace (application_id %d, user_version %d, "
                        "%d schema objects)",
                        path, app, ver, objects);
        goto done;
    }
    if (ver != NESIM_TRACE_SCHEMA_VERSION) {
        if (ver >= 1 && ver < NESIM_TRACE_SCHEMA_VERSION)
            rc = nesim_fail(err, NESIM_EINVAL,
                            "%s: trace schema version %d; this nesim (%s) reads version %d: convert it in place with "
                            "`nesim trace upgrade %s` (or re-record the run)",
                            path, ver, nesim_version(), NESIM_TRACE_SCHEMA_VERSION, path);
        else
            rc = nesim_fail(err, NESIM_EINVAL, "%s: trace schema version %d; this nesim (%s) reads version %d", path,
                            ver, nesim_version(), NESIM_TRACE_SCHEMA_VERSION);
        goto done;
    }
    if (mode == NESIM_TRACE_READ) {
        /* reading never writes, whatever the connection could do */
        rc = exec(t, "PRAGMA query_only = 1", "setting up the connection", err);
    } else {
        /* NORMAL in WAL mode: a crash (even power loss) can lose the last
         * commits but never corrupts the file; FULL would fsync every batch.
         * The size limit trims the WAL file after checkpoints of big batches.
         * The page cache stays at SQLite's default (~2 MiB): inserts touch
         * few pages (one append point per layer), a 32 MiB cache measured no
         * faster, and the default keeps a traced run's memory flat (~23 MiB
         * for the writer with default batches, whatever the run's length). */
        rc = exec(t, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     " PRAGMA journal_size_limit = 67108864",
                  "setting up the connection", err);
    }
done:
    if (rc) {
        sqlite3_close_v2(t->db);
        free(t->path);
        free(t);
        return rc;
    }
    *out = t;
    return NESIM_OK;
}

void nesim_trace_close(nesim_trace *t)
{
    if (!t)
        return;
    if (t->w && t->end_active)
        t->end_active(t); /* a run still recording ends as failed */
    if (t->wrote && t->db) {
        /* A clean finish folds the WAL back into the file, so a reader in a
         * place it cannot write (read-only media, another user's folder)
         * reads it whole as immutable. The file stays in WAL mode: switching
         * out would make live readers and the next writer block each other. */
        sqlite3_busy_timeout(t->db, 0);
        sqlite3_exec(t->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    sqlite3_close_v2(t->db);
    free(t->path);
    free(t);
}

const char *nesim_trace_path(const nesim_trace *t) { return t->path; }

struct sqlite3 *nesim_trace_sqlite(nesim_trace *t) { return t->w ? NULL : t->db; }

/* ---- stop signals ---- */

static const int stop_signals[NESIM_TRACE_STOP_SIGNALS] = {SIGINT, SIGTERM, SIGHUP};

/* The one piece of process-wide state: what a signal handler may touch. */
static volatile sig_atomic_t stop_flag;

static void on_stop(int sig) { stop_flag = sig; }

int nesim_trace_signals_install(nesim_trace_sigsave *old, nesim_error *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NESIM_TRACE_STOP_SIGNALS; i++)
        sigaddset(&sa.sa_mask, stop_signals[i]);
    /* RESETHAND: a second signal gets the default action (terminate), so a
     * stuck run can still be stopped. RESTART: the run loop's system calls
     * carry on instead of failing with EINTR. */
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    stop_flag = 0;
    for (int i = 0; i < NESIM_TRACE_STOP_SIGNALS; i++)
        if (sigaction(stop_signals[i], &sa, old ? &old->old[i] : NULL) != 0) {
            int e = errno;
            for (int k = 0; old && k < i; k++)
                sigaction(stop_signals[k], &old->old[k], NULL);
            return nesim_fail(err, NESIM_EIO, "installing the %s handler: %s", strsignal(stop_signals[i]),
                              strerror(e));
        }
    return NESIM_OK;
}

void nesim_trace_signals_restore(const nesim_trace_sigsave *old)
{
    for (int i = 0; old && i < NESIM_TRACE_STOP_SIGNALS; i++)
        sigaction(stop_signals[i], &old->old[i], NULL);
}

int nesim_trace_stop_signal(void) { return stop_flag; }
