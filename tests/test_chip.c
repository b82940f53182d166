/* test_chip.c — chip profiles: the built-in files, their provenance, the
 * published numbers, lookup, listing, and every malformed profile.
 *
 * - Every built-in profile (every .json file in chips/) loads, and walking its JSON
 *   independently of the loader finds every number inside a quantity object
 *   with a non-empty "source" or "assumption".
 * - The Loihi, TrueNorth and Horowitz numbers equal the published ones
 *   exactly (same decimal literal, so the same double).
 * - Every file in tests/malformed/chips fails with NESIM_EINVAL and one line
 *   starting with its path; tests/malformed/chips_expected.txt lists each
 *   file with the start of its message.
 * Tests run from the repository root. */
#include "tests/support/check.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/roofline.h"
#include "net/chip.h"

#define CHIPS_DIR "chips"
#define MALFORMED_DIR "tests/malformed/chips"
#define EXPECTED_FILE "tests/malformed/chips_expected.txt"

static nesim_chip *load_ok(const char *name)
{
    nesim_chip *c = NULL;
    nesim_error err = {0};
    assert_ok(nesim_chip_load(name, CHIPS_DIR, &c, &err), &err);
    assert_non_null(c);
    return c;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- provenance: walk the JSON, independent of the loader ---------------- */

static int is_text(const json_t *o, const char *key)
{
    const json_t *s = json_object_get(o, key);
    return json_is_string(s) && json_string_value(s)[strspn(json_string_value(s), " \t\r\n")] != '\0';
}

/* Counts numbers under v; fails on a number that is not the "value" of an
 * object with a unit and a non-empty source or assumption. The only other
 * number allowed is the format version at the top level. */
static size_t walk(const char *file, const json_t *v, const json_t *parent, const char *key,
                   const json_t *root)
{
    size_t n = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) n += walk(file, x, v, k, root);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)v, i, x) n += walk(file, x, NULL, NULL, root);
    } else if (json_is_number(v)) {
        if (parent == root && strcmp(key, "nesim_chip") == 0)
            return 0;
        if (!key || strcmp(key, "value") != 0)
            fail_msg("%s: number under key '%s' is not a quantity's value", file, key ? key : "(array)");
        if (!is_text(parent, "source") && !is_text(parent, "assumption"))
            fail_msg("%s: a value (%g) has no non-empty source or assumption", file, json_number_value(v));
        if (!is_text(parent, "unit"))
            fail_msg("%s: a value (%g) has no unit", file, json_number_value(v));
        n = 1;
    }
    return n;
}

static void test_builtin_profiles_load_and_cite(void **st)
{
    (void)st;
    nesim_chip_entry *e;
    size_t n;
    nesim_error err = {0};
    assert_ok(nesim_chip_list(CHIPS_DIR, &e, &n, &err), &err);
    assert_true(n >= 3);
    int seen[3] = {0};
    const char *want[3] = {"dense-45nm", "loihi", "truenorth"};
    for (size_t i = 0; i < n; i++) {
        if (!e[i].chip)
            fail_msg("%s does not load: %s", e[i].path, e[i].error.msg);
        const nesim_chip *c = e[i].chip;
        assert_string_equal(c->name, e[i].name);
        assert_true(strlen(c->description) > 10);
        assert_true(c->n_refs >= 1);
        for (size_t k = 0; k < 3; k++)
            seen[k] |= strcmp(c->name, want[k]) == 0;
        if (i)
            assert_true(strcmp(e[i - 1].name, e[i].name) < 0); /* sorted */

        /* Independent walk of the file. */
        json_error_t je;
        json_t *root = json_load_file(e[i].path, 0, &je);
        if (!root)
            fail_msg("%s: %s", e[i].path, je.text);
        size_t numbers = walk(e[i].path, root, NULL, NULL, root);
        json_decref(root);
        /* The loader recorded the same numbers, each with its provenance. */
        assert_int_equal(numbers, c->n_values);
        for (size_t k = 0; k < c->n_values; k++) {
            const nesim_chip_value *v = &c->values[k];
            assert_true((v->source != NULL) != (v->assumption != NULL));
            assert_non_null(v->unit);
            assert_ptr_equal(nesim_chip_find(c, v->path), v);
        }
    }
    for (size_t k = 0; k < 3; k++)
        if (!seen[k])
            fail_msg("built-in profile %s missing from %s", want[k], CHIPS_DIR);
    nesim_chip_list_free(e, n);
}

/* ---- published numbers ---------------------------------------------------- */

static void test_loihi_numbers_are_the_published_ones(void **st)
{
    (void)st;
    nesim_chip *c = load_ok("loihi");
    const nesim_chip_params *p = &c->p;
    assert_int_equal(c->kind, NESIM_CHIP_NEUROMORPHIC);
    /* Davies et al. 2018, IEEE Micro 38(1), Table 2 — exact. */
    assert_true(p->energy.synaptic_op == 23.6e-12);
    assert_true(p->energy.neuron_update_active == 81e-12);
    assert_true(p->energy.neuron_update_idle == 52e-12);
    assert_true(p->energy.spike_within_core == 1.7e-12);
    assert_true(p->energy.hop_ew == 3.0e-12);
    assert_true(p->energy.hop_ns == 4.0e-12);
    assert_true(p->process_nm == 14);
    assert_int_equal(p->cores_per_chip, 128);
    assert_int_equal(p->neurons_per_core, 1024);
    assert_int_equal(p->synapse_memory_bytes_per_core, 128 * 1024);
    assert_int_equal(p->fan_in_max, 4096);
    assert_int_equal(p->weight_bits_max, 8);
    assert_int_equal((uint64_t)p->mesh_x * p->mesh_y * p->cores_per_router, 128);
    /* Latencies: SANA-FE's arch/loihi.yaml, exact; the sync table ascending. */
    const nesim_chip_latency *L = &p->latency;
    assert_true(p->has_latency);
    assert_true(L->syn_dense == 3.8e-9 && L->syn_sparse == 4.7e-9 && L->syn_conv == 3.1e-9);
    assert_true(L->neuron_access == 6.0e-9 && L->neuron_update == 3.7e-9 && L->spike_out == 30.0e-9);
    assert_true(L->message_out == 5.1e-9 && L->message_in == 16.0e-9);
    assert_true(L->hop_ew == 4.1e-9 && L->hop_ns == 6.5e-9);
    assert_int_equal(L->link_buffer, 16);
    assert_int_equal(L->n_sync, 4);
    const uint32_t keys[4] = {1, 2, 4, 29};
    const double sync[4] = {0.6e-6, 1.0e-6, 1.4e-6, 1.8e-6};
    for (int k = 0; k < 4; k++)
        assert_true(L->sync_routers[k] == keys[k] && L->sync_s[k] == sync[k]);
    assert_non_null(strstr(nesim_chip_find(c, "latency.sync.29")->source, "SANA-FE arch/loihi.yaml"));
    /* SANA-FE's calibrated energies, beside Table 2's */
    nesim_chip *sf = load_ok("loihi-sanafe");
    assert_true(sf->p.energy.synaptic_op == 33.6e-12);
    assert_true(sf->p.energy.neuron_update_idle == 51.2e-12);
    assert_true(fabs(sf->p.energy.neuron_update_active - 72.8e-12) < 1e-24);
    assert_true(sf->p.energy.spike_out == 69.3e-12 && sf->p.energy.spike_within_core == 111e-12);
    assert_true(sf->p.energy.hop_ew == 3.0e-12 && sf->p.energy.hop_ns == 4.2e-12);
    assert_true(memcmp(&sf->p.latency, L, sizeof *L) == 0);
    nesim_chip_free(sf);
    /* Sources name the table. */
    const nesim_chip_value *v = nesim_chip_find(c, "energy.synaptic_op");
    assert_non_null(v);
    assert_non_null(v->source);
    assert_non_null(strstr(v->source, "Davies et al. 2018, Table 2"));
    assert_string_equal(v->unit, "J");
    assert_null(nesim_chip_find(c, "energy.no_such"));
    char buf[300];
    v = nesim_chip_find(c, "static_power_per_chip");
    assert_non_null(v);
    assert_non_null(v->assumption);
    assert_true(strncmp(nesim_chip_provenance(v, buf, sizeof buf), "assumption: ", 12) == 0);
    /* Derived values. */
    assert_int_equal(c->d.neurons_per_chip, 131072);
    assert_int_equal(c->d.synapse_memory_bytes_per_chip, UINT64_C(128) * 131072);
    assert_int_equal(c->d.synapses_per_core_at_max_bits, 131072);
    assert_int_equal(c->d.routers_per_chip, 32);
    assert_int_equal(c->d.max_chips, 16384);
    assert_int_equal(c->d.max_cores, UINT64_C(16384) * 128);
    nesim_chip_free(c);
}

static void test_truenorth_numbers(void **st)
{
    (void)st;
    nesim_chip *c = load_ok("truenorth");
    const nesim_chip_params *p = &c->p;
    assert_true(p->energy.synaptic_op == 26e-12);
    assert_int_equal(p->cores_per_chip, 4096);
    assert_int_equal(p->neurons_per_core, 256);
    assert_int_equal(p->fan_in_max, 256);
    assert_int_equal(p->fan_out_max, 1);
    assert_int_equal(p->weight_bits_max, 1);
    assert_int_equal(p->synapse_memory_bytes_per_core, 256 * 256 / 8);
    assert_int_equal(p->mesh_x, 64);
    assert_int_equal(p->mesh_y, 64);
    assert_true(p->process_nm == 28);
    assert_true(p->tick_s == 1e-3);
    assert_int_equal(c->d.neurons_per_chip, 1048576);
    assert_int_equal(c->d.synapses_per_core_at_max_bits, 65536);
    assert_non_null(strstr(nesim_chip_find(c, "energy.synaptic_op")->source, "Merolla et al. 2014"));
    nesim_chip_free(c);
}

static void test_dense_baseline(void **st)
{
    (void)st;
    nesim_chip *c = load_ok("dense-45nm");
    nesim_error err = {0};
    double j, lo, hi;
    assert_int_equal(c->kind, NESIM_CHIP_DENSE);
    assert_true(c->dense.process_nm == 45);
    assert_int_equal(c->dense.word_bits, 64);
    /* Horowitz, ISSCC 2014 — exact. */
    struct { const char *dt; double add, mult; } h[] = {
        {"int8", 0.03e-12, 0.2e-12}, {"int32", 0.1e-12, 3.1e-12},
        {"fp16", 0.4e-12, 1.1e-12},  {"fp32", 0.9e-12, 3.7e-12}};
    for (size_t i = 0; i < 4; i++) {
        assert_ok(nesim_chip_dense_op(c, h[i].dt, NESIM_OP_ADD, &j, &err), &err);
        assert_true(j == h[i].add);
        assert_ok(nesim_chip_dense_op(c, h[i].dt, NESIM_OP_MULT, &j, &err), &err);
        assert_true(j == h[i].mult);
    }
    /* The MACs SpikingBrain quotes: FP16 1.5 pJ, INT8 0.23 pJ. */
    assert_ok(nesim_chip_dense_op(c, "fp16", NESIM_OP_MAC, &j, &err), &err);
    assert_close(j, 1.5e-12, 1e-12, 0);
    assert_ok(nesim_chip_dense_op(c, "int8", NESIM_OP_MAC, &j, &err), &err);
    assert_close(j, 0.23e-12, 1e-12, 0);
    assert_int_equal(nesim_chip_dtype_of_tensor(NESIM_F16), nesim_chip_dtype_index("fp16"));
    assert_int_equal(nesim_chip_dtype_of_tensor(NESIM_I8), nesim_chip_dtype_index("int8"));
    assert_int_equal(nesim_chip_dtype_of_tensor(NESIM_F64), -1);
    assert_string_equal(nesim_chip_dtype_name(nesim_chip_dtype_index("bf16")), "bf16");

    /* Not priced: bf16; unknown names. */
    assert_int_equal(nesim_chip_dense_op(c, "bf16", NESIM_OP_ADD, &j, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "no arithmetic energies for dtype 'bf16' (it has int8, int32, fp16, fp32)"));
    assert_int_equal(nesim_chip_dense_op(c, "fp8", NESIM_OP_ADD, &j, &err), NESIM_EINVAL);

    /* SRAM by size: the smallest listed memory that holds the data. */
    uint64_t cap;
    assert_ok(nesim_chip_sram_read(c, 1, &j, &cap, &err), &err);
    assert_true(j == 10e-12);
    assert_int_equal(cap, 8192);
    assert_ok(nesim_chip_sram_read(c, 8192, &j, &cap, &err), &err);
    assert_true(j == 10e-12);
    assert_ok(nesim_chip_sram_read(c, 8193, &j, &cap, &err), &err);
    assert_true(j == 20e-12);
    assert_int_equal(cap, 32768);
    assert_ok(nesim_chip_sram_read(c, 1048576, &j, NULL, &err), &err);
    assert_true(j == 100e-12);
    assert_int_equal(nesim_chip_sram_read(c, 1048577, &j, &cap, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "exceed the largest SRAM"));
    assert_ok(nesim_chip_dram_access(c, &lo, &hi, &err), &err);
    assert_true(lo == 1.3e-9 && hi == 2.6e-9);

    /* Dense accessors refuse a neuromorphic profile. */
    nesim_chip *l = load_ok("loihi");
    assert_int_equal(nesim_chip_dense_op(l, "int8", NESIM_OP_ADD, &j, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "chip 'loihi' is neuromorphic, not a dense baseline"));
    assert_int_equal(nesim_chip_sram_read(l, 1, &j, NULL, &err), NESIM_EINVAL);
    assert_int_equal(nesim_chip_dram_access(l, &lo, &hi, &err), NESIM_EINVAL);
    nesim_chip_free(l);
    nesim_chip_free(c);
}

/* ---- lookup ------------------------------------------------------------- */

static void test_name_and_path_lookup(void **st)
{
    (void)st;
    nesim_chip *c = NULL;
    nesim_error err = {0};
    assert_ok(nesim_chip_load("chips/loihi.json", NULL, &c, &err), &err); /* a path: '/' */
    assert_string_equal(c->file, "chips/loihi.json");
    nesim_chip_free(c);
    assert_ok(nesim_chip_load("chips/truenorth.json", "/nonexistent", &c, &err), &err);
    nesim_chip_free(c);

    /* Unknown name: lists what exists. */
    c = (nesim_chip *)1;
    assert_int_equal(nesim_chip_load("loihy", CHIPS_DIR, &c, &err), NESIM_EINVAL);
    assert_null(c);
    assert_string_equal(err.msg, "unknown chip 'loihy' (chips in chips: a100-sxm, dense-45nm, loihi, loihi-sanafe, metax-c550, speck, truenorth)");
    assert_int_equal(nesim_chip_load("loihi", "/nonexistent/dir", &c, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "unknown chip 'loihi': /nonexistent/dir: cannot read the chips directory"));
    assert_int_equal(nesim_chip_load("lo ihi", CHIPS_DIR, &c, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "chip 'lo ihi': not a chip name"));
    assert_int_equal(nesim_chip_load("", CHIPS_DIR, &c, &err), NESIM_EINVAL);
    assert_int_equal(nesim_chip_load("missing.json", CHIPS_DIR, &c, &err), NESIM_EINVAL); /* a path */
    assert_non_null(strstr(err.msg, "missing.json: cannot open"));
    assert_int_equal(nesim_chip_load("chips", CHIPS_DIR, &c, &err), NESIM_EINVAL);
    assert_int_equal(nesim_chip_load("chips/", CHIPS_DIR, &c, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "chips/: not a regular file"));
}

static void test_default_dir(void **st)
{
    (void)st;
    const char *saved = getenv("NESIM_CHIPS");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("NESIM_CHIPS", "/somewhere/chips", 1);
    assert_string_equal(nesim_chip_default_dir(), "/somewhere/chips");
    setenv("NESIM_CHIPS", "", 1); /* empty counts as unset */
    const char *d = nesim_chip_default_dir();
#ifdef NESIM_CHIPS_DIR
    assert_true(d[0] != '"' && d[strlen(d) - 1] != '"');
    assert_non_null(strstr(d, "chips"));
#else
    assert_string_equal(d, "chips");
#endif
    /* A name resolves in the default dir: NESIM_CHIPS pointing at ours. */
    setenv("NESIM_CHIPS", CHIPS_DIR, 1);
    nesim_chip *c = NULL;
    nesim_error err = {0};
    assert_ok(nesim_chip_load("truenorth", NULL, &c, &err), &err);
    assert_string_equal(c->file, "chips/truenorth.json");
    nesim_chip_free(c);
    if (keep) {
        setenv("NESIM_CHIPS", keep, 1);
        free(keep);
    } else {
        unsetenv("NESIM_CHIPS");
    }
}

/* A user copies a profile to write a new chip. */
static void test_copy_to_new_chip(void **st)
{
    (void)st;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/userchips", test_tmpdir());
    mkdir(dir, 0700);
    char *text = test_read_file("chips/loihi.json", NULL);
    snprintf(path, sizeof path, "%s/mychip.json", dir);
    write_file(path, text);

    /* Forgot to rename: the error says so. */
    nesim_chip *c = NULL;
    nesim_error err = {0};
    assert_int_equal(nesim_chip_load("mychip", dir, &c, &err), NESIM_EINVAL);
    char want[800];
    snprintf(want, sizeof want,
             "%s: name: 'loihi' differs from the file name 'mychip' (a profile is chosen by its file "
             "name: make them equal)",
             path);
    assert_string_equal(err.msg, want);

    /* Renamed, static power per core: derived per-chip power follows. */
    char *s = strstr(text, "\"name\": \"loihi\"");
    assert_non_null(s);
    size_t pre = (size_t)(s - text);
    char *t2 = malloc(strlen(text) + 64);
    assert_non_null(t2);
    snprintf(t2, strlen(text) + 64, "%.*s\"name\": \"mychip\"%s", (int)pre, text,
             s + strlen("\"name\": \"loihi\""));
    char *sp = strstr(t2, "\"static_power_per_chip\": {\"value\": 0,");
    assert_non_null(sp);
    /* same length: "per_chip" -> "per_core", 0 W -> 2 W */
    memcpy(sp, "\"static_power_per_core\": {\"value\": 2,", strlen("\"static_power_per_core\": {\"value\": 2,"));
    write_file(path, t2);
    assert_int_equal(nesim_chip_load("mychip", dir, &c, &err), NESIM_OK);
    assert_true(c->p.static_power_per_core);
    assert_true(c->p.static_power_w == 2);
    assert_true(c->d.static_power_per_core_w == 2);
    assert_true(c->d.static_power_per_chip_w == 256);
    assert_close(c->d.static_energy_per_core_tick_j, 2e-3, 1e-12, 0);
    nesim_chip_free(c);

    /* Listing: a bad file does not hide the good ones. */
    snprintf(path, sizeof path, "%s/broken.json", dir);
    write_file(path, "{\"nesim_chip\": 1,");
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    write_file(path, "not a profile");
    nesim_chip_entry *e;
    size_t n;
    assert_ok(nesim_chip_list(dir, &e, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].name, "broken");
    assert_null(e[0].chip);
    assert_int_equal(e[0].error.code, NESIM_EINVAL);
    assert_non_null(strstr(e[0].error.msg, "broken.json:1:"));
    assert_string_equal(e[1].name, "mychip");
    assert_non_null(e[1].chip);
    nesim_chip_list_free(e, n);
    assert_int_equal(nesim_chip_list("/nonexistent/dir", &e, &n, &err), NESIM_EINVAL);
    free(t2);
    free(text);
}

/* ---- messages ----------------------------------------------------------- */

static void expect_parse(const char *json, const char *msg)
{
    nesim_chip *c = (nesim_chip *)1;
    nesim_error err = {0};
    int rc = nesim_chip_parse(json, strlen(json), "x.json", NULL, &c, &err);
    if (rc != NESIM_EINVAL)
        fail_msg("expected NESIM_EINVAL for %s, got %d", json, rc);
    assert_null(c);
    assert_string_equal(err.msg, msg);
}

static void test_exact_messages(void **st)
{
    (void)st;
    expect_parse("{\"kind\": \"dense\", \"nesim_chip\": 1.0}", "x.json: nesim_chip: expected an integer, got a real");
    expect_parse("{\"kind\": 3}", "x.json: kind: expected a string, got an integer");
    expect_parse("{\"kind\": \"dense\", \"nesim_chip\": 1, \"name\": \"a/b\"}",
                 "x.json: name: 'a/b' is not a valid chip name (letters, digits, '.', '_', '-'; not starting "
                 "with '.'; at most 63 bytes)");
    expect_parse("{\"kind\": \"dense\", \"nesim_chip\": 1, \"name\": \"d\", \"description\": \"\"}",
                 "x.json: description: must not be empty");
    expect_parse("{\"kind\": \"dense\", \"nesim_chip\": 1, \"name\": \"d\", \"description\": \"x\", "
                 "\"references\": [{\"key\": \"K\"}]}",
                 "x.json: references[0].cite: required key missing");
    expect_parse("{\"kind\": \"dense\", \"nesim_chip\": 1, \"name\": \"d\", \"description\": \"x\", "
                 "\"references\": [{\"key\": \"K\", \"cite\": \"c\"}], "
                 "\"process_nm\": {\"value\": 45, \"unit\": \"nm\", \"source\": \"K\", \"note\": 3}}",
                 "x.json: process_nm.note: expected a string, got an integer");
    expect_parse("{\"kind\": \"dense\", \"nesim_chip\": 1, \"name\": \"d\", \"description\": \"x\", "
                 "\"references\": [{\"key\": \"K\", \"cite\": \"c\"}], "
                 "\"process_nm\": {\"value\": 45, \"unit\": \"nm\", \"source\": \"Kx\"}}",
                 "x.json: process_nm.source: 'Kx' does not begin with a reference key ('K')");
    /* Control bytes and quotes in user strings stay on one line. */
    expect_parse("{\"kind\": \"ana\\nlog'\"}",
                 "x.json: kind: unknown kind 'ana\\x0alog\\x27' (expected neuromorphic, dense, gpu)");
    expect_parse("{\"kind\": \"dense\",\n\"kind\": \"dense\"}", "x.json:2:6: duplicate object key near '\"kind\"'");
    /* A buffer without a name for errors. */
    nesim_chip *c;
    nesim_error err = {0};
    assert_int_equal(nesim_chip_parse(NULL, 0, NULL, NULL, &c, &err), NESIM_EINVAL);
    assert_string_equal(err.msg, "<chip>:1:0: '[' or '{' expected near end of file");
    /* Parsing a built-in from memory without a file-name check works. */
    char *text = test_read_file("chips/dense-45nm.json", NULL);
    assert_ok(nesim_chip_parse(text, strlen(text), "mem", NULL, &c, &err), &err);
    assert_string_equal(c->file, "mem");
    nesim_chip_free(c);
    assert_int_equal(nesim_chip_parse(text, strlen(text), "mem", "other", &c, &err), NESIM_EINVAL);
    free(text);
    assert_string_equal(nesim_chip_kind_name(NESIM_CHIP_DENSE), "dense");
    assert_string_equal(nesim_chip_kind_name((nesim_chip_kind)7), "?");
}

/* ---- malformed profiles -------------------------------------------------- */

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

static void test_malformed_profiles(void **st)
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
        nesim_chip *c = (nesim_chip *)1;
        nesim_error err = {0};
        int rc = nesim_chip_load(path, NULL, &c, &err);
        if (rc != NESIM_EINVAL)
            fail_msg("%s: expected NESIM_EINVAL, got %d (%s)", path, rc, rc ? err.msg : "accepted");
        assert_null(c);
        size_t pl = strlen(path);
        if (strncmp(err.msg, path, pl) != 0 || err.msg[pl] != ':')
            fail_msg("%s: message does not start with the file name: %s", path, err.msg);
        if (strchr(err.msg, '\n'))
            fail_msg("%s: message is not one line: %s", path, err.msg);
        int listed = 0;
        for (size_t i = 0; i < n_ex; i++)
            if (strcmp(ex[i].name, de->d_name) == 0) {
                ex[i].seen = listed = 1;
                if (strncmp(err.msg + pl, ex[i].rest, strlen(ex[i].rest)) != 0)
                    fail_msg("%s: got '%s', want '%s%s...'", path, err.msg, path, ex[i].rest);
            }
        if (!listed)
            fail_msg("%s is not listed in %s (message: %s)", path, EXPECTED_FILE, err.msg);
        n_files++;
    }
    closedir(d);
    for (size_t i = 0; i < n_ex; i++)
        if (!ex[i].seen)
            fail_msg("%s lists %s, which is missing", EXPECTED_FILE, ex[i].name);
    assert_true(n_files >= 40);
}

/* GPU boards: the roofline by hand on A100's datasheet numbers, and bad profiles. */
static void test_gpu_roofline(void **st)
{
    nesim_error err = {0};
    nesim_chip *a = load_ok("a100-sxm");
    assert_int_equal(a->kind, NESIM_CHIP_GPU);
    assert_string_equal(nesim_chip_kind_name(a->kind), "gpu");
    assert_true(a->gpu.peak_ops[nesim_chip_dtype_index("bf16")] == 312e12);
    assert_true(a->gpu.bandwidth == 2.039e12 && a->gpu.power_w == 400);
    nesim_roofline r;
    /* 1e9 MACs over 1 MB: 2e9 / (312e12 x 0.5) = 12.82 us of compute, 1e6 / (2.039e12 x 0.8) = 0.61 us of memory */
    assert_ok(nesim_roofline_of(a, "bf16", 1e9, 1e6, "token", &r, &err), &err);
    assert_close(r.compute_s, 2e9 / (312e12 * 0.5), 1e-12, 0);
    assert_close(r.memory_s, 1e6 / (2.039e12 * 0.8), 1e-12, 0);
    assert_false(r.memory_bound);
    assert_close(r.time_s, r.compute_s, 0, 0);
    assert_close(r.energy_j, 400 * 2e9 / (312e12 * 0.5), 1e-12, 0);
    /* batch-1 decoding: two bytes per MAC, far below the ridge: memory-bound */
    assert_ok(nesim_roofline_of(a, "bf16", 1e6, 2e6, "token", &r, &err), &err);
    assert_true(r.memory_bound);
    assert_close(r.energy_j, 400 * 2e6 / (2.039e12 * 0.8), 1e-12, 0);
    nesim_chip *m = load_ok("metax-c550");
    assert_int_equal(nesim_roofline_of(m, "fp32", 1, 1, "x", &r, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "metax-c550 has no peak for fp32"));
    assert_non_null(nesim_chip_find(m, "peak_ops.bf16")->assumption); /* not published: said so */
    assert_non_null(nesim_chip_find(m, "memory_bytes")->source);
    nesim_chip *d = load_ok("dense-45nm");
    assert_int_equal(nesim_roofline_of(d, "bf16", 1, 1, "x", &r, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "not a GPU"));
    assert_int_equal(nesim_roofline_of(a, "bf16", -1, 1, "x", &r, &err), NESIM_EINVAL);
    nesim_chip **list;
    size_t n;
    assert_ok(nesim_gpu_list_load("a100-sxm,metax-c550", &list, &n, &err), &err);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        nesim_chip_free(list[i]);
    free(list);
    assert_int_equal(nesim_gpu_list_load("a100-sxm,loihi", &list, &n, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "--gpu loihi: a neuromorphic profile, not a GPU"));
    /* a profile without bf16, or with a utilisation above 1, names the key */
    char *text = test_read_file("chips/a100-sxm.json", NULL);
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    json_object_del(json_object_get(j, "peak_ops"), "bf16");
    char *t2 = json_dumps(j, 0);
    nesim_chip *c = NULL;
    assert_int_equal(nesim_chip_parse(t2, strlen(t2), "g.json", "a100-sxm", &c, &err), NESIM_EINVAL);
    assert_string_equal(err.msg, "g.json: peak_ops: bf16 is required (the dtype language models run in)");
    free(t2);
    json_decref(j);
    j = json_loads(text, 0, &je);
    json_object_set_new(json_object_get(json_object_get(j, "utilisation"), "memory"), "value", json_real(1.5));
    t2 = json_dumps(j, 0);
    assert_int_equal(nesim_chip_parse(t2, strlen(t2), "g.json", "a100-sxm", &c, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "g.json: utilisation.memory.value: 1.5 fraction is implausible"));
    free(t2);
    json_decref(j);
    free(text);
    nesim_chip_free(a);
    nesim_chip_free(m);
    nesim_chip_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_profiles_load_and_cite),
        cmocka_unit_test(test_loihi_numbers_are_the_published_ones),
        cmocka_unit_test(test_gpu_roofline),
        cmocka_unit_test(test_truenorth_numbers),
        cmocka_unit_test(test_dense_baseline),
        cmocka_unit_test(test_name_and_path_lookup),
        cmocka_unit_test(test_default_dir),
        cmocka_unit_test(test_copy_to_new_chip),
        cmocka_unit_test(test_exact_messages),
        cmocka_unit_test(test_malformed_profiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
