/* fuzz_http.c — libFuzzer target for the request parsers of `nesim serve`
 * (serve/parse.c): query strings, integers, cursors, speeds, Host headers,
 * cookies and tokens. The first byte picks the parser, the rest is its
 * NUL-terminated input. Besides "no crash, no sanitizer report", each
 * parser's contract is checked (a parsed query holds only allowed keys,
 * once; an integer is within its bound; a cursor's fields are digits; a
 * speed is finite; a matching token is the token); a breach aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    char msg[300];
    switch (data[0] % 7) {
    case 0:
    case 1: {
        static const char *const spikes[] = {"layer", "from", "to", "limit", "after", NULL};
        const char *const *allowed = data[0] % 7 ? spikes : NULL;
        struct evkeyvalq kv;
        char *token = NULL;
        int rc = serve_parse_query(s, allowed, &kv, &token, msg, sizeof msg);
        if (rc != 0 && rc != 400)
            abort();
        if (rc == 0) {
            struct evkeyval *h;
            TAILQ_FOREACH(h, &kv, next) {
                bool ok = false;
                for (size_t i = 0; allowed && allowed[i]; i++)
                    ok |= !strcmp(h->key, allowed[i]);
                if (!ok || !strcmp(h->key, "token"))
                    abort();
                for (struct evkeyval *g = TAILQ_NEXT(h, next); g; g = TAILQ_NEXT(g, next))
                    if (!strcmp(g->key, h->key))
                        abort();
            }
            evhttp_clear_headers(&kv);
        } else if (token || TAILQ_FIRST(&kv) || !msg[0]) {
            abort();
        }
        free(token);
        break;
    }
    case 2: {
        int64_t v = -1, max = (int64_t)(size * 7919) % SERVE_TICK_PARAM_MAX;
        if (serve_parse_uint("x", s, max, &v, msg, sizeof msg) ? (v < 0 || v > max) : !msg[0])
            abort();
        break;
    }
    case 3: {
        int64_t t = -1, n = -1;
        if (serve_parse_cursor(s, &t, &n) && (t < 0 || n < 0))
            abort();
        break;
    }
    case 4: {
        double v = 0;
        if (serve_parse_speed(s, &v) && !(v == v && v - v == 0))
            abort();
        break;
    }
    case 5:
        (void)serve_host_is_local(s, "127.0.0.1");
        (void)serve_host_is_local(s, "::1");
        break;
    default: {
        char buf[200];
        const char *tok = serve_cookie_token(s, buf, sizeof buf);
        if (tok && strlen(tok) >= sizeof buf)
            abort();
        const char *secret = "0123456789abcdef0123";
        if (serve_token_matches(s, secret) != !strcmp(s, secret))
            abort();
        if (tok && serve_token_matches(tok, secret) != !strcmp(tok, secret))
            abort();
        break;
    }
    }
    free(s);
    return 0;
}
