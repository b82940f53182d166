/* rebuild.c — what a replay reads back from a trace (see rebuild.h). */
#include "traces/rebuild.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "traces/sha256.h"

int nesim_rebuild_check_weights(const char *weights_json, int64_t run, nesim_error *err)
{
    if (!weights_json)
        return NESIM_OK;
    json_error_t je;
    json_t *arr = json_loads(weights_json, 0, &je);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return nesim_fail(err, NESIM_EINVAL, "run %lld: unreadable weight list", (long long)run);
    }
    int rc = NESIM_OK;
    size_t i;
    json_t *w;
    json_array_foreach(arr, i, w) {
        const char *file = json_string_value(json_object_get(w, "file"));
        const char *hash = json_string_value(json_object_get(w, "hash"));
        char now[65];
        nesim_error e;
        if (!file || !hash)
            continue;
        if (nesim_sha256_file(file, now, &e)) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: weight file of run %lld is missing or unreadable", file,
                            (long long)run);
            break;
        }
        if (strcmp(now, hash) != 0) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: changed since run %lld was recorded (sha256 %.12s..., now %.12s...)",
                            file, (long long)run, hash, now);
            break;
        }
    }
    json_decref(arr);
    return rc;
}

int nesim_rebuild_counts(nesim_trace *db, const nesim_trace_run *run, int layer, nesim_coding coding, size_t S,
                        size_t in, double *cnt, double *vth, int64_t *t0, nesim_error *err)
{
    nesim_trace_code_row *codes = NULL;
    size_t nc = 0;
    int rc = nesim_trace_codes(db, run->id, layer, &codes, &nc, err);
    if (rc)
        return rc;
    if (nc != S)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld recorded how layer %d coded %zu of its %zu samples (table codes)",
                        nesim_trace_path(db), (long long)run->id, layer, nc, S);
    int64_t *steps = calloc(S + 1, sizeof *steps);
    if (!rc && !steps)
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (size_t s = 0; !rc && s < S; s++) {
        const nesim_trace_code_row *c = &codes[s];
        /* a bitwise train of T steps codes counts below 2^T: beyond 62 no count is an integer we hold */
        int64_t steps_max = nesim_coding_is_bitwise(coding) ? 62 : INT64_C(1) << 31;
        if (c->sample != (int64_t)s || c->steps < 0 || c->steps > steps_max || c->t0 < 0 || (s && c->t0 < t0[s - 1]) ||
            !(c->vth > 0) || !isfinite(c->vth))
            rc = nesim_fail(err, NESIM_EINVAL, "%s: table codes, run %lld, layer %d, sample %lld: bad t0 %lld, steps "
                            "%lld or vth %g",
                            nesim_trace_path(db), (long long)run->id, layer, (long long)c->sample, (long long)c->t0,
                            (long long)c->steps, c->vth);
        else
            vth[s] = c->vth, t0[s] = c->t0, steps[s] = c->steps;
    }
    free(codes);
    nesim_trace_spike_iter *it = NULL;
    if (!rc)
        rc = nesim_trace_spikes_open(db, run->id, layer, 0, NESIM_TRACE_TICK_MAX, &it, err);
    size_t s = 0;
    for (bool got = true; !rc && got;) {
        nesim_trace_spike_rec sp;
        if ((rc = nesim_trace_spikes_next(it, &sp, &got, err)) || !got)
            break;
        while (s + 1 < S && sp.tick >= t0[s + 1])
            s++;
        int64_t t = sp.tick - t0[s];
        if (t < 0 || t >= steps[s] || sp.neuron < 0 || (size_t)sp.neuron >= in) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: a spike at tick %lld (neuron %lld) lies outside its sample",
                            nesim_trace_path(db), (long long)run->id, (long long)sp.tick, (long long)sp.neuron);
            break;
        }
        double w = nesim_coding_step_weight(coding, steps[s], t);
        cnt[s * in + (size_t)sp.neuron] += sp.sign * w; /* integers below 2^53: exact */
    }
    nesim_trace_spikes_close(it);
    free(steps);
    return rc;
}

