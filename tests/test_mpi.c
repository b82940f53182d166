/* test_mpi.c — one run over K ranks (mpirun -np K nesim run ...) is the same
 * run as without mpirun: the same report (spikes, counters, energy, its
 * checksum over every spike) and the same trace, for K = 1, 2, 3, and on
 * every path the engine splits differently (block-split populations, a
 * Poisson source split too, fixed-probability, explicit, all-to-all
 * and one-to-one projections, min delay above one tick, coded layers split
 * by rows, a language model). And failures end every rank: a mismatched
 * build, a setup error on rank 0 alone, a rank that dies, a rank that hangs.
 *
 * Oversubscribed on purpose (3 ranks on this 2-core machine). The sanitizer
 * build runs under mpirun with leak detection off: Open MPI's own start-up
 * allocations are never freed (the single-process tests keep it on). */
#include "tests/support/check.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bin(void) { return getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim"; }

static char out[1 << 22], errb[1 << 14];

/* Runs the shell command cmd, capturing stdout and stderr; returns the exit
 * status (128 + signal when killed). */
static int sh(const char *cmd)
{
    char full[4096], ef[512];
    snprintf(ef, sizeof ef, "%s/mpi_stderr.txt", test_tmpdir());
    snprintf(full, sizeof full, "(%s) 2>%s", cmd, ef);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t k = fread(out, 1, sizeof out - 1, p);
    out[k] = 0;
    int st = pclose(p);
    FILE *e = fopen(ef, "r");
    assert_non_null(e);
    k = fread(errb, 1, sizeof errb - 1, e);
    errb[k] = 0;
    fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* `nesim run ARGS` on k ranks (k = 0: without mpirun). */
static int run_k(int k, const char *args)
{
    char cmd[3072];
    if (k == 0)
        snprintf(cmd, sizeof cmd, "%s run %s", bin(), args);
    else
        snprintf(cmd, sizeof cmd, "mpirun --oversubscribe -np %d %s run %s", k, bin(), args);
    return sh(cmd);
}

static json_t *parse_out(void)
{
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %.400s / stderr: %.2000s", je.text, out, errb);
    return j;
}

/* The report of `nesim run args` on k ranks (0: without mpirun), which
 * must succeed; the caller frees it. */
static json_t *report_on(int k, const char *args)
{
    int st = run_k(k, args);
    if (st && k)
        fail_msg("mpirun -np %d nesim run %s: exit %d: %s", k, args, st, errb);
    if (st)
        fail_msg("nesim run %s: exit %d: %s", args, st, errb);
    return parse_out();
}

/* The report of `args` without mpirun equals the report on k0 .. 3 ranks
 * each given `threads` (--threads T: T > 1 a group of threads per rank;
 * 0: none); returns the plain report (the caller frees it). */
static json_t *same_on_ranks(const char *args, int k0, int threads)
{
    json_t *ref = report_on(0, args);
    json_t *plain = json_deep_copy(ref);
    test_strip_machine(ref);
    for (int k = k0; k <= 3; k++) {
        char a[2100];
        snprintf(a, sizeof a, threads ? "%s --threads %d" : "%s", args, threads);
        json_t *r = report_on(k, a);
        json_t *mpi = json_object_get(r, "mpi");
        if (k > 1 && json_is_object(json_object_get(plain, "totals"))) /* layer and network reports say how */
            assert_int_equal(json_integer_value(json_object_get(mpi, "ranks")), k);
        if (threads > 1)
            assert_int_equal(json_integer_value(json_object_get(mpi, "threads_per_rank")), threads);
        test_strip_machine(r);
        char what[3200];
        snprintf(what, sizeof what, "mpirun -np %d nesim run %s", k, a);
        test_assert_same_report(ref, r, what);
        json_decref(r);
    }
    json_decref(ref);
    return plain;
}

static json_t *same_for_every_k(const char *args) { return same_on_ranks(args, 1, 0); }

static void test_version_says_mpi(void **st)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s version", bin());
    assert_int_equal(sh(cmd), 0);
    assert_non_null(strstr(out, "mpi: Open MPI"));
}

/* only `run` is split; any other command runs once, on rank 0 */
static void test_other_commands_run_once(void **st)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mpirun --oversubscribe -np 3 %s example b4 --neurons 400 --seconds 0.1", bin());
    assert_int_equal(sh(cmd), 0);
    const char *p = strstr(out, "mean rate");
    assert_non_null(p);
    assert_null(strstr(p + 1, "mean rate"));
}

static void test_cuba_same_for_every_k(void **st)
{
    json_t *r = same_for_every_k("examples/cuba/model.json --seconds 0.5 --json --quiet");
    assert_true(json_integer_value(json_object_get(json_object_get(r, "totals"), "spikes")) > 1000);
    json_decref(r);
}

static void test_b4_same_for_every_k(void **st)
{
    json_t *r = same_for_every_k("examples/b4/model.json --seconds 0.3 --json --quiet --chip loihi");
    assert_true(json_integer_value(json_object_get(json_object_get(r, "totals"), "spikes")) > 1000);
    json_decref(r);
}

/* explicit projections with per-synapse delays, and a Poisson source (its
 * neurons split over the ranks like any population's) */
static void test_ring_same_for_every_k(void **st)
{
    json_t *r = same_for_every_k("examples/ring/model.json --seconds 1 --json --quiet");
    assert_true(json_integer_value(json_object_get(json_object_get(r, "totals"), "spikes")) > 100);
    json_decref(r);
}

/* all-to-all without autapses, one-to-one, a Poisson drive, and a min delay
 * of 3 ticks: epochs of 3 ticks between exchanges */
static void test_rules_and_long_delays(void **st)
{
    const char *spec = "tests/fixtures/rules-delays.json";
    char args[1024];
    snprintf(args, sizeof args, "%s --seconds 2 --json --quiet", spec);
    json_t *r = same_for_every_k(args);
    json_t *L = json_object_get(r, "layers");
    for (size_t i = 0; i < json_array_size(L); i++) /* every population fires: every path ran */
        assert_true(json_number_value(json_object_get(json_array_get(L, i), "spikes")) > 10);
    json_decref(r);
}

/* The exchange of a report run on k ranks with `more` arguments: its
 * mpi section's exchange kind (first word), window and exchange count. */
static void exchange_of(int k, const char *args, char kind[16], int64_t *window, int64_t *exchanges)
{
    json_t *r = report_on(k, args);
    json_t *m = json_object_get(r, "mpi");
    const char *how = json_string_value(json_object_get(m, "exchange"));
    snprintf(kind, 16, "%.*s", how ? (int)strcspn(how, ":") : 1, how ? how : "?");
    *window = json_integer_value(json_object_get(m, "window_ticks"));
    *exchanges = json_integer_value(json_object_get(m, "exchanges"));
    json_decref(r);
}

static void same_trace(const char *args, const char *name);

/* A min delay of 8 ticks: each exchange travels while the next window of 4
 * ticks runs (double buffering); the report and the trace are one
 * process's for K = 1, 2, 3, for ranks x threads and with --no-overlap. A
 * sparse network with a delay of 20: silent stretches skipped. */
static void test_overlapped_exchange(void **st)
{
    const char *a = "tests/fixtures/cuba-delay8.json --seconds 0.5 --json --quiet";
    json_t *r = same_for_every_k(a);
    assert_true(json_integer_value(json_object_get(json_object_get(r, "totals"), "spikes")) > 5000);
    json_decref(r);
    json_decref(same_on_ranks(a, 2, 2));
    json_decref(same_for_every_k("tests/fixtures/cuba-delay8.json --seconds 0.5 --json --quiet --no-overlap"));
    json_decref(same_for_every_k("tests/fixtures/cuba-delay8.json --seconds 0.5 --json --quiet --chip none"));
    char kind[16];
    int64_t w, n;
    exchange_of(2, a, kind, &w, &n);
    assert_string_equal(kind, "overlapped");
    assert_int_equal(w, 4);
    assert_int_equal(n, 1250);
    char b[512];
    snprintf(b, sizeof b, "%s --no-overlap", a);
    exchange_of(3, b, kind, &w, &n);
    assert_string_equal(kind, "blocking");
    assert_int_equal(w, 8);
    exchange_of(2, "examples/cuba/model.json --seconds 0.1 --json --quiet", kind, &w, &n);
    assert_string_equal(kind, "blocking"); /* min delay 1: no next window to overlap */
    /* but the epoch's (the tick's) predictions run while it travels: most
     * of them (the others are made at the start and at refractoriness' end),
     * none with --no-overlap; the report is one process's either way
     * (test_cuba_same_for_every_k) */
    for (int off = 0; off <= 1; off++) {
        json_t *c = report_on(2, off ? "examples/cuba/model.json --seconds 0.1 --json --quiet --no-overlap"
                                     : "examples/cuba/model.json --seconds 0.1 --json --quiet");
        json_t *m = json_object_get(c, "mpi");
        int64_t po = json_integer_value(json_object_get(m, "predictions_overlapped"));
        int64_t pr = json_integer_value(json_object_get(json_object_get(c, "totals"), "predictions"));
        print_message("  CUBA, 2 ranks%s: %lld of %lld predictions made while the exchange travelled\n",
                      off ? " (--no-overlap)" : "", (long long)po, (long long)pr);
        if (off)
            assert_int_equal(po, 0);
        else
            assert_true(po > pr / 2 && po <= pr);
        assert_int_equal(strstr(json_string_value(json_object_get(m, "exchange")), "predictions") != NULL, !off);
        json_decref(c);
    }
    json_decref(same_for_every_k("tests/fixtures/sparse-delays.json --seconds 5 --json --quiet"));
    exchange_of(3, "tests/fixtures/sparse-delays.json --seconds 5 --json --quiet", kind, &w, &n);
    assert_true(n > 20 && n < 400); /* of 500 windows */
    same_trace("tests/fixtures/cuba-delay8.json --seconds 0.3", "cuba-d8.db");
}

/* Chip time on several ranks: each rank times every K-th step and the steps
 * are gathered, so the chip-time section (both step models) is one
 * process's, and with ranks x threads too (the first thread of each rank
 * alone gives its part's messages). SANA-FE's own files: its architecture
 * and a convolutional network, drawn in parts (test_part_graph). */
static void test_chip_time_for_every_k(void **st)
{
    const char *a[] = {"examples/sanafe/net.yaml --chip examples/sanafe/loihi.yaml --timing simple --steps 200 "
                       "--json --quiet",
                       "examples/sanafe/net.yaml --chip examples/sanafe/loihi.yaml --timing detailed --steps 200 "
                       "--json --quiet"};
    for (int m = 0; m < 2; m++) {
        json_t *r = same_for_every_k(a[m]);
        json_t *ct = json_object_get(r, "chip_time");
        assert_int_equal(json_integer_value(json_object_get(ct, "steps")), 200);
        assert_true(json_number_value(json_object_get(ct, "total_s")) > 0);
        json_decref(r);
    }
    json_decref(same_on_ranks(a[1], 2, 2));
}

/* a layer model's batches: split by samples */
/* 289 samples: batches of 16 per rank and a last one of a single sample
 * (played sample by sample) for K = 1, 2, 3. Without a trace or chip time
 * each rank counts the spikes of the samples it played (the report's
 * checksum, spikes per channel and activity are then sums over ranks) */
static void test_digits_same_for_every_k(void **st)
{
    const char *args = "examples/digits/model.json --input examples/digits/test_inputs.npy "
                       "--labels examples/digits/test_labels.npy --samples 289 --json --quiet";
    json_t *r = same_for_every_k(args);
    assert_true(json_number_value(json_object_get(r, "accuracy_spiking")) > 0.8 ||
                json_is_object(json_object_get(r, "accuracy")));
    json_decref(r);
    r = report_on(2, args);
    const char *obs = json_string_value(json_object_get(json_object_get(r, "mpi"), "observed"));
    assert_non_null(obs);
    assert_non_null(strstr(obs, "on the rank that played it"));
    json_decref(r);
    char a[512];
    snprintf(a, sizeof a, "%s --trace %s", args, test_tmp("observed.db"));
    r = report_on(2, a);
    obs = json_string_value(json_object_get(json_object_get(r, "mpi"), "observed"));
    assert_non_null(obs);
    assert_non_null(strstr(obs, "every sample's spikes told on every rank"));
    json_decref(r);
}

/* one sample is not a batch: each coded linear layer split by rows (blocks
 * of 64: with 3 ranks one has none of a 128-row layer) */
static void test_digits_rows_same_for_every_k(void **st)
{
    json_t *r = same_for_every_k("examples/digits/model.json --input examples/digits/test_inputs.npy "
                                 "--samples 1 --json --quiet");
    json_decref(r);
}

static void test_tiny_lm_same_for_every_k(void **st)
{
    json_t *r = same_for_every_k("examples/tiny-lm --prompt 'The meaning of life' --generate 6 --json --quiet");
    assert_true(json_string_length(json_object_get(r, "generated_text")) > 0);
    json_decref(r);
}

/* a synthetic mixture of experts whose experts are made lazily: each rank
 * makes only its rows of every projection weight (2048-row experts: every
 * rank holds some) */
static void test_lazy_experts_same_for_every_k(void **st)
{
    const char *ids = test_tmp("ids.npy");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np; np.save('%s', np.array([3, 14, 15, 9, 26, 5], np.int32))\"",
             ids);
    assert_int_equal(system(cmd), 0);
    char args[1024];
    snprintf(args, sizeof args, "tests/fixtures/moe-lazy/moe.json --tokens %s --generate 3 --json --quiet", ids);
    json_t *r = same_for_every_k(args);
    assert_non_null(json_object_get(r, "per_token"));
    json_decref(r);
}

/* The trace of `args` (a run writing --trace DB) without mpirun and on k
 * ranks given `more` arguments: the same spike rows, activity rows and run
 * summary. */
static void same_trace_k(const char *args, const char *name, int k, const char *more)
{
    char one[512], many[600], a[2048];
    snprintf(one, sizeof one, "%s", test_tmp(name));
    snprintf(many, sizeof many, "%s.%d", one, k);
    unlink(one), unlink(many);
    snprintf(a, sizeof a, "%s --trace %s --quiet --json", args, one);
    if (run_k(0, a))
        fail_msg("%s: %s", a, errb);
    snprintf(a, sizeof a, "%s %s --trace %s --quiet --json", args, more, many);
    if (run_k(k, a))
        fail_msg("%s: %s", a, errb);
    char what[2200];
    snprintf(what, sizeof what, "%s: one process against %d ranks %s", args, k, more);
    test_assert_same_trace(one, many, what);
}

static void same_trace(const char *args, const char *name) { same_trace_k(args, name, 3, ""); }

/* Ranks x threads (and ranks alone on bursts): mpirun -np k with --threads 2 splits a network 2k ways,
 * each rank a group of threads whose first carries the exchanges between
 * the ranks; the report and the trace are those of one process. */
static void test_ranks_times_threads(void **st)
{
    json_decref(same_on_ranks("examples/cuba/model.json --seconds 0.5 --json --quiet", 2, 2));
    json_decref(same_on_ranks("tests/fixtures/rules-delays.json --seconds 1 --json --quiet", 2, 2));
    /* 400 neurons firing together: epochs of more spikes per rank than the
     * fixed block holds, so the rest go through the ranks' Allgatherv */
    json_decref(same_on_ranks("tests/fixtures/bursts.json --seconds 0.2 --json --quiet", 1, 0));
    json_decref(same_on_ranks("tests/fixtures/bursts.json --seconds 0.2 --json --quiet", 2, 2));
    same_trace_k("examples/cuba/model.json --seconds 0.3", "cuba-rt.db", 2, "--threads 2");
    /* rank 0's first thread alone fails (its trace cannot be created): every
     * thread of every rank ends with its one line, exit 2, no abort */
    assert_int_equal(run_k(2, "examples/cuba/model.json --threads 2 --trace /nonexistent/dir/x.db --quiet"), 2);
    assert_non_null(strstr(errb, "/nonexistent/dir/x.db"));
    assert_null(strstr(errb, "MPI_ABORT"));
}

/* The synapse count and rank 0's share from a report's mpi section. */
static void graph_of(int k, const char *args, double *total, double *here, const char **kind)
{
    json_t *r = report_on(k, args);
    json_t *m = json_object_get(r, "mpi");
    *total = json_number_value(json_object_get(json_object_get(r, "neurobench"), "footprint_bytes")) / 4;
    *here = json_number_value(json_object_get(m, "synapses_rank0"));
    const char *g = json_string_value(json_object_get(m, "graph"));
    *kind = g && !strncmp(g, "part", 4) ? "part" : g && !strncmp(g, "whole", 5) ? "whole" : "?";
    json_decref(r);
}

/* Each rank draws only its own targets' synapses (keyed draws: the part is
 * the whole graph's) and the ranks sum the counts a report needs: the report
 * and the trace are one process's, for ranks and for ranks x threads. A chip
 * mapping is made by the ranks together (each its targets' cores, merged):
 * the same cores, routes, hops and energy; so is chip time (each source's
 * synapses per core summed over the ranks; a passive population's input
 * marks gathered per step); asynchronous chip time draws the whole graph. */
static void test_part_graph(void **st)
{
    json_decref(same_for_every_k("examples/cuba/model.json --seconds 0.3 --json --quiet --chip none"));
    json_decref(same_on_ranks("examples/cuba/model.json --seconds 0.3 --json --quiet --chip none", 2, 2));
    json_decref(same_for_every_k("tests/fixtures/rules-delays.json --seconds 0.5 --json --quiet --chip none"));
    same_trace("examples/cuba/model.json --seconds 0.2 --chip none", "cuba-part.db");
    double total, here;
    const char *kind;
    graph_of(2, "examples/cuba/model.json --seconds 0.05 --json --quiet --chip none", &total, &here, &kind);
    assert_string_equal(kind, "part");
    assert_true(total > 300000 && here > 0.45 * total && here < 0.55 * total);
    graph_of(3, "examples/cuba/model.json --seconds 0.05 --json --quiet --chip none", &total, &here, &kind);
    assert_true(here > 0.28 * total && here < 0.38 * total);
    graph_of(2, "examples/cuba/model.json --seconds 0.05 --json --quiet --chip none --threads 2", &total, &here, &kind);
    assert_string_equal(kind, "part"); /* a process holds its two threads' half */
    assert_true(here > 0.45 * total && here < 0.55 * total);
    graph_of(2, "examples/cuba/model.json --seconds 0.05 --json --quiet --chip loihi", &total, &here, &kind);
    assert_string_equal(kind, "part");
    assert_true(here > 0.45 * total && here < 0.55 * total);
    /* 64-neuron cores of 4 KiB, 16 to a chip: the largest fan-in over the
     * ranks decides how many neurons share a core (113 cores on 8 chips),
     * the merged destinations decide routes, hops and chip crossings */
    json_t *r = same_for_every_k("examples/cuba/model.json --seconds 0.1 --json --quiet "
                                 "--chip tests/fixtures/small-cores.json");
    json_t *u = json_object_get(r, "chip_usage");
    assert_int_equal(json_integer_value(json_object_get(u, "cores")), 113);
    assert_int_equal(json_integer_value(json_object_get(u, "chips")), 8);
    assert_true(json_integer_value(json_object_get(u, "max_hops")) > 4);
    assert_true(json_integer_value(json_object_get(u, "chip_crossings")) > 0);
    assert_true(json_integer_value(json_object_get(u, "routes")) > 63);
    json_decref(r);
    json_decref(same_on_ranks("examples/cuba/model.json --seconds 0.1 --json --quiet "
                              "--chip tests/fixtures/small-cores.json",
                              2, 2));
    /* chip time from parts: the detailed model's messages through 8 chips,
     * a core shared by two ranks' neurons counting both ranks' synapses */
    r = same_for_every_k("examples/cuba/model.json --seconds 0.2 --json --quiet --timing detailed "
                         "--chip tests/fixtures/small-cores.json");
    assert_true(json_number_value(json_object_get(json_object_get(r, "chip_time"), "total_s")) > 0);
    json_decref(r);
    /* one core receives everything: each message's synapses come from both
     * ranks' targets and must be summed (else its work, the critical one, is short) */
    json_decref(same_for_every_k("tests/fixtures/rules-delays.json --seconds 0.5 --timing simple --json --quiet"));
    json_decref(same_for_every_k("tests/fixtures/rules-delays.json --seconds 0.5 --timing detailed --json --quiet"));
    graph_of(2, "examples/sanafe/net.yaml --chip examples/sanafe/loihi.yaml --timing simple --steps 20 --json --quiet",
             &total, &here, &kind);
    assert_string_equal(kind, "part");
    /* passive neurons (updated only when their own input comes): each rank
     * marks its own targets, the marks of a step are gathered; on 64-neuron
     * cores a core's updates come from both ranks' marks (without the
     * gather, 2 ranks time 1.087 ms instead of 1.100 ms) */
    json_decref(same_for_every_k("tests/fixtures/sparse-delays.json --seconds 0.2 --timing simple --json --quiet"));
    graph_of(2, "tests/fixtures/sparse-delays.json --seconds 0.05 --timing simple --json --quiet", &total, &here, &kind);
    assert_string_equal(kind, "part");
    assert_true(here < total);
    static const char *const passive[] = {
        "tests/fixtures/passive-cores.json --seconds 0.5 --chip tests/fixtures/small-cores.json --timing simple "
        "--json --quiet",
        "tests/fixtures/passive-cores.json --seconds 0.5 --chip tests/fixtures/small-cores.json --timing detailed "
        "--json --quiet"};
    for (int k = 0; k < 2; k++) {
        r = same_for_every_k(passive[k]);
        assert_true(json_integer_value(json_object_get(json_object_get(r, "totals"), "spikes")) > 5000);
        json_decref(r);
        json_decref(same_on_ranks(passive[k], 2, 2));
        graph_of(2, passive[k], &total, &here, &kind);
        assert_string_equal(kind, "part");
    }
    /* asynchronous chip time follows every spike to each target: whole */
    graph_of(2, "tests/fixtures/sparse-delays.json --seconds 0.05 --chip speck --timing async --json --quiet", &total,
             &here, &kind);
    assert_string_equal(kind, "whole");
    assert_true(here == total);
    /* explicit synapses (the ring's lists, each with its delay) are cut to the
     * rank's targets once built: the same report, half held on 2 ranks */
    json_decref(same_for_every_k("examples/ring/model.json --seconds 0.5 --json --quiet --chip none"));
    graph_of(2, "examples/ring/model.json --seconds 0.05 --json --quiet --chip none", &total, &here, &kind);
    assert_string_equal(kind, "part");
    assert_true(total > 1000 && here > 0.4 * total && here < 0.6 * total);
}

static void test_trace_same_for_every_k(void **st)
{
    same_trace("examples/cuba/model.json --seconds 0.3", "cuba.db");
    same_trace("examples/digits/model.json --input examples/digits/test_inputs.npy --samples 40", "digits.db");
    same_trace("examples/tiny-lm --prompt 'The meaning of life' --generate 3", "lm.db");
}

/* rank 0 alone fails (its trace cannot be created): every rank ends at once
 * with rank 0's one line and exit 2, without MPI's abort */
static void test_rank0_setup_failure(void **st)
{
    assert_int_equal(run_k(2, "examples/cuba/model.json --trace /nonexistent/dir/x.db --quiet"), 2);
    assert_non_null(strstr(errb, "nesim run: "));
    assert_non_null(strstr(errb, "/nonexistent/dir/x.db"));
    assert_null(strstr(errb, "MPI_ABORT"));
    assert_null(strstr(errb, "rank 1")); /* said once, by rank 0 */
    /* the same for a language model, and for layers */
    assert_int_equal(run_k(2, "examples/tiny-lm --prompt 'The meaning' --generate 2 --trace /nonexistent/dir/y.db "
                              "--quiet"),
                     2);
    assert_non_null(strstr(errb, "/nonexistent/dir/y.db"));
    assert_null(strstr(errb, "MPI_ABORT"));
    assert_int_equal(run_k(3, "examples/digits/model.json --random-input 4 --trace /nonexistent/dir/z.db --quiet"), 2);
    assert_non_null(strstr(errb, "/nonexistent/dir/z.db"));
    assert_null(strstr(errb, "MPI_ABORT"));
}

/* a rank of another build (here: the release build beside the sanitizer
 * one) is refused before anything runs */
static void test_mismatched_build(void **st)
{
    const char *other = strstr(bin(), "build/san/") ? "build/rel/nesim" : "build/san/nesim";
    struct stat sb;
    if (stat(other, &sb) != 0)
        skip(); /* make test builds both */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mpirun --oversubscribe -np 1 %s run examples/cuba/model.json --quiet : -np 1 %s run "
             "examples/cuba/model.json --quiet",
             bin(), other);
    assert_int_equal(sh(cmd), 2);
    assert_non_null(strstr(errb, "every rank must run the same build"));
    assert_non_null(strstr(errb, "rank 1 runs nesim"));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs cmd, which must fail, and end within a minute: no rank waits forever. */
static void ends_in_failure(const char *cmd)
{
    double t0 = now_s();
    int status = sh(cmd);
    double took = now_s() - t0;
    assert_int_not_equal(status, 0);
    assert_true(took < 60);
}

/* The status of the trace's run ("complete", "failed", "interrupted",
 * "running" for one killed mid-way). */
static char *run_status(const char *db)
{
    char *t = test_table_text(db, "SELECT status FROM runs");
    t[strcspn(t, "\n")] = 0;
    return t;
}

/* a rank that hangs (stopped): rank 0 gives up after --mpi-timeout, says so,
 * marks its trace failed, and MPI's abort ends the stopped rank */
static void test_rank_hangs(void **st)
{
    /* ranks alone, and ranks of two threads each (rank 0's first thread
     * carries the exchange that times out) */
    const char *threads[] = {"", "--threads 2", ""};
    const char *spec[] = {"examples/cuba/model.json", "examples/cuba/model.json",
                          "tests/fixtures/cuba-delay8.json"}; /* the last: overlapped exchanges */
    for (int k = 0; k < 3; k++) {
        const char *db = test_tmp(k == 0 ? "hang.db" : k == 1 ? "hang2.db" : "hang3.db");
        unlink(db);
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "mpirun --oversubscribe -np 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then "
                 "%s run %s --seconds 100 --quiet --chip none --mpi-timeout 3 %s & p=$!; "
                 "sleep 2; kill -STOP $p; wait $p; else exec %s run %s --seconds 100 --quiet "
                 "--chip none --mpi-timeout 3 %s --trace %s; fi'",
                 bin(), spec[k], threads[k], bin(), spec[k], threads[k], db);
        ends_in_failure(cmd);
        if (!strstr(errb, "no answer from the other ranks for"))
            fail_msg("%s: stderr: %s", threads[k], errb);
        char *s = run_status(db);
        assert_string_equal(s, "failed");
        free(s);
        print_message("  rank 0 said: %s", errb);
    }
}

/* a rank that dies: mpirun ends the others; no rank waits forever and the
 * trace is not passed off as complete */
static void test_rank_dies(void **st)
{
    const char *db = test_tmp("dies.db");
    unlink(db);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mpirun --oversubscribe -np 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then "
             "%s run examples/cuba/model.json --seconds 100 --quiet --chip none & p=$!; sleep 2; kill -9 $p; exit 9; "
             "else exec %s run examples/cuba/model.json --seconds 100 --quiet --chip none --trace %s; fi'",
             bin(), bin(), db);
    ends_in_failure(cmd);
    struct stat sb;
    if (stat(db, &sb) == 0) { /* rank 0 may have been ended before its first commit */
        char *s = run_status(db);
        assert_string_not_equal(s, "complete");
        print_message("  trace status after the death: %s\n", s);
        free(s);
    }
}

int main(void)
{
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_mpi: mpirun not found (tools/deps.sh installs openmpi-bin)\n");
        return 1;
    }
    /* root in CI containers; Open MPI's leaks are its own (see the top) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1); /* no ptrace in containers */
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_says_mpi),    cmocka_unit_test(test_other_commands_run_once),
        cmocka_unit_test(test_cuba_same_for_every_k),
        cmocka_unit_test(test_b4_same_for_every_k), cmocka_unit_test(test_ring_same_for_every_k),
        cmocka_unit_test(test_rules_and_long_delays), cmocka_unit_test(test_overlapped_exchange),
        cmocka_unit_test(test_chip_time_for_every_k),
        cmocka_unit_test(test_part_graph), cmocka_unit_test(test_digits_same_for_every_k),
        cmocka_unit_test(test_digits_rows_same_for_every_k),
        cmocka_unit_test(test_tiny_lm_same_for_every_k), cmocka_unit_test(test_lazy_experts_same_for_every_k),
        cmocka_unit_test(test_trace_same_for_every_k), cmocka_unit_test(test_ranks_times_threads),
        cmocka_unit_test(test_rank0_setup_failure), cmocka_unit_test(test_mismatched_build),
        cmocka_unit_test(test_rank_hangs),          cmocka_unit_test(test_rank_dies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
