/* serve_internal.h — what the server's files share (serve.c: loop,
 * connections, checks, routing, the worker threads; http.c: answers and the
 * per-call helpers; parse.c: the request parsers, pure functions; api.c: the
 * JSON endpoints; replay.c: the paced event stream). Not installed API.
 *
 * Layers, bottom up: parse.c, conns.c, http.c, then api.c and replay.c, then
 * serve.c (no file calls one above it).
 *
 * A request's life: the loop thread (serve.c) checks it (method, sizes,
 * Host, token, path, query), then either answers at once (the page, errors,
 * a replay stream, which stays on the loop) or queues it as a serve_call to
 * a worker thread: one for light endpoints (runs, run, layers, energy), one
 * for heavy ones (activity, spikes), each with its own read-only database
 * connection, so a heavy query never delays the loop or a cheap request.
 * The worker fills the call's answer (code, type, body) and hands it back;
 * the loop sends it (or drops it when the client left). Endpoints never
 * touch evhttp: they only fill their serve_call. */
#ifndef NESIM_SERVE_INTERNAL_H
#define NESIM_SERVE_INTERNAL_H

#include <sys/queue.h> /* TAILQ_* over evkeyvalq */

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "serve/serve.h"
#include "traces/store.h"

typedef struct serve_replay serve_replay;
typedef struct serve_call serve_call;

/* Bytes of a parameter value a message quotes at most. */
#define SERVE_QUOTE 40
/* Largest tick a parameter may name: keeps to - from + 1 far from overflow. */
#define SERVE_TICK_PARAM_MAX 999999999999999999LL

enum { SERVE_EP_PAGE, SERVE_EP_RUNS, SERVE_EP_RUN, SERVE_EP_LAYERS, SERVE_EP_ACTIVITY, SERVE_EP_SPIKES,
       SERVE_EP_ENERGY, SERVE_EP_REPLAY, SERVE_EP_COUNT };

/* A queue of calls for one worker pool. */
typedef struct serve_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    serve_call *head, *tail;
    int n;                    /* queued, not yet taken */
    pthread_t thread;
    bool started;
    nesim_trace *t;           /* the worker's own read-only connection */
} serve_queue;

/* A live connection, as the loop tracks it (its bufferevent is ours too:
 * we hold a reference until evhttp has let go of it). */
typedef struct serve_conn {
    struct bufferevent *bev;
    double since;             /* accepted, or its last answer sent: the header deadline counts from here */
    double stall_since;       /* its output stopped draining at */
    size_t stall_len;
    bool busy;                /* a request is being answered (or a stream runs) */
    bool refused;             /* over the connection limit: answered 503, then closed */
    bool closing;             /* shut down by us; evhttp will free it */
    bool hooked;              /* our close callback is set on its evhttp connection */
    serve_call *pending;      /* its request, with a worker */
    void *stream;             /* the stream it carries (a replay), told by stream_closed */
    void (*stream_closed)(void *stream);
} serve_conn;

struct nesim_serve {
    nesim_serve_opts o;          /* with defaults filled in; strings below */
    char *db_path, *bind_addr, *token;
    bool loopback;               /* bound to a loopback address: check Host */
    nesim_trace *t;              /* the loop's own connection (replay streams) */
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *wake_ev;       /* stop requests arrive on wake_fd[0] */
    struct event *done_ev;       /* finished calls are announced on done_fd[0] */
    struct event *sweep_ev;      /* connection deadlines */
    int wake_fd[2], done_fd[2];
    int port;
    serve_replay *replays;       /* active streams (doubly linked) */
    serve_queue q[2];            /* 0: light endpoints, 1: heavy ones */
    pthread_mutex_t done_mu;
    serve_call *done;            /* answered, waiting for the loop */
    atomic_bool quit;
    serve_conn *conns;
    size_t n_conns, cap_conns;
    _Atomic uint64_t out_bytes;  /* answers handed to evhttp and not yet written out */
    struct {
        _Atomic uint64_t requests, client_errors, server_errors, refused;
        _Atomic uint64_t replays_started, replays_ended, replay_events, replay_spikes, replay_pauses;
        _Atomic int64_t replays_active;
        _Atomic uint64_t closed_slow, unauthorized;
    } stats;
};

/* ---- a call and its answer (http.c) ---- */

struct serve_call {
    nesim_serve *s;
    nesim_trace *t;              /* the reader it uses: a worker's (or the loop's) */
    int endpoint;
    int64_t id;                  /* run id, when the path has one */
    bool head;                   /* HEAD: the answer's headers only */
    struct evkeyvalq kv;         /* the query, decoded and checked */
    /* the answer */
    int code;                    /* 0: none yet */
    const char *type;            /* Content-Type (a static string) */
    char *body;                  /* malloc'd, len bytes */
    size_t len;
    bool page;                   /* the HTML page: Cache-Control no-cache, maybe the token cookie */
    /* loop side */
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    bool gone;                   /* the client left before the answer */
    serve_call *next;
};

serve_call *serve_call_new(nesim_serve *s, int endpoint, int64_t id, struct evhttp_request *req);
void serve_call_free(serve_call *c);

/* Answers: each sets code/type/body (a later one replaces an earlier). */
void serve_call_json(serve_call *c, int code, json_t *body); /* consumes body; NULL: out of memory */
void serve_call_error(serve_call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A failed reader call: 404 for a missing run or layer, 500 otherwise; the
 * database path is cut from the message. */
void serve_call_failure(serve_call *c, const nesim_error *err);
void serve_call_bytes(serve_call *c, int code, const char *type, char *body, size_t len); /* takes body */

/* Parameter helpers: on failure they set a 400 answer and return false. */
bool serve_call_uint(serve_call *c, const char *name, const char *v, int64_t max, int64_t *out);
/* from/to (absent: the defaults given). */
bool serve_call_window(serve_call *c, int64_t def_from, int64_t def_to, int64_t *from, int64_t *to);
bool serve_call_load_run(serve_call *c, nesim_trace_run *run);
bool serve_call_layers(serve_call *c, nesim_trace_layer **L, size_t *n);
/* A layer named by name (wins) or index: 404 naming the run's layers. */
bool serve_call_layer(serve_call *c, const nesim_trace_layer *L, size_t n, const char *v, int *idx);
const char *serve_call_param(serve_call *c, const char *name);

/* The message without a leading "DBPATH: ". */
const char *serve_client_msg(const nesim_serve *s, const char *msg);
/* The run's last tick: virtual_ticks - 1, or the last spike tick of any
 * layer if larger or the extent is unknown (a run still being written); 0
 * for an empty run. */
int64_t serve_run_last_tick(const nesim_trace_run *run, const nesim_trace_layer *L, size_t n);
json_t *serve_real(double v); /* null for NaN/inf */

/* Sends a call's answer on the loop (headers every response gets, the
 * Content-Length of a HEAD) and frees the call. */
void serve_send(nesim_serve *s, serve_call *c);
/* An answer the loop gives at once: code and an error message. */
void serve_reply_error(nesim_serve *s, struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void serve_common_headers(struct evhttp_request *req);
/* Counts the answer's status in the statistics. */
void serve_count_status(nesim_serve *s, int code);
/* ---- connections (conns.c) ---- */

/* evhttp's bufferevent callback: a new connection, tracked (arg: the server). */
struct bufferevent *serve_conn_new_bev(struct event_base *base, void *arg);
/* The periodic sweep: records of freed connections go, deadlines apply. */
void serve_conn_sweep(evutil_socket_t fd, short what, void *arg);
/* evhttp's close callback of a connection that reached the router. */
void serve_conn_on_close(struct evhttp_connection *evcon, void *arg);
void serve_conn_free_all(nesim_serve *s);
/* The loop's record of a connection (NULL if unknown). */
serve_conn *serve_conn_of(nesim_serve *s, struct evhttp_connection *evcon);
/* The connection's request is answered: its header deadline restarts. */
void serve_conn_idle(nesim_serve *s, struct evhttp_connection *evcon);

/* Bulk integer arrays (spike lists) are written straight into a growing
 * buffer: they are digits, '-', ',' and brackets, nothing that needs
 * escaping, and jansson's one allocation per number made them 10x slower.
 * Every string still goes through jansson. */
typedef struct serve_out {
    char *buf;
    size_t n, cap;
    bool failed;
} serve_out;
void serve_out_init(serve_out *w);
void serve_out_raw(serve_out *w, const char *s, size_t n);
void serve_out_lit(serve_out *w, const char *s); /* a NUL-terminated literal */
void serve_out_int(serve_out *w, int64_t v);
/* Appends a JSON value via jansson (strings, objects). */
void serve_out_json(serve_out *w, const json_t *v);
/* Takes the bytes (malloc'd; the caller frees) or NULL if anything failed. */
char *serve_out_take(serve_out *w, size_t *len);

/* ---- parsers (parse.c): pure functions of strings, fuzzed ---- */

/* v cut to SERVE_QUOTE bytes (with "..." after) for a message; buf holds it. */
const char *serve_quote(const char *v, char buf[SERVE_QUOTE + 4]);
/* Parses a query string into kv (decoded), allowing only the keys in
 * `allowed` (NULL-terminated; NULL: none) once each, and "token" (taken out
 * into *token, malloc'd, when given). 0 on success; otherwise 400 with the
 * reason in msg, kv cleared. */
int serve_parse_query(const char *q, const char *const *allowed, struct evkeyvalq *kv, char **token, char *msg,
                      size_t cap);
/* A non-negative decimal integer of at most 18 digits (digits only) not
 * above max; false with the reason in msg. */
bool serve_parse_uint(const char *name, const char *v, int64_t max, int64_t *out, char *msg, size_t cap);
/* "TICK:NEURON", both digits only, at most 18 each. */
bool serve_parse_cursor(const char *v, int64_t *tick, int64_t *neuron);
/* speed: a decimal number (digits, optional fraction, optional exponent). */
bool serve_parse_speed(const char *v, double *out);
/* A Host header value (host[:port], [v6][:port]) naming a loopback host, or
 * the bound address itself. */
bool serve_host_is_local(const char *h, const char *bind_addr);
/* The token a request carries: "Authorization: Bearer T" or a Cookie
 * "nesim_token=T" (query tokens come from serve_parse_query); compared in
 * constant time. */
bool serve_token_matches(const char *given, const char *token);
const char *serve_cookie_token(const char *cookie_header, char *buf, size_t cap);

/* ---- endpoints (api.c): each fills its call's answer ---- */

void serve_api_runs(serve_call *c);
void serve_api_run(serve_call *c);
void serve_api_layers(serve_call *c);
void serve_api_activity(serve_call *c);
void serve_api_spikes(serve_call *c);
void serve_api_energy(serve_call *c);
/* The page (answered on the loop: static bytes). */
void serve_api_page(serve_call *c);

/* ---- replay (replay.c), on the loop ---- */

void serve_replay_start(nesim_serve *s, struct evhttp_request *req, serve_call *c);

/* Drops every active stream (server shutdown): the requests stay with their
 * connections, which evhttp_free closes. */
void serve_replay_free_all(nesim_serve *s);

#endif
