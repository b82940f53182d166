/* test_chiptime.c — chip time per step against times worked out by hand on
 * a 2 x 2 mesh of cores (eval/chiptime.h): a hot receiving core, a hot link,
 * full link buffers that hold a message back, steps with input but no
 * spikes, silent steps, the sync table, and a whole run through `nesim run`.
 *
 * The chip: 4 cores, one per router at (0,0) (1,0) (0,1) (1,1), 4 neurons
 * each. Latencies (ns): neuron access 1, update 2, spike out 10, message out
 * 3, message in 50, sparse synaptic op 7, hop east-west 20, north-south 30;
 * sync 100 / 300 / 800 ns for 1 / 3 / 8 routers in use (4 in use: 300).
 *
 * The network: 16 `if` neurons without drive (updated only in steps they
 * receive input): 0-3 on core 0, 4-7 on core 1, 8-11 on core 2, 12-15 on
 * core 3. Neuron 0 reaches neuron 4 three times (delays 1, 2, 3: three
 * messages to core 1, one synapse each: 50 + 7 = 57 ns to receive each);
 * neuron 1 reaches 12, 13, 14 (delay 1: one message to core 3 with three
 * synapses, 50 + 21 = 71 ns). Both fire in step 0.
 *
 * Step 0 by hand. Core 0's pass: neuron 0 done at 1 + 10 = 11, its messages
 * leave at 14, 17, 20 (M1-M3); neuron 1 done at 1 (slot 0's access) + 19
 * (neuron 0's spike and messages) + 1 + 10 = 31, its message M6 leaves at 34;
 * the pass ends at 4 x 1 + 19 + 13 = 36.
 *   simple: core 1 receives 3 x 57 = 171 > 36  ->  171 + 300 = 471.
 *   detailed, buffers of 16: M1 crosses (0,0)E 14-34, M2 34-54, M3 54-74, M6
 *     74-94, then (1,0)N 94-124; core 1 takes M1 34-91, M2 91-148, M3
 *     148-205; core 3 takes M6 124-195  ->  205 + 300 = 505 (core 1).
 *   detailed, buffers of 2: M3 arrives at 74 while M1's successor M2 still
 *     waits in core 1's buffer (taken at 91): the link's buffer is full, so
 *     M6 cannot cross until M2 leaves it at 91: (0,0)E 91-111, (1,0)N
 *     111-141, core 3 141-212  ->  212 + 300 = 512 (core 3, waiting on the
 *     network).
 * Step 1: neuron 4 and neurons 12-14 get input: core 3's pass 4 + 3 x 2 = 10
 *   -> 310. Steps 2, 3: neuron 4 again -> 4 + 2 + 300 = 306. Step 4: silent
 *   -> 304. */
#include "tests/support/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "eval/chiptime.h"
#include "eval/cost.h"
#include "net/chip.h"
#include "net/nir.h"
#include "net/tensor.h"
#include "jobs/run.h"
#include "sim/infer.h"
#include "sim/nir_run.h"

static const double ns = 1e-9;

static int make_async; /* small_chip: an asynchronous chip */

static nesim_chip *small_chip(uint32_t buffer)
{
    json_error_t je;
    json_t *j = json_load_file("chips/loihi.json", 0, &je);
    assert_non_null(j);
#define SETV(obj, key, v) json_object_set_new(json_object_get(obj, key), "value", v)
    SETV(j, "neurons_per_core", json_integer(4));
    SETV(j, "cores_per_chip", json_integer(4));
    SETV(j, "cores_per_router", json_integer(1));
    SETV(json_object_get(j, "mesh"), "x", json_integer(2));
    SETV(json_object_get(j, "mesh"), "y", json_integer(2));
    json_t *L = json_object_get(j, "latency");
    struct { const char *k; double v; } lat[] = {
        {"synaptic_op_dense", 4}, {"synaptic_op_sparse", 7}, {"synaptic_op_conv", 3}, {"neuron_access", 1},
        {"neuron_update", 2},     {"spike_out", 10},          {"message_out", 3},      {"message_in", 50},
        {"hop_ew", 20},           {"hop_ns", 30},             {"hop_chip", 0}};
    for (size_t i = 0; i < sizeof lat / sizeof *lat; i++)
        SETV(L, lat[i].k, json_real(lat[i].v * ns));
    SETV(L, "link_buffer", json_integer(buffer));
    json_t *sync = json_object();
    const char *keys[3] = {"1", "3", "8"};
    double vals[3] = {100, 300, 800};
    for (int i = 0; i < 3; i++) {
        json_t *q = json_deep_copy(json_object_get(json_object_get(L, "sync"), "1"));
        json_object_set_new(q, "value", json_real(vals[i] * ns));
        json_object_set_new(sync, keys[i], q);
    }
    json_object_set_new(L, "sync", sync);
    if (make_async)
        json_object_set_new(j, "clocking", json_string("asynchronous"));
#undef SETV
    char *text = json_dumps(j, 0);
    json_decref(j);
    nesim_chip *c = NULL;
    nesim_error err = {0};
    assert_ok(nesim_chip_parse(text, strlen(text), "small", "loihi", &c, &err), &err);
    free(text);
    return c;
}

static nesim_net *small_net(void)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(1e-3, 1, &err);
    assert_non_null(net);
    nesim_pop_spec p = {.name = "a", .model = "if", .n = 16, NESIM_PARAMS({"v_thresh", 1.0})};
    assert_ok(nesim_add_population(net, &p, NULL, &err), &err);
    uint32_t pre[6] = {0, 0, 0, 1, 1, 1}, post[6] = {4, 4, 4, 12, 13, 14};
    double w[6] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
    int64_t d[6] = {1, 2, 3, 1, 1, 1};
    nesim_proj_spec s = {.pre = 0, .post = 0, .kind = NESIM_EXPLICIT, .delay = 1, .pre_idx = pre, .post_idx = post,
                         .w = w, .delays = d, .n_syn = 6};
    assert_ok(nesim_connect(net, &s, NULL, &err), &err);
    return net;
}

/* Times steps 0..4 with neurons 0 and 1 firing in step 0. */
static nesim_net *the_net; /* the timing reads the network while it runs: freed after it */

static nesim_chiptime_result time_it(nesim_chiptime **ct, nesim_timing model, uint32_t buffer)
{
    nesim_error err = {0};
    nesim_chip *chip = small_chip(buffer), *dense = NULL;
    assert_ok(nesim_chip_load("dense-45nm", "chips", &dense, &err), &err);
    nesim_net *net = small_net();
    nesim_cost pre;
    assert_ok(nesim_cost_network_map(chip, dense, net, &pre, &err), &err);
    assert_int_equal(pre.map.cores, 4);
    assert_ok(nesim_chiptime_new(chip, &pre.caps, &pre.map, net, model, ct, &err), &err);
    nesim_cost_free(&pre);
    uint32_t fired[2] = {1, 0};
    assert_ok(nesim_chiptime_step(*ct, 0, fired, 2, &err), &err);
    nesim_chiptime_result r;
    assert_ok(nesim_chiptime_finish(*ct, 5, &r, &err), &err);
    /* a step before the last one given is refused */
    assert_int_equal(nesim_chiptime_step(*ct, 3, fired, 1, &err), NESIM_EINVAL);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    the_net = net;
    return r;
}

/* The timed run's mapping, made before the run, prices it afterwards: moved,
 * not made again, and the same cost as a fresh mapping's. */
static void test_mapping_reused(void **st)
{
    nesim_error err = {0};
    nesim_chip *chip = small_chip(16), *dense = NULL;
    assert_ok(nesim_chip_load("dense-45nm", "chips", &dense, &err), &err);
    nesim_net *net = small_net();
    assert_ok(nesim_run(net, 20, &err), &err);
    uint64_t spikes[16] = {0};
    spikes[0] = 3, spikes[1] = 2;
    nesim_cost pre, a, b;
    assert_ok(nesim_cost_network_map(chip, dense, net, &pre, &err), &err);
    assert_non_null(pre.map.place);
    assert_ok(nesim_cost_network_mapped(chip, dense, net, &pre, spikes, 20, 1e-3, &a, &err), &err);
    assert_null(pre.map.place); /* moved */
    assert_ok(nesim_cost_network_timed(chip, dense, net, spikes, 20, 1e-3, &b, &err), &err);
    assert_int_equal(a.map.cores, 4);
    assert_int_equal(a.map.cores, b.map.cores);
    assert_int_equal(a.map.routes, b.map.routes);
    assert_true(a.energy.total > 0);
    for (int k = 0; k < NESIM_E_TERMS; k++)
        assert_true(a.energy.term[k] == b.energy.term[k]);
    /* neuron 0 reaches neuron 4 (core 1) over three delays (three projections),
     * neuron 1 neurons 12-14 (core 3) over one: 3 x 3 + 2 x 1 messages */
    assert_true(a.layer[0].in.deliveries == b.layer[0].in.deliveries);
    assert_true(a.layer[0].in.deliveries == 3 * 3 + 2 * 1);
    nesim_cost_free(&pre);
    nesim_cost_free(&a);
    nesim_cost_free(&b);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_net_free(net);
}

static void check_steps(const nesim_chiptime_result *r, double step0)
{
    const double want[5] = {step0, 310, 306, 306, 304};
    assert_int_equal(r->steps, 5);
    for (int s = 0; s < 5; s++)
        if (fabs(r->step_s[s] - want[s] * ns) > 1e-6 * ns)
            fail_msg("step %d: %.6g ns, by hand %.6g ns", s, r->step_s[s] / ns, want[s]);
    assert_close(r->total_s, (step0 + 310 + 306 + 306 + 304) * ns, 1e-12, 0);
    assert_int_equal(r->max_step, 0);
    assert_int_equal(r->routers, 4);
    assert_close(r->sync_s, 300 * ns, 1e-12, 0);
    assert_int_equal(r->messages, 4);
}

static void test_simple_model(void **st)
{
    nesim_chiptime *ct;
    nesim_chiptime_result r = time_it(&ct, NESIM_TIMING_SIMPLE, 16);
    check_steps(&r, 471);
    assert_int_equal(r.critical_core, 1); /* the hot core: receiving 171 ns */
    assert_int_equal(r.bound, NESIM_CT_RECV);
    nesim_chiptime_free(ct);
    nesim_net_free(the_net);
}

static void test_detailed_model(void **st)
{
    nesim_chiptime *ct;
    nesim_chiptime_result r = time_it(&ct, NESIM_TIMING_DETAILED, 16);
    check_steps(&r, 505);
    assert_int_equal(r.critical_core, 1);
    assert_int_equal(r.bound, NESIM_CT_RECV);
    /* the hot link: (0,0) east carried all four messages, 4 x 20 ns */
    assert_non_null(r.link_dir);
    assert_string_equal(r.link_dir, "E");
    assert_int_equal(r.link_x, 0);
    assert_int_equal(r.link_y, 0);
    assert_close(r.link_busy_s, 80 * ns, 1e-12, 0);
    /* waits for the link: M2 17, M3 34, M6 40 */
    assert_close(r.blocked_s, 91 * ns, 1e-12, 0);
    nesim_chiptime_free(ct);
    nesim_net_free(the_net);
}

static void test_full_buffers_hold_messages_back(void **st)
{
    nesim_chiptime *ct;
    nesim_chiptime_result r = time_it(&ct, NESIM_TIMING_DETAILED, 2);
    check_steps(&r, 512);
    assert_int_equal(r.critical_core, 3);
    assert_int_equal(r.bound, NESIM_CT_NET);
    assert_close(r.blocked_s, (17 + 34 + 57) * ns, 1e-12, 0); /* M6 waited 91 - 34 */
    nesim_chiptime_free(ct);
    nesim_net_free(the_net);
}

static void test_profiles_and_errors(void **st)
{
    nesim_error err = {0};
    nesim_chip *tn = NULL, *dense = NULL;
    assert_ok(nesim_chip_load("truenorth", "chips", &tn, &err), &err);
    assert_ok(nesim_chip_load("dense-45nm", "chips", &dense, &err), &err);
    nesim_net *net = small_net();
    nesim_cost pre;
    assert_ok(nesim_cost_network_map(tn, dense, net, &pre, &err), &err);
    nesim_chiptime *ct = NULL;
    assert_int_equal(nesim_chiptime_new(tn, &pre.caps, &pre.map, net, NESIM_TIMING_SIMPLE, &ct, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "chip truenorth has no latency section"));
    assert_null(ct);
    nesim_cost_free(&pre);
    nesim_net_free(net);
    nesim_chip_free(tn);
    nesim_chip_free(dense);
    assert_int_equal(nesim_timing_parse("detailed"), NESIM_TIMING_DETAILED);
    assert_int_equal(nesim_timing_parse("fast"), -1);
    /* a sync key that is not a router count names itself */
    const char *bad = "{\"1x\": {\"value\": 1e-7, \"unit\": \"s\", \"assumption\": \"x\"}}";
    json_error_t je;
    json_t *j = json_load_file("chips/loihi.json", 0, &je);
    json_object_set_new(json_object_get(j, "latency"), "sync", json_loads(bad, 0, &je));
    char *text = json_dumps(j, 0);
    nesim_chip *c = NULL;
    assert_int_equal(nesim_chip_parse(text, strlen(text), "x.json", "loihi", &c, &err), NESIM_EINVAL);
    assert_string_equal(err.msg, "x.json: latency.sync.1x: '1x' is not a count of routers (1 .. 16777216)");
    free(text);
    json_decref(j);
}

/* A NIR graph timed step by step: in(2) -> Linear [[0.6, 0.3], [0.2, 0.9]] ->
 * IF(2, threshold 1) -> out, frames [1, 0], [1, 0], [0, 0], on loihi (its
 * latencies: access 6, update 3.7, spike out 30, message out 5.1, message in
 * 16, dense synaptic op 3.8 ns; sync 0.6 us for one router). Both groups
 * share core 0; input neuron 0 reaches both IF neurons (one message, two
 * synapses: 16 + 2 x 3.8 = 23.6 ns to receive); wiring is crossed in the
 * same step, so the IF neurons it reaches are updated in that step. IF 0
 * fires at step 1 (0.6, then 1.2 > 1). By hand:
 *   simple:   step 0 max(2 x 6 + 5.1 + 2 x 3.7, 23.6) + 600 = 624.5 ns;
 *             step 1 624.5 + 30 (IF 0's spike) = 654.5; step 2 2 x 6 + 600 = 612.
 *   detailed: step 0: the message leaves at 5.1 ns, received 5.1 .. 28.7 ->
 *             628.7; step 1: the pass ends at 54.5 > 28.7 -> 654.5; step 2: 612. */
static void test_nir_graph_timed(void **st)
{
    const char *text =
        "{\"nesim_nir\": 1, \"nodes\": {\"in\": {\"type\": \"Input\", \"shape\": {\"shape\": [1], \"data\": [2]}},"
        " \"w\": {\"type\": \"Linear\", \"weight\": {\"shape\": [2, 2], \"data\": [0.6, 0.3, 0.2, 0.9]}},"
        " \"n\": {\"type\": \"IF\", \"r\": {\"shape\": [2], \"data\": [1, 1]}, \"v_threshold\": {\"shape\": [2], \"data\": [1, 1]}},"
        " \"out\": {\"type\": \"Output\", \"shape\": {\"shape\": [1], \"data\": [2]}}},"
        " \"edges\": [[\"in\", \"w\"], [\"w\", \"n\"], [\"n\", \"out\"]]}";
    const double frames[6] = {1, 0, 1, 0, 0, 0};
    const double want[2][3] = {{624.5, 654.5, 612}, {628.7, 654.5, 612}};
    for (int model = 0; model < 2; model++) {
        nesim_error err = {0};
        json_error_t je;
        json_t *root = json_loads(text, 0, &je);
        assert_non_null(root);
        nesim_nir_graph g;
        assert_ok(nesim_nir_from_json(root, "test", &g, &err), &err);
        json_decref(root);
        nesim_nir_opts o = {.dt = 1, .disc = NESIM_NIR_EULER};
        nesim_nir_net *net;
        assert_ok(nesim_nir_net_new(&g, &o, "test", &net, &err), &err);
        nesim_chip *chip, *dense;
        assert_ok(nesim_chip_load("loihi", "chips", &chip, &err), &err);
        assert_ok(nesim_chip_load("dense-45nm", "chips", &dense, &err), &err);
        nesim_cost pre;
        int *gnode;
        assert_ok(nesim_cost_nir(chip, dense, &g, net, 0, 1, 0, &pre, &gnode, &err), &err);
        assert_int_equal(pre.map.cores, 1);
        nesim_nir_ct *view_of;
        nesim_ct_graph view;
        assert_ok(nesim_cost_nir_ct(&g, net, gnode, (int)pre.n, &view_of, &view, &err), &err);
        assert_int_equal(view.n_groups, 2);
        assert_int_equal(view.n_edges, 1);
        nesim_chiptime *ct;
        assert_ok(nesim_chiptime_new_graph(chip, &pre.caps, &pre.map, &view, model ? NESIM_TIMING_DETAILED
                                                                                    : NESIM_TIMING_SIMPLE, &ct, &err),
                  &err);
        nesim_cost_free(&pre);
        assert_ok(nesim_nir_run_sample(net, frames, 3, &err), &err);
        size_t nsp;
        const nesim_nir_spike *sp = nesim_nir_spikes(net, nesim_nir_node_find(&g, "n"), &nsp);
        assert_int_equal(nsp, 1);
        assert_int_equal(sp[0].step, 1);
        assert_int_equal(sp[0].idx, 0);
        /* neurons numbered group by group: in 0, 1; n 2, 3 */
        uint32_t s0[1] = {0}, s1[2] = {0, 2};
        assert_ok(nesim_chiptime_step(ct, 0, s0, 1, &err), &err);
        assert_ok(nesim_chiptime_step(ct, 1, s1, 2, &err), &err);
        nesim_chiptime_result r;
        assert_ok(nesim_chiptime_finish(ct, 3, &r, &err), &err);
        for (int k = 0; k < 3; k++)
            if (fabs(r.step_s[k] - want[model][k] * ns) > 1e-6 * ns)
                fail_msg("%s step %d: %.6g ns, by hand %.6g ns", model ? "detailed" : "simple", k, r.step_s[k] / ns,
                         want[model][k]);
        nesim_chiptime_free(ct);
        nesim_cost_nir_ct_free(view_of);
        free(gnode);
        nesim_chip_free(chip);
        nesim_chip_free(dense);
        nesim_nir_net_free(net);
        nesim_nir_free(&g);
    }
}

/* ---- an asynchronous chip: a chain of three neurons, two input events ----
 *
 * An input neuron (core 0) drives neuron 1 (core 1), which drives neuron 2
 * (core 2), one synapse each, wired within the step; cores on routers (0,0),
 * (1,0), (2,0). The same latencies (ns): message out 3, one hop 20, message
 * in 50 + one sparse synaptic op 7, spike out 10. Input events arrive 30 ns
 * apart (steps 0 and 1), and all three neurons fire in both steps.
 *   step 0, input at 0: core 1 gets the message at 3 + 20 = 23, is done at
 *     23 + 57 = 80; neuron 1 fires at 90, its message reaches core 2 at 113,
 *     done at 170; neuron 2 fires at 180: latency 180.
 *   step 1, input at 30: its message reaches core 1 at 53, but core 1 is busy
 *     until 80: done at 137; neuron 1 fires at 147, core 2 gets it at 170 (free
 *     since 170), done at 227; neuron 2 fires at 237: latency 237 - 30 = 207.
 *   elapsed: max(2 x 30, 237) = 237 ns. */
typedef struct chain {
    int dummy;
} chain;
static uint32_t ch_size(void *u, int g) { return 1; }
static int ch_kind(void *u, int g, uint32_t i) { return g == 0 ? NESIM_CT_SOURCE : NESIM_CT_PASSIVE; }
static void ch_edge(void *u, int e, int *pre, int *post, int *syn, int64_t *delay)
{
    *pre = e, *post = e + 1, *syn = NESIM_CT_SPARSE, *delay = 0;
}
static size_t ch_targets(void *u, int e, uint32_t i, uint32_t *out, size_t cap)
{
    if (cap)
        out[0] = 0;
    return 1;
}
static size_t ch_map_targets(void *u, uint64_t i, uint32_t *out, size_t cap)
{
    if (cap)
        out[0] = 0;
    return 1;
}

static void test_async_two_event_chain(void **st)
{
    nesim_error err = {0};
    make_async = 1;
    nesim_chip *chip = small_chip(16);
    make_async = 0;
    assert_true(chip->p.asynchronous);
    nesim_chip_caps caps = {.neurons_per_core = 4, .synapse_bytes_per_core = 1e6, .cores_per_chip = 3,
                            .cores_per_router = 1, .mesh_x = 3, .mesh_y = 1, .chip_mesh_x = 1, .chip_mesh_y = 1,
                            .weight_bits_max = 8};
    nesim_map_group g[3] = {{.name = "in", .neurons = 1, .weight_bits = 8},
                            {.name = "a", .neurons = 1, .fan_in = 1, .weight_bits = 8},
                            {.name = "b", .neurons = 1, .fan_in = 1, .weight_bits = 8}};
    nesim_map_edge e[2] = {{.pre = 0, .post = 1, .targets = ch_map_targets}, {.pre = 1, .post = 2, .targets = ch_map_targets}};
    nesim_mapping map;
    assert_ok(nesim_map(&caps, g, 3, e, 2, &map, &err), &err);
    assert_int_equal(map.cores, 3);
    chain c = {0};
    nesim_ct_graph view = {.user = &c, .n_groups = 3, .n_edges = 2, .size = ch_size, .kind = ch_kind,
                           .edge = ch_edge, .targets = ch_targets};
    nesim_chiptime *ct;
    /* a time-stepped model on an asynchronous chip is refused, and the other way round */
    assert_int_equal(nesim_chiptime_new_graph(chip, &caps, &map, &view, NESIM_TIMING_SIMPLE, &ct, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "is asynchronous"));
    assert_ok(nesim_chiptime_new_graph(chip, &caps, &map, &view, NESIM_TIMING_ASYNC, &ct, &err), &err);
    nesim_chiptime_set_input_dt(ct, 30 * ns);
    uint32_t all[3] = {2, 0, 1};
    assert_ok(nesim_chiptime_step(ct, 0, all, 3, &err), &err);
    assert_ok(nesim_chiptime_step(ct, 1, all, 3, &err), &err);
    nesim_chiptime_result r;
    assert_ok(nesim_chiptime_finish(ct, 2, &r, &err), &err);
    assert_close(r.step_s[0], 180 * ns, 1e-12, 0);
    assert_close(r.step_s[1], 207 * ns, 1e-12, 0);
    assert_close(r.elapsed_s, 237 * ns, 1e-12, 0);
    assert_close(r.total_s, 237 * ns, 1e-12, 0);
    assert_int_equal(r.max_step, 1);
    json_t *j = nesim_chiptime_json(&r, NESIM_TIMING_ASYNC, -1);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "async");
    json_decref(j);
    nesim_chiptime_free(ct);
    /* and a time-stepped chip refuses async */
    nesim_chip *sync_chip = small_chip(16);
    assert_int_equal(nesim_chiptime_new_graph(sync_chip, &caps, &map, &view, NESIM_TIMING_ASYNC, &ct, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "is time-stepped"));
    nesim_chip_free(sync_chip);
    nesim_map_free(&map);
    nesim_chip_free(chip);
}

/* ---- a layer model: one dense layer, its input coder on the input's core ----
 *
 * Input (2 values) on core 0 at (0,0), the layer's 3 outputs on core 1 at
 * (1,0); the coder of the layer's input sits with the input, a source (its
 * spikes come from off the chip: no neuron pass, no spike out). Routers in
 * use: 2, so sync 100 ns. Core 1's pass: 3 accesses = 3 ns.
 *   a step with one input spike: core 0 sends one message (3), core 1
 *     updates its 3 neurons (3 + 3 x 2 = 9) and receives one message of 3
 *     dense synapses (50 + 3 x 4 = 62)  ->  62 + 100 = 162 (simple).
 *   both channels: core 1 receives two: 124  ->  224.
 *   silent: core 1's pass, 3  ->  103.
 *   detailed, one spike: the message leaves at 3, crosses (0,0)E in 20,
 *     core 1 takes it 23-85  ->  185. */
static void test_layer_model_timed(void **st)
{
    nesim_error err = {0};
    float w[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {3, 2};
    assert_ok(nesim_npy_write(test_tmp("lw.npy"), NESIM_F32, 2, shape, w, &err), &err);
    char text[600];
    snprintf(text, sizeof text,
             "{\"nesim\": 1, \"tick\": 1e-3, \"input\": {\"shape\": [2]}, \"layers\": [{\"type\": \"linear\", "
             "\"weight\": {\"file\": \"%s\"}, \"coding\": \"binary\", \"threshold\": 0.5}]}", test_tmp("lw.npy"));
    nesim_spec *spec;
    assert_ok(nesim_spec_parse(text, strlen(text), "layer.json", NULL, &spec, &err), &err);
    nesim_infer *m;
    assert_ok(nesim_infer_open(spec, &m, &err), &err);
    nesim_chip *chip = small_chip(16), *dense = NULL;
    assert_ok(nesim_chip_load("dense-45nm", "chips", &dense, &err), &err);
    for (int model = NESIM_TIMING_SIMPLE; model <= NESIM_TIMING_DETAILED; model++) {
        nesim_cost pre;
        assert_ok(nesim_cost_layers_map(chip, dense, m, &pre, &err), &err);
        assert_int_equal(pre.map.cores, 2);
        nesim_layers_ct *v;
        nesim_ct_graph view;
        const nesim_mapping *tmap;
        assert_ok(nesim_cost_layers_ct(m, &pre.map, &v, &view, &tmap, &err), &err);
        assert_int_equal(view.n_groups, 3); /* input, the layer's outputs, its coder */
        nesim_chiptime *ct;
        assert_ok(nesim_chiptime_new_graph(chip, &pre.caps, tmap, &view, (nesim_timing)model, &ct, &err), &err);
        uint32_t c0 = nesim_layers_ct_neuron(v, 0, 0), c1 = nesim_layers_ct_neuron(v, 0, 1);
        assert_int_equal(c0, 2 + 3);
        assert_int_equal(nesim_layers_ct_neuron(v, 0, 2), UINT32_MAX);
        uint32_t one[1] = {c0}, both[2] = {c1, c0};
        assert_ok(nesim_chiptime_step(ct, 0, one, 1, &err), &err);
        assert_ok(nesim_chiptime_step(ct, 1, both, 2, &err), &err);
        nesim_chiptime_result r;
        assert_ok(nesim_chiptime_finish(ct, 3, &r, &err), &err);
        if (model == NESIM_TIMING_SIMPLE) {
            assert_close(r.step_s[0], 162 * ns, 1e-12, 0);
            assert_close(r.step_s[1], 224 * ns, 1e-12, 0);
            assert_close(r.step_s[2], 103 * ns, 1e-12, 0);
        } else {
            assert_close(r.step_s[0], 185 * ns, 1e-12, 0);
        }
        nesim_chiptime_free(ct);
        nesim_layers_ct_free(v);
        nesim_cost_free(&pre);
    }
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_infer_close(m);
    nesim_spec_free(spec);

    /* a whole layer run timed: steps add up, per inference is the total over samples, and
     * static energy is paid over chip time */
    nesim_run_opts o = {.spec = "examples/digits/model.json", .input = "examples/digits/test_inputs.npy", .samples = 20,
                        .chip = "loihi", .timing = NESIM_TIMING_SIMPLE, .timing_steps = test_tmp("lsteps.npy")};
    json_t *rep;
    assert_ok(nesim_run_spec(&o, &rep, &err), &err);
    const json_t *cj = json_object_get(rep, "chip_time");
    assert_non_null(cj);
    nesim_tensor t;
    assert_ok(nesim_npy_load(test_tmp("lsteps.npy"), &t, &err), &err);
    double sum = 0;
    for (size_t k = 0; k < (size_t)t.shape[0]; k++)
        sum += nesim_tensor_get(&t, k);
    assert_close(sum, json_real_value(json_object_get(cj, "total_s")), 1e-9, 0);
    assert_close(json_real_value(json_object_get(cj, "per_inference_s")) * 20, sum, 1e-9, 0);
    assert_int_equal(json_integer_value(json_object_get(cj, "steps")),
                     (json_int_t)json_number_value(json_object_get(json_object_get(rep, "totals"), "virtual_ticks")));
    /* the digits' layers play one after the other: their times add up to the whole */
    const json_t *pl = json_object_get(cj, "per_layer");
    assert_int_equal(json_array_size(pl), 3);
    double lsum = 0;
    size_t li;
    const json_t *lv;
    json_array_foreach(pl, li, lv) {
        assert_true(json_real_value(json_object_get(lv, "chip_s")) > 0);
        lsum += json_real_value(json_object_get(lv, "chip_s"));
    }
    assert_close(lsum, sum, 1e-9, 0);
    nesim_tensor_release(&t);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_reused),
        cmocka_unit_test(test_simple_model),
        cmocka_unit_test(test_detailed_model),
        cmocka_unit_test(test_full_buffers_hold_messages_back),
        cmocka_unit_test(test_profiles_and_errors),
        cmocka_unit_test(test_nir_graph_timed),
        cmocka_unit_test(test_async_two_event_chain),
        cmocka_unit_test(test_layer_model_timed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
