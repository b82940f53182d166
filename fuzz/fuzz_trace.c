/* fuzz_trace.c — libFuzzer target for every reader of a trace database:
 * the input is not bytes of a file but edits to a valid trace — values put
 * into table cells (integers at the edges, doubles, text, JSON, blobs,
 * NULL), rows deleted and rows copied with a changed cell — so the readers
 * meet a well-formed SQLite file that lies, as a crafted database does.
 * Then every reader runs on it: runs, layers, metrics, energy, samples,
 * codes, chip steps, spikes, activity, the report (text and JSON), diff, raster and
 * activity SVG, CSV export, and replay. Each must return NESIM_OK or a clean
 * failure (NESIM_EINVAL / NESIM_EIO) with a one-line message; anything else,
 * or a crash or sanitizer report, is a finding.
 *
 * The template (a two-layer coded model with synthetic weights, its replay,
 * and a small network) is recorded once, on the first input, in a scratch
 * folder ($NESIM_FUZZ_DIR, else /dev/shm, else /tmp). */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/replay.h"
#include "jobs/run.h"
#include "traces/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], work[300], spec_path[300];
static unsigned char *tmpl;
static size_t tmpl_len;

static void die(const char *what, const nesim_error *e)
{
    fprintf(stderr, "fuzz_trace: %s: %s\n", what, e ? e->msg : "");
    abort();
}

static void make_template(void)
{
    const char *base = getenv("NESIM_FUZZ_DIR");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/nesim-fuzz-trace-XXXXXX", base);
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    snprintf(spec_path, sizeof spec_path, "%s/m.json", dir);
    char tpath[320], net_path[320];
    snprintf(tpath, sizeof tpath, "%s/template.db", dir);
    snprintf(net_path, sizeof net_path, "%s/n.json", dir);
    snprintf(work, sizeof work, "%s/work.db", dir);
    FILE *f = fopen(spec_path, "w");
    fputs("{\"nesim\":1,\"tick\":1e-3,\"seed\":1,\"input\":{\"shape\":[16]},\"layers\":["
          "{\"name\":\"a\",\"type\":\"linear\",\"weight\":{\"synthetic\":{\"dist\":\"normal\",\"std\":0.3,\"shape\":[8,16]}},"
          "\"activation\":\"relu\",\"coding\":\"bitwise-bidirectional\",\"k\":3},"
          "{\"name\":\"b\",\"type\":\"linear\",\"weight\":{\"synthetic\":{\"dist\":\"normal\",\"std\":0.3,\"shape\":[4,8]}},"
          "\"coding\":\"ternary\",\"k\":2}]}",
          f);
    fclose(f);
    f = fopen(net_path, "w");
    fputs("{\"nesim\":1,\"tick\":1e-3,\"seed\":2,\"populations\":["
          "{\"name\":\"src\",\"model\":\"poisson\",\"n\":10,\"params\":{\"rate_hz\":200}},"
          "{\"name\":\"b\",\"model\":\"lif\",\"n\":10,\"params\":{\"tau_m\":0.02,\"v_rest\":0,\"v_thresh\":0.01,"
          "\"v_reset\":0}}],\"projections\":[{\"pre\":\"src\",\"post\":\"b\",\"rule\":\"all_to_all\",\"weight\":0.004}]}",
          f);
    fclose(f);
    nesim_error e = {0};
    json_t *r = NULL;
    nesim_run_opts o = {.spec = spec_path, .random_n = 4, .trace = tpath, .record = NESIM_TRACE_SPIKES,
                        .chip = "loihi", .dense = "dense-45nm"};
    if (nesim_run_spec(&o, &r, &e))
        die("template layer run", &e);
    json_decref(r);
    nesim_replay_opts ro = {.db = tpath, .run = 1, .from_layer = "b", .record = NESIM_TRACE_SPIKES, .coding = -1};
    if (nesim_replay(&ro, &r, &e))
        die("template replay", &e);
    json_decref(r);
    nesim_run_opts no = {.spec = net_path, .seconds = 0.05, .trace = tpath, .record = NESIM_TRACE_SPIKES,
                         .chip = "loihi", .dense = "dense-45nm", .timing = 1 /* simple: chip_steps rows */};
    if (nesim_run_spec(&no, &r, &e))
        die("template network run", &e);
    json_decref(r);
    f = fopen(tpath, "rb");
    fseek(f, 0, SEEK_END);
    tmpl_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    tmpl = malloc(tmpl_len);
    if (fread(tmpl, 1, tmpl_len, f) != tmpl_len)
        die("reading the template", NULL);
    fclose(f);
}

static const struct {
    const char *table;
    const char *cols[8];
} tables[] = {
    {"runs", {"status", "samples", "virtual_ticks", "tick_s", "parent_run", "spec_text", "weights", "spike_checksum"}},
    {"layers", {"idx", "neurons", "fan_in", "spikes", "sops", "first_tick", "last_tick", "name"}},
    {"activity_blocks", {"layer", "tick", "spikes", "sops", "span", "per_tick", "run", NULL}},
    {"spike_groups", {"layer", "tick", "part", "n", "neurons", "span", "run", NULL}},
    {"samples", {"sample", "first_tick", "last_tick", "run", NULL}},
    {"codes", {"layer", "sample", "t0", "steps", "vth", "run", NULL}},
    {"metrics", {"layer", "name", "value", "run", NULL}},
    {"energy", {"layer", "term", "joules", "run", NULL}},
};

static int64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* Binds a value of the kind b[0] picks from the bytes after it. */
static void bind_value(sqlite3_stmt *st, int i, const uint8_t *b, size_t n)
{
    static const int64_t edges[] = {-1, 0, 1, 2, 63, 64, 127, 128, 4095, 65536, 2147483647, 2147483648LL,
                                    4294967296LL, INT64_C(1) << 62, INT64_MAX, INT64_MIN};
    switch (b[0] % 8) {
    case 0: sqlite3_bind_int64(st, i, edges[b[1] % 16]); break;
    case 1: sqlite3_bind_int64(st, i, rd64(b + 1)); break;
    case 2: {
        double d;
        memcpy(&d, b + 1, sizeof d);
        sqlite3_bind_double(st, i, d);
        break;
    }
    case 3: sqlite3_bind_null(st, i); break;
    case 4: sqlite3_bind_blob(st, i, b + 1, (int)(n - 1), SQLITE_TRANSIENT); break;
    case 5: {
        static const char *const json[] = {"[]", "[1,2,3]", "[-1,-2]", "[99999999999]", "[\"x\"]", "[1e400]",
                                           "{}", "[", "[1,,2]", "[3,2,1]", "[0,0,0]", "null"};
        sqlite3_bind_text(st, i, json[b[1] % 12], -1, SQLITE_STATIC);
        break;
    }
    default: sqlite3_bind_text(st, i, (const char *)b + 1, (int)(n - 1), SQLITE_TRANSIENT); break;
    }
}

/* One edit from 16 bytes: [op, table, column, row, value kind, 8 payload, ...]. */
static void edit(sqlite3 *db, const uint8_t *b)
{
    size_t t = b[1] % (sizeof tables / sizeof *tables), nc = 0;
    while (nc < 8 && tables[t].cols[nc])
        nc++;
    const char *tab = tables[t].table, *col = tables[t].cols[b[2] % nc];
    char sql[600];
    sqlite3_stmt *st = NULL;
    switch (b[0] % 4) {
    case 0:
    case 3:
        snprintf(sql, sizeof sql,
                 "UPDATE OR IGNORE %s SET %s = ?1 WHERE rowid IN (SELECT rowid FROM %s LIMIT 1 OFFSET %d)", tab, col,
                 tab, b[3] % 32);
        if (strcmp(tab, "runs") && strcmp(tab, "metrics") && strcmp(tab, "energy")) /* WITHOUT ROWID */
            snprintf(sql, sizeof sql, "UPDATE OR IGNORE %s SET %s = ?1 WHERE run = %d", tab, col, b[3] % 4);
        break;
    case 1:
        if (!strcmp(tab, "runs") || !strcmp(tab, "metrics") || !strcmp(tab, "energy"))
            snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s LIMIT 1 OFFSET %d)", tab,
                     tab, b[3] % 32);
        else
            snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run = %d AND %s = (SELECT min(%s) FROM %s)", tab,
                     b[3] % 4, tables[t].cols[0], tables[t].cols[0], tab);
        break;
    default:
        /* a second run pointing into the others: the readers must not mix them up */
        snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO runs (status, kind, record, tick_s, started_at, nesim_version,"
                                  " virtual_ticks, samples) VALUES ('complete', 'layers', 'spikes', 0.001, 'x', 'f', ?1, 4)");
        break;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        bind_value(st, 1, b + 4, 12);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
}

static void check(int rc, const nesim_error *e, const char *what)
{
    if (rc == NESIM_OK)
        return;
    if ((rc != NESIM_EINVAL && rc != NESIM_EIO) || !e->msg[0] || strchr(e->msg, '\n')) {
        fprintf(stderr, "fuzz_trace: %s returned %d: '%s'\n", what, rc, e->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tmpl)
        make_template();
    if (size > 16 * 64)
        return 0;
    FILE *f = fopen(work, "wb");
    fwrite(tmpl, 1, tmpl_len, f);
    fclose(f);
    char side[320];
    snprintf(side, sizeof side, "%s-wal", work);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", work);
    unlink(side);
    sqlite3 *db;
    if (sqlite3_open(work, &db) != SQLITE_OK)
        abort();
    for (size_t k = 0; k + 16 <= size; k += 16)
        edit(db, data + k);
    sqlite3_close(db);

    nesim_error e = {0};
    nesim_trace *t;
    int rc = nesim_trace_open(work, NESIM_TRACE_READ, &t, &e);
    check(rc, &e, "open");
    if (rc)
        return 0;
    FILE *null = fopen("/dev/null", "w");
    nesim_trace_run *runs;
    size_t nr;
    check(nesim_trace_runs(t, &runs, &nr, &e), &e, "runs");
    if (!e.code)
        nesim_trace_runs_free(runs, nr);
    for (int64_t run = 1; run <= 4; run++) {
        e = (nesim_error){0};
        check(nesim_trace_report(t, run, null, true, &e), &e, "report json");
        check(nesim_trace_report(t, run, null, false, &e), &e, "report text");
        check(nesim_trace_diff(t, 1, run, null, true, &e), &e, "diff");
        check(nesim_trace_activity_svg(t, run, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, null, &e), &e, "activity");
        check(nesim_trace_raster_svg(t, run, 0, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, null, &e), &e, "raster");
        nesim_trace_layer *L;
        size_t nl;
        rc = nesim_trace_layers(t, run, &L, &nl, &e);
        check(rc, &e, "layers");
        if (!rc)
            nesim_trace_layers_free(L, nl);
        double *chip;
        int64_t nchip;
        if (!(rc = nesim_trace_chip_steps_get(t, run, &chip, &nchip, &e)))
            free(chip);
        check(rc, &e, "chip steps");
        nesim_trace_code_row *codes;
        size_t ncd;
        if (!(rc = nesim_trace_codes(t, run, 1, &codes, &ncd, &e)))
            free(codes);
        check(rc, &e, "codes");
        nesim_trace_spike_iter *it;
        if (!(rc = nesim_trace_spikes_open(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &it, &e))) {
            nesim_trace_spike_rec sp;
            bool got = true;
            for (int k = 0; !rc && got && k < 20000; k++)
                rc = nesim_trace_spikes_next(it, &sp, &got, &e);
            nesim_trace_spikes_close(it);
        }
        check(rc, &e, "spikes");
        nesim_trace_activity_iter *ai;
        if (!(rc = nesim_trace_activity_open(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &ai, &e))) {
            nesim_trace_activity_rec a;
            bool got = true;
            for (int k = 0; !rc && got && k < 20000; k++)
                rc = nesim_trace_activity_next(ai, &a, &got, &e);
            nesim_trace_activity_close(ai);
        }
        check(rc, &e, "activity rows");
    }
    fclose(null);
    nesim_trace_close(t);
    /* replay writes its run into the file: a fresh copy comes next time anyway */
    json_t *r = NULL;
    nesim_replay_opts ro = {.db = work, .run = 1, .from_layer = "b", .record = NESIM_TRACE_NONE, .coding = -1};
    e = (nesim_error){0};
    rc = nesim_replay(&ro, &r, &e);
    check(rc, &e, "replay");
    json_decref(r);
    return 0;
}
