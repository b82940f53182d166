/* conv.h — event-driven coded 2-D convolution and value-domain pooling.
 *
 * conv2d codes its whole input tensor [C, H, W] of one sample like a coded
 * linear layer codes a row (sim/coding.h: one V_th per sample, mean|x|/k or
 * fixed; counts round half to even; the coding's steps), and plays the
 * spikes over virtual ticks t0 .. t0+T-1. Each event at input (c, y, x) fans
 * out implicitly through the shared kernel to exactly the outputs (o, y', x')
 * whose window covers it (computed as ranges, never scanned): one synaptic
 * operation per (event, output) pair; no per-synapse index. The kernel is
 * read in its stored precision (a borrowed view; nothing is copied).
 * Bitwise codings double the accumulators at each new step (MSB first).
 * Output y[o, y', x'] = V_th * acc + b[o] — equal to the dense convolution of
 * the played counts times V_th.
 *
 * Pools act on values (the previous layer's output, already a decoded spike
 * count times V_th): sum or mean over each window, no padding. They emit no
 * spikes and do no synaptic work. */
#ifndef NESIM_CONV_H
#define NESIM_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "net/tensor.h"
#include "sim/coding.h"

typedef struct nesim_conv2d {
    const char *name;
    size_t c, h, w;          /* input */
    size_t o, kh, kw;        /* kernel */
    size_t sh, sw, ph, pw;   /* stride, padding */
    size_t oh, ow;           /* output */
    nesim_tensor k;          /* [o, c, kh, kw]: a borrowed view, stored precision */
    double *b;               /* [o] or NULL (owned) */
} nesim_conv2d;

/* Validates shapes (weight [o, c, kh, kw] of F32, F64, F16, BF16 or I8;
 * bias [o]) against the input [c, h, w] and fills *L; the weight's data must
 * outlive the layer. Owns L->b (free with nesim_conv2d_free). */
int nesim_conv2d_init(nesim_conv2d *L, const char *name, const nesim_tensor *weight,
                      const nesim_tensor *bias, size_t c, size_t h, size_t w, size_t sh, size_t sw,
                      size_t ph, size_t pw, nesim_error *err);
void nesim_conv2d_free(nesim_conv2d *L);

/* The outputs that input (iy, ix) reaches along one axis: oy in [*lo, *hi]
 * (empty when *lo > *hi), with kernel row ky = iy + ph - oy * sh. */
void nesim_conv2d_span(size_t i, size_t pad, size_t k, size_t stride, size_t n_out, size_t *lo, size_t *hi);

/* One sample: x[c*h*w] -> y[o*oh*ow]. st (may be NULL) gets the same counters
 * as a coded linear layer (sops = the (event, output) pairs). */
int nesim_conv2d_forward(const nesim_conv2d *L, const nesim_coded_opts *o, const float *x, float *y,
                         nesim_coded_stats *st, nesim_error *err);

/* The dense convolution y = conv(x) + b, directly (the ANN path, and the
 * reference the coded forward is tested against). */
void nesim_conv2d_dense(const nesim_conv2d *L, const double *x, double *y);

/* Pooling over [c, h, w] with a kh x kw window and stride (sh, sw); avg
 * divides by kh*kw. Output size ((h-kh)/sh+1, (w-kw)/sw+1). */
void nesim_pool2d(const float *x, size_t c, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                  size_t sw, int avg, float *y);

#endif
