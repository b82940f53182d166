/* serve.h — `nesim serve`: a trace database over HTTP (libevent's evhttp,
 * one event loop and two worker threads): the browser page, a JSON API and
 * paced replay as server-sent events.
 *
 * API (every response has a Content-Type; errors are JSON {"error": "..."}):
 *
 *   GET /                          the page built into the library (text/html)
 *   GET /api/runs                  {"runs":[{id, status, kind, record, started_at, ended_at,
 *                                   samples, virtual_ticks, spikes, tick_s, spec_file, chip,
 *                                   parent_run}]}
 *   GET /api/runs/ID               the run's report, exactly nesim_trace_report(json = true)
 *   GET /api/runs/ID/layers        {"layers":[{idx, name, type, coding, neurons, spikes, sops,
 *                                   first_tick, last_tick}]}
 *   GET /api/runs/ID/activity?from=T&to=T&bins=N
 *                                  {"from", "to", "bin_ticks", "bins", "layers":[{idx, name,
 *                                   "spikes":[...], "sops":[...]}]}: bin k holds ticks
 *                                   from + k*bin_ticks .. from + (k+1)*bin_ticks - 1 (the last
 *                                   bin ends at `to`); bins default 500, at most 5000, never
 *                                   more than the window's ticks; from/to default to the run.
 *   GET /api/runs/ID/spikes?layer=L&from=T&to=T&limit=N&after=CURSOR
 *                                  {"layer": idx, "spikes":[[tick, neuron, sign], ...],
 *                                   "next": CURSOR or null}; ordered by (tick, neuron); limit
 *                                   default 10000, at most 100000; pass `next` back as
 *                                   `after` to get the following page: every spike comes
 *                                   exactly once. L is a layer name or index.
 *   GET /api/runs/ID/energy        {"total_j", "terms":{term: J}, "per_layer":[{idx, name,
 *                                   "terms":{...}, "total_j"}], "run_level":{"terms", "total_j"}}
 *   GET /api/runs/ID/replay?speed=S&from=T&to=T
 *                                  text/event-stream: "meta" {run, from, to, speed, tick_s,
 *                                   record, interval_ms, layers:[{idx, name, neurons}]}, then
 *                                   "tick" events {"from": first tick, "tick": last tick,
 *                                   "spikes":[[layer, neuron, sign, tick], ...]} covering
 *                                   consecutive tick ranges from..to, spikes in (tick, layer,
 *                                   neuron) order, paced at S virtual ticks per wall second
 *                                   (default 1000, 1 <= S <= 1e9): one event per timer firing,
 *                                   every max(20 ms, 1/S), with every tick then due (an event
 *                                   holds about 16384 spikes at most; when more is due, the next
 *                                   follows as soon as the client has read it); then "end"
 *                                   {"tick", "spikes", "events"}, and the connection closes. A
 *                                   failure mid-stream sends "error" {"error"} before closing.
 *
 * 400 names the bad parameter and why (integers are digits only; unknown and
 * repeated parameters are rejected), 401 a missing or wrong token, 404 an
 * unknown path, run or layer, 405 any method but GET and HEAD, 431 request
 * headers over max_header_bytes, 503 (with Retry-After: 1) when full: too
 * many connections, requests queued or bytes of answers waiting, or replay
 * streams. What libevent rejects before the router sees it gets libevent's
 * own short HTML answer (evhttp 2.1 offers no hook): headers over twice the
 * limit and malformed requests 400, a body over max_body_bytes 413, an
 * unknown method 501.
 *
 * Security model: the database is opened read-only (query_only; a `nesim run
 * --trace` may be writing it: WAL); only prepared statements, through the
 * traces/ readers, which check every value the file gives; no file path ever
 * comes from a request; numeric bind addresses only, 127.0.0.1 by default.
 * On loopback, a request must name a loopback host (Host, and the host of an
 * absolute URI: DNS rebinding), HTTP/1.1 must send exactly one Host. Off
 * loopback, every request needs the token (given, or 128 random bits made at
 * start): ?token=T, "Authorization: Bearer T", or the HttpOnly SameSite
 * cookie the page sets when opened with ?token=T. There is no TLS: off
 * loopback, put it behind a proxy that adds it.
 *
 * Limits (each a field of nesim_serve_opts): connections (at the limit the
 * connection that has waited on its client longest, stalled or idle, is
 * closed to make room; when none can go, the newcomer gets 503), requests
 * queued per worker, bytes of answers waiting for slow clients (big answers
 * get 503 beyond; small ones still go), a header deadline from a
 * connection's start or its last answer (slowloris), a write timeout for a
 * client that stops reading, header and body sizes; accept() failures
 * (EMFILE) pause the listener for 100 ms instead of spinning.
 *
 * Threads: the event loop runs in the thread that calls nesim_serve_run;
 * two worker threads (light endpoints: runs, a run, layers, energy; heavy
 * ones: activity, spikes), each with its own read-only connection, answer
 * the JSON endpoints, so a heavy query never delays the loop or a cheap
 * request; replay streams read on the loop in bounded chunks. Every call but
 * nesim_serve_stop and nesim_serve_stats_get belongs to the loop's thread
 * (or to any thread while the loop is not running). nesim_serve_stop is
 * thread-safe and async-signal-safe (a write to a pipe).
 *
 * Process state: nesim_serve_start sets SIGPIPE to SIG_IGN if it is SIG_DFL
 * (a client that disconnects mid-response must not kill the process) and
 * silences libevent's internal logging to stderr.
 */
#ifndef NESIM_TRACES_SERVE_H
#define NESIM_TRACES_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct nesim_serve nesim_serve;

typedef struct nesim_serve_opts {
    const char *db;           /* the trace database (required) */
    const char *bind;         /* numeric IPv4/IPv6 address; NULL: "127.0.0.1" */
    int port;                 /* 0: an ephemeral port (see nesim_serve_port) */
    int timeout_s;            /* connection read/write timeout; 0: 30 s */
    size_t max_header_bytes;  /* request line + headers: more gets 431 (JSON); 0: 8192.
                                 libevent itself stops reading at twice this size (its
                                 own 400 then: 2.1 has no hook for that error) */
    size_t max_body_bytes;    /* 0: 1024 (GET and HEAD carry none) */
    int max_replays;          /* concurrent replay streams; 0: 32 */
    size_t replay_buffer;     /* output bytes above which a replay pauses; 0: 256 KiB */
    int header_timeout_s;     /* a request's headers must arrive within this of the connection's
                                 start or its last answer (slowloris); 0: 10 s */
    int max_connections;      /* open connections; more are answered 503 and closed; 0: 256 */
    int max_queued;           /* requests waiting per worker; more get 503; 0: 64 */
    size_t max_output_bytes;  /* answers waiting for slow clients, in all; more get 503; 0: 64 MiB */
    const char *token;        /* required on every request (query ?token=, "Authorization: Bearer",
                                 or the page's cookie); NULL: none while bound to loopback, a
                                 random one (nesim_serve_token) otherwise */
} nesim_serve_opts;

/* Opens the database read-only, creates the event loop and the HTTP server,
 * and binds (listens on) the address. NESIM_EINVAL for a bad database, bind
 * address or port; NESIM_EIO if the address cannot be bound. */
int nesim_serve_start(const nesim_serve_opts *o, nesim_serve **out, nesim_error *err);

/* The port actually bound (useful with port 0). */
int nesim_serve_port(const nesim_serve *s);
/* The token requests need, or NULL; and whether the address is loopback. */
const char *nesim_serve_token(const nesim_serve *s);
bool nesim_serve_loopback(const nesim_serve *s);

/* Runs the event loop until nesim_serve_stop; NESIM_OK when stopped. */
int nesim_serve_run(nesim_serve *s);

/* Asks the loop to return; thread-safe and async-signal-safe. Calling it
 * before nesim_serve_run makes that return at once. */
void nesim_serve_stop(nesim_serve *s);

/* Closes every connection and replay, the server and the database; NULL is
 * fine. Not while nesim_serve_run is running in another thread. */
void nesim_serve_free(nesim_serve *s);

typedef struct nesim_serve_stats {
    uint64_t requests;        /* requests that reached the router (any status) */
    uint64_t client_errors;   /* 4xx answers given by the router */
    uint64_t server_errors;   /* 5xx answers but 503 */
    uint64_t refused;         /* 503 answers: too many replay streams */
    uint64_t replays_started, replays_ended; /* ended: finished, or the client went away */
    int64_t replays_active;
    uint64_t replay_events;   /* "tick" events sent */
    uint64_t replay_spikes;   /* spikes sent in them */
    uint64_t replay_pauses;   /* timer firings skipped because the client's buffer was full */
    uint64_t closed_slow;     /* connections closed: headers too slow, or not reading */
    uint64_t unauthorized;    /* 401 answers: no or a wrong token */
} nesim_serve_stats;

/* A snapshot of the counters; thread-safe. */
void nesim_serve_stats_get(const nesim_serve *s, nesim_serve_stats *st);

#endif
