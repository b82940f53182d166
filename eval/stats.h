/* stats.h — firing statistics streamed from spikes, O(neurons) memory.
 *
 * Per neuron: spike count and Welford mean/variance of inter-spike intervals,
 * so no spike list is kept. Summaries (mean rate, mean ISI CV over neurons
 * with at least two intervals) use GSL's statistics functions. */
#ifndef NESIM_STATS_H
#define NESIM_STATS_H

#include <stdint.h>

#include "base/error.h"

typedef struct nesim_isi {
    uint32_t n;
    int64_t *first, *last; /* each neuron's first and last spike tick (valid when count > 0) */
    uint64_t *count;
    double *mean, *m2;
} nesim_isi;

int nesim_isi_init(nesim_isi *s, uint32_t n, nesim_error *err);
void nesim_isi_free(nesim_isi *s);
/* Adds a spike of neuron i (0 <= i < n) at tick t; ticks per neuron ascend. */
void nesim_isi_add(nesim_isi *s, uint32_t i, int64_t t);

typedef struct nesim_isi_summary {
    uint64_t spikes;
    double mean_rate_hz;  /* spikes / (neurons * duration) */
    double cv_mean;       /* mean over neurons with >= 2 ISIs; NaN if none */
    uint32_t cv_neurons;  /* neurons contributing to cv_mean */
    uint32_t silent;      /* neurons that never fired */
} nesim_isi_summary;

int nesim_isi_summarise(const nesim_isi *s, double duration_s, nesim_isi_summary *out,
                        nesim_error *err);

#endif
