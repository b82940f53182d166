/* nir_replay.c — `nesim replay` of a NIR graph's run: jobs/nir.h's job with a replay source. */
#include <jansson.h>

#include "jobs/nir.h"
#include "jobs/replay.h"

int nesim_nir_replay(const nesim_replay_opts *o, json_t **report, nesim_error *err)
{
    *report = NULL;
    if (o->coding >= 0 || o->k > 0 || o->output)
        return nesim_fail(err, NESIM_EINVAL, "%s: run %lld is a NIR graph's: --coding, --k and --output do not "
                          "apply (its neurons are the graph's)", o->db, (long long)o->run);
    if (!o->from_layer)
        return nesim_fail(err, NESIM_EINVAL, "give --from-layer L (a spiking node of the graph)");
    nesim_nir_job_opts jo;
    nesim_nir_job_opts_init(&jo);
    jo.replay_db = o->db;
    jo.replay_run = o->run;
    jo.replay_layer = o->from_layer;
    jo.parent_run = o->run;
    jo.chip = o->chip;
    jo.trace = o->trace ? o->trace : o->db;
    jo.record = o->record;
    jo.progress = o->progress;
    jo.user = o->user;
    json_t *rep = NULL;
    int rc = nesim_nir_job(&jo, &rep, err);
    if (rc)
        return rc;
    json_t *tr = json_object_get(rep, "trace");
    json_object_set_new(rep, "replay",
                        json_pack("{sIsssOsO}", "parent_run", (json_int_t)o->run, "from_layer", o->from_layer,
                                  "trace", json_object_get(tr, "file"), "run", json_object_get(tr, "run")));
    *report = rep;
    return NESIM_OK;
}
