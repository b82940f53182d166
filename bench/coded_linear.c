/* coded_linear.c — benchmark of the event-driven coded linear layer on a
 * SpikingBrain-7B sized projection (3584 -> 18944, the SwiGLU up/gate shape).
 *
 * What it guarantees to measure, for each coding and weight precision:
 * - SOP/s = synaptic operations (events x out, as counted by the layer) per
 *   second of wall time of nesim_coded_linear_batch, single thread, coding and
 *   event layout included;
 * - time per sample, events and steps T per sample;
 * - accuracy: max_o |y_o - ref_o| / max_o |ref_o| per sample (the error
 *   relative to the output's scale; a per-element ratio is meaningless where
 *   ref_o crosses zero), against the dense product W (N V_th) + b computed
 *   (a) by gsl_blas_sgemv, timed as the dense baseline, and (b) in double by
 *   a plain loop, the precise oracle;
 * - peak RSS (getrusage) after the weights are built, after the coded runs
 *   (the coded layer must not copy the matrix: the two should match), and at
 *   the end (the dense int8 baseline needs a float copy of the weights).
 * Weights: GSL RNG (seeded), normal std 0.02; int8 copies quantised per group
 * of 128 along `in` with f32 scales max|w|/127. Inputs: Laplace(1) per
 * element, seeded — heavy-tailed, and with k = 3 close to the published count
 * statistics (about 15 % silent, 92 % of |N| in [0, 7]).
 * Usage: coded_linear [--quick]   (--quick: 2 samples, fewer codings) */
#include <gsl/gsl_blas.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/par.h"
#include "sim/coded.h"

#define IN 3584
#define OUT 18944
#define GROUP 128
#define BATCH 16 /* tokens of the batched runs */
#define REPS 5   /* repetitions of each batched run: min and median */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "coded_linear: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static nesim_tensor view(nesim_dtype dt, int64_t rows, int64_t cols, const void *data)
{
    nesim_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.count = (size_t)rows * (size_t)cols;
    t.nbytes = t.count * nesim_dtype_size(dt);
    t.data = data;
    return t;
}

static void die(const char *what, const nesim_error *err)
{
    fprintf(stderr, "coded_linear: %s: %s\n", what, err->msg);
    exit(1);
}

/* y_ref in double, by a plain loop: the precise oracle. */
static void ref_f64(const float *W, const double *u, double *y)
{
    for (size_t o = 0; o < OUT; o++) {
        const float *r = W + o * IN;
        double s = 0;
        for (size_t i = 0; i < IN; i++)
            s += (double)r[i] * u[i];
        y[o] = s;
    }
}

static double rel_err(const float *y, const double *ref, size_t n)
{
    double emax = 0, rmax = 0;
    for (size_t o = 0; o < n; o++) {
        emax = fmax(emax, fabs((double)y[o] - ref[o]));
        rmax = fmax(rmax, fabs(ref[o]));
    }
    return rmax > 0 ? emax / rmax : emax;
}

typedef struct {
    const char *coding, *wname;
    size_t samples;
    double steps, events, sops, sec, err_s, err_d;
} row_t;

static void print_row(const row_t *r)
{
    double ps = r->sec / (double)r->samples;
    printf("%-22s %-5s %3zu %6.1f %9.0f %11.4g %9.3f %10.3g %9.2g %9.2g\n", r->coding, r->wname,
           r->samples, r->steps, r->events, r->sops, ps * 1e3, r->sops / ps, r->err_s, r->err_d);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A batch of BATCH tokens (bitwise-bidirectional) three ways, REPS times
 * each: one token per call on one thread (the unbatched kernel), one call on
 * one thread, one call on every core. The outputs must be the same bits. */
static void batched(const nesim_coded_linear *Lf, const nesim_coded_linear *Lq, const float *X, float *Y,
                    int quick)
{
    const int cores = nesim_par_cores(), reps = quick ? 3 : REPS;
    float *Y1 = xmalloc(BATCH * OUT * sizeof *Y1);
    nesim_error err = {0};
    printf("\nbatch of %d tokens, bitwise-bidirectional, %d repetitions (min / median s per batch; "
           "SOP/s at the min); %d cores\n", BATCH, reps, cores);
    printf("%-5s %-32s %9s %9s %10s %s\n", "w", "run", "min s", "median s", "SOP/s", "same bits");
    for (int q = 0; q < 2; q++) {
        nesim_coded_linear Lt = *(q ? Lq : Lf);
        const nesim_coded_linear *L = &Lt;
        unsigned char *tl = NULL;
        double tt = now();
        if (nesim_coded_tiles_new(L, cores, &tl, &err))
            die("tiles", &err);
        printf("%-5s tiles made in %.3f s\n", q ? "i8" : "f32", now() - tt);
        for (int way = 0; way < 5; way++) {
            Lt.tiles = way >= 3 ? tl : NULL;
            nesim_coded_opts o;
            nesim_coded_opts_init(&o);
            o.threads = way >= 2 ? cores : 1;
            double t[REPS];
            int64_t sops = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                nesim_coded_stats st;
                if (way == 0 || way == 4) {
                    sops = 0;
                    for (size_t s = 0; s < BATCH; s++) {
                        if (nesim_coded_linear_forward(L, &o, X + s * IN, Y1 + s * OUT, &st, &err))
                            die("forward", &err);
                        sops += st.sops;
                    }
                } else {
                    if (nesim_coded_linear_batch(L, &o, X, BATCH, Y, &st, NULL, &err))
                        die("batch", &err);
                    sops = st.sops;
                }
                t[r] = now() - t0;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_d);
            char what[64];
            snprintf(what, sizeof what, "%s, %d thread%s", way == 0 ? "token by token" : way == 3 ? "tiled layer" : way == 4 ? "tiled, token by token" : "one batch call",
                     o.threads, o.threads > 1 ? "s" : "");
            const char *same = way == 0 ? "-" : memcmp(Y, Y1, BATCH * OUT * sizeof *Y) ? "NO" : "yes";
            printf("%-5s %-32s %9.3f %9.3f %10.3g %s\n", q ? "i8" : "f32", what, t[0], t[(reps - 1) / 2],
                   (double)sops / t[0], same);
            if (*same == 'N') {
                fprintf(stderr, "coded_linear: batched output differs from token by token\n");
                exit(1);
            }
        }
        free(tl);
    }
    free(Y1);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    nesim_init();
    const size_t samples = quick ? 2 : 8;
    nesim_error err = {0};

    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 20250101);
    float *W = xmalloc((size_t)OUT * IN * sizeof *W);
    int8_t *Q = xmalloc((size_t)OUT * IN);
    float *S = xmalloc((size_t)OUT * (IN / GROUP) * sizeof *S);
    for (size_t k = 0; k < (size_t)OUT * IN; k++)
        W[k] = (float)gsl_ran_gaussian_ziggurat(rng, 0.02);
    for (size_t o = 0; o < OUT; o++)
        for (size_t g = 0; g < IN / GROUP; g++) {
            const float *w = W + o * IN + g * GROUP;
            float m = 0;
            for (size_t j = 0; j < GROUP; j++)
                m = fmaxf(m, fabsf(w[j]));
            float sc = m > 0 ? m / 127.0f : 1.0f;
            S[o * (IN / GROUP) + g] = sc;
            for (size_t j = 0; j < GROUP; j++)
                Q[o * IN + g * GROUP + j] = (int8_t)lrintf(w[j] / sc);
        }
    float *X = xmalloc(BATCH * IN * sizeof *X); /* BATCH >= samples */
    for (size_t k = 0; k < BATCH * IN; k++)
        X[k] = (float)gsl_ran_laplace(rng, 1.0);
    gsl_rng_free(rng);

    nesim_tensor wf = view(NESIM_F32, OUT, IN, W), wq = view(NESIM_I8, OUT, IN, Q),
                 ws = view(NESIM_F32, OUT, IN / GROUP, S);
    nesim_coded_linear Lf, Lq;
    if (nesim_coded_linear_init(&Lf, "up_proj.f32", &wf, NULL, 0, NULL, IN, OUT, &err))
        die("init f32", &err);
    if (nesim_coded_linear_init(&Lq, "up_proj.i8", &wq, &ws, GROUP, NULL, IN, OUT, &err))
        die("init i8", &err);
    /* nonzero weights per input channel, as the layer loader counts them for
     * nesim run (net/layers.c): the membrane-update count uses them */
    uint32_t *nzf = calloc(IN, sizeof *nzf), *nzq = calloc(IN, sizeof *nzq);
    if (!nzf || !nzq)
        die("nonzero counts", &err);
    for (size_t o = 0; o < OUT; o++)
        for (size_t i = 0; i < IN; i++) {
            nzf[i] += W[o * IN + i] != 0;
            nzq[i] += Q[o * IN + i] != 0 && S[o * (IN / GROUP) + i / GROUP] != 0;
        }
    Lf.nnz_in = nzf;
    Lq.nnz_in = nzq;
    double rss_weights = peak_rss_mib();

    float *Y = xmalloc(BATCH * OUT * sizeof *Y);
    double *U = xmalloc(samples * IN * sizeof *U);
    double *Rs = xmalloc(OUT * sizeof *Rs), *Rd = xmalloc(OUT * sizeof *Rd);
    float *Wdq = NULL; /* dequantised int8 weights, made after the coded runs */

    const nesim_coding codings[] = {NESIM_CODE_BITWISE_BIDIR, NESIM_CODE_BINARY,
                                    NESIM_CODE_TERNARY};
    const size_t ncod = quick ? 1 : 3;
    row_t rows[6];
    size_t nrows = 0;
    nesim_coded_stats bstats = {0};

    printf("coded linear %d -> %d, Laplace(1) inputs, k = 3, %zu samples, 1 thread\n", IN, OUT,
           samples);
    for (size_t c = 0; c < ncod; c++)
        for (int q = 0; q < 2; q++) {
            nesim_coded_linear *L = q ? &Lq : &Lf;
            nesim_coded_opts o;
            nesim_coded_opts_init(&o);
            o.coding = codings[c];
            nesim_coded_stats st;
            /* one warm-up sample so page faults of the mapping are not timed */
            if (nesim_coded_linear_forward(L, &o, X, Y, NULL, &err))
                die("warm-up", &err);
            double t = now();
            if (nesim_coded_linear_batch(L, &o, X, samples, Y, &st, NULL, &err))
                die("batch", &err);
            t = now() - t;
            if (c == 0 && q == 0)
                bstats = st;
            row_t *r = &rows[nrows++];
            *r = (row_t){.coding = nesim_coding_name(codings[c]),
                         .wname = q ? "i8" : "f32",
                         .samples = samples,
                         .steps = (double)st.steps / (double)samples,
                         .events = (double)st.spikes / (double)samples,
                         .sops = (double)st.sops / (double)samples,
                         .sec = t};
            /* accuracy: only the f32 layer's rows against W; int8 against Q*S */
            for (size_t s = 0; s < samples; s++) {
                if (nesim_coded_dense_input(&o, X + s * IN, IN, U + s * IN, NULL, &err))
                    die("dense input", &err);
            }
            r->err_s = r->err_d = 0;
            for (size_t s = 0; s < samples; s++) {
                if (q == 0) {
                    if (nesim_linear_dense_ref(L, U + s * IN, Rs, NESIM_DENSE_F32, &err))
                        die("dense ref", &err);
                    r->err_s = fmax(r->err_s, rel_err(Y + s * OUT, Rs, OUT));
                    if (s == 0) { /* the f64 oracle costs 68 M MACs: one sample */
                        ref_f64(W, U, Rd);
                        r->err_d = rel_err(Y, Rd, OUT);
                    }
                }
            }
            if (q == 1)
                r->err_s = r->err_d = -1; /* filled in below, after the float copy */
        }
    double rss_coded = peak_rss_mib();

    /* int8 accuracy and the dense baselines, with a float copy of Q*S */
    Wdq = xmalloc((size_t)OUT * IN * sizeof *Wdq);
    for (size_t o = 0; o < OUT; o++)
        for (size_t i = 0; i < IN; i++)
            Wdq[o * IN + i] = (float)Q[o * IN + i] * S[o * (IN / GROUP) + i / GROUP];
    nesim_tensor wdq = view(NESIM_F32, OUT, IN, Wdq);
    nesim_coded_linear Ldq;
    if (nesim_coded_linear_init(&Ldq, "up_proj.i8-as-f32", &wdq, NULL, 0, NULL, IN, OUT, &err))
        die("init dequantised", &err);
    for (size_t c = 0, k = 0; c < ncod; c++, k += 2) {
        row_t *r = &rows[k + 1];
        nesim_coded_opts o;
        nesim_coded_opts_init(&o);
        o.coding = codings[c];
        /* re-run the int8 layer (results were overwritten by later codings) */
        if (nesim_coded_linear_batch(&Lq, &o, X, samples, Y, NULL, NULL, &err))
            die("batch", &err);
        r->err_s = 0;
        for (size_t s = 0; s < samples; s++) {
            if (nesim_coded_dense_input(&o, X + s * IN, IN, U, NULL, &err))
                die("dense input", &err);
            if (nesim_linear_dense_ref(&Ldq, U, Rs, NESIM_DENSE_F32, &err))
                die("dense ref", &err);
            r->err_s = fmax(r->err_s, rel_err(Y + s * OUT, Rs, OUT));
            if (s == 0) {
                ref_f64(Wdq, U, Rd);
                r->err_d = rel_err(Y, Rd, OUT);
            }
        }
    }

    /* dense baselines: gsl_blas_sgemv on the same coded input (N V_th) */
    nesim_coded_opts o;
    nesim_coded_opts_init(&o);
    if (nesim_coded_dense_input(&o, X, IN, U, NULL, &err))
        die("dense input", &err);
    double t_sf = 0, t_sq = 0;
    for (size_t s = 0; s < samples; s++) {
        double t = now();
        if (nesim_linear_dense_ref(&Lf, U, Rs, NESIM_DENSE_F32, &err))
            die("dense ref", &err);
        t_sf += now() - t;
        t = now();
        if (nesim_linear_dense_ref(&Ldq, U, Rs, NESIM_DENSE_F32, &err))
            die("dense ref", &err);
        t_sq += now() - t;
    }
    double rss_end = peak_rss_mib();

    printf("\n%-22s %-5s %3s %6s %9s %11s %9s %10s %9s %9s\n", "coding", "w", "n", "T", "events",
           "SOP/sample", "ms/sample", "SOP/s", "err:sgemv", "err:f64");
    for (size_t k = 0; k < nrows; k++)
        print_row(&rows[k]);
    double macs = (double)IN * OUT;
    printf("%-22s %-5s %3zu %6s %9s %11.4g %9.3f %10.3g   (MAC/s, dense baseline)\n",
           "dense gsl_blas_sgemv", "f32", samples, "-", "-", macs, t_sf / (double)samples * 1e3,
           macs * (double)samples / t_sf);
    printf("%-22s %-5s %3zu %6s %9s %11.4g %9.3f %10.3g   (on a float copy of the i8 weights)\n",
           "dense gsl_blas_sgemv", "i8", samples, "-", "-", macs, t_sq / (double)samples * 1e3,
           macs * (double)samples / t_sq);
    printf("\ncounts (bitwise-bidirectional, k = 3): %.1f %% silent, %.1f %% of |N| in [0,7], "
           "%.3f spikes per channel, V_th mean %.4f, max |N| %lld, %lld negatives clipped\n",
           100.0 * (double)bstats.silent / (double)bstats.inputs, 100.0 * bstats.frac_small,
           bstats.spikes_per_channel, bstats.vth, (long long)bstats.max_count,
           (long long)bstats.clipped);
    printf("peak RSS: %.0f MiB with weights (f32 %.0f MiB + i8 %.0f MiB), %.0f MiB after the coded "
           "runs, %.0f MiB at the end (float copy for the dense i8 baseline)\n",
           rss_weights, (double)OUT * IN * 4 / 1048576.0, (double)OUT * IN / 1048576.0, rss_coded,
           rss_end);
    printf("err = max_o |y_o - ref_o| / max_o |ref_o| (max over samples for sgemv; sample 0 for "
           "f64)\n");
    batched(&Lf, &Lq, X, Y, quick);
    free(nzf);
    free(nzq);
    free(W);
    free(Q);
    free(S);
    free(X);
    free(Y);
    free(U);
    free(Rs);
    free(Rd);
    free(Wdq);
    return 0;
}
