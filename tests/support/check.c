/* check.c — test helpers. */
#include "tests/support/check.h"

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
