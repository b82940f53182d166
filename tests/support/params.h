/* params.h — tests describe neurons with one struct of every parameter
 * (as nesim once did); test_params() keeps the ones a model takes. */
#ifndef NESIM_TEST_PARAMS_H
#define NESIM_TEST_PARAMS_H

#include <stddef.h>

#include "neurons/neuron.h"
#include "neurons/threshold.h"

typedef struct test_bag {
    double tau_m, v_rest, v_thresh, v_reset, t_ref, tau_e, tau_i, tau_a, b, i_drive, rate_hz;
    int reset_subtract;
} test_bag;

/* The bag's values of the parameters `model` (with its alias's rule, or
 * `rule` when not NULL) takes, as named pairs in out (room for
 * NESIM_PARAM_MAX); returns how many. */
size_t test_params(const char *model, const char *rule, const test_bag *b, nesim_param *out);

/* nesim_dyn_init for a model name and a bag; fails the test on error. */
void test_dyn(nesim_dyn *d, const char *model, test_bag b, double tick_s);

#endif
