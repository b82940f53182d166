/* report.h — the one report of a run, as JSON (jansson): what `nesim run
 * --json` prints, what a trace records and `nesim trace show` and the server
 * rebuild, and what the text tables are rendered from.
 *
 * Shape (keys in this order; numbers that are whole come out as integers,
 * NaN/Inf as null):
 *   {"kind": "layers"|"network", "model", "spec", "samples" (layers) |
 *    "neurons", "seconds" (network), "tick_s",
 *    "layers": [{"name", "type", "coding", "in", "spikes", "sops",
 *                "first_spike_tick", "last_spike_tick",   <- the fixed keys
 *                then the layer's metrics: "neurons", "steps", "vth_mean", ...,
 *                and "energy": {"total_j", "terms": {term: J}} on a chip}],
 *    "totals": {...}, "neurobench": {...} (eval/metrics.h),
 *    "published": {...} (when the spec gives figures),
 *    "energy": {"chip", "total_j", "per_sop_j", "per_inference_j",
 *               "duration_s", "terms", "dense_baselines": {...}},
 *    "chip_usage": {...}, "accuracy": {...}, "spike_checksum": "hex",
 *    "wall_s", "peak_rss_mib"}
 * A population of a network is a layer of the report: its "sops" are the
 * synaptic events of its spikes (what a trace counts per tick), "sops_in"
 * those delivered to it. A trace keeps every
 * number of a layer beyond the fixed keys as that layer's metrics, and every
 * other number as a run-level metric named by its dotted path
 * ("neurobench.effective_acs"), so the report it rebuilds is this one. */
#ifndef NESIM_EVAL_REPORT_H
#define NESIM_EVAL_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "eval/cost.h"
#include "eval/stats.h"
#include "net/spec.h"
#include "sim/infer.h"
#include "sim/network.h"

/* What a run knows that the library does not compute. */
typedef struct nesim_run_extras {
    double wall_s, peak_rss_mib; /* < 0: leave out */
    int has_accuracy;
    double acc_spiking, acc_ann, acc_agree;
    int has_checksum;
    uint64_t spike_checksum;
} nesim_run_extras;

/* The report of a finished layer run (cost may be NULL: no chip). NULL when
 * out of memory. */
json_t *nesim_report_layers(const nesim_spec *spec, const nesim_infer_report *r, const nesim_cost *cost,
                            const nesim_run_extras *x);

/* The report of a network run of `ticks` ticks (isi: its spike statistics). */
json_t *nesim_report_network(const nesim_spec *spec, const nesim_net *net, const nesim_isi *isi, int64_t ticks,
                             const nesim_cost *cost, const nesim_run_extras *x);

/* ---- the parts a trace reader rebuilds the report from ---- */

/* v rounded to an integer with thousands separators ("1,234,567"), or "?"
 * when not finite, into buf (n bytes). Returns buf. */
const char *nesim_fmt_grouped(double v, char *buf, size_t n);

/* A number as the report writes it: whole values as integers, NaN/Inf null. */
json_t *nesim_report_number(double v);

/* A layer object with its fixed keys (first/last -1: no spike, null). */
json_t *nesim_report_layer_new(const char *name, const char *type, const char *coding, double in, double spikes,
                               double sops, double first, double last);
/* Nonzero for the fixed keys of a layer object (and "energy", which traces
 * keep in their energy table). */
int nesim_report_layer_fixed(const char *key);

/* Calls visit for every number a trace records: layer >= 0 for a layer's
 * metrics (keys beyond the fixed ones, nested objects flattened with dots),
 * -1 for run-level ones (dotted paths; "layers" and strings excluded).
 * Stops at the first nonzero return and returns it. */
typedef int (*nesim_report_visit)(void *user, int layer, const char *name, double value);
int nesim_report_numbers(const json_t *report, nesim_report_visit visit, void *user);

/* obj["a"]["b"]["c"] = value for dotted "a.b.c", making the objects on the
 * way (value is stolen). Returns 0, or -1 when a part is not an object. */
int nesim_report_set_path(json_t *obj, const char *dotted, json_t *value);

/* The report as the tables `nesim run` prints; NESIM_EIO if writing fails. */
int nesim_report_print(const json_t *report, FILE *out, nesim_error *err);

/* One line of compact JSON. */
int nesim_report_write_json(const json_t *report, FILE *out, nesim_error *err);

#endif
