/* test_threads.c — a network split over threads of one process (a group of
 * ranks, base/comm.h) is the same run as on one thread: the same report
 * (every counter, the energy, the checksum over every spike) and the same
 * trace, for 1, 2 and 3 threads (3 on this 2-core machine: oversubscribed on
 * purpose), on every path the engine splits differently. And the group's
 * collectives themselves: their results, a member that fails alone, one that
 * never arrives, a status agreed on. In-process, so under the sanitizers. */
#include "tests/support/check.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/comm.h"
#include "base/par.h"
#include "eval/chiptime.h"
#include "jobs/run.h"
#include "net/estimate.h"
#include "net/spec.h"
#include "sim/network.h"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the group's collectives -------------------------------------------- */

typedef struct member_run {
    nesim_comm *c;
    int rounds;
    int fail_at;       /* this member leaves with a failure before this round (-1: never) */
    int rc;
    nesim_error err;
    double ended;      /* when it returned */
    uint64_t checked;  /* values it checked */
} member_run;

static void *member_main(void *arg)
{
    member_run *m = arg;
    int r = nesim_comm_rank(m->c), K = nesim_comm_size(m->c);
    unsigned char mine[64], all[64 * 8];
    for (int n = 0; n < m->rounds && !m->rc; n++) {
        if (n == m->fail_at) {
            m->rc = nesim_fail(&m->err, NESIM_EIO, "boom in round %d", n);
            nesim_comm_group_leave(m->c, m->rc, &m->err);
            break;
        }
        /* allgather: every member's bytes in rank order */
        memset(mine, r * 31 + n, sizeof mine);
        if ((m->rc = nesim_comm_allgather(m->c, mine, sizeof mine, all, "test allgather", &m->err)))
            break;
        for (int q = 0; q < K; q++)
            for (int i = 0; i < 64; i++, m->checked++)
                if (all[q * 64 + i] != (unsigned char)(q * 31 + n))
                    m->rc = nesim_fail(&m->err, NESIM_EINVAL, "allgather round %d: member %d's byte %d wrong", n, q, i);
        /* allgatherv: member q sends (q + n) % 5 bytes (some send none) */
        size_t counts[8];
        for (int q = 0; q < K; q++)
            counts[q] = (size_t)((q + n) % 5);
        unsigned char v[8];
        memset(v, 100 + r, sizeof v);
        const void *got;
        if (!m->rc && (m->rc = nesim_comm_allgatherv(m->c, v, counts, &got, "test allgatherv", &m->err)))
            break;
        const unsigned char *g = got;
        for (int q = 0, off = 0; !m->rc && q < K; off += (int)counts[q], q++)
            for (size_t i = 0; i < counts[q]; i++, m->checked++)
                if (g[off + (int)i] != 100 + q)
                    m->rc = nesim_fail(&m->err, NESIM_EINVAL, "allgatherv round %d: member %d wrong", n, q);
        /* sums and a minimum */
        uint64_t s[3] = {(uint64_t)r, (uint64_t)n, 1ull << 40};
        int64_t lo = 1000 - r - n;
        if (!m->rc && ((m->rc = nesim_comm_sum_u64(m->c, s, 3, "test sum", &m->err)) ||
                       (m->rc = nesim_comm_min_i64(m->c, &lo, "test min", &m->err))))
            break;
        m->checked += 4;
        if (!m->rc && (s[0] != (uint64_t)(K * (K - 1) / 2) || s[1] != (uint64_t)(K * n) || s[2] != (uint64_t)K << 40 ||
                       lo != 1000 - (K - 1) - n))
            m->rc = nesim_fail(&m->err, NESIM_EINVAL, "sum/min round %d wrong", n);
        /* the split allgather: posted, work of a length that differs by
         * member and round (so members finish in every order), finished */
        memset(mine, r * 7 + n, sizeof mine);
        memset(all, 0xee, sizeof all);
        if (!m->rc && (m->rc = nesim_comm_allgather_post(m->c, mine, sizeof mine, all, "test split", &m->err)))
            break;
        nesim_error e2 = {0}; /* one at a time: a second post is refused, and changes nothing */
        if (!m->rc && K > 1 && nesim_comm_allgather_post(m->c, mine, 1, all + 1, "a second", &e2) != NESIM_ESTATE)
            m->rc = nesim_fail(&m->err, NESIM_EINVAL, "a second split post was not refused");
        for (volatile int w = 0; w < ((r + n) % 4) * 3000; w++)
            ;
        if (!m->rc && (m->rc = nesim_comm_allgather_finish(m->c, &m->err)))
            break;
        for (int q = 0; !m->rc && q < K; q++)
            for (int i = 0; i < 64; i++, m->checked++)
                if (all[q * 64 + i] != (unsigned char)(q * 7 + n))
                    m->rc = nesim_fail(&m->err, NESIM_EINVAL, "split allgather round %d: member %d's byte %d wrong",
                                       n, q, i);
    }
    m->ended = mono();
    return NULL;
}

/* Runs K members for `rounds` rounds (member `bad` leaves failing before
 * round fail_at); returns them, joined. */
static member_run *run_members(int K, int rounds, int bad, int fail_at, const nesim_comm *like,
                               nesim_comm_group **gout)
{
    nesim_error err = {0};
    nesim_comm_group *g;
    assert_ok(nesim_comm_group_new(K, like, &g, &err), &err);
    member_run *m = calloc((size_t)K, sizeof *m);
    pthread_t th[8];
    for (int r = 0; r < K; r++) {
        m[r] = (member_run){.c = nesim_comm_group_member(g, r), .rounds = rounds, .fail_at = r == bad ? fail_at : -1};
        assert_int_equal(nesim_comm_rank(m[r].c), r);
        assert_int_equal(nesim_comm_size(m[r].c), K);
        assert_true(nesim_comm_is_group(m[r].c));
        assert_int_equal(pthread_create(&th[r], NULL, member_main, &m[r]), 0);
    }
    for (int r = 0; r < K; r++)
        pthread_join(th[r], NULL);
    *gout = g;
    return m;
}

static void test_group_collectives(void **st)
{
    for (int K = 1; K <= 4; K++) {
        nesim_comm_group *g;
        member_run *m = run_members(K, 300, -1, -1, NULL, &g);
        for (int r = 0; r < K; r++) {
            if (m[r].rc)
                fail_msg("K = %d, member %d: %s", K, r, m[r].err.msg);
            assert_true(m[r].checked > 300 * (uint64_t)K * 64);
            /* the traffic counters: 5 collectives a round (the split one once) */
            assert_int_equal(nesim_comm_statistics(m[r].c).collectives, K > 1 ? 5 * 300 : 0);
        }
        free(m);
        nesim_comm_group_free(g);
    }
}

/* a member that fails alone ends the others' waits at once, with its line */
static void test_group_member_fails(void **st)
{
    nesim_comm_group *g;
    double t0 = mono();
    member_run *m = run_members(3, 50, 2, 17, NULL, &g); /* the bound is 300 s */
    for (int r = 0; r < 3; r++) {
        assert_int_equal(m[r].rc, NESIM_EIO);
        assert_true(m[r].ended - t0 < 10);
    }
    assert_non_null(strstr(m[0].err.msg, "thread 2: boom in round 17"));
    assert_non_null(strstr(m[1].err.msg, "thread 2: boom in round 17"));
    assert_true(nesim_comm_broken(m[0].c));
    free(m);
    nesim_comm_group_free(g);
}

/* One member's thread: its communicator and how it ended. */
typedef struct one_member {
    nesim_comm *c;
    int rc;
    nesim_error err;
} one_member;

static void *waiter_main(void *arg)
{
    one_member *a = arg;
    int x = 1, all[2];
    a->rc = nesim_comm_allgather(a->c, &x, sizeof x, all, "the spike exchange", &a->err);
    nesim_comm_group_leave(a->c, a->rc, &a->err);
    return NULL;
}

/* a member that never arrives: the other gives up at the bound (the bound
 * of the communicator the group was made like), naming the exchange */
static void test_group_member_never_arrives(void **st)
{
    nesim_error err = {0};
    nesim_comm *like;
    assert_ok(nesim_comm_open(NULL, NULL, 0.3, &like, &err), &err);
    nesim_comm_group *g;
    assert_ok(nesim_comm_group_new(2, like, &g, &err), &err);
    one_member a = {.c = nesim_comm_group_member(g, 0)};
    pthread_t th;
    double t0 = mono();
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &a), 0);
    pthread_join(th, NULL);
    double waited = mono() - t0;
    assert_int_equal(a.rc, NESIM_EIO);
    assert_true(waited >= 0.3 && waited < 5);
    assert_non_null(strstr(a.err.msg, "no answer from the other threads"));
    assert_non_null(strstr(a.err.msg, "the spike exchange"));
    /* member 1 comes late: its first collective fails at once with the line */
    int x = 2, all[2];
    assert_int_equal(nesim_comm_allgather(nesim_comm_group_member(g, 1), &x, sizeof x, all, "late", &err), NESIM_EIO);
    assert_non_null(strstr(err.msg, "no answer"));
    nesim_comm_group_free(g);
    nesim_comm_close(like, 0);
}

static void *agree_main(void *arg)
{
    one_member *a = arg;
    int mine = nesim_comm_rank(a->c) == 1 ? nesim_fail(&a->err, NESIM_EINVAL, "bad input on one member") : NESIM_OK;
    a->rc = nesim_comm_agree(a->c, mine, &a->err);
    nesim_comm_group_leave(a->c, a->rc, &a->err);
    return NULL;
}

/* a status agreed on: every member ends with member 1's line */
static void test_group_agree(void **st)
{
    nesim_error err = {0};
    nesim_comm_group *g;
    assert_ok(nesim_comm_group_new(3, NULL, &g, &err), &err);
    one_member a[3];
    pthread_t th[3];
    for (int r = 0; r < 3; r++) {
        a[r] = (one_member){.c = nesim_comm_group_member(g, r)};
        assert_int_equal(pthread_create(&th[r], NULL, agree_main, &a[r]), 0);
    }
    for (int r = 0; r < 3; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(a[r].rc, NESIM_EINVAL);
        assert_string_equal(a[r].err.msg, "thread 1: bad input on one member");
    }
    nesim_comm_group_free(g);
}

/* ---- networks: the same run for any number of threads -------------------- */

static json_t *run_with(const char *spec, double seconds, const char *chip, int threads, const char *trace)
{
    nesim_run_opts o = {.spec = spec, .seconds = seconds, .chip = chip ? chip : "none", .threads = threads,
                        .trace = trace, .record = NESIM_TRACE_SPIKES};
    nesim_error err = {0};
    json_t *r = NULL;
    if (nesim_run_spec(&o, &r, &err))
        fail_msg("%s on %d threads: %s", spec, threads, err.msg);
    return r;
}

/* spec's report on 1 thread equals its report on 2 and 3; returns the
 * 1-thread report (the caller frees it). */
static json_t *same_for_any_threads(const char *spec, double seconds, const char *chip)
{
    json_t *ref = run_with(spec, seconds, chip, 1, NULL);
    assert_null(json_object_get(ref, "threads"));
    json_t *plain = json_deep_copy(ref);
    test_strip_machine(ref);
    for (int k = 2; k <= 3; k++) {
        json_t *r = run_with(spec, seconds, chip, k, NULL);
        json_t *t = json_object_get(r, "threads");
        assert_non_null(t);
        assert_int_equal(json_integer_value(json_object_get(t, "ranks")), k);
        assert_true(json_integer_value(json_object_get(t, "exchanges")) > 0);
        test_strip_machine(r);
        char what[600];
        snprintf(what, sizeof what, "%s on %d threads", spec, k);
        test_assert_same_report(ref, r, what);
        json_decref(r);
    }
    json_decref(ref);
    return plain;
}

static int64_t total(json_t *r, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(r, "totals"), k));
}

static void test_cuba_and_b4(void **st)
{
    json_t *r = same_for_any_threads("examples/cuba/model.json", 0.5, NULL);
    assert_true(total(r, "spikes") > 1000);
    json_decref(r);
    /* a min delay of one tick: each tick's predictions run while its
     * exchange travels (most of them: not the first ones, nor those at the
     * end of refractoriness) */
    r = run_with("examples/cuba/model.json", 0.2, NULL, 2, NULL);
    int64_t po = json_integer_value(json_object_get(json_object_get(r, "threads"), "predictions_overlapped"));
    assert_true(po > total(r, "predictions") / 2 && po <= total(r, "predictions"));
    json_decref(r);
    r = same_for_any_threads("examples/b4/model.json", 0.3, "loihi"); /* with its energy */
    assert_true(total(r, "spikes") > 1000);
    assert_non_null(json_object_get(r, "energy"));
    json_decref(r);
}

/* explicit synapses with per-synapse delays, a Poisson source (whole on one
 * thread) */
static void test_ring(void **st)
{
    json_t *r = same_for_any_threads("examples/ring/model.json", 1, NULL);
    assert_true(total(r, "spikes") > 100);
    json_decref(r);
}

/* all-to-all without autapses, one-to-one, a Poisson drive and a min delay
 * of 3 ticks (epochs of 3 ticks between exchanges) */
static void test_rules_and_long_delays(void **st)
{
    const char *spec = "tests/fixtures/rules-delays.json";
    json_t *r = same_for_any_threads(spec, 2, NULL);
    json_t *L = json_object_get(r, "layers");
    for (size_t i = 0; i < json_array_size(L); i++) /* every population fires: every path ran */
        assert_true(json_number_value(json_object_get(json_array_get(L, i), "spikes")) > 10);
    json_decref(r);
}

/* A min delay of 8 ticks: each exchange travels while the next window of 4
 * ticks runs; the same report as one thread, and as the blocking exchange
 * after every 8 ticks. A sparse network with a delay of 20: its silent
 * stretches are skipped (fewer exchanges than windows). */
static void test_overlapped_exchange(void **st)
{
    const char *spec = "tests/fixtures/cuba-delay8.json";
    json_t *ref = same_for_any_threads(spec, 0.5, NULL);
    assert_true(total(ref, "spikes") > 5000);
    test_strip_machine(ref);
    for (int off = 0; off <= 1; off++) {
        nesim_run_opts o = {.spec = spec, .seconds = 0.5, .chip = "none", .threads = 3, .no_overlap = off,
                            .record = NESIM_TRACE_SPIKES};
        nesim_error err = {0};
        json_t *r = NULL;
        assert_ok(nesim_run_spec(&o, &r, &err), &err);
        json_t *t = json_object_get(r, "threads");
        const char *how = json_string_value(json_object_get(t, "exchange"));
        assert_non_null(how);
        assert_int_equal(strncmp(how, off ? "blocking" : "overlapped", off ? 8 : 10), 0);
        assert_int_equal(json_integer_value(json_object_get(t, "window_ticks")), off ? 8 : 4);
        /* 5,000 ticks: one exchange per window, all of them busy */
        assert_int_equal(json_integer_value(json_object_get(t, "exchanges")), off ? 625 : 1250);
        test_strip_machine(r);
        test_assert_same_report(ref, r, off ? "blocking exchange on 3 threads" : "overlapped exchange on 3 threads");
        json_decref(r);
    }
    json_decref(ref);
    ref = same_for_any_threads("tests/fixtures/sparse-delays.json", 5, NULL);
    assert_true(total(ref, "spikes") > 300);
    json_decref(ref);
    json_t *r = run_with("tests/fixtures/sparse-delays.json", 5, NULL, 2, NULL);
    json_t *t = json_object_get(r, "threads");
    assert_int_equal(json_integer_value(json_object_get(t, "window_ticks")), 10);
    int64_t ex = json_integer_value(json_object_get(t, "exchanges"));
    print_message("  sparse network: %lld exchanges for 500 windows\n", (long long)ex);
    assert_true(ex > 20 && ex < 400);
    json_decref(r);
}

/* SANA-FE's kind of network, small: `if` neurons each with its own drive
 * (a parameter class per neuron), explicit random synapses with per-synapse
 * weights, timed on Loihi step by step */
static const char *write_ifnet(void)
{
    const char *spec = test_tmp("ifnet.json");
    FILE *f = fopen(spec, "w");
    assert_non_null(f);
    enum { N = 300, FAN = 20 };
    uint64_t x = 12345;
#define NEXT() (x = x * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(x >> 33))
    fputs("{\"nesim\": 1, \"name\": \"ifnet\", \"tick\": 1.0, \"seed\": 3, \"populations\": [\n"
          " {\"name\": \"n\", \"model\": \"if\", \"n\": 300, \"params\": {\"v_thresh\": 1.015625, \"v_reset\": 0,"
          " \"t_ref\": 0, \"i_drive\": [",
          f);
    for (int i = 0; i < N; i++)
        fprintf(f, "%s%.6f", i ? ", " : "", (3 + NEXT() % 17) / 64.0);
    fputs("]}}],\n \"projections\": [{\"pre\": \"n\", \"post\": \"n\", \"rule\": \"explicit\", \"delay\": 1,"
          " \"synapses\": {\"pre\": [",
          f);
    for (int i = 0; i < N * FAN; i++)
        fprintf(f, "%s%d", i ? ", " : "", i / FAN);
    fputs("], \"post\": [", f);
    for (int i = 0; i < N * FAN; i++)
        fprintf(f, "%s%u", i ? ", " : "", (unsigned)((i / FAN + 1 + (i % FAN) * 13 + NEXT() % 7) % N));
    fputs("], \"weight\": [", f);
    for (int i = 0; i < N * FAN; i++)
        fprintf(f, "%s%s", i ? ", " : "", i / FAN < N * 4 / 5 ? "0.03125" : "-0.125");
    fputs("]}}]}\n", f);
    fclose(f);
#undef NEXT
    return spec;
}

static void test_explicit_per_neuron(void **st)
{
    json_t *r = same_for_any_threads(write_ifnet(), 300, "loihi");
    assert_true(total(r, "spikes") > 1000);
    json_decref(r);
}

/* Chip time split over the threads (each times every K-th step, the steps
 * gathered at the end): the same chip-time section, the same per-step file
 * and the same trace (its chip_steps rows) as one thread timing every step,
 * for both step models; asynchronous time stays whole. */
static void test_chip_time_shared(void **st)
{
    char spec[512];
    snprintf(spec, sizeof spec, "%s", write_ifnet());
    const nesim_timing models[] = {NESIM_TIMING_SIMPLE, NESIM_TIMING_DETAILED};
    for (int m = 0; m < 2; m++) {
        json_t *ref = NULL;
        char *ref_steps = NULL, *ref_rows = NULL;
        for (int k = 1; k <= 3; k++) {
            char npy[512], db[512];
            snprintf(npy, sizeof npy, "%s", test_tmp(k == 1 ? "steps1.npy" : k == 2 ? "steps2.npy" : "steps3.npy"));
            snprintf(db, sizeof db, "%s", test_tmp(k == 1 ? "ct1.db" : k == 2 ? "ct2.db" : "ct3.db"));
            unlink(db);
            nesim_run_opts o = {.spec = spec, .seconds = 301, .chip = "loihi-sanafe", .threads = k,
                                .timing = models[m], .timing_steps = npy, .trace = db,
                                .record = NESIM_TRACE_SPIKES};
            nesim_error err = {0};
            json_t *r = NULL;
            assert_ok(nesim_run_spec(&o, &r, &err), &err);
            json_t *ct = json_object_get(r, "chip_time");
            assert_int_equal(json_integer_value(json_object_get(ct, "steps")), 301);
            assert_true(json_number_value(json_object_get(ct, "total_s")) > 0);
            test_strip_machine(r);
            size_t n;
            char *bytes = test_read_file(npy, &n);
            char *rows = test_table_text(db, "SELECT tick, seconds FROM chip_steps ORDER BY tick");
            assert_true(strlen(rows) > 301 * 4);
            if (k == 1) {
                ref = r, ref_steps = bytes, ref_rows = rows;
                continue;
            }
            char what[96];
            snprintf(what, sizeof what, "%s chip time on %d threads", m ? "detailed" : "simple", k);
            test_assert_same_report(ref, r, what);
            if (memcmp(bytes, ref_steps, n))
                fail_msg("%s: the per-step file differs", what);
            if (strcmp(rows, ref_rows))
                fail_msg("%s: the trace's chip_steps differ", what);
            json_decref(r), free(bytes), free(rows);
        }
        json_decref(ref), free(ref_steps), free(ref_rows);
    }
}

/* thread 0 writes the trace: the same rows as one thread's */
static void test_trace_same(void **st)
{
    char one[512], three[512];
    snprintf(one, sizeof one, "%s", test_tmp("cuba1.db"));
    snprintf(three, sizeof three, "%s", test_tmp("cuba3.db"));
    unlink(one), unlink(three);
    json_decref(run_with("examples/cuba/model.json", 0.3, NULL, 1, one));
    json_decref(run_with("examples/cuba/model.json", 0.3, NULL, 3, three));
    test_assert_same_trace(one, three, "CUBA: 1 thread against 3");
}

/* thread 0 alone fails (its trace cannot be created): the run ends at once
 * with its line, the other threads with it */
static void test_thread0_fails(void **st)
{
    nesim_run_opts o = {.spec = "examples/cuba/model.json", .seconds = 0.3, .chip = "none", .threads = 2,
                        .trace = "/nonexistent-dir/t.db", .record = NESIM_TRACE_SPIKES};
    nesim_error err = {0};
    json_t *r = NULL;
    double t0 = mono();
    assert_int_not_equal(nesim_run_spec(&o, &r, &err), NESIM_OK);
    assert_null(r);
    assert_true(mono() - t0 < 30);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/t.db"));
    assert_null(strstr(err.msg, "thread 1"));
}

static int count_spike(void *ctx, int64_t t, uint32_t id, int pop)
{
    uint64_t *h = ctx;
    *h = nesim_spike_checksum_add(*h, t, id);
    return 0;
}

/* Networks reading one graph (the threads of a split run): each runs as a
 * network owning its graph does, the graph is neither changed nor freed by
 * them, and adding to it through one is refused. */
static void test_shared_graph(void **st)
{
    nesim_spec *spec;
    nesim_error err = {0};
    assert_ok(nesim_spec_load("examples/cuba/model.json", &spec, &err), &err);
    nesim_graph *g, *own;
    assert_ok(nesim_spec_build_graph(spec, spec->seed, &g, &err), &err);
    assert_ok(nesim_spec_build_graph(spec, spec->seed, &own, &err), &err);
    nesim_net *a = nesim_net_sharing(g, &err), *b = nesim_net_sharing(g, &err), *c = nesim_net_from_graph(own, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    uint64_t h[3] = {NESIM_SPIKE_CHECKSUM_INIT, NESIM_SPIKE_CHECKSUM_INIT, NESIM_SPIKE_CHECKSUM_INIT};
    nesim_net *n[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        nesim_set_sink(n[i], count_spike, &h[i]);
        assert_ok(nesim_run(n[i], 2000, &err), &err);
    }
    assert_true(h[0] == h[2] && h[1] == h[2] && h[2] != NESIM_SPIKE_CHECKSUM_INIT);
    int id;
    nesim_pop_spec ps = {.name = "more", .model = "lif", .n = 3};
    assert_int_equal(nesim_add_population(a, &ps, &id, &err), NESIM_ESTATE);
    for (int i = 0; i < 3; i++)
        nesim_net_free(n[i]);
    assert_int_equal(g->n_pops, 2); /* still whole: freed below, once (ASan checks) */
    nesim_graph_free(g);
    nesim_spec_free(spec);
}

/* the default: one thread for a small network, every core for a large one,
 * fewer when memory is short; --threads decides */
static void test_default_threads(void **st)
{
    nesim_spec *small, *big;
    nesim_error err = {0};
    assert_ok(nesim_spec_load("examples/cuba/model.json", &small, &err), &err);
    const char *p = test_tmp("cuba20k.json");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("{\"nesim\": 1, \"name\": \"big\", \"tick\": 1e-4, \"seed\": 1, \"populations\": [\n"
          " {\"name\": \"e\", \"model\": \"lif\", \"n\": 20000, \"params\": {\"tau_m\": 0.02, \"v_rest\": -0.06,"
          " \"v_thresh\": -0.05, \"v_reset\": -0.06, \"t_ref\": 0.005}}],\n"
          " \"projections\": [{\"pre\": \"e\", \"post\": \"e\", \"rule\": \"fixed_prob\", \"p\": 0.02, \"weight\": 0.001}]}\n",
          f);
    fclose(f);
    assert_ok(nesim_spec_load(p, &big, &err), &err);
    nesim_run_opts o = {0};
    assert_int_equal(nesim_run_network_threads(&o, small), 1);      /* 320 k synapses */
    assert_int_equal(nesim_run_network_threads(&o, big), nesim_par_cores()); /* 8 M */
    o.threads = 3;
    assert_int_equal(nesim_run_network_threads(&o, small), 3);
    o.threads = 0;
    nesim_estimate e;
    nesim_spec_estimate(big, 0, &e);
    o.max_memory = (uint64_t)(1.5 * e.bytes); /* room for one copy of the graph, not two */
    assert_int_equal(nesim_run_network_threads(&o, big), 1);
    nesim_spec_free(small);
    nesim_spec_free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_collectives),  cmocka_unit_test(test_group_member_fails),
        cmocka_unit_test(test_group_member_never_arrives), cmocka_unit_test(test_group_agree),
        cmocka_unit_test(test_cuba_and_b4),        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_rules_and_long_delays), cmocka_unit_test(test_overlapped_exchange),
        cmocka_unit_test(test_explicit_per_neuron), cmocka_unit_test(test_chip_time_shared),
        cmocka_unit_test(test_trace_same),         cmocka_unit_test(test_thread0_fails),
        cmocka_unit_test(test_shared_graph),       cmocka_unit_test(test_default_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
