/* infer.h — run a model's layers on input samples, event by event.
 *
 * nesim_infer_open() loads the spec's layers (net/layers.h: tensors, shapes,
 * checks) and prepares their kernels. nesim_infer_run() plays each sample
 * through the layers in virtual time: a coded layer (linear, conv2d) turns
 * its input into spikes (the SpikingBrain scheme, sim/coding.h) that start
 * at the tick its input became complete — an adaptive threshold needs the
 * whole row — and last its coding's steps; so a sample's latency is the sum
 * of its layers' windows, and sample s + 1 starts where sample s ended.
 * Chains of fixed-threshold layers overlap (sim/stream.h). Reports per
 * layer: spikes, synaptic operations, count statistics, first/last spike
 * tick, spikes per input channel. */
#ifndef NESIM_INFER_H
#define NESIM_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "net/layers.h"
#include "net/spec.h"
#include "sim/coded.h"

typedef struct nesim_infer nesim_infer;

typedef struct nesim_layer_report {
    const nesim_layer *def; /* the loaded layer: shapes, weights, targets (net/layers.h) */
    const char *name;       /* borrowed from the spec */
    const char *type;
    const char *coding;     /* NULL for layers that do not code; "none" for graded input */
    size_t in, out;         /* values per sample */
    nesim_coded_stats st;   /* summed over samples (zeros for non-coding layers) */
    double dense_macs;      /* what the dense layer would compute, all samples */
    double graded_macs;     /* "coding": "none": multiply-accumulates on nonzero graded inputs */
    int graded_nonbinary;   /* a graded input held a value outside {-1, 0, 1} */
    uint64_t *chan_spikes;  /* spikes per input channel, all samples (coded layers; graded:
                               nonzero values) */
    long src;               /* the layer it reads: -1 the model input */
} nesim_layer_report;

typedef struct nesim_infer_report {
    size_t n_layers;
    nesim_layer_report *layers; /* owned by the nesim_infer; valid until close/next run */
    int64_t samples;
    int64_t ticks;              /* virtual ticks used by all samples */
    int64_t spikes, sops;
    double dense_macs;
    /* events per tick over the whole run (all layers), ticks [0, ticks) */
    const int64_t *activity;
    int64_t activity_max;
    double activity_mean;
} nesim_infer_report;

int nesim_infer_open(const nesim_spec *spec, nesim_infer **out, nesim_error *err);
void nesim_infer_close(nesim_infer *m);
/* Threads each coded linear layer plays its events on (default 1; the
 * results are the same bits for any count). */
void nesim_infer_set_threads(nesim_infer *m, int threads);
/* Splits each coded linear layer's output rows over comm's ranks (every rank
 * runs the same calls and ends with the same bits; sim/coding.h). Other
 * layers run whole on every rank. NULL: this process alone. */
void nesim_infer_set_comm(nesim_infer *m, nesim_comm *comm);
/* With several ranks and every layer spiking linear or plain (a batched
 * run): the observers (the run's per-tick activity and spikes per channel,
 * and the sink) hear each sample on one rank only, the one that played it
 * (rank 0 for samples played sample by sample), and nesim_infer_finish sums
 * the activity and channel counts over the ranks; what the sink gathered is
 * the caller's to sum. For sinks that are sums (a checksum), never for one
 * that needs every spike in order (a trace, chip time). Default off. */
void nesim_infer_set_split_observers(nesim_infer *m, int on);
/* Whether the last run begun split its observers (the caller then sums its
 * sink's totals over the ranks). */
int nesim_infer_split_observers(const nesim_infer *m);
/* Samples a run may play together, layer by layer (default 16; 0 or 1:
 * sample by sample). Every layer spiking linear or plain is required; the
 * outputs, counters, virtual times and observer calls are those of the
 * sample-by-sample loop, bit for bit and in the same order. */
void nesim_infer_set_batch(nesim_infer *m, size_t samples);

/* The loaded layers (valid while m is). */
const nesim_layers *nesim_infer_graph(const nesim_infer *m);
/* Wall seconds spent making synthetic weights so far (layers are made as
 * they first play: nesim_layers_open_lazy), and those spent before the first
 * coded layer could play (what delays the first event). */
double nesim_infer_synth_s(const nesim_infer *m);
double nesim_infer_synth_first_s(const nesim_infer *m);
size_t nesim_infer_input_size(const nesim_infer *m);   /* values per sample */
size_t nesim_infer_output_size(const nesim_infer *m);
size_t nesim_infer_layers(const nesim_infer *m);
size_t nesim_infer_layer_inputs(const nesim_infer *m, size_t layer);

/* Optional observers of a spiking run (traces): every spike of every coded
 * layer's input (channel = input index, sign +-1, in tick order within a
 * layer and sample), events per tick per layer, and each sample's ticks. */
typedef struct nesim_infer_sink {
    void (*spike)(void *user, size_t layer, uint32_t channel, int64_t tick, int sign);
    void (*activity)(void *user, size_t layer, int64_t tick, int64_t events, int64_t sops);
    void (*sample)(void *user, size_t sample, int64_t first_tick, int64_t end_tick);
    /* each coded layer, each sample: its first tick, steps and threshold */
    void (*code)(void *user, size_t layer, size_t sample, int64_t t0, int64_t steps, double vth);
    void *user;
} nesim_infer_sink;

/* Installs (or with NULL removes) the observers for the next runs. */
void nesim_infer_set_sink(nesim_infer *m, const nesim_infer_sink *sink);

/* Progress callback: called after each sample; return nonzero to stop. */
typedef int (*nesim_infer_progress)(void *user, int64_t done, int64_t total);

/* x: samples * input_size floats; y (may be NULL): samples * output_size
 * floats, the last layer's readout on the dense model's scale. With dense
 * set, the same layers run as the ANN they came from (no coding, no
 * spikes: GSL BLAS for linear layers) and rep only counts samples. */
int nesim_infer_run(nesim_infer *m, const float *x, size_t samples, float *y, int dense,
                    nesim_infer_report *rep, nesim_infer_progress progress, void *user,
                    nesim_error *err);

/* The same run fed in parts, so samples need not all be in memory at once:
 * begin (total: the samples that will be fed, for the dense MAC counts),
 * feed any number of times (x: samples * input_size floats, continuing the
 * run's virtual time and sample numbering; y as in nesim_infer_run), then
 * finish. nesim_infer_run is begin + one feed + finish. Once the batch
 * that completes `total` has passed a layer, the layer's synthetic weight is
 * given back (nesim_layers_release; made again if it plays again), so a
 * stack holds about one layer's weights at a time. */
void nesim_infer_begin(nesim_infer *m, size_t total, int dense);
int nesim_infer_feed(nesim_infer *m, const float *x, size_t samples, float *y, nesim_infer_progress progress,
                     void *user, nesim_error *err);
int nesim_infer_finish(nesim_infer *m, nesim_infer_report *rep, nesim_error *err);

/* The ANN the layers came from, on x (samples * input_size floats) into y
 * (samples * output_size): no coding, no spikes, nothing counted. Leaves a
 * run in progress undisturbed (between feeds). */
int nesim_infer_dense(nesim_infer *m, const float *x, size_t samples, float *y, nesim_error *err);

/* Replay: runs layers start..end on given inputs of layer `start` (x:
 * samples * its input size), with that layer's threshold fixed per sample
 * (vth[s]) and sample s's layer `start` beginning at tick t0[s]; later layers
 * run as usual. Layers after `start` must read from `start` or later.
 * coding (if >= 0) and k (if > 0) override the input coding of the layers
 * after `start`. rep covers all layers (those before `start` stay empty). */
int nesim_infer_run_from(nesim_infer *m, size_t start, const float *x, const double *vth,
                         const int64_t *t0, size_t samples, float *y, int coding, double k,
                         nesim_infer_report *rep, nesim_error *err);

#endif
