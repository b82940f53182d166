/* safetensors.c — .safetensors reader and writer.
 *
 * Layout: u64 little-endian N, N bytes of JSON header, then the data buffer.
 * Guarantees: the whole header is validated at open/parse time (entry keys,
 * dtype, integer shape, offsets inside the data buffer, end - begin ==
 * product(shape) * itemsize, "__metadata__" values are strings), so _get
 * only looks a name up and never fails on a listed tensor. Views point into
 * the one mapping (or the caller's buffer); nothing is copied. Tensor
 * overlap and holes between tensors are not checked: they cannot make a
 * view read outside the buffer. */
#include "net/tensor.h"
#include "net/tensor_io.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference implementation refuses headers above 100 MB; a larger N is
 * corruption, not a model. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
    const char *name; /* owned by root */
    nesim_dtype dtype;
    int ndim;
    int64_t shape[NESIM_TENSOR_MAX_DIM];
    size_t count, nbytes, begin;
} st_entry;

struct nesim_safetensors {
    char *fname;
    const unsigned char *data; /* start of the data buffer */
    size_t data_len;
    void *map; /* owned mapping, NULL when parsed from caller memory */
    size_t map_len;
    json_t *root;     /* kept alive: entry names and metadata point into it */
    json_t *metadata; /* borrowed from root, may be NULL */
    size_t n;
    st_entry *e;
};

static const struct { const char *name; nesim_dtype dt; } st_dtypes[] = {
    {"F32", NESIM_F32}, {"F64", NESIM_F64}, {"F16", NESIM_F16}, {"BF16", NESIM_BF16},
    {"I8", NESIM_I8},   {"I16", NESIM_I16}, {"I32", NESIM_I32}, {"U8", NESIM_U8},
    {"I64", NESIM_I64}, {"U16", NESIM_U16}, {"U32", NESIM_U32}, {"U64", NESIM_U64},
    {"BOOL", NESIM_BOOL},
};

static const char *st_dtype_name(nesim_dtype dt)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dt == dt)
            return st_dtypes[i].name;
    return NULL;
}

/* A JSON integer in [0, INT64_MAX]. */
static bool get_uint(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static int parse_entry(nesim_safetensors *st, const char *key, json_t *val, st_entry *e,
                       nesim_error *err)
{
    const char *f = st->fname;
    if (!json_is_object(val))
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': entry is not an object", f, key);
    const char *k;
    json_t *v;
    json_object_foreach(val, k, v) {
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': unexpected key '%.32s'", f,
                              key, k);
    }
    e->name = key;

    json_t *dt = json_object_get(val, "dtype");
    if (!json_is_string(dt))
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': missing or non-string dtype", f,
                          key);
    size_t i = 0, ndt = sizeof st_dtypes / sizeof st_dtypes[0];
    while (i < ndt && strcmp(json_string_value(dt), st_dtypes[i].name) != 0)
        i++;
    if (i == ndt)
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: tensor '%.64s': unsupported dtype '%.16s' (supported: F32 F64 F16 "
                          "BF16 I8 I16 I32 U8 I64 U16 U32 U64 BOOL)", f, key, json_string_value(dt));
    e->dtype = st_dtypes[i].dt;

    json_t *shape = json_object_get(val, "shape");
    if (!json_is_array(shape))
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': missing or non-array shape", f,
                          key);
    if (json_array_size(shape) > NESIM_TENSOR_MAX_DIM)
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': too many dimensions (%zu > %d)",
                          f, key, json_array_size(shape), NESIM_TENSOR_MAX_DIM);
    e->ndim = (int)json_array_size(shape);
    for (int d = 0; d < e->ndim; d++)
        if (!get_uint(json_array_get(shape, (size_t)d), &e->shape[d]))
            return nesim_fail(err, NESIM_EINVAL,
                              "%s: tensor '%.64s': shape must hold non-negative integers", f, key);
    if (!nesim_tio_shape_size(e->shape, e->ndim, nesim_dtype_size(e->dtype), &e->count, &e->nbytes))
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: tensor '%.64s': absurd shape: product of dimensions overflows", f, key);

    json_t *off = json_object_get(val, "data_offsets");
    int64_t begin, end;
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !get_uint(json_array_get(off, 0), &begin) || !get_uint(json_array_get(off, 1), &end))
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: tensor '%.64s': data_offsets must be [begin, end] non-negative integers",
                          f, key);
    if (begin > end)
        return nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': data_offsets begin %lld > end %lld",
                          f, key, (long long)begin, (long long)end);
    if ((uint64_t)end > st->data_len)
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: tensor '%.64s': data_offsets end %lld out of range (data buffer is "
                          "%zu bytes)", f, key, (long long)end, st->data_len);
    if ((uint64_t)(end - begin) != e->nbytes)
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: tensor '%.64s': data size mismatch: expected %zu bytes "
                          "(product(shape) * %zu), data_offsets span %lld",
                          f, key, e->nbytes, nesim_dtype_size(e->dtype), (long long)(end - begin));
    e->begin = (size_t)begin;
    return NESIM_OK;
}

static int parse_header(nesim_safetensors *st, const unsigned char *b, size_t len,
                        nesim_error *err)
{
    const char *f = st->fname;
    if (len < 8)
        return nesim_fail(err, NESIM_EINVAL,
                          "%s: truncated: %zu bytes, shorter than the 8-byte header length", f, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > ST_MAX_HEADER)
        return nesim_fail(err, NESIM_EINVAL, "%s: header length %llu is absurd (limit %u bytes)", f,
                          (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return nesim_fail(err, NESIM_EINVAL, "%s: header length %llu beyond file size %zu", f,
                          (unsigned long long)hlen, len);
    st->data = b + 8 + hlen;
    st->data_len = len - 8 - (size_t)hlen;

    json_error_t je;
    st->root = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!st->root)
        return nesim_fail(err, NESIM_EINVAL, "%s: header JSON error at line %d column %d: %s", f,
                          je.line, je.column, je.text);
    if (!json_is_object(st->root))
        return nesim_fail(err, NESIM_EINVAL, "%s: header JSON is not an object", f);

    st->e = calloc(json_object_size(st->root) + 1, sizeof *st->e);
    if (!st->e)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", f);
    const char *key;
    json_t *val;
    json_object_foreach(st->root, key, val) { /* jansson keeps file order */
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val))
                return nesim_fail(err, NESIM_EINVAL, "%s: __metadata__ is not an object", f);
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv))
                    return nesim_fail(err, NESIM_EINVAL,
                                      "%s: __metadata__ value for '%.64s' is not a string", f, mk);
            }
            st->metadata = val;
            continue;
        }
        int rc = parse_entry(st, key, val, &st->e[st->n], err);
        if (rc != NESIM_OK)
            return rc;
        st->n++;
    }
    return NESIM_OK;
}

int nesim_safetensors_parse(const void *buf, size_t len, const char *name,
                            nesim_safetensors **out, nesim_error *err)
{
    *out = NULL;
    if (!name)
        name = "<safetensors>";
    nesim_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->fname = strdup(name))) {
        free(st);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", name);
    }
    static const unsigned char empty[1];
    int rc = parse_header(st, buf ? buf : empty, buf ? len : 0, err);
    if (rc != NESIM_OK) {
        nesim_safetensors_close(st);
        return rc;
    }
    *out = st;
    return NESIM_OK;
}

int nesim_safetensors_open(const char *path, nesim_safetensors **out, nesim_error *err)
{
    void *base;
    size_t len;
    *out = NULL;
    int rc = nesim_tio_map(path, &base, &len, err);
    if (rc != NESIM_OK)
        return rc;
    rc = nesim_safetensors_parse(base, len, path, out, err);
    if (rc != NESIM_OK) {
        nesim_tio_unmap(base, len);
        return rc;
    }
    (*out)->map = base;
    (*out)->map_len = len;
    return NESIM_OK;
}

int nesim_safetensors_get(const nesim_safetensors *st, const char *tensor_name,
                          nesim_tensor *view, nesim_error *err)
{
    memset(view, 0, sizeof *view);
    for (size_t i = 0; i < st->n; i++) {
        const st_entry *e = &st->e[i];
        if (strcmp(e->name, tensor_name) != 0)
            continue;
        view->dtype = e->dtype;
        view->ndim = e->ndim;
        memcpy(view->shape, e->shape, sizeof view->shape);
        view->count = e->count;
        view->nbytes = e->nbytes;
        view->data = st->data + e->begin;
        return NESIM_OK;
    }
    /* Listing a few names turns a typo into an obvious fix. */
    char list[256] = "";
    size_t used = 0, shown = st->n < 6 ? st->n : 6;
    for (size_t i = 0; i < shown && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s'%.40s'", i ? ", " : "",
                                 st->e[i].name);
    return nesim_fail(err, NESIM_EINVAL, "%s: no tensor named '%.100s' (%zu tensors%s%s%s)",
                      st->fname, tensor_name, st->n, st->n ? ": " : "", list,
                      st->n > shown ? ", ..." : "");
}

size_t nesim_safetensors_count(const nesim_safetensors *st) { return st ? st->n : 0; }

const char *nesim_safetensors_name(const nesim_safetensors *st, size_t i)
{
    return st && i < st->n ? st->e[i].name : NULL;
}

const char *nesim_safetensors_metadata(const nesim_safetensors *st, const char *key)
{
    return st && st->metadata ? json_string_value(json_object_get(st->metadata, key)) : NULL;
}

void nesim_safetensors_close(nesim_safetensors *st)
{
    if (!st)
        return;
    json_decref(st->root);
    nesim_tio_unmap(st->map, st->map_len);
    free(st->e);
    free(st->fname);
    free(st);
}

/* Builds the JSON header; on success *json is a malloc'd string. */
static int build_header(const char *path, size_t n, const char *const names[],
                        const nesim_tensor tensors[], char **json, nesim_error *err)
{
    json_t *root = json_object();
    size_t offset = 0;
    int rc = NESIM_OK;
    if (!root)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && rc == NESIM_OK; i++) {
        const nesim_tensor *t = &tensors[i];
        const char *dt = st_dtype_name(t->dtype);
        size_t count, nbytes;
        if (!names[i] || !strcmp(names[i], "__metadata__") || json_object_get(root, names[i])) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: tensor %zu: missing, reserved or repeated name",
                            path, i);
            break;
        }
        if (!dt || t->ndim < 0 || t->ndim > NESIM_TENSOR_MAX_DIM ||
            !nesim_tio_shape_size(t->shape, t->ndim, nesim_dtype_size(t->dtype), &count, &nbytes) ||
            (nbytes && !t->data)) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: tensor '%.64s': bad dtype, shape or data", path,
                            names[i]);
            break;
        }
        json_t *shape = json_array();
        for (int d = 0; shape && d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I,I]}", "dtype", dt, "shape", shape,
                                  "data_offsets", (json_int_t)offset,
                                  (json_int_t)(offset + nbytes));
        /* json_object_set_new also fails on names that are not UTF-8 */
        if (!entry || json_object_set_new(root, names[i], entry) != 0)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: tensor %zu: cannot encode name or entry", path, i);
        offset += nbytes;
    }
    if (rc == NESIM_OK && !(*json = json_dumps(root, JSON_COMPACT)))
        rc = nesim_fail(err, NESIM_ENOMEM, "%s: cannot encode header", path);
    json_decref(root);
    return rc;
}

int nesim_safetensors_write(const char *path, size_t n, const char *const names[],
                            const nesim_tensor tensors[], nesim_error *err)
{
    char *json = NULL;
    int rc = build_header(path, n, names, tensors, &json, err);
    if (rc != NESIM_OK)
        return rc;
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
    char *hdr = malloc(hlen);
    const void **parts = calloc(n + 2, sizeof *parts);
    size_t *lens = calloc(n + 2, sizeof *lens);
    unsigned char len8[8];
    if (!hdr || !parts || !lens) {
        rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Space padding is what the format allows; it puts the data 8-aligned. */
    memcpy(hdr, json, jlen);
    memset(hdr + jlen, ' ', hlen - jlen);
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    parts[0] = len8;
    lens[0] = 8;
    parts[1] = hdr;
    lens[1] = hlen;
    for (size_t i = 0; i < n; i++) {
        parts[i + 2] = tensors[i].data;
        nesim_tio_shape_size(tensors[i].shape, tensors[i].ndim, nesim_dtype_size(tensors[i].dtype),
                             &(size_t){0}, &lens[i + 2]);
    }
    if (n + 2 > (size_t)0x7fffffff)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: too many tensors", path);
    else
        rc = nesim_tio_write_atomic(path, (int)(n + 2), parts, lens, err);
out:
    free(json);
    free(hdr);
    free(parts);
    free(lens);
    return rc;
}
