/* error.c — status reporting and library initialisation. */
#include "base/error.h"

#include <gsl/gsl_errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int nesim_fail(nesim_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int nesim_context(nesim_error *err, const char *fmt, ...)
{
    if (!err)
        return NESIM_EINVAL;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
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

void nesim_init(void)
{
    /* Setting the handler is idempotent; GSL keeps it in one process-wide
     * variable, which is the only global state nesim touches. */
    gsl_set_error_handler_off();
}

const char *nesim_version(void) { return "0.2.0"; }
