/* comm.h — the ranks of one run: Open MPI when nesim was started by mpirun,
 * a single rank otherwise.
 *
 * nesim scales out by running the same binary on K ranks (mpirun -np K) that
 * all build the same model, each computes its share, and they exchange
 * results with MPI collectives. This module is the only one that speaks MPI:
 * everything above it sees a communicator with a rank, a size and a handful
 * of collectives on plain bytes. Built without MPI (no mpicc at build time)
 * or started without mpirun, the communicator has one rank and every
 * collective is a local copy, so the rest of nesim runs exactly as before.
 *
 * Every collective is bounded in time: it is posted non-blocking and polled
 * until it completes, the deadline passes (a rank died or hangs) or the
 * caller's stop check says stop (SIGTERM from mpirun when another rank
 * failed). Then it fails with NESIM_EIO and a message saying which collective
 * waited how long; the caller ends its run (marking a trace incomplete) and
 * main calls nesim_comm_close(c, 1), which takes the other ranks down. */
#ifndef NESIM_COMM_H
#define NESIM_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct nesim_comm nesim_comm;

/* Polled while a collective waits: nonzero means stop waiting (a signal). */
typedef int (*nesim_comm_stop_fn)(void *ctx);

/* The MPI library nesim was built with ("Open MPI v4.1.4, ..."), or NULL
 * when it was built without MPI. */
const char *nesim_comm_library(void);

/* Nonzero when this process was started by an MPI launcher (mpirun sets
 * OMPI_COMM_WORLD_SIZE or PMIX_RANK): only then is MPI initialised, so a
 * plain `nesim run` never pays for it. */
int nesim_comm_launched(void);

/* This process's rank as the launcher's environment gives it (0 when not
 * launched by mpirun), without initialising MPI: commands that are not
 * split over ranks run on rank 0 alone. */
int nesim_comm_launch_rank(void);

/* Opens the communicator of this process: MPI_COMM_WORLD when launched by
 * mpirun (initialising MPI; NESIM_EINVAL when nesim was built without MPI),
 * else one rank. Every rank checks that all ranks run the same nesim build
 * (version and build flavour): a mismatch is NESIM_EINVAL naming both.
 * timeout_s bounds every collective (<= 0: 300 s). *out is the caller's,
 * freed by nesim_comm_close (also when this fails after MPI started). */
int nesim_comm_open(int *argc, char ***argv, double timeout_s, nesim_comm **out, nesim_error *err);

/* Ends MPI: MPI_Finalize after a good run, after a failure every rank
 * agreed on (nesim_comm_agree) and after one before any exchange (the same
 * input fails alike on every rank); after any other failure (failed: the
 * exit status, > 0) or a broken exchange, MPI_Abort, which ends every rank
 * so none waits forever for this one. Frees c; NULL is a no-op. */
void nesim_comm_close(nesim_comm *c, int failed);

/* This rank (0 .. size-1) and the number of ranks; NULL counts as rank 0 of 1. */
int nesim_comm_rank(const nesim_comm *c);
int nesim_comm_size(const nesim_comm *c);

/* The check polled while a collective waits (NULL: none). */
void nesim_comm_set_stop(nesim_comm *c, nesim_comm_stop_fn fn, void *ctx);

/* Every rank's `bytes` bytes from `mine`, rank by rank into all (size *
 * bytes). `what` names the exchange in a timeout message. */
int nesim_comm_allgather(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                         nesim_error *err);

/* nesim_comm_allgather in two halves, so a rank can work while it travels:
 * _post starts it (mine and all must stay untouched until _finish returns),
 * _finish waits for it (bounded like every collective) and fills all. One
 * at a time per communicator, and no other collective in between. With one
 * rank, _post copies and _finish does nothing. Ranks x threads: the
 * threads' part overlaps, the ranks' part runs at _finish. */
int nesim_comm_allgather_post(nesim_comm *c, const void *mine, size_t bytes, void *all, const char *what,
                              nesim_error *err);
int nesim_comm_allgather_finish(nesim_comm *c, nesim_error *err);

/* Every rank's own number of bytes, known to all beforehand (counts[r] of
 * rank r: gather them first with nesim_comm_allgather), concatenated rank by
 * rank into a buffer the communicator owns (*all, valid until the next call;
 * with one rank, *all is mine). */
int nesim_comm_allgatherv(nesim_comm *c, const void *mine, const size_t *counts, const void **all, const char *what,
                          nesim_error *err);

/* In place: v[i] = the sum over ranks of v[i] (exact: integers). */
int nesim_comm_sum_u64(nesim_comm *c, uint64_t *v, size_t n, const char *what, nesim_error *err);

/* How nesim_comm_reduce_u64 combines the ranks' values. */
typedef enum { NESIM_REDUCE_SUM, NESIM_REDUCE_MAX, NESIM_REDUCE_OR } nesim_reduce_op;

/* In place: v[i] = op over ranks of v[i] (a sum wraps modulo 2^64; OR is
 * bitwise: the union of bit sets). */
int nesim_comm_reduce_u64(nesim_comm *c, uint64_t *v, size_t n, nesim_reduce_op op, const char *what,
                          nesim_error *err);

/* In place: *v = the smallest *v over ranks. */
int nesim_comm_min_i64(nesim_comm *c, int64_t *v, const char *what, nesim_error *err);

/* Makes a status every rank's: each rank gives its own (rc, and err when rc
 * is not NESIM_OK); all return the status of the lowest failing rank, with
 * its message (prefixed "rank r: " unless r is 0), or NESIM_OK when none
 * failed. Call it where ranks may fail alone (rank 0 opening a trace) before
 * the next exchange, so a failure on one rank ends all cleanly. */
int nesim_comm_agree(nesim_comm *c, int rc, nesim_error *err);

/* Nonzero once a collective failed (timed out, stopped, MPI error): the ranks
 * are out of step, and the run must end with nesim_comm_close(c, 1). */
int nesim_comm_broken(const nesim_comm *c);

/* ---- a group: K ranks that are threads of this process ------------------
 *
 * The same split as mpirun's, on the cores of one machine: each thread runs
 * what a rank runs, with its member of the group as the communicator, and
 * the collectives go through shared memory. Same collectives, same
 * canonical order, so the same results as one rank, bit for bit. */
typedef struct nesim_comm_group nesim_comm_group;

/* A group of `size` members (rank 0 .. size-1). Each member's bound on a
 * wait and stop check are `like`'s (NULL: 300 s, none). When `like` is an
 * MPI communicator of Q > 1 ranks (mpirun), each rank makes a group and the
 * run has Q * size ranks: member t of rank q is rank q * size + t, and
 * member 0 (on the thread that opened MPI: only it calls MPI) carries each
 * collective between the ranks; results are those of Q * size ranks of one
 * kind. *out is the caller's: nesim_comm_group_free, after every thread
 * using it ended. */
int nesim_comm_group_new(int size, const nesim_comm *like, nesim_comm_group **out, nesim_error *err);

/* Member `rank`'s communicator, owned by the group (nesim_comm_close on it
 * does nothing). One thread uses one member. */
nesim_comm *nesim_comm_group_member(nesim_comm_group *g, int rank);

/* Nonzero when c is a group's member (threads), not MPI or a lone rank. */
int nesim_comm_is_group(const nesim_comm *c);
/* The threads of c's group (its size), 1 when c is no group's member: under
 * mpirun the run's ranks are nesim_comm_size(c) / this. */
int nesim_comm_threads(const nesim_comm *c);

/* A member's thread ends with rc (err its message): a failure the members
 * did not agree on (nesim_comm_agree) ends every other member's next or
 * current wait at once, with this message, instead of at the timeout. */
void nesim_comm_group_leave(nesim_comm *c, int rc, const nesim_error *err);

void nesim_comm_group_free(nesim_comm_group *g);

/* Traffic so far on this rank: collectives called and bytes this rank sent
 * (its own contribution to each; what it receives is what the others sent). */
typedef struct nesim_comm_stats {
    uint64_t collectives;
    uint64_t bytes_sent;
    double wait_s; /* wall time spent inside collectives */
} nesim_comm_stats;
nesim_comm_stats nesim_comm_statistics(const nesim_comm *c);

#endif
