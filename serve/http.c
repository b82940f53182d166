/* http.c — what every endpoint of `nesim serve` answers with: a call's
 * answer (JSON, errors, bytes), the bulk output writer, the parameter
 * helpers over parse.c, and sending an answer on the loop. The small module
 * the router (serve.c), the endpoints (api.c) and the replay stream
 * (replay.c) share, so that none of them calls another. */
#include "serve/serve_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------- calls */

serve_call *serve_call_new(nesim_serve *s, int endpoint, int64_t id, struct evhttp_request *req)
{
    serve_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->t = s->t;
    c->endpoint = endpoint;
    c->id = id;
    c->req = req;
    c->head = req && evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    TAILQ_INIT(&c->kv);
    return c;
}

void serve_call_free(serve_call *c)
{
    if (!c)
        return;
    evhttp_clear_headers(&c->kv);
    free(c->body);
    free(c);
}

void serve_call_bytes(serve_call *c, int code, const char *type, char *body, size_t len)
{
    free(c->body);
    c->code = code;
    c->type = type;
    c->body = body;
    c->len = len;
}

void serve_call_json(serve_call *c, int code, json_t *body)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!txt) {
        txt = strdup(oom);
        code = 500;
    }
    serve_call_bytes(c, code, "application/json; charset=utf-8", txt, txt ? strlen(txt) : 0);
}

void serve_call_error(serve_call *c, int code, const char *fmt, ...)
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
        serve_call_json(c, code, j);
    } else {
        json_decref(j);
        json_decref(m);
        serve_call_json(c, 500, NULL);
    }
}

const char *serve_client_msg(const nesim_serve *s, const char *msg)
{
    size_t n = strlen(s->db_path);
    if (!strncmp(msg, s->db_path, n) && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

void serve_call_failure(serve_call *c, const nesim_error *err)
{
    const char *m = serve_client_msg(c->s, err->msg);
    bool missing = err->code == NESIM_EINVAL && (!strncmp(m, "no run ", 7) || strstr(m, " has no layer '"));
    serve_call_error(c, missing ? 404 : 500, "%s", m);
}

const char *serve_call_param(serve_call *c, const char *name) { return evhttp_find_header(&c->kv, name); }

bool serve_call_uint(serve_call *c, const char *name, const char *v, int64_t max, int64_t *out)
{
    char msg[200];
    if (serve_parse_uint(name, v, max, out, msg, sizeof msg))
        return true;
    serve_call_error(c, 400, "%s", msg);
    return false;
}

bool serve_call_window(serve_call *c, int64_t def_from, int64_t def_to, int64_t *from, int64_t *to)
{
    const char *f = serve_call_param(c, "from"), *t = serve_call_param(c, "to");
    *from = def_from;
    *to = def_to;
    if (f && !serve_call_uint(c, "from", f, SERVE_TICK_PARAM_MAX, from))
        return false;
    if (t && !serve_call_uint(c, "to", t, SERVE_TICK_PARAM_MAX, to))
        return false;
    if (!t && *to < *from)
        *to = *from;
    if (*from > *to) {
        serve_call_error(c, 400, "from: tick %lld is after to (%lld)", (long long)*from, (long long)*to);
        return false;
    }
    return true;
}

bool serve_call_load_run(serve_call *c, nesim_trace_run *run)
{
    nesim_error err = {0};
    if (nesim_trace_get_run(c->t, c->id, run, &err)) {
        serve_call_failure(c, &err);
        return false;
    }
    return true;
}

bool serve_call_layers(serve_call *c, nesim_trace_layer **L, size_t *n)
{
    nesim_error err = {0};
    if (nesim_trace_layers(c->t, c->id, L, n, &err)) {
        serve_call_failure(c, &err);
        return false;
    }
    return true;
}

bool serve_call_layer(serve_call *c, const nesim_trace_layer *L, size_t n, const char *v, int *idx)
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
    serve_call_error(c, 404, "layer: run %lld has no layer '%.*s%s' (layers: %s)", (long long)c->id, SERVE_QUOTE, v,
                     len > SERVE_QUOTE ? "..." : "", n ? list : "none");
    return false;
}

json_t *serve_real(double v) { return isfinite(v) ? json_real(v) : json_null(); }

int64_t serve_run_last_tick(const nesim_trace_run *run, const nesim_trace_layer *L, size_t n)
{
    int64_t last = run->virtual_ticks > 0 ? run->virtual_ticks - 1 : 0;
    for (size_t i = 0; i < n; i++)
        if (L[i].last_tick > last)
            last = L[i].last_tick;
    return last;
}

/* ------------------------------------------------------------- sending */

void serve_common_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cache-Control", "no-store");
}

void serve_count_status(nesim_serve *s, int code)
{
    if (code == 503)
        atomic_fetch_add(&s->stats.refused, 1);
    else if (code >= 500)
        atomic_fetch_add(&s->stats.server_errors, 1);
    else if (code >= 400)
        atomic_fetch_add(&s->stats.client_errors, 1);
}

/* An answer's bytes left the buffer (written, or the connection closed). */
static void free_body(const void *data, size_t len, void *arg)
{
    nesim_serve *s = arg;
    atomic_fetch_sub(&s->out_bytes, (uint64_t)len);
    free((void *)data);
}

void serve_send(nesim_serve *s, serve_call *c)
{
    struct evhttp_request *req = c->req;
    if (c->gone) {
        /* the client left while a worker answered: the request was detached
         * from its connection and is ours to free */
        if (req && !evhttp_request_get_connection(req))
            evhttp_request_free(req);
        serve_call_free(c);
        return;
    }
    serve_conn *conn = serve_conn_of(s, evhttp_request_get_connection(req));
    if (conn && conn->pending == c)
        conn->pending = NULL;
    if (!c->code)
        serve_call_json(c, 500, NULL);
    serve_count_status(s, c->code);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", c->type ? c->type : "application/json; charset=utf-8");
    if (c->code == 503)
        evhttp_add_header(h, "Retry-After", "1");
    if (c->code == 401)
        evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"nesim\"");
    if (c->page) {
        evhttp_remove_header(h, "Cache-Control");
        evhttp_add_header(h, "Cache-Control", "no-cache");
    }
    if (c->head) {
        char n[32];
        snprintf(n, sizeof n, "%zu", c->len);
        evhttp_add_header(h, "Content-Length", n);
        evhttp_send_reply(req, c->code, NULL, NULL);
    } else {
        struct evbuffer *b = evbuffer_new();
        if (c->len)
            atomic_fetch_add(&s->out_bytes, (uint64_t)c->len);
        bool ok = b && (!c->len || evbuffer_add_reference(b, c->body, c->len, free_body, s) == 0);
        if (ok)
            c->body = NULL; /* the buffer frees it once written */
        else if (c->len)
            atomic_fetch_sub(&s->out_bytes, (uint64_t)c->len);
        evhttp_send_reply(req, ok ? c->code : 500, NULL, ok ? b : NULL);
        if (b)
            evbuffer_free(b);
    }
    if (evcon)
        serve_conn_idle(s, evcon);
    serve_call_free(c);
}

void serve_reply_error(nesim_serve *s, struct evhttp_request *req, int code, const char *fmt, ...)
{
    serve_call *c = serve_call_new(s, -1, 0, req);
    if (!c) {
        evhttp_send_reply(req, 500, NULL, NULL);
        return;
    }
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    serve_call_error(c, code, "%s", msg);
    serve_send(s, c);
}

/* ------------------------------------------------------- bulk output */

void serve_out_init(serve_out *w) { memset(w, 0, sizeof *w); }

void serve_out_raw(serve_out *w, const char *p, size_t n)
{
    if (w->failed)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 16384;
        while (cap < w->n + n)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->failed = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->n, p, n);
    w->n += n;
}

void serve_out_lit(serve_out *w, const char *p) { serve_out_raw(w, p, strlen(p)); }

void serve_out_int(serve_out *w, int64_t v)
{
    char t[24], o[24];
    size_t k = 0, m = 0;
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    do
        t[k++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        o[m++] = '-';
    while (k)
        o[m++] = t[--k];
    serve_out_raw(w, o, m);
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

char *serve_out_take(serve_out *w, size_t *len)
{
    char *b = w->failed ? NULL : w->buf;
    if (w->failed)
        free(w->buf);
    else if (!b)
        b = malloc(1);
    *len = b ? w->n : 0;
    memset(w, 0, sizeof *w);
    return b;
}
