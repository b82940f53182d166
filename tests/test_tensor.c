/* test_tensor.c — .npy / .safetensors loaders, writers and element access.
 *
 * Input files are built byte by byte here (not with the writers under test),
 * so a symmetric bug in reader and writer cannot hide. The malformed sample
 * directories (tests/malformed/{npy,safetensors}, made by make_tensors.py
 * plus fuzzer finds) are swept file by file, each generated sample checked
 * against the message fragment make_tensors.py lists for it in
 * tests/malformed/tensors_expected.txt; tests run from the repo root. */
#include "tests/support/check.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/tensor.h"

/* ---- helpers ---- */

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* An .npy image: magic, version, little-endian header length (2 bytes for
 * v1, 4 for v2/v3), the dict padded with spaces and '\n' to 64 bytes as numpy
 * does, then the data bytes. Returns the total length. */
static size_t make_npy(unsigned char *out, int major, const char *dict, const void *data,
                       size_t nbytes)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    if (major != 1)
        out[10] = out[11] = 0;
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', hlen - dl - 1);
    out[total - 1] = '\n';
    if (nbytes)
        memcpy(out + total, data, nbytes);
    return total + nbytes;
}

/* ---- dtypes and element decoding ---- */

static void test_dtype_size_name(void **state)
{
    (void)state;
    static const struct { nesim_dtype dt; size_t size; const char *name; } want[] = {
        {NESIM_F32, 4, "f32"}, {NESIM_F64, 8, "f64"}, {NESIM_F16, 2, "f16"},
        {NESIM_BF16, 2, "bf16"}, {NESIM_I8, 1, "i8"}, {NESIM_I16, 2, "i16"},
        {NESIM_I32, 4, "i32"}, {NESIM_U8, 1, "u8"}, {NESIM_I64, 8, "i64"},
        {NESIM_U16, 2, "u16"}, {NESIM_U32, 4, "u32"}, {NESIM_U64, 8, "u64"},
        {NESIM_BOOL, 1, "bool"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(nesim_dtype_size(want[i].dt), want[i].size);
        assert_string_equal(nesim_dtype_name(want[i].dt), want[i].name);
    }
    assert_int_equal(nesim_dtype_size((nesim_dtype)99), 0);
    assert_string_equal(nesim_dtype_name((nesim_dtype)99), "?");
}

static nesim_tensor view16(nesim_dtype dt, const uint16_t *bits, size_t n)
{
    nesim_tensor t = {.dtype = dt, .ndim = 1, .shape = {(int64_t)n}, .count = n,
                      .nbytes = 2 * n, .data = bits};
    return t;
}

static void test_f16_bits(void **state)
{
    (void)state;
    static const uint16_t bits[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400,
                                    0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555};
    nesim_tensor t = view16(NESIM_F16, bits, sizeof bits / sizeof bits[0]);
    assert_true(nesim_tensor_get(&t, 0) == 1.0);
    assert_true(nesim_tensor_get(&t, 1) == -2.0);
    assert_true(nesim_tensor_get(&t, 2) == 65504.0);
    assert_true(nesim_tensor_get(&t, 3) == ldexp(1, -24));          /* smallest subnormal */
    assert_true(nesim_tensor_get(&t, 4) == ldexp(1023, -24));       /* largest subnormal */
    assert_true(nesim_tensor_get(&t, 5) == ldexp(1, -14));          /* smallest normal */
    assert_true(nesim_tensor_get(&t, 6) == 0.0 && signbit(nesim_tensor_get(&t, 6)));
    assert_true(isinf(nesim_tensor_get(&t, 7)) && nesim_tensor_get(&t, 7) > 0);
    assert_true(isinf(nesim_tensor_get(&t, 8)) && nesim_tensor_get(&t, 8) < 0);
    assert_true(isnan(nesim_tensor_get(&t, 9)));
    assert_true(nesim_tensor_get(&t, 10) == 0.333251953125); /* f16 nearest 1/3 */
    assert_true(isnan(nesim_tensor_get(&t, 11)));               /* out of range */
}

static void test_bf16_bits(void **state)
{
    (void)state;
    static const uint16_t bits[] = {0x3f80, 0xc000, 0x7f7f, 0x0001, 0x0080,
                                    0x7f80, 0xff80, 0x7fc0, 0x477f, 0x8000};
    nesim_tensor t = view16(NESIM_BF16, bits, sizeof bits / sizeof bits[0]);
    assert_true(nesim_tensor_get(&t, 0) == 1.0);
    assert_true(nesim_tensor_get(&t, 1) == -2.0);
    assert_true(nesim_tensor_get(&t, 2) == ldexp(255, 120));   /* largest finite 0x1.fep127 */
    assert_true(nesim_tensor_get(&t, 3) == ldexp(1, -133));    /* smallest subnormal */
    assert_true(nesim_tensor_get(&t, 4) == ldexp(1, -126));    /* smallest normal */
    assert_true(isinf(nesim_tensor_get(&t, 5)) && nesim_tensor_get(&t, 5) > 0);
    assert_true(isinf(nesim_tensor_get(&t, 6)) && nesim_tensor_get(&t, 6) < 0);
    assert_true(isnan(nesim_tensor_get(&t, 7)));
    assert_true(nesim_tensor_get(&t, 8) == 65280.0);
    assert_true(signbit(nesim_tensor_get(&t, 9)));
}

static void test_check_finite(void **state)
{
    (void)state;
    nesim_error err = {0};
    static const uint16_t h[] = {0x3c00, 0x4000, 0x7e00, 0x7c00};
    nesim_tensor t = view16(NESIM_F16, h, 4);
    assert_int_equal(nesim_tensor_check_finite(&t, "layer0.w", &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "layer0.w"));
    assert_non_null(strstr(err.msg, "element 2"));
    assert_non_null(strstr(err.msg, "NaN"));

    float f[] = {1.0f, 2.0f, -INFINITY};
    nesim_tensor tf = {.dtype = NESIM_F32, .ndim = 1, .shape = {3}, .count = 3, .nbytes = 12,
                       .data = f};
    assert_int_equal(nesim_tensor_check_finite(&tf, "x", &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "element 2 is -Inf"));
    f[2] = 3.0f;
    assert_ok(nesim_tensor_check_finite(&tf, "x", &err), &err);

    static const uint16_t b[] = {0x3f80, 0x7f80};
    nesim_tensor tb = view16(NESIM_BF16, b, 2);
    assert_int_equal(nesim_tensor_check_finite(&tb, "b", &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "element 1 is +Inf"));

    /* Integer bytes that would be NaN as floats are fine as integers. */
    static const uint8_t u[] = {0xff, 0xff, 0xff, 0xff};
    nesim_tensor ti = {.dtype = NESIM_I32, .ndim = 1, .shape = {1}, .count = 1, .nbytes = 4,
                       .data = u};
    assert_ok(nesim_tensor_check_finite(&ti, "i", &err), &err);
    assert_true(nesim_tensor_get(&ti, 0) == -1.0);
}

/* ---- .npy ---- */

/* One case per dtype: the dict, raw little-endian data bytes and the values
 * they encode. */
static const struct npy_case {
    const char *dict;
    nesim_dtype dt;
    int ndim;
    int64_t shape[3];
    unsigned char bytes[48];
    size_t nbytes;
    double values[6];
} npy_cases[] = {
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", NESIM_F32, 2, {2, 3},
     {0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0, 0, 0, 0, 0x3f, 0, 0, 0, 0, 0, 0, 0xc0, 0x7f, 1, 0, 0, 0},
     24, {1.0, -2.5, 0.5, 0.0, NAN, 0x1p-149}},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", NESIM_F64, 1, {2},
     {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x18, 0x2d, 0x44, 0x54, 0xfb, 0x21, 0x09, 0xc0}, 16,
     {1.0, -3.141592653589793}},
    {"{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", NESIM_F16, 1, {4},
     {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00}, 8, {1.0, -2.0, 65504.0, 0x1p-24}},
    {"{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2), }", NESIM_I8, 2, {2, 2},
     {0x80, 0xff, 0x00, 0x7f}, 4, {-128, -1, 0, 127}},
    {"{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", NESIM_I16, 1, {3},
     {0x00, 0x80, 0xff, 0x7f, 0x39, 0x30}, 6, {-32768, 32767, 12345}},
    {"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 2), }", NESIM_I32, 3, {1, 1, 2},
     {0x00, 0x00, 0x00, 0x80, 0x87, 0xd6, 0x12, 0x00}, 8, {-2147483648.0, 1234567}},
    {"{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", NESIM_U8, 1, {3},
     {0x00, 0x80, 0xff}, 3, {0, 128, 255}},
    /* numpy's default integer: labels come as int64 */
    {"{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", NESIM_I64, 1, {3},
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x20, 0, 5, 0, 0, 0, 0, 0, 0, 0},
     24, {-1, 0x1p53, 5}},
    {"{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", NESIM_U16, 1, {2},
     {0xff, 0xff, 0x34, 0x12}, 4, {65535, 0x1234}},
    {"{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", NESIM_U32, 1, {2},
     {0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0}, 8, {4294967295.0, 7}},
    {"{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", NESIM_U64, 1, {2},
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0, 0, 0, 0, 0}, 16, {0x1p64, 3}},
    {"{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }", NESIM_BOOL, 2, {2, 2},
     {0, 1, 1, 0}, 4, {0, 1, 1, 0}},
};

static void check_case(const struct npy_case *c, const nesim_tensor *t)
{
    assert_int_equal(t->dtype, c->dt);
    assert_int_equal(t->ndim, c->ndim);
    size_t count = 1;
    for (int d = 0; d < c->ndim; d++) {
        assert_int_equal(t->shape[d], c->shape[d]);
        count *= (size_t)c->shape[d];
    }
    assert_int_equal(t->count, count);
    assert_int_equal(t->nbytes, c->nbytes);
    for (size_t i = 0; i < count; i++) {
        double v = nesim_tensor_get(t, i);
        if (isnan(c->values[i]))
            assert_true(isnan(v));
        else
            assert_true(v == c->values[i]);
    }
}

static void test_npy_every_dtype(void **state)
{
    (void)state;
    nesim_error err = {0};
    for (size_t k = 0; k < sizeof npy_cases / sizeof npy_cases[0]; k++) {
        const struct npy_case *c = &npy_cases[k];
        for (int major = 1; major <= 3; major++) {
            unsigned char buf[256];
            size_t len = make_npy(buf, major, c->dict, c->bytes, c->nbytes);
            char name[64];
            snprintf(name, sizeof name, "case%zu_v%d.npy", k, major);
            const char *path = tmp_path(name);
            write_file(path, buf, len);
            nesim_tensor t;
            assert_ok(nesim_npy_load(path, &t, &err), &err);
            check_case(c, &t);
            /* A view into the mapping, not a copy: data sits right after the
             * 64-byte aligned header. */
            size_t hl = len - c->nbytes;
            assert_int_equal(hl % 64, 0);
            assert_ptr_equal(t.data, (const char *)t.map_base + hl);
            assert_true(nesim_tensor_is_aligned(&t));
            nesim_tensor_release(&t);
            assert_null(t.data);
            assert_null(t.map_base);

            /* The in-memory parser agrees and borrows the buffer. */
            assert_ok(nesim_npy_parse(buf, len, name, &t, &err), &err);
            check_case(c, &t);
            assert_ptr_equal(t.data, buf + hl);
            assert_null(t.map_base);
            nesim_tensor_release(&t);
        }
    }
}

/* numpy writes transposed arrays column-major (np.save(f, a.T) keeps
 * fortran_order True). A parsed view reads them through the strides; a
 * loaded tensor is transposed once, so everything downstream sees C order. */
static void test_npy_fortran_order(void **state)
{
    (void)state;
    nesim_error err = {0};
    /* A[i][j] = 10 i + j, shape (2, 3): stored as column 0, column 1, ... */
    const float f23[6] = {0, 10, 1, 11, 2, 12};
    const float c23[6] = {0, 1, 2, 10, 11, 12};
    unsigned char buf[512];
    size_t len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f23,
                          sizeof f23);
    nesim_tensor t;
    assert_ok(nesim_npy_parse(buf, len, "f.npy", &t, &err), &err);
    assert_true(t.fortran);
    for (size_t i = 0; i < 6; i++)
        assert_true(nesim_tensor_get(&t, i) == c23[i]);
    nesim_tensor_release(&t);

    const char *path = tmp_path("fortran.npy");
    write_file(path, buf, len);
    assert_ok(nesim_npy_load(path, &t, &err), &err);
    assert_false(t.fortran);
    assert_null(t.map_base); /* the mapping is gone, the copy stays */
    assert_memory_equal(t.data, c23, sizeof c23);
    nesim_tensor_release(&t);
    assert_null(t.data);

    /* 3-D, int16: B[i][j][k] = 100 i + 10 j + k at storage i + 2 j + 6 k. */
    int16_t f234[24], want[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                f234[i + 2 * j + 6 * k] = (int16_t)(100 * i + 10 * j + k);
                want[(i * 3 + j) * 4 + k] = (int16_t)(100 * i + 10 * j + k);
            }
    len = make_npy(buf, 1, "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3, 4), }", f234,
                   sizeof f234);
    assert_ok(nesim_npy_parse(buf, len, "f3.npy", &t, &err), &err);
    for (size_t i = 0; i < 24; i++)
        assert_true(nesim_tensor_get(&t, i) == want[i]);
    assert_ok(nesim_tensor_to_c_order(&t, &err), &err);
    assert_false(t.fortran);
    assert_memory_equal(t.data, want, sizeof want);
    assert_true(buf + 128 != (const unsigned char *)t.data); /* copied, buffer untouched */
    nesim_tensor_release(&t);

    /* 1-D and empty arrays are the same bytes in both orders: still views. */
    len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", c23, 12);
    write_file(path, buf, len);
    assert_ok(nesim_npy_load(path, &t, &err), &err);
    assert_false(t.fortran);
    assert_non_null(t.map_base);
    assert_true(nesim_tensor_get(&t, 2) == 2);
    nesim_tensor_release(&t);
    len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }", c23, 0);
    write_file(path, buf, len);
    assert_ok(nesim_npy_load(path, &t, &err), &err);
    assert_int_equal(t.count, 0);
    nesim_tensor_release(&t);
}

static void test_npy_header_variants(void **state)
{
    (void)state;
    static const struct { const char *dict; int ndim; int64_t d0, d1; size_t count; } v[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0, 0, 0, 1},
        {"{'descr':'<f4','fortran_order':False,'shape':(3,)}", 1, 3, 0, 3},
        {"{ 'shape' : ( 1 , 3 ) , 'fortran_order' : False , 'descr' : '<f4' }", 2, 1, 3, 3},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 1,)}", 2, 3, 1, 3},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 1L), }", 2, 3, 1, 3},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", 2, 0, 5, 0},
    };
    float data[3] = {1.5f, 2.5f, 3.5f};
    nesim_error err = {0};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        unsigned char buf[256];
        size_t len = make_npy(buf, 1, v[k].dict, data, v[k].count * 4);
        nesim_tensor t;
        assert_ok(nesim_npy_parse(buf, len, "variant.npy", &t, &err), &err);
        assert_int_equal(t.ndim, v[k].ndim);
        assert_int_equal(t.count, v[k].count);
        if (v[k].ndim > 0)
            assert_int_equal(t.shape[0], v[k].d0);
        if (v[k].ndim > 1)
            assert_int_equal(t.shape[1], v[k].d1);
        if (t.count)
            assert_true(nesim_tensor_get(&t, t.count - 1) == data[t.count - 1]);
    }
}

static bool dir_has_temp(void)
{
    DIR *d = opendir(test_tmpdir());
    bool found = false;
    for (struct dirent *e; d && (e = readdir(d));)
        found |= strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return found;
}

static void test_npy_write_roundtrip(void **state)
{
    (void)state;
    nesim_error err = {0};
    const nesim_dtype dts[] = {NESIM_F32, NESIM_F64, NESIM_F16, NESIM_I8,  NESIM_I16, NESIM_I32,
                               NESIM_U8,  NESIM_I64, NESIM_U16, NESIM_U32, NESIM_U64, NESIM_BOOL};
    unsigned char data[2 * 3 * 8];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        const int64_t shape[2] = {2, 3};
        const char *path = tmp_path("rt.npy");
        assert_ok(nesim_npy_write(path, dts[k], 2, shape, data, &err), &err);
        assert_false(dir_has_temp());
        nesim_tensor t;
        assert_ok(nesim_npy_load(path, &t, &err), &err);
        assert_int_equal(t.dtype, dts[k]);
        assert_int_equal(t.ndim, 2);
        assert_int_equal(t.shape[0], 2);
        assert_int_equal(t.shape[1], 3);
        assert_int_equal(t.count, 6);
        assert_memory_equal(t.data, data, 6 * nesim_dtype_size(dts[k]));
        /* numpy's layout: 128-byte header for a 2-D dict */
        assert_ptr_equal(t.data, (const char *)t.map_base + 128);
        nesim_tensor_release(&t);
    }

    /* The exact bytes numpy writes for np.save of float32 [1, 2] */
    const float two[2] = {1.0f, 2.0f};
    const int64_t n2 = 2;
    const char *path = tmp_path("exact.npy");
    assert_ok(nesim_npy_write(path, NESIM_F32, 1, &n2, two, &err), &err);
    unsigned char want[256], got[256];
    size_t wn = make_npy(want, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                         two, 8);
    assert_int_equal(wn, 128 + 8);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    assert_int_equal(n, wn);
    assert_memory_equal(got, want, wn);

    /* Scalar and empty arrays round-trip too. */
    const double pi = 3.25;
    assert_ok(nesim_npy_write(path, NESIM_F64, 0, NULL, &pi, &err), &err);
    nesim_tensor t;
    assert_ok(nesim_npy_load(path, &t, &err), &err);
    assert_int_equal(t.ndim, 0);
    assert_int_equal(t.count, 1);
    assert_true(nesim_tensor_get(&t, 0) == 3.25);
    nesim_tensor_release(&t);
    const int64_t empty[2] = {0, 7};
    assert_ok(nesim_npy_write(path, NESIM_I8, 2, empty, NULL, &err), &err);
    assert_ok(nesim_npy_load(path, &t, &err), &err);
    assert_int_equal(t.count, 0);
    assert_int_equal(t.shape[1], 7);
    nesim_tensor_release(&t);

    /* Refusals */
    assert_int_equal(nesim_npy_write(path, NESIM_BF16, 1, &n2, two, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "bf16"));
    const int64_t neg = -1;
    assert_int_equal(nesim_npy_write(path, NESIM_F32, 1, &neg, two, &err), NESIM_EINVAL);
    assert_int_equal(nesim_npy_write("/nonexistent-dir/x.npy", NESIM_F32, 1, &n2, two, &err),
                     NESIM_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.npy"));
}

/* The SpikingBrain-7B down projection is 3584 x 18944 f32 (271 MB). A sparse
 * file of that size costs no disk; loading it must only map it. */
static void test_npy_large_not_copied(void **state)
{
    (void)state;
    unsigned char hdr[256];
    size_t hl = make_npy(hdr, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3584, 18944), }",
                         NULL, 0);
    assert_int_equal(hl, 128);
    const char *path = tmp_path("big.npy");
    write_file(path, hdr, hl);
    assert_int_equal(truncate(path, (off_t)(hl + (size_t)3584 * 18944 * 4)), 0);
    nesim_error err = {0};
    nesim_tensor t;
    assert_ok(nesim_npy_load(path, &t, &err), &err);
    assert_int_equal(t.count, (size_t)3584 * 18944);
    assert_ptr_equal(t.data, (const char *)t.map_base + hl);
    assert_true(nesim_tensor_get(&t, t.count - 1) == 0.0);
    nesim_tensor_release(&t);
    unlink(path);
}

/* ---- malformed .npy: each problem named in the message ---- */

static void expect_npy_error(const char *file, const void *buf, size_t len, const char *needle)
{
    const char *path = tmp_path(file);
    write_file(path, buf, len);
    nesim_error err = {0};
    nesim_tensor t;
    int rc = nesim_npy_load(path, &t, &err);
    if (rc != NESIM_EINVAL)
        fail_msg("%s: expected NESIM_EINVAL, got %d (%s)", file, rc, err.msg);
    if (!strstr(err.msg, path) || !strstr(err.msg, needle))
        fail_msg("%s: message \"%s\" lacks the path or \"%s\"", file, err.msg, needle);
    if (strchr(err.msg, '\n'))
        fail_msg("%s: message is not one line", file);
    assert_null(t.data);
}

static void test_npy_malformed_messages(void **state)
{
    (void)state;
    static const float f3[3] = {1, 2, 3};
    static const struct { const char *dict; size_t nbytes; const char *needle; } hdr[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12, "big-endian"},
        {"{'descr': '<m8', 'fortran_order': False, 'shape': (3,), }", 24, "unsupported dtype '<m8'"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", 24, "unsupported dtype '<c8'"},
        {"{'descr': '<f4', 'fortran_order': 1, 'shape': (3,), }", 12, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 12,
         "expected 16 bytes, found 12"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12,
         "expected 8 bytes, found 12"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 12, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", 12,
         "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", 12,
         "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12, "trailing comma"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", 12, "key 'x'"},
        {"{'descr': '<f4', 'shape': (3,), }", 12, "missing key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } xx", 12, "trailing"},
    };
    unsigned char buf[256];
    for (size_t k = 0; k < sizeof hdr / sizeof hdr[0]; k++) {
        size_t len = make_npy(buf, 1, hdr[k].dict, f3, hdr[k].nbytes > 12 ? 12 : hdr[k].nbytes);
        char name[32];
        snprintf(name, sizeof name, "bad%zu.npy", k);
        expect_npy_error(name, buf, len, hdr[k].needle);
    }
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    size_t len = make_npy(buf, 1, ok, f3, 12);
    buf[1] = 'X';
    expect_npy_error("magic.npy", buf, len, "bad magic");
    buf[1] = 'N';
    buf[6] = 4;
    expect_npy_error("v4.npy", buf, len, "unsupported .npy version 4.0");
    buf[6] = 1;
    unsigned char b8 = buf[8], b9 = buf[9];
    buf[8] = buf[9] = 0xff; /* header length 65535 + 10 > file */
    expect_npy_error("hlen.npy", buf, len, "header length 65535 beyond file size");
    buf[8] = b8;
    buf[9] = b9;
    expect_npy_error("trunc.npy", buf, len - 1, "truncated");
    expect_npy_error("trunc_pre.npy", buf, 7, "truncated");
    expect_npy_error("empty.npy", buf, 0, "truncated");

    nesim_error err = {0};
    nesim_tensor t;
    assert_int_equal(nesim_npy_load(tmp_path("missing.npy"), &t, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "missing.npy"));
    assert_int_equal(nesim_npy_load(test_tmpdir(), &t, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

/* ---- .safetensors built byte by byte ---- */

/* u64 LE header length, header text, data. Returns total length. */
static size_t make_st(unsigned char *out, const char *json, const void *data, size_t nbytes)
{
    size_t n = strlen(json);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(out + 8, json, n);
    if (nbytes)
        memcpy(out + 8 + n, data, nbytes);
    return 8 + n + nbytes;
}

static void test_safetensors_two_tensors(void **state)
{
    (void)state;
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[16,19]}}";
    const unsigned char data[19] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0x40, 0x40,
                                    0, 0, 0x80, 0xbe, 0xff, 0x00, 0x7f};
    unsigned char buf[512];
    size_t len = make_st(buf, json, data, sizeof data);
    const char *path = tmp_path("two.safetensors");
    write_file(path, buf, len);

    nesim_error err = {0};
    nesim_safetensors *st;
    assert_ok(nesim_safetensors_open(path, &st, &err), &err);
    assert_int_equal(nesim_safetensors_count(st), 2);
    assert_string_equal(nesim_safetensors_name(st, 0), "w"); /* file order */
    assert_string_equal(nesim_safetensors_name(st, 1), "b");
    assert_null(nesim_safetensors_name(st, 2));
    assert_string_equal(nesim_safetensors_metadata(st, "format"), "pt");
    assert_null(nesim_safetensors_metadata(st, "nope"));

    nesim_tensor w, b;
    assert_ok(nesim_safetensors_get(st, "w", &w, &err), &err);
    assert_ok(nesim_safetensors_get(st, "b", &b, &err), &err);
    assert_int_equal(w.dtype, NESIM_F32);
    assert_int_equal(w.ndim, 2);
    assert_int_equal(w.shape[0], 2);
    assert_int_equal(w.shape[1], 2);
    assert_int_equal(w.count, 4);
    assert_true(nesim_tensor_get(&w, 0) == 1.0);
    assert_true(nesim_tensor_get(&w, 1) == -2.0);
    assert_true(nesim_tensor_get(&w, 2) == 3.0);
    assert_true(nesim_tensor_get(&w, 3) == -0.25);
    assert_int_equal(b.dtype, NESIM_I8);
    assert_int_equal(b.count, 3);
    assert_true(nesim_tensor_get(&b, 0) == -1.0);
    assert_true(nesim_tensor_get(&b, 1) == 0.0);
    assert_true(nesim_tensor_get(&b, 2) == 127.0);
    /* Both views share the one mapping: b starts where w ends. */
    assert_ptr_equal((const char *)w.data + 16, b.data);
    nesim_tensor_release(&w); /* no-op on a view; b stays valid */
    assert_true(nesim_tensor_get(&b, 2) == 127.0);

    assert_int_equal(nesim_safetensors_get(st, "wq", &w, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "'wq'"));
    assert_non_null(strstr(err.msg, "'w', 'b'"));
    nesim_safetensors_close(st);

    /* The in-memory parser borrows the caller's buffer. */
    assert_ok(nesim_safetensors_parse(buf, len, "mem", &st, &err), &err);
    assert_ok(nesim_safetensors_get(st, "b", &b, &err), &err);
    assert_ptr_equal(b.data, buf + 8 + strlen(json) + 16);
    nesim_safetensors_close(st);
}

/* SpikingBrain W8A-style storage: int8 weight [out, in] with one f32 scale per
 * group of `group` inputs, scales [out, in / group]. */
static void test_safetensors_int8_group_scales(void **state)
{
    (void)state;
    enum { OUT = 4, IN = 8, GROUP = 4, NG = IN / GROUP };
    int8_t q[OUT][IN];
    float s[OUT][NG];
    for (int o = 0; o < OUT; o++) {
        for (int i = 0; i < IN; i++)
            q[o][i] = (int8_t)((o * 37 + i * 53) % 255 - 127);
        for (int g = 0; g < NG; g++)
            s[o][g] = 0.0078125f * (float)(1 + o + 2 * g); /* exact in binary */
    }
    char json[256];
    snprintf(json, sizeof json,
             "{\"q_proj.weight\":{\"dtype\":\"I8\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]},"
             "\"q_proj.weight_scale\":{\"dtype\":\"F32\",\"shape\":[%d,%d],"
             "\"data_offsets\":[%d,%d]}}",
             OUT, IN, OUT * IN, OUT, NG, OUT * IN, OUT * IN + OUT * NG * 4);
    unsigned char data[OUT * IN + OUT * NG * 4];
    memcpy(data, q, sizeof q);
    /* f32 scales as explicit little-endian bytes */
    for (int k = 0; k < OUT * NG; k++) {
        uint32_t u;
        memcpy(&u, &s[k / NG][k % NG], 4);
        for (int b = 0; b < 4; b++)
            data[OUT * IN + 4 * k + b] = (unsigned char)(u >> (8 * b));
    }
    unsigned char buf[512];
    size_t len = make_st(buf, json, data, sizeof data);
    const char *path = tmp_path("w8.safetensors");
    write_file(path, buf, len);

    nesim_error err = {0};
    nesim_safetensors *st;
    assert_ok(nesim_safetensors_open(path, &st, &err), &err);
    nesim_tensor w, sc;
    assert_ok(nesim_safetensors_get(st, "q_proj.weight", &w, &err), &err);
    assert_ok(nesim_safetensors_get(st, "q_proj.weight_scale", &sc, &err), &err);
    assert_int_equal(w.dtype, NESIM_I8);
    assert_int_equal(sc.dtype, NESIM_F32);
    assert_int_equal(w.shape[0], OUT);
    assert_int_equal(w.shape[1], IN);
    assert_int_equal(sc.shape[1], w.shape[1] / GROUP);
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < IN; i++) {
            double deq = nesim_tensor_get(&w, (size_t)(o * IN + i)) *
                         nesim_tensor_get(&sc, (size_t)(o * NG + i / GROUP));
            assert_true(deq == (double)q[o][i] * (double)s[o][i / GROUP]);
        }

    /* The writer reproduces the same tensors, with the data 8-byte aligned. */
    const char *names[2] = {"q_proj.weight", "q_proj.weight_scale"};
    nesim_tensor both[2] = {w, sc};
    const char *path2 = tmp_path("w8b.safetensors");
    assert_ok(nesim_safetensors_write(path2, 2, names, both, &err), &err);
    assert_false(dir_has_temp());
    nesim_safetensors *st2;
    assert_ok(nesim_safetensors_open(path2, &st2, &err), &err);
    nesim_tensor w2, sc2;
    assert_ok(nesim_safetensors_get(st2, "q_proj.weight", &w2, &err), &err);
    assert_ok(nesim_safetensors_get(st2, "q_proj.weight_scale", &sc2, &err), &err);
    assert_memory_equal(w2.data, q, sizeof q);
    assert_memory_equal(sc2.data, data + OUT * IN, sizeof s);
    assert_true(nesim_tensor_is_aligned(&w2) && (uintptr_t)w2.data % 8 == 0);
    nesim_safetensors_close(st2);
    nesim_safetensors_close(st);
}

static void test_safetensors_write_all_dtypes(void **state)
{
    (void)state;
    const nesim_dtype dts[] = {NESIM_F32, NESIM_F64, NESIM_F16, NESIM_BF16, NESIM_I8,  NESIM_I16, NESIM_I32,
                               NESIM_U8,  NESIM_I64, NESIM_U16, NESIM_U32,  NESIM_U64, NESIM_BOOL};
    enum { N = sizeof dts / sizeof dts[0] };
    unsigned char bytes[24];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 29 + 3);
    nesim_tensor t[N + 2];
    char namebuf[N + 2][16];
    const char *names[N + 2];
    for (int k = 0; k < N; k++) {
        t[k] = (nesim_tensor){.dtype = dts[k], .ndim = 2, .shape = {1, 3}, .count = 3,
                              .data = bytes};
        snprintf(namebuf[k], sizeof namebuf[k], "t.%s", nesim_dtype_name(dts[k]));
        names[k] = namebuf[k];
    }
    double one = 1.0;
    t[N] = (nesim_tensor){.dtype = NESIM_F64, .ndim = 0, .count = 1, .data = &one};
    names[N] = "scalar";
    t[N + 1] = (nesim_tensor){.dtype = NESIM_F32, .ndim = 1, .shape = {0}};
    names[N + 1] = "empty";
    nesim_error err = {0};
    const char *path = tmp_path("all.safetensors");
    assert_ok(nesim_safetensors_write(path, N + 2, names, t, &err), &err);
    nesim_safetensors *st;
    assert_ok(nesim_safetensors_open(path, &st, &err), &err);
    assert_int_equal(nesim_safetensors_count(st), N + 2);
    for (int k = 0; k < N + 2; k++) {
        nesim_tensor v;
        assert_string_equal(nesim_safetensors_name(st, (size_t)k), names[k]);
        assert_ok(nesim_safetensors_get(st, names[k], &v, &err), &err);
        assert_int_equal(v.dtype, t[k].dtype);
        assert_int_equal(v.ndim, t[k].ndim);
        assert_int_equal(v.count, k < N ? 3 : (k == N ? 1 : 0));
        if (v.count)
            assert_memory_equal(v.data, t[k].data, v.count * nesim_dtype_size(v.dtype));
    }
    nesim_safetensors_close(st);

    const char *dup[2] = {"a", "a"};
    assert_int_equal(nesim_safetensors_write(path, 2, dup, t, &err), NESIM_EINVAL);
    const char *meta[1] = {"__metadata__"};
    assert_int_equal(nesim_safetensors_write(path, 1, meta, t, &err), NESIM_EINVAL);
}

static void expect_st_error(const char *file, const void *buf, size_t len, const char *needle)
{
    const char *path = tmp_path(file);
    write_file(path, buf, len);
    nesim_error err = {0};
    nesim_safetensors *st = (nesim_safetensors *)1;
    int rc = nesim_safetensors_open(path, &st, &err);
    if (rc != NESIM_EINVAL)
        fail_msg("%s: expected NESIM_EINVAL, got %d (%s)", file, rc, err.msg);
    if (!strstr(err.msg, path) || !strstr(err.msg, needle))
        fail_msg("%s: message \"%s\" lacks the path or \"%s\"", file, err.msg, needle);
    assert_null(st);
}

static void test_safetensors_malformed_messages(void **state)
{
    (void)state;
    static const unsigned char d12[12] = {0};
    static const struct { const char *json; const char *needle; } c[] = {
        {"{\"a\":{\"dtype\":\"F32\",,}}", "JSON error at line 1 column"},
        {"{\"a\":{\"dtype\":\"F32\",\n\"shape\":[3] \"data_offsets\":[0,12]}}", "line 2"},
        {"[1,2]", "not an object"},
        {"{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "unsupported dtype 'C64'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,12]}}", "integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"3\"],\"data_offsets\":[0,12]}}", "integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", "integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4,0],\"data_offsets\":[0,0]}}",
         "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,0]}}", "begin 12 > end 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}",
         "expected 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0]}}", "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12],\"x\":1}}", "'x'"},
        {"{\"__metadata__\":{\"k\":1}}", "__metadata__"},
    };
    unsigned char buf[512];
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        size_t len = make_st(buf, c[k].json, d12, sizeof d12);
        char name[32];
        snprintf(name, sizeof name, "bad%zu.safetensors", k);
        expect_st_error(name, buf, len, c[k].needle);
    }
    size_t len = make_st(buf, "{}", NULL, 0);
    buf[0] = 200; /* header length 200 > 2 bytes available */
    expect_st_error("hlen.safetensors", buf, len, "header length 200 beyond file size 10");
    buf[7] = 0x40;
    expect_st_error("absurd.safetensors", buf, len, "absurd");
    expect_st_error("short.safetensors", buf, 5, "truncated");
}

/* ---- every sample file in the malformed directories ---- */

typedef int (*try_fn)(const char *path, const unsigned char *buf, size_t len, nesim_error *err);

static int try_npy(const char *path, const unsigned char *buf, size_t len, nesim_error *err)
{
    nesim_tensor t;
    int rc = buf ? nesim_npy_parse(buf, len, path, &t, err) : nesim_npy_load(path, &t, err);
    if (rc == NESIM_OK)
        nesim_tensor_release(&t);
    return rc;
}

static int try_st(const char *path, const unsigned char *buf, size_t len, nesim_error *err)
{
    nesim_safetensors *st;
    int rc = buf ? nesim_safetensors_parse(buf, len, path, &st, err)
                 : nesim_safetensors_open(path, &st, err);
    if (rc == NESIM_OK)
        nesim_safetensors_close(st);
    return rc;
}

/* tests/malformed/tensors_expected.txt: "sub/file<TAB>fragment" lines written
 * by make_tensors.py. Returns the fragment for path, NULL if unlisted (e.g.
 * a fuzzer find). */
static const char *expected_fragment(const char *path, char *line, size_t cap)
{
    FILE *f = fopen("tests/malformed/tensors_expected.txt", "r");
    if (!f)
        fail_msg("cannot open tests/malformed/tensors_expected.txt");
    const char *found = NULL;
    while (!found && fgets(line, (int)cap, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        tab[strcspn(tab + 1, "\n") + 1] = '\0';
        size_t pl = strlen(path), ll = strlen(line);
        if (pl >= ll && strcmp(path + pl - ll, line) == 0 && path[pl - ll - 1] == '/')
            found = tab + 1;
    }
    fclose(f);
    return found;
}

static int manifest_entries(const char *sub)
{
    FILE *f = fopen("tests/malformed/tensors_expected.txt", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strncmp(line, sub, strlen(sub)) == 0 && line[strlen(sub)] == '/';
    fclose(f);
    return n;
}

static void sweep(const char *dir, const char *sub, try_fn fn)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s (run tests from the repository root)", dir);
    int n = 0, listed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (e->d_name[0] == '.' || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        /* Once through the file mapping, once from an exact-size heap copy so
         * ASan sees any read past the end. */
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char *buf = malloc((size_t)sb.st_size + 1);
        assert_non_null(buf);
        size_t len = fread(buf, 1, (size_t)sb.st_size, f);
        fclose(f);
        unsigned char *exact = malloc(len ? len : 1);
        memcpy(exact, buf, len);
        free(buf);
        char line[512];
        const char *frag = expected_fragment(path, line, sizeof line);
        listed += frag != NULL;
        for (int pass = 0; pass < 2; pass++) {
            nesim_error err = {0};
            int rc = fn(path, pass ? exact : NULL, len, &err);
            if (rc != NESIM_EINVAL)
                fail_msg("%s: expected NESIM_EINVAL, got %d (%s)", path, rc, err.msg);
            if (!err.msg[0] || !strstr(err.msg, path))
                fail_msg("%s: message \"%s\" does not name the file", path, err.msg);
            if (frag && !strstr(err.msg, frag))
                fail_msg("%s: message \"%s\" lacks \"%s\"", path, err.msg, frag);
        }
        free(exact);
        n++;
    }
    closedir(d);
    /* Every generated sample must be present (none silently lost). */
    int want = manifest_entries(sub);
    if (listed != want || want < 30)
        fail_msg("%s: %d of %d listed samples found (%d files)", dir, listed, want, n);
}

static void test_malformed_npy_dir(void **state)
{
    (void)state;
    sweep("tests/malformed/npy", "npy", try_npy);
}

static void test_malformed_safetensors_dir(void **state)
{
    (void)state;
    sweep("tests/malformed/safetensors", "safetensors", try_st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_size_name),
        cmocka_unit_test(test_f16_bits),
        cmocka_unit_test(test_bf16_bits),
        cmocka_unit_test(test_check_finite),
        cmocka_unit_test(test_npy_every_dtype),
        cmocka_unit_test(test_npy_fortran_order),
        cmocka_unit_test(test_npy_header_variants),
        cmocka_unit_test(test_npy_write_roundtrip),
        cmocka_unit_test(test_npy_large_not_copied),
        cmocka_unit_test(test_npy_malformed_messages),
        cmocka_unit_test(test_safetensors_two_tensors),
        cmocka_unit_test(test_safetensors_int8_group_scales),
        cmocka_unit_test(test_safetensors_write_all_dtypes),
        cmocka_unit_test(test_safetensors_malformed_messages),
        cmocka_unit_test(test_malformed_npy_dir),
        cmocka_unit_test(test_malformed_safetensors_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
