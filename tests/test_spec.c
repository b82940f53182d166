/* test_spec.c — the JSON model spec: parsing into the struct, strict
 * validation with one-line located messages, and building networks.
 *
 * - The example specs examples/{b4,cuba}/model.json must describe exactly the
 *   networks net/classic.c builds: same seed, byte-identical spikes.
 * - Every file in tests/malformed/spec must fail with NESIM_EINVAL and a
 *   one-line message starting with its path; the ones listed in
 *   tests/malformed/spec_expected.txt must also match the listed message
 *   start (fuzzer finds may be added without a listing). Tests run from the
 *   repository root. */
#include "tests/support/check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/classic.h"
#include "net/estimate.h"
#include "net/spec.h"
#include "net/tensor.h"
#include "sim/network.h"

#define MALFORMED_DIR "tests/malformed/spec"
#define EXPECTED_FILE "tests/malformed/spec_expected.txt"

static nesim_spec *parse_ok(const char *text, const char *base_dir)
{
    nesim_spec *s = NULL;
    nesim_error err = {0};
    assert_ok(nesim_spec_parse(text, strlen(text), "t.json", base_dir, &s, &err), &err);
    assert_non_null(s);
    return s;
}

/* The full message for text parsed as "model.json". */
static const char *parse_msg(const char *text)
{
    static nesim_error err;
    nesim_spec *s = (nesim_spec *)1;
    memset(&err, 0, sizeof err);
    int rc = nesim_spec_parse(text, strlen(text), "model.json", NULL, &s, &err);
    assert_int_equal(rc, NESIM_EINVAL);
    assert_int_equal(err.code, NESIM_EINVAL);
    assert_null(s);
    return err.msg;
}

/* ---- examples vs net/classic.c ----------------------------------------- */

/* The value a spec population gives parameter `name` (NAN if it gives none). */
static double given(const nesim_spec_pop *P, const char *name)
{
    for (size_t k = 0; k < P->n_params; k++)
        if (strcmp(P->params[k].name, name) == 0)
            return P->params[k].value;
    return NAN;
}

/* nesim_spec_build_graph, then a network that runs it. */
static int build_net(const nesim_spec *s, uint64_t seed, nesim_net **out, nesim_error *err)
{
    nesim_graph *g;
    *out = NULL;
    int rc = nesim_spec_build_graph(s, seed, &g, err);
    if (rc)
        return rc;
    *out = nesim_net_from_graph(g, err);
    return *out ? NESIM_OK : err->code;
}

static nesim_spike *run_and_copy(nesim_net *net, int64_t ticks, size_t *n)
{
    nesim_error err = {0};
    for (int p = 0; p < nesim_population_count(net); p++)
        assert_ok(nesim_record(net, p, 1, &err), &err);
    assert_ok(nesim_run(net, ticks, &err), &err);
    const nesim_spike *s = nesim_spikes(net, n);
    nesim_spike *copy = malloc(*n * sizeof *copy + 1);
    assert_non_null(copy);
    if (*n)
        memcpy(copy, s, *n * sizeof *copy);
    return copy;
}

static void check_example(const char *name, const char *path)
{
    const uint64_t seed = 7;
    const int64_t ticks = 2000;
    nesim_error err = {0};
    nesim_spec *s;
    assert_ok(nesim_spec_load(path, &s, &err), &err);
    assert_string_equal(s->name, name);
    assert_int_equal(s->n_pops, 2);
    assert_int_equal(s->n_projs, 4);
    assert_int_equal(s->n_layers, 0);
    assert_true(s->has_seed);

    nesim_net *a, *b;
    nesim_graph *gb;
    assert_ok(build_net(s, seed, &a, &err), &err);
    nesim_classic_opts o = {.name = name, .neurons = 4000, .tick_s = 1e-4, .seed = seed};
    assert_ok(nesim_classic_build(&o, &gb, NULL, NULL, &err), &err);
    assert_non_null(b = nesim_net_from_graph(gb, &err));

    assert_int_equal(nesim_population_count(a), nesim_population_count(b));
    for (int p = 0; p < 2; p++) {
        assert_string_equal(nesim_population_name(a, p), nesim_population_name(b, p));
        assert_int_equal(nesim_population_size(a, p), nesim_population_size(b, p));
        /* The parameters the model reads, bit for bit. */
        const nesim_dyn *da = nesim_population_dyn(a, p), *db = nesim_population_dyn(b, p);
        assert_ptr_equal(da->model, db->model);
        assert_ptr_equal(da->rule, db->rule);
        assert_int_equal(nesim_dyn_param_count(da), nesim_dyn_param_count(db));
        assert_memory_equal(da->par, db->par, sizeof da->par);
        assert_true(da->v_thresh == db->v_thresh && da->v_reset == db->v_reset);
        assert_int_equal(da->reset_subtract, db->reset_subtract);
        assert_int_equal(da->ref_ticks, db->ref_ticks);
        assert_int_equal(da->n_tau, db->n_tau);
        assert_memory_equal(da->rate, db->rate, sizeof da->rate);
        assert_memory_equal(da->c, db->c, sizeof da->c);
    }
    assert_int_equal(nesim_projection_count(a), nesim_projection_count(b));
    for (int j = 0; j < nesim_projection_count(a); j++) {
        const nesim_proj_spec *pa = nesim_projection_spec(a, j), *pb = nesim_projection_spec(b, j);
        assert_int_equal(pa->pre, pb->pre);
        assert_int_equal(pa->post, pb->post);
        assert_int_equal(pa->kind, pb->kind);
        assert_true(pa->p == pb->p && pa->weight == pb->weight);
        assert_int_equal(pa->delay, pb->delay);
        assert_int_equal(pa->no_autapses, pb->no_autapses);
        assert_int_equal(nesim_projection_synapses(a, j), nesim_projection_synapses(b, j));
    }

    size_t na, nb;
    nesim_spike *sa = run_and_copy(a, ticks, &na), *sb = run_and_copy(b, ticks, &nb);
    assert_true(na > 100); /* the comparison means something */
    assert_int_equal(na, nb);
    assert_memory_equal(sa, sb, na * sizeof *sa);
    free(sa);
    free(sb);
    nesim_net_free(a);
    nesim_net_free(b);
    nesim_spec_free(s);
}

static void test_example_b4_matches_classic(void **st)
{
    (void)st;
    check_example("b4", "examples/b4/model.json");
}

static void test_example_cuba_matches_classic(void **st)
{
    (void)st;
    check_example("cuba", "examples/cuba/model.json");
}

/* ---- the parsed struct -------------------------------------------------- */

static const char *LAYERED =
    "{\n"
    " \"nesim\": 1, \"name\": \"mix\", \"tick\": 0.001, \"seed\": 5,\n"
    " \"input\": {\"shape\": [1, 8, 8]},\n"
    " \"layers\": [\n"
    "  {\"name\": \"c1\", \"type\": \"conv2d\", \"weight\": {\"file\": \"c1.npy\"},\n"
    "   \"bias\": {\"file\": \"/abs/c1b.npy\"}, \"stride\": [1, 2], \"padding\": 1,\n"
    "   \"activation\": \"relu\", \"coding\": \"ternary\", \"threshold\": 0.25},\n"
    "  {\"type\": \"sumpool2d\", \"kernel\": 2},\n"
    "  {\"type\": \"avgpool2d\", \"kernel\": [3, 2], \"stride\": 1},\n"
    "  {\"type\": \"flatten\"},\n"
    "  {\"name\": \"q\", \"type\": \"linear\",\n"
    "   \"weight\": {\"file\": \"m.safetensors\", \"tensor\": \"layers.0.q_proj.weight\",\n"
    "              \"scales\": \"layers.0.q_proj.scales\", \"group\": 128},\n"
    "   \"k\": 2.5, \"coding\": \"bitwise-twos-complement\"},\n"
    "  {\"name\": \"npyq\", \"type\": \"linear\", \"from\": \"input\",\n"
    "   \"weight\": {\"file\": \"w.npy\", \"scales\": \"w.scales.npy\"}, \"coding\": \"bitwise\"},\n"
    "  {\"name\": \"syn\", \"type\": \"linear\", \"threshold\": \"adaptive\", \"from\": \"q\",\n"
    "   \"weight\": {\"synthetic\": {\"dist\": \"normal\", \"std\": 0.02, \"seed\": 7,\n"
    "              \"shape\": [10, 256], \"quantize\": \"int8\", \"group\": 128}},\n"
    "   \"bias\": {\"synthetic\": {\"dist\": \"uniform\", \"low\": -1, \"high\": 1, \"shape\": [10]}}},\n"
    "  {\"name\": \"k0\", \"type\": \"linear\", \"coding\": \"binary\",\n"
    "   \"weight\": {\"synthetic\": {\"dist\": \"const\", \"value\": 0.5, \"shape\": [2, 10]}}}\n"
    " ]\n"
    "}\n";

static void test_layers_parse(void **st)
{
    (void)st;
    nesim_spec *s = parse_ok(LAYERED, "models/");
    assert_string_equal(s->name, "mix");
    assert_true(s->tick == 0.001);
    assert_true(s->has_seed);
    assert_int_equal(s->seed, 5);
    assert_int_equal(s->input_ndim, 3);
    assert_int_equal(s->input_shape[0], 1);
    assert_int_equal(s->input_shape[2], 8);
    assert_int_equal(s->n_pops, 0);
    assert_int_equal(s->n_layers, 8);

    const nesim_spec_layer *L = s->layers;
    assert_string_equal(L[0].name, "c1");
    assert_int_equal(L[0].type, NESIM_LAYER_CONV2D);
    assert_int_equal(L[0].from, -2);  /* default: the previous layer (here the input) */
    assert_int_equal(L[4].from, -2);
    assert_int_equal(L[5].from, -1);  /* "input" */
    assert_int_equal(L[6].from, 4);   /* "q" */
    assert_int_equal(L[0].weight.kind, NESIM_TSRC_FILE);
    assert_string_equal(L[0].weight.file, "models/c1.npy"); /* no doubled slash */
    assert_null(L[0].weight.tensor);
    assert_null(L[0].weight.scales);
    assert_string_equal(L[0].bias.file, "/abs/c1b.npy");   /* absolute kept */
    assert_int_equal(L[0].stride[0], 1);
    assert_int_equal(L[0].stride[1], 2);
    assert_int_equal(L[0].padding[0], 1);
    assert_int_equal(L[0].padding[1], 1);
    assert_int_equal(L[0].activation, NESIM_ACT_RELU);
    assert_int_equal(L[0].coding, NESIM_CODE_TERNARY);
    assert_false(L[0].adaptive);
    assert_true(L[0].threshold == 0.25);

    assert_string_equal(L[1].name, "sumpool2d1"); /* default: type + index */
    assert_int_equal(L[1].type, NESIM_LAYER_SUMPOOL2D);
    assert_int_equal(L[1].kernel[0], 2);
    assert_int_equal(L[1].kernel[1], 2);
    assert_int_equal(L[1].stride[0], 2); /* default stride = kernel */
    assert_int_equal(L[1].stride[1], 2);

    assert_int_equal(L[2].type, NESIM_LAYER_AVGPOOL2D);
    assert_int_equal(L[2].kernel[0], 3);
    assert_int_equal(L[2].kernel[1], 2);
    assert_int_equal(L[2].stride[0], 1);
    assert_int_equal(L[2].stride[1], 1);

    assert_int_equal(L[3].type, NESIM_LAYER_FLATTEN);
    assert_string_equal(L[3].name, "flatten3");

    assert_int_equal(L[4].type, NESIM_LAYER_LINEAR);
    assert_string_equal(L[4].weight.file, "models/m.safetensors");
    assert_string_equal(L[4].weight.tensor, "layers.0.q_proj.weight");
    assert_string_equal(L[4].weight.scales, "layers.0.q_proj.scales"); /* a tensor name, unresolved */
    assert_int_equal(L[4].weight.group, 128);
    assert_int_equal(L[4].bias.kind, NESIM_TSRC_NONE);
    assert_int_equal(L[4].activation, NESIM_ACT_NONE);
    assert_true(L[4].adaptive);
    assert_true(L[4].k == 2.5);
    assert_int_equal(L[4].coding, NESIM_CODE_BITWISE_TWOS);

    assert_string_equal(L[5].weight.scales, "models/w.scales.npy"); /* a file beside the .npy */
    assert_int_equal(L[5].weight.group, 0);
    assert_int_equal(L[5].coding, NESIM_CODE_BITWISE);

    const nesim_spec_tensor *w = &L[6].weight, *b = &L[6].bias;
    assert_int_equal(w->kind, NESIM_TSRC_SYNTHETIC);
    assert_int_equal(w->dist, NESIM_SYNTH_NORMAL);
    assert_true(w->a == 0 && w->b == 0.02);
    assert_int_equal(w->seed, 7);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 10);
    assert_int_equal(w->shape[1], 256);
    assert_int_equal(w->quantize, NESIM_QUANT_INT8);
    assert_int_equal(w->group, 128);
    assert_null(w->file);
    assert_int_equal(b->dist, NESIM_SYNTH_UNIFORM);
    assert_true(b->a == -1 && b->b == 1);
    assert_int_equal(b->quantize, NESIM_QUANT_NONE);
    assert_true(L[6].adaptive);
    assert_true(L[6].k == 3); /* default k */
    assert_int_equal(L[6].coding, NESIM_CODE_BITWISE_BIDIR); /* default coding */

    assert_int_equal(L[7].weight.dist, NESIM_SYNTH_CONST);
    assert_true(L[7].weight.a == 0.5);
    assert_int_equal(L[7].coding, NESIM_CODE_BINARY);

    assert_string_equal(nesim_layer_type_name(L[2].type), "avgpool2d");
    assert_string_equal(nesim_activation_name(NESIM_ACT_RELU), "relu");
    assert_string_equal(nesim_layer_type_name((nesim_layer_type)9), "?");

    /* Without a base directory names stay as written. */
    nesim_spec *s2 = parse_ok(LAYERED, NULL);
    assert_string_equal(s2->layers[0].weight.file, "c1.npy");
    assert_string_equal(s2->layers[5].weight.scales, "w.scales.npy");
    nesim_spec_free(s2);

    /* A spec with only layers has nothing to build. */
    nesim_error err = {0};
    nesim_graph *net = (nesim_graph *)1;
    assert_int_equal(nesim_spec_build_graph(s, 1, &net, &err), NESIM_EINVAL);
    assert_null(net);
    assert_string_equal(err.msg, "t.json: populations: the spec has none to build");
    nesim_spec_free(s);
}

static const char *POPULATED =
    "{\"nesim\": 1, \"tick\": 1e-4,\n"
    " \"populations\": [\n"
    "  {\"name\": \"src\", \"model\": \"poisson\", \"n\": 20, \"params\": {\"rate_hz\": 200}},\n"
    "  {\"name\": \"a\", \"model\": \"lif\", \"n\": 20,\n"
    "   \"params\": {\"tau_m\": 0.01, \"v_rest\": -0.07, \"v_thresh\": -0.05, \"v_reset\": -0.07,\n"
    "              \"t_ref\": 0.002, \"reset_subtract\": true},\n"
    "   \"v_init\": {\"normal\": [-0.065, 0.002]}},\n"
    "  {\"name\": \"b\", \"model\": \"alif\", \"n\": 20,\n"
    "   \"params\": {\"tau_m\": 0.02, \"v_rest\": -0.06, \"v_thresh\": -0.05, \"v_reset\": -0.06,\n"
    "              \"tau_a\": 0.1, \"b\": 0.001}}\n"
    " ],\n"
    " \"projections\": [\n"
    "  {\"pre\": \"src\", \"post\": \"a\", \"rule\": \"one_to_one\", \"weight\": 0.03},\n"
    "  {\"pre\": \"a\", \"post\": \"a\", \"rule\": \"all_to_all\", \"weight\": -0.0001,\n"
    "   \"autapses\": false, \"delay_s\": 3e-4},\n"
    "  {\"pre\": \"a\", \"post\": \"b\", \"rule\": \"fixed_prob\", \"p\": 0.5, \"weight\": 0.02,\n"
    "   \"delay\": 4}\n"
    " ]\n"
    "}\n";

static void test_populations_parse_and_build(void **st)
{
    (void)st;
    nesim_spec *s = parse_ok(POPULATED, NULL);
    assert_string_equal(s->name, "model"); /* default */
    assert_false(s->has_seed);
    assert_int_equal(s->n_pops, 3);
    assert_int_equal(s->n_projs, 3);
    const nesim_spec_pop *P = s->pops;
    assert_string_equal(P[0].model, "poisson");
    assert_true(given(&P[0], "rate_hz") == 200);
    assert_int_equal(P[1].n, 20);
    assert_true(given(&P[1], "reset_subtract") == 1);
    assert_true(given(&P[1], "t_ref") == 0.002);
    assert_int_equal(P[1].v_init.kind, NESIM_INIT_NORMAL);
    assert_true(P[1].v_init.a == -0.065 && P[1].v_init.b == 0.002);
    assert_int_equal(P[2].v_init.kind, NESIM_INIT_REST); /* default: each neuron at its v_rest */
    assert_true(given(&P[2], "tau_a") == 0.1 && given(&P[2], "b") == 0.001);
    assert_true(isnan(given(&P[2], "reset_subtract")));
    assert_null(P[2].threshold); /* alif implies the adaptive rule */

    const nesim_spec_proj *J = s->projs;
    assert_int_equal(J[0].pre, 0);
    assert_int_equal(J[0].post, 1);
    assert_int_equal(J[0].rule, NESIM_ONE_TO_ONE);
    assert_int_equal(J[0].delay, 1);       /* default */
    assert_true(J[0].autapses);            /* default */
    assert_int_equal(J[1].rule, NESIM_ALL_TO_ALL);
    assert_int_equal(J[1].delay, 3);       /* 3e-4 s / 1e-4 s, though 3e-4/1e-4 != 3 in doubles */
    assert_false(J[1].autapses);
    assert_int_equal(J[2].rule, NESIM_FIXED_PROB);
    assert_true(J[2].p == 0.5);
    assert_int_equal(J[2].delay, 4);
    assert_string_equal(nesim_conn_rule_name(J[2].rule), "fixed_prob");

    nesim_error err = {0};
    nesim_net *net;
    assert_ok(build_net(s, 3, &net, &err), &err);
    assert_string_equal(nesim_population_kernels(net, 0), "poisson/source");
    assert_string_equal(nesim_population_kernels(net, 1), "lif/point"); /* reset by subtraction */
    assert_string_equal(nesim_population_kernels(net, 2), "lif/point"); /* adaptive */
    assert_string_equal(nesim_population_dyn(net, 2)->rule->name, "adaptive");
    assert_int_equal(nesim_population_count(net), 3);
    assert_string_equal(nesim_population_name(net, 2), "b");
    assert_int_equal(nesim_projection_count(net), 3);
    assert_int_equal(nesim_projection_synapses(net, 0), 20);
    assert_int_equal(nesim_projection_synapses(net, 1), 20 * 19); /* no autapses */
    assert_int_equal(nesim_projection_spec(net, 1)->delay, 3);
    assert_true(nesim_projection_spec(net, 1)->no_autapses);
    assert_int_equal(nesim_projection_spec(net, 2)->delay, 4);
    size_t n;
    nesim_spike *sp = run_and_copy(net, 500, &n);
    assert_true(n > 0);
    free(sp);
    nesim_net_free(net);
    nesim_spec_free(s);
}

/* ---- errors ------------------------------------------------------------- */

/* placement and synapse storage given in a spec */
static void test_cores_and_storage(void **st)
{
    /* a population without "params" (found by fuzz_spec: the parameter check copied from a NULL
     * list, undefined behaviour UBSan stops on): its required threshold is missing, one line */
    {
        const char *np = "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"exc\", \"model\": \"lif\", \"n\": 3}]}";
        nesim_spec *sp = NULL;
        nesim_error e0 = {0};
        assert_int_equal(nesim_spec_parse(np, strlen(np), "model.json", NULL, &sp, &e0), NESIM_EINVAL);
        assert_non_null(strstr(e0.msg, "model.json: populations[0].params"));
        assert_null(strchr(e0.msg, '\n'));
    }
    const char *ok = "{\"nesim\": 1, \"tick\": 1e-3, \"populations\": [{\"name\": \"a\", \"model\": \"if\", \"n\": 3, "
                     "\"params\": {\"v_thresh\": 1}, \"cores\": [0, 2, 2]}], \"projections\": [{\"pre\": \"a\", "
                     "\"post\": \"a\", \"rule\": \"all_to_all\", \"weight\": 0.1, \"storage\": \"conv\"}]}";
    nesim_spec *s = parse_ok(ok, NULL);
    assert_true(s->pops[0].cores[1] == 2);
    assert_int_equal(s->projs[0].storage, NESIM_STORE_CONV);
    nesim_spec_free(s);
    nesim_error err = {0};
    const char *bad = "{\"nesim\": 1, \"tick\": 1e-3, \"populations\": [{\"name\": \"a\", \"model\": \"if\", \"n\": 2, "
                      "\"params\": {\"v_thresh\": 1}, \"cores\": [0, 1.5]}]}";
    assert_int_equal(nesim_spec_parse(bad, strlen(bad), "model.json", NULL, &s, &err), NESIM_EINVAL);
    assert_string_equal(err.msg, "model.json: populations[0].cores[1]: a core is a whole number >= 0 (got 1.5)");
    const char *bad2 = "{\"nesim\": 1, \"tick\": 1e-3, \"populations\": [{\"name\": \"a\", \"model\": \"if\", \"n\": 2, "
                       "\"params\": {\"v_thresh\": 1}}], \"projections\": [{\"pre\": \"a\", \"post\": \"a\", "
                       "\"rule\": \"all_to_all\", \"weight\": 0.1, \"storage\": \"csr\"}]}";
    assert_int_equal(nesim_spec_parse(bad2, strlen(bad2), "model.json", NULL, &s, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "model.json: projections[0].storage: unknown synapse storage 'csr'"));
}

static void test_exact_messages(void **st)
{
    (void)st;
    assert_string_equal(parse_msg("{\n  \"nesim\": 1,\n  \"tick\" 1e-4\n}\n"),
                        "model.json:3:13: ':' expected near '1e-4'");
    assert_string_equal(parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"tick\": 1}"),
                        "model.json:1:33: duplicate object key near '\"tick\"'");
    assert_string_equal(
        parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"input\": {\"shape\": [4]}, \"layers\": [\n"
                  " {\"type\": \"flatten\"}, {\"type\": \"flatten\", \"name\": \"f\"},\n"
                  " {\"type\": \"linear\", \"weight\": {\"file\": \"w.npy\"}, \"coding\": \"bitwize\"}]}"),
        "model.json: layers[2].coding: unknown coding 'bitwize' (expected binary, ternary, "
        "bitwise, bitwise-bidirectional, bitwise-twos-complement, none)");
    assert_string_equal(
        parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", \"model\": \"lif\","
                  " \"n\": 4, \"parms\": {}}]}"),
        "model.json: populations[0]: unknown key 'parms' (expected name, model, threshold, n, params, v_init, cores)");
    /* a parameter the model does not take, named with the model's own list */
    assert_string_equal(
        parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", \"model\": \"lif\","
                  " \"n\": 4, \"params\": {\"tau_m\": 0.01, \"v_thresh\": 1, \"tau_e\": 0.005}}]}"),
        "model.json: populations[0].params: unknown key 'tau_e' (lif takes tau_m, v_rest, v_thresh, v_reset, "
        "t_ref, reset_subtract)");
    assert_string_equal(
        parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", \"model\": \"lif\","
                  " \"n\": 4, \"params\": {\"tau_m\": 0.01}}]}"),
        "model.json: populations[0].params: v_thresh is required (threshold (the fixed rule's; the adaptive "
        "rule's baseline), in V)");
    /* the adaptive rule on lif_exp: its parameters join the model's */
    nesim_spec *ad = parse_ok("{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", \"model\": "
                              "\"lif_exp\", \"threshold\": \"adaptive\", \"n\": 4, \"params\": {\"tau_m\": 0.02,"
                              " \"tau_e\": 0.005, \"tau_i\": 0.01, \"v_thresh\": 1, \"tau_a\": 0.1, \"b\": 0.1}}]}",
                              NULL);
    assert_string_equal(ad->pops[0].threshold, "adaptive");
    nesim_spec_free(ad);
    assert_string_equal(
        parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", \"model\": \"alif\","
                  " \"threshold\": \"fixed\", \"n\": 4}]}"),
        "model.json: populations[0].threshold: model alif implies the adaptive threshold rule");
    assert_string_equal(
        parse_msg("{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", \"model\": \"lif\","
                  " \"n\": 4, \"params\": {\"tau_m\": 0.01, \"v_thresh\": 1}}],"
                  " \"projections\": [{\"pre\": \"e\", \"post\": \"e\", \"rule\": \"fixed_prob\","
                  " \"p\": 1.5, \"weight\": 1}]}"),
        "model.json: projections[0].p: must be in [0, 1] (got 1.5)");
    /* A user string is escaped and cut so the message stays one short line. */
    char text[600];
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"%s\\n%0300d\": 0}", "bad", 0);
    const char *m = parse_msg(text);
    assert_null(strchr(m, '\n'));
    assert_non_null(strstr(m, "unknown key 'bad\\x0a000"));
    assert_non_null(strstr(m, "...' (expected nesim,"));
    assert_true(strlen(m) < 250);
}

static void test_parse_edges(void **st)
{
    (void)st;
    /* The buffer need not be NUL-terminated: only len bytes are read. */
    const char *text = "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"e\", "
                       "\"model\": \"if\", \"n\": 1, \"params\": {\"v_thresh\": 1}}]}garbage";
    nesim_spec *s;
    nesim_error err = {0};
    assert_ok(nesim_spec_parse(text, strlen(text) - 7, NULL, NULL, &s, &err), &err);
    assert_string_equal(s->file, "<spec>");
    assert_true(given(&s->pops[0], "v_thresh") == 1);
    nesim_spec_free(s);
    assert_int_equal(nesim_spec_parse(text, strlen(text), NULL, NULL, &s, &err), NESIM_EINVAL);
    assert_true(strncmp(err.msg, "<spec>:1:", 9) == 0);
    assert_int_equal(nesim_spec_parse(NULL, 0, "x.json", NULL, &s, &err), NESIM_EINVAL);
    assert_null(s);
    nesim_spec_free(NULL);
    /* Integer fields take integers only; number fields take both. */
    assert_string_equal(parse_msg("{\"nesim\": 1.0, \"tick\": 1}"),
                        "model.json: nesim: expected an integer, got real");
    s = parse_ok("{\"nesim\": 1, \"tick\": 1, \"populations\": [{\"name\": \"e\", \"model\": "
                 "\"if\", \"n\": 1, \"params\": {\"v_thresh\": 1, \"i_drive\": 2}}]}", NULL);
    assert_true(s->tick == 1 && given(&s->pops[0], "i_drive") == 2);
    nesim_spec_free(s);
}

static void test_load_files(void **st)
{
    (void)st;
    nesim_error err = {0};
    nesim_spec *s = (nesim_spec *)1;
    assert_int_equal(nesim_spec_load("tests/no/such/spec.json", &s, &err), NESIM_EINVAL);
    assert_null(s);
    assert_string_equal(err.msg, "tests/no/such/spec.json: cannot open: No such file or directory");
    assert_int_equal(nesim_spec_load(test_tmpdir(), &s, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));

    /* Weight files resolve against the spec file's directory. */
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/specdir", test_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"nesim\": 1, \"tick\": 1e-4, \"input\": {\"shape\": [4]}, \"layers\": [{\"type\": "
          "\"linear\", \"weight\": {\"file\": \"sub/w.npy\"}}]}",
          f);
    fclose(f);
    assert_ok(nesim_spec_load(path, &s, &err), &err);
    char want[700];
    snprintf(want, sizeof want, "%s/sub/w.npy", dir);
    assert_string_equal(s->layers[0].weight.file, want);
    assert_string_equal(s->file, path);
    nesim_spec_free(s);
}

/* Reads EXPECTED_FILE: "name<TAB>message after the path" per line. */
typedef struct expect {
    char name[128];
    char rest[400];
    int seen;
} expect;

static size_t read_expected(expect *e, size_t cap)
{
    FILE *f = fopen(EXPECTED_FILE, "r");
    assert_non_null(f);
    char line[600];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab)
            continue;
        assert_true(n < cap);
        *tab = '\0';
        assert_true(strlen(line) < sizeof e[n].name && strlen(tab + 1) < sizeof e[n].rest);
        memcpy(e[n].name, line, strlen(line) + 1);
        memcpy(e[n].rest, tab + 1, strlen(tab + 1) + 1);
        e[n].seen = 0;
        n++;
    }
    fclose(f);
    return n;
}

static void test_malformed_specs(void **st)
{
    (void)st;
    static expect ex[256];
    size_t n_ex = read_expected(ex, 256), n_files = 0;
    DIR *d = opendir(MALFORMED_DIR);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", MALFORMED_DIR, de->d_name);
        nesim_spec *s = (nesim_spec *)1;
        nesim_error err = {0};
        int rc = nesim_spec_load(path, &s, &err);
        if (rc != NESIM_EINVAL)
            fail_msg("%s: expected NESIM_EINVAL, got %d (%s)", path, rc, rc ? err.msg : "accepted");
        assert_null(s);
        size_t pl = strlen(path);
        if (strncmp(err.msg, path, pl) != 0 || err.msg[pl] != ':')
            fail_msg("%s: message does not start with the file name: %s", path, err.msg);
        if (strchr(err.msg, '\n'))
            fail_msg("%s: message is not one line: %s", path, err.msg);
        for (size_t i = 0; i < n_ex; i++)
            if (strcmp(ex[i].name, de->d_name) == 0) {
                ex[i].seen = 1;
                if (strncmp(err.msg + pl, ex[i].rest, strlen(ex[i].rest)) != 0)
                    fail_msg("%s: got '%s', want '%s%s...'", path, err.msg, path, ex[i].rest);
            }
        n_files++;
    }
    closedir(d);
    for (size_t i = 0; i < n_ex; i++)
        if (!ex[i].seen)
            fail_msg("%s lists %s, which is missing", EXPECTED_FILE, ex[i].name);
    assert_true(n_files >= 25);
}

/* ---- explicit projections ---- */

static const char *POPS2 =
    "{\"nesim\": 1, \"tick\": 1e-4, \"seed\": 3,\n"
    " \"populations\": [\n"
    "  {\"name\": \"a\", \"model\": \"lif\", \"n\": 30, \"params\": {\"tau_m\": 0.02, \"v_rest\": -0.045,\n"
    "   \"v_thresh\": -0.05, \"v_reset\": -0.06, \"t_ref\": 0.002}, \"v_init\": {\"uniform\": [-0.06, -0.05]}},\n"
    "  {\"name\": \"b\", \"model\": \"lif\", \"n\": 20, \"params\": {\"tau_m\": 0.02, \"v_rest\": -0.052,\n"
    "   \"v_thresh\": -0.05, \"v_reset\": -0.06, \"t_ref\": 0.002}}],\n"
    " \"projections\": [%s]}";

static nesim_spike *run_spec_text(const char *projs, const char *dir, size_t *n)
{
    char text[65536];
    snprintf(text, sizeof text, POPS2, projs);
    nesim_spec *s = parse_ok(text, dir);
    nesim_net *net;
    nesim_error err = {0};
    assert_ok(build_net(s, 3, &net, &err), &err);
    nesim_spike *sp = run_and_copy(net, 4000, n);
    nesim_net_free(net);
    nesim_spec_free(s);
    return sp;
}

/* A spec (as "x.json") that parsing or building refuses with one line holding needle. */
static void refused(const char *text, const char *dir, const char *needle)
{
    nesim_error err = {0};
    nesim_spec *s = NULL;
    int rc = nesim_spec_parse(text, strlen(text), "x.json", dir, &s, &err);
    nesim_net *net = NULL;
    if (!rc) {
        rc = build_net(s, 3, &net, &err);
        nesim_net_free(net);
    }
    nesim_spec_free(s);
    if (rc != NESIM_EINVAL || !strstr(err.msg, needle) || strchr(err.msg, '\n'))
        fail_msg("rc %d, '%s' (wanted '%s')", rc, err.msg, needle);
}

static void explicit_refused(const char *projs, const char *dir, const char *needle)
{
    char text[65536];
    snprintf(text, sizeof text, POPS2, projs);
    refused(text, dir, needle);
}

static void test_explicit_projections(void **st)
{
    nesim_error err = {0};
    /* a matrix of equal weights is all_to_all, spike for spike */
    char m[16384] = "[", *at = m + 1;
    for (int r = 0; r < 20; r++) {
        at += sprintf(at, "%s[", r ? "," : "");
        for (int c = 0; c < 30; c++)
            at += sprintf(at, "%s0.004", c ? "," : "");
        at += sprintf(at, "]");
    }
    strcat(at, "]");
    char proj[20000];
    size_t na, nb;
    nesim_spike *a = run_spec_text("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"all_to_all\", \"weight\": 0.004, \"delay\": 2}",
                                   NULL, &na);
    snprintf(proj, sizeof proj, "{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"matrix\": %s, \"delay\": 2}", m);
    nesim_spike *b = run_spec_text(proj, NULL, &nb);
    size_t in_b = 0;
    for (size_t k = 0; k < na; k++)
        in_b += a[k].pop == 1;
    printf("  matrix vs all_to_all: %zu spikes, %zu of them in b\n", na, in_b);
    assert_true(in_b > 20);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a), free(b);
    {
        /* --max-memory's estimate counts the 600 synapses a matrix stores (all_to_all stores none) */
        char t1[32768], t2[4096];
        snprintf(t1, sizeof t1, POPS2, proj);
        snprintf(t2, sizeof t2, POPS2, "{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"all_to_all\", \"weight\": 0.004, \"delay\": 2}");
        nesim_spec *s1 = parse_ok(t1, NULL), *s2 = parse_ok(t2, NULL);
        nesim_estimate e1, e2;
        nesim_spec_estimate(s1, 0, &e1);
        nesim_spec_estimate(s2, 0, &e2);
        assert_close(e1.bytes - e2.bytes, nesim_estimate_network(0, 0, 600, 0), 1e-12, 1);
        nesim_spec_free(s1);
        nesim_spec_free(s2);
    }
    /* a fixed_prob projection's synapses, listed in .npy files, are that projection */
    const char *fp = "{\"pre\": \"a\", \"post\": \"a\", \"rule\": \"fixed_prob\", \"p\": 0.2, \"weight\": 0.003, \"delay\": 4},"
                     "{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"all_to_all\", \"weight\": 0.004, \"delay\": 2}";
    a = run_spec_text(fp, NULL, &na);
    char text[65536];
    snprintf(text, sizeof text, POPS2, fp);
    nesim_spec *s = parse_ok(text, NULL);
    nesim_net *net;
    assert_ok(build_net(s, 3, &net, &err), &err);
    int32_t pre[2000];
    int64_t post[2000];
    double w[2000];
    uint8_t dl[2000];
    size_t n = 0;
    uint32_t tg[30];
    for (uint32_t i = 0; i < 30; i++) {
        size_t f = nesim_projection_targets(net, 0, 29 - i, tg, 30); /* rows listed backwards: order is free */
        for (size_t k = 0; k < f; k++)
            pre[n] = (int32_t)(29 - i), post[n] = tg[k], w[n] = 0.003, dl[n] = 4, n++;
    }
    nesim_net_free(net);
    nesim_spec_free(s);
    const char *d = test_tmpdir();
    char path[600];
    int64_t shape[1] = {(int64_t)n};
    snprintf(path, sizeof path, "%s/pre.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_I32, 1, shape, pre, &err), &err);
    snprintf(path, sizeof path, "%s/post.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_I64, 1, shape, post, &err), &err);
    snprintf(path, sizeof path, "%s/w.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_F64, 1, shape, w, &err), &err);
    snprintf(path, sizeof path, "%s/d.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_U8, 1, shape, dl, &err), &err);
    const char *lists = "{\"pre\": \"a\", \"post\": \"a\", \"rule\": \"explicit\", \"synapses\": {\"pre\": {\"file\": \"pre.npy\"},"
                        " \"post\": {\"file\": \"post.npy\"}, \"weight\": {\"file\": \"w.npy\"}, \"delay\": {\"file\": \"d.npy\"}}},"
                        "{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"all_to_all\", \"weight\": 0.004, \"delay\": 2}";
    b = run_spec_text(lists, d, &nb);
    printf("  %zu listed synapses from .npy files vs fixed_prob: %zu spikes\n", n, na);
    assert_true(n > 100);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a), free(b);
    /* bad lists and matrices: one line naming the projection and the element */
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0, 31], "
                     "\"post\": [0, 1], \"weight\": [1e-3, 1e-3]}}", NULL,
                     "x.json: projections[0]: synapses.pre: element 1: 31 is not a neuron index of 'a' (0 .. 29)");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0, 1.5], "
                     "\"post\": [0, 1], \"weight\": [1e-3, 1e-3]}}", NULL,
                     "x.json: projections[0]: synapses.pre: element 1: 1.5 is not a neuron index of 'a' (0 .. 29)");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0, 1], "
                     "\"post\": [0, 19.000001], \"weight\": [1e-3, 1e-3]}}", NULL,
                     "x.json: projections[0]: synapses.post: element 1: 19.000001 is not a neuron index of 'b' (0 .. 19)");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0, 1], "
                     "\"post\": [0], \"weight\": [1e-3, 1e-3]}}", NULL,
                     "projections[0]: synapses.post: 1 elements, but synapses.pre has 2");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0], "
                     "\"post\": [0], \"weight\": [1e-3], \"delay\": [0]}}", NULL,
                     "projections[0]: synapses.delay: element 0: 0 is not a delay of 1 .. 2^31 - 1 ticks");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"matrix\": [[1, 2], [3, 4]]}", NULL,
                     "projections[0]: matrix: shape [2, 2], expected [post 20, pre 30]");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"matrix\": {\"file\": \"nope.npy\"}}", d,
                     "projections[0]: matrix: ");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"matrix\": {\"file\": \"pre.npy\"}}", d,
                     "must be a 2-D numeric array (it is 1-D i32)");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"weight\": 1, \"matrix\": [[1]]}", NULL,
                     "projections[0].weight: not for rule explicit");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\"}", NULL,
                     "projections[0]: rule explicit needs 'matrix' or 'synapses'");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"all_to_all\", \"weight\": 1, \"matrix\": [[1]]}", NULL,
                     "'matrix' and 'synapses' are for rule explicit");
    explicit_refused("{\"pre\": \"a\", \"post\": \"b\", \"rule\": \"explicit\", \"synapses\": {\"pre\": [0], "
                     "\"post\": [0], \"weight\": [\"x\"]}}", NULL, "projections[0].synapses.weight[0]: expected a number");
}

/* ---- per-neuron parameters ---- */

static const char *PER_NEURON =
    "{\"nesim\": 1, \"tick\": 1e-4, \"seed\": 5,\n"
    " \"populations\": [\n"
    "  {\"name\": \"drv\", \"model\": \"if\", \"n\": 5, \"params\": {\"v_thresh\": [0.01, 0.012, 0.01, 0.02, 0.015],\n"
    "   \"i_drive\": {\"file\": \"drive.npy\"}, \"t_ref\": [0, 0.001, 0.0005, 0, 0.002], \"v_reset\": 0}},\n"
    "  {\"name\": \"pace\", \"model\": \"lif\", \"n\": 4, \"params\": {\"v_rest\": [-0.045, -0.04, -0.048, -0.045],\n"
    "   \"tau_m\": [0.02, 0.01, 0.02, 0.03], \"v_thresh\": -0.05, \"v_reset\": -0.06, \"t_ref\": 0.002}}]}";

/* Spike ticks of one neuron from its closed form: v(k) from the reset level
 * at the end of refractoriness s0 (v_reset + dv (k - s0) for if; the
 * exponential relaxation to v_rest for lif), the first k > the last spike
 * (k >= 0 at the start) at or above threshold. */
static size_t closed_form(int lif, double v0, double el, double rate, double dv, double th, double vr, int64_t R,
                          int64_t T, int64_t *out)
{
    size_t n = 0;
    int64_t s0 = 0, kmin = 0;
    double from = v0;
    for (int64_t k = kmin; k < T; k++) {
        if (k < s0)
            continue;
        double v = lif ? el + (from - el) * exp(-rate * (double)(k - s0)) : from + dv * (double)(k - s0);
        if (v >= th) {
            out[n++] = k;
            s0 = k + R > k + 1 ? k + R : k;
            from = vr;
            if (R == 0)
                s0 = k; /* v resets at k and evolves from k; the next spike is at k + 1 or later */
        }
    }
    return n;
}


static void test_per_neuron_parameters(void **st)
{
    nesim_error err = {0};
    const char *d = test_tmpdir();
    char path[600];
    float drive[5] = {1.0f, 2.5f, 1.0f, 3.0f, 0.7f};
    int64_t shape[1] = {5};
    snprintf(path, sizeof path, "%s/drive.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_F32, 1, shape, drive, &err), &err);
    nesim_spec *s = parse_ok(PER_NEURON, d);
    nesim_net *net;
    assert_ok(build_net(s, 5, &net, &err), &err);
    enum { T = 20000 };
    size_t n;
    nesim_spike *sp = run_and_copy(net, T, &n);
    const double tick = 1e-4;
    const double th[5] = {0.01, 0.012, 0.01, 0.02, 0.015}, tr[5] = {0, 0.001, 0.0005, 0, 0.002};
    const double el[4] = {-0.045, -0.04, -0.048, -0.045}, tau[4] = {0.02, 0.01, 0.02, 0.03};
    int64_t *want = malloc(T * sizeof *want);
    size_t total = 0;
    for (uint32_t g = 0; g < 9; g++) {
        int lif = g >= 5;
        size_t nw = lif ? closed_form(1, el[g - 5], el[g - 5], tick / tau[g - 5], 0, -0.05, -0.06, 20, T, want)
                        : closed_form(0, 0, 0, 0, (double)drive[g] * tick, th[g], 0, llround(tr[g] / tick), T, want);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (sp[i].id != g)
                continue;
            if (k >= nw || sp[i].t != want[k])
                fail_msg("neuron %u spike %zu: engine t=%lld, closed form %lld", g, k, (long long)sp[i].t,
                         k < nw ? (long long)want[k] : -1LL);
            k++;
        }
        assert_int_equal(k, nw);
        assert_true(nw > 5);
        total += nw;
    }
    printf("  9 neurons with their own parameters: %zu spikes, each at its closed-form tick\n", total);
    /* four distinct (v_rest, tau_m) pairs: four classes; neurons 1 and 3 of drv share everything but t_ref */
    assert_true(nesim_dyn_param(nesim_neuron_dyn(net, 6), "tau_m") == 0.01);
    assert_true(nesim_dyn_param(nesim_neuron_dyn(net, 6), "v_rest") == -0.04);
    assert_true(nesim_dyn_param(nesim_neuron_dyn(net, 4), "i_drive") == (double)0.7f);
    assert_null(nesim_neuron_dyn(net, 9));
    free(want);
    free(sp);
    nesim_net_free(net);
    nesim_spec_free(s);

    /* initial potentials per neuron: v_init values; first spikes at ceil((1 - v0) / (drive x tick)) */
    {
        const char *vi = "{\"nesim\": 1, \"tick\": 1e-3, \"populations\": [{\"name\": \"p\", \"model\": \"if\", "
                         "\"n\": 3, \"params\": {\"v_thresh\": 1, \"i_drive\": 10}, \"v_init\": {\"values\": [0.5, 0.9, 0]}}]}";
        nesim_spec *sv = parse_ok(vi, NULL);
        assert_int_equal(sv->pops[0].v_init.kind, NESIM_INIT_VALUES);
        nesim_net *nv;
        assert_ok(build_net(sv, 1, &nv, &err), &err);
        size_t m;
        nesim_spike *first = run_and_copy(nv, 105, &m);
        int64_t want_first[3] = {50, 10, 100}, seen[3] = {-1, -1, -1};
        for (size_t i = 0; i < m; i++)
            if (seen[first[i].id] < 0)
                seen[first[i].id] = first[i].t;
        for (int i = 0; i < 3; i++)
            assert_int_equal(seen[i], want_first[i]);
        free(first);
        nesim_net_free(nv);
        nesim_spec_free(sv);
        refused("{\"nesim\": 1, \"tick\": 1e-3, \"populations\": [{\"name\": \"p\", \"model\": \"if\", "
                           "\"n\": 3, \"params\": {\"v_thresh\": 1}, \"v_init\": {\"values\": [0.5]}}]}", d,
                           "x.json: populations[0].v_init.values: 1 values for a population of 3 neurons");
    }
    /* bad per-neuron values: one line naming the population, parameter and element or neuron */
    char text[4096];
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": %s, \"v_thresh\": -0.05}}]}", "[0.02, 0.01]");
    refused(text, d, "x.json: populations[0].params.tau_m: 2 values for a population of 3 neurons");
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": %s, \"v_thresh\": -0.05, \"v_reset\": -0.06}}]}", "[0.02, 0.01, -0.01]");
    refused(text, d, "x.json: populations[0]: population 'p' (lif): neuron 2: tau_m must be > 0 (got -0.01)");
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": %s, \"v_thresh\": -0.05}}]}", "[0.02, \"x\", 0.01]");
    refused(text, d, "x.json: populations[0].params.tau_m[1]: expected a number, got string");
    double bad[3] = {0.02, NAN, 0.01};
    int64_t s3[1] = {3}, s2[2] = {3, 1};
    snprintf(path, sizeof path, "%s/nan.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_F64, 1, s3, bad, &err), &err);
    snprintf(path, sizeof path, "%s/two_d.npy", d);
    assert_ok(nesim_npy_write(path, NESIM_F64, 2, s2, bad, &err), &err);
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": %s, \"v_thresh\": -0.05}}]}", "{\"file\": \"nan.npy\"}");
    refused(text, d, "x.json: populations[0].params.tau_m[1]: nan is not a finite value");
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": %s, \"v_thresh\": -0.05}}]}", "{\"file\": \"two_d.npy\"}");
    refused(text, d, "must be a 1-D numeric array (it is 2-D f64)");
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": %s, \"v_thresh\": -0.05}}]}", "{\"file\": \"missing.npy\"}");
    refused(text, d, "x.json: populations[0].params.tau_m: ");
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": 0.02, \"v_thresh\": -0.05, \"gain\": %s}}]}", "[1, 2, 3]");
    refused(text, d, "unknown key 'gain'");
    snprintf(text, sizeof text, "{\"nesim\": 1, \"tick\": 1e-4, \"populations\": [{\"name\": \"p\", \"model\": \"lif\", "
             "\"n\": 3, \"params\": {\"tau_m\": 0.02, \"v_thresh\": 0.01, \"reset_subtract\": %s}}]}", "[0, 1, 2]");
    refused(text, d, "neuron 2: reset_subtract is true or false (1 or 0; got 2)");
}

/* Error messages stay one line whatever they quote: a control character in
 * a name or path is written as an escape, by nesim_fail, nesim_context and
 * nesim_suffix alike, and an escape that does not fit is left out whole. */
static void test_error_messages_one_line(void **st)
{
    (void)st;
    nesim_error e = {0};
    assert_int_equal(nesim_fail(&e, NESIM_EINVAL, "no population '%s'", "a\nb\tc\x01" "d\x7f"), NESIM_EINVAL);
    assert_string_equal(e.msg, "no population 'a\\nb\\tc\\x01d\\x7f'");
    assert_int_equal(nesim_context(&e, "%s: ", "f\ng.json"), NESIM_EINVAL);
    assert_string_equal(e.msg, "f\\ng.json: no population 'a\\nb\\tc\\x01d\\x7f'");
    assert_int_equal(nesim_suffix(&e, " (in %s)", "p\rq"), NESIM_EINVAL);
    assert_string_equal(e.msg, "f\\ng.json: no population 'a\\nb\\tc\\x01d\\x7f' (in p\\rq)");
    /* its own message as an argument (formatted apart, then copied) */
    nesim_fail(&e, NESIM_EIO, "again: %s", e.msg);
    assert_string_equal(e.msg, "again: f\\ng.json: no population 'a\\nb\\tc\\x01d\\x7f' (in p\\rq)");
    /* at the end of the buffer: an escape fits whole or not at all */
    char longname[600];
    memset(longname, 'a', sizeof longname);
    longname[sizeof e.msg - 2] = '\n'; /* 510 a's, then a newline whose escape does not fit */
    longname[sizeof e.msg - 1] = '\0';
    nesim_fail(&e, NESIM_EINVAL, "%s", longname);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 2);
    assert_null(strchr(e.msg, '\\'));
    memset(longname, 'a', sizeof longname);
    longname[sizeof e.msg - 4] = '\n'; /* 508 a's, a newline, an a: all fit */
    longname[sizeof e.msg - 2] = '\0';
    nesim_fail(&e, NESIM_EINVAL, "%s", longname);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    assert_string_equal(e.msg + sizeof e.msg - 4, "\\na");
    assert_null(strchr(e.msg, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_messages_one_line),
        cmocka_unit_test(test_example_b4_matches_classic),
        cmocka_unit_test(test_example_cuba_matches_classic),
        cmocka_unit_test(test_layers_parse),
        cmocka_unit_test(test_populations_parse_and_build),
        cmocka_unit_test(test_exact_messages),
        cmocka_unit_test(test_cores_and_storage),
        cmocka_unit_test(test_parse_edges),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_malformed_specs),
        cmocka_unit_test(test_explicit_projections),
        cmocka_unit_test(test_per_neuron_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
