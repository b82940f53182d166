/* energy.c — the energy model (see energy.h). */
#include "eval/energy.h"

#include <string.h>

static const char *const term_names[NESIM_E_TERMS] = {"synaptic", "update", "idle", "spike_out",
                                                      "delivery", "routing", "static"};

const char *nesim_energy_term_name(int t) { return t >= 0 && t < NESIM_E_TERMS ? term_names[t] : "?"; }

double nesim_mem_access_j(const nesim_dense_params *d, double bytes)
{
    for (int i = 0; i < 3; i++)
        if (d->sram_size[i] > 0 && bytes <= d->sram_size[i])
            return d->sram_read64[i];
    return d->dram_read64;
}

void nesim_energy_compute(const nesim_energy_params *p, const nesim_dense_params *d,
                          const nesim_energy_input *in, size_t n, double ticks, double model_tick_s,
                          double total_cores, nesim_energy_layer *out, nesim_energy_report *rep)
{
    memset(rep, 0, sizeof *rep);
    double step = p->step_s > 0 ? p->step_s : model_tick_s;
    rep->duration_s = ticks * step;
    double fp16_mac = d->fp16_add + d->fp16_mult, int8_mac = d->int8_add + d->int8_mult;
    for (size_t i = 0; i < n; i++) {
        const nesim_energy_input *x = &in[i];
        nesim_energy_layer *o = &out[i];
        memset(o, 0, sizeof *o);
        double idle = x->neurons * ticks - x->membrane_updates;
        o->term[NESIM_E_SYNAPTIC] = x->sops * (x->sop_j > 0 ? x->sop_j : p->sop);
        o->term[NESIM_E_UPDATE] = x->membrane_updates * p->update_active;
        o->term[NESIM_E_IDLE] = (idle > 0 ? idle : 0) * p->update_idle;
        o->term[NESIM_E_SPIKE_OUT] = x->spikes_out * p->spike_out;
        o->term[NESIM_E_DELIVERY] = x->deliveries * p->spike_core;
        o->term[NESIM_E_ROUTING] = x->hops_ew * p->hop_ew + x->hops_ns * p->hop_ns + x->hops_chip * p->hop_chip;
        o->term[NESIM_E_STATIC] = total_cores > 0 ? x->cores * p->static_w_per_core * rep->duration_s : 0;
        for (int t = 0; t < NESIM_E_TERMS; t++) {
            o->total += o->term[t];
            rep->term[t] += o->term[t];
        }
        rep->total += o->total;
        rep->sops += x->sops;
        /* dense baselines: 64-bit accesses; FP16 holds 4 values per access, INT8 8 */
        double acts = x->in_values + x->out_values;
        o->fp16_arith = x->dense_macs * fp16_mac;
        o->int8_arith = x->dense_macs * int8_mac;
        o->fp16_mem = o->fp16_arith + x->weights * x->samples / 4 * nesim_mem_access_j(d, x->weights * 2) +
                      acts / 4 * nesim_mem_access_j(d, acts / (x->samples > 0 ? x->samples : 1) * 2);
        o->int8_mem = o->int8_arith + x->weights * x->samples / 8 * nesim_mem_access_j(d, x->weights) +
                      acts / 8 * nesim_mem_access_j(d, acts / (x->samples > 0 ? x->samples : 1));
        /* spiking: a weight per SOP, a 32-bit membrane read and write per update */
        o->snn_mem = x->sops * d->int8_add + x->sops * (x->weight_bits / 64) * nesim_mem_access_j(d, x->weight_bytes) +
                     x->membrane_updates * 2 * (32.0 / 64) * nesim_mem_access_j(d, x->neurons * 4);
        rep->fp16_arith += o->fp16_arith;
        rep->int8_arith += o->int8_arith;
        rep->fp16_mem += o->fp16_mem;
        rep->int8_mem += o->int8_mem;
        rep->snn_arith_mem += o->snn_mem;
    }
    rep->per_sop = rep->sops > 0 ? rep->total / rep->sops : 0;
}

void nesim_spikingbrain_estimate(const nesim_dense_params *d, double spc, double *vs_fp16, double *vs_int8)
{
    double ac = spc * d->int8_add;
    *vs_fp16 = 1 - ac / (d->fp16_add + d->fp16_mult);
    *vs_int8 = 1 - ac / (d->int8_add + d->int8_mult);
}
