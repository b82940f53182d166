/* test_serve.c — `nesim serve` against a server started in a thread on an
 * ephemeral port of 127.0.0.1, spoken to with a small HTTP client written
 * here (plain sockets): every endpoint, error cases, paging, the replay
 * stream (order, pacing, flow control, disconnects), reads while other
 * writers (a thread, a `nesim run` process) add runs to the same database,
 * a bounded storm of garbage and dropped connections, and the CLI.
 *
 * The trace database is built here with the traces/ writer API (and, when
 * $NESIM names a nesim binary, one more run by `nesim run --trace`). The
 * server runs with a 2 s connection timeout so slow clients are dropped
 * within the test; everything stops by itself in well under 20 s. */
#include "tests/support/check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve/serve.h"
#include "traces/store.h"

extern char **environ;
extern const unsigned char nesim_page_html[];
extern const unsigned long nesim_page_html_len;

#define TIMEOUT_S 2     /* the test server's connection timeout */
#define MAX_REPLAYS 4

/* ------------------------------------------------------------ fixture */

static char db[512];
static nesim_serve *srv;
static pthread_t srv_thread;
static int port;
static nesim_trace *rd;             /* the test's own reader connection */
static int64_t run_main, run_act, run_big, run_digits; /* run_digits 0: no $NESIM */

#define L1_TICKS 2000
static const int64_t l1_neurons[3] = {100, 300, 10};
static const int64_t l1_fanout[3] = {300, 10, 0};
#define BIG_TICKS 2000
#define BIG_PER_TICK 200

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* Run "main": three layers, 2000 ticks in 10 samples, ternary signs in the
 * hidden layer, a few (tick, neuron) pairs that spike twice, energy and a
 * metric. */
static int64_t write_main(nesim_trace *t)
{
    nesim_error err = {0};
    nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS, .record = NESIM_TRACE_SPIKES,
                                 .spec_file = "serve-test.json", .spec_text = "{\"name\": \"serve-test\"}",
                                 .chip = "loihi", .seed = 7, .has_seed = true, .tick_s = 1e-3,
                                 .batch_spikes = 5000};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    const char *names[3] = {"in", "hidden", "out"};
    for (int l = 0; l < 3; l++) {
        nesim_trace_layer_info li = {.name = names[l], .type = "linear", .coding = l == 1 ? "ternary" : "binary",
                                     .neurons = l1_neurons[l], .fan_in = 64};
        int idx;
        assert_ok(nesim_trace_add_layer(t, &li, &idx, &err), &err);
    }
    uint64_t seed = 12345;
    for (int64_t tick = 0; tick < L1_TICKS; tick++) {
        for (int l = 0; l < 3; l++) {
            int64_t k = l == 0 ? (int64_t)(lcg(&seed) % 21) : l == 1 ? (int64_t)(lcg(&seed) % 41)
                        : (tick % 200 >= 100 ? (int64_t)(lcg(&seed) % 4) : 0);
            for (int64_t i = 0; i < k; i++) {
                int64_t neuron = (int64_t)(lcg(&seed) % (uint64_t)l1_neurons[l]);
                int sign = l == 1 && (lcg(&seed) & 1) ? -1 : 1;
                assert_int_equal(nesim_trace_spike(t, l, neuron, tick, sign), 0);
            }
            if (l == 1 && tick % 97 == 5) { /* neuron 7 twice in one tick, both signs */
                assert_int_equal(nesim_trace_spike(t, 1, 7, tick, 1), 0);
                assert_int_equal(nesim_trace_spike(t, 1, 7, tick, -1), 0);
                k += 2;
            }
            if (k)
                assert_int_equal(nesim_trace_activity(t, l, tick, k, k * l1_fanout[l]), 0);
        }
    }
    for (int s = 0; s < 10; s++)
        assert_int_equal(nesim_trace_sample(t, s, 200 * s, 200 * s + 199), 0);
    assert_int_equal(nesim_trace_metric(t, 0, "vth_mean", 0.5), 0);
    assert_int_equal(nesim_trace_energy(t, 0, "sop", 1e-6), 0);
    assert_int_equal(nesim_trace_energy(t, 0, "update", 2e-7), 0);
    assert_int_equal(nesim_trace_energy(t, 1, "sop", 3e-6), 0);
    assert_int_equal(nesim_trace_energy(t, 2, "sop", 1e-8), 0);
    assert_int_equal(nesim_trace_energy(t, -1, "static", 5e-7), 0);
    assert_ok(nesim_trace_set_extent(t, 10, L1_TICKS), &err);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    return run;
}

/* Run "activity": a network population recorded at level activity only. */
static int64_t write_act(nesim_trace *t)
{
    nesim_error err = {0};
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_ACTIVITY, .tick_s = 1e-4};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    int idx;
    assert_ok(nesim_trace_add_layer(t, &(nesim_trace_layer_info){"pop", "lif", NULL, 50, 0}, &idx, &err), &err);
    for (int64_t tick = 0; tick < 100; tick++) {
        assert_int_equal(nesim_trace_activity(t, 0, tick, 3, 30), 0);
        assert_int_equal(nesim_trace_spike(t, 0, tick % 50, tick, 1), 0); /* not stored at this level */
    }
    double chip[100]; /* timed: tick k took (1 + k % 4) us of chip time */
    for (int k = 0; k < 100; k++)
        chip[k] = 1e-6 * (1 + k % 4);
    assert_int_equal(nesim_trace_chip_steps(t, chip, 100), 0);
    assert_ok(nesim_trace_set_extent(t, -1, 100), &err);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    return run;
}

/* Run "big": 400000 spikes in one layer, for replay throughput and flow control. */
static int64_t write_big(nesim_trace *t)
{
    nesim_error err = {0};
    nesim_trace_run_info info = {.kind = NESIM_TRACE_LAYERS, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-3};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    int idx;
    assert_ok(nesim_trace_add_layer(t, &(nesim_trace_layer_info){"big", "linear", "binary", 1000, 100}, &idx, &err),
              &err);
    for (int64_t tick = 0; tick < BIG_TICKS; tick++) {
        for (int64_t i = 0; i < BIG_PER_TICK; i++)
            nesim_trace_spike(t, 0, (i * 5 + tick) % 1000, tick, 1);
        nesim_trace_activity(t, 0, tick, BIG_PER_TICK, BIG_PER_TICK * 10);
    }
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    return run;
}

static void *serve_main(void *arg)
{
    nesim_serve_run(arg);
    return NULL;
}

static const char *nesim_bin(void)
{
    const char *b = getenv("NESIM");
    return b && *b && access(b, X_OK) == 0 ? b : NULL;
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(db, sizeof db, "%s/serve.db", test_tmpdir());
    nesim_error err = {0};
    nesim_trace *t;
    assert_ok(nesim_trace_open(db, NESIM_TRACE_WRITE, &t, &err), &err);
    run_main = write_main(t);
    run_act = write_act(t);
    run_big = write_big(t);
    nesim_trace_close(t);
    if (nesim_bin()) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "%s run examples/digits/model.json --input examples/digits/test_inputs.npy --trace %s --quiet "
                 ">/dev/null",
                 nesim_bin(), db);
        assert_int_equal(system(cmd), 0);
        run_digits = run_big + 1;
    }
    assert_ok(nesim_trace_open(db, NESIM_TRACE_READ, &rd, &err), &err);
    nesim_serve_opts o = {.db = db, .port = 0, .timeout_s = TIMEOUT_S, .max_replays = MAX_REPLAYS,
                          .replay_buffer = 16384};
    assert_ok(nesim_serve_start(&o, &srv, &err), &err);
    port = nesim_serve_port(srv);
    assert_true(port > 0);
    assert_int_equal(pthread_create(&srv_thread, NULL, serve_main, srv), 0);
    return 0;
}

static int teardown(void **state)
{
    nesim_serve_stop(srv);
    pthread_join(srv_thread, NULL);
    nesim_serve_free(srv);
    nesim_trace_close(rd);
    return 0;
}

/* ---------------------------------------------------------- the client */

static int connect_to(int p, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect to port %d: %s", p, strerror(errno));
    return fd;
}

static bool send_all(int fd, const void *b, size_t n)
{
    const char *p = b;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until EOF (or error / the receive timeout); NUL-terminated. */
static char *recv_all(int fd, size_t *n)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    for (;;) {
        if (cap - len < 65536) {
            cap *= 2;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        ssize_t r = recv(fd, b + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    b[len] = 0;
    *n = len;
    return b;
}

typedef struct resp {
    int status;       /* 0: no status line (connection closed) */
    char *raw;        /* whole response */
    char *body;       /* into raw (de-chunked in place) */
    size_t body_len;
    double secs;
} resp;

static void resp_free(resp *r) { free(r->raw); }

/* The value of header `name` (case-insensitive) into buf, or NULL. */
static const char *resp_header(const resp *r, const char *name, char *buf, size_t n)
{
    size_t k = strlen(name);
    for (const char *p = strstr(r->raw, "\r\n"); p && p + 2 < r->body; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (!strncasecmp(h, name, k) && h[k] == ':') {
            h += k + 1;
            while (*h == ' ')
                h++;
            size_t m = strcspn(h, "\r\n");
            if (m >= n)
                m = n - 1;
            memcpy(buf, h, m);
            buf[m] = 0;
            return buf;
        }
    }
    return NULL;
}

static void dechunk(resp *r)
{
    char *in = r->body, *out = r->body, *end = r->raw + strlen(r->raw);
    for (;;) {
        char *e;
        unsigned long sz = strtoul(in, &e, 16);
        if (e == in || strncmp(e, "\r\n", 2))
            fail_msg("bad chunk header");
        in = e + 2;
        if (sz == 0)
            break;
        assert_true(in + sz + 2 <= end);
        memmove(out, in, sz);
        out += sz;
        in += sz + 2;
    }
    *out = 0;
    r->body_len = (size_t)(out - r->body);
}

static resp request_on(int p, const char *raw, size_t len)
{
    resp r = {0};
    double t0 = now_s();
    int fd = connect_to(p, 0);
    send_all(fd, raw, len);
    size_t n;
    r.raw = recv_all(fd, &n);
    close(fd);
    r.secs = now_s() - t0;
    int st;
    if (sscanf(r.raw, "HTTP/1.%*d %d", &st) == 1)
        r.status = st;
    char *b = strstr(r.raw, "\r\n\r\n");
    r.body = b ? b + 4 : r.raw + n;
    r.body_len = (size_t)(r.raw + n - r.body);
    char te[64];
    if (r.status && resp_header(&r, "Transfer-Encoding", te, sizeof te) && !strcasecmp(te, "chunked"))
        dechunk(&r);
    return r;
}

static resp request(const char *raw) { return request_on(port, raw, strlen(raw)); }

static resp vget(const char *method, const char *fmt, va_list ap)
{
    char path[4096], raw[4400];
    vsnprintf(path, sizeof path, fmt, ap);
    snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", method, path,
             port);
    return request(raw);
}

static resp vget_head(const char *path)
{
    char raw[4400];
    snprintf(raw, sizeof raw, "HEAD %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
    return request(raw);
}

static resp get(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static resp get(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    resp r = vget("GET", fmt, ap);
    va_end(ap);
    return r;
}

/* GETs a path and parses the JSON body, asserting the status and the type. */
static json_t *get_json(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *get_json(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    resp r = vget("GET", fmt, ap);
    va_end(ap);
    char ct[128];
    if (r.status != status)
        fail_msg("status %d, expected %d: %.300s", r.status, status, r.raw);
    if (!resp_header(&r, "Content-Type", ct, sizeof ct) || strncmp(ct, "application/json", 16))
        fail_msg("Content-Type '%s' for a JSON answer", resp_header(&r, "Content-Type", ct, sizeof ct) ? ct : "");
    json_error_t je;
    json_t *j = json_loadb(r.body, r.body_len, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %.300s", je.text, r.body);
    if (status >= 400) {
        json_t *e = json_object_get(j, "error");
        if (!json_is_string(e) || !*json_string_value(e))
            fail_msg("an error without a message: %.300s", r.body);
    }
    resp_free(&r);
    return j;
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("'%s' is not an integer", k);
    return json_integer_value(v);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

#if defined(__SANITIZE_ADDRESS__)
/* libasan's (sanitizer/allocator_interface.h, which gcc does not install) */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HAVE_LIVE_BYTES 1
#endif

/* Heap bytes in use (under ASan, without its quarantine of freed blocks),
 * else -1. */
static long live_kib(void)
{
#ifdef HAVE_LIVE_BYTES
    return (long)(__sanitizer_get_current_allocated_bytes() / 1024);
#else
    return -1;
#endif
}

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

static nesim_serve_stats stats(void)
{
    nesim_serve_stats st;
    nesim_serve_stats_get(srv, &st);
    return st;
}

/* ------------------------------------------------------------- tests */

static void test_page(void **state)
{
    resp r = get("/");
    char ct[128], cl[32];
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Type", ct, sizeof ct), "text/html; charset=utf-8");
    assert_int_equal(r.body_len, nesim_page_html_len);
    assert_memory_equal(r.body, nesim_page_html, nesim_page_html_len);
    resp_free(&r);
    char raw[200];
    snprintf(raw, sizeof raw, "HEAD / HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n", port);
    r = request(raw);
    assert_int_equal(r.status, 200);
    assert_int_equal(strtoul(resp_header(&r, "Content-Length", cl, sizeof cl), NULL, 10), nesim_page_html_len);
    assert_int_equal(r.body_len, 0);
    resp_free(&r);
    /* two requests on one kept-alive connection */
    snprintf(raw, sizeof raw,
             "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/runs/1/layers HTTP/1.1\r\nHost: "
             "127.0.0.1\r\nConnection: close\r\n\r\n");
    r = request(raw);
    int n200 = 0;
    for (const char *p = r.raw; (p = strstr(p, "HTTP/1.1 200 OK")); p++)
        n200++;
    assert_int_equal(n200, 2);
    resp_free(&r);
}

static void test_runs_and_report(void **state)
{
    json_t *j = get_json(200, "/api/runs");
    json_t *runs = json_object_get(j, "runs");
    nesim_trace_run *rr;
    size_t n;
    nesim_error err = {0};
    assert_ok(nesim_trace_runs(rd, &rr, &n, &err), &err);
    assert_int_equal(json_array_size(runs), n);
    assert_true(n >= 3);
    static const char *const keys[] = {"id", "status", "kind", "record", "started_at", "samples", "virtual_ticks",
                                       "spikes", "spec_file", "chip", "parent_run"};
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(runs, i);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            if (!json_object_get(o, keys[k]))
                fail_msg("run %zu lacks '%s'", i, keys[k]);
        assert_int_equal(jint(o, "id"), rr[i].id);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "complete");
        nesim_trace_totals tot;
        assert_ok(nesim_trace_totals_get(rd, rr[i].id, &tot, &err), &err);
        assert_int_equal(jint(o, "spikes"), tot.spikes);
    }
    json_t *m = json_array_get(runs, 0);
    assert_string_equal(json_string_value(json_object_get(m, "kind")), "layers");
    assert_string_equal(json_string_value(json_object_get(m, "record")), "spikes");
    assert_string_equal(json_string_value(json_object_get(m, "spec_file")), "serve-test.json");
    assert_string_equal(json_string_value(json_object_get(m, "chip")), "loihi");
    assert_int_equal(jint(m, "samples"), 10);
    assert_int_equal(jint(m, "virtual_ticks"), L1_TICKS);
    assert_true(json_is_null(json_object_get(m, "parent_run")));
    assert_true(json_is_null(json_object_get(json_array_get(runs, 1), "samples")));
    nesim_trace_runs_free(rr, n);
    json_decref(j);

    /* one run: byte for byte what nesim_trace_report writes */
    for (int64_t id = 1; id <= (run_digits ? run_digits : run_big); id++) {
        char *want = NULL;
        size_t wl = 0;
        FILE *f = open_memstream(&want, &wl);
        assert_ok(nesim_trace_report(rd, id, f, true, &err), &err);
        fclose(f);
        resp r = get("/api/runs/%lld", (long long)id);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, wl);
        assert_memory_equal(r.body, want, wl);
        resp_free(&r);
        free(want);
    }
}

static void test_layers_energy(void **state)
{
    nesim_error err = {0};
    for (int64_t id = 1; id <= (run_digits ? run_digits : run_big); id++) {
        json_t *j = get_json(200, "/api/runs/%lld/layers", (long long)id);
        json_t *arr = json_object_get(j, "layers");
        nesim_trace_layer *L;
        size_t n;
        assert_ok(nesim_trace_layers(rd, id, &L, &n, &err), &err);
        assert_int_equal(json_array_size(arr), n);
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(arr, i);
            assert_int_equal(jint(o, "idx"), L[i].idx);
            assert_string_equal(json_string_value(json_object_get(o, "name")), L[i].name);
            assert_int_equal(jint(o, "neurons"), L[i].neurons);
            assert_int_equal(jint(o, "spikes"), L[i].spikes);
            assert_int_equal(jint(o, "sops"), L[i].sops);
            assert_int_equal(jint(o, "first_tick"), L[i].first_tick);
            assert_int_equal(jint(o, "last_tick"), L[i].last_tick);
            assert_non_null(json_object_get(o, "type"));
            assert_non_null(json_object_get(o, "coding"));
        }
        json_decref(j);

        j = get_json(200, "/api/runs/%lld/energy", (long long)id);
        nesim_trace_value *v;
        size_t nv;
        assert_ok(nesim_trace_energies(rd, id, &v, &nv, &err), &err);
        double total = 0;
        for (size_t i = 0; i < nv; i++)
            total += v[i].value;
        assert_close(json_number_value(json_object_get(j, "total_j")), total, 1e-12, 1e-30);
        json_t *per = json_object_get(j, "per_layer");
        assert_int_equal(json_array_size(per), n);
        double sum_layers = 0, sum_terms = 0;
        for (size_t i = 0; i < n; i++)
            sum_layers += json_number_value(json_object_get(json_array_get(per, i), "total_j"));
        const char *k;
        json_t *x;
        json_object_foreach(json_object_get(j, "terms"), k, x) sum_terms += json_number_value(x);
        assert_close(sum_terms, total, 1e-12, 1e-30);
        double run_level = json_number_value(json_object_get(json_object_get(j, "run_level"), "total_j"));
        assert_close(sum_layers + run_level, total, 1e-12, 1e-30);
        nesim_trace_values_free(v, nv);
        nesim_trace_layers_free(L, n);
        json_decref(j);
    }
    json_t *j = get_json(200, "/api/runs/%lld/energy", (long long)run_main);
    assert_close(json_number_value(json_object_get(json_object_get(j, "terms"), "sop")), 1e-6 + 3e-6 + 1e-8, 1e-12, 0);
    assert_close(json_number_value(json_object_get(json_object_get(json_object_get(j, "run_level"), "terms"), "static")),
                 5e-7, 1e-12, 0);
    json_t *l0 = json_array_get(json_object_get(j, "per_layer"), 0);
    assert_close(json_number_value(json_object_get(l0, "total_j")), 1.2e-6, 1e-12, 0);
    json_decref(j);
}

/* Sums one layer's bins and checks their count. */
static int64_t bins_sum(json_t *j, size_t layer, const char *key, int64_t expect_bins)
{
    json_t *a = json_object_get(json_array_get(json_object_get(j, "layers"), layer), key);
    assert_int_equal(json_array_size(a), expect_bins);
    int64_t s = 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        s += json_integer_value(json_array_get(a, i));
    return s;
}

static void test_activity(void **state)
{
    nesim_error err = {0};
    nesim_trace_layer *L;
    size_t n;
    assert_ok(nesim_trace_layers(rd, run_main, &L, &n, &err), &err);
    json_t *j = get_json(200, "/api/runs/%lld/activity", (long long)run_main);
    assert_int_equal(jint(j, "from"), 0);
    assert_int_equal(jint(j, "to"), L1_TICKS - 1);
    assert_int_equal(jint(j, "bin_ticks"), 4); /* 2000 ticks in 500 bins */
    for (size_t l = 0; l < n; l++) {
        assert_int_equal(bins_sum(j, l, "spikes", 500), L[l].spikes);
        assert_int_equal(bins_sum(j, l, "sops", 500), L[l].sops);
        assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "layers"), l), "name")),
                            L[l].name);
    }
    json_decref(j);
    /* a window in 7 bins (ticks 100..399: 300 ticks, bins of 43, the last shorter) */
    j = get_json(200, "/api/runs/%lld/activity?from=100&to=399&bins=7", (long long)run_main);
    assert_int_equal(jint(j, "bin_ticks"), 43);
    for (size_t l = 0; l < n; l++) {
        int64_t want;
        assert_ok(nesim_trace_spike_count(rd, run_main, L[l].idx, 100, 399, &want, &err), &err);
        assert_int_equal(bins_sum(j, l, "spikes", 7), want);
    }
    json_decref(j);
    /* more bins than ticks: one tick per bin */
    j = get_json(200, "/api/runs/%lld/activity?from=10&to=19&bins=5000", (long long)run_main);
    assert_int_equal(jint(j, "bin_ticks"), 1);
    assert_int_equal(jint(j, "bins"), 10);
    json_decref(j);
    /* the activity-only run */
    j = get_json(200, "/api/runs/%lld/activity?bins=10", (long long)run_act);
    assert_int_equal(bins_sum(j, 0, "spikes", 10), 300);
    assert_int_equal(bins_sum(j, 0, "sops", 10), 3000);
    /* its chip time at the 11 bin edges: 10 ticks of 1, 2, 3, 4, ... us per bin */
    json_t *edges = json_object_get(j, "chip_s");
    assert_int_equal(json_array_size(edges), 11);
    double acc = 0;
    for (int k = 0; k <= 10; k++) {
        assert_close(json_real_value(json_array_get(edges, (size_t)k)), acc, 1e-12, 1e-18);
        for (int t = 10 * k; t < 10 * k + 10; t++)
            acc += 1e-6 * (1 + t % 4);
    }
    json_decref(j);
    j = get_json(200, "/api/runs/%lld/activity?from=35&to=41&bins=2", (long long)run_act); /* bins of 4: 35..38, 39..41 */
    edges = json_object_get(j, "chip_s");
    assert_int_equal(json_array_size(edges), 3);
    double at35 = 0, at39, at42;
    for (int t = 0; t < 35; t++)
        at35 += 1e-6 * (1 + t % 4);
    at39 = at35 + 1e-6 * (4 + 1 + 2 + 3);
    at42 = at39 + 1e-6 * (4 + 1 + 2);
    assert_close(json_real_value(json_array_get(edges, 0)), at35, 1e-12, 0);
    assert_close(json_real_value(json_array_get(edges, 1)), at39, 1e-12, 0);
    assert_close(json_real_value(json_array_get(edges, 2)), at42, 1e-12, 0);
    json_decref(j);
    /* an untimed run has no chip time */
    j = get_json(200, "/api/runs/%lld/activity?bins=3", (long long)run_main);
    assert_null(json_object_get(j, "chip_s"));
    json_decref(j);
    nesim_trace_layers_free(L, n);
}

/* Collects every spike of a layer page by page and compares them, in order,
 * with the reader's iterator; returns the number of spikes and pages. */
static int64_t collect(int64_t run, const char *layer, int idx, int64_t limit, int64_t from, int64_t to,
                       int64_t *pages)
{
    nesim_error err = {0};
    nesim_trace_spike_iter *it;
    assert_ok(nesim_trace_spikes_open(rd, run, idx, from, to, &it, &err), &err);
    char cursor[64] = "";
    int64_t total = 0;
    *pages = 0;
    for (;;) {
        json_t *j = get_json(200, "/api/runs/%lld/spikes?layer=%s&limit=%lld&from=%lld&to=%lld%s%s", (long long)run,
                             layer, (long long)limit, (long long)from, (long long)to, *cursor ? "&after=" : "",
                             cursor);
        assert_int_equal(jint(j, "layer"), idx);
        json_t *arr = json_object_get(j, "spikes");
        size_t m = json_array_size(arr);
        if ((int64_t)m > limit) { /* only a page that is one (tick, neuron) group may be longer */
            json_t *a = json_array_get(arr, 0);
            for (size_t i = 1; i < m; i++) {
                json_t *e = json_array_get(arr, i);
                assert_int_equal(json_integer_value(json_array_get(e, 0)), json_integer_value(json_array_get(a, 0)));
                assert_int_equal(json_integer_value(json_array_get(e, 1)), json_integer_value(json_array_get(a, 1)));
            }
        }
        (*pages)++;
        for (size_t i = 0; i < m; i++) {
            json_t *e = json_array_get(arr, i);
            nesim_trace_spike_rec s;
            bool got;
            assert_ok(nesim_trace_spikes_next(it, &s, &got, &err), &err);
            assert_true(got);
            assert_int_equal(json_array_size(e), 3);
            assert_int_equal(json_integer_value(json_array_get(e, 0)), s.tick);
            assert_int_equal(json_integer_value(json_array_get(e, 1)), s.neuron);
            assert_int_equal(json_integer_value(json_array_get(e, 2)), s.sign);
            total++;
        }
        json_t *next = json_object_get(j, "next");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        assert_true(json_is_string(next));
        assert_true(m > 0);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(j);
    }
    nesim_trace_spike_rec s;
    bool got;
    assert_ok(nesim_trace_spikes_next(it, &s, &got, &err), &err);
    assert_false(got);
    nesim_trace_spikes_close(it);
    return total;
}

static void test_spikes_paging(void **state)
{
    nesim_error err = {0};
    int64_t pages, want;
    /* every layer of the main run, by name and by index */
    const char *names[3] = {"in", "hidden", "out"};
    for (int l = 0; l < 3; l++) {
        assert_ok(nesim_trace_spike_count(rd, run_main, l, 0, NESIM_TRACE_TICK_MAX, &want, &err), &err);
        assert_true(want > 0);
        assert_int_equal(collect(run_main, names[l], l, 4999, 0, 999999, &pages), want);
        assert_true(pages >= want / 4999);
        char ix[16];
        snprintf(ix, sizeof ix, "%d", l);
        assert_int_equal(collect(run_main, ix, l, 100000, 0, 999999, &pages), want);
        assert_true(want <= 100000);
        assert_int_equal(pages, 1);
    }
    /* tiny pages across the ticks where neuron 7 spikes twice (97k + 5) */
    assert_ok(nesim_trace_spike_count(rd, run_main, 1, 190, 400, &want, &err), &err);
    assert_int_equal(collect(run_main, "hidden", 1, 1, 190, 400, &pages), want);
    assert_int_equal(collect(run_main, "1", 1, 3, 190, 400, &pages), want);
    assert_int_equal(collect(run_main, "hidden", 1, 7, 190, 400, &pages), want);
    /* the default page and the default window */
    json_t *j = get_json(200, "/api/runs/%lld/spikes?layer=big", (long long)run_big);
    assert_int_equal(json_array_size(json_object_get(j, "spikes")), 10000);
    assert_string_equal(json_string_value(json_object_get(j, "next")), "49:999");
    json_decref(j);
    /* a big layer in pages of the maximum */
    assert_int_equal(collect(run_big, "0", 0, 100000, 0, 999999999, &pages), BIG_TICKS * BIG_PER_TICK);
    assert_int_equal(pages, 4);
    /* a run and a layer of the nesim binary */
    if (run_digits) {
        assert_ok(nesim_trace_spike_count(rd, run_digits, 1, 0, NESIM_TRACE_TICK_MAX, &want, &err), &err);
        assert_true(want > 1000);
        assert_int_equal(collect(run_digits, "fc2", 1, 9000, 0, 999999, &pages), want);
    }
    /* no spikes stored: an empty page */
    j = get_json(200, "/api/runs/%lld/spikes?layer=pop", (long long)run_act);
    assert_int_equal(json_array_size(json_object_get(j, "spikes")), 0);
    assert_true(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    /* a cursor past the window */
    j = get_json(200, "/api/runs/%lld/spikes?layer=in&to=100&after=500:3", (long long)run_main);
    assert_int_equal(json_array_size(json_object_get(j, "spikes")), 0);
    json_decref(j);
}

typedef struct bad_case {
    int status;
    const char *path;
    const char *says; /* in the message */
} bad_case;

static void test_errors(void **state)
{
    static const bad_case cases[] = {
        {404, "/nope", "no such path"},
        {404, "/api", "no such path"},
        {404, "/api/runs/", "no such path"},
        {404, "/api/runs/1/nope", "no such path"},
        {404, "/api/runs/1/layers/x", "no such path"},
        {400, "/api/runs/abc", "run id"},
        {400, "/api/runs/-1", "run id"},
        {400, "/api/runs/1e3/layers", "run id"},
        {400, "/api/runs/99999999999999999999", "run id"},
        {404, "/api/runs/999", "no run 999"},
        {404, "/api/runs/0/layers", "no run 0"},
        {404, "/api/runs/999/spikes?layer=0", "no run 999"},
        {404, "/api/runs/999/replay", "no run 999"},
        {400, "/api/runs?x=1", "x: unknown parameter"},
        {400, "/api/runs/1/layers?foo", "query"},
        {400, "/api/runs/1/energy?bins=3", "bins: unknown parameter"},
        {400, "/api/runs/1/spikes", "layer: required"},
        {404, "/api/runs/1/spikes?layer=nope", "no layer 'nope'"},
        {404, "/api/runs/1/spikes?layer=3", "no layer '3'"},
        {404, "/api/runs/1/spikes?layer=%2B1", "no layer '+1'"},
        {400, "/api/runs/1/spikes?layer=0&from=abc", "from: expected a non-negative integer"},
        {400, "/api/runs/1/spikes?layer=0&from=-1", "from: expected a non-negative integer"},
        {400, "/api/runs/1/spikes?layer=0&from=%201", "from: expected"},
        {400, "/api/runs/1/spikes?layer=0&from=1.5", "from: expected"},
        {400, "/api/runs/1/spikes?layer=0&to=", "to: expected"},
        {400, "/api/runs/1/spikes?layer=0&to=1000000000000000000", "to: at most"},
        {400, "/api/runs/1/spikes?layer=0&from=10&to=5", "from: tick 10 is after to (5)"},
        {400, "/api/runs/1/spikes?layer=0&limit=100001", "limit: at most 100000"},
        {400, "/api/runs/1/spikes?layer=0&limit=0", "limit: at least 1"},
        {400, "/api/runs/1/spikes?layer=0&after=5", "after: expected a cursor"},
        {400, "/api/runs/1/spikes?layer=0&after=5:-1", "after: expected a cursor"},
        {400, "/api/runs/1/spikes?layer=0&from=1&from=2", "from: given more than once"},
        {400, "/api/runs/1/spikes?layer=0&lmit=5", "lmit: unknown parameter"},
        {400, "/api/runs/1/activity?bins=0", "bins: at least 1"},
        {400, "/api/runs/1/activity?bins=5001", "bins: at most 5000"},
        {400, "/api/runs/1/activity?from=x", "from: expected"},
        {400, "/api/runs/1/replay?speed=0", "speed:"},
        {400, "/api/runs/1/replay?speed=0.5", "speed:"},
        {400, "/api/runs/1/replay?speed=2e9", "speed:"},
        {400, "/api/runs/1/replay?speed=fast", "speed:"},
        {400, "/api/runs/1/replay?speed=1e", "speed:"},
        {400, "/api/runs/1/replay?speed=nan", "speed:"},
        {400, "/api/runs/1/replay?from=5&to=4", "from: tick 5 is after to (4)"},
        {400, "/api/runs/1/replay?layer=0", "layer: unknown parameter"},
        {404, "/api/runs/1/spikes?layer=%ff%fe&from=%ff", "no layer '?\?'"},
        {400, "/api/runs/1/spikes?layer=0&from=%ff", "from: expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = get_json(cases[i].status, "%s", cases[i].path);
        const char *m = json_string_value(json_object_get(j, "error"));
        if (!strstr(m, cases[i].says))
            fail_msg("%s: '%s' does not say '%s'", cases[i].path, m, cases[i].says);
        if (strstr(m, db))
            fail_msg("%s: the message names the database file: %s", cases[i].path, m);
        json_decref(j);
    }
    /* methods other than GET and HEAD */
    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        char raw[300], allow[64];
        snprintf(raw, sizeof raw, "%s /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                 methods[i]);
        resp r = request(raw);
        assert_int_equal(r.status, 405);
        assert_string_equal(resp_header(&r, "Allow", allow, sizeof allow), "GET, HEAD");
        assert_non_null(strstr(r.body, "\"error\""));
        resp_free(&r);
    }
    /* HEAD of a JSON endpoint: headers only, with the length */
    char raw[400], cl[32], ct[64];
    snprintf(raw, sizeof raw, "HEAD /api/runs/1/layers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    resp r = request(raw);
    assert_int_equal(r.status, 200);
    assert_non_null(resp_header(&r, "Content-Length", cl, sizeof cl));
    assert_true(atoi(cl) > 100);
    assert_int_equal(r.body_len, 0);
    resp_free(&r);
    /* a Host that is not loopback (DNS rebinding) */
    snprintf(raw, sizeof raw, "GET /api/runs HTTP/1.1\r\nHost: evil.example:%d\r\nConnection: close\r\n\r\n", port);
    r = request(raw);
    assert_int_equal(r.status, 400);
    assert_string_equal(resp_header(&r, "Content-Type", ct, sizeof ct), "application/json; charset=utf-8");
    resp_free(&r);
    snprintf(raw, sizeof raw, "GET /api/runs HTTP/1.1\r\nHost: [::1]:%d\r\nConnection: close\r\n\r\n", port);
    r = request(raw);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* HTTP/1.0 without Host */
    r = request("GET /api/runs HTTP/1.0\r\n\r\n");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* too large: headers over the limit (8 KiB) get 431 in JSON; over twice
     * the limit, libevent stops reading and answers 400 itself */
    char *big = malloc(40000);
    for (int size = 9000; size <= 30000; size += 21000) {
        int k = snprintf(big, 40000, "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
        memset(big + k, 'a', (size_t)size);
        strcpy(big + k + size, "\r\nConnection: close\r\n\r\n");
        r = request(big);
        if (size < 16384) {
            assert_int_equal(r.status, 431);
            assert_string_equal(resp_header(&r, "Content-Type", ct, sizeof ct), "application/json; charset=utf-8");
            assert_non_null(strstr(r.body, "too large"));
        } else {
            assert_true(r.status == 400 || r.status == 413 || r.status == 431 || r.status == 0);
        }
        resp_free(&r);
        k = snprintf(big, 40000, "GET /api/runs?from=");
        memset(big + k, '1', (size_t)size);
        strcpy(big + k + size, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        r = request(big);
        if (size < 16384)
            assert_int_equal(r.status, 431);
        else
            assert_true(r.status == 400 || r.status == 413 || r.status == 414 || r.status == 431 || r.status == 0);
        resp_free(&r);
    }
    free(big);
    r = request("POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n");
    assert_true(r.status == 413 || r.status == 0);
    resp_free(&r);
    /* every answer had a Content-Type, including libevent's own */
    r = request("BREW /coffee HTTP/1.1\r\n\r\n");
    assert_true(r.status == 400 || r.status == 501 || r.status == 0);
    if (r.status)
        assert_non_null(resp_header(&r, "Content-Type", ct, sizeof ct));
    resp_free(&r);
}

/* ------------------------------------------------------------- replay */

typedef struct sse {
    char name[16];
    json_t *data;
    double t; /* arrival, seconds after the request was sent */
} sse;

/* Opens a replay stream (HTTP/1.0: no chunking) and returns the socket
 * after checking the status line and the headers. */
static int replay_open(const char *query, int rcvbuf, bool check_headers)
{
    int fd = connect_to(port, rcvbuf);
    char raw[512];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", query, port);
    assert_true(send_all(fd, raw, strlen(raw)));
    if (check_headers) {
        char h[4096];
        size_t n = 0;
        while (n < sizeof h - 1 && !(n >= 4 && !memcmp(h + n - 4, "\r\n\r\n", 4))) {
            ssize_t r = recv(fd, h + n, 1, 0);
            assert_true(r == 1);
            n++;
        }
        h[n] = 0;
        assert_true(!strncmp(h, "HTTP/1.0 200 ", 13) || !strncmp(h, "HTTP/1.1 200 ", 13));
        assert_non_null(strstr(h, "Content-Type: text/event-stream"));
    }
    return fd;
}

/* Where the spikes of a stream got to, in (tick, layer, neuron) order. */
static int64_t order_tick, order_layer, order_neuron;

/* Checks a "tick" event's spikes (inside [from, tick], in order after the
 * previous event's) and returns a summary {from, tick, n} in its place, so
 * that long streams need no memory. */
static json_t *check_tick_event(json_t *d)
{
    int64_t f = jint(d, "from"), t = jint(d, "tick");
    assert_true(t >= f);
    json_t *sp = json_object_get(d, "spikes");
    assert_true(json_is_array(sp));
    for (size_t k = 0; k < json_array_size(sp); k++) {
        json_t *x = json_array_get(sp, k);
        assert_int_equal(json_array_size(x), 4);
        int64_t l = json_integer_value(json_array_get(x, 0)), nn = json_integer_value(json_array_get(x, 1));
        int64_t sg = json_integer_value(json_array_get(x, 2)), tk = json_integer_value(json_array_get(x, 3));
        assert_true(sg == 1 || sg == -1);
        assert_true(tk >= f && tk <= t);
        bool ordered = tk > order_tick ||
                       (tk == order_tick && (l > order_layer || (l == order_layer && nn >= order_neuron)));
        if (!ordered)
            fail_msg("spike (%lld, %lld, %lld) after (%lld, %lld, %lld)", (long long)tk, (long long)l, (long long)nn,
                     (long long)order_tick, (long long)order_layer, (long long)order_neuron);
        order_tick = tk, order_layer = l, order_neuron = nn;
    }
    json_t *sum = json_pack("{sIsIsI}", "from", (json_int_t)f, "tick", (json_int_t)t, "n",
                            (json_int_t)json_array_size(sp));
    json_decref(d);
    return sum;
}

/* Reads events until "end", EOF or max; returns the count. */
static size_t read_events(int fd, sse *ev, size_t max, double t0)
{
    size_t cap = 1 << 20, len = 0, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    bool done = false;
    while (!done && n < max) {
        if (cap - len < 65536) {
            cap *= 2;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        ssize_t r = recv(fd, b + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        double t = now_s() - t0;
        len += (size_t)r;
        b[len] = 0;
        char *p = b, *e;
        while (n < max && (e = strstr(p, "\n\n"))) {
            *e = 0;
            char *d = strstr(p, "\ndata: ");
            if (strncmp(p, "event: ", 7) || !d)
                fail_msg("bad event: %.200s", p);
            size_t nl = (size_t)(d - p - 7);
            assert_true(nl < sizeof ev[n].name);
            memcpy(ev[n].name, p + 7, nl);
            ev[n].name[nl] = 0;
            json_error_t je;
            ev[n].data = json_loads(d + 7, 0, &je);
            if (!ev[n].data)
                fail_msg("event data is not JSON (%s)", je.text);
            ev[n].t = t;
            if (!strcmp(ev[n].name, "meta"))
                order_tick = order_layer = order_neuron = -1;
            if (!strcmp(ev[n].name, "tick"))
                ev[n].data = check_tick_event(ev[n].data);
            if (!strcmp(ev[n].name, "end"))
                done = true;
            n++;
            p = e + 2;
        }
        len -= (size_t)(p - b);
        memmove(b, p, len + 1);
    }
    free(b);
    return n;
}

static void events_free(sse *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
}

/* Checks a complete stream: meta, tick events over consecutive ranges with
 * their spikes in (tick, layer, neuron) order, end; returns the spikes. */
static int64_t check_stream(sse *ev, size_t n, int64_t run, int64_t from, int64_t to)
{
    assert_true(n >= 3);
    assert_string_equal(ev[0].name, "meta");
    assert_int_equal(jint(ev[0].data, "run"), run);
    assert_int_equal(jint(ev[0].data, "from"), from);
    assert_int_equal(jint(ev[0].data, "to"), to);
    assert_true(json_array_size(json_object_get(ev[0].data, "layers")) >= 1);
    assert_string_equal(ev[n - 1].name, "end");
    int64_t expect_from = from, spikes = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        assert_string_equal(ev[i].name, "tick");
        int64_t f = jint(ev[i].data, "from"), t = jint(ev[i].data, "tick");
        assert_int_equal(f, expect_from);
        expect_from = t + 1;
        spikes += jint(ev[i].data, "n");
    }
    assert_int_equal(expect_from, to + 1);
    assert_int_equal(jint(ev[n - 1].data, "tick"), to);
    assert_int_equal(jint(ev[n - 1].data, "spikes"), spikes);
    assert_int_equal(jint(ev[n - 1].data, "events"), (int64_t)n - 2);
    nesim_error err = {0};
    int64_t want;
    assert_ok(nesim_trace_spike_count(rd, run, -1, from, to, &want, &err), &err);
    assert_int_equal(spikes, want);
    return spikes;
}

static void wait_replays_idle(void)
{
    double t0 = now_s();
    while (stats().replays_active != 0 && now_s() - t0 < 5)
        usleep(10000);
    assert_int_equal(stats().replays_active, 0);
}

static void test_replay_stream(void **state)
{
    enum { MAXEV = 20000 };
    sse *ev = calloc(MAXEV, sizeof *ev);
    assert_non_null(ev);
    /* 300 ticks at 500 ticks/s: about 0.6 s, never ahead of the clock */
    double t0 = now_s();
    int fd = replay_open("/api/runs/1/replay?speed=500&from=100&to=399", 0, true);
    size_t n = read_events(fd, ev, MAXEV, t0);
    close(fd);
    double took = ev[n - 1].t - ev[0].t;
    check_stream(ev, n, run_main, 100, 399);
    assert_true(n > 10); /* paced: many events */
    for (size_t i = 1; i + 1 < n; i++) {
        double due = (double)(jint(ev[i].data, "tick") - 100) / 500.0;
        if (ev[i].t - ev[0].t < due - 0.05)
            fail_msg("tick %lld arrived at %.3f s, due at %.3f s", (long long)jint(ev[i].data, "tick"),
                     ev[i].t - ev[0].t, due);
    }
    if (took < 0.5 || took > 3.0)
        fail_msg("300 ticks at 500 ticks/s took %.3f s", took);
    events_free(ev, n);

    /* as fast as it goes: every spike of the big run, in bounded events */
    uint64_t ev0 = stats().replay_events;
    t0 = now_s();
    fd = replay_open("/api/runs/3/replay?speed=1e9", 0, true);
    n = read_events(fd, ev, MAXEV, t0);
    close(fd);
    double secs = now_s() - t0;
    assert_int_equal(check_stream(ev, n, run_big, 0, BIG_TICKS - 1), BIG_TICKS * BIG_PER_TICK);
    for (size_t i = 1; i + 1 < n; i++)
        assert_true(jint(ev[i].data, "n") <= 16384 + BIG_PER_TICK);
    print_message("replay of %d spikes in %zu events: %.3f s (%.0f spikes/s, %.0f events/s)\n",
                  BIG_TICKS * BIG_PER_TICK, n, secs, BIG_TICKS * BIG_PER_TICK / secs, (double)n / secs);
    assert_int_equal(stats().replay_events - ev0, n - 2);
    events_free(ev, n);

    /* the whole main run over HTTP/1.1 (chunked), default speed and window */
    char raw[200];
    snprintf(raw, sizeof raw, "GET /api/runs/1/replay?speed=1000000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    resp r = request(raw);
    assert_int_equal(r.status, 200);
    char te[32];
    assert_string_equal(resp_header(&r, "Transfer-Encoding", te, sizeof te), "chunked");
    assert_non_null(strstr(r.body, "event: meta\ndata: {"));
    assert_non_null(strstr(r.body, "event: end\ndata: {\"tick\":1999,"));
    resp_free(&r);

    /* a run that stored no spikes plays time only */
    t0 = now_s();
    fd = replay_open("/api/runs/2/replay?speed=1e6", 0, true);
    n = read_events(fd, ev, MAXEV, t0);
    close(fd);
    assert_string_equal(json_string_value(json_object_get(ev[0].data, "record")), "activity");
    check_stream(ev, n, run_act, 0, 99);
    events_free(ev, n);
    free(ev);
    wait_replays_idle();
}

static void test_replay_disconnect_and_flow(void **state)
{
    sse ev[4];
    nesim_serve_stats st0 = stats();
    /* slow streams, dropped after the first event */
    int fds[MAX_REPLAYS];
    for (int i = 0; i < MAX_REPLAYS; i++) {
        fds[i] = replay_open("/api/runs/3/replay?speed=5", 0, true);
        assert_int_equal(read_events(fds[i], ev, 1, now_s()), 1);
        events_free(ev, 1);
    }
    assert_int_equal(stats().replays_active, MAX_REPLAYS);
    /* one more is refused */
    json_t *j = get_json(503, "/api/runs/3/replay?speed=5");
    json_decref(j);
    for (int i = 0; i < MAX_REPLAYS; i++)
        close(fds[i]);
    wait_replays_idle();
    nesim_serve_stats st1 = stats();
    assert_int_equal(st1.replays_ended - st0.replays_ended, MAX_REPLAYS);

    /* a client that does not read: the server pauses instead of buffering */
    double t0 = now_s();
    int fd = replay_open("/api/runs/3/replay?speed=1e9", 2048, false);
    nesim_serve_stats st2 = stats();
    for (int i = 0; i < 600 && st2.replay_pauses == st1.replay_pauses; i++) {
        usleep(50000);
        st2 = stats();
    }
    assert_true(st2.replay_pauses > st1.replay_pauses);
    assert_int_equal(st2.replays_active, 1);
    /* then it reads everything */
    char h[4096];
    size_t hn = 0;
    while (hn < sizeof h - 1 && !(hn >= 4 && !memcmp(h + hn - 4, "\r\n\r\n", 4)))
        assert_int_equal(recv(fd, h + hn++, 1, 0), 1);
    enum { MAXEV = 4000 };
    sse *all = calloc(MAXEV, sizeof *all);
    size_t n = read_events(fd, all, MAXEV, t0);
    close(fd);
    check_stream(all, n, run_big, 0, BIG_TICKS - 1);
    events_free(all, n);
    free(all);
    wait_replays_idle();

    /* a client that stops reading for good is dropped by the write timeout */
    fd = replay_open("/api/runs/3/replay?speed=1e9", 2048, false);
    t0 = now_s();
    while (stats().replays_active == 0 && now_s() - t0 < 2)
        usleep(10000);
    while (stats().replays_active != 0 && now_s() - t0 < TIMEOUT_S + 3)
        usleep(20000);
    assert_int_equal(stats().replays_active, 0);
    close(fd);
}

/* ------------------------------------------------- concurrent writers */

typedef struct writer_arg {
    int rc;
    char msg[512];
    int64_t run, spikes;
} writer_arg;

/* Writes a run slowly (flushing and pausing), as a live `nesim run` does. */
static void *writer_main(void *p)
{
    writer_arg *a = p;
    nesim_error err = {0};
    nesim_trace *t;
    if ((a->rc = nesim_trace_open(db, NESIM_TRACE_WRITE, &t, &err))) {
        snprintf(a->msg, sizeof a->msg, "%s", err.msg);
        return NULL;
    }
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4,
                                 .batch_spikes = 1000};
    if ((a->rc = nesim_trace_begin_run(t, &info, &a->run, &err)))
        goto out;
    int idx;
    nesim_trace_add_layer(t, &(nesim_trace_layer_info){"exc", "lif", NULL, 400, 0}, &idx, &err);
    nesim_trace_add_layer(t, &(nesim_trace_layer_info){"inh", "lif", NULL, 100, 0}, &idx, &err);
    uint64_t seed = 99;
    for (int64_t tick = 0; tick < 3000; tick++) {
        for (int l = 0; l < 2; l++) {
            int64_t k = (int64_t)(lcg(&seed) % 8);
            for (int64_t i = 0; i < k; i++)
                nesim_trace_spike(t, l, (int64_t)(lcg(&seed) % (l ? 100 : 400)), tick, 1);
            if (k)
                nesim_trace_activity(t, l, tick, k, k * 10);
            a->spikes += k;
        }
        if (tick % 100 == 99) {
            nesim_trace_flush(t);
            usleep(25000);
        }
    }
    nesim_trace_set_extent(t, -1, 3000);
    a->rc = nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err);
out:
    if (a->rc)
        snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    nesim_trace_close(t);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    writer_arg wa = {0};
    pthread_t wt;
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &wa), 0);
    pid_t pid = 0;
    if (nesim_bin()) { /* and a `nesim run --trace` process on the same file */
        char *argv[] = {(char *)nesim_bin(), "run", "examples/digits/model.json", "--input",
                        "examples/digits/test_inputs.npy", "--trace", db, "--quiet", NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
    }
    int polls = 0, seen_running = 0, writer_done = 0;
    int64_t known = run_digits ? run_digits : run_big;
    double t0 = now_s();
    while (!writer_done && now_s() - t0 < 15) {
        json_t *j = get_json(200, "/api/runs");
        json_t *runs = json_object_get(j, "runs");
        for (size_t i = 0; i < json_array_size(runs); i++) {
            json_t *o = json_array_get(runs, i);
            int64_t id = jint(o, "id");
            if (id <= known)
                continue;
            const char *st = json_string_value(json_object_get(o, "status"));
            if (!strcmp(st, "running"))
                seen_running++;
            json_t *L = get_json(200, "/api/runs/%lld/layers", (long long)id);
            json_decref(get_json(200, "/api/runs/%lld/activity?bins=50", (long long)id));
            if (json_array_size(json_object_get(L, "layers"))) /* layers come with the first batch */
                json_decref(get_json(200, "/api/runs/%lld/spikes?layer=0&limit=500", (long long)id));
            json_decref(L);
            json_decref(get_json(200, "/api/runs/%lld", (long long)id));
        }
        json_decref(j);
        polls++;
        if (wa.run && !wa.rc) {
            nesim_trace_run r;
            nesim_error err = {0};
            if (nesim_trace_get_run(rd, wa.run, &r, &err) == 0) {
                writer_done = r.status != NESIM_TRACE_RUNNING;
                nesim_trace_run_clear(&r);
            }
        }
        usleep(20000);
    }
    pthread_join(wt, NULL);
    if (wa.rc)
        fail_msg("writer: %s", wa.msg);
    if (pid) {
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_true(polls >= 3);
    assert_true(seen_running >= 1);
    /* the finished run reads back completely through the API */
    int64_t pages;
    assert_int_equal(collect(wa.run, "exc", 0, 7000, 0, 999999, &pages) +
                         collect(wa.run, "inh", 1, 7000, 0, 999999, &pages),
                     wa.spikes);
    json_t *j = get_json(200, "/api/runs/%lld/layers", (long long)wa.run);
    json_t *l0 = json_array_get(json_object_get(j, "layers"), 0);
    assert_true(json_is_true(json_object_get(l0, "totals_final")));
    json_decref(j);
}

/* ---------------------------------------------------------- the storm */

static void test_storm(void **state)
{
    resp before = get("/api/runs");
    assert_int_equal(before.status, 200);
    /* the workers and the loop (replays) have each opened their database
     * files (SQLite opens the -wal and -shm lazily, per connection) */
    resp warm = get("/api/runs/1/activity?bins=1");
    assert_int_equal(warm.status, 200);
    resp_free(&warm);
    warm = vget_head("/api/runs/1/replay");
    assert_int_equal(warm.status, 200);
    resp_free(&warm);
    int fds0 = count_fds();
    long rss0 = vm_rss_kib(), live0 = live_kib();
    uint64_t req0 = stats().requests;

    /* 2000 connections opened and dropped, many after sending junk */
    static const char *const junk[] = {
        "",
        "GET",
        "GET / HTTP/1.1\r\n",
        "\x00\x01\x02\x03\xff\xfe garbage\r\n\r\n",
        "GET /api/runs HTTP/9.9\r\n\r\n",
        "GET /api/runs HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /api/runs/1/spikes?layer=0&limit=2000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
        "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /api/runs/3/replay?speed=1e9 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "\r\n\r\n\r\n\r\n",
        "GET /%zz%00/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    };
    size_t nj = sizeof junk / sizeof *junk;
    char *huge = malloc(70000);
    memcpy(huge, "GET / HTTP/1.1\r\n", 16);
    memset(huge + 16, 'h', 70000 - 16);
    for (int i = 0; i < 2000; i++) {
        int fd = connect_to(port, 0);
        if (i % 50 == 7)
            send_all(fd, huge, 70000); /* may fail once the server hangs up */
        else
            send_all(fd, junk[i % nj], i % nj == 3 ? 18 : strlen(junk[i % nj]));
        if (i % 3 == 0) { /* a reset instead of a close */
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fd);
    }
    free(huge);

    /* slow clients: partial requests left open */
    enum { SLOW = 60 };
    int slow[SLOW];
    double t_slow = now_s();
    for (int i = 0; i < SLOW; i++) {
        slow[i] = connect_to(port, 0);
        send_all(slow[i], "GET /api/runs HTTP/1.1\r\nHost: 127.", 34);
    }
    /* malformed requests get an answer or a hang-up, never a hang */
    static const char *const bad[] = {
        "GET\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n X-Folded: yes\r\nConnection: close\r\n\r\n",
        "G\x01T / HTTP/1.1\r\n\r\n",
        "GET /api/runs/1/spikes?layer=%00 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        resp r = request(bad[i]);
        /* an unknown method gets libevent's 501 */
        if (!(r.status == 0 || (r.status >= 400 && r.status < 500) || r.status == 501))
            fail_msg("'%.20s...': %.100s", bad[i], r.raw);
        if (!(r.secs < TIMEOUT_S + 2))
            fail_msg("bad request %zu took %.1f s: %.100s", i, r.secs, r.raw);
        resp_free(&r);
    }
    /* meanwhile the server answers at once */
    resp mid = get("/api/runs");
    assert_int_equal(mid.status, 200);
    assert_true(mid.secs < 1.5);
    assert_string_equal(mid.body, before.body);
    resp_free(&mid);
    /* the slow clients are dropped after the timeout */
    double t0 = t_slow;
    for (int i = 0; i < SLOW; i++) {
        struct pollfd p = {slow[i], POLLIN, 0};
        int left = (int)((TIMEOUT_S + 3 - (now_s() - t0)) * 1000);
        assert_true(poll(&p, 1, left > 0 ? left : 0) == 1);
        char b[512];
        ssize_t r = recv(slow[i], b, sizeof b, 0);
        assert_true(r <= 0 || !strncmp(b, "HTTP/1.1 4", 10)); /* closed, or told why */
        close(slow[i]);
    }

    /* afterwards: the same answer, all connections gone, memory bounded */
    resp after = get("/api/runs");
    assert_int_equal(after.status, 200);
    assert_string_equal(after.body, before.body);
    resp_free(&after);
    resp_free(&before);
    t0 = now_s();
    int fds1 = count_fds();
    while (fds1 > fds0 && now_s() - t0 < TIMEOUT_S + 2) {
        usleep(50000);
        fds1 = count_fds();
    }
    assert_true(fds1 <= fds0);
    wait_replays_idle();
    long rss1 = vm_rss_kib(), live1 = live_kib();
    print_message("storm: %llu requests routed, fds %d -> %d, VmRSS %ld -> %ld KiB, heap in use %ld -> %ld KiB\n",
                  (unsigned long long)(stats().requests - req0), fds0, fds1, rss0, rss1, live0, live1);
    if (live0 >= 0)
        assert_true(live1 - live0 < 4 * 1024); /* nothing of 2000+ connections stays behind */
    assert_true(rss1 - rss0 < 128 * 1024);    /* generous: ASan's quarantine keeps freed memory */
    assert_int_equal(stats().server_errors, 0);
}

/* --------------------------------------------------------------- CLI */

static int run_cli(const char *args, char *out, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", nesim_bin(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t k = fread(out, 1, n - 1, p);
    out[k] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_cli(void **state)
{
    if (!nesim_bin()) {
        print_message("$NESIM not set: CLI not tested\n");
        return;
    }
    char out[8192], args[1024];
    assert_int_equal(run_cli("serve --help", out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: nesim serve DB [--port P] [--bind ADDR] [--token T] [--quiet]"));
    assert_int_equal(run_cli("serve", out, sizeof out), 2);
    assert_non_null(strstr(out, "nesim serve: which trace?"));
    assert_int_equal(run_cli("serve /nonexistent/x.db --port 0", out, sizeof out), 2);
    assert_non_null(strstr(out, "nesim serve: /nonexistent/x.db"));
    snprintf(args, sizeof args, "serve %s --port 70000", db);
    assert_int_equal(run_cli(args, out, sizeof out), 2);
    snprintf(args, sizeof args, "serve %s --bind localhost", db);
    assert_int_equal(run_cli(args, out, sizeof out), 2);
    assert_non_null(strstr(out, "--bind: expected a numeric"));
    snprintf(args, sizeof args, "serve %s --port %d", db, port); /* taken */
    assert_int_equal(run_cli(args, out, sizeof out), 1);

    /* a real server: prints its URL, answers, stops on SIGTERM with 0 */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    char *argv[] = {(char *)nesim_bin(), "serve", db, "--port", "0", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    char line[256];
    size_t k = 0;
    struct pollfd p = {pfd[0], POLLIN, 0};
    while (k < sizeof line - 1 && poll(&p, 1, 10000) == 1 && read(pfd[0], line + k, 1) == 1 && line[k] != '\n')
        k++;
    line[k] = 0;
    int cport = 0;
    if (sscanf(line, "nesim serve: http://127.0.0.1:%d/ (Ctrl-C stops)", &cport) != 1)
        fail_msg("unexpected first line: '%s'", line);
    char raw[200];
    snprintf(raw, sizeof raw, "GET /api/runs/1/layers HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             cport);
    resp r = request_on(cport, raw, strlen(raw));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"name\":\"hidden\""));
    resp_free(&r);
    kill(pid, SIGTERM);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(pfd[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page),
        cmocka_unit_test(test_runs_and_report),
        cmocka_unit_test(test_layers_energy),
        cmocka_unit_test(test_activity),
        cmocka_unit_test(test_spikes_paging),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_replay_stream),
        cmocka_unit_test(test_replay_disconnect_and_flow),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_storm),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
