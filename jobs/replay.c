/* replay.c — replaying a recorded layer run from one of its layers (see replay.h). */
#include "jobs/replay.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "eval/cost.h"
#include "eval/report.h"
#include "net/chip.h"
#include "net/spec.h"
#include "sim/infer.h"
#include "traces/record.h"
#include "traces/rebuild.h"

/* Layer `layer`'s inputs of every sample, rebuilt from its recorded spikes. */
static int rebuild_inputs(nesim_trace *db, const nesim_trace_run *run, int layer, nesim_coding coding, size_t S,
                          size_t in, float *x, double *vth, int64_t *t0, nesim_error *err)
{
    double *cnt = calloc(S * in + 1, sizeof *cnt);
    if (!cnt)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = nesim_rebuild_counts(db, run, layer, coding, S, in, cnt, vth, t0, err);
    for (size_t k = 0; !rc && k < S * in; k++) {
        x[k] = (float)(cnt[k] * vth[k / in]);
        if (!isfinite(x[k]))
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld, layer %d: sample %zu's input %zu rebuilds to %g (table "
                            "codes: its threshold times its spike count)", nesim_trace_path(db), (long long)run->id, layer,
                            k / in, k % in, (double)x[k]);
    }
    free(cnt);
    return rc;
}

int nesim_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    nesim_trace *db = NULL;
    nesim_trace_run run = {0};
    nesim_spec *spec = NULL;
    nesim_infer *m = NULL;
    float *x = NULL, *y = NULL;
    double *vth = NULL;
    int64_t *t0 = NULL;
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    nesim_infer_report rep;
    nesim_recorder *rec = NULL;
    json_t *r = NULL;
    int layer = -1;
    int rc = nesim_trace_open(o->db, NESIM_TRACE_READ, &db, err);
    if (!rc)
        rc = nesim_trace_get_run(db, o->run, &run, err);
    if (!rc && run.spec_text) { /* a language model's run replays through its own engine */
        json_t *j = json_loads(run.spec_text, 0, NULL);
        int lm = json_is_object(j) && json_object_get(j, "nesim_lm_spec");
        int nir = json_is_object(j) && json_object_get(j, "nesim_nir");
        json_decref(j);
        if (nir) { /* a NIR graph's run: through the NIR runner */
            nesim_trace_run_clear(&run);
            nesim_trace_close(db);
            return nesim_nir_replay(o, report, err);
        }
        if (lm) {
            nesim_trace_run_clear(&run);
            nesim_trace_close(db);
            return nesim_lm_replay(o, report, err);
        }
    }
    if (!rc && o->output)
        rc = nesim_fail(err, NESIM_EINVAL, "--output: only a language-model run's replay writes logits");
    if (!rc && (run.kind != NESIM_TRACE_LAYERS || run.record != NESIM_TRACE_SPIKES || run.status != NESIM_TRACE_COMPLETE))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld must be a complete layer run recorded with --record spikes",
                        o->db, (long long)o->run);
    if (!rc && !run.spec_text)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld stored no spec", o->db, (long long)o->run);
    if (!rc)
        rc = nesim_rebuild_check_weights(run.weights, run.id, err);
    if (!rc) {
        char *f = strdup(run.spec_file ? run.spec_file : "."), *dir = f ? dirname(f) : ".";
        rc = nesim_spec_parse(run.spec_text, strlen(run.spec_text), run.spec_file ? run.spec_file : "spec", dir, &spec,
                              err);
        free(f);
    }
    if (!rc)
        rc = nesim_infer_open(spec, &m, err);
    if (!rc)
        rc = nesim_trace_find_layer(db, run.id, o->from_layer, &layer, err);
    if (!rc && (layer < 0 || (size_t)layer >= nesim_infer_layers(m)))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: layer %d is not a layer of its spec (%zu layers)", o->db,
                        (long long)run.id, layer, m ? nesim_infer_layers(m) : 0);
    if (!rc && run.samples < 1)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld recorded no samples", o->db, (long long)run.id);
    size_t S = rc ? 0 : (size_t)run.samples, in = rc ? 0 : nesim_infer_layer_inputs(m, (size_t)layer);
    if (!rc && (S > ((size_t)1 << 32) || (in && S > ((size_t)1 << 40) / in)))
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: %zu samples of %zu inputs are too many to replay", o->db,
                        (long long)run.id, S, in);
    if (!rc) { /* the run's sample count is a number in a file: it must agree with the codes before it sizes anything */
        int64_t coded = -1;
        rc = nesim_trace_code_count(db, run.id, layer, &coded, err);
        if (!rc && coded != (int64_t)S)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: table runs, run %lld: %zu samples, but table codes holds %lld for "
                            "layer %d", o->db, (long long)run.id, S, (long long)coded, layer);
        uint64_t avail = nesim_mem_available();
        double need = (double)S * (double)(in + nesim_infer_output_size(m)) * 4 + (double)S * 16;
        char a[32], b[32];
        if (!rc && avail && need > (double)avail)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: run %lld: replaying %zu samples needs about %s; %s available", o->db,
                            (long long)run.id, S, nesim_mem_format(need, a, sizeof a),
                            nesim_mem_format((double)avail, b, sizeof b));
    }
    if (!rc) {
        x = calloc(S * in + 1, sizeof *x);
        vth = calloc(S + 1, sizeof *vth);
        t0 = calloc(S + 1, sizeof *t0);
        y = calloc(S * nesim_infer_output_size(m) + 1, sizeof *y);
        if (!x || !vth || !t0 || !y)
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = rebuild_inputs(db, &run, layer, spec->layers[layer].coding, S, in, x, vth, t0, err);
    const char *chipname = o->chip ? o->chip : run.chip ? run.chip : "loihi";
    const char *densename = o->dense ? o->dense : run.dense ? run.dense : "dense-45nm";
    if (!rc && !(rc = nesim_chip_load(chipname, NULL, &chip, err)))
        rc = nesim_chip_load(densename, NULL, &dense, err);
    nesim_trace_close(db); /* the recorder may write the same file */
    db = NULL;
    const char *out = o->trace ? o->trace : o->db;
    if (!rc) {
        char note[128];
        snprintf(note, sizeof note, "replay of run %lld from layer %d", (long long)run.id, layer);
        nesim_record_opts ro = {.path = out, .level = o->record, .spec = spec, .chip = chip->name,
                                .dense = dense->name, .seed = run.seed, .parent_run = run.id, .note = note};
        if (!(rc = nesim_record_begin(&ro, m, NULL, &rec, err))) {
            nesim_infer_sink sk = nesim_record_infer_sink(rec);
            nesim_infer_set_sink(m, &sk);
        }
    }
    if (!rc)
        rc = nesim_infer_run_from(m, (size_t)layer, x, vth, t0, S, y, o->coding, o->k, &rep, err);
    if (!rc && !(rc = nesim_cost_layers(chip, dense, m, &rep, spec->tick, &cost, err)))
        costp = &cost;
    if (!rc && !(r = nesim_report_layers(spec, &rep, costp, NULL)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
    if (rec) {
        int64_t id = nesim_record_run_id(rec);
        nesim_error e2 = {0};
        int rc2 = nesim_record_end(rec, r, costp, rc ? -1 : rep.samples, rc ? -1 : rep.ticks,
                                   rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE, &e2);
        if (!rc && rc2)
            rc = rc2, *err = e2;
        if (!rc) {
            json_t *rp = json_object();
            json_object_set_new(rp, "parent_run", json_integer(run.id));
            json_object_set_new(rp, "from_layer", json_integer(layer));
            json_object_set_new(rp, "from_layer_name", json_string(spec->layers[layer].name));
            json_object_set_new(rp, "trace", json_string(out));
            json_object_set_new(rp, "run", json_integer(id));
            json_object_set_new(r, "replay", rp);
        }
    }
    if (rc)
        json_decref(r);
    else
        *report = r;
    if (costp)
        nesim_cost_free(costp);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    free(x), free(y), free(vth), free(t0);
    nesim_infer_close(m);
    nesim_spec_free(spec);
    nesim_trace_run_clear(&run);
    nesim_trace_close(db);
    return rc;
}
