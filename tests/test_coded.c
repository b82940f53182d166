/* test_coded.c — the event-driven coded linear layer against the dense product.
 *
 * The oracle is built here, not borrowed from the code under test: the test
 * computes V_th, the counts (nearbyint, half to even), the clipping, T and
 * the per-step spikes from the scheme's definition (DESIGN.md), and knows the
 * exact weight values it encoded into each dtype (values chosen to be
 * representable, so f16/bf16/int8 storage is exact). The dense reference is
 * nesim_linear_dense_ref (GSL dgemv on a double copy), itself checked against
 * a plain loop over the test's own weights. Spike totals use
 * nesim_coding_spikes as the brief asks; SOPs are that times out.
 *
 * Tolerance: |y_o - ref_o| <= 1e-5 * S_o with
 * S_o = V_th * sum_i |w_oi| * |N_i| + |b_o|, the sum of the magnitudes of the
 * terms of y_o. S_o >= |ref_o|, so this is "1e-5 relative to max(|y|, scale)"
 * with scale = S_o: floating-point summation error is proportional to S_o,
 * not to |y_o| (which may cancel to ~0). A wrong count, sign, step weight,
 * index or bias is off by ~|w| V_th per event, far above 1e-5 S_o in most rows. */
#include "tests/support/check.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "sim/coded.h"

#define NC 5
static const nesim_coding codings[NC] = {NESIM_CODE_BINARY, NESIM_CODE_TERNARY,
                                         NESIM_CODE_BITWISE, NESIM_CODE_BITWISE_BIDIR,
                                         NESIM_CODE_BITWISE_TWOS};

/* ---- the scheme, written out independently ---- */

static int64_t played(nesim_coding c, int64_t n)
{
    return (c == NESIM_CODE_BINARY || c == NESIM_CODE_BITWISE) && n < 0 ? 0 : n;
}

static int64_t nbits(uint64_t m)
{
    int64_t b = 0;
    for (; m; m >>= 1)
        b++;
    return b;
}

static int64_t ref_steps(nesim_coding c, int64_t M)
{
    if (c == NESIM_CODE_BINARY || c == NESIM_CODE_TERNARY)
        return M;
    int64_t b = nbits((uint64_t)M);
    if (c == NESIM_CODE_BITWISE_TWOS)
        return b + 1 > 2 ? b + 1 : 2;
    return b > 1 ? b : 1;
}

/* s_t of played count n over T steps (DESIGN.md table). */
static int ref_spike(nesim_coding c, int64_t n, int64_t T, int64_t t)
{
    int sg = (n > 0) - (n < 0);
    uint64_t a = (uint64_t)(n < 0 ? -n : n);
    switch (c) {
    case NESIM_CODE_BINARY:
    case NESIM_CODE_TERNARY:
        return (uint64_t)t < a ? sg : 0;
    case NESIM_CODE_BITWISE:
    case NESIM_CODE_BITWISE_BIDIR:
        return (int)((a >> (T - 1 - t)) & 1) * sg;
    case NESIM_CODE_BITWISE_TWOS: {
        uint64_t u = (uint64_t)n & ((UINT64_C(1) << T) - 1);
        int bit = (int)((u >> (T - 1 - t)) & 1);
        return t == 0 ? -bit : bit; /* the sign bit weighs -2^(T-1) */
    }
    }
    return 0;
}

static double ref_vth(const float *x, size_t n, double k)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)x[i]);
    double v = n ? s / (double)n / k : 0;
    return v < 1e-5 ? 1e-5 : v > 1e4 ? 1e4 : v;
}

/* ---- exact encoders for representable values ---- */

static uint16_t f16_bits(double v)
{
    uint16_t s = v < 0 ? 0x8000 : 0;
    double a = fabs(v);
    if (a == 0)
        return s;
    if (a < 0x1p-14) { /* subnormal: a = m * 2^-24 */
        double m = a * 0x1p24;
        assert_true(m == floor(m) && m < 1024);
        return (uint16_t)(s | (uint16_t)m);
    }
    int e;
    double f = frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    double m = (f * 2 - 1) * 1024;
    assert_true(m == floor(m) && e - 1 + 15 >= 1 && e - 1 + 15 <= 30);
    return (uint16_t)(s | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)m);
}

static uint16_t bf16_bits(double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    assert_true((double)f == v && (u & 0xffff) == 0);
    return (uint16_t)(u >> 16);
}

/* ---- layers built from exact weights ---- */

typedef enum { W_F32, W_F64, W_F16, W_BF16, W_I8S, W_I8 } wkind;
#define NW 6
static const char *const wname[NW] = {"f32", "f64", "f16", "bf16", "i8+scales", "i8"};

typedef struct {
    size_t in, out, group;
    double *wd;           /* exact weight values [out*in] */
    double *bd;           /* exact bias [out] or NULL */
    unsigned char *store; /* stored weights (+1 byte: optionally unaligned) */
    float *scales, *bias;
    nesim_tensor w, s, b;
    nesim_coded_linear L;
} layer;

static nesim_tensor view(nesim_dtype dt, int ndim, int64_t d0, int64_t d1, const void *data)
{
    nesim_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    t.shape[0] = d0;
    t.shape[1] = d1;
    t.count = (size_t)d0 * (ndim > 1 ? (size_t)d1 : 1);
    t.nbytes = t.count * nesim_dtype_size(dt);
    t.data = data;
    return t;
}

static size_t random_divisor(gsl_rng *r, size_t n)
{
    size_t d[64], k = 0;
    for (size_t g = 1; g <= n && k < 64; g++)
        if (n % g == 0)
            d[k++] = g;
    return d[gsl_rng_uniform_int(r, k)];
}

/* Builds a layer of kind wk with exactly representable random weights; the
 * stored data sit at an odd address when `unaligned`. */
static void make_layer(layer *ly, gsl_rng *r, wkind wk, size_t in, size_t out, int with_bias,
                       int unaligned)
{
    memset(ly, 0, sizeof *ly);
    ly->in = in;
    ly->out = out;
    size_t n = in * out;
    ly->wd = malloc(n * sizeof *ly->wd);
    static const nesim_dtype dts[NW] = {NESIM_F32, NESIM_F64, NESIM_F16, NESIM_BF16, NESIM_I8, NESIM_I8};
    nesim_dtype dt = dts[wk];
    size_t esz = nesim_dtype_size(dt);
    ly->store = malloc(n * esz + 1);
    unsigned char *data = ly->store + (unaligned ? 1 : 0);
    ly->group = wk == W_I8S ? random_divisor(r, in) : 0;
    size_t ng = ly->group ? in / ly->group : 0;
    if (ng) {
        ly->scales = malloc(out * ng * sizeof *ly->scales);
        for (size_t k = 0; k < out * ng; k++)
            ly->scales[k] = (float)(0.001 + 0.02 * gsl_rng_uniform(r));
    }
    for (size_t k = 0; k < n; k++) {
        double v = 0;
        switch (wk) {
        case W_F32: {
            float f = (float)gsl_ran_gaussian(r, 0.5);
            memcpy(data + 4 * k, &f, 4);
            v = f;
            break;
        }
        case W_F64:
            v = gsl_ran_gaussian(r, 0.5);
            memcpy(data + 8 * k, &v, 8);
            break;
        case W_F16: {
            /* mostly normals k/1024, some subnormals m * 2^-24 */
            long m = (long)gsl_rng_uniform_int(r, 4095) - 2047;
            v = gsl_rng_uniform(r) < 0.1 ? (double)(m / 2) * 0x1p-24 : (double)m / 1024.0;
            uint16_t h = f16_bits(v);
            memcpy(data + 2 * k, &h, 2);
            break;
        }
        case W_BF16: {
            long m = (long)gsl_rng_uniform_int(r, 511) - 255;
            v = ldexp((double)m, (int)gsl_rng_uniform_int(r, 7) - 11);
            uint16_t h = bf16_bits(v);
            memcpy(data + 2 * k, &h, 2);
            break;
        }
        case W_I8S:
        case W_I8: {
            int q = (int)gsl_rng_uniform_int(r, 256) - 128;
            signed char c = (signed char)q;
            memcpy(data + k, &c, 1);
            size_t o = k / in, i = k % in;
            v = ng ? q * (double)ly->scales[o * ng + i / ly->group] : q;
            break;
        }
        }
        ly->wd[k] = v;
    }
    ly->w = view(dt, 2, (int64_t)out, (int64_t)in, data);
    if (ng)
        ly->s = view(NESIM_F32, 2, (int64_t)out, (int64_t)ng, ly->scales);
    if (with_bias) {
        ly->bias = malloc(out * sizeof *ly->bias);
        ly->bd = malloc(out * sizeof *ly->bd);
        for (size_t o = 0; o < out; o++)
            ly->bd[o] = ly->bias[o] = (float)gsl_ran_gaussian(r, 1.0);
        ly->b = view(NESIM_F32, 1, (int64_t)out, 0, ly->bias);
    }
    nesim_error err = {0};
    assert_ok(nesim_coded_linear_init(&ly->L, "test.proj", &ly->w, ng ? &ly->s : NULL, ly->group,
                                      with_bias ? &ly->b : NULL, in, out, &err),
              &err);
}

static void free_layer(layer *ly)
{
    free(ly->wd);
    free(ly->bd);
    free(ly->store);
    free(ly->scales);
    free(ly->bias);
}

/* ---- input patterns ---- */

typedef enum { P_GAUSS, P_NEG, P_ZERO, P_HUGE, P_TIES, P_FIXED_TIES, P_SPARSE, P_FIXED } pattern;
#define NP 8
static const char *const pname[NP] = {"gauss",       "negative", "zero",   "huge",
                                      "ties(adapt)", "ties(fixed)", "sparse", "fixed"};

/* Fills x; returns the fixed threshold to use (0: adaptive). For the tie
 * patterns every x_i / V_th is exactly a half-integer (most of them) or an
 * integer: the adaptive one makes mean|x| exactly 3 V for a power of two V. */
static double make_input(gsl_rng *r, pattern p, float *x, size_t n)
{
    switch (p) {
    case P_GAUSS:
        for (size_t i = 0; i < n; i++)
            x[i] = (float)gsl_ran_gaussian(r, 1.0);
        return 0;
    case P_NEG:
        for (size_t i = 0; i < n; i++)
            x[i] = (float)-fabs(gsl_ran_gaussian(r, 1.0));
        return 0;
    case P_ZERO:
        memset(x, 0, n * sizeof *x);
        return 0;
    case P_HUGE:
        for (size_t i = 0; i < n; i++)
            x[i] = (float)gsl_ran_laplace(r, 1.0);
        for (size_t k = 0; k < 3; k++)
            x[gsl_rng_uniform_int(r, n)] = (float)((gsl_rng_uniform(r) < 0.5 ? -1 : 1) * 1e4 *
                                                  (1 + gsl_rng_uniform(r)));
        return 0;
    case P_TIES: {
        double V = ldexp(1.0, (int)gsl_rng_uniform_int(r, 7) - 3), S = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            double m = (double)gsl_rng_uniform_int(r, 3) + 0.5;
            S += m;
            x[i] = (float)((gsl_rng_uniform(r) < 0.5 ? -m : m) * V);
        }
        double last = 3.0 * (double)n - S; /* >= 0.5 n + 2: positive */
        x[n - 1] = (float)((gsl_rng_uniform(r) < 0.5 ? -last : last) * V);
        return 0;
    }
    case P_FIXED_TIES:
        for (size_t i = 0; i < n; i++) {
            double m = (double)gsl_rng_uniform_int(r, 12) + 0.5;
            x[i] = (float)((gsl_rng_uniform(r) < 0.5 ? -m : m) * 0.25);
        }
        return 0.25;
    case P_SPARSE:
        for (size_t i = 0; i < n; i++)
            x[i] = gsl_rng_uniform(r) < 0.9 ? 0.0f : (float)gsl_ran_gaussian(r, 2.0);
        return 0;
    case P_FIXED:
        for (size_t i = 0; i < n; i++)
            x[i] = (float)gsl_ran_gaussian(r, 1.0);
        return 0.1;
    }
    return 0;
}

/* ---- one checked forward ---- */

typedef struct {
    int64_t *ev;  /* events per step, from the callback */
    int64_t next; /* next expected tick */
    size_t len, cap;
} step_log;

static void on_step(void *user, int64_t tick, int64_t events)
{
    step_log *lg = user;
    if (tick != lg->next)
        fail_msg("on_step: tick %lld, expected %lld", (long long)tick, (long long)lg->next);
    lg->next++;
    if (lg->len == lg->cap) {
        lg->cap = lg->cap ? 2 * lg->cap : 64;
        lg->ev = realloc(lg->ev, lg->cap * sizeof *lg->ev);
    }
    lg->ev[lg->len++] = events;
}

typedef struct {
    double vth;
    int64_t *N, *rep;
    int64_t M, T, spikes, clipped, silent, hist[NESIM_CODED_HIST + 1];
    int64_t first, last; /* step indices, -1 if none */
    int64_t *step_ev;    /* [T] */
} expect;

static void make_expect(expect *e, nesim_coding c, const float *x, size_t in, double k,
                        double fixed)
{
    memset(e, 0, sizeof *e);
    e->vth = fixed > 0 ? fixed : ref_vth(x, in, k);
    e->N = malloc(in * sizeof *e->N);
    e->rep = malloc(in * sizeof *e->rep);
    for (size_t i = 0; i < in; i++) {
        double q = nearbyint((double)x[i] / e->vth);
        e->N[i] = (int64_t)q;
        e->rep[i] = played(c, e->N[i]);
        int64_t a = e->N[i] < 0 ? -e->N[i] : e->N[i];
        e->hist[a < NESIM_CODED_HIST ? a : NESIM_CODED_HIST]++;
        e->silent += e->N[i] == 0;
        e->clipped += e->rep[i] != e->N[i];
        int64_t ar = e->rep[i] < 0 ? -e->rep[i] : e->rep[i];
        if (ar > e->M)
            e->M = ar;
    }
    e->T = ref_steps(c, e->M);
    for (size_t i = 0; i < in; i++)
        e->spikes += nesim_coding_spikes(c, e->rep[i], e->T);
    e->step_ev = calloc((size_t)e->T + 1, sizeof *e->step_ev);
    e->first = e->last = -1;
    int64_t total = 0;
    for (int64_t t = 0; t < e->T; t++) {
        for (size_t i = 0; i < in; i++)
            e->step_ev[t] += ref_spike(c, e->rep[i], e->T, t) != 0;
        if (e->step_ev[t]) {
            if (e->first < 0)
                e->first = t;
            e->last = t;
        }
        total += e->step_ev[t];
    }
    if (total != e->spikes) /* the coder's spike count vs the written-out trains */
        fail_msg("%s: trains hold %lld spikes, nesim_coding_spikes says %lld", nesim_coding_name(c),
                 (long long)total, (long long)e->spikes);
}

static void free_expect(expect *e)
{
    free(e->N);
    free(e->rep);
    free(e->step_ev);
}

/* ref = dense_ref(W (rep V_th) + b), cross-checked against a plain loop;
 * scale[o] = S_o. */
static void dense_expect(const layer *ly, const expect *e, double *ref, double *scale)
{
    double *u = malloc(ly->in * sizeof *u);
    for (size_t i = 0; i < ly->in; i++)
        u[i] = (double)e->rep[i] * e->vth;
    nesim_error err = {0};
    assert_ok(nesim_linear_dense_ref(&ly->L, u, ref, NESIM_DENSE_F64, &err), &err);
    for (size_t o = 0; o < ly->out; o++) {
        double s = 0, m = 0;
        for (size_t i = 0; i < ly->in; i++) {
            s += ly->wd[o * ly->in + i] * u[i];
            m += fabs(ly->wd[o * ly->in + i] * u[i]);
        }
        double b = ly->bd ? ly->bd[o] : 0;
        scale[o] = m + fabs(b);
        if (!(fabs(ref[o] - (s + b)) <= 1e-12 * scale[o]))
            fail_msg("dense_ref row %zu: %.17g, plain loop %.17g", o, ref[o], s + b);
    }
    free(u);
}

static void check_case(const layer *ly, nesim_coding c, const float *x, double fixed,
                       int64_t t0, const char *what)
{
    expect e;
    make_expect(&e, c, x, ly->in, 3.0, fixed);
    double *ref = malloc(ly->out * sizeof *ref), *scale = malloc(ly->out * sizeof *scale);
    dense_expect(ly, &e, ref, scale);

    nesim_coded_opts o;
    nesim_coded_opts_init(&o);
    o.coding = c;
    o.vth = fixed;
    o.t0 = t0;
    step_log lg = {.next = t0};
    o.on_step = on_step;
    o.user = &lg;
    size_t alen = (size_t)e.T + 2;
    int64_t *arr = malloc(alen * sizeof *arr);
    for (size_t j = 0; j < alen; j++)
        arr[j] = -7;
    o.step_events = arr;
    o.step_events_len = alen;
    float *y = malloc(ly->out * sizeof *y);
    nesim_coded_stats st;
    nesim_error err = {0};
    int rc = nesim_coded_linear_forward(&ly->L, &o, x, y, &st, &err);
    if (rc)
        fail_msg("%s: forward -> %d: %s", what, rc, err.msg);

    for (size_t q = 0; q < ly->out; q++)
        if (!(fabs((double)y[q] - ref[q]) <= 1e-5 * scale[q]))
            fail_msg("%s: y[%zu] = %.9g, dense %.9g, |diff| %.3g > 1e-5 * S = %.3g", what, q,
                     (double)y[q], ref[q], fabs((double)y[q] - ref[q]), 1e-5 * scale[q]);
    if (st.vth != e.vth)
        fail_msg("%s: vth %.17g, expected %.17g", what, st.vth, e.vth);
    if (st.spikes != e.spikes || st.sops != e.spikes * (int64_t)ly->out)
        fail_msg("%s: spikes %lld sops %lld, expected %lld and %lld", what, (long long)st.spikes,
                 (long long)st.sops, (long long)e.spikes, (long long)(e.spikes * (int64_t)ly->out));
    if (st.steps != e.T || st.max_count != e.M || st.t_end != t0 + e.T)
        fail_msg("%s: T %lld M %lld t_end %lld, expected %lld %lld %lld", what, (long long)st.steps,
                 (long long)st.max_count, (long long)st.t_end, (long long)e.T, (long long)e.M,
                 (long long)(t0 + e.T));
    assert_int_equal(st.clipped, e.clipped);
    assert_int_equal(st.silent, e.silent);
    assert_int_equal(st.samples, 1);
    assert_int_equal(st.inputs, (int64_t)ly->in);
    int64_t small = 0;
    for (int b = 0; b <= NESIM_CODED_HIST; b++) {
        assert_int_equal(st.hist[b], e.hist[b]);
        if (b < NESIM_CODED_HIST)
            small += e.hist[b];
    }
    assert_true(st.frac_small == (double)small / (double)ly->in);
    assert_true(st.spikes_per_channel == (double)e.spikes / (double)ly->in);
    int64_t ef = e.first < 0 ? -1 : t0 + e.first, el = e.last < 0 ? -1 : t0 + e.last;
    if (st.first_tick != ef || st.last_tick != el)
        fail_msg("%s: ticks [%lld, %lld], expected [%lld, %lld]", what, (long long)st.first_tick,
                 (long long)st.last_tick, (long long)ef, (long long)el);
    /* per-step activity: callback for every step, array for the first T */
    if (lg.len != (size_t)e.T)
        fail_msg("%s: %zu step callbacks for T = %lld", what, lg.len, (long long)e.T);
    for (int64_t t = 0; t < e.T; t++) {
        if (lg.ev[t] != e.step_ev[t] || arr[t] != e.step_ev[t])
            fail_msg("%s: step %lld: callback %lld, array %lld, expected %lld", what, (long long)t,
                     (long long)lg.ev[t], (long long)arr[t], (long long)e.step_ev[t]);
    }
    assert_int_equal(arr[e.T], -7); /* untouched past T */
    assert_int_equal(arr[e.T + 1], -7);
    free(lg.ev);
    free(arr);
    free(y);
    free(ref);
    free(scale);
    free_expect(&e);
}

/* ---- tests ---- */

/* Every coding x weight kind x many shapes and input patterns. */
static void test_random_layers(void **state)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 12345);
    static const size_t fixed_shapes[][2] = {{1, 1}, {1, 7}, {5, 1}, {2, 3}, {300, 4}, {4, 300},
                                             {129, 9}, {64, 5}, {3, 6}, {256, 8}};
    const size_t nfixed = sizeof fixed_shapes / sizeof fixed_shapes[0];
    long cases = 0;
    for (int ci = 0; ci < NC; ci++)
        for (int wk = 0; wk < NW; wk++)
            for (size_t sh = 0; sh < nfixed + 8; sh++) {
                size_t in, out;
                if (sh < nfixed) {
                    in = fixed_shapes[sh][0];
                    out = fixed_shapes[sh][1];
                } else {
                    in = 1 + gsl_rng_uniform_int(r, 300);
                    out = 1 + gsl_rng_uniform_int(r, 300);
                }
                layer ly;
                make_layer(&ly, r, (wkind)wk, in, out, sh % 2 == 0, sh % 3 == 1);
                float *x = malloc(in * sizeof *x);
                for (int p = 0; p < NP; p++) {
                    /* all patterns on the small fixed shapes; two on the big random ones */
                    if (sh >= nfixed && p != (int)(sh % NP) && p != P_TIES)
                        continue;
                    double fixed = make_input(r, (pattern)p, x, in);
                    char what[160];
                    snprintf(what, sizeof what, "%s, %s weights, [%zu x %zu], %s input",
                             nesim_coding_name(codings[ci]), wname[wk], out, in, pname[p]);
                    check_case(&ly, codings[ci], x, fixed, (int64_t)(sh * 11), what);
                    cases++;
                }
                free(x);
                free_layer(&ly);
            }
    assert_true(cases > 1000);
    gsl_rng_free(r);
}

/* Rows wider than one chunk (512 inputs for float, 2048 for int8 without
 * scales) and segments longer than the per-segment cap (ternary repeats). */
static void test_wide_rows(void **state)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 777);
    static const size_t ins[] = {513, 1100, 2100};
    static const wkind kinds[] = {W_F32, W_F16, W_I8, W_I8S};
    for (size_t a = 0; a < 3; a++)
        for (size_t k = 0; k < 4; k++) {
            layer ly;
            make_layer(&ly, r, kinds[k], ins[a], 5 + a, 1, 0);
            float *x = malloc(ins[a] * sizeof *x);
            for (int ci = 0; ci < NC; ci++)
                for (int p = 0; p < NP; p++) {
                    double fixed = make_input(r, (pattern)p, x, ins[a]);
                    char what[160];
                    snprintf(what, sizeof what, "wide %s %s in %zu %s", nesim_coding_name(codings[ci]),
                             wname[kinds[k]], ins[a], pname[p]);
                    check_case(&ly, codings[ci], x, fixed, 0, what);
                }
            free(x);
            free_layer(&ly);
        }
    gsl_rng_free(r);
}

/* Hand-checked: x = {0.5, 1.5, -2.5, 7.5}, k = 3 -> V_th = 1 exactly and
 * N = {0, 2, -2, 8} (ties to even); W = identity, so y = played N. */
static void test_ties_identity(void **state)
{
    const float x[4] = {0.5f, 1.5f, -2.5f, 7.5f};
    float w[16] = {0};
    for (int i = 0; i < 4; i++)
        w[i * 5] = 1.0f;
    nesim_tensor wt = view(NESIM_F32, 2, 4, 4, w);
    nesim_coded_linear L;
    nesim_error err = {0};
    assert_ok(nesim_coded_linear_init(&L, "eye", &wt, NULL, 0, NULL, 0, 0, &err), &err);
    static const struct {
        nesim_coding c;
        float y[4];
        int64_t spikes, T, clipped, first, last;
    } want[NC] = {
        {NESIM_CODE_BINARY, {0, 2, 0, 8}, 10, 8, 1, 0, 7},
        {NESIM_CODE_TERNARY, {0, 2, -2, 8}, 12, 8, 0, 0, 7},
        {NESIM_CODE_BITWISE, {0, 2, 0, 8}, 2, 4, 1, 0, 2},      /* 1000, 0010: steps 0 and 2 */
        {NESIM_CODE_BITWISE_BIDIR, {0, 2, -2, 8}, 3, 4, 0, 0, 2},
        {NESIM_CODE_BITWISE_TWOS, {0, 2, -2, 8}, 6, 5, 0, 0, 3}, /* -2 = 11110, 8 = 01000 */
    };
    for (int k = 0; k < NC; k++) {
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.coding = want[k].c;
        float y[4];
        nesim_coded_stats st;
        assert_ok(nesim_coded_linear_forward(&L, &o, x, y, &st, &err), &err);
        for (int i = 0; i < 4; i++)
            assert_true(y[i] == want[k].y[i]);
        assert_true(st.vth == 1.0);
        assert_int_equal(st.spikes, want[k].spikes);
        assert_int_equal(st.sops, 4 * want[k].spikes);
        assert_int_equal(st.steps, want[k].T);
        assert_int_equal(st.clipped, want[k].clipped);
        assert_int_equal(st.silent, 1);
        assert_int_equal(st.first_tick, want[k].first);
        assert_int_equal(st.last_tick, want[k].last);
        assert_int_equal(st.hist[0], 1);
        assert_int_equal(st.hist[2], 2);
        assert_int_equal(st.hist[NESIM_CODED_HIST], 1);
    }
}

/* A whole tensor's T (min_steps, SpikingBrain's dynamic_spikes over batch x
 * sequence): the same row at T = 7 instead of its own 4 plays the same
 * counts and outputs, its spikes 3 steps later (leading zero bits, most
 * significant first); a non-bitwise coding or T over 63 is refused. */
static void test_min_steps_pads_leading_zeros(void **state)
{
    const float x[4] = {0.5f, 1.5f, -2.5f, 7.5f};
    float w[16] = {0};
    for (int i = 0; i < 4; i++)
        w[i * 5] = 1.0f;
    nesim_tensor wt = view(NESIM_F32, 2, 4, 4, w);
    nesim_coded_linear L;
    nesim_error err = {0};
    assert_ok(nesim_coded_linear_init(&L, "eye", &wt, NULL, 0, NULL, 0, 0, &err), &err);
    nesim_coded_opts o;
    nesim_coded_opts_init(&o); /* bitwise-bidirectional: N = {0, 2, -2, 8}, T = 4, spikes at steps 0 and 2 */
    float y0[4], y1[4];
    nesim_coded_stats a, b;
    assert_ok(nesim_coded_linear_forward(&L, &o, x, y0, &a, &err), &err);
    o.min_steps = 7;
    assert_ok(nesim_coded_linear_forward(&L, &o, x, y1, &b, &err), &err);
    assert_memory_equal(y0, y1, sizeof y0);
    assert_int_equal(a.steps, 4);
    assert_int_equal(b.steps, 7);
    assert_int_equal(b.spikes, a.spikes);
    assert_int_equal(b.sops, a.sops);
    assert_int_equal(b.first_tick, a.first_tick + 3);
    assert_int_equal(b.last_tick, a.last_tick + 3);
    o.min_steps = 2; /* below the row's own T: the row's own */
    assert_ok(nesim_coded_linear_forward(&L, &o, x, y1, &b, &err), &err);
    assert_int_equal(b.steps, 4);
    o.min_steps = 64;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y1, &b, &err), NESIM_EINVAL);
    o.min_steps = 5;
    o.coding = NESIM_CODE_TERNARY;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y1, &b, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "min_steps"));
}

/* Binary coding of negative inputs: clipped and counted, and the output is
 * the dense product of the clipped counts — not of the raw ones. */
static void test_binary_clipping(void **state)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 99);
    layer ly;
    make_layer(&ly, r, W_F32, 200, 30, 1, 0);
    float x[200];
    make_input(r, P_GAUSS, x, 200);
    expect e;
    make_expect(&e, NESIM_CODE_BINARY, x, 200, 3.0, 0);
    int64_t neg = 0;
    for (size_t i = 0; i < 200; i++)
        neg += e.N[i] < 0;
    assert_true(neg > 20);
    nesim_coded_opts o;
    nesim_coded_opts_init(&o);
    o.coding = NESIM_CODE_BINARY;
    float y[30];
    nesim_coded_stats st;
    nesim_error err = {0};
    assert_ok(nesim_coded_linear_forward(&ly.L, &o, x, y, &st, &err), &err);
    assert_int_equal(st.clipped, neg);
    double ref[30], scale[30], raw[30];
    dense_expect(&ly, &e, ref, scale);
    double u[200];
    for (size_t i = 0; i < 200; i++)
        u[i] = (double)e.N[i] * e.vth; /* unclipped */
    assert_ok(nesim_linear_dense_ref(&ly.L, u, raw, NESIM_DENSE_F64, &err), &err);
    int differs = 0;
    for (size_t q = 0; q < 30; q++) {
        assert_true(fabs((double)y[q] - ref[q]) <= 1e-5 * scale[q]);
        differs += fabs((double)y[q] - raw[q]) > 1e-3 * scale[q];
    }
    assert_true(differs > 20); /* clipping matters, and the check would see it */
    free_expect(&e);
    free_layer(&ly);
    gsl_rng_free(r);
}

/* Batch: per-sample thresholds, samples back to back in virtual time. */
static void test_batch(void **state)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242);
    for (int ci = 0; ci < NC; ci++) {
        layer ly;
        make_layer(&ly, r, W_I8S, 96, 17, 1, 0);
        enum { S = 5 };
        float x[S * 96], y[S * 17];
        for (int s = 0; s < S; s++)
            make_input(r, s == 2 ? P_ZERO : (pattern)(s % 2 ? P_HUGE : P_GAUSS), x + s * 96, 96);
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.coding = codings[ci];
        o.t0 = 100;
        step_log lg = {.next = 100};
        o.on_step = on_step;
        o.user = &lg;
        int64_t arr[4096];
        o.step_events = arr;
        o.step_events_len = 4096;
        nesim_coded_stats tot, per[S];
        nesim_error err = {0};
        assert_ok(nesim_coded_linear_batch(&ly.L, &o, x, S, y, &tot, per, &err), &err);
        int64_t tick = 100, spikes = 0, steps = 0, first = -1, last = -1;
        double vsum = 0;
        for (int s = 0; s < S; s++) {
            expect e;
            make_expect(&e, codings[ci], x + s * 96, 96, 3.0, 0);
            double ref[17], scale[17];
            dense_expect(&ly, &e, ref, scale);
            for (int q = 0; q < 17; q++)
                assert_true(fabs((double)y[s * 17 + q] - ref[q]) <= 1e-5 * scale[q]);
            assert_true(per[s].vth == e.vth);
            assert_int_equal(per[s].spikes, e.spikes);
            assert_int_equal(per[s].steps, e.T);
            assert_int_equal(per[s].t_end, tick + e.T);
            assert_int_equal(per[s].first_tick, e.first < 0 ? -1 : tick + e.first);
            assert_int_equal(per[s].last_tick, e.last < 0 ? -1 : tick + e.last);
            for (int64_t t = 0; t < e.T; t++) {
                assert_int_equal(arr[tick - 100 + t], e.step_ev[t]);
                assert_int_equal(lg.ev[tick - 100 + t], e.step_ev[t]);
            }
            if (e.first >= 0 && first < 0)
                first = tick + e.first;
            if (e.last >= 0)
                last = tick + e.last;
            tick += e.T;
            spikes += e.spikes;
            steps += e.T;
            vsum += e.vth;
            free_expect(&e);
        }
        assert_int_equal(tot.samples, S);
        assert_int_equal(tot.inputs, S * 96);
        assert_int_equal(tot.spikes, spikes);
        assert_int_equal(tot.sops, spikes * 17);
        assert_int_equal(tot.steps, steps);
        assert_int_equal(tot.t_end, tick);
        assert_int_equal(tot.first_tick, first);
        assert_int_equal(tot.last_tick, last);
        assert_int_equal((int64_t)lg.len, steps);
        assert_true(fabs(tot.vth - vsum / S) <= 1e-15 * vsum);
        free(lg.ev);
        free_layer(&ly);
    }
    gsl_rng_free(r);
}

/* The observers' calls in order, as one running hash (order matters). */
typedef struct seen {
    uint64_t h;
    uint64_t n;
} seen;

static void seen_mix(seen *s, uint64_t a, uint64_t b)
{
    s->h = (s->h ^ a) * 1099511628211ull;
    s->h = (s->h ^ b) * 1099511628211ull;
    s->n++;
}
static void seen_spike(void *u, uint32_t ch, int64_t tick, int sign) { seen_mix(u, (uint64_t)ch << 8 | (uint8_t)sign, (uint64_t)tick); }
static void seen_step(void *u, int64_t tick, int64_t events) { seen_mix(u, (uint64_t)tick | 1ull << 63, (uint64_t)events); }

/* The batched kernel (tiles of 64 / element-size rows, made by the call or
 * by the layer) and any thread count give the bits of the row kernel run
 * one sample at a time: every dtype, exact and float sums, row counts that
 * leave a partial tile, more samples than one batch holds, and a layer
 * large enough (> 2^21 SOPs) that the threads really split it. The samples
 * of a batch are coded on every thread, yet the observers hear every spike
 * and step in the order one sample at a time gives. */
static void test_batch_tiles_threads_same_bits(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 77);
    static const size_t shapes[][2] = {{96, 1}, {96, 17}, {300, 70}, {130, 129}, {512, 1000}};
    enum { S = 20 };
    for (int wk = 0; wk < NW; wk++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
            for (int exact = 0; exact < 2; exact++) {
                const size_t in = shapes[sh][0], out = shapes[sh][1];
                if (exact && sh != 2)
                    continue;
                layer ly;
                make_layer(&ly, r, (wkind)wk, in, out, sh % 2 == 0, 0);
                ly.L.exact_sums = exact;
                float *x = malloc(S * in * sizeof *x), *y0 = malloc(S * out * sizeof *y0),
                      *y1 = malloc(S * out * sizeof *y1);
                assert_non_null(x);
                assert_non_null(y0);
                assert_non_null(y1);
                for (int q = 0; q < S; q++)
                    make_input(r, q == 3 ? P_ZERO : q % 3 ? P_GAUSS : P_SPARSE, x + q * in, in);
                nesim_coded_opts o;
                nesim_coded_opts_init(&o);
                nesim_error err = {0};
                nesim_coded_stats one[S], per[S], tot;
                seen s0 = {1469598103934665603ull, 0}, s1;
                o.on_spike = seen_spike, o.spike_user = &s0, o.on_step = seen_step, o.user = &s0;
                for (int q = 0; q < S; q++) {
                    o.t0 = q ? one[q - 1].t_end : 0;
                    assert_ok(nesim_coded_linear_forward(&ly.L, &o, x + q * in, y0 + q * out, &one[q], &err), &err);
                }
                o.t0 = 0;
                assert_true(s0.n > (uint64_t)S);
                unsigned char *tl = NULL;
                assert_ok(nesim_coded_tiles_new(&ly.L, 2, &tl, &err), &err);
                for (int th = 1; th <= 3; th++)
                    for (int tiled = 0; tiled < 2; tiled++) {
                        ly.L.tiles = tiled ? tl : NULL;
                        o.threads = th;
                        memset(y1, 0xff, S * out * sizeof *y1);
                        s1 = (seen){1469598103934665603ull, 0};
                        o.spike_user = o.user = &s1;
                        assert_ok(nesim_coded_linear_batch(&ly.L, &o, x, S, y1, &tot, per, &err), &err);
                        assert_int_equal(s1.n, s0.n);
                        assert_true(s1.h == s0.h);
                        o.on_spike = NULL, o.on_step = NULL;
                        if (memcmp(y0, y1, S * out * sizeof *y0))
                            fail_msg("%s [%zu, %zu] exact %d, %d threads, tiles %d: not the same bits",
                                     wname[wk], out, in, exact, th, tiled);
                        for (int q = 0; q < S; q++) {
                            assert_int_equal(per[q].sops, one[q].sops);
                            assert_int_equal(per[q].updates, one[q].updates);
                            assert_int_equal(per[q].t_end, one[q].t_end);
                        }
                        /* one sample at a time on threads, too */
                        assert_ok(nesim_coded_linear_forward(&ly.L, &o, x + in, y1, NULL, &err), &err);
                        assert_memory_equal(y1, y0 + out, out * sizeof *y1);
                        o.on_spike = seen_spike, o.on_step = seen_step;
                    }
                ly.L.tiles = NULL;
                free(tl);
                free(x);
                free(y0);
                free(y1);
                free_layer(&ly);
            }
    gsl_rng_free(r);
}

static void test_bad_input(void **state)
{
    float w[6 * 7] = {0};
    nesim_tensor wt = view(NESIM_F32, 2, 6, 7, w);
    nesim_coded_linear L;
    nesim_error err = {0};
    assert_ok(nesim_coded_linear_init(&L, "blocks.3.ffn", &wt, NULL, 0, NULL, 7, 6, &err), &err);
    float x[3 * 7], y[3 * 6];
    for (int i = 0; i < 21; i++)
        x[i] = (float)i - 10;
    for (int fixed = 0; fixed < 2; fixed++) {
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.vth = fixed ? 0.5 : 0;
        float bad[2] = {NAN, INFINITY};
        for (int b = 0; b < 2; b++) {
            x[5] = bad[b];
            err = (nesim_error){0};
            assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y, NULL, &err), NESIM_EINVAL);
            assert_int_equal(err.code, NESIM_EINVAL);
            assert_non_null(strstr(err.msg, "blocks.3.ffn"));
            assert_non_null(strstr(err.msg, "input 5"));
            x[5] = -5;
            x[7 + 3] = bad[b]; /* sample 1, input 3 */
            assert_int_equal(nesim_coded_linear_batch(&L, &o, x, 3, y, NULL, NULL, &err),
                             NESIM_EINVAL);
            assert_non_null(strstr(err.msg, "sample 1, input 3"));
            assert_int_equal(nesim_coded_dense_input(&o, x + 7, 7, (double[7]){0}, NULL, &err),
                             NESIM_EINVAL);
            assert_non_null(strstr(err.msg, "input 3"));
            x[7 + 3] = -7;
        }
    }
    /* a count that saturates (fixed threshold far too small) */
    nesim_coded_opts o;
    nesim_coded_opts_init(&o);
    o.vth = 1e-300;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "input 0"));
    /* bad options */
    nesim_coded_opts_init(&o);
    o.vth = -1;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y, NULL, &err), NESIM_EINVAL);
    nesim_coded_opts_init(&o);
    o.k = 0;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y, NULL, &err), NESIM_EINVAL);
    nesim_coded_opts_init(&o);
    o.coding = (nesim_coding)9;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y, NULL, &err), NESIM_EINVAL);
    nesim_coded_opts_init(&o);
    o.step_events_len = 3;
    assert_int_equal(nesim_coded_linear_forward(&L, &o, x, y, NULL, &err), NESIM_EINVAL);
}

static void test_bad_layers(void **state)
{
    nesim_error err = {0};
    nesim_coded_linear L;
    static float w[12 * 8];
    static signed char q[12 * 8];
    static float sc[12 * 4], b[12];
    nesim_tensor wf = view(NESIM_F32, 2, 12, 8, w), wq = view(NESIM_I8, 2, 12, 8, q);
    /* weight shape against the declared sizes */
    assert_int_equal(nesim_coded_linear_init(&L, "up", &wf, NULL, 0, NULL, 9, 12, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "up"));
    assert_non_null(strstr(err.msg, "[12, 8]"));
    assert_int_equal(nesim_coded_linear_init(&L, "up", &wf, NULL, 0, NULL, 8, 11, &err), NESIM_EINVAL);
    assert_ok(nesim_coded_linear_init(&L, "up", &wf, NULL, 0, NULL, 8, 12, &err), &err);
    /* not 2-D; a view whose count disagrees with its shape */
    nesim_tensor one = view(NESIM_F32, 1, 96, 0, w);
    assert_int_equal(nesim_coded_linear_init(&L, "up", &one, NULL, 0, NULL, 0, 0, &err), NESIM_EINVAL);
    nesim_tensor lie = wf;
    lie.count = 95;
    assert_int_equal(nesim_coded_linear_init(&L, "up", &lie, NULL, 0, NULL, 0, 0, &err), NESIM_EINVAL);
    /* unsupported dtype */
    nesim_tensor wi = view(NESIM_I16, 2, 12, 4, w);
    assert_int_equal(nesim_coded_linear_init(&L, "up", &wi, NULL, 0, NULL, 0, 0, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "i16"));
    /* group scales: group must divide in, shape [out, in/group], f32, i8 only */
    nesim_tensor s4 = view(NESIM_F32, 2, 12, 4, sc);
    assert_ok(nesim_coded_linear_init(&L, "q", &wq, &s4, 2, NULL, 0, 0, &err), &err);
    assert_int_equal(nesim_coded_linear_init(&L, "q", &wq, &s4, 3, NULL, 0, 0, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "does not divide"));
    assert_int_equal(nesim_coded_linear_init(&L, "q", &wq, &s4, 0, NULL, 0, 0, &err), NESIM_EINVAL);
    assert_int_equal(nesim_coded_linear_init(&L, "q", &wq, &s4, 4, NULL, 0, 0, &err), NESIM_EINVAL);
    nesim_tensor s_rows = view(NESIM_F32, 2, 11, 4, sc);
    assert_int_equal(nesim_coded_linear_init(&L, "q", &wq, &s_rows, 2, NULL, 0, 0, &err), NESIM_EINVAL);
    nesim_tensor s_bf = view(NESIM_BF16, 2, 12, 4, sc);
    assert_int_equal(nesim_coded_linear_init(&L, "q", &wq, &s_bf, 2, NULL, 0, 0, &err), NESIM_EINVAL);
    assert_int_equal(nesim_coded_linear_init(&L, "f", &wf, &s4, 2, NULL, 0, 0, &err), NESIM_EINVAL);
    /* bias length */
    nesim_tensor b11 = view(NESIM_F32, 1, 11, 0, b), b12 = view(NESIM_F32, 1, 12, 0, b);
    assert_int_equal(nesim_coded_linear_init(&L, "up", &wf, NULL, 0, &b11, 0, 0, &err), NESIM_EINVAL);
    assert_ok(nesim_coded_linear_init(&L, "up", &wf, NULL, 0, &b12, 0, 0, &err), &err);
    assert_int_equal(nesim_coded_linear_init(&L, "up", NULL, NULL, 0, NULL, 0, 0, &err), NESIM_EINVAL);
}

int main(void)
{
    nesim_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ties_identity),
        cmocka_unit_test(test_min_steps_pads_leading_zeros), cmocka_unit_test(test_random_layers),
        cmocka_unit_test(test_wide_rows),     cmocka_unit_test(test_binary_clipping),
        cmocka_unit_test(test_batch),         cmocka_unit_test(test_batch_tiles_threads_same_bits),         cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bad_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
