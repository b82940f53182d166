/* test_nir.c — NIR graphs: each node type's dynamics against references
 * written here (hand-stepped Euler, closed forms, GSL's ODE solver for the
 * exact CubaLIF), the NIR paper's graphs against an independent numpy
 * stepper that reads the HDF5 itself (tests/nir_ref.py), nested = flat,
 * sparse = dense, spec round trips, and every malformed file refused. */
#include "tests/support/check.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <gsl/gsl_rng.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/nir.h"
#include "jobs/replay.h"
#include "net/chip.h"
#include "net/nir.h"
#include "net/tensor.h"
#include "eval/chiptime.h"
#include "sim/nir_run.h"
#include "traces/store.h"

/* The NIR paper's graphs, kept in the repository (examples/nir, BSD-3). */
static const char *nir_file(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "examples/nir/%s", name);
    return b;
}

/* A graph from JSON text (single quotes for double, to keep the tests legible). */
static void graph_from(const char *text, nesim_nir_graph *g)
{
    char *t = strdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t je;
    json_t *root = json_loads(t, 0, &je);
    if (!root)
        fail_msg("bad test JSON: %s at %d", je.text, je.position);
    nesim_error err = {0};
    assert_ok(nesim_nir_from_json(root, "test", g, &err), &err);
    json_decref(root);
    free(t);
}

/* in(1) -> Linear 1x1 (w = 1) -> NEURON -> out */
static void one_neuron(const char *neuron, nesim_nir_graph *g)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{'nesim_nir': 1, 'nodes': {'in': {'type': 'Input', 'shape': {'shape': [1], 'data': [1]}},"
             " 'w': {'type': 'Linear', 'weight': {'shape': [1, 1], 'data': [1]}},"
             " 'n': %s, 'out': {'type': 'Output', 'shape': {'shape': [1], 'data': [1]}}},"
             " 'edges': [['in', 'w'], ['w', 'n'], ['n', 'out']]}",
             neuron);
    graph_from(text, g);
}

static nesim_nir_net *net_of(const nesim_nir_graph *g, double dt, nesim_nir_disc disc, int subtract, int dense)
{
    nesim_nir_opts o = {.dt = dt, .disc = disc, .reset_subtract = subtract, .dense = dense};
    nesim_nir_net *net = NULL;
    nesim_error err = {0};
    assert_ok(nesim_nir_net_new(g, &o, "test", &net, &err), &err);
    return net;
}

/* The spike steps of node `node` for input x[steps]. */
static size_t spike_steps(nesim_nir_net *net, int node, const double *x, size_t steps, int64_t *out, size_t cap)
{
    nesim_error err = {0};
    assert_ok(nesim_nir_run_sample(net, x, steps, &err), &err);
    size_t n;
    const nesim_nir_spike *sp = nesim_nir_spikes(net, node, &n);
    for (size_t k = 0; k < n && k < cap; k++)
        out[k] = sp[k].step;
    return n;
}

static void test_if_strict_threshold_and_resets(void **st)
{
    nesim_nir_graph g;
    one_neuron("{'type': 'IF', 'r': 1, 'v_threshold': 1}", &g);
    int n = nesim_nir_node_find(&g, "n");
    double x[6] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    int64_t s[8];
    /* v: 0.5, 1.0 (not above 1: strict), 1.5 fires -> 0, 0.5, 1.0, 1.5 fires */
    nesim_nir_net *net = net_of(&g, 1, NESIM_NIR_EULER, 0, 0);
    assert_int_equal(spike_steps(net, n, x, 6, s, 8), 2);
    assert_int_equal(s[0], 2);
    assert_int_equal(s[1], 5);
    nesim_nir_net_free(net);
    /* subtract: 1.5 -> 0.5 at step 2, 1.0, 1.5 fires at 4 -> 0.5, 1.0 */
    net = net_of(&g, 1, NESIM_NIR_EULER, 1, 0);
    assert_int_equal(spike_steps(net, n, x, 6, s, 8), 2);
    assert_int_equal(s[0], 2);
    assert_int_equal(s[1], 4);
    double v;
    assert_int_equal(nesim_nir_state(net, n, 0, &v, NULL), NESIM_OK);
    assert_true(v == 1.0);
    nesim_nir_net_free(net);
    /* dt scales the integration: v <- v + dt R x = 0.25 a step, over 1 at step 4 */
    net = net_of(&g, 0.5, NESIM_NIR_EULER, 0, 0);
    assert_int_equal(spike_steps(net, n, x, 6, s, 8), 1);
    assert_int_equal(s[0], 4);
    assert_int_equal(nesim_nir_state(net, n, 0, &v, NULL), NESIM_OK);
    assert_true(v == 0.25);
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
}

/* LIF under constant input: exact = the closed-form crossing time; euler = hand-stepped. */
static void test_lif_constant_input(void **st)
{
    nesim_nir_graph g;
    one_neuron("{'type': 'LIF', 'tau': 0.01, 'r': 2, 'v_leak': 0.1, 'v_threshold': 1}", &g);
    int n = nesim_nir_node_find(&g, "n");
    enum { T = 200 };
    double x[T];
    for (int i = 0; i < T; i++)
        x[i] = 0.6;
    int64_t s[64];
    /* exact: from v = 0, v(t) = v_inf (1 - e^(-t/tau)) + 0 crosses 1 at ts = tau ln(v_inf / (v_inf - 1));
     * step k holds t = (k + 1) dt: first spike at k = floor(ts / dt), then every floor(ts / dt) + 1 steps */
    double vinf = 0.1 + 2 * 0.6, tstar = 0.01 * log(vinf / (vinf - 1));
    int64_t m = (int64_t)floor(tstar / 1e-3) + 1;
    assert_int_equal(m, 15);
    nesim_nir_net *net = net_of(&g, 1e-3, NESIM_NIR_EXACT, 0, 0);
    size_t ns = spike_steps(net, n, x, T, s, 64);
    /* reset to 0 = v_reset, then the same climb, except v_leak: v_inf the same, start 0 */
    assert_true(ns >= 10);
    for (size_t k = 0; k < ns; k++)
        assert_int_equal(s[k], (int64_t)(k + 1) * m - 1);
    nesim_nir_net_free(net);
    /* euler, stepped here */
    int64_t ref[64];
    size_t nr = 0;
    double v = 0;
    for (int k = 0; k < T; k++) {
        v = v + 0.1 * (0.1 - v + 2 * 0.6);
        if (v > 1) {
            ref[nr++] = k;
            v = 0;
        }
    }
    net = net_of(&g, 1e-3, NESIM_NIR_EULER, 0, 0);
    ns = spike_steps(net, n, x, T, s, 64);
    assert_int_equal(ns, nr);
    for (size_t k = 0; k < ns; k++)
        assert_int_equal(s[k], ref[k]);
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
}

/* The exact CubaLI(F): GSL's rk8pd over each step with the input held. */
typedef struct cuba_par {
    double tm, ts, R, vl, win, x;
} cuba_par;

static int cuba_rhs(double t, const double y[], double f[], void *p)
{
    const cuba_par *c = p;
    (void)t;
    f[0] = (-y[0] + c->win * c->x) / c->ts;        /* I */
    f[1] = (c->vl - y[1] + c->R * y[0]) / c->tm;   /* v */
    return GSL_SUCCESS;
}

static void test_cuba_exact_against_gsl_and_euler_by_hand(void **st)
{
    const char *par = "'tau_mem': 0.002, 'tau_syn': 0.0005, 'r': 3, 'v_leak': 0.05, 'w_in': 1.5";
    char neuron[512];
    snprintf(neuron, sizeof neuron, "{'type': 'CubaLI', %s}", par);
    nesim_nir_graph g;
    one_neuron(neuron, &g);
    int n = nesim_nir_node_find(&g, "n");
    enum { T = 40 };
    double x[T] = {0};
    x[0] = 2, x[3] = 1, x[4] = -0.5, x[10] = 3, x[25] = 1; /* pulses, some held over a step */
    cuba_par c = {0.002, 0.0005, 3, 0.05, 1.5, 0};
    double dt = 2e-4;
    for (int disc = 0; disc < 2; disc++) {
        nesim_nir_net *net = net_of(&g, dt, disc ? NESIM_NIR_EXACT : NESIM_NIR_EULER, 0, 0);
        double y[2] = {0, 0}, vh = 0, ih = 0;
        gsl_odeiv2_system sys = {cuba_rhs, NULL, 2, &c};
        gsl_odeiv2_driver *d = gsl_odeiv2_driver_alloc_y_new(&sys, gsl_odeiv2_step_rk8pd, 1e-7, 1e-13, 1e-13);
        for (int k = 1; k <= T; k++) {
            nesim_error err = {0};
            assert_ok(nesim_nir_run_sample(net, x, (size_t)k, &err), &err);
            double v, cur;
            assert_int_equal(nesim_nir_state(net, n, 0, &v, &cur), NESIM_OK);
            if (disc) {
                c.x = x[k - 1];
                double t0 = 0;
                gsl_odeiv2_driver_reset(d);
                assert_int_equal(gsl_odeiv2_driver_apply(d, &t0, dt, y), GSL_SUCCESS);
                assert_close(v, y[1], 1e-9, 1e-9);
                assert_close(cur, y[0], 1e-9, 1e-9);
            } else {
                ih = ih + dt / 0.0005 * (-ih + 1.5 * x[k - 1]);
                vh = vh + dt / 0.002 * (0.05 - vh + 3 * ih);
                assert_close(v, vh, 1e-14, 1e-14);
                assert_close(cur, ih, 1e-14, 1e-14);
            }
        }
        gsl_odeiv2_driver_free(d);
        nesim_nir_net_free(net);
    }
    nesim_nir_free(&g);
}

/* A CubaLIF that one pulse takes over threshold several steps later, with no
 * input meanwhile: the activity-driven runner must keep it in view. */
static void test_cubalif_fires_after_its_input(void **st)
{
    nesim_nir_graph g;
    one_neuron("{'type': 'CubaLIF', 'tau_mem': 0.002, 'tau_syn': 0.001, 'r': 1, 'v_leak': 0, "
               "'w_in': 1, 'v_threshold': 0.9}",
               &g);
    int n = nesim_nir_node_find(&g, "n");
    enum { T = 30 };
    double x[T] = {0};
    x[0] = 40; /* v climbs for 12 steps after the pulse: over 0.9 at step 7 */
    int64_t ref[T], s[T];
    size_t nr = 0;
    double v = 0, I = 0;
    for (int k = 0; k < T; k++) {
        I = I + 0.1 * (-I + x[k]);
        v = v + 0.05 * (0 - v + I);
        if (v > 0.9) {
            ref[nr++] = k;
            v = 0;
        }
    }
    assert_true(nr >= 1 && ref[0] == 7); /* the case: a spike steps after the pulse */
    for (int dense = 0; dense < 2; dense++) {
        nesim_nir_net *net = net_of(&g, 1e-4, NESIM_NIR_EULER, 0, dense);
        size_t ns = spike_steps(net, n, x, T, s, T);
        assert_int_equal(ns, nr);
        for (size_t k = 0; k < ns; k++)
            assert_int_equal(s[k], ref[k]);
        nesim_nir_net_free(net);
    }
    nesim_nir_free(&g);
}

/* LI (exact closed form), I (a sum), Threshold, Scale and Delay. */
static void test_li_i_threshold_scale_delay(void **st)
{
    nesim_nir_graph g;
    graph_from("{'nesim_nir': 1, 'nodes': {"
               " 'in': {'type': 'Input', 'shape': {'shape': [1], 'data': [2]}},"
               " 'sc': {'type': 'Scale', 'scale': {'shape': [2], 'data': [2, -1]}},"
               " 'li': {'type': 'LI', 'tau': {'shape': [2], 'data': [0.004, 0.001]}, 'r': 1, 'v_leak': 0},"
               " 'i': {'type': 'I', 'r': {'shape': [2], 'data': [1, 3]}},"
               " 'd': {'type': 'Delay', 'delay': {'shape': [2], 'data': [0.003, 0.001]}},"
               " 'th': {'type': 'Threshold', 'threshold': {'shape': [2], 'data': [0.5, -0.5]}},"
               " 'out': {'type': 'Output', 'shape': {'shape': [1], 'data': [2]}}},"
               " 'edges': [['in', 'sc'], ['sc', 'li'], ['sc', 'i'], ['in', 'd'], ['d', 'th'], ['li', 'out']]}",
               &g);
    nesim_nir_net *net = net_of(&g, 1e-3, NESIM_NIR_EXACT, 0, 0);
    enum { T = 8 };
    double x[T * 2] = {0};
    x[0] = 1;      /* in[0] at step 0 */
    x[2 * 2 + 1] = 1; /* in[1] at step 2 */
    nesim_error err = {0};
    assert_ok(nesim_nir_run_sample(net, x, T, &err), &err);
    int li = nesim_nir_node_find(&g, "li"), in = nesim_nir_node_find(&g, "i"), th = nesim_nir_node_find(&g, "th");
    double v;
    /* li[0]: input 2 held over step 0 -> 2 (1 - e^(-1/4)), then decays over 7 steps */
    assert_int_equal(nesim_nir_state(net, li, 0, &v, NULL), NESIM_OK);
    assert_close(v, 2 * (1 - exp(-0.25)) * exp(-7 * 0.25), 1e-13, 1e-15);
    /* li[1]: input -1 at step 2, tau 1 ms -> -(1 - e^-1) e^(-5) */
    assert_int_equal(nesim_nir_state(net, li, 1, &v, NULL), NESIM_OK);
    assert_close(v, -(1 - exp(-1.0)) * exp(-5.0), 1e-13, 1e-15);
    /* I: v = dt R x summed */
    assert_int_equal(nesim_nir_state(net, in, 0, &v, NULL), NESIM_OK);
    assert_close(v, 1e-3 * 1 * 2, 1e-15, 0);
    assert_int_equal(nesim_nir_state(net, in, 1, &v, NULL), NESIM_OK);
    assert_close(v, 1e-3 * 3 * -1, 1e-15, 0);
    /* Delay: in[0] (step 0) arrives at step 3 and crosses 0.5; th[1] has a
     * negative threshold: 0 > -0.5 fires every step except when in[1] = 1 lands (step 3) */
    size_t ns;
    const nesim_nir_spike *sp = nesim_nir_spikes(net, th, &ns);
    int saw0 = 0, n1 = 0;
    for (size_t k = 0; k < ns; k++) {
        if (sp[k].idx == 0) {
            assert_int_equal(sp[k].step, 3);
            saw0++;
        } else
            n1++, assert_true(sp[k].step != 3 || 1); /* 1 > -0.5 too: fires at 3 as well */
    }
    assert_int_equal(saw0, 1);
    assert_int_equal(n1, T);
    /* the readout is li's v summed over the steps */
    assert_true(nesim_nir_readout(net)[0] > 0);
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
}

static void test_euler_unstable_refused(void **st)
{
    nesim_nir_graph g;
    one_neuron("{'type': 'LIF', 'tau': 0.001, 'r': 1, 'v_leak': 0, 'v_threshold': 1}", &g);
    nesim_nir_opts o = {.dt = 0.002, .disc = NESIM_NIR_EULER};
    nesim_nir_net *net = NULL;
    nesim_error err = {0};
    assert_int_equal(nesim_nir_net_new(&g, &o, "test", &net, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "unstable"));
    assert_non_null(strstr(err.msg, "node 'n'"));
    o.disc = NESIM_NIR_EXACT;
    assert_ok(nesim_nir_net_new(&g, &o, "test", &net, &err), &err);
    nesim_nir_net_free(net);
    o.dt = 0; /* no step given */
    assert_int_equal(nesim_nir_net_new(&g, &o, "test", &net, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "--dt"));
    nesim_nir_free(&g);
}

static void test_cnn_sinabs_shapes(void **st)
{
    nesim_nir_graph g;
    nesim_error err = {0};
    assert_ok(nesim_nir_load(nir_file("cnn_sinabs.nir"), 1, &g, &err), &err);
    assert_string_equal(g.version, "0.2.0");
    assert_int_equal(g.n_nodes, 15);
    assert_int_equal(g.n_edges, 14);
    nesim_nir_net *net = net_of(&g, 1, NESIM_NIR_EULER, 0, 0);
    assert_int_equal(nesim_nir_input_size(net), 2 * 34 * 34);
    assert_int_equal(nesim_nir_output_size(net), 10);
    static const struct {
        const char *node;
        int nd;
        int64_t sh[3];
    } want[] = {{"0", 3, {16, 16, 16}}, {"1", 3, {16, 16, 16}}, {"2", 3, {16, 16, 16}}, {"4", 3, {16, 8, 8}},
                {"5", 3, {8, 8, 8}},    {"7", 3, {8, 4, 4}},    {"8", 1, {128}},         {"9", 1, {256}},
                {"11", 1, {10}}};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        int64_t sh[8];
        int i = nesim_nir_node_find(&g, want[k].node);
        assert_true(i >= 0);
        int nd = nesim_nir_node_shape(net, i, sh, 8);
        if (nd != want[k].nd)
            fail_msg("node %s: %d dims", want[k].node, nd);
        for (int d = 0; d < nd; d++)
            if (sh[d] != want[k].sh[d])
                fail_msg("node %s: dim %d is %lld, want %lld", want[k].node, d, (long long)sh[d],
                         (long long)want[k].sh[d]);
    }
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
}

/* Random frames [samples, steps, shape] with density p into a .npy. */
static const char *frames_file(const char *name, int64_t samples, int64_t steps, int nd, const int64_t *shape,
                               double p, unsigned long seed)
{
    int64_t sh[8] = {samples, steps};
    size_t n = (size_t)(samples * steps);
    for (int d = 0; d < nd; d++) {
        sh[2 + d] = shape[d];
        n *= (size_t)shape[d];
    }
    float *f = malloc(n * sizeof *f);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    for (size_t i = 0; i < n; i++)
        f[i] = gsl_rng_uniform(r) < p ? 1.0f : 0.0f;
    gsl_rng_free(r);
    const char *path = test_tmp(name);
    nesim_error err = {0};
    assert_ok(nesim_npy_write(path, NESIM_F32, 2 + nd, sh, f, &err), &err);
    free(f);
    return path;
}

/* Runs the job (writing its spikes as CSV) and the numpy reference; every
 * node's spikes and SOPs must agree exactly. */
static json_t *run_job(const char *model, const char *frames, double dt, int exact, int subtract, int dense,
                       const char *csv)
{
    nesim_nir_job_opts o;
    nesim_nir_job_opts_init(&o);
    o.model = model;
    o.input = frames;
    o.run.dt = dt;
    o.run.disc = exact ? NESIM_NIR_EXACT : NESIM_NIR_EULER;
    o.run.reset_subtract = subtract;
    o.run.dense = dense;
    o.spikes_out = csv;
    json_t *rep = NULL;
    nesim_error err = {0};
    assert_ok(nesim_nir_job(&o, &rep, &err), &err);
    return rep;
}

static void against_numpy(const char *model, const char *frames, double dt, int exact, int subtract)
{
    const char *csv = test_tmp("got.csv"), *ref = test_tmp("ref.json");
    json_t *rep = run_job(model, frames, dt, exact, subtract, 0, csv);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/nir_ref.py %s %s %.17g %s %s %s", model, frames, dt,
             exact ? "exact" : "euler", subtract ? "subtract" : "value", ref);
    assert_int_equal(system(cmd), 0);
    json_error_t je;
    json_t *r = json_load_file(ref, 0, &je);
    assert_non_null(r);
    /* nesim's spikes from its CSV, by node name */
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[512];
    json_t *got = json_object();
    assert_non_null(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f)) {
        long s, t;
        unsigned idx;
        char node[256];
        assert_int_equal(sscanf(line, "%ld,%ld,%255[^,],%u", &s, &t, node, &idx), 4);
        json_t *l = json_object_get(got, node);
        if (!l)
            json_object_set_new(got, node, l = json_array());
        json_array_append_new(l, json_pack("[iii]", s, t, idx));
    }
    fclose(f);
    const char *name;
    json_t *node;
    size_t total = 0, sops = 0;
    json_object_foreach(json_object_get(r, "nodes"), name, node)
    {
        json_t *want = json_object_get(node, "spikes"), *have = json_object_get(got, name);
        size_t nw = json_array_size(want);
        if (json_array_size(have) != nw)
            fail_msg("%s node %s: %zu spikes, numpy %zu", model, name, json_array_size(have), nw);
        /* both in (sample, step, index) order */
        for (size_t k = 0; k < nw; k++)
            if (!json_equal(json_array_get(want, k), json_array_get(have, k)))
                fail_msg("%s node %s: spike %zu differs", model, name, k);
        total += nw;
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(rep, "nodes"), i, n) if (!strcmp(json_string_value(json_object_get(n, "name")),
                                                                            name))
        {
            long long a = json_integer_value(json_object_get(n, "sops")),
                      b = json_integer_value(json_object_get(node, "sops"));
            if (a != b)
                fail_msg("%s node %s: %lld SOPs, numpy %lld", model, name, a, b);
            sops += (size_t)a;
        }
    }
    print_message("%s (%s, reset %s): %zu spikes and %zu SOPs agree with numpy\n", model, exact ? "exact" : "euler",
                  subtract ? "subtract" : "value", total, sops);
    assert_true(total > 0 && sops > 0);
    json_decref(got);
    json_decref(r);
    json_decref(rep);
}

static void test_cnn_sinabs_against_numpy(void **st)
{
    int64_t sh[3] = {2, 34, 34};
    const char *fr = frames_file("cnn.npy", 2, 10, 3, sh, 0.06, 7);
    against_numpy(nir_file("cnn_sinabs.nir"), fr, 1, 0, 0);
    against_numpy(nir_file("cnn_sinabs.nir"), fr, 1, 0, 1);
}

static void test_braille_against_numpy(void **st)
{
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille.npy", 3, 120, 1, sh, 0.2, 11);
    for (int exact = 0; exact < 2; exact++) {
        against_numpy(nir_file("braille_noDelay_bias_zero.nir"), fr, 1e-4, exact, 0);
        against_numpy(nir_file("braille_noDelay_noBias_subtract.nir"), fr, 1e-4, exact, 1);
    }
}

static json_t *spikes_of(json_t *rep) { return json_object_get(rep, "spike_checksum"); }

static const json_t *node_rep(json_t *rep, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(rep, "nodes"), i, n) if (!strcmp(json_string_value(json_object_get(n, "name")),
                                                                        name)) return n;
    fail_msg("no node %s in the report", name);
    return NULL;
}

/* The nested version gives exactly the flat one's spikes. */
static void test_braille_subgraph_equals_flat(void **st)
{
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille2.npy", 2, 150, 1, sh, 0.25, 5);
    nesim_error err = {0};
    nesim_nir_graph flat, sub;
    assert_ok(nesim_nir_load(nir_file("braille_noDelay_bias_zero.nir"), 1, &flat, &err), &err);
    assert_ok(nesim_nir_load(nir_file("braille_noDelay_bias_zero_subgraph.nir"), 1, &sub, &err), &err);
    assert_non_null(strstr(sub.notes, "'lif' names no node; taken as 'lif1'"));
    assert_string_equal(flat.notes, "");
    /* strict refuses the subgraph file's edge names */
    nesim_nir_graph strict;
    assert_int_equal(nesim_nir_load(nir_file("braille_noDelay_bias_zero_subgraph.nir"), 0, &strict, &err),
                     NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "names node 'lif'"));
    nesim_tensor t;
    assert_ok(nesim_npy_load(fr, &t, &err), &err);
    double *x = malloc(t.count * sizeof *x);
    for (size_t i = 0; i < t.count; i++)
        x[i] = nesim_tensor_get(&t, i);
    size_t per = (size_t)(t.shape[1] * t.shape[2]);
    for (int exact = 0; exact < 2; exact++) {
        nesim_nir_net *a = net_of(&flat, 1e-4, exact, 0, 0), *b = net_of(&sub, 1e-4, exact, 0, 0);
        size_t total = 0;
        for (int s = 0; s < 2; s++) {
            assert_ok(nesim_nir_run_sample(a, x + s * per, (size_t)t.shape[1], &err), &err);
            assert_ok(nesim_nir_run_sample(b, x + s * per, (size_t)t.shape[1], &err), &err);
            const char *pairs[][2] = {{"lif1.lif", "lif1.lif1"}, {"lif2", "lif2"}};
            for (int p = 0; p < 2; p++) {
                size_t na, nb;
                const nesim_nir_spike *sa = nesim_nir_spikes(a, nesim_nir_node_find(&flat, pairs[p][0]), &na);
                const nesim_nir_spike *sb = nesim_nir_spikes(b, nesim_nir_node_find(&sub, pairs[p][1]), &nb);
                assert_int_equal(na, nb);
                assert_memory_equal(sa, sb, na * sizeof *sa);
                total += na;
            }
        }
        assert_true(total > 50);
        nesim_nir_net_free(a);
        nesim_nir_net_free(b);
    }
    free(x);
    nesim_tensor_release(&t);
    nesim_nir_free(&flat);
    nesim_nir_free(&sub);
}

/* "bias" files add a bias every step; "noBias" ones never; subtract and value resets differ. */
static void test_braille_variants(void **st)
{
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille3.npy", 1, 200, 1, sh, 0.2, 3);
    json_t *bias = run_job(nir_file("braille_noDelay_bias_zero.nir"), fr, 1e-4, 0, 0, 0, NULL);
    json_t *nob = run_job(nir_file("braille_noDelay_noBias_subtract.nir"), fr, 1e-4, 0, 1, 0, NULL);
    json_t *nob_value = run_job(nir_file("braille_noDelay_noBias_subtract.nir"), fr, 1e-4, 0, 0, 0, NULL);
    /* fc1 (38) and lif1.w_rec (38) and fc2 (7) add their bias each of 200 steps */
    assert_int_equal(json_integer_value(json_object_get(bias, "bias_ops")), (38 + 38 + 7) * 200);
    assert_int_equal(json_integer_value(json_object_get(nob, "bias_ops")), 0);
    /* with a bias every lif1 neuron is visited every step; without, only those reached */
    assert_int_equal(json_integer_value(json_object_get(node_rep(bias, "lif1.lif"), "updates")), 38 * 200);
    assert_false(json_equal(spikes_of(nob), spikes_of(nob_value)));
    /* the energy is the activity priced term by term on the profile (loihi: no graded ops, so fp16 adds for bias) */
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_error err = {0};
    assert_ok(nesim_chip_load("loihi", NULL, &chip, &err), &err);
    assert_ok(nesim_chip_load("dense-45nm", NULL, &dense, &err), &err);
    double mac16, add16;
    assert_ok(nesim_chip_dense_op(dense, "fp16", NESIM_OP_MAC, &mac16, &err), &err);
    assert_ok(nesim_chip_dense_op(dense, "fp16", NESIM_OP_ADD, &add16, &err), &err);
    json_t *e = json_object_get(bias, "energy"), *terms = json_object_get(e, "terms_j");
    const nesim_chip_energy *E = &chip->p.energy;
#define TERM(k) json_real_value(json_object_get(terms, k))
#define COUNT(k) ((double)json_integer_value(json_object_get(bias, k)))
    assert_close(TERM("synaptic"), COUNT("sops") * E->synaptic_op, 1e-12, 0);
    assert_close(TERM("update"), COUNT("updates") * E->neuron_update_active, 1e-12, 0);
    assert_close(TERM("bias"), COUNT("bias_ops") * (chip->p.has_graded ? chip->p.graded_elem_j : add16), 1e-12, 0);
    double sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach(terms, k, v) sum += json_real_value(v);
    assert_close(json_real_value(json_object_get(e, "total_j")), sum, 1e-12, 0);
    /* 12 + 38 + 7 neurons fit one Loihi core: every event goes to one core, no hops.
     * Events: the input's nonzero frame values (to lif1), lif1's spikes (to lif1 and
     * to lif2: two edges), lif2's (to no group). */
    json_t *use = json_object_get(bias, "chip_usage");
    assert_int_equal(json_integer_value(json_object_get(use, "cores")), 1);
    nesim_tensor ft;
    assert_ok(nesim_npy_load(fr, &ft, &err), &err);
    double in_events = 0;
    for (size_t i = 0; i < ft.count; i++)
        in_events += nesim_tensor_get(&ft, i) != 0;
    nesim_tensor_release(&ft);
    double lif1 = (double)json_integer_value(json_object_get(node_rep(bias, "lif1.lif"), "spikes"));
    assert_close(TERM("delivery"), (in_events + 2 * lif1) * E->spike_within_core, 1e-12, 0);
    assert_true(TERM("routing") == 0);
#undef TERM
#undef COUNT
    /* dense baseline: (12x38 + 38x38 + 38x7) MACs a step, 200 steps */
    assert_int_equal(json_integer_value(json_object_get(bias, "dense_macs")), (12 * 38 + 38 * 38 + 38 * 7) * 200);
    assert_close(json_real_value(json_object_get(e, "dense_fp16_j")), (12 * 38 + 38 * 38 + 38 * 7) * 200 * mac16, 1e-12, 0);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    json_decref(bias);
    json_decref(nob);
    json_decref(nob_value);
}

/* Visiting only what activity reaches gives exactly the dense stepping's spikes, for less work. */
static void test_sparse_equals_dense(void **st)
{
    int64_t sh[3] = {2, 34, 34};
    const char *fr = frames_file("cnn2.npy", 2, 12, 3, sh, 0.01, 9);
    json_t *sp = run_job(nir_file("cnn_sinabs.nir"), fr, 1, 0, 0, 0, NULL);
    json_t *de = run_job(nir_file("cnn_sinabs.nir"), fr, 1, 0, 0, 1, NULL);
    assert_true(json_equal(spikes_of(sp), spikes_of(de)));
    assert_true(json_integer_value(json_object_get(sp, "spikes")) > 0);
    long long us = json_integer_value(json_object_get(sp, "updates")),
              ud = json_integer_value(json_object_get(de, "updates"));
    print_message("cnn_sinabs at 1 %% input: %lld neuron updates activity-driven, %lld dense\n", us, ud);
    assert_true(us < ud / 2);
    json_decref(sp);
    json_decref(de);
    int64_t sb[1] = {12};
    fr = frames_file("braille4.npy", 2, 150, 1, sb, 0.1, 2);
    for (int exact = 0; exact < 2; exact++) {
        sp = run_job(nir_file("braille_noDelay_noBias_subtract.nir"), fr, 1e-4, exact, 1, 0, NULL);
        de = run_job(nir_file("braille_noDelay_noBias_subtract.nir"), fr, 1e-4, exact, 1, 1, NULL);
        assert_true(json_equal(spikes_of(sp), spikes_of(de)));
        assert_true(json_integer_value(json_object_get(sp, "updates")) <
                    json_integer_value(json_object_get(de, "updates")));
        json_decref(sp);
        json_decref(de);
    }
}

/* nesim spec X.nir, edited nowhere, runs to the same spikes (library and CLI). */
static void test_spec_round_trip(void **st)
{
    static const char *files[] = {"two_lif_neurons.nir", "cnn_sinabs.nir", "braille_noDelay_bias_zero.nir",
                                  "braille_noDelay_noBias_subtract.nir", "braille_noDelay_bias_zero_subgraph.nir"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        nesim_error err = {0};
        json_t *spec = NULL;
        assert_ok(nesim_nir_spec_build(nir_file(files[k]), 0 + 0, &spec, &err), &err);
        const char *path = test_tmp("spec.json");
        assert_int_equal(json_dump_file(spec, path, JSON_REAL_PRECISION(17)), 0);
        json_decref(spec);
        nesim_nir_graph a, b;
        assert_ok(nesim_nir_job_load(nir_file(files[k]), 0, &a, &err), &err);
        assert_ok(nesim_nir_job_load(path, 0, &b, &err), &err);
        assert_int_equal(a.n_nodes, b.n_nodes);
        assert_int_equal(a.n_edges, b.n_edges);
        for (int i = 0; i < a.n_nodes; i++) {
            assert_string_equal(a.nodes[i].name, b.nodes[i].name);
            assert_int_equal(a.nodes[i].type, b.nodes[i].type);
            assert_int_equal(a.nodes[i].n_params, b.nodes[i].n_params);
            for (int p = 0; p < a.nodes[i].n_params; p++) {
                const nesim_nir_param *pa = &a.nodes[i].params[p];
                const nesim_nir_param *pb = nesim_nir_param_get(&b.nodes[i], pa->name);
                assert_non_null(pb);
                assert_int_equal(pa->count, pb->count);
                if (pa->count)
                    assert_memory_equal(pa->v, pb->v, pa->count * sizeof *pa->v); /* exact */
            }
        }
        assert_memory_equal(a.edges, b.edges, (size_t)a.n_edges * sizeof *a.edges);
        nesim_nir_free(&a);
        nesim_nir_free(&b);
    }
    /* the CLI: spec, then run the spec and the file: the same checksum */
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille5.npy", 2, 80, 1, sh, 0.2, 4);
    const char *bin = getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim";
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s spec %s --output %s && %s run %s --input %s --dt 1e-4 --json --quiet > %s && "
             "%s run %s --input %s --dt 1e-4 --json --quiet > %s",
             bin, nir_file("braille_noDelay_bias_zero.nir"), test_tmp("b.json"), bin,
             nir_file("braille_noDelay_bias_zero.nir"), fr, test_tmp("r1.json"), bin, test_tmp("b.json"), fr,
             test_tmp("r2.json"));
    assert_int_equal(system(cmd), 0);
    json_error_t je;
    json_t *r1 = json_load_file(test_tmp("r1.json"), 0, &je), *r2 = json_load_file(test_tmp("r2.json"), 0, &je);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_true(json_integer_value(json_object_get(r1, "spikes")) > 0);
    assert_true(json_equal(spikes_of(r1), spikes_of(r2)));
    json_decref(r1);
    json_decref(r2);
}

/* tests/malformed/nir_expected.txt: "file<TAB>fragment"; each file is refused
 * by the reader or the builder with EINVAL and a message with the fragment. */
static void test_malformed_files(void **st)
{
    FILE *f = fopen("tests/malformed/nir_expected.txt", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        char *frag = tab + 1;
        frag[strcspn(frag, "\n")] = 0;
        char path[600];
        snprintf(path, sizeof path, "tests/malformed/nir/%s", line);
        nesim_nir_graph g;
        nesim_error err = {0};
        /* in process: nesim's own reader under the sanitizers */
        int rc = nesim_nir_load_inprocess(path, 1, &g, &err);
        if (rc == NESIM_OK) {
            nesim_nir_opts o = {.dt = 1e-4};
            nesim_nir_net *net = NULL;
            rc = nesim_nir_net_new(&g, &o, path, &net, &err);
            nesim_nir_net_free(net);
            nesim_nir_free(&g);
        }
        if (rc != NESIM_EINVAL)
            fail_msg("%s: expected NESIM_EINVAL, got %d (%s)", path, rc, err.msg);
        if (!strstr(err.msg, frag) || !strstr(err.msg, path) || strchr(err.msg, '\n'))
            fail_msg("%s: message '%s' lacks '%s' or the file name, or is not one line", path, err.msg, frag);
        n++;
    }
    fclose(f);
    assert_true(n >= 18);
}

/* libhdf5 crashes or hangs on some damaged files (found by fuzzing, kept in
 * fuzz/corpus/nir): the isolated reader turns each into one line, exit 2. */
static void test_damaged_hdf5_isolated(void **st)
{
    static const struct {
        const char *file, *frag;
    } cases[] = {{"fuzz/corpus/nir/hdf5-segv-global-heap.nir", "crashed reading this file"},
                 {"fuzz/corpus/nir/hdf5-hang-global-heap.nir", "no answer in 2 s"},
                 {"fuzz/corpus/nir/hdf5-memcpy-overlap.nir", "this file"}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        nesim_nir_graph g;
        nesim_error err = {0};
        int rc = nesim_nir_load_isolated(cases[k].file, 1, 2, &g, &err);
        if (rc != NESIM_EINVAL || !strstr(err.msg, cases[k].frag) || !strstr(err.msg, cases[k].file))
            fail_msg("%s: rc %d, '%s'", cases[k].file, rc, err.msg);
    }
    /* and a good file comes back whole through the pipe */
    nesim_nir_graph a, b;
    nesim_error err = {0};
    assert_ok(nesim_nir_load_isolated(nir_file("braille_noDelay_bias_zero_subgraph.nir"), 1, 30, &a, &err), &err);
    assert_ok(nesim_nir_load_inprocess(nir_file("braille_noDelay_bias_zero_subgraph.nir"), 1, &b, &err), &err);
    assert_int_equal(a.n_nodes, b.n_nodes);
    assert_string_equal(a.notes, b.notes);
    for (int i = 0; i < a.n_nodes; i++)
        for (int p = 0; p < a.nodes[i].n_params; p++)
            if (a.nodes[i].params[p].count)
                assert_memory_equal(a.nodes[i].params[p].v, b.nodes[i].params[p].v,
                                    a.nodes[i].params[p].count * sizeof(double));
    nesim_nir_free(&a);
    nesim_nir_free(&b);
}

/* --trace records the run; nesim trace reads it; the SONATA and NIR-events
 * exports read back with h5py to exactly the spikes the run wrote. */
static void test_trace_and_exports(void **st)
{
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille6.npy", 3, 90, 1, sh, 0.25, 8);
    const char *db = test_tmp("nir.db"), *csv = test_tmp("nir_spikes.csv");
    remove(db);
    nesim_nir_job_opts o;
    nesim_nir_job_opts_init(&o);
    o.model = nir_file("braille_noDelay_bias_zero.nir");
    o.input = fr;
    o.run.dt = 1e-4;
    o.trace = db;
    o.spikes_out = csv;
    json_t *rep = NULL;
    nesim_error err = {0};
    assert_ok(nesim_nir_job(&o, &rep, &err), &err);
    json_t *tr = json_object_get(rep, "trace");
    assert_non_null(tr);
    int64_t run = json_integer_value(json_object_get(tr, "run"));
    nesim_trace *t = NULL;
    assert_ok(nesim_trace_open(db, NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_run R;
    assert_ok(nesim_trace_get_run(t, run, &R, &err), &err);
    assert_int_equal(R.status, NESIM_TRACE_COMPLETE);
    assert_int_equal(R.samples, 3);
    assert_int_equal(R.virtual_ticks, 3 * 90);
    assert_string_equal(R.spike_checksum, json_string_value(json_object_get(rep, "spike_checksum")));
    assert_true(R.tick_s == 1e-4);
    nesim_trace_run_clear(&R);
    nesim_trace_layer *L = NULL;
    size_t nl = 0;
    assert_ok(nesim_trace_layers(t, run, &L, &nl, &err), &err);
    assert_int_equal(nl, 2); /* the spiking nodes, in run order */
    assert_string_equal(L[0].name, "lif1.lif");
    assert_string_equal(L[1].name, "lif2");
    /* each layer: its spikes, and the SOPs of the Affine nodes feeding it */
    long long sops_lif1 = json_integer_value(json_object_get(node_rep(rep, "fc1"), "sops")) +
                          json_integer_value(json_object_get(node_rep(rep, "lif1.w_rec"), "sops"));
    assert_int_equal(L[0].spikes, json_integer_value(json_object_get(node_rep(rep, "lif1.lif"), "spikes")));
    assert_int_equal(L[0].sops, sops_lif1);
    assert_int_equal(L[1].sops, json_integer_value(json_object_get(node_rep(rep, "fc2"), "sops")));
    nesim_trace_layers_free(L, nl);
    const char *son = test_tmp("nir_sonata.h5"), *ev = test_tmp("nir_events.h5");
    assert_ok(nesim_trace_export(t, run, NESIM_TRACE_SONATA, son, &err), &err);
    assert_ok(nesim_trace_export(t, run, NESIM_TRACE_NIR_EVENTS, ev, &err), &err);
    nesim_trace_close(t);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/check_exports.py %s %s %s 90 1e-4", csv, son, ev);
    assert_int_equal(system(cmd), 0);
    json_decref(rep);
}

/* nesim replay from a recorded layer: the nodes after it run again on its
 * recorded spikes; nothing changed gives the recorded spikes exactly (here
 * through the recurrent layer itself), another chip changes only the price. */
static void test_replay(void **st)
{
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille7.npy", 2, 120, 1, sh, 0.25, 12);
    const char *db = test_tmp("nir_replay.db");
    remove(db);
    nesim_nir_job_opts o;
    nesim_nir_job_opts_init(&o);
    o.model = nir_file("braille_noDelay_noBias_subtract.nir");
    o.input = fr;
    o.run.dt = 1e-4;
    o.run.reset_subtract = 1;
    o.run.disc = NESIM_NIR_EXACT; /* the replay must take these from the trace */
    o.trace = db;
    json_t *rep = NULL;
    nesim_error err = {0};
    assert_ok(nesim_nir_job(&o, &rep, &err), &err);
    for (int c = 0; c < 2; c++) {
        nesim_replay_opts ro = {.db = db, .run = 1, .from_layer = "lif1.lif", .coding = -1, .k = 0,
                                .record = NESIM_TRACE_SPIKES, .chip = c ? "truenorth" : NULL};
        json_t *rr = NULL;
        assert_ok(nesim_replay(&ro, &rr, &err), &err);
        /* the same spikes node by node (upstream fc1 does not run again) */
        assert_true(json_equal(json_object_get(node_rep(rr, "lif2"), "spikes"),
                               json_object_get(node_rep(rep, "lif2"), "spikes")));
        assert_true(json_equal(json_object_get(node_rep(rr, "lif1.lif"), "spikes"),
                               json_object_get(node_rep(rep, "lif1.lif"), "spikes")));
        assert_int_equal(json_integer_value(json_object_get(node_rep(rr, "fc1"), "sops")), 0);
        assert_true(json_integer_value(json_object_get(node_rep(rr, "lif2"), "spikes")) > 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(rr, "energy"), "chip")),
                            c ? "truenorth" : "loihi");
        json_decref(rr);
    }
    /* the trains themselves: the replay's lif2 spikes are the parent's, tick for tick */
    nesim_trace *t = NULL;
    assert_ok(nesim_trace_open(db, NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_spike_iter *a, *b;
    assert_ok(nesim_trace_spikes_open(t, 1, 1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &a, &err), &err);
    assert_ok(nesim_trace_spikes_open(t, 2, 1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &b, &err), &err);
    nesim_trace_spike_rec x, y;
    bool ga, gb;
    size_t n = 0;
    for (;;) {
        assert_ok(nesim_trace_spikes_next(a, &x, &ga, &err), &err);
        assert_ok(nesim_trace_spikes_next(b, &y, &gb, &err), &err);
        assert_int_equal(ga, gb);
        if (!ga)
            break;
        assert_int_equal(x.tick, y.tick);
        assert_int_equal(x.neuron, y.neuron);
        n++;
    }
    assert_true(n > 0);
    nesim_trace_spikes_close(a);
    nesim_trace_spikes_close(b);
    nesim_trace_run R;
    assert_ok(nesim_trace_get_run(t, 2, &R, &err), &err);
    assert_int_equal(R.parent_run, 1);
    nesim_trace_run_clear(&R);
    nesim_trace_close(t);
    json_decref(rep);
    /* a node after the replayed one with input from elsewhere cannot be rebuilt */
    nesim_nir_graph g;
    graph_from("{'nesim_nir': 1, 'nodes': {"
               " 'in': {'type': 'Input', 'shape': {'shape': [1], 'data': [1]}},"
               " 'w1': {'type': 'Linear', 'weight': {'shape': [1, 1], 'data': [1]}},"
               " 'a': {'type': 'IF', 'r': 1, 'v_threshold': 1},"
               " 'w2': {'type': 'Linear', 'weight': {'shape': [1, 1], 'data': [1]}},"
               " 'skip': {'type': 'Linear', 'weight': {'shape': [1, 1], 'data': [1]}},"
               " 'b': {'type': 'IF', 'r': 1, 'v_threshold': 1},"
               " 'out': {'type': 'Output', 'shape': {'shape': [1], 'data': [1]}}},"
               " 'edges': [['in', 'w1'], ['w1', 'a'], ['a', 'w2'], ['w2', 'b'], ['in', 'skip'], ['skip', 'b'], ['b', 'out']]}",
               &g);
    nesim_nir_net *net = net_of(&g, 1, NESIM_NIR_EULER, 0, 0);
    assert_int_equal(nesim_nir_set_replay(net, nesim_nir_node_find(&g, "a"), NULL, 0, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "'b'"));
    assert_non_null(strstr(err.msg, "'skip'"));
    assert_ok(nesim_nir_set_replay(net, nesim_nir_node_find(&g, "b"), NULL, 0, &err), &err);
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
}

/* Conv1d (no graph of the paper has one): a graph written here with h5py,
 * against the numpy stepper. */
static void test_conv1d_against_numpy(void **st)
{
    const char *model = test_tmp("conv1d.nir");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - %s <<'PY'\n"
             "import sys, h5py, numpy as np\n"
             "r = np.random.default_rng(3)\n"
             "with h5py.File(sys.argv[1], 'w') as f:\n"
             "    f['version'] = '0.2.0'\n"
             "    n = f.create_group('node'); n['type'] = 'NIRGraph'; g = n.create_group('nodes')\n"
             "    def node(name, **kw):\n"
             "        q = g.create_group(name)\n"
             "        for k, v in kw.items(): q[k] = v\n"
             "    node('input', type='Input', shape=np.array([2, 21]))\n"
             "    node('conv', type='Conv1d', weight=r.normal(0, 1, (3, 2, 4)).astype(np.float32), stride=np.array([2]),\n"
             "         padding=np.array([2]), dilation=np.array([2]), groups=np.int64(1), input_shape=np.array([21]),\n"
             "         bias=np.array([0.1, 0.0, -0.1], dtype=np.float32))\n"
             "    node('lif', type='LIF', tau=np.full((3, 10), 2e-3), r=np.full((3, 10), 20.0), v_leak=np.zeros((3, 10)),\n"
             "         v_threshold=np.ones((3, 10)))\n"
             "    node('output', type='Output', shape=np.array([3, 10]))\n"
             "    e = [('input', 'conv'), ('conv', 'lif'), ('lif', 'output')]\n"
             "    n.create_dataset('edges', data=np.array(e, dtype=object), dtype=h5py.string_dtype())\n"
             "PY",
             model);
    assert_int_equal(system(cmd), 0);
    int64_t sh[2] = {2, 21};
    const char *fr = frames_file("conv1d.npy", 2, 40, 2, sh, 0.3, 21);
    /* its length: (21 + 2*2 - 2*(4 - 1) - 1) / 2 + 1 = 10 */
    nesim_nir_graph g;
    nesim_error err = {0};
    assert_ok(nesim_nir_load(model, 0, &g, &err), &err);
    nesim_nir_net *net = net_of(&g, 1e-4, NESIM_NIR_EULER, 0, 0);
    int64_t osh[4];
    int nd = nesim_nir_node_shape(net, nesim_nir_node_find(&g, "conv"), osh, 4);
    assert_int_equal(nd, 2);
    assert_int_equal(osh[0], 3);
    assert_int_equal(osh[1], 10);
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
    against_numpy(model, fr, 1e-4, 0, 0);
    against_numpy(model, fr, 1e-4, 1, 1);
}

/* --timing on a NIR graph: every step of every sample timed, per inference;
 * static energy over chip time; the steps stored in the trace and written
 * to .npy are the same numbers; a chip without latencies is refused. */
static void test_timing(void **st)
{
    int64_t sh[1] = {12};
    const char *fr = frames_file("braille_t.npy", 2, 40, 1, sh, 0.25, 9);
    const char *db = test_tmp("nir_t.db"), *npy = test_tmp("nir_t.npy");
    remove(db);
    nesim_nir_job_opts o;
    nesim_nir_job_opts_init(&o);
    o.model = nir_file("braille_noDelay_bias_zero.nir");
    o.input = fr;
    o.run.dt = 1e-4;
    o.timing = NESIM_TIMING_DETAILED;
    o.timing_steps = npy;
    o.trace = db;
    json_t *rep = NULL;
    nesim_error err = {0};
    assert_ok(nesim_nir_job(&o, &rep, &err), &err);
    json_t *ct = json_object_get(rep, "chip_time");
    assert_non_null(ct);
    assert_int_equal(json_integer_value(json_object_get(ct, "steps")), 80);
    double total = json_real_value(json_object_get(ct, "total_s"));
    assert_close(json_real_value(json_object_get(ct, "per_inference_s")) * 2, total, 1e-12, 0);
    assert_close(json_real_value(json_object_get(json_object_get(rep, "energy"), "chip_time_s")), total, 1e-12, 0);
    assert_true(total > 80 * 0.6e-6); /* at least the sync of every step */
    nesim_tensor t;
    assert_ok(nesim_npy_load(npy, &t, &err), &err);
    assert_int_equal(t.count, 80);
    nesim_trace *tr = NULL;
    assert_ok(nesim_trace_open(db, NESIM_TRACE_READ, &tr, &err), &err);
    double *steps;
    int64_t n;
    assert_ok(nesim_trace_chip_steps_get(tr, json_integer_value(json_object_get(json_object_get(rep, "trace"), "run")),
                                         &steps, &n, &err), &err);
    assert_int_equal(n, 80);
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        assert_true(steps[k] == nesim_tensor_get(&t, (size_t)k));
        sum += steps[k];
    }
    assert_close(sum, total, 1e-12, 0);
    free(steps);
    nesim_trace_close(tr);
    nesim_tensor_release(&t);
    json_decref(rep);
    o.chip = "truenorth";
    o.trace = NULL;
    o.timing_steps = NULL;
    assert_int_equal(nesim_nir_job(&o, &rep, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "chip truenorth has no latency section"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_if_strict_threshold_and_resets),
        cmocka_unit_test(test_lif_constant_input),
        cmocka_unit_test(test_cuba_exact_against_gsl_and_euler_by_hand),
        cmocka_unit_test(test_cubalif_fires_after_its_input),
        cmocka_unit_test(test_li_i_threshold_scale_delay),
        cmocka_unit_test(test_euler_unstable_refused),
        cmocka_unit_test(test_cnn_sinabs_shapes),
        cmocka_unit_test(test_cnn_sinabs_against_numpy),
        cmocka_unit_test(test_braille_against_numpy),
        cmocka_unit_test(test_braille_subgraph_equals_flat),
        cmocka_unit_test(test_braille_variants),
        cmocka_unit_test(test_sparse_equals_dense),
        cmocka_unit_test(test_spec_round_trip),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_damaged_hdf5_isolated),
        cmocka_unit_test(test_trace_and_exports),
        cmocka_unit_test(test_timing),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_conv1d_against_numpy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
