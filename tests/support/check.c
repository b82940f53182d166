/* check.c — test helpers. */
#include "tests/support/check.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *test_tmpdir(void)
{
    static char dir[256]; /* test-process scratch; tests are single-threaded */
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/nesim-test-XXXXXX");
        if (!mkdtemp(dir))
            fail_msg("mkdtemp failed");
    }
    return dir;
}

const char *test_tmp(const char *name)
{
    static char buf[16][512]; /* test-process scratch; tests are single-threaded */
    static int k;
    char *p = buf[k++ % 16];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

bool test_spikes_on_disk(const char *db)
{
    if (access(db, F_OK) != 0)
        return false;
    sqlite3 *h;
    bool yes = false;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 100);
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h, "SELECT EXISTS (SELECT 1 FROM spike_groups)", -1, &q, NULL) == SQLITE_OK) {
            yes = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0);
            sqlite3_finalize(q);
        }
    }
    sqlite3_close(h);
    return yes;
}

char *test_table_text(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    size_t cap = 1 << 16, n = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    t[0] = 0;
    while (sqlite3_step(s) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            const char *v = (const char *)sqlite3_column_text(s, c);
            size_t l = v ? strlen(v) : 4;
            while (n + l + 2 > cap)
                assert_non_null(t = realloc(t, cap *= 2));
            memcpy(t + n, v ? v : "NULL", l);
            n += l;
            t[n++] = c + 1 < sqlite3_column_count(s) ? '|' : '\n';
            t[n] = 0;
        }
    sqlite3_finalize(s);
    sqlite3_close(h);
    return t;
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return b;
}

void test_strip_machine(json_t *r)
{
    const char *top[] = {"wall_s", "peak_rss_mib", "phases_s", "mpi", "threads", "trace_close_s"};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        json_object_del(r, top[i]);
    json_object_del(json_object_get(r, "chip_usage"), "map_s");
    json_object_del(json_object_get(r, "totals"), "queue_max");
    json_object_del(json_object_get(r, "totals"), "queue_mean");
}

void test_assert_same_report(json_t *ref, json_t *r, const char *what)
{
    if (json_equal(ref, r))
        return;
    char *a = json_dumps(ref, JSON_SORT_KEYS | JSON_COMPACT), *b = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
    size_t d = 0;
    while (a[d] && a[d] == b[d])
        d++;
    fail_msg("%s differs from one process at byte %zu:\n  one: %.300s\n  it:  %.300s", what, d,
             a + (d > 100 ? d - 100 : 0), b + (d > 100 ? d - 100 : 0));
}

void test_assert_same_trace(const char *a, const char *b, const char *what)
{
    const char *q[] = {"SELECT * FROM spike_groups ORDER BY 1, 2, 3, 4", "SELECT * FROM activity_blocks ORDER BY 1, 2, 3",
                       "SELECT status, virtual_ticks, spike_checksum, samples FROM runs",
                       "SELECT count(*) FROM spikes"};
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        char *x = test_table_text(a, q[i]), *y = test_table_text(b, q[i]);
        if (strcmp(x, y))
            fail_msg("%s: %s differs", what, q[i]);
        if (i == 0)
            assert_true(strlen(x) > 1000);
        if (i == 2)
            assert_non_null(strstr(x, "complete"));
        free(x), free(y);
    }
}
