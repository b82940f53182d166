/* npy.c — numpy .npy reader (format 1.0/2.0/3.0) and 1.0 writer.
 *
 * Guarantees: the header dict is parsed strictly (exactly the keys 'descr',
 * 'fortran_order', 'shape'; nothing but whitespace after it), only
 * little-endian or byte-order-free types f4 f8 f2 i1 i2 i4 i8 u1 u2 u4 u8 b1
 * are accepted, in C or Fortran order, and the data section must hold
 * exactly product(shape) * itemsize bytes. A parsed view points straight at
 * the data; only nesim_npy_load() copies, to transpose a Fortran array.
 * The parser reads only inside buf[0..len). */
#include "net/tensor.h"
#include "net/tensor_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* Cursor over the header text; every helper reports its own error. */
typedef struct {
    const char *p, *end;
    const char *name;
    nesim_error *err;
} cursor;

static int bad_header(cursor *c, const char *what)
{
    return nesim_fail(c->err, NESIM_EINVAL, "%s: malformed .npy header: %s", c->name, what);
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool accept(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A Python string literal without escapes, in '' or "". */
static int parse_str(cursor *c, const char **s, size_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return bad_header(c, "expected a quoted string");
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n')
            return bad_header(c, "escape or newline inside a string");
        c->p++;
    }
    if (c->p >= c->end)
        return bad_header(c, "unterminated string");
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return NESIM_OK;
}

static bool word(cursor *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return true;
    }
    return false;
}

/* Tuple of non-negative ints: (), (3,), (3, 4), (3, 4,). Python 2 files may
 * carry an 'L' suffix on ints. */
static int parse_shape(cursor *c, int *ndim, int64_t *shape)
{
    *ndim = 0;
    if (!accept(c, '('))
        return bad_header(c, "'shape' is not a tuple");
    if (accept(c, ')'))
        return NESIM_OK;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == '-')
            return nesim_fail(c->err, NESIM_EINVAL, "%s: absurd shape: negative dimension",
                              c->name);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return bad_header(c, "shape entries must be integers");
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
                return nesim_fail(c->err, NESIM_EINVAL,
                                  "%s: absurd shape: dimension exceeds int64", c->name);
            c->p++;
        }
        if (c->p < c->end && *c->p == 'L')
            c->p++;
        if (*ndim == NESIM_TENSOR_MAX_DIM)
            return nesim_fail(c->err, NESIM_EINVAL, "%s: too many dimensions (max %d)", c->name,
                              NESIM_TENSOR_MAX_DIM);
        shape[(*ndim)++] = v;
        bool comma = accept(c, ',');
        if (accept(c, ')')) {
            /* (3) is an int in Python, not a tuple */
            if (*ndim == 1 && !comma)
                return bad_header(c, "'shape' (n) needs a trailing comma: (n,)");
            return NESIM_OK;
        }
        if (!comma)
            return bad_header(c, "expected ',' or ')' in shape");
    }
}

/* Maps a descr like '<f4' to a dtype, reporting byte order and type problems. */
static int parse_descr(cursor *c, const char *s, size_t n, nesim_dtype *dt)
{
    static const struct { const char *code; nesim_dtype dt; } codes[] = {
        {"f4", NESIM_F32}, {"f8", NESIM_F64}, {"f2", NESIM_F16}, {"i1", NESIM_I8},
        {"i2", NESIM_I16}, {"i4", NESIM_I32}, {"i8", NESIM_I64}, {"u1", NESIM_U8},
        {"u2", NESIM_U16}, {"u4", NESIM_U32}, {"u8", NESIM_U64}, {"b1", NESIM_BOOL},
    };
    int shown = n > 32 ? 32 : (int)n;
    if (n == 3 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
            if (memcmp(s + 1, codes[i].code, 2) != 0)
                continue;
            size_t size = nesim_dtype_size(codes[i].dt);
            /* Byte order only matters for multi-byte types. */
            if (size > 1 && s[0] == '>')
                return nesim_fail(c->err, NESIM_EINVAL,
                                  "%s: big-endian dtype '%.*s' not supported (little-endian only)",
                                  c->name, shown, s);
            if (size > 1 && s[0] != '<')
                return nesim_fail(c->err, NESIM_EINVAL,
                                  "%s: dtype '%.*s' has no explicit little-endian byte order",
                                  c->name, shown, s);
            *dt = codes[i].dt;
            return NESIM_OK;
        }
    }
    return nesim_fail(c->err, NESIM_EINVAL,
                      "%s: unsupported dtype '%.*s' (supported: f4 f8 f2 i1 i2 i4 i8 u1 u2 u4 u8 b1)", c->name,
                      shown, s);
}

static int parse_dict(cursor *c, nesim_tensor *t)
{
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    const char *descr = NULL;
    size_t descr_n = 0;
    int rc;
    if (!accept(c, '{'))
        return bad_header(c, "expected '{'");
    while (!accept(c, '}')) {
        const char *key;
        size_t kn;
        if ((rc = parse_str(c, &key, &kn)) != NESIM_OK)
            return rc;
        if (!accept(c, ':'))
            return bad_header(c, "expected ':' after a key");
        if (kn == 5 && memcmp(key, "descr", 5) == 0 && !have_descr) {
            have_descr = true;
            skip_ws(c);
            if (c->p < c->end && *c->p == '[')
                return nesim_fail(c->err, NESIM_EINVAL,
                                  "%s: unsupported dtype (structured arrays are not supported)",
                                  c->name);
            if ((rc = parse_str(c, &descr, &descr_n)) != NESIM_OK)
                return rc;
        } else if (kn == 13 && memcmp(key, "fortran_order", 13) == 0 && !have_order) {
            have_order = true;
            if (word(c, "True"))
                fortran = true;
            else if (!word(c, "False"))
                return bad_header(c, "'fortran_order' must be True or False");
        } else if (kn == 5 && memcmp(key, "shape", 5) == 0 && !have_shape) {
            have_shape = true;
            if ((rc = parse_shape(c, &t->ndim, t->shape)) != NESIM_OK)
                return rc;
        } else {
            return nesim_fail(c->err, NESIM_EINVAL,
                              "%s: malformed .npy header: unexpected or repeated key '%.*s'",
                              c->name, kn > 32 ? 32 : (int)kn, key);
        }
        if (!accept(c, ',')) {
            if (!accept(c, '}'))
                return bad_header(c, "expected ',' or '}'");
            break;
        }
    }
    skip_ws(c);
    if (c->p != c->end)
        return bad_header(c, "trailing characters after the dict");
    if (!have_descr || !have_order || !have_shape)
        return bad_header(c, "missing key (need 'descr', 'fortran_order' and 'shape')");
    if ((rc = parse_descr(c, descr, descr_n, &t->dtype)) != NESIM_OK)
        return rc;
    t->fortran = fortran && t->ndim > 1; /* 0-d and 1-d arrays are the same in both orders */
    return NESIM_OK;
}

int nesim_npy_parse(const void *buf, size_t len, const char *name, nesim_tensor *t,
                    nesim_error *err)
{
    const unsigned char *b = buf;
    if (!name)
        name = "<npy>";
    memset(t, 0, sizeof *t);
    if (len < 10)
        return nesim_fail(err, NESIM_EINVAL, "%s: truncated: %zu bytes, shorter than the .npy preamble",
                          name, len);
    if (memcmp(b, npy_magic, sizeof npy_magic) != 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: not an .npy file (bad magic)", name);
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: unsupported .npy version %d.%d (need 1.0, 2.0 or 3.0)",
                          name, major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre)
        return nesim_fail(err, NESIM_EINVAL, "%s: truncated: %zu bytes, shorter than the .npy preamble",
                          name, len);
    uint64_t hlen = major == 1 ? (uint64_t)b[8] | (uint64_t)b[9] << 8
                               : (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 |
                                     (uint64_t)b[11] << 24;
    if (hlen > len - pre)
        return nesim_fail(err, NESIM_EINVAL, "%s: header length %llu beyond file size %zu", name,
                          (unsigned long long)hlen, len);
    cursor c = {(const char *)b + pre, (const char *)b + pre + hlen, name, err};
    int rc = parse_dict(&c, t);
    if (rc != NESIM_OK) {
        memset(t, 0, sizeof *t);
        return rc;
    }
    size_t item = nesim_dtype_size(t->dtype);
    if (!nesim_tio_shape_size(t->shape, t->ndim, item, &t->count, &t->nbytes)) {
        memset(t, 0, sizeof *t);
        return nesim_fail(err, NESIM_EINVAL, "%s: absurd shape: product of dimensions overflows", name);
    }
    size_t off = pre + (size_t)hlen, have = len - off;
    if (have != t->nbytes) {
        size_t want = t->nbytes;
        memset(t, 0, sizeof *t);
        return nesim_fail(err, NESIM_EINVAL,
                          have < want ? "%s: truncated: data size mismatch, expected %zu bytes, found %zu"
                                      : "%s: data size mismatch: expected %zu bytes, found %zu",
                          name, want, have);
    }
    t->data = b + off;
    return NESIM_OK;
}

int nesim_npy_load(const char *path, nesim_tensor *t, nesim_error *err)
{
    void *base;
    size_t len;
    memset(t, 0, sizeof *t);
    int rc = nesim_tio_map(path, &base, &len, err);
    if (rc != NESIM_OK)
        return rc;
    static const unsigned char empty[1];
    rc = nesim_npy_parse(base ? base : empty, len, path, t, err);
    if (rc != NESIM_OK) {
        nesim_tio_unmap(base, len);
        return rc;
    }
    t->map_base = base;
    t->map_len = len;
    if ((rc = nesim_tensor_to_c_order(t, err)) != NESIM_OK)
        nesim_tensor_release(t);
    return rc;
}

static const char *npy_descr(nesim_dtype dt)
{
    switch (dt) {
    case NESIM_F32: return "<f4";
    case NESIM_F64: return "<f8";
    case NESIM_F16: return "<f2";
    case NESIM_I8: return "|i1";
    case NESIM_I16: return "<i2";
    case NESIM_I32: return "<i4";
    case NESIM_U8: return "|u1";
    case NESIM_I64: return "<i8";
    case NESIM_U16: return "<u2";
    case NESIM_U32: return "<u4";
    case NESIM_U64: return "<u8";
    case NESIM_BOOL: return "|b1";
    case NESIM_BF16: break;
    }
    return NULL;
}

/* The 1.0 preamble and header numpy writes for (dtype, shape): 10 + hlen
 * bytes, a multiple of 64, so the data is aligned for any element type.
 * Worst case (8 dims of 19 digits) stays well under 512 bytes. */
static int npy_header(const char *path, nesim_dtype dtype, int ndim, const int64_t *shape, unsigned char pre[10],
                      char hdr[512], size_t *hlen, size_t *nbytes, nesim_error *err)
{
    const char *descr = npy_descr(dtype);
    if (!descr)
        return nesim_fail(err, NESIM_EINVAL, "%s: dtype %s has no .npy type code", path,
                          nesim_dtype_name(dtype));
    if (ndim < 0 || ndim > NESIM_TENSOR_MAX_DIM || (ndim > 0 && !shape))
        return nesim_fail(err, NESIM_EINVAL, "%s: ndim %d out of range 0..%d", path, ndim,
                          NESIM_TENSOR_MAX_DIM);
    size_t count;
    if (!nesim_tio_shape_size(shape, ndim, nesim_dtype_size(dtype), &count, nbytes))
        return nesim_fail(err, NESIM_EINVAL, "%s: absurd shape (negative or overflowing)", path);
    int n = snprintf(hdr, 512, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < ndim; d++)
        n += snprintf(hdr + n, 512 - (size_t)n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    n += snprintf(hdr + n, 512 - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    size_t total = ((size_t)n + 10 + 1 + 63) / 64 * 64;
    *hlen = total - 10;
    memset(hdr + n, ' ', *hlen - 1 - (size_t)n);
    hdr[*hlen - 1] = '\n';
    const unsigned char p[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(*hlen & 0xff),
                                 (unsigned char)(*hlen >> 8)};
    memcpy(pre, p, 10);
    return NESIM_OK;
}

int nesim_npy_write(const char *path, nesim_dtype dtype, int ndim, const int64_t *shape,
                    const void *data, nesim_error *err)
{
    unsigned char pre[10];
    char hdr[512];
    size_t hlen, nbytes;
    int rc = npy_header(path, dtype, ndim, shape, pre, hdr, &hlen, &nbytes, err);
    if (rc)
        return rc;
    if (nbytes > 0 && !data)
        return nesim_fail(err, NESIM_EINVAL, "%s: no data", path);
    const void *parts[3] = {pre, hdr, data};
    size_t lens[3] = {sizeof pre, hlen, nbytes};
    return nesim_tio_write_atomic(path, nbytes ? 3 : 2, parts, lens, err);
}

struct nesim_npy_writer {
    char *path, *tmp;
    int fd;
    size_t want, have; /* data bytes */
};

int nesim_npy_writer_open(const char *path, nesim_dtype dtype, int ndim, const int64_t *shape,
                          nesim_npy_writer **out, nesim_error *err)
{
    *out = NULL;
    unsigned char pre[10];
    char hdr[512];
    size_t hlen, nbytes;
    int rc = npy_header(path, dtype, ndim, shape, pre, hdr, &hlen, &nbytes, err);
    if (rc)
        return rc;
    nesim_npy_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 16;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
        if (w)
            free(w->path);
        free(w);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    }
    snprintf(w->tmp, n, "%s.tmp.XXXXXX", path);
    w->want = nbytes;
    if (nesim_tio_special(path)) { /* a device or a pipe: written in place, never renamed over */
        free(w->tmp);
        w->tmp = NULL;
        w->fd = open(path, O_WRONLY);
    } else {
        w->fd = mkstemp(w->tmp);
    }
    if (w->fd < 0) {
        rc = nesim_fail(err, NESIM_EIO, "%s: cannot create temp file: %s", path, strerror(errno));
        free(w->tmp), free(w->path), free(w);
        return rc;
    }
    if ((w->tmp && fchmod(w->fd, 0644) != 0) || write(w->fd, pre, sizeof pre) != (ssize_t)sizeof pre ||
        write(w->fd, hdr, hlen) != (ssize_t)hlen) {
        rc = nesim_fail(err, NESIM_EIO, "%s: cannot write: %s", path, strerror(errno));
        nesim_npy_writer_abort(w);
        return rc;
    }
    *out = w;
    return NESIM_OK;
}

int nesim_npy_writer_append(nesim_npy_writer *w, const void *data, size_t bytes, nesim_error *err)
{
    if (bytes > w->want - w->have)
        return nesim_fail(err, NESIM_EINVAL, "%s: %zu bytes more than the shape holds", w->path,
                          bytes - (w->want - w->have));
    const char *p = data;
    for (size_t left = bytes; left > 0;) {
        ssize_t k = write(w->fd, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return nesim_fail(err, NESIM_EIO, "%s: cannot write: %s", w->path, strerror(errno));
        p += k;
        left -= (size_t)k;
    }
    w->have += bytes;
    return NESIM_OK;
}

int nesim_npy_writer_close(nesim_npy_writer *w, nesim_error *err)
{
    int rc = NESIM_OK;
    if (w->have != w->want)
        rc = nesim_fail(err, NESIM_EINTERNAL, "%s: %zu of %zu data bytes written", w->path, w->have, w->want);
    else if ((w->tmp && fsync(w->fd) != 0) || close(w->fd) != 0)
        rc = nesim_fail(err, NESIM_EIO, "%s: cannot write: %s", w->path, strerror(errno));
    else if (w->tmp && rename(w->tmp, w->path) != 0)
        rc = nesim_fail(err, NESIM_EIO, "%s: cannot rename into place: %s", w->path, strerror(errno));
    else
        w->fd = -1;
    if (rc) {
        nesim_npy_writer_abort(w);
        return rc;
    }
    free(w->tmp), free(w->path), free(w);
    return NESIM_OK;
}

void nesim_npy_writer_abort(nesim_npy_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    free(w->tmp), free(w->path), free(w);
}
