/* test_queue.c — the event queue returns events in canonical order:
 * (tick, kind, id, aux), across the ring, the spill heap and window jumps,
 * with cancellation by generation as the engine uses it; and the growth
 * rule its heap (and every growing array of the tree) uses. */
#include "tests/support/check.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "sim/queue.h"

typedef struct ref_ev {
    int64_t t;
    uint32_t kind, id, aux;
} ref_ev;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int ref_cmp(const void *a, const void *b)
{
    const ref_ev *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->aux > y->aux) - (x->aux < y->aux);
}

/* Pops everything due up to `until` into out (in the queue's order). */
static size_t drain(nesim_queue *q, int64_t until, ref_ev *out, size_t n_out)
{
    nesim_error err = {0};
    for (;;) {
        int64_t t = nesim_queue_peek_tick(q);
        if (t > until)
            break;
        nesim_ev *d, *p;
        size_t nd, np;
        assert_ok(nesim_queue_take(q, t, 1, &d, &nd, &p, &np, &err), &err);
        for (size_t i = 0; i < nd; i++)
            out[n_out++] = (ref_ev){t, 0, d[i].id, d[i].aux};
        for (size_t i = 0; i < np; i++)
            out[n_out++] = (ref_ev){t, 1, p[i].id, p[i].aux};
        nesim_queue_done(q);
    }
    return n_out;
}

static void run_random(uint32_t ring, int64_t spread, unsigned long seed)
{
    enum { N = 20000 };
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    nesim_queue q;
    nesim_error err = {0};
    assert_ok(nesim_queue_init(&q, ring, &err), &err);
    ref_ev *ins = calloc(N, sizeof *ins), *got = calloc(N, sizeof *got);
    size_t n_ins = 0, n_got = 0;
    int64_t now = 0;
    while (n_ins < N) {
        /* a burst of inserts, some far beyond the ring, then pop a while */
        int burst = 1 + (int)gsl_rng_uniform_int(r, 50);
        for (int i = 0; i < burst && n_ins < N; i++) {
            int far = gsl_rng_uniform(r) < 0.2;
            int64_t t = now + (int64_t)gsl_rng_uniform_int(r, far ? (unsigned long)spread : 40);
            ref_ev e = {t, (uint32_t)gsl_rng_uniform_int(r, 2), (uint32_t)gsl_rng_uniform_int(r, 100),
                        (uint32_t)gsl_rng_uniform_int(r, 4)};
            assert_ok(nesim_queue_push(&q, e.t, (int)e.kind, e.id, e.aux, &err), &err);
            ins[n_ins++] = e;
        }
        now += (int64_t)gsl_rng_uniform_int(r, 30);
        n_got = drain(&q, now - 1, got, n_got);
        if (nesim_queue_peek_tick(&q) > now || nesim_queue_peek_tick(&q) == INT64_MAX)
            q.now = q.now > now ? q.now : now; /* the engine's clock jump over silence */
    }
    n_got = drain(&q, INT64_MAX - 1, got, n_got);
    assert_int_equal(n_got, n_ins);
    assert_int_equal(q.size, 0);
    qsort(ins, n_ins, sizeof *ins, ref_cmp);
    for (size_t i = 0; i < n_ins; i++)
        if (ref_cmp(&ins[i], &got[i]) != 0)
            fail_msg("event %zu: expected t=%lld k=%u id=%u aux=%u, got t=%lld k=%u id=%u aux=%u", i,
                     (long long)ins[i].t, ins[i].kind, ins[i].id, ins[i].aux, (long long)got[i].t,
                     got[i].kind, got[i].id, got[i].aux);
    free(ins);
    free(got);
    nesim_queue_free(&q);
    gsl_rng_free(r);
}

static void test_order_near(void **st) { run_random(64, 60, 1); }
static void test_order_spill_heap(void **st) { run_random(64, 100000, 2); }
static void test_order_big_ring(void **st) { run_random(8192, 1000000, 3); }

static void test_past_rejected(void **st)
{
    nesim_queue q;
    nesim_error err = {0};
    assert_ok(nesim_queue_init(&q, 64, &err), &err);
    q.now = 10;
    assert_int_equal(nesim_queue_push(&q, 9, NESIM_EV_DELIVER, 1, 0, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "before now"));
    assert_int_equal(nesim_queue_peek_tick(&q), INT64_MAX);
    nesim_queue_free(&q);
}

/* Cancellation as the engine does it: an owner bumps its generation; events
 * carrying an older generation are skipped when popped. */
static void test_cancellation(void **st)
{
    enum { OWNERS = 50, ROUNDS = 4000 };
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7);
    nesim_queue q;
    nesim_error err = {0};
    assert_ok(nesim_queue_init(&q, 128, &err), &err);
    uint32_t gen[OWNERS] = {0};
    int64_t due[OWNERS];
    for (int i = 0; i < OWNERS; i++)
        due[i] = -1;
    ref_ev *want = calloc(ROUNDS * 2, sizeof *want), *got = calloc(ROUNDS * 2, sizeof *got);
    size_t n_want = 0, n_got = 0;
    /* schedule and reschedule; the last schedule of each owner is the live one */
    for (int k = 0; k < ROUNDS; k++) {
        uint32_t o = (uint32_t)gsl_rng_uniform_int(r, OWNERS);
        int64_t t = (int64_t)gsl_rng_uniform_int(r, 5000);
        gen[o]++;
        due[o] = t;
        assert_ok(nesim_queue_push(&q, t, NESIM_EV_PREDICT, o, gen[o], &err), &err);
    }
    for (uint32_t o = 0; o < OWNERS; o++)
        if (due[o] >= 0)
            want[n_want++] = (ref_ev){due[o], 1, o, gen[o]};
    ref_ev *all = calloc(ROUNDS, sizeof *all);
    size_t n_all = drain(&q, INT64_MAX - 1, all, 0);
    assert_int_equal(n_all, ROUNDS);
    for (size_t i = 0; i < n_all; i++)
        if (all[i].aux == gen[all[i].id])
            got[n_got++] = all[i];
    qsort(want, n_want, sizeof *want, ref_cmp);
    assert_int_equal(n_got, n_want);
    for (size_t i = 0; i < n_want; i++)
        assert_int_equal(ref_cmp(&want[i], &got[i]), 0);
    free(all);
    free(want);
    free(got);
    nesim_queue_free(&q);
    gsl_rng_free(r);
}

/* A tick's delivery events come out sorted by (id, aux) however they were
 * pushed: already sorted, two sorted runs (a rank's own, then the others':
 * merged), or any order (qsort); run lengths around the scratch's growth. */
static void test_take_sorts(void **st)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 11);
    nesim_error err = {0};
    for (int shape = 0; shape < 3; shape++)
        for (size_t n = 1; n < 2000; n = n * 3 + 1) {
            nesim_queue q;
            assert_ok(nesim_queue_init(&q, 64, &err), &err);
            size_t first = shape == 1 ? (size_t)gsl_rng_uniform_int(r, n) + 1 : n;
            /* keys (id, aux = k): few ids, so runs share ids; distinct by aux.
             * shape 0: one sorted run; 1: two sorted runs; 2: random order */
            uint64_t *key = malloc(n * sizeof *key);
            for (size_t k = 0; k < n; k++)
                key[k] = (uint64_t)gsl_rng_uniform_int(r, 64) << 32 | (uint32_t)k;
            if (shape < 2) {
                qsort(key, first, sizeof *key, cmp_u64);
                qsort(key + first, n - first, sizeof *key, cmp_u64);
            }
            for (size_t k = 0; k < n; k++)
                assert_ok(nesim_queue_push(&q, 5, NESIM_EV_DELIVER, (uint32_t)(key[k] >> 32), (uint32_t)key[k], &err),
                          &err);
            nesim_ev *dv, *pv;
            size_t nd, np;
            assert_ok(nesim_queue_take(&q, 5, 0, &dv, &nd, &pv, &np, &err), &err);
            assert_int_equal(nd, n);
            qsort(key, n, sizeof *key, cmp_u64);
            for (size_t k = 0; k < n; k++) {
                assert_int_equal(dv[k].id, (uint32_t)(key[k] >> 32));
                assert_int_equal(dv[k].aux, (uint32_t)key[k]);
            }
            free(key);
            nesim_queue_free(&q);
        }
    gsl_rng_free(r);
}

/* Silent stretches cost nothing: a single far event is found without
 * visiting the ticks in between (the ring is scanned by bitmap words). */
static void test_jump_over_silence(void **st)
{
    nesim_queue q;
    nesim_error err = {0};
    assert_ok(nesim_queue_init(&q, 64, &err), &err);
    assert_ok(nesim_queue_push(&q, 1000000000000LL, NESIM_EV_DELIVER, 3, 1, &err), &err);
    assert_ok(nesim_queue_push(&q, 5, NESIM_EV_DELIVER, 2, 1, &err), &err);
    assert_int_equal(nesim_queue_peek_tick(&q), 5);
    ref_ev out[2];
    assert_int_equal(drain(&q, INT64_MAX - 1, out, 0), 2);
    assert_int_equal(out[0].t, 5);
    assert_int_equal(out[1].t, 1000000000000LL);
    assert_int_equal(out[1].id, 3);
    nesim_queue_free(&q);
}

/* The growth rule the queue's heap and every growing array use: room for
 * `need`, doubling from `first`; never NULL on success (an empty array gets
 * room even for nothing); on overflow NULL with the array and its capacity
 * left as they were. */
static void test_growth_rule(void **st)
{
    size_t cap = 0;
    uint32_t *v = nesim_grown(NULL, 0, &cap, sizeof *v, 8);
    assert_non_null(v);
    assert_int_equal(cap, 8);
    assert_ptr_equal(nesim_grown(v, 8, &cap, sizeof *v, 8), v); /* room already: the same array */
    for (uint32_t i = 0; i < 8; i++)
        v[i] = i;
    uint32_t *w = nesim_grown(v, 9, &cap, sizeof *w, 8);
    assert_non_null(w);
    assert_int_equal(cap, 16);
    assert_int_equal(w[7], 7); /* kept */
    w = nesim_grown(w, 100, &cap, sizeof *w, 8);
    assert_non_null(w);
    assert_int_equal(cap, 128);
    assert_null(nesim_grown(w, SIZE_MAX / 2, &cap, sizeof *w, 8)); /* bytes overflow */
    assert_null(nesim_grown(w, SIZE_MAX, &cap, 1, 8));              /* the doubling overflows */
    assert_int_equal(cap, 128);
    assert_int_equal(w[7], 7); /* still the caller's */
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_near),       cmocka_unit_test(test_order_spill_heap),
        cmocka_unit_test(test_order_big_ring),   cmocka_unit_test(test_past_rejected),
        cmocka_unit_test(test_cancellation),     cmocka_unit_test(test_jump_over_silence),
        cmocka_unit_test(test_growth_rule),      cmocka_unit_test(test_take_sorts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
