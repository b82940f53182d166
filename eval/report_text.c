/* report_text.c — the tables `nesim run` and `nesim trace show` print, rendered
 * from the report (eval/report.h): one renderer for the live run and the
 * trace, so they cannot drift apart. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "eval/report.h"

/* The number at dotted path `p` under o, NaN if absent or null. */
static double rnum(const json_t *o, const char *p)
{
    char part[128];
    while (o) {
        const char *dot = strchr(p, '.');
        if (!dot) {
            const json_t *v = json_object_get(o, p);
            return json_is_number(v) ? json_number_value(v) : NAN;
        }
        size_t n = (size_t)(dot - p) < sizeof part - 1 ? (size_t)(dot - p) : sizeof part - 1;
        memcpy(part, p, n);
        part[n] = 0;
        o = json_object_get(o, part);
        p = dot + 1;
    }
    return NAN;
}

static const char *js(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static const char *grp(double v, char *buf, size_t n) { return nesim_fmt_grouped(v, buf, n); }

const char *nesim_fmt_grouped(double v, char *buf, size_t n)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "?");
        return buf;
    }
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%.0f", v);
    size_t o = 0;
    int start = tmp[0] == '-';
    if (start)
        buf[o++] = '-';
    for (int i = start; i < len && o + 1 < n; i++) {
        if (i > start && (len - i) % 3 == 0 && o + 2 < n)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

static void print_chip(const json_t *r, FILE *out, int layers)
{
    const json_t *en = json_object_get(r, "energy");
    if (!en)
        return;
    char b1[32], b2[32];
    if (json_object_get(r, "chip_usage"))
        fprintf(out, "\n  chip %s: %s cores on %.0f chip%s, longest route %.0f hops, %s routing-table entries (mapped in %.3f s)\n",
                js(en, "chip"), grp(rnum(r, "chip_usage.cores"), b1, sizeof b1), rnum(r, "chip_usage.chips"),
                rnum(r, "chip_usage.chips") == 1 ? "" : "s", rnum(r, "chip_usage.max_hops"),
                grp(rnum(r, "chip_usage.routes"), b2, sizeof b2), rnum(r, "chip_usage.map_s"));
    else
        fprintf(out, "\n  chip %s\n", js(en, "chip"));
    int header = 0;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(r, "layers"), i, l) {
        const json_t *e = json_object_get(l, "energy");
        if (!e)
            continue;
        if (!header++)
            fprintf(out, "  %-10s %7s %5s %11s %11s %11s %11s %11s\n", layers ? "layer" : "population", "cores", "comp",
                    "synaptic", "updates", "routing", "other", "total J");
        double syn = rnum(e, "terms.synaptic"), upd = rnum(e, "terms.update"), idle = rnum(e, "terms.idle");
        double rt = rnum(e, "terms.routing"), so = rnum(e, "terms.spike_out"), dl = rnum(e, "terms.delivery");
        double st = rnum(e, "terms.static");
#define Z(x) (isfinite(x) ? (x) : 0)
        fprintf(out, "  %-10s %7.0f %5.0f %11.3e %11.3e %11.3e %11.3e %11.3e\n", js(l, "name"), rnum(l, "cores"),
                rnum(l, "compartments"), Z(syn), Z(upd) + Z(idle), Z(rt), Z(so) + Z(dl) + Z(st), Z(rnum(e, "total_j")));
#undef Z
    }
    double samples = rnum(r, "samples");
    if (isfinite(rnum(en, "per_inference_j")) && samples > 0)
        fprintf(out, "\n  energy           %.4g J in all, %.4g J per inference, %.3g pJ per synaptic operation\n",
                rnum(en, "total_j"), rnum(en, "per_inference_j"), rnum(en, "per_sop_j") * 1e12);
    else if (isfinite(rnum(en, "per_sop_j")))
        fprintf(out, "\n  energy           %.4g J in all (%.4g s of chip time), %.3g pJ per synaptic operation\n",
                rnum(en, "total_j"), rnum(en, "duration_s"), rnum(en, "per_sop_j") * 1e12);
    else
        fprintf(out, "\n  energy           %.4g J in all\n", rnum(en, "total_j"));
    fprintf(out, "                  ");
    const json_t *terms = json_object_get(en, "terms");
    const char *k;
    json_t *v;
    size_t nt = json_object_size(terms), t = 0;
    json_object_foreach((json_t *)terms, k, v)
        fprintf(out, "%s %.3g%s", k, json_number_value(v), ++t < nt ? ", " : " J\n");
    size_t gi;
    json_t *gv;
    json_array_foreach(json_object_get(r, "gpu_baselines"), gi, gv)
        fprintf(out, "  GPU %-11s  ANN %.4g J per %s, %.4g us (%s, batch 1, %s-bound; utilisation assumed %.0f %% / %.0f %%)\n",
                js(gv, "profile"), rnum(gv, "energy_j"), js(gv, "per"), rnum(gv, "time_s") * 1e6, js(gv, "dtype"),
                js(gv, "bound"), 100 * rnum(gv, "utilisation_compute"), 100 * rnum(gv, "utilisation_memory"));
    const json_t *db = json_object_get(en, "dense_baselines");
    if (!db)
        return;
    fprintf(out, "  dense (%s)  FP16 %.4g J, INT8 %.4g J arithmetic only; with memory FP16 %.4g J, INT8 %.4g J; "
                 "spiking with memory %.4g J\n",
            js(db, "profile"), rnum(db, "fp16_arith_j"), rnum(db, "int8_arith_j"), rnum(db, "fp16_with_memory_j"),
            rnum(db, "int8_with_memory_j"), rnum(db, "spiking_with_memory_j"));
    if (layers && json_object_get(db, "spikingbrain_estimate"))
        fprintf(out, "  SpikingBrain estimate  %.3g spikes per channel x INT8 add: %.1f %% less than an FP16 MAC, "
                     "%.1f %% less than an INT8 MAC\n",
                rnum(db, "spikingbrain_estimate.spikes_per_channel"),
                100 * rnum(db, "spikingbrain_estimate.reduction_vs_fp16_mac"),
                100 * rnum(db, "spikingbrain_estimate.reduction_vs_int8_mac"));
}

static void print_neurobench(const json_t *r, FILE *out)
{
    const json_t *nb = json_object_get(r, "neurobench");
    if (!nb)
        return;
    fprintf(out, "  NeuroBench       footprint %.4g B, connection sparsity %.3f, activation sparsity %.3f;\n"
                 "    per sample     effective ACs %.4g, effective MACs %.4g, dense %.4g, membrane updates %.4g\n",
            rnum(nb, "footprint_bytes"), rnum(nb, "connection_sparsity"), rnum(nb, "activation_sparsity"),
            rnum(nb, "effective_acs"), rnum(nb, "effective_macs"), rnum(nb, "dense"), rnum(nb, "membrane_updates"));
}

static void print_chip_time(const json_t *r, FILE *out);

static void print_layers(const json_t *r, FILE *out)
{
    char b1[32], b2[32], b3[32];
    fprintf(out, "nesim run %s — %.0f samples, %zu layers, %g s per tick\n\n", js(r, "spec"), rnum(r, "samples"),
            json_array_size(json_object_get(r, "layers")), rnum(r, "tick_s"));
    fprintf(out, "  %-10s %-8s %13s %-22s %5s %8s %7s %7s %14s %14s %11s\n", "layer", "type", "in -> out",
            "input coding", "T", "spk/ch", "[0,7]", "silent", "spikes", "SOPs", "ticks");
    double samples = rnum(r, "samples");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(r, "layers"), i, l) {
        char io[48], ticks[48];
        snprintf(io, sizeof io, "%.0f -> %.0f", rnum(l, "in"), rnum(l, "neurons"));
        const char *coding = json_string_value(json_object_get(l, "coding"));
        double f = rnum(l, "first_spike_tick"), la = rnum(l, "last_spike_tick");
        snprintf(ticks, sizeof ticks, "%.0f..%.0f", isfinite(f) ? f : -1, isfinite(la) ? la : -1);
        if (!coding) {
            /* a layer of neurons (a NIR graph's) has spikes and SOPs but no input coding */
            if (rnum(l, "spikes") > 0 || rnum(l, "sops") > 0)
                fprintf(out, "  %-10s %-8s %13s %-22s %5s %8s %7s %7s %14s %14s %11s\n", js(l, "name"), js(l, "type"),
                        io, "-", "", "", "", "", grp(rnum(l, "spikes"), b1, sizeof b1),
                        grp(rnum(l, "sops"), b2, sizeof b2), ticks);
            else
                fprintf(out, "  %-10s %-8s %13s\n", js(l, "name"), js(l, "type"), io);
            continue;
        }
        fprintf(out, "  %-10s %-8s %13s %-22s %5.1f %8.3f %6.1f%% %6.1f%% %14s %14s %11s\n", js(l, "name"),
                js(l, "type"), io, coding, samples > 0 ? rnum(l, "steps") / samples : 0, rnum(l, "spikes_per_channel"),
                100 * rnum(l, "frac_counts_0_7"), 100 * rnum(l, "silent_fraction"), grp(rnum(l, "spikes"), b1, sizeof b1),
                grp(rnum(l, "sops"), b2, sizeof b2), ticks);
    }
    const json_t *t = json_object_get(r, "totals");
    if (isfinite(rnum(t, "frac_counts_0_7")))
        fprintf(out, "\n  spike counts     %.1f %% in [0, 7], %.2f spikes per channel, %.1f %% of channels silent\n",
                100 * rnum(t, "frac_counts_0_7"), rnum(t, "spikes_per_channel"), 100 * rnum(t, "silent_fraction"));
    const json_t *p = json_object_get(r, "published");
    if (p)
        fprintf(out, "  published        %.1f %% in [0, 7], %.2f spikes per channel, %.1f %% of channels silent  (%s)\n",
                100 * rnum(p, "frac_counts_0_7"), rnum(p, "spikes_per_channel"), 100 * rnum(p, "silent_fraction"),
                js(p, "source"));
    double sops = rnum(t, "sops"), dense = rnum(t, "dense_macs"), ticks = rnum(t, "virtual_ticks");
    fprintf(out, "\n  spikes           %16s\n", grp(rnum(t, "spikes"), b1, sizeof b1));
    fprintf(out, "  synaptic ops     %16s   (%.1f %% of the dense layers' %s MACs)\n", grp(sops, b2, sizeof b2),
            dense > 0 ? 100 * sops / dense : 0, grp(dense, b3, sizeof b3));
    fprintf(out, "  virtual time     %16.0f ticks (%.1f per sample); events per tick %.1f mean, %.0f max\n", ticks,
            samples > 0 ? ticks / samples : 0, rnum(t, "events_per_tick_mean"), rnum(t, "events_per_tick_max"));
    if (json_object_get(r, "accuracy"))
        fprintf(out, "  accuracy         spiking %.2f %%, ANN %.2f %% (same class on %.1f %% of samples)\n",
                100 * rnum(r, "accuracy.spiking"), 100 * rnum(r, "accuracy.ann"), 100 * rnum(r, "accuracy.agreement"));
    print_chip(r, out, 1);
    print_chip_time(r, out);
    print_neurobench(r, out);
    double wall = rnum(r, "wall_s");
    if (isfinite(wall))
        fprintf(out, "\n  wall time        %16.3f s — %.2f G SOP/s\n", wall, wall > 0 ? sops / wall / 1e9 : 0);
    if (isfinite(rnum(r, "peak_rss_mib")))
        fprintf(out, "  peak memory      %16.1f MiB\n", rnum(r, "peak_rss_mib"));
}

static void print_chip_time(const json_t *r, FILE *out)
{
    const json_t *c = json_object_get(r, "chip_time");
    if (!c)
        return;
    const char *model = json_string_value(json_object_get(c, "model")); /* a trace keeps numbers only */
    if (model && !strcmp(model, "async")) {
        fprintf(out, "\n  chip time (async)  %.4g s elapsed for %.0f steps of input; latency from a step's input to its "
                     "last event %.4g us on average, %.4g us at most (step %.0f)\n",
                rnum(c, "total_s"), rnum(c, "steps"), rnum(c, "mean_step_s") * 1e6, rnum(c, "max_step_s") * 1e6,
                rnum(c, "max_step"));
        if (isfinite(rnum(c, "energy_delay_js")))
            fprintf(out, "                  energy-delay product %.4g J s\n", rnum(c, "energy_delay_js"));
        return;
    }
    fprintf(out, "\n  chip time%s%s%s  %.4g s for %.0f steps: %.4g us per step on average, %.4g us at most (step %.0f)\n",
            model ? " (" : "", model ? model : "", model ? ")" : "", rnum(c, "total_s"), rnum(c, "steps"),
            rnum(c, "mean_step_s") * 1e6, rnum(c, "max_step_s") * 1e6, rnum(c, "max_step"));
    const char *bound = json_string_value(json_object_get(c, "bound"));
    if (bound)
        fprintf(out, "                  slowest step: core %.0f, bound by its %s\n", rnum(c, "critical_core"), bound);
    if (isfinite(rnum(c, "sync_s")))
        fprintf(out, "                  sync %.3g us per step over %.0f routers\n", rnum(c, "sync_s") * 1e6,
                rnum(c, "routers"));
    const json_t *l = json_object_get(c, "busiest_link");
    if (l)
        fprintf(out, "                  busiest link in that step: leaving router (%.0f, %.0f) %s, busy %.4g us\n",
                rnum(l, "x"), rnum(l, "y"), js(l, "dir"), rnum(l, "busy_s") * 1e6);
    if (isfinite(rnum(c, "per_inference_s")))
        fprintf(out, "                  %.4g us per inference, %.4g inferences per chip-second\n",
                rnum(c, "per_inference_s") * 1e6, rnum(c, "inferences_per_s"));
    const json_t *pl = json_object_get(c, "per_layer");
    if (json_array_size(pl)) {
        fprintf(out, "                  while each layer plays:");
        size_t i;
        const json_t *v;
        json_array_foreach(pl, i, v)
            fprintf(out, "%s %s %.3g us (%.0f %%)", i ? "," : "", js(v, "name"), rnum(v, "chip_s") * 1e6,
                    100 * rnum(v, "share"));
        fprintf(out, "\n");
    }
    fprintf(out, "                  %.4g steps per chip-second", rnum(c, "steps") / rnum(c, "total_s"));
    if (isfinite(rnum(c, "energy_delay_js")))
        fprintf(out, ", energy-delay product %.4g J s", rnum(c, "energy_delay_js"));
    fprintf(out, "\n");
}

/* A SANA-FE network's run summary, as SANA-FE prints its own (YAML). */
static void print_sanafe(const json_t *r, FILE *out)
{
    const json_t *s = json_object_get(r, "sanafe_summary"), *e = json_object_get(s, "energy");
    if (!s)
        return;
    fprintf(out, "\n  SANA-FE run summary (nesim's run in SANA-FE's terms)\n");
    static const char *const ints[] = {"timesteps_executed", "total_spikes", "total_messages_sent",
                                       "total_neurons_updated", "total_neurons_fired", NULL};
    for (int i = 0; ints[i]; i++) {
        const json_t *x = json_object_get(s, ints[i]);
        if (json_is_integer(x))
            fprintf(out, "  %s: %lld\n", ints[i], (long long)json_integer_value(x));
        else
            fprintf(out, "  %s: ~  (needs --timing)\n", ints[i]);
    }
    fprintf(out, "  sim_time: %e\n  energy:\n", rnum(s, "sim_time"));
    static const char *const parts[] = {"synapse", "dendrite", "soma", "network", "total", NULL};
    for (int i = 0; parts[i]; i++)
        fprintf(out, "    %s: %e\n", parts[i], rnum(e, parts[i]));
}

static void print_network(const json_t *r, FILE *out)
{
    char b1[32], b2[32];
    fprintf(out, "nesim run %s — %.0f neurons, %g s virtual, tick %g ms\n\n", js(r, "spec"), rnum(r, "neurons"),
            rnum(r, "seconds"), rnum(r, "tick_s") * 1e3);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(r, "layers"), i, l)
        fprintf(out, "  %-12s %8.0f neurons  %8.2f Hz  (%s)\n", js(l, "name"), rnum(l, "neurons"), rnum(l, "rate_hz"),
                js(l, "type"));
    const json_t *t = json_object_get(r, "totals");
    double cv = rnum(t, "isi_cv");
    fprintf(out, "\n  mean rate        %8.2f Hz\n", rnum(t, "mean_rate_hz"));
    if (isfinite(cv))
        fprintf(out, "  ISI CV           %8.3f      (%.0f neurons with >= 2 intervals)\n", cv, rnum(t, "cv_neurons"));
    else
        fprintf(out, "  ISI CV                  -      (no neuron fired twice)\n");
    fprintf(out, "  spikes           %14s\n  synaptic events  %14s\n", grp(rnum(t, "spikes"), b1, sizeof b1),
            grp(rnum(t, "sops"), b2, sizeof b2));
    print_chip(r, out, 0);
    print_chip_time(r, out);
    print_neurobench(r, out);
    print_sanafe(r, out);
    if (isfinite(rnum(r, "wall_s")))
        fprintf(out, "\n  wall time        %8.3f s\n", rnum(r, "wall_s"));
    if (isfinite(rnum(r, "peak_rss_mib")))
        fprintf(out, "  peak memory      %8.1f MiB\n", rnum(r, "peak_rss_mib"));
}

int nesim_report_print(const json_t *report, FILE *out, nesim_error *err)
{
    if (!report)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory building the report");
    if (strcmp(js(report, "kind"), "network") == 0)
        print_network(report, out);
    else
        print_layers(report, out);
    if (fflush(out) || ferror(out))
        return nesim_fail(err, NESIM_EIO, "writing the report failed");
    return NESIM_OK;
}
