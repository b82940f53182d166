/* util.c — small helpers of the CLI. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int cli_double(const char *opt, const char *s, double *out, nesim_error *err)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || errno || !isfinite(v))
        return nesim_fail(err, NESIM_EINVAL, "%s: expected a number, got '%s'", opt, s ? s : "");
    *out = v;
    return NESIM_OK;
}

int cli_u64(const char *opt, const char *s, uint64_t *out, nesim_error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = (s && *s != '-') ? strtoull(s, &end, 10) : 0;
    if (!s || *s == '-' || end == s || *end || errno)
        return nesim_fail(err, NESIM_EINVAL, "%s: expected a non-negative integer, got '%s'", opt,
                          s ? s : "");
    *out = v;
    return NESIM_OK;
}

int cli_status(int rc) { return rc == NESIM_OK ? CLI_OK : rc == NESIM_EINVAL ? CLI_BAD : CLI_FAIL; }

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cli_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

const char *cli_grouped(uint64_t v, char *buf, size_t n)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < n; i++) {
        if (i && (len - i) % 3 == 0 && o + 2 < n)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

int cli_progress_on(int quiet) { return !quiet && isatty(2); }
