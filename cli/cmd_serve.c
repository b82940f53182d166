/* cmd_serve.c — `nesim serve DB`: the trace database in a browser. Parses
 * the arguments, starts the library's server (traces/serve.h) and runs its
 * loop until SIGINT or SIGTERM.
 *
 * Guarantees: one line on stdout with the URL once the port is bound
 * (unless --quiet); every failure is one line on stderr, "nesim serve: ...",
 * exit status 2 for bad input (not a trace, bad option), 1 for runtime
 * failures (the port is taken), 0 after Ctrl-C / SIGTERM. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "serve/serve.h"

int cmd_serve(int argc, char **argv);

static const char help[] =
    "usage: nesim serve DB [--port P] [--bind ADDR] [--token T] [--quiet]\n"
    "\n"
    "Serves trace database DB (written by `nesim run --trace DB`) to a browser: the\n"
    "runs, a raster of each layer over virtual time, activity, energy, and a replay\n"
    "that plays a run's spikes at a chosen speed. DB is opened read-only; a run may\n"
    "be writing to it at the same time. Ctrl-C (or SIGTERM) stops the server.\n"
    "\n"
    "options:\n"
    "  --port P      TCP port (default 8080; 0 picks a free one, printed)\n"
    "  --bind ADDR   numeric address to listen on (default 127.0.0.1: this machine\n"
    "                only; anything else exposes the traces to the network, and\n"
    "                then every request needs the token)\n"
    "  --token T     the token requests must carry (?token=T, \"Authorization: Bearer\n"
    "                T\", or the cookie the page sets); default: none on loopback, a\n"
    "                random one (printed in the URL) on any other address\n"
    "  --quiet       do not print the URL\n"
    "\n"
    "Limits: 256 connections, 64 queued requests per worker, 64 MiB of answers\n"
    "waiting for slow clients (503 with Retry-After beyond), request headers within\n"
    "10 s, a client that stops reading dropped after 30 s.\n"
    "\n"
    "JSON API (GET; errors are {\"error\": ...} with status 400/401/404/405/503):\n"
    "  /api/runs                          the runs\n"
    "  /api/runs/ID                       a run's report (as nesim trace show --json)\n"
    "  /api/runs/ID/layers                layers with spikes, SOPs, first/last tick\n"
    "  /api/runs/ID/activity?from=T&to=T&bins=N      spikes and SOPs per bin (N <= 5000)\n"
    "  /api/runs/ID/spikes?layer=L&from=T&to=T&limit=N&after=CURSOR\n"
    "                                     [tick, neuron, sign] pages (N <= 100000)\n"
    "  /api/runs/ID/energy                joules per term and layer\n"
    "  /api/runs/ID/replay?speed=S&from=T&to=T       server-sent events, S ticks/s\n";

static nesim_serve *running; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    nesim_serve_stop(running); /* async-signal-safe: a write to a pipe */
}

int cmd_serve(int argc, char **argv)
{
    nesim_serve_opts o = {.port = 8080};
    int quiet = 0;
    nesim_error err = {0};
    int rc = NESIM_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--port")) {
            uint64_t p;
            rc = cli_u64(a, v, &p, &err), i++;
            if (!rc && p > 65535)
                rc = nesim_fail(&err, NESIM_EINVAL, "--port: expected 0..65535, got '%s'", v);
            o.port = (int)p;
        } else if (!strcmp(a, "--token")) {
            if (!v)
                rc = nesim_fail(&err, NESIM_EINVAL, "--token: expected a token");
            o.token = v, i++;
        } else if (!strcmp(a, "--bind")) {
            if (!v)
                rc = nesim_fail(&err, NESIM_EINVAL, "--bind: expected a numeric address such as 127.0.0.1");
            o.bind = v, i++;
        } else if (a[0] == '-' && a[1]) {
            rc = nesim_fail(&err, NESIM_EINVAL, "unexpected option '%s' (see nesim serve --help)", a);
        } else if (!o.db) {
            o.db = a;
        } else {
            rc = nesim_fail(&err, NESIM_EINVAL, "unexpected argument '%s' (see nesim serve --help)", a);
        }
    }
    if (!rc && !o.db)
        rc = nesim_fail(&err, NESIM_EINVAL, "which trace? nesim serve DB (see nesim serve --help)");
    nesim_serve *s = NULL;
    if (!rc)
        rc = nesim_serve_start(&o, &s, &err);
    if (rc) {
        fprintf(stderr, "nesim serve: %s\n", err.msg);
        return cli_status(rc);
    }
    running = s;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* RESETHAND: a second Ctrl-C terminates at once, should the loop be stuck */
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    const char *token = nesim_serve_token(s);
    if (!nesim_serve_loopback(s))
        fprintf(stderr, "nesim serve: warning: %s is not a loopback address: anyone who can reach this port and "
                        "has the token can read the traces (the traffic is not encrypted)\n",
                o.bind);
    if (!quiet) {
        const char *b = o.bind ? o.bind : "127.0.0.1";
        bool v6 = strchr(b, ':') && b[0] != '[';
        printf("nesim serve: http://%s%s%s:%d/%s%s (Ctrl-C stops)\n", v6 ? "[" : "", b, v6 ? "]" : "",
               nesim_serve_port(s), token ? "?token=" : "", token ? token : "");
        fflush(stdout);
    }
    rc = nesim_serve_run(s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    running = NULL;
    nesim_serve_free(s);
    if (rc) {
        fprintf(stderr, "nesim serve: the event loop failed\n");
        return CLI_FAIL;
    }
    return CLI_OK;
}
