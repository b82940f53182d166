/* lm.c — a decoder-only language model played token by token, its
 * projections spiked or graded. See lm.h for the numerics. */
#include "sim/lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/loads.h"

struct nesim_lm_run {
    const nesim_lm_model *m;
    nesim_lm_opts o;
    nesim_coded_linear (*proj)[NESIM_LM_NPROJ]; /* [layers] */
    nesim_coded_linear head;
    double *norm_in, *norm_post, *norm_final;  /* [layers * H], [layers * H], [H] */
    double *bias;                              /* [layers][q+k+v] when qkv_bias */
    double *inv_freq;                          /* [head_dim / 2] */
    double **kc, **vc;                         /* per layer [cap][kv * hd] */
    size_t cap, pos;
    double *h, *q, *k, *v, *att, *sc, *gd;     /* scratch */
    float *xf, *yf, *yf2;
    nesim_coded_stats *st;                     /* [layers * NPROJ + 1] */
    nesim_lm_proj_opts *po;                    /* [layers * NPROJ + 1] */
    nesim_lm_totals tot;
    int64_t tick;                              /* virtual time: where the next token starts */
    nesim_lm_sink sink;
    /* replay's check (nesim_lm_run_expect) */
    size_t exp_proj, exp_tokens;
    int64_t *exp_counts;
    double *exp_vth, *exp_u;
};

/* What a projection's observers need: which projection, whose sink. */
typedef struct pctx {
    const nesim_lm_run *r;
    size_t idx, out;
} pctx;

static void on_step(void *user, int64_t tick, int64_t events)
{
    const pctx *c = user;
    if (events)
        c->r->sink.activity(c->r->sink.user, c->idx, tick, events, events * (int64_t)c->out);
}

static void on_spike(void *user, uint32_t channel, int64_t tick, int sign)
{
    const pctx *c = user;
    c->r->sink.spike(c->r->sink.user, c->idx, channel, tick, sign);
}

void nesim_lm_run_set_sink(nesim_lm_run *r, const nesim_lm_sink *sink)
{
    if (sink)
        r->sink = *sink;
    else
        memset(&r->sink, 0, sizeof r->sink);
}

int nesim_lm_run_expect(nesim_lm_run *r, size_t proj, const int64_t *counts, const double *vth, size_t tokens,
                        nesim_error *err)
{
    const size_t np = r->m->cfg.layers * NESIM_LM_NPROJ + 1;
    if (proj >= np || !r->po[proj].spiked)
        return nesim_fail(err, NESIM_EINVAL, "projection %zu is not a spiked projection of the model", proj);
    const size_t in = proj + 1 == np ? r->head.in : r->proj[proj / NESIM_LM_NPROJ][proj % NESIM_LM_NPROJ].in;
    free(r->exp_counts), free(r->exp_vth), free(r->exp_u);
    r->exp_counts = malloc((tokens ? tokens : 1) * in * sizeof *r->exp_counts);
    r->exp_vth = malloc((tokens ? tokens : 1) * sizeof *r->exp_vth);
    r->exp_u = malloc(in * sizeof *r->exp_u);
    if (!r->exp_counts || !r->exp_vth || !r->exp_u) {
        free(r->exp_counts), free(r->exp_vth), free(r->exp_u);
        r->exp_counts = NULL, r->exp_vth = NULL, r->exp_u = NULL;
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    memcpy(r->exp_counts, counts, tokens * in * sizeof *counts);
    memcpy(r->exp_vth, vth, tokens * sizeof *vth);
    r->exp_proj = proj;
    r->exp_tokens = tokens;
    return NESIM_OK;
}

/* The replay check of projection idx's input xf at the current token. */
static int check_expected(const nesim_lm_run *r, const nesim_coded_linear *L, size_t idx, const nesim_coded_opts *o,
                          const float *xf, nesim_error *err)
{
    const size_t tok = (size_t)r->tot.tokens, in = L->in;
    const char *pn = nesim_lm_proj_name(idx == r->m->cfg.layers * NESIM_LM_NPROJ ? NESIM_LM_NPROJ
                                                                                : (int)(idx % NESIM_LM_NPROJ));
    if (tok >= r->exp_tokens)
        return nesim_fail(err, NESIM_EINVAL, "token %zu: the recorded run has only %zu tokens", tok, r->exp_tokens);
    double vth;
    int rc = nesim_coded_dense_input(o, xf, in, r->exp_u, &vth, err);
    if (rc)
        return rc;
    if (vth != r->exp_vth[tok])
        return nesim_fail(err, NESIM_EINVAL, "token %zu: layer %zu %s: threshold %.17g now, %.17g recorded: the "
                          "recomputation does not reach the recorded activity (weights or nesim changed?)",
                          tok, idx / NESIM_LM_NPROJ, pn, vth, r->exp_vth[tok]);
    for (size_t i = 0; i < in; i++) {
        int64_t now = llround(r->exp_u[i] / vth), was = r->exp_counts[tok * in + i];
        if (now != was)
            return nesim_fail(err, NESIM_EINVAL, "token %zu: layer %zu %s, channel %zu: count %lld now, %lld "
                              "recorded: the recomputation does not reach the recorded activity", tok,
                              idx / NESIM_LM_NPROJ, pn, i, (long long)now, (long long)was);
    }
    return NESIM_OK;
}

void nesim_lm_opts_init(nesim_lm_opts *o)
{
    o->coding = NESIM_CODE_BITWISE_BIDIR;
    o->k = 3;
    o->spiked = NESIM_LM_SPIKED_RELEASED;
    o->per = NULL;
}

static void to_double(const nesim_tensor *t, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = nesim_tensor_get(t, i);
}

int nesim_lm_run_new(const nesim_lm_model *m, const nesim_lm_opts *o, nesim_lm_run **out, nesim_error *err)
{
    *out = NULL;
    if (!(o->k > 0) || !isfinite(o->k))
        return nesim_fail(err, NESIM_EINVAL, "k must be positive and finite (got %g)", o->k);
    const nesim_lm_config *c = &m->cfg;
    const size_t H = c->hidden, L = c->layers, Q = c->heads * c->head_dim, KV = c->kv_heads * c->head_dim;
    size_t wide = H > c->inter ? H : c->inter;
    if (Q > wide)
        wide = Q;
    if (c->vocab > wide)
        wide = c->vocab;
    nesim_lm_run *r = calloc(1, sizeof *r);
    if (!r)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    r->m = m;
    r->o = *o;
    r->proj = calloc(L, sizeof *r->proj);
    r->norm_in = malloc(L * H * sizeof(double));
    r->norm_post = malloc(L * H * sizeof(double));
    r->norm_final = malloc(H * sizeof(double));
    r->bias = calloc(L * (Q + 2 * KV), sizeof(double));
    r->inv_freq = malloc(c->head_dim / 2 * sizeof(double));
    r->kc = calloc(L, sizeof *r->kc);
    r->vc = calloc(L, sizeof *r->vc);
    r->h = malloc(H * sizeof(double));
    r->q = malloc(Q * sizeof(double));
    r->k = malloc(KV * sizeof(double));
    r->v = malloc(KV * sizeof(double));
    r->att = malloc(Q * sizeof(double));
    r->sc = malloc((c->max_pos + 1) * sizeof(double));
    r->gd = malloc(c->inter * sizeof(double));
    r->xf = malloc(wide * sizeof(float));
    r->yf = malloc(wide * sizeof(float));
    r->yf2 = malloc(wide * sizeof(float));
    r->st = calloc(L * NESIM_LM_NPROJ + 1, sizeof *r->st);
    r->po = calloc(L * NESIM_LM_NPROJ + 1, sizeof *r->po);
    if (!r->po ||!r->proj || !r->norm_in || !r->norm_post || !r->norm_final || !r->bias || !r->inv_freq || !r->kc || !r->vc ||
        !r->h || !r->q || !r->k || !r->v || !r->att || !r->sc || !r->gd || !r->xf || !r->yf || !r->yf2 || !r->st) {
        nesim_lm_run_free(r);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    int rc = NESIM_OK;
    for (size_t l = 0; l < L && !rc; l++) {
        const nesim_lm_layer *ly = &m->layer[l];
        to_double(&ly->in_norm, r->norm_in + l * H, H);
        to_double(&ly->post_norm, r->norm_post + l * H, H);
        for (int kd = 0; kd < NESIM_LM_NPROJ && !rc; kd++) {
            /* coded layers borrow their name: the kind's static name */
            rc = nesim_coded_linear_init(&r->proj[l][kd], nesim_lm_proj_name(kd), &ly->w[kd],
                                         ly->has_scale[kd] ? &ly->scale[kd] : NULL, ly->group[kd],
                                         ly->has_b[kd] ? &ly->b[kd] : NULL, 0, 0, err);
            r->proj[l][kd].exact_sums = 1;
        }
        if (c->qkv_bias) {
            double *b = r->bias + l * (Q + 2 * KV);
            to_double(&ly->b[NESIM_LM_Q], b, Q);
            to_double(&ly->b[NESIM_LM_K], b + Q, KV);
            to_double(&ly->b[NESIM_LM_V], b + Q + KV, KV);
        }
    }
    if (!rc) {
        rc = nesim_coded_linear_init(&r->head, "lm_head", &m->lm_head, NULL, 0, NULL, 0, 0, err);
        r->head.exact_sums = 1;
    }
    if (rc) {
        nesim_lm_run_free(r);
        return rc;
    }
    to_double(&m->final_norm, r->norm_final, H);
    for (size_t i = 0; i < c->head_dim / 2; i++)
        r->inv_freq[i] = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim);
    for (size_t i = 0; i <= L * NESIM_LM_NPROJ; i++) {
        nesim_coded_stats_init(&r->st[i]);
        size_t kd = i == L * NESIM_LM_NPROJ ? NESIM_LM_NPROJ : i % NESIM_LM_NPROJ;
        nesim_lm_proj_opts d = {(int)(o->spiked >> kd & 1), o->coding, o->k};
        r->po[i] = o->per ? o->per[i] : d;
        if (r->po[i].spiked && (!(r->po[i].k > 0) || !isfinite(r->po[i].k))) {
            rc = nesim_fail(err, NESIM_EINVAL, "layer %zu %s: k must be positive and finite (got %g)",
                            i / NESIM_LM_NPROJ, nesim_lm_proj_name((int)kd), r->po[i].k);
            nesim_lm_run_free(r);
            return rc;
        }
    }
    *out = r;
    return NESIM_OK;
}

void nesim_lm_run_free(nesim_lm_run *r)
{
    if (!r)
        return;
    for (size_t l = 0; r->kc && l < r->m->cfg.layers; l++) {
        free(r->kc[l]);
        free(r->vc[l]);
    }
    free(r->kc), free(r->vc), free(r->proj), free(r->norm_in), free(r->norm_post), free(r->norm_final);
    free(r->bias), free(r->inv_freq), free(r->h), free(r->q), free(r->k), free(r->v), free(r->att);
    free(r->sc), free(r->gd), free(r->xf), free(r->yf), free(r->yf2), free(r->st), free(r->po);
    free(r->exp_counts), free(r->exp_vth), free(r->exp_u);
    free(r);
}

void nesim_lm_run_reset(nesim_lm_run *r) { r->pos = 0; }
size_t nesim_lm_run_pos(const nesim_lm_run *r) { return r->pos; }
int64_t nesim_lm_run_tick(const nesim_lm_run *r) { return r->tick; }
const nesim_lm_totals *nesim_lm_run_totals(const nesim_lm_run *r) { return &r->tot; }

const nesim_coded_stats *nesim_lm_proj_stats(const nesim_lm_run *r, size_t l, int kind)
{
    if (kind == NESIM_LM_NPROJ)
        return &r->st[r->m->cfg.layers * NESIM_LM_NPROJ];
    return &r->st[l * NESIM_LM_NPROJ + (size_t)kind];
}

/* xf = float(rmsnorm(h) * w) */
static void rmsnorm(const double *h, const double *w, size_t n, double eps, float *xf, nesim_lm_totals *t)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += h[i] * h[i];
    double s = 1.0 / sqrt(ss / (double)n + eps);
    for (size_t i = 0; i < n; i++)
        xf[i] = (float)(h[i] * s * w[i]);
    t->elem_ops += 4 * (int64_t)n;
}

/* y = L(xf): spiked (coded, event by event, from tick t0) or graded (dense
 * in double). *t_end (may be NULL) receives the tick after its last step. */
static int project(nesim_lm_run *r, const nesim_coded_linear *L, size_t idx, const float *xf, float *y, int64_t t0,
                   int64_t *t_end, nesim_error *err)
{
    nesim_coded_stats *acc = &r->st[idx];
    r->tot.equiv_macs += (int64_t)(L->in * L->out);
    if (t_end)
        *t_end = t0;
    if (r->po[idx].spiked) {
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.coding = r->po[idx].coding;
        o.k = r->po[idx].k;
        o.t0 = t0;
        pctx c = {r, idx, L->out};
        if (r->sink.activity)
            o.on_step = on_step, o.user = &c;
        if (r->sink.spike)
            o.on_spike = on_spike, o.spike_user = &c;
        int rc = r->exp_counts && idx == r->exp_proj ? check_expected(r, L, idx, &o, xf, err) : NESIM_OK;
        nesim_coded_stats st;
        if (!rc)
            rc = nesim_coded_linear_forward(L, &o, xf, y, &st, err);
        if (rc)
            return rc;
        if (r->sink.code)
            r->sink.code(r->sink.user, idx, (size_t)r->tot.tokens, t0, st.steps, st.vth);
        if (t_end)
            *t_end = st.t_end;
        nesim_coded_stats_add(acc, &st);
        r->tot.spikes += st.spikes;
        r->tot.sops += st.sops;
        r->tot.updates += st.updates;
        r->tot.spiked_inputs += st.inputs;
        r->tot.slots += st.inputs * st.steps;
        r->tot.silent_inputs += st.silent;
        for (int b = 0; b < NESIM_CODED_HIST; b++)
            r->tot.small_inputs += st.hist[b];
        return NESIM_OK;
    }
    const size_t in = L->in;
    const unsigned char *W = L->weight.data;
    const size_t esz = nesim_dtype_size(L->weight.dtype);
    for (size_t o = 0; o < L->out; o++) {
        const unsigned char *row = W + o * in * esz;
        double s = 0;
        switch (L->weight.dtype) { /* one loop per dtype: the loads inline */
        case NESIM_F32: for (size_t i = 0; i < in; i++) s += (double)ld_f32(row + 4 * i) * (double)xf[i]; break;
        case NESIM_BF16: for (size_t i = 0; i < in; i++) s += (double)ld_bf16(row + 2 * i) * (double)xf[i]; break;
        case NESIM_F16: for (size_t i = 0; i < in; i++) s += (double)ld_f16(row + 2 * i) * (double)xf[i]; break;
        case NESIM_I8: { /* w = q x scale, formed in double (exact), as a float64 checkpoint of w would hold it */
            const size_t g = L->has_scales ? L->group : in, G = in / g;
            for (size_t i = 0; i < in; i++) {
                double sc = L->has_scales ? (double)ld_f32((const unsigned char *)L->scales.data + 4 * (o * G + i / g)) : 1.0;
                s += (double)(int8_t)row[i] * sc * (double)xf[i];
            }
            break;
        }
        default: for (size_t i = 0; i < in; i++) s += nesim_ld(L->weight.dtype, row, i) * (double)xf[i]; break;
        }
        if (L->has_bias)
            s += nesim_tensor_get(&L->bias, o);
        y[o] = (float)s;
    }
    acc->samples++;
    r->tot.dense_macs += (int64_t)(in * L->out);
    return NESIM_OK;
}

static int grow_cache(nesim_lm_run *r, size_t need, nesim_error *err)
{
    if (need <= r->cap)
        return NESIM_OK;
    size_t cap = r->cap ? r->cap : 64, KV = r->m->cfg.kv_heads * r->m->cfg.head_dim;
    while (cap < need)
        cap *= 2;
    if (cap > r->m->cfg.max_pos)
        cap = r->m->cfg.max_pos;
    for (size_t l = 0; l < r->m->cfg.layers; l++) {
        double *a = realloc(r->kc[l], cap * KV * sizeof(double));
        if (!a)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory (KV cache of %zu positions)", cap);
        r->kc[l] = a;
        double *b = realloc(r->vc[l], cap * KV * sizeof(double));
        if (!b)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory (KV cache of %zu positions)", cap);
        r->vc[l] = b;
    }
    r->cap = cap;
    return NESIM_OK;
}

/* Hugging Face's rotate_half RoPE: pairs (i, i + d/2). */
static void rope(const double *inv_freq, size_t pos, double *x, size_t heads, size_t hd)
{
    const size_t half = hd / 2;
    for (size_t j = 0; j < half; j++) {
        double a = (double)pos * inv_freq[j], c = cos(a), s = sin(a);
        for (size_t h = 0; h < heads; h++) {
            double *p = x + h * hd, x1 = p[j], x2 = p[j + half];
            p[j] = x1 * c - x2 * s;
            p[j + half] = x2 * c + x1 * s;
        }
    }
}

int nesim_lm_step(nesim_lm_run *r, int32_t token, float *logits, nesim_error *err)
{
    const nesim_lm_model *m = r->m;
    const nesim_lm_config *c = &m->cfg;
    const size_t H = c->hidden, hd = c->head_dim, nh = c->heads, nkv = c->kv_heads, Q = nh * hd, KV = nkv * hd;
    const size_t I = c->inter, p = r->pos;
    nesim_lm_totals *t = &r->tot;
    if (token < 0 || (size_t)token >= c->vocab)
        return nesim_fail(err, NESIM_EINVAL, "token %zu: id %ld is outside the vocabulary [0, %zu)", p,
                          (long)token, c->vocab);
    if (p >= c->max_pos)
        return nesim_fail(err, NESIM_EINVAL, "token %zu: past the model's position limit (max_position_embeddings %zu)",
                          p, c->max_pos);
    int rc = grow_cache(r, p + 1, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < H; i++)
        r->h[i] = nesim_tensor_get(&m->embed, (size_t)token * H + i);
    const size_t lo = c->window && p + 1 > c->window ? p + 1 - c->window : 0, n = p + 1 - lo;
    const int64_t first = r->tick;
    int64_t now = first, end, e2; /* the tick at which the current data is ready */
    const double scale = 1.0 / sqrt((double)hd);
    for (size_t l = 0; l < c->layers; l++) {
        nesim_coded_linear *P = r->proj[l];
        const size_t base = l * NESIM_LM_NPROJ;
        rmsnorm(r->h, r->norm_in + l * H, H, c->eps, r->xf, t);
        double *dst[3] = {r->q, r->k, r->v};
        int64_t qkv_end = now;
        for (int kd = NESIM_LM_Q; kd <= NESIM_LM_V; kd++) {
            if ((rc = project(r, &P[kd], base + (size_t)kd, r->xf, r->yf, now, &end, err)))
                return rc;
            if (end > qkv_end)
                qkv_end = end;
            for (size_t i = 0; i < P[kd].out; i++)
                dst[kd][i] = r->yf[i];
        }
        rope(r->inv_freq, p, r->q, nh, hd);
        rope(r->inv_freq, p, r->k, nkv, hd);
        t->elem_ops += 3 * (int64_t)(Q + KV);
        memcpy(r->kc[l] + p * KV, r->k, KV * sizeof(double));
        memcpy(r->vc[l] + p * KV, r->v, KV * sizeof(double));
        for (size_t h = 0; h < nh; h++) {
            const size_t g = h / (nh / nkv);
            const double *qh = r->q + h * hd;
            double mx = -INFINITY;
            for (size_t j = 0; j < n; j++) {
                const double *kj = r->kc[l] + (lo + j) * KV + g * hd;
                double s = 0;
                for (size_t d = 0; d < hd; d++)
                    s += qh[d] * kj[d];
                r->sc[j] = s * scale;
                if (r->sc[j] > mx)
                    mx = r->sc[j];
            }
            double z = 0;
            for (size_t j = 0; j < n; j++)
                z += (r->sc[j] = exp(r->sc[j] - mx));
            double *oh = r->att + h * hd;
            memset(oh, 0, hd * sizeof *oh);
            for (size_t j = 0; j < n; j++) {
                const double a = r->sc[j] / z, *vj = r->vc[l] + (lo + j) * KV + g * hd;
                for (size_t d = 0; d < hd; d++)
                    oh[d] += a * vj[d];
            }
        }
        t->attn_macs += 2 * (int64_t)(nh * hd * n);
        t->elem_ops += 4 * (int64_t)(nh * n);
        for (size_t i = 0; i < Q; i++)
            r->xf[i] = (float)r->att[i];
        if ((rc = project(r, &P[NESIM_LM_O], base + NESIM_LM_O, r->xf, r->yf, qkv_end, &now, err)))
            return rc;
        for (size_t i = 0; i < H; i++)
            r->h[i] += r->yf[i];
        rmsnorm(r->h, r->norm_post + l * H, H, c->eps, r->xf, t);
        if ((rc = project(r, &P[NESIM_LM_GATE], base + NESIM_LM_GATE, r->xf, r->yf, now, &end, err)) ||
            (rc = project(r, &P[NESIM_LM_UP], base + NESIM_LM_UP, r->xf, r->yf2, now, &e2, err)))
            return rc;
        now = end > e2 ? end : e2;
        for (size_t i = 0; i < I; i++) {
            double g = r->yf[i];
            r->xf[i] = (float)(g / (1.0 + exp(-g)) * (double)r->yf2[i]);
        }
        t->elem_ops += 5 * (int64_t)I;
        if ((rc = project(r, &P[NESIM_LM_DOWN], base + NESIM_LM_DOWN, r->xf, r->yf, now, &now, err)))
            return rc;
        for (size_t i = 0; i < H; i++)
            r->h[i] += r->yf[i];
        t->elem_ops += 2 * (int64_t)H;
    }
    rmsnorm(r->h, r->norm_final, H, c->eps, r->xf, t);
    if ((rc = project(r, &r->head, c->layers * NESIM_LM_NPROJ, r->xf, logits, now, &now, err)))
        return rc;
    if (r->sink.token)
        r->sink.token(r->sink.user, (size_t)t->tokens, first, now);
    r->tick = now;
    r->pos++;
    t->tokens++;
    return NESIM_OK;
}
