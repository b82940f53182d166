/* fuzz_sanafe.c — libFuzzer target for SANA-FE's files (net/sanafe.h): the
 * first byte picks the reader (architecture YAML, network YAML, netlist),
 * the rest is the file.
 *
 * Contract checked besides memory safety: a failure is NESIM_EINVAL (or
 * ENOMEM) with a one-line message starting with the file name; an
 * architecture that reads is a chip profile that loads; a network that reads
 * builds its graph or fails with one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "net/chip.h"
#include "net/graph.h"
#include "net/sanafe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fail(int rc, const nesim_error *err, const char *file)
{
    if ((rc != NESIM_EINVAL && rc != NESIM_ENOMEM) || !err->msg[0] || strchr(err->msg, '\n') ||
        (rc == NESIM_EINVAL && strncmp(err->msg, file, strlen(file))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    nesim_error err = {0};
    if (which == 0) {
        nesim_sanafe_arch *a = NULL;
        int rc = nesim_sanafe_arch_parse(text, len, "fuzz.yaml", &a, &err);
        if (rc) {
            check_fail(rc, &err, "fuzz.yaml");
            return 0;
        }
        char *doc = json_dumps(a->chip, JSON_COMPACT);
        nesim_chip *c = NULL;
        if (!doc)
            abort();
        rc = nesim_chip_parse(doc, strlen(doc), "fuzz.yaml", NULL, &c, &err);
        free(doc);
        if (rc)
            check_fail(rc, &err, "fuzz.yaml"); /* out-of-range numbers the chip checks refuse */
        nesim_chip_free(c);
        nesim_sanafe_arch_free(a);
        return 0;
    }
    const char *file = which == 1 ? "fuzz.yaml" : "fuzz.net";
    nesim_sanafe_layout lay = {8, 4, 4, 128};
    nesim_spec *s = NULL;
    int rc = nesim_sanafe_net_parse(text, len, file, which == 2, NULL, &lay, &s, &err);
    if (rc) {
        check_fail(rc, &err, file);
        return 0;
    }
    uint64_t syn = 0, neurons = 0;
    for (size_t i = 0; i < s->n_projs; i++)
        syn += s->projs[i].syn[0].n;
    for (size_t i = 0; i < s->n_pops; i++)
        neurons += s->pops[i].n;
    if (syn < (1u << 22) && neurons < (1u << 22)) { /* a graph of bounded size builds or says why */
        nesim_graph *g = NULL;
        rc = nesim_spec_build_graph(s, 1, &g, &err);
        if (rc)
            check_fail(rc, &err, file);
        nesim_graph_free(g);
    }
    nesim_spec_free(s);
    return 0;
}
