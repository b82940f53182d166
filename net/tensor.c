/* tensor.c — dtypes, element access and the file plumbing under the loaders.
 *
 * Guarantees: element reads go through memcpy, so views into unaligned file
 * data are read without undefined behaviour; f16/bf16 decode is exact
 * (every half/bfloat value is representable in double); file mappings are
 * read-only and private; writes are atomic (temp file, fsync, rename). */
#include "net/tensor.h"
#include "net/tensor_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

size_t nesim_dtype_size(nesim_dtype dtype)
{
    switch (dtype) {
    case NESIM_F64:
    case NESIM_I64:
    case NESIM_U64: return 8;
    case NESIM_F32:
    case NESIM_I32:
    case NESIM_U32: return 4;
    case NESIM_F16:
    case NESIM_BF16:
    case NESIM_I16:
    case NESIM_U16: return 2;
    case NESIM_I8:
    case NESIM_U8:
    case NESIM_BOOL: return 1;
    }
    return 0;
}

const char *nesim_dtype_name(nesim_dtype dtype)
{
    switch (dtype) {
    case NESIM_F32: return "f32";
    case NESIM_F64: return "f64";
    case NESIM_F16: return "f16";
    case NESIM_BF16: return "bf16";
    case NESIM_I8: return "i8";
    case NESIM_I16: return "i16";
    case NESIM_I32: return "i32";
    case NESIM_U8: return "u8";
    case NESIM_I64: return "i64";
    case NESIM_U16: return "u16";
    case NESIM_U32: return "u32";
    case NESIM_U64: return "u64";
    case NESIM_BOOL: return "bool";
    }
    return "?";
}

static double half_to_double(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24); /* zero and subnormals: mant * 2^-24 */
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(mant | 0x400, exp - 25);
    return sign ? -v : v;
}

static double bf16_to_double(uint16_t b)
{
    /* bf16 is the top half of a binary32, so widening is a shift. */
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The storage position of C-order element i in a column-major array. */
static size_t fortran_offset(const nesim_tensor *t, size_t i)
{
    size_t off = 0, stride = 1;
    for (int d = 0; d < t->ndim; d++)
        stride *= (size_t)t->shape[d];
    for (int d = 0; d < t->ndim; d++) {
        size_t n = (size_t)t->shape[d];
        stride /= n; /* C stride of dimension d */
        size_t k = i / stride;
        i %= stride;
        size_t fs = 1; /* Fortran stride of dimension d */
        for (int e = 0; e < d; e++)
            fs *= (size_t)t->shape[e];
        off += k * fs;
    }
    return off;
}

double nesim_tensor_get(const nesim_tensor *t, size_t i)
{
    if (!t || !t->data || i >= t->count)
        return NAN;
    if (t->fortran)
        i = fortran_offset(t, i);
    const unsigned char *p = (const unsigned char *)t->data + i * nesim_dtype_size(t->dtype);
    switch (t->dtype) {
    case NESIM_F32: { float v; memcpy(&v, p, 4); return v; }
    case NESIM_F64: { double v; memcpy(&v, p, 8); return v; }
    case NESIM_F16: { uint16_t v; memcpy(&v, p, 2); return half_to_double(v); }
    case NESIM_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_double(v); }
    case NESIM_I8: return (int8_t)p[0];
    case NESIM_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case NESIM_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case NESIM_U8: return p[0];
    case NESIM_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case NESIM_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case NESIM_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case NESIM_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    case NESIM_BOOL: return p[0] != 0;
    }
    return NAN;
}

int nesim_tensor_to_c_order(nesim_tensor *t, nesim_error *err)
{
    if (!t->fortran)
        return NESIM_OK;
    size_t sz = nesim_dtype_size(t->dtype);
    unsigned char *c = malloc(t->nbytes ? t->nbytes : 1);
    if (!c)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory transposing a %zu-byte fortran-order tensor",
                          t->nbytes);
    /* Walk C order with an odometer over the index, keeping the column-major
     * offset in step: O(count) moves, no division per element. */
    size_t idx[NESIM_TENSOR_MAX_DIM] = {0}, fst[NESIM_TENSOR_MAX_DIM], off = 0;
    size_t s = 1;
    for (int d = 0; d < t->ndim; d++) {
        fst[d] = s;
        s *= (size_t)t->shape[d];
    }
    const unsigned char *src = t->data;
    for (size_t i = 0; i < t->count; i++) {
        memcpy(c + i * sz, src + off * sz, sz);
        for (int d = t->ndim - 1; d >= 0; d--) {
            off += fst[d];
            if (++idx[d] < (size_t)t->shape[d])
                break;
            off -= fst[d] * idx[d];
            idx[d] = 0;
        }
    }
    if (t->map_base)
        nesim_tio_unmap(t->map_base, t->map_len);
    free(t->heap);
    t->map_base = NULL;
    t->map_len = 0;
    t->heap = c;
    t->data = c;
    t->fortran = false;
    return NESIM_OK;
}

int nesim_tensor_check_finite(const nesim_tensor *t, const char *what, nesim_error *err)
{
    if (!t)
        return nesim_fail(err, NESIM_EINVAL, "%s: no tensor", what ? what : "tensor");
    if (t->dtype != NESIM_F32 && t->dtype != NESIM_F64 && t->dtype != NESIM_F16 &&
        t->dtype != NESIM_BF16)
        return NESIM_OK;
    for (size_t i = 0; i < t->count; i++) {
        double v = nesim_tensor_get(t, i);
        if (!isfinite(v))
            return nesim_fail(err, NESIM_EINVAL, "%s: element %zu is %s", what ? what : "tensor",
                              i, isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
    }
    return NESIM_OK;
}

bool nesim_tensor_is_aligned(const nesim_tensor *t)
{
    size_t sz = nesim_dtype_size(t->dtype);
    return sz && (uintptr_t)t->data % sz == 0;
}

void nesim_tensor_release(nesim_tensor *t)
{
    if (!t)
        return;
    if (t->map_base)
        nesim_tio_unmap(t->map_base, t->map_len);
    free(t->heap);
    memset(t, 0, sizeof *t);
}

int nesim_tio_map(const char *path, void **base, size_t *len, nesim_error *err)
{
    *base = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nesim_fail(err, errno == ENOENT ? NESIM_EINVAL : NESIM_EIO, "%s: cannot open: %s",
                          path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return nesim_fail(err, NESIM_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nesim_fail(err, NESIM_EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size == 0) { /* mmap rejects length 0; let the parser say "truncated" */
        close(fd);
        return NESIM_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (p == MAP_FAILED)
        return nesim_fail(err, NESIM_EIO, "%s: cannot map %lld bytes: %s", path,
                          (long long)st.st_size, strerror(e));
    *base = p;
    *len = (size_t)st.st_size;
    return NESIM_OK;
}

void nesim_tio_unmap(void *base, size_t len)
{
    if (base)
        munmap(base, len);
}

bool nesim_tio_shape_size(const int64_t *shape, int ndim, size_t itemsize, size_t *count,
                          size_t *nbytes)
{
    size_t nonzero = 1;
    bool any_zero = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return false;
        if (shape[d] == 0)
            any_zero = true;
        else if (__builtin_mul_overflow(nonzero, (size_t)shape[d], &nonzero))
            return false;
    }
    size_t bytes;
    /* Cap at INT64_MAX so sizes also fit off_t and int64 arithmetic. */
    if (__builtin_mul_overflow(nonzero, itemsize, &bytes) || bytes > (size_t)INT64_MAX)
        return false;
    *count = any_zero ? 0 : nonzero;
    *nbytes = any_zero ? 0 : bytes;
    return true;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int nesim_tio_special(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

int nesim_tio_write_atomic(const char *path, int nparts, const void *const parts[],
                           const size_t lens[], nesim_error *err)
{
    if (nesim_tio_special(path)) { /* a device or a pipe: in place */
        int fd = open(path, O_WRONLY);
        int rc = fd < 0 ? -1 : 0;
        for (int i = 0; rc == 0 && i < nparts; i++)
            rc = write_all(fd, parts[i], lens[i]);
        int e = errno;
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = -1, e = errno;
        return rc ? nesim_fail(err, NESIM_EIO, "%s: cannot write: %s", path, strerror(e)) : NESIM_OK;
    }
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path); /* same directory, so rename is atomic */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nesim_fail(err, NESIM_EIO, "%s: cannot create temp file: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; data files are meant to be shared like numpy's. */
    int rc = fchmod(fd, 0644);
    for (int i = 0; rc == 0 && i < nparts; i++)
        rc = write_all(fd, parts[i], lens[i]);
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return nesim_fail(err, NESIM_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    free(tmp);
    return NESIM_OK;
}

int nesim_tio_check_writable(const char *path, nesim_error *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nesim_fail(err, e == ENOENT || e == ENOTDIR || e == EACCES || e == EROFS ? NESIM_EINVAL : NESIM_EIO,
                          "%s: cannot write here: %s", path, strerror(e));
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return nesim_fail(err, NESIM_EINVAL, "%s: is a directory", path);
    return NESIM_OK;
}
