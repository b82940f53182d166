/* comm.c — the communicator: Open MPI behind a few byte-level collectives.
 *
 * Collectives are the non-blocking ones of MPI-3 (MPI_Iallgather, ...) waited
 * for by polling, because MPI's blocking collectives have no timeout: a rank
 * that dies between two exchanges would leave the others waiting forever.
 * While polling, the rank yields its core after a short spin, so ranks
 * oversubscribed on fewer cores (tests: 3 ranks on 2 cores) do not starve the
 * rank they wait for. */
#include "base/comm.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef NESIM_MPI
#include <mpi.h>
#endif

#ifndef NESIM_BUILD
#define NESIM_BUILD "unknown"
#endif
#define NESIM_XSTR(x) #x
#define NESIM_STR(x) NESIM_XSTR(x)

struct nesim_comm {
    int rank, size;
    int mpi;            /* MPI was initialised by this communicator */
    int broken;         /* a collective failed: the ranks are out of step */
    int agreed;         /* nesim_comm_agree returned a failure: every rank knows */
    uint64_t opened;    /* collectives of the start-up handshake */
    double timeout_s;
    nesim_comm_stop_fn stop;
    void *stop_ctx;
    unsigned char *buf; /* allgatherv's receive buffer */
    size_t cap;
    nesim_comm_stats st;
};

int nesim_comm_broken(const nesim_comm *c) { return c && c->broken; }

static __attribute__((unused)) double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nesim_comm_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

int nesim_comm_launch_rank(void)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r)
        r = getenv("PMIX_RANK");
    return r ? atoi(r) : 0;
}

int nesim_comm_rank(const nesim_comm *c) { return c ? c->rank : 0; }
int nesim_comm_size(const nesim_comm *c) { return c ? c->size : 1; }

void nesim_comm_set_stop(nesim_comm *c, nesim_comm_stop_fn fn, void *ctx)
{
    if (c)
        c->stop = fn, c->stop_ctx = ctx;
}

nesim_comm_stats nesim_comm_statistics(const nesim_comm *c)
{
    nesim_comm_stats z = {0};
    return c ? c->st : z;
}

/* What every rank must agree on: the same code, built the same way. */
enum { PRINT_LEN = 96 };
static void fingerprint(char out[PRINT_LEN])
{
    memset(out, 0, PRINT_LEN);
    snprintf(out, PRINT_LEN, "nesim %s (%s build, %zu-bit)", nesim_version(), NESIM_BUILD, 8 * sizeof(void *));
}

#ifdef NESIM_MPI

const char *nesim_comm_library(void)
{
    static const char name[] = "Open MPI " /* the version is the build's: */
#if defined(OMPI_MAJOR_VERSION)
        "v" NESIM_STR(OMPI_MAJOR_VERSION) "." NESIM_STR(OMPI_MINOR_VERSION) "." NESIM_STR(OMPI_RELEASE_VERSION)
#endif
        ;
    return name;
}

/* Waits for r within the communicator's deadline. */
static int wait_for(nesim_comm *c, MPI_Request *r, const char *what, nesim_error *err)
{
    double t0 = mono_s();
    c->st.collectives++;
    for (unsigned spins = 0;; spins++) {
        int done = 0;
        if (MPI_Test(r, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed in %s", c->rank, what);
        if (done)
            break;
        if (spins > 64)
            sched_yield();
        if ((spins & 255) == 255) {
            double waited = mono_s() - t0;
            if (c->stop && c->stop(c->stop_ctx))
                return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: stopped by a signal while waiting in %s", c->rank, what);
            if (waited > c->timeout_s)
                return c->broken = 1, nesim_fail(err, NESIM_EIO,
                                  "rank %d: no answer from the other ranks for %.0f s in %s: a rank died or hangs; "
                                  "ending the run (the bound is --mpi-timeout)",
                                  c->rank, waited, what);
        }
    }
    c->st.wait_s += mono_s() - t0;
    return NESIM_OK;
}

static int too_big(nesim_comm *c, size_t bytes, const char *what, nesim_error *err)
{
    return nesim_fail(err, NESIM_EINVAL, "rank %d: %s: %zu bytes in one exchange is more than MPI counts (2^31 - 1)",
                      c->rank, what, bytes);
}

int nesim_comm_open(int *argc, char ***argv, double timeout_s, nesim_comm **out, nesim_error *err)
{
    nesim_comm *c = calloc(1, sizeof *c);
    *out = c;
    if (!c)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    c->size = 1;
    c->timeout_s = timeout_s > 0 ? timeout_s : 300;
    if (!nesim_comm_launched())
        return NESIM_OK;
    /* Only the main thread ever calls MPI (worker threads of the coded
     * layers and the trace writer never do). Open MPI turns on locks for
     * anything above SINGLE, which cost a rank 5 % of a 20 000-neuron run. */
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
        return nesim_fail(err, NESIM_EIO, "MPI_Init failed");
    c->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    char mine[PRINT_LEN], *all = malloc((size_t)c->size * PRINT_LEN);
    if (!all)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    fingerprint(mine);
    int rc = nesim_comm_allgather(c, mine, PRINT_LEN, all, "the start-up handshake", err);
    for (int r = 0; !rc && r < c->size; r++)
        if (memcmp(all + (size_t)r * PRINT_LEN, all, PRINT_LEN) != 0)
            rc = nesim_fail(err, NESIM_EINVAL, "rank %d runs %.*s but rank 0 runs %.*s: every rank must run the same build",
                            r, PRINT_LEN, all + (size_t)r * PRINT_LEN, PRINT_LEN, all);
    free(all);
    c->opened = c->st.collectives;
    return rc;
}

void nesim_comm_close(nesim_comm *c, int failed)
{
    if (!c)
        return;
    if (c->mpi) {
        /* a failure the ranks agreed on, or one before any exchange (the
         * same input fails alike everywhere), ends cleanly; any other may
         * have left a rank waiting, so it ends them all */
        if (c->size > 1 && (c->broken || (failed && !c->agreed && c->st.collectives > c->opened)))
            MPI_Abort(MPI_COMM_WORLD, failed > 0 ? failed : 1);
        MPI_Finalize();
    }
    free(c->buf);
    free(c);
}

int nesim_comm_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                         nesim_error *err)
{
    if (!c || c->size == 1) {
        memcpy(all, mine, bytes);
        return NESIM_OK;
    }
    if (bytes > INT_MAX)
        return too_big(c, bytes, what, err);
    MPI_Request r;
    c->st.bytes_sent += bytes;
    if (MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &r) != MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what);
    return wait_for(c, &r, what, err);
}

int nesim_comm_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
                          nesim_error *err)
{
    if (!c || c->size == 1) {
        *all = mine;
        return NESIM_OK;
    }
    int n = c->size;
    size_t total = 0;
    for (int r = 0; r < n; r++)
        if ((total += counts[r]) > INT_MAX)
            return too_big(c, total, what, err);
    int *cnt = malloc(2 * (size_t)n * sizeof *cnt);
    if (!cnt)
        return c->broken = 1, nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int r = 0, off = 0; r < n; off += cnt[r], r++)
        cnt[r] = (int)counts[r], cnt[n + r] = off;
    int rc = NESIM_OK;
    if (total > c->cap) {
        size_t cap = total > 2 * c->cap ? total : 2 * c->cap;
        unsigned char *b = realloc(c->buf, cap);
        if (!b)
            rc = (c->broken = 1, nesim_fail(err, NESIM_ENOMEM, "out of memory receiving %s (%zu bytes)", what, total));
        else
            c->buf = b, c->cap = cap;
    }
    MPI_Request r;
    if (!rc) {
        c->st.bytes_sent += counts[c->rank];
        if (MPI_Iallgatherv(mine, cnt[c->rank], MPI_BYTE, c->buf, cnt, cnt + n, MPI_BYTE, MPI_COMM_WORLD, &r) !=
            MPI_SUCCESS)
            rc = (c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what));
        else
            rc = wait_for(c, &r, what, err);
    }
    free(cnt);
    *all = c->buf;
    return rc;
}

int nesim_comm_sum_u64(nesim_comm *c, uint64_t *v, size_t n, const char *what, nesim_error *err)
{
    if (!c || c->size == 1 || n == 0)
        return NESIM_OK;
    if (n > INT_MAX / 8)
        return too_big(c, n * 8, what, err);
    MPI_Request r;
    c->st.bytes_sent += n * sizeof *v;
    if (MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD, &r) != MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what);
    return wait_for(c, &r, what, err);
}

int nesim_comm_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err)
{
    if (!c || c->size == 1)
        return NESIM_OK;
    MPI_Request r;
    c->st.bytes_sent += sizeof *v;
    if (MPI_Iallreduce(MPI_IN_PLACE, v, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD, &r) != MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what);
    return wait_for(c, &r, what, err);
}

int nesim_comm_agree(nesim_comm *c, int rc, nesim_error *err)
{
    if (!c || c->size == 1 || c->broken)
        return rc;
    nesim_error mine = {.code = rc};
    if (rc)
        mine = *err, mine.code = rc;
    nesim_error *all = malloc((size_t)c->size * sizeof *all);
    if (!all) /* cannot agree: the ranks are out of step */
        return c->broken = 1, nesim_fail(err, NESIM_ENOMEM, "rank %d: out of memory", c->rank);
    int grc = nesim_comm_allgather(c, &mine, sizeof mine, all, "the ranks' agreement on their status", err);
    for (int r = 0; !grc && r < c->size; r++)
        if (all[r].code) {
            *err = all[r];
            if (r != 0)
                nesim_context(err, "rank %d: ", r);
            grc = all[r].code;
            c->agreed = 1;
            break;
        }
    free(all);
    return grc;
}

#else /* built without MPI: one rank */

const char *nesim_comm_library(void) { return NULL; }

int nesim_comm_open(int *argc, char ***argv, double timeout_s, nesim_comm **out, nesim_error *err)
{
    nesim_comm *c = calloc(1, sizeof *c);
    *out = c;
    if (!c)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    c->size = 1;
    c->timeout_s = timeout_s;
    if (nesim_comm_launched()) {
        char fp[PRINT_LEN];
        fingerprint(fp);
        return nesim_fail(err, NESIM_EINVAL, "started by mpirun, but %s was built without MPI (install libopenmpi-dev "
                          "and rebuild)", fp);
    }
    return NESIM_OK;
}

void nesim_comm_close(nesim_comm *c, int failed)
{
    if (c)
        free(c->buf), free(c);
}

int nesim_comm_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                         nesim_error *err)
{
    memcpy(all, mine, bytes);
    return NESIM_OK;
}

int nesim_comm_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
                          nesim_error *err)
{
    *all = mine;
    return NESIM_OK;
}

int nesim_comm_sum_u64(nesim_comm *c, uint64_t *v, size_t n, const char *what, nesim_error *err) { return NESIM_OK; }
int nesim_comm_agree(nesim_comm *c, int rc, nesim_error *err) { return rc; }
int nesim_comm_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err) { return NESIM_OK; }

#endif
