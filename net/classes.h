/* classes.h — per-neuron parameters, grouped: neurons of a population whose
 * per-neuron values are all equal share one set of derived constants (a
 * class), so a population with a per-neuron bias of 40 distinct values costs
 * 40 sets of constants, not one per neuron. */
#ifndef NESIM_NET_CLASSES_H
#define NESIM_NET_CLASSES_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* One parameter given per neuron: v[0..n) for a population of n neurons
 * (borrowed). */
typedef struct nesim_param_array {
    const char *name;
    const double *v;
} nesim_param_array;

/* Groups neurons 0..n-1 by their values of the na arrays (compared bit for
 * bit, -0 as +0). Fills *cls (n entries: neuron j's class), *rep (*n_cls
 * entries: the first neuron of each class) and *n_cls; classes are numbered
 * in order of first appearance, so the result does not depend on the sort.
 * The caller frees *cls and *rep. NESIM_ENOMEM on no memory. */
int nesim_param_classes(uint32_t n, const nesim_param_array *a, size_t na, uint32_t **cls, uint32_t **rep,
                        uint32_t *n_cls, nesim_error *err);

#endif
