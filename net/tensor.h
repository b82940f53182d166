/* tensor.h — weight and input tensors from .npy and .safetensors files.
 *
 * Guarantees:
 * - Loading never converts or copies element data: a tensor is a typed view
 *   (dtype, shape, pointer) into a read-only, MAP_PRIVATE mapping of the file.
 *   Weights therefore keep their stored precision (f32, f16, bf16, int8, ...).
 * - Every parser validates the whole header before handing out a view: the
 *   view's bytes (count * itemsize) always lie inside the buffer, the shape
 *   product cannot overflow, and count == product(shape) (1 for a scalar).
 *   Malformed input of any kind yields NESIM_EINVAL and a one-line message
 *   naming the file and the problem; nothing crashes, prints or exits.
 * - The parse functions work on caller memory (for fuzzing and embedding) and
 *   never keep or free that memory.
 *
 * Ownership:
 * - nesim_npy_load() gives a tensor that owns its file mapping; release it
 *   with nesim_tensor_release(), exactly once (a struct copy shares the
 *   mapping: release only one of them).
 * - nesim_npy_parse() gives a view into the caller's buffer; release is a
 *   no-op for it, and it is valid while that buffer is.
 * - nesim_safetensors_open() maps the file once; nesim_safetensors_get()
 *   returns views into that shared mapping, valid until
 *   nesim_safetensors_close(). Releasing such a view is a no-op.
 *
 * Alignment: .npy data written by numpy (and nesim_npy_write) starts on a
 * 64-byte boundary, but safetensors data and hand-made files need not be
 * aligned to the element size. Read through nesim_tensor_get() or memcpy,
 * or check nesim_tensor_is_aligned() before casting `data` to a typed
 * pointer. Multi-byte values are little-endian (nesim targets LE hosts).
 */
#ifndef NESIM_NET_TENSOR_H
#define NESIM_NET_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef enum nesim_dtype {
    NESIM_F32,
    NESIM_F64,
    NESIM_F16,  /* IEEE 754 binary16 */
    NESIM_BF16, /* bfloat16: the upper half of a binary32 */
    NESIM_I8,
    NESIM_I16,
    NESIM_I32,
    NESIM_U8,
    NESIM_I64,  /* numpy's default integer; read exactly up to 2^53 */
    NESIM_U16,
    NESIM_U32,
    NESIM_U64,
    NESIM_BOOL  /* one byte, 0 or 1 */
} nesim_dtype;

#define NESIM_TENSOR_MAX_DIM 8

typedef struct nesim_tensor {
    nesim_dtype dtype;
    int ndim;                             /* 0 for a scalar */
    int64_t shape[NESIM_TENSOR_MAX_DIM];  /* logical shape, whatever the order */
    size_t count;                         /* product(shape); 1 for a scalar */
    size_t nbytes;                        /* count * itemsize */
    const void *data;                     /* read-only; see alignment note */
    /* Elements stored column-major (numpy fortran_order True). Only views
     * from nesim_npy_parse() carry it; nesim_npy_load() and
     * nesim_tensor_to_c_order() hand out C order. */
    bool fortran;
    /* private: the mapping or heap copy this tensor owns (NULL for views) */
    void *map_base;
    size_t map_len;
    void *heap;
} nesim_tensor;

/* Bytes per element (0 for an out-of-range value). */
size_t nesim_dtype_size(nesim_dtype dtype);
/* Lower-case name ("f32", "bf16", "i8", ...); "?" for an out-of-range value. */
const char *nesim_dtype_name(nesim_dtype dtype);

/* Element i (flat, row-major, also for a fortran view) converted exactly to
 * double; f16/bf16 decode subnormals, infinities and NaN; 64-bit integers
 * round to nearest beyond 2^53. Returns NaN if i >= t->count. */
double nesim_tensor_get(const nesim_tensor *t, size_t i);

/* NESIM_OK if every element is finite (integer dtypes always are); otherwise
 * NESIM_EINVAL naming `what` and the flat index of the first NaN or Inf. */
int nesim_tensor_check_finite(const nesim_tensor *t, const char *what, nesim_error *err);

/* True if t->data may be cast to a pointer to its element type. */
bool nesim_tensor_is_aligned(const nesim_tensor *t);

/* Unmaps (or frees) a tensor from nesim_npy_load() or
 * nesim_tensor_to_c_order(); no-op for views. Zeroes *t. */
void nesim_tensor_release(nesim_tensor *t);

/* Makes a fortran-order tensor C-ordered in place: the elements are copied,
 * transposed, to heap memory *t then owns (the old mapping, if *t owned one,
 * is released). A C-order tensor is left alone. NESIM_ENOMEM on failure,
 * with *t unchanged. */
int nesim_tensor_to_c_order(nesim_tensor *t, nesim_error *err);

/* ---- .npy (format 1.0, 2.0, 3.0; little-endian; C or Fortran order) ---- */

/* Parses an .npy image in buf[0..len) into a view *t (t->fortran set for a
 * fortran_order file). `name` is used only in error messages. */
int nesim_npy_parse(const void *buf, size_t len, const char *name, nesim_tensor *t,
                    nesim_error *err);

/* Maps `path` and parses it; *t owns the mapping (nesim_tensor_release). A
 * fortran_order file is transposed on load, so *t is always C order. */
int nesim_npy_load(const char *path, nesim_tensor *t, nesim_error *err);

/* Writes a version 1.0 .npy (header padded to 64 bytes as numpy does) from
 * product(shape) elements at data, atomically (temp file + rename). bf16 has
 * no .npy type code and is rejected. */
int nesim_npy_write(const char *path, nesim_dtype dtype, int ndim, const int64_t *shape,
                    const void *data, nesim_error *err);

/* NESIM_OK if a file can be created at `path` (its folder exists and is
 * writable): a temporary file is made there and removed. Lets a run refuse
 * an output it could not write before it starts, not after. */
int nesim_tio_check_writable(const char *path, nesim_error *err);

/* An .npy written in parts (rows as they are computed), atomically: the
 * header carries the final shape, data goes to a temp file beside `path`,
 * and close() checks every byte came, fsyncs and renames it into place;
 * abort() (or a failing close) removes the temp file, so no half-written
 * file is ever left under `path`. */
typedef struct nesim_npy_writer nesim_npy_writer;
int nesim_npy_writer_open(const char *path, nesim_dtype dtype, int ndim, const int64_t *shape,
                          nesim_npy_writer **out, nesim_error *err);
int nesim_npy_writer_append(nesim_npy_writer *w, const void *data, size_t bytes, nesim_error *err);
int nesim_npy_writer_close(nesim_npy_writer *w, nesim_error *err);
void nesim_npy_writer_abort(nesim_npy_writer *w);

/* ---- .safetensors ---- */

typedef struct nesim_safetensors nesim_safetensors;

/* Maps and validates a .safetensors file; *out is freed by _close. */
int nesim_safetensors_open(const char *path, nesim_safetensors **out, nesim_error *err);

/* Validates an image in caller memory; views point into buf, which must
 * outlive *out. `name` is used in error messages. */
int nesim_safetensors_parse(const void *buf, size_t len, const char *name,
                            nesim_safetensors **out, nesim_error *err);

/* Fills *view (borrowed; valid until close) with the tensor called
 * tensor_name, or fails naming the file and the missing tensor. */
int nesim_safetensors_get(const nesim_safetensors *st, const char *tensor_name,
                          nesim_tensor *view, nesim_error *err);

/* Number of tensors, and the name of tensor i (file order), NULL if i is out
 * of range. Names are valid until close. */
size_t nesim_safetensors_count(const nesim_safetensors *st);
const char *nesim_safetensors_name(const nesim_safetensors *st, size_t i);

/* Value of a "__metadata__" string entry, or NULL. */
const char *nesim_safetensors_metadata(const nesim_safetensors *st, const char *key);

/* Frees st and unmaps its file (NULL is fine). All views become invalid. */
void nesim_safetensors_close(nesim_safetensors *st);

/* Writes n tensors as a .safetensors file, atomically; the header is padded
 * with spaces so the data buffer starts 8-byte aligned. Names must be unique
 * and must not be "__metadata__". */
int nesim_safetensors_write(const char *path, size_t n, const char *const names[],
                            const nesim_tensor tensors[], nesim_error *err);

#endif
