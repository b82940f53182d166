/* util.c — small helpers of the CLI. */
#include "cli/cli.h"

#include <jansson.h>

#include "base/comm.h"
#include "traces/store.h"

#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A decimal number as documented: [-+]digits[.digits][(e|E)[-+]digits], or
 * .digits; no hex (strtod takes 0x10), no inf/nan, no spaces. */
static int decimal(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits++;
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

int cli_double(const char *opt, const char *s, double *out, nesim_error *err)
{
    char *end;
    errno = 0;
    double v = s && decimal(s) ? strtod(s, &end) : 0;
    if (!s || !decimal(s) || end == s || *end || errno || !isfinite(v))
        return nesim_fail(err, NESIM_EINVAL, "%s: expected a decimal number, got '%s'", opt, s ? s : "");
    *out = v;
    return NESIM_OK;
}

int cli_u64(const char *opt, const char *s, uint64_t *out, nesim_error *err)
{
    char *end;
    errno = 0;
    int digits = s && *s;
    for (const char *p = s; digits && *p; p++)
        digits = *p >= '0' && *p <= '9'; /* no sign, space or 0x: strtoull takes " +7" */
    unsigned long long v = digits ? strtoull(s, &end, 10) : 0;
    if (!digits || end == s || *end || errno)
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

void cli_reraise_stop(void)
{
    int sig = nesim_trace_stop_signal();
    if (!sig)
        return;
    fflush(stdout);
    /* the run is marked interrupted; now die of the signal, as the sender
     * (a shell, a job scheduler) expects */
    signal(sig, SIG_DFL);
    raise(sig);
}

int cli_write_json(const json_t *j, const char *path, size_t flags, nesim_error *err)
{
    if (path)
        return json_dump_file(j, path, flags) ? nesim_fail(err, NESIM_EIO, "%s: cannot write", path) : NESIM_OK;
    json_dumpf(j, stdout, flags);
    fputc('\n', stdout);
    return NESIM_OK;
}

static int stop_requested(void *ctx) { return nesim_trace_stop_signal() != 0; }

int cli_comm_open(double timeout_s, nesim_comm **comm, nesim_error *err)
{
    *comm = NULL;
    if (!nesim_comm_launched())
        return NESIM_OK;
    int rc = nesim_comm_open(NULL, NULL, timeout_s, comm, err);
    nesim_comm_set_stop(*comm, stop_requested, NULL);
    return rc;
}

int cli_comm_says(const nesim_comm *comm)
{
    return nesim_comm_rank(comm) == 0 || nesim_comm_broken(comm);
}

void cli_comm_close(nesim_comm *comm, int status)
{
    nesim_comm_close(comm, status);
}
