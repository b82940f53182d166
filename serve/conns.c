/* conns.c — the connections of `nesim serve`, as the loop tracks them:
 * their bufferevents (ours: a reference held until evhttp lets go, so the
 * loop sees each connection's life), the connection limit with eviction,
 * the header deadline (slowloris), stalled writers, and what a closing
 * connection carried (a worker's call, a replay stream). The bottom of the
 * server's files: answers (http.c), streams (replay.c) and the router
 * (serve.c) use it; it uses none of them. */
#include "serve/serve_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Input a connection buffers at most before reading pauses (a client that
 * pipelines or sends garbage while its reply is being written). */
#define INPUT_HIGH_WATER (64 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void drop_conn(nesim_serve *s, size_t i);

/* Drops the records of connections evhttp has freed (a freed bufferevent
 * has no callbacks left; our reference kept it, and its socket, alive). */
static void reap(nesim_serve *s)
{
    for (size_t i = 0; i < s->n_conns;) {
        bufferevent_data_cb rd, wr;
        bufferevent_event_cb ev;
        void *cbarg;
        bufferevent_getcb(s->conns[i].bev, &rd, &wr, &ev, &cbarg);
        if (!rd && !wr && !ev)
            drop_conn(s, i);
        else
            i++;
    }
}

static void close_conn(nesim_serve *s, serve_conn *c);

/* At the limit, the newcomer is not the one to turn away: a connection
 * whose client stopped reading its answer (the longest stalled), else an
 * idle one (the longest idle) is closed to make room. Connections being
 * answered, or streaming and draining, are kept. */
static void evict(nesim_serve *s)
{
    serve_conn *victim = NULL;
    int rank = 0; /* 2: stalled output, 1: idle */
    double since = 0;
    for (size_t i = 0; i < s->n_conns; i++) {
        serve_conn *c = &s->conns[i];
        if (c->closing)
            continue;
        size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
        int r = out > 0 && c->stall_len > 0 ? 2 : !c->busy && out == 0 ? 1 : 0;
        double t = r == 2 ? c->stall_since : c->since;
        if (r > rank || (r == rank && r && t < since))
            victim = c, rank = r, since = t;
    }
    if (victim)
        close_conn(s, victim);
}

/* Every connection's bufferevent: ours, so the loop can see the
 * connection's life (a reference held until evhttp lets go), its output
 * and its deadlines. Input reading pauses at 64 KiB. When a connection
 * cannot be tracked (the table is full) it gets a plain bufferevent and
 * on_request refuses it. */
struct bufferevent *serve_conn_new_bev(struct event_base *base, void *arg)
{
    nesim_serve *s = arg;
    /* CLOSE_ON_FREE: the socket closes when the last reference goes (ours,
     * in the sweep), never while our record still points at it, so its fd
     * number cannot be reused under a stale read event */
    struct bufferevent *b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!b)
        return NULL;
    bufferevent_setwatermark(b, EV_READ, 0, INPUT_HIGH_WATER);
    if (s->n_conns >= (size_t)s->o.max_connections)
        reap(s); /* closed ones still counted: the sweep has not come by yet */
    if (s->n_conns >= (size_t)s->o.max_connections)
        evict(s); /* make room: the connection that has waited on its client longest goes */
    /* room for every connection the limit lets in, and the refused ones
     * waiting for their 503; past that a connection goes untracked, and
     * on_request refuses it */
    size_t room = 4 * (size_t)s->o.max_connections + 64;
    if (s->n_conns == s->cap_conns && s->cap_conns < room) {
        size_t cap = s->cap_conns ? 2 * s->cap_conns : 64;
        cap = cap < room ? cap : room;
        serve_conn *c = realloc(s->conns, cap * sizeof *c);
        if (c) {
            s->conns = c;
            s->cap_conns = cap;
        }
    }
    if (s->n_conns == s->cap_conns) {
        bufferevent_free(b);
        b = bufferevent_socket_new(base, -1, 0);
        if (b)
            bufferevent_setwatermark(b, EV_READ, 0, INPUT_HIGH_WATER);
        return b;
    }
    bufferevent_incref(b);
    double t = now_s();
    size_t live = 0;
    for (size_t i = 0; i < s->n_conns; i++)
        live += !s->conns[i].closing;
    bool refused = live >= (size_t)s->o.max_connections;
    s->conns[s->n_conns++] = (serve_conn){.bev = b, .since = t, .stall_since = t, .refused = refused};
    return b;
}

/* Forgets record i: evhttp has let go of (or is freeing) its connection. */
static void drop_conn(nesim_serve *s, size_t i)
{
    bufferevent_decref(s->conns[i].bev);
    s->conns[i] = s->conns[--s->n_conns];
}

static serve_conn *conn_of_bev(nesim_serve *s, struct bufferevent *bev)
{
    for (size_t i = 0; bev && i < s->n_conns; i++)
        if (s->conns[i].bev == bev)
            return &s->conns[i];
    return NULL;
}

serve_conn *serve_conn_of(nesim_serve *s, struct evhttp_connection *evcon)
{
    return evcon ? conn_of_bev(s, evhttp_connection_get_bufferevent(evcon)) : NULL;
}

void serve_conn_idle(nesim_serve *s, struct evhttp_connection *evcon)
{
    serve_conn *c = serve_conn_of(s, evcon);
    if (c) {
        c->busy = false;
        c->since = now_s();
    }
}

static void close_conn(nesim_serve *s, serve_conn *c)
{
    int fd = bufferevent_getfd(c->bev);
    if (!c->closing && fd >= 0) {
        shutdown(fd, SHUT_RDWR); /* evhttp sees EOF and frees the connection */
        c->closing = true;
        atomic_fetch_add(&s->stats.closed_slow, 1);
    }
}

/* Drops the records of connections evhttp freed (a freed bufferevent has
 * no callbacks left), and enforces the deadlines of the live ones. */
void serve_conn_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    nesim_serve *s = arg;
    double t = now_s();
    reap(s); /* connections freed before their first request (no close callback yet) */
    for (size_t i = 0; i < s->n_conns;) {
        serve_conn *c = &s->conns[i];
        size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
        if (out == 0 || out < c->stall_len)
            c->stall_since = t;
        c->stall_len = out;
        double header_limit = c->refused ? 2.0 : (double)s->o.header_timeout_s;
        if (!c->busy && out == 0 && t - c->since > header_limit)
            close_conn(s, c); /* no whole request in time: slowloris, or idle */
        else if (out > 0 && t - c->stall_since > (double)s->o.timeout_s)
            close_conn(s, c); /* stopped reading its answer */
        i++;
    }
}

/* A connection is being freed (its client left, a timeout, or it ended):
 * whatever it carried learns so, and its record goes. */
void serve_conn_on_close(struct evhttp_connection *evcon, void *arg)
{
    nesim_serve *s = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    for (size_t i = 0; i < s->n_conns; i++) {
        serve_conn *c = &s->conns[i];
        if (c->bev != bev)
            continue;
        if (c->pending)
            c->pending->gone = true; /* a worker has its request: the answer is dropped */
        if (c->stream && c->stream_closed)
            c->stream_closed(c->stream);
        drop_conn(s, i);
        return;
    }
}

void serve_conn_free_all(nesim_serve *s)
{
    while (s->n_conns)
        drop_conn(s, s->n_conns - 1);
    free(s->conns);
    s->conns = NULL;
    s->cap_conns = 0;
}
