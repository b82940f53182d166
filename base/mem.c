/* mem.c — available memory and size strings (see mem.h). */
#include "base/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first unsigned number in a file ("max" and unreadable: 0). */
static uint64_t read_u64(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

static uint64_t meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return (uint64_t)kib * 1024;
}

uint64_t nesim_mem_available(void)
{
    uint64_t avail = meminfo_available();
    /* cgroup v2, then v1: a limit far above the machine means none */
    uint64_t lim = read_u64("/sys/fs/cgroup/memory.max"), used = read_u64("/sys/fs/cgroup/memory.current");
    if (!lim) {
        lim = read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        used = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    }
    if (lim && lim < (UINT64_C(1) << 60)) {
        uint64_t left = lim > used ? lim - used : 0;
        if (!avail || left < avail)
            avail = left;
    }
    return avail;
}

int nesim_mem_parse(const char *what, const char *s, uint64_t *bytes, nesim_error *err)
{
    char *end;
    double v = s && *s >= '0' && *s <= '9' ? strtod(s, &end) : -1;
    if (!(v >= 0) || !isfinite(v))
        return nesim_fail(err, NESIM_EINVAL, "%s: expected a size like 512M, 16G or 2T, got '%s'", what, s ? s : "");
    double mult = 1;
    switch (*end) {
    case 'K': case 'k': mult = 0x1p10, end++; break;
    case 'M': case 'm': mult = 0x1p20, end++; break;
    case 'G': case 'g': mult = 0x1p30, end++; break;
    case 'T': case 't': mult = 0x1p40, end++; break;
    default: break;
    }
    if (mult > 1 && !strcmp(end, "iB"))
        end += 2;
    else if (!strcmp(end, "B"))
        end++;
    if (*end || v * mult >= 0x1p63)
        return nesim_fail(err, NESIM_EINVAL, "%s: expected a size like 512M, 16G or 2T, got '%s'", what, s);
    *bytes = (uint64_t)llround(v * mult);
    return NESIM_OK;
}

const char *nesim_mem_format(double bytes, char *buf, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5)
        bytes /= 1024, u++;
    snprintf(buf, n, u && bytes < 10 ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

void *nesim_grow_slow(void *v, size_t need, size_t *cap, size_t size, size_t first)
{
    if (need <= *cap && v)
        return v;
    size_t nc = *cap ? *cap : first ? first : 1; /* an empty array gets room even for nothing: never NULL on success */
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return NULL;
        nc *= 2;
    }
    if (size && nc > SIZE_MAX / size)
        return NULL;
    void *nv = realloc(v, nc * size);
    if (nv)
        *cap = nc;
    return nv;
}

void *nesim_alloc_big(size_t bytes)
{
    /* No madvise(MADV_HUGEPAGE): in a virtual machine that reports its free
     * memory to the host (virtio-balloon free page reporting, as on the
     * 2-vCPU VM nesim's figures come from), the kernel hands out reported
     * 2 MiB blocks, and each faults back in through the host: there, 1 GB
     * asked for after a few idle seconds took 12 s with the advice and 0.6 s
     * without. Aligned to 2 MiB, the array still gets huge pages where the
     * system's policy (transparent_hugepage=always) gives them unasked. */
    const size_t huge = (size_t)2 << 20;
    void *mem = NULL;
    if (posix_memalign(&mem, bytes >= huge ? huge : 64, bytes ? bytes : 1))
        return NULL;
    return mem;
}
