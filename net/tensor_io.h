/* tensor_io.h — private helpers shared by tensor.c, npy.c and safetensors.c.
 * Not part of the public API; include net/tensor.h instead. */
#ifndef NESIM_NET_TENSOR_IO_H
#define NESIM_NET_TENSOR_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Maps a regular file read-only (MAP_PRIVATE). An empty file gives
 * *base == NULL, *len == 0 so parsers report it as truncated. */
int nesim_tio_map(const char *path, void **base, size_t *len, nesim_error *err);
void nesim_tio_unmap(void *base, size_t len);

/* count = product(shape) and nbytes = count * itemsize, rejecting negative
 * dims and any overflow (also among the non-zero dims when one dim is 0, so
 * callers may multiply any subset of dims safely). Returns false on reject. */
bool nesim_tio_shape_size(const int64_t *shape, int ndim, size_t itemsize, size_t *count,
                          size_t *nbytes);

/* 1 when path exists and is neither a regular file nor a directory (a
 * device such as /dev/null, a pipe): an output there is written in place —
 * a temp file renamed over it would replace the device. */
int nesim_tio_special(const char *path);

/* Writes the concatenation of nparts buffers to path via a temp file in the
 * same directory, fsync and rename, so readers never see a partial file (a
 * special file, nesim_tio_special, is written in place). */
int nesim_tio_write_atomic(const char *path, int nparts, const void *const parts[],
                           const size_t lens[], nesim_error *err);

#endif
