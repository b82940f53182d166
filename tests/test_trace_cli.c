/* test_trace_cli.c — `nesim trace ...` as a user meets it: each command on a
 * trace written through the library, --help, and one-line errors with exit
 * status 2 for bad databases, runs, layers and options. Runs the binary
 * named by $NESIM (make test sets it to the sanitizer build); skipped while
 * that binary has no `trace` command. */
#include "tests/support/check.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "net/tensor.h"
#include "traces/store.h"

static char out[1 << 20], errb[1 << 12];

static int run(const char *args)
{
    const char *bin = getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim";
    char cmd[2048], ef[512];
    snprintf(ef, sizeof ef, "%s/stderr.txt", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", bin, args, ef);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t k = fread(out, 1, sizeof out - 1, p);
    out[k] = 0;
    int st = pclose(p);
    FILE *e = fopen(ef, "r");
    assert_non_null(e);
    k = fread(errb, 1, sizeof errb - 1, e);
    errb[k] = 0;
    fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *db_path(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/cli.db", test_tmpdir());
    return p;
}

/* Two small runs: 2 layers, ternary spikes, samples, energy; the second
 * with a different chip and one spike fewer. */
static int setup(void **state)
{
    if (run("trace --help") != 0) {
        fprintf(stderr, "nesim has no trace command yet: skipping\n");
        *state = NULL;
        return 0;
    }
    *state = (void *)1;
    nesim_error err = {0};
    remove(db_path());
    nesim_trace *t;
    assert_ok(nesim_trace_open(db_path(), NESIM_TRACE_WRITE, &t, &err), &err);
    for (int r = 0; r < 2; r++) {
        nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-3,
                                     .spec_file = "m.json", .spec_text = "{\"name\":\"m\"}", .chip = r ? "b" : "a"};
        int64_t id;
        assert_ok(nesim_trace_begin_run(t, &info, &id, &err), &err);
        nesim_trace_layer_info l0 = {.name = "fc1", .type = "linear", .coding = "ternary", .neurons = 8, .fan_in = 4};
        nesim_trace_layer_info l1 = {.name = "fc2", .type = "linear", .neurons = 4, .fan_in = 8};
        int idx;
        assert_ok(nesim_trace_add_layer(t, &l0, &idx, &err), &err);
        assert_ok(nesim_trace_add_layer(t, &l1, &idx, &err), &err);
        for (int64_t tick = 0; tick < 40; tick++)
            for (int64_t n = 0; n < 8; n++)
                if ((n + tick) % 3 == 0) {
                    if (!(r && tick == 38 && n == 1)) { /* run 2 lacks one fc1 spike */
                        nesim_trace_activity(t, 0, tick, 1, 4);
                        nesim_trace_spike(t, 0, n, tick, n % 2 ? -1 : 1);
                    }
                    nesim_trace_activity(t, 1, tick + 1, 1, 0);
                    nesim_trace_spike(t, 1, n % 4, tick + 1, 1);
                }
        nesim_trace_sample(t, 0, 0, 19);
        nesim_trace_sample(t, 1, 20, 40);
        nesim_trace_energy(t, 0, "sop", r ? 2e-9 : 1e-9);
        assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    }
    nesim_trace_close(t);
    return 0;
}

#define SKIP_UNLESS_WIRED()                                                                                     \
    do {                                                                                                        \
        if (!*state)                                                                                            \
            skip();                                                                                             \
    } while (0)

static void test_commands(void **state)
{
    SKIP_UNLESS_WIRED();
    char args[1024];
    snprintf(args, sizeof args, "trace runs %s", db_path());
    assert_int_equal(run(args), 0);
    assert_non_null(strstr(out, "complete"));
    assert_non_null(strstr(out, "m.json"));

    snprintf(args, sizeof args, "trace show %s --json", db_path());
    assert_int_equal(run(args), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "run"), "id")), 2); /* the last run */
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "layers"), 0), "name")),
                        "fc1");
    json_decref(j);

    snprintf(args, sizeof args, "trace show %s --run 1", db_path());
    assert_int_equal(run(args), 0);
    assert_non_null(strstr(out, "run 1 of"));
    assert_non_null(strstr(out, "fc2"));

    snprintf(args, sizeof args, "trace spikes %s --run 1 --layer fc1 --from 3 --to 5 --csv", db_path());
    assert_int_equal(run(args), 0);
    assert_string_equal(out, "layer,neuron,tick,sign\n0,0,3,1\n0,3,3,-1\n0,6,3,1\n0,2,4,1\n0,5,4,-1\n"
                             "0,1,5,-1\n0,4,5,1\n0,7,5,-1\n");

    snprintf(args, sizeof args, "trace raster %s --run 1 --layer 1 -o %s/r.svg", db_path(), test_tmpdir());
    assert_int_equal(run(args), 0);
    snprintf(args, sizeof args, "trace activity %s -o %s/a.svg", db_path(), test_tmpdir());
    assert_int_equal(run(args), 0);
    snprintf(args, sizeof args, "trace raster %s --run 1 --layer fc1", db_path()); /* to stdout */
    assert_int_equal(run(args), 0);
    assert_true(!strncmp(out, "<?xml", 5));
    assert_non_null(strstr(out, "</svg>"));

    snprintf(args, sizeof args, "trace export %s --run 1 -o %s/s.npy", db_path(), test_tmpdir());
    assert_int_equal(run(args), 0);
    snprintf(args, sizeof args, "trace export %s --run 1 --format csv -o %s/s.txt", db_path(), test_tmpdir());
    assert_int_equal(run(args), 0);

    snprintf(args, sizeof args, "trace diff %s 1 2", db_path());
    assert_int_equal(run(args), 0);
    assert_non_null(strstr(out, "chip"));
    assert_non_null(strstr(out, "1 differ (first: tick 38, neuron 1)"));
    assert_non_null(strstr(out, "identical")); /* fc2 */
}

static void test_help(void **state)
{
    SKIP_UNLESS_WIRED();
    const char *cmds[] = {"runs", "show", "spikes", "raster", "activity", "export", "diff"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char args[128];
        snprintf(args, sizeof args, "trace %s --help", cmds[i]);
        assert_int_equal(run(args), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: nesim trace %s", cmds[i]);
        assert_non_null(strstr(out, want));
    }
    assert_int_equal(run("trace"), 2);
    assert_non_null(strstr(errb, "usage: nesim trace"));
}

static void bad(const char *args, const char *needle)
{
    assert_int_equal(run(args), 2);
    if (!strstr(errb, needle))
        fail_msg("`nesim %s`: expected '%s' in: %s", args, needle, errb);
    char *nl = strchr(errb, '\n');
    assert_true(nl && nl[1] == 0); /* exactly one line */
}

static void test_errors(void **state)
{
    SKIP_UNLESS_WIRED();
    char args[1024], txt[512], v2[512];
    snprintf(txt, sizeof txt, "%s/not-a-db.txt", test_tmpdir());
    FILE *f = fopen(txt, "w");
    fputs("hello\n", f);
    fclose(f);
    snprintf(args, sizeof args, "trace show %s", txt);
    bad(args, "file is not a database");

    snprintf(v2, sizeof v2, "%s/v9.db", test_tmpdir());
    remove(v2);
    nesim_error err = {0};
    nesim_trace *t;
    assert_ok(nesim_trace_open(v2, NESIM_TRACE_WRITE, &t, &err), &err);
    sqlite3_exec(nesim_trace_sqlite(t), "PRAGMA user_version = 9", NULL, NULL, NULL);
    nesim_trace_close(t);
    snprintf(args, sizeof args, "trace runs %s", v2);
    bad(args, "trace schema version 9");

    snprintf(args, sizeof args, "trace show %s --run 7", db_path());
    bad(args, "no run 7 (runs: 1..2)");
    snprintf(args, sizeof args, "trace spikes %s --layer fc9", db_path());
    bad(args, "no layer 'fc9' (layers: 0 fc1, 1 fc2)");
    snprintf(args, sizeof args, "trace raster %s --layer 5 -o %s/x.svg", db_path(), test_tmpdir());
    bad(args, "no layer '5'");
    snprintf(args, sizeof args, "trace spikes %s", db_path());
    bad(args, "which layer?");
    snprintf(args, sizeof args, "trace diff %s 1", db_path());
    bad(args, "needs two runs");
    snprintf(args, sizeof args, "trace show %s --frob", db_path());
    bad(args, "unexpected option '--frob'");
    snprintf(args, sizeof args, "trace export %s -o x.parquet", db_path());
    bad(args, "--format");
    bad("trace show /nonexistent/trace.db", "No such file");
    bad("trace frob x.db", "unknown command 'frob'");
}

/* A network run records every file its numbers come from, with its hash:
 * listed synapses and per-neuron parameters. */
static void test_network_files_recorded(void **state)
{
    SKIP_UNLESS_WIRED();
    nesim_error err = {0};
    const char *d = test_tmpdir();
    char path[600], args[2048];
    double bias[3] = {-0.049, -0.051, -0.049};
    int64_t shape[1] = {3};
    snprintf(path, sizeof path, "%s/bias.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_F64, 1, shape, bias, &err), &err);
    snprintf(path, sizeof path, "%s/pn.json", d);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"nesim\": 1, \"tick\": 1e-4, \"seed\": 1, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", \"n\": 3,"
          " \"params\": {\"tau_m\": 0.02, \"v_thresh\": -0.05, \"v_reset\": -0.06, \"v_rest\": {\"file\": \"bias.npy\"}}}],"
          " \"projections\": [{\"pre\": \"p\", \"post\": \"p\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0, 2],"
          " \"post\": [1, 1], \"weight\": [0.004, 0.004]}}]}", f);
    fclose(f);
    snprintf(args, sizeof args, "run %s --seconds 0.05 --trace %s/pn.db --quiet", path, d);
    assert_int_equal(run(args), 0);
    snprintf(args, sizeof args, "trace show %s/pn.db --json", d);
    assert_int_equal(run(args), 0);
    json_t *j = json_loads(out, 0, NULL), *w = json_object_get(json_object_get(j, "run"), "weights");
    assert_int_equal(json_array_size(w), 1);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(w, 0), "file")), "bias.npy"));
    assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(w, 0), "hash"))), 64);
    /* the run is complete: all 500 ticks of 0.05 s */
    assert_true(json_integer_value(json_object_get(json_object_get(j, "run"), "virtual_ticks")) == 500);
    json_decref(j);
    assert_int_equal(run("run examples/ring/model.json --seconds 0.05 --quiet --json"), 0);
    snprintf(args, sizeof args, "run examples/ring/model.json --seconds 0.05 --trace %s/ring.db --quiet", d);
    assert_int_equal(run(args), 0);
    snprintf(args, sizeof args, "trace show %s/ring.db --json", d);
    assert_int_equal(run(args), 0);
    j = json_loads(out, 0, NULL);
    w = json_object_get(json_object_get(j, "run"), "weights");
    assert_int_equal(json_array_size(w), 4); /* pre, post, weight, delay */
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(w, i), "hash"))), 64);
    json_decref(j);
}

int main(void)
{
    nesim_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_network_files_recorded),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
