/* model_util.h — helpers shared by the neuron model files (internal). */
#ifndef NESIM_MODEL_UTIL_H
#define NESIM_MODEL_UTIL_H

#include <math.h>

#include "neurons/crossing.h"
#include "neurons/neuron.h"
#include "neurons/population.h"
#include "neurons/threshold.h"

/* v_reset < v_thresh (both are the population's common values). */
int nesim_check_reset(const nesim_dyn *d, nesim_error *err);

/* Common parameter table entries, by name (the registry reads these names). */
#define NESIM_PDEF_V_THRESH {"v_thresh", "V", NAN, 0, "threshold (the fixed rule's; the adaptive rule's baseline)"}
#define NESIM_PDEF_V_RESET {"v_reset", "V", 0, 0, "reset value (or the level subtraction resets to)"}
#define NESIM_PDEF_T_REF {"t_ref", "s", 0, NESIM_P_NONNEG, "refractory period"}
#define NESIM_PDEF_RESET_SUBTRACT                                                                 \
    {"reset_subtract", "", 0, NESIM_P_BOOL, "reset by subtracting threshold - v_reset instead of to v_reset"}

#endif
