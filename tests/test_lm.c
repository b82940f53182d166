/* test_lm.c — the language-model path against PyTorch (examples/tiny-lm/
 * reference, written by reference.py): the ANN logits against the plain
 * float32 PyTorch model and against its float64 replay with nesim's rounding
 * points, the spiking logits against SpikingBrain's released coding applied
 * in PyTorch, per-layer spike counts exactly; the KV cache (a 32-token
 * prompt, then 64 tokens one at a time) against PyTorch's all-at-once
 * causal pass; the checkpoint importer's refusals; the CLI end to end. */
#include "tests/support/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "eval/chiptime.h"
#include "jobs/lm.h"
#include "net/chip.h"
#include "net/lm.h"
#include "net/lm_graph.h"
#include "net/tensor.h"
#include "sim/lm.h"

#define DIR "examples/tiny-lm"
#define REF DIR "/reference/"

static const char *bin(void) { return getenv("NESIM") ? getenv("NESIM") : "build/rel/nesim"; }

/* A model, its architecture's graph and a run of it, freed together. */
typedef struct played {
    nesim_lm_model *m;
    nesim_lm_graph *g;
    nesim_lm_run *r;
} played;

static void played_free(played *p)
{
    nesim_lm_run_free(p->r);
    nesim_lm_graph_free(p->g);
    nesim_lm_close(p->m);
}

static void open_played(const char *dir, nesim_lm_spiked_set set, played *p)
{
    nesim_error err = {0};
    assert_ok(nesim_lm_open(dir, &p->m, &err), &err);
    assert_ok(nesim_lm_graph_from_model(p->m, set, NESIM_CODE_BITWISE_BIDIR, 3.0, &p->g, &err), &err);
    assert_ok(nesim_lm_run_new(p->g, NULL, &p->r, &err), &err);
}

/* Plays every reference token and checks each position's logits against
 * ref (rows of vocab floats): max |diff| <= rel * max |ref| of the row.
 * keep (may be NULL) receives the run, which the caller then frees. */
static void play_and_compare(nesim_lm_spiked_set set, const char *ref_file, double rel, played *keep)
{
    nesim_error err = {0};
    played p;
    nesim_tensor toks, ref;
    open_played(DIR, set, &p);
    assert_ok(nesim_npy_load(REF "tokens.npy", &toks, &err), &err);
    assert_ok(nesim_npy_load(ref_file, &ref, &err), &err);
    size_t V = p.m->cfg.vocab, T = toks.count;
    assert_int_equal(T, 96);
    assert_int_equal(ref.count, T * V);
    float *lg = malloc(V * sizeof *lg);
    double worst = 0;
    for (size_t t = 0; t < T; t++) {
        assert_ok(nesim_lm_step(p.r, (int32_t)nesim_tensor_get(&toks, t), lg, &err), &err);
        double mx = 0, d = 0;
        for (size_t v = 0; v < V; v++) {
            double b = nesim_tensor_get(&ref, t * V + v);
            mx = fmax(mx, fabs(b));
            d = fmax(d, fabs((double)lg[v] - b));
        }
        worst = fmax(worst, d / mx);
    }
    printf("  %s: worst row max|diff| / max|ref| = %.3g\n", ref_file, worst);
    assert_true(worst <= rel);
    free(lg);
    nesim_tensor_release(&toks);
    nesim_tensor_release(&ref);
    if (keep)
        *keep = p;
    else
        played_free(&p);
}

static void test_ann_equals_pytorch(void **st)
{
    play_and_compare(NESIM_LM_SET_NONE, REF "ann_f32.npy", 1e-4, NULL); /* PyTorch's own float32 model */
    play_and_compare(NESIM_LM_SET_NONE, REF "ann.npy", 1e-5, NULL);     /* float64 with nesim's roundings */
}

static void test_spiking_equals_pytorch_and_counts_exact(void **st)
{
    nesim_error err = {0};
    played p; /* bitwise bidirectional, k = 3, the released set */
    play_and_compare(NESIM_LM_SET_RELEASED, REF "spk.npy", 1e-4, &p);
    nesim_lm_model *m = p.m;
    nesim_lm_run *r = p.r;
    nesim_tensor cnt;
    assert_ok(nesim_npy_load(REF "spk_spikes.npy", &cnt, &err), &err);
    assert_int_equal(cnt.count, m->cfg.layers * NESIM_LM_NPROJ);
    assert_int_equal(p.g->n_proj, m->cfg.layers * NESIM_LM_NPROJ + 1);
    int64_t total = 0;
    for (size_t i = 0; i < m->cfg.layers * NESIM_LM_NPROJ; i++) {
        int64_t want = (int64_t)nesim_tensor_get(&cnt, i);
        assert_int_equal(nesim_lm_proj_stats(r, i)->spikes, want);
        total += want;
    }
    assert_true(total > 0);
    assert_int_equal(nesim_lm_run_totals(r)->spikes, total);
    /* every spike meets every output of its projection: SOPs = spikes x fan-out */
    int64_t sops = 0;
    for (size_t l = 0; l < m->cfg.layers; l++)
        for (int k = 0; k < NESIM_LM_NPROJ; k++)
            sops += nesim_lm_proj_stats(r, l * NESIM_LM_NPROJ + (size_t)k)->spikes * m->layer[l].w[k].shape[0];
    assert_int_equal(nesim_lm_run_totals(r)->sops, sops);
    nesim_tensor_release(&cnt);
    played_free(&p);
}

/* Writes DIR2 as a copy of the tiny model with config.json replaced. */
static const char *variant(const char *name, const char *cfg_edit_py)
{
    static char d[512];
    char cmd[4096];
    snprintf(d, sizeof d, "%s/%s", test_tmpdir(), name);
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && mkdir -p %s && cp " DIR "/config.json " DIR "/model.safetensors " DIR "/vocab.json %s/ && "
             "/usr/bin/python3 -c 'import json,sys; p=sys.argv[1]+\"/config.json\"; c=json.load(open(p)); %s; "
             "json.dump(c, open(p, \"w\"))' %s",
             d, d, d, cfg_edit_py, d);
    assert_int_equal(system(cmd), 0);
    return d;
}

static void expect_open_fails(const char *dir, const char *needle)
{
    nesim_error err = {0};
    nesim_lm_model *m = NULL;
    int rc = nesim_lm_open(dir, &m, &err);
    if (rc != NESIM_EINVAL || !strstr(err.msg, needle) || strchr(err.msg, '\n'))
        fail_msg("%s: rc %d, message '%s' (wanted '%s')", dir, rc, err.msg, needle);
    assert_null(m);
}

static void test_importer_refuses_bad_checkpoints(void **st)
{
    expect_open_fails(variant("arch", "c[\"architectures\"]=[\"GPT2LMHeadModel\"]"),
                      "'GPT2LMHeadModel' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM, "
                      "MistralForCausalLM, GLAswaForCausalLM)");
    /* a wider hidden size: the embedding no longer fits, named with the expected shape */
    expect_open_fails(variant("shape", "c[\"hidden_size\"]=160; c[\"head_dim\"]=40"),
                      "tensor 'model.embed_tokens.weight' has shape [96, 128], expected [96, 160]");
    /* Qwen2 needs q/k/v biases the checkpoint lacks */
    expect_open_fails(variant("qwen", "c[\"architectures\"]=[\"Qwen2ForCausalLM\"]"),
                      "model.layers.0.self_attn.q_proj.bias");
    expect_open_fails(variant("kv", "c[\"num_key_value_heads\"]=3"), "num_key_value_heads: must divide");
    /* a sharded index naming a shard that is not there */
    const char *d = variant("shard", "pass");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && mv model.safetensors model-00001-of-00002.safetensors && /usr/bin/python3 -c '"
             "import json,struct; f=open(\"model-00001-of-00002.safetensors\",\"rb\"); n=struct.unpack(\"<Q\",f.read(8))[0];"
             "h=json.loads(f.read(n)); h.pop(\"__metadata__\",None); names=sorted(h);"
             "wm={k:(\"model-00002-of-00002.safetensors\" if k==\"model.norm.weight\" else \"model-00001-of-00002.safetensors\") for k in names};"
             "json.dump({\"weight_map\":wm}, open(\"model.safetensors.index.json\",\"w\"))'",
             d);
    assert_int_equal(system(cmd), 0);
    expect_open_fails(d, "weight_map.model.norm.weight: shard 'model-00002-of-00002.safetensors' is missing");
    /* with the shard restored by name (a copy of shard 1), the sharded checkpoint opens */
    snprintf(cmd, sizeof cmd, "cp %s/model-00001-of-00002.safetensors %s/model-00002-of-00002.safetensors", d, d);
    assert_int_equal(system(cmd), 0);
    nesim_error err = {0};
    nesim_lm_model *m;
    assert_ok(nesim_lm_open(d, &m, &err), &err);
    assert_int_equal(m->nshards, 2);
    nesim_lm_close(m);
}

/* --------------------------------------------------------------- int8 */

typedef struct arena {
    void *p[1024];
    size_t n;
} arena;

static void *keep(arena *a, void *p)
{
    assert_non_null(p);
    assert_true(a->n < 1024);
    return a->p[a->n++] = p;
}

/* Writes two copies of the tiny model: in `i8` every projection weight
 * quantized to int8 per output row (layer 0: per group of in / 4 inputs,
 * scales stored as BF16) with "<name>_scale" beside it (compressed-tensors'
 * layout); in `f64` the same weights dequantized, w = q x scale, exactly, in
 * float64. mode 1 leaves the first projection's scale out; mode 2 gives it
 * shape [out + 1]. */
static void write_int8_pair(const char *i8, const char *f64, int mode)
{
    nesim_error err = {0};
    nesim_safetensors *src;
    assert_ok(nesim_safetensors_open(DIR "/model.safetensors", &src, &err), &err);
    const size_t n = nesim_safetensors_count(src);
    arena a = {0};
    const char **nm8 = keep(&a, calloc(2 * n, sizeof *nm8)), **nm64 = keep(&a, calloc(n, sizeof *nm64));
    nesim_tensor *t8 = keep(&a, calloc(2 * n, sizeof *t8)), *t64 = keep(&a, calloc(n, sizeof *t64));
    size_t k8 = 0, k64 = 0, nproj = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = nesim_safetensors_name(src, i);
        nesim_tensor w;
        assert_ok(nesim_safetensors_get(src, name, &w, &err), &err);
        if (!strstr(name, "_proj.weight")) {
            nm8[k8] = name, t8[k8++] = w;
            nm64[k64] = name, t64[k64++] = w;
            continue;
        }
        const size_t out = (size_t)w.shape[0], in = (size_t)w.shape[1];
        const int bf = strstr(name, "layers.0.") != NULL;
        const size_t G = bf ? 4 : 1, g = in / G, rows = mode == 2 && nproj == 0 ? out + 1 : out;
        int8_t *q = keep(&a, malloc(out * in));
        double *dq = keep(&a, malloc(out * in * sizeof *dq));
        float *sc = keep(&a, calloc(rows * G, sizeof *sc));
        uint16_t *sc16 = keep(&a, calloc(rows * G, sizeof *sc16));
        for (size_t o = 0; o < out; o++)
            for (size_t j = 0; j < G; j++) {
                double mx = 0;
                for (size_t c = j * g; c < (j + 1) * g; c++)
                    mx = fmax(mx, fabs(nesim_tensor_get(&w, o * in + c)));
                float s = (float)(mx > 0 ? mx / 127 : 1);
                uint32_t b;
                memcpy(&b, &s, 4);
                sc16[o * G + j] = (uint16_t)(b >> 16);
                if (bf) { /* a bfloat16 scale: exact in float32 */
                    b &= 0xffff0000u;
                    memcpy(&s, &b, 4);
                }
                sc[o * G + j] = s;
                for (size_t c = j * g; c < (j + 1) * g; c++) {
                    double v = nearbyint(nesim_tensor_get(&w, o * in + c) / (double)s);
                    q[o * in + c] = (int8_t)fmax(-127, fmin(127, v));
                    dq[o * in + c] = (double)q[o * in + c] * (double)s;
                }
            }
        char *sname = keep(&a, malloc(strlen(name) + 8));
        sprintf(sname, "%s_scale", name);
        nm8[k8] = name;
        t8[k8++] = (nesim_tensor){.dtype = NESIM_I8, .ndim = 2, .shape = {(int64_t)out, (int64_t)in},
                                  .count = out * in, .nbytes = out * in, .data = q};
        if (!(mode == 1 && nproj == 0)) {
            nm8[k8] = sname;
            t8[k8++] = (nesim_tensor){.dtype = bf ? NESIM_BF16 : NESIM_F32, .ndim = G > 1 ? 2 : 1,
                                      .shape = {(int64_t)rows, (int64_t)G}, .count = rows * G,
                                      .nbytes = rows * G * (bf ? 2 : 4), .data = bf ? (void *)sc16 : (void *)sc};
        }
        nm64[k64] = name;
        t64[k64++] = (nesim_tensor){.dtype = NESIM_F64, .ndim = 2, .shape = {(int64_t)out, (int64_t)in},
                                    .count = out * in, .nbytes = out * in * 8, .data = dq};
        nproj++;
    }
    char path[1024], cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s && mkdir -p %s %s && cp " DIR "/config.json " DIR "/vocab.json %s/ && cp "
             DIR "/config.json " DIR "/vocab.json %s/", i8, f64, i8, f64, i8, f64);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", i8);
    assert_ok(nesim_safetensors_write(path, k8, nm8, t8, &err), &err);
    snprintf(path, sizeof path, "%s/model.safetensors", f64);
    assert_ok(nesim_safetensors_write(path, k64, nm64, t64, &err), &err);
    nesim_safetensors_close(src);
    for (size_t i = 0; i < a.n; i++)
        free(a.p[i]);
}

/* Plays the reference tokens through the model at dir with `set` spiked:
 * logits of every position (caller frees), per-projection spikes into spk. */
static float *play_all(const char *dir, nesim_lm_spiked_set set, int64_t *spk)
{
    nesim_error err = {0};
    played p;
    nesim_tensor toks;
    open_played(dir, set, &p);
    assert_ok(nesim_npy_load(REF "tokens.npy", &toks, &err), &err);
    const size_t V = p.m->cfg.vocab, T = toks.count;
    float *lg = malloc(T * V * sizeof *lg);
    for (size_t t = 0; t < T; t++)
        assert_ok(nesim_lm_step(p.r, (int32_t)nesim_tensor_get(&toks, t), lg + t * V, &err), &err);
    for (size_t i = 0; i < p.g->n_proj; i++)
        spk[i] = nesim_lm_proj_stats(p.r, i)->spikes;
    played_free(&p);
    nesim_tensor_release(&toks);
    return lg;
}

/* An int8 checkpoint is the float model of its dequantized weights: the ANN
 * logits bit for bit, the spiking logits to float rounding with the same
 * spikes; missing or misshapen scales are refused by name. */
static void test_int8_checkpoint(void **st)
{
    char i8[512], f64[512];
    snprintf(i8, sizeof i8, "%s/int8", test_tmpdir());
    snprintf(f64, sizeof f64, "%s/f64", test_tmpdir());
    write_int8_pair(i8, f64, 0);
    nesim_error err = {0};
    nesim_lm_model *m;
    assert_ok(nesim_lm_open(i8, &m, &err), &err);
    assert_int_equal(m->layer[0].w[NESIM_LM_Q].dtype, NESIM_I8);
    assert_int_equal(m->layer[0].group[NESIM_LM_Q], 128 / 4);
    assert_int_equal(m->layer[1].group[NESIM_LM_DOWN], 352);
    nesim_lm_close(m);
    int64_t s8[64], s64[64];
    const size_t V = 96, T = 96;
    float *a = play_all(i8, NESIM_LM_SET_NONE, s8), *b = play_all(f64, NESIM_LM_SET_NONE, s64);
    assert_memory_equal(a, b, T * V * sizeof *a);
    free(a), free(b);
    a = play_all(i8, NESIM_LM_SET_ALL, s8), b = play_all(f64, NESIM_LM_SET_ALL, s64);
    double worst = 0, mx = 0;
    for (size_t i = 0; i < T * V; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i])), mx = fmax(mx, fabs((double)b[i]));
    printf("  int8 vs its float64 dequantization, all spiked: max|diff| %.3g of max|logit| %.3g\n", worst, mx);
    assert_true(worst <= 1e-5 * mx);
    int64_t total = 0;
    for (size_t i = 0; i < 4 * NESIM_LM_NPROJ + 1; i++)
        assert_int_equal(s8[i], s64[i]), total += s8[i];
    assert_true(total > 0);
    free(a), free(b);
    write_int8_pair(i8, f64, 1);
    expect_open_fails(i8, "tensor 'model.layers.0.mlp.down_proj.weight' is I8 but "
                          "'model.layers.0.mlp.down_proj.weight_scale' is missing");
    write_int8_pair(i8, f64, 2);
    expect_open_fails(i8, "model.layers.0.mlp.down_proj.weight_scale' must be float of shape [128], [128, 1] or "
                          "[128, G] with G dividing 352");
}

/* A chip profile's graded.mac / graded.element_op price the graded share;
 * a profile without them falls back to the dense profile's fp16, and says so. */
static void test_graded_share_priced_on_the_chip(void **st)
{
    char cmd[4096];
    const char *d = test_tmpdir();
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; d=sys.argv[1]; c=json.load(open(\"chips/loihi.json\"));"
             "c[\"name\"]=\"lg\"; c[\"graded\"][\"mac\"][\"value\"]=7e-12; c[\"graded\"][\"element_op\"][\"value\"]=3e-12;"
             "json.dump(c, open(d+\"/lg.json\",\"w\")); c[\"name\"]=\"lnone\"; del c[\"graded\"];"
             "json.dump(c, open(d+\"/lnone.json\",\"w\")); c[\"name\"]=\"lbad\"; c[\"graded\"]={\"mac\": {\"value\": 1e-12,"
             " \"unit\": \"J\", \"assumption\": \"x\"}}; json.dump(c, open(d+\"/lbad.json\",\"w\"))' %s", d);
    assert_int_equal(system(cmd), 0);
    const char *names[2] = {"lg", "lnone"};
    const double mac[2] = {7e-12, 1.5e-12}, elem[2] = {3e-12, 0.4e-12};
    for (int i = 0; i < 2; i++) {
        char chip[600];
        snprintf(chip, sizeof chip, "%s/%s.json", d, names[i]);
        nesim_lm_job_opts o;
        nesim_lm_job_opts_init(&o);
        o.dir = DIR;
        o.tokens = REF "tokens.npy";
        o.chip = chip;
        nesim_error err = {0};
        json_t *rep;
        assert_ok(nesim_lm_job(&o, &rep, &err), &err);
        const json_t *t = json_object_get(rep, "total");
        double want = (json_number_value(json_object_get(t, "dense_macs")) +
                       json_number_value(json_object_get(t, "attention_macs"))) * mac[i] +
                      json_number_value(json_object_get(t, "element_ops")) * elem[i];
        assert_true(want > 0);
        assert_close(json_number_value(json_object_get(t, "graded_j")), want, 1e-12, 0);
        assert_string_equal(json_string_value(json_object_get(rep, "graded_on")), i ? "dense-45nm" : "lg");
        json_decref(rep);
    }
    nesim_error err = {0};
    nesim_chip *c = NULL;
    char chip[600];
    snprintf(chip, sizeof chip, "%s/lbad.json", d);
    assert_int_equal(nesim_chip_load(chip, NULL, &c, &err), NESIM_EINVAL);
    if (!strstr(err.msg, "graded.element_op"))
        fail_msg("%s", err.msg);
}

/* chip time per token: every tick of the run is a token's, the tokens' chip
 * times add up to the run's, and a graph with nothing spiked is refused */
static void test_chip_time_per_token(void **st)
{
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.dir = DIR;
    o.tokens = REF "tokens.npy";
    o.generate = 2;
    o.timing = NESIM_TIMING_SIMPLE;
    nesim_error err = {0};
    json_t *rep;
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    const json_t *ct = json_object_get(rep, "chip_time");
    assert_non_null(ct);
    double total = json_real_value(json_object_get(ct, "total_s")), sum = 0;
    size_t i;
    json_t *tv;
    json_array_foreach(json_object_get(rep, "per_token"), i, tv) {
        double s = json_real_value(json_object_get(tv, "chip_s"));
        assert_true(s > 0);
        sum += s;
    }
    assert_close(sum, total, 1e-12, 0);
    const json_t *dec = json_object_get(ct, "decode");
    assert_int_equal(json_integer_value(json_object_get(dec, "tokens")), 2);
    /* each spiked projection's playing time: positive, and no more than the run's */
    const json_t *pp = json_object_get(ct, "per_projection");
    assert_true(json_array_size(pp) == 4 * 6);
    json_array_foreach(pp, i, tv) {
        double s = json_real_value(json_object_get(tv, "chip_s"));
        assert_true(s > 0 && s <= total);
    }
    assert_true(json_integer_value(json_object_get(ct, "cores")) > 0);
    /* the cores to hold the model: the timing's mapping, and the same without --timing */
    const json_int_t cores = json_integer_value(json_object_get(json_object_get(rep, "chip_usage"), "cores"));
    assert_int_equal(cores, json_integer_value(json_object_get(ct, "cores")));
    json_decref(rep);
    o.timing = NESIM_TIMING_NONE;
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "chip_usage"), "cores")), cores);
    assert_null(json_object_get(rep, "chip_time"));
    json_decref(rep);
    o.chip = "none"; /* no chip: nothing to hold */
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    assert_null(json_object_get(rep, "chip_usage"));
    json_decref(rep);
    o.chip = NULL;
    o.timing = NESIM_TIMING_SIMPLE;
    o.set = NESIM_LM_SET_NONE;
    assert_int_equal(nesim_lm_job(&o, &rep, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "no projection is spiked"));
}

/* SpikingBrain's T over the whole prompt: each spiked projection plays the
 * largest T any prompt token needs, every prompt token at that T, with the
 * same counts and logits as each token at its own T */
typedef struct steps_seen {
    int64_t *per; /* [proj * n + token] */
    size_t n;
} steps_seen;
static void seen_code(void *user, size_t proj, size_t token, int64_t t0, int64_t steps, double vth)
{
    steps_seen *s = user;
    if (token < s->n)
        s->per[proj * s->n + token] = steps;
}

static void test_steps_over_tensor(void **st)
{
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.dir = DIR;
    o.tokens = REF "tokens.npy";
    o.output = test_tmp("row.npy");
    nesim_error err = {0};
    json_t *row, *ten;
    assert_ok(nesim_lm_job(&o, &row, &err), &err);
    o.steps_tensor = 1;
    o.output = test_tmp("ten.npy");
    assert_ok(nesim_lm_job(&o, &ten, &err), &err);
    /* the same logits, counts and SOPs */
    nesim_tensor a, b;
    assert_ok(nesim_npy_load(test_tmp("row.npy"), &a, &err), &err);
    assert_ok(nesim_npy_load(test_tmp("ten.npy"), &b, &err), &err);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.data, b.data, a.count * sizeof(float));
    nesim_tensor_release(&a);
    nesim_tensor_release(&b);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(row, "total"), "sops")),
                     json_integer_value(json_object_get(json_object_get(ten, "total"), "sops")));
    /* each projection's tensor T is the largest of its tokens' own T */
    nesim_lm_model *m;
    nesim_lm_graph *g;
    assert_ok(nesim_lm_open(DIR, &m, &err), &err);
    assert_ok(nesim_lm_graph_from_model(m, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3, &g, &err), &err);
    nesim_tensor tk;
    assert_ok(nesim_npy_load(REF "tokens.npy", &tk, &err), &err);
    size_t n = tk.count;
    steps_seen ss = {calloc(g->n_proj * n, sizeof(int64_t)), n};
    nesim_lm_run *r;
    assert_ok(nesim_lm_run_new(g, NULL, &r, &err), &err);
    nesim_lm_sink sk = {.code = seen_code, .user = &ss};
    nesim_lm_run_set_sink(r, &sk);
    float *lg = malloc(m->cfg.vocab * sizeof *lg);
    for (size_t i = 0; i < n; i++)
        assert_ok(nesim_lm_step(r, (int32_t)nesim_tensor_get(&tk, i), lg, &err), &err);
    int64_t row_ticks = nesim_lm_run_tick(r);
    nesim_lm_run_free(r);
    const json_t *so = json_object_get(ten, "steps_over");
    assert_int_equal(json_integer_value(json_object_get(so, "prefill_ticks_row")), row_ticks);
    size_t i;
    json_t *pj;
    int checked = 0;
    json_array_foreach(json_object_get(so, "tensor_steps"), i, pj) {
        const char *name = json_string_value(json_object_get(pj, "name"));
        for (size_t p = 0; p < g->n_proj; p++) {
            if (strcmp(g->node[g->proj_node[p]].name, name))
                continue;
            int64_t mx = 0;
            for (size_t t = 0; t < n; t++)
                mx = ss.per[p * n + t] > mx ? ss.per[p * n + t] : mx;
            assert_int_equal(json_integer_value(json_object_get(pj, "steps")), mx);
            checked++;
        }
    }
    assert_true(checked > 0);
    /* played at those T, every prompt token takes them: more virtual time */
    memset(ss.per, 0, g->n_proj * n * sizeof(int64_t));
    assert_ok(nesim_lm_run_new(g, NULL, &r, &err), &err);
    json_array_foreach(json_object_get(so, "tensor_steps"), i, pj)
        for (size_t p = 0; p < g->n_proj; p++)
            if (!strcmp(g->node[g->proj_node[p]].name, json_string_value(json_object_get(pj, "name"))))
                assert_ok(nesim_lm_run_set_min_steps(r, p, json_integer_value(json_object_get(pj, "steps")), &err),
                          &err);
    nesim_lm_run_set_sink(r, &sk);
    for (size_t t = 0; t < n; t++)
        assert_ok(nesim_lm_step(r, (int32_t)nesim_tensor_get(&tk, t), lg, &err), &err);
    json_array_foreach(json_object_get(so, "tensor_steps"), i, pj)
        for (size_t p = 0; p < g->n_proj; p++)
            if (!strcmp(g->node[g->proj_node[p]].name, json_string_value(json_object_get(pj, "name"))))
                for (size_t t = 0; t < n; t++)
                    assert_int_equal(ss.per[p * n + t], json_integer_value(json_object_get(pj, "steps")));
    assert_true(nesim_lm_run_tick(r) > row_ticks);
    assert_int_equal(nesim_lm_run_tick(r), json_integer_value(json_object_get(so, "prefill_ticks_tensor")));
    /* a graded projection takes no min steps */
    size_t graded = g->n_proj;
    for (size_t p = 0; p < g->n_proj; p++)
        if (!nesim_lm_proj_coding(r, p)->spiked)
            graded = p;
    if (graded < g->n_proj)
        assert_int_equal(nesim_lm_run_set_min_steps(r, graded, 4, &err), NESIM_EINVAL);
    nesim_lm_run_free(r);
    free(lg);
    free(ss.per);
    nesim_tensor_release(&tk);
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
    json_decref(row);
    json_decref(ten);
}

/* Gated linear attention on real weights (examples/tiny-lm/gla.py: the
 * tiny model's attention swapped for GLA at the spec level) against the
 * fla recurrence written out in PyTorch float64: spiked, graded, and with
 * the per-head output norm; then a spec with a bad gate refused. */
static json_t *node_named(json_t *spec, const char *name);

static void gla_compare(const char *spec_path, int graded, const char *ref_file, double rel, int all_gla)
{
    nesim_error err = {0};
    json_error_t je;
    json_t *spec = json_load_file(spec_path, 0, &je);
    assert_non_null(spec);
    if (graded) { /* the ANN: every projection graded */
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(spec, "nodes"), i, n)
            if (!strcmp(json_string_value(json_object_get(n, "type")), "linear")) {
                json_object_set_new(n, "coding", json_string("none"));
                json_object_del(n, "k");
            }
    }
    nesim_lm_model *m;
    nesim_lm_graph *g;
    const char *ck = json_string_value(json_object_get(spec, "checkpoint"));
    assert_ok(nesim_lm_open(ck ? ck : DIR, &m, &err), &err);
    assert_ok(nesim_lm_graph_from_json(m, spec, spec_path, &g, &err), &err);
    /* the spec writer gives back what it read */
    json_t *again = nesim_lm_spec_json(g, ck ? ck : DIR);
    nesim_lm_graph *g2;
    assert_ok(nesim_lm_graph_from_json(m, again, "again", &g2, &err), &err);
    assert_int_equal(g2->n, g->n);
    json_decref(again);
    nesim_lm_graph_free(g2);
    nesim_lm_run *r;
    assert_ok(nesim_lm_run_new(g, NULL, &r, &err), &err);
    nesim_tensor toks, ref;
    assert_ok(nesim_npy_load(REF "tokens.npy", &toks, &err), &err);
    assert_ok(nesim_npy_load(ref_file, &ref, &err), &err);
    size_t V = m->cfg.vocab, T = toks.count;
    assert_int_equal(ref.count, T * V);
    float *lg = malloc(V * sizeof *lg);
    double worst = 0;
    int64_t macs0 = 0;
    for (size_t t = 0; t < T; t++) {
        assert_ok(nesim_lm_step(r, (int32_t)nesim_tensor_get(&toks, t), lg, &err), &err);
        double mx = 0, d = 0;
        for (size_t v = 0; v < V; v++) {
            double b = nesim_tensor_get(&ref, t * V + v);
            mx = fmax(mx, fabs(b));
            d = fmax(d, fabs((double)lg[v] - b));
        }
        worst = fmax(worst, d / mx);
        if (t == 0)
            macs0 = nesim_lm_run_totals(r)->attn_macs;
    }
    printf("  %s: worst row max|diff| / max|ref| = %.3g\n", ref_file, worst);
    assert_true(worst <= rel);
    /* GLA's graded work does not grow with the position (no cache): every token's MACs are the first's */
    if (all_gla)
        assert_int_equal(nesim_lm_run_totals(r)->attn_macs, macs0 * (int64_t)T);
    free(lg);
    nesim_tensor_release(&toks);
    nesim_tensor_release(&ref);
    nesim_lm_run_free(r);
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
    json_decref(spec);
}

static void test_gla_equals_pytorch(void **st)
{
    gla_compare("examples/tiny-lm/gla.json", 0, REF "gla_spk.npy", 1e-4, 1);
    gla_compare("examples/tiny-lm/gla.json", 1, REF "gla_ann.npy", 1e-4, 1);
    gla_compare("examples/tiny-lm/gla_norm.json", 1, REF "gla_norm_ann.npy", 1e-4, 0);
    /* SpikingBrain-76B's parallel hybrid layer: softmax attention beside a sigmoid-feature linear
     * attention with the key-tied gate, each normalised, summed (spiked) */
    gla_compare("examples/tiny-lm/hybrid.json", 0, REF "hybrid_spk.npy", 1e-4, 0);
    /* ... with its sink tokens: 4 learned keys and values per layer that every query sees
     * (examples/tiny-lm/sinks.py writes them and the oracle), which change the logits */
    gla_compare("examples/tiny-lm/hybrid_sinks.json", 0, REF "hybrid_sinks_spk.npy", 1e-4, 0);
    {
        nesim_error e0 = {0};
        nesim_tensor a, b;
        assert_ok(nesim_npy_load(REF "hybrid_spk.npy", &a, &e0), &e0);
        assert_ok(nesim_npy_load(REF "hybrid_sinks_spk.npy", &b, &e0), &e0);
        double d = 0;
        for (size_t i = 0; i < a.count; i++)
            d = fmax(d, fabs(nesim_tensor_get(&a, i) - nesim_tensor_get(&b, i)));
        assert_true(d > 1e-3);
        nesim_tensor_release(&a);
        nesim_tensor_release(&b);
        /* sinks of the wrong width are named */
        json_error_t je0;
        json_t *sp = json_load_file("examples/tiny-lm/hybrid_sinks.json", 0, &je0);
        assert_non_null(sp);
        json_object_set_new(json_object_get(node_named(sp, "layers.1.attn"), "sinks"), "v",
                            json_string("model.layers.1.self_attn.k_proj.weight"));
        nesim_lm_model *m0;
        nesim_lm_graph *g0;
        assert_ok(nesim_lm_open("examples/tiny-lm/sinks", &m0, &e0), &e0);
        assert_int_equal(nesim_lm_graph_from_json(m0, sp, "sp", &g0, &e0), NESIM_EINVAL);
        assert_non_null(strstr(e0.msg, "layers.1.attn"));
        assert_non_null(strstr(e0.msg, "sinks"));
        nesim_lm_close(m0);
        json_decref(sp);
    }
    /* a gate of the wrong size, named in the message */
    nesim_error err = {0};
    json_error_t je;
    json_t *spec = json_load_file("examples/tiny-lm/gla.json", 0, &je);
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(spec, "nodes"), i, n)
        if (!strcmp(json_string_value(json_object_get(n, "type")), "gla"))
            json_object_set_new(n, "gk", json_string("layers.0.q_proj"));
    nesim_lm_model *m;
    nesim_lm_graph *g;
    assert_ok(nesim_lm_open(DIR, &m, &err), &err);
    assert_int_equal(nesim_lm_graph_from_json(m, spec, "gla.json", &g, &err), NESIM_EINVAL);
    if (!strstr(err.msg, "gk: 'layers.0.q_proj' gives 128 values; gk needs 64"))
        fail_msg("%s", err.msg);
    /* a key-tied gate takes no gk */
    json_array_foreach(json_object_get(spec, "nodes"), i, n)
        if (!strcmp(json_string_value(json_object_get(n, "type")), "gla")) {
            json_object_set_new(n, "gk", json_string("layers.0.k_proj"));
            json_object_set_new(n, "gate", json_string("key"));
        }
    assert_int_equal(nesim_lm_graph_from_json(m, spec, "gla.json", &g, &err), NESIM_EINVAL);
    if (!strstr(err.msg, "gk: a key-tied gate takes no gk"))
        fail_msg("%s", err.msg);
    nesim_lm_close(m);
    json_decref(spec);
}

/* W8ASpike's int8 K/V fake quantization, by hand */
static void test_int8_kv_fake_quant(void **st)
{
    double a[4] = {127, -3.5, 2.5, 0.4}; /* max 127: scale 1; -3.5 and 2.5 round half to even */
    nesim_lm_int8_fake_quant(a, 4);
    assert_true(a[0] == 127 && a[1] == -4 && a[2] == 2 && a[3] == 0);
    double b[2] = {1e-7, -2e-7}; /* scale clamped up to 1e-5: both round to 0 */
    nesim_lm_int8_fake_quant(b, 2);
    assert_true(b[0] == 0 && b[1] == 0);
    double c[2] = {2e6, -3e6}; /* scale clamped down to 1e4: 200 and -300 clamp to 127 and -128 */
    nesim_lm_int8_fake_quant(c, 2);
    assert_true(c[0] == 127e4 && c[1] == -128e4);
}

/* A sliding window's edge: a one-layer model with window 8 (the tiny model's
 * positions stop at 256; SpikingBrain's window is 4096): position p reads
 * tokens p - 7 .. p, so changing token p - 8 leaves p's logits alone and
 * changing token p - 7 does not; with int8 K/V and a spike-coded query too */
static void window_logits(const json_t *spec, const int32_t *ids, size_t n, float *out)
{
    nesim_error err = {0};
    nesim_lm_model *m;
    nesim_lm_graph *g;
    nesim_lm_run *r;
    assert_ok(nesim_lm_open(DIR, &m, &err), &err);
    assert_ok(nesim_lm_graph_from_json(m, spec, "window", &g, &err), &err);
    assert_ok(nesim_lm_run_new(g, NULL, &r, &err), &err);
    for (size_t i = 0; i < n; i++)
        assert_ok(nesim_lm_step(r, ids[i], out, &err), &err);
    nesim_lm_run_free(r);
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
}

static void test_window_edge(void **st)
{
    char cmd[4096];
    const char *spec_path = test_tmp("window.json");
    /* layer 0 only (the rest dropped), window 8 */
    snprintf(cmd, sizeof cmd,
             "%s spec " DIR " | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); "
             "keep=[n for n in s[\"nodes\"] if not n[\"name\"].startswith((\"layers.1\",\"layers.2\",\"layers.3\"))]; "
             "[n.update(window=8, kv_quant=\"int8\", q_k=3.0) for n in keep if n[\"type\"]==\"attention\"]; "
             "[n.update(input=\"layers.0.mlp_add\") for n in keep if n[\"name\"]==\"norm\"]; "
             "s[\"nodes\"]=keep; json.dump(s, open(sys.argv[1],\"w\"))' %s",
             bin(), spec_path);
    assert_int_equal(system(cmd), 0);
    json_error_t je;
    json_t *spec = json_load_file(spec_path, 0, &je);
    assert_non_null(spec);
    enum { N = 40, P = 30 };
    int32_t a[N], b[N], c[N];
    for (int i = 0; i < N; i++)
        a[i] = b[i] = c[i] = 10 + i % 50;
    b[P - 8] = 77; /* outside p's window */
    c[P - 7] = 77; /* inside */
    float la[96], lb[96], lc[96];
    window_logits(spec, a, P + 1, la);
    window_logits(spec, b, P + 1, lb);
    window_logits(spec, c, P + 1, lc);
    assert_memory_equal(la, lb, sizeof la);
    assert_memory_not_equal(la, lc, sizeof la);
    json_decref(spec);
}

/* Mixture of experts (examples/tiny-lm/gla.py's moe.json: every MLP as 64
 * experts, top-2 softmax renormalised, plus a shared expert) against the
 * PyTorch oracle: the same logits, the same routes token by token, and the
 * spikes of routed experts only; top-1 sigmoid graded; ties in the top-k */
static void test_moe_equals_pytorch(void **st)
{
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.spec = "examples/tiny-lm/moe.json";
    o.tokens = REF "tokens.npy";
    o.output = test_tmp("moe.npy");
    o.timing = NESIM_TIMING_SIMPLE; /* every expert mapped, routed ones timed */
    nesim_error err = {0};
    json_t *rep;
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    nesim_tensor a, b, routes, spikes;
    assert_ok(nesim_npy_load(test_tmp("moe.npy"), &a, &err), &err);
    assert_ok(nesim_npy_load(REF "moe_spk.npy", &b, &err), &err);
    assert_int_equal(a.count, b.count);
    double worst = 0;
    for (size_t i = 0; i < a.count; i++)
        worst = fmax(worst, fabs(nesim_tensor_get(&a, i) - nesim_tensor_get(&b, i)));
    assert_true(worst <= 1e-4);
    assert_ok(nesim_npy_load(REF "moe_spikes.npy", &spikes, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "total"), "spikes")),
                     (int64_t)nesim_tensor_get(&spikes, 0));
    assert_ok(nesim_npy_load(REF "moe_routes.npy", &routes, &err), &err);
    size_t i;
    json_t *tj;
    json_array_foreach(json_object_get(rep, "per_token"), i, tj) {
        const json_t *ex = json_object_get(tj, "experts");
        for (int L = 0; L < 4; L++) {
            char nm[32];
            snprintf(nm, sizeof nm, "layers.%d.moe", L);
            const json_t *sel = json_object_get(ex, nm);
            assert_int_equal(json_array_size(sel), 2);
            for (size_t q = 0; q < 2; q++)
                assert_int_equal(json_integer_value(json_array_get(sel, q)),
                                 (int64_t)nesim_tensor_get(&routes, i * 8 + (size_t)L * 2 + q));
        }
        double share = json_real_value(json_object_get(tj, "active_param_share"));
        assert_true(share > 0 && share < 0.2);
    }
    assert_true(json_integer_value(json_object_get(json_object_get(rep, "chip_time"), "cores")) > 0);
    nesim_tensor_release(&a), nesim_tensor_release(&b), nesim_tensor_release(&routes), nesim_tensor_release(&spikes);
    json_decref(rep);

    /* top-1, sigmoid, not renormalised, graded */
    json_error_t je;
    json_t *spec = json_load_file("examples/tiny-lm/moe_top1.json", 0, &je);
    assert_non_null(spec);
    json_t *n;
    json_array_foreach(json_object_get(spec, "nodes"), i, n)
        if (!strcmp(json_string_value(json_object_get(n, "type")), "linear")) {
            json_object_set_new(n, "coding", json_string("none"));
            json_object_del(n, "k");
        }
    const char *path = test_tmp("moe_top1_ann.json");
    assert_int_equal(json_dump_file(spec, path, 0), 0);
    json_decref(spec);
    nesim_lm_job_opts_init(&o);
    o.spec = path;
    o.tokens = REF "tokens.npy";
    o.output = test_tmp("moe1.npy");
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    assert_ok(nesim_npy_load(test_tmp("moe1.npy"), &a, &err), &err);
    assert_ok(nesim_npy_load(REF "moe_top1_ann.npy", &b, &err), &err);
    worst = 0;
    for (size_t k = 0; k < a.count; k++)
        worst = fmax(worst, fabs(nesim_tensor_get(&a, k) - nesim_tensor_get(&b, k)));
    assert_true(worst <= 1e-4);
    nesim_tensor_release(&a), nesim_tensor_release(&b);
    json_decref(rep);

    /* the top-k: ties go to the lower index, a uniform router to the first, a NaN never wins */
    int32_t sel[3];
    const double tie[4] = {1, 3, 3, 2}, flat[4] = {0.25, 0.25, 0.25, 0.25}, nan_[3] = {NAN, 1, 0.5};
    nesim_lm_topk(tie, 4, 3, sel);
    assert_true(sel[0] == 1 && sel[1] == 2 && sel[2] == 3);
    nesim_lm_topk(flat, 4, 2, sel);
    assert_true(sel[0] == 0 && sel[1] == 1);
    nesim_lm_topk(nan_, 3, 2, sel);
    assert_true(sel[0] == 1 && sel[1] == 2);
}

/* --spiked on a spec: none gives the graded model (its oracle, bit for bit),
 * all spikes every projection (down_proj and lm_head too: more SOPs) */
static void test_spiked_switch_on_specs(void **st)
{
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.spec = "examples/tiny-lm/gla.json";
    o.tokens = REF "tokens.npy";
    o.output = test_tmp("sw_none.npy");
    o.set = NESIM_LM_SET_NONE;
    o.set_given = 1;
    nesim_error err = {0};
    json_t *none, *all, *rel;
    assert_ok(nesim_lm_job(&o, &none, &err), &err);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(none, "total"), "spikes")), 0);
    nesim_tensor a, b;
    assert_ok(nesim_npy_load(test_tmp("sw_none.npy"), &a, &err), &err);
    assert_ok(nesim_npy_load(REF "gla_ann.npy", &b, &err), &err);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.data, b.data, a.count * sizeof(float));
    nesim_tensor_release(&a), nesim_tensor_release(&b);
    o.output = NULL;
    o.set = NESIM_LM_SET_ALL;
    assert_ok(nesim_lm_job(&o, &all, &err), &err);
    o.set_given = 0;
    assert_ok(nesim_lm_job(&o, &rel, &err), &err);
    int64_t sa = json_integer_value(json_object_get(json_object_get(all, "total"), "sops")),
            sr = json_integer_value(json_object_get(json_object_get(rel, "total"), "sops"));
    assert_true(sa > sr && sr > 0);
    assert_int_equal(json_array_size(json_object_get(all, "spiked")), json_array_size(json_object_get(rel, "spiked")) + 2);
    json_decref(none), json_decref(all), json_decref(rel);
}

static int run_cli(const char *args, const char *out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s run " DIR " %s > %s 2>&1", bin(), args, out);
    int s = system(cmd);
    return WIFEXITED(s) ? WEXITSTATUS(s) : 128;
}

static void expect_cli_error(const char *args, const char *needle)
{
    char out[512], buf[1024] = "";
    snprintf(out, sizeof out, "%s/cli.txt", test_tmpdir());
    int rc = run_cli(args, out);
    FILE *f = fopen(out, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    if (rc != 2 || !strstr(buf, needle) || strchr(buf, '\n') != buf + n - 1)
        fail_msg("nesim run %s: exit %d, output '%s' (wanted one line with '%s')", args, rc, buf, needle);
}

static void test_cli_generates_and_refuses(void **st)
{
    char out[512], y[512], ids[512];
    snprintf(out, sizeof out, "%s/gen.json", test_tmpdir());
    snprintf(y, sizeof y, "%s/logits.npy", test_tmpdir());
    char args[1024];
    snprintf(args, sizeof args, "--prompt 'The quick brown' --generate 16 --json --quiet --output %s", y);
    assert_int_equal(run_cli(args, out), 0);
    json_error_t je;
    json_t *rep = json_load_file(out, 0, &je);
    assert_non_null(rep);
    assert_int_equal(json_array_size(json_object_get(rep, "generated")), 16);
    assert_int_equal(json_array_size(json_object_get(rep, "per_token")), 15 + 16);
    json_t *tot = json_object_get(rep, "total");
    assert_true(json_integer_value(json_object_get(tot, "spikes")) > 0);
    assert_true(json_real_value(json_object_get(tot, "spiking_j")) > 0);
    assert_true(json_real_value(json_object_get(tot, "graded_j")) > 0);
    /* the logits file: [prompt + generated, vocab]; each generated token is the argmax of the row before */
    nesim_error err = {0};
    nesim_tensor L;
    assert_ok(nesim_npy_load(y, &L, &err), &err);
    assert_int_equal(L.shape[0], 31);
    assert_int_equal(L.shape[1], 96);
    for (size_t g = 0; g < 16; g++) {
        size_t row = 14 + g, best = 0;
        for (size_t v = 1; v < 96; v++)
            if (nesim_tensor_get(&L, row * 96 + v) > nesim_tensor_get(&L, row * 96 + best))
                best = v;
        assert_int_equal(best, json_integer_value(json_array_get(json_object_get(rep, "generated"), g)));
    }
    nesim_tensor_release(&L);
    json_decref(rep);

    snprintf(ids, sizeof ids, "%s/ids.npy", test_tmpdir());
    int32_t bad[3] = {1, 96, 2};
    int64_t shape[1] = {3};
    assert_ok(nesim_npy_write(ids, NESIM_I32, 1, shape, bad, &err), &err);
    snprintf(args, sizeof args, "--tokens %s --quiet", ids);
    expect_cli_error(args, "token 1: id 96 is not below vocab_size 96");
    expect_cli_error("--prompt 'caf\xc3\xa9' --quiet", "column 4: byte 0xc3 is in no token");
    expect_cli_error("--prompt abc --generate 300 --quiet", "exceed the position limit 256");
    expect_cli_error("--k 2,3 --prompt abc --quiet", "several values only with --eval-text");
}

static void test_eval_text_per_k(void **st)
{
    char out[512];
    snprintf(out, sizeof out, "%s/eval.json", test_tmpdir());
    assert_int_equal(run_cli("--eval-text " DIR "/heldout.txt --eval-tokens 128 --k 2,4 --json --quiet", out), 0);
    json_error_t je;
    json_t *rep = json_load_file(out, 0, &je);
    assert_non_null(rep);
    json_t *ev = json_object_get(rep, "eval"), *rows = json_object_get(ev, "spiking");
    double ann = json_real_value(json_object_get(ev, "ann_ppl"));
    assert_true(ann > 1 && ann < 96);
    assert_int_equal(json_array_size(rows), 2);
    /* a larger k is a finer threshold: more spikes and fewer silent inputs */
    json_t *a = json_array_get(rows, 0), *b = json_array_get(rows, 1);
    assert_true(json_real_value(json_object_get(b, "spikes_per_token")) >
                json_real_value(json_object_get(a, "spikes_per_token")));
    assert_true(json_real_value(json_object_get(b, "sparsity")) < json_real_value(json_object_get(a, "sparsity")));
    json_decref(rep);
}

/* Writes spec to path; runs it on the reference tokens (--json) into out. */
static void run_spec(const json_t *spec, const char *path, const char *out)
{
    char args[2048];
    assert_int_equal(json_dump_file(spec, path, JSON_INDENT(1)), 0);
    snprintf(args, sizeof args, "%s run %s --tokens " REF "tokens.npy --json --quiet > %s", bin(), path, out);
    assert_int_equal(system(args), 0);
}

/* Runs spec expecting exit 2 and a message containing needle. */
static void spec_refused(const json_t *spec, const char *path, const char *needle)
{
    char args[2048], out[512], msg[800] = "";
    snprintf(out, sizeof out, "%s/refused.txt", test_tmpdir());
    assert_int_equal(json_dump_file(spec, path, JSON_INDENT(1)), 0);
    snprintf(args, sizeof args, "%s run %s --prompt abc --quiet 2> %s", bin(), path, out);
    int s = system(args);
    assert_int_equal(WEXITSTATUS(s), 2);
    FILE *f = fopen(out, "r");
    assert_non_null(fgets(msg, sizeof msg, f));
    fclose(f);
    if (!strstr(msg, needle))
        fail_msg("message: %s (wanted %s)", msg, needle);
}

static json_t *node_named(json_t *spec, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(spec, "nodes"), i, e)
        if (!strcmp(json_string_value(json_object_get(e, "name")), name))
            return e;
    fail_msg("no node %s", name);
    return NULL;
}

/* SpikingBrain-7B's hybrid (GLAswaForCausalLM) from a synthetic checkpoint
 * (tests/fixtures/gla-swa-tiny: config.json + synthetic.json, 4 layers,
 * attn_layers [1, 3]): tensors made from their rules when first asked for
 * (each its own values, int8 with scales, consts), the graph as the released
 * code plays it (GLA layers with gk_proj, ReLU'd q and k, the head norm;
 * SWA layers with the window, int8 K/V and the spiked query; biases on
 * q/k/v/gk only; down_proj and lm_head graded), every node's share of the
 * totals summed by layer kind adding up to the totals, the spec round trip,
 * and the importer's refusals. */
/* A checkpoint laid out as SpikingBrain-7B's W8ASpike release
 * (tests/fixtures/w8aspike/make.py, with PyTorch: a GLA layer and a W8ASpike
 * sliding-window layer): its tensor names resolve; each projection's bf16
 * weight with its "weight_quantizer.scales" is quantised exactly as the
 * released Quantizer.forward does — equal, bit for bit, to PyTorch's own
 * (weight / scales).round() * scales in bf16; and the whole model's logits
 * equal the PyTorch oracle's bit for bit, spiked and graded. */
#define W8 "tests/fixtures/w8aspike/"
static void test_w8aspike_checkpoint(void **st)
{
    nesim_error err = {0};
    nesim_lm_model *m;
    nesim_lm_graph *g;
    assert_ok(nesim_lm_open(W8, &m, &err), &err);
    assert_ok(nesim_lm_graph_from_model(m, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3.0, &g, &err), &err);
    const char *node[] = {"layers.0.gk_proj", "layers.1.down_proj"};
    const char *want[] = {W8 "expected_l0_gk_proj.npy", W8 "expected_l1_down_proj.npy"};
    const char *raw[] = {"model.layers.0.attn.gk_proj.weight", "model.layers.1.mlp.down_proj.weight"};
    for (int k = 0; k < 2; k++) {
        int i = nesim_lm_graph_find(g, node[k]);
        assert_true(i >= 0);
        const nesim_tensor *w = &g->node[i].w;
        nesim_tensor ref, stored;
        assert_ok(nesim_npy_load(want[k], &ref, &err), &err);
        assert_ok(nesim_lm_tensor(m, raw[k], &stored, &err), &err);
        assert_int_equal(w->count, ref.count);
        size_t moved = 0;
        for (size_t j = 0; j < w->count; j++) {
            if (nesim_tensor_get(w, j) != nesim_tensor_get(&ref, j))
                fail_msg("%s, element %zu: %.9g, PyTorch %.9g", node[k], j, nesim_tensor_get(w, j),
                         nesim_tensor_get(&ref, j));
            moved += nesim_tensor_get(&stored, j) != nesim_tensor_get(&ref, j);
        }
        assert_true(moved > w->count / 2); /* the quantiser changed most weights: the test can fail */
        nesim_tensor_release(&ref);
    }
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
    /* the whole model against PyTorch (tests/fixtures/w8aspike/make.py runs
     * examples/tiny-lm/gla.py's interpreter of the graph over the weights as
     * the release quantises them): spiked as released and graded, each
     * token's logits bit for bit */
    for (int spk = 0; spk < 2; spk++) {
        played p;
        nesim_tensor ids, ref;
        assert_ok(nesim_lm_open(W8, &p.m, &err), &err);
        assert_ok(nesim_lm_graph_from_model(p.m, spk ? NESIM_LM_SET_RELEASED : NESIM_LM_SET_NONE,
                                            NESIM_CODE_BITWISE_BIDIR, 3.0, &p.g, &err),
                  &err);
        assert_ok(nesim_lm_run_new(p.g, NULL, &p.r, &err), &err);
        assert_ok(nesim_npy_load(W8 "ids.npy", &ids, &err), &err);
        assert_ok(nesim_npy_load(spk ? W8 "expected_spk.npy" : W8 "expected_ann.npy", &ref, &err), &err);
        const size_t V = p.m->cfg.vocab;
        assert_int_equal(ref.count, ids.count * V);
        float lg[128];
        assert_true(V <= 128);
        for (size_t t = 0; t < ids.count; t++) {
            assert_ok(nesim_lm_step(p.r, (int32_t)nesim_tensor_get(&ids, t), lg, &err), &err);
            for (size_t v = 0; v < V; v++)
                if ((double)lg[v] != nesim_tensor_get(&ref, t * V + v))
                    fail_msg("%s: token %zu, logit %zu: %.9g, PyTorch %.9g", spk ? "spiked" : "graded", t, v,
                             (double)lg[v], nesim_tensor_get(&ref, t * V + v));
        }
        nesim_tensor_release(&ids);
        nesim_tensor_release(&ref);
        played_free(&p);
    }
    /* a quantiser's scales of the wrong shape: refused, naming the tensor */
    char d[400], cmd[4096];
    snprintf(d, sizeof d, "%s/w8bad", test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && cp -r " W8 " %s && /usr/bin/python3 -c \"import json,struct,sys; p='%s/model.safetensors'; "
             "b=open(p,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n]); "
             "h['model.layers.0.attn.gk_proj.weight_quantizer.scales']['shape']=[32,1,2]; "
             "j=json.dumps(h).encode(); j+=b' '*(n-len(j)); assert len(j)==n; "
             "open(p,'wb').write(b[:8]+j+b[8+n:])\"",
             d, d, d);
    assert_int_equal(system(cmd), 0);
    assert_ok(nesim_lm_open(d, &m, &err), &err);
    assert_int_equal(nesim_lm_graph_from_model(m, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3.0, &g, &err),
                     NESIM_EINVAL);
    if (!strstr(err.msg, "model.layers.0.attn.gk_proj.weight_quantizer.scales") || strchr(err.msg, '\n'))
        fail_msg("message: %s", err.msg);
    nesim_lm_close(m);
}

#define GS "tests/fixtures/gla-swa-tiny"
static void test_gla_swa_synthetic(void **st)
{
    nesim_error err = {0};
    nesim_lm_model *m;
    assert_ok(nesim_lm_open(GS, &m, &err), &err);
    assert_int_equal(m->cfg.arch, NESIM_LM_GLA_SWA);
    assert_string_equal(nesim_lm_arch_name(m->cfg.arch), "GLAswaForCausalLM");
    assert_true(!m->cfg.swa[0] && m->cfg.swa[1] && !m->cfg.swa[2] && m->cfg.swa[3]);
    nesim_tensor a, a2, b, s, one;
    assert_ok(nesim_lm_tensor(m, "model.layers.0.attn.q_proj.weight", &a, &err), &err);
    assert_int_equal(a.dtype, NESIM_I8);
    assert_int_equal(a.shape[0], 64);
    assert_int_equal(a.shape[1], 64);
    assert_ok(nesim_lm_tensor(m, "model.layers.0.attn.q_proj.weight", &a2, &err), &err);
    assert_ptr_equal(a.data, a2.data); /* made once, kept */
    assert_ok(nesim_lm_tensor(m, "model.layers.2.attn.q_proj.weight", &b, &err), &err);
    assert_memory_not_equal(a.data, b.data, 64 * 64); /* each tensor its own stream */
    assert_ok(nesim_lm_tensor(m, "model.layers.0.attn.q_proj.weight_scale", &s, &err), &err);
    assert_int_equal(s.dtype, NESIM_F32);
    assert_int_equal(s.shape[1], 2); /* groups of 32 */
    int big = 0; /* each group's largest weight is +-127 */
    for (size_t r = 0; r < 64; r++)
        for (size_t g = 0; g < 2; g++) {
            int mx = 0;
            for (size_t c = 0; c < 32; c++) {
                int v = ((const int8_t *)a.data)[r * 64 + g * 32 + c];
                mx = abs(v) > mx ? abs(v) : mx;
            }
            big += mx == 127;
        }
    assert_int_equal(big, 128);
    assert_ok(nesim_lm_tensor(m, "model.layers.3.attn.g_norm.weight", &one, &err), &err);
    for (size_t i = 0; i < 16; i++)
        assert_true(nesim_tensor_get(&one, i) == 1.0);
    assert_int_equal(nesim_lm_tensor(m, "model.layers.0.attn.nope.weight", &a2, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));

    nesim_lm_graph *g;
    assert_ok(nesim_lm_graph_from_model(m, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3, &g, &err), &err);
    assert_int_equal(g->n, 3 + 2 * 17 + 2 * 14);
    const nesim_lm_node *gl = &g->node[nesim_lm_graph_find(g, "layers.0.attn")];
    const nesim_lm_node *sw = &g->node[nesim_lm_graph_find(g, "layers.1.attn")];
    assert_int_equal(gl->type, NESIM_LMN_GLA);
    assert_true(gl->has_norm && gl->gate_norm == 16 && gl->heads == 4 && gl->kv_heads == 2 && gl->head_dim == 16);
    assert_int_equal(g->node[gl->in[0]].type, NESIM_LMN_RELU); /* q = ReLU(W_q x + b_q) */
    assert_int_equal(g->node[gl->in[1]].type, NESIM_LMN_RELU);
    assert_string_equal(g->node[gl->in[3]].name, "layers.0.gk_proj");
    assert_int_equal(sw->type, NESIM_LMN_ATTENTION);
    assert_true(sw->window == 8 && sw->kv_int8 && sw->q_k == 3);
    assert_int_equal(nesim_lm_graph_find(g, "layers.1.gk_proj"), -1);
    static const char *const biased[] = {"layers.0.q_proj", "layers.0.k_proj", "layers.0.v_proj", "layers.0.gk_proj",
                                         "layers.1.q_proj", "layers.1.v_proj"};
    static const char *const plain[] = {"layers.0.o_proj", "layers.1.o_proj", "layers.2.gate_proj", "layers.2.down_proj",
                                        "lm_head"};
    for (size_t i = 0; i < 6; i++)
        assert_true(g->node[nesim_lm_graph_find(g, biased[i])].has_b);
    for (size_t i = 0; i < 5; i++)
        assert_false(g->node[nesim_lm_graph_find(g, plain[i])].has_b);
    assert_int_equal(nesim_lm_graph_find(g, "layers.3.gk_proj"), -1); /* layer 3 is SWA */
    assert_true(g->node[nesim_lm_graph_find(g, "layers.2.gk_proj")].po.spiked);
    assert_true(g->node[nesim_lm_graph_find(g, "layers.1.up_proj")].po.spiked);
    assert_false(g->node[nesim_lm_graph_find(g, "layers.1.down_proj")].po.spiked);
    assert_false(g->node[nesim_lm_graph_find(g, "lm_head")].po.spiked);
    nesim_lm_kind *kind = malloc(g->n * sizeof *kind);
    assert_non_null(kind);
    nesim_lm_graph_kinds(g, kind);
    static const struct { const char *node; nesim_lm_kind k; } kinds[] = {
        {"layers.0.q_proj", NESIM_LMK_GLA},    {"layers.0.k_relu", NESIM_LMK_GLA},
        {"layers.0.o_proj", NESIM_LMK_GLA},    {"layers.1.q_proj", NESIM_LMK_SWA},
        {"layers.1.o_proj", NESIM_LMK_SWA},    {"layers.1.gate_proj", NESIM_LMK_MLP},
        {"layers.1.gated", NESIM_LMK_MLP},     {"layers.3.down_proj", NESIM_LMK_MLP},
        {"embed", NESIM_LMK_EMBEDDING},        {"lm_head", NESIM_LMK_HEAD},
        {"norm", NESIM_LMK_HEAD},              {"layers.2.input_layernorm", NESIM_LMK_OTHER},
        {"layers.2.attn_add", NESIM_LMK_OTHER}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (kind[nesim_lm_graph_find(g, kinds[i].node)] != kinds[i].k)
            fail_msg("%s: kind %s, want %s", kinds[i].node, nesim_lm_kind_name(kind[nesim_lm_graph_find(g, kinds[i].node)]),
                     nesim_lm_kind_name(kinds[i].k));
    free(kind);
    nesim_lm_graph_free(g);
    nesim_lm_close(m);

    /* a run: the kinds' shares add up to the totals */
    static const int32_t ids[] = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26};
    nesim_lm_job_opts o;
    nesim_lm_job_opts_init(&o);
    o.dir = GS;
    o.ids = ids, o.n_ids = 12, o.prefill = 12;
    json_t *rep;
    assert_ok(nesim_lm_job(&o, &rep, &err), &err);
    /* SpikingBrain's T over the whole prompt is this model's default */
    const json_t *so = json_object_get(rep, "steps_over");
    assert_non_null(json_object_get(so, "prefill_ticks_tensor"));
    assert_true(json_integer_value(json_object_get(so, "prefill_ticks_tensor")) >=
                json_integer_value(json_object_get(so, "prefill_ticks_row")));
    {
        nesim_lm_job_opts orow = o;
        orow.steps_tensor = 0;
        json_t *rrow;
        assert_ok(nesim_lm_job(&orow, &rrow, &err), &err);
        assert_null(json_object_get(rrow, "steps_over"));
        /* the same counts and outputs either way */
        assert_true(json_equal(json_object_get(json_object_get(rrow, "total"), "sops"),
                               json_object_get(json_object_get(rep, "total"), "sops")));
        json_decref(rrow);
    }
    const json_t *tot = json_object_get(rep, "total"), *bk = json_object_get(rep, "by_kind");
    assert_non_null(json_object_get(bk, "gla"));
    assert_non_null(json_object_get(bk, "swa"));
    assert_true(json_integer_value(json_object_get(json_object_get(bk, "gla"), "sops")) > 0);
    static const char *const fields[] = {"spikes", "sops", "membrane_updates", "dense_macs", "attention_macs",
                                         "element_ops", "ann_macs", "coded_inputs"};
    for (size_t f = 0; f < 8; f++) {
        json_int_t sum = 0;
        const char *kn;
        json_t *kt;
        json_object_foreach((json_t *)bk, kn, kt) sum += json_integer_value(json_object_get(kt, fields[f]));
        if (sum != json_integer_value(json_object_get(tot, fields[f])))
            fail_msg("%s: kinds sum to %lld, total %lld", fields[f], (long long)sum,
                     (long long)json_integer_value(json_object_get(tot, fields[f])));
    }
    /* each token's work by kind adds up to the run's */
    for (size_t f = 0; f < 2; f++) {
        const char *field = f ? "graded_ops" : "sops";
        const char *kn;
        json_t *kt;
        json_object_foreach((json_t *)bk, kn, kt) {
            json_int_t want = f ? json_integer_value(json_object_get(kt, "dense_macs")) +
                                      json_integer_value(json_object_get(kt, "attention_macs")) +
                                      json_integer_value(json_object_get(kt, "element_ops"))
                                : json_integer_value(json_object_get(kt, "sops"));
            json_int_t sum = 0;
            size_t ti;
            json_t *tv;
            json_array_foreach(json_object_get(rep, "per_token"), ti, tv)
                sum += json_integer_value(json_object_get(json_object_get(json_object_get(tv, "by_kind"), kn), field));
            if (sum != want)
                fail_msg("%s %s: tokens sum to %lld, run %lld", kn, field, (long long)sum, (long long)want);
        }
    }
    /* each token's energy by term adds up to its spiking and graded energy */
    {
        size_t ti;
        json_t *tv;
        int priced = 0;
        json_array_foreach(json_object_get(rep, "per_token"), ti, tv) {
            const json_t *et = json_object_get(tv, "energy_terms");
            if (!et)
                continue;
            priced++;
            double sp = json_real_value(json_object_get(et, "synaptic_j")) +
                        json_real_value(json_object_get(et, "update_j")),
                   gr = json_real_value(json_object_get(et, "graded_mac_j")) +
                        json_real_value(json_object_get(et, "graded_elementwise_j"));
            assert_true(json_real_value(json_object_get(et, "synaptic_j")) > 0);
            assert_close(sp, json_real_value(json_object_get(tv, "spiking_j")), 1e-12, 0);
            assert_close(gr, json_real_value(json_object_get(tv, "graded_j")), 1e-12, 0);
        }
        assert_true(priced > 0);
    }
    /* the spec of the checkpoint runs the same model */
    json_t *spec;
    assert_ok(nesim_lm_spec_build(GS, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3.0, &spec, &err), &err);
    nesim_lm_job_opts os = o;
    os.dir = NULL;
    os.spec = "gla-swa spec";
    os.spec_json = spec;
    os.steps_tensor = 1; /* a spec plays each token's own T unless told */
    json_t *rep2;
    assert_ok(nesim_lm_job(&os, &rep2, &err), &err);
    assert_true(json_equal(json_object_get(rep, "projections"), json_object_get(rep2, "projections")));
    json_decref(rep2);
    json_decref(spec);
    json_decref(rep);

    /* refusals: one line naming the file and the field */
    char dir[600], cmd[2400];
    snprintf(dir, sizeof dir, "%s/gs-bad", test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r " GS " %s && sed -i 's/\"attn_layers\": \\[1, 3\\]/\"attn_layers\": [1, 9]/' %s/config.json",
             dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(nesim_lm_open(dir, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "attn_layers"));
    assert_null(strchr(err.msg, '\n'));
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r " GS " %s && sed -i 's/\"match\"/\"glob\"/' %s/synthetic.json", dir,
             dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(nesim_lm_open(dir, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "synthetic.json"));
    assert_non_null(strstr(err.msg, "tensors[0]"));
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r " GS " %s && sed -i 's/\"std\": 0.1, \"shape\": \\[64, 64\\]/\"std\": -1, \"shape\": [64, 64]/' %s/synthetic.json", dir,
             dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(nesim_lm_open(dir, &m, &err), NESIM_EINVAL);
    assert_non_null(strstr(err.msg, "std"));
}

/* Weights made as they run (synthetic "lazy" rules, the 76B's routed
 * experts): a mixture of four experts whose weights are made when routed to
 * and dropped beyond a 1 MB budget gives the same logits, spikes and counts
 * as the same checkpoint with every weight made up front; the report says
 * how many were made, found and dropped, and the budget held. */
static void test_lazy_experts(void **st)
{
    nesim_error err = {0};
    char dir[600], cmd[2000], spec_path[700], ya[700], yb[700];
    snprintf(dir, sizeof dir, "%s/moe-eager", test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r tests/fixtures/moe-lazy %s && sed -i 's/\"lazy\": true,//' %s/synthetic.json",
             dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(spec_path, sizeof spec_path, "%s/moe.json", dir);
    snprintf(cmd, sizeof cmd, "sed -i 's#\"checkpoint\": \"tests/fixtures/moe-lazy\"#\"checkpoint\": \"%s\"#' %s", dir,
             spec_path);
    assert_int_equal(system(cmd), 0);
    snprintf(ya, sizeof ya, "%s/lazy.npy", test_tmpdir());
    snprintf(yb, sizeof yb, "%s/eager.npy", test_tmpdir());
    static const int32_t ids[] = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 5, 7, 11, 13};
    json_t *rep[2];
    for (int k = 0; k < 2; k++) {
        nesim_lm_job_opts o;
        nesim_lm_job_opts_init(&o);
        o.spec = k ? spec_path : "tests/fixtures/moe-lazy/moe.json";
        o.ids = ids, o.n_ids = 16, o.prefill = 16;
        o.chip = "none";
        o.output = k ? yb : ya;
        assert_ok(nesim_lm_job(&o, &rep[k], &err), &err);
    }
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", ya, yb);
    assert_int_equal(system(cmd), 0);
    assert_true(json_equal(json_object_get(rep[0], "projections"), json_object_get(rep[1], "projections")));
    assert_true(json_equal(json_object_get(rep[0], "total"), json_object_get(rep[1], "total")));
    const json_t *lw = json_object_get(rep[0], "lazy_weights");
    assert_non_null(lw);
    assert_null(json_object_get(rep[1], "lazy_weights"));
    json_int_t made = json_integer_value(json_object_get(lw, "made")), hits = json_integer_value(json_object_get(lw, "hits")),
               evicted = json_integer_value(json_object_get(lw, "evicted")),
               peak = json_integer_value(json_object_get(lw, "peak_bytes"));
    /* 16 tokens x (one routed + the shared expert) x 3 weights asked for */
    assert_int_equal(made + hits, 16 * 2 * 3);
    assert_true(evicted > 0);
    assert_int_equal(made - evicted <= 15 ? 1 : 0, 1);
    const json_int_t one = 2048 * 64 + 2048 * 2 * 4; /* an int8 [2048, 64] weight and its scales */
    assert_true(peak <= (1 << 20) + one);
    json_decref(rep[0]);
    json_decref(rep[1]);
}

/* The 76B's parallel hybrid (examples/tiny-lm/hybrid.json): q, k, v, their
 * norms, their sum and o_proj serve both attentions, so their work is the
 * hybrid's; the linear attention's feature maps are GLA's, the softmax node
 * full attention's. */
static void test_kinds_of_the_hybrid(void **st)
{
    nesim_error err = {0};
    json_error_t je;
    json_t *spec = json_load_file("examples/tiny-lm/hybrid.json", 0, &je);
    assert_non_null(spec);
    nesim_lm_model *m;
    nesim_lm_graph *g;
    assert_ok(nesim_lm_open(DIR, &m, &err), &err);
    assert_ok(nesim_lm_graph_from_json(m, spec, "hybrid.json", &g, &err), &err);
    nesim_lm_kind *kind = malloc(g->n * sizeof *kind);
    assert_non_null(kind);
    nesim_lm_graph_kinds(g, kind);
    static const struct { const char *node; nesim_lm_kind k; } want[] = {
        {"layers.0.q_proj", NESIM_LMK_HYBRID},   {"layers.0.v_proj", NESIM_LMK_HYBRID},
        {"layers.0.o_proj", NESIM_LMK_HYBRID},   {"layers.0.attn_hybrid", NESIM_LMK_HYBRID},
        {"layers.0.lin_norm", NESIM_LMK_GLA},    {"layers.0.q_sig", NESIM_LMK_GLA},
        {"layers.0.lin", NESIM_LMK_GLA},         {"layers.0.attn", NESIM_LMK_ATTENTION},
        {"layers.0.attn_norm", NESIM_LMK_ATTENTION}, {"layers.0.gate_proj", NESIM_LMK_MLP},
        {"layers.0.attn_add", NESIM_LMK_OTHER}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int x = nesim_lm_graph_find(g, want[i].node);
        assert_true(x >= 0);
        if (kind[x] != want[i].k)
            fail_msg("%s: kind %s, want %s", want[i].node, nesim_lm_kind_name(kind[x]), nesim_lm_kind_name(want[i].k));
    }
    free(kind);
    nesim_lm_graph_free(g);
    nesim_lm_close(m);
    json_decref(spec);
}

static void test_spec_round_trip_and_edits(void **st)
{
    nesim_error err = {0};
    json_t *spec;
    assert_ok(nesim_lm_spec_build(DIR, NESIM_LM_SET_RELEASED, NESIM_CODE_BITWISE_BIDIR, 3.0, &spec, &err), &err);
    json_t *nodes = json_object_get(spec, "nodes");
    assert_int_equal(json_array_size(nodes), 1 + 4 * 14 + 2);
    char path[512], out_a[512], out_b[512], args[2048];
    snprintf(path, sizeof path, "%s/lm.json", test_tmpdir());
    snprintf(out_a, sizeof out_a, "%s/spec_a.json", test_tmpdir());
    snprintf(out_b, sizeof out_b, "%s/spec_b.json", test_tmpdir());
    /* the spec as printed runs the same model: identical per-projection spikes */
    run_spec(spec, path, out_a);
    snprintf(args, sizeof args, "%s run " DIR " --tokens " REF "tokens.npy --json --quiet > %s", bin(), out_b);
    assert_int_equal(system(args), 0);
    json_error_t je;
    json_t *a = json_load_file(out_a, 0, &je), *b = json_load_file(out_b, 0, &je);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(json_equal(json_object_get(a, "projections"), json_object_get(b, "projections")));
    json_decref(a);
    json_t *pb = json_object_get(b, "projections");
    /* layer 2's up_proj made graded: only its spikes vanish upstream of layer 2's MLP output */
    json_object_set_new(node_named(spec, "layers.2.up_proj"), "coding", json_string("none"));
    run_spec(spec, path, out_a);
    a = json_load_file(out_a, 0, &je);
    json_t *pa = json_object_get(a, "projections");
    const size_t up2 = 2 * 7 + 5;
    assert_string_equal(json_string_value(json_object_get(json_array_get(pa, up2), "name")), "layers.2.up_proj");
    for (size_t i = 0; i < up2; i++) /* everything before it is unchanged */
        assert_true(json_equal(json_array_get(pa, i), json_array_get(pb, i)));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pa, up2), "spikes")), 0);
    assert_true(json_integer_value(json_object_get(json_array_get(pb, up2), "spikes")) > 0);
    json_decref(a);
    json_object_set_new(node_named(spec, "layers.2.up_proj"), "coding", json_string("bitwise-bidirectional"));
    /* the graph itself: ReLU for SiLU in layer 1 changes what follows its MLP only */
    json_object_set_new(node_named(spec, "layers.1.act"), "type", json_string("relu"));
    run_spec(spec, path, out_a);
    a = json_load_file(out_a, 0, &je);
    pa = json_object_get(a, "projections");
    for (size_t i = 0; i <= 7 + 5; i++) /* through layers.1.up_proj */
        assert_true(json_equal(json_array_get(pa, i), json_array_get(pb, i)));
    assert_false(json_equal(json_array_get(pa, 7 + 7), json_array_get(pb, 7 + 7))); /* layers.2.q_proj */
    json_decref(a);
    json_object_set_new(node_named(spec, "layers.1.act"), "type", json_string("silu"));
    /* three layers: layer 3's nodes dropped, the final norm reads layer 2's output */
    json_t *cut = json_deep_copy(spec), *cn = json_object_get(cut, "nodes");
    for (size_t i = json_array_size(cn); i-- > 0;)
        if (!strncmp(json_string_value(json_object_get(json_array_get(cn, i), "name")), "layers.3.", 9))
            json_array_remove(cn, i);
    json_object_set_new(node_named(cut, "norm"), "input", json_string("layers.2.mlp_add"));
    run_spec(cut, path, out_a);
    a = json_load_file(out_a, 0, &je);
    assert_int_equal(json_array_size(json_object_get(a, "projections")), 3 * 7 + 1);
    assert_int_equal(json_integer_value(json_object_get(a, "nodes")), 1 + 3 * 14 + 2);
    json_decref(a);
    json_decref(cut);
    json_decref(b);
    /* bad graphs: one line naming the node, exit 2 */
    json_t *bad = json_deep_copy(spec);
    json_object_set_new(node_named(bad, "layers.0.act"), "type", json_string("gelu"));
    spec_refused(bad, path, "nodes[11] (layers.0.act).type: must be one of embedding, rmsnorm, linear, attention, "
                            "add, mul, silu, relu");
    json_decref(bad);
    bad = json_deep_copy(spec);
    json_object_set_new(node_named(bad, "layers.0.q_proj"), "input", json_string("layers.0.attn"));
    spec_refused(bad, path, "nodes[2] (layers.0.q_proj).input: 'layers.0.attn' is not an earlier node");
    json_decref(bad);
    bad = json_deep_copy(spec);
    json_object_set_new(node_named(bad, "layers.2.down_proj"), "weight", json_string("model.layers.2.mlp.up_proj.weight"));
    spec_refused(bad, path, "(layers.2.down_proj).weight: tensor 'model.layers.2.mlp.up_proj.weight' has shape [352, "
                            "128], expected [out, 352]");
    json_decref(bad);
    bad = json_deep_copy(spec);
    json_object_set_new(node_named(bad, "layers.0.attn"), "kv_heads", json_integer(3));
    spec_refused(bad, path, "(layers.0.attn).kv_heads: must divide heads (4 by 3)");
    json_decref(bad);
    bad = json_deep_copy(spec);
    json_object_set_new(node_named(bad, "layers.0.gated"), "inputs", json_pack("[ss]", "layers.0.act", "embed"));
    spec_refused(bad, path, "(layers.0.gated).inputs: sizes differ: 'layers.0.act' gives 352, 'embed' 128");
    json_decref(bad);
    json_decref(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ann_equals_pytorch),
        cmocka_unit_test(test_gla_swa_synthetic),
        cmocka_unit_test(test_w8aspike_checkpoint),
        cmocka_unit_test(test_lazy_experts),
        cmocka_unit_test(test_kinds_of_the_hybrid),
        cmocka_unit_test(test_spiking_equals_pytorch_and_counts_exact),
        cmocka_unit_test(test_importer_refuses_bad_checkpoints),
        cmocka_unit_test(test_int8_checkpoint),
        cmocka_unit_test(test_graded_share_priced_on_the_chip),
        cmocka_unit_test(test_chip_time_per_token),
        cmocka_unit_test(test_steps_over_tensor),
        cmocka_unit_test(test_gla_equals_pytorch),
        cmocka_unit_test(test_int8_kv_fake_quant),
        cmocka_unit_test(test_window_edge),
        cmocka_unit_test(test_moe_equals_pytorch),
        cmocka_unit_test(test_spiked_switch_on_specs),
        cmocka_unit_test(test_cli_generates_and_refuses),
        cmocka_unit_test(test_eval_text_per_k),
        cmocka_unit_test(test_spec_round_trip_and_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
