/* coding.h — how a layer's input becomes spikes: the one path that linear,
 * conv2d and streamed layers share (threshold, counts, steps, per-channel
 * spikes, the spike observer, count statistics).
 *
 * One sample is one input row x[0..in) (a conv2d input tensor flattened):
 *   V_th = mean(|x|) / k clamped to [1e-5, 1e4] (nesim_vth_adaptive), or a
 *          fixed threshold given by the caller;
 *   N_i  = round-half-to-even(x_i / V_th) (nesim_spike_count_checked);
 *   the played count is nesim_coding_representable(coding, N_i) (binary and
 *          unsigned bitwise clip N < 0 to 0; the clipping is counted);
 *   T    = nesim_coding_steps(coding, max_i |played N_i|);
 *   input i emits s_t(i) in {-1, 0, +1} at tick t0 + t, t in [0, T). */
#ifndef NESIM_SIM_CODING_H
#define NESIM_SIM_CODING_H

#include <stddef.h>
#include <stdint.h>

#include "base/comm.h"
#include "base/error.h"
#include "neurons/coder.h"

/* Per-call options of a coded layer. Start from nesim_coded_opts_init(). */
typedef struct nesim_coded_opts {
    nesim_coding coding;
    double k;            /* adaptive threshold divisor (> 0, finite); default 3 */
    double vth;          /* > 0: fixed threshold, used as given; 0: adaptive */
    int64_t t0;          /* tick of step 0 of the first sample (>= 0) */
    /* Bitwise codings: play at least this many steps (0 .. NESIM_CODING_BITS_MAX;
     * 0: the row's own T). SpikingBrain takes T over the whole tensor a
     * projection is given (batch x sequence), so a row with small counts plays
     * leading zero bits: the same counts and outputs, later spikes. */
    int64_t min_steps;
    /* Optional per-tick activity: step_events[j] receives the number of
     * events at tick t0 + j for j < min(step_events_len, total steps); other
     * entries are left alone. */
    int64_t *step_events;
    size_t step_events_len;
    /* Optional: called once per step, in tick order, empty steps included. */
    void (*on_step)(void *user, int64_t tick, int64_t events);
    void *user;
    /* Optional: spikes per input channel are added to chan_spikes[0..in). */
    uint64_t *chan_spikes;
    /* Optional: every input spike, in tick order (channels ascending within a tick). */
    void (*on_spike)(void *user, uint32_t channel, int64_t tick, int sign);
    void *spike_user;
    /* Threads to play the events through the weight (>= 1; default 1):
     * output rows are split between them, and the result is the same bits
     * for any count. */
    int threads;
    /* Optional: ranks to split the output rows over (base/comm.h): each
     * computes its block of rows and they exchange them, the same bits for
     * any count. NULL: this process computes every row. */
    nesim_comm *comm;
} nesim_coded_opts;

/* Bitwise-bidirectional (the released model's coding), k = 3, adaptive
 * threshold, t0 = 0, no observers. */
void nesim_coded_opts_init(nesim_coded_opts *o);

#define NESIM_CODED_HIST 8 /* histogram bins |N| = 0..7, then one for |N| >= 8 */

typedef struct nesim_coded_stats {
    int64_t samples;
    int64_t inputs;      /* in * samples */
    int64_t spikes;      /* events: sum over inputs of nesim_coding_spikes */
    int64_t sops;        /* spikes * fan-out */
    int64_t steps;       /* T (several samples: the sum of their T) */
    double vth;          /* V_th (several samples: their mean, once finished) */
    int64_t max_count;   /* largest |played N| */
    int64_t clipped;     /* negative counts played as 0 (binary, bitwise) */
    int64_t silent;      /* inputs whose count N is 0 (clipped ones excluded) */
    int64_t hist[NESIM_CODED_HIST + 1]; /* over |N| (the count, before clipping) */
    double frac_small;   /* fraction of inputs with |N| in [0, 7] */
    double spikes_per_channel; /* spikes / inputs */
    int64_t first_tick, last_tick; /* ticks of the first and last event, or -1 */
    int64_t t_end;       /* t0 + steps: where a following sample would start */
    int64_t updates;     /* NeuroBench membrane updates of the layer's neurons
                            (every neuron at a sample's first step, then those an
                            event reaches through a nonzero weight) */
} nesim_coded_stats;

/* Zeroed, with no first/last tick. */
void nesim_coded_stats_init(nesim_coded_stats *st);
/* acc += s: counts summed, max_count and t_end the larger, first_tick the
 * earlier and last_tick the later of those that exist; vth summed (see
 * finish). */
void nesim_coded_stats_add(nesim_coded_stats *acc, const nesim_coded_stats *s);
/* After the last add: vth becomes the mean over samples, frac_small and
 * spikes_per_channel follow from the totals. */
void nesim_coded_stats_finish(nesim_coded_stats *st);

/* NESIM_EINVAL naming `kind` 'name' for an invalid coding, threshold, k, t0
 * or step_events. */
int nesim_code_check(const char *kind, const char *name, const nesim_coded_opts *o, nesim_error *err);

/* Codes one sample: rep[0..in) receives the played counts, *vth the
 * threshold, *T the steps; st (zeroed here) the count statistics (samples 1,
 * inputs, vth, max_count, clipped, silent, hist). NaN/Inf activations are
 * rejected naming the sample and input. */
int nesim_code_row(const char *kind, const char *name, const nesim_coded_opts *o, const float *x, size_t in,
                   size_t sample, int64_t *rep, double *vth, int64_t *T, nesim_coded_stats *st, nesim_error *err);

/* The spikes of played counts rep[0..in) over T steps from tick t0: their
 * number (NESIM_EINVAL if it overflows), added per channel to
 * o->chan_spikes, and each one given to o->on_spike in tick order. */
int nesim_code_emit(const char *kind, const char *name, const nesim_coded_opts *o, const int64_t *rep, size_t in,
                    int64_t T, int64_t t0, size_t sample, int64_t *events, nesim_error *err);

#endif
