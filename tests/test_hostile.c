/* test_hostile.c — nesim against hostile clients, hostile databases and a
 * hostile machine (issue 10). Every case is bounded in time and count and
 * runs on loopback only.
 *
 * The server (in a child process, so a crash or a rlimit is its own):
 * file-descriptor exhaustion, clients that never read, slowloris, heavy
 * queries beside cheap ones, Host and token rules. The readers: the crafted
 * databases of the issue and a generated corpus of corrupted traces, each a
 * clean one-line error (exit 2 from the CLI, 4xx/5xx JSON from a server that
 * stays up). The machine: SIGTERM, SIGHUP and SIGKILL during a traced run
 * (status and self-consistency), read-only places, a full disk (tmpfs,
 * skipped with a line where the machine does not allow mounting), and runs
 * refused by their memory estimate without allocating. */
#include "tests/support/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve/serve.h"
#include "traces/store.h"

static const char *bin(void) { return getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim"; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t k = fread(s, 1, (size_t)n, f);
    s[k] = 0;
    fclose(f);
    return s;
}

/* ------------------------------------------------------------ fixtures */

/* A trace with a layer run (digits, 40 samples), its replay, and a CUBA
 * network run; built once. */
static const char *base_db(void)
{
    static char path[512];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s/base.db", test_tmpdir());
    const char *r = "build/rel/nesim";
    assert_int_equal(sh("%s run examples/digits/model.json --input examples/digits/test_inputs.npy --samples 40 "
                        "--trace %s --quiet >/dev/null && %s replay %s --run 1 --from-layer fc2 --quiet >/dev/null && "
                        "%s run examples/cuba/model.json --seconds 0.2 --trace %s --quiet >/dev/null",
                        r, path, r, path, r, path),
                     0);
    return path;
}

/* A trace with one big network-like run: `spikes` spikes over `ticks` ticks in
 * two layers, with activity rows, written through the trace API. */
static void big_db(const char *path, int64_t ticks, int64_t spikes_per_tick)
{
    nesim_error err = {0};
    unlink(path);
    nesim_trace *t;
    assert_ok(nesim_trace_open(path, NESIM_TRACE_WRITE, &t, &err), &err);
    nesim_trace_run_info info = {.kind = NESIM_TRACE_NETWORK, .record = NESIM_TRACE_SPIKES, .tick_s = 1e-4};
    int64_t run;
    assert_ok(nesim_trace_begin_run(t, &info, &run, &err), &err);
    int idx;
    assert_ok(nesim_trace_add_layer(t, &(nesim_trace_layer_info){"exc", "lif", NULL, 1000, 0}, &idx, &err), &err);
    assert_ok(nesim_trace_add_layer(t, &(nesim_trace_layer_info){"inh", "lif", NULL, 250, 0}, &idx, &err), &err);
    uint64_t x = 7;
    for (int64_t tick = 0; tick < ticks; tick++) {
        for (int64_t k = 0; k < spikes_per_tick; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            assert_int_equal(nesim_trace_spike(t, 0, (int64_t)(x >> 33) % 1000, tick, 1), 0);
        }
        if (spikes_per_tick)
            assert_int_equal(nesim_trace_activity(t, 0, tick, spikes_per_tick, 10 * spikes_per_tick), 0);
        assert_int_equal(nesim_trace_activity(t, 1, tick, 1, 5), 0);
        assert_int_equal(nesim_trace_sync(t), 0);
    }
    assert_ok(nesim_trace_set_extent(t, -1, ticks), &err);
    assert_ok(nesim_trace_end_run(t, NESIM_TRACE_COMPLETE, &err), &err);
    nesim_trace_close(t);
}

/* ------------------------------------------------------ a server child */

typedef struct server {
    pid_t pid;
    int port;
} server;

/* Starts `nesim serve` in-process in a child (opts as given; the port comes
 * back through a pipe), with RLIMIT_NOFILE `nofile` when > 0. */
static server start_server(const nesim_serve_opts *o, int nofile)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (nofile > 0) {
            struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        nesim_error err = {0};
        nesim_serve *s;
        int port = -1;
        if (nesim_serve_start(o, &s, &err) == NESIM_OK)
            port = nesim_serve_port(s);
        if (write(p[1], &port, sizeof port) != sizeof port)
            _exit(3);
        close(p[1]);
        if (port < 0)
            _exit(2);
        int rc = nesim_serve_run(s);
        nesim_serve_free(s);
        _exit(rc ? 1 : 0);
    }
    close(p[1]);
    int port = -1;
    assert_int_equal(read(p[0], &port, sizeof port), (ssize_t)sizeof port);
    close(p[0]);
    assert_true(port > 0);
    return (server){pid, port};
}

/* The child is still up; stops it and checks it did not crash. */
static void stop_server(server *s)
{
    int st;
    assert_int_equal(waitpid(s->pid, &st, WNOHANG), 0); /* alive */
    kill(s->pid, SIGTERM);
    assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fail_msg("server ended with %s %d", WIFSIGNALED(st) ? "signal" : "status",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct resp {
    int status;
    char head[1024];
    char *body;
    double secs;
} resp;

/* Sends raw and reads the answer until EOF or `timeout` seconds. */
static resp http(int port, const char *raw, double timeout)
{
    resp r = {0};
    double t0 = now_s();
    int fd = connect_to(port);
    if (fd < 0) {
        r.body = strdup("");
        return r;
    }
    size_t n = strlen(raw);
    for (size_t k = 0; k < n;) {
        ssize_t w = send(fd, raw + k, n - k, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        k += (size_t)w;
    }
    size_t cap = 65536, len = 0;
    char *b = malloc(cap);
    for (;;) {
        int left = (int)((timeout - (now_s() - t0)) * 1000);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1)
            break;
        if (len + 4096 > cap)
            b = realloc(b, cap *= 2);
        ssize_t k = recv(fd, b + len, cap - len - 1, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    b[len] = 0;
    close(fd);
    r.secs = now_s() - t0;
    sscanf(b, "HTTP/1.%*d %d", &r.status);
    char *e = strstr(b, "\r\n\r\n");
    snprintf(r.head, sizeof r.head, "%.*s", e ? (int)(e - b) : (int)len, b);
    r.body = strdup(e ? e + 4 : "");
    free(b);
    return r;
}

static resp get(int port, const char *path)
{
    char raw[1024];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    return http(port, raw, 20);
}

/* ---------------------------------------------------------- the server */

/* With 64 file descriptors, 100 idle connections: accept() fails with
 * EMFILE (the listener pauses instead of crashing), the idle ones are
 * dropped at the header deadline, and requests are answered again. */
static void test_fd_exhaustion(void **st)
{
    nesim_serve_opts o = {.db = base_db(), .header_timeout_s = 2, .timeout_s = 5};
    server s = start_server(&o, 64);
    int fds[100];
    for (int i = 0; i < 100; i++)
        fds[i] = connect_to(s.port); /* the kernel's backlog takes what the server cannot */
    usleep(300000);
    double t0 = now_s();
    resp r = {0};
    while (now_s() - t0 < 8) {
        free(r.body);
        r = get(s.port, "/api/runs");
        if (r.status == 200)
            break;
        usleep(200000);
    }
    assert_int_equal(r.status, 200);
    free(r.body);
    for (int i = 0; i < 100; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    stop_server(&s);
}

/* 300 clients ask for a 100,000-spike page and never read: answers in
 * flight are bounded (503 beyond), memory stays bounded, a cheap request
 * is answered at once, and everything is freed when they go. */
static void test_clients_that_never_read(void **st)
{
    const char *db = test_tmp("big.db");
    big_db(db, 2000, 60); /* 120,000 spikes in layer 0 */
    /* the release server (ASan's quarantine would keep freed memory and hide the bound) */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl("build/rel/nesim", "nesim", "serve", db, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[256] = "";
    FILE *f = fdopen(p[0], "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    int port = 0;
    const char *c = strstr(line, "127.0.0.1:");
    assert_non_null(c);
    port = atoi(c + 10);
    server s = {pid, port};
    usleep(200000);
    long rss0 = rss_kib(s.pid);
    enum { N = 300 };
    int fds[N];
    const char *req = "GET /api/runs/1/spikes?layer=0&limit=100000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        int small = 4096;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* before connect: the window stays small */
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0 && send(fds[i], req, strlen(req), MSG_NOSIGNAL) < 0) {
        }
    }
    sleep(3);
    long rss1 = rss_kib(s.pid);
    resp r = get(s.port, "/api/runs");
    print_message("300 clients not reading 2.3 MB answers: server RSS %ld -> %ld KiB; a cheap request took %.3f s "
                  "(status %d)\n", rss0, rss1, r.secs, r.status);
    assert_int_equal(r.status, 200);
    assert_true(r.secs < 1.0);
    free(r.body);
    /* 300 answers held would be ~700 MB; the bound is 64 MiB of answers in flight */
    assert_true(rss1 - rss0 < 150 * 1024);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    sleep(1);
    r = get(s.port, "/api/runs/1/spikes?layer=0&limit=10");
    assert_int_equal(r.status, 200);
    free(r.body);
    stop_server(&s);
}

/* 40 connections sending one header byte per second are dropped at the
 * header deadline, while other requests are answered. */
static void test_slowloris(void **st)
{
    nesim_serve_opts o = {.db = base_db(), .header_timeout_s = 2};
    server s = start_server(&o, 0);
    enum { N = 40 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = connect_to(s.port);
    const char *slow = "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
    double t0 = now_s();
    int open = N;
    for (int k = 0; open && now_s() - t0 < 8; k++) {
        open = 0;
        for (int i = 0; i < N; i++) {
            if (fds[i] < 0)
                continue;
            char c;
            ssize_t got = recv(fds[i], &c, 1, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
                send(fds[i], slow + (k % (int)strlen(slow)), 1, MSG_NOSIGNAL) < 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            open++;
        }
        if (k == 1) {
            resp r = get(s.port, "/api/runs");
            assert_int_equal(r.status, 200);
            free(r.body);
        }
        sleep(1);
    }
    print_message("slowloris: %d of %d still open after %.1f s\n", open, N, now_s() - t0);
    assert_int_equal(open, 0);
    stop_server(&s);
}

/* Eight clients ask for 5000-bin activity over a 1.5 M-tick run without
 * end; meanwhile /api/runs stays fast (the heavy queries run on their own
 * worker). Timed against the release build's server. */
static void test_heavy_queries_beside_cheap(void **st)
{
    const char *db = test_tmp("long.db");
    big_db(db, 1500000, 0);
    nesim_serve_opts o = {.db = db};
    server s = start_server(&o, 0);
    pid_t kids[8];
    for (int k = 0; k < 8; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            for (int i = 0; i < 4; i++) {
                resp r = get(s.port, "/api/runs/1/activity?bins=5000");
                free(r.body);
            }
            _exit(0);
        }
    }
    usleep(300000);
    double worst = 0;
    for (int i = 0; i < 10; i++) {
        resp r = get(s.port, "/api/runs/1/layers");
        assert_int_equal(r.status, 200);
        worst = r.secs > worst ? r.secs : worst;
        free(r.body);
        usleep(100000);
    }
    print_message("heavy queries: a cheap request took at most %.1f ms while 8 clients ran 5000-bin activity\n",
                  1e3 * worst);
    for (int k = 0; k < 8; k++)
        waitpid(kids[k], NULL, 0);
    assert_true(worst < 0.25); /* 50 ms in the release build; ASan's is several times slower */
    stop_server(&s);
}

/* Host: two headers, an absolute URI naming another host, HTTP/1.1 without
 * Host: refused. Off loopback: the token, by query, header or cookie. */
static void test_host_and_token(void **st)
{
    nesim_serve_opts o = {.db = base_db()};
    server s = start_server(&o, 0);
    resp r = http(s.port, "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n", 5);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "more than once"));
    free(r.body);
    r = http(s.port, "GET http://evil.example/api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 5);
    assert_int_equal(r.status, 400);
    free(r.body);
    r = http(s.port, "GET /api/runs HTTP/1.1\r\nConnection: close\r\n\r\n", 5);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "required in HTTP/1.1"));
    free(r.body);
    r = http(s.port, "GET /api/runs HTTP/1.0\r\n\r\n", 5); /* 1.0 needs none */
    assert_int_equal(r.status, 200);
    free(r.body);
    stop_server(&s);

    nesim_serve_opts p = {.db = base_db(), .bind = "0.0.0.0", .token = "0123456789abcdef0123"};
    s = start_server(&p, 0);
    r = get(s.port, "/api/runs");
    assert_int_equal(r.status, 401);
    free(r.body);
    r = get(s.port, "/api/runs?token=wrongwrongwrongwrong");
    assert_int_equal(r.status, 401);
    free(r.body);
    r = get(s.port, "/api/runs?token=0123456789abcdef0123");
    assert_int_equal(r.status, 200);
    free(r.body);
    r = http(s.port, "GET /api/runs/1/layers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer 0123456789abcdef0123\r\n"
                     "Connection: close\r\n\r\n", 5);
    assert_int_equal(r.status, 200);
    free(r.body);
    r = get(s.port, "/?token=0123456789abcdef0123");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Set-Cookie: nesim_token=0123456789abcdef0123"));
    free(r.body);
    r = http(s.port, "GET /api/runs HTTP/1.1\r\nHost: x\r\nCookie: a=b; nesim_token=0123456789abcdef0123\r\n"
                     "Connection: close\r\n\r\n", 5);
    assert_int_equal(r.status, 200);
    free(r.body);
    stop_server(&s);
    /* the CLI makes one up and prints it, with a warning */
    assert_int_equal(sh("timeout -s INT 1 %s serve %s --bind 0.0.0.0 --port 0 > %s 2> %s", bin(), base_db(),
                        test_tmp("serve.out"), test_tmp("serve.err")),
                     124); /* timeout's status for the child it stopped */
    char *out = slurp(test_tmp("serve.out")), *err = slurp(test_tmp("serve.err"));
    assert_non_null(strstr(out, "?token="));
    assert_non_null(strstr(err, "warning: 0.0.0.0 is not a loopback address"));
    free(out), free(err);
}

/* -------------------------------------------------- crafted databases */

/* Applies sql to a copy of the base trace. */
static const char *crafted(const char *name, const char *sql)
{
    const char *p = test_tmp(name);
    assert_int_equal(sh("cp %s %s && rm -f %s-wal %s-shm", base_db(), p, p, p), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    char *e = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
        fail_msg("%s: %s", sql, e);
    sqlite3_close(db);
    return p;
}

/* A reader on a bad database: exit 2 and one line naming the file. */
static void expect_clean_error(const char *args, const char *db)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2> %s > /dev/null", bin(), args, test_tmp("err.txt"));
    int rc = sh("%s", cmd);
    char *e = slurp(test_tmp("err.txt"));
    if (rc != 2 || !strstr(e, db) || strchr(e, '\n') != e + strlen(e) - 1)
        fail_msg("`nesim %s`: exit %d, stderr: %s", args, rc, e);
    free(e);
}

/* Which readers a crafted value must stop (others read what they need
 * and stay correct: a report reads no spikes). */
enum { SHOW = 1, REPLAY = 2, DIFF = 4, ACTIVITY = 8, RASTER = 16, SPIKES = 32, ALL = 63 };

static void test_crafted_databases(void **st)
{
    static const struct { const char *name, *sql; int fails; } cases[] = {
        {"idx.db", "UPDATE layers SET idx = idx + 10 WHERE run = 1", ALL},
        {"lasttick.db", "UPDATE layers SET last_tick = 9223372036854775807 WHERE run = 1", ALL},
        {"neuron.db", "UPDATE spike_groups SET neurons = '[99999]' WHERE run = 1 AND layer = 1",
         REPLAY | DIFF | RASTER | SPIKES},
        {"samples.db", "UPDATE runs SET samples = 4294967296 WHERE id = 1", REPLAY},
        {"codes.db", "UPDATE codes SET steps = 1000000000 WHERE run = 1", REPLAY},
        {"ticks.db", "UPDATE runs SET virtual_ticks = -7 WHERE id = 1", SHOW | REPLAY | DIFF},
        {"neurons0.db", "UPDATE layers SET neurons = 0 WHERE run = 1", ALL},
        {"activity.db", "UPDATE activity_blocks SET spikes = -5 WHERE run = 1", ACTIVITY},
        {"span.db", "UPDATE spike_groups SET span = 1000 WHERE run = 1 AND layer = 1", REPLAY | DIFF | RASTER | SPIKES},
        {"offset.db", "UPDATE spike_groups SET neurons = '[' || (span * 4096) || ']' WHERE run = 1 AND layer = 1",
         REPLAY | DIFF | RASTER | SPIKES},
        {"per-tick.db", "UPDATE activity_blocks SET per_tick = '[[1,1,2],[1,1,2]]', span = 2 WHERE run = 1", ACTIVITY},
        {"act-sum.db", "UPDATE activity_blocks SET spikes = spikes + 1 WHERE run = 1 AND per_tick IS NOT NULL", ACTIVITY},
        {"sample-ticks.db", "UPDATE samples SET first_tick = last_tick + 1 WHERE run = 1", RASTER},
    };
    char args[2048];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *db = crafted(cases[i].name, cases[i].sql);
        const char *const fmt[6] = {"trace show %s --run 1", "replay %s --run 1 --from-layer fc2 --quiet",
                                    "trace diff %s 1 2", "trace activity %s --run 1 -o /dev/null",
                                    "trace raster %s --run 1 --layer 1 -o /dev/null",
                                    "trace spikes %s --run 1 --layer 1"};
        for (int k = 0; k < 6; k++) {
            if (!(cases[i].fails & (1 << k)))
                continue;
            snprintf(args, sizeof args, fmt[k], db);
            expect_clean_error(args, db);
        }
        /* the server answers JSON errors and stays up */
        nesim_serve_opts o = {.db = db};
        server s = start_server(&o, 0);
        static const char *const paths[] = {"/api/runs", "/api/runs/1", "/api/runs/1/layers",
                                            "/api/runs/1/activity", "/api/runs/1/spikes?layer=1",
                                            "/api/runs/1/energy", "/api/runs/1/replay?speed=1e9"};
        for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
            resp r = get(s.port, paths[k]);
            if (r.status != 200 && !(r.status >= 400 && r.status < 600 && strstr(r.body, "\"error\"")))
                fail_msg("%s %s: %d %s", cases[i].name, paths[k], r.status, r.body);
            free(r.body);
        }
        resp ok = get(s.port, "/api/runs/3/layers"); /* the untouched run still reads */
        assert_int_equal(ok.status, 200);
        free(ok.body);
        stop_server(&s);
    }
}

/* A generated corpus: 120 traces, each with one random value in one random
 * table cell (extremes, negatives, text, NULL, blobs), read by every reader
 * in-process: a clean status every time (ASan and UBSan watch). */
static void test_corrupted_corpus(void **st)
{
    static const char *const cells[][2] = {
        {"runs", "samples"}, {"runs", "virtual_ticks"}, {"runs", "tick_s"}, {"runs", "parent_run"},
        {"runs", "spec_text"}, {"layers", "idx"}, {"layers", "neurons"}, {"layers", "fan_in"},
        {"layers", "spikes"}, {"layers", "first_tick"}, {"layers", "last_tick"}, {"layers", "name"},
        {"activity_blocks", "tick"}, {"activity_blocks", "spikes"}, {"activity_blocks", "layer"},
        {"activity_blocks", "span"}, {"activity_blocks", "per_tick"}, {"spike_groups", "neurons"},
        {"spike_groups", "tick"}, {"spike_groups", "layer"}, {"spike_groups", "n"}, {"spike_groups", "span"},
        {"samples", "first_tick"},
        {"samples", "last_tick"}, {"codes", "steps"}, {"codes", "vth"}, {"codes", "t0"}, {"codes", "sample"},
        {"metrics", "layer"}, {"metrics", "value"}, {"energy", "joules"}, {"energy", "layer"},
    };
    static const char *const values[] = {
        "-1", "0", "9223372036854775807", "-9223372036854775808", "4611686018427387904", "2147483648", "1e308",
        "'x'", "NULL", "x'00ff'", "'[1,2,-3]'", "'[9999999999]'", "'[\"a\"]'", "'['", "0.5", "-0.0",
    };
    const size_t nc = sizeof cells / sizeof *cells, nv = sizeof values / sizeof *values;
    uint64_t x = 12345;
    int clean = 0, errors = 0;
    for (int k = 0; k < 120; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const char *table = cells[(x >> 33) % nc][0], *col = cells[(x >> 33) % nc][1];
        const char *val = values[(x >> 20) % nv];
        char sql[512];
        /* one row, picked by its position; constraints may refuse the value: then the copy is untouched */
        snprintf(sql, sizeof sql,
                 "UPDATE OR IGNORE %s SET %s = %s WHERE rowid IN (SELECT rowid FROM %s LIMIT 1 OFFSET %llu)", table,
                 col, val, table, (unsigned long long)((x >> 8) % 7));
        if (!strcmp(table, "layers") || !strcmp(table, "activity_blocks") || !strcmp(table, "spike_groups") ||
            !strcmp(table, "samples") || !strcmp(table, "codes"))
            snprintf(sql, sizeof sql, "UPDATE OR IGNORE %s SET %s = %s WHERE run = %llu", table, col, val,
                     (unsigned long long)((x >> 8) % 3 + 1));
        const char *p = test_tmp("corrupt.db");
        assert_int_equal(sh("cp %s %s && rm -f %s-wal %s-shm", base_db(), p, p, p), 0);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        sqlite3_exec(db, sql, NULL, NULL, NULL); /* a CHECK or NOT NULL may refuse it */
        sqlite3_close(db);
        nesim_error err = {0};
        nesim_trace *t;
        if (nesim_trace_open(p, NESIM_TRACE_READ, &t, &err)) {
            errors++;
            continue;
        }
        for (int64_t run = 1; run <= 3; run++) {
            int rcs[6];
            FILE *f = fopen("/dev/null", "w");
            rcs[0] = nesim_trace_report(t, run, f, true, &err);
            rcs[1] = nesim_trace_report(t, run, f, false, &err);
            rcs[2] = nesim_trace_activity_svg(t, run, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, f, &err);
            rcs[3] = nesim_trace_raster_svg(t, run, 1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, f, &err);
            rcs[4] = nesim_trace_diff(t, 1, run, f, true, &err);
            rcs[5] = nesim_trace_export(t, run, NESIM_TRACE_CSV, test_tmp("corrupt.csv"), &err);
            fclose(f);
            for (int i = 0; i < 6; i++) {
                if (rcs[i] != NESIM_OK && rcs[i] != NESIM_EINVAL)
                    fail_msg("corpus %d (%s): reader %d returned %d: %s", k, sql, i, rcs[i], err.msg);
                if (rcs[i] == NESIM_OK)
                    clean++;
                else
                    errors++;
            }
        }
        nesim_trace_close(t);
    }
    print_message("corrupted corpus: 120 traces, %d reads fine, %d clean errors\n", clean, errors);
    assert_true(errors > 50);
}

/* --------------------------------------------------- signals and kills */

/* The rows of a run's activity and spikes agree tick by tick. */
static void assert_consistent(const char *db)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    /* both directions: the views, one row per (run, layer, tick) each */
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT (SELECT count(*) FROM (SELECT run, layer, tick, count(*) FROM spikes"
                                        " GROUP BY run, layer, tick EXCEPT SELECT run, layer, tick, spikes FROM activity))"
                                        " + (SELECT count(*) FROM (SELECT run, layer, tick, spikes FROM activity"
                                        " WHERE spikes > 0 EXCEPT SELECT run, layer, tick, count(*) FROM spikes"
                                        " GROUP BY run, layer, tick))",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t bad = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    if (bad)
        fail_msg("%s: %lld (layer, tick) rows where activity and spikes disagree", db, (long long)bad);
}

static void signal_round(int sig, const char *spec_args, const char *name)
{
    const char *db = test_tmp(name);
    unlink(db);
    pid_t pid = fork();
    if (pid == 0) {
        /* a clean slate of signals: a blocked or ignored one would survive exec */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL), signal(SIGHUP, SIG_DFL), signal(SIGINT, SIG_DFL);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "exec %s run %s --trace %s --quiet", bin(), spec_args, db);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* Kill it mid-run: once spikes are on disk, whatever the machine's speed
       (under the sanitizers a 7B-wide layer takes seconds before its trace opens). */
    for (int i = 0; i < 2400 && !test_spikes_on_disk(db); i++)
        usleep(50000);
    usleep(300000);
    kill(pid, sig);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == sig); /* marked, then died of it */
    nesim_error err = {0};
    nesim_trace *t;
    assert_ok(nesim_trace_open(db, NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, 1, &r, &err), &err);
    nesim_trace_status want = sig == SIGKILL ? NESIM_TRACE_ABANDONED : NESIM_TRACE_INTERRUPTED;
    if (r.status != want)
        fail_msg("signal %d: run is %s", sig, nesim_trace_status_name(r.status));
    nesim_trace_run_clear(&r);
    int64_t n;
    assert_ok(nesim_trace_spike_count(t, 1, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &n, &err), &err);
    assert_true(n > 0);
    nesim_trace_close(t);
    assert_consistent(db);
}

static void test_signals(void **st)
{
    const char *net = "examples/cuba/model.json --seconds 200";
    const char *layers = "examples/spikingbrain-7b-layer/model.json --random-input 60";
    signal_round(SIGTERM, net, "term.db");
    signal_round(SIGHUP, net, "hup.db");
    signal_round(SIGKILL, net, "kill.db");
    signal_round(SIGTERM, layers, "term-layers.db");
    signal_round(SIGKILL, layers, "kill-layers.db");
    /* the trace list says it */
    assert_int_equal(sh("%s trace runs %s | grep -q abandoned", bin(), test_tmp("kill.db")), 0);
}

/* ------------------------------------------------------- the machine */

static bool can_mount(void)
{
    const char *d = test_tmp("mnt-probe");
    mkdir(d, 0755);
    if (mount("tmpfs", d, "tmpfs", 0, "size=64k") != 0)
        return false;
    umount(d);
    return true;
}

/* A read-only bind mount: a finished trace reads (as immutable) with no
 * note; a killed one (its -wal beside it) reads with the note. As another
 * user without write access: the same. */
static void test_read_only_places(void **st)
{
    if (!can_mount()) {
        print_message("read-only places: skipped (this machine does not allow mounting here)\n");
        skip();
    }
    const char *src = test_tmp("ro-src"), *ro = test_tmp("ro");
    mkdir(src, 0755);
    mkdir(ro, 0755);
    assert_int_equal(sh("cp %s %s/t.db", base_db(), src), 0);
    assert_int_equal(mount(src, ro, NULL, MS_BIND, NULL), 0);
    assert_int_equal(mount(NULL, ro, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), 0);
    char args[1024];
    snprintf(args, sizeof args, "%s trace runs %s/t.db > %s 2> %s", bin(), ro, test_tmp("ro.out"), test_tmp("ro.err"));
    int rc = sh("%s", args);
    char *out = slurp(test_tmp("ro.out")), *err = slurp(test_tmp("ro.err"));
    umount(ro);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "complete"));
    assert_string_equal(err, "");
    free(out), free(err);
    /* another user, without write access to the folder */
    chmod(test_tmpdir(), 0755);
    chmod(src, 0755);
    assert_int_equal(sh("chmod 644 %s/t.db && setpriv --reuid=65534 --regid=65534 --clear-groups %s trace show %s/t.db "
                        "--run 1 > /dev/null",
                        src, bin(), src),
                     0);
}

/* A full disk (a 2 MiB tmpfs): the trace says "database or disk is full",
 * exit 1; an --output that fails after a good run still reports the run and
 * records it complete. */
static void test_full_disk(void **st)
{
    if (!can_mount()) {
        print_message("full disk: skipped (this machine does not allow mounting here)\n");
        skip();
    }
    const char *m = test_tmp("full");
    mkdir(m, 0755);
    assert_int_equal(mount("tmpfs", m, "tmpfs", 0, "size=2m"), 0);
    int rc = sh("%s run examples/cuba/model.json --seconds 5 --trace %s/t.db --quiet > /dev/null 2> %s", bin(), m,
                test_tmp("full.err"));
    char *e = slurp(test_tmp("full.err"));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(e, "database or disk is full"));
    free(e);
    /* fill the disk, then write the output there after a good run */
    sh("dd if=/dev/zero of=%s/fill bs=64k count=64 2>/dev/null", m);
    rc = sh("%s run examples/digits/model.json --input examples/digits/test_inputs.npy --output %s/y.npy --trace %s "
            "--quiet --json > %s 2> %s",
            bin(), m, test_tmp("late.db"), test_tmp("late.json"), test_tmp("late.err"));
    umount(m);
    e = slurp(test_tmp("late.err"));
    char *j = slurp(test_tmp("late.json"));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(e, "y.npy"));
    assert_non_null(strstr(j, "\"spike_checksum\"")); /* the report is out */
    free(e), free(j);
    nesim_error err = {0};
    nesim_trace *t;
    assert_ok(nesim_trace_open(test_tmp("late.db"), NESIM_TRACE_READ, &t, &err), &err);
    nesim_trace_run r;
    assert_ok(nesim_trace_get_run(t, 1, &r, &err), &err);
    assert_int_equal(r.status, NESIM_TRACE_COMPLETE);
    nesim_trace_run_clear(&r);
    nesim_trace_close(t);
}

/* Peak RSS of `nesim args` in KiB, by /usr/bin/time (a forked child's own
 * getrusage would count the test process it was forked from). */
static long run_peak_kib(const char *args, int *status)
{
    *status = sh("/usr/bin/time -f %%M -o %s build/rel/nesim %s > /dev/null 2>&1", test_tmp("peak.txt"), args);
    char *t = slurp(test_tmp("peak.txt"));
    const char *last = strrchr(t, '\n') && strlen(t) > 1 ? t : t; /* "Command exited ..." may come first */
    long kib = -1;
    for (const char *p = last; *p; p++)
        if ((p == t || p[-1] == '\n') && *p >= '0' && *p <= '9')
            kib = atol(p);
    free(t);
    return kib;
}

static void test_memory_estimate(void **st)
{
    if (access("/usr/bin/time", X_OK) != 0) {
        print_message("memory estimate: skipped (/usr/bin/time, Debian's `time`, is not installed)\n");
        skip();
    }
    FILE *f = fopen(test_tmp("huge.json"), "w");
    fputs("{\"nesim\":1,\"tick\":1e-4,\"seed\":1,\"populations\":[{\"name\":\"big\",\"model\":\"if\","
          "\"n\":1000000000,\"params\":{\"v_thresh\":1}}]}",
          f);
    fclose(f);
    f = fopen(test_tmp("dense.json"), "w");
    fputs("{\"nesim\":1,\"tick\":1e-4,\"seed\":1,\"populations\":[{\"name\":\"a\",\"model\":\"if\",\"n\":100000,"
          "\"params\":{\"v_thresh\":1}}],\"projections\":[{\"pre\":\"a\",\"post\":\"a\",\"rule\":\"fixed_prob\",\"p\":1,"
          "\"weight\":0.1}]}",
          f);
    fclose(f);
    char args[1024];
    int status;
    snprintf(args, sizeof args, "run %s --seconds 0.01", test_tmp("huge.json"));
    long k1 = run_peak_kib(args, &status);
    assert_int_equal(status, 2);
    snprintf(args, sizeof args, "run %s --seconds 0.01", test_tmp("dense.json"));
    long k2 = run_peak_kib(args, &status);
    assert_int_equal(status, 2);
    /* with a small cap, the 7B layer on many samples */
    long k3 = run_peak_kib("run examples/spikingbrain-7b-layer/model.json --random-input 1000000 --max-memory 100M",
                           &status);
    assert_int_equal(status, 2);
    long k4 = run_peak_kib("example b4 --neurons 100000000", &status);
    assert_int_equal(status, 2);
    print_message("refused before allocating: peak RSS %ld, %ld, %ld, %ld KiB\n", k1, k2, k3, k4);
    assert_true(k1 < 50 * 1024 && k2 < 50 * 1024 && k3 < 50 * 1024 && k4 < 50 * 1024);
    /* samples stream: 2000 synthetic samples of 65536 inputs (512 MiB if all
     * in memory at once) run in batches of at most 64 MiB */
    f = fopen(test_tmp("wide.json"), "w");
    fputs("{\"nesim\":1,\"tick\":1e-3,\"seed\":1,\"input\":{\"shape\":[65536]},\"layers\":[{\"name\":\"fc\","
          "\"type\":\"linear\",\"weight\":{\"synthetic\":{\"dist\":\"normal\",\"std\":0.01,\"shape\":[2,65536]}},"
          "\"coding\":\"bitwise\",\"k\":3}]}",
          f);
    fclose(f);
    snprintf(args, sizeof args, "run %s --random-input 2000 --chip none --output %s", test_tmp("wide.json"),
             test_tmp("wide-y.npy"));
    long k5 = run_peak_kib(args, &status);
    print_message("2000 samples x 65536 inputs: peak RSS %ld KiB\n", k5);
    assert_int_equal(status, 0);
    assert_true(k5 < 300 * 1024);
}

static void test_strict_options(void **st)
{
    static const char *const bad[] = {
        "run examples/cuba/model.json --seconds 0x10",
        "run examples/digits/model.json --random-input 2 --seconds 1",
        "run examples/cuba/model.json --input examples/digits/test_inputs.npy",
        "example b4 --tick 1e-300",
        "example b4 --seconds 1e-9",
        "example b4 --seed ' 7'",
        "run examples/digits/model.json --random-input 2 --output /nonexistent/dir/y.npy",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = sh("%s %s > /dev/null 2> %s", bin(), bad[i], test_tmp("opt.err"));
        char *e = slurp(test_tmp("opt.err"));
        if (rc != 2 || strchr(e, '\n') != e + strlen(e) - 1)
            fail_msg("`nesim %s`: exit %d, %s", bad[i], rc, e);
        free(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_exhaustion),
        cmocka_unit_test(test_clients_that_never_read),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_heavy_queries_beside_cheap),
        cmocka_unit_test(test_host_and_token),
        cmocka_unit_test(test_crafted_databases),
        cmocka_unit_test(test_corrupted_corpus),
        cmocka_unit_test(test_signals),
        cmocka_unit_test(test_read_only_places),
        cmocka_unit_test(test_full_disk),
        cmocka_unit_test(test_memory_estimate),
        cmocka_unit_test(test_strict_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
