/* fuzz_spec.c — libFuzzer target for nesim_spec_parse.
 *
 * Besides "no crash, no leak, no sanitizer report", it checks the parser's
 * contract: a failure is NESIM_EINVAL with a one-line message that starts
 * with the file name; a success yields a spec whose indices and sizes are in
 * range. Small accepted population specs are also built (connectivity drawn)
 * and run for a few ticks, since the parser promises that building then
 * fails only on resources. A breach aborts so the fuzzer records the input.
 * Seed corpus: tests/malformed/spec and examples/{b4,cuba}. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/spec.h"
#include "sim/network.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ok(const nesim_spec *s)
{
    if (!s->file || !s->name || !(s->tick > 0) || (!s->n_layers && !s->n_pops))
        abort();
    if (s->n_layers && (s->input_ndim < 1 || s->input_ndim > NESIM_SPEC_MAX_DIM))
        abort();
    for (size_t i = 0; i < s->n_layers; i++) {
        const nesim_spec_layer *L = &s->layers[i];
        if (!L->name || !L->name[0])
            abort();
        if ((L->type == NESIM_LAYER_LINEAR || L->type == NESIM_LAYER_CONV2D) &&
            L->weight.kind == NESIM_TSRC_NONE)
            abort();
        if (L->weight.kind == NESIM_TSRC_FILE && (!L->weight.file || !L->weight.file[0]))
            abort();
    }
    uint64_t total = 0;
    for (size_t i = 0; i < s->n_pops; i++) {
        if (!s->pops[i].n || !nesim_model_find(s->pops[i].model, NULL))
            abort();
        total += s->pops[i].n;
    }
    if (total > INT32_MAX)
        abort();
    for (size_t i = 0; i < s->n_projs; i++) {
        const nesim_spec_proj *J = &s->projs[i];
        if (J->pre < 0 || (size_t)J->pre >= s->n_pops || J->post < 0 || (size_t)J->post >= s->n_pops ||
            J->delay < 1 || !(J->p >= 0 && J->p <= 1))
            abort();
    }
}

static void try_build(const nesim_spec *s)
{
    uint64_t neurons = 0;
    for (size_t i = 0; i < s->n_pops; i++)
        neurons += s->pops[i].n;
    /* Keep builds cheap: at most 64 neurons (so at most 4096 synapses per
     * projection) and 64 projections. */
    if (!s->n_pops || neurons > 64 || s->n_projs > 64)
        return;
    nesim_graph *g;
    nesim_error err = {0};
    int rc = nesim_spec_build_graph(s, 1, &g, &err);
    if (rc != NESIM_OK) {
        /* parse accepted it: only resources may fail, or the .npy files an
           explicit projection names (read at build), with one line naming it */
        int files = 0;
        for (size_t i = 0; i < s->n_projs; i++) {
            files |= s->projs[i].has_matrix && s->projs[i].matrix.file;
            for (int k = 0; k < NESIM_SYN_LISTS; k++)
                files |= s->projs[i].has_syn[k] && s->projs[i].syn[k].file;
        }
        if (rc != NESIM_EINVAL || !files || strncmp(err.msg, "fuzz.json: projections[", 23) || strchr(err.msg, '\n'))
            abort();
        return;
    }
    nesim_net *net = nesim_net_from_graph(g, &err);
    if (!net)
        abort();
    rc = nesim_run(net, 20, &err);
    if (rc != NESIM_OK && (!err.msg[0] || rc == NESIM_EINVAL))
        abort();
    nesim_net_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nesim_spec *s = NULL;
    nesim_error err = {0};
    int rc = nesim_spec_parse((const char *)data, size, "fuzz.json", "base", &s, &err);
    if (rc != NESIM_OK) {
        if (rc != NESIM_EINVAL || err.code != rc || s || strncmp(err.msg, "fuzz.json", 9) != 0 ||
            (err.msg[9] != ':') || strchr(err.msg, '\n'))
            abort();
        return 0;
    }
    check_ok(s);
    try_build(s);
    nesim_spec_free(s);
    return 0;
}
