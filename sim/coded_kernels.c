/* coded_kernels.c — the hot loops of the coded linear layer: play an event
 * plan (coded_internal.h) through every weight row.
 *
 * Guarantees: each event costs one gather of w[o, i] and one add per target
 * row o (one SOP), in the weight's stored precision; float sums run over one
 * segment (<= NESIM_CODED_SEG_FLOAT events) and are then added in double
 * (all in double when the layer asks for exact_sums);
 * int8 sums are exact in int32 and scaled once per segment; the result for
 * row o does not depend on how rows are blocked. Nothing is allocated.
 *
 * Why it is shaped like this (measured on the 3584 -> 18944 benchmark):
 * - Rows go in blocks of four: the event indices of a segment are loaded once
 *   per block instead of once per row, and the four sums are independent add
 *   chains that pipeline.
 * - The segment sums live in small non-inlined functions: inlined into the
 *   row loop, gcc ran out of registers and reloaded the row pointers from the
 *   stack on every event (~10 % slower).
 * - While a block is played, the next block's rows are prefetched (into L2),
 *   a few lines after each segment, spread so the whole next block is asked
 *   for by the time it starts: the gathers of a block then hit cache instead
 *   of waiting on memory (f32 +30 %, int8 +40 %).
 * - Loads go through memcpy (views may be unaligned); gcc turns them into
 *   plain moves. */
#include "sim/coded_internal.h"

#include <string.h>

#include "sim/loads.h"

/* SEG(NAME, ESZ, ACC, LOAD): sums of one segment over four rows (NAME) and
 * over one row (NAME##_1). ESZ is the element size, ACC the type of the sum,
 * LOAD(ptr) reads one element. e..pe are the +1 events, pe..ne the -1. */
#define SEG(NAME, ESZ, ACC, LOAD)                                                               \
    static __attribute__((noinline)) void NAME(const unsigned char *r0, size_t ld,              \
                                               const uint32_t *e, const uint32_t *pe,           \
                                               const uint32_t *ne, double c[4])                 \
    {                                                                                           \
        const unsigned char *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;                        \
        ACC c0 = 0, c1 = 0, c2 = 0, c3 = 0;                                                     \
        for (; e < pe; e++) {                                                                   \
            size_t j = (size_t)*e * (ESZ);                                                      \
            c0 += LOAD(r0 + j);                                                                 \
            c1 += LOAD(r1 + j);                                                                 \
            c2 += LOAD(r2 + j);                                                                 \
            c3 += LOAD(r3 + j);                                                                 \
        }                                                                                       \
        for (; e < ne; e++) {                                                                   \
            size_t j = (size_t)*e * (ESZ);                                                      \
            c0 -= LOAD(r0 + j);                                                                 \
            c1 -= LOAD(r1 + j);                                                                 \
            c2 -= LOAD(r2 + j);                                                                 \
            c3 -= LOAD(r3 + j);                                                                 \
        }                                                                                       \
        c[0] = (double)c0;                                                                      \
        c[1] = (double)c1;                                                                      \
        c[2] = (double)c2;                                                                      \
        c[3] = (double)c3;                                                                      \
    }                                                                                           \
    static __attribute__((noinline)) double NAME##_1(const unsigned char *r0, const uint32_t *e, \
                                                     const uint32_t *pe, const uint32_t *ne)    \
    {                                                                                           \
        ACC c0 = 0;                                                                             \
        for (; e < pe; e++)                                                                     \
            c0 += LOAD(r0 + (size_t)*e * (ESZ));                                                \
        for (; e < ne; e++)                                                                     \
            c0 -= LOAD(r0 + (size_t)*e * (ESZ));                                                \
        return (double)c0;                                                                      \
    }

SEG(seg_f32, 4, float, ld_f32)
SEG(seg_f64, 8, double, ld_f64)
SEG(seg_f16, 2, float, ld_f16)
SEG(seg_bf16, 2, float, ld_bf16)
SEG(seg_i8, 1, int32_t, ld_i8)
/* exact_sums: float weights summed in double (the language-model oracles) */
SEG(seg_f32_d, 4, double, ld_f32)
SEG(seg_f16_d, 2, double, ld_f16)
SEG(seg_bf16_d, 2, double, ld_bf16)

typedef void (*seg4_fn)(const unsigned char *, size_t, const uint32_t *, const uint32_t *,
                        const uint32_t *, double *);
typedef double (*seg1_fn)(const unsigned char *, const uint32_t *, const uint32_t *,
                          const uint32_t *);

/* Scale of row o, group g (1 without scales). */
static inline double scale_at(const unsigned char *S, size_t ng, size_t o, uint32_t g)
{
    return S ? (double)ld_f32(S + (o * ng + g) * 4) : 1.0;
}

/* The row loop, shared by every dtype: the per-segment call is indirect but
 * costs little next to the ~100 gathers a segment holds on the benchmark. */
static void rows(const nesim_coded_linear *L, const nesim_coded_plan *p, double vth,
                 const double *bias, float *y, size_t esz, seg4_fn seg4, seg1_fn seg1)
{
    const unsigned char *W = L->weight.data;
    const unsigned char *S = L->has_scales ? L->scales.data : NULL;
    const size_t ld = L->in * esz, out = L->out, ng = L->in / L->group, nseg = p->nseg;
    const uint32_t *idx = p->idx;
    /* Bytes of the next block to prefetch after each segment (whole lines). */
    const size_t pf_step = nseg ? (4 * ld + 64 * nseg - 1) / (64 * nseg) * 64 : 0;
    size_t o = 0;
    for (; o + 4 <= out; o += 4) {
        const unsigned char *r0 = W + o * ld;
        const unsigned char *pf = r0 + 4 * ld, *pf_end = o + 8 <= out ? pf + 4 * ld : pf;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t s = 0; s < nseg; s++) {
            const nesim_coded_seg *sg = p->seg + s;
            const uint32_t *e = idx + sg->off, *pe = e + sg->np, *ne = pe + sg->nn;
            double c[4];
            seg4(r0, ld, e, pe, ne, c);
            a0 += sg->wt * scale_at(S, ng, o, sg->g) * c[0];
            a1 += sg->wt * scale_at(S, ng, o + 1, sg->g) * c[1];
            a2 += sg->wt * scale_at(S, ng, o + 2, sg->g) * c[2];
            a3 += sg->wt * scale_at(S, ng, o + 3, sg->g) * c[3];
            for (const unsigned char *pq = pf + pf_step; pf < pq && pf < pf_end; pf += 64)
                __builtin_prefetch(pf, 0, 2);
        }
        y[o] = (float)(vth * a0 + (bias ? bias[o] : 0.0));
        y[o + 1] = (float)(vth * a1 + (bias ? bias[o + 1] : 0.0));
        y[o + 2] = (float)(vth * a2 + (bias ? bias[o + 2] : 0.0));
        y[o + 3] = (float)(vth * a3 + (bias ? bias[o + 3] : 0.0));
    }
    for (; o < out; o++) { /* the last out % 4 rows, one at a time */
        const unsigned char *r0 = W + o * ld;
        double a0 = 0;
        for (size_t s = 0; s < nseg; s++) {
            const nesim_coded_seg *sg = p->seg + s;
            const uint32_t *e = idx + sg->off, *pe = e + sg->np, *ne = pe + sg->nn;
            a0 += sg->wt * scale_at(S, ng, o, sg->g) * seg1(r0, e, pe, ne);
        }
        y[o] = (float)(vth * a0 + (bias ? bias[o] : 0.0));
    }
}

void nesim_coded_rows(const nesim_coded_linear *L, const nesim_coded_plan *p, double vth,
                      const double *bias, float *y)
{
    if (L->exact_sums) {
        switch (L->weight.dtype) {
        case NESIM_F32: rows(L, p, vth, bias, y, 4, seg_f32_d, seg_f32_d_1); return;
        case NESIM_F16: rows(L, p, vth, bias, y, 2, seg_f16_d, seg_f16_d_1); return;
        case NESIM_BF16: rows(L, p, vth, bias, y, 2, seg_bf16_d, seg_bf16_d_1); return;
        default: break; /* f64 and int8 sums are exact already */
        }
    }
    switch (L->weight.dtype) {
    case NESIM_F32: rows(L, p, vth, bias, y, 4, seg_f32, seg_f32_1); break;
    case NESIM_F64: rows(L, p, vth, bias, y, 8, seg_f64, seg_f64_1); break;
    case NESIM_F16: rows(L, p, vth, bias, y, 2, seg_f16, seg_f16_1); break;
    case NESIM_BF16: rows(L, p, vth, bias, y, 2, seg_bf16, seg_bf16_1); break;
    case NESIM_I8: rows(L, p, vth, bias, y, 1, seg_i8, seg_i8_1); break;
    default: break; /* rejected by nesim_coded_linear_init */
    }
}
