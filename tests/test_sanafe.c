/* test_sanafe.c — SANA-FE's own files (net/sanafe.h): an architecture and a
 * network written here, in both of SANA-FE's network formats, load, map and
 * price as worked out by hand; every malformed input is one line naming
 * file, line, column and key; explicit placement and per-storage synaptic
 * energy, which the reader needs, on their own. */
#include "tests/support/check.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eval/chiptime.h"
#include "jobs/run.h"
#include "net/chip.h"
#include "net/map.h"
#include "net/sanafe.h"
#include "net/yaml_tree.h"

static const char *ARCH =
    "# a 2 x 2 mesh of tiles with 2 cores each\n"
    "architecture:\n"
    "  name: tiny\n"
    "  attributes: {topology: mesh, width: 2, height: 2, link_buffer_size: 4, sync_model: table,\n"
    "               latency_sync: {1: 1.0e-6, 2: 2.0e-6}}\n"
    "  tile:\n"
    "    - name: t[0..3]\n"
    "      attributes: {energy_north_hop: 2.0e-12, latency_north_hop: 3.0e-9, energy_south_hop: 2.0e-12,\n"
    "                   latency_south_hop: 3.0e-9, energy_east_hop: 1.0e-12, latency_east_hop: 2.0e-9,\n"
    "                   energy_west_hop: 1.0e-12, latency_west_hop: 2.0e-9}\n"
    "      core:\n"
    "        - name: c[0..1]\n"
    "          attributes: {buffer_position: soma, max_neurons_supported: 8}\n"
    "          axon_in: [{name: ain, attributes: {energy_message_in: 1.0e-12, latency_message_in: 10.0e-9}}]\n"
    "          soma:\n"
    "            - name: lif\n"
    "              attributes: {model: leaky_integrate_fire, energy_access_neuron: 5.0e-12,\n"
    "                           latency_access_neuron: 1.0e-9, energy_update_neuron: 3.0e-12,\n"
    "                           latency_update_neuron: 2.0e-9, energy_spike_out: 7.0e-12, latency_spike_out: 4.0e-9}\n"
    "            - name: inp[0..7]\n"
    "              attributes: {model: input}\n"
    "          synapse:\n"
    "            - {name: s_sparse, attributes: {model: current_based, energy_process_spike: 11.0e-12, latency_process_spike: 5.0e-9}}\n"
    "            - {name: s_conv, attributes: {model: current_based, energy_process_spike: 13.0e-12, latency_process_spike: 6.0e-9}}\n"
    "            - {name: s_dense, attributes: {model: current_based, energy_process_spike: 17.0e-12, latency_process_spike: 7.0e-9}}\n"
    "          dendrite: [{name: d, attributes: {model: accumulator, energy_update: 0.0, latency_update: 0.0}}]\n"
    "          axon_out: [{name: aout, attributes: {energy_message_out: 20.0e-12, latency_message_out: 8.0e-9}}]\n";

/* a.0 (bias 1/4) fires in SANA-FE steps 5, 10, ...; a.1 (bias 1/2) in 3, 6,
 * ...; each drives one neuron of b with weight 2, which fires the next step;
 * the other two synapses of the dense edge weigh 0 (but are synapses) */
static const char *NET =
    "network:\n"
    "  name: tiny_net\n"
    "  groups:\n"
    "    - name: a\n"
    "      attributes: [soma_hw_name: lif, threshold: 1.0, reset: 0.0, log_spikes: true]\n"
    "      neurons:\n"
    "        - 0: {bias: 0.25}\n"
    "        - 1: [bias: 0.5, log_potential: true]\n"
    "    - name: b\n"
    "      attributes: {threshold: 1.0, synapse_hw_name: s_conv}\n"
    "      neurons:\n"
    "        - 0..1\n"
    "  edges:\n"
    "    - a -> b: {type: dense, weight: [2, 0, 0, 2]}\n"
    "mappings:\n"
    "  - a.0: [core: 0.0]\n"
    "  - a.1: [core: '1.1']\n"
    "  - b: [core: 3.0]\n";

static const char *NETLIST =
    "## the same network as a SANA-FE netlist\n"
    "g 2 soma_hw_name=lif threshold=1.0 reset=0.0\n"
    "g 2 threshold=1.0 synapse_hw_name=s_conv\n"
    "n 0.0 bias=0.25\n"
    "n 0.1 [bias: 0.5]\n"
    "e 0.0->1.0 weight=2\n"
    "e 0.0->1.1 weight=0\n"
    "e 0.1->1.0 weight=0\n"
    "e 0.1->1.1 weight=2\n"
    "& 0.0@0.0\n"
    "& 0.1@1.1\n"
    "& 1.0@3.0\n"
    "& 1.1@3.0\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_arch_is_a_chip(void **st)
{
    nesim_error err = {0};
    const char *path = test_tmp("tiny.yaml");
    write_file(path, ARCH);
    nesim_chip *c;
    assert_ok(nesim_chip_load(path, NULL, &c, &err), &err);
    const nesim_chip_params *p = &c->p;
    assert_int_equal(c->kind, NESIM_CHIP_NEUROMORPHIC);
    assert_string_equal(c->name, "tiny");
    /* storage by unit name: dense, sparse, conv; the generic op is the sparse unit's */
    assert_true(p->energy.syn_by_storage[0] == 17e-12 && p->energy.syn_by_storage[1] == 11e-12 &&
                p->energy.syn_by_storage[2] == 13e-12 && p->energy.synaptic_op == 11e-12);
    assert_true(p->energy.neuron_update_active == 5e-12 + 3e-12 && p->energy.neuron_update_idle == 5e-12);
    assert_true(p->energy.spike_out == 7e-12 && p->energy.spike_within_core == 20e-12 + 1e-12);
    assert_true(p->energy.hop_ew == 1e-12 && p->energy.hop_ns == 2e-12);
    const nesim_chip_latency *L = &p->latency;
    assert_true(p->has_latency);
    assert_true(L->syn_dense == 7e-9 && L->syn_sparse == 5e-9 && L->syn_conv == 6e-9);
    assert_true(L->neuron_access == 1e-9 && L->neuron_update == 2e-9 && L->spike_out == 4e-9);
    assert_true(L->message_out == 8e-9 && L->message_in == 10e-9 && L->hop_ew == 2e-9 && L->hop_ns == 3e-9);
    assert_int_equal(L->link_buffer, 4);
    assert_int_equal(L->n_sync, 2);
    assert_true(L->sync_routers[1] == 2 && L->sync_s[1] == 2e-6);
    assert_int_equal(p->neurons_per_core, 8);
    assert_int_equal(p->cores_per_chip, 8);
    assert_int_equal(p->cores_per_router, 2);
    assert_true(p->mesh_x == 2 && p->mesh_y == 2);
    /* every number says where it came from */
    const nesim_chip_value *v = nesim_chip_find(c, "energy.synaptic_op_conv");
    assert_non_null(v);
    assert_non_null(strstr(v->source, "s_conv"));
    v = nesim_chip_find(c, "process_nm");
    assert_non_null(v->assumption);
    nesim_chip_free(c);
}

static void run_net(const char *net, int64_t steps, json_t **r)
{
    nesim_error err = {0};
    nesim_run_opts o = {.spec = net, .chip = test_tmp("tiny.yaml"), .steps = steps, .timing = NESIM_TIMING_SIMPLE};
    assert_ok(nesim_run_spec(&o, r, &err), &err);
}

static double num(const json_t *o, const char *a, const char *b, const char *c)
{
    const json_t *x = json_object_get(o, a);
    if (b)
        x = json_object_get(x, b);
    if (c)
        x = json_object_get(x, c);
    assert_true(json_is_number(x));
    return json_number_value(x);
}

static void check_tiny_run(const json_t *r)
{
    /* nesim tick = SANA-FE step - 1; 20 steps: a.0 at 4, 9, 14, 19; a.1 at 2, 5, ..., 17;
     * b.0 at 5, 10, 15 (a.0's spike of tick 19 arrives after the run); b.1 at 3, 6, ..., 18 */
    const json_t *L = json_object_get(r, "layers");
    assert_int_equal(json_array_size(L), 2);
    assert_int_equal((int)num(json_array_get(L, 0), "spikes", NULL, NULL), 4 + 6);
    assert_int_equal((int)num(json_array_get(L, 1), "spikes", NULL, NULL), 3 + 6);
    /* synaptic ops delivered in the run: 2 per spike of a, but a.0's last arrives after it */
    assert_int_equal((int)num(r, "totals", "sops", NULL), 2 * (3 + 6));
    /* priced as b's synapse unit, s_conv: 13 pJ each */
    assert_close(num(r, "energy", "terms", "synaptic"), 18 * 13e-12, 1e-12, 0);
    /* a.0 on core 0 (tile 0: x 0, y 0), a.1 on core 5 (tile 1: x 0, y 1), b on core 6 (tile 3:
     * x 1, y 1): a.0's spikes hop once east-west and once north-south, a.1's once east-west;
     * every spike is one message (21 pJ with its receipt) */
    assert_close(num(r, "energy", "terms", "routing"), 4 * (1e-12 + 2e-12) + 6 * 1e-12, 1e-12, 0);
    assert_close(num(r, "energy", "terms", "delivery"), 10 * 21e-12, 1e-12, 0);
    assert_int_equal((int)num(r, "chip_usage", "cores", NULL), 3); /* cores 0, 5 and 6 */
    const json_t *s = json_object_get(r, "sanafe_summary");
    assert_non_null(s);
    assert_int_equal((int)num(s, "timesteps_executed", NULL, NULL), 20);
    assert_int_equal((int)num(s, "total_neurons_fired", NULL, NULL), 19);
    assert_int_equal((int)num(s, "total_messages_sent", NULL, NULL), 10); /* each spike sends one, in its own step */
    assert_close(num(s, "energy", "synapse", NULL), 18 * 13e-12, 1e-12, 0);
}

static void test_network_runs_as_worked_out(void **st)
{
    nesim_error err = {0};
    write_file(test_tmp("tiny.yaml"), ARCH);
    const char *yaml = test_tmp("net.yaml"), *net = test_tmp("net.net");
    write_file(yaml, NET);
    write_file(net, NETLIST);
    /* the spec: loihi populations, per-neuron biases, cores translated */
    nesim_sanafe_arch *a;
    assert_ok(nesim_sanafe_arch_load(test_tmp("tiny.yaml"), &a, &err), &err);
    nesim_sanafe_layout lay = {2, 2, 2, 8};
    nesim_spec *s;
    assert_ok(nesim_sanafe_net_load(yaml, a, &lay, &s, &err), &err);
    assert_int_equal(s->n_pops, 2);
    assert_string_equal(s->pops[0].model, "loihi");
    assert_int_equal(s->pops[0].n_arrays, 1);
    assert_string_equal(s->pops[0].array_names[0], "bias");
    assert_true(s->pops[0].arrays[0].v[0] == 0.25 && s->pops[0].arrays[0].v[1] == 0.5);
    assert_true(s->pops[0].cores[0] == 0 && s->pops[0].cores[1] == 5);
    assert_true(s->pops[1].cores[0] == 6 && s->pops[1].cores[1] == 6);
    /* SANA-FE's first step is nesim's tick 0: each neuron starts at its bias */
    assert_int_equal(s->pops[0].v_init.kind, NESIM_INIT_VALUES);
    assert_true(s->pops[0].v_init.values[1] == 0.5);
    assert_int_equal(s->n_projs, 1);
    assert_int_equal(s->projs[0].storage, NESIM_STORE_CONV);
    assert_int_equal(s->projs[0].syn[NESIM_SYN_PRE].n, 4);
    nesim_spec_free(s);

    json_t *r1, *r2;
    run_net(yaml, 20, &r1);
    check_tiny_run(r1);
    run_net(net, 20, &r2); /* the netlist: the same network */
    check_tiny_run(r2);
    assert_string_equal(json_string_value(json_object_get(r1, "spike_checksum")),
                        json_string_value(json_object_get(r2, "spike_checksum")));
    json_decref(r1);
    json_decref(r2);
    nesim_sanafe_arch_free(a);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* conv2d: channels first, no padding, filter [y][x][in][out] */
static void test_conv2d_expansion(void **st)
{
    const char *text = "network:\n  groups:\n    - {name: in, neurons: [0..8]}\n    - {name: out, neurons: [0..7]}\n"
                       "  edges:\n    - in -> out: {type: conv2d, input_width: 3, input_height: 3, input_channels: 1,\n"
                       "        kernel_width: 2, kernel_height: 2, kernel_count: 2, weight: [1, 2, 3, 4, 5, 6, 7, 8]}\n";
    nesim_error err = {0};
    nesim_spec *s;
    assert_ok(nesim_sanafe_net_parse(text, strlen(text), "conv.yaml", 0, NULL, NULL, &s, &err), &err);
    const nesim_spec_proj *J = &s->projs[0];
    assert_int_equal(J->syn[0].n, 8 * 4);
    /* output channel 1, y 1, x 0 is neuron 6: inputs 3, 4, 6, 7 with filter entries
     * ((fy * 2 + fx) * 1 + 0) * 2 + 1 = 1, 3, 5, 7: weights 2, 4, 6, 8 */
    double want_src[4] = {3, 4, 6, 7}, want_w[4] = {2, 4, 6, 8};
    int found = 0;
    for (size_t k = 0; k < J->syn[0].n; k++) {
        if (J->syn[1].v[k] != 6)
            continue;
        for (int q = 0; q < 4; q++)
            if (J->syn[0].v[k] == want_src[q]) {
                assert_true(J->syn[2].v[k] == want_w[q]);
                found++;
            }
    }
    assert_int_equal(found, 4);
    assert_int_equal(J->storage, NESIM_STORE_SPARSE); /* no architecture: sparse */
    nesim_spec_free(s);

    /* strides, channels and a filter taller than wide: every synapse of the
     * definition (output by output) and no other, whatever the listing order */
    enum { C = 2, H = 5, W = 6, K = 3, KH = 3, KW = 2, SH = 2, SW = 3 };
    enum { OH = (H - KH) / SH + 1, OW = (W - KW) / SW + 1, NF = KH * KW * C * K };
    char buf[2048];
    int o = snprintf(buf, sizeof buf,
                     "network:\n  groups:\n    - {name: in, neurons: [0..%d]}\n    - {name: out, neurons: [0..%d]}\n"
                     "  edges:\n    - in -> out: {type: conv2d, input_width: %d, input_height: %d, input_channels: %d,\n"
                     "        kernel_width: %d, kernel_height: %d, kernel_count: %d, stride_width: %d, stride_height: %d,\n"
                     "        weight: [",
                     C * H * W - 1, K * OH * OW - 1, W, H, C, KW, KH, K, SW, SH);
    for (int f = 0; f < NF; f++)
        o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%d", f ? ", " : "", f + 1);
    snprintf(buf + o, sizeof buf - (size_t)o, "]}\n");
    assert_ok(nesim_sanafe_net_parse(buf, strlen(buf), "conv.yaml", 0, NULL, NULL, &s, &err), &err);
    J = &s->projs[0];
    /* key = (src * 1000 + dst) * 1000 + w: unique per synapse */
    double want[K * OH * OW * C * KH * KW], got[K * OH * OW * C * KH * KW];
    size_t n = 0;
    for (int co = 0; co < K; co++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++)
                for (int ci = 0; ci < C; ci++)
                    for (int fy = 0; fy < KH; fy++)
                        for (int fx = 0; fx < KW; fx++) {
                            int src = ci * W * H + (y * SH + fy) * W + (x * SW + fx), dst = co * OW * OH + y * OW + x;
                            int f = ((fy * KW + fx) * C + ci) * K + co;
                            want[n++] = ((double)src * 1000 + dst) * 1000 + (f + 1);
                        }
    assert_int_equal(J->syn[0].n, n);
    for (size_t k = 0; k < n; k++)
        got[k] = (J->syn[0].v[k] * 1000 + J->syn[1].v[k]) * 1000 + J->syn[2].v[k];
    qsort(want, n, sizeof *want, cmp_double);
    qsort(got, n, sizeof *got, cmp_double);
    for (size_t k = 0; k < n; k++)
        assert_true(want[k] == got[k]);
    nesim_spec_free(s);
}

#define ZEROS50 "00000000000000000000000000000000000000000000000000"

typedef struct bad {
    int kind; /* 0 arch, 1 YAML network, 2 netlist */
    const char *text, *want;
} bad;

static void test_malformed(void **st)
{
    static const bad cases[] = {
        {0, "architecture:\n  name: x\n  attributes: {width: 2, height: 1, colour: red}\n",
         "bad.yaml:3:37: architecture.attributes: unknown key 'colour'"},
        {0, "architecture: [1, 2\n", "bad.yaml:2:1: did not find expected ',' or ']'"},
        {0, "a: &x 1\nb: *x\n", "bad.yaml:1:4: anchors and aliases are not supported"},
        {0, "architecture: {}\narchitecture: {}\n", "bad.yaml:2:1: key 'architecture' repeats (first at line 1)"},
        {0, "architecture:\n  attributes: {width: two, height: 1}\n", "bad.yaml:2:23: width: 'two' is not a finite number"},
        {1, "network:\n  groups:\n    - name: a\n      attributes: {threshold: 1, reset_mode: soft}\n      neurons: [0]\n",
         "bad.yaml:4:46: reset_mode: nesim's loihi model resets hard"},
        {1, "network:\n  groups:\n    - name: a\n      neurons:\n        - 0: {spikes: [1, 0]}\n",
         "bad.yaml:5:15: spikes: input spike lists are not supported"},
        {1, "network:\n  groups:\n    - name: a\n      neurons:\n        - 0: {thresold: 1}\n",
         "bad.yaml:5:15: unknown attribute 'thresold'"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0..3]}\n  edges:\n    - a -> c: {type: dense, weight: 1}\n",
         "bad.yaml:5:7: no group 'c'"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0..3]}\n  edges:\n    - a -> a: {type: dense, weight: [1, 2]}\n",
         "bad.yaml:5:37: weight: 2 values for 16 synapses"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0..3]}\n    - {name: b, neurons: [0..3]}\n  edges:\n"
            "    - a -> b: {type: conv2d, input_width: 2, input_height: 2, input_channels: 1, kernel_width: 2,\n"
            "               kernel_height: 2, kernel_count: 1, weight: [1, 1, 1, 1]}\n",
         "bad.yaml:6:7: conv2d: 1 x 2 x 2 inputs and 1 x 1 x 1 outputs, but the groups have 4 and 4 neurons"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0, 2]}\n", "bad.yaml:3:26: group 'a': neuron 1 is not listed"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0]}\nmappings:\n  - a.0: [core: 9.0]\n",
         "bad.yaml:5:5: core 9.0: the chip has 4 tiles of 2 cores"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0]}\n  edges:\n    - a.0 -> a.0: {weight: 1, colour: 2}\n",
         "bad.yaml:5:31: edge: unknown attribute 'colour' here"},
        {2, "g 2 threshold=1\nn 0.5 bias=1\n", "bad.net:2:3: group '0' has 2 neurons (no neuron 5)"},
        {2, "g 2 threshold\n", "bad.net:1:5: 'threshold' is not key=value"},
        /* a value longer than a token holds is refused, not cut short (1.000...0e9 read as 1) */
        {2, "g 1 threshold=1." ZEROS50 ZEROS50 ZEROS50 ZEROS50 "e9\n", "bad.net:1:5: 'threshold=1.000"},
        {2, "g 2\ne 0.0->0.1 weight=1 weight=2\n", "bad.net:2:21: edge attribute 'weight' is given twice"},
        {2, "g 2\ne 0.0->0.1 a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1 l=1 m=1 n=1 o=1 p=1 q=1 r=1 s=1 t=1 u=1 "
            "v=1 w=1 x=1 y=1\n",
         "bad.net:2:108: e: too many attributes"},
        {2, "x 1\n", "bad.net:1:1: 'x': a line is g (group), n (neuron), e (edge) or & (mapping)"},
        {2, "g 1\ne 0.0->0.0 weight=1 delay=2\n", "bad.net:2:27: delay: dendritic delays are not supported"},
        /* hostile sizes are refused before anything is allocated for them */
        {2, "g 422222222 threshold=1\n", "bad.net:1:1: group '0': more than 16777216 neurons in all"},
        {1, "network:\n  groups:\n    - {name: a, neurons: [0..4999]}\n    - {name: b, neurons: [0..19999]}\n"
            "  edges:\n    - a -> b: {type: dense, weight: 1}\n",
         "bad.yaml:6:7: dense: 5000 x 20000 synapses: more than 67108864 in all"},
    };
    nesim_sanafe_layout lay = {2, 2, 2, 8};
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bad *b = &cases[i];
        nesim_error err = {0};
        const char *name = b->kind == 2 ? "bad.net" : "bad.yaml";
        int rc;
        if (b->kind == 0) {
            nesim_sanafe_arch *a = NULL;
            rc = nesim_sanafe_arch_parse(b->text, strlen(b->text), name, &a, &err);
            assert_null(a);
        } else {
            nesim_spec *s = NULL;
            rc = nesim_sanafe_net_parse(b->text, strlen(b->text), name, b->kind == 2, NULL, &lay, &s, &err);
            assert_null(s);
        }
        if (rc != NESIM_EINVAL || strncmp(err.msg, b->want, strlen(b->want)) || strchr(err.msg, '\n')) {
            print_error("case %zu: rc %d, message\n  %s\nwanted it to start with\n  %s\n", i, rc, err.msg, b->want);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
    /* an architecture nesim cannot price the same way says which part */
    const char *two = "architecture:\n  attributes: {width: 1, height: 1}\n  tile:\n    - name: t\n      attributes: "
                      "{energy_east_hop: 1, energy_west_hop: 2}\n";
    nesim_error err = {0};
    nesim_sanafe_arch *a;
    assert_int_equal(nesim_sanafe_arch_parse(two, strlen(two), "dir.yaml", &a, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "nesim prices one east-west hop"));
}

/* the mapper with every group's cores given */
static size_t all_targets(void *u, uint64_t i, uint32_t *out, size_t cap)
{
    for (size_t k = 0; k < 3 && k < cap; k++)
        out[k] = (uint32_t)k;
    return 3;
}

static void test_given_placement(void **st)
{
    nesim_chip_caps caps = {.neurons_per_core = 2, .synapse_bytes_per_core = 1e6, .cores_per_chip = 8,
                            .cores_per_router = 2, .mesh_x = 2, .mesh_y = 2, .chip_mesh_x = 1, .chip_mesh_y = 1,
                            .weight_bits_max = 8};
    const uint32_t ca[2] = {0, 5}, cb[3] = {6, 7, 6};
    nesim_map_group g[2] = {{.name = "a", .neurons = 2, .fan_in = 0, .weight_bits = 8, .cores = ca},
                            {.name = "b", .neurons = 3, .fan_in = 2, .weight_bits = 8, .cores = cb}};
    nesim_map_edge e = {.pre = 0, .post = 1, .targets = all_targets};
    nesim_mapping m;
    nesim_error err = {0};
    assert_ok(nesim_map(&caps, g, 2, &e, 1, &m, &err), &err);
    assert_int_equal(m.cores, 8);
    assert_int_equal(m.cores_used, 4);
    assert_int_equal(m.place[0].owned_cores + m.place[1].owned_cores, 4);
    assert_int_equal(nesim_map_core(&m.place[1], 1), 7);
    /* a.0 (router 0) reaches cores 6 and 7 (router 3: one hop each way); a.1 (router 2) one hop east */
    assert_int_equal(m.dest_cores[0][0], 2);
    assert_int_equal(m.hops_ew[0][0], 2);
    assert_int_equal(m.hops_ns[0][0], 2);
    assert_int_equal(m.hops_ew[0][1], 2);
    assert_int_equal(m.hops_ns[0][1], 0);
    nesim_map_free(&m);
    /* a third neuron on core 6: over its two slots */
    const uint32_t cc[3] = {6, 6, 6};
    g[1].cores = cc;
    assert_int_equal(nesim_map(&caps, g, 2, &e, 1, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "b: neuron 2 is placed on core 6, which already holds 2 neurons"));
    /* given for one group, not the other */
    g[0].cores = NULL;
    assert_int_equal(nesim_map(&caps, g, 2, &e, 1, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "give every group's placement or none"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arch_is_a_chip),
        cmocka_unit_test(test_network_runs_as_worked_out),
        cmocka_unit_test(test_conv2d_expansion),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_given_placement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
