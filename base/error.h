/* error.h — how every nesim function reports failure.
 *
 * Functions return an int status (NESIM_OK on success) and, on failure, fill a
 * caller-owned nesim_error with one human-readable line saying what and where.
 * Nothing below main() prints or exits. */
#ifndef NESIM_ERROR_H
#define NESIM_ERROR_H

enum nesim_status {
    NESIM_OK = 0,
    NESIM_EINVAL = 1,   /* bad input: parameters, files, specs (CLI exits 2) */
    NESIM_ENOMEM = 2,   /* allocation failed */
    NESIM_EIO = 3,      /* operating-system or library I/O failure */
    NESIM_ESTATE = 4,   /* call not allowed in the object's current state */
    NESIM_EINTERNAL = 5 /* a library (GSL, SQLite, ...) reported an error */
};

typedef struct nesim_error {
    int code;
    char msg[512];
} nesim_error;

/* Fills err (if non-NULL) with code and a printf-formatted message; returns code. */
int nesim_fail(nesim_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with a formatted context ("file.json: ").
 * Returns err->code so it can be used as `return nesim_context(err, ...)`. */
int nesim_context(nesim_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a formatted suffix (" (in FILE)") to the existing message, as
 * much as fits. Returns err->code. Messages made by these three functions
 * are one line: a control character in what they print (a name or path the
 * user gave) is written as an escape (\n, \t, \x01). */
int nesim_suffix(nesim_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One-time library initialisation: turns GSL's abort-on-error handler off so
 * every GSL status is checked by the caller. Idempotent. */
void nesim_init(void);

/* Version string of the library ("0.1.0"). */
const char *nesim_version(void);

#endif
