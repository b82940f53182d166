/* stats.c — streaming ISI statistics (see stats.h). */
#include "eval/stats.h"

#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>

int nesim_isi_init(nesim_isi *s, uint32_t n, nesim_error *err)
{
    s->n = n;
    s->last = malloc((n ? n : 1) * sizeof *s->last);
    s->first = malloc((n ? n : 1) * sizeof *s->first);
    s->count = calloc(n ? n : 1, sizeof *s->count);
    s->mean = calloc(n ? n : 1, sizeof *s->mean);
    s->m2 = calloc(n ? n : 1, sizeof *s->m2);
    if (!s->last || !s->first || !s->count || !s->mean || !s->m2) {
        nesim_isi_free(s);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for spike statistics");
    }
    return NESIM_OK;
}

void nesim_isi_free(nesim_isi *s)
{
    free(s->last);
    free(s->first);
    free(s->count);
    free(s->mean);
    free(s->m2);
    s->last = s->first = NULL;
    s->count = NULL;
    s->mean = s->m2 = NULL;
}

void nesim_isi_add(nesim_isi *s, uint32_t i, int64_t t)
{
    if (s->count[i]) {
        double x = (double)(t - s->last[i]);
        uint64_t k = s->count[i]; /* intervals so far + 1 */
        double d = x - s->mean[i];
        s->mean[i] += d / (double)k;
        s->m2[i] += d * (x - s->mean[i]);
    } else {
        s->first[i] = t;
    }
    s->last[i] = t;
    s->count[i]++;
}

int nesim_isi_summarise(const nesim_isi *s, double duration_s, nesim_isi_summary *out,
                        nesim_error *err)
{
    double *cv = malloc((s->n ? s->n : 1) * sizeof *cv);
    if (!cv)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    uint32_t m = 0;
    out->spikes = 0;
    out->silent = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        out->spikes += s->count[i];
        if (!s->count[i])
            out->silent++;
        if (s->count[i] >= 3 && s->mean[i] > 0) {
            /* sample standard deviation of the intervals / their mean */
            double var = s->m2[i] / (double)(s->count[i] - 2);
            cv[m++] = sqrt(var) / s->mean[i];
        }
    }
    out->mean_rate_hz = s->n && duration_s > 0 ? (double)out->spikes / (s->n * duration_s) : 0;
    out->cv_neurons = m;
    out->cv_mean = m ? gsl_stats_mean(cv, 1, m) : NAN;
    free(cv);
    return NESIM_OK;
}
