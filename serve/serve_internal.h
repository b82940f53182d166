/* serve_internal.h — what the server's files share (serve.c: loop, routing;
 * http.c: replies, parameters, run loading; api.c: the JSON endpoints;
 * replay.c: the paced event stream). Not installed API. */
#ifndef NESIM_TRACES_SERVE_INTERNAL_H
#define NESIM_TRACES_SERVE_INTERNAL_H

#include <sys/queue.h> /* TAILQ_* over evkeyvalq */

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "serve/serve.h"
#include "traces/store.h"

typedef struct serve_replay serve_replay;

struct nesim_serve {
    nesim_serve_opts o;          /* with defaults filled in; strings below */
    char *db_path, *bind_addr;
    bool loopback;               /* bound to a loopback address: check Host */
    nesim_trace *t;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *wake_ev;       /* stop requests arrive on wake_fd[0] */
    struct event *relisten_ev;   /* re-enables the listener after accept() failed */
    int wake_fd[2];
    int port;
    serve_replay *replays;       /* active streams (doubly linked) */
    struct {
        _Atomic uint64_t requests, client_errors, server_errors, refused;
        _Atomic uint64_t replays_started, replays_ended, replay_events, replay_spikes, replay_pauses;
        _Atomic int64_t replays_active;
        _Atomic uint64_t accept_pauses;
    } stats;
};

/* Bytes of a parameter value a message quotes at most. */
#define SERVE_QUOTE 40

/* ---- replies (http.c) ---- */

/* Sends `body` (consumed; NULL: an out-of-memory 500) as JSON with `code`.
 * HEAD gets the headers and Content-Length only. */
void serve_reply_json(nesim_serve *s, struct evhttp_request *req, int code, json_t *body);
/* {"error": formatted message} with `code`. */
void serve_reply_error(nesim_serve *s, struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Replies to a failed reader call: 404 for a missing run or layer, 500
 * otherwise; the database path is cut from the message. */
void serve_reply_failure(nesim_serve *s, struct evhttp_request *req, const nesim_error *err);
/* The message without a leading "DBPATH: ". */
const char *serve_client_msg(const nesim_serve *s, const char *msg);
/* Headers every response gets (nosniff, no-store, ...). */
void serve_common_headers(struct evhttp_request *req);

/* Sends the bytes in `b` (consumed) with `code` and Content-Type `type`.
 * HEAD gets the headers and Content-Length only. */
void serve_reply_buffer(nesim_serve *s, struct evhttp_request *req, int code, const char *type, struct evbuffer *b);

/* Bulk integer arrays (spike lists) are written straight into an evbuffer:
 * they are digits, '-', ',' and brackets, nothing that needs escaping, and
 * jansson's one allocation per number made them 10x slower. Every string
 * still goes through jansson. */
typedef struct serve_out {
    struct evbuffer *b;
    size_t n;
    bool failed;
    char tmp[16384];
} serve_out;
void serve_out_init(serve_out *w, struct evbuffer *b);
void serve_out_raw(serve_out *w, const char *s, size_t n);
void serve_out_lit(serve_out *w, const char *s); /* a NUL-terminated literal */
void serve_out_int(serve_out *w, int64_t v);
/* Appends a JSON value via jansson (strings, objects). */
void serve_out_json(serve_out *w, const json_t *v);
/* Moves what is pending into the evbuffer; false if anything failed. */
bool serve_out_flush(serve_out *w);

/* ---- parameters (http.c) ---- */

/* v cut to SERVE_QUOTE bytes (with "..." after) for a message; buf holds it. */
const char *serve_quote(const char *v, char buf[SERVE_QUOTE + 4]);

/* Parses the request's query into kv (decoded), allowing only the keys in
 * `allowed` (NULL-terminated; NULL: none) once each; on failure replies 400
 * and returns false. Free kv with evhttp_clear_headers. */
bool serve_query(nesim_serve *s, struct evhttp_request *req, const char *const *allowed, struct evkeyvalq *kv);
/* A non-negative decimal integer of at most 18 digits (digits only) not
 * above max; on failure replies 400 naming `name` and returns false. */
bool serve_uint(nesim_serve *s, struct evhttp_request *req, const char *name, const char *v, int64_t max,
                int64_t *out);

/* ---- runs (http.c) ---- */

/* Loads the run; replies 404 / 500 and returns false on failure. */
bool serve_load_run(nesim_serve *s, struct evhttp_request *req, int64_t id, nesim_trace_run *run);
/* The run's last tick: virtual_ticks - 1, or the last spike tick of any
 * layer if larger or the extent is unknown (a run still being written); 0
 * for an empty run. */
int64_t serve_run_last_tick(const nesim_trace_run *run, const nesim_trace_layer *L, size_t n);
/* Resolves a layer parameter: a name (wins), or an index given as digits. */
bool serve_layer(nesim_serve *s, struct evhttp_request *req, int64_t run, const nesim_trace_layer *L, size_t n,
                 const char *v, int *idx);
/* json_real that is null for NaN/inf. */
json_t *serve_real(double v);

/* Endpoints: each replies exactly once. */
void serve_api_page(nesim_serve *s, struct evhttp_request *req);
void serve_api_runs(nesim_serve *s, struct evhttp_request *req);
void serve_api_run(nesim_serve *s, struct evhttp_request *req, int64_t id);
void serve_api_layers(nesim_serve *s, struct evhttp_request *req, int64_t id);
void serve_api_activity(nesim_serve *s, struct evhttp_request *req, int64_t id);
void serve_api_spikes(nesim_serve *s, struct evhttp_request *req, int64_t id);
void serve_api_energy(nesim_serve *s, struct evhttp_request *req, int64_t id);

/* ---- replay (replay.c) ---- */

void serve_replay_start(nesim_serve *s, struct evhttp_request *req, int64_t id);
/* Drops every active stream (server shutdown): the requests stay with their
 * connections, which evhttp_free closes. */
void serve_replay_free_all(nesim_serve *s);

#endif
