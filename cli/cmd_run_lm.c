/* cmd_run_lm.c — `nesim run CHECKPOINT_DIR`: a language model, token by
 * token (jobs/lm.h); prints the per-phase table or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/comm.h"
#include "eval/chiptime.h"
#include "jobs/lm.h"
#include "jobs/nir.h"
#include "net/lm.h"

static const char help[] =
    "usage: nesim run CHECKPOINT_DIR [options]\n"
    "       nesim run LM_SPEC.json [options]   (from nesim spec CHECKPOINT_DIR: the model's\n"
    "                                        graph with per-projection codings and k;\n"
    "                                        --coding/--spiked then do nothing)\n"
    "\n"
    "Plays a language model from a Hugging Face checkpoint folder (config.json +\n"
    "model.safetensors, model.safetensors.index.json or synthetic.json; Llama, Qwen2,\n"
    "Mistral, GLAswa: SpikingBrain-7B's hybrid) token\n"
    "by token: every spiked projection's input is coded into spikes (V_th = mean|x|/k\n"
    "per token) and played event by event; norms, RoPE, softmax attention with its KV\n"
    "cache and the SwiGLU product are graded work, counted and priced apart.\n"
    "\n"
    "options:\n"
    "  --prompt TEXT        prompt as text (the folder's vocab.json tokenizes it)\n"
    "  --tokens IDS.npy     prompt as token ids (1-D integer .npy)\n"
    "  --generate N         greedy tokens to generate after the prompt (default 0)\n"
    "  --output Y.npy       logits, f32 [prompt + generated tokens, vocab]\n"
    "  --eval-text FILE     perplexity on FILE: ANN and spiking, per --k value\n"
    "  --eval-tokens N      use the first N tokens of FILE (default: the position limit)\n"
    "  --k K[,K...]         threshold divisor (default 3); several, with --eval-text: one\n"
    "                       perplexity row each (the prompt then runs at k = 3)\n"
    "  --coding NAME        binary, ternary, bitwise, bitwise-bidirectional (default),\n"
    "                       bitwise-twos-complement\n"
    "  --spiked SET         released (q,k,v,o,gate,up; default), all (also down_proj and\n"
    "                       lm_head) or none (the ANN); on a spec, all and none override\n"
    "                       every node's coding (released keeps them)\n"
    "  --chip NAME|PATH     neuromorphic profile for the spiking share (default loihi;\n"
    "                       none: no energy)\n"
    "  --dense NAME|PATH    dense profile for graded work and the ANN (default dense-45nm)\n"
    "  --gpu NAME[,NAME]    GPU boards to set beside it (a100-sxm, metax-c550): the ANN's time\n"
    "                       and energy per token on each, by its roofline (bf16)\n"
    "  --steps-over WHAT    row: each token's spike trains as long as its own largest\n"
    "                       count needs; tensor: as long as the whole prompt's\n"
    "                       (SpikingBrain's T over batch x sequence; generated tokens are\n"
    "                       each their own tensor): the same counts, later spikes. Default:\n"
    "                       tensor for a GLAswaForCausalLM checkpoint (SpikingBrain's\n"
    "                       own), row otherwise\n"
    "  --threads N          threads per spiked projection (default: every core); the\n"
    "                       results are the same bits for any N\n"
    "  --timing MODEL       chip time per token on --chip: simple, detailed (or async on an\n"
    "                       asynchronous chip); the spiked projections mapped on the chip,\n"
    "                       every input spike timed at its tick (graded work takes none)\n"
    "  --trace DB.db        record the run in a trace (samples are tokens; layer 0 is the\n"
    "                       token stream): nesim trace, nesim serve and nesim replay\n"
    "                       --from-layer read it\n"
    "  --record LEVEL       none, activity or spikes (default; replay needs spikes)\n"
    "  --json               the report as one JSON object\n"
    "  --quiet              no progress on stderr\n"
    "  --mpi-timeout S      under mpirun -np K: end the run when the other ranks give no\n"
    "                       answer for S seconds (default 300). Under mpirun every spiked\n"
    "                       projection's output rows are split over the K ranks (blocks of\n"
    "                       64 rows); rank 0 prints the report and writes the trace and\n"
    "                       --output; the results are the same bits for any K\n";

static int parse_ks(const char *v, double **ks, size_t *n, nesim_error *err)
{
    *n = 0;
    size_t cap = 1;
    for (const char *p = v; p && *p; p++)
        cap += *p == ',';
    if (!v || !(*ks = malloc(cap * sizeof **ks)))
        return nesim_fail(err, NESIM_EINVAL, "--k: expected a number or a comma-separated list");
    char buf[64];
    for (const char *p = v;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len >= sizeof buf)
            return nesim_fail(err, NESIM_EINVAL, "--k: value too long");
        memcpy(buf, p, len);
        buf[len] = 0;
        int rc = cli_double("--k", buf, &(*ks)[*n], err);
        if (rc)
            return rc;
        if (!((*ks)[*n] > 0 && (*ks)[*n] < 1e6))
            return nesim_fail(err, NESIM_EINVAL, "--k: must be in (0, 1e6) (got %s)", buf);
        (*n)++;
        if (!e)
            break;
        p = e + 1;
    }
    return NESIM_OK;
}

static int parse(int argc, char **argv, nesim_lm_job_opts *o, double **ks, int *json, int *quiet,
                 double *mpi_timeout, nesim_error *err)
{
    nesim_lm_job_opts_init(o);
    *json = *quiet = 0;
    int rc = NESIM_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--json"))
            *json = 1;
        else if (!strcmp(a, "--quiet"))
            *quiet = 1;
        else if (!strcmp(a, "--mpi-timeout")) {
            if (!(rc = cli_double(a, v, mpi_timeout, err)) && !(*mpi_timeout > 0 && *mpi_timeout <= 1e6))
                rc = nesim_fail(err, NESIM_EINVAL, "--mpi-timeout: must be in (0, 1e6] seconds");
            i++;
        }
        else if (!strcmp(a, "--generate") || !strcmp(a, "--eval-tokens")) {
            if (!(rc = cli_u64(a, v, &u, err)) && u > 1000000)
                rc = nesim_fail(err, NESIM_EINVAL, "%s: must be at most 1000000", a);
            *(a[2] == 'g' ? &o->generate : &o->eval_max) = (size_t)u, i++;
        } else if (!strcmp(a, "--k")) {
            free(*ks);
            *ks = NULL;
            rc = parse_ks(v, ks, &o->nks, err), i++;
            if (!rc)
                o->k = o->nks == 1 ? (*ks)[0] : 3, o->ks = *ks;
        } else if (!strcmp(a, "--coding")) {
            rc = nesim_coding_parse(v, &o->coding, err), i++;
            if (rc)
                rc = nesim_fail(err, NESIM_EINVAL, "--coding: '%s' is not a coding (see --help)", v ? v : "");
        } else if (!strcmp(a, "--steps-over")) {
            if (v && !strcmp(v, "row"))
                o->steps_tensor = 0;
            else if (v && !strcmp(v, "tensor"))
                o->steps_tensor = 1;
            else
                rc = nesim_fail(err, NESIM_EINVAL, "--steps-over: expected row or tensor");
            i++;
        } else if (!strcmp(a, "--threads")) {
            uint64_t n;
            if (!(rc = cli_u64(a, v, &n, err)) && !(n >= 1 && n <= 256))
                rc = nesim_fail(err, NESIM_EINVAL, "--threads: must be in 1..256");
            o->threads = (int)n;
            i++;
        } else if (!strcmp(a, "--timing")) {
            int t = nesim_timing_parse(v);
            if (t < 0)
                rc = nesim_fail(err, NESIM_EINVAL, "--timing: expected simple, detailed, async or none (got '%s')",
                                v ? v : "nothing");
            else
                o->timing = t;
            i++;
        } else if (!strcmp(a, "--record")) {
            rc = nesim_trace_level_parse(v ? v : "", &o->record, err), i++;
        } else if (!strcmp(a, "--spiked")) {
            o->set_given = 1;
            if (v && !strcmp(v, "released"))
                o->set = NESIM_LM_SET_RELEASED;
            else if (v && !strcmp(v, "all"))
                o->set = NESIM_LM_SET_ALL;
            else if (v && !strcmp(v, "none"))
                o->set = NESIM_LM_SET_NONE;
            else
                rc = nesim_fail(err, NESIM_EINVAL, "--spiked: expected released, all or none");
            i++;
        } else {
            const char **dst = !strcmp(a, "--prompt")      ? &o->prompt
                               : !strcmp(a, "--tokens")    ? &o->tokens
                               : !strcmp(a, "--output")    ? &o->output
                               : !strcmp(a, "--eval-text") ? &o->eval_text
                               : !strcmp(a, "--chip")      ? &o->chip
                               : !strcmp(a, "--dense")     ? &o->dense
                               : !strcmp(a, "--gpu")       ? &o->gpu
                               : !strcmp(a, "--trace")     ? &o->trace
                                                           : NULL;
            if (dst) {
                if (!v)
                    return nesim_fail(err, NESIM_EINVAL, "%s: expected a value", a);
                *dst = v, i++;
            } else if (a[0] == '-' || o->dir || o->spec) {
                rc = nesim_fail(err, NESIM_EINVAL, "unexpected argument '%s' (see nesim run --help)", a);
            } else if (nesim_lm_is_checkpoint(a)) {
                o->dir = a;
            } else {
                o->spec = a;
            }
        }
    }
    if (!rc && o->prompt && o->tokens)
        rc = nesim_fail(err, NESIM_EINVAL, "--prompt and --tokens exclude each other");
    if (!rc && o->nks > 1 && !o->eval_text)
        rc = nesim_fail(err, NESIM_EINVAL, "--k: several values only with --eval-text");
    return rc;
}

static void show_progress(void *user, double done)
{
    fprintf(stderr, "\r  running %3.0f %%", 100 * done);
}

int cmd_run_lm(int argc, char **argv)
{
    nesim_error err = {0};
    nesim_lm_job_opts o;
    double *ks = NULL;
    int json, quiet;
    double mpi_timeout = 300;
    int rc = parse(argc, argv, &o, &ks, &json, &quiet, &mpi_timeout, &err);
    if (rc < 0) {
        free(ks);
        fputs(help, stdout);
        return CLI_OK;
    }
    nesim_comm *comm = NULL;
    if (!rc)
        rc = cli_comm_open(mpi_timeout, &comm, &err);
    int rank = nesim_comm_rank(comm);
    o.comm = comm;
    int show = !rc && rank == 0 && cli_progress_on(quiet);
    if (show)
        o.progress = show_progress;
    json_t *report = NULL;
    if (!rc)
        rc = nesim_lm_job(&o, &report, &err);
    if (show)
        fputs("\r\033[K", stderr);
    if (report && rank == 0) {
        if (json) {
            json_dumpf(report, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
            fputc('\n', stdout);
        } else {
            nesim_lm_report_print(report, stdout);
        }
    }
    json_decref(report);
    free(ks);
    if (rc && cli_comm_says(comm))
        fprintf(stderr, "nesim run: %s\n", err.msg);
    cli_comm_close(comm, rc ? cli_status(rc) : 0);
    cli_reraise_stop(); /* a recording stopped by a signal: die of it, as a shell expects */
    return cli_status(rc);
}

static const char spec_help[] =
    "usage: nesim spec CHECKPOINT_DIR [--coding NAME] [--k K] [--spiked released|all|none]\n"
    "                  [--output FILE.json]\n"
    "\n"
    "Prints the checkpoint's equivalent language-model spec (JSON), to stdout or\n"
    "--output: the folder and the model as a graph of named nodes (embedding,\n"
    "rmsnorm, linear, attention, add, mul, silu, relu), each with its inputs, its\n"
    "tensors (by name in the safetensors files) and, for projections, coding (none:\n"
    "graded) and k. Edit codings and k per layer, or the graph itself, and run it:\n"
    "nesim run SPEC.json --prompt ...\n";

int cmd_spec(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* a NIR graph */
        if (argv[i][0] != '-' && nesim_nir_job_is_model(argv[i]))
            return cmd_spec_nir(argc, argv);
    nesim_error err = {0};
    nesim_lm_job_opts o;
    double *ks = NULL;
    int json, quiet;
    double mpi_timeout = 300;
    int rc = parse(argc, argv, &o, &ks, &json, &quiet, &mpi_timeout, &err);
    free(ks);
    if (rc < 0) {
        fputs(spec_help, stdout);
        return CLI_OK;
    }
    if (!rc && (!o.dir || o.spec || o.prompt || o.tokens || o.eval_text || o.generate))
        rc = nesim_fail(&err, NESIM_EINVAL, "%s", o.dir || o.spec ? "nesim spec takes a checkpoint folder and "
                                                  "--coding, --k, --spiked only (see nesim spec --help)"
                                                  : "which checkpoint? nesim spec CHECKPOINT_DIR");
    json_t *spec = NULL;
    if (!rc)
        rc = nesim_lm_spec_build(o.dir, o.set, o.coding, o.k, &spec, &err);
    const size_t fl = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17);
    if (spec)
        rc = cli_write_json(spec, o.output, fl, &err);
    json_decref(spec);
    if (rc)
        fprintf(stderr, "nesim spec: %s\n", err.msg);
    return cli_status(rc);
}
