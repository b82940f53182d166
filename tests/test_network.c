/* test_network.c — the event-driven engine against a tick-by-tick reference,
 * determinism, counters, Poisson sources, silence and bad input. */
#include "tests/support/check.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/classic.h"
#include "sim/network.h"
#include "tests/support/params.h"

static const double mV = 1e-3, ms = 1e-3, DT = 1e-4;

/* ---- the oracle: a clock-driven simulation with the same models --------- */

/* Steps every neuron every tick with the models' closed-form advance over one
 * tick, applies inputs in the documented order (source id, projection, target
 * index), then tests threshold. No prediction, no queue, no budget: if the
 * event-driven engine skips or mis-times anything, spike lists differ. */
static size_t reference_run(nesim_net *net, int64_t ticks, nesim_spike *out, size_t cap)
{
    int np = nesim_population_count(net), nj = nesim_projection_count(net);
    uint32_t N = 0;
    for (int p = 0; p < np; p++)
        N += nesim_population_size(net, p);
    double *st = calloc((size_t)N * 4, sizeof *st);
    int64_t *ref = calloc(N, sizeof *ref);
    uint32_t *tg = malloc(N * sizeof *tg);
    double *wt = malloc(N * sizeof *wt);
    /* fired[t % H][g]: neuron g spiked at tick t (H > every delay) */
    enum { H = 64 };
    uint8_t *fired[H];
    for (int h = 0; h < H; h++)
        fired[h] = calloc(N, 1);
    /* initial states: read from the engine before it runs (tick 0) */
    nesim_error err = {0};
    for (uint32_t g = 0; g < N; g++)
        assert_ok(nesim_neuron_state(net, g, st + 4 * g, 4, &err), &err);
    size_t n = 0;
    for (int64_t t = 0; t < ticks; t++) {
        for (uint32_t g = 0; g < N && t > 0; g++) {
            const nesim_dyn *d = nesim_neuron_dyn(net, g);
            d->model->advance(d, st + 4 * g, t - 1, t, ref[g]);
        }
        /* deliveries due now, by (source, projection), targets ascending */
        for (uint32_t src = 0; src < N; src++) {
            for (int j = 0; j < nj; j++) {
                const nesim_proj_spec *ps = nesim_projection_spec(net, j);
                int64_t te = t - ps->delay;
                if (te < 0 || !fired[te % H][src] || nesim_population_of(net, src) != ps->pre)
                    continue;
                uint32_t i = src - nesim_population_first(net, ps->pre);
                size_t f = nesim_projection_targets(net, j, i, tg, N);
                nesim_projection_weights(net, j, i, wt, N);
                for (size_t k = 0; k < f; k++) {
                    uint32_t g = nesim_population_first(net, ps->post) + tg[k];
                    const nesim_dyn *d = nesim_neuron_dyn(net, g);
                    d->model->input(d, st + 4 * g, wt[k], t < ref[g]);
                }
            }
        }
        memset(fired[t % H], 0, N);
        for (uint32_t g = 0; g < N; g++) {
            const nesim_dyn *d = nesim_neuron_dyn(net, g);
            if (t >= ref[g] && d->model->above(d, st + 4 * g)) {
                d->model->fire(d, st + 4 * g);
                ref[g] = t + d->ref_ticks;
                fired[t % H][g] = 1;
                if (n < cap)
                    out[n] = (nesim_spike){t, g, (uint32_t)nesim_population_of(net, g)};
                n++;
            }
        }
    }
    for (int h = 0; h < H; h++)
        free(fired[h]);
    free(st);
    free(ref);
    free(tg);
    free(wt);
    return n;
}

static test_bag base(void)
{
    return (test_bag){.tau_m = 20 * ms, .v_rest = -49 * mV, .v_thresh = -50 * mV,
                                 .v_reset = -60 * mV, .t_ref = 2 * ms, .tau_e = 5 * ms,
                                 .tau_i = 10 * ms, .tau_a = 50 * ms, .b = 1 * mV, .i_drive = 0.37};
}

/* Adds a population of `model` (threshold rule `rule`, NULL: the model's)
 * with the bag's parameters that the model takes. */
static int add_pop(nesim_net *net, const char *name, const char *model, const char *rule, uint32_t n,
                   test_bag p, nesim_init_dist v0, int *id, nesim_error *err)
{
    nesim_param q[NESIM_PARAM_MAX];
    nesim_pop_spec s = {.name = name, .model = model, .threshold = rule, .n = n, .params = q,
                        .n_params = test_params(model, rule, &p, q), .v_init = v0};
    return nesim_add_population(net, &s, id, err);
}

/* Builds a mixed network: every model, several delays and rules. */
static nesim_net *mixed(uint64_t seed, int *pops)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, seed, &err);
    const char *models[4] = {"lif_exp", "lif", "alif", "if"};
    for (int k = 0; k < 4; k++) {
        test_bag p = base();
        if (k == 1)
            p.v_rest = -51 * mV; /* below threshold: fires only when driven */
        assert_ok(add_pop(net, models[k], models[k], NULL, 60, p, (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV},
                          &pops[k], &err),
                  &err);
    }
    struct { int a, b; double w, p; int64_t d; int kind; } c[] = {
        {0, 0, 2.0, 0.1, 1, NESIM_FIXED_PROB},  {0, 1, 1.5, 0.2, 3, NESIM_FIXED_PROB},
        {1, 0, -0.5, 0.1, 2, NESIM_FIXED_PROB}, {2, 1, 0.8, 0.3, 17, NESIM_FIXED_PROB},
        {1, 2, 0.5, 0, 1, NESIM_ONE_TO_ONE},    {3, 2, -0.004, 0, 5, NESIM_ALL_TO_ALL},
        {0, 3, -0.3, 0.1, 40, NESIM_FIXED_PROB},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        nesim_proj_spec s = {.pre = pops[c[k].a], .post = pops[c[k].b], .kind = c[k].kind,
                             .p = c[k].p, .weight = c[k].w * mV, .delay = c[k].d};
        assert_ok(nesim_connect(net, &s, NULL, &err), &err);
    }
    for (int k = 0; k < 4; k++)
        assert_ok(nesim_record(net, pops[k], 1, &err), &err);
    return net;
}

/* A network of explicit synapses: random pre, post, weight (both signs) and
 * delay (1..40 ticks) per synapse, repeats included, drawn by the test. */
static nesim_net *explicit_net(uint64_t seed, int *pops)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, seed, &err);
    const char *models[3] = {"lif_exp", "lif", "if"};
    for (int k = 0; k < 3; k++) {
        test_bag p = base();
        if (k == 1)
            p.v_rest = -51 * mV;
        assert_ok(add_pop(net, models[k], models[k], NULL, 50, p, (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV},
                          &pops[k], &err),
                  &err);
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    enum { S = 1500 };
    uint32_t *a = malloc(S * sizeof *a), *b = malloc(S * sizeof *b);
    double *w = malloc(S * sizeof *w);
    int64_t *d = malloc(S * sizeof *d);
    for (int pre = 0; pre < 3; pre++)
        for (int post = 0; post < 3; post++) {
            for (int k = 0; k < S; k++) {
                a[k] = (uint32_t)gsl_rng_uniform_int(r, 50);
                b[k] = (uint32_t)gsl_rng_uniform_int(r, 50);
                w[k] = (gsl_rng_uniform(r) * 2.2 - 0.8) * mV;
                d[k] = 1 + (int64_t)gsl_rng_uniform_int(r, 40);
            }
            nesim_proj_spec s = {.pre = pops[pre], .post = pops[post], .kind = NESIM_EXPLICIT, .pre_idx = a,
                                 .post_idx = b, .w = w, .delays = pre == post ? NULL : d, .delay = 3, .n_syn = S};
            assert_ok(nesim_connect(net, &s, NULL, &err), &err);
        }
    gsl_rng_free(r);
    free(a), free(b), free(w), free(d);
    for (int k = 0; k < 3; k++)
        assert_ok(nesim_record(net, pops[k], 1, &err), &err);
    return net;
}

/* Per-synapse weights and delays against the clock-driven reference. */
static void test_explicit_synapses_match_reference(void **st)
{
    nesim_error err = {0};
    int pops[3];
    nesim_net *ref_net = explicit_net(5, pops), *net = explicit_net(5, pops);
    /* 3 same-population projections (one delay) + 6 with 40 delays each, at most */
    assert_true(nesim_projection_count(net) > 9);
    assert_ok(nesim_run(ref_net, 0, &err), &err);
    enum { T = 6000, CAP = 200000 };
    nesim_spike *want = malloc(CAP * sizeof *want);
    size_t n_want = reference_run(ref_net, T, want, CAP);
    assert_ok(nesim_run(net, T, &err), &err);
    size_t n_got;
    const nesim_spike *got = nesim_spikes(net, &n_got);
    printf("  explicit synapses: %zu spikes (reference %zu)\n", n_got, n_want);
    assert_true(n_want > 500);
    assert_int_equal(n_got, n_want);
    assert_memory_equal(got, want, n_got * sizeof *got);
    /* repeats of (pre, post, delay) are one synapse of their summed weight */
    uint64_t syn = 0;
    for (int j = 0; j < nesim_projection_count(net); j++)
        for (uint32_t i = 0; i < 50; i++)
            syn += nesim_projection_targets(net, j, i, NULL, 0);
    assert_true(syn < 9 * 1500);
    free(want);
    nesim_net_free(ref_net);
    nesim_net_free(net);
}

static void test_engine_matches_clock_driven_reference(void **st)
{
    nesim_error err = {0};
    int pops[4];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        nesim_net *ref_net = mixed(seed, pops), *net = mixed(seed, pops);
        assert_ok(nesim_run(ref_net, 0, &err), &err); /* initialise states only */
        enum { T = 8000, CAP = 200000 };
        nesim_spike *want = malloc(CAP * sizeof *want);
        size_t n_want = reference_run(ref_net, T, want, CAP);
        assert_ok(nesim_run(net, T, &err), &err);
        size_t n;
        const nesim_spike *got = nesim_spikes(net, &n);
        print_message("seed %llu: reference %zu spikes, engine %zu\n", (unsigned long long)seed, n_want, n);
        assert_true(n_want > 1500);
        size_t by_pop[4] = {0};
        for (size_t i = 0; i < n; i++)
            by_pop[nesim_population_of(net, got[i].id)]++;
        for (size_t i = 0; i < n && i < n_want; i++)
            if (got[i].t != want[i].t || got[i].id != want[i].id)
                fail_msg("seed %llu spike %zu: engine (t=%lld, id=%u), reference (t=%lld, id=%u)",
                         (unsigned long long)seed, i, (long long)got[i].t, got[i].id,
                         (long long)want[i].t, want[i].id);
        assert_int_equal(n, n_want);
        for (int k = 0; k < 4; k++)
            if (by_pop[k] < 20) /* every model fires */
                fail_msg("population %d fired %zu times", k, by_pop[k]);
        free(want);
        nesim_net_free(ref_net);
        nesim_net_free(net);
    }
}

/* Random networks against the reference: every model, resting levels above
 * and below threshold, strong and weak, excitatory and inhibitory weights,
 * several delays — the shapes where prediction margins and slack matter. */
static nesim_net *random_net(gsl_rng *r, uint64_t seed, int rules)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, seed, &err);
    const char *models[4] = {"lif_exp", "lif", "alif", "if"};
    int np = 2 + (int)gsl_rng_uniform_int(r, 3), pops[4];
    for (int k = 0; k < np; k++) {
        test_bag p = base();
        p.v_rest = (-53 + 5 * gsl_rng_uniform(r)) * mV;
        p.tau_m = (5 + 30 * gsl_rng_uniform(r)) * ms;
        p.tau_e = (1 + 8 * gsl_rng_uniform(r)) * ms;
        p.tau_i = (2 + 15 * gsl_rng_uniform(r)) * ms;
        if (fabs(p.tau_e - p.tau_m) < 0.5 * ms)
            p.tau_e = p.tau_m / 2;
        if (fabs(p.tau_i - p.tau_m) < 0.5 * ms)
            p.tau_i = p.tau_m / 3;
        p.t_ref = gsl_rng_uniform_int(r, 40) * DT;
        p.i_drive = 0.1 + 0.5 * gsl_rng_uniform(r);
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        const char *model = models[gsl_rng_uniform_int(r, 4)], *rule = NULL;
        uint32_t n = 20 + (uint32_t)gsl_rng_uniform_int(r, 60);
        if (rules) {
            /* every model with either threshold rule and either reset */
            if (strcmp(model, "alif") == 0)
                model = "lif";
            rule = gsl_rng_uniform(r) < 0.5 ? "adaptive" : "fixed";
            p.reset_subtract = gsl_rng_uniform(r) < 0.5;
            p.tau_a = (10 + 100 * gsl_rng_uniform(r)) * ms;
            p.b = 3 * gsl_rng_uniform(r) * mV;
            p.i_drive = (gsl_rng_uniform(r) - 0.3) * 0.5;
        }
        assert_ok(add_pop(net, name, model, rule, n, p, (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV},
                          &pops[k], &err),
                  &err);
        if (getenv("NESIM_TEST_VERBOSE"))
            print_message("cfg %llu pop %d: %s/%s subtract %d n %u first %u drive %g tref %g\n", (unsigned long long)seed,
                          k, model, rule ? rule : "-", p.reset_subtract, n, nesim_population_first(net, pops[k]), p.i_drive,
                          p.t_ref);
        assert_ok(nesim_record(net, pops[k], 1, &err), &err);
    }
    int nj = 2 + (int)gsl_rng_uniform_int(r, 5);
    for (int j = 0; j < nj; j++) {
        nesim_proj_spec c = {.pre = pops[gsl_rng_uniform_int(r, (unsigned long)np)],
                             .post = pops[gsl_rng_uniform_int(r, (unsigned long)np)],
                             .kind = NESIM_FIXED_PROB, .p = 0.05 + 0.3 * gsl_rng_uniform(r),
                             .weight = (gsl_rng_uniform(r) < 0.7 ? 1 : -2) * (0.2 + 3 * gsl_rng_uniform(r)) * mV,
                             .delay = 1 + (int64_t)gsl_rng_uniform_int(r, 30)};
        assert_ok(nesim_connect(net, &c, NULL, &err), &err);
    }
    return net;
}

static void random_vs_reference(int rules, unsigned long configs)
{
    nesim_error err = {0};
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int total = 0;
    for (unsigned long cfg = 0; cfg < configs; cfg++) /* configs 36 and 47 caught a margin bug */ {
        gsl_rng_set(r, (rules ? 5000 : 1000) + cfg);
        nesim_net *a = random_net(r, cfg, rules);
        gsl_rng_set(r, (rules ? 5000 : 1000) + cfg);
        nesim_net *b = random_net(r, cfg, rules);
        enum { T = 3000, CAP = 400000 };
        assert_ok(nesim_run(a, 0, &err), &err);
        nesim_spike *want = malloc(CAP * sizeof *want);
        size_t nw = reference_run(a, T, want, CAP), n;
        assert_ok(nesim_run(b, T, &err), &err);
        const nesim_spike *got = nesim_spikes(b, &n);
        for (size_t i = 0; i < n && i < nw; i++)
            if (got[i].t != want[i].t || got[i].id != want[i].id)
                fail_msg("config %lu spike %zu: engine (t=%lld, id=%u), reference (t=%lld, id=%u)", cfg, i,
                         (long long)got[i].t, got[i].id, (long long)want[i].t, want[i].id);
        assert_int_equal(n, nw);
        total += (int)n;
        free(want);
        nesim_net_free(a);
        nesim_net_free(b);
    }
    print_message("%lu configurations, %d spikes\n", configs, total);
    assert_true(total > 10000);
    gsl_rng_free(r);
}

static void test_random_networks_match_reference(void **st) { random_vs_reference(0, 64); }

/* The threshold rules (fixed, adaptive) and both resets on every model, so
 * every kernel (epoch and default) and every prediction path is held
 * against the reference. */
static void test_rules_and_resets_match_reference(void **st) { random_vs_reference(1, 48); }

/* Every model in the registry, the ones added later included, against the
 * reference: populations of the model (random parameters from the bag where
 * the model takes them, its defaults elsewhere; each rule it takes; both
 * resets) driven by integrate-and-fire pacemakers and by each other. A model
 * may refuse a draw of parameters (prepare() fails): the test draws again. */
/* Moves some of q's parameters to per-neuron arrays of a few distinct values
 * each (so classes are shared and differ): vals (room for NESIM_PARAM_MAX * n
 * doubles) holds them. Returns how many moved; *nq shrinks accordingly. */
static size_t vary(gsl_rng *r, nesim_param *q, size_t *nq, uint32_t n, double *vals, nesim_param_array *out)
{
    size_t na = 0, keep = 0;
    for (size_t i = 0; i < *nq; i++) {
        const char *nm = q[i].name;
        int volt = strncmp(nm, "v_", 2) == 0, tau = strncmp(nm, "tau_", 4) == 0;
        int ref = strcmp(nm, "t_ref") == 0, sub = strcmp(nm, "reset_subtract") == 0;
        int drive = strcmp(nm, "i_drive") == 0, jump = strcmp(nm, "b") == 0;
        if (!(volt || tau || ref || sub || drive || jump) || gsl_rng_uniform(r) < 0.4) {
            q[keep++] = q[i];
            continue;
        }
        double *v = vals + na * n;
        for (uint32_t j = 0; j < n; j++) {
            int c = (int)gsl_rng_uniform_int(r, 4);
            static const double fac[4] = {0.9, 1.0, 1.1, 1.25}, off[4] = {-1, 0, 1, 2}, ticks[4] = {0, 5, 17, 30};
            v[j] = volt   ? q[i].value + off[c] * mV
                   : tau  ? q[i].value * fac[c]
                   : ref  ? ticks[c] * DT
                   : sub  ? (double)(c & 1)
                   : drive ? q[i].value + 0.1 * (c - 1)
                           : q[i].value * fac[c];
        }
        out[na++] = (nesim_param_array){nm, v};
    }
    *nq = keep;
    return na;
}

static nesim_net *model_net_ex(const char *model, gsl_rng *r, uint64_t seed, int per_neuron)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, seed, &err);
    const nesim_rule *implied;
    const nesim_model *m = nesim_model_find(model, &implied);
    int pops[4];
    test_bag drive = base();
    assert_ok(add_pop(net, "drive", "if", NULL, 40, drive, (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV},
                      &pops[0], &err),
              &err);
    assert_ok(nesim_record(net, pops[0], 1, &err), &err);
    for (int k = 1; k < 4; k++) {
        int tries = 0;
        for (;;) {
            test_bag p = base();
            p.v_rest = (-58 + 10 * gsl_rng_uniform(r)) * mV;
            p.tau_m = (5 + 30 * gsl_rng_uniform(r)) * ms;
            p.tau_e = p.tau_m / (2 + 2 * gsl_rng_uniform(r));
            p.tau_i = p.tau_m / (1.3 + gsl_rng_uniform(r));
            p.t_ref = gsl_rng_uniform_int(r, 40) * DT;
            p.i_drive = (gsl_rng_uniform(r) - 0.3) * 0.5;
            p.reset_subtract = gsl_rng_uniform(r) < 0.5;
            p.tau_a = (10 + 100 * gsl_rng_uniform(r)) * ms;
            p.b = 3 * gsl_rng_uniform(r) * mV;
            const char *rule = NULL;
            if (!implied) {
                unsigned adaptive = m->rules & (1u << NESIM_RULE_ADAPTIVE);
                rule = adaptive && gsl_rng_uniform(r) < 0.5 ? "adaptive" : "fixed";
            }
            char name[16];
            snprintf(name, sizeof name, "p%d", k);
            uint32_t n = 20 + (uint32_t)gsl_rng_uniform_int(r, 40);
            nesim_param q[NESIM_PARAM_MAX];
            nesim_param_array pa[NESIM_PARAM_MAX];
            double *vals = malloc(NESIM_PARAM_MAX * n * sizeof *vals);
            size_t nq = test_params(model, rule, &p, q), na = per_neuron ? vary(r, q, &nq, n, vals, pa) : 0;
            nesim_pop_spec ps = {.name = name, .model = model, .threshold = rule, .n = n, .params = q,
                                 .n_params = nq, .arrays = pa, .n_arrays = na,
                                 .v_init = (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV}};
            int ok = nesim_add_population(net, &ps, &pops[k], &err) == NESIM_OK;
            free(vals);
            if (ok)
                break;
            if (++tries == 50)
                fail_msg("model %s refused 50 draws of parameters; last: %s", model, err.msg);
        }
        assert_ok(nesim_record(net, pops[k], 1, &err), &err);
    }
    for (int k = 1; k < 4; k++) {
        nesim_proj_spec c = {.pre = pops[0], .post = pops[k], .kind = NESIM_FIXED_PROB,
                             .p = 0.1 + 0.3 * gsl_rng_uniform(r), .weight = (0.5 + 3 * gsl_rng_uniform(r)) * mV,
                             .delay = 1 + (int64_t)gsl_rng_uniform_int(r, 20)};
        assert_ok(nesim_connect(net, &c, NULL, &err), &err);
        nesim_proj_spec x = {.pre = pops[k], .post = pops[1 + gsl_rng_uniform_int(r, 3)], .kind = NESIM_FIXED_PROB,
                             .p = 0.05 + 0.2 * gsl_rng_uniform(r),
                             .weight = (gsl_rng_uniform(r) < 0.6 ? 1 : -2) * (0.2 + 2 * gsl_rng_uniform(r)) * mV,
                             .delay = 1 + (int64_t)gsl_rng_uniform_int(r, 30)};
        assert_ok(nesim_connect(net, &x, NULL, &err), &err);
    }
    return net;
}

static void models_vs_reference(int per_neuron)
{
    nesim_error err = {0};
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int models = 0;
    for (const char *const *name = nesim_model_names(); *name; name++) {
        const nesim_model *m = nesim_model_find(*name, NULL);
        if (m->is_source)
            continue;
        size_t total = 0;
        for (uint64_t cfg = 0; cfg < 6; cfg++) {
            gsl_rng_set(r, 9000 + cfg);
            nesim_net *a = model_net_ex(*name, r, cfg, per_neuron);
            gsl_rng_set(r, 9000 + cfg);
            nesim_net *b = model_net_ex(*name, r, cfg, per_neuron);
            enum { T = 3000, CAP = 400000 };
            assert_ok(nesim_run(a, 0, &err), &err);
            nesim_spike *want = malloc(CAP * sizeof *want);
            size_t nw = reference_run(a, T, want, CAP), n, mine = 0;
            assert_ok(nesim_run(b, T, &err), &err);
            const nesim_spike *got = nesim_spikes(b, &n);
            for (size_t i = 0; i < n && i < nw; i++)
                if (got[i].t != want[i].t || got[i].id != want[i].id)
                    fail_msg("%s config %llu spike %zu: engine (t=%lld, id=%u), reference (t=%lld, id=%u)", *name,
                             (unsigned long long)cfg, i, (long long)got[i].t, got[i].id, (long long)want[i].t,
                             want[i].id);
            assert_int_equal(n, nw);
            for (size_t i = 0; i < n; i++)
                mine += got[i].pop != 0; /* the model's own spikes, not the pacemakers' */
            total += mine;
            free(want);
            nesim_net_free(a);
            nesim_net_free(b);
        }
        print_message("%s%s: %zu spikes of its own in 6 configurations\n", *name,
                      per_neuron ? " (per-neuron parameters)" : "", total);
        if (total < 500)
            fail_msg("model %s fired only %zu times: the comparison says little", *name, total);
        models++;
    }
    assert_true(models >= 5);
    gsl_rng_free(r);
}

static void test_every_model_matches_reference(void **st) { models_vs_reference(0); }

/* The same with parameters given per neuron (time constants, levels,
 * refractory periods, drives, even the reset mode differing by neuron): the
 * kernels read each neuron's own constants, and the engine's kick bounds and
 * prediction slack hold for every class. The reference steps each neuron
 * with its own constants (nesim_neuron_dyn). */
static void test_per_neuron_parameters_match_reference(void **st) { models_vs_reference(1); }

/* ---- determinism -------------------------------------------------------- */

static void run_cuba(uint64_t seed, nesim_spike **out, size_t *n)
{
    nesim_error err = {0};
    nesim_classic_opts o = {.name = "cuba", .neurons = 1000, .tick_s = DT, .seed = seed};
    nesim_graph *g;
    int E, I;
    assert_ok(nesim_classic_build(&o, &g, &E, &I, &err), &err);
    nesim_net *net = nesim_net_from_graph(g, &err);
    assert_ok(nesim_record(net, E, 1, &err), &err);
    assert_ok(nesim_record(net, I, 1, &err), &err);
    assert_ok(nesim_run(net, 2500, &err), &err);
    assert_ok(nesim_run(net, 2500, &err), &err); /* runs continue seamlessly */
    const nesim_spike *s = nesim_spikes(net, n);
    *out = malloc(*n * sizeof **out + 1);
    memcpy(*out, s, *n * sizeof **out);
    nesim_net_free(net);
}

static void test_determinism(void **st)
{
    nesim_spike *a, *b, *c;
    size_t na, nb, nc;
    run_cuba(42, &a, &na);
    run_cuba(42, &b, &nb);
    run_cuba(43, &c, &nc);
    assert_true(na > 1000);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    assert_int_equal(nesim_spike_checksum(a, na), nesim_spike_checksum(b, nb));
    assert_true(na != nc || memcmp(a, c, na * sizeof *a) != 0);
    assert_true(nesim_spike_checksum(a, na) != nesim_spike_checksum(c, nc));
    free(a);
    free(b);
    free(c);
}

/* One run of n ticks equals the same time cut into many runs. */
static void test_split_runs_identical(void **st)
{
    nesim_error err = {0};
    int pops[4];
    nesim_net *a = mixed(9, pops), *b = mixed(9, pops);
    assert_ok(nesim_run(a, 2000, &err), &err);
    for (int k = 0; k < 20; k++)
        assert_ok(nesim_run(b, 100, &err), &err);
    size_t na, nb;
    const nesim_spike *sa = nesim_spikes(a, &na), *sb = nesim_spikes(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(sa, sb, na * sizeof *sa);
    assert_int_equal(nesim_now(b), 2000);
    nesim_net_free(a);
    nesim_net_free(b);
}

/* ---- counters ----------------------------------------------------------- */

static void test_sops_equal_spikes_times_fanout(void **st)
{
    nesim_error err = {0};
    int pops[4];
    nesim_net *net = mixed(5, pops);
    assert_ok(nesim_run(net, 3000, &err), &err);
    size_t n;
    const nesim_spike *s = nesim_spikes(net, &n);
    uint64_t want[4] = {0}, spikes[4] = {0};
    uint32_t *tg = malloc(1000 * sizeof *tg);
    for (size_t i = 0; i < n; i++) {
        int p = nesim_population_of(net, s[i].id);
        spikes[p]++;
        if (s[i].t >= 3000)
            continue;
        for (int j = 0; j < nesim_projection_count(net); j++) {
            const nesim_proj_spec *ps = nesim_projection_spec(net, j);
            /* delivered only if due before the end of the run */
            if (ps->pre == p && s[i].t + ps->delay < 3000)
                want[ps->post] += nesim_projection_targets(
                    net, j, s[i].id - nesim_population_first(net, p), tg, 1000);
        }
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(nesim_population_counters(net, pops[k])->sops, want[k]);
        assert_int_equal(nesim_population_counters(net, pops[k])->spikes, spikes[k]);
    }
    free(tg);
    nesim_net_free(net);
}

/* ---- Poisson sources ---------------------------------------------------- */

static void test_poisson_rate_and_drive(void **st)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, 3, &err);
    nesim_pop_spec src = {.name = "src", .model = "poisson", .n = 1000, NESIM_PARAMS({"rate_hz", 20})};
    test_bag p = base();
    p.v_rest = -60 * mV;
    int S, T;
    assert_ok(nesim_add_population(net, &src, &S, &err), &err);
    assert_ok(add_pop(net, "tgt", "lif", NULL, 10, p, (nesim_init_dist){.kind = NESIM_INIT_CONST, .a = -60 * mV, .b = 0}, &T, &err), &err);
    nesim_proj_spec c = {.pre = S, .post = T, .kind = NESIM_ALL_TO_ALL, .weight = 0.05 * mV, .delay = 1};
    assert_ok(nesim_connect(net, &c, NULL, &err), &err);
    assert_ok(nesim_run(net, 100000, &err), &err); /* 10 s */
    double rate = (double)nesim_population_counters(net, S)->spikes / (1000 * 10.0);
    /* 200 000 expected spikes: sd 0.2 %; 1 % is five sigma */
    assert_close(rate, 20.0, 0.01, 0);
    /* 20 kHz of 0.05 mV jumps, tau 20 ms: mean drive 20 mV above rest -> fires */
    assert_true(nesim_population_counters(net, T)->spikes > 100);
    /* every source spike reaches the 10 targets, but those of the last tick */
    uint64_t sops = nesim_population_counters(net, T)->sops, ss = nesim_population_counters(net, S)->spikes;
    assert_true(sops % 10 == 0 && sops <= 10 * ss && sops >= 10 * (ss - 20));
    nesim_net_free(net);
}

/* A source's spike train is a keyed draw (base/rng.h): neuron j's train is
 * the same in a population of 300 as in one of 600 (what lets ranks split
 * sources), and the trains are Bernoulli per tick: intervals geometric
 * (coefficient of variation sqrt(1 - p)), neurons independent. */
static void test_poisson_keyed(void **st)
{
    nesim_error err = {0};
    const uint32_t n[2] = {600, 300};
    nesim_net *net[2];
    for (int k = 0; k < 2; k++) {
        net[k] = nesim_net_new(DT, 11, &err);
        nesim_pop_spec src = {.name = "src", .model = "poisson", .n = n[k], NESIM_PARAMS({"rate_hz", 50})};
        int S;
        assert_ok(nesim_add_population(net[k], &src, &S, &err), &err);
        assert_ok(nesim_record(net[k], S, 1, &err), &err);
        assert_ok(nesim_run(net[k], 20000, &err), &err); /* 2 s: 100 spikes per neuron */
    }
    size_t na, nb;
    const nesim_spike *a = nesim_spikes(net[0], &na), *b = nesim_spikes(net[1], &nb);
    /* the big population's spikes of neurons < 300, in order, are the small one's */
    size_t q = 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].id < n[1]) {
            assert_true(q < nb && a[i].t == b[q].t && a[i].id == b[q].id);
            q++;
        }
    assert_int_equal(q, nb);
    /* intervals: mean 1 / p ticks (p = 0.005), CV sqrt(1 - p) */
    int64_t *last = malloc(n[0] * sizeof *last);
    for (uint32_t j = 0; j < n[0]; j++)
        last[j] = -1;
    double s1 = 0, s2 = 0, m = 0, counts0 = 0, counts1 = 0, c01 = 0;
    for (size_t i = 0; i < na; i++) {
        uint32_t j = a[i].id;
        if (last[j] >= 0) {
            double d = (double)(a[i].t - last[j]);
            s1 += d, s2 += d * d, m++;
        }
        last[j] = a[i].t;
    }
    double mean = s1 / m, cv = sqrt(s2 / m - mean * mean) / mean;
    assert_true(fabs(mean - 200) < 200 * 0.02);       /* 60,000 intervals: sd 0.4 % */
    assert_true(fabs(cv - sqrt(1 - 0.005)) < 0.02);
    /* neighbours independent: spike counts of neurons 2i and 2i + 1 uncorrelated */
    uint32_t *cnt = calloc(n[0], sizeof *cnt);
    for (size_t i = 0; i < na; i++)
        cnt[a[i].id]++;
    for (uint32_t j = 0; j + 1 < n[0]; j += 2)
        counts0 += cnt[j], counts1 += cnt[j + 1], c01 += (double)cnt[j] * cnt[j + 1];
    double h = n[0] / 2.0, cov = c01 / h - (counts0 / h) * (counts1 / h);
    assert_true(fabs(cov) < 100 * 5 / sqrt(h)); /* var 100 per neuron: 5 sd of the mean product */
    free(cnt);
    free(last);
    nesim_net_free(net[0]);
    nesim_net_free(net[1]);
}

/* ---- cost follows activity ---------------------------------------------- */

static void test_silence_costs_nothing(void **st)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, 1, &err);
    test_bag p = base();
    p.v_rest = -70 * mV; /* below threshold: nothing ever happens */
    int P;
    assert_ok(add_pop(net, "quiet", "lif_exp", NULL, 100000, p, (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -70 * mV, .b = -55 * mV},
                      &P, &err),
              &err);
    nesim_proj_spec c = {.pre = P, .post = P, .kind = NESIM_FIXED_PROB, .p = 0.0001, .weight = 1 * mV, .delay = 1};
    assert_ok(nesim_connect(net, &c, NULL, &err), &err);
    assert_ok(nesim_run(net, 1000000000LL, &err), &err); /* a day of virtual time */
    const nesim_counters *k = nesim_population_counters(net, P);
    assert_int_equal(k->spikes, 0);
    assert_int_equal(k->updates, 0);
    assert_int_equal(k->events, 0);
    assert_int_equal(nesim_queue_statistics(net).ticks_active, 0);
    assert_int_equal(nesim_now(net), 1000000000LL);
    nesim_net_free(net);
}

/* Tiny and huge connection probabilities: no endless loop, sane counts. */
static void test_fixed_prob_extremes(void **st)
{
    nesim_error err = {0};
    nesim_net *net = nesim_net_new(DT, 1, &err);
    int A;
    assert_ok(add_pop(net, "a", "lif", NULL, 2000, base(), (nesim_init_dist){0}, &A, &err), &err);
    const double ps[] = {1e-20, 1e-12, 0.5, 1.0};
    for (int k = 0; k < 4; k++) {
        nesim_proj_spec c = {.pre = A, .post = A, .kind = NESIM_FIXED_PROB, .p = ps[k], .weight = 1e-4, .delay = 1};
        int j;
        assert_ok(nesim_connect(net, &c, &j, &err), &err);
        uint64_t n = nesim_projection_synapses(net, j);
        if (k < 2)
            assert_int_equal(n, 0);
        else if (k == 2)
            assert_true(n > 1900000 && n < 2100000); /* 4e6 pairs, sd 1000 */
        else
            assert_int_equal(n, 4000000);
    }
    nesim_net_free(net);
}

/* Connectivity and initial states are keyed draws (base/rng.h): target j's
 * sources and neuron j's initial v depend on (seed, projection or population,
 * j) alone, so a network with fewer targets holds exactly the first targets'
 * synapses of a larger one (what lets a rank draw only its own). The draws
 * still follow the rule: synapse count, out-degree spread, no autapses. */
static void test_fixed_prob_keyed(void **st)
{
    nesim_error err = {0};
    const uint32_t n_pre = 300, n_big = 500, n_small = 200;
    const double p = 0.1;
    nesim_net *net[2];
    int A[2], B[2], J[2];
    for (int k = 0; k < 2; k++) {
        net[k] = nesim_net_new(DT, 42, &err);
        assert_ok(add_pop(net[k], "a", "lif", NULL, k ? 400 : n_pre, base(),
                          (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV}, &A[k], &err),
                  &err);
        assert_ok(add_pop(net[k], "b", "lif", NULL, k ? n_small : n_big, base(),
                          (nesim_init_dist){.kind = NESIM_INIT_NORMAL, .a = -55 * mV, .b = 2 * mV}, &B[k], &err),
                  &err);
        nesim_proj_spec c = {.pre = A[k], .post = B[k], .kind = NESIM_FIXED_PROB, .p = p, .weight = 1e-4, .delay = 1};
        assert_ok(nesim_connect(net[k], &c, &J[k], &err), &err);
        nesim_proj_spec self = {.pre = A[k], .post = A[k], .kind = NESIM_FIXED_PROB, .p = 0.5, .weight = 1e-4,
                                .delay = 1, .no_autapses = 1};
        assert_ok(nesim_connect(net[k], &self, NULL, &err), &err);
    }
    /* the big network's synapses to targets below n_small are the small one's
     * (its pre population is larger: the extra sources are other synapses) */
    uint32_t t0[600], t1[600];
    uint64_t total = 0;
    double sum2 = 0;
    for (uint32_t i = 0; i < n_pre; i++) {
        size_t n0 = nesim_projection_targets(net[0], J[0], i, t0, 600);
        size_t n1 = nesim_projection_targets(net[1], J[1], i, t1, 600);
        size_t m = 0;
        while (m < n0 && t0[m] < n_small)
            m++;
        assert_int_equal(m, n1);
        for (size_t q = 0; q < m; q++)
            assert_int_equal(t0[q], t1[q]);
        for (size_t q = 1; q < n0; q++)
            assert_true(t0[q - 1] < t0[q]);
        total += n0;
        sum2 += (double)n0 * (double)n0;
    }
    /* 150,000 pairs at p = 0.1: 15,000 +- 116; out-degree variance n p (1 - p) = 45 */
    assert_true(total > 15000 - 600 && total < 15000 + 600);
    double mean = (double)total / n_pre, var = sum2 / n_pre - mean * mean;
    assert_true(var > 45 * 0.7 && var < 45 * 1.3);
    /* no autapses, and a p = 0.5 row is about half the population */
    for (uint32_t i = 0; i < n_pre; i++) {
        size_t n = nesim_projection_targets(net[0], J[0] + 1, i, t0, 600);
        assert_true(n > 100 && n < 200);
        for (size_t q = 0; q < n; q++)
            assert_true(t0[q] != i);
    }
    /* initial states: neuron j of a population starts the same in both */
    for (int k = 0; k < 2; k++)
        assert_ok(nesim_run(net[k], 0, &err), &err);
    double v[2][8];
    for (uint32_t j = 0; j < n_small; j++) {
        for (int k = 0; k < 2; k++)
            assert_ok(nesim_neuron_state(net[k], nesim_population_first(net[k], B[k]) + j, v[k], 8, &err), &err);
        assert_true(v[0][0] == v[1][0]);
        assert_true(v[0][0] != -55 * mV);
    }
    for (uint32_t j = 0; j < n_pre; j++) {
        for (int k = 0; k < 2; k++)
            assert_ok(nesim_neuron_state(net[k], nesim_population_first(net[k], A[k]) + j, v[k], 8, &err), &err);
        assert_true(v[0][0] == v[1][0] && v[0][0] >= -60 * mV && v[0][0] < -50 * mV);
    }
    nesim_net_free(net[0]);
    nesim_net_free(net[1]);
}

/* A part graph (net/graph.h: what a rank draws) holds exactly the whole
 * graph's synapses of its targets, and the parts' fan-outs add up to the
 * whole's; it refuses to be set late or run without ranks. */
static void test_graph_parts(void **st)
{
    nesim_error err = {0};
    nesim_graph *g[4];
    int A = 0, B = 1;
    for (int k = 0; k < 4; k++) {
        assert_non_null(g[k] = nesim_graph_new(DT, 9, &err));
        if (k)
            assert_ok(nesim_graph_set_part(g[k], (nesim_graph_part){k - 1, 1, 3}, &err), &err);
        nesim_param q[NESIM_PARAM_MAX];
        test_bag p = base();
        nesim_pop_spec a = {.name = "a", .model = "lif", .n = 250, .params = q, .n_params = test_params("lif", NULL, &p, q)};
        nesim_pop_spec b = a;
        b.name = "b";
        b.n = 101;
        assert_ok(nesim_graph_add_population(g[k], &a, &A, &err), &err);
        assert_ok(nesim_graph_add_population(g[k], &b, &B, &err), &err);
        nesim_proj_spec c = {.pre = A, .post = B, .kind = NESIM_FIXED_PROB, .p = 0.2, .weight = 1e-4, .delay = 1};
        assert_ok(nesim_graph_connect(g[k], &c, NULL, &err), &err);
        /* explicit lists, two delays (two projections), repeats merged */
        enum { NE = 3000 };
        static uint32_t ep[NE], eq[NE];
        static double ew[NE];
        static int64_t ed[NE];
        for (int e = 0; e < NE; e++)
            ep[e] = (uint32_t)(e * 7919u % 250), eq[e] = (uint32_t)(e * 104729u % 101),
            ew[e] = 1e-4 * (1 + e % 5), ed[e] = 1 + e % 2;
        nesim_proj_spec x = {.pre = A, .post = B, .kind = NESIM_EXPLICIT, .delay = 1, .pre_idx = ep, .post_idx = eq,
                             .w = ew, .delays = ed, .n_syn = NE};
        assert_ok(nesim_graph_connect(g[k], &x, NULL, &err), &err);
    }
    assert_int_equal(g[0]->n_projs, 3);
    assert_false(nesim_graph_is_part(g[0]));
    assert_true(nesim_graph_is_part(g[1]));
    uint64_t held = 0;
    uint32_t t[128], u[128];
    double tw[128], uw[128];
    for (int k = 1; k < 4; k++) {
        held += nesim_graph_synapses_here(g[k]);
        for (int j = 0; j < 3; j++) {
            const nesim_graph_proj *pj = &g[k]->projs[j], *wj = &g[0]->projs[j];
            assert_int_equal(pj->n_syn, j ? wj->n_syn : pj->n_here); /* explicit: whole counts at once */
            assert_true(pj->w_min == wj->w_min && pj->w_max == wj->w_max);
            for (uint32_t i = 0; i < 250; i++) {
                size_t n = nesim_graph_targets(g[0], j, i, t, 128), m = nesim_graph_targets(g[k], j, i, u, 128), e = 0;
                for (size_t q = 0; j && q < n; q++)
                    tw[q] = wj->w[wj->row[i] + q];
                for (size_t q = 0; j && q < m; q++)
                    uw[q] = pj->w[pj->row[i] + q];
                for (size_t q = 0; q < n; q++)
                    if (t[q] >= pj->part_lo && t[q] < pj->part_hi) {
                        assert_true(e < m && u[e] == t[q] && (!j || uw[e] == tw[q]));
                        e++;
                    }
                assert_int_equal(e, m);
                /* fixed_prob: its own part's until gathered; explicit: the whole fan-out */
                assert_int_equal(nesim_graph_fanout(g[k], j, i), j ? n : m);
            }
        }
    }
    assert_int_equal(g[1]->projs[0].part_lo, 0);
    assert_int_equal(g[3]->projs[0].part_hi, 101);
    assert_int_equal(held, g[0]->projs[0].n_syn + g[0]->projs[1].n_syn + g[0]->projs[2].n_syn);
    /* late or impossible parts, and a part run without ranks */
    assert_int_equal(nesim_graph_set_part(g[0], (nesim_graph_part){0, 1, 2}, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "before the first projection"));
    nesim_graph *h = nesim_graph_new(DT, 9, &err);
    assert_int_equal(nesim_graph_set_part(h, (nesim_graph_part){2, 2, 3}, &err), NESIM_EINVAL);
    nesim_graph_free(h);
    for (int k = 0; k < 3; k++)
        nesim_graph_free(g[k]);
    nesim_net *net = nesim_net_from_graph(g[3], &err);
    assert_non_null(net);
    assert_int_equal(nesim_run(net, 10, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "runs on ranks only"));
    nesim_net_free(net);
}

/* ---- bad input through the C API --------------------------------------- */

static void test_bad_input(void **st)
{
    nesim_error err = {0};
    assert_null(nesim_net_new(0, 1, &err));
    assert_non_null(strstr(err.msg, "tick"));
    nesim_net *net = nesim_net_new(DT, 1, &err);
    test_bag p = base();
    int A, B, S;
    nesim_param q[NESIM_PARAM_MAX];
    nesim_pop_spec s = {.name = "a", .model = "lif", .n = 10, .params = q, .n_params = test_params("lif", NULL, &p, q)};
    assert_ok(nesim_add_population(net, &s, &A, &err), &err);
    s.name = "b";
    s.n = 5;
    assert_ok(nesim_add_population(net, &s, &B, &err), &err);
    nesim_pop_spec src = {.name = "src", .model = "poisson", .n = 3, NESIM_PARAMS({"rate_hz", 5})};
    assert_ok(nesim_add_population(net, &src, &S, &err), &err);

    nesim_pop_spec bad = s;
    bad.name = "neg";
    p.tau_m = -0.02;
    nesim_param qb[NESIM_PARAM_MAX];
    bad.params = qb;
    bad.n_params = test_params("lif", NULL, &p, qb);
    assert_int_equal(nesim_add_population(net, &bad, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "population 'neg'"));
    assert_non_null(strstr(err.msg, "tau_m"));
    bad = s;
    bad.name = "rule";
    bad.threshold = "sliding";
    assert_int_equal(nesim_add_population(net, &bad, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "unknown threshold rule 'sliding'"));
    bad = s;
    bad.name = "empty";
    bad.n = 0;
    assert_int_equal(nesim_add_population(net, &bad, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    bad = s;
    bad.name = "x";
    bad.model = "hodgkin";
    assert_int_equal(nesim_add_population(net, &bad, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "unknown neuron model 'hodgkin'"));
    bad = s; /* duplicate name */
    assert_int_equal(nesim_add_population(net, &bad, NULL, &err), NESIM_EINVAL);
    bad.name = "u";
    bad.v_init = (nesim_init_dist){.kind = NESIM_INIT_UNIFORM, .a = 1, .b = 0};
    assert_int_equal(nesim_add_population(net, &bad, NULL, &err), NESIM_EINVAL);

    nesim_proj_spec c = {.pre = A, .post = B, .kind = NESIM_FIXED_PROB, .p = 0.5, .weight = 1e-3, .delay = 0};
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "delay"));
    c.delay = 1;
    c.p = 1.5;
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "p must be in [0, 1]"));
    c.p = -0.1;
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    c.p = 0.5;
    c.weight = NAN;
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    c.weight = 1e-3;
    c.kind = NESIM_ONE_TO_ONE;
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "one-to-one"));
    c.kind = NESIM_ALL_TO_ALL;
    c.post = S;
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "spike source"));
    c.post = 99;
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_EINVAL);
    c.post = B;
    assert_ok(nesim_connect(net, &c, NULL, &err), &err);
    assert_int_equal(nesim_run(net, -1, &err), NESIM_EINVAL);
    assert_ok(nesim_run(net, 10, &err), &err);
    assert_int_equal(nesim_add_population(net, &s, NULL, &err), NESIM_ESTATE);
    assert_int_equal(nesim_connect(net, &c, NULL, &err), NESIM_ESTATE);
    nesim_net_free(net);
}

/* The spike checksum is FNV-1a over each spike's tick and id as 8-byte
 * little-endian words (pinned checksums depend on it): the fast form
 * (zero bytes as one multiplication) equals the byte-by-byte one, for ticks
 * and ids of every width, negative ticks and chains. */
static uint64_t fnv_bytes(uint64_t h, int64_t t, uint32_t id)
{
    uint64_t w[2] = {(uint64_t)t, id};
    for (int k = 0; k < 16; k++)
        h = (h ^ ((w[k / 8] >> (8 * (k % 8))) & 0xff)) * 1099511628211ull;
    return h;
}

static void test_checksum_is_fnv(void **st)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 3);
    uint64_t a = NESIM_SPIKE_CHECKSUM_INIT, b = a;
    static const int64_t ts[] = {0, 1, 255, 256, 65535, 65536, INT64_MAX, -1, INT64_MIN, (int64_t)1 << 56};
    static const uint32_t ids[] = {0, 1, 255, 256, 1u << 24, UINT32_MAX};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        for (size_t j = 0; j < sizeof ids / sizeof *ids; j++) {
            a = nesim_spike_checksum_add(a, ts[i], ids[j]);
            b = fnv_bytes(b, ts[i], ids[j]);
            assert_true(a == b);
        }
    for (int k = 0; k < 100000; k++) {
        int64_t t = (int64_t)(gsl_rng_get(r) >> gsl_rng_uniform_int(r, 32));
        uint32_t id = (uint32_t)(gsl_rng_get(r) >> gsl_rng_uniform_int(r, 32));
        a = nesim_spike_checksum_add(a, t, id);
        b = fnv_bytes(b, t, id);
    }
    assert_true(a == b);
    gsl_rng_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_matches_clock_driven_reference),
        cmocka_unit_test(test_explicit_synapses_match_reference),
        cmocka_unit_test(test_random_networks_match_reference),
        cmocka_unit_test(test_rules_and_resets_match_reference),
        cmocka_unit_test(test_every_model_matches_reference),
        cmocka_unit_test(test_per_neuron_parameters_match_reference),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_split_runs_identical),
        cmocka_unit_test(test_sops_equal_spikes_times_fanout),
        cmocka_unit_test(test_poisson_rate_and_drive),
        cmocka_unit_test(test_poisson_keyed),
        cmocka_unit_test(test_silence_costs_nothing),
        cmocka_unit_test(test_fixed_prob_extremes),
        cmocka_unit_test(test_fixed_prob_keyed),
        cmocka_unit_test(test_graph_parts),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_checksum_is_fnv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
