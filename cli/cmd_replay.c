/* cmd_replay.c — `nesim replay DB --run N --from-layer L`: parses the options
 * and hands them to nesim_replay (jobs/replay.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "eval/report.h"
#include "jobs/lm.h"
#include "jobs/replay.h"

static const char help[] =
    "usage: nesim replay DB --run N --from-layer L [options]\n"
    "\n"
    "Replays run N of trace DB from layer L (a name or an index): L's recorded input\n"
    "spikes drive L and every layer after it again, as a new run whose parent is N.\n"
    "Weights are found through the stored spec; a weight file that moved or changed\n"
    "since the run (SHA-256) is an error.\n"
    "\n"
    "A language-model run (nesim run CHECKPOINT --trace DB) replays its recorded\n"
    "tokens teacher-forced: the projections before L run as recorded (the residual\n"
    "stream and KV cache are recomputed), L's input is checked count for count\n"
    "against its recorded spikes, and the spiked projections after L take --coding\n"
    "and --k. Nothing changed gives the recorded logits and spikes exactly.\n"
    "\n"
    "A NIR graph's run (nesim run MODEL.nir --trace DB) replays layer L's recorded\n"
    "spikes as L's output: the nodes after it run again with the run's dt,\n"
    "discretisation and reset, on --chip; nothing changed gives the recorded spikes\n"
    "exactly. A node after L that also takes input from before L is refused.\n"
    "\n"
    "options:\n"
    "  --chip NAME|PATH     price the replay on another chip (default: the run's)\n"
    "  --dense NAME|PATH    dense baseline profile (default: the run's, or dense-45nm)\n"
    "  --coding C           input coding of the layers after L\n"
    "  --k K                adaptive-threshold divisor of the layers after L\n"
    "  --trace OUT.db       record the replay (default: into DB itself)\n"
    "  --record LEVEL       none, activity or spikes (default spikes)\n"
    "  --output Y.npy       language models: the replay's logits, f32 [tokens, vocab]\n"
    "  --json               print the replay's report as JSON\n"
    "  --quiet              no progress on stderr\n";

static int parse(int argc, char **argv, nesim_replay_opts *o, int *json, nesim_error *err)
{
    memset(o, 0, sizeof *o);
    o->coding = -1;
    o->record = NESIM_TRACE_SPIKES;
    *json = 0;
    int rc = NESIM_OK, has_run = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--json")) {
            *json = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!strcmp(a, "--run")) {
            uint64_t r;
            if (!(rc = cli_u64(a, v, &r, err)) && (r < 1 || r > INT64_MAX))
                rc = nesim_fail(err, NESIM_EINVAL, "--run: must be a run id >= 1");
            o->run = (int64_t)r, has_run = 1, i++;
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
        if (!strcmp(a, "--record")) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "--record: expected none, activity or spikes");
            rc = nesim_trace_level_parse(v, &o->record, err), i++;
            continue;
        }
        if (!strcmp(a, "--from-layer"))
            dst = &o->from_layer;
        else if (!strcmp(a, "--chip"))
            dst = &o->chip;
        else if (!strcmp(a, "--dense"))
            dst = &o->dense;
        else if (!strcmp(a, "--trace"))
            dst = &o->trace;
        else if (!strcmp(a, "--output"))
            dst = &o->output;
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
    if (!rc && (!o->db || !has_run || !o->from_layer))
        rc = nesim_fail(err, NESIM_EINVAL, "usage: nesim replay DB --run N --from-layer L (see --help)");
    return rc;
}

static void print_table(const json_t *r)
{
    const json_t *rp = json_object_get(r, "replay");
    const json_t *en = json_object_get(r, "energy");
    long long from = (long long)json_integer_value(json_object_get(rp, "from_layer"));
    printf("nesim replay: run %lld from layer %lld (%s), %lld samples, chip %s\n\n",
           (long long)json_integer_value(json_object_get(rp, "parent_run")), from,
           json_string_value(json_object_get(rp, "from_layer_name")),
           (long long)json_integer_value(json_object_get(r, "samples")),
           en ? json_string_value(json_object_get(en, "chip")) : "none");
    printf("  %-10s %14s %16s %12s\n", "layer", "spikes", "SOPs", "energy J");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(r, "layers"), i, l) {
        if ((long long)i < from || !json_is_string(json_object_get(l, "coding")))
            continue;
        const json_t *e = json_object_get(json_object_get(l, "energy"), "total_j");
        printf("  %-10s %14.0f %16.0f %12.4g\n", json_string_value(json_object_get(l, "name")),
               json_number_value(json_object_get(l, "spikes")), json_number_value(json_object_get(l, "sops")),
               e ? json_number_value(e) : 0.0);
    }
    const char *tr = json_string_value(json_object_get(rp, "trace"));
    printf("\n  recorded as run %lld in %s (compare: nesim trace diff %s %lld %lld)\n",
           (long long)json_integer_value(json_object_get(rp, "run")), tr, tr,
           (long long)json_integer_value(json_object_get(rp, "parent_run")),
           (long long)json_integer_value(json_object_get(rp, "run")));
}

static void print_lm(const json_t *r)
{
    const json_t *rp = json_object_get(r, "replay");
    printf("nesim replay: run %lld from layer %lld (%s), %zu tokens\n\n",
           (long long)json_integer_value(json_object_get(rp, "parent_run")),
           (long long)json_integer_value(json_object_get(rp, "from_layer")),
           json_string_value(json_object_get(rp, "from_layer_name")),
           json_array_size(json_object_get(r, "per_token")));
    nesim_lm_report_print(r, stdout);
    const char *tr = json_string_value(json_object_get(rp, "trace"));
    printf("\n  recorded as run %lld in %s (compare: nesim trace diff %s %lld %lld)\n",
           (long long)json_integer_value(json_object_get(rp, "run")), tr, tr,
           (long long)json_integer_value(json_object_get(rp, "parent_run")),
           (long long)json_integer_value(json_object_get(rp, "run")));
}

int cmd_replay(int argc, char **argv)
{
    nesim_error err = {0};
    nesim_replay_opts o;
    int json;
    int rc = parse(argc, argv, &o, &json, &err);
    if (rc < 0) {
        fputs(help, stdout);
        return CLI_OK;
    }
    json_t *report = NULL;
    if (!rc)
        rc = nesim_replay(&o, &report, &err);
    const int lm = report && json_object_get(report, "per_token");
    const int nir = report && json_object_get(report, "spike_checksum") && json_object_get(report, "nodes");
    if (!rc && json)
        rc = nesim_report_write_json(report, stdout, &err);
    else if (!rc && lm)
        print_lm(report);
    else if (!rc && nir) {
        const json_t *rp = json_object_get(report, "replay");
        printf("nesim replay: run %lld from layer %s\n\n", (long long)json_integer_value(json_object_get(rp, "parent_run")),
               json_string_value(json_object_get(rp, "from_layer")));
        cli_print_nir(report);
        printf("\n  recorded as run %lld in %s (compare: nesim trace diff %s %lld %lld)\n",
               (long long)json_integer_value(json_object_get(rp, "run")), json_string_value(json_object_get(rp, "trace")),
               json_string_value(json_object_get(rp, "trace")), (long long)json_integer_value(json_object_get(rp, "parent_run")),
               (long long)json_integer_value(json_object_get(rp, "run")));
    }
    else if (!rc)
        print_table(report);
    json_decref(report);
    if (rc)
        fprintf(stderr, "nesim replay: %s\n", err.msg);
    cli_reraise_stop();
    return cli_status(rc);
}
