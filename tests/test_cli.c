/* test_cli.c — the nesim command as a user meets it: output, help, exit
 * statuses and one-line errors. Runs the binary named by $NESIM (make test
 * sets it to the sanitizer build). */
#include "tests/support/check.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Runs `$NESIM args`, capturing stdout and stderr; returns the exit status. */
static int run(const char *args, char *out, size_t n_out, char *errb, size_t n_err)
{
    const char *bin = getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim";
    char cmd[1024], ef[256];
    snprintf(ef, sizeof ef, "%s/stderr.txt", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", bin, args, ef);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t k = fread(out, 1, n_out - 1, p);
    out[k] = 0;
    int st = pclose(p);
    FILE *e = fopen(ef, "r");
    assert_non_null(e);
    k = fread(errb, 1, n_err - 1, e);
    errb[k] = 0;
    fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char out[1 << 16], err[1 << 12];

static void test_example_json(void **st)
{
    assert_int_equal(run("example b4 --neurons 800 --seconds 0.3 --seed 3 --json --quiet", out, sizeof out, err, sizeof err), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, out);
    const char *keys[] = {"mean_rate_hz", "isi_cv", "spikes", "sops", "wall_s", "peak_rss_mib", "synapses"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_true(json_is_number(json_object_get(j, keys[i])));
    assert_true(json_integer_value(json_object_get(j, "spikes")) > 0);
    assert_int_equal(json_integer_value(json_object_get(j, "neurons")), 800);
    json_decref(j);
    assert_string_equal(err, ""); /* quiet, and stderr is not a terminal anyway */
}

static void test_example_table(void **st)
{
    assert_int_equal(run("example cuba --neurons 500 --seconds 0.2", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "mean rate"));
    assert_non_null(strstr(out, "ISI CV"));
    assert_non_null(strstr(out, "synaptic events"));
    assert_non_null(strstr(out, "peak memory"));
}

static void test_help(void **st)
{
    assert_int_equal(run("--help", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "example"));
    assert_int_equal(run("example --help", out, sizeof out, err, sizeof err), 0);
    const char *opts[] = {"--neurons", "--seconds", "--tick", "--seed", "--v-rest", "--json", "--quiet"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        assert_non_null(strstr(out, opts[i]));
    /* every help text is printed as written: no printf escape left in it */
    const char *cmds[] = {"--help", "run --help", "spec --help", "chips --help", "example --help",
                          "trace --help", "replay --help", "serve --help"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        assert_int_equal(run(cmds[i], out, sizeof out, err, sizeof err), 0);
        if (strstr(out, "%%"))
            fail_msg("`nesim %s` prints a literal %%%%", cmds[i]);
    }
}

static void bad(const char *args, const char *needle)
{
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 2);
    if (!strstr(err, needle))
        fail_msg("`nesim %s`: expected '%s' in: %s", args, needle, err);
    char *nl = strchr(err, '\n');
    assert_true(nl && nl[1] == 0); /* exactly one line */
}

static void test_bad_arguments(void **st)
{
    bad("frobnicate", "unknown command 'frobnicate'");
    bad("example", "which example");
    bad("example hh", "unknown example network 'hh'");
    bad("example b4 --seconds -1", "--seconds");
    bad("example b4 --seconds abc", "expected a decimal number, got 'abc'");
    bad("example b4 --neurons 0", "--neurons");
    bad("example b4 --tick 0", "tick");
    bad("example b4 --seed", "--seed");
    bad("example b4 --bogus", "unexpected argument '--bogus'");
}

/* `nesim run --timing`: the report's chip time, and static energy over it. */
static void test_run_timing(void **st)
{
    /* a Loihi with 1 W of static power per chip, so that static energy shows */
    json_error_t je;
    json_t *c = json_load_file("chips/loihi.json", 0, &je);
    assert_non_null(c);
    json_object_set_new(json_object_get(c, "static_power_per_chip"), "value", json_real(1.0));
    json_object_set_new(c, "name", json_string("hot"));
    char chip[512], args[1024];
    snprintf(chip, sizeof chip, "%s/hot.json", test_tmpdir());
    assert_int_equal(json_dump_file(c, chip, 0), 0);
    json_decref(c);
    const char *models[2] = {"simple", "detailed"};
    double total[2];
    for (int m = 0; m < 2; m++) {
        snprintf(args, sizeof args, "run examples/ring/model.json --seconds 0.2 --chip %s --timing %s --json --quiet",
                 chip, models[m]);
        assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
        json_t *j = json_loads(out, 0, &je), *t = json_object_get(j, "chip_time");
        assert_non_null(t);
        assert_string_equal(json_string_value(json_object_get(t, "model")), models[m]);
        assert_int_equal(json_integer_value(json_object_get(t, "steps")), 200);
        total[m] = json_real_value(json_object_get(t, "total_s"));
        double mean = json_real_value(json_object_get(t, "mean_step_s")), mx = json_real_value(json_object_get(t, "max_step_s"));
        assert_close(mean * 200, total[m], 1e-9, 0);
        assert_true(mx >= mean && mean >= json_real_value(json_object_get(t, "sync_s")));
        /* static energy: 1 W per chip over the chip's own time, not 200 ticks of 1 ms */
        json_t *en = json_object_get(j, "energy");
        assert_close(json_real_value(json_object_get(en, "duration_s")), total[m], 1e-12, 0);
        double stat = json_real_value(json_object_get(json_object_get(en, "terms"), "static"));
        assert_close(stat, 1.0 / 128 * total[m], 1e-9, 0); /* the ring uses 1 of the chip's 128 cores */
        assert_close(json_real_value(json_object_get(t, "energy_delay_js")),
                     json_real_value(json_object_get(en, "total_j")) * total[m], 1e-12, 0);
        json_decref(j);
    }
    assert_true(total[1] >= total[0]); /* the mesh adds to the slowest core, never subtracts */
    /* a trace keeps every step's chip time: its report sums them to the run's figure */
    snprintf(args, sizeof args, "run examples/ring/model.json --seconds 0.2 --chip %s --timing detailed --trace %s/ct.db "
             "--timing-steps %s/ct.npy --quiet --json", chip, test_tmpdir(), test_tmpdir());
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    snprintf(args, sizeof args, "trace show %s/ct.db --json", test_tmpdir());
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    json_t *tj = json_loads(out, 0, &je);
    assert_non_null(tj);
    json_t *tc = json_object_get(tj, "chip_time");
    assert_int_equal(json_integer_value(json_object_get(tc, "steps")), 200);
    assert_true(json_real_value(json_object_get(tc, "total_s")) == total[1]);
    json_decref(tj);
    bad("run examples/ring/model.json --timing-steps x.npy", "--timing-steps needs --timing");
    snprintf(args, sizeof args, "run examples/ring/model.json --seconds 0.2 --chip %s --timing simple", chip);
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "chip time (simple)"));
    assert_non_null(strstr(out, "steps per chip-second"));
    bad("run examples/ring/model.json --timing fast", "--timing: expected simple, detailed, async or none (got 'fast')");
    bad("run examples/ring/model.json --timing simple --chip truenorth", "chip truenorth has no latency section");
    bad("run examples/ring/model.json --timing simple --chip none", "--timing needs a chip (--chip)");
    /* an asynchronous chip takes --timing async, a time-stepped one does not */
    bad("run examples/ring/model.json --timing simple --chip speck", "chip speck is asynchronous");
    bad("run examples/ring/model.json --timing async --chip loihi", "chip loihi is time-stepped");
    snprintf(args, sizeof args, "run examples/ring/model.json --seconds 0.05 --chip speck --timing async");
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "chip time (async)"));
    /* layer models are timed too */
    assert_int_equal(run("run examples/digits/model.json --input examples/digits/test_inputs.npy --samples 5 "
                         "--timing simple", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "us per inference"));
}

/* Outputs to a device are written in place: a temp file renamed over
 * /dev/null (or a failed render's clean-up) would replace the device */
static int dev_null_ok(void)
{
    struct stat st;
    return stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode);
}

static void test_outputs_to_devices(void **st)
{
    assert_true(dev_null_ok());
    char args[800];
    snprintf(args, sizeof args, "run examples/ring/model.json --seconds 0.05 --chip loihi --timing simple "
                                "--timing-steps /dev/null --trace %s/dn.db --quiet", test_tmpdir());
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    assert_true(dev_null_ok());
    assert_int_equal(run("run examples/digits/model.json --input examples/digits/test_inputs.npy --samples 3 "
                         "--output /dev/null --quiet", out, sizeof out, err, sizeof err), 0);
    assert_true(dev_null_ok());
    snprintf(args, sizeof args, "trace export %s/dn.db --format csv -o /dev/null", test_tmpdir());
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 0);
    assert_true(dev_null_ok());
    /* a render that fails (no such run) removes a partial file, never the device */
    snprintf(args, sizeof args, "trace activity %s/dn.db --run 9 -o /dev/null", test_tmpdir());
    assert_int_equal(run(args, out, sizeof out, err, sizeof err), 2);
    assert_true(dev_null_ok());
}

/* SANA-FE's files from the command line: a run, its summary, and a bad file */
static void test_run_sanafe(void **st)
{
    char args[600];
    assert_int_equal(run("run examples/sanafe/net.yaml --chip examples/sanafe/loihi.yaml --steps 100 --timing simple",
                         out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "SANA-FE run summary"));
    assert_non_null(strstr(out, "timesteps_executed: 100"));
    snprintf(args, sizeof args, "%s/bad_arch.yaml", test_tmpdir());
    FILE *f = fopen(args, "w");
    assert_non_null(f);
    fputs("architecture:\n  name: x\n  attributes: {width: 1, height: 1, topology: torus}\n", f);
    fclose(f);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "run examples/sanafe/net.yaml --chip %s --steps 10", args);
    bad(cmd, "bad_arch.yaml:3:47: topology: nesim models a mesh (got torus)");
    bad("run examples/sanafe/net.yaml --chip examples/sanafe/loihi.yaml --steps 10 --seconds 1",
        "give --seconds or --steps, not both");
}

/* --gpu: the ANN beside the chip on GPU boards, per token and per inference */
static void test_run_gpu(void **st)
{
    assert_int_equal(run("run examples/tiny-lm --prompt 'To be' --generate 3 --gpu a100-sxm,metax-c550 --json --quiet",
                         out, sizeof out, err, sizeof err), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je), *g = json_object_get(j, "gpu_baselines");
    assert_int_equal(json_array_size(g), 2);
    const json_t *dec = json_object_get(j, "decode");
    double tok = (double)json_integer_value(json_object_get(dec, "tokens"));
    double ann = (double)json_integer_value(json_object_get(dec, "ann_macs")) / tok;
    const json_t *r = json_object_get(json_array_get(g, 0), "decode");
    /* batch 1: every weight and every cached key/value read, two bytes each */
    assert_close(json_real_value(json_object_get(r, "bytes")), 2 * ann, 1e-12, 0);
    assert_close(json_real_value(json_object_get(r, "macs")), ann, 1e-12, 0);
    assert_string_equal(json_string_value(json_object_get(r, "bound")), "memory");
    assert_close(json_real_value(json_object_get(r, "time_s")), 2 * ann / (2.039e12 * 0.8), 1e-12, 0);
    json_decref(j);
    assert_int_equal(run("run examples/digits/model.json --input examples/digits/test_inputs.npy --samples 20 "
                         "--gpu a100-sxm", out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "GPU a100-sxm"));
    bad("run examples/digits/model.json --random-input 2 --gpu loihi", "--gpu loihi: a neuromorphic profile, not a GPU");
    bad("run examples/tiny-lm --prompt x --gpu nope", "unknown chip 'nope'");
}

/* --threads: refused outside 1..256 with one line; any count gives the same
 * report numbers and readout, for a layer model and a language model (the
 * 3584 -> 18944 layer is large enough that two threads really split it), and
 * --json reports the phases of the run. */
static void test_run_threads(void **st)
{
    bad("run examples/digits/model.json --random-input 2 --threads 0", "--threads: must be in 1..256");
    bad("run examples/tiny-lm --prompt x --threads 999", "--threads: must be in 1..256");
    const char *d = test_tmpdir();
    char cmd[768];
    json_t *rep[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "run examples/spikingbrain-7b-layer/model.json --random-input 2 --threads %d --chip none --json "
                 "--quiet --output %s/y%d.npy",
                 k + 1, d, k);
        assert_int_equal(run(cmd, out, sizeof out, err, sizeof err), 0);
        json_error_t je;
        rep[k] = json_loads(out, 0, &je);
        assert_non_null(rep[k]);
        const json_t *ph = json_object_get(rep[k], "phases_s");
        assert_true(json_real_value(json_object_get(ph, "synthesis")) > 0);
        /* weights are made as their layer first plays: the first event waits
         * for q_proj's (12.8 M of the 233 M weights), not for all seven */
        assert_true(json_real_value(json_object_get(ph, "first_event")) <
                    json_real_value(json_object_get(ph, "synthesis")));
        double sum = 0;
        static const char *const parts[] = {"load", "synthesis", "setup", "run", "cost", "report"};
        for (int i = 0; i < 6; i++)
            sum += json_real_value(json_object_get(ph, parts[i]));
        assert_true(fabs(sum - json_real_value(json_object_get(ph, "total"))) < 1e-6); /* the phases add up */
    }
    assert_string_equal(json_string_value(json_object_get(rep[0], "spike_checksum")),
                        json_string_value(json_object_get(rep[1], "spike_checksum")));
    assert_true(json_equal(json_object_get(rep[0], "totals"), json_object_get(rep[1], "totals")));
    json_decref(rep[0]);
    json_decref(rep[1]);
    snprintf(cmd, sizeof cmd, "cmp -s %s/y0.npy %s/y1.npy", d, d);
    assert_int_equal(system(cmd), 0);
    char lo[2][1 << 12];
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "run examples/tiny-lm --prompt 'To be' --generate 4 --threads %d --json --quiet", k + 1);
        assert_int_equal(run(cmd, out, sizeof out, err, sizeof err), 0);
        json_error_t je;
        json_t *j = json_loads(out, 0, &je);
        assert_non_null(j);
        char *txt = json_dumps(json_object_get(j, "generated"), JSON_ENCODE_ANY);
        assert_non_null(txt);
        snprintf(lo[k], sizeof lo[k], "%s %lld", txt,
                 (long long)json_integer_value(json_object_get(json_object_get(j, "total"), "spikes")));
        assert_true(json_integer_value(json_object_get(json_object_get(j, "total"), "spikes")) > 0);
        free(txt);
        json_decref(j);
    }
    assert_string_equal(lo[0], lo[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_json),
        cmocka_unit_test(test_example_table),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_run_timing),
        cmocka_unit_test(test_run_threads),
        cmocka_unit_test(test_run_sanafe),
        cmocka_unit_test(test_outputs_to_devices),
        cmocka_unit_test(test_run_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
