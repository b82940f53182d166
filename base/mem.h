/* mem.h — how much memory this machine can give a run, and size strings.
 *
 * nesim_mem_available() is what a new allocation can still get without
 * swapping: the kernel's MemAvailable, or less when a cgroup (a container,
 * a job scheduler) limits this process (memory.max - memory.current, v2;
 * memory.limit_in_bytes - usage, v1). 0 when none of them can be read. */
#ifndef NESIM_BASE_MEM_H
#define NESIM_BASE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

uint64_t nesim_mem_available(void);

/* "512", "64K", "1.5G", "2T" (binary multiples, optional "iB"/"B") into
 * bytes; NESIM_EINVAL naming `what` otherwise. */
int nesim_mem_parse(const char *what, const char *s, uint64_t *bytes, nesim_error *err);

/* A byte count as people read it: "812 MiB", "41.3 GiB". Returns buf. */
const char *nesim_mem_format(double bytes, char *buf, size_t n);

/* bytes of memory for a large array (free() it), 2 MiB-aligned when it is
 * at least that large (huge pages where the system gives them unasked; none
 * are requested: mem.c says why). NULL when out of memory. */
void *nesim_alloc_big(size_t bytes);

/* An array v of *cap elements of `size` bytes with room for `need`: v
 * itself, or v grown to twice its capacity (from `first` when empty, v
 * NULL: allocated even for need 0) until it has; NULL only when out of
 * memory or the size overflows (v and *cap unchanged: the caller still owns
 * v). The one growth rule of the tree. Inline when there is room (pushes
 * are hot: no call), nesim_grow_slow otherwise. */
void *nesim_grow_slow(void *v, size_t need, size_t *cap, size_t size, size_t first);
static inline void *nesim_grown(void *v, size_t need, size_t *cap, size_t size, size_t first)
{
    return need <= *cap && v ? v : nesim_grow_slow(v, need, cap, size, first);
}

#endif
