/* replay.c — GET /api/runs/ID/replay: a run's spikes played back as
 * server-sent events, paced in virtual time by a libevent timer.
 *
 * How it runs: a persistent timer fires every max(20 ms, 1/speed) s. Each
 * firing advances a virtual clock by elapsed wall time x speed and sends one
 * "tick" event with every spike of the ticks now due (several ticks per
 * event when the speed is high), merged across layers in (tick, layer,
 * neuron) order from one small buffer per layer.
 *
 * Guarantees:
 * - Memory per stream is bounded: a layer's buffer holds about 4096 spikes
 *   (whole ticks), an event at most ~16384 spikes (whole ticks), and no
 *   database statement stays open between firings (so a stream never pins
 *   a WAL snapshot: a writer's checkpoints and newer runs are unaffected).
 * - Flow control: when more is due than one event holds, the next event is
 *   read and sent only once the client has taken the previous one (evhttp's
 *   write-drained callback), so a fast client gets the stream as fast as it
 *   reads and a slow one costs one event of memory; while an event waits, or
 *   while the connection's output buffer holds more than replay_buffer bytes,
 *   timer firings send nothing and the virtual clock stands still. A client
 *   that stops reading altogether is dropped by the write timeout.
 * - When the client goes away (close, reset, timeout), evhttp's close
 *   callback stops the timer and frees the stream and its request; when the
 *   stream ends, the connection closes ("Connection: close").
 */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPEED_DEFAULT 1000.0
#define SPEED_MIN 1.0
#define SPEED_MAX 1e9
#define MIN_INTERVAL_S 0.02
#define CHUNK_SPIKES 4096
#define EVENT_SPIKES 16384

typedef struct rlayer {
    int idx;
    int64_t next_tick; /* first tick not read from the database yet */
    bool exhausted;    /* nothing more up to `to` */
    nesim_trace_spike_rec *buf;
    size_t n, pos, cap;
} rlayer;

struct serve_replay {
    nesim_serve *s;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    int64_t run, from, to, next; /* next: the first tick not sent */
    double speed, vpos, last_wall;
    bool draining;   /* an event is waiting for the client: no reading, no clock */
    rlayer *L;
    size_t nl;
    uint64_t events, spikes;
    serve_replay *prev, *nextr;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ lifetime */

static void unlink_free(serve_replay *r)
{
    nesim_serve *s = r->s;
    if (r->prev)
        r->prev->nextr = r->nextr;
    else
        s->replays = r->nextr;
    if (r->nextr)
        r->nextr->prev = r->prev;
    if (r->timer)
        event_free(r->timer);
    for (size_t i = 0; i < r->nl; i++)
        free(r->L[i].buf);
    free(r->L);
    free(r);
    atomic_fetch_sub(&s->stats.replays_active, 1);
    atomic_fetch_add(&s->stats.replays_ended, 1);
}

/* The client went away: evhttp frees the connection; the request was
 * detached from it (its reply was in progress) and is ours to free. */
static void serve_replay_closed(serve_replay *r)
{
    if (!evhttp_request_get_connection(r->req))
        evhttp_request_free(r->req);
    unlink_free(r);
}

static void closed_cb(void *r) { serve_replay_closed(r); }

static void set_conn(serve_replay *r, serve_replay *v)
{
    serve_conn *c = serve_conn_of(r->s, r->evcon);
    if (c) {
        c->stream = v;
        c->stream_closed = v ? closed_cb : NULL;
    }
}

/* Ends the reply (the connection then closes) and frees the stream. */
static void finish(serve_replay *r)
{
    set_conn(r, NULL);
    evhttp_send_reply_end(r->req);
    unlink_free(r);
}

void serve_replay_free_all(nesim_serve *s)
{
    while (s->replays) {
        serve_replay *r = s->replays;
        set_conn(r, NULL);
        unlink_free(r); /* the request stays with its connection */
    }
}

/* ------------------------------------------------------------- sending */

static int dump_to_evbuffer(const char *buffer, size_t size, void *data)
{
    return evbuffer_add(data, buffer, size) == 0 ? 0 : -1;
}

/* Sends one server-sent event; consumes data. False on failure. */
static bool send_event(serve_replay *r, const char *name, json_t *data)
{
    struct evbuffer *b = evbuffer_new();
    bool ok = b && data && evbuffer_add_printf(b, "event: %s\ndata: ", name) > 0 &&
              json_dump_callback(data, dump_to_evbuffer, b, JSON_COMPACT) == 0 && evbuffer_add(b, "\n\n", 2) == 0;
    if (ok)
        evhttp_send_reply_chunk(r->req, b);
    if (b)
        evbuffer_free(b);
    json_decref(data);
    return ok;
}

static void send_error_and_finish(serve_replay *r, const char *msg)
{
    json_t *e = json_object();
    json_object_set_new(e, "error", json_string(serve_client_msg(r->s, msg)));
    send_event(r, "error", e);
    finish(r);
}

/* Refills an emptied layer buffer with whole ticks from next_tick on. */
static int refill(serve_replay *r, rlayer *l, nesim_error *err)
{
    if (l->pos < l->n || l->exhausted)
        return NESIM_OK;
    l->n = l->pos = 0;
    if (l->next_tick > r->to) {
        l->exhausted = true;
        return NESIM_OK;
    }
    nesim_trace_spike_iter *it;
    int rc = nesim_trace_spikes_open(r->s->t, r->run, l->idx, l->next_tick, r->to, &it, err);
    if (rc)
        return rc;
    nesim_trace_spike_rec x;
    bool got;
    for (;;) {
        if ((rc = nesim_trace_spikes_next(it, &x, &got, err)))
            break;
        if (!got) {
            l->exhausted = true;
            l->next_tick = r->to + 1;
            break;
        }
        if (l->n >= CHUNK_SPIKES && x.tick != l->buf[l->n - 1].tick) {
            l->next_tick = x.tick; /* read again next time */
            break;
        }
        if (l->n == l->cap) {
            size_t nc = l->cap ? 2 * l->cap : 1024;
            nesim_trace_spike_rec *nb = realloc(l->buf, nc * sizeof *nb);
            if (!nb) {
                rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
                break;
            }
            l->buf = nb;
            l->cap = nc;
        }
        l->buf[l->n++] = x;
    }
    nesim_trace_spikes_close(it);
    return rc;
}

static void on_drained(struct evhttp_connection *evcon, void *arg);

static void free_chunk(const void *data, size_t len, void *arg)
{
    (void)len, (void)arg;
    free((void *)data);
}

/* The bytes of w as one chunk of the stream (with the drained callback when
 * `cb`); false when out of memory. */
static bool send_out(serve_replay *r, serve_out *w, bool cb)
{
    size_t len;
    char *b = serve_out_take(w, &len);
    struct evbuffer *e = b ? evbuffer_new() : NULL;
    if (!e || evbuffer_add_reference(e, b, len, free_chunk, NULL) != 0) {
        if (e)
            evbuffer_free(e);
        free(b);
        return false;
    }
    if (cb)
        evhttp_send_reply_chunk_with_cb(r->req, e, on_drained, r);
    else
        evhttp_send_reply_chunk(r->req, e);
    evbuffer_free(e);
    return true;
}

/* Sends the ticks now due as one event, then "end" when past `to`. The
 * event is written straight into the chunk (integers only; see serve_out). */
static void pump(serve_replay *r)
{
    int64_t due = r->vpos >= (double)(r->to - r->from) ? r->to : r->from + (int64_t)floor(r->vpos + 1e-6);
    if (due < r->next)
        return;
    serve_out ow, *w = &ow;
    serve_out_init(w);
    serve_out_lit(w, "event: tick\ndata: {\"from\":");
    serve_out_int(w, r->next);
    serve_out_lit(w, ",\"spikes\":[");
    int64_t covered = due, count = 0;
    nesim_error err = {0};
    for (;;) {
        int64_t tmin = INT64_MAX;
        for (size_t i = 0; i < r->nl; i++) {
            rlayer *l = &r->L[i];
            if (refill(r, l, &err)) {
                size_t len;
                free(serve_out_take(w, &len));
                send_error_and_finish(r, err.msg);
                return;
            }
            if (l->pos < l->n && l->buf[l->pos].tick < tmin)
                tmin = l->buf[l->pos].tick;
        }
        if (tmin > due)
            break;
        for (size_t i = 0; i < r->nl; i++) {
            rlayer *l = &r->L[i];
            for (; l->pos < l->n && l->buf[l->pos].tick == tmin; l->pos++, count++) {
                const nesim_trace_spike_rec *x = &l->buf[l->pos];
                serve_out_raw(w, count ? ",[" : "[", count ? 2 : 1);
                serve_out_int(w, x->layer);
                serve_out_raw(w, ",", 1);
                serve_out_int(w, x->neuron);
                serve_out_raw(w, x->sign < 0 ? ",-1," : ",1,", x->sign < 0 ? 4 : 3);
                serve_out_int(w, x->tick);
                serve_out_raw(w, "]", 1);
            }
        }
        if (count >= EVENT_SPIKES && tmin < due) {
            covered = tmin; /* the rest next firing */
            break;
        }
    }
    serve_out_lit(w, "],\"tick\":");
    serve_out_int(w, covered);
    serve_out_lit(w, "}\n\n");
    r->next = covered + 1;
    /* behind the clock (the event was cut at EVENT_SPIKES): the next event
     * goes out as soon as the client has taken this one */
    bool behind = covered < due && r->next <= r->to;
    bool ok = send_out(r, w, behind);
    r->draining = ok && behind;
    if (!ok) {
        send_error_and_finish(r, "out of memory");
        return;
    }
    r->events++;
    r->spikes += (uint64_t)count;
    atomic_fetch_add(&r->s->stats.replay_events, 1);
    atomic_fetch_add(&r->s->stats.replay_spikes, (uint64_t)count);
    if (r->next > r->to) {
        json_t *end = json_object();
        json_object_set_new(end, "tick", json_integer(r->to));
        json_object_set_new(end, "spikes", json_integer((json_int_t)r->spikes));
        json_object_set_new(end, "events", json_integer((json_int_t)r->events));
        send_event(r, "end", end);
        finish(r);
    }
}

/* The client took the last event while we were behind: send the next. */
static void on_drained(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    serve_replay *r = arg;
    r->draining = false;
    pump(r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    serve_replay *r = arg;
    double t = now_s(), dt = t - r->last_wall;
    r->last_wall = t;
    struct evhttp_connection *c = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    if (r->draining || (bev && evbuffer_get_length(bufferevent_get_output(bev)) > r->s->o.replay_buffer)) {
        atomic_fetch_add(&r->s->stats.replay_pauses, 1); /* the clock stands still */
        return;
    }
    r->vpos += dt * r->speed;
    pump(r);
}

/* -------------------------------------------------------------- start */

void serve_replay_start(nesim_serve *s, struct evhttp_request *req, serve_call *c)
{
    const int64_t id = c->id;
    nesim_trace_run run;
    nesim_trace_layer *L = NULL;
    size_t n = 0;
    serve_replay *r = NULL;
    double speed = SPEED_DEFAULT;
    const char *sv = serve_call_param(c, "speed");
    if (sv && (!serve_parse_speed(sv, &speed) || speed < SPEED_MIN || speed > SPEED_MAX)) {
        serve_call_error(c, 400, "speed: expected virtual ticks per second, a number in [1, 1e9], got '%.*s%s'",
                         SERVE_QUOTE, sv, strlen(sv) > SERVE_QUOTE ? "..." : "");
        serve_send(s, c);
        return;
    }
    if (!serve_call_load_run(c, &run)) {
        serve_send(s, c);
        return;
    }
    int64_t from, to;
    if (!serve_call_layers(c, &L, &n) || !serve_call_window(c, 0, serve_run_last_tick(&run, L, n), &from, &to))
        goto answer;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (c->head) {
        serve_call_bytes(c, 200, "text/event-stream", NULL, 0);
        goto answer;
    }
    if (atomic_load(&s->stats.replays_active) >= s->o.max_replays) {
        serve_call_error(c, 503, "too many replay streams (%d); close one and try again", s->o.max_replays);
        goto answer;
    }
    r = calloc(1, sizeof *r);
    if (!r || (n && !(r->L = calloc(n, sizeof *r->L)))) {
        free(r);
        serve_call_json(c, 500, NULL);
        goto answer;
    }
    r->s = s;
    r->req = req;
    r->run = id;
    r->from = r->next = from;
    r->to = to;
    r->speed = speed;
    r->nl = n;
    for (size_t i = 0; i < n; i++)
        r->L[i] = (rlayer){.idx = L[i].idx, .next_tick = from};
    double interval = 1.0 / speed > MIN_INTERVAL_S ? 1.0 / speed : MIN_INTERVAL_S;
    struct timeval tv = {(time_t)interval, (suseconds_t)((interval - floor(interval)) * 1e6)};
    if (!(r->timer = event_new(s->base, -1, EV_PERSIST, on_timer, r))) {
        free(r->L);
        free(r);
        serve_call_json(c, 500, NULL);
        goto answer;
    }
    /* link first: from here on unlink_free undoes everything */
    r->nextr = s->replays;
    if (s->replays)
        s->replays->prev = r;
    s->replays = r;
    atomic_fetch_add(&s->stats.replays_active, 1);
    atomic_fetch_add(&s->stats.replays_started, 1);

    serve_count_status(s, 200);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Connection", "close");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, NULL);
    r->evcon = evhttp_request_get_connection(req);
    set_conn(r, r);
    /* a stream only writes: no read timeout (the client sends nothing), the
     * write timeout drops a client that stopped reading */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
    struct timeval wt = {s->o.timeout_s, 0};
    bufferevent_set_timeouts(bev, NULL, &wt);

    json_t *meta = json_object(), *layers = json_array();
    json_object_set_new(meta, "run", json_integer(id));
    json_object_set_new(meta, "from", json_integer(from));
    json_object_set_new(meta, "to", json_integer(to));
    json_object_set_new(meta, "speed", serve_real(speed));
    json_object_set_new(meta, "tick_s", serve_real(run.tick_s));
    json_object_set_new(meta, "record", json_string(nesim_trace_level_name(run.record)));
    json_object_set_new(meta, "interval_ms", serve_real(interval * 1e3));
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "idx", json_integer(L[i].idx));
        json_object_set_new(o, "name", json_string(L[i].name));
        json_object_set_new(o, "neurons", json_integer(L[i].neurons));
        json_array_append_new(layers, o);
    }
    json_object_set_new(meta, "layers", layers);
    if (!send_event(r, "meta", meta)) {
        send_error_and_finish(r, "out of memory");
        goto out;
    }
    event_add(r->timer, &tv);
    r->last_wall = now_s();
    pump(r); /* tick `from` is due now; may finish a short stream at once */
out:
    nesim_trace_layers_free(L, n);
    nesim_trace_run_clear(&run);
    serve_call_free(c);
    return;
answer:
    nesim_trace_layers_free(L, n);
    nesim_trace_run_clear(&run);
    serve_send(s, c);
}
