/* serve.c — `nesim serve`: the event loop, the listening socket, the Host
 * check and routing. Replies and parameters are in http.c, the endpoints in
 * api.c, the paced replay stream in replay.c; the API is in serve.h.
 *
 * Guarantees:
 * - One thread runs the loop; a request is answered from the database in
 *   its callback (no request waits for another, except behind it in the
 *   loop), every answer bounded: at most 100000 spikes, 5000 bins per layer.
 * - Every path of every request replies exactly once; every reply has a
 *   Content-Type; the router's errors are JSON {"error": "..."}.
 * - Connections cost memory only while they live: idle and stalled ones are
 *   closed after the timeout, input beyond 64 KiB is not read while a reply
 *   is being written, headers and bodies are capped.
 */
#include "serve/serve_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/util.h>

#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_MAX_HEADERS 8192
#define DEFAULT_MAX_BODY 1024
#define DEFAULT_MAX_REPLAYS 32
#define DEFAULT_REPLAY_BUFFER (256 * 1024)
/* Input a connection buffers at most before reading pauses (a client that
 * pipelines or sends garbage while its reply is being written). */
#define INPUT_HIGH_WATER (64 * 1024)

static bool host_ok(const nesim_serve *s, struct evhttp_request *req)
{
    if (!s->loopback)
        return true;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (!h)
        return true; /* HTTP/1.0 */
    char host[80];
    size_t n;
    if (h[0] == '[') {
        const char *e = strchr(h, ']');
        if (!e || (size_t)(e - h - 1) >= sizeof host)
            return false;
        n = (size_t)(e - h - 1);
        memcpy(host, h + 1, n);
        h = e + 1;
    } else {
        n = strcspn(h, ":");
        if (n >= sizeof host)
            return false;
        memcpy(host, h, n);
        h += n;
    }
    host[n] = 0;
    if (*h == ':')
        for (h++; *h; h++)
            if (*h < '0' || *h > '9')
                return false;
    if (*h)
        return false;
    if (!strcasecmp(host, "localhost") || !strcmp(host, s->bind_addr))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* A run id path segment: digits only. */
static bool path_id(nesim_serve *s, struct evhttp_request *req, const char *seg, size_t n, int64_t *id)
{
    char b[32];
    char qb[SERVE_QUOTE + 4];
    bool digits = n > 0 && n <= 18;
    for (size_t i = 0; i < n && digits; i++)
        digits = seg[i] >= '0' && seg[i] <= '9';
    if (!digits) {
        char v[SERVE_QUOTE + 1];
        size_t k = n < SERVE_QUOTE ? n : SERVE_QUOTE;
        memcpy(v, seg, k);
        v[k] = 0;
        serve_reply_error(s, req, 400, "run id: expected a positive integer, got '%s%s'", serve_quote(v, qb),
                          n > SERVE_QUOTE ? "..." : "");
        return false;
    }
    memcpy(b, seg, n);
    b[n] = 0;
    *id = strtoll(b, NULL, 10);
    return true;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    nesim_serve *s = arg;
    atomic_fetch_add(&s->stats.requests, 1);
    /* no Nagle: a response's last segment must not wait for the client's
     * delayed ACK (40 ms per keep-alive request otherwise) */
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    int one = 1;
    if (bev && bufferevent_getfd(bev) >= 0)
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    serve_common_headers(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        serve_reply_error(s, req, 405, "method not allowed: this server answers GET and HEAD only");
        return;
    }
    size_t hsize = strlen(evhttp_request_get_uri(req)) + 20;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
        hsize += strlen(kv->key) + strlen(kv->value) + 4;
    if (hsize > s->o.max_header_bytes) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        serve_reply_error(s, req, 431, "request line and headers too large: %zu bytes (at most %zu)", hsize,
                          s->o.max_header_bytes);
        return;
    }
    if (!host_ok(s, req)) {
        serve_reply_error(s, req, 400,
                          "Host: this server answers requests for 127.0.0.1, localhost or [::1] only");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    char qb[SERVE_QUOTE + 4];
    static const char runs[] = "/api/runs";
    if (!strcmp(path, "/")) {
        serve_api_page(s, req);
        return;
    }
    if (!strcmp(path, runs)) {
        serve_api_runs(s, req);
        return;
    }
    if (!strncmp(path, runs, sizeof runs - 1) && path[sizeof runs - 1] == '/') {
        const char *seg = path + sizeof runs;
        size_t n = strcspn(seg, "/");
        const char *sub = seg[n] == '/' ? seg + n + 1 : NULL;
        static const char *const subs[] = {"layers", "activity", "spikes", "energy", "replay"};
        int k = -1;
        for (int i = 0; sub && i < 5; i++)
            if (!strcmp(sub, subs[i]))
                k = i;
        if (sub && k < 0) {
            serve_reply_error(s, req, 404, "no such path: %s (a run has /layers, /activity, /spikes, /energy, "
                              "/replay)", serve_quote(path, qb));
            return;
        }
        if (n == 0) {
            serve_reply_error(s, req, 404, "no such path: %s (runs are /api/runs/ID)", serve_quote(path, qb));
            return;
        }
        int64_t id;
        if (!path_id(s, req, seg, n, &id))
            return;
        switch (k) {
        case -1: serve_api_run(s, req, id); return;
        case 0: serve_api_layers(s, req, id); return;
        case 1: serve_api_activity(s, req, id); return;
        case 2: serve_api_spikes(s, req, id); return;
        case 3: serve_api_energy(s, req, id); return;
        default: serve_replay_start(s, req, id); return;
        }
    }
    serve_reply_error(s, req, 404, "no such path: %s (the API is under /api/runs)", serve_quote(path, qb));
}

/* ------------------------------------------------- connections, listener */

/* Every connection's bufferevent: input reading pauses at 64 KiB. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
    (void)arg;
    struct bufferevent *b = bufferevent_socket_new(base, -1, 0);
    if (b)
        bufferevent_setwatermark(b, EV_READ, 0, INPUT_HIGH_WATER);
    return b;
}

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    nesim_serve *s = arg;
    if (s->bound)
        evconnlistener_enable(evhttp_bound_socket_get_listener(s->bound));
}

/* accept() failed for a reason that will not clear by itself at once
 * (EMFILE, ENFILE, ENOBUFS): pause listening for 100 ms rather than spin. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    nesim_serve *s = arg;
    atomic_fetch_add(&s->stats.accept_pauses, 1);
    evconnlistener_disable(l);
    struct timeval tv = {0, 100000};
    evtimer_add(s->relisten_ev, &tv);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    nesim_serve *s = arg;
    char b[64];
    while (read(fd, b, sizeof b) > 0) {
    }
    event_base_loopbreak(s->base);
}

static void quiet_log(int severity, const char *msg)
{
    (void)severity, (void)msg;
}

static int set_cloexec_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int fd_fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fd_fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

/* Parses a numeric address ("127.0.0.1", "::1", "[::1]") into ss. */
static int parse_bind(const char *a, int port, struct sockaddr_storage *ss, socklen_t *len, bool *loopback,
                      char *canon, size_t ncanon, nesim_error *err)
{
    memset(ss, 0, sizeof *ss);
    char b[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(a);
    if (n >= 2 && n < sizeof b && a[0] == '[' && a[n - 1] == ']') {
        memcpy(b, a + 1, n - 2);
        b[n - 2] = 0;
    } else if (n < sizeof b) {
        memcpy(b, a, n + 1);
    } else {
        b[0] = 0;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, b, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        *loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, b, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    } else {
        return nesim_fail(err, NESIM_EINVAL, "--bind: expected a numeric IPv4 or IPv6 address, got '%s'", a);
    }
    snprintf(canon, ncanon, "%s", b);
    return NESIM_OK;
}

static int listen_on(nesim_serve *s, nesim_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char canon[INET6_ADDRSTRLEN + 2];
    int rc = parse_bind(s->bind_addr, s->o.port, &ss, &len, &s->loopback, canon, sizeof canon, err);
    if (rc)
        return rc;
    free(s->bind_addr);
    if (!(s->bind_addr = strdup(canon)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return nesim_fail(err, NESIM_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (set_cloexec_nonblock(fd) < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        return nesim_fail(err, NESIM_EIO, "cannot listen on %s port %d: %s", s->bind_addr, s->o.port,
                          strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0) {
        int e = errno;
        close(fd);
        return nesim_fail(err, NESIM_EIO, "getsockname: %s", strerror(e));
    }
    s->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                             : ((struct sockaddr_in6 *)&got)->sin6_port);
    s->bound = evhttp_accept_socket_with_handle(s->http, fd);
    if (!s->bound) {
        close(fd);
        return nesim_fail(err, NESIM_EIO, "cannot serve on %s port %d", s->bind_addr, s->port);
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(s->bound), on_accept_error);
    return NESIM_OK;
}

/* ------------------------------------------------------------ lifetime */

int nesim_serve_start(const nesim_serve_opts *o, nesim_serve **out, nesim_error *err)
{
    *out = NULL;
    if (!o || !o->db || !*o->db)
        return nesim_fail(err, NESIM_EINVAL, "serve: which trace database?");
    if (o->port < 0 || o->port > 65535)
        return nesim_fail(err, NESIM_EINVAL, "--port: expected 0..65535, got %d", o->port);
    if (o->timeout_s < 0 || o->max_replays < 0)
        return nesim_fail(err, NESIM_EINVAL, "serve: negative timeout or replay limit");
    nesim_serve *s = calloc(1, sizeof *s);
    if (!s)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    s->wake_fd[0] = s->wake_fd[1] = -1;
    s->o = *o;
    if (!s->o.timeout_s)
        s->o.timeout_s = DEFAULT_TIMEOUT_S;
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = DEFAULT_MAX_HEADERS;
    if (!s->o.max_body_bytes)
        s->o.max_body_bytes = DEFAULT_MAX_BODY;
    if (!s->o.max_replays)
        s->o.max_replays = DEFAULT_MAX_REPLAYS;
    if (!s->o.replay_buffer)
        s->o.replay_buffer = DEFAULT_REPLAY_BUFFER;
    s->db_path = strdup(o->db);
    s->bind_addr = strdup(o->bind ? o->bind : "127.0.0.1");
    s->o.db = s->o.bind = NULL;
    int rc = NESIM_OK;
    if (!s->db_path || !s->bind_addr) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = nesim_trace_open(s->db_path, NESIM_TRACE_READ, &s->t, err)))
        goto fail;

    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(quiet_log);

    if (!(s->base = event_base_new()) || !(s->http = evhttp_new(s->base)) ||
        !(s->relisten_ev = evtimer_new(s->base, on_relisten, s))) {
        rc = nesim_fail(err, NESIM_ENOMEM, "serve: cannot create the event loop");
        goto fail;
    }
    if (pipe(s->wake_fd) < 0 || set_cloexec_nonblock(s->wake_fd[0]) < 0 || set_cloexec_nonblock(s->wake_fd[1]) < 0) {
        rc = nesim_fail(err, NESIM_EIO, "serve: pipe: %s", strerror(errno));
        goto fail;
    }
    if (!(s->wake_ev = event_new(s->base, s->wake_fd[0], EV_READ | EV_PERSIST, on_wake, s)) ||
        event_add(s->wake_ev, NULL) < 0) {
        rc = nesim_fail(err, NESIM_ENOMEM, "serve: cannot create the event loop");
        goto fail;
    }
    /* libevent's limit is twice ours, so the router sees (and answers 431 in
     * JSON) requests between the two; beyond, libevent answers 400 itself */
    evhttp_set_max_headers_size(s->http, (ev_ssize_t)(2 * s->o.max_header_bytes));
    evhttp_set_max_body_size(s->http, (ev_ssize_t)s->o.max_body_bytes);
    evhttp_set_timeout(s->http, s->o.timeout_s);
    /* every method reaches the router, which answers 405 in JSON (CONNECT,
     * which has no body, gets libevent's 501) */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_bevcb(s->http, new_bev, NULL);
    if ((rc = listen_on(s, err)))
        goto fail;
    *out = s;
    return NESIM_OK;
fail:
    nesim_serve_free(s);
    return rc;
}

int nesim_serve_port(const nesim_serve *s) { return s->port; }

int nesim_serve_run(nesim_serve *s)
{
    int r = event_base_dispatch(s->base);
    return r < 0 ? NESIM_EIO : NESIM_OK;
}

void nesim_serve_stop(nesim_serve *s)
{
    if (!s || s->wake_fd[1] < 0)
        return;
    ssize_t w = write(s->wake_fd[1], "x", 1); /* async-signal-safe; a full pipe already wakes */
    (void)w;
}

void nesim_serve_free(nesim_serve *s)
{
    if (!s)
        return;
    serve_replay_free_all(s);
    if (s->http)
        evhttp_free(s->http); /* listener and connections */
    if (s->wake_ev)
        event_free(s->wake_ev);
    if (s->relisten_ev)
        event_free(s->relisten_ev);
    if (s->base)
        event_base_free(s->base);
    for (int i = 0; i < 2; i++)
        if (s->wake_fd[i] >= 0)
            close(s->wake_fd[i]);
    nesim_trace_close(s->t);
    free(s->db_path);
    free(s->bind_addr);
    free(s);
}

void nesim_serve_stats_get(const nesim_serve *s, nesim_serve_stats *st)
{
    nesim_serve *m = (nesim_serve *)s; /* atomics are read through a non-const pointer */
    st->requests = atomic_load(&m->stats.requests);
    st->client_errors = atomic_load(&m->stats.client_errors);
    st->server_errors = atomic_load(&m->stats.server_errors);
    st->refused = atomic_load(&m->stats.refused);
    st->replays_started = atomic_load(&m->stats.replays_started);
    st->replays_ended = atomic_load(&m->stats.replays_ended);
    st->replays_active = atomic_load(&m->stats.replays_active);
    st->replay_events = atomic_load(&m->stats.replay_events);
    st->replay_spikes = atomic_load(&m->stats.replay_spikes);
    st->replay_pauses = atomic_load(&m->stats.replay_pauses);
    st->accept_pauses = atomic_load(&m->stats.accept_pauses);
}
