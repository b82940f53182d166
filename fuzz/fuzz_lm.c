/* fuzz_lm.c — libFuzzer target for the language-model readers: a
 * checkpoint's config.json, vocab.json and model.safetensors.index.json,
 * and a language-model spec (nesim spec), each beside the real weights of
 * examples/tiny-lm (run from the repository root).
 *
 * Input: byte 0 picks the file (0 config, 1 vocab, 2 index, 3 spec; 4 a
 * synthetic checkpoint's synthetic.json, 5 its config.json, beside
 * tests/fixtures/gla-swa-tiny's other file), the rest is its text. Contract checked besides memory safety: a failure is
 * NESIM_EINVAL, ENOMEM or EIO with a one-line message; a model that opens
 * plays one token. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/lm.h"
#include "net/lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], sdir[256];

static void put(const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void copy(const char *from, const char *name)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        abort(); /* run from the repository root */
    static char buf[1 << 16];
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *g = fopen(path, "wb");
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, n, g) != n)
            abort();
    fclose(f);
    fclose(g);
}

static void cleanup(void)
{
    static const char *const files[] = {"config.json", "vocab.json", "model.safetensors.index.json", "lm.json",
                                        "model.safetensors", "synthetic.json"};
    char path[512];
    for (int d = 0; d < 2; d++) {
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            snprintf(path, sizeof path, "%s/%s", d ? sdir : dir, files[i]);
            unlink(path);
        }
        rmdir(d ? sdir : dir);
    }
}

static void check(int rc, const nesim_error *e)
{
    if (rc == NESIM_OK)
        return;
    if ((rc != NESIM_EINVAL && rc != NESIM_ENOMEM && rc != NESIM_EIO) || !e->msg[0] || strchr(e->msg, '\n')) {
        fprintf(stderr, "fuzz_lm: returned %d: '%s'\n", rc, e->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/nesim-fuzz-lm-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        copy("examples/tiny-lm/model.safetensors", "model.safetensors");
        snprintf(sdir, sizeof sdir, "/tmp/nesim-fuzz-lm-syn-XXXXXX");
        if (!mkdtemp(sdir))
            abort();
        atexit(cleanup);
    }
    if (size < 1)
        return 0;
    int mode = data[0] % 6;
    if (mode >= 4) { /* a synthetic GLA-SWA checkpoint, one of its two files fuzzed */
        char keep[512], sp[512];
        snprintf(keep, sizeof keep, "tests/fixtures/gla-swa-tiny/%s", mode == 4 ? "config.json" : "synthetic.json");
        char save[256];
        memcpy(save, dir, sizeof save);
        memcpy(dir, sdir, sizeof dir); /* copy() and put() write into dir */
        copy(keep, mode == 4 ? "config.json" : "synthetic.json");
        put(mode == 4 ? "synthetic.json" : "config.json", data + 1, size - 1);
        memcpy(dir, save, sizeof dir);
        snprintf(sp, sizeof sp, "%s", sdir);
        nesim_error err = {0};
        nesim_lm_job_opts o;
        nesim_lm_job_opts_init(&o);
        static const int32_t ids[] = {1, 2};
        o.ids = ids, o.n_ids = 2, o.prefill = 2;
        o.chip = "none";
        o.dir = sp;
        json_t *rep = NULL;
        check(nesim_lm_job(&o, &rep, &err), &err);
        json_decref(rep);
        return 0;
    }
    char path[512];
    /* the real files, then the fuzzed one over its own */
    copy("examples/tiny-lm/config.json", "config.json");
    copy("examples/tiny-lm/vocab.json", "vocab.json");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    unlink(path);
    static const char *const names[] = {"config.json", "vocab.json", "model.safetensors.index.json", "lm.json"};
    put(names[mode], data + 1, size - 1);
    nesim_error err = {0};
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.prompt = "a";
    o.generate = 1;
    o.chip = "none";
    snprintf(path, sizeof path, "%s/lm.json", dir);
    if (mode == 3) {
        o.spec = path; /* its "checkpoint" must name the folder: seeds do, edits may not */
    } else {
        o.dir = dir;
    }
    json_t *rep = NULL;
    check(nesim_lm_job(&o, &rep, &err), &err);
    json_decref(rep);
    return 0;
}
