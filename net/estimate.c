/* estimate.c — memory a spec's run will take (see estimate.h). */
#include "net/estimate.h"

#include <sys/stat.h>

#include <stdio.h>
#include <string.h>

#include "neurons/neuron.h"

/* Bytes per neuron besides its state: the 64-byte record, population index,
 * fire and candidate lists (4 each), spike statistics (32), trace fan-out
 * (8), the mapper's spike count (8) and slack for the queue. */
#define PER_NEURON 136.0
/* A drawn synapse: a 4-byte target, doubled as the list grows (1.5 on average). */
#define PER_SYNAPSE 6.0
/* A pre neuron per projection: CSR offset (8) and its routes on a chip (28). */
#define PER_ROW 36.0
/* Activity per tick (8 bytes) for a sample's ticks, and per-layer buffers. */
#define TICKS_PER_SAMPLE 64.0
#define BATCH_BYTES (64.0 * 1024 * 1024)

static void add(nesim_estimate *e, double bytes, const char *fmt, const char *a, const char *b, double x)
{
    e->bytes += bytes;
    if (bytes > e->largest_bytes) {
        e->largest_bytes = bytes;
        snprintf(e->largest, sizeof e->largest, fmt, a, b, x);
    }
}

static double tensor_bytes(const nesim_spec_tensor *t)
{
    if (t->kind != NESIM_TSRC_SYNTHETIC)
        return 0; /* a file is mapped: its pages are the page cache's */
    double count = 1;
    for (int d = 0; d < t->ndim; d++)
        count *= (double)t->shape[d];
    if (t->quantize != NESIM_QUANT_INT8)
        return 4 * count;
    double group = t->group > 0 ? (double)t->group : (t->ndim ? (double)t->shape[t->ndim - 1] : 1);
    return count + 4 * count / group;
}

/* Synapses an explicit projection stores: its inline list or matrix's
 * nonzeros, or for a file an upper bound from its size (4-byte elements at
 * least); the file is not read here. */
static double explicit_synapses(const nesim_spec_proj *J)
{
    const nesim_spec_array *a = J->has_matrix ? &J->matrix : &J->syn[NESIM_SYN_PRE];
    if (a->file) {
        struct stat st;
        return stat(a->file, &st) == 0 ? (double)st.st_size / 4 : 0;
    }
    if (!J->has_matrix)
        return (double)a->n;
    double nz = 0;
    for (size_t k = 0; k < a->n; k++)
        nz += a->v[k] != 0;
    return nz;
}

double nesim_estimate_network(double neurons, double state, double synapses, double rows)
{
    return neurons * (PER_NEURON + 8 * state) + synapses * PER_SYNAPSE + rows * PER_ROW;
}

void nesim_spec_estimate(const nesim_spec *s, size_t samples, nesim_estimate *e)
{
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < s->n_pops; i++) {
        const nesim_spec_pop *P = &s->pops[i];
        const nesim_model *m = nesim_model_find(P->model, NULL);
        double st = m ? (double)m->n_state + 1 : 4;
        add(e, nesim_estimate_network((double)P->n, st, 0, 0), "population %s%s: %.4g neurons", P->name, "", (double)P->n);
        if (P->n_arrays) /* values, a class index per neuron, and at most one set of constants per neuron */
            add(e, (double)P->n * (8.0 * (double)P->n_arrays + 4 + sizeof(nesim_dyn)),
                "population %s%s: per-neuron parameters of %.4g neurons", P->name, "", (double)P->n);
    }
    for (size_t j = 0; j < s->n_projs; j++) {
        const nesim_spec_proj *J = &s->projs[j];
        const nesim_spec_pop *a = &s->pops[J->pre], *b = &s->pops[J->post];
        double syn = 0;
        if (J->rule == NESIM_FIXED_PROB)
            syn = (double)a->n * (double)b->n * J->p;
        else if (J->rule == NESIM_EXPLICIT)
            syn = explicit_synapses(J);
        else if (J->rule == NESIM_ALL_TO_ALL)
            syn = (double)a->n * (double)b->n;
        else
            syn = (double)a->n;
        e->synapses += syn;
        if (J->rule != NESIM_FIXED_PROB && J->rule != NESIM_EXPLICIT)
            syn = 0; /* computed, never stored */
        add(e, nesim_estimate_network(0, 0, syn, (double)a->n), "projection %s -> %s: %.4g synapses", a->name, b->name, syn);
    }
    for (size_t i = 0; i < s->n_layers; i++) {
        const nesim_spec_layer *L = &s->layers[i];
        double w = tensor_bytes(&L->weight) + tensor_bytes(&L->bias);
        add(e, w, "layer %s%s: %.4g bytes of synthetic weights", L->name, "", w);
    }
    if (s->n_layers && samples) {
        add(e, (double)samples * TICKS_PER_SAMPLE * 8, "%s%s%.4g samples of per-tick activity", "", "",
            (double)samples);
        add(e, BATCH_BYTES, "%s%sa batch of samples (%.0f MiB)", "", "", BATCH_BYTES / (1024 * 1024));
    }
}
