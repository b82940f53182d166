/* serve.c — `nesim serve`: the event loop, the listening socket, the
 * connections and their deadlines, the checks every request passes (method,
 * sizes, Host, token), routing, and the worker threads that answer from the
 * database. Answers and parameters are in http.c, parsers in parse.c, the
 * endpoints in api.c, the paced replay stream in replay.c; the API is in
 * serve.h.
 *
 * Guarantees:
 * - The loop thread never runs a database query for a JSON endpoint: those
 *   go to two worker threads (light endpoints and heavy ones, each with its
 *   own read-only connection), so a cheap request is answered while heavy
 *   ones run. Replay streams read on the loop in bounded chunks.
 * - Every request is answered exactly once (or dropped when its client
 *   left); every answer has a Content-Type; the router's errors are JSON.
 * - Bounded: at most max_connections connections (more are answered 503 and
 *   closed), at most max_queued calls waiting per worker and max_output_bytes
 *   of answers in flight (503 with Retry-After beyond), a request's headers
 *   must arrive within header_timeout_s of the connection's start or its
 *   last answer (slowloris), an answer whose client stops reading is dropped
 *   after timeout_s; accept() failures (EMFILE) pause the listener.
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
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/http_struct.h> /* req->major/minor: 2.1 has no getter */
#include <event2/util.h>

#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_HEADER_TIMEOUT_S 10
#define DEFAULT_MAX_HEADERS 8192
#define DEFAULT_MAX_BODY 1024
#define DEFAULT_MAX_REPLAYS 32
#define DEFAULT_REPLAY_BUFFER (256 * 1024)
#define DEFAULT_MAX_CONNECTIONS 256
#define DEFAULT_MAX_QUEUED 64
#define DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
#define SWEEP_S 0.25


/* ---------------------------------------------------------- connections */

/* Bytes of answers in flight: handed to evhttp, not yet written out. */
static uint64_t output_in_flight(nesim_serve *s) { return atomic_load(&s->out_bytes); }

/* ---------------------------------------------------------------- workers */

static void *worker_main(void *arg)
{
    serve_queue *q = arg;
    nesim_serve *s = NULL;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && q->n >= 0)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->n < 0) { /* told to stop */
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        serve_call *c = q->head;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        pthread_mutex_unlock(&q->mu);
        s = c->s;
        c->t = q->t;
        bool heavy = c->endpoint == SERVE_EP_ACTIVITY || c->endpoint == SERVE_EP_SPIKES;
        if (heavy && output_in_flight(s) > s->o.max_output_bytes)
            serve_call_error(c, 503, "busy: %llu bytes of answers are waiting for their clients; try again",
                             (unsigned long long)output_in_flight(s));
        else switch (c->endpoint) {
        case SERVE_EP_RUNS: serve_api_runs(c); break;
        case SERVE_EP_RUN: serve_api_run(c); break;
        case SERVE_EP_LAYERS: serve_api_layers(c); break;
        case SERVE_EP_ACTIVITY: serve_api_activity(c); break;
        case SERVE_EP_SPIKES: serve_api_spikes(c); break;
        case SERVE_EP_ENERGY: serve_api_energy(c); break;
        default: serve_call_error(c, 500, "no such endpoint"); break;
        }
        c->next = NULL;
        pthread_mutex_lock(&s->done_mu);
        c->next = s->done;
        s->done = c;
        pthread_mutex_unlock(&s->done_mu);
        ssize_t w = write(s->done_fd[1], "x", 1); /* a full pipe already wakes the loop */
        (void)w;
    }
}

/* The loop: answers the calls the workers finished. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    nesim_serve *s = arg;
    char b[256];
    while (read(fd, b, sizeof b) > 0) {
    }
    pthread_mutex_lock(&s->done_mu);
    serve_call *list = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->done_mu);
    /* oldest first */
    serve_call *rev = NULL;
    while (list) {
        serve_call *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        serve_call *c = rev;
        rev = rev->next;
        c->next = NULL;
        serve_send(s, c);
    }
}

static int start_workers(nesim_serve *s, nesim_error *err)
{
    for (int k = 0; k < 2; k++) {
        serve_queue *q = &s->q[k];
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->cv, NULL);
        int rc = nesim_trace_open(s->db_path, NESIM_TRACE_READ, &q->t, err);
        if (rc)
            return rc;
        /* the workers must not take the process's signals */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int prc = pthread_create(&q->thread, NULL, worker_main, q);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (prc)
            return nesim_fail(err, NESIM_EINTERNAL, "serve: cannot start a worker thread");
        q->started = true;
    }
    return NESIM_OK;
}

static void stop_workers(nesim_serve *s)
{
    for (int k = 0; k < 2; k++) {
        serve_queue *q = &s->q[k];
        if (!q->started)
            continue;
        pthread_mutex_lock(&q->mu);
        while (q->head) { /* never taken: their requests stay with their connections */
            serve_call *c = q->head;
            q->head = c->next;
            serve_conn *conn = c->gone ? NULL : serve_conn_of(s, c->evcon);
            if (conn)
                conn->pending = NULL;
            serve_call_free(c);
        }
        q->tail = NULL;
        q->n = -1;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
        q->started = false;
    }
    pthread_mutex_lock(&s->done_mu);
    while (s->done) {
        serve_call *c = s->done;
        s->done = c->next;
        serve_conn *conn = c->gone ? NULL : serve_conn_of(s, c->evcon);
        if (conn)
            conn->pending = NULL;
        serve_call_free(c);
    }
    pthread_mutex_unlock(&s->done_mu);
    for (int k = 0; k < 2; k++)
        nesim_trace_close(s->q[k].t), s->q[k].t = NULL;
}

/* Queues a call for its worker, or answers 503 when the server is full. */
static void dispatch(nesim_serve *s, struct evhttp_request *req, serve_call *c)
{
    bool heavy = c->endpoint == SERVE_EP_ACTIVITY || c->endpoint == SERVE_EP_SPIKES;
    serve_queue *q = &s->q[heavy];
    /* big answers wait while the clients before them have not read theirs;
     * small ones (runs, layers, energy) always go */
    if (heavy && output_in_flight(s) > s->o.max_output_bytes) {
        serve_call_error(c, 503, "busy: %llu bytes of answers are waiting for their clients; try again",
                         (unsigned long long)output_in_flight(s));
        serve_send(s, c);
        return;
    }
    pthread_mutex_lock(&q->mu);
    bool full = q->n >= s->o.max_queued;
    if (!full) {
        c->next = NULL;
        if (q->tail)
            q->tail->next = c;
        else
            q->head = c;
        q->tail = c;
        q->n++;
        c->evcon = evhttp_request_get_connection(req);
        serve_conn *conn = serve_conn_of(s, c->evcon);
        if (conn) /* set before a worker can finish: we hold the queue */
            conn->pending = c;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (full) {
        serve_call_error(c, 503, "busy: %d requests are waiting; try again", s->o.max_queued);
        serve_send(s, c);
    }
}

/* --------------------------------------------------------------- checks */

/* The Host rules: exactly one Host header when there is any, one for
 * HTTP/1.1, and (while bound to loopback) naming a loopback host; an
 * absolute request URI must name one too. */
static bool host_ok(const nesim_serve *s, struct evhttp_request *req, const char **why)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *h = NULL;
    int hosts = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, in, next)
        if (!strcasecmp(kv->key, "Host"))
            hosts++, h = h ? h : kv->value;
    if (hosts > 1)
        return *why = "Host: given more than once", false;
    if (!h && (req->major > 1 || (req->major == 1 && req->minor >= 1)))
        return *why = "Host: required in HTTP/1.1", false;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *uh = u ? evhttp_uri_get_host(u) : NULL;
    if (!s->loopback)
        return true; /* the token guards a public address */
    *why = "Host: this server answers requests for 127.0.0.1, localhost or [::1] only";
    if (h && !serve_host_is_local(h, s->bind_addr))
        return false;
    if (uh) { /* absolute-form: GET http://host/path */
        char b[300];
        int port = evhttp_uri_get_port(u);
        snprintf(b, sizeof b, strchr(uh, ':') ? "[%s]" : "%s", uh);
        if (port >= 0)
            snprintf(b + strlen(b), sizeof b - strlen(b), ":%d", port);
        if (!serve_host_is_local(b, s->bind_addr))
            return false;
    }
    return true;
}

/* The token (when the server has one) from the query, a bearer header or
 * the page's cookie. */
static bool token_ok(const nesim_serve *s, struct evhttp_request *req, const char *query_token)
{
    if (!s->token)
        return true;
    if (query_token && serve_token_matches(query_token, s->token))
        return true;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *a = evhttp_find_header(in, "Authorization");
    if (a && !strncasecmp(a, "Bearer ", 7) && serve_token_matches(a + 7, s->token))
        return true;
    char b[200];
    const char *ck = serve_cookie_token(evhttp_find_header(in, "Cookie"), b, sizeof b);
    return ck && serve_token_matches(ck, s->token);
}

/* A run id path segment: digits only. */
static bool path_id(const char *seg, size_t n, int64_t *id)
{
    char b[32];
    bool digits = n > 0 && n <= 18;
    for (size_t i = 0; i < n && digits; i++)
        digits = seg[i] >= '0' && seg[i] <= '9';
    if (!digits)
        return false;
    memcpy(b, seg, n);
    b[n] = 0;
    *id = strtoll(b, NULL, 10);
    return true;
}

/* --------------------------------------------------------------- routing */

static const char *const no_params[] = {NULL};
static const char *const activity_params[] = {"from", "to", "bins", NULL};
static const char *const spikes_params[] = {"layer", "from", "to", "limit", "after", NULL};
static const char *const replay_params[] = {"speed", "from", "to", NULL};

static void on_request(struct evhttp_request *req, void *arg)
{
    nesim_serve *s = arg;
    atomic_fetch_add(&s->stats.requests, 1);
    const char *raw_uri = evhttp_request_get_uri(req);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    serve_conn *conn = serve_conn_of(s, evcon);
    if (!raw_uri) {
        /* libevent hands a failing request back for an answer: if a worker
         * has it, the worker's answer is dropped */
        if (conn && conn->pending && conn->pending->req == req) {
            conn->pending->gone = true;
            conn->pending->req = NULL;
            conn->pending = NULL;
        }
        evhttp_send_error(req, 400, NULL);
        return;
    }
    if (conn) {
        conn->busy = true;
        if (!conn->hooked)
            evhttp_connection_set_closecb(evcon, serve_conn_on_close, s);
        conn->hooked = true;
    }
    /* no Nagle: a response's last segment must not wait for the client's
     * delayed ACK (40 ms per keep-alive request otherwise) */
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    int one = 1;
    if (bev && bufferevent_getfd(bev) >= 0)
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    serve_common_headers(req);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (!conn || conn->refused) {
        evhttp_add_header(oh, "Connection", "close");
        serve_reply_error(s, req, 503, "busy: %d connections are open; try again", s->o.max_connections);
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(oh, "Allow", "GET, HEAD");
        serve_reply_error(s, req, 405, "method not allowed: this server answers GET and HEAD only");
        return;
    }
    size_t hsize = strlen(raw_uri) + 20;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
        hsize += strlen(kv->key) + strlen(kv->value) + 4;
    if (hsize > s->o.max_header_bytes) {
        evhttp_add_header(oh, "Connection", "close");
        serve_reply_error(s, req, 431, "request line and headers too large: %zu bytes (at most %zu)", hsize,
                          s->o.max_header_bytes);
        return;
    }
    const char *why;
    if (!host_ok(s, req, &why)) {
        serve_reply_error(s, req, 400, "%s", why);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    char qb[SERVE_QUOTE + 4];
    static const char runs[] = "/api/runs";
    int ep = -1;
    int64_t id = 0;
    const char *const *allowed = no_params;
    if (!strcmp(path, "/")) {
        ep = SERVE_EP_PAGE;
    } else if (!strcmp(path, runs)) {
        ep = SERVE_EP_RUNS;
    } else if (!strncmp(path, runs, sizeof runs - 1) && path[sizeof runs - 1] == '/') {
        const char *seg = path + sizeof runs;
        size_t n = strcspn(seg, "/");
        const char *sub = seg[n] == '/' ? seg + n + 1 : NULL;
        static const char *const subs[] = {"layers", "activity", "spikes", "energy", "replay"};
        static const int eps[] = {SERVE_EP_LAYERS, SERVE_EP_ACTIVITY, SERVE_EP_SPIKES, SERVE_EP_ENERGY,
                                  SERVE_EP_REPLAY};
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
        if (!path_id(seg, n, &id)) {
            char v[SERVE_QUOTE + 1];
            size_t q = n < SERVE_QUOTE ? n : SERVE_QUOTE;
            memcpy(v, seg, q);
            v[q] = 0;
            serve_reply_error(s, req, 400, "run id: expected a positive integer, got '%s%s'", v,
                              n > SERVE_QUOTE ? "..." : "");
            return;
        }
        ep = k < 0 ? SERVE_EP_RUN : eps[k];
        allowed = ep == SERVE_EP_ACTIVITY ? activity_params
                  : ep == SERVE_EP_SPIKES ? spikes_params
                  : ep == SERVE_EP_REPLAY ? replay_params
                                          : no_params;
    } else {
        serve_reply_error(s, req, 404, "no such path: %s (the API is under /api/runs)", serve_quote(path, qb));
        return;
    }
    serve_call *c = serve_call_new(s, ep, id, req);
    if (!c) {
        evhttp_send_reply(req, 500, NULL, NULL);
        return;
    }
    char msg[300], *qtoken = NULL;
    int qrc = serve_parse_query(uri ? evhttp_uri_get_query(uri) : NULL, allowed, &c->kv, &qtoken, msg, sizeof msg);
    bool authorized = token_ok(s, req, qtoken);
    if (!authorized) {
        free(qtoken);
        atomic_fetch_add(&s->stats.unauthorized, 1);
        serve_call_error(c, 401, "token: this server needs its token (?token=..., a Bearer header, or the page's "
                                 "cookie)");
        serve_send(s, c);
        return;
    }
    if (qrc) {
        free(qtoken);
        serve_call_error(c, qrc, "%s", msg);
        serve_send(s, c);
        return;
    }
    if (ep == SERVE_EP_PAGE) {
        serve_api_page(c);
        if (qtoken && s->token) { /* the page's own API calls carry the token as a cookie */
            char ck[300];
            snprintf(ck, sizeof ck, "nesim_token=%s; Path=/; HttpOnly; SameSite=Strict", s->token);
            evhttp_add_header(oh, "Set-Cookie", ck);
        }
        free(qtoken);
        serve_send(s, c);
        return;
    }
    free(qtoken);
    if (ep == SERVE_EP_REPLAY) {
        serve_replay_start(s, req, c);
        return;
    }
    dispatch(s, req, c);
}

/* ------------------------------------------------------------ listener */

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    evconnlistener_enable(arg);
}

/* accept() failed for a reason that will not clear by itself at once
 * (EMFILE, ENFILE, ENOBUFS): pause listening for 100 ms rather than spin.
 * The callback's argument is evhttp's (it owns the listener), not ours: all
 * this uses is the listener itself. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg;
    evconnlistener_disable(l);
    struct timeval tv = {0, 100000};
    event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, on_relisten, l, &tv);
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

/* A token to guard a public address: 128 random bits in hex. */
static int make_token(char **out, nesim_error *err)
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = getrandom(r + got, sizeof r - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return nesim_fail(err, NESIM_EIO, "serve: cannot draw a token: %s", strerror(errno));
        got += (size_t)k;
    }
    char *t = malloc(2 * sizeof r + 1);
    if (!t)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(t + 2 * i, 3, "%02x", r[i]);
    *out = t;
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
    if (o->timeout_s < 0 || o->max_replays < 0 || o->max_connections < 0 || o->max_queued < 0 ||
        o->header_timeout_s < 0)
        return nesim_fail(err, NESIM_EINVAL, "serve: negative timeout or limit");
    if (o->token && (strlen(o->token) < 16 || strlen(o->token) > 128 ||
                     strspn(o->token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~") !=
                         strlen(o->token)))
        return nesim_fail(err, NESIM_EINVAL, "--token: 16 to 128 letters, digits, '-', '_', '.' or '~'");
    nesim_serve *s = calloc(1, sizeof *s);
    if (!s)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    s->wake_fd[0] = s->wake_fd[1] = s->done_fd[0] = s->done_fd[1] = -1;
    pthread_mutex_init(&s->done_mu, NULL);
    s->o = *o;
    if (!s->o.timeout_s)
        s->o.timeout_s = DEFAULT_TIMEOUT_S;
    if (!s->o.header_timeout_s)
        s->o.header_timeout_s = DEFAULT_HEADER_TIMEOUT_S;
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = DEFAULT_MAX_HEADERS;
    if (!s->o.max_body_bytes)
        s->o.max_body_bytes = DEFAULT_MAX_BODY;
    if (!s->o.max_replays)
        s->o.max_replays = DEFAULT_MAX_REPLAYS;
    if (!s->o.replay_buffer)
        s->o.replay_buffer = DEFAULT_REPLAY_BUFFER;
    if (!s->o.max_connections)
        s->o.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!s->o.max_queued)
        s->o.max_queued = DEFAULT_MAX_QUEUED;
    if (!s->o.max_output_bytes)
        s->o.max_output_bytes = DEFAULT_MAX_OUTPUT;
    s->db_path = strdup(o->db);
    s->bind_addr = strdup(o->bind ? o->bind : "127.0.0.1");
    s->o.db = s->o.bind = s->o.token = NULL;
    int rc = NESIM_OK;
    if (!s->db_path || !s->bind_addr || (o->token && !(s->token = strdup(o->token)))) {
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
        !(s->sweep_ev = event_new(s->base, -1, EV_PERSIST, serve_conn_sweep, s))) {
        rc = nesim_fail(err, NESIM_ENOMEM, "serve: cannot create the event loop");
        goto fail;
    }
    for (int k = 0; k < 2; k++) {
        int *p = k ? s->done_fd : s->wake_fd;
        if (pipe(p) < 0 || set_cloexec_nonblock(p[0]) < 0 || set_cloexec_nonblock(p[1]) < 0) {
            rc = nesim_fail(err, NESIM_EIO, "serve: pipe: %s", strerror(errno));
            goto fail;
        }
    }
    struct timeval sweep = {0, (suseconds_t)(SWEEP_S * 1e6)};
    if (!(s->wake_ev = event_new(s->base, s->wake_fd[0], EV_READ | EV_PERSIST, on_wake, s)) ||
        !(s->done_ev = event_new(s->base, s->done_fd[0], EV_READ | EV_PERSIST, on_done, s)) ||
        event_add(s->wake_ev, NULL) < 0 || event_add(s->done_ev, NULL) < 0 || event_add(s->sweep_ev, &sweep) < 0) {
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
    evhttp_set_bevcb(s->http, serve_conn_new_bev, s);
    if ((rc = listen_on(s, err)))
        goto fail;
    if (!s->loopback && !s->token && (rc = make_token(&s->token, err)))
        goto fail;
    if ((rc = start_workers(s, err)))
        goto fail;
    *out = s;
    return NESIM_OK;
fail:
    nesim_serve_free(s);
    return rc;
}

int nesim_serve_port(const nesim_serve *s) { return s->port; }
const char *nesim_serve_token(const nesim_serve *s) { return s->token; }
bool nesim_serve_loopback(const nesim_serve *s) { return s->loopback; }

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
    stop_workers(s);
    serve_replay_free_all(s);
    /* evhttp_free frees the connections: nothing of ours may hear of it */
    for (size_t i = 0; s->http && i < s->n_conns; i++) {
        s->conns[i].pending = NULL;
        s->conns[i].stream = NULL;
    }
    if (s->http)
        evhttp_free(s->http); /* listener and connections: on_conn_close drops their records */
    serve_conn_free_all(s);
    if (s->wake_ev)
        event_free(s->wake_ev);
    if (s->done_ev)
        event_free(s->done_ev);
    if (s->sweep_ev)
        event_free(s->sweep_ev);
    if (s->base)
        event_base_free(s->base);
    for (int i = 0; i < 2; i++) {
        if (s->wake_fd[i] >= 0)
            close(s->wake_fd[i]);
        if (s->done_fd[i] >= 0)
            close(s->done_fd[i]);
    }
    nesim_trace_close(s->t);
    pthread_mutex_destroy(&s->done_mu);
    free(s->db_path);
    free(s->bind_addr);
    free(s->token);
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
    st->closed_slow = atomic_load(&m->stats.closed_slow);
    st->unauthorized = atomic_load(&m->stats.unauthorized);
}
