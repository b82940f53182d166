/* par.c — see par.h. */
#include "base/par.h"

#include <pthread.h>
#include <unistd.h>

#define PAR_MAX 256

typedef struct part {
    void (*fn)(void *, int, int);
    void *ctx;
    int k, n;
} part;

static void *trampoline(void *arg)
{
    part *p = arg;
    p->fn(p->ctx, p->k, p->n);
    return NULL;
}

void nesim_par_run(int n, void (*fn)(void *ctx, int k, int n), void *ctx)
{
    if (n < 1)
        n = 1;
    if (n > PAR_MAX)
        n = PAR_MAX;
    pthread_t th[PAR_MAX];
    part parts[PAR_MAX];
    int started[PAR_MAX] = {0};
    for (int k = 1; k < n; k++) {
        parts[k] = (part){fn, ctx, k, n};
        started[k] = pthread_create(&th[k], NULL, trampoline, &parts[k]) == 0;
    }
    fn(ctx, 0, n);
    for (int k = 1; k < n; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            fn(ctx, k, n);
    }
}

int nesim_par_cores(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > PAR_MAX ? PAR_MAX : (int)c;
}

void nesim_par_split(size_t total, size_t align, int k, int n, size_t *lo, size_t *hi)
{
    if (align < 1)
        align = 1;
    size_t units = (total + align - 1) / align;
    size_t a = units * (size_t)k / (size_t)n, b = units * (size_t)(k + 1) / (size_t)n;
    *lo = a * align > total ? total : a * align;
    *hi = b * align > total ? total : b * align;
}
