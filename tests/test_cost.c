/* test_cost.c — mapping, hop counts, energy and NeuroBench metrics against
 * hand counts on tiny networks and small meshes. */
#include "tests/support/check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "net/chip.h"
#include "net/map.h"
#include "net/spec.h"
#include "eval/cost.h"
#include "eval/metrics.h"
#include "eval/energy.h"
#include "sim/infer.h"

/* a 2 x 2 mesh, one core per router, 4 cores per chip, 2 neurons per core */
static nesim_chip_caps small_caps(void)
{
    return (nesim_chip_caps){.neurons_per_core = 2, .synapse_bytes_per_core = 1000, .cores_per_chip = 4,
                             .cores_per_router = 1, .mesh_x = 2, .mesh_y = 2};
}

static void test_placement_and_hops(void **st)
{
    nesim_chip_caps caps = small_caps();
    nesim_map_group g[2] = {{.name = "A", .neurons = 3}, {.name = "B", .neurons = 2, .fan_in = 3, .weight_bits = 8}};
    nesim_map_edge e = {.pre = 0, .post = 1, .dense = 1};
    nesim_mapping m;
    nesim_error err = {0};
    assert_ok(nesim_map(&caps, g, 2, &e, 1, &m, &err), &err);
    /* A on cores 0 (0,0) and 1 (1,0); B on core 2 (0,1) */
    assert_int_equal(m.place[0].first_core, 0);
    assert_int_equal(m.place[0].n_cores, 2);
    assert_int_equal(m.place[1].first_core, 2);
    assert_int_equal(m.place[1].n_cores, 1);
    assert_int_equal(m.cores, 3);
    assert_int_equal(m.chips, 1);
    /* neuron 0, 1 on core 0: 0 east-west + 1 north-south; neuron 2 on core 1: 1 + 1 */
    assert_int_equal(m.hops_ew[0][0], 0);
    assert_int_equal(m.hops_ns[0][0], 1);
    assert_int_equal(m.hops_ew[0][2], 1);
    assert_int_equal(m.hops_ns[0][2], 1);
    assert_int_equal(m.dest_cores[0][1], 1);
    assert_int_equal(m.max_hops, 2);
    assert_int_equal(m.routes, 2); /* core 0 -> 2, core 1 -> 2 */
    nesim_map_free(&m);
}

static void test_capacities(void **st)
{
    nesim_error err = {0};
    nesim_mapping m;
    /* synapse memory: 3 synapses x 8 bits = 3 B per neuron; 5 B per core -> 1 neuron per core */
    nesim_chip_caps caps = small_caps();
    caps.synapse_bytes_per_core = 5;
    nesim_map_group g[2] = {{.name = "A", .neurons = 3}, {.name = "B", .neurons = 2, .fan_in = 3, .weight_bits = 8}};
    assert_ok(nesim_map(&caps, g, 2, NULL, 0, &m, &err), &err);
    assert_int_equal(m.place[1].per_core, 1);
    assert_int_equal(m.place[1].n_cores, 2);
    nesim_map_free(&m);
    /* weights wider than the chip stores are stored at its width */
    caps.weight_bits_max = 4; /* 3 x 4 bits = 1.5 B -> 3 per core, capped by 2 neurons */
    g[1].weight_bits = 32;
    assert_ok(nesim_map(&caps, g, 2, NULL, 0, &m, &err), &err);
    assert_int_equal(m.place[1].per_core, 2);
    assert_close(m.place[1].weight_bits, 4, 0, 0);
    nesim_map_free(&m);
    /* one neuron larger than a core */
    caps = small_caps();
    caps.synapse_bytes_per_core = 2;
    g[1].weight_bits = 8;
    assert_int_equal(nesim_map(&caps, g, 2, NULL, 0, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "B: one neuron's 3 synapses"));
    /* fan-in over the limit: an error, or split into compartments */
    caps = small_caps();
    caps.fan_in_max = 2;
    caps.neurons_per_core = 4;
    assert_int_equal(nesim_map(&caps, g, 2, NULL, 0, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "B: fan-in of 3"));
    assert_non_null(strstr(err.msg, "limit of 2"));
    caps.split_fan_in = 1;
    assert_ok(nesim_map(&caps, g, 2, NULL, 0, &m, &err), &err);
    assert_int_equal(m.place[1].compartments, 2);
    assert_int_equal(m.place[1].per_core, 2); /* 4 slots / 2 compartments */
    nesim_map_free(&m);
    /* fan-out: B spans 2 cores, a neuron may reach 1 */
    caps = small_caps();
    caps.neurons_per_core = 1;
    caps.fan_out_max = 1;
    nesim_map_edge e = {.pre = 0, .post = 1, .dense = 1};
    assert_int_equal(nesim_map(&caps, g, 2, &e, 1, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "A -> B: a neuron must reach 2 cores"));
    /* many chips: 10 neurons on 5 cores over 2 chips; core 4 sits at x = 2 */
    caps = small_caps();
    nesim_map_group big = {.name = "C", .neurons = 10};
    assert_ok(nesim_map(&caps, &big, 1, NULL, 0, &m, &err), &err);
    assert_int_equal(m.cores, 5);
    assert_int_equal(m.chips, 2);
    uint64_t x, y;
    nesim_map_core_xy(&caps, 4, &x, &y);
    assert_int_equal(x, 2);
    assert_int_equal(y, 0);
    nesim_map_free(&m);
    /* chips in a 2 x 2 grid (chip_mesh): chip 3 sits at (1, 1), so its core 12
     * is at router (2, 2) of the 4 x 4 system mesh; 17 cores need 5 chips */
    caps.chip_mesh_x = caps.chip_mesh_y = 2;
    nesim_map_core_xy(&caps, 12, &x, &y);
    assert_int_equal(x, 2);
    assert_int_equal(y, 2);
    nesim_map_core_xy(&caps, 15, &x, &y);
    assert_int_equal(x, 3);
    assert_int_equal(y, 3);
    big.neurons = 34;
    assert_int_equal(nesim_map(&caps, &big, 1, NULL, 0, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "needs 5 chips; the largest system (chip_mesh) holds 2 x 2 = 4"));
    /* A -> B across chips: A on chip 0, B on chips 0..3. A spike from core 0
     * reaches B's cores 1..15 (B starts on a fresh core), crossing one chip
     * boundary into chips 1 and 2 and two into chip 3. */
    nesim_map_group ab[2] = {{.name = "A", .neurons = 2}, {.name = "B", .neurons = 30}};
    nesim_map_edge abe = {.pre = 0, .post = 1, .dense = 1};
    assert_ok(nesim_map(&caps, ab, 2, &abe, 1, &m, &err), &err);
    assert_int_equal(m.chips, 4);
    assert_int_equal(m.place[1].first_core, 1);
    /* cores 1..3 on chip 0 (0 crossings), 4..7 chip 1 (1 each), 8..11 chip 2
     * (1 each), 12..15 chip 3 (2 each): 4 + 4 + 8 */
    assert_int_equal(m.hops_chip[0][0], 16);
    assert_int_equal(m.hops_chip[0][1], 16);
    uint64_t ew = 0, ns = 0;
    for (uint64_t d = 1; d <= 15; d++) {
        nesim_map_core_xy(&caps, d, &x, &y);
        ew += x, ns += y; /* core 0 is at (0, 0) */
    }
    assert_int_equal(m.hops_ew[0][0], ew);
    assert_int_equal(m.hops_ns[0][0], ns);
    assert_int_equal(m.max_hops, 6);
    nesim_map_free(&m);
    /* four cores share a router: no hops between them */
    caps = small_caps();
    caps.cores_per_router = 4;
    caps.mesh_x = caps.mesh_y = 1;
    nesim_map_core_xy(&caps, 3, &x, &y);
    assert_int_equal(x + y, 0);
    nesim_map_core_xy(&caps, 5, &x, &y);
    assert_int_equal(x, 1);
}

static size_t own_index(void *user, uint64_t i, uint32_t *out, size_t cap)
{
    if (cap)
        out[0] = (uint32_t)i;
    return 1;
}

static void test_sparse_routes(void **st)
{
    nesim_chip_caps caps = small_caps();
    nesim_map_group g[2] = {{.name = "A", .neurons = 4}, {.name = "B", .neurons = 4, .fan_in = 1, .weight_bits = 8}};
    nesim_map_edge e = {.pre = 0, .post = 1, .dense = 0, .targets = own_index};
    nesim_mapping m;
    nesim_error err = {0};
    assert_ok(nesim_map(&caps, g, 2, &e, 1, &m, &err), &err);
    /* A: cores 0 (0,0), 1 (1,0); B: cores 2 (0,1), 3 (1,1). neuron i -> B neuron i */
    for (uint64_t i = 0; i < 4; i++) {
        assert_int_equal(m.dest_cores[0][i], 1);
        assert_int_equal(m.hops_ew[0][i], 0);
        assert_int_equal(m.hops_ns[0][i], 1);
    }
    assert_int_equal(m.routes, 2);
    nesim_map_free(&m);
}

/* Small populations share cores as one large population would (Loihi's
 * capacities: 1,024 slots, 128 KiB of synapses; 80 synapses of 32 bits per
 * neuron fill a core at 409 neurons): 4096 one-neuron groups take exactly
 * the cores of one 4096-neuron group, routes between groups on one core
 * are one routing-table entry, and the groups' owned cores sum to the total. */
static void test_packing_small_populations(void **st)
{
    nesim_error err = {0};
    nesim_chip_caps caps = {.neurons_per_core = 1024, .synapse_bytes_per_core = 131072, .cores_per_chip = 128,
                            .cores_per_router = 4, .mesh_x = 8, .mesh_y = 4, .weight_bits_max = 32, .pack = 1};
    enum { N = 4096 };
    nesim_map_group one = {.name = "all", .neurons = N, .fan_in = 80, .weight_bits = 32};
    nesim_mapping a, b;
    assert_ok(nesim_map(&caps, &one, 1, NULL, 0, &a, &err), &err);
    nesim_map_group *g = calloc(N, sizeof *g);
    for (int i = 0; i < N; i++)
        g[i] = (nesim_map_group){.name = "p", .neurons = 1, .fan_in = 80, .weight_bits = 32};
    nesim_map_edge e[2] = {{.pre = 0, .post = 1, .dense = 1}, {.pre = 2, .post = 3, .dense = 1}};
    assert_ok(nesim_map(&caps, g, N, e, 2, &b, &err), &err);
    assert_int_equal(a.cores, (N + 408) / 409);
    assert_int_equal(b.cores, a.cores);
    uint64_t owned = 0;
    for (int i = 0; i < N; i++)
        owned += b.place[i].owned_cores;
    assert_int_equal(owned, b.cores);
    assert_int_equal(b.place[408].first_core, 0);
    assert_int_equal(b.place[409].first_core, 1);
    assert_int_equal(b.place[409].owned_cores, 1);
    assert_int_equal(b.routes, 1); /* both edges run core 0 -> core 0: one entry */
    assert_int_equal(b.max_hops, 0);
    nesim_map_free(&a);
    nesim_map_free(&b);
    /* without packing every group opens a core: the artefact packing removes */
    caps.pack = 0;
    assert_ok(nesim_map(&caps, g, 64, NULL, 0, &b, &err), &err);
    assert_int_equal(b.cores, 64);
    nesim_map_free(&b);
    free(g);
}

static void test_energy_terms_by_hand(void **st)
{
    nesim_energy_params p = {.sop = 2, .update_active = 3, .update_idle = 1, .spike_out = 5,
                             .spike_core = 7, .hop_ew = 11, .hop_ns = 13, .hop_chip = 17,
                             .static_w_per_core = 0.5, .step_s = 0.1};
    nesim_dense_params d = {.int8_add = 0.03e-12, .int8_mult = 0.2e-12, .fp16_add = 0.4e-12, .fp16_mult = 1.1e-12,
                            .sram_size = {8192, 32768, 1048576}, .sram_read64 = {10e-12, 20e-12, 100e-12},
                            .dram_read64 = 1.3e-9};
    nesim_energy_input in = {.sops = 10, .membrane_updates = 3, .neurons = 4, .spikes_out = 2, .deliveries = 6,
                             .hops_ew = 1, .hops_ns = 2, .hops_chip = 3, .cores = 2, .dense_macs = 100};
    nesim_energy_layer out;
    nesim_energy_report rep;
    nesim_energy_compute(&p, &d, &in, 1, 10, 1e-3, 2, &out, &rep);
    assert_close(out.term[NESIM_E_SYNAPTIC], 20, 1e-15, 0);
    assert_close(out.term[NESIM_E_UPDATE], 9, 1e-15, 0);
    assert_close(out.term[NESIM_E_IDLE], 37, 1e-15, 0);         /* (4 x 10 - 3) x 1 */
    assert_close(out.term[NESIM_E_SPIKE_OUT], 10, 1e-15, 0);
    assert_close(out.term[NESIM_E_DELIVERY], 42, 1e-15, 0);
    assert_close(out.term[NESIM_E_ROUTING], 11 + 26 + 51, 1e-15, 0);
    assert_close(out.term[NESIM_E_STATIC], 2 * 0.5 * 10 * 0.1, 1e-15, 0); /* chip step, not model tick */
    assert_close(rep.total, 20 + 9 + 37 + 10 + 42 + 88 + 1, 1e-15, 0);
    assert_close(rep.per_sop, rep.total / 10, 1e-15, 0);
    assert_close(out.fp16_arith, 100 * 1.5e-12, 1e-12, 0);
    assert_close(out.int8_arith, 100 * 0.23e-12, 1e-12, 0);
    assert_close(nesim_mem_access_j(&d, 8192), 10e-12, 0, 0);
    assert_close(nesim_mem_access_j(&d, 8193), 20e-12, 0, 0);
    assert_close(nesim_mem_access_j(&d, 2e6), 1.3e-9, 0, 0);
}

/* SpikingBrain's own estimate, from the shipped 45 nm profile: 1.13 spikes
 * per channel x 0.03 pJ against 1.5 pJ and 0.23 pJ: 97.7 % and 85.2 % less. */
static void test_spikingbrain_special_case(void **st)
{
    nesim_error err = {0};
    nesim_chip *dense, *chip;
    assert_ok(nesim_chip_load("dense-45nm", NULL, &dense, &err), &err);
    assert_ok(nesim_chip_load("loihi", NULL, &chip, &err), &err);
    nesim_chip_caps caps;
    nesim_energy_params ep;
    nesim_dense_params dp;
    assert_ok(nesim_cost_params(chip, dense, &caps, &ep, &dp, &err), &err);
    double a, b;
    nesim_spikingbrain_estimate(&dp, 1.13, &a, &b);
    assert_close(a, 1 - 1.13 * 0.03 / 1.5, 1e-12, 0);
    assert_close(b, 1 - 1.13 * 0.03 / 0.23, 1e-12, 0);
    assert_true(fabs(100 * a - 97.7) < 0.05);
    assert_true(fabs(100 * b - 85.2) < 0.1);
    assert_close(ep.sop, 23.6e-12, 1e-12, 0);
    assert_close(ep.hop_ew, 3.0e-12, 1e-12, 0);
    assert_int_equal(caps.cores_per_chip, 128);
    /* a dense profile is not a chip to map on */
    assert_int_equal(nesim_cost_params(dense, dense, &caps, &ep, &dp, &err), NESIM_EINVAL);
    nesim_chip_free(dense);
    nesim_chip_free(chip);
}

/* NeuroBench's figures against hand counts, and nesim's own beside them: a
 * graded layer (MACs: its inputs are not all in {-1, 0, 1}) feeding a
 * ternary-coded layer (ACs). */
static void test_metrics_hand_counts(void **st)
{
    const char *json =
        "{\"nesim\":1,\"tick\":1e-3,\"input\":{\"shape\":[4]},\"layers\":["
        "{\"name\":\"a\",\"type\":\"linear\",\"coding\":\"none\",\"weight\":{\"file\":\"wa.npy\"}},"
        "{\"name\":\"b\",\"type\":\"linear\",\"coding\":\"ternary\",\"k\":1,\"weight\":{\"file\":\"wb.npy\"}}]}";
    nesim_error err = {0};
    char p[512];
    /* a: 3 x 4 with 2 zeros (column 0 has one, column 1 one); b: 2 x 3 with 1 zero (column 2) */
    float wa[12] = {1, 0, 2, 1, 0, 1, 1, 1, 1, 1, 1, 1}, wb[6] = {1, -1, 0, 2, 1, 1};
    int64_t sa[2] = {3, 4}, sb[2] = {2, 3};
    snprintf(p, sizeof p, "%s/wa.npy", test_tmpdir());
    assert_ok(nesim_npy_write(p, NESIM_F32, 2, sa, wa, &err), &err);
    snprintf(p, sizeof p, "%s/wb.npy", test_tmpdir());
    assert_ok(nesim_npy_write(p, NESIM_F32, 2, sb, wb, &err), &err);
    nesim_spec *spec;
    assert_ok(nesim_spec_parse(json, strlen(json), "m.json", test_tmpdir(), &spec, &err), &err);
    nesim_infer *m;
    assert_ok(nesim_infer_open(spec, &m, &err), &err);
    /* x = (1, 0, 2, 0): a's output = (5, 2, 3); b codes it with V_th = mean|.|/1 = 10/3:
     * counts round(1.5) = 2, round(0.6) = 1, round(0.9) = 1 -> 4 ternary spikes over T = 2 steps:
     * step 0 carries channels 0, 1, 2; step 1 channel 0 */
    float x[4] = {1, 0, 2, 0}, y[2];
    nesim_infer_report r;
    assert_ok(nesim_infer_run(m, x, 1, y, 0, &r, NULL, NULL, &err), &err);
    nesim_neurobench nb;
    nesim_own_metrics own;
    nesim_metrics_layers(&r, &nb, &own);
    /* NeuroBench: a's MACs are nonzero (input, weight) pairs: x0 reaches 2 nonzero
     * weights (column 0), x2 reaches 3 (column 2) */
    assert_close(nb.effective_macs, 2 + 3, 0, 0);
    /* b's ACs: spikes x nonzero weights of their column: 2 x 2 + 1 x 2 + 1 x 1 */
    assert_close(nb.effective_acs, 2 * 2 + 1 * 2 + 1 * 1, 0, 0);
    /* Dense: a is called once (12 pairs), b once per step (T = 2 steps of 6 pairs) */
    assert_close(nb.dense, 12 + 2 * 6, 0, 0);
    /* spiking outputs: b's coder, 3 channels x 2 steps, 4 of them spikes */
    assert_close(nb.activation_sparsity, 2.0 / 6, 1e-12, 0);
    /* b's two neurons at step 0; at step 1 channel 0 reaches both through nonzero weights */
    assert_close(nb.membrane_updates, 2 + 2, 0, 0);
    assert_close(nb.connection_sparsity, 3.0 / 18, 1e-12, 0);
    assert_close(nb.footprint_bytes, 18 * 4, 0, 0);
    assert_close(nb.samples, 1, 0, 0);
    /* nesim's own: SOPs count zero weights too (what a chip delivers) */
    assert_close(own.sops, 4 * 2, 0, 0);
    assert_close(own.graded_macs, 2 * 3, 0, 0); /* 2 nonzero inputs x 3 targets */
    assert_close(own.silent_fraction, 2.0 / 7, 1e-12, 0); /* 2 zero inputs of a, none of b */
    assert_close(own.dense_macs, 12 + 6, 0, 0);
    assert_int_equal(r.spikes, 4);
    /* per sample: two samples halve nothing but double the totals */
    float x2[8] = {1, 0, 2, 0, 1, 0, 2, 0}, y2[4];
    assert_ok(nesim_infer_run(m, x2, 2, y2, 0, &r, NULL, NULL, &err), &err);
    nesim_neurobench nb2;
    nesim_metrics_layers(&r, &nb2, &own);
    assert_close(nb2.effective_acs, nb.effective_acs, 0, 0);
    assert_close(nb2.dense, nb.dense, 0, 0);
    assert_close(own.sops, 2 * 4 * 2, 0, 0);
    assert_ok(nesim_infer_run(m, x, 1, y, 0, &r, NULL, NULL, &err), &err);
    /* y = W_b (N V_th) = (1*2 - 1*1 + 0, 2*2 + 1 + 1) * 10/3 */
    assert_close(y[0], 1 * 10.0 / 3, 1e-6, 0);
    assert_close(y[1], 6 * 10.0 / 3, 1e-6, 0);
    /* on the chip: everything fits one core of one chip; a graded MAC is priced as a SOP */
    nesim_chip *chip, *dense;
    assert_ok(nesim_chip_load("loihi", NULL, &chip, &err), &err);
    assert_ok(nesim_chip_load("dense-45nm", NULL, &dense, &err), &err);
    nesim_cost c;
    assert_ok(nesim_cost_layers(chip, dense, m, &r, 1e-3, &c, &err), &err);
    assert_int_equal(c.map.chips, 1);
    assert_close(c.energy.term[NESIM_E_SYNAPTIC], (6 + 8) * 23.6e-12, 1e-9, 0);
    /* updates: a's 3 neurons once (graded), b's 4 membrane updates */
    assert_close(c.energy.term[NESIM_E_UPDATE], (3 + 4) * 81e-12, 1e-9, 0);
    nesim_cost_free(&c);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_infer_close(m);
    nesim_spec_free(spec);
}

/* nesim run --chip, as a user meets it */
static void test_cli_chip(void **st)
{
    const char *bin = getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim";
    char cmd[1024], path[400];
    snprintf(path, sizeof path, "%s/out.json", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s run examples/digits/model.json --input examples/digits/test_inputs.npy --samples 20 "
             "--chip loihi --json --quiet > %s", bin, path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "r");
    char buf[1 << 15];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    const char *keys[] = {"\"energy\"", "\"total_j\"", "\"per_sop_j\"", "\"terms\"",
                          "\"dense_baselines\"", "\"chip_usage\"", "\"max_hops\"", "\"effective_acs\"", "\"neurobench\"",
                          "\"connection_sparsity\"", "\"footprint_bytes\"", "\"cores\""};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strstr(buf, keys[i]))
            fail_msg("no %s in %s", keys[i], buf);
    /* an unknown chip, a broken profile: one line, exit 2 */
    snprintf(cmd, sizeof cmd, "%s run examples/digits/model.json --input examples/digits/test_inputs.npy "
             "--chip nosuchchip 2>%s/err.txt", bin, test_tmpdir());
    int rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 2);
    snprintf(path, sizeof path, "%s/bad.json", test_tmpdir());
    f = fopen(path, "w");
    fputs("{\"nesim_chip\": 1, \"name\": \"bad\"", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s run examples/digits/model.json --input examples/digits/test_inputs.npy "
             "--chip %s 2>/dev/null", bin, path);
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_and_hops),  cmocka_unit_test(test_capacities),
        cmocka_unit_test(test_sparse_routes),       cmocka_unit_test(test_energy_terms_by_hand),
        cmocka_unit_test(test_spikingbrain_special_case), cmocka_unit_test(test_metrics_hand_counts),
        cmocka_unit_test(test_cli_chip),
        cmocka_unit_test(test_packing_small_populations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
