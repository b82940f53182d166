/* lmtime.h — chip time of a language model, token by token.
 *
 * The spiked projections are mapped onto the chip (net/map.h): for each, a
 * group of input neurons (its coder: the graded unit beside the chip hands
 * it the vector, and it sends the spikes) and a group of output neurons,
 * joined by a dense edge. Graded work (norms, attention, graded projections
 * such as down_proj and lm_head) is priced for energy elsewhere and takes no
 * chip time here: a stated simplification, not a measurement. Every input
 * spike of a spiked projection is a spike of its coder at its virtual tick
 * (sim/lm.h: q, k and v play together, o_proj after them, ...), so a
 * token's chip time is the chip time of its ticks (eval/chiptime.h). */
#ifndef NESIM_EVAL_LMTIME_H
#define NESIM_EVAL_LMTIME_H

#include <stddef.h>
#include <stdint.h>

#include "eval/chiptime.h"
#include "net/chip.h"
#include "net/lm_graph.h"
#include "sim/lm.h"

typedef struct nesim_lm_timer nesim_lm_timer;

/* Maps the spiked projections of run r (graph g; both must outlive the
 * timer) on chip (with its latency section) and prepares model's timing.
 * NESIM_EINVAL when nothing is spiked or the chip cannot hold the model. */
int nesim_lm_timer_new(const nesim_chip *chip, const nesim_lm_graph *g, const nesim_lm_run *r, nesim_timing model,
                       nesim_lm_timer **out, nesim_error *err);
/* The observers that feed the timer; they call next (may be NULL) too.
 * Install with nesim_lm_run_set_sink. */
nesim_lm_sink nesim_lm_timer_sink(nesim_lm_timer *t, const nesim_lm_sink *next);
/* Closes the timing after `ticks` ticks; an error met while the run fed it
 * comes out here. */
int nesim_lm_timer_finish(nesim_lm_timer *t, int64_t ticks, nesim_chiptime_result *res, nesim_error *err);
/* After finish: token k's chip time (its ticks' steps), or 0. */
double nesim_lm_timer_token_s(const nesim_lm_timer *t, size_t token);
/* After finish: the chip time while projection proj plays (its ticks'
 * steps over all tokens; projections that play together share them). */
double nesim_lm_timer_proj_s(const nesim_lm_timer *t, size_t proj);
/* Cores and chips the mapping uses. */
void nesim_lm_timer_usage(const nesim_lm_timer *t, uint64_t *cores, uint64_t *chips);
void nesim_lm_timer_free(nesim_lm_timer *t);

#endif
