/* nir_run.c — a NIR graph stepped in time, sparse between nodes, lazy in neurons. */
#include "sim/nir_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/jsonmsg.h"

/* A sparse vector: a dense accumulator plus the list of indices touched. */
typedef struct svec {
    double *val;
    uint32_t *idx;
    uint8_t *mark;
    size_t n, cap; /* touched count, dense size */
} svec;

typedef struct rnode {
    const nesim_nir_node *def;
    nesim_nir_type type;
    int in_nd, out_nd;
    int64_t in_sh[NESIM_NIR_MAX_DIM], out_sh[NESIM_NIR_MAX_DIM];
    size_t n_in, n_out;
    int *preds, n_preds; /* all predecessors, in edge order */
    int shaped;          /* shape inference done */
    svec in, out;
    /* Linear / Affine: weights by input column (wt[j * n_out + i]), nonzeros per column */
    double *wt, *bias;
    uint32_t *col_nnz;
    /* Conv / Pool */
    int sdim, cin, cout, groups;
    int64_t K[2], S[2], P[2], D[2], H[2], O[2];
    double *w, *cbias;
    /* Scale, Threshold: per element; Delay: steps per element */
    double *per;
    int64_t *dsteps, dmax;
    svec *ring; /* dmax + 1 slots */
    /* neurons: per-neuron constants and state */
    int spiking, cuba;
    double *R, *thr, *vleak, *vreset, *win, *km, *ks, *ea, *eb, *q;
    double *v, *I;
    int64_t *ts;
    uint8_t *live;
    uint32_t *live_list, *cand;
    size_t n_live;
    uint64_t *events;    /* per output index, over all samples (groups) */
    /* record */
    nesim_nir_spike *sp;
    size_t n_sp, cap_sp;
    nesim_nir_counts c;
} rnode;

struct nesim_nir_net {
    const nesim_nir_graph *g;
    nesim_nir_opts o;
    const char *file;
    rnode *r;
    int n;
    int *order; /* topological order of forward edges */
    int input, output;
    double *readout;
    int64_t now; /* last step run */
    nesim_nir_step_hook hook;
    void *hook_ctx;
    /* replay */
    int rp_node;
    uint8_t *rp_active;
    const nesim_nir_spike *rp_sp;
    size_t rp_n, rp_at;
};

static int is_neuron(nesim_nir_type t)
{
    return t == NESIM_NIR_I || t == NESIM_NIR_IF || t == NESIM_NIR_LI || t == NESIM_NIR_LIF ||
           t == NESIM_NIR_CUBALI || t == NESIM_NIR_CUBALIF;
}

static int is_stateful(nesim_nir_type t) { return is_neuron(t) || t == NESIM_NIR_DELAY; }

static int svec_init(svec *s, size_t n)
{
    s->cap = n;
    s->n = 0;
    s->val = calloc(n ? n : 1, sizeof *s->val);
    s->idx = malloc((n ? n : 1) * sizeof *s->idx);
    s->mark = calloc(n ? n : 1, 1);
    return s->val && s->idx && s->mark ? NESIM_OK : NESIM_ENOMEM;
}

static void svec_free(svec *s)
{
    free(s->val);
    free(s->idx);
    free(s->mark);
}

static inline void svec_add(svec *s, uint32_t i, double x)
{
    if (!s->mark[i]) {
        s->mark[i] = 1;
        s->idx[s->n++] = i;
    }
    s->val[i] += x;
}

static void svec_clear(svec *s)
{
    for (size_t k = 0; k < s->n; k++) {
        s->val[s->idx[k]] = 0;
        s->mark[s->idx[k]] = 0;
    }
    s->n = 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Ascending index order: canonical, whatever order the adds came in. */
static void svec_sort(svec *s)
{
    if (s->n <= 1)
        return;
    if (s->n > s->cap / 16) { /* dense enough: one pass over the marks is cheaper than a sort */
        size_t k = 0;
        for (size_t i = 0; i < s->cap; i++)
            if (s->mark[i])
                s->idx[k++] = (uint32_t)i;
        return;
    }
    qsort(s->idx, s->n, sizeof *s->idx, cmp_u32);
}

/* ---- building ------------------------------------------------------------- */

typedef struct bctx {
    const char *file;
    nesim_error *err;
} bctx;

static int bad(const bctx *b, const rnode *r, const char *fmt, const char *a, const char *c)
{
    char s1[NESIM_JSON_SHOWN], msg[300];
    snprintf(msg, sizeof msg, fmt, a, c);
    return nesim_fail(b->err, NESIM_EINVAL, "%s: node '%s' (%s): %s", b->file, nesim_json_show(r->def->name, s1),
                      nesim_nir_type_name(r->type), msg);
}

static const nesim_nir_param *need(const bctx *b, const rnode *r, const char *name, int *rc)
{
    const nesim_nir_param *p = nesim_nir_param_get(r->def, name);
    if (!p)
        *rc = bad(b, r, "parameter '%s' missing%s", name, "");
    else if (p->str)
        *rc = bad(b, r, "parameter '%s' is a string%s", name, ", expected numbers");
    return p;
}

static size_t shape_count(int nd, const int64_t *sh)
{
    size_t c = 1;
    for (int d = 0; d < nd; d++)
        c *= (size_t)sh[d];
    return c;
}

/* Per-neuron array of parameter `name` over n values: broadcast a scalar or
 * a one-element array, else the count must be n. */
static int per_neuron(const bctx *b, rnode *r, const char *name, double def, int required, size_t n, double **out)
{
    const nesim_nir_param *p = nesim_nir_param_get(r->def, name);
    if (!p && required)
        return bad(b, r, "parameter '%s' missing%s", name, "");
    if (p && p->str)
        return bad(b, r, "parameter '%s' is a string%s", name, ", expected numbers");
    double *a = malloc((n ? n : 1) * sizeof *a);
    if (!a)
        return nesim_fail(b->err, NESIM_ENOMEM, "%s: out of memory", b->file);
    *out = a;
    if (!p || p->count == 1) {
        for (size_t i = 0; i < n; i++)
            a[i] = p ? p->v[0] : def;
        return NESIM_OK;
    }
    if (p->count != n) {
        char c[64];
        snprintf(c, sizeof c, "%zu values for %zu neurons", p->count, n);
        return bad(b, r, "parameter '%s' has %s", name, c);
    }
    memcpy(a, p->v, n * sizeof *a);
    return NESIM_OK;
}

/* Reads a 1- or 2-element integer parameter (or a scalar) into v[sdim]. */
static int ints(const bctx *b, rnode *r, const char *name, int sdim, int64_t def, int64_t *v)
{
    const nesim_nir_param *p = nesim_nir_param_get(r->def, name);
    for (int d = 0; d < sdim; d++)
        v[d] = def;
    if (!p)
        return NESIM_OK;
    if (p->str)
        return bad(b, r, "parameter '%s' is a string%s", name, "");
    if (p->count != 1 && p->count != (size_t)sdim)
        return bad(b, r, "parameter '%s' needs 1 or %s values", name, sdim == 2 ? "2" : "1");
    for (int d = 0; d < sdim; d++) {
        double x = p->v[p->count == 1 ? 0 : d];
        if (x != floor(x) || fabs(x) > 1e9)
            return bad(b, r, "parameter '%s' must be whole numbers%s", name, "");
        v[d] = (int64_t)x;
    }
    return NESIM_OK;
}

static void set_shape(int *nd, int64_t *sh, int src_nd, const int64_t *src)
{
    *nd = src_nd;
    for (int d = 0; d < src_nd; d++)
        sh[d] = src[d];
}

/* Input shape known (r->in_*): fills the node's constants and output shape. */
static int build_node(const bctx *b, rnode *r, const nesim_nir_opts *o)
{
    int rc = NESIM_OK;
    const nesim_nir_param *p;
    switch (r->type) {
    case NESIM_NIR_INPUT:
    case NESIM_NIR_OUTPUT:
    case NESIM_NIR_IDENTITY:
    case NESIM_NIR_FLATTEN:
        if (r->type == NESIM_NIR_FLATTEN) {
            r->out_nd = 1;
            r->out_sh[0] = (int64_t)r->n_in;
        } else
            set_shape(&r->out_nd, r->out_sh, r->in_nd, r->in_sh);
        break;
    case NESIM_NIR_AFFINE:
    case NESIM_NIR_LINEAR: {
        p = need(b, r, "weight", &rc);
        if (rc)
            return rc;
        if (p->ndim != 2)
            return bad(b, r, "weight must be [out, in]%s%s", "", "");
        size_t no = (size_t)p->shape[0], ni = (size_t)p->shape[1];
        if (ni != r->n_in) {
            char c[96];
            snprintf(c, sizeof c, "weight takes %zu inputs but the edge brings %zu", ni, r->n_in);
            return bad(b, r, "%s%s", c, "");
        }
        r->out_nd = 1;
        r->out_sh[0] = (int64_t)no;
        r->n_out = no;
        r->wt = malloc((no * ni > 0 ? no * ni : 1) * sizeof *r->wt);
        r->col_nnz = calloc(ni ? ni : 1, sizeof *r->col_nnz);
        if (!r->wt || !r->col_nnz)
            return NESIM_ENOMEM;
        for (size_t i = 0; i < no; i++)
            for (size_t j = 0; j < ni; j++) {
                double w = p->v[i * ni + j];
                r->wt[j * no + i] = w;
                r->col_nnz[j] += w != 0;
            }
        const nesim_nir_param *bp = nesim_nir_param_get(r->def, "bias");
        if (r->type == NESIM_NIR_AFFINE && bp) {
            if (bp->str || (bp->count != no && bp->count != 1))
                return bad(b, r, "bias must have one value per output%s%s", "", "");
            int any = 0;
            for (size_t i = 0; i < bp->count; i++)
                any |= bp->v[i] != 0;
            if (any) {
                if (!(r->bias = malloc(no * sizeof *r->bias)))
                    return NESIM_ENOMEM;
                for (size_t i = 0; i < no; i++)
                    r->bias[i] = bp->v[bp->count == 1 ? 0 : i];
            }
        }
        break;
    }
    case NESIM_NIR_SCALE:
    case NESIM_NIR_THRESHOLD:
        set_shape(&r->out_nd, r->out_sh, r->in_nd, r->in_sh);
        if ((rc = per_neuron(b, r, r->type == NESIM_NIR_SCALE ? "scale" : "threshold", 0, 1, r->n_in, &r->per)))
            return rc;
        break;
    case NESIM_NIR_DELAY: {
        set_shape(&r->out_nd, r->out_sh, r->in_nd, r->in_sh);
        double *d = NULL;
        if ((rc = per_neuron(b, r, "delay", 0, 1, r->n_in, &d)))
            return free(d), rc;
        if (!(o->dt > 0)) {
            free(d);
            return bad(b, r, "a delay in seconds needs the step: give --dt%s%s", "", "");
        }
        r->dsteps = malloc((r->n_in ? r->n_in : 1) * sizeof *r->dsteps);
        if (!r->dsteps)
            return free(d), NESIM_ENOMEM;
        for (size_t i = 0; i < r->n_in; i++) {
            double s = round(d[i] / o->dt);
            if (!(s >= 0 && s <= 1e6)) {
                free(d);
                return bad(b, r, "delay must be 0 .. 1e6 steps%s%s", "", "");
            }
            r->dsteps[i] = (int64_t)s;
            if (r->dsteps[i] > r->dmax)
                r->dmax = r->dsteps[i];
        }
        free(d);
        r->ring = calloc((size_t)r->dmax + 1, sizeof *r->ring);
        if (!r->ring)
            return NESIM_ENOMEM;
        for (int64_t k = 0; k <= r->dmax; k++)
            if (svec_init(&r->ring[k], r->n_in))
                return NESIM_ENOMEM;
        break;
    }
    case NESIM_NIR_CONV1D:
    case NESIM_NIR_CONV2D: {
        int sd = r->type == NESIM_NIR_CONV2D ? 2 : 1;
        r->sdim = sd;
        p = need(b, r, "weight", &rc);
        if (rc)
            return rc;
        if (p->ndim != 2 + sd)
            return bad(b, r, "weight must be [out channels, in channels / groups, kernel%s]%s",
                       sd == 2 ? " h, kernel w" : "", "");
        int64_t g = 1;
        if ((rc = ints(b, r, "groups", 1, 1, &g)))
            return rc;
        if (g < 1 || p->shape[0] % g)
            return bad(b, r, "groups must divide the output channels%s%s", "", "");
        if ((double)p->shape[1] * (double)g > (double)NESIM_NIR_MAX_VALUES)
            return bad(b, r, "more than 2^28 input channels%s%s", "", "");
        r->groups = (int)g;
        r->cout = (int)p->shape[0];
        r->cin = (int)(p->shape[1] * g);
        int64_t hw[2] = {1, 1};
        const nesim_nir_param *is = nesim_nir_param_get(r->def, "input_shape");
        if (is && !is->str && is->count == (size_t)sd)
            for (int d = 0; d < sd; d++)
                hw[d] = (int64_t)is->v[d];
        else if (r->in_nd == sd + 1)
            for (int d = 0; d < sd; d++)
                hw[d] = r->in_sh[1 + d];
        else
            return bad(b, r, "input_shape missing and the incoming shape is not [channels, ...]%s%s", "", "");
        for (int d = 0; d < sd; d++) {
            r->H[d] = hw[d];
            r->K[d] = p->shape[2 + d];
        }
        if ((size_t)r->cin * shape_count(sd, r->H) != r->n_in) {
            char c[120];
            snprintf(c, sizeof c, "takes %d x %lld%s%lld inputs but the edge brings %zu", r->cin, (long long)r->H[0],
                     sd == 2 ? " x " : "", sd == 2 ? (long long)r->H[1] : 0LL, r->n_in);
            if (sd == 1)
                snprintf(c, sizeof c, "takes %d x %lld inputs but the edge brings %zu", r->cin, (long long)r->H[0],
                         r->n_in);
            return bad(b, r, "%s%s", c, "");
        }
        if ((rc = ints(b, r, "stride", sd, 1, r->S)) || (rc = ints(b, r, "dilation", sd, 1, r->D)))
            return rc;
        const nesim_nir_param *pp = nesim_nir_param_get(r->def, "padding");
        if (pp && pp->str) {
            if (strcmp(pp->str, "valid") == 0)
                r->P[0] = r->P[1] = 0;
            else if (strcmp(pp->str, "same") == 0) {
                for (int d = 0; d < sd; d++) {
                    if (r->S[d] != 1 || (r->D[d] * (r->K[d] - 1)) % 2)
                        return bad(b, r, "padding 'same' needs stride 1 and an odd kernel span%s%s", "", "");
                    r->P[d] = r->D[d] * (r->K[d] - 1) / 2;
                }
            } else
                return bad(b, r, "padding '%s' (expected numbers, 'same' or 'valid')%s", pp->str, "");
        } else if ((rc = ints(b, r, "padding", sd, 0, r->P)))
            return rc;
        for (int d = 0; d < sd; d++) {
            if (r->S[d] < 1 || r->D[d] < 1 || r->P[d] < 0 || r->K[d] < 1)
                return bad(b, r, "stride, dilation and kernel must be >= 1, padding >= 0%s%s", "", "");
            int64_t span = r->H[d] + 2 * r->P[d] - r->D[d] * (r->K[d] - 1) - 1;
            if (span < 0)
                return bad(b, r, "the kernel is larger than the padded input%s%s", "", "");
            r->O[d] = span / r->S[d] + 1;
        }
        if ((double)r->cout * (double)r->O[0] * (double)(sd == 2 ? r->O[1] : 1) > (double)NESIM_NIR_MAX_VALUES)
            return bad(b, r, "its output holds more than 2^28 values%s%s", "", "");
        r->out_nd = 1 + sd;
        r->out_sh[0] = r->cout;
        for (int d = 0; d < sd; d++)
            r->out_sh[1 + d] = r->O[d];
        r->n_out = shape_count(r->out_nd, r->out_sh);
        r->w = p->v;
        const nesim_nir_param *bp = nesim_nir_param_get(r->def, "bias");
        if (bp && !bp->str) {
            if (bp->count != (size_t)r->cout && bp->count != 1)
                return bad(b, r, "bias must have one value per output channel%s%s", "", "");
            int any = 0;
            for (size_t i = 0; i < bp->count; i++)
                any |= bp->v[i] != 0;
            if (any) {
                if (!(r->cbias = malloc((size_t)r->cout * sizeof *r->cbias)))
                    return NESIM_ENOMEM;
                for (int i = 0; i < r->cout; i++)
                    r->cbias[i] = bp->v[bp->count == 1 ? 0 : i];
            }
        }
        if (sd == 1) {
            r->H[1] = r->O[1] = r->K[1] = r->S[1] = r->D[1] = 1;
            r->P[1] = 0;
        }
        break;
    }
    case NESIM_NIR_SUMPOOL2D:
    case NESIM_NIR_AVGPOOL2D: {
        if (r->in_nd != 3)
            return bad(b, r, "needs a [channels, height, width] input%s%s", "", "");
        r->sdim = 2;
        r->cin = r->cout = (int)r->in_sh[0];
        r->H[0] = r->in_sh[1];
        r->H[1] = r->in_sh[2];
        if ((rc = ints(b, r, "kernel_size", 2, 1, r->K)))
            return rc;
        if (!nesim_nir_param_get(r->def, "kernel_size"))
            return bad(b, r, "parameter '%s' missing%s", "kernel_size", "");
        if ((rc = ints(b, r, "stride", 2, 0, r->S)) || (rc = ints(b, r, "padding", 2, 0, r->P)))
            return rc;
        for (int d = 0; d < 2; d++) {
            if (r->S[d] == 0)
                r->S[d] = r->K[d]; /* PyTorch: stride defaults to the kernel */
            r->D[d] = 1;
            if (r->S[d] < 1 || r->K[d] < 1 || r->P[d] < 0)
                return bad(b, r, "kernel and stride must be >= 1, padding >= 0%s%s", "", "");
            int64_t span = r->H[d] + 2 * r->P[d] - r->K[d];
            if (span < 0)
                return bad(b, r, "the kernel is larger than the padded input%s%s", "", "");
            r->O[d] = span / r->S[d] + 1;
        }
        if ((double)r->cout * (double)r->O[0] * (double)r->O[1] > (double)NESIM_NIR_MAX_VALUES)
            return bad(b, r, "its output holds more than 2^28 values%s%s", "", "");
        r->out_nd = 3;
        r->out_sh[0] = r->cout;
        r->out_sh[1] = r->O[0];
        r->out_sh[2] = r->O[1];
        r->n_out = shape_count(3, r->out_sh);
        break;
    }
    default: { /* neurons */
        size_t n = r->n_in;
        set_shape(&r->out_nd, r->out_sh, r->in_nd, r->in_sh);
        r->spiking = r->type == NESIM_NIR_IF || r->type == NESIM_NIR_LIF || r->type == NESIM_NIR_CUBALIF;
        r->cuba = r->type == NESIM_NIR_CUBALI || r->type == NESIM_NIR_CUBALIF;
        /* the node's own parameter arrays give its size: it must match the edge */
        for (int k = 0; k < r->def->n_params; k++) {
            const nesim_nir_param *q = &r->def->params[k];
            if (!q->str && q->count != 1 && q->count != n) {
                char c[120];
                snprintf(c, sizeof c, "has %zu values but the edge brings %zu", q->count, n);
                return bad(b, r, "parameter '%s' %s", q->name, c);
            }
            if (!q->str && q->count == n && q->ndim > 0 && n > 1)
                set_shape(&r->out_nd, r->out_sh, q->ndim, q->shape);
        }
        if (!(o->dt > 0))
            return bad(b, r, "its dynamics are in time: give --dt, the step it was trained with "
                             "(1e-4 for the snnTorch graphs of the NIR paper, 1 for Sinabs's step-counted ones)%s%s",
                       "", "");
        int lif = r->type == NESIM_NIR_LI || r->type == NESIM_NIR_LIF;
        if ((rc = per_neuron(b, r, "r", 1, 0, n, &r->R)) || (rc = per_neuron(b, r, "v_leak", 0, 0, n, &r->vleak)) ||
            (rc = per_neuron(b, r, "v_reset", 0, 0, n, &r->vreset)) ||
            (rc = per_neuron(b, r, "v_threshold", 0, r->spiking, n, &r->thr)) ||
            (rc = per_neuron(b, r, "w_in", 1, 0, n, &r->win)))
            return rc;
        double *tm = NULL, *tsy = NULL;
        if (lif)
            rc = per_neuron(b, r, "tau", 0, 1, n, &tm);
        else if (r->cuba) {
            rc = per_neuron(b, r, "tau_mem", 0, 1, n, &tm);
            if (!rc)
                rc = per_neuron(b, r, "tau_syn", 0, 1, n, &tsy);
        }
        r->km = calloc(n ? n : 1, sizeof *r->km);
        r->ks = calloc(n ? n : 1, sizeof *r->ks);
        r->ea = calloc(n ? n : 1, sizeof *r->ea);
        r->eb = calloc(n ? n : 1, sizeof *r->eb);
        r->q = calloc(n ? n : 1, sizeof *r->q);
        r->v = calloc(n ? n : 1, sizeof *r->v);
        r->I = calloc(n ? n : 1, sizeof *r->I);
        r->ts = calloc(n ? n : 1, sizeof *r->ts);
        r->live = calloc(n ? n : 1, 1);
        r->live_list = malloc((n ? n : 1) * sizeof *r->live_list);
        r->cand = malloc((n ? n : 1) * sizeof *r->cand);
        if (!rc && (!r->km || !r->ks || !r->ea || !r->eb || !r->q || !r->v || !r->I || !r->ts || !r->live ||
                    !r->live_list || !r->cand))
            rc = NESIM_ENOMEM;
        for (size_t i = 0; !rc && i < n; i++) {
            double dt = o->dt;
            if (tm && !(tm[i] > 0))
                rc = bad(b, r, "%s must be > 0%s", r->cuba ? "tau_mem" : "tau", "");
            else if (tsy && !(tsy[i] > 0))
                rc = bad(b, r, "tau_syn must be > 0%s%s", "", "");
            else if (o->disc == NESIM_NIR_EULER && ((tm && dt > tm[i]) || (tsy && dt > tsy[i]))) {
                char c[120];
                snprintf(c, sizeof c, "dt = %g s exceeds a time constant (%g s): forward Euler is unstable there",
                         dt, tsy && dt > tsy[i] ? tsy[i] : tm[i]);
                rc = bad(b, r, "%s; use a smaller --dt or --discretisation exact%s", c, "");
            }
            if (rc)
                break;
            if (tm) {
                r->km[i] = dt / tm[i];
                r->eb[i] = exp(-dt / tm[i]);
            }
            if (tsy) {
                r->ks[i] = dt / tsy[i];
                r->ea[i] = exp(-dt / tsy[i]);
                /* tau_syn (a - b) / (tau_syn - tau_mem), its limit (dt/tau) e^(-dt/tau) when they meet */
                double d = tsy[i] - tm[i];
                if (fabs(d) <= 1e-9 * fmax(tsy[i], tm[i]))
                    r->q[i] = dt / tm[i] * r->eb[i];
                else
                    r->q[i] = tsy[i] * (r->ea[i] - r->eb[i]) / d;
            }
            if (!r->cuba && !lif)
                r->km[i] = dt; /* I, IF: v <- v + dt R x */
            r->v[i] = 0;
            r->ts[i] = -1;
        }
        free(tm);
        free(tsy);
        if (rc)
            return rc;
        break;
    }
    }
    if (!r->n_out)
        r->n_out = shape_count(r->out_nd, r->out_sh);
    if (r->type != NESIM_NIR_AFFINE && r->type != NESIM_NIR_LINEAR && r->type != NESIM_NIR_CONV1D &&
        r->type != NESIM_NIR_CONV2D && r->type != NESIM_NIR_SUMPOOL2D && r->type != NESIM_NIR_AVGPOOL2D &&
        r->type != NESIM_NIR_FLATTEN && r->n_out != r->n_in)
        return bad(b, r, "output size differs from input size%s%s", "", "");
    if (r->n_out > NESIM_NIR_MAX_VALUES || r->n_in > NESIM_NIR_MAX_VALUES)
        return bad(b, r, "more than 2^28 values in or out%s%s", "", "");
    return NESIM_OK;
}

/* The shape a node declares for its input, if any (Input/Output shape, Conv
 * input_shape with channels, Flatten input_type, neuron parameter shapes). */
static int declared_in(const rnode *r, int *nd, int64_t *sh)
{
    const nesim_nir_param *p = NULL;
    if (r->type == NESIM_NIR_INPUT || r->type == NESIM_NIR_OUTPUT || r->type == NESIM_NIR_IDENTITY)
        p = nesim_nir_param_get(r->def, "shape");
    else if (r->type == NESIM_NIR_FLATTEN)
        p = nesim_nir_param_get(r->def, "input_type");
    if (p && !p->str && p->ndim == 1 && p->count <= NESIM_NIR_MAX_DIM && p->count) {
        *nd = (int)p->count;
        double total = 1;
        for (size_t d = 0; d < p->count; d++) {
            if (!(p->v[d] >= 0 && p->v[d] <= 1e12) || p->v[d] != floor(p->v[d]))
                return -1;
            sh[d] = (int64_t)p->v[d];
            total *= p->v[d];
        }
        return total <= (double)NESIM_NIR_MAX_VALUES ? 1 : -2;
    }
    if (is_neuron(r->type) || r->type == NESIM_NIR_SCALE || r->type == NESIM_NIR_THRESHOLD ||
        r->type == NESIM_NIR_DELAY) {
        const nesim_nir_param *best = NULL;
        for (int k = 0; k < r->def->n_params; k++) {
            const nesim_nir_param *q = &r->def->params[k];
            if (!q->str && q->ndim > 0 && (!best || q->count > best->count))
                best = q;
        }
        if (best && best->count > 1) {
            set_shape(nd, sh, best->ndim, best->shape);
            return 1;
        }
    }
    if (r->type == NESIM_NIR_AFFINE || r->type == NESIM_NIR_LINEAR) {
        p = nesim_nir_param_get(r->def, "weight");
        if (p && !p->str && p->ndim == 2) {
            *nd = 1;
            sh[0] = p->shape[1];
            return 1;
        }
    }
    return 0;
}

/* Depth-first from the Input nodes: marks back edges (closing cycles) and
 * refuses a cycle with nothing stateful in it. */
static int find_back_edges(const bctx *b, nesim_nir_net *net, const nesim_nir_graph *g, uint8_t *back)
{
    int n = net->n, rc = NESIM_OK;
    int *color = calloc((size_t)n, sizeof *color), *pos = calloc((size_t)n, sizeof *pos);
    int *stk = malloc((size_t)n * sizeof *stk), *ei = malloc((size_t)n * sizeof *ei);
    /* out-edges per node, in edge order */
    int *start = calloc((size_t)n + 1, sizeof *start), *oute = malloc(((size_t)g->n_edges + 1) * sizeof *oute);
    if (!color || !pos || !stk || !ei || !start || !oute) {
        rc = NESIM_ENOMEM;
        goto done;
    }
    for (int e = 0; e < g->n_edges; e++)
        start[g->edges[e][0] + 1]++;
    for (int i = 0; i < n; i++)
        start[i + 1] += start[i];
    {
        int *fill = calloc((size_t)n, sizeof *fill);
        if (!fill) {
            rc = NESIM_ENOMEM;
            goto done;
        }
        for (int e = 0; e < g->n_edges; e++) {
            int s = g->edges[e][0];
            oute[start[s] + fill[s]++] = e;
        }
        free(fill);
    }
    for (int pass = 0; pass < 2 && !rc; pass++)
        for (int root = 0; root < n && !rc; root++) {
            if (color[root] || (pass == 0 && net->r[root].type != NESIM_NIR_INPUT))
                continue;
            int sp = 0;
            stk[sp] = root;
            ei[sp] = start[root];
            pos[root] = sp;
            color[root] = 1;
            sp++;
            while (sp && !rc) {
                int u = stk[sp - 1];
                if (ei[sp - 1] == start[u + 1]) {
                    color[u] = 2;
                    sp--;
                    continue;
                }
                int e = oute[ei[sp - 1]++], v = g->edges[e][1];
                if (color[v] == 0) {
                    color[v] = 1;
                    pos[v] = sp;
                    stk[sp] = v;
                    ei[sp] = start[v];
                    sp++;
                } else if (color[v] == 1) {
                    back[e] = 1;
                    int ok = 0;
                    for (int k = pos[v]; k < sp; k++)
                        ok |= is_stateful(net->r[stk[k]].type);
                    if (!ok) {
                        char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
                        rc = nesim_fail(b->err, NESIM_EINVAL,
                                        "%s: node '%s': the cycle through edge '%s' -> '%s' has no neuron or Delay "
                                        "in it (its value would depend on itself within one step)",
                                        b->file, nesim_json_show(g->nodes[v].name, s1),
                                        nesim_json_show(g->nodes[u].name, s2), g->nodes[v].name);
                    }
                }
            }
        }
done:
    free(color);
    free(pos);
    free(stk);
    free(ei);
    free(start);
    free(oute);
    return rc;
}

void nesim_nir_net_free(nesim_nir_net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->n; i++) {
        rnode *r = &net->r[i];
        svec_free(&r->in);
        svec_free(&r->out);
        free(r->preds);
        free(r->wt);
        free(r->bias);
        free(r->col_nnz);
        free(r->cbias);
        free(r->per);
        free(r->dsteps);
        for (int64_t k = 0; r->ring && k <= r->dmax; k++)
            svec_free(&r->ring[k]);
        free(r->ring);
        free(r->R);
        free(r->thr);
        free(r->vleak);
        free(r->vreset);
        free(r->win);
        free(r->km);
        free(r->ks);
        free(r->ea);
        free(r->eb);
        free(r->q);
        free(r->v);
        free(r->I);
        free(r->ts);
        free(r->live);
        free(r->live_list);
        free(r->cand);
        free(r->sp);
        free(r->events);
    }
    free(net->rp_active);
    free(net->r);
    free(net->order);
    free(net->readout);
    free(net);
}

int nesim_nir_net_new(const nesim_nir_graph *g, const nesim_nir_opts *o, const char *file, nesim_nir_net **out,
                      nesim_error *err)
{
    *out = NULL;
    bctx b = {file, err};
    nesim_nir_net *net = calloc(1, sizeof *net);
    uint8_t *back = calloc((size_t)g->n_edges + 1, 1);
    int *indeg = calloc((size_t)g->n_nodes + 1, sizeof *indeg);
    int rc = NESIM_OK;
    char s1[NESIM_JSON_SHOWN];
    if (!net || !back || !indeg)
        goto nomem;
    net->g = g;
    net->o = *o;
    net->file = file;
    net->n = g->n_nodes;
    net->input = net->output = -1;
    net->now = -1;
    net->rp_node = -1;
    net->r = calloc((size_t)g->n_nodes + 1, sizeof *net->r);
    net->order = malloc(((size_t)g->n_nodes + 1) * sizeof *net->order);
    if (!net->r || !net->order)
        goto nomem;
    if (o->disc != NESIM_NIR_EULER && o->disc != NESIM_NIR_EXACT) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: unknown discretisation", file);
        goto fail;
    }
    for (int i = 0; i < net->n; i++) {
        net->r[i].def = &g->nodes[i];
        net->r[i].type = g->nodes[i].type;
        if (g->nodes[i].type == NESIM_NIR_INPUT) {
            if (net->input >= 0) {
                rc = nesim_fail(err, NESIM_EINVAL, "%s: node '%s': a second Input node (nesim runs graphs with one)",
                                file, nesim_json_show(g->nodes[i].name, s1));
                goto fail;
            }
            net->input = i;
        }
        if (g->nodes[i].type == NESIM_NIR_OUTPUT && net->output < 0)
            net->output = i;
    }
    if (net->input < 0) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: the graph has no Input node", file);
        goto fail;
    }
    for (int e = 0; e < g->n_edges; e++) {
        int d = g->edges[e][1];
        if (d == net->input) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: node '%s': an edge leads into the Input node", file,
                            nesim_json_show(g->nodes[d].name, s1));
            goto fail;
        }
        rnode *r = &net->r[d];
        int *np = realloc(r->preds, (size_t)(r->n_preds + 1) * sizeof *np);
        if (!np)
            goto nomem;
        r->preds = np;
        r->preds[r->n_preds++] = g->edges[e][0];
    }
    if ((rc = find_back_edges(&b, net, g, back)))
        goto fail;
    /* Kahn over forward edges, ties by node index: a deterministic order */
    for (int e = 0; e < g->n_edges; e++)
        if (!back[e])
            indeg[g->edges[e][1]]++;
    {
        int done = 0;
        uint8_t *placed = calloc((size_t)net->n + 1, 1);
        if (!placed)
            goto nomem;
        while (done < net->n) {
            int pick = -1;
            for (int i = 0; i < net->n && pick < 0; i++)
                if (!placed[i] && indeg[i] == 0)
                    pick = i;
            if (pick < 0)
                break; /* cannot happen: back edges broke every cycle */
            placed[pick] = 1;
            net->order[done++] = pick;
            for (int e = 0; e < g->n_edges; e++)
                if (!back[e] && g->edges[e][0] == pick)
                    indeg[g->edges[e][1]]--;
        }
        free(placed);
        if (done < net->n) {
            rc = nesim_fail(err, NESIM_EINVAL, "%s: the graph's edges could not be ordered", file);
            goto fail;
        }
    }
    /* shapes, in order: a node's input is what its forward predecessors bring */
    for (int k = 0; k < net->n; k++) {
        int i = net->order[k];
        rnode *r = &net->r[i];
        int dnd = 0, have = 0;
        int64_t dsh[NESIM_NIR_MAX_DIM];
        int dec = declared_in(r, &dnd, dsh);
        if (dec < 0) {
            rc = bad(&b, r, dec == -1 ? "its declared shape is not a list of sizes%s%s"
                                      : "its declared shape holds more than 2^28 values%s%s",
                     "", "");
            goto fail;
        }
        for (int e = 0; e < g->n_edges; e++) {
            if (back[e] || g->edges[e][1] != i)
                continue;
            const rnode *s = &net->r[g->edges[e][0]];
            if (!have) {
                set_shape(&r->in_nd, r->in_sh, s->out_nd, s->out_sh);
                r->n_in = s->n_out;
                have = 1;
            } else if (s->n_out != r->n_in) {
                char c[160];
                snprintf(c, sizeof c, "edges bring %zu and %zu values", r->n_in, s->n_out);
                rc = bad(&b, r, "%s (from '%s')", c, nesim_json_show(s->def->name, s1));
                goto fail;
            }
        }
        if (dec == 1) {
            size_t dn = shape_count(dnd, dsh);
            if (have && dn != r->n_in) {
                char c[160];
                snprintf(c, sizeof c, "expects %zu values but its inputs bring %zu", dn, r->n_in);
                rc = bad(&b, r, "%s%s", c, "");
                goto fail;
            }
            if (!have || r->type == NESIM_NIR_FLATTEN || r->type == NESIM_NIR_INPUT || r->in_nd <= 1)
                set_shape(&r->in_nd, r->in_sh, dnd, dsh);
            r->n_in = dn;
            have = 1;
        }
        if (!have) {
            rc = bad(&b, r, "nothing gives its input size (no edge into it and no shape)%s%s", "", "");
            goto fail;
        }
        if ((rc = build_node(&b, r, o))) {
            if (rc == NESIM_ENOMEM)
                goto nomem;
            goto fail;
        }
        if (svec_init(&r->in, r->n_in) || svec_init(&r->out, r->n_out))
            goto nomem;
        if (nesim_nir_node_is_group(net, i) && !(r->events = calloc(r->n_out + 1, sizeof *r->events)))
            goto nomem;
    }
    for (int e = 0; e < g->n_edges; e++) {
        const rnode *s = &net->r[g->edges[e][0]], *d = &net->r[g->edges[e][1]];
        if (s->n_out != d->n_in) {
            char c[160];
            snprintf(c, sizeof c, "takes %zu values but '%.60s' gives %zu", d->n_in, s->def->name, s->n_out);
            rc = bad(&b, d, "%s%s", c, "");
            goto fail;
        }
    }
    if (net->output >= 0 && !(net->readout = calloc(net->r[net->output].n_out + 1, sizeof *net->readout)))
        goto nomem;
    free(back);
    free(indeg);
    *out = net;
    return NESIM_OK;
nomem:
    rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory building the network", file);
fail:
    free(back);
    free(indeg);
    nesim_nir_net_free(net);
    return rc;
}

/* ---- running ---------------------------------------------------------------- */

/* One step of neuron i with input x. */
static inline void step_neuron(const rnode *r, size_t i, double x, const nesim_nir_opts *o, double *vp, double *ip)
{
    double v = *vp;
    switch (r->type) {
    case NESIM_NIR_I:
    case NESIM_NIR_IF:
        v = v + r->km[i] * r->R[i] * x;
        break;
    case NESIM_NIR_LI:
    case NESIM_NIR_LIF:
        if (o->disc == NESIM_NIR_EULER)
            v = v + r->km[i] * (r->vleak[i] - v + r->R[i] * x);
        else {
            double vinf = r->vleak[i] + r->R[i] * x;
            v = vinf + (v - vinf) * r->eb[i];
        }
        break;
    default: { /* CubaLI, CubaLIF */
        double cur = *ip;
        if (o->disc == NESIM_NIR_EULER) {
            cur = cur + r->ks[i] * (-cur + r->win[i] * x);
            v = v + r->km[i] * (r->vleak[i] - v + r->R[i] * cur);
        } else {
            double iinf = r->win[i] * x;
            double vinf = r->vleak[i] + r->R[i] * iinf;
            v = vinf + (v - vinf) * r->eb[i] + r->R[i] * (cur - iinf) * r->q[i];
            cur = iinf + (cur - iinf) * r->ea[i];
        }
        *ip = cur;
        break;
    }
    }
    *vp = v;
}

static inline int quiescent(const rnode *r, size_t i)
{
    double bound = r->v[i];
    if (r->type == NESIM_NIR_LIF || r->type == NESIM_NIR_CUBALIF) {
        double drive = r->cuba ? r->R[i] * r->I[i] : 0;
        double target = r->vleak[i] + (drive > 0 ? drive : 0);
        if (target > bound)
            bound = target;
    }
    return !(bound > r->thr[i]);
}

/* Takes neuron i from its last step to step t - 1 without input (it cannot
 * fire meanwhile); stops early at a fixed point. */
static void catch_up(rnode *r, size_t i, int64_t t, const nesim_nir_opts *o)
{
    for (int64_t k = r->ts[i] + 1; k < t; k++) {
        double v0 = r->v[i], i0 = r->I[i];
        step_neuron(r, i, 0, o, &r->v[i], &r->I[i]);
        r->c.updates++;
        if (r->v[i] == v0 && r->I[i] == i0)
            break;
    }
    r->ts[i] = t - 1;
}

static int record_spike(rnode *r, int64_t t, uint32_t i)
{
    if (r->n_sp == r->cap_sp) {
        size_t nc = r->cap_sp ? 2 * r->cap_sp : 256;
        nesim_nir_spike *ns = realloc(r->sp, nc * sizeof *ns);
        if (!ns)
            return NESIM_ENOMEM;
        r->sp = ns;
        r->cap_sp = nc;
    }
    r->sp[r->n_sp++] = (nesim_nir_spike){t, i};
    r->c.spikes++;
    r->events[i]++;
    return NESIM_OK;
}

static int run_neurons(nesim_nir_net *net, rnode *r, int64_t t)
{
    const nesim_nir_opts *o = &net->o;
    svec *in = &r->in, *out = &r->out;
    size_t nc = 0;
    if (o->dense || !r->spiking) {
        /* graded neurons are read out every step: all of them are visited */
        for (size_t i = 0; i < r->n_in; i++)
            r->cand[nc++] = (uint32_t)i;
    } else {
        /* both ascending: merge */
        size_t a = 0, b = 0;
        while (a < in->n || b < r->n_live) {
            uint32_t x = a < in->n ? in->idx[a] : UINT32_MAX, y = b < r->n_live ? r->live_list[b] : UINT32_MAX;
            r->cand[nc++] = x < y ? x : y;
            a += x <= y;
            b += y <= x;
        }
    }
    r->n_live = 0;
    for (size_t k = 0; k < nc; k++) {
        uint32_t i = r->cand[k];
        if (r->ts[i] < t - 1)
            catch_up(r, i, t, o);
        step_neuron(r, i, in->val[i], o, &r->v[i], &r->I[i]);
        r->ts[i] = t;
        r->c.updates++;
        if (r->spiking) {
            if (r->v[i] > r->thr[i]) {
                if (o->reset_subtract)
                    r->v[i] -= r->thr[i] - r->vreset[i];
                else
                    r->v[i] = r->vreset[i];
                svec_add(out, i, 1.0);
                if (record_spike(r, t, i))
                    return NESIM_ENOMEM;
            }
            r->live[i] = !quiescent(r, i);
            if (r->live[i])
                r->live_list[r->n_live++] = i;
        } else if (r->v[i] != 0)
            svec_add(out, i, r->v[i]);
    }
    return NESIM_OK;
}

/* Scatters the sparse input through a Conv or Pool node. */
static void run_conv(rnode *r)
{
    svec *in = &r->in, *out = &r->out;
    int pool = r->type == NESIM_NIR_SUMPOOL2D || r->type == NESIM_NIR_AVGPOOL2D;
    double avg = r->type == NESIM_NIR_AVGPOOL2D ? 1.0 / (double)(r->K[0] * r->K[1]) : 1.0;
    int64_t H0 = r->H[0], H1 = r->H[1], O0 = r->O[0], O1 = r->O[1], K0 = r->K[0], K1 = r->K[1];
    int cig = r->cin / (r->groups ? r->groups : 1), cog = r->cout / (r->groups ? r->groups : 1);
    for (size_t k = 0; k < in->n; k++) {
        uint32_t j = in->idx[k];
        double x = in->val[j];
        if (x == 0)
            continue;
        int64_t c = j / (H0 * H1), rem = j % (H0 * H1), y = rem / H1, xx = rem % H1;
        for (int64_t ky = 0; ky < K0; ky++) {
            int64_t ny = y + r->P[0] - ky * r->D[0];
            if (ny < 0 || ny % r->S[0])
                continue;
            int64_t oy = ny / r->S[0];
            if (oy >= O0)
                continue;
            for (int64_t kx = 0; kx < K1; kx++) {
                int64_t nx = xx + r->P[1] - kx * r->D[1];
                if (nx < 0 || nx % r->S[1])
                    continue;
                int64_t ox = nx / r->S[1];
                if (ox >= O1)
                    continue;
                if (pool) {
                    svec_add(out, (uint32_t)((c * O0 + oy) * O1 + ox), x * avg);
                    r->c.sops++;
                    continue;
                }
                int64_t g = c / cig, cl = c - g * cig;
                for (int64_t co = g * cog; co < (g + 1) * cog; co++) {
                    double w = r->w[((co * cig + cl) * K0 + ky) * K1 + kx];
                    if (w == 0)
                        continue;
                    svec_add(out, (uint32_t)((co * O0 + oy) * O1 + ox), w * x);
                    r->c.sops++;
                }
            }
        }
    }
    if (r->cbias) {
        for (int64_t co = 0; co < r->cout; co++)
            for (int64_t p = 0; p < O0 * O1; p++)
                svec_add(out, (uint32_t)(co * O0 * O1 + p), r->cbias[co]);
        r->c.bias_ops += (uint64_t)(r->cout * O0 * O1);
    }
}

static int run_node(nesim_nir_net *net, int i, int64_t t, const double *frame)
{
    rnode *r = &net->r[i];
    svec *in = &r->in, *out = &r->out;
    svec_clear(out);
    if (net->rp_node >= 0) {
        if (!net->rp_active[i])
            return NESIM_OK; /* upstream of the replayed node: silent */
        if (i == net->rp_node) { /* its recorded spikes are its output */
            while (net->rp_at < net->rp_n && net->rp_sp[net->rp_at].step == t) {
                uint32_t j = net->rp_sp[net->rp_at++].idx;
                if (j < r->n_out && !out->mark[j]) {
                    svec_add(out, j, 1.0);
                    if (record_spike(r, t, j))
                        return NESIM_ENOMEM;
                }
            }
            svec_sort(out);
            return NESIM_OK;
        }
    }
    /* gather: forward predecessors ran this step; a back edge's source has
     * not yet, so its output is still the previous step's */
    svec_clear(in);
    if (r->type == NESIM_NIR_INPUT) {
        for (size_t j = 0; j < r->n_in; j++)
            if (frame[j] != 0) {
                svec_add(in, (uint32_t)j, frame[j]);
                r->events[j]++;
            }
    }
    for (int p = 0; p < r->n_preds; p++) {
        const svec *s = &net->r[r->preds[p]].out;
        for (size_t k = 0; k < s->n; k++)
            svec_add(in, s->idx[k], s->val[s->idx[k]]);
    }
    svec_sort(in);
    switch (r->type) {
    case NESIM_NIR_INPUT:
    case NESIM_NIR_OUTPUT:
    case NESIM_NIR_IDENTITY:
    case NESIM_NIR_FLATTEN:
        for (size_t k = 0; k < in->n; k++)
            svec_add(out, in->idx[k], in->val[in->idx[k]]);
        break;
    case NESIM_NIR_AFFINE:
    case NESIM_NIR_LINEAR: {
        size_t no = r->n_out;
        for (size_t k = 0; k < in->n; k++) {
            uint32_t j = in->idx[k];
            double x = in->val[j];
            if (x == 0 || !r->col_nnz[j])
                continue;
            const double *col = r->wt + (size_t)j * no;
            for (size_t q = 0; q < no; q++)
                if (col[q] != 0)
                    svec_add(out, (uint32_t)q, col[q] * x);
            r->c.sops += r->col_nnz[j];
        }
        if (r->bias) {
            for (size_t q = 0; q < no; q++)
                svec_add(out, (uint32_t)q, r->bias[q]);
            r->c.bias_ops += no;
        }
        break;
    }
    case NESIM_NIR_SCALE:
        for (size_t k = 0; k < in->n; k++) {
            uint32_t j = in->idx[k];
            if (r->per[j] * in->val[j] != 0)
                svec_add(out, j, r->per[j] * in->val[j]);
        }
        break;
    case NESIM_NIR_THRESHOLD:
        for (size_t j = 0; j < r->n_in; j++) {
            /* untouched inputs are 0: only a negative threshold makes them fire */
            if (!in->mark[j] && !(r->per[j] < 0))
                continue;
            if (in->val[j] > r->per[j]) {
                svec_add(out, (uint32_t)j, 1.0);
                if (record_spike(r, t, (uint32_t)j))
                    return NESIM_ENOMEM;
            }
        }
        break;
    case NESIM_NIR_DELAY: {
        int64_t m = r->dmax + 1;
        for (size_t k = 0; k < in->n; k++) {
            uint32_t j = in->idx[k];
            svec_add(&r->ring[(t + r->dsteps[j]) % m], j, in->val[j]);
        }
        svec *due = &r->ring[t % m];
        svec_sort(due);
        for (size_t k = 0; k < due->n; k++)
            svec_add(out, due->idx[k], due->val[due->idx[k]]);
        svec_clear(due);
        break;
    }
    case NESIM_NIR_CONV1D:
    case NESIM_NIR_CONV2D:
    case NESIM_NIR_SUMPOOL2D:
    case NESIM_NIR_AVGPOOL2D:
        run_conv(r);
        break;
    default:
        if (run_neurons(net, r, t))
            return NESIM_ENOMEM;
        break;
    }
    svec_sort(out);
    return NESIM_OK;
}

int nesim_nir_run_sample(nesim_nir_net *net, const double *frames, size_t steps, nesim_error *err)
{
    /* from rest */
    for (int i = 0; i < net->n; i++) {
        rnode *r = &net->r[i];
        svec_clear(&r->in);
        svec_clear(&r->out);
        r->n_sp = 0;
        if (r->v) {
            memset(r->v, 0, r->n_in * sizeof *r->v);
            memset(r->I, 0, r->n_in * sizeof *r->I);
            memset(r->live, 0, r->n_in);
            for (size_t j = 0; j < r->n_in; j++) {
                r->ts[j] = -1;
                /* a neuron whose leak alone takes it over threshold is live from the start */
                if (r->spiking && !quiescent(r, j))
                    r->live[j] = 1;
            }
            r->n_live = 0;
            for (size_t j = 0; j < r->n_in; j++)
                if (r->live[j])
                    r->live_list[r->n_live++] = (uint32_t)j;
        }
        for (int64_t k = 0; r->ring && k <= r->dmax; k++)
            svec_clear(&r->ring[k]);
        /* a linear node's output before step 0 (what a back edge reads first): its bias */
        if (r->bias)
            for (size_t q = 0; q < r->n_out; q++)
                svec_add(&r->out, (uint32_t)q, r->bias[q]);
        if (r->cbias)
            for (size_t q = 0; q < r->n_out; q++)
                svec_add(&r->out, (uint32_t)q, r->cbias[q / (size_t)(r->O[0] * r->O[1])]);
        svec_sort(&r->out);
    }
    if (net->readout)
        memset(net->readout, 0, net->r[net->output].n_out * sizeof *net->readout);
    net->rp_at = 0;
    if (net->rp_node >= 0) /* nodes that do not run must not hand a bias onward */
        for (int i = 0; i < net->n; i++)
            if (!net->rp_active[i])
                svec_clear(&net->r[i].out);
    size_t nin = net->r[net->input].n_in;
    for (size_t t = 0; t < steps; t++) {
        for (int k = 0; k < net->n; k++)
            if (run_node(net, net->order[k], (int64_t)t, frames + t * nin))
                return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory recording spikes", net->file);
        if (net->readout) {
            const svec *o = &net->r[net->output].out;
            for (size_t k = 0; k < o->n; k++)
                net->readout[o->idx[k]] += o->val[o->idx[k]];
        }
        if (net->hook && net->hook(net->hook_ctx, (int64_t)t))
            return nesim_fail(err, NESIM_EIO, "%s: stopped at step %zu", net->file, t);
    }
    net->now = (int64_t)steps - 1;
    return NESIM_OK;
}

size_t nesim_nir_input_size(const nesim_nir_net *net) { return net->r[net->input].n_in; }
size_t nesim_nir_output_size(const nesim_nir_net *net)
{
    return net->output >= 0 ? net->r[net->output].n_out : 0;
}
size_t nesim_nir_node_size(const nesim_nir_net *net, int node) { return net->r[node].n_out; }
int nesim_nir_node_shape(const nesim_nir_net *net, int node, int64_t *shape, int max)
{
    const rnode *r = &net->r[node];
    for (int d = 0; d < r->out_nd && d < max; d++)
        shape[d] = r->out_sh[d];
    return r->out_nd;
}
int nesim_nir_node_spikes(const nesim_nir_net *net, int node)
{
    return net->r[node].spiking || net->r[node].type == NESIM_NIR_THRESHOLD;
}
const nesim_nir_spike *nesim_nir_spikes(const nesim_nir_net *net, int node, size_t *n)
{
    *n = net->r[node].n_sp;
    return net->r[node].sp;
}
const double *nesim_nir_readout(const nesim_nir_net *net) { return net->readout; }
const nesim_nir_counts *nesim_nir_counts_of(const nesim_nir_net *net, int node) { return &net->r[node].c; }

int nesim_nir_state(const nesim_nir_net *net, int node, size_t i, double *v, double *cur)
{
    const rnode *r = &net->r[node];
    if (!r->v || i >= r->n_in)
        return NESIM_EINVAL;
    /* the neuron taken to the last step on copies, without touching the run */
    double tv = r->v[i], ti = r->I[i];
    for (int64_t k = r->ts[i] + 1; k <= net->now; k++) {
        double v0 = tv, i0 = ti;
        step_neuron(r, i, 0, &net->o, &tv, &ti);
        if (tv == v0 && ti == i0)
            break;
    }
    *v = tv;
    if (cur)
        *cur = ti;
    return NESIM_OK;
}

int nesim_nir_run_order(const nesim_nir_net *net, int k) { return net->order[k]; }

uint64_t nesim_nir_node_dense_macs(const nesim_nir_net *net, int node)
{
    const rnode *r = &net->r[node];
    switch (r->type) {
    case NESIM_NIR_AFFINE:
    case NESIM_NIR_LINEAR:
        return (uint64_t)r->n_in * r->n_out;
    case NESIM_NIR_CONV1D:
    case NESIM_NIR_CONV2D:
        return (uint64_t)r->n_out * (uint64_t)(r->cin / (r->groups ? r->groups : 1)) * (uint64_t)(r->K[0] * r->K[1]);
    case NESIM_NIR_SUMPOOL2D:
    case NESIM_NIR_AVGPOOL2D:
        return (uint64_t)r->n_out * (uint64_t)(r->K[0] * r->K[1]);
    default:
        return 0;
    }
}

void nesim_nir_set_step_hook(nesim_nir_net *net, nesim_nir_step_hook fn, void *ctx)
{
    net->hook = fn;
    net->hook_ctx = ctx;
}

int nesim_nir_node_is_group(const nesim_nir_net *net, int node)
{
    nesim_nir_type t = net->r[node].type;
    return t == NESIM_NIR_INPUT || t == NESIM_NIR_THRESHOLD || is_neuron(t);
}

const uint64_t *nesim_nir_event_counts(const nesim_nir_net *net, int node) { return net->r[node].events; }

/* The wiring's structure: output indices of node r reached from input j. */
static void wire_step(const rnode *r, uint32_t j, svec *out)
{
    switch (r->type) {
    case NESIM_NIR_AFFINE:
    case NESIM_NIR_LINEAR: {
        const double *col = r->wt + (size_t)j * r->n_out;
        for (size_t q = 0; q < r->n_out; q++)
            if (col[q] != 0)
                svec_add(out, (uint32_t)q, 1);
        break;
    }
    case NESIM_NIR_CONV1D:
    case NESIM_NIR_CONV2D:
    case NESIM_NIR_SUMPOOL2D:
    case NESIM_NIR_AVGPOOL2D: {
        int pool = r->type == NESIM_NIR_SUMPOOL2D || r->type == NESIM_NIR_AVGPOOL2D;
        int64_t H0 = r->H[0], H1 = r->H[1], O0 = r->O[0], O1 = r->O[1];
        int cig = r->cin / (r->groups ? r->groups : 1), cog = r->cout / (r->groups ? r->groups : 1);
        int64_t c = j / (H0 * H1), rem = j % (H0 * H1), y = rem / H1, x = rem % H1;
        for (int64_t ky = 0; ky < r->K[0]; ky++) {
            int64_t ny = y + r->P[0] - ky * r->D[0];
            if (ny < 0 || ny % r->S[0] || ny / r->S[0] >= O0)
                continue;
            for (int64_t kx = 0; kx < r->K[1]; kx++) {
                int64_t nx = x + r->P[1] - kx * r->D[1];
                if (nx < 0 || nx % r->S[1] || nx / r->S[1] >= O1)
                    continue;
                int64_t oy = ny / r->S[0], ox = nx / r->S[1];
                if (pool) {
                    svec_add(out, (uint32_t)((c * O0 + oy) * O1 + ox), 1);
                    continue;
                }
                int64_t g = c / cig, cl = c - g * cig;
                for (int64_t co = g * cog; co < (g + 1) * cog; co++)
                    if (r->w[((co * cig + cl) * r->K[0] + ky) * r->K[1] + kx] != 0)
                        svec_add(out, (uint32_t)((co * O0 + oy) * O1 + ox), 1);
            }
        }
        break;
    }
    case NESIM_NIR_SCALE:
        if (r->per[j] != 0)
            svec_add(out, j, 1);
        break;
    default: /* Identity, Output, Flatten, Delay: the same index */
        svec_add(out, j, 1);
        break;
    }
}

/* Depth-first through the wiring from `node`'s outputs in `set`. */
static int reach_from(const nesim_nir_net *net, int node, const svec *set, int dst, svec *res, int depth)
{
    if (depth > net->n)
        return 0;
    const nesim_nir_graph *g = net->g;
    for (int e = 0; e < g->n_edges; e++) {
        if (g->edges[e][0] != node)
            continue;
        int v = g->edges[e][1];
        if (v == dst) {
            for (size_t k = 0; k < set->n; k++)
                svec_add(res, set->idx[k], 1);
            continue;
        }
        if (nesim_nir_node_is_group(net, v))
            continue; /* another group: the wiring ends there */
        svec next;
        if (svec_init(&next, net->r[v].n_out))
            return -1;
        for (size_t k = 0; k < set->n; k++)
            wire_step(&net->r[v], set->idx[k], &next);
        int rc = reach_from(net, v, &next, dst, res, depth + 1);
        svec_free(&next);
        if (rc)
            return rc;
    }
    return 0;
}

size_t nesim_nir_reach(const nesim_nir_net *net, int src, uint32_t i, int dst, uint32_t *out, size_t cap)
{
    svec start, res;
    if (svec_init(&start, net->r[src].n_out) || svec_init(&res, net->r[dst].n_in)) {
        svec_free(&start);
        return 0;
    }
    svec_add(&start, i, 1);
    size_t n = 0;
    if (reach_from(net, src, &start, dst, &res, 0) == 0) {
        svec_sort(&res);
        n = res.n;
        for (size_t k = 0; k < n && k < cap; k++)
            out[k] = res.idx[k];
    }
    svec_free(&start);
    svec_free(&res);
    return n;
}

int nesim_nir_set_replay(nesim_nir_net *net, int node, const nesim_nir_spike *spikes, size_t n, nesim_error *err)
{
    if (node < 0) {
        net->rp_node = -1;
        return NESIM_OK;
    }
    if (node >= net->n || !nesim_nir_node_spikes(net, node))
        return nesim_fail(err, NESIM_EINVAL, "%s: node %d does not spike: nothing to replay", net->file, node);
    if (net->rp_node != node) {
        const nesim_nir_graph *g = net->g;
        uint8_t *act = calloc((size_t)net->n + 1, 1);
        if (!act)
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        act[node] = 1;
        for (int changed = 1; changed;) { /* everything downstream */
            changed = 0;
            for (int e = 0; e < g->n_edges; e++)
                if (act[g->edges[e][0]] && !act[g->edges[e][1]])
                    act[g->edges[e][1]] = 1, changed = 1;
        }
        for (int e = 0; e < g->n_edges; e++) {
            int s = g->edges[e][0], d = g->edges[e][1];
            if (act[d] && !act[s] && d != node) {
                char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
                free(act);
                return nesim_fail(err, NESIM_EINVAL,
                                  "%s: node '%s' after the replayed one also takes input from '%s', which a replay "
                                  "from there cannot rebuild",
                                  net->file, nesim_json_show(g->nodes[d].name, s1),
                                  nesim_json_show(g->nodes[s].name, s2));
            }
        }
        free(net->rp_active);
        net->rp_active = act;
        net->rp_node = node;
    }
    net->rp_sp = spikes;
    net->rp_n = n;
    return NESIM_OK;
}

int nesim_nir_feeds(const nesim_nir_net *net, int node)
{
    const nesim_nir_graph *g = net->g;
    uint8_t *mark = calloc((size_t)net->n + 1, 1);
    int *queue = malloc(((size_t)net->n + 1) * sizeof *queue), found = -1;
    if (!mark || !queue) {
        free(mark);
        free(queue);
        return -1;
    }
    int head = 0, tail = 0;
    queue[tail++] = node;
    mark[node] = 1;
    while (head < tail && found < 0) {
        int u = queue[head++];
        for (int e = 0; e < g->n_edges && found < 0; e++) {
            int v = g->edges[e][1];
            if (g->edges[e][0] != u || mark[v])
                continue;
            if (nesim_nir_node_is_group(net, v))
                found = v;
            mark[v] = 1;
            queue[tail++] = v;
        }
    }
    free(mark);
    free(queue);
    return found;
}
