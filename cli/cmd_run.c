/* cmd_run.c — `nesim run SPEC`: run a model spec. Layer models play their
 * input samples through the coded layers and report spikes, synaptic
 * operations and accuracy; recurrent models run for --seconds and report
 * firing statistics. */
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/trace_run.h"
#include "net/spec.h"
#include "net/tensor.h"
#include "sim/cost.h"
#include "sim/infer.h"
#include "base/rng.h"
#include "sim/stats.h"

static const char help[] =
    "usage: nesim run SPEC [options]\n"
    "\n"
    "Runs a model spec (JSON; see README). A model with layers plays each input\n"
    "sample through its coded layers, event by event, and prints per-layer spikes,\n"
    "synaptic operations (SOPs) and spike-count statistics; a model with\n"
    "populations runs its recurrent network and prints firing statistics.\n"
    "\n"
    "options (layer models):\n"
    "  --input X.npy        input samples [samples, features...] (any numeric dtype)\n"
    "  --random-input N     N heavy-tailed synthetic samples instead (Student t, nu = 3)\n"
    "  --samples N          use only the first N samples\n"
    "  --output Y.npy       write the last layer's readout, f32 [samples, outputs]\n"
    "  --labels L.npy       integer labels [samples]: print spiking and ANN accuracy\n"
    "  --chip NAME|PATH     chip profile to map and price the run on (default loihi;\n"
    "                       `nesim chips` lists them; `none` skips mapping and energy)\n"
    "  --dense NAME|PATH    dense baseline profile (default dense-45nm)\n"
    "options (recurrent models):\n"
    "  --seconds S          virtual time to simulate (default 1)\n"
    "  --trace FILE.db      record the run into a trace database (see nesim trace)\n"
    "  --record LEVEL       what the trace keeps: none, activity or spikes (default spikes)\n"
    "common:\n"
    "  --seed N             seed for synthetic inputs and network draws (default: the spec's)\n"
    "  --json               print one JSON object instead of the tables\n"
    "  --quiet              no progress on stderr\n";

typedef struct run_opts {
    const char *spec, *input, *output, *labels, *chip, *dense, *trace, *record;
    uint64_t seed, random_n, samples;
    int has_seed, json, quiet;
    double seconds;
} run_opts;

static int parse(int argc, char **argv, run_opts *o, nesim_error *err)
{
    memset(o, 0, sizeof *o);
    o->seconds = 1;
    o->chip = "loihi";
    o->record = "spikes";
    o->dense = "dense-45nm";
    int rc = NESIM_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--quiet"))
            o->quiet = 1;
        else if (!strcmp(a, "--input") || !strcmp(a, "--output") || !strcmp(a, "--labels")) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "%s: expected a file name", a);
            *(a[2] == 'i' ? &o->input : a[2] == 'o' ? &o->output : &o->labels) = v;
            i++;
        } else if (!strcmp(a, "--trace") || !strcmp(a, "--record")) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "%s: expected a %s", a, a[2] == 't' ? "file name" : "level");
            *(a[2] == 't' ? &o->trace : &o->record) = v;
            i++;
        } else if (!strcmp(a, "--chip") || !strcmp(a, "--dense")) {
            if (!v)
                return nesim_fail(err, NESIM_EINVAL, "%s: expected a chip name or file", a);
            *(a[2] == 'c' ? &o->chip : &o->dense) = v;
            i++;
        } else if (!strcmp(a, "--seed")) {
            rc = cli_u64(a, v, &o->seed, err), o->has_seed = 1, i++;
        } else if (!strcmp(a, "--random-input")) {
            if (!(rc = cli_u64(a, v, &o->random_n, err)) && (o->random_n == 0 || o->random_n > 1000000))
                rc = nesim_fail(err, NESIM_EINVAL, "--random-input: must be in 1..1000000");
            i++;
        } else if (!strcmp(a, "--samples")) {
            if (!(rc = cli_u64(a, v, &o->samples, err)) && o->samples == 0)
                rc = nesim_fail(err, NESIM_EINVAL, "--samples: must be >= 1");
            i++;
        } else if (!strcmp(a, "--seconds")) {
            if (!(rc = cli_double(a, v, &o->seconds, err)) && !(o->seconds > 0 && o->seconds < 1e7))
                rc = nesim_fail(err, NESIM_EINVAL, "--seconds: must be > 0");
            i++;
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

/* Reads an .npy of any numeric dtype as float rows of `width` values. */
static int load_rows(const char *path, size_t width, float **out, size_t *rows, nesim_error *err)
{
    nesim_tensor t;
    int rc = nesim_npy_load(path, &t, err);
    if (rc)
        return rc;
    if (t.ndim < 1 || t.count == 0 || t.count / (size_t)t.shape[0] != width) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_EINVAL, "%s: expected [samples, ...] with %zu values per sample", path, width);
    }
    if ((rc = nesim_tensor_check_finite(&t, path, err))) {
        nesim_tensor_release(&t);
        return rc;
    }
    *rows = (size_t)t.shape[0];
    *out = malloc(t.count * sizeof **out);
    if (!*out) {
        nesim_tensor_release(&t);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t.count; i++)
        (*out)[i] = (float)nesim_tensor_get(&t, i);
    nesim_tensor_release(&t);
    return NESIM_OK;
}

static size_t argmax(const float *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[k])
            k = i;
    return k;
}

/* Checksum of a layer run's spike list, independent of the order in which the
 * layers report their spikes: the sum of a mixed FNV-1a hash of each spike's
 * (layer, channel, tick, sign). Chains to the trace's observers. */
typedef struct sum_sink {
    nesim_infer_sink next;
    uint64_t sum, n;
} sum_sink;

static void sum_spike(void *user, size_t layer, uint32_t channel, int64_t tick, int sign)
{
    sum_sink *k = user;
    uint64_t w[3] = {(uint64_t)layer << 32 | channel, (uint64_t)tick, (uint64_t)(int64_t)sign};
    const unsigned char *b = (const unsigned char *)w;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof w; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    k->sum += nesim_mix64(h);
    k->n++;
    if (k->next.spike)
        k->next.spike(k->next.user, layer, channel, tick, sign);
}
static void sum_activity(void *user, size_t layer, int64_t tick, int64_t events, int64_t sops)
{
    sum_sink *k = user;
    if (k->next.activity)
        k->next.activity(k->next.user, layer, tick, events, sops);
}
static void sum_sample(void *user, size_t sample, int64_t first, int64_t end)
{
    sum_sink *k = user;
    if (k->next.sample)
        k->next.sample(k->next.user, sample, first, end);
}
static void sum_code(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth)
{
    sum_sink *k = user;
    if (k->next.code)
        k->next.code(k->next.user, layer, sample, t0, steps, vth);
}

typedef struct progress_ctx {
    int show;
    trace_run *tr;
} progress_ctx;

static int progress_cb(void *user, int64_t done, int64_t total)
{
    progress_ctx *p = user;
    if (p->show && (done == total || done % 8 == 0))
        fprintf(stderr, "\r  sample %lld / %lld", (long long)done, (long long)total);
    return p->tr && trace_run_interrupted(p->tr);
}

/* names[i]: the name of cost layer i, or NULL to leave it out of the table */
static void print_cost_text(const nesim_cost *c, const char *const *names, double samples)
{
    char b1[32], b2[32];
    printf("\n  chip %s: %s cores on %llu chip%s, longest route %llu hops, %s routing-table entries (mapped in %.3f s)\n",
           c->chip, cli_grouped(c->map.cores, b1, sizeof b1), (unsigned long long)c->map.chips,
           c->map.chips == 1 ? "" : "s", (unsigned long long)c->map.max_hops,
           cli_grouped(c->map.routes, b2, sizeof b2), c->map_seconds);
    printf("  %-10s %7s %5s %11s %11s %11s %11s %11s\n", "layer", "cores", "comp", "synaptic", "updates",
           "routing", "other", "total J");
    for (size_t i = 0; i < c->n; i++) {
        const nesim_cost_layer *L = &c->layer[i];
        if (!names[i])
            continue;
        double other = L->e.term[NESIM_E_SPIKE_OUT] + L->e.term[NESIM_E_DELIVERY] + L->e.term[NESIM_E_STATIC];
        printf("  %-10s %7llu %5llu %11.3e %11.3e %11.3e %11.3e %11.3e\n", names[i],
               (unsigned long long)L->cores, (unsigned long long)L->compartments, L->e.term[NESIM_E_SYNAPTIC],
               L->e.term[NESIM_E_UPDATE] + L->e.term[NESIM_E_IDLE], L->e.term[NESIM_E_ROUTING], other, L->e.total);
    }
    const nesim_energy_report *E = &c->energy;
    if (samples > 0)
        printf("\n  energy           %.4g J in all, %.4g J per inference, %.3g pJ per synaptic operation\n", E->total,
               E->total / samples, E->per_sop * 1e12);
    else
        printf("\n  energy           %.4g J in all (%.4g s of chip time), %.3g pJ per synaptic operation\n", E->total,
               E->duration_s, E->per_sop * 1e12);
    printf("                  ");
    for (int t = 0; t < NESIM_E_TERMS; t++)
        printf("%s %.3g%s", nesim_energy_term_name(t), E->term[t], t + 1 < NESIM_E_TERMS ? ", " : " J\n");
    printf("  dense (%s)  FP16 %.4g J, INT8 %.4g J arithmetic only; with memory FP16 %.4g J, INT8 %.4g J; "
           "spiking with memory %.4g J\n", c->dense, E->fp16_arith, E->int8_arith, E->fp16_mem, E->int8_mem,
           E->snn_arith_mem);
    if (samples > 0)
        printf("  SpikingBrain estimate  %.3g spikes per channel x INT8 add: %.1f %% less than an FP16 MAC, %.1f %% less than an INT8 MAC\n",
               c->spikes_per_channel, 100 * c->sb_vs_fp16, 100 * c->sb_vs_int8);
    printf("  NeuroBench       footprint %.4g B, connection sparsity %.3f, activation sparsity %.3f,\n"
           "                   effective ACs %.4g, effective MACs %.4g, dense ops %.4g, membrane updates %.4g\n",
           c->footprint_bytes, c->connection_sparsity, c->activation_sparsity, c->effective_acs,
           c->effective_macs, c->dense_ops, c->membrane_updates);
}

static void print_cost_json(const nesim_cost *c, const char *const *names, double samples)
{
    const nesim_energy_report *E = &c->energy;
    printf(",\"energy\":{\"chip\":\"%s\",\"total_j\":%.9g,\"per_sop_j\":%.9g,\"per_inference_j\":%.9g,"
           "\"duration_s\":%.9g,\"terms\":{",
           c->chip, E->total, E->per_sop, samples > 0 ? E->total / samples : 0, E->duration_s);
    for (int t = 0; t < NESIM_E_TERMS; t++)
        printf("%s\"%s\":%.9g", t ? "," : "", nesim_energy_term_name(t), E->term[t]);
    printf("},\"per_layer\":[");
    for (size_t i = 0; i < c->n; i++) {
        printf("%s{\"name\":\"%s\",\"total_j\":%.9g,\"cores\":%llu,\"terms\":{", i ? "," : "", names[i] ? names[i] : "",
               c->layer[i].e.total, (unsigned long long)c->layer[i].cores);
        for (int t = 0; t < NESIM_E_TERMS; t++)
            printf("%s\"%s\":%.9g", t ? "," : "", nesim_energy_term_name(t), c->layer[i].e.term[t]);
        printf("}}");
    }
    printf("],\"dense_baselines\":{\"profile\":\"%s\",\"fp16_arith_j\":%.9g,\"int8_arith_j\":%.9g,"
           "\"fp16_with_memory_j\":%.9g,\"int8_with_memory_j\":%.9g,\"spiking_with_memory_j\":%.9g,"
           "\"spikingbrain_estimate\":{\"spikes_per_channel\":%.9g,\"reduction_vs_fp16_mac\":%.9g,"
           "\"reduction_vs_int8_mac\":%.9g}}}",
           c->dense, E->fp16_arith, E->int8_arith, E->fp16_mem, E->int8_mem, E->snn_arith_mem,
           c->spikes_per_channel, c->sb_vs_fp16, c->sb_vs_int8);
    printf(",\"chip_usage\":{\"cores\":%llu,\"chips\":%llu,\"max_hops\":%llu,\"routes\":%llu,\"map_s\":%.6f}",
           (unsigned long long)c->map.cores, (unsigned long long)c->map.chips, (unsigned long long)c->map.max_hops,
           (unsigned long long)c->map.routes, c->map_seconds);
}

static void print_layers(const run_opts *o, const nesim_spec *spec, const nesim_infer_report *r,
                         double wall, double ann_acc, double snn_acc, double agree, int has_acc,
                         const nesim_cost *cost, double trace_close_s, uint64_t checksum)
{
    const char *names[256];
    for (size_t i = 0; i < r->n_layers && i < 256; i++)
        names[i] = r->layers[i].coding ? r->layers[i].name : NULL;
    char b1[32], b2[32], b3[32];
    if (o->json) {
        printf("{\"model\":\"%s\",\"samples\":%lld,\"layers\":[", spec->name, (long long)r->samples);
        for (size_t i = 0; i < r->n_layers; i++) {
            const nesim_layer_report *l = &r->layers[i];
            const nesim_coded_stats *s = &l->st;
            printf("%s{\"name\":\"%s\",\"type\":\"%s\",\"coding\":%s%s%s,\"in\":%zu,\"neurons\":%zu,"
                   "\"spikes\":%lld,\"sops\":%lld,\"steps\":%lld,\"vth_mean\":%.17g,"
                   "\"activation_sparsity\":%.17g,\"frac_counts_0_7\":%.17g,\"spikes_per_channel\":%.17g,"
                   "\"silent_fraction\":%.17g,\"clipped\":%lld,\"first_spike_tick\":%lld,"
                   "\"last_spike_tick\":%lld,\"dense_macs\":%.0f,\"cores\":%llu}",
                   i ? "," : "", l->name, l->type, l->coding ? "\"" : "", l->coding ? l->coding : "null",
                   l->coding ? "\"" : "", l->in, l->out, (long long)s->spikes, (long long)s->sops,
                   (long long)s->steps, s->vth,
                   s->inputs ? (double)s->silent / (double)s->inputs : 0, s->frac_small,
                   s->spikes_per_channel, s->inputs ? (double)s->silent / (double)s->inputs : 0,
                   (long long)s->clipped, (long long)s->first_tick, (long long)s->last_tick,
                   l->dense_macs, cost ? (unsigned long long)cost->layer[i].cores : 0ull);
        }
        printf("],\"totals\":{\"spikes\":%lld,\"sops\":%lld,\"dense_macs\":%.0f,\"virtual_ticks\":%lld,"
               "\"events_per_tick_max\":%lld,\"events_per_tick_mean\":%.6g",
               (long long)r->spikes, (long long)r->sops, r->dense_macs, (long long)r->ticks,
               (long long)r->activity_max, r->activity_mean);
        if (cost)
            printf(",\"effective_acs\":%.0f,\"effective_macs\":%.0f,\"dense_ops\":%.0f,\"membrane_updates\":%.0f,"
                   "\"activation_sparsity\":%.6f,\"connection_sparsity\":%.6f,\"footprint_bytes\":%.0f",
                   cost->effective_acs, cost->effective_macs, cost->dense_ops, cost->membrane_updates,
                   cost->activation_sparsity, cost->connection_sparsity, cost->footprint_bytes);
        printf("}");
        if (cost)
            print_cost_json(cost, names, (double)r->samples);
        if (has_acc)
            printf(",\"accuracy\":{\"spiking\":%.6f,\"ann\":%.6f,\"agreement\":%.6f}", snn_acc, ann_acc, agree);
        if (trace_close_s >= 0)
            printf(",\"trace_close_s\":%.6f", trace_close_s);
        printf(",\"spike_checksum\":\"%016llx\"", (unsigned long long)checksum);
        printf(",\"wall_s\":%.6f,\"peak_rss_mib\":%.2f}\n", wall, cli_peak_rss_mib());
        return;
    }
    printf("nesim run %s — %lld samples, %zu layers, %g s per tick\n\n", spec->file,
           (long long)r->samples, r->n_layers, spec->tick);
    printf("  %-10s %-8s %13s %-22s %5s %8s %7s %7s %14s %14s %11s\n", "layer", "type", "in -> out",
           "input coding", "T", "spk/ch", "[0,7]", "silent", "spikes", "SOPs", "ticks");
    for (size_t i = 0; i < r->n_layers; i++) {
        const nesim_layer_report *l = &r->layers[i];
        const nesim_coded_stats *s = &l->st;
        char io[32], ticks[32];
        snprintf(io, sizeof io, "%zu -> %zu", l->in, l->out);
        if (!l->coding) {
            printf("  %-10s %-8s %13s\n", l->name, l->type, io);
            continue;
        }
        snprintf(ticks, sizeof ticks, "%lld..%lld", (long long)s->first_tick, (long long)s->last_tick);
        printf("  %-10s %-8s %13s %-22s %5.1f %8.3f %6.1f%% %6.1f%% %14s %14s %11s\n", l->name, l->type,
               io, l->coding, s->samples ? (double)s->steps / (double)s->samples : 0, s->spikes_per_channel,
               100 * s->frac_small, s->inputs ? 100.0 * (double)s->silent / (double)s->inputs : 0,
               cli_grouped((uint64_t)s->spikes, b1, sizeof b1), cli_grouped((uint64_t)s->sops, b2, sizeof b2),
               ticks);
    }
    int64_t inputs = 0, small = 0, silent = 0;
    for (size_t i = 0; i < r->n_layers; i++) {
        inputs += r->layers[i].st.inputs;
        small += r->layers[i].st.inputs - r->layers[i].st.hist[NESIM_CODED_HIST];
        silent += r->layers[i].st.silent;
    }
    if (inputs) {
        printf("\n  spike counts     %.1f %% in [0, 7], %.2f spikes per channel, %.1f %% of channels silent\n",
               100.0 * (double)small / (double)inputs, (double)r->spikes / (double)inputs,
               100.0 * (double)silent / (double)inputs);
        if (spec->has_published)
            printf("  published        %.1f %% in [0, 7], %.2f spikes per channel, %.1f %% of channels silent  (%s)\n",
                   100 * spec->pub_frac_small, spec->pub_spikes_per_channel, 100 * spec->pub_silent, spec->pub_source);
    }
    printf("\n  spikes           %16s\n", cli_grouped((uint64_t)r->spikes, b1, sizeof b1));
    printf("  synaptic ops     %16s   (%.1f %% of the dense layers' %s MACs)\n",
           cli_grouped((uint64_t)r->sops, b2, sizeof b2), r->dense_macs > 0 ? 100 * (double)r->sops / r->dense_macs : 0,
           cli_grouped((uint64_t)r->dense_macs, b3, sizeof b3));
    printf("  virtual time     %16lld ticks (%.1f per sample); events per tick %.1f mean, %lld max\n",
           (long long)r->ticks, r->samples ? (double)r->ticks / (double)r->samples : 0, r->activity_mean,
           (long long)r->activity_max);
    if (has_acc)
        printf("  accuracy         spiking %.2f %%, ANN %.2f %% (same class on %.1f %% of samples)\n",
               100 * snn_acc, 100 * ann_acc, 100 * agree);
    if (cost)
        print_cost_text(cost, names, (double)r->samples);
    printf("\n  wall time        %16.3f s — %.2f G SOP/s\n", wall, wall > 0 ? (double)r->sops / wall / 1e9 : 0);
    printf("  peak memory      %16.1f MiB\n", cli_peak_rss_mib());
}

static int run_layers(const run_opts *o, const nesim_spec *spec, nesim_error *err)
{
    nesim_infer *m = NULL;
    float *x = NULL, *y = NULL, *ya = NULL, *lab = NULL;
    size_t rows = 0, nl = 0;
    int rc = nesim_infer_open(spec, &m, err);
    if (rc)
        return rc;
    size_t w = nesim_infer_input_size(m), ow = nesim_infer_output_size(m);
    if (o->input) {
        rc = load_rows(o->input, w, &x, &rows, err);
    } else if (o->random_n) {
        rows = (size_t)o->random_n;
        x = malloc(rows * w * sizeof *x);
        gsl_rng *r = nesim_rng_new(o->has_seed ? o->seed : spec->seed, 1000);
        if (!x || !r)
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < rows * w; i++)
            x[i] = (float)gsl_ran_tdist(r, 3.0);
        if (r)
            gsl_rng_free(r);
    } else {
        rc = nesim_fail(err, NESIM_EINVAL, "%s has layers: give --input X.npy or --random-input N", spec->file);
    }
    if (!rc && o->samples && o->samples < rows)
        rows = (size_t)o->samples;
    if (!rc && o->labels) {
        rc = load_rows(o->labels, 1, &lab, &nl, err);
        if (!rc && nl < rows)
            rc = nesim_fail(err, NESIM_EINVAL, "%s: %zu labels for %zu samples", o->labels, nl, rows);
    }
    if (!rc && !(y = malloc(rows * ow * sizeof *y)))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    nesim_infer_report rep;
    trace_run tr;
    int tracing = 0;
    if (!rc && o->trace) {
        if (!(rc = trace_run_begin(&tr, o->trace, o->record, spec, m, NULL, strcmp(o->chip, "none") ? o->chip : NULL,
                                   o->has_seed ? o->seed : spec->seed, 0, NULL, err))) {
            tracing = 1;
            nesim_infer_sink sk = trace_run_infer_sink(&tr);
            nesim_infer_set_sink(m, &sk);
        }
    }
    sum_sink ck = {0};
    if (tracing)
        ck.next = trace_run_infer_sink(&tr);
    nesim_infer_sink cks = {.spike = sum_spike, .activity = sum_activity, .sample = sum_sample, .code = sum_code,
                            .user = &ck};
    if (!rc)
        nesim_infer_set_sink(m, &cks);
    progress_ctx pc = {cli_progress_on(o->quiet), tracing ? &tr : NULL};
    double t0 = cli_now();
    if (!rc)
        rc = nesim_infer_run(m, x, rows, y, 0, &rep, progress_cb, &pc, err);
    double wall = cli_now() - t0;
    if (pc.show)
        fputs("\r\033[K", stderr);
    nesim_infer_set_sink(m, NULL); /* the passes below are not the recorded run */
    int interrupted = tracing && trace_run_interrupted(&tr);
    double ann = 0, snn = 0, agree = 0;
    if (!rc && lab) {
        nesim_infer_report dense_rep;
        if (!(ya = malloc(rows * ow * sizeof *ya)))
            rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        if (!rc)
            rc = nesim_infer_run(m, x, rows, ya, 1, &dense_rep, NULL, NULL, err);
        for (size_t s = 0; !rc && s < rows; s++) {
            size_t ks = argmax(y + s * ow, ow), ka = argmax(ya + s * ow, ow);
            snn += (double)(ks == (size_t)lab[s]) / (double)rows;
            ann += (double)(ka == (size_t)lab[s]) / (double)rows;
            agree += (double)(ks == ka) / (double)rows;
        }
        /* the dense pass reuses the report buffers: run the spiking pass last */
        if (!rc)
            rc = nesim_infer_run(m, x, rows, y, 0, &rep, NULL, NULL, err);
    }
    if (!rc && o->output) {
        int64_t shape[2] = {(int64_t)rows, (int64_t)ow};
        rc = nesim_npy_write(o->output, NESIM_F32, 2, shape, y, err);
    }
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    if (!rc && strcmp(o->chip, "none") != 0) {
        rc = nesim_chip_load(o->chip, NULL, &chip, err);
        if (!rc)
            rc = nesim_chip_load(o->dense, NULL, &dense, err);
        if (!rc && !(rc = nesim_cost_layers(chip, dense, m, &rep, spec->tick, &cost, err)))
            costp = &cost;
    }
    double close_s = -1;
    if (tracing) {
        double tc = cli_now();
        nesim_error e2 = {0};
        int st = interrupted ? NESIM_TRACE_INTERRUPTED : rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE;
        int rc2 = trace_run_end_layers(&tr, rc ? NULL : &rep, costp, st, &e2);
        close_s = cli_now() - tc;
        if (!rc && rc2) {
            rc = rc2;
            *err = e2;
        }
        if (interrupted)
            *err = (nesim_error){NESIM_EIO, ""}, snprintf(err->msg, sizeof err->msg,
                                                          "interrupted; the trace marks the run interrupted");
    }
    if (!rc)
        print_layers(o, spec, &rep, wall, ann, snn, agree, lab != NULL, costp, close_s, ck.sum);
    if (costp)
        nesim_cost_free(costp);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    free(x);
    free(y);
    free(ya);
    free(lab);
    nesim_infer_close(m);
    return rc;
}

typedef struct net_sink {
    nesim_isi isi;
    trace_run *tr;
    uint64_t checksum; /* nesim_spike_checksum of the spikes, streamed */
} net_sink;

static int on_spike(void *ctx, int64_t t, uint32_t id, int pop)
{
    net_sink *ns = ctx;
    nesim_isi_add(&ns->isi, id, t);
    uint64_t w[2] = {(uint64_t)t, id};
    const unsigned char *b = (const unsigned char *)w;
    for (size_t i = 0; i < sizeof w; i++)
        ns->checksum = (ns->checksum ^ b[i]) * 1099511628211ull;
    return ns->tr ? trace_run_net_spike(ns->tr, t, id, pop) : 0;
}

static int run_network(const run_opts *o, const nesim_spec *spec, nesim_error *err)
{
    nesim_graph *g;
    int rc = nesim_spec_build_graph(spec, o->has_seed ? o->seed : spec->seed, &g, err);
    if (rc)
        return rc;
    nesim_net *net = nesim_net_from_graph(g, err);
    if (!net)
        return err->code;
    uint32_t n = 0;
    for (int p = 0; p < nesim_population_count(net); p++)
        n += nesim_population_size(net, p);
    net_sink ns = {.checksum = 1469598103934665603ull};
    trace_run tr;
    if ((rc = nesim_isi_init(&ns.isi, n, err))) {
        nesim_net_free(net);
        return rc;
    }
    if (o->trace && !(rc = trace_run_begin(&tr, o->trace, o->record, spec, NULL, net,
                                           strcmp(o->chip, "none") ? o->chip : NULL,
                                           o->has_seed ? o->seed : spec->seed, 0, NULL, err)))
        ns.tr = &tr;
    nesim_set_sink(net, on_spike, &ns);
    double t0 = cli_now();
    int64_t total = (int64_t)llround(o->seconds / spec->tick);
    int show = cli_progress_on(o->quiet);
    int64_t chunk = show ? (total + 99) / 100 : total;
    for (int64_t done = 0; done < total && !rc; done += chunk) {
        rc = nesim_run(net, total - done < chunk ? total - done : chunk, err);
        if (show)
            fprintf(stderr, "\r  simulating %3.0f %%", 100.0 * (double)(done + chunk < total ? done + chunk : total) / (double)total);
    }
    if (show)
        fputs("\r\033[K", stderr);
    double wall = cli_now() - t0;
    nesim_isi_summary s;
    if (!rc)
        rc = nesim_isi_summarise(&ns.isi, o->seconds, &s, err);
    nesim_chip *chip = NULL, *dense = NULL;
    nesim_cost cost, *costp = NULL;
    if (!rc && strcmp(o->chip, "none") != 0) {
        rc = nesim_chip_load(o->chip, NULL, &chip, err);
        if (!rc)
            rc = nesim_chip_load(o->dense, NULL, &dense, err);
        if (!rc && !(rc = nesim_cost_network(chip, dense, net, ns.isi.count, total, &cost, err)))
            costp = &cost;
    }
    double close_s = -1;
    if (ns.tr) {
        double tc = cli_now();
        nesim_error e2 = {0};
        int intr = trace_run_interrupted(&tr);
        int st = intr ? NESIM_TRACE_INTERRUPTED : rc ? NESIM_TRACE_FAILED : NESIM_TRACE_COMPLETE;
        int rc2 = trace_run_end_network(&tr, nesim_now(net), costp, st, &e2);
        close_s = cli_now() - tc;
        if (intr)
            rc = nesim_fail(err, NESIM_EIO, "interrupted; the trace marks the run interrupted");
        else if (!rc && rc2)
            rc = rc2, *err = e2;
    }
    const char *names[256] = {0};
    for (int p = 0; p < nesim_population_count(net) && p < 256; p++)
        names[p] = nesim_population_name(net, p);
    if (!rc) {
        uint64_t sops = 0;
        for (int p = 0; p < nesim_population_count(net); p++)
            sops += nesim_population_counters(net, p)->sops;
        if (o->json) {
            printf("{\"model\":\"%s\",\"neurons\":%u,\"seconds\":%g,\"mean_rate_hz\":%.6f,\"isi_cv\":%.6f,"
                   "\"spikes\":%llu,\"sops\":%llu,\"populations\":[",
                   spec->name, n, o->seconds, s.mean_rate_hz, s.cv_mean, (unsigned long long)s.spikes,
                   (unsigned long long)sops);
            for (int p = 0; p < nesim_population_count(net); p++)
                printf("%s{\"name\":\"%s\",\"neurons\":%u,\"spikes\":%llu,\"rate_hz\":%.6f}", p ? "," : "",
                       nesim_population_name(net, p), nesim_population_size(net, p),
                       (unsigned long long)nesim_population_counters(net, p)->spikes,
                       (double)nesim_population_counters(net, p)->spikes / (nesim_population_size(net, p) * o->seconds));
            printf("]");
            if (costp) {
                printf(",\"totals\":{\"spikes\":%.0f,\"sops\":%.0f,\"effective_acs\":%.0f,\"effective_macs\":0,"
                       "\"dense_ops\":%.0f,\"membrane_updates\":%.0f,\"footprint_bytes\":%.0f,\"virtual_ticks\":%lld}",
                       costp->spikes, costp->sops, costp->effective_acs, costp->dense_ops, costp->membrane_updates,
                       costp->footprint_bytes, (long long)total);
                print_cost_json(costp, names, 0);
            }
            if (close_s >= 0)
                printf(",\"trace_close_s\":%.6f", close_s);
            printf(",\"spike_checksum\":\"%016llx\"", (unsigned long long)ns.checksum);
            printf(",\"wall_s\":%.6f,\"peak_rss_mib\":%.2f}\n", wall, cli_peak_rss_mib());
        } else {
            char b1[32], b2[32];
            printf("nesim run %s — %u neurons, %g s virtual, tick %g ms\n\n", spec->file, n, o->seconds, spec->tick * 1e3);
            for (int p = 0; p < nesim_population_count(net); p++)
                printf("  %-12s %8u neurons  %8.2f Hz\n", nesim_population_name(net, p), nesim_population_size(net, p),
                       (double)nesim_population_counters(net, p)->spikes / (nesim_population_size(net, p) * o->seconds));
            printf("\n  mean rate        %8.2f Hz\n  ISI CV           %8.3f\n", s.mean_rate_hz, s.cv_mean);
            printf("  spikes           %14s\n  synaptic events  %14s\n", cli_grouped(s.spikes, b1, sizeof b1),
                   cli_grouped(sops, b2, sizeof b2));
            if (costp)
                print_cost_text(costp, names, 0);
            printf("\n  wall time        %8.3f s\n  peak memory      %8.1f MiB\n", wall, cli_peak_rss_mib());
        }
    }
    if (costp)
        nesim_cost_free(costp);
    nesim_chip_free(chip);
    nesim_chip_free(dense);
    nesim_isi_free(&ns.isi);
    nesim_net_free(net);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    nesim_error err = {0};
    run_opts o;
    int rc = parse(argc, argv, &o, &err);
    if (rc < 0) {
        fputs(help, stdout);
        return CLI_OK;
    }
    nesim_spec *spec = NULL;
    if (!rc)
        rc = nesim_spec_load(o.spec, &spec, &err);
    if (!rc)
        rc = spec->n_layers ? run_layers(&o, spec, &err) : run_network(&o, spec, &err);
    if (rc)
        fprintf(stderr, "nesim run: %s\n", err.msg);
    nesim_spec_free(spec);
    return cli_status(rc);
}
