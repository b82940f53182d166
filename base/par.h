/* par.h — run one job on a few threads (pthreads), deterministically.
 *
 * The callers split their work by index, never by which thread is free, so a
 * result never depends on the thread count (the coded kernels split output
 * rows: each row's sum is computed whole by one thread, in the same order as
 * with one thread). */
#ifndef NESIM_PAR_H
#define NESIM_PAR_H

#include <stddef.h>

/* Calls fn(ctx, k, n) for k = 0 .. n-1, part k on its own thread (part 0 on
 * the calling thread), and returns when all have returned. n < 1 counts as 1.
 * When a thread cannot be started its part runs on the calling thread
 * instead: the work is the same, only slower, so there is no error. */
void nesim_par_run(int n, void (*fn)(void *ctx, int k, int n), void *ctx);

/* The machine's online cores (at least 1): the default thread count. */
int nesim_par_cores(void);

/* Part k of n of the range [0, total), in units of `align` (the last part
 * takes the remainder): *lo .. *hi. */
void nesim_par_split(size_t total, size_t align, int k, int n, size_t *lo, size_t *hi);

/* When K ranks split a weight's rows, rank r takes rows
 * nesim_par_split(out, NESIM_RANK_ROWS, r, K): whole blocks of 64 (a multiple
 * of every tile's height, so a tile never straddles two ranks). Every module
 * that splits rows uses this, so a rank holds exactly the rows it runs. */
#define NESIM_RANK_ROWS 64

#endif
