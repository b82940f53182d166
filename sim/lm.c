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
};

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
            rc = nesim_coded_linear_init(&r->proj[l][kd], nesim_lm_proj_name(kd), &ly->w[kd], NULL, 0,
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
    free(r);
}

void nesim_lm_run_reset(nesim_lm_run *r) { r->pos = 0; }
size_t nesim_lm_run_pos(const nesim_lm_run *r) { return r->pos; }
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

/* y = L(xf): spiked (coded, event by event) or graded (dense in double). */
static int project(nesim_lm_run *r, const nesim_coded_linear *L, size_t idx, const float *xf, float *y,
                   nesim_error *err)
{
    nesim_coded_stats *acc = &r->st[idx];
    r->tot.equiv_macs += (int64_t)(L->in * L->out);
    if (r->po[idx].spiked) {
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.coding = r->po[idx].coding;
        o.k = r->po[idx].k;
        nesim_coded_stats st;
        int rc = nesim_coded_linear_forward(L, &o, xf, y, &st, err);
        if (rc)
            return rc;
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
    const double scale = 1.0 / sqrt((double)hd);
    for (size_t l = 0; l < c->layers; l++) {
        nesim_coded_linear *P = r->proj[l];
        const size_t base = l * NESIM_LM_NPROJ;
        rmsnorm(r->h, r->norm_in + l * H, H, c->eps, r->xf, t);
        double *dst[3] = {r->q, r->k, r->v};
        for (int kd = NESIM_LM_Q; kd <= NESIM_LM_V; kd++) {
            if ((rc = project(r, &P[kd], base + (size_t)kd, r->xf, r->yf, err)))
                return rc;
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
        if ((rc = project(r, &P[NESIM_LM_O], base + NESIM_LM_O, r->xf, r->yf, err)))
            return rc;
        for (size_t i = 0; i < H; i++)
            r->h[i] += r->yf[i];
        rmsnorm(r->h, r->norm_post + l * H, H, c->eps, r->xf, t);
        if ((rc = project(r, &P[NESIM_LM_GATE], base + NESIM_LM_GATE, r->xf, r->yf, err)) ||
            (rc = project(r, &P[NESIM_LM_UP], base + NESIM_LM_UP, r->xf, r->yf2, err)))
            return rc;
        for (size_t i = 0; i < I; i++) {
            double g = r->yf[i];
            r->xf[i] = (float)(g / (1.0 + exp(-g)) * (double)r->yf2[i]);
        }
        t->elem_ops += 5 * (int64_t)I;
        if ((rc = project(r, &P[NESIM_LM_DOWN], base + NESIM_LM_DOWN, r->xf, r->yf, err)))
            return rc;
        for (size_t i = 0; i < H; i++)
            r->h[i] += r->yf[i];
        t->elem_ops += 2 * (int64_t)H;
    }
    rmsnorm(r->h, r->norm_final, H, c->eps, r->xf, t);
    if ((rc = project(r, &r->head, c->layers * NESIM_LM_NPROJ, r->xf, logits, err)))
        return rc;
    r->pos++;
    t->tokens++;
    return NESIM_OK;
}
