/* http.c — what every endpoint of `nesim serve` answers with: replies (JSON,
 * errors, buffers), the bulk output writer, strict query parameters, and
 * loading a run or a layer named by a request. The small module the router
 * (serve.c), the endpoints (api.c) and the replay stream (replay.c) share,
 * so that none of them calls another. */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- replies */

void serve_common_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cache-Control", "no-store");
}

static void count_status(nesim_serve *s, int code)
{
    if (code == 503)
        atomic_fetch_add(&s->stats.refused, 1);
    else if (code >= 500)
        atomic_fetch_add(&s->stats.server_errors, 1);
    else if (code >= 400)
        atomic_fetch_add(&s->stats.client_errors, 1);
}

static void free_dump(const void *data, size_t len, void *arg)
{
    (void)len, (void)arg;
    free((void *)data);
}

/* Sends `len` bytes of `data` (malloc'd, taken over; or static if
 * !owned) with `code` and `type`. HEAD: headers with Content-Length only. */
static void send_body(nesim_serve *s, struct evhttp_request *req, int code, const char *type, const char *data,
                      size_t len, bool owned)
{
    count_status(s, code);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", type);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char n[32];
        snprintf(n, sizeof n, "%zu", len);
        evhttp_add_header(h, "Content-Length", n);
        if (owned)
            free((void *)data);
        evhttp_send_reply(req, code, NULL, NULL);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b || evbuffer_add_reference(b, data, len, owned ? free_dump : NULL, NULL) != 0) {
        if (owned)
            free((void *)data);
        if (b)
            evbuffer_free(b);
        evhttp_send_reply(req, 500, NULL, NULL); /* out of memory: an empty 500 */
        return;
    }
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

void serve_reply_buffer(nesim_serve *s, struct evhttp_request *req, int code, const char *type, struct evbuffer *b)
{
    count_status(s, code);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", type);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char n[32];
        snprintf(n, sizeof n, "%zu", evbuffer_get_length(b));
        evhttp_add_header(h, "Content-Length", n);
        evbuffer_free(b);
        evhttp_send_reply(req, code, NULL, NULL);
        return;
    }
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

void serve_out_init(serve_out *w, struct evbuffer *b)
{
    w->b = b;
    w->n = 0;
    w->failed = !b;
}

bool serve_out_flush(serve_out *w)
{
    if (w->n && !w->failed && evbuffer_add(w->b, w->tmp, w->n) != 0)
        w->failed = true;
    w->n = 0;
    return !w->failed;
}

void serve_out_raw(serve_out *w, const char *p, size_t n)
{
    if (w->n + n > sizeof w->tmp) {
        serve_out_flush(w);
        if (n > sizeof w->tmp) {
            if (!w->failed && evbuffer_add(w->b, p, n) != 0)
                w->failed = true;
            return;
        }
    }
    memcpy(w->tmp + w->n, p, n);
    w->n += n;
}

void serve_out_lit(serve_out *w, const char *p) { serve_out_raw(w, p, strlen(p)); }

void serve_out_int(serve_out *w, int64_t v)
{
    if (w->n + 24 > sizeof w->tmp)
        serve_out_flush(w);
    char t[24];
    size_t k = 0;
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    do
        t[k++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        w->tmp[w->n++] = '-';
    while (k)
        w->tmp[w->n++] = t[--k];
}

static int out_dump(const char *buffer, size_t size, void *data)
{
    serve_out_raw(data, buffer, size);
    return 0;
}

void serve_out_json(serve_out *w, const json_t *v)
{
    if (!v || json_dump_callback(v, out_dump, w, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        w->failed = true;
}

void serve_reply_json(nesim_serve *s, struct evhttp_request *req, int code, json_t *body)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!txt) {
        send_body(s, req, 500, "application/json; charset=utf-8", oom, sizeof oom - 1, false);
        return;
    }
    send_body(s, req, code, "application/json; charset=utf-8", txt, strlen(txt), true);
}

void serve_reply_error(nesim_serve *s, struct evhttp_request *req, int code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_object();
    /* the message may quote request bytes: make them valid UTF-8 for JSON */
    json_t *m = json_string(msg);
    if (!m) {
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
                *p = '?';
        m = json_string(msg);
    }
    if (j && m) {
        json_object_set_new(j, "error", m);
        serve_reply_json(s, req, code, j);
    } else {
        json_decref(j);
        json_decref(m);
        serve_reply_json(s, req, 500, NULL);
    }
}

const char *serve_client_msg(const nesim_serve *s, const char *msg)
{
    size_t n = strlen(s->db_path);
    if (!strncmp(msg, s->db_path, n) && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

void serve_reply_failure(nesim_serve *s, struct evhttp_request *req, const nesim_error *err)
{
    const char *m = serve_client_msg(s, err->msg);
    bool missing = err->code == NESIM_EINVAL && (!strncmp(m, "no run ", 7) || strstr(m, " has no layer '"));
    serve_reply_error(s, req, missing ? 404 : 500, "%s", m);
}

/* ---------------------------------------------------------- parameters */

/* A value quoted in a message: at most SERVE_QUOTE bytes, then "...". */
const char *serve_quote(const char *v, char buf[SERVE_QUOTE + 4])
{
    size_t n = strlen(v);
    if (n <= SERVE_QUOTE)
        return v;
    memcpy(buf, v, SERVE_QUOTE);
    strcpy(buf + SERVE_QUOTE, "...");
    return buf;
}

bool serve_query(nesim_serve *s, struct evhttp_request *req, const char *const *allowed, struct evkeyvalq *kv)
{
    TAILQ_INIT(kv);
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!q || !*q)
        return true;
    if (evhttp_parse_query_str(q, kv) != 0) {
        evhttp_clear_headers(kv);
        serve_reply_error(s, req, 400, "query: expected name=value pairs joined by '&'");
        return false;
    }
    char qb[SERVE_QUOTE + 4];
    struct evkeyval *h;
    TAILQ_FOREACH(h, kv, next) {
        bool ok = false;
        for (size_t i = 0; allowed && allowed[i] && !ok; i++)
            ok = !strcmp(h->key, allowed[i]);
        if (!ok) {
            char list[200] = "";
            size_t k = 0;
            for (size_t i = 0; allowed && allowed[i] && k < sizeof list; i++) {
                int w = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", allowed[i]);
                k += w > 0 ? (size_t)w : 0;
            }
            serve_reply_error(s, req, 400, "%s: unknown parameter (%s%s)", serve_quote(h->key, qb),
                              k ? "this endpoint takes " : "this endpoint takes no parameters", list);
            evhttp_clear_headers(kv);
            return false;
        }
        for (struct evkeyval *g = TAILQ_FIRST(kv); g != h; g = TAILQ_NEXT(g, next))
            if (!strcmp(g->key, h->key)) {
                serve_reply_error(s, req, 400, "%s: given more than once", h->key);
                evhttp_clear_headers(kv);
                return false;
            }
    }
    return true;
}

bool serve_uint(nesim_serve *s, struct evhttp_request *req, const char *name, const char *v, int64_t max,
                int64_t *out)
{
    char qb[SERVE_QUOTE + 4];
    size_t n = strlen(v);
    bool digits = n > 0;
    for (size_t i = 0; i < n && digits; i++)
        digits = v[i] >= '0' && v[i] <= '9';
    if (!digits) {
        serve_reply_error(s, req, 400, "%s: expected a non-negative integer (digits only), got '%s'", name,
                          serve_quote(v, qb));
        return false;
    }
    int64_t x = 0;
    bool big = n > 18;
    for (size_t i = 0; i < n && !big; i++)
        x = x * 10 + (v[i] - '0');
    if (big || x > max) {
        serve_reply_error(s, req, 400, "%s: at most %lld, got '%s'", name, (long long)max, serve_quote(v, qb));
        return false;
    }
    *out = x;
    return true;
}

/* ------------------------------------------------------------- routing */

/* True for a Host header naming a loopback host (any port), or none. */
/* ---------------------------------------------------------------- runs */

json_t *serve_real(double v) { return isfinite(v) ? json_real(v) : json_null(); }

bool serve_load_run(nesim_serve *s, struct evhttp_request *req, int64_t id, nesim_trace_run *run)
{
    nesim_error err = {0};
    if (nesim_trace_get_run(s->t, id, run, &err)) {
        serve_reply_failure(s, req, &err);
        return false;
    }
    return true;
}

int64_t serve_run_last_tick(const nesim_trace_run *run, const nesim_trace_layer *L, size_t n)
{
    int64_t last = run->virtual_ticks > 0 ? run->virtual_ticks - 1 : 0;
    for (size_t i = 0; i < n; i++)
        if (L[i].last_tick > last)
            last = L[i].last_tick;
    return last;
}

bool serve_layer(nesim_serve *s, struct evhttp_request *req, int64_t run, const nesim_trace_layer *L, size_t n,
                 const char *v, int *idx)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(L[i].name, v)) {
            *idx = L[i].idx;
            return true;
        }
    size_t len = strlen(v);
    bool digits = len > 0 && len <= 9;
    for (size_t i = 0; i < len && digits; i++)
        digits = v[i] >= '0' && v[i] <= '9';
    if (digits) {
        long x = strtol(v, NULL, 10);
        for (size_t i = 0; i < n; i++)
            if (L[i].idx == x) {
                *idx = L[i].idx;
                return true;
            }
    }
    char list[240];
    nesim_trace_layer_list(L, n, list, sizeof list);
    serve_reply_error(s, req, 404, "layer: run %lld has no layer '%.*s%s' (layers: %s)", (long long)run,
                      SERVE_QUOTE, v, len > SERVE_QUOTE ? "..." : "", n ? list : "none");
    return false;
}
