/* metrics.c — NeuroBench's figures and nesim's own (see metrics.h). */
#include "eval/metrics.h"

#include <string.h>

void nesim_metrics_layer_ops(const nesim_layer_report *l, double *effective, double *dense, int *is_ac)
{
    const nesim_layer *d = l->def;
    *effective = *dense = 0;
    *is_ac = 1;
    if (!d || !d->coded)
        return;
    for (size_t i = 0; i < d->in; i++)
        *effective += (double)l->chan_spikes[i] * (double)d->nnz_in[i];
    /* a coded layer is called once per step of its trains; a graded one once per sample */
    int graded = d->sl->graded;
    *dense = d->dense_taps * (double)(graded ? l->st.samples : l->st.steps);
    *is_ac = !graded || !l->graded_nonbinary;
}

void nesim_metrics_layers(const nesim_infer_report *r, nesim_neurobench *nb, nesim_own_metrics *own)
{
    memset(nb, 0, sizeof *nb);
    memset(own, 0, sizeof *own);
    double weights = 0, zeros = 0, acts = 0, spikes_coded = 0;
    for (size_t i = 0; i < r->n_layers; i++) {
        const nesim_layer_report *l = &r->layers[i];
        const nesim_layer *d = l->def;
        if (!d || !d->coded)
            continue;
        nb->footprint_bytes += d->weight_bytes;
        weights += d->weights;
        zeros += d->zero_weights;
        double eff, dense;
        int ac;
        nesim_metrics_layer_ops(l, &eff, &dense, &ac);
        *(ac ? &nb->effective_acs : &nb->effective_macs) += eff;
        nb->dense += dense;
        if (!d->sl->graded) {
            acts += (double)d->in * (double)l->st.steps;
            spikes_coded += (double)l->st.spikes;
            nb->membrane_updates += (double)l->st.updates;
        }
        own->graded_macs += l->graded_macs;
        own->inputs += (double)l->st.inputs;
        own->silent += (double)(l->st.silent + l->st.clipped);
        own->updates += (double)l->st.updates;
    }
    double s = r->samples > 0 ? (double)r->samples : 1;
    nb->samples = (double)r->samples;
    nb->connection_sparsity = weights > 0 ? zeros / weights : 0;
    nb->activation_sparsity = acts > 0 ? 1 - spikes_coded / acts : 0;
    nb->effective_acs /= s;
    nb->effective_macs /= s;
    nb->dense /= s;
    nb->membrane_updates /= s;
    own->spikes = (double)r->spikes;
    own->sops = (double)r->sops;
    own->dense_macs = r->dense_macs;
    own->silent_fraction = own->inputs > 0 ? own->silent / own->inputs : 0;
    own->spikes_per_channel = own->inputs > 0 ? own->spikes / own->inputs : 0;
    own->virtual_ticks = (double)r->ticks;
}

void nesim_metrics_network(const nesim_net *net, const uint64_t *spikes, const int64_t *last, int64_t ticks,
                           nesim_neurobench *nb, nesim_own_metrics *own)
{
    memset(nb, 0, sizeof *nb);
    memset(own, 0, sizeof *own);
    const nesim_graph *g = nesim_net_graph(net);
    double entries = 0, nonzero = 0, neurons = 0, spk = 0;
    for (int j = 0; j < g->n_projs; j++) {
        const nesim_graph_proj *pj = &g->projs[j];
        const nesim_graph_pop *pre = &g->pops[pj->s.pre];
        double pairs = (double)pre->n * (double)g->pops[pj->s.post].n;
        entries += pairs;
        nb->footprint_bytes += 4.0 * (double)pj->n_syn;
        if (pj->s.kind != NESIM_EXPLICIT && pj->s.weight == 0)
            continue;
        nonzero += (double)pj->n_syn;
        for (uint32_t i = 0; i < pre->n; i++)
            if (spikes[pre->first + i])
                nb->effective_acs += (double)spikes[pre->first + i] * (double)nesim_graph_fanout(g, j, i);
    }
    for (int p = 0; p < g->n_pops; p++) {
        const nesim_graph_pop *P = &g->pops[p];
        const nesim_dyn *d = &P->dyn;
        const nesim_counters *c = nesim_population_counters(net, p);
        own->updates += (double)c->updates;
        own->spikes += (double)c->spikes;
        own->sops += (double)c->sops;
        if (d->model->is_source)
            continue;
        neurons += P->n;
        spk += (double)c->spikes;
        /* with per-neuron constants: the population drifts when any class
         * does (a time-stepped core then updates all its neurons) */
        int drifts = 0;
        for (uint32_t q = 0; d->model->drifts && q < (P->cls ? P->n_cls : 1); q++)
            drifts |= d->model->drifts(P->cls ? &P->cdyn[q] : d) != 0;
        if (drifts) {
            double frozen = 0;
            for (uint32_t i = 0; i < P->n; i++) {
                uint64_t k = spikes[P->first + i];
                if (!k)
                    continue;
                int64_t ref = P->cls ? P->cdyn[P->cls[i]].ref_ticks : d->ref_ticks;
                int64_t R = ref > 1 ? ref : 1;
                int64_t tail = ticks - 1 - last[P->first + i];
                frozen += (double)(k - 1) * (double)(R - 1) + (double)(tail < R - 1 ? tail : R - 1);
            }
            nb->membrane_updates += (double)P->n * (double)ticks - frozen;
        } else {
            nb->membrane_updates += (double)c->updates;
        }
    }
    nb->samples = 1;
    nb->connection_sparsity = entries > 0 ? 1 - nonzero / entries : 0;
    nb->activation_sparsity = neurons > 0 && ticks > 0 ? 1 - spk / (neurons * (double)ticks) : 0;
    nb->dense = (double)ticks * entries;
    own->dense_macs = nb->dense;
    own->virtual_ticks = (double)ticks;
}
