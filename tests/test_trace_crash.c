/* test_trace_crash.c — a trace survives the death of its writer.
 *
 * A child process streams a long run with small batches; the parent waits
 * until some batches are committed, then
 * - SIGKILL: reopens the file: PRAGMA quick_check is ok, the run is still
 *   'running' (not complete), and the committed spikes are exactly a prefix
 *   of what the child appended, whole batches, consistent with the stored
 *   activity; the file takes a new run afterwards;
 * - SIGINT: the child's handler flag ends the run as 'interrupted'; every
 *   spike appended before the signal is stored and the run has its totals. */
#include "tests/support/check.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "traces/store.h"

#define BATCH 256
#define PER_TICK 50

/* Spike k of the child's endless run. Within a tick each layer's neurons are
 * distinct (7 is invertible mod 100). */
static void gen(int64_t k, int *layer, int64_t *neuron, int64_t *tick, int *sign)
{
    *tick = k / PER_TICK;
    int64_t j = k % PER_TICK;
    *layer = (int)(j % 2);
    *neuron = (j * 7 + *tick * 3) % 100;
    *sign = k % 3 == 0 ? -1 : 1;
}

/* The child: streams until killed, or until SIGINT when `sigint` is set;
 * then reports the number of spikes appended on fd. Never returns. */
static void child(const char *path, bool sigint, int fd)
{
    nesim_error err = {0};
    nesim_trace *t;
    if (sigint && nesim_trace_signals_install(NULL, &err))
        _exit(3);
    if (nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err))
        _exit(4);
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4,
                                 .batch_spikes = BATCH};
    int64_t run;
    if (nesim_trace_begin_run(t, &info, &run, &err))
        _exit(5);
    nesim_trace_layer_info a = {.name = "exc", .neurons = 100}, b = {.name = "inh", .neurons = 100};
    int idx;
    if (nesim_trace_add_layer(t, &a, &idx, &err) || nesim_trace_add_layer(t, &b, &idx, &err))
        _exit(6);
    int64_t k = 0;
    while (!(sigint && nesim_trace_sigint_seen())) {
        int layer, sign;
        int64_t neuron, tick;
        gen(k, &layer, &neuron, &tick, &sign);
        /* activity first: a batch handed over at this spike carries it */
        if (nesim_trace_activity(t, layer, tick, 1, 3) || nesim_trace_spike(t, layer, neuron, tick, sign) ||
            nesim_trace_sync(t))
            _exit(7);
        k++;
        if (k % PER_TICK == 0) {
            struct timespec ts = {0, 20000}; /* ~ a slow simulation: 2.5 M spikes/s at most */
            nanosleep(&ts, NULL);
        }
    }
    if (nesim_trace_end_run(t, NESIM_TRACE_INTERRUPTED, &err))
        _exit(8);
    nesim_trace_close(t);
    if (write(fd, &k, sizeof k) != sizeof k)
        _exit(9);
    _exit(0);
}

/* Spikes committed so far, read the way a second process would. */
static int64_t committed(const char *path)
{
    sqlite3 *db;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(n), 0) FROM spike_groups", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return n;
}

static pid_t start(const char *path, bool sigint, int fds[2], int batches)
{
    char b[600];
    remove(path);
    snprintf(b, sizeof b, "%s-wal", path);
    remove(b);
    snprintf(b, sizeof b, "%s-shm", path);
    remove(b);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child(path, sigint, fds[1]);
    }
    close(fds[1]);
    /* wait for `batches` committed batches (at most 60 s) */
    for (int i = 0; i < 3000; i++) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            fail_msg("the child died early (status %d)", st);
        if (committed(path) >= batches * BATCH)
            return pid;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("no batches committed within 60 s");
    return -1;
}

static char *pragma_text(nesim_trace *t, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(nesim_trace_sqlite(t), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *s = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return s;
}

typedef struct rec {
    int layer;
    int64_t tick, neuron;
    int sign;
} rec;

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer - y->layer;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

/* The stored spikes are exactly generated spikes 0..m-1. */
static void check_prefix(nesim_trace *t, int64_t run, int64_t m)
{
    nesim_error err = {0};
    rec *want = malloc((size_t)m * sizeof *want);
    assert_non_null(want);
    for (int64_t k = 0; k < m; k++)
        gen(k, &want[k].layer, &want[k].neuron, &want[k].tick, &want[k].sign);
    qsort(want, (size_t)m, sizeof *want, cmp_rec);
    nesim_trace_spike_iter *it;
    assert_ok(nesim_trace_spikes_open(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &it, &err), &err);
    nesim_trace_spike_rec s;
    bool got;
    int64_t i = 0;
    while (nesim_trace_spikes_next(it, &s, &got, &err) == 0 && got) {
        assert_true(i < m);
        if (s.layer != want[i].layer || s.tick != want[i].tick || s.neuron != want[i].neuron || s.sign != want[i].sign)
            fail_msg("stored spike %lld is not generated spike %lld", (long long)i, (long long)i);
        i++;
    }
    nesim_trace_spikes_close(it);
    assert_int_equal(i, m);
    free(want);
}

static void sigkill_once(int round)
{
    nesim_error err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/killed%d.db", test_tmpdir(), round);
    int fds[2];
    pid_t pid = start(path, false, fds, 40 + 37 * round);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(fds[0]);

    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    char *qc = pragma_text(t, "PRAGMA quick_check");
    assert_string_equal(qc, "ok");
    free(qc);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, 1, &r, &err), &err);
    /* still 'running' in the file; its writer's process is gone, so readers
     * call it abandoned */
    assert_int_equal(r.status, NESIM_TRACE_ABANDONED);
    assert_int_equal(r.writer_pid, pid);
    assert_non_null(r.heartbeat_at);
    assert_null(r.ended_at);
    assert_int_equal(r.virtual_ticks, -1);
    nesim_trace_run_clear(&r);

    /* whole commits only (the child syncs after every spike, so a batch is
     * handed over and committed at half its capacity), and exactly the
     * first spikes appended */
    int64_t m;
    assert_ok(nesim_trace_spike_count(t, 1, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &m, &err), &err);
    assert_true(m >= 40 * BATCH);
    (void)round;
    assert_int_equal(m % (BATCH / 2), 0);
    check_prefix(t, 1, m);

    /* activity committed with its spikes: per layer and tick they agree, and
     * the rebuilt totals say so */
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(nesim_trace_sqlite(t),
                                        "SELECT count(*) FROM activity a FULL JOIN"
                                        " (SELECT layer, tick, count(*) AS n FROM spikes GROUP BY layer, tick) s"
                                        " USING (layer, tick) WHERE a.spikes IS NOT s.n OR a.sops IS NOT 3 * s.n",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(q, 0), 0);
    sqlite3_finalize(q);
    nesim_trace_layer *L;
    size_t nl;
    assert_ok(nesim_trace_layers(t, 1, &L, &nl, &err), &err);
    assert_int_equal(nl, 2);
    assert_false(L[0].totals_final);
    assert_int_equal(L[0].spikes + L[1].spikes, m);
    assert_int_equal(L[0].sops + L[1].sops, 3 * m);
    nesim_trace_layers_free(L, nl);
    /* the report says the run did not end */
    FILE *f = tmpfile();
    assert_ok(nesim_trace_report(t, 1, f, false, &err), &err);
    rewind(f);
    char buf[4096];
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = 0;
    fclose(f);
    assert_non_null(strstr(buf, "abandoned"));
    assert_non_null(strstr(buf, "not ended"));
    nesim_trace_close(t);

    /* and the file takes the next run */
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    assert_int_equal(run, 2);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    nesim_trace_close(t);
}

/* Several rounds, killed after different numbers of batches, so the kill
 * lands at different points of the writer's cycle (appending, inside a
 * transaction, committing). */
static void test_sigkill(void **state)
{
    for (int round = 0; round < 5; round++)
        sigkill_once(round);
}

static void test_sigint(void **state)
{
    nesim_error err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/interrupted.db", test_tmpdir());
    int fds[2];
    pid_t pid = start(path, true, fds, 40);
    assert_int_equal(kill(pid, SIGINT), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child: %s %d", WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    int64_t appended = -1;
    assert_int_equal(read(fds[0], &appended, sizeof appended), sizeof appended);
    close(fds[0]);

    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    char *qc = pragma_text(t, "PRAGMA quick_check");
    assert_string_equal(qc, "ok");
    free(qc);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, 1, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_INTERRUPTED);
    assert_non_null(r.ended_at);
    int64_t last_tick = (appended - 1) / PER_TICK;
    assert_int_equal(r.virtual_ticks, last_tick + 1);
    nesim_trace_run_clear(&r);
    /* everything appended before the signal, the current batch included */
    int64_t m;
    assert_ok(nesim_trace_spike_count(t, 1, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &m, &err), &err);
    assert_int_equal(m, appended);
    check_prefix(t, 1, m);
    nesim_trace_layer *L;
    size_t nl;
    assert_ok(nesim_trace_layers(t, 1, &L, &nl, &err), &err);
    assert_true(L[0].totals_final && L[1].totals_final);
    assert_int_equal(L[0].spikes + L[1].spikes, appended);
    nesim_trace_layers_free(L, nl);
    nesim_trace_close(t);
}

int main(void)
{
    nesim_init();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sigkill), cmocka_unit_test(test_sigint)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
