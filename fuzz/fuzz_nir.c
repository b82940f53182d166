/* fuzz_nir.c — libFuzzer target for NIR graphs: the HDF5 reader
 * (nesim_nir_load), the network builder and a few steps of the runner.
 *
 * HDF5 reads files, so each input goes to a scratch file first; the reader
 * runs isolated (libhdf5 itself crashes or hangs on some damaged files: those
 * must become one-line errors). Contract
 * checked besides memory safety: a failure is NESIM_EINVAL (or ENOMEM) with
 * one line naming the file; a graph that loads either builds or is refused
 * the same way, and one that builds runs 3 steps of zero input.
 *
 * Under libFuzzer the child that reads the file inherits libFuzzer's crash
 * handler, so a libhdf5 crash there still leaves a crash-* file although the
 * parent contained it: replay such a file through build/san/fuzz/fuzz_nir
 * (exit 0 = contained, a libhdf5 bug; fuzz/corpus/nir/hdf5-* are such
 * files) before calling it nesim's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/nir.h"
#include "sim/nir_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, const nesim_error *err, const char *path)
{
    if ((rc != NESIM_EINVAL && rc != NESIM_ENOMEM) || !err->msg[0] || strchr(err->msg, '\n') ||
        !strstr(err->msg, path))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/nesim-fuzz-nir-%ld.nir", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    size_t w = fwrite(data, 1, size, f);
    fclose(f);
    if (w != size)
        return 0;
    nesim_nir_graph g;
    nesim_error err = {0};
    int rc = nesim_nir_load_isolated(path, 1, 5, &g, &err);
    if (rc != NESIM_OK) {
        check(rc, &err, path);
        unlink(path);
        return 0;
    }
    nesim_nir_opts o = {.dt = 1e-4};
    nesim_nir_net *net = NULL;
    rc = nesim_nir_net_new(&g, &o, path, &net, &err);
    if (rc != NESIM_OK)
        check(rc, &err, path);
    else if (nesim_nir_input_size(net) <= (1u << 20)) {
        double *x = calloc(3 * nesim_nir_input_size(net) + 1, sizeof *x);
        if (x && nesim_nir_run_sample(net, x, 3, &err) != NESIM_OK)
            abort();
        free(x);
    }
    nesim_nir_net_free(net);
    nesim_nir_free(&g);
    unlink(path);
    return 0;
}
