/* test_replay.c — nesim run --trace, the report rebuilt from the database,
 * replay (identity, chip only, coding change, changed weights) and Ctrl-C. */
#include "tests/support/check.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "traces/store.h"

static const char *bin(void) { return getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim"; }

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        fail_msg("%s: %s", path, je.text);
    return j;
}

static const char *DIGITS = "examples/digits/model.json --input examples/digits/test_inputs.npy";

/* The spikes of a layer in a run, as (tick, neuron, sign) triples. */
static size_t spikes_of(nesim_trace *t, int64_t run, int layer, int64_t **out)
{
    nesim_error err = {0};
    nesim_trace_spike_iter *it;
    assert_ok(nesim_trace_spikes_open(t, run, layer, 0, NESIM_TRACE_TICK_MAX, &it, &err), &err);
    size_t n = 0, cap = 1024;
    int64_t *v = malloc(cap * 3 * sizeof *v);
    for (bool got = true;;) {
        nesim_trace_spike_rec s;
        assert_ok(nesim_trace_spikes_next(it, &s, &got, &err), &err);
        if (!got)
            break;
        if (n == cap)
            v = realloc(v, (cap *= 2) * 3 * sizeof *v);
        v[3 * n] = s.tick, v[3 * n + 1] = s.neuron, v[3 * n + 2] = s.sign;
        n++;
    }
    nesim_trace_spikes_close(it);
    *out = v;
    return n;
}

/* Fails naming the path where two report trees differ. */
static void same_tree(const json_t *a, const json_t *b, const char *path)
{
    char sub[512];
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            same_tree(v, json_object_get(b, k), sub);
        }
        json_object_foreach((json_t *)b, k, v)
            if (!json_object_get(a, k))
                fail_msg("%s.%s: only in the database's report", path, k);
        return;
    }
    if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            same_tree(json_array_get(a, i), json_array_get(b, i), sub);
        }
        return;
    }
    if (!a || !b || !json_equal(a, b))
        fail_msg("%s: live %s, database %s", path, a ? json_dumps(a, JSON_ENCODE_ANY) : "(none)",
                 b ? json_dumps(b, JSON_ENCODE_ANY) : "(none)");
}

/* The report `nesim trace show` rebuilds from the database alone is the
 * live one, key for key and value for value (the trace adds "run", where it
 * came from; the live report has "trace_close_s", which no trace can hold). */
static void check_same_report(const char *run_args)
{
    const char *d = test_tmpdir();
    assert_int_equal(sh("rm -f %s/r.db; %s run %s --trace %s/r.db --json --quiet > %s/live.json", d, bin(), run_args, d, d),
                     0);
    assert_int_equal(sh("%s trace show %s/r.db --json > %s/db.json", bin(), d, d), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/live.json", d);
    json_t *live = load_json(p);
    snprintf(p, sizeof p, "%s/db.json", d);
    json_t *db = load_json(p);
    assert_non_null(json_object_get(live, "trace_close_s"));
    assert_non_null(json_object_get(db, "run"));
    json_object_del(live, "trace_close_s");
    json_object_del(db, "run");
    assert_true(json_array_size(json_object_get(live, "layers")) >= 3);
    same_tree(live, db, "report");
    json_decref(live);
    json_decref(db);
}

static void test_report_from_db_equals_live(void **st)
{
    check_same_report("examples/digits/model.json --input examples/digits/test_inputs.npy --labels "
                      "examples/digits/test_labels.npy");
    check_same_report("tests/pinned/mixed.json --seconds 0.2"); /* a network: populations as layers */
}

static void test_replay_identity_and_chip(void **st)
{
    const char *d = test_tmpdir();
    nesim_error err = {0};
    assert_int_equal(sh("rm -f %s/p.db; %s run %s --trace %s/p.db --quiet > /dev/null", d, bin(), DIGITS, d), 0);
    assert_int_equal(sh("%s replay %s/p.db --run 1 --from-layer fc2 --quiet > /dev/null", bin(), d), 0);
    assert_int_equal(sh("%s replay %s/p.db --run 1 --from-layer 1 --chip truenorth --quiet > /dev/null", bin(), d), 0);
    assert_int_equal(sh("%s replay %s/p.db --run 1 --from-layer fc2 --coding ternary --k 2 --quiet > /dev/null", bin(), d), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/p.db", d);
    nesim_trace *t;
    assert_ok(nesim_trace_open(p, NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_run r;
    for (int64_t run = 2; run <= 4; run++) {
        assert_ok(nesim_trace_get_run(t, run, &r, &err), &err);
        assert_int_equal(r.parent_run, 1);
        assert_int_equal(r.status, NESIM_TRACE_COMPLETE);
        nesim_trace_run_clear(&r);
    }
    /* nothing changed (2) and chip only (3): fc2 and fc3 spike for spike as before */
    for (int layer = 1; layer <= 2; layer++) {
        int64_t *a, *b, *c, *e;
        size_t na = spikes_of(t, 1, layer, &a), nb = spikes_of(t, 2, layer, &b), nc = spikes_of(t, 3, layer, &c);
        assert_true(na > 1000);
        assert_int_equal(na, nb);
        assert_int_equal(na, nc);
        assert_memory_equal(a, b, na * 3 * sizeof *a);
        assert_memory_equal(a, c, na * 3 * sizeof *a);
        /* the coding change (4): fc2 replays the same, fc3 sees another coding */
        size_t ne = spikes_of(t, 4, layer, &e);
        if (layer == 1)
            assert_true(ne == na && memcmp(a, e, na * 3 * sizeof *a) == 0);
        else
            assert_true(ne != na || memcmp(a, e, na * 3 * sizeof *a) != 0);
        free(a), free(b), free(c), free(e);
    }
    /* chip only: the same work, other energy */
    nesim_trace_totals t2, t3;
    assert_ok(nesim_trace_totals_get(t, 2, &t2, &err), &err);
    assert_ok(nesim_trace_totals_get(t, 3, &t3, &err), &err);
    assert_int_equal(t2.spikes, t3.spikes);
    assert_int_equal(t2.sops, t3.sops);
    assert_true(t2.has_energy && t3.has_energy && t2.joules != t3.joules);
    nesim_trace_close(t);
}

static void test_replay_detects_changed_weights(void **st)
{
    const char *d = test_tmpdir();
    assert_int_equal(sh("rm -rf %s/m && mkdir -p %s/m && cp examples/digits/*.npy examples/digits/model.json %s/m/", d, d, d), 0);
    assert_int_equal(sh("rm -f %s/w.db; %s run %s/m/model.json --input %s/m/test_inputs.npy --trace %s/w.db --quiet > /dev/null",
                        d, bin(), d, d, d), 0);
    /* rewrite fc3's weights with other values, same shape */
    assert_int_equal(sh("cp %s/m/fc2.weight.npy %s/m/fc2.weight.npy.bak && "
                        "printf '\\001' | dd of=%s/m/fc2.weight.npy bs=1 seek=200 conv=notrunc 2>/dev/null", d, d, d), 0);
    assert_int_equal(sh("%s replay %s/w.db --run 1 --from-layer fc2 --quiet 2> %s/err.txt", bin(), d, d), 2);
    assert_int_equal(sh("grep -q 'fc2.weight.npy: changed since run 1' %s/err.txt", d), 0);
    assert_int_equal(sh("rm %s/m/fc2.weight.npy.bak %s/m/fc2.weight.npy", d, d), 0);
    assert_int_equal(sh("%s replay %s/w.db --run 1 --from-layer fc2 --quiet 2> %s/err.txt", bin(), d, d), 2);
    assert_int_equal(sh("grep -q 'missing' %s/err.txt", d), 0);
    /* bad arguments: one line, exit 2 */
    assert_int_equal(sh("%s replay %s/w.db --run 9 --from-layer fc2 2>/dev/null", bin(), d), 2);
    assert_int_equal(sh("%s replay %s/w.db --run 1 --from-layer nope 2>/dev/null", bin(), d), 2);
    assert_int_equal(sh("%s replay /etc/hostname --run 1 --from-layer fc2 2>/dev/null", bin()), 2);
}

/* Ctrl-C in the middle of a traced run: the run is marked interrupted. */
static void test_sigint_marks_interrupted(void **st)
{
    const char *d = test_tmpdir();
    char spec[512], db[512];
    snprintf(spec, sizeof spec, "%s/big.json", d);
    snprintf(db, sizeof db, "%s/i.db", d);
    FILE *f = fopen(spec, "w");
    fputs("{\"nesim\":1,\"tick\":1e-3,\"input\":{\"shape\":[512]},\"layers\":["
          "{\"name\":\"a\",\"type\":\"linear\",\"weight\":{\"synthetic\":{\"dist\":\"normal\",\"std\":0.05,\"shape\":[512,512]}}},"
          "{\"name\":\"b\",\"type\":\"linear\",\"weight\":{\"synthetic\":{\"dist\":\"normal\",\"std\":0.05,\"shape\":[64,512]}}}]}",
          f);
    fclose(f);
    unlink(db);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin(), bin(), "run", spec, "--random-input", "20000", "--trace", db, "--quiet", (char *)NULL);
        _exit(127);
    }
    /* wait until the run is under way, then interrupt it */
    for (int i = 0; i < 2400 && !test_spikes_on_disk(db); i++)
        usleep(50000);
    usleep(200000); /* some samples recorded */
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    /* the trace marked, nesim dies of the signal it got, as a shell expects */
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
    nesim_error err = {0};
    nesim_trace *t;
    assert_ok(nesim_trace_open(db, NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, 1, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_INTERRUPTED);
    nesim_trace_run_clear(&r);
    int64_t n;
    assert_ok(nesim_trace_spike_count(t, 1, -1, 0, NESIM_TRACE_TICK_MAX, &n, &err), &err);
    assert_true(n > 0); /* what was recorded is kept */
    nesim_trace_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_from_db_equals_live),
        cmocka_unit_test(test_replay_identity_and_chip),
        cmocka_unit_test(test_replay_detects_changed_weights),
        cmocka_unit_test(test_sigint_marks_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
