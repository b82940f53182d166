/* parse.c — the request parsers of `nesim serve`: query strings, integers,
 * cursors, speeds, Host headers and tokens. Pure functions of their string
 * arguments (no request, no server), so fuzz/fuzz_http.c drives them
 * directly; every one reads only inside its NUL-terminated input. */
#include "serve/serve_internal.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *serve_quote(const char *v, char buf[SERVE_QUOTE + 4])
{
    size_t n = strlen(v);
    if (n <= SERVE_QUOTE)
        return v;
    memcpy(buf, v, SERVE_QUOTE);
    strcpy(buf + SERVE_QUOTE, "...");
    return buf;
}

int serve_parse_query(const char *q, const char *const *allowed, struct evkeyvalq *kv, char **token, char *msg,
                      size_t cap)
{
    TAILQ_INIT(kv);
    if (token)
        *token = NULL;
    if (!q || !*q)
        return 0;
    if (evhttp_parse_query_str(q, kv) != 0) {
        evhttp_clear_headers(kv);
        snprintf(msg, cap, "query: expected name=value pairs joined by '&'");
        return 400;
    }
    char qb[SERVE_QUOTE + 4];
    struct evkeyval *h, *next;
    for (h = TAILQ_FIRST(kv); h; h = next) {
        next = TAILQ_NEXT(h, next);
        for (struct evkeyval *g = TAILQ_FIRST(kv); g != h; g = TAILQ_NEXT(g, next))
            if (!strcmp(g->key, h->key)) {
                snprintf(msg, cap, "%s: given more than once", serve_quote(h->key, qb));
                goto fail;
            }
        if (!strcmp(h->key, "token")) { /* the server's, not the endpoint's */
            if (token && !*token && !(*token = strdup(h->value))) {
                snprintf(msg, cap, "out of memory");
                goto fail;
            }
            continue;
        }
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
            snprintf(msg, cap, "%s: unknown parameter (%s%s)", serve_quote(h->key, qb),
                     k ? "this endpoint takes " : "this endpoint takes no parameters", list);
            goto fail;
        }
    }
    /* the token stays out of what endpoints see */
    for (h = TAILQ_FIRST(kv); h; h = next) {
        next = TAILQ_NEXT(h, next);
        if (!strcmp(h->key, "token")) {
            TAILQ_REMOVE(kv, h, next);
            free(h->key);
            free(h->value);
            free(h);
        }
    }
    return 0;
fail:
    evhttp_clear_headers(kv);
    if (token) {
        free(*token);
        *token = NULL;
    }
    return 400;
}

bool serve_parse_uint(const char *name, const char *v, int64_t max, int64_t *out, char *msg, size_t cap)
{
    char qb[SERVE_QUOTE + 4];
    size_t n = strlen(v);
    bool digits = n > 0;
    for (size_t i = 0; i < n && digits; i++)
        digits = v[i] >= '0' && v[i] <= '9';
    if (!digits) {
        snprintf(msg, cap, "%s: expected a non-negative integer (digits only), got '%s'", name, serve_quote(v, qb));
        return false;
    }
    int64_t x = 0;
    bool big = n > 18;
    for (size_t i = 0; i < n && !big; i++)
        x = x * 10 + (v[i] - '0');
    if (big || x > max) {
        snprintf(msg, cap, "%s: at most %lld, got '%s'", name, (long long)max, serve_quote(v, qb));
        return false;
    }
    *out = x;
    return true;
}

bool serve_parse_cursor(const char *v, int64_t *tick, int64_t *neuron)
{
    const char *c = strchr(v, ':');
    if (!c || c == v || !c[1] || c - v > 18 || strlen(c + 1) > 18)
        return false;
    for (const char *p = v; *p; p++)
        if (p != c && (*p < '0' || *p > '9'))
            return false;
    *tick = strtoll(v, NULL, 10);
    *neuron = strtoll(c + 1, NULL, 10);
    return true;
}

bool serve_parse_speed(const char *v, double *out)
{
    const char *p = v;
    size_t n = strlen(v);
    if (n == 0 || n > 32)
        return false;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    *out = strtod(v, NULL);
    return isfinite(*out);
}

bool serve_host_is_local(const char *h, const char *bind_addr)
{
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
    if (*h == ':') {
        if (!h[1])
            return false;
        for (h++; *h; h++)
            if (*h < '0' || *h > '9')
                return false;
    }
    if (*h || !n)
        return false;
    if (!strcasecmp(host, "localhost") || (bind_addr && !strcmp(host, bind_addr)))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

bool serve_token_matches(const char *given, const char *token)
{
    if (!given || !token)
        return false;
    size_t a = strlen(given), b = strlen(token);
    unsigned char d = a != b;
    for (size_t i = 0; i < b; i++) /* every byte of the token, whatever matched */
        d |= (unsigned char)(token[i] ^ (i < a ? given[i] : 0));
    return d == 0;
}

const char *serve_cookie_token(const char *c, char *buf, size_t cap)
{
    static const char key[] = "nesim_token=";
    for (const char *p = c; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > sizeof key - 1 && !strncmp(p, key, sizeof key - 1)) {
            size_t v = n - (sizeof key - 1);
            if (v >= cap)
                return NULL;
            memcpy(buf, p + sizeof key - 1, v);
            buf[v] = 0;
            return buf;
        }
        p += n;
    }
    return NULL;
}
