/* cmd_run.c — `nesim run SPEC`: parses the options and hands them to
 * nesim_run_spec (jobs/run.h); prints the report as tables or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/comm.h"
#include "eval/chiptime.h"
#include "jobs/nir.h"
#include "base/mem.h"
#include "eval/report.h"
#include "jobs/run.h"
#include "jobs/lm.h"
#include "net/lm.h"

static const char help[] =
    "usage: nesim run SPEC [options]\n"
    "       nesim run CHECKPOINT_DIR [options]   (a language model: see\n"
    "                                          nesim run CHECKPOINT_DIR --help)\n"
    "       nesim run MODEL.nir [options]        (a NIR graph: see\n"
    "                                          nesim run MODEL.nir --help)\n"
    "\n"
    "       nesim run NET.yaml|NET.net --chip ARCH.yaml [options]\n"
    "                                         (a SANA-FE network on a SANA-FE architecture)\n"
    "\n"
    "Runs a model spec (JSON; see README). A model with layers plays each input\n"
    "sample through its coded layers, event by event, and prints per-layer spikes,\n"
    "synaptic operations (SOPs) and spike-count statistics; a model with\n"
    "populations runs its recurrent network and prints firing statistics. Both\n"
    "are mapped and priced on a chip, with NeuroBench's metrics beside nesim's.\n"
    "SANA-FE's own files run unchanged: its network YAML or netlist as the model\n"
    "(groups become loihi populations, its mapping each neuron's core; a step is\n"
    "1 ms of virtual time) and its architecture YAML as --chip; the report then\n"
    "ends with SANA-FE's run summary.\n"
    "\n"
    "options (layer models):\n"
    "  --input X.npy        input samples [samples, features...] (any numeric dtype)\n"
    "  --random-input N     N heavy-tailed synthetic samples instead (Student t, nu = 3)\n"
    "  --samples N          use only the first N samples\n"
    "  --output Y.npy       write the last layer's readout, f32 [samples, outputs]\n"
    "  --labels L.npy       integer labels [samples]: print spiking and ANN accuracy\n"
    "  --threads N          threads per coded layer (default: every core); the results\n"
    "                       are the same bits for any N\n"
    "  (samples stream through in batches: inputs and outputs are never all in memory)\n"
    "options (recurrent models):\n"
    "  --seconds S          virtual time to simulate (default 1)\n"
    "  --steps N            or N time steps (ticks)\n"
    "  --threads N          split the neurons over N threads, as mpirun splits them over\n"
    "                       ranks (spikes exchanged every min-delay ticks; the threads\n"
    "                       share the graph). Default: every core for a network\n"
    "                       of 2 million synapses or more, else one. Under mpirun, N\n"
    "                       threads per rank (default one): K ranks x N threads split\n"
    "                       the neurons K * N ways. Spikes, counters, energy and the\n"
    "                       trace are the same bytes for any N (and any K)\n"
    "common:\n"
    "  --timing MODEL       chip time per step on the chip: simple (slowest core's neuron\n"
    "                       pass or receiving, plus sync) or detailed (messages through the\n"
    "                       mesh, link by link, with finite buffers); async for an\n"
    "                       asynchronous chip (speck): every event when it arrives, chip time\n"
    "                       the time elapsed. Needs a profile with latencies. Layer models:\n"
    "                       every coded layer's spikes at their tick, per inference too\n"
    "  --timing-steps F.npy with --timing: write each step's chip time, f64 seconds [steps]\n"
    "  --chip NAME|PATH     chip profile to map and price the run on (default loihi;\n"
    "                       `nesim chips` lists them; `none` skips mapping and energy)\n"
    "  --dense NAME|PATH    dense baseline profile (default dense-45nm)\n"
    "  --gpu NAME[,NAME]    layer models: GPU boards to set beside the chip (a100-sxm,\n"
    "                       metax-c550): the ANN's time and energy per inference, by roofline\n"
    "  --trace FILE.db      record the run into a trace database (see nesim trace)\n"
    "  --record LEVEL       what the trace keeps: none, activity or spikes (default spikes)\n"
    "  --seed N             seed for synthetic inputs and network draws (default: the spec's)\n"
    "  --max-memory SIZE    refuse a run estimated to need more (512M, 16G, ...; default:\n"
    "                       the memory available now); larger values run bigger models\n"
    "  --json               print the report as one JSON object instead of the tables\n"
    "  --quiet              no progress on stderr\n"
    "  --mpi-timeout S      under mpirun: end the run when the other ranks give no answer\n"
    "                       for S seconds (a rank died or hangs; default 300)\n"
    "  --no-overlap         networks on several ranks or threads: exchange spikes after\n"
    "                       each epoch and wait (by default each exchange travels while\n"
    "                       the next window of min-delay / 2 ticks runs, or with a min\n"
    "                       delay of one tick while the tick makes its predictions); the\n"
    "                       same results either way\n"
    "\n"
    "Under mpirun -np K (nesim version says whether MPI is built in) the run is split\n"
    "over K ranks: a network's neurons in K blocks per population (spikes exchanged\n"
    "every min-delay ticks; each rank draws only its own neurons' incoming synapses\n"
    "and the ranks map and time the network on the chip together; --timing async\n"
    "draws the whole graph on every rank), a\n"
    "layer model's batches by samples (or, where layers are not all spiking linear\n"
    "ones, each coded linear layer by output rows, blocks of 64). Rank 0 prints the\n"
    "report and writes the trace and --output; spikes, counters, energy and the\n"
    "trace are the same bytes for any K.\n"
    "\n"
    "SIGINT, SIGTERM or SIGHUP during a traced run: the current batch is kept, the run\n"
    "is marked interrupted, and nesim exits by the signal.\n";

static int parse(int argc, char **argv, nesim_run_opts *o, int *json, int *quiet, double *mpi_timeout,
                 nesim_error *err)
{
    memset(o, 0, sizeof *o);
    *mpi_timeout = 300;
    o->chip = "loihi";
    o->dense = "dense-45nm";
    o->record = NESIM_TRACE_SPIKES;
    *json = *quiet = 0;
    int rc = NESIM_OK;
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
            *quiet = 1;
            continue;
        }
        if (!strcmp(a, "--seed")) {
            rc = cli_u64(a, v, &o->seed, err), o->has_seed = 1, i++;
            continue;
        }
        if (!strcmp(a, "--random-input")) {
            if (!(rc = cli_u64(a, v, &o->random_n, err)) && (o->random_n == 0 || o->random_n > 1000000))
                rc = nesim_fail(err, NESIM_EINVAL, "--random-input: must be in 1..1000000");
            i++;
            continue;
        }
        if (!strcmp(a, "--samples")) {
            if (!(rc = cli_u64(a, v, &o->samples, err)) && o->samples == 0)
                rc = nesim_fail(err, NESIM_EINVAL, "--samples: must be >= 1");
            i++;
            continue;
        }
        if (!strcmp(a, "--seconds")) {
            if (!(rc = cli_double(a, v, &o->seconds, err)) && !(o->seconds > 0 && o->seconds < 1e7))
                rc = nesim_fail(err, NESIM_EINVAL, "--seconds: must be in (0, 1e7)");
            i++;
            continue;
        }
        if (!strcmp(a, "--steps")) {
            uint64_t n;
            if (!(rc = cli_u64(a, v, &n, err)) && !(n >= 1 && n < (1ull << 40)))
                rc = nesim_fail(err, NESIM_EINVAL, "--steps: must be in [1, 2^40)");
            o->steps = (int64_t)n;
            i++;
            continue;
        }
        if (!strcmp(a, "--timing")) {
            int t = nesim_timing_parse(v);
            if (t < 0)
                return nesim_fail(err, NESIM_EINVAL, "--timing: expected simple, detailed, async or none (got '%s')",
                                  v ? v : "nothing");
            o->timing = t;
            i++;
            continue;
        }
        if (!strcmp(a, "--threads")) {
            uint64_t n;
            if (!(rc = cli_u64(a, v, &n, err)) && !(n >= 1 && n <= 256))
                rc = nesim_fail(err, NESIM_EINVAL, "--threads: must be in 1..256");
            o->threads = (int)n;
            i++;
            continue;
        }
        if (!strcmp(a, "--no-overlap")) {
            o->no_overlap = 1;
            continue;
        }
        if (!strcmp(a, "--mpi-timeout")) {
            if (!(rc = cli_double(a, v, mpi_timeout, err)) && !(*mpi_timeout > 0 && *mpi_timeout <= 1e6))
                rc = nesim_fail(err, NESIM_EINVAL, "--mpi-timeout: must be in (0, 1e6] seconds");
            i++;
            continue;
        }
        if (!strcmp(a, "--max-memory")) {
            rc = nesim_mem_parse(a, v, &o->max_memory, err), i++;
            if (!rc && !o->max_memory)
                rc = nesim_fail(err, NESIM_EINVAL, "--max-memory: must be > 0");
            continue;
        }
        if (!strcmp(a, "--record")) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "--record: expected none, activity or spikes");
            rc = nesim_trace_level_parse(v, &o->record, err), i++;
            continue;
        }
        if (!strcmp(a, "--input"))
            dst = &o->input;
        else if (!strcmp(a, "--output"))
            dst = &o->output;
        else if (!strcmp(a, "--labels"))
            dst = &o->labels;
        else if (!strcmp(a, "--trace"))
            dst = &o->trace;
        else if (!strcmp(a, "--timing-steps"))
            dst = &o->timing_steps;
        else if (!strcmp(a, "--chip"))
            dst = &o->chip;
        else if (!strcmp(a, "--dense"))
            dst = &o->dense;
        else if (!strcmp(a, "--gpu"))
            dst = &o->gpu;
        if (dst) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "%s: expected a %s", a,
                                  dst == &o->chip || dst == &o->dense ? "chip name or file" : "file name");
            *dst = v, i++;
        } else if (a[0] == '-' || o->spec) {
            rc = nesim_fail(err, NESIM_EINVAL, "unexpected argument '%s' (see nesim run --help)", a);
        } else {
            o->spec = a;
        }
    }
    if (!rc && !o->spec)
        rc = nesim_fail(err, NESIM_EINVAL, "which model? nesim run SPEC (see nesim run --help)");
    if (!rc && o->input && o->random_n)
        rc = nesim_fail(err, NESIM_EINVAL, "--input and --random-input exclude each other");
    return rc;
}

static void show_progress(void *user, double done)
{
    fprintf(stderr, "\r  running %3.0f %%", 100 * done);
}

int cmd_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* a checkpoint folder is a language model */
        if (argv[i][0] != '-' && (nesim_lm_is_checkpoint(argv[i]) || nesim_lm_spec_is(argv[i])))
            return cmd_run_lm(argc, argv);
    for (int i = 1; i < argc; i++) /* a NIR graph, or its JSON spec */
        if (argv[i][0] != '-' && nesim_nir_job_is_model(argv[i]))
            return cmd_run_nir(argc, argv);
    nesim_error err = {0};
    nesim_run_opts o;
    int json, quiet;
    double mpi_timeout;
    int rc = parse(argc, argv, &o, &json, &quiet, &mpi_timeout, &err);
    if (rc < 0) {
        fputs(help, stdout);
        return CLI_OK;
    }
    nesim_comm *comm = NULL;
    if (!rc)
        rc = cli_comm_open(mpi_timeout, &comm, &err);
    int rank = nesim_comm_rank(comm);
    o.comm = comm;
    int show = !rc && rank == 0 && cli_progress_on(quiet);
    if (show)
        o.progress = show_progress;
    json_t *report = NULL;
    if (!rc)
        rc = nesim_run_spec(&o, &report, &err);
    if (show)
        fputs("\r\033[K", stderr);
    if (report && rank == 0) { /* also when a late output failed: the run's results stand */
        nesim_error e2 = {0};
        int prc = json ? nesim_report_write_json(report, stdout, &e2) : nesim_report_print(report, stdout, &e2);
        if (prc && !rc)
            rc = prc, err = e2;
    }
    json_decref(report);
    if (rc && cli_comm_says(comm)) /* the ranks agreed on one message: rank 0 says it */
        fprintf(stderr, "nesim run: %s\n", err.msg);
    cli_comm_close(comm, rc ? cli_status(rc) : 0);
    cli_reraise_stop();
    return cli_status(rc);
}
