/* cmd_run_nir.c — `nesim run MODEL.nir` and `nesim spec MODEL.nir`: parse, call jobs/nir.h, print. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/comm.h"
#include "eval/chiptime.h"
#include "jobs/nir.h"

static const char help[] =
    "usage: nesim run MODEL.nir --input FRAMES.npy --dt SECONDS [options]\n"
    "       nesim run SPEC.json ...        (the JSON `nesim spec MODEL.nir` prints)\n"
    "\n"
    "Runs a NIR graph (snnTorch, Norse, Sinabs, Rockpool exports) step by step on\n"
    "input frames [samples, steps, features...] (spikes or currents per step), driven\n"
    "by activity: only neurons an input reaches, or that can fire on their own, are\n"
    "visited. Prints per node spikes, synaptic operations (SOPs), neuron updates and\n"
    "firing rate, and per sample the Output node's summed values and their argmax.\n"
    "\n"
    "options:\n"
    "  --input FILE          .npy frames [samples, steps, features...] (required)\n"
    "  --dt SECONDS          the step the graph was trained with (required when a node\n"
    "                        has dynamics: 1e-4 for the NIR paper's snnTorch graphs, 1\n"
    "                        for Sinabs's step-counted ones)\n"
    "  --discretisation euler|exact\n"
    "                        euler (default): per-step forward Euler, current before\n"
    "                        membrane, as snnTorch and Norse train; exact: closed form\n"
    "                        over each step with the input held\n"
    "  --reset value|subtract  after a spike: v = v_reset (default), or v -= threshold\n"
    "  --chip NAME|FILE      map the graph on this chip profile and price the run\n"
    "                        (default loihi; none: neither): cores, routes, energy by\n"
    "                        term, chip time, beside the graph stepped densely in fp16\n"
    "  --timing simple|detailed|async  chip time of every step on the chip (async: an\n"
    "                        asynchronous chip such as speck; a profile with\n"
    "                        latencies: loihi, loihi-sanafe): per step, per inference\n"
    "  --timing-steps FILE   with --timing: every step's chip time, f64 .npy\n"
    "  --input-dt SECONDS    --timing async: real time between two steps' input events\n"
    "                        (default --dt; N-MNIST's 300 ms in 30 steps: 0.01)\n"
    "  --trace DB            record the run in a trace database (SQLite): a layer per\n"
    "                        spiking node, its spikes and SOPs per step; then nesim\n"
    "                        trace, nesim serve, and nesim trace export --format\n"
    "                        sonata|nir-events read it\n"
    "  --record LEVEL        spikes (default), activity or none\n"
    "  --samples N           run the first N samples only\n"
    "  --spikes-csv FILE     write every spike (sample,step,node,index)\n"
    "  --dense               visit every neuron every step (a check: same spikes)\n"
    "  --strict              refuse edges that name no node (by default an edge end\n"
    "                        that begins exactly one node's name is taken as it, and said)\n"
    "  --json                print the report as JSON\n"
    "  --quiet               no progress on stderr\n"
    "\n"
    "Under mpirun a NIR graph is not split: rank 0 runs it whole, the other ranks end.\n";

static const char spec_help[] =
    "usage: nesim spec MODEL.nir [--output FILE] [--strict]\n"
    "\n"
    "Prints a NIR graph as nesim's JSON spec: {\"nesim_nir\": 1, \"nodes\": {name: {\"type\",\n"
    "parameters as numbers, strings or {\"shape\", \"data\"}}}, \"edges\": [[from, to], ...]},\n"
    "nested graphs flattened with dotted names. Edit it and run it with nesim run;\n"
    "it gives the same spikes as the NIR file (17 significant digits: exact).\n";

static void progress(void *user, double done)
{
    (void)user;
    fprintf(stderr, "\r  running %3.0f %%", 100 * done);
}

static int parse(int argc, char **argv, nesim_nir_job_opts *o, int *json, int *quiet, const char **output,
                 nesim_error *err)
{
    nesim_nir_job_opts_init(o);
    *json = *quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--json"))
            *json = 1;
        else if (!strcmp(a, "--quiet"))
            *quiet = 1;
        else if (!strcmp(a, "--dense"))
            o->run.dense = 1;
        else if (!strcmp(a, "--strict"))
            o->strict = 1;
        else if (a[0] == '-' && a[1] == '-' && !v)
            return nesim_fail(err, NESIM_EINVAL, "%s needs a value", a);
        else if (!strcmp(a, "--input"))
            o->input = argv[++i];
        else if (!strcmp(a, "--chip"))
            o->chip = argv[++i];
        else if (!strcmp(a, "--timing-steps"))
            o->timing_steps = argv[++i];
        else if (!strcmp(a, "--timing")) {
            int t = nesim_timing_parse(argv[++i]);
            if (t < 0)
                return nesim_fail(err, NESIM_EINVAL, "--timing: expected simple, detailed, async or none (got '%s')", argv[i]);
            o->timing = t;
        }
        else if (!strcmp(a, "--trace"))
            o->trace = argv[++i];
        else if (!strcmp(a, "--record")) {
            int rc = nesim_trace_level_parse(argv[++i], &o->record, err);
            if (rc)
                return rc;
        }
        else if (!strcmp(a, "--spikes-csv"))
            o->spikes_out = argv[++i];
        else if (!strcmp(a, "--output") && output)
            *output = argv[++i];
        else if (!strcmp(a, "--input-dt")) {
            int rc = cli_double("--input-dt", argv[++i], &o->input_dt, err);
            if (rc)
                return rc;
            if (!(o->input_dt > 0))
                return nesim_fail(err, NESIM_EINVAL, "--input-dt must be > 0 seconds");
        } else if (!strcmp(a, "--dt")) {
            int rc = cli_double("--dt", argv[++i], &o->run.dt, err);
            if (rc)
                return rc;
            if (!(o->run.dt > 0))
                return nesim_fail(err, NESIM_EINVAL, "--dt must be > 0 seconds");
        } else if (!strcmp(a, "--samples")) {
            uint64_t n;
            int rc = cli_u64("--samples", argv[++i], &n, err);
            if (rc)
                return rc;
            if (!n)
                return nesim_fail(err, NESIM_EINVAL, "--samples must be >= 1");
            o->max_samples = (size_t)n;
        } else if (!strcmp(a, "--discretisation") || !strcmp(a, "--discretization")) {
            const char *d = argv[++i];
            if (!strcmp(d, "euler"))
                o->run.disc = NESIM_NIR_EULER;
            else if (!strcmp(d, "exact"))
                o->run.disc = NESIM_NIR_EXACT;
            else
                return nesim_fail(err, NESIM_EINVAL, "--discretisation: '%s' (expected euler or exact)", d);
        } else if (!strcmp(a, "--reset")) {
            const char *d = argv[++i];
            if (!strcmp(d, "value") || !strcmp(d, "zero"))
                o->run.reset_subtract = 0;
            else if (!strcmp(d, "subtract"))
                o->run.reset_subtract = 1;
            else
                return nesim_fail(err, NESIM_EINVAL, "--reset: '%s' (expected value or subtract)", d);
        } else if (a[0] == '-')
            return nesim_fail(err, NESIM_EINVAL, "unknown option %s (see --help)", a);
        else if (o->model)
            return nesim_fail(err, NESIM_EINVAL, "one model only: '%s' and '%s'", o->model, a);
        else
            o->model = a;
    }
    if (!o->model)
        return nesim_fail(err, NESIM_EINVAL, "which model? give a .nir file");
    return NESIM_OK;
}

void cli_print_nir(const json_t *r)
{
    char b1[32], b2[32], b3[32];
    printf("%s  (NIR %s, %s, dt = %g s, reset to %s)\n", json_string_value(json_object_get(r, "model")),
           json_string_value(json_object_get(r, "nir_version")),
           json_string_value(json_object_get(r, "discretisation")), json_real_value(json_object_get(r, "dt_s")),
           json_string_value(json_object_get(r, "reset")));
    printf("%lld samples x %lld steps\n\n", (long long)json_integer_value(json_object_get(r, "samples")),
           (long long)json_integer_value(json_object_get(r, "steps")));
    printf("%-16s %-10s %-14s %12s %14s %12s %10s\n", "node", "type", "shape", "spikes", "SOPs", "updates", "rate");
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(r, "nodes"), i, n)
    {
        char shape[48] = "";
        size_t k, u = 0;
        json_t *d;
        json_array_foreach(json_object_get(n, "shape"), k, d)
            u += (size_t)snprintf(shape + u, u < sizeof shape ? sizeof shape - u : 0, "%s%lld", k ? "x" : "",
                                  (long long)json_integer_value(d));
        json_t *rate = json_object_get(n, "spikes_per_neuron_step");
        char rs[24] = "";
        if (rate)
            snprintf(rs, sizeof rs, "%.4f", json_real_value(rate));
        printf("%-16.16s %-10s %-14.14s %12s %14s %12s %10s\n", json_string_value(json_object_get(n, "name")),
               json_string_value(json_object_get(n, "type")), shape,
               cli_grouped((uint64_t)json_integer_value(json_object_get(n, "spikes")), b1, sizeof b1),
               cli_grouped((uint64_t)json_integer_value(json_object_get(n, "sops")), b2, sizeof b2),
               cli_grouped((uint64_t)json_integer_value(json_object_get(n, "updates")), b3, sizeof b3), rs);
    }
    printf("\ntotal: %s spikes, %s SOPs, %s neuron updates; %.4f spikes per neuron per step\n",
           cli_grouped((uint64_t)json_integer_value(json_object_get(r, "spikes")), b1, sizeof b1),
           cli_grouped((uint64_t)json_integer_value(json_object_get(r, "sops")), b2, sizeof b2),
           cli_grouped((uint64_t)json_integer_value(json_object_get(r, "updates")), b3, sizeof b3),
           json_real_value(json_object_get(r, "spikes_per_neuron_step")));
    json_t *ss = json_object_get(r, "samples_detail");
    if (json_array_size(ss) && json_object_get(json_array_get(ss, 0), "argmax")) {
        printf("output argmax per sample:");
        for (i = 0; i < json_array_size(ss) && i < 20; i++)
            printf(" %lld", (long long)json_integer_value(json_object_get(json_array_get(ss, i), "argmax")));
        printf("%s\n", json_array_size(ss) > 20 ? " ..." : "");
    }
    json_t *e = json_object_get(r, "energy"), *use = json_object_get(r, "chip_usage");
    if (e) {
        double tot = json_real_value(json_object_get(e, "total_j")), fp = json_real_value(json_object_get(e, "dense_fp16_j"));
        printf("\non %s: %lld cores on %lld chip(s), longest route %lld hops; chip time %.4g s\n",
               json_string_value(json_object_get(e, "chip")), (long long)json_integer_value(json_object_get(use, "cores")),
               (long long)json_integer_value(json_object_get(use, "chips")),
               (long long)json_integer_value(json_object_get(use, "max_hops")),
               json_real_value(json_object_get(e, "chip_time_s")));
        printf("energy %.4g J, %.3g pJ per SOP:", tot, 1e12 * json_real_value(json_object_get(e, "per_sop_j")));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(e, "terms_j"), k, v) printf(" %s %.3g", k, json_real_value(v));
        printf(" J\n");
        printf("the same graph stepped densely, fp16 on %s: %.4g J (%s MACs): %.1fx the spiking run\n",
               json_string_value(json_object_get(e, "dense_profile")), fp,
               cli_grouped((uint64_t)json_integer_value(json_object_get(r, "dense_macs")), b1, sizeof b1),
               tot > 0 ? fp / tot : 0);
    }
    const json_t *ct = json_object_get(r, "chip_time");
    if (ct && !strcmp(json_string_value(json_object_get(ct, "model")), "async")) {
        printf("chip time (async): %.4g us per inference (the input's own duration and the events it leaves "
               "in flight), %.4g inferences per chip-second; an event's latency from its step's input to its last "
               "effect %.4g us on average, %.4g at most (step %lld)\n",
               1e6 * json_real_value(json_object_get(ct, "per_inference_s")),
               json_real_value(json_object_get(ct, "inferences_per_s")),
               1e6 * json_real_value(json_object_get(ct, "mean_step_s")),
               1e6 * json_real_value(json_object_get(ct, "max_step_s")),
               (long long)json_integer_value(json_object_get(ct, "max_step")));
        ct = NULL;
    }
    if (ct) {
        const json_t *bl = json_object_get(ct, "busiest_link");
        printf("chip time (%s): %.4g us per inference, %.4g inferences per chip-second; %.4g us per step on "
               "average, %.4g at most (step %lld, core %lld, bound by its %s)",
               json_string_value(json_object_get(ct, "model")),
               1e6 * json_real_value(json_object_get(ct, "per_inference_s")),
               json_real_value(json_object_get(ct, "inferences_per_s")),
               1e6 * json_real_value(json_object_get(ct, "mean_step_s")),
               1e6 * json_real_value(json_object_get(ct, "max_step_s")),
               (long long)json_integer_value(json_object_get(ct, "max_step")),
               (long long)json_integer_value(json_object_get(ct, "critical_core")),
               json_string_value(json_object_get(ct, "bound")));
        if (bl)
            printf("; busiest link (%lld, %lld) %s, %.3g us", (long long)json_integer_value(json_object_get(bl, "x")),
                   (long long)json_integer_value(json_object_get(bl, "y")), json_string_value(json_object_get(bl, "dir")),
                   1e6 * json_real_value(json_object_get(bl, "busy_s")));
        printf("\n");
    }
    printf("spike checksum: %s\n", json_string_value(json_object_get(r, "spike_checksum")));
    json_t *tr = json_object_get(r, "trace");
    if (tr)
        printf("trace: %s, run %lld\n", json_string_value(json_object_get(tr, "file")),
               (long long)json_integer_value(json_object_get(tr, "run")));
}

int cmd_run_nir(int argc, char **argv)
{
    nesim_error err = {0};
    nesim_nir_job_opts o;
    int json, quiet;
    int rc = parse(argc, argv, &o, &json, &quiet, NULL, &err);
    if (rc < 0) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (nesim_comm_launched()) { /* not split over ranks: rank 0 runs the graph whole */
        nesim_comm *comm = NULL;
        int crc = cli_comm_open(0, &comm, &err), rank = nesim_comm_rank(comm);
        cli_comm_close(comm, 0);
        if (crc) {
            if (rank == 0)
                fprintf(stderr, "nesim run: %s\n", err.msg);
            return cli_status(crc);
        }
        if (rank != 0)
            return CLI_OK;
    }
    int prog = !rc && cli_progress_on(quiet);
    if (prog) {
        o.progress = progress;
        o.user = NULL;
    }
    json_t *rep = NULL;
    if (!rc)
        rc = nesim_nir_job(&o, &rep, &err);
    if (prog)
        fputs("\r                  \r", stderr);
    if (rc) {
        fprintf(stderr, "nesim run: %s\n", err.msg);
        return cli_status(rc);
    }
    json_t *notes = json_object_get(rep, "import_notes");
    if (notes && !quiet)
        fprintf(stderr, "nesim run: note: %s\n", json_string_value(notes));
    if (json) {
        json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        fputc('\n', stdout);
    } else
        cli_print_nir(rep);
    json_decref(rep);
    return CLI_OK;
}

int cmd_spec_nir(int argc, char **argv)
{
    nesim_error err = {0};
    nesim_nir_job_opts o;
    int json, quiet;
    const char *output = NULL;
    int rc = parse(argc, argv, &o, &json, &quiet, &output, &err);
    if (rc < 0) {
        fputs(spec_help, stdout);
        return CLI_OK;
    }
    json_t *spec = NULL;
    if (!rc)
        rc = nesim_nir_spec_build(o.model, o.strict, &spec, &err);
    const size_t fl = JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17);
    if (spec)
        rc = cli_write_json(spec, output, fl, &err);
    json_decref(spec);
    if (rc)
        fprintf(stderr, "nesim spec: %s\n", err.msg);
    return cli_status(rc);
}
