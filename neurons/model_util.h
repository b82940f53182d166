/* model_util.h — helpers shared by the neuron model files (internal). */
#ifndef NESIM_MODEL_UTIL_H
#define NESIM_MODEL_UTIL_H

#include <math.h>

#include "neurons/crossing.h"
#include "neurons/neuron.h"

int nesim_check_pos(double v, const char *name, nesim_error *err);
int nesim_check_finite(double v, const char *name, nesim_error *err);
/* v_thresh and v_reset finite, v_reset < v_thresh. */
int nesim_check_reset(const nesim_neuron_params *p, nesim_error *err);
/* After a spike: v = v_reset, or v -= threshold - v_reset in subtract mode. */
void nesim_reset_v(const nesim_dyn *d, double *v, double threshold);

/* The tick from which v evolves: v is frozen while refractory. */
static inline int64_t nesim_v_from(int64_t from, int64_t ref_until)
{
    return from > ref_until ? from : ref_until;
}

#endif
