/* test_classic.c — firing statistics of Benchmark 4 and CUBA against Brian2.
 *
 * The reference figures were produced by Brian2 2.5.1 (C++ standalone) on the
 * same networks: bench/brian2/reference.json, written by
 * bench/brian2/make_reference.sh. Brian2 is not needed to run this test. Each
 * network is a different random draw in the two simulators, so the check is
 * statistical: nesim's mean rate over two seeds within 5 % of Brian2's mean
 * over three, and the mean ISI CV within 10 %. */
#include "tests/support/check.h"

#include <jansson.h>
#include <string.h>

#include "net/classic.h"
#include "sim/network.h"
#include "eval/stats.h"

static int on_spike(void *ctx, int64_t t, uint32_t id, int pop)
{
    nesim_isi_add(ctx, id, t);
    return 0;
}

static void reference(const char *net, double *rate, double *cv)
{
    json_error_t je;
    json_t *root = json_load_file("bench/brian2/reference.json", 0, &je);
    if (!root)
        fail_msg("bench/brian2/reference.json:%d:%d: %s", je.line, je.column, je.text);
    json_t *m = json_object_get(json_object_get(json_object_get(json_object_get(root, "networks"), net), "mean"), "mean_rate_hz");
    json_t *c = json_object_get(json_object_get(json_object_get(json_object_get(root, "networks"), net), "mean"), "isi_cv");
    assert_true(json_is_number(m) && json_is_number(c));
    *rate = json_number_value(m);
    *cv = json_number_value(c);
    json_decref(root);
}

static void check(const char *name)
{
    const double seconds = 4;
    double rate = 0, cv = 0;
    for (uint64_t seed = 1; seed <= 2; seed++) {
        nesim_error err = {0};
        nesim_classic_opts o = {.name = name, .neurons = 4000, .tick_s = 1e-4, .seed = seed};
        nesim_graph *g;
        assert_ok(nesim_classic_build(&o, &g, NULL, NULL, &err), &err);
        nesim_net *net = nesim_net_from_graph(g, &err);
        assert_non_null(net);
        nesim_isi isi;
        assert_ok(nesim_isi_init(&isi, 4000, &err), &err);
        nesim_set_sink(net, on_spike, &isi);
        assert_ok(nesim_run(net, (int64_t)(seconds / 1e-4), &err), &err);
        nesim_isi_summary s;
        assert_ok(nesim_isi_summarise(&isi, seconds, &s, &err), &err);
        rate += s.mean_rate_hz / 2;
        cv += s.cv_mean / 2;
        nesim_isi_free(&isi);
        nesim_net_free(net);
    }
    double brate, bcv;
    reference(name, &brate, &bcv);
    print_message("%s: nesim %.3f Hz, CV %.3f; Brian2 %.3f Hz, CV %.3f\n", name, rate, cv, brate, bcv);
    assert_close(rate, brate, 0.05, 0);
    assert_close(cv, bcv, 0.10, 0);
}

static void test_b4_rate_matches_brian2(void **st) { check("b4"); }
static void test_cuba_rate_matches_brian2(void **st) { check("cuba"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b4_rate_matches_brian2),
        cmocka_unit_test(test_cuba_rate_matches_brian2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
