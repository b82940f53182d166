/* test_regress.c — one test per defect the redesign (issue 9) found, each
 * failing on the code before it:
 * - a spec with more than 256 layers (a stack buffer of 256 names in the
 *   CLI), and a fixed-threshold chain longer than the old S[64] cap;
 * - --json printed by hand: a name holding '"' gave invalid JSON and a short
 *   network run printed nan for isi_cv;
 * - .npy in Fortran order and int64/bool files refused (numpy's default
 *   integer for labels);
 * - a NaN weight named the spec and layer but not the weight file. */
#include "tests/support/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "jobs/run.h"
#include "net/tensor.h"
#include "sim/coded.h"

static const char *bin(void) { return getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim"; }

static char *tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs `nesim <args>`; stdout parsed as JSON into *out (NULL if not JSON). */
static int run_json(const char *args, json_t **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", bin(), args, tmp("stderr.txt"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t je;
    *out = json_loadf(p, 0, &je);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A Fortran-order .npy of the C-order tensor t (2-D), as numpy writes
 * np.asfortranarray(a). */
static void write_fortran(const char *path, const nesim_tensor *t)
{
    assert_int_equal(t->ndim, 2);
    const char *descr = t->dtype == NESIM_F32 ? "<f4" : t->dtype == NESIM_F64 ? "<f8" : NULL;
    assert_non_null(descr);
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': True, 'shape': (%lld, %lld), }",
                     descr, (long long)t->shape[0], (long long)t->shape[1]);
    size_t total = ((size_t)n + 10 + 1 + 63) / 64 * 64, hlen = total - 10;
    memset(hdr + n, ' ', hlen - 1 - (size_t)n);
    hdr[hlen - 1] = '\n';
    size_t sz = nesim_dtype_size(t->dtype), R = (size_t)t->shape[0], C = (size_t)t->shape[1];
    unsigned char *f = malloc(t->nbytes);
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++)
            memcpy(f + (i + j * R) * sz, (const unsigned char *)t->data + (i * C + j) * sz, sz);
    FILE *o = fopen(path, "wb");
    assert_non_null(o);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, 10, o);
    fwrite(hdr, 1, hlen, o);
    fwrite(f, 1, t->nbytes, o);
    fclose(o);
    free(f);
}

static json_t *run_spec(const nesim_run_opts *o)
{
    nesim_error err = {0};
    json_t *r = NULL;
    assert_ok(nesim_run_spec(o, &r, &err), &err);
    return r;
}

static double num(json_t *r, const char *a, const char *b)
{
    json_t *v = json_object_get(r, a);
    if (b)
        v = json_object_get(v, b);
    if (!json_is_number(v))
        fail_msg("report has no number %s%s%s", a, b ? "." : "", b ? b : "");
    return json_number_value(v);
}

/* The digits model with Fortran-order inputs and first-layer weights and
 * int64 labels gives the same spikes and accuracy as the C-order files. */
static void test_fortran_order_and_int64_labels(void **st)
{
    nesim_error err = {0};
    const char *d = test_tmpdir();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/m && cp examples/digits/*.npy examples/digits/model.json %s/m/", d, d);
    assert_int_equal(system(cmd), 0);
    nesim_tensor t;
    assert_ok(nesim_npy_load("examples/digits/fc1.weight.npy", &t, &err), &err);
    write_fortran(tmp("m/fc1.weight.npy"), &t);
    nesim_tensor_release(&t);
    assert_ok(nesim_npy_load("examples/digits/test_inputs.npy", &t, &err), &err);
    write_fortran(tmp("inputs_f.npy"), &t);
    nesim_tensor_release(&t);
    assert_ok(nesim_npy_load("examples/digits/test_labels.npy", &t, &err), &err);
    int64_t *lab = malloc(t.count * sizeof *lab);
    for (size_t i = 0; i < t.count; i++)
        lab[i] = (int64_t)nesim_tensor_get(&t, i);
    int64_t n = (int64_t)t.count;
    assert_ok(nesim_npy_write(tmp("labels_i64.npy"), NESIM_I64, 1, &n, lab, &err), &err);
    nesim_tensor_release(&t);
    free(lab);

    nesim_run_opts a = {.spec = "examples/digits/model.json", .input = "examples/digits/test_inputs.npy",
                        .labels = "examples/digits/test_labels.npy", .samples = 40};
    nesim_run_opts b = {.spec = tmp("m/model.json"), .input = tmp("inputs_f.npy"), .labels = tmp("labels_i64.npy"),
                        .samples = 40};
    json_t *ra = run_spec(&a), *rb = run_spec(&b);
    assert_string_equal(json_string_value(json_object_get(ra, "spike_checksum")),
                        json_string_value(json_object_get(rb, "spike_checksum")));
    assert_true(num(ra, "accuracy", "spiking") == num(rb, "accuracy", "spiking"));
    assert_true(num(ra, "accuracy", "ann") == num(rb, "accuracy", "ann"));
    assert_true(num(ra, "accuracy", "spiking") > 0.9);
    json_decref(ra);
    json_decref(rb);

    /* a Fortran-order view handed to a layer directly is refused, not misread */
    nesim_tensor fv;
    assert_ok(nesim_npy_load(tmp("m/fc1.weight.npy"), &fv, &err), &err); /* transposed on load */
    assert_false(fv.fortran);
    nesim_tensor_release(&fv);
    FILE *ff = fopen(tmp("m/fc1.weight.npy"), "rb");
    static unsigned char img[1 << 16];
    size_t len = fread(img, 1, sizeof img, ff);
    fclose(ff);
    assert_ok(nesim_npy_parse(img, len, "fc1", &fv, &err), &err);
    assert_true(fv.fortran);
    nesim_coded_linear L;
    assert_int_equal(nesim_coded_linear_init(&L, "fc1", &fv, NULL, 0, NULL, 0, 0, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "Fortran-order"));

    /* a label that is no class index is an error naming it */
    float bad[3] = {1, 2.5f, 3};
    n = 3;
    assert_ok(nesim_npy_write(tmp("labels_bad.npy"), NESIM_F32, 1, &n, bad, &err), &err);
    nesim_run_opts c = {.spec = "examples/digits/model.json", .input = "examples/digits/test_inputs.npy",
                        .labels = tmp("labels_bad.npy"), .samples = 3};
    json_t *rc = NULL;
    assert_int_equal(nesim_run_spec(&c, &rc, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "labels_bad.npy: label 1 is 2.5, not a class index 0..9"));
}

/* 300 ternary layers with a fixed threshold: one chain (sim/stream.h) of 300
 * layers, over the old caps of 64 chained and 256 named layers. Identity
 * weights pass integer inputs through unchanged, so the output equals the
 * input and every layer emits |3| + |-2| + |0| + |5| = 10 spikes. */
static void test_three_hundred_layers(void **st)
{
    enum { L = 300 };
    nesim_error err = {0};
    float eye[16] = {0}, x[4] = {3, -2, 0, 5};
    for (int i = 0; i < 4; i++)
        eye[i * 5] = 1;
    const int64_t ws[2] = {4, 4}, xs[2] = {1, 4};
    assert_ok(nesim_npy_write(tmp("eye.npy"), NESIM_F32, 2, ws, eye, &err), &err);
    assert_ok(nesim_npy_write(tmp("x.npy"), NESIM_F32, 2, xs, x, &err), &err);
    json_t *spec = json_pack("{s:i, s:s, s:f, s:i, s:{s:[i]}, s:[]}", "nesim", 1, "name", "deep", "tick", 1e-3,
                             "seed", 1, "input", "shape", 4, "layers");
    json_t *layers = json_object_get(spec, "layers");
    for (int i = 0; i < L; i++) {
        char name[32];
        /* a quote in every name: the report must stay valid JSON */
        snprintf(name, sizeof name, "l\"%d", i);
        json_array_append_new(layers, json_pack("{s:s, s:s, s:{s:s}, s:s, s:f}", "name", name, "type", "linear",
                                                "weight", "file", "eye.npy", "coding", "ternary", "threshold",
                                                1.0));
    }
    assert_int_equal(json_dump_file(spec, tmp("deep.json"), 0), 0);
    json_decref(spec);

    nesim_run_opts o = {.spec = tmp("deep.json"), .input = tmp("x.npy"), .output = tmp("y.npy")};
    json_t *r = run_spec(&o);
    json_t *ls = json_object_get(r, "layers");
    assert_int_equal(json_array_size(ls), L);
    for (int i = 0; i < L; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(ls, (size_t)i), "spikes")), 10);
    assert_true(num(r, "totals", "spikes") == 10.0 * L);
    json_decref(r);
    nesim_tensor y;
    assert_ok(nesim_npy_load(tmp("y.npy"), &y, &err), &err);
    for (int i = 0; i < 4; i++)
        assert_true(nesim_tensor_get(&y, (size_t)i) == x[i]);
    nesim_tensor_release(&y);

    /* the same through the CLI, whose --json is the same report */
    char args[1024];
    snprintf(args, sizeof args, "run %s --input %s --json --quiet", tmp("deep.json"), tmp("x.npy"));
    json_t *j;
    assert_int_equal(run_json(args, &j), 0);
    assert_non_null(j);
    ls = json_object_get(j, "layers");
    assert_int_equal(json_array_size(ls), L);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ls, L - 1), "name")), "l\"299");
    json_decref(j);
}

/* A population name with a quote, and a run too short for any ISI: valid
 * JSON, the name intact, isi_cv null (not nan). */
static void test_network_json_quotes_and_short_run(void **st)
{
    write_text(tmp("q.json"),
               "{\"nesim\": 1, \"name\": \"q\", \"tick\": 1e-4, \"seed\": 2,\n"
               " \"populations\": [{\"name\": \"src \\\"A\\\"\", \"model\": \"poisson\", \"n\": 20,"
               " \"params\": {\"rate_hz\": 50}},\n"
               "  {\"name\": \"b\", \"model\": \"lif\", \"n\": 10, \"params\": {\"tau_m\": 0.02,"
               " \"v_rest\": 0, \"v_thresh\": 0.01, \"v_reset\": 0, \"t_ref\": 0.002}}],\n"
               " \"projections\": [{\"pre\": \"src \\\"A\\\"\", \"post\": \"b\", \"rule\": \"all_to_all\","
               " \"weight\": 0.001}]}\n");
    char args[1024];
    snprintf(args, sizeof args, "run %s --seconds 0.01 --json --quiet", tmp("q.json"));
    json_t *j;
    assert_int_equal(run_json(args, &j), 0);
    if (!j)
        fail_msg("nesim run --json printed invalid JSON");
    const char *name = json_string_value(json_object_get(json_array_get(json_object_get(j, "layers"), 0), "name"));
    assert_non_null(name);
    assert_string_equal(name, "src \"A\"");
    /* one spike per neuron at most in 10 ms at 50 Hz: no ISI anywhere */
    assert_true(json_is_null(json_object_get(json_object_get(j, "totals"), "isi_cv")));
    json_decref(j);

    /* 1 ms of b4: too few spikes per neuron for an ISI */
    assert_int_equal(run_json("example b4 --neurons 200 --seconds 0.001 --json --quiet", &j), 0);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "isi_cv")));
    json_decref(j);
}

/* A NaN in a weight file: the message names the weight file and the layer. */
static void test_nan_weight_names_the_file(void **st)
{
    nesim_error err = {0};
    float w[6] = {1, 2, 3, 4, 5, 6};
    w[4] = NAN;
    const int64_t ws[2] = {2, 3};
    assert_ok(nesim_npy_write(tmp("nan.npy"), NESIM_F32, 2, ws, w, &err), &err);
    write_text(tmp("nan.json"), "{\"nesim\": 1, \"name\": \"n\", \"tick\": 1e-3, \"seed\": 1, \"input\": {\"shape\": [3]}, \"layers\": [\n"
                                " {\"name\": \"fc\", \"type\": \"linear\", \"weight\": {\"file\": \"nan.npy\"},"
                                " \"coding\": \"bitwise\", \"k\": 3}]}\n");
    nesim_run_opts o = {.spec = tmp("nan.json"), .random_n = 1};
    json_t *r = NULL;
    assert_int_equal(nesim_run_spec(&o, &r, &err), NESIM_EINVAL);
    assert_null(r);
    if (!strstr(err.msg, "nan.npy") || !strstr(err.msg, "fc") || !strstr(err.msg, "NaN"))
        fail_msg("message does not name the weight file, layer and NaN: %s", err.msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fortran_order_and_int64_labels),
        cmocka_unit_test(test_three_hundred_layers),
        cmocka_unit_test(test_network_json_quotes_and_short_run),
        cmocka_unit_test(test_nan_weight_names_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
