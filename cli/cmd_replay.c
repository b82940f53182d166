/* cmd_replay.c — `nesim replay DB --run N --from-layer L`: the recorded
 * input spikes of layer L drive L and the layers after it again, as a new
 * run whose parent is N — under another chip, coding or threshold if asked.
 *
 * Layer L's inputs are rebuilt exactly from its spikes: per sample, the
 * count of each channel is the sum of sign x step weight over its spikes,
 * and the input value is count x the recorded threshold; the layer then
 * runs with that threshold fixed, so its output — and everything
 * downstream, if nothing was changed — is bit-for-bit the original. */
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/trace_run.h"
#include "traces/sha256.h"

static const char help[] =
    "usage: nesim replay DB --run N --from-layer L [options]\n"
    "\n"
    "Replays run N of trace DB from layer L (a name or an index): L's recorded input\n"
    "spikes drive L and every layer after it again, as a new run whose parent is N.\n"
    "Weights are found through the stored spec; a weight file that moved or changed\n"
    "since the run (SHA-256) is an error.\n"
    "\n"
    "options:\n"
    "  --chip NAME|PATH     price the replay on another chip (default: the run's)\n"
    "  --dense NAME|PATH    dense baseline profile (default dense-45nm)\n"
    "  --coding C           input coding of the layers after L\n"
    "  --k K                adaptive-threshold divisor of the layers after L\n"
    "  --trace OUT.db       record the replay (default: into DB itself)\n"
    "  --record LEVEL       none, activity or spikes (default spikes)\n"
    "  --json               print the comparison as JSON\n"
    "  --quiet              no progress on stderr\n";

typedef struct replay_opts {
    const char *db, *layer, *chip, *dense, *trace, *record;
    uint64_t run;
    int coding, json, has_run;
    double k;
} replay_opts;

static int parse(int argc, char **argv, replay_opts *o, nesim_error *err)
{
    memset(o, 0, sizeof *o);
    o->coding = -1;
    o->dense = "dense-45nm";
    o->record = "spikes";
    int rc = NESIM_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--quiet"))
            continue;
        if (!strcmp(a, "--run")) {
            rc = cli_u64(a, v, &o->run, err), o->has_run = 1, i++;
            continue;
        }
        if (!strcmp(a, "--k")) {
            if (!(rc = cli_double(a, v, &o->k, err)) && !(o->k > 0))
                rc = nesim_fail(err, NESIM_EINVAL, "--k: must be > 0");
            i++;
            continue;
        }
        if (!strcmp(a, "--coding")) {
            nesim_coding c;
            if (!v || nesim_coding_parse(v, &c, err))
                return nesim_fail(err, NESIM_EINVAL, "--coding: expected binary, ternary, bitwise, "
                                                     "bitwise-bidirectional or bitwise-twos-complement");
            o->coding = (int)c, i++;
            continue;
        }
        if (!strcmp(a, "--from-layer"))
            dst = &o->layer;
        else if (!strcmp(a, "--chip"))
            dst = &o->chip;
        else if (!strcmp(a, "--dense"))
            dst = &o->dense;
        else if (!strcmp(a, "--trace"))
            dst = &o->trace;
        else if (!strcmp(a, "--record"))
            dst = &o->record;
        if (dst) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "%s: expected a value", a);
            *dst = v, i++;
        } else if (a[0] == '-' || o->db) {
            rc = nesim_fail(err, NESIM_EINVAL, "unexpected argument '%s' (see nesim replay --help)", a);
        } else {
            o->db = a;
        }
    }
    if (!rc && (!o->db || !o->has_run || !o->layer))
        rc = nesim_fail(err, NESIM_EINVAL, "usage: nesim replay DB --run N --from-layer L (see --help)");
    return rc;
}

/* Every weight file of the run must still be there with the same SHA-256. */
static int check_weights(const char *weights_json, int64_t run, nesim_error *err)
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
    json_array_foreach(arr, i, w)
    {
        const char *file = json_string_value(json_object_get(w, "file"));
        const char *hash = json_string_value(json_object_get(w, "hash"));
        char now[65];
        nesim_error e;
        if (!file || !hash)
            continue;
        if (nesim_sha256_file(file, now, &e)) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: weight file of run %lld is missing or unreadable", file, (long long)run);
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

int cmd_replay(int argc, char **argv)
{
    nesim_error err = {0};
    replay_opts o;
    int rc = parse(argc, argv, &o, &err);
    if (rc < 0) {
        fputs(help, stdout);
        return CLI_OK;
    }
    nesim_trace *db = NULL;
    nesim_trace_run run = {0};
    nesim_spec *spec = NULL;
    nesim_infer *m = NULL;
    nesim_trace_value *vals = NULL;
    size_t nvals = 0;
    float *x = NULL, *y = NULL;
    double *vth = NULL;
    int64_t *t0 = NULL, *steps = NULL, *cnt = NULL;
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    nesim_infer_report rep;
    int layer = -1, tracing = 0;
    trace_run tr;
    if (!rc)
        rc = nesim_trace_open(o.db, NESIM_TRACE_READ, &db, &err);
    if (!rc)
        rc = nesim_trace_get_run(db, (int64_t)o.run, &run, &err);
    if (!rc && (run.kind != NESIM_TRACE_LAYERS || run.record != NESIM_TRACE_SPIKES || run.status != NESIM_TRACE_COMPLETE))
        rc = nesim_fail(&err, NESIM_EINVAL, "%s: run %llu must be a complete layer run recorded with --record spikes",
                        o.db, (unsigned long long)o.run);
    if (!rc && !run.spec_text)
        rc = nesim_fail(&err, NESIM_EINVAL, "%s: run %llu stored no spec", o.db, (unsigned long long)o.run);
    if (!rc)
        rc = check_weights(run.weights, run.id, &err);
    if (!rc) {
        char *f = strdup(run.spec_file ? run.spec_file : "."), *dir = f ? dirname(f) : ".";
        rc = nesim_spec_parse(run.spec_text, strlen(run.spec_text), run.spec_file ? run.spec_file : "spec", dir,
                              &spec, &err);
        free(f);
    }
    if (!rc)
        rc = nesim_infer_open(spec, &m, &err);
    if (!rc)
        rc = nesim_trace_find_layer(db, run.id, o.layer, &layer, &err);
    size_t S = run.samples > 0 ? (size_t)run.samples : 0, in = 0;
    if (!rc) {
        in = nesim_infer_layer_inputs(m, (size_t)layer);
        x = calloc(S * in + 1, sizeof *x);
        vth = calloc(S + 1, sizeof *vth);
        t0 = calloc(S + 1, sizeof *t0);
        steps = calloc(S + 1, sizeof *steps);
        cnt = calloc(in + 1, sizeof *cnt);
        y = calloc(S * nesim_infer_output_size(m) + 1, sizeof *y);
        if (!x || !vth || !t0 || !steps || !cnt || !y)
            rc = nesim_fail(&err, NESIM_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = nesim_trace_metrics(db, run.id, &vals, &nvals, &err);
    size_t found = 0;
    for (size_t i = 0; !rc && i < nvals; i++) {
        unsigned long long s;
        char what[16];
        if (vals[i].layer != layer || sscanf(vals[i].name, "%15[a-z0-9]@%llu", what, &s) != 2 || s >= S)
            continue;
        if (!strcmp(what, "vth"))
            vth[s] = vals[i].value, found++;
        else if (!strcmp(what, "t0"))
            t0[s] = (int64_t)vals[i].value;
        else if (!strcmp(what, "steps"))
            steps[s] = (int64_t)vals[i].value;
    }
    if (!rc && found != S)
        rc = nesim_fail(&err, NESIM_EINVAL, "%s: run %lld has no per-sample thresholds for layer %d", o.db,
                        (long long)run.id, layer);
    /* rebuild the counts of every sample from its spikes */
    nesim_coding coding = spec && layer >= 0 ? spec->layers[layer].coding : NESIM_CODE_BINARY;
    nesim_trace_spike_iter *it = NULL;
    if (!rc)
        rc = nesim_trace_spikes_open(db, run.id, layer, 0, NESIM_TRACE_TICK_MAX, &it, &err);
    size_t s = 0;
    for (bool got = true; !rc && got;) {
        nesim_trace_spike_rec sp;
        if ((rc = nesim_trace_spikes_next(it, &sp, &got, &err)) || !got)
            break;
        while (s + 1 < S && sp.tick >= t0[s + 1])
            s++;
        int64_t t = sp.tick - t0[s];
        if (t < 0 || t >= steps[s] || sp.neuron < 0 || (size_t)sp.neuron >= in) {
            rc = nesim_fail(&err, NESIM_EINVAL, "%s: run %lld: a spike at tick %lld lies outside its sample",
                            o.db, (long long)run.id, (long long)sp.tick);
            break;
        }
        double w = nesim_coding_step_weight(coding, steps[s], t);
        x[s * in + (size_t)sp.neuron] += (float)(sp.sign * w); /* integers: exact */
    }
    nesim_trace_spikes_close(it);
    for (size_t k = 0; !rc && k < S * in; k++)
        x[k] = (float)((double)x[k] * vth[k / in]);
    const char *chipname = o.chip ? o.chip : run.chip ? run.chip : "loihi";
    if (!rc && o.trace == NULL)
        o.trace = o.db;
    if (!rc) {
        char note[128];
        snprintf(note, sizeof note, "replay of run %lld from layer %d", (long long)run.id, layer);
        rc = trace_run_begin(&tr, o.trace, o.record, spec, m, NULL, chipname, run.seed, run.id, note, &err);
        tracing = !rc;
        if (tracing) {
            nesim_infer_sink sk = trace_run_infer_sink(&tr);
            nesim_infer_set_sink(m, &sk);
        }
    }
    if (!rc)
        rc = nesim_infer_run_from(m, (size_t)layer, x, vth, t0, S, y, o.coding, o.k, &rep, &err);
    if (!rc && !(rc = nesim_chip_load(chipname, NULL, &chip, &err)) && !(rc = nesim_chip_load(o.dense, NULL, &dense, &err)) &&
        !(rc = nesim_cost_layers(chip, dense, m, &rep, spec->tick, &cost, &err)))
        costp = &cost;
    if (tracing) {
        nesim_error e2 = {0};
        int rc2 = trace_run_end_layers(&tr, rc ? NULL : &rep, costp, rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE, &e2);
        if (!rc && rc2)
            rc = rc2, err = e2;
    }
    if (!rc) {
        if (o.json) {
            printf("{\"parent_run\":%lld,\"from_layer\":%d,\"chip\":\"%s\",\"layers\":[", (long long)run.id, layer, chipname);
            for (size_t i = (size_t)layer; i < rep.n_layers; i++)
                printf("%s{\"name\":\"%s\",\"spikes\":%lld,\"sops\":%lld,\"energy_j\":%.9g}", i > (size_t)layer ? "," : "",
                       rep.layers[i].name, (long long)rep.layers[i].st.spikes, (long long)rep.layers[i].st.sops,
                       costp ? costp->layer[i].e.total : 0.0);
            printf("],\"energy_j\":%.9g}\n", costp ? costp->energy.total : 0.0);
        } else {
            printf("nesim replay: run %lld of %s from layer %d (%s), %zu samples, chip %s\n\n", (long long)run.id, o.db,
                   layer, rep.layers[layer].name, S, chipname);
            printf("  %-10s %14s %16s %12s\n", "layer", "spikes", "SOPs", "energy J");
            for (size_t i = (size_t)layer; i < rep.n_layers; i++)
                if (rep.layers[i].coding)
                    printf("  %-10s %14lld %16lld %12.4g\n", rep.layers[i].name, (long long)rep.layers[i].st.spikes,
                           (long long)rep.layers[i].st.sops, costp ? costp->layer[i].e.total : 0.0);
            printf("\n  recorded as a new run in %s (compare: nesim trace diff %s %lld <new run>)\n", o.trace, o.trace,
                   (long long)run.id);
        }
    }
    if (rc)
        fprintf(stderr, "nesim replay: %s\n", err.msg);
    if (costp)
        nesim_cost_free(costp);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_trace_values_free(vals, nvals);
    free(x), free(y), free(vth), free(t0), free(steps), free(cnt);
    nesim_infer_close(m);
    nesim_spec_free(spec);
    nesim_trace_run_clear(&run);
    nesim_trace_close(db);
    return cli_status(rc);
}
