/* jsonmsg.c — one-line error messages for the JSON parsers (specs, chip
 * profiles): "FILE: json.path: what", user strings escaped and cut so a
 * message never spans lines. See jsonmsg.h. */
#include "net/jsonmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int nesim_json_find_name(const char *const *list, const char *s)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    return -1;
}

/* "a, b, c" into buf (truncated with "..." if it does not fit). */
const char *nesim_json_list_names(const char *const *list, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; list[i]; i++) {
        int w = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", list[i]);
        if (w < 0 || (size_t)w >= cap - o) {
            if (cap > 4)
                memcpy(buf + cap - 4, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    return buf;
}

/* A user string made safe for a one-line message: control bytes, quote and
 * backslash escaped as \xNN, cut after ~40 bytes on a UTF-8 boundary (jansson
 * guarantees the string is valid UTF-8) with "..." appended. */
const char *nesim_json_show(const char *s, char *buf)
{
    size_t o = 0, i = 0;
    while (s[i]) {
        if (o >= 40) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\'' || ch == '\\') {
            snprintf(buf + o, NESIM_JSON_SHOWN - o, "\\x%02x", ch);
            o += 4;
            i++;
        } else if (ch < 0x80) {
            buf[o++] = (char)ch;
            i++;
        } else {
            size_t L = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
            for (size_t j = 0; j < L && s[i]; j++)
                buf[o++] = s[i++];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* jansson quotes the input near a syntax error verbatim, newlines and
 * undecodable bytes included; escape every byte outside printable ASCII so
 * the message stays one line of valid text. */
void nesim_json_ascii_line(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 5 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch < 0x20 || ch >= 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
}

int nesim_json_bad(const nesim_jctx *c, const char *path, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (path && path[0])
        return nesim_fail(c->err, NESIM_EINVAL, "%s: %s: %s", c->file, path, what);
    return nesim_fail(c->err, NESIM_EINVAL, "%s: %s", c->file, what);
}

int nesim_json_oom(const nesim_jctx *c) { return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file); }

/* Paths are built from fixed key names and indices, so NESIM_JSON_PATHN is never
 * reached in practice; a cut path would still be a correct prefix. */
const char *nesim_json_sub(char *buf, const char *path, const char *key)
{
    if (snprintf(buf, NESIM_JSON_PATHN, path[0] ? "%s.%s" : "%s%s", path, key) >= NESIM_JSON_PATHN)
        buf[NESIM_JSON_PATHN - 1] = '\0';
    return buf;
}

const char *nesim_json_idx(char *buf, const char *path, size_t i)
{
    if (snprintf(buf, NESIM_JSON_PATHN, "%s[%zu]", path, i) >= NESIM_JSON_PATHN)
        buf[NESIM_JSON_PATHN - 1] = '\0';
    return buf;
}

int nesim_json_missing(const nesim_jctx *c, const char *path, const char *key)
{
    char p[NESIM_JSON_PATHN];
    return nesim_json_bad(c, nesim_json_sub(p, path, key), "required key missing");
}

int nesim_json_read_file(const char *path, size_t max_bytes, const char *what, const char *limit,
                         char **buf, size_t *n, nesim_error *err)
{
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nesim_fail(err, errno == ENOENT ? NESIM_EINVAL : NESIM_EIO, "%s: cannot open: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return nesim_fail(err, NESIM_EINVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return nesim_fail(err, NESIM_EINVAL, "%s: %lld bytes is too large for a %s (limit %s)", path,
                          (long long)st.st_size, what, limit);
    }
    size_t len = (size_t)st.st_size;
    char *b = malloc(len + 1);
    if (!b) {
        fclose(f);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, len, f);
    int bad_read = ferror(f);
    fclose(f);
    if (bad_read || got != len) {
        free(b);
        return nesim_fail(err, NESIM_EIO, "%s: read error", path);
    }
    b[len] = '\0';
    *buf = b;
    *n = len;
    return NESIM_OK;
}

int nesim_json_load_object(const char *path, size_t max_bytes, const char *what, const char *limit, json_t **root,
                           nesim_error *err)
{
    *root = NULL;
    char *text;
    size_t n;
    int rc = nesim_json_read_file(path, max_bytes, what, limit, &text, &n, err);
    if (rc)
        return rc;
    json_error_t je;
    *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!*root) {
        char line[4 * JSON_ERROR_TEXT_LENGTH];
        nesim_json_ascii_line(je.text, line, sizeof line);
        return nesim_fail(err, NESIM_EINVAL, "%s:%d:%d: %s", path, je.line, je.column, line);
    }
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return nesim_fail(err, NESIM_EINVAL, "%s: expected a JSON object at the top level", path);
    }
    return NESIM_OK;
}
