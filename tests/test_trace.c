/* test_trace.c — the trace store: schema round trip, a million spikes
 * through the writer thread, record levels, bad databases and bad
 * appends, and the inspection renderers (report, CSV, SVG, .npy, diff).
 * Crash and signal behaviour is in test_trace_crash.c. */
#include "tests/support/check.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "traces/sha256.h"
#include "traces/store.h"

/* ------------------------------------------------------------ helpers */

static char *path_in_tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

static void remove_db(const char *path)
{
    char b[600];
    remove(path);
    snprintf(b, sizeof b, "%s-wal", path);
    remove(b);
    snprintf(b, sizeof b, "%s-shm", path);
    remove(b);
}

static int64_t query_i64(nesim_trace *t, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(nesim_trace_sqlite(t), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *query_text(nesim_trace *t, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(nesim_trace_sqlite(t), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *s = sqlite3_column_text(st, 0);
    char *d = s ? strdup((const char *)s) : NULL;
    sqlite3_finalize(st);
    return d;
}

/* A minimal XML well-formedness check (what the SVGs need: elements,
 * attributes in quotes, entities, comments, the XML declaration), counting
 * the elements named `count_name`. Fails the test on any error. */
static int64_t xml_check(const char *s, const char *count_name)
{
    const char *stack[64];
    size_t sl[64];
    int depth = 0, roots = 0;
    int64_t count = 0;
    size_t cn = strlen(count_name);
    for (const char *p = s; *p;) {
        if (*p == '&') {
            const char *e = p + 1;
            while (*e && *e != ';' && (e - p) < 10)
                e++;
            if (*e != ';')
                fail_msg("bad entity at offset %ld", (long)(p - s));
            p = e + 1;
            continue;
        }
        if (*p != '<') {
            if (*p == '>')
                fail_msg("stray '>' at offset %ld", (long)(p - s));
            p++;
            continue;
        }
        if (!strncmp(p, "<?", 2)) {
            const char *e = strstr(p, "?>");
            if (!e)
                fail_msg("unterminated <?");
            p = e + 2;
            continue;
        }
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p, "-->");
            if (!e)
                fail_msg("unterminated comment");
            p = e + 3;
            continue;
        }
        bool closing = p[1] == '/';
        const char *n = p + 1 + closing, *e = n;
        while (*e && (*e == '-' || *e == ':' || *e == '_' || (*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
                      (*e >= '0' && *e <= '9')))
            e++;
        if (e == n)
            fail_msg("bad tag name at offset %ld", (long)(p - s));
        size_t len = (size_t)(e - n);
        if (closing) {
            if (!depth || sl[depth - 1] != len || strncmp(stack[depth - 1], n, len))
                fail_msg("mismatched </%.*s> at offset %ld", (int)len, n, (long)(p - s));
            depth--;
            while (*e == ' ')
                e++;
            if (*e != '>')
                fail_msg("bad closing tag");
            p = e + 1;
            continue;
        }
        /* attributes: name="value" ... then > or /> */
        const char *q = e;
        for (;;) {
            while (*q == ' ' || *q == '\n' || *q == '\t')
                q++;
            if (*q == '>' || (q[0] == '/' && q[1] == '>'))
                break;
            const char *an = q;
            while (*q && *q != '=' && *q != ' ' && *q != '>')
                q++;
            if (q == an || *q != '=' || (q[1] != '"' && q[1] != '\''))
                fail_msg("bad attribute at offset %ld", (long)(an - s));
            char quote = q[1];
            const char *v = strchr(q + 2, quote);
            if (!v)
                fail_msg("unterminated attribute value");
            for (const char *c = q + 2; c < v; c++)
                if (*c == '<')
                    fail_msg("'<' in an attribute value");
            q = v + 1;
        }
        if (len == cn && !strncmp(n, count_name, cn))
            count++;
        if (depth == 0)
            roots++;
        if (*q == '/') {
            p = q + 2;
        } else {
            if (depth == 64)
                fail_msg("nesting too deep");
            stack[depth] = n;
            sl[depth++] = len;
            p = q + 1;
        }
    }
    if (depth)
        fail_msg("%d unclosed elements (innermost <%.*s>)", depth, (int)sl[depth - 1], stack[depth - 1]);
    assert_int_equal(roots, 1);
    return count;
}

static int64_t count_substr(const char *s, const char *needle)
{
    int64_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ------------------------------------------------ the synthetic run */

typedef struct spk {
    int layer;
    int64_t neuron, tick;
    int sign;
} spk;

static const int64_t syn_neurons[3] = {50, 1000, 10};
static const int64_t syn_fanout[3] = {1000, 10, 0};
#define SYN_TICKS 200

/* Spikes of the synthetic run in the order they are appended: ticks
 * 0..99, then 150..199, then 100..149 (out of order); layers interleaved
 * 2, 0, 1; neurons descending within a tick; a 1000-spike burst at tick 100
 * of layer 1 (split into parts and across batches). */
static spk *syn_spikes(size_t *n)
{
    spk *v = malloc(200000 * sizeof *v);
    assert_non_null(v);
    *n = 0;
    for (int phase = 0; phase < 3; phase++) {
        int lo = phase == 0 ? 0 : phase == 1 ? 150 : 100, hi = lo + (phase == 0 ? 100 : 50);
        for (int tick = lo; tick < hi; tick++) {
            static const int order[3] = {2, 0, 1};
            for (int k = 0; k < 3; k++) {
                int l = order[k];
                for (int64_t nn = syn_neurons[l] - 1; nn >= 0; nn--) {
                    bool on = l == 0   ? (nn * 7 + tick * 3) % 5 == 0
                              : l == 1 ? tick == 100 || (nn * 13 + tick) % 97 == 0
                                       : nn == tick % 10 && tick % 4 == 0;
                    if (on)
                        v[(*n)++] = (spk){l, nn, tick, (l == 0 && (nn + tick) % 3 == 0) ? -1 : 1};
                }
            }
        }
    }
    return v;
}

static int cmp_spk(const void *a, const void *b)
{
    const spk *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer - y->layer;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

static const nesim_trace_weight syn_weights[2] = {{"w0.npy", "aa"}, {"w1.npy", NULL}};

static nesim_trace_run_info syn_info(nesim_trace_level level, size_t batch)
{
    nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS,
                                 .record = level,
                                 .spec_file = "model.json",
                                 .spec_text = "{\"name\": \"synthetic\"}",
                                 .weights = syn_weights,
                                 .n_weights = 2,
                                 .chip = "loihi",
                                 .seed = 42,
                                 .has_seed = true,
                                 .tick_s = 1e-3,
                                 .note = "round trip",
                                 .batch_spikes = batch};
    return info;
}

/* Writes the synthetic run into an open trace; returns its id. sop_scale
 * and skip_neuron let a second run differ (diff test). */
static int64_t write_syn(nesim_trace *t, nesim_trace_level level, size_t batch, int64_t sop_scale, int64_t skip_neuron,
                         const char *chip)
{
    nesim_error err = {0};
    nesim_trace_run_info info = syn_info(level, batch);
    if (chip)
        info.chip = chip;
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    const char *names[3] = {"in", "hidden", "out"};
    for (int l = 0; l < 3; l++) {
        nesim_trace_layer_info li = {.name = names[l],
                                     .type = l < 2 ? "linear" : "lif",
                                     .coding = l == 0 ? "ternary" : NULL,
                                     .neurons = syn_neurons[l],
                                     .fan_in = 20 + l};
        int idx;
        assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
        assert_int_equal(idx, l);
    }
    size_t n;
    spk *v = syn_spikes(&n);
    for (size_t i = 0; i < n; i++) {
        if (v[i].layer == 1 && v[i].neuron == skip_neuron)
            continue;
        assert_int_equal(nesim_trace_activity(t, v[i].layer, v[i].tick, 1, syn_fanout[v[i].layer] * sop_scale), 0);
        assert_int_equal(nesim_trace_spike(t, v[i].layer, v[i].neuron, v[i].tick, v[i].sign), 0);
    }
    free(v);
    for (int s = 0; s < 4; s++)
        assert_int_equal(nesim_trace_sample(t, s, 50 * s, 50 * s + 49), 0);
    assert_int_equal(nesim_trace_metric(t, 0, "vth_mean", 0.25), 0);
    assert_int_equal(nesim_trace_metric(t, 1, "steps", 4), 0);
    assert_int_equal(nesim_trace_metric(t, -1, "totals.dense_macs", 123456), 0);
    assert_int_equal(nesim_trace_energy(t, 0, "sop", 1e-9 * (double)sop_scale), 0);
    assert_int_equal(nesim_trace_energy(t, 1, "sop", 2e-9 * (double)sop_scale), 0);
    assert_int_equal(nesim_trace_energy(t, 1, "neuron", 5e-10), 0);
    assert_int_equal(nesim_trace_energy(t, -1, "static", 1e-8), 0);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    return run;
}

/* ------------------------------------------------------------- tests */

static void test_sha256(void **state)
{
    char hex[65];
    nesim_sha256_buf("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    nesim_sha256_buf("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    nesim_sha256_buf(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a', fed in uneven pieces through the streaming interface */
    nesim_sha256 s;
    nesim_sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof a ? left : sizeof a;
        nesim_sha256_update(&s, a, k);
        left -= k;
    }
    nesim_sha256_hex(&s, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_round_trip(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("roundtrip.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    /* a small batch: many transactions, a tick split across batches, and
     * out-of-order ticks landing on parts already stored */
    int64_t run = write_syn(t, NESIM_TRACE_SPIKES, 64, 1, -1, NULL);
    nesim_trace_writer_stats ws;
    nesim_trace_writer_stats_get(t, &ws);
    assert_true(ws.batches > 50);
    nesim_trace_close(t);

    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, run, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_COMPLETE);
    assert_int_equal(r.kind, NESIM_TRACE_LAYERS);
    assert_int_equal(r.record, NESIM_TRACE_SPIKES);
    assert_string_equal(r.spec_file, "model.json");
    assert_string_equal(r.spec_text, "{\"name\": \"synthetic\"}");
    char hex[65];
    nesim_sha256_buf(r.spec_text, strlen(r.spec_text), hex);
    assert_string_equal(r.spec_hash, hex);
    assert_string_equal(r.weights, "[{\"file\":\"w0.npy\",\"hash\":\"aa\"},{\"file\":\"w1.npy\",\"hash\":null}]");
    assert_string_equal(r.chip, "loihi");
    assert_true(r.has_seed);
    assert_int_equal(r.seed, 42);
    assert_true(r.tick_s == 1e-3);
    assert_int_equal(r.parent_run, 0);
    assert_int_equal(r.samples, 4);
    assert_int_equal(r.virtual_ticks, SYN_TICKS);
    assert_string_equal(r.note, "round trip");
    assert_string_equal(r.nesim_version, nesim_version());
    assert_non_null(r.ended_at);
    assert_int_equal(strlen(r.started_at), 24); /* 2025-01-31T12:00:00.123Z */
    assert_int_equal(r.started_at[23], 'Z');
    nesim_trace_run_clear(&r);

    /* expected spikes, in read order */
    size_t n;
    spk *v = syn_spikes(&n);
    qsort(v, n, sizeof *v, cmp_spk);
    int64_t per_layer[3] = {0}, first[3] = {-1, -1, -1}, last[3] = {-1, -1, -1};
    for (size_t i = 0; i < n; i++) {
        int l = v[i].layer;
        per_layer[l]++;
        if (first[l] < 0 || v[i].tick < first[l])
            first[l] = v[i].tick;
        if (v[i].tick > last[l])
            last[l] = v[i].tick;
    }

    nesim_trace_layer *L;
    size_t nl;
    assert_ok(nesim_trace_layers(t, run, &L, &nl, &err), &err);
    assert_int_equal(nl, 3);
    assert_string_equal(L[0].name, "in");
    assert_string_equal(L[0].coding, "ternary");
    assert_null(L[1].coding);
    assert_string_equal(L[2].type, "lif");
    for (int l = 0; l < 3; l++) {
        assert_int_equal(L[l].idx, l);
        assert_int_equal(L[l].neurons, syn_neurons[l]);
        assert_int_equal(L[l].fan_in, 20 + l);
        assert_true(L[l].totals_final);
        assert_int_equal(L[l].spikes, per_layer[l]);
        assert_int_equal(L[l].sops, per_layer[l] * syn_fanout[l]);
        assert_int_equal(L[l].first_tick, first[l]);
        assert_int_equal(L[l].last_tick, last[l]);
    }
    nesim_trace_layers_free(L, nl);

    /* every spike, all layers, in (layer, tick, neuron) order */
    nesim_trace_spike_iter *it;
    assert_ok(nesim_trace_spikes_open(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &it, &err), &err);
    nesim_trace_spike_rec s;
    bool got;
    size_t k = 0;
    while (nesim_trace_spikes_next(it, &s, &got, &err) == 0 && got) {
        assert_true(k < n);
        if (s.layer != v[k].layer || s.tick != v[k].tick || s.neuron != v[k].neuron || s.sign != v[k].sign)
            fail_msg("spike %zu: got (%d,%lld,%lld,%d), want (%d,%lld,%lld,%d)", k, s.layer, (long long)s.tick,
                     (long long)s.neuron, s.sign, v[k].layer, (long long)v[k].tick, (long long)v[k].neuron,
                     v[k].sign);
        k++;
    }
    assert_int_equal(k, n);
    nesim_trace_spikes_close(it);

    /* one layer in a tick window: exactly the expected subset */
    assert_ok(nesim_trace_spikes_open(t, run, 1, 95, 105, &it, &err), &err);
    size_t want = 0, seen = 0;
    for (size_t i = 0; i < n; i++)
        want += v[i].layer == 1 && v[i].tick >= 95 && v[i].tick <= 105;
    int64_t prev_tick = -1, prev_neuron = -1;
    while (nesim_trace_spikes_next(it, &s, &got, &err) == 0 && got) {
        assert_int_equal(s.layer, 1);
        assert_true(s.tick >= 95 && s.tick <= 105);
        assert_true(s.tick > prev_tick || (s.tick == prev_tick && s.neuron > prev_neuron));
        prev_tick = s.tick, prev_neuron = s.neuron;
        seen++;
    }
    nesim_trace_spikes_close(it);
    assert_int_equal(seen, want);
    int64_t cnt;
    assert_ok(nesim_trace_spike_count(t, run, 1, 95, 105, &cnt, &err), &err);
    assert_int_equal(cnt, (int64_t)want);
    /* the 1000-spike burst was stored in several parts */
    assert_true(query_i64(t, "SELECT count(*) FROM spike_groups WHERE layer = 1 AND tick = 100") > 4);

    /* the spikes view, as pandas would read it */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM spikes WHERE run = %lld", (long long)run);
    assert_int_equal(query_i64(t, sql), (int64_t)n);
    int64_t neg = 0, sum_neuron0 = 0;
    for (size_t i = 0; i < n; i++) {
        neg += v[i].sign < 0;
        sum_neuron0 += v[i].layer == 0 ? v[i].neuron : 0;
    }
    assert_int_equal(query_i64(t, "SELECT count(*) FROM spikes WHERE sign = -1"), neg);
    assert_int_equal(query_i64(t, "SELECT sum(neuron) FROM spikes WHERE layer = 0"), sum_neuron0);

    /* activity: one row per (layer, tick) with spikes, counts summed */
    nesim_trace_activity_iter *ai;
    assert_ok(nesim_trace_activity_open(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &ai, &err), &err);
    nesim_trace_activity_rec a;
    size_t j = 0, rows = 0;
    while (nesim_trace_activity_next(ai, &a, &got, &err) == 0 && got) {
        int64_t c = 0;
        size_t j0 = j;
        while (j < n && v[j].layer == a.layer && v[j].tick == a.tick)
            j++, c++;
        if (c == 0 || a.spikes != c || a.sops != c * syn_fanout[a.layer])
            fail_msg("activity row %zu (layer %d tick %lld): %lld spikes %lld sops, want %lld", rows, a.layer,
                     (long long)a.tick, (long long)a.spikes, (long long)a.sops, (long long)c);
        (void)j0;
        rows++;
    }
    assert_int_equal(j, n);
    nesim_trace_activity_close(ai);
    free(v);

    nesim_trace_sample_row *sr;
    size_t ns;
    assert_ok(nesim_trace_samples(t, run, &sr, &ns, &err), &err);
    assert_int_equal(ns, 4);
    for (size_t i = 0; i < ns; i++) {
        assert_int_equal(sr[i].sample, (int64_t)i);
        assert_int_equal(sr[i].first_tick, 50 * (int64_t)i);
        assert_int_equal(sr[i].last_tick, 50 * (int64_t)i + 49);
    }
    free(sr);

    nesim_trace_value *m;
    size_t nm;
    assert_ok(nesim_trace_metrics(t, run, &m, &nm, &err), &err);
    assert_int_equal(nm, 3);
    assert_int_equal(m[0].layer, 0);
    assert_string_equal(m[0].name, "vth_mean");
    assert_true(m[0].value == 0.25);
    assert_int_equal(m[1].layer, 1);
    assert_string_equal(m[1].name, "steps");
    assert_int_equal(m[2].layer, -1);
    assert_string_equal(m[2].name, "totals.dense_macs");
    assert_true(m[2].value == 123456);
    nesim_trace_values_free(m, nm);
    assert_ok(nesim_trace_energies(t, run, &m, &nm, &err), &err);
    assert_int_equal(nm, 4);
    assert_int_equal(m[3].layer, -1);
    assert_string_equal(m[3].name, "static");
    nesim_trace_values_free(m, nm);
    nesim_trace_totals tot;
    assert_ok(nesim_trace_totals_get(t, run, &tot, &err), &err);
    assert_int_equal(tot.spikes, (int64_t)n);
    assert_int_equal(tot.virtual_ticks, SYN_TICKS);
    assert_true(tot.has_energy);
    assert_close(tot.joules, 1e-9 + 2e-9 + 5e-10 + 1e-8, 1e-12, 0);

    int64_t last_run;
    assert_ok(nesim_trace_last_run(t, &last_run, &err), &err);
    assert_int_equal(last_run, run);
    /* the schema is as documented */
    assert_int_equal(query_i64(t, "PRAGMA user_version"), NESIM_TRACE_SCHEMA_VERSION);
    assert_int_equal(query_i64(t, "PRAGMA application_id"), NESIM_TRACE_APPLICATION_ID);
    char *jm = query_text(t, "PRAGMA journal_mode");
    assert_string_equal(jm, "wal");
    free(jm);
    nesim_trace_close(t);
}

/* A run without spikes syncing after every tick (as a network recorder does)
 * commits in a few large batches, not one transaction per tick: the batch's
 * one-entry spike buffer must not count as "half full" (it did, and a CUBA
 * run recorded at activity level took 8x its untraced time). */
static void test_activity_ticks_batch(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("act_ticks.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    for (int level = NESIM_TRACE_NONE; level <= NESIM_TRACE_ACTIVITY; level++) {
        nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = (nesim_trace_level)level, .tick_s = 1e-4};
        int64_t run;
        assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
        int idx;
        nesim_trace_layer_info e = {.name = "exc", .neurons = 4000};
        assert_ok(nesim_trace_add_layer(t, &e, &idx, &err), &err);
        enum { TICKS = 20000 };
        for (int64_t tick = 0; tick < TICKS; tick++) {
            assert_int_equal(nesim_trace_spike(t, 0, tick % 4000, tick, 1), 0); /* dropped below spikes */
            assert_int_equal(nesim_trace_activity(t, 0, tick, 1, 80), 0);
            assert_int_equal(nesim_trace_sync(t), 0);
        }
        assert_ok(nesim_trace_set_extent(t, -1, TICKS), &err);
        assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
        nesim_trace_writer_stats ws;
        nesim_trace_writer_stats_get(t, &ws);
        assert_int_equal(ws.spikes, 0);
        if (ws.batches > 100)
            fail_msg("level %d: %lld transactions for %d synced ticks", level, (long long)ws.batches, TICKS);
    }
    nesim_trace_close(t);
}

/* A million spikes streamed with the default batch: all arrive, in order. */
static void test_million_spikes(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("million.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    int idx;
    nesim_trace_layer_info e = {.name = "exc", .neurons = 4000}, i = {.name = "inh", .neurons = 1000};
    assert_ok(nesim_trace_add_layer(t, &e, &idx, &err), &err);
    assert_ok(nesim_trace_add_layer(t, &i, &idx, &err), &err);
    /* per tick: 40 exc spikes and 10 inh spikes, neurons in a scrambled order
     * (as an event queue emits them) */
    const int64_t N = 1000000;
    int64_t k = 0;
    for (int64_t tick = 0; k < N; tick++)
        for (int j = 0; j < 50 && k < N; j++, k++) {
            int layer = j % 5 == 4;
            int64_t neuron = layer ? (j * 97 + tick * 13) % 1000 : (j * 797 + tick * 31) % 4000;
            assert_int_equal(nesim_trace_spike(t, layer, neuron, tick, 1), 0);
        }
    assert_ok(nesim_trace_set_extent(t, -1, N / 50), &err);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    nesim_trace_writer_stats ws;
    nesim_trace_writer_stats_get(t, &ws);
    assert_int_equal(ws.spikes, N);
    nesim_trace_close(t);

    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    int64_t cnt;
    assert_ok(nesim_trace_spike_count(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &cnt, &err), &err);
    assert_int_equal(cnt, N);
    for (int layer = 0; layer < 2; layer++) {
        nesim_trace_spike_iter *it;
        assert_ok(nesim_trace_spikes_open(t, run, layer, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &it, &err), &err);
        nesim_trace_spike_rec s;
        bool got;
        int64_t seen = 0, prev_tick = -1, prev_neuron = -1, sum = 0, want_sum = 0;
        while (nesim_trace_spikes_next(it, &s, &got, &err) == 0 && got) {
            if (!(s.tick > prev_tick || (s.tick == prev_tick && s.neuron > prev_neuron)))
                fail_msg("out of order at spike %lld", (long long)seen);
            prev_tick = s.tick, prev_neuron = s.neuron;
            sum += s.neuron;
            seen++;
        }
        nesim_trace_spikes_close(it);
        k = 0;
        for (int64_t tick = 0; k < N; tick++)
            for (int j = 0; j < 50 && k < N; j++, k++)
                if ((j % 5 == 4) == layer)
                    want_sum += layer ? (j * 97 + tick * 13) % 1000 : (j * 797 + tick * 31) % 4000;
        assert_int_equal(seen, layer ? N / 5 : N - N / 5);
        assert_int_equal(sum, want_sum);
    }
    /* no activity calls were made: the totals come from the spikes */
    nesim_trace_layer *L;
    size_t nl;
    assert_ok(nesim_trace_layers(t, run, &L, &nl, &err), &err);
    assert_int_equal(L[0].spikes, N - N / 5);
    assert_int_equal(L[1].spikes, N / 5);
    assert_int_equal(L[0].first_tick, 0);
    assert_int_equal(L[0].last_tick, N / 50 - 1);
    assert_int_equal(L[1].sops, 0);
    nesim_trace_layers_free(L, nl);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, run, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_COMPLETE);
    assert_int_equal(r.virtual_ticks, N / 50);
    assert_int_equal(r.samples, -1);
    nesim_trace_run_clear(&r);
    nesim_trace_close(t);
}

static void test_record_levels(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("levels.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    int64_t none = write_syn(t, NESIM_TRACE_NONE, 0, 1, -1, NULL);
    int64_t act = write_syn(t, NESIM_TRACE_ACTIVITY, 0, 1, -1, NULL);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM activity WHERE run = %lld", (long long)none);
    assert_int_equal(query_i64(t, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM spike_groups WHERE run IN (%lld, %lld)", (long long)none,
             (long long)act);
    assert_int_equal(query_i64(t, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM activity WHERE run = %lld", (long long)act);
    assert_true(query_i64(t, sql) > SYN_TICKS);
    /* totals are there at every level */
    nesim_trace_totals a, b;
    assert_ok(nesim_trace_totals_get(t, none, &a, &err), &err);
    assert_ok(nesim_trace_totals_get(t, act, &b, &err), &err);
    assert_true(a.spikes > 0);
    assert_int_equal(a.spikes, b.spikes);
    assert_int_equal(a.sops, b.sops);
    /* the raster needs spikes, the activity plot needs activity */
    FILE *f = tmpfile();
    assert_int_equal(nesim_trace_raster_svg(t, act, 0, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, f, &err),
                     NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "stored no spikes"));
    assert_int_equal(nesim_trace_activity_svg(t, none, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, f, &err),
                     NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "stored no activity"));
    assert_ok(nesim_trace_activity_svg(t, act, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, f, &err), &err);
    fclose(f);
    nesim_trace_close(t);
}

static void expect_err(int rc, int code, const nesim_error *err, const char *needle1, const char *needle2)
{
    if (rc != code)
        fail_msg("status %d, want %d (%s)", rc, code, err->msg);
    if (!strstr(err->msg, needle1) || (needle2 && !strstr(err->msg, needle2)))
        fail_msg("message '%s' lacks '%s' / '%s'", err->msg, needle1, needle2 ? needle2 : "");
    assert_null(strchr(err->msg, '\n'));
}

static void test_bad_databases(void **state)
{
    nesim_error err = {0};
    nesim_trace *t = NULL;
    /* a text file: refused in both modes, and left untouched */
    const char *txt = path_in_tmp("notes.txt");
    FILE *f = fopen(txt, "w");
    fputs("these are not the spikes you are looking for\n", f);
    fclose(f);
    expect_err(nesim_trace_open(txt, NESIM_TRACE_READ, &t, &err), NESIM_EINVAL, &err, txt, "file is not a database");
    expect_err(nesim_trace_open(txt, NESIM_TRACE_WRITE, &t, &err), NESIM_EINVAL, &err, txt, "file is not a database");
    assert_null(t);
    char *back = test_read_file(txt, NULL);
    assert_string_equal(back, "these are not the spikes you are looking for\n");
    free(back);

    /* missing file (read) */
    const char *missing = path_in_tmp("nope.db");
    remove_db(missing);
    expect_err(nesim_trace_open(missing, NESIM_TRACE_READ, &t, &err), NESIM_EINVAL, &err, missing, "No such file");

    /* an unrelated SQLite database */
    const char *other = path_in_tmp("other.db");
    remove_db(other);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_err(nesim_trace_open(other, NESIM_TRACE_WRITE, &t, &err), NESIM_EINVAL, &err, other, "not a nesim trace");

    /* a trace of another schema version */
    const char *v2 = path_in_tmp("v2.db");
    remove_db(v2);
    assert_ok(nesim_trace_open(v2, NESIM_TRACE_WRITE, &t, &err), &err);
    write_syn(t, NESIM_TRACE_NONE, 0, 1, -1, NULL);
    char sql_v[64], want_v[64], reads_v[64], range_v[64];
    snprintf(sql_v, sizeof sql_v, "PRAGMA user_version = %d", NESIM_TRACE_SCHEMA_VERSION + 1);
    snprintf(want_v, sizeof want_v, "schema version %d", NESIM_TRACE_SCHEMA_VERSION + 1);
    snprintf(reads_v, sizeof reads_v, "reads version %d", NESIM_TRACE_SCHEMA_VERSION);
    snprintf(range_v, sizeof range_v, "versions 1 to %d", NESIM_TRACE_SCHEMA_VERSION);
    assert_int_equal(sqlite3_exec(nesim_trace_sqlite(t), sql_v, NULL, NULL, NULL), SQLITE_OK);
    nesim_trace_close(t);
    expect_err(nesim_trace_open(v2, NESIM_TRACE_READ, &t, &err), NESIM_EINVAL, &err, v2, want_v);
    assert_non_null(strstr(err.msg, reads_v));
    int from;
    expect_err(nesim_trace_upgrade(v2, &from, &err), NESIM_EINVAL, &err, v2, range_v);

    /* an empty database is not a trace to read */
    const char *empty = path_in_tmp("empty.db");
    remove_db(empty);
    fclose(fopen(empty, "w"));
    expect_err(nesim_trace_open(empty, NESIM_TRACE_READ, &t, &err), NESIM_EINVAL, &err, empty, "empty database");

    /* missing run, missing layer */
    const char *ok = path_in_tmp("ok.db");
    remove_db(ok);
    assert_ok(nesim_trace_open(ok, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run r;
    expect_err(nesim_trace_get_run(t, 1, &r, &err), NESIM_EINVAL, &err, "no run 1", "holds no runs");
    int64_t run = write_syn(t, NESIM_TRACE_SPIKES, 0, 1, -1, NULL);
    nesim_trace_close(t);
    assert_ok(nesim_trace_open(ok, NESIM_TRACE_READ, &t, &err), &err);
    expect_err(nesim_trace_get_run(t, 99, &r, &err), NESIM_EINVAL, &err, ok, "no run 99 (runs: 1..1)");
    nesim_trace_layer *L;
    size_t nl;
    expect_err(nesim_trace_layers(t, 5, &L, &nl, &err), NESIM_EINVAL, &err, "no run 5", NULL);
    int idx = -1;
    assert_ok(nesim_trace_find_layer(t, run, "hidden", &idx, &err), &err);
    assert_int_equal(idx, 1);
    assert_ok(nesim_trace_find_layer(t, run, "2", &idx, &err), &err);
    assert_int_equal(idx, 2);
    expect_err(nesim_trace_find_layer(t, run, "fc9", &idx, &err), NESIM_EINVAL, &err, "no layer 'fc9'",
               "(layers: 0 in, 1 hidden, 2 out)");
    expect_err(nesim_trace_find_layer(t, run, "3", &idx, &err), NESIM_EINVAL, &err, "no layer '3'", NULL);
    nesim_trace_spike_iter *it;
    expect_err(nesim_trace_spikes_open(t, 7, 0, 0, 10, &it, &err), NESIM_EINVAL, &err, "no run 7", NULL);
    /* read-only handles do not record */
    nesim_trace_run_info info = syn_info(NESIM_TRACE_SPIKES, 0);
    int64_t id;
    expect_err(nesim_trace_begin_run(t, &info, &id, &err), NESIM_ESTATE, &err, "read-only", NULL);
    nesim_trace_close(t);

    /* a parent run that does not exist */
    assert_ok(nesim_trace_open(ok, NESIM_TRACE_WRITE, &t, &err), &err);
    info.parent_run = 12;
    expect_err(nesim_trace_begin_run(t, &info, &id, &err), NESIM_EINVAL, &err, "parent run", "no run 12");
    nesim_trace_close(t);
}

/* Bad appends make the run 'failed' and come back from end_run. */
static void test_bad_appends(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("appends.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4};
    int64_t run;
    assert_int_equal(nesim_trace_spike(t, 0, 0, 0, 1), NESIM_ESTATE); /* no run yet */
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    nesim_trace_layer_info li = {.name = "pop", .neurons = 10};
    int idx;
    assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
    assert_int_equal(nesim_trace_add_layer(t, &li, &idx, &err), NESIM_EINVAL); /* same name */
    assert_non_null(strstr(err.msg, "two layers named 'pop'"));
    nesim_trace_layer_info zero = {.name = "z", .neurons = 0};
    assert_int_equal(nesim_trace_add_layer(t, &zero, &idx, &err), NESIM_EINVAL);
    assert_int_equal(nesim_trace_spike(t, 0, 3, 5, 1), 0);
    assert_int_equal(nesim_trace_spike(t, 0, 10, 5, 1), NESIM_EINVAL); /* neuron out of range */
    assert_int_equal(nesim_trace_spike(t, 0, 1, 6, 1), NESIM_EINVAL);  /* sticky */
    /* readers refuse while this handle records */
    nesim_trace_layer *L;
    size_t nl;
    assert_int_equal(nesim_trace_layers(t, run, &L, &nl, &err), NESIM_ESTATE);
    assert_int_equal(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "spike of neuron 10 in layer 0 of 10 neurons"));
    assert_non_null(strstr(err.msg, path));
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, run, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_FAILED);
    nesim_trace_run_clear(&r);

    /* other bad values */
    const struct {
        int what;
        const char *needle;
    } cases[] = {{0, "spike sign 2"}, {1, "spike in layer 4"}, {2, "negative tick"},
                 {3, "infinite"},    {4, "bad tick range"},  {5, "activity in layer -1"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
        assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
        int rc = cases[c].what == 0   ? nesim_trace_spike(t, 0, 1, 1, 2)
                 : cases[c].what == 1 ? nesim_trace_spike(t, 4, 1, 1, 1)
                 : cases[c].what == 2 ? nesim_trace_spike(t, 0, 1, -3, 1)
                 : cases[c].what == 3 ? nesim_trace_metric(t, 0, "rate", INFINITY)
                 : cases[c].what == 4 ? nesim_trace_sample(t, 0, 10, 5)
                                      : nesim_trace_activity(t, -1, 0, 1, 1);
        assert_int_equal(rc, NESIM_EINVAL);
        assert_int_equal(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), NESIM_EINVAL);
        if (!strstr(err.msg, cases[c].needle))
            fail_msg("case %zu: '%s' lacks '%s'", c, err.msg, cases[c].needle);
    }
    /* closing with a run still open ends it as failed */
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    nesim_trace_close(t);
    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    assert_ok(nesim_trace_get_run(t, run, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_FAILED);
    assert_non_null(r.ended_at);
    nesim_trace_run_clear(&r);
    nesim_trace_close(t);
}

static char *render(const char *name, int (*fn)(nesim_trace *, FILE *, void *), nesim_trace *t, void *arg)
{
    const char *p = path_in_tmp(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fn(t, f, arg), 0);
    fclose(f);
    return test_read_file(p, NULL);
}

typedef struct rargs {
    int64_t run, run_b;
    int layer;
    int64_t from, to;
    bool flag;
    nesim_error *err;
} rargs;

static int r_report(nesim_trace *t, FILE *f, void *a)
{
    rargs *x = a;
    return nesim_trace_report(t, x->run, f, x->flag, x->err);
}
static int r_raster(nesim_trace *t, FILE *f, void *a)
{
    rargs *x = a;
    return nesim_trace_raster_svg(t, x->run, x->layer, x->from, x->to, f, x->err);
}
static int r_activity(nesim_trace *t, FILE *f, void *a)
{
    rargs *x = a;
    return nesim_trace_activity_svg(t, x->run, x->from, x->to, f, x->err);
}
static int r_csv(nesim_trace *t, FILE *f, void *a)
{
    rargs *x = a;
    return nesim_trace_spikes_print(t, x->run, x->layer, x->from, x->to, x->flag, f, x->err);
}
static int r_diff(nesim_trace *t, FILE *f, void *a)
{
    rargs *x = a;
    return nesim_trace_diff(t, x->run, x->run_b, f, x->flag, x->err);
}
static int r_list(nesim_trace *t, FILE *f, void *a)
{
    rargs *x = a;
    return nesim_trace_list(t, f, x->err);
}

static void test_renderers(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("render.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    int64_t run = write_syn(t, NESIM_TRACE_SPIKES, 0, 1, -1, NULL);
    int64_t same = write_syn(t, NESIM_TRACE_SPIKES, 0, 1, -1, NULL);
    int64_t other = write_syn(t, NESIM_TRACE_SPIKES, 0, 2, 500, "tianjic"); /* SOPs x2, neuron 500 silent */
    nesim_trace_close(t);
    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    size_t n;
    spk *v = syn_spikes(&n);
    rargs a = {.run = run, .err = &err};

    /* report, JSON: layer keys as the live report, metrics merged */
    a.flag = true;
    char *js = render("report.json", r_report, t, &a);
    json_error_t je;
    json_t *j = json_loads(js, 0, &je);
    if (!j)
        fail_msg("report is not JSON (%s): %s", je.text, js);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "synthetic");
    assert_int_equal(json_integer_value(json_object_get(j, "samples")), 4);
    json_t *layers = json_object_get(j, "layers");
    assert_int_equal(json_array_size(layers), 3);
    json_t *l0 = json_array_get(layers, 0);
    int64_t spikes0 = 0;
    for (size_t i = 0; i < n; i++)
        spikes0 += v[i].layer == 0;
    assert_int_equal(json_integer_value(json_object_get(l0, "spikes")), spikes0);
    assert_int_equal(json_integer_value(json_object_get(l0, "sops")), spikes0 * 1000);
    assert_int_equal(json_integer_value(json_object_get(l0, "in")), 20);
    assert_int_equal(json_integer_value(json_object_get(l0, "neurons")), 50);
    assert_int_equal(json_integer_value(json_object_get(l0, "first_spike_tick")), 0);
    assert_true(json_real_value(json_object_get(l0, "vth_mean")) == 0.25);
    assert_true(json_real_value(json_object_get(json_object_get(json_object_get(l0, "energy"), "terms"), "sop")) == 1e-9);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(layers, 1), "steps")), 4);
    json_t *tot = json_object_get(j, "totals");
    assert_int_equal(json_integer_value(json_object_get(tot, "spikes")), (int64_t)n);
    assert_int_equal(json_integer_value(json_object_get(tot, "virtual_ticks")), SYN_TICKS);
    assert_int_equal(json_integer_value(json_object_get(tot, "dense_macs")), 123456);
    assert_close(json_real_value(json_object_get(json_object_get(j, "energy"), "total_j")), 1.35e-8, 1e-12, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "run"), "status")), "complete");
    json_decref(j);
    free(js);

    /* report, text */
    a.flag = false;
    char *txt = render("report.txt", r_report, t, &a);
    assert_non_null(strstr(txt, "complete"));
    assert_non_null(strstr(txt, "hidden"));
    assert_non_null(strstr(txt, "ternary"));
    assert_non_null(strstr(txt, "static 1e-08"));
    free(txt);
    txt = render("list.txt", r_list, t, &a);
    assert_int_equal(count_substr(txt, "complete"), 3);
    free(txt);

    /* CSV of one layer in a window */
    a.layer = 0, a.from = 10, a.to = 19, a.flag = true;
    char *csv = render("spikes.csv", r_csv, t, &a);
    int64_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += v[i].layer == 0 && v[i].tick >= 10 && v[i].tick <= 19;
    assert_int_equal(count_substr(csv, "\n"), want + 1);
    assert_true(!strncmp(csv, "layer,neuron,tick,sign\n", 23));
    assert_non_null(strstr(csv, ",-1\n"));
    free(csv);

    /* raster: well-formed, one <rect> per spike in the window, sample lines */
    a.layer = 1, a.from = 40, a.to = 120;
    char *svg = render("raster.svg", r_raster, t, &a);
    want = 0;
    for (size_t i = 0; i < n; i++)
        want += v[i].layer == 1 && v[i].tick >= 40 && v[i].tick <= 120;
    assert_int_equal(xml_check(svg, "rect"), want);
    assert_int_equal(count_substr(svg, "class=\"sample\""), 2); /* samples start at 50 and 100 */
    assert_non_null(strstr(svg, "virtual time (ms)"));
    assert_non_null(strstr(svg, ">neuron<"));
    free(svg);
    a.layer = 0, a.from = NESIM_TRACE_TICK_MIN, a.to = NESIM_TRACE_TICK_MAX;
    svg = render("raster0.svg", r_raster, t, &a);
    assert_int_equal(xml_check(svg, "rect"), spikes0);
    assert_int_equal(count_substr(svg, "<rect class=\"n\""), query_i64(t, "SELECT count(*) FROM spikes WHERE run = 1 AND sign = -1"));
    assert_int_equal(count_substr(svg, "class=\"sample\""), 3);
    free(svg);
    a.from = 500, a.to = 600; /* past the end: an empty but valid plot */
    svg = render("raster_empty.svg", r_raster, t, &a);
    assert_int_equal(xml_check(svg, "rect"), 0);
    free(svg);

    /* activity: one polyline per layer */
    a.from = NESIM_TRACE_TICK_MIN, a.to = NESIM_TRACE_TICK_MAX;
    svg = render("activity.svg", r_activity, t, &a);
    assert_int_equal(xml_check(svg, "polyline"), 3);
    assert_non_null(strstr(svg, ">hidden<"));
    free(svg);

    /* diff: identical runs, then a changed one */
    a.run_b = same, a.flag = false;
    txt = render("diff.txt", r_diff, t, &a);
    assert_int_equal(count_substr(txt, "identical"), 3);
    assert_non_null(strstr(txt, "the runs agree"));
    free(txt);
    a.run_b = other, a.flag = true;
    js = render("diff.json", r_diff, t, &a);
    j = json_loads(js, 0, &je);
    if (!j)
        fail_msg("diff is not JSON (%s): %s", je.text, js);
    json_t *dl = json_object_get(j, "layers");
    int64_t silent = 0;
    for (size_t i = 0; i < n; i++)
        silent += v[i].layer == 1 && v[i].neuron == 500;
    assert_true(json_is_true(json_object_get(json_array_get(dl, 0), "spike_trains_identical")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(dl, 1), "spikes_differing")), silent);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(dl, 1), "spikes"), "delta")), -silent);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(dl, 0), "sops"), "delta")),
                     spikes0 * 1000);
    json_t *attrs = json_object_get(j, "attributes");
    assert_int_equal(json_array_size(attrs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(attrs, 0), "name")), "chip");
    json_t *terms = json_object_get(j, "energy_terms");
    assert_int_equal(json_array_size(terms), 3);
    json_decref(j);
    free(js);
    free(v);
    nesim_trace_close(t);
}

static void test_export(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("export.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    int64_t run = write_syn(t, NESIM_TRACE_SPIKES, 1000, 1, -1, NULL);
    size_t n;
    spk *v = syn_spikes(&n);
    qsort(v, n, sizeof *v, cmp_spk);

    const char *npy = path_in_tmp("spikes.npy");
    assert_ok(nesim_trace_export(t, run, NESIM_TRACE_NPY, npy, &err), &err);
    size_t len;
    unsigned char *b = (unsigned char *)test_read_file(npy, &len);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "'shape': (%zu, 4)", n);
    assert_non_null(strstr((char *)b + 10, "'descr': '<i8'"));
    assert_non_null(strstr((char *)b + 10, shape));
    assert_int_equal(len, 10 + hlen + n * 32);
    for (size_t i = 0; i < n; i++) {
        int64_t row[4];
        memcpy(row, b + 10 + hlen + 32 * i, sizeof row);
        if (row[0] != v[i].layer || row[1] != v[i].neuron || row[2] != v[i].tick || row[3] != v[i].sign)
            fail_msg("npy row %zu differs", i);
    }
    free(b);

    const char *csv = path_in_tmp("spikes.csv");
    assert_ok(nesim_trace_export(t, run, NESIM_TRACE_CSV, csv, &err), &err);
    char *c = test_read_file(csv, NULL);
    assert_int_equal(count_substr(c, "\n"), (int64_t)n + 1);
    char first[64];
    snprintf(first, sizeof first, "layer,neuron,tick,sign\n%d,%lld,%lld,%d\n", v[0].layer, (long long)v[0].neuron,
             (long long)v[0].tick, v[0].sign);
    assert_true(!strncmp(c, first, strlen(first)));
    free(c);
    free(v);

    /* a bad target leaves nothing behind */
    assert_int_equal(nesim_trace_export(t, run, NESIM_TRACE_NPY, "/nonexistent-dir/x.npy", &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.npy"));
    nesim_trace_format fmt;
    assert_int_equal(nesim_trace_format_parse("parquet", &fmt, &err), NESIM_EINVAL);
    nesim_trace_level lv;
    assert_ok(nesim_trace_level_parse("activity", &lv, &err), &err);
    assert_int_equal(lv, NESIM_TRACE_ACTIVITY);
    nesim_trace_close(t);
}

/* Schema 5: sparse traffic (a few spikes per layer and tick) is stored in
 * rows of many ticks, and every reader sees exactly the spikes and counts
 * that went in: the iterators over windows cut anywhere inside a row, the
 * counts, the spikes and activity views, and spikes handed over across small
 * batches and out of order. */
static void test_sparse_rows(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("sparse.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    /* batches of 1024 spikes, handed over at 512 (every ~70 ticks): a row
     * ends at a hand-over, so rows span tens of ticks and many batches */
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4,
                                 .batch_spikes = 1024};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    const int64_t N[2] = {3200, 7};
    for (int l = 0; l < 2; l++) {
        nesim_trace_layer_info li = {.name = l ? "p1" : "p0", .neurons = N[l]};
        assert_ok(nesim_trace_add_layer(t, &li, NULL, &err), &err);
    }
    enum { TICKS = 3000, MAXS = 40000 };
    static spk want[MAXS];
    static int64_t act_s[2][TICKS], act_o[2][TICKS];
    size_t n = 0;
    uint64_t x = 99;
    for (int64_t tick = 0; tick < TICKS; tick++) {
        for (int l = 0; l < 2; l++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            int k = (int)(x >> 61); /* 0..7 spikes, some ticks silent */
            int64_t base = (int64_t)((x >> 20) % (uint64_t)N[l]);
            for (int i = 0; i < k && n < MAXS; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                int64_t nr = (base + i * (l ? 1 : 457)) % N[l]; /* distinct within the tick */
                int sign = (x >> 40) & 1 ? 1 : -1;
                assert_int_equal(nesim_trace_spike(t, l, nr, tick, sign), 0);
                want[n++] = (spk){l, nr, tick, sign};
                act_s[l][tick]++;
            }
            if (act_s[l][tick]) {
                act_o[l][tick] = 5 * act_s[l][tick];
                assert_int_equal(nesim_trace_activity(t, l, tick, act_s[l][tick], act_o[l][tick]), 0);
            }
        }
        assert_int_equal(nesim_trace_sync(t), 0);
    }
    /* a late spike of an early tick (out of order, in a later batch), of a
     * neuron silent in that tick */
    int64_t late = 0;
    for (bool clash = true; clash; late++) {
        clash = false;
        for (size_t i = 0; i < n; i++)
            clash |= want[i].layer == 0 && want[i].tick == 5 && want[i].neuron == late;
        if (!clash)
            break;
    }
    assert_int_equal(nesim_trace_spike(t, 0, late, 5, 1), 0);
    want[n++] = (spk){0, late, 5, 1};
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    qsort(want, n, sizeof *want, cmp_spk);

    /* rows of many ticks: far fewer rows than (layer, tick) pairs with spikes */
    int64_t rows = query_i64(t, "SELECT count(*) FROM spike_groups"), multi = query_i64(t,
                             "SELECT count(*) FROM spike_groups WHERE span > 1");
    assert_true(rows > 0 && rows * 10 < 2 * TICKS);
    assert_true(multi > 0);
    assert_int_equal(query_i64(t, "SELECT max(span) FROM spike_groups") <= 256, 1);
    assert_true(query_i64(t, "SELECT count(*) FROM activity_blocks") * 10 < 2 * TICKS);
    /* the views: one row per spike, per (layer, tick) */
    assert_int_equal(query_i64(t, "SELECT count(*) FROM spikes"), (int64_t)n);
    int64_t sum_ticks = 0, sum_neur = 0, sum_sign = 0;
    for (size_t i = 0; i < n; i++)
        sum_ticks += want[i].tick, sum_neur += want[i].neuron * (want[i].layer + 1), sum_sign += want[i].sign;
    assert_int_equal(query_i64(t, "SELECT sum(tick) FROM spikes"), sum_ticks);
    assert_int_equal(query_i64(t, "SELECT sum(neuron * (layer + 1)) FROM spikes"), sum_neur);
    assert_int_equal(query_i64(t, "SELECT sum(sign) FROM spikes"), sum_sign);
    int64_t act_rows = 0, act_sum = 0, act_wsum = 0;
    for (int l = 0; l < 2; l++)
        for (int64_t k = 0; k < TICKS; k++)
            if (act_s[l][k])
                act_rows++, act_sum += act_s[l][k], act_wsum += k * act_o[l][k] * (l + 1);
    assert_int_equal(query_i64(t, "SELECT count(*) FROM activity"), act_rows);
    assert_int_equal(query_i64(t, "SELECT sum(spikes) FROM activity"), act_sum);
    assert_int_equal(query_i64(t, "SELECT sum(tick * sops * (layer + 1)) FROM activity"), act_wsum);

    /* windows cut inside rows, for one layer and for all */
    const int64_t win[][2] = {{0, TICKS}, {1, 1}, {5, 5}, {37, 300}, {255, 257}, {1000, 2999}, {2999, 5000}, {3001, 4000}};
    for (size_t w = 0; w < sizeof win / sizeof *win; w++)
        for (int layer = -1; layer < 2; layer++) {
            nesim_trace_spike_iter *it;
            assert_ok(nesim_trace_spikes_open(t, run, layer, win[w][0], win[w][1], &it, &err), &err);
            size_t k = 0;
            nesim_trace_spike_rec s;
            bool got;
            for (size_t i = 0; i < n; i++) {
                const spk *e = &want[i];
                if ((layer >= 0 && e->layer != layer) || e->tick < win[w][0] || e->tick > win[w][1])
                    continue;
                assert_int_equal(nesim_trace_spikes_next(it, &s, &got, &err), 0);
                assert_true(got);
                if (s.layer != e->layer || s.tick != e->tick || s.neuron != e->neuron || s.sign != e->sign)
                    fail_msg("window %lld..%lld layer %d: spike %zu: got (%d,%lld,%lld,%d), want (%d,%lld,%lld,%d)",
                             (long long)win[w][0], (long long)win[w][1], layer, k, s.layer, (long long)s.tick,
                             (long long)s.neuron, s.sign, e->layer, (long long)e->tick, (long long)e->neuron, e->sign);
                k++;
            }
            assert_int_equal(nesim_trace_spikes_next(it, &s, &got, &err), 0);
            assert_false(got);
            nesim_trace_spikes_close(it);
            int64_t cnt;
            assert_ok(nesim_trace_spike_count(t, run, layer, win[w][0], win[w][1], &cnt, &err), &err);
            assert_int_equal(cnt, (int64_t)k);

            nesim_trace_activity_iter *ai;
            assert_ok(nesim_trace_activity_open(t, run, layer, win[w][0], win[w][1], &ai, &err), &err);
            nesim_trace_activity_rec a;
            for (int l = layer < 0 ? 0 : layer; l <= (layer < 0 ? 1 : layer); l++)
                for (int64_t k2 = win[w][0]; k2 <= win[w][1] && k2 < TICKS; k2++) {
                    if (!act_s[l][k2])
                        continue;
                    assert_int_equal(nesim_trace_activity_next(ai, &a, &got, &err), 0);
                    assert_true(got);
                    assert_int_equal(a.layer, l);
                    assert_int_equal(a.tick, k2);
                    assert_int_equal(a.spikes, act_s[l][k2]);
                    assert_int_equal(a.sops, act_o[l][k2]);
                }
            assert_int_equal(nesim_trace_activity_next(ai, &a, &got, &err), 0);
            assert_false(got);
            nesim_trace_activity_close(ai);
        }
    nesim_trace_close(t);
}

/* Activity may come once per event or once per tick, in any order: it adds up. */
static void test_activity_merge(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("merge.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_ACTIVITY, .tick_s = 1e-4,
                                 .batch_spikes = 16};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    nesim_trace_layer_info li = {.name = "a", .neurons = 5};
    int idx;
    assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
    for (int rep = 0; rep < 3; rep++)
        for (int64_t tick = 0; tick < 100; tick++) {
            assert_int_equal(nesim_trace_activity(t, 0, tick, 1, 10), 0);
            assert_int_equal(nesim_trace_activity(t, 0, tick, 0, 1), 0);
        }
    assert_int_equal(nesim_trace_flush(t), 0);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    assert_int_equal(query_i64(t, "SELECT count(*) FROM activity"), 100);
    assert_int_equal(query_i64(t, "SELECT min(spikes) FROM activity"), 3);
    assert_int_equal(query_i64(t, "SELECT max(sops) FROM activity"), 33);
    nesim_trace_close(t);
}

/* tests/fixtures/trace-v1.db, written by nesim 0.1 (a digits layer run and
 * a b4 network run): refused with the upgrade hint, upgraded in place to the
 * current version, then read back — its per-sample coding moved from the
 * vth@S/t0@S/steps@S metrics into the codes table. */
static void test_upgrade_v1_fixture(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("v1.db");
    remove_db(path);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/trace-v1.db %s", path);
    assert_int_equal(system(cmd), 0);
    nesim_trace *t;
    expect_err(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), NESIM_EINVAL, &err, "schema version 1",
               "nesim trace upgrade");
    int from = 0;
    assert_ok(nesim_trace_upgrade(path, &from, &err), &err);
    assert_int_equal(from, 1);
    assert_ok(nesim_trace_open(path, NESIM_TRACE_READ, &t, &err), &err);
    assert_int_equal(query_i64(t, "PRAGMA user_version"), NESIM_TRACE_SCHEMA_VERSION);
    assert_int_equal(query_i64(t, "SELECT count(*) FROM metrics WHERE name GLOB 'vth@*'"), 0);
    assert_true(query_i64(t, "SELECT count(*) FROM codes WHERE run = 1") >= 3);
    assert_int_equal(query_i64(t, "SELECT count(*) FROM codes WHERE vth <= 0 OR steps < 1"), 0);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, 1, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_COMPLETE);
    assert_int_equal(r.kind, NESIM_TRACE_LAYERS);
    assert_null(r.writer_host); /* written before writers recorded themselves */
    nesim_trace_run_clear(&r);
    assert_ok(nesim_trace_get_run(t, 2, &r, &err), &err);
    assert_int_equal(r.kind, NESIM_TRACE_NETWORK);
    nesim_trace_run_clear(&r);
    int64_t n;
    assert_ok(nesim_trace_spike_count(t, 1, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &n, &err), &err);
    assert_true(n > 0);
    FILE *f = tmpfile();
    assert_ok(nesim_trace_report(t, 1, f, true, &err), &err);
    fclose(f);
    nesim_trace_close(t);
    /* a second upgrade has nothing to do */
    assert_ok(nesim_trace_upgrade(path, &from, &err), &err);
    assert_int_equal(from, NESIM_TRACE_SCHEMA_VERSION);
}

/* Chip time per tick: written with the run's end, read back exactly; rows a
 * reader cannot trust (a gap, a negative or non-numeric duration, a tick past
 * the run) fail naming table, run and tick. */
static void test_chip_steps(void **state)
{
    nesim_error err = {0};
    const char *path = path_in_tmp("chip.db");
    remove_db(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run_info info = syn_info(NESIM_TRACE_ACTIVITY, 0);
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    nesim_trace_layer_info li = {.name = "n", .type = "lif", .neurons = 10};
    int idx;
    assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
    double s[50];
    for (int k = 0; k < 50; k++)
        s[k] = 1e-6 * (1 + k % 7) + 1e-9 / 3;
    double bad = -1;
    assert_int_equal(nesim_trace_chip_steps(t, &bad, 1), NESIM_EINVAL); /* refused; the run fails */
    nesim_trace_close(t);
    remove_db(path);
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
    assert_int_equal(nesim_trace_chip_steps(t, s, 50), 0);
    assert_int_equal(nesim_trace_set_extent(t, -1, 50), 0);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    double *got;
    int64_t n;
    assert_ok(nesim_trace_chip_steps_get(t, run, &got, &n, &err), &err);
    assert_int_equal(n, 50);
    assert_memory_equal(got, s, sizeof s); /* bit for bit */
    free(got);
    sqlite3 *db = nesim_trace_sqlite(t);
    struct { const char *sql, *needle; } cases[] = {
        {"DELETE FROM chip_steps WHERE tick = 7", "table chip_steps, run 1, tick 8: ticks must run 0, 1, ..."},
        {"UPDATE chip_steps SET seconds = -1e-6 WHERE tick = 3", "table chip_steps, run 1, tick 3: -1e-06 is not a duration"},
        {"UPDATE chip_steps SET seconds = 'fast' WHERE tick = 4", "tick 4: seconds is not a number"},
        {"INSERT INTO chip_steps VALUES (1, 50, 1e-6)", "tick 50: ticks must run 0, 1, ... within the run's 50"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        assert_int_equal(sqlite3_exec(db, "SAVEPOINT x", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, cases[c].sql, NULL, NULL, NULL), SQLITE_OK);
        expect_err(nesim_trace_chip_steps_get(t, run, &got, &n, &err), NESIM_EINVAL, &err, path, cases[c].needle);
        assert_null(got);
        assert_int_equal(sqlite3_exec(db, "ROLLBACK TO x; RELEASE x", NULL, NULL, NULL), SQLITE_OK);
    }
    /* a run without timing has none */
    int64_t other = write_syn(t, NESIM_TRACE_NONE, 0, 1, -1, NULL);
    assert_ok(nesim_trace_chip_steps_get(t, other, &got, &n, &err), &err);
    assert_int_equal(n, 0);
    free(got);
    nesim_trace_close(t);
}

int main(void)
{
    nesim_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),         cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_activity_ticks_batch), cmocka_unit_test(test_million_spikes), cmocka_unit_test(test_record_levels),
        cmocka_unit_test(test_bad_databases),  cmocka_unit_test(test_bad_appends),
        cmocka_unit_test(test_renderers),      cmocka_unit_test(test_export),
        cmocka_unit_test(test_chip_steps),
        cmocka_unit_test(test_activity_merge), cmocka_unit_test(test_upgrade_v1_fixture),
        cmocka_unit_test(test_sparse_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
