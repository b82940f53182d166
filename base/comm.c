/* comm.c — the communicator: Open MPI behind a few byte-level collectives.
 *
 * Collectives are the non-blocking ones of MPI-3 (MPI_Iallgather, ...) waited
 * for by polling, because MPI's blocking collectives have no timeout: a rank
 * that dies between two exchanges would leave the others waiting forever.
 * While polling, the rank yields its core after a short spin, so ranks
 * oversubscribed on fewer cores (tests: 3 ranks on 2 cores) do not starve the
 * rank they wait for. */
#include "base/comm.h"
#include "base/mem.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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
    struct nesim_comm_group *grp; /* a thread of a group (below), or NULL */
    /* the split allgather posted and not yet finished (one at a time) */
    struct {
        int on;
        void *all;
        size_t bytes;
        const char *what;
        unsigned round;           /* group: the barrier round it arrived in */
        const void *set;          /* group: the slot set it wrote */
#ifdef NESIM_MPI
        MPI_Request req;
#endif
    } split;
};

int nesim_comm_broken(const nesim_comm *c) { return c && c->broken; }

static __attribute__((unused)) double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Grows *buf to hold `need` bytes (doubling); 0, or -1 when out of memory
 * (*buf and *cap unchanged). */
static int grow(unsigned char **buf, size_t *cap, size_t need)
{
    unsigned char *b = nesim_grown(*buf, need, cap, 1, need);
    if (!b)
        return -1;
    *buf = b;
    return 0;
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
    if (!c || c->grp) /* a group's member: nesim_comm_group_free */
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

static int mpi_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
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

static int mpi_allgather_post(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                              nesim_error *err)
{
    if (bytes > INT_MAX)
        return too_big(c, bytes, what, err);
    c->st.bytes_sent += bytes;
    if (MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &c->split.req) !=
        MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what);
    /* one test at once: Open MPI's non-blocking collectives advance only
     * inside MPI calls, and without it this rank's block would leave at the
     * finish, not now (measured: the other rank then waits as if nothing
     * overlapped) */
    int done = 0;
    if (MPI_Test(&c->split.req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed in %s", c->rank, what);
    return NESIM_OK;
}

static int mpi_allgather_finish(nesim_comm *c, nesim_error *err)
{
    return wait_for(c, &c->split.req, c->split.what, err);
}

static int mpi_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
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
    if (grow(&c->buf, &c->cap, total))
        rc = (c->broken = 1, nesim_fail(err, NESIM_ENOMEM, "out of memory receiving %s (%zu bytes)", what, total));
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

static int mpi_reduce_u64(nesim_comm *c, uint64_t *v, size_t n, nesim_reduce_op op, const char *what,
                          nesim_error *err)
{
    if (!c || c->size == 1 || n == 0)
        return NESIM_OK;
    if (n > INT_MAX / 8)
        return too_big(c, n * 8, what, err);
    MPI_Request r;
    c->st.bytes_sent += n * sizeof *v;
    MPI_Op mop = op == NESIM_REDUCE_MAX ? MPI_MAX : op == NESIM_REDUCE_OR ? MPI_BOR : MPI_SUM;
    if (MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_UINT64_T, mop, MPI_COMM_WORLD, &r) != MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what);
    return wait_for(c, &r, what, err);
}

static int mpi_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err)
{
    if (!c || c->size == 1)
        return NESIM_OK;
    MPI_Request r;
    c->st.bytes_sent += sizeof *v;
    if (MPI_Iallreduce(MPI_IN_PLACE, v, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD, &r) != MPI_SUCCESS)
        return c->broken = 1, nesim_fail(err, NESIM_EIO, "rank %d: MPI failed to start %s", c->rank, what);
    return wait_for(c, &r, what, err);
}

#else /* built without MPI: one rank, or the threads of a group */

const char *nesim_comm_library(void) { return NULL; }

int nesim_comm_open(int *argc, char ***argv, double timeout_s, nesim_comm **out, nesim_error *err)
{
    nesim_comm *c = calloc(1, sizeof *c);
    *out = c;
    if (!c)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    c->size = 1;
    c->timeout_s = timeout_s > 0 ? timeout_s : 300;
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
    if (c && !c->grp)
        free(c->buf), free(c);
}

/* Never reached: without MPI a communicator of several ranks is a group's. */
static int no_mpi(const char *what, nesim_error *err)
{
    return nesim_fail(err, NESIM_ESTATE, "%s: several ranks without MPI", what);
}
static int mpi_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what, nesim_error *err)
{
    return no_mpi(what, err);
}
static int mpi_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
                          nesim_error *err)
{
    return no_mpi(what, err);
}
static int mpi_reduce_u64(nesim_comm *c, uint64_t *v, size_t n, nesim_reduce_op op, const char *what,
                          nesim_error *err)
{
    return no_mpi(what, err);
}
static int mpi_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err) { return no_mpi(what, err); }
static int mpi_allgather_post(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                              nesim_error *err)
{
    return no_mpi(what, err);
}
static int mpi_allgather_finish(nesim_comm *c, nesim_error *err) { return no_mpi(c->split.what, err); }

#endif

/* ---- a group: the ranks are threads of this process ----------------------
 *
 * Collectives go through shared memory: each member copies its contribution
 * into its slot, all meet at a barrier, and each reads what it needs. One
 * barrier per collective: slots alternate between two sets, and a member
 * writes set n % 2 again only in collective n + 2, after the barrier of
 * n + 1, which every member reaches only once done reading n. The barrier
 * spins briefly,
 * then yields its core (members may outnumber free cores), and watches the
 * deadline, the stop check and the group's failure flag: a member that ends
 * with a failure the others do not know of (nesim_comm_group_leave) makes
 * every wait end at once with its message. */

typedef struct grp_slot {
    unsigned char *p;              /* written by its member only */
    size_t cap;
} grp_slot;

/* A member's communicator, padded so members' counters share no cache line. */
typedef struct grp_member {
    nesim_comm c;
    int parity;                    /* the slot set of its next collective */
    int local;                     /* its index in the group (its rank unless the group spans ranks) */
    unsigned char pad[64];
} grp_member;

struct nesim_comm_group {
    int size;
    grp_member *member;            /* [size] */
    /* A group on each of several MPI ranks (ranks x threads): member t of
     * rank q is rank q * size + t of the run; member 0 (the thread that
     * called MPI_Init) carries each collective between the ranks, between
     * two barriers of its group. NULL: the group is the whole run. */
    nesim_comm *outer;
    unsigned char *res, *res_in;   /* what member 0 received for all (res), sent for its group (res_in) */
    size_t res_cap, res_in_cap;
    const void *res_all;           /* an allgatherv's result (the outer communicator's buffer) */
    grp_slot *slot[2];             /* [size] each: the alternating sets */
    unsigned char pad0[64];        /* the barrier's words on lines of their own */
    _Atomic unsigned arrived, round;
    _Atomic int failed, sleepers;
    unsigned char pad1[64];
    pthread_mutex_t mu;            /* guards why, and the sleep on cv */
    pthread_cond_t cv;
    nesim_error why;               /* the first failure a member left with */
};

static grp_member *grp_me(nesim_comm *c) { return (grp_member *)c; }

/* How messages name a member: "thread t", or "rank q thread t" when the
 * group spans ranks. */
static const char *grp_who(nesim_comm *c, char buf[48])
{
    nesim_comm_group *g = c->grp;
    if (g->outer)
        snprintf(buf, 48, "rank %d thread %d", g->outer->rank, grp_me(c)->local);
    else
        snprintf(buf, 48, "thread %d", c->rank);
    return buf;
}

static int grp_failed(nesim_comm *c, const char *what, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    c->broken = 1;
    pthread_mutex_lock(&g->mu);
    *err = g->why;
    pthread_mutex_unlock(&g->mu);
    char w[48];
    if (!err->code)
        nesim_fail(err, NESIM_EIO, "%s: another thread of the run failed during %s", grp_who(c, w), what);
    return err->code;
}

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* How long a member spins before it sleeps: most waits of a split run
 * (one member a little behind in an epoch) end within it. It spins on the
 * CPU's pause only briefly, then yields: when members outnumber the free
 * cores (or the scheduler put two on one), the one waited for runs at once.
 * Measured on the 4,096-neuron network (1,000 exchanges): yielding after
 * 64 pauses beat pausing for 50 us then sleeping, on 2 threads (0.43 vs
 * 0.47 s) and on 3 threads on 2 cores (0.55 vs 0.72 s). */
#define GRP_SPIN_S 1e-3

/* Wakes the sleepers after the round moved on or a member failed. */
static void grp_wake(nesim_comm_group *g)
{
    if (atomic_load(&g->sleepers)) {
        pthread_mutex_lock(&g->mu);
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
}

/* A barrier in two halves: grp_arrive counts this member in and returns the
 * round it arrived in; grp_await waits until that round is over (every
 * member arrived). Between the two a member may work: a member arrives at
 * the next barrier only after awaiting this one, so the count it adds to is
 * the next round's. */
static unsigned grp_arrive(nesim_comm_group *g)
{
    unsigned round = atomic_load(&g->round);
    if (atomic_fetch_add(&g->arrived, 1) + 1 == (unsigned)g->size) {
        atomic_store(&g->arrived, 0);
        atomic_fetch_add(&g->round, 1);
        grp_wake(g);
    }
    return round;
}

static int grp_await(nesim_comm *c, unsigned round, const char *what, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    if (atomic_load(&g->round) != round)
        return NESIM_OK;
    double t0 = mono_s();
    for (unsigned spins = 1; atomic_load_explicit(&g->round, memory_order_acquire) == round; spins++) {
        if (spins > 64)
            sched_yield();
        else
            spin_pause();
        if ((spins & 63) == 0 && mono_s() - t0 > GRP_SPIN_S)
            break;
    }
    /* Sleep in slices, checking the stop signal and the deadline. A
     * sleeper counts itself before it checks the round under the lock, and
     * the last arrival moves the round before it reads the count: one of the
     * two sees the other, so no wake-up is lost. */
    while (atomic_load(&g->round) == round) {
        if (atomic_load(&g->failed))
            return grp_failed(c, what, err);
        double now = mono_s();
        char w[48];
        if (c->stop && c->stop(c->stop_ctx))
            return c->broken = 1, nesim_fail(err, NESIM_EIO, "%s: stopped by a signal while waiting in %s",
                                             grp_who(c, w), what);
        if (now - t0 > c->timeout_s)
            return c->broken = 1, nesim_fail(err, NESIM_EIO, "%s: no answer from the other threads for "
                                             "%.0f s in %s: ending the run", grp_who(c, w), now - t0, what);
        atomic_fetch_add(&g->sleepers, 1);
        pthread_mutex_lock(&g->mu);
        if (atomic_load(&g->round) == round && !atomic_load(&g->failed)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
        pthread_mutex_unlock(&g->mu);
        atomic_fetch_sub(&g->sleepers, 1);
    }
    return NESIM_OK;
}

static int grp_barrier(nesim_comm *c, const char *what, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    if (atomic_load(&g->failed))
        return grp_failed(c, what, err);
    return grp_await(c, grp_arrive(g), what, err);
}

static int grp_write(nesim_comm *c, const void *mine, size_t bytes, const grp_slot **set, const char *what,
                     nesim_error *err);

/* Copies mine into this member's slot of the next set and waits for every
 * member's; *set is that set (valid until this member's collective after
 * the next). */
static int grp_post(nesim_comm *c, const void *mine, size_t bytes, const grp_slot **set, const char *what,
                    nesim_error *err)
{
    int rc = grp_write(c, mine, bytes, set, what, err);
    if (rc)
        return rc;
    double t0 = mono_s();
    rc = grp_barrier(c, what, err);
    c->st.wait_s += mono_s() - t0;
    return rc;
}

/* Copies mine into this member's slot of the next set (*set); no wait. */
static int grp_write(nesim_comm *c, const void *mine, size_t bytes, const grp_slot **set, const char *what,
                     nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    grp_member *m = grp_me(c);
    grp_slot *mys = &g->slot[m->parity][m->local];
    int rc;
    if (grow(&mys->p, &mys->cap, bytes)) { /* it leaves: the others' waits end with this line */
        char w[48];
        rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory posting %s (%zu bytes)", grp_who(c, w), what, bytes);
        nesim_comm_group_leave(c, rc, err);
        return rc;
    }
    if (bytes)
        memcpy(mys->p, mine, bytes);
    c->st.collectives++;
    c->st.bytes_sent += bytes;
    *set = g->slot[m->parity];
    m->parity ^= 1;
    return NESIM_OK;
}

/* Ranks x threads, after the group's barrier of a collective: member 0
 * runs `outer` (the collective between the ranks, on what the group
 * posted) and every member waits for it at a second barrier; a failure of
 * member 0 ends the others' wait with its message. */
static int grp_across(nesim_comm *c, int (*outer)(nesim_comm *c, const grp_slot *set, void *ctx, nesim_error *err),
                      const grp_slot *set, void *ctx, const char *what, nesim_error *err)
{
    if (grp_me(c)->local == 0) {
        int rc = outer(c, set, ctx, err);
        if (rc) {
            nesim_comm_group_leave(c, rc, err);
            c->broken = 1;
            return rc;
        }
    }
    double t0 = mono_s();
    int rc = grp_barrier(c, what, err);
    c->st.wait_s += mono_s() - t0;
    return rc;
}

/* The group's contributions set[0 .. size), one after another in res_in:
 * n[t] bytes of member t, or `each` bytes of every member when n is NULL;
 * 0, or NESIM_ENOMEM. */
static int grp_concat(nesim_comm_group *g, const grp_slot *set, const size_t *n, size_t each, size_t *total,
                      nesim_error *err)
{
    size_t sum = 0;
    for (int t = 0; t < g->size; t++)
        sum += n ? n[t] : each;
    if (grow(&g->res_in, &g->res_in_cap, sum ? sum : 1))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory for an exchange between ranks (%zu bytes)", sum);
    size_t off = 0;
    for (int t = 0; t < g->size; t++) {
        size_t b = n ? n[t] : each;
        if (b)
            memcpy(g->res_in + off, set[t].p, b);
        off += b;
    }
    *total = sum;
    return NESIM_OK;
}

typedef struct across_job {
    size_t bytes;         /* allgather: each member's */
    const size_t *counts; /* allgatherv: every member's of the run */
    size_t n;             /* reduce: values */
    nesim_reduce_op op;   /* reduce: how */
    const char *what;
} across_job;

static int outer_allgather(nesim_comm *c, const grp_slot *set, void *ctx, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    const across_job *j = ctx;
    size_t total;
    int rc = grp_concat(g, set, NULL, j->bytes, &total, err);
    if (!rc && grow(&g->res, &g->res_cap, total * (size_t)g->outer->size + 1))
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory receiving %s", j->what);
    return rc ? rc : mpi_allgather(g->outer, g->res_in, total, g->res, j->what, err);
}

/* After every member posted `bytes` into set: every rank's bytes into all
 * (ranks x threads: the ranks' exchange first, carried by member 0). */
static int grp_gathered(nesim_comm *c, const grp_slot *set, size_t bytes, void *all, const char *what, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    if (g->outer) {
        across_job j = {.bytes = bytes, .what = what};
        int rc = grp_across(c, outer_allgather, set, &j, what, err);
        if (!rc)
            memcpy(all, g->res, (size_t)c->size * bytes);
        return rc;
    }
    for (int r = 0; r < c->size; r++)
        memcpy((unsigned char *)all + (size_t)r * bytes, set[r].p, bytes);
    return NESIM_OK;
}

static int grp_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what, nesim_error *err)
{
    const grp_slot *set;
    int rc = grp_post(c, mine, bytes, &set, what, err);
    return rc ? rc : grp_gathered(c, set, bytes, all, what, err);
}

/* The split allgather of a group: the slot written and the member counted
 * in at the post; the wait, the ranks' exchange (ranks x threads: member 0,
 * between two barriers, so that part does not overlap) and the copy at the
 * finish. */
static int grp_allgather_post(nesim_comm *c, const void *mine, size_t bytes, const char *what, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    if (atomic_load(&g->failed))
        return grp_failed(c, what, err);
    const grp_slot *set;
    int rc = grp_write(c, mine, bytes, &set, what, err);
    if (rc)
        return rc;
    c->split.set = set;
    c->split.round = grp_arrive(g);
    return NESIM_OK;
}

static int grp_allgather_finish(nesim_comm *c, nesim_error *err)
{
    double t0 = mono_s();
    int rc = grp_await(c, c->split.round, c->split.what, err);
    c->st.wait_s += mono_s() - t0;
    return rc ? rc : grp_gathered(c, c->split.set, c->split.bytes, c->split.all, c->split.what, err);
}

static int outer_allgatherv(nesim_comm *c, const grp_slot *set, void *ctx, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    const across_job *j = ctx;
    const int T = g->size, Q = g->outer->size, q = g->outer->rank;
    size_t *per = calloc((size_t)Q, sizeof *per), total;
    if (!per)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    for (int r = 0; r < Q * T; r++)
        per[r / T] += j->counts[r];
    int rc = grp_concat(g, set, j->counts + (size_t)q * (size_t)T, 0, &total, err);
    if (!rc)
        rc = mpi_allgatherv(g->outer, g->res_in, per, &g->res_all, j->what, err);
    free(per);
    return rc;
}

static int grp_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
                          nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    int rc;
    if (g->outer) {
        const grp_slot *set;
        if ((rc = grp_post(c, mine, counts[c->rank], &set, what, err)))
            return rc;
        across_job j = {.counts = counts, .what = what};
        if (!(rc = grp_across(c, outer_allgatherv, set, &j, what, err)))
            *all = g->res_all;
        return rc;
    }
    size_t total = 0;
    for (int r = 0; r < c->size; r++)
        total += counts[r];
    if (grow(&c->buf, &c->cap, total)) {
        char w[48];
        rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory receiving %s (%zu bytes)", grp_who(c, w), what, total);
        nesim_comm_group_leave(c, rc, err);
        return rc;
    }
    const grp_slot *set;
    if ((rc = grp_post(c, mine, counts[c->rank], &set, what, err)))
        return rc;
    for (int r = 0, off = 0; r < c->size; off += (int)counts[r], r++)
        if (counts[r])
            memcpy(c->buf + off, set[r].p, counts[r]);
    *all = c->buf;
    return NESIM_OK;
}

/* The group's members' n values combined by op into v. */
static void local_reduce(const nesim_comm_group *g, const grp_slot *set, uint64_t *v, size_t n, nesim_reduce_op op)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t acc = 0, x;
        for (int t = 0; t < g->size; t++) {
            memcpy(&x, set[t].p + i * sizeof x, sizeof x);
            acc = op == NESIM_REDUCE_SUM ? acc + x : op == NESIM_REDUCE_OR ? acc | x : x > acc ? x : acc;
        }
        v[i] = acc;
    }
}

static int outer_reduce(nesim_comm *c, const grp_slot *set, void *ctx, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    const across_job *j = ctx;
    if (grow(&g->res, &g->res_cap, j->n * sizeof(uint64_t)))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    local_reduce(g, set, (uint64_t *)(void *)g->res, j->n, j->op);
    return mpi_reduce_u64(g->outer, (uint64_t *)(void *)g->res, j->n, j->op, j->what, err);
}

static int grp_reduce_u64(nesim_comm *c, uint64_t *v, size_t n, nesim_reduce_op op, const char *what,
                          nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    const grp_slot *set;
    int rc = grp_post(c, v, n * sizeof *v, &set, what, err);
    if (rc)
        return rc;
    if (g->outer) {
        across_job j = {.n = n, .op = op, .what = what};
        if (!(rc = grp_across(c, outer_reduce, set, &j, what, err)))
            memcpy(v, g->res, n * sizeof *v);
        return rc;
    }
    local_reduce(g, set, v, n, op);
    return NESIM_OK;
}

/* The group's smallest value. */
static int64_t local_min(const nesim_comm_group *g, const grp_slot *set)
{
    int64_t m = INT64_MAX, x;
    for (int t = 0; t < g->size; t++) {
        memcpy(&x, set[t].p, sizeof x);
        if (x < m)
            m = x;
    }
    return m;
}

static int outer_min(nesim_comm *c, const grp_slot *set, void *ctx, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    const across_job *j = ctx;
    int64_t m = local_min(g, set);
    if (grow(&g->res, &g->res_cap, sizeof m))
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = mpi_min_i64(g->outer, &m, j->what, err);
    memcpy(g->res, &m, sizeof m);
    return rc;
}

static int grp_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err)
{
    nesim_comm_group *g = c->grp;
    const grp_slot *set;
    int rc = grp_post(c, v, sizeof *v, &set, what, err);
    if (!rc && g->outer) {
        across_job j = {.what = what};
        if (!(rc = grp_across(c, outer_min, set, &j, what, err)))
            memcpy(v, g->res, sizeof *v);
        return rc;
    }
    if (!rc)
        *v = local_min(g, set); /* its own among them */
    return rc;
}

int nesim_comm_group_new(int size, const nesim_comm *like, nesim_comm_group **out, nesim_error *err)
{
    *out = NULL;
    if (size < 1)
        return nesim_fail(err, NESIM_EINVAL, "a group needs at least one thread (%d)", size);
    nesim_comm_group *g = calloc(1, sizeof *g);
    if (!g || !(g->member = calloc((size_t)size, sizeof *g->member)) ||
        !(g->slot[0] = calloc((size_t)size, sizeof *g->slot[0])) ||
        !(g->slot[1] = calloc((size_t)size, sizeof *g->slot[1]))) {
        if (g)
            free(g->member), free(g->slot[0]);
        free(g);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    g->size = size;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    atomic_init(&g->sleepers, 0);
    atomic_init(&g->arrived, 0);
    atomic_init(&g->round, 0);
    atomic_init(&g->failed, 0);
    /* under mpirun (an MPI communicator of several ranks): a group on each */
    if (like && !like->grp && like->size > 1)
        g->outer = (nesim_comm *)like;
    for (int r = 0; r < size; r++) {
        nesim_comm *c = &g->member[r].c;
        g->member[r].local = r;
        c->rank = r, c->size = size, c->grp = g;
        if (g->outer)
            c->rank = g->outer->rank * size + r, c->size = g->outer->size * size;
        c->timeout_s = like && like->timeout_s > 0 ? like->timeout_s : 300;
        if (like)
            c->stop = like->stop, c->stop_ctx = like->stop_ctx;
    }
    *out = g;
    return NESIM_OK;
}

nesim_comm *nesim_comm_group_member(nesim_comm_group *g, int rank) { return &g->member[rank].c; }

int nesim_comm_is_group(const nesim_comm *c) { return c && c->grp; }

int nesim_comm_threads(const nesim_comm *c) { return c && c->grp ? c->grp->size : 1; }

void nesim_comm_group_leave(nesim_comm *c, int rc, const nesim_error *err)
{
    if (!c || !c->grp || !rc || c->agreed)
        return;
    nesim_comm_group *g = c->grp;
    pthread_mutex_lock(&g->mu);
    if (!g->why.code) {
        g->why = *err;
        g->why.code = rc;
        char w[48];
        if (c->rank != 0)
            nesim_context(&g->why, "%s: ", grp_who(c, w));
    }
    pthread_mutex_unlock(&g->mu);
    atomic_store(&g->failed, 1);
    grp_wake(g);
}

void nesim_comm_group_free(nesim_comm_group *g)
{
    if (!g)
        return;
    for (int r = 0; r < g->size; r++)
        free(g->member[r].c.buf), free(g->slot[0][r].p), free(g->slot[1][r].p);
    free(g->res), free(g->res_in);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->slot[0]), free(g->slot[1]);
    free(g->member);
    free(g);
}

/* ---- the collectives: one rank, a group, or MPI -------------------------- */

int nesim_comm_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                         nesim_error *err)
{
    if (!c || c->size == 1) {
        memcpy(all, mine, bytes);
        return NESIM_OK;
    }
    return c->grp ? grp_allgather(c, mine, bytes, all, what, err) : mpi_allgather(c, mine, bytes, all, what, err);
}

int nesim_comm_allgather_post(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                              nesim_error *err)
{
    if (!c || c->size == 1) {
        memcpy(all, mine, bytes);
        return NESIM_OK;
    }
    if (c->split.on)
        return nesim_fail(err, NESIM_ESTATE, "rank %d: %s posted while %s is pending", c->rank, what, c->split.what);
    c->split.all = all, c->split.bytes = bytes, c->split.what = what;
    int rc = c->grp ? grp_allgather_post(c, mine, bytes, what, err) : mpi_allgather_post(c, mine, bytes, all, what, err);
    c->split.on = rc == NESIM_OK;
    return rc;
}

int nesim_comm_allgather_finish(nesim_comm *c, nesim_error *err)
{
    if (!c || c->size == 1)
        return NESIM_OK;
    if (!c->split.on)
        return nesim_fail(err, NESIM_ESTATE, "rank %d: no exchange pending", c->rank);
    c->split.on = 0;
    return c->grp ? grp_allgather_finish(c, err) : mpi_allgather_finish(c, err);
}

int nesim_comm_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
                          nesim_error *err)
{
    if (!c || c->size == 1) {
        *all = mine;
        return NESIM_OK;
    }
    return c->grp ? grp_allgatherv(c, mine, counts, all, what, err) : mpi_allgatherv(c, mine, counts, all, what, err);
}

int nesim_comm_reduce_u64(nesim_comm *c, uint64_t *v, size_t n, nesim_reduce_op op, const char *what,
                          nesim_error *err)
{
    if (!c || c->size == 1 || n == 0)
        return NESIM_OK;
    return c->grp ? grp_reduce_u64(c, v, n, op, what, err) : mpi_reduce_u64(c, v, n, op, what, err);
}

int nesim_comm_sum_u64(nesim_comm *c, uint64_t *v, size_t n, const char *what, nesim_error *err)
{
    return nesim_comm_reduce_u64(c, v, n, NESIM_REDUCE_SUM, what, err);
}

int nesim_comm_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err)
{
    if (!c || c->size == 1)
        return NESIM_OK;
    return c->grp ? grp_min_i64(c, v, what, err) : mpi_min_i64(c, v, what, err);
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
            if (r != 0 && c->grp && c->grp->outer)
                nesim_context(err, "rank %d thread %d: ", r / c->grp->size, r % c->grp->size);
            else if (r != 0)
                nesim_context(err, c->grp ? "thread %d: " : "rank %d: ", r);
            grc = all[r].code;
            c->agreed = 1;
            if (c->grp && c->grp->outer && grp_me(c)->local == 0)
                c->grp->outer->agreed = 1; /* every rank knows: MPI ends without an abort */
            break;
        }
    free(all);
    return grc;
}
