/* error.c — status reporting and library initialisation. */
#include "base/error.h"

#include <gsl/gsl_errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* src into dst (dst_size bytes, terminated) with every control character
 * written as an escape (\n, \r, \t, \xHH): a message names what the
 * user gave (a population called "a\nb" in a JSON file, a path), and it
 * must stay one line. An escape that does not fit is left out whole. */
static void one_line(char *dst, size_t dst_size, const char *src)
{
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)src; *c; c++) {
        char esc[5];
        size_t n = 1;
        if (*c < 0x20 || *c == 0x7f) {
            n = *c == '\n' || *c == '\r' || *c == '\t' ? 2 : 4;
            if (n == 2)
                esc[0] = '\\', esc[1] = *c == '\n' ? 'n' : *c == '\r' ? 'r' : 't';
            else
                snprintf(esc, sizeof esc, "\\x%02x", *c);
        } else {
            esc[0] = (char)*c;
        }
        if (o + n >= dst_size)
            break;
        memcpy(dst + o, esc, n);
        o += n;
    }
    dst[o] = '\0';
}

int nesim_fail(nesim_error *err, int code, const char *fmt, ...)
{
    if (err) {
        char raw[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        one_line(err->msg, sizeof err->msg, raw);
        err->code = code;
    }
    return code;
}

int nesim_context(nesim_error *err, const char *fmt, ...)
{
    if (!err)
        return NESIM_EINVAL;
    char raw[256], prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    one_line(prefix, sizeof prefix, raw);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(prefix), room = sizeof err->msg - 1;
    if (np > room)
        np = room;
    memcpy(err->msg, prefix, np);
    size_t no = strnlen(old, sizeof old - 1);
    if (no > room - np)
        no = room - np;
    memcpy(err->msg + np, old, no);
    err->msg[np + no] = '\0';
    return err->code;
}

int nesim_suffix(nesim_error *err, const char *fmt, ...)
{
    if (!err)
        return NESIM_EINVAL;
    char raw[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    size_t l = strnlen(err->msg, sizeof err->msg - 1);
    one_line(err->msg + l, sizeof err->msg - l, raw);
    return err->code;
}

void nesim_init(void)
{
    /* Setting the handler is idempotent; GSL keeps it in one process-wide
     * variable, which is the only global state nesim touches. */
    gsl_set_error_handler_off();
}

const char *nesim_version(void) { return "0.2.0"; }
