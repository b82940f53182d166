/* jsonmsg.h — messages of the JSON parsers (model specs, chip profiles).
 *
 * Every error is one line, "FILE: json.path: what" (or "FILE: what" at the
 * top level); strings quoted from the input are escaped and cut (show), and
 * paths are built with sub/idx into buffers of NESIM_JSON_PATHN bytes. */
#ifndef NESIM_JSONMSG_H
#define NESIM_JSONMSG_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"

enum { NESIM_JSON_PATHN = 160, NESIM_JSON_SHOWN = 64 };

/* Where messages go: the file name they start with, and the error to fill. */
typedef struct nesim_jctx {
    const char *file;
    nesim_error *err;
} nesim_jctx;

/* Index of s in the NULL-terminated list, or -1. */
int nesim_json_find_name(const char *const *list, const char *s);
/* "a, b, c" into buf (cut with "..." if it does not fit). */
const char *nesim_json_list_names(const char *const *list, char *buf, size_t cap);
/* s made safe for a one-line message, into buf of NESIM_JSON_SHOWN bytes. */
const char *nesim_json_show(const char *s, char *buf);
/* Every byte outside printable ASCII escaped (jansson's "near '...'"). */
void nesim_json_ascii_line(const char *in, char *out, size_t cap);
/* NESIM_EINVAL with "FILE: path: what" (path NULL or empty: "FILE: what"). */
int nesim_json_bad(const nesim_jctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int nesim_json_oom(const nesim_jctx *c);
/* path.key and path[i] into buf (NESIM_JSON_PATHN bytes). */
const char *nesim_json_sub(char *buf, const char *path, const char *key);
const char *nesim_json_idx(char *buf, const char *path, size_t i);
/* "FILE: path.key: required key missing". */
int nesim_json_missing(const nesim_jctx *c, const char *path, const char *key);

/* Reads the regular file at path whole into *buf (NUL-terminated, caller
 * frees), *n bytes. A file over max_bytes is NESIM_EINVAL: "PATH: N bytes
 * is too large for a WHAT (limit LIMIT)"; a missing file NESIM_EINVAL,
 * other failures NESIM_EIO or NESIM_ENOMEM, each naming path. */
int nesim_json_read_file(const char *path, size_t max_bytes, const char *what, const char *limit,
                         char **buf, size_t *n, nesim_error *err);

/* nesim_json_read_file, then parsed (duplicate keys refused) into *root, a
 * JSON object the caller decrefs. Bad JSON is NESIM_EINVAL "PATH:LINE:COL:
 * message"; another top-level value "PATH: expected a JSON object at the
 * top level" (*root NULL on every failure). */
int nesim_json_load_object(const char *path, size_t max_bytes, const char *what, const char *limit, json_t **root,
                           nesim_error *err);

#endif
