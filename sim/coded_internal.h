/* coded_internal.h — the event plan shared by coded.c (which builds it) and
 * coded_kernels.c (which plays it through the weight rows). Not public API.
 *
 * A plan is the spike train of one sample, laid out for the row kernels as
 * segments, ordered by input chunk (a scale group for int8 weights), then by
 * step. A segment lists the input indices of its +1 events, ascending, then
 * those of its -1 events, ascending — all from one chunk and one step — and
 * carries the step's weight: 2^(T-1-t) for the bitwise codings, 1 for binary
 * and ternary. Adding weight * (segment sum) is the hardware's "shift the
 * accumulator left once per step, then add" (an exact power of two, so no
 * extra rounding), and addition commutes, so a row may take its chunks one
 * at a time with every step of a chunk together: the chunk of a row block
 * stays in L1 across the T steps and the row is swept once, ascending, which
 * the hardware prefetcher follows. Int8 segment sums are exact in int32 and
 * are scaled once per segment. */
#ifndef NESIM_CODED_INTERNAL_H
#define NESIM_CODED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sim/coded.h"

/* Events per segment at most: a float sum of n terms errs by at most
 * (n-1) * 2^-24 of the sum of their magnitudes, so 128 keeps it under 7.6e-6
 * (measured cost on the benchmark: none for bitwise, ~8 % for ternary); int8
 * sums stay inside int32 (2^23 * 128 < 2^31). */
#define NESIM_CODED_SEG_FLOAT 128u
#define NESIM_CODED_SEG_INT ((uint32_t)1 << 23)
/* Inputs per chunk when there are no scale groups: four rows of a chunk
 * (8 KiB of f32) stay in L1 while every step of the chunk is played. */
#define NESIM_CODED_CHUNK_FLOAT 512u
#define NESIM_CODED_CHUNK_INT 2048u
/* Samples a batch call codes before playing them through the weight
 * together, and the fewest that play through tiles made as they are played
 * (fewer take the row kernel unless the layer has tiles). */
#define NESIM_CODED_BATCH 16
#define NESIM_CODED_TILE_MIN 4

typedef struct nesim_coded_seg {
    double wt;    /* step weight */
    uint32_t g;   /* scale group of every index in the segment */
    uint32_t np;  /* +1 events: idx[off .. off+np) */
    uint32_t nn;  /* -1 events: idx[off+np .. off+np+nn) */
    size_t off;
} nesim_coded_seg;

typedef struct nesim_coded_plan {
    const uint32_t *idx;
    const nesim_coded_seg *seg;
    size_t nseg;
} nesim_coded_plan;

/* For every sample s < n and row o of L: y[s * out + o] = vth[s] * acc_o of
 * plans[s] + (bias ? bias[o] : 0). tiles: L's weight as tiles
 * (nesim_coded_tiles_new), or NULL: then n >= NESIM_CODED_TILE_MIN samples
 * play through tiles each thread makes as it goes, fewer through the rows.
 * Rows are split over `threads` threads (small calls take one); the result
 * is the same bits for any path and count. */
int nesim_coded_rows(const nesim_coded_linear *L, const unsigned char *tiles, const nesim_coded_plan *plans, size_t n,
                     const double *vth, const double *bias, float *y, int threads, nesim_comm *comm,
                     nesim_error *err);
/* With comm of K > 1 ranks, nesim_coded_rows computes only this rank's rows
 * (rank r's: [*lo, *hi) here, blocks of 64 rows: nesim_par_split(out, 64,
 * r, K), the split every row-split weight uses) and gathers the others'
 * from them (NESIM_EIO when the exchange fails): every rank ends with all of
 * y, the same bits as one rank. One rank (comm NULL): all rows. */
void nesim_coded_rank_rows(const nesim_coded_linear *L, const nesim_comm *comm, int r, size_t *lo, size_t *hi);

/* The scratch of one layer's calls: allocated once, reused sample after
 * sample (stream.c keeps one per layer for a whole sample). */
typedef struct nesim_coded_work {
    size_t in;
    int64_t *rep;      /* played counts [in]: the caller fills them before a play */
    uint32_t *nz;      /* inputs with a nonzero played count, ascending [in] */
    size_t nnz;
    uint32_t *negtmp;  /* -1 events of the chunk being laid out [in] */
    int64_t *mags;     /* sorted |played N| (binary/ternary step counts) [in] */
    uint32_t *hit;     /* inputs spiking at one step [in] */
    uint32_t *idx;     /* events */
    size_t idx_cap;
    nesim_coded_seg *seg;
    size_t seg_cap, nseg;
    int64_t *step_ev;  /* bitwise: events per step [T] */
    double *bias;      /* [out] or NULL */
} nesim_coded_work;

int nesim_coded_work_init(nesim_coded_work *w, const nesim_coded_linear *L, nesim_error *err);
void nesim_coded_work_free(nesim_coded_work *w);

/* Plays the counts w->rep (T steps of coding c, `events` spikes in all)
 * through L: y[o] = vth * acc_o + bias_o, exactly as a coded sample. */
/* The rows of L that a nonzero weight connects to at least one of the inputs
 * hit[0..nh): a row stops at its first such input, so this costs about one
 * read per row. */
int64_t nesim_coded_reached(const nesim_coded_linear *L, const uint32_t *hit, size_t nh);
/* The same over rows [lo, hi) only (a rank's rows). */
int64_t nesim_coded_reached_rows(const nesim_coded_linear *L, const uint32_t *hit, size_t nh, size_t lo, size_t hi);

int nesim_coded_play(const nesim_coded_linear *L, nesim_coded_work *w, nesim_coding c, int64_t T, size_t events,
                     double vth, float *y, nesim_error *err);

#endif
