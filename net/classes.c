/* classes.c — grouping neurons by their per-neuron parameters (classes.h). */
#include "net/classes.h"

#include <stdlib.h>
#include <string.h>

/* A row: [na << 32 | neuron, key 0, key 1, ...]; qsort's comparator has no
 * context, so each row carries its own key count. */
static int cmp_row(const void *pa, const void *pb)
{
    const uint64_t *a = pa, *b = pb;
    uint64_t na = a[0] >> 32;
    for (uint64_t k = 1; k <= na; k++)
        if (a[k] != b[k])
            return a[k] < b[k] ? -1 : 1;
    uint32_t ia = (uint32_t)a[0], ib = (uint32_t)b[0];
    return (ia > ib) - (ia < ib);
}

static uint64_t key_of(double x)
{
    uint64_t u;
    if (x == 0)
        x = 0; /* -0 and +0 are one value */
    memcpy(&u, &x, sizeof u);
    return u;
}

int nesim_param_classes(uint32_t n, const nesim_param_array *a, size_t na, uint32_t **cls, uint32_t **rep,
                        uint32_t *n_cls, nesim_error *err)
{
    *cls = *rep = NULL;
    *n_cls = 0;
    size_t w = 1 + na;
    uint64_t *rows = malloc((size_t)(n ? n : 1) * w * sizeof *rows);
    uint32_t *group = malloc((size_t)(n ? n : 1) * sizeof *group), *map = NULL;
    *cls = malloc((size_t)(n ? n : 1) * sizeof **cls);
    if (!rows || !group || !*cls)
        goto oom;
    for (uint32_t j = 0; j < n; j++) {
        uint64_t *r = rows + (size_t)j * w;
        r[0] = (uint64_t)na << 32 | j;
        for (size_t k = 0; k < na; k++)
            r[1 + k] = key_of(a[k].v[j]);
    }
    qsort(rows, n, w * sizeof *rows, cmp_row);
    uint32_t ng = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t *r = rows + (size_t)i * w;
        if (i && memcmp(r + 1, r + 1 - w, na * sizeof *r) != 0)
            ng++;
        group[(uint32_t)r[0]] = ng;
    }
    ng += n ? 1 : 0;
    free(rows);
    rows = NULL;
    map = malloc((size_t)(ng ? ng : 1) * sizeof *map);
    *rep = malloc((size_t)(ng ? ng : 1) * sizeof **rep);
    if (!map || !*rep)
        goto oom;
    for (uint32_t g = 0; g < ng; g++)
        map[g] = UINT32_MAX;
    uint32_t next = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t g = group[j];
        if (map[g] == UINT32_MAX) {
            (*rep)[next] = j;
            map[g] = next++;
        }
        (*cls)[j] = map[g];
    }
    free(group);
    free(map);
    *n_cls = ng;
    return NESIM_OK;
oom:
    free(rows), free(group), free(map), free(*cls), free(*rep);
    *cls = *rep = NULL;
    return nesim_fail(err, NESIM_ENOMEM, "out of memory grouping %u neurons by their parameters", n);
}
