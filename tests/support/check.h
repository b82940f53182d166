/* check.h — what every nesim test includes: cmocka plus small helpers. */
#ifndef NESIM_TEST_CHECK_H
#define NESIM_TEST_CHECK_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>

#include "base/error.h"

/* Asserts a nesim status is NESIM_OK, printing the error message if not. */
#define assert_ok(expr, errp)                                                                   \
    do {                                                                                        \
        int rc_ = (expr);                                                                       \
        if (rc_ != 0)                                                                           \
            fail_msg("%s -> %d: %s", #expr, rc_, (errp)->msg);                                  \
    } while (0)

/* Asserts |a - b| <= rel * max(|a|, |b|, floor). */
#define assert_close(a, b, rel, floor_)                                                        \
    do {                                                                                        \
        double a_ = (a), b_ = (b);                                                              \
        double s_ = fmax(fmax(fabs(a_), fabs(b_)), (floor_));                                   \
        if (!(fabs(a_ - b_) <= (rel) * s_))                                                     \
            fail_msg("%s = %.17g vs %s = %.17g (rel %.3g > %.3g)", #a, a_, #b, b_,              \
                     fabs(a_ - b_) / s_, (double)(rel));                                        \
    } while (0)

/* A scratch directory for the test's files, created once; returns its path. */
const char *test_tmpdir(void);
/* test_tmpdir()/name, in one of 16 rotating buffers (so several may be in
 * use at once). */
const char *test_tmp(const char *name);

/* True once the trace at db holds committed spikes (a missing or half-created
   file is "not yet"): tests that interrupt a run wait for this, not a fixed time. */
bool test_spikes_on_disk(const char *db);

/* Every row sql returns from the database at db (opened read-only), columns
 * joined by '|', rows by '\n', NULL as "NULL": one string the caller frees.
 * Fails the test when the database or the query cannot be read. */
char *test_table_text(const char *db, const char *sql);

/* The traces at a and b (one run split differently) hold the same spike
 * rows, activity rows and run summary, with more than a few spikes, marked
 * complete; fails naming `what` and the table otherwise. */
void test_assert_same_trace(const char *a, const char *b, const char *what);

/* Reports of one run split differently (ranks, threads) are compared without
 * what measures the machine or the split: wall times, memory, phases, the
 * mapper's own time, the "mpi" and "threads" sections and the event queue's
 * depth (each rank's queue holds its share). In place. */
typedef struct json_t json_t;
/* The whole file at path, NUL-terminated (the caller frees it); *len its
 * length when len is not NULL. Fails the test when it cannot be read. */
char *test_read_file(const char *path, size_t *len);

void test_strip_machine(json_t *r);

/* Fails, showing where the two first differ, unless the reports are equal;
 * `what` names the run that gave r. */
void test_assert_same_report(json_t *ref, json_t *r, const char *what);

#endif
