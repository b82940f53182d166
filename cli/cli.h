/* cli.h — shared helpers of the nesim command (argument parsing, output). */
#ifndef NESIM_CLI_H
#define NESIM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

/* Exit statuses: 0 ok, 1 runtime failure, 2 bad input or usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_BAD = 2 };

/* Strict number parsing for option `opt`; on failure fills err. */
int cli_double(const char *opt, const char *s, double *out, nesim_error *err);
int cli_u64(const char *opt, const char *s, uint64_t *out, nesim_error *err);

/* Writes j (jansson dump flags) to the file at path, or to stdout (with a
 * final newline) when path is NULL; NESIM_EIO naming path if it cannot. */
struct json_t;
int cli_write_json(const struct json_t *j, const char *path, size_t flags, nesim_error *err);

/* Maps a library status to an exit status (EINVAL -> 2, others -> 1). */
int cli_status(int rc);

/* Wall-clock seconds (monotonic) and peak resident memory in MiB. */
double cli_now(void);
double cli_peak_rss_mib(void);

/* Prints an integer with thousands separators into buf. */
const char *cli_grouped(uint64_t v, char *buf, size_t n);

/* After a run a stop signal (SIGINT, SIGTERM, SIGHUP) ended and the trace
 * marked interrupted: dies of that signal. Returns if none came. */
void cli_reraise_stop(void);

/* Nonzero when progress should be drawn (stderr is a terminal, not quiet). */
int cli_progress_on(int quiet);

/* Under mpirun: joins the ranks (base/comm.h; a stop signal ends a wait);
 * otherwise *comm is NULL (one rank). */
struct nesim_comm;
int cli_comm_open(double timeout_s, struct nesim_comm **comm, nesim_error *err);
/* Whether this rank prints a failure: rank 0 (the ranks agreed on one
 * message), or any rank whose exchange broke (its own message). */
int cli_comm_says(const struct nesim_comm *comm);
/* Finalises MPI, or aborts every rank after a failure another rank may not
 * know of (nesim_comm_close; status: the exit status). NULL: no-op. */
void cli_comm_close(struct nesim_comm *comm, int status);

int cmd_example(int argc, char **argv);
int cmd_run(int argc, char **argv);
/* `nesim run CHECKPOINT_DIR`: cmd_run hands a checkpoint folder here. */
int cmd_run_lm(int argc, char **argv);
int cmd_spec(int argc, char **argv);
/* `nesim run MODEL.nir` / `nesim spec MODEL.nir`: cmd_run and cmd_spec hand NIR graphs here. */
int cmd_run_nir(int argc, char **argv);
int cmd_spec_nir(int argc, char **argv);
/* A NIR run's report (jobs/nir.h) as text on stdout (run and replay). */
void cli_print_nir(const struct json_t *r);
int cmd_chips(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
