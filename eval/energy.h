/* energy.h — energy of a mapped run, term by term, and the dense baselines.
 *
 * The model (per term, per layer or population):
 *   synaptic     sops x E_sop
 *   update       membrane updates x E_update_active
 *   idle         (neurons x virtual ticks - membrane updates) x E_update_idle
 *                (a time-stepped chip visits every neuron every step)
 *   spike_out    spikes emitted x E_spike_out
 *   delivery     spikes x destination cores x E_spike_core (arrival at a core)
 *   routing      east-west hops x E_hop_ew + north-south hops x E_hop_ns
 *                + chip-boundary crossings x E_hop_chip (on top of their hops)
 *   static       cores x static power per core x duration
 * where duration = virtual ticks x the chip's step time (or the model's tick
 * when the chip gives none). Energy per synaptic operation = total / sops.
 *
 * Dense baselines for the same layers: MACs = in x out per sample (what the
 * ANN computes), arithmetic only (FP16 MAC = mult + add, INT8 likewise), and
 * with memory accesses (Lemaire et al. 2022): every weight read once per
 * sample and every activation read and written, at the energy of a 64-bit
 * access to an SRAM of the layer's size (or DRAM beyond the largest SRAM).
 * The spiking counterpart with memory reads a weight per synaptic operation
 * and reads + writes a membrane potential per update. SpikingBrain's own
 * estimate is the special case spikes per channel x E(INT8 add) against one
 * FP16 / INT8 MAC per channel. */
#ifndef NESIM_ENERGY_H
#define NESIM_ENERGY_H

#include <stddef.h>
#include <stdint.h>

typedef struct nesim_energy_params {
    double sop, update_active, update_idle, spike_out, spike_core, hop_ew, hop_ns, hop_chip; /* J */
    double static_w_per_core; /* W */
    double step_s;            /* chip time per virtual tick; 0: use the model's */
} nesim_energy_params;

typedef struct nesim_dense_params {
    double int8_add, int8_mult, fp16_add, fp16_mult, fp32_add, fp32_mult; /* J per op */
    double sram_size[3], sram_read64[3]; /* J per 64-bit access for memories up to size bytes */
    double dram_read64;
} nesim_dense_params;

enum { NESIM_E_SYNAPTIC, NESIM_E_UPDATE, NESIM_E_IDLE, NESIM_E_SPIKE_OUT, NESIM_E_DELIVERY,
       NESIM_E_ROUTING, NESIM_E_STATIC, NESIM_E_TERMS };

/* What one layer (or population) did in a run, as the energy model needs it. */
typedef struct nesim_energy_input {
    double sops, membrane_updates, neurons, spikes_in, spikes_out;
    double sop_j;             /* J per synaptic op when the layer's synapses are priced by how
                                 they are stored (net/chip.h syn_by_storage); 0: the profile's
                                 synaptic_op */
    double deliveries;        /* spikes x destination cores, into this layer */
    double hops_ew, hops_ns;  /* of the spikes into this layer */
    double hops_chip;         /* their chip-boundary crossings */
    double cores;             /* holding this layer's neurons */
    double dense_macs;        /* the ANN layer's multiply-accumulates */
    double weights;           /* weight count of the layer */
    double samples;           /* inferences run (each reads every weight once, densely) */
    double weight_bytes;      /* as stored */
    double weight_bits;       /* per weight, as stored */
    double in_values, out_values; /* activations per sample, all samples: reads and writes */
} nesim_energy_input;

typedef struct nesim_energy_layer {
    double term[NESIM_E_TERMS];
    double total;
    double fp16_arith, int8_arith, fp16_mem, int8_mem, snn_mem;
} nesim_energy_layer;

typedef struct nesim_energy_report {
    double term[NESIM_E_TERMS];
    double total, per_sop, duration_s, sops;
    double fp16_arith, int8_arith, fp16_mem, int8_mem, snn_arith_mem;
} nesim_energy_report;

const char *nesim_energy_term_name(int term);

/* SRAM/DRAM energy of one 64-bit access to a memory of `bytes`. */
double nesim_mem_access_j(const nesim_dense_params *d, double bytes);

/* Computes per-layer energies (out[n]) and the totals. ticks: virtual ticks of
 * the run; model_tick_s: seconds per tick of the model; total_cores: cores in use. */
void nesim_energy_compute(const nesim_energy_params *p, const nesim_dense_params *d,
                          const nesim_energy_input *in, size_t n, double ticks, double model_tick_s,
                          double total_cores, nesim_energy_layer *out, nesim_energy_report *rep);

/* SpikingBrain's arithmetic estimate: spikes per channel x E(INT8 add)
 * against E(FP16 MAC) and E(INT8 MAC); returns the two reductions (0..1). */
void nesim_spikingbrain_estimate(const nesim_dense_params *d, double spikes_per_channel,
                                 double *vs_fp16_mac, double *vs_int8_mac);

#endif
