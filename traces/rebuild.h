/* rebuild.h — what a replay reads back from a trace: the check that a run's
 * weight files are still the ones it ran with, and a coded layer's played
 * input counts rebuilt exactly from its recorded spikes and codes rows. */
#ifndef NESIM_TRACES_REBUILD_H
#define NESIM_TRACES_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "sim/coding.h"
#include "traces/store.h"

/* Every weight file of the run (the runs table's JSON list) must still be
 * there with the same SHA-256; NESIM_EINVAL naming the first that is not. */
int nesim_rebuild_check_weights(const char *weights_json, int64_t run, nesim_error *err);

/* Layer `layer`'s played input counts of S samples, rebuilt from its spikes
 * and codes rows into cnt[s * in + i] (zeroed by the caller), with each
 * sample's threshold vth[s] and first tick t0[s]. Every value read is checked
 * (NESIM_EINVAL naming the table, run and row). */
int nesim_rebuild_counts(nesim_trace *db, const nesim_trace_run *run, int layer, nesim_coding coding, size_t S,
                        size_t in, double *cnt, double *vth, int64_t *t0, nesim_error *err);

#endif
