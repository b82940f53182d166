/* cmd_example.c — `nesim example NAME`: build a classic network, run it,
 * print firing statistics and cost. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/classic.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "sim/network.h"

static const char help[] =
    "usage: nesim example NAME [options]\n"
    "\n"
    "Runs a built-in classic network and prints mean rate, ISI CV, spikes,\n"
    "synaptic events, wall time and peak memory.\n"
    "\n"
    "networks:\n"
    "  b4     Brette et al. 2007 Benchmark 4 (LIF, voltage jumps)\n"
    "  cuba   Brian2's CUBA example (LIF, exponential currents)\n"
    "\n"
    "options:\n"
    "  --neurons N    network size (default 4000; 80 % excitatory)\n"
    "  --seconds S    virtual time to simulate (default 1)\n"
    "  --tick SEC     seconds per tick (default 1e-4)\n"
    "  --seed N       random seed for states, connections (default 1)\n"
    "  --v-rest MV    resting level E_L in mV (default -49; lower means sparser)\n"
    "  --json         print one JSON object instead of the table\n"
    "  --quiet        no progress on stderr\n";

typedef struct sink_ctx {
    nesim_isi isi;
} sink_ctx;

static int on_spike(void *ctx, int64_t t, uint32_t id, int pop)
{
    nesim_isi_add(&((sink_ctx *)ctx)->isi, id, t);
    return 0;
}

int cmd_example(int argc, char **argv)
{
    nesim_error err = {0};
    nesim_classic_opts o = {.neurons = 4000, .tick_s = 1e-4, .seed = 1, .v_rest = NAN};
    double seconds = 1;
    int json = 0, quiet = 0, rc = NESIM_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--neurons")) {
            if (!(rc = cli_u64(a, v, &u, &err)) && (u == 0 || u > 100000000))
                rc = nesim_fail(&err, NESIM_EINVAL, "--neurons: must be in 1..1e8");
            o.neurons = (uint32_t)u, i++;
        } else if (!strcmp(a, "--seconds")) {
            if (!(rc = cli_double(a, v, &seconds, &err)) && !(seconds > 0))
                rc = nesim_fail(&err, NESIM_EINVAL, "--seconds: must be > 0");
            i++;
        } else if (!strcmp(a, "--tick")) {
            if (!(rc = cli_double(a, v, &o.tick_s, &err)) && !(o.tick_s > 0 && o.tick_s <= 1))
                rc = nesim_fail(&err, NESIM_EINVAL, "--tick: seconds per tick must be in (0, 1]");
            i++;
        } else if (!strcmp(a, "--seed")) {
            rc = cli_u64(a, v, &o.seed, &err), i++;
        } else if (!strcmp(a, "--v-rest")) {
            if (!(rc = cli_double(a, v, &d, &err)))
                o.v_rest = d * 1e-3;
            i++;
        } else if (a[0] == '-' || o.name) {
            rc = nesim_fail(&err, NESIM_EINVAL, "unexpected argument '%s' (see nesim example --help)", a);
        } else {
            o.name = a;
        }
    }
    if (!rc && !o.name)
        rc = nesim_fail(&err, NESIM_EINVAL, "which example? b4 or cuba (see nesim example --help)");
    if (rc) {
        fprintf(stderr, "nesim example: %s\n", err.msg);
        return CLI_BAD;
    }
    double t_build = cli_now();
    nesim_net *net = NULL;
    nesim_graph *g = NULL;
    int E, I;
    sink_ctx sc = {0};
    if ((rc = nesim_classic_build(&o, &g, &E, &I, &err)) || !(net = nesim_net_from_graph(g, &err)) ||
        (rc = nesim_isi_init(&sc.isi, o.neurons, &err))) {
        if (!rc)
            rc = err.code;
        fprintf(stderr, "nesim example: %s\n", err.msg);
        nesim_net_free(net);
        return cli_status(rc);
    }
    nesim_set_sink(net, on_spike, &sc);
    double tick = nesim_tick_seconds(net);
    int64_t total;
    if ((rc = nesim_ticks_of(seconds, tick, "--seconds", &total, &err))) {
        fprintf(stderr, "nesim example: %s\n", err.msg);
        nesim_isi_free(&sc.isi);
        nesim_net_free(net);
        return cli_status(rc);
    }
    double t_run = cli_now();
    t_build = t_run - t_build;
    int progress = cli_progress_on(quiet);
    int64_t chunk = progress ? (total + 99) / 100 : total;
    for (int64_t done = 0; done < total && !rc; done += chunk) {
        int64_t n = total - done < chunk ? total - done : chunk;
        rc = nesim_run(net, n, &err);
        if (progress)
            fprintf(stderr, "\r  simulating %3.0f %%  (%.2f s of %.2f s virtual)",
                    100.0 * (double)(done + n) / (double)total, (double)(done + n) * tick, seconds);
    }
    if (progress)
        fputs("\r\033[K", stderr);
    t_run = cli_now() - t_run;
    nesim_isi_summary sum;
    if (!rc)
        rc = nesim_isi_summarise(&sc.isi, seconds, &sum, &err);
    if (rc) {
        fprintf(stderr, "nesim example: %s\n", err.msg);
        nesim_isi_free(&sc.isi);
        nesim_net_free(net);
        return cli_status(rc);
    }
    uint64_t sops = 0, syn = 0, preds = 0;
    for (int p = 0; p < nesim_population_count(net); p++) {
        sops += nesim_population_counters(net, p)->sops;
        preds += nesim_population_counters(net, p)->predictions;
    }
    for (int j = 0; j < 4; j++)
        syn += nesim_projection_synapses(net, j);
    double rate_e = (double)nesim_population_counters(net, E)->spikes / (nesim_population_size(net, E) * seconds);
    double rate_i = (double)nesim_population_counters(net, I)->spikes / (nesim_population_size(net, I) * seconds);
    nesim_queue_stats qs = nesim_queue_statistics(net);
    double rss = cli_peak_rss_mib();
    if (json) {
        /* flat, for scripts: bench/classic.sh reads these keys */
        json_t *j = json_object();
        json_object_set_new(j, "network", json_string(o.name));
        json_object_set_new(j, "neurons", json_integer(o.neurons));
        json_object_set_new(j, "synapses", json_integer((json_int_t)syn));
        json_object_set_new(j, "seconds", json_real(seconds));
        json_object_set_new(j, "tick_s", json_real(tick));
        json_object_set_new(j, "seed", json_integer((json_int_t)o.seed));
        json_object_set_new(j, "mean_rate_hz", json_real(sum.mean_rate_hz));
        json_object_set_new(j, "rate_exc_hz", json_real(rate_e));
        json_object_set_new(j, "rate_inh_hz", json_real(rate_i));
        json_object_set_new(j, "isi_cv", nesim_report_number(sum.cv_mean)); /* null: no neuron fired twice */
        json_object_set_new(j, "spikes", json_integer((json_int_t)sum.spikes));
        json_object_set_new(j, "sops", json_integer((json_int_t)sops));
        json_object_set_new(j, "predictions", json_integer((json_int_t)preds));
        json_object_set_new(j, "queue_max", json_integer((json_int_t)qs.max_depth));
        json_object_set_new(j, "queue_mean", json_real(qs.mean_depth));
        json_object_set_new(j, "build_s", json_real(t_build));
        json_object_set_new(j, "wall_s", json_real(t_run));
        json_object_set_new(j, "sops_per_s", json_real(t_run > 0 ? (double)sops / t_run : 0.0));
        json_object_set_new(j, "peak_rss_mib", json_real(rss));
        rc = nesim_report_write_json(j, stdout, &err);
        json_decref(j);
    } else {
        char b1[32], b2[32], b3[32];
        printf("nesim example %s — %s\n", o.name, nesim_classic_describe(o.name));
        printf("  %s neurons (%u exc / %u inh), %s synapses, tick %g ms, %g s virtual, seed %llu\n\n",
               cli_grouped(o.neurons, b1, sizeof b1), nesim_population_size(net, E),
               nesim_population_size(net, I), cli_grouped(syn, b2, sizeof b2), tick * 1e3, seconds,
               (unsigned long long)o.seed);
        printf("  mean rate        %8.2f Hz   (exc %.2f, inh %.2f)\n", sum.mean_rate_hz, rate_e, rate_i);
        printf("  ISI CV           %8.3f      (%u neurons with >= 2 intervals)\n", sum.cv_mean, sum.cv_neurons);
        printf("  spikes           %14s\n", cli_grouped(sum.spikes, b1, sizeof b1));
        printf("  synaptic events  %14s\n", cli_grouped(sops, b2, sizeof b2));
        printf("  predictions      %14s   (threshold crossings computed)\n", cli_grouped(preds, b3, sizeof b3));
        printf("  queue depth      %8.0f mean, %llu max\n", qs.mean_depth, (unsigned long long)qs.max_depth);
        printf("  wall time        %8.3f s     (build %.3f s) — %.1f M synaptic events/s\n", t_run,
               t_build, t_run > 0 ? (double)sops / t_run / 1e6 : 0.0);
        printf("  peak memory      %8.1f MiB\n", rss);
    }
    nesim_isi_free(&sc.isi);
    nesim_net_free(net);
    if (rc)
        fprintf(stderr, "nesim example: %s\n", err.msg);
    return cli_status(rc);
}
