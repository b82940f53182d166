/* test_lm_trace.c — a language-model run recorded in a trace and replayed:
 * the trace's per-projection spikes against PyTorch's counts (reference.py),
 * its token stream and codes against the run; a replay with nothing changed
 * gives the same logits (byte for byte) and spike trains; a replay with a new
 * coding after layer L gives exactly what a direct run of the edited spec
 * gives; a trace that disagrees with the recomputation, a graded layer and a
 * run without spikes are refused. */
#include "tests/support/check.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs/lm.h"
#include "jobs/replay.h"
#include "net/lm.h"
#include "net/tensor.h"

#define DIR "examples/tiny-lm"
#define REF DIR "/reference/"


static int64_t q1(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static void exec_sql(const char *db, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(h);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x), free(y);
}

/* Spikes of run a's trains of layers lo..hi missing from run b, or b's
 * from a, with ticks counted from their token's first tick (a replay's
 * tokens may start at other ticks when later layers take more steps). */
static int64_t trains_differ(const char *db, int a, int b, int lo, int hi)
{
    char sql[4096], rows[2][512];
    for (int k = 0; k < 2; k++)
        snprintf(rows[k], sizeof rows[k],
                 "SELECT g.layer, s.sample, g.tick - s.first_tick, g.neuron, g.sign FROM spikes g JOIN "
                 "samples s ON s.run = g.run AND g.tick BETWEEN s.first_tick AND s.last_tick WHERE g.run = %d AND "
                 "g.layer BETWEEN %d AND %d", k ? b : a, lo, hi);
    snprintf(sql, sizeof sql, "SELECT (SELECT count(*) FROM (%s EXCEPT %s)) + (SELECT count(*) FROM (%s EXCEPT %s))",
             rows[0], rows[1], rows[1], rows[0]);
    return q1(db, sql);
}

/* The reference tokens, traced: run 1 of db, logits in out. */
static void record_reference(const char *db, const char *out, nesim_trace_level level)
{
    nesim_error err = {0};
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.dir = DIR;
    o.tokens = REF "tokens.npy";
    o.output = out;
    o.trace = db;
    o.record = level;
    o.chip = "none";
    unlink(db);
    json_t *rep = NULL;
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "trace"), "run")), 1);
    json_decref(rep);
}

static void test_trace_holds_the_run(void **st)
{
    const char *db = test_tmp("lm.db"), *y = test_tmp("y.npy");
    record_reference(db, y, NESIM_TRACE_SPIKES);
    nesim_error err = {0};
    nesim_lm_model *m;
    assert_ok(nesim_lm_open(DIR, &m, &err), &err);
    const int np = (int)(m->cfg.layers * NESIM_LM_NPROJ + 1);
    assert_int_equal(q1(db, "SELECT count(*) FROM layers WHERE run = 1"), np + 1);
    assert_int_equal(q1(db, "SELECT status = 'complete' AND samples = 96 FROM runs WHERE id = 1"), 1);
    /* the token stream: one spike per sample, its id, at the sample's first tick */
    nesim_tensor toks, cnt, ref, got;
    assert_ok(nesim_npy_load(REF "tokens.npy", &toks, &err), &err);
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT s.neuron, s.tick = p.first_tick FROM spikes s JOIN samples p ON "
                                           "p.run = s.run AND s.tick BETWEEN p.first_tick AND p.last_tick WHERE s.run = "
                                           "1 AND s.layer = 0 ORDER BY s.tick", -1, &q, NULL),
                     SQLITE_OK);
    size_t n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        assert_true(n < toks.count);
        assert_int_equal(sqlite3_column_int64(q, 0), (int64_t)nesim_tensor_get(&toks, n));
        assert_int_equal(sqlite3_column_int(q, 1), 1);
        n++;
    }
    assert_int_equal(n, 96);
    sqlite3_finalize(q);
    sqlite3_close(h);
    /* every projection's recorded spikes against PyTorch's counts (reference.py) */
    assert_ok(nesim_npy_load(REF "spk_spikes.npy", &cnt, &err), &err);
    for (int p = 0; p < np - 1; p++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM spikes WHERE run = 1 AND layer = %d", p + 1);
        int64_t want = (int64_t)nesim_tensor_get(&cnt, (size_t)p);
        assert_int_equal(q1(db, sql), want);
        snprintf(sql, sizeof sql, "SELECT spikes FROM layers WHERE run = 1 AND idx = %d", p + 1);
        assert_int_equal(q1(db, sql), want);
        /* a spiked projection coded every token once; a graded one none */
        snprintf(sql, sizeof sql, "SELECT count(*) FROM codes WHERE run = 1 AND layer = %d", p + 1);
        assert_int_equal(q1(db, sql), p % NESIM_LM_NPROJ == NESIM_LM_DOWN ? 0 : 96);
    }
    /* activity and spikes agree tick by tick */
    assert_int_equal(q1(db, "SELECT count(*) FROM (SELECT layer, tick, count(*) AS n FROM spikes WHERE run = 1 "
                            "GROUP BY layer, tick) s LEFT JOIN activity a ON a.run = 1 AND a.layer = s.layer AND "
                            "a.tick = s.tick WHERE a.spikes IS NOT s.n"),
                     0);
    assert_int_equal(q1(db, "SELECT value FROM metrics WHERE run = 1 AND layer IS NULL AND name = 'prefill_tokens'"),
                     96);
    /* the logits written beside the trace are PyTorch's spiking reference */
    assert_ok(nesim_npy_load(REF "spk.npy", &ref, &err), &err);
    assert_ok(nesim_npy_load(y, &got, &err), &err);
    assert_int_equal(got.count, ref.count);
    double worst = 0;
    for (size_t i = 0; i < ref.count; i++)
        worst = fmax(worst, fabs(nesim_tensor_get(&got, i) - nesim_tensor_get(&ref, i)));
    assert_true(worst < 1e-3);
    nesim_tensor_release(&toks), nesim_tensor_release(&cnt), nesim_tensor_release(&ref), nesim_tensor_release(&got);
    nesim_lm_close(m);
}

static int replay(const char *db, const char *from, int coding, double k, const char *out, json_t **rep,
                  nesim_error *err)
{
    nesim_replay_opts o = {.db = db, .run = 1, .from_layer = from, .coding = coding, .k = k,
                           .record = NESIM_TRACE_SPIKES, .output = out};
    return nesim_replay(&o, rep, err);
}

static void test_replay_unchanged_and_changed(void **st)
{
    const char *db = test_tmp("lm2.db"), *y0 = test_tmp("y0.npy"), *y1 = test_tmp("y1.npy"), *y2 = test_tmp("y2.npy"),
               *y3 = test_tmp("y3.npy");
    record_reference(db, y0, NESIM_TRACE_SPIKES);
    nesim_error err = {0};
    json_t *rep = NULL;
    /* nothing changed: the same logits, byte for byte, and the same spike trains */
    assert_ok(replay(db, "layers.1.up_proj", -1, 0, y1, &rep, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "replay"), "run")), 2);
    json_decref(rep);
    assert_same_file(y0, y1);
    assert_int_equal(trains_differ(db, 1, 2, 0, 1000), 0);
    assert_int_equal(q1(db, "SELECT parent_run FROM runs WHERE id = 2"), 1);
    /* ternary, k = 2 after layers.1.up_proj (trace layer 13): the layers up to it as
       recorded, the spiked ones after it not */
    assert_ok(replay(db, "13", NESIM_CODE_TERNARY, 2.0, y2, &rep, &err), &err);
    json_decref(rep);
    assert_int_equal(trains_differ(db, 1, 3, 0, 13), 0);
    assert_true(trains_differ(db, 1, 3, 15, 1000) > 0);
    /* ... and exactly what a direct run of the spec edited that way gives */
    json_t *spec;
    assert_ok(nesim_lm_spec_build(DIR, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3.0, &spec, &err), &err);
    size_t i, p = 0;
    json_t *e;
    json_array_foreach(json_object_get(spec, "nodes"), i, e) {
        const char *t = json_string_value(json_object_get(e, "type")), *c = json_string_value(json_object_get(e, "coding"));
        if (strcmp(t, "linear"))
            continue;
        if (p++ > 12 && strcmp(c, "none")) {
            json_object_set_new(e, "coding", json_string("ternary"));
            json_object_set_new(e, "k", json_real(2.0));
        }
    }
    const char *sp = test_tmp("edited.json");
    assert_int_equal(json_dump_file(spec, sp, JSON_INDENT(1)), 0);
    json_decref(spec);
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.spec = sp;
    o.tokens = REF "tokens.npy";
    o.output = y3;
    o.chip = "none";
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    json_decref(rep);
    assert_same_file(y2, y3);
    size_t n0, n2;
    char *a = slurp(y0, &n0), *b = slurp(y2, &n2);
    assert_int_equal(n0, n2);
    assert_true(memcmp(a, b, n0) != 0); /* the change reached the logits */
    free(a), free(b);
}

static void test_replay_refuses(void **st)
{
    const char *db = test_tmp("lm3.db");
    record_reference(db, NULL, NESIM_TRACE_SPIKES);
    nesim_error err = {0};
    json_t *rep = NULL;
    /* a graded projection has no spikes; the token stream is not a projection */
    assert_int_equal(replay(db, "layers.0.down_proj", -1, 0, NULL, &rep, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "graded"));
    assert_int_equal(replay(db, "tokens", -1, 0, NULL, &rep, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "token stream"));
    /* a recorded spike removed: the recomputation no longer reaches the recorded activity */
    exec_sql(db, "DELETE FROM spike_groups WHERE run = 1 AND layer = 12 AND tick = (SELECT max(tick) FROM "
                 "spike_groups WHERE run = 1 AND layer = 12)");
    assert_int_equal(replay(db, "layers.1.gate_proj", -1, 0, NULL, &rep, &err), NESIM_EINVAL);
    if (!strstr(err.msg, "does not reach the recorded activity"))
        fail_msg("%s", err.msg);
    /* a run recorded without spikes */
    const char *db2 = test_tmp("lm4.db");
    record_reference(db2, NULL, NESIM_TRACE_ACTIVITY);
    assert_int_equal(replay(db2, "layers.1.gate_proj", -1, 0, NULL, &rep, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "--record spikes"));
    /* --trace with --eval-text: one sequence only */
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.dir = DIR;
    o.eval_text = DIR "/heldout.txt";
    o.trace = test_tmp("lm5.db");
    assert_int_equal(nesim_lm_job(&o, &rep, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "--trace"));
}

static const char *bin(void) { return getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim"; }

/* The CLI end to end: run --trace, trace show, replay; a signal mid-run
   leaves an interrupted run with its tokens, and nesim dies of it. */
static void test_cli_trace_replay_and_signal(void **st)
{
    const char *db = test_tmp("cli.db");
    unlink(db);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s run " DIR " --prompt 'The quick brown' --generate 8 --trace %s --quiet >/dev/null && "
             "%s trace show %s | grep -q 'layers.3.up_proj' && "
             "%s replay %s --run 1 --from-layer layers.2.o_proj --coding binary --quiet | grep -q 'recorded as run 2' && "
             "%s trace runs %s | grep -q 'replay of run 1'",
             bin(), db, bin(), db, bin(), db, bin(), db);
    assert_int_equal(system(cmd), 0);
    const char *db2 = test_tmp("sig.db");
    unlink(db2);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1), dup2(null, 2);
        execl(bin(), bin(), "run", DIR, "--prompt", "The quick brown", "--generate", "240", "--trace", db2, "--quiet",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2400 && !test_spikes_on_disk(db2); i++)
        usleep(20000);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    assert_int_equal(q1(db2, "SELECT status = 'interrupted' FROM runs WHERE id = 1"), 1);
    int64_t toks = q1(db2, "SELECT count(*) FROM spikes WHERE run = 1 AND layer = 0");
    printf("  interrupted after %lld of 255 tokens\n", (long long)toks);
    assert_true(toks > 0 && toks < 255);
    /* every token recorded is whole: its sample row is there */
    assert_int_equal(q1(db2, "SELECT count(*) FROM samples WHERE run = 1"), toks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_holds_the_run),
        cmocka_unit_test(test_replay_unchanged_and_changed),
        cmocka_unit_test(test_replay_refuses),
        cmocka_unit_test(test_cli_trace_replay_and_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
